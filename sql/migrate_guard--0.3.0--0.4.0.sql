-- migrate_guard 0.3.0 -> 0.4.0: the extension leaves the session's lastval() alone, and its
-- functions carry the volatility and parallel-safety markings their bodies warrant.
\echo Use "ALTER EXTENSION migrate_guard UPDATE TO '0.4.0'" to load this file. \quit

-- Ids of migrations and backfill jobs come from _next_id(), which moves the identity sequence with
-- setval() (history rows get theirs the same way, from C): nextval() would make the sequence the
-- caller's "last used" one, and SELECT lastval() would return a migrate_guard id.
CREATE  FUNCTION migrate_guard."_next_id"(
	"tbl" oid /* pg_sys :: Oid */
) RETURNS bigint /* i64 */
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_next_id_wrapper';

CREATE OR REPLACE FUNCTION migrate_guard.begin_migration(name text, checksum text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    open_id  bigint;
    previous migrate_guard.migrations;
    new_id   bigint;
BEGIN
    -- Loads the library, so that migrate_guard.current_migration is a real (superuser) setting.
    PERFORM migrate_guard.migration_statement_count(0);
    IF begin_migration.name IS NULL OR btrim(begin_migration.name) = '' THEN
        RAISE EXCEPTION 'migrate_guard: a migration needs a name'
            USING ERRCODE = '22023', HINT = 'Call migrate_guard.begin_migration(name, checksum).';
    END IF;
    open_id := nullif(current_setting('migrate_guard.current_migration', true), '')::bigint;
    IF open_id IS NOT NULL THEN
        SELECT * INTO previous FROM migrate_guard.migrations m WHERE m.id = open_id;
        RAISE EXCEPTION 'migrate_guard: migration "%" is still open in this session', previous.name
            USING ERRCODE = '55000', HINT = 'Call migrate_guard.end_migration() first.';
    END IF;

    -- One session at a time decides about a name: a second one waits here until the first
    -- one's transaction ends, then sees what it committed.
    PERFORM pg_advisory_xact_lock(hashtext('migrate_guard.begin_migration'), hashtext(begin_migration.name));

    -- Attempts whose session is gone will never finish.
    UPDATE migrate_guard.migrations m
       SET status = 'abandoned', finished_at = clock_timestamp()
     WHERE m.name = begin_migration.name AND m.status = 'running'
       AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                        WHERE a.pid = m.backend_pid AND a.backend_start = m.backend_start);

    SELECT * INTO previous FROM migrate_guard.migrations m
     WHERE m.name = begin_migration.name AND m.status = 'running';
    IF FOUND THEN
        RAISE EXCEPTION 'migrate_guard: migration "%" is being applied right now by backend %',
                        previous.name, previous.backend_pid
            USING ERRCODE = '55006',
                  DETAIL = format('Started at %s by %s.', previous.started_at, previous.applied_by);
    END IF;

    SELECT * INTO previous FROM migrate_guard.migrations m
     WHERE m.name = begin_migration.name AND m.status = 'applied';
    IF FOUND THEN
        IF previous.checksum IS NOT NULL AND begin_migration.checksum IS NOT NULL
           AND previous.checksum <> begin_migration.checksum THEN
            RAISE EXCEPTION 'migrate_guard: migration "%" was already applied with checksum "%", not "%"',
                            previous.name, previous.checksum, begin_migration.checksum
                USING ERRCODE = 'MG002',
                      DETAIL = format('It was applied at %s by %s.', previous.finished_at, previous.applied_by),
                      HINT = 'An applied migration must not be edited: write a new migration for the change.';
        END IF;
        RAISE NOTICE 'migrate_guard: migration "%" was already applied at % by %; skip it',
                     previous.name, previous.finished_at, previous.applied_by;
        RETURN false;
    END IF;

    -- The id comes from _next_id() rather than the identity default, whose nextval() would
    -- change the caller's lastval().
    INSERT INTO migrate_guard.migrations (id, name, checksum, status, started_at, applied_by, backend_pid, backend_start)
    OVERRIDING SYSTEM VALUE
    SELECT migrate_guard._next_id('migrate_guard.migrations'::regclass), begin_migration.name, begin_migration.checksum, 'running', clock_timestamp(), session_user,
           pg_backend_pid(), a.backend_start
      FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()
    RETURNING id INTO new_id;
    PERFORM set_config('migrate_guard.current_migration', new_id::text, false);
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION migrate_guard._backfill_job_open(
    p_table oid, p_table_name text, p_set text, p_where text, p_batch_size integer,
    p_strategy text, p_keys text[], p_rows bigint, p_pages bigint, p_restart boolean)
RETURNS migrate_guard.backfills
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job     migrate_guard.backfills;
    other   record;
    me      timestamptz;
    node    oid := CASE WHEN p_strategy = 'pages' THEN pg_relation_filenode(p_table) END;
