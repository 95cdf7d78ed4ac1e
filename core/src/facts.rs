//! Facts about the relations a statement touches, as the rules need them.
//!
//! The real implementation (the extension's `catalog` module) reads the catalog without taking any lock on the
//! target, so a blocked statement fails at once instead of queueing. Unit tests use
//! [`FakeFacts`].

use crate::model::RelRef;

/// The storage kinds a rule cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    Table,
    PartitionedTable,
    MatView,
    View,
    Index,
    PartitionedIndex,
    ForeignTable,
    Sequence,
    Other,
}

impl RelKind {
    /// Word used in messages: `table`, `materialized view`, ...
    pub fn noun(self) -> &'static str {
        match self {
            RelKind::Table => "table",
            RelKind::PartitionedTable => "partitioned table",
            RelKind::MatView => "materialized view",
            RelKind::View => "view",
            RelKind::Index | RelKind::PartitionedIndex => "index",
            RelKind::ForeignTable => "foreign table",
            RelKind::Sequence => "sequence",
            RelKind::Other => "relation",
        }
    }

    /// The object type as `pg_event_trigger_ddl_commands()` spells it (history's `object_type`).
    pub fn object_type(self) -> Option<&'static str> {
        match self {
            RelKind::Table | RelKind::PartitionedTable => Some("table"),
            RelKind::Index | RelKind::PartitionedIndex => Some("index"),
            RelKind::View => Some("view"),
            RelKind::MatView => Some("materialized view"),
            RelKind::ForeignTable => Some("foreign table"),
            RelKind::Sequence => Some("sequence"),
            RelKind::Other => None,
        }
    }
}

/// What the guard knows about one relation.
#[derive(Debug, Clone, PartialEq)]
pub struct Rel {
    pub oid: u32,
    /// Schema and relation name, unquoted.
    pub schema: String,
    pub name: String,
    /// Schema-qualified, quoted where needed: `public.accounts`, `"Sales"."Order"`.
    pub display: String,
    pub kind: RelKind,
    /// Created in the current transaction (invisible to every other session until commit).
    pub new_in_xact: bool,
    pub temp: bool,
    /// A materialized view that has been refreshed WITH DATA (always true for other kinds).
    pub populated: bool,
    /// What was read of the relation's storage so far, kept by the implementations of [`Facts`]
    /// (reading it takes the storage manager: a file open and seek, and most statements never
    /// ask). Rules read storage only through [`Stored`], from [`Facts::with_storage`].
    pub storage: Option<Storage>,
    /// Where and how its data is stored, when known (`None` for relations `check()`'s script
    /// created): lets a rule see that `SET TABLESPACE`, `SET LOGGED` … would change nothing.
    pub physical: Option<Physical>,
}

/// `pg_class.relpersistence`, `reltablespace` and `relam` of a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Physical {
    /// `b'p'` permanent, `b'u'` unlogged, `b't'` temporary.
    pub persistence: u8,
    /// 0: the database's default tablespace.
    pub tablespace: u32,
    /// 0 for relations without an access method (views, partitioned tables before 17).
    pub access_method: u32,
}

/// The size of a relation's data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Storage {
    /// Size of the main fork on disk (summed over partitions for a partitioned table).
    pub size_bytes: u64,
    /// Row estimate from `pg_class.reltuples`, when the table was ever vacuumed or analyzed.
    pub est_rows: Option<i64>,
    /// The table holds data, or is treated as if it did (`data_assumed`).
    pub has_data: bool,
    /// `migrate_guard.assume_populated` made an empty table count as holding data.
    pub data_assumed: bool,
    /// `check()`: the script wrote rows to it earlier (its size is not known).
    pub filled_by_script: bool,
}

impl Rel {
    /// Another relation name in this relation's schema, quoted: `public.users`.
    pub fn sibling(&self, name: &str) -> String {
        format!(
            "{}.{}",
            crate::sqltext::quote_ident(&self.schema),
            crate::sqltext::quote_ident(name)
        )
    }

    /// An existing relation is one other sessions can see and use: not created in this
    /// transaction, not temporary. (A session restoring a dump is not judged at all.)
    pub fn existing(&self) -> bool {
        !self.new_in_xact && !self.temp
    }
}

