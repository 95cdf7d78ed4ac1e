//! `migrate_guard.check(script)`: a whole migration script judged before it runs, with the rules,
//! facts and policy of the event trigger. The second front end of the data flow (see
//! `../shared/STYLE.md`): the server's raw parser instead of the event trigger, and facts that
//! layer what the script itself does ([`overlay`]) over the live catalog.
//!
//! Nothing is executed and no lock is taken on any user table: the catalog is read the way the
//! guard reads it, and the script's own `SET`s are applied at a GUC nest level of their own that
//! is undone before the function returns. It therefore runs in a read-only transaction and on a
//! hot standby.

pub mod facts;
pub mod plpgsql;
pub use migrate_guard_core::check::{naming, overlay, script, step};

use crate::catalog::{CaughtError, attempt};
use crate::ddl::script::Parsed;
use crate::model::Command;
use crate::policy::{self, AllowSource, Mode};
use crate::rules;
use crate::rules::large_update::{Context, DataChange};
use crate::rules::schema_and_data::{self, HeldLock};
use facts::{LiveCatalog, ScriptFacts};
use overlay::{Overlay, Refusal};
use pgrx::prelude::*;
use std::ffi::CString;
use step::{Call, Ddl, SetOp, Step, TxOp};

/// One row of `check()`'s result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub statement_no: i32,
    pub line: i32,
    pub col: i32,
    pub rule: Option<String>,
    pub verdict: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub statement: String,
    pub end_line: i32,
    pub sqlstate: Option<String>,
}

type RowTuple = (
    i32,
    i32,
    i32,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i32,
    Option<String>,
);

/// `migrate_guard.check(script, assume_populated)`: one row per finding of every statement of
/// `script`, as psql would run it against this database now.
#[pg_extern(schema = "migrate_guard", name = "check", volatile, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn check_script(
    script: Option<&str>,
    assume_populated: default!(Option<bool>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(statement_no, i32),
        name!(line, i32),
        name!(col, i32),
        name!(rule, Option<String>),
        name!(verdict, String),
        name!(message, String),
        name!(detail, Option<String>),
        name!(hint, Option<String>),
        name!(statement, String),
        name!(end_line, i32),
        name!(sqlstate, Option<String>),
    ),
> {
    let Some(script) = script else {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "migrate_guard.check: script must not be NULL",
            "migrate_guard",
        )
        .set_hint("Pass the text of the migration; an empty string checks nothing.")
        .report(PgLogLevel::ERROR);
        unreachable!()
    };
    let rows = run(script, assume_populated);
    TableIterator::new(rows.into_iter().map(|r| -> RowTuple {
        (
            r.statement_no,
            r.line,
            r.col,
            r.rule,
            r.verdict.to_owned(),
            r.message,
            r.detail,
            r.hint,
            r.statement,
            r.end_line,
            r.sqlstate,
        )
    }))
}

/// Statements parsed together (a syntax error anywhere sends the batch back one statement at
/// a time, to find which one).
const BATCH_STATEMENTS: usize = 500;
const BATCH_BYTES: usize = 1 << 20;

/// The longest script `check()` takes, and the most statements: beyond them its memory and
/// time would grow without a bound a caller does not control (a migration is far smaller; split
/// a larger script and check the parts).
pub const MAX_SCRIPT_BYTES: usize = 32 << 20;
pub const MAX_STATEMENTS: usize = 200_000;

fn too_large(what: String) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, what, "migrate_guard")
        .set_hint("Check the script in parts (each migration file on its own).")
        .report(PgLogLevel::ERROR);
    unreachable!()
}

/// Check a script; the session's settings are the same afterwards.
pub fn run(script: &str, assume_populated: Option<bool>) -> Vec<Row> {
    if script.len() > MAX_SCRIPT_BYTES {
        too_large(format!(
            "migrate_guard.check: the script is {} bytes long, more than the {} MB check() takes",
            script.len(),
            MAX_SCRIPT_BYTES >> 20
        ));
    }
    let (sql, _meta) = script::without_meta_commands(script);
    let spans = script::split(&sql);
    if spans.len() > MAX_STATEMENTS {
        too_large(format!(
            "migrate_guard.check: the script has {} statements, more than the {MAX_STATEMENTS} check() takes",
            spans.len()
        ));
    }
    // SAFETY: a new GUC nest level, undone below (or by the transaction's abort on an ERROR);
    // a memory context of our own, deleted below (or with its parent).
    let (level, memory, caller) = unsafe {
        let memory = pg_sys::AllocSetContextCreateExtended(
            pg_sys::CurrentMemoryContext,
            c"migrate_guard check".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        (pg_sys::NewGUCNestLevel(), memory, pg_sys::MemoryContextSwitchTo(memory))
    };
    let mut run = Run {
        sql: &sql,
        lines: script::Lines::new(&sql),
        overlay: Overlay::new(),
        block: None,
        rows: Vec::new(),
        statement_no: 0,
        assume_populated,
        migration_name: None,
        seeded: false,
        body_depth: 0,
        calling: Vec::new(),
        body_statements: 0,
        body_bytes: 0,
    };
    let mut start = 0;
    while start < spans.len() {
        let mut end = start + 1;
        while end < spans.len() && end - start < BATCH_STATEMENTS && spans[end].1 - spans[start].0 < BATCH_BYTES {
            end += 1;
        }
        run.batch(&spans[start..end]);
        // SAFETY: nothing allocated in the context is used after the batch.
        unsafe { pg_sys::MemoryContextReset(memory) };
        start = end;
    }
    // SAFETY: restores every setting the script changed, then frees the batch memory.
    unsafe {
        pg_sys::AtEOXact_GUC(false, level);
        pg_sys::MemoryContextSwitchTo(caller);
        pg_sys::MemoryContextDelete(memory);
    }
    run.rows
}

struct Run<'a> {
    /// The script with psql's meta-commands blanked out.
    sql: &'a str,
    lines: script::Lines<'a>,
    overlay: Overlay,
    block: Option<Block>,
    rows: Vec<Row>,
    statement_no: i32,
    assume_populated: Option<bool>,
    /// The name given to `begin_migration` in the script.
    migration_name: Option<String>,
    /// The script's first block took the running transaction's state (later ones start empty:
    /// the first COMMIT ended that transaction).
    seeded: bool,
    /// How many DO / procedure bodies the statement being judged is nested in.
    body_depth: usize,
    /// The procedures whose bodies are being followed (a recursive CALL is not followed again).
    calling: Vec<String>,
    /// Statements of bodies followed so far: a script whose procedures call each other many
    /// times over stops being followed at BODY_STATEMENTS.
    body_statements: usize,
    /// Bytes of bodies read so far (at most BODY_BYTES).
    body_bytes: usize,
}

