//! Raw parse trees of a script → [`Step`]s, for `check()`: the DDL model the rules read (the
//! same [`super::convert`] the event trigger uses), plus what each statement does to the schema,
//! to the transaction and to the session's settings.

use super::{cstr, relref, string_list};
use crate::check::step::*;
use crate::facts::RelKind;
use crate::model::RelRef;
use core::ffi::CStr;
use pgrx::{PgList, is_a, pg_sys};

/// One statement the raw parser found: its place in the parsed text and what it does.
pub struct Parsed {
    /// Byte offset of the statement in the parsed text (PostgreSQL 18: its first token; earlier
    /// versions: just after the previous semicolon).
    pub location: usize,
    pub tag: String,
    pub step: Step,
}

/// Parse `text` with the server's raw parser and model each statement. Raises PostgreSQL's
/// ERROR on a syntax error (the caller catches it).
///
/// # Safety
/// Call inside a transaction; the parse trees live in the current memory context.
pub unsafe fn parse(text: &core::ffi::CStr) -> Vec<Parsed> {
    unsafe {
        let list = crate::server::compat::raw_parse(text.as_ptr());
        PgList::<pg_sys::RawStmt>::from_pg(list)
            .iter_ptr()
            .map(|raw| {
                let node = (*raw).stmt;
                let (tag, step) = step(node);
                Parsed {
                    location: usize::try_from((*raw).stmt_location).unwrap_or(0),
                    tag,
                    step,
                }
            })
            .collect()
    }
}

/// # Safety
/// `relation` must be null or a valid RangeVar.
unsafe fn data(op: &'static str, relation: *mut pg_sys::RangeVar) -> Step {
    unsafe { relref(relation) }.map_or(Step::Other, |table| Step::Data { op, table })
}

/// # Safety
/// `node` must be a valid raw statement.
unsafe fn step(node: *mut pg_sys::Node) -> (String, Step) {
    use pg_sys::NodeTag as T;
    unsafe {
        let command_tag = pg_sys::CreateCommandTag(node);
        let tag = CStr::from_ptr(pg_sys::GetCommandTagName(command_tag))
            .to_string_lossy()
            .into_owned();
        // Event triggers' commands, and those only the utility hook sees (CLUSTER, VACUUM FULL,
        // TRUNCATE, LOCK, REINDEX before 17), which the same rules judge.
        let hooked = matches!(
            (*node).type_,
            T::T_ClusterStmt | T::T_VacuumStmt | T::T_TruncateStmt | T::T_LockStmt | T::T_ReindexStmt
        );
        let stmt = hooked.then(|| super::convert(node, &tag)).filter(|s| {
            use crate::model::Command as C;
            matches!(s.command, C::Rewrite(_) | C::Truncate(_) | C::Lock(_) | C::Reindex(_))
        });
        if stmt.is_some() || pg_sys::command_tag_event_trigger_ok(command_tag) {
            let stmt = stmt.unwrap_or_else(|| super::convert(node, &tag));
            let (effect, missing_ok) = effect(node);
            let not_in_block = not_in_block(node);
            return (
                tag,
                Step::Ddl(Box::new(Ddl {
                    stmt,
                    effect,
                    missing_ok,
                    not_in_block,
                    default_bound: default_bound(node),
                })),
            );
        }
        let step = match (*node).type_ {
            T::T_TransactionStmt => transaction(&*(node as *const pg_sys::TransactionStmt)),
            T::T_VariableSetStmt => set(node as *mut pg_sys::VariableSetStmt),
            T::T_SelectStmt => calls(&*(node as *const pg_sys::SelectStmt)),
            T::T_InsertStmt => data("INSERT", (*(node as *const pg_sys::InsertStmt)).relation),
            T::T_UpdateStmt => data("UPDATE", (*(node as *const pg_sys::UpdateStmt)).relation),
            T::T_DeleteStmt => data("DELETE", (*(node as *const pg_sys::DeleteStmt)).relation),
            T::T_DoStmt => {
                let (language, source) = options((*(node as *const pg_sys::DoStmt)).args);
                Step::Do {
                    language: language.unwrap_or_else(|| "plpgsql".to_owned()),
                    source: source.unwrap_or_default(),
                }
            }
            T::T_CallStmt => call(&*(node as *const pg_sys::CallStmt)),
            T::T_CopyStmt => {
                let c = &*(node as *const pg_sys::CopyStmt);
                match relref(c.relation) {
                    Some(r) if c.is_from => Step::Fill(r),
                    _ => Step::Other,
                }
            }
            _ => not_in_block(node).map_or(Step::Other, |what| Step::NotInBlock(what.to_owned())),
        };
        (tag, step)
    }
}

