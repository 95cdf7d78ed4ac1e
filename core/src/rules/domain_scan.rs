//! `domain-scan`: `ALTER DOMAIN … ADD CONSTRAINT` without `NOT VALID`, `ALTER DOMAIN … SET NOT
//! NULL` and `ALTER DOMAIN … VALIDATE CONSTRAINT` check every stored value of the domain: every
//! column of that domain (or of a domain over it) in every table, each table read under a SHARE
//! lock, so writes to all of them wait. Judged by the tables that use the domain.

use super::{Finding, RuleId};
use crate::facts::Facts;
use crate::model::{Command, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterDomain {
        domain,
        scan: Some(what),
    } = &stmt.command
    else {
        return;
    };
    let users = facts.domain_columns(domain);
    let Some((first, column)) = users.first() else {
        return;
    };
    let name = crate::sqltext::quote_qualified(domain);
    let more = match users.len() {
        1 => String::new(),
        n => format!(" and {} other table{}", n - 1, if n == 2 { "" } else { "s" }),
    };
    let tables: Vec<String> = users
        .iter()
        .take(5)
        .map(|(r, c)| format!("{}.{}", r.display, quote_ident(c)))
        .collect();
    let safe_way = if what.starts_with("VALIDATE") {
        "Validating a domain constraint always scans under SHARE locks (unlike a table's VALIDATE CONSTRAINT): check \
             the stored values yourself with a plain query that takes no lock beyond reads (SELECT … WHERE NOT (<the \
             check>)), fix what it finds, and leave the constraint NOT VALID (new and updated values are checked \
             already), or validate it at a quiet time."
            .to_owned()
    } else {
        format!(
            "Add it without the scan: ALTER DOMAIN {name} ADD CONSTRAINT <name> CHECK (…) NOT VALID; (instant: new and \
             updated values are checked from then on), check the stored values with a plain query (SELECT … WHERE NOT \
             (…)) and fix them; validating it later scans under SHARE locks again, so leave it NOT VALID or validate at a \
             quiet time.{}",
            if what.contains("NOT NULL") {
                " For NOT NULL, use CHECK (VALUE IS NOT NULL) NOT VALID."
            } else {
                ""
            }
        )
    };
    out.push(Finding {
        unused: None,
        rule: RuleId::DomainScan,
        message: format!(
            "ALTER DOMAIN {name} {what} reads every value of the domain in {}{more} under SHARE locks",
            first.display
        ),
        detail: format!(
            "PostgreSQL checks every stored value of domain {name} in every table that uses it, holding a SHARE lock on \
             each (every INSERT, UPDATE and DELETE on them waits) until the scan is done: {} ({}, column {}){}.",
            tables.join(", "),
            first.measured(),
            quote_ident(column),
            if users.len() > 5 { ", …" } else { "" }
        ),
        safe_way,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::rules::testing::*;

    fn alter_domain(scan: Option<&str>) -> Statement {
        stmt(
            "ALTER DOMAIN",
            "",
            Command::AlterDomain {
                domain: vec!["email".into()],
                scan: scan.map(Into::into),
            },
        )
    }

    #[test]
    fn judged_by_the_tables_that_use_the_domain() {
        let mut f = FakeFacts::default()
            .with("accounts", FakeFacts::table("accounts"))
            .with("contacts", FakeFacts::table("contacts"));
        f.domain_users = vec![
            ("email".into(), "accounts".into(), "email".into()),
            ("email".into(), "contacts".into(), "address".into()),
        ];
        let mut out = Vec::new();
        check(&alter_domain(Some("ADD CONSTRAINT … CHECK")), &f, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].message,
            "ALTER DOMAIN email ADD CONSTRAINT … CHECK reads every value of the domain in public.accounts and 1 other table under SHARE locks"
        );
        assert!(out[0].detail.contains("public.contacts.address"), "{}", out[0].detail);
        let mut out = Vec::new();
        check(&alter_domain(None), &f, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn an_unused_domain_passes() {
        let mut out = Vec::new();
        check(&alter_domain(Some("SET NOT NULL")), &FakeFacts::default(), &mut out);
        assert!(out.is_empty());
    }
}
