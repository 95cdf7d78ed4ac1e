//! Migration history: one row in `migrate_guard.history` per DDL statement that committed.
//!
//! A statement whose object `ddl_command_start` already knows (the table an ALTER TABLE alters,
//! the index a CREATE INDEX creates, the tables a DROP TABLE drops) becomes a row there and
//! then; the others (a relation still to be created, objects the model does not name, statements
//! such as CREATE INDEX CONCURRENTLY that commit on their own) leave a record that `sql_drop` and
//! `ddl_command_end` complete. Rows are kept in backend memory, tagged with the subtransaction
//! that ran the statement, and written in one batch just before the transaction commits. A
//! statement that fails aborts at least its own subtransaction, which drops its row: a
//! statement rolled back (with its transaction or a savepoint) therefore never becomes a row,
//! and a migration of thousands of statements costs one batch per transaction.

use crate::policy::Verdict;
use crate::report::event_trigger_entry;
use crate::{ddl, gucs, report, sqltext};
use core::ffi::{CStr, c_void};
use pgrx::IntoDatum;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};

/// What `ddl_command_start` and `sql_drop` learned about a statement still running.
#[derive(Default)]
struct Pending {
    parsetree: usize,
    fired: Vec<&'static str>,
    allowed: Vec<(&'static str, &'static str)>,
    warned: bool,
    /// Schema-qualified table the statement acts on, when the guard resolved it.
    table: Option<String>,
    /// `(object_type, object_identity)` of what a DROP removed.
    dropped: Vec<Dropped>,
    /// The relation the statement creates or alters, when the model names it: its identity
    /// is then read from the catalog directly instead of through pg_event_trigger_ddl_commands().
    object: Option<ObjectName>,
    /// The client's text of the statement, when `ddl_command_start` already read it.
    text: Option<String>,
}

