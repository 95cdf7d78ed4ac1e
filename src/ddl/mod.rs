//! Parse tree → [`crate::model`]. The only module that walks `pg_sys` parse nodes.
//!
//! It works on raw (untransformed) grammar output, which is what `ddl_command_start` event
//! triggers and `raw_parser` both hand over.

pub mod expr;
pub mod partition;
pub mod script;
pub mod text;

use crate::model::*;
use core::ffi::{CStr, c_char};
use pgrx::{PgList, is_a, pg_sys};

/// Convert one utility statement. Statements the guard has no rule for become `Command::Other`.
/// The statement's text is left to the caller (`ddl::text`), which needs it only for commands
/// a rule looks at.
///
/// # Safety
/// `node` must be null or point to a valid raw parse tree node.
pub unsafe fn convert(node: *mut pg_sys::Node, tag: &str) -> Statement {
    // SAFETY: the caller guarantees `node` is a valid parse tree; each cast below is guarded by
    // the node tag check that precedes it.
    let command = unsafe { convert_command(node) };
    Statement {
        tag: tag.to_owned(),
        text: None,
        command,
    }
}

unsafe fn convert_command(node: *mut pg_sys::Node) -> Command {
    use pg_sys::NodeTag as T;
    if node.is_null() {
        return Command::Other;
    }
    unsafe {
        match (*node).type_ {
            T::T_IndexStmt => {
                let s = &*(node as *const pg_sys::IndexStmt);
                let Some(table) = relref(s.relation) else {
                    return Command::Other;
                };
                Command::CreateIndex(CreateIndex {
                    name: cstr(s.idxname),
                    only: !(*s.relation).inh,
                    table,
                    concurrent: s.concurrent,
                    unique: s.unique,
                    if_not_exists: s.if_not_exists,
                })
            }
            T::T_DropOwnedStmt => {
                let s = &*(node as *const pg_sys::DropOwnedStmt);
                let roles = role_oids(s.roles);
                Command::Reaching {
                    what: "DROP OWNED BY".to_owned(),
                    reach: Reach::OwnedBy(roles),
                }
            }
            T::T_AlterTableMoveAllStmt => {
                let s = &*(node as *const pg_sys::AlterTableMoveAllStmt);
                let kind = object_kind(s.objtype);
                Command::Reaching {
                    what: format!(
                        "ALTER {} ALL IN TABLESPACE … SET TABLESPACE",
                        match kind {
                            ObjectKind::Index => "INDEX",
                            ObjectKind::MatView => "MATERIALIZED VIEW",
                            _ => "TABLE",
                        }
                    ),
                    reach: Reach::Tablespace {
                        from: cstr(s.orig_tablespacename).unwrap_or_default(),
                        to: cstr(s.new_tablespacename).unwrap_or_default(),
                        kind,
                        roles: role_oids(s.roles),
                    },
                }
            }
            T::T_DropStmt => {
                let s = &*(node as *const pg_sys::DropStmt);
                if let Some(reaching) = reaching_drop(s) {
                    return reaching;
                }
                let kind = object_kind(s.removeType);
                if kind == ObjectKind::Other {
                    return Command::Other;
                }
                let names = PgList::<pg_sys::List>::from_pg(s.objects);
                let objects = if kind == ObjectKind::Trigger {
                    // [schema.]table.trigger: keep the table the trigger is on.
                    names
                        .iter_ptr()
                        .filter_map(|n| {
                            let mut parts = string_list(n);
                            parts.pop();
                            relref_from_parts(&parts)
                        })
                        .collect()
                } else {
                    names.iter_ptr().filter_map(|n| relref_from_names(n)).collect()
                };
                Command::Drop(Drop {
                    kind,
                    objects,
                    concurrent: s.concurrent,
                    cascade: s.behavior == pg_sys::DropBehavior::DROP_CASCADE,
                })
            }
            T::T_AlterTableStmt => {
                let s = &*(node as *const pg_sys::AlterTableStmt);
                let Some(table) = relref(s.relation) else {
                    return Command::Other;
                };
                let cmds = PgList::<pg_sys::AlterTableCmd>::from_pg(s.cmds)
                    .iter_ptr()
                    .map(|c| alter_cmd(&*c, &table))
                    .collect();
                Command::AlterTable(AlterTable {
                    kind: object_kind(crate::server::compat::alter_table_object_type(s)),
                    table,
                    cmds,
                })
            }
            T::T_RenameStmt => {
                let s = &*(node as *const pg_sys::RenameStmt);
                // ALTER TYPE t RENAME ATTRIBUTE a TO b CASCADE renames the column of every table
                // typed by t (without CASCADE PostgreSQL refuses when there is one).
                if s.renameType == pg_sys::ObjectType::OBJECT_ATTRIBUTE {
                    let (Some(ty), Some(attribute)) = (relref(s.relation), cstr(s.subname)) else {
                        return Command::Other;
                    };
                    if s.behavior != pg_sys::DropBehavior::DROP_CASCADE {
                        return Command::Other;
                    }
                    let mut type_name: Vec<String> = ty.schema.into_iter().collect();
                    type_name.push(ty.name);
                    return Command::Reaching {
                        what: format!(
                            "ALTER TYPE {} RENAME ATTRIBUTE {} … CASCADE",
                            crate::sqltext::quote_qualified(&type_name),
                            crate::sqltext::quote_ident(&attribute)
                        ),
                        reach: Reach::TypedBy { type_name, attribute },
                    };
                }
                let what = if s.renameType == pg_sys::ObjectType::OBJECT_COLUMN {
                    ObjectKind::Column
                } else {
                    object_kind(s.renameType)
                };
                let (Some(target), Some(new_name)) = (relref(s.relation), cstr(s.newname)) else {
                    return Command::Other;
                };
                if what == ObjectKind::Other {
                    return Command::Other;
                }
                Command::Rename(Rename {
                    what,
                    target,
                    column: cstr(s.subname),
                    new_name,
                    new_schema: None,
                })
            }
            T::T_AlterObjectSchemaStmt => {
                let s = &*(node as *const pg_sys::AlterObjectSchemaStmt);
                let what = object_kind(s.objectType);
                if !matches!(
                    what,
                    ObjectKind::Table
                        | ObjectKind::View
                        | ObjectKind::MatView
                        | ObjectKind::ForeignTable
                        | ObjectKind::Sequence
                ) {
                    return Command::Other;
                }
                let (Some(target), Some(new_schema)) = (relref(s.relation), cstr(s.newschema)) else {
                    return Command::Other;
                };
                Command::Rename(Rename {
                    what,
                    new_name: target.name.clone(),
                    target,
                    column: None,
                    new_schema: Some(new_schema),
                })
            }
            T::T_RefreshMatViewStmt => {
                let s = &*(node as *const pg_sys::RefreshMatViewStmt);
                let Some(target) = relref(s.relation) else {
                    return Command::Other;
                };
                Command::RefreshMatView(RefreshMatView {
                    target,
                    concurrent: s.concurrent,
                    with_data: !s.skipData,
                })
            }
            T::T_CreateStmt => {
                let s = &*(node as *const pg_sys::CreateStmt);
                let mut references = Vec::new();
                for elt in PgList::<pg_sys::Node>::from_pg(s.tableElts).iter_ptr() {
                    let constraints = if is_a(elt, T::T_ColumnDef) {
                        (*(elt as *const pg_sys::ColumnDef)).constraints
                    } else if is_a(elt, T::T_Constraint) {
                        references.extend(relref((*(elt as *const pg_sys::Constraint)).pktable));
                        std::ptr::null_mut()
                    } else {
                        std::ptr::null_mut()
                    };
                    for c in PgList::<pg_sys::Constraint>::from_pg(constraints).iter_ptr() {
                        references.extend(relref((*c).pktable));
                    }
                }
                // PARTITION OF: exactly one parent, and a bound.
                // (IF NOT EXISTS of a table that exists: PostgreSQL skips it, nothing is scanned.)
                let skipped =
                    s.if_not_exists && relref(s.relation).is_some_and(|r| crate::catalog::resolve(&r).is_some());
                let partition_of = if s.partbound.is_null() || skipped {
                    None
                } else {
                    PgList::<pg_sys::RangeVar>::from_pg(s.inhRelations)
                        .get_ptr(0)
                        .and_then(|rv| relref(rv))
                        .map(|parent| PartitionOf {
                            scans: partition::bound_scans(&parent, None, s.partbound),
                            parent,
                        })
                };
                Command::CreateRelation {
                    name: relref(s.relation),
                    references,
                    temp: is_temp(s.relation),
                    partition_of,
                }
            }
            T::T_CreateTableAsStmt => {
                let s = &*(node as *const pg_sys::CreateTableAsStmt);
                let rel = if s.into.is_null() {
                    std::ptr::null_mut()
                } else {
                    (*s.into).rel
                };
                Command::CreateRelation {
                    name: relref(rel),
                    references: vec![],
                    temp: is_temp(rel),
                    partition_of: None,
                }
            }
            T::T_ViewStmt => {
                let s = &*(node as *const pg_sys::ViewStmt);
                Command::CreateRelation {
                    name: relref(s.view),
                    references: vec![],
                    temp: is_temp(s.view),
                    partition_of: None,
                }
            }
            T::T_CreateSeqStmt => {
                let s = &*(node as *const pg_sys::CreateSeqStmt);
                Command::CreateRelation {
                    name: relref(s.sequence),
                    references: vec![],
                    temp: is_temp(s.sequence),
                    partition_of: None,
                }
            }
            T::T_CommentStmt => {
                let s = &*(node as *const pg_sys::CommentStmt);
                let kind = object_kind(s.objtype);
                if kind == ObjectKind::Other || kind == ObjectKind::Trigger || !is_a(s.object, T::T_List) {
                    return Command::Other;
                }
                let mut names = string_list(s.object as *mut pg_sys::List);
                let column = if kind == ObjectKind::Column { names.pop() } else { None };
                match relref_from_parts(&names) {
                    Some(target) => Command::Comment { target, column },
                    None => Command::Other,
                }
            }
            T::T_ReindexStmt => reindex(&*(node as *const pg_sys::ReindexStmt)),
            T::T_ClusterStmt => {
                let s = &*(node as *const pg_sys::ClusterStmt);
                Command::Rewrite(Rewrite {
                    what: "CLUSTER",
                    tables: relref(s.relation).into_iter().collect(),
                })
            }
            T::T_VacuumStmt => {
                let s = &*(node as *const pg_sys::VacuumStmt);
                if !s.is_vacuumcmd || !vacuum_full(s) {
                    return Command::Other;
                }
                let tables = PgList::<pg_sys::VacuumRelation>::from_pg(s.rels)
                    .iter_ptr()
                    .filter_map(|v| relref((*v).relation))
                    .collect();
                Command::Rewrite(Rewrite {
                    what: "VACUUM FULL",
                    tables,
                })
            }
            T::T_TruncateStmt => {
                let s = &*(node as *const pg_sys::TruncateStmt);
                let tables = PgList::<pg_sys::RangeVar>::from_pg(s.relations)
                    .iter_ptr()
                    .filter_map(|rv| relref(rv).map(|r| (r, (*rv).inh)))
                    .collect();
                Command::Truncate(Truncate {
                    tables,
                    cascade: s.behavior == pg_sys::DropBehavior::DROP_CASCADE,
                })
            }
            T::T_LockStmt => {
                let s = &*(node as *const pg_sys::LockStmt);
                let Some(mode) = lock_mode(s.mode) else {
                    return Command::Other;
                };
                Command::Lock(LockTables {
                    tables: PgList::<pg_sys::RangeVar>::from_pg(s.relations)
                        .iter_ptr()
                        .filter_map(|rv| relref(rv))
                        .collect(),
                    mode,
                    nowait: s.nowait,
                })
            }
            T::T_AlterDomainStmt => {
                let s = &*(node as *const pg_sys::AlterDomainStmt);
                let scan = match s.subtype as u8 {
                    b'C' if is_a(s.def, T::T_Constraint) => {
                        let c = &*(s.def as *const pg_sys::Constraint);
                        match c.contype {
                            _ if c.skip_validation => None,
                            pg_sys::ConstrType::CONSTR_CHECK => Some("ADD CONSTRAINT … CHECK".to_owned()),
                            pg_sys::ConstrType::CONSTR_NOTNULL => Some("ADD CONSTRAINT … NOT NULL".to_owned()),
                            _ => None,
                        }
                    }
                    b'O' => Some("SET NOT NULL".to_owned()),
                    b'V' => Some(format!(
                        "VALIDATE CONSTRAINT {}",
                        crate::sqltext::quote_ident(&cstr(s.name).unwrap_or_default())
                    )),
                    _ => None,
                };
                Command::AlterDomain {
                    domain: string_list(s.typeName),
                    scan,
                }
            }
            T::T_CreatePublicationStmt | T::T_AlterPublicationStmt => publication(node),
            T::T_CreateTrigStmt => {
                let s = &*(node as *const pg_sys::CreateTrigStmt);
                match relref(s.relation) {
                    Some(table) => Command::CreateTrigger { table },
                    None => Command::Other,
                }
            }
            _ => Command::Other,
        }
    }
}

