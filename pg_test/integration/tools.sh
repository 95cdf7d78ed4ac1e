#!/usr/bin/env bash
# Real migration tools against a guarded database: psql -f with ON_ERROR_STOP, Django
# migrations, and dbmate. For each: the unsafe migration fails with the guard's message in the
# tool's own output and the tool's bookkeeping stays consistent; the safe version of the same
# change passes; the tool's own history-table DDL is never blocked.
source "$(dirname "$0")/common.sh"
here=$(cd "$(dirname "$0")" && pwd)

# --- tools, installed once into target/tools (PyPI and npm) --------------------------------
# Django 5.2 needs PostgreSQL 14 or later; 4.2 (LTS) still supports 13.
django_series=5.2
[ "$PG_MAJOR" -lt 14 ] && django_series=4.2
venv=$TOOLS/venv-django-$django_series
if [ ! -x "$venv/bin/django-admin" ]; then
    log "installing Django $django_series and psycopg into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "django==$django_series.*" "psycopg[binary]==3.2.*"
fi
if [ ! -x "$TOOLS/node/node_modules/.bin/dbmate" ]; then
    log "installing dbmate into $TOOLS/node"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" dbmate@2 >/dev/null
fi

# --- psql -f ---------------------------------------------------------------------------------
log "integration: psql -f with ON_ERROR_STOP"
fresh_db mg_psql guarded
q -d mg_psql -c "CREATE TABLE accounts (id bigint PRIMARY KEY, email text)" \
             -c "INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 5000) g"
work=$(mktemp -d /tmp/mg-tools.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat > "$work/unsafe.sql" <<'SQL'
ALTER TABLE accounts ADD COLUMN plan text;
CREATE INDEX accounts_email_idx ON accounts (email);
ALTER TABLE accounts ADD COLUMN tier text;
SQL
out=$(psql -X -v ON_ERROR_STOP=1 -1 -d mg_psql -f "$work/unsafe.sql" 2>&1) && rc=0 || rc=$?
check "psql: the unsafe migration stops (exit 3)" eq "$rc" 3
check "psql: the guard's ERROR is in psql's output" contains "$out" "ERROR:  migrate_guard: blocking-index: CREATE INDEX would block writes to table public.accounts"
check "psql: its HINT too" contains "$out" "HINT:  Build it without blocking writes, outside a transaction block: CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);"
check "psql -1: nothing of the migration was applied" eq "$(val mg_psql "SELECT count(*) FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname IN ('plan', 'tier')")" 0
cat > "$work/safe.sql" <<'SQL'
ALTER TABLE accounts ADD COLUMN plan text;
CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);
ALTER TABLE accounts ADD COLUMN tier text;
SQL
out=$(psql -X -v ON_ERROR_STOP=1 -d mg_psql -f "$work/safe.sql" 2>&1) && rc=0 || rc=$?
check "psql: the safe version passes" eq "$rc" 0
check "psql: the index is built and valid" eq "$(val mg_psql "SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email_idx'::regclass")" t

# --- history of a DDL-heavy migration run by psql over TCP -------------------------------------
log "integration: history after a DDL-heavy psql migration"
fresh_db mg_history guarded
{
    echo "SELECT migrate_guard.begin_migration('0001_many_tables', 'sha256:0001');"
    for i in $(seq 1 60); do
        echo "CREATE TABLE t$i (id bigint PRIMARY KEY, v text);"
        echo "CREATE INDEX t${i}_v_idx ON t$i (v);"
        echo "COMMENT ON TABLE t$i IS 'table $i';"
        echo "ALTER TABLE t$i ADD COLUMN note text;"
    done
    echo "SELECT migrate_guard.end_migration();"
} > "$work/many.sql"
{   # fails at its last statement: psql -1 rolls the whole file back
    echo "SELECT migrate_guard.begin_migration('0002_fails', 'sha256:0002');"
    for i in $(seq 1 20); do echo "CREATE TABLE u$i (id int);"; done
    echo "CREATE TABLE t1 (id int);"
    echo "SELECT migrate_guard.end_migration();"
} > "$work/fails.sql"
committed=$(grep -E '^(CREATE|COMMENT|ALTER)' "$work/many.sql" | sed 's/;$//')
out=$(PGAPPNAME=mg_history_psql psql -X -h localhost -v ON_ERROR_STOP=1 -1 -d mg_history -f "$work/many.sql" 2>&1) && rc=0 || rc=$?
check "psql -1 over TCP: the 240-statement migration commits" eq "$rc" 0
out=$(PGAPPNAME=mg_history_psql psql -X -h localhost -v ON_ERROR_STOP=1 -1 -d mg_history -f "$work/fails.sql" 2>&1) && rc=0 || rc=$?
check "psql -1: the failing migration stops" eq "$rc" 3
recorded=$(val mg_history "SELECT string_agg(statement, E'\n' ORDER BY id) FROM migrate_guard.history")
check "history holds exactly the committed statements, in order, none of the rolled-back file" eq "$recorded" "$committed"
check "each linked to its migration, from psql over TCP" eq \
    "$(val mg_history "SELECT string_agg(DISTINCT concat_ws(' ', m.name, h.application_name, host(h.client_addr) IN ('127.0.0.1', '::1')), ',')
                       FROM migrate_guard.history h LEFT JOIN migrate_guard.migrations m ON m.id = h.migration_id")" \
    "0001_many_tables mg_history_psql t"
