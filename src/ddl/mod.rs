//! Parse tree → [`crate::model`]. The only module that walks `pg_sys` parse nodes.
//!
//! It works on raw (untransformed) grammar output, which is what `ddl_command_start` event
//! triggers and `raw_parser` both hand over.

pub mod expr;
pub mod text;

use crate::model::*;
use core::ffi::{CStr, c_char};
use pgrx::{PgList, is_a, pg_sys};

/// Convert one utility statement. Statements the guard has no rule for become `Command::Other`.
///
/// # Safety
/// `node` must be null or point to a valid raw parse tree node.
pub unsafe fn convert(node: *mut pg_sys::Node, tag: &str, text: Option<String>) -> Statement {
    // SAFETY: the caller guarantees `node` is a valid parse tree; each cast below is guarded by
    // the node tag check that precedes it.
    let command = unsafe { convert_command(node) };
    Statement {
        tag: tag.to_owned(),
        text,
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
                })
            }
            T::T_DropStmt => {
                let s = &*(node as *const pg_sys::DropStmt);
                let kind = object_kind(s.removeType);
                if kind == ObjectKind::Other {
                    return Command::Other;
                }
                let objects = PgList::<pg_sys::List>::from_pg(s.objects)
                    .iter_ptr()
                    .filter_map(|names| relref_from_names(names))
                    .collect();
                Command::Drop(Drop {
                    kind,
                    objects,
                    concurrent: s.concurrent,
                    cascade: s.behavior == pg_sys::DropBehavior::DROP_CASCADE,
                    missing_ok: s.missing_ok,
                })
            }
            T::T_AlterTableStmt => {
                let s = &*(node as *const pg_sys::AlterTableStmt);
                let Some(table) = relref(s.relation) else {
                    return Command::Other;
                };
                let cmds = PgList::<pg_sys::AlterTableCmd>::from_pg(s.cmds)
                    .iter_ptr()
                    .map(|c| alter_cmd(&*c))
                    .collect();
                Command::AlterTable(AlterTable {
                    kind: object_kind(s.objtype),
                    table,
                    missing_ok: s.missing_ok,
                    cmds,
                })
            }
            T::T_RenameStmt => {
                let s = &*(node as *const pg_sys::RenameStmt);
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
                    relation_kind: object_kind(s.relationType),
                    target,
                    column: cstr(s.subname),
                    new_name,
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
            _ => Command::Other,
        }
    }
}

unsafe fn alter_cmd(cmd: &pg_sys::AlterTableCmd) -> AlterCmd {
    use pg_sys::AlterTableType as AT;
    unsafe {
        let name = || cstr(cmd.name).unwrap_or_default();
        match cmd.subtype {
            AT::AT_AddColumn | AT::AT_AddColumnToView if is_a(cmd.def, pg_sys::NodeTag::T_ColumnDef) => {
                AlterCmd::AddColumn(column_def(&*(cmd.def as *const pg_sys::ColumnDef)))
            }
            AT::AT_DropColumn => AlterCmd::DropColumn {
                column: name(),
                cascade: cmd.behavior == pg_sys::DropBehavior::DROP_CASCADE,
                missing_ok: cmd.missing_ok,
            },
            AT::AT_SetNotNull => AlterCmd::SetNotNull { column: name() },
            AT::AT_AlterColumnType if is_a(cmd.def, pg_sys::NodeTag::T_ColumnDef) => {
                let def = &*(cmd.def as *const pg_sys::ColumnDef);
                let column = name();
                let using = if def.raw_default.is_null() || is_plain_column_ref(def.raw_default, &column) {
                    Using::Column
                } else {
                    Using::Expression
                };
                AlterCmd::AlterType {
                    new_type: type_ref(def.typeName),
                    column,
                    using,
                }
            }
            AT::AT_AddConstraint if is_a(cmd.def, pg_sys::NodeTag::T_Constraint) => {
                AlterCmd::AddConstraint(constraint(&*(cmd.def as *const pg_sys::Constraint)))
            }
            AT::AT_ValidateConstraint => AlterCmd::ValidateConstraint { name: name() },
            AT::AT_SetLogged => AlterCmd::SetLogged,
            AT::AT_SetUnLogged => AlterCmd::SetUnlogged,
            AT::AT_SetAccessMethod => AlterCmd::SetAccessMethod { name: name() },
            AT::AT_SetTableSpace => AlterCmd::SetTablespace { name: name() },
            AT::AT_AttachPartition | AT::AT_DetachPartition | AT::AT_DetachPartitionFinalize
                if is_a(cmd.def, pg_sys::NodeTag::T_PartitionCmd) =>
            {
                let pc = &*(cmd.def as *const pg_sys::PartitionCmd);
                let partition = relref(pc.name).unwrap_or_else(|| RelRef::new(None, "?"));
                if cmd.subtype == AT::AT_AttachPartition {
                    AlterCmd::AttachPartition { partition }
                } else {
                    AlterCmd::DetachPartition {
                        partition,
                        concurrent: pc.concurrent,
                        finalize: cmd.subtype == AT::AT_DetachPartitionFinalize,
                    }
                }
            }
            other => AlterCmd::Other {
                what: subcommand_name(other, cmd),
            },
        }
    }
}

