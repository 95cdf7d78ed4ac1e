//! Statements that drop or move more than they name, judged by what they really reach (looked
//! up in the catalog before they run): `DROP SCHEMA … CASCADE` and `DROP OWNED BY` drop tables
//! (`drop-table`), `DROP TYPE/DOMAIN … CASCADE` drops the columns of that type (`drop-column`)
//! and the tables typed by it (`drop-table`), `ALTER TABLE/INDEX/MATERIALIZED VIEW ALL IN
//! TABLESPACE … SET TABLESPACE` copies every populated relation it moves (`table-rewrite`).

use super::{Finding, RuleId, listed};
use crate::facts::{Facts, RelKind, Stored};
use crate::model::{Command, Reach, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Reaching { what, reach } = &stmt.command else {
        return;
    };
    let reached = facts.reached(reach);
    if let Reach::TypedBy { attribute, .. } = reach {
        let Some(first) = reached.relations.first() else { return };
        let names: Vec<String> = reached.relations.iter().map(|r| r.display.clone()).collect();
        out.push(Finding {
            unused: None,
            rule: RuleId::RenameColumn,
            message: format!(
                "{what} renames column {} of {} {}: clients that still use it break",
                quote_ident(attribute),
                first.kind.noun(),
                listed(&names)
            ),
            detail: format!(
                "With CASCADE the attribute's rename reaches every table typed by it: column {} of each is renamed, \
                 under an ACCESS EXCLUSIVE lock, and every running query that names it fails from the commit on. \
                 The first: {}.",
                quote_ident(attribute),
                first.described()
            ),
            safe_way: "Typed tables follow their type: give the application a column under the new name first (a \
                       new attribute, filled, used by the new code), and drop the old one once no client uses it; \
                       or rename in a maintenance window with the clients stopped."
                .to_owned(),
        });
        return;
    }
    if let Reach::Tablespace { to, .. } = reach {
        let moved: Vec<&Stored> = reached
            .relations
            .iter()
            .filter(|r| r.has_data())
            .filter(|r| facts.tablespace_oid(to) != r.physical.map(|p| p.tablespace))
            .collect();
        let Some(first) = moved.first() else { return };
        let names: Vec<String> = moved.iter().map(|r| r.display.clone()).collect();
        out.push(Finding {
            unused: None,
            rule: RuleId::TableRewrite,
            message: format!(
                "{what} copies every page of {} relation{} ({}) under ACCESS EXCLUSIVE locks",
                moved.len(),
                if moved.len() == 1 { "" } else { "s" },
                listed(&names)
            ),
            detail: format!(
                "Each relation is locked ACCESS EXCLUSIVE and copied to tablespace {} in turn, and the locks are held \
                 until the transaction ends: every read and write of them waits. The first: {}.",
                quote_ident(to),
                first.described()
            ),
            safe_way: "Move populated tables without the lock: rebuild each into the new tablespace with a tool such \
                       as pg_repack (pg_repack --tablespace), or move them one by one in a maintenance window."
                .to_owned(),
        });
        return;
    }
    let tables: Vec<&Stored> = reached
        .relations
        .iter()
        .filter(|r| matches!(r.kind, RelKind::Table | RelKind::PartitionedTable | RelKind::MatView))
        .collect();
    if let Some(first) = tables.first() {
        let names: Vec<String> = tables.iter().map(|r| r.display.clone()).collect();
        out.push(Finding {
            unused: None,
            rule: RuleId::DropTable,
            message: format!(
                "{what} drops {} existing relation{} with it ({}): their data is destroyed and clients that use them break",
                tables.len(),
                if tables.len() == 1 { "" } else { "s" },
                listed(&names)
            ),
            detail: format!(
                "The statement names no table, but it removes these with everything in them, each under an ACCESS \
                 EXCLUSIVE lock; every query that names them fails from the commit on. The first: {}.",
                first.described()
            ),
            safe_way: "Drop the tables on purpose, one statement each, as contract steps (after making sure nothing \
                       uses them), then the now empty container; or drop it without CASCADE, which refuses while \
                       anything depends on it."
                .to_owned(),
        });
    }
    if let Some((first, column)) = reached.columns.first() {
        let names: Vec<String> = reached
            .columns
            .iter()
            .map(|(r, c)| format!("{}.{}", r.display, quote_ident(c)))
            .collect();
        out.push(Finding {
            unused: None,
            rule: RuleId::DropColumn,
            message: format!(
                "{what} drops {} column{} of existing tables with it ({}): clients that still use them break",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                listed(&names)
            ),
            detail: format!(
                "Every column of the type (or of a domain over it, or an array of it) is dropped, each table under \
                 an ACCESS EXCLUSIVE lock, and every query that names those columns fails from the commit on. The \
                 first: column {} of {}.",
                quote_ident(column),
                first.described()
            ),
            safe_way: "Change or drop those columns on purpose first (contract steps, after the application stopped \
                       using them), then drop the type without CASCADE."
                .to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FakeFacts, Reached};
    use crate::rules::testing::*;

    fn reaching(reach: Reach) -> Statement {
        stmt(
            "DROP SCHEMA",
            "",
            Command::Reaching {
                what: "DROP SCHEMA … CASCADE".into(),
                reach,
            },
        )
    }

    #[test]
    fn judges_what_is_dropped_with_it() {
        let f = FakeFacts {
            reached: Reached {
                relations: vec![FakeFacts::table("a").stored(), FakeFacts::table("b").stored()],
                columns: vec![(FakeFacts::table("c").stored(), "status".into())],
            },
            ..FakeFacts::default()
        };
        let mut out = Vec::new();
        check(&reaching(Reach::Schemas(vec!["app".into()])), &f, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].rule, RuleId::DropTable);
        assert!(
            out[0]
                .message
                .contains("drops 2 existing relations with it (public.a, public.b)"),
            "{}",
            out[0].message
        );
        assert_eq!(out[1].rule, RuleId::DropColumn);
        assert!(out[1].message.contains("public.c.status"));
        let mut out = Vec::new();
        check(
            &reaching(Reach::Schemas(vec!["empty".into()])),
            &FakeFacts::default(),
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn moving_a_tablespace_copies_the_populated_relations() {
        let mut empty = FakeFacts::table("e");
        empty.set_empty();
        let f = FakeFacts {
            reached: Reached {
                relations: vec![FakeFacts::table("a").stored(), empty.stored()],
                columns: vec![],
            },
            ..FakeFacts::default()
        };
        let mut out = Vec::new();
        let reach = Reach::Tablespace {
            from: "pg_default".into(),
            to: "fast".into(),
            kind: crate::model::ObjectKind::Table,
            roles: vec![],
        };
        check(&reaching(reach), &f, &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].message.contains("copies every page of 1 relation (public.a)"),
            "{}",
            out[0].message
        );
    }
}
