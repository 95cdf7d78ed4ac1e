-- Registered migrations: begin_migration / end_migration, linked history, checksums.
SET migrate_guard.lock_timeout = 0;
-- (PL/pgSQL line numbers of the functions are not part of their interface.)
\set SHOW_CONTEXT never
CREATE SCHEMA hm;
SET search_path = hm, public;
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset

SELECT migrate_guard.begin_migration('0001_create_orders', 'sha256:aaa');
SHOW migrate_guard.current_migration;
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);
CREATE INDEX orders_total_idx ON orders (total);
COMMENT ON TABLE orders IS 'orders';
SELECT migrate_guard.end_migration() AS statements;
SHOW migrate_guard.current_migration;
SELECT name, checksum, status, statement_count, applied_by, finished_at >= started_at AS finished_after_start
FROM migrate_guard.migrations WHERE name = '0001_create_orders';
SELECT h.command_tag, h.object_identity, m.name AS migration
FROM migrate_guard.history h LEFT JOIN migrate_guard.migrations m ON m.id = h.migration_id
WHERE h.id > :start ORDER BY h.id;

-- (A fixed finish time keeps the messages below the same from run to run.)
UPDATE migrate_guard.migrations SET finished_at = '2026-01-15 10:30:00+00' WHERE name = '0001_create_orders';
-- Applied again with the same checksum: reported, not run (false). A psql file can skip itself:
SELECT NOT migrate_guard.begin_migration('0001_create_orders', 'sha256:aaa') AS skip \gset
\if :skip
\echo 0001_create_orders is already applied: skipping it
\else
CREATE TABLE orders (id bigint);
\endif
-- ... with another checksum: the deployed migration was edited, an error (SQLSTATE MG002).
SELECT migrate_guard.begin_migration('0001_create_orders', 'sha256:bbb');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Without a checksum there is nothing to compare: reported as applied.
SELECT migrate_guard.begin_migration('0001_create_orders');

-- A migration in one transaction (psql -1, most tools): all or nothing, history included.
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset
BEGIN;
SELECT migrate_guard.begin_migration('0002_add_customer', 'sha256:ccc');
ALTER TABLE orders ADD COLUMN customer_id bigint;
SELECT migrate_guard.end_migration() AS statements;
COMMIT;
BEGIN;
SELECT migrate_guard.begin_migration('0003_rolled_back', 'sha256:ddd');
ALTER TABLE orders ADD COLUMN note text;
ROLLBACK;
-- The rolled-back migration left no row, no history and no open migration behind.
SHOW migrate_guard.current_migration;
SELECT name, status, statement_count FROM migrate_guard.migrations WHERE name LIKE '000%' ORDER BY id;
SELECT count(*) AS history_rows FROM migrate_guard.history WHERE id > :start;

-- Misuse is refused with a clear error and SQLSTATE, and changes nothing.
SELECT migrate_guard.end_migration();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.begin_migration(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.begin_migration('   ');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.begin_migration('0004_outer');
SELECT migrate_guard.begin_migration('0005_inner');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.end_migration();
SELECT count(*) AS bad_rows FROM migrate_guard.migrations WHERE name IN ('', '   ', '0005_inner');
-- Nobody but the extension sets the open migration.
CREATE ROLE mg_hm_app;
SET ROLE mg_hm_app;
SET migrate_guard.current_migration = '1';
RESET ROLE;

-- An attempt whose session died is marked abandoned when the migration is started again.
INSERT INTO migrate_guard.migrations (name, status, started_at, applied_by, backend_pid, backend_start)
VALUES ('0006_crashed', 'running', now() - interval '1 hour', 'postgres', 1, now() - interval '2 hours');
SELECT migrate_guard.begin_migration('0006_crashed', 'sha256:eee');
SELECT migrate_guard.end_migration() AS statements;
SELECT name, status FROM migrate_guard.migrations WHERE name = '0006_crashed' ORDER BY id;

-- migrate_guard.require_migration (superuser only): DDL outside a migration is rule manual-ddl.
SET migrate_guard.require_migration = on;
CREATE TABLE manual (id int);
ALTER TABLE orders ADD COLUMN manual_note text;
-- Inside a registered migration it runs.
SELECT migrate_guard.begin_migration('0007_manual_note', 'sha256:fff');
ALTER TABLE orders ADD COLUMN manual_note text;
SELECT migrate_guard.end_migration() AS statements;
-- Allowed with the setting; with a directive; warn mode.
BEGIN;
SET LOCAL migrate_guard.allow = 'manual-ddl';
CREATE TABLE manual (id int);
COMMIT;
/* migrate_guard:allow manual-ddl */ CREATE TABLE manual2 (id int);
SET migrate_guard.mode = warn;
CREATE TABLE manual3 (id int);
RESET migrate_guard.mode;
-- Temporary objects are not schema changes of the database.
CREATE TEMP TABLE scratch (id int);
ALTER TABLE scratch ADD COLUMN v text;
-- Quoted and schema-qualified names, in messages and in history.
CREATE TABLE "HM Sales"."Order Items" (id int);
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset
SELECT migrate_guard.begin_migration('0008 "quoted" names');
CREATE SCHEMA "HM Sales";
CREATE TABLE "HM Sales"."Order Items" (id int);
SELECT migrate_guard.end_migration() AS statements;
SELECT h.command_tag, h.object_identity, h.table_name, m.name AS migration
FROM migrate_guard.history h JOIN migrate_guard.migrations m ON m.id = h.migration_id
WHERE h.id > :start ORDER BY h.id;
RESET migrate_guard.require_migration;
SET ROLE mg_hm_app;
SET migrate_guard.require_migration = off;
RESET ROLE;
DROP ROLE mg_hm_app;

-- An override inside a migration: the overrides view says which rule, how, who, when, which
-- statement and which migration.
CREATE TABLE audited (id int PRIMARY KEY, v text);
INSERT INTO audited SELECT g, 'x' FROM generate_series(1, 500) g;
VACUUM ANALYZE audited;
SELECT migrate_guard.begin_migration('0009_index_audited', 'sha256:999');
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-index';
CREATE INDEX audited_v_idx ON audited (v);
COMMIT;
SELECT migrate_guard.end_migration() AS statements;
SELECT rule, via, session_user_name, current_user_name, table_name, statement, migration,
       executed_at BETWEEN now() - interval '1 minute' AND clock_timestamp() AS executed_recently
FROM migrate_guard.overrides WHERE migration = '0009_index_audited';