/// `DROP SCHEMA … CASCADE`, `DROP TYPE/DOMAIN … CASCADE`: what they reach beyond their objects.
unsafe fn reaching_drop(s: &pg_sys::DropStmt) -> Option<Command> {
    use pg_sys::ObjectType as OT;
    if s.behavior != pg_sys::DropBehavior::DROP_CASCADE {
        return None;
    }
    unsafe {
        let objects = PgList::<pg_sys::Node>::from_pg(s.objects);
        match s.removeType {
            OT::OBJECT_SCHEMA => {
                let names: Vec<String> = objects
                    .iter_ptr()
                    .filter_map(|n| crate::server::compat::string_value(n))
                    .filter_map(|p| cstr(p))
                    .collect();
                Some(Command::Reaching {
                    what: "DROP SCHEMA … CASCADE".to_owned(),
                    reach: Reach::Schemas(names),
                })
            }
            OT::OBJECT_TYPE | OT::OBJECT_DOMAIN => {
                let names: Vec<Vec<String>> = objects
                    .iter_ptr()
                    .filter(|n| is_a(*n, pg_sys::NodeTag::T_TypeName))
                    .map(|n| string_list((*(n as *const pg_sys::TypeName)).names))
                    .collect();
                Some(Command::Reaching {
                    what: format!(
                        "DROP {} … CASCADE",
                        if s.removeType == OT::OBJECT_DOMAIN {
                            "DOMAIN"
                        } else {
                            "TYPE"
                        }
                    ),
                    reach: Reach::Types(names),
                })
            }
            _ => None,
        }
    }
}