/// The most statements of DO blocks and procedure bodies one check() follows.
const BODY_STATEMENTS: usize = 100_000;
/// The most bytes of DO blocks and procedure bodies one check() reads.
const BODY_BYTES: usize = 32 << 20;

/// An open transaction block: its GUC nest level, the overlay as it was at BEGIN, and the
/// session-level SETs run in it (which outlive the block if it commits).
///
/// PostgreSQL undoes `SET LOCAL` only when the top-level transaction ends; inside this function
/// the block is a nest level above the caller's transaction, where a commit would keep them.
/// So a COMMIT here undoes the whole level and replays the block's plain SETs.
struct Block {
    level: i32,
    saved: Overlay,
    savepoints: Vec<Savepoint>,
    session_sets: Vec<(String, Option<String>)>,
    /// What the block has done that the data-change rules read.
    data: DataTx,
}

/// A transaction block's DDL and data changes, for `large-update` and `schema-and-data`.
#[derive(Default, Clone)]
struct DataTx {
    /// The command tag of its first DDL statement.
    ddl: Option<String>,
    /// Strong locks its DDL takes on populated tables other sessions use.
    held: Vec<HeldLock>,
    /// Rows its data changes are estimated to change, per table.
    rows: Vec<(String, i64)>,
    /// `schema-and-data` was allowed or warned about in it.
    mixed_accepted: bool,
}

struct Savepoint {
    name: String,
    level: i32,
    saved: Overlay,
    /// How many of the block's session-level SETs came before the savepoint.
    session_sets: usize,
    /// The block's data-change state at the savepoint.
    data: DataTx,
}

/// Where a statement is and what it says, for its rows.
struct Here {
    no: i32,
    line: i32,
    col: i32,
    end_line: i32,
    /// The statement as written (for a statement of a DO block or a procedure, that statement).
    text: String,
    /// The text the live event trigger reads directives from: the top-level statement the client
    /// sent (for a statement of a DO block, the whole block). The utility and executor hooks read
    /// them from `text`, the statement PL/pgSQL sends.
    client: std::rc::Rc<str>,
    /// Inside a condition of a body: it may not run (PostgreSQL's refusals are not reported).
    conditional: bool,
}

impl Here {
    fn row(&self, verdict: &'static str, rule: Option<String>, message: String) -> Row {
        Row {
            statement_no: self.no,
            line: self.line,
            col: self.col,
            rule,
            verdict,
            message,
            detail: None,
            hint: None,
            statement: self.text.clone(),
            end_line: self.end_line,
            sqlstate: None,
        }
    }

    fn error(&self, sqlstate: &str, message: String) -> Row {
        Row {
            sqlstate: Some(sqlstate.to_owned()),
            ..self.row("error", None, message)
        }
    }
}

