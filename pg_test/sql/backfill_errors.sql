-- migrate_guard.backfill refuses bad input before the first batch, with a clear error and
-- SQLSTATE, and then nothing has changed: no row of the table, no job.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA bfe;
SET search_path = bfe, public;
CREATE TABLE items (id int PRIMARY KEY, name text, name_upper text, qty int NOT NULL DEFAULT 0);
INSERT INTO items SELECT g, 'item ' || g, NULL, 0 FROM generate_series(1, 100) g;
VACUUM ANALYZE items;
CREATE VIEW items_view AS SELECT * FROM items;
CREATE TABLE parts (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (1000);
CREATE FUNCTION fingerprint() RETURNS text LANGUAGE sql AS
  $$ SELECT md5(string_agg(i::text, ',' ORDER BY id)) || ' / ' || (SELECT count(*) FROM migrate_guard.backfills WHERE table_name LIKE 'bfe.%')
     FROM bfe.items i $$;
SELECT fingerprint() AS before \gset
\set SHOW_CONTEXT never
\set ON_ERROR_STOP 0

-- Unknown or missing table; not a table.
CALL migrate_guard.backfill('no_such_table', 'name_upper = upper(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill(NULL, 'name_upper = upper(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items_view', 'name_upper = upper(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('parts', 'v = ''x''');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Clauses that do not parse, or that try to be more than a SET list and a condition.
CALL migrate_guard.backfill('items', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = = upper(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name); DELETE FROM items');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name) FROM items_view');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name) WHERE false');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', 'name_upper IS NULL) OR (true');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', 'id > 10 ORDER BY id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Unknown columns, functions and types: found by planning the first batch.
CALL migrate_guard.backfill('items', 'name_uper = upper(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(nmae)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = uppr(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'qty = name');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', 'qty + 1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A where clause that closes its parenthesis early is refused whatever the string settings.
SET standard_conforming_strings = off;
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', $w$name = 'a\'' ) OR (true) OR (name = ''$w$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET standard_conforming_strings;
-- The key it walks cannot be changed.
CALL migrate_guard.backfill('items', 'id = id + 1000');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Keys whose text form depends on settings cannot be walked.
CREATE TABLE measures (x double precision PRIMARY KEY, v text);
INSERT INTO measures VALUES (0.1, 'a');
VACUUM ANALYZE measures;
CALL migrate_guard.backfill('measures', 'v = upper(v)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Retries need READ COMMITTED.
SET default_transaction_isolation = 'repeatable read';
CALL migrate_guard.backfill('items', 'name_upper = upper(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET default_transaction_isolation;

-- Out-of-range options.
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', batch_size => 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', batch_size => -5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', pause => '-1 second');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', lock_timeout => '0');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', lock_timeout => '0.1 ms');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', lock_timeout => '30 days');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', max_retries => -1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill('items', 'name_upper = upper(name)', batch_size => 'many');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Inside a transaction block it could not commit between batches.
BEGIN;
CALL migrate_guard.backfill('items', 'name_upper = upper(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
SET client_min_messages = notice \; CALL migrate_guard.backfill('items', 'name_upper = upper(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Nor from a function (an atomic context): PostgreSQL's own error, before anything is written.
CREATE FUNCTION run_backfill() RETURNS void LANGUAGE plpgsql AS
  $$ BEGIN CALL migrate_guard.backfill('bfe.items', 'name_upper = upper(name)'); END $$;
SELECT run_backfill();
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The caller's privileges, nothing more: a role without UPDATE on the table is refused.
CREATE ROLE mg_bfe_reader;
GRANT USAGE ON SCHEMA bfe TO mg_bfe_reader;
GRANT SELECT ON items TO mg_bfe_reader;
SET ROLE mg_bfe_reader;
CALL migrate_guard.backfill('items', 'name_upper = upper(name)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... and cannot write the job table directly either.
DELETE FROM migrate_guard.backfills;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Jobs are private to their role: another role, even one that may update the same table,
-- neither sees, cancels, changes nor takes over a job that is not its own.
RESET ROLE;
CREATE TABLE shared (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO shared SELECT generate_series(1, 10);
VACUUM ANALYZE shared;
CREATE ROLE mg_bfe_writer;
CREATE ROLE mg_bfe_other;
GRANT USAGE ON SCHEMA bfe TO mg_bfe_writer, mg_bfe_other;
GRANT SELECT, UPDATE ON shared TO mg_bfe_writer, mg_bfe_other;
SET ROLE mg_bfe_writer;
SET client_min_messages = warning;
CALL migrate_guard.backfill('shared', 'n = n + 1');
RESET client_min_messages;
SELECT count(*) AS my_jobs FROM migrate_guard.list_backfills();
SELECT max(id) AS writer_job FROM migrate_guard.backfills \gset
RESET ROLE;
-- (As if it had failed half way: a job the same CALL would resume.)
UPDATE migrate_guard.backfills SET status = 'failed' WHERE id = :writer_job;
SET ROLE mg_bfe_other;
SELECT count(*) AS visible_jobs FROM migrate_guard.list_backfills();
SELECT migrate_guard.cancel_backfill(:writer_job);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE migrate_guard.backfills SET status = 'abandoned' WHERE id = :writer_job;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard._backfill_job_batch(:writer_job, '{10}', 0, 0, 0, NULL, true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- The same CALL starts a job of its own instead of resuming the writer's.
SET client_min_messages = warning;
CALL migrate_guard.backfill('shared', 'n = n + 1');
RESET client_min_messages;
RESET ROLE;
SELECT run_by, status, batches FROM migrate_guard.backfills WHERE table_name = 'bfe.shared' ORDER BY id;
SELECT n, count(*) FROM shared GROUP BY n;
DELETE FROM migrate_guard.backfills WHERE table_name = 'bfe.shared';
/* migrate_guard:allow drop-table */ DROP TABLE shared;

-- Nothing changed.
SELECT fingerprint() = :'before' AS nothing_changed;
SELECT count(*) AS jobs FROM migrate_guard.backfills WHERE table_name LIKE 'bfe.%';

-- Job functions: unknown jobs, and jobs of other roles.
SELECT migrate_guard.cancel_backfill(424242);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM migrate_guard.backfill_plan('items', 'name_upper = upper(name)', batch_size => 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP FUNCTION run_backfill();
REVOKE ALL ON SCHEMA bfe FROM mg_bfe_reader, mg_bfe_writer, mg_bfe_other;
REVOKE ALL ON items FROM mg_bfe_reader;
DROP ROLE mg_bfe_reader;
DROP ROLE mg_bfe_writer;
DROP ROLE mg_bfe_other;
