-- Settings, directives and the scope of the guard.
-- The lock_timeout safety net is tested in guard_lock_timeout; keep its NOTICEs out of here.
SET migrate_guard.lock_timeout = 0;
CREATE SCHEMA gs;
SET search_path = gs, public;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text);
INSERT INTO accounts SELECT g, 'user' || g || '@example.com', NULL FROM generate_series(1, 1000) g;
VACUUM ANALYZE accounts;
ANALYZE accounts;

SHOW migrate_guard.mode;
SHOW migrate_guard.allow;
SHOW migrate_guard.assume_populated;
SELECT * FROM migrate_guard.rules() ORDER BY rule_id;

-- An unknown rule id is an error, in the setting and in a directive; nothing changes.
SET migrate_guard.allow = 'blocking-index, no-such-rule';
SHOW migrate_guard.allow;
/* migrate_guard:allow blocking-idx */ CREATE INDEX accounts_plan_idx ON accounts (plan);
SELECT count(*) FROM pg_indexes WHERE indexname = 'accounts_plan_idx';
-- Invalid mode values are refused by PostgreSQL.
SET migrate_guard.mode = 'strict';
-- (Unknown settings under the migrate_guard prefix: see versions.sql, it depends on the version.)

-- A directive only counts inside a comment, never inside a string literal.
CREATE INDEX accounts_email_idx ON accounts (email) WHERE email <> 'migrate_guard:allow blocking-index';
-- psql drops "--" comment lines that come before a statement, so this directive never reaches
-- the server: use /* ... */ or put the comment inside the statement.
-- migrate_guard:allow blocking-index
CREATE INDEX accounts_email_idx ON accounts (email);
-- Several directives and rules in one comment.
/* migrate_guard:allow set-not-null, blocking-index */ CREATE INDEX accounts_email_idx ON accounts (email);

-- In a string of several statements, a directive belongs to its own statement only.
SET application_name = 'several' \; /* migrate_guard:allow blocking-index */ CREATE INDEX accounts_id_email ON accounts (id, email) \; CREATE INDEX accounts_id_plan ON accounts (id, plan);
SELECT indexname FROM pg_indexes WHERE schemaname = 'gs' ORDER BY 1;

-- A directive on a DO block covers the DDL it runs; DDL in functions is guarded too.
/* migrate_guard:allow blocking-index */ DO $$ BEGIN EXECUTE 'CREATE INDEX accounts_plan_idx ON gs.accounts (plan)'; END $$;
CREATE FUNCTION gs.add_index() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  CREATE INDEX accounts_plan_email ON gs.accounts (plan, email);
END $$;
SELECT gs.add_index();

-- mode = off disables the guard.
SET migrate_guard.mode = off;
CREATE INDEX accounts_plan_email ON accounts (plan, email);
RESET migrate_guard.mode;

-- Only superusers change the mode; anyone may use migrate_guard.allow for their own session.
CREATE ROLE mg_app LOGIN;
GRANT ALL ON SCHEMA gs TO mg_app;
ALTER TABLE accounts OWNER TO mg_app;
SET ROLE mg_app;
SET migrate_guard.mode = off;
SET migrate_guard.mode = warn;
SHOW migrate_guard.mode;
CREATE INDEX accounts_app_idx ON accounts (email, plan);
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-index';
CREATE INDEX accounts_app_idx ON accounts (email, plan);
COMMIT;
RESET ROLE;

-- DBAs set the mode per database or role: it takes effect in the role's next session.
ALTER ROLE mg_app SET migrate_guard.mode = warn;
SELECT rolname, setconfig FROM pg_db_role_setting JOIN pg_roles ON pg_roles.oid = setrole WHERE rolname = 'mg_app';
\c - mg_app
SET migrate_guard.lock_timeout = 0;
SHOW migrate_guard.mode;
CREATE INDEX accounts_role_warn_idx ON gs.accounts (plan, id);
DROP INDEX gs.accounts_role_warn_idx;
\c - postgres
SET migrate_guard.lock_timeout = 0;
SET search_path = gs, public;
ALTER ROLE mg_app RESET migrate_guard.mode;
-- ... and per database (this one, for the next session).
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET migrate_guard.mode = warn;
\c - postgres
SET migrate_guard.lock_timeout = 0;
SET search_path = gs, public;
SHOW migrate_guard.mode;
CREATE INDEX accounts_db_warn_idx ON accounts (plan, email);
ALTER DATABASE :"db" RESET migrate_guard.mode;
\c - postgres
SET migrate_guard.lock_timeout = 0;
SET search_path = gs, public;
-- Back to the default, enforce. (Before the library is loaded, at a session's first DDL
-- statement or migrate_guard function call, the setting is not known to SHOW.)
SELECT current_setting('migrate_guard.mode', true) AS before_loading;
CREATE INDEX accounts_db_enforce_idx ON accounts (plan, email);
SHOW migrate_guard.mode;
/* migrate_guard:allow drop-table */ DROP OWNED BY mg_app CASCADE;
DROP ROLE mg_app;
