//! The event triggers: where a statement is inspected before it takes its lock, and where the
//! verdict is acted on.

use crate::catalog::CatalogFacts;
use crate::facts::Facts;
use crate::policy::{self, AllowList, Mode};
use crate::report::{self, Pending, event_trigger_entry};
use crate::rules::{self, RuleId};
use crate::{ddl, gucs, history, sqltext};
use core::ffi::CStr;
use pgrx::prelude::*;
use pgrx::spi::Spi;
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

CREATE EVENT TRIGGER migrate_guard_sql_drop ON sql_drop
    EXECUTE FUNCTION migrate_guard.sql_drop_history();
CREATE EVENT TRIGGER migrate_guard_ddl_command_end ON ddl_command_end
    EXECUTE FUNCTION migrate_guard.ddl_command_end_history();
"#,
    name = "guard_event_triggers",
    finalize
);

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
    let recording = history::recording();
    let mode = active_mode();
    if !recording && mode.is_none() {
        return std::ptr::null_mut();
    }
    // SAFETY: the tag comes from the event trigger manager and names a static string.
    let tag = unsafe { CStr::from_ptr(pg_sys::GetCommandTagName(td.tag)) }.to_string_lossy();
    // Take in pending cache invalidations (notably this session's own, from the transaction that
    // just committed) before reading the catalog, as a lock acquisition would. Otherwise the
    // relation cache entries built below are thrown away and rebuilt when the statement takes
    // its lock.
    // SAFETY: allowed anywhere inside a transaction.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    // SAFETY: parsetree is the raw statement the trigger fired for.
    let mut stmt = unsafe { ddl::convert(td.parsetree, &tag) };
    let facts = CatalogFacts::new(gucs::ASSUME_POPULATED.get());
    // Temporary objects are private to the session: no rule applies, and they are not part of
    // the schema's history (an application that creates a scratch table in every transaction
    // would otherwise fill it). A statement that is not started here is not recorded.
    if crate::locks::only_temporary(&stmt, &facts) {
        return std::ptr::null_mut();
    }
    // SAFETY: as above.
    let text = unsafe { ddl::text::current(td.parsetree) };
    // A restore rebuilding what it restores (and nothing else: see restore.rs).
    if crate::restore::restoring() && crate::locks::acted_on(&stmt, &facts).is_some_and(|t| crate::restore::exempt(&t))
    {
        crate::restore::note_at_end(td.parsetree);
        if mode.is_some() && !matches!(stmt.command, crate::model::Command::Other) {
            let findings = rules::evaluate(&stmt, &facts);
            if !findings.is_empty() {
                let ids: Vec<&str> = findings.iter().map(|f| f.rule.id()).collect();
                let client_text = text.as_ref().map(|t| t.text.as_str()).unwrap_or("");
                crate::restore::log_exempted(&ids, &tag, client_text);
            }
        }
        return std::ptr::null_mut();
    }
    if mode.is_some() {
        crate::dml::ddl_ran(&tag);
    }
    let Some(mode) = mode else {
        // History only: its row is described here, from what is already resolved.
        remember(td.parsetree, &stmt, &facts, &policy::Verdict::default(), text);
        return std::ptr::null_mut();
    };
    // Statements no rule is about; unless every DDL must belong to a migration.
    if matches!(stmt.command, crate::model::Command::Other) && !facts.session().require_migration {
        if recording {
            remember(td.parsetree, &stmt, &facts, &policy::Verdict::default(), text);
        }
        return std::ptr::null_mut();
    }
    let client_text = text.as_ref().map(|t| t.text.as_str()).unwrap_or("");
    stmt.text = text.as_ref().filter(|t| t.exact).map(|t| t.text.clone());
    let mut findings = rules::evaluate(&stmt, &facts);
    // A strong lock on a table other sessions read and write is held until the transaction
    // commits, so the transaction's data changes, before it and after it, are judged with it.
    let strong = crate::locks::strong_table_locks(&stmt, &facts);
    crate::dml::before_ddl(&stmt.tag, &strong, &facts, &mut findings);
    let tables = crate::locks::acted_on(&stmt, &facts);
    let mut verdict = judge(findings, mode, client_text, tables.as_deref());
    if (!verdict.blocked.is_empty() || !verdict.warned.is_empty())
        && (partman_retention(&stmt, &facts) || partman_partitions(&stmt, &verdict, &facts))
    {
        verdict.allow_all_as(policy::AllowSource::Extension);
    }
    if verdict.runs_with(&REWRITE_RULES) {
        REWRITE_FORESEEN.set(true);
    }
    if let Some(pending) = act(&verdict, client_text) {
        return pending;
    }
    if verdict.runs_with(&[RuleId::SchemaAndData]) {
        crate::dml::mixed_accepted();
    }
    crate::dml::strong_locks_taken(&strong, &stmt.tag, client_text);
    if recording {
        remember(td.parsetree, &stmt, &facts, &verdict, text);
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
    if crate::restore::restoring() && crate::restore::exempt(&[relid.to_u32()]) {
        return std::ptr::null_mut();
    }
    let tag = unsafe { CStr::from_ptr(pg_sys::GetCommandTagName(td.tag)) }.to_string_lossy();
    let rel = facts.with_storage(rel);
    let Some(finding) = rules::table_rewrite::backstop(&rel, reason as u32, &tag) else {
        return std::ptr::null_mut();
    };
    // SAFETY: as in ddl_command_start.
    let text = unsafe { ddl::text::current(td.parsetree) };
    let client_text = text.as_ref().map(|t| t.text.as_str()).unwrap_or("");
    let verdict = judge(vec![finding], mode, client_text, Some(&[relid.to_u32()]));
    act(&verdict, client_text).unwrap_or(std::ptr::null_mut())
}

