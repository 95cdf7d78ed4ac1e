//! Expand → migrate → contract, done by the database: `migrate_guard.expand_column`,
//! `backfill_expansion`, `contract`, `abort_expansion`, `expand_rename_table` and the
//! `migrate_guard.expansions` view.
//!
//! The helpers are PL/pgSQL (`sql/objects/expansions.sql`), run as the extension's owner behind
//! entry points that record their caller (see `privilege.rs`): each step is a handful of DDL
//! statements, run with the caller's rights, and catalog reads. `backfill_expansion` is a
//! procedure that commits between batches, written here: it runs `migrate_guard.backfill`'s
//! loop for each new column, then the steps that prove NOT NULL and re-create the foreign keys,
//! one transaction each.

use crate::backfill::procedure::{self, Failure, NonAtomic, Outcome};
use crate::backfill::run::{self, Args};
use crate::privilege;
use pgrx::datum::Interval;
use pgrx::pg_sys;
use pgrx::prelude::*;

pgrx::extension_sql_file!(
    "../sql/objects/expansions.sql",
    name = "expansion_objects",
    requires = ["backfill_objects", replace_identifier]
);

pgrx::extension_sql!(
    r#"
CREATE PROCEDURE migrate_guard.backfill_expansion(
    id bigint,
    batch_size integer DEFAULT 10000,
    pause interval DEFAULT '0',
    lock_timeout interval DEFAULT '1s',
    max_retries integer DEFAULT 10)
LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_guard_backfill_expansion';
COMMENT ON PROCEDURE migrate_guard.backfill_expansion(bigint, integer, interval, interval, integer) IS
    'migrate_guard: fill the new column(s) of an expansion in committed batches, then prove NOT NULL and validate foreign keys';
REVOKE ALL ON FUNCTION migrate_guard._replace_identifier(text, text, text) FROM PUBLIC;
"#,
    name = "backfill_expansion_procedure",
    requires = ["expansion_objects", "backfill_procedure"]
);

/// `sql` with the column `old` renamed to `new` (an index definition's column list, expressions
/// and predicate); see [`crate::sqltext::replace_identifier`].
#[pg_extern(
    schema = "migrate_guard",
    name = "_replace_identifier",
    immutable,
    strict,
    parallel_safe
)]
fn replace_identifier(sql: &str, old: &str, new: &str) -> String {
    crate::sqltext::replace_identifier(sql, old, new)
}

procedure::procedure_entry!(
    migrate_guard_backfill_expansion,
    pg_finfo_migrate_guard_backfill_expansion,
    "backfill_expansion",
    call
);

fn call(fcinfo: pg_sys::FunctionCallInfo, spi: &NonAtomic) -> Outcome {
    // SAFETY: the procedure's declared arguments, in order.
    let (id, batch_size, pause, lock_timeout, max_retries) = unsafe {
        use pgrx::fcinfo::pg_getarg;
        (
            pg_getarg::<i64>(fcinfo, 0),
            pg_getarg::<i32>(fcinfo, 1),
            pg_getarg::<Interval>(fcinfo, 2),
            pg_getarg::<Interval>(fcinfo, 3),
            pg_getarg::<i32>(fcinfo, 4),
        )
    };
    // The expansion, and the columns to fill (none, with a NOTICE, for a table rename).
    let columns: Vec<(i32, pg_sys::Oid, String, String)> = privilege::run_as_owner(|| {
        Spi::connect_mut(|c| {
            c.update(
                "SELECT ord, table_oid, set_clause, where_clause FROM migrate_guard._backfill_expansion_columns($1)",
                None,
                &[id.into()],
            )?
            .map(|r| {
                Ok((
                    r.get::<i32>(1)?.unwrap_or_default(),
                    r.get::<pg_sys::Oid>(2)?.unwrap_or(pg_sys::InvalidOid),
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<String>(4)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .unwrap_or_else(|e| error!("migrate_guard: {e}"))
    });
    if columns.is_empty() {
        return Ok(());
    }
    let lock_ok = lock_timeout.as_ref().is_some_and(|l| run::interval_micros(l) >= 1_000);
    if !lock_ok {
        return Err(Failure::new(
            "22023",
            format!(
                "migrate_guard.backfill_expansion: lock_timeout must be at least 1ms, not {}",
                run::interval_text(lock_timeout.as_ref())
            ),
        ));
    }
    let lock_ms = ((run::interval_micros(lock_timeout.as_ref().expect("checked")) + 500) / 1000).to_string();
    spi.commit();
    for (ord, table, set_clause, where_clause) in columns {
        run::run(
            spi,
            &Args {
                table: Some(table),
                set_clause: Some(set_clause),
                where_clause: Some(where_clause),
                batch_size,
                pause,
                lock_timeout,
                max_retries,
                restart: false,
            },
        )?;
        // Prove the new column NOT NULL: its CHECK validated, in a transaction of its own.
        match next_step(id, &lock_ms, Some(ord)) {
            Next::Step => spi.commit(),
            Next::Done => {}
            Next::Pending(f) => {
                spi.commit();
                return Err(f);
            }
        }
    }
    // The foreign keys on the new columns: each added NOT VALID, then validated, one step per
    // transaction, until none is left.
    loop {
        match next_step(id, &lock_ms, None) {
            Next::Step => spi.commit(),
            Next::Done => return Ok(()),
            // The backfill is recorded as done before the error: commit that first.
            Next::Pending(f) => {
                spi.commit();
                return Err(f);
            }
        }
    }
}

enum Next {
    Step,
    Done,
    Pending(Failure),
}

/// Runs the expansion's next step after a backfill (`_backfill_expansion_next`) in the current
/// transaction.
fn next_step(id: Option<i64>, lock_ms: &str, ord: Option<i32>) -> Next {
    let (status, message, detail, hint) = privilege::run_as_owner(|| {
        Spi::connect_mut(|c| {
            let row = c
                .update(
                    "SELECT status, message, detail, hint FROM migrate_guard._backfill_expansion_next($1, $2, $3)",
                    None,
                    &[id.into(), lock_ms.into(), ord.into()],
                )?
                .first();
            Ok::<_, pgrx::spi::Error>((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?,
                row.get::<String>(3)?,
                row.get::<String>(4)?,
            ))
        })
        .unwrap_or_else(|e| error!("migrate_guard: {e}"))
    });
    match status.as_str() {
        "step" => Next::Step,
        "pending" => {
            let mut f = Failure::new("55000", message.unwrap_or_default());
            f.detail = detail;
            f.hint = hint;
            Next::Pending(f)
        }
        _ => Next::Done,
    }
}
