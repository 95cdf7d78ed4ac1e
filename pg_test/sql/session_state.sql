-- Nothing migrate_guard does on its own behalf changes what the session sees: lastval(), the
-- currval() of the application's sequences, search_path, settings, or the error state.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA ss;
SET search_path = ss, public;
CREATE TABLE ss.invoices (id bigserial PRIMARY KEY, amount numeric);
INSERT INTO ss.invoices (amount) SELECT g FROM generate_series(1, 100) g;
VACUUM ANALYZE ss.invoices;

-- A fresh session has no lastval(), and DDL (recorded in history at commit) gives it none.
\c
SET migrate_guard.lock_timeout = 0;
SET search_path = ss, public;
CREATE TABLE ss.notes (id int);
ALTER TABLE ss.notes ADD COLUMN body text;
SELECT lastval();
SELECT currval('ss.invoices_id_seq');

-- The application's INSERT, then DDL in its own transaction, then the id it inserted.
INSERT INTO ss.invoices (amount) VALUES (42) RETURNING id;
CREATE INDEX CONCURRENTLY invoices_amount_idx ON ss.invoices (amount);
COMMENT ON TABLE ss.invoices IS 'customer invoices';
SELECT lastval() AS lastval_after_ddl, currval('ss.invoices_id_seq') AS currval_after_ddl;

-- The same with DDL in the application's transaction, with a warned and an allowed statement.
BEGIN;
INSERT INTO ss.invoices (amount) VALUES (43) RETURNING id;
ALTER TABLE ss.notes ADD COLUMN at timestamptz;
SET LOCAL migrate_guard.mode = warn;
ALTER TABLE ss.notes DROP COLUMN body;
SET LOCAL migrate_guard.mode = enforce;
SET LOCAL migrate_guard.allow = 'rename-column';
ALTER TABLE ss.invoices RENAME COLUMN amount TO total;
COMMIT;
SELECT lastval() AS lastval_after_commit;

VACUUM ANALYZE ss.invoices;
-- A statement the guard blocks leaves the transaction in the state PostgreSQL would: aborted,
-- and usable again after ROLLBACK TO SAVEPOINT, with lastval() unchanged.
BEGIN;
INSERT INTO ss.invoices (total) VALUES (44) RETURNING id;
SAVEPOINT before_block;
CREATE INDEX invoices_total_idx ON ss.invoices (total);
SELECT 1;
ROLLBACK TO SAVEPOINT before_block;
SELECT lastval() AS lastval_after_block;
COMMIT;

-- An error the guard catches inside itself (a bad type modifier, while deciding whether a type
-- change rewrites) leaves PostgreSQL's own error to the statement, and nothing behind.
\set VERBOSITY sqlstate
ALTER TABLE ss.invoices ALTER COLUMN total TYPE numeric(2000, 1);
\set VERBOSITY default
SELECT lastval() AS lastval_after_error;

-- Registering a migration and running a backfill leave lastval() alone too.
SELECT nextval('ss.invoices_id_seq') AS app_value;
SELECT migrate_guard.begin_migration('ss_0001');
ALTER TABLE ss.notes ADD COLUMN author text;
SELECT migrate_guard.end_migration();
SELECT lastval() AS lastval_after_migration;
UPDATE ss.invoices SET total = total;
SET client_min_messages = warning;
CALL migrate_guard.backfill('ss.invoices', 'total = total + 0', batch_size => 50);
RESET client_min_messages;
SELECT lastval() AS lastval_after_backfill;

-- search_path and every setting the session can see are as they were, DDL or not (the
-- lock_timeout safety net's SET LOCAL ends with its transaction).
SET migrate_guard.lock_timeout = '5s';
CREATE TEMP TABLE settings_before AS SELECT name, setting FROM pg_settings;
ALTER TABLE ss.notes ADD COLUMN edited_at timestamptz;
BEGIN;
ALTER TABLE ss.notes ADD COLUMN edited_by text;
SHOW lock_timeout;
COMMIT;
SELECT b.name, b.setting AS before, s.setting AS after
FROM settings_before b JOIN pg_settings s USING (name)
WHERE b.setting IS DISTINCT FROM s.setting;
SHOW search_path;
DROP TABLE settings_before;
SET migrate_guard.lock_timeout = 0;

-- Dropping the application's last sequence makes lastval() fail as it should (PostgreSQL's own
-- regression test sequence.sql checks this), DDL in between or not.
CREATE SEQUENCE ss.seq2;
SELECT nextval('ss.seq2');
SET migrate_guard.allow = 'all';
DROP SEQUENCE ss.seq2;
RESET migrate_guard.allow;
SELECT lastval();
RESET search_path;
