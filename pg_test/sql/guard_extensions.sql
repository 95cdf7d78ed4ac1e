-- DDL run by other extensions' install and upgrade scripts is never blocked.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA gx;
SET search_path = gx, public;
CREATE TABLE ext_target (id int PRIMARY KEY, payload text);
INSERT INTO ext_target SELECT g, 'p' || g FROM generate_series(1, 1000) g;
VACUUM ANALYZE ext_target;
ANALYZE ext_target;

-- The same statements, run directly, are blocked.
CREATE INDEX mg_test_ext_idx ON ext_target (payload);
ALTER TABLE ext_target RENAME COLUMN payload TO body;

-- The fixture extension's install script builds an index and renames a column ...
CREATE EXTENSION mg_test_ext VERSION '1.0' SCHEMA gx;
SELECT indexname FROM pg_indexes WHERE tablename = 'ext_target' ORDER BY 1;
SELECT attname FROM pg_attribute WHERE attrelid = 'ext_target'::regclass AND attnum > 0 ORDER BY attnum;
-- ... and its upgrade script drops the index and renames the table.
ALTER EXTENSION mg_test_ext UPDATE TO '1.1';
SELECT to_regclass('gx.ext_target_renamed') IS NOT NULL AS renamed;
DROP EXTENSION mg_test_ext;

-- Contrib extensions install and upgrade normally.
CREATE EXTENSION pg_trgm SCHEMA gx;
CREATE EXTENSION hstore SCHEMA gx VERSION '1.6';
ALTER EXTENSION hstore UPDATE TO '1.7';
SELECT extname FROM pg_extension WHERE extname IN ('pg_trgm', 'hstore') ORDER BY 1;
