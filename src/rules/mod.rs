//! The rule catalog. One file per rule; each exposes
//! `pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>)`, a pure function
//! of the model and the facts.
//!
//! How to add a rule:
//! 1. add a variant to [`RuleId`] with its kebab-case id, summary and the `ALL` entry;
//! 2. write `src/rules/<rule_id>.rs` with `check` and its unit tests, map the id to it in
//!    `RuleId::check_fn`;
//! 3. add golden tests under `pg_test/sql/` and a README table row.

use crate::facts::{Facts, Rel};
use crate::model::{AlterTable, Constraint, ConstraintKind, RelRef, Statement};
use crate::sqltext::quote_ident;

pub mod add_column_not_null;
pub mod add_column_rewrite;
pub mod blocking_detach;
pub mod blocking_drop_index;
pub mod blocking_index;
pub mod blocking_refresh;
pub mod blocking_reindex;
pub mod blocking_rewrite;
pub mod blocking_unique_constraint;
pub mod column_type_rewrite;
pub mod domain_scan;
pub mod drop_column;
pub mod drop_index_in_use;
pub mod drop_table;
pub mod earlier_lock;
pub mod exclusion_constraint;
pub mod explicit_lock;
pub mod large_update;
pub mod lock_timeout;
pub mod manual_ddl;
pub mod noops;
pub mod partition_scan;
pub mod publication_identity;
pub mod reaching;
pub mod rename_column;
pub mod rename_table;
pub mod schema_and_data;
pub mod set_not_null;
pub mod table_rewrite;
pub mod truncate_table;
pub mod validating_check;
pub mod validating_foreign_key;

/// Rule ids are the public contract: they appear in messages, in `migrate_guard.allow`, in
/// directives and in the documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    BlockingIndex,
    BlockingDropIndex,
    DropIndexInUse,
    AddColumnNotNull,
    SetNotNull,
    RenameColumn,
    RenameTable,
    AddColumnRewrite,
    ColumnTypeRewrite,
    ValidatingCheck,
    ValidatingForeignKey,
    BlockingUniqueConstraint,
    ExclusionConstraint,
    DropColumn,
    DropTable,
    TableRewrite,
    BlockingRefresh,
    BlockingDetach,
    BlockingReindex,
    BlockingRewrite,
    TruncateTable,
    ExplicitLock,
    PartitionScan,
    DomainScan,
    PublicationIdentity,
    LockTimeout,
    ManualDdl,
    LargeUpdate,
    SchemaAndData,
}

