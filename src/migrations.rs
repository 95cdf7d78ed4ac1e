//! Registered migrations. `begin_migration` / `end_migration` / `prune_history` are PL/pgSQL
//! (`sql/objects/migrations.sql`); the open migration of a session lives in the superuser-only
//! setting `migrate_guard.current_migration`, so that it follows the transaction (a rolled-back
//! `begin_migration` leaves no migration open) and no ordinary role can forge it.

use pgrx::prelude::*;

pgrx::extension_sql_file!(
    "../sql/objects/migrations.sql",
    name = "migration_functions",
    requires = ["history_objects", migration_statement_count, _next_id]
);

/// Id of the migration open in this session, if any.
pub fn current_migration_id() -> Option<i64> {
    crate::gucs::CURRENT_MIGRATION
        .get()
        .and_then(|v| v.to_str().ok().and_then(|s| s.parse().ok()))
}

/// How many DDL statements of a migration this session has run: those already written to
/// history by committed transactions and those still buffered in the current one. Used by
/// `end_migration` (a migration begins and ends in the same session), without scanning history.
#[pg_extern(schema = "migrate_guard", volatile, parallel_unsafe)]
fn migration_statement_count(migration_id: i64) -> i64 {
    crate::history::statements_of_migration(migration_id)
}

/// `migrate_guard._next_id(tbl)`: see [`crate::ids::next_row_id`].
#[pg_extern(schema = "migrate_guard", volatile, parallel_unsafe, strict)]
fn _next_id(tbl: pg_sys::Oid) -> i64 {
    crate::ids::next_row_id(tbl)
}
