//! `blocking-reindex`: `REINDEX` without `CONCURRENTLY` rebuilds indexes under a SHARE lock on the
//! table (every write waits) and an ACCESS EXCLUSIVE lock on each index (every read that would
//! use it waits). Event triggers fire for REINDEX from PostgreSQL 17; earlier servers never show
//! it to the guard.

use super::{Finding, RuleId, populated_target};
use crate::facts::{Facts, Rel, Stored};
use crate::model::{Command, ReindexTarget, Statement};
use crate::sqltext::insert_after_words;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Reindex(r) = &stmt.command else {
        return;
    };
    if r.concurrent {
        return;
    }
    let text = stmt.text.as_deref().unwrap_or("");
    let (what, keyword, fallback, rel) = match &r.target {
        ReindexTarget::Index(i) => {
            let Some(table) = facts
                .index_table(i)
                .filter(Rel::existing)
                .map(|t| facts.with_storage(t))
                .filter(Stored::has_data)
            else {
                return;
            };
            (
                format!("REINDEX INDEX {i}"),
                "INDEX",
                format!("REINDEX INDEX CONCURRENTLY {i}"),
                table,
            )
        }
        ReindexTarget::Table(t) => {
            let Some(table) = populated_target(t, facts) else {
                return;
            };
            let d = table.display.clone();
            (
                format!("REINDEX TABLE {d}"),
                "TABLE",
                format!("REINDEX TABLE CONCURRENTLY {d}"),
                table,
            )
        }
        ReindexTarget::Many { what, name } => {
            let concurrent = if *what == "SYSTEM" {
                "REINDEX SYSTEM cannot run CONCURRENTLY: reindex the catalogs in a maintenance window, or reindex \
                 the user tables one by one with REINDEX TABLE CONCURRENTLY."
                    .to_owned()
            } else {
                format!(
                    "Rebuild them without blocking, outside a transaction block: {};",
                    insert_after_words(text, &[what], "CONCURRENTLY")
                        .unwrap_or_else(|| format!("REINDEX {what} CONCURRENTLY {name}"))
                )
            };
            out.push(Finding {
                unused: None,
                rule: RuleId::BlockingReindex,
                message: format!("REINDEX {what} {name} would block writes to every table in it, one table at a time"),
                detail: format!(
                    "Without CONCURRENTLY, REINDEX {what} rebuilds every index of every table in {name}: each table \
                     is locked SHARE while its indexes are rebuilt (every INSERT, UPDATE and DELETE on it waits) and \
                     each index ACCESS EXCLUSIVE (every query that would use it waits)."
                ),
                safe_way: concurrent,
            });
            return;
        }
    };
    let concurrent = insert_after_words(text, &[keyword], "CONCURRENTLY").unwrap_or(fallback);
    out.push(Finding {
        unused: None,
        rule: RuleId::BlockingReindex,
        message: format!(
            "{what} would block writes to {} {} while its indexes are rebuilt",
            rel.kind.noun(),
            rel.display
        ),
        detail: format!(
            "Without CONCURRENTLY, REINDEX holds a SHARE lock on {} while it reads the whole table (every INSERT, \
             UPDATE and DELETE waits) and an ACCESS EXCLUSIVE lock on each index it rebuilds (every query that \
             would use the index waits).",
            rel.described()
        ),
        safe_way: format!("Rebuild it without blocking, outside a transaction block: {concurrent};"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn reindex(target: ReindexTarget, concurrent: bool, text: &str) -> Statement {
        stmt("REINDEX", text, Command::Reindex(Reindex { target, concurrent }))
    }

    fn run(s: &Statement, f: &FakeFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        check(s, f, &mut out);
        out
    }

    #[test]
    fn blocks_plain_reindex_of_populated_tables_and_their_indexes() {
        let f = FakeFacts::default()
            .with("t", FakeFacts::table("t"))
            .with_index("t_idx", "t");
        let out = run(&reindex(ReindexTarget::Table(rel("t")), false, "REINDEX TABLE t"), &f);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].safe_way.contains("REINDEX TABLE CONCURRENTLY t"),
            "{}",
            out[0].safe_way
        );
        let out = run(
            &reindex(ReindexTarget::Index(rel("t_idx")), false, "REINDEX INDEX t_idx"),
            &f,
        );
        assert_eq!(out.len(), 1);
        assert!(
            out[0].safe_way.contains("REINDEX INDEX CONCURRENTLY t_idx"),
            "{}",
            out[0].safe_way
        );
        assert!(run(&reindex(ReindexTarget::Table(rel("t")), true, ""), &f).is_empty());
    }

    #[test]
    fn new_and_empty_tables_pass() {
        let mut empty = FakeFacts::table("e");
        empty.set_empty();
        let mut fresh = FakeFacts::table("n");
        fresh.new_in_xact = true;
        let f = FakeFacts::default().with("e", empty).with("n", fresh);
        assert!(run(&reindex(ReindexTarget::Table(rel("e")), false, ""), &f).is_empty());
        assert!(run(&reindex(ReindexTarget::Table(rel("n")), false, ""), &f).is_empty());
    }

    #[test]
    fn schema_and_system_reindex_are_blocked_with_the_right_way_out() {
        let f = FakeFacts::default();
        let schema = ReindexTarget::Many {
            what: "SCHEMA",
            name: "app".into(),
        };
        let out = run(&reindex(schema, false, "REINDEX SCHEMA app"), &f);
        assert!(
            out[0].safe_way.contains("REINDEX SCHEMA CONCURRENTLY app"),
            "{}",
            out[0].safe_way
        );
        let system = ReindexTarget::Many {
            what: "SYSTEM",
            name: "db".into(),
        };
        let out = run(&reindex(system, false, "REINDEX SYSTEM db"), &f);
        assert!(
            out[0].safe_way.contains("cannot run CONCURRENTLY"),
            "{}",
            out[0].safe_way
        );
    }
}
