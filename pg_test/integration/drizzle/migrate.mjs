// The migrator applications run at start-up (drizzle-orm's migrate()): the same files and the
// same drizzle.__drizzle_migrations journal as `drizzle-kit migrate`, which hides the error.
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  await migrate(drizzle(client), { migrationsFolder: './drizzle' });
  console.log('migrations applied');
} catch (e) {
  const cause = e.cause ?? e;
  console.error(`error: ${cause.message}`);
  if (cause.detail) console.error(`DETAIL: ${cause.detail}`);
  if (cause.hint) console.error(`HINT: ${cause.hint}`);
  process.exitCode = 1;
} finally {
  await client.end();
}
