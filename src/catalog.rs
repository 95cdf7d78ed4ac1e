//! [`Facts`] read from the catalog.
//!
//! Nothing here takes a lock on the target relation: names are resolved with `NoLock`, the
//! relcache entry is read without locking it, and the size comes from the storage manager. A
//! statement the guard blocks therefore fails at once, even while another session holds a
//! conflicting lock on the table.

use crate::facts::{Column, Facts, Rel, RelKind, Session, Storage, Stored};
use crate::model::RelRef;
use core::ffi::CStr;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CString;

/// `InvalidSubTransactionId` from `c.h`.
const INVALID_SUBTRANSACTION_ID: pg_sys::SubTransactionId = 0;

pub struct CatalogFacts {
    assume_populated: bool,
    /// Built on first use: most statements never ask.
    session: std::cell::Cell<Option<Session>>,
    // A statement names one or two relations: small vectors beat hash maps here.
    cache: RefCell<Vec<(pg_sys::Oid, Option<Rel>)>>,
    names: RefCell<Vec<(RelRef, Option<pg_sys::Oid>)>>,
}

impl CatalogFacts {
    pub fn new(assume_populated: bool) -> Self {
        CatalogFacts {
            assume_populated,
            session: std::cell::Cell::new(None),
            cache: RefCell::new(Vec::new()),
            names: RefCell::new(Vec::new()),
        }
    }

    /// `resolve`, memoized: every rule asks about the same few names.
    fn resolve(&self, r: &RelRef) -> Option<pg_sys::Oid> {
        if let Some((_, hit)) = self.names.borrow().iter().find(|(k, _)| k == r) {
            return *hit;
        }
        let oid = resolve(r);
        self.names.borrow_mut().push((r.clone(), oid));
        oid
    }

    pub fn rel_by_oid(&self, oid: pg_sys::Oid) -> Option<Rel> {
        if let Some((_, hit)) = self.cache.borrow().iter().find(|(k, _)| *k == oid) {
            return hit.clone();
        }
        // SAFETY: we are in a transaction inside a backend; `read_rel` only reads the relcache.
        let rel = unsafe { read_rel(oid) };
        self.cache.borrow_mut().push((oid, rel.clone()));
        rel
    }
}

impl Facts for CatalogFacts {
    fn relation(&self, r: &RelRef) -> Option<Rel> {
        self.resolve(r).and_then(|oid| self.rel_by_oid(oid))
    }

    fn with_storage(&self, rel: Rel) -> Stored {
        if let Some(st) = rel.storage {
            return Stored::new(rel, st);
        }
        let oid = pg_sys::Oid::from(rel.oid);
        let cached = self
            .cache
            .borrow()
            .iter()
            .find(|(k, _)| *k == oid)
            .and_then(|(_, r)| r.as_ref()?.storage);
        let storage = cached.unwrap_or_else(|| {
            // SAFETY: relcache and storage-manager reads of a relation that exists; no lock taken.
            let (size_bytes, est_rows) = if rel.temp {
                (0, None)
            } else {
                unsafe { relation_storage(oid, rel.kind) }
            };
            let mut st = Storage {
                size_bytes,
                est_rows,
                has_data: size_bytes > 0,
                data_assumed: false,
                filled_by_script: false,
            };
            if !st.has_data
                && self.assume_populated
                && matches!(rel.kind, RelKind::Table | RelKind::PartitionedTable | RelKind::MatView)
            {
                st.has_data = true;
                st.data_assumed = true;
            }
            st
        });
        if let Some((_, Some(r))) = self.cache.borrow_mut().iter_mut().find(|(k, _)| *k == oid) {
            r.storage = Some(storage);
        }
        Stored::new(rel, storage)
    }

    fn index_table(&self, index: &RelRef) -> Option<Rel> {
        let oid = self.resolve(index)?;
        // SAFETY: plain syscache lookup; missing_ok avoids an error for non-indexes.
        let table = unsafe { pg_sys::IndexGetRelation(oid, true) };
        (table != pg_sys::InvalidOid).then(|| self.rel_by_oid(table)).flatten()
    }

    fn usage(&self, rel: &Rel, column: Option<&str>) -> crate::evidence::Usage {
        crate::usage::evidence(rel.oid, column)
    }

    fn index_usage(&self, index: &RelRef) -> crate::evidence::Usage {
        match self.resolve(index) {
            Some(oid) => crate::usage::evidence(oid.to_u32(), None),
            None => crate::evidence::Usage::unavailable("no such index"),
        }
    }

    fn index_columns(&self, rel: &Rel, index: &str) -> Option<Vec<String>> {
        let oid = self.resolve(&RelRef::new(Some(&rel.schema), index))?;
        index_key_columns(oid, rel.oid)
    }

    fn column(&self, rel: &Rel, column: &str) -> Option<Column> {
        // SAFETY: relcache read of a relation that exists (it was just resolved).
        unsafe { read_column(pg_sys::Oid::from(rel.oid), column) }
    }

    fn type_change_rewrites(&self, rel: &Rel, column: &str, to: (u32, i32)) -> Option<bool> {
        type_change_rewrites(pg_sys::Oid::from(rel.oid), column, to)
    }

    fn type_change_rechecks(
        &self,
        rel: &Rel,
        column: &str,
        to: (u32, i32),
        collation: Option<&[String]>,
    ) -> crate::facts::Rechecks {
        type_change_rechecks(pg_sys::Oid::from(rel.oid), column, to, collation).unwrap_or_default()
    }

    fn server(&self) -> crate::server::Server {
        crate::server::running()
    }

    fn tablespace_oid(&self, name: &str) -> Option<u32> {
        let name = CString::new(name).ok()?;
        // SAFETY: syscache lookups with missing_ok; the database's default tablespace is stored
        // as 0 in pg_class, so it compares as 0 here too.
        unsafe {
            let oid = pg_sys::get_tablespace_oid(name.as_ptr(), true);
            if oid == pg_sys::InvalidOid {
                return None;
            }
            Some(if oid == pg_sys::MyDatabaseTableSpace {
                0
            } else {
                oid.to_u32()
            })
        }
    }

