//! Batched backfills: `CALL migrate_guard.backfill(table, set_clause, where_clause, …)`.
//!
//! The procedure itself is PL/pgSQL (`sql/objects/backfill.sql`): PostgreSQL lets a procedure
//! commit only from a non-atomic context, which a PL/pgSQL procedure called with a top-level
//! CALL is, and it runs with the caller's privileges. This module gives it what is worth
//! testing without a server: the checks of the clauses, the SQL each batch runs, and the
//! progress line; plus the few facts only C can read.

pub mod clause;
pub mod plan;
pub mod progress;

use crate::facts::RelKind;
use crate::sqltext::quote_ident;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use plan::{Backfill, KeyColumn, Walk};

pgrx::extension_sql_file!(
    "../../sql/objects/backfill.sql",
    name = "backfill_objects",
    requires = [
        "migration_functions",
        backfill_prepare,
        backfill_current_xid,
        backfill_progress,
        backfill_duration,
        backfill_check_call,
        backfill_tids
    ]
);

fn fail(code: PgSqlErrorCode, message: String, hint: Option<&str>) -> ! {
    let mut r = ErrorReport::new(code, message, "migrate_guard.backfill");
    if let Some(h) = hint {
        r = r.set_hint(h);
    }
    r.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Refuses a call where the procedure could not commit between batches: inside a transaction
/// block (BEGIN … CALL, or several statements sent as one string).
#[pg_extern(schema = "migrate_guard", name = "_backfill_check_call", volatile, parallel_unsafe)]
fn backfill_check_call() {
    // SAFETY: reads the transaction state.
    if unsafe { pg_sys::IsTransactionBlock() } {
        fail(
            PgSqlErrorCode::ERRCODE_ACTIVE_SQL_TRANSACTION,
            "migrate_guard.backfill cannot run inside a transaction block".into(),
            Some(
                "It commits after every batch: CALL it on its own, outside BEGIN … COMMIT (with psql -1, put it in a file of its own).",
            ),
        );
    }
}

/// Every TID of the pages `[lo, hi)` (the block numbers of `lo` and `hi`; their offsets are
/// ignored): a page walk's batch on PostgreSQL 13, which has no TID range scan (a TID list is a
/// TID scan there; a ctid range would read the whole table for each batch). Each page gets as
/// many offsets as a heap page can hold line pointers (`MaxHeapTuplesPerPage`). Built natively:
/// the SQL version it replaces took 50 ms per batch. Stable rather than immutable, so that plans
/// (`backfill_plan()`) show the call, not a list of tens of thousands of TIDs.
#[pg_extern(schema = "migrate_guard", name = "_backfill_tids", stable, strict, parallel_safe)]
fn backfill_tids(lo: pg_sys::ItemPointerData, hi: pg_sys::ItemPointerData) -> Vec<pg_sys::ItemPointerData> {
    let block = |t: &pg_sys::ItemPointerData| (u32::from(t.ip_blkid.bi_hi) << 16) | u32::from(t.ip_blkid.bi_lo);
    let (first, end) = (block(&lo), block(&hi));
    let per_page = max_heap_tuples_per_page();
    let mut tids = Vec::with_capacity(end.saturating_sub(first) as usize * usize::from(per_page));
    for b in first..end {
        for offset in 1..=per_page {
            let mut t = pg_sys::ItemPointerData::default();
            t.ip_blkid.bi_hi = (b >> 16) as u16;
            t.ip_blkid.bi_lo = (b & 0xffff) as u16;
            t.ip_posid = offset;
            tids.push(t);
        }
    }
    tids
}

/// PostgreSQL's `MaxHeapTuplesPerPage`: (block size - page header) / (aligned tuple header + line
/// pointer), 291 for 8 kB pages.
fn max_heap_tuples_per_page() -> u16 {
    ((pg_sys::BLCKSZ as usize - 24) / (24 + 4)) as u16
}

/// The current (sub)transaction's id, if it has one: the `xmin` of the rows a batch updates (a
/// batch runs in a subtransaction, so this is not `pg_current_xact_id()`).
#[pg_extern(schema = "migrate_guard", name = "_backfill_current_xid", volatile, parallel_unsafe)]
fn backfill_current_xid() -> Option<i64> {
    // SAFETY: reads the transaction state.
    let xid = unsafe { pg_sys::GetCurrentTransactionIdIfAny() };
    (xid != pg_sys::TransactionId::INVALID).then_some(i64::from(xid.into_inner()))
}

/// `42s`, `3m 05s`, `2h 07m`.
#[pg_extern(schema = "migrate_guard", name = "_backfill_duration", immutable, parallel_safe)]
fn backfill_duration(seconds: f64) -> String {
    progress::duration(seconds)
}

/// The progress line printed after each batch.
#[allow(clippy::too_many_arguments)]
#[pg_extern(schema = "migrate_guard", name = "_backfill_progress", immutable, parallel_safe)]
fn backfill_progress(
    job: i64,
    batches: i64,
    rows_done: i64,
    rows_total: Option<i64>,
    rows_updated: i64,
    pages_done: Option<i64>,
    pages_total: Option<i64>,
    run_done: i64,
    run_seconds: f64,
    run_start_fraction: Option<f64>,
    sweep: Option<i32>,
) -> String {
    progress::Progress {
        job,
        batches,
        rows_done,
        rows_total,
        rows_updated,
        pages: pages_done.zip(pages_total),
        run_done,
        run_seconds,
        run_start_fraction,
        sweep: sweep.map(i64::from),
    }
    .message()
}

/// Checks a backfill's arguments and builds the statements its batches run. Changes nothing.
/// Errors: 22004/22023 for missing or out-of-range arguments, 42809 for what is not a table,
/// 42601 for a clause that is not what it claims to be, 0A000 for what a backfill cannot do.
#[allow(clippy::type_complexity)]
#[pg_extern(schema = "migrate_guard", name = "_backfill_prepare", volatile, parallel_unsafe)]
fn backfill_prepare(
    tbl: Option<pg_sys::Oid>,
    set_clause: Option<&str>,
    where_clause: Option<&str>,
    batch_size: Option<i32>,
) -> TableIterator<
    'static,
    (
        name!(table_name, String),
        name!(strategy, String),
        name!(key_columns, Vec<String>),
        name!(bound_sql, Option<String>),
        name!(update_sql, String),
        name!(estimated_rows, Option<i64>),
        name!(total_pages, i64),
        name!(pages_per_batch, i64),
        name!(table_size, i64),
    ),
> {
    let Some(tbl) = tbl else {
        fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "migrate_guard.backfill needs a table".into(),
            None,
        )
    };
    let set_clause = match set_clause {
        Some(s) if !s.trim().is_empty() => s,
        _ => fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "migrate_guard.backfill needs a set_clause".into(),
            Some(
                "For example: CALL migrate_guard.backfill('accounts', 'email_lower = lower(email)', 'email_lower IS NULL');",
            ),
        ),
    };
    let batch_size = match batch_size {
        Some(n) if n > 0 => n,
        n => fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "migrate_guard.backfill: batch_size must be a positive number of rows, not {}",
                n.map_or("NULL".into(), |n| n.to_string())
            ),
            Some("10000 (the default) suits most tables; use less for very wide rows or heavily written tables."),
        ),
    };
    let where_clause = where_clause.filter(|w| !w.trim().is_empty());

    let table = describe(tbl);
    let walk = if table.key.is_empty() {
        if table.partitioned {
            fail(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!(
                    "migrate_guard.backfill: partitioned table {} has no primary key",
                    table.name
                ),
                Some("Backfill each partition on its own, or add a primary key to the partitioned table."),
            );
        }
        Walk::Pages
    } else {
        Walk::Key(table.key.clone())
    };

    let bad_clause = |p: clause::Problem| -> ! {
        fail(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            format!("migrate_guard.backfill: {p}"),
            None,
        )
    };
    let targets = clause::set_targets(set_clause).unwrap_or_else(|p| bad_clause(p));
    if let Some(w) = where_clause {
        clause::check_where(w).unwrap_or_else(|p| bad_clause(p));
    }
    if let Some(k) = targets.iter().find(|t| table.key.iter().any(|k| &k.name == *t)) {
        fail(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "migrate_guard.backfill: set_clause assigns primary key column {}",
                quote_ident(k)
            ),
            Some("The backfill walks the table in primary key order, so it cannot change the key it walks."),
        );
    }

    let b = Backfill {
        table: &table.name,
        partitioned: table.partitioned,
        walk: &walk,
        set_clause,
        where_clause,
        tid_range_scan: crate::server::Server::running().tid_range_scan(),
    };
    let (strategy, key_columns) = match &walk {
        Walk::Key(keys) => ("primary key", keys.iter().map(|k| k.name.clone()).collect()),
        Walk::Pages => ("pages", Vec::new()),
    };
    let (bound_sql, update_sql) = (b.bound_sql(), b.update_sql());
    crate::dml::backfill_prepared(&[update_sql.as_str()]);
    TableIterator::once((
        table.name.clone(),
        strategy.to_owned(),
        key_columns,
        bound_sql,
        update_sql,
        table.rows,
        table.pages,
        plan::pages_per_batch(batch_size as i64, table.per_page),
        table.size,
    ))
}

