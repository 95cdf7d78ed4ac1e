//! Which table locks a statement requests, from the model alone (PostgreSQL's lock levels per
//! command, `AlterTableGetLockLevel` for ALTER TABLE subcommands).

use crate::facts::{Facts, Rel, Stored};
use crate::model::*;
use crate::server::Server;

/// What a lock is taken on: a relation named by the statement, or the table of a named index.
#[derive(Debug, Clone, PartialEq)]
pub enum LockTarget {
    Rel(RelRef),
    TableOfIndex(RelRef),
}

impl LockTarget {
    /// The relation the lock is taken on, when the name resolves.
    pub fn resolve(&self, facts: &dyn Facts) -> Option<Rel> {
        match self {
            LockTarget::Rel(r) => facts.relation(r),
            LockTarget::TableOfIndex(i) => facts.index_table(i),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LockNeed {
    pub target: LockTarget,
    pub mode: LockMode,
}

fn need(r: &RelRef, mode: LockMode) -> LockNeed {
    LockNeed {
        target: LockTarget::Rel(r.clone()),
        mode,
    }
}

/// The table locks `stmt` will request on `server`.
pub fn lock_needs(stmt: &Statement, server: Server) -> Vec<LockNeed> {
    use LockMode::*;
    match &stmt.command {
        Command::CreateIndex(ci) => vec![need(
            &ci.table,
            if ci.concurrent { ShareUpdateExclusive } else { Share },
        )],
        Command::Drop(d) => match d.kind {
            ObjectKind::Index => {
                let mode = if d.concurrent {
                    ShareUpdateExclusive
                } else {
                    AccessExclusive
                };
                d.objects
                    .iter()
                    .map(|i| LockNeed {
                        target: LockTarget::TableOfIndex(i.clone()),
                        mode,
                    })
                    .collect()
            }
            ObjectKind::Table
            | ObjectKind::View
            | ObjectKind::MatView
            | ObjectKind::ForeignTable
            | ObjectKind::Trigger => d.objects.iter().map(|o| need(o, AccessExclusive)).collect(),
            _ => vec![],
        },
        Command::AlterTable(at) => {
            let mut out: Vec<LockNeed> = Vec::new();
            let mut table_mode: Option<LockMode> = None;
            for cmd in &at.cmds {
                let (mode, others) = alter_cmd_locks(cmd, server);
                table_mode = table_mode.max(Some(mode));
                out.extend(others);
            }
            if at.kind == ObjectKind::Index {
                return out;
            }
            if let Some(mode) = table_mode {
                out.insert(0, need(&at.table, mode));
            }
            out
        }
        Command::Rename(r) => match r.what {
            ObjectKind::Table
            | ObjectKind::View
            | ObjectKind::MatView
            | ObjectKind::Column
            | ObjectKind::ForeignTable => {
                vec![need(&r.target, AccessExclusive)]
            }
            _ => vec![],
        },
        Command::RefreshMatView(r) => vec![need(&r.target, if r.concurrent { Exclusive } else { AccessExclusive })],
        Command::CreateRelation {
            references,
            partition_of,
            ..
        } => {
            let mut out: Vec<LockNeed> = references.iter().map(|r| need(r, ShareRowExclusive)).collect();
            // PARTITION OF: the parent and its default partition, ACCESS EXCLUSIVE.
            if let Some(p) = partition_of {
                out.push(need(&p.parent, AccessExclusive));
                if let Some(d) = p.scans.as_ref().and_then(|s| s.default.as_ref()) {
                    out.push(need(&d.partition, AccessExclusive));
                }
            }
            out
        }
        Command::CreateTrigger { table } => vec![need(table, ShareRowExclusive)],
        // REINDEX locks the table SHARE (an index: its table SHARE, itself ACCESS EXCLUSIVE);
        // CONCURRENTLY, SHARE UPDATE EXCLUSIVE.
        Command::Reindex(r) => {
            let mode = if r.concurrent { ShareUpdateExclusive } else { Share };
            match &r.target {
                ReindexTarget::Index(i) => vec![LockNeed {
                    target: LockTarget::TableOfIndex(i.clone()),
                    mode,
                }],
                ReindexTarget::Table(t) => vec![need(t, mode)],
                ReindexTarget::Many { .. } => vec![],
            }
        }
        Command::Comment { .. } => vec![],
        // SHARE on every table with a column of the domain: the domain-scan rule names them.
        Command::AlterDomain { .. } | Command::Reaching { .. } | Command::Other => vec![],
        // Adding tables to a publication takes SHARE UPDATE EXCLUSIVE on them: reads and writes go on.
        Command::Publication(p) => p.tables.iter().map(|t| need(t, ShareUpdateExclusive)).collect(),
        // CLUSTER, VACUUM FULL and TRUNCATE: ACCESS EXCLUSIVE on each table; LOCK: its mode.
        Command::Rewrite(r) => r.tables.iter().map(|t| need(t, AccessExclusive)).collect(),
        Command::Truncate(t) => t.tables.iter().map(|(t, _)| need(t, AccessExclusive)).collect(),
        Command::Lock(l) => l.tables.iter().map(|t| need(t, l.mode)).collect(),
    }
}

/// Lock on the altered table, plus locks on other tables (referenced tables, partitions).
fn alter_cmd_locks(cmd: &AlterCmd, server: Server) -> (LockMode, Vec<LockNeed>) {
    use LockMode::*;
    let fk_refs = |constraints: &[Constraint]| -> Vec<LockNeed> {
        constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::ForeignKey)
            .filter_map(|c| c.references.as_ref().map(|r| need(r, ShareRowExclusive)))
            .collect()
    };
    match cmd {
        AlterCmd::AddConstraint(c) if c.kind == ConstraintKind::ForeignKey => {
            (ShareRowExclusive, fk_refs(std::slice::from_ref(c)))
        }
        AlterCmd::AddColumn(col) => (AccessExclusive, fk_refs(&col.constraints)),
        AlterCmd::ValidateConstraint { .. } => (ShareUpdateExclusive, vec![]),
        // The attached table and the parent's default partition: ACCESS EXCLUSIVE.
        AlterCmd::AttachPartition { partition, scans } => {
            let mut others = vec![need(partition, AccessExclusive)];
            if let Some(d) = scans.as_ref().and_then(|s| s.default.as_ref()) {
                others.push(need(&d.partition, AccessExclusive));
            }
            (ShareUpdateExclusive, others)
        }
        AlterCmd::DetachPartition {
            partition,
            concurrent,
            finalize,
        } => {
            if *concurrent || *finalize {
                (ShareUpdateExclusive, vec![])
            } else if server.detach_concurrently() {
                (AccessExclusive, vec![need(partition, AccessExclusive)])
            } else {
                // PostgreSQL 13 opens the partition with SHARE UPDATE EXCLUSIVE.
                (AccessExclusive, vec![need(partition, ShareUpdateExclusive)])
            }
        }
        AlterCmd::Other { lock, .. } => (*lock, vec![]),
        _ => (AccessExclusive, vec![]),
    }
}

/// Every relation the statement creates, alters or drops (not the tables it merely references).
fn targets(stmt: &Statement) -> Vec<LockTarget> {
    let rel = |r: &RelRef| LockTarget::Rel(r.clone());
    match &stmt.command {
        Command::CreateIndex(ci) => vec![rel(&ci.table)],
        Command::Drop(d) if d.kind == ObjectKind::Index => {
            d.objects.iter().map(|i| LockTarget::TableOfIndex(i.clone())).collect()
        }
        Command::Drop(d) => d.objects.iter().map(rel).collect(),
        Command::AlterTable(at) => vec![rel(&at.table)],
        Command::Rename(r) => vec![rel(&r.target)],
        Command::RefreshMatView(r) => vec![rel(&r.target)],
        Command::Comment { target, .. } => vec![rel(target)],
        Command::CreateTrigger { table } => vec![rel(table)],
        Command::Reindex(r) => match &r.target {
            ReindexTarget::Index(i) => vec![LockTarget::TableOfIndex(i.clone())],
            ReindexTarget::Table(t) => vec![rel(t)],
            ReindexTarget::Many { .. } => vec![],
        },
        Command::Publication(p) => p.tables.iter().map(rel).collect(),
        Command::Rewrite(r) => r.tables.iter().map(rel).collect(),
        Command::Truncate(t) => t.tables.iter().map(|(t, _)| rel(t)).collect(),
        Command::Lock(l) => l.tables.iter().map(rel).collect(),
        Command::CreateRelation { .. } | Command::AlterDomain { .. } | Command::Reaching { .. } | Command::Other => {
            vec![]
        }
    }
}

/// The oids of every relation the statement alters, drops or locks, or `None` when one of them
/// does not resolve (a statement on something the guard cannot name is not covered by an
/// exemption that names tables).
pub fn acted_on(stmt: &Statement, facts: &dyn Facts) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for t in targets(stmt)
        .into_iter()
        .chain(lock_needs(stmt, facts.server()).into_iter().map(|n| n.target))
    {
        let oid = t.resolve(facts)?.oid;
        if !out.contains(&oid) {
            out.push(oid);
        }
    }
    Some(out)
}

/// The statement creates a temporary object, or every relation it alters or drops is
/// temporary: private to this session, not a change of the database's schema. (PostgreSQL lets
/// a temporary table reference only temporary tables, so such a statement locks nothing shared.)
pub fn only_temporary(stmt: &Statement, facts: &dyn Facts) -> bool {
    if let Command::CreateRelation { temp, .. } = &stmt.command {
        return *temp;
    }
    let targets = targets(stmt);
    !targets.is_empty() && targets.iter().all(|t| t.resolve(facts).is_some_and(|r| r.temp))
}

/// The table the statement acts on first (for an index, its table), when it resolves.
pub fn main_table(stmt: &Statement, facts: &dyn Facts) -> Option<Rel> {
    lock_needs(stmt, facts.server())
        .into_iter()
        .find_map(|n| n.target.resolve(facts))
}

/// The strongest lock above SHARE UPDATE EXCLUSIVE that `stmt` requests on an existing
/// relation (one other sessions use), with that relation: such a request waits behind running
/// queries and makes every later query on the table queue behind it.
pub fn strong_lock_on_existing(stmt: &Statement, facts: &dyn Facts) -> Option<(LockMode, Rel)> {
    let mut best: Option<(LockMode, Rel)> = None;
    for n in lock_needs(stmt, facts.server()) {
        if n.mode <= LockMode::ShareUpdateExclusive || best.as_ref().is_some_and(|(m, _)| *m >= n.mode) {
            continue;
        }
        if let Some(rel) = n.target.resolve(facts).filter(Rel::existing) {
            best = Some((n.mode, rel));
        }
    }
    best
}

/// Every lock above SHARE UPDATE EXCLUSIVE that `stmt` requests on a table or materialized view
/// other sessions use: the locks `schema-and-data` is about, held until the transaction
/// commits. Resolved names only: whether each table holds data is asked by [`strongest_populated`]
/// where it matters, off the path of every DDL statement.
pub fn strong_table_locks(stmt: &Statement, facts: &dyn Facts) -> Vec<(LockMode, Rel)> {
    use crate::facts::RelKind;
    lock_needs(stmt, facts.server())
        .into_iter()
        .filter(|n| n.mode > LockMode::ShareUpdateExclusive)
        .filter_map(|n| Some((n.mode, n.target.resolve(facts)?)))
        .filter(|(_, r)| {
            r.existing() && matches!(r.kind, RelKind::Table | RelKind::PartitionedTable | RelKind::MatView)
        })
        .collect()
}

/// The strongest of `locks` on a relation that holds data (the first among equals).
pub fn strongest_populated(locks: &[(LockMode, Rel)], facts: &dyn Facts) -> Option<(LockMode, Stored)> {
    let mut best: Option<(LockMode, Stored)> = None;
    for (mode, rel) in locks {
        if best.as_ref().is_some_and(|(m, _)| m >= mode) {
            continue;
        }
        let rel = facts.with_storage(rel.clone());
        if rel.has_data() {
            best = Some((*mode, rel));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeFacts;
    use crate::rules::testing::*;

    fn other(lock: LockMode) -> AlterCmd {
        AlterCmd::Other { lock }
    }

    #[test]
    fn alter_table_takes_the_strongest_subcommand_lock() {
        let s = stmt(
            "ALTER TABLE",
            "",
            alter(
                "t",
                vec![
                    other(LockMode::ShareUpdateExclusive),
                    other(LockMode::ShareRowExclusive),
                ],
            ),
        );
        assert_eq!(
            lock_needs(&s, Server::of(15)),
            vec![need(&rel("t"), LockMode::ShareRowExclusive)]
        );
        let s = stmt(
            "ALTER TABLE",
            "",
            alter("t", vec![AlterCmd::ValidateConstraint { name: "c".into() }]),
        );
        assert_eq!(lock_needs(&s, Server::of(15))[0].mode, LockMode::ShareUpdateExclusive);
    }

    #[test]
    fn foreign_keys_lock_the_referenced_table() {
        let fk = Constraint {
            kind: ConstraintKind::ForeignKey,
            name: None,
            not_valid: true,
            using_index: None,
            columns: vec!["a".into()],
            references: Some(rel("parent")),
        };
        let s = stmt("ALTER TABLE", "", alter("child", vec![AlterCmd::AddConstraint(fk)]));
        assert_eq!(
            lock_needs(&s, Server::of(15)),
            vec![
                need(&rel("child"), LockMode::ShareRowExclusive),
                need(&rel("parent"), LockMode::ShareRowExclusive)
            ]
        );
    }

    #[test]
    fn strong_lock_ignores_new_tables_and_weak_locks() {
        let mut n = FakeFacts::table("n");
        n.new_in_xact = true;
        let f = FakeFacts::default().with("t", FakeFacts::table("t")).with("n", n);
        let weak = stmt(
            "ALTER TABLE",
            "",
            alter("t", vec![other(LockMode::ShareUpdateExclusive)]),
        );
        assert!(strong_lock_on_existing(&weak, &f).is_none());
        let on_new = stmt("ALTER TABLE", "", alter("n", vec![other(LockMode::AccessExclusive)]));
        assert!(strong_lock_on_existing(&on_new, &f).is_none());
        let strong = stmt("ALTER TABLE", "", alter("t", vec![other(LockMode::AccessExclusive)]));
        let (mode, r) = strong_lock_on_existing(&strong, &f).unwrap();
        assert_eq!((mode, r.display.as_str()), (LockMode::AccessExclusive, "public.t"));
    }

    #[test]
    fn only_temporary_needs_every_target_temporary() {
        let mut tmp = FakeFacts::table("tmp");
        tmp.temp = true;
        let mut tmp_seq = FakeFacts::table("tmp_seq");
        tmp_seq.temp = true;
        tmp_seq.kind = crate::facts::RelKind::Sequence;
        let f = FakeFacts::default()
            .with("t", FakeFacts::table("t"))
            .with("tmp", tmp)
            .with("tmp_seq", tmp_seq)
            .with_index("tmp_idx", "tmp")
            .with_index("t_idx", "t");
        let drop = |kind, names: &[&str]| {
            stmt(
                "DROP",
                "",
                Command::Drop(Drop {
                    kind,
                    objects: names.iter().map(|n| rel(n)).collect(),
                    concurrent: false,
                    cascade: false,
                }),
            )
        };
        let index_on = |t: &str| {
            stmt(
                "CREATE INDEX",
                "",
                Command::CreateIndex(CreateIndex {
                    name: None,
                    table: rel(t),
                    only: false,
                    concurrent: false,
                    unique: false,
                    if_not_exists: false,
                }),
            )
        };
        assert!(only_temporary(&drop(ObjectKind::Table, &["tmp"]), &f));
        assert!(
            !only_temporary(&drop(ObjectKind::Table, &["tmp", "t"]), &f),
            "one permanent table"
        );
        assert!(
            !only_temporary(&drop(ObjectKind::Table, &["missing"]), &f),
            "unknown: not temporary"
        );
        assert!(only_temporary(&drop(ObjectKind::Sequence, &["tmp_seq"]), &f));
        assert!(only_temporary(&drop(ObjectKind::Index, &["tmp_idx"]), &f));
        assert!(!only_temporary(&drop(ObjectKind::Index, &["t_idx"]), &f));
        assert!(only_temporary(&index_on("tmp"), &f));
        assert!(!only_temporary(&index_on("t"), &f));
        let create = |temp| {
            stmt(
                "CREATE TABLE",
                "",
                Command::CreateRelation {
                    name: Some(rel("x")),
                    references: vec![],
                    temp,
                    partition_of: None,
                },
            )
        };
        assert!(only_temporary(&create(true), &f));
        assert!(!only_temporary(&create(false), &f));
        assert!(!only_temporary(&stmt("CREATE FUNCTION", "", Command::Other), &f));
    }
}
