//! `CALL migrate_guard.backfill(table, set_clause, where_clause, batch_size, pause, lock_timeout,
//! max_retries, restart)`: the batch loop.
//!
//! Each batch is one UPDATE of the caller's, in a subtransaction of its own transaction: a lock
//! timeout, deadlock or serialization failure rolls the batch back and it is tried again (with a
//! growing, jittered pause), anything else fails the job, which keeps the position of its last
//! committed batch. The job's bookkeeping (`migrate_guard.backfills`) is written by the owner's
//! functions in the batch's own transaction, so a batch and its record commit together.

use super::plan::Walk;
use super::procedure::{self, Failure, NonAtomic, Outcome};
use super::progress::Progress;
use crate::privilege;
use pgrx::datum::{DatumWithOid, Interval};
use pgrx::pg_sys;
use pgrx::prelude::*;

/// The arguments of one backfill.
pub struct Args {
    pub table: Option<pg_sys::Oid>,
    pub set_clause: Option<String>,
    pub where_clause: Option<String>,
    pub batch_size: Option<i32>,
    pub pause: Option<Interval>,
    pub lock_timeout: Option<Interval>,
    pub max_retries: Option<i32>,
    pub restart: bool,
}

procedure::procedure_entry!(
    migrate_guard_backfill,
    pg_finfo_migrate_guard_backfill,
    "backfill",
    call
);

pgrx::extension_sql!(
    r#"
CREATE PROCEDURE migrate_guard.backfill(
    tbl regclass,
    set_clause text,
    where_clause text DEFAULT NULL,
    batch_size integer DEFAULT 10000,
    pause interval DEFAULT '0',
    lock_timeout interval DEFAULT '1s',
    max_retries integer DEFAULT 10,
    restart boolean DEFAULT false)
LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_guard_backfill';
COMMENT ON PROCEDURE migrate_guard.backfill(regclass, text, text, integer, interval, interval, integer, boolean) IS
    'migrate_guard: UPDATE table SET set_clause [WHERE where_clause] in committed, throttled, resumable batches';
"#,
    name = "backfill_procedure",
    requires = ["backfill_objects"]
);

fn call(fcinfo: pg_sys::FunctionCallInfo, spi: &NonAtomic) -> Outcome {
    // SAFETY: the procedure's declared arguments, in order.
    let args = unsafe {
        use pgrx::fcinfo::pg_getarg;
        Args {
            table: pg_getarg::<pg_sys::Oid>(fcinfo, 0),
            set_clause: pg_getarg::<String>(fcinfo, 1),
            where_clause: pg_getarg::<String>(fcinfo, 2),
            batch_size: pg_getarg::<i32>(fcinfo, 3),
            pause: pg_getarg::<Interval>(fcinfo, 4),
            lock_timeout: pg_getarg::<Interval>(fcinfo, 5),
            max_retries: pg_getarg::<i32>(fcinfo, 6),
            restart: pg_getarg::<bool>(fcinfo, 7).unwrap_or(false),
        }
    };
    run(spi, &args)
}

/// Microseconds, as PostgreSQL compares intervals (a month is 30 days).
pub fn interval_micros(i: &Interval) -> i128 {
    i.micros() as i128 + i.days() as i128 * 86_400_000_000 + i.months() as i128 * 30 * 86_400_000_000
}

/// The interval as the session prints it (`@ 1 sec ago` with IntervalStyle postgres_verbose).
pub fn interval_text(i: Option<&Interval>) -> String {
    match i {
        None => "NULL".into(),
        Some(i) => procedure::query::<String>("SELECT $1::pg_catalog.text", &[(*i).into()])
            .into_iter()
            .next()
            .flatten()
            .unwrap_or_default(),
    }
}

fn invalid(message: String) -> Failure {
    Failure::new("22023", message)
}

/// `lock_timeout` and `pause` checked, as milliseconds and the interval to sleep.
pub struct Pacing {
    pub lock_ms: i64,
    pub pause: Option<Interval>,
    pub max_retries: i32,
}