/// A relation with its storage read ([`Facts::with_storage`]): the only way a rule learns
/// whether a relation holds data, so a rule cannot ask a relation whose storage nobody read.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    rel: Rel,
    storage: Storage,
}

impl std::ops::Deref for Stored {
    type Target = Rel;
    fn deref(&self) -> &Rel {
        &self.rel
    }
}

impl Stored {
    /// `rel` with what was read of its storage (`rel.storage`, the implementations' cache, is
    /// left as it came: rules read storage only from here).
    pub fn new(rel: Rel, storage: Storage) -> Stored {
        Stored { rel, storage }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn into_rel(self) -> Rel {
        self.rel
    }

    /// Whether the relation holds data.
    pub fn has_data(&self) -> bool {
        self.storage.has_data
    }

    /// `table public.accounts (1000 rows, 72 kB)` — the object and what was measured.
    pub fn described(&self) -> String {
        format!("{} {} ({})", self.kind.noun(), self.display, self.measured())
    }

    pub fn measured(&self) -> String {
        let st = &self.storage;
        let size = crate::sqltext::pretty_size(st.size_bytes);
        let mut s = match st.est_rows {
            Some(1) => format!("about 1 row, {size}"),
            Some(n) if n >= 0 => format!("about {n} rows, {size}"),
            _ if st.filled_by_script && st.size_bytes == 0 => "rows written earlier in the script".to_owned(),
            _ => size,
        };
        if st.data_assumed {
            s.push_str("; treated as holding data because migrate_guard.assume_populated is on");
        }
        s
    }
}

/// One column of a relation.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub not_null: bool,
    /// Name of a validated CHECK constraint that proves the column has no NULLs.
    pub not_null_proven_by: Option<String>,
    /// `format_type` of the column, e.g. `character varying(20)`.
    pub type_display: String,
    /// `pg_attribute.attgenerated`: `Some('s')` stored, `Some('v')` virtual (18+).
    pub generated: Option<char>,
}

/// See [`Facts::reached`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reached {
    pub relations: Vec<Stored>,
    pub columns: Vec<(Stored, String)>,
}

/// See [`Facts::type_change_rechecks`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rechecks {
    /// Indexes rebuilt, each with why (`its collation changes`, `it has an expression`, …).
    pub indexes: Vec<(String, &'static str)>,
    /// Validated CHECK constraints re-checked on every row.
    pub checks: Vec<String>,
}

impl Rechecks {
    pub fn is_empty(&self) -> bool {
        self.indexes.is_empty() && self.checks.is_empty()
    }
}

/// Session state the rules consult.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Session {
    /// The session's `lock_timeout`, in milliseconds (0: wait forever).
    pub lock_timeout_ms: i64,
    /// `migrate_guard.require_lock_timeout`.
    pub require_lock_timeout: bool,
    /// `migrate_guard.require_migration`.
    pub require_migration: bool,
    /// A migration registered with `begin_migration` is open in this session (only read, and
    /// only known, when `require_migration` is on).
    pub in_migration: bool,
}

