//! `large-update`: an UPDATE or DELETE whose plan estimates more than `migrate_guard.max_rows`
//! rows, run inside a registered migration or in a transaction that has run DDL.
//!
//! Not a DDL rule: the executor hook (the extension's `dml` module) and `check()` call [`check`] with what
//! they know of the statement. Every row the statement changes stays locked until the
//! transaction commits, so writers of those rows wait for the whole statement, replicas replay
//! it as one long transaction, and a failure near the end throws all of it away.

use super::{Finding, RuleId, backfill_call};
use crate::sqltext::{Piece, lex};

/// A data-changing statement as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataChange<'a> {
    /// `UPDATE`, `DELETE`, `MERGE` or `INSERT`.
    pub op: &'a str,
    /// Schema-qualified name of the table it changes.
    pub table: &'a str,
    /// The planner's estimate of the rows it changes.
    pub estimate: i64,
    /// Where the estimate comes from, when it is not the planner's estimate of this very
    /// statement (`check()` on a statement it cannot plan).
    pub estimate_note: Option<&'a str>,
    /// The statement's own text, for the hint.
    pub text: Option<&'a str>,
}

/// Why the statement is judged at all.
#[derive(Debug, Clone, PartialEq)]
pub enum Context {
    /// Inside the registered migration of this name.
    Migration(String),
    /// In a transaction that has run this DDL statement (its command tag).
    DdlTransaction(String),
}

/// Whether `op` changes rows that already exist (the statements this rule is about).
pub fn changes_existing_rows(op: &str) -> bool {
    matches!(op, "UPDATE" | "DELETE" | "MERGE")
}

pub fn check(change: &DataChange, context: Option<&Context>, max_rows: i64, out: &mut Vec<Finding>) {
    let Some(context) = context else { return };
    if max_rows <= 0 || !changes_existing_rows(change.op) || change.estimate <= max_rows {
        return;
    }
    let verb = if change.op == "DELETE" { "delete" } else { "change" };
    let place = match context {
        Context::Migration(name) => format!("inside migration \"{name}\""),
        Context::DdlTransaction(tag) => format!("in a transaction that has run {tag}"),
    };
    out.push(Finding {
        unused: None,
        rule: RuleId::LargeUpdate,
        message: format!(
            "{} would {verb} about {} rows of table {} in one transaction",
            change.op, change.estimate, change.table
        ),
        detail: format!(
            "{} (migrate_guard.max_rows is {max_rows}), {place}. Every row it changes stays locked until the \
             transaction commits: writers of those rows wait for the whole statement, replicas fall behind while \
             they replay it, and a failure near the end throws all the work away.",
            estimate_words(change),
        ),
        safe_way: batches(change, max_rows),
    });
}

/// `The planner estimates 20000 rows`, or the same with where the estimate comes from.
pub(crate) fn estimate_words(change: &DataChange) -> String {
    match change.estimate_note {
        Some(note) => format!("About {} rows ({note})", change.estimate),
        None => format!("The planner estimates {} rows", change.estimate),
    }
}

/// The safe way: committed batches, with the `migrate_guard.backfill` call for this very UPDATE
/// when its text allows one.
pub(crate) fn batches(change: &DataChange, max_rows: i64) -> String {
    if let Some((set, filter)) = change.text.and_then(backfill_clauses) {
        return format!(
            "Change the rows in batches that commit one by one, in a migration step of its own that runs outside \
             a transaction block: {};",
            backfill_call(change.table, &set, &filter)
        );
    }
    match change.op {
        "DELETE" => format!(
            "Delete in batches of at most {max_rows} rows that commit one by one, in a migration step of its own \
             that runs outside a transaction block (for example DELETE ... WHERE id IN (SELECT id ... LIMIT \
             {max_rows}), repeated until it deletes nothing)."
        ),
        "INSERT" => format!(
            "Load the rows in batches of at most {max_rows} that commit one by one, in a migration step of its own \
             that runs outside a transaction block."
        ),
        _ => format!(
            "Change the rows in batches that commit one by one, in a migration step of its own that runs outside \
             a transaction block: for an UPDATE of one table, CALL migrate_guard.backfill('{}', '<set clause>', \
             '<where clause>') does it.",
            change.table.replace('\'', "''")
        ),
    }
}