    fn domain_columns(&self, domain: &[String]) -> Vec<(Stored, String)> {
        // The name resolves as the statement's does, with the session's search_path (the query
        // names only pg_catalog's function); the columns are read with the extension's own path.
        let Some(oid) = type_oid(domain) else {
            return vec![];
        };
        let users = oid_text_rows(
                    "WITH RECURSIVE d(oid) AS (
                         SELECT $1::pg_catalog.oid
                         UNION SELECT t.oid FROM pg_catalog.pg_type t JOIN d ON t.typbasetype OPERATOR(pg_catalog.=) d.oid
                          WHERE t.typtype OPERATOR(pg_catalog.=) 'd')
                     SELECT DISTINCT ON (a.attrelid) a.attrelid, a.attname::pg_catalog.text
                       FROM pg_catalog.pg_attribute a
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
                      WHERE a.atttypid OPERATOR(pg_catalog.=) ANY (SELECT d.oid FROM d)
                        AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
                        AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,m}'::pg_catalog.\"char\"[])
                      ORDER BY a.attrelid, a.attnum",
                    &[oid.into()],
        );
        users
            .into_iter()
            .filter_map(|(oid, col)| Some((self.with_storage(self.rel_by_oid(oid)?), col)))
            .filter(|(r, _)| r.existing() && r.has_data())
            .collect()
    }

    fn publication_publishes_changes(&self, name: &str) -> Option<bool> {
        crate::privilege::with_safe_path(|| {
            Spi::get_one_with_args::<bool>(
                "SELECT p.pubupdate OR p.pubdelete FROM pg_catalog.pg_publication p
                  WHERE p.pubname OPERATOR(pg_catalog.=) $1",
                &[name.into()],
            )
            .ok()
            .flatten()
        })
    }

    fn replica_identity_columns(&self, rel: &Rel) -> Option<Vec<String>> {
        let cols: Vec<String> = oid_text_rows(
            "SELECT i.indexrelid, a.attname::pg_catalog.text
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) c.oid
                AND ((c.relreplident OPERATOR(pg_catalog.=) 'd' AND i.indisprimary)
                     OR (c.relreplident OPERATOR(pg_catalog.=) 'i' AND i.indisreplident))
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
                AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])
              WHERE c.oid OPERATOR(pg_catalog.=) $1
              ORDER BY a.attnum",
            &[pg_sys::Oid::from(rel.oid).into()],
        )
        .into_iter()
        .map(|(_, c)| c)
        .collect();
        (!cols.is_empty()).then_some(cols)
    }

    fn publication_tables(&self, name: &str) -> Vec<Rel> {
        oid_text_rows(
            "SELECT c.oid, ''::pg_catalog.text FROM pg_catalog.pg_publication_tables pt
               JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) pt.schemaname
               JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid
                AND c.relname OPERATOR(pg_catalog.=) pt.tablename
              WHERE pt.pubname OPERATOR(pg_catalog.=) $1 ORDER BY 1 LIMIT 10000",
            &[name.into()],
        )
        .into_iter()
        .filter_map(|(oid, _)| self.rel_by_oid(oid))
        .filter(Rel::existing)
        .collect()
    }

    fn inheritance_children(&self, rel: &Rel) -> Vec<Stored> {
        if rel.kind != crate::facts::RelKind::Table {
            return vec![];
        }
        oid_text_rows(
            "WITH RECURSIVE kids(oid) AS (
                 SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) $1
                 UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN kids ON i.inhparent OPERATOR(pg_catalog.=) kids.oid)
             SELECT k.oid, ''::pg_catalog.text FROM kids k
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) k.oid
              WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}') ORDER BY 1 LIMIT 1000",
            &[pg_sys::Oid::from(rel.oid).into()],
        )
        .into_iter()
        .filter_map(|(oid, _)| self.rel_by_oid(oid))
        .filter(Rel::existing)
        .map(|r| self.with_storage(r))
        .collect()
    }

    fn without_replica_identity(&self, rel: Option<&Rel>) -> Vec<(Rel, &'static str)> {
        // Without a relation: what FOR ALL TABLES publishes (permanent ordinary tables outside
        // the system schemas).
        // (pgrx passes InvalidOid as NULL: "all tables" is a parameter of its own.)
        let root = rel.map(|r| pg_sys::Oid::from(r.oid)).unwrap_or(pg_sys::InvalidOid);
        let found = oid_text_rows(
                    "WITH RECURSIVE rels(relid) AS (
                         SELECT $1::pg_catalog.oid WHERE NOT $2
                         UNION SELECT c.oid FROM pg_catalog.pg_class c
                          WHERE $2 AND c.relkind OPERATOR(pg_catalog.=) 'r'
                            AND c.relpersistence OPERATOR(pg_catalog.=) 'p'
                            AND c.relnamespace OPERATOR(pg_catalog.<>) ALL (ARRAY(SELECT n.oid FROM pg_catalog.pg_namespace n
                                 WHERE n.nspname OPERATOR(pg_catalog.=) ANY ('{pg_catalog,information_schema,pg_toast}'::pg_catalog.name[])))
                         UNION SELECT h.inhrelid FROM pg_catalog.pg_inherits h JOIN rels ON h.inhparent OPERATOR(pg_catalog.=) rels.relid)
                     SELECT c.oid, c.relreplident::pg_catalog.text FROM rels
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) rels.relid
                      WHERE c.relkind OPERATOR(pg_catalog.=) 'r'
                        AND (c.relreplident OPERATOR(pg_catalog.=) 'n'
                             OR (c.relreplident OPERATOR(pg_catalog.=) 'd' AND NOT EXISTS (
                                   SELECT FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary))
                             OR (c.relreplident OPERATOR(pg_catalog.=) 'i' AND NOT EXISTS (
                                   SELECT FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisreplident)))
                      ORDER BY c.oid",
                    &[root.into(), rel.is_none().into()],
        );
        found
            .into_iter()
            .filter_map(|(oid, ident)| {
                let why = match ident.as_str() {
                    "n" => "its replica identity is NOTHING",
                    "i" => "its replica identity index is gone",
                    _ => "it has no primary key, and its replica identity is DEFAULT",
                };
                Some((self.rel_by_oid(oid)?, why))
            })
            .collect()
    }

    fn held_lock(&self, rel: &Rel) -> Option<crate::model::LockMode> {
        use crate::model::LockMode::*;
        // SAFETY: relcache reference without a lock; the lock manager's local table is read only.
        unsafe {
            let r = pg_sys::RelationIdGetRelation(pg_sys::Oid::from(rel.oid));
            if r.is_null() {
                return None;
            }
            let held = [
                (AccessExclusive, pg_sys::AccessExclusiveLock),
                (Exclusive, pg_sys::ExclusiveLock),
                (ShareRowExclusive, pg_sys::ShareRowExclusiveLock),
                (Share, pg_sys::ShareLock),
            ]
            .into_iter()
            .find(|(_, m)| pg_sys::CheckRelationLockedByMe(r, *m as pg_sys::LOCKMODE, false))
            .map(|(l, _)| l);
            pg_sys::RelationClose(r);
            held
        }
    }

    fn reached(&self, reach: &crate::model::Reach) -> crate::facts::Reached {
        use crate::model::{ObjectKind, Reach};
        // Names resolve as the statement's do (the session's search_path; only pg_catalog's
        // functions are named); the catalog is then read with the extension's own path.
        let (sql, args): (&str, Vec<pgrx::datum::DatumWithOid>) = match reach {
            Reach::Schemas(names) => (
                "SELECT c.oid, NULL::pg_catalog.text FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                  WHERE n.nspname OPERATOR(pg_catalog.=) ANY ($1) AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m}')",
                vec![names.clone().into()],
            ),
            Reach::Types(names) => {
                let oids: Vec<pg_sys::Oid> = names.iter().filter_map(|n| type_oid(n)).collect();
                (
                    "WITH RECURSIVE d(oid) AS (
                         SELECT pg_catalog.unnest($1::pg_catalog.oid[])
                         UNION SELECT t.oid FROM pg_catalog.pg_type t JOIN d ON t.typbasetype OPERATOR(pg_catalog.=) d.oid
                          WHERE t.typtype OPERATOR(pg_catalog.=) 'd'),
                     every(oid) AS (SELECT d.oid FROM d
                         UNION SELECT t.typarray FROM pg_catalog.pg_type t JOIN d ON t.oid OPERATOR(pg_catalog.=) d.oid
                          WHERE t.typarray OPERATOR(pg_catalog.<>) 0)
                     SELECT a.attrelid, a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
                      WHERE a.atttypid OPERATOR(pg_catalog.=) ANY (SELECT oid FROM every)
                        AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
                        AND c.reloftype OPERATOR(pg_catalog.=) 0
                        AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m}')
                     UNION ALL
                     SELECT c.oid, NULL FROM pg_catalog.pg_class c
                      WHERE c.reloftype OPERATOR(pg_catalog.=) ANY (SELECT oid FROM every)",
                    vec![oids.into()],
                )
            }
            Reach::OwnedBy(roles) => (
                "SELECT c.oid, NULL::pg_catalog.text FROM pg_catalog.pg_class c
                  WHERE c.relowner OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])
                    AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m}')",
                vec![roles.iter().map(|r| pg_sys::Oid::from(*r)).collect::<Vec<_>>().into()],
            ),
            Reach::TypedBy { type_name, .. } => (
                "SELECT c.oid, NULL::pg_catalog.text FROM pg_catalog.pg_class c
                  WHERE c.reloftype OPERATOR(pg_catalog.=) $1 AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}')",
                vec![type_oid(type_name).unwrap_or(pg_sys::InvalidOid).into()],
            ),
            Reach::Truncated { tables, cascade } => {
                let (mut with_children, mut only) = (Vec::new(), Vec::new());
                for (r, inh) in tables {
                    if let Some(rel) = self.relation(r) {
                        if *inh { &mut with_children } else { &mut only }.push(pg_sys::Oid::from(rel.oid));
                    }
                }
                (
                    "WITH RECURSIVE named(oid) AS (
                         SELECT pg_catalog.unnest($1::pg_catalog.oid[])
                         UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i
                           JOIN named ON i.inhparent OPERATOR(pg_catalog.=) named.oid),
                     emptied(oid) AS (
                         SELECT named.oid FROM named UNION SELECT pg_catalog.unnest($2::pg_catalog.oid[])
                         UNION SELECT con.conrelid FROM pg_catalog.pg_constraint con
                           JOIN emptied ON con.confrelid OPERATOR(pg_catalog.=) emptied.oid
                          WHERE $3 AND con.contype OPERATOR(pg_catalog.=) 'f')
                     SELECT e.oid, NULL::pg_catalog.text FROM emptied e
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) e.oid
                      WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}')",
                    vec![with_children.into(), only.into(), (*cascade).into()],
                )
            }
            Reach::Tablespace { from, kind, roles, .. } => {
                let Some(ts) = self.tablespace_oid(from) else {
                    return crate::facts::Reached::default();
                };
                let kinds = match kind {
                    ObjectKind::Index => "{i}",
                    ObjectKind::MatView => "{m}",
                    _ => "{r}",
                };
                (
                    "SELECT c.oid, NULL::pg_catalog.text FROM pg_catalog.pg_class c
                      WHERE c.reltablespace OPERATOR(pg_catalog.=) $1
                        AND c.relkind OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.\"char\"[])
                        AND c.relnamespace OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema,pg_toast}'::pg_catalog.regnamespace[])
                        AND (pg_catalog.cardinality($3::pg_catalog.oid[]) OPERATOR(pg_catalog.=) 0
                             OR c.relowner OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.oid[]))",
                    vec![
                        pg_sys::Oid::from(ts).into(),
                        kinds.into(),
                        roles.iter().map(|r| pg_sys::Oid::from(*r)).collect::<Vec<_>>().into(),
                    ],
                )
            }
        };
        let rows: Vec<(pg_sys::Oid, Option<String>)> = crate::privilege::with_safe_path(|| {
            crate::catalog::attempt(|| {
                Spi::connect(|c| {
                    c.select(&format!("{sql} ORDER BY 1 LIMIT 10000"), None, &args)?
                        .map(|r| {
                            Ok((
                                r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                                r.get::<String>(2)?,
                            ))
                        })
                        .collect::<Result<Vec<_>, pgrx::spi::Error>>()
                })
            })
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
        });
        let mut out = crate::facts::Reached::default();
        for (oid, column) in rows {
            let Some(rel) = self.rel_by_oid(oid).filter(Rel::existing) else {
                continue;
            };
            let rel = self.with_storage(rel);
            match column {
                Some(c) => out.columns.push((rel, c)),
                None => out.relations.push(rel),
            }
        }
        out
    }

    fn constraint_kind(&self, rel: &Rel, name: &str) -> Option<(crate::model::ConstraintKind, bool)> {
        use crate::model::ConstraintKind as K;
        let (contype, valid) = crate::privilege::with_safe_path(|| {
            Spi::get_two_with_args::<i8, bool>(
                "SELECT contype, convalidated FROM pg_catalog.pg_constraint
                  WHERE conrelid OPERATOR(pg_catalog.=) $1 AND conname OPERATOR(pg_catalog.=) $2",
                &[pg_sys::Oid::from(rel.oid).into(), name.into()],
            )
        })
        .ok()?;
        let kind = match contype? as u8 {
            b'c' => K::Check,
            b'f' => K::ForeignKey,
            b'n' => K::NotNull,
            b'u' => K::Unique,
            b'p' => K::PrimaryKey,
            b'x' => K::Exclusion,
            _ => K::Other,
        };
        Some((kind, valid.unwrap_or(false)))
    }

    fn access_method_oid(&self, name: &str) -> Option<u32> {
        let name = CString::new(name).ok()?;
        // SAFETY: syscache lookup with missing_ok.
        let oid = unsafe { pg_sys::get_table_am_oid(name.as_ptr(), true) };
        (oid != pg_sys::InvalidOid).then(|| oid.to_u32())
    }

    fn session(&self) -> Session {
        if let Some(s) = self.session.get() {
            return s;
        }
        let require_migration = crate::gucs::REQUIRE_MIGRATION.get();
        let s = Session {
            // SAFETY: plain read of the backend's lock_timeout GUC variable (milliseconds).
            lock_timeout_ms: i64::from(unsafe { pg_sys::LockTimeout }),
            require_lock_timeout: crate::gucs::REQUIRE_LOCK_TIMEOUT.get(),
            require_migration,
            in_migration: require_migration && crate::migrations::current_migration_id().is_some(),
        };
        self.session.set(Some(s));
        s
    }
}

