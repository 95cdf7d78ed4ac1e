#!/usr/bin/env bash
# The lock audit (pg_test/lock_audit/audit.txt) run as a test against the test cluster: see
# lock_audit.py.
source "$(dirname "$0")/common.sh"
log "integration: lock audit"
psycopg_venv
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS mg_lock_audit WITH (FORCE)" \
    -c "CREATE DATABASE mg_lock_audit"
psql -X -q -d mg_lock_audit -c "CREATE EXTENSION migrate_guard" \
    -c "ALTER DATABASE mg_lock_audit SET session_preload_libraries = 'migrate_guard'"
status=0
PGDATABASE=mg_lock_audit "$venv/bin/python" "$(dirname "$0")/lock_audit.py" "$REPO_ROOT/pg_test/lock_audit/audit.txt" \
    "$REPO_ROOT/pg_test/lock_audit/fixture.sql" "$("$PG_CONFIG" --includedir-server)" || status=1
psql -X -q -d postgres -c "DROP DATABASE mg_lock_audit WITH (FORCE)"
exit $status