impl RuleId {
    pub const ALL: &'static [RuleId] = &[
        RuleId::BlockingIndex,
        RuleId::BlockingDropIndex,
        RuleId::DropIndexInUse,
        RuleId::AddColumnNotNull,
        RuleId::SetNotNull,
        RuleId::RenameColumn,
        RuleId::RenameTable,
        RuleId::AddColumnRewrite,
        RuleId::ColumnTypeRewrite,
        RuleId::ValidatingCheck,
        RuleId::ValidatingForeignKey,
        RuleId::BlockingUniqueConstraint,
        RuleId::ExclusionConstraint,
        RuleId::DropColumn,
        RuleId::DropTable,
        RuleId::TableRewrite,
        RuleId::BlockingRefresh,
        RuleId::BlockingDetach,
        RuleId::BlockingReindex,
        RuleId::BlockingRewrite,
        RuleId::TruncateTable,
        RuleId::ExplicitLock,
        RuleId::PartitionScan,
        RuleId::DomainScan,
        RuleId::PublicationIdentity,
        RuleId::LockTimeout,
        RuleId::ManualDdl,
        RuleId::LargeUpdate,
        RuleId::SchemaAndData,
    ];

    pub fn id(self) -> &'static str {
        match self {
            RuleId::BlockingIndex => "blocking-index",
            RuleId::BlockingDropIndex => "blocking-drop-index",
            RuleId::DropIndexInUse => "drop-index-in-use",
            RuleId::AddColumnNotNull => "add-column-not-null",
            RuleId::SetNotNull => "set-not-null",
            RuleId::RenameColumn => "rename-column",
            RuleId::RenameTable => "rename-table",
            RuleId::AddColumnRewrite => "add-column-rewrite",
            RuleId::ColumnTypeRewrite => "column-type-rewrite",
            RuleId::ValidatingCheck => "validating-check",
            RuleId::ValidatingForeignKey => "validating-foreign-key",
            RuleId::BlockingUniqueConstraint => "blocking-unique-constraint",
            RuleId::ExclusionConstraint => "exclusion-constraint",
            RuleId::DropColumn => "drop-column",
            RuleId::DropTable => "drop-table",
            RuleId::TableRewrite => "table-rewrite",
            RuleId::BlockingRefresh => "blocking-refresh",
            RuleId::BlockingDetach => "blocking-detach",
            RuleId::BlockingReindex => "blocking-reindex",
            RuleId::BlockingRewrite => "blocking-rewrite",
            RuleId::TruncateTable => "truncate-table",
            RuleId::ExplicitLock => "explicit-lock",
            RuleId::PartitionScan => "partition-scan",
            RuleId::DomainScan => "domain-scan",
            RuleId::PublicationIdentity => "publication-identity",
            RuleId::LockTimeout => "lock-timeout",
            RuleId::ManualDdl => "manual-ddl",
            RuleId::LargeUpdate => "large-update",
            RuleId::SchemaAndData => "schema-and-data",
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
            RuleId::DropIndexInUse => {
                "DROP INDEX (concurrently or not) of an index that queries scanned within migrate_guard.usage_window (usage tracking, when preloaded)"
            }
            RuleId::AddColumnNotNull => {
                "ADD COLUMN ... NOT NULL without a DEFAULT on an existing table that holds data"
            }
            RuleId::SetNotNull => {
                "ALTER COLUMN ... SET NOT NULL on an existing table that holds data, unless a validated CHECK (col IS NOT NULL) proves it"
            }
            RuleId::RenameColumn => "renaming a column of an existing table, view or materialized view",
            RuleId::RenameTable => "renaming an existing table, view or materialized view",
            RuleId::AddColumnRewrite => {
                "ADD COLUMN with a volatile default, serial, identity or GENERATED ... STORED on a table that holds data (table rewrite)"
            }
            RuleId::ColumnTypeRewrite => {
                "ALTER COLUMN ... TYPE that rewrites the table (not a binary-compatible change) or has a USING expression, or that rewrites nothing but rebuilds an index or re-checks a CHECK constraint"
            }
            RuleId::ValidatingCheck => {
                "ADD CONSTRAINT ... CHECK without NOT VALID, or a CHECK inline in ADD COLUMN, on a table that holds data"
            }
            RuleId::ValidatingForeignKey => {
                "ADD FOREIGN KEY without NOT VALID on a table that holds data (not on a column added empty in the same statement)"
            }
            RuleId::BlockingUniqueConstraint => {
                "ADD UNIQUE / PRIMARY KEY without USING INDEX (also inline in ADD COLUMN) on a table that holds data"
            }
            RuleId::ExclusionConstraint => "ADD EXCLUDE on a table that holds data",
            RuleId::DropColumn => "DROP COLUMN on an existing table",
            RuleId::DropTable => "DROP TABLE of an existing table",
            RuleId::TableRewrite => {
                "SET LOGGED / UNLOGGED / ACCESS METHOD / TABLESPACE on a table that holds data, and any other rewrite of one (table_rewrite backstop)"
            }
            RuleId::BlockingRefresh => {
                "REFRESH MATERIALIZED VIEW without CONCURRENTLY on a populated materialized view"
            }
            RuleId::BlockingDetach => "ALTER TABLE ... DETACH PARTITION without CONCURRENTLY",
            RuleId::DomainScan => {
                "ALTER DOMAIN ... ADD CONSTRAINT without NOT VALID, SET NOT NULL or VALIDATE CONSTRAINT on a domain that columns of existing tables holding data use"
            }
            RuleId::PublicationIdentity => {
                "CREATE PUBLICATION / ALTER PUBLICATION ... ADD|SET TABLE that publishes UPDATE or DELETE of an existing table without a replica identity (its UPDATE and DELETE then fail)"
            }
            RuleId::PartitionScan => {
                "ATTACH PARTITION or CREATE TABLE ... PARTITION OF that must read a populated table (the one attached, or the default partition) under ACCESS EXCLUSIVE because no valid constraint proves the bound"
            }
            RuleId::BlockingReindex => {
                "REINDEX without CONCURRENTLY on an existing table that holds data (before PostgreSQL 17, seen by the utility hook only: in sessions that loaded the library)"
            }
            RuleId::BlockingRewrite => {
                "CLUSTER or VACUUM FULL of an existing table that holds data, or of every table (seen by the utility hook only: in sessions that loaded the library)"
            }
            RuleId::TruncateTable => {
                "TRUNCATE that empties an existing table holding data (its children and partitions, and with CASCADE the tables referencing it, counted) inside a registered migration or a transaction that ran DDL (utility hook)"
            }
            RuleId::ExplicitLock => {
                "LOCK TABLE in SHARE mode or stronger on an existing table inside a registered migration or a transaction that ran DDL (utility hook)"
            }
            RuleId::LockTimeout => {
                "a lock stronger than SHARE UPDATE EXCLUSIVE on an existing table without lock_timeout, when migrate_guard.require_lock_timeout is on"
            }
            RuleId::ManualDdl => {
                "DDL outside a migration registered with begin_migration(), when migrate_guard.require_migration is on"
            }
            RuleId::LargeUpdate => {
                "UPDATE or DELETE estimated past migrate_guard.max_rows rows inside a registered migration or a transaction that has run DDL"
            }
            RuleId::SchemaAndData => {
                "a data change past migrate_guard.max_rows rows in the same transaction as DDL holding a lock stronger than SHARE UPDATE EXCLUSIVE on a populated existing table, in either order"
            }
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
    /// Usage evidence that nothing uses what the statement drops: the finding then passes,
    /// with this text as a NOTICE, recorded as allowed via `usage`.
    pub unused: Option<String>,
}

