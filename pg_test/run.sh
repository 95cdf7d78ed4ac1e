#!/usr/bin/env bash
# Golden-file tests against a running server: pg_regress for single-session SQL files and
# pg_isolation_regress for multi-session specs. Expects the test cluster to be up.
# Usage: [PG=NN] pg_test/run.sh [--accept] [test ...]   (--accept copies results over expected
# files: name.out for PostgreSQL 15, name_N.out for a version whose output differs)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO_ROOT"

accept=0
if [ "${1:-}" = --accept ]; then accept=1; shift; fi
pgxs=$($PG_CONFIG --pkglibdir)/pgxs
out=$(mktemp -d /tmp/mg-regress.XXXXXX)
# --bindir: a relocated server tree (the PyPI wheels) has another psql than the one compiled in.
common=(--host="$MG_SOCKET_DIR" --port="$TEST_PORT" --user=postgres --load-extension=migrate_guard --bindir="$PG_BIN")
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

# Expected files: name.out is PostgreSQL 15's output; a version whose output really differs has
# its own alternative, name_N.out (pg_regress accepts any of them), with a fixed N per version.
alternative_suffix() {
    case $PG_MAJOR in 15) echo "" ;; 13) echo _1 ;; 18) echo _2 ;; 17) echo _3 ;; 14) echo _4 ;; 16) echo _5 ;; esac
}
same_as_another() { # result base-expected own-alternative
    local e
    for e in "$2" "${2%.out}"_[0-9].out; do
        [ -f "$e" ] && [ "$e" != "$3" ] && cmp -s "$1" "$e" && return 0
    done
    return 1
}
accept_into() { # results-dir expected-dir
    local suffix f base
    suffix=$(alternative_suffix)
    for f in "$1"/*.out; do
        [ -e "$f" ] || continue
        base=$2/$(basename "$f")
        if [ -z "$suffix" ]; then
            cp "$f" "$base"
        elif same_as_another "$f" "$base" "${base%.out}$suffix.out"; then
            # Another version's expected file already matches: pg_regress accepts any of them.
            rm -f "${base%.out}$suffix.out"
        else
            cp "$f" "${base%.out}$suffix.out"
        fi
    done
}

if [ $accept = 1 ]; then
    accept_into "$out/regress/results" pg_test/expected
    accept_into "$out/isolation/results" pg_test/isolation/expected
    log "accepted PostgreSQL $PG_MAJOR's results into pg_test/expected (review them with git diff)"
elif [ $status -ne 0 ]; then
    cat "$out"/regress/regression.diffs "$out"/isolation/regression.diffs 2>/dev/null | head -400
    log "golden tests failed; full output in $out"
fi
exit $status
