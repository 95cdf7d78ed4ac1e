#!/usr/bin/env python3
"""The lock audit as a test (see pg_test/lock_audit/audit.txt).

Usage: lock_audit.py AUDIT_FILE FIXTURE_FILE SERVER_INCLUDE_DIR
Connects with the libpq environment. For every row that exists on the running server's version:
its statement runs live (the guard's verdict must be `rule`), through check() (which must give
`check`, or `rule` when that says `same`), and once more with every rule allowed, after which
the strongest lock the transaction holds on `target` must be `lock`. Every AlterTableType value
and every statement node of the server's headers must have a row.
"""
import re
import sys

import psycopg

MODES = ["AccessShare", "RowShare", "RowExclusive", "ShareUpdateExclusive", "Share", "ShareRowExclusive",
         "Exclusive", "AccessExclusive"]
FAILURES = []


def fail(msg):
    FAILURES.append(msg)
    print(f"  FAIL  {msg}")


def rows(path):
    header, out = None, []
    for line in open(path):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split(" | ")]
        if header is None:
            header = cells
            continue
        if len(cells) != len(header):
            fail(f"audit.txt: {len(cells)} columns instead of {len(header)}: {line[:80]}")
            continue
        out.append(dict(zip(header, cells)))
    return out


def in_versions(spec, major):
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        if int(lo) <= major <= int(hi or lo):
            return True
    return False


def header_forms(include):
    text = open(f"{include}/nodes/parsenodes.h").read()
    at = re.search(r"typedef enum AlterTableType\s*\{(.*?)\}\s*AlterTableType;", text, re.S).group(1)
    return set(re.findall(r"\b(AT_[A-Za-z]+)", at)) | set(re.findall(r"typedef struct (\w+Stmt)\b", text))


def verdict(exc):
    d = exc.diag
    if d.sqlstate == "MG001":
        return re.match(r"migrate_guard: ([a-z-]+):", d.message_primary).group(1)
    return f"error {d.sqlstate}: {d.message_primary}"


def live(conn, stmt, autocommit):
    """The guard's verdict: a rule id, runs, or PostgreSQL's error."""
    conn.commit()
    try:
        if autocommit:
            conn.autocommit = True
            conn.execute(stmt)
            return "runs"
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL lock_timeout = '10s'")
            conn.execute(stmt)
        return "runs"
    except psycopg.Error as e:
        return verdict(e)
    finally:
        conn.autocommit = False


def locked(conn, stmt, target):
    """The strongest lock the transaction holds on target after running stmt with every rule allowed."""
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL lock_timeout = '10s'")
        conn.execute("SET LOCAL migrate_guard.allow = 'all'")
        conn.execute("SET LOCAL client_min_messages = error")
        conn.execute(stmt)
        held = [r[0] for r in conn.execute(
            "SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND granted AND locktype = 'relation' "
            "AND relation = %s::regclass", (target,))]
    held = [m.removesuffix("Lock") for m in held]
    return max(held, key=MODES.index) if held else "none"


def checked(conn, stmt):
    # The live run is a transaction block; LOCK runs only in one (outside, it is PostgreSQL's
    # error 25P01, which check() reports too).
    script = f"BEGIN; {stmt}; COMMIT;" if stmt.upper().startswith("LOCK") else stmt + ";"
    got = conn.execute("SELECT rule, verdict, sqlstate, message FROM migrate_guard.check(%s) ORDER BY rule",
                       (script,)).fetchall()
    blocked = [r[0] for r in got if r[1] == "block"]
    errors = [f"error {r[2]}: {r[3]}" for r in got if r[1] == "error"]
    return blocked[0] if blocked else (errors[0] if errors else "runs")


def main():
    audit, fixture, include = sys.argv[1:4]
    with psycopg.connect(autocommit=True) as conn:
        major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
        conn.execute("DROP SCHEMA IF EXISTS la, la2 CASCADE")
        for name in ("la_pub", "la_pub2"):
            conn.execute(f"DROP PUBLICATION IF EXISTS {name}")
        conn.execute("DROP SERVER IF EXISTS la_srv CASCADE")
        conn.execute("DROP FOREIGN DATA WRAPPER IF EXISTS la_fdw CASCADE")
        conn.execute(open(fixture).read())
    table = [r for r in rows(audit) if in_versions(r["versions"], major)]
    forms = {r["form"] for r in table}
    missing = sorted(header_forms(include) - forms)
    if missing:
        fail(f"forms of PostgreSQL {major} without a row in audit.txt: {', '.join(missing)}")
    stale = sorted(forms - header_forms(include))
    if stale:
        fail(f"rows for forms PostgreSQL {major} does not have (fix their versions): {', '.join(stale)}")
    examples = 0
    with psycopg.connect() as conn:
        conn.execute("SET migrate_guard.lock_timeout = 0")
        conn.commit()
        for r in table:
            stmt = r["statement"]
            if stmt == "-":
                continue
            examples += 1
            autocommit = stmt.startswith("autocommit: ")
            stmt = stmt.removeprefix("autocommit: ")
            want = r["rule"]
            got = live(conn, stmt, autocommit) if (not autocommit or want != "runs") else "runs"
            if got != want:
                fail(f"{r['form']}: {stmt}: live {got}, audit.txt says {want}")
            want_check = want if r["check"] == "same" else r["check"]
            got_check = checked(conn, stmt)
            conn.commit()
            if got_check != want_check:
                fail(f"{r['form']}: {stmt}: check() {got_check}, audit.txt says {want_check}")
            if r["lock"] != "-" and not autocommit:
                try:
                    mode = locked(conn, stmt, r["target"])
                except psycopg.Error as e:
                    mode = verdict(e)
                if mode != r["lock"]:
                    fail(f"{r['form']}: {stmt}: holds {mode} on {r['target']}, audit.txt says {r['lock']}")
    with psycopg.connect(autocommit=True) as conn:
        conn.execute("SET migrate_guard.allow = 'all'")
        conn.execute("DROP SCHEMA la, la2 CASCADE")
        conn.execute("DROP PUBLICATION IF EXISTS la_pub")
        conn.execute("DROP SERVER la_srv CASCADE")
        conn.execute("DROP FOREIGN DATA WRAPPER la_fdw")
    documented = len(table) - examples
    if FAILURES:
        print(f"  FAIL  lock audit on PostgreSQL {major}: {len(FAILURES)} disagreements ({len(table)} rows)")
        return 1
    print(f"  ok    lock audit on PostgreSQL {major}: {len(table)} rows cover every AlterTableType value and "
          f"statement node; {examples} examples give the audited verdict live and through check(), and hold "
          f"the audited lock; {documented} forms without an example (internal or no table) are documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
