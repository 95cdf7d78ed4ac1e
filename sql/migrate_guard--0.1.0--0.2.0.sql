-- migrate_guard 0.1.0 -> 0.2.0: migration history (migrate_guard.history, migrate_guard.migrations,
-- begin_migration / end_migration / prune_history, the recent_ddl and overrides views, and the
-- ddl_command_end / sql_drop event triggers that record every DDL statement).
\echo Use "ALTER EXTENSION migrate_guard UPDATE TO '0.2.0'" to load this file. \quit

-- Migration history: every DDL statement that committed, and the migrations that ran them.
-- Written only by the extension's own code (as the extension owner); readable by everyone.

CREATE TABLE migrate_guard.migrations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (name <> ''),
    checksum        text,
    status          text NOT NULL CHECK (status IN ('running', 'applied', 'abandoned')),
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    applied_by      name NOT NULL,
    backend_pid     int NOT NULL,
    backend_start   timestamptz NOT NULL,
    statement_count int NOT NULL DEFAULT 0
);
COMMENT ON TABLE migrate_guard.migrations IS
    'migrate_guard: migrations registered with begin_migration() / end_migration(), one row per attempt';
-- One attempt of a name at a time, one successful application of a name.
CREATE UNIQUE INDEX migrations_running_name ON migrate_guard.migrations (name) WHERE status = 'running';
CREATE UNIQUE INDEX migrations_applied_name ON migrate_guard.migrations (name) WHERE status = 'applied';

CREATE TABLE migrate_guard.history (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    executed_at       timestamptz NOT NULL,
    transaction_id    xid8 NOT NULL,
    session_user_name text NOT NULL,
    current_user_name text NOT NULL,
    application_name  text,
    client_addr       inet,
    backend_pid       int NOT NULL,
    command_tag       text NOT NULL,
    object_type       text,
    object_identity   text,
    table_name        text,
    statement         text,
    verdict           text NOT NULL CHECK (verdict IN ('ok', 'warned', 'allowed')),
    rules_fired       text[] NOT NULL DEFAULT '{}',
    rules_allowed     text[] NOT NULL DEFAULT '{}',
    allowed_via       text[] NOT NULL DEFAULT '{}',
    migration_id      bigint
);
COMMENT ON TABLE migrate_guard.history IS
    'migrate_guard: one row per DDL statement that committed';
-- Only the primary key: every index costs on the path of every DDL statement, and history is read
-- rarely (add an index on executed_at or table_name if you query it a lot).

-- Recent DDL, newest first, with the table each statement touched (filter on table_name).
CREATE VIEW migrate_guard.recent_ddl AS
SELECT h.table_name, h.executed_at, h.command_tag, h.object_type, h.object_identity, h.statement,
       h.session_user_name, h.application_name, m.name AS migration, h.verdict, h.rules_allowed, h.id AS history_id
FROM migrate_guard.history h
LEFT JOIN migrate_guard.migrations m ON m.id = h.migration_id
WHERE h.executed_at > pg_catalog.now() - interval '30 days'
ORDER BY h.executed_at DESC, h.id DESC;
COMMENT ON VIEW migrate_guard.recent_ddl IS 'migrate_guard: DDL of the last 30 days, newest first';

-- Every rule that was allowed on purpose: who, when, how, which statement and migration.
CREATE VIEW migrate_guard.overrides AS
SELECT h.executed_at, a.rule, a.via, h.session_user_name, h.current_user_name, h.application_name,
       h.client_addr, h.table_name, h.statement, m.name AS migration, h.id AS history_id
FROM migrate_guard.history h
CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(h.rules_allowed), pg_catalog.unnest(h.allowed_via)) AS a(rule, via)
LEFT JOIN migrate_guard.migrations m ON m.id = h.migration_id
ORDER BY h.executed_at DESC, h.id DESC;
COMMENT ON VIEW migrate_guard.overrides IS 'migrate_guard: every rule allowed by the setting or a directive';

REVOKE ALL ON migrate_guard.migrations, migrate_guard.history FROM PUBLIC;
GRANT SELECT ON migrate_guard.migrations, migrate_guard.history,
                migrate_guard.recent_ddl, migrate_guard.overrides TO PUBLIC;
GRANT USAGE ON SCHEMA migrate_guard TO PUBLIC;

-- pg_dump keeps the rows (the extension script recreates the tables).
SELECT pg_catalog.pg_extension_config_dump('migrate_guard.migrations', '');
SELECT pg_catalog.pg_extension_config_dump('migrate_guard.history', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('migrate_guard.migrations', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('migrate_guard.history', 'id')::regclass, '');

CREATE FUNCTION migrate_guard."migration_statement_count"(
	"migration_id" bigint
) RETURNS bigint
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'migration_statement_count_wrapper';

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

    INSERT INTO migrate_guard.migrations (name, checksum, status, started_at, applied_by, backend_pid, backend_start)
    SELECT begin_migration.name, begin_migration.checksum, 'running', clock_timestamp(), session_user,
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

CREATE FUNCTION migrate_guard.ddl_command_end_history() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_guard_ddl_command_end';
COMMENT ON FUNCTION migrate_guard.ddl_command_end_history() IS
    'migrate_guard: records each DDL statement in migrate_guard.history';
CREATE FUNCTION migrate_guard.sql_drop_history() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_guard_sql_drop';
COMMENT ON FUNCTION migrate_guard.sql_drop_history() IS
    'migrate_guard: notes what a DROP removed, for migrate_guard.history';

CREATE EVENT TRIGGER migrate_guard_sql_drop ON sql_drop
    EXECUTE FUNCTION migrate_guard.sql_drop_history();
CREATE EVENT TRIGGER migrate_guard_ddl_command_end ON ddl_command_end
    EXECUTE FUNCTION migrate_guard.ddl_command_end_history();
