//! What a procedure written in Rust needs to commit between batches: a non-atomic SPI
//! connection, its COMMIT, and an ERROR with any SQLSTATE raised once the connection is closed.
//!
//! `migrate_guard.backfill` and `migrate_guard.backfill_expansion` are such procedures. They run
//! with the caller's rights (PostgreSQL refuses to end a transaction while the user id is
//! switched, which is why a SECURITY DEFINER procedure cannot commit), and reach the
//! extension's own tables only through [`crate::privilege::run_as_owner`], inside one
//! transaction at a time.

use crate::report::{self, Pending};
use pgrx::pg_sys;
use pgrx::prelude::*;

/// An ERROR to raise when the procedure ends: any SQLSTATE (the one a batch failed with), with
/// DETAIL and HINT.
#[derive(Debug, Clone)]
pub struct Failure {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(sqlstate: &str, message: String) -> Self {
        Failure {
            sqlstate: sqlstate.to_owned(),
            message,
            detail: None,
            hint: None,
        }
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
    /// In PostgreSQL memory, ready for [`report::throw`].
    pub fn pending(&self) -> *mut Pending {
        let mut code = [b'X', b'X', b'0', b'0', b'0'];
        if self.sqlstate.len() == 5 && self.sqlstate.bytes().all(|b| b.is_ascii_alphanumeric()) {
            code.copy_from_slice(self.sqlstate.as_bytes());
        }
        Pending::error(
            &code,
            &self.message,
            self.detail.as_deref().unwrap_or(""),
            self.hint.as_deref().unwrap_or(""),
        )
    }
}

/// The outcome of a procedure's body: `Err` is raised after the SPI connection is closed.
pub type Outcome = Result<(), Failure>;

/// Refuses a call where the procedure could not commit between batches: inside a transaction
/// block (BEGIN … CALL, or several statements sent as one string), or from a function or a
/// procedure called by one (an atomic context).
pub fn check_callable(fcinfo: pg_sys::FunctionCallInfo, name: &str) -> Outcome {
    // SAFETY: reads of the transaction state and of the call context the executor passed.
    let (in_block, atomic) = unsafe {
        let ctx = (*fcinfo).context;
        let atomic = ctx.is_null()
            || !pgrx::is_a(ctx, pg_sys::NodeTag::T_CallContext)
            || (*(ctx as *mut pg_sys::CallContext)).atomic;
        (pg_sys::IsTransactionBlock(), atomic)
    };
    if in_block {
        return Err(Failure::new("25001", format!("migrate_guard.{name} cannot run inside a transaction block"))
            .hint("It commits after every batch: CALL it on its own, outside BEGIN … COMMIT (with psql -1, put it in a file of its own)."));
    }
    if atomic {
        return Err(Failure::new(
            "2D000",
            format!("migrate_guard.{name} cannot commit here: it was called from a function or a DO block"),
        )
        .hint("It commits after every batch: CALL it as a statement of its own (a procedure called with CALL from another procedure works too)."));
    }
    Ok(())
}

/// A non-atomic SPI connection: the procedure's own, through which it commits.
pub struct NonAtomic(());

impl NonAtomic {
    pub fn connect() -> Self {
        // SAFETY: called from a procedure invoked with CALL in a non-atomic context (checked by
        // check_callable); closed by finish().
        let rc = unsafe { pg_sys::SPI_connect_ext(pg_sys::SPI_OPT_NONATOMIC as i32) };
        if rc < 0 {
            error!("migrate_guard: SPI_connect_ext failed: {rc}");
        }
        NonAtomic(())
    }

    /// COMMIT, and start the next transaction.
    pub fn commit(&self) {
        // SAFETY: no subtransaction and no other SPI connection of ours is open here; the
        // connection is non-atomic.
        unsafe {
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                pg_sys::SPI_commit();
                #[cfg(any(feature = "pg13", feature = "pg14"))]
                pg_sys::SPI_start_transaction();
            })
        }
    }

    pub fn finish(self) {
        // SAFETY: closes the connection opened by connect().
        unsafe { pg_sys::SPI_finish() };
    }
}

/// The body of a procedure's C entry point: runs `body` with a non-atomic SPI connection and
/// raises its failure once the connection is closed and every Rust value is gone.
///
/// # Safety
/// `fcinfo` is the procedure call's.
pub unsafe fn run(
    fcinfo: pg_sys::FunctionCallInfo,
    name: &str,
    body: impl FnOnce(&NonAtomic) -> Outcome,
) -> pg_sys::Datum {
    let failure = match check_callable(fcinfo, name) {
        Err(f) => Some(f),
        Ok(()) => {
            let spi = NonAtomic::connect();
            // The backfill's own statements are not application use (usage tracking).
            let out = crate::usage::internal(|| body(&spi));
            spi.finish();
            out.err()
        }
    };
    if let Some(f) = failure {
        let pending = f.pending();
        drop(f);
        // SAFETY: the failure's strings are in PostgreSQL memory and nothing in this frame
        // needs dropping.
        unsafe { report::throw(pending) };
    }
    pg_sys::Datum::from(0)
}

/// Declares the C entry point `$sym` of a procedure whose body is `$body(fcinfo, &NonAtomic)`.
macro_rules! procedure_entry {
    ($sym:ident, $finfo:ident, $name:literal, $body:path) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        /// # Safety
        /// Called by PostgreSQL's function manager for a CALL.
        #[pgrx::pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $sym(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
            // SAFETY: passed on from the function manager.
            unsafe { $crate::backfill::procedure::run(fcinfo, $name, |spi| $body(fcinfo, spi)) }
        }
    };
}

pub(crate) use procedure_entry;

/// Run `sql` with `args` through a fresh SPI connection (with a new snapshot for the statement,
/// as a procedure's own statements get), returning the rows' first columns as `T`.
pub fn query<T: FromDatum + IntoDatum>(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Vec<Option<T>> {
    Spi::connect_mut(|c| {
        let rows = c.update(sql, None, args)?;
        rows.map(|r| r.get::<T>(1)).collect::<Result<Vec<_>, _>>()
    })
    .unwrap_or_else(|e: pgrx::spi::Error| error!("migrate_guard: {e}"))
}

/// [`query`] of a statement that returns no rows: the rows it processed.
pub fn execute(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> i64 {
    Spi::connect_mut(|c| c.update(sql, None, args).map(|t| t.len() as i64))
        .unwrap_or_else(|e: pgrx::spi::Error| error!("migrate_guard: {e}"))
}
