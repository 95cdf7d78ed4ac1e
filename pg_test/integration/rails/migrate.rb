# Runs the migrations of a directory the way `rails db:migrate` does, without a Rails
# application: ActiveRecord::MigrationContext with its schema_migrations table.
# Usage: ruby migrate.rb DATABASE_URL MIGRATIONS_DIR [TARGET_VERSION]
require "active_record"

ActiveRecord::Base.establish_connection(ARGV[0])
ActiveRecord::Migration.verbose = true
begin
  ActiveRecord::MigrationContext.new(ARGV[1], ActiveRecord::SchemaMigration).migrate(ARGV[2]&.to_i)
rescue StandardError => e
  warn "rails aborted!"
  warn "#{e.class}: #{e.message}"
  exit 1
end