/// The object a statement creates, alters or drops, as far as `ddl_command_start` knows it.
pub enum ObjectName {
    /// Already known at `ddl_command_start`: `(object_type, identity, table)`.
    Known {
        object_type: &'static str,
        identity: String,
        table: String,
    },
    /// The relations a DROP names, resolved at `ddl_command_start` (temporary ones left out):
    /// `(object_type, identity)`.
    Dropped(Vec<(&'static str, String)>),
    /// A relation the statement creates: found by name once it exists.
    Created(crate::model::RelRef),
}

/// A history row waiting for its transaction to commit.
struct Row {
    subxact: pg_sys::SubTransactionId,
    at_us: i64,
    session_user: String,
    current_user: String,
    application_name: Option<String>,
    command_tag: String,
    object_type: Option<String>,
    object_identity: Option<String>,
    table: Option<String>,
    statement: Option<String>,
    verdict: &'static str,
    fired: Vec<&'static str>,
    allowed: Vec<(&'static str, &'static str)>,
    migration: Option<i64>,
}

thread_local! {
    static STATEMENTS: RefCell<Vec<Pending>> = const { RefCell::new(Vec::new()) };
    static ROWS: RefCell<Vec<Row>> = const { RefCell::new(Vec::new()) };
    /// Rows written per migration by this session: counted at pre-commit, kept on commit.
    static WRITTEN: RefCell<Vec<(i64, i64)>> = const { RefCell::new(Vec::new()) };
    static WRITING: RefCell<Vec<(i64, i64)>> = const { RefCell::new(Vec::new()) };
}

pgrx::extension_sql!(
    r#"
CREATE FUNCTION migrate_guard.ddl_command_end_history() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_guard_ddl_command_end';
COMMENT ON FUNCTION migrate_guard.ddl_command_end_history() IS
    'migrate_guard: records each DDL statement in migrate_guard.history';
CREATE FUNCTION migrate_guard.sql_drop_history() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_guard_sql_drop';
COMMENT ON FUNCTION migrate_guard.sql_drop_history() IS
    'migrate_guard: notes what a DROP removed, for migrate_guard.history';
"#,
    name = "history_functions",
    requires = ["history_objects"]
);

pgrx::extension_sql_file!(
    "../sql/objects/history.sql",
    name = "history_objects",
    requires = ["schema"]
);

event_trigger_entry!(
    migrate_guard_ddl_command_end,
    pg_finfo_migrate_guard_ddl_command_end,
    ddl_command_end
);
event_trigger_entry!(migrate_guard_sql_drop, pg_finfo_migrate_guard_sql_drop, sql_drop);

/// Called at `ddl_command_start` once the statement is judged (and not blocked). `concurrent`:
/// the statement commits on its own between its start and its end, so its row must wait for
/// its end.
pub fn statement_judged(
    parsetree: *mut pg_sys::Node,
    tag: &str,
    verdict: &Verdict,
    table: Option<String>,
    object: Option<ObjectName>,
    text: Option<String>,
    concurrent: bool,
) {
    let fired: Vec<&'static str> = verdict
        .warned
        .iter()
        .map(|f| f.rule.id())
        .chain(verdict.allowed.iter().map(|(f, _)| f.rule.id()))
        .collect();
    let allowed: Vec<(&'static str, &'static str)> = verdict
        .allowed
        .iter()
        .map(|(f, via)| (f.rule.id(), via.as_str()))
        .collect();
    let warned = !verdict.warned.is_empty();
    let described = match object {
        Some(ObjectName::Known {
            object_type,
            identity,
            table,
        }) if !concurrent => Some((Some(object_type.to_owned()), Some(identity), Some(table))),
        Some(ObjectName::Dropped(dropped)) if !concurrent => Some(match dropped.first() {
            Some((object_type, _)) => {
                let names: Vec<&str> = dropped.iter().map(|(_, n)| n.as_str()).collect();
                let dropped_table = dropped.iter().find(|(t, _)| *t == "table").map(|(_, n)| n.clone());
                (
                    Some((*object_type).to_owned()),
                    Some(names.join(", ")),
                    table.clone().or(dropped_table),
                )
            }
            None => (None, None, table.clone()),
        }),
        object => {
            STATEMENTS.with_borrow_mut(|s| {
                // Statements that failed leave their record behind until the transaction ends;
                // keep the stack bounded inside a very long transaction.
                if s.len() >= 1024 {
                    s.drain(..512);
                }
                s.push(Pending {
                    parsetree: parsetree as usize,
                    fired,
                    allowed,
                    warned,
                    table,
                    dropped: Vec::new(),
                    object,
                    text,
                });
            });
            return;
        }
    };
    let (object_type, object_identity, table) = described.expect("described above");
    let statement = text.map(|t| redact(tag, &t));
    push_row(
        tag.to_owned(),
        object_type,
        object_identity,
        table,
        statement,
        fired,
        allowed,
        warned,
    );
}

/// A row for a statement that ran (or is running) in the current subtransaction.
#[allow(clippy::too_many_arguments)]
fn push_row(
    command_tag: String,
    object_type: Option<String>,
    object_identity: Option<String>,
    table: Option<String>,
    statement: Option<String>,
    fired: Vec<&'static str>,
    allowed: Vec<(&'static str, &'static str)>,
    warned: bool,
) {
    let verdict = if !allowed.is_empty() {
        "allowed"
    } else if warned {
        "warned"
    } else {
        "ok"
    };
    // SAFETY: reads of backend state.
    let row = unsafe {
        Row {
            subxact: pg_sys::GetCurrentSubTransactionId(),
            at_us: pg_sys::GetCurrentTimestamp(),
            session_user: role_name(pg_sys::GetSessionUserId()),
            current_user: role_name(pg_sys::GetUserId()),
            application_name: ddl::cstr(pg_sys::application_name).filter(|a| !a.is_empty()),
            command_tag,
            object_type,
            object_identity,
            table,
            statement,
            verdict,
            fired,
            allowed,
            migration: crate::migrations::current_migration_id(),
        }
    };
    ROWS.with_borrow_mut(|rows| rows.push(row));
}

fn with_pending(parsetree: *mut pg_sys::Node, f: impl FnOnce(&mut Pending)) {
    STATEMENTS.with_borrow_mut(|s| {
        if let Some(p) = s.iter_mut().rev().find(|p| p.parsetree == parsetree as usize) {
            f(p);
        }
    });
}

fn take_pending(parsetree: *mut pg_sys::Node) -> Option<Pending> {
    STATEMENTS.with_borrow_mut(|s| {
        s.iter()
            .rposition(|p| p.parsetree == parsetree as usize)
            .map(|i| s.remove(i))
    })
}

fn has_pending(parsetree: *mut pg_sys::Node) -> bool {
    STATEMENTS.with_borrow(|s| s.iter().any(|p| p.parsetree == parsetree as usize))
}

/// Whether this statement should be recorded at all.
pub fn recording() -> bool {
    // SAFETY: plain read of a backend global.
    !unsafe { pg_sys::creating_extension } && gucs::RECORD_HISTORY.get()
}

#[pg_guard]
extern "C-unwind" fn sql_drop(fcinfo: pg_sys::FunctionCallInfo) -> *mut report::Pending {
    // SAFETY: checked like every event trigger entry.
    let Some(td) = (unsafe { crate::guard::event_trigger_data(fcinfo) }) else {
        error!("migrate_guard: sql_drop_history() must be called by an event trigger");
    };
    // Only statements ddl_command_start decided to record (not temporary objects).
    if !recording() || !has_pending(td.parsetree) {
        return std::ptr::null_mut();
    }
    // SAFETY: inside a sql_drop event trigger, where the function is valid.
    let dropped = unsafe { dropped_objects() };
    // The server lists dropped objects newest first; keep the order they were dropped in, which
    // for the objects a statement names is the order it names them.
    with_pending(td.parsetree, |p| p.dropped.extend(dropped.into_iter().rev()));
    std::ptr::null_mut()
}

#[pg_guard]
extern "C-unwind" fn ddl_command_end(fcinfo: pg_sys::FunctionCallInfo) -> *mut report::Pending {
    // SAFETY: checked like every event trigger entry.
    let Some(td) = (unsafe { crate::guard::event_trigger_data(fcinfo) }) else {
        error!("migrate_guard: ddl_command_end_history() must be called by an event trigger");
    };
    // A restore's statements record what they create (see restore.rs), not a history row.
    crate::restore::at_command_end(td.parsetree);
    // No record: ddl_command_start left the statement out (temporary objects), or history is off.
    let Some(pending) = take_pending(td.parsetree) else {
        return std::ptr::null_mut();
    };
    if !recording() {
        return std::ptr::null_mut();
    }
    // SAFETY: the tag names a static string.
    let tag = unsafe { CStr::from_ptr(pg_sys::GetCommandTagName(td.tag)) }
        .to_string_lossy()
        .into_owned();
    let described = if pending.dropped.is_empty() {
        pending
            .object
            .as_ref()
            .and_then(named_object)
            .unwrap_or_else(|| principal_object(&tag))
    } else {
        dropped_described(&pending.dropped, pending.table.clone())
    };
    // Temporary objects the start event could not tell apart (a view that became temporary
    // because it reads a temporary table, a function in pg_temp) are not recorded either.
    let Object::Described(object_type, object_identity, table) = described else {
        return std::ptr::null_mut();
    };
    // Installing or updating this extension is not a migration of the database (and keeps a
    // fresh installation's history empty, ready to receive a restored one).
    if matches!(tag.as_str(), "CREATE EXTENSION" | "ALTER EXTENSION")
        && object_identity.as_deref() == Some("migrate_guard")
    {
        return std::ptr::null_mut();
    }
    // SAFETY: parsetree is the statement the trigger fired for.
    let statement = pending
        .text
        .or_else(|| unsafe { ddl::text::current(td.parsetree) }.map(|t| t.text))
        .map(|t| redact(&tag, &t));
    push_row(
        tag,
        object_type,
        object_identity,
        table.or(pending.table),
        statement,
        pending.fired,
        pending.allowed,
        pending.warned,
    );
    std::ptr::null_mut()
}

/// Role name, remembered per backend (roles are renamed rarely; a stale name in history is
/// still the name the role had when this session started using it).
///
/// # Safety
/// Call inside a transaction (it reads the role catalog).
pub unsafe fn role_name(oid: pg_sys::Oid) -> String {
    thread_local! {
        static NAMES: RefCell<Vec<(pg_sys::Oid, String)>> = const { RefCell::new(Vec::new()) };
    }
    if let Some(n) = NAMES.with_borrow(|v| v.iter().find(|(o, _)| *o == oid).map(|(_, n)| n.clone())) {
        return n;
    }
    let name = unsafe { ddl::cstr(pg_sys::GetUserNameFromId(oid, true)) }.unwrap_or_else(|| oid.to_u32().to_string());
    NAMES.with_borrow_mut(|v| v.push((oid, name.clone())));
    name
}

/// `(object_type, object_identity, table)` of the statement's main object, from
/// `pg_event_trigger_ddl_commands()`: the command whose tag is the statement's, else the first.
fn principal_object(tag: &str) -> Object {
    // SAFETY: we are inside a ddl_command_end event trigger, where the function is valid.
    let commands = unsafe { ddl_commands() };
    if !commands.is_empty() && commands.iter().all(|c| c.temporary) {
        return Object::Temporary;
    }
    let Some(c) = commands
        .iter()
        .find(|c| c.tag.as_deref() == Some(tag))
        .or(commands.first())
    else {
        return Object::Described(None, None, None);
    };
    let table = (c.classid == pg_sys::RelationRelationId)
        .then(|| unsafe { table_of(c.objid) })
        .flatten();
    Object::Described(c.object_type.clone(), c.identity.clone(), table)
}

/// What a DROP removed, without the temporary objects among them.
fn dropped_described(dropped: &[Dropped], table: Option<String>) -> Object {
    let kept: Vec<&Dropped> = dropped.iter().filter(|(_, _, temporary)| !temporary).collect();
    let Some(first) = kept.first() else {
        return Object::Temporary;
    };
    let names: Vec<&str> = kept.iter().map(|(_, n, _)| n.as_str()).collect();
    let table = table.or_else(|| kept.iter().find(|(t, _, _)| t == "table").map(|(_, n, _)| n.clone()));
    Object::Described(Some(first.0.clone()), Some(names.join(", ")), table)
}

/// `(object_type, object_identity, table)` of the object a statement created, altered or
/// dropped, or the fact that it was temporary.
enum Object {
    Described(Option<String>, Option<String>, Option<String>),
    Temporary,
}

/// The object the model named.
fn named_object(name: &ObjectName) -> Option<Object> {
    let oid = match name {
        ObjectName::Known {
            object_type,
            identity,
            table,
        } => {
            return Some(Object::Described(
                Some((*object_type).to_owned()),
                Some(identity.clone()),
                Some(table.clone()),
            ));
        }
        ObjectName::Created(r) => crate::catalog::resolve(r)?,
        // Recorded at the start of the statement.
        ObjectName::Dropped(_) => return None,
    };
    let rel = crate::catalog::CatalogFacts::new(false).rel_by_oid(oid)?;
    if rel.temp {
        return Some(Object::Temporary);
    }
    let object_type = rel.kind.object_type().filter(|t| *t != "index")?;
    Some(Object::Described(
        Some(object_type.to_owned()),
        Some(rel.display.clone()),
        Some(rel.display),
    ))
}

/// The relations (pg_class objects) the running statement created or altered, from
/// `pg_event_trigger_ddl_commands()`.
///
/// # Safety
/// Call inside a `ddl_command_end` event trigger.
pub(crate) unsafe fn created_relations() -> Vec<u32> {
    let mut out = Vec::new();
    for c in unsafe { ddl_commands() } {
        if c.classid == pg_sys::RelationRelationId && !out.contains(&c.objid.to_u32()) {
            out.push(c.objid.to_u32());
        }
    }
    out
}

struct DdlCommand {
    classid: pg_sys::Oid,
    objid: pg_sys::Oid,
    tag: Option<String>,
    object_type: Option<String>,
    identity: Option<String>,
    /// The object lives in a temporary schema (reported as `pg_temp`; no other schema may start with `pg_`).
    temporary: bool,
}

/// `SELECT … FROM pg_event_trigger_ddl_commands() WHERE NOT in_extension`.
unsafe fn ddl_commands() -> Vec<DdlCommand> {
    let mut out = Vec::new();
    unsafe {
        call_srf(c"pg_event_trigger_ddl_commands", |col| {
            if col.boolean(8) {
                return;
            }
            out.push(DdlCommand {
                classid: col.oid(1),
                objid: col.oid(2),
                tag: col.text(4),
                object_type: col.text(5),
                identity: col.text(7),
                temporary: col.text(6).is_some_and(|s| s == "pg_temp" || s.starts_with("pg_temp_")),
            });
        })
    };
    out
}

/// One object a DROP removed: `(object_type, object_identity, is_temporary)`.
type Dropped = (String, String, bool);

/// `SELECT object_type, object_identity, is_temporary FROM pg_event_trigger_dropped_objects()
/// WHERE original`: the objects the statement named, not those that went with them.
unsafe fn dropped_objects() -> Vec<Dropped> {
    let mut out = Vec::new();
    unsafe {
        call_srf(c"pg_event_trigger_dropped_objects", |col| {
            if col.boolean(4) {
                out.push((
                    col.text(7).unwrap_or_default(),
                    col.text(10).unwrap_or_default(),
                    col.boolean(6),
                ));
            }
        })
    };
    out
}

/// The columns of one row of a set-returning function's result.
struct SrfRow(*mut pg_sys::TupleTableSlot);

impl SrfRow {
    fn datum(&self, n: i32) -> Option<pg_sys::Datum> {
        let mut isnull = false;
        // SAFETY: the slot holds a row of the function's result; n is one of its columns.
        let d = unsafe { pg_sys::slot_getattr(self.0, n, &mut isnull) };
        (!isnull).then_some(d)
    }
    fn text(&self, n: i32) -> Option<String> {
        // SAFETY: column n is of type text.
        self.datum(n)
            .and_then(|d| unsafe { <String as pgrx::FromDatum>::from_datum(d, false) })
    }
    fn boolean(&self, n: i32) -> bool {
        self.datum(n).is_some_and(|d| d.value() != 0)
    }
    fn oid(&self, n: i32) -> pg_sys::Oid {
        // SAFETY: column n is of type oid.
        self.datum(n)
            .and_then(|d| unsafe { pg_sys::Oid::from_datum(d, false) })
            .unwrap_or(pg_sys::InvalidOid)
    }
}

/// Call a built-in set-returning function of no arguments (one of the event trigger ones)
/// directly through the function manager and hand each row to `each`. These run for every DDL
/// statement, and going through SPI (parse, plan, executor) would cost several times more than
/// the function itself.
unsafe fn call_srf(name: &'static CStr, mut each: impl FnMut(&SrfRow)) {
    thread_local! {
        /// FmgrInfo of each function, looked up once per backend.
        static FLINFOS: RefCell<Vec<(&'static CStr, pg_sys::FmgrInfo)>> = const { RefCell::new(Vec::new()) };
    }
    unsafe {
        let mut flinfo = FLINFOS.with_borrow_mut(|cache| {
            if let Some((_, f)) = cache.iter().find(|(n, _)| *n == name) {
                return *f;
            }
            let oid = pg_sys::fmgr_internal_function(name.as_ptr());
            let mut f: pg_sys::FmgrInfo = std::mem::zeroed();
            pg_sys::fmgr_info_cxt(oid, &mut f, pg_sys::TopMemoryContext);
            cache.push((name, f));
            f
        });
        let econtext = pg_sys::CreateStandaloneExprContext();
        let mut rsinfo: pg_sys::ReturnSetInfo = std::mem::zeroed();
        rsinfo.type_ = pg_sys::NodeTag::T_ReturnSetInfo;
        rsinfo.econtext = econtext;
        rsinfo.allowedModes = pg_sys::SetFunctionReturnMode::SFRM_Materialize as i32;
        rsinfo.returnMode = pg_sys::SetFunctionReturnMode::SFRM_ValuePerCall;
        rsinfo.isDone = pg_sys::ExprDoneCond::ExprSingleResult;
        let fcinfo =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>()) as pg_sys::FunctionCallInfo;
        (*fcinfo).flinfo = &mut flinfo;
        (*fcinfo).resultinfo = (&mut rsinfo as *mut pg_sys::ReturnSetInfo).cast();
        (*fcinfo).nargs = 0;
        let addr = flinfo.fn_addr.expect("builtin function address");
        pg_sys::ffi::pg_guard_ffi_boundary(|| addr(fcinfo));
        if !rsinfo.setResult.is_null() && !rsinfo.setDesc.is_null() {
            let slot = pg_sys::MakeSingleTupleTableSlot(rsinfo.setDesc, &pg_sys::TTSOpsMinimalTuple);
            while pg_sys::tuplestore_gettupleslot(rsinfo.setResult, true, false, slot) {
                each(&SrfRow(slot));
            }
            pg_sys::ExecDropSingleTupleTableSlot(slot);
            pg_sys::tuplestore_end(rsinfo.setResult);
        }
        pg_sys::pfree(fcinfo.cast());
        pg_sys::FreeExprContext(econtext, true);
    }
}

/// The table a relation is or belongs to (an index's table), schema-qualified and quoted.
pub(crate) unsafe fn table_of(relid: pg_sys::Oid) -> Option<String> {
    unsafe {
        let table = pg_sys::IndexGetRelation(relid, true);
        let rel = if table == pg_sys::InvalidOid { relid } else { table };
        let name = pg_sys::get_rel_name(rel);
        if name.is_null() {
            return None;
        }
        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(rel));
        ddl::cstr(pg_sys::quote_qualified_identifier(schema, name))
    }
}

/// Statement text with every literal replaced when it may carry a secret: user mappings,
/// foreign servers and wrappers, subscriptions (connection strings), and anything that mentions
/// a PASSWORD.
pub fn redact(tag: &str, text: &str) -> String {
    const SECRET_TAGS: &[&str] = &[
        "CREATE USER MAPPING",
        "ALTER USER MAPPING",
        "CREATE SERVER",
        "ALTER SERVER",
        "CREATE FOREIGN DATA WRAPPER",
        "ALTER FOREIGN DATA WRAPPER",
        "CREATE SUBSCRIPTION",
        "ALTER SUBSCRIPTION",
        "IMPORT FOREIGN SCHEMA",
    ];
    if SECRET_TAGS.contains(&tag) {
        sqltext::redact_literals(text)
    } else if mentions_secret_word(text) || might_hold_a_secret(text) {
        redact_code(text)
    } else {
        text.to_owned()
    }
}

/// A quick look for what [`secret_literal`] finds: a `://…@` address or a key followed by `=`
/// or `:` (most statements have neither, and skip the lexer).
fn might_hold_a_secret(text: &str) -> bool {
    text.contains('@') || text.contains('=') || text.contains(':')
}

/// A string literal (quotes included) that looks like it carries a secret: a URL with a password
/// (`postgres://user:secret@host`), or a password, secret, token or key given a value
/// (`password=…`, `password: …`, as in a connection string or a note). A literal that merely
/// mentions the word (`'the password policy table'`) is kept.
fn secret_literal(literal: &str) -> bool {
    let l = literal.to_ascii_lowercase();
    if let Some(at) = l.find("://") {
        let rest = &l[at + 3..];
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        if let Some(userinfo_end) = authority.rfind('@')
            && authority[..userinfo_end].contains(':')
        {
            return true;
        }
    }
    const KEYS: [&str; 9] = [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "private_key",
    ];
    KEYS.iter().any(|k| {
        l.match_indices(k).any(|(i, _)| {
            let after = l[i + k.len()..].trim_start_matches([' ', '\t', '"', '\'']);
            after.starts_with('=') || after.starts_with(':')
        })
    })
}

/// `text` with its literals redacted when it names PASSWORD, MAPPING, SUBSCRIPTION or SERVER as
/// a word of code; the bodies of dollar-quoted literals (DO blocks,
/// function bodies) are code too and are redacted the same way, recursively.
fn redact_code(text: &str) -> String {
    let pieces = sqltext::lex(text);
    let secret = pieces.iter().any(|p| {
        matches!(p, sqltext::Piece::Word(x)
                if ["PASSWORD", "MAPPING", "SUBSCRIPTION", "SERVER"].iter().any(|k| x.eq_ignore_ascii_case(k)))
    });
    let mut out = String::with_capacity(text.len());
    for p in &pieces {
        match p {
            sqltext::Piece::Literal(_) if secret => out.push_str("'<redacted>'"),
            sqltext::Piece::Literal(l) if !l.starts_with('$') && secret_literal(l) => out.push_str("'<redacted>'"),
            sqltext::Piece::Literal(l) if l.starts_with('$') && (mentions_secret_word(l) || might_hold_a_secret(l)) => {
                let tag_len = l[1..].find('$').map_or(l.len(), |i| i + 2);
                if l.len() >= 2 * tag_len {
                    let (tag, body) = (&l[..tag_len], &l[tag_len..l.len() - tag_len]);
                    out.push_str(tag);
                    out.push_str(&redact_code(body));
                    out.push_str(tag);
                } else {
                    out.push_str("'<redacted>'");
                }
            }
            p => out.push_str(p.text()),
        }
    }
    out
}

/// One pass over the text for the words that can introduce a secret (case-insensitive); the
/// lexer then confirms they are words of code, not inside a literal.
fn mentions_secret_word(text: &str) -> bool {
    const WORDS: [&[u8]; 4] = [b"password", b"mapping", b"subscription", b"server"];
    let b = text.as_bytes();
    (0..b.len()).any(|i| {
        let c = b[i].to_ascii_lowercase();
        matches!(c, b'p' | b'm' | b's')
            && WORDS
                .iter()
                .any(|w| w[0] == c && b.len() - i >= w.len() && b[i..i + w.len()].eq_ignore_ascii_case(w))
    })
}

/// Write the buffered rows (called just before commit, and by `end_migration`).
///
/// Rows go straight into the heap and its indexes, the way PostgreSQL writes its own catalogs:
/// this runs at the end of every transaction that ran DDL, and an INSERT through SPI (executor
/// start-up, constraint expressions, plan checks) would cost several times the DDL guard itself.
/// No privilege is checked and no user code (trigger, rule) runs: only the extension writes here.
pub fn flush() {
    let rows = ROWS.take();
    if rows.is_empty() {
        return;
    }
    let Some(relid) = history_table() else {
        error!("migrate_guard: table migrate_guard.history is missing; reinstall the extension");
    };
    // SAFETY: the table is opened and locked for the duration; every datum below matches its
    // column's type (columns are matched by name); errors abort the transaction, which releases
    // everything.
    // At pre-commit the statement's snapshot is gone; inserting (and toasting a long statement
    // text) needs one, as assertion-enabled builds check.
    unsafe {
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        insert_rows(relid, &rows);
        pg_sys::PopActiveSnapshot();
    }
    WRITING.with_borrow_mut(|w| {
        for m in rows.iter().filter_map(|r| r.migration) {
            match w.iter_mut().find(|(id, _)| *id == m) {
                Some((_, n)) => *n += 1,
                None => w.push((m, 1)),
            }
        }
    });
}

/// `migrate_guard.history`, looked up through the schema's oid, which the backend remembers
/// (found again when the extension was dropped and created anew).
fn history_table() -> Option<pg_sys::Oid> {
    thread_local! {
        static SCHEMA: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
    }
    // SAFETY: syscache lookups inside a transaction.
    unsafe {
        for attempt in 0..2 {
            if attempt == 1 || SCHEMA.get() == pg_sys::InvalidOid {
                SCHEMA.set(pg_sys::get_namespace_oid(c"migrate_guard".as_ptr(), true));
            }
            let schema = SCHEMA.get();
            if schema != pg_sys::InvalidOid {
                let relid = pg_sys::get_relname_relid(c"history".as_ptr(), schema);
                if relid != pg_sys::InvalidOid {
                    return Some(relid);
                }
            }
        }
        None
    }
}

unsafe fn insert_rows(relid: pg_sys::Oid, rows: &[Row]) {
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        let natts = (*desc).natts as usize;
        let attrs = crate::server::compat::attributes(desc);
        // Columns are matched by name once per flush, not per row.
        let cols: Vec<Option<HistoryColumn>> = attrs
            .iter()
            .map(|a| {
                (!a.attisdropped)
                    .then(|| HistoryColumn::named(CStr::from_ptr(a.attname.data.as_ptr())))
                    .flatten()
            })
            .collect();
        // Ids for the whole flush at once, from this backend's block (see crate::ids).
        let mut next_id = crate::ids::take(identity_sequence(relid), rows.len() as i64);
        let client_addr = pgrx::direct_function_call_as_datum(pg_sys::inet_client_addr, &[]);
        // Most rows fire no rule: their three arrays share one empty text[].
        let empty: Option<pg_sys::Datum> = Vec::<&str>::new().into_datum();
        let array = |items: &[&str]| if items.is_empty() { empty } else { items.into_datum() };
        let pid = pg_sys::MyProcPid;
        // Every row of the flush belongs to the transaction committing now (the insert below
        // would assign its id anyway).
        let xid = pg_sys::GetTopFullTransactionId().value;

        let estate = pg_sys::CreateExecutorState();
        let rri = PgBox::<pg_sys::ResultRelInfo>::alloc_node(pg_sys::NodeTag::T_ResultRelInfo).into_pg();
        pg_sys::InitResultRelInfo(rri, rel, 1, std::ptr::null_mut(), 0);
        pg_sys::ExecOpenIndices(rri, false);
        let slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsHeapTuple);
        let mut values = vec![pg_sys::Datum::from(0); natts];
        let mut nulls = vec![true; natts];
        for r in rows {
            for (i, col) in cols.iter().enumerate() {
                use HistoryColumn as C;
                let v: Option<pg_sys::Datum> = match col {
                    Some(C::Id) => {
                        next_id += 1;
                        Some(pg_sys::Datum::from(next_id - 1))
                    }
                    Some(C::ExecutedAt) => Some(pg_sys::Datum::from(r.at_us)),
                    Some(C::TransactionId) => Some(pg_sys::Datum::from(xid)),
                    Some(C::SessionUser) => r.session_user.as_str().into_datum(),
                    Some(C::CurrentUser) => r.current_user.as_str().into_datum(),
                    Some(C::ApplicationName) => r.application_name.as_deref().into_datum(),
                    Some(C::ClientAddr) => client_addr,
                    Some(C::BackendPid) => Some(pg_sys::Datum::from(pid)),
                    Some(C::CommandTag) => r.command_tag.as_str().into_datum(),
                    Some(C::ObjectType) => r.object_type.as_deref().into_datum(),
                    Some(C::ObjectIdentity) => r.object_identity.as_deref().into_datum(),
                    Some(C::TableName) => r.table.as_deref().into_datum(),
                    Some(C::Statement) => r.statement.as_deref().into_datum(),
                    Some(C::Verdict) => r.verdict.into_datum(),
                    Some(C::RulesFired) => array(&r.fired),
                    Some(C::RulesAllowed) => array(&r.allowed.iter().map(|(rule, _)| *rule).collect::<Vec<_>>()),
                    Some(C::AllowedVia) => array(&r.allowed.iter().map(|(_, via)| *via).collect::<Vec<_>>()),
                    Some(C::MigrationId) => r.migration.into_datum(),
                    None => None,
                };
                nulls[i] = v.is_none();
                values[i] = v.unwrap_or(pg_sys::Datum::from(0));
            }
            let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            pg_sys::ExecStoreHeapTuple(tuple, slot, true);
            pg_sys::simple_table_tuple_insert(rel, slot);
            crate::server::compat::insert_index_tuples(rri, slot, estate);
            pg_sys::ExecClearTuple(slot);
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::ExecCloseIndices(rri);
        pg_sys::FreeExecutorState(estate);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    }
}

