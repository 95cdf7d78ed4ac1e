-- migrate:up
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO customers SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 5000) g;

-- migrate:down
DROP TABLE customers;