/// The type a statement names by `parts`, resolved as the statement resolves it: with the
/// session's search_path (the query names only pg_catalog's function).
fn type_oid(parts: &[String]) -> Option<pg_sys::Oid> {
    let name = crate::sqltext::quote_qualified(parts);
    attempt(|| {
        Spi::get_one_with_args::<pg_sys::Oid>(
            "SELECT pg_catalog.to_regtype($1)::pg_catalog.oid",
            &[name.as_str().into()],
        )
    })
    .ok()
    .and_then(|r| r.ok().flatten())
}

/// The key columns of index `index` when it is an index of table `table`.
pub fn index_key_columns(index: pg_sys::Oid, table: u32) -> Option<Vec<String>> {
    let (oid, rel_oid) = (index, table);
    // SAFETY: relcache read of an index that exists; attribute names from the syscache.
    unsafe {
        let r = pg_sys::RelationIdGetRelation(oid);
        if r.is_null() {
            return None;
        }
        let ix = (*r).rd_index;
        let columns = (!ix.is_null() && (*ix).indrelid == pg_sys::Oid::from(rel_oid)).then(|| {
            let keys = (*ix).indkey.values.as_slice((*ix).indnkeyatts as usize);
            keys.iter()
                .filter_map(|&attnum| crate::ddl::cstr(pg_sys::get_attname((*ix).indrelid, attnum, true)))
                .collect()
        });
        pg_sys::RelationClose(r);
        columns
    }
}

