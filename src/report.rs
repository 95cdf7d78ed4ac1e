//! Raising errors with migrate_guard's own SQLSTATEs.
//!
//! pgrx's error API only knows PostgreSQL's built-in SQLSTATEs, so a block is raised here with
//! `errstart`/`errfinish` directly. That call longjmps for an ERROR, which must not skip Rust
//! destructors: the event-trigger entry points call [`throw`] only from their outermost frame,
//! after every Rust value is gone, with strings copied into PostgreSQL memory.

use core::ffi::{c_char, c_int};
use pgrx::pg_sys;
use std::ffi::CString;

/// `MAKE_SQLSTATE` from `utils/elog.h`.
pub const fn make_sqlstate(code: &[u8; 5]) -> c_int {
    const fn six(c: u8) -> c_int {
        ((c.wrapping_sub(b'0')) & 0x3F) as c_int
    }
    six(code[0]) + (six(code[1]) << 6) + (six(code[2]) << 12) + (six(code[3]) << 18) + (six(code[4]) << 24)
}

/// SQLSTATE of a statement blocked by a guard rule.
pub const SQLSTATE_BLOCKED: &[u8; 5] = b"MG001";

/// A report ready to raise: all strings live in PostgreSQL memory (palloc), so nothing needs a
/// Rust destructor once it is built.
#[repr(C)]
pub struct Pending {
    pub elevel: c_int,
    pub sqlstate: c_int,
    pub message: *mut c_char,
    pub detail: *mut c_char,
    pub hint: *mut c_char,
}

fn pg_string(s: &str) -> *mut c_char {
    let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
    // SAFETY: pstrdup copies into CurrentMemoryContext; the CString is dropped after the copy.
    unsafe { pg_sys::pstrdup(c.as_ptr()) }
}

impl Pending {
    /// Build an ERROR report in palloc'd memory.
    pub fn error(sqlstate: &[u8; 5], message: &str, detail: &str, hint: &str) -> *mut Pending {
        // SAFETY: palloc0 returns zeroed memory of the requested size in CurrentMemoryContext,
        // which lives until the error is raised (or the function returns).
        unsafe {
            let p = pg_sys::palloc0(std::mem::size_of::<Pending>()) as *mut Pending;
            (*p).elevel = pgrx::PgLogLevel::ERROR as c_int;
            (*p).sqlstate = make_sqlstate(sqlstate);
            (*p).message = pg_string(message);
            (*p).detail = if detail.is_empty() {
                std::ptr::null_mut()
            } else {
                pg_string(detail)
            };
            (*p).hint = if hint.is_empty() {
                std::ptr::null_mut()
            } else {
                pg_string(hint)
            };
            p
        }
    }
}

unsafe extern "C-unwind" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg_internal(fmt: *const c_char, ...) -> c_int;
    fn errdetail_internal(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
}

/// Raise `p`. For ERROR this does not return.
///
/// # Safety
/// Call only from an `extern "C-unwind"` entry point's own frame, with no live Rust value that
/// needs dropping, and with `p` built by [`Pending::error`].
pub unsafe fn throw(p: *mut Pending) {
    unsafe {
        let p = &*p;
        if errstart(p.elevel, std::ptr::null()) {
            errcode(p.sqlstate);
            errmsg_internal(c"%s".as_ptr(), p.message);
            if !p.detail.is_null() {
                errdetail_internal(c"%s".as_ptr(), p.detail);
            }
            if !p.hint.is_null() {
                errhint(c"%s".as_ptr(), p.hint);
            }
            errfinish(c"migrate_guard".as_ptr(), 0, c"migrate_guard".as_ptr());
        }
    }
}

/// Send a NOTICE with a DETAIL and a HINT straight through `errstart`/`errfinish` (a NOTICE
/// returns), without the allocations and formatting of a general-purpose error report: the
/// lock_timeout safety net sends one for many DDL statements.
pub fn notice(message: &str, detail: &str, hint: &str) {
    let (message, detail, hint) = (c_string(message), c_string(detail), c_string(hint));
    // SAFETY: plain calls of PostgreSQL's reporting functions with NUL-terminated strings that
    // outlive them; an ERROR raised inside (out of memory) is turned into a Rust panic by the
    // boundary guard, and back into that ERROR at the entry point.
    unsafe {
        pg_sys::ffi::pg_guard_ffi_boundary(|| {
            if errstart(pgrx::PgLogLevel::NOTICE as c_int, std::ptr::null()) {
                errcode(make_sqlstate(b"00000"));
                errmsg_internal(c"%s".as_ptr(), message.as_ptr());
                errdetail_internal(c"%s".as_ptr(), detail.as_ptr());
                errhint(c"%s".as_ptr(), hint.as_ptr());
                errfinish(c"migrate_guard".as_ptr(), 0, c"migrate_guard".as_ptr());
            }
        })
    }
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// Declares a C-callable event-trigger entry point `$sym` (with its `PG_FUNCTION_INFO_V1`
/// record) around a `#[pg_guard]`ed Rust function that returns a report to raise or null. Only
/// the raise, which needs migrate_guard's own SQLSTATE, happens in the entry point's frame,
/// which owns nothing that needs dropping.
macro_rules! event_trigger_entry {
    ($sym:ident, $finfo:ident, $inner:ident) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        /// # Safety
        /// Called by PostgreSQL's function manager.
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $sym(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
            let pending = $inner(fcinfo);
            if !pending.is_null() {
                // SAFETY: built by Pending::error; no Rust value is alive in this frame.
                unsafe { $crate::report::throw(pending) };
            }
            pgrx::pg_sys::Datum::from(0)
        }
    };
}

pub(crate) use event_trigger_entry;

#[cfg(test)]
mod tests {
    #[test]
    #[allow(clippy::identity_op)] // the sums spell out PostgreSQL's MAKE_SQLSTATE, zeros included
    fn sqlstate_encoding_matches_postgres() {
        // ERRCODE_FEATURE_NOT_SUPPORTED is 0A000 = 0 + (17 << 6) ... as PostgreSQL computes it.
        assert_eq!(super::make_sqlstate(b"0A000"), 0 + (17 << 6));
        assert_eq!(
            super::make_sqlstate(b"22023"),
            2 + (2 << 6) + (0 << 12) + (2 << 18) + (3 << 24)
        );
    }
}
