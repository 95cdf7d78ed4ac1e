-- Rules rename-column and rename-table: renames break running clients, whatever the size.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA rn;
SET search_path = rn, public;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text);
INSERT INTO accounts SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 1000) g;
VACUUM ANALYZE accounts;
ANALYZE accounts;
CREATE VIEW active_accounts AS SELECT * FROM accounts WHERE id > 10;
CREATE MATERIALIZED VIEW account_count AS SELECT count(*) AS n FROM accounts;

-- Blocked, with the full message.
ALTER TABLE accounts RENAME COLUMN email TO email_address;
ALTER TABLE accounts RENAME email TO email_address;
ALTER VIEW active_accounts RENAME COLUMN email TO mail;
ALTER TABLE accounts RENAME TO users;
ALTER VIEW active_accounts RENAME TO current_accounts;
ALTER MATERIALIZED VIEW account_count RENAME TO accounts_total;

-- The safe way for a table: rename plus a view under the old name, deliberately allowed.
BEGIN;
SET LOCAL migrate_guard.allow = 'rename-table';
ALTER TABLE accounts RENAME TO users;
CREATE VIEW accounts AS SELECT * FROM users;
COMMIT;
INSERT INTO accounts (id, email) VALUES (5000, 'old-name@example.com');
SELECT count(*) FROM users;
-- Expand step for a column: add the new one beside the old one.
ALTER TABLE users ADD COLUMN email_address text;

-- Allowed with a directive; with the setting.
/* migrate_guard:allow rename-column */ ALTER TABLE users RENAME COLUMN email_address TO contact_email;
BEGIN;
SET LOCAL migrate_guard.allow = 'rename-column, rename-table';
ALTER TABLE users RENAME COLUMN contact_email TO contact;
ALTER VIEW active_accounts RENAME TO current_accounts;
COMMIT;

-- Warn mode.
SET migrate_guard.mode = warn;
ALTER TABLE users RENAME COLUMN contact TO contact_mail;
RESET migrate_guard.mode;

-- Exemptions: new table in this transaction, temporary table. An empty existing table is still
-- blocked: the clients that use it break whatever it holds.
BEGIN;
CREATE TABLE fresh (id int);
ALTER TABLE fresh RENAME COLUMN id TO fresh_id;
ALTER TABLE fresh RENAME TO fresher;
COMMIT;
CREATE TEMP TABLE scratch (id int);
ALTER TABLE scratch RENAME COLUMN id TO scratch_id;
ALTER TABLE scratch RENAME TO scratch2;
CREATE TABLE empty_table (id int);
ALTER TABLE empty_table RENAME COLUMN id TO empty_id;
-- Renaming an index or a sequence is not a client-visible rename.
ALTER INDEX accounts_pkey RENAME TO users_pkey;

-- Quoted and schema-qualified names.
CREATE SCHEMA "RN Sales";
CREATE TABLE "RN Sales"."Order Items" ("Item Id" int);
ALTER TABLE "RN Sales"."Order Items" RENAME COLUMN "Item Id" TO "Item ID";
ALTER TABLE "RN Sales"."Order Items" RENAME TO "Line Items";
