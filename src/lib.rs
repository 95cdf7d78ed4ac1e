//! migrate_guard: a PostgreSQL extension that inspects every DDL statement before it takes its
//! lock and blocks the patterns that lock or rewrite big tables, or break running clients.
//!
//! Data flow (see `../shared/STYLE.md`): parse tree → [`ddl`] → [`model`] → [`rules`] (with
//! [`facts`] from [`catalog`]) → [`policy`] → [`guard`] acts.

use pgrx::prelude::*;

pub mod catalog;
pub mod ddl;
pub mod facts;
pub mod guard;
pub mod gucs;
pub mod locks;
pub mod model;
pub mod policy;
pub mod report;
pub mod rules;
pub mod sqltext;

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
    use pgrx::prelude::*;

    #[pg_test]
    fn rules_function_lists_every_rule() {
        let n = Spi::get_one::<i64>("SELECT count(*) FROM migrate_guard.rules()")
            .unwrap()
            .unwrap();
        assert_eq!(n as usize, crate::rules::RuleId::ALL.len());
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
