//! Scans under a lock an earlier statement of the same transaction took. A lock is held until
//! the transaction ends, so `VALIDATE CONSTRAINT`, the safe way to check existing rows under
//! SHARE UPDATE EXCLUSIVE, scans under the ACCESS EXCLUSIVE that, for example, the `ADD
//! CONSTRAINT … NOT VALID` before it took in the same transaction: every read and write waits
//! for the whole scan. Reported under the rule of the constraint's kind (`validating-check`,
//! `validating-foreign-key`, `set-not-null` for a NOT NULL constraint on 18).

use super::{Finding, RuleId, populated_target};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, ConstraintKind, LockMode, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let AlterCmd::ValidateConstraint { name } = cmd else {
            continue;
        };
        let Some(rel) = populated_target(&at.table, facts) else {
            return;
        };
        let Some(held) = facts.held_lock(&rel).filter(|m| *m > LockMode::ShareUpdateExclusive) else {
            return;
        };
        let kind = facts.constraint_kind(&rel, name);
        // A constraint that is valid already: PostgreSQL does nothing.
        if kind.is_some_and(|(_, valid)| valid) {
            continue;
        }
        let rule = match kind.map(|(k, _)| k) {
            Some(ConstraintKind::ForeignKey) => RuleId::ValidatingForeignKey,
            Some(ConstraintKind::NotNull) => RuleId::SetNotNull,
            _ => RuleId::ValidatingCheck,
        };
        let (t, c) = (&rel.display, quote_ident(name));
        out.push(Finding {
            unused: None,
            rule,
            message: format!(
                "VALIDATE CONSTRAINT {c} scans the whole {} {t} under the {} lock this transaction already holds",
                rel.kind.noun(),
                held.name()
            ),
            detail: format!(
                "An earlier statement of this transaction took {} on {} and it is held until the transaction ends, so \
                 the validation's scan, which alone would let reads and writes go on, runs under it: {} wait until \
                 the transaction commits.",
                held.with_article(),
                rel.described(),
                held.blocks()
            ),
            safe_way: format!(
                "Commit first, then validate in a transaction of its own: COMMIT; ALTER TABLE {t} VALIDATE CONSTRAINT {c};"
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::rules::testing::*;

    fn validate(name: &str, held: Option<LockMode>) -> Vec<Finding> {
        let mut f = FakeFacts::default().with("t", FakeFacts::table("t"));
        f.held = held.map(|m| ("t".to_owned(), m)).into_iter().collect();
        let mut out = Vec::new();
        check(
            &stmt(
                "ALTER TABLE",
                "",
                alter("t", vec![AlterCmd::ValidateConstraint { name: name.into() }]),
            ),
            &f,
            &mut out,
        );
        out
    }

    #[test]
    fn validate_after_a_strong_lock_in_the_same_transaction_is_blocked() {
        let out = validate("t_c", Some(LockMode::AccessExclusive));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, RuleId::ValidatingCheck);
        assert!(
            out[0]
                .message
                .contains("under the ACCESS EXCLUSIVE lock this transaction already holds")
        );
        assert_eq!(
            validate("t_fkey", Some(LockMode::ShareRowExclusive))[0].rule,
            RuleId::ValidatingForeignKey
        );
    }

    #[test]
    fn validating_a_valid_constraint_passes() {
        assert!(validate("t_valid", Some(LockMode::AccessExclusive)).is_empty());
    }

    #[test]
    fn validate_on_its_own_passes() {
        assert!(validate("t_c", None).is_empty());
        assert!(validate("t_c", Some(LockMode::ShareUpdateExclusive)).is_empty());
    }
}
