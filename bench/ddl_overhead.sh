#!/usr/bin/env bash
# DDL overhead of the guard: the same 2,000-statement migration (create tables, add columns,
# indexes on the new tables, comments) against a database without and with migrate_guard,
# alternating runs, then the median time of each and their ratio. Target: ratio <= 1.10.
#
# Usage: bench/ddl_overhead.sh [runs per side, default 7]
# Needs the extension installed (make install) and starts the demo cluster if it is down.
source "$(dirname "$0")/../scripts/lib.sh"
runs=${1:-7}
tables=200   # x 10 statements = 2,000

bash "$REPO_ROOT/scripts/cluster.sh" start demo >/dev/null
psql_b() { psql -X -q -v ON_ERROR_STOP=1 -h "$MG_SOCKET_DIR" -p "$DEMO_PORT" -U postgres "$@"; }

work=$(mktemp -d /tmp/mg-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
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

for db in mg_bench_plain mg_bench_guarded; do
    psql_b -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done
psql_b -d mg_bench_guarded -c "CREATE EXTENSION migrate_guard"

# One timed run: a fresh schema, the migration, in one transaction (-1) or statement by
# statement (autocommit, as psql -f runs a file). Prints milliseconds.
run_once() {
    local db=$1 mode=$2 t0 t1
    psql_b -d "$db" -c "DROP SCHEMA IF EXISTS mg_bench CASCADE" -c "CREATE SCHEMA mg_bench" 2>/dev/null
    t0=$(date +%s%N)
    if [ "$mode" = single ]; then psql_b -d "$db" -1 -f "$migration"; else psql_b -d "$db" -f "$migration"; fi
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "DDL overhead: $statements statements, $runs alternating runs per database and mode"
printf '%-28s %12s %12s %8s\n' mode "plain (ms)" "guarded (ms)" ratio
status=0
for mode in single autocommit; do
    # warm-up run on each side (first load of the library, catalog caches)
    run_once mg_bench_plain $mode >/dev/null
    run_once mg_bench_guarded $mode >/dev/null
    plain=() guarded=()
    for _ in $(seq 1 "$runs"); do
        plain+=("$(run_once mg_bench_plain $mode)")
        guarded+=("$(run_once mg_bench_guarded $mode)")
    done
    mp=$(printf '%s\n' "${plain[@]}" | median)
    mg=$(printf '%s\n' "${guarded[@]}" | median)
    ratio=$(awk -v a="$mg" -v b="$mp" 'BEGIN {printf "%.3f", a / b}')
    label=$([ $mode = single ] && echo "one transaction (psql -1)" || echo "autocommit (psql -f)")
    printf '%-28s %12s %12s %8s\n' "$label" "$mp" "$mg" "$ratio"
    awk -v r="$ratio" 'BEGIN {exit !(r <= 1.10)}' || status=1
done
for db in mg_bench_plain mg_bench_guarded; do psql_b -d postgres -c "DROP DATABASE $db WITH (FORCE)"; done
[ $status = 0 ] && echo "target ratio <= 1.10: met" || echo "target ratio <= 1.10: NOT met"
exit $status