/// The name PostgreSQL uses when it refuses `node` inside a transaction block
/// (`PreventInTransactionBlock`), for the statements a migration can contain.
pub(crate) unsafe fn not_in_block(node: *mut pg_sys::Node) -> Option<&'static str> {
    use pg_sys::NodeTag as T;
    unsafe {
        match (*node).type_ {
            T::T_IndexStmt if (*(node as *const pg_sys::IndexStmt)).concurrent => Some("CREATE INDEX CONCURRENTLY"),
            T::T_DropStmt if (*(node as *const pg_sys::DropStmt)).concurrent => Some("DROP INDEX CONCURRENTLY"),
            T::T_AlterTableStmt => {
                let s = &*(node as *const pg_sys::AlterTableStmt);
                PgList::<pg_sys::AlterTableCmd>::from_pg(s.cmds)
                    .iter_ptr()
                    .any(|c| {
                        (*c).subtype == pg_sys::AlterTableType::AT_DetachPartition
                            && is_a((*c).def, T::T_PartitionCmd)
                            && crate::server::compat::partition_cmd_concurrent(
                                &*((*c).def as *const pg_sys::PartitionCmd),
                            )
                    })
                    .then_some("ALTER TABLE ... DETACH CONCURRENTLY")
            }
            T::T_ReindexStmt => {
                use pg_sys::ReindexObjectType as K;
                let s = &*(node as *const pg_sys::ReindexStmt);
                match s.kind {
                    K::REINDEX_OBJECT_SCHEMA => Some("REINDEX SCHEMA"),
                    K::REINDEX_OBJECT_DATABASE => Some("REINDEX DATABASE"),
                    K::REINDEX_OBJECT_SYSTEM => Some("REINDEX SYSTEM"),
                    _ if crate::server::compat::reindex_concurrent(s) => Some("REINDEX CONCURRENTLY"),
                    _ => None,
                }
            }
            T::T_VacuumStmt if (*(node as *const pg_sys::VacuumStmt)).is_vacuumcmd => Some("VACUUM"),
            T::T_CreatedbStmt => Some("CREATE DATABASE"),
            T::T_DropdbStmt => Some("DROP DATABASE"),
            T::T_CreateTableSpaceStmt => Some("CREATE TABLESPACE"),
            T::T_DropTableSpaceStmt => Some("DROP TABLESPACE"),
            T::T_AlterSystemStmt => Some("ALTER SYSTEM"),
            T::T_ClusterStmt if (*(node as *const pg_sys::ClusterStmt)).relation.is_null() => Some("CLUSTER"),
            _ => None,
        }
    }
}

/// `CALL p(…)`: its name; migrate_guard's own procedures (`backfill`, `backfill_expansion`) are
/// judged when they run.
unsafe fn call(s: &pg_sys::CallStmt) -> Step {
    unsafe {
        let mut names = if s.funccall.is_null() {
            vec![]
        } else {
            string_list((*s.funccall).funcname)
        };
        if names.first().is_some_and(|n| n == "migrate_guard") {
            return Step::Other;
        }
        let Some(name) = names.pop() else {
            return Step::Other;
        };
        Step::Call {
            schema: names.pop(),
            name,
        }
    }
}

