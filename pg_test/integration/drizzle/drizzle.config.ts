import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: process.env.DRIZZLE_SCHEMA ?? './schema_v1.ts',
  out: './drizzle',
  dbCredentials: { url: process.env.DATABASE_URL! },
});
