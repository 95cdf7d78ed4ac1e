//! [`Facts`] for a statement of a checked script: the live catalog (read exactly as the event
//! trigger reads it, without locks) seen through what the script did before the statement.

use super::overlay::{Catalog, Overlay, SearchPath, is_script_oid};
use crate::catalog::CatalogFacts;
use crate::facts::{Column, Facts, Rel, RelKind, Session, Storage, Stored};
use crate::model::RelRef;
use pgrx::pg_sys;
use std::ffi::CString;

/// The live catalog behind the overlay.
pub struct LiveCatalog;

fn namespace_oid(schema: &str) -> Option<pg_sys::Oid> {
    let c = CString::new(schema).ok()?;
    // SAFETY: syscache lookups; missing_ok, so no error for an unknown schema.
    let oid = unsafe {
        if schema == "pg_temp" {
            pg_sys::LookupExplicitNamespace(c.as_ptr(), true)
        } else {
            pg_sys::get_namespace_oid(c.as_ptr(), true)
        }
    };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

impl Catalog for LiveCatalog {
    fn relation_oid(&self, schema: &str, name: &str) -> Option<u32> {
        let nsp = namespace_oid(schema)?;
        let c = CString::new(name).ok()?;
        // SAFETY: syscache lookup by name; no lock taken.
        let oid = unsafe { pg_sys::get_relname_relid(c.as_ptr(), nsp) };
        (oid != pg_sys::InvalidOid).then(|| oid.to_u32())
    }

    fn schema_exists(&self, schema: &str) -> bool {
        namespace_oid(schema).is_some()
    }

    fn column(&self, oid: u32, column: &str) -> Option<Column> {
        // SAFETY: relcache read; a relation that no longer exists gives None.
        unsafe { crate::catalog::read_column(pg_sys::Oid::from(oid), column) }
    }

    fn name_of(&self, oid: u32) -> Option<(String, String)> {
        let oid = pg_sys::Oid::from(oid);
        // SAFETY: syscache lookups that return NULL for a missing relation.
        unsafe {
            let name = crate::ddl::cstr(pg_sys::get_rel_name(oid))?;
            let nsp = pg_sys::get_rel_namespace(oid);
            let schema = crate::ddl::cstr(pg_sys::get_namespace_name(nsp))?;
            let schema = if schema.starts_with("pg_temp_") {
                "pg_temp".to_owned()
            } else {
                schema
            };
            Some((schema, name))
        }
    }

    fn table_of_index(&self, oid: u32) -> Option<u32> {
        // SAFETY: syscache lookup; missing_ok for a relation that is not an index.
        let t = unsafe { pg_sys::IndexGetRelation(pg_sys::Oid::from(oid), true) };
        (t != pg_sys::InvalidOid).then(|| t.to_u32())
    }

    fn checks_proving(&self, oid: u32, column: &str) -> Vec<(String, bool)> {
        crate::catalog::checks_proving(pg_sys::Oid::from(oid), column)
    }
}

/// The session's search path as `check()` resolves names with it: the script may have set it,
/// and may name schemas it created itself (which the server's own resolution does not know).
pub fn search_path() -> SearchPath {
    // SAFETY: plain read of the GUC string variable.
    let raw = unsafe { crate::ddl::cstr(pg_sys::namespace_search_path) }.unwrap_or_default();
    let user = || {
        // SAFETY: name of the current role, which exists.
        unsafe { crate::ddl::cstr(pg_sys::GetUserNameFromId(pg_sys::GetUserId(), true)) }
    };
    let explicit: Vec<String> = super::script::split_identifiers(&raw)
        .into_iter()
        .filter_map(|s| if s == "$user" { user() } else { Some(s) })
        .collect();
    let mut lookup = Vec::with_capacity(explicit.len() + 2);
    if !explicit.iter().any(|s| s == "pg_temp") {
        lookup.push("pg_temp".to_owned());
    }
    if !explicit.iter().any(|s| s == "pg_catalog") {
        lookup.push("pg_catalog".to_owned());
    }
    lookup.extend(explicit.iter().cloned());
    SearchPath { lookup, explicit }
}

pub struct ScriptFacts<'a> {
    catalog: CatalogFacts,
    overlay: &'a Overlay,
    path: &'a SearchPath,
    assume_populated: bool,
}

impl<'a> ScriptFacts<'a> {
    pub fn new(overlay: &'a Overlay, path: &'a SearchPath, assume_populated: bool) -> Self {
        ScriptFacts {
            catalog: CatalogFacts::new(assume_populated),
            overlay,
            path,
            assume_populated,
        }
    }

    fn rel_by_oid(&self, oid: u32) -> Option<Rel> {
        let mut rel = self.rel_by_oid_as_catalog(oid)?;
        if self.overlay.physical_changed(oid) {
            rel.physical = None;
        }
        Some(rel)
    }

