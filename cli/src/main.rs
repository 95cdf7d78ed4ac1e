//! `migrate-guard check`: send migration scripts to `migrate_guard.check()` in a guarded database
//! and report what the guard would do with each statement, before the deploy.
//!
//! Exit status: 0 when nothing would be blocked, 1 when a statement would be blocked or
//! PostgreSQL itself would refuse one, 2 on a usage, file, connection or server error.

mod connect;
mod output;
mod script;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::{Read, Write};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "migrate-guard",
    version,
    about = "Check migrations against a database guarded by migrate_guard"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge migration scripts with migrate_guard.check() in the database, without running them.
    ///
    /// The files are checked as one migration, in the order given (as `psql -f a.sql -f b.sql`
    /// would run them); `-` reads standard input. Connection: --database-url, or the usual
    /// PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE variables and ~/.pgpass.
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// SQL files to check, in order; `-` (the default) reads standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    files: Vec<String>,
    /// A libpq connection string or URL, e.g. postgresql://ci@db-replica/app?sslmode=verify-full.
    #[arg(long, value_name = "URL", env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Judge every empty table as if it held data (for a CI database without production data).
    #[arg(long)]
    assume_populated: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The file name to report for standard input (e.g. the migration the SQL came from, so that
    /// GitHub annotations land on it).
    #[arg(long, value_name = "NAME", default_value = "<stdin>")]
    stdin_name: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `file:line:col: verdict rule: message`, with the detail and hint under it.
    Text,
    /// One JSON object per finding, one per line.
    Json,
    /// GitHub Actions workflow commands (annotations on the pull request).
    Github,
    /// A SARIF 2.1.0 log (GitHub code scanning and other SARIF viewers).
    Sarif,
    /// A GitLab Code Quality report (the `codequality` artifact of a merge request).
    Gitlab,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let Command::Check(args) = cli.command;
    match check(&args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("migrate-guard: {message}");
            ExitCode::from(2)
        }
    }
}

fn check(args: &CheckArgs) -> Result<u8, String> {
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err("standard input (-) can be given only once".into());
    }
    let mut sources = Vec::new();
    for name in &args.files {
        let text = if name == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            s
        } else {
            std::fs::read_to_string(name).map_err(|e| format!("cannot read {name}: {e}"))?
        };
        let label = if name == "-" {
            args.stdin_name.clone()
        } else {
            name.clone()
        };
        sources.push((label, text));
    }
    let combined = script::Combined::new(&sources);
    let mut client = connect::connect(args.database_url.as_deref())?;
    let findings = run_check(&mut client, &combined, args.assume_populated)?;
    let failed = findings.iter().any(|f| f.verdict == "block" || f.verdict == "error");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = output::write(&mut out, args.format, &findings)
        .and_then(|()| match args.format {
            Format::Text => output::summary(&mut out, &findings, sources.len()),
            _ => Ok(()),
        })
        .and_then(|()| out.flush());
    match written {
        // A reader that stopped early (`| head`) is not a failure of the check.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("cannot write the report: {e}")),
        _ => Ok(u8::from(failed)),
    }
}

fn run_check(
    client: &mut postgres::Client,
    combined: &script::Combined,
    assume_populated: bool,
) -> Result<Vec<output::Finding>, String> {
    let assume: Option<bool> = assume_populated.then_some(true);
    let rows = client
        .query(
            "SELECT statement_no, line, col, end_line, rule, verdict, message, detail, hint, statement, sqlstate \
             FROM migrate_guard.check($1, $2)",
            &[&combined.text, &assume],
        )
        .map_err(|e| server_error(&e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let (file, line) = combined.locate(r.get::<_, i32>("line"));
            let (_, end_line) = combined.locate(r.get::<_, i32>("end_line"));
            output::Finding {
                file: file.to_owned(),
                statement_no: r.get("statement_no"),
                line,
                col: r.get("col"),
                end_line,
                rule: r.get("rule"),
                verdict: r.get("verdict"),
                message: r.get("message"),
                detail: r.get("detail"),
                hint: r.get("hint"),
                statement: r.get("statement"),
                sqlstate: r.get("sqlstate"),
            }
        })
        .collect())
}

/// A server error as a one-line message, with the likely fix for the usual ones.
fn server_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) if db.code() == &postgres::error::SqlState::UNDEFINED_FUNCTION => format!(
            "{}: is the migrate_guard extension (0.4.0 or later) installed in this database? \
             (CREATE EXTENSION migrate_guard; or ALTER EXTENSION migrate_guard UPDATE;)",
            db.message()
        ),
        Some(db) if db.code() == &postgres::error::SqlState::INVALID_SCHEMA_NAME => format!(
            "{}: the migrate_guard extension is not installed in this database (CREATE EXTENSION migrate_guard;)",
            db.message()
        ),
        Some(db) => format!(
            "the server refused the check: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        ),
        None => format!("the check failed: {e}"),
    }
}