impl Run<'_> {
    fn batch(&mut self, spans: &[(usize, usize)]) {
        let (from, to) = (spans[0].0, spans[spans.len() - 1].1);
        let text = CString::new(&self.sql[from..to]).expect("text values hold no NUL");
        // SAFETY: parses in the batch's memory context.
        if let Ok(parsed) = attempt(|| unsafe { crate::ddl::script::parse(&text) }) {
            let mut by_span: Vec<Vec<Parsed>> = (0..spans.len()).map(|_| Vec::new()).collect();
            for p in parsed {
                let at = from + p.location;
                let i = spans.partition_point(|s| s.0 <= at).saturating_sub(1);
                by_span[i].push(p);
            }
            for (span, parsed) in spans.iter().zip(by_span) {
                for p in parsed {
                    self.statement(*span, p);
                }
            }
            return;
        }
        for &(from, to) in spans {
            let text = CString::new(&self.sql[from..to]).expect("text values hold no NUL");
            // SAFETY: as above.
            match attempt(|| unsafe { crate::ddl::script::parse(&text) }) {
                Ok(parsed) => {
                    for p in parsed {
                        self.statement((from, to), p);
                    }
                }
                Err(e) => self.syntax_error((from, to), e),
            }
        }
    }

    fn here(&mut self, (from, to): (usize, usize)) -> Here {
        self.statement_no += 1;
        let start = script::first_token(self.sql, from, to);
        let (line, col) = self.lines.line_col(start);
        let (end_line, _) = self.lines.line_col(to);
        let text = script::client_text(self.sql, from, to).to_owned();
        Here {
            no: self.statement_no,
            line: line as i32,
            col: col as i32,
            end_line: end_line as i32,
            client: text.as_str().into(),
            text,
            conditional: false,
        }
    }

    fn syntax_error(&mut self, span: (usize, usize), e: CaughtError) {
        let mut here = self.here(span);
        let chunk = &self.sql[span.0..span.1];
        if e.position > 0 {
            let at = chunk
                .char_indices()
                .nth(e.position as usize - 1)
                .map_or(chunk.len(), |(b, _)| b);
            let (line, col) = self.lines.line_col(span.0 + at);
            (here.line, here.col) = (line as i32, col as i32);
        }
        let hint = e.hint.or_else(|| {
            script::has_psql_variable(chunk).then(|| {
                "check() does not expand psql variables (:name, :'name'); give it the script as psql sends it, \
                 with the values written in."
                    .to_owned()
            })
        });
        self.rows.push(Row {
            detail: e.detail,
            hint,
            ..here.error(&e.sqlstate, e.message)
        });
    }

    fn statement(&mut self, span: (usize, usize), parsed: Parsed) {
        pg_sys::check_for_interrupts!();
        let here = self.here(span);
        if self.block.is_none() {
            // Autocommit: every statement is a transaction of its own.
            self.overlay.tx += 1;
        }
        self.step(&here, span, parsed.step, 0, false);
    }

    /// What one statement does: a top-level one (`depth` 0), or one that a DO block or a
    /// procedure the script calls runs (`depth` counts the bodies it is nested in; `atomic`: that
    /// body cannot commit).
    fn step(&mut self, here: &Here, span: (usize, usize), step: Step, depth: usize, atomic: bool) {
        // A DO or CALL written at the top level may commit unless it runs in a transaction block;
        // one a body runs inherits the body's.
        let atomic = if depth == 0 { self.block.is_some() } else { atomic };
        match step {
            Step::Ddl(d) => self.ddl(here, *d),
            Step::Transaction(op) if depth > 0 => {
                // PL/pgSQL refuses transaction commands sent as SQL (EXECUTE 'COMMIT'), SQL
                // functions refuse them all.
                let _ = op;
                self.rows.push(here.error(
                    "0A000",
                    "unsupported transaction command inside a DO block or procedure".to_owned(),
                ));
            }
            Step::Transaction(op) => self.transaction(here, op),
            Step::Set(op) => self.set(here, op),
            Step::Calls(calls) => self.calls(here, calls),
            Step::Data { op, table } => self.data(here, op, &table),
            Step::Fill(r) => {
                let path = facts::search_path();
                if let Some(oid) = self.overlay.resolve(&r, &path, &LiveCatalog) {
                    self.overlay.fill(oid);
                }
            }
            Step::Do { language, source } => {
                if language.eq_ignore_ascii_case("sql") {
                    self.rows.push(here.error(
                        "0A000",
                        "language \"sql\" does not support inline code execution".to_owned(),
                    ));
                    return;
                }
                let routine = step::Routine {
                    schema: None,
                    language,
                    source,
                    procedure: true,
                    atomic: false,
                };
                self.body(here, span, "the DO block", &routine, depth, atomic);
            }
            Step::Call { schema, name } => {
                let what = format!("procedure {name}");
                // A procedure the script created under that name, else the catalog's.
                let routine = self
                    .overlay
                    .routine(schema.as_deref(), &name, true)
                    .cloned()
                    .or_else(|| catalog_procedure(schema.as_deref(), &name));
                let key = format!("{}.{name}", schema.as_deref().unwrap_or(""));
                match routine {
                    Some(_) if self.calling.iter().any(|c| c.ends_with(&format!(".{name}"))) => self.unknown(
                        here,
                        format!("CALL {name}: a recursive call of a procedure whose body is being followed"),
                    ),
                    Some(r) => {
                        self.calling.push(key);
                        // SECURITY DEFINER and SET procedures cannot commit.
                        let atomic = atomic || r.atomic;
                        self.body(here, span, &what, &r, depth, atomic);
                        self.calling.pop();
                    }
                    None => self.unknown(
                        here,
                        format!(
                            "CALL {name}: check() did not find the procedure's body (not created by the script, \
                             or not one procedure in PL/pgSQL or SQL on the search path); it may run DDL, and \
                             commit between statements"
                        ),
                    ),
                }
            }
            Step::NotInBlock(what) => {
                if self.block.is_some() {
                    self.rows.push(not_in_block(here, &what));
                }
            }
            Step::Other => {}
        }
    }

    /// An `unknown` row: what check() cannot judge, and why.
    fn unknown(&mut self, here: &Here, reason: String) {
        if crate::guard::active_mode().is_some() {
            let message = format!("migrate_guard: out of check()'s reach: {reason}");
            self.rows.push(here.row("unknown", None, message));
        }
    }

    /// The statements a DO block or a called procedure runs, judged in order as one transaction
    /// (the statement's own, outside a block) that its COMMITs and ROLLBACKs end and begin again
    /// unless the body is `atomic`. Bodies in PL/pgSQL ([`plpgsql::read`]) and SQL are read; a
    /// string EXECUTE builds at run time, and other languages, are out of reach.
    fn body(
        &mut self,
        here: &Here,
        span: (usize, usize),
        what: &str,
        routine: &step::Routine,
        depth: usize,
        atomic: bool,
    ) {
        const MAX_DEPTH: usize = 8;
        if depth >= MAX_DEPTH {
            return self.unknown(
                here,
                format!("{what}: bodies nested more than {MAX_DEPTH} deep are not followed"),
            );
        }
        // What one script may make check() read of bodies (its own and the catalog's), so that
        // procedures calling each other cannot make it work or allocate without bound.
        self.body_bytes += routine.source.len();
        if self.body_bytes > BODY_BYTES {
            return self.unknown(
                here,
                format!(
                    "{what}: check() reads at most {} MB of bodies per script",
                    BODY_BYTES >> 20
                ),
            );
        }
        let sql_body = routine.language.eq_ignore_ascii_case("sql");
        let statements: Vec<plpgsql::Statement> = match routine.language.to_ascii_lowercase().as_str() {
            "plpgsql" => plpgsql::read(&routine.source),
            "sql" => script::split(&routine.source)
                .into_iter()
                .map(|(from, to)| {
                    let offset = script::first_token(&routine.source, from, to);
                    let text = routine.source[offset..to].trim_end().to_owned();
                    plpgsql::Statement {
                        offset,
                        action: plpgsql::Action::Sql(text.clone()),
                        text,
                        conditional: false,
                        in_loop: false,
                    }
                })
                .collect(),
            other => {
                return self.unknown(
                    here,
                    format!("{what} is in language {other}: check() reads only PL/pgSQL and SQL bodies"),
                );
            }
        };
        // Where the body is in the script, for the rows of its statements (a procedure from the
        // catalog, or a body with quotes doubled, is placed at the statement that runs it).
        let at = (!routine.source.is_empty())
            .then(|| self.sql[span.0..span.1].find(routine.source.as_str()))
            .flatten()
            .map(|i| span.0 + i);
        let began = self.block.is_none();
        if began {
            self.begin();
        }
        self.body_depth += 1;
        for s in statements {
            pg_sys::check_for_interrupts!();
            self.body_statements += 1;
            if self.body_statements > BODY_STATEMENTS {
                self.unknown(
                    here,
                    format!("{what}: check() follows at most {BODY_STATEMENTS} statements of bodies per script"),
                );
                break;
            }
            // The row shows the SQL that runs (an EXECUTE's string, without PL/pgSQL's INTO).
            let text = match &s.action {
                plpgsql::Action::Sql(t) | plpgsql::Action::Execute(t) => t.clone(),
                _ => s.text.clone(),
            };
            let (line, col, end_line) = match at {
                Some(at) => {
                    let (line, col) = self.lines.line_col(at + s.offset);
                    let (end_line, _) = self.lines.line_col(at + s.offset + s.text.len());
                    (line as i32, col as i32, end_line as i32)
                }
                None => (here.line, here.col, here.end_line),
            };
            let inner = Here {
                no: here.no,
                line,
                col,
                end_line,
                text,
                client: here.client.clone(),
                conditional: here.conditional || s.conditional,
            };
            let conditional = s.conditional;
            match s.action {
                plpgsql::Action::Sql(text) => self.inner_sql(&inner, span, what, &text, depth, atomic || sql_body),
                plpgsql::Action::Execute(text) => self.inner_sql(&inner, span, what, &text, depth, true),
                plpgsql::Action::Dynamic => self.unknown(
                    &inner,
                    format!(
                        "{what} runs a statement EXECUTE builds when it runs: check() cannot read it (the live \
                         guard judges each statement as it runs)"
                    ),
                ),
                plpgsql::Action::Commit { .. } | plpgsql::Action::Rollback { .. } => {
                    if atomic || !routine.procedure {
                        self.rows
                            .push(inner.error("2D000", "invalid transaction termination".to_owned()));
                        continue;
                    }
                    if conditional {
                        // Whether the transaction ends here is decided when the body runs.
                        self.unknown(
                            &inner,
                            format!("{what} ends its transaction only under a condition: check() judges what follows as if it did not"),
                        );
                        continue;
                    }
                    let op = match s.action {
                        plpgsql::Action::Commit { .. } => TxOp::Commit { chain: false },
                        _ => TxOp::Rollback { chain: false },
                    };
                    self.transaction(&inner, op);
                    self.begin();
                }
                plpgsql::Action::Unreadable(reason) => self.unknown(
                    &inner,
                    format!("{what}: check() could not read this part of the body: {reason}"),
                ),
            }
        }
        self.body_depth -= 1;
        if began && self.block.is_some() {
            self.transaction(here, TxOp::Commit { chain: false });
        }
    }

    /// One SQL statement of a body (or the statements of a constant EXECUTE string), parsed and
    /// judged in a memory context of its own.
    fn inner_sql(&mut self, here: &Here, span: (usize, usize), what: &str, text: &str, depth: usize, atomic: bool) {
        let Ok(c) = CString::new(text) else { return };
        // SAFETY: a child of the batch's context, made current for the parse and the judging
        // (which keep nothing in it: steps are Rust values) and deleted after.
        let (memory, caller) = unsafe {
            let memory = pg_sys::AllocSetContextCreateExtended(
                pg_sys::CurrentMemoryContext,
                c"migrate_guard check body".as_ptr(),
                pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            );
            (memory, pg_sys::MemoryContextSwitchTo(memory))
        };
        // SAFETY: parses in that context.
        match attempt(|| unsafe { crate::ddl::script::parse(&c) }) {
            Ok(parsed) => {
                for p in parsed {
                    pg_sys::check_for_interrupts!();
                    self.step(here, span, p.step, depth + 1, atomic);
                }
            }
            Err(e) => self.unknown(
                here,
                format!(
                    "{what}: check() could not read this statement of the body: {}",
                    e.message
                ),
            ),
        }
        // SAFETY: back to the caller's context; nothing allocated in `memory` is used after.
        unsafe {
            pg_sys::MemoryContextSwitchTo(caller);
            pg_sys::MemoryContextDelete(memory);
        }
    }

    fn ddl(&mut self, here: &Here, mut d: Ddl) {
        // LOCK outside a transaction block: the utility hook judges it first (explicit-lock in a
        // migration), then PostgreSQL refuses it (RequireTransactionBlock) if it got that far.
        let lock_outside = matches!(d.stmt.command, Command::Lock(_)) && self.block.is_none();
        let rows_before = self.rows.len();
        let path = facts::search_path();
        let assume = self
            .assume_populated
            .unwrap_or_else(|| crate::gucs::ASSUME_POPULATED.get());
        let facts = ScriptFacts::new(&self.overlay, &path, assume);
        let mut held_now: Vec<(u32, crate::model::LockMode)> = Vec::new();
        // What the live utility hook judges (see utility.rs): not a statement PostgreSQL refuses
        // in a block, TRUNCATE and LOCK only in a migration or a block that ran DDL; and none of
        // them makes the block one that ran DDL.
        let hooked = match &d.stmt.command {
            Command::Rewrite(_) | Command::Truncate(_) | Command::Lock(_) => true,
            Command::Reindex(_) => !crate::server::compat::reindex_fires_event_triggers(),
            _ => false,
        };
        let in_migration = self
            .overlay
            .in_migration
            .unwrap_or_else(|| crate::migrations::current_migration_id().is_some());
        let judged = !hooked
            || match &d.stmt.command {
                _ if d.not_in_block.is_some() && self.block.is_some() => false,
                // A LOCK is judged at the top level only (utility.rs): inside a body it is that
                // function's own way of working.
                Command::Lock(_) if self.body_depth > 0 => false,
                Command::Truncate(_) | Command::Lock(_) => {
                    in_migration || self.block.as_ref().is_some_and(|b| b.data.ddl.is_some())
                }
                _ => true,
            };
        if judged
            && let Some(mode) = crate::guard::active_mode()
            && !crate::locks::only_temporary(&d.stmt, &facts)
            && (!matches!(d.stmt.command, Command::Other) || crate::facts::Facts::session(&facts).require_migration)
        {
            d.stmt.text = Some(here.text.clone());
            script_bound_scans(&self.overlay, &mut d, &path);
            script_function_defaults(&self.overlay, &mut d);
            // Every strong lock this statement takes is held to the end of the block, for the
            // statements after it (see rules::earlier_lock).
            if self.block.is_some() {
                held_now = crate::locks::strong_table_locks(&d.stmt, &facts)
                    .into_iter()
                    .map(|(m, r)| (r.oid, m))
                    .collect();
            }
            let mut extra = Vec::new();
            let strong = crate::locks::strongest_populated(&crate::locks::strong_table_locks(&d.stmt, &facts), &facts)
                .map(|(m, r)| (m, format!("{} {}", r.kind.noun(), r.display)));
            if let (Some((lock, relation)), Some(b)) = (&strong, &self.block)
                && !b.data.mixed_accepted
            {
                schema_and_data::before_ddl(
                    &d.stmt.tag,
                    *lock,
                    relation,
                    &b.data.rows,
                    crate::gucs::max_rows(),
                    &mut extra,
                );
            }
            // The event trigger reads directives from the statement the client sent (a whole DO
            // block); the utility hook from the statement it runs.
            let directives = if hooked { here.text.as_str() } else { &*here.client };
            let rows = judge(here, directives, &d.stmt, &facts, mode, extra);
            if let Some(data) = self.record(rows) {
                if !hooked {
                    data.ddl.get_or_insert_with(|| d.stmt.tag.clone());
                }
                if let Some((mode, relation)) = strong {
                    data.held.push(HeldLock::new(mode, relation, &d.stmt.tag, &here.text));
                }
            }
        } else if let Some(b) = self.block.as_mut()
            && !hooked
            && !crate::locks::only_temporary(&d.stmt, &facts)
        {
            b.data.ddl.get_or_insert_with(|| d.stmt.tag.clone());
        }
        if let (Some(what), Some(_)) = (d.not_in_block, &self.block) {
            self.rows.push(not_in_block(here, what));
        }
        for (oid, m) in held_now {
            self.overlay.hold(oid, m);
        }
        if lock_outside {
            if !self.rows[rows_before..].iter().any(|r| r.verdict == "block") {
                self.rows
                    .push(here.error("25P01", "LOCK TABLE can only be used in transaction blocks".to_owned()));
            }
            return;
        }
        if let Err(Refusal { sqlstate, message }) = self.overlay.apply(&d, &path, &LiveCatalog)
            && !here.conditional
        {
            self.rows.push(here.error(sqlstate, message));
        }
    }

    /// An UPDATE, DELETE or INSERT: `large-update` inside a migration or a block that has run
    /// DDL, `schema-and-data` under a strong lock the block's DDL took; with the planner's
    /// estimate where the table exists (INSERTs count for nothing: their rows are not estimated).
    fn data(&mut self, here: &Here, op: &'static str, table: &crate::model::RelRef) {
        let path = facts::search_path();
        if op == "INSERT"
            && let Some(oid) = self.overlay.resolve(table, &path, &LiveCatalog)
        {
            self.overlay.fill(oid);
        }
        let Some(mode) = crate::guard::active_mode() else {
            return;
        };
        let in_migration = self
            .overlay
            .in_migration
            .unwrap_or_else(|| crate::migrations::current_migration_id().is_some());
        let held = self.block.as_ref().and_then(|b| {
            let d = &b.data;
            (!d.mixed_accepted)
                .then(|| d.held.iter().max_by_key(|h| h.mode).cloned())
                .flatten()
        });
        let in_ddl_tx = self.block.as_ref().and_then(|b| b.data.ddl.clone());
        // Outside a block a statement is a transaction of its own: nothing to judge it with,
        // nothing to remember. In a block its rows count for a strong lock taken later.
        if !in_migration && self.block.is_none() {
            return;
        }
        let assume = self
            .assume_populated
            .unwrap_or_else(|| crate::gucs::ASSUME_POPULATED.get());
        let facts = ScriptFacts::new(&self.overlay, &path, assume);
        let Some(rel) = crate::facts::Facts::relation(&facts, table) else {
            return;
        };
        if rel.temp {
            return;
        }
        let Some((estimate, note)) = estimate(op, &rel, &here.text, &facts) else {
            return;
        };
        if note.is_some() && self.body_depth > 0 {
            // A statement of a body that does not plan on its own may name the block's
            // variables: the table's size says nothing of the rows it changes.
            if !(in_migration || held.is_some() || in_ddl_tx.is_some()) {
                return;
            }
            return self.unknown(
                here,
                format!(
                    "{op} of {}: check() cannot estimate its rows without the values of the block's variables",
                    rel.display
                ),
            );
        }
        let change = DataChange {
            op,
            table: &rel.display,
            estimate,
            estimate_note: note,
            text: Some(&here.text),
        };
        let max = crate::gucs::max_rows();
        let mut findings = Vec::new();
        if let Some(held) = &held {
            let rows = &self.block.as_ref().expect("a lock is held in a block").data.rows;
            schema_and_data::during(&change, held, rows, None, max, &mut findings);
        }
        if rel.existing() {
            let context = if in_migration {
                Some(Context::Migration(self.migration_name.clone().unwrap_or_else(|| {
                    crate::migrations::current_migration_id().map_or_else(String::new, |id| id.to_string())
                })))
            } else {
                in_ddl_tx.map(Context::DdlTransaction)
            };
            crate::rules::large_update::check(&change, context.as_ref(), max, &mut findings);
        }
        // The executor hook reads directives from the statement it runs.
        let rows = judge_findings(here, &here.text, findings, mode);
        if let Some(data) = self.record(rows) {
            match data.rows.iter_mut().find(|(t, _)| *t == rel.display) {
                Some((_, n)) => *n += estimate,
                None => data.rows.push((rel.display.clone(), estimate)),
            }
        }
    }

    /// Keep a statement's rows; when it runs (nothing blocks it) inside a block, the block's
    /// data-change state, to update, with `schema-and-data` marked accepted if it was let through.
    fn record(&mut self, rows: Vec<Row>) -> Option<&mut DataTx> {
        let runs = !rows.iter().any(|r| r.verdict == "block" || r.verdict == "error");
        let mixed = rows.iter().any(|r| r.rule.as_deref() == Some("schema-and-data"));
        self.rows.extend(rows);
        let data = &mut self.block.as_mut().filter(|_| runs)?.data;
        data.mixed_accepted |= mixed;
        Some(data)
    }

    fn begin(&mut self) {
        self.overlay.tx += 1;
        self.block = Some(Block {
            // SAFETY: undone at COMMIT / ROLLBACK, or with the function's own level.
            level: unsafe { pg_sys::NewGUCNestLevel() },
            saved: self.overlay.clone(),
            savepoints: Vec::new(),
            session_sets: Vec::new(),
            data: if std::mem::replace(&mut self.seeded, true) {
                DataTx::default()
            } else {
                self.overlay.live_tx = Some(self.overlay.tx);
                running_data()
            },
        });
    }

    fn transaction(&mut self, here: &Here, op: TxOp) {
        // SAFETY (every AtEOXact_GUC below): pops nest levels this function pushed, innermost
        // first, as a transaction or subtransaction end would.
        match op {
            TxOp::Begin => {
                // Inside a block PostgreSQL only warns.
                if self.block.is_none() {
                    self.begin();
                }
            }
            TxOp::Commit { chain } | TxOp::Rollback { chain } => {
                let Some(b) = self.block.take() else { return };
                unsafe { pg_sys::AtEOXact_GUC(false, b.level) };
                if matches!(op, TxOp::Commit { .. }) {
                    replay(&b.session_sets);
                } else {
                    self.overlay = b.saved;
                }
                if chain {
                    self.begin();
                }
            }
            TxOp::Prepare => {
                // Settings stay (as at commit); the schema changes wait for COMMIT PREPARED.
                let Some(b) = self.block.take() else { return };
                unsafe { pg_sys::AtEOXact_GUC(false, b.level) };
                replay(&b.session_sets);
                self.overlay = b.saved;
            }
            TxOp::Savepoint(name) => match self.block.as_mut() {
                Some(b) => b.savepoints.push(Savepoint {
                    name,
                    // SAFETY: as in begin().
                    level: unsafe { pg_sys::NewGUCNestLevel() },
                    saved: self.overlay.clone(),
                    session_sets: b.session_sets.len(),
                    data: b.data.clone(),
                }),
                None => self
                    .rows
                    .push(here.error("25P01", "SAVEPOINT can only be used in transaction blocks".into())),
            },
            TxOp::Release(ref name) | TxOp::RollbackTo(ref name) => {
                let release = matches!(op, TxOp::Release(_));
                let Some(b) = self.block.as_mut() else {
                    let what = if release {
                        "RELEASE SAVEPOINT"
                    } else {
                        "ROLLBACK TO SAVEPOINT"
                    };
                    self.rows
                        .push(here.error("25P01", format!("{what} can only be used in transaction blocks")));
                    return;
                };
                let Some(i) = b.savepoints.iter().rposition(|s| s.name == *name) else {
                    self.rows
                        .push(here.error("3B001", format!("savepoint \"{name}\" does not exist")));
                    return;
                };
                unsafe { pg_sys::AtEOXact_GUC(release, b.savepoints[i].level) };
                if release {
                    b.savepoints.truncate(i);
                } else {
                    b.savepoints.truncate(i + 1);
                    b.session_sets.truncate(b.savepoints[i].session_sets);
                    self.overlay = b.savepoints[i].saved.clone();
                    b.data = b.savepoints[i].data.clone();
                    // SAFETY: as in begin(); the savepoint stays, with a fresh level.
                    b.savepoints[i].level = unsafe { pg_sys::NewGUCNestLevel() };
                }
            }
        }
    }

    fn set(&mut self, here: &Here, op: SetOp) {
        match op {
            SetOp::Value { name, value, local } => self.setting(here, &name, value.as_deref(), local),
            SetOp::ResetAll => {
                for name in FOLLOWED_SETTINGS {
                    self.setting(here, name, None, false);
                }
                for name in crate::gucs::VERDICT_SETTINGS {
                    self.setting(here, name, None, false);
                }
            }
        }
    }

    /// Apply a setting the checked statements depend on; others are not followed.
    fn setting(&mut self, here: &Here, name: &str, value: Option<&str>, local: bool) {
        if !followed(name) || (local && self.block.is_none()) {
            // SET LOCAL outside a transaction block has no effect (PostgreSQL warns).
            return;
        }
        match apply_setting(name, value, local) {
            Ok(()) => {
                if let Some(b) = self.block.as_mut().filter(|_| !local) {
                    b.session_sets.push((name.to_owned(), value.map(str::to_owned)));
                }
            }
            Err(e) => self.rows.push(Row {
                detail: e.detail,
                hint: e.hint,
                ..here.error(&e.sqlstate, e.message)
            }),
        }
    }

    fn calls(&mut self, here: &Here, calls: Vec<Call>) {
        for c in calls {
            if c.schema
                .as_deref()
                .is_some_and(|s| s != "migrate_guard" && s != "pg_catalog")
            {
                continue;
            }
            match (c.function.as_str(), c.args.as_slice()) {
                ("begin_migration", args) => {
                    self.overlay.in_migration = Some(true);
                    self.migration_name = args.first().cloned().flatten();
                }
                ("end_migration", _) => self.overlay.in_migration = Some(false),
                ("set_config", [Some(name), Some(value), Some(local)]) => {
                    let local = matches!(local.to_ascii_lowercase().as_str(), "t" | "true" | "on" | "yes" | "1");
                    self.setting(here, &name.to_ascii_lowercase(), Some(value), local);
                }
                _ => {}
            }
        }
    }
}