/// The columns of `migrate_guard.history` the extension fills.
#[derive(Clone, Copy)]
enum HistoryColumn {
    Id,
    ExecutedAt,
    TransactionId,
    SessionUser,
    CurrentUser,
    ApplicationName,
    ClientAddr,
    BackendPid,
    CommandTag,
    ObjectType,
    ObjectIdentity,
    TableName,
    Statement,
    Verdict,
    RulesFired,
    RulesAllowed,
    AllowedVia,
    MigrationId,
}

impl HistoryColumn {
    fn named(name: &CStr) -> Option<Self> {
        use HistoryColumn as C;
        Some(match name.to_bytes() {
            b"id" => C::Id,
            b"executed_at" => C::ExecutedAt,
            b"transaction_id" => C::TransactionId,
            b"session_user_name" => C::SessionUser,
            b"current_user_name" => C::CurrentUser,
            b"application_name" => C::ApplicationName,
            b"client_addr" => C::ClientAddr,
            b"backend_pid" => C::BackendPid,
            b"command_tag" => C::CommandTag,
            b"object_type" => C::ObjectType,
            b"object_identity" => C::ObjectIdentity,
            b"table_name" => C::TableName,
            b"statement" => C::Statement,
            b"verdict" => C::Verdict,
            b"rules_fired" => C::RulesFired,
            b"rules_allowed" => C::RulesAllowed,
            b"allowed_via" => C::AllowedVia,
            b"migration_id" => C::MigrationId,
            _ => return None,
        })
    }
}

