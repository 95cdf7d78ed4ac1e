//! `schema-and-data`: a large data change and a schema change's strong lock in one transaction.
//!
//! Django, Rails, dbmate and Flyway run each migration in one transaction. A strong lock that
//! a DDL statement takes on a table other sessions use (stronger than SHARE UPDATE EXCLUSIVE)
//! is held until that transaction commits, so a data change after it keeps the table locked
//! for its whole duration; a data change before it makes the lock wait come at the end of a
//! long transaction whose work is thrown away if the DDL fails or times out.
//!
//! Not a DDL rule for the first order: the executor hook (the extension's `dml` module) and `check()` call
//! [`during`] and [`before_ddl`] with what they know.

use super::large_update::{DataChange, batches, estimate_words};
use super::{Finding, RuleId};
use crate::model::LockMode;

/// A strong lock the transaction holds because of its DDL.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldLock {
    pub mode: LockMode,
    /// `table public.users`.
    pub relation: String,
    /// The command tag of the statement that took it, and its text as the client sent it.
    pub tag: String,
    pub text: String,
}

impl HeldLock {
    /// The lock `mode` on `relation` taken by statement `tag`. Its text is kept as the client
    /// sent it, and shortened only if a message quotes it (most are never quoted).
    pub fn new(mode: LockMode, relation: String, tag: &str, text: &str) -> HeldLock {
        HeldLock {
            mode,
            relation,
            tag: tag.to_owned(),
            text: text.to_owned(),
        }
    }

    /// The statement's text as a message quotes it: code only, at most 80 characters.
    fn quoted(&self) -> String {
        let text = crate::sqltext::compact(&self.text);
        if text.chars().count() > 80 {
            text.chars().take(77).collect::<String>() + "..."
        } else {
            text
        }
    }
}

/// Rows the transaction has changed so far, per table (schema-qualified name, rows).
pub type Changed = [(String, i64)];

fn total(changed: &Changed) -> i64 {
    changed.iter().map(|(_, n)| n).sum()
}

fn tables(changed: &Changed) -> String {
    let mut v: Vec<String> = changed
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    if v.len() > 5 {
        let more = v.len() - 5;
        v.truncate(5);
        v.push(format!("{more} more"));
    }
    v.join(", ")
}

fn took(held: &HeldLock) -> String {
    format!(
        "{} (\"{}\") took {} lock on {}, which is held until the transaction commits: {} on it wait for the \
         whole data change",
        held.tag,
        held.quoted(),
        held.mode.with_article(),
        held.relation,
        held.mode.blocks()
    )
}

/// A data change while the transaction holds `held`: an UPDATE or DELETE estimated past
/// `max_rows` by itself, or any change that brings the transaction's total past it.
/// `done` is `Some(rows)` once the statement has run (its actual rows, already in `changed`).
pub fn during(
    change: &DataChange,
    held: &HeldLock,
    changed: &Changed,
    done: Option<i64>,
    max_rows: i64,
    out: &mut Vec<Finding>,
) {
    if max_rows <= 0 {
        return;
    }
    let so_far = total(changed);
    let large = super::large_update::changes_existing_rows(change.op) && change.estimate > max_rows;
    let (message, measure) = match done {
        None if large => (
            format!(
                "{} of about {} rows of table {} while this transaction holds {} lock on {}",
                change.op,
                change.estimate,
                change.table,
                held.mode.with_article(),
                held.relation
            ),
            format!("{} (migrate_guard.max_rows is {max_rows})", estimate_words(change)),
        ),
        None if so_far + change.estimate > max_rows => (
            format!(
                "{} would bring this transaction's data changes to about {} rows while it holds {} lock on {}",
                change.op,
                so_far + change.estimate,
                held.mode.with_article(),
                held.relation
            ),
            format!(
                "The transaction has changed {so_far} rows so far ({}), and the planner estimates {} more for this \
                 {} (migrate_guard.max_rows is {max_rows})",
                if so_far > 0 { tables(changed) } else { "none".into() },
                change.estimate,
                change.op
            ),
        ),
        Some(rows) if so_far > max_rows => (
            format!(
                "{} brought this transaction's data changes to {so_far} rows while it holds {} lock on {}",
                change.op,
                held.mode.with_article(),
                held.relation
            ),
            format!(
                "This {} changed {rows} rows, the transaction {so_far} in all ({}; migrate_guard.max_rows is \
                 {max_rows})",
                change.op,
                tables(changed)
            ),
        ),
        _ => return,
    };
    out.push(Finding {
        unused: None,
        rule: RuleId::SchemaAndData,
        message,
        detail: format!("{measure}. {}.", took(held)),
        safe_way: format!(
            "Split schema and data: let the schema change commit in a migration of its own, and move the {} to the \
             next migration. {}",
            change.op,
            batches(change, max_rows)
        ),
    });
}

