//! `truncate-table`: `TRUNCATE` of an existing table that holds data removes every row for good
//! at the commit, and holds an ACCESS EXCLUSIVE lock on the table until then. Without `ONLY` it
//! empties the table's inheritance children and partitions too, and with `CASCADE` every table
//! with a foreign key to an emptied one: judged by what it really empties. The utility hook
//! judges it inside a registered migration or a transaction that ran DDL (an application that
//! empties a staging table is not a migration); `check()` judges it in every script.

use super::{Finding, RuleId, listed};
use crate::facts::{Facts, RelKind};
use crate::model::{Command, Reach, Statement};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Truncate(t) = &stmt.command else {
        return;
    };
    let reached = facts.reached(&Reach::Truncated {
        tables: t.tables.clone(),
        cascade: t.cascade,
    });
    let emptied: Vec<_> = reached
        .relations
        .iter()
        .filter(|r| r.kind == RelKind::Table && r.has_data())
        .collect();
    let Some(first) = emptied.first() else {
        return;
    };
    let names: Vec<String> = emptied.iter().map(|r| r.display.clone()).collect();
    let named: Vec<String> = t.tables.iter().map(|(r, _)| r.to_string()).collect();
    let further = emptied.len() > 1 || !t.tables.iter().any(|(r, _)| r.name == first.name);
    out.push(Finding {
        unused: None,
        rule: RuleId::TruncateTable,
        message: format!(
            "TRUNCATE removes every row of {} table{} ({}) for good",
            emptied.len(),
            if emptied.len() == 1 { "" } else { "s" },
            listed(&names)
        ),
        detail: format!(
            "TRUNCATE {} holds an ACCESS EXCLUSIVE lock on each table it empties until the transaction ends (every \
             read and write waits) and, at the commit, their rows are gone with no way back.{} The first: {}.",
            named.join(", "),
            if further {
                " It reaches further than it names: without ONLY it empties inheritance children and partitions, \
                 and with CASCADE every table whose foreign keys reference an emptied one."
            } else {
                ""
            },
            first.described()
        ),
        safe_way: "If the rows are meant to go, keep a copy first (pg_dump --table, or CREATE TABLE … AS) and allow \
                   truncate-table for this statement; to empty a busy table without the long lock, DELETE in \
                   batches of a few thousand rows, committing between them."
            .to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn truncate(tables: &[&str], cascade: bool) -> Statement {
        stmt(
            "TRUNCATE TABLE",
            "TRUNCATE",
            Command::Truncate(Truncate {
                tables: tables.iter().map(|t| (rel(t), true)).collect(),
                cascade,
            }),
        )
    }

    #[test]
    fn judges_what_it_really_empties() {
        let mut f = FakeFacts::default();
        let mut empty = FakeFacts::table("e");
        empty.set_empty();
        f.reached.relations = vec![empty.clone().stored()];
        let mut out = Vec::new();
        check(&truncate(&["e"], false), &f, &mut out);
        assert!(out.is_empty(), "{out:?}");
        f.reached.relations = vec![empty.stored(), FakeFacts::table("child").stored()];
        check(&truncate(&["e"], true), &f, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, RuleId::TruncateTable);
        assert_eq!(
            out[0].message,
            "TRUNCATE removes every row of 1 table (public.child) for good"
        );
        assert!(out[0].detail.contains("reaches further"), "{}", out[0].detail);
        assert!(out[0].safe_way.contains("allow truncate-table"));
    }

    #[test]
    fn a_populated_named_table_is_not_reaching_further() {
        let mut f = FakeFacts::default();
        f.reached.relations = vec![FakeFacts::table("t").stored()];
        let mut out = Vec::new();
        check(&truncate(&["t"], false), &f, &mut out);
        assert!(!out[0].detail.contains("reaches further"), "{}", out[0].detail);
    }
}
