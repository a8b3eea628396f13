-- SPDX-License-Identifier: MIT
-- The gslbd database, schema version 1: configuration (pools, members, checks), health state and
-- the change journal.  Compiled into libgslb as db_schema_v1 (see Makefile.am); applied by
-- db_migrate() inside one transaction that also sets PRAGMA user_version.

-- A balanced name.  name is the lowercased FQDN with its trailing dot.
CREATE TABLE pool (
	id INTEGER PRIMARY KEY,
	name TEXT UNIQUE NOT NULL,
	policy TEXT NOT NULL DEFAULT 'weighted' CHECK (policy IN ('weighted', 'failover', 'geo')),
	ttl INTEGER NOT NULL DEFAULT 30 CHECK (ttl BETWEEN 0 AND 86400),
	degraded_ttl INTEGER CHECK (degraded_ttl IS NULL OR degraded_ttl BETWEEN 1 AND 86400),
	answers INTEGER NOT NULL DEFAULT 1 CHECK (answers BETWEEN 1 AND 64),
	fallback TEXT NOT NULL DEFAULT 'all' CHECK (fallback IN ('all', 'none')),
	created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
	updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- A site of a pool.  countries and continents are comma lists (uppercase), NULL when empty.
CREATE TABLE member (
	id INTEGER PRIMARY KEY,
	pool_id INTEGER NOT NULL REFERENCES pool(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	weight INTEGER NOT NULL DEFAULT 100 CHECK (weight BETWEEN 0 AND 65535),
	priority INTEGER NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 255),
	latitude REAL CHECK (latitude IS NULL OR latitude BETWEEN -90 AND 90),
	longitude REAL CHECK (longitude IS NULL OR longitude BETWEEN -180 AND 180),
	countries TEXT,
	continents TEXT,
	admin TEXT NOT NULL DEFAULT 'auto' CHECK (admin IN ('auto', 'up', 'down', 'drain')),
	UNIQUE (pool_id, name)
);

-- A member's served addresses, in canonical inet_ntop() form.
CREATE TABLE member_address (
	id INTEGER PRIMARY KEY,
	member_id INTEGER NOT NULL REFERENCES member(id) ON DELETE CASCADE,
	address TEXT NOT NULL,
	family INTEGER NOT NULL CHECK (family IN (4, 6)),
	UNIQUE (member_id, address)
);

-- Client networks a geo member serves, canonical CIDR with no host bits.
CREATE TABLE member_network (
	member_id INTEGER NOT NULL REFERENCES member(id) ON DELETE CASCADE,
	prefix TEXT NOT NULL,
	PRIMARY KEY (member_id, prefix)
);

-- Health checks: member_id NULL is the pool's check, for every member without its own.
-- NULL columns take the defaults of README "Health checks" (port by type, path "/", host the pool
-- name, expect 200-399, no match, no target).
CREATE TABLE health_check (
	id INTEGER PRIMARY KEY,
	pool_id INTEGER NOT NULL REFERENCES pool(id) ON DELETE CASCADE,
	member_id INTEGER REFERENCES member(id) ON DELETE CASCADE,
	type TEXT NOT NULL CHECK (type IN ('tcp', 'http', 'https')),
	port INTEGER CHECK (port IS NULL OR port BETWEEN 1 AND 65535),
	path TEXT,
	host TEXT,
	expect TEXT,
	match TEXT,
	interval_ms INTEGER NOT NULL DEFAULT 10000 CHECK (interval_ms BETWEEN 1000 AND 3600000),
	timeout_ms INTEGER NOT NULL DEFAULT 2000 CHECK (timeout_ms > 0 AND timeout_ms < interval_ms),
	rise INTEGER NOT NULL DEFAULT 2 CHECK (rise BETWEEN 1 AND 100),
	fall INTEGER NOT NULL DEFAULT 3 CHECK (fall BETWEEN 1 AND 100),
	target TEXT,
	insecure INTEGER NOT NULL DEFAULT 0 CHECK (insecure IN (0, 1)),
	UNIQUE (pool_id, member_id)
);
-- UNIQUE treats NULLs as distinct, so a pool's own check needs its own index.
CREATE UNIQUE INDEX health_check_pool ON health_check(pool_id) WHERE member_id IS NULL;

-- Health state, written by gslbd's health loop.  Times are Unix seconds, latency milliseconds.
CREATE TABLE target_state (
	target_key TEXT PRIMARY KEY,
	state TEXT NOT NULL,
	since INTEGER,
	reason TEXT,
	last_probe INTEGER,
	latency_ms REAL
);

CREATE TABLE probe_result (
	id INTEGER PRIMARY KEY,
	time INTEGER NOT NULL,
	target_key TEXT NOT NULL,
	ok INTEGER NOT NULL,
	latency_ms REAL,
	reason TEXT
);
CREATE INDEX probe_result_target_time ON probe_result(target_key, time);
CREATE INDEX probe_result_time ON probe_result(time);

CREATE TABLE state_change (
	id INTEGER PRIMARY KEY,
	time INTEGER NOT NULL,
	target_key TEXT NOT NULL,
	from_state TEXT,
	to_state TEXT NOT NULL,
	reason TEXT
);
CREATE INDEX state_change_target_time ON state_change(target_key, time);
CREATE INDEX state_change_time ON state_change(time);

-- The change journal: one row per gslbctl change, written in the change's own transaction.
-- time is RFC 3339 UTC, actor user@host.
CREATE TABLE journal (
	id INTEGER PRIMARY KEY,
	time TEXT NOT NULL,
	actor TEXT NOT NULL,
	command TEXT NOT NULL,
	summary TEXT NOT NULL
);
