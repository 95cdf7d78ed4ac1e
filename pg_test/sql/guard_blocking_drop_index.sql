-- Rule blocking-drop-index: DROP INDEX without CONCURRENTLY on an existing table.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA bdi;
SET search_path = bdi, public;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text);
INSERT INTO accounts SELECT g, 'user' || g || '@example.com', NULL FROM generate_series(1, 1000) g;
VACUUM ANALYZE accounts;
ANALYZE accounts;
CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);
CREATE INDEX CONCURRENTLY accounts_plan_idx ON accounts (plan);

-- Blocked, with the full message; several indexes in one statement too.
DROP INDEX accounts_email_idx;
DROP INDEX IF EXISTS accounts_email_idx, accounts_plan_idx;

-- The safe alternative passes.
DROP INDEX CONCURRENTLY accounts_email_idx;

-- Allowed with the setting; with a directive.
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-drop-index';
DROP INDEX accounts_plan_idx;
ROLLBACK;
/* migrate_guard:allow blocking-drop-index */ DROP INDEX accounts_plan_idx;

-- Warn mode.
CREATE INDEX CONCURRENTLY accounts_plan_idx ON accounts (plan);
SET migrate_guard.mode = warn;
DROP INDEX accounts_plan_idx;
RESET migrate_guard.mode;

-- Exemptions: new table in this transaction, temporary table.
BEGIN;
CREATE TABLE fresh (id int);
CREATE INDEX fresh_id_idx ON fresh (id);
DROP INDEX fresh_id_idx;
COMMIT;
CREATE TEMP TABLE scratch (id int);
CREATE INDEX scratch_id_idx ON scratch (id);
DROP INDEX scratch_id_idx;
-- An empty existing table is still blocked: the ACCESS EXCLUSIVE lock request queues behind
-- every running query whatever the table holds (think of a busy, usually empty queue table).
CREATE TABLE job_queue (id bigint, payload text);
CREATE INDEX job_queue_id_idx ON job_queue (id);
DROP INDEX job_queue_id_idx;
-- A missing index is left to PostgreSQL.
DROP INDEX IF EXISTS no_such_index;

-- Quoted and schema-qualified names.
CREATE SCHEMA "BDI Sales";
CREATE TABLE "BDI Sales"."Order Items" ("Item Id" int);
INSERT INTO "BDI Sales"."Order Items" SELECT g FROM generate_series(1, 100) g;
VACUUM ANALYZE "BDI Sales"."Order Items";
CREATE INDEX CONCURRENTLY "Items By Id" ON "BDI Sales"."Order Items" ("Item Id");
DROP INDEX "BDI Sales"."Items By Id";
DROP INDEX CONCURRENTLY "BDI Sales"."Items By Id";
