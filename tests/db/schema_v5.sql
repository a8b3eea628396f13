-- SPDX-License-Identifier: MIT
-- The gslbd database, schema version 5: configuration (pools, members, checks), health state and
-- history, the change journal, and a cluster node's settings and mirror of etcd.  Compiled into
-- libgslb as db_schema (see Makefile.am); a new file gets it in one step from db_migrate(), inside
-- one transaction that also sets PRAGMA user_version.  An older file is brought here by
-- src/db/migrate_v2.sql to src/db/migrate_v5.sql instead, which create the same tables with the
-- same text: keep them in step (tests/integration/test_storage.py compares
-- the results).
-- The ranges in the CHECK constraints are those gslbctl enforces, named in include/gslb/lb.h (pools
-- and members) and include/gslb/health.h (checks); tests/unit/test_schema_limits.c keeps them equal.
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
-- name, expect 200-399, no match, no target, quorum majority: README "Two or more nameservers").
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
	quorum TEXT CHECK (quorum IS NULL OR quorum IN ('majority', 'any', 'all', 'local')),
	UNIQUE (pool_id, member_id)
);
-- UNIQUE treats NULLs as distinct, so a pool's own check needs its own index.
CREATE UNIQUE INDEX health_check_pool ON health_check(pool_id) WHERE member_id IS NULL;
-- Deleting a member deletes its check (ON DELETE CASCADE): found by this index, not a scan of
-- every check (a cluster node replaces whole pools at a time, 100,000 in a full sync).
CREATE INDEX health_check_member ON health_check(member_id);

