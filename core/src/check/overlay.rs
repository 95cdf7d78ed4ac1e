//! What a script has done so far to the schema, layered over the live catalog: relations and
//! schemas created, renamed or dropped, columns added or changed, CHECK constraints, tables
//! filled with rows, and the migration opened. Pure data: the catalog is reached through the
//! [`Catalog`] trait, so the bookkeeping is unit-tested without a server.

use super::naming;
use super::step::{Ddl, Effect, NewCheck, NewIndex, NewRelation};
use crate::facts::{Column, RelKind};
use crate::model::{AlterCmd, Command, ObjectKind, RelRef};
use std::collections::{HashMap, HashSet};

/// Oids the overlay gives the relations a script creates: above any oid a real catalog hands out
/// in practice, and never passed to the catalog.
pub const FIRST_SCRIPT_OID: u32 = 0xFFF0_0000;

pub fn is_script_oid(oid: u32) -> bool {
    oid >= FIRST_SCRIPT_OID
}

/// The live catalog, as far as the overlay needs it.
pub trait Catalog {
    /// The relation `schema.name` (`schema` may be `pg_temp`).
    fn relation_oid(&self, schema: &str, name: &str) -> Option<u32>;
    fn schema_exists(&self, schema: &str) -> bool;
    /// A column of a catalog relation.
    fn column(&self, oid: u32, column: &str) -> Option<Column>;
    /// The (schema, name) of a catalog relation.
    fn name_of(&self, oid: u32) -> Option<(String, String)>;
    /// The table a catalog index belongs to.
    fn table_of_index(&self, oid: u32) -> Option<u32>;
    /// Names of the CHECK constraints of a catalog relation that prove `column` NOT NULL
    /// once valid, with whether each is valid.
    fn checks_proving(&self, oid: u32, column: &str) -> Vec<(String, bool)>;
}

/// A relation the script created, or a catalog relation it renamed or moved.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayRel {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `None` for a catalog relation (renamed): its other facts come from the catalog.
    pub created: Option<Created>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub kind: RelKind,
    pub temp: bool,
    /// The transaction that created it (see [`Overlay::tx`]).
    pub tx: u32,
    /// A materialized view created WITH DATA.
    pub populated: bool,
    pub columns: Vec<Column>,
    /// For an index: its table and key columns.
    pub index: Option<(u32, Vec<String>)>,
    /// The table it is a partition of (or inherits from): dropping that drops it.
    pub parent: Option<u32>,
    /// The tables its foreign keys reference: they cannot be dropped without CASCADE.
    pub references: Vec<u32>,
    /// Its parent's default partition.
    pub default_partition: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct ColumnPatch {
    column: Column,
    /// The column's name in the catalog, for a catalog column (renamed or changed).
    catalog_name: Option<String>,
    dropped: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Check {
    oid: u32,
    name: String,
    implies_not_null: Vec<String>,
    valid: bool,
}

/// An error PostgreSQL itself would raise for a statement, found while applying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub sqlstate: &'static str,
    pub message: String,
}

impl Refusal {
    fn undefined_table(what: &str, r: &RelRef) -> Refusal {
        Refusal {
            sqlstate: "42P01",
            message: format!("{what} \"{}\" does not exist", plain_name(r)),
        }
    }
}

/// `schema.name` or `name`, unquoted, as PostgreSQL's "does not exist" messages print it.
fn plain_name(r: &RelRef) -> String {
    match &r.schema {
        Some(s) => format!("{s}.{}", r.name),
        None => r.name.clone(),
    }
}

/// The overlay's relations, by oid and by (schema, name): a script of thousands of statements
/// looks names up thousands of times.
#[derive(Debug, Clone, Default, PartialEq)]
struct Rels {
    by_oid: HashMap<u32, OverlayRel>,
    by_name: HashMap<(String, String), u32>,
}

impl Rels {
    fn get(&self, oid: u32) -> Option<&OverlayRel> {
        self.by_oid.get(&oid)
    }

    fn get_mut(&mut self, oid: u32) -> Option<&mut OverlayRel> {
        self.by_oid.get_mut(&oid)
    }

    fn named(&self, schema: &str, name: &str) -> Option<u32> {
        self.by_name.get(&(schema.to_owned(), name.to_owned())).copied()
    }

    /// Add a relation; one of the same name is replaced.
    fn insert(&mut self, rel: OverlayRel) {
        if let Some(old) = self.by_name.insert((rel.schema.clone(), rel.name.clone()), rel.oid) {
            self.by_oid.remove(&old);
        }
        self.by_oid.insert(rel.oid, rel);
    }

    fn remove(&mut self, oid: u32) -> Option<OverlayRel> {
        let rel = self.by_oid.remove(&oid)?;
        self.by_name.remove(&(rel.schema.clone(), rel.name.clone()));
        Some(rel)
    }

    fn rename(&mut self, oid: u32, new_schema: Option<&str>, new_name: &str) {
        if let Some(mut rel) = self.remove(oid) {
            rel.name = new_name.to_owned();
            if let Some(s) = new_schema {
                rel.schema = s.to_owned();
            }
            self.insert(rel);
        }
    }

