-- CreateIndex (edited after `prisma migrate dev --create-only`: CONCURRENTLY, and the only
-- statement of its migration, so that it runs outside a transaction block)
CREATE INDEX CONCURRENTLY "Customer_email_idx" ON "Customer"("email");
