//! Batched backfills: `CALL migrate_guard.backfill(table, set_clause, where_clause, …)`.
//!
//! The procedure is written in Rust ([`run`]): it commits between batches, runs every batch with
//! the caller's rights, and writes its job's bookkeeping through the owner's functions in
//! `sql/objects/backfill.sql`. This module checks the clauses and builds the SQL each batch runs
//! ([`plan`], [`clause`]), and answers `backfill_plan()`.

pub mod clause;
pub mod plan;
pub mod procedure;
pub mod progress;
pub mod run;

use crate::facts::RelKind;
use crate::sqltext::quote_ident;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use plan::{Backfill, KeyColumn, Walk};

pgrx::extension_sql_file!(
    "../../sql/objects/backfill.sql",
    name = "backfill_objects",
    requires = ["migration_functions", "privilege_grants"]
);

/// The longest set_clause or where_clause a backfill takes: they are parsed and kept in the
/// job's row, and no SET list or condition a person writes comes near it.
pub const MAX_CLAUSE_BYTES: usize = 64 * 1024;

fn fail(code: PgSqlErrorCode, message: String, hint: Option<&str>) -> ! {
    let mut r = ErrorReport::new(code, message, "migrate_guard.backfill");
    if let Some(h) = hint {
        r = r.set_hint(h);
    }
    r.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// PostgreSQL's `MaxHeapTuplesPerPage`: (block size - page header) / (aligned tuple header + line
/// pointer), 291 for 8 kB pages.
fn max_heap_tuples_per_page() -> u16 {
    ((pg_sys::BLCKSZ as usize - 24) / (24 + 4)) as u16
}

/// Every TID of the pages `[first, end)`: a page walk's batch on PostgreSQL 13, which has no TID
/// range scan (a TID list is a TID scan there; a ctid range would read the whole table for each
/// batch). Each page gets as many offsets as a heap page can hold line pointers. A batch covers
/// at most [`plan::MAX_PAGES_PER_BATCH`] pages, which bounds the list.
fn page_tids(first: i64, end: i64) -> Vec<pg_sys::ItemPointerData> {
    let per_page = max_heap_tuples_per_page();
    let first = first.clamp(0, u32::MAX as i64) as u32;
    let end = end.clamp(0, u32::MAX as i64) as u32;
    let end = end.min(first.saturating_add(plan::MAX_PAGES_PER_BATCH as u32));
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

fn page_tid(block: i64) -> pg_sys::ItemPointerData {
    let b = block.clamp(0, u32::MAX as i64) as u32;
    let mut t = pg_sys::ItemPointerData::default();
    t.ip_blkid.bi_hi = (b >> 16) as u16;
    t.ip_blkid.bi_lo = (b & 0xffff) as u16;
    t
}

/// A backfill's statements and what they walk.
pub struct Prepared {
    pub table_name: String,
    pub walk: Walk,
    pub strategy: &'static str,
    pub key_columns: Vec<String>,
    pub bound_sql: Option<String>,
    pub update_sql: String,
    pub estimated_rows: Option<i64>,
    pub total_pages: i64,
    pub pages_per_batch: i64,
    pub table_size: i64,
    /// Page walk: the table's file when the job starts.
    pub filenode: Option<pg_sys::Oid>,
}

/// The parameters of a page walk's UPDATE for pages `[lo, hi)` (see [`plan::Backfill::update_sql`]).
fn page_args(lo: i64, hi: i64, xids: &[pg_sys::TransactionId]) -> Vec<DatumWithOid<'static>> {
    let mut args: Vec<DatumWithOid<'static>> = vec![page_tid(lo).into(), page_tid(hi).into(), xids.to_vec().into()];
    if !crate::server::running().tid_range_scan() {
        args.push(page_tids(lo, hi).into());
    }
    args
}

/// One page walk batch's UPDATE; the rows it updated.
pub fn run_page_update(p: &Prepared, lo: i64, hi: i64, xids: &[pg_sys::TransactionId]) -> i64 {
    procedure::execute(&p.update_sql, &page_args(lo, hi, xids))
}

/// EXPLAIN of the first batch (with the first batch's bounds: `first_hi` for a key walk),
/// with the caller's rights: plan lines.
pub fn explain(p: &Prepared, first_hi: &[Option<String>]) -> Vec<String> {
    let sql = format!("EXPLAIN (COSTS OFF) {}", p.update_sql);
    let args: Vec<DatumWithOid> = match p.walk {
        Walk::Pages => page_args(0, p.pages_per_batch, &[]),
        Walk::Key(_) => vec![
            DatumWithOid::null::<Vec<Option<String>>>(),
            if first_hi.is_empty() {
                DatumWithOid::null::<Vec<Option<String>>>()
            } else {
                first_hi.to_vec().into()
            },
        ],
    };
    let mut lines = procedure::query::<String>(&sql, &args)
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    // PostgreSQL 13 lists every TID of the batch's pages in the plan: say which.
    if !crate::server::running().tid_range_scan() {
        for l in &mut lines {
            if let Some(at) = l.find("ANY ('{") {
                if let Some(end) = l[at..].find("}'::tid[])") {
                    l.replace_range(
                        at..at + end + "}'::tid[])".len(),
                        &format!(
                            "ANY (<the {} TIDs of pages 0 to {}>)",
                            p.pages_per_batch as usize * max_heap_tuples_per_page() as usize,
                            p.pages_per_batch
                        ),
                    );
                }
            }
        }
    }
    lines
}

/// Checks a backfill's arguments and builds the statements its batches run. Changes nothing.
/// Errors: 22004/22023 for missing or out-of-range arguments, 42809 for what is not a table,
/// 42601 for a clause that is not what it claims to be, 0A000 for what a backfill cannot do,
/// 54000 for a clause longer than [`MAX_CLAUSE_BYTES`].
pub fn prepare(
    tbl: Option<pg_sys::Oid>,
    set_clause: Option<&str>,
    where_clause: Option<&str>,
    batch_size: Option<i32>,
) -> Prepared {
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
    for (name, clause) in [("set_clause", Some(set_clause)), ("where_clause", where_clause)] {
        if clause.is_some_and(|c| c.len() > MAX_CLAUSE_BYTES) {
            fail(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "migrate_guard.backfill: {name} is longer than {} kB",
                    MAX_CLAUSE_BYTES / 1024
                ),
                Some(
                    "A backfill takes one SET list and one condition: put long logic in a function and call it there.",
                ),
            );
        }
    }
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
        tid_range_scan: crate::server::running().tid_range_scan(),
    };
    let (strategy, key_columns) = match &walk {
        Walk::Key(keys) => ("primary key", keys.iter().map(|k| k.name.clone()).collect()),
        Walk::Pages => ("pages", Vec::new()),
    };
    let (bound_sql, update_sql) = (b.bound_sql(), b.update_sql());
    crate::dml::backfill_prepared(&[update_sql.as_str()]);
    let filenode = matches!(walk, Walk::Pages)
        .then(|| {
            procedure::query::<pg_sys::Oid>("SELECT pg_catalog.pg_relation_filenode($1)", &[tbl.into()])
                .into_iter()
                .next()
                .flatten()
        })
        .flatten();
    Prepared {
        table_name: table.name.clone(),
        strategy,
        key_columns,
        bound_sql,
        update_sql,
        estimated_rows: table.rows,
        total_pages: table.pages,
        pages_per_batch: plan::pages_per_batch(batch_size as i64, table.per_page),
        table_size: table.size,
        walk,
        filenode,
    }
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
    crate::privilege::with_safe_path(|| describe_table(tbl))
}

