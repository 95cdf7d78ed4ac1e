class AddPlanToCustomers < ActiveRecord::Migration[6.1]
  def change
    # A volatile default: every existing row gets its own value, so PostgreSQL rewrites the table.
    add_column :customers, :token, :uuid, default: -> { "gen_random_uuid()" }, null: false
  end
end
