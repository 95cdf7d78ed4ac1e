// CREATE INDEX CONCURRENTLY cannot run in a transaction: this migration runs outside one.
exports.up = (pgm) => {
  pgm.noTransaction();
  pgm.createIndex('customers', 'email', { concurrently: true });
};
