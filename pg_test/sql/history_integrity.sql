-- History and migrations are written only by the extension; secrets are never stored.
SET migrate_guard.lock_timeout = 0;
\set SHOW_CONTEXT never
CREATE SCHEMA hi;
SET search_path = hi, public;
-- (Roles are cluster-wide: a run that stopped halfway may have left this one.)
SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mg_hi_app') AS leftover \gset
\if :leftover
/* migrate_guard:allow drop-table */ DROP OWNED BY mg_hi_app CASCADE;
DROP ROLE mg_hi_app;
\endif
CREATE ROLE mg_hi_app LOGIN;
GRANT CREATE, USAGE ON SCHEMA hi TO mg_hi_app;
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset

-- Registering migrations is granted by the DBA; a role without the grant cannot ...
SET ROLE mg_hi_app;
SELECT migrate_guard.begin_migration('hi_0001', 'sha256:111');
RESET ROLE;
GRANT EXECUTE ON FUNCTION migrate_guard.begin_migration(text, text), migrate_guard.end_migration() TO mg_hi_app;
-- ... a role with it can; any role reads history ...
SET ROLE mg_hi_app;
SELECT migrate_guard.begin_migration('hi_0001', 'sha256:111');
CREATE TABLE app_table (id int);
SELECT migrate_guard.end_migration() AS statements;
SELECT command_tag, object_identity, session_user_name, current_user_name FROM migrate_guard.history WHERE id > :start ORDER BY id;
-- ... but cannot write either table, directly or by any other way in.
INSERT INTO migrate_guard.history (executed_at, transaction_id, session_user_name, current_user_name, backend_pid, command_tag, verdict)
VALUES (now(), '1', 'x', 'x', 1, 'x', 'ok');
UPDATE migrate_guard.history SET statement = 'forged';
DELETE FROM migrate_guard.history;
TRUNCATE migrate_guard.history;
-- (A forged "applied" migration would make a later deploy skip the real one.)
INSERT INTO migrate_guard.migrations (name, status, started_at, applied_by, backend_pid, backend_start)
VALUES ('hi_0002_forged', 'applied', now(), 'x', 1, now());
UPDATE migrate_guard.migrations SET checksum = 'forged';
DELETE FROM migrate_guard.migrations;
TRUNCATE migrate_guard.migrations;
ALTER TABLE migrate_guard.history DISABLE TRIGGER ALL;
SELECT migrate_guard.prune_history(interval '1 day');
-- Nor turn recording off, nor pose as an open migration.
SET migrate_guard.record_history = off;
SET migrate_guard.current_migration = '1';
RESET ROLE;
SELECT count(*) AS forged_rows FROM migrate_guard.history WHERE statement = 'forged';
SELECT count(*) AS forged_migrations FROM migrate_guard.migrations WHERE name = 'hi_0002_forged' OR checksum = 'forged';
-- The SECURITY DEFINER functions pin their search_path.
SELECT proname, prosecdef, proconfig FROM pg_proc
WHERE pronamespace = 'migrate_guard'::regnamespace AND prosecdef ORDER BY proname;

-- Passwords and OPTIONS values of user mappings, servers and subscriptions are redacted.
SELECT coalesce(max(id), 0) AS start FROM migrate_guard.history \gset
CREATE FOREIGN DATA WRAPPER hi_fdw;
CREATE SERVER hi_server FOREIGN DATA WRAPPER hi_fdw OPTIONS (host 'db.internal', password 'hunter2');
ALTER SERVER hi_server OPTIONS (SET password 'hunter3');
CREATE USER MAPPING FOR mg_hi_app SERVER hi_server OPTIONS (user 'app', password 'swordfish');
ALTER USER MAPPING FOR mg_hi_app SERVER hi_server OPTIONS (SET password 'tuna');
-- (Their WARNINGs depend on the server's wal_level; they are not what this test is about.)
SET client_min_messages = error;
CREATE PUBLICATION hi_pub;
CREATE SUBSCRIPTION hi_sub CONNECTION 'host=elsewhere user=repl password=s3cret dbname=x'
  PUBLICATION hi_pub WITH (connect = false, slot_name = NONE);
RESET client_min_messages;
ALTER SUBSCRIPTION hi_sub CONNECTION 'host=elsewhere password=n3w';
DROP SUBSCRIPTION hi_sub;
DROP USER MAPPING FOR mg_hi_app SERVER hi_server;
-- DDL from a DO block records the block, with the literals of any code in it that sets a password.
DO $$ BEGIN CREATE TABLE hi.from_do (id int); ALTER ROLE mg_hi_app PASSWORD 'tuna2'; END $$;
SELECT command_tag, statement FROM migrate_guard.history WHERE id > :start ORDER BY id;
SELECT count(*) AS leaked FROM migrate_guard.history
WHERE statement ~ '(hunter|swordfish|tuna|s3cret|n3w)';

-- Pruning deletes rows older than the interval; the interval must be positive.
UPDATE migrate_guard.history SET executed_at = executed_at - interval '400 days'
WHERE id <= :start AND id > 0;
SELECT migrate_guard.prune_history(interval '365 days') > 0 AS pruned_old_rows;
SELECT count(*) AS rows_older_than_a_year FROM migrate_guard.history WHERE executed_at < now() - interval '365 days';
SELECT migrate_guard.prune_history(interval '0');
SELECT migrate_guard.prune_history(interval '-1 day');
SELECT migrate_guard.prune_history(NULL);

DROP SERVER hi_server CASCADE;
DROP FOREIGN DATA WRAPPER hi_fdw;
DROP PUBLICATION hi_pub;
/* migrate_guard:allow drop-table */ DROP OWNED BY mg_hi_app CASCADE;
DROP ROLE mg_hi_app;