/// Settings `check()` applies when the script sets them: name resolution, the guard's own
/// settings, the two a dump restore turns off (the guard stays out of a restore's way), and the
/// time zone (a timestamp <-> timestamptz change rewrites nothing only in UTC).
const FOLLOWED_SETTINGS: [&str; 5] = [
    "search_path",
    "lock_timeout",
    "row_security",
    "check_function_bodies",
    "timezone",
];

/// The settings above, and every `migrate_guard.*` name (a misspelt one is PostgreSQL's error
/// from 15 on, as when the script runs) except the one `begin_migration` keeps.
fn followed(name: &str) -> bool {
    FOLLOWED_SETTINGS.contains(&name)
        || (name.starts_with("migrate_guard.") && name != "migrate_guard.current_migration")
}

fn apply_setting(name: &str, value: Option<&str>, local: bool) -> Result<(), CaughtError> {
    let name = CString::new(name).expect("setting names hold no NUL");
    let value = value.map(|v| CString::new(v).expect("text values hold no NUL"));
    attempt(|| {
        // SAFETY: what SET does (ExecSetVariableStmt), at the current nest level; errors are
        // raised at ERROR and caught by `attempt`.
        unsafe {
            let context = if pg_sys::superuser() {
                pg_sys::GucContext::PGC_SUSET
            } else {
                pg_sys::GucContext::PGC_USERSET
            };
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
                context,
                pg_sys::GucSource::PGC_S_SESSION,
                if local {
                    pg_sys::GucAction::GUC_ACTION_LOCAL
                } else {
                    pg_sys::GucAction::GUC_ACTION_SET
                },
                true,
                0,
                false,
            );
        }
    })
}

