//! Expand → migrate → contract, done by the database: `migrate_guard.expand_column`,
//! `backfill_expansion`, `contract`, `abort_expansion`, `expand_rename_table` and the
//! `migrate_guard.expansions` view.
//!
//! The helpers are PL/pgSQL (`sql/objects/expansions.sql`): each step is a handful of DDL
//! statements and catalog reads run with the caller's privileges, and `backfill_expansion` is a
//! procedure that commits between batches (through `migrate_guard.backfill`). The guard lets the
//! steps' statements through as steps of a registered expansion (`migrate_guard.expansion_step`,
//! see `guard.rs`). What is here is the part worth testing without a server.

use pgrx::prelude::*;

pgrx::extension_sql_file!(
    "../sql/objects/expansions.sql",
    name = "expansion_objects",
    requires = ["backfill_objects", replace_identifier]
);

/// `sql` with the column `old` renamed to `new` (an index definition's column list, expressions
/// and predicate); see [`crate::sqltext::replace_identifier`].
#[pg_extern(
    schema = "migrate_guard",
    name = "_replace_identifier",
    immutable,
    strict,
    parallel_safe
)]
fn replace_identifier(sql: &str, old: &str, new: &str) -> String {
    crate::sqltext::replace_identifier(sql, old, new)
}
