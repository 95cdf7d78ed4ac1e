//! The utility hook: the commands event triggers never see, judged by the same rules.
//!
//! `CLUSTER` and `VACUUM FULL` (`blocking-rewrite`), `REINDEX` before PostgreSQL 17
//! (`blocking-reindex`; from 17 the event trigger sees it), and, inside a registered migration or
//! a transaction that ran DDL, `TRUNCATE` (`truncate-table`) and `LOCK TABLE` (`explicit-lock`,
//! at the top level only: a LOCK inside a function is that function's way of working).
//! `ProcessUtility_hook` is installed when the library loads: in every session with
//! `shared_preload_libraries` or `session_preload_libraries`, otherwise from the first DDL
//! statement or migrate_guard function of a session on. A session that has not loaded the
//! library is not judged here (the README says so).
//!
//! Every other utility statement costs one node-tag comparison.

use crate::catalog::CatalogFacts;
use crate::model::Command;
use crate::report::{self, Pending};
use crate::rules::RuleId;
use crate::{ddl, dml, guard, gucs, history};
use core::ffi::{CStr, c_char};
use pgrx::pg_sys;
use pgrx::prelude::*;

static mut PREV_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// Called once per process from `_PG_init`.
pub fn register() {
    // SAFETY: hooks are process globals, set once while the library loads; the previous one is
    // called in turn.
    unsafe {
        PREV_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

unsafe extern "C-unwind" {
    #[cfg(feature = "pg13")]
    fn standard_ProcessUtility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const c_char,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
    #[cfg(not(feature = "pg13"))]
    fn standard_ProcessUtility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

/// The entry point (PostgreSQL 13: no `readOnlyTree`). Only the raise (in [`before`]) and the
/// call of the next hook happen in these frames, which own nothing that needs dropping.
#[cfg(feature = "pg13")]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const c_char,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: PostgreSQL passes a valid PlannedStmt and query string.
    unsafe {
        before(pstmt, query_string, context);
        match PREV_UTILITY {
            Some(prev) => prev(pstmt, query_string, context, params, query_env, dest, qc),
            None => standard_ProcessUtility(pstmt, query_string, context, params, query_env, dest, qc),
        }
    }
}

/// The entry point (PostgreSQL 14+).
#[cfg(not(feature = "pg13"))]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: as above.
    unsafe {
        before(pstmt, query_string, context);
        match PREV_UTILITY {
            Some(prev) => prev(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
            None => standard_ProcessUtility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    }
}

/// What both entry points do before passing the statement on: judge it, and raise the error when
/// it is refused.
///
/// # Safety
/// `pstmt` and `query_string` as PostgreSQL passes them to the hook.
unsafe fn before(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const c_char,
    context: pg_sys::ProcessUtilityContext::Type,
) {
    // SAFETY: as the caller's.
    unsafe {
        if watched((*pstmt).utilityStmt) {
            let pending = judge(pstmt, query_string, context);
            if !pending.is_null() {
                report::throw(pending);
            }
        }
    }
}

/// The statements this hook judges, by node tag alone (REINDEX only where event triggers do not
/// see it).
unsafe fn watched(node: *mut pg_sys::Node) -> bool {
    use pg_sys::NodeTag as T;
    if node.is_null() {
        return false;
    }
    // SAFETY: a valid node, read for its tag (and VACUUM's flag).
    unsafe {
        match (*node).type_ {
            T::T_ClusterStmt | T::T_TruncateStmt | T::T_LockStmt => true,
            T::T_VacuumStmt => (*(node as *const pg_sys::VacuumStmt)).is_vacuumcmd,
            T::T_ReindexStmt => !crate::server::compat::reindex_fires_event_triggers(),
            _ => false,
        }
    }
}

/// What the hook decides about a utility statement: the error to raise, or null.
#[pg_guard]
extern "C-unwind" fn judge(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const c_char,
    context: pg_sys::ProcessUtilityContext::Type,
) -> *mut Pending {
    let Some(mode) = guard::active_mode() else {
        return std::ptr::null_mut();
    };
    // Only where the extension is installed: a preloaded library also runs in databases without
    // it (postgres, template1, other applications' databases), which the guard has no say in.
    // SAFETY: a syscache lookup, inside a transaction.
    if unsafe { pg_sys::get_extension_oid(c"migrate_guard".as_ptr(), true) } == pg_sys::InvalidOid {
        return std::ptr::null_mut();
    }
    // SAFETY: the statement PostgreSQL is about to run; its tag names a static string.
    let (node, ps) = unsafe { ((*pstmt).utilityStmt, &*pstmt) };
    let tag = unsafe { CStr::from_ptr(pg_sys::GetCommandTagName(pg_sys::CreateCommandTag(node))) }
        .to_string_lossy()
        .into_owned();
    // A statement PostgreSQL refuses inside a transaction block or a function (VACUUM, CLUSTER
    // of every table, REINDEX SCHEMA …) is left to that refusal.
    // SAFETY: reads of the transaction state and the node.
    if unsafe { ddl::script::not_in_block(node).is_some() }
        && (context != pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL
            || unsafe { pg_sys::IsTransactionBlock() })
    {
        return std::ptr::null_mut();
    }
    // SAFETY: a valid utility statement.
    let mut stmt = unsafe { ddl::convert(node, &tag) };
    // A LOCK is judged where the migration writes it, at the top level: one inside a function is
    // that function's own way of working (pg_partman's create_parent locks the parent it is
    // partitioning).
    let top_level = context == pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL;
    match &stmt.command {
        Command::Rewrite(_) | Command::Reindex(_) => {}
        Command::Truncate(_) if dml::in_migration_or_ddl_transaction() => {}
        // Only the modes explicit-lock is about; and not as the first statement of a REPEATABLE
        // READ or SERIALIZABLE transaction: PostgreSQL runs LOCK without a snapshot so that the
        // transaction's snapshot is taken after the lock, and the catalog queries of judging it
        // would take it before (so such a LOCK is not judged).
        Command::Lock(l)
            if top_level
                && l.mode > crate::model::LockMode::ShareUpdateExclusive
                && dml::in_migration_or_ddl_transaction()
                // SAFETY: reads of backend globals.
                && !(unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32
                    && !unsafe { pg_sys::FirstSnapshotSet }) => {}
        _ => return std::ptr::null_mut(),
    }
    // SAFETY: allowed anywhere inside a transaction (see guard.rs).
    unsafe { pg_sys::AcceptInvalidationMessages() };
    let facts = CatalogFacts::new(gucs::ASSUME_POPULATED.get());
    if crate::locks::only_temporary(&stmt, &facts) {
        return std::ptr::null_mut();
    }
    let tables = crate::locks::acted_on(&stmt, &facts);
    // A restore rebuilding what it restored: only statements that name their tables, all of
    // them restored (not `VACUUM FULL;` or `REINDEX DATABASE`, and not a TRUNCATE … CASCADE,
    // which empties tables it does not name).
    let cascades = matches!(&stmt.command, Command::Truncate(t) if t.cascade);
    if crate::restore::restoring()
        && !cascades
        && tables
            .as_deref()
            .is_some_and(|t| !t.is_empty() && crate::restore::exempt(t))
    {
        return std::ptr::null_mut();
    }
    let text = if query_string.is_null() {
        String::new()
    } else {
        // SAFETY: the statement's source, a NUL-terminated string.
        let source = unsafe { CStr::from_ptr(query_string) }.to_bytes();
        ddl::text::of_statement(source, ps.stmt_location, ps.stmt_len)
    };
    stmt.text = Some(text.clone());
    let mut findings = crate::rules::evaluate(&stmt, &facts);
    let strong = crate::locks::strong_table_locks(&stmt, &facts);
    dml::before_ddl(&stmt.tag, &strong, &facts, &mut findings);
    let verdict = guard::judge(findings, mode, &text, tables.as_deref());
    if let Some(pending) = guard::act(&verdict, &text) {
        return pending;
    }
    if verdict.runs_with(&[RuleId::SchemaAndData]) {
        dml::mixed_accepted();
    }
    dml::strong_locks_taken(&strong, &stmt.tag, &text);
    if history::recording() && !verdict.is_clean() {
        // (A statement on every table, which names none, is left out: its row would wait for a
        // ddl_command_end that never comes.)
        if let Some(t) = crate::locks::main_table(&stmt, &facts) {
            let object = history::ObjectName::Known {
                object_type: "table",
                identity: t.display.clone(),
                table: t.display,
            };
            history::statement_judged(
                std::ptr::null_mut(),
                &stmt.tag,
                &verdict,
                None,
                Some(object),
                Some(text),
                false,
            );
        }
    }
    std::ptr::null_mut()
}
