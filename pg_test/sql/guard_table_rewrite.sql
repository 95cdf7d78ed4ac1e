-- Rule table-rewrite: statements that copy the whole table, and the table_rewrite backstop that
-- blocks any rewrite of an existing table with data that the start-time rules did not foresee.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA tr;
SET search_path = tr, public;
CREATE TABLE events (id bigint PRIMARY KEY, payload text);
INSERT INTO events SELECT g, repeat('x', 50) FROM generate_series(1, 1000) g;
VACUUM ANALYZE events;
ANALYZE events;

-- Blocked, with the full message.
ALTER TABLE events SET UNLOGGED;
-- (An in-place tablespace: a directory under pg_tblspc, for tests.)
SET allow_in_place_tablespaces = on;
CREATE TABLESPACE mg_tr_fast LOCATION '';
ALTER TABLE events SET TABLESPACE mg_tr_fast;

-- The backstop: ALTER TABLE on an empty inheritance parent also alters its children, and a
-- volatile default rewrites the child that holds rows; the start-time rule judged the empty
-- parent. The table_rewrite event names the table and the reason.
CREATE DOMAIN tr.positive_int AS int CHECK (VALUE > 0);
CREATE TABLE log_parent (id int);
CREATE TABLE log_child () INHERITS (log_parent);
INSERT INTO log_child SELECT generate_series(1, 1000);
VACUUM ANALYZE log_child;
ALTER TABLE log_parent ADD COLUMN score float8 DEFAULT random();
SELECT count(*) AS score_columns FROM pg_attribute WHERE attrelid = 'log_child'::regclass AND attname = 'score';
-- ... allowed with the rule id, the backstop lets it through.
BEGIN;
SET LOCAL migrate_guard.allow = 'table-rewrite';
ALTER TABLE log_parent ADD COLUMN score float8 DEFAULT random();
ROLLBACK;
-- A rewrite a start-time rule foresaw and that was allowed is not blocked again by the backstop.
BEGIN;
SET LOCAL migrate_guard.allow = 'column-type-rewrite';
ALTER TABLE events ALTER COLUMN id TYPE int;
ROLLBACK;

-- Allowed with the setting; with a directive.
BEGIN;
SET LOCAL migrate_guard.allow = 'table-rewrite';
ALTER TABLE events SET UNLOGGED;
ALTER TABLE events SET LOGGED;
COMMIT;
-- (SET LOGGED of the now unlogged table, blocked like SET UNLOGGED.)
BEGIN;
SET LOCAL migrate_guard.allow = 'table-rewrite';
ALTER TABLE events SET UNLOGGED;
COMMIT;
ALTER TABLE events SET LOGGED;
/* migrate_guard:allow table-rewrite */ ALTER TABLE events SET LOGGED;

-- Warn mode: start-time rule and backstop both warn.
SET migrate_guard.mode = warn;
ALTER TABLE events SET UNLOGGED;
ALTER TABLE log_parent ADD COLUMN score2 float8 DEFAULT random();
RESET migrate_guard.mode;

-- Exemptions: new table in this transaction, temporary table, empty table.
BEGIN;
CREATE TABLE fresh AS SELECT g AS id FROM generate_series(1, 100) g;
ALTER TABLE fresh SET UNLOGGED;
ALTER TABLE fresh ADD COLUMN score tr.positive_int DEFAULT 1;
COMMIT;
CREATE TEMP TABLE scratch AS SELECT g AS id FROM generate_series(1, 100) g;
ALTER TABLE scratch ADD COLUMN score tr.positive_int DEFAULT 1;
CREATE TABLE empty_table (id int);
ALTER TABLE empty_table SET UNLOGGED;
ALTER TABLE empty_table ADD COLUMN score tr.positive_int DEFAULT 1;

-- Quoted and schema-qualified names.
CREATE SCHEMA "TR Sales";
CREATE TABLE "TR Sales"."Order Items" ("Item Id" int);
INSERT INTO "TR Sales"."Order Items" VALUES (1);
VACUUM ANALYZE "TR Sales"."Order Items";
ALTER TABLE "TR Sales"."Order Items" SET UNLOGGED;
ALTER TABLE "TR Sales"."Order Items" ADD COLUMN "Score" tr.positive_int DEFAULT 1;
DROP TABLESPACE mg_tr_fast;
