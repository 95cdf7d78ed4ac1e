-- A blocked statement rolls back, so it cannot be a history row: it is written to the server log
-- as one structured line (this cluster logs to server.log in its data directory).
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA hl;
SET search_path = hl, public;
-- A name of its own per run, so that a rerun against the same cluster finds only its own lines.
SELECT set_config('application_name', 'history_log_' || md5(random()::text), false) IS NOT NULL AS named;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text);
INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 100) g;
VACUUM ANALYZE accounts;
CREATE INDEX accounts_email_idx ON accounts (email);
CREATE FOREIGN DATA WRAPPER hl_fdw;
CREATE SERVER hl_server FOREIGN DATA WRAPPER hl_fdw;
SET migrate_guard.require_migration = on;
CREATE USER MAPPING FOR postgres SERVER hl_server OPTIONS (password 'hunter2');
RESET migrate_guard.require_migration;
-- The lines, as JSON: rule, statement (secrets redacted), user, application, database.
SELECT j->>'rule' AS rule, j->>'statement' AS statement, j->>'user' AS "user", j->>'current_user' AS current_user,
       j->>'database' = current_database() AS same_database
FROM regexp_split_to_table(pg_read_file('server.log'), E'\n') AS line,
     LATERAL (SELECT substring(line FROM 'migrate_guard: blocked (\{.*\})$')::jsonb AS j) parsed
WHERE j->>'application' = current_setting('application_name');
DROP SERVER hl_server;
DROP FOREIGN DATA WRAPPER hl_fdw;