/// Apply again, at the level below a block that committed, the plain SETs run in it (they
/// succeeded once, so they succeed again).
fn replay(sets: &[(String, Option<String>)]) {
    for (name, value) in sets {
        let _ = apply_setting(name, value.as_deref(), false);
    }
}

fn not_in_block(here: &Here, what: &str) -> Row {
    here.error("25001", format!("{what} cannot run inside a transaction block"))
}

/// The guard's verdict on one statement, one row per finding.
fn judge(
    here: &Here,
    directives: &str,
    stmt: &crate::model::Statement,
    facts: &ScriptFacts,
    mode: Mode,
    extra: Vec<rules::Finding>,
) -> Vec<Row> {
    let mut findings = rules::evaluate(stmt, facts);
    findings.extend(extra);
    judge_findings(here, directives, findings, mode)
}

/// The guard's verdict on a statement's findings, one row per finding.
fn judge_findings(here: &Here, text: &str, findings: Vec<rules::Finding>, mode: Mode) -> Vec<Row> {
    let unknown = |bad: &str, place: &str| {
        let (message, hint) = crate::guard::unknown_rule_text(bad, place);
        vec![Row {
            hint: Some(hint),
            ..here.error("22023", message)
        }]
    };
    let directive = match crate::guard::directives(text) {
        Ok(d) => d,
        Err(bad) => return unknown(&bad, crate::guard::DIRECTIVE_PLACE),
    };
    if findings.is_empty() {
        return vec![];
    }
    let setting = match crate::gucs::allow_list() {
        Ok(s) => s,
        Err(bad) => return unknown(&bad, "migrate_guard.allow"),
    };
    let verdict = policy::decide(findings, mode, &setting, &directive);
    let mut rows = Vec::new();
    for (f, verdict_name, sqlstate, mode) in verdict
        .blocked
        .iter()
        .map(|f| (f, "block", "MG001", Mode::Enforce))
        .chain(verdict.warned.iter().map(|f| (f, "warn", "01000", Mode::Warn)))
    {
        let (message, detail, hint) = policy::render(f, &[], mode);
        rows.push(Row {
            detail: Some(detail),
            hint: Some(hint),
            sqlstate: Some(sqlstate.to_owned()),
            ..here.row(verdict_name, Some(f.rule.id().to_owned()), message)
        });
    }
    for (f, source) in &verdict.allowed {
        let by = match source {
            AllowSource::Setting => "migrate_guard.allow",
            AllowSource::Directive => "a migrate_guard:allow comment",
            AllowSource::Expansion => "an expansion step",
            AllowSource::Extension => "being another extension's own working objects",
            AllowSource::Usage => "usage evidence",
        };
        rows.push(Row {
            detail: Some(
                f.unused
                    .clone()
                    .filter(|_| *source == AllowSource::Usage)
                    .unwrap_or_else(|| f.detail.clone()),
            ),
            hint: Some(format!("{} Allowed by {by}.", f.safe_way)),
            ..here.row(
                "allowed",
                Some(f.rule.id().to_owned()),
                format!("migrate_guard: {}: {}", f.rule.id(), f.message),
            )
        });
    }
    rows
}

