-- Rule set-not-null: SET NOT NULL scans the table under ACCESS EXCLUSIVE unless a validated
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
-- CHECK (col IS NOT NULL) proves it.
CREATE SCHEMA snn;
SET search_path = snn, public;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text NOT NULL DEFAULT 'free');
INSERT INTO accounts SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 1000) g;
VACUUM ANALYZE accounts;
ANALYZE accounts;

-- Blocked, with the full message.
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;

-- The safe way from the hint: CHECK NOT VALID, VALIDATE, then SET NOT NULL passes.
ALTER TABLE accounts ADD CONSTRAINT accounts_email_not_null CHECK (email IS NOT NULL) NOT VALID;
-- Not yet validated: still blocked.
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_not_null;
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
ALTER TABLE accounts DROP CONSTRAINT accounts_email_not_null;
-- A wider validated CHECK that implies it works too.
ALTER TABLE accounts ADD COLUMN region text DEFAULT 'eu';
ALTER TABLE accounts ADD CONSTRAINT region_known CHECK (region IS NOT NULL AND region <> '') NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT region_known;
ALTER TABLE accounts ALTER COLUMN region SET NOT NULL;
-- A primary key over an index built beforehand still makes its columns NOT NULL: the same scan,
-- and the same way out.
CREATE TABLE devices (serial text, owner int);
INSERT INTO devices SELECT 's' || g, g FROM generate_series(1, 1000) g;
VACUUM ANALYZE devices;
CREATE UNIQUE INDEX CONCURRENTLY devices_serial_key ON devices (serial);
ALTER TABLE devices ADD CONSTRAINT devices_pkey PRIMARY KEY USING INDEX devices_serial_key;
ALTER TABLE devices ADD CONSTRAINT devices_serial_not_null CHECK (serial IS NOT NULL) NOT VALID;
ALTER TABLE devices VALIDATE CONSTRAINT devices_serial_not_null;
ALTER TABLE devices ADD CONSTRAINT devices_pkey PRIMARY KEY USING INDEX devices_serial_key;
-- Already NOT NULL: nothing to scan.
ALTER TABLE accounts ALTER COLUMN plan SET NOT NULL;

-- Allowed with the setting; with a directive.
ALTER TABLE accounts ADD COLUMN nick text DEFAULT 'n';
BEGIN;
SET LOCAL migrate_guard.allow = 'set-not-null';
ALTER TABLE accounts ALTER COLUMN nick SET NOT NULL;
ROLLBACK;
/* migrate_guard:allow set-not-null */ ALTER TABLE accounts ALTER COLUMN nick SET NOT NULL;

-- Warn mode.
ALTER TABLE accounts ADD COLUMN city text DEFAULT 'x';
SET migrate_guard.mode = warn;
ALTER TABLE accounts ALTER COLUMN city SET NOT NULL;
RESET migrate_guard.mode;

-- Exemptions: new table in this transaction, temporary table, empty table.
BEGIN;
CREATE TABLE fresh AS SELECT g AS id FROM generate_series(1, 100) g;
ALTER TABLE fresh ALTER COLUMN id SET NOT NULL;
COMMIT;
CREATE TEMP TABLE scratch AS SELECT g AS id FROM generate_series(1, 100) g;
ALTER TABLE scratch ALTER COLUMN id SET NOT NULL;
CREATE TABLE empty_table (id int);
ALTER TABLE empty_table ALTER COLUMN id SET NOT NULL;

-- Quoted and schema-qualified names.
CREATE SCHEMA "SNN Sales";
CREATE TABLE "SNN Sales"."Order Items" ("Item Id" int);
INSERT INTO "SNN Sales"."Order Items" VALUES (1);
VACUUM ANALYZE "SNN Sales"."Order Items";
ALTER TABLE "SNN Sales"."Order Items" ALTER COLUMN "Item Id" SET NOT NULL;
