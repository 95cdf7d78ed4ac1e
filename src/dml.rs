//! Data changes inside migrations and DDL transactions: the executor hook behind the rules
//! `large-update` and `schema-and-data`.
//!
//! The hook is installed when the library loads (the first DDL statement or migrate_guard
//! function of a session, or at start-up with `shared_preload_libraries`). A query that is not
//! a data change costs one comparison; a data change outside a migration and outside a DDL
//! transaction costs a few more and the note of which table it changed (for a schema change
//! that may come later in the same transaction). Only inside a migration or a DDL transaction
//! does the hook read the plan's row estimate, and only under a schema change's strong lock the
//! transaction's own row counts (`pg_stat_get_xact_tuples_*`).
//!
//! Judged at executor start, before any row is touched: the planner's estimate. Judged again
//! when the statement finishes, under a strong lock only: the rows the transaction has really
//! changed (an estimate can be far off, and many small statements add up).

use crate::catalog::CatalogFacts;
use crate::facts::Facts;
use crate::model::LockMode;
use crate::policy::Mode;
use crate::report::{self, Pending};
use crate::rules::large_update::{self, Context, DataChange};
use crate::rules::schema_and_data::{self, HeldLock};
use crate::{guard, gucs, history};
use core::ffi::c_int;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};

/// What the current transaction has done that the rules need to know.
#[derive(Default)]
struct Xact {
    /// The first DDL statement (its command tag) and the subtransaction that ran it.
    ddl: Option<(String, pg_sys::SubTransactionId)>,
    /// Strong locks its DDL took on tables other sessions use (whether each holds data is asked
    /// when a data change is judged), with the table's oid.
    held: Vec<(HeldLock, pg_sys::Oid, pg_sys::SubTransactionId)>,
    /// The library was loaded during this transaction: data changes before that were not seen.
    loaded_here: bool,
    /// The tables the transaction holds ROW EXCLUSIVE locks on were added to `WRITTEN` once.
    locks_scanned: bool,
    /// `schema-and-data` was allowed or warned about once already in this transaction (in this
    /// subtransaction or an earlier one).
    mixed_accepted: bool,
    mixed_accepted_in: pg_sys::SubTransactionId,
}

thread_local! {
    static XACT: RefCell<Xact> = RefCell::new(Xact::default());
    /// `XACT.ddl.is_some()`, read on the fast path.
    static DDL_RAN: Cell<bool> = const { Cell::new(false) };
    /// `!XACT.held.is_empty() && !XACT.mixed_accepted`, read on the fast path.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
    /// Set while the hook itself runs queries.
    static JUDGING: Cell<bool> = const { Cell::new(false) };
    /// The batch statements `migrate_guard.backfill` prepared in this session: they are the
    /// safe way, judged by the backfill itself.
    static BACKFILL_SQL: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

static mut PREV_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREV_FINISH: pg_sys::ExecutorFinish_hook_type = None;

unsafe extern "C-unwind" {
    fn standard_ExecutorStart(query_desc: *mut pg_sys::QueryDesc, eflags: c_int);
    fn standard_ExecutorFinish(query_desc: *mut pg_sys::QueryDesc);
}

/// Called once per process from `_PG_init`.
pub fn register() {
    // SAFETY: hooks are process globals, set once while the library loads; the previous ones
    // are called in turn.
    unsafe {
        PREV_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREV_FINISH = pg_sys::ExecutorFinish_hook;
        pg_sys::ExecutorFinish_hook = Some(executor_finish);
        pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subxact_callback), std::ptr::null_mut());
        if pg_sys::IsTransactionState() {
            XACT.with_borrow_mut(|x| x.loaded_here = true);
        }
    }
}

