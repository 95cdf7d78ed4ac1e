//! `rename-column`: renaming a column is quick for PostgreSQL, but every running client that
//! still names the old column fails from the moment the rename commits.

use super::{Finding, RuleId, existing_target};
use crate::facts::{Facts, RelKind};
use crate::model::{Command, ObjectKind, Statement};
use crate::sqltext::{quote_ident, quote_literal};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Rename(r) = &stmt.command else { return };
    if r.what != ObjectKind::Column {
        return;
    }
    let Some(column) = &r.column else { return };
    let Some(rel) = existing_target(&r.target, facts) else {
        return;
    };
    let rel = facts.with_storage(rel);
    let (old, new) = (quote_ident(column), quote_ident(&r.new_name));
    let t = &rel.display;
    let safe_way = match rel.kind {
        RelKind::View => format!(
            "Expand, migrate, contract: add the new name as an extra output column at the end of the view \
             (CREATE OR REPLACE VIEW {t} AS SELECT ..., {old} AS {new}), move clients to {new}, then recreate the \
             view without {old}."
        ),
        RelKind::MatView => format!(
            "Expand, migrate, contract: create a new materialized view that has both {old} and {new}, move clients \
             to it, then drop the old one."
        ),
        RelKind::Table => format!(
            "Let the database do expand, migrate, contract: SELECT migrate_guard.expand_column({}, {}, new_name => {}); \
             adds {new} and keeps both names in step whichever one a client writes; CALL \
             migrate_guard.backfill_expansion(<id>); fills the existing rows; once every client uses {new}, SELECT \
             migrate_guard.contract(<id>); drops {old}.",
            quote_literal(t),
            quote_literal(column),
            quote_literal(&r.new_name)
        ),
        _ => {
            let ty = facts
                .column(&rel, column)
                .map(|c| c.type_display)
                .unwrap_or_else(|| "<type>".to_owned());
            format!(
                "Expand, migrate, contract: ALTER TABLE {t} ADD COLUMN {new} {ty}; keep both columns in step \
                 (application writes or a trigger) and backfill {new} in batches; move every reader to {new}; \
                 drop {old} once nothing uses it."
            )
        }
    };
    out.push(Finding {
        unused: None,
        rule: RuleId::RenameColumn,
        message: format!(
            "renaming column {old} of {} {t} to {new} breaks clients that still use the old name",
            rel.kind.noun()
        ),
        detail: super::with_evidence(
            format!(
                "The rename itself is quick: a brief ACCESS EXCLUSIVE lock on {} and no scan. But from its \
                 commit every application query that names {old} fails until the application is redeployed.",
                rel.described()
            ),
            &facts.usage(&rel, Some(column)),
            &format!("column {old}"),
        ),
        safe_way,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn rename(table: &str, col: &str, new: &str) -> Statement {
        stmt(
            "ALTER TABLE",
            "",
            Command::Rename(Rename {
                what: ObjectKind::Column,
                target: rel(table),
                column: Some(col.into()),
                new_name: new.into(),
                new_schema: None,
            }),
        )
    }

    #[test]
    fn blocks_existing_tables_whatever_their_size() {
        let mut t = FakeFacts::table("t");
        t.set_empty();
        let f = FakeFacts::default().with("t", t);
        let mut out = Vec::new();
        check(&rename("t", "email", "Email Address"), &f, &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            out[0]
                .message
                .contains("column email of table public.t to \"Email Address\""),
            "{}",
            out[0].message
        );
        assert!(
            out[0]
                .safe_way
                .contains("SELECT migrate_guard.expand_column('public.t', 'email', new_name => 'Email Address');"),
            "{}",
            out[0].safe_way
        );
    }

    #[test]
    fn views_get_a_view_shaped_hint() {
        let mut v = FakeFacts::table("v");
        v.kind = RelKind::View;
        let f = FakeFacts::default().with("v", v);
        let mut out = Vec::new();
        check(&rename("v", "email", "mail"), &f, &mut out);
        assert!(
            out[0]
                .safe_way
                .contains("CREATE OR REPLACE VIEW public.v AS SELECT ..., email AS mail"),
            "{}",
            out[0].safe_way
        );
    }

    #[test]
    fn passes_new_and_temp_tables() {
        let mut n = FakeFacts::table("n");
        n.new_in_xact = true;
        let mut tmp = FakeFacts::table("tmp");
        tmp.temp = true;
        let f = FakeFacts::default().with("n", n).with("tmp", tmp);
        let mut out = Vec::new();
        check(&rename("n", "a", "b"), &f, &mut out);
        check(&rename("tmp", "a", "b"), &f, &mut out);
        check(&rename("missing", "a", "b"), &f, &mut out);
        assert!(out.is_empty());
    }
}
