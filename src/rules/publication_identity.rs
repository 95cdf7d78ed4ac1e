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
    for t in &p.tables {
        if let Some(rel) = existing_target(t, facts) {
            broken.extend(facts.without_replica_identity(Some(&rel)));
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
                schemas: false,
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