/// `pg_proc` oids of `timestamp(timestamptz)` and `timestamptz(timestamp)`.
const F_TIMESTAMPTZ_TIMESTAMP: u32 = 2027;
const F_TIMESTAMP_TIMESTAMPTZ: u32 = 2028;

/// PostgreSQL's own decision (`ATPrepAlterColumnType` + `ATColumnChangeRequiresRewrite`): coerce
/// the column to the new type as an assignment, plan the expression (which turns length
/// coercions that cannot fail into no-ops), and see whether anything but the column itself,
/// relabelled, is left.
fn type_change_rewrites(relid: pg_sys::Oid, column: &str, to: (u32, i32)) -> Option<bool> {
    try_catalog(|| unsafe {
        let r = pg_sys::RelationIdGetRelation(relid);
        if r.is_null() {
            return None;
        }
        let desc = (*r).rd_att;
        let attrs = crate::server::compat::attributes(desc);
        let att = attrs
            .iter()
            .find(|a| !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == column.as_bytes())
            .map(|a| **a);
        pg_sys::RelationClose(r);
        let att = att?;
        let var = pg_sys::makeVar(1, att.attnum, att.atttypid, att.atttypmod, att.attcollation, 0);
        let pstate = pg_sys::make_parsestate(std::ptr::null_mut());
        let expr = pg_sys::coerce_to_target_type(
            pstate,
            var.cast(),
            att.atttypid,
            pg_sys::Oid::from(to.0),
            to.1,
            pg_sys::CoercionContext::COERCION_ASSIGNMENT,
            pg_sys::CoercionForm::COERCE_IMPLICIT_CAST,
            -1,
        );
        if expr.is_null() {
            return None;
        }
        pg_sys::assign_expr_collations(pstate, expr);
        let mut e = pg_sys::expression_planner(expr.cast()) as *mut pg_sys::Node;
        loop {
            match (*e).type_ {
                pg_sys::NodeTag::T_Var if (*(e as *mut pg_sys::Var)).varattno == att.attnum => return Some(false),
                pg_sys::NodeTag::T_RelabelType => e = (*(e as *mut pg_sys::RelabelType)).arg.cast(),
                pg_sys::NodeTag::T_CoerceToDomain => {
                    let d = e as *mut pg_sys::CoerceToDomain;
                    if pg_sys::DomainHasConstraints((*d).resulttype) {
                        return Some(true);
                    }
                    e = (*d).arg.cast();
                }
                pg_sys::NodeTag::T_FuncExpr => {
                    let f = e as *mut pg_sys::FuncExpr;
                    let fid = (*f).funcid.to_u32();
                    if (fid == F_TIMESTAMPTZ_TIMESTAMP || fid == F_TIMESTAMP_TIMESTAMPTZ)
                        && !pg_sys::TimestampTimestampTzRequiresRewrite()
                    {
                        e = pgrx::PgList::<pg_sys::Node>::from_pg((*f).args).get_ptr(0)?;
                    } else {
                        return Some(true);
                    }
                }
                _ => return Some(true),
            }
        }
    })
    .flatten()
}