/// The entry point. Only the raise, which needs migrate_guard's own SQLSTATE, and the calls of
/// the next hook happen in this frame, which owns nothing that needs dropping.
unsafe extern "C-unwind" fn executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: c_int) {
    // SAFETY: PostgreSQL passes a valid QueryDesc with its PlannedStmt.
    unsafe {
        if changes_data(query_desc) {
            note_written(&*(*query_desc).plannedstmt);
            if DDL_RAN.get() || migration_open() {
                let pending = judge_start(query_desc, eflags);
                if !pending.is_null() {
                    report::throw(pending);
                }
            }
        }
        match PREV_START {
            Some(prev) => prev(query_desc, eflags),
            None => standard_ExecutorStart(query_desc, eflags),
        }
        // Usage is counted once the executor started: after its permission checks, so a query
        // that may not read a table does not count as using it.
        if !JUDGING.get() {
            note_usage(query_desc, eflags);
        }
    }
}

/// Usage tracking's count of a query, behind an error boundary: the rare paths of
/// [`crate::usage::note`] (the first lookup of the schema, a whole-row reference) call the server
/// through pgrx, and an ERROR there must reach PostgreSQL as an ERROR.
#[pg_guard]
extern "C-unwind" fn note_usage(query_desc: *mut pg_sys::QueryDesc, eflags: c_int) {
    // SAFETY: the QueryDesc the executor has just started.
    unsafe { crate::usage::note(query_desc, eflags) }
}

unsafe extern "C-unwind" fn executor_finish(query_desc: *mut pg_sys::QueryDesc) {
    // SAFETY: as in executor_start.
    unsafe {
        match PREV_FINISH {
            Some(prev) => prev(query_desc),
            None => standard_ExecutorFinish(query_desc),
        }
        if HOLDING.get() && changes_data(query_desc) {
            let pending = judge_finish(query_desc);
            if !pending.is_null() {
                report::throw(pending);
            }
        }
    }
}

/// The query writes rows: an INSERT, UPDATE, DELETE or MERGE, or a query with one in a WITH.
unsafe fn changes_data(query_desc: *mut pg_sys::QueryDesc) -> bool {
    unsafe {
        let qd = &*query_desc;
        qd.operation != pg_sys::CmdType::CMD_SELECT || (!qd.plannedstmt.is_null() && (*qd.plannedstmt).hasModifyingCTE)
    }
}

/// Tables the transaction's data changes wrote to (as far as the hook saw them): a fixed
/// buffer filled on the path of every data change, without allocating.
struct Written {
    oids: [pg_sys::Oid; 32],
    len: usize,
    /// More tables than the buffer holds: they are found by their locks instead.
    overflow: bool,
}

thread_local! {
    static WRITTEN: Cell<Written> = const {
        Cell::new(Written { oids: [pg_sys::InvalidOid; 32], len: 0, overflow: false })
    };
}

/// Note the tables a data change writes to (its ModifyTable nodes' target tables).
unsafe fn note_written(ps: &pg_sys::PlannedStmt) {
    unsafe {
        note_plan(ps, ps.planTree);
        if ps.hasModifyingCTE && !ps.subplans.is_null() {
            let subplans = &*ps.subplans;
            for i in 0..subplans.length.max(0) as usize {
                note_plan(ps, (*subplans.elements.add(i)).ptr_value.cast());
            }
        }
    }
}

unsafe fn note_plan(ps: &pg_sys::PlannedStmt, plan: *mut pg_sys::Plan) {
    unsafe {
        if plan.is_null() || (*plan).type_ != pg_sys::NodeTag::T_ModifyTable || ps.rtable.is_null() {
            return;
        }
        let mt = &*(plan as *mut pg_sys::ModifyTable);
        let rti = if mt.rootRelation > 0 {
            mt.rootRelation
        } else {
            mt.nominalRelation
        } as usize;
        let rtable = &*ps.rtable;
        if rti == 0 || rti > rtable.length.max(0) as usize {
            return;
        }
        let rte = (*rtable.elements.add(rti - 1)).ptr_value as *mut pg_sys::RangeTblEntry;
        note_relid((*rte).relid);
    }
}

fn note_relid(relid: pg_sys::Oid) {
    WRITTEN.with(|w| {
        // SAFETY: this backend's own buffer, borrowed nowhere else.
        let w = unsafe { &mut *w.as_ptr() };
        if w.oids[..w.len].contains(&relid) {
            return;
        }
        if w.len < w.oids.len() {
            w.oids[w.len] = relid;
            w.len += 1;
        } else {
            w.overflow = true;
        }
    });
}

