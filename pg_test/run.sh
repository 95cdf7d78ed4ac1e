#!/usr/bin/env bash
# Golden-file tests against a running server: pg_regress for single-session SQL files and
# pg_isolation_regress for multi-session specs. Expects the test cluster to be up.
# Usage: pg_test/run.sh [--accept] [test ...]   (--accept copies results over expected files)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO_ROOT"

accept=0
if [ "${1:-}" = --accept ]; then accept=1; shift; fi
pgxs=$($PG_CONFIG --pkglibdir)/pgxs
out=$(mktemp -d /tmp/mg-regress.XXXXXX)
common=(--host="$MG_SOCKET_DIR" --port="$TEST_PORT" --user=postgres --load-extension=migrate_guard)
status=0

if [ $# -gt 0 ]; then regress=("$@"); else mapfile -t regress < <(grep -E '^test:' pg_test/schedule | sed 's/^test: *//' | tr ' ' '\n'); fi

log "pg_regress: ${#regress[@]} golden files"
"$pgxs/src/test/regress/pg_regress" "${common[@]}" --inputdir=pg_test --outputdir="$out/regress" \
    --dbname=mg_regress "${regress[@]}" || status=1

if [ $# -eq 0 ]; then
    mapfile -t iso < <(ls pg_test/isolation/specs | sed 's/\.spec$//')
    log "pg_isolation_regress: ${#iso[@]} multi-session specs"
    "$pgxs/src/test/isolation/pg_isolation_regress" "${common[@]}" --inputdir=pg_test/isolation \
        --outputdir="$out/isolation" --dbname=mg_isolation "${iso[@]}" || status=1
fi

if [ $accept = 1 ]; then
    cp "$out"/regress/results/*.out pg_test/expected/ 2>/dev/null || true
    cp "$out"/isolation/results/*.out pg_test/isolation/expected/ 2>/dev/null || true
    log "accepted results into pg_test/expected (review them with git diff)"
elif [ $status -ne 0 ]; then
    cat "$out"/regress/regression.diffs "$out"/isolation/regression.diffs 2>/dev/null | head -400
    log "golden tests failed; full output in $out"
fi
exit $status
