-- migrate:up transaction:false
-- Safe: CONCURRENTLY, outside a transaction. dbmate sends a migration as one query string,
-- which PostgreSQL runs as one implicit transaction, so the index build is alone in its file.
CREATE INDEX CONCURRENTLY customers_email_idx ON customers (email);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY customers_email_idx;
