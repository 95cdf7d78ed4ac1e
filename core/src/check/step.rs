//! What one statement of a script does, as `check()` models it: a plain Rust value built by
//! the extension's `ddl::script` from the raw parse tree, read by the overlay and the driver.

use crate::facts::RelKind;
use crate::model::{RelRef, Statement};

/// One statement of the script.
#[derive(Debug, Clone)]
pub enum Step {
    /// A statement event triggers fire for: what the guard judges, with what it does to the schema.
    Ddl(Box<Ddl>),
    Transaction(TxOp),
    Set(SetOp),
    /// `SELECT f(…), …` with calls `check()` follows: `begin_migration`, `end_migration`,
    /// `set_config`.
    Calls(Vec<Call>),
    /// `COPY t FROM …`: the table holds data afterwards.
    Fill(RelRef),
    /// `UPDATE`, `DELETE` or `INSERT` of one table (`INSERT` also fills it).
    Data {
        op: &'static str,
        table: RelRef,
    },
    /// A statement PostgreSQL refuses inside a transaction block (`VACUUM`, `CREATE DATABASE`, …),
    /// which event triggers never see. The name is the one PostgreSQL's error message uses.
    NotInBlock(String),
    /// `DO`: the block's language and body.
    Do {
        language: String,
        source: String,
    },
    /// `CALL name(…)` of a procedure other than migrate_guard's own.
    Call {
        schema: Option<String>,
        name: String,
    },
    /// Anything else: queries, other DML, statements no event trigger sees.
    Other,
}

/// A DDL statement: the model the rules read, and its effect on the schema.
#[derive(Debug, Clone)]
pub struct Ddl {
    pub stmt: Statement,
    pub effect: Effect,
    /// `IF EXISTS`: a missing relation is skipped, not an error.
    pub missing_ok: bool,
    /// The name PostgreSQL gives the statement when it refuses to run it inside a transaction
    /// block (`CREATE INDEX CONCURRENTLY`, …).
    pub not_in_block: Option<&'static str>,
    /// `CREATE TABLE … PARTITION OF … DEFAULT` / `ATTACH PARTITION … DEFAULT`.
    pub default_bound: bool,
}

/// What a DDL statement does beyond what [`Statement`] already says (drops, renames and ALTER
/// TABLE subcommands are read from the statement itself).
#[derive(Debug, Clone, Default)]
pub enum Effect {
    #[default]
    None,
    CreateRelation(NewRelation),
    CreateIndex(NewIndex),
    CreateSchema {
        name: String,
        if_not_exists: bool,
    },
    DropSchemas {
        names: Vec<String>,
        missing_ok: bool,
    },
    /// `DROP PROCEDURE / FUNCTION / ROUTINE`: the (schema, name) of each.
    DropRoutines(Vec<(Option<String>, String)>),
    /// `CREATE [OR REPLACE] FUNCTION name …`: its name's last part and declared volatility
    /// (VOLATILE unless it says otherwise).
    CreateFunction {
        name: String,
        volatility: crate::model::Volatility,
        routine: Option<Routine>,
    },
    /// ALTER TABLE: the CHECK constraints it adds (with the columns each proves NOT NULL), the
    /// indexes its UNIQUE / PRIMARY KEY constraints build, the constraints it drops.
    AlterTable {
        checks: Vec<NewCheck>,
        indexes: Vec<NewIndex>,
        dropped_constraints: Vec<String>,
    },
}

/// A function's or procedure's body, as `CREATE FUNCTION` / `CREATE PROCEDURE` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routine {
    /// The schema its name was written with.
    pub schema: Option<String>,
    pub language: String,
    pub source: String,
    pub procedure: bool,
    /// SECURITY DEFINER or with SET options: it cannot commit.
    pub atomic: bool,
}

#[derive(Debug, Clone)]
pub struct NewRelation {
    pub name: RelRef,
    pub kind: RelKind,
    pub temp: bool,
    pub columns: Vec<NewColumn>,
    /// The indexes its PRIMARY KEY / UNIQUE constraints build.
    pub indexes: Vec<NewIndex>,
    pub checks: Vec<NewCheck>,
    /// `CREATE TABLE … AS` / `CREATE MATERIALIZED VIEW` with data: it holds rows at once.
    pub with_data: bool,
    pub if_not_exists: bool,
    /// `PARTITION OF parent` (true) or `INHERITS (parent, …)` (false, the first parent): its
    /// columns come first, and dropping the parent drops it.
    pub parent: Option<(RelRef, bool)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewColumn {
    pub name: String,
    pub type_display: String,
    pub not_null: bool,
    /// `Some('s')` stored, `Some('v')` virtual.
    pub generated: Option<char>,
    /// serial or identity: PostgreSQL creates a sequence `<table>_<column>_seq` for it.
    pub sequence: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewIndex {
    /// As written; `None` when PostgreSQL chooses the name.
    pub name: Option<String>,
    pub table: RelRef,
    /// Key columns (plain column references only).
    pub columns: Vec<String>,
    /// Some key is an expression (the chosen name then cannot be predicted).
    pub expressions: bool,
    pub unique: bool,
    pub primary: bool,
    pub if_not_exists: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewCheck {
    pub name: Option<String>,
    /// Columns `col IS NOT NULL` conjuncts of the expression prove non-null.
    pub implies_not_null: Vec<String>,
    pub not_valid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOp {
    Begin,
    Commit {
        chain: bool,
    },
    Rollback {
        chain: bool,
    },
    Savepoint(String),
    Release(String),
    RollbackTo(String),
    /// `PREPARE TRANSACTION`: the block ends; nothing of it is committed for later statements.
    Prepare,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOp {
    /// `SET [LOCAL] name = value`, `SET name TO DEFAULT` / `RESET name` (value `None`).
    Value {
        name: String,
        value: Option<String>,
        local: bool,
    },
    ResetAll,
}

/// A function call in a `SELECT` list, with the constant text of each argument (`None` for an
/// argument that is not a constant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub schema: Option<String>,
    pub function: String,
    pub args: Vec<Option<String>>,
}