/// The `LANGUAGE` and the body (`AS`, its first string) of a `DO` block's or a function's
/// options.
///
/// # Safety
/// `list` must be a valid list of DefElem.
unsafe fn options(list: *mut pg_sys::List) -> (Option<String>, Option<String>) {
    unsafe {
        let mut language = None;
        let mut source = None;
        for d in PgList::<pg_sys::DefElem>::from_pg(list).iter_ptr() {
            let arg = (*d).arg;
            if arg.is_null() {
                continue;
            }
            match cstr((*d).defname).as_deref() {
                Some("language") => {
                    language = crate::server::compat::string_value(arg).and_then(|p| cstr(p));
                }
                Some("as") => {
                    source = if is_a(arg, pg_sys::NodeTag::T_List) {
                        string_list(arg.cast()).into_iter().next()
                    } else {
                        crate::server::compat::string_value(arg).and_then(|p| cstr(p))
                    };
                }
                _ => {}
            }
        }
        (language, source)
    }
}

/// A `DEFAULT` partition bound: `CREATE TABLE … PARTITION OF … DEFAULT`, `ATTACH PARTITION …
/// DEFAULT`.
unsafe fn default_bound(node: *mut pg_sys::Node) -> bool {
    use pg_sys::NodeTag as T;
    unsafe {
        let is_default = |b: *mut pg_sys::PartitionBoundSpec| !b.is_null() && (*b).is_default;
        match (*node).type_ {
            T::T_CreateStmt => is_default((*(node as *const pg_sys::CreateStmt)).partbound),
            T::T_AlterTableStmt => {
                PgList::<pg_sys::AlterTableCmd>::from_pg((*(node as *const pg_sys::AlterTableStmt)).cmds)
                    .iter_ptr()
                    .any(|c| {
                        (*c).subtype == pg_sys::AlterTableType::AT_AttachPartition
                            && is_a((*c).def, T::T_PartitionCmd)
                            && is_default((*((*c).def as *const pg_sys::PartitionCmd)).bound)
                    })
            }
            _ => false,
        }
    }
}

unsafe fn transaction(s: &pg_sys::TransactionStmt) -> Step {
    use pg_sys::TransactionStmtKind as K;
    let savepoint = || unsafe { cstr(s.savepoint_name) }.unwrap_or_default();
    Step::Transaction(match s.kind {
        K::TRANS_STMT_BEGIN | K::TRANS_STMT_START => TxOp::Begin,
        K::TRANS_STMT_COMMIT => TxOp::Commit { chain: s.chain },
        K::TRANS_STMT_ROLLBACK => TxOp::Rollback { chain: s.chain },
        K::TRANS_STMT_SAVEPOINT => TxOp::Savepoint(savepoint()),
        K::TRANS_STMT_RELEASE => TxOp::Release(savepoint()),
        K::TRANS_STMT_ROLLBACK_TO => TxOp::RollbackTo(savepoint()),
        K::TRANS_STMT_PREPARE => TxOp::Prepare,
        K::TRANS_STMT_COMMIT_PREPARED => return Step::NotInBlock("COMMIT PREPARED".into()),
        _ => return Step::NotInBlock("ROLLBACK PREPARED".into()),
    })
}

unsafe fn set(s: *mut pg_sys::VariableSetStmt) -> Step {
    use pg_sys::VariableSetKind as K;
    unsafe {
        let name = || cstr((*s).name).unwrap_or_default().to_ascii_lowercase();
        let local = (*s).is_local;
        match (*s).kind {
            K::VAR_SET_VALUE => Step::Set(SetOp::Value {
                name: name(),
                value: cstr(pg_sys::ExtractSetVariableArgs(s)),
                local,
            }),
            K::VAR_SET_DEFAULT | K::VAR_RESET => Step::Set(SetOp::Value {
                name: name(),
                value: None,
                local,
            }),
            K::VAR_RESET_ALL => Step::Set(SetOp::ResetAll),
            _ => Step::Other,
        }
    }
}

