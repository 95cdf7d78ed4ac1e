//! `manual-ddl`: with `migrate_guard.require_migration` on, every DDL statement must run inside a
//! migration registered with `migrate_guard.begin_migration()`; hand-typed DDL in production is
//! blocked. Temporary objects are not schema changes of the database (and a session restoring a
//! dump is not judged at all).

use super::{Finding, RuleId};
use crate::facts::Facts;
use crate::locks::only_temporary;
use crate::model::Statement;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    // Maintenance and data commands the utility hook judges are not schema changes.
    if matches!(
        stmt.command,
        crate::model::Command::Rewrite(_) | crate::model::Command::Truncate(_) | crate::model::Command::Lock(_)
    ) {
        return;
    }
    let session = facts.session();
    if !session.require_migration || session.in_migration || only_temporary(stmt, facts) {
        return;
    }
    out.push(Finding {
        unused: None,
        rule: RuleId::ManualDdl,
        message: format!(
            "{} outside a registered migration is not allowed in this database",
            stmt.tag
        ),
        detail: "migrate_guard.require_migration is on: every schema change must run between \
                 migrate_guard.begin_migration(name, checksum) and migrate_guard.end_migration(), so that it is \
                 reviewed, recorded and linked to its migration in migrate_guard.history."
            .to_owned(),
        safe_way: "Put it in a migration: SELECT migrate_guard.begin_migration('<name>', '<checksum>'); <the \
                   statements>; SELECT migrate_guard.end_migration();"
            .to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FakeFacts, Session};
    use crate::model::*;
    use crate::rules::testing::*;

    fn facts(require: bool, in_migration: bool) -> FakeFacts {
        let mut tmp = FakeFacts::table("tmp");
        tmp.temp = true;
        let mut f = FakeFacts::default().with("t", FakeFacts::table("t")).with("tmp", tmp);
        f.session = Session {
            require_migration: require,
            in_migration,
            ..Session::default()
        };
        f
    }

    fn run(s: &Statement, f: &FakeFacts) -> usize {
        let mut out = Vec::new();
        check(s, f, &mut out);
        out.len()
    }

    #[test]
    fn blocks_ddl_outside_migrations_only_when_required() {
        let other = stmt("CREATE FUNCTION", "", Command::Other);
        let add = stmt(
            "ALTER TABLE",
            "",
            alter("t", vec![AlterCmd::ValidateConstraint { name: "c".into() }]),
        );
        assert_eq!(run(&other, &facts(false, false)), 0);
        assert_eq!(run(&other, &facts(true, false)), 1);
        assert_eq!(run(&add, &facts(true, false)), 1);
        assert_eq!(run(&other, &facts(true, true)), 0);
    }

    #[test]
    fn temporary_objects_are_not_schema_changes() {
        let create_temp = stmt(
            "CREATE TABLE",
            "",
            Command::CreateRelation {
                name: None,
                references: vec![],
                temp: true,

                partition_of: None,
            },
        );
        let alter_temp = stmt(
            "ALTER TABLE",
            "",
            alter("tmp", vec![AlterCmd::ValidateConstraint { name: "c".into() }]),
        );
        let create = stmt(
            "CREATE TABLE",
            "",
            Command::CreateRelation {
                name: None,
                references: vec![],
                temp: false,

                partition_of: None,
            },
        );
        assert_eq!(run(&create_temp, &facts(true, false)), 0);
        assert_eq!(run(&alter_temp, &facts(true, false)), 0);
        assert_eq!(run(&create, &facts(true, false)), 1);
    }
}
