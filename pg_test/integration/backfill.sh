#!/usr/bin/env bash
# migrate_guard.backfill under real conditions: a session killed in the middle of a job (the next
# call resumes it and every row ends up updated exactly once, for a key walk and a page walk), a
# writer updating rows all through a job, and row locks that make batches time out and retry.
# Every table has a counter column n that the backfill's set clause increments.
source "$(dirname "$0")/common.sh"
log "integration: backfills killed, resumed, next to writers and lock holders"
work=$(mktemp -d /tmp/mg-backfill.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
db=mg_backfill
fresh_db $db guarded
# The crash case counts on committed batches surviving crash recovery: the cluster runs with
# synchronous_commit off, and a commit the WAL writer had not yet written would be lost with the
# backend's shared memory. In this database a commit is written before it returns.
q -d postgres -c "ALTER DATABASE $db SET synchronous_commit = on"
q -d $db <<'SQL'
SET migrate_guard.lock_timeout = 0;
CREATE TABLE keyed (id bigint PRIMARY KEY, email text, email_lower text, n int NOT NULL DEFAULT 0, touched int NOT NULL DEFAULT 0);
INSERT INTO keyed SELECT g, 'User' || g || '@Example.COM', NULL, 0, 0 FROM generate_series(1, 200000) g;
CREATE TABLE heap (k int, email text, email_lower text, n int NOT NULL DEFAULT 0);
INSERT INTO heap SELECT g, 'User' || g || '@Example.COM', NULL, 0 FROM generate_series(1, 200000) g;
ANALYZE keyed;
ANALYZE heap;
SQL

job_field() { val $db "SELECT $2 FROM migrate_guard.list_backfills() WHERE table_name = 'public.$1' ORDER BY job_id DESC LIMIT 1"; }
wait_for_batches() { # table minimum-batches
    for _ in $(seq 1 600); do
        [ "$(job_field "$1" "coalesce(batches, 0)")" -ge "$2" ] 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# How many rows the backfill updated how many times: "1:200000" is every row exactly once.
counts() { val $db "SELECT string_agg(n || ':' || c, ' ' ORDER BY n) FROM (SELECT n, count(*) c FROM $1 GROUP BY n) s"; }
wait_for_server() {
    for _ in $(seq 1 300); do psql -X -d $db -Atc "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}
# until "description" SQL: poll (every 20 ms, up to a minute) until the query returns t. Tests
# wait for states, not for guessed durations.
until_true() {
    local what=$1 sql=$2
    for _ in $(seq 1 3000); do
        [ "$(psql -X -At -d $db -c "$sql" 2>/dev/null)" = t ] && return 0
        sleep 0.02
    done
    printf '        timed out waiting until %s\n' "$what"
    return 1
}
# A session (application_name mg_holder) that locks rows and holds them until it is cancelled.
holder_running() { until_true "the holder holds its row lock" \
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'mg_holder' AND wait_event = 'PgSleep')"; }
release_holder() { val $db "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE application_name = 'mg_holder'" >/dev/null; }

# --- stopped mid-job (session killed, query cancelled, server crashed), then resumed -----------------
for case in keyed:terminate heap:terminate keyed:cancel heap:crash; do
    table=${case%%:*} how=${case#*:}
    # (Earlier jobs on the table go, so that every job_field below is about this one.)
    q -d $db -c "UPDATE $table SET n = 0, email_lower = NULL" \
             -c "DELETE FROM migrate_guard.backfills WHERE table_name = 'public.$table'"
    call="CALL migrate_guard.backfill('$table', 'email_lower = lower(email), n = n + 1', 'email_lower IS NULL', batch_size => 5000, pause => '20ms')"
    psql -X -d $db -c "$call" >"$work/$table-first.log" 2>&1 &
    runner=$!
    pids+=("$runner")
    check "$table ($how): the job is under way" wait_for_batches $table 6
    pid=$(job_field $table backend_pid)
    case $how in
        # (pg_terminate_backend's timeout argument came with 14: wait for the backend to go.)
        terminate) check "$table ($how): pg_terminate_backend stops the session" eq \
                       "$(val $db "SELECT pg_terminate_backend($pid)")" t
                   check "$table ($how): the session is gone" until_true "backend $pid has exited" \
                       "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid)" ;;
        cancel) check "$table ($how): pg_cancel_backend stops the CALL" eq "$(val $db "SELECT pg_cancel_backend($pid)")" t ;;
        crash) # SIGKILL of a backend: the postmaster resets every session and replays the WAL.
               as_postgres kill -9 "$pid"
               check "$table ($how): the server is back after crash recovery" wait_for_server ;;
    esac
    wait "$runner" 2>/dev/null || true
    status=$(job_field $table status)
    check "$table ($how): the job is left resumable ($status)" test "$status" = interrupted -o "$status" = failed
    # The committed batches and the job row agree: no row skipped, none updated twice so far.
    check "$table ($how): rows updated so far match the job's count exactly" eq \
        "$(val $db "SELECT count(*) FILTER (WHERE n = 1) || ' ' || count(*) FILTER (WHERE n > 1) FROM $table")" \
        "$(job_field $table rows_updated) 0"
    done_before=$(job_field $table batches)
    out=$(psql -X -v ON_ERROR_STOP=1 -d $db -c "$call" 2>&1) && rc=0 || rc=$?
    check "$table ($how): the same call resumes the job after its last committed batch" \
        contains "$out" "after batch $done_before "
    check "$table ($how): and finishes it" eq "$rc/$(job_field $table status)" 0/done
    check "$table ($how): every row updated exactly once" eq "$(counts $table)" "1:200000"
    check "$table ($how): and correctly" eq \
        "$(val $db "SELECT count(*) FROM $table WHERE email_lower IS DISTINCT FROM lower(email)")" 0
done

# --- a writer updating random rows all through a job --------------------------------------------
cat >"$work/writer.sql" <<'SQL'
\set id random(1, 200000)
UPDATE keyed SET touched = touched + 1 WHERE id = :id;
SQL
q -d $db -c "UPDATE keyed SET n = 0, email_lower = NULL"
pgbench -n -c 1 -T 4 -f "$work/writer.sql" $db >"$work/writer.log" 2>&1 &
writer=$!
pids+=("$writer")
sleep 0.5
out=$(psql -X -v ON_ERROR_STOP=1 -d $db -c "CALL migrate_guard.backfill('keyed', 'email_lower = lower(email), n = n + 1', 'email_lower IS NULL', batch_size => 5000, pause => '50ms')" 2>&1) && rc=0 || rc=$?
wait "$writer" || true
writes=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/writer.log")
check "with a concurrent writer: the backfill completes" eq "$rc" 0
check "with a concurrent writer: every row updated exactly once" eq \
    "$(counts keyed)" "1:200000"
check "with a concurrent writer: all of the writer's updates are there ($writes)" eq \
    "$(val $db "SELECT sum(touched) FROM keyed")" "$writes"
check "with a concurrent writer: the writer got through (more than 100 updates)" test "${writes:-0}" -gt 100

# --- row locks: batches time out and are retried --------------------------------------------------
# The holder keeps row 15000 locked until the job has retried, then lets go.
q -d $db -c "UPDATE keyed SET n = 0, email_lower = NULL"
PGAPPNAME=mg_holder psql -X -d $db -c "BEGIN" -c "UPDATE keyed SET touched = touched WHERE id = 15000" \
    -c "SELECT pg_sleep(300)" -c "COMMIT" >/dev/null 2>&1 &
holder=$!
pids+=("$holder")
holder_running
psql -X -v ON_ERROR_STOP=1 -d $db -c "CALL migrate_guard.backfill('keyed', 'email_lower = lower(email), n = n + 1', batch_size => 20000, lock_timeout => '100ms', max_retries => 50)" >"$work/retry.log" 2>&1 &
runner=$!
pids+=("$runner")
# (The job row counts retries when the batch commits; the NOTICE comes at once.)
retried() {
    for _ in $(seq 1 3000); do grep -q "retry 1 of 50" "$work/retry.log" && return 0; sleep 0.02; done
    return 1
}
check "lock timeouts: the job retries the blocked batch" retried
release_holder
wait "$runner" && rc=0 || rc=$?
wait "$holder" || true
out=$(cat "$work/retry.log")
check "lock timeouts: the retry is reported" contains "$out" "rolled back (55P03: canceling statement due to lock timeout); retry 1 of 50"
check "lock timeouts: the job completes once the lock is gone" eq "$rc/$(job_field keyed status)" 0/done
check "lock timeouts: every row updated exactly once" eq \
    "$(counts keyed)" "1:200000"
check "lock timeouts: the retries are counted" test "$(job_field keyed retries)" -ge 1

# Too many retries: the job fails (resumable), with the lock timeout's SQLSTATE.
q -d $db -c "UPDATE keyed SET n = 0, email_lower = NULL"
PGAPPNAME=mg_holder psql -X -d $db -c "BEGIN" -c "UPDATE keyed SET touched = touched WHERE id = 15000" \
    -c "SELECT pg_sleep(300)" -c "COMMIT" >/dev/null 2>&1 &
holder=$!
pids+=("$holder")
holder_running
out=$(psql -X -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d $db -c "CALL migrate_guard.backfill('keyed', 'email_lower = lower(email), n = n + 1', batch_size => 20000, lock_timeout => '100ms', max_retries => 2)" 2>&1) && rc=0 || rc=$?
check "too many retries: the call fails with SQLSTATE 55P03" contains "$out" "ERROR:  55P03: migrate_guard: backfill job"
check "too many retries: the job is failed, with the reason" eq "$(job_field keyed "status || ' / ' || last_error")" \
    "failed / 55P03: canceling statement due to lock timeout"
release_holder
wait "$holder" || true
out=$(psql -X -v ON_ERROR_STOP=1 -d $db -c "CALL migrate_guard.backfill('keyed', 'email_lower = lower(email), n = n + 1', batch_size => 20000, lock_timeout => '100ms', max_retries => 2)" 2>&1) && rc=0 || rc=$?
check "too many retries: the same call resumes and finishes" eq "$rc/$(job_field keyed status)" 0/done
check "too many retries: every row updated exactly once" eq \
    "$(counts keyed)" "1:200000"

# --- deadlocks: the batch that loses is rolled back and retried ------------------------------------
# The holder locks row 15000; the first batch locks row 10000 and waits for 15000; once the
# holder sees the batch waiting, it asks for 10000: a deadlock, which the batch (waiting longest,
# so its deadlock check runs first) detects and loses.
q -d $db -c "UPDATE keyed SET n = 0, email_lower = NULL"
touched_before=$(val $db "SELECT sum(touched) FROM keyed WHERE id IN (10000, 15000)")
PGAPPNAME=mg_holder psql -X -d $db -c "BEGIN" -c "UPDATE keyed SET touched = touched + 1 WHERE id = 15000" \
    -c "DO \$\$ BEGIN
          PERFORM pg_sleep(0.01);  -- (shows the holder as ready: wait_event PgSleep)
          -- (pg_locks, not pg_stat_activity: that one is a snapshot per transaction)
          WHILE NOT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted)
                AND clock_timestamp() < statement_timestamp() + interval '1 min' LOOP
              PERFORM pg_sleep(0.01);
          END LOOP;
        END \$\$" \
    -c "UPDATE keyed SET touched = touched + 1 WHERE id = 10000" -c "COMMIT" >"$work/deadlock-holder.log" 2>&1 &
