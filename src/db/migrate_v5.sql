-- SPDX-License-Identifier: MIT
-- Schema version 4 to 5, run by db_migrate() inside the transaction that sets PRAGMA user_version:
-- a revision per pool, so gslbd reads again only the pools a change touched.  The statements are
-- the text of src/db/schema.sql, so a migrated file and a new one have the same schema.  Every pool
-- of version 4 gets revision 0, older than any generation: what gslbd read before the migration
-- stands, and the next write to a pool stamps it.

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

INSERT INTO pool_rev(name, rev)
	SELECT name, 0 FROM pool;
