//! Usage tracking: for every table, view and column, when a query last read it and last wrote
//! it, how many queries did, and the last few (role, application) pairs that did. Only with
//! `shared_preload_libraries = 'migrate_guard'` (the counts live in shared memory).
//!
//! The source is the executor hook (`dml.rs` calls [`note`] at every `ExecutorStart`, so a
//! prepared statement counts at every execution): the range table's permission entries, the
//! columns each query selects, inserts and updates (`RangeTblEntry` before 16,
//! `RTEPermissionInfo` from 16 on, see `server.rs`). A whole-row reference reads every column.
//! System catalogs, the extension's own statements (its backfill batches, its judging queries)
//! and EXPLAIN without ANALYZE do not count, and neither do databases without the extension.
//!
//! Shared memory holds a fixed table of `migrate_guard.usage_max_entries` entries (open
//! addressing, entries never move and are only removed all at once by `reset_usage()`). The hot
//! path takes the table's lock in shared mode and updates an entry with atomic operations: no
//! backend waits for another, and what a query did is visible as soon as it starts. A new
//! (relation, column) when the table is full is not recorded: it is counted, and the evidence
//! for anything without an entry is then "not available", never "unused".
//!
//! Survives a clean shutdown: the postmaster writes `pg_stat/migrate_guard_usage.stat` at
//! shutdown and reads it (then removes it) at start. A marker file in the data directory says
//! that the server is running; found at start without a saved file, it means the server did not
//! shut down cleanly, and tracking starts again (the status says so).

use core::ffi::{CStr, c_char, c_int};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

const SHMEM_NAME: &CStr = c"migrate_guard usage";
const TRANCHE: &CStr = c"migrate_guard_usage";
const DUMP_FILE: &str = "pg_stat/migrate_guard_usage.stat";
const RUNNING_FILE: &str = "migrate_guard_usage.running";
const DUMP_MAGIC: u32 = 0x4d47_5532; // "MGU2"
/// Distinct (role, application_name) pairs remembered; more are shown as "others".
pub const MAX_USERS: usize = 1024;
/// Recent users kept per entry (most recent first).
pub const RECENT_USERS: usize = 4;
const APP_LEN: usize = 64;

const EMPTY: u32 = 0;
const CLAIMED: u32 = 1;
const READY: u32 = 2;

/// How the current tracking period began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// No saved counts and no sign of an unclean shutdown: tracking is new.
    Started = 0,
    /// The counts saved at the last clean shutdown were read back.
    Restored = 1,
    /// The server restarted after a crash, or was not shut down cleanly: counts were lost.
    AfterCrash = 2,
    /// A superuser called `migrate_guard.reset_usage()`.
    Reset = 3,
}

impl Origin {
    fn from_u32(v: u32) -> Origin {
        match v {
            1 => Origin::Restored,
            2 => Origin::AfterCrash,
            3 => Origin::Reset,
            _ => Origin::Started,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Origin::Started => "started with the server (no saved counts)",
            Origin::Restored => "restored from the last clean shutdown",
            Origin::AfterCrash => {
                "started again: the server crashed or did not shut down cleanly, earlier counts are lost"
            }
            Origin::Reset => "reset by migrate_guard.reset_usage()",
        }
    }
}

#[repr(C)]
struct Header {
    slots: u32,
    max_entries: u32,
    used: AtomicU32,
    users_used: AtomicU32,
    refused: AtomicU64,
    full_since: AtomicI64,
    tracked_since: AtomicI64,
    origin: AtomicU32,
    /// Bumped by reset, which empties the users table: a backend's cached user id is then stale.
    users_gen: AtomicU32,
}

#[repr(C)]
struct Slot {
    state: AtomicU32,
    attnum: AtomicU32,
    db: AtomicU32,
    rel: AtomicU32,
    reads: AtomicU64,
    writes: AtomicU64,
    last_read: AtomicI64,
    last_write: AtomicI64,
    /// Up to four user ids (index + 1, 16 bits each; 0 is none), the most recent in the low bits.
    users: AtomicU64,
}

#[repr(C)]
struct User {
    state: AtomicU32,
    role: AtomicU32,
    app: core::cell::UnsafeCell<[u8; APP_LEN]>,
}

struct Shared {
    header: *mut Header,
    slots: *mut Slot,
    users: *mut User,
    lock: *mut pg_sys::LWLock,
}

/// Set in the postmaster at start-up (inherited by every backend); null without preloading.
static mut SHARED: Shared = Shared {
    header: std::ptr::null_mut(),
    slots: std::ptr::null_mut(),
    users: std::ptr::null_mut(),
    lock: std::ptr::null_mut(),
};
static mut PREV_SHMEM_STARTUP: pg_sys::shmem_startup_hook_type = None;
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
static mut PREV_SHMEM_REQUEST: pg_sys::shmem_request_hook_type = None;
/// The library was loaded through shared_preload_libraries.
static mut PRELOADED: bool = false;
/// The postmaster initialised the segment before: this start-up follows a crash.
static mut STARTED_BEFORE: bool = false;

/// Per-process state of the hot path. A backend is one thread, and thread-locals of a loaded
/// library cost a call each time they are read; these are plain statics behind [`Local`].
struct Local<T>(core::cell::Cell<T>);
// SAFETY: every PostgreSQL process that runs this code is single-threaded.
unsafe impl<T> Sync for Local<T> {}
impl<T: Copy> Local<T> {
    fn get(&self) -> T {
        self.0.get()
    }
    fn set(&self, v: T) {
        self.0.set(v)
    }
}
/// Depth of the extension's own work (backfill batches): not application use.
static INTERNAL: Local<u32> = Local(core::cell::Cell::new(0));
/// Whether this database has the extension (None: to be looked up again).
static INSTALLED: Local<Option<bool>> = Local(core::cell::Cell::new(None));

