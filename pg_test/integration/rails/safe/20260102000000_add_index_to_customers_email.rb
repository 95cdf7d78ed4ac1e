class AddIndexToCustomersEmail < ActiveRecord::Migration[6.1]
  # CREATE INDEX CONCURRENTLY cannot run inside the transaction ActiveRecord wraps a migration in.
  disable_ddl_transaction!

  def change
    add_index :customers, :email, algorithm: :concurrently
  end
end