    fn retain(&mut self, keep: impl Fn(&OverlayRel) -> bool) {
        let dropped: Vec<u32> = self.by_oid.values().filter(|r| !keep(r)).map(|r| r.oid).collect();
        for oid in dropped {
            self.remove(oid);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    rels: Rels,
    /// Catalog relation names the script dropped or renamed away: (schema, name).
    gone: HashSet<(String, String)>,
    schemas_created: Vec<String>,
    schemas_dropped: Vec<String>,
    /// Columns of catalog relations the script added, changed, renamed or dropped, by
    /// (oid, current name).
    columns: HashMap<(u32, String), ColumnPatch>,
    checks: Vec<Check>,
    /// Catalog CHECK constraints the script validated: (oid, name).
    validated: Vec<(u32, String)>,
    /// Relations rows were written to.
    filled: HashSet<u32>,
    /// Catalog relations the script truncated (and wrote no rows to since).
    emptied: HashSet<u32>,
    /// Functions the script created, by their name's last part, with their declared volatility.
    functions: Vec<(String, crate::model::Volatility)>,
    /// The bodies of the functions and procedures the script created, by their name's last part.
    routines: Vec<(String, crate::check::step::Routine)>,
    /// Catalog relations whose persistence, tablespace or access method the script changed.
    physical_changed: HashSet<u32>,
    /// Next number to try for each name PostgreSQL chose (`t_a_idx`, `t_a_idx1`, …).
    chosen: HashMap<String, u32>,
    /// `begin_migration` / `end_migration` seen: whether a migration is open.
    pub in_migration: Option<bool>,
    next_oid: u32,
    /// The transaction now running: each autocommit statement and each block gets a new number.
    pub tx: u32,
    /// The script's transaction that continues the one check() runs in (its first block), whose
    /// locks are real.
    pub live_tx: Option<u32>,
    /// Locks above SHARE UPDATE EXCLUSIVE that statements of a transaction took: (tx, oid, mode).
    held: Vec<(u32, u32, crate::model::LockMode)>,
    /// Schemas where an index or constraint was created under a name PostgreSQL chose and the
    /// overlay could not predict: a missing index there is not reported.
    unpredictable: Vec<String>,
}

/// The search path, as schema names in lookup order, and where unqualified objects are created.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchPath {
    /// Lookup order, `pg_temp` and `pg_catalog` included where PostgreSQL puts them implicitly.
    pub lookup: Vec<String>,
    /// The explicitly listed schemas, in order (candidates for creation).
    pub explicit: Vec<String>,
}

impl Overlay {
    pub fn new() -> Overlay {
        Overlay {
            next_oid: FIRST_SCRIPT_OID,
            ..Overlay::default()
        }
    }

    /// Record that the current transaction holds `mode` on `oid` until it ends.
    pub fn hold(&mut self, oid: u32, mode: crate::model::LockMode) {
        let tx = self.tx;
        self.held.retain(|(t, _, _)| *t == tx);
        self.held.push((tx, oid, mode));
    }

    /// Whether the script changed the storage settings of `oid` (see `physical_changed`).
    pub fn physical_changed(&self, oid: u32) -> bool {
        self.physical_changed.contains(&oid)
    }

    /// The strongest lock the current transaction holds on `oid`.
    pub fn held_lock(&self, oid: u32) -> Option<crate::model::LockMode> {
        self.held
            .iter()
            .filter(|(t, o, _)| *t == self.tx && *o == oid)
            .map(|(_, _, m)| *m)
            .max()
    }

    pub fn schema_exists(&self, schema: &str, catalog: &dyn Catalog) -> bool {
        if self.schemas_dropped.iter().any(|s| s == schema) {
            return false;
        }
        self.schemas_created.iter().any(|s| s == schema) || catalog.schema_exists(schema)
    }

    /// The oid a name resolves to, through the script's changes and then the catalog.
    pub fn resolve(&self, r: &RelRef, path: &SearchPath, catalog: &dyn Catalog) -> Option<u32> {
        match &r.schema {
            Some(s) => self.resolve_in(normalize_schema(s), &r.name, catalog),
            None => path.lookup.iter().find_map(|s| self.resolve_in(s, &r.name, catalog)),
        }
    }

    fn resolve_in(&self, schema: &str, name: &str, catalog: &dyn Catalog) -> Option<u32> {
        if self.schemas_dropped.iter().any(|s| s == schema) {
            return None;
        }
        if let Some(oid) = self.rels.named(schema, name) {
            return Some(oid);
        }
        if self.gone.contains(&(schema.to_owned(), name.to_owned())) {
            return None;
        }
        catalog.relation_oid(schema, name)
    }

    pub fn rel(&self, oid: u32) -> Option<&OverlayRel> {
        self.rels.get(oid)
    }

    fn created_mut(&mut self, oid: u32) -> Option<&mut Created> {
        self.rels.get_mut(oid).and_then(|r| r.created.as_mut())
    }

    /// Whether a catalog relation was dropped by the script.
    pub fn catalog_gone(&self, oid: u32, catalog: &dyn Catalog) -> bool {
        if self.rel(oid).is_some() {
            return false;
        }
        catalog
            .name_of(oid)
            .is_none_or(|(s, n)| self.schemas_dropped.contains(&s) || self.gone.contains(&(s, n)))
    }