/// `(set clause, filter)` of `migrate_guard.backfill` for an `UPDATE t SET … [WHERE …]` of one
/// table: the filter is the WHERE clause (if any) and the rows not yet holding the new values,
/// so that a resumed backfill skips what is done. `None` for anything else (an alias, FROM,
/// WITH, WHERE CURRENT OF, DEFAULT, a row set from a sub-SELECT): the backfill runs
/// `UPDATE <table> SET <set clause> WHERE <filter>` with nothing else around it.
pub fn backfill_clauses(text: &str) -> Option<(String, String)> {
    // Comments out of the way: a `--` comment would swallow what follows it on one line.
    let text = &crate::sqltext::compact(text);
    let pieces = lex(text);
    let words: Vec<(usize, usize, String)> = top_level(&pieces);
    let first = words.first().filter(|(s, _, w)| *s == 0 && w == "update")?;
    let kw = |name: &str| words.iter().find(|(_, _, w)| w == name).map(|(s, e, _)| (*s, *e));
    let (set_start, set_end) = kw("set")?;
    if kw("from").is_some() || kw("current").is_some() || !plain_table(&text[first.1..set_start]) {
        return None;
    }
    let ret = kw("returning").map(|(s, _)| s);
    let where_ = kw("where");
    let set_stop = where_.map(|(s, _)| s).or(ret).unwrap_or(text.len());
    let set = text.get(set_end..set_stop)?.trim();
    let filter = where_.and_then(|(_, e)| text.get(e..ret.unwrap_or(text.len())).map(str::trim));
    let mut targets = Vec::new();
    let mut values = Vec::new();
    for item in split_top(set, ",") {
        let parts = split_top(item, "=");
        if parts.len() < 2 {
            return None;
        }
        let target = parts[0].trim();
        let value = item[parts[0].len() + 1..].trim();
        let has_word = |w: &str| {
            lex(value)
                .iter()
                .any(|p| matches!(p, Piece::Word(x) if x.eq_ignore_ascii_case(w)))
        };
        if target.is_empty()
            || value.is_empty()
            || has_word("default")
            || (target.starts_with('(') && has_word("select"))
        {
            return None;
        }
        targets.push(target.to_owned());
        values.push(value.to_owned());
    }
    if targets.is_empty() {
        return None;
    }
    let changed = if targets.len() == 1 {
        format!("{} IS DISTINCT FROM {}", targets[0], grouped(&values[0]))
    } else {
        format!("({}) IS DISTINCT FROM ({})", targets.join(", "), values.join(", "))
    };
    let filter = match filter.filter(|f| !f.is_empty()) {
        Some(w) => format!("{} AND {changed}", grouped(w)),
        None => changed,
    };
    Some((set.to_owned(), filter))
}

/// `[ONLY] [schema.]table [*]`, and nothing else (no alias).
fn plain_table(text: &str) -> bool {
    let code: Vec<Piece> = lex(text)
        .into_iter()
        .filter(|p| !matches!(p, Piece::Space(_) | Piece::Comment(_)))
        .collect();
    let mut rest = code.as_slice();
    if let [Piece::Word(w), tail @ ..] = rest
        && w.eq_ignore_ascii_case("only")
        && !tail.is_empty()
    {
        rest = tail;
    }
    if let [head @ .., Piece::Other("*")] = rest {
        rest = head;
    }
    let name = |p: &Piece| matches!(p, Piece::Word(_) | Piece::QuotedIdent(_));
    match rest {
        [a] => name(a),
        [a, Piece::Other("."), b] => name(a) && name(b),
        _ => false,
    }
}

