//! migrate_guard's judging core, without PostgreSQL: the statement model, the facts rules ask
//! about tables (a trait the extension implements on the live catalog), the rules, the lock
//! table, the policy that turns findings into verdicts, and the overlay `check()` keeps of a
//! script's effects. The extension and the `migrate-guard` client build models and facts and
//! act on what this crate decides; everything here is tested with plain `cargo test`.

pub mod check;
pub mod evidence;
pub mod facts;
pub mod locks;
pub mod model;
pub mod policy;
pub mod rules;
pub mod server;
pub mod sqltext;
