//! `drop-column`: the contract step of expand → migrate → contract. Quick for PostgreSQL, but
//! every client that still names the column (or caches the column list) fails from the commit
//! on, so on an existing table it always needs an explicit allow.

use super::{Finding, RuleId, existing_target};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let AlterCmd::DropColumn { column, .. } = cmd else {
            continue;
        };
        let Some(rel) = existing_target(&at.table, facts) else {
            return;
        };
        // A missing column is PostgreSQL's to report (or skip, with IF EXISTS).
        if facts.column(&rel, column).is_none() {
            continue;
        }
        let rel = facts.with_storage(rel);
        let (t, c) = (&rel.display, quote_ident(column));
        // What usage tracking saw: no query within the window lets the drop pass on evidence.
        let usage = facts.usage(&rel, Some(column));
        let evidence = usage.sentence(&format!("column {c}"));
        out.push(Finding {
            unused: usage.is_unused().then(|| evidence.clone()),
            rule: RuleId::DropColumn,
            message: format!(
                "dropping column {c} of {} {t} breaks clients that still use it",
                rel.kind.noun()
            ),
            detail: format!(
                "The drop itself is quick (a brief ACCESS EXCLUSIVE lock on {}, no rewrite), but from its commit every \
                 query that names {c} fails, and so does an ORM that cached the column list until it reloads. {evidence}",
                rel.described()
            ),
            safe_way: format!(
                "This is the contract step of expand, migrate, contract: first deploy application code that no \
                 longer reads or writes {c} (ORMs: mark the column ignored), then drop it on purpose."
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Column, FakeFacts};
    use crate::rules::testing::*;

    #[test]
    fn blocks_existing_columns_of_existing_tables() {
        let mut t = FakeFacts::table("t");
        t.set_empty();
        let col = Column {
            name: "legacy".into(),
            not_null: false,
            not_null_proven_by: None,
            type_display: "text".into(),
            generated: None,
        };
        let f = FakeFacts::default().with("t", t.clone()).with_column(&t, col);
        let mut out = Vec::new();
        let drop = |c: &str| AlterCmd::DropColumn { column: c.into() };
        check(&stmt("ALTER TABLE", "", alter("t", vec![drop("legacy")])), &f, &mut out);
        assert_eq!(out.len(), 1);
        check(&stmt("ALTER TABLE", "", alter("t", vec![drop("nope")])), &f, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn usage_evidence_lets_unused_columns_pass_and_names_the_users_of_used_ones() {
        use crate::evidence::{Seen, Tracking, Usage};
        const S: i64 = 1_000_000;
        let on = Tracking::On {
            since: 0,
            began: "started".into(),
            full: false,
        };
        let now = 10 * 86_400 * S;
        let t = FakeFacts::table("t");
        let col = Column {
            name: "username".into(),
            not_null: false,
            not_null_proven_by: None,
            type_display: "text".into(),
            generated: None,
        };
        let facts = |u: Option<Usage>| {
            let f = FakeFacts::default().with("t", t.clone()).with_column(&t, col.clone());
            match u {
                Some(u) => f.with_usage(u),
                None => f,
            }
        };
        let run = |f: &FakeFacts| {
            let mut out = Vec::new();
            let drop = AlterCmd::DropColumn {
                column: "username".into(),
            };
            check(&stmt("ALTER TABLE", "", alter("t", vec![drop])), f, &mut out);
            assert_eq!(out.len(), 1);
            out.remove(0)
        };
        let none = run(&facts(None));
        assert_eq!(none.unused, None);
        assert!(
            none.detail.contains("No usage evidence for column username"),
            "{}",
            none.detail
        );
        let seen = Seen {
            last_write: Some(now - 30 * S),
            writes: 12,
            users: vec!["old_app (billing)".into()],
            ..Seen::default()
        };
        let used = run(&facts(Some(Usage::judge(&on, Some(seen), now, 86_400))));
        assert_eq!(used.unused, None);
        assert!(
            used.detail.contains("old_app (billing)") && used.detail.contains("12 writes"),
            "{}",
            used.detail
        );
        let unused = run(&facts(Some(Usage::judge(&on, None, now, 86_400))));
        assert!(
            unused
                .unused
                .as_deref()
                .is_some_and(|u| u.contains("since tracking began")),
            "{:?}",
            unused.unused
        );
        let young = Tracking::On {
            since: now - 3600 * S,
            began: "started".into(),
            full: false,
        };
        let young = run(&facts(Some(Usage::judge(&young, None, now, 86_400))));
        assert_eq!(young.unused, None);
        assert!(young.detail.contains("less than the usage window"), "{}", young.detail);
    }
}
