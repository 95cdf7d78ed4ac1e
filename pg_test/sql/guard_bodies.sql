-- The statements of DO blocks and procedures. The live guard judges each statement a PL/pgSQL
-- or SQL body runs, as it runs (event triggers, the utility hook and the executor hook fire
-- inside them). check() reads the bodies: a DO block's, and a procedure's the script creates
-- (or finds in the catalog) when the script calls it. It judges their statements in order as
-- one transaction that the body's COMMITs end; what it cannot read (a string EXECUTE builds at
-- run time, a body in another language) is an `unknown` row with the reason.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA pb;
SET search_path = pb, public;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance int);
INSERT INTO accounts SELECT g, 'o' || g, g FROM generate_series(1, 1000) g;
CREATE TABLE events (id int, kind text);
INSERT INTO events SELECT g, 'k' FROM generate_series(1, 1000) g;
ANALYZE accounts, events;
CREATE PROCEDURE pb.widen() LANGUAGE plpgsql AS $$
BEGIN
  ALTER TABLE pb.events ADD COLUMN note text;
  COMMIT;
  ALTER TABLE pb.events ALTER COLUMN id TYPE bigint;
END $$;

---------------------------------------------------------------- check(): what a body runs
SELECT statement_no, line, rule, verdict, statement, message FROM migrate_guard.check($$
-- A lock taken earlier in the block is held to its end: the VALIDATE scans under the ADD's
-- ACCESS EXCLUSIVE lock. EXECUTE of a constant is the statement it runs.
DO $b$
DECLARE
  n int;
BEGIN
  ALTER TABLE pb.accounts ADD CONSTRAINT positive CHECK (balance > 0) NOT VALID;
  ALTER TABLE pb.accounts VALIDATE CONSTRAINT positive;
  SELECT count(*) INTO n FROM pb.accounts;
  IF n > 0 THEN
    EXECUTE 'ALTER TABLE pb.accounts RENAME COLUMN owner TO holder';
  END IF;
END $b$;
-- A loop that builds its statements: out of reach, said per statement.
DO $b$
DECLARE r record;
BEGIN
  FOR r IN SELECT relname FROM pg_class WHERE relnamespace = 'pb'::regnamespace AND relkind = 'r' LOOP
    EXECUTE format('ALTER TABLE pb.%I ADD COLUMN stamp timestamptz DEFAULT clock_timestamp()', r.relname);
  END LOOP;
END $b$;
-- A procedure the script creates and calls: the COMMIT between its statements ends the
-- transaction (the UPDATE after it is not judged with the DDL before it); the DROP is judged.
CREATE PROCEDURE pb.split() LANGUAGE plpgsql AS $p$
BEGIN
  ALTER TABLE pb.accounts ADD COLUMN region int;
  COMMIT;
  UPDATE pb.accounts SET region = 1;
  ALTER TABLE pb.accounts DROP COLUMN balance;
END $p$;
CALL pb.split();
-- A procedure already in the database: its body from the catalog.
CALL pb.widen();
-- Inside a transaction block a procedure cannot commit.
BEGIN;
CALL pb.split();
COMMIT;
-- A directive before the DO covers the statements of its block, as it does live; a comment
-- inside the body is part of the block's string, and no directive.
DO $b$ BEGIN /* migrate_guard:allow drop-column */ ALTER TABLE pb.events DROP COLUMN kind; END $b$;
/* migrate_guard:allow drop-column */ DO $b$ BEGIN ALTER TABLE pb.events DROP COLUMN kind; END $b$;
-- SQL bodies are read too; other languages are out of reach.
CREATE PROCEDURE pb.tidy() LANGUAGE sql AS $p$ ALTER TABLE pb.events RENAME TO events_old $p$;
CALL pb.tidy();
DO LANGUAGE plperl $b$ 1; $b$;
CALL pb.nowhere();
-- A procedure that calls itself is followed once.
CREATE PROCEDURE pb.again() LANGUAGE plpgsql AS $p$ BEGIN ALTER TABLE pb.accounts ADD COLUMN again int; CALL pb.again(); END $p$;
CALL pb.again();
$$) ORDER BY statement_no, line, rule;

