-- Rules large-update and schema-and-data: data changes judged by the executor hook, inside a
-- registered migration or a transaction that has run DDL.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA dml;
SET search_path = dml, public;
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, normalized_email text);
INSERT INTO users SELECT g, 'User' || g || '@Example.com' FROM generate_series(1, 20000) g;
CREATE TABLE audit (id bigint, note text);
VACUUM ANALYZE users;
SHOW migrate_guard.max_rows;

-- Outside a migration and outside a DDL transaction, nothing is judged.
BEGIN;
UPDATE users SET normalized_email = lower(email);
ROLLBACK;
VACUUM ANALYZE users;

-- large-update inside a registered migration: blocked before any row is touched, with the
-- backfill call for this very statement.
SELECT migrate_guard.begin_migration('0007_normalize_emails', 'sha256:0007');
UPDATE users SET normalized_email = lower(email);
-- A WHERE clause stays in the backfill's filter; a DELETE gets batches of its own.
UPDATE users SET normalized_email = lower(email) WHERE email LIKE 'User%';
DELETE FROM users WHERE id > 0;
-- Under the threshold: passes.
UPDATE users SET normalized_email = lower(email) WHERE id <= 100;
-- An UPDATE through an alias gets batches, without a backfill call (the backfill's own UPDATE
-- has no alias).
UPDATE users u SET normalized_email = NULL WHERE u.id > 0;
-- The hint's backfill is the safe way: its batches pass inside the migration, even when each is
-- estimated past max_rows.
SET migrate_guard.max_rows = 5000;
SET client_min_messages = warning;
CALL migrate_guard.backfill('dml.users', 'normalized_email = lower(email)', 'normalized_email IS DISTINCT FROM lower(email)');
RESET client_min_messages;
RESET migrate_guard.max_rows;
SELECT count(*) FILTER (WHERE normalized_email = lower(email)) AS normalized FROM users;
SELECT migrate_guard.end_migration();
VACUUM ANALYZE users;

-- large-update in a transaction that has run DDL, whatever lock that DDL took.
BEGIN;
COMMENT ON TABLE users IS 'people';
UPDATE users SET normalized_email = NULL;
ROLLBACK;
-- A table created in the same transaction is nobody else's yet; a temporary table is the
-- session's own; EXPLAIN changes nothing.
BEGIN;
CREATE TABLE staging AS SELECT * FROM users;
UPDATE staging SET normalized_email = NULL;
CREATE TEMP TABLE scratch AS SELECT * FROM users;
UPDATE scratch SET normalized_email = NULL;
EXPLAIN (COSTS OFF) UPDATE users SET normalized_email = NULL;
ROLLBACK;
-- A savepoint rolled back takes its DDL with it.
BEGIN;
SAVEPOINT s;
COMMENT ON TABLE users IS 'people';
ROLLBACK TO SAVEPOINT s;
UPDATE users SET normalized_email = NULL WHERE id <= 15000;
ROLLBACK;
-- Inside a function, the UPDATE is judged all the same.
CREATE FUNCTION clear_emails() RETURNS void LANGUAGE sql AS $$ UPDATE dml.users SET normalized_email = NULL $$;
BEGIN;
COMMENT ON TABLE users IS 'people';
SELECT clear_emails();
ROLLBACK;

-- Allowed by the setting, by a directive; warned in warn mode; max_rows moves the threshold
-- (0 turns both rules off).
BEGIN;
COMMENT ON TABLE users IS 'people';
SET LOCAL migrate_guard.allow = 'large-update';
UPDATE users SET normalized_email = upper(email) WHERE id <= 15000;
COMMIT;
BEGIN;
COMMENT ON TABLE users IS 'people, again';
/* migrate_guard:allow large-update */ DELETE FROM audit; UPDATE users SET normalized_email = lower(email) /* migrate_guard:allow large-update */ WHERE id <= 15000;
COMMIT;
VACUUM ANALYZE users;
SET migrate_guard.mode = warn;
BEGIN;
COMMENT ON TABLE users IS 'people';
UPDATE users SET normalized_email = NULL WHERE id <= 15000;
ROLLBACK;
RESET migrate_guard.mode;
BEGIN;
COMMENT ON TABLE users IS 'people';
SET LOCAL migrate_guard.max_rows = 50000;
UPDATE users SET normalized_email = NULL WHERE id <= 15000;
SET LOCAL migrate_guard.max_rows = 0;
UPDATE users SET normalized_email = NULL;
ROLLBACK;
SET migrate_guard.max_rows = -1;
SET migrate_guard.max_rows = 'many';
VACUUM ANALYZE users;