fn slot_count(max_entries: u32) -> u32 {
    max_entries + max_entries / 4 + 16
}

fn segment_size(max_entries: u32) -> usize {
    let header = core::mem::size_of::<Header>().next_multiple_of(64);
    header + slot_count(max_entries) as usize * core::mem::size_of::<Slot>() + MAX_USERS * core::mem::size_of::<User>()
}

/// The shared segment's size for `entries` tracked (relation, column) pairs, in bytes.
pub fn shared_size(entries: u32) -> usize {
    segment_size(entries)
}

fn max_entries() -> u32 {
    crate::gucs::USAGE_MAX_ENTRIES.get().max(100) as u32
}

/// Called from `_PG_init`: asks for the shared segment when the library is preloaded.
pub fn register() {
    // SAFETY: process globals, read and set while the library loads.
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        PRELOADED = true;
        if !crate::gucs::TRACK_USAGE.get() {
            return;
        }
        #[cfg(any(feature = "pg13", feature = "pg14"))]
        request();
        #[cfg(not(any(feature = "pg13", feature = "pg14")))]
        {
            PREV_SHMEM_REQUEST = pg_sys::shmem_request_hook;
            pg_sys::shmem_request_hook = Some(shmem_request);
        }
        PREV_SHMEM_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(shmem_startup);
    }
}

unsafe fn request() {
    unsafe {
        pg_sys::RequestAddinShmemSpace(segment_size(max_entries()));
        pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), 1);
    }
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
unsafe extern "C-unwind" fn shmem_request() {
    unsafe {
        if let Some(prev) = PREV_SHMEM_REQUEST {
            prev();
        }
        request();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    unsafe {
        if let Some(prev) = PREV_SHMEM_STARTUP {
            prev();
        }
        let max = max_entries();
        let size = segment_size(max);
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock; // AddinShmemInitLock
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let base = pg_sys::ShmemInitStruct(SHMEM_NAME.as_ptr(), size, &mut found) as *mut u8;
        let header_size = core::mem::size_of::<Header>().next_multiple_of(64);
        let slots = slot_count(max);
        let shared = Shared {
            header: base as *mut Header,
            slots: base.add(header_size) as *mut Slot,
            users: base.add(header_size + slots as usize * core::mem::size_of::<Slot>()) as *mut User,
            lock: &mut (*pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr())).lock,
        };
        if !found {
            core::ptr::write_bytes(base, 0, size);
            let h = &mut *shared.header;
            h.slots = slots;
            h.max_entries = max;
        }
        SHARED = shared;
        pg_sys::LWLockRelease(init_lock);
        if !pg_sys::IsUnderPostmaster {
            let now = pg_sys::GetCurrentTimestamp();
            let origin = if STARTED_BEFORE {
                Origin::AfterCrash
            } else if restore(now) {
                Origin::Restored
            } else if std::path::Path::new(RUNNING_FILE).exists() {
                Origin::AfterCrash
            } else {
                Origin::Started
            };
            let h = &*SHARED.header;
            if origin != Origin::Restored {
                h.tracked_since.store(now, Ordering::Relaxed);
            }
            h.origin.store(origin as u32, Ordering::Relaxed);
            if origin == Origin::AfterCrash {
                pgrx::log!("migrate_guard: usage tracking {}", origin.describe());
            }
            STARTED_BEFORE = true;
            let _ = std::fs::write(RUNNING_FILE, b"migrate_guard: usage tracking is running\n");
            pg_sys::on_shmem_exit(Some(shmem_shutdown), pg_sys::Datum::from(0));
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_shutdown(code: c_int, _arg: pg_sys::Datum) {
    // A crash (code != 0): nothing is saved, the next start says so.
    if code != 0 {
        return;
    }
    // SAFETY: the postmaster at shutdown, after every backend has exited.
    unsafe {
        if SHARED.header.is_null() {
            return;
        }
        match dump() {
            Ok(()) => {
                let _ = std::fs::remove_file(RUNNING_FILE);
            }
            Err(e) => pgrx::log!("migrate_guard: could not save usage counts to {DUMP_FILE}: {e}"),
        }
    }
}

/// Why there is no tracking in this server.
pub fn not_tracking() -> &'static str {
    // SAFETY: set once in the postmaster, inherited by every backend.
    if unsafe { PRELOADED } {
        "migrate_guard.track_usage is off"
    } else {
        "usage is tracked only when migrate_guard is in shared_preload_libraries"
    }
}

/// The evidence about relation `relid` (a table, view or index) or one of its columns, as of now.
pub fn evidence(relid: u32, column: Option<&str>) -> crate::evidence::Usage {
    use crate::evidence::{Seen, Tracking, Usage};
    let tracking = match status() {
        // Not tracking (the common case without preloading): nothing to look up, no catalog
        // query on the DDL path.
        None => {
            let off = Tracking::Off(not_tracking().to_owned());
            return Usage::judge(&off, None, 0, crate::gucs::USAGE_WINDOW_S.get() as i64);
        }
        Some(s) => Tracking::On {
            since: s.tracked_since,
            began: s.origin.describe().to_owned(),
            full: s.full_since.is_some(),
        },
    };
    // The evidence names roles and applications: only those who may read the usage view's row
    // of the relation see it (check() is anyone's; the live guard judges DDL of owners).
    if !sees_all() && !crate::server::compat::owns_relation(pg_sys::Oid::from(relid)) {
        return Usage::unavailable("only the owner, superusers and members of pg_read_all_stats see its usage");
    }
    let attnum = |rel: u32| -> Option<u32> {
        match column {
            None => Some(0),
            Some(c) => {
                let name = std::ffi::CString::new(c).ok()?;
                // SAFETY: a syscache lookup inside a transaction.
                let n = unsafe { pg_sys::get_attnum(pg_sys::Oid::from(rel), name.as_ptr()) };
                (n > 0).then_some(n as u32)
            }
        }
    };
    let Some(att) = attnum(relid) else {
        return Usage::unavailable("no such column");
    };
    // A query through a parent counts for the parent, one on a partition (or inheritance child)
    // for the partition, and a drop or rename on the parent reaches them all: the evidence is
    // that of the relation and every descendant (a partitioned index's too), the latest use
    // winning.
    let mut seen: Option<Seen> = None;
    let mut merge = |e: Entry| {
        let s = seen.get_or_insert_with(|| Seen {
            last_read: None,
            last_write: None,
            reads: 0,
            writes: 0,
            users: Vec::new(),
        });
        s.last_read = s.last_read.max(e.last_read);
        s.last_write = s.last_write.max(e.last_write);
        s.reads = s.reads.saturating_add(e.reads);
        s.writes = s.writes.saturating_add(e.writes);
        for u in e.users.iter().map(|(r, a)| user_label(*r, a)) {
            if s.users.len() < 8 && !s.users.contains(&u) {
                s.users.push(u);
            }
        }
    };
    if let Some(e) = lookup(relid, att) {
        merge(e);
    }
    let descendants = crate::catalog::oid_text_rows(
        "WITH RECURSIVE d(oid) AS (
             SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) $1
             UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent OPERATOR(pg_catalog.=) d.oid)
         SELECT d.oid, ''::pg_catalog.text FROM d LIMIT 10000",
        &[pg_sys::Oid::from(relid).into()],
    );
    for (child, _) in descendants {
        if let Some(e) = attnum(child.to_u32()).and_then(|a| lookup(child.to_u32(), a)) {
            merge(e);
        }
    }
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    Usage::judge(&tracking, seen, now, crate::gucs::USAGE_WINDOW_S.get() as i64)
}