/// The roles of a role list (`OWNED BY a, CURRENT_USER`), those that exist.
unsafe fn role_oids(list: *mut pg_sys::List) -> Vec<u32> {
    unsafe {
        PgList::<pg_sys::RoleSpec>::from_pg(list)
            .iter_ptr()
            .filter_map(|r| crate::catalog::try_catalog(|| pg_sys::get_rolespec_oid(r, true)))
            .filter(|o| *o != pg_sys::InvalidOid)
            .map(|o| o.to_u32())
            .collect()
    }
}

unsafe fn alter_cmd(cmd: &pg_sys::AlterTableCmd, parent: &RelRef) -> AlterCmd {
    use pg_sys::AlterTableType as AT;
    unsafe {
        let name = || cstr(cmd.name).unwrap_or_default();
        match cmd.subtype {
            AT::AT_AddColumn | AT::AT_AddColumnToView if is_a(cmd.def, pg_sys::NodeTag::T_ColumnDef) => {
                let mut def = column_def(&*(cmd.def as *const pg_sys::ColumnDef));
                def.if_not_exists = cmd.missing_ok;
                AlterCmd::AddColumn(def)
            }
            AT::AT_DropColumn => AlterCmd::DropColumn { column: name() },
            AT::AT_SetNotNull => AlterCmd::SetNotNull { column: name() },
            AT::AT_AlterColumnType if is_a(cmd.def, pg_sys::NodeTag::T_ColumnDef) => {
                let def = &*(cmd.def as *const pg_sys::ColumnDef);
                let column = name();
                let using = if def.raw_default.is_null() || is_plain_column_ref(def.raw_default, &column) {
                    Using::Column
                } else {
                    Using::Expression
                };
                let collation = (!def.collClause.is_null()).then(|| string_list((*def.collClause).collname));
                AlterCmd::AlterType {
                    new_type: type_ref(def.typeName, TypeLookup::Full),
                    column,
                    using,
                    collation,
                }
            }
            AT::AT_AddConstraint if is_a(cmd.def, pg_sys::NodeTag::T_Constraint) => {
                AlterCmd::AddConstraint(constraint(&*(cmd.def as *const pg_sys::Constraint)))
            }
            AT::AT_ValidateConstraint => AlterCmd::ValidateConstraint { name: name() },
            AT::AT_SetLogged => AlterCmd::SetLogged,
            AT::AT_SetUnLogged => AlterCmd::SetUnlogged,
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            AT::AT_SetAccessMethod => AlterCmd::SetAccessMethod { name: name() },
            AT::AT_SetTableSpace => AlterCmd::SetTablespace { name: name() },
            AT::AT_AttachPartition | AT::AT_DetachPartition if is_a(cmd.def, pg_sys::NodeTag::T_PartitionCmd) => {
                partition_cmd(cmd, false, parent)
            }
            #[cfg(any(feature = "pg17", feature = "pg18"))]
            AT::AT_SetExpression => AlterCmd::SetExpression { column: name() },
            #[cfg(not(feature = "pg13"))]
            AT::AT_DetachPartitionFinalize if is_a(cmd.def, pg_sys::NodeTag::T_PartitionCmd) => {
                partition_cmd(cmd, true, parent)
            }
            other => AlterCmd::Other {
                lock: subcommand_lock(other, cmd),
            },
        }
    }
}

