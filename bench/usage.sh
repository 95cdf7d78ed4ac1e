#!/usr/bin/env bash
# What usage tracking costs ordinary traffic (issue 21): pgbench's select-only (-S) and TPC-B-like
# scripts against three clusters of the same version with the same data, side by side:
#   plain      PostgreSQL alone (migrate_guard neither preloaded nor installed in the database)
#   preloaded  shared_preload_libraries = 'migrate_guard', installed, migrate_guard.track_usage = off
#   tracking   the same with track_usage = on (the default)
# 1. Throughput: alternating runs (preloaded, tracking, plain, then tracking, plain, preloaded, ...:
#    the order turns each round, so with a multiple of 3 runs each side is first, second and third
#    equally often; each run on a server just restarted, vacuumed and warmed up for a
#    second), the median of each and the ratios to plain; and the median of each round's own ratio
#    (the three sides of a round run back to back, so a slow drift of the machine's speed cancels
#    in it). Target: tracking/plain >= 0.98. On a machine with two or more cores the servers run on
#    the last core and pgbench on the first (taskset), so the scheduler does not move them across
#    each other between runs.
#    Then the same runs at the same time: the three servers sharing one core, a client per side on
#    the other (with two or more cores), the median of each run's ratios.
# 2. Instructions per transaction under valgrind --tool=callgrind (exact from run to run): each
#    cluster restarted under callgrind, one pgbench session of N transactions, the instructions of
#    its backend divided by N. Target: tracking/plain <= 1.02.
# 3. The shared segment tracking needs for 10,000 tables x 20 columns (210,000 entries).
#
# Usage: bench/usage.sh [runs per side, default 5; 0: callgrind and memory only] [seconds per run, default 10] [callgrind transactions, default 2000]
# MG_USAGE_ALTERNATING=0 skips the alternating runs (the same-time runs, callgrind and memory only).
# Needs the extension installed (make install) and valgrind. Clusters on ports 52NN-52NN+2... (own, removed at the end).
source "$(dirname "$0")/../scripts/lib.sh"
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
seconds=${2:-10}
cg_txns=${3:-2000}
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
PGBENCH=$PG_BIN/pgbench
[ -x "$PGBENCH" ] || PGBENCH=/usr/lib/postgresql/15/bin/pgbench
# The CPUs this process may use (a cpuset need not start at 0), one per line.
allowed_cpus() {
    sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status | tr ',' '\n' |
        awk -F- '{ if (NF == 2) { for (c = $1; c <= $2; c++) print c } else if ($1 != "") print $1 }'
}
server_cpu=() client_cpu=() pinned="not pinned"
if command -v taskset >/dev/null && [ "$(allowed_cpus | wc -l)" -ge 2 ]; then
    first=$(allowed_cpus | head -1)
    last=$(allowed_cpus | tail -1)
    server_cpu=(taskset -c "$last") client_cpu=(taskset -c "$first") pinned="servers on cpu $last, pgbench on cpu $first"
fi
# pgbench's tps for one run; the run's last lines and an exit when pgbench failed or printed none.
tps_of() { # output file, side
    local v
    v=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$1" | head -1)
    if [ -z "$v" ] || grep -q "^pgbench: error\|aborted" "$1"; then
        die "pgbench against the $2 side failed or printed no tps: $(tail -3 "$1")"
    fi
    echo "$v"
}
sides="plain preloaded tracking"
declare -A port=([plain]=52${PG_MAJOR}0 [preloaded]=52${PG_MAJOR}1 [tracking]=52${PG_MAJOR}2)
base=$(as_postgres mktemp -d /tmp/mg-bench-usage.XXXXXX)
stop_all() {
    for s in $sides; do
        as_postgres "$PG_BIN/pg_ctl" -D "$base/$s" -m fast -w stop >/dev/null 2>&1 || true
    done
    pkill -u postgres -f "valgrind.*$base" 2>/dev/null || true
}
# pgbench's output, in a directory of the user running this (the clusters' is the postgres user's).
out=$(mktemp -d /tmp/mg-bench-usage-out.XXXXXX)
trap 'stop_all; as_root rm -rf "$base"; rm -rf "$out"' EXIT
settings() { # side: the server settings of that side
    echo "-c listen_addresses= -c port=${port[$1]} -c unix_socket_directories=$base -c autovacuum=off -c synchronous_commit=off"
    case $1 in
        plain) echo "-c shared_preload_libraries=" ;;
        preloaded) echo "-c shared_preload_libraries=migrate_guard -c migrate_guard.track_usage=off" ;;
        tracking) echo "-c shared_preload_libraries=migrate_guard -c migrate_guard.track_usage=on" ;;
    esac
}
start() { # side
    as_postgres "${server_cpu[@]}" "$PG_BIN/pg_ctl" -D "$base/$1" -w -t 120 -l "$base/$1.log" -o "$(settings "$1" | tr '\n' ' ')" start >/dev/null \
        || { as_postgres tail -20 "$base/$1.log" >&2; die "could not start the $1 cluster"; }
}
p() { local s=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -h "$base" -p "${port[$s]}" -U postgres "$@"; }
for s in $sides; do
    as_postgres "$PG_BIN/initdb" -D "$base/$s" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    start "$s"
    p "$s" -d postgres -c "CREATE DATABASE bench"
    "$PGBENCH" -q -i -s 10 -h "$base" -p "${port[$s]}" -U postgres bench >/dev/null 2>&1
    [ "$s" = plain ] || p "$s" -d bench -c "SET client_min_messages = warning" -c "CREATE EXTENSION migrate_guard"
    p "$s" -d bench -c "VACUUM ANALYZE" >/dev/null
