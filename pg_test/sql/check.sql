-- migrate_guard.check(script): a whole migration judged before it runs, against this database.
CREATE SCHEMA ck;
SET search_path = ck, public;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text);
INSERT INTO accounts SELECT g, 'user' || g || '@example.com', 'free' FROM generate_series(1, 2000) g;
CREATE TABLE empty_log (id bigint, msg text);
VACUUM ANALYZE accounts;
-- Rows without the columns nobody reads in a golden file.
CREATE FUNCTION ck.findings(script text, assume boolean DEFAULT NULL)
RETURNS TABLE (n int, line int, col int, end_line int, rule text, verdict text, sqlstate text, message text)
LANGUAGE sql AS $$
    SELECT statement_no, line, col, end_line, rule, verdict, sqlstate, message
    FROM migrate_guard.check(script, assume)
$$;

-- Every column of a blocked statement: the same message, detail and hint as running it.
\x on
SELECT * FROM migrate_guard.check('CREATE INDEX accounts_email_idx ON accounts (email);');
\x off
CREATE INDEX accounts_email_idx ON accounts (email);

-- A migration as psql runs it: autocommit statements, a transaction block, comments.
SELECT * FROM ck.findings($$
-- 0042_add_orders.sql
CREATE TABLE orders (id bigserial PRIMARY KEY, account_id bigint, note text);
CREATE INDEX ON orders (account_id);           -- created by the script: existing, but empty
ALTER TABLE orders ADD CONSTRAINT orders_account_fk
    FOREIGN KEY (account_id) REFERENCES accounts (id);
ALTER TABLE accounts ADD COLUMN tier text NOT NULL;
BEGIN;
CREATE TABLE invoices (id bigint, total numeric);
INSERT INTO invoices VALUES (1, 10);
CREATE INDEX invoices_total_idx ON invoices (total);   -- new in this transaction
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
COMMIT;
CREATE INDEX invoices_id_idx ON invoices (id);         -- committed, and rows were written
$$);

-- The safe ways pass: CONCURRENTLY outside a block, NOT VALID then VALIDATE then SET NOT NULL.
SELECT * FROM ck.findings($$
CREATE INDEX CONCURRENTLY accounts_plan_idx ON accounts (plan);
ALTER TABLE accounts ADD CONSTRAINT accounts_email_nn CHECK (email IS NOT NULL) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_nn;
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
ALTER TABLE accounts ALTER COLUMN plan SET NOT NULL;
$$);

-- Allowed by SET LOCAL (for its transaction only) and by a directive; warn mode from a SET.
SELECT * FROM ck.findings($$
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-index';
CREATE INDEX a1 ON accounts (plan);
COMMIT;
CREATE INDEX a2 ON accounts (plan);
/* migrate_guard:allow blocking-index */ CREATE INDEX a3 ON accounts (plan);
SET migrate_guard.mode = warn;
CREATE INDEX a4 ON accounts (plan);
RESET migrate_guard.mode;
CREATE INDEX a5 ON accounts (plan);
$$);

-- A block that rolls back leaves nothing behind: neither its tables nor its settings.
SELECT * FROM ck.findings($$
BEGIN;
SET migrate_guard.mode = off;
CREATE TABLE scratch (id int);
ROLLBACK;
CREATE INDEX ON scratch (id);
CREATE INDEX a6 ON accounts (plan);
BEGIN;
CREATE TABLE kept (id int);
SAVEPOINT s1;
SET migrate_guard.mode = off;
DROP TABLE kept;
ROLLBACK TO SAVEPOINT s1;
ALTER TABLE kept ADD COLUMN c int NOT NULL;
RELEASE SAVEPOINT s1;
COMMIT;
ALTER TABLE kept ADD COLUMN d int NOT NULL;
$$, assume => true);

-- Renames, drops and schemas of the script are followed; search_path too.
SELECT * FROM ck.findings($$
ALTER TABLE accounts RENAME TO users;
CREATE INDEX ON accounts (plan);
CREATE INDEX users_plan_idx ON users (plan);
ALTER TABLE users RENAME COLUMN email TO mail;
ALTER TABLE users ALTER COLUMN mail TYPE varchar(50);
DROP TABLE empty_log;
DROP TABLE empty_log;
DROP TABLE IF EXISTS empty_log;
CREATE SCHEMA app;
SET search_path = app, public;
CREATE TABLE settings (k text PRIMARY KEY, v text);
ALTER TABLE settings ALTER COLUMN v SET NOT NULL;
DROP INDEX settings_pkey;
ALTER TABLE accounts ADD COLUMN x int;
$$, assume => true);