/// `VACUUM (FULL)`: the option given without a value, or with a true one.
unsafe fn vacuum_full(s: &pg_sys::VacuumStmt) -> bool {
    unsafe {
        PgList::<pg_sys::DefElem>::from_pg(s.options).iter_ptr().any(|d| {
            cstr((*d).defname).is_some_and(|n| n == "full") && ((*d).arg.is_null() || pg_sys::defGetBoolean(d))
        })
    }
}

/// `LockStmt.mode` (PostgreSQL's lock mode numbers, 1 to 8).
fn lock_mode(mode: core::ffi::c_int) -> Option<LockMode> {
    use LockMode::*;
    Some(match mode {
        1 => AccessShare,
        2 => RowShare,
        3 => RowExclusive,
        4 => ShareUpdateExclusive,
        5 => Share,
        6 => ShareRowExclusive,
        7 => Exclusive,
        8 => AccessExclusive,
        _ => return None,
    })
}

/// `REINDEX [ (CONCURRENTLY) ] INDEX | TABLE | SCHEMA | DATABASE | SYSTEM name [CONCURRENTLY]`
/// (event triggers fire for it from 17; on earlier versions the utility hook sees it).
unsafe fn reindex(s: &pg_sys::ReindexStmt) -> Command {
    use pg_sys::ReindexObjectType as K;
    unsafe {
        let concurrent = crate::server::compat::reindex_concurrent(s);
        let target = match s.kind {
            K::REINDEX_OBJECT_INDEX => relref(s.relation).map(ReindexTarget::Index),
            K::REINDEX_OBJECT_TABLE => relref(s.relation).map(ReindexTarget::Table),
            K::REINDEX_OBJECT_SCHEMA => Some(ReindexTarget::Many {
                what: "SCHEMA",
                name: cstr(s.name).unwrap_or_default(),
            }),
            K::REINDEX_OBJECT_DATABASE => Some(ReindexTarget::Many {
                what: "DATABASE",
                name: cstr(s.name).unwrap_or_default(),
            }),
            _ => Some(ReindexTarget::Many {
                what: "SYSTEM",
                name: cstr(s.name).unwrap_or_default(),
            }),
        };
        match target {
            Some(target) => Command::Reindex(Reindex { target, concurrent }),
            None => Command::Other,
        }
    }
}

