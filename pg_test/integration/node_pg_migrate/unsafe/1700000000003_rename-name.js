exports.up = (pgm) => {
  pgm.renameColumn('customers', 'name', 'full_name');
};
