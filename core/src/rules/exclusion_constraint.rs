//! `exclusion-constraint`: `ADD EXCLUDE` builds its index and checks every row under ACCESS
//! EXCLUSIVE; PostgreSQL offers neither NOT VALID nor USING INDEX for it.

use super::{Finding, RuleId, constraint_label, populated_target};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, ConstraintKind, Statement};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let c = match cmd {
            AlterCmd::AddConstraint(c) if c.kind == ConstraintKind::Exclusion => c,
            AlterCmd::AddColumn(col) => match col.constraints.iter().find(|c| c.kind == ConstraintKind::Exclusion) {
                Some(c) => c,
                None => continue,
            },
            _ => continue,
        };
        let Some(rel) = populated_target(&at.table, facts) else {
            return;
        };
        let t = &rel.display;
        out.push(Finding {
            unused: None,
            rule: RuleId::ExclusionConstraint,
            message: format!(
                "ADD {} builds an index and checks every row of {} {t} under an ACCESS EXCLUSIVE lock",
                constraint_label(c),
                rel.kind.noun()
            ),
            detail: format!(
                "PostgreSQL reads all of {} to build the exclusion index, and every read and write of the table waits \
                 until it is done. Exclusion constraints cannot be added NOT VALID or from an existing index.",
                rel.described()
            ),
            safe_way: "There is no non-blocking way to add an exclusion constraint to a populated table: declare it \
                       when the table is created, or create a new table with the constraint, copy the rows over in \
                       batches while a trigger mirrors changes, and swap the tables in one short transaction. If it \
                       must happen in place, run it in a maintenance window with a short lock_timeout."
                .to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    #[test]
    fn blocks_exclusion_on_populated_tables_only() {
        let cmd = AlterCmd::AddConstraint(constraint(ConstraintKind::Exclusion, Some("no_overlap"), false));
        let f = FakeFacts::default().with("t", FakeFacts::table("t"));
        let mut out = Vec::new();
        check(&stmt("ALTER TABLE", "", alter("t", vec![cmd.clone()])), &f, &mut out);
        assert_eq!(
            out[0].message,
            "ADD CONSTRAINT no_overlap EXCLUDE builds an index and checks every row of table public.t under an ACCESS EXCLUSIVE lock"
        );
        let mut e = FakeFacts::table("t");
        e.set_empty();
        let f = FakeFacts::default().with("t", e);
        let mut out = Vec::new();
        check(&stmt("ALTER TABLE", "", alter("t", vec![cmd])), &f, &mut out);
        assert!(out.is_empty());
    }
}
