#!/usr/bin/env bash
# No role can turn the guard against the database it guards. Two login roles, as in a real
# install: sec_app owns populated tables, sec_intruder has no rights on them. Every attempt an
# adversarial review made on 0.4.0 is repeated here; each must fail with a clear SQLSTATE and
# leave everything as it was (rows, schema, role attributes, history), and nothing an ordinary
# role calls may crash the server.
source "$(dirname "$0")/common.sh"
log "integration: security (roles sec_app and sec_intruder)"
db=mg_security
server_log=$TEST_PGDATA/server.log
log_offset=$(as_postgres stat -c %s "$server_log")

# (Roles are cluster-wide: a run that stopped halfway may have left them.)
for r in sec_app sec_intruder sec_restorer; do
    if [ -n "$(val postgres "SELECT 1 FROM pg_roles WHERE rolname = '$r'")" ]; then
        for d in $(val postgres "SELECT datname FROM pg_database WHERE datallowconn"); do
            q -d "$d" -c "/* migrate_guard:allow drop-table */ DROP OWNED BY $r CASCADE" >/dev/null 2>&1 || true
        done
        q -d postgres -c "DROP ROLE $r"
    fi
done
fresh_db $db guarded
q -d $db <<'SQL'
CREATE ROLE sec_app LOGIN;
CREATE ROLE sec_intruder LOGIN;
CREATE ROLE sec_restorer LOGIN;
-- What a DBA often grants: the application may create schemas and objects in public (13 and
-- 14 let every role create in public anyway).
GRANT CREATE ON DATABASE mg_security TO sec_app, sec_intruder;
GRANT CREATE, USAGE ON SCHEMA public TO sec_app, sec_restorer;
SET ROLE sec_app;
CREATE TABLE public.accounts (id bigint PRIMARY KEY, email text NOT NULL, note3 text);
INSERT INTO public.accounts SELECT g, 'user' || g || '@example.com', NULL FROM generate_series(1, 20000) g;
CREATE TABLE public.nopk (k int, v text);
INSERT INTO public.nopk SELECT g, 'v' || g FROM generate_series(1, 2000) g;
CREATE TABLE public.hijacked (what text, by_role name DEFAULT current_user, at timestamptz DEFAULT now());
GRANT INSERT, SELECT ON public.hijacked TO PUBLIC;
RESET ROLE;
VACUUM ANALYZE public.accounts, public.nopk;
SQL
as() { local role=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -U "$role" -d $db "$@"; }
# Run SQL as a role; print what the client saw (errors included), never stop.
try() { local role=$1 sql=$2; psql -X -q -v VERBOSITY=verbose -U "$role" -d $db -c "$sql" 2>&1 || true; }
sqlstate_of() { sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p' <<<"$1" | head -1; }
refused() { # refused "what" output sqlstate
    local state
    state=$(sqlstate_of "$2")
    check "$1 (SQLSTATE $3)" eq "$state" "$3"
}
superusers() { val $db "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolsuper AND rolname LIKE 'sec_%'"; }
snapshot() { # everything an attack could change
    val $db "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
        SELECT 'a' || md5(string_agg(a::text, ',' ORDER BY id)) AS x FROM public.accounts a
        UNION ALL SELECT 'n' || md5(string_agg(n::text, ',' ORDER BY k)) FROM public.nopk n
        UNION ALL SELECT 'c' || string_agg(attrelid::regclass || '.' || attname, ',' ORDER BY attrelid, attnum)
                  FROM pg_attribute WHERE attrelid IN ('public.accounts'::regclass, 'public.nopk'::regclass) AND attnum > 0 AND NOT attisdropped
        UNION ALL SELECT 'i' || coalesce(string_agg(indexrelid::regclass::text, ',' ORDER BY indexrelid), '')
                  FROM pg_index WHERE indrelid IN ('public.accounts'::regclass, 'public.nopk'::regclass)
        UNION ALL SELECT 'r' || coalesce(string_agg(rolname || rolsuper::text, ',' ORDER BY rolname), '') FROM pg_roles WHERE rolname LIKE 'sec_%'
        UNION ALL SELECT 'm' || count(*) FROM migrate_guard.migrations) s"
}