/// ATTACH / DETACH PARTITION (with `finalize`: DETACH PARTITION … FINALIZE).
unsafe fn partition_cmd(cmd: &pg_sys::AlterTableCmd, finalize: bool, parent: &RelRef) -> AlterCmd {
    unsafe {
        let pc = &*(cmd.def as *const pg_sys::PartitionCmd);
        let partition = relref(pc.name).unwrap_or_else(|| RelRef::new(None, "?"));
        if cmd.subtype == pg_sys::AlterTableType::AT_AttachPartition {
            AlterCmd::AttachPartition {
                scans: partition::bound_scans(parent, Some(&partition), pc.bound),
                partition,
            }
        } else {
            AlterCmd::DetachPartition {
                partition,
                concurrent: crate::server::compat::partition_cmd_concurrent(pc),
                finalize,
            }
        }
    }
}

unsafe fn column_def(def: &pg_sys::ColumnDef) -> ColumnDef {
    use pg_sys::ConstrType as CT;
    let mut col = ColumnDef {
        name: unsafe { cstr(def.colname) }.unwrap_or_default(),
        type_name: unsafe { type_ref(def.typeName, TypeLookup::Display) },
        not_null: def.is_not_null,
        default: None,
        identity: def.identity != 0,
        generated_stored: None,
        generated_virtual: None,
        if_not_exists: false,
        constraints: Vec::new(),
    };
    if !def.raw_default.is_null() {
        col.default = Some(unsafe { expr::analyse(def.raw_default) });
    }
    for c in unsafe { PgList::<pg_sys::Constraint>::from_pg(def.constraints) }.iter_ptr() {
        // SAFETY: ColumnDef.constraints holds Constraint nodes only.
        let c = unsafe { &*c };
        match c.contype {
            CT::CONSTR_NOTNULL => col.not_null = true,
            CT::CONSTR_NULL => col.not_null = false,
            CT::CONSTR_DEFAULT => col.default = Some(unsafe { expr::analyse(c.raw_expr) }),
            CT::CONSTR_IDENTITY => col.identity = true,
            CT::CONSTR_GENERATED => {
                let e = Some(unsafe { expr::analyse(c.raw_expr) });
                if crate::server::compat::generated_virtual(c) {
                    col.generated_virtual = e;
                } else {
                    col.generated_stored = e;
                }
            }
            CT::CONSTR_PRIMARY => {
                col.not_null = true;
                col.constraints.push(unsafe { constraint(c) });
            }
            CT::CONSTR_CHECK | CT::CONSTR_UNIQUE | CT::CONSTR_EXCLUSION | CT::CONSTR_FOREIGN => {
                let mut con = unsafe { constraint(c) };
                if con.columns.is_empty() && con.kind != ConstraintKind::Check {
                    con.columns.push(col.name.clone());
                }
                col.constraints.push(con);
            }
            _ => {}
        }
    }
    col
}

