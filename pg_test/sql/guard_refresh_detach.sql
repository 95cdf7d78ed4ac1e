-- Rules blocking-refresh and blocking-detach.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA rd;
SET search_path = rd, public;
CREATE TABLE sales (id bigint, region text, amount numeric, sold_on date) PARTITION BY RANGE (sold_on);
CREATE TABLE sales_2025 PARTITION OF sales FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE sales_2026 PARTITION OF sales FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE sales_2027 PARTITION OF sales FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
INSERT INTO sales SELECT g, 'r' || (g % 4), g, date '2025-01-01' + (g % 700) FROM generate_series(1, 2000) g;
VACUUM ANALYZE sales;
CREATE MATERIALIZED VIEW sales_by_region AS SELECT region, sum(amount) AS total FROM sales GROUP BY region;
CREATE UNIQUE INDEX CONCURRENTLY sales_by_region_key ON sales_by_region (region);
CREATE MATERIALIZED VIEW sales_later AS SELECT region FROM sales WITH NO DATA;
ANALYZE sales, sales_by_region;

---------------------------------------------------------------- blocking-refresh
REFRESH MATERIALIZED VIEW sales_by_region;
REFRESH MATERIALIZED VIEW sales_by_region WITH NO DATA;
-- Safe way.
REFRESH MATERIALIZED VIEW CONCURRENTLY sales_by_region;
-- Not populated yet: nobody can be reading it, and CONCURRENTLY is not possible.
REFRESH MATERIALIZED VIEW sales_later;
-- Allowed with the setting; with a directive; warn mode.
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-refresh';
REFRESH MATERIALIZED VIEW sales_by_region;
COMMIT;
/* migrate_guard:allow blocking-refresh */ REFRESH MATERIALIZED VIEW sales_by_region;
SET migrate_guard.mode = warn;
REFRESH MATERIALIZED VIEW sales_by_region;
RESET migrate_guard.mode;
-- Exemptions: created in this transaction; temporary objects cannot be materialized views.
BEGIN;
CREATE MATERIALIZED VIEW fresh_mv AS SELECT 1 AS x;
REFRESH MATERIALIZED VIEW fresh_mv;
COMMIT;

---------------------------------------------------------------- blocking-detach
ALTER TABLE sales DETACH PARTITION sales_2025;
-- (The safe way, DETACH PARTITION … CONCURRENTLY, exists from PostgreSQL 14: see versions.sql.)
-- Allowed with the setting; with a directive; warn mode.
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-detach';
ALTER TABLE sales DETACH PARTITION sales_2026;
ROLLBACK;
/* migrate_guard:allow blocking-detach */ ALTER TABLE sales DETACH PARTITION sales_2026;
SET migrate_guard.mode = warn;
ALTER TABLE sales DETACH PARTITION sales_2027;
RESET migrate_guard.mode;
-- Exemptions: a partitioned table created in this transaction.
BEGIN;
CREATE TABLE fresh_parent (id int) PARTITION BY RANGE (id);
CREATE TABLE fresh_part PARTITION OF fresh_parent FOR VALUES FROM (0) TO (10);
ALTER TABLE fresh_parent DETACH PARTITION fresh_part;
COMMIT;

-- Quoted and schema-qualified names.
CREATE SCHEMA "RD Sales";
CREATE TABLE "RD Sales"."Sales By Day" (d date) PARTITION BY RANGE (d);
CREATE TABLE "RD Sales"."Day 1" PARTITION OF "RD Sales"."Sales By Day" FOR VALUES FROM ('2026-01-01') TO ('2026-01-02');
ALTER TABLE "RD Sales"."Sales By Day" DETACH PARTITION "RD Sales"."Day 1";
CREATE MATERIALIZED VIEW "RD Sales"."Daily Totals" AS SELECT 1 AS n;
REFRESH MATERIALIZED VIEW "RD Sales"."Daily Totals";
