#!/usr/bin/env python3
"""Run every statement of the README's verdict table against a populated, guarded database and
compare the outcomes with the table in README.md (or rewrite it with --write).

Each statement runs in its own transaction, rolled back afterwards; statements that cannot run
in a transaction block (CONCURRENTLY) run on their own and are undone by a cleanup statement.
"""
import os
import re
import sys

import psycopg

FIXTURE = """
CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(100), plan text, score int, note text,
                       created_at timestamp, parent_id bigint);
INSERT INTO accounts SELECT g, 'user' || g || '@example.com', (ARRAY['free', 'pro'])[1 + g % 2], g % 50,
                            'n', timestamp '2026-01-01', NULLIF(g - 1, 0)
FROM generate_series(1, 10000) g;
CREATE INDEX accounts_plan_idx ON accounts (plan);
CREATE UNIQUE INDEX accounts_email_uidx ON accounts (email);
ALTER TABLE accounts ADD CONSTRAINT score_check CHECK (score >= 0) NOT VALID;
CREATE TABLE plans (id bigint PRIMARY KEY, name text);
INSERT INTO plans SELECT g, 'plan ' || g FROM generate_series(1, 10) g;
CREATE TABLE legacy (id int, v text);
INSERT INTO legacy SELECT g, 'v' FROM generate_series(1, 1000) g;
CREATE TABLE empty_log (id bigint, msg text);
CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events SELECT g, date '2025-01-01' + g % 700 FROM generate_series(1, 5000) g;
CREATE MATERIALIZED VIEW plan_counts AS SELECT plan, count(*) AS n FROM accounts GROUP BY plan;
CREATE UNIQUE INDEX plan_counts_plan ON plan_counts (plan);
CREATE VIEW active_accounts AS SELECT id FROM accounts WHERE id > 100;
CREATE DOMAIN positive_int AS int CHECK (VALUE > 0);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
CREATE SCHEMA archive;
CREATE TABLE events_2027 (id bigint, at date);
INSERT INTO events_2027 SELECT g, date '2027-01-01' + g % 300 FROM generate_series(1, 1000) g;
CREATE DOMAIN email_address AS text;
CREATE TABLE contacts (id int, address email_address);
INSERT INTO contacts SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 1000) g;
ANALYZE;
"""

