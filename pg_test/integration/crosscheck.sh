#!/usr/bin/env bash
# check() against execution, statement by statement, over the guard's golden files (see
# crosscheck.py): both must give the same verdicts.
source "$(dirname "$0")/common.sh"
log "integration: check() and execution agree on every golden case"
psycopg_venv
"$venv/bin/python" "$(dirname "$0")/crosscheck.py" "$REPO_ROOT"/pg_test/sql/guard_*.sql "$REPO_ROOT/pg_test/sql/versions.sql"
