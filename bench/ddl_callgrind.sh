#!/usr/bin/env bash
# Where the guard's DDL time goes, counted in instructions: the same migration as
# bench/ddl_overhead.sh (fewer tables), run by one backend of a server started under
# valgrind --tool=callgrind, once in a plain database and once in a guarded one. Instruction
# counts do not vary from run to run, so the ratio is exact on a busy machine where wall-clock
# times are not; the per-function profile of the guarded backend is left for callgrind_annotate.
#
# Usage: bench/ddl_callgrind.sh [tables, default 20 (x 10 statements)] [single|autocommit]
#        bench/ddl_callgrind.sh TRANSACTIONS temp    bench/temp_tables.sh's transaction instead
#        (a temporary table created, filled, read and dropped at commit), run by pgbench
#        bench/ddl_callgrind.sh TRANSACTIONS tpcb    bench/dml_overhead.sh's workload instead: one
#        COMMENT, then pgbench's TPC-B-like transactions (the executor hook's cost per transaction,
#        the library's loading and the COMMENT's guard included)
# Needs the extension installed (make install) and valgrind.
source "$(dirname "$0")/../scripts/lib.sh"
tables=${1:-20}
mode=${2:-autocommit}
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
port=57$PG_MAJOR
dir=$(as_postgres mktemp -d /tmp/mg-callgrind.XXXXXX)
cleanup() {
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    as_root rm -rf "$dir"
}
trap cleanup EXIT
as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_postgres bash -c "cd '$dir' && nohup valgrind --tool=callgrind --callgrind-out-file='$dir/cg.%p' \
    '$PG_BIN/postgres' -D '$dir/data' -p $port -k '$dir' -c listen_addresses= -c autovacuum=off -c fsync=off \
    >'$dir/server.log' 2>&1 &"
for _ in $(seq 1 600); do psql -X -h "$dir" -p $port -U postgres -d postgres -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
p() { psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p $port -U postgres "$@"; }

migration=$dir/migration.sql
for i in $(seq 1 "$tables"); do
    t="mg_bench.t_$i"
    cat <<SQL
CREATE TABLE $t (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());
ALTER TABLE $t ADD COLUMN status text;
ALTER TABLE $t ADD COLUMN amount numeric(12,2) DEFAULT 0;
CREATE INDEX t_${i}_name_idx ON $t (name);
CREATE INDEX t_${i}_created_idx ON $t (created_at);
COMMENT ON TABLE $t IS 'table $i of the benchmark migration';
COMMENT ON COLUMN $t.name IS 'display name';
ALTER TABLE $t ADD COLUMN ref_id bigint;
CREATE UNIQUE INDEX t_${i}_ref_idx ON $t (ref_id);
COMMENT ON INDEX mg_bench.t_${i}_name_idx IS 'lookup by name';
SQL
done | as_postgres tee "$migration" >/dev/null
statements=$((tables * 10))

