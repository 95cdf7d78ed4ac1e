//! Every `migrate_guard.*` setting. The names are the public contract.

use crate::policy::{AllowList, Mode};
use crate::rules::RuleId;
use core::ffi::{CStr, c_char, c_void};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use pgrx::{pg_guard, pg_sys};
use std::ffi::CString;

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum GuardMode {
    #[name = c"enforce"]
    Enforce,
    #[name = c"warn"]
    Warn,
    #[name = c"off"]
    Off,
}

pub static MODE: GucSetting<GuardMode> = GucSetting::<GuardMode>::new(GuardMode::Enforce);
pub static ALLOW: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ASSUME_POPULATED: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static LOCK_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(5000);
pub static REQUIRE_LOCK_TIMEOUT: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static RECORD_HISTORY: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static REQUIRE_MIGRATION: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static CURRENT_MIGRATION: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static MAX_ROWS: GucSetting<i32> = GucSetting::<i32>::new(10_000);
pub static RESTORE_ROLES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static RESTORE_WINDOW_S: GucSetting<i32> = GucSetting::<i32>::new(86_400);
pub static TRACK_USAGE: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static USAGE_MAX_ENTRIES: GucSetting<i32> = GucSetting::<i32>::new(50_000);
pub static USAGE_WINDOW_S: GucSetting<i32> = GucSetting::<i32>::new(86_400);

/// The settings that change the guard's verdicts (`check()` follows a script's SETs of them).
pub const VERDICT_SETTINGS: [&str; 7] = [
    "migrate_guard.mode",
    "migrate_guard.allow",
    "migrate_guard.assume_populated",
    "migrate_guard.lock_timeout",
    "migrate_guard.require_lock_timeout",
    "migrate_guard.require_migration",
    "migrate_guard.max_rows",
];

pub fn mode() -> Mode {
    match MODE.get() {
        GuardMode::Enforce => Mode::Enforce,
        GuardMode::Warn => Mode::Warn,
        GuardMode::Off => Mode::Off,
    }
}

/// The current `migrate_guard.allow`, parsed. The check hook already refused unknown ids; a
/// value that slipped past it (a placeholder set before the library was loaded) is re-checked.
pub fn allow_list() -> Result<AllowList, String> {
    match ALLOW.get() {
        Some(v) => AllowList::parse_setting(&v.to_string_lossy()),
        None => Ok(AllowList::default()),
    }
}

/// `migrate_guard.max_rows` (0: the data-change rules are off).
pub fn max_rows() -> i64 {
    MAX_ROWS.get() as i64
}

