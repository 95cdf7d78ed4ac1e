//! Subcommands that PostgreSQL carries out without touching a row, because what they ask for is
//! already true: `SET TABLESPACE` to the tablespace the table is in, `SET LOGGED` on a logged
//! table (`SET UNLOGGED` on an unlogged one), `SET ACCESS METHOD` to its method, `ADD COLUMN IF
//! NOT EXISTS` of a column that exists (skipped with a NOTICE: no default is evaluated). `SET
//! TABLESPACE` and `SET ACCESS METHOD` on a partitioned table move no data either: they only set
//! what future partitions get.
//!
//! [`without_noops`] replaces each such subcommand by the bare lock it still takes, once, before
//! any rule runs, so that no rule has to know about them and `lock-timeout` still sees the lock.

use crate::facts::{Facts, Rel, RelKind};
use crate::model::{AlterCmd, AlterTable, Command, LockMode, Statement};

/// `stmt` with its no-op subcommands replaced by `AlterCmd::Other` (the ACCESS EXCLUSIVE lock
/// each still takes), or `None` when it has none.
pub fn without_noops(stmt: &Statement, facts: &dyn Facts) -> Option<Statement> {
    let Command::AlterTable(at) = &stmt.command else {
        return None;
    };
    if !at.cmds.iter().any(could_be_noop) {
        return None;
    }
    let rel = facts.relation(&at.table)?;
    // (DROP COLUMN runs before ADD COLUMN within one statement: re-added, it is really added.)
    let dropped: Vec<&str> = at
        .cmds
        .iter()
        .filter_map(|c| match c {
            AlterCmd::DropColumn { column } => Some(column.as_str()),
            _ => None,
        })
        .collect();
    let mut changed = false;
    let cmds = at
        .cmds
        .iter()
        .map(|c| {
            let readded = matches!(c, AlterCmd::AddColumn(d) if dropped.contains(&d.name.as_str()));
            if !readded && is_noop(c, &rel, facts) {
                changed = true;
                AlterCmd::Other {
                    lock: LockMode::AccessExclusive,
                }
            } else {
                c.clone()
            }
        })
        .collect();
    changed.then(|| Statement {
        command: Command::AlterTable(AlterTable { cmds, ..at.clone() }),
        ..stmt.clone()
    })
}

fn could_be_noop(cmd: &AlterCmd) -> bool {
    match cmd {
        AlterCmd::SetLogged | AlterCmd::SetUnlogged => true,
        AlterCmd::SetTablespace { .. } | AlterCmd::SetAccessMethod { .. } => true,
        AlterCmd::AddColumn(def) => def.if_not_exists,
        _ => false,
    }
}

/// Whether PostgreSQL would leave every row and page of `rel` where it is for `cmd`.
pub fn is_noop(cmd: &AlterCmd, rel: &Rel, facts: &dyn Facts) -> bool {
    let partitioned = matches!(rel.kind, RelKind::PartitionedTable | RelKind::PartitionedIndex);
    let physical = rel.physical;
    match cmd {
        AlterCmd::SetLogged => physical.is_some_and(|p| p.persistence == b'p'),
        AlterCmd::SetUnlogged => physical.is_some_and(|p| p.persistence == b'u'),
        AlterCmd::SetTablespace { name } => {
            partitioned || physical.is_some_and(|p| facts.tablespace_oid(name) == Some(p.tablespace))
        }
        AlterCmd::SetAccessMethod { name } => {
            partitioned
                || (!name.is_empty()
                    && physical.is_some_and(|p| facts.access_method_oid(name) == Some(p.access_method)))
        }
        AlterCmd::AddColumn(def) => def.if_not_exists && facts.column(rel, &def.name).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Column, FakeFacts};
    use crate::rules::testing::*;

    fn pruned(f: &FakeFacts, cmds: Vec<AlterCmd>) -> Vec<bool> {
        let s = stmt("ALTER TABLE", "", alter("t", cmds.clone()));
        let out = without_noops(&s, f).unwrap_or(s);
        let Command::AlterTable(at) = out.command else {
            unreachable!()
        };
        at.cmds
            .iter()
            .map(|c| {
                matches!(
                    c,
                    AlterCmd::Other {
                        lock: LockMode::AccessExclusive
                    }
                )
            })
            .collect()
    }

    #[test]
    fn what_is_already_true_is_a_noop() {
        let t = FakeFacts::table("t");
        let f = FakeFacts::default().with("t", t.clone()).with_column(
            &t,
            Column {
                name: "email".into(),
                not_null: false,
                not_null_proven_by: None,
                type_display: "text".into(),
                generated: None,
            },
        );
        let mut exists = column_def("email");
        exists.if_not_exists = true;
        let mut missing = column_def("score");
        missing.if_not_exists = true;
        let plain = column_def("email");
        let got = pruned(
            &f,
            vec![
                AlterCmd::SetLogged,
                AlterCmd::SetUnlogged,
                AlterCmd::SetTablespace {
                    name: "pg_default".into(),
                },
                AlterCmd::SetTablespace { name: "fast".into() },
                AlterCmd::SetAccessMethod { name: "heap".into() },
                AlterCmd::SetAccessMethod {
                    name: "columnar".into(),
                },
                AlterCmd::AddColumn(exists),
                AlterCmd::AddColumn(missing),
                AlterCmd::AddColumn(plain),
            ],
        );
        assert_eq!(got, vec![true, false, true, false, true, false, true, false, false]);
    }

    #[test]
    fn a_partitioned_table_moves_no_data() {
        let mut p = FakeFacts::table("t");
        p.kind = RelKind::PartitionedTable;
        let f = FakeFacts::default().with("t", p);
        let got = pruned(
            &f,
            vec![AlterCmd::SetTablespace { name: "fast".into() }, AlterCmd::SetUnlogged],
        );
        assert_eq!(got, vec![true, false]);
    }

    #[test]
    fn an_unknown_relation_or_tablespace_is_not_a_noop() {
        let f = FakeFacts::default().with("t", FakeFacts::table("t"));
        assert_eq!(
            pruned(&f, vec![AlterCmd::SetTablespace { name: "nope".into() }]),
            vec![false]
        );
        let mut script = FakeFacts::table("t");
        script.physical = None;
        let f = FakeFacts::default().with("t", script);
        assert_eq!(pruned(&f, vec![AlterCmd::SetLogged]), vec![false]);
    }
}
