-- Temporary objects are private to a session, not schema changes: no history row, no rule,
-- whether they are created, altered, indexed or dropped, explicitly or at commit.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA ht;
SET search_path = ht, public;
CREATE TABLE ht.orders (id bigint PRIMARY KEY, amount numeric);
INSERT INTO ht.orders SELECT g, g FROM generate_series(1, 1000) g;
VACUUM ANALYZE ht.orders;
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset

-- The reporting pattern: a scratch table per transaction, dropped at commit.
BEGIN;
CREATE TEMP TABLE scratch (id bigint, amount numeric) ON COMMIT DROP;
INSERT INTO scratch SELECT id, amount FROM ht.orders WHERE amount > 900;
SELECT count(*) AS scratch_rows FROM scratch;
COMMIT;

-- Created, filled, indexed (without CONCURRENTLY, on data), altered, commented, renamed, dropped.
CREATE TEMPORARY TABLE report (id bigint PRIMARY KEY, total numeric);
INSERT INTO report SELECT id, amount FROM ht.orders;
CREATE INDEX report_total_idx ON report (total);
CREATE UNIQUE INDEX ON report (id, total);
ALTER TABLE report ADD COLUMN note text NOT NULL DEFAULT 'n/a';
ALTER TABLE report ALTER COLUMN total TYPE bigint;
ALTER TABLE report ADD CONSTRAINT total_pos CHECK (total > 0);
COMMENT ON TABLE report IS 'scratch';
ALTER TABLE report RENAME COLUMN note TO remark;
ALTER INDEX report_total_idx RENAME TO report_total_ix;
DROP INDEX report_total_ix;
CREATE TEMP SEQUENCE report_seq;
CREATE TEMP VIEW big_reports AS SELECT * FROM report WHERE total > 500;
-- A view over a temporary table is temporary whether or not it says so.
CREATE VIEW implicit_view AS SELECT id FROM report;
CREATE TABLE pg_temp.spelled_out (id int);
CREATE TEMP TABLE copied AS SELECT * FROM ht.orders;
CREATE FUNCTION pg_temp.double(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2';
DROP VIEW implicit_view, big_reports;
DROP SEQUENCE report_seq;
DROP TABLE report, spelled_out, copied;
DROP FUNCTION pg_temp.double(int);
SELECT count(*) AS history_rows_for_temporary_objects FROM migrate_guard.history WHERE id > :start;

-- With migrations required, temporary objects still need none.
SET migrate_guard.require_migration = on;
CREATE TEMP TABLE needs_no_migration (id int);
DROP TABLE needs_no_migration;
SET migrate_guard.require_migration = off;

-- A statement that drops temporary and permanent objects together is recorded with the
-- permanent ones only.
CREATE TEMP TABLE tmp_gone (id int);
CREATE TABLE ht.perm_gone (id int);
SET migrate_guard.allow = 'drop-table';
DROP TABLE tmp_gone, ht.perm_gone;
RESET migrate_guard.allow;
-- And permanent objects around them are recorded as always.
CREATE INDEX CONCURRENTLY orders_amount_idx ON ht.orders (amount);
SELECT command_tag, object_type, object_identity, verdict, rules_allowed
FROM migrate_guard.history WHERE id > :start ORDER BY id;
RESET search_path;
