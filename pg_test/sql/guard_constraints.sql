-- Rules validating-check, validating-foreign-key, blocking-unique-constraint and
-- exclusion-constraint: constraints that scan or index a populated table under a strong lock.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA con;
SET search_path = con, public;
CREATE EXTENSION btree_gist SCHEMA con;
CREATE TABLE customers (id bigint PRIMARY KEY);
INSERT INTO customers SELECT g FROM generate_series(1, 100) g;
VACUUM ANALYZE customers;
CREATE TABLE orders (id bigint, customer_id bigint, qty int, code text, room int, during tstzrange);
INSERT INTO orders SELECT g, 1 + g % 100, 1 + g % 5, 'c' || g, g, NULL FROM generate_series(1, 1000) g;
VACUUM ANALYZE orders;
ANALYZE customers, orders;

---------------------------------------------------------------- validating-check
ALTER TABLE orders ADD CONSTRAINT qty_positive CHECK (qty > 0);
ALTER TABLE orders ADD CHECK (qty < 100);
ALTER TABLE orders ADD COLUMN discount int CHECK (discount >= 0);
-- Safe way: NOT VALID, then VALIDATE in its own transaction.
ALTER TABLE orders ADD CONSTRAINT qty_positive CHECK (qty > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT qty_positive;
-- Allowed with the setting; with a directive; warn mode.
BEGIN;
SET LOCAL migrate_guard.allow = 'validating-check';
ALTER TABLE orders ADD CONSTRAINT qty_small CHECK (qty < 100);
ROLLBACK;
/* migrate_guard:allow validating-check */ ALTER TABLE orders ADD CONSTRAINT qty_small CHECK (qty < 100);
SET migrate_guard.mode = warn;
ALTER TABLE orders ADD CONSTRAINT qty_tiny CHECK (qty < 1000);
RESET migrate_guard.mode;

---------------------------------------------------------------- validating-foreign-key
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE orders ADD COLUMN backup_customer_id bigint DEFAULT 1 REFERENCES customers (id);
-- A foreign key on a column added empty in the same statement has nothing to check: passes.
ALTER TABLE orders ADD COLUMN referrer_id bigint REFERENCES customers (id);
ALTER TABLE orders ADD COLUMN agent_id bigint, ADD CONSTRAINT orders_agent_fk FOREIGN KEY (agent_id) REFERENCES customers (id);
-- Safe way.
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
-- Allowed with the setting; with a directive; warn mode.
ALTER TABLE orders ADD COLUMN payer_id bigint;
UPDATE orders SET payer_id = customer_id;
BEGIN;
SET LOCAL migrate_guard.allow = 'validating-foreign-key';
ALTER TABLE orders ADD CONSTRAINT orders_payer_fk FOREIGN KEY (payer_id) REFERENCES customers (id);
ROLLBACK;
/* migrate_guard:allow validating-foreign-key */ ALTER TABLE orders ADD CONSTRAINT orders_payer_fk FOREIGN KEY (payer_id) REFERENCES customers (id);
SET migrate_guard.mode = warn;
ALTER TABLE orders ADD CONSTRAINT orders_payer_fk2 FOREIGN KEY (payer_id) REFERENCES customers (id);
RESET migrate_guard.mode;

---------------------------------------------------------------- blocking-unique-constraint
ALTER TABLE orders ADD CONSTRAINT orders_code_key UNIQUE (code);
ALTER TABLE orders ADD PRIMARY KEY (id);
ALTER TABLE orders ADD COLUMN ref text UNIQUE;
ALTER TABLE orders ADD COLUMN new_id bigserial PRIMARY KEY;
-- Safe way: build the index concurrently, then attach it.
CREATE UNIQUE INDEX CONCURRENTLY orders_code_key ON orders (code);
ALTER TABLE orders ADD CONSTRAINT orders_code_key UNIQUE USING INDEX orders_code_key;
ALTER TABLE orders ADD CONSTRAINT orders_id_not_null CHECK (id IS NOT NULL) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_id_not_null;
ALTER TABLE orders ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX CONCURRENTLY orders_pkey ON orders (id);
ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_pkey;
-- Allowed with the setting; with a directive; warn mode.
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-unique-constraint';
ALTER TABLE orders ADD CONSTRAINT orders_room_key UNIQUE (room);
ROLLBACK;
/* migrate_guard:allow blocking-unique-constraint */ ALTER TABLE orders ADD CONSTRAINT orders_room_key UNIQUE (room);
SET migrate_guard.mode = warn;
ALTER TABLE orders ADD CONSTRAINT orders_room_key2 UNIQUE (room);
RESET migrate_guard.mode;

---------------------------------------------------------------- exclusion-constraint
ALTER TABLE orders ADD CONSTRAINT no_double_booking EXCLUDE USING gist (room WITH =, during WITH &&);
BEGIN;
SET LOCAL migrate_guard.allow = 'exclusion-constraint';
ALTER TABLE orders ADD CONSTRAINT no_double_booking EXCLUDE USING gist (room WITH =, during WITH &&);
ROLLBACK;
/* migrate_guard:allow exclusion-constraint */ ALTER TABLE orders ADD CONSTRAINT no_double_booking EXCLUDE USING gist (room WITH =, during WITH &&);
SET migrate_guard.mode = warn;
ALTER TABLE orders ADD CONSTRAINT no_double_booking2 EXCLUDE USING gist (room WITH =, during WITH &&);
RESET migrate_guard.mode;

---------------------------------------------------------------- exemptions for all four
-- A new table in this transaction, a temporary table, an empty table.
BEGIN;
CREATE TABLE fresh AS SELECT g AS id, g AS customer_id, g AS room FROM generate_series(1, 100) g;
ALTER TABLE fresh ADD CHECK (id > 0), ADD FOREIGN KEY (customer_id) REFERENCES customers (id),
  ADD UNIQUE (id), ADD EXCLUDE USING gist (room WITH =);
COMMIT;
CREATE TEMP TABLE scratch AS SELECT g AS id, g AS customer_id, g AS room FROM generate_series(1, 100) g;
ALTER TABLE scratch ADD CHECK (id > 0), ADD UNIQUE (id), ADD EXCLUDE USING gist (room WITH =);
CREATE TABLE empty_table (id int, customer_id bigint, room int);
ALTER TABLE empty_table ADD CHECK (id > 0), ADD FOREIGN KEY (customer_id) REFERENCES customers (id),
  ADD UNIQUE (id), ADD EXCLUDE USING gist (room WITH =);

-- Several unsafe subcommands: judged one by one, the message names the first, DETAIL the rest.
ALTER TABLE orders ADD COLUMN note text, ADD CONSTRAINT qty_max CHECK (qty < 50),
  ADD CONSTRAINT orders_room_uq UNIQUE (room);

-- Quoted and schema-qualified names.
CREATE SCHEMA "CON Sales";
CREATE TABLE "CON Sales"."Order Items" ("Item Id" int, "Customer" bigint);
INSERT INTO "CON Sales"."Order Items" VALUES (1, 1);
VACUUM ANALYZE "CON Sales"."Order Items";
ALTER TABLE "CON Sales"."Order Items" ADD CONSTRAINT "Item Id positive" CHECK ("Item Id" > 0);
ALTER TABLE "CON Sales"."Order Items" ADD CONSTRAINT "Customer FK" FOREIGN KEY ("Customer") REFERENCES con.customers (id);
ALTER TABLE "CON Sales"."Order Items" ADD CONSTRAINT "Item Key" UNIQUE ("Item Id");
ALTER TABLE "CON Sales"."Order Items" ADD CONSTRAINT "Item Excl" EXCLUDE USING gist ("Item Id" WITH =);
