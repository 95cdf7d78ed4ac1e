-- migrate:up
ALTER TABLE customers ADD COLUMN tier text;

-- migrate:down
ALTER TABLE customers DROP COLUMN tier;
