-- migrate:up
-- Unsafe: a plain CREATE INDEX inside dbmate's transaction.
ALTER TABLE customers ADD COLUMN tier text;
CREATE INDEX customers_email_idx ON customers (email);

-- migrate:down
DROP INDEX customers_email_idx;
ALTER TABLE customers DROP COLUMN tier;