check "migrations: the applied one with its count; the failed one left no row" eq \
    "$(val mg_history "SELECT string_agg(name || ' ' || status || ' ' || statement_count, ',' ORDER BY id) FROM migrate_guard.migrations")" \
    "0001_many_tables applied 240"

# --- Django ----------------------------------------------------------------------------------
log "integration: Django $("$venv/bin/python" -c 'import django; print(django.__version__)') migrations"
fresh_db mg_django guarded
django() { (cd "$here/django" && MG_DJANGO_DB=mg_django "$venv/bin/python" manage.py "$@" 2>&1); }
applied() { val mg_django "SELECT string_agg(name, ',' ORDER BY name) FROM django_migrations WHERE app = 'shop'"; }
out=$(SHOP_MIGRATIONS=shop.migrations_unsafe django migrate shop) && rc=0 || rc=$?
check "Django: the unsafe migration fails" eq "$rc" 1
check "Django: the guard's message is in Django's output" contains "$out" "migrate_guard: blocking-index: CREATE INDEX would block writes to table public.shop_customer"
check "Django: its own history table was created without a block" eq "$(val mg_django "SELECT to_regclass('django_migrations') IS NOT NULL")" t
check "Django: django_migrations records 0001 and 0002 only" eq "$(applied)" "0001_initial,0002_load_customers"
check "Django: showmigrations agrees" contains "$(SHOP_MIGRATIONS=shop.migrations_unsafe django showmigrations shop)" "[ ] 0003_customer_email_idx"
check "Django: no index left behind" eq "$(val mg_django "SELECT count(*) FROM pg_indexes WHERE indexname = 'customer_email_idx'")" 0
# Before the deploy: the SQL Django would run, piped into migrate-guard check.
sql=$(SHOP_MIGRATIONS=shop.migrations_unsafe django sqlmigrate shop 0003)
line=$(grep -n '^CREATE INDEX' <<<"$sql" | cut -d: -f1)
out=$(PGDATABASE=mg_django "$MG_CLI" check - <<<"$sql") && rc=0 || rc=$?
check "Django sqlmigrate | migrate-guard check -: the unsafe migration would be blocked (exit 1)" eq "$rc" 1
check "Django sqlmigrate | migrate-guard check -: rule, table and line" contains "$out" \
    "<stdin>:$line:1: block blocking-index: CREATE INDEX would block writes to table public.shop_customer while the index is built"
out=$(SHOP_MIGRATIONS=shop.migrations_safe django sqlmigrate shop 0003 | PGDATABASE=mg_django "$MG_CLI" check -) && rc=0 || rc=$?
check "Django sqlmigrate | migrate-guard check -: the safe migration passes (exit 0)" eq "$rc:$out" \
    "0:migrate-guard: 1 file checked: nothing would be blocked"
out=$(SHOP_MIGRATIONS=shop.migrations_safe django migrate shop) && rc=0 || rc=$?
check "Django: the safe migration (AddIndexConcurrently, atomic = False) passes" eq "$rc" 0
check "Django: django_migrations records 0003" eq "$(applied)" "0001_initial,0002_load_customers,0003_customer_email_idx"
check "Django: the index is valid" eq "$(val mg_django "SELECT indisvalid FROM pg_index WHERE indexrelid = 'customer_email_idx'::regclass")" t