/// Whether tracking is on in this process (preloaded with `migrate_guard.track_usage` on).
pub fn active() -> bool {
    // SAFETY: set once in the postmaster before any backend starts.
    unsafe { !SHARED.header.is_null() }
}

/// The extension's own work: what runs in `f` is not application use.
pub fn internal<T>(f: impl FnOnce() -> T) -> T {
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            INTERNAL.set(INTERNAL.get().saturating_sub(1));
        }
    }
    INTERNAL.set(INTERNAL.get() + 1);
    let _d = Depth;
    f()
}

/// At transaction end: an error may have skipped a drop of [`internal`]'s guard.
pub fn transaction_ended() {
    INTERNAL.set(0);
}

/// A schema was created or dropped: whether the extension is installed is looked up again.
#[pg_guard]
unsafe extern "C-unwind" fn namespace_changed(_arg: pg_sys::Datum, _cache: c_int, _hash: u32) {
    INSTALLED.set(None);
}

pub fn register_backend_callbacks() {
    // SAFETY: registered once per process, while the library loads.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as c_int,
            Some(namespace_changed),
            pg_sys::Datum::from(0),
        );
    }
}

fn installed() -> bool {
    if let Some(v) = INSTALLED.get() {
        return v;
    }
    // SAFETY: a syscache lookup; the executor runs inside a transaction.
    let v = unsafe { pg_sys::get_namespace_oid(c"migrate_guard".as_ptr(), true) } != pg_sys::InvalidOid;
    INSTALLED.set(Some(v));
    v
}

/// The four server functions of the hot path, called directly rather than through pgrx's
/// wrappers: each wrapper sets up an error boundary (a `sigsetjmp`), which costs more than the
/// rest of [`note`] for a one-table query. None of them can raise an ERROR where [`note`] calls
/// them: `GetSessionUserId` reads a variable, `GetCurrentTimestamp` the clock; `LWLockAcquire` fails only when a process holds 200
/// LWLocks (the executor starts a query holding none) and `LWLockRelease` only for a lock that is
/// not held (it is released right after it was taken, with nothing in between that can fail).
mod direct {
    use pgrx::pg_sys;
    unsafe extern "C" {
        pub fn GetSessionUserId() -> pg_sys::Oid;
        pub fn GetCurrentTimestamp() -> pg_sys::TimestampTz;
        pub fn LWLockAcquire(lock: *mut pg_sys::LWLock, mode: pg_sys::LWLockMode::Type) -> bool;
        pub fn LWLockRelease(lock: *mut pg_sys::LWLock);
    }
}