-- PostgreSQL's own errors: a syntax error (pointing at it), CONCURRENTLY inside a block,
-- a SAVEPOINT outside one, a bad setting, an unknown rule in a directive.
SELECT * FROM ck.findings($$
ALTER TABLE accounts ADD COLUMN ok int;
ALTER TABLE accounts
    ADD COLUMN broken int DEFAULT,
    ADD COLUMN fine int;
BEGIN;
CREATE INDEX CONCURRENTLY accounts_id2 ON accounts (id);
ALTER TABLE accounts DETACH PARTITION nothing CONCURRENTLY;
VACUUM accounts;
COMMIT;
SAVEPOINT nowhere;
SET migrate_guard.allow = 'no-such-rule';
/* migrate_guard:allow blocking-idx */ CREATE INDEX a7 ON accounts (plan);
CREATE INDEX a8 ON accounts (plan);
$$);
SELECT hint FROM migrate_guard.check('SELECT * FROM accounts WHERE id = :id;');

-- psql meta-commands are the client's: skipped, and \gset ends its statement.
SELECT * FROM ck.findings(E'\\set ON_ERROR_STOP on\nSELECT count(*) AS n FROM accounts \\gset\nCREATE INDEX a9 ON accounts (plan);\n\\echo done\n');

-- What the guard does not judge, check() does not either: temporary tables, and DDL it
-- allows on purpose (see the README).
SELECT * FROM ck.findings($$
CREATE TEMP TABLE tmp (id int);
INSERT INTO tmp VALUES (1);
CREATE INDEX ON tmp (id);
ALTER TABLE accounts ADD COLUMN created_at timestamptz DEFAULT now();
ALTER TABLE accounts ALTER COLUMN plan SET DEFAULT 'pro';
$$);

-- require_migration: DDL must run inside begin_migration()/end_migration().
SET migrate_guard.require_migration = on;
SELECT * FROM ck.findings($$
CREATE TABLE t1 (id int);
SELECT migrate_guard.begin_migration('0043_t2');
CREATE TABLE t2 (id int);
SELECT migrate_guard.end_migration();
CREATE TABLE t3 (id int);
$$);
RESET migrate_guard.require_migration;

-- A dump sets search_path with set_config and turns off function body checks and row
-- security: the guard exempts a restore only for the relations a restore created, and judges a
-- table that was there before it as always; check() says the same.
SELECT * FROM ck.findings($$
SELECT pg_catalog.set_config('search_path', '', false);
CREATE INDEX a10 ON ck.accounts (plan);
SET check_function_bodies = false;
SET row_security = off;
CREATE INDEX a11 ON ck.accounts (plan);
$$);

-- Bad input: NULL is an error; empty scripts and scripts of comments give no rows.
SELECT * FROM migrate_guard.check(NULL);
SELECT count(*) FROM migrate_guard.check('');
SELECT count(*) FROM migrate_guard.check(E'-- nothing\n/* at all */;;\n');
-- A script of several megabytes (a data migration: 100000 INSERTs, then an index on the
-- table they filled): every statement is read, the last one judged with what came before.
SELECT n, line, rule, verdict, octet_length(s) AS bytes
FROM (SELECT repeat(E'INSERT INTO empty_log (id, msg) VALUES (1, ''a row of the data migration'');\n', 100000)
             || E'CREATE INDEX empty_log_msg ON empty_log (msg);\n' AS s) x, ck.findings(s);

-- What check() takes is bounded: at most 200000 statements and 32 MB (SQLSTATE 54000).

SELECT count(*) FROM migrate_guard.check(repeat('SELECT 1;', 200001));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM migrate_guard.check(repeat(' ', 32 * 1024 * 1024 + 1));
\echo SQLSTATE :LAST_ERROR_SQLSTATE


-- The session is as it was: settings the script changed are restored, nothing was created,
-- and check() works in a read-only transaction.
SHOW search_path;
SHOW migrate_guard.mode;
SHOW migrate_guard.allow;
SELECT count(*) FROM pg_class WHERE relnamespace = 'ck'::regnamespace AND relname IN ('orders', 'invoices', 'users', 'scratch', 'kept');
SELECT count(*) FROM pg_namespace WHERE nspname = 'app';
BEGIN READ ONLY;
SELECT n, rule, verdict FROM ck.findings('CREATE INDEX ON accounts (plan); SET search_path = pg_catalog;');
SHOW search_path;
COMMIT;
-- No lock on the checked table is held afterwards (the isolation spec check_no_lock shows none
-- is waited for either).
BEGIN;
SELECT count(*) FROM migrate_guard.check('ALTER TABLE accounts ADD COLUMN z int NOT NULL; DROP TABLE accounts;');
SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'ck.accounts'::regclass;
COMMIT;

/* migrate_guard:allow drop-table, drop-column */ DROP SCHEMA ck CASCADE;