unsafe fn constraint(c: &pg_sys::Constraint) -> Constraint {
    use pg_sys::ConstrType as CT;
    let kind = match c.contype {
        CT::CONSTR_CHECK => ConstraintKind::Check,
        CT::CONSTR_FOREIGN => ConstraintKind::ForeignKey,
        CT::CONSTR_UNIQUE => ConstraintKind::Unique,
        CT::CONSTR_PRIMARY => ConstraintKind::PrimaryKey,
        CT::CONSTR_EXCLUSION => ConstraintKind::Exclusion,
        CT::CONSTR_NOTNULL => ConstraintKind::NotNull,
        CT::CONSTR_NULL => ConstraintKind::Null,
        CT::CONSTR_DEFAULT => ConstraintKind::Default,
        CT::CONSTR_IDENTITY => ConstraintKind::Identity,
        CT::CONSTR_GENERATED => ConstraintKind::Generated,
        _ => ConstraintKind::Other,
    };
    let keys = if kind == ConstraintKind::ForeignKey {
        c.fk_attrs
    } else {
        c.keys
    };
    unsafe {
        Constraint {
            kind,
            name: cstr(c.conname),
            not_valid: c.skip_validation,
            using_index: cstr(c.indexname),
            columns: string_list(keys),
            references: relref(c.pktable),
        }
    }
}

/// `USING col` naming the altered column itself (possibly qualified by the table name).
unsafe fn is_plain_column_ref(node: *mut pg_sys::Node, column: &str) -> bool {
    if !unsafe { is_a(node, pg_sys::NodeTag::T_ColumnRef) } {
        return false;
    }
    // SAFETY: tag checked above.
    let fields = unsafe { string_list((*(node as *const pg_sys::ColumnRef)).fields) };
    fields.last().is_some_and(|f| f == column)
}

/// How much of a type name to resolve.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeLookup {
    /// Oid and typmod, as PostgreSQL will use them (`ALTER COLUMN … TYPE`, where a rule compares
    /// them with the column's current type). Computing a typmod runs the type's input function,
    /// which can raise an error, so this runs in a subtransaction.
    Full,
    /// Only a display name (`ADD COLUMN`): no typmod computation, no subtransaction, cheap.
    Display,
}

pub(crate) unsafe fn type_ref(tn: *mut pg_sys::TypeName, lookup: TypeLookup) -> TypeRef {
    if tn.is_null() {
        return TypeRef {
            display: "?".into(),
            resolved: None,
            serial: false,
            constrained_domain: None,
        };
    }
    unsafe {
        let names = string_list((*tn).names);
        let serial = names.len() == 1
            && !(*tn).pct_type
            && matches!(
                names[0].as_str(),
                "smallserial" | "serial2" | "serial" | "serial4" | "bigserial" | "serial8"
            );
        let written = cstr_owned(pg_sys::TypeNameToString(tn));
        if serial || (*tn).pct_type {
            return TypeRef {
                display: written,
                resolved: None,
                serial,
                constrained_domain: None,
            };
        }
        if lookup == TypeLookup::Display {
            let oid = pg_sys::LookupTypeNameOid(std::ptr::null_mut(), tn, true);
            if oid == pg_sys::InvalidOid {
                return TypeRef {
                    display: written,
                    resolved: None,
                    serial,
                    constrained_domain: None,
                };
            }
            let mut display = cstr_owned(pg_sys::format_type_be(oid));
            display.push_str(&typmod_text((*tn).typmods));
            let array = !(*tn).arrayBounds.is_null();
            if array && !display.ends_with("[]") {
                display.push_str("[]");
            }
            // A domain with constraints: PostgreSQL checks them for every existing row.
            let constrained_domain = (!array
                && pg_sys::get_typtype(oid) == pg_sys::TYPTYPE_DOMAIN as core::ffi::c_char
                && pg_sys::DomainHasConstraints(oid))
            .then(|| cstr_owned(pg_sys::format_type_be(pg_sys::getBaseType(oid))));
            return TypeRef {
                display,
                resolved: None,
                serial,
                constrained_domain,
            };
        }
        // A bad type modifier raises an ERROR inside the lookup; PostgreSQL reports it itself
        // when the statement runs, so here it only means "unresolved".
        let resolved = crate::catalog::try_catalog(|| {
            let mut typmod: i32 = -1;
            let tup = pg_sys::LookupTypeName(std::ptr::null_mut(), tn, &mut typmod, true);
            if tup.is_null() {
                return None;
            }
            let form = pg_sys::GETSTRUCT(tup) as *const pg_sys::FormData_pg_type;
            let oid = (*form).oid;
            pg_sys::ReleaseSysCache(tup);
            Some((oid, typmod))
        })
        .flatten();
        match resolved {
            Some((oid, typmod)) => TypeRef {
                display: cstr_owned(pg_sys::format_type_with_typemod(oid, typmod)),
                resolved: Some((oid.to_u32(), typmod)),
                serial,
                constrained_domain: None,
            },
            None => TypeRef {
                display: written,
                resolved: None,
                serial,
                constrained_domain: None,
            },
        }
    }
}

