//! The plain Rust model of a DDL statement.
//!
//! The extension's `ddl` module builds it from a PostgreSQL parse tree (event trigger or raw parser); rules read
//! only this model plus [`crate::facts::Facts`], so they never touch `pg_sys` and can be unit
//! tested without a server.

use std::fmt;

/// A relation as the statement names it (not yet resolved against the catalog).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelRef {
    pub schema: Option<String>,
    pub name: String,
}

impl RelRef {
    pub fn new(schema: Option<&str>, name: &str) -> Self {
        RelRef {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for RelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(
                f,
                "{}.{}",
                crate::sqltext::quote_ident(s),
                crate::sqltext::quote_ident(&self.name)
            ),
            None => write!(f, "{}", crate::sqltext::quote_ident(&self.name)),
        }
    }
}

/// One statement as the guard sees it.
#[derive(Debug, Clone)]
pub struct Statement {
    /// PostgreSQL command tag, e.g. `CREATE INDEX`.
    pub tag: String,
    /// The statement's own SQL text, when it is known and is exactly this command (not an
    /// enclosing DO block or function call). Used to write the safe alternative in hints.
    pub text: Option<String>,
    pub command: Command,
}

/// The kinds of object a DDL statement can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Table,
    Index,
    View,
    MatView,
    ForeignTable,
    Sequence,
    Column,
    Trigger,
    Other,
}

#[derive(Debug, Clone)]
pub enum Command {
    CreateIndex(CreateIndex),
    Drop(Drop),
    AlterTable(AlterTable),
    Rename(Rename),
    RefreshMatView(RefreshMatView),
    /// `CREATE TABLE` / `CREATE TABLE AS` / `CREATE VIEW` / `CREATE SEQUENCE`: whether it is
    /// temporary, and the tables its foreign keys reference (SHARE ROW EXCLUSIVE on them).
    CreateRelation {
        name: Option<RelRef>,
        references: Vec<RelRef>,
        temp: bool,
        /// `PARTITION OF parent`.
        partition_of: Option<PartitionOf>,
    },
    /// `COMMENT ON TABLE/VIEW/INDEX/…/COLUMN`: no lock worth guarding, but its object is
    /// recorded in history without a second catalog query.
    Comment {
        target: RelRef,
        column: Option<String>,
    },
    /// `CREATE TRIGGER … ON table` (SHARE ROW EXCLUSIVE on the table).
    CreateTrigger {
        table: RelRef,
    },
    /// `REINDEX` (event triggers see it from PostgreSQL 17).
    Reindex(Reindex),
    /// `ALTER DOMAIN name …`; `scan` says what PostgreSQL checks against every stored value of
    /// the domain (`ADD CONSTRAINT … CHECK` without NOT VALID, `SET NOT NULL`, `VALIDATE
    /// CONSTRAINT`), `None` for the subcommands that check nothing.
    AlterDomain {
        domain: Vec<String>,
        scan: Option<String>,
    },
    /// A statement that drops or moves more than it names: `DROP SCHEMA … CASCADE`, `DROP
    /// TYPE/DOMAIN … CASCADE`, `DROP OWNED BY`, `ALTER TABLE/INDEX/MATERIALIZED VIEW ALL IN
    /// TABLESPACE … SET TABLESPACE`. `what` is how messages name it.
    Reaching {
        what: String,
        reach: Reach,
    },
    /// `CREATE PUBLICATION` / `ALTER PUBLICATION … ADD|SET TABLE`: the tables it starts
    /// publishing, and whether they can take UPDATE and DELETE afterwards.
    Publication(Publication),
    /// `CLUSTER` and `VACUUM FULL`: each table is rewritten under ACCESS EXCLUSIVE. Event
    /// triggers never see them; the utility hook does, in sessions that loaded the library.
    Rewrite(Rewrite),
    /// `TRUNCATE`: every row of the tables goes, under ACCESS EXCLUSIVE (seen by the utility
    /// hook, judged inside a migration or a transaction that ran DDL).
    Truncate(Truncate),
    /// `LOCK [TABLE] … IN mode MODE` (seen by the utility hook, judged inside a migration or a
    /// transaction that ran DDL).
    Lock(LockTables),
    /// Any other DDL: the guard has no rule for it.
    Other,
}

/// See [`Command::Rewrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// `CLUSTER` or `VACUUM FULL`.
    pub what: &'static str,
    /// The tables named; empty: every table (VACUUM FULL) or every table clustered before
    /// (CLUSTER).
    pub tables: Vec<RelRef>,
}

/// See [`Command::Truncate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    /// The tables named, each with whether its inheritance children go too (no `ONLY`).
    pub tables: Vec<(RelRef, bool)>,
    /// `CASCADE`: every table with a foreign key to one of them is emptied too.
    pub cascade: bool,
}

/// See [`Command::Lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockTables {
    pub tables: Vec<RelRef>,
    pub mode: LockMode,
    pub nowait: bool,
}

