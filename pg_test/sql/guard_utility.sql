-- Commands event triggers never see, judged by the utility hook (ProcessUtility_hook) in every
-- session that has loaded the library (this one has: its first DDL statement loads it):
-- blocking-rewrite (CLUSTER, VACUUM FULL), blocking-reindex (REINDEX before 17: versions.sql),
-- and inside a registered migration or a transaction that ran DDL, truncate-table and
-- explicit-lock. check() judges the same statements before the deploy.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA ut;
SET search_path = ut, public;
CREATE TABLE orders (id int PRIMARY KEY, customer int, note text);
CREATE INDEX orders_customer ON orders (customer);
INSERT INTO orders SELECT g, g % 50, 'n' FROM generate_series(1, 1000) g;
CREATE TABLE lines (id int PRIMARY KEY, order_id int REFERENCES orders, qty int);
INSERT INTO lines SELECT g, g, 1 FROM generate_series(1, 500) g;
CREATE TABLE empty_one (id int PRIMARY KEY);
CREATE TABLE parent (id int);
CREATE TABLE child () INHERITS (parent);
INSERT INTO child SELECT g FROM generate_series(1, 100) g;
CREATE TABLE scratch (id int);
INSERT INTO scratch SELECT g FROM generate_series(1, 100) g;
ANALYZE orders, lines, child, scratch;

---------------------------------------------------------------- blocking-rewrite
CLUSTER orders USING orders_customer;
VACUUM FULL orders;
VACUUM (FULL, ANALYZE) orders, lines;
-- Every table at once.
VACUUM FULL;
-- Passes: plain VACUUM, FULL false, an empty table, a table created in this transaction.
VACUUM orders;
VACUUM (FULL false) orders;
VACUUM FULL empty_one;
BEGIN;
CREATE TABLE fresh (id int PRIMARY KEY);
INSERT INTO fresh SELECT generate_series(1, 10);
CLUSTER fresh USING fresh_pkey;
ROLLBACK;
-- In a transaction block VACUUM is PostgreSQL's to refuse.
BEGIN;
VACUUM FULL orders;
ROLLBACK;
-- Allowed with a directive; warn mode.
/* migrate_guard:allow blocking-rewrite */ VACUUM FULL orders;
SET migrate_guard.mode = warn;
CLUSTER orders USING orders_pkey;
RESET migrate_guard.mode;

---------------------------------------------------------------- truncate-table
-- Outside a migration, in a transaction without DDL: an application's business, not judged.
TRUNCATE scratch;
-- In a transaction that ran DDL: blocked.
BEGIN;
ALTER TABLE orders ADD COLUMN shipped boolean;
TRUNCATE orders, empty_one;
ROLLBACK;
-- In a registered migration: blocked, judged by what it really empties.
SELECT migrate_guard.begin_migration('utility-truncate') IS NOT NULL AS began;
-- The parent holds no rows itself; its inheritance child does.
TRUNCATE parent;
-- ONLY the (empty) parent: passes.
TRUNCATE ONLY parent;
-- CASCADE empties the table that references it too.
TRUNCATE empty_one, lines CASCADE;
-- An empty table passes; so does a table created in the same transaction.
TRUNCATE empty_one;
BEGIN;
CREATE TABLE staged (id int);
INSERT INTO staged VALUES (1);
TRUNCATE staged;
COMMIT;
-- Inside a function the hook sees it as well.
DO $$ BEGIN TRUNCATE ut.child; END $$;
-- Allowed with the setting.
BEGIN;
SET LOCAL migrate_guard.allow = 'truncate-table';
TRUNCATE child;
ROLLBACK;
SELECT count(*) AS child_rows_kept FROM child;
-- The hint's safe way: DELETE in batches that commit one by one (here a procedure; each batch
-- is a transaction of its own, far under migrate_guard.max_rows). Still in the migration.
CREATE TABLE purgeable (id int PRIMARY KEY);
INSERT INTO purgeable SELECT g FROM generate_series(1, 100) g;
CREATE PROCEDURE ut.purge() LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
  LOOP
    DELETE FROM ut.purgeable WHERE id IN (SELECT id FROM ut.purgeable ORDER BY id LIMIT 30);
    GET DIAGNOSTICS n = ROW_COUNT;
    EXIT WHEN n = 0;
    COMMIT;
  END LOOP;
END $$;
SELECT rule, verdict FROM migrate_guard.check('CALL ut.purge();');
CALL ut.purge();
SELECT count(*) AS purgeable_rows_left FROM purgeable;