/// `(20)` or `(10,2)` from a type name's raw modifiers, when they are integer literals.
unsafe fn typmod_text(typmods: *mut pg_sys::List) -> String {
    let mut parts = Vec::new();
    for m in unsafe { PgList::<pg_sys::Node>::from_pg(typmods) }.iter_ptr() {
        // SAFETY: a list element of a parse tree.
        match unsafe { crate::server::compat::integer_constant(m) } {
            Some(v) => parts.push(v.to_string()),
            None => return String::new(),
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("({})", parts.join(","))
    }
}

fn object_kind(t: pg_sys::ObjectType::Type) -> ObjectKind {
    use pg_sys::ObjectType as OT;
    match t {
        OT::OBJECT_TABLE => ObjectKind::Table,
        OT::OBJECT_INDEX => ObjectKind::Index,
        OT::OBJECT_VIEW => ObjectKind::View,
        OT::OBJECT_MATVIEW => ObjectKind::MatView,
        OT::OBJECT_FOREIGN_TABLE => ObjectKind::ForeignTable,
        OT::OBJECT_SEQUENCE => ObjectKind::Sequence,
        OT::OBJECT_COLUMN => ObjectKind::Column,
        OT::OBJECT_TRIGGER => ObjectKind::Trigger,
        _ => ObjectKind::Other,
    }
}

/// The lock an ALTER TABLE subcommand no rule looks at takes (`AlterTableGetLockLevel`).
unsafe fn subcommand_lock(t: pg_sys::AlterTableType::Type, cmd: &pg_sys::AlterTableCmd) -> LockMode {
    use pg_sys::AlterTableType as AT;
    match t {
        AT::AT_SetStatistics | AT::AT_SetOptions | AT::AT_ResetOptions | AT::AT_ClusterOn | AT::AT_DropCluster => {
            LockMode::ShareUpdateExclusive
        }
        AT::AT_SetRelOptions | AT::AT_ResetRelOptions | AT::AT_ReplaceRelOptions
            if unsafe { reloptions_need_only_sue(cmd.def) } =>
        {
            LockMode::ShareUpdateExclusive
        }
        AT::AT_EnableTrig
        | AT::AT_EnableAlwaysTrig
        | AT::AT_EnableReplicaTrig
        | AT::AT_DisableTrig
        | AT::AT_EnableTrigAll
        | AT::AT_DisableTrigAll
        | AT::AT_EnableTrigUser
        | AT::AT_DisableTrigUser => LockMode::ShareRowExclusive,
        _ => LockMode::AccessExclusive,
    }
}

/// Whether every storage parameter in a SET/RESET list is one PostgreSQL changes under SHARE
/// UPDATE EXCLUSIVE (the vacuum, fill factor and parallelism settings) rather than ACCESS EXCLUSIVE.
unsafe fn reloptions_need_only_sue(options: *mut pg_sys::Node) -> bool {
    const SUE_OPTIONS: &[&str] = &[
        "fillfactor",
        "toast_tuple_target",
        "parallel_workers",
        "vacuum_index_cleanup",
        "vacuum_truncate",
    ];
    let list = options as *mut pg_sys::List;
    let elems = unsafe { PgList::<pg_sys::DefElem>::from_pg(list) };
    !elems.is_empty()
        && elems.iter_ptr().all(|d| {
            let name = unsafe { cstr((*d).defname) }.unwrap_or_default();
            name.starts_with("autovacuum_")
                || name == "log_autovacuum_min_duration"
                || SUE_OPTIONS.contains(&name.as_str())
        })
}

/// `CREATE TEMP …`, or a name in `pg_temp`.
unsafe fn is_temp(rv: *const pg_sys::RangeVar) -> bool {
    if rv.is_null() {
        return false;
    }
    unsafe {
        (*rv).relpersistence as u8 == pg_sys::RELPERSISTENCE_TEMP
            || cstr((*rv).schemaname).is_some_and(|s| s == "pg_temp" || s.starts_with("pg_temp_"))
    }
}

/// `RangeVar` → `RelRef` (the catalog name part, if any, is ignored).
///
/// # Safety
/// `rv` must be null or a valid RangeVar.
pub unsafe fn relref(rv: *const pg_sys::RangeVar) -> Option<RelRef> {
    if rv.is_null() {
        return None;
    }
    unsafe {
        Some(RelRef {
            schema: cstr((*rv).schemaname),
            name: cstr((*rv).relname)?,
        })
    }
}

/// A qualified name list (`List` of `String` nodes) → `RelRef`.
unsafe fn relref_from_names(names: *mut pg_sys::List) -> Option<RelRef> {
    relref_from_parts(&unsafe { string_list(names) })
}

fn relref_from_parts(parts: &[String]) -> Option<RelRef> {
    match parts {
        [name] => Some(RelRef {
            schema: None,
            name: name.clone(),
        }),
        [.., schema, name] => Some(RelRef {
            schema: Some(schema.clone()),
            name: name.clone(),
        }),
        [] => None,
    }
}

/// `CREATE PUBLICATION` / `ALTER PUBLICATION`: the tables it starts publishing and, when the
/// statement sets it, whether it publishes UPDATE or DELETE.
unsafe fn publication(node: *mut pg_sys::Node) -> Command {
    unsafe {
        let create = (*node).type_ == pg_sys::NodeTag::T_CreatePublicationStmt;
        let (name, options, all_tables) = if create {
            let s = &*(node as *const pg_sys::CreatePublicationStmt);
            (s.pubname, s.options, s.for_all_tables)
        } else {
            let s = &*(node as *const pg_sys::AlterPublicationStmt);
            (s.pubname, s.options, s.for_all_tables)
        };
        let (rels, schemas) = crate::server::compat::publication_tables(node);
        // publish = 'insert, update, delete, truncate' (all of them when not given).
        let mut publishes_changes = create.then_some(true);
        for o in PgList::<pg_sys::Node>::from_pg(options).iter_ptr() {
            if !is_a(o, pg_sys::NodeTag::T_DefElem) {
                continue;
            }
            let d = &*(o as *const pg_sys::DefElem);
            if cstr(d.defname).as_deref() != Some("publish") {
                continue;
            }
            if let Some(v) = crate::server::compat::string_value(d.arg).and_then(|p| cstr(p)) {
                publishes_changes = Some(
                    v.split(',')
                        .map(|a| a.trim().to_ascii_lowercase())
                        .any(|a| a == "update" || a == "delete"),
                );
            }
        }
        let (tables, filters) = rels
            .into_iter()
            .filter_map(|(r, filter, list)| relref(r).map(|t| (t, (filter, list))))
            .unzip();
        Command::Publication(crate::model::Publication {
            name: cstr(name).unwrap_or_default(),
            create,
            tables,
            filters,
            all_tables,
            schemas,
            publishes_changes,
        })
    }
}

/// The columns a raw expression (a publication's row filter) reads, into `out`; false when it
/// has a node this walk does not know (the caller then judges nothing).
///
/// # Safety
/// `node` must be null or a valid raw expression tree.
#[cfg_attr(any(feature = "pg13", feature = "pg14"), allow(dead_code))]
pub(crate) unsafe fn raw_columns(node: *mut pg_sys::Node, out: &mut Vec<String>) -> bool {
    use pg_sys::NodeTag as T;
    if node.is_null() {
        return true;
    }
    unsafe {
        match (*node).type_ {
            T::T_ColumnRef => {
                if let Some(c) = string_list((*(node as *const pg_sys::ColumnRef)).fields).pop()
                    && !out.contains(&c)
                {
                    out.push(c);
                }
                true
            }
            T::T_A_Const | T::T_ParamRef => true,
            T::T_A_Expr => {
                let e = &*(node as *const pg_sys::A_Expr);
                raw_columns(e.lexpr, out) && raw_columns(e.rexpr, out)
            }
            T::T_BoolExpr => raw_list((*(node as *const pg_sys::BoolExpr)).args, out),
            T::T_FuncCall => raw_list((*(node as *const pg_sys::FuncCall)).args, out),
            T::T_TypeCast => raw_columns((*(node as *const pg_sys::TypeCast)).arg, out),
            T::T_NullTest => raw_columns((*(node as *const pg_sys::NullTest)).arg.cast(), out),
            T::T_BooleanTest => raw_columns((*(node as *const pg_sys::BooleanTest)).arg.cast(), out),
            T::T_List => raw_list(node as *mut pg_sys::List, out),
            _ => false,
        }
    }
}

#[cfg_attr(any(feature = "pg13", feature = "pg14"), allow(dead_code))]
unsafe fn raw_list(list: *mut pg_sys::List, out: &mut Vec<String>) -> bool {
    unsafe {
        PgList::<pg_sys::Node>::from_pg(list)
            .iter_ptr()
            .all(|n| raw_columns(n, out))
    }
}

/// A `List` of `String` nodes → Rust strings (other node types are skipped).
pub(crate) unsafe fn string_list(list: *mut pg_sys::List) -> Vec<String> {
    unsafe {
        PgList::<pg_sys::Node>::from_pg(list)
            .iter_ptr()
            .filter_map(|n| crate::server::compat::string_value(n))
            .filter_map(|p| cstr(p))
            .collect()
    }
}

/// # Safety
/// `p` must be null or a NUL-terminated string.
pub unsafe fn cstr(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

unsafe fn cstr_owned(p: *mut c_char) -> String {
    let s = unsafe { cstr(p) }.unwrap_or_default();
    if !p.is_null() {
        unsafe { pg_sys::pfree(p.cast()) };
    }
    s
}
