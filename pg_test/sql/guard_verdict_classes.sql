-- Verdicts that depend on other objects and on what is already true: default partitions and
-- partition bounds (partition-scan), SET SCHEMA (rename-table), and subcommands that change
-- nothing (no-ops pass). Every safe way a hint gives is run here and passes.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA vc;
SET search_path = vc, public;
\set VERBOSITY default

-- Partitioned table with a populated default partition.
CREATE TABLE events (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_default PARTITION OF events DEFAULT;
INSERT INTO events SELECT g, date '2026-01-01' + g % 900 FROM generate_series(1, 3000) g;
ANALYZE events;

-- CREATE TABLE … PARTITION OF scans the default partition (parent ACCESS EXCLUSIVE meanwhile).
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');

-- ATTACH PARTITION of a populated table no constraint proves: two scans.
CREATE TABLE events_2028 (id int NOT NULL, at date NOT NULL);
INSERT INTO events_2028 SELECT g, date '2028-01-01' + g % 300 FROM generate_series(1, 1000) g;
ANALYZE events_2028;
ALTER TABLE events ATTACH PARTITION events_2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');

-- The safe way, as the hints give it: move the default's rows of 2027 and 2028 out, prove the
-- default holds none of them and that events_2028 fits its bound, each in its own transaction.
BEGIN;
SET LOCAL migrate_guard.allow = 'large-update';
CREATE TABLE events_moved AS SELECT * FROM events_default WHERE at >= '2027-01-01';
DELETE FROM events_default WHERE at >= '2027-01-01';
COMMIT;
ALTER TABLE events_default ADD CONSTRAINT events_default_not_events_2027
  CHECK (((at IS NULL) OR (at < '2027-01-01'::date) OR (at >= '2029-01-01'::date))) NOT VALID;
ALTER TABLE events_default VALIDATE CONSTRAINT events_default_not_events_2027;
ALTER TABLE events_2028 ADD CONSTRAINT events_2028_partition_bound
  CHECK (((at IS NOT NULL) AND (at >= '2028-01-01'::date) AND (at < '2029-01-01'::date))) NOT VALID;
ALTER TABLE events_2028 VALIDATE CONSTRAINT events_2028_partition_bound;
-- Now both pass: PostgreSQL's proof skips the scans.
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
ALTER TABLE events ATTACH PARTITION events_2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'events'::regclass ORDER BY 1;

-- IF NOT EXISTS of a partition that exists: PostgreSQL skips it, nothing is scanned.
CREATE TABLE IF NOT EXISTS events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
-- A bound that calls a function is not analysed (transforming it would run the function).
BEGIN;
CREATE TABLE events_today PARTITION OF events FOR VALUES FROM (current_date + 10000) TO (current_date + 10001);
ROLLBACK;
-- A bound outside what the default's constraint proves is scanned again.
CREATE TABLE events_2030 PARTITION OF events FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');
-- An empty default partition, or a new (empty) table attached, needs no proof.
CREATE TABLE plain (id int NOT NULL, k int NOT NULL) PARTITION BY LIST (k);
CREATE TABLE plain_default PARTITION OF plain DEFAULT;
CREATE TABLE plain_1 PARTITION OF plain FOR VALUES IN (1);
CREATE TABLE plain_2 (id int NOT NULL, k int NOT NULL);
ALTER TABLE plain ATTACH PARTITION plain_2 FOR VALUES IN (2);
-- Inside the transaction that created and filled it, attaching scans only this transaction's
-- own table: nobody else waits for it.
BEGIN;
CREATE TABLE plain_3 (id int NOT NULL, k int NOT NULL);
INSERT INTO plain_3 SELECT g, 3 FROM generate_series(1, 500) g;
ALTER TABLE plain ATTACH PARTITION plain_3 FOR VALUES IN (3);
COMMIT;
-- Allowed on purpose, recorded with the rule.
BEGIN;
SET LOCAL migrate_guard.allow = 'partition-scan';
CREATE TABLE events_2030 PARTITION OF events FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');
ROLLBACK;

-- SET SCHEMA breaks clients as a rename does; the hint's recipe leaves a view behind.
CREATE TABLE accounts (id int PRIMARY KEY, email text);
INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 1000) g;
ANALYZE accounts;
CREATE SCHEMA vc_archive;
ALTER TABLE accounts SET SCHEMA vc_archive;
BEGIN;
SET LOCAL migrate_guard.allow = 'rename-table';
ALTER TABLE vc.accounts SET SCHEMA vc_archive;
CREATE VIEW vc.accounts AS SELECT * FROM vc_archive.accounts;
COMMIT;
-- Clients that name vc.accounts keep working through the view, writes included.
INSERT INTO vc.accounts VALUES (1001, 'u1001');
SELECT count(*) FROM vc_archive.accounts;
-- A new table moves freely.
BEGIN;
CREATE TABLE fresh (id int);
ALTER TABLE fresh SET SCHEMA vc_archive;
COMMIT;

