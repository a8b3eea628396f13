-- SPDX-License-Identifier: MIT
-- Schema version 1 to 2, run by db_migrate() inside the transaction that sets PRAGMA user_version:
-- the health tables refer to targets by integer id and probe results are stored compactly
-- (src/db/schema.sql says how); a configuration generation lets gslbd skip the re-reads that
-- health writes caused.  Every row of version 1 is kept.  The CREATE statements are the text of
-- src/db/schema.sql, so a migrated file and a new one have the same schema.

-- The old tables step aside (their indexes go with them, names and all, until they are dropped).
ALTER TABLE target_state RENAME TO target_state_v1;
ALTER TABLE probe_result RENAME TO probe_result_v1;
ALTER TABLE state_change RENAME TO state_change_v1;

-- Health state and history, written by gslbd's health loop.  A target is one probed thing,
-- named by its key (health_target_key(): "http 192.0.2.1:80 www.example.com/"); the other tables
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

-- The last probe of each target.  Times are Unix seconds, latency milliseconds.
CREATE TABLE target_state (
	target_id INTEGER PRIMARY KEY REFERENCES target(id),
	state TEXT NOT NULL,
	since INTEGER,
	reason TEXT,
	last_probe INTEGER,
	latency_ms REAL
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

-- Targets are numbered in key order, so the results below are inserted in primary key order.
INSERT INTO target(key)
	SELECT target_key FROM target_state_v1 WHERE target_key IS NOT NULL
	UNION SELECT target_key FROM probe_result_v1
	UNION SELECT target_key FROM state_change_v1;
INSERT INTO reason(text)
	SELECT DISTINCT reason FROM probe_result_v1 WHERE reason IS NOT NULL ORDER BY reason;

INSERT INTO target_state(target_id, state, since, reason, last_probe, latency_ms)
	SELECT t.id, s.state, s.since, s.reason, s.last_probe, s.latency_ms
	FROM target_state_v1 s JOIN target t ON t.key = s.target_key;

-- Version 1 kept whole seconds, and one target can have two results in a second: the n-th of
-- them gets n - 1 milliseconds, which keeps them all, in their order.
INSERT OR IGNORE INTO probe_result(target_id, time_ms, ok, latency_us, reason_id)
	SELECT t.id,
	       p.time * 1000 + min(999, row_number() OVER (PARTITION BY p.target_key, p.time
							    ORDER BY p.id) - 1),
	       p.ok, CAST(round(p.latency_ms * 1000) AS INTEGER), r.id
	FROM probe_result_v1 p JOIN target t ON t.key = p.target_key
	LEFT JOIN reason r ON r.text = p.reason
	ORDER BY 1, 2;

INSERT INTO state_change(id, time, target_id, from_state, to_state, reason)
	SELECT s.id, s.time, t.id, s.from_state, s.to_state, s.reason
	FROM state_change_v1 s JOIN target t ON t.key = s.target_key;

DROP TABLE target_state_v1;
DROP TABLE probe_result_v1;
DROP TABLE state_change_v1;
CREATE INDEX state_change_target_time ON state_change(target_id, time);
CREATE INDEX state_change_time ON state_change(time);

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
