//! The event triggers: where a statement is inspected before it takes its lock, and where the
//! verdict is acted on.

use crate::catalog::CatalogFacts;
use crate::facts::Facts;
use crate::policy::{self, AllowList, Mode};
use crate::report::{self, Pending};
use crate::rules::{self, RuleId};
use crate::{ddl, gucs, sqltext};
use core::ffi::CStr;
use pgrx::prelude::*;
use pgrx::{is_a, pg_sys};
use std::cell::Cell;

pgrx::extension_sql!(
    r#"
CREATE FUNCTION migrate_guard.ddl_command_start_guard() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_guard_ddl_command_start';
COMMENT ON FUNCTION migrate_guard.ddl_command_start_guard() IS
    'migrate_guard: inspects each DDL statement before it takes its lock';
CREATE EVENT TRIGGER migrate_guard_ddl_command_start ON ddl_command_start
    EXECUTE FUNCTION migrate_guard.ddl_command_start_guard();

CREATE FUNCTION migrate_guard.table_rewrite_guard() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_guard_table_rewrite';
COMMENT ON FUNCTION migrate_guard.table_rewrite_guard() IS
    'migrate_guard: blocks a rewrite of an existing table with data that no start-time rule caught';
CREATE EVENT TRIGGER migrate_guard_table_rewrite ON table_rewrite
    EXECUTE FUNCTION migrate_guard.table_rewrite_guard();
"#,
    name = "guard_event_triggers",
    finalize
);

/// Declares a C-callable event-trigger entry point `$sym` (with its `PG_FUNCTION_INFO_V1`
/// record) around a `#[pg_guard]`ed Rust function that returns a report to raise or null. Only
/// the raise, which needs migrate_guard's own SQLSTATE, happens in the entry point's frame,
/// which owns nothing that needs dropping.
macro_rules! event_trigger_entry {
    ($sym:ident, $finfo:ident, $inner:ident) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        /// # Safety
        /// Called by PostgreSQL's function manager.
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $sym(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            let pending = $inner(fcinfo);
            if !pending.is_null() {
                // SAFETY: built by Pending::error; no Rust value is alive in this frame.
                unsafe { report::throw(pending) };
            }
            pg_sys::Datum::from(0)
        }
    };
}

event_trigger_entry!(
    migrate_guard_ddl_command_start,
    pg_finfo_migrate_guard_ddl_command_start,
    ddl_command_start
);
event_trigger_entry!(
    migrate_guard_table_rewrite,
    pg_finfo_migrate_guard_table_rewrite,
    table_rewrite
);

thread_local! {
    /// Set by `ddl_command_start` when the statement's rewrite was foreseen and allowed (or warned
    /// about), so the `table_rewrite` backstop lets it through. Every DDL statement fires
    /// `ddl_command_start` before any rewrite it causes, so this always describes the statement
    /// being executed.
    static REWRITE_FORESEEN: Cell<bool> = const { Cell::new(false) };
}

const REWRITE_RULES: [RuleId; 3] = [
    RuleId::AddColumnRewrite,
    RuleId::ColumnTypeRewrite,
    RuleId::TableRewrite,
];

