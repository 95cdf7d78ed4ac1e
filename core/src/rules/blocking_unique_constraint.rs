//! `blocking-unique-constraint`: `ADD UNIQUE` / `ADD PRIMARY KEY` without `USING INDEX` (also
//! inline in `ADD COLUMN`) builds the unique index under ACCESS EXCLUSIVE.

use super::{Finding, RuleId, constraint_label, populated_target};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, ConstraintKind, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    let is_unique = |k: ConstraintKind| matches!(k, ConstraintKind::Unique | ConstraintKind::PrimaryKey);
    for cmd in &at.cmds {
        let (c, inline) = match cmd {
            AlterCmd::AddConstraint(c) if is_unique(c.kind) && c.using_index.is_none() => (c, None),
            AlterCmd::AddColumn(col) => match col.constraints.iter().find(|c| is_unique(c.kind)) {
                Some(c) => (c, Some(col)),
                None => continue,
            },
            _ => continue,
        };
        let Some(rel) = populated_target(&at.table, facts) else {
            return;
        };
        let t = &rel.display;
        let pk = c.kind == ConstraintKind::PrimaryKey;
        let kind = if pk { "PRIMARY KEY" } else { "UNIQUE" };
        let idx = quote_ident(&c.name.clone().unwrap_or_else(|| {
            if pk {
                format!("{}_pkey", rel.name)
            } else {
                format!("{}_{}_key", rel.name, c.columns.join("_"))
            }
        }));
        let cols = c.columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
        let mut steps = format!(
            "CREATE UNIQUE INDEX CONCURRENTLY {idx} ON {t} ({cols}); then ALTER TABLE {t} ADD CONSTRAINT {idx} {kind} \
             USING INDEX {idx}; (a quick metadata change)."
        );
        if pk {
            steps.push_str(
                " The key columns must already be NOT NULL, or that step scans the table (see set-not-null).",
            );
        }
        let (what, safe_way) = match inline {
            Some(col) => (
                format!("ADD COLUMN {} {kind}", quote_ident(&col.name)),
                format!(
                    "Add the column first (ALTER TABLE {t} ADD COLUMN {} {}), build the index without blocking \
                     writes, then attach it: {steps}",
                    quote_ident(&col.name),
                    col.type_name.display
                ),
            ),
            None => (
                format!("ADD {}", constraint_label(c)),
                format!(
                    "Build the index without blocking writes, outside a transaction block, then attach it: {steps}"
                ),
            ),
        };
        out.push(Finding {
            unused: None,
            rule: RuleId::BlockingUniqueConstraint,
            message: format!(
                "{what} builds a unique index on {} {t} under an ACCESS EXCLUSIVE lock",
                rel.kind.noun()
            ),
            detail: format!(
                "PostgreSQL reads all of {} to build the index, and every read and write of the table waits until it \
                 is done.",
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

    fn run(cmd: AlterCmd) -> Vec<Finding> {
        let f = FakeFacts::default().with("t", FakeFacts::table("t"));
        let mut out = Vec::new();
        check(&stmt("ALTER TABLE", "", alter("t", vec![cmd])), &f, &mut out);
        out
    }

    #[test]
    fn blocks_unique_and_primary_key() {
        let mut u = constraint(ConstraintKind::Unique, None, false);
        u.columns = vec!["email".into()];
        let got = run(AlterCmd::AddConstraint(u));
        assert!(
            got[0]
                .safe_way
                .contains("CREATE UNIQUE INDEX CONCURRENTLY t_email_key ON public.t (email)"),
            "{}",
            got[0].safe_way
        );
        assert!(
            got[0]
                .safe_way
                .contains("ADD CONSTRAINT t_email_key UNIQUE USING INDEX t_email_key")
        );
        let mut p = constraint(ConstraintKind::PrimaryKey, Some("t_pk"), false);
        p.columns = vec!["id".into()];
        let got = run(AlterCmd::AddConstraint(p));
        assert!(got[0].safe_way.contains("PRIMARY KEY USING INDEX t_pk"));
        assert!(got[0].safe_way.contains("NOT NULL"));
    }

    #[test]
    fn blocks_inline_and_passes_using_index() {
        let mut col = column_def("code");
        let mut u = constraint(ConstraintKind::Unique, None, false);
        u.columns = vec!["code".into()];
        col.constraints.push(u);
        assert!(
            run(AlterCmd::AddColumn(col))[0]
                .message
                .starts_with("ADD COLUMN code UNIQUE")
        );
        let mut using = constraint(ConstraintKind::Unique, Some("k"), false);
        using.using_index = Some("k".into());
        assert!(run(AlterCmd::AddConstraint(using)).is_empty());
    }
}