/// The identity sequence of `history.id`, remembered per backend for the table it belongs to.
unsafe fn identity_sequence(relid: pg_sys::Oid) -> pg_sys::Oid {
    thread_local! {
        static SEQ: Cell<(pg_sys::Oid, pg_sys::Oid)> = const { Cell::new((pg_sys::InvalidOid, pg_sys::InvalidOid)) };
    }
    let (table, seq) = SEQ.get();
    if table == relid {
        return seq;
    }
    let seq = unsafe { crate::ids::identity_sequence(relid) };
    SEQ.set((relid, seq));
    seq
}

/// Statements of `migration_id` written by this session's committed transactions, plus those
/// buffered in the current one.
pub fn statements_of_migration(migration_id: i64) -> i64 {
    let written = WRITTEN.with_borrow(|w| w.iter().find(|(m, _)| *m == migration_id).map_or(0, |(_, n)| *n));
    written + ROWS.with_borrow(|rows| rows.iter().filter(|r| r.migration == Some(migration_id)).count() as i64)
}

/// Transaction end: write the rows before commit (or prepare), forget them on abort.
#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PRE_PREPARE => flush(),
        XACT_EVENT_COMMIT | XACT_EVENT_PREPARE => {
            for (m, n) in WRITING.take() {
                WRITTEN.with_borrow_mut(|w| match w.iter_mut().find(|(id, _)| *id == m) {
                    Some((_, total)) => *total += n,
                    None => w.push((m, n)),
                });
            }
        }
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => {
            ROWS.with_borrow_mut(Vec::clear);
            STATEMENTS.with_borrow_mut(Vec::clear);
            WRITING.with_borrow_mut(Vec::clear);
        }
        // Records of running statements survive commits: CREATE INDEX CONCURRENTLY and DROP
        // INDEX CONCURRENTLY commit internally between their start and end events.
        _ => {}
    }
}