#[pg_guard]
extern "C-unwind" fn ddl_command_start(fcinfo: pg_sys::FunctionCallInfo) -> *mut Pending {
    REWRITE_FORESEEN.set(false);
    // SAFETY: fcinfo comes from the function manager; the context is checked before use.
    let Some(td) = (unsafe { event_trigger_data(fcinfo) }) else {
        error!("migrate_guard: ddl_command_start_guard() must be called by an event trigger");
    };
    let Some(mode) = active_mode() else {
        return std::ptr::null_mut();
    };
    // SAFETY: the tag comes from the event trigger manager and names a static string.
    let tag = unsafe { CStr::from_ptr(pg_sys::GetCommandTagName(td.tag)) }.to_string_lossy();
    // SAFETY: parsetree is the raw statement the trigger fired for.
    let text = unsafe { ddl::text::current(td.parsetree) };
    let exact_text = text.as_ref().filter(|t| t.exact).map(|t| t.text.clone());
    let stmt = unsafe { ddl::convert(td.parsetree, &tag, exact_text) };
    if matches!(stmt.command, crate::model::Command::Other) {
        return std::ptr::null_mut();
    }
    let client_text = text.as_ref().map(|t| t.text.as_str()).unwrap_or("");
    let facts = CatalogFacts::new(gucs::ASSUME_POPULATED.get());
    let verdict = judge(rules::evaluate(&stmt, &facts), mode, client_text);
    if verdict
        .allowed
        .iter()
        .map(|(f, _)| f)
        .chain(&verdict.warned)
        .any(|f| REWRITE_RULES.contains(&f.rule))
    {
        REWRITE_FORESEEN.set(true);
    }
    if let Some(pending) = act(&verdict) {
        return pending;
    }
    lock_timeout_safety_net(&stmt, &facts);
    std::ptr::null_mut()
}

#[pg_guard]
extern "C-unwind" fn table_rewrite(fcinfo: pg_sys::FunctionCallInfo) -> *mut Pending {
    // SAFETY: as in ddl_command_start.
    let Some(td) = (unsafe { event_trigger_data(fcinfo) }) else {
        error!("migrate_guard: table_rewrite_guard() must be called by an event trigger");
    };
    let Some(mode) = active_mode() else {
        return std::ptr::null_mut();
    };
    if REWRITE_FORESEEN.get() {
        return std::ptr::null_mut();
    }
    // SAFETY: both functions only read the event trigger state of the running table_rewrite event.
    let (relid, reason) = unsafe {
        (
            pgrx::direct_function_call::<pg_sys::Oid>(pg_sys::pg_event_trigger_table_rewrite_oid, &[]),
            pgrx::direct_function_call::<i32>(pg_sys::pg_event_trigger_table_rewrite_reason, &[]),
        )
    };
    let (Some(relid), Some(reason)) = (relid, reason) else {
        return std::ptr::null_mut();
    };
    let facts = CatalogFacts::new(gucs::ASSUME_POPULATED.get());
    let Some(rel) = facts.rel_by_oid(relid) else {
        return std::ptr::null_mut();
    };
    let tag = unsafe { CStr::from_ptr(pg_sys::GetCommandTagName(td.tag)) }.to_string_lossy();
    let Some(finding) = rules::table_rewrite::backstop(&rel, reason as u32, &tag) else {
        return std::ptr::null_mut();
    };
    // SAFETY: as in ddl_command_start.
    let text = unsafe { ddl::text::current(td.parsetree) };
    let verdict = judge(
        vec![finding],
        mode,
        text.as_ref().map(|t| t.text.as_str()).unwrap_or(""),
    );
    act(&verdict).unwrap_or(std::ptr::null_mut())
}

/// The guard's mode, or `None` when it must stay out of the way: mode `off`, or DDL run by a
/// `CREATE/ALTER EXTENSION` script (ours or any other extension's), which is never judged.
fn active_mode() -> Option<Mode> {
    // SAFETY: plain read of a backend global.
    if unsafe { pg_sys::creating_extension } {
        return None;
    }
    Some(gucs::mode()).filter(|m| *m != Mode::Off)
}

/// Apply the allow setting and the statement's directives.
fn judge(findings: Vec<rules::Finding>, mode: Mode, client_text: &str) -> policy::Verdict {
    let directive = directive_allow_list(client_text);
    if findings.is_empty() {
        return policy::Verdict::default();
    }
    let setting = gucs::allow_list().unwrap_or_else(|bad| unknown_rule(&bad, "migrate_guard.allow"));
    policy::decide(findings, mode, &setting, &directive)
}