/// Leave history what the start of the statement knows: its verdict, its object and table
/// (from names already resolved, so that recording costs no second catalog lookup), its text.
fn remember(
    parsetree: *mut pg_sys::Node,
    stmt: &crate::model::Statement,
    facts: &CatalogFacts,
    verdict: &policy::Verdict,
    text: Option<ddl::text::StatementText>,
) {
    let object = named_object(stmt, facts);
    // The named object carries its table; otherwise the table the statement locks first.
    let table = match &object {
        Some(history::ObjectName::Known { .. }) => None,
        _ => crate::locks::main_table(stmt, facts).map(|r| r.display),
    };
    history::statement_judged(
        parsetree,
        &stmt.tag,
        verdict,
        table,
        object,
        text.map(|t| t.text),
        commits_on_its_own(stmt),
    );
}

/// `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `DETACH PARTITION … CONCURRENTLY`:
/// the statement commits transactions of its own before it ends.
fn commits_on_its_own(stmt: &crate::model::Statement) -> bool {
    use crate::model::{AlterCmd, Command};
    match &stmt.command {
        Command::CreateIndex(ci) => ci.concurrent,
        Command::Drop(d) => d.concurrent,
        Command::AlterTable(at) => at
            .cmds
            .iter()
            .any(|c| matches!(c, AlterCmd::DetachPartition { concurrent: true, .. })),
        _ => false,
    }
}

