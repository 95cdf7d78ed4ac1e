// A rename that does not break the running release: migrate_guard's expansion adds full_name and
// keeps it in step with name; a later migration contracts it once no client uses name.
exports.up = (pgm) => {
  pgm.sql("SELECT migrate_guard.begin_migration('node-pg-migrate 1700000000003_rename-name')");
  pgm.sql("SELECT migrate_guard.expand_column('customers', 'name', new_name => 'full_name')");
  pgm.sql("SELECT migrate_guard.end_migration()");
};