/// Send the warnings; return the ERROR to raise, if the statement is blocked.
fn act(verdict: &policy::Verdict) -> Option<*mut Pending> {
    for w in &verdict.warned {
        let (message, detail, hint) = policy::render(w, &[], Mode::Warn);
        pgrx::pg_sys::panic::ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, message, "migrate_guard")
            .set_detail(detail)
            .set_hint(hint)
            .report(PgLogLevel::WARNING);
    }
    let (first, rest) = verdict.blocked.split_first()?;
    let also: Vec<&rules::Finding> = rest.iter().collect();
    let (message, detail, hint) = policy::render(first, &also, Mode::Enforce);
    Some(Pending::error(report::SQLSTATE_BLOCKED, &message, &detail, &hint))
}

/// When the statement will queue for a lock stronger than SHARE UPDATE EXCLUSIVE on a table
/// other sessions use and the session has no lock_timeout, set `migrate_guard.lock_timeout` for
/// the rest of the transaction: the statement then fails fast instead of stalling every query
/// that queues behind it.
fn lock_timeout_safety_net(stmt: &crate::model::Statement, facts: &CatalogFacts) {
    let ms = gucs::LOCK_TIMEOUT_MS.get();
    let session = facts.session();
    if ms <= 0 || session.lock_timeout_ms > 0 || session.require_lock_timeout {
        return;
    }
    let Some((mode, rel)) = crate::locks::strong_lock_on_existing(stmt, facts) else {
        return;
    };
    let value = if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    };
    let c_value = std::ffi::CString::new(value.as_str()).expect("no NUL in a number");
    // SAFETY: the same call SET LOCAL makes; an invalid value cannot occur (a positive integer).
    unsafe {
        pg_sys::set_config_option(
            c"lock_timeout".as_ptr(),
            c_value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            PgLogLevel::ERROR as i32,
            false,
        );
    }
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
        format!("migrate_guard: lock_timeout set to {value} for the rest of this transaction"),
        "migrate_guard",
    )
    .set_detail(format!(
        "{} needs {} lock on {} {}: if it is not granted within {value}, the statement fails instead of making {} \
         on the table wait behind it.",
        stmt.tag,
        mode.with_article(),
        rel.kind.noun(),
        rel.display,
        mode.blocks()
    ))
    .set_hint(
        "Retry the migration later if it times out. Set lock_timeout yourself to choose the value, or \
         migrate_guard.lock_timeout = 0 to turn this off.",
    )
    .report(PgLogLevel::NOTICE);
}

/// Rules allowed by `migrate_guard:allow` comments in the statement text the client sent.
fn directive_allow_list(client_text: &str) -> AllowList {
    // Cheap test first: nearly every statement has no directive at all.
    if !client_text
        .as_bytes()
        .windows(19)
        .any(|w| w.eq_ignore_ascii_case(b"migrate_guard:allow"))
    {
        return AllowList::default();
    }
    let ids = sqltext::directive_rules(client_text);
    AllowList::parse(ids.iter().map(String::as_str))
        .unwrap_or_else(|bad| unknown_rule(&bad, "the migrate_guard:allow comment"))
}

fn unknown_rule(bad: &str, place: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("migrate_guard: unknown rule id \"{bad}\" in {place}"),
        "migrate_guard",
    )
    .set_hint(format!("Known rule ids: {}; or all.", RuleId::list()))
    .report(PgLogLevel::ERROR);
    unreachable!()
}

/// `EventTriggerData` from `fcinfo->context` (the C macro `CALLED_AS_EVENT_TRIGGER`).
unsafe fn event_trigger_data<'a>(fcinfo: pg_sys::FunctionCallInfo) -> Option<&'a pg_sys::EventTriggerData> {
    unsafe {
        let ctx = fcinfo.as_ref()?.context;
        if !ctx.is_null() && is_a(ctx, pg_sys::NodeTag::T_EventTriggerData) {
            Some(&*(ctx as *const pg_sys::EventTriggerData))
        } else {
            None
        }
    }
}
