#!/usr/bin/env bash
# Usage tracking (issue 21) on a cluster of its own with shared_preload_libraries = 'migrate_guard'
# (port 53NN, started and removed here): an "old app" (pgbench, role old_app, application
# billing-v1) reads and writes users.username, a "new app" (new_app, billing-v2) display_name.
#   - DROP COLUMN username is blocked while the old app runs, the DETAIL naming it; once the old
#     app has been stopped for longer than migrate_guard.usage_window (5 s here), it passes with
#     a NOTICE and history's allowed_via says usage;
#   - a column nothing used drops at once; a column only the expansion trigger keeps in step
#     counts as unused; a scanned index is drop-index-in-use, an unscanned one drops;
#   - check() gives the same verdicts; counts survive a clean restart, a crash says so;
#   - an ordinary role sees only the relations it owns and may not reset; a full table behaves
#     as the README says (new entries refused, a missing entry proves nothing).
# Every wait is for an outcome (a count, a server state) or for the window to pass, never for a
# race to be won: the old app runs thousands of statements a second while the drop is judged.
source "$(dirname "$0")/common.sh"
log "integration: usage tracking (preloaded)"

USAGE_PGDATA=$MG_HOME/pg$PG_MAJOR/usage
USAGE_PORT=${MG_USAGE_PORT:-53$PG_MAJOR}
WINDOW=5
# pgbench: the version's own, or Debian's (a client of any server version here).
PGBENCH=$PG_BIN/pgbench
[ -x "$PGBENCH" ] || PGBENCH=/usr/lib/postgresql/15/bin/pgbench
[ -x "$PGBENCH" ] || die "no pgbench: install postgresql-contrib or postgresql-15"

