-- Registering migrations: begin_migration() / end_migration(), usable from psql -f files and
-- from any tool that runs SQL. SECURITY DEFINER (owned by the superuser who installed the
-- extension) with a pinned search_path: callers need no rights on the tables.

CREATE FUNCTION migrate_guard.begin_migration(name text, checksum text DEFAULT NULL)
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
COMMENT ON FUNCTION migrate_guard.begin_migration(text, text) IS
    'migrate_guard: start a migration; false (with a NOTICE) when it was already applied, an error when it was applied with another checksum';

CREATE FUNCTION migrate_guard.end_migration()
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    open_id bigint;
    n       integer;
BEGIN
    PERFORM migrate_guard.migration_statement_count(0);
    open_id := nullif(current_setting('migrate_guard.current_migration', true), '')::bigint;
    IF open_id IS NULL THEN
        RAISE EXCEPTION 'migrate_guard: no migration is open in this session'
            USING ERRCODE = '55000',
                  HINT = 'Call migrate_guard.begin_migration(name, checksum) before the migration''s statements.';
    END IF;
    n := migrate_guard.migration_statement_count(open_id);
    UPDATE migrate_guard.migrations m
       SET status = 'applied', finished_at = clock_timestamp(), statement_count = n
     WHERE m.id = open_id AND m.status = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migrate_guard: the open migration (id %) is no longer running', open_id
            USING ERRCODE = '55000';
    END IF;
    PERFORM set_config('migrate_guard.current_migration', '', false);
    RETURN n;
END
$$;
COMMENT ON FUNCTION migrate_guard.end_migration() IS
    'migrate_guard: mark the open migration applied; returns how many DDL statements it ran';

CREATE FUNCTION migrate_guard.prune_history(older_than interval)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL OR older_than <= interval '0' THEN
        RAISE EXCEPTION 'migrate_guard: prune_history needs a positive interval, not %', coalesce(older_than::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'For example: SELECT migrate_guard.prune_history(interval ''90 days'');';
    END IF;
    DELETE FROM migrate_guard.history h WHERE h.executed_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION migrate_guard.prune_history(interval) IS
    'migrate_guard: delete history rows older than the given interval; returns how many';
REVOKE EXECUTE ON FUNCTION migrate_guard.prune_history(interval) FROM PUBLIC;

-- Registering migrations is a privilege: whoever may call begin_migration decides what counts as
-- applied (a deploy that asks "already applied?" skips what it says), so the DBA grants it to the
-- roles that run migrations:
--   GRANT EXECUTE ON FUNCTION migrate_guard.begin_migration(text, text), migrate_guard.end_migration() TO deployer;
REVOKE EXECUTE ON FUNCTION migrate_guard.begin_migration(text, text), migrate_guard.end_migration() FROM PUBLIC;
-- Ids for the extension's own rows: its functions only.
REVOKE EXECUTE ON FUNCTION migrate_guard._next_id(oid) FROM PUBLIC;
