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

-- The relations restoring sessions created (see src/restore.rs): a parallel restore's workers are
-- exempt for the tables its leader created. Written only by the extension; not dumped (a restore
-- records its own).
CREATE TABLE migrate_guard.restored_relations (
    relid       oid PRIMARY KEY,
    restored_at timestamptz NOT NULL
);
COMMENT ON TABLE migrate_guard.restored_relations IS
    'migrate_guard: relations created by sessions restoring a dump, exempt for restoring sessions for migrate_guard.restore_window';
REVOKE ALL ON migrate_guard.restored_relations FROM PUBLIC;

-- pg_dump keeps the rows (the extension script recreates the tables).
SELECT pg_catalog.pg_extension_config_dump('migrate_guard.migrations', '');
SELECT pg_catalog.pg_extension_config_dump('migrate_guard.history', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('migrate_guard.migrations', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('migrate_guard.history', 'id')::regclass, '');