/// What `check()` can estimate of an UPDATE or DELETE.
#[derive(Debug, Clone, PartialEq)]
pub enum Selecting {
    /// `SELECT 1 FROM <target>[, <other tables>] [WHERE <condition>]`: the rows it changes, as a
    /// query the planner can estimate without touching them; `joined` when other tables take part.
    Query { sql: String, joined: bool },
    /// `WHERE CURRENT OF`: the cursor's current row.
    CurrentRow,
    /// Anything else (WITH, a statement this does not split).
    Unknown,
}

/// The rows an `UPDATE … SET … [FROM …] [WHERE …]` or a `DELETE FROM … [USING …] [WHERE …]`
/// changes, as far as `check()` can estimate them.
pub fn selecting_query(text: &str) -> Selecting {
    let text = &crate::sqltext::compact(text);
    let pieces = lex(text);
    let words = top_level(&pieces);
    let Some(first) = words.first().filter(|(s, _, _)| *s == 0) else {
        return Selecting::Unknown;
    };
    let kw = |name: &str, after: usize| {
        words
            .iter()
            .find(|(s, _, w)| w == name && *s >= after)
            .map(|(s, e, _)| (*s, *e))
    };
    if kw("current", 0).is_some() {
        return Selecting::CurrentRow;
    }
    let ret = kw("returning", 0).map_or(text.len(), |(s, _)| s);
    let parts = match first.2.as_str() {
        "update" => kw("set", first.1).map(|(set_start, set_end)| {
            let where_ = kw("where", set_end);
            let from = kw("from", set_end);
            let others = from.map(|(_, e)| &text[e..where_.map_or(ret, |(s, _)| s)]);
            (&text[first.1..set_start], others, where_.map(|(_, e)| &text[e..ret]))
        }),
        "delete" => kw("from", first.1).map(|(_, from_end)| {
            let where_ = kw("where", from_end);
            let using = kw("using", from_end);
            let stop = using.or(where_).map_or(ret, |(s, _)| s);
            let others = using.map(|(_, e)| &text[e..where_.map_or(ret, |(s, _)| s)]);
            (&text[from_end..stop], others, where_.map(|(_, e)| &text[e..ret]))
        }),
        _ => None,
    };
    let Some((target, others, condition)) = parts else {
        return Selecting::Unknown;
    };
    let mut sql = format!("SELECT 1 FROM {}", target.trim());
    let others = others.map(str::trim).filter(|o| !o.is_empty());
    if let Some(o) = others {
        sql.push_str(&format!(", {o}"));
    }
    if let Some(c) = condition.map(str::trim).filter(|c| !c.is_empty()) {
        sql.push_str(&format!(" WHERE {c}"));
    }
    Selecting::Query {
        sql,
        joined: others.is_some(),
    }
}

/// Top-level (outside parentheses) keywords of interest, lower-cased, with their byte span.
fn top_level(pieces: &[Piece]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let (mut at, mut depth) = (0usize, 0i32);
    for p in pieces {
        let len = p.text().len();
        match p {
            Piece::Other("(") | Piece::Other("[") => depth += 1,
            Piece::Other(")") | Piece::Other("]") => depth -= 1,
            Piece::Word(w) if depth == 0 => {
                let w = w.to_ascii_lowercase();
                if matches!(
                    w.as_str(),
                    "update" | "delete" | "set" | "from" | "using" | "where" | "returning" | "current" | "with"
                ) {
                    out.push((at, at + len, w));
                }
            }
            _ => {}
        }
        at += len;
    }
    out
}

