//! The rule catalog. One file per rule; each exposes
//! `pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>)`, a pure function
//! of the model and the facts.
//!
//! How to add a rule:
//! 1. write `core/src/rules/<rule_id>.rs` with `check` and its unit tests;
//! 2. declare it once in the `rules!` table below: variant, kebab-case id, check, summary;
//! 3. add golden tests under `pg_test/sql/` and a README table row.

use crate::facts::{Facts, Rel, Stored};
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

/// Declares every rule once: its variant of [`RuleId`], its id (the public contract: messages,
/// `migrate_guard.allow`, directives, documentation), the function that judges a DDL statement
/// for it, and its one-line summary. The order is the order rules are evaluated and listed in.
macro_rules! rules {
    ($($variant:ident = $id:literal, $check:expr, $summary:expr;)*) => {
        /// Rule ids are the public contract: they appear in messages, in `migrate_guard.allow`, in
        /// directives and in the documentation.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $($variant,)*
        }

        impl RuleId {
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant,)*];

            pub fn id(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $id,)*
                }
            }

            /// One line: what the rule catches.
            pub fn summary(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $summary,)*
                }
            }

            fn check_fn(self) -> Check {
                match self {
                    $(RuleId::$variant => $check,)*
                }
            }
        }
    };
}

type Check = fn(&Statement, &dyn Facts, &mut Vec<Finding>);

/// The check of the rules judged on data changes (the executor hook, `check()`), not on a DDL
/// statement alone.
fn data_change_only(_: &Statement, _: &dyn Facts, _: &mut Vec<Finding>) {}

rules! {
    BlockingIndex = "blocking-index", blocking_index::check,
        "CREATE INDEX without CONCURRENTLY on an existing table or materialized view that holds data";
    BlockingDropIndex = "blocking-drop-index", blocking_drop_index::check,
        "DROP INDEX without CONCURRENTLY on an existing table";
    DropIndexInUse = "drop-index-in-use", drop_index_in_use::check,
        "DROP INDEX (concurrently or not) of an index that queries scanned within migrate_guard.usage_window (usage tracking, when preloaded)";
    AddColumnNotNull = "add-column-not-null", add_column_not_null::check,
        "ADD COLUMN ... NOT NULL without a DEFAULT on an existing table that holds data";
    SetNotNull = "set-not-null", set_not_null::check,
        "ALTER COLUMN ... SET NOT NULL on an existing table that holds data, unless a validated CHECK (col IS NOT NULL) proves it";
    RenameColumn = "rename-column", rename_column::check,
        "renaming a column of an existing table, view or materialized view";
    RenameTable = "rename-table", rename_table::check,
        "renaming an existing table, view or materialized view";
    AddColumnRewrite = "add-column-rewrite", add_column_rewrite::check,
        "ADD COLUMN with a volatile default, serial, identity or GENERATED ... STORED on a table that holds data (table rewrite)";
    ColumnTypeRewrite = "column-type-rewrite", column_type_rewrite::check,
        "ALTER COLUMN ... TYPE that rewrites the table (not a binary-compatible change) or has a USING expression, or that rewrites nothing but rebuilds an index or re-checks a CHECK constraint";
    ValidatingCheck = "validating-check", validating_check::check,
        "ADD CONSTRAINT ... CHECK without NOT VALID, or a CHECK inline in ADD COLUMN, on a table that holds data";
    ValidatingForeignKey = "validating-foreign-key", validating_foreign_key::check,
        "ADD FOREIGN KEY without NOT VALID on a table that holds data (not on a column added empty in the same statement)";
    BlockingUniqueConstraint = "blocking-unique-constraint", blocking_unique_constraint::check,
        "ADD UNIQUE / PRIMARY KEY without USING INDEX (also inline in ADD COLUMN) on a table that holds data";
    ExclusionConstraint = "exclusion-constraint", exclusion_constraint::check,
        "ADD EXCLUDE on a table that holds data";
    DropColumn = "drop-column", drop_column::check,
        "DROP COLUMN on an existing table";
    DropTable = "drop-table", drop_table::check,
        "DROP TABLE of an existing table";
    TableRewrite = "table-rewrite", table_rewrite::check,
        "SET LOGGED / UNLOGGED / ACCESS METHOD / TABLESPACE on a table that holds data, and any other rewrite of one (table_rewrite backstop)";
    BlockingRefresh = "blocking-refresh", blocking_refresh::check,
        "REFRESH MATERIALIZED VIEW without CONCURRENTLY on a populated materialized view";
    BlockingDetach = "blocking-detach", blocking_detach::check,
        "ALTER TABLE ... DETACH PARTITION without CONCURRENTLY";
    BlockingReindex = "blocking-reindex", blocking_reindex::check,
        "REINDEX without CONCURRENTLY on an existing table that holds data (before PostgreSQL 17, seen by the utility hook only: in sessions that loaded the library)";
    BlockingRewrite = "blocking-rewrite", blocking_rewrite::check,
        "CLUSTER or VACUUM FULL of an existing table that holds data, or of every table (seen by the utility hook only: in sessions that loaded the library)";
    TruncateTable = "truncate-table", truncate_table::check,
        "TRUNCATE that empties an existing table holding data (its children and partitions, and with CASCADE the tables referencing it, counted) inside a registered migration or a transaction that ran DDL (utility hook)";
    ExplicitLock = "explicit-lock", explicit_lock::check,
        "LOCK TABLE in SHARE mode or stronger on an existing table inside a registered migration or a transaction that ran DDL (utility hook)";
    PartitionScan = "partition-scan", partition_scan::check,
        "ATTACH PARTITION or CREATE TABLE ... PARTITION OF that must read a populated table (the one attached, or the default partition) under ACCESS EXCLUSIVE because no valid constraint proves the bound";
    DomainScan = "domain-scan", domain_scan::check,
        "ALTER DOMAIN ... ADD CONSTRAINT without NOT VALID, SET NOT NULL or VALIDATE CONSTRAINT on a domain that columns of existing tables holding data use";
    PublicationIdentity = "publication-identity", publication_identity::check,
        "CREATE PUBLICATION / ALTER PUBLICATION ... ADD|SET TABLE that publishes UPDATE or DELETE of an existing table without a replica identity (its UPDATE and DELETE then fail)";
    LockTimeout = "lock-timeout", lock_timeout::check,
        "a lock stronger than SHARE UPDATE EXCLUSIVE on an existing table without lock_timeout, when migrate_guard.require_lock_timeout is on";
    ManualDdl = "manual-ddl", manual_ddl::check,
        "DDL outside a migration registered with begin_migration(), when migrate_guard.require_migration is on";
    LargeUpdate = "large-update", data_change_only,
        "UPDATE or DELETE estimated past migrate_guard.max_rows rows inside a registered migration or a transaction that has run DDL";
    SchemaAndData = "schema-and-data", data_change_only,
        "a data change past migrate_guard.max_rows rows in the same transaction as DDL holding a lock stronger than SHARE UPDATE EXCLUSIVE on a populated existing table, in either order";
}

impl RuleId {
    pub fn parse(s: &str) -> Option<RuleId> {
        let s = s.trim();
        RuleId::ALL.iter().copied().find(|r| r.id().eq_ignore_ascii_case(s))
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
fn populated_target(table: &RelRef, facts: &dyn Facts) -> Option<Stored> {
    existing_target(table, facts)
        .map(|r| facts.with_storage(r))
        .filter(Stored::has_data)
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