# (statement, cleanup for statements that must run outside a transaction block)
CASES = [
    ("CREATE INDEX accounts_email_idx ON accounts (email)", None),
    ("CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email)", "DROP INDEX CONCURRENTLY accounts_email_idx"),
    ("CREATE UNIQUE INDEX accounts_email_key ON accounts (email)", None),
    ("CREATE INDEX ON accounts (lower(email))", None),
    ("CREATE INDEX ON accounts (plan) WHERE plan = 'pro'", None),
    ("CREATE INDEX ON empty_log (msg)", None),
    ("CREATE INDEX ON events (at)", None),
    ("CREATE INDEX events_at_idx ON ONLY events (at)", None),
    ("CREATE INDEX ON events_2025 (at)", None),
    ("CREATE INDEX ON plan_counts (n)", None),
    ("DROP INDEX accounts_plan_idx", None),
    ("DROP INDEX CONCURRENTLY accounts_plan_idx", "CREATE INDEX CONCURRENTLY accounts_plan_idx ON accounts (plan)"),
    ("ALTER INDEX accounts_plan_idx RENAME TO accounts_plan_ix", None),
    ("ALTER TABLE accounts ADD COLUMN tier text", None),
    ("ALTER TABLE accounts ADD COLUMN tier text NOT NULL", None),
    ("ALTER TABLE accounts ADD COLUMN tier text NOT NULL DEFAULT 'free'", None),
    ("ALTER TABLE accounts ADD COLUMN seen_at timestamptz DEFAULT now()", None),
    ("ALTER TABLE accounts ADD COLUMN seen_at timestamptz DEFAULT CURRENT_TIMESTAMP", None),
    ("ALTER TABLE accounts ADD COLUMN attrs jsonb DEFAULT '{}'", None),
    ("ALTER TABLE accounts ADD COLUMN tags text[] DEFAULT ARRAY[]::text[]", None),
    ("ALTER TABLE accounts ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp()", None),
    ("ALTER TABLE accounts ADD COLUMN public_id uuid DEFAULT gen_random_uuid()", None),
    ("ALTER TABLE accounts ADD COLUMN weight float8 DEFAULT random()", None),
    ("ALTER TABLE accounts ADD COLUMN seq bigserial", None),
    ("ALTER TABLE accounts ADD COLUMN num int GENERATED ALWAYS AS IDENTITY", None),
    ("ALTER TABLE accounts ADD COLUMN double_score int GENERATED ALWAYS AS (score * 2) STORED", None),
    ("ALTER TABLE accounts ADD COLUMN rating positive_int DEFAULT 1", None),
    ("ALTER TABLE accounts ADD COLUMN qty int CHECK (qty > 0)", None),
    ("ALTER TABLE accounts ADD COLUMN code text UNIQUE", None),
    ("ALTER TABLE accounts ADD COLUMN plan_id bigint REFERENCES plans (id)", None),
    ("ALTER TABLE accounts ADD COLUMN plan_id bigint DEFAULT 1 REFERENCES plans (id)", None),
    ("ALTER TABLE accounts ADD COLUMN a int, ADD COLUMN b int CHECK (b > 0)", None),
    ("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL", None),
    ("ALTER TABLE accounts ALTER COLUMN id SET NOT NULL", None),
    ("ALTER TABLE accounts ALTER COLUMN plan DROP NOT NULL", None),
    ("ALTER TABLE accounts ALTER COLUMN plan SET DEFAULT 'free'", None),
    ("ALTER TABLE accounts ALTER COLUMN plan SET STATISTICS 500", None),
    ("ALTER TABLE accounts ALTER COLUMN email TYPE varchar(200)", None),
    ("ALTER TABLE accounts ALTER COLUMN email TYPE text", None),
    ("ALTER TABLE accounts ALTER COLUMN email TYPE varchar(50)", None),
    ("ALTER TABLE accounts ALTER COLUMN note TYPE varchar", None),
    ("ALTER TABLE accounts ALTER COLUMN score TYPE bigint", None),
    ("ALTER TABLE accounts ALTER COLUMN plan TYPE text USING upper(plan)", None),
    ("ALTER TABLE accounts ALTER COLUMN created_at TYPE timestamptz", None),
    ("ALTER TABLE accounts ADD CONSTRAINT score_pos CHECK (score > 0)", None),
    ("ALTER TABLE accounts ADD CONSTRAINT score_pos CHECK (score > 0) NOT VALID", None),
    ("ALTER TABLE accounts VALIDATE CONSTRAINT score_check", None),
    ("ALTER TABLE accounts DROP CONSTRAINT score_check", None),
    ("ALTER TABLE accounts ADD CONSTRAINT parent_fk FOREIGN KEY (parent_id) REFERENCES accounts (id)", None),
    ("ALTER TABLE accounts ADD CONSTRAINT parent_fk FOREIGN KEY (parent_id) REFERENCES accounts (id) NOT VALID", None),
    ("ALTER TABLE accounts ADD CONSTRAINT email_uq UNIQUE (email)", None),
    ("ALTER TABLE accounts ADD CONSTRAINT email_uq UNIQUE USING INDEX accounts_email_uidx", None),
    ("ALTER TABLE legacy ADD PRIMARY KEY (id)", None),
    ("ALTER TABLE accounts ADD CONSTRAINT one_plan EXCLUDE USING btree (plan WITH =)", None),
    ("ALTER TABLE accounts DROP COLUMN note", None),
    ("DROP TABLE legacy", None),
    ("DROP TABLE empty_log", None),
    ("ALTER TABLE accounts RENAME COLUMN email TO email_address", None),
    ("ALTER TABLE accounts RENAME TO users", None),
    ("ALTER VIEW active_accounts RENAME TO current_accounts", None),
    ("ALTER MATERIALIZED VIEW plan_counts RENAME TO plan_totals", None),
    ("ALTER TABLE accounts SET UNLOGGED", None),
    ("ALTER TABLE accounts SET ACCESS METHOD heap", None),
    ("ALTER TABLE accounts SET ACCESS METHOD heap2", None),
    ("ALTER TABLE accounts SET TABLESPACE pg_default", None),
    ("ALTER TABLE accounts SET LOGGED", None),
    ("ALTER TABLE accounts ADD COLUMN IF NOT EXISTS plan text DEFAULT md5(random()::text)", None),
    ("ALTER TABLE accounts SET SCHEMA archive", None),
    ("ALTER TABLE events ATTACH PARTITION events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')", None),
    ("CREATE TABLE events_default PARTITION OF events DEFAULT", None),
    ("ALTER DOMAIN email_address ADD CONSTRAINT has_at CHECK (VALUE LIKE '%@%')", None),
    ("ALTER DOMAIN email_address ADD CONSTRAINT has_at CHECK (VALUE LIKE '%@%') NOT VALID", None),
    ("ALTER TABLE accounts SET (fillfactor = 90)", None),
    ("ALTER TABLE accounts SET (autovacuum_vacuum_scale_factor = 0.01)", None),
    ("ALTER TABLE accounts SET (user_catalog_table = true)", None),
    ("ALTER TABLE accounts ENABLE ROW LEVEL SECURITY", None),
    ("REFRESH MATERIALIZED VIEW plan_counts", None),
    ("REFRESH MATERIALIZED VIEW CONCURRENTLY plan_counts", None),
    ("ALTER TABLE events DETACH PARTITION events_2025", None),
    ("ALTER TABLE events DETACH PARTITION events_2025 CONCURRENTLY",
     "ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"),
    ("CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id))", None),
    ("CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch()", None),
    ("CREATE VIEW pro_accounts AS SELECT * FROM accounts WHERE plan = 'pro'", None),
    ("COMMENT ON TABLE accounts IS 'customer accounts'", None),
    ("GRANT SELECT ON accounts TO PUBLIC", None),
    # Statements whose verdict depends on the version.
    ("REINDEX TABLE accounts", None),
    ("REINDEX TABLE CONCURRENTLY accounts", "SELECT 1"),
    ("ALTER TABLE accounts ADD COLUMN score2 int GENERATED ALWAYS AS (score * 2) STORED", None),
    ("ALTER TABLE accounts ADD COLUMN score3 int GENERATED ALWAYS AS (score * 3)", None),
    ("ALTER TABLE accounts ADD CONSTRAINT email_not_null NOT NULL email NOT VALID", None),
    ("ALTER TABLE accounts ADD CONSTRAINT email_not_null NOT NULL email", None),
]


