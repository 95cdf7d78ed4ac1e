//! C symbols of functions that earlier releases declared and this one no longer has.
//!
//! A DBA upgrades the package (this library) first and runs `ALTER EXTENSION migrate_guard
//! UPDATE` afterwards, so for a while a database's catalog still holds an older release's
//! `CREATE FUNCTION … AS 'MODULE_PATHNAME', '<symbol>'`. PostgreSQL looks such a symbol up when
//! the function is created (`CREATE EXTENSION … VERSION '<old>'`) and when it is called: each
//! retired symbol therefore stays, and does nothing but refuse, so that an old release's
//! functions (some of which an ordinary role could call with inputs that crashed the server)
//! cannot run against this library. The update drops them.

use pgrx::pg_sys;

macro_rules! retired {
    ($($sym:ident, $finfo:ident, $name:literal;)*) => {$(
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        /// # Safety
        /// Called by PostgreSQL's function manager.
        #[pgrx::pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $sym(_fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            refuse($name)
        }
    )*};
}

retired! {
    backfill_tids_wrapper, pg_finfo_backfill_tids_wrapper, "_backfill_tids";
    backfill_check_call_wrapper, pg_finfo_backfill_check_call_wrapper, "_backfill_check_call";
    backfill_current_xid_wrapper, pg_finfo_backfill_current_xid_wrapper, "_backfill_current_xid";
    backfill_duration_wrapper, pg_finfo_backfill_duration_wrapper, "_backfill_duration";
    backfill_prepare_wrapper, pg_finfo_backfill_prepare_wrapper, "_backfill_prepare";
    backfill_progress_wrapper, pg_finfo_backfill_progress_wrapper, "_backfill_progress";
}

fn refuse(name: &str) -> pg_sys::Datum {
    pgrx::pg_sys::panic::ErrorReport::new(
        pgrx::PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("migrate_guard.{name}() belongs to an earlier release of migrate_guard and is not in this library"),
        "migrate_guard",
    )
    .set_detail(format!(
        "The library is version {}; this database still has the objects of an earlier release.",
        env!("CARGO_PKG_VERSION")
    ))
    .set_hint("Run ALTER EXTENSION migrate_guard UPDATE as a superuser.")
    .report(pgrx::PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}
