#!/usr/bin/env python3
"""Compare two directories of pg_regress results, file by file, after removing migrate_guard's
own messages from the second: WARNING/NOTICE lines that start with "migrate_guard:" and the
DETAIL, HINT and CONTEXT lines (with CONTEXT's continuation lines) that belong to them.

Usage: regress_compare.py PLAIN_DIR GUARDED_DIR ALLOWED_FILE
ALLOWED_FILE lists result files that may differ, one per line as "name  # reason".
Prints the differences and exits 1 when a file not allowed to differ does.
"""
import difflib
import os
import re
import sys

GUARD = re.compile(r"^(WARNING|NOTICE):  migrate_guard: ")
TRAILER = re.compile(r"^(DETAIL|HINT|CONTEXT):  ")
# Lines of an error context stack after the first ("PL/pgSQL function f() line 3 at SQL statement").
CONTEXT_MORE = re.compile(r"^(PL/pgSQL function|SQL statement|SQL function|extension script|portal |COPY |parallel worker)")


def without_guard_messages(lines):
    out, skipping, in_context = [], False, False
    for line in lines:
        if GUARD.match(line):
            skipping, in_context = True, False
            continue
        if skipping and TRAILER.match(line):
            in_context = line.startswith("CONTEXT:")
            continue
        if skipping and in_context and CONTEXT_MORE.match(line):
            continue
        skipping = in_context = False
        out.append(line)
    return out


def allowed(path):
    names = {}
    with open(path) as f:
        for line in f:
            name, _, reason = line.partition("#")
            if name.strip():
                names[name.strip()] = reason.strip()
    return names


def main():
    plain, guarded, allowed_file = sys.argv[1:4]
    allow = allowed(allowed_file)
    files = sorted(f for f in os.listdir(plain) if f.endswith(".out"))
    missing = sorted(set(f for f in os.listdir(guarded) if f.endswith(".out")) ^ set(files))
    equal, differ, tolerated = 0, [], []
    for name in files:
        gpath = os.path.join(guarded, name)
        if not os.path.exists(gpath):
            continue
        with open(os.path.join(plain, name), errors="replace") as f:
            a = f.read().splitlines()
        with open(gpath, errors="replace") as f:
            b = without_guard_messages(f.read().splitlines())
        if a == b:
            equal += 1
            continue
        test = name[: -len(".out")]
        if test in allow:
            tolerated.append(test)
            continue
        differ.append(test)
        diff = list(difflib.unified_diff(a, b, "unguarded/" + name, "warn/" + name, lineterm="", n=2))
        print("\n".join(diff[:60]))
        if len(diff) > 60:
            print(f"... ({len(diff) - 60} more diff lines)")
    print(
        f"  {len(files)} result files: {equal} equal apart from migrate_guard's messages, "
        f"{len(tolerated)} allowed to differ ({', '.join(tolerated) or 'none'}), {len(differ)} differ"
        + (f" ({', '.join(differ)})" if differ else "")
    )
    unused = sorted(set(allow) - set(tolerated))
    if unused:
        print(f"  (allowed to differ but equal this time: {', '.join(unused)})")
    if missing:
        print(f"  result files in only one run: {', '.join(missing)}")
    return 1 if differ or missing else 0


if __name__ == "__main__":
    sys.exit(main())
