//! `rename-table`: renaming a table, view or materialized view is quick for PostgreSQL, but every
//! running client that still uses the old name fails from the moment the rename commits.

use super::{Finding, RuleId, existing_target};
use crate::facts::{Facts, RelKind, Stored};
use crate::model::{Command, ObjectKind, Statement};
use crate::sqltext::{quote_ident, quote_literal};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Rename(r) = &stmt.command else { return };
    if !matches!(r.what, ObjectKind::Table | ObjectKind::View | ObjectKind::MatView) {
        return;
    }
    let Some(rel) = existing_target(&r.target, facts).filter(|rel| {
        matches!(
            rel.kind,
            RelKind::Table | RelKind::PartitionedTable | RelKind::View | RelKind::MatView
        )
    }) else {
        return;
    };
    let rel = facts.with_storage(rel);
    if let Some(schema) = &r.new_schema {
        // Into the schema it is in: PostgreSQL refuses the statement itself.
        if *schema != rel.schema {
            let mut f = moved(&rel, schema);
            f.detail = super::with_evidence(
                f.detail,
                &facts.usage(&rel, None),
                &format!("{} {}", rel.kind.noun(), rel.display),
            );
            out.push(f);
        }
        return;
    }
    let old = &rel.display;
    let new_bare = quote_ident(&r.new_name);
    let new = rel.sibling(&r.new_name);
    let noun = rel.kind.noun();
    let safe_way = match rel.kind {
        RelKind::Table | RelKind::PartitionedTable => format!(
            "Let the database do expand, migrate, contract: SELECT migrate_guard.expand_rename_table({}, {}); renames \
             it and leaves an updatable view under the old name in one short transaction; move clients to {new}, \
             then SELECT migrate_guard.contract(<id>); drops the view.",
            quote_literal(old),
            quote_literal(&r.new_name)
        ),
        RelKind::MatView => format!(
            "Expand, migrate, contract: create the new one beside it (CREATE MATERIALIZED VIEW {new} AS <same query>), \
             move clients to {new}, then drop {old}."
        ),
        _ => format!(
            "Expand, migrate, contract: create the view under the new name too (CREATE VIEW {new} AS SELECT * FROM {old}), \
             move clients to {new}, then drop {old} and recreate {new} with the original query."
        ),
    };
    out.push(Finding {
        unused: None,
        rule: RuleId::RenameTable,
        message: format!("renaming {noun} {old} to {new_bare} breaks clients that still use the old name"),
        detail: super::with_evidence(
            format!(
                "The rename itself is quick: a brief ACCESS EXCLUSIVE lock on {} and no scan. But from its \
                 commit every application query that names {old} fails until the application is redeployed.",
                rel.described()
            ),
            &facts.usage(&rel, None),
            &format!("{noun} {old}"),
        ),
        safe_way,
    });
}

/// `ALTER TABLE … SET SCHEMA`: the relation keeps its name in another schema, so every client
/// that names it (qualified, or through a search_path without the new schema) fails.
fn moved(rel: &Stored, schema: &str) -> Finding {
    let old = &rel.display;
    let new = format!("{}.{}", quote_ident(schema), quote_ident(&rel.name));
    let noun = rel.kind.noun();
    let view = match rel.kind {
        RelKind::Table | RelKind::PartitionedTable | RelKind::View => format!(
            "Move it and leave a view under the old name in the same short transaction, so that clients keep working \
             (a view of one table is updatable): BEGIN; SET LOCAL migrate_guard.allow = 'rename-table'; ALTER {} {old} \
             SET SCHEMA {}; CREATE VIEW {old} AS SELECT * FROM {new}; COMMIT; move clients to {new}, then DROP VIEW {old};",
            if rel.kind == RelKind::View { "VIEW" } else { "TABLE" },
            quote_ident(schema)
        ),
        _ => format!(
            "Expand, migrate, contract: create the new one as {new} beside it, move clients to {new}, then drop {old}."
        ),
    };
    Finding {
        unused: None,
        rule: RuleId::RenameTable,
        message: format!(
            "moving {noun} {old} to schema {} breaks clients that still use the old name",
            quote_ident(schema)
        ),
        detail: format!(
            "SET SCHEMA itself is quick: a brief ACCESS EXCLUSIVE lock on {} and no scan. But from its commit every \
             application query that names {old}, or finds it through a search_path without schema {}, fails until the \
             application is redeployed.",
            rel.described(),
            quote_ident(schema)
        ),
        safe_way: view,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    #[test]
    fn set_schema_is_judged_as_a_rename() {
        let f = FakeFacts::default().with("t", FakeFacts::table("t"));
        let s = stmt(
            "ALTER TABLE",
            "",
            Command::Rename(Rename {
                what: ObjectKind::Table,
                target: rel("t"),
                column: None,
                new_name: "t".into(),
                new_schema: Some("archive".into()),
            }),
        );
        let mut out = Vec::new();
        check(&s, &f, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].message,
            "moving table public.t to schema archive breaks clients that still use the old name"
        );
        assert!(
            out[0]
                .safe_way
                .contains("CREATE VIEW public.t AS SELECT * FROM archive.t"),
            "{}",
            out[0].safe_way
        );
    }

    fn rename(what: ObjectKind, table: &str, new: &str) -> Statement {
        stmt(
            "ALTER TABLE",
            "",
            Command::Rename(Rename {
                what,
                target: rel(table),
                column: None,
                new_name: new.into(),
                new_schema: None,
            }),
        )
    }

    #[test]
    fn blocks_tables_views_and_matviews() {
        let mut v = FakeFacts::table("v");
        v.kind = RelKind::View;
        let mut mv = FakeFacts::table("mv");
        mv.kind = RelKind::MatView;
        let f = FakeFacts::default()
            .with("t", FakeFacts::table("t"))
            .with("v", v)
            .with("mv", mv);
        let mut out = Vec::new();
        check(&rename(ObjectKind::Table, "t", "users"), &f, &mut out);
        check(&rename(ObjectKind::View, "v", "v2"), &f, &mut out);
        check(&rename(ObjectKind::MatView, "mv", "mv2"), &f, &mut out);
        assert_eq!(out.len(), 3);
        assert!(
            out[0]
                .safe_way
                .contains("SELECT migrate_guard.expand_rename_table('public.t', 'users');"),
            "{}",
            out[0].safe_way
        );
        assert!(out[1].message.starts_with("renaming view public.v"));
        assert!(out[2].message.starts_with("renaming materialized view public.mv"));
    }

    #[test]
    fn passes_new_temp_and_other_objects() {
        let mut n = FakeFacts::table("n");
        n.new_in_xact = true;
        let mut seq = FakeFacts::table("s");
        seq.kind = RelKind::Sequence;
        let f = FakeFacts::default()
            .with("n", n)
            .with("s", seq)
            .with("t", FakeFacts::table("t"));
        let mut out = Vec::new();
        check(&rename(ObjectKind::Table, "n", "x"), &f, &mut out);
        check(&rename(ObjectKind::Table, "s", "x"), &f, &mut out);
        // ALTER INDEX … RENAME names an existing, populated relation here: still not this rule's.
        check(&rename(ObjectKind::Index, "t", "x"), &f, &mut out);
        assert!(out.is_empty());
    }
}
