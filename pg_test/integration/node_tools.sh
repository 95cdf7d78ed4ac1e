#!/usr/bin/env bash
# node-pg-migrate and drizzle-kit (with drizzle-orm and pg), from npm, run for real against a
# guarded database with nothing configured in the tool: the unsafe migration fails with the
# guard's message, the tool's journal records only what was applied, the safe version written
# the tool's way passes, a migration registered with begin_migration links its statements in
# history, and migrate-guard check on the SQL the tool prints or generates agrees.
source "$(dirname "$0")/common.sh"
here=$(cd "$(dirname "$0")" && pwd)
nodedir=$TOOLS/node-tools
if [ ! -x "$nodedir/node_modules/.bin/drizzle-kit" ] || [ ! -x "$nodedir/node_modules/.bin/node-pg-migrate" ]; then
    log "installing node-pg-migrate, drizzle-kit, drizzle-orm and pg into $nodedir"
    npm install --silent --no-audit --no-fund --prefix "$nodedir" \
        node-pg-migrate@7.9 drizzle-kit@0.31 drizzle-orm@0.45 pg@8 >/dev/null
fi
work=$(mktemp -d /tmp/mg-node-tools.XXXXXX)
trap 'rm -rf "$work"' EXIT
url() { echo "postgresql://postgres@localhost:$TEST_PORT/$1?sslmode=disable"; }
linked() { # database migration-name -> history rows linked to it
    val "$1" "SELECT count(*) FROM migrate_guard.history h JOIN migrate_guard.migrations m ON m.id = h.migration_id WHERE m.name = '$2' AND m.status = 'applied'"
}

# --- node-pg-migrate -----------------------------------------------------------------------------
npm_bin=$nodedir/node_modules/.bin/node-pg-migrate
log "integration: node-pg-migrate $(node -p "require('$nodedir/node_modules/node-pg-migrate/package.json').version")"
db=mg_node_pg_migrate
fresh_db $db guarded
npgm() { DATABASE_URL=$(url $db) "$npm_bin" -m "$here/node_pg_migrate/$1" "${@:2}" 2>&1; }
applied() { val $db "SELECT string_agg(name, ',' ORDER BY id) FROM pgmigrations"; }
npgm unsafe up 1 >/dev/null
q -d $db -c "ANALYZE customers"
out=$(npgm unsafe up) && rc=0 || rc=$?
check "node-pg-migrate: the unsafe migrations fail" eq "$rc" 1
check "node-pg-migrate: the guard's message is in its output" contains "$out" \
    "error: migrate_guard: blocking-index: CREATE INDEX would block writes to table public.customers while the index is built"
check "node-pg-migrate: and the safe way (its HINT)" contains "$out" "CREATE INDEX CONCURRENTLY \"customers_email_index\" ON \"customers\" (\"email\")"
check "node-pg-migrate: pgmigrations records the first migration only" eq "$(applied)" "1700000000001_create-customers"
# Before the deploy: the SQL of --dry-run (its own lines dropped), into migrate-guard check.
npgm unsafe up --dry-run | grep -v -e '^>' -e '^###' -e '^dry run' -e '^Migrations complete' >"$work/npgm.sql"
out=$(PGDATABASE=$db "$MG_CLI" check --stdin-name node-pg-migrate-dry-run - <"$work/npgm.sql") && rc=0 || rc=$?
check "node-pg-migrate --dry-run | migrate-guard check: blocked (exit 1)" eq "$rc" 1
check "node-pg-migrate --dry-run | migrate-guard check: the index" contains "$out" "block blocking-index: CREATE INDEX would block writes to table public.customers"
check "node-pg-migrate --dry-run | migrate-guard check: the rename" contains "$out" "block rename-column: renaming column name of table public.customers to full_name"
out=$(npgm safe up) && rc=0 || rc=$?
check "node-pg-migrate: the safe migrations pass (noTransaction() with concurrently: true; a rename by expansion)" eq "$rc" 0
check "node-pg-migrate: pgmigrations records them" eq "$(applied)" \
    "1700000000001_create-customers,1700000000002_customers-email-index,1700000000003_rename-name"
check "node-pg-migrate: the index is valid" eq "$(val $db "SELECT indisvalid FROM pg_index WHERE indexrelid = 'customers_email_index'::regclass")" t
check "node-pg-migrate: the expansion is in progress" eq "$(val $db "SELECT kind || ' ' || phase FROM migrate_guard.expansions")" "rename column expanded"
check "node-pg-migrate: history links the registered migration's statements" \
    test "$(linked $db 'node-pg-migrate 1700000000003_rename-name')" -ge 1