struct Table {
    name: String,
    partitioned: bool,
    key: Vec<KeyColumn>,
    rows: Option<i64>,
    per_page: Option<f64>,
    pages: i64,
    size: i64,
}

/// The table's name, kind, primary key and size, read with the caller's search_path-free
/// catalog queries.
fn describe(tbl: pg_sys::Oid) -> Table {
    Spi::connect(|client| {
        // The same relcache read the guard uses: name as PostgreSQL quotes it, and kind.
        let Some(rel) = crate::catalog::CatalogFacts::new(false).rel_by_oid(tbl) else {
            fail(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("migrate_guard.backfill: relation with OID {} does not exist", tbl.to_u32()),
                None,
            )
        };
        let partitioned = rel.kind == RelKind::PartitionedTable;
        if !matches!(rel.kind, RelKind::Table | RelKind::PartitionedTable) {
            let noun = rel.kind.noun();
            let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
            fail(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                format!("migrate_guard.backfill: {} is {article} {noun}", rel.display),
                Some("A backfill updates the rows of a table (or a partitioned table)."),
            );
        }
        let name = rel.display;
        let mut key = Vec::new();
        for r in client.select(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typcategory = 'D',
                    (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END)
                        IN ('pg_catalog.float4'::pg_catalog.regtype, 'pg_catalog.float8'::pg_catalog.regtype,
                            'pg_catalog.money'::pg_catalog.regtype)
             FROM pg_catalog.pg_index i
             CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
             WHERE i.indrelid = $1 AND i.indisprimary
             ORDER BY k.ord",
            None,
            &[tbl.into()],
        )? {
            let column = KeyColumn {
                name: r.get::<String>(1)?.unwrap_or_default(),
                type_sql: r.get::<String>(2)?.unwrap_or_default(),
                datetime: r.get::<bool>(3)?.unwrap_or(false),
            };
            // Their text form depends on settings (extra_float_digits, lc_monetary): a position
            // written in one session could be read back as another value in the next.
            if r.get::<bool>(4)?.unwrap_or(false) {
                fail(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    format!(
                        "migrate_guard.backfill: primary key column {} of {name} is of type {}",
                        quote_ident(&column.name),
                        column.type_sql
                    ),
                    Some("A backfill walks the primary key and stores its position as text, which floating-point and money values do not survive exactly."),
                );
            }
            key.push(column);
        }
        // Leaf partitions (or the table itself): row estimates, pages, bytes.
        let sizes = client
            .select(
                "SELECT pg_catalog.sum(GREATEST(c.reltuples, 0))::bigint,
                        pg_catalog.bool_or(c.reltuples < 0),
                        pg_catalog.sum(pg_catalog.pg_relation_size(c.oid)
                                       / pg_catalog.current_setting('block_size')::int)::bigint,
                        pg_catalog.sum(pg_catalog.pg_table_size(c.oid))::bigint
                 FROM pg_catalog.pg_class c
                 WHERE c.oid = $1 AND c.relkind = 'r'
                    OR c.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree($1) p WHERE p.isleaf)",
                Some(1),
                &[tbl.into()],
            )?
            .first();
        let estimate = sizes.get::<i64>(1)?.unwrap_or(0);
        let never_analyzed = sizes.get::<bool>(2)?.unwrap_or(false);
        let pages = sizes.get::<i64>(3)?.unwrap_or(0);
        let size = sizes.get::<i64>(4)?.unwrap_or(0);
        // Never analyzed: count when that is cheap (up to 1 GB), else say nothing about totals.
        let rows = if !never_analyzed {
            Some(estimate)
        } else if pages <= 131_072 {
            client
                .select(&format!("SELECT pg_catalog.count(*) FROM {name}"), Some(1), &[])?
                .first()
                .get::<i64>(1)?
        } else {
            None
        };
        // A page walk sizes its batches by rows per page: from the statistics, or, when they
        // say nothing (never analyzed and big, or analyzed while empty), from the first pages.
        let per_page = match rows {
            Some(r) if r > 0 && pages > 0 => Some(r as f64 / pages as f64),
            _ if key.is_empty() && !partitioned && pages > 0 => {
                let sample = pages.min(32);
                client
                    .select(
                        &format!("SELECT pg_catalog.count(*) FROM ONLY {name} WHERE ctid < '({sample},0)'::tid"),
                        Some(1),
                        &[],
                    )?
                    .first()
                    .get::<i64>(1)?
                    .map(|n| n as f64 / sample as f64)
            }
            _ => None,
        };
        Ok::<_, pgrx::spi::Error>(Table {
            name,
            partitioned,
            key,
            rows,
            per_page,
            pages,
            size,
        })
    })
    .unwrap_or_else(|e: pgrx::spi::Error| error!("migrate_guard.backfill: {e}"))
}