/// `SELECT f('a', 1), g()`: the function calls of a plain select list.
unsafe fn calls(s: &pg_sys::SelectStmt) -> Step {
    unsafe {
        let mut out = Vec::new();
        for target in PgList::<pg_sys::ResTarget>::from_pg(s.targetList).iter_ptr() {
            let val = (*target).val;
            if val.is_null() || !is_a(val, pg_sys::NodeTag::T_FuncCall) {
                continue;
            }
            let f = &*(val as *const pg_sys::FuncCall);
            let mut names = string_list(f.funcname);
            let Some(function) = names.pop() else { continue };
            let args = PgList::<pg_sys::Node>::from_pg(f.args)
                .iter_ptr()
                .map(|a| crate::server::compat::constant_text(a))
                .collect();
            out.push(Call {
                schema: names.pop(),
                function,
                args,
            });
        }
        if out.is_empty() { Step::Other } else { Step::Calls(out) }
    }
}

/// What a DDL statement does to the schema, and whether it tolerates a missing relation.
unsafe fn effect(node: *mut pg_sys::Node) -> (Effect, bool) {
    use pg_sys::NodeTag as T;
    unsafe {
        match (*node).type_ {
            T::T_CreateStmt => (create_table(&*(node as *const pg_sys::CreateStmt), false), false),
            T::T_CreateForeignTableStmt => (
                create_table(&(*(node as *const pg_sys::CreateForeignTableStmt)).base, true),
                false,
            ),
            T::T_CreateTableAsStmt => {
                let s = &*(node as *const pg_sys::CreateTableAsStmt);
                let into = s.into;
                if into.is_null() {
                    return (Effect::None, false);
                }
                let kind =
                    if crate::server::compat::create_table_as_object_type(s) == pg_sys::ObjectType::OBJECT_MATVIEW {
                        RelKind::MatView
                    } else {
                        RelKind::Table
                    };
                let effect = new_relation((*into).rel, kind, s.if_not_exists, !(*into).skipData);
                (effect, false)
            }
            // CREATE OR REPLACE VIEW of an existing view replaces it (its columns may change:
            // they are not followed).
            T::T_CreateFunctionStmt => {
                let s = &*(node as *const pg_sys::CreateFunctionStmt);
                let mut names = string_list(s.funcname);
                let Some(name) = names.pop() else {
                    return (Effect::None, false);
                };
                // SECURITY DEFINER, or SET options: the procedure cannot commit.
                let atomic = PgList::<pg_sys::DefElem>::from_pg(s.options).iter_ptr().any(|d| {
                    match cstr((*d).defname).as_deref() {
                        Some("set") => true,
                        Some("security") => !(*d).arg.is_null() && pg_sys::defGetBoolean(d),
                        _ => false,
                    }
                });
                use crate::model::Volatility as V;
                let volatility = PgList::<pg_sys::DefElem>::from_pg(s.options)
                    .iter_ptr()
                    .find(|d| cstr((**d).defname).is_some_and(|n| n == "volatility"))
                    .and_then(|d| {
                        let arg = (*d).arg;
                        (!arg.is_null() && is_a(arg, pg_sys::NodeTag::T_String))
                            .then(|| crate::server::compat::string_value(arg))
                            .flatten()
                            .and_then(|p| cstr(p))
                    })
                    .map_or(V::Volatile, |v| match v.as_str() {
                        "immutable" => V::Immutable,
                        "stable" => V::Stable,
                        _ => V::Volatile,
                    });
                // The body check() follows when the script calls the procedure (not a
                // `BEGIN ATOMIC` body: it holds no utility statements).
                let (language, source) = options(s.options);
                let routine = match (language, source) {
                    (Some(language), Some(source)) if !crate::server::compat::has_sql_body(s) => {
                        Some(crate::check::step::Routine {
                            schema: names.pop(),
                            language,
                            source,
                            procedure: s.is_procedure,
                            atomic,
                        })
                    }
                    _ => None,
                };
                (
                    Effect::CreateFunction {
                        name,
                        volatility,
                        routine,
                    },
                    false,
                )
            }
            T::T_ViewStmt => {
                let s = &*(node as *const pg_sys::ViewStmt);
                (new_relation(s.view, RelKind::View, s.replace, false), false)
            }
            T::T_CreateSeqStmt => {
                let s = &*(node as *const pg_sys::CreateSeqStmt);
                (
                    new_relation(s.sequence, RelKind::Sequence, s.if_not_exists, false),
                    false,
                )
            }
            T::T_IndexStmt => {
                let s = &*(node as *const pg_sys::IndexStmt);
                let Some(table) = relref(s.relation) else {
                    return (Effect::None, false);
                };
                let (columns, expressions) = index_columns(s.indexParams);
                (
                    Effect::CreateIndex(NewIndex {
                        name: cstr(s.idxname),
                        table,
                        columns,
                        expressions,
                        unique: s.unique,
                        primary: s.primary,
                        if_not_exists: s.if_not_exists,
                    }),
                    false,
                )
            }
            T::T_CreateSchemaStmt => {
                let s = &*(node as *const pg_sys::CreateSchemaStmt);
                let name = cstr(s.schemaname).or_else(|| {
                    (!s.authrole.is_null() && (*s.authrole).roletype == pg_sys::RoleSpecType::ROLESPEC_CSTRING)
                        .then(|| cstr((*s.authrole).rolename))
                        .flatten()
                });
                match name {
                    Some(name) => (
                        Effect::CreateSchema {
                            name,
                            if_not_exists: s.if_not_exists,
                        },
                        false,
                    ),
                    None => (Effect::None, false),
                }
            }
            T::T_DropStmt => {
                let s = &*(node as *const pg_sys::DropStmt);
                if s.removeType == pg_sys::ObjectType::OBJECT_SCHEMA {
                    let names = PgList::<pg_sys::Node>::from_pg(s.objects)
                        .iter_ptr()
                        .filter_map(|n| crate::server::compat::string_value(n))
                        .filter_map(|p| cstr(p))
                        .collect();
                    return (
                        Effect::DropSchemas {
                            names,
                            missing_ok: s.missing_ok,
                        },
                        s.missing_ok,
                    );
                }
                use pg_sys::ObjectType as O;
                if matches!(
                    s.removeType,
                    O::OBJECT_PROCEDURE | O::OBJECT_FUNCTION | O::OBJECT_ROUTINE
                ) {
                    let names = PgList::<pg_sys::Node>::from_pg(s.objects)
                        .iter_ptr()
                        .filter(|n| is_a(*n, pg_sys::NodeTag::T_ObjectWithArgs))
                        .filter_map(|n| {
                            let mut parts = string_list((*(n as *const pg_sys::ObjectWithArgs)).objname);
                            let name = parts.pop()?;
                            Some((parts.pop(), name))
                        })
                        .collect();
                    return (Effect::DropRoutines(names), s.missing_ok);
                }
                (Effect::None, s.missing_ok)
            }
            T::T_RenameStmt => (Effect::None, (*(node as *const pg_sys::RenameStmt)).missing_ok),
            T::T_AlterTableStmt => {
                let s = &*(node as *const pg_sys::AlterTableStmt);
                (alter_table(s), s.missing_ok)
            }
            _ => (Effect::None, false),
        }
    }
}