pub fn register() {
    GucRegistry::define_enum_guc(
        c"migrate_guard.mode",
        c"What the DDL guard does with an unsafe statement: enforce (ERROR), warn (WARNING) or off.",
        c"Only superusers can change it; set it per database or role with ALTER DATABASE/ROLE ... SET.",
        &MODE,
        GucContext::Suset,
        GucFlags::default(),
    );
    // SAFETY: the check hook is #[pg_guard]ed, so a panic inside it becomes an ERROR.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"migrate_guard.allow",
            c"Comma-separated rule ids (or all) the DDL guard lets through.",
            c"Normally set with SET LOCAL for one transaction. An unknown rule id is an error.",
            &ALLOW,
            GucContext::Userset,
            GucFlags::default(),
            Some(check_allow),
            None,
            None,
        );
    }
    GucRegistry::define_bool_guc(
        c"migrate_guard.assume_populated",
        c"Treat every existing table as if it held data.",
        c"For development and CI databases: block there what production would block, even on empty tables.",
        &ASSUME_POPULATED,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"migrate_guard.lock_timeout",
        c"lock_timeout the guard sets when a statement needs a strong lock on an existing table and none is set.",
        c"Applies to the rest of the transaction, with a NOTICE. 0 disables it.",
        &LOCK_TIMEOUT_MS,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_bool_guc(
        c"migrate_guard.require_lock_timeout",
        c"Block statements that need a strong lock on an existing table while lock_timeout is 0 (rule lock-timeout).",
        c"Instead of setting a lock_timeout itself, the guard then demands one. Only superusers can change it.",
        &REQUIRE_LOCK_TIMEOUT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"migrate_guard.record_history",
        c"Record every DDL statement that commits in migrate_guard.history.",
        c"Only superusers can change it.",
        &RECORD_HISTORY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"migrate_guard.require_migration",
        c"Block DDL that runs outside a registered migration (rule manual-ddl).",
        c"A migration is registered with migrate_guard.begin_migration() and ended with migrate_guard.end_migration(). \
          Only superusers can change it.",
        &REQUIRE_MIGRATION,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"migrate_guard.current_migration",
        c"Id of the migration open in this session (set by begin_migration, cleared by end_migration).",
        c"Read-only for ordinary roles.",
        &CURRENT_MIGRATION,
        GucContext::Suset,
        GucFlags::NO_RESET_ALL | GucFlags::DISALLOW_IN_FILE,
    );
    GucRegistry::define_int_guc(
        c"migrate_guard.max_rows",
        c"Rows a data change may touch inside a migration or a DDL transaction (rules large-update, schema-and-data).",
        c"An UPDATE or DELETE the planner estimates past it, inside a registered migration or a transaction that has \
          run DDL, is large-update; past it in all under a schema change's strong lock, schema-and-data. 0 turns both off. \
          Only superusers can change it; other roles allow the rules per transaction with migrate_guard.allow.",
        &MAX_ROWS,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"migrate_guard.restore_roles",
        c"Roles (comma-separated) whose members' sessions may restore a dump past the rules, besides superusers.",
        c"A session that restores a dump (application_name pg_restore, or row_security and check_function_bodies off) \
          is exempt for the relations a restore created, if its login role is a superuser or a member of one of these. \
          Only superusers can change it.",
        &RESTORE_ROLES,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"migrate_guard.restore_window",
        c"How long after a restore created a relation a restoring session is exempt from the rules for it (0: never).",
        c"Relations that existed before a restore are never exempt. Only superusers can change it.",
        &RESTORE_WINDOW_S,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    // SAFETY: a process global, read while the library loads.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_bool_guc(
            c"migrate_guard.track_usage",
            c"Record which tables, columns and indexes queries use (with shared_preload_libraries).",
            c"The evidence behind the usage verdicts (drop-column, drop-index-in-use, contract). Changed only by a restart.",
            &TRACK_USAGE,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        GucRegistry::define_int_guc(
            c"migrate_guard.usage_max_entries",
            c"How many (relation, column) pairs usage tracking can hold; the shared memory is sized by it.",
            c"A table counts once for itself and once per column read or written. When full, new pairs are not \
              recorded (and their usage counts as not known). Changed only by a restart.",
            &USAGE_MAX_ENTRIES,
            100,
            10_000_000,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
    GucRegistry::define_int_guc(
        c"migrate_guard.usage_window",
        c"How far back usage evidence looks: a column no query used within it counts as unused.",
        c"Evidence counts only once tracking has run this long. Only superusers can change it.",
        &USAGE_WINDOW_S,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    // SAFETY: called once from _PG_init with a static C string.
    unsafe { crate::server::compat::reserve_guc_prefix(c"migrate_guard") };
}

#[pg_guard]
unsafe extern "C-unwind" fn check_allow(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: PostgreSQL passes a valid pointer to the proposed (possibly NULL) value.
    let value = unsafe {
        let p = *newval;
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    match AllowList::parse_setting(&value) {
        Ok(_) => true,
        Err(bad) => {
            let detail = CString::new(format!("Unknown rule id \"{bad}\".")).unwrap_or_default();
            let hint = CString::new(format!("Known rule ids: {}; or all.", RuleId::list())).unwrap_or_default();
            // SAFETY: guc.c reads these right after the hook returns false; pstrdup puts them in
            // the current memory context, which outlives that report.
            unsafe {
                pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr());
                pg_sys::GUC_check_errhint_string = pg_sys::pstrdup(hint.as_ptr());
            }
            false
        }
    }
}