/// The executor is about to run `query_desc`: count what it reads and writes.
///
/// # Safety
/// A valid QueryDesc with its PlannedStmt, inside a transaction.
pub unsafe fn note(query_desc: *mut pg_sys::QueryDesc, eflags: c_int) {
    unsafe {
        if SHARED.header.is_null()
            || INTERNAL.get() != 0
            || eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as c_int != 0
            || (*query_desc).plannedstmt.is_null()
            || !installed()
        {
            return;
        }
        // The time of this query's start, not of the top-level statement's: a procedure that
        // loops and commits, or a long session of a background worker, uses what it uses now.
        let now = direct::GetCurrentTimestamp();
        let me = my_user_id();
        let sh = &*core::ptr::addr_of!(SHARED);
        direct::LWLockAcquire(sh.lock, pg_sys::LWLockMode::LW_SHARED);
        crate::server::compat::for_each_permission(
            &*(*query_desc).plannedstmt,
            |relid, perms, selected, inserted, updated| {
                let rel = relid.to_u32();
                if rel < pg_sys::FirstNormalObjectId {
                    return;
                }
                let reads = perms & pg_sys::ACL_SELECT as u64 != 0;
                let writes = perms & (pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE | pg_sys::ACL_DELETE) as u64 != 0;
                if reads {
                    touch(sh, rel, 0, false, now, me);
                }
                if writes {
                    touch(sh, rel, 0, true, now, me);
                }
                each_column(relid, selected, |att| touch(sh, rel, att, false, now, me));
                each_column(relid, inserted, |att| touch(sh, rel, att, true, now, me));
                each_column(relid, updated, |att| touch(sh, rel, att, true, now, me));
            },
        );
        let ps = &*(*query_desc).plannedstmt;
        index_scans(ps.planTree, 0, &mut |index| touch(sh, index, 0, false, now, me));
        for sub in pgrx::PgList::<pg_sys::Plan>::from_pg(ps.subplans).iter_ptr() {
            index_scans(sub, 0, &mut |index| touch(sh, index, 0, false, now, me));
        }
        direct::LWLockRelease(sh.lock);
    }
}

/// The indexes a plan scans (index scans, index-only scans, bitmap index scans).
unsafe fn index_scans(plan: *mut pg_sys::Plan, depth: u32, f: &mut dyn FnMut(u32)) {
    use pg_sys::NodeTag::*;
    unsafe {
        if plan.is_null() || depth > 200 {
            return;
        }
        let p = &*plan;
        let list = |l: *mut pg_sys::List, f: &mut dyn FnMut(u32)| {
            for child in pgrx::PgList::<pg_sys::Plan>::from_pg(l).iter_ptr() {
                index_scans(child, depth + 1, f);
            }
        };
        match p.type_ {
            T_IndexScan => f((*(plan as *mut pg_sys::IndexScan)).indexid.to_u32()),
            T_IndexOnlyScan => f((*(plan as *mut pg_sys::IndexOnlyScan)).indexid.to_u32()),
            T_BitmapIndexScan => f((*(plan as *mut pg_sys::BitmapIndexScan)).indexid.to_u32()),
            T_Append => list((*(plan as *mut pg_sys::Append)).appendplans, f),
            T_MergeAppend => list((*(plan as *mut pg_sys::MergeAppend)).mergeplans, f),
            T_BitmapAnd => list((*(plan as *mut pg_sys::BitmapAnd)).bitmapplans, f),
            T_BitmapOr => list((*(plan as *mut pg_sys::BitmapOr)).bitmapplans, f),
            T_SubqueryScan => index_scans((*(plan as *mut pg_sys::SubqueryScan)).subplan, depth + 1, f),
            T_CustomScan => list((*(plan as *mut pg_sys::CustomScan)).custom_plans, f),
            #[cfg(feature = "pg13")]
            T_ModifyTable => list((*(plan as *mut pg_sys::ModifyTable)).plans, f),
            _ => {}
        }
        index_scans(p.lefttree, depth + 1, f);
        index_scans(p.righttree, depth + 1, f);
    }
}

/// The user columns of a column set (offset by FirstLowInvalidHeapAttributeNumber); a
/// whole-row reference stands for every column.
unsafe fn each_column(relid: pg_sys::Oid, set: *mut pg_sys::Bitmapset, mut f: impl FnMut(u32)) {
    unsafe {
        if set.is_null() {
            return;
        }
        // The words read here, not through bms_next_member: one call across the FFI boundary
        // per member costs more than the rest of the hot path.
        let bits = core::mem::size_of::<pg_sys::bitmapword>() * 8;
        let words = (*set).words.as_slice((*set).nwords.max(0) as usize);
        let members = words.iter().enumerate().flat_map(|(wi, w)| {
            let mut w = *w as u64;
            core::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some((wi * bits + b) as i32)
            })
        });
        for m in members {
            let att = m + pg_sys::FirstLowInvalidHeapAttributeNumber;
            if att > 0 {
                f(att as u32);
            } else if att == 0 {
                // The executor holds a lock on the relation: its descriptor is at hand.
                let r = pg_sys::RelationIdGetRelation(relid);
                if r.is_null() {
                    continue;
                }
                let natts = (*(*r).rd_att).natts;
                pg_sys::RelationClose(r);
                for a in 1..=natts.max(0) {
                    f(a as u32);
                }
            }
        }
    }
}

/// This session's last user id, with the role and application name it was found for (a backend
/// is one thread; only [`my_user_id`] touches it).
struct Me {
    role: u32,
    app: [u8; APP_LEN],
    /// 0 when the users table was full: cached too, so a full table costs one search per
    /// (role, application_name) change, not one per query.
    id: u16,
    generation: u32,
    known: bool,
}
static mut ME: Me = Me {
    role: 0,
    app: [0; APP_LEN],
    id: 0,
    generation: 0,
    known: false,
};

