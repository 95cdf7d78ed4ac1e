//! `blocking-index`: `CREATE INDEX` without `CONCURRENTLY` holds a SHARE lock on the table for the
//! whole build, so every write waits.

use super::{Finding, RuleId, populated_target};
use crate::facts::{Facts, RelKind};
use crate::model::{Command, RelRef, Statement};
use crate::sqltext::insert_after_words;

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::CreateIndex(ci) = &stmt.command else {
        return;
    };
    if ci.concurrent {
        return;
    }
    let Some(rel) = populated_target(&ci.table, facts) else {
        return;
    };
    // IF NOT EXISTS with a name that is taken in the table's schema: PostgreSQL skips the
    // statement with a NOTICE, and builds nothing.
    if ci.if_not_exists
        && ci
            .name
            .as_deref()
            .is_some_and(|n| facts.relation(&RelRef::new(Some(&rel.schema), n)).is_some())
    {
        return;
    }
    let partitioned = rel.kind == RelKind::PartitionedTable;
    // ON ONLY a partitioned table creates an invalid parent index without reading any data.
    if partitioned && ci.only {
        return;
    }
    let what = if ci.unique {
        "CREATE UNIQUE INDEX"
    } else {
        "CREATE INDEX"
    };
    let text = stmt.text.as_deref().unwrap_or("");
    let safe_way = if partitioned {
        let parent = insert_after_words(text, &["ON"], "ONLY")
            .unwrap_or_else(|| format!("{what} <name> ON ONLY {} (...)", rel.display));
        format!(
            "CONCURRENTLY is not supported on a partitioned table; build the index one partition at a time: \
             {parent}; then for each partition CREATE INDEX CONCURRENTLY <partition_index> ON <partition> (...); \
             and ALTER INDEX <name> ATTACH PARTITION <partition_index>; the parent index becomes valid once \
             every partition has its index attached."
        )
    } else {
        let concurrent = insert_after_words(text, &["INDEX"], "CONCURRENTLY")
            .unwrap_or_else(|| format!("{what} CONCURRENTLY <name> ON {} (...)", rel.display));
        format!("Build it without blocking writes, outside a transaction block: {concurrent};")
    };
    let blocked = if rel.kind == RelKind::MatView {
        "REFRESH MATERIALIZED VIEW"
    } else {
        "every INSERT, UPDATE and DELETE on it"
    };
    out.push(Finding {
        unused: None,
        rule: RuleId::BlockingIndex,
        message: if rel.kind == RelKind::MatView {
            format!(
                "{what} would block REFRESH of materialized view {} while the index is built",
                rel.display
            )
        } else {
            format!(
                "{what} would block writes to {} {} while the index is built",
                rel.kind.noun(),
                rel.display
            )
        },
        detail: format!(
            "{what} without CONCURRENTLY holds a SHARE lock on {} while it reads the whole {}: {blocked} waits \
             until the build finishes.",
            rel.described(),
            if partitioned { "partition tree" } else { rel.kind.noun() },
        ),
        safe_way,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::model::*;
    use crate::rules::testing::*;

    fn create_index(table: &str, concurrent: bool, only: bool, text: &str) -> Statement {
        stmt(
            "CREATE INDEX",
            text,
            Command::CreateIndex(CreateIndex {
                name: None,
                table: rel(table),
                only,
                concurrent,
                unique: false,
                if_not_exists: false,
            }),
        )
    }

    fn run(s: &Statement, f: &FakeFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        check(s, f, &mut out);
        out
    }

    #[test]
    fn blocks_plain_index_on_populated_table() {
        let f = FakeFacts::default().with("t", FakeFacts::table("t"));
        let got = run(&create_index("t", false, false, "CREATE INDEX t_a ON t (a);"), &f);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rule, RuleId::BlockingIndex);
        assert!(
            got[0]
                .detail
                .contains("SHARE lock on table public.t (about 1000 rows, 80 kB)"),
            "{}",
            got[0].detail
        );
        assert!(
            got[0].safe_way.contains("CREATE INDEX CONCURRENTLY t_a ON t (a);"),
            "{}",
            got[0].safe_way
        );
    }

    #[test]
    fn passes_if_not_exists_when_the_name_is_taken() {
        let mut idx = FakeFacts::table("t_a");
        idx.kind = RelKind::Index;
        let f = FakeFacts::default().with("t", FakeFacts::table("t")).with("t_a", idx);
        let named = |name: &str, if_not_exists: bool| {
            stmt(
                "CREATE INDEX",
                "",
                Command::CreateIndex(CreateIndex {
                    name: Some(name.into()),
                    table: rel("t"),
                    only: false,
                    concurrent: false,
                    unique: false,
                    if_not_exists,
                }),
            )
        };
        // Taken: PostgreSQL skips it. Free, or without IF NOT EXISTS: a build (or an error).
        assert!(run(&named("t_a", true), &f).is_empty());
        assert_eq!(run(&named("t_b", true), &f).len(), 1);
        assert_eq!(run(&named("t_a", false), &f).len(), 1);
    }

    #[test]
    fn passes_concurrent_new_temp_empty_and_unknown() {
        let mut new = FakeFacts::table("n");
        new.new_in_xact = true;
        let mut temp = FakeFacts::table("tmp");
        temp.temp = true;
        let mut empty = FakeFacts::table("e");
        empty.set_empty();
        let f = FakeFacts::default()
            .with("t", FakeFacts::table("t"))
            .with("n", new)
            .with("tmp", temp)
            .with("e", empty);
        assert!(
            run(
                &create_index("t", true, false, "CREATE INDEX CONCURRENTLY ON t (a)"),
                &f
            )
            .is_empty()
        );
        for t in ["n", "tmp", "e", "missing"] {
            assert!(
                run(&create_index(t, false, false, "CREATE INDEX ON x (a)"), &f).is_empty(),
                "{t}"
            );
        }
    }

    #[test]
    fn partitioned_parent_hint_and_on_only_exemption() {
        let mut p = FakeFacts::table("p");
        p.kind = RelKind::PartitionedTable;
        let f = FakeFacts::default().with("p", p);
        assert!(run(&create_index("p", false, true, "CREATE INDEX i ON ONLY p (a)"), &f).is_empty());
        let got = run(&create_index("p", false, false, "CREATE INDEX i ON p (a)"), &f);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].safe_way.contains("CREATE INDEX i ON ONLY p (a);"),
            "{}",
            got[0].safe_way
        );
        assert!(got[0].safe_way.contains("ATTACH PARTITION"));
    }

    #[test]
    fn materialized_view_blocks_refresh() {
        let mut mv = FakeFacts::table("mv");
        mv.kind = RelKind::MatView;
        let f = FakeFacts::default().with("mv", mv);
        let got = run(&create_index("mv", false, false, "CREATE UNIQUE INDEX ON mv (a)"), &f);
        assert!(got[0].message.contains("REFRESH of materialized view public.mv"));
        assert!(got[0].detail.contains("REFRESH MATERIALIZED VIEW"));
    }
}
