-- What depends on the PostgreSQL version: the guard judges what *this* server does. Every version
-- has its own expected file (versions.out for 15, versions_1.out for 13, versions_2.out for 18),
-- and the first query names the version, so that no version can pass with another's output.
SELECT current_setting('server_version_num')::int / 10000 AS postgresql;
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA ver;
SET search_path = ver, public;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text, score int);
INSERT INTO accounts SELECT g, 'user' || g || '@example.com', NULL, g FROM generate_series(1, 1000) g;
VACUUM ANALYZE accounts;

-- Unknown settings under the migrate_guard prefix are refused from 15 on (a typo fails instead
-- of doing nothing); 13 and 14 can only warn about names set before the library loads, and
-- accept any later one silently.
SET migrate_guard.alow = 'blocking-index';

-- A directive in a -- comment inside a statement: psql 15 and later send it; psql 14 and older
-- strip -- comments before sending, so the guard never sees it (use /* … */ there).
CREATE INDEX accounts_upper_idx -- migrate_guard:allow blocking-index
  ON accounts (upper(email));

-- SET ACCESS METHOD (15 on) rewrites the table; to the method it has, nothing happens.
CREATE ACCESS METHOD ver_heap2 TYPE TABLE HANDLER heap_tableam_handler;
ALTER TABLE accounts SET ACCESS METHOD ver_heap2;
ALTER TABLE accounts SET ACCESS METHOD heap;

-- DETACH PARTITION: CONCURRENTLY exists from 14 (and is the safe way the hint gives); 13 locks
-- only the parent ACCESS EXCLUSIVE, and the hint says how to do without.
CREATE TABLE sales (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE sales_2025 PARTITION OF sales FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE sales_2026 PARTITION OF sales FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO sales SELECT g, date '2025-01-01' + g % 700 FROM generate_series(1, 2000) g;
VACUUM ANALYZE sales;
ALTER TABLE sales DETACH PARTITION sales_2025;
ALTER TABLE sales DETACH PARTITION sales_2025 CONCURRENTLY;

-- NOT NULL: before 18 the safe way proves it with a CHECK; 18 adds the NOT NULL constraint
-- NOT VALID and validates it (SHARE UPDATE EXCLUSIVE), after which the column is NOT NULL. On
-- 18 a NOT VALID not-null constraint proves nothing yet: SET NOT NULL would validate it.
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
ALTER TABLE accounts ADD CONSTRAINT accounts_email_not_null NOT NULL email NOT VALID;
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_not_null;
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
ALTER TABLE accounts ADD CONSTRAINT accounts_plan_not_null NOT NULL plan;

-- Generated columns: STORED writes every row; 18's VIRTUAL (its default kind) writes none, but
-- a virtual NOT NULL column is computed for every row to check it.
ALTER TABLE accounts ADD COLUMN email_lower text GENERATED ALWAYS AS (lower(email)) STORED;
ALTER TABLE accounts ADD COLUMN email_domain text GENERATED ALWAYS AS (split_part(email, '@', 2));
ALTER TABLE accounts ADD COLUMN email_length int GENERATED ALWAYS AS (length(email)) VIRTUAL NOT NULL;

-- SET EXPRESSION (17 on): a stored generated column is rewritten for every row; a virtual one
-- (18) is only redefined.
/* migrate_guard:allow add-column-rewrite */ ALTER TABLE accounts ADD COLUMN score2 int GENERATED ALWAYS AS (score * 2) STORED;
ALTER TABLE accounts ALTER COLUMN score2 SET EXPRESSION AS (score * 3);
ALTER TABLE accounts ALTER COLUMN email_domain SET EXPRESSION AS (split_part(lower(email), '@', 2));

-- REINDEX: event triggers fire for it from 17 on; before, the utility hook sees it (this session
-- has loaded the library). Both give the same verdicts.
REINDEX TABLE accounts;
REINDEX INDEX accounts_pkey;
REINDEX TABLE CONCURRENTLY accounts;

-- A backfill of a table without a primary key walks its pages: with a TID range scan from 14
-- on; 13 has none, and each batch lists its pages' TIDs instead (a TID scan, not a seq scan).
CREATE TABLE logs (k int, level text);
INSERT INTO logs SELECT g, 'info' FROM generate_series(1, 5000) g;
VACUUM ANALYZE logs;
SELECT walk, first_batch_plan FROM migrate_guard.backfill_plan('logs', 'level = upper(level)', batch_size => 1000);
-- Publications (15 on: TABLES IN SCHEMA, row filters, column lists; syntax errors before): a
-- schema's tables without a replica identity, a row filter on a column outside the identity and
-- a column list that leaves one of its columns out all make UPDATE and DELETE fail.
CREATE SCHEMA ver_pub;
CREATE TABLE ver_pub.bare (id int, v text);
CREATE TABLE keyed (id int PRIMARY KEY, v text);
SET client_min_messages = error;
CREATE PUBLICATION ver_p1 FOR TABLES IN SCHEMA ver_pub;
CREATE PUBLICATION ver_p2 FOR TABLE keyed WHERE (v <> 'x');
CREATE PUBLICATION ver_p3 FOR TABLE keyed (v);
-- Inside the identity: pass.
CREATE PUBLICATION ver_p4 FOR TABLE keyed (id, v) WHERE (id > 0);
RESET client_min_messages;
SELECT statement_no, rule, verdict FROM migrate_guard.check($$
CREATE PUBLICATION ver_p5 FOR TABLES IN SCHEMA ver_pub;
CREATE PUBLICATION ver_p6 FOR TABLE ver.keyed WHERE (v <> 'x');
CREATE PUBLICATION ver_p7 FOR TABLE ver.keyed (id, v) WHERE (id > 0);
$$) ORDER BY statement_no;
DROP PUBLICATION IF EXISTS ver_p4;
RESET search_path;
