#!/usr/bin/env python3
"""check() against PostgreSQL's own regression suite, statement by statement.

pg_regress_suite.sh runs the suite's schedule one line (one group of tests) at a time in a guarded
database in warn mode, and before each group calls migrate_guard.check() on the SQL file of every
test in it, on the same database state. This script compares what check() predicted with the
warnings the live run then gave:

  * live warnings: every "WARNING:  migrate_guard: <rule>: ..." line of the test's result file,
    placed on the line of the SQL file that psql had echoed last before it (the result file is
    psql's echo of the file with the output in between: the two are aligned with difflib);
  * check() findings: its rows with verdict warn or block, each with its statement's first and
    last line.

A live warning is predicted when a check() finding of the same rule spans its line (each finding
predicts one warning). Prints the figures, the files that disagree most, and fails when the share
of live warnings predicted is below MIN_PERCENT.

A check() finding no live warning matches is explained when its statement failed live (an ERROR in
the result file where a warning would be: PostgreSQL refused it before the guard judged it), or
when the live run never reached it (the result echoes the file only up to an earlier line).
The rest are unexplained; the script fails when there are more than MAX_UNEXPLAINED.

Usage: regress_check.py TESTS_FILE SQL_DIR[:SQL_DIR...] RESULTS_DIR PREDICTIONS_DIR MIN_PERCENT MAX_UNEXPLAINED [REPORT]
TESTS_FILE lists the tests in schedule order; PREDICTIONS_DIR/<test>.tsv holds check()'s rows as
tab-separated statement_no, line, end_line, rule, verdict (a missing file: check() failed on it).
"""
import difflib
import os
import re
import sys
from collections import Counter

WARNING = re.compile(r"^WARNING:  migrate_guard: ([a-z-]+): ")
# An error the live run gave (a statement PostgreSQL refused: it never reached the guard's
# verdict, so a check() finding on it has no live warning to match).
ERROR = re.compile(r"^(ERROR):  ")
# psql writes its echo to stdout and the server's warnings to stderr, both into the result file:
# a warning can come out a line or two before the echo of its own statement's last lines.
SLACK = 2


def read_lines(path):
    with open(path, errors="replace") as f:
        return f.read().splitlines()


def live_warnings(sql, result, pattern=WARNING):
    """[(lo, hi, rule)]: each guard WARNING (or other line `pattern` matches) of the result file, with the 1-based lines of the SQL
    file its statement can end on: from the line psql had echoed last before it to the line
    before the next line it echoed after it, and SLACK lines more."""
    # Blank lines (and lines of dashes) are left out of the alignment: psql does not echo all of
    # them, and the output has blank lines of its own that would pair with the wrong ones.
    def kept(lines):
        return [i for i, l in enumerate(lines) if l.strip() and l.strip().strip("-")]
    sql_kept, result_kept = kept(sql), kept(result)
    matcher = difflib.SequenceMatcher(None, [sql[i].rstrip() for i in sql_kept],
                                      [result[i].rstrip() for i in result_kept], autojunk=False)
    echoed = {}  # result index -> sql index
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            echoed[result_kept[block.b + k]] = sql_kept[block.a + k]
    if pattern is None:
        # The last line of the SQL file the result echoes (1-based).
        return max(echoed.values(), default=-1) + 1
    pending, out, last = [], [], 0
    for r, line in enumerate(result):
        if r in echoed:
            for rule in pending:
                out.append((last, max(last, echoed[r]) + SLACK, rule))
            pending, last = [], echoed[r] + 1
            continue
        m = pattern.match(line)
        if m:
            pending.append(m.group(1))
    out.extend((last, max(last, len(sql)), rule) for rule in pending)
    return out


def predictions(path):
    """[(first line, last line, rule)] of check()'s warn and block rows; None if check() failed."""
    if not os.path.exists(path):
        return None
    out = []
    for line in read_lines(path):
        cells = line.split("\t")
        if len(cells) < 5 or cells[4] not in ("warn", "block") or not cells[3]:
            continue
        out.append((int(cells[1]), int(cells[2]), cells[3]))
    return out


def spans(f, lo, hi):
    """A check() finding f (first, last, rule) is on the statement a live line placed at lo..hi
    belongs to (as compare() matches them)."""
    return f[0] <= min(hi, lo + SLACK) and f[1] >= lo


