SELECT migrate_guard.begin_migration('golang-migrate 2_add_tier');
ALTER TABLE customers ADD COLUMN tier text;
SELECT migrate_guard.end_migration();