done
declare -A tps round_ratio
[ "$runs" -gt 0 ] && [ "${MG_USAGE_ALTERNATING:-1}" = 1 ] && echo "PostgreSQL $PG_MAJOR: pgbench -c 1, $runs alternating runs of ${seconds}s per side and script (scale 10; $pinned)"
for script in select-only tpcb-like; do
    [ "$runs" -gt 0 ] || break    # 0 runs: instructions and memory only
    [ "${MG_USAGE_ALTERNATING:-1}" = 1 ] || break    # MG_USAGE_ALTERNATING=0: the same-time runs only
    flag=(-b "$script")
    for r in $(seq 1 "$runs"); do
        # The order turns each round (with a multiple of 3 runs, a side is first, second and
        # third equally often), and
        # every run starts from the same state: TPC-B's tables grow and bloat with every run
        # (autovacuum is off), so without this the side that always runs last pays for it.
        order=$(tr ' ' '\n' <<<"$sides" | awk -v r="$r" '{ a[NR - 1] = $0 } END { for (i = 0; i < NR; i++) print a[(i + r) % NR] }')
        for s in $order; do
            p "$s" -d bench -c "TRUNCATE pgbench_history" -c "VACUUM pgbench_accounts, pgbench_tellers, pgbench_branches" >/dev/null
            # A freshly started server for every run: a backend is a fork of its postmaster and
            # inherits its address-space layout, which can make one server a few percent faster
            # or slower than another for its whole life; restarting draws a new layout each run,
            # so that luck spreads over every side instead of staying with one. One second of
            # the same script warms the shared buffers first.
            as_postgres "$PG_BIN/pg_ctl" -D "$base/$s" -m fast -w stop >/dev/null
            start "$s"
            "${client_cpu[@]}" "$PGBENCH" -n -c 1 -T 1 "${flag[@]}" -h "$base" -p "${port[$s]}" -U postgres bench >"$out/run.out" 2>&1 ||
                die "the warm-up run against the $s side failed: $(tail -3 "$out/run.out")"
            "${client_cpu[@]}" "$PGBENCH" -n -c 1 -T "$seconds" "${flag[@]}" -h "$base" -p "${port[$s]}" -U postgres bench >"$out/run.out" 2>&1 ||
                die "pgbench against the $s side failed: $(tail -3 "$out/run.out")"
            t=$(tps_of "$out/run.out" "$s")
            tps[$script.$s]+="$t "
            eval "round_$s=$t"
        done
        round_ratio[$script.tracking]+="$(awk -v p="$round_plain" -v t="$round_tracking" 'BEGIN { printf "%.4f", t / p }') "
        round_ratio[$script.preloaded]+="$(awk -v p="$round_plain" -v t="$round_preloaded" 'BEGIN { printf "%.4f", t / p }') "
    done
    printf '  %-11s' "$script"
    for s in $sides; do
        m=$(tr ' ' '\n' <<<"${tps[$script.$s]}" | grep . | median)
        eval "med_$s=$m"
        printf '  %s %8.1f tps' "$s" "$m"
    done
    awk -v p="$med_plain" -v l="$med_preloaded" -v t="$med_tracking" \
        'BEGIN { printf "\n              ratio tracking/plain %.3f (target >= 0.98), preloaded/plain %.3f, tracking/preloaded %.3f\n", t / p, l / p, t / l }'
    rt=$(tr ' ' '\n' <<<"${round_ratio[$script.tracking]}" | grep . | median)
    rl=$(tr ' ' '\n' <<<"${round_ratio[$script.preloaded]}" | grep . | median)
    printf '              median of the rounds'"'"' own ratios: tracking/plain %.3f (target >= 0.98), preloaded/plain %.3f\n' "$rt" "$rl"
    echo "              runs (tps): plain ${tps[$script.plain]}/ preloaded ${tps[$script.preloaded]}/ tracking ${tps[$script.tracking]}"
    echo "              rounds' tracking/plain: ${round_ratio[$script.tracking]}"