/// The object a statement creates or alters, for its history row, from what the guard has
/// already resolved (so that recording costs no second catalog lookup).
fn named_object(stmt: &crate::model::Statement, facts: &CatalogFacts) -> Option<history::ObjectName> {
    use crate::facts::RelKind;
    use crate::model::{Command, ObjectKind};
    match &stmt.command {
        Command::CreateIndex(ci) => {
            let table = facts.relation(&ci.table)?;
            let identity = table.sibling(ci.name.as_deref()?);
            Some(history::ObjectName::Known {
                object_type: "index",
                identity,
                table: table.display,
            })
        }
        Command::AlterTable(at) => {
            let rel = facts.relation(&at.table)?;
            // ALTER INDEX: the ddl_command_end lookup names the index and finds its table.
            if matches!(rel.kind, RelKind::Index | RelKind::PartitionedIndex) {
                return None;
            }
            let object_type = rel.kind.object_type()?;
            Some(history::ObjectName::Known {
                object_type,
                identity: rel.display.clone(),
                table: rel.display,
            })
        }
        Command::CreateRelation { name, .. } => name.clone().map(history::ObjectName::Created),
        Command::Drop(d)
            if matches!(
                d.kind,
                ObjectKind::Table
                    | ObjectKind::Index
                    | ObjectKind::View
                    | ObjectKind::MatView
                    | ObjectKind::ForeignTable
                    | ObjectKind::Sequence
            ) =>
        {
            // What PostgreSQL will drop by name (a missing IF EXISTS name is skipped, as it
            // skips it); temporary objects are not schema changes.
            let dropped = d
                .objects
                .iter()
                .filter_map(|o| facts.relation(o))
                .filter(|r| !r.temp)
                .filter_map(|r| Some((r.kind.object_type()?, r.display)))
                .collect();
            Some(history::ObjectName::Dropped(dropped))
        }
        Command::Comment { target, column, .. } => {
            let rel = facts.relation(target)?;
            let (object_type, identity) = match (column, rel.kind) {
                (Some(c), _) => (
                    match rel.kind {
                        RelKind::View => "view column",
                        RelKind::MatView => "materialized view column",
                        RelKind::ForeignTable => "foreign table column",
                        _ => "table column",
                    },
                    format!("{}.{}", rel.display, crate::sqltext::quote_ident(c)),
                ),
                (None, kind) => (kind.object_type()?, rel.display.clone()),
            };
            // The table of an index by name only: PostgreSQL does not open it for a comment
            // on the index, and building its relation cache entry just for history would cost
            // more than the whole statement.
            let table = if matches!(rel.kind, RelKind::Index | RelKind::PartitionedIndex) {
                // SAFETY: syscache reads of an index that exists.
                unsafe { history::table_of(pg_sys::Oid::from(rel.oid)) }.unwrap_or_default()
            } else {
                rel.display
            };
            Some(history::ObjectName::Known {
                object_type,
                identity,
                table,
            })
        }
        _ => None,
    }
}

/// The guard's mode, or `None` when it must stay out of the way: mode `off`, or DDL run by a
/// `CREATE/ALTER EXTENSION` script (ours or any other extension's). A session restoring a dump
/// is exempt statement by statement, for what it restores (see restore.rs).
pub(crate) fn active_mode() -> Option<Mode> {
    // SAFETY: plain read of a backend global.
    if unsafe { pg_sys::creating_extension } {
        return None;
    }
    Some(gucs::mode()).filter(|m| *m != Mode::Off)
}

/// Apply the allow setting and the statement's directives.
/// `tables`: the relations the statement acts on, when known (a step of an expansion covers
/// only its own tables).
pub(crate) fn judge(
    findings: Vec<rules::Finding>,
    mode: Mode,
    client_text: &str,
    tables: Option<&[u32]>,
) -> policy::Verdict {
    let directive = directive_allow_list(client_text);
    if findings.is_empty() {
        return policy::Verdict::default();
    }
    let setting = gucs::allow_list().unwrap_or_else(|bad| unknown_rule(&bad, "migrate_guard.allow"));
    let mut verdict = policy::decide(findings, mode, &setting, &directive);
    if (!verdict.blocked.is_empty() || !verdict.warned.is_empty()) && step_covers(tables) {
        verdict.allow_as_expansion_step();
    }
    if (!verdict.blocked.is_empty() || !verdict.warned.is_empty()) && tables.is_some_and(extension_objects) {
        verdict.allow_all_as(policy::AllowSource::Extension);
    }
    verdict
}

thread_local! {
    /// Partitions detached in this transaction from a parent whose retention pg_partman
    /// manages, so that the DROP that follows the DETACH is recognised; keyed by the
    /// transaction's start time (the same for all its statements, whether or not it has a
    /// transaction id yet).
    static RETAINED: std::cell::RefCell<(i64, Vec<u32>)> = const { std::cell::RefCell::new((0, Vec::new())) };
}

