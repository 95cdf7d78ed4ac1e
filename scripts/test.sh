#!/usr/bin/env bash
# The whole test suite: unit tests, `cargo pgrx test`, then golden tests, integration tests and
# PostgreSQL's own regression suite against a fresh local cluster. Exits non-zero on any failure.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

MG_SETUP_TOOLS=1 bash scripts/setup.sh

log "unit tests (cargo test, no server)"
cargo test --lib -- --skip tests::pg_

log "cargo pgrx test (in-server tests, temporary cluster run by the postgres user)"
as_root install -d -o postgres -g postgres -m 0755 "$MG_HOME" "$MG_HOME/pgrx-test"
cargo pgrx test pg$PG_MAJOR --runas postgres --pgdata "$MG_HOME/pgrx-test"

bash scripts/install.sh
bash pg_test/install_fixtures.sh
bash scripts/cluster.sh fresh test
trap 'bash scripts/cluster.sh stop test' EXIT

bash pg_test/run.sh
bash pg_test/integration/restore.sh
bash pg_test/integration/upgrade.sh
bash pg_test/integration/backfill.sh
bash pg_test/integration/tools.sh
bash pg_test/integration/verdicts.sh
bash pg_test/pg_regress_suite.sh
log "all tests passed"