/// See [`Command::Publication`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub name: String,
    /// `CREATE` (else `ALTER`).
    pub create: bool,
    /// The tables named (`FOR TABLE`, `ADD TABLE`, `SET TABLE`).
    pub tables: Vec<RelRef>,
    /// `FOR ALL TABLES`.
    pub all_tables: bool,
    /// Per table named, in the same order: the columns its row filter (`WHERE (…)`, 15+) reads
    /// (`Some(empty)`: a filter whose columns could not be read), and its column list (15+).
    pub filters: Vec<(Option<Vec<String>>, Option<Vec<String>>)>,
    /// `TABLES IN SCHEMA s` (15+); `CURRENT_SCHEMA` is resolved when the statement is read
    /// (`None`: no schema is current).
    pub schemas: Vec<Option<String>>,
    /// Whether it publishes UPDATE or DELETE, when the statement says (`CREATE`: its `publish`
    /// option, all of them by default); `None`: as the publication already does.
    pub publishes_changes: Option<bool>,
}

/// What a [`Command::Reaching`] statement reaches, to be looked up in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every relation in these schemas is dropped (CASCADE).
    Schemas(Vec<String>),
    /// Every column of these types (domains over them, arrays of them) is dropped, and every
    /// table typed by them (`OF type`) (CASCADE). Names as written.
    Types(Vec<Vec<String>>),
    /// Every relation these roles own in this database is dropped.
    OwnedBy(Vec<u32>),
    /// The tables typed by this composite type (`OF type`), whose column `attribute` is renamed.
    TypedBy { type_name: Vec<String>, attribute: String },
    /// What `TRUNCATE` empties besides the tables it names: their inheritance children and
    /// partitions (for the tables without `ONLY`), and with `CASCADE` every table with a foreign
    /// key to an emptied one, in turn.
    Truncated { tables: Vec<(RelRef, bool)>, cascade: bool },
    /// Every relation of `kind` in tablespace `from` (owned by `roles`, when given) moves to `to`.
    Tablespace {
        from: String,
        to: String,
        kind: ObjectKind,
        roles: Vec<u32>,
    },
}

/// PostgreSQL's table lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    pub fn name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// What ordinary traffic the lock stops while it is held (or queued for), as a plural subject.
    pub fn blocks(self) -> &'static str {
        match self {
            LockMode::AccessShare | LockMode::RowShare | LockMode::RowExclusive | LockMode::ShareUpdateExclusive => {
                "other schema changes"
            }
            LockMode::Share | LockMode::ShareRowExclusive => "INSERT, UPDATE and DELETE",
            LockMode::Exclusive => "INSERT, UPDATE, DELETE and SELECT ... FOR UPDATE",
            LockMode::AccessExclusive => "all reads and writes",
        }
    }

    /// `an ACCESS EXCLUSIVE`, `a SHARE` ...
    pub fn with_article(self) -> String {
        let name = self.name();
        let article = if name.starts_with(['A', 'E']) { "an" } else { "a" };
        format!("{article} {name}")
    }
}

#[derive(Debug, Clone)]
pub struct CreateIndex {
    pub name: Option<String>,
    pub table: RelRef,
    /// `ON ONLY parent`: on a partitioned table this creates an invalid parent index without a build.
    pub only: bool,
    pub concurrent: bool,
    pub unique: bool,
    /// `IF NOT EXISTS`: when the name is taken PostgreSQL skips the statement without a build.
    pub if_not_exists: bool,
}

#[derive(Debug, Clone)]
pub struct Drop {
    pub kind: ObjectKind,
    pub objects: Vec<RelRef>,
    pub concurrent: bool,
    pub cascade: bool,
}

#[derive(Debug, Clone)]
pub struct AlterTable {
    /// `ALTER TABLE`, `ALTER INDEX`, `ALTER MATERIALIZED VIEW`, ... (all use one parse node).
    pub kind: ObjectKind,
    pub table: RelRef,
    pub cmds: Vec<AlterCmd>,
}

/// How an `ALTER COLUMN … TYPE` computes the new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Using {
    /// No USING clause, or `USING col` naming the altered column itself.
    Column,
    /// Any other expression: PostgreSQL always rewrites the table.
    Expression,
}

/// A type named in the statement, resolved against the catalog where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    /// As written, e.g. `character varying(20)`.
    pub display: String,
    /// `(type oid, typmod)` when the type exists.
    pub resolved: Option<(u32, i32)>,
    /// `serial`, `bigserial`, `smallserial` (a sequence default is attached).
    pub serial: bool,
    /// A domain with constraints (`ADD COLUMN` display lookups only): its base type, e.g. `integer`.
    pub constrained_domain: Option<String>,
}

/// A default or generation expression, analysed against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// Volatility of the expression once transformed: `None` when it could not be analysed.
    pub volatility: Option<Volatility>,
    /// The function a default that is a plain call names (`f(…)`, the name's last part), so that
    /// `check()` can judge a call of a function the script itself creates.
    pub calls: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    Check,
    ForeignKey,
    Unique,
    PrimaryKey,
    Exclusion,
    NotNull,
    Null,
    Default,
    Identity,
    Generated,
    Other,
}

