-- SPDX-License-Identifier: MIT
-- Schema version 2 to 3, run by db_migrate() inside the transaction that sets PRAGMA user_version:
-- a check's quorum, the node and etcd key of journal rows, and the tables of a cluster node
-- (README "Two or more nameservers").  Every row of version 2 is kept.  The CREATE statements are
-- the text of src/db/schema.sql, so a migrated file and a new one have the same schema: the two
-- tables that gain columns are made anew and their rows copied, since ALTER TABLE ADD COLUMN
-- would leave other text in sqlite_master (and cannot add a UNIQUE column).

-- The old tables step aside, with their index and triggers, until they are dropped.
ALTER TABLE health_check RENAME TO health_check_v2;
ALTER TABLE journal RENAME TO journal_v2;

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

INSERT INTO health_check(id, pool_id, member_id, type, port, path, host, expect, match,
			 interval_ms, timeout_ms, rise, fall, target, insecure)
	SELECT id, pool_id, member_id, type, port, path, host, expect, match, interval_ms,
	       timeout_ms, rise, fall, target, insecure
	FROM health_check_v2 ORDER BY id;
DROP TABLE health_check_v2;
-- UNIQUE treats NULLs as distinct, so a pool's own check needs its own index.
CREATE UNIQUE INDEX health_check_pool ON health_check(pool_id) WHERE member_id IS NULL;
-- Deleting a member deletes its check (ON DELETE CASCADE): found by this index, not a scan of
-- every check (a cluster node replaces whole pools at a time, 100,000 in a full sync).
CREATE INDEX health_check_member ON health_check(member_id);
CREATE TRIGGER health_check_insert_generation AFTER INSERT ON health_check BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER health_check_update_generation AFTER UPDATE ON health_check BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER health_check_delete_generation AFTER DELETE ON health_check BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

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
INSERT INTO journal(id, time, actor, command, summary)
	SELECT id, time, actor, command, summary FROM journal_v2 ORDER BY id;
DROP TABLE journal_v2;

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
