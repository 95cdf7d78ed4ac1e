//! `publication-identity`: a table without a replica identity (no primary key and REPLICA
//! IDENTITY DEFAULT, or REPLICA IDENTITY NOTHING) that a publication publishing UPDATE or DELETE
//! starts to include: from the commit on, PostgreSQL refuses every UPDATE and DELETE on it
//! ("cannot update table … because it does not have a replica identity and publishes updates").
//! That breaks the application as surely as a rename. Judged by the catalog's replica
//! identities, for the tables named, their partitions and inheritance children, and for `FOR ALL
//! TABLES` every table it would publish.

use super::{Finding, RuleId, existing_target};
use crate::facts::{Facts, Rel};
use crate::model::{Command, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Publication(p) = &stmt.command else {
        return;
    };
    // CREATE says what it publishes (all of it by default); ALTER keeps the publication's.
    let publishes = p
        .publishes_changes
        .or_else(|| facts.publication_publishes_changes(&p.name))
        .unwrap_or(true);
    if !publishes {
        return;
    }
    let mut broken: Vec<(Rel, &'static str)> = Vec::new();
    if p.all_tables {
        broken.extend(facts.without_replica_identity(None));
    }
    // TABLES IN SCHEMA: every table of those schemas.
    if !p.schemas.is_empty() {
        let names: Vec<String> = p.schemas.iter().flatten().cloned().collect();
        broken.extend(
            facts
                .without_replica_identity(None)
                .into_iter()
                .filter(|(r, _)| names.contains(&r.schema)),
        );
    }
    // ALTER PUBLICATION … SET (publish = '… update …') of one that published none: every table
    // it already has.
    if !p.create && p.publishes_changes == Some(true) && facts.publication_publishes_changes(&p.name) == Some(false) {
        for rel in facts.publication_tables(&p.name) {
            broken.extend(facts.without_replica_identity(Some(&rel)));
        }
    }
    for (i, t) in p.tables.iter().enumerate() {
        if let Some(rel) = existing_target(t, facts) {
            broken.extend(facts.without_replica_identity(Some(&rel)));
            if let Some((filter, list)) = p.filters.get(i) {
                outside_identity(p, &rel, filter.as_deref(), list.as_deref(), facts, out);
            }
        }
    }
    broken.retain(|(r, _)| r.existing());
    broken.dedup_by(|a, b| a.0.oid == b.0.oid);
    let Some((first, why)) = broken.first() else {
        return;
    };
    let name = quote_ident(&p.name);
    let verb = if p.create {
        format!("CREATE PUBLICATION {name}")
    } else {
        format!("ALTER PUBLICATION {name}")
    };
    let more = match broken.len() {
        1 => String::new(),
        n => format!(" and {} other table{}", n - 1, if n == 2 { "" } else { "s" }),
    };
    let listed: Vec<String> = broken.iter().take(5).map(|(r, _)| r.display.clone()).collect();
    let t = &first.display;
    out.push(Finding {
        unused: None,
        rule: RuleId::PublicationIdentity,
        message: format!(
            "{verb} makes every UPDATE and DELETE on {} {t}{more} fail",
            first.kind.noun()
        ),
        detail: format!(
            "Publication {name} publishes updates or deletes, and {t} has no replica identity ({why}): from the commit \
             on, PostgreSQL refuses every UPDATE and DELETE on it with \"cannot update table … because it does not \
             have a replica identity and publishes updates\". Tables without one: {}{}.",
            listed.join(", "),
            if broken.len() > 5 { ", …" } else { "" }
        ),
        safe_way: format!(
            "Give it a replica identity first: a primary key (CREATE UNIQUE INDEX CONCURRENTLY <index> ON {t} (<columns>); \
             then ALTER TABLE {t} ADD PRIMARY KEY USING INDEX <index>;), or ALTER TABLE {t} REPLICA IDENTITY USING INDEX \
             <a unique index on NOT NULL columns>; (REPLICA IDENTITY FULL also works, and logs whole rows). Or publish \
             only inserts: WITH (publish = 'insert, truncate')."
        ),
    });
}

/// A row filter that reads a column outside the table's replica identity, or a column list that
/// leaves one of its columns out (15+): PostgreSQL then refuses the table's UPDATE and DELETE as
/// well ("Column used in the publication WHERE expression is not part of the replica identity" /
/// "Column list used by the publication does not cover the replica identity").
fn outside_identity(
    p: &crate::model::Publication,
    rel: &Rel,
    filter: Option<&[String]>,
    list: Option<&[String]>,
    facts: &dyn Facts,
    out: &mut Vec<Finding>,
) {
    let Some(identity) = facts.replica_identity_columns(rel) else {
        return;
    };
    let t = &rel.display;
    let name = quote_ident(&p.name);
    let verb = if p.create {
        "CREATE PUBLICATION"
    } else {
        "ALTER PUBLICATION"
    };
    let outside: Vec<&String> = filter.unwrap_or(&[]).iter().filter(|c| !identity.contains(c)).collect();
    let uncovered: Vec<&String> = list.map_or(vec![], |l| identity.iter().filter(|c| !l.contains(c)).collect());
    let (what, why) = if let Some(c) = outside.first() {
        (
            format!(
                "its row filter reads column {}, outside the replica identity",
                quote_ident(c)
            ),
            "Column used in the publication WHERE expression is not part of the replica identity",
        )
    } else if let Some(c) = uncovered.first() {
        (
            format!(
                "its column list leaves out column {} of the replica identity",
                quote_ident(c)
            ),
            "Column list used by the publication does not cover the replica identity",
        )
    } else {
        return;
    };
    let ident = identity.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    out.push(Finding {
        unused: None,
        rule: RuleId::PublicationIdentity,
        message: format!(
            "{verb} {name} makes every UPDATE and DELETE on {} {t} fail: {what}",
            rel.kind.noun()
        ),
        detail: format!(
            "Publication {name} publishes updates or deletes, and the replica identity of {t} is ({ident}): from the \
             commit on, PostgreSQL refuses every UPDATE and DELETE on it (\"{why}\")."
        ),
        safe_way: format!(
            "Filter only on the replica identity's columns ({ident}) and list all of them, or make the identity \
             cover the column (ALTER TABLE {t} REPLICA IDENTITY FULL, or USING INDEX of a unique index that includes \
             it), or publish only inserts: WITH (publish = 'insert, truncate')."
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::{Publication, RelRef};
    use crate::rules::testing::*;

    fn publication(tables: &[&str], all: bool, publishes: Option<bool>) -> Statement {
        stmt(
            "ALTER PUBLICATION",
            "",
            Command::Publication(Publication {
                name: "pub".into(),
                create: false,
                tables: tables.iter().map(|t| RelRef::new(None, t)).collect(),
                all_tables: all,
                schemas: vec![],
                filters: vec![],
                publishes_changes: publishes,
            }),
        )
    }

    fn run(s: &Statement, f: &FakeFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        check(s, f, &mut out);
        out
    }

    #[test]
    fn row_filters_and_column_lists_outside_the_identity_break_updates() {
        let mut f = FakeFacts::default().with("k", FakeFacts::table("k"));
        f.publications = vec![("pub".into(), true)];
        f.identity_columns = vec![("k".into(), vec!["id".into()])];
        let with = |filter: Option<Vec<&str>>, list: Option<Vec<&str>>| {
            let mut s = publication(&["k"], false, None);
            if let Command::Publication(p) = &mut s.command {
                let own = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
                p.filters = vec![(filter.map(own), list.map(own))];
            }
            run(&s, &f)
        };
        assert!(with(Some(vec!["id"]), Some(vec!["id", "v"])).is_empty());
        let got = with(Some(vec!["v"]), None);
        assert!(
            got[0].message.contains("row filter reads column v"),
            "{}",
            got[0].message
        );
        let got = with(None, Some(vec!["v"]));
        assert!(got[0].message.contains("leaves out column id"), "{}", got[0].message);
        // a filter whose columns could not be read judges nothing
        assert!(with(Some(vec![]), None).is_empty());
    }

    #[test]
    fn a_table_without_identity_breaks_its_updates() {
        let mut f = FakeFacts::default()
            .with("a", FakeFacts::table("a"))
            .with("b", FakeFacts::table("b"));
        f.no_identity = vec!["a".into()];
        f.publications = vec![("pub".into(), true)];
        let got = run(&publication(&["a"], false, None), &f);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].message.contains("UPDATE and DELETE on table public.a fail"),
            "{}",
            got[0].message
        );
        // a table with a replica identity passes
        assert!(run(&publication(&["b"], false, None), &f).is_empty());
        // FOR ALL TABLES reaches it
        assert_eq!(run(&publication(&[], true, Some(true)), &f).len(), 1);
    }

    #[test]
    fn a_publication_of_inserts_only_passes() {
        let mut f = FakeFacts::default().with("a", FakeFacts::table("a"));
        f.no_identity = vec!["a".into()];
        f.publications = vec![("pub".into(), false)];
        assert!(run(&publication(&["a"], false, None), &f).is_empty());
        assert!(run(&publication(&["a"], false, Some(false)), &f).is_empty());
    }
}