unsafe fn column_def(def: &pg_sys::ColumnDef) -> ColumnDef {
    use pg_sys::ConstrType as CT;
    let mut col = ColumnDef {
        name: unsafe { cstr(def.colname) }.unwrap_or_default(),
        type_name: unsafe { type_ref(def.typeName) },
        not_null: def.is_not_null,
        default: None,
        identity: def.identity != 0,
        generated_stored: None,
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
            CT::CONSTR_GENERATED => col.generated_stored = Some(unsafe { expr::analyse(c.raw_expr) }),
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

unsafe fn type_ref(tn: *mut pg_sys::TypeName) -> TypeRef {
    if tn.is_null() {
        return TypeRef {
            display: "?".into(),
            resolved: None,
            serial: false,
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
        if serial {
            return TypeRef {
                display: written,
                resolved: None,
                serial,
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
            },
            None => TypeRef {
                display: written,
                resolved: None,
                serial,
            },
        }
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
        _ => ObjectKind::Other,
    }
}

/// A readable name for an ALTER TABLE subcommand the model does not represent.
unsafe fn subcommand_name(t: pg_sys::AlterTableType::Type, cmd: &pg_sys::AlterTableCmd) -> String {
    use pg_sys::AlterTableType as AT;
    let col = unsafe { cstr(cmd.name) }
        .map(|c| crate::sqltext::quote_ident(&c))
        .unwrap_or_default();
    let s = match t {
        AT::AT_ColumnDefault => return format!("ALTER COLUMN {col} SET/DROP DEFAULT"),
        AT::AT_DropNotNull => return format!("ALTER COLUMN {col} DROP NOT NULL"),
        AT::AT_SetStatistics => return format!("ALTER COLUMN {col} SET STATISTICS"),
        AT::AT_SetStorage => return format!("ALTER COLUMN {col} SET STORAGE"),
        AT::AT_SetCompression => return format!("ALTER COLUMN {col} SET COMPRESSION"),
        AT::AT_DropExpression => return format!("ALTER COLUMN {col} DROP EXPRESSION"),
        AT::AT_AddIdentity | AT::AT_SetIdentity | AT::AT_DropIdentity => return format!("ALTER COLUMN {col} identity"),
        AT::AT_SetOptions | AT::AT_ResetOptions => return format!("ALTER COLUMN {col} SET/RESET options"),
        AT::AT_DropConstraint => return format!("DROP CONSTRAINT {col}"),
        AT::AT_AlterConstraint => "ALTER CONSTRAINT",
        AT::AT_ChangeOwner => "OWNER TO",
        AT::AT_ClusterOn => "CLUSTER ON",
        AT::AT_DropCluster => "SET WITHOUT CLUSTER",
        AT::AT_SetRelOptions | AT::AT_ResetRelOptions | AT::AT_ReplaceRelOptions => "SET/RESET storage parameters",
        AT::AT_EnableTrig
        | AT::AT_EnableAlwaysTrig
        | AT::AT_EnableReplicaTrig
        | AT::AT_DisableTrig
        | AT::AT_EnableTrigAll
        | AT::AT_DisableTrigAll
        | AT::AT_EnableTrigUser
        | AT::AT_DisableTrigUser => "ENABLE/DISABLE TRIGGER",
        AT::AT_EnableRule | AT::AT_EnableAlwaysRule | AT::AT_EnableReplicaRule | AT::AT_DisableRule => {
            "ENABLE/DISABLE RULE"
        }
        AT::AT_AddInherit => "INHERIT",
        AT::AT_DropInherit => "NO INHERIT",
        AT::AT_AddOf => "OF",
        AT::AT_DropOf => "NOT OF",
        AT::AT_ReplicaIdentity => "REPLICA IDENTITY",
        AT::AT_EnableRowSecurity | AT::AT_DisableRowSecurity | AT::AT_ForceRowSecurity | AT::AT_NoForceRowSecurity => {
            "ROW LEVEL SECURITY"
        }
        AT::AT_GenericOptions | AT::AT_AlterColumnGenericOptions => "OPTIONS",
        _ => "subcommand",
    };
    s.to_owned()
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
    let parts = unsafe { string_list(names) };
    match parts.as_slice() {
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

/// A `List` of `String` nodes → Rust strings (other node types are skipped).
unsafe fn string_list(list: *mut pg_sys::List) -> Vec<String> {
    unsafe {
        PgList::<pg_sys::Node>::from_pg(list)
            .iter_ptr()
            .filter(|n| is_a(*n, pg_sys::NodeTag::T_String))
            .filter_map(|n| cstr((*(n as *const pg_sys::String)).sval))
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
