exports.up = (pgm) => {
  pgm.createIndex('customers', 'email');
};
