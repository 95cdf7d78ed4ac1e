import { index, pgTable, serial, text } from 'drizzle-orm/pg-core';

// v2: email becomes required and indexed.
export const customers = pgTable('customers', {
  id: serial('id').primaryKey(),
  email: text('email').notNull(),
  name: text('name').notNull(),
}, (t) => [index('customers_email_idx').on(t.email)]);
