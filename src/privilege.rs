//! Whose rights the extension acts with.
//!
//! Every function a user calls (an *entry point*) runs its user-visible work with the caller's
//! rights: the DDL of an expansion, the UPDATE of a backfill batch, the plan of a condition. The
//! extension's own bookkeeping (its tables, which no other role may write) runs as the
//! extension's owner. The two never mix in one statement:
//!
//! * An entry point written in PL/pgSQL is declared `LANGUAGE c` with the symbol
//!   `migrate_guard_entry`, and its body is a PL/pgSQL function of the same name with a leading
//!   underscore (`contract` → `_contract`) that only the owner may execute. The entry records
//!   the caller (role, security context, search_path), switches to the owner as a
//!   security-restricted operation and calls the body through the function manager.
//! * The body reaches the caller's rights only through `migrate_guard._as_caller(sql)`, which
//!   runs one statement as the recorded caller with the caller's search_path; it names the
//!   caller with `migrate_guard._caller()`. No body contains `EXECUTE` or `current_user` (a
//!   golden test checks the bodies).
//! * The procedures that commit between batches (`backfill`, `backfill_expansion`) are Rust:
//!   PostgreSQL does not let a transaction end while the user id is switched, so they run as the
//!   caller and switch to the owner only around each bookkeeping call, within one transaction.
//!
//! While an expansion's helper runs one of its steps, the step's own DDL is let through by the
//! guard ([`step_in_progress`]); nothing a session can set turns that on.

use core::ffi::CStr;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};

/// The role an entry point was called by, and what it ran with.
#[derive(Clone)]
struct Caller {
    role: pg_sys::Oid,
    sec_context: i32,
    search_path: String,
    /// The expansion whose step this entry point runs, with the tables the step may change.
    step: Option<(i64, Vec<u32>)>,
}

thread_local! {
    static CALLERS: RefCell<Vec<Caller>> = const { RefCell::new(Vec::new()) };
    /// Set while `_as_caller` runs a statement that is not one of the step's own DDL (a check of
    /// a caller's expression): what that runs is not let through as the step.
    static STEP_SUSPENDED: Cell<u32> = const { Cell::new(0) };
    /// `(extension oid, owner)`, looked up once per backend (and again if the extension changed).
    static OWNER: Cell<(pg_sys::Oid, pg_sys::Oid)> = const { Cell::new((pg_sys::InvalidOid, pg_sys::InvalidOid)) };
}

fn fail(code: PgSqlErrorCode, message: String) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(code, message, "migrate_guard").report(PgLogLevel::ERROR);
    unreachable!()
}

/// The role that owns the extension (the superuser who created it): owner of its tables.
pub fn extension_owner() -> pg_sys::Oid {
    // SAFETY: catalog lookups inside a transaction.
    unsafe {
        let ext = pg_sys::get_extension_oid(c"migrate_guard".as_ptr(), true);
        if ext == pg_sys::InvalidOid {
            fail(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                "migrate_guard: the extension is not installed in this database".into(),
            );
        }
        let (cached_ext, owner) = OWNER.get();
        if cached_ext == ext {
            return owner;
        }
        let owner = with_safe_path(|| {
            Spi::get_one_with_args::<pg_sys::Oid>(
                "SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.oid OPERATOR(pg_catalog.=) $1",
                &[ext.into()],
            )
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            fail(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                "migrate_guard: cannot find the extension's owner".into(),
            )
        });
        OWNER.set((ext, owner));
        owner
    }
}

/// Restores the user id and pops the caller when an entry point's owner part ends, however it
/// ends (an ERROR unwinds through here as a Rust panic).
struct OwnerScope {
    user: pg_sys::Oid,
    sec_context: i32,
}

impl Drop for OwnerScope {
    fn drop(&mut self) {
        // SAFETY: plain assignments of backend globals, valid at any point of a transaction.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.sec_context) };
        CALLERS.with_borrow_mut(|c| {
            c.pop();
        });
    }
}

/// Run `f` as the extension's owner, in a security-restricted operation, with `search_path =
/// pg_catalog, pg_temp` and the current role recorded as the caller for [`as_caller`],
/// `_caller()` and `_as_caller()`.
pub fn run_as_owner<T>(f: impl FnOnce() -> T) -> T {
    let owner = extension_owner();
    let (mut user, mut sec_context) = (pg_sys::InvalidOid, 0);
    // SAFETY: reads of backend state; namespace_search_path is the search_path setting's value.
    let search_path = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut sec_context);
        crate::ddl::cstr(pg_sys::namespace_search_path).unwrap_or_default()
    };
    CALLERS.with_borrow_mut(|c| {
        c.push(Caller {
            role: user,
            sec_context,
            search_path,
            step: None,
        })
    });
    let _scope = OwnerScope { user, sec_context };
    // SAFETY: as SECURITY DEFINER functions do; undone by OwnerScope, or by the transaction's
    // (or subtransaction's) abort, which restores the user id it started with.
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            owner,
            sec_context | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as i32,
        )
    };
    with_safe_path(f)
}