done

# Throughput at the same time: the three servers share one core (they all run on the last one),
# their three pgbench clients (one per side) the other, for the same seconds. Whatever changes the
# machine's speed changes it under all three at once, and the scheduler shares the servers' core
# evenly among their busy backends, so each side's transactions are inversely its server cost per
# transaction, measured side by side in one run without the drift between runs.
if [ "$runs" -gt 0 ] && [ ${#server_cpu[@]} -eq 0 ]; then
    echo "At the same time: skipped (it needs taskset and two CPUs, one for the servers and one for the clients)"
elif [ "$runs" -gt 0 ]; then
    echo "At the same time: the three servers sharing cpu $last, one pgbench client per side on cpu $first, $runs runs of ${seconds}s per script"
    for script in select-only tpcb-like; do
        # The same data on every side first: the alternating TPC-B runs (and this section's own
        # TPC-B runs before select-only's) updated each side's tables a different number of
        # times, and bloat costs more per lookup than the hook does.
        for s in $sides; do
            p "$s" -d bench -c "TRUNCATE pgbench_history" \
                -c "/* migrate_guard:allow blocking-rewrite */ VACUUM FULL pgbench_accounts, pgbench_tellers, pgbench_branches" \
                -c "VACUUM ANALYZE" >/dev/null
        done
        conc_t="" conc_l=""
        for r in $(seq 1 "$runs"); do
            for s in $sides; do
                p "$s" -d bench -c "TRUNCATE pgbench_history" -c "VACUUM pgbench_accounts, pgbench_tellers, pgbench_branches" >/dev/null
                as_postgres "$PG_BIN/pg_ctl" -D "$base/$s" -m fast -w stop >/dev/null
                start "$s"
                "${client_cpu[@]}" "$PGBENCH" -n -c 1 -T 1 -b "$script" -h "$base" -p "${port[$s]}" -U postgres bench >"$out/run.out" 2>&1 ||
                    die "the warm-up run against the $s side failed: $(tail -3 "$out/run.out")"
            done
            declare -A pid=()
            for s in $sides; do
                "${client_cpu[@]}" "$PGBENCH" -n -c 1 -T "$seconds" -b "$script" -h "$base" -p "${port[$s]}" -U postgres bench >"$out/conc-$s.out" 2>&1 &
                pid[$s]=$!
            done
            for s in $sides; do
                wait "${pid[$s]}" || die "pgbench against the $s side failed: $(tail -3 "$out/conc-$s.out")"
            done
            for s in $sides; do
                v=$(tps_of "$out/conc-$s.out" "$s")
                eval "c_$s=$v"
            done
            conc_t+="$(awk -v p="$c_plain" -v t="$c_tracking" 'BEGIN { printf "%.4f", t / p }') "
            conc_l+="$(awk -v p="$c_plain" -v t="$c_preloaded" 'BEGIN { printf "%.4f", t / p }') "
        done
        mt=$(tr ' ' '\n' <<<"$conc_t" | grep . | median)
        ml=$(tr ' ' '\n' <<<"$conc_l" | grep . | median)
        printf '  %-11s  median ratio tracking/plain %.3f (target >= 0.98), preloaded/plain %.3f\n' "$script" "$mt" "$ml"
        echo "              runs' tracking/plain: $conc_t/ preloaded/plain: $conc_l"
    done
fi

# Instructions: every side restarted under callgrind; the pgbench session's backend is the
# newest callgrind file once pgbench has exited (autovacuum is off; other processes write theirs
# when the server stops).
echo "Under callgrind: instructions per transaction of one session's backend (a session of 2N transactions minus one of N; N = $cg_txns for -S, $((cg_txns / 4)) for TPC-B)"
declare -A ins
declare -a total
# The same data on every side first: the throughput runs updated each side's tables a different
# number of times, and a bloated table costs more instructions per lookup than the hook does.
for s in $sides; do
    p "$s" -d bench -c "TRUNCATE pgbench_history" -c "/* migrate_guard:allow blocking-rewrite */ VACUUM FULL pgbench_accounts, pgbench_tellers, pgbench_branches" \
        -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
done
for s in $sides; do
    as_postgres "$PG_BIN/pg_ctl" -D "$base/$s" -m fast -w stop >/dev/null
    as_postgres mkdir -p "$base/cg-$s"
    as_postgres bash -c "cd '$base/cg-$s' && nohup valgrind --tool=callgrind --callgrind-out-file='$base/cg-$s/cg.%p' \
        '$PG_BIN/postgres' -D '$base/$s' $(settings "$s" | tr '\n' ' ') >'$base/cg-$s.log' 2>&1 &"
    for _ in $(seq 1 600); do p "$s" -d postgres -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
    for script in select-only tpcb-like; do
        n=$cg_txns
        [ "$script" = tpcb-like ] && n=$((cg_txns / 4))
        # Two sessions, of n and 2n transactions: the difference of their counts is n
        # transactions' worth, without what every backend pays once (the fork inherits the
        # postmaster's start-up in callgrind's count, the connection, the library's loading).
        for k in 1 2; do
            before=$(as_postgres ls "$base/cg-$s" | grep -c '^cg\.' || true)
            "$PGBENCH" -n -c 1 -t $((k * n)) -b "$script" -h "$base" -p "${port[$s]}" -U postgres bench >/dev/null 2>&1
            for _ in $(seq 1 600); do [ "$(as_postgres ls "$base/cg-$s" | grep -c '^cg\.')" -gt "$before" ] && break; sleep 0.5; done
            sleep 1
            f=$(as_postgres ls -t "$base/cg-$s" | grep '^cg\.' | head -1)
            total[$k]=$(as_postgres awk '/^summary:|^totals:/ {print $2; exit}' "$base/cg-$s/$f")
        done
        ins[$script.$s]=$(( (total[2] - total[1]) / n ))
        as_postgres cat "$base/cg-$s/$f" >"${MG_CALLGRIND_OUT:-/tmp/mg-usage-callgrind}-$script-$s.out"
    done
    as_postgres "$PG_BIN/pg_ctl" -D "$base/$s" -m fast -w stop >/dev/null 2>&1 || true
done
echo "  profiles: ${MG_CALLGRIND_OUT:-/tmp/mg-usage-callgrind}-SCRIPT-SIDE.out (callgrind_annotate --inclusive=yes FILE | head -60)"
for script in select-only tpcb-like; do
    printf '  %-11s  plain %9d  preloaded %9d  tracking %9d' "$script" "${ins[$script.plain]}" "${ins[$script.preloaded]}" "${ins[$script.tracking]}"
    awk -v p="${ins[$script.plain]}" -v l="${ins[$script.preloaded]}" -v t="${ins[$script.tracking]}" \
        'BEGIN { printf "\n              ratio tracking/plain %.4f (target <= 1.02), preloaded/plain %.4f, tracking/preloaded %.4f\n", t / p, l / p, t / l }'
done

# Memory: the segment for 10,000 tables of 20 columns (one entry per table and per column).
as_postgres rm -rf "$base/mem"
as_postgres "$PG_BIN/initdb" -D "$base/mem" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$base/mem" -w -l "$base/mem.log" \
    -o "-c listen_addresses= -c port=${port[plain]} -c unix_socket_directories=$base -c shared_preload_libraries=migrate_guard -c migrate_guard.usage_max_entries=210000" start >/dev/null
size=$(psql -X -At -h "$base" -p "${port[plain]}" -U postgres -d postgres -c \
    "SELECT CASE WHEN to_regclass('pg_shmem_allocations') IS NULL THEN 'n/a' ELSE (SELECT size FROM pg_shmem_allocations WHERE name = 'migrate_guard usage')::text END")
as_postgres "$PG_BIN/pg_ctl" -D "$base/mem" -m fast -w stop >/dev/null
echo "Shared memory for 10,000 tables x 20 columns (usage_max_entries = 210000): $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.1f MiB", b / 1048576 }'))"