fn hash(db: u32, rel: u32, att: u32) -> u64 {
    let mut h = (db as u64) << 32 | rel as u64;
    h ^= (att as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 29)
}

/// Find the slot of (this database, rel, att), creating it when `create`.
unsafe fn find<'a>(sh: &'a Shared, db: u32, rel: u32, att: u32, create: bool) -> Option<&'a Slot> {
    unsafe {
        let h = &*sh.header;
        let n = h.slots as u64;
        let mut i = hash(db, rel, att) % n;
        for _ in 0..n {
            let s = &*sh.slots.add(i as usize);
            let mut spins = 0u32;
            loop {
                match s.state.load(Ordering::Acquire) {
                    READY => {
                        if s.rel.load(Ordering::Relaxed) == rel
                            && s.attnum.load(Ordering::Relaxed) == att
                            && s.db.load(Ordering::Relaxed) == db
                        {
                            return Some(s);
                        }
                        break;
                    }
                    CLAIMED => {
                        // Another backend is writing this slot's key: a few stores.
                        spins += 1;
                        if spins > 10_000 {
                            return None;
                        }
                        core::hint::spin_loop();
                    }
                    _ => {
                        if !create {
                            return None;
                        }
                        if h.used.fetch_add(1, Ordering::AcqRel) >= h.max_entries {
                            h.used.fetch_sub(1, Ordering::AcqRel);
                            h.refused.fetch_add(1, Ordering::Relaxed);
                            let _ = h.full_since.compare_exchange(
                                0,
                                pg_sys::GetCurrentTimestamp(),
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            );
                            return None;
                        }
                        if s.state
                            .compare_exchange(EMPTY, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                        {
                            s.db.store(db, Ordering::Relaxed);
                            s.rel.store(rel, Ordering::Relaxed);
                            s.attnum.store(att, Ordering::Relaxed);
                            s.reads.store(0, Ordering::Relaxed);
                            s.writes.store(0, Ordering::Relaxed);
                            s.last_read.store(0, Ordering::Relaxed);
                            s.last_write.store(0, Ordering::Relaxed);
                            s.users.store(0, Ordering::Relaxed);
                            s.state.store(READY, Ordering::Release);
                            return Some(s);
                        }
                        h.used.fetch_sub(1, Ordering::AcqRel);
                        // Lost the race for this slot: look at it again.
                    }
                }
            }
            i = (i + 1) % n;
        }
        None
    }
}

