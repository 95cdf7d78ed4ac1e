//! `drop-index-in-use`: `DROP INDEX` (concurrently or not) of an index that queries scanned
//! within the usage window. The drop is quick, but every query whose plan used the index falls
//! back to another plan, often a sequential scan, from its commit on. Known only where usage
//! tracking runs (`shared_preload_libraries`); without its evidence the rule says nothing.

use super::{Finding, RuleId};
use crate::evidence::Evidence;
use crate::facts::Facts;
use crate::model::{Command, ObjectKind, Statement};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Drop(d) = &stmt.command else { return };
    if d.kind != ObjectKind::Index {
        return;
    }
    for index in &d.objects {
        let Some(table) = facts.index_table(index).filter(|t| t.existing()) else {
            continue;
        };
        let usage = facts.index_usage(index);
        let Evidence::Used(seen) = &usage.evidence else {
            continue;
        };
        let evidence = usage.sentence(&format!("index {index}"));
        out.push(Finding {
            unused: None,
            rule: RuleId::DropIndexInUse,
            message: format!(
                "dropping index {index} slows the queries that still scan it ({} scan{} recorded)",
                seen.reads,
                if seen.reads == 1 { "" } else { "s" }
            ),
            detail: format!(
                "Queries on {} {} used this index within the usage window; from the commit of the drop they are \
                 planned without it, often as sequential scans of the whole table. {evidence}",
                table.kind.noun(),
                table.display
            ),
            safe_way: format!(
                "Drop it once nothing scans it: look at migrate_guard.usage (SELECT * FROM migrate_guard.usage WHERE \
                 relation = {}::regclass) and at the queries of the clients named here; if a replacement index exists, \
                 check with EXPLAIN that those queries use it first.",
                crate::sqltext::quote_literal(&index.to_string())
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{Seen, Tracking, Usage};
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn drop_index(name: &str) -> Statement {
        stmt(
            "DROP INDEX",
            "",
            Command::Drop(Drop {
                kind: ObjectKind::Index,
                objects: vec![rel(name)],
                concurrent: true,
                cascade: false,
            }),
        )
    }

    #[test]
    fn used_indexes_are_findings_unused_and_unknown_ones_are_not() {
        const S: i64 = 1_000_000;
        let on = Tracking::On {
            since: 0,
            began: "started".into(),
            full: false,
        };
        let seen = |t: i64| Seen {
            last_read: Some(t),
            reads: 7,
            users: vec!["app (web)".into()],
            ..Seen::default()
        };
        let now = 10 * 86_400 * S;
        let used = Usage::judge(&on, Some(seen(now - 60 * S)), now, 86_400);
        let old = Usage::judge(&on, Some(seen(now - 3 * 86_400 * S)), now, 86_400);
        let base = || {
            FakeFacts::default()
                .with("t", FakeFacts::table("t"))
                .with_index("t_i", "t")
        };
        let run = |f: &FakeFacts| {
            let mut out = Vec::new();
            check(&drop_index("t_i"), f, &mut out);
            out
        };
        assert!(run(&base()).is_empty(), "no tracking: no finding");
        let out = run(&base().with_index_usage(used));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, RuleId::DropIndexInUse);
        assert!(out[0].message.contains("7 scans"), "{}", out[0].message);
        assert!(out[0].detail.contains("app (web)"), "{}", out[0].detail);
        assert!(
            run(&base().with_index_usage(old)).is_empty(),
            "unused within the window"
        );
    }
}