unsafe fn new_relation(rv: *mut pg_sys::RangeVar, kind: RelKind, if_not_exists: bool, with_data: bool) -> Effect {
    unsafe {
        match relref(rv) {
            Some(name) => Effect::CreateRelation(NewRelation {
                name,
                kind,
                temp: is_temp(rv),
                columns: vec![],
                indexes: vec![],
                checks: vec![],
                with_data,
                if_not_exists,
                parent: None,
            }),
            None => Effect::None,
        }
    }
}

unsafe fn is_temp(rv: *const pg_sys::RangeVar) -> bool {
    unsafe {
        !rv.is_null()
            && ((*rv).relpersistence as u8 == pg_sys::RELPERSISTENCE_TEMP
                || cstr((*rv).schemaname).is_some_and(|s| s == "pg_temp" || s.starts_with("pg_temp_")))
    }
}

unsafe fn create_table(s: &pg_sys::CreateStmt, foreign: bool) -> Effect {
    unsafe {
        let Some(name) = relref(s.relation) else {
            return Effect::None;
        };
        let kind = if foreign {
            RelKind::ForeignTable
        } else if s.partspec.is_null() {
            RelKind::Table
        } else {
            RelKind::PartitionedTable
        };
        let mut rel = NewRelation {
            name: name.clone(),
            kind,
            temp: is_temp(s.relation),
            columns: vec![],
            indexes: vec![],
            checks: vec![],
            with_data: false,
            if_not_exists: s.if_not_exists,
            parent: PgList::<pg_sys::RangeVar>::from_pg(s.inhRelations)
                .get_ptr(0)
                .and_then(|rv| relref(rv))
                .map(|p| (p, !s.partbound.is_null())),
        };
        for elt in PgList::<pg_sys::Node>::from_pg(s.tableElts).iter_ptr() {
            if is_a(elt, pg_sys::NodeTag::T_ColumnDef) {
                let def = &*(elt as *const pg_sys::ColumnDef);
                let (column, indexes, checks) = column(def, &name);
                rel.columns.push(column);
                rel.indexes.extend(indexes);
                rel.checks.extend(checks);
            } else if is_a(elt, pg_sys::NodeTag::T_Constraint) {
                let c = &*(elt as *const pg_sys::Constraint);
                constraint(c, &name, &[], &mut rel.indexes, &mut rel.checks);
            }
        }
        // A primary key makes its columns NOT NULL.
        let primary: Vec<String> = rel
            .indexes
            .iter()
            .filter(|i| i.primary)
            .flat_map(|i| i.columns.clone())
            .collect();
        for c in rel.columns.iter_mut().filter(|c| primary.contains(&c.name)) {
            c.not_null = true;
        }
        Effect::CreateRelation(rel)
    }
}