/// A migration is open in this session (`migrate_guard.current_migration` set): a pointer test.
fn migration_open() -> bool {
    // SAFETY: the GUC's value is null or a NUL-terminated string owned by the GUC machinery.
    unsafe {
        let value = *gucs::CURRENT_MIGRATION.as_ptr();
        !value.is_null() && *value != 0
    }
}

/// One data change of a query: a ModifyTable node.
struct Change {
    op: &'static str,
    relid: pg_sys::Oid,
    estimate: i64,
}

/// The ModifyTable nodes of the plan (the top one, and those of data-modifying WITH queries).
unsafe fn changes(ps: &pg_sys::PlannedStmt) -> Vec<Change> {
    unsafe {
        let mut nodes = vec![ps.planTree];
        if ps.hasModifyingCTE {
            nodes.extend(pgrx::PgList::<pg_sys::Plan>::from_pg(ps.subplans).iter_ptr());
        }
        let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg(ps.rtable);
        nodes
            .into_iter()
            .filter(|n| !n.is_null() && pgrx::is_a(n.cast(), pg_sys::NodeTag::T_ModifyTable))
            .filter_map(|n| {
                let mt = &*(n as *mut pg_sys::ModifyTable);
                let rti = if mt.rootRelation > 0 {
                    mt.rootRelation
                } else {
                    mt.nominalRelation
                };
                let rte = rtable.get_ptr(rti as usize - 1)?;
                let op = match mt.operation {
                    pg_sys::CmdType::CMD_INSERT => "INSERT",
                    pg_sys::CmdType::CMD_UPDATE => "UPDATE",
                    pg_sys::CmdType::CMD_DELETE => "DELETE",
                    _ => "MERGE",
                };
                Some(Change {
                    op,
                    relid: (*rte).relid,
                    estimate: crate::server::compat::modify_table_rows(mt).round() as i64,
                })
            })
            .collect()
    }
}

/// What the hook decides about a query: the error to raise, or null.
#[pg_guard]
extern "C-unwind" fn judge_start(query_desc: *mut pg_sys::QueryDesc, eflags: c_int) -> *mut Pending {
    if JUDGING.get() || eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as c_int != 0 {
        return std::ptr::null_mut();
    }
    // SAFETY: as in executor_start.
    let (qd, ps) = unsafe { (&*query_desc, &*(*query_desc).plannedstmt) };
    // SAFETY: reads of the plan.
    let found = unsafe { changes(ps) };
    let migration = crate::migrations::current_migration_id();
    if migration.is_none() && !DDL_RAN.get() {
        return std::ptr::null_mut();
    }
    let Some(mode) = guard::active_mode() else {
        return std::ptr::null_mut();
    };
    if found.is_empty() || is_backfill_batch(qd) {
        return std::ptr::null_mut();
    }
    JUDGING.set(true);
    let result = judging(|| start_findings(qd, ps, &found, migration, mode));
    JUDGING.set(false);
    result
}

#[pg_guard]
extern "C-unwind" fn judge_finish(query_desc: *mut pg_sys::QueryDesc) -> *mut Pending {
    if JUDGING.get() {
        return std::ptr::null_mut();
    }
    let Some(mode) = guard::active_mode() else {
        return std::ptr::null_mut();
    };
    // SAFETY: as in executor_start.
    let (qd, ps) = unsafe { (&*query_desc, &*(*query_desc).plannedstmt) };
    if is_backfill_batch(qd) {
        return std::ptr::null_mut();
    }
    // SAFETY: reads of the plan.
    let found = unsafe { changes(ps) };
    let Some(first) = found.first() else {
        return std::ptr::null_mut();
    };
    JUDGING.set(true);
    let result = judging(|| {
        let facts = CatalogFacts::new(false);
        let rel = facts.rel_by_oid(first.relid)?;
        if !judged_target(&rel) {
            return None;
        }
        let held = strongest_held(&facts)?;
        let changed = rows_changed(&facts, false);
        let text = statement_text(qd, ps);
        let change = DataChange {
            op: first.op,
            table: &rel.display,
            estimate: first.estimate,
            estimate_note: None,
            text: Some(&text),
        };
        let mut findings = Vec::new();
        // SAFETY: the executor state of the statement that just ran.
        let processed = unsafe { (*qd.estate).es_processed } as i64;
        schema_and_data::during(
            &change,
            &held,
            &changed,
            Some(processed),
            gucs::max_rows(),
            &mut findings,
        );
        decide(findings, mode, &text, &rel.display, first.op)
    });
    JUDGING.set(false);
    result
}

