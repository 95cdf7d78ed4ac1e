#!/usr/bin/env bash
# The whole test suite on one PostgreSQL version (PG, default the system's): unit tests,
# `cargo pgrx test`, then golden tests, integration tests and PostgreSQL's own regression suite
# against a fresh local cluster of that version. Expects scripts/setup.sh to have prepared it.
# Exits non-zero on any failure.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

log "PostgreSQL $PG_MAJOR: unit tests (cargo test, no server)"
cargo test --lib --no-default-features --features "pg$PG_MAJOR" -- --skip tests::pg_

log "PostgreSQL $PG_MAJOR: cargo pgrx test (in-server tests, temporary cluster run by the postgres user)"
as_root install -d -o postgres -g postgres -m 0755 "$MG_HOME" "$MG_HOME/pg$PG_MAJOR" "$MG_HOME/pg$PG_MAJOR/pgrx-test"
cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$MG_HOME/pg$PG_MAJOR/pgrx-test"

bash scripts/install.sh
log "building the migrate-guard command-line client"
cargo build -q -p migrate-guard
bash pg_test/install_fixtures.sh
bash scripts/cluster.sh fresh test
trap 'bash scripts/cluster.sh stop test' EXIT

bash pg_test/run.sh
bash pg_test/integration/restore.sh
bash pg_test/integration/upgrade.sh
bash pg_test/integration/security.sh
bash pg_test/integration/coexistence.sh
bash pg_test/integration/preloaded.sh
bash pg_test/integration/usage.sh
bash pg_test/integration/backfill.sh
bash pg_test/integration/expansions.sh
bash pg_test/integration/tools.sh
bash pg_test/integration/emulated_tools.sh
bash pg_test/integration/node_tools.sh
bash pg_test/integration/rails.sh
bash pg_test/integration/check.sh
bash pg_test/integration/verdicts.sh
bash pg_test/integration/lock_audit.sh
bash pg_test/integration/crosscheck.sh
bash pg_test/pg_regress_suite.sh
# Last, as it replaces the development install for a while (and on 17 recreates the test
# cluster): the packages. On 15 the .deb (golden suite, the client, the upgrade from the previous
# release's package); on 17 the tarball into the PyPI tree. The other versions' packages are
# built by make package and install the same way.
case $PG_MAJOR in 15 | 17) bash pg_test/integration/package.sh ;; esac
log "PostgreSQL $PG_MAJOR: all tests passed"
