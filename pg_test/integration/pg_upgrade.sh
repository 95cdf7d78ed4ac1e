#!/usr/bin/env bash
# pg_upgrade of a guarded cluster, the way a DBA upgrades once a year:
#   pg_test/integration/pg_upgrade.sh OLD NEW      (for example 13 18, or 15 17)
#
# The old cluster's database holds migrate_guard with history, a registered migration, a
# finished and an unfinished backfill job, an expansion half done (to be contracted after the
# upgrade) and another (to be aborted). `pg_upgrade --check`, then `pg_upgrade`, then on the new
# server: the extension is at the current version, history and migrations are intact, the
# unfinished backfill resumes and updates every remaining row exactly once, the expansions can be
# contracted and aborted, and the guard blocks and allows as before.
#
# Both versions must have migrate_guard installed (make test installs it in each version's turn:
# this runs after both). The clusters are throw-away, on ports 53OLD and 53NEW, under MG_HOME.
# check/eq/contains/finish from the integration helpers; the clusters here are its own.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

old=${1:?usage: pg_upgrade.sh OLD NEW}
new=${2:?usage: pg_upgrade.sh OLD NEW}
[ "$old" -lt "$new" ] || die "pg_upgrade goes from an older major version to a newer one ($old -> $new)"
bin_of() { if [ "$1" = "$SYSTEM_MAJOR" ]; then echo "/usr/lib/postgresql/$1/bin"; else echo "$MG_CACHE/pg$1/bin"; fi; }
old_bin=$(bin_of "$old") new_bin=$(bin_of "$new")
for b in "$old_bin" "$new_bin"; do
    [ -x "$b/pg_config" ] || die "PostgreSQL $(basename "$(dirname "$b")") is not prepared ($b): run make test PG=NN for it first"
done
for b in "$old_bin" "$new_bin"; do
    [ -f "$("$b/pg_config" --pkglibdir)/migrate_guard.so" ] \
        || die "migrate_guard is not installed into $("$b/pg_config" --bindir)/..: PG=NN bash scripts/install.sh first"
done
log "integration: pg_upgrade of a guarded cluster, PostgreSQL $old -> $new"

dir=$MG_HOME/upgrade-$old-$new
old_data=$dir/old new_data=$dir/new
old_port=53$old new_port=53$new
export PGHOST=$dir PGUSER=postgres
as_root rm -rf "$dir"
as_root install -d -o postgres -g postgres -m 0755 "$MG_HOME" "$dir"

stop_all() {
    for d in "$old_data" "$new_data"; do
        for b in "$old_bin" "$new_bin"; do
            as_postgres "$b/pg_ctl" -D "$d" status >/dev/null 2>&1 && as_postgres "$b/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1
        done
    done
    return 0
}
trap stop_all EXIT

initdb_for() { # bin data
    local extra=()
    # 18's initdb turns data checksums on by default; pg_upgrade needs both clusters alike.
    [ "$("$1/pg_config" --version | sed 's/PostgreSQL \([0-9]*\).*/\1/')" -ge 18 ] && extra=(--no-data-checksums)
    as_postgres "$1/initdb" -D "$2" -U postgres -A trust -E UTF8 --locale=C.UTF-8 "${extra[@]}" >/dev/null
    # The guard is also preloaded (its executor hook in every session), as production runs it.
    printf "%s\n" "unix_socket_directories = '$dir'" "listen_addresses = ''" \
        "shared_preload_libraries = 'migrate_guard'" "fsync = off" | as_postgres tee -a "$2/postgresql.conf" >/dev/null
}
start() { # bin data port
    as_postgres env -u RUST_BACKTRACE "$1/pg_ctl" -D "$2" -o "-p $3" -w -t 60 -l "$2/server.log" start >/dev/null \
        || { as_postgres tail -20 "$2/server.log" >&2; die "could not start $2"; }
}
stop() { as_postgres "$1/pg_ctl" -D "$2" -m fast -w stop >/dev/null; }

