//! `validating-foreign-key`: `ADD FOREIGN KEY` without `NOT VALID` checks every existing row while
//! holding SHARE ROW EXCLUSIVE on both tables. A foreign key on a column added in the same
//! statement without a default has nothing to check and passes.

use super::{Finding, RuleId, constraint_label, populated_target, single_subcommand_text};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, ConstraintKind, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    // Columns this statement adds that start out NULL in every existing row.
    let empty_new_columns: Vec<&str> = at
        .cmds
        .iter()
        .filter_map(|c| match c {
            AlterCmd::AddColumn(col) if !col.fills_existing_rows() => Some(col.name.as_str()),
            _ => None,
        })
        .collect();
    for cmd in &at.cmds {
        let (fk, inline) = match cmd {
            AlterCmd::AddConstraint(c) if c.kind == ConstraintKind::ForeignKey && !c.not_valid => (c, false),
            AlterCmd::AddColumn(col) if col.fills_existing_rows() => {
                match col.constraints.iter().find(|c| c.kind == ConstraintKind::ForeignKey) {
                    Some(c) => (c, true),
                    None => continue,
                }
            }
            _ => continue,
        };
        if !fk.columns.is_empty() && fk.columns.iter().all(|c| empty_new_columns.contains(&c.as_str())) {
            continue;
        }
        let Some(rel) = populated_target(&at.table, facts) else {
            return;
        };
        let t = &rel.display;
        let referenced = fk
            .references
            .as_ref()
            .map(|r| facts.relation(r).map(|rr| rr.display).unwrap_or_else(|| r.to_string()))
            .unwrap_or_else(|| "the referenced table".to_owned());
        let name = fk
            .name
            .as_deref()
            .map(quote_ident)
            .unwrap_or_else(|| "<name>".to_owned());
        let added = if inline {
            None
        } else {
            single_subcommand_text(stmt, at).map(|s| format!("{s} NOT VALID;"))
        }
        .unwrap_or_else(|| {
            let cols = fk.columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
            format!("ALTER TABLE {t} ADD CONSTRAINT {name} FOREIGN KEY ({cols}) REFERENCES {referenced} NOT VALID;")
        });
        out.push(Finding {
            unused: None,
            rule: RuleId::ValidatingForeignKey,
            message: format!(
                "ADD {} scans the whole {} {t} while holding SHARE ROW EXCLUSIVE locks on it and on {referenced}",
                constraint_label(fk),
                rel.kind.noun()
            ),
            detail: format!(
                "PostgreSQL checks every existing row of {} against {referenced}; INSERT, UPDATE and DELETE on both \
                 tables wait until it is done.",
                rel.described()
            ),
            safe_way: format!(
                "Add it without checking existing rows, then validate it without blocking writes: {added} then, in \
                 its own transaction, ALTER TABLE {t} VALIDATE CONSTRAINT {name}; (VALIDATE takes SHARE UPDATE \
                 EXCLUSIVE on {t} and ROW SHARE on {referenced})."
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn fk(cols: &[&str], not_valid: bool) -> Constraint {
        let mut c = constraint(ConstraintKind::ForeignKey, Some("t_p_fk"), not_valid);
        c.columns = cols.iter().map(|c| c.to_string()).collect();
        c.references = Some(rel("p"));
        c
    }

    fn run(cmds: Vec<AlterCmd>) -> Vec<Finding> {
        let f = FakeFacts::default()
            .with("t", FakeFacts::table("t"))
            .with("p", FakeFacts::table("p"));
        let mut out = Vec::new();
        check(
            &stmt(
                "ALTER TABLE",
                "ALTER TABLE t ADD CONSTRAINT t_p_fk FOREIGN KEY (p_id) REFERENCES p",
                alter("t", cmds),
            ),
            &f,
            &mut out,
        );
        out
    }

    #[test]
    fn blocks_validating_fk_on_existing_column() {
        let got = run(vec![AlterCmd::AddConstraint(fk(&["p_id"], false))]);
        assert!(
            got[0]
                .message
                .contains("SHARE ROW EXCLUSIVE locks on it and on public.p"),
            "{}",
            got[0].message
        );
        assert!(
            got[0].safe_way.contains("REFERENCES p NOT VALID;"),
            "{}",
            got[0].safe_way
        );
    }

    #[test]
    fn passes_fk_on_a_column_added_in_the_same_statement() {
        assert!(
            run(vec![
                AlterCmd::AddColumn(column_def("p_id")),
                AlterCmd::AddConstraint(fk(&["p_id"], false))
            ])
            .is_empty()
        );
        let mut col = column_def("p_id");
        col.constraints.push(fk(&["p_id"], false));
        assert!(run(vec![AlterCmd::AddColumn(col.clone())]).is_empty());
        // ... unless the new column has a default: then every row has a value to check.
        col.default = Some(Expr {
            volatility: Some(Volatility::Immutable),
            calls: vec![],
        });
        assert_eq!(run(vec![AlterCmd::AddColumn(col)]).len(), 1);
    }

    #[test]
    fn passes_not_valid() {
        assert!(run(vec![AlterCmd::AddConstraint(fk(&["p_id"], true))]).is_empty());
    }
}