/// DDL `tag` that takes `mode` on `relation` after the transaction changed `changed` rows.
pub fn before_ddl(tag: &str, mode: LockMode, relation: &str, changed: &Changed, max_rows: i64, out: &mut Vec<Finding>) {
    let rows = total(changed);
    if max_rows <= 0 || rows <= max_rows || mode <= LockMode::ShareUpdateExclusive {
        return;
    }
    out.push(Finding {
        unused: None,
        rule: RuleId::SchemaAndData,
        message: format!(
            "{tag} would take {} lock on {relation} in a transaction that has changed {rows} rows",
            mode.with_article()
        ),
        detail: format!(
            "This transaction has already inserted, updated or deleted {rows} rows ({}; migrate_guard.max_rows is \
             {max_rows}). The lock would be held until it commits, along with the row locks of those changes, and \
             if {tag} fails or times out waiting for its lock, the whole data change is rolled back with it.",
            tables(changed)
        ),
        safe_way: format!(
            "Split schema and data: commit the data change in a migration of its own (in batches, with CALL \
             migrate_guard.backfill(...) for an UPDATE), and run {tag} in another."
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> HeldLock {
        HeldLock {
            mode: LockMode::AccessExclusive,
            relation: "table public.users".into(),
            tag: "ALTER TABLE".into(),
            text: "ALTER TABLE users ADD COLUMN n text".into(),
        }
    }

    fn update(estimate: i64) -> DataChange<'static> {
        DataChange {
            op: "UPDATE",
            table: "public.users",
            estimate,
            estimate_note: None,
            text: Some("UPDATE users SET n = lower(email)"),
        }
    }

    #[test]
    fn a_large_update_under_a_strong_lock() {
        let mut out = vec![];
        during(&update(10_000), &held(), &[], None, 10_000, &mut out);
        assert!(out.is_empty());
        during(&update(20_000), &held(), &[], None, 10_000, &mut out);
        let f = &out[0];
        assert_eq!(f.rule, RuleId::SchemaAndData);
        assert_eq!(
            f.message,
            "UPDATE of about 20000 rows of table public.users while this transaction holds an ACCESS EXCLUSIVE lock \
             on table public.users"
        );
        assert!(f.detail.starts_with(
            "The planner estimates 20000 rows (migrate_guard.max_rows is 10000). ALTER TABLE (\"ALTER TABLE users ADD \
             COLUMN n text\") took an ACCESS EXCLUSIVE lock on table public.users, which is held until the transaction commits: \
             all reads and writes on it wait for the whole data change."
        ));
        assert!(f.safe_way.contains("move the UPDATE to the next migration."));
        assert!(
            f.safe_way
                .contains("CALL migrate_guard.backfill('public.users', 'n = lower(email)'")
        );
    }

    #[test]
    fn small_changes_that_add_up() {
        let ins = DataChange {
            op: "INSERT",
            estimate: 1,
            text: None,
            ..update(1)
        };
        let mut out = vec![];
        let changed = [("public.users".to_owned(), 10_000i64)];
        during(&ins, &held(), &[], None, 10_000, &mut out);
        during(&ins, &held(), &changed[..], Some(1), 10_000, &mut out);
        assert!(out.is_empty());
        during(&ins, &held(), &changed[..], None, 10_000, &mut out);
        assert!(
            out[0]
                .message
                .starts_with("INSERT would bring this transaction's data changes to about 10001 rows")
        );
        let changed = [("public.users".to_owned(), 9_000i64), ("public.log".to_owned(), 3_000)];
        let mut out = vec![];
        during(&update(5), &held(), &changed[..], Some(5), 10_000, &mut out);
        assert!(
            out[0]
                .message
                .starts_with("UPDATE brought this transaction's data changes to 12000 rows")
        );
        assert!(out[0].detail.starts_with(
            "This UPDATE changed 5 rows, the transaction 12000 in all (public.users 9000, public.log 3000;"
        ));
    }

    #[test]
    fn ddl_after_a_large_change() {
        let changed = [("public.users".to_owned(), 20_000i64)];
        let mut out = vec![];
        before_ddl(
            "ALTER TABLE",
            LockMode::ShareUpdateExclusive,
            "table public.users",
            &changed[..],
            10_000,
            &mut out,
        );
        before_ddl(
            "ALTER TABLE",
            LockMode::AccessExclusive,
            "table public.users",
            &[],
            10_000,
            &mut out,
        );
        assert!(out.is_empty());
        before_ddl(
            "ALTER TABLE",
            LockMode::AccessExclusive,
            "table public.users",
            &changed[..],
            10_000,
            &mut out,
        );
        assert_eq!(
            out[0].message,
            "ALTER TABLE would take an ACCESS EXCLUSIVE lock on table public.users in a transaction that has changed \
             20000 rows"
        );
        assert!(
            out[0]
                .detail
                .contains("(public.users 20000; migrate_guard.max_rows is 10000)")
        );
    }
}
