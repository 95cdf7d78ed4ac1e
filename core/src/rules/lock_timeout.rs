//! `lock-timeout`: with `migrate_guard.require_lock_timeout` on, a statement that requests a lock
//! stronger than SHARE UPDATE EXCLUSIVE on an existing table must run with a `lock_timeout`.
//! (With the setting off, the guard sets one itself: see `migrate_guard.lock_timeout`.)

use super::{Finding, RuleId};
use crate::facts::Facts;
use crate::locks::strong_lock_on_existing;
use crate::model::Statement;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let session = facts.session();
    if !session.require_lock_timeout || session.lock_timeout_ms > 0 {
        return;
    }
    let Some((mode, rel)) = strong_lock_on_existing(stmt, facts) else {
        return;
    };
    let rel = facts.with_storage(rel);
    out.push(Finding {
        unused: None,
        rule: RuleId::LockTimeout,
        message: format!(
            "{} needs {} lock on {} {} but lock_timeout is not set",
            stmt.tag,
            mode.with_article(),
            rel.kind.noun(),
            rel.display
        ),
        detail: format!(
            "Without lock_timeout the statement waits for as long as any running query holds a conflicting lock on \
             {}, and while it waits, {} on the table queue behind it. migrate_guard.require_lock_timeout is on.",
            rel.described(),
            mode.blocks()
        ),
        safe_way: "Set a lock timeout first and retry the migration if it expires: SET lock_timeout = '5s'; (or SET \
                   LOCAL inside the migration's transaction)."
            .to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FakeFacts, Session};
    use crate::model::*;
    use crate::rules::testing::*;

    #[test]
    fn requires_a_timeout_only_when_asked_and_only_for_strong_locks() {
        let strong = stmt(
            "ALTER TABLE",
            "",
            alter("t", vec![AlterCmd::DropColumn { column: "a".into() }]),
        );
        let weak = stmt(
            "ALTER TABLE",
            "",
            alter("t", vec![AlterCmd::ValidateConstraint { name: "c".into() }]),
        );
        let mut f = FakeFacts::default().with("t", FakeFacts::table("t"));
        let mut out = Vec::new();
        check(&strong, &f, &mut out);
        assert!(out.is_empty(), "off by default");
        f.session = Session {
            lock_timeout_ms: 0,
            require_lock_timeout: true,
            ..Session::default()
        };
        check(&weak, &f, &mut out);
        assert!(out.is_empty());
        check(&strong, &f, &mut out);
        assert_eq!(
            out[0].message,
            "ALTER TABLE needs an ACCESS EXCLUSIVE lock on table public.t but lock_timeout is not set"
        );
        f.session.lock_timeout_ms = 2000;
        let mut out = Vec::new();
        check(&strong, &f, &mut out);
        assert!(out.is_empty());
    }
}