-- schema-and-data: a large change under the ACCESS EXCLUSIVE lock of an ALTER TABLE (also
-- large-update: both rules are named).
BEGIN;
ALTER TABLE users ADD COLUMN display_name text;
UPDATE users SET display_name = email;
ROLLBACK;
-- Small changes that add up under the lock: judged once they pass max_rows in all.
BEGIN;
ALTER TABLE users ADD COLUMN display_name text;
INSERT INTO audit SELECT g, 'a' FROM generate_series(1, 6000) g;
INSERT INTO audit SELECT g, 'b' FROM generate_series(1, 6000) g;
ROLLBACK;
BEGIN;
ALTER TABLE users ADD COLUMN display_name text;
INSERT INTO audit SELECT g, 'a' FROM generate_series(1, 6000) g;
-- Estimated at 2000 rows, it inserts 6000: judged when it ends, on the rows really changed.
INSERT INTO audit SELECT g, 'c' FROM generate_series(1, 6000) g WHERE length(g::text) > 0;
ROLLBACK;
-- Rows inserted through a partitioned table are counted in its partitions.
CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
BEGIN;
ALTER TABLE users ADD COLUMN display_name text;
INSERT INTO events SELECT g, '2026-03-01' FROM generate_series(1, 12000) g WHERE length(g::text) > 0;
ROLLBACK;
-- The other order: a large change, then DDL that takes a strong lock.
BEGIN;
UPDATE users SET normalized_email = NULL WHERE id <= 15000;
ALTER TABLE users ADD COLUMN display_name text;
ROLLBACK;
-- A weak lock (SHARE UPDATE EXCLUSIVE) blocks no reader or writer: passes.
BEGIN;
UPDATE users SET normalized_email = NULL WHERE id <= 15000;
ALTER TABLE users ALTER COLUMN email SET STATISTICS 200;
ROLLBACK;
-- A strong lock on a table created in this transaction, or on an empty one, holds up nobody.
BEGIN;
CREATE TABLE fresh (id int);
ALTER TABLE fresh ADD COLUMN note text;
INSERT INTO audit SELECT g, 'a' FROM generate_series(1, 12000) g;
ROLLBACK;
-- A session that has not loaded the library yet (no DDL, no migrate_guard function so far):
-- the large change made before its first DDL statement is found all the same, from the
-- transaction's own locks and row counts, when that statement loads the library.
\c
SET migrate_guard.lock_timeout = 0;
SET search_path = dml, public;
SELECT count(*) AS library_loaded FROM pg_settings WHERE name = 'migrate_guard.max_rows';
BEGIN;
UPDATE users SET normalized_email = NULL WHERE id <= 15000;
ALTER TABLE users ADD COLUMN display_name text;
ROLLBACK;
SELECT count(*) AS library_loaded FROM pg_settings WHERE name = 'migrate_guard.max_rows';
-- Schema and data together on purpose: allowed once for the transaction.
BEGIN;
SET LOCAL migrate_guard.allow = 'schema-and-data, large-update';
ALTER TABLE users ADD COLUMN display_name text;
UPDATE users SET display_name = email;
UPDATE users SET display_name = upper(display_name) WHERE id <= 10;
COMMIT;
BEGIN;
UPDATE users SET normalized_email = NULL WHERE id <= 15000;
/* migrate_guard:allow schema-and-data */ ALTER TABLE users ADD COLUMN nick text;
ROLLBACK;

-- REFRESH MATERIALIZED VIEW CONCURRENTLY rewrites the view's rows with DELETEs and INSERTs of
-- its own: not data changes the rules are about.
CREATE MATERIALIZED VIEW user_domains AS SELECT id, split_part(email, '@', 2) AS domain, email FROM users;
CREATE UNIQUE INDEX CONCURRENTLY user_domains_id ON user_domains (id);
UPDATE users SET email = upper(email);
REFRESH MATERIALIZED VIEW CONCURRENTLY user_domains;
SELECT count(*) FROM user_domains WHERE email = upper(email);

-- History and the overrides view record the data changes that ran with a rule allowed.
SELECT command_tag, object_identity, verdict, rules_fired, rules_allowed, allowed_via, statement
FROM migrate_guard.history WHERE command_tag IN ('UPDATE', 'DELETE', 'INSERT') ORDER BY id;
SELECT rule, via, table_name, migration FROM migrate_guard.overrides
WHERE rule IN ('large-update', 'schema-and-data') ORDER BY history_id, rule;
RESET search_path;

-- check() judges a script's data changes the same way, with the planner's estimate of the rows
-- each would change (planned, never run).
SET search_path = dml, public;
VACUUM ANALYZE users;
SELECT statement_no, rule, verdict, message FROM migrate_guard.check($$
BEGIN;
ALTER TABLE users ADD COLUMN nickname text;
UPDATE users SET nickname = email;
COMMIT;
BEGIN;
UPDATE users SET normalized_email = NULL WHERE id <= 15000;
ALTER TABLE users ADD COLUMN nickname text;
COMMIT;
BEGIN;
COMMENT ON TABLE users IS 'people';
UPDATE users SET normalized_email = NULL WHERE id <= 100;
/* migrate_guard:allow large-update */ DELETE FROM users WHERE id > 100;
COMMIT;
SELECT migrate_guard.begin_migration('0008_prune');
DELETE FROM users USING audit WHERE audit.id = users.id OR users.id > 0;
SELECT migrate_guard.end_migration();
UPDATE users SET nickname = NULL;
SELECT migrate_guard.begin_migration('0009_nicknames');
UPDATE users SET nickname = lower(email) WHERE nickname IS NULL;
$$) ORDER BY statement_no, rule;
SELECT detail, hint FROM migrate_guard.check($$
SELECT migrate_guard.begin_migration('0009');
UPDATE users SET normalized_email = lower(email);
$$);
-- A savepoint rolled back takes its DDL with it in check() too.
SELECT statement_no, rule, verdict FROM migrate_guard.check($$
BEGIN;
SAVEPOINT s;
ALTER TABLE users ADD COLUMN nickname text;
ROLLBACK TO SAVEPOINT s;
UPDATE users SET normalized_email = NULL;
ALTER TABLE users ADD COLUMN nickname text;
UPDATE users SET nickname = email;
COMMIT;
$$) ORDER BY statement_no, rule;
-- Outside a migration and a DDL transaction, nothing to report.
SELECT count(*) FROM migrate_guard.check('UPDATE users SET normalized_email = NULL; DELETE FROM users;');
RESET search_path;