/// The `(oid, text)` rows of a catalog query, run with the extension's own search_path; none when
/// it fails (a fact that cannot be read is no reason to fail the user's statement).
pub(crate) fn oid_text_rows(query: &str, args: &[pgrx::datum::DatumWithOid]) -> Vec<(pg_sys::Oid, String)> {
    crate::privilege::with_safe_path(|| {
        Spi::connect(|c| {
            c.select(query, None, args)?
                .map(|r| {
                    Ok((
                        r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                        r.get::<String>(2)?.unwrap_or_default(),
                    ))
                })
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .unwrap_or_default()
    })
}

/// See [`Facts::type_change_rechecks`]. PostgreSQL (`ATPostAlterTypeCleanup`) drops and re-creates
/// every index and constraint that depends on the column, on the table and on each inheritance
/// child or partition it recurses to. `TryReuseIndex` keeps an index's storage only when
/// `CheckIndexCompatible` finds the new definition's operator classes and collations equal to the
/// old ones (and, for an operator class of polymorphic input, the column type unchanged); never for
/// an index with an expression or a predicate, nor an invalid one; and a partitioned index has no
/// storage to keep: every partition's index is built again. A re-added CHECK constraint is
/// validated again by a scan unless the table is rewritten anyway (only asked when it is not).
fn type_change_rechecks(
    relid: pg_sys::Oid,
    column: &str,
    to: (u32, i32),
    collation: Option<&[String]>,
) -> Option<crate::facts::Rechecks> {
    // A catalog ERROR (a COLLATE naming another database, say) is PostgreSQL's to report.
    try_catalog(|| rechecks_unguarded(relid, column, to, collation)).flatten()
}

/// Polymorphic pseudo-types (PostgreSQL's `IsPolymorphicType`): anyelement, anyarray,
/// anynonarray, anyenum, anyrange, anymultirange and the anycompatible family.
const POLYMORPHIC: [u32; 11] = [2283, 2277, 2776, 3500, 3831, 4537, 5077, 5078, 5079, 5080, 4538];

fn rechecks_unguarded(
    relid: pg_sys::Oid,
    column: &str,
    to: (u32, i32),
    collation: Option<&[String]>,
) -> Option<crate::facts::Rechecks> {
    let new_type = pg_sys::Oid::from(to.0);
    // The COLLATE clause resolves as the statement's will, with the session's search_path.
    let new_collation = match collation {
        Some(parts) => Spi::get_one_with_args::<pg_sys::Oid>(
            "SELECT pg_catalog.to_regcollation($1)::pg_catalog.oid",
            &[crate::sqltext::quote_qualified(parts).into()],
        )
        .ok()
        .flatten()?,
        // SAFETY: syscache lookup; 0 for a type that is not collatable.
        None => unsafe { pg_sys::get_typcollation(new_type) },
    };
    struct Row {
        name: String,
        exprs: bool,
        valid: bool,
        partitioned: bool,
        attached: bool,
        am: pg_sys::Oid,
        old_type: pg_sys::Oid,
        old_collation: pg_sys::Oid,
        opclass: pg_sys::Oid,
        index_collation: pg_sys::Oid,
    }
    let (indexes, checks): (Vec<Row>, Vec<String>) = crate::privilege::with_safe_path(|| {
        Spi::connect(|c| {
            // The table and every inheritance child or partition below it (the ALTER recurses to
            // them; the column has the same name in each), then every index that depends on the
            // column there (a key column, an INCLUDE column, an expression or a predicate), with
            // each key position the column takes (NULL when it takes none).
            let indexes = c
                .select(
                    "WITH RECURSIVE rels(relid) AS (
                         SELECT $1::pg_catalog.oid
                         UNION SELECT h.inhrelid FROM pg_catalog.pg_inherits h JOIN rels ON h.inhparent OPERATOR(pg_catalog.=) rels.relid),
                     col AS (
                         SELECT a.attrelid, a.attnum, a.atttypid, a.attcollation
                           FROM rels JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) rels.relid
                          WHERE a.attname OPERATOR(pg_catalog.=) $2 AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)
                     SELECT i.indexrelid::pg_catalog.regclass::pg_catalog.text,
                            (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL), i.indisvalid,
                            ic.relkind OPERATOR(pg_catalog.=) 'I',
                            EXISTS (SELECT FROM pg_catalog.pg_inherits h WHERE h.inhrelid OPERATOR(pg_catalog.=) i.indexrelid),
                            ic.relam, col.atttypid, col.attcollation,
                            i.indclass[k.ord OPERATOR(pg_catalog.-) 1], i.indcollation[k.ord OPERATOR(pg_catalog.-) 1]
                       FROM col
                       JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) col.attrelid
                       JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
                       LEFT JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
                              ON k.attnum OPERATOR(pg_catalog.=) col.attnum
                             AND k.ord OPERATOR(pg_catalog.<=) i.indnkeyatts
                      WHERE col.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])
                         OR EXISTS (SELECT FROM pg_catalog.pg_depend d
                                     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                       AND d.objid OPERATOR(pg_catalog.=) i.indexrelid
                                       AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                       AND d.refobjid OPERATOR(pg_catalog.=) col.attrelid
                                       AND d.refobjsubid OPERATOR(pg_catalog.=) col.attnum)
                      ORDER BY 1, k.ord",
                    None,
                    &[relid.into(), column.into()],
                )?
                .map(|r| {
                    let oid = |n: usize| r.get::<pg_sys::Oid>(n).map(|o| o.unwrap_or(pg_sys::InvalidOid));
                    let flag = |n: usize| r.get::<bool>(n).map(|b| b.unwrap_or(false));
                    Ok(Row {
                        name: r.get::<String>(1)?.unwrap_or_default(),
                        exprs: flag(2)?,
                        valid: flag(3)?,
                        partitioned: flag(4)?,
                        attached: flag(5)?,
                        am: oid(6)?,
                        old_type: oid(7)?,
                        old_collation: oid(8)?,
                        opclass: oid(9)?,
                        index_collation: oid(10)?,
                    })
                })
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()?;
            // Validated CHECK constraints on the column, of the table and of what it recurses to
            // (an inherited one once, under its name).
            let checks = c
                .select(
                    "WITH RECURSIVE rels(relid) AS (
                         SELECT $1::pg_catalog.oid
                         UNION SELECT h.inhrelid FROM pg_catalog.pg_inherits h JOIN rels ON h.inhparent OPERATOR(pg_catalog.=) rels.relid)
                     SELECT DISTINCT n.conname::pg_catalog.text FROM rels
                       JOIN pg_catalog.pg_constraint n ON n.conrelid OPERATOR(pg_catalog.=) rels.relid
                       JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) n.conrelid
                      WHERE a.attname OPERATOR(pg_catalog.=) $2
                        AND n.contype OPERATOR(pg_catalog.=) 'c' AND n.convalidated
                        AND a.attnum OPERATOR(pg_catalog.=) ANY (n.conkey)
                      ORDER BY 1",
                    None,
                    &[relid.into(), column.into()],
                )?
                .map(|r| Ok(r.get::<String>(1)?.unwrap_or_default()))
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()?;
            Ok::<_, pgrx::spi::Error>((indexes, checks))
        })
        .ok()
    })?;
    let mut out = crate::facts::Rechecks {
        indexes: vec![],
        checks,
    };
    for row in indexes {
        let why = if row.attached {
            // A partition's index attached to a partitioned one: built again with its parent,
            // which is reported.
            None
        } else if row.partitioned {
            Some("a partitioned index: PostgreSQL builds every partition's index again")
        } else if row.exprs {
            Some("PostgreSQL never reuses an index with an expression or a predicate")
        } else if !row.valid {
            Some("an invalid index is built again in full")
        } else if row.opclass == pg_sys::InvalidOid {
            // The column is only INCLUDEd: the index is reused whatever its type.
            None
        } else {
            // The new definition names the old operator class where it was not the old type's
            // default (and keeps it); otherwise it takes the new type's default.
            // SAFETY: syscache lookups.
            let (new_opclass, polymorphic) = unsafe {
                let new_opclass = if pg_sys::GetDefaultOpClass(row.old_type, row.am) == row.opclass {
                    pg_sys::GetDefaultOpClass(new_type, row.am)
                } else {
                    row.opclass
                };
                let input = pg_sys::get_opclass_input_type(row.opclass).to_u32();
                (new_opclass, POLYMORPHIC.contains(&input))
            };
            // Likewise the collation: one written on the index stays; the column's follows it.
            let new_index_collation = if row.index_collation == row.old_collation {
                new_collation
            } else {
                row.index_collation
            };
            if new_opclass != row.opclass {
                Some("its operator class changes")
            } else if polymorphic && row.old_type != new_type {
                Some("its operator class takes any type, and the column's type changes")
            } else if new_index_collation != row.index_collation {
                Some("its collation changes")
            } else {
                None
            }
        };
        if let Some(why) = why {
            if !out.indexes.iter().any(|(n, _)| n == &row.name) {
                out.indexes.push((row.name, why));
            }
        }
    }
    Some(out)
}

