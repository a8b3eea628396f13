-- SPDX-License-Identifier: MIT
-- Schema version 3 to 4, run by db_migrate() inside the transaction that sets PRAGMA user_version:
-- the notAfter of an https target's certificate in its state (README "Health checks").  Every row
-- of version 3 is kept.  The CREATE statement is the text of src/db/schema.sql, so a migrated file
-- and a new one have the same schema: the table is made anew and its rows copied, since ALTER
-- TABLE ADD COLUMN would leave other text in sqlite_master.

ALTER TABLE target_state RENAME TO target_state_v3;

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
INSERT INTO target_state(target_id, state, since, reason, last_probe, latency_ms)
	SELECT target_id, state, since, reason, last_probe, latency_ms
	FROM target_state_v3 ORDER BY target_id;
DROP TABLE target_state_v3;
