exports.up = (pgm) => {
  pgm.createTable('customers', {
    id: 'id',
    email: { type: 'text' },
    name: { type: 'text', notNull: true },
  });
  pgm.sql("INSERT INTO customers (email, name) SELECT 'user' || g || '@example.com', 'user ' || g FROM generate_series(1, 2000) g");
};