    fn rel_by_oid_as_catalog(&self, oid: u32) -> Option<Rel> {
        let Some(o) = self.overlay.rel(oid) else {
            return self.catalog.rel_by_oid(pg_sys::Oid::from(oid));
        };
        let display = format!(
            "{}.{}",
            crate::sqltext::quote_ident(&o.schema),
            crate::sqltext::quote_ident(&o.name)
        );
        match &o.created {
            Some(c) => Some(Rel {
                oid,
                schema: o.schema.clone(),
                name: o.name.clone(),
                display,
                kind: c.kind,
                new_in_xact: c.tx == self.overlay.tx,
                temp: c.temp,
                populated: c.populated,
                storage: None,
                physical: None,
            }),
            // A catalog relation the script renamed.
            None => self.catalog.rel_by_oid(pg_sys::Oid::from(oid)).map(|r| Rel {
                schema: o.schema.clone(),
                name: o.name.clone(),
                display,
                ..r
            }),
        }
    }
}

impl Facts for ScriptFacts<'_> {
    fn relation(&self, r: &RelRef) -> Option<Rel> {
        let oid = self.overlay.resolve(r, self.path, &LiveCatalog)?;
        self.rel_by_oid(oid)
    }

    fn with_storage(&self, rel: Rel) -> Stored {
        let filled = self.overlay.is_filled(rel.oid);
        if self.overlay.is_emptied(rel.oid) {
            let st = Storage {
                size_bytes: 0,
                est_rows: Some(0),
                has_data: false,
                data_assumed: false,
                filled_by_script: false,
            };
            return Stored::new(rel, st);
        }
        // Storage already read (the catalog's cache keeps it) still needs the script's rows.
        if let Some(st) = rel.storage.filter(|_| !filled) {
            return Stored::new(rel, st);
        }
        if is_script_oid(rel.oid) {
            let assumed = !filled
                && self.assume_populated
                && matches!(rel.kind, RelKind::Table | RelKind::PartitionedTable | RelKind::MatView);
            let st = Storage {
                size_bytes: 0,
                est_rows: None,
                has_data: filled || assumed,
                data_assumed: assumed,
                filled_by_script: filled,
            };
            return Stored::new(rel, st);
        }
        let (rel, mut st) = match rel.storage {
            Some(st) => (rel, st),
            None => {
                let stored = self.catalog.with_storage(rel);
                let st = *stored.storage();
                (stored.into_rel(), st)
            }
        };
        if filled && (!st.has_data || st.data_assumed) {
            st.has_data = true;
            st.data_assumed = false;
            st.filled_by_script = true;
        }
        Stored::new(rel, st)
    }

    fn index_table(&self, index: &RelRef) -> Option<Rel> {
        let oid = self.overlay.resolve(index, self.path, &LiveCatalog)?;
        if let Some((table, _)) = self.overlay.index(oid) {
            return self.rel_by_oid(*table);
        }
        if is_script_oid(oid) {
            return None;
        }
        let table = LiveCatalog.table_of_index(oid)?;
        if self.overlay.catalog_gone(table, &LiveCatalog) {
            return None;
        }
        self.rel_by_oid(table)
    }

    fn column(&self, rel: &Rel, column: &str) -> Option<Column> {
        self.overlay.column(rel.oid, column, &LiveCatalog)
    }

    fn index_columns(&self, rel: &Rel, index: &str) -> Option<Vec<String>> {
        let oid = self
            .overlay
            .resolve(&RelRef::new(Some(&rel.schema), index), self.path, &LiveCatalog)?;
        if let Some((table, columns)) = self.overlay.index(oid) {
            return (*table == rel.oid).then(|| columns.clone());
        }
        if is_script_oid(oid) || is_script_oid(rel.oid) {
            return None;
        }
        crate::catalog::index_key_columns(pg_sys::Oid::from(oid), rel.oid)
    }

    fn type_change_rewrites(&self, rel: &Rel, column: &str, to: (u32, i32)) -> Option<bool> {
        if is_script_oid(rel.oid) {
            return None;
        }
        let name = self.overlay.catalog_name(rel.oid, column)?;
        self.catalog.type_change_rewrites(rel, &name, to)
    }

    fn type_change_rechecks(
        &self,
        rel: &Rel,
        column: &str,
        to: (u32, i32),
        collation: Option<&[String]>,
    ) -> crate::facts::Rechecks {
        // A table the script created is new (no rule judges it); an existing one is judged by
        // the catalog's indexes and constraints, under the column's catalog name.
        if is_script_oid(rel.oid) {
            return Default::default();
        }
        let Some(name) = self.overlay.catalog_name(rel.oid, column) else {
            return Default::default();
        };
        self.catalog.type_change_rechecks(rel, &name, to, collation)
    }

    fn session(&self) -> Session {
        let mut s = self.catalog.session();
        if let Some(open) = self.overlay.in_migration {
            s.in_migration = s.require_migration && open;
        }
        s
    }

    fn server(&self) -> crate::server::Server {
        crate::server::running()
    }

    fn tablespace_oid(&self, name: &str) -> Option<u32> {
        self.catalog.tablespace_oid(name)
    }

    fn access_method_oid(&self, name: &str) -> Option<u32> {
        self.catalog.access_method_oid(name)
    }

    /// The locks earlier statements of the script's current transaction took, and those the
    /// transaction check() runs in holds already (a script that starts inside it).
    fn held_lock(&self, rel: &Rel) -> Option<crate::model::LockMode> {
        let script = self.overlay.held_lock(rel.oid);
        let live = if is_script_oid(rel.oid) || self.overlay.live_tx != Some(self.overlay.tx) {
            None
        } else {
            self.catalog.held_lock(rel)
        };
        script.max(live)
    }

    /// The catalog's relations (those the script created are new, and not judged).
    fn reached(&self, reach: &crate::model::Reach) -> crate::facts::Reached {
        let mut r = self.catalog.reached(reach);
        r.relations.retain(|x| !self.overlay.catalog_gone(x.oid, &LiveCatalog));
        // `DROP SCHEMA … CASCADE` of a schema the script filled: its own relations go too.
        if let crate::model::Reach::Schemas(names) = reach {
            for oid in self.overlay.created_in_schemas(names) {
                if let Some(rel) = self.rel_by_oid(oid).filter(|x| {
                    x.existing() && matches!(x.kind, RelKind::Table | RelKind::PartitionedTable | RelKind::MatView)
                }) {
                    r.relations.push(self.with_storage(rel));
                }
            }
        }
        r.columns
            .retain(|(x, _)| !self.overlay.catalog_gone(x.oid, &LiveCatalog));
        r
    }

    fn constraint_kind(&self, rel: &Rel, name: &str) -> Option<(crate::model::ConstraintKind, bool)> {
        if is_script_oid(rel.oid) {
            return None;
        }
        // (Constraint renames are not modelled: the name as the statement gives it.)
        self.catalog.constraint_kind(rel, name)
    }

    /// The catalog's publications (one the script creates is not seen: taken to publish
    /// everything, PostgreSQL's default).
    fn publication_publishes_changes(&self, name: &str) -> Option<bool> {
        self.catalog.publication_publishes_changes(name)
    }

    /// The catalog's (a key the script adds is not seen).
    fn replica_identity_columns(&self, rel: &Rel) -> Option<Vec<String>> {
        if is_script_oid(rel.oid) {
            return None;
        }
        self.catalog.replica_identity_columns(rel)
    }

    /// The catalog's publications.
    fn publication_tables(&self, name: &str) -> Vec<Rel> {
        self.catalog
            .publication_tables(name)
            .into_iter()
            .filter(|r| !self.overlay.catalog_gone(r.oid, &LiveCatalog))
            .collect()
    }

    /// Evidence about the catalog's relations; the script's own are new (no rule asks).
    fn usage(&self, rel: &Rel, column: Option<&str>) -> crate::evidence::Usage {
        if is_script_oid(rel.oid) {
            return crate::evidence::Usage::unavailable("the script creates it");
        }
        self.catalog.usage(rel, column)
    }

    fn index_usage(&self, index: &RelRef) -> crate::evidence::Usage {
        match self.overlay.resolve(index, self.path, &LiveCatalog) {
            Some(oid) if !is_script_oid(oid) => crate::usage::evidence(oid, None),
            _ => crate::evidence::Usage::unavailable("the script creates it"),
        }
    }

    /// The catalog's children of a catalog table, and the children the script made.
    fn inheritance_children(&self, rel: &Rel) -> Vec<Stored> {
        let mut out: Vec<Stored> = if is_script_oid(rel.oid) {
            vec![]
        } else {
            self.catalog
                .inheritance_children(rel)
                .into_iter()
                .filter(|r| !self.overlay.catalog_gone(r.oid, &LiveCatalog))
                .map(|r| {
                    // Read again, through the script: it may have filled or emptied the child.
                    let mut r = r.into_rel();
                    r.storage = None;
                    self.with_storage(r)
                })
                .collect()
        };
        for oid in self.overlay.children_of(rel.oid) {
            if let Some(child) = self.rel_by_oid(oid).filter(Rel::existing) {
                out.push(self.with_storage(child));
            }
        }
        out
    }

    /// The catalog's tables and replica identities (a primary key the script adds earlier is not
    /// seen; a table the script creates is new, and no rule judges it).
    fn without_replica_identity(&self, rel: Option<&Rel>) -> Vec<(Rel, &'static str)> {
        if rel.is_some_and(|r| is_script_oid(r.oid)) {
            return vec![];
        }
        self.catalog
            .without_replica_identity(rel)
            .into_iter()
            .filter(|(r, _)| !self.overlay.catalog_gone(r.oid, &LiveCatalog))
            .collect()
    }

    /// The catalog's tables (a table the script created and filled is not seen).
    fn domain_columns(&self, domain: &[String]) -> Vec<(Stored, String)> {
        self.catalog
            .domain_columns(domain)
            .into_iter()
            .filter(|(r, _)| !self.overlay.catalog_gone(r.oid, &LiveCatalog))
            .collect()
    }
}
