//! `column-type-rewrite`: `ALTER COLUMN … TYPE` that PostgreSQL cannot do in place rewrites the
//! table and rebuilds its indexes under ACCESS EXCLUSIVE. Whether it can is decided the way
//! PostgreSQL decides it (`ATColumnChangeRequiresRewrite`), from the catalog.

use super::{Finding, RuleId, backfill_call, existing_target};
use crate::facts::{Facts, RelKind, Stored};
use crate::model::{AlterCmd, Command, Statement, Using};
use crate::sqltext::{quote_ident, quote_literal};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let AlterCmd::AlterType {
            column,
            new_type,
            using,
            collation,
        } = cmd
        else {
            continue;
        };
        // The table, or the first populated inheritance child it recurses to (a type change
        // always reaches them: ONLY is refused).
        let Some(table) = existing_target(&at.table, facts).map(|t| facts.with_storage(t)) else {
            return;
        };
        let via = (!table.has_data()).then(|| table.display.clone());
        let rel = if via.is_none() {
            table
        } else {
            match facts.inheritance_children(&table).into_iter().find(|c| c.has_data()) {
                Some(child) => child,
                None => return,
            }
        };
        let via = via
            .map(|parent| format!(" (ALTER TABLE {parent} changes the column in its inheritance children too)"))
            .unwrap_or_default();
        let rewrites = match using {
            Using::Expression => Some(true),
            Using::Column => new_type
                .resolved
                .and_then(|to| facts.type_change_rewrites(&rel, column, to)),
        };
        // In place: still judged by what PostgreSQL rebuilds and re-checks.
        if rewrites == Some(false) {
            if let Some(to) = new_type.resolved {
                let again = facts.type_change_rechecks(&rel, column, to, collation.as_deref());
                if !again.is_empty() {
                    out.push(in_place_finding(&rel, column, new_type, &again, facts));
                }
            }
            continue;
        }
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
            unused: None,
            rule: RuleId::ColumnTypeRewrite,
            message: format!(
                "ALTER COLUMN {c} TYPE {new} rewrites the whole {} {t} under an ACCESS EXCLUSIVE lock",
                rel.kind.noun()
            ),
            detail: format!(
                "Changing {c} from {old} to {new}{how} makes PostgreSQL write a new copy of every row of {}{via} \
                 and rebuild its indexes; every read and write of the table waits until it is done.",
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
/// A type change PostgreSQL makes in place that still reads every row under ACCESS EXCLUSIVE: an
/// index it cannot reuse is built again, a CHECK constraint is validated again.
fn in_place_finding(
    rel: &Stored,
    column: &str,
    new_type: &crate::model::TypeRef,
    again: &crate::facts::Rechecks,
    facts: &dyn Facts,
) -> Finding {
    let (t, c, new) = (&rel.display, quote_ident(column), &new_type.display);
    let old = facts
        .column(rel, column)
        .map(|c| c.type_display)
        .unwrap_or_else(|| "its type".to_owned());
    let mut what = Vec::new();
    for (index, why) in &again.indexes {
        what.push(format!("rebuilds index {index} ({why})"));
    }
    for check in &again.checks {
        what.push(format!(
            "re-checks CHECK constraint {} on every row",
            quote_ident(check)
        ));
    }
    let what = what.join(" and ");
    Finding {
        unused: None,
        rule: RuleId::ColumnTypeRewrite,
        message: format!(
            "ALTER COLUMN {c} TYPE {new} rewrites no row of {} {t}, but {what} under an ACCESS EXCLUSIVE lock",
            rel.kind.noun()
        ),
        detail: format!(
            "Changing {c} from {old} to {new} needs no new copy of the rows, but PostgreSQL drops and re-creates what \
             depends on the column: it reads every row of {} while every read and write of the table waits.",
            rel.described()
        ),
        safe_way: if rel.kind == RelKind::Table {
            format!(
                "Let the database do expand, migrate, contract: SELECT migrate_guard.expand_column({}, {}, new_type => \
                 {}); adds a new column that a trigger keeps in step with {c}, and gives the CREATE INDEX CONCURRENTLY \
                 statements for its indexes; CALL migrate_guard.backfill_expansion(<id>); SELECT \
                 migrate_guard.contract(<id>); swaps it in under the name {c}. Or, for an index only: build the new \
                 one first with CREATE INDEX CONCURRENTLY, drop the old one with DROP INDEX CONCURRENTLY.",
                quote_literal(t),
                quote_literal(column),
                quote_literal(new),
            )
        } else {
            "Build what depends on the column again without blocking first (CREATE INDEX CONCURRENTLY; a CHECK \
             constraint as NOT VALID, then VALIDATE), then change the type when nothing left needs a rebuild."
                .to_owned()
        },
    }
}

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
            collation: None,
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
    fn an_empty_parent_is_judged_by_its_populated_inheritance_children() {
        let mut parent = FakeFacts::table("t");
        parent.set_empty();
        let mut child = FakeFacts::table("kid");
        child.oid += 1;
        let mut f = FakeFacts::default().with("t", parent).with("kid", child);
        f.type_changes = vec![("a".into(), 20, true)];
        assert!(run(alter_type("a", 20, Using::Column), &f).is_empty());
        f.children = vec![("t".into(), "kid".into())];
        let got = run(alter_type("a", 20, Using::Column), &f);
        assert_eq!(got.len(), 1);
        assert!(got[0].message.contains("table public.kid"), "{}", got[0].message);
        assert!(
            got[0]
                .detail
                .contains("ALTER TABLE public.t changes the column in its inheritance children")
        );
    }

    #[test]
    fn a_using_expression_always_rewrites() {
        let mut f = FakeFacts::default().with("t", FakeFacts::table("t"));
        f.type_changes = vec![("b".into(), 25, false)];
        let got = run(alter_type("b", 25, Using::Expression), &f);
        assert!(got[0].detail.contains("with a USING expression"));
    }

    #[test]
    fn in_place_changes_that_rebuild_an_index_or_recheck_are_blocked() {
        let mut f = FakeFacts::default().with("t", FakeFacts::table("t"));
        f.type_changes = vec![("b".into(), 25, false), ("c".into(), 25, false)];
        f.rechecks = vec![(
            "b".into(),
            crate::facts::Rechecks {
                indexes: vec![("t_b_idx".into(), "its collation changes")],
                checks: vec!["b_short".into()],
            },
        )];
        let got = run(alter_type("b", 25, Using::Column), &f);
        assert_eq!(got.len(), 1);
        assert!(got[0].message.contains("rewrites no row"), "{}", got[0].message);
        assert!(
            got[0]
                .message
                .contains("rebuilds index t_b_idx (its collation changes)")
        );
        assert!(got[0].message.contains("re-checks CHECK constraint b_short"));
        // nothing depends on c: in place, nothing read
        assert!(run(alter_type("c", 25, Using::Column), &f).is_empty());
    }

    #[test]
    fn empty_tables_pass() {
        let mut e = FakeFacts::table("t");
        e.set_empty();
        let f = FakeFacts::default().with("t", e);
        assert!(run(alter_type("a", 20, Using::Expression), &f).is_empty());
    }
}