---------------------------------------------------------------- transactions, conditions, names
-- A procedure a DO block calls may commit (the block is not atomic); one that is SECURITY
-- DEFINER may not; neither may an EXECUTE'd COMMIT. A statement under a condition may not run:
-- PostgreSQL's refusals for it are not reported, and a COMMIT under a condition is out of reach.
-- The utility and executor hooks read a directive from the statement the body runs.
SET migrate_guard.max_rows = 500;
CREATE PROCEDURE pb.step1() LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE pb.events ADD COLUMN c1 int; COMMIT; END $$;
SELECT statement_no, line, rule, verdict, statement, message FROM migrate_guard.check($$
DO $b$ BEGIN CALL pb.step1(); UPDATE pb.events SET c1 = 0; END $b$;
CREATE PROCEDURE pb.definer() LANGUAGE plpgsql SECURITY DEFINER AS $p$ BEGIN ALTER TABLE pb.events ADD COLUMN c2 int; COMMIT; END $p$;
CALL pb.definer();
DO $b$ BEGIN EXECUTE 'COMMIT'; END $b$;
DO $b$ BEGIN IF to_regclass('pb.accounts') IS NULL THEN CREATE TABLE pb.accounts (id int); END IF; END $b$;
CREATE PROCEDURE pb.maybe() LANGUAGE plpgsql AS $p$
BEGIN
  ALTER TABLE pb.events ADD COLUMN c3 int;
  IF random() > 0.5 THEN COMMIT; END IF;
  UPDATE pb.events SET c3 = 0;
END $p$;
CALL pb.maybe();
DO $b$ BEGIN ALTER TABLE pb.events ADD COLUMN c4 int; UPDATE /* migrate_guard:allow schema-and-data, large-update */ pb.events SET c4 = 0; END $b$;
-- Names: a procedure of another schema is not this one; a dropped one is gone.
CREATE PROCEDURE pb.fix() LANGUAGE plpgsql AS $p$ BEGIN ALTER TABLE pb.events DROP COLUMN id; END $p$;
CALL public.fix();
DROP PROCEDURE pb.fix();
CALL pb.fix();
DO LANGUAGE sql $b$ SELECT 1 $b$;
$$) ORDER BY statement_no, line, rule;
DO $b$ BEGIN CALL pb.step1(); UPDATE pb.events SET c1 = 0; END $b$;
DO $b$ BEGIN ALTER TABLE pb.events ADD COLUMN c4 int; UPDATE /* migrate_guard:allow schema-and-data, large-update */ pb.events SET c4 = 0; END $b$;
SELECT count(*) AS c4_set FROM pb.events WHERE c4 = 0;
RESET migrate_guard.max_rows;

---------------------------------------------------------------- the same, live
DO $b$
BEGIN
  ALTER TABLE pb.accounts ADD CONSTRAINT positive CHECK (balance > 0) NOT VALID;
  ALTER TABLE pb.accounts VALIDATE CONSTRAINT positive;
END $b$;
DO $b$
DECLARE r record;
BEGIN
  FOR r IN SELECT relname FROM pg_class WHERE relnamespace = 'pb'::regnamespace AND relkind = 'r' ORDER BY relname LOOP
    EXECUTE format('ALTER TABLE pb.%I ADD COLUMN stamp timestamptz DEFAULT clock_timestamp()', r.relname);
  END LOOP;
END $b$;
-- The first part of the procedure commits before the type change is refused.
CALL pb.widen();
SELECT attname FROM pg_attribute WHERE attrelid = 'pb.events'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
DO $b$ BEGIN /* migrate_guard:allow drop-column */ ALTER TABLE pb.events DROP COLUMN kind; END $b$;
/* migrate_guard:allow drop-column */ DO $b$ BEGIN ALTER TABLE pb.events DROP COLUMN kind; END $b$;

---------------------------------------------------------------- the safe ways pass
-- NOT VALID in one transaction, VALIDATE in the next (a procedure's COMMIT between them), and
-- a backfill in batches that commit.
CREATE PROCEDURE pb.safe() LANGUAGE plpgsql AS $p$
BEGIN
  ALTER TABLE pb.accounts ADD CONSTRAINT nonneg CHECK (balance >= 0) NOT VALID;
  COMMIT;
  ALTER TABLE pb.accounts VALIDATE CONSTRAINT nonneg;
END $p$;
CREATE PROCEDURE pb.fill() LANGUAGE plpgsql AS $p$
DECLARE n int;
BEGIN
  LOOP
    UPDATE pb.accounts SET flag = true WHERE id IN (SELECT id FROM pb.accounts WHERE flag IS NULL LIMIT 200);
    GET DIAGNOSTICS n = ROW_COUNT;
    EXIT WHEN n = 0;
    COMMIT;
  END LOOP;
END $p$;
SET migrate_guard.max_rows = 500;
SELECT statement_no, line, rule, verdict, statement FROM migrate_guard.check($$
CALL pb.safe();
DO $b$ BEGIN ALTER TABLE pb.accounts ADD COLUMN flag boolean; END $b$;
CALL pb.fill();
$$);
CALL pb.safe();
DO $b$ BEGIN ALTER TABLE pb.accounts ADD COLUMN flag boolean; END $b$;
CALL pb.fill();
SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'pb.accounts'::regclass AND contype <> 'n' ORDER BY conname;
SELECT count(*) AS flagged FROM pb.accounts WHERE flag;
-- The unsafe way, for contrast: the column and its backfill in one transaction.
SELECT statement_no, line, rule, verdict, statement FROM migrate_guard.check($$
DO $b$ BEGIN ALTER TABLE pb.events ADD COLUMN flag2 boolean; UPDATE pb.events SET flag2 = true; END $b$;
$$) ORDER BY rule;
DO $b$ BEGIN ALTER TABLE pb.events ADD COLUMN flag2 boolean; UPDATE pb.events SET flag2 = true; END $b$;
RESET migrate_guard.max_rows;
/* migrate_guard:allow drop-table */ DROP SCHEMA pb CASCADE;
RESET search_path;