def connect(db):
    return psycopg.connect(host=os.environ["PGHOST"], port=os.environ["PGPORT"], user="postgres", dbname=db,
                           autocommit=True, options="-c TimeZone=UTC")


def judged(db, stmt, cleanup):
    """What migrate_guard.check() says of the statement run the way run() runs it: (verdict, rule)."""
    script = f"{stmt};" if cleanup is not None else f"BEGIN;\n{stmt};\nROLLBACK;"
    target = 1 if cleanup is not None else 2
    with connect(db) as conn:
        rows = conn.execute("SELECT rule, verdict, sqlstate, message FROM migrate_guard.check(%s) "
                            "WHERE statement_no = %s", (script, target)).fetchall()
    blocked = [r for r in rows if r[1] == "block"]
    errors = [r for r in rows if r[1] == "error"]
    if blocked:
        return "blocked", blocked[0][0]
    if errors:
        return f"error {errors[0][2]}: {errors[0][3]}", ""
    return "runs", ""


def run(db, stmt, cleanup):
    """Run one statement; return (verdict, rule, safety net set?)."""
    notices = []
    with connect(db) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        try:
            if cleanup is None:
                with conn.transaction(force_rollback=True):
                    conn.execute(stmt)
            else:
                conn.execute(stmt)
            verdict, rule = "runs", ""
        except psycopg.Error as e:
            diag = e.diag
            if diag.sqlstate == "MG001":
                verdict, rule = "blocked", re.match(r"migrate_guard: ([a-z-]+):", diag.message_primary).group(1)
            else:
                verdict, rule = f"error {diag.sqlstate}: {diag.message_primary}", ""
        if cleanup is not None and verdict == "runs":
            conn.execute("SET migrate_guard.mode = off")
            conn.execute(cleanup)
    net = any("lock_timeout set to" in n for n in notices)
    return verdict, rule, net


BASE = 15  # the version whose outcomes the table's main columns show


def outcome_text(verdict, rule, net):
    """Compact form of an outcome for the per-version column: `runs`, `blocked rule`, `error 42601`."""
    if verdict.startswith("error "):
        return verdict.split(":")[0]
    text = f"{verdict} `{rule}`" if rule else verdict
    return text + (", lock_timeout set" if net else "")


def row(i, stmt, verdict, rule, net, notes):
    rule_cell = f"`{rule}`" if rule else ""
    return f"| {i} | `{stmt}` | {verdict} | {rule_cell} | {'yes' if net else ''} | {notes} |"


def parse_rows(text):
    """statement -> (verdict, rule, net, {version: outcome text}) of the README's table."""
    out = {}
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) < 6:
            cells += [""] * (6 - len(cells))
        stmt = cells[1].strip("`")
        notes = {}
        for part in filter(None, (p.strip() for p in cells[5].split(";"))):
            version, _, what = part.partition(": ")
            notes[int(version)] = what
        out[stmt] = (cells[2], cells[3].strip("`"), cells[4] == "yes", notes)
    return out