type Check = fn(&Statement, &dyn Facts, &mut Vec<Finding>);

impl RuleId {
    fn check_fn(self) -> Check {
        match self {
            RuleId::BlockingIndex => blocking_index::check,
            RuleId::BlockingDropIndex => blocking_drop_index::check,
            RuleId::DropIndexInUse => drop_index_in_use::check,
            RuleId::AddColumnNotNull => add_column_not_null::check,
            RuleId::SetNotNull => set_not_null::check,
            RuleId::RenameColumn => rename_column::check,
            RuleId::RenameTable => rename_table::check,
            RuleId::AddColumnRewrite => add_column_rewrite::check,
            RuleId::ColumnTypeRewrite => column_type_rewrite::check,
            RuleId::ValidatingCheck => validating_check::check,
            RuleId::ValidatingForeignKey => validating_foreign_key::check,
            RuleId::BlockingUniqueConstraint => blocking_unique_constraint::check,
            RuleId::ExclusionConstraint => exclusion_constraint::check,
            RuleId::DropColumn => drop_column::check,
            RuleId::DropTable => drop_table::check,
            RuleId::TableRewrite => table_rewrite::check,
            RuleId::BlockingRefresh => blocking_refresh::check,
            RuleId::BlockingDetach => blocking_detach::check,
            RuleId::BlockingReindex => blocking_reindex::check,
            RuleId::BlockingRewrite => blocking_rewrite::check,
            RuleId::TruncateTable => truncate_table::check,
            RuleId::ExplicitLock => explicit_lock::check,
            RuleId::PartitionScan => partition_scan::check,
            RuleId::DomainScan => domain_scan::check,
            RuleId::PublicationIdentity => publication_identity::check,
            RuleId::LockTimeout => lock_timeout::check,
            RuleId::ManualDdl => manual_ddl::check,
            // Judged on data changes (the executor hook, check()), not on a DDL statement alone.
            RuleId::LargeUpdate | RuleId::SchemaAndData => |_, _, _| {},
        }
    }
}

