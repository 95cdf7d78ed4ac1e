SELECT migrate_guard.begin_migration('drizzle 0001_email_index');--> statement-breakpoint
-- Edited after `drizzle-kit generate`. drizzle applies every pending migration in ONE
-- transaction, where CREATE INDEX CONCURRENTLY cannot run: the index is built before the deploy,
-- outside drizzle,
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS "customers_email_idx" ON "customers" USING btree ("email");
-- and the migration keeps the statement with IF NOT EXISTS, which then does nothing.
-- SET NOT NULL would scan the table under an ACCESS EXCLUSIVE lock: this deploy adds a CHECK
-- without checking the rows; the next one (0002, a custom migration) validates it and sets NOT
-- NULL without a scan. (Validating here, in the transaction that added the CHECK under its
-- ACCESS EXCLUSIVE lock, would block the table for the whole scan.)
ALTER TABLE "customers" ADD CONSTRAINT "customers_email_not_null" CHECK ("email" IS NOT NULL) NOT VALID;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "customers_email_idx" ON "customers" USING btree ("email");--> statement-breakpoint
SELECT migrate_guard.end_migration();
