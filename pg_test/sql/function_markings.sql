-- Every function of the extension with its volatility, parallel safety, strictness and
-- security: a change to any of them shows up here. Rules behind them: an immutable or stable
-- function that only computes or reads is parallel safe (restricted when it reads
-- pg_backend_pid() or pg_stat_activity); anything that writes, takes ids, or reads backend-local
-- state is volatile and parallel unsafe; a SECURITY DEFINER function pins its search_path.
SELECT p.oid::regprocedure AS function,
       CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'f' THEN 'function' END AS kind,
       CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END AS volatility,
       CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' ELSE 'unsafe' END AS parallel,
       p.proisstrict AS strict, p.prosecdef AS security_definer, p.proconfig AS settings
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'migrate_guard'
ORDER BY p.oid::regprocedure::text;

-- The checks PostgreSQL's own opr_sanity applies to built-in functions, and ours:
-- an immutable function must be parallel safe;
SELECT p.oid::regprocedure AS immutable_but_not_parallel_safe
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'migrate_guard'
WHERE p.provolatile = 'i' AND p.proparallel <> 's';
-- a SECURITY DEFINER function must pin search_path;
SELECT p.oid::regprocedure AS security_definer_without_search_path
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'migrate_guard'
WHERE p.prosecdef AND NOT coalesce(p.proconfig::text LIKE '%search_path=%', false);
-- a function whose body writes (INSERT, UPDATE, DELETE, set_config, _next_id) must be volatile
-- and parallel unsafe.
SELECT p.oid::regprocedure AS writes_but_not_volatile_unsafe
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'migrate_guard'
WHERE p.prosrc ~* '\m(insert|update|delete)\s+(into\s+|from\s+)?migrate_guard\.|set_config|_next_id\('
  AND (p.provolatile <> 'v' OR p.proparallel <> 'u');
-- (The pattern finds the functions that write: the check above is not empty by construction.)
SELECT string_agg(p.proname, ', ' ORDER BY p.proname) AS functions_that_write
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'migrate_guard'
WHERE p.prosrc ~* '\m(insert|update|delete)\s+(into\s+|from\s+)?migrate_guard\.|set_config|_next_id\(';
