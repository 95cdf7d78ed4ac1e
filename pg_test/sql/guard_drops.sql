-- Rules drop-column and drop-table: contract steps that break running code; on existing
-- tables they always need an explicit allow, whatever the tables hold.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA dr;
SET search_path = dr, public;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, legacy_flag boolean);
INSERT INTO accounts SELECT g, 'u' || g, false FROM generate_series(1, 1000) g;
VACUUM ANALYZE accounts;
CREATE TABLE audit_old (id bigint);
CREATE TABLE audit_older (id bigint);
ANALYZE accounts;

-- Blocked, with the full message (an empty existing table too: its clients still break).
ALTER TABLE accounts DROP COLUMN legacy_flag;
ALTER TABLE accounts DROP COLUMN IF EXISTS legacy_flag;
DROP TABLE audit_old;
DROP TABLE IF EXISTS audit_old, audit_older, no_such_table;
-- Missing objects are left to PostgreSQL.
ALTER TABLE accounts DROP COLUMN IF EXISTS no_such_column;
DROP TABLE IF EXISTS no_such_table;

-- The deliberate way: allowed for one transaction, or by a directive.
BEGIN;
SET LOCAL migrate_guard.allow = 'drop-column';
ALTER TABLE accounts DROP COLUMN legacy_flag;
COMMIT;
/* migrate_guard:allow drop-table */ DROP TABLE audit_old;

-- Warn mode.
SET migrate_guard.mode = warn;
DROP TABLE audit_older;
RESET migrate_guard.mode;

-- Exemptions: new table in this transaction, temporary table.
BEGIN;
CREATE TABLE fresh (id int, junk text);
ALTER TABLE fresh DROP COLUMN junk;
DROP TABLE fresh;
COMMIT;
CREATE TEMP TABLE scratch (id int, junk text);
ALTER TABLE scratch DROP COLUMN junk;
DROP TABLE scratch;

-- Quoted and schema-qualified names.
CREATE SCHEMA "DR Sales";
CREATE TABLE "DR Sales"."Order Items" ("Item Id" int, "Old Note" text);
ALTER TABLE "DR Sales"."Order Items" DROP COLUMN "Old Note";
DROP TABLE "DR Sales"."Order Items";