-- No-ops: what is asked for is already true, so no row moves; they pass.
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items SELECT g, 'i' || g FROM generate_series(1, 1000) g;
ANALYZE items;
SELECT pg_relation_filenode('items') AS node_before \gset
ALTER TABLE items SET TABLESPACE pg_default;
ALTER TABLE items SET LOGGED;
ALTER TABLE items ADD COLUMN IF NOT EXISTS name text DEFAULT md5(random()::text);
ALTER TABLE items ADD COLUMN IF NOT EXISTS id bigint NOT NULL DEFAULT 0, SET LOGGED;
SELECT pg_relation_filenode('items') = :node_before AS same_file;
-- ... but a real change in the same statement is still judged, and a column dropped by the
-- same statement is really added again.
ALTER TABLE items DROP COLUMN name, ADD COLUMN IF NOT EXISTS name text DEFAULT md5(random()::text);
ALTER TABLE items ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS score int NOT NULL DEFAULT (random() * 10)::int;
ALTER TABLE items SET UNLOGGED;
-- SET TABLESPACE on a partitioned table moves no data: it sets the default for new partitions.
SET allow_in_place_tablespaces = on;
CREATE TABLESPACE mg_vc_fast LOCATION '';
ALTER TABLE events SET TABLESPACE mg_vc_fast;
ALTER TABLE events SET TABLESPACE pg_default;
-- ... while a populated partition's own SET TABLESPACE copies it.
ALTER TABLE events_2026 SET TABLESPACE mg_vc_fast;
-- ALL IN TABLESPACE moves every matching relation: judged by each populated one it copies.
BEGIN;
SET LOCAL migrate_guard.allow = 'table-rewrite';
ALTER TABLE items SET TABLESPACE mg_vc_fast;
COMMIT;
ALTER TABLE ALL IN TABLESPACE mg_vc_fast SET TABLESPACE pg_default;
ALTER INDEX ALL IN TABLESPACE mg_vc_fast SET TABLESPACE pg_default;
/* migrate_guard:allow table-rewrite */ ALTER TABLE ALL IN TABLESPACE mg_vc_fast SET TABLESPACE pg_default;
DROP TABLESPACE mg_vc_fast;

-- Domains: a constraint added to a domain is checked against every stored value of it, in every
-- table that uses it (or a domain over it), under SHARE locks: judged by those tables.
CREATE DOMAIN email AS text;
CREATE DOMAIN work_email AS email;
CREATE DOMAIN unused_code AS int;
CREATE TABLE contacts (id int, address email, work work_email);
INSERT INTO contacts SELECT g, 'c' || g || '@example.com', 'w' || g || '@example.com' FROM generate_series(1, 1000) g;
ANALYZE contacts;
ALTER DOMAIN email ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%');
ALTER DOMAIN work_email SET NOT NULL;
-- The safe way: NOT VALID checks new values only, at once; the stored ones by a plain query.
ALTER DOMAIN email ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%') NOT VALID;
SELECT count(*) AS bad_addresses FROM contacts WHERE NOT (address::text LIKE '%@%');
INSERT INTO contacts VALUES (0, 'nobody');
-- VALIDATE scans under SHARE locks too: judged the same way.
ALTER DOMAIN email VALIDATE CONSTRAINT email_has_at;
-- A domain no populated table uses, and subcommands that check nothing, pass.
ALTER DOMAIN unused_code ADD CONSTRAINT positive CHECK (VALUE > 0);
ALTER DOMAIN unused_code SET NOT NULL;
ALTER DOMAIN email SET DEFAULT 'none@example.com';
ALTER DOMAIN email DROP CONSTRAINT email_has_at;

-- Drops that reach further than they name: judged by what they drop with them.
DROP SCHEMA vc_archive CASCADE;
CREATE TYPE mood AS ENUM ('ok', 'bad');
ALTER TABLE items ADD COLUMN mood mood, ADD COLUMN moods mood[];
DROP TYPE mood CASCADE;
DROP TYPE mood;
DROP DOMAIN work_email CASCADE;
CREATE TYPE pair AS (a int, b int);
CREATE TABLE pairs OF pair;
INSERT INTO pairs VALUES (1, 2);
-- Renaming an attribute with CASCADE renames the column of every table typed by it (without
-- CASCADE PostgreSQL refuses).
ALTER TYPE pair RENAME ATTRIBUTE b TO second CASCADE;
ALTER TYPE pair RENAME ATTRIBUTE b TO second;
SELECT count(*) AS checked_too FROM migrate_guard.check('ALTER TYPE vc.pair RENAME ATTRIBUTE b TO second CASCADE;')
 WHERE rule = 'rename-column' AND verdict = 'block';
