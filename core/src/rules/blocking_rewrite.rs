//! `blocking-rewrite`: `CLUSTER` and `VACUUM FULL` write a new copy of each table (and of all its
//! indexes) under an ACCESS EXCLUSIVE lock held until the copy is done: every read and write of
//! the table waits meanwhile. Event triggers never see these commands; the utility hook does, in
//! every session that has loaded the library.

use super::{Finding, RuleId, listed, populated_target};
use crate::facts::Facts;
use crate::model::{Command, Statement};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Rewrite(r) = &stmt.command else {
        return;
    };
    let safe_way = match r.what {
        "CLUSTER" => {
            "Reorder the table without the lock: pg_repack --order-by (or pg_repack --table for the clustered \
             index's order) copies it online and swaps it in with a brief lock; otherwise run CLUSTER in a \
             maintenance window."
        }
        _ => {
            "Reclaim space without the lock: plain VACUUM (no FULL) runs beside reads and writes and makes the \
             space reusable; to give it back to the operating system, pg_repack copies the table online and swaps \
             it in with a brief lock. Otherwise run VACUUM FULL in a maintenance window."
        }
    };
    if r.tables.is_empty() {
        let which = match r.what {
            "CLUSTER" => "every table of the database that was clustered before",
            _ => "every table of the database",
        };
        out.push(Finding {
            unused: None,
            rule: RuleId::BlockingRewrite,
            message: format!("{} rewrites {which}, each under an ACCESS EXCLUSIVE lock", r.what),
            detail: format!(
                "{} without a table name writes a new copy of {which} with all its indexes, one table at a time; \
                 while a table is copied, every read and write of it waits.",
                r.what
            ),
            safe_way: safe_way.to_owned(),
        });
        return;
    }
    let rewritten: Vec<_> = r.tables.iter().filter_map(|t| populated_target(t, facts)).collect();
    let Some(first) = rewritten.first() else {
        return;
    };
    let names: Vec<String> = rewritten.iter().map(|t| t.display.clone()).collect();
    out.push(Finding {
        unused: None,
        rule: RuleId::BlockingRewrite,
        message: format!(
            "{} rewrites {} {} under an ACCESS EXCLUSIVE lock",
            r.what,
            first.kind.noun(),
            listed(&names)
        ),
        detail: format!(
            "{} writes a new copy of {} and rebuilds all its indexes while holding an ACCESS EXCLUSIVE lock: every \
             read and write of it waits until the copy is done.",
            r.what,
            first.described()
        ),
        safe_way: safe_way.to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn rewrite(what: &'static str, tables: &[&str]) -> Statement {
        stmt(
            what,
            what,
            Command::Rewrite(Rewrite {
                what,
                tables: tables.iter().map(|t| rel(t)).collect(),
            }),
        )
    }

    fn run(s: &Statement, f: &FakeFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        check(s, f, &mut out);
        out
    }

    #[test]
    fn blocks_populated_existing_tables_only() {
        let mut empty = FakeFacts::table("e");
        empty.set_empty();
        let mut new = FakeFacts::table("n");
        new.new_in_xact = true;
        let f = FakeFacts::default()
            .with("t", FakeFacts::table("t"))
            .with("e", empty)
            .with("n", new);
        let out = run(&rewrite("VACUUM FULL", &["e", "n", "t", "missing"]), &f);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, RuleId::BlockingRewrite);
        assert_eq!(
            out[0].message,
            "VACUUM FULL rewrites table public.t under an ACCESS EXCLUSIVE lock"
        );
        assert!(out[0].safe_way.contains("plain VACUUM"), "{}", out[0].safe_way);
        assert!(run(&rewrite("CLUSTER", &["e", "n"]), &f).is_empty());
        let out = run(&rewrite("CLUSTER", &["t"]), &f);
        assert!(out[0].safe_way.contains("pg_repack --order-by"), "{}", out[0].safe_way);
    }

    #[test]
    fn without_a_table_it_is_every_table() {
        let out = run(&rewrite("VACUUM FULL", &[]), &FakeFacts::default());
        assert_eq!(
            out[0].message,
            "VACUUM FULL rewrites every table of the database, each under an ACCESS EXCLUSIVE lock"
        );
        let out = run(&rewrite("CLUSTER", &[]), &FakeFacts::default());
        assert!(out[0].message.contains("clustered before"), "{}", out[0].message);
    }
}
