//! `blocking-refresh`: `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` holds ACCESS EXCLUSIVE
//! on a populated materialized view while its query reruns: every reader waits.

use super::{Finding, RuleId, existing_target};
use crate::facts::{Facts, RelKind};
use crate::model::{Command, Statement};
use crate::sqltext::insert_after_words;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::RefreshMatView(r) = &stmt.command else {
        return;
    };
    if r.concurrent {
        return;
    }
    let Some(rel) = existing_target(&r.target, facts).filter(|rel| rel.kind == RelKind::MatView && rel.populated)
    else {
        return;
    };
    let rel = facts.with_storage(rel);
    let t = &rel.display;
    let concurrent = stmt
        .text
        .as_deref()
        .filter(|_| r.with_data)
        .and_then(|s| insert_after_words(s, &["MATERIALIZED", "VIEW"], "CONCURRENTLY"))
        .unwrap_or_else(|| format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {t}"));
    let (message, detail) = if r.with_data {
        (
            format!("REFRESH MATERIALIZED VIEW blocks every read of {t} until the refresh finishes"),
            format!(
                "Without CONCURRENTLY the refresh holds an ACCESS EXCLUSIVE lock on {} while it reruns the view's \
                 query; every SELECT on it waits until then.",
                rel.described()
            ),
        )
    } else {
        (
            format!(
                "REFRESH MATERIALIZED VIEW ... WITH NO DATA empties {t}: every query on it fails until the next refresh"
            ),
            format!(
                "{} is populated and in use; after this, reading it raises an error.",
                rel.described()
            ),
        )
    };
    out.push(Finding {
        unused: None,
        rule: RuleId::BlockingRefresh,
        message,
        detail,
        safe_way: format!(
            "Refresh it while readers keep seeing the old contents: {concurrent}; it needs a unique index on the \
             materialized view (CREATE UNIQUE INDEX CONCURRENTLY ... ON {t} (...)) and takes an EXCLUSIVE lock, \
             which lets SELECT run."
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn refresh(concurrent: bool, with_data: bool) -> Statement {
        stmt(
            "REFRESH MATERIALIZED VIEW",
            "REFRESH MATERIALIZED VIEW mv",
            Command::RefreshMatView(RefreshMatView {
                target: rel("mv"),
                concurrent,
                with_data,
            }),
        )
    }

    #[test]
    fn blocks_plain_refresh_of_populated_views() {
        let mut mv = FakeFacts::table("mv");
        mv.kind = crate::facts::RelKind::MatView;
        let f = FakeFacts::default().with("mv", mv.clone());
        let mut out = Vec::new();
        check(&refresh(false, true), &f, &mut out);
        check(&refresh(true, true), &f, &mut out);
        check(&refresh(false, false), &f, &mut out);
        assert_eq!(out.len(), 2);
        assert!(
            out[0].safe_way.contains("REFRESH MATERIALIZED VIEW CONCURRENTLY mv;"),
            "{}",
            out[0].safe_way
        );
        assert!(out[1].message.contains("WITH NO DATA"));
        mv.populated = false;
        let f = FakeFacts::default().with("mv", mv);
        let mut out = Vec::new();
        check(&refresh(false, true), &f, &mut out);
        assert!(out.is_empty());
    }
}
