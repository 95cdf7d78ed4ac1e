-- Custom migration (`drizzle-kit generate --custom --name email_not_null`), a deploy after 0001.
ALTER TABLE "customers" VALIDATE CONSTRAINT "customers_email_not_null";--> statement-breakpoint
ALTER TABLE "customers" ALTER COLUMN "email" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "customers" DROP CONSTRAINT "customers_email_not_null";