DROP TYPE pair CASCADE;
CREATE ROLE mg_vc_owner;
CREATE TABLE owned (id int);
INSERT INTO owned VALUES (1);
ALTER TABLE owned OWNER TO mg_vc_owner;
DROP OWNED BY mg_vc_owner;
-- What reaches only new or nothing passes.
BEGIN;
CREATE SCHEMA vc_scratch;
CREATE TABLE vc_scratch.t AS SELECT 1 AS x;
DROP SCHEMA vc_scratch CASCADE;
COMMIT;
CREATE TYPE unused_kind AS ENUM ('a');
DROP TYPE unused_kind CASCADE;
/* migrate_guard:allow drop-table */ DROP OWNED BY mg_vc_owner;
DROP ROLE mg_vc_owner;

-- Earlier statements of the same transaction: a lock is held to the end, so VALIDATE after the
-- ADD … NOT VALID in one transaction scans under the ADD's ACCESS EXCLUSIVE.
BEGIN;
ALTER TABLE items ADD CONSTRAINT items_name_present CHECK (name IS NOT NULL) NOT VALID;
ALTER TABLE items VALIDATE CONSTRAINT items_name_present;
ROLLBACK;
CREATE TABLE owners (id int PRIMARY KEY);
INSERT INTO owners SELECT generate_series(1, 1000);
ALTER TABLE items ADD COLUMN owner_id int;
BEGIN;
ALTER TABLE items ADD CONSTRAINT items_owner_fkey FOREIGN KEY (owner_id) REFERENCES owners NOT VALID;
ALTER TABLE items VALIDATE CONSTRAINT items_owner_fkey;
ROLLBACK;
-- The recipe as the hints give it: each in its own transaction, both pass.
ALTER TABLE items ADD CONSTRAINT items_name_present CHECK (name IS NOT NULL) NOT VALID;
ALTER TABLE items VALIDATE CONSTRAINT items_name_present;
-- VALIDATE of a constraint that is valid already does nothing, whatever the transaction holds.
BEGIN;
ALTER TABLE items ADD COLUMN scratch int;
ALTER TABLE items VALIDATE CONSTRAINT items_name_present;
ROLLBACK;
-- A transaction whose earlier statements took only SHARE UPDATE EXCLUSIVE validates freely.
BEGIN;
ALTER TABLE items SET (fillfactor = 90);
ALTER TABLE items VALIDATE CONSTRAINT items_name_present;
COMMIT;

-- check() gives the same verdicts before the deploy.
SELECT statement_no, rule, verdict FROM migrate_guard.check($$
CREATE TABLE vc.events_2031 PARTITION OF vc.events FOR VALUES FROM ('2031-01-01') TO ('2032-01-01');
ALTER TABLE vc.events ATTACH PARTITION vc.events_moved FOR VALUES FROM ('2032-01-01') TO ('2033-01-01');
ALTER TABLE vc.items SET LOGGED, SET TABLESPACE pg_default;
ALTER TABLE vc.items ADD COLUMN IF NOT EXISTS name text DEFAULT md5(random()::text);
ALTER TABLE vc.items SET UNLOGGED;
ALTER TABLE vc.items SET SCHEMA vc_archive;
ALTER DOMAIN vc.email ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%');
ALTER DOMAIN vc.email ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%') NOT VALID;
DROP SCHEMA vc_archive CASCADE;
DROP DOMAIN vc.work_email CASCADE;
BEGIN;
ALTER TABLE vc.events_2026 ADD CONSTRAINT events_2026_id_positive CHECK (id > 0) NOT VALID;
ALTER TABLE vc.events_2026 VALIDATE CONSTRAINT events_2026_id_positive;
COMMIT;
ALTER TABLE vc.events_2026 VALIDATE CONSTRAINT events_2026_id_positive;
$$) ORDER BY statement_no, rule;

-- History: what passed, how.
SELECT command_tag, object_identity, verdict, rules_allowed, allowed_via
  FROM migrate_guard.history
 WHERE object_identity LIKE 'vc.%' OR object_identity LIKE 'vc_archive.%'
 ORDER BY id;

RESET search_path;
/* migrate_guard:allow drop-table, drop-column */ DROP SCHEMA vc CASCADE;
/* migrate_guard:allow drop-table, drop-column */ DROP SCHEMA vc_archive CASCADE;