#[derive(Debug, Clone)]
pub struct Constraint {
    pub kind: ConstraintKind,
    pub name: Option<String>,
    /// `NOT VALID`: the constraint is added without checking existing rows.
    pub not_valid: bool,
    /// `UNIQUE / PRIMARY KEY USING INDEX idx`.
    pub using_index: Option<String>,
    /// Columns the constraint is declared on (UNIQUE/PK/FK keys); empty for CHECK.
    pub columns: Vec<String>,
    /// Referenced table of a foreign key.
    pub references: Option<RelRef>,
}

#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub type_name: TypeRef,
    pub not_null: bool,
    pub default: Option<Expr>,
    pub identity: bool,
    pub generated_stored: Option<Expr>,
    /// `GENERATED ALWAYS AS (…) [VIRTUAL]` (PostgreSQL 18): computed when read, never stored.
    pub generated_virtual: Option<Expr>,
    /// Inline constraints other than NOT NULL / DEFAULT / identity / generated.
    pub constraints: Vec<Constraint>,
    /// `ALTER TABLE … ADD COLUMN IF NOT EXISTS`: PostgreSQL skips it when the column exists.
    pub if_not_exists: bool,
}

impl ColumnDef {
    /// Whether existing rows get a value for the new column (so NOT NULL can hold).
    pub fn fills_existing_rows(&self) -> bool {
        self.default.is_some()
            || self.identity
            || self.generated_stored.is_some()
            || self.generated_virtual.is_some()
            || self.type_name.serial
    }
}

#[derive(Debug, Clone)]
pub enum AlterCmd {
    AddColumn(ColumnDef),
    DropColumn {
        column: String,
    },
    SetNotNull {
        column: String,
    },
    AlterType {
        column: String,
        new_type: TypeRef,
        using: Using,
        /// The `COLLATE` clause, qualified as written; `None`: the new type's default collation.
        collation: Option<Vec<String>>,
    },
    AddConstraint(Constraint),
    ValidateConstraint {
        name: String,
    },
    SetLogged,
    SetUnlogged,
    SetAccessMethod {
        name: String,
    },
    SetTablespace {
        name: String,
    },
    AttachPartition {
        partition: RelRef,
        /// What PostgreSQL will scan to check the bound (`None`: not known).
        scans: Option<BoundScans>,
    },
    DetachPartition {
        partition: RelRef,
        concurrent: bool,
        finalize: bool,
    },
    /// `ALTER COLUMN … SET EXPRESSION AS (…)` (PostgreSQL 17+).
    SetExpression {
        column: String,
    },
    /// Anything else, with the lock it takes.
    Other {
        lock: LockMode,
    },
}

/// What a new partition bound (`ATTACH PARTITION`, `CREATE TABLE … PARTITION OF`) makes
/// PostgreSQL scan, as its own proof (`PartConstraintImpliedByRelConstraint`) decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundScans {
    /// The attached table's valid constraints prove every row fits the bound, so it is not
    /// scanned (always true for `PARTITION OF`; `None`: the table is not in the catalog).
    pub partition_proved: Option<bool>,
    /// The partition constraint as a CHECK expression on the attached table, for the hint.
    pub bound_check: Option<String>,
    /// The parent's default partition, when it has one and the new partition is not it.
    pub default: Option<DefaultScan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultScan {
    pub partition: RelRef,
    /// Its valid constraints prove it holds no row of the new bound: no scan.
    pub proved: bool,
    /// What it must satisfy (no row of the new bound) as a CHECK expression on it.
    pub check: Option<String>,
}

/// `CREATE TABLE … PARTITION OF parent FOR VALUES …` (ACCESS EXCLUSIVE on the parent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOf {
    pub parent: RelRef,
    pub scans: Option<BoundScans>,
}

#[derive(Debug, Clone)]
pub struct Rename {
    /// What is renamed: a relation (`Table`, `View`, `MatView`, ...) or a `Column`.
    pub what: ObjectKind,
    pub target: RelRef,
    pub column: Option<String>,
    pub new_name: String,
    /// `ALTER TABLE/VIEW/… SET SCHEMA s`: the relation keeps its name (`new_name`) and moves to
    /// schema `s`, which breaks the clients that name it as a rename does.
    pub new_schema: Option<String>,
}

/// What a `REINDEX` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReindexTarget {
    Index(RelRef),
    Table(RelRef),
    /// `REINDEX SCHEMA / DATABASE / SYSTEM name`: every table in it.
    Many {
        what: &'static str,
        name: String,
    },
}

#[derive(Debug, Clone)]
pub struct Reindex {
    pub target: ReindexTarget,
    pub concurrent: bool,
}

#[derive(Debug, Clone)]
pub struct RefreshMatView {
    pub target: RelRef,
    pub concurrent: bool,
    pub with_data: bool,
}