fn describe_table(tbl: pg_sys::Oid) -> Table {
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
                            'pg_catalog.money'::pg_catalog.regtype),
                    (SELECT pg_catalog.quote_ident(n.nspname)
                       FROM pg_catalog.pg_amop o
                       JOIN pg_catalog.pg_operator op ON op.oid = o.amopopr
                       JOIN pg_catalog.pg_namespace n ON n.oid = op.oprnamespace
                      WHERE o.amopfamily = c.opcfamily AND o.amoplefttype = c.opcintype
                        AND o.amoprighttype = c.opcintype AND o.amopstrategy = 5)
             FROM pg_catalog.pg_index i
             CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_catalog.pg_opclass c ON c.oid = i.indclass[(k.ord OPERATOR(pg_catalog.-) 1)::integer]
             WHERE i.indrelid = $1 AND i.indisprimary
             ORDER BY k.ord",
            None,
            &[tbl.into()],
        )? {
            let column = KeyColumn {
                name: r.get::<String>(1)?.unwrap_or_default(),
                type_sql: r.get::<String>(2)?.unwrap_or_default(),
                datetime: r.get::<bool>(3)?.unwrap_or(false),
                op_schema: r.get::<String>(5)?.unwrap_or_else(|| "pg_catalog".into()),
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
                        &format!(
                            "SELECT pg_catalog.count(*) FROM ONLY {name} WHERE ctid OPERATOR(pg_catalog.<) '({sample},0)'::tid"
                        ),
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

pgrx::extension_sql!(
    r#"
CREATE FUNCTION migrate_guard.backfill_plan(
    tbl regclass, set_clause text, where_clause text DEFAULT NULL, batch_size integer DEFAULT 10000)
RETURNS TABLE (table_name text, table_size text, estimated_rows bigint, walk text, rows_per_batch integer,
               estimated_batches bigint, resumes text, batch_statement text, first_batch_plan text)
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'backfill_plan_wrapper';
COMMENT ON FUNCTION migrate_guard.backfill_plan(regclass, text, text, integer) IS
    'migrate_guard: how migrate_guard.backfill() would walk the table (changes nothing)';
"#,
    name = "backfill_plan",
    requires = ["backfill_objects", backfill_plan]
);

/// `migrate_guard.backfill_plan(table, set_clause, where_clause, batch_size)`: how a backfill
/// would walk the table, planned with the caller's rights; changes nothing.
#[pg_extern(sql = false)]
fn backfill_plan(
    tbl: Option<pg_sys::Oid>,
    set_clause: Option<&str>,
    where_clause: Option<&str>,
    batch_size: Option<i32>,
) -> TableIterator<
    'static,
    (
        name!(table_name, String),
        name!(table_size, String),
        name!(estimated_rows, Option<i64>),
        name!(walk, String),
        name!(rows_per_batch, i32),
        name!(estimated_batches, i64),
        name!(resumes, String),
        name!(batch_statement, String),
        name!(first_batch_plan, String),
    ),
> {
    let p = prepare(tbl, set_clause, where_clause, batch_size);
    let batch_size = batch_size.unwrap_or_default();
    let first_hi: Vec<Option<String>> = match &p.bound_sql {
        Some(bound) => procedure::query::<Vec<Option<String>>>(
            bound,
            &[DatumWithOid::null::<Vec<Option<String>>>(), batch_size.into()],
        )
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_default(),
        None => Vec::new(),
    };
    let plan = explain(&p, &first_hi).join("\n");
    let where_clause = where_clause.map(|w| w.trim_matches(' ')).filter(|w| !w.is_empty());
    // The caller's own unfinished job with these clauses, which a CALL would resume.
    let job = crate::privilege::with_safe_path(|| {
        Spi::connect(|c| {
            let rows = c.select(
                "SELECT b.id, b.status, b.batches, b.rows_updated FROM migrate_guard.backfills b
                  WHERE b.table_oid = $1 AND b.set_clause = $2 AND b.where_clause IS NOT DISTINCT FROM $3
                    AND b.status IN ('running', 'failed', 'cancelled') AND b.run_by = CURRENT_USER
                  ORDER BY b.id DESC LIMIT 1",
                None,
                &[tbl.into(), set_clause.into(), where_clause.into()],
            )?;
            if rows.is_empty() {
                return Ok::<_, pgrx::spi::Error>(None);
            }
            let r = rows.first();
            Ok(Some((
                r.get::<i64>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<i64>(3)?.unwrap_or_default(),
                r.get::<i64>(4)?.unwrap_or_default(),
            )))
        })
        .unwrap_or_else(|e| error!("migrate_guard.backfill_plan: {e}"))
    });
    let size = crate::privilege::with_safe_path(|| {
        procedure::query::<String>("SELECT pg_catalog.pg_size_pretty($1::bigint)", &[p.table_size.into()])
    })
    .into_iter()
    .next()
    .flatten()
    .unwrap_or_default();
    let walk = match &p.walk {
        Walk::Pages => format!(
            "physical order (no primary key): {} pages, {} per batch",
            p.total_pages, p.pages_per_batch
        ),
        Walk::Key(_) => format!("primary key order ({})", p.key_columns.join(", ")),
    };
    let batches = match &p.walk {
        Walk::Pages => ((p.total_pages as f64) / (p.pages_per_batch as f64)).ceil() as i64,
        Walk::Key(_) => ((p.estimated_rows.unwrap_or(0) as f64) / (batch_size as f64)).ceil() as i64,
    }
    .max(1);
    let resumes = match job {
        None => "no: a new job starts".to_owned(),
        Some((id, status, batches, rows)) => {
            format!("job {id} ({status}) after batch {batches}, {rows} rows updated so far")
        }
    };
    TableIterator::once((
        p.table_name.clone(),
        size,
        p.estimated_rows,
        walk,
        batch_size,
        batches,
        resumes,
        p.update_sql.clone(),
        plan,
    ))
}