/// pg_partman's retention: a DBA who configured `retention` (with `retention_keep_table =
/// false`) for a partitioned table in `part_config` asked for its old partitions to be dropped.
/// A DETACH PARTITION of a partition of such a parent, and a DROP TABLE of such partitions (still
/// attached, or detached by this transaction; never the default partition), pass as the extension's business and are recorded
/// with `allowed_via = {extension}`. (The owner of a table can drop its partitions with
/// `migrate_guard.allow` anyway; this saves the DBA from allowing `drop-table` for the role that
/// runs the maintenance, which would let every drop of that role through.)
fn partman_retention(stmt: &crate::model::Statement, facts: &CatalogFacts) -> bool {
    use crate::model::{AlterCmd, Command};
    // SAFETY: reads the transaction state.
    let xid = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let parent_of = |oid: u32| -> Option<u32> {
        crate::privilege::with_safe_path(|| {
            Spi::get_one_with_args::<pg_sys::Oid>(
                "SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
                  WHERE i.inhrelid OPERATOR(pg_catalog.=) $1 AND c.relispartition
                    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table t
                                     WHERE t.partdefid OPERATOR(pg_catalog.=) i.inhrelid)",
                &[pg_sys::Oid::from(oid).into()],
            )
        })
        .ok()
        .flatten()
        .map(|o| o.to_u32())
    };
    match &stmt.command {
        Command::AlterTable(a) => {
            let Some(parent) = facts.relation(&a.table) else {
                return false;
            };
            let mut parts = Vec::new();
            for c in &a.cmds {
                match c {
                    AlterCmd::DetachPartition { partition, .. } => match facts.relation(partition) {
                        Some(r) if parent_of(r.oid) == Some(parent.oid) => parts.push(r.oid),
                        _ => return false,
                    },
                    _ => return false,
                }
            }
            if parts.is_empty() || !retention_configured(parent.oid) {
                return false;
            }
            RETAINED.with_borrow_mut(|(x, v)| {
                if *x != xid {
                    *x = xid;
                    v.clear();
                }
                v.extend(parts);
            });
            true
        }
        Command::Drop(d) if d.kind == crate::model::ObjectKind::Table && !d.objects.is_empty() => {
            d.objects.iter().all(|o| {
                let Some(r) = facts.relation(o) else { return false };
                let detached_here = RETAINED.with_borrow(|(x, v)| *x == xid && v.contains(&r.oid));
                detached_here || parent_of(r.oid).is_some_and(retention_configured)
            })
        }
        _ => false,
    }
}

/// pg_partman's partition creation: a new partition of a parent registered in `part_config`
/// (`CREATE TABLE … PARTITION OF`, `ATTACH PARTITION`) whose only findings are `partition-scan`
/// passes as the extension's business, recorded with `allowed_via = {extension}`: the DBA asked
/// pg_partman to manage that table's partitions, and its `partition_data_proc` is the way to
/// move rows out of the default partition, which it empties before it creates the partition.
/// Every other finding (a blocking index, a rename…) stays judged.
fn partman_partitions(stmt: &crate::model::Statement, verdict: &policy::Verdict, facts: &CatalogFacts) -> bool {
    use crate::model::{AlterCmd, Command};
    if !verdict
        .blocked
        .iter()
        .chain(&verdict.warned)
        .all(|f| f.rule == RuleId::PartitionScan)
    {
        return false;
    }
    let parent = match &stmt.command {
        Command::CreateRelation {
            partition_of: Some(p), ..
        } => &p.parent,
        Command::AlterTable(a) if a.cmds.iter().all(|c| matches!(c, AlterCmd::AttachPartition { .. })) => &a.table,
        _ => return false,
    };
    facts.relation(parent).is_some_and(|p| partman_config(p.oid, false))
}

/// Whether pg_partman is installed and its `part_config` drops old partitions of `parent`.
fn retention_configured(parent: u32) -> bool {
    partman_config(parent, true)
}

