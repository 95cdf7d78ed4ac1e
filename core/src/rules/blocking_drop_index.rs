//! `blocking-drop-index`: `DROP INDEX` without `CONCURRENTLY` needs an ACCESS EXCLUSIVE lock on the
//! index's table. The drop itself is quick, but the lock request waits for every running query
//! on the table and every later query queues behind it, so it applies whatever the table size.

use super::{Finding, RuleId};
use crate::facts::Facts;
use crate::model::{Command, ObjectKind, Statement};
use crate::sqltext::insert_after_words;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Drop(d) = &stmt.command else { return };
    if d.kind != ObjectKind::Index || d.concurrent {
        return;
    }
    // Judge by the first index whose table other sessions use; one finding per statement.
    let Some((index, table)) = d
        .objects
        .iter()
        .filter_map(|i| facts.index_table(i).map(|t| (i, t)))
        .find(|(_, t)| t.existing())
    else {
        return;
    };
    let safe_sql = if d.objects.len() == 1 && !d.cascade {
        stmt.text
            .as_deref()
            .and_then(|t| insert_after_words(t, &["INDEX"], "CONCURRENTLY"))
            .map(|s| format!("{s};"))
            .unwrap_or_else(|| format!("DROP INDEX CONCURRENTLY {index};"))
    } else {
        // DROP INDEX CONCURRENTLY takes one index and no CASCADE.
        d.objects
            .iter()
            .map(|i| format!("DROP INDEX CONCURRENTLY {i};"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let table = facts.with_storage(table);
    out.push(Finding {
        unused: None,
        rule: RuleId::BlockingDropIndex,
        message: format!(
            "DROP INDEX would block all reads and writes of {} {}",
            table.kind.noun(),
            table.display
        ),
        detail: format!(
            "DROP INDEX without CONCURRENTLY needs an ACCESS EXCLUSIVE lock on {}: it waits for every \
             running query on it, and every query that arrives meanwhile queues behind it.",
            table.described()
        ),
        safe_way: format!("Drop it without blocking, outside a transaction block: {safe_sql}"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn drop_index(objects: &[&str], concurrent: bool, text: &str) -> Statement {
        stmt(
            "DROP INDEX",
            text,
            Command::Drop(Drop {
                kind: ObjectKind::Index,
                objects: objects.iter().map(|o| rel(o)).collect(),
                concurrent,
                cascade: false,
            }),
        )
    }

    fn run(s: &Statement, f: &FakeFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        check(s, f, &mut out);
        out
    }

    #[test]
    fn blocks_on_existing_table_even_when_empty() {
        let mut t = FakeFacts::table("t");
        t.set_empty();
        let f = FakeFacts::default().with("t", t).with_index("i", "t");
        let got = run(&drop_index(&["i"], false, "DROP INDEX IF EXISTS i"), &f);
        assert_eq!(got.len(), 1);
        assert!(got[0].detail.contains("table public.t (0 bytes)"), "{}", got[0].detail);
        assert!(
            got[0].safe_way.ends_with("DROP INDEX CONCURRENTLY IF EXISTS i;"),
            "{}",
            got[0].safe_way
        );
    }

    #[test]
    fn several_indexes_get_one_statement_each() {
        let f = FakeFacts::default()
            .with("t", FakeFacts::table("t"))
            .with_index("i", "t")
            .with_index("j", "t");
        let got = run(&drop_index(&["i", "j"], false, "DROP INDEX i, j"), &f);
        assert!(
            got[0]
                .safe_way
                .contains("DROP INDEX CONCURRENTLY i; DROP INDEX CONCURRENTLY j;")
        );
    }

    #[test]
    fn passes_concurrently_new_temp_and_missing() {
        let mut n = FakeFacts::table("n");
        n.new_in_xact = true;
        let mut tmp = FakeFacts::table("tmp");
        tmp.temp = true;
        let f = FakeFacts::default()
            .with("t", FakeFacts::table("t"))
            .with("n", n)
            .with("tmp", tmp)
            .with_index("i", "t")
            .with_index("ni", "n")
            .with_index("ti", "tmp");
        assert!(run(&drop_index(&["i"], true, ""), &f).is_empty());
        assert!(run(&drop_index(&["ni"], false, ""), &f).is_empty());
        assert!(run(&drop_index(&["ti"], false, ""), &f).is_empty());
        assert!(run(&drop_index(&["nope"], false, ""), &f).is_empty());
    }
}