/// A column definition: the column, and the indexes and CHECKs its inline constraints create.
unsafe fn column(def: &pg_sys::ColumnDef, table: &RelRef) -> (NewColumn, Vec<NewIndex>, Vec<NewCheck>) {
    use pg_sys::ConstrType as CT;
    unsafe {
        let name = cstr(def.colname).unwrap_or_default();
        let type_name = super::type_ref(def.typeName, super::TypeLookup::Display);
        let mut col = NewColumn {
            name: name.clone(),
            type_display: type_name.display,
            not_null: def.is_not_null,
            generated: None,
            sequence: type_name.serial || def.identity != 0,
        };
        let (mut indexes, mut checks) = (Vec::new(), Vec::new());
        for c in PgList::<pg_sys::Constraint>::from_pg(def.constraints).iter_ptr() {
            let c = &*c;
            match c.contype {
                CT::CONSTR_NOTNULL => col.not_null = true,
                CT::CONSTR_NULL => col.not_null = false,
                CT::CONSTR_IDENTITY => col.sequence = true,
                CT::CONSTR_GENERATED => {
                    col.generated = Some(if crate::server::compat::generated_virtual(c) {
                        'v'
                    } else {
                        's'
                    });
                }
                CT::CONSTR_PRIMARY => col.not_null = true,
                _ => {}
            }
            constraint(c, table, std::slice::from_ref(&name), &mut indexes, &mut checks);
        }
        (col, indexes, checks)
    }
}

/// The index or CHECK a constraint creates (`column`: the column an inline constraint is on).
unsafe fn constraint(
    c: &pg_sys::Constraint,
    table: &RelRef,
    column: &[String],
    indexes: &mut Vec<NewIndex>,
    checks: &mut Vec<NewCheck>,
) {
    use pg_sys::ConstrType as CT;
    unsafe {
        match c.contype {
            CT::CONSTR_PRIMARY | CT::CONSTR_UNIQUE | CT::CONSTR_EXCLUSION if c.indexname.is_null() => {
                let mut columns = string_list(c.keys);
                let mut expressions = false;
                if c.contype == CT::CONSTR_EXCLUSION {
                    // (element, operator) pairs; the element is an IndexElem.
                    for pair in PgList::<pg_sys::List>::from_pg(c.exclusions).iter_ptr() {
                        let elem = PgList::<pg_sys::Node>::from_pg(pair).get_ptr(0);
                        match elem.filter(|e| is_a(*e, pg_sys::NodeTag::T_IndexElem)) {
                            Some(e) => match cstr((*(e as *const pg_sys::IndexElem)).name) {
                                Some(n) => columns.push(n),
                                None => expressions = true,
                            },
                            None => expressions = true,
                        }
                    }
                }
                if columns.is_empty() && !expressions {
                    columns = column.to_vec();
                }
                indexes.push(NewIndex {
                    name: cstr(c.conname),
                    table: table.clone(),
                    columns,
                    // An exclusion constraint's chosen name has its own suffix: not predicted.
                    expressions: expressions || c.contype == CT::CONSTR_EXCLUSION,
                    unique: c.contype != CT::CONSTR_EXCLUSION,
                    primary: c.contype == CT::CONSTR_PRIMARY,
                    if_not_exists: false,
                });
            }
            CT::CONSTR_CHECK => checks.push(NewCheck {
                name: cstr(c.conname),
                implies_not_null: implied_not_null(c.raw_expr),
                not_valid: c.skip_validation,
            }),
            _ => {}
        }
    }
}

