#!/usr/bin/env bash
# check() against execution, statement by statement, over the guard's golden files (see
# crosscheck.py): both must give the same verdicts.
source "$(dirname "$0")/common.sh"
log "integration: check() and execution agree on every golden case"
venv=$TOOLS/venv-psycopg
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import psycopg' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "psycopg[binary]==3.2.*"
fi
"$venv/bin/python" "$(dirname "$0")/crosscheck.py" "$REPO_ROOT"/pg_test/sql/guard_*.sql "$REPO_ROOT/pg_test/sql/versions.sql"
