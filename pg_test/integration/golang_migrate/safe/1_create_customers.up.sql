CREATE TABLE customers (id bigint PRIMARY KEY, email text, name text NOT NULL);
INSERT INTO customers SELECT g, 'user' || g || '@example.com', 'user ' || g FROM generate_series(1, 2000) g;
