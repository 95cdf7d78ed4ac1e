#!/usr/bin/env bash
# Prisma (`prisma migrate deploy`, `migrate resolve`) and golang-migrate (`migrate up`, `migrate
# force`) against a guarded database. Neither can run here (Prisma's schema engine downloads from
# Prisma's servers; golang-migrate is a Go binary no reachable registry carries), so
# pg_test/integration/emulated/ reproduces, step for step, what each does to the database: its
# bookkeeping table, its transactions, the protocol that carries a migration file. For each:
# the unsafe migration fails with the guard's message in the tool's output, the bookkeeping
# records what it records on a failure, the documented recovery works, the safe migrations
# (CONCURRENTLY in a file of its own) pass, a migration registered with begin_migration links its
# statements in history, and `migrate-guard check` on the files gives the same verdicts.
source "$(dirname "$0")/common.sh"
here=$(cd "$(dirname "$0")" && pwd)
psycopg_venv
url() { echo "postgresql://postgres@localhost:$TEST_PORT/$1?sslmode=disable"; }
linked() { # migration name -> history rows linked to it
    val "$1" "SELECT count(*) FROM migrate_guard.history h JOIN migrate_guard.migrations m ON m.id = h.migration_id WHERE m.name = '$2' AND m.status = 'applied'"
}

# --- golang-migrate ----------------------------------------------------------------------------
log "integration: golang-migrate (emulated: pg_test/integration/emulated/golang_migrate.py)"
db=mg_golang_migrate
fresh_db $db guarded
migrate() { "$venv/bin/python" "$here/emulated/golang_migrate.py" -path "$here/golang_migrate/$1" -database "$(url $db)" "${@:2}" 2>&1; }
state() { val $db "SELECT version || ' ' || dirty FROM schema_migrations"; }
out=$(migrate unsafe up) && rc=0 || rc=$?
check "golang-migrate: the unsafe migration fails" eq "$rc" 1
check "golang-migrate: the guard's message is in migrate's output" contains "$out" \
    "error: migration failed: migrate_guard: blocking-index: CREATE INDEX would block writes to table public.customers while the index is built"
check "golang-migrate: schema_migrations is left at version 2, dirty" eq "$(state)" "2 true"
check "golang-migrate: the failed file left nothing behind (one implicit transaction)" \
    eq "$(val $db "SELECT count(*) FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'tier'")" 0
out=$(migrate unsafe up) && rc=0 || rc=$?
check "golang-migrate: the next up refuses the dirty version" eq "$rc:$out" "1:error: Dirty database version 2. Fix and force version."
migrate safe force 1 >/dev/null
check "golang-migrate: force 1 (the version before the failed one) cleans it" eq "$(state)" "1 false"
out=$(PGDATABASE=$db "$MG_CLI" check "$here/golang_migrate/unsafe/2_add_tier_and_email_index.up.sql" "$here/golang_migrate/unsafe/3_email_not_null.up.sql") && rc=0 || rc=$?
check "golang-migrate files | migrate-guard check: blocked (exit 1)" eq "$rc" 1
check "golang-migrate files | migrate-guard check: the index" contains "$out" "2_add_tier_and_email_index.up.sql:3:1: block blocking-index"
check "golang-migrate files | migrate-guard check: SET NOT NULL" contains "$out" "3_email_not_null.up.sql:1:1: block set-not-null"
out=$(cd "$here/golang_migrate/safe" && PGDATABASE=$db "$MG_CLI" check 2_add_tier.up.sql 3_add_email_index.up.sql 4_email_not_null_check.up.sql) && rc=0 || rc=$?
check "golang-migrate safe files | migrate-guard check: nothing blocked (exit 0)" eq "$rc" 0
out=$(migrate safe up) && rc=0 || rc=$?
check "golang-migrate: the safe migrations pass (CONCURRENTLY alone in its file; NOT NULL through a validated CHECK)" eq "$rc" 0
check "golang-migrate: schema_migrations at the last version, clean" eq "$(state)" "6 false"
check "golang-migrate: the index is valid" eq "$(val $db "SELECT indisvalid FROM pg_index WHERE indexrelid = 'customers_email_idx'::regclass")" t
check "golang-migrate: email is NOT NULL" eq "$(val $db "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'email'")" t
check "golang-migrate: history links the registered migration's statement" eq "$(linked $db 'golang-migrate 2_add_tier')" 1

