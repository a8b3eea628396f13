-- SPDX-License-Identifier: MIT
-- Schema version 5 to 6, run by db_migrate() inside the transaction that sets PRAGMA user_version:
-- alias members' host names and what gslbd resolved for them (README "Alias members"), and the
-- zones' DNSSEC signing keys (README "DNSSEC").  New tables only; every row of version 5 is
-- kept.  The statements are the text of src/db/schema.sql, so a migrated file and a new one have
-- the same schema.

-- Alias members (schema version 6, README "Alias members"): a member's host name, whose A and
-- AAAA records gslbd resolves itself and serves as the member's addresses, beside any in
-- member_address.  name is the lowercased FQDN with its trailing dot; one per member.
CREATE TABLE member_alias (
	member_id INTEGER PRIMARY KEY REFERENCES member(id) ON DELETE CASCADE,
	name TEXT NOT NULL
);
CREATE TRIGGER member_alias_insert_generation AFTER INSERT ON member_alias BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_alias_update_generation AFTER UPDATE ON member_alias BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_alias_delete_generation AFTER DELETE ON member_alias BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER member_alias_insert_rev AFTER INSERT ON member_alias BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = NEW.member_id);
END;
CREATE TRIGGER member_alias_update_rev AFTER UPDATE ON member_alias BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = OLD.member_id);
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = NEW.member_id);
END;
CREATE TRIGGER member_alias_delete_rev AFTER DELETE ON member_alias BEGIN
	UPDATE pool_rev SET rev = (SELECT generation FROM config_generation WHERE id = 1)
		WHERE name = (SELECT pool.name FROM pool JOIN member ON member.pool_id = pool.id
			WHERE member.id = OLD.member_id);
END;

-- What gslbd last resolved for each alias host name, written by gslbd alone and kept per node
-- like the health state (each node resolves for itself; nothing of it goes through etcd):
-- addresses are the canonical inet_ntop() forms, comma-separated, '' when the name has none and
-- NULL when it never resolved; resolved and expires are Unix seconds; failures counts the
-- failed resolutions since the last success, whose reason and time are error and error_time.  A
-- row stays when its name leaves the configuration: its last good addresses come back with it.
CREATE TABLE alias_state (
	name TEXT PRIMARY KEY,
	addresses TEXT,
	resolved INTEGER,
	expires INTEGER,
	failures INTEGER NOT NULL DEFAULT 0,
	error TEXT,
	error_time INTEGER
) WITHOUT ROWID;

-- DNSSEC signing keys (schema version 6, README "DNSSEC"): one combined signing key (CSK) per
-- signed zone, two during a rollover; a zone is signed while it has a key.  zone is the
-- lowercased FQDN with its trailing dot; algorithm the DNSSEC number (13 ECDSAP256SHA256,
-- 15 ED25519); flags the DNSKEY flags (257); public_key the DNSKEY RDATA's public key field;
-- private_key the private key in PKCS#8 DER.  The times are Unix seconds and give the key's
-- life: in the DNSKEY RRset from publish, signing from active, no longer signing from retire,
-- gone from remove (NULL: not planned yet).  In a cluster the rows come from etcd, so every
-- node signs with the same keys.
CREATE TABLE dnssec_key (
	id INTEGER PRIMARY KEY,
	zone TEXT NOT NULL,
	algorithm INTEGER NOT NULL CHECK (algorithm IN (13, 15)),
	key_tag INTEGER NOT NULL CHECK (key_tag BETWEEN 0 AND 65535),
	flags INTEGER NOT NULL DEFAULT 257 CHECK (flags BETWEEN 0 AND 65535),
	public_key BLOB NOT NULL,
	private_key BLOB NOT NULL,
	created INTEGER NOT NULL,
	publish INTEGER NOT NULL,
	active INTEGER,
	retire INTEGER,
	remove INTEGER,
	UNIQUE (zone, public_key)
);
CREATE TRIGGER dnssec_key_insert_generation AFTER INSERT ON dnssec_key BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER dnssec_key_update_generation AFTER UPDATE ON dnssec_key BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER dnssec_key_delete_generation AFTER DELETE ON dnssec_key BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
