-- ALTER COLUMN ... TYPE that PostgreSQL makes in place (no row is rewritten) can still read every
-- row under the ALTER's ACCESS EXCLUSIVE lock: PostgreSQL re-creates what depends on the column,
-- keeps an index's storage only when its operator classes and collations stay the same (never for
-- an expression or predicate index), and validates a CHECK constraint again. Each verdict is shown
-- against what PostgreSQL really does: an index rebuilt gets a new relfilenode, a CHECK constraint
-- re-checked calls its function once per row.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA tip;
SET search_path = tip, public;
\set VERBOSITY default
CREATE SEQUENCE calls;
CREATE FUNCTION counted(text) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN PERFORM nextval('tip.calls'); RETURN true; END$$;
CREATE TABLE people (id int PRIMARY KEY, name varchar(50), email varchar(100), code varchar(10),
                     note varchar(20), plain varchar(20));
INSERT INTO people SELECT g, 'n' || g, 'e' || g || '@x', 'c' || (g % 100), 'x', 'p'
  FROM generate_series(1, 1000) g;
ANALYZE people;
CREATE INDEX CONCURRENTLY people_name ON people (name);
CREATE INDEX CONCURRENTLY people_email_lower ON people (lower(email));
CREATE INDEX CONCURRENTLY people_code_pattern ON people (code varchar_pattern_ops);
ALTER TABLE people ADD CONSTRAINT note_counted CHECK (counted(note)) NOT VALID;
ALTER TABLE people VALIDATE CONSTRAINT note_counted;
CREATE FUNCTION storage(idx text) RETURNS oid LANGUAGE sql AS
  $$SELECT relfilenode FROM pg_class WHERE oid = idx::regclass$$;

-- Widening a plain indexed column: the index is reused, nothing is read: passes.
SELECT storage('people_name') AS name_before \gset
ALTER TABLE people ALTER COLUMN name TYPE varchar(80);
SELECT storage('people_name') = :name_before AS index_reused;

-- A collation change under an index: the index is built again. Blocked.
ALTER TABLE people ALTER COLUMN name TYPE varchar(80) COLLATE "C";
/* migrate_guard:allow column-type-rewrite */ ALTER TABLE people ALTER COLUMN name TYPE varchar(80) COLLATE "C";
SELECT storage('people_name') <> :name_before AS index_rebuilt;

-- An expression index on the column is never reused, even when only a length limit grows. Blocked.
SELECT storage('people_email_lower') AS email_before \gset
ALTER TABLE people ALTER COLUMN email TYPE varchar(200);
/* migrate_guard:allow column-type-rewrite */ ALTER TABLE people ALTER COLUMN email TYPE varchar(200);
SELECT storage('people_email_lower') <> :email_before AS index_rebuilt;

-- An operator class written on the index stays on it: reused. Passes.
SELECT storage('people_code_pattern') AS code_before \gset
ALTER TABLE people ALTER COLUMN code TYPE varchar(20);
SELECT storage('people_code_pattern') = :code_before AS index_reused;

-- A validated CHECK constraint on the column is checked again on every row. Blocked.
SELECT last_value AS calls_before FROM calls \gset
ALTER TABLE people ALTER COLUMN note TYPE varchar(30);
/* migrate_guard:allow column-type-rewrite */ ALTER TABLE people ALTER COLUMN note TYPE varchar(30);
SELECT last_value - :calls_before AS rows_checked FROM calls;

-- A partitioned table: a partitioned index has no storage of its own to keep, so PostgreSQL builds
-- every partition's index again, even for a widening. Blocked.
CREATE TABLE orders (id int NOT NULL, ref varchar(20)) PARTITION BY RANGE (id);
CREATE TABLE orders_1 PARTITION OF orders FOR VALUES FROM (0) TO (1000);
CREATE TABLE orders_2 PARTITION OF orders FOR VALUES FROM (1000) TO (2000);
INSERT INTO orders SELECT g, 'r' || g FROM generate_series(1, 1999) g;
ANALYZE orders;
/* migrate_guard:allow blocking-index */ CREATE INDEX orders_ref ON orders (ref);
CREATE FUNCTION partition_storage(part regclass) RETURNS oid LANGUAGE sql AS
  $$SELECT c.relfilenode FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = part$$;
SELECT partition_storage('orders_1') AS part_before \gset
ALTER TABLE orders ALTER COLUMN ref TYPE varchar(40);
/* migrate_guard:allow column-type-rewrite */ ALTER TABLE orders ALTER COLUMN ref TYPE varchar(40);
SELECT partition_storage('orders_1') <> :part_before AS partition_index_rebuilt;

-- An operator class that takes any type (GIN's array_ops) is not reused when the column's type
-- changes, even to a domain over the same type. Blocked.
CREATE DOMAIN intlist AS int[];
ALTER TABLE people ADD COLUMN tags int[];
CREATE INDEX CONCURRENTLY people_tags ON people USING gin (tags);
SELECT storage('people_tags') AS tags_before \gset
ALTER TABLE people ALTER COLUMN tags TYPE intlist;
/* migrate_guard:allow column-type-rewrite */ ALTER TABLE people ALTER COLUMN tags TYPE intlist;
SELECT storage('people_tags') <> :tags_before AS index_rebuilt;

-- Nothing depends on the column: passes.
ALTER TABLE people ALTER COLUMN plain TYPE varchar(40);

-- check() gives the same verdicts before the deploy. The first statement writes no COLLATE: the
-- column then takes its type's default collation again instead of "C", and the index is rebuilt.
SELECT statement_no, rule, verdict, message FROM migrate_guard.check($$
ALTER TABLE tip.people ALTER COLUMN name TYPE varchar(90);
ALTER TABLE tip.people ALTER COLUMN name TYPE varchar(90) COLLATE "POSIX";
ALTER TABLE tip.people ALTER COLUMN email TYPE varchar(300);
ALTER TABLE tip.people ALTER COLUMN note TYPE varchar(40);
ALTER TABLE tip.people ALTER COLUMN plain TYPE varchar(50);
ALTER TABLE tip.orders ALTER COLUMN ref TYPE varchar(50);
$$) ORDER BY statement_no, rule;

RESET search_path;
/* migrate_guard:allow drop-table */ DROP SCHEMA tip CASCADE;