usage_stop() {
    if as_postgres test -f "$USAGE_PGDATA/postmaster.pid"; then
        as_postgres "$PG_BIN/pg_ctl" -D "$USAGE_PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
bench_pids=()
cleanup() {
    for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    usage_stop
    as_root rm -rf "$USAGE_PGDATA"
}
trap cleanup EXIT
usage_stop
as_root rm -rf "$USAGE_PGDATA"
as_postgres "$PG_BIN/initdb" -D "$USAGE_PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
conf() { # conf max_entries
    {
        echo "port = $USAGE_PORT"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$MG_SOCKET_DIR'"
        echo "shared_preload_libraries = 'migrate_guard'"
        echo "migrate_guard.usage_max_entries = $1"
        echo "migrate_guard.usage_window = '$WINDOW s'"
        echo "restart_after_crash = on"
    } | as_postgres tee "$USAGE_PGDATA/postgresql.auto.conf" >/dev/null
}
start() {
    as_postgres env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$USAGE_PGDATA" -w -t 60 \
        -l "$USAGE_PGDATA/server.log" start >/dev/null \
        || { as_postgres tail -20 "$USAGE_PGDATA/server.log" >&2; die "could not start the usage cluster"; }
}
uq() { PGPORT=$USAGE_PORT q "$@"; }
uval() { PGPORT=$USAGE_PORT val "$@"; }
conf 50000
start

uq -d postgres -c "SET client_min_messages = warning" -c "CREATE DATABASE mg_usage" >/dev/null
uq -d mg_usage <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE ROLE old_app LOGIN;
CREATE ROLE new_app LOGIN;
CREATE ROLE tenant LOGIN;
CREATE TABLE public.users (id int PRIMARY KEY, username text, display_name text, email text, legacy text);
INSERT INTO public.users SELECT g, 'u' || g, 'U' || g, 'u' || g || '@example.com', 'x' FROM generate_series(1, 2000) g;
CREATE INDEX users_email_idx ON public.users (email);
CREATE INDEX users_display_idx ON public.users (display_name);
CREATE TABLE public.profiles (id int PRIMARY KEY, nick text);
INSERT INTO public.profiles SELECT g, 'n' || g FROM generate_series(1, 500) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.users, public.profiles TO old_app, new_app;
CREATE TABLE public.tenant_notes (id int PRIMARY KEY, body text);
ALTER TABLE public.tenant_notes OWNER TO tenant;
ANALYZE;
CREATE EXTENSION migrate_guard;
SQL
check "usage_status: tracking, started with the server" eq \
    "$(uval mg_usage "SELECT tracking || ' ' || began FROM migrate_guard.usage_status()")" \
    "true started with the server (no saved counts)"

# Everything the set-up touched must be older than the window before the verdicts start.
sleep $((WINDOW + 1))

old_app=$TOOLS/usage_old_app.sql
new_app=$TOOLS/usage_new_app.sql
cat >"$old_app" <<'SQL'
\set id random(1, 2000)
SELECT username FROM public.users WHERE id = :id;
UPDATE public.users SET username = 'u' || :id WHERE id = :id;
SQL
cat >"$new_app" <<'SQL'
\set id random(1, 2000)
SELECT id FROM public.users WHERE display_name = 'U' || :id;
UPDATE public.users SET display_name = 'U' || :id WHERE id = :id;
UPDATE public.profiles SET nick = 'n' || :id WHERE id = :id % 500 + 1;
SQL
bench() { # bench role app script seconds
    PGAPPNAME=$2 "$PGBENCH" -h "$MG_SOCKET_DIR" -p "$USAGE_PORT" -U "$1" -n -c 1 -T "$4" -f "$3" mg_usage \
        >"$TOOLS/usage_$1.log" 2>&1 &
    bench_pids+=($!)
}
wait_for() { # wait_for description sql: until the query returns t (at most 60 s)
    for _ in $(seq 1 240); do
        [ "$(uval mg_usage "$2")" = t ] && return 0
        sleep 0.25
    done
    fail "timed out waiting: $1"
    return 1
}

bench old_app billing-v1 "$old_app" 600
old_pid=${bench_pids[-1]}
wait_for "the old app's writes are counted" \
    "SELECT coalesce(writes > 10, false) FROM migrate_guard.usage WHERE relation = 'users'::regclass AND column_name = 'username'"

out=$(uq -d mg_usage -c "ALTER TABLE users DROP COLUMN username" 2>&1 || true)
check "while the old app runs, DROP COLUMN username is blocked" contains "$out" \
    "ERROR:  migrate_guard: drop-column: dropping column username of table public.users"
check "the DETAIL says when it was last written" contains "$out" "Queries still use column username: last read"
check "the DETAIL names the old app's role and application" contains "$out" "old_app (billing-v1)"
out=$(uval mg_usage "SELECT verdict FROM migrate_guard.check('ALTER TABLE users DROP COLUMN username') WHERE rule = 'drop-column'")
check "check() gives the same verdict" eq "$out" block
out=$(uval mg_usage "SELECT detail FROM migrate_guard.check('ALTER TABLE users DROP COLUMN username') WHERE rule = 'drop-column'")
check "check()'s detail names the old app" contains "$out" "old_app (billing-v1)"

# The view: the table and the column, with counts and the recent users.
out=$(uval mg_usage "SELECT reads > 0 AND writes > 0 AND last_write IS NOT NULL
                       AND 'old_app (billing-v1)' = ANY (recent_users)
                  FROM migrate_guard.usage WHERE relation = 'users'::regclass AND column_name = 'username'")
check "migrate_guard.usage: reads, writes, last write and the old app for users.username" eq "$out" t
out=$(uval mg_usage "SELECT count(*) FROM migrate_guard.usage WHERE relation = 'users'::regclass AND column_name IS NULL")
check "migrate_guard.usage: one row for the table itself" eq "$out" 1
out=$(uval mg_usage "SELECT count(*) FROM migrate_guard.usage WHERE relation = 'users'::regclass AND column_name = 'legacy'
                       AND greatest(last_read, last_write) > now() - interval '$WINDOW s'")
check "legacy has no use within the window" eq "$out" 0

# A column nothing used drops at once, with the evidence as a NOTICE, recorded as usage.
out=$(uq -d mg_usage -c "ALTER TABLE users DROP COLUMN legacy" 2>&1)
check "an unused column drops at once" contains "$out" \
    "NOTICE:  migrate_guard: drop-column: allowed on usage evidence: dropping column legacy of table public.users"
check "the NOTICE gives the evidence" contains "$out" "DETAIL:  No query has used column legacy since tracking began"
out=$(uval mg_usage "SELECT verdict || ' ' || array_to_string(rules_allowed, ',') || ' ' || array_to_string(allowed_via, ',')
                  FROM migrate_guard.history WHERE statement = 'ALTER TABLE users DROP COLUMN legacy'")
check "history records the drop as allowed via usage" eq "$out" "allowed drop-column usage"

# Partitions: a client that reads a partition directly uses the column a drop on the parent
# reaches (the partition's evidence counts for the parent's drop); a column nobody used still
# drops at once.
uq -d mg_usage -c "CREATE TABLE events (id int, kind text, legacy text, legacy2 text) PARTITION BY RANGE (id)" \
    -c "CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (1000)" \
    -c "INSERT INTO events (id, kind) SELECT g, 'k' FROM generate_series(1, 100) g" >/dev/null 2>&1 || fail "creating events"
out=$(uq -d mg_usage -c "SELECT legacy FROM events_1 WHERE id = 1" -c "ALTER TABLE events DROP COLUMN legacy" 2>&1 || true)
check "a partition's reader blocks the parent's DROP COLUMN" contains "$out" "ERROR:  migrate_guard: drop-column:"
check "… with the partition's evidence" contains "$out" "Queries still use column legacy"
out=$(uq -d mg_usage -c "ALTER TABLE events DROP COLUMN legacy2" 2>&1)
check "a column no query used on the parent or a partition drops at once" contains "$out" \
    "NOTICE:  migrate_guard: drop-column: allowed on usage evidence"

# Indexes: the old app's lookups by email scan users_email_idx; users_display_idx was only
# built (the new app has not started).
# (The scan and the drop in one session, milliseconds apart: well inside the short window however
# slow the machine.)
scan_email=(-c "SET enable_seqscan = off" -c "SET enable_bitmapscan = off" -c "SELECT id FROM users WHERE email = 'u7@example.com'")
out=$(uq -d mg_usage "${scan_email[@]}" -c "DROP INDEX CONCURRENTLY users_email_idx" 2>&1 || true)
check "a scanned index: drop-index-in-use" contains "$out" \
    "ERROR:  migrate_guard: drop-index-in-use: dropping index users_email_idx slows the queries that still scan it (1 scan recorded)"
check "drop-index-in-use names who scanned it" contains "$out" "recently by postgres (psql)"
out=$(uq -d mg_usage -At "${scan_email[@]}" -c "SELECT verdict FROM migrate_guard.check('DROP INDEX users_email_idx') WHERE rule = 'drop-index-in-use'" 2>&1)
check "check(): drop-index-in-use" eq "$(tail -1 <<<"$out")" block

# The old app stops; the new app runs. Past the window the drop passes on evidence.
kill "$old_pid" 2>/dev/null || true
wait "$old_pid" 2>/dev/null || true
bench new_app billing-v2 "$new_app" 600
new_pid=${bench_pids[-1]}
wait_for "the new app's writes are counted" \
    "SELECT coalesce(writes > 10, false) FROM migrate_guard.usage WHERE relation = 'users'::regclass AND column_name = 'display_name'"
sleep $((WINDOW + 1))
out=$(uval mg_usage "SELECT verdict FROM migrate_guard.check('ALTER TABLE users DROP COLUMN username') WHERE rule = 'drop-column'")
check "check(): once the old app has stopped for longer than the window, allowed" eq "$out" allowed
out=$(uq -d mg_usage -c "ALTER TABLE users DROP COLUMN username" 2>&1)
check "the old app stopped for longer than the window: DROP COLUMN username passes" contains "$out" \
    "NOTICE:  migrate_guard: drop-column: allowed on usage evidence: dropping column username of table public.users"
check "its NOTICE gives when it was last used" contains "$out" "within the usage window (5 s): last used"
check "the index the new app scans is in use" contains \
    "$(uq -d mg_usage -c "DROP INDEX CONCURRENTLY users_display_idx" 2>&1 || true)" "drop-index-in-use: dropping index users_display_idx"
out=$(uq -d mg_usage -c "DROP INDEX CONCURRENTLY users_email_idx" 2>&1 && echo dropped)
check "an index nothing scanned within the window drops" contains "$out" dropped

# An expansion renames profiles.nick to handle: the new app, restarted, writes handle only and
# the expansion's trigger keeps nick in step; the trigger's copying is not application use, so
# nick counts as unused.
kill "$new_pid" 2>/dev/null || true
wait "$new_pid" 2>/dev/null || true
exp_id=$(uval mg_usage "SELECT migrate_guard.expand_column('public.profiles', 'nick', new_name => 'handle')" 2>/dev/null)
uq -d mg_usage -c "CALL migrate_guard.backfill_expansion($exp_id)" >/dev/null 2>&1 || fail "backfill_expansion($exp_id)"
# An old client still reads nick: contract() refuses, naming it.
printf '%s\n' '\set id random(1, 500)' 'SELECT nick FROM public.profiles WHERE id = :id;' >"$old_app.2"
bench old_app billing-v1 "$old_app.2" 600
old_pid=${bench_pids[-1]}
wait_for "the old client's reads of nick are counted" \
    "SELECT coalesce(reads > 10, false) FROM migrate_guard.usage WHERE relation = 'profiles'::regclass AND column_name = 'nick'"
out=$(uq -d mg_usage -c "\\set VERBOSITY verbose" -c "SELECT migrate_guard.contract($exp_id)" 2>&1 || true)
check "contract() refuses while a client still uses the old column" contains "$out" \
    "ERROR:  55000: migrate_guard.contract: expansion $exp_id: clients still use the old name"
check "and names it" contains "$out" "public.profiles.nick: last used"
check "the old client by role and application" contains "$out" "old_app (billing-v1)"
kill "$old_pid" 2>/dev/null || true
wait "$old_pid" 2>/dev/null || true
sed 's/SET nick = /SET handle = /' "$new_app" >"$new_app.2"
bench new_app billing-v2 "$new_app.2" 600
new_pid=${bench_pids[-1]}
wait_for "the new app's writes of handle are counted" \
    "SELECT coalesce(writes > 10, false) FROM migrate_guard.usage WHERE relation = 'profiles'::regclass AND column_name = 'handle'"
sleep $((WINDOW + 1))
out=$(uval mg_usage "SELECT count(*) FROM migrate_guard.usage WHERE relation = 'profiles'::regclass AND column_name = 'nick'
                       AND greatest(last_read, last_write) > now() - interval '$WINDOW s'")
check "a column only the expansion trigger writes has no use within the window" eq "$out" 0
out=$(uval mg_usage "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'profiles' AND n_tup_upd > 0")
check "while the trigger did write it (profiles was updated)" eq "$out" 1
out=$(uval mg_usage "SELECT verdict FROM migrate_guard.check('ALTER TABLE profiles DROP COLUMN nick') WHERE rule = 'drop-column'")
check "check(): dropping the trigger-kept column is allowed on evidence" eq "$out" allowed
out=$(uq -d mg_usage -c "SELECT migrate_guard.contract($exp_id)" 2>&1)
check "once the clients moved, contract() succeeds" contains "$out" "expansion $exp_id contracted: public.profiles.nick is now handle"
kill "$new_pid" 2>/dev/null || true
wait "$new_pid" 2>/dev/null || true
# Forcing: a client used users.email a moment ago (in the same session, right before each
# attempt: inside the short window however slow the machine); force => true overrides.
exp2=$(uval mg_usage "SELECT migrate_guard.expand_column('public.users', 'email', new_name => 'contact_email')" 2>/dev/null)
uq -d mg_usage -c "CALL migrate_guard.backfill_expansion($exp2)" >/dev/null 2>&1 || fail "backfill_expansion($exp2)"
use_email=(-c "SELECT email FROM users WHERE id = 1")
out=$(uq -d mg_usage "${use_email[@]}" -c "SELECT migrate_guard.contract($exp2)" 2>&1 || true)
check "contract() of a column used a moment ago refuses" contains "$out" "clients still use the old name"
check "its hint says how to force it" contains "$out" "SELECT migrate_guard.contract($exp2, force => true);"
check "and nothing changed: the expansion is still expanded" eq "$(uval mg_usage "SELECT phase FROM migrate_guard.expansions WHERE id = $exp2")" expanded
out=$(uq -d mg_usage "${use_email[@]}" -c "BEGIN" -c "SET LOCAL migrate_guard.allow = 'drop-column'" -c "SELECT migrate_guard.contract($exp2)" -c "COMMIT" 2>&1 || true)
check "migrate_guard.allow does not force it (force is contract's own argument)" contains "$out" "clients still use the old name"
out=$(uq -d mg_usage "${use_email[@]}" -c "SELECT migrate_guard.contract($exp2, force => true)" 2>&1 || true)
check "forced with force => true, it contracts" contains "$out" "expansion $exp2 contracted"
check "… with a WARNING repeating the evidence" contains "$out" "WARNING:  migrate_guard.contract: expansion $exp2: forced while clients still use the old name"
check "… and the registry keeps what it overrode" contains \
    "$(uval mg_usage "SELECT forced_usage FROM migrate_guard.expansion_registry WHERE id = $exp2")" "public.users.email: last used"
check "an unforced contract records nothing" eq "$(uval mg_usage "SELECT count(*) FROM migrate_guard.expansion_registry WHERE id = $exp_id AND forced_usage IS NULL")" 1

# Who may see and reset: a role sees the relations it owns; reset is for superusers.
PGUSER=tenant uq -d mg_usage -c "INSERT INTO tenant_notes VALUES (1, 'a')" -c "SELECT body FROM tenant_notes" >/dev/null
out=$(PGUSER=tenant uval mg_usage "SELECT string_agg(DISTINCT relation::text, ',') FROM migrate_guard.usage")
check "an ordinary role sees only the relations it owns" eq "$out" tenant_notes
out=$(PGUSER=tenant uq -d mg_usage -c "SELECT migrate_guard.reset_usage()" 2>&1 || true)
check "an ordinary role may not reset" contains "$out" "permission denied for function reset_usage"
out=$(PGUSER=tenant uq -d mg_usage -c "SET migrate_guard.usage_window = '1 s'" 2>&1 || true)
check "an ordinary role may not shorten the window" contains "$out" "permission denied to set parameter"
# A query the executor refuses for lack of privilege used nothing: it does not count (else any
# role could keep a column "in use" and push the real clients out of its recent users).
uq -d mg_usage -c "CREATE TABLE public.payroll (id int PRIMARY KEY, salary int)" -c "INSERT INTO payroll VALUES (1, 100)"
out=$(PGUSER=tenant uq -d mg_usage -c "SELECT salary FROM payroll" 2>&1 || true)
check "a role without SELECT on payroll is refused" contains "$out" "permission denied for table payroll"
check "… and its refused query does not count as use (no reads, tenant not among the users)" eq \
    "$(uval mg_usage "SELECT coalesce(sum(reads), 0) || '/' || count(*) FILTER (WHERE array_to_string(recent_users, ',') LIKE '%tenant%')
                        FROM migrate_guard.usage WHERE relation = 'payroll'::regclass")" "0/0"
# The evidence names roles and applications: check() (anyone's) shows it only to those who may
# read the usage view's row.
out=$(PGUSER=tenant uval mg_usage "SELECT detail FROM migrate_guard.check('ALTER TABLE users DROP COLUMN display_name') WHERE rule = 'drop-column'")
check "check() by a role that does not own users: no evidence, and why" contains "$out" \
    "only the owner, superusers and members of pg_read_all_stats see its usage"
check "… and no names of its clients" eq "$(grep -c 'billing-v' <<<"$out")" 0

# A clean restart keeps the counts; a crash starts again and says so.
before=$(uval mg_usage "SELECT reads FROM migrate_guard.usage WHERE relation = 'users'::regclass AND column_name = 'display_name'")
last_before=$(uval mg_usage "SELECT extract(epoch FROM last_read) FROM migrate_guard.usage WHERE relation = 'users'::regclass AND column_name = 'display_name'")
usage_stop
# Down for 3 s: time nobody could use anything, so it does not count towards the window.
sleep 3
start
out=$(uval mg_usage "SELECT began FROM migrate_guard.usage_status()")
check "after a clean restart: restored" eq "$out" "restored from the last clean shutdown"
after=$(uval mg_usage "SELECT reads FROM migrate_guard.usage WHERE relation = 'users'::regclass AND column_name = 'display_name'")
check "the counts survived the restart ($before reads)" eq "$after" "$before"
last_after=$(uval mg_usage "SELECT extract(epoch FROM last_read) FROM migrate_guard.usage WHERE relation = 'users'::regclass AND column_name = 'display_name'")
check "the last use moved forward by the time the server was down (at least 3 s)" \
    python3 -c "import sys; sys.exit(0 if float('$last_after') - float('$last_before') >= 3 else 1)"
PGPORT=$USAGE_PORT psql -X -q -d mg_usage -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
sleeper=$!
wait_for "the sleeping backend runs" "SELECT count(*) = 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'"
victim=$(uval mg_usage "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'")
as_root kill -9 "$victim"
wait "$sleeper" 2>/dev/null || true
# Until the postmaster has restarted after the crash (a connection may still get through before
# it noticed; the restarted server says it crashed).
out=
for _ in $(seq 1 240); do
    out=$(uval mg_usage "SELECT began FROM migrate_guard.usage_status()" 2>/dev/null || true)
    [[ "$out" == *"the server crashed"* ]] && break
    sleep 0.5
done
check "after a crash: tracking started again, and says so" contains "$out" "the server crashed"
out=$(uval mg_usage "SELECT count(*) FROM migrate_guard.usage WHERE relation = 'users'::regclass")
check "after a crash the earlier counts are gone" eq "$out" 0
out=$(PGPORT=$USAGE_PORT psql -X -At -d mg_usage -c "SET migrate_guard.usage_window = '1h'" \
    -c "SELECT detail FROM migrate_guard.check('ALTER TABLE users DROP COLUMN display_name') WHERE rule = 'drop-column'")
check "tracking younger than the window: no evidence, blocked as without tracking" contains "$out" "less than the usage window"
check "reset_usage() by a superuser" eq "$(uval mg_usage "SELECT migrate_guard.reset_usage()")" t
check "and usage_status says so" eq "$(uval mg_usage "SELECT began FROM migrate_guard.usage_status()")" \
    "reset by migrate_guard.reset_usage()"

# A full table: at most 100 entries. A query over a 150-column table fills it; what has no entry
# then proves nothing (a drop of such a column is judged without evidence), counted as refused.
usage_stop
conf 100
start
cols=$(seq -s, 1 150 | sed 's/\([0-9]*\)/c\1 int/g')
uq -d mg_usage -c "CREATE TABLE wide ($cols)" -c "INSERT INTO wide (c1) VALUES (1)" >/dev/null
sleep $((WINDOW + 1))
uq -d mg_usage -c "SELECT * FROM wide" >/dev/null
out=$(uval mg_usage "SELECT entries = max_entries AND refused > 0 AND full_since IS NOT NULL FROM migrate_guard.usage_status()")
check "a full table: every entry used, the rest refused and counted, full_since set" eq "$out" t
out=$(uq -d mg_usage -c "ALTER TABLE wide DROP COLUMN c150" 2>&1 || true)
check "a column without an entry in a full table: blocked, the DETAIL says why" contains "$out" \
    "the tracking table is full (migrate_guard.usage_max_entries)"
finish usage
