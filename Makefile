# migrate_guard: the two commands a user needs, plus a few helpers.
#   make run    set up, build, install, start the local cluster and show the guard at work
#   make test   set up, build, install and run the whole test suite, on every tested version
# PG=13|14|15|16|17|18 picks the PostgreSQL version (make run PG=13, make test PG=18); without it,
# make run uses PostgreSQL 15 (Debian 12's own) and make test runs 15, 17, 16, 18, 14 and 13 in
# turn, then the pg_upgrade tests.
PG ?=
export PG
.PHONY: run stop test cli package bench bench-backfill bench-temp bench-dml bench-callgrind bench-check install setup psql verdicts

run:
	@bash scripts/setup.sh
	@bash scripts/install.sh --release
	@cargo build --release -q -p migrate-guard
	@bash scripts/cluster.sh start demo
	@bash scripts/demo.sh

stop:
	@bash scripts/cluster.sh stop demo

# The migrate-guard command-line client: target/release/migrate-guard
# (or install it: cargo install --path cli).
cli:
	@cargo build --release -q -p migrate-guard
	@echo "built target/release/migrate-guard"

test:
	@bash scripts/test.sh

# Packages for DBAs into dist/: per PostgreSQL version a .deb (postgresql-NN-migrate-guard) and a
# relocatable tarball, the static migrate-guard client and its .deb, SHA256SUMS (scripts/package.sh).
# PG=NN for one version; without it 15 and every other version prepared in /var/cache/migrate_guard.
package:
	@bash scripts/setup.sh
	@bash scripts/package.sh

bench:
	@bash scripts/setup.sh
	@bash scripts/install.sh --release
	@bash bench/ddl_overhead.sh

# Temporary tables per transaction, plain against guarded (pgbench): throughput ratio, history rows.
bench-temp:
	@bash scripts/setup.sh
	@bash scripts/install.sh --release
	@bash bench/temp_tables.sh

# pgbench TPC-B-like in sessions that ran one DDL statement first, plain against guarded: the
# executor hook's cost on ordinary traffic (target >= 0.99).
bench-dml:
	@bash scripts/setup.sh
	@bash scripts/install.sh --release
	@bash bench/dml_overhead.sh

# The DDL migration under valgrind --tool=callgrind: instruction counts, which do not vary.
bench-callgrind:
	@bash scripts/setup.sh
	@bash scripts/install.sh --release
	@bash bench/ddl_callgrind.sh 200 single
	@bash bench/ddl_callgrind.sh 200 autocommit
	@bash bench/ddl_callgrind.sh 300 temp
	@bash bench/ddl_callgrind.sh 2000 tpcb

# migrate-guard check against squawk on one 2,000-statement migration: statements per second.
bench-check:
	@bash scripts/setup.sh
	@bash scripts/install.sh --release
	@cargo build --release -q -p migrate-guard
	@bash bench/check_speed.sh

bench-backfill:
	@bash scripts/setup.sh
	@bash scripts/install.sh --release
	@bash bench/backfill.sh

setup:
	@bash scripts/setup.sh

install:
	@bash scripts/setup.sh
	@bash scripts/install.sh --release

psql:
	@bash scripts/cluster.sh psql demo

# Regenerate the README's verdict table by running its statements (needs the test cluster up,
# as after make test; the test command fails when the table and the behaviour disagree).
verdicts:
	@bash scripts/cluster.sh start test
	@bash pg_test/integration/verdicts.sh --write