/// Whether pg_partman is installed and `parent` is in its `part_config` (with `retention`: and
/// its old partitions are dropped).
fn partman_config(parent: u32, retention: bool) -> bool {
    crate::privilege::with_safe_path(|| {
        let schema = Spi::get_one::<String>(
            "SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_extension e
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
              WHERE e.extname OPERATOR(pg_catalog.=) 'pg_partman'",
        );
        let Ok(Some(schema)) = schema else { return false };
        // Trusted only while part_config is a superuser's table that no other role (nor PUBLIC)
        // may INSERT into or UPDATE: otherwise an application role could register its own
        // tables and have their drops and scans let through.
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {0}.part_config c
                             WHERE c.parent_table OPERATOR(pg_catalog.=) pg_catalog.format('%s', $1::pg_catalog.regclass)
                               {1})
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_class t JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) t.relowner
                             WHERE t.oid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass AND o.rolsuper)
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class t,
                                       LATERAL pg_catalog.aclexplode(t.relacl) a
                                  LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
                                 WHERE t.oid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass
                                   AND a.privilege_type OPERATOR(pg_catalog.=) ANY ('{{INSERT,UPDATE}}')
                                   AND NOT coalesce(r.rolsuper, false))",
            crate::sqltext::quote_ident(&schema),
            if retention {
                "AND c.retention IS NOT NULL AND NOT c.retention_keep_table"
            } else {
                ""
            }
        );
        // (A part_config the caller may not read, or of another layout, is no configuration.)
        let config = format!("{}.part_config", crate::sqltext::quote_ident(&schema));
        crate::catalog::attempt(|| {
            Spi::get_one_with_args::<bool>(&sql, &[pg_sys::Oid::from(parent).into(), config.as_str().into()])
        })
        .ok()
        .and_then(|r| r.ok().flatten())
        .unwrap_or(false)
    })
}

/// Whether every relation in `tables` is another extension's own working object: it lives in a
/// schema that belongs to an extension other than migrate_guard (`pg_depend` says so, as for
/// pg_repack's `repack`), and a superuser owns it. Creating a relation in such a schema needs
/// CREATE on it, which the extension's script grants nobody, and no ordinary role can make a
/// superuser own a relation; so no application role can claim this for its own tables.
fn extension_objects(tables: &[u32]) -> bool {
    if tables.is_empty() {
        return false;
    }
    let oids: Vec<pg_sys::Oid> = tables.iter().map(|t| pg_sys::Oid::from(*t)).collect();
    let n = crate::privilege::with_safe_path(|| {
        Spi::get_one_with_args::<i64>(
            "SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner AND r.rolsuper
              WHERE c.oid OPERATOR(pg_catalog.=) ANY ($1)
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                              JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
                             WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
                               AND d.objid OPERATOR(pg_catalog.=) c.relnamespace
                               AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                               AND d.deptype OPERATOR(pg_catalog.=) 'e'
                               AND e.extname OPERATOR(pg_catalog.<>) 'migrate_guard')",
            &[oids.into()],
        )
    });
    matches!(n, Ok(Some(n)) if n == tables.len() as i64)
}

/// Whether the statement is a step of an expansion that its helper is running right now, on
/// tables of that expansion (see `privilege.rs`): nothing a session sets can claim it.
fn step_covers(tables: Option<&[u32]>) -> bool {
    match tables {
        Some(t) => crate::privilege::step_in_progress(t).is_some(),
        None => false,
    }
}

/// Send the warnings; return the ERROR to raise, if the statement is blocked. A block cannot
/// be a history row (it rolls back with its transaction), so it is also written to the server
/// log as one structured line.
pub(crate) fn act(verdict: &policy::Verdict, client_text: &str) -> Option<*mut Pending> {
    if verdict.blocked.is_empty() {
        for (f, _) in verdict.allowed.iter().filter(|(_, s)| *s == policy::AllowSource::Usage) {
            pgrx::pg_sys::panic::ErrorReport::new(
                PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
                format!(
                    "migrate_guard: {}: allowed on usage evidence: {}",
                    f.rule.id(),
                    f.message
                ),
                "migrate_guard",
            )
            .set_detail(f.unused.clone().unwrap_or_default())
            .report(PgLogLevel::NOTICE);
        }
    }
    for w in &verdict.warned {
        let (message, detail, hint) = policy::render(w, &[], Mode::Warn);
        pgrx::pg_sys::panic::ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, message, "migrate_guard")
            .set_detail(detail)
            .set_hint(hint)
            .report(PgLogLevel::WARNING);
    }
    let (first, rest) = verdict.blocked.split_first()?;
    log_block(first, client_text);
    let also: Vec<&rules::Finding> = rest.iter().collect();
    let (message, detail, hint) = policy::render(first, &also, Mode::Enforce);
    Some(Pending::error(report::SQLSTATE_BLOCKED, &message, &detail, &hint))
}

