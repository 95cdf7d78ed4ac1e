//! `set-not-null`: `ALTER COLUMN … SET NOT NULL` (and, from PostgreSQL 18, `ADD CONSTRAINT … NOT
//! NULL` without `NOT VALID`) reads the whole table under an ACCESS EXCLUSIVE lock, unless a
//! validated CHECK constraint already proves the column has no NULLs (PostgreSQL 12+ then skips
//! the scan) or the column is already NOT NULL by a valid constraint. The safe way depends on
//! the server: 18 adds the NOT NULL constraint NOT VALID and validates it; earlier versions
//! prove it with a CHECK first.

use super::{Finding, RuleId, populated_target};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, ConstraintKind, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let (what, columns): (&str, Vec<String>) = match cmd {
            AlterCmd::SetNotNull { column } => ("SET NOT NULL", vec![column.clone()]),
            AlterCmd::AddConstraint(c) if c.kind == ConstraintKind::NotNull && !c.not_valid => {
                ("ADD CONSTRAINT … NOT NULL", c.columns.clone())
            }
            // A primary key makes its columns NOT NULL: with an index built beforehand, that is
            // the only part left to scan for.
            AlterCmd::AddConstraint(c) if c.kind == ConstraintKind::PrimaryKey && c.using_index.is_some() => {
                let Some(rel) = populated_target(&at.table, facts) else {
                    return;
                };
                let index = c.using_index.as_deref().unwrap_or_default();
                (
                    "ADD PRIMARY KEY USING INDEX",
                    facts.index_columns(&rel, index).unwrap_or_default(),
                )
            }
            _ => continue,
        };
        for column in &columns {
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
            let server = facts.server();
            let (proof, safe_way) = if server.not_null_not_valid() {
                (
                    format!("No validated CHECK ({c} IS NOT NULL) or NOT NULL constraint exists"),
                    format!(
                        "Add the constraint without checking existing rows, then validate it without blocking: ALTER \
                     TABLE {t} ADD CONSTRAINT {check_name} NOT NULL {c} NOT VALID; then, in its own transaction, \
                     ALTER TABLE {t} VALIDATE CONSTRAINT {check_name}; (VALIDATE takes a SHARE UPDATE EXCLUSIVE \
                     lock: reads and writes continue). The column is then NOT NULL."
                    ),
                )
            } else {
                (
                    format!("No validated CHECK ({c} IS NOT NULL) constraint exists"),
                    format!(
                        "Prove it first without blocking: ALTER TABLE {t} ADD CONSTRAINT {check_name} CHECK ({c} IS NOT \
                     NULL) NOT VALID; then, in its own transaction, ALTER TABLE {t} VALIDATE CONSTRAINT {check_name}; \
                     (reads and writes continue meanwhile). {what} then needs no scan, and the CHECK can be \
                     dropped afterwards."
                    ),
                )
            };
            out.push(Finding {
                unused: None,
                rule: RuleId::SetNotNull,
                message: format!(
                    "{what} on column {c} scans the whole {} {t} under an ACCESS EXCLUSIVE lock",
                    rel.kind.noun()
                ),
                detail: format!(
                    "PostgreSQL reads every row of {} to check that {c} has no NULLs, and all reads and writes \
                 of the table wait until it is done. {proof} that would let it skip the scan.",
                    rel.described()
                ),
                safe_way,
            });
        }
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
            generated: None,
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

    #[test]
    fn postgres_18_adds_the_not_null_constraint_not_valid_instead_of_a_check() {
        let t = FakeFacts::table("t");
        let mut f = FakeFacts::default()
            .with("t", t.clone())
            .with_column(&t, column("email", false, None));
        f.server = Some(crate::server::Server::of(18));
        let got = run(&f, "email");
        assert!(
            got[0]
                .safe_way
                .contains("ADD CONSTRAINT t_email_not_null NOT NULL email NOT VALID"),
            "{}",
            got[0].safe_way
        );
        assert!(!got[0].safe_way.contains("CHECK"), "{}", got[0].safe_way);
        // ADD CONSTRAINT … NOT NULL (18 syntax) scans like SET NOT NULL, unless NOT VALID.
        let add = |not_valid| {
            let mut c = constraint(ConstraintKind::NotNull, Some("nn"), not_valid);
            c.columns = vec!["email".into()];
            stmt("ALTER TABLE", "", alter("t", vec![AlterCmd::AddConstraint(c)]))
        };
        let mut out = Vec::new();
        check(&add(false), &f, &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].message.starts_with("ADD CONSTRAINT … NOT NULL on column email"),
            "{}",
            out[0].message
        );
        out.clear();
        check(&add(true), &f, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_primary_key_over_an_index_makes_nullable_columns_not_null_with_a_scan() {
        let t = FakeFacts::table("t");
        let mut f = FakeFacts::default()
            .with("t", t.clone())
            .with_column(&t, column("id", false, None))
            .with_column(&t, column("tenant", true, None));
        f.index_columns
            .push(("t_key".into(), vec!["tenant".into(), "id".into()]));
        let mut pk = constraint(ConstraintKind::PrimaryKey, Some("t_pk"), false);
        pk.using_index = Some("t_key".into());
        let mut out = Vec::new();
        check(
            &stmt("ALTER TABLE", "", alter("t", vec![AlterCmd::AddConstraint(pk)])),
            &f,
            &mut out,
        );
        assert_eq!(out.len(), 1, "only the nullable column: {out:?}");
        assert!(
            out[0].message.starts_with("ADD PRIMARY KEY USING INDEX on column id"),
            "{}",
            out[0].message
        );
        assert!(
            out[0]
                .safe_way
                .contains("ADD PRIMARY KEY USING INDEX then needs no scan"),
            "{}",
            out[0].safe_way
        );
    }
}