holder=$!
pids+=("$holder")
holder_running
out=$(psql -X -v ON_ERROR_STOP=1 -d $db -c "CALL migrate_guard.backfill('keyed', 'email_lower = lower(email), n = n + 1', batch_size => 20000, lock_timeout => '1min')" 2>&1) && rc=0 || rc=$?
wait "$holder" || true
check "deadlock: the batch is rolled back and retried" contains "$out" "rolled back (40P01: deadlock detected); retry 1 of 10"
check "deadlock: the other transaction commits both its updates" eq \
    "$(val $db "SELECT sum(touched) FROM keyed WHERE id IN (10000, 15000)") $(grep -c ERROR "$work/deadlock-holder.log" || true)" \
    "$((touched_before + 2)) 0"
check "deadlock: the job completes" eq "$rc/$(job_field keyed status)" 0/done
check "deadlock: every row updated exactly once" eq "$(counts keyed)" "1:200000"

# --- throttling: the pause between batches ---------------------------------------------------------
q -d $db -c "CREATE TABLE paced (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)" -c "INSERT INTO paced SELECT generate_series(1, 4000)"
t0=$(date +%s%N)
q -d $db -c "SET client_min_messages = warning" -c "CALL migrate_guard.backfill('paced', 'n = n + 1', batch_size => 1000, pause => '300ms')"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# 4 full batches and a last empty one: 4 pauses of 300 ms between them.
check "pause: 4 pauses of 300 ms between 5 batches (took ${ms} ms)" test "$ms" -ge 1200
check "pause: every row updated once" eq "$(val $db "SELECT min(n) || ' ' || max(n) FROM paced")" "1 1"

