class AddPlanToCustomers < ActiveRecord::Migration[6.1]
  # The column without its volatile default (instant), the default for new rows, then the
  # existing rows filled in batches by migrate_guard.backfill, which commits between batches:
  # outside ActiveRecord's transaction. NOT NULL comes in a later migration, once it is proved.
  disable_ddl_transaction!

  def up
    execute "SELECT migrate_guard.begin_migration('rails 20260103000000_add_plan_to_customers')"
    add_column :customers, :token, :uuid
    change_column_default :customers, :token, -> { "gen_random_uuid()" }
    execute "SELECT migrate_guard.end_migration()"
    execute "CALL migrate_guard.backfill('customers', 'token = gen_random_uuid()', 'token IS NULL')"
  end
end
