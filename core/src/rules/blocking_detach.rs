//! `blocking-detach`: `DETACH PARTITION` without `CONCURRENTLY` takes ACCESS EXCLUSIVE on the
//! partitioned table and the partition.

use super::{Finding, RuleId, existing_target, single_subcommand_text};
use crate::facts::Facts;
use crate::model::{AlterCmd, Command, Statement};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let AlterCmd::DetachPartition {
            partition,
            concurrent: false,
            finalize: false,
        } = cmd
        else {
            continue;
        };
        let Some(rel) = existing_target(&at.table, facts) else {
            return;
        };
        let rel = facts.with_storage(rel);
        let t = &rel.display;
        let p = facts
            .relation(partition)
            .map(|p| p.display)
            .unwrap_or_else(|| partition.to_string());
        let server = facts.server();
        let (locks, safe_way) = if server.detach_concurrently() {
            let concurrent = single_subcommand_text(stmt, at)
                .map(|s| format!("{s} CONCURRENTLY"))
                .unwrap_or_else(|| format!("ALTER TABLE {t} DETACH PARTITION {p} CONCURRENTLY"));
            (
                format!("takes ACCESS EXCLUSIVE locks on {} and on {p}", rel.described()),
                format!(
                    "Detach it in two steps that only take SHARE UPDATE EXCLUSIVE on {t}: {concurrent}; (outside a \
                     transaction block; not possible while {t} has a default partition). If it is interrupted, \
                     finish with ALTER TABLE {t} DETACH PARTITION {p} FINALIZE."
                ),
            )
        } else {
            let plain =
                single_subcommand_text(stmt, at).unwrap_or_else(|| format!("ALTER TABLE {t} DETACH PARTITION {p}"));
            (
                format!(
                    "takes an ACCESS EXCLUSIVE lock on {} (and SHARE UPDATE EXCLUSIVE on {p})",
                    rel.described()
                ),
                format!(
                    "PostgreSQL {} cannot detach a partition CONCURRENTLY (that came with 14): detach it at a quiet \
                     time, failing fast instead of queueing, and retry until it goes through: SET lock_timeout = \
                     '2s'; {plain};",
                    server.major
                ),
            )
        };
        out.push(Finding {
            unused: None,
            rule: RuleId::BlockingDetach,
            message: if server.detach_concurrently() {
                format!("DETACH PARTITION {p} blocks every read and write of {t} and of the partition")
            } else {
                format!("DETACH PARTITION {p} blocks every read and write of {t}")
            },
            detail: format!(
                "Without CONCURRENTLY, DETACH PARTITION {locks}: it waits for every running query on them, and every \
                 later query queues behind it."
            ),
            safe_way,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::rules::testing::*;

    #[test]
    fn blocks_plain_detach_only() {
        let f = FakeFacts::default()
            .with("p", FakeFacts::table("p"))
            .with("p1", FakeFacts::table("p1"));
        let det = |concurrent, finalize| AlterCmd::DetachPartition {
            partition: rel("p1"),
            concurrent,
            finalize,
        };
        let mut out = Vec::new();
        check(
            &stmt(
                "ALTER TABLE",
                "ALTER TABLE p DETACH PARTITION p1;",
                alter("p", vec![det(false, false)]),
            ),
            &f,
            &mut out,
        );
        check(
            &stmt("ALTER TABLE", "", alter("p", vec![det(true, false)])),
            &f,
            &mut out,
        );
        check(
            &stmt("ALTER TABLE", "", alter("p", vec![det(false, true)])),
            &f,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(
            out[0]
                .safe_way
                .contains("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY;"),
            "{}",
            out[0].safe_way
        );
    }

    #[test]
    fn postgres_13_has_no_concurrent_detach_to_suggest() {
        let mut f = FakeFacts::default()
            .with("p", FakeFacts::table("p"))
            .with("p1", FakeFacts::table("p1"));
        f.server = Some(crate::server::Server::of(13));
        let mut out = Vec::new();
        let det = AlterCmd::DetachPartition {
            partition: rel("p1"),
            concurrent: false,
            finalize: false,
        };
        check(
            &stmt(
                "ALTER TABLE",
                "ALTER TABLE p DETACH PARTITION p1;",
                alter("p", vec![det]),
            ),
            &f,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(!out[0].safe_way.contains("CONCURRENTLY;"), "{}", out[0].safe_way);
        assert!(
            out[0]
                .safe_way
                .contains("SET lock_timeout = '2s'; ALTER TABLE p DETACH PARTITION p1;"),
            "{}",
            out[0].safe_way
        );
        assert!(
            out[0].detail.contains("SHARE UPDATE EXCLUSIVE on public.p1"),
            "{}",
            out[0].detail
        );
    }
}
