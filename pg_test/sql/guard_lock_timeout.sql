-- The lock_timeout safety net, and rule lock-timeout for databases that demand one.
CREATE SCHEMA lt;
SET search_path = lt, public;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text);
INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 100) g;
VACUUM ANALYZE accounts;
SHOW migrate_guard.lock_timeout;
SHOW lock_timeout;

-- A statement that needs a lock stronger than SHARE UPDATE EXCLUSIVE on an existing table, with
-- no lock_timeout: the guard sets one for the rest of the transaction and says so.
BEGIN;
ALTER TABLE accounts ADD COLUMN plan text;
SHOW lock_timeout;
COMMIT;
SHOW lock_timeout;
-- It says so once per session: later statements get the same protection without the notice.
BEGIN;
ALTER TABLE accounts ADD COLUMN plan_since date;
SHOW lock_timeout;
COMMIT;
-- Other strong locks: CREATE TRIGGER (SHARE ROW EXCLUSIVE; a new session, to see its notice),
-- a foreign key to an existing table.
\c
SET search_path = lt, public;
CREATE FUNCTION lt.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
BEGIN;
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION lt.touch();
SHOW lock_timeout;
COMMIT;
BEGIN;
CREATE TABLE invoices (id int, account_id bigint REFERENCES accounts (id));
SHOW lock_timeout;
COMMIT;
-- Even a NOT VALID constraint needs ACCESS EXCLUSIVE, if only for a moment.
BEGIN;
ALTER TABLE accounts ADD CONSTRAINT email_present CHECK (email IS NOT NULL) NOT VALID;
SHOW lock_timeout;
COMMIT;
-- Weak locks (SHARE UPDATE EXCLUSIVE) and new tables get nothing.
BEGIN;
ALTER TABLE accounts VALIDATE CONSTRAINT email_present;
ALTER TABLE accounts ALTER COLUMN email SET STATISTICS 500;
SHOW lock_timeout;
COMMIT;
BEGIN;
CREATE TABLE fresh (id int);
ALTER TABLE fresh ADD COLUMN v text;
SHOW lock_timeout;
COMMIT;
-- A lock_timeout the session chose is left alone.
SET lock_timeout = '250ms';
BEGIN;
ALTER TABLE accounts ADD COLUMN tier text;
SHOW lock_timeout;
COMMIT;
RESET lock_timeout;
-- The value is configurable; 0 turns the safety net off.
SET migrate_guard.lock_timeout = '1500ms';
BEGIN;
ALTER TABLE accounts ADD COLUMN region text;
SHOW lock_timeout;
ROLLBACK;
SET migrate_guard.lock_timeout = 0;
BEGIN;
ALTER TABLE accounts ADD COLUMN region text;
SHOW lock_timeout;
ROLLBACK;
RESET migrate_guard.lock_timeout;

-- Rule lock-timeout: with migrate_guard.require_lock_timeout on (superuser-only), a missing
-- lock_timeout is an error instead.
SET migrate_guard.require_lock_timeout = on;
ALTER TABLE accounts ADD COLUMN region text;
DROP INDEX accounts_pkey;
-- The safe way: set one.
BEGIN;
SET LOCAL lock_timeout = '2s';
ALTER TABLE accounts ADD COLUMN region text;
COMMIT;
-- Allowed with the setting; with a directive; warn mode.
BEGIN;
SET LOCAL migrate_guard.allow = 'lock-timeout';
ALTER TABLE accounts ADD COLUMN country text;
ROLLBACK;
/* migrate_guard:allow lock-timeout */ ALTER TABLE accounts ADD COLUMN country text;
SET migrate_guard.mode = warn;
ALTER TABLE accounts ADD COLUMN city text;
RESET migrate_guard.mode;
-- Exemptions: new table in this transaction, temporary table (an empty table still queues).
BEGIN;
CREATE TABLE fresh2 (id int);
ALTER TABLE fresh2 ADD COLUMN v text;
COMMIT;
CREATE TEMP TABLE scratch (id int);
ALTER TABLE scratch ADD COLUMN v text;
CREATE TABLE empty_table (id int);
ALTER TABLE empty_table ADD COLUMN v text;
-- Quoted and schema-qualified names.
CREATE SCHEMA "LT Sales";
CREATE TABLE "LT Sales"."Order Items" ("Item Id" int);
ALTER TABLE "LT Sales"."Order Items" ADD COLUMN "Note" text;
RESET migrate_guard.require_lock_timeout;
-- Only superusers can change require_lock_timeout.
CREATE ROLE mg_lt_app;
SET ROLE mg_lt_app;
SET migrate_guard.require_lock_timeout = off;
RESET ROLE;
DROP ROLE mg_lt_app;