# What history holds, as one fingerprint: row count, last id, and a digest of every row.
HISTORY="SELECT count(*) || '/' || max(id) || '/' || md5(string_agg(concat_ws('|', id, executed_at, transaction_id, session_user_name, command_tag, object_identity, statement, verdict, rules_allowed, allowed_via, migration_id), ',' ORDER BY id)) FROM migrate_guard.history"


# --- the old cluster, with everything a guarded database accumulates -------------------------
initdb_for "$old_bin" "$old_data"
start "$old_bin" "$old_data" "$old_port"
export PGPORT=$old_port
psql_old() { "$old_bin/psql" -X -q -v ON_ERROR_STOP=1 -d shop "$@"; }
"$old_bin/psql" -X -q -d postgres -c "CREATE DATABASE shop"
psql_old -o /dev/null <<'SQL'
CREATE EXTENSION migrate_guard;
SET migrate_guard.lock_timeout = 0;
CREATE TABLE users (id bigint PRIMARY KEY, username text NOT NULL, email text, n int NOT NULL DEFAULT 0);
INSERT INTO users SELECT g, 'user' || g, 'u' || g || '@example.com' FROM generate_series(1, 2000) g;
CREATE INDEX CONCURRENTLY users_username ON users (username);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total numeric, n int NOT NULL DEFAULT 0);
INSERT INTO orders SELECT g, 1 + g % 2000, g FROM generate_series(1, 3000) g;
SELECT migrate_guard.begin_migration('0001_add_plan', 'sum-0001');
ALTER TABLE users ADD COLUMN plan text;
SELECT migrate_guard.end_migration();
ALTER TABLE users ADD COLUMN email_domain text;
ALTER TABLE orders ADD COLUMN note text;
SQL
# A finished backfill.
psql_old -c "CALL migrate_guard.backfill('users', 'email_domain = split_part(email, ''@'', 2)', 'email_domain IS NULL', batch_size => 500)" 2>/dev/null
# An unfinished one: cancelled from another session once it has committed two batches (the
# cancel takes effect after the batch running then). Its set clause counts how often each row
# was updated (n), so "exactly once" can be checked after the upgrade.
bf_out=$(mktemp)
psql_old -c "CALL migrate_guard.backfill('orders', 'n = n + 1', batch_size => 100, pause => '200ms')" >"$bf_out" 2>&1 &
bf_pid=$!
batches=0
for _ in $(seq 1 600); do
    batches=$("$old_bin/psql" -X -At -d shop -c "SELECT coalesce(max(batches), 0) FROM migrate_guard.list_backfills() WHERE set_clause = 'n = n + 1' AND status = 'running'")
    [ "$batches" -ge 2 ] && break
    sleep 0.1
done
"$old_bin/psql" -X -At -d shop -c "SELECT migrate_guard.cancel_backfill(job_id) FROM migrate_guard.list_backfills() WHERE set_clause = 'n = n + 1' AND status = 'running'" >/dev/null
wait "$bf_pid" || true
check "the second backfill was cancelled part way (after $batches batches)" eq \
    "$("$old_bin/psql" -X -At -d shop -c "SELECT status FROM migrate_guard.list_backfills() WHERE set_clause = 'n = n + 1'")" cancelled
rm -f "$bf_out"
# Two expansions: one to contract after the upgrade, one to abort.
psql_old -o /dev/null <<'SQL'
SELECT migrate_guard.expand_column('users', 'username', new_name => 'display_name') AS expansion_rename \gset
SELECT migrate_guard.expand_column('orders', 'note', new_name => 'remark') AS expansion_abort \gset
SQL
history_before=$("$old_bin/psql" -X -At -d shop -c "$HISTORY")
migrations_before=$("$old_bin/psql" -X -At -d shop -c "SELECT string_agg(to_jsonb(m)::text, ',' ORDER BY 1) FROM migrate_guard.migrations m")
done_before=$("$old_bin/psql" -X -At -d shop -c "SELECT count(*) FROM orders WHERE n = 1")
jobs_before=$("$old_bin/psql" -X -At -d shop -c "SELECT string_agg(job_id || ':' || status, ',' ORDER BY job_id) FROM migrate_guard.list_backfills()")
check "before the upgrade: history and a registered migration" test -n "$migrations_before"
check "before the upgrade: the unfinished job did part of the table ($done_before of 3000 rows)" \
    test "$done_before" -gt 0 -a "$done_before" -lt 3000
