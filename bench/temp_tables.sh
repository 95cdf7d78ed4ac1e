#!/usr/bin/env bash
# Temporary tables are not schema changes: the reporting pattern (a scratch table created in
# every transaction and dropped at commit) run by pgbench against a plain and a guarded database,
# alternating runs, then the median throughput of each and their ratio, and how many history
# rows the temporary tables left. Targets: guarded/plain throughput >= 0.97; 0 history rows.
#
# Usage: bench/temp_tables.sh [runs per side, default 5] [seconds per run, default 10] [clients, default 2]
# Needs the extension installed (make install). Runs on its own cluster (port 56NN for PostgreSQL NN; PG=NN picks the version), on disk.
source "$(dirname "$0")/../scripts/lib.sh"
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
seconds=${2:-10}
clients=${3:-2}

bash "$REPO_ROOT/scripts/cluster.sh" fresh bench >/dev/null
work=$(mktemp -d /tmp/mg-bench-temp.XXXXXX)
trap 'rm -rf "$work"; bash "$REPO_ROOT/scripts/cluster.sh" stop bench >/dev/null' EXIT
export PGHOST=$MG_SOCKET_DIR PGPORT=$BENCH_PORT PGUSER=postgres
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q -d postgres -c "CREATE DATABASE mg_temp_plain" -c "CREATE DATABASE mg_temp_guarded"
q -d mg_temp_guarded -c "CREATE EXTENSION migrate_guard"
for db in mg_temp_plain mg_temp_guarded; do
    q -d $db -c "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric NOT NULL)" \
             -c "INSERT INTO orders SELECT g, g % 1000 FROM generate_series(1, 100000) g" -c "VACUUM ANALYZE orders"
done
history_before=$(psql -X -At -d mg_temp_guarded -c "SELECT count(*) FROM migrate_guard.history")

cat >"$work/scratch.sql" <<'SQL'
\set lo random(1, 99000)
BEGIN;
CREATE TEMP TABLE scratch (id bigint, amount numeric, note text) ON COMMIT DROP;
INSERT INTO scratch SELECT id, amount, 'order ' || id FROM orders WHERE id BETWEEN :lo AND :lo + 200;
SELECT count(*), sum(amount) FROM scratch WHERE amount > 500;
COMMIT;
SQL

run() { pgbench_tps -n -c "$clients" -j "$clients" -T "$seconds" -f "$work/scratch.sql" "$1"; } # database

echo "Temporary-table transactions (BEGIN; CREATE TEMP TABLE ... ON COMMIT DROP; INSERT; SELECT; COMMIT)"
echo "pgbench: $clients clients, $seconds s per run, $runs alternating runs per side, medians"
run mg_temp_plain >/dev/null    # warm-up
run mg_temp_guarded >/dev/null
plain=() guarded=()
for _ in $(seq 1 "$runs"); do
    plain+=("$(run mg_temp_plain)")
    guarded+=("$(run mg_temp_guarded)")
done
mp=$(printf '%s\n' "${plain[@]}" | median)
mg=$(printf '%s\n' "${guarded[@]}" | median)
ratio=$(awk -v g="$mg" -v p="$mp" 'BEGIN {printf "%.3f", g / p}')
rows=$(( $(psql -X -At -d mg_temp_guarded -c "SELECT count(*) FROM migrate_guard.history") - history_before ))
printf '  plain    %10.1f tps   (runs: %s)\n' "$mp" "${plain[*]}"
printf '  guarded  %10.1f tps   (runs: %s)\n' "$mg" "${guarded[*]}"
echo "  ratio guarded/plain: $ratio (target >= 0.97)"
echo "  history rows left by the temporary tables: $rows (target 0)"
# The guard was there all along: a permanent table is recorded.
q -d mg_temp_guarded -c "CREATE TABLE after_the_run (id int)"
echo "  (a permanent CREATE TABLE afterwards is recorded: $(psql -X -At -d mg_temp_guarded -c "SELECT count(*) FROM migrate_guard.history WHERE object_identity = 'public.after_the_run'") row)"
awk -v r="$ratio" -v n="$rows" 'BEGIN {exit !(r >= 0.97 && n == 0)}' && echo "targets: met" || { echo "targets: NOT met"; exit 1; }
