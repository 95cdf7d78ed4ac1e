//! Ids for the extension's own tables, taken without touching the session's `lastval()`.
//!
//! `nextval()` makes its sequence the session's "last used" one, so a DDL statement recorded in
//! history between an application's `INSERT` and its `SELECT lastval()` (PHP's `lastInsertId()`,
//! for one) would hand the application a history id. PostgreSQL keeps that state in a variable
//! private to `sequence.c`, and only `nextval()` changes it; `setval()` does not. So ids are taken
//! here by reading the sequence's last value and moving it on with `setval()`, under a short
//! lock on the sequence that makes the pair atomic between sessions.

use pgrx::prelude::*;
use pgrx::{IntoDatum, pg_sys};

/// How many ids a backend takes from a sequence at a time, like a sequence's CACHE: one
/// reservation then serves this many rows, in this and later transactions of the session. Ids a
/// session took but did not use are skipped, as with any cached sequence.
pub const BLOCK: i64 = 32;

thread_local! {
    /// `(sequence, next id, last id)` of this backend's current block.
    static CACHED: std::cell::Cell<(pg_sys::Oid, i64, i64)> = const { std::cell::Cell::new((pg_sys::InvalidOid, 0, -1)) };
}

/// `n` consecutive ids from `seq` for this backend: from its cached block when it holds enough,
/// else from a new reservation of at least [`BLOCK`]. Returns the first.
///
/// # Safety
/// As [`reserve`].
pub unsafe fn take(seq: pg_sys::Oid, n: i64) -> i64 {
    let (cached_seq, next, last) = CACHED.get();
    if cached_seq == seq && last - next + 1 >= n {
        CACHED.set((seq, next + n, last));
        return next;
    }
    let count = n.max(BLOCK);
    // SAFETY: passed on from the caller.
    let first = unsafe { reserve(seq, count) };
    CACHED.set((seq, first + n, first + count - 1));
    first
}

/// Reserve `n` consecutive ids from the identity sequence `seq` and return the first.
///
/// The sequence must count up by one from 1 (the tables' identity columns do). The lock is held
/// only while the value moves, not until the transaction ends: a sequence change is not
/// transactional, so the next session sees it at once.
///
/// # Safety
/// Call inside a transaction that may write; `seq` must be a sequence.
pub unsafe fn reserve(seq: pg_sys::Oid, n: i64) -> i64 {
    debug_assert!(n > 0);
    unsafe {
        let lock = pg_sys::ExclusiveLock as pg_sys::LOCKMODE;
        pg_sys::LockRelationOid(seq, lock);
        // The sequence belongs to the extension's owner; the session may run as anyone (a role
        // running DDL has no rights on it), so both calls run as the owner, as PostgreSQL runs
        // a foreign key check as the table's owner.
        let owner = relation_owner(seq);
        let (mut saved_user, mut saved_context) = (pg_sys::InvalidOid, 0);
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(owner, saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
        // NULL when nextval() was never called: an identity sequence then starts at 1.
        let last = pgrx::direct_function_call::<i64>(pg_sys::pg_sequence_last_value, &[seq.into_datum()]).unwrap_or(0);
        let first = last + 1;
        pgrx::direct_function_call::<i64>(pg_sys::setval_oid, &[seq.into_datum(), (last + n).into_datum()]);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
        pg_sys::UnlockRelationOid(seq, lock);
        first
    }
}

unsafe fn relation_owner(relid: pg_sys::Oid) -> pg_sys::Oid {
    unsafe {
        let r = pg_sys::RelationIdGetRelation(relid);
        if r.is_null() {
            error!(
                "migrate_guard: sequence {} is missing; reinstall the extension",
                relid.to_u32()
            );
        }
        let owner = (*(*r).rd_rel).relowner;
        pg_sys::RelationClose(r);
        owner
    }
}

/// The identity sequence of column 1 (`id`) of `table`.
///
/// # Safety
/// Call inside a transaction.
pub unsafe fn identity_sequence(table: pg_sys::Oid) -> pg_sys::Oid {
    unsafe { crate::server::compat::identity_sequence(table, 1) }
}

/// The tables whose ids `migrate_guard._next_id()` hands out.
const ID_TABLES: [&str; 3] = ["migrations", "backfills", "expansion_registry"];

/// The next id for a row of `migrate_guard.migrations` or `migrate_guard.backfills`, for the
/// extension's own SQL functions, which insert those rows with `OVERRIDING SYSTEM VALUE` so that
/// calling them leaves the caller's `lastval()` alone. The caller needs INSERT on the table, as
/// for the insert itself.
pub fn next_row_id(tbl: pg_sys::Oid) -> i64 {
    let Some(rel) = crate::catalog::CatalogFacts::new(false).rel_by_oid(tbl) else {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!("migrate_guard: no relation with oid {}", tbl.to_u32())
        );
        unreachable!()
    };
    if rel.schema != "migrate_guard" || !ID_TABLES.contains(&rel.name.as_str()) {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "migrate_guard: _next_id() serves only migrate_guard.migrations, backfills and expansion_registry, not {}",
                rel.display
            )
        );
    }
    // SAFETY: a syscache read and the ACL check of an existing relation.
    let allowed = unsafe {
        pg_sys::pg_class_aclcheck(tbl, pg_sys::GetUserId(), pg_sys::ACL_INSERT as pg_sys::AclMode)
            == pg_sys::AclResult::ACLCHECK_OK
    };
    if !allowed {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", rel.name)
        );
    }
    // SAFETY: inside the calling statement's transaction; the table's identity sequence exists.
    unsafe { reserve(identity_sequence(tbl), 1) }
}