/// `migrate_guard: blocked {"rule":…,"statement":…,"user":…,"current_user":…,"application":…,"database":…}`
fn log_block(finding: &rules::Finding, client_text: &str) {
    use sqltext::json_string as j;
    // SAFETY: reads of backend state.
    let (user, current, app, db) = unsafe {
        (
            history::role_name(pg_sys::GetSessionUserId()),
            history::role_name(pg_sys::GetUserId()),
            ddl::cstr(pg_sys::application_name).unwrap_or_default(),
            ddl::cstr(pg_sys::get_database_name(pg_sys::MyDatabaseId)).unwrap_or_default(),
        )
    };
    let statement = history::redact("", client_text);
    let line = format!(
        "migrate_guard: blocked {{\"rule\":{},\"sqlstate\":\"MG001\",\"statement\":{},\"user\":{},\"current_user\":{},\
         \"application\":{},\"database\":{},\"message\":{}}}",
        j(finding.rule.id()),
        j(&statement),
        j(&user),
        j(&current),
        j(&app),
        j(&db),
        j(&finding.message)
    );
    pgrx::pg_sys::panic::ErrorReport::new(PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION, line, "migrate_guard")
        .report(PgLogLevel::LOG);
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
    // Said once per session (and again when the value changes): a migration of a hundred
    // statements gets one explanation, not a hundred. Every later statement is protected all
    // the same.
    thread_local! {
        static ANNOUNCED: Cell<i32> = const { Cell::new(0) };
    }
    if ANNOUNCED.replace(ms) == ms {
        return;
    }
    let message = format!("migrate_guard: lock_timeout set to {value} for the rest of this transaction");
    let detail = format!(
        "{} needs {} lock on {} {}: if it is not granted within {value}, the statement fails instead of making {} \
         on the table wait behind it.",
        stmt.tag,
        mode.with_article(),
        rel.kind.noun(),
        rel.display,
        mode.blocks()
    );
    let hint = "Retry the migration later if it times out. Set lock_timeout yourself to choose the value, or \
                migrate_guard.lock_timeout = 0 to turn this off. Later statements of this session that need such a \
                lock get the same lock_timeout without this notice.";
    // Sent at once (PostgreSQL flushes notices): it matters most while the statement waits.
    report::notice(&message, &detail, hint);
}

/// Rules allowed by `migrate_guard:allow` comments in the statement text the client sent.
fn directive_allow_list(client_text: &str) -> AllowList {
    directives(client_text).unwrap_or_else(|bad| unknown_rule(&bad, DIRECTIVE_PLACE))
}

pub(crate) const DIRECTIVE_PLACE: &str = "the migrate_guard:allow comment";

/// The rules `migrate_guard:allow` comments in `client_text` allow; the first unknown id is
/// the error.
pub(crate) fn directives(client_text: &str) -> Result<AllowList, String> {
    // Cheap test first: nearly every statement has no directive at all.
    if !client_text
        .as_bytes()
        .windows(19)
        .any(|w| w.eq_ignore_ascii_case(b"migrate_guard:allow"))
    {
        return Ok(AllowList::default());
    }
    let ids = sqltext::directive_rules(client_text);
    AllowList::parse(ids.iter().map(String::as_str))
}

/// The message and hint of an unknown rule id in a setting or directive.
pub(crate) fn unknown_rule_text(bad: &str, place: &str) -> (String, String) {
    (
        format!("migrate_guard: unknown rule id \"{bad}\" in {place}"),
        format!("Known rule ids: {}; or all.", RuleId::list()),
    )
}

fn unknown_rule(bad: &str, place: &str) -> ! {
    let (message, hint) = unknown_rule_text(bad, place);
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message,
        "migrate_guard",
    )
    .set_hint(hint)
    .report(PgLogLevel::ERROR);
    unreachable!()
}

/// `EventTriggerData` from `fcinfo->context` (the C macro `CALLED_AS_EVENT_TRIGGER`).
pub(crate) unsafe fn event_trigger_data<'a>(fcinfo: pg_sys::FunctionCallInfo) -> Option<&'a pg_sys::EventTriggerData> {
    unsafe {
        let ctx = fcinfo.as_ref()?.context;
        if !ctx.is_null() && is_a(ctx, pg_sys::NodeTag::T_EventTriggerData) {
            Some(&*(ctx as *const pg_sys::EventTriggerData))
        } else {
            None
        }
    }
}
