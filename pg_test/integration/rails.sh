#!/usr/bin/env bash
# ActiveRecord (Debian's ruby-activerecord 6.1 and ruby-pg) migrations run through
# ActiveRecord::MigrationContext, as `rails db:migrate` runs them, against a guarded database with
# nothing configured: the unsafe migration fails with the guard's message in ActiveRecord's
# output, schema_migrations records only what was applied, the safe version
# (disable_ddl_transaction! with algorithm: :concurrently; a volatile default filled by a
# backfill) passes, and a migration registered with begin_migration links its statements.
# (ActiveRecord prints no SQL before running it, so there is no migrate-guard check step here.)
source "$(dirname "$0")/common.sh"
here=$(cd "$(dirname "$0")" && pwd)
command -v ruby >/dev/null && ruby -e 'require "active_record"; require "pg"' 2>/dev/null \
    || die "ActiveRecord and ruby-pg are missing: MG_SETUP_TOOLS=1 bash scripts/setup.sh installs them"
log "integration: ActiveRecord $(ruby -e 'require "active_record"; print ActiveRecord.version') migrations"
db=mg_rails
fresh_db $db guarded
rails_migrate() { ruby "$here/rails/migrate.rb" "postgresql://postgres@localhost:$TEST_PORT/$db" "$here/rails/$1" "${@:2}" 2>&1; }
versions() { val $db "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations"; }
rails_migrate unsafe 20260101000000 >/dev/null
q -d $db -c "ANALYZE customers"
out=$(rails_migrate unsafe) && rc=0 || rc=$?
check "ActiveRecord: the unsafe migration fails" eq "$rc" 1
check "ActiveRecord: the guard's message is in its output" contains "$out" \
    "migrate_guard: blocking-index: CREATE INDEX would block writes to table public.customers while the index is built"
check "ActiveRecord: schema_migrations records the first migration only" eq "$(versions)" "20260101000000"
check "ActiveRecord: no index left behind (its transaction rolled back)" \
    eq "$(val $db "SELECT count(*) FROM pg_indexes WHERE indexname = 'index_customers_on_email'")" 0
# The second unsafe change on its own: a volatile default rewrites the table.
out=$(ruby -e '
    require "active_record"
    ActiveRecord::Base.establish_connection(ARGV[0])
    require ARGV[1]
    begin
      AddPlanToCustomers.new.migrate(:up)
    rescue StandardError => e
      warn e.message
      exit 1
    end' "postgresql://postgres@localhost:$TEST_PORT/$db" "$here/rails/unsafe/20260103000000_add_plan_to_customers.rb" 2>&1) && rc=0 || rc=$?
check "ActiveRecord: add_column with a volatile default is blocked" eq "$rc" 1
check "ActiveRecord: with the guard's message" contains "$out" "migrate_guard: add-column-rewrite: ADD COLUMN token"
out=$(rails_migrate safe) && rc=0 || rc=$?
check "ActiveRecord: the safe migrations pass (disable_ddl_transaction!, algorithm: :concurrently; backfill)" eq "$rc:$(grep -c 'migrated' <<<"$out")" "0:2"
check "ActiveRecord: schema_migrations records them" eq "$(versions)" "20260101000000,20260102000000,20260103000000"
check "ActiveRecord: the index is valid" eq "$(val $db "SELECT indisvalid FROM pg_index WHERE indexrelid = 'index_customers_on_email'::regclass")" t
check "ActiveRecord: every row has its token" eq "$(val $db "SELECT count(*) FROM customers WHERE token IS NULL")" 0
check "ActiveRecord: history links the registered migration's statements" eq \
    "$(val $db "SELECT count(*) FROM migrate_guard.history h JOIN migrate_guard.migrations m ON m.id = h.migration_id WHERE m.name = 'rails 20260103000000_add_plan_to_customers' AND m.status = 'applied'")" 2
q -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)"
finish "rails"
