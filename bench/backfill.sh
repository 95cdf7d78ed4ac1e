#!/usr/bin/env bash
# Backfill benchmark: setting a new column from an existing one on a 1,000,000-row table, three
# ways, side by side in one run:
#   single  one UPDATE of the whole table;
#   loop    the hand-written loop: UPDATE … WHERE id IN (SELECT id … WHERE col IS NULL LIMIT n
#           FOR UPDATE SKIP LOCKED), COMMIT per batch (ctid instead of id without a primary key);
#   mg      CALL migrate_guard.backfill(…, batch_size => n).
# The same on a table without a primary key. During each, a writer (pgbench, one client, at a
# fixed rate) updates random single rows of the same table; its latencies are reported (p50 / p99
# / max), with how many updates per second it got through. Then the loop against the backfill at
# 250k, 500k and 1M rows.
#
# single and mg run RUNS times (default 5), alternating, each on a freshly built, vacuumed copy of
# the table; the medians are compared. The loop runs once (it is the baseline to beat, by far).
# The writer runs at WRITER_RATE updates per second (default 200): an unthrottled writer would get
# nearly nothing done during the single UPDATE (it waits for its row lock) and a whole CPU core
# during the backfill, so the comparison would charge the backfill with the writer's work
# (WRITER_RATE=0 runs it unthrottled, as this benchmark did before 0.4.0).
# Targets: backfill <= 1.20 x the single UPDATE, below the loop; writer p99 <= 50 ms during it.
#
# Usage: [RUNS=5] [WRITER_RATE=200] bench/backfill.sh [rows, default 1000000] [batch size, default 10000]
# Needs the extension installed (make install). Runs on its own cluster (port 56NN for PostgreSQL NN; PG=NN picks the version), on disk.
source "$(dirname "$0")/../scripts/lib.sh"
rows=${1:-1000000}
batch=${2:-10000}
runs=${RUNS:-5}
rate=${WRITER_RATE:-200}

bash "$REPO_ROOT/scripts/cluster.sh" fresh bench >/dev/null
work=$(mktemp -d /tmp/mg-bench-backfill.XXXXXX)
trap 'rm -rf "$work"; bash "$REPO_ROOT/scripts/cluster.sh" stop bench >/dev/null' EXIT
export PGHOST=$MG_SOCKET_DIR PGPORT=$BENCH_PORT PGUSER=postgres
psql_b() { psql -X -q -v ON_ERROR_STOP=1 -d mg_bench "$@"; }
calc() { awk "BEGIN { printf \"%.2f\\n\", $1 }"; }
met() { awk "BEGIN { print (($1) ? \"met\" : \"NOT met\") }"; }
psql -X -q -d postgres -c "CREATE DATABASE mg_bench"
psql_b -c "CREATE EXTENSION migrate_guard"

# build TABLE ROWS KEYED: a fresh table; keyed = primary key on id, else a plain index on id
# (for the writer's lookups) and no primary key.
build() {
    local key="PRIMARY KEY" index=""
    if [ "$3" = no ]; then key=""; index="CREATE INDEX ON $1 (id);"; fi
    psql_b -1 <<SQL
SET client_min_messages = warning;
SET LOCAL migrate_guard.allow = 'drop-table';
DROP TABLE IF EXISTS $1;
CREATE TABLE $1 (id bigint $key, email text NOT NULL, email_lower text, touched int NOT NULL DEFAULT 0,
                 created_at timestamptz NOT NULL DEFAULT now(), note text);
INSERT INTO $1 (id, email, note)
SELECT g, 'User' || g || '@Example.COM', repeat('x', 40) FROM generate_series(1, $2) g;
$index
SQL
    psql_b -c "VACUUM ANALYZE $1" -c "CHECKPOINT"
}

# run METHOD TABLE ROWS KEYED: prints "seconds writer_updates_per_second p50_ms p99_ms max_ms"
run() {
    local method=$1 table=$2 n=$3 keyed=$4 sql
    case $method in
        single) sql="UPDATE $table SET email_lower = lower(email)" ;;
        loop)
            local pick="id"; [ "$keyed" = no ] && pick="ctid"
            sql="DO \$\$ DECLARE done bigint; BEGIN LOOP
                   UPDATE $table SET email_lower = lower(email)
                    WHERE $pick IN (SELECT $pick FROM $table WHERE email_lower IS NULL LIMIT $batch FOR UPDATE SKIP LOCKED);
                   GET DIAGNOSTICS done = ROW_COUNT;
                   EXIT WHEN done = 0;
                   COMMIT;
                 END LOOP; END \$\$" ;;
        mg) sql="CALL migrate_guard.backfill('$table', 'email_lower = lower(email)', 'email_lower IS NULL', batch_size => $batch)" ;;
    esac
    cat >"$work/writer.sql" <<SQL
