//! Restoring a dump into a guarded database.
//!
//! pg_restore (and psql running a plain dump) creates tables, fills them, then builds their
//! indexes and constraints: on a table that holds data, each of those is a statement the guard
//! blocks. A restore is exempt from the rules for what it restores, and for nothing else:
//!
//! * The session claims it: application_name `pg_restore` (its parallel workers too), or
//!   `row_security` and `check_function_bodies` both off, as every pg_dump script starts. The
//!   claim counts only for a superuser session or one whose login role is a member of a role in
//!   `migrate_guard.restore_roles`, and only while `migrate_guard.restore_window` is not 0.
//! * It covers the relations a restoring session created (the extension records them in
//!   `migrate_guard.restored_relations` as they are created, so that pg_restore's parallel
//!   workers find the tables its leader created) no longer than `restore_window` ago. A relation
//!   that existed before the restore is judged and recorded as always, whatever the session set.
//! * An exempted statement that a rule would have stopped is written to the server log
//!   (`migrate_guard: restore exempted {…}`). It is not a history row: the dump brings back the
//!   history of what it restores, and rows written during the restore would collide with it.

use crate::gucs;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// Relations this session found in the registry, or created itself while restoring.
    static KNOWN: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// Statements whose created relations go into the registry at their end.
    static NOTE_AT_END: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// Whether this session already pruned the registry's expired rows.
    static PRUNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The session says it restores a dump (what any session can set).
pub fn claimed() -> bool {
    // SAFETY: reads of GUC variables of this backend.
    unsafe {
        let app = pg_sys::application_name;
        (!app.is_null() && core::ffi::CStr::from_ptr(app).to_bytes() == b"pg_restore")
            || (!pg_sys::row_security && !pg_sys::check_function_bodies)
    }
}

/// The session restores a dump, and may be exempted for it.
pub fn restoring() -> bool {
    claimed() && gucs::RESTORE_WINDOW_S.get() > 0 && login_role_may_restore()
}

fn login_role_may_restore() -> bool {
    // SAFETY: reads of backend state and the role catalog inside a transaction.
    unsafe {
        let login = pg_sys::GetSessionUserId();
        if pg_sys::superuser_arg(login) {
            return true;
        }
        let Some(roles) = gucs::RESTORE_ROLES.get() else {
            return false;
        };
        let roles = roles.to_string_lossy().into_owned();
        roles.split(',').map(str::trim).filter(|r| !r.is_empty()).any(|r| {
            let name = std::ffi::CString::new(r).unwrap_or_default();
            let oid = pg_sys::get_role_oid(name.as_ptr(), true);
            oid != pg_sys::InvalidOid && pg_sys::is_member_of_role(login, oid)
        })
    }
}

/// Every relation in `tables` was created by a restore within the window.
pub fn exempt(tables: &[u32]) -> bool {
    let missing: Vec<u32> = KNOWN.with_borrow(|k| tables.iter().copied().filter(|t| !k.contains(t)).collect());
    if missing.is_empty() {
        return true;
    }
    let found = crate::privilege::run_as_owner(|| {
        Spi::get_one_with_args::<i64>(
            "SELECT pg_catalog.count(*) FROM migrate_guard.restored_relations r
              WHERE r.relid OPERATOR(pg_catalog.=) ANY ($1)
                AND r.restored_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $2))",
            &[
                missing.iter().map(|o| pg_sys::Oid::from(*o)).collect::<Vec<_>>().into(),
                (gucs::RESTORE_WINDOW_S.get() as f64).into(),
            ],
        )
    })
    .ok()
    .flatten()
    .unwrap_or(0);
    if found as usize == missing.len() {
        KNOWN.with_borrow_mut(|k| k.extend(missing));
        return true;
    }
    false
}

/// The relations statement `parsetree` creates are recorded when it ends ([`at_command_end`]).
pub fn note_at_end(parsetree: *mut pg_sys::Node) {
    NOTE_AT_END.with_borrow_mut(|n| {
        if n.len() >= 64 {
            n.remove(0);
        }
        n.push(parsetree as usize)
    });
}

/// Called at `ddl_command_end`: records the relations an exempted statement created.
pub fn at_command_end(parsetree: *mut pg_sys::Node) {
    let marked = NOTE_AT_END.with_borrow_mut(|n| match n.iter().rposition(|p| *p == parsetree as usize) {
        Some(i) => {
            n.remove(i);
            true
        }
        None => false,
    });
    if !marked {
        return;
    }
    // SAFETY: inside a ddl_command_end event trigger, where the function is valid.
    let created = unsafe { crate::history::created_relations() };
    if created.is_empty() {
        return;
    }
    KNOWN.with_borrow_mut(|k| {
        for c in &created {
            if !k.contains(c) {
                k.push(*c);
            }
        }
    });
    let prune = !PRUNED.replace(true);
    crate::privilege::run_as_owner(|| {
        if prune {
            let _ = Spi::run_with_args(
                "DELETE FROM migrate_guard.restored_relations r
                  WHERE r.restored_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $1))",
                &[(gucs::RESTORE_WINDOW_S.get() as f64).into()],
            );
        }
        Spi::run_with_args(
            "INSERT INTO migrate_guard.restored_relations (relid, restored_at)
             SELECT r, pg_catalog.now() FROM pg_catalog.unnest($1) AS r
             ON CONFLICT (relid) DO UPDATE SET restored_at = excluded.restored_at",
            &[created.iter().map(|o| pg_sys::Oid::from(*o)).collect::<Vec<_>>().into()],
        )
        .unwrap_or_else(|e| error!("migrate_guard: recording a restored relation: {e}"));
    });
}

/// `migrate_guard: restore exempted {"rules":[…],"command":…,"statement":…,"user":…,…}`: what a
/// rule would have stopped, let through as part of a restore.
pub fn log_exempted(rules: &[&str], tag: &str, client_text: &str) {
    use crate::sqltext::json_string as j;
    // SAFETY: reads of backend state.
    let (user, app, db) = unsafe {
        (
            crate::history::role_name(pg_sys::GetSessionUserId()),
            crate::ddl::cstr(pg_sys::application_name).unwrap_or_default(),
            crate::ddl::cstr(pg_sys::get_database_name(pg_sys::MyDatabaseId)).unwrap_or_default(),
        )
    };
    let rules: Vec<String> = rules.iter().map(|r| j(r)).collect();
    let line = format!(
        "migrate_guard: restore exempted {{\"rules\":[{}],\"command\":{},\"statement\":{},\"user\":{},\"application\":{},\"database\":{}}}",
        rules.join(","),
        j(tag),
        j(&crate::history::redact(tag, client_text)),
        j(&user),
        j(&app),
        j(&db)
    );
    pgrx::pg_sys::panic::ErrorReport::new(PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION, line, "migrate_guard")
        .report(PgLogLevel::LOG);
}