/// Run `f` and turn its answer into a pointer; the JUDGING flag is cleared by the caller, and
/// by the transaction's abort if `f` raises.
fn judging(f: impl FnOnce() -> Option<*mut Pending>) -> *mut Pending {
    f().unwrap_or(std::ptr::null_mut())
}

fn start_findings(
    qd: &pg_sys::QueryDesc,
    ps: &pg_sys::PlannedStmt,
    found: &[Change],
    migration: Option<i64>,
    mode: Mode,
) -> Option<*mut Pending> {
    let facts = CatalogFacts::new(false);
    let text = statement_text(qd, ps);
    let max = gucs::max_rows();
    let mut findings = Vec::new();
    let mut judged: Option<(String, &'static str)> = None;
    let restoring = crate::restore::restoring();
    for c in found {
        let Some(rel) = facts.rel_by_oid(c.relid) else { continue };
        if !judged_target(&rel) || (restoring && crate::restore::exempt(&[c.relid.to_u32()])) {
            continue;
        }
        let change = DataChange {
            op: c.op,
            table: &rel.display,
            estimate: c.estimate,
            estimate_note: None,
            text: Some(&text),
        };
        let before = findings.len();
        if let Some(held) = strongest_held(&facts) {
            let changed = rows_changed(&facts, false);
            schema_and_data::during(&change, &held, &changed, None, max, &mut findings);
        }
        // A table created in this transaction is invisible to every other session.
        if !rel.new_in_xact {
            let context = match migration {
                Some(id) => Some(Context::Migration(migration_name(id))),
                None => XACT.with_borrow(|x| x.ddl.as_ref().map(|(tag, _)| Context::DdlTransaction(tag.clone()))),
            };
            large_update::check(&change, context.as_ref(), max, &mut findings);
        }
        if findings.len() > before && judged.is_none() {
            judged = Some((rel.display.clone(), c.op));
        }
    }
    let (table, op) = judged?;
    decide(findings, mode, &text, &table, op)
}

/// Apply the policy to a data change's findings: warn, block, or let it through; record it in
/// history when it runs with a rule allowed or warned about.
fn decide(findings: Vec<crate::rules::Finding>, mode: Mode, text: &str, table: &str, op: &str) -> Option<*mut Pending> {
    if findings.is_empty() {
        return None;
    }
    let verdict = guard::judge(findings, mode, text, None);
    if let Some(pending) = guard::act(&verdict, text) {
        return Some(pending);
    }
    if verdict.runs_with(&[crate::rules::RuleId::SchemaAndData]) {
        mixed_accepted();
    }
    if history::recording() && !verdict.is_clean() {
        history::statement_judged(
            std::ptr::null_mut(),
            op,
            &verdict,
            None,
            Some(history::ObjectName::Known {
                object_type: "table",
                identity: table.to_owned(),
                table: table.to_owned(),
            }),
            Some(text.to_owned()),
            false,
        );
    }
    None
}

/// Whether a data change of `rel` is judged and counted: tables (partitioned ones included).
/// Not temporary tables (the session's own), not the extension's bookkeeping, not a
/// materialized view (only `REFRESH … CONCURRENTLY` writes one, with DELETEs and INSERTs of its
/// own), not TOAST tables or catalogs found among the transaction's locks.
fn judged_target(rel: &crate::facts::Rel) -> bool {
    use crate::facts::RelKind;
    matches!(rel.kind, RelKind::Table | RelKind::PartitionedTable)
        && !rel.temp
        && rel.schema != "migrate_guard"
        && rel.schema != "pg_catalog"
}

/// The strongest lock held because of this transaction's DDL on a table that holds data (the
/// first one taken, among equals), unless `schema-and-data` was already accepted.
fn strongest_held(facts: &CatalogFacts) -> Option<HeldLock> {
    let held: Vec<(HeldLock, pg_sys::Oid)> = XACT.with_borrow(|x| {
        if x.mixed_accepted {
            return Vec::new();
        }
        x.held.iter().map(|(h, oid, _)| (h.clone(), *oid)).collect()
    });
    let mut best: Option<HeldLock> = None;
    for (h, oid) in held {
        if best.as_ref().is_some_and(|b| b.mode >= h.mode) {
            continue;
        }
        if facts.rel_by_oid(oid).is_some_and(|r| facts.with_storage(r).has_data()) {
            best = Some(h);
        }
    }
    best
}

/// The statement's own text: its part of a multi-statement string.
fn statement_text(qd: &pg_sys::QueryDesc, ps: &pg_sys::PlannedStmt) -> String {
    if qd.sourceText.is_null() {
        return String::new();
    }
    // SAFETY: the source text of a running query is a NUL-terminated string.
    let source = unsafe { core::ffi::CStr::from_ptr(qd.sourceText) }.to_bytes();
    crate::ddl::text::of_statement(source, ps.stmt_location, ps.stmt_len)
}

fn is_backfill_batch(qd: &pg_sys::QueryDesc) -> bool {
    if qd.sourceText.is_null() {
        return false;
    }
    // SAFETY: as in statement_text.
    let source = unsafe { core::ffi::CStr::from_ptr(qd.sourceText) }.to_bytes();
    BACKFILL_SQL.with_borrow(|b| b.iter().any(|s| s.as_bytes() == source))
}

/// `migrate_guard.backfill` prepared these batch statements (kept for the session, the last few).
pub fn backfill_prepared(statements: &[&str]) {
    BACKFILL_SQL.with_borrow_mut(|b| {
        for s in statements {
            if !b.iter().any(|x| x == s) {
                if b.len() >= 8 {
                    b.remove(0);
                }
                b.push((*s).to_owned());
            }
        }
    });
}

fn migration_name(id: i64) -> String {
    crate::privilege::with_safe_path(|| {
        Spi::get_one_with_args::<String>("SELECT name FROM migrate_guard.migrations WHERE id = $1", &[id.into()])
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| id.to_string())
}

/// Rows this transaction has inserted, updated or deleted, per table with any, from
/// PostgreSQL's per-transaction statistics of the tables it wrote to. The hook notes the tables
/// of every data change it sees; the others (written before the library loaded in this
/// transaction, by COPY, or past the note's 32 tables) are found by the ROW EXCLUSIVE locks the
/// transaction holds, when `scan_locks` asks for it or the note is known to be incomplete.
fn rows_changed(facts: &CatalogFacts, scan_locks: bool) -> Vec<(String, i64)> {
    // SAFETY: a plain read of this backend's buffer.
    let (mut written, overflow) = WRITTEN.with(|w| unsafe {
        let w = &*w.as_ptr();
        (w.oids[..w.len].to_vec(), w.overflow)
    });
    let scan = XACT.with_borrow(|x| (scan_locks && !x.locks_scanned) || x.loaded_here) || overflow;
    if scan {
        // (Queries of the extension run with a search_path of pg_catalog only: see privilege.rs.)
        let extra: Vec<pg_sys::Oid> = crate::privilege::with_safe_path(|| {
            Spi::connect(|c| {
                c.select(
                    "SELECT relation FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() \
                 AND locktype = 'relation' AND mode = 'RowExclusiveLock' AND granted \
                 AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())",
                    None,
                    &[],
                )?
                .map(|r| r.get::<pg_sys::Oid>(1).map(|o| o.unwrap_or(pg_sys::InvalidOid)))
                .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default()
        });
        XACT.with_borrow_mut(|x| {
            x.loaded_here = false;
            x.locks_scanned = true;
        });
        for o in extra {
            if !written.contains(&o) {
                written.push(o);
                note_relid(o);
            }
        }
    }
    let mut out = Vec::new();
    for oid in written {
        let Some(rel) = facts.rel_by_oid(oid) else { continue };
        if !judged_target(&rel) {
            continue;
        }
        // A partitioned table's rows are counted in its partitions.
        let n = if rel.kind == crate::facts::RelKind::PartitionedTable {
            crate::privilege::with_safe_path(|| {
                Spi::connect(|c| {
                    c.select(
                        "SELECT relid FROM pg_catalog.pg_partition_tree($1) WHERE isleaf",
                        None,
                        &[oid.into()],
                    )?
                    .map(|r| r.get::<pg_sys::Oid>(1).map(|o| o.map_or(0, xact_rows)))
                    .sum::<Result<i64, _>>()
                })
                .unwrap_or(0)
            })
        } else {
            xact_rows(oid)
        };
        if n > 0 {
            out.push((rel.display, n));
        }
    }
    out
}

/// Rows inserted, updated and deleted in `oid` by the current transaction: the counts
/// PostgreSQL keeps per (sub)transaction level for the table's statistics, which are folded
/// into the session's totals when the transaction ends (and dropped with a rolled-back
/// savepoint's rows). `pg_stat_get_xact_tuples_*` would also count earlier transactions whose
/// statistics have not been sent yet.
fn xact_rows(oid: pg_sys::Oid) -> i64 {
    // SAFETY: a relation cache lookup (the table is open in this transaction, or a fresh entry
    // is built), read and closed; the statistics entries live in backend memory.
    unsafe {
        let r = pg_sys::RelationIdGetRelation(oid);
        if r.is_null() {
            return 0;
        }
        let mut n = 0;
        let info = (*r).pgstat_info;
        if !info.is_null() {
            let mut t = (*info).trans;
            while !t.is_null() {
                n += (*t).tuples_inserted + (*t).tuples_updated + (*t).tuples_deleted;
                t = (*t).upper;
            }
        }
        pg_sys::RelationClose(r);
        n
    }
}

/// What the running transaction has done, as `check()` called inside it needs to know.
pub struct Running {
    /// The command tag of its first DDL statement.
    pub ddl: Option<String>,
    /// The strong locks its DDL holds.
    pub held: Vec<HeldLock>,
    /// The rows it has changed, per table.
    pub rows: Vec<(String, i64)>,
    /// `schema-and-data` was allowed or warned about in it.
    pub mixed_accepted: bool,
}

pub fn running_transaction() -> Running {
    let (ddl, held, mixed_accepted) = XACT.with_borrow(|x| {
        (
            x.ddl.as_ref().map(|(t, _)| t.clone()),
            x.held.iter().map(|(h, _, _)| h.clone()).collect::<Vec<_>>(),
            x.mixed_accepted,
        )
    });
    Running {
        ddl,
        held,
        rows: rows_changed(&CatalogFacts::new(false), false),
        mixed_accepted,
    }
}

/// A migration is open in this session, or this transaction has run DDL: where the utility hook
/// judges TRUNCATE and LOCK.
pub fn in_migration_or_ddl_transaction() -> bool {
    DDL_RAN.get() || migration_open()
}

/// A DDL statement started in this transaction (called by the guard once it is judged).
pub fn ddl_ran(tag: &str) {
    if DDL_RAN.get() {
        return;
    }
    // SAFETY: inside a transaction.
    let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
    XACT.with_borrow_mut(|x| x.ddl = Some((tag.to_owned(), sub)));
    DDL_RAN.set(true);
}

/// The guard let a DDL statement through that takes these strong locks on tables other
/// sessions use.
pub fn strong_locks_taken(locks: &[(LockMode, crate::facts::Rel)], tag: &str, text: &str) {
    if locks.is_empty() {
        return;
    }
    // SAFETY: inside a transaction.
    let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
    XACT.with_borrow_mut(|x| {
        for (mode, rel) in locks {
            let oid = pg_sys::Oid::from(rel.oid);
            if x.held.iter().any(|(h, o, _)| *o == oid && h.mode >= *mode) {
                continue;
            }
            let relation = format!("{} {}", rel.kind.noun(), rel.display);
            x.held.push((HeldLock::new(*mode, relation, tag, text), oid, sub));
        }
        HOLDING.set(!x.held.is_empty() && !x.mixed_accepted);
    });
}

/// A DDL statement about to take `locks`: `schema-and-data` if the transaction has already
/// changed more rows than allowed and one of them is on a table that holds data. A transaction
/// without a transaction id has written nothing (every DDL statement in autocommit): nothing to
/// count.
pub fn before_ddl(
    tag: &str,
    locks: &[(LockMode, crate::facts::Rel)],
    facts: &CatalogFacts,
    out: &mut Vec<crate::rules::Finding>,
) {
    let max = gucs::max_rows();
    // SAFETY: a read of the transaction state.
    let has_xid = unsafe { pg_sys::GetTopTransactionIdIfAny() } != pg_sys::InvalidTransactionId;
    if locks.is_empty() || max <= 0 || !has_xid || XACT.with_borrow(|x| x.mixed_accepted) {
        return;
    }
    let changed = rows_changed(facts, true);
    if changed.iter().map(|(_, n)| n).sum::<i64>() <= max {
        return;
    }
    if let Some((mode, rel)) = crate::locks::strongest_populated(locks, facts) {
        let relation = format!("{} {}", rel.kind.noun(), rel.display);
        schema_and_data::before_ddl(tag, mode, &relation, &changed, max, out);
    }
}

/// `schema-and-data` was allowed or warned about: the transaction is known to mix schema and
/// data, and is not told again.
pub fn mixed_accepted() {
    // SAFETY: inside a transaction.
    let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
    XACT.with_borrow_mut(|x| {
        if !x.mixed_accepted {
            x.mixed_accepted = true;
            x.mixed_accepted_in = sub;
        }
    });
    HOLDING.set(false);
}

fn reset() {
    XACT.with_borrow_mut(|x| *x = Xact::default());
    WRITTEN.with(|w| {
        // SAFETY: this backend's own buffer, not borrowed anywhere else.
        let w = unsafe { &mut *w.as_ptr() };
        w.len = 0;
        w.overflow = false;
    });
    DDL_RAN.set(false);
    HOLDING.set(false);
    JUDGING.set(false);
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut core::ffi::c_void) {
    use pg_sys::XactEvent::*;
    if matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PREPARE
            | XACT_EVENT_PARALLEL_ABORT
            | XACT_EVENT_PARALLEL_COMMIT
    ) {
        reset();
    }
    if matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT) {
        crate::usage::transaction_ended();
    }
}

/// A rolled-back savepoint releases the locks its DDL took and undoes that DDL.
#[pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut core::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_ABORT_SUB => {
            JUDGING.set(false);
            XACT.with_borrow_mut(|x| {
                x.held.retain(|(_, _, s)| *s < my_subid);
                if x.ddl.as_ref().is_some_and(|(_, s)| *s >= my_subid) {
                    x.ddl = None;
                }
                if x.mixed_accepted && x.mixed_accepted_in >= my_subid {
                    x.mixed_accepted = false;
                }
                DDL_RAN.set(x.ddl.is_some());
                HOLDING.set(!x.held.is_empty() && !x.mixed_accepted);
            });
        }
        SUBXACT_EVENT_COMMIT_SUB => XACT.with_borrow_mut(|x| {
            for (_, _, s) in x.held.iter_mut().filter(|(_, _, s)| *s >= my_subid) {
                *s = parent_subid;
            }
            if let Some((_, s)) = x.ddl.as_mut().filter(|(_, s)| *s >= my_subid) {
                *s = parent_subid;
            }
            if x.mixed_accepted && x.mixed_accepted_in >= my_subid {
                x.mixed_accepted_in = parent_subid;
            }
        }),
        _ => {}
    }
}
