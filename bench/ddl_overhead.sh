#!/usr/bin/env bash
# DDL overhead of the guard: the same 2,000-statement migration (create tables, add columns,
# indexes on the new tables, comments) against a database without and with migrate_guard,
# alternating runs, then the median time of each, their ratio and the cost per statement.
# Targets: wall-clock ratio <= 1.05 and backend CPU ratio <= 1.08, in both modes.
#
# Usage: bench/ddl_overhead.sh [--memory] [runs per side, default 11]
#        MG_BENCH_SETTINGS='migrate_guard.mode=off' bench/ddl_overhead.sh   (take the cost apart)
# Needs the extension installed (make install). Runs on its own cluster (port 56NN for PostgreSQL NN; PG=NN picks the version), created
# fresh with PostgreSQL's default settings, on disk like a real server; --memory puts it in
# /dev/shm instead, where DDL itself costs least and the guard's share is largest.
if [ "${1:-}" = --memory ]; then export MG_BENCH_MEMORY=1; shift; fi
source "$(dirname "$0")/../scripts/lib.sh"
source "$(dirname "$0")/lib.sh"
runs=${1:-11}
tables=200   # x 10 statements = 2,000

bash "$REPO_ROOT/scripts/cluster.sh" fresh bench >/dev/null
trap 'bash "$REPO_ROOT/scripts/cluster.sh" stop bench >/dev/null' EXIT
psql_b() { psql -X -q -v ON_ERROR_STOP=1 -h "$MG_SOCKET_DIR" -p "$BENCH_PORT" -U postgres "$@"; }

work=$(mktemp -d /tmp/mg-bench.XXXXXX)
trap 'rm -rf "$work"; bash "$REPO_ROOT/scripts/cluster.sh" stop bench >/dev/null' EXIT
migration=$work/migration.sql
for i in $(seq 1 $tables); do
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
done > "$migration"
statements=$(grep -c ';$' "$migration")

# One timed run in a fresh database (so that catalog bloat from earlier runs does not weigh on
# later ones), with the extension or without, the migration in one transaction (-1) or statement
# by statement (autocommit, as psql -f runs a file). Prints "wall_ms cpu_ms": wall-clock time
# of the whole psql run, and CPU time of the server backend that ran it.
run_once() {
    local side=$1 mode=$2 t0 t1
    psql_b -d postgres -c "DROP DATABASE IF EXISTS mg_bench_run WITH (FORCE)" -c "CREATE DATABASE mg_bench_run" 2>/dev/null
    psql_b -d mg_bench_run -c "CREATE SCHEMA mg_bench"
    [ "$side" = guarded ] && psql_b -d mg_bench_run -c "CREATE EXTENSION migrate_guard"
    # MG_BENCH_SETTINGS="migrate_guard.mode=off ...": settings of the guarded database, to take
    # the cost apart (guard only, history only, neither).
    for kv in ${MG_BENCH_SETTINGS:-}; do
        [ "$side" = guarded ] && psql_b -d postgres -c "ALTER DATABASE mg_bench_run SET ${kv%%=*} = '${kv#*=}'"
    done
    psql_b -d mg_bench_run -c CHECKPOINT
    {
        echo "SELECT pg_backend_pid() AS bpid \\gset"
        echo "\\setenv BPID :bpid"
        echo "\\! awk '{print \$1}' /proc/\$BPID/schedstat > $work/cpu0"
        cat "$migration"
        echo "\\! awk '{print \$1}' /proc/\$BPID/schedstat > $work/cpu1"
    } > "$work/run.sql"
    t0=$(date +%s%N)
    if [ "$mode" = single ]; then psql_b -d mg_bench_run -1 -f "$work/run.sql" 2>/dev/null; else psql_b -d mg_bench_run -f "$work/run.sql" 2>/dev/null; fi
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000000 )) $(( ($(cat "$work/cpu1") - $(cat "$work/cpu0")) / 1000000 ))"
}

echo "DDL overhead: $statements statements, $runs alternating runs per side and mode, a fresh database per run"
echo "cluster: $BENCH_PGDATA"
echo "(wall: the whole psql run; cpu: the server backend's CPU time; medians, in ms; per statement: the"
echo " difference of the medians divided by the statements, in microseconds)"
printf '%-28s %8s %8s %7s %9s   %8s %8s %7s %9s\n' mode "plain" "guarded" ratio "µs/stmt" "cpu pl." "guarded" ratio "µs/stmt"
status=0
for mode in single autocommit; do
    run_once plain $mode >/dev/null   # warm-up
    run_once guarded $mode >/dev/null
    pw=() gw=() pc=() gc=()
    for _ in $(seq 1 "$runs"); do
        read -r w c < <(run_once plain $mode); pw+=("$w"); pc+=("$c")
        read -r w c < <(run_once guarded $mode); gw+=("$w"); gc+=("$c")
    done
    m() { printf '%s\n' "$@" | median; }
    mpw=$(m "${pw[@]}") mgw=$(m "${gw[@]}") mpc=$(m "${pc[@]}") mgc=$(m "${gc[@]}")
    ratio=$(awk -v a="$mgw" -v b="$mpw" 'BEGIN {printf "%.3f", a / b}')
    cratio=$(awk -v a="$mgc" -v b="$mpc" 'BEGIN {printf "%.3f", a / b}')
    us=$(awk -v a="$mgw" -v b="$mpw" -v n="$statements" 'BEGIN {printf "%.0f", (a - b) * 1000 / n}')
    cus=$(awk -v a="$mgc" -v b="$mpc" -v n="$statements" 'BEGIN {printf "%.0f", (a - b) * 1000 / n}')
    label=$([ $mode = single ] && echo "one transaction (psql -1)" || echo "autocommit (psql -f)")
    printf '%-28s %8s %8s %7s %9s   %8s %8s %7s %9s\n' "$label" "$mpw" "$mgw" "$ratio" "$us" "$mpc" "$mgc" "$cratio" "$cus"
    awk -v r="$ratio" -v c="$cratio" 'BEGIN {exit !(r <= 1.05 && c <= 1.08)}' || status=1
done
psql_b -d postgres -c "DROP DATABASE IF EXISTS mg_bench_run WITH (FORCE)"
[ $status = 0 ] && echo "targets (wall <= 1.05, cpu <= 1.08, both modes): met" || echo "targets (wall <= 1.05, cpu <= 1.08, both modes): NOT met"
exit $status