# --- drizzle-kit -------------------------------------------------------------------------------
kit=$nodedir/node_modules/.bin/drizzle-kit
log "integration: drizzle-kit $(node -p "require('$nodedir/node_modules/drizzle-kit/package.json').version"), drizzle-orm $(node -p "require('$nodedir/node_modules/drizzle-orm/package.json').version")"
db=mg_drizzle
fresh_db $db guarded
cp "$here"/drizzle/drizzle.config.ts "$here"/drizzle/schema_v*.ts "$here"/drizzle/migrate.mjs "$work/"
ln -s "$nodedir/node_modules" "$work/node_modules"
drizzle() { (cd "$work" && DATABASE_URL=$(url $db) "$@" 2>&1); }
journal() { val $db "SELECT count(*) FROM drizzle.__drizzle_migrations"; }
drizzle env DRIZZLE_SCHEMA=./schema_v1.ts "$kit" generate --name init >/dev/null
drizzle "$kit" migrate >/dev/null
q -d $db -c "INSERT INTO customers (email, name) SELECT 'user' || g || '@example.com', 'user ' || g FROM generate_series(1, 2000) g" -c "ANALYZE customers"
drizzle env DRIZZLE_SCHEMA=./schema_v2.ts "$kit" generate --name email_index >/dev/null
generated=$work/drizzle/0001_email_index.sql
check "drizzle-kit generate: SET NOT NULL and a plain CREATE INDEX" eq \
    "$(grep -c -e 'ALTER COLUMN "email" SET NOT NULL' -e '^CREATE INDEX "customers_email_idx"' "$generated")" 2
out=$(PGDATABASE=$db "$MG_CLI" check "$generated") && rc=0 || rc=$?
check "drizzle generated SQL | migrate-guard check: blocked (exit 1)" eq "$rc" 1
check "drizzle generated SQL | migrate-guard check: SET NOT NULL" contains "$out" "0001_email_index.sql:1:1: block set-not-null"
check "drizzle generated SQL | migrate-guard check: the index" contains "$out" "0001_email_index.sql:2:1: block blocking-index"
out=$(drizzle "$kit" migrate) && rc=0 || rc=$?
check "drizzle-kit migrate: the unsafe migration fails (drizzle-kit 0.31 prints no error text)" eq "$rc" 1
check "drizzle: the journal records the first migration only" eq "$(journal)" 1
check "drizzle: the failed migration left nothing behind (one transaction)" \
    eq "$(val $db "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'email'")" f
out=$(drizzle node migrate.mjs) && rc=0 || rc=$?
check "drizzle-orm migrate(): fails too" eq "$rc" 1
check "drizzle-orm migrate(): the guard's message is in its output" contains "$out" \
    "error: migrate_guard: set-not-null: SET NOT NULL on column email scans the whole table public.customers"
# The safe way: the index built concurrently before the deploy, the migration edited.
q -d $db -c 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "customers_email_idx" ON "customers" USING btree ("email")'
cp "$here/drizzle/0001_email_index.edited.sql" "$generated"
out=$(PGDATABASE=$db "$MG_CLI" check "$generated") && rc=0 || rc=$?
check "drizzle edited SQL | migrate-guard check: nothing blocked (exit 0)" eq "$rc" 0
out=$(drizzle "$kit" migrate) && rc=0 || rc=$?
check "drizzle-kit migrate: the edited migration passes" eq "$rc" 0
drizzle "$kit" generate --custom --name email_not_null >/dev/null
cp "$here/drizzle/0002_email_not_null.sql" "$work/drizzle/0002_email_not_null.sql"
out=$(drizzle "$kit" migrate) && rc=0 || rc=$?
check "drizzle-kit migrate: the next deploy validates the CHECK and sets NOT NULL without a scan" eq "$rc" 0
check "drizzle: the journal records the three migrations" eq "$(journal)" 3
check "drizzle: email is NOT NULL, the index valid" eq \
    "$(val $db "SELECT attnotnull || ' ' || (SELECT indisvalid FROM pg_index WHERE indexrelid = 'customers_email_idx'::regclass) FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'email'")" "true true"
check "drizzle: history links the registered migration's statements" test "$(linked $db 'drizzle 0001_email_index')" -ge 2

for db in mg_node_pg_migrate mg_drizzle; do q -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)"; done
finish "node tools"
