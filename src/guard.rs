//! The event triggers: where a statement is inspected before it takes its lock, and where the
//! verdict is acted on.

use crate::catalog::CatalogFacts;
use crate::policy::{self, AllowList, Mode};
use crate::report::{self, Pending};
use crate::rules::{self, RuleId};
use crate::{ddl, gucs, sqltext};
use core::ffi::CStr;
use pgrx::prelude::*;
use pgrx::{is_a, pg_sys};

pgrx::extension_sql!(
    r#"
CREATE FUNCTION ddl_command_start_guard() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_guard_ddl_command_start';
COMMENT ON FUNCTION ddl_command_start_guard() IS
    'migrate_guard: inspects each DDL statement before it takes its lock';
CREATE EVENT TRIGGER migrate_guard_ddl_command_start ON ddl_command_start
    EXECUTE FUNCTION ddl_command_start_guard();
"#,
    name = "guard_event_triggers",
    finalize
);

/// `PG_FUNCTION_INFO_V1(migrate_guard_ddl_command_start)`.
#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_migrate_guard_ddl_command_start() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// Entry point of the `ddl_command_start` event trigger. All work happens in the guarded
/// [`ddl_command_start`]; only the final raise, which needs our own SQLSTATE, happens here, in a
/// frame that owns nothing.
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn migrate_guard_ddl_command_start(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let pending = ddl_command_start(fcinfo);
    if !pending.is_null() {
        // SAFETY: built by Pending::error; no Rust value is alive in this frame.
        unsafe { report::throw(pending) };
    }
    pg_sys::Datum::from(0)
}

#[pg_guard]
extern "C-unwind" fn ddl_command_start(fcinfo: pg_sys::FunctionCallInfo) -> *mut Pending {
    // SAFETY: fcinfo comes from the function manager; the context is checked before use.
    let Some(td) = (unsafe { event_trigger_data(fcinfo) }) else {
        error!("migrate_guard: ddl_command_start_guard() must be called by an event trigger");
    };
    // DDL run by CREATE/ALTER EXTENSION scripts (ours or any other extension's) is never judged.
    if unsafe { pg_sys::creating_extension } {
        return std::ptr::null_mut();
    }
    let mode = gucs::mode();
    if mode == Mode::Off {
        return std::ptr::null_mut();
    }
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
    let directive = directive_allow_list(client_text);
    let facts = CatalogFacts::new(gucs::ASSUME_POPULATED.get());
    let findings = rules::evaluate(&stmt, &facts);
    if findings.is_empty() {
        return std::ptr::null_mut();
    }
    let setting = gucs::allow_list().unwrap_or_else(|bad| unknown_rule(&bad, "migrate_guard.allow"));
    let verdict = policy::decide(findings, mode, &setting, &directive);
    for w in &verdict.warned {
        let (message, detail, hint) = policy::render(w, &[], Mode::Warn);
        pgrx::pg_sys::panic::ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, message, "migrate_guard")
            .set_detail(detail)
            .set_hint(hint)
            .report(PgLogLevel::WARNING);
    }
    if let Some((first, rest)) = verdict.blocked.split_first() {
        let also: Vec<&rules::Finding> = rest.iter().collect();
        let (message, detail, hint) = policy::render(first, &also, Mode::Enforce);
        return Pending::error(report::SQLSTATE_BLOCKED, &message, &detail, &hint);
    }
    std::ptr::null_mut()
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