/// Columns a CHECK expression proves non-null: its `col IS NOT NULL` conjuncts.
unsafe fn implied_not_null(expr: *mut pg_sys::Node) -> Vec<String> {
    unsafe {
        if expr.is_null() {
            return vec![];
        }
        match (*expr).type_ {
            pg_sys::NodeTag::T_NullTest => {
                let t = &*(expr as *const pg_sys::NullTest);
                if t.nulltesttype != pg_sys::NullTestType::IS_NOT_NULL
                    || t.arg.is_null()
                    || !is_a(t.arg.cast(), pg_sys::NodeTag::T_ColumnRef)
                {
                    return vec![];
                }
                let fields = string_list((*(t.arg as *const pg_sys::ColumnRef)).fields);
                fields.last().cloned().into_iter().collect()
            }
            pg_sys::NodeTag::T_BoolExpr => {
                let b = &*(expr as *const pg_sys::BoolExpr);
                if b.boolop != pg_sys::BoolExprType::AND_EXPR {
                    return vec![];
                }
                PgList::<pg_sys::Node>::from_pg(b.args)
                    .iter_ptr()
                    .flat_map(|a| implied_not_null(a))
                    .collect()
            }
            _ => vec![],
        }
    }
}

/// Plain column keys of an index, and whether some key is an expression.
unsafe fn index_columns(params: *mut pg_sys::List) -> (Vec<String>, bool) {
    let mut columns = Vec::new();
    let mut expressions = false;
    for p in unsafe { PgList::<pg_sys::IndexElem>::from_pg(params) }.iter_ptr() {
        match unsafe { cstr((*p).name) } {
            Some(n) => columns.push(n),
            None => expressions = true,
        }
    }
    (columns, expressions)
}

unsafe fn alter_table(s: &pg_sys::AlterTableStmt) -> Effect {
    use pg_sys::AlterTableType as AT;
    unsafe {
        let Some(table) = relref(s.relation) else {
            return Effect::None;
        };
        let (mut checks, mut indexes, mut dropped_constraints) = (Vec::new(), Vec::new(), Vec::new());
        for cmd in PgList::<pg_sys::AlterTableCmd>::from_pg(s.cmds).iter_ptr() {
            let cmd = &*cmd;
            match cmd.subtype {
                AT::AT_AddConstraint if is_a(cmd.def, pg_sys::NodeTag::T_Constraint) => {
                    constraint(
                        &*(cmd.def as *const pg_sys::Constraint),
                        &table,
                        &[],
                        &mut indexes,
                        &mut checks,
                    );
                }
                AT::AT_AddColumn if is_a(cmd.def, pg_sys::NodeTag::T_ColumnDef) => {
                    let (_, i, c) = column(&*(cmd.def as *const pg_sys::ColumnDef), &table);
                    indexes.extend(i);
                    checks.extend(c);
                }
                AT::AT_DropConstraint => dropped_constraints.extend(cstr(cmd.name)),
                _ => {}
            }
        }
        Effect::AlterTable {
            checks,
            indexes,
            dropped_constraints,
        }
    }
}