unsafe fn touch(sh: &Shared, rel: u32, att: u32, write: bool, now: i64, me: u16) {
    unsafe {
        let Some(s) = find(sh, pg_sys::MyDatabaseId.to_u32(), rel, att, true) else {
            return;
        };
        if write {
            s.writes.fetch_add(1, Ordering::Relaxed);
            s.last_write.fetch_max(now, Ordering::Relaxed);
        } else {
            s.reads.fetch_add(1, Ordering::Relaxed);
            s.last_read.fetch_max(now, Ordering::Relaxed);
        }
        let users = s.users.load(Ordering::Relaxed);
        if me != 0 && (users & 0xffff) as u16 != me {
            let _ = s
                .users
                .compare_exchange(users, push_user(users, me), Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

/// `users` with `me` in front, without its earlier place, keeping four.
fn push_user(users: u64, me: u16) -> u64 {
    let mut out = me as u64;
    let mut n = 1;
    for k in 0..RECENT_USERS {
        let u = ((users >> (16 * k)) & 0xffff) as u16;
        if u != 0 && u != me && n < RECENT_USERS {
            out |= (u as u64) << (16 * n);
            n += 1;
        }
    }
    out
}

fn recent(users: u64) -> impl Iterator<Item = u16> {
    (0..RECENT_USERS)
        .map(move |k| ((users >> (16 * k)) & 0xffff) as u16)
        .filter(|u| *u != 0)
}

fn app_bytes(app: *const c_char) -> [u8; APP_LEN] {
    let mut out = [0u8; APP_LEN];
    if !app.is_null() {
        // SAFETY: application_name is a NUL-terminated GUC string.
        let b = unsafe { CStr::from_ptr(app) }.to_bytes();
        let n = b.len().min(APP_LEN - 1);
        out[..n].copy_from_slice(&b[..n]);
    }
    out
}

fn app_hash(app: &[u8; APP_LEN]) -> u64 {
    app.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// This session's id in the users table (0: the table is full).
unsafe fn my_user_id() -> u16 {
    unsafe {
        let role = direct::GetSessionUserId().to_u32();
        let me = &mut *core::ptr::addr_of_mut!(ME);
        let sh = &*core::ptr::addr_of!(SHARED);
        let generation = (*sh.header).users_gen.load(Ordering::Relaxed);
        if me.known && me.role == role && me.generation == generation {
            // The same application name as last time: compared, not hashed (the common case).
            let now: &[u8] = if pg_sys::application_name.is_null() {
                &[]
            } else {
                CStr::from_ptr(pg_sys::application_name).to_bytes()
            };
            let n = now.len().min(APP_LEN - 1);
            if me.app[..n] == now[..n] && me.app[n] == 0 {
                return me.id;
            }
        }
        let app = app_bytes(pg_sys::application_name);
        let ah = app_hash(&app);
        let mut i = ((role as u64).wrapping_mul(0x9e37_79b9) ^ ah) % MAX_USERS as u64;
        let mut id = 0u16;
        for _ in 0..MAX_USERS {
            let u = &*sh.users.add(i as usize);
            let mut spins = 0;
            let done = loop {
                match u.state.load(Ordering::Acquire) {
                    READY => {
                        break u.role.load(Ordering::Relaxed) == role && *u.app.get() == app;
                    }
                    CLAIMED => {
                        spins += 1;
                        if spins > 10_000 {
                            break false;
                        }
                        core::hint::spin_loop();
                    }
                    _ => {
                        if u.state
                            .compare_exchange(EMPTY, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                        {
                            u.role.store(role, Ordering::Relaxed);
                            *u.app.get() = app;
                            u.state.store(READY, Ordering::Release);
                            (*sh.header).users_used.fetch_add(1, Ordering::Relaxed);
                            break true;
                        }
                    }
                }
            };
            if done {
                id = i as u16 + 1;
                break;
            }
            i = (i + 1) % MAX_USERS as u64;
        }
        *me = Me {
            role,
            app,
            id,
            generation,
            known: true,
        };
        id
    }
}

/// One tracked (relation, column) of the current database.
#[derive(Debug, Clone)]
pub struct Entry {
    pub rel: u32,
    pub attnum: u32,
    pub reads: u64,
    pub writes: u64,
    pub last_read: Option<i64>,
    pub last_write: Option<i64>,
    /// (role oid, application_name), most recent first.
    pub users: Vec<(u32, String)>,
}

unsafe fn user(sh: &Shared, id: u16) -> Option<(u32, String)> {
    if id == 0 || id as usize > MAX_USERS {
        return None;
    }
    unsafe {
        let u = &*sh.users.add(id as usize - 1);
        if u.state.load(Ordering::Acquire) != READY {
            return None;
        }
        let app = &*u.app.get();
        let n = app.iter().position(|b| *b == 0).unwrap_or(APP_LEN);
        Some((
            u.role.load(Ordering::Relaxed),
            String::from_utf8_lossy(&app[..n]).into_owned(),
        ))
    }
}

unsafe fn read_slot(sh: &Shared, s: &Slot) -> Entry {
    unsafe {
        let t = |v: i64| (v != 0).then_some(v);
        Entry {
            rel: s.rel.load(Ordering::Relaxed),
            attnum: s.attnum.load(Ordering::Relaxed),
            reads: s.reads.load(Ordering::Relaxed),
            writes: s.writes.load(Ordering::Relaxed),
            last_read: t(s.last_read.load(Ordering::Relaxed)),
            last_write: t(s.last_write.load(Ordering::Relaxed)),
            users: recent(s.users.load(Ordering::Relaxed))
                .filter_map(|id| user(sh, id))
                .collect(),
        }
    }
}

/// The entry of one relation's column (0: the relation itself) in this database.
pub fn lookup(rel: u32, attnum: u32) -> Option<Entry> {
    if !active() {
        return None;
    }
    // SAFETY: the shared segment exists (active); read under the lock in shared mode.
    unsafe {
        let sh = &*core::ptr::addr_of!(SHARED);
        pg_sys::LWLockAcquire(sh.lock, pg_sys::LWLockMode::LW_SHARED);
        let e = find(sh, pg_sys::MyDatabaseId.to_u32(), rel, attnum, false).map(|s| read_slot(sh, s));
        pg_sys::LWLockRelease(sh.lock);
        e
    }
}

/// Every entry of this database.
pub fn entries() -> Vec<Entry> {
    if !active() {
        return Vec::new();
    }
    // SAFETY: as in lookup.
    unsafe {
        let sh = &*core::ptr::addr_of!(SHARED);
        let db = pg_sys::MyDatabaseId.to_u32();
        pg_sys::LWLockAcquire(sh.lock, pg_sys::LWLockMode::LW_SHARED);
        let mut out = Vec::new();
        for i in 0..(*sh.header).slots as usize {
            let s = &*sh.slots.add(i);
            if s.state.load(Ordering::Acquire) == READY && s.db.load(Ordering::Relaxed) == db {
                out.push(read_slot(sh, s));
            }
        }
        pg_sys::LWLockRelease(sh.lock);
        out
    }
}

/// The state of tracking, as `migrate_guard.usage_status()` shows it.
#[derive(Debug, Clone)]
pub struct Status {
    pub tracked_since: i64,
    pub origin: Origin,
    pub entries: u32,
    pub max_entries: u32,
    pub refused: u64,
    pub full_since: Option<i64>,
}

pub fn status() -> Option<Status> {
    if !active() {
        return None;
    }
    // SAFETY: the header exists (active); its fields are atomics or fixed at start-up.
    let h = unsafe { &*SHARED.header };
    Some(Status {
        tracked_since: h.tracked_since.load(Ordering::Relaxed),
        origin: Origin::from_u32(h.origin.load(Ordering::Relaxed)),
        entries: h.used.load(Ordering::Relaxed),
        max_entries: h.max_entries,
        refused: h.refused.load(Ordering::Relaxed),
        full_since: Some(h.full_since.load(Ordering::Relaxed)).filter(|v| *v != 0),
    })
}

/// Forget every count, in every database; tracking starts again now.
pub fn reset() {
    if !active() {
        return;
    }
    // SAFETY: the lock in exclusive mode keeps every backend out of the table meanwhile.
    unsafe {
        let sh = &*core::ptr::addr_of!(SHARED);
        pg_sys::LWLockAcquire(sh.lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let h = &*sh.header;
        for i in 0..h.slots as usize {
            (*sh.slots.add(i)).state.store(EMPTY, Ordering::Relaxed);
        }
        for i in 0..MAX_USERS {
            (*sh.users.add(i)).state.store(EMPTY, Ordering::Relaxed);
        }
        h.users_used.store(0, Ordering::Relaxed);
        h.users_gen.fetch_add(1, Ordering::Relaxed);
        h.used.store(0, Ordering::Relaxed);
        h.refused.store(0, Ordering::Relaxed);
        h.full_since.store(0, Ordering::Relaxed);
        h.tracked_since.store(pg_sys::GetCurrentTimestamp(), Ordering::Relaxed);
        h.origin.store(Origin::Reset as u32, Ordering::Relaxed);
        pg_sys::LWLockRelease(sh.lock);
    }
}

// ---------------------------------------------------------------- saving across restarts

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

unsafe fn dump() -> std::io::Result<()> {
    unsafe {
        let sh = &*core::ptr::addr_of!(SHARED);
        let h = &*sh.header;
        let mut out = Vec::new();
        put32(&mut out, DUMP_MAGIC);
        put64(&mut out, h.tracked_since.load(Ordering::Relaxed) as u64);
        put64(&mut out, pg_sys::GetCurrentTimestamp() as u64);
        put32(&mut out, h.origin.load(Ordering::Relaxed));
        put32(&mut out, MAX_USERS as u32);
        for i in 0..MAX_USERS {
            let u = &*sh.users.add(i);
            let ready = u.state.load(Ordering::Acquire) == READY;
            put32(&mut out, ready as u32);
            put32(&mut out, u.role.load(Ordering::Relaxed));
            out.extend_from_slice(&*u.app.get());
        }
        let mut n = 0u32;
        let count_at = out.len();
        put32(&mut out, 0);
        for i in 0..h.slots as usize {
            let s = &*sh.slots.add(i);
            if s.state.load(Ordering::Acquire) != READY {
                continue;
            }
            put32(&mut out, s.db.load(Ordering::Relaxed));
            put32(&mut out, s.rel.load(Ordering::Relaxed));
            put32(&mut out, s.attnum.load(Ordering::Relaxed));
            put64(&mut out, s.reads.load(Ordering::Relaxed));
            put64(&mut out, s.writes.load(Ordering::Relaxed));
            put64(&mut out, s.last_read.load(Ordering::Relaxed) as u64);
            put64(&mut out, s.last_write.load(Ordering::Relaxed) as u64);
            put64(&mut out, s.users.load(Ordering::Relaxed));
            n += 1;
        }
        out[count_at..count_at + 4].copy_from_slice(&n.to_le_bytes());
        let tmp = format!("{DUMP_FILE}.tmp");
        std::fs::write(&tmp, &out)?;
        std::fs::rename(&tmp, DUMP_FILE)
    }
}

struct Reader<'a>(&'a [u8]);
impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }
}

/// Read the counts saved at the last clean shutdown (and remove the file: after a crash they
/// would be stale). Whether there were any.
unsafe fn restore(now: i64) -> bool {
    let Ok(bytes) = std::fs::read(DUMP_FILE) else {
        return false;
    };
    let _ = std::fs::remove_file(DUMP_FILE);
    let ok = unsafe { load(&bytes, now) };
    if ok.is_none() {
        pgrx::log!("migrate_guard: {DUMP_FILE} is not a usage file of this version: ignored");
        // SAFETY: the postmaster, before any backend: nothing else uses the segment.
        unsafe {
            let sh = &*core::ptr::addr_of!(SHARED);
            let h = &*sh.header;
            for i in 0..h.slots as usize {
                (*sh.slots.add(i)).state.store(EMPTY, Ordering::Relaxed);
            }
            for i in 0..MAX_USERS {
                (*sh.users.add(i)).state.store(EMPTY, Ordering::Relaxed);
            }
            h.used.store(0, Ordering::Relaxed);
            h.users_used.store(0, Ordering::Relaxed);
        }
        return false;
    }
    true
}

/// The saved counts into the (empty) segment. The time the server was down is time nobody could
/// use anything, not evidence that nothing is used: every time in the file moves forward by it,
/// so that the window counts only time the server ran (a column last used an hour before a
/// two-day stop counts as used an hour ago). A file with times in the future, or user ids
/// outside the users table, is not a file this server wrote: it is ignored.
unsafe fn load(bytes: &[u8], now: i64) -> Option<()> {
    unsafe {
        let sh = &*core::ptr::addr_of!(SHARED);
        let h = &*sh.header;
        let mut r = Reader(bytes);
        if r.u32()? != DUMP_MAGIC {
            return None;
        }
        let since = r.u64()? as i64;
        let dumped_at = r.u64()? as i64;
        let _origin = r.u32()?;
        if dumped_at > now || since > dumped_at {
            return None;
        }
        let down = now - dumped_at;
        let shift = |t: i64| if t == 0 { 0 } else { t.saturating_add(down).min(now) };
        if r.u32()? as usize != MAX_USERS {
            return None;
        }
        for i in 0..MAX_USERS {
            let ready = r.u32()?;
            let role = r.u32()?;
            let app: [u8; APP_LEN] = r.take(APP_LEN)?.try_into().ok()?;
            if ready == 1 {
                let u = &*sh.users.add(i);
                u.role.store(role, Ordering::Relaxed);
                *u.app.get() = app;
                u.state.store(READY, Ordering::Release);
                h.users_used.fetch_add(1, Ordering::Relaxed);
            }
        }
        let n = r.u32()?;
        for _ in 0..n {
            let (db, rel, att) = (r.u32()?, r.u32()?, r.u32()?);
            let (reads, writes, lr, lw, users) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
            if (lr as i64) > dumped_at || (lw as i64) > dumped_at || recent(users).any(|u| u as usize > MAX_USERS) {
                return None;
            }
            let (lr, lw) = (shift(lr as i64), shift(lw as i64));
            let Some(s) = find(sh, db, rel, att, true) else {
                continue;
            };
            s.reads.store(reads, Ordering::Relaxed);
            s.writes.store(writes, Ordering::Relaxed);
            s.last_read.store(lr, Ordering::Relaxed);
            s.last_write.store(lw, Ordering::Relaxed);
            s.users.store(users, Ordering::Relaxed);
        }
        h.tracked_since.store(shift(since), Ordering::Relaxed);
        Some(())
    }
}

// ---------------------------------------------------------------- SQL functions

pgrx::extension_sql_file!(
    "../sql/objects/usage.sql",
    name = "usage_objects",
    requires = ["schema", usage_rows, usage_status, reset_usage]
);

/// Whether the current role may see every relation's usage (superuser or pg_read_all_stats).
fn sees_all() -> bool {
    // SAFETY: role lookups inside a transaction.
    unsafe {
        if pg_sys::superuser() {
            return true;
        }
        // Looked up by name: the constant for its oid is not in every version's headers.
        let role = pg_sys::get_role_oid(c"pg_read_all_stats".as_ptr(), true);
        role != pg_sys::InvalidOid && pg_sys::has_privs_of_role(pg_sys::GetUserId(), role)
    }
}

fn timestamp(v: Option<i64>) -> Option<pgrx::datum::TimestampWithTimeZone> {
    // SAFETY: a TimestampTz from GetCurrentTimestamp.
    v.and_then(|t| unsafe { pgrx::datum::TimestampWithTimeZone::from_datum(pg_sys::Datum::from(t), false) })
}

pub fn user_label(role: u32, app: &str) -> String {
    // SAFETY: a role lookup that tolerates a dropped role.
    let name = unsafe {
        let p = pg_sys::GetUserNameFromId(pg_sys::Oid::from(role), true);
        if p.is_null() {
            format!("role {role}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    if app.is_empty() {
        name
    } else {
        format!("{name} ({app})")
    }
}

/// The rows of `migrate_guard.usage`: this database's entries the caller may see (every one for
/// superusers and members of pg_read_all_stats, else those of relations the caller owns).
#[pg_extern(sql = false)]
fn usage_rows() -> TableIterator<
    'static,
    (
        name!(relid, pg_sys::Oid),
        name!(attnum, i16),
        name!(last_read, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(last_write, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(reads, i64),
        name!(writes, i64),
        name!(recent_users, Vec<String>),
    ),
> {
    let all = sees_all();
    let rows: Vec<_> = entries()
        .into_iter()
        .filter(|e| all || crate::server::compat::owns_relation(pg_sys::Oid::from(e.rel)))
        .map(|e| {
            (
                pg_sys::Oid::from(e.rel),
                e.attnum as i16,
                timestamp(e.last_read),
                timestamp(e.last_write),
                e.reads.min(i64::MAX as u64) as i64,
                e.writes.min(i64::MAX as u64) as i64,
                e.users.iter().map(|(r, a)| user_label(*r, a)).collect(),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Whether usage is tracked, since when and how it began, and how full the table is.
#[pg_extern(sql = false)]
fn usage_status() -> TableIterator<
    'static,
    (
        name!(tracking, bool),
        name!(tracked_since, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(began, String),
        name!(entries, i64),
        name!(max_entries, i64),
        name!(refused, i64),
        name!(full_since, Option<pgrx::datum::TimestampWithTimeZone>),
    ),
> {
    let row = match status() {
        Some(s) => (
            true,
            timestamp(Some(s.tracked_since)),
            s.origin.describe().to_owned(),
            s.entries as i64,
            s.max_entries as i64,
            s.refused.min(i64::MAX as u64) as i64,
            timestamp(s.full_since),
        ),
        None => (false, None, not_tracking().to_owned(), 0, 0, 0, None),
    };
    TableIterator::new(vec![row])
}

/// Forget every count (every database); superusers only.
#[pg_extern(sql = false)]
fn reset_usage() -> bool {
    // SAFETY: a role check inside a transaction.
    if !unsafe { pg_sys::superuser() } {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "migrate_guard.reset_usage: only superusers can reset usage tracking"
        );
    }
    if !active() {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "migrate_guard.reset_usage: usage is not tracked",
            "migrate_guard is not in shared_preload_libraries."
        );
    }
    reset();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_users_keep_four_most_recent_first_without_repeats() {
        let mut u = 0;
        for id in [1u16, 2, 3, 2, 4, 5] {
            u = push_user(u, id);
        }
        assert_eq!(recent(u).collect::<Vec<_>>(), vec![5, 4, 2, 3]);
        assert_eq!(recent(push_user(u, 3)).collect::<Vec<_>>(), vec![3, 5, 4, 2]);
    }

    #[test]
    fn segment_for_ten_thousand_tables_of_twenty_columns() {
        // 10,000 tables × (20 columns + the table itself).
        let size = shared_size(210_000);
        assert!(size < 16 * 1024 * 1024, "{size}");
        assert!(size > 210_000 * core::mem::size_of::<Slot>());
    }
}
