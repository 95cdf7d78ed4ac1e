-- Who may do what: every object of the extension with its privileges, and the invariants the
-- security model rests on (README, "Who can do what"). A change to any of them shows up here.
SET client_min_messages = warning;
CREATE TEMP VIEW mg_functions AS
SELECT p.oid, p.oid::regprocedure AS function, p.proname, p.prolang, p.prosecdef, p.proconfig, p.proacl, p.prosrc,
       p.prorettype
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'migrate_guard';

-- 1. Every function PUBLIC may execute: the entry points a user calls, and the event trigger
-- functions (PostgreSQL calls those only as event triggers), nothing else.
SELECT function FROM mg_functions
WHERE has_function_privilege('public', oid, 'EXECUTE') ORDER BY function::text;

-- 2. Functions granted to roles beyond PUBLIC and the owner (none: a DBA grants them).
SELECT function, proacl FROM mg_functions
WHERE proacl IS NOT NULL AND EXISTS (
    SELECT 1 FROM aclexplode(proacl) a
    WHERE a.grantee <> 0 AND a.grantee <> (SELECT extowner FROM pg_extension WHERE extname = 'migrate_guard'))
ORDER BY function::text;

-- 3. Invariants, each an empty result:
-- no helper (a name starting with _) is executable by PUBLIC;
SELECT function AS helper_executable_by_public FROM mg_functions
WHERE proname LIKE '\_%' AND has_function_privilege('public', oid, 'EXECUTE');
-- a SECURITY DEFINER function is one PUBLIC may not execute (a DBA grants it); entry points
-- change user in C, for their body only;
SELECT function AS security_definer, has_function_privilege('public', oid, 'EXECUTE') AS public_may_execute
FROM mg_functions WHERE prosecdef ORDER BY function::text;
-- every PL/pgSQL and SQL function pins its search_path;
SELECT function AS unpinned_search_path FROM mg_functions
WHERE prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql'))
  AND NOT coalesce(proconfig::text LIKE '%search_path=pg_catalog, pg_temp%', false);
-- no PL/pgSQL body runs dynamic SQL itself or reads current_user: DDL goes through _as_caller(),
-- which runs it as the calling role, and the caller comes from _caller();
SELECT function AS dynamic_sql_or_current_user FROM mg_functions
WHERE prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
  AND proname NOT IN ('_as_caller')
  AND (prosrc ~* '\mexecute\M\s+(format|''|\$|[a-z_]+\s*(;|\|\|)|sql|stmt)' OR prosrc ~* '\mcurrent_user\M');
-- every C function an ordinary role can call is an entry point (its body runs as the owner) or
-- a Rust function that checks its caller itself.
SELECT function, prosrc AS c_symbol FROM mg_functions
WHERE prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
  AND has_function_privilege('public', oid, 'EXECUTE')
ORDER BY function::text;
-- every entry point has its body, owner-only.
SELECT f.function AS entry_point_without_private_body FROM mg_functions f
WHERE f.prosrc = 'migrate_guard_entry'
  AND NOT EXISTS (SELECT 1 FROM mg_functions b
                  WHERE b.proname = '_' || f.proname AND NOT has_function_privilege('public', b.oid, 'EXECUTE'));

-- 4. Tables, views and sequences: PUBLIC reads (row level security decides which rows), writes
-- nothing.
SELECT c.oid::regclass AS relation, c.relkind, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       (SELECT string_agg(p, ',' ORDER BY p) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
         WHERE c.relkind <> 'S' AND has_table_privilege('public', c.oid, p)) AS public_may,
       (SELECT string_agg(p, ',' ORDER BY p) FROM unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) p
         WHERE c.relkind = 'S' AND has_sequence_privilege('public', c.oid, p)) AS public_may_sequence
FROM pg_class c
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'migrate_guard'
ORDER BY c.oid::regclass::text;
-- Row level security policies: who sees which rows.
SELECT tablename, policyname, cmd, roles, qual FROM pg_policies WHERE schemaname = 'migrate_guard'
ORDER BY tablename, policyname;
-- The schema: PUBLIC may use it, not create in it.
SELECT has_schema_privilege('public', 'migrate_guard', 'USAGE') AS public_usage,
       has_schema_privilege('public', 'migrate_guard', 'CREATE') AS public_create;

-- 5. Settings: which a session may set (user) and which only a superuser (superuser).
SELECT count(*) > 0 AS library_loaded FROM migrate_guard.rules();
SELECT name, context FROM pg_settings WHERE name LIKE 'migrate\_guard.%' ORDER BY name;