# --- Prisma ------------------------------------------------------------------------------------
log "integration: prisma migrate deploy (emulated: pg_test/integration/emulated/prisma_migrate.py)"
db=mg_prisma
fresh_db $db guarded
prisma() { "$venv/bin/python" "$here/emulated/prisma_migrate.py" "$(url $db)" "$here/prisma/$1/migrations" "${@:2}" 2>&1; }
rows() { val $db "SELECT string_agg(migration_name || ' ' || CASE WHEN finished_at IS NOT NULL THEN 'finished' WHEN rolled_back_at IS NOT NULL THEN 'rolled back' ELSE 'failed' END, ', ' ORDER BY started_at, migration_name) FROM _prisma_migrations"; }
out=$(prisma unsafe deploy) && rc=0 || rc=$?
check "Prisma: the unsafe migration fails" eq "$rc" 1
check "Prisma: the guard's message is in Prisma's output" contains "$out" \
    "ERROR: migrate_guard: blocking-index: CREATE INDEX would block writes to table public.\"Customer\" while the index is built"
check "Prisma: with its SQLSTATE" contains "$out" "Database error code: MG001"
check "Prisma: _prisma_migrations records the init as finished, the index migration as failed" eq "$(rows)" \
    "20260101000000_init finished, 20260102000000_customer_email_idx failed"
check "Prisma: the failed migration's logs hold the guard's HINT" \
    contains "$(val $db "SELECT logs FROM _prisma_migrations WHERE migration_name = '20260102000000_customer_email_idx'")" "HINT: Build it without blocking writes"
out=$(prisma unsafe deploy) && rc=0 || rc=$?
check "Prisma: deploy refuses while a migration has failed (P3009)" eq "$rc:$(grep -c 'Error: P3009' <<<"$out")" "1:1"
out=$(PGDATABASE=$db "$MG_CLI" check "$here"/prisma/unsafe/migrations/2026010[23]*/migration.sql) && rc=0 || rc=$?
check "Prisma migration.sql files | migrate-guard check: blocked (exit 1)" eq "$rc" 1
check "Prisma migration.sql files | migrate-guard check: the index" contains "$out" "20260102000000_customer_email_idx/migration.sql:2:1: block blocking-index"
check "Prisma migration.sql files | migrate-guard check: the NOT NULL column" contains "$out" "20260103000000_customer_tier/migration.sql:2:1: block add-column-not-null"
out=$(prisma unsafe resolve --rolled-back 20260102000000_customer_email_idx)
check "Prisma: migrate resolve --rolled-back marks it" contains "$out" "marked as rolled back"
out=$(PGDATABASE=$db "$MG_CLI" check "$here"/prisma/safe/migrations/2026010[23]*/migration.sql) && rc=0 || rc=$?
check "Prisma safe migration.sql files | migrate-guard check: nothing blocked (exit 0)" eq "$rc" 0
out=$(prisma safe deploy) && rc=0 || rc=$?
check "Prisma: the safe migrations pass (CONCURRENTLY alone in its migration; a constant default)" eq "$rc" 0
check "Prisma: _prisma_migrations records them, the failed attempt rolled back" eq "$(rows)" \
    "20260101000000_init finished, 20260102000000_customer_email_idx rolled back, 20260102000000_customer_email_idx finished, 20260103000000_customer_tier finished"
check "Prisma: the index is valid" eq "$(val $db "SELECT indisvalid FROM pg_index WHERE indexrelid = '\"Customer_email_idx\"'::regclass")" t
check "Prisma: history links the registered migration's statement" eq "$(linked $db 'prisma 20260103000000_customer_tier')" 1

for db in mg_golang_migrate mg_prisma; do q -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)"; done
finish "emulated tools"