/// `text` split at top-level occurrences of the one-character `sep` (not inside parentheses,
/// brackets, literals or comments; `=` only where it stands alone, not in `<=`, `>=`, `!=`).
fn split_top<'a>(text: &'a str, sep: &str) -> Vec<&'a str> {
    let pieces = lex(text);
    let mut out = Vec::new();
    let (mut at, mut depth, mut from) = (0usize, 0i32, 0usize);
    for (i, p) in pieces.iter().enumerate() {
        let len = p.text().len();
        match p {
            Piece::Other("(") | Piece::Other("[") => depth += 1,
            Piece::Other(")") | Piece::Other("]") => depth -= 1,
            Piece::Other(s) if depth == 0 && *s == sep => {
                let operator_char =
                    |q: Option<&Piece>| matches!(q, Some(Piece::Other(c)) if "<>!=:*/+-%^|&~#@?".contains(*c));
                let standalone = sep != "="
                    || !(operator_char(i.checked_sub(1).and_then(|j| pieces.get(j)))
                        || operator_char(pieces.get(i + 1)));
                if standalone {
                    out.push(&text[from..at]);
                    from = at + len;
                }
            }
            _ => {}
        }
        at += len;
    }
    out.push(&text[from..]);
    out
}

/// `expr` as an operand of `IS DISTINCT FROM` or `AND`: in parentheses unless it is a single
/// token or a function call.
fn grouped(expr: &str) -> String {
    let pieces: Vec<Piece> = lex(expr.trim())
        .into_iter()
        .filter(|p| !matches!(p, Piece::Comment(_)))
        .collect();
    let mut depth = 0i32;
    let mut spaced = false;
    for p in &pieces {
        match p {
            Piece::Other("(") => depth += 1,
            Piece::Other(")") => depth -= 1,
            Piece::Space(_) if depth == 0 => spaced = true,
            Piece::Other(o) if depth == 0 && !matches!(*o, "." | "(" | ")") => spaced = true,
            _ => {}
        }
    }
    if spaced {
        format!("({})", expr.trim())
    } else {
        expr.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change<'a>(op: &'a str, estimate: i64, text: Option<&'a str>) -> DataChange<'a> {
        DataChange {
            op,
            table: "public.users",
            estimate,
            estimate_note: None,
            text,
        }
    }

    #[test]
    fn fires_only_past_the_threshold_inside_a_migration_or_ddl_transaction() {
        let ctx = Context::Migration("0042_fill".into());
        let text = "UPDATE users SET normalized_email = lower(email)";
        let mut out = vec![];
        check(&change("UPDATE", 10_000, Some(text)), Some(&ctx), 10_000, &mut out);
        check(&change("UPDATE", 20_000, Some(text)), None, 10_000, &mut out);
        check(&change("INSERT", 20_000, Some(text)), Some(&ctx), 10_000, &mut out);
        check(&change("UPDATE", 20_000, Some(text)), Some(&ctx), 0, &mut out);
        assert!(out.is_empty());
        check(&change("UPDATE", 10_001, Some(text)), Some(&ctx), 10_000, &mut out);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.rule, RuleId::LargeUpdate);
        assert_eq!(
            f.message,
            "UPDATE would change about 10001 rows of table public.users in one transaction"
        );
        assert!(f.detail.starts_with(
            "The planner estimates 10001 rows (migrate_guard.max_rows is 10000), inside migration \"0042_fill\"."
        ));
        assert!(f.safe_way.ends_with(
            "CALL migrate_guard.backfill('public.users', 'normalized_email = lower(email)', \
             'normalized_email IS DISTINCT FROM lower(email)');"
        ));
        let mut out = vec![];
        check(
            &change("DELETE", 50_000, Some("DELETE FROM users")),
            Some(&Context::DdlTransaction("ALTER TABLE".into())),
            10_000,
            &mut out,
        );
        assert!(out[0].message.starts_with("DELETE would delete about 50000 rows"));
        assert!(out[0].detail.contains("in a transaction that has run ALTER TABLE."));
        assert!(out[0].safe_way.starts_with("Delete in batches of at most 10000 rows"));
    }

    #[test]
    fn the_rows_a_statement_changes_as_a_query() {
        let q = |t: &str| match selecting_query(t) {
            Selecting::Query { sql, joined } => Some((sql, joined)),
            _ => None,
        };
        assert_eq!(q("UPDATE users SET a = 1"), Some(("SELECT 1 FROM users".into(), false)));
        assert_eq!(
            q("-- c\nupdate ONLY public.users u set a = s.a from s where s.id = u.id returning u.id;"),
            Some(("SELECT 1 FROM ONLY public.users u, s WHERE s.id = u.id".into(), true))
        );
        assert_eq!(
            q("DELETE FROM users WHERE id IN (SELECT id FROM gone)"),
            Some(("SELECT 1 FROM users WHERE id IN (SELECT id FROM gone)".into(), false))
        );
        assert_eq!(
            q("DELETE FROM t USING s WHERE s.id = t.id"),
            Some(("SELECT 1 FROM t, s WHERE s.id = t.id".into(), true))
        );
        // A comment on a line of its own does not swallow the WHERE clause.
        assert_eq!(
            q("UPDATE t -- the table\nSET a = 1 -- all of it?\nWHERE b"),
            Some(("SELECT 1 FROM t WHERE b".into(), false))
        );
        assert_eq!(
            selecting_query("WITH x AS (SELECT 1) DELETE FROM t"),
            Selecting::Unknown
        );
        assert_eq!(
            selecting_query("UPDATE t SET a = 1 WHERE CURRENT OF c"),
            Selecting::CurrentRow
        );
        assert_eq!(selecting_query("INSERT INTO t VALUES (1)"), Selecting::Unknown);
    }

    #[test]
    fn backfill_clauses_of_an_update() {
        let b = |t: &str| backfill_clauses(t);
        assert_eq!(
            b("UPDATE users SET normalized_email = lower(email);"),
            Some((
                "normalized_email = lower(email)".into(),
                "normalized_email IS DISTINCT FROM lower(email)".into()
            ))
        );
        assert_eq!(
            b("/* x */ update ONLY public.users set a = a + 1, b = 'x, y' where a <= 10 OR b IS NULL returning *"),
            Some((
                "a = a + 1, b = 'x, y'".into(),
                "(a <= 10 OR b IS NULL) AND (a, b) IS DISTINCT FROM (a + 1, 'x, y')".into()
            ))
        );
        // The backfill's UPDATE has no alias to refer to.
        assert_eq!(b("UPDATE users u SET a = 1 WHERE u.b > 0"), None);
        assert_eq!(b("UPDATE users AS u SET a = 1"), None);
        // A `--` comment does not swallow the rest of the clause.
        assert_eq!(
            b("UPDATE t SET a = lower(b) -- keep it short\nWHERE c"),
            Some(("a = lower(b)".into(), "c AND a IS DISTINCT FROM lower(b)".into()))
        );
        assert_eq!(b("UPDATE t SET (a, b) = (SELECT x, y FROM s)"), None);
        assert_eq!(b("UPDATE t SET (a, b) = (DEFAULT, 1)"), None);
        assert_eq!(
            b("UPDATE \"My\".t SET (a, b) = (1, 2)"),
            Some(("(a, b) = (1, 2)".into(), "(a, b) IS DISTINCT FROM (1, 2)".into()))
        );
        assert_eq!(
            b("UPDATE t SET flag = (x > 1) WHERE id IN (SELECT id FROM s WHERE s.v = 1)"),
            Some((
                "flag = (x > 1)".into(),
                "(id IN (SELECT id FROM s WHERE s.v = 1)) AND flag IS DISTINCT FROM (x > 1)".into()
            ))
        );
        assert_eq!(
            b("UPDATE t SET ok = a AND b WHERE done"),
            Some(("ok = a AND b".into(), "done AND ok IS DISTINCT FROM (a AND b)".into()))
        );
        assert_eq!(b("UPDATE t SET a = s.a FROM s WHERE s.id = t.id"), None);
        assert_eq!(b("UPDATE t SET a = DEFAULT"), None);
        assert_eq!(b("UPDATE t SET a = 1 WHERE CURRENT OF c"), None);
        assert_eq!(b("WITH x AS (SELECT 1) UPDATE t SET a = 1"), None);
        assert_eq!(b("DELETE FROM t"), None);
    }
}
