-- Rule add-column-rewrite: ADD COLUMN whose values are computed per row rewrites the table.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA acr;
SET search_path = acr, public;
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2));
INSERT INTO orders SELECT g, g FROM generate_series(1, 1000) g;
VACUUM ANALYZE orders;
ANALYZE orders;

-- Blocked, with the full message: volatile defaults (decided from the catalog), serial,
-- identity, stored generated columns.
ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
ALTER TABLE orders ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();
ALTER TABLE orders ADD COLUMN weight float8 DEFAULT random();
CREATE SEQUENCE order_numbers;
ALTER TABLE orders ADD COLUMN order_no bigint DEFAULT nextval('order_numbers');
ALTER TABLE orders ADD COLUMN seq bigserial;
ALTER TABLE orders ADD COLUMN ident int GENERATED ALWAYS AS IDENTITY;
ALTER TABLE orders ADD COLUMN total_cents bigint GENERATED ALWAYS AS ((total * 100)::bigint) STORED;
-- A user-defined volatile function counts too: volatility comes from pg_proc, not a name list.
CREATE FUNCTION acr.next_code() RETURNS text LANGUAGE sql VOLATILE AS $$ SELECT md5(random()::text) $$;
ALTER TABLE orders ADD COLUMN code text DEFAULT acr.next_code();
-- A domain with constraints: PostgreSQL checks the new value of every row, default or not.
CREATE DOMAIN acr.positive_int AS int CHECK (VALUE > 0);
CREATE DOMAIN acr.any_int AS int;
ALTER TABLE orders ADD COLUMN rating acr.positive_int DEFAULT 1;
ALTER TABLE orders ADD COLUMN rating acr.positive_int;
-- (A domain without constraints is its base type; an array of the domain checks nothing.)
ALTER TABLE orders ADD COLUMN plain acr.any_int DEFAULT 1;
ALTER TABLE orders ADD COLUMN ratings acr.positive_int[];

-- Constant and stable defaults are instant since PostgreSQL 11: they pass.
ALTER TABLE orders ADD COLUMN created_at timestamptz DEFAULT now();
ALTER TABLE orders ADD COLUMN updated_at timestamptz DEFAULT CURRENT_TIMESTAMP;
ALTER TABLE orders ADD COLUMN attrs jsonb DEFAULT '{}';
ALTER TABLE orders ADD COLUMN tags text[] DEFAULT ARRAY[]::text[];
ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new';
CREATE FUNCTION acr.default_region() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'eu' $$;
ALTER TABLE orders ADD COLUMN region text DEFAULT acr.default_region();

-- The safe way from the hint: add without the default, set it for new rows, backfill later.
ALTER TABLE orders ADD COLUMN public_id uuid;
ALTER TABLE orders ALTER COLUMN public_id SET DEFAULT gen_random_uuid();

-- Allowed with the setting; with a directive.
BEGIN;
SET LOCAL migrate_guard.allow = 'add-column-rewrite';
ALTER TABLE orders ADD COLUMN seq bigserial;
ROLLBACK;
/* migrate_guard:allow add-column-rewrite */ ALTER TABLE orders ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();

-- Warn mode.
SET migrate_guard.mode = warn;
ALTER TABLE orders ADD COLUMN weight float8 DEFAULT random();
RESET migrate_guard.mode;

-- Exemptions: new table in this transaction, temporary table, empty table.
BEGIN;
CREATE TABLE fresh AS SELECT g AS id FROM generate_series(1, 100) g;
ALTER TABLE fresh ADD COLUMN uid uuid DEFAULT gen_random_uuid();
COMMIT;
CREATE TEMP TABLE scratch AS SELECT g AS id FROM generate_series(1, 100) g;
ALTER TABLE scratch ADD COLUMN seq bigserial;
CREATE TABLE empty_table (id int);
ALTER TABLE empty_table ADD COLUMN uid uuid DEFAULT gen_random_uuid();

-- Quoted and schema-qualified names.
CREATE SCHEMA "ACR Sales";
CREATE TABLE "ACR Sales"."Order Items" ("Item Id" int);
INSERT INTO "ACR Sales"."Order Items" VALUES (1);
VACUUM ANALYZE "ACR Sales"."Order Items";
ALTER TABLE "ACR Sales"."Order Items" ADD COLUMN "Line No" serial;