\set id random(1, $n)
UPDATE $table SET touched = touched + 1 WHERE id = :id;
SQL
    rm -f "$work"/writer_log*
    local throttle=(); [ "$rate" -gt 0 ] && throttle=(-R "$rate")
    pgbench -n -c 1 -T 100000 "${throttle[@]}" -l --log-prefix="$work/writer_log" -f "$work/writer.sql" mg_bench >/dev/null 2>&1 &
    local writer=$!
    sleep 1
    local t0 t1
    t0=$(date +%s.%N)
    psql_b -c "SET client_min_messages = warning" -c "SET migrate_guard.lock_timeout = 0" -c "$sql"
    t1=$(date +%s.%N)
    sleep 1
    kill -TERM $writer 2>/dev/null || true
    wait $writer 2>/dev/null || true
    local left
    left=$(psql_b -At -c "SELECT count(*) FROM $table WHERE email_lower IS DISTINCT FROM lower(email)")
    [ "$left" = 0 ] || die "$method on $table left $left rows not updated"
    # Writer transactions that overlapped the run: started before it ended, finished after it
    # began (the one a lock held back finishes just after the run).
    cat "$work"/writer_log* 2>/dev/null | awk -v a="$t0" -v b="$t1" '
        { done_at = $5 + $6 / 1e6; start_at = done_at - $3 / 1e6
          if (start_at <= b && done_at >= a) print $3 / 1000 }' | sort -n >"$work/lat"
    awk -v secs="$(calc "$t1 - $t0")" '
        { v[NR] = $1 }
        END {
            if (NR == 0) { printf "%.2f 0 - - -\n", secs; exit }
            i50 = int(NR * 0.50 + 0.5); if (i50 < 1) i50 = 1
            i99 = int(NR * 0.99 + 0.5); if (i99 < 1) i99 = 1
            printf "%.2f %d %.1f %.1f %.1f\n", secs, NR / secs, v[i50], v[i99], v[NR]
        }' "$work/lat"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf 'Backfill benchmark: %s rows, batches of %s, one writer updating random rows throughout at %s/s (0: unthrottled)\n' "$rows" "$batch" "$rate"
printf 'cluster: %s (on disk, default settings); single UPDATE and backfill: %s alternating runs each\n\n' "$BENCH_PGDATA" "$runs"
printf '%-22s %-8s %4s %9s %14s %9s %9s %9s\n' table method run seconds "writer upd/s" "p50 ms" "p99 ms" "max ms"
declare -A secs p99s maxs
for keyed in yes no; do
    label="with primary key"; [ "$keyed" = no ] && label="without primary key"
    build bf_t "$rows" $keyed
    read -r s w p50 p99 mx < <(run loop bf_t "$rows" $keyed)
    secs[$keyed-loop]=$s
    printf '%-22s %-8s %4s %9s %14s %9s %9s %9s\n' "$label" loop 1 "$s" "$w" "$p50" "$p99" "$mx"
    for i in $(seq 1 "$runs"); do
        # Alternate which one goes first, so that neither always runs on a warmer machine.
        order="single mg"; [ $((i % 2)) = 0 ] && order="mg single"
        for method in $order; do
            build bf_t "$rows" $keyed
            read -r s w p50 p99 mx < <(run $method bf_t "$rows" $keyed)
            secs[$keyed-$method]+="$s "
            p99s[$keyed-$method]+="$p99 "
            maxs[$keyed-$method]+="$mx "
            printf '%-22s %-8s %4s %9s %14s %9s %9s %9s\n' "$label" $method "$i" "$s" "$w" "$p50" "$p99" "$mx"
        done
    done
done
echo
printf 'Medians of %s runs:\n' "$runs"
for keyed in yes no; do
    label="with primary key"; [ "$keyed" = no ] && label="without primary key"
    single=$(median <<<"${secs[$keyed-single]}") mg=$(median <<<"${secs[$keyed-mg]}") loop=${secs[$keyed-loop]}
    p99=$(median <<<"${p99s[$keyed-mg]}")
    worst=$(tr ' ' '\n' <<<"${maxs[$keyed-mg]}" | grep -v '^$' | sort -g | tail -1)
    printf '%s: single UPDATE %s s, backfill %s s: backfill / single UPDATE = %s (target <= 1.20: %s); backfill / loop = %s (target < 1: %s); writer p99 during the backfill %s ms (target <= 50: %s), worst max %s ms\n' \
        "$label" "$single" "$mg" "$(calc "$mg / $single")" "$(met "$mg <= 1.20 * $single")" \
        "$(calc "$mg / $loop")" "$(met "$mg < $loop")" "$p99" "$(met "$p99 <= 50")" "$worst"
    secs[$keyed-mg]=$mg
done
echo
echo "Scaling, table with primary key (seconds; the loop re-reads the rows it already did):"
printf '%-10s %9s %9s %9s\n' rows loop backfill ratio
for n in $((rows / 4)) $((rows / 2)) "$rows"; do
    if [ "$n" = "$rows" ]; then
        l=${secs[yes-loop]} m=${secs[yes-mg]}
    else
        build bf_t "$n" yes; read -r l _ < <(run loop bf_t "$n" yes)
        build bf_t "$n" yes; read -r m _ < <(run mg bf_t "$n" yes)
    fi
    printf '%-10s %9s %9s %9s\n' "$n" "$l" "$m" "$(calc "$l / $m")"
done
