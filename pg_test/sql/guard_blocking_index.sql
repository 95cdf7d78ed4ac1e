-- Rule blocking-index: CREATE INDEX without CONCURRENTLY on an existing table with data.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA bi;
SET search_path = bi, public;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text);
INSERT INTO accounts SELECT g, 'user' || g || '@example.com', CASE WHEN g % 3 = 0 THEN 'pro' END
  FROM generate_series(1, 1000) g;
VACUUM ANALYZE accounts;
ANALYZE accounts;

-- Blocked, with the full message: plain, UNIQUE, expression and partial indexes.
CREATE INDEX accounts_email_idx ON accounts (email);
CREATE UNIQUE INDEX accounts_email_key ON accounts (email);
CREATE INDEX ON accounts (lower(email));
CREATE INDEX IF NOT EXISTS accounts_pro_idx ON accounts (id) WHERE plan = 'pro';
SELECT count(*) AS indexes_built FROM pg_indexes WHERE schemaname = 'bi' AND indexname <> 'accounts_pkey';

-- The safe alternative from the hint passes.
CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);
-- IF NOT EXISTS with that name taken: PostgreSQL skips it (a NOTICE, no build), and so does
-- the guard (a tool that always emits IF NOT EXISTS, after the index was built concurrently);
-- with a free name it builds, and is blocked.
CREATE INDEX IF NOT EXISTS accounts_email_idx ON accounts (email);
CREATE INDEX IF NOT EXISTS accounts_email_idx2 ON accounts (email);
CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email);

-- Allowed with the setting, for one transaction.
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-index';
CREATE INDEX accounts_plan_idx ON accounts (plan);
COMMIT;
-- ... and only for that transaction.
CREATE INDEX accounts_plan_idx2 ON accounts (plan);
-- 'all' allows every rule.
BEGIN;
SET LOCAL migrate_guard.allow = 'all';
CREATE INDEX accounts_plan_idx2 ON accounts (plan);
ROLLBACK;

-- Allowed with a comment directive in the statement.
/* migrate_guard:allow blocking-index */ CREATE INDEX accounts_lower_idx ON accounts (lower(email));
CREATE INDEX accounts_upper_idx /* migrate_guard:allow blocking-index (small table, reviewed) */
  ON accounts (upper(email));
-- A directive for another rule does not help.
/* migrate_guard:allow rename-table */ CREATE INDEX accounts_upper_idx2 ON accounts (upper(email));

-- Warn mode: the statement runs, with a WARNING.
SET migrate_guard.mode = warn;
CREATE INDEX accounts_id_plan_idx ON accounts (id, plan);
RESET migrate_guard.mode;

-- Exemptions: a table created in the same transaction, a temporary table, an empty table.
BEGIN;
CREATE TABLE fresh (id int, v text);
INSERT INTO fresh SELECT g, g::text FROM generate_series(1, 1000) g;
CREATE INDEX fresh_v_idx ON fresh (v);
COMMIT;
CREATE TEMP TABLE scratch AS SELECT g AS id FROM generate_series(1, 1000) g;
CREATE INDEX scratch_id_idx ON scratch (id);
CREATE TABLE empty_table (id int, v text);
CREATE INDEX empty_table_v_idx ON empty_table (v);
-- Changing an existing table earlier in the transaction does not make it new.
BEGIN;
ALTER TABLE accounts ADD COLUMN note text;
CREATE INDEX accounts_note_idx ON accounts (note);
ROLLBACK;
-- migrate_guard.assume_populated makes empty existing tables count as holding data (dev/CI).
SET migrate_guard.assume_populated = on;
CREATE INDEX empty_table_id_idx ON empty_table (id);
RESET migrate_guard.assume_populated;

-- Quoted and schema-qualified names.
CREATE SCHEMA "BI Sales";
CREATE TABLE "BI Sales"."Order Items" ("Item Id" int, "select" text);
INSERT INTO "BI Sales"."Order Items" SELECT g, 'x' FROM generate_series(1, 500) g;
VACUUM ANALYZE "BI Sales"."Order Items";
ANALYZE "BI Sales"."Order Items";
CREATE INDEX "Order Items by select" ON "BI Sales"."Order Items" ("select");
CREATE INDEX CONCURRENTLY "Order Items by select" ON "BI Sales"."Order Items" ("select");

-- Materialized views.
CREATE MATERIALIZED VIEW plan_counts AS SELECT plan, count(*) AS n FROM accounts GROUP BY plan;
CREATE UNIQUE INDEX plan_counts_plan ON plan_counts (plan);
CREATE UNIQUE INDEX CONCURRENTLY plan_counts_plan ON plan_counts (plan);

-- Partitioned tables: ON ONLY the parent, then each partition CONCURRENTLY, then ATTACH.
CREATE TABLE events (id bigint, kind text, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events SELECT g, 'k' || (g % 5), date '2025-01-01' + (g % 700) FROM generate_series(1, 2000) g;
VACUUM ANALYZE events;
ANALYZE events;
CREATE INDEX events_kind_idx ON events (kind);
CREATE INDEX events_kind_idx ON ONLY events (kind);
CREATE INDEX CONCURRENTLY events_2025_kind_idx ON events_2025 (kind);
CREATE INDEX CONCURRENTLY events_2026_kind_idx ON events_2026 (kind);
ALTER INDEX events_kind_idx ATTACH PARTITION events_2025_kind_idx;
ALTER INDEX events_kind_idx ATTACH PARTITION events_2026_kind_idx;
SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_kind_idx'::regclass;
-- A partition on its own is an ordinary table.
CREATE INDEX events_2025_at_idx ON events_2025 (at);

-- Inside a DO block the guard still sees the statement.
DO $$ BEGIN EXECUTE 'CREATE INDEX accounts_in_do ON bi.accounts (plan)'; END $$;
