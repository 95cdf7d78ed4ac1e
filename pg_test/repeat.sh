#!/usr/bin/env bash
# Run the tests that involve several sessions and timing N times in a row, to catch flakes: the
# backfill integration test (sessions killed, cancelled, crashed; lock holders; deadlocks), the
# expansions integration test (two pgbench clients through expand, backfill and contract) and
# every isolation spec. Stops at the first failure. Expects the test cluster to be up (as after
# `make test`, or `bash scripts/cluster.sh fresh test && bash pg_test/install_fixtures.sh`).
# Usage: pg_test/repeat.sh [N, default 10]
source "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO_ROOT"
n=${1:-10}
for i in $(seq 1 "$n"); do
    log "round $i of $n"
    out=$(bash pg_test/integration/backfill.sh 2>&1) || { echo "$out" | grep -v '^  ok'; die "backfill integration test failed in round $i"; }
    out=$(bash pg_test/integration/expansions.sh 2>&1) || { echo "$out" | grep -v '^  ok'; die "expansions integration test failed in round $i"; }
    mapfile -t iso < <(ls pg_test/isolation/specs | sed 's/\.spec$//')
    tmp=$(mktemp -d /tmp/mg-repeat.XXXXXX)
    "$($PG_CONFIG --pkglibdir)/pgxs/src/test/isolation/pg_isolation_regress" --host="$MG_SOCKET_DIR" --port="$TEST_PORT" \
        --user=postgres --load-extension=migrate_guard --bindir="$PG_BIN" --inputdir=pg_test/isolation --outputdir="$tmp" \
        --dbname=mg_isolation "${iso[@]}" >"$tmp/log" 2>&1 \
        || { cat "$tmp/log" "$tmp/regression.diffs" 2>/dev/null | tail -60; die "isolation specs failed in round $i"; }
    rm -rf "$tmp"
done
log "all $n rounds passed: backfill and expansions integration tests and ${#iso[@]} isolation specs"