/// The source of facts. `relation` returns `None` for a name that does not resolve (PostgreSQL
/// itself will then report the missing object).
pub trait Facts {
    fn relation(&self, r: &RelRef) -> Option<Rel>;
    /// `rel` with its storage read.
    fn with_storage(&self, rel: Rel) -> Stored;
    /// The table (or materialized view) an index belongs to.
    fn index_table(&self, index: &RelRef) -> Option<Rel>;
    fn column(&self, rel: &Rel, column: &str) -> Option<Column>;
    /// The key columns of index `index` (unqualified: in the table's schema) of table `rel`.
    fn index_columns(&self, rel: &Rel, index: &str) -> Option<Vec<String>>;
    /// Whether changing `column` to the type `(oid, typmod)` without a USING expression makes
    /// PostgreSQL rewrite the table; `None` when it cannot be decided (no such column or cast).
    fn type_change_rewrites(&self, rel: &Rel, column: &str, to: (u32, i32)) -> Option<bool>;
    /// What a change of `column` to the type `(oid, typmod)` with `collation` (as written; `None`:
    /// the type's default) that rewrites nothing still does to every row, under the ALTER's ACCESS
    /// EXCLUSIVE lock: the indexes PostgreSQL rebuilds instead of reusing, and the validated CHECK
    /// constraints it re-checks.
    fn type_change_rechecks(&self, rel: &Rel, column: &str, to: (u32, i32), collation: Option<&[String]>) -> Rechecks;
    fn session(&self) -> Session;
    /// The server's version and what it supports.
    fn server(&self) -> crate::server::Server;
    /// The oid of tablespace `name` as `pg_class.reltablespace` would store it (0 for the
    /// database's default); `None` when there is no such tablespace.
    fn tablespace_oid(&self, name: &str) -> Option<u32>;
    /// The oid of table access method `name`; `None` when there is none.
    fn access_method_oid(&self, name: &str) -> Option<u32>;
    /// The existing relations other sessions use that hold data in a column of domain `domain`
    /// (as the statement names it, resolved with the session's search_path) or of a domain over
    /// it, each with one such column, with their storage read.
    fn domain_columns(&self, domain: &[String]) -> Vec<(Stored, String)>;
    /// The strongest lock above SHARE UPDATE EXCLUSIVE that this transaction already holds on
    /// `rel` (taken by an earlier statement, and held until the transaction ends).
    fn held_lock(&self, rel: &Rel) -> Option<crate::model::LockMode>;
    /// What a [`crate::model::Command::Reaching`] statement reaches: the existing relations it
    /// drops or moves, and the columns it drops (with their tables), storage read.
    fn reached(&self, reach: &crate::model::Reach) -> Reached;
    /// The kind of constraint `name` of `rel`, and whether it is valid already, when the catalog
    /// has it.
    fn constraint_kind(&self, rel: &Rel, name: &str) -> Option<(crate::model::ConstraintKind, bool)>;
    /// Whether publication `name` publishes UPDATE or DELETE; `None` when there is none.
    fn publication_publishes_changes(&self, name: &str) -> Option<bool>;
    /// The tables that cannot take UPDATE or DELETE once a publication of them publishes those
    /// (no replica identity), each with why: `rel` and its inheritance children or partitions,
    /// or, for `None`, every table of the database that `FOR ALL TABLES` would publish.
    fn without_replica_identity(&self, rel: Option<&Rel>) -> Vec<(Rel, &'static str)>;
    /// The existing inheritance children (and their children) of the plain table `rel`, storage
    /// read: an ALTER TABLE that recurses rewrites them too.
    fn inheritance_children(&self, rel: &Rel) -> Vec<Stored>;
    /// The columns of `rel`'s replica identity (its primary key, or its REPLICA IDENTITY USING
    /// INDEX index); `None` for FULL (every column) or no identity at all.
    fn replica_identity_columns(&self, rel: &Rel) -> Option<Vec<String>>;
    /// The existing tables publication `name` publishes now (`pg_publication_tables`).
    fn publication_tables(&self, name: &str) -> Vec<Rel>;
    /// What usage tracking saw of `rel` (`column: None`) or of one of its columns.
    fn usage(&self, _rel: &Rel, _column: Option<&str>) -> crate::evidence::Usage {
        crate::evidence::Usage::unavailable("usage is not tracked here")
    }
    /// What usage tracking saw of the scans of index `index`.
    fn index_usage(&self, _index: &RelRef) -> crate::evidence::Usage {
        crate::evidence::Usage::unavailable("usage is not tracked here")
    }
}

/// `heap`'s oid in [`FakeFacts`] (as in PostgreSQL).
#[cfg(test)]
pub const FAKE_HEAP: u32 = 2;

/// In-memory facts for unit tests.
#[cfg(test)]
#[derive(Default)]
pub struct FakeFacts {
    pub rels: Vec<(RelRef, Rel)>,
    pub index_tables: Vec<(RelRef, RelRef)>,
    pub columns: Vec<(u32, Column)>,
    /// `(index name, key columns)`
    pub index_columns: Vec<(String, Vec<String>)>,
    /// `(column, target type oid) → rewrites`
    pub type_changes: Vec<(String, u32, bool)>,
    pub session: Session,
    /// The server the facts are about: PostgreSQL 15 unless a test says otherwise (whatever
    /// version the test binary was built for).
    pub server: Option<crate::server::Server>,
    /// `(domain, table, column)`
    pub domain_users: Vec<(String, String, String)>,
    /// `(table, lock this transaction holds on it)`
    pub held: Vec<(String, crate::model::LockMode)>,
    pub reached: Reached,
    /// `(column, what changing its type without a rewrite still does)`
    pub rechecks: Vec<(String, Rechecks)>,
    /// `(publication, publishes UPDATE or DELETE)`
    pub publications: Vec<(String, bool)>,
    /// Tables without a replica identity, by name.
    pub no_identity: Vec<String>,
    /// `(parent, inheritance child)`, by name.
    pub children: Vec<(String, String)>,
    /// `(table, its replica identity's columns)`.
    pub identity_columns: Vec<(String, Vec<String>)>,
    /// What usage tracking saw, for every table and column (None: not tracked).
    pub usage: Option<crate::evidence::Usage>,
    /// What usage tracking saw, for every index (None: not tracked).
    pub index_usage: Option<crate::evidence::Usage>,
}

#[cfg(test)]
impl FakeFacts {
    /// A populated, existing table `public.<name>`.
    pub fn table(name: &str) -> Rel {
        Rel {
            // Distinct per name (columns are looked up by oid).
            oid: 1000
                + name
                    .bytes()
                    .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
                    % 1_000_000,
            schema: "public".into(),
            name: name.into(),
            display: format!("public.{name}"),
            kind: RelKind::Table,
            new_in_xact: false,
            temp: false,
            populated: true,
            storage: Some(Storage {
                size_bytes: 8192 * 10,
                est_rows: Some(1000),
                has_data: true,
                data_assumed: false,
                filled_by_script: false,
            }),
            physical: Some(Physical {
                persistence: b'p',
                tablespace: 0,
                access_method: FAKE_HEAP,
            }),
        }
    }