log "1. privilege escalation"
before=$(snapshot)
out=$(try sec_app "INSERT INTO migrate_guard.expansion_registry (kind, table_oid, table_name, new_name, phase, created_by, created_at)
                   VALUES ('rename table', 'public.nopk'::regclass, 'IF EXISTS public.nothing_here; ALTER ROLE sec_app SUPERUSER', 'nopk2', 'expanded', current_user, now())")
refused "an application role cannot insert an expansion" "$out" 42501
out=$(try sec_app "UPDATE migrate_guard.expansion_columns SET function_name = function_name || '(); ALTER ROLE sec_intruder SUPERUSER; --'")
refused "nor change an expansion's columns" "$out" 42501
out=$(try sec_app "INSERT INTO migrate_guard.backfills (table_oid, table_name, set_clause, batch_size, strategy, status, run_by, started_at, updated_at, position)
                   VALUES ('public.accounts'::regclass, 'public.accounts', 'note3 = lower(email)', 10, 'primary key', 'failed', 'postgres', now(), now(), '{99990}')")
refused "nor insert a backfill job" "$out" 42501
for t in expansion_registry expansion_columns backfills backfill_xids history migrations restored_relations; do
    col=$(val $db "SELECT attname FROM pg_attribute WHERE attrelid = 'migrate_guard.$t'::regclass AND attnum > 0
                   AND NOT attisdropped AND attidentity = '' AND attgenerated = '' ORDER BY attnum LIMIT 1")
    for stmt in "DELETE FROM migrate_guard.$t" "UPDATE migrate_guard.$t SET $col = $col" "TRUNCATE migrate_guard.$t" \
                "INSERT INTO migrate_guard.$t DEFAULT VALUES"; do
        out=$(try sec_intruder "$stmt")
        refused "sec_intruder: ${stmt%% SET*} is refused" "$out" 42501
    done
done
# A real expansion of sec_app's, then the superuser runs its steps: refused, nothing runs.
exp=$(as sec_app -At -c "SET client_min_messages = warning; SELECT migrate_guard.expand_column('public.nopk', 'v', new_name => 'v2')")
check "sec_app starts an expansion of its own table" eval '[ -n "$exp" ]'
out=$(try postgres "SELECT migrate_guard.contract($exp)")
refused "a superuser cannot run another role's contract (it would run that role's expressions)" "$out" 42501
contains "$out" "SET ROLE sec_app" >/dev/null && pass "the hint says how: SET ROLE sec_app" || fail "the hint says how: SET ROLE sec_app"
out=$(try postgres "SELECT migrate_guard.abort_expansion($exp)")
refused "nor its abort_expansion" "$out" 42501
out=$(try postgres "CALL migrate_guard.backfill_expansion($exp)")
refused "nor its backfill_expansion" "$out" 42501
out=$(try sec_intruder "SELECT migrate_guard.contract($exp)")
refused "and neither can another ordinary role" "$out" 42501
as sec_app -c "SET client_min_messages = warning; SELECT migrate_guard.abort_expansion($exp)" >/dev/null
check "sec_app undoes its own expansion" eq "$(val $db "SELECT phase FROM migrate_guard.expansion_registry WHERE id = $exp")" aborted
check "no role became superuser" eq "$(superusers)" ""
check "section 1 changed no row, column, index or role" eq "$(snapshot)" "$before"

log "1b. search_path: functions and operators another role puts before public"
# sec_app creates a schema named after the superuser ("\$user" comes first in the default
# search_path), and in it and in public functions and operators that shadow the built-in ones
# the extension uses, with argument types a call could prefer to the built-ins' (name, varchar,
# anyelement...). Each records that it ran and tries to make sec_app superuser.
as sec_app <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE SCHEMA postgres;
CREATE FUNCTION public.mg_hijack(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.hijacked (what) VALUES (what);
    BEGIN EXECUTE 'ALTER ROLE sec_app SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
END $$;
GRANT EXECUTE ON FUNCTION public.mg_hijack(text) TO PUBLIC;
GRANT USAGE ON SCHEMA postgres TO PUBLIC;
DO $$
DECLARE
    f text; t text; s text; n int := 0;
BEGIN
    -- (The shadows would catch this block's own calls too.)
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true);
    FOREACH s IN ARRAY ARRAY['public', 'postgres'] LOOP
        FOREACH f IN ARRAY ARRAY['quote_ident', 'quote_literal', 'format', 'array_to_string', 'left', 'length', 'btrim',
                                 'upper', 'lower', 'strpos', 'substr', 'parse_ident', 'cardinality', 'pg_has_role',
                                 'has_any_column_privilege', 'set_config', 'current_setting', 'format_type',
                                 'pg_get_expr', 'col_description', 'pg_get_indexdef', 'to_json', 'round', 'now',
                                 'clock_timestamp', 'pg_backend_pid', 'pg_relation_filenode', 'pg_relation_size',
                                 'pg_table_size', 'pg_size_pretty', 'pg_sleep', 'random', 'unnest', 'count', 'sum',
                                 'array_agg', 'string_agg', 'jsonb_build_object', 'jsonb_array_elements',
                                 'pg_sequence_last_value', 'pg_advisory_xact_lock', 'hashtext', 'make_interval',
                                 'to_regclass', 'pg_describe_object', 'aclexplode', 'pg_sleep_for', 'row_number'] LOOP
            FOREACH t IN ARRAY ARRAY['name', 'character varying', 'anyelement', 'anyarray', 'regclass', 'oid',
                                     'integer', 'name, name', 'text, name', 'name, text', 'text, anyelement',
                                     'anyelement, anyelement', 'text[], text', 'regclass, name', 'oid, name'] LOOP
                BEGIN
                    EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS text LANGUAGE plpgsql AS %L', s, f, t,
                                   format('BEGIN PERFORM public.mg_hijack(%L); RETURN NULL; END', s || '.' || f || '(' || t || ')'));
                    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.%I(%s) TO PUBLIC', s, f, t);
                    n := n + 1;
                EXCEPTION WHEN OTHERS THEN NULL;
                END;
            END LOOP;
        END LOOP;
    END LOOP;
    -- Operators a call could prefer: name or varchar against text, polymorphic and array ones.
    FOREACH s IN ARRAY ARRAY['public', 'postgres'] LOOP
        FOREACH t IN ARRAY ARRAY['text,integer', 'text,name', 'name,text', 'text,bigint', 'oid,regtype', 'oid,regclass',
                                 'text[],text[]', 'xid[],xid', 'bigint,integer', 'integer,bigint', 'tid,tid',
                                 'name,name', 'text,text', 'jsonb,text', 'anyelement,anyelement', 'anyarray,anyarray',
                                 'timestamptz,interval', 'char,unknown'] LOOP
            BEGIN
                EXECUTE format('CREATE FUNCTION %I.mg_op(%s) RETURNS boolean LANGUAGE plpgsql AS %L', s, t,
                               format('BEGIN PERFORM public.mg_hijack(%L); RETURN true; END', s || ' operator(' || t || ')'));
                EXECUTE format('GRANT EXECUTE ON FUNCTION %I.mg_op(%s) TO PUBLIC', s, t);
                FOREACH f IN ARRAY ARRAY['=', '<>', '>', '<', '>=', '<=', '||', '-', '+', '~', '->>'] LOOP
                    BEGIN
                        EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.mg_op)',
                                       s, f, split_part(t, ',', 1), split_part(t, ',', 2), s);
                    EXCEPTION WHEN OTHERS THEN NULL;
                    END;
                END LOOP;
            EXCEPTION WHEN OTHERS THEN NULL;
            END;
        END LOOP;
    END LOOP;
END $$;
SQL
# From here on the test's own queries look only in pg_catalog; the superuser's calls below keep
# the default search_path on purpose.
export PGOPTIONS='-c search_path=pg_catalog'
shadows=$(val $db "SELECT count(*) FROM pg_proc WHERE pronamespace IN ('public'::regnamespace, 'postgres'::regnamespace)")
operators=$(val $db "SELECT count(*) FROM pg_operator WHERE oprnamespace IN ('public'::regnamespace, 'postgres'::regnamespace)")
check "the hostile schema holds shadowing functions and operators ($shadows functions, $operators operators)" eval '[ "$shadows" -gt 500 ] && [ "$operators" -gt 50 ]'
# The superuser, with the default search_path ("$user", public), uses every helper.
out=$(PGOPTIONS= q -d $db 2>&1 <<'SQL' || true
SET client_min_messages = warning;
SELECT migrate_guard.expand_column('public.accounts', 'email', new_name => 'email_address') AS e \gset
CALL migrate_guard.backfill_expansion(:e, batch_size => 5000);
SELECT count(*) FROM migrate_guard.expansions;
SELECT * FROM migrate_guard.backfill_plan('public.nopk', 'v = upper(v)', 'v <> upper(v)', 500);
CALL migrate_guard.backfill('public.nopk', 'v = upper(v)', 'v <> upper(v)', batch_size => 500);
CALL migrate_guard.backfill('public.accounts', 'note3 = lower(email)', batch_size => 5000);
SELECT count(*) FROM migrate_guard.list_backfills();
SELECT migrate_guard.abort_expansion(:e);
SELECT migrate_guard.expand_rename_table('public.nopk', 'nopk_renamed') AS r \gset
SELECT migrate_guard.abort_expansion(:r);
SELECT count(*) FROM migrate_guard.check('UPDATE public.accounts SET note3 = NULL WHERE id > 10; CREATE INDEX ON public.accounts (note3)');
SELECT migrate_guard.begin_migration('sec_0001');
SELECT migrate_guard.end_migration();
SQL
)
check "the superuser's calls all ran" eval '! grep -q ERROR <<<"$out"' || printf '%s\n' "$out" | head -20
check "none of the shadowing functions or operators ran" eq "$(val $db "SELECT count(*) FROM public.hijacked")" 0
check "no role became superuser" eq "$(superusers)" ""
check "the backfill filled every row" eq "$(val $db "SELECT count(*) FROM public.accounts WHERE note3 IS DISTINCT FROM lower(email)")" 0

log "2. no input an ordinary role controls crashes the server"
out=$(try sec_intruder "SELECT migrate_guard._backfill_tids('(0,0)', '(4294967295,0)')")
check "the TID helper of 0.4.0 is gone (SQLSTATE 42883)" eq "$(sqlstate_of "$out")" 42883
out=$(try sec_intruder "SELECT count(*) FROM migrate_guard.check(repeat('SELECT 1;', 1000000))")
refused "check() of a million statements is refused before it starts" "$out" 54000
# (190,000 statements take about 0.4 s in a release build on this 2-core machine, several seconds in a debug build: the timeout is well below either.)
out=$(try sec_intruder "SET statement_timeout = '100ms'; SELECT count(*) FROM migrate_guard.check(repeat(E'SELECT 1 FROM pg_class WHERE relname = ''x'';\n', 190000))")
refused "statement_timeout cancels a long check()" "$out" 57014
# Every function of the extension, called by sec_intruder with NULL, empty, huge, negative and
# out-of-range arguments (a fixed pseudo-random sample): errors are fine, a crash is not.
calls=$(val $db "
SELECT setseed(0.42);
WITH fns AS (
  SELECT p.oid, p.prokind, p.proargtypes::oid[] AS types FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'migrate_guard'
  WHERE p.prorettype <> 'event_trigger'::regtype),
vals(type, v) AS (VALUES
  ('text', 'NULL'), ('text', ''''''), ('text', 'repeat(''x'', 2000000)'), ('text', '''SELECT 1; DROP TABLE public.accounts'''),
  ('text', '''public.accounts'''), ('text', '''1) OR (true'''), ('name', 'NULL'), ('name', '''email'''), ('name', 'repeat(''n'', 300)::name'),
  ('integer', 'NULL'), ('integer', '0'), ('integer', '-1'), ('integer', '2147483647'),
  ('bigint', 'NULL'), ('bigint', '0'), ('bigint', '-9223372036854775808'), ('bigint', '9223372036854775807'), ('bigint', '1'),
  ('boolean', 'NULL'), ('boolean', 'true'), ('oid', 'NULL'), ('oid', '0'), ('oid', '4294967295'), ('oid', '''pg_class''::regclass'),
  ('regclass', 'NULL'), ('regclass', '''public.accounts'''), ('regclass', '''migrate_guard.history'''), ('regclass', '''pg_class'''),
  ('interval', 'NULL'), ('interval', '''-1 day'''), ('interval', '''1000000 years'''), ('interval', '''0'''),
  ('tid', '''(4294967295,65535)'''), ('tid', 'NULL'), ('double precision', '''NaN'''), ('double precision', '1e308'),
  ('text[]', 'NULL'), ('text[]', 'array_fill(''x''::text, ARRAY[100000])'), ('oid[]', 'ARRAY[0, 1259]::oid[]'),
  ('timestamp with time zone', 'NULL'), ('timestamp with time zone', '''infinity''')),
picks AS (
  SELECT f.oid, f.prokind, n,
         (SELECT string_agg(coalesce((SELECT v FROM vals WHERE type = format_type(t, NULL) ORDER BY random() LIMIT 1), 'NULL')
                            || '::' || format_type(t, NULL), ', ' ORDER BY ord)
            FROM unnest(f.types) WITH ORDINALITY AS u(t, ord)) AS args
  FROM fns f, generate_series(1, 6) n)
SELECT string_agg(format('%s %s(%s);', CASE WHEN prokind = 'p' THEN 'CALL' ELSE 'SELECT' END,
                         oid::regproc, coalesce(args, '')), E'\n' ORDER BY oid, n) FROM picks" | tail -n +2)
ncalls=$(grep -c . <<<"$calls")
as_postgres true
psql -X -q -U sec_intruder -d $db -v ON_ERROR_STOP=0 -c "SET statement_timeout = '20s'" -f - <<<"$calls" >/dev/null 2>&1 || true
check "the server answers after $ncalls calls with hostile arguments" eq "$(val $db "SELECT 1")" 1
crashed=$(as_postgres tail -c +"$((log_offset + 1))" "$server_log" | grep -E 'was terminated by signal|terminating any other active server processes|TRAP:|PANIC:|memory allocation of' || true)
check "the server log reports no crash" eq "$crashed" ""

log "3. nothing a session sets switches the guard or its history off"
q -d $db -c "ALTER DATABASE $db SET migrate_guard.require_migration = on" >/dev/null
history_before=$(val $db "SELECT count(*) FROM migrate_guard.history")
for claim in "SET row_security = off; SET check_function_bodies = off;" "SET application_name = 'pg_restore';"; do
    for ddl in "CREATE INDEX accounts_note3 ON public.accounts (note3)" \
               "ALTER TABLE public.accounts ADD COLUMN at timestamptz DEFAULT clock_timestamp()" \
               "ALTER TABLE public.accounts RENAME COLUMN note3 TO note4" \
               "ALTER TABLE public.accounts DROP COLUMN note3"; do
        out=$(try sec_app "$claim $ddl")
        check "sec_app after '$claim': ${ddl%% (*} … is blocked" eq "$(sqlstate_of "$out")" MG001
    done
done
check "history has no row of these attempts" eq "$(val $db "SELECT count(*) FROM migrate_guard.history")" "$history_before"
check "the server log has every block, with the role" eval '[ "$(as_postgres tail -c +"$((log_offset + 1))" "$server_log" | grep -c "migrate_guard: blocked.*\"current_user\":\"sec_app\"")" -ge 8 ]'
# Allowing a rule on purpose works as anywhere else, and is recorded as such.
as sec_app >/dev/null 2>&1 <<'SQL'
SET row_security = off; SET check_function_bodies = off;
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-index, manual-ddl';
CREATE INDEX accounts_note3 ON public.accounts (note3);
COMMIT;
BEGIN;
SET LOCAL migrate_guard.allow = 'blocking-drop-index, manual-ddl';
DROP INDEX public.accounts_note3;
COMMIT;
SQL
check "a session claiming a restore is recorded like any other, with how it was allowed" eq \
    "$(val $db "SELECT string_agg(command_tag || ' ' || array_to_string(allowed_via, ','), '; ' ORDER BY id) FROM migrate_guard.history WHERE id > (SELECT max(id) - 2 FROM migrate_guard.history)")" \
    "CREATE INDEX setting,setting; DROP INDEX setting,setting"
# A superuser restoring onto a table that was there before the restore: judged as always.
out=$(try postgres "SET application_name = 'pg_restore'; CREATE INDEX accounts_note3 ON public.accounts (note3)")
check "a superuser's restore session is judged on a table that existed before it" eq "$(sqlstate_of "$out")" MG001
# A role the DBA named in restore_roles, restoring a table of its own: exempt, and logged.
q -d $db -c "ALTER DATABASE $db SET migrate_guard.restore_roles = 'sec_restorer'" >/dev/null
offset=$(as_postgres stat -c %s "$server_log")
out=$(try sec_restorer "SET row_security = off; SET check_function_bodies = off;
                        CREATE TABLE public.restored (id int); INSERT INTO public.restored SELECT generate_series(1, 5000);")
out+=$(try sec_restorer "SET row_security = off; SET check_function_bodies = off; CREATE INDEX restored_id ON public.restored (id);")
check "a restore role restores a table of its own past the rules" eval '! grep -q ERROR <<<"$out"' || echo "$out"
check "the exempted index build is in the server log" eval 'as_postgres tail -c +"$((offset + 1))" "$server_log" | grep -q "restore exempted.*blocking-index.*restored_id"'
out=$(try sec_restorer "SET row_security = off; SET check_function_bodies = off; DROP TABLE public.accounts")
check "but not past the rules on the application's tables" eq "$(sqlstate_of "$out")" MG001
q -d $db -c "ALTER DATABASE $db SET migrate_guard.restore_window = 0" >/dev/null
out=$(try sec_restorer "SET row_security = off; SET check_function_bodies = off; CREATE INDEX restored_id2 ON public.restored (id)")
check "restore_window = 0 switches the exemption off" eq "$(sqlstate_of "$out")" MG001
for s in "migrate_guard.restore_roles = 'sec_intruder'" "migrate_guard.restore_window = 99999" "migrate_guard.max_rows = 0" \
         "migrate_guard.mode = off" "migrate_guard.record_history = off" "migrate_guard.require_migration = off"; do
    out=$(try sec_intruder "SELECT count(*) FROM migrate_guard.rules(); SET $s")
    refused "an ordinary role cannot SET $s" "$out" 42501
    # Set before the library is loaded, it is a placeholder the library rejects when it loads.
    out=$(try sec_intruder "SET $s; CREATE INDEX accounts_note3 ON public.accounts (note3)")
    check "nor get it as a placeholder set before the library loads" eq "$(sqlstate_of "$out")" MG001
done
q -d $db -c "ALTER DATABASE $db RESET ALL" >/dev/null
check "no role became superuser" eq "$(superusers)" ""

log "4. forged state the guard or a superuser would trust"
out=$(try sec_app "SET migrate_guard.expansion_step = '1'; ALTER TABLE public.accounts RENAME COLUMN note3 TO note5")
check "a hand-set expansion step lets nothing through" contains "$out" "ERROR"
check "the column is still there" eq "$(val $db "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.accounts'::regclass AND attname = 'note3'")" 1
# A job of sec_app's stopped half way (its position says 10000 rows are done). The superuser's
# CALL with the same clauses starts a job of its own and fills every row; sec_app's own CALL
# resumes its job.
as sec_app -c "UPDATE public.accounts SET note3 = NULL" >/dev/null
as sec_app -c "SET client_min_messages = warning" -c "CALL migrate_guard.backfill('public.accounts', 'note3 = lower(email)', batch_size => 20000)" >/dev/null
q -d $db -c "UPDATE migrate_guard.backfills SET status = 'failed', position = '{10000}', rows_done = 10000, finished_at = NULL
              WHERE run_by = 'sec_app' AND set_clause = 'note3 = lower(email)'" >/dev/null
as sec_app -c "UPDATE public.accounts SET note3 = NULL" >/dev/null
out=$(try postgres "CALL migrate_guard.backfill('public.accounts', 'note3 = lower(email)', batch_size => 5000)")
check "the superuser's CALL does not resume another role's job" eval '! grep -q "resuming" <<<"$out"'
check "and leaves no row behind" eq "$(val $db "SELECT count(*) FROM public.accounts WHERE note3 IS NULL")" 0
as sec_app -c "UPDATE public.accounts SET note3 = NULL WHERE id > 10000" >/dev/null
out=$(try sec_app "CALL migrate_guard.backfill('public.accounts', 'note3 = lower(email)', batch_size => 5000)")
check "sec_app's own CALL resumes its job" contains "$out" "resuming backfill job"
check "which fills the rows after its position" eq "$(val $db "SELECT count(*) FROM public.accounts WHERE note3 IS NULL")" 0
out=$(try sec_intruder "SELECT migrate_guard.begin_migration('0042_add_invoice_status')")
refused "sec_intruder cannot register a migration as applied" "$out" 42501
out=$(try sec_intruder "SELECT migrate_guard.begin_migration('0042_add_invoice_status', 'sha256:wrong')")
refused "nor squat its name with another checksum" "$out" 42501
check "no migration was registered" eq "$(val $db "SELECT count(*) FROM migrate_guard.migrations WHERE name LIKE '0042%'")" 0
exp=$(as sec_app -At -c "SET client_min_messages = warning; SELECT migrate_guard.expand_column('public.nopk', 'v', new_name => 'v3')")
check "sec_intruder sees none of sec_app's expansions" eq "$(psql -X -At -U sec_intruder -d $db -c "SELECT count(*) FROM migrate_guard.expansions")" 0
check "sec_app sees its own" eq "$(psql -X -At -U sec_app -d $db -c "SELECT count(*) FROM migrate_guard.expansions WHERE id = $exp")" 1
check "sec_intruder sees none of sec_app's backfill jobs" eq "$(psql -X -At -U sec_intruder -d $db -c "SELECT count(*) FROM migrate_guard.list_backfills()")" 0
as sec_app -c "SET client_min_messages = warning; SELECT migrate_guard.abort_expansion($exp)" >/dev/null
locks=$(psql -X -At -U sec_intruder -d $db <<'SQL'
BEGIN;
SELECT count(*) >= 0 FROM migrate_guard.check('UPDATE public.accounts SET note3 = NULL WHERE id > 5; DELETE FROM public.accounts a USING public.nopk n WHERE a.id = n.k');
SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND relation IN ('public.accounts'::regclass, 'public.nopk'::regclass);
COMMIT;
SQL
)
check "check() takes no lock on tables the caller cannot read" eq "$(grep -v COMMIT <<<"$locks" | tail -1)" 0

log "5. secrets are not kept"
q -d $db <<'SQL' >/dev/null
SET client_min_messages = warning;
COMMENT ON TABLE public.nopk IS 'svc password: hunter2';
COMMENT ON TABLE public.accounts IS 'postgres://svc:hunter2@db/app';
COMMENT ON COLUMN public.accounts.email IS 'host=db user=svc password=hunter2';
SQL
check "history keeps no secret" eq "$(val $db "SELECT count(*) FROM migrate_guard.history WHERE statement LIKE '%hunter2%'")" 0
check "the statements are recorded, redacted" eq "$(val $db "SELECT count(*) FROM migrate_guard.history WHERE statement LIKE 'COMMENT ON%<redacted>%'")" 3

check "at the end, no role became superuser" eq "$(superusers)" ""
finish security
