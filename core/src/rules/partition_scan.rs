//! `partition-scan`: a new partition bound that PostgreSQL must check by reading a populated
//! table under ACCESS EXCLUSIVE.
//!
//! * `ATTACH PARTITION` reads the table being attached, unless its valid constraints prove every
//!   row fits the bound (PostgreSQL's own proof, see the extension's `ddl::partition`).
//! * `ATTACH PARTITION` and `CREATE TABLE … PARTITION OF` read the parent's default partition
//!   for rows the new bound takes from it, unless its valid constraints prove there are none.
//!   `PARTITION OF` holds ACCESS EXCLUSIVE on the parent meanwhile, so every query on the
//!   partitioned table waits.
//!
//! The safe way proves the bound first with a CHECK constraint added `NOT VALID` and validated
//! in a transaction of its own (SHARE UPDATE EXCLUSIVE: reads and writes go on); then the attach
//! or create skips the scan.

use super::{Finding, RuleId, existing_target};
use crate::facts::{Facts, Rel, Stored};
use crate::model::{AlterCmd, BoundScans, Command, Statement};
use crate::sqltext::quote_ident;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    match &stmt.command {
        Command::AlterTable(at) => {
            for cmd in &at.cmds {
                let AlterCmd::AttachPartition { partition, scans } = cmd else {
                    continue;
                };
                let Some(parent) = facts.relation(&at.table) else {
                    continue;
                };
                let Some(scans) = scans else { continue };
                if scans.partition_proved != Some(true)
                    && let Some(rel) = populated(facts, partition)
                {
                    out.push(attached_scan(&rel, &parent, scans));
                }
                if let Some(f) = default_scan(facts, &parent, scans, "ATTACH PARTITION", &partition.name) {
                    out.push(f);
                }
            }
        }
        Command::CreateRelation {
            partition_of: Some(p),
            name,
            ..
        } => {
            let Some(parent) = facts.relation(&p.parent) else {
                return;
            };
            let new = name.as_ref().map_or("new", |n| n.name.as_str());
            if let Some(scans) = &p.scans
                && let Some(f) = default_scan(facts, &parent, scans, "CREATE TABLE … PARTITION OF", new)
            {
                out.push(f);
            }
        }
        _ => {}
    }
}

fn populated(facts: &dyn Facts, r: &crate::model::RelRef) -> Option<Stored> {
    existing_target(r, facts)
        .map(|rel| facts.with_storage(rel))
        .filter(Stored::has_data)
}

fn constraint_name(rel: &Rel, suffix: &str) -> String {
    let mut name = format!("{}_{suffix}", rel.name);
    // Identifiers are at most 63 bytes: keep the end, which says what it is for.
    while name.len() > 63 {
        name.remove(0);
    }
    quote_ident(&name)
}

fn attached_scan(rel: &Stored, parent: &Rel, scans: &BoundScans) -> Finding {
    let t = &rel.display;
    let name = constraint_name(rel, "partition_bound");
    let check = scans
        .bound_check
        .as_deref()
        .unwrap_or("<the partition bound as a condition>");
    Finding {
        unused: None,
        rule: RuleId::PartitionScan,
        message: format!(
            "ATTACH PARTITION reads every row of {} {t} under an ACCESS EXCLUSIVE lock to check the partition bound",
            rel.kind.noun()
        ),
        detail: format!(
            "No valid constraint of {} proves that its rows fit the bound, so PostgreSQL scans it while it holds \
             ACCESS EXCLUSIVE on it (and SHARE UPDATE EXCLUSIVE on {}): every read and write of {t} waits until the \
             scan is done.",
            rel.described(),
            parent.display
        ),
        safe_way: format!(
            "Prove the bound first, in transactions of their own: ALTER TABLE {t} ADD CONSTRAINT {name} CHECK ({check}) \
             NOT VALID; then ALTER TABLE {t} VALIDATE CONSTRAINT {name}; (reads and writes go on), then attach: \
             PostgreSQL skips the scan; drop the constraint afterwards if you like."
        ),
    }
}

