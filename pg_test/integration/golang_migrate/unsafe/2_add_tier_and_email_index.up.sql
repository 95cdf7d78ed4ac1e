SELECT migrate_guard.begin_migration('golang-migrate 2_add_tier_and_email_index');
ALTER TABLE customers ADD COLUMN tier text;
CREATE INDEX customers_email_idx ON customers (email);
SELECT migrate_guard.end_migration();