fn current_caller() -> Caller {
    CALLERS.with_borrow(|c| c.last().cloned()).unwrap_or_else(|| {
        fail(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "migrate_guard: this internal function serves the extension's own functions only".into(),
        )
    })
}

/// The role that called the running entry point.
pub fn caller_role() -> pg_sys::Oid {
    current_caller().role
}

struct CallerScope {
    user: pg_sys::Oid,
    sec_context: i32,
    suspended: bool,
}

impl Drop for CallerScope {
    fn drop(&mut self) {
        // SAFETY: as in OwnerScope.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.sec_context) };
        if self.suspended {
            STEP_SUSPENDED.set(STEP_SUSPENDED.get().saturating_sub(1));
        }
    }
}

/// Run `f` with the rights and search_path of the running entry point's caller. `step`: what
/// `f` runs is the expansion step's own DDL (otherwise the step does not cover it).
pub fn as_caller<T>(step: bool, f: impl FnOnce() -> T) -> T {
    let caller = current_caller();
    let (mut user, mut sec_context) = (pg_sys::InvalidOid, 0);
    // SAFETY: reads of backend state.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut sec_context) };
    if !step {
        STEP_SUSPENDED.set(STEP_SUSPENDED.get() + 1);
    }
    let _scope = CallerScope {
        user,
        sec_context,
        suspended: !step,
    };
    // SAFETY: as in OwnerScope; undone by CallerScope.
    unsafe { pg_sys::SetUserIdAndSecContext(caller.role, caller.sec_context) };
    with_search_path(&caller.search_path, f)
}

/// Run `f` with `search_path` set to `path` (a function's SET clause, as `fmgr_security_definer`
/// applies it: a GUC nest level, the value set with GUC_ACTION_SAVE, the level popped afterwards;
/// an ERROR skips the pop, and the (sub)transaction abort that follows it restores the value).
pub fn with_search_path<T>(path: &str, f: impl FnOnce() -> T) -> T {
    let path = std::ffi::CString::new(path).unwrap_or_default();
    // SAFETY: see above.
    unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            path.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        let out = f();
        pg_sys::AtEOXact_GUC(true, level);
        out
    }
}

/// Run `f`, the extension's own SQL about the catalog, with `search_path = pg_catalog, pg_temp`:
/// no function or operator that another role put on the caller's search_path can stand in for
/// the built-in ones it names.
pub fn with_safe_path<T>(f: impl FnOnce() -> T) -> T {
    with_search_path("pg_catalog, pg_temp", f)
}

/// The expansion whose step is running, when the statement being judged is that step's own
/// DDL on the step's tables: the helpers record the step ([`begin_step`]) before they run it,
/// and nothing else can.
pub fn step_in_progress(tables: &[u32]) -> Option<i64> {
    if STEP_SUSPENDED.get() > 0 {
        return None;
    }
    let (id, allowed) = CALLERS.with_borrow(|c| c.last().and_then(|c| c.step.clone()))?;
    tables.iter().all(|t| allowed.contains(t)).then_some(id)
}

/// `migrate_guard._caller()`: the role that called the running entry point.
#[pg_extern(schema = "migrate_guard", name = "_caller", volatile, parallel_unsafe)]
fn caller_oid() -> pg_sys::Oid {
    caller_role()
}

/// `migrate_guard._caller_name()`: its name.
#[pg_extern(schema = "migrate_guard", name = "_caller_name", volatile, parallel_unsafe)]
fn caller_name() -> String {
    // SAFETY: a catalog read of an existing role.
    unsafe { crate::history::role_name(caller_role()) }
}

/// `migrate_guard._as_caller(sql, step)`: run `sql` (one statement the body built from names
/// read from the catalog) with the caller's rights and search_path.
#[pg_extern(schema = "migrate_guard", name = "_as_caller", volatile, parallel_unsafe)]
fn as_caller_sql(sql: &str, step: default!(bool, false)) {
    as_caller(step, || {
        Spi::run(sql).unwrap_or_else(|e| error!("migrate_guard: {e}"));
    })
}

