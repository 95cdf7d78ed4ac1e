//! `validating-check`: `ADD CONSTRAINT … CHECK` without `NOT VALID`, or a CHECK written inline in
//! `ADD COLUMN`, checks every existing row while holding ACCESS EXCLUSIVE.

use super::{Finding, RuleId, constraint_label, populated_target, single_subcommand_text};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, ConstraintKind, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        // A virtual generated column (PostgreSQL 18) declared NOT NULL: nothing is stored, but
        // PostgreSQL computes the expression for every existing row to check it.
        if let AlterCmd::AddColumn(col) = cmd
            && col.generated_virtual.is_some()
            && col.not_null
        {
            let Some(rel) = populated_target(&at.table, facts) else {
                return;
            };
            let (t, c) = (&rel.display, quote_ident(&col.name));
            let check = quote_ident(&format!("{}_{}_not_null", rel.name, col.name));
            out.push(Finding {
                unused: None,
                rule: RuleId::ValidatingCheck,
                message: format!(
                    "ADD COLUMN {c} (virtual generated, NOT NULL) scans the whole {} {t} under an ACCESS EXCLUSIVE lock",
                    rel.kind.noun()
                ),
                detail: format!(
                    "The column stores nothing, but PostgreSQL computes its expression for every existing row of {} to \
                     check that none is NULL, and every read and write of the table waits meanwhile.",
                    rel.described()
                ),
                safe_way: format!(
                    "Add the column without NOT NULL (instant), then check the rows without blocking: ALTER TABLE {t} \
                     ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID; then, in its own transaction, ALTER \
                     TABLE {t} VALIDATE CONSTRAINT {check};"
                ),
            });
            continue;
        }
        let (constraint, inline_column) = match cmd {
            AlterCmd::AddConstraint(c) if c.kind == ConstraintKind::Check && !c.not_valid => (c, None),
            AlterCmd::AddColumn(col) => match col.constraints.iter().find(|c| c.kind == ConstraintKind::Check) {
                Some(c) => (c, Some(col)),
                None => continue,
            },
            _ => continue,
        };
        let Some(rel) = populated_target(&at.table, facts) else {
            return;
        };
        let t = &rel.display;
        let name = constraint
            .name
            .as_deref()
            .map(quote_ident)
            .unwrap_or_else(|| "<name>".to_owned());
        let safe_way = match inline_column {
            Some(col) => format!(
                "Add the column first, then the check as its own constraint without checking existing rows, and \
                 validate it separately: ALTER TABLE {t} ADD COLUMN {} {}; ALTER TABLE {t} ADD CONSTRAINT {name} \
                 CHECK (...) NOT VALID; then, in its own transaction, ALTER TABLE {t} VALIDATE CONSTRAINT {name}; \
                 (reads and writes continue during VALIDATE).",
                quote_ident(&col.name),
                col.type_name.display
            ),
            None => {
                let added = single_subcommand_text(stmt, at)
                    .map(|s| format!("{s} NOT VALID;"))
                    .unwrap_or_else(|| format!("ALTER TABLE {t} ADD CONSTRAINT {name} CHECK (...) NOT VALID;"));
                format!(
                    "Add it without checking existing rows, then validate it without blocking: {added} then, in its \
                     own transaction, ALTER TABLE {t} VALIDATE CONSTRAINT {name}; (VALIDATE takes a SHARE UPDATE \
                     EXCLUSIVE lock: reads and writes continue)."
                )
            }
        };
        let what = match inline_column {
            Some(col) => format!("ADD COLUMN {} with an inline CHECK", quote_ident(&col.name)),
            None => format!("ADD {}", constraint_label(constraint)),
        };
        out.push(Finding {
            unused: None,
            rule: RuleId::ValidatingCheck,
            message: format!(
                "{what} scans the whole {} {t} under an ACCESS EXCLUSIVE lock",
                rel.kind.noun()
            ),
            detail: format!(
                "PostgreSQL checks every existing row of {} before the statement ends, and every read and write of \
                 the table waits meanwhile.",
                rel.described()
            ),
            safe_way,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn run(cmd: AlterCmd, text: &str) -> Vec<Finding> {
        let f = FakeFacts::default().with("t", FakeFacts::table("t"));
        let mut out = Vec::new();
        check(&stmt("ALTER TABLE", text, alter("t", vec![cmd])), &f, &mut out);
        out
    }

    #[test]
    fn blocks_validating_check_and_suggests_not_valid() {
        let got = run(
            AlterCmd::AddConstraint(constraint(ConstraintKind::Check, Some("pos"), false)),
            "ALTER TABLE t ADD CONSTRAINT pos CHECK (a > 0);",
        );
        assert_eq!(
            got[0].message,
            "ADD CONSTRAINT pos CHECK scans the whole table public.t under an ACCESS EXCLUSIVE lock"
        );
        assert!(
            got[0]
                .safe_way
                .contains("ALTER TABLE t ADD CONSTRAINT pos CHECK (a > 0) NOT VALID;"),
            "{}",
            got[0].safe_way
        );
        assert!(got[0].safe_way.contains("VALIDATE CONSTRAINT pos"));
    }

    #[test]
    fn blocks_inline_check_in_add_column() {
        let mut col = column_def("qty");
        col.constraints.push(constraint(ConstraintKind::Check, None, false));
        let got = run(AlterCmd::AddColumn(col), "");
        assert!(got[0].message.starts_with("ADD COLUMN qty with an inline CHECK"));
    }

    #[test]
    fn passes_not_valid() {
        assert!(
            run(
                AlterCmd::AddConstraint(constraint(ConstraintKind::Check, Some("c"), true)),
                ""
            )
            .is_empty()
        );
    }

    #[test]
    fn a_virtual_not_null_column_is_checked_row_by_row_but_not_stored() {
        let f = crate::facts::FakeFacts::default().with("t", crate::facts::FakeFacts::table("t"));
        let mut col = crate::rules::testing::column_def("v");
        col.generated_virtual = Some(crate::model::Expr {
            volatility: None,
            calls: vec![],
        });
        let mut out = Vec::new();
        check(
            &crate::rules::testing::stmt(
                "ALTER TABLE",
                "",
                crate::rules::testing::alter("t", vec![AlterCmd::AddColumn(col.clone())]),
            ),
            &f,
            &mut out,
        );
        assert!(out.is_empty(), "nullable: nothing to check");
        col.not_null = true;
        check(
            &crate::rules::testing::stmt(
                "ALTER TABLE",
                "",
                crate::rules::testing::alter("t", vec![AlterCmd::AddColumn(col)]),
            ),
            &f,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(
            out[0].message.contains("virtual generated, NOT NULL"),
            "{}",
            out[0].message
        );
    }
}
