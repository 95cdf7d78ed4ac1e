#!/usr/bin/env python3
"""check() against execution, case by case: every statement of the guard's golden files is first
judged by migrate_guard.check() and then run, in the same session and state, and the two must
agree: the same rules blocked, the same rules warned about, and no block or error from check()
where the statement runs. Where PostgreSQL itself refuses a statement, check() must report the
same SQLSTATE or nothing (it models only some of PostgreSQL's errors, see the README).

Out of check()'s reach, counted and listed but not compared: statements that run DDL from inside
a function or DO block (check() sees the call, not the DDL), rewrites only the table_rewrite
backstop catches (it fires while the statement runs), ROLLBACK TO / RELEASE of a savepoint of the
running transaction (check() knows that transaction's DDL, locks and rows, not its savepoints),
and schema-and-data on an INSERT (check() does not estimate an INSERT's rows).

Usage: crosscheck.py FILE.sql...   (PGHOST, PGPORT select the server; a fresh database per file)
"""
import os
import re
import sys

import psycopg

ALSO = re.compile(r"([a-z]+(?:-[a-z]+)+) \(")
BACKSTOP = re.compile(r"migrate_guard: table-rewrite: \S+( \S+)* rewrites the whole .* \(because of ")


NOTICES = []


def connect(db, user="postgres"):
    conn = psycopg.connect(host=os.environ["PGHOST"], port=os.environ["PGPORT"], user=user, dbname=db,
                           autocommit=True, options="-c TimeZone=UTC")
    conn.add_notice_handler(lambda d: NOTICES.append(d.message_primary or ""))
    return conn


def statements(text):
    """(meta-command or None, statement text) in the order psql would handle them."""
    out, buf, i, n = [], [], 0, len(text)

    def flush():
        stmt = "".join(buf)
        buf.clear()
        # psql drops leading whitespace and -- comment lines, and keeps /* */ comments.
        stmt = re.sub(r"\A(?:\s+|--[^\n]*\n?)*", "", stmt).rstrip()
        if stmt:
            out.append((None, stmt))

    while i < n:
        c = text[i]
        if c == "\\":
            if text.startswith("\\;", i):
                flush()
                i += 2
                continue
            end = text.find("\n", i)
            end = n if end < 0 else end
            command = text[i:end].strip()
            if command.split()[0] in ("\\g", "\\gset"):
                flush()
            out.append((command, None))
            i = end + 1
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            buf.append(text[i:end])
            i = end
            continue
        if text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            buf.append(text[i:j])
            i = j
            continue
        if c in "'\"":
            escapes = c == "'" and i > 0 and text[i - 1] in "eE"
            j = i + 1
            while j < n:
                if escapes and text[j] == "\\":
                    j += 2
                    continue
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            buf.append(text[i:j + 1])
            i = j + 1
            continue
        m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:]) if c == "$" else None
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            tag = m.group(0)
            j = text.find(tag, i + len(tag))
            j = n if j < 0 else j + len(tag)
            buf.append(text[i:j])
            i = j
            continue
        if c == ";":
            flush()
            i += 1
            continue
        buf.append(c)
        i += 1
    flush()
    return out


def interpolate(stmt, variables):
    """psql's :name, :'name' and :"name" for the variables \\gset set."""
    def sub(m):
        quote, name = m.group(1) or "", m.group(2)
        if name not in variables:
            return m.group(0)
        value = str(variables[name])
        if quote == "'":
            return "'" + value.replace("'", "''") + "'"
        if quote == '"':
            return '"' + value.replace('"', '""') + '"'
        return value
    return re.sub(r"(?<!:):(['\"]?)([A-Za-z_][A-Za-z_0-9]*)\1", sub, stmt)


def judged(conn, stmt, in_block):
    """check()'s verdict: ({blocked rules}, {warned rules}, [error sqlstates])."""
    script = ("BEGIN;\n" if in_block else "") + stmt + ";"
    target = 2 if in_block else 1
    rows = conn.execute("SELECT statement_no, rule, verdict, sqlstate FROM migrate_guard.check(%s)",
                        (script,)).fetchall()
    rows = [r for r in rows if r[0] == target]
    return ({r[1] for r in rows if r[2] == "block"}, {r[1] for r in rows if r[2] == "warn"},
            [r[3] for r in rows if r[2] == "error"])


def executed(conn, stmt):
    """Running it: ({blocked rules}, {warned rules}, error sqlstate or None)."""
    NOTICES.clear()
    messages = []
    try:
        conn.execute(stmt, prepare=False)
        error, blocked = None, set()
    except psycopg.Error as e:
        diag = e.diag
        error, blocked = diag.sqlstate, set()
        if diag.sqlstate == "MG001":
            error = None
            messages.append(diag.message_primary)
            blocked = {re.match(r"migrate_guard: ([a-z-]+):", diag.message_primary).group(1)}
            also = (diag.message_detail or "").partition("The statement also breaks: ")[2]
            blocked |= set(ALSO.findall(also))
    warned = set()
    for w in NOTICES:
        if m := re.match(r"migrate_guard: ([a-z]+(?:-[a-z]+)+): ", w):
            warned.add(m.group(1))
            messages.append(w)
    # The table_rewrite backstop names the reason PostgreSQL gave ("... (because of ...)").
    backstop = bool(messages) and all(BACKSTOP.match(m) for m in messages)
    return blocked, warned, error, backstop


