-- Rule column-type-rewrite: ALTER COLUMN ... TYPE that rewrites the table and its indexes.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA ctr;
SET search_path = ctr, public;
CREATE TABLE items (id int PRIMARY KEY, sku varchar(20), price numeric(10,2), note text,
                    seen timestamp, qty smallint);
INSERT INTO items SELECT g, 'sku' || g, g, 'n', timestamp '2026-01-01', 1 FROM generate_series(1, 1000) g;
VACUUM ANALYZE items;
ANALYZE items;

-- Blocked, with the full message.
ALTER TABLE items ALTER COLUMN id TYPE bigint;
ALTER TABLE items ALTER COLUMN sku TYPE varchar(10);
ALTER TABLE items ALTER COLUMN price TYPE numeric(10,3);
ALTER TABLE items ALTER COLUMN qty TYPE int;
ALTER TABLE items ALTER COLUMN note TYPE jsonb USING to_jsonb(note);
-- Any USING expression other than the column itself forces a rewrite.
ALTER TABLE items ALTER COLUMN note TYPE text USING upper(note);

-- Changes PostgreSQL makes without a rewrite pass.
ALTER TABLE items ALTER COLUMN sku TYPE varchar(40);
ALTER TABLE items ALTER COLUMN sku TYPE varchar;
ALTER TABLE items ALTER COLUMN sku TYPE text;
ALTER TABLE items ALTER COLUMN price TYPE numeric(14,2);
ALTER TABLE items ALTER COLUMN price TYPE numeric;
ALTER TABLE items ALTER COLUMN note TYPE text USING note;
ALTER TABLE items ALTER COLUMN note TYPE varchar;
-- timestamp -> timestamptz is free only when the session time zone is UTC.
SET TimeZone = 'UTC';
ALTER TABLE items ALTER COLUMN seen TYPE timestamptz;
SET TimeZone = 'Europe/Paris';
ALTER TABLE items ALTER COLUMN seen TYPE timestamp;
RESET TimeZone;

-- The safe way from the hint: a new column beside the old one.
ALTER TABLE items ADD COLUMN id_new bigint;

-- Allowed with the setting; with a directive.
BEGIN;
SET LOCAL migrate_guard.allow = 'column-type-rewrite';
ALTER TABLE items ALTER COLUMN id TYPE bigint;
ROLLBACK;
/* migrate_guard:allow column-type-rewrite */ ALTER TABLE items ALTER COLUMN qty TYPE int;

-- Warn mode.
SET migrate_guard.mode = warn;
ALTER TABLE items ALTER COLUMN price TYPE numeric(10,4);
RESET migrate_guard.mode;

-- Exemptions: new table in this transaction, temporary table, empty table.
BEGIN;
CREATE TABLE fresh AS SELECT g AS id FROM generate_series(1, 100) g;
ALTER TABLE fresh ALTER COLUMN id TYPE bigint;
COMMIT;
CREATE TEMP TABLE scratch AS SELECT g AS id FROM generate_series(1, 100) g;
ALTER TABLE scratch ALTER COLUMN id TYPE bigint;
CREATE TABLE empty_table (id int);
ALTER TABLE empty_table ALTER COLUMN id TYPE bigint;

-- Quoted and schema-qualified names.
CREATE SCHEMA "CTR Sales";
CREATE TABLE "CTR Sales"."Order Items" ("Item Id" int);
INSERT INTO "CTR Sales"."Order Items" VALUES (1);
VACUUM ANALYZE "CTR Sales"."Order Items";
ALTER TABLE "CTR Sales"."Order Items" ALTER COLUMN "Item Id" TYPE bigint;