TRIGGERS="SELECT string_agg(evtname || ':' || evtevent || ':' || evtenabled::text, ',' ORDER BY evtname) FROM pg_event_trigger WHERE evtname LIKE 'migrate_guard%'"
triggers_before=$("$old_bin/psql" -X -At -d shop -c "$TRIGGERS")
ext_version=$("$old_bin/psql" -X -At -d shop -c "SELECT extversion FROM pg_extension WHERE extname = 'migrate_guard'")
stop "$old_bin" "$old_data"

# --- pg_upgrade ------------------------------------------------------------------------------
initdb_for "$new_bin" "$new_data"
upgrade() { # extra options...
    as_postgres bash -c "cd '$dir' && '$new_bin/pg_upgrade' -b '$old_bin' -B '$new_bin' -d '$old_data' -D '$new_data' \
        -p $old_port -P $new_port -U postgres --socketdir '$dir' $*" 2>&1
}
if out=$(upgrade --check); then pass "pg_upgrade --check passes on a guarded cluster"; else fail "pg_upgrade --check"; echo "$out" | tail -20; fi
if out=$(upgrade); then
    pass "pg_upgrade $old -> $new"
elif as_postgres bash -c "grep -qs 'unrecognized parameter \"pg_attver\"' '$new_data'/pg_upgrade_output.d/*/log/*.log"; then
    # Not the guard: the old server is a newer minor release than the new one. Debian 12's 15.20
    # (November 2026) stores an attribute option pg_attver on every column, which a new server
    # of an earlier release (17.11, the newest 17 wheel) refuses when pg_upgrade restores the
    # schema. pg_upgrade works once the new server's minor release is as recent as the old one's.
    log "pg_upgrade $old -> $new: skipped: PostgreSQL $("$old_bin/postgres" --version | awk '{print $3}') writes the column option pg_attver, which $("$new_bin/postgres" --version | awk '{print $3}') does not know (the new server must be as recent a minor release as the old one); nothing about the guard was tested"
    stop_all
    as_root rm -rf "$dir"
    exit 0
else
    fail "pg_upgrade"; echo "$out" | tail -30; as_postgres bash -c "tail -40 '$new_data'/pg_upgrade_output.d/*/log/*.log" 2>/dev/null || true; exit 1
fi

# --- the new cluster ---------------------------------------------------------------------------
start "$new_bin" "$new_data" "$new_port"
export PGPORT=$new_port
psql_new() { "$new_bin/psql" -X -q -v ON_ERROR_STOP=1 -d shop "$@"; }
on_new() { "$new_bin/psql" -X -At -v ON_ERROR_STOP=1 -d shop -c "$*"; }
check "the server is PostgreSQL $new" eq "$(on_new "SELECT current_setting('server_version_num')::int / 10000")" "$new"
check "the extension kept its version ($ext_version)" eq "$(on_new "SELECT extversion FROM pg_extension WHERE extname = 'migrate_guard'")" "$ext_version"
check "the event triggers came along, enabled ($triggers_before)" eq "$(on_new "$TRIGGERS")" "$triggers_before"
check "history intact" eq "$(on_new "$HISTORY")" "$history_before"
out=$(psql_new -c "ALTER EXTENSION migrate_guard UPDATE" 2>&1)
check "ALTER EXTENSION migrate_guard UPDATE: nothing to do (the library serves the same version)" contains "$out" "already"
check "registered migrations intact" eq "$(on_new "SELECT string_agg(to_jsonb(m)::text, ',' ORDER BY 1) FROM migrate_guard.migrations m")" "$migrations_before"
check "backfill jobs intact ($jobs_before)" eq "$(on_new "SELECT string_agg(job_id || ':' || status, ',' ORDER BY job_id) FROM migrate_guard.list_backfills()")" "$jobs_before"

