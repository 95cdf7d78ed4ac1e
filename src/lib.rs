//! migrate_guard: a PostgreSQL extension that inspects every DDL statement before it takes its
//! lock and blocks the patterns that lock or rewrite big tables, or break running clients.
//!
//! Data flow (see `../shared/STYLE.md`): parse tree → [`ddl`] → [`model`] → [`rules`] (with
//! [`facts`] from [`catalog`]) → [`policy`] → [`guard`] acts.

use pgrx::prelude::*;

pub use migrate_guard_core::{evidence, facts, locks, model, policy, rules, sqltext};

pub mod backfill;
pub mod catalog;
pub mod check;
pub mod ddl;
pub mod dml;
pub mod expansion;
pub mod guard;
pub mod gucs;
pub mod history;
pub mod ids;
pub mod migrations;
pub mod privilege;
pub mod report;
pub mod restore;
pub mod retired;
pub mod server;
pub mod usage;
pub mod utility;

::pgrx::pg_module_magic!(name, version);

// All objects live in the schema `migrate_guard`, created here as a member of the extension: a
// schema named in the control file would be created outside the extension, and pg_dump would
// then emit a CREATE SCHEMA that fails when restoring into a database that has the extension.
pgrx::extension_sql!("CREATE SCHEMA migrate_guard;", name = "schema", bootstrap);

/// Declares the schema to pgrx so that `#[pg_extern(schema = "migrate_guard")]` functions in any
/// module can live in it.
#[pg_schema]
mod migrate_guard {}

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::register();
    usage::register();
    usage::register_backend_callbacks();
    history::register_callbacks();
    dml::register();
    utility::register();
}