-- Health state and history, written by gslbd's health loop.  A target is one probed thing,
-- named by its key (health_target_key(): "http 192.0.2.1:80 www.example.com/", followed by the
-- check's settings that are not the defaults, e.g. " insecure fall 5"); the other tables
-- refer to it by id, so the key text is stored once.  Rows are kept when a target leaves the
-- configuration: its state comes back if it returns.
CREATE TABLE target (
	id INTEGER PRIMARY KEY,
	key TEXT UNIQUE NOT NULL
);

-- The few distinct probe reasons ("HTTP 200", "connect refused", "timeout after 2000 ms"),
-- each stored once.
CREATE TABLE reason (
	id INTEGER PRIMARY KEY,
	text TEXT UNIQUE NOT NULL
);

-- The last probe of each target.  Times are Unix seconds, latency milliseconds; cert_not_after
-- is the notAfter of the certificate an https target's last completed TLS handshake saw.
CREATE TABLE target_state (
	target_id INTEGER PRIMARY KEY REFERENCES target(id),
	state TEXT NOT NULL,
	since INTEGER,
	reason TEXT,
	last_probe INTEGER,
	latency_ms REAL,
	cert_not_after INTEGER
);

-- One row per probe result, the bulk of the file: 10,000 targets every 10 s are 86 million rows
-- a day.  Clustered by target and time without a rowid, so one b-tree serves both the history of
-- a target and its pruning (a range at the start of the target's rows); no other index.  time_ms
-- is Unix milliseconds (two results of one target can fall in the same second), latency_us
-- microseconds.  reason_id has no foreign key: checking one on a reason's delete would scan
-- the whole table.
CREATE TABLE probe_result (
	target_id INTEGER NOT NULL REFERENCES target(id),
	time_ms INTEGER NOT NULL,
	ok INTEGER NOT NULL,
	latency_us INTEGER,
	reason_id INTEGER,
	PRIMARY KEY (target_id, time_ms)
) WITHOUT ROWID;

-- State changes are few (kept 30 days); time is Unix seconds.
CREATE TABLE state_change (
	id INTEGER PRIMARY KEY,
	time INTEGER NOT NULL,
	target_id INTEGER NOT NULL REFERENCES target(id),
	from_state TEXT,
	to_state TEXT NOT NULL,
	reason TEXT
);
CREATE INDEX state_change_target_time ON state_change(target_id, time);
CREATE INDEX state_change_time ON state_change(time);

-- The change journal: one row per gslbctl change, written in the change's own transaction.
-- time is RFC 3339 UTC, actor user@host.  On a cluster node the rows are etcd's journal keys
-- mirrored: node is the node the change was made on, cluster_key the etcd key, so an entry
-- mirrored twice is stored once; both NULL on a standalone node.
CREATE TABLE journal (
	id INTEGER PRIMARY KEY,
	time TEXT NOT NULL,
	actor TEXT NOT NULL,
	command TEXT NOT NULL,
	summary TEXT NOT NULL,
	node TEXT,
	cluster_key TEXT UNIQUE
);

-- A cluster node (README "Two or more nameservers"): the settings gslbd --cluster records for
-- gslbctl by name (urls, prefix, node, lease, ca_file, cert_file, key_file, user,
-- password_file: paths, never a password).  Rows present make this a cluster node.
CREATE TABLE cluster_setting (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

-- The mirror's position: etcd's cluster id, the highest mod_revision applied, and gslbd's
-- connection to etcd as last recorded (changed: Unix seconds).  One row, absent before the first.
CREATE TABLE cluster_state (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	cluster_id INTEGER NOT NULL,
	applied_rev INTEGER NOT NULL,
	connected INTEGER NOT NULL CHECK (connected IN (0, 1)),
	changed INTEGER NOT NULL
);

-- Each pool key mirrored from etcd with its mod_revision, so no event older than what is stored
-- is applied over it; a deleted key stays (deleted = 1) until a full sync forgets it.
CREATE TABLE cluster_key (
	key TEXT PRIMARY KEY,
	mod_revision INTEGER NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))
) WITHOUT ROWID;

-- The cluster's nodes as last seen (last_seen: Unix seconds), and their verdicts on the health
-- targets by key (up 1 or 0), for gslbctl cluster status and status.
CREATE TABLE cluster_node (
	name TEXT PRIMARY KEY,
	live INTEGER NOT NULL CHECK (live IN (0, 1)),
	last_seen INTEGER NOT NULL,
	revision INTEGER NOT NULL,
	down_votes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE cluster_vote (
	node TEXT NOT NULL,
	target_key TEXT NOT NULL,
	up INTEGER NOT NULL CHECK (up IN (0, 1)),
	PRIMARY KEY (node, target_key)
) WITHOUT ROWID;
CREATE INDEX cluster_vote_target ON cluster_vote(target_key);

-- The configuration's generation, bumped by the triggers below on every change to a
-- configuration table.  Any commit changes PRAGMA data_version, the health loop's once a second
-- included; gslbd reads the configuration again only when this number moved too.
CREATE TABLE config_generation (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	generation INTEGER NOT NULL
);
INSERT INTO config_generation(id, generation) VALUES (1, 1);
CREATE TRIGGER pool_insert_generation AFTER INSERT ON pool BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER pool_update_generation AFTER UPDATE ON pool BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER pool_delete_generation AFTER DELETE ON pool BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_insert_generation AFTER INSERT ON member BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_update_generation AFTER UPDATE ON member BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_delete_generation AFTER DELETE ON member BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_address_insert_generation AFTER INSERT ON member_address BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_address_update_generation AFTER UPDATE ON member_address BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_address_delete_generation AFTER DELETE ON member_address BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_network_insert_generation AFTER INSERT ON member_network BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_network_update_generation AFTER UPDATE ON member_network BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_network_delete_generation AFTER DELETE ON member_network BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER health_check_insert_generation AFTER INSERT ON health_check BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER health_check_update_generation AFTER UPDATE ON health_check BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER health_check_delete_generation AFTER DELETE ON health_check BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

-- Each pool's revision (schema version 5): the configuration generation of the last write to
-- the pool or to anything of it (members, addresses, networks, checks), stamped by the triggers
-- below whoever writes.  gslbd reads the pools whose revision is at least the generation it read
-- last, and only those: a change to one pool of 100,000 reads one pool.  Keyed by name, not id, so
-- a pool deleted and added again (a cluster node's sync) is one row; a deleted pool's row stays,
-- and its revision tells gslbd that it is gone.  No index on rev: gslbd's scan of 100,000 rows
-- takes about 10 ms, while keeping an index costs every write (apply of 100,000 pools: a third
-- more CPU).
CREATE TABLE pool_rev (
	name TEXT PRIMARY KEY,
	rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER pool_insert_rev AFTER INSERT ON pool BEGIN
	INSERT INTO pool_rev(name, rev) SELECT NEW.name, 0
		WHERE NOT EXISTS (SELECT 1 FROM pool_rev WHERE name = NEW.name);
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = NEW.name;
END;
CREATE TRIGGER pool_update_rev AFTER UPDATE ON pool BEGIN
	INSERT INTO pool_rev(name, rev) SELECT NEW.name, 0
		WHERE NOT EXISTS (SELECT 1 FROM pool_rev WHERE name = NEW.name);
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = OLD.name;
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = NEW.name;
END;
CREATE TRIGGER pool_delete_rev AFTER DELETE ON pool BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = OLD.name;
END;
CREATE TRIGGER member_insert_rev AFTER INSERT ON member BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT name FROM pool WHERE id = NEW.pool_id);
END;
CREATE TRIGGER member_update_rev AFTER UPDATE ON member BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT name FROM pool WHERE id = OLD.pool_id);
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT name FROM pool WHERE id = NEW.pool_id);
END;
CREATE TRIGGER member_delete_rev AFTER DELETE ON member BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT name FROM pool WHERE id = OLD.pool_id);
END;
CREATE TRIGGER member_address_insert_rev AFTER INSERT ON member_address BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = NEW.member_id);
END;
CREATE TRIGGER member_address_update_rev AFTER UPDATE ON member_address BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = OLD.member_id);
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = NEW.member_id);
END;
CREATE TRIGGER member_address_delete_rev AFTER DELETE ON member_address BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = OLD.member_id);
END;
CREATE TRIGGER member_network_insert_rev AFTER INSERT ON member_network BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = NEW.member_id);
END;
CREATE TRIGGER member_network_update_rev AFTER UPDATE ON member_network BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = OLD.member_id);
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = NEW.member_id);
END;
CREATE TRIGGER member_network_delete_rev AFTER DELETE ON member_network BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = OLD.member_id);
END;
CREATE TRIGGER health_check_insert_rev AFTER INSERT ON health_check BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT name FROM pool WHERE id = NEW.pool_id);
END;
CREATE TRIGGER health_check_update_rev AFTER UPDATE ON health_check BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT name FROM pool WHERE id = OLD.pool_id);
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT name FROM pool WHERE id = NEW.pool_id);
END;
CREATE TRIGGER health_check_delete_rev AFTER DELETE ON health_check BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT name FROM pool WHERE id = OLD.pool_id);
END;