/// `detail` with what usage tracking saw of `what`, when tracking runs (renames and table drops:
/// the evidence tells the DBA which clients still use the old name; without tracking, as before).
fn with_evidence(detail: String, usage: &crate::evidence::Usage, what: &str) -> String {
    if usage.tracked() {
        format!("{detail} {}", usage.sentence(what))
    } else {
        detail
    }
}

/// `CALL migrate_guard.backfill('<table>', '<set>', '<filter>')`, each argument a proper literal.
fn backfill_call(table: &str, set: &str, filter: &str) -> String {
    use crate::sqltext::quote_literal;
    format!(
        "CALL migrate_guard.backfill({}, {}, {})",
        quote_literal(table),
        quote_literal(set),
        quote_literal(filter)
    )
}

/// The first few names, and how many more.
fn listed(names: &[String]) -> String {
    let mut s = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        s.push_str(&format!(" and {} more", names.len() - 5));
    }
    s
}

/// The relation a statement acts on, when other sessions use it.
fn existing_target(table: &RelRef, facts: &dyn Facts) -> Option<Rel> {
    facts.relation(table).filter(Rel::existing)
}

/// The relation a statement acts on, when other sessions use it and it holds data: the condition
/// of every rule about a lock held during a scan, a rewrite or an index build.
fn populated_target(table: &RelRef, facts: &dyn Facts) -> Option<Rel> {
    existing_target(table, facts)
        .map(|r| facts.with_storage(r))
        .filter(Rel::has_data)
}

/// The statement's own text, when it is a single-subcommand ALTER TABLE (so appending to it
/// changes only that subcommand).
fn single_subcommand_text(stmt: &Statement, at: &AlterTable) -> Option<String> {
    (at.cmds.len() == 1)
        .then(|| stmt.text.as_deref().map(crate::sqltext::compact))
        .flatten()
}

/// `CONSTRAINT name CHECK`, `FOREIGN KEY`, ... as a message names it.
fn constraint_label(c: &Constraint) -> String {
    let kind = match c.kind {
        ConstraintKind::Check => "CHECK",
        ConstraintKind::ForeignKey => "FOREIGN KEY",
        ConstraintKind::Unique => "UNIQUE",
        ConstraintKind::PrimaryKey => "PRIMARY KEY",
        ConstraintKind::Exclusion => "EXCLUDE",
        _ => "constraint",
    };
    match &c.name {
        Some(n) => format!("CONSTRAINT {} {kind}", quote_ident(n)),
        None => kind.to_owned(),
    }
}

/// Every finding of every rule for one statement, in rule order.
pub fn evaluate(stmt: &Statement, facts: &dyn Facts) -> Vec<Finding> {
    let pruned = noops::without_noops(stmt, facts);
    let stmt = pruned.as_ref().unwrap_or(stmt);
    let mut out = Vec::new();
    for rule in RuleId::ALL {
        rule.check_fn()(stmt, facts, &mut out);
    }
    // Not rules of their own: their findings carry the rule of what they find.
    earlier_lock::check(stmt, facts, &mut out);
    reaching::check(stmt, facts, &mut out);
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
            cmds,
        })
    }

    pub fn constraint(kind: ConstraintKind, name: Option<&str>, not_valid: bool) -> Constraint {
        Constraint {
            kind,
            name: name.map(Into::into),
            not_valid,
            using_index: None,
            columns: vec![],
            references: None,
        }
    }

    pub fn column_def(name: &str) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            type_name: TypeRef {
                display: "integer".into(),
                resolved: None,
                serial: false,
                constrained_domain: None,
            },
            not_null: false,
            default: None,
            identity: false,
            generated_stored: None,
            generated_virtual: None,
            if_not_exists: false,
            constraints: vec![],
        }
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
    fn backfill_calls_quote_their_arguments() {
        assert_eq!(
            backfill_call("public.\"O'Brien\"", "c = nextval('s')", "c IS NULL"),
            "CALL migrate_guard.backfill('public.\"O''Brien\"', 'c = nextval(''s'')', 'c IS NULL')"
        );
    }
}