pub fn check_pacing(
    name: &str,
    pause: Option<&Interval>,
    lock_timeout: Option<&Interval>,
    max_retries: Option<i32>,
) -> Result<Pacing, Failure> {
    let pause_ok = pause.is_some_and(|p| interval_micros(p) >= 0);
    if !pause_ok {
        return Err(invalid(format!(
            "migrate_guard.{name}: pause must be a non-negative interval, not {}",
            interval_text(pause)
        )));
    }
    let lock_ok = lock_timeout.is_some_and(|l| {
        let us = interval_micros(l);
        (1_000..=2_147_483_647_000).contains(&us)
    });
    if !lock_ok {
        return Err(invalid(format!(
            "migrate_guard.{name}: lock_timeout must be between 1ms and 24 days, not {}",
            interval_text(lock_timeout)
        ))
        .hint("Each batch gives up waiting for a lock after lock_timeout and is retried."));
    }
    let us = interval_micros(lock_timeout.expect("checked"));
    Ok(Pacing {
        lock_ms: ((us + 500) / 1000) as i64,
        pause: pause.filter(|p| interval_micros(p) > 0).copied(),
        max_retries: max_retries.unwrap_or(0),
    })
}

/// Retries need a fresh snapshot per statement, which READ COMMITTED takes.
pub fn check_isolation(name: &str) -> Outcome {
    let level = procedure::query::<String>("SELECT pg_catalog.current_setting('transaction_isolation')", &[])
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_default();
    if level != "read committed" {
        return Err(Failure::new(
            "0A000",
            format!(
                "migrate_guard.{name} runs its batches at READ COMMITTED, and this session's transactions are {}",
                level.to_uppercase()
            ),
        )
        .hint("SET default_transaction_isolation = 'read committed' in this session, then CALL it again."));
    }
    Ok(())
}

/// A job as its bookkeeping function returns it.
#[derive(Debug, Clone, Default)]
struct Job {
    id: i64,
    table_name: String,
    batches: i64,
    rows_done: i64,
    rows_total: Option<i64>,
    rows_updated: i64,
    position: Option<Vec<Option<String>>>,
    end_page: Option<i64>,
    status: String,
    strategy: String,
}

fn job_from_row(r: &pgrx::spi::SpiTupleTable) -> Result<Job, pgrx::spi::Error> {
    Ok(Job {
        id: r.get::<i64>(1)?.unwrap_or_default(),
        table_name: r.get::<String>(2)?.unwrap_or_default(),
        batches: r.get::<i64>(3)?.unwrap_or_default(),
        rows_done: r.get::<i64>(4)?.unwrap_or_default(),
        rows_total: r.get::<i64>(5)?,
        rows_updated: r.get::<i64>(6)?.unwrap_or_default(),
        position: r.get::<Vec<Option<String>>>(7)?,
        end_page: r.get::<i64>(8)?,
        status: r.get::<String>(9)?.unwrap_or_default(),
        strategy: r.get::<String>(10)?.unwrap_or_default(),
    })
}

const JOB_COLUMNS: &str = "j.id, j.table_name, j.batches, j.rows_done, j.rows_total, j.rows_updated, j.position, \
                           j.end_page, j.status, j.strategy";

/// The fraction of a job done, from its position (page walk) or its row estimate (key walk).
fn fraction(job: &Job) -> Option<f64> {
    if job.status == "done" {
        return Some(1.0);
    }
    if job.strategy == "pages" {
        let pass = position_int(job.position.as_ref(), 1).unwrap_or(0);
        if pass > 0 {
            return Some(0.999);
        }
        return match job.end_page {
            Some(e) if e > 0 => Some(position_int(job.position.as_ref(), 0).unwrap_or(0) as f64 / e as f64),
            _ => None,
        };
    }
    match job.rows_total {
        Some(t) if t > 0 => Some((job.rows_done as f64 / t as f64).min(0.999)),
        _ => None,
    }
}

fn position_int(p: Option<&Vec<Option<String>>>, i: usize) -> Option<i64> {
    p.and_then(|p| p.get(i).cloned().flatten()).and_then(|s| s.parse().ok())
}