/// Resolve a name the way the statement will, without locking and without erroring.
pub fn resolve(r: &RelRef) -> Option<pg_sys::Oid> {
    let schema = r.schema.as_deref().map(CString::new).transpose().ok()?;
    let name = CString::new(r.name.as_str()).ok()?;
    // SAFETY: makeRangeVar copies nothing but stores the pointers, which outlive the call.
    unsafe {
        let rv = pg_sys::makeRangeVar(
            schema.as_ref().map_or(std::ptr::null_mut(), |s| s.as_ptr() as *mut _),
            name.as_ptr() as *mut _,
            -1,
        );
        let oid = pg_sys::RangeVarGetRelidExtended(
            rv,
            pg_sys::NoLock as pg_sys::LOCKMODE,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        );
        (oid != pg_sys::InvalidOid).then_some(oid)
    }
}

unsafe fn read_rel(oid: pg_sys::Oid) -> Option<Rel> {
    unsafe {
        let r = pg_sys::RelationIdGetRelation(oid);
        if r.is_null() {
            return None;
        }
        let form = &*(*r).rd_rel;
        let kind = rel_kind(form.relkind as u8);
        let schema_ptr = pg_sys::get_namespace_name(form.relnamespace);
        let schema = crate::ddl::cstr(schema_ptr).unwrap_or_default();
        let name = CStr::from_ptr(form.relname.data.as_ptr())
            .to_string_lossy()
            .into_owned();
        let display_ptr = pg_sys::quote_qualified_identifier(schema_ptr, form.relname.data.as_ptr());
        let display = crate::ddl::cstr(display_ptr).unwrap_or_default();
        let temp = form.relpersistence as u8 == pg_sys::RELPERSISTENCE_TEMP;
        let physical = crate::facts::Physical {
            persistence: form.relpersistence as u8,
            tablespace: form.reltablespace.to_u32(),
            access_method: form.relam.to_u32(),
        };
        // rd_createSubid is set only in the backend that created the relation, until commit.
        let new_in_xact = (*r).rd_createSubid != INVALID_SUBTRANSACTION_ID;
        pg_sys::RelationClose(r);
        Some(Rel {
            oid: oid.to_u32(),
            schema,
            name,
            display,
            kind,
            new_in_xact,
            temp,
            populated: form.relispopulated,
            storage: None,
            physical: Some(physical),
        })
    }
}

