#!/usr/bin/env python3
"""What `migrate -path DIR -database URL up` and `migrate ... force V` of golang-migrate (v4,
postgres driver, default options) do to a PostgreSQL database, step for step; golang-migrate is
a Go binary that no registry reachable here carries.

As its postgres driver does (database/postgres/postgres.go):
* a session advisory lock around the run (`SELECT pg_advisory_lock($1)`; the key differs);
* `schema_migrations (version bigint not null primary key, dirty boolean not null)`, created
  when information_schema does not list it, holding at most one row;
* per migration `N_name.up.sql`, in version order above the current one: SetVersion(N, dirty)
  (BEGIN; TRUNCATE schema_migrations; INSERT (N, true); COMMIT), then the whole file in ONE
  simple-protocol Exec (several statements run in one implicit transaction), then
  SetVersion(N, false);
* a failed file leaves version N dirty; the next `up` refuses with "Dirty database version N.
  Fix and force version."; `force V` sets version V, not dirty.
Messages are printed the way the migrate CLI prints them.
"""
import re
import sys
import time
import zlib
from pathlib import Path

import psycopg

TABLE = '"public"."schema_migrations"'


def lock_id(database: str) -> int:
    # A key derived from the database and table names, as golang-migrate derives its own (the
    # value differs from golang-migrate's; only its role, one run at a time, matters here).
    return (zlib.crc32(f"{database}public\x00schema_migrations".encode()) * 1486364155) % 2**31


def set_version(conn, version: int, dirty: bool) -> None:
    with conn.transaction():
        conn.execute(f"TRUNCATE {TABLE}")
        if version >= 0:
            conn.execute(f"INSERT INTO {TABLE} (version, dirty) VALUES (%s, %s)", (version, dirty))


def main() -> int:
    args = sys.argv[1:]
    path = args[args.index("-path") + 1]
    url = args[args.index("-database") + 1]
    command = args[args.index("-database") + 2:]
    conn = psycopg.connect(url, autocommit=True)
    database = conn.info.dbname
    conn.execute("SELECT pg_advisory_lock(%s)", (lock_id(database),))
    try:
        exists = conn.execute(
            "SELECT COUNT(1) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s LIMIT 1",
            ("public", "schema_migrations")).fetchone()[0]
        if not exists:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (version bigint not null primary key, dirty boolean not null)")
        row = conn.execute(f"SELECT version, dirty FROM {TABLE} LIMIT 1").fetchone()
        current, dirty = (row[0], row[1]) if row else (-1, False)
        if command[0] == "force":
            set_version(conn, int(command[1]), False)
            return 0
        if dirty:
            print(f"error: Dirty database version {current}. Fix and force version.", file=sys.stderr)
            return 1
        files = sorted((int(m.group(1)), f) for f in Path(path).iterdir()
                       if (m := re.match(r"^(\d+)_.*\.up\.sql$", f.name)))
        ran = 0
        for version, f in files:
            if version <= current:
                continue
            started = time.monotonic()
            set_version(conn, version, True)
            text = f.read_text()
            if text.strip():
                try:
                    # Client-side binding: the file goes out as one simple-protocol query, as
                    # lib/pq sends an Exec without arguments.
                    psycopg.ClientCursor(conn).execute(text)
                except psycopg.Error as e:
                    message = f"migration failed: {e.diag.message_primary}"
                    if e.diag.message_detail:
                        message += f", {e.diag.message_detail}"
                    print(f"error: {message} in line 0: {text}", file=sys.stderr)
                    return 1
            set_version(conn, version, False)
            print(f"{version}/u {f.name[len(str(version)) + 1:-len('.up.sql')]} ({(time.monotonic() - started) * 1000:.1f}ms)")
            ran += 1
        if ran == 0:
            print("no change")
        return 0
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id(database),))


if __name__ == "__main__":
    sys.exit(main())