fn text_array(v: &Option<Vec<Option<String>>>) -> DatumWithOid<'static> {
    match v {
        Some(v) => DatumWithOid::from(v.clone()),
        None => DatumWithOid::null::<Vec<Option<String>>>(),
    }
}

/// A backfill, from its arguments to its last batch.
pub fn run(spi: &NonAtomic, a: &Args) -> Outcome {
    let pacing = check_pacing("backfill", a.pause.as_ref(), a.lock_timeout.as_ref(), a.max_retries)?;
    check_isolation("backfill")?;
    if a.max_retries.is_none_or(|m| m < 0) {
        return Err(invalid(format!(
            "migrate_guard.backfill: max_retries must be zero or more, not {}",
            a.max_retries.map_or("NULL".into(), |m| m.to_string())
        )));
    }
    let p = super::prepare(
        a.table,
        a.set_clause.as_deref(),
        a.where_clause.as_deref(),
        a.batch_size,
    );
    let tbl = a.table.expect("prepare checked it");
    let set_clause = a.set_clause.clone().unwrap_or_default();
    // As the job stores it: without surrounding spaces, NULL when empty.
    let where_clause = a
        .where_clause
        .as_deref()
        .map(|w| w.trim_matches(' '))
        .filter(|w| !w.is_empty())
        .map(str::to_owned);
    let batch_size = a.batch_size.unwrap_or_default();
    // Planning a batch checks what only the server knows: columns, functions, types, and the
    // caller's right to UPDATE the table (EXPLAIN checks privileges, and runs nothing).
    let explained = crate::catalog::attempt(|| super::explain(&p, &[]));
    if let Err(e) = explained {
        return Err(
            Failure::new(&e.sqlstate, format!("migrate_guard.backfill: {}", e.message))
                .detail(format!("Each batch would run: {}", p.update_sql))
                .hint(
                    e.hint
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| "Check set_clause and where_clause against the table.".into()),
                ),
        );
    }
    spi.commit();

    let pages = p.walk == Walk::Pages;
    let mut job = privilege::run_as_owner(|| {
        Spi::connect_mut(|c| {
            let row = c
                .update(
                    &format!(
                        "SELECT {JOB_COLUMNS} FROM migrate_guard._backfill_job_open($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) j"
                    ),
                    None,
                    &[
                        tbl.into(),
                        p.table_name.as_str().into(),
                        set_clause.as_str().into(),
                        where_clause.as_deref().into(),
                        batch_size.into(),
                        p.strategy.into(),
                        p.key_columns.clone().into(),
                        p.estimated_rows.into(),
                        p.total_pages.into(),
                        a.restart.into(),
                    ],
                )?
                .first();
            job_from_row(&row)
        })
        .unwrap_or_else(|e| error!("migrate_guard: {e}"))
    });
    let mut lo_page = 0i64;
    let mut pass = 0i64;
    let mut pass_end = 0i64;
    let mut pass_updated = 0i64;
    let mut xids: Vec<pg_sys::TransactionId> = Vec::new();
    let mut lo: Option<Vec<Option<String>>> = None;
    if pages {
        lo_page = position_int(job.position.as_ref(), 0).unwrap_or(0);
        pass = position_int(job.position.as_ref(), 1).unwrap_or(0);
        pass_end = position_int(job.position.as_ref(), 2).or(job.end_page).unwrap_or(0);
        pass_updated = position_int(job.position.as_ref(), 3).unwrap_or(0);
        xids = privilege::run_as_owner(|| {
            procedure::query::<i64>(
                "SELECT x::text::bigint FROM pg_catalog.unnest(migrate_guard._backfill_job_xids($1)) AS x",
                &[job.id.into()],
            )
        })
        .into_iter()
        .flatten()
        .map(|x| pg_sys::TransactionId::from(x as u32))
        .collect();
    } else {
        lo = job.position.clone();
    }
    let statement_timeout = procedure::query::<String>("SELECT pg_catalog.current_setting('statement_timeout')", &[])
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_default();
    if statement_timeout != "0" && statement_timeout != "0ms" {
        crate::report::notice(
            &format!(
                "migrate_guard: statement_timeout ({statement_timeout}) applies to this whole CALL, not to each batch"
            ),
            "When it expires the job stops after its last committed batch; the same CALL resumes it.",
            "For a long backfill, SET statement_timeout = 0 in this session first (each batch is a short transaction of its own).",
        );
    }
    if pages && where_clause.is_none() {
        crate::report::notice(
            &format!(
                "migrate_guard: {} has no primary key and the backfill has no where_clause",
                p.table_name
            ),
            "Rows that other sessions update while the job runs can move to a page it has already walked (and be missed) or to one it has not reached yet (and be updated again).",
            "Give a where_clause that is false for rows already done (such as new_column IS NULL): the job then sweeps the table for such rows at the end.",
        );
    }
    if job.batches > 0 {
        notice!(
            "migrate_guard: resuming backfill job {} on {} after batch {} ({} rows updated so far)",
            job.id,
            job.table_name,
            job.batches,
            job.rows_updated
        );
    } else if pages {
        notice!(
            "migrate_guard: backfill job {} on {}: in physical order (no primary key), {} pages of about {} rows per batch, each batch committed on its own",
            job.id,
            job.table_name,
            p.pages_per_batch,
            batch_size
        );
    } else {
        notice!(
            "migrate_guard: backfill job {} on {}: in primary key order ({}), {} rows per batch, each batch committed on its own",
            job.id,
            job.table_name,
            p.key_columns.join(", "),
            batch_size
        );
    }
    spi.commit();

    let run_start = std::time::Instant::now();
    let start_fraction = fraction(&job);
    let mut run_done = 0i64;
    let mut swept = 0i64;
    let mut done = false;
    let has_where = where_clause.is_some();
    let filenode = if pages { p.filenode } else { None };
    while !done {
        let mut attempt = 0i32;
        let mut batch: Option<Batch> = None;
        let mut failure: Option<crate::catalog::CaughtError> = None;
        loop {
            let this = crate::catalog::attempt(|| {
                procedure::execute(&format!("SET LOCAL lock_timeout = {}", pacing.lock_ms), &[]);
                // Deferred constraints are checked in the batch, where a failure is handled.
                procedure::execute("SET CONSTRAINTS ALL IMMEDIATE", &[]);
                if pages {
                    page_batch(
                        &p,
                        tbl,
                        filenode,
                        lo_page,
                        pass,
                        pass_end,
                        pass_updated,
                        &xids,
                        has_where,
                        job.id,
                        attempt,
                    )
                } else {
                    key_batch(&p, lo.clone(), batch_size, job.id, attempt)
                }
            });
            match this {
                Ok(b) => {
                    batch = Some(b);
                    break;
                }
                Err(e) if matches!(e.sqlstate.as_str(), "55P03" | "40P01" | "40001") => {
                    attempt += 1;
                    if attempt > pacing.max_retries {
                        failure = Some(e);
                        break;
                    }
                    notice!(
                        "migrate_guard: backfill job {}: batch {} rolled back ({}: {}); retry {} of {}",
                        job.id,
                        job.batches + 1,
                        e.sqlstate,
                        e.message,
                        attempt,
                        pacing.max_retries
                    );
                    procedure::execute(
                        "SELECT pg_catalog.pg_sleep(LEAST(5.0, 0.05 * 2 ^ $1) * (0.5 + pg_catalog.random() / 2))",
                        &[attempt.into()],
                    );
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failure {
            // The batch rolled back; the job keeps the position of its last committed batch.
            privilege::run_as_owner(|| {
                procedure::execute(
                    "SELECT migrate_guard._backfill_job_end($1, 'failed', $2)",
                    &[job.id.into(), format!("{}: {}", e.sqlstate, e.message).into()],
                )
            });
            spi.commit();
            let tried = if attempt > 0 {
                format!(", and the failing batch was tried {attempt} times")
            } else {
                String::new()
            };
            return Err(Failure::new(
                &e.sqlstate,
                format!(
                    "migrate_guard: backfill job {} failed in batch {}: {}",
                    job.id,
                    job.batches + 1,
                    e.message
                ),
            )
            .detail(format!(
                "{} batches ({} rows updated) are committed{tried}.",
                job.batches, job.rows_updated
            ))
            .hint("Fix the cause, then run the same CALL again: the job resumes after its last committed batch."));
        }
        let b = batch.expect("a batch or a failure");
        spi.commit();

        done = b.done;
        job.batches += 1;
        job.rows_done += b.rows;
        job.rows_updated += b.updated;
        let batch_pass = pass;
        let batch_end = pass_end;
        if pages {
            run_done += b.hi_page - lo_page;
            if pass > 0 {
                swept += b.updated;
            }
            job.position = Some(b.position.iter().map(|v| Some(v.to_string())).collect());
            lo_page = b.position[0];
            pass = b.position[1];
            pass_end = b.position[2];
            pass_updated = b.position[3];
            if let Some(x) = b.xid {
                xids.push(x);
            }
        } else {
            run_done += b.rows;
            lo = b.hi.clone().or(lo);
        }
        if !done {
            let progress = Progress {
                job: job.id,
                batches: job.batches,
                rows_done: job.rows_done,
                rows_total: job.rows_total,
                rows_updated: job.rows_updated,
                pages: pages.then_some((b.hi_page, batch_end)),
                run_done,
                run_seconds: run_start.elapsed().as_secs_f64(),
                run_start_fraction: start_fraction,
                sweep: (batch_pass > 0).then_some(batch_pass),
            };
            notice!("{}", progress.message());
        }
        if b.cancel && !done {
            privilege::run_as_owner(|| {
                procedure::execute(
                    "SELECT migrate_guard._backfill_job_end($1, 'cancelled', 'cancelled with migrate_guard.cancel_backfill()')",
                    &[job.id.into()],
                )
            });
            spi.commit();
            return Err(Failure::new(
                "57014",
                format!(
                    "migrate_guard: backfill job {} was cancelled after batch {}",
                    job.id, job.batches
                ),
            )
            .detail(format!(
                "{} rows updated so far; every committed batch stays.",
                job.rows_updated
            ))
            .hint("Run the same CALL again to resume it, or with restart => true to start over."));
        }
        if !done && let Some(pause) = pacing.pause {
            procedure::execute("SELECT pg_catalog.pg_sleep_for($1)", &[pause.into()]);
        }
    }
    // (How long it took is worth saying only for a run that took a while: the per-batch lines
    // already give the rate.)
    let took = run_start.elapsed().as_secs_f64();
    let this_run = if took >= 10.0 {
        format!(" (this run: {})", super::progress::duration(took))
    } else {
        String::new()
    };
    let sweeps = if pass > 0 {
        format!("; sweeping for rows other sessions wrote meanwhile: {pass} pass(es), {swept} rows updated")
    } else {
        String::new()
    };
    notice!(
        "migrate_guard: backfill job {} done: {} rows updated in {} batches{this_run}{sweeps}",
        job.id,
        job.rows_updated,
        job.batches
    );
    Ok(())
}

/// What one batch did.
struct Batch {
    rows: i64,
    updated: i64,
    done: bool,
    cancel: bool,
    /// Key walk: the last key of the batch.
    hi: Option<Vec<Option<String>>>,
    /// Page walk: the end page of the batch, the job's next position and the batch's xid.
    hi_page: i64,
    position: [i64; 4],
    xid: Option<pg_sys::TransactionId>,
}

/// Records a batch in its own transaction; returns whether a cancel was requested.
fn record_batch(
    job: i64,
    position: DatumWithOid,
    rows: i64,
    updated: i64,
    retries: i32,
    xid: Option<i64>,
    done: bool,
) -> bool {
    privilege::run_as_owner(|| {
        procedure::query::<bool>(
            "SELECT migrate_guard._backfill_job_batch($1, $2, $3, $4, $5, $6, $7)",
            &[
                job.into(),
                position,
                rows.into(),
                updated.into(),
                retries.into(),
                xid.into(),
                done.into(),
            ],
        )
    })
    .into_iter()
    .next()
    .flatten()
    .unwrap_or(false)
}

fn key_batch(p: &super::Prepared, lo: Option<Vec<Option<String>>>, batch_size: i32, job: i64, retries: i32) -> Batch {
    let bound = p.bound_sql.as_deref().expect("a key walk has a bound statement");
    let (hi, n) = Spi::connect_mut(|c| {
        let rows = c.update(bound, None, &[text_array(&lo), batch_size.into()])?;
        if rows.is_empty() {
            return Ok::<_, pgrx::spi::Error>((None, 0i64));
        }
        let row = rows.first();
        Ok((row.get::<Vec<Option<String>>>(1)?, row.get::<i64>(2)?.unwrap_or(0)))
    })
    .unwrap_or_else(|e| error!("migrate_guard: {e}"));
    let updated = if n > 0 {
        procedure::execute(&p.update_sql, &[text_array(&lo), text_array(&hi)])
    } else {
        0
    };
    let done = n < batch_size as i64;
    let position = hi.clone().or(lo);
    let cancel = record_batch(job, text_array(&position), n, updated, retries, None, done);
    Batch {
        rows: n,
        updated,
        done,
        cancel,
        hi,
        hi_page: 0,
        position: [0; 4],
        xid: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn page_batch(
    p: &super::Prepared,
    tbl: pg_sys::Oid,
    filenode: Option<pg_sys::Oid>,
    lo_page: i64,
    pass: i64,
    pass_end: i64,
    pass_updated: i64,
    xids: &[pg_sys::TransactionId],
    has_where: bool,
    job: i64,
    retries: i32,
) -> Batch {
    let now = procedure::query::<pg_sys::Oid>("SELECT pg_catalog.pg_relation_filenode($1)", &[tbl.into()])
        .into_iter()
        .next()
        .flatten();
    if now != filenode {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "the table was rewritten (VACUUM FULL, CLUSTER or a rewriting ALTER TABLE) while the job walked its pages"
        );
    }
    let hi_page = (lo_page + p.pages_per_batch).min(pass_end);
    let updated = super::run_page_update(p, lo_page, hi_page, xids);
    // SAFETY: reads the transaction state: the batch's subtransaction id, the xmin of the rows
    // it wrote (a batch runs in a subtransaction, so this is not pg_current_xact_id()).
    let xid = if updated > 0 {
        let x = unsafe { pg_sys::GetCurrentTransactionIdIfAny() };
        (x != pg_sys::TransactionId::INVALID).then_some(x)
    } else {
        None
    };
    let mut position = [hi_page, pass, pass_end, pass_updated + updated];
    let mut done = false;
    if hi_page >= pass_end {
        // Rows other sessions update can move to a page the walk has passed (or past its end).
        // With a where_clause to tell which rows still need the update, sweep the whole table
        // again for them (the job's own row versions are skipped), while a pass finds some,
        // three times at most.
        if has_where && pass < 3 && (pass == 0 || pass_updated + updated > 0) {
            let pages = procedure::query::<i64>(
                "SELECT pg_catalog.pg_relation_size($1) / pg_catalog.current_setting('block_size')::int",
                &[tbl.into()],
            )
            .into_iter()
            .next()
            .flatten()
            .unwrap_or(0);
            position = [0, pass + 1, pages, 0];
        } else {
            done = true;
        }
    }
    let as_text: Vec<Option<String>> = position.iter().map(|v| Some(v.to_string())).collect();
    let cancel = record_batch(
        job,
        DatumWithOid::from(as_text),
        updated,
        updated,
        retries,
        xid.map(|x| i64::from(x.into_inner())),
        done,
    );
    Batch {
        rows: updated,
        updated,
        done,
        cancel,
        hi: None,
        hi_page,
        position,
        xid,
    }
}