/// The rows an UPDATE or DELETE of `rel` would change: the planner's estimate for the rows it
/// selects (`SELECT 1 FROM <its table and FROM / USING list> WHERE <its condition>`, planned,
/// never run: an ACCESS SHARE lock, taken only if it is free), or else the table's own row
/// estimate, said so. `None` for an INSERT, a table the script creates, or a statement whose
/// parts cannot be found.
fn estimate(op: &str, rel: &crate::facts::Rel, text: &str, facts: &ScriptFacts) -> Option<(i64, Option<&'static str>)> {
    if op == "INSERT" || crate::check::overlay::is_script_oid(rel.oid) {
        return None;
    }
    use crate::rules::large_update::{Selecting, selecting_query};
    let table_rows = || crate::facts::Facts::with_storage(facts, rel.clone()).storage().est_rows;
    let (select, joined) = match selecting_query(text) {
        Selecting::Query { sql, joined } => (sql, joined),
        Selecting::CurrentRow => return Some((1, None)),
        Selecting::Unknown => return None,
    };
    if let Some(rows) = plan_rows(rel.oid, &select) {
        // A join (FROM, USING) can estimate more rows than the table has; each is changed once.
        let rows = match table_rows() {
            Some(t) if joined && t > 0 => rows.min(t),
            _ => rows,
        };
        return Some((rows, None));
    }
    Some((
        table_rows()?,
        Some("the table's row estimate: check() could not plan the statement's own rows"),
    ))
}