BEGIN
    IF NOT has_any_column_privilege(p_table, 'UPDATE') THEN
        RAISE EXCEPTION 'permission denied for table %', p_table_name USING ERRCODE = '42501';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('migrate_guard.backfill'), hashtext(p_table::text));
    SELECT a.backend_start INTO me FROM pg_stat_activity a WHERE a.pid = pg_backend_pid();
    SELECT * INTO other FROM migrate_guard._backfill_running_elsewhere(p_table, p_set, p_where);
    IF FOUND THEN
        RAISE EXCEPTION 'migrate_guard: backfill job % on % is already running in another session',
                        other.job_id, p_table_name
            USING ERRCODE = '55006',
                  DETAIL = format('Backend %s runs it (as %s); its last batch committed at %s.',
                                  other.backend_pid, other.run_by, other.updated_at),
                  HINT = format('Wait for it to finish, or stop it with: SELECT migrate_guard.cancel_backfill(%s);', other.job_id);
    END IF;
    SELECT * INTO job FROM migrate_guard.backfills b
     WHERE b.table_oid = p_table AND b.set_clause = p_set AND b.where_clause IS NOT DISTINCT FROM p_where
       AND b.status IN ('running', 'failed', 'cancelled')
     ORDER BY b.id DESC LIMIT 1;
    IF FOUND AND p_restart THEN
        UPDATE migrate_guard.backfills b
           SET status = 'abandoned', finished_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE b.id = job.id;
    ELSIF FOUND THEN
        IF job.strategy <> p_strategy OR job.key_columns <> p_keys THEN
            RAISE EXCEPTION 'migrate_guard: backfill job % on % walked % (%), but the table now has %',
                            job.id, job.table_name, job.strategy, array_to_string(job.key_columns, ', '),
                            CASE WHEN p_strategy = 'pages' THEN 'no primary key'
                                 ELSE 'primary key (' || array_to_string(p_keys, ', ') || ')' END
                USING ERRCODE = '55000',
                      HINT = 'Start it over: CALL migrate_guard.backfill(…, restart => true).';
        END IF;
        IF job.table_filenode IS DISTINCT FROM node THEN
            RAISE EXCEPTION 'migrate_guard: backfill job % on % walks the table''s pages, and the table was rewritten since it started',
                            job.id, job.table_name
                USING ERRCODE = '55000',
                      DETAIL = 'VACUUM FULL, CLUSTER or a rewriting ALTER TABLE moved its rows: the job''s position means nothing any more.',
                      HINT = 'Start it over with restart => true, with a where_clause that is false for rows already done.';
        END IF;
        UPDATE migrate_guard.backfills b
           SET status = 'running', cancel_requested = false, last_error = NULL, batch_size = p_batch_size,
               run_by = current_user, backend_pid = pg_backend_pid(), backend_start = me,
               updated_at = clock_timestamp(), finished_at = NULL
         WHERE b.id = job.id
        RETURNING * INTO job;
        RETURN job;
    END IF;
    -- The id comes from _next_id(): the identity default's nextval() would change the caller's lastval().
    INSERT INTO migrate_guard.backfills
        (id, table_oid, table_name, set_clause, where_clause, batch_size, strategy, key_columns, end_page,
         table_filenode, rows_total, status, run_by, backend_pid, backend_start, started_at, updated_at)
    OVERRIDING SYSTEM VALUE
    VALUES (migrate_guard._next_id('migrate_guard.backfills'::regclass), p_table, p_table_name, p_set, p_where, p_batch_size, p_strategy, p_keys,
            CASE WHEN p_strategy = 'pages' THEN p_pages END, node, p_rows, 'running', current_user,
            pg_backend_pid(), me, clock_timestamp(), clock_timestamp())
    RETURNING * INTO job;
    RETURN job;
END
$$;

-- A page walk's batch on PostgreSQL 13 (no TID range scan there): every TID of its pages.
CREATE FUNCTION migrate_guard._backfill_tids(lo tid, hi tid)
RETURNS tid[]
LANGUAGE sql STABLE PARALLEL SAFE STRICT SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(array_agg(format('(%s,%s)', p, o)::tid ORDER BY p, o), '{}')
FROM generate_series((lo::text::point)[0]::bigint, (hi::text::point)[0]::bigint - 1) p,
     -- MaxHeapTuplesPerPage: (block size - page header) / (tuple header + line pointer)
     generate_series(1, (current_setting('block_size')::int - 24) / 28) o
$$;

-- Markings: an immutable function is parallel safe; functions that read pg_stat_activity or
-- pg_backend_pid() (parallel restricted) are restricted; a read-only table lookup is safe.
ALTER FUNCTION migrate_guard._backfill_fraction(migrate_guard.backfills) PARALLEL SAFE;
ALTER FUNCTION migrate_guard._backfill_alive(integer, timestamptz, timestamptz) PARALLEL RESTRICTED;
ALTER FUNCTION migrate_guard._backfill_running_elsewhere(oid, text, text) PARALLEL RESTRICTED;
ALTER FUNCTION migrate_guard._backfill_job_exists(bigint) PARALLEL SAFE;
ALTER FUNCTION migrate_guard.list_backfills() PARALLEL RESTRICTED;

-- check(): a whole migration script judged before it runs (C function in the library).
CREATE FUNCTION migrate_guard."check"(
    "script" TEXT,
    "assume_populated" bool DEFAULT NULL
) RETURNS TABLE (
    "statement_no" INT,
    "line" INT,
    "col" INT,
    "rule" TEXT,
    "verdict" TEXT,
    "message" TEXT,
    "detail" TEXT,
    "hint" TEXT,
    "statement" TEXT,
    "end_line" INT,
    "sqlstate" TEXT
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'check_script_wrapper';