fn rel_kind(relkind: u8) -> RelKind {
    match relkind {
        pg_sys::RELKIND_RELATION => RelKind::Table,
        pg_sys::RELKIND_PARTITIONED_TABLE => RelKind::PartitionedTable,
        pg_sys::RELKIND_MATVIEW => RelKind::MatView,
        pg_sys::RELKIND_VIEW => RelKind::View,
        pg_sys::RELKIND_INDEX => RelKind::Index,
        pg_sys::RELKIND_PARTITIONED_INDEX => RelKind::PartitionedIndex,
        pg_sys::RELKIND_FOREIGN_TABLE => RelKind::ForeignTable,
        pg_sys::RELKIND_SEQUENCE => RelKind::Sequence,
        _ => RelKind::Other,
    }
}

unsafe fn relation_storage(oid: pg_sys::Oid, kind: RelKind) -> (u64, Option<i64>) {
    unsafe {
        let r = pg_sys::RelationIdGetRelation(oid);
        if r.is_null() {
            return (0, None);
        }
        let result = storage(r, kind);
        pg_sys::RelationClose(r);
        result
    }
}

/// Main-fork bytes and `reltuples` estimate; partitioned tables sum their partitions.
unsafe fn storage(r: pg_sys::Relation, kind: RelKind) -> (u64, Option<i64>) {
    unsafe {
        match kind {
            RelKind::Table | RelKind::MatView | RelKind::Index | RelKind::Sequence => {
                let blocks = pg_sys::RelationGetNumberOfBlocksInFork(r, pg_sys::ForkNumber::MAIN_FORKNUM);
                let form = &*(*r).rd_rel;
                (
                    blocks as u64 * pg_sys::BLCKSZ as u64,
                    crate::server::compat::row_estimate(form.relpages, form.reltuples),
                )
            }
            RelKind::PartitionedTable => {
                let pd = crate::server::compat::partition_desc(r);
                let (mut size, mut rows, mut rows_known) = (0u64, 0i64, true);
                if !pd.is_null() {
                    for i in 0..(*pd).nparts as usize {
                        let child = *(*pd).oids.add(i);
                        let c = pg_sys::RelationIdGetRelation(child);
                        if c.is_null() {
                            continue;
                        }
                        let (s, n) = storage(c, rel_kind((*(*c).rd_rel).relkind as u8));
                        pg_sys::RelationClose(c);
                        size += s;
                        match n {
                            Some(n) => rows += n,
                            None => rows_known = false,
                        }
                    }
                }
                (size, rows_known.then_some(rows))
            }
            _ => (0, None),
        }
    }
}

pub(crate) unsafe fn read_column(oid: pg_sys::Oid, column: &str) -> Option<Column> {
    unsafe {
        let r = pg_sys::RelationIdGetRelation(oid);
        if r.is_null() {
            return None;
        }
        let desc = (*r).rd_att;
        let attrs = crate::server::compat::attributes(desc);
        let found = attrs
            .iter()
            .find(|a| !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == column.as_bytes());
        let col = found.map(|a| {
            let proven = if a.attnotnull {
                None
            } else {
                check_proving_not_null(desc, a)
            };
            Column {
                name: column.to_owned(),
                not_null: crate::server::compat::not_null_valid(desc, a),
                generated: (a.attgenerated != 0).then_some(a.attgenerated as u8 as char),
                not_null_proven_by: proven,
                type_display: crate::ddl::cstr(pg_sys::format_type_with_typemod(a.atttypid, a.atttypmod))
                    .unwrap_or_default(),
            }
        });
        pg_sys::RelationClose(r);
        col
    }
}

/// The name of a validated CHECK constraint that implies `col IS NOT NULL`, using the same
/// proof PostgreSQL uses to skip the SET NOT NULL scan (`NotNullImpliedByRelConstraints`).
unsafe fn check_proving_not_null(desc: pg_sys::TupleDesc, att: &pg_sys::FormData_pg_attribute) -> Option<String> {
    unsafe { proving_checks(desc, att, true).into_iter().next().map(|(name, _)| name) }
}