# --- the progress lines -----------------------------------------------------------------------------
q -d $db -c "UPDATE heap SET n = 0"
out=$(psql -X -v ON_ERROR_STOP=1 -d $db -c "CALL migrate_guard.backfill('heap', 'n = n + 1', batch_size => 50000)" 2>&1)
check "progress: one line per batch with pages, percent, rate and time left" eq \
    "$(grep -cE '^NOTICE:  migrate_guard: backfill job [0-9]+: batch [0-9]+, page [0-9]+ of [0-9]+ \([0-9.]+%\), [0-9]+ updated; [0-9]+ pages/s, about [0-9hms ]+ left$' <<<"$out")" 3
out=$(psql -X -v ON_ERROR_STOP=1 -d $db -c "CALL migrate_guard.backfill('keyed', 'n = n + 1', batch_size => 50000)" 2>&1)
check "progress: rows, percent, rate and time left for a key walk" eq \
    "$(grep -cE '^NOTICE:  migrate_guard: backfill job [0-9]+: batch [0-9]+, [0-9]+ of about 200000 rows \([0-9.]+%\), [0-9]+ updated; [0-9]+ rows/s, about [0-9hms ]+ left$' <<<"$out")" 4

q -d postgres -c "DROP DATABASE $db WITH (FORCE)"
finish "backfill"