def compare(live, found):
    """(predicted, live only [(line, rule)], check() only [(first, last, rule)])."""
    left = list(found)
    missed = []
    for lo, hi, rule in live:
        near = [f for f in left if f[2] == rule and spans(f, lo, hi)]
        hit = min(near, key=lambda f: abs(f[1] - lo), default=None)
        if hit is None:
            missed.append((lo, rule))
        else:
            left.remove(hit)
    return len(live) - len(missed), missed, left


def main():
    tests_file, sql_dirs, results, preds, min_percent, max_unexplained = sys.argv[1:7]
    report_path = sys.argv[7] if len(sys.argv) > 7 else None
    tests = [t for t in read_lines(tests_file) if t.strip()]
    total_live = total_predicted = total_only = total_failed_live = total_not_run = 0
    files = agree = 0
    not_compared, failed = [], []
    rows = []
    missed_rules, only_rules = Counter(), Counter()
    for test in tests:
        sql_path = next((p for p in (os.path.join(d, test + ".sql") for d in sql_dirs.split(":")) if os.path.exists(p)), None)
        result_path = os.path.join(results, test + ".out")
        found = predictions(os.path.join(preds, test + ".tsv"))
        if sql_path is None or not os.path.exists(result_path):
            not_compared.append(test)
            continue
        if found is None:
            # check() failed on the file: every live warning of it counts as missed.
            failed.append(test)
            found = []
        live = live_warnings(read_lines(sql_path), read_lines(result_path))
        predicted, missed, only = compare(live, found)
        # check()'s findings on statements that failed live are explained: PostgreSQL refused the
        # statement (a privilege, a data-dependent error, an object another session's state
        # decides) before the guard judged it. The others are listed as unexplained.
        errors = live_warnings(read_lines(sql_path), read_lines(result_path), ERROR)
        failed_live = [f for f in only if any(spans(f, lo, hi) for lo, hi, _ in errors)]
        only = [f for f in only if f not in failed_live]
        total_failed_live += len(failed_live)
        # And those on statements the live run never reached: psql stopped reading the file
        # (these files also differ from PostgreSQL's expected output in the unguarded run).
        last = live_warnings(read_lines(sql_path), read_lines(result_path), None)
        not_run = [f for f in only if f[0] > last + SLACK]
        only = [f for f in only if f not in not_run]
        total_not_run += len(not_run)
        files += 1
        agree += not missed and not only
        total_live += len(live)
        total_predicted += predicted
        total_only += len(only)
        missed_rules.update(r for _, r in missed)
        only_rules.update(r for _, _, r in only)
        if missed or only:
            rows.append((len(missed) + len(only), test, missed, only))
    percent = 100.0 * total_predicted / total_live if total_live else 0.0
    summary = (f"check() predicted {total_predicted} of {total_live} live warnings ({percent:.1f} %); "
               f"{agree} of {files} files agree exactly; {total_only + total_failed_live + total_not_run} findings "
               f"are check()'s alone: {total_failed_live} on statements that failed live, {total_not_run} on "
               f"statements the live run did not reach, {total_only} unexplained")
    rows.sort(key=lambda r: (-r[0], r[1]))
    lines = [summary,
             "missed, by rule: " + ", ".join(f"{r} {n}" for r, n in missed_rules.most_common()),
             "check()'s alone (unexplained), by rule: " + ", ".join(f"{r} {n}" for r, n in only_rules.most_common())]
    if failed:
        lines.append("check() failed on (their live warnings count as missed): " + ", ".join(failed))
    if not_compared:
        lines.append("not compared (no SQL file, result or check() output): " + ", ".join(not_compared))
    for _, test, missed, only in rows:
        lines.append(f"{test}: missed {', '.join(f'{r}@{l}' for l, r in missed) or '-'}; "
                     f"check() alone {', '.join(f'{r}@{a}-{b}' for a, b, r in only) or '-'}")
    if report_path:
        with open(report_path, "w") as f:
            f.write("\n".join(lines) + "\n")
    for line in lines[:3]:
        print("        " + line)
    for line in lines[3:13]:
        print("          " + line)
    if files < 0.9 * len(tests):
        print(f"  FAIL  check() against the regression suite: only {files} of {len(tests)} tests compared")
        return 1
    if percent < float(min_percent):
        print(f"  FAIL  check() against the regression suite: {percent:.1f} % of live warnings predicted, "
              f"below the threshold of {min_percent} %")
        return 1
    if total_only > int(max_unexplained):
        print(f"  FAIL  check() against the regression suite: {total_only} unexplained check()-only findings, "
              f"more than the limit of {max_unexplained}")
        return 1
    print(f"  ok    check() against the regression suite: {summary} (threshold {min_percent} %, "
          f"at most {max_unexplained} unexplained)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