/// Savepoints: rows of a rolled-back subtransaction (and of its children, which have larger
/// ids) are dropped; rows of a released one now belong to its parent.
#[pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut c_void,
) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_ABORT_SUB => ROWS.with_borrow_mut(|rows| rows.retain(|r| r.subxact < my_subid)),
        SUBXACT_EVENT_COMMIT_SUB => ROWS.with_borrow_mut(|rows| {
            for r in rows.iter_mut().filter(|r| r.subxact >= my_subid) {
                r.subxact = parent_subid;
            }
        }),
        _ => {}
    }
}

/// Called once per backend from `_PG_init`.
pub fn register_callbacks() {
    // SAFETY: registering plain C callbacks, once per process.
    unsafe {
        pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subxact_callback), std::ptr::null_mut());
    }
}

#[cfg(test)]
mod unit {
    use super::redact;

    #[test]
    fn secrets_in_options_and_connection_strings_are_redacted() {
        let text = "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'app', password 'swordfish')";
        let out = redact("CREATE USER MAPPING", text);
        assert!(!out.contains("swordfish") && !out.contains("'app'"), "{out}");
        assert!(
            out.starts_with("CREATE USER MAPPING FOR app SERVER s OPTIONS (user '"),
            "{out}"
        );
        let out = redact(
            "ALTER SUBSCRIPTION",
            "ALTER SUBSCRIPTION s CONNECTION 'host=x password=p4ss'",
        );
        assert!(!out.contains("p4ss"), "{out}");
    }

