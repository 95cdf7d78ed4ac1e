#!/usr/bin/env python3
"""What `prisma migrate deploy` and `prisma migrate resolve --rolled-back NAME` do to a
PostgreSQL database, step for step. Prisma's schema engine is a binary the npm package downloads
from Prisma's servers, which this machine cannot reach.

As the schema engine does (migration-connector's ImperativeMigrationsPersistence, the SQL
connector for PostgreSQL):
* a session advisory lock (`SELECT pg_advisory_lock(72707369)`) around the run;
* `_prisma_migrations` (id varchar(36), checksum varchar(64): sha256 of migration.sql, finished_at,
  migration_name, logs, rolled_back_at, started_at, applied_steps_count);
* deploy refuses (P3009) while a migration has failed and is not resolved; otherwise, for each
  directory under migrations/ in name order that has no finished, not rolled-back row: a row is
  inserted (started), the whole migration.sql goes to the server as ONE simple-protocol batch
  (several statements run in one implicit transaction; a file holding a single statement, such
  as CREATE INDEX CONCURRENTLY, runs outside any transaction block), then applied_steps_count and
  finished_at are set; on an error the logs are written, finished_at stays NULL, and deploy
  stops (P3018);
* resolve --rolled-back NAME sets rolled_back_at on that failed migration, so that deploy applies
  it again.
Output follows Prisma's messages. Newer schema engines may split a script into statements
(prisma-engines 2026); this follows the one-batch behaviour of the releases before that.
"""
import hashlib
import sys
import uuid
from pathlib import Path

import psycopg

TABLE_DDL = """CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)"""


def error_text(e: psycopg.Error) -> str:
    d = e.diag
    text = f"ERROR: {d.message_primary}"
    if d.message_detail:
        text += f"\nDETAIL: {d.message_detail}"
    if d.message_hint:
        text += f"\nHINT: {d.message_hint}"
    return text


def deploy(conn, migrations: Path) -> int:
    conn.execute(TABLE_DDL)
    rows = conn.execute('SELECT migration_name, finished_at, rolled_back_at, started_at FROM "_prisma_migrations"').fetchall()
    failed = [r for r in rows if r[1] is None and r[2] is None]
    if failed:
        name, _, _, started = failed[0]
        print("Error: P3009\n\nmigrate found failed migrations in the target database, new migrations will not be applied. "
              "Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n"
              f"The `{name}` migration started at {started} failed", file=sys.stderr)
        return 1
    applied = {r[0] for r in rows if r[1] is not None and r[2] is None}
    dirs = sorted(d for d in migrations.iterdir() if (d / "migration.sql").is_file())
    print(f"{len(dirs)} migrations found in prisma/migrations")
    done = []
    for d in dirs:
        if d.name in applied:
            continue
        script = (d / "migration.sql").read_text()
        mid = str(uuid.uuid4())
        checksum = hashlib.sha256(script.encode()).hexdigest()
        conn.execute('INSERT INTO "_prisma_migrations" (id, checksum, started_at, logs, migration_name, applied_steps_count) '
                     "VALUES (%s, %s, now(), '', %s, 0)", (mid, checksum, d.name))
        print(f"Applying migration `{d.name}`")
        try:
            psycopg.ClientCursor(conn).execute(script)
        except psycopg.Error as e:
            logs = error_text(e)
            conn.execute('UPDATE "_prisma_migrations" SET logs = %s WHERE id = %s', (logs, mid))
            print(f"Error: P3018\n\nA migration failed to apply. New migrations cannot be applied before the error is recovered from. "
                  "Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\n"
                  f"Migration name: {d.name}\n\nDatabase error code: {e.diag.sqlstate}\n\nDatabase error:\n{logs}", file=sys.stderr)
            return 1
        conn.execute('UPDATE "_prisma_migrations" SET applied_steps_count = applied_steps_count + 1 WHERE id = %s', (mid,))
        conn.execute('UPDATE "_prisma_migrations" SET finished_at = now() WHERE id = %s', (mid,))
        done.append(d.name)
    if done:
        print("The following migration(s) have been applied:\n\nmigrations/\n"
              + "".join(f"  └─ {n}/\n    └─ migration.sql\n" for n in done))
        print("All migrations have been successfully applied.")
    else:
        print("No pending migrations to apply.")
    return 0


def resolve_rolled_back(conn, name: str) -> int:
    row = conn.execute('SELECT id FROM "_prisma_migrations" WHERE migration_name = %s AND finished_at IS NULL '
                       "AND rolled_back_at IS NULL", (name,)).fetchone()
    if row is None:
        print(f"Error: P3011\n\nMigration {name} cannot be rolled back because it was never applied to the database.", file=sys.stderr)
        return 1
    conn.execute('UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE id = %s', (row[0],))
    print(f"Migration {name} marked as rolled back.")
    return 0


def main() -> int:
    # prisma_migrate.py URL MIGRATIONS_DIR deploy | resolve --rolled-back NAME
    url, migrations, command = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SELECT pg_advisory_lock(72707369)")
    try:
        if command[0] == "deploy":
            return deploy(conn, migrations)
        if command[:2] == ["resolve", "--rolled-back"]:
            return resolve_rolled_back(conn, command[2])
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    finally:
        conn.execute("SELECT pg_advisory_unlock(72707369)")


if __name__ == "__main__":
    sys.exit(main())