    /// The relations the script created as partitions or children of `parent` (and theirs).
    pub fn children_of(&self, parent: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut todo = vec![parent];
        while let Some(p) = todo.pop() {
            for r in self.rels.by_oid.values() {
                if r.created.as_ref().is_some_and(|c| c.parent == Some(p)) && !out.contains(&r.oid) {
                    out.push(r.oid);
                    todo.push(r.oid);
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The body of the procedure (or function) the script created under this name.
    /// A schema given on either side must be the same.
    pub fn routine(&self, schema: Option<&str>, name: &str, procedure: bool) -> Option<&crate::check::step::Routine> {
        self.routines
            .iter()
            .rev()
            .find(|(n, r)| {
                n == name
                    && r.procedure == procedure
                    && (schema.is_none() || r.schema.is_none() || r.schema.as_deref() == schema)
            })
            .map(|(_, r)| r)
    }

    /// `DROP PROCEDURE` / `DROP FUNCTION` / `DROP ROUTINE`: the script's bodies of that name go.
    pub fn drop_routine(&mut self, schema: Option<&str>, name: &str) {
        self.routines
            .retain(|(n, r)| !(n == name && (schema.is_none() || r.schema.is_none() || r.schema.as_deref() == schema)));
    }

    /// The declared volatility of a function the script created under this name.
    pub fn function_volatility(&self, name: &str) -> Option<crate::model::Volatility> {
        self.functions.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The default partition the script gave the partitioned table `parent`.
    pub fn default_partition_of(&self, parent: u32) -> Option<u32> {
        self.rels
            .by_oid
            .values()
            .find(|r| {
                r.created
                    .as_ref()
                    .is_some_and(|c| c.parent == Some(parent) && c.default_partition)
            })
            .map(|r| r.oid)
    }

    /// The relations the script created (and still has) in these schemas.
    pub fn created_in_schemas(&self, schemas: &[String]) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .rels
            .by_oid
            .values()
            .filter(|r| r.created.is_some() && schemas.iter().any(|s| normalize_schema(s) == r.schema))
            .map(|r| r.oid)
            .collect();
        out.sort_unstable();
        out
    }

    pub fn is_filled(&self, oid: u32) -> bool {
        self.filled.contains(&oid)
    }

    /// The script truncated `oid` and wrote no rows to it since.
    pub fn is_emptied(&self, oid: u32) -> bool {
        self.emptied.contains(&oid) && !self.filled.contains(&oid)
    }

    /// The column `name` of relation `oid`, with the script's changes.
    pub fn column(&self, oid: u32, name: &str, catalog: &dyn Catalog) -> Option<Column> {
        if let Some(created) = self.rel(oid).and_then(|r| r.created.as_ref()) {
            let mut c = created.columns.iter().find(|c| c.name == name)?.clone();
            self.prove(oid, &mut c);
            return Some(c);
        }
        let mut c = match self.columns.get(&(oid, name.to_owned())) {
            Some(p) if p.dropped => return None,
            Some(p) => p.column.clone(),
            None => catalog.column(oid, name)?,
        };
        if c.not_null_proven_by.is_none() && !c.not_null {
            let catalog_name = self.catalog_name(oid, name);
            if let Some(catalog_name) = catalog_name {
                c.not_null_proven_by = catalog
                    .checks_proving(oid, &catalog_name)
                    .into_iter()
                    .find(|(n, valid)| {
                        (*valid || self.validated.contains(&(oid, n.clone())))
                            && !self.checks.iter().any(|k| k.oid == oid && k.name == *n && !k.valid)
                    })
                    .map(|(n, _)| n);
            }
        }
        self.prove(oid, &mut c);
        Some(c)
    }

    /// The catalog's name of column `name` of catalog relation `oid` (`None`: added by the script).
    pub fn catalog_name(&self, oid: u32, name: &str) -> Option<String> {
        match self.columns.get(&(oid, name.to_owned())) {
            Some(p) if p.dropped => None,
            Some(p) => p.catalog_name.clone(),
            None => Some(name.to_owned()),
        }
    }

    /// A column without NOT NULL is still proven non-null by a valid CHECK the script added.
    fn prove(&self, oid: u32, c: &mut Column) {
        if c.not_null || c.not_null_proven_by.is_some() {
            return;
        }
        c.not_null_proven_by = self
            .checks
            .iter()
            .find(|k| k.oid == oid && k.valid && k.implies_not_null.contains(&c.name))
            .map(|k| k.name.clone());
    }

    /// The table and key columns of an index the script created.
    pub fn index(&self, oid: u32) -> Option<&(u32, Vec<String>)> {
        self.rel(oid)?.created.as_ref()?.index.as_ref()
    }

    fn patch_column(&mut self, oid: u32, name: &str, catalog: &dyn Catalog, f: impl FnOnce(&mut Column)) {
        if let Some(created) = self.created_mut(oid) {
            if let Some(c) = created.columns.iter_mut().find(|c| c.name == name) {
                f(c);
            }
            return;
        }
        let key = (oid, name.to_owned());
        if let Some(p) = self.columns.get_mut(&key) {
            if !p.dropped {
                f(&mut p.column);
            }
            return;
        }
        if let Some(mut column) = catalog.column(oid, name) {
            f(&mut column);
            let patch = ColumnPatch {
                column,
                catalog_name: Some(name.to_owned()),
                dropped: false,
            };
            self.columns.insert(key, patch);
        }
    }

    fn add_column(&mut self, oid: u32, column: Column) {
        if let Some(created) = self.created_mut(oid) {
            created.columns.retain(|c| c.name != column.name);
            created.columns.push(column);
            return;
        }
        let key = (oid, column.name.clone());
        let patch = ColumnPatch {
            column,
            catalog_name: None,
            dropped: false,
        };
        self.columns.insert(key, patch);
    }

    fn drop_column(&mut self, oid: u32, name: &str) {
        if let Some(created) = self.created_mut(oid) {
            created.columns.retain(|c| c.name != name);
            return;
        }
        let patch = ColumnPatch {
            column: Column {
                name: name.to_owned(),
                not_null: false,
                not_null_proven_by: None,
                type_display: String::new(),
                generated: None,
            },
            catalog_name: None,
            dropped: true,
        };
        self.columns.insert((oid, name.to_owned()), patch);
    }

    fn rename_column(&mut self, oid: u32, from: &str, to: &str, catalog: &dyn Catalog) {
        if let Some(created) = self.created_mut(oid) {
            if let Some(c) = created.columns.iter_mut().find(|c| c.name == from) {
                c.name = to.to_owned();
            }
            return;
        }
        let catalog_name = self.catalog_name(oid, from);
        let Some(mut column) = self.column(oid, from, catalog) else {
            return;
        };
        column.name = to.to_owned();
        column.not_null_proven_by = None;
        self.drop_column(oid, from);
        let patch = ColumnPatch {
            column,
            catalog_name,
            dropped: false,
        };
        self.columns.insert((oid, to.to_owned()), patch);
        for k in self.checks.iter_mut().filter(|k| k.oid == oid) {
            for c in k.implies_not_null.iter_mut().filter(|c| *c == from) {
                *c = to.to_owned();
            }
        }
    }

    fn new_oid(&mut self) -> u32 {
        if self.next_oid < FIRST_SCRIPT_OID {
            self.next_oid = FIRST_SCRIPT_OID;
        }
        self.next_oid += 1;
        self.next_oid
    }

    /// Whether a relation name is taken in a schema (script or catalog).
    fn taken(&self, schema: &str, name: &str, catalog: &dyn Catalog) -> bool {
        self.resolve_in(schema, name, catalog).is_some()
    }

    /// The name PostgreSQL chooses, remembering where the numbering got to: a script that
    /// creates a thousand unnamed indexes on one column costs a thousand lookups, not a million.
    fn choose(&mut self, schema: &str, name1: &str, name2: Option<&str>, label: &str, catalog: &dyn Catalog) -> String {
        let key = format!("{schema}\0{name1}\0{}\0{label}", name2.unwrap_or_default());
        let start = self.chosen.get(&key).copied().unwrap_or(0);
        let (name, pass) = naming::choose_from(name1, name2, label, start, |n| self.taken(schema, n, catalog));
        self.chosen.insert(key, pass);
        name
    }

    /// A new relation; it replaces one of the same name the script dropped earlier.
    fn create(&mut self, schema: &str, name: &str, created: Created) -> u32 {
        let oid = self.new_oid();
        self.rels.insert(OverlayRel {
            oid,
            schema: schema.to_owned(),
            name: name.to_owned(),
            created: Some(created),
        });
        oid
    }

    /// Make a relation unreachable under its current name, with the indexes the script built
    /// on it. (A renamed catalog relation's old name is in `gone` already.)
    fn remove(&mut self, oid: u32, catalog: &dyn Catalog) {
        if self.rels.remove(oid).is_none()
            && let Some(name) = catalog.name_of(oid)
        {
            self.gone.insert(name);
        }
        self.rels.retain(|r| {
            r.created
                .as_ref()
                .and_then(|c| c.index.as_ref())
                .is_none_or(|(t, _)| *t != oid)
        });
        // Its partitions and inheritance children the script created go with it (PostgreSQL
        // drops partitions with their parent; children need CASCADE, or the DROP fails).
        let children: Vec<u32> = self
            .rels
            .by_oid
            .values()
            .filter(|r| r.created.as_ref().is_some_and(|c| c.parent == Some(oid)))
            .map(|r| r.oid)
            .collect();
        for child in children {
            self.remove(child, catalog);
        }
    }

    fn rename(&mut self, oid: u32, new_schema: Option<&str>, new_name: &str, catalog: &dyn Catalog) {
        if self.rels.get(oid).is_some() {
            self.rels.rename(oid, new_schema, new_name);
            return;
        }
        if let Some((schema, name)) = catalog.name_of(oid) {
            self.gone.insert((schema.clone(), name));
            self.rels.insert(OverlayRel {
                oid,
                schema: new_schema.map_or(schema, str::to_owned),
                name: new_name.to_owned(),
                created: None,
            });
        }
    }

    /// Where an unqualified (or `pg_temp`) relation is created.
    fn creation_schema(
        &self,
        r: &RelRef,
        temp: bool,
        path: &SearchPath,
        catalog: &dyn Catalog,
    ) -> Result<String, Refusal> {
        if temp {
            return Ok("pg_temp".into());
        }
        match &r.schema {
            Some(s) if normalize_schema(s) == "pg_temp" => Ok("pg_temp".into()),
            Some(s) if self.schema_exists(s, catalog) => Ok(s.clone()),
            Some(s) => Err(Refusal {
                sqlstate: "3F000",
                message: format!("schema \"{s}\" does not exist"),
            }),
            None => path
                .explicit
                .iter()
                .find(|s| *s != "pg_temp" && self.schema_exists(s, catalog))
                .cloned()
                .ok_or_else(|| Refusal {
                    sqlstate: "3F000",
                    message: "no schema has been selected to create in".into(),
                }),
        }
    }

    /// Apply a DDL statement's effect. A statement PostgreSQL would refuse (a missing relation
    /// or schema) changes nothing and returns the error.
    pub fn apply(&mut self, ddl: &Ddl, path: &SearchPath, catalog: &dyn Catalog) -> Result<(), Refusal> {
        let resolve = |o: &Overlay, r: &RelRef| o.resolve(r, path, catalog);
        // Relations the statement acts on must exist (unless IF EXISTS).
        for (what, r) in required(ddl) {
            if resolve(self, r).is_none() && !(what == "index" && self.index_may_exist(r, path)) {
                return Err(Refusal::undefined_table(what, r));
            }
        }
        match &ddl.effect {
            Effect::CreateRelation(new) => {
                self.create_relation(new, path, catalog)?;
                // The tables its foreign keys reference.
                if let Command::CreateRelation { references, .. } = &ddl.stmt.command
                    && let Some(oid) = resolve(self, &new.name)
                {
                    let refs: Vec<u32> = references.iter().filter_map(|r| resolve(self, r)).collect();
                    if let Some(c) = self.created_mut(oid) {
                        c.references = refs;
                        c.default_partition = ddl.default_bound;
                    }
                }
                return Ok(());
            }
            Effect::CreateIndex(ix) => return self.create_index(ix, path, catalog),
            Effect::CreateSchema { name, if_not_exists } => {
                if self.schema_exists(name, catalog) {
                    if *if_not_exists {
                        return Ok(());
                    }
                    return Err(Refusal {
                        sqlstate: "42P06",
                        message: format!("schema \"{name}\" already exists"),
                    });
                }
                self.schemas_dropped.retain(|s| s != name);
                self.schemas_created.push(name.clone());
                return Ok(());
            }
            Effect::DropRoutines(names) => {
                for (schema, name) in names {
                    self.drop_routine(schema.as_deref(), name);
                }
                return Ok(());
            }
            Effect::DropSchemas { names, missing_ok } => {
                for name in names {
                    if !self.schema_exists(name, catalog) {
                        if *missing_ok {
                            continue;
                        }
                        return Err(Refusal {
                            sqlstate: "3F000",
                            message: format!("schema \"{name}\" does not exist"),
                        });
                    }
                }
                for name in names {
                    self.schemas_created.retain(|s| s != name);
                    self.rels.retain(|r| r.schema != *name);
                    self.schemas_dropped.push(name.clone());
                }
                return Ok(());
            }
            Effect::CreateFunction {
                name,
                volatility,
                routine,
            } => {
                self.functions.retain(|(n, _)| n != name);
                self.functions.push((name.clone(), *volatility));
                if let Some(r) = routine {
                    self.routines
                        .retain(|(n, o)| n != name || o.procedure != r.procedure || o.schema != r.schema);
                    self.routines.push((name.clone(), r.clone()));
                }
                return Ok(());
            }
            Effect::AlterTable { .. } | Effect::None => {}
        }
        if ddl.default_bound {
            let partition = match (&ddl.effect, &ddl.stmt.command) {
                (Effect::CreateRelation(new), _) => Some(&new.name),
                (_, Command::AlterTable(at)) => at.cmds.iter().find_map(|c| match c {
                    AlterCmd::AttachPartition { partition, .. } => Some(partition),
                    _ => None,
                }),
                _ => None,
            };
            if let Some(oid) = partition.and_then(|p| resolve(self, p))
                && let Some(c) = self.created_mut(oid)
            {
                c.default_partition = true;
            }
        }
        match &ddl.stmt.command {
            Command::Drop(d) => {
                // A table the script's other tables reference by foreign key cannot be dropped
                // without CASCADE (with it, the foreign keys go: not followed).
                if d.kind == ObjectKind::Table && !d.cascade {
                    let dropped: Vec<u32> = d.objects.iter().filter_map(|o| resolve(self, o)).collect();
                    // (A parent the script's tables inherit from would need CASCADE too, but
                    // NO INHERIT is not followed: its children are dropped with it instead.)
                    let referenced = self.rels.by_oid.values().any(|r| {
                        !dropped.contains(&r.oid)
                            && r.created
                                .as_ref()
                                .is_some_and(|c| c.references.iter().any(|x| dropped.contains(x)))
                    });
                    if referenced {
                        return Err(Refusal {
                            sqlstate: "2BP01",
                            message: "cannot drop table because other objects depend on it".into(),
                        });
                    }
                }
                for o in &d.objects {
                    if d.kind == ObjectKind::Trigger {
                        continue;
                    }
                    if let Some(oid) = resolve(self, o) {
                        self.remove(oid, catalog);
                    }
                }
            }
            Command::Rename(r) => {
                let Some(oid) = resolve(self, &r.target) else {
                    return Ok(());
                };
                match (&r.what, &r.column) {
                    (ObjectKind::Column, Some(col)) => self.rename_column(oid, col, &r.new_name, catalog),
                    (ObjectKind::Column, None) => {}
                    _ => self.rename(oid, r.new_schema.as_deref(), &r.new_name, catalog),
                }
            }
            Command::AlterTable(at) => {
                let Some(oid) = resolve(self, &at.table) else {
                    return Ok(());
                };
                self.alter_table(oid, &at.cmds, &ddl.effect, path, catalog);
            }
            // The tables it names are empty from here on (children and CASCADE's tables are
            // not followed).
            Command::Truncate(t) => {
                for (r, _) in &t.tables {
                    if let Some(oid) = resolve(self, r) {
                        self.filled.remove(&oid);
                        self.emptied.insert(oid);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// An index name the script may have created under a name PostgreSQL chose.
    fn index_may_exist(&self, r: &RelRef, path: &SearchPath) -> bool {
        match &r.schema {
            Some(s) => self.unpredictable.contains(s),
            None => path.lookup.iter().any(|s| self.unpredictable.contains(s)),
        }
    }

    fn create_relation(&mut self, new: &NewRelation, path: &SearchPath, catalog: &dyn Catalog) -> Result<(), Refusal> {
        let schema = self.creation_schema(&new.name, new.temp, path, catalog)?;
        if self.taken(&schema, &new.name.name, catalog) {
            if new.if_not_exists {
                return Ok(());
            }
            return Err(Refusal {
                sqlstate: "42P07",
                message: format!("relation \"{}\" already exists", new.name.name),
            });
        }
        let own: Vec<Column> = new
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                not_null: c.not_null,
                not_null_proven_by: None,
                type_display: c.type_display.clone(),
                generated: c.generated,
            })
            .collect();
        // A partition or child the script's own parent: the parent's columns come first (a
        // catalog parent's are looked up there when a rule asks).
        let parent = new.parent.as_ref().and_then(|(p, _)| self.resolve(p, path, catalog));
        let mut columns: Vec<Column> = parent
            .and_then(|p| self.rel(p))
            .and_then(|r| r.created.as_ref())
            .map(|c| c.columns.clone())
            .unwrap_or_default();
        for c in own {
            match columns.iter_mut().find(|x| x.name == c.name) {
                Some(x) => x.not_null |= c.not_null,
                None => columns.push(c),
            }
        }
        let tx = self.tx;
        let oid = self.create(
            &schema,
            &new.name.name,
            Created {
                kind: new.kind,
                temp: new.temp || schema == "pg_temp",
                tx,
                populated: new.kind != RelKind::MatView || new.with_data,
                columns,
                index: None,
                parent,
                references: vec![],
                default_partition: false,
            },
        );
        if new.with_data {
            self.filled.insert(oid);
        }
        for c in new.columns.iter().filter(|c| c.sequence) {
            self.create_sequence(&schema, &new.name.name, &c.name, catalog);
        }
        for ix in &new.indexes {
            self.add_index(&schema, oid, &new.name.name, ix, catalog);
        }
        self.add_checks(oid, &new.checks);
        Ok(())
    }

    fn create_sequence(&mut self, schema: &str, table: &str, column: &str, catalog: &dyn Catalog) {
        let name = self.choose(schema, table, Some(column), "seq", catalog);
        let tx = self.tx;
        self.create(
            schema,
            &name,
            Created {
                kind: RelKind::Sequence,
                temp: schema == "pg_temp",
                tx,
                populated: true,
                columns: vec![],
                index: None,
                parent: None,
                references: vec![],
                default_partition: false,
            },
        );
    }

    fn create_index(&mut self, ix: &NewIndex, path: &SearchPath, catalog: &dyn Catalog) -> Result<(), Refusal> {
        let Some(table) = self.resolve(&ix.table, path, catalog) else {
            return Err(Refusal::undefined_table("relation", &ix.table));
        };
        let (schema, table_name) = self.names_of(table, catalog).unwrap_or_default();
        if let Some(name) = &ix.name
            && self.taken(&schema, name, catalog)
        {
            if ix.if_not_exists {
                return Ok(());
            }
            return Err(Refusal {
                sqlstate: "42P07",
                message: format!("relation \"{name}\" already exists"),
            });
        }
        self.add_index(&schema, table, &table_name, ix, catalog);
        Ok(())
    }

    /// (schema, name) of any relation, script or catalog.
    pub fn names_of(&self, oid: u32, catalog: &dyn Catalog) -> Option<(String, String)> {
        match self.rel(oid) {
            Some(r) => Some((r.schema.clone(), r.name.clone())),
            None => catalog.name_of(oid),
        }
    }

    fn add_index(&mut self, schema: &str, table: u32, table_name: &str, ix: &NewIndex, catalog: &dyn Catalog) {
        let name = match &ix.name {
            Some(n) => n.clone(),
            None if ix.expressions => {
                if !self.unpredictable.iter().any(|s| s == schema) {
                    self.unpredictable.push(schema.to_owned());
                }
                return;
            }
            None => {
                let label = if ix.primary {
                    "pkey"
                } else if ix.unique {
                    "key"
                } else {
                    "idx"
                };
                let columns = (!ix.primary).then(|| naming::column_addition(&ix.columns));
                self.choose(schema, table_name, columns.as_deref(), label, catalog)
            }
        };
        let tx = self.tx;
        self.create(
            schema,
            &name,
            Created {
                kind: RelKind::Index,
                temp: schema == "pg_temp",
                tx,
                populated: true,
                columns: vec![],
                index: Some((table, ix.columns.clone())),
                parent: None,
                references: vec![],
                default_partition: false,
            },
        );
        if ix.primary {
            for c in &ix.columns {
                self.patch_column(table, c, catalog, |col| col.not_null = true);
            }
        }
    }

    fn add_checks(&mut self, oid: u32, checks: &[NewCheck]) {
        for (i, k) in checks.iter().enumerate() {
            self.checks.push(Check {
                oid,
                name: k.name.clone().unwrap_or_else(|| format!("(check {i})")),
                implies_not_null: k.implies_not_null.clone(),
                valid: !k.not_valid,
            });
        }
    }

    fn alter_table(&mut self, oid: u32, cmds: &[AlterCmd], effect: &Effect, path: &SearchPath, catalog: &dyn Catalog) {
        let (schema, table_name) = self.names_of(oid, catalog).unwrap_or_default();
        for c in cmds {
            let (partition, parent) = match c {
                AlterCmd::AttachPartition { partition, .. } => (partition, Some(oid)),
                AlterCmd::DetachPartition { partition, .. } => (partition, None),
                _ => continue,
            };
            if let Some(p) = self.resolve(partition, path, catalog)
                && let Some(created) = self.created_mut(p)
            {
                created.parent = parent;
            }
        }
        // Persistence, tablespace or access method changed by the script: the catalog's no
        // longer tell whether a later SET … changes nothing.
        if cmds.iter().any(|c| {
            matches!(
                c,
                AlterCmd::SetLogged
                    | AlterCmd::SetUnlogged
                    | AlterCmd::SetTablespace { .. }
                    | AlterCmd::SetAccessMethod { .. }
            )
        }) {
            self.physical_changed.insert(oid);
        }
        for cmd in cmds {
            match cmd {
                AlterCmd::AddColumn(def) => {
                    let generated = if def.generated_virtual.is_some() {
                        Some('v')
                    } else if def.generated_stored.is_some() {
                        Some('s')
                    } else {
                        None
                    };
                    self.add_column(
                        oid,
                        Column {
                            name: def.name.clone(),
                            not_null: def.not_null,
                            not_null_proven_by: None,
                            type_display: def.type_name.display.clone(),
                            generated,
                        },
                    );
                    if def.identity || def.type_name.serial {
                        self.create_sequence(&schema, &table_name, &def.name, catalog);
                    }
                }
                AlterCmd::DropColumn { column } => self.drop_column(oid, column),
                AlterCmd::SetNotNull { column } => self.patch_column(oid, column, catalog, |c| c.not_null = true),
                AlterCmd::AlterType { column, new_type, .. } => {
                    let display = new_type.display.clone();
                    self.patch_column(oid, column, catalog, |c| c.type_display = display);
                }
                AlterCmd::ValidateConstraint { name } => {
                    match self.checks.iter_mut().find(|k| k.oid == oid && k.name == *name) {
                        Some(k) => k.valid = true,
                        None => self.validated.push((oid, name.clone())),
                    }
                }
                AlterCmd::AddConstraint(c) => {
                    // USING INDEX renames the index to the constraint's name.
                    if let (Some(index), Some(name)) = (&c.using_index, &c.name) {
                        let r = RelRef::new(Some(&schema), index);
                        if let Some(ix) = self.resolve(&r, path, catalog) {
                            self.rename(ix, None, name, catalog);
                        }
                    }
                    if let Some(index) = &c.using_index
                        && c.kind == crate::model::ConstraintKind::PrimaryKey
                    {
                        let r = RelRef::new(Some(&schema), c.name.as_deref().unwrap_or(index));
                        let keys = self
                            .resolve(&r, path, catalog)
                            .and_then(|ix| self.index(ix).map(|(_, k)| k.clone()))
                            .unwrap_or_default();
                        for k in keys {
                            self.patch_column(oid, &k, catalog, |col| col.not_null = true);
                        }
                    }
                }
                _ => {}
            }
        }
        if let Effect::AlterTable {
            checks,
            indexes,
            dropped_constraints,
        } = effect
        {
            for ix in indexes {
                self.add_index(&schema, oid, &table_name, ix, catalog);
            }
            self.add_checks(oid, checks);
            for name in dropped_constraints {
                self.checks.retain(|k| !(k.oid == oid && k.name == *name));
                self.validated.retain(|(o, n)| !(*o == oid && n == name));
                // Dropping a constraint-backed index: the index goes with it.
                let r = RelRef::new(Some(&schema), name);
                if let Some(ix) = self.resolve(&r, path, catalog)
                    && self.index(ix).is_some_and(|(t, _)| *t == oid)
                {
                    self.remove(ix, catalog);
                }
            }
        }
    }

    /// Rows were written to the relation.
    /// Rows were written to `oid`: a partition's rows are its partitioned parent's too.
    pub fn fill(&mut self, oid: u32) {
        let mut at = Some(oid);
        while let Some(o) = at.filter(|o| self.filled.insert(*o)) {
            at = self
                .rel(o)
                .and_then(|r| r.created.as_ref())
                .and_then(|c| c.parent)
                .filter(|p| {
                    self.rel(*p)
                        .and_then(|r| r.created.as_ref())
                        .is_some_and(|c| c.kind == RelKind::PartitionedTable)
                });
        }
    }
}

/// `pg_temp_3` → `pg_temp`: the session's own temporary schema, however it is spelled.
fn normalize_schema(s: &str) -> &str {
    if s.starts_with("pg_temp_") { "pg_temp" } else { s }
}

/// The relations a statement names that must exist for PostgreSQL to run it, with the word its
/// "does not exist" error uses.
fn required(ddl: &Ddl) -> Vec<(&'static str, &RelRef)> {
    if ddl.missing_ok {
        return vec![];
    }
    match &ddl.stmt.command {
        Command::AlterTable(at) => vec![("relation", &at.table)],
        Command::Rename(r) => vec![("relation", &r.target)],
        Command::RefreshMatView(r) => vec![("relation", &r.target)],
        Command::CreateTrigger { table } => vec![("relation", table)],
        Command::Comment { target, .. } => vec![("relation", target)],
        Command::CreateRelation { references, .. } => references.iter().map(|r| ("relation", r)).collect(),
        Command::Drop(d) => {
            let what = match d.kind {
                ObjectKind::Table => "table",
                ObjectKind::Index => "index",
                ObjectKind::View => "view",
                ObjectKind::MatView => "materialized view",
                ObjectKind::ForeignTable => "foreign table",
                ObjectKind::Sequence => "sequence",
                _ => return vec![],
            };
            d.objects.iter().map(|o| (what, o)).collect()
        }
        Command::Reindex(r) => match &r.target {
            crate::model::ReindexTarget::Index(i) => vec![("index", i)],
            crate::model::ReindexTarget::Table(t) => vec![("relation", t)],
            crate::model::ReindexTarget::Many { .. } => vec![],
        },
        Command::Rewrite(r) => r.tables.iter().map(|t| ("relation", t)).collect(),
        Command::Truncate(t) => t.tables.iter().map(|(t, _)| ("relation", t)).collect(),
        Command::Lock(l) => l.tables.iter().map(|t| ("relation", t)).collect(),
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::step::{Ddl, NewColumn};
    use crate::model::*;

    /// A catalog with `public.accounts` (oid 100; columns id NOT NULL, email; a NOT VALID check
    /// `email_nn` proving email) and its index `accounts_pkey` (oid 101).
    struct Fake;
    impl Catalog for Fake {
        fn relation_oid(&self, schema: &str, name: &str) -> Option<u32> {
            match (schema, name) {
                ("public", "accounts") => Some(100),
                ("public", "accounts_pkey") => Some(101),
                _ => None,
            }
        }
        fn schema_exists(&self, schema: &str) -> bool {
            matches!(schema, "public" | "pg_catalog")
        }
        fn column(&self, oid: u32, column: &str) -> Option<Column> {
            (oid == 100 && matches!(column, "id" | "email")).then(|| Column {
                name: column.into(),
                not_null: column == "id",
                not_null_proven_by: None,
                type_display: "text".into(),
                generated: None,
            })
        }
        fn name_of(&self, oid: u32) -> Option<(String, String)> {
            match oid {
                100 => Some(("public".into(), "accounts".into())),
                101 => Some(("public".into(), "accounts_pkey".into())),
                _ => None,
            }
        }
        fn table_of_index(&self, oid: u32) -> Option<u32> {
            (oid == 101).then_some(100)
        }
        fn checks_proving(&self, oid: u32, column: &str) -> Vec<(String, bool)> {
            if oid == 100 && column == "email" {
                vec![("email_nn".into(), false)]
            } else {
                vec![]
            }
        }
    }

    fn path() -> SearchPath {
        SearchPath {
            lookup: vec!["pg_catalog".into(), "public".into()],
            explicit: vec!["public".into()],
        }
    }

    fn ddl(command: Command, effect: Effect) -> Ddl {
        Ddl {
            stmt: Statement {
                tag: "X".into(),
                text: None,
                command,
            },
            effect,
            missing_ok: false,
            not_in_block: None,
            default_bound: false,
        }
    }

    fn create_table(name: &str, columns: &[(&str, bool)]) -> Ddl {
        ddl(
            Command::CreateRelation {
                name: Some(RelRef::new(None, name)),
                references: vec![],
                temp: false,

                partition_of: None,
            },
            Effect::CreateRelation(NewRelation {
                name: RelRef::new(None, name),
                kind: RelKind::Table,
                temp: false,
                columns: columns
                    .iter()
                    .map(|(n, nn)| NewColumn {
                        name: (*n).into(),
                        type_display: "integer".into(),
                        not_null: *nn,
                        generated: None,
                        sequence: *n == "id",
                    })
                    .collect(),
                indexes: vec![NewIndex {
                    name: None,
                    table: RelRef::new(None, name),
                    columns: vec!["id".into()],
                    expressions: false,
                    unique: true,
                    primary: true,
                    if_not_exists: false,
                }],
                checks: vec![],
                with_data: false,
                if_not_exists: false,
                parent: None,
            }),
        )
    }

    fn alter(table: &str, cmds: Vec<AlterCmd>, effect: Effect) -> Ddl {
        ddl(
            Command::AlterTable(AlterTable {
                kind: ObjectKind::Table,
                table: RelRef::new(None, table),
                cmds,
            }),
            effect,
        )
    }

    fn r(name: &str) -> RelRef {
        RelRef::new(None, name)
    }

    #[test]
    fn created_tables_their_sequences_and_chosen_index_names_resolve() {
        let mut o = Overlay::new();
        o.apply(
            &create_table("orders", &[("id", false), ("note", false)]),
            &path(),
            &Fake,
        )
        .unwrap();
        let t = o.resolve(&r("orders"), &path(), &Fake).unwrap();
        assert!(is_script_oid(t));
        assert_eq!(
            o.resolve(&RelRef::new(Some("public"), "orders"), &path(), &Fake),
            Some(t)
        );
        let pkey = o
            .resolve(&r("orders_pkey"), &path(), &Fake)
            .expect("index named like PostgreSQL");
        assert_eq!(o.index(pkey), Some(&(t, vec!["id".to_string()])));
        assert!(o.resolve(&r("orders_id_seq"), &path(), &Fake).is_some());
        assert!(
            o.column(t, "id", &Fake).unwrap().not_null,
            "primary key columns are NOT NULL"
        );
        assert!(!o.column(t, "note", &Fake).unwrap().not_null);
        // The catalog is still reached through the overlay.
        assert_eq!(o.resolve(&r("accounts"), &path(), &Fake), Some(100));
        // Creating it again is PostgreSQL's error.
        let again = o.apply(&create_table("orders", &[]), &path(), &Fake).unwrap_err();
        assert_eq!(again.sqlstate, "42P07");
    }

    #[test]
    fn drops_and_renames_hide_catalog_names() {
        let mut o = Overlay::new();
        let rename = ddl(
            Command::Rename(Rename {
                what: ObjectKind::Table,
                target: r("accounts"),
                column: None,
                new_name: "users".into(),
                new_schema: None,
            }),
            Effect::None,
        );
        o.apply(&rename, &path(), &Fake).unwrap();
        assert_eq!(o.resolve(&r("accounts"), &path(), &Fake), None);
        assert_eq!(o.resolve(&r("users"), &path(), &Fake), Some(100));
        let err = o.apply(&rename, &path(), &Fake).unwrap_err();
        assert_eq!(
            err,
            Refusal {
                sqlstate: "42P01",
                message: "relation \"accounts\" does not exist".into()
            }
        );
        let drop = |name: &str, missing_ok: bool| {
            let mut d = ddl(
                Command::Drop(Drop {
                    kind: ObjectKind::Table,
                    objects: vec![r(name)],
                    concurrent: false,
                    cascade: false,
                }),
                Effect::None,
            );
            d.missing_ok = missing_ok;
            d
        };
        o.apply(&drop("users", false), &path(), &Fake).unwrap();
        assert_eq!(o.resolve(&r("users"), &path(), &Fake), None);
        assert_eq!(
            o.apply(&drop("users", false), &path(), &Fake).unwrap_err().message,
            "table \"users\" does not exist"
        );
        o.apply(&drop("users", true), &path(), &Fake).unwrap();
    }

    #[test]
    fn not_valid_check_then_validate_proves_not_null() {
        let mut o = Overlay::new();
        // The catalog's NOT VALID email_nn, validated by the script.
        assert_eq!(o.column(100, "email", &Fake).unwrap().not_null_proven_by, None);
        o.apply(
            &alter(
                "accounts",
                vec![AlterCmd::ValidateConstraint {
                    name: "email_nn".into(),
                }],
                Effect::None,
            ),
            &path(),
            &Fake,
        )
        .unwrap();
        assert_eq!(
            o.column(100, "email", &Fake).unwrap().not_null_proven_by.as_deref(),
            Some("email_nn")
        );
        // A CHECK the script adds NOT VALID proves nothing until validated.
        o.apply(&create_table("t", &[("id", false), ("c", false)]), &path(), &Fake)
            .unwrap();
        let t = o.resolve(&r("t"), &path(), &Fake).unwrap();
        let add = alter(
            "t",
            vec![],
            Effect::AlterTable {
                checks: vec![NewCheck {
                    name: Some("c_nn".into()),
                    implies_not_null: vec!["c".into()],
                    not_valid: true,
                }],
                indexes: vec![],
                dropped_constraints: vec![],
            },
        );
        o.apply(&add, &path(), &Fake).unwrap();
        assert_eq!(o.column(t, "c", &Fake).unwrap().not_null_proven_by, None);
        o.apply(
            &alter(
                "t",
                vec![AlterCmd::ValidateConstraint { name: "c_nn".into() }],
                Effect::None,
            ),
            &path(),
            &Fake,
        )
        .unwrap();
        assert_eq!(
            o.column(t, "c", &Fake).unwrap().not_null_proven_by.as_deref(),
            Some("c_nn")
        );
        // SET NOT NULL on a catalog column.
        o.apply(
            &alter(
                "accounts",
                vec![AlterCmd::SetNotNull { column: "email".into() }],
                Effect::None,
            ),
            &path(),
            &Fake,
        )
        .unwrap();
        assert!(o.column(100, "email", &Fake).unwrap().not_null);
    }

    #[test]
    fn columns_added_dropped_and_renamed() {
        let mut o = Overlay::new();
        let mut def = crate::rules::testing::column_def("tier");
        def.not_null = true;
        o.apply(
            &alter("accounts", vec![AlterCmd::AddColumn(def)], Effect::None),
            &path(),
            &Fake,
        )
        .unwrap();
        assert!(o.column(100, "tier", &Fake).unwrap().not_null);
        assert_eq!(o.catalog_name(100, "tier"), None, "not in the catalog");
        let rename = ddl(
            Command::Rename(Rename {
                what: ObjectKind::Column,
                target: r("accounts"),
                column: Some("email".into()),
                new_name: "mail".into(),
                new_schema: None,
            }),
            Effect::None,
        );
        o.apply(&rename, &path(), &Fake).unwrap();
        assert!(o.column(100, "email", &Fake).is_none());
        assert_eq!(o.column(100, "mail", &Fake).unwrap().type_display, "text");
        assert_eq!(o.catalog_name(100, "mail").as_deref(), Some("email"));
        o.apply(
            &alter(
                "accounts",
                vec![AlterCmd::DropColumn { column: "id".into() }],
                Effect::None,
            ),
            &path(),
            &Fake,
        )
        .unwrap();
        assert!(o.column(100, "id", &Fake).is_none());
    }

    #[test]
    fn schemas_created_and_dropped() {
        let mut o = Overlay::new();
        let app = RelRef::new(Some("app"), "t");
        let mut create = create_table("t", &[]);
        if let Effect::CreateRelation(n) = &mut create.effect {
            n.name = app.clone();
            n.indexes.clear();
        }
        assert_eq!(o.apply(&create, &path(), &Fake).unwrap_err().sqlstate, "3F000");
        o.apply(
            &ddl(
                Command::Other,
                Effect::CreateSchema {
                    name: "app".into(),
                    if_not_exists: false,
                },
            ),
            &path(),
            &Fake,
        )
        .unwrap();
        o.apply(&create, &path(), &Fake).unwrap();
        assert!(o.resolve(&app, &path(), &Fake).is_some());
        assert_eq!(
            o.resolve(&r("t"), &path(), &Fake),
            None,
            "app is not on the search path"
        );
        o.apply(
            &ddl(
                Command::Other,
                Effect::DropSchemas {
                    names: vec!["app".into()],
                    missing_ok: false,
                },
            ),
            &path(),
            &Fake,
        )
        .unwrap();
        assert_eq!(o.resolve(&app, &path(), &Fake), None);
    }

    #[test]
    fn unpredictable_index_names_are_not_reported_missing() {
        let mut o = Overlay::new();
        let ix = ddl(
            Command::Other,
            Effect::CreateIndex(NewIndex {
                name: None,
                table: r("accounts"),
                columns: vec![],
                expressions: true,
                unique: false,
                primary: false,
                if_not_exists: false,
            }),
        );
        let drop = ddl(
            Command::Drop(Drop {
                kind: ObjectKind::Index,
                objects: vec![r("accounts_lower_idx")],
                concurrent: false,
                cascade: false,
            }),
            Effect::None,
        );
        assert_eq!(o.apply(&drop, &path(), &Fake).unwrap_err().sqlstate, "42P01");
        o.apply(&ix, &path(), &Fake).unwrap();
        o.apply(&drop, &path(), &Fake).unwrap();
    }
}
