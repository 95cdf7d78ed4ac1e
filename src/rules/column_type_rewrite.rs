//! `column-type-rewrite`: `ALTER COLUMN … TYPE` that PostgreSQL cannot do in place rewrites the
//! table and rebuilds its indexes under ACCESS EXCLUSIVE. Whether it can is decided the way
//! PostgreSQL decides it (`ATColumnChangeRequiresRewrite`), from the catalog.

use super::{Finding, RuleId, backfill_call, populated_target};
use crate::facts::{Facts, RelKind};
use crate::model::{AlterCmd, Command, Statement, Using};
use crate::sqltext::{quote_ident, quote_literal};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let AlterCmd::AlterType {
            column,
            new_type,
            using,
        } = cmd
        else {
            continue;
        };
        let Some(rel) = populated_target(&at.table, facts) else {
            return;
        };
        let rewrites = match using {
            Using::Expression => Some(true),
            Using::Column => new_type
                .resolved
                .and_then(|to| facts.type_change_rewrites(&rel, column, to)),
        };
        // Unknown (no such column, no cast): PostgreSQL reports it; the rewrite backstop covers the rest.
        if rewrites != Some(true) {
            continue;
        }
        let (t, c, new) = (&rel.display, quote_ident(column), &new_type.display);
        let old = facts
            .column(&rel, column)
            .map(|c| c.type_display)
            .unwrap_or_else(|| "its type".to_owned());
        let how = if *using == Using::Expression {
            " with a USING expression"
        } else {
            ""
        };
        let tmp = quote_ident(&format!("{column}_new"));
        out.push(Finding {
            rule: RuleId::ColumnTypeRewrite,
            message: format!(
                "ALTER COLUMN {c} TYPE {new} rewrites the whole {} {t} under an ACCESS EXCLUSIVE lock",
                rel.kind.noun()
            ),
            detail: format!(
                "Changing {c} from {old} to {new}{how} makes PostgreSQL write a new copy of every row of {} and \
                 rebuild its indexes; every read and write of the table waits until it is done.",
                rel.described()
            ),
            safe_way: if rel.kind == RelKind::Table {
                format!(
                    "Let the database do expand, migrate, contract: SELECT migrate_guard.expand_column({}, {}, \
                     new_type => {}{}); adds a new column that a trigger keeps in step with {c}; CALL \
                     migrate_guard.backfill_expansion(<id>); fills the existing rows; SELECT migrate_guard.contract(<id>); \
                     swaps it in under the name {c} in one short transaction, with its indexes, constraints, default \
                     and sequence. {NO_REWRITE}",
                    quote_literal(t),
                    quote_literal(column),
                    quote_literal(new),
                    if *using == Using::Expression {
                        ", using_expr => '<the USING expression>'"
                    } else {
                        ""
                    }
                )
            } else {
                format!(
                    "Expand, migrate, contract: ALTER TABLE {t} ADD COLUMN {tmp} {new}; keep it in step with {c} (a \
                     trigger or the application), backfill it in batches ({}), move readers to it, then drop {c}. \
                     {NO_REWRITE}",
                    backfill_call(t, &format!("{tmp} = {c}::{new}"), &format!("{tmp} IS NULL"))
                )
            },
        });
    }
}

/// The type changes that pass the guard.
const NO_REWRITE: &str = "Changes PostgreSQL makes without a rewrite pass the guard: varchar(n) to varchar(m >= n) or \
                          text, numeric(p,s) to numeric(p' >= p,s), dropping a length limit.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn alter_type(col: &str, to: u32, using: Using) -> AlterCmd {
        AlterCmd::AlterType {
            column: col.into(),
            new_type: TypeRef {
                display: format!("type{to}"),
                resolved: Some((to, -1)),
                serial: false,
                constrained_domain: None,
            },
            using,
        }
    }

    fn run(cmd: AlterCmd, f: &FakeFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        check(&stmt("ALTER TABLE", "", alter("t", vec![cmd])), f, &mut out);
        out
    }

    #[test]
    fn follows_the_catalog_decision() {
        let mut f = FakeFacts::default().with("t", FakeFacts::table("t"));
        f.type_changes = vec![("a".into(), 20, true), ("b".into(), 25, false)];
        assert_eq!(run(alter_type("a", 20, Using::Column), &f).len(), 1);
        assert!(run(alter_type("b", 25, Using::Column), &f).is_empty());
        // unknown: left to PostgreSQL and the backstop
        assert!(run(alter_type("zzz", 25, Using::Column), &f).is_empty());
    }

    #[test]
    fn a_using_expression_always_rewrites() {
        let mut f = FakeFacts::default().with("t", FakeFacts::table("t"));
        f.type_changes = vec![("b".into(), 25, false)];
        let got = run(alter_type("b", 25, Using::Expression), &f);
        assert!(got[0].detail.contains("with a USING expression"));
    }

    #[test]
    fn empty_tables_pass() {
        let mut e = FakeFacts::table("t");
        e.set_empty();
        let f = FakeFacts::default().with("t", e);
        assert!(run(alter_type("a", 20, Using::Expression), &f).is_empty());
    }
}
