class CreateCustomers < ActiveRecord::Migration[6.1]
  def change
    create_table :customers do |t|
      t.text :email
      t.text :name, null: false
    end
    execute "INSERT INTO customers (email, name) SELECT 'user' || g || '@example.com', 'user ' || g FROM generate_series(1, 2000) g"
  end
end