fn default_scan(facts: &dyn Facts, parent: &Rel, scans: &BoundScans, what: &str, new: &str) -> Option<Finding> {
    let d = scans.default.as_ref().filter(|d| !d.proved)?;
    let rel = populated(facts, &d.partition)?;
    let t = &rel.display;
    let name = constraint_name(&rel, &format!("not_{new}"));
    let check = d.check.as_deref().unwrap_or("<no row of the new bound>");
    let parent_lock = if what.starts_with("CREATE") {
        format!(
            "ACCESS EXCLUSIVE on {} (every query on the partitioned table waits)",
            parent.display
        )
    } else {
        format!("SHARE UPDATE EXCLUSIVE on {}", parent.display)
    };
    Some(Finding {
        unused: None,
        rule: RuleId::PartitionScan,
        message: format!(
            "{what} reads every row of the default partition {t} under an ACCESS EXCLUSIVE lock to check the new bound"
        ),
        detail: format!(
            "No valid constraint of the default partition {} proves that it holds no row of the new bound, so \
             PostgreSQL scans it while it holds ACCESS EXCLUSIVE on it and {parent_lock}: every read and write of \
             {t} waits until the scan is done.",
            rel.described()
        ),
        safe_way: format!(
            "Prove the default partition holds no row of the new bound, in transactions of their own: ALTER TABLE {t} \
             ADD CONSTRAINT {name} CHECK ({check}) NOT VALID; (from then on it refuses new rows of that bound until \
             the partition exists: keep the steps that follow short); move the rows of that bound it still holds \
             into a holding table; ALTER TABLE {t} VALIDATE CONSTRAINT {name}; (reads and writes go on); then create \
             or attach the partition (PostgreSQL skips the scan) and insert the held rows through the parent. \
             pg_partman's partition_data_proc does the moving for the tables it manages."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FakeFacts, RelKind};
    use crate::model::*;
    use crate::rules::testing::*;

    fn facts() -> FakeFacts {
        let mut parent = FakeFacts::table("events");
        parent.kind = RelKind::PartitionedTable;
        FakeFacts::default()
            .with("events", parent)
            .with("events_2027", FakeFacts::table("events_2027"))
            .with("events_default", FakeFacts::table("events_default"))
    }

    fn scans(partition_proved: bool, default_proved: Option<bool>) -> BoundScans {
        BoundScans {
            partition_proved: Some(partition_proved),
            bound_check: Some("at IS NOT NULL AND at >= '2027-01-01' AND at < '2028-01-01'".into()),
            default: default_proved.map(|proved| DefaultScan {
                partition: rel("events_default"),
                proved,
                check: Some("NOT (at IS NOT NULL AND at >= '2027-01-01' AND at < '2028-01-01')".into()),
            }),
        }
    }

    fn attach(s: BoundScans) -> Vec<Finding> {
        let cmd = AlterCmd::AttachPartition {
            partition: rel("events_2027"),
            scans: Some(s),
        };
        let mut out = Vec::new();
        check(&stmt("ALTER TABLE", "", alter("events", vec![cmd])), &facts(), &mut out);
        out
    }

    #[test]
    fn attaching_an_unproved_populated_table_or_default_is_blocked() {
        let out = attach(scans(false, Some(false)));
        assert_eq!(out.len(), 2);
        assert!(
            out[0]
                .message
                .starts_with("ATTACH PARTITION reads every row of table public.events_2027")
        );
        assert!(
            out[0]
                .safe_way
                .contains("ADD CONSTRAINT events_2027_partition_bound CHECK (at IS NOT NULL AND")
        );
        assert!(out[1].message.contains("default partition public.events_default"));
    }

    #[test]
    fn a_proved_bound_passes() {
        assert!(attach(scans(true, Some(true))).is_empty());
        assert!(attach(scans(true, None)).is_empty());
    }

    #[test]
    fn partition_of_is_judged_by_the_default_partition() {
        let s = stmt(
            "CREATE TABLE",
            "",
            Command::CreateRelation {
                name: Some(rel("events_2027b")),
                references: vec![],
                temp: false,
                partition_of: Some(PartitionOf {
                    parent: rel("events"),
                    scans: Some(scans(true, Some(false))),
                }),
            },
        );
        let mut out = Vec::new();
        check(&s, &facts(), &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].detail.contains("ACCESS EXCLUSIVE on public.events (every query"),
            "{}",
            out[0].detail
        );
        let mut empty = facts();
        empty
            .rels
            .iter_mut()
            .find(|(r, _)| r.name == "events_default")
            .unwrap()
            .1
            .set_empty();
        let mut out = Vec::new();
        check(&s, &empty, &mut out);
        assert!(out.is_empty());
    }
}
