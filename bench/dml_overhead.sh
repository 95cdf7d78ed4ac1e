#!/usr/bin/env bash
# The executor hook's cost on ordinary traffic: pgbench's built-in TPC-B-like script, in sessions
# that each ran one DDL statement first (a COMMENT, which loads the library and installs the
# hook in the guarded database), against a plain database (no extension) and a guarded one,
# alternating runs; the median throughput of each and their ratio. Target: guarded/plain >= 0.99.
#
# Usage: bench/dml_overhead.sh [runs per side, default 9] [seconds per run, default 10] [clients, default 1]
# Needs the extension installed (make install). Runs on its own cluster (port 56NN for PostgreSQL NN; PG=NN picks the version), on disk.
source "$(dirname "$0")/../scripts/lib.sh"
source "$(dirname "$0")/lib.sh"
runs=${1:-9}
seconds=${2:-10}
clients=${3:-1}

bash "$REPO_ROOT/scripts/cluster.sh" fresh bench >/dev/null
work=$(mktemp -d /tmp/mg-bench-dml.XXXXXX)
trap 'rm -rf "$work"; bash "$REPO_ROOT/scripts/cluster.sh" stop bench >/dev/null' EXIT
export PGHOST=$MG_SOCKET_DIR PGPORT=$BENCH_PORT PGUSER=postgres
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q -d postgres -c "CREATE DATABASE mg_dml_plain" -c "CREATE DATABASE mg_dml_guarded"
q -d mg_dml_guarded -c "CREATE EXTENSION migrate_guard"
# pgbench -i adds its primary keys to the loaded tables: a set-up step, not what is measured.
# Commits do not wait for the WAL flush: the disk's latency would swamp the CPU cost measured.
for db in mg_dml_plain mg_dml_guarded; do
    PGOPTIONS='-c migrate_guard.mode=off' pgbench -q -i -s 10 "$db" >/dev/null 2>&1
    q -d postgres -c "ALTER DATABASE $db SET synchronous_commit = off"
done

# One DDL statement per session, first; then pgbench's own TPC-B-like transaction, as pgbench
# prints it (each client keeps its variables for the whole run).
{
    echo '\if :ddl_done = 0'
    echo "COMMENT ON TABLE pgbench_history IS 'bench';"
    echo '\set ddl_done 1'
    echo '\endif'
    pgbench --show-script=tpcb-like 2>&1 | grep -v '^--'
} >"$work/tpcb.sql"

run() { pgbench_tps -n -c "$clients" -j "$clients" -T "$seconds" -D ddl_done=0 -f "$work/tpcb.sql" "$1"; } # database

echo "pgbench TPC-B-like (built-in script), scale 10, synchronous_commit off, each session running one DDL statement first"
echo "pgbench: $clients clients, $seconds s per run, $runs alternating runs per side, medians"
run mg_dml_plain >/dev/null    # warm-up
run mg_dml_guarded >/dev/null
plain=() guarded=()
for _ in $(seq 1 "$runs"); do
    plain+=("$(run mg_dml_plain)")
    guarded+=("$(run mg_dml_guarded)")
done
mp=$(printf '%s\n' "${plain[@]}" | median)
mg=$(printf '%s\n' "${guarded[@]}" | median)
ratio=$(awk -v g="$mg" -v p="$mp" 'BEGIN {printf "%.3f", g / p}')
printf '  plain    %10.1f tps   (runs: %s)\n' "$mp" "${plain[*]}"
printf '  guarded  %10.1f tps   (runs: %s)\n' "$mg" "${guarded[*]}"
echo "  ratio guarded/plain: $ratio (target >= 0.99)"
# The hook was installed in the guarded sessions: their COMMENTs are in history.
echo "  guarded sessions that loaded the library (COMMENT rows in history): $(psql -X -At -d mg_dml_guarded -c "SELECT count(*) FROM migrate_guard.history WHERE command_tag = 'COMMENT'")"
awk -v r="$ratio" 'BEGIN {exit !(r >= 0.99)}' && echo "target: met" || { echo "target: NOT met"; exit 1; }