---------------------------------------------------------------- explicit-lock
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;
BEGIN;
SET LOCAL lock_timeout = '2s';
LOCK TABLE orders, lines IN SHARE MODE NOWAIT;
ROLLBACK;
-- Inside a function a LOCK is the function's own way of working (pg_partman's create_parent
-- locks the parent it partitions): not judged.
DO $$ BEGIN LOCK TABLE ut.orders IN ACCESS EXCLUSIVE MODE; END $$;
-- Weak locks pass: reads and writes go on.
BEGIN;
LOCK TABLE orders IN ROW EXCLUSIVE MODE;
LOCK TABLE orders IN SHARE UPDATE EXCLUSIVE MODE;
COMMIT;
-- Allowed with a directive: the lock is then held, and a later large data change is judged
-- with it (schema-and-data, see guard_data_changes).
BEGIN;
/* migrate_guard:allow explicit-lock */ LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;
SELECT mode, granted FROM pg_locks WHERE relation = 'ut.orders'::regclass AND pid = pg_backend_pid() AND mode = 'AccessExclusiveLock';
ROLLBACK;
SELECT migrate_guard.end_migration() IS NOT NULL AS ended;
-- Outside a migration and without DDL: not judged.
BEGIN;
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
-- History records what ran with a rule allowed or warned about.
SELECT command_tag, object_identity, rules_fired, verdict FROM migrate_guard.history
 WHERE object_identity LIKE 'ut.%' AND command_tag IN ('VACUUM', 'CLUSTER', 'TRUNCATE TABLE', 'LOCK TABLE')
 ORDER BY id;

---------------------------------------------------------------- check() sees the same
-- (TRUNCATE and LOCK: in a migration the script registers, or in a block that ran DDL; LOCK
-- outside a block is PostgreSQL's error.)
SELECT statement_no, rule, verdict, message FROM migrate_guard.check($$
LOCK TABLE ut.orders;
TRUNCATE ut.parent;
CLUSTER ut.orders USING orders_customer;
VACUUM (FULL) ut.orders;
VACUUM ut.orders;
SELECT migrate_guard.begin_migration('utility-check');
TRUNCATE ut.parent;
TRUNCATE ONLY ut.parent;
BEGIN;
LOCK TABLE ut.orders IN EXCLUSIVE MODE;
COMMIT;
DO $d$ BEGIN LOCK TABLE ut.orders IN ACCESS EXCLUSIVE MODE; TRUNCATE ut.child; END $d$;
TRUNCATE ut.orders CASCADE;
ALTER TABLE ut.orders ADD CONSTRAINT positive CHECK (id > 0);
SELECT migrate_guard.end_migration();
$$) ORDER BY statement_no, rule;

---------------------------------------------------------------- what check() sees besides
-- A SET LOCAL timezone earlier in the script (timestamptz -> timestamp rewrites unless UTC); a
-- type change on a parent that reaches a populated inheritance child; the statements of DO
-- blocks and of procedures (guard_bodies has more), and for what it cannot read (EXECUTE of a
-- string built at run time) an `unknown` row with the reason, not a pass; a default calling a
-- function the script creates (VOLATILE unless declared otherwise).
CREATE TABLE ut.stamps (id int, at timestamptz);
INSERT INTO ut.stamps SELECT g, now() FROM generate_series(1, 100) g;
CREATE TABLE ut.base (id int, v int);
CREATE TABLE ut.heir () INHERITS (ut.base);
INSERT INTO ut.heir SELECT g, g FROM generate_series(1, 100) g;
CREATE PROCEDURE ut.reshape() LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE ut.stamps ADD COLUMN r float DEFAULT random(); END $$;
SET timezone = 'UTC';
SELECT statement_no, rule, verdict, message FROM migrate_guard.check($$
ALTER TABLE ut.stamps ALTER COLUMN at TYPE timestamp;
BEGIN;
SET LOCAL timezone = 'Europe/Paris';
ALTER TABLE ut.stamps ALTER COLUMN at TYPE timestamp;
COMMIT;
ALTER TABLE ut.base ALTER COLUMN v TYPE bigint;
DO $d$ BEGIN EXECUTE format('ALTER TABLE %s ADD COLUMN q int DEFAULT random()', 'ut.stamps'); END $d$;
CALL ut.reshape();
CREATE FUNCTION ut.next_code() RETURNS int LANGUAGE sql AS 'SELECT 7';
CREATE FUNCTION ut.fixed_code() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 7';
ALTER TABLE ut.stamps ADD COLUMN code int DEFAULT ut.next_code();
ALTER TABLE ut.stamps ADD COLUMN code2 int DEFAULT ut.fixed_code();
$$) ORDER BY statement_no, rule;
-- The live guard: the child's rewrite, and the DO block's and the procedure's statements as
-- they run.
ALTER TABLE ut.base ALTER COLUMN v TYPE bigint;
DO $d$ BEGIN EXECUTE format('ALTER TABLE %s ADD COLUMN q int DEFAULT random()', 'ut.stamps'); END $d$;
CALL ut.reshape();
RESET timezone;
