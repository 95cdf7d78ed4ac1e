//! The rule catalog. One file per rule; each exposes
//! `pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>)`, a pure function
//! of the model and the facts.
//!
//! How to add a rule:
//! 1. add a variant to [`RuleId`] with its kebab-case id, summary and the `ALL` entry;
//! 2. write `src/rules/<rule_id>.rs` with `check` and its unit tests, register it in `CHECKS`;
//! 3. add golden tests under `pg_test/sql/` and a README table row.

use crate::facts::Facts;
use crate::model::Statement;

pub mod add_column_not_null;
pub mod blocking_drop_index;
pub mod blocking_index;
pub mod rename_column;
pub mod rename_table;
pub mod set_not_null;

/// Rule ids are the public contract: they appear in messages, in `migrate_guard.allow`, in
/// directives and in the documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    BlockingIndex,
    BlockingDropIndex,
    AddColumnNotNull,
    SetNotNull,
    RenameColumn,
    RenameTable,
}

impl RuleId {
    pub const ALL: &'static [RuleId] = &[
        RuleId::BlockingIndex,
        RuleId::BlockingDropIndex,
        RuleId::AddColumnNotNull,
        RuleId::SetNotNull,
        RuleId::RenameColumn,
        RuleId::RenameTable,
    ];

    pub fn id(self) -> &'static str {
        match self {
            RuleId::BlockingIndex => "blocking-index",
            RuleId::BlockingDropIndex => "blocking-drop-index",
            RuleId::AddColumnNotNull => "add-column-not-null",
            RuleId::SetNotNull => "set-not-null",
            RuleId::RenameColumn => "rename-column",
            RuleId::RenameTable => "rename-table",
        }
    }

    pub fn parse(s: &str) -> Option<RuleId> {
        let s = s.trim();
        RuleId::ALL.iter().copied().find(|r| r.id().eq_ignore_ascii_case(s))
    }

    /// One line: what the rule catches.
    pub fn summary(self) -> &'static str {
        match self {
            RuleId::BlockingIndex => {
                "CREATE INDEX without CONCURRENTLY on an existing table or materialized view that holds data"
            }
            RuleId::BlockingDropIndex => "DROP INDEX without CONCURRENTLY on an existing table",
            RuleId::AddColumnNotNull => {
                "ADD COLUMN ... NOT NULL without a DEFAULT on an existing table that holds data"
            }
            RuleId::SetNotNull => {
                "ALTER COLUMN ... SET NOT NULL on an existing table that holds data, unless a validated CHECK (col IS NOT NULL) proves it"
            }
            RuleId::RenameColumn => "renaming a column of an existing table, view or materialized view",
            RuleId::RenameTable => "renaming an existing table, view or materialized view",
        }
    }

    /// `blocking-index, blocking-drop-index, …`: every id, for error hints.
    pub fn list() -> String {
        RuleId::ALL.iter().map(|r| r.id()).collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// What a rule found wrong with a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: RuleId,
    /// What would happen, in a few words (the ERROR text after `migrate_guard: <rule-id>: `).
    pub message: String,
    /// What was measured and why it hurts: lock level, scan or rewrite, the table and its size.
    pub detail: String,
    /// The safe way, with SQL.
    pub safe_way: String,
}

type Check = fn(&Statement, &dyn Facts, &mut Vec<Finding>);

const CHECKS: &[Check] = &[
    blocking_index::check,
    blocking_drop_index::check,
    add_column_not_null::check,
    set_not_null::check,
    rename_column::check,
    rename_table::check,
];

/// Every finding of every rule for one statement, in rule order.
pub fn evaluate(stmt: &Statement, facts: &dyn Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for check in CHECKS {
        check(stmt, facts, &mut out);
    }
    out
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::model::*;

    pub fn stmt(tag: &str, text: &str, command: Command) -> Statement {
        Statement {
            tag: tag.to_owned(),
            text: Some(text.to_owned()),
            command,
        }
    }

    pub fn rel(name: &str) -> RelRef {
        RelRef::new(None, name)
    }

    pub fn alter(table: &str, cmds: Vec<AlterCmd>) -> Command {
        Command::AlterTable(AlterTable {
            kind: ObjectKind::Table,
            table: rel(table),
            missing_ok: false,
            cmds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for r in RuleId::ALL {
            assert_eq!(RuleId::parse(r.id()), Some(*r));
            assert_eq!(RuleId::parse(&r.id().to_uppercase()), Some(*r));
        }
        assert_eq!(RuleId::parse("no-such-rule"), None);
    }

    #[test]
    fn every_rule_has_a_check() {
        assert_eq!(CHECKS.len(), RuleId::ALL.len());
    }
}