    pub fn with(mut self, name: &str, rel: Rel) -> Self {
        self.rels.push((RelRef::new(None, name), rel));
        self
    }

    pub fn with_index(mut self, index: &str, table: &str) -> Self {
        self.index_tables
            .push((RelRef::new(None, index), RelRef::new(None, table)));
        self
    }

    pub fn with_column(mut self, rel: &Rel, col: Column) -> Self {
        self.columns.push((rel.oid, col));
        self
    }

    pub fn with_usage(mut self, usage: crate::evidence::Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    pub fn with_index_usage(mut self, usage: crate::evidence::Usage) -> Self {
        self.index_usage = Some(usage);
        self
    }
}

/// Test helpers for relations.
#[cfg(test)]
impl Rel {
    /// This test relation with the storage the testing helpers gave it.
    pub fn stored(self) -> Stored {
        let st = self.storage.expect("a test relation without storage");
        Stored::new(self, st)
    }

    pub fn set_empty(&mut self) {
        self.storage = Some(Storage {
            size_bytes: 0,
            est_rows: None,
            has_data: false,
            data_assumed: false,
            filled_by_script: false,
        });
    }
}

#[cfg(test)]
impl Facts for FakeFacts {
    /// Without storage, like the catalog: a rule must ask `with_storage` for it.
    fn relation(&self, r: &RelRef) -> Option<Rel> {
        self.rels.iter().find(|(k, _)| k.name == r.name).map(|(_, v)| Rel {
            storage: None,
            ..v.clone()
        })
    }
    fn with_storage(&self, rel: Rel) -> Stored {
        let stored = self
            .rels
            .iter()
            .find(|(_, v)| v.oid == rel.oid && v.name == rel.name)
            .and_then(|(_, v)| v.storage)
            .or(rel.storage)
            .expect("a test relation without storage (the testing helpers give every one)");
        Stored::new(rel, stored)
    }
    fn usage(&self, _rel: &Rel, _column: Option<&str>) -> crate::evidence::Usage {
        self.usage
            .clone()
            .unwrap_or_else(|| crate::evidence::Usage::unavailable("usage is not tracked here"))
    }
    fn index_usage(&self, _index: &RelRef) -> crate::evidence::Usage {
        self.index_usage
            .clone()
            .unwrap_or_else(|| crate::evidence::Usage::unavailable("usage is not tracked here"))
    }
    fn index_table(&self, index: &RelRef) -> Option<Rel> {
        let (_, t) = self.index_tables.iter().find(|(i, _)| i.name == index.name)?;
        self.relation(t)
    }
    fn index_columns(&self, _rel: &Rel, index: &str) -> Option<Vec<String>> {
        self.index_columns
            .iter()
            .find(|(i, _)| i == index)
            .map(|(_, c)| c.clone())
    }
    fn column(&self, rel: &Rel, column: &str) -> Option<Column> {
        self.columns
            .iter()
            .find(|(o, c)| *o == rel.oid && c.name == column)
            .map(|(_, c)| c.clone())
    }
    fn publication_publishes_changes(&self, name: &str) -> Option<bool> {
        self.publications.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }

    fn replica_identity_columns(&self, rel: &Rel) -> Option<Vec<String>> {
        self.identity_columns
            .iter()
            .find(|(t, _)| *t == rel.name)
            .map(|(_, c)| c.clone())
    }

    fn publication_tables(&self, _name: &str) -> Vec<Rel> {
        vec![]
    }

    fn inheritance_children(&self, rel: &Rel) -> Vec<Stored> {
        self.children
            .iter()
            .filter(|(p, _)| *p == rel.name)
            .filter_map(|(_, c)| self.rels.iter().find(|(_, r)| r.name == *c))
            .map(|(_, r)| self.with_storage(r.clone()))
            .collect()
    }

    fn without_replica_identity(&self, rel: Option<&Rel>) -> Vec<(Rel, &'static str)> {
        self.rels
            .iter()
            .filter(|(_, r)| self.no_identity.contains(&r.name) && rel.is_none_or(|x| x.oid == r.oid))
            .map(|(_, r)| (r.clone(), "it has no primary key, and its replica identity is DEFAULT"))
            .collect()
    }

    fn type_change_rechecks(
        &self,
        _rel: &Rel,
        column: &str,
        _to: (u32, i32),
        _collation: Option<&[String]>,
    ) -> Rechecks {
        self.rechecks
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    }

    fn type_change_rewrites(&self, _rel: &Rel, column: &str, to: (u32, i32)) -> Option<bool> {
        self.type_changes
            .iter()
            .find(|(c, t, _)| c == column && *t == to.0)
            .map(|(_, _, r)| *r)
    }
    fn session(&self) -> Session {
        self.session
    }
    fn server(&self) -> crate::server::Server {
        self.server.unwrap_or(crate::server::Server::of(15))
    }
    /// `pg_default` is the database's default; `fast` is another tablespace.
    fn tablespace_oid(&self, name: &str) -> Option<u32> {
        match name {
            "pg_default" => Some(0),
            "fast" => Some(16500),
            _ => None,
        }
    }
    fn reached(&self, _reach: &crate::model::Reach) -> Reached {
        self.reached.clone()
    }
    fn held_lock(&self, rel: &Rel) -> Option<crate::model::LockMode> {
        self.held.iter().filter(|(t, _)| *t == rel.name).map(|(_, m)| *m).max()
    }
    /// `*_fkey`: a foreign key; `*_valid`: a valid CHECK.
    fn constraint_kind(&self, _rel: &Rel, name: &str) -> Option<(crate::model::ConstraintKind, bool)> {
        use crate::model::ConstraintKind as K;
        if name.ends_with("_fkey") {
            Some((K::ForeignKey, false))
        } else {
            name.ends_with("_valid").then_some((K::Check, true))
        }
    }
    fn domain_columns(&self, domain: &[String]) -> Vec<(Stored, String)> {
        let Some(d) = domain.last() else { return vec![] };
        self.domain_users
            .iter()
            .filter(|(dom, _, _)| dom == d)
            .filter_map(|(_, t, c)| {
                let r = self.relation(&RelRef::new(None, t))?;
                Some((self.with_storage(r), c.clone()))
            })
            .filter(|(r, _)| r.existing() && r.has_data())
            .collect()
    }
    fn access_method_oid(&self, name: &str) -> Option<u32> {
        match name {
            "heap" => Some(FAKE_HEAP),
            "columnar" => Some(16600),
            _ => None,
        }
    }
}