# The unfinished backfill: the same CALL resumes it, once, and every row ends updated exactly once.
out=$(psql_new -c "CALL migrate_guard.backfill('orders', 'n = n + 1', batch_size => 100)" 2>&1)
check "the unfinished backfill resumes after its last committed batch" contains "$out" "resuming backfill job"
check "every row updated exactly once" eq "$(on_new "SELECT count(*) FILTER (WHERE n = 1) || '/' || count(*) FROM orders")" "3000/3000"
out=$(psql_new -c "CALL migrate_guard.backfill('orders', 'n = n + 1', batch_size => 100)" 2>&1)
check "a finished job is not resumed again (a new job starts)" test "$(on_new "SELECT count(*) FROM migrate_guard.list_backfills() WHERE status = 'done'")" -ge 2
check "… and that new job updated each row once more, not twice" eq "$(on_new "SELECT count(*) FILTER (WHERE n = 2) FROM orders")" "3000"

# The expansions: one contracted, one aborted.
rename_id=$(on_new "SELECT id FROM migrate_guard.expansions WHERE new_name = 'display_name'")
abort_id=$(on_new "SELECT id FROM migrate_guard.expansions WHERE new_name = 'remark'")
psql_new -c "INSERT INTO users (id, username, email) VALUES (5001, 'after_upgrade', 'x@example.com')"
check "the expansion's trigger still keeps both columns in step" eq "$(on_new "SELECT display_name FROM users WHERE id = 5001")" "after_upgrade"
on_new "SELECT unnest(pending_statements) FROM migrate_guard.expansions WHERE id = $rename_id" \
    | while IFS= read -r stmt; do psql_new -c "$stmt"; done
psql_new -c "CALL migrate_guard.backfill_expansion($rename_id)" >/dev/null 2>&1 || fail "backfill_expansion($rename_id) after the upgrade"
# The new server is preloaded, so usage tracking saw the INSERT above write username a moment
# ago, as an old client would: contract() refuses, naming it, until the DBA forces it.
out=$(psql_new -c "SELECT migrate_guard.contract($rename_id)" 2>&1 || true)
check "contract() refuses: a client wrote the old column after the upgrade" contains "$out" "clients still use the old name"
check "… naming the column and the client" contains "$out" "public.users.username: last used"
out=$(psql_new -c "SELECT migrate_guard.contract($rename_id, force => true)" 2>&1 || true)
check "contract() of the expansion started before the upgrade, forced" eq "$(on_new "SELECT phase FROM migrate_guard.expansions WHERE id = $rename_id")" "contracted"
check "… the old column is gone, the new one holds every row" eq "$(on_new "SELECT count(*) FROM users WHERE display_name LIKE 'user%'")|$(on_new "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'username' AND NOT attisdropped")" "2000|0"
psql_new -c "SELECT migrate_guard.abort_expansion($abort_id)" >/dev/null 2>&1 || fail "abort_expansion($abort_id)"
check "abort_expansion() of the other one" eq "$(on_new "SELECT phase FROM migrate_guard.expansions WHERE id = $abort_id")|$(on_new "SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'remark' AND NOT attisdropped")" "aborted|0"

# The guard blocks and allows as before, and records what it allows.
out=$(psql_new -c "CREATE INDEX ON orders (total)" 2>&1 || true)
check "blocks CREATE INDEX on a populated table" contains "$out" "migrate_guard: blocking-index"
psql_new -c "CREATE INDEX CONCURRENTLY orders_total ON orders (total)"
check "allows CREATE INDEX CONCURRENTLY, and records it" eq "$(on_new "SELECT count(*) FROM migrate_guard.history WHERE statement LIKE 'CREATE INDEX CONCURRENTLY orders_total%'")" "1"
check "history ids go on after the old ones" test "$(on_new "SELECT min(id) FROM migrate_guard.history WHERE statement LIKE 'CREATE INDEX CONCURRENTLY orders_total%'")" -gt "$(cut -d/ -f2 <<<"$history_before")"

stop "$new_bin" "$new_data"
# The clusters stay for a look when something failed.
[ "$failures" -gt 0 ] || as_root rm -rf "$dir"
finish "pg_upgrade $old -> $new"
