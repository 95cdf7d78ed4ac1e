ALTER TABLE customers ALTER COLUMN email SET NOT NULL;
ALTER TABLE customers DROP CONSTRAINT customers_email_not_null;