def crosscheck(path):
    db = "mg_crosscheck"
    with connect("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {db}")
    conn = connect(db)
    conn.execute("CREATE EXTENSION migrate_guard")
    compared = agreed = out_of_reach = not_modeled = 0
    wrong, notes = [], []
    variables, last = {}, None
    for meta, stmt in statements(open(path).read()):
        if meta is not None:
            parts = meta.split()
            if parts[0] in ("\\c", "\\connect"):
                user = parts[2] if len(parts) > 2 and parts[2] != "-" else "postgres"
                conn.close()
                conn = connect(db, user)
            elif parts[0] == "\\gset" and last is not None:
                cur = conn.execute(last)
                variables.update(zip([d.name for d in cur.description], cur.fetchone()))
            continue
        stmt = interpolate(stmt, variables)
        last = stmt
        status = conn.info.transaction_status
        if status == psycopg.pq.TransactionStatus.INERROR:
            executed(conn, stmt)
            continue
        in_block = status == psycopg.pq.TransactionStatus.INTRANS
        try:
            verdict = judged(conn, stmt, in_block)
        except psycopg.Error as e:
            wrong.append(f"{stmt[:90]}: check() itself failed: {e.diag.message_primary}")
            continue
        blocked, warned, error, backstop = executed(conn, stmt)
        compared += 1
        c_blocked, c_warned, c_errors = verdict
        # check() does not estimate the rows of an INSERT (see the README).
        if (re.match(r"\s*INSERT\b", stmt, re.I) and (blocked | warned) <= {"schema-and-data"}
                and (blocked or warned) and not (c_blocked or c_warned)):
            out_of_reach += 1
            notes.append(f"out of reach (the rows of an INSERT): {stmt[:80]}")
            continue
        # check() knows the running transaction's DDL, locks and rows, not its savepoints.
        if re.match(r"\s*(ROLLBACK\s+TO|RELEASE)\b", stmt, re.I) and not (blocked or warned) and error is None:
            out_of_reach += 1
            notes.append(f"out of reach (a savepoint of the running transaction): {stmt[:80]}")
            continue
        via_function = re.match(r"\s*(DO|CALL|SELECT)\b", stmt, re.I) is not None
        if (blocked or warned) and (via_function or backstop) and not (c_blocked or c_warned):
            out_of_reach += 1
            why = "table_rewrite backstop" if backstop else "DDL inside a function"
            notes.append(f"out of reach ({why}): {stmt[:80]}")
            continue
        if error is not None and not (c_blocked or c_warned):
            if error in c_errors:
                agreed += 1
            elif not c_errors:
                not_modeled += 1
                notes.append(f"not modeled: {error} from {stmt[:80]}")
            else:
                wrong.append(f"{stmt[:90]}: PostgreSQL refuses it ({error}), check() says {c_errors}")
            continue
        if (c_blocked, c_warned) == (blocked, warned) and not c_errors:
            agreed += 1
        else:
            wrong.append(f"{stmt[:90]}: runs with blocked={sorted(blocked)} warned={sorted(warned)}, "
                         f"check() says blocked={sorted(c_blocked)} warned={sorted(c_warned)} errors={c_errors}")
    conn.close()
    with connect("postgres") as admin:
        admin.execute(f"DROP DATABASE {db} WITH (FORCE)")
    return compared, agreed, out_of_reach, not_modeled, wrong, notes


def main():
    failures = 0
    totals = [0, 0, 0, 0]
    for path in sys.argv[1:]:
        compared, agreed, out_of_reach, not_modeled, wrong, notes = crosscheck(path)
        for k, v in enumerate((compared, agreed, out_of_reach, not_modeled)):
            totals[k] += v
        name = os.path.basename(path)
        if wrong:
            failures += len(wrong)
            print(f"  FAIL  {name}: check() and execution disagree on {len(wrong)} of {compared} statements")
            for w in wrong:
                print(f"        {w}")
        else:
            print(f"  ok    {name}: {agreed} of {compared} statements agree"
                  + (f", {out_of_reach} out of check()'s reach" if out_of_reach else "")
                  + (f", {not_modeled} refused by PostgreSQL for reasons check() does not model" if not_modeled else ""))
            for n in notes:
                print(f"          {n}")
    print(f"  {'ok  ' if not failures else 'FAIL'}  golden files: {totals[1]} of {totals[0]} statements agree, "
          f"{totals[2]} out of check()'s reach, {totals[3]} PostgreSQL errors not modeled, {failures} disagreements")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