/// `migrate_guard._step_begin(id, tables)`: the running entry point runs a step of expansion
/// `id` on `tables`; the guard lets that step's DDL through until the entry point returns.
#[pg_extern(schema = "migrate_guard", name = "_step_begin", volatile, parallel_unsafe)]
fn step_begin(id: i64, tables: Vec<Option<pg_sys::Oid>>) {
    let tables: Vec<u32> = tables.into_iter().flatten().map(|o| o.to_u32()).collect();
    current_caller();
    CALLERS.with_borrow_mut(|c| {
        if let Some(top) = c.last_mut() {
            top.step = Some((id, tables));
        }
    });
}

pgrx::extension_sql!(
    r#"
REVOKE ALL ON FUNCTION migrate_guard._caller(), migrate_guard._caller_name(),
    migrate_guard._as_caller(text, boolean), migrate_guard._step_begin(bigint, oid[]) FROM PUBLIC;
"#,
    name = "privilege_grants",
    requires = [caller_oid, caller_name, as_caller_sql, step_begin]
);

/// The function manager's entry of every PL/pgSQL entry point: calls its body, the function
/// `migrate_guard._<name>` with the same argument types, as the owner (see the module comment).
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn migrate_guard_entry(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let fn_oid = (*(*fcinfo).flinfo).fn_oid;
        let body = body_of(fn_oid);
        let nargs = (*fcinfo).nargs as usize;
        run_as_owner(|| {
            let mut flinfo: pg_sys::FmgrInfo = std::mem::zeroed();
            pg_sys::fmgr_info(body, &mut flinfo);
            let size = std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>()
                + nargs * std::mem::size_of::<pg_sys::NullableDatum>();
            let inner = pg_sys::palloc0(size) as pg_sys::FunctionCallInfo;
            (*inner).flinfo = &mut flinfo;
            (*inner).context = (*fcinfo).context;
            (*inner).resultinfo = (*fcinfo).resultinfo;
            (*inner).fncollation = (*fcinfo).fncollation;
            (*inner).nargs = nargs as i16;
            let from = (*fcinfo).args.as_slice(nargs);
            let to = (*inner).args.as_mut_slice(nargs);
            to.copy_from_slice(from);
            // A set-returning body hands back its rows in one tuplestore (PL/pgSQL always does).
            let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
            if !rsinfo.is_null() && pgrx::is_a(rsinfo.cast(), pg_sys::NodeTag::T_ReturnSetInfo) {
                (*rsinfo).allowedModes &= pg_sys::SetFunctionReturnMode::SFRM_Materialize as i32;
            }
            let addr = flinfo.fn_addr.expect("a function manager entry");
            let result = pg_sys::ffi::pg_guard_ffi_boundary(|| addr(inner));
            (*fcinfo).isnull = (*inner).isnull;
            pg_sys::pfree(inner.cast());
            result
        })
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_migrate_guard_entry() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// The body of entry point `fn_oid`: `migrate_guard._<name>` with the same argument types.
unsafe fn body_of(fn_oid: pg_sys::Oid) -> pg_sys::Oid {
    thread_local! {
        static BODIES: RefCell<Vec<(pg_sys::Oid, pg_sys::Oid)>> = const { RefCell::new(Vec::new()) };
    }
    if let Some(b) = BODIES.with_borrow(|v| v.iter().find(|(e, _)| *e == fn_oid).map(|(_, b)| *b)) {
        return b;
    }
    let name = unsafe { CStr::from_ptr(pg_sys::get_func_name(fn_oid)) }
        .to_string_lossy()
        .into_owned();
    // (The caller's search_path may hold operators that shadow the built-in ones: this runs
    // before the body pins its own.)
    let body = with_safe_path(|| {
        Spi::get_one_with_args::<pg_sys::Oid>(
            "SELECT b.oid FROM pg_catalog.pg_proc e JOIN pg_catalog.pg_proc b
                ON b.pronamespace OPERATOR(pg_catalog.=) e.pronamespace
               AND b.proname::pg_catalog.text OPERATOR(pg_catalog.=) ('_' OPERATOR(pg_catalog.||) e.proname::pg_catalog.text)
               AND b.proargtypes OPERATOR(pg_catalog.=) e.proargtypes
              WHERE e.oid OPERATOR(pg_catalog.=) $1",
            &[fn_oid.into()],
        )
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        fail(
            PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
            format!("migrate_guard: the body of {name} is missing; reinstall the extension"),
        )
    });
    BODIES.with_borrow_mut(|v| v.push((fn_oid, body)));
    body
}
