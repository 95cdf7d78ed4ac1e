//! `explicit-lock`: `LOCK TABLE` in a mode that stops writes (SHARE or stronger) inside a
//! registered migration or a transaction that ran DDL holds that lock until the transaction ends:
//! everything the migration does after it runs with the table's readers or writers queued
//! behind it. The statements of a migration take the locks they need themselves, each for as
//! short a time as PostgreSQL can. Seen by the utility hook (event triggers never see LOCK).

use super::{Finding, RuleId, listed};
use crate::facts::{Facts, Rel};
use crate::model::{Command, LockMode, Statement};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::Lock(l) = &stmt.command else {
        return;
    };
    if l.mode <= LockMode::ShareUpdateExclusive {
        return;
    }
    let locked: Vec<Rel> = l
        .tables
        .iter()
        .filter_map(|t| facts.relation(t))
        .filter(Rel::existing)
        .collect();
    let Some(first) = locked.first() else {
        return;
    };
    let names: Vec<String> = locked.iter().map(|r| r.display.clone()).collect();
    let waits = if l.nowait || facts.session().lock_timeout_ms > 0 {
        ""
    } else {
        " Without lock_timeout (or NOWAIT) it also waits for every running query on the table, and every later \
         query queues behind it."
    };
    out.push(Finding {
        unused: None,
        rule: RuleId::ExplicitLock,
        message: format!(
            "LOCK TABLE {} IN {} MODE holds the lock until the migration's transaction ends",
            listed(&names),
            l.mode.name()
        ),
        detail: format!(
            "{} lock on {} {} stops {} for the rest of the transaction, whatever the statements after it do.{waits}",
            l.mode.with_article(),
            first.kind.noun(),
            first.display,
            l.mode.blocks()
        ),
        safe_way: "Leave the locking to the statements that need it: each takes its own lock, for as short a time \
                   as it can. If the migration must hold the table still, keep the transaction to quick \
                   statements, SET lock_timeout = '2s' first, and allow explicit-lock for this statement."
            .to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn lock(tables: &[&str], mode: LockMode, nowait: bool) -> Statement {
        stmt(
            "LOCK TABLE",
            "LOCK",
            Command::Lock(LockTables {
                tables: tables.iter().map(|t| rel(t)).collect(),
                mode,
                nowait,
            }),
        )
    }

    #[test]
    fn blocks_locks_that_stop_writes_on_existing_tables() {
        let mut new = FakeFacts::table("n");
        new.new_in_xact = true;
        let f = FakeFacts::default().with("t", FakeFacts::table("t")).with("n", new);
        let mut out = Vec::new();
        check(&lock(&["t"], LockMode::ShareUpdateExclusive, false), &f, &mut out);
        check(&lock(&["n"], LockMode::AccessExclusive, false), &f, &mut out);
        assert!(out.is_empty(), "{out:?}");
        check(&lock(&["n", "t"], LockMode::AccessExclusive, false), &f, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].message,
            "LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE holds the lock until the migration's transaction ends"
        );
        assert!(out[0].detail.contains("all reads and writes"), "{}", out[0].detail);
        assert!(out[0].detail.contains("Without lock_timeout"), "{}", out[0].detail);
        out.clear();
        check(&lock(&["t"], LockMode::Share, true), &f, &mut out);
        assert!(!out[0].detail.contains("Without lock_timeout"), "{}", out[0].detail);
        assert!(out[0].detail.contains("INSERT, UPDATE and DELETE"), "{}", out[0].detail);
    }
}