# --- Django: schema and data in one migration --------------------------------------------------
log "integration: Django AddField + RunPython (schema-and-data) and the split version"
fresh_db mg_django_data guarded
crm() { (cd "$here/django" && MG_DJANGO_DB=mg_django_data "$venv/bin/python" manage.py "$@" 2>&1); }
crm_applied() { val mg_django_data "SELECT string_agg(name, ',' ORDER BY name) FROM django_migrations WHERE app = 'crm'"; }
out=$(CRM_MIGRATIONS=crm.migrations_mixed crm migrate crm) && rc=0 || rc=$?
check "Django: AddField + RunPython filling every row fails" eq "$rc" 1
check "Django: blocked as schema-and-data, in Django's output" contains "$out" \
    "migrate_guard: schema-and-data: UPDATE of about 20000 rows of table public.crm_account while this transaction holds an ACCESS EXCLUSIVE lock on table public.crm_account"
check "Django: the hint, with the backfill call, in Django's output" contains "$out" \
    "HINT:  Split schema and data: let the schema change commit in a migration of its own, and move the UPDATE to the next migration."
check "Django: ... and the backfill call for the UPDATE Django ran" contains "$out" \
    "CALL migrate_guard.backfill('public.crm_account', '\"normalized_email\" = LOWER(\"crm_account\".\"email\")', '\"normalized_email\" IS DISTINCT FROM LOWER(\"crm_account\".\"email\")')"
check "Django: the failed migration is not recorded, and left no column behind" eq \
    "$(crm_applied):$(val mg_django_data "SELECT count(*) FROM pg_attribute WHERE attrelid = 'crm_account'::regclass AND attname = 'normalized_email'")" \
    "0001_initial:0"
# The same change split: the schema migration, then a non-atomic data migration that backfills.
out=$(CRM_MIGRATIONS=crm.migrations_split crm migrate crm) && rc=0 || rc=$?
check "Django: the split version (AddField, then a non-atomic RunPython calling migrate_guard.backfill) passes" eq "$rc" 0
check "Django: django_migrations records all three" eq "$(crm_applied)" "0001_initial,0002_normalized_email,0003_fill_normalized_email"
check "Django: every row is filled" eq \
    "$(val mg_django_data "SELECT count(*) FILTER (WHERE normalized_email = lower(email)) || '/' || count(*) FROM crm_account")" "20000/20000"
check "Django: the backfill committed its batches of 5,000 rows (the fifth finds none left)" eq \
    "$(val mg_django_data "SELECT status || ' ' || batches || ' ' || rows_updated FROM migrate_guard.backfills")" "done 5 20000"

# --- dbmate ----------------------------------------------------------------------------------
dbmate_bin=$TOOLS/node/node_modules/.bin/dbmate
log "integration: $("$dbmate_bin" --version)"
fresh_db mg_dbmate guarded
dbmate() { "$dbmate_bin" --url "postgres://postgres@localhost:$TEST_PORT/mg_dbmate?sslmode=disable" --no-dump-schema "$@" 2>&1; }
versions() { val mg_dbmate "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations"; }
out=$(dbmate --migrations-dir "$here/dbmate/unsafe" up) && rc=0 || rc=$?
check "dbmate: the unsafe migration fails" test "$rc" -ne 0
check "dbmate: the guard's message is in dbmate's output" contains "$out" "migrate_guard: blocking-index: CREATE INDEX would block writes to table public.customers"
check "dbmate: its own schema_migrations table was created without a block" eq "$(val mg_dbmate "SELECT to_regclass('schema_migrations') IS NOT NULL")" t
check "dbmate: schema_migrations records the first migration only" eq "$(versions)" "20260101000000"
check "dbmate: the failed migration left nothing behind" eq "$(val mg_dbmate "SELECT count(*) FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'tier'")" 0
out=$(dbmate --migrations-dir "$here/dbmate/safe" up) && rc=0 || rc=$?
check "dbmate: the safe migration (transaction:false, CONCURRENTLY) passes" eq "$rc" 0
check "dbmate: schema_migrations records them" eq "$(versions)" "20260101000000,20260102000000,20260103000000"
check "dbmate: the index is valid" eq "$(val mg_dbmate "SELECT indisvalid FROM pg_index WHERE indexrelid = 'customers_email_idx'::regclass")" t

for db in mg_psql mg_history mg_django mg_django_data mg_dbmate; do q -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)"; done
finish "tools"
