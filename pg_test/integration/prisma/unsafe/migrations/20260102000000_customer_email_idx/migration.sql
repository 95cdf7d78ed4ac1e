-- CreateIndex
CREATE INDEX "Customer_email_idx" ON "Customer"("email");