/// `EXPLAIN (FORMAT JSON) <select>`'s top row estimate, when the caller may read every table it
/// names, it calls only PostgreSQL's own functions, the table's ACCESS SHARE lock is free, and
/// the query plans.
///
/// `select` comes from the script (its condition and FROM list), and planning runs code: the
/// planner evaluates immutable functions with constant arguments, and stable ones to estimate a
/// condition's selectivity, with the rights of whoever calls check(). So it is planned only when
/// every function and operator it reaches (views expanded) is built in, and only after the
/// caller's SELECT privileges are checked: a table the caller may not read is neither planned
/// nor locked.
fn plan_rows(relid: u32, select: &str) -> Option<i64> {
    if !plannable(relid, select) {
        return None;
    }
    // SAFETY: a conditional lock request; held to the end of the caller's transaction.
    let locked = unsafe {
        pg_sys::ConditionalLockRelationOid(pg_sys::Oid::from(relid), pg_sys::AccessShareLock as pg_sys::LOCKMODE)
    };
    if !locked {
        return None;
    }
    let explain = format!("EXPLAIN (FORMAT JSON, COSTS true) {select}");
    let json = attempt(|| Spi::get_one::<pgrx::Json>(&explain)).ok()?.ok()??;
    json.0[0]["Plan"]["Plan Rows"].as_f64().map(|r| r.round() as i64)
}

/// Whether [`plan_rows`] may plan `select` (see there). Parse analysis opens the tables it names,
/// locking them: it runs in a subtransaction that is always rolled back, so that nothing stays
/// locked before the privileges are known.
fn plannable(relid: u32, select: &str) -> bool {
    // SAFETY: reads of backend state and the catalog.
    let user = unsafe { pg_sys::GetUserId() };
    if !may_read(relid, user) {
        return false;
    }
    let Ok(text) = CString::new(select) else {
        return false;
    };
    crate::catalog::probe(|| {
        // SAFETY: parse analysis of one statement in the probe's subtransaction; the trees live
        // in its memory, which the rollback frees after the walk.
        unsafe {
            let raw = crate::server::compat::raw_parse(text.as_ptr());
            let raws = pgrx::PgList::<pg_sys::RawStmt>::from_pg(raw);
            if raws.len() != 1 {
                return false;
            }
            let queries =
                crate::server::compat::analyze_and_rewrite(raws.get_ptr(0).expect("one statement"), text.as_ptr());
            let queries = pgrx::PgList::<pg_sys::Query>::from_pg(queries);
            let mut seen = Reached::default();
            for q in queries.iter_ptr() {
                if pg_sys::query_tree_walker(
                    q,
                    Some(reach),
                    (&mut seen as *mut Reached).cast(),
                    pg_sys::QTW_EXAMINE_RTES_BEFORE as i32,
                ) {
                    return false;
                }
            }
            seen.relations.iter().all(|r| may_read(*r, user))
        }
    })
    .unwrap_or(false)
}

