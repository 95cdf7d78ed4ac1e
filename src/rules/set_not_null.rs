//! `set-not-null`: `ALTER COLUMN … SET NOT NULL` reads the whole table under an ACCESS EXCLUSIVE
//! lock, unless a validated CHECK constraint already proves the column has no NULLs (PostgreSQL
//! 12+ then skips the scan) or the column is already NOT NULL.

use super::{Finding, RuleId, populated_target};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let AlterCmd::SetNotNull { column } = cmd else { continue };
        let Some(rel) = populated_target(&at.table, facts) else {
            return;
        };
        if let Some(col) = facts.column(&rel, column)
            && (col.not_null || col.not_null_proven_by.is_some())
        {
            continue;
        }
        let c = quote_ident(column);
        let check_name = quote_ident(&constraint_name(&at.table.name, column));
        let t = &rel.display;
        out.push(Finding {
            rule: RuleId::SetNotNull,
            message: format!(
                "SET NOT NULL on column {c} scans the whole {} {t} under an ACCESS EXCLUSIVE lock",
                rel.kind.noun()
            ),
            detail: format!(
                "PostgreSQL reads every row of {} to check that {c} has no NULLs, and all reads and writes \
                 of the table wait until it is done. No validated CHECK ({c} IS NOT NULL) constraint exists \
                 that would let it skip the scan.",
                rel.described()
            ),
            safe_way: format!(
                "Prove it first without blocking: ALTER TABLE {t} ADD CONSTRAINT {check_name} CHECK ({c} IS NOT NULL) \
                 NOT VALID; then, in its own transaction, ALTER TABLE {t} VALIDATE CONSTRAINT {check_name}; \
                 (reads and writes continue meanwhile). SET NOT NULL then needs no scan, and the CHECK can be dropped \
                 afterwards."
            ),
        });
    }
}

/// `<table>_<column>_not_null`, cut to PostgreSQL's 63-byte identifier limit.
fn constraint_name(table: &str, column: &str) -> String {
    let suffix = format!("_{column}_not_null");
    let mut room = 63usize.saturating_sub(suffix.len()).min(table.len());
    while !table.is_char_boundary(room) {
        room -= 1;
    }
    let mut name = format!("{}{suffix}", &table[..room]);
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Column, FakeFacts};
    use crate::model::*;
    use crate::rules::testing::*;

    fn column(name: &str, not_null: bool, proven: Option<&str>) -> Column {
        Column {
            name: name.into(),
            not_null,
            not_null_proven_by: proven.map(Into::into),
            type_display: "text".into(),
        }
    }

    fn run(f: &FakeFacts, col: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        let s = stmt(
            "ALTER TABLE",
            "",
            alter("t", vec![AlterCmd::SetNotNull { column: col.into() }]),
        );
        check(&s, f, &mut out);
        out
    }

    #[test]
    fn blocks_unproven_column() {
        let t = FakeFacts::table("t");
        let f = FakeFacts::default()
            .with("t", t.clone())
            .with_column(&t, column("email", false, None));
        let got = run(&f, "email");
        assert_eq!(got.len(), 1);
        assert!(
            got[0]
                .safe_way
                .contains("ADD CONSTRAINT t_email_not_null CHECK (email IS NOT NULL) NOT VALID")
        );
        assert!(got[0].safe_way.contains("VALIDATE CONSTRAINT t_email_not_null"));
    }

    #[test]
    fn passes_when_proven_or_already_not_null_or_empty() {
        let t = FakeFacts::table("t");
        let f = FakeFacts::default()
            .with("t", t.clone())
            .with_column(&t, column("a", true, None))
            .with_column(&t, column("b", false, Some("b_check")));
        assert!(run(&f, "a").is_empty());
        assert!(run(&f, "b").is_empty());
        let mut empty = FakeFacts::table("t");
        empty.set_empty();
        assert!(run(&FakeFacts::default().with("t", empty), "x").is_empty());
    }

    #[test]
    fn constraint_names_fit_the_identifier_limit() {
        let long = "x".repeat(70);
        assert!(constraint_name(&long, "col").len() <= 63);
        assert!(constraint_name(&long, "col").ends_with("_col_not_null"));
    }
}
