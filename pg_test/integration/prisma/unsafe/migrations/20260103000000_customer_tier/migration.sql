-- AlterTable
ALTER TABLE "Customer" ADD COLUMN "tier" TEXT NOT NULL;