/// The rule catalog: every rule id with what it catches.
#[pg_extern(stable, parallel_safe, schema = "migrate_guard")]
fn rules() -> TableIterator<'static, (name!(rule_id, String), name!(catches, String))> {
    TableIterator::new(
        rules::RuleId::ALL
            .iter()
            .map(|r| (r.id().to_owned(), r.summary().to_owned())),
    )
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use crate::catalog::CatalogFacts;
    use crate::facts::{Facts, RelKind};
    use crate::model::RelRef;
    use pgrx::prelude::*;

    fn rel(facts: &CatalogFacts, name: &str) -> crate::facts::Rel {
        facts.relation(&RelRef::new(None, name)).expect("relation resolves")
    }

    /// Every id `rules()` lists is distinct, kebab-case, described, and accepted by
    /// `migrate_guard.allow` (whose check hook parses ids on its own path).
    #[pg_test]
    fn rules_function_ids_are_usable_in_allow() {
        let ids: Vec<(String, String)> = Spi::connect(|c| {
            c.select("SELECT rule_id, catches FROM migrate_guard.rules()", None, &[])?
                .map(|r| Ok((r.get::<String>(1)?.unwrap(), r.get::<String>(2)?.unwrap())))
                .collect::<Result<_, pgrx::spi::Error>>()
        })
        .unwrap();
        assert_eq!(ids.len(), crate::rules::RuleId::ALL.len());
        let mut seen = std::collections::HashSet::new();
        for (id, catches) in &ids {
            assert!(seen.insert(id.clone()), "duplicate id {id}");
            assert!(id.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{id}");
            assert!(!catches.is_empty(), "{id} has no summary");
            Spi::run(&format!("SET LOCAL migrate_guard.allow = '{id}'")).unwrap();
        }
        let all = ids.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ");
        Spi::run(&format!("SET LOCAL migrate_guard.allow = '{all}'")).unwrap();
    }

    #[pg_test]
    fn facts_know_new_temp_empty_and_populated_tables() {
        // The test runs inside one transaction: everything created here is new to it.
        Spi::run("CREATE TABLE t_new (id int); CREATE TEMP TABLE t_tmp (id int)").unwrap();
        Spi::run("INSERT INTO t_new SELECT generate_series(1, 500)").unwrap();
        let facts = CatalogFacts::new(false);
        let t = facts.with_storage(rel(&facts, "t_new"));
        assert!(t.new_in_xact && !t.temp && !t.existing());
        assert!(t.has_data() && t.storage().size_bytes >= 8192);
        assert_eq!(t.kind, RelKind::Table);
        let tmp = rel(&facts, "t_tmp");
        assert!(tmp.temp && !tmp.existing());
        // An empty table holds no data, unless assume_populated says to treat it as if it did.
        Spi::run("CREATE TABLE t_empty (id int)").unwrap();
        let empty = facts.with_storage(rel(&facts, "t_empty"));
        assert!(!empty.has_data() && empty.storage().size_bytes == 0);
        let assumed = CatalogFacts::new(true);
        let empty = assumed.with_storage(rel(&assumed, "t_empty"));
        assert!(empty.has_data() && empty.storage().data_assumed);
        assert!(facts.relation(&RelRef::new(None, "no_such_table")).is_none());
        // A catalog table is existing.
        let pg_class = facts.with_storage(facts.relation(&RelRef::new(Some("pg_catalog"), "pg_class")).unwrap());
        assert!(pg_class.existing() && pg_class.has_data());
        assert_eq!(pg_class.display, "pg_catalog.pg_class");
    }

    #[pg_test]
    fn facts_decide_type_change_rewrites_like_postgres() {
        Spi::run("CREATE TABLE t_types (v varchar(10), n numeric(10,2), i int, t text)").unwrap();
        let facts = CatalogFacts::new(false);
        let t = rel(&facts, "t_types");
        let varchar = Spi::get_one::<pg_sys::Oid>("SELECT 'varchar'::regtype::oid")
            .unwrap()
            .unwrap()
            .to_u32();
        let numeric = Spi::get_one::<pg_sys::Oid>("SELECT 'numeric'::regtype::oid")
            .unwrap()
            .unwrap()
            .to_u32();
        let text = Spi::get_one::<pg_sys::Oid>("SELECT 'text'::regtype::oid")
            .unwrap()
            .unwrap()
            .to_u32();
        let int8 = Spi::get_one::<pg_sys::Oid>("SELECT 'bigint'::regtype::oid")
            .unwrap()
            .unwrap()
            .to_u32();
        assert_eq!(
            facts.type_change_rewrites(&t, "v", (varchar, 24)),
            Some(false),
            "varchar(10) -> varchar(20)"
        );
        assert_eq!(
            facts.type_change_rewrites(&t, "v", (varchar, 9)),
            Some(true),
            "varchar(10) -> varchar(5)"
        );
        assert_eq!(
            facts.type_change_rewrites(&t, "v", (text, -1)),
            Some(false),
            "varchar -> text"
        );
        assert_eq!(
            facts.type_change_rewrites(&t, "n", (numeric, ((12 << 16) | 2) + 4)),
            Some(false)
        );
        assert_eq!(
            facts.type_change_rewrites(&t, "n", (numeric, ((10 << 16) | 3) + 4)),
            Some(true)
        );
        assert_eq!(
            facts.type_change_rewrites(&t, "i", (int8, -1)),
            Some(true),
            "int -> bigint"
        );
        assert_eq!(
            facts.type_change_rewrites(&t, "t", (varchar, -1)),
            Some(false),
            "text -> varchar"
        );
        assert_eq!(facts.type_change_rewrites(&t, "nope", (text, -1)), None);
    }

    #[pg_test]
    fn facts_find_checks_that_prove_not_null() {
        Spi::run(
            "CREATE TABLE t_nn (a int, b int, c int NOT NULL);
             ALTER TABLE t_nn ADD CONSTRAINT a_nn CHECK (a IS NOT NULL);
             ALTER TABLE t_nn ADD CONSTRAINT b_nn CHECK (b IS NOT NULL) NOT VALID;",
        )
        .unwrap();
        let facts = CatalogFacts::new(false);
        let t = rel(&facts, "t_nn");
        assert_eq!(
            facts.column(&t, "a").unwrap().not_null_proven_by.as_deref(),
            Some("a_nn")
        );
        assert_eq!(facts.column(&t, "b").unwrap().not_null_proven_by, None, "not validated");
        assert!(facts.column(&t, "c").unwrap().not_null);
        assert_eq!(facts.column(&t, "a").unwrap().type_display, "integer");
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
