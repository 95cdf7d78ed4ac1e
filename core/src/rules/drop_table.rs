//! `drop-table`: dropping an existing table destroys its data and breaks every client that still
//! uses it; it always needs an explicit allow.

use super::{Finding, RuleId};
use crate::facts::{Facts, RelKind};
use crate::model::{Command, ObjectKind, Statement};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Drop(d) = &stmt.command else { return };
    if d.kind != ObjectKind::Table {
        return;
    }
    let existing: Vec<_> = d
        .objects
        .iter()
        .filter_map(|o| facts.relation(o))
        .filter(|r| r.existing() && matches!(r.kind, RelKind::Table | RelKind::PartitionedTable))
        .collect();
    let Some(first) = existing.first() else { return };
    let names = existing
        .iter()
        .map(|r| r.display.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let first = facts.with_storage(first.clone());
    out.push(Finding {
        unused: None,
        rule: RuleId::DropTable,
        message: format!(
            "dropping {} {names} destroys its data and breaks clients that still use it",
            first.kind.noun()
        ),
        detail: existing.iter().fold(
            format!(
                "DROP TABLE takes an ACCESS EXCLUSIVE lock on {} and removes it and its data for good; every query \
                 that names it fails from the commit on.",
                first.described()
            ),
            |d, r| super::with_evidence(d, &facts.usage(r, None), &format!("{} {}", r.kind.noun(), r.display)),
        ),
        safe_way: "This is a contract step: first make sure nothing uses the table (deploy code that no longer \
                   touches it; pg_stat_user_tables shows whether it is still scanned), keep a backup or rename it \
                   aside for a while, then drop it on purpose."
            .to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn drop(names: &[&str]) -> Statement {
        stmt(
            "DROP TABLE",
            "",
            Command::Drop(Drop {
                kind: ObjectKind::Table,
                objects: names.iter().map(|n| rel(n)).collect(),
                concurrent: false,
                cascade: false,
            }),
        )
    }

    #[test]
    fn blocks_existing_tables_and_names_them_all() {
        let mut n = FakeFacts::table("n");
        n.new_in_xact = true;
        let f = FakeFacts::default()
            .with("a", FakeFacts::table("a"))
            .with("b", FakeFacts::table("b"))
            .with("n", n);
        let mut out = Vec::new();
        check(&drop(&["a", "n", "b", "missing"]), &f, &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].message.starts_with("dropping table public.a, public.b destroys"),
            "{}",
            out[0].message
        );
        let mut out = Vec::new();
        check(&drop(&["n", "missing"]), &f, &mut out);
        assert!(out.is_empty());
    }
}
