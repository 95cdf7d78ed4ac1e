-- publication-identity: a publication that publishes UPDATE or DELETE makes both fail on every
-- table it includes that has no replica identity (no primary key with REPLICA IDENTITY DEFAULT,
-- or REPLICA IDENTITY NOTHING), from the commit on: as sure a break for clients as a rename.
SET migrate_guard.lock_timeout = 0;
-- (CREATE PUBLICATION warns that wal_level is not logical on this cluster: not the point here.)
SET client_min_messages = error;
CREATE SCHEMA pubs;
SET search_path = pubs, public;
\set VERBOSITY default
CREATE TABLE keyed (id int PRIMARY KEY, v text);
CREATE TABLE loose (id int, v text);
CREATE TABLE logged_whole (id int, v text);
ALTER TABLE logged_whole REPLICA IDENTITY FULL;
CREATE TABLE parts (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (1000);
INSERT INTO keyed SELECT g, 'x' FROM generate_series(1, 100) g;
INSERT INTO loose SELECT g, 'x' FROM generate_series(1, 100) g;
INSERT INTO logged_whole SELECT g, 'x' FROM generate_series(1, 100) g;
INSERT INTO parts SELECT g, 'x' FROM generate_series(1, 100) g;

-- Tables with a primary key, or REPLICA IDENTITY FULL: pass.
CREATE PUBLICATION pub_ok FOR TABLE keyed, logged_whole;
-- One without: blocked.
CREATE PUBLICATION pub_bad FOR TABLE keyed, loose;
-- Inserts only: nothing breaks, passes.
CREATE PUBLICATION pub_inserts FOR TABLE loose WITH (publish = 'insert, truncate');
-- Added to a publication that publishes updates: blocked (ADD and SET alike).
ALTER PUBLICATION pub_ok ADD TABLE loose;
ALTER PUBLICATION pub_ok SET TABLE keyed, loose;
-- A partitioned table is judged by its partitions.
ALTER PUBLICATION pub_ok ADD TABLE parts;
-- Added to the inserts-only publication: passes.
ALTER PUBLICATION pub_inserts ADD TABLE parts;

-- What the rule prevents: allowed, the publication makes UPDATE fail.
/* migrate_guard:allow publication-identity */ ALTER PUBLICATION pub_ok ADD TABLE loose;
UPDATE loose SET v = 'y' WHERE id = 1;
-- The safe way: a replica identity first; then updates work while it is published.
ALTER TABLE loose REPLICA IDENTITY FULL;
UPDATE loose SET v = 'y' WHERE id = 1;
ALTER PUBLICATION pub_ok ADD TABLE parts;
ALTER TABLE parts_1 REPLICA IDENTITY FULL;
ALTER PUBLICATION pub_ok ADD TABLE parts;

-- Turning updates on for a publication that published inserts only: judged by the tables it
-- already has.
CREATE TABLE loose2 (id int, v text);
ALTER PUBLICATION pub_inserts ADD TABLE loose2;
ALTER PUBLICATION pub_inserts SET (publish = 'insert, update, delete');
ALTER PUBLICATION pub_inserts SET (publish = 'insert, truncate');

-- check() gives the same verdicts before the deploy (FOR ALL TABLES: every table of the
-- database, judged the same way; pubs.parts_1 and the others have an identity by now, but the
-- catalog of this database may hold other tables without one, so only the verdict on the
-- new table is shown).
CREATE TABLE later (id int, v text);
INSERT INTO later VALUES (1, 'x');
SELECT statement_no, rule, verdict, message FROM migrate_guard.check($$
CREATE PUBLICATION pub_check FOR TABLE pubs.keyed, pubs.later;
ALTER PUBLICATION pub_inserts ADD TABLE pubs.later;
ALTER PUBLICATION pub_ok ADD TABLE pubs.later;
$$) ORDER BY statement_no, rule;
SELECT count(*) > 0 AS all_tables_blocked FROM migrate_guard.check('CREATE PUBLICATION pub_all FOR ALL TABLES')
 WHERE rule = 'publication-identity' AND verdict = 'block';

RESET search_path;
DROP PUBLICATION pub_ok, pub_inserts;
/* migrate_guard:allow drop-table */ DROP SCHEMA pubs CASCADE;