HEADER = ["| # | Statement (on the populated fixture) | Verdict | Rule | lock_timeout set | Other versions |",
          "|---|---|---|---|---|---|"]


def main():
    readme_path, write = sys.argv[1], "--write" in sys.argv
    db = "mg_verdicts"
    with connect("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
        # The README's recommended set-up: every session loads the library, so that the utility
        # hook sees REINDEX (before 17), CLUSTER and VACUUM FULL from the first statement on.
        conn.execute(f"ALTER DATABASE {db} SET session_preload_libraries = 'migrate_guard'")
        major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    with connect(db) as conn:
        conn.execute("CREATE EXTENSION migrate_guard")
        with conn.transaction():
            conn.execute(FIXTURE)
    # check() first, on the same state: the statements run are rolled back or cleaned up.
    judgements = [judged(db, stmt, cleanup) for stmt, cleanup in CASES]
    outcomes = [run(db, stmt, cleanup) for stmt, cleanup in CASES]
    with connect("postgres") as conn:
        conn.execute(f"DROP DATABASE {db} WITH (FORCE)")
    readme = open(readme_path).read()
    begin, end = "<!-- verdicts:begin -->\n", "<!-- verdicts:end -->"
    current = readme[readme.index(begin) + len(begin):readme.index(end)]
    documented = parse_rows(current)

    rows, wrong = list(HEADER), []
    for i, ((stmt, _), (verdict, rule, net)) in enumerate(zip(CASES, outcomes), 1):
        base = documented.get(stmt, ("", "", False, {}))
        notes = dict(base[3])
        if major == BASE:
            if (verdict, rule, net) != base[:3]:
                wrong.append(f"#{i} {stmt}: documented {base[:3]}, behaves {(verdict, rule, net)}")
            cells = (verdict, rule, net)
        else:
            got = outcome_text(verdict, rule, net)
            same_as_base = (verdict, rule, net) == base[:3]
            expected = notes.get(major)
            if (expected is None and not same_as_base) or (expected is not None and expected != got):
                wrong.append(f"#{i} {stmt}: documented for {major}: {expected or outcome_text(*base[:3])}, behaves: {got}")
            if same_as_base:
                notes.pop(major, None)
            else:
                notes[major] = got
            cells = base[:3]
        note_text = "; ".join(f"{v}: {notes[v]}" for v in sorted(notes))
        rows.append(row(i, stmt, *cells, note_text))
    generated = "\n".join(rows) + "\n"

    if write:
        open(readme_path, "w").write(readme.replace(begin + current + end, begin + generated + end))
        print(f"wrote {len(CASES)} verdicts of PostgreSQL {major} into {readme_path}")
        return 0
    if wrong or current != generated:
        print("\n".join("  " + w for w in wrong))
        print(f"  FAIL  the README verdict table differs from what the guard does on PostgreSQL {major} "
              f"(rewrite it with: make verdicts PG={major})")
        return 1
    print(f"  ok    all {len(CASES)} statements of the README verdict table behave as documented on PostgreSQL {major}")
    # check() must give the verdict running the statement gives; PostgreSQL's own errors it may
    # not model (it then says the statement runs).
    disagree = []
    for (stmt, _), (verdict, rule, _), (c_verdict, c_rule) in zip(CASES, outcomes, judgements):
        same = (c_verdict, c_rule) == (verdict, rule) or (
            verdict.startswith("error ") and c_verdict == "runs")
        if verdict.startswith("error ") and c_verdict.startswith("error "):
            same = verdict.split(":")[0] == c_verdict.split(":")[0]
        if not same:
            disagree.append(f"  {stmt}: runs as {verdict} {rule}, check() says {c_verdict} {c_rule}")
    if disagree:
        print("\n".join(disagree))
        print(f"  FAIL  check() disagrees with execution on {len(disagree)} statements of the verdict table")
        return 1
    print(f"  ok    check() gives the same verdict as execution for all {len(CASES)} statements of the table")
    # A statement PostgreSQL itself refuses belongs in the table only where another version runs it.
    refused_everywhere = [stmt for (stmt, _), (verdict, _, _) in zip(CASES, outcomes)
                          if major == BASE and verdict.startswith("error ")
                          and all(n.startswith("error ") for n in documented.get(stmt, ("", "", False, {}))[3].values())]
    if refused_everywhere:
        print("  FAIL  statements that fail for another reason on every version have no place in the table:\n"
              + "\n".join(refused_everywhere))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