# One session per side: its backend's callgrind file (written when it exits) holds its count.
count() { # side
    local db=mg_$1 pid
    p -d postgres -c "CREATE DATABASE $db" >/dev/null
    p -d "$db" -c "CREATE SCHEMA mg_bench" >/dev/null
    [ "$1" = guarded ] && p -d "$db" -c "CREATE EXTENSION migrate_guard" >/dev/null
    # MG_CALLGRIND_SETTINGS="migrate_guard.mode=off ...": settings of the guarded database, to
    # take the guard apart (history only, guard only, neither).
    for kv in ${MG_CALLGRIND_SETTINGS:-}; do
        [ "$1" = guarded ] && p -d postgres -c "ALTER DATABASE $db SET ${kv%%=*} = '${kv#*=}'" >/dev/null
    done
    if [ "$mode" = tpcb ]; then
        PGOPTIONS='-c migrate_guard.mode=off' pgbench -q -i -s 1 -h "$dir" -p $port -U postgres "$db" >/dev/null 2>&1
        sleep 3    # the set-up backends write their own callgrind files as they exit
        local before
        before=$(as_postgres ls "$dir" | grep -c '^cg\.' || true)
        pgbench -n -c 1 -t "$tables" -D ddl_done=0 -h "$dir" -p $port -U postgres -f "$tpcb_script" "$db" >/dev/null 2>&1
        for _ in $(seq 1 600); do [ "$(as_postgres ls "$dir" | grep -c '^cg\.')" -gt "$before" ] && break; sleep 0.5; done
        sleep 1
        pid=$(as_postgres ls -t "$dir" | grep '^cg\.' | head -1 | sed 's/^cg\.//')
    elif [ "$mode" = temp ]; then
        p -d "$db" -c "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric NOT NULL)" \
            -c "INSERT INTO orders SELECT g, g % 1000 FROM generate_series(1, 100000) g" -c "VACUUM ANALYZE orders" >/dev/null
        local before
        before=$(as_postgres ls "$dir" | grep -c '^cg\.' || true)
        pgbench -n -c 1 -t "$tables" -h "$dir" -p $port -U postgres -f "$temp_script" "$db" >/dev/null 2>&1
        for _ in $(seq 1 600); do [ "$(as_postgres ls "$dir" | grep -c '^cg\.')" -gt "$before" ] && break; sleep 0.5; done
        sleep 1
        pid=$(as_postgres ls -t "$dir" | grep '^cg\.' | head -1 | sed 's/^cg\.//')
    else
        local flag=()
        [ "$mode" = single ] && flag=(-1)
        pid=$( { echo "SELECT pg_backend_pid();"; as_postgres cat "$migration"; } | p -At -d "$db" "${flag[@]}" -f - 2>/dev/null | head -1)
        for _ in $(seq 1 600); do as_postgres test -s "$dir/cg.$pid" && break; sleep 0.5; done
        sleep 1
    fi
    as_postgres awk '/^summary:|^totals:/ {print $2; exit}' "$dir/cg.$pid"
    echo "$dir/cg.$pid" >"$dir/$1.file"
}
temp_script=$dir/scratch.sql
as_postgres tee "$temp_script" >/dev/null <<'SQL'
\set lo random(1, 99000)
BEGIN;
CREATE TEMP TABLE scratch (id bigint, amount numeric, note text) ON COMMIT DROP;
INSERT INTO scratch SELECT id, amount, 'order ' || id FROM orders WHERE id BETWEEN :lo AND :lo + 200;
SELECT count(*), sum(amount) FROM scratch WHERE amount > 500;
COMMIT;
SQL
tpcb_script=$dir/tpcb.sql
{
    echo '\if :ddl_done = 0'
    echo "COMMENT ON TABLE pgbench_history IS 'bench';"
    echo '\set ddl_done 1'
    echo '\endif'
    pgbench --show-script=tpcb-like 2>&1 | grep -v '^--'
} | as_postgres tee "$tpcb_script" >/dev/null
plain=$(count plain)
guarded=$(count guarded)
unit=statement
[ "$mode" = temp ] || [ "$mode" = tpcb ] && { statements=$tables; unit=transaction; }
echo "Under callgrind: $statements ${unit}s ($mode), instructions of the backend that ran them"
printf '  plain    %14s\n  guarded  %14s\n' "$plain" "$guarded"
awk -v p="$plain" -v g="$guarded" -v n="$statements" -v u="$unit" 'BEGIN {
    printf "  ratio guarded/plain: %.4f; the guard costs %.0f instructions per %s\n", g / p, (g - p) / n, u }'
out=${MG_CALLGRIND_OUT:-/tmp/mg-callgrind}
as_postgres cat "$(cat "$dir/guarded.file")" >"$out-guarded.out"
as_postgres cat "$(cat "$dir/plain.file")" >"$out-plain.out"
echo "  profiles: $out-plain.out, $out-guarded.out (callgrind_annotate --inclusive=yes FILE | head -60)"