/// The CHECK constraints that imply `att IS NOT NULL`, with their validity (`only_valid`: stop at
/// the first valid one, skipping the others).
unsafe fn proving_checks(
    desc: pg_sys::TupleDesc,
    att: &pg_sys::FormData_pg_attribute,
    only_valid: bool,
) -> Vec<(String, bool)> {
    unsafe {
        let mut out = Vec::new();
        let constr = (*desc).constr;
        if constr.is_null() || (*constr).num_check == 0 {
            return out;
        }
        let mut test = PgBox::<pg_sys::NullTest>::alloc_node(pg_sys::NodeTag::T_NullTest);
        test.arg = pg_sys::makeVar(1, att.attnum, att.atttypid, att.atttypmod, att.attcollation, 0).cast();
        test.nulltesttype = pg_sys::NullTestType::IS_NOT_NULL;
        test.argisrow = false;
        test.location = -1;
        let test_list = pg_sys::lappend(std::ptr::null_mut(), test.into_pg().cast());
        let checks = std::slice::from_raw_parts((*constr).check, (*constr).num_check as usize);
        for check in checks.iter().filter(|c| c.ccvalid || !only_valid) {
            let expr = pg_sys::stringToNode(check.ccbin) as *mut pg_sys::Node;
            let expr = pg_sys::eval_const_expressions(std::ptr::null_mut(), expr);
            let expr = pg_sys::canonicalize_qual(expr.cast(), true);
            let clauses = pg_sys::make_ands_implicit(expr);
            if pg_sys::predicate_implied_by(test_list, clauses, true) {
                out.push((crate::ddl::cstr(check.ccname).unwrap_or_default(), check.ccvalid));
                if only_valid {
                    break;
                }
            }
        }
        out
    }
}

/// Every CHECK constraint of `oid` that would prove `column` NOT NULL once valid, with whether it
/// is valid now (for `check()`, which follows a script's VALIDATE CONSTRAINT).
pub fn checks_proving(oid: pg_sys::Oid, column: &str) -> Vec<(String, bool)> {
    // SAFETY: relcache read of a relation that exists; the proof is the one `read_column` uses.
    unsafe {
        let r = pg_sys::RelationIdGetRelation(oid);
        if r.is_null() {
            return vec![];
        }
        let desc = (*r).rd_att;
        let attrs = crate::server::compat::attributes(desc);
        let found = attrs
            .iter()
            .find(|a| !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == column.as_bytes())
            .map(|a| **a);
        let out = match found {
            Some(att) => proving_checks(desc, &att, false),
            None => vec![],
        };
        pg_sys::RelationClose(r);
        out
    }
}

/// Run catalog work that may raise an ERROR (type lookups, expression analysis) inside an
/// internal subtransaction, so that a failure is rolled back cleanly and reported as `None`
/// instead of aborting the user's statement from inside the guard.
pub fn try_catalog<T>(f: impl FnOnce() -> T) -> Option<T> {
    attempt(f).ok()
}

/// Run `f` in an internal subtransaction that is always rolled back: what it locks or writes
/// is undone, only its Rust result stays. `None` if it raised an ERROR.
pub fn probe<T>(f: impl FnOnce() -> T) -> Option<T> {
    // SAFETY: as in attempt(): memory context and resource owner restored however it ends.
    unsafe {
        let old_ctx = pg_sys::CurrentMemoryContext;
        let old_owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(old_ctx);
        let f = std::panic::AssertUnwindSafe(f);
        let result = PgTryBuilder::new(move || {
            let f = f;
            Some((f.0)())
        })
        .catch_others(|_| None)
        .execute();
        pg_sys::RollbackAndReleaseCurrentSubTransaction();
        pg_sys::MemoryContextSwitchTo(old_ctx);
        pg_sys::CurrentResourceOwner = old_owner;
        result
    }
}

/// An ERROR caught by [`attempt`], as the client would have seen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaughtError {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the text being parsed (`errposition`), 0 when none.
    pub position: i32,
}

thread_local! {
    static ERROR_POSITION: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// Error context callback: remembers the cursor position of the error being raised (the
/// caught error's report does not carry it).
#[pg_guard]
unsafe extern "C-unwind" fn remember_error_position(_arg: *mut core::ffi::c_void) {
    // SAFETY: called by errfinish while the error is being reported.
    ERROR_POSITION.set(unsafe { pg_sys::geterrposition() });
}

/// [`try_catalog`] that keeps the error: `f` runs in an internal subtransaction, rolled back if
/// it raises an ERROR. A Rust panic (a bug) is not caught.
pub fn attempt<T>(f: impl FnOnce() -> T) -> Result<T, CaughtError> {
    // SAFETY: this is the PL/Python `PLy_spi_subtransaction_*` pattern: remember the memory
    // context and resource owner, start a subtransaction, and restore both however it ends. The
    // error context callback lives on this stack frame and is unlinked before it returns.
    unsafe {
        let old_ctx = pg_sys::CurrentMemoryContext;
        let old_owner = pg_sys::CurrentResourceOwner;
        let old_context_stack = pg_sys::error_context_stack;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(old_ctx);
        ERROR_POSITION.set(0);
        let mut callback = pg_sys::ErrorContextCallback {
            previous: old_context_stack,
            callback: Some(remember_error_position),
            arg: std::ptr::null_mut(),
        };
        pg_sys::error_context_stack = &mut callback;
        let f = std::panic::AssertUnwindSafe(f);
        let result = PgTryBuilder::new(move || {
            let f = f;
            Ok((f.0)())
        })
        .catch_others(|e| Err(Box::new(e)))
        .execute();
        pg_sys::error_context_stack = old_context_stack;
        if result.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(old_ctx);
        pg_sys::CurrentResourceOwner = old_owner;
        result.map_err(|e| {
            let report = match *e {
                pg_sys::panic::CaughtError::PostgresError(r) | pg_sys::panic::CaughtError::ErrorReport(r) => r,
                panic @ pg_sys::panic::CaughtError::RustPanic { .. } => panic.rethrow(),
            };
            let sqlstate =
                crate::ddl::cstr(pg_sys::unpack_sql_state(report.sql_error_code() as i32)).unwrap_or_default();
            CaughtError {
                sqlstate,
                message: report.message().to_owned(),
                detail: report.detail().map(str::to_owned),
                hint: report.hint().map(str::to_owned),
                position: ERROR_POSITION.get(),
            }
        })
    }
}