/// The caller may SELECT from the relation (all of it, or some of its columns).
fn may_read(relid: u32, user: pg_sys::Oid) -> bool {
    // SAFETY: ACL checks of a relation by oid (a missing one is not readable).
    unsafe {
        let rel = pg_sys::Oid::from(relid);
        pg_sys::pg_class_aclcheck(rel, user, pg_sys::ACL_SELECT as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
            || pg_sys::pg_attribute_aclcheck_all(
                rel,
                user,
                pg_sys::ACL_SELECT as pg_sys::AclMode,
                pg_sys::AclMaskHow::ACLMASK_ANY,
            ) == pg_sys::AclResult::ACLCHECK_OK
    }
}

/// What a query reaches: the relations it reads.
#[derive(Default)]
struct Reached {
    relations: Vec<u32>,
}

/// Walker over a query tree: true (stop) at the first function or operator that is not
/// PostgreSQL's own (an extension's or a user's), collecting the relations read on the way.
#[pg_guard]
unsafe extern "C-unwind" fn reach(node: *mut pg_sys::Node, context: *mut core::ffi::c_void) -> bool {
    if node.is_null() {
        return false;
    }
    // SAFETY: the walker API: `node` is a valid node of the tree, `context` our Reached.
    unsafe {
        if pgrx::is_a(node, pg_sys::NodeTag::T_RangeTblEntry) {
            let rte = node as *mut pg_sys::RangeTblEntry;
            if (*rte).rtekind == pg_sys::RTEKind::RTE_RELATION {
                (*(context as *mut Reached)).relations.push((*rte).relid.to_u32());
            }
            return false;
        }
        if pgrx::is_a(node, pg_sys::NodeTag::T_Query) {
            return pg_sys::query_tree_walker(
                node as *mut pg_sys::Query,
                Some(reach),
                context,
                pg_sys::QTW_EXAMINE_RTES_BEFORE as i32,
            );
        }
        if pg_sys::check_functions_in_node(node, Some(not_built_in), std::ptr::null_mut()) {
            return true;
        }
        pg_sys::expression_tree_walker(node, Some(reach), context)
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn not_built_in(func: pg_sys::Oid, _context: *mut core::ffi::c_void) -> bool {
    func.to_u32() >= pg_sys::FirstNormalObjectId
}

/// The data-change state a block starts with: empty, unless `check()` runs inside a transaction
/// block, whose DDL, locks and rows the script's statements would join (a BEGIN there only warns).
fn running_data() -> DataTx {
    // SAFETY: a read of the transaction state.
    if !unsafe { pg_sys::IsTransactionBlock() } {
        return DataTx::default();
    }
    let r = crate::dml::running_transaction();
    DataTx {
        ddl: r.ddl,
        held: r.held,
        rows: r.rows,
        mixed_accepted: r.mixed_accepted,
    }
}

/// What a partition bound makes PostgreSQL scan when the parent or the attached table is the
/// script's own, which the catalog's proof cannot analyse: an attached table the script made is
/// taken as unproved (it has no validated constraint the catalog knows), and the parent's default
/// partition the script made as holding rows of the new bound if it holds any.
fn script_bound_scans(overlay: &overlay::Overlay, d: &mut Ddl, path: &overlay::SearchPath) {
    use crate::model::{AlterCmd, BoundScans, DefaultScan, RelRef};
    let script = |r: &RelRef| {
        overlay
            .resolve(r, path, &LiveCatalog)
            .filter(|o| overlay::is_script_oid(*o))
    };
    let default_of = |parent: u32| {
        overlay
            .default_partition_of(parent)
            .and_then(|o| overlay.rel(o))
            .map(|r| DefaultScan {
                partition: RelRef::new(Some(&r.schema), &r.name),
                proved: false,
                check: None,
            })
    };
    let default_bound = d.default_bound;
    match &mut d.stmt.command {
        Command::AlterTable(at) => {
            let parent = script(&at.table);
            for c in &mut at.cmds {
                if let AlterCmd::AttachPartition { partition, scans } = c
                    && scans.is_none()
                {
                    let part = script(partition);
                    if parent.is_none() && part.is_none() {
                        continue;
                    }
                    *scans = Some(BoundScans {
                        partition_proved: part.map(|_| false),
                        bound_check: None,
                        default: if default_bound {
                            None
                        } else {
                            parent.and_then(default_of)
                        },
                    });
                }
            }
        }
        Command::CreateRelation {
            partition_of: Some(p), ..
        } if p.scans.is_none() => {
            if let Some(parent) = script(&p.parent) {
                p.scans = Some(BoundScans {
                    partition_proved: Some(true),
                    bound_check: None,
                    default: if default_bound { None } else { default_of(parent) },
                });
            }
        }
        _ => {}
    }
}

/// A default that calls a function the script itself created: the catalog cannot analyse it, the
/// function's declared volatility decides (VOLATILE unless it says otherwise).
fn script_function_defaults(overlay: &overlay::Overlay, d: &mut Ddl) {
    use crate::model::AlterCmd;
    let Command::AlterTable(at) = &mut d.stmt.command else {
        return;
    };
    for c in &mut at.cmds {
        if let AlterCmd::AddColumn(col) = c
            && let Some(e) = col.default.as_mut().filter(|e| e.volatility.is_none())
        {
            e.volatility = e.calls.iter().find_map(|f| overlay.function_volatility(f));
        }
    }
}

/// The body of the procedure `CALL [schema.]name(…)` runs, from the catalog: the one procedure of
/// that name in the first schema of the search path that has one (or in `schema`). `None` when
/// there is none, when that schema has several (overloads check() does not tell apart), and for
/// `BEGIN ATOMIC` bodies. Only read, never run.
fn catalog_procedure(schema: Option<&str>, name: &str) -> Option<step::Routine> {
    let path = facts::search_path();
    let schemas: Vec<String> = match schema {
        Some(s) => vec![s.to_owned()],
        None => path.lookup.iter().filter(|s| *s != "pg_temp").cloned().collect(),
    };
    let rows: Vec<(String, String, String, bool)> = crate::privilege::with_safe_path(|| {
        Spi::connect(|c| {
            let table = c.select(
                "SELECT n.nspname::pg_catalog.text, p.prosrc, l.lanname::pg_catalog.text,
                        p.prosecdef OR p.proconfig IS NOT NULL
                   FROM pg_catalog.pg_proc p
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
                   JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang
                  WHERE p.prokind OPERATOR(pg_catalog.=) 'p' AND p.proname OPERATOR(pg_catalog.=) $1",
                None,
                &[name.into()],
            )?;
            let mut out = Vec::new();
            for row in table {
                if let (Some(n), Some(src), Some(lang), Some(atomic)) = (
                    row.get::<String>(1)?,
                    row.get::<String>(2)?,
                    row.get::<String>(3)?,
                    row.get::<bool>(4)?,
                ) {
                    out.push((n, src, lang, atomic));
                }
            }
            Ok::<_, pgrx::spi::Error>(out)
        })
    })
    .ok()?;
    let schema = schemas.iter().find(|s| rows.iter().any(|(n, ..)| n == *s))?;
    let mut found = rows.into_iter().filter(|(n, ..)| n == schema);
    let (schema, source, language, atomic) = found.next()?;
    if found.next().is_some() || source.trim().is_empty() {
        return None;
    }
    Some(step::Routine {
        schema: Some(schema),
        language,
        source,
        procedure: true,
        atomic,
    })
}
