//! `add-column-not-null`: `ADD COLUMN … NOT NULL` without a DEFAULT leaves existing rows NULL, so
//! on a table with data the statement takes an ACCESS EXCLUSIVE lock and then fails.

use super::{Finding, RuleId, populated_target};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let AlterCmd::AddColumn(col) = cmd else { continue };
        if !col.not_null || col.fills_existing_rows() {
            continue;
        }
        let Some(rel) = populated_target(&at.table, facts) else {
            return;
        };
        let c = quote_ident(&col.name);
        let ty = &col.type_name.display;
        out.push(Finding {
            unused: None,
            rule: RuleId::AddColumnNotNull,
            message: format!(
                "ADD COLUMN {c} NOT NULL without a DEFAULT fails on {} {}, which holds data",
                rel.kind.noun(),
                rel.display
            ),
            detail: format!(
                "Existing rows would have NULL in {c}: PostgreSQL takes an ACCESS EXCLUSIVE lock on {}, \
                 blocking all reads and writes, and the statement then fails with \"column contains null values\".",
                rel.described()
            ),
            safe_way: format!(
                "Give existing rows a value with a constant default (no rewrite since PostgreSQL 11): \
                 ALTER TABLE {t} ADD COLUMN {c} {ty} NOT NULL DEFAULT <value>; or add it nullable \
                 (ALTER TABLE {t} ADD COLUMN {c} {ty};), backfill it in batches, then add NOT NULL without \
                 a long lock (see rule set-not-null).",
                t = rel.display
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

    fn add(name: &str, not_null: bool, default: bool, serial: bool, identity: bool) -> AlterCmd {
        AlterCmd::AddColumn(ColumnDef {
            name: name.to_owned(),
            type_name: TypeRef {
                display: "text".into(),
                resolved: None,
                serial,
                constrained_domain: None,
            },
            not_null,
            default: default.then_some(Expr {
                volatility: Some(Volatility::Immutable),
                calls: vec![],
            }),
            identity,
            generated_stored: None,
            generated_virtual: None,
            if_not_exists: false,
            constraints: vec![],
        })
    }

    fn run(cmds: Vec<AlterCmd>, f: &FakeFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        check(&stmt("ALTER TABLE", "", alter("t", cmds)), f, &mut out);
        out
    }

    #[test]
    fn blocks_not_null_without_default() {
        let f = FakeFacts::default().with("t", FakeFacts::table("t"));
        let got = run(vec![add("Plan", true, false, false, false)], &f);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].message.starts_with("ADD COLUMN \"Plan\" NOT NULL"),
            "{}",
            got[0].message
        );
        assert!(
            got[0]
                .safe_way
                .contains("ALTER TABLE public.t ADD COLUMN \"Plan\" text NOT NULL DEFAULT <value>")
        );
    }

    #[test]
    fn passes_default_identity_serial_nullable_and_exempt_tables() {
        let f = FakeFacts::default().with("t", FakeFacts::table("t"));
        assert!(run(vec![add("a", true, true, false, false)], &f).is_empty());
        assert!(run(vec![add("a", true, false, true, false)], &f).is_empty());
        assert!(run(vec![add("a", true, false, false, true)], &f).is_empty());
        assert!(run(vec![add("a", false, false, false, false)], &f).is_empty());
        let mut empty = FakeFacts::table("t");
        empty.set_empty();
        let f = FakeFacts::default().with("t", empty);
        assert!(run(vec![add("a", true, false, false, false)], &f).is_empty());
    }
}
