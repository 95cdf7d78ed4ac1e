-- migrate_guard.history: one row per DDL statement that committed.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA hr;
SET search_path = hr, public;
SET application_name = 'history_test';
-- Rows of this test only, with the columns that change from run to run left out.
CREATE FUNCTION hr.since(first bigint)
RETURNS TABLE (n bigint, same_xact_as_previous boolean, command_tag text, object_type text, object_identity text,
               table_name text, statement text, verdict text, rules_fired text[], rules_allowed text[],
               allowed_via text[], who text, app text)
LANGUAGE sql AS $$
  SELECT row_number() OVER (ORDER BY id), transaction_id = lag(transaction_id) OVER (ORDER BY id),
         command_tag, object_type, object_identity, table_name, statement, verdict, rules_fired, rules_allowed,
         allowed_via, session_user_name || '/' || current_user_name, application_name
  FROM migrate_guard.history WHERE id > first ORDER BY id $$;
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset

-- Statements in their own transactions, and several in one.
CREATE TABLE accounts (id bigint PRIMARY KEY, email text);
INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 1000) g;
VACUUM ANALYZE accounts;
BEGIN;
ALTER TABLE accounts ADD COLUMN plan text;
COMMENT ON COLUMN accounts.plan IS 'billing plan';
CREATE TABLE plans (code text PRIMARY KEY, price numeric);
CREATE INDEX plans_price_idx ON plans (price);
COMMIT;
SELECT * FROM hr.since(:start);

-- A rolled-back transaction leaves nothing; neither does a rolled-back savepoint.
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset
BEGIN;
CREATE TABLE never_committed (id int);
ROLLBACK;
BEGIN;
CREATE TABLE kept_1 (id int);
SAVEPOINT s;
CREATE TABLE rolled_back (id int);
ALTER TABLE kept_1 ADD COLUMN rolled_back int;
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s2;
CREATE TABLE kept_2 (id int);
RELEASE SAVEPOINT s2;
COMMIT;
SELECT * FROM hr.since(:start);

-- A blocked statement is not a row (its transaction rolls back).
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset
CREATE INDEX accounts_email_idx ON accounts (email);
SELECT count(*) AS rows_after_block FROM migrate_guard.history WHERE id > :start;

-- Allowed and warned statements record which rules fired and how they were allowed.
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-index';
CREATE INDEX accounts_email_idx ON accounts (email);
COMMIT;
/* migrate_guard:allow rename-column, drop-column */ ALTER TABLE accounts RENAME COLUMN plan TO tier;
SET migrate_guard.mode = warn;
ALTER TABLE accounts ADD CONSTRAINT email_present CHECK (email IS NOT NULL);
RESET migrate_guard.mode;
SELECT * FROM hr.since(:start);

-- Each statement of a multi-statement string records its own text; DDL run by a DO block
-- records the block.
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset
CREATE TABLE multi_a (id int) \; CREATE TABLE multi_b (id int) \; COMMENT ON TABLE multi_a IS 'a';
DO $$ BEGIN EXECUTE 'CREATE TABLE hr.from_do (id int)'; END $$;
SELECT * FROM hr.since(:start);

-- Drops record what they removed (DROP INDEX CONCURRENTLY commits internally and still does).
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset
/* migrate_guard:allow drop-table */ DROP TABLE multi_a, multi_b;
DROP INDEX CONCURRENTLY accounts_email_idx;
CREATE INDEX CONCURRENTLY accounts_id_email ON accounts (id, email);
SELECT * FROM hr.since(:start);

-- Columns not shown above hold sane values.
SELECT count(*) = count(*) FILTER (WHERE executed_at BETWEEN now() - interval '1 hour' AND clock_timestamp()
                                     AND backend_pid = pg_backend_pid() AND transaction_id IS NOT NULL)
       AS all_rows_sane
FROM migrate_guard.history WHERE application_name = 'history_test';

-- With migrate_guard.record_history = off (superuser only), nothing is recorded.
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset
SET migrate_guard.record_history = off;
CREATE TABLE unrecorded (id int);
RESET migrate_guard.record_history;
SELECT count(*) AS unrecorded_rows FROM migrate_guard.history WHERE id > :start;

-- The views: recent DDL per table, and overrides.
SELECT command_tag, object_identity, verdict FROM migrate_guard.recent_ddl
WHERE table_name = 'hr.accounts' ORDER BY history_id;
SELECT rule, via, session_user_name, table_name, statement FROM migrate_guard.overrides
WHERE application_name = 'history_test' ORDER BY history_id;
