-- Usage tracking (with shared_preload_libraries = 'migrate_guard'): which tables, views and
-- columns queries read and write, when last, how often and by whom. See src/usage.rs.
--   usage           the view: one row per relation (column_name NULL) and per column used
--   usage_status()  whether tracking runs, since when, how it began, how full its table is
--   reset_usage()   forget every count (superusers only)
-- Everyone may read the view: superusers and members of pg_read_all_stats see every relation
-- of the database, other roles the relations they own.

CREATE FUNCTION migrate_guard.usage_rows()
RETURNS TABLE (relid oid, attnum smallint, last_read timestamptz, last_write timestamptz,
               reads bigint, writes bigint, recent_users text[])
LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'usage_rows_wrapper';
COMMENT ON FUNCTION migrate_guard.usage_rows() IS
    'migrate_guard: the tracked usage of this database''s relations the caller may see (read through migrate_guard.usage)';

CREATE FUNCTION migrate_guard.usage_status()
RETURNS TABLE (tracking boolean, tracked_since timestamptz, began text, entries bigint,
               max_entries bigint, refused bigint, full_since timestamptz)
LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'usage_status_wrapper';
COMMENT ON FUNCTION migrate_guard.usage_status() IS
    'migrate_guard: whether usage is tracked, since when and how tracking began, and how full its table is';

CREATE FUNCTION migrate_guard.reset_usage()
RETURNS boolean
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'reset_usage_wrapper';
COMMENT ON FUNCTION migrate_guard.reset_usage() IS
    'migrate_guard: forget every usage count, in every database (superusers only)';
REVOKE EXECUTE ON FUNCTION migrate_guard.reset_usage() FROM PUBLIC;

CREATE VIEW migrate_guard.usage AS
SELECT u.relid::pg_catalog.regclass AS relation,
       a.attname AS column_name,
       u.last_read, u.last_write, u.reads, u.writes, u.recent_users,
       s.tracked_since
  FROM migrate_guard.usage_rows() u
  JOIN pg_catalog.pg_class c ON c.oid = u.relid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname <> 'migrate_guard'
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = u.relid AND a.attnum = u.attnum AND u.attnum > 0
  CROSS JOIN migrate_guard.usage_status() s
 WHERE u.attnum = 0 OR (a.attnum IS NOT NULL AND NOT a.attisdropped);
COMMENT ON VIEW migrate_guard.usage IS
    'migrate_guard: when queries last read and wrote each relation and column, how often, and who (needs shared_preload_libraries)';
GRANT SELECT ON migrate_guard.usage TO PUBLIC;