    #[test]
    fn a_password_anywhere_in_the_text_redacts_its_literals() {
        // DDL run from a DO block records the block, which may also set a password.
        let text = "DO $$ BEGIN EXECUTE 'CREATE TABLE t (id int)'; ALTER ROLE app PASSWORD 'hunter2'; END $$";
        let out = redact("CREATE TABLE", text);
        assert_eq!(
            out,
            "DO $$ BEGIN EXECUTE '<redacted>'; ALTER ROLE app PASSWORD '<redacted>'; END $$"
        );
        let text = "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $body$ ALTER ROLE app PASSWORD 'x' $body$";
        assert!(redact("CREATE FUNCTION", text).ends_with("AS $body$ ALTER ROLE app PASSWORD '<redacted>' $body$"));
    }

    #[test]
    fn literals_that_carry_a_secret_are_redacted_wherever_they_are() {
        for (text, expected) in [
            (
                "COMMENT ON SERVER s IS 'host=db user=svc password=hunter2'",
                "COMMENT ON SERVER s IS '<redacted>'",
            ),
            (
                "CREATE TABLE t (dsn text DEFAULT 'postgres://svc:hunter2@db/app')",
                "CREATE TABLE t (dsn text DEFAULT '<redacted>')",
            ),
            (
                "COMMENT ON TABLE t IS 'svc password: hunter2'",
                "COMMENT ON TABLE t IS '<redacted>'",
            ),
            (
                "ALTER TABLE t ALTER COLUMN k SET DEFAULT 'api_key=abc123'",
                "ALTER TABLE t ALTER COLUMN k SET DEFAULT '<redacted>'",
            ),
            (
                "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'token: abc' $$",
                "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT '<redacted>' $$",
            ),
        ] {
            assert_eq!(redact("COMMENT", text), expected);
            assert!(!redact("COMMENT", text).contains("hunter2"));
        }
    }

    #[test]
    fn ordinary_ddl_is_kept_verbatim() {
        for text in [
            "CREATE TABLE t (id int DEFAULT 42, note text DEFAULT 'x')",
            "COMMENT ON TABLE t IS 'the password policy table'",
            "ALTER TABLE servers ADD COLUMN passwords_rotated_at timestamptz",
            "CREATE TABLE links (url text DEFAULT 'https://example.com/a:b', at time DEFAULT '12:00')",
            "ALTER TABLE t ADD CONSTRAINT c CHECK (note <> 'key: value')",
        ] {
            assert_eq!(redact("CREATE TABLE", text), text);
        }
    }
}
