//! `table-rewrite`: statements that copy the whole table under ACCESS EXCLUSIVE (`SET LOGGED`,
//! `SET UNLOGGED`, `SET ACCESS METHOD`, `SET TABLESPACE`, and from PostgreSQL 17 `SET EXPRESSION`
//! on a stored generated column), plus the backstop: the
//! `table_rewrite` event trigger asks [`backstop`] about any rewrite the start-time rules missed.

use super::{Finding, RuleId, populated_target};
use crate::facts::{Facts, Stored};
use crate::model::{AlterCmd, Command, Statement};

pub fn check(stmt: &Statement, facts: &dyn Facts, out: &mut Vec<Finding>) {
    let Command::AlterTable(at) = &stmt.command else { return };
    for cmd in &at.cmds {
        let what = match cmd {
            AlterCmd::SetLogged => "SET LOGGED",
            AlterCmd::SetUnlogged => "SET UNLOGGED",
            AlterCmd::SetAccessMethod { .. } => "SET ACCESS METHOD",
            AlterCmd::SetTablespace { .. } => "SET TABLESPACE",
            // A stored generated column is recomputed and rewritten for every row; a virtual one
            // (PostgreSQL 18) is only redefined.
            AlterCmd::SetExpression { column } => {
                let Some(rel) = populated_target(&at.table, facts) else {
                    return;
                };
                if facts.column(&rel, column).and_then(|c| c.generated) == Some('s') {
                    out.push(finding(&rel, "SET EXPRESSION on a stored generated column", None));
                }
                continue;
            }
            _ => continue,
        };
        let Some(rel) = populated_target(&at.table, facts) else {
            return;
        };
        out.push(finding(&rel, what, None));
    }
}

/// PostgreSQL's `AT_REWRITE_*` reason bits, in words.
pub fn rewrite_reasons(bits: u32) -> String {
    let mut r = Vec::new();
    if bits & 0x1 != 0 {
        r.push("a persistence change (SET LOGGED / UNLOGGED)");
    }
    if bits & 0x2 != 0 {
        r.push("a new column's default, identity or generated value");
    }
    if bits & 0x4 != 0 {
        r.push("a column type change");
    }
    if bits & 0x8 != 0 {
        r.push("an access method change");
    }
    if r.is_empty() {
        return format!("reason code {bits}");
    }
    r.join(", ")
}

/// The `table_rewrite` backstop: a rewrite of an existing table with data that no start-time
/// rule blocked or allowed.
pub fn backstop(rel: &Stored, reason_bits: u32, tag: &str) -> Option<Finding> {
    (rel.existing() && rel.has_data()).then(|| finding(rel, tag, Some(reason_bits)))
}

fn finding(rel: &Stored, what: &str, reason_bits: Option<u32>) -> Finding {
    let t = &rel.display;
    let copies = if what == "SET TABLESPACE" {
        "copies every page of"
    } else {
        "rewrites"
    };
    let because = reason_bits
        .map(|b| format!(" (because of {})", rewrite_reasons(b)))
        .unwrap_or_default();
    Finding {
        unused: None,
        rule: RuleId::TableRewrite,
        message: format!(
            "{what} {copies} the whole {} {t}{because} under an ACCESS EXCLUSIVE lock",
            rel.kind.noun()
        ),
        detail: format!(
            "PostgreSQL writes a new copy of {} and rebuilds its indexes; every read and write of the table waits \
             until it is done.",
            rel.described()
        ),
        safe_way: "Avoid the rewrite on a live table: build a new table with the wanted definition, copy the rows in \
                   batches while a trigger mirrors changes, and swap the tables in one short transaction (tools such \
                   as pg_repack do this); otherwise run it in a maintenance window."
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::rules::testing::*;

    #[test]
    fn blocks_persistence_access_method_and_tablespace_changes() {
        let f = FakeFacts::default().with("t", FakeFacts::table("t"));
        let mut out = Vec::new();
        let cmds = vec![AlterCmd::SetUnlogged, AlterCmd::SetTablespace { name: "fast".into() }];
        check(&stmt("ALTER TABLE", "", alter("t", cmds)), &f, &mut out);
        assert_eq!(out.len(), 2);
        assert!(
            out[0]
                .message
                .starts_with("SET UNLOGGED rewrites the whole table public.t")
        );
        assert!(out[1].message.starts_with("SET TABLESPACE copies every page of"));
    }

    #[test]
    fn backstop_names_the_reason_and_spares_new_or_empty_tables() {
        let t = FakeFacts::table("t");
        let f = backstop(&t.clone().stored(), 0x4, "ALTER TABLE").unwrap();
        assert!(f.message.contains("(because of a column type change)"), "{}", f.message);
        let mut empty = t.clone();
        empty.set_empty();
        assert!(backstop(&empty.stored(), 0x2, "ALTER TABLE").is_none());
        let mut new = t;
        new.new_in_xact = true;
        assert!(backstop(&new.stored(), 0x2, "ALTER TABLE").is_none());
        assert_eq!(
            rewrite_reasons(0x9),
            "a persistence change (SET LOGGED / UNLOGGED), an access method change"
        );
    }

    #[test]
    fn set_expression_rewrites_stored_generated_columns_only() {
        use crate::facts::Column;
        let t = FakeFacts::table("t");
        let col = |name: &str, generated| Column {
            name: name.into(),
            not_null: false,
            not_null_proven_by: None,
            type_display: "integer".into(),
            generated,
        };
        let f = FakeFacts::default()
            .with("t", t.clone())
            .with_column(&t, col("stored", Some('s')))
            .with_column(&t, col("virt", Some('v')));
        let set = |c: &str| {
            crate::rules::testing::stmt(
                "ALTER TABLE",
                "",
                crate::rules::testing::alter("t", vec![AlterCmd::SetExpression { column: c.into() }]),
            )
        };
        let mut out = Vec::new();
        check(&set("stored"), &f, &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            out[0]
                .message
                .starts_with("SET EXPRESSION on a stored generated column rewrites"),
            "{}",
            out[0].message
        );
        out.clear();
        check(&set("virt"), &f, &mut out);
        assert!(out.is_empty());
    }
}
