-- Expand → migrate → contract with the helpers: rename a column, change a type (a primary key
-- int → bigint with a referencing table, an identity column), rename a table, abort; then every
-- bad input, each refused with its SQLSTATE and nothing changed.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA exp;
SET search_path = exp, public;
SET client_min_messages = warning;
-- (Roles are cluster-wide: a run that stopped halfway may have left them.)
DROP ROLE IF EXISTS exp_reader;
DROP ROLE IF EXISTS exp_stranger;
CREATE TABLE users (id serial PRIMARY KEY, username text NOT NULL UNIQUE, note text);
COMMENT ON COLUMN users.username IS 'the login name';
CREATE TABLE orders (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     user_id int NOT NULL REFERENCES users (id) ON DELETE CASCADE, amount int);
CREATE INDEX orders_user_id_idx ON orders (user_id);
INSERT INTO users (username) SELECT 'user' || g FROM generate_series(1, 300) g;
INSERT INTO orders (user_id, amount) SELECT 1 + g % 300, g FROM generate_series(1, 600) g;
VACUUM ANALYZE users, orders;
RESET client_min_messages;
-- The schema of a table as the tests compare it: columns, then constraints, then indexes.
CREATE FUNCTION shape(t regclass) RETURNS TABLE (item text) LANGUAGE sql AS $$
  (SELECT format('column %s %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                 CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                 coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
                 || CASE a.attidentity WHEN 'a' THEN ' identity always' WHEN 'd' THEN ' identity by default' ELSE '' END)
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attname)
  UNION ALL
  (SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid)) FROM pg_constraint
    WHERE conrelid = t AND contype <> 'n' ORDER BY conname)
  UNION ALL
  (SELECT format('index %s', pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = t ORDER BY 1)
  UNION ALL
  (SELECT format('trigger %s', tgname) FROM pg_trigger WHERE tgrelid = t AND NOT tgisinternal ORDER BY 1)
$$;
CREATE FUNCTION progress(e bigint) RETURNS TABLE (id bigint, "table" text, kind text, old_name text, new_name text,
                                                  old_type text, new_type text, phase text, backfill text,
                                                  pending_statements text[], next_step text) LANGUAGE sql AS $$
  SELECT id, "table", kind, old_name, new_name, old_type, new_type, phase, backfill, pending_statements, next_step
    FROM migrate_guard.expansions WHERE id = e
$$;

-- 1. Rename a column: username → display_name.
SELECT migrate_guard.expand_column('users', 'username', new_name => 'display_name') AS e1 \gset
SELECT * FROM shape('users');
-- Clients of both versions write, each its own name, and read the other's writes.
INSERT INTO users (username) VALUES ('written-old');
INSERT INTO users (display_name) VALUES ('written-new');
UPDATE users SET display_name = 'renamed-new' WHERE username = 'user5';
UPDATE users SET username = 'renamed-old' WHERE display_name = 'user6';
SELECT id, username, display_name FROM users WHERE id IN (1, 5, 6, 301, 302) ORDER BY id;
SELECT * FROM progress(:e1);
-- Contract refuses before the backfill and before the index exists.
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
SELECT migrate_guard.contract(:e1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill_expansion(:e1);
SELECT migrate_guard.contract(:e1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
SELECT count(*) AS rows_out_of_step FROM users WHERE display_name IS DISTINCT FROM username;
SELECT pending_statements[1] AS statement FROM progress(:e1) \gset
:statement;
SELECT * FROM progress(:e1);
SELECT migrate_guard.contract(:e1);
SELECT * FROM shape('users');
SELECT col_description('users'::regclass, (SELECT attnum FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'display_name')) AS comment;
SELECT id, display_name FROM users WHERE id IN (1, 5, 6, 301, 302) ORDER BY id;
SELECT phase, backfill, next_step FROM progress(:e1);
-- Every step is in history; contract's drop was allowed as a step of the expansion.
SELECT command_tag, rules_fired, rules_allowed, allowed_via FROM migrate_guard.history
 WHERE statement LIKE '%migrate_guard.contract(' || :e1 || ')%' AND rules_allowed <> '{}' ORDER BY id;

-- 2. The primary key int → bigint; orders.user_id, which references it, follows.
SELECT migrate_guard.expand_column('users', 'id', new_type => 'bigint') AS e2 \gset
SELECT * FROM shape('users');
SELECT * FROM shape('orders');
INSERT INTO users (display_name) VALUES ('during-expansion');
INSERT INTO orders (user_id, amount) VALUES (303, 1);
SELECT * FROM progress(:e2);
\set ON_ERROR_STOP 0
CALL migrate_guard.backfill_expansion(:e2);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
SELECT pending_statements[1] AS s1, pending_statements[2] AS s2 FROM progress(:e2) \gset
:s1;
:s2;
CALL migrate_guard.backfill_expansion(:e2);
SELECT format('SELECT count(*) AS users_out_of_step FROM users WHERE %I IS DISTINCT FROM id', 'id_mg' || :e2) \gexec
SELECT format('SELECT count(*) AS orders_out_of_step FROM orders WHERE %I IS DISTINCT FROM user_id', 'user_id_mg' || :e2) \gexec
SELECT migrate_guard.contract(:e2);
SELECT * FROM shape('users');
SELECT * FROM shape('orders');
SELECT format_type(seqtypid, NULL) AS sequence_type, seqmax FROM pg_sequence WHERE seqrelid = 'users_id_seq'::regclass;
SELECT pg_get_serial_sequence('exp.users', 'id') AS owned_sequence;
INSERT INTO users (display_name) VALUES ('after-contract') RETURNING id;
SELECT setval('users_id_seq', 3000000000) > 2147483647 AS beyond_int;
INSERT INTO users (display_name) VALUES ('past-int') RETURNING id;
INSERT INTO orders (user_id, amount) VALUES (3000000001, 2) RETURNING user_id;
DELETE FROM users WHERE id = 3000000001;
SELECT count(*) AS orders_of_deleted_user FROM orders WHERE user_id = 3000000001;

-- 3. An identity column, and a type change with its own conversion, aborted.
CREATE TABLE items (n int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, price numeric(10,2) DEFAULT 0);
INSERT INTO items (price) SELECT g FROM generate_series(1, 50) g;
SELECT migrate_guard.expand_column('items', 'price', new_name => 'price_cents', new_type => 'bigint',
                                   using_expr => '(price * 100)::bigint', reverse_expr => 'price_cents / 100.0') AS e3 \gset
INSERT INTO items (price) VALUES (1.25) RETURNING n, price, price_cents;
INSERT INTO items (price_cents) VALUES (999) RETURNING n, price, price_cents;
UPDATE items SET price_cents = 12345 WHERE n = 2 RETURNING n, price, price_cents;
UPDATE items SET price = 7.5 WHERE n = 3 RETURNING n, price, price_cents;
SELECT migrate_guard.abort_expansion(:e3);
SELECT * FROM shape('items');
SELECT n, price FROM items WHERE n IN (2, 3, 51, 52) ORDER BY n;
SELECT phase FROM progress(:e3);
SELECT migrate_guard.expand_column('items', 'n', new_type => 'bigint') AS e4 \gset
SELECT pending_statements[1] AS s1 FROM progress(:e4) \gset
:s1;
CALL migrate_guard.backfill_expansion(:e4);
SELECT migrate_guard.contract(:e4);
SELECT * FROM shape('items');
INSERT INTO items (price) VALUES (3) RETURNING n;

-- 4. Rename a table; the old name is an updatable view until contract.
CREATE ROLE exp_reader;
GRANT SELECT, INSERT ON orders TO exp_reader;
SELECT migrate_guard.expand_rename_table('orders', 'purchases') AS e5 \gset
INSERT INTO orders (user_id, amount) VALUES (1, 42) RETURNING user_id, amount;
INSERT INTO purchases (user_id, amount) VALUES (1, 43) RETURNING user_id, amount;
UPDATE orders SET amount = 44 WHERE amount = 42;
SELECT count(*) AS both_writes FROM purchases WHERE user_id = 1 AND amount IN (43, 44);
SELECT relkind, (SELECT string_agg(privilege_type, ', ' ORDER BY privilege_type) FROM aclexplode(relacl) WHERE grantee = 'exp_reader'::regrole) AS exp_reader_may FROM pg_class WHERE oid = 'exp.orders'::regclass;
SELECT * FROM progress(:e5);
CALL migrate_guard.backfill_expansion(:e5);
SELECT migrate_guard.contract(:e5);
SELECT to_regclass('exp.orders') AS old_name, to_regclass('exp.purchases') AS new_name;
SELECT migrate_guard.expand_rename_table('purchases', 'orders2') AS e6 \gset
SELECT migrate_guard.abort_expansion(:e6);
SELECT to_regclass('exp.orders2') AS renamed, relkind FROM pg_class WHERE oid = 'exp.purchases'::regclass;

-- 5. Bad input: a clear error and SQLSTATE, and nothing changed.
CREATE TABLE t (id int PRIMARY KEY, a int, b text, c int CHECK (c > 0), g int GENERATED ALWAYS AS (a * 2) STORED, d int);
INSERT INTO t (id, a, b, c, d) SELECT g, g, g::text, 1, g FROM generate_series(1, 10) g;
CREATE VIEW t_view AS SELECT id, a FROM t;
CREATE TABLE parted (id int, v int) PARTITION BY RANGE (id);
CREATE TEMP TABLE scratch (id int);
CREATE FUNCTION fingerprint() RETURNS text LANGUAGE sql AS $$
  SELECT md5(string_agg(item, ',')) || ' / ' || (SELECT count(*) FROM migrate_guard.expansions)
    || ' / ' || md5((SELECT string_agg(x::text, ',' ORDER BY id) FROM exp.t x))
    FROM (SELECT item FROM shape('exp.t') UNION ALL SELECT item FROM shape('exp.purchases')) s
$$;
SELECT fingerprint() AS before \gset
\set ON_ERROR_STOP 0
SELECT migrate_guard.expand_column('t', 'nope', new_name => 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('no_such_table', 'a', new_name => 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column(NULL, 'a', new_name => 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t', 'b');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t', 'b', new_name => 'b');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t', 'b', new_name => 'a');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t', 'b', new_type => 'no_such_type');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t', 'b', new_type => 'int; DROP TABLE t');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A type without a cast from the old one, and no using_expr.
SELECT migrate_guard.expand_column('t', 'd', new_type => 'point');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t', 'd', new_type => 'bigint', using_expr => 'd +* 1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t', 'd', new_type => 'bigint', using_expr => 'no_such_column');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Renamed and retyped, with no way back for the new version's writes.
SELECT migrate_guard.expand_column('t', 'd', new_name => 'd_point', new_type => 'point', using_expr => 'point(d, d)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- What an expansion cannot carry over: a view, a check constraint, a generated column.
SELECT migrate_guard.expand_column('t', 'a', new_type => 'bigint');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t', 'c', new_type => 'bigint');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t', 'g', new_type => 'bigint');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('t_view', 'a', new_name => 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('parted', 'v', new_name => 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_column('scratch', 'id', new_name => 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_rename_table('t', 'purchases');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_rename_table('t_view', 'v2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_rename_table('t', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- No such expansion; one that is finished.
SELECT migrate_guard.contract(999999);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.abort_expansion(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.contract(:e1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.abort_expansion(:e3);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL migrate_guard.backfill_expansion(:e1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
SELECT fingerprint() = :'before' AS nothing_changed;
-- A second expansion of a table being expanded; a backfill inside a transaction block.
SELECT migrate_guard.expand_column('t', 'b', new_name => 'b2') AS e7 \gset
SELECT fingerprint() AS before \gset
\set ON_ERROR_STOP 0
SELECT migrate_guard.expand_column('t', 'b', new_type => 'varchar(20)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.expand_rename_table('t', 't2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
BEGIN;
CALL migrate_guard.backfill_expansion(:e7);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
-- Between steps, the guard judges the table's DDL as any other.
ALTER TABLE t RENAME COLUMN b TO b5;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
SELECT fingerprint() = :'before' AS nothing_changed;
SELECT migrate_guard.abort_expansion(:e7);
-- Without the privileges: a role that does not own the table, and another role's expansion.
CREATE ROLE exp_stranger;
GRANT USAGE ON SCHEMA exp TO exp_stranger;
GRANT SELECT, INSERT, UPDATE ON t TO exp_stranger;
SELECT migrate_guard.expand_column('t', 'b', new_name => 'b3') AS e8 \gset
SET ROLE exp_stranger;
\set ON_ERROR_STOP 0
SELECT migrate_guard.expand_column('t', 'a', new_type => 'bigint');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.contract(:e8);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT migrate_guard.abort_expansion(:e8);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT migrate_guard.abort_expansion(:e8);
-- An aborted expansion's unfinished backfill job is not resumed by a later expansion with the
-- same clauses (a rename to the same name): its position would skip rows.
SELECT migrate_guard.expand_column('t', 'b', new_name => 'b9') AS e9 \gset
SET client_min_messages = warning;
CALL migrate_guard.backfill_expansion(:e9, batch_size => 4);
-- As if that CALL had been interrupted after its first batch.
UPDATE migrate_guard.backfills SET status = 'failed', position = '{4}', finished_at = NULL
 WHERE table_name = 'exp.t' AND set_clause LIKE 'b9 =%';
RESET client_min_messages;
SELECT migrate_guard.abort_expansion(:e9);
SELECT status FROM migrate_guard.backfills WHERE table_name = 'exp.t' AND set_clause LIKE 'b9 =%' ORDER BY id;
SELECT migrate_guard.expand_column('t', 'b', new_name => 'b9') AS e10 \gset
SET client_min_messages = warning;
CALL migrate_guard.backfill_expansion(:e10, batch_size => 4);
RESET client_min_messages;
SELECT status, rows_updated FROM migrate_guard.backfills WHERE table_name = 'exp.t' AND set_clause LIKE 'b9 =%' ORDER BY id;
SELECT count(*) AS rows_out_of_step FROM t WHERE b9 IS DISTINCT FROM b;
SELECT migrate_guard.abort_expansion(:e10);
SELECT * FROM shape('t');
SELECT id, kind, old_name, new_name, phase FROM migrate_guard.expansions ORDER BY id;
/* migrate_guard:allow drop-table, drop-column */ DROP SCHEMA exp CASCADE;
DROP ROLE exp_reader;
DROP ROLE exp_stranger;
