SELECT migrate_guard.begin_migration('prisma 20260103000000_customer_tier');

-- AlterTable (edited: a constant default fills existing rows without a rewrite)
ALTER TABLE "Customer" ADD COLUMN "tier" TEXT NOT NULL DEFAULT 'free';

SELECT migrate_guard.end_migration();
