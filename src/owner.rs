//! Running catalog writes as the extension's owner.
//!
//! `migrate_guard.history` and `migrate_guard.migrations` accept writes from no ordinary role;
//! the extension writes them itself, as the role that owns them, from inside its own C code, like
//! a SECURITY DEFINER function: as a security-restricted operation, with statements prepared under
//! `search_path = pg_catalog, pg_temp` so that no object or operator of the caller's is picked up.

use crate::catalog::resolve;
use crate::model::RelRef;
use pgrx::pg_sys;
use pgrx::prelude::*;

/// The role that owns `migrate_guard.history` (the role that installed the extension).
fn owner() -> pg_sys::Oid {
    let table = resolve(&RelRef::new(Some("migrate_guard"), "history"))
        .unwrap_or_else(|| error!("migrate_guard: table migrate_guard.history is missing; reinstall the extension"));
    // SAFETY: relcache read of a relation that exists.
    unsafe {
        let r = pg_sys::RelationIdGetRelation(table);
        let owner = (*(*r).rd_rel).relowner;
        pg_sys::RelationClose(r);
        owner
    }
}

/// Run `f` as the extension owner, as a security-restricted operation. Queries inside must be
/// plans prepared under [`with_pinned_search_path`] (or fully qualified SQL).
pub fn as_extension_owner<T>(f: impl FnOnce() -> T) -> T {
    let owner = owner();
    let (mut saved_user, mut saved_context) = (pg_sys::InvalidOid, 0);
    // SAFETY: the same calls PostgreSQL's fmgr_security_definer makes around a SECURITY DEFINER
    // function. If `f` raises an error, the (sub)transaction abort restores the user.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let result = f();
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}

/// Run `f` with `search_path = pg_catalog, pg_temp`, restored afterwards (as a function's
/// `SET search_path` clause does).
pub fn with_pinned_search_path<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: a GUC nest level, popped below; an error's abort pops it too.
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    unsafe {
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            PgLogLevel::ERROR as i32,
            false,
        );
    }
    let result = f();
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };
    result
}
