#!/usr/bin/env bash
# Extensions that must be preloaded, together with migrate_guard: pg_cron (its jobs run in
# background workers, where the guard judges their DDL like any session's) and pgaudit (both
# orders in shared_preload_libraries: DDL is audited and guarded, a blocked statement shows up in
# the server log). A cluster of its own (port 57NN), started and removed here.
source "$(dirname "$0")/common.sh"
log "integration: preloaded with pg_cron and pgaudit"
pkglib=$($PG_CONFIG --pkglibdir)
have_cron=0
have_audit=0
[ -f "$pkglib/pg_cron.so" ] && have_cron=1
[ -f "$pkglib/pgaudit.so" ] && have_audit=1
[ $have_cron = 1 ] || log "pg_cron layer skipped: Debian has no postgresql-$PG_MAJOR-cron package here"
[ $have_audit = 1 ] || log "pgaudit layer skipped: Debian has no postgresql-$PG_MAJOR-pgaudit package here"
if [ $have_cron = 0 ] && [ $have_audit = 0 ]; then
    finish preloaded
    exit 0
fi

PRELOAD_PGDATA=$MG_HOME/pg$PG_MAJOR/preload
PRELOAD_PORT=${MG_PRELOAD_PORT:-57$PG_MAJOR}
preload_stop() {
    if as_postgres test -f "$PRELOAD_PGDATA/postmaster.pid"; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PRELOAD_PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
cleanup() { preload_stop; as_root rm -rf "$PRELOAD_PGDATA"; }
trap cleanup EXIT
preload_stop
as_root rm -rf "$PRELOAD_PGDATA"
as_postgres "$PG_BIN/initdb" -D "$PRELOAD_PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null

# start_with "lib1,lib2": (re)start the cluster with that shared_preload_libraries.
start_with() {
    preload_stop
    {
        echo "port = $PRELOAD_PORT"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$MG_SOCKET_DIR'"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        echo "shared_preload_libraries = '$1'"
        echo "max_worker_processes = 16"
        echo "cron.database_name = 'mg_cron'"
        echo "cron.use_background_workers = on"
        echo "pgaudit.log = 'ddl'"
        echo "pgaudit.log_relation = off"
    } | as_postgres tee "$PRELOAD_PGDATA/postgresql.auto.conf" >/dev/null
    as_postgres truncate -s 0 "$PRELOAD_PGDATA/server.log" 2>/dev/null || true
    as_postgres env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$PRELOAD_PGDATA" -w -t 60 \
        -l "$PRELOAD_PGDATA/server.log" start >/dev/null \
        || { as_postgres tail -20 "$PRELOAD_PGDATA/server.log" >&2; die "could not start the preloaded cluster"; }
}
pq() { PGPORT=$PRELOAD_PORT q "$@"; }
pval() { PGPORT=$PRELOAD_PORT val "$@"; }
server_log() { as_postgres cat "$PRELOAD_PGDATA/server.log"; }

libs=migrate_guard
[ $have_cron = 1 ] && libs="$libs,pg_cron"
[ $have_audit = 1 ] && libs="$libs,pgaudit"
start_with "$libs"
check "the cluster starts with shared_preload_libraries = '$libs'" eq \
    "$(pval postgres "SHOW shared_preload_libraries")" "$libs"

populate() { # populate db: a guarded database with a populated table
    pq -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
    pq -d "$1" <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION migrate_guard;
CREATE TABLE public.accounts (id bigint PRIMARY KEY, email text NOT NULL, plan text NOT NULL DEFAULT 'free');
INSERT INTO public.accounts SELECT g, 'user' || g || '@example.com', 'free' FROM generate_series(1, 20000) g;
ANALYZE public.accounts;
SQL
}

# The utility hook is in every session of a preloaded cluster, and judges only where the
# extension is installed: a VACUUM FULL in a guarded database is blocked from the session's first
# statement on, in a database without the extension it runs.
populate mg_hook
out=$(pq -d mg_hook -c "VACUUM FULL public.accounts" 2>&1 || true)
check "preloaded: VACUUM FULL as a session's first statement is judged (blocking-rewrite)" contains "$out" \
    "migrate_guard: blocking-rewrite"
pq -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS mg_plain WITH (FORCE)" \
    -c "CREATE DATABASE mg_plain" >/dev/null
pq -d mg_plain -c "CREATE TABLE t AS SELECT generate_series(1, 1000) AS id" >/dev/null
out=$(pq -d mg_plain -c "VACUUM FULL t" 2>&1 && echo ran)
check "preloaded: in a database without the extension VACUUM FULL runs" contains "$out" "ran"
pq -d postgres -c "DROP DATABASE mg_hook WITH (FORCE)" -c "DROP DATABASE mg_plain WITH (FORCE)" >/dev/null

if [ $have_cron = 1 ]; then
    populate mg_cron
    pq -d mg_cron -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_cron" >/dev/null
    have_partman=0
    if [ -f "$($PG_CONFIG --sharedir)/extension/pg_partman.control" ]; then
        have_partman=1
        pq -d mg_cron <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
CREATE TABLE public.events (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT partman.create_parent('public.events', 'at', 'native', 'daily', p_premake => 2);
INSERT INTO public.events SELECT g, now() FROM generate_series(1, 1000) g;
-- The job makes partitions further ahead than create_parent did.
UPDATE partman.part_config SET premake = 6 WHERE parent_table = 'public.events';
SQL
    fi
    # pg_cron 1.4 schedules by the minute: every job is scheduled at once, the test waits (up
    # to three minutes) until each has a finished run, then unschedules them and looks at the
    # first run of each. Waiting for an outcome, not for a time: no check depends on timing.
    declare -A jobs
    schedule() { jobs[$1]=$(pval mg_cron "SELECT cron.schedule('$1', '* * * * *', \$job\$$2\$job\$)"); }
    first_run() { # first_run name: "status|return_message" of the job's first finished run
        pval mg_cron "SELECT status || '|' || coalesce(return_message, '') FROM cron.job_run_details
                      WHERE jobid = ${jobs[$1]} AND status IN ('succeeded', 'failed') ORDER BY runid LIMIT 1"
    }
    before=0
    [ $have_partman = 1 ] && before=$(pval mg_cron "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.events'::regclass")
    schedule blocking_index "CREATE INDEX accounts_email ON public.accounts (email)"
    schedule concurrent_index "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_plan ON public.accounts (plan)"
    [ $have_partman = 1 ] && schedule partman_maintenance "SELECT partman.run_maintenance()"
    for _ in $(seq 1 360); do
        done_all=1
        for j in "${!jobs[@]}"; do [ -n "$(first_run "$j")" ] || done_all=0; done
        [ $done_all = 1 ] && break
        sleep 0.5
    done
    for j in "${!jobs[@]}"; do pval mg_cron "SELECT cron.unschedule(${jobs[$j]})" >/dev/null; done
    out=$(first_run blocking_index)
    check "pg_cron: a job with a blocking CREATE INDEX fails" contains "$out" "failed|"
    check "pg_cron: and cron.job_run_details has the guard's message" contains "$out" "migrate_guard: blocking-index"
    check "pg_cron: no index was built" eq "$(pval mg_cron "SELECT count(*) FROM pg_class WHERE relname = 'accounts_email'")" 0
    out=$(first_run concurrent_index)
    check "pg_cron: a job with CREATE INDEX CONCURRENTLY succeeds" contains "$out" "succeeded|"
    check "pg_cron: the index is there and valid" eq \
        "$(pval mg_cron "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.accounts_plan'::regclass")" t
    check "pg_cron: history records the job's CREATE INDEX CONCURRENTLY" eval \
        '[ "$(pval mg_cron "SELECT count(*) FROM migrate_guard.history WHERE object_identity = '"'public.accounts_plan'"' AND verdict = '"'ok'"'")" -ge 1 ]'
    if [ $have_partman = 1 ]; then
        out=$(first_run partman_maintenance)
        check "pg_cron: a job running pg_partman's maintenance succeeds" contains "$out" "succeeded|"
        after=$(pval mg_cron "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.events'::regclass")
        check "pg_cron: the maintenance job made the new partitions ($before -> $after)" eval '[ "$after" -gt "$before" ]'
        check "pg_cron: every row is still there" eq "$(pval mg_cron "SELECT count(*) FROM public.events")" 1000
    else
        log "pg_cron + pg_partman layer skipped: no postgresql-$PG_MAJOR-partman package here"
    fi
fi

if [ $have_audit = 1 ]; then
    for order in "migrate_guard,pgaudit" "pgaudit,migrate_guard"; do
        start_with "$order"
        populate mg_audit
        pq -d mg_audit -c "SET client_min_messages = warning" -c "CREATE EXTENSION pgaudit" >/dev/null
        last=$(pval mg_audit "SELECT coalesce(max(id), 0) FROM migrate_guard.history")
        pq -d mg_audit -c "CREATE TABLE public.audited_new (id int)" >/dev/null
        out=$(pq -d mg_audit -c "ALTER TABLE public.accounts ADD COLUMN score int NOT NULL DEFAULT (random() * 10)::int" 2>&1 || true)
        check "[$order] a rewriting ADD COLUMN is blocked" contains "$out" "migrate_guard: add-column-rewrite"
        # A DDL statement that fails for a reason of its own, for comparison.
        out=$(pq -d mg_audit -c "ALTER TABLE public.accounts ADD COLUMN email text" 2>&1 || true)
        check "[$order] (an ALTER failing without the guard: duplicate column)" contains "$out" 'column "email" of relation "accounts" already exists'
        pq -d mg_audit -c "CREATE INDEX CONCURRENTLY accounts_plan ON public.accounts (plan)" >/dev/null
        log_text=$(server_log)
        check "[$order] pgaudit audits the allowed CREATE TABLE" contains "$log_text" \
            "AUDIT: SESSION,1,1,DDL,CREATE TABLE,TABLE,public.audited_new,CREATE TABLE public.audited_new (id int)"
        check "[$order] pgaudit audits the allowed CREATE INDEX CONCURRENTLY" contains "$log_text" \
            ",DDL,CREATE INDEX,INDEX,public.accounts_plan,CREATE INDEX CONCURRENTLY accounts_plan"
        check "[$order] the server log has the guard's record of the blocked ALTER (rule, role, application)" contains "$log_text" \
            'LOG:  migrate_guard: blocked {"rule":"add-column-rewrite","sqlstate":"MG001","statement":"ALTER TABLE public.accounts ADD COLUMN score'
        check "[$order] and its ERROR with the statement" contains "$log_text" \
            "STATEMENT:  ALTER TABLE public.accounts ADD COLUMN score int NOT NULL DEFAULT (random() * 10)::int"
        # pgaudit writes a DDL statement's audit line when the statement has completed: it
        # audits no failed DDL, blocked or not (the README says so).
        check "[$order] pgaudit audits neither the blocked ALTER nor the one that failed on its own" eq \
            "$(grep -c 'AUDIT: .*,DDL,ALTER TABLE' <<<"$log_text" || true)" 0
        check "[$order] the column was not added" eq \
            "$(pval mg_audit "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.accounts'::regclass AND attname = 'score'")" 0
        check "[$order] history records the allowed DDL, not the blocked one" eq \
            "$(pval mg_audit "SELECT string_agg(command_tag, ',' ORDER BY id) FROM migrate_guard.history WHERE id > $last")" \
            "CREATE TABLE,CREATE INDEX"
        pq -d postgres -c "DROP DATABASE mg_audit WITH (FORCE)" >/dev/null
    done
fi
finish preloaded
