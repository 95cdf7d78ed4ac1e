//! The server this library runs in: its version (the capabilities that depend on it are
//! [`Server`]'s, in the core crate) and the places where PostgreSQL's C structures and functions
//! differ between versions. Parse-tree layouts that differ between versions are handled in
//! `crate::ddl`, the only other place with `cfg`.

pub use migrate_guard_core::server::Server;

/// The server this library was built for (an extension is built per major version, and
/// PostgreSQL refuses to load a library built for another one).
pub const fn running() -> Server {
    Server::of(pgrx::pg_sys::PG_VERSION_NUM / 10000)
}

/// The places where PostgreSQL's C structures and functions differ between versions, each
/// behind one name. Everything else is written once.
pub mod compat {
    use pgrx::pg_sys;

    /// The attributes of a tuple descriptor (18 keeps compact copies inline and reaches the full
    /// `pg_attribute` rows through `TupleDescAttr`).
    ///
    /// # Safety
    /// `desc` must be a valid tuple descriptor that outlives the returned references.
    pub unsafe fn attributes<'a>(desc: pg_sys::TupleDesc) -> Vec<&'a pg_sys::FormData_pg_attribute> {
        unsafe {
            let natts = (*desc).natts as usize;
            #[cfg(feature = "pg18")]
            {
                (0..natts).map(|i| &*pg_sys::TupleDescAttr(desc, i as i32)).collect()
            }
            #[cfg(not(feature = "pg18"))]
            {
                (*desc).attrs.as_slice(natts).iter().collect()
            }
        }
    }

    /// The identity sequence of column `attnum` of a table (17 takes the open relation).
    ///
    /// # Safety
    /// Call inside a transaction; `relid` must be a table.
    pub unsafe fn identity_sequence(relid: pg_sys::Oid, attnum: i16) -> pg_sys::Oid {
        unsafe {
            #[cfg(any(feature = "pg17", feature = "pg18"))]
            {
                let rel = pg_sys::RelationIdGetRelation(relid);
                let seq = pg_sys::getIdentitySequence(rel, attnum, false);
                pg_sys::RelationClose(rel);
                seq
            }
            #[cfg(not(any(feature = "pg17", feature = "pg18")))]
            {
                pg_sys::getIdentitySequence(relid, attnum, false)
            }
        }
    }

    /// Insert a heap tuple's entries into every index of its table (16 added `onlySummarizing`).
    ///
    /// # Safety
    /// As `ExecInsertIndexTuples`: the result relation's indexes are open and the tuple is stored.
    pub unsafe fn insert_index_tuples(
        rri: *mut pg_sys::ResultRelInfo,
        slot: *mut pg_sys::TupleTableSlot,
        estate: *mut pg_sys::EState,
    ) {
        unsafe {
            #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
            pg_sys::ExecInsertIndexTuples(
                rri,
                slot,
                estate,
                false,
                false,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                false,
            );
            #[cfg(any(feature = "pg14", feature = "pg15"))]
            pg_sys::ExecInsertIndexTuples(
                rri,
                slot,
                estate,
                false,
                false,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            // 13 takes the result relation from the executor state.
            #[cfg(feature = "pg13")]
            {
                (*estate).es_result_relation_info = rri;
                pg_sys::ExecInsertIndexTuples(slot, estate, false, std::ptr::null_mut(), std::ptr::null_mut());
            }
        }
    }

    /// The raw parser on a whole string (14 added the parse mode).
    ///
    /// # Safety
    /// `text` must be a NUL-terminated string; raises an ERROR on a syntax error.
    pub unsafe fn raw_parse(text: *const core::ffi::c_char) -> *mut pg_sys::List {
        unsafe {
            #[cfg(feature = "pg13")]
            {
                pg_sys::raw_parser(text)
            }
            #[cfg(not(feature = "pg13"))]
            {
                pg_sys::raw_parser(text, pg_sys::RawParseMode::RAW_PARSE_DEFAULT)
            }
        }
    }

    /// Parse analysis and rewriting of one raw statement without parameters: the queries it
    /// becomes.
    ///
    /// # Safety
    /// Inside a transaction; `raw` a `RawStmt` of `text`.
    pub unsafe fn analyze_and_rewrite(raw: *mut pg_sys::RawStmt, text: *const core::ffi::c_char) -> *mut pg_sys::List {
        unsafe {
            #[cfg(any(feature = "pg13", feature = "pg14"))]
            {
                pg_sys::pg_analyze_and_rewrite(raw, text, std::ptr::null_mut(), 0, std::ptr::null_mut())
            }
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            {
                pg_sys::pg_analyze_and_rewrite_fixedparams(raw, text, std::ptr::null(), 0, std::ptr::null_mut())
            }
        }
    }

    /// Make unknown settings under a prefix an error (15+); 13 and 14 can only warn about them.
    ///
    /// # Safety
    /// Call from `_PG_init`, after the prefix's settings are defined.
    pub unsafe fn reserve_guc_prefix(prefix: &core::ffi::CStr) {
        unsafe {
            #[cfg(any(feature = "pg13", feature = "pg14"))]
            pg_sys::EmitWarningsOnPlaceholders(prefix.as_ptr());
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            pg_sys::MarkGUCPrefixReserved(prefix.as_ptr());
        }
    }

    /// The partitions of a partitioned table, without those being detached (14 added the flag).
    ///
    /// # Safety
    /// `rel` must be an open partitioned table.
    pub unsafe fn partition_desc(rel: pg_sys::Relation) -> pg_sys::PartitionDesc {
        unsafe {
            #[cfg(feature = "pg13")]
            {
                pg_sys::RelationGetPartitionDesc(rel)
            }
            #[cfg(not(feature = "pg13"))]
            {
                pg_sys::RelationGetPartitionDesc(rel, true)
            }
        }
    }

    /// The partition constraint of a transformed bound `spec` of `parent`.
    ///
    /// # Safety
    /// `parent` must be an open partitioned table and `spec` a transformed bound of it.
    pub unsafe fn qual_from_partbound(
        parent: pg_sys::Relation,
        spec: *mut pg_sys::PartitionBoundSpec,
    ) -> *mut pg_sys::List {
        unsafe {
            // 13 and 14 take the new partition too, and do not use it.
            #[cfg(any(feature = "pg13", feature = "pg14"))]
            {
                pg_sys::get_qual_from_partbound(parent, parent, spec)
            }
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            {
                pg_sys::get_qual_from_partbound(parent, spec)
            }
        }
    }

    /// Whether a generated-column constraint makes a virtual column (18: the default kind).
    pub fn generated_virtual(c: &pg_sys::Constraint) -> bool {
        #[cfg(feature = "pg18")]
        {
            c.generated_kind as u8 == pg_sys::ATTRIBUTE_GENERATED_VIRTUAL
        }
        #[cfg(not(feature = "pg18"))]
        {
            let _ = c;
            false
        }
    }

    /// Whether a column is NOT NULL by a valid constraint. From 18, `attnotnull` is also set by a
    /// NOT VALID not-null constraint, which does not prove anything yet.
    ///
    /// # Safety
    /// `att` must be an attribute of `desc`, a valid tuple descriptor from the relation cache.
    pub unsafe fn not_null_valid(desc: pg_sys::TupleDesc, att: &pg_sys::FormData_pg_attribute) -> bool {
        #[cfg(feature = "pg18")]
        unsafe {
            att.attnotnull
                && (*pg_sys::TupleDescCompactAttr(desc, i32::from(att.attnum) - 1)).attnullability as u8
                    != pg_sys::ATTNULLABLE_INVALID
        }
        #[cfg(not(feature = "pg18"))]
        {
            let _ = desc;
            att.attnotnull
        }
    }

    /// `pg_class.reltuples` as a row estimate, when it is one: -1 means "never vacuumed or
    /// analyzed" from 14 on; 13 writes 0 there (with 0 pages) instead.
    pub fn row_estimate(relpages: i32, reltuples: f32) -> Option<i64> {
        #[cfg(feature = "pg13")]
        {
            (reltuples > 0.0 || relpages > 0).then_some(reltuples as i64)
        }
        #[cfg(not(feature = "pg13"))]
        {
            let _ = relpages;
            (reltuples >= 0.0).then_some(reltuples as i64)
        }
    }

    /// The planner's estimate of the rows a ModifyTable node changes: its source plan's rows
    /// (13 keeps one source plan per result relation, later versions one).
    ///
    /// # Safety
    /// `mt` must be a node of a valid plan.
    pub unsafe fn modify_table_rows(mt: &pg_sys::ModifyTable) -> f64 {
        unsafe {
            #[cfg(feature = "pg13")]
            {
                pgrx::PgList::<pg_sys::Plan>::from_pg(mt.plans)
                    .iter_ptr()
                    .filter(|p| !p.is_null())
                    .map(|p| (*p).plan_rows)
                    .sum()
            }
            #[cfg(not(feature = "pg13"))]
            {
                let source = mt.plan.lefttree;
                if source.is_null() { 0.0 } else { (*source).plan_rows }
            }
        }
    }

    /// What an ALTER TABLE statement alters (13 calls the field `relkind`).
    pub fn alter_table_object_type(s: &pg_sys::AlterTableStmt) -> pg_sys::ObjectType::Type {
        #[cfg(feature = "pg13")]
        {
            s.relkind
        }
        #[cfg(not(feature = "pg13"))]
        {
            s.objtype
        }
    }

    /// What a `CREATE TABLE AS` / `CREATE MATERIALIZED VIEW` creates (13 calls the field `relkind`).
    pub fn create_table_as_object_type(s: &pg_sys::CreateTableAsStmt) -> pg_sys::ObjectType::Type {
        #[cfg(feature = "pg13")]
        {
            s.relkind
        }
        #[cfg(not(feature = "pg13"))]
        {
            s.objtype
        }
    }

    /// A `BEGIN ATOMIC` body (14+; 13 has only string bodies).
    pub fn has_sql_body(s: &pg_sys::CreateFunctionStmt) -> bool {
        #[cfg(feature = "pg13")]
        {
            let _ = s;
            false
        }
        #[cfg(not(feature = "pg13"))]
        {
            !s.sql_body.is_null()
        }
    }

    /// `REINDEX … CONCURRENTLY` (13 has a flag; 14 moved it into the option list).
    ///
    /// # Safety
    /// `s` must be a valid parse node.
    pub unsafe fn reindex_concurrent(s: &pg_sys::ReindexStmt) -> bool {
        #[cfg(feature = "pg13")]
        {
            s.concurrent
        }
        #[cfg(not(feature = "pg13"))]
        unsafe {
            pgrx::PgList::<pg_sys::DefElem>::from_pg(s.params).iter_ptr().any(|d| {
                crate::ddl::cstr((*d).defname).is_some_and(|n| n == "concurrently")
                    && ((*d).arg.is_null() || pg_sys::defGetBoolean(d))
            })
        }
    }

    /// Event triggers fire for REINDEX (17+); before, only the utility hook sees it.
    pub fn reindex_fires_event_triggers() -> bool {
        cfg!(any(feature = "pg17", feature = "pg18"))
    }

    /// `DETACH PARTITION … CONCURRENTLY` (14+; never on 13).
    pub fn partition_cmd_concurrent(pc: &pg_sys::PartitionCmd) -> bool {
        #[cfg(feature = "pg13")]
        {
            let _ = pc;
            false
        }
        #[cfg(not(feature = "pg13"))]
        {
            pc.concurrent
        }
    }

    /// Whether an UPDATE has a RETURNING clause (18 wraps the list in a `ReturningClause`).
    pub fn update_returns(u: &pg_sys::UpdateStmt) -> bool {
        #[cfg(feature = "pg18")]
        {
            !u.returningClause.is_null()
        }
        #[cfg(not(feature = "pg18"))]
        {
            !u.returningList.is_null()
        }
    }

    /// The text of a `String` value node (13 and 14 have one `Value` node type for all values).
    ///
    /// # Safety
    /// `node` must be a valid node; its tag is checked here.
    pub unsafe fn string_value(node: *mut pg_sys::Node) -> Option<*const core::ffi::c_char> {
        unsafe {
            if node.is_null() || (*node).type_ != pg_sys::NodeTag::T_String {
                return None;
            }
            #[cfg(any(feature = "pg13", feature = "pg14"))]
            {
                Some((*(node as *const pg_sys::Value)).val.str_ as *const _)
            }
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            {
                Some((*(node as *const pg_sys::String)).sval as *const _)
            }
        }
    }

    /// The text of a constant (`'text'`, `42`, `1.5`, `true`), possibly cast (`'x'::text`), as
    /// PostgreSQL would pass it to a function's input: `None` for anything else.
    ///
    /// # Safety
    /// `node` must be null or a valid raw expression node; its tag is checked here.
    pub unsafe fn constant_text(node: *mut pg_sys::Node) -> Option<String> {
        unsafe {
            if node.is_null() {
                return None;
            }
            if (*node).type_ == pg_sys::NodeTag::T_TypeCast {
                return constant_text((*(node as *const pg_sys::TypeCast)).arg);
            }
            if (*node).type_ != pg_sys::NodeTag::T_A_Const {
                return None;
            }
            let c = &*(node as *const pg_sys::A_Const);
            let cstr = |p: *const core::ffi::c_char| crate::ddl::cstr(p);
            #[cfg(any(feature = "pg13", feature = "pg14"))]
            {
                match c.val.type_ {
                    pg_sys::NodeTag::T_Integer => Some(c.val.val.ival.to_string()),
                    pg_sys::NodeTag::T_String | pg_sys::NodeTag::T_Float => cstr(c.val.val.str_),
                    _ => None,
                }
            }
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            {
                if c.isnull {
                    return None;
                }
                match c.val.node.type_ {
                    pg_sys::NodeTag::T_Integer => Some(c.val.ival.ival.to_string()),
                    pg_sys::NodeTag::T_Float => cstr(c.val.fval.fval),
                    pg_sys::NodeTag::T_Boolean => Some(if c.val.boolval.boolval { "true" } else { "false" }.to_owned()),
                    pg_sys::NodeTag::T_String => cstr(c.val.sval.sval),
                    _ => None,
                }
            }
        }
    }

    /// The tables a publication statement adds (`CREATE … FOR TABLE`, `ALTER … ADD|SET TABLE`;
    /// not `DROP TABLE`), each with the columns its row filter reads and its column list (15+),
    /// and the schemas of `TABLES IN SCHEMA` (15+; `None`: `CURRENT_SCHEMA`).
    ///
    /// # Safety
    /// `node` must be a valid `CreatePublicationStmt` or `AlterPublicationStmt`.
    #[allow(clippy::type_complexity)]
    pub unsafe fn publication_tables(
        node: *mut pg_sys::Node,
    ) -> (
        Vec<(*mut pg_sys::RangeVar, Option<Vec<String>>, Option<Vec<String>>)>,
        Vec<Option<String>>,
    ) {
        use pgrx::PgList;
        unsafe {
            #[cfg(any(feature = "pg13", feature = "pg14"))]
            {
                let tables = if (*node).type_ == pg_sys::NodeTag::T_CreatePublicationStmt {
                    (*(node as *const pg_sys::CreatePublicationStmt)).tables
                } else {
                    let s = &*(node as *const pg_sys::AlterPublicationStmt);
                    if s.tableAction == pg_sys::DefElemAction::DEFELEM_DROP {
                        std::ptr::null_mut()
                    } else {
                        s.tables
                    }
                };
                let rels = PgList::<pg_sys::Node>::from_pg(tables)
                    .iter_ptr()
                    .filter(|n| !n.is_null() && (**n).type_ == pg_sys::NodeTag::T_RangeVar)
                    .map(|n| (n as *mut pg_sys::RangeVar, None, None))
                    .collect();
                (rels, Vec::new())
            }
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            {
                let objects = if (*node).type_ == pg_sys::NodeTag::T_CreatePublicationStmt {
                    (*(node as *const pg_sys::CreatePublicationStmt)).pubobjects
                } else {
                    let s = &*(node as *const pg_sys::AlterPublicationStmt);
                    if s.action == pg_sys::AlterPublicationAction::AP_DropObjects {
                        std::ptr::null_mut()
                    } else {
                        s.pubobjects
                    }
                };
                let mut rels = Vec::new();
                let mut schemas = Vec::new();
                for n in PgList::<pg_sys::Node>::from_pg(objects).iter_ptr() {
                    if n.is_null() || (*n).type_ != pg_sys::NodeTag::T_PublicationObjSpec {
                        continue;
                    }
                    let o = &*(n as *const pg_sys::PublicationObjSpec);
                    match o.pubobjtype {
                        pg_sys::PublicationObjSpecType::PUBLICATIONOBJ_TABLE if !o.pubtable.is_null() => {
                            let t = &*o.pubtable;
                            let filter = (!t.whereClause.is_null()).then(|| {
                                let mut cols = Vec::new();
                                if crate::ddl::raw_columns(t.whereClause, &mut cols) {
                                    cols
                                } else {
                                    Vec::new()
                                }
                            });
                            let list = (!t.columns.is_null()).then(|| crate::ddl::string_list(t.columns));
                            rels.push((t.relation, filter, list))
                        }
                        pg_sys::PublicationObjSpecType::PUBLICATIONOBJ_TABLES_IN_SCHEMA => {
                            schemas.push(crate::ddl::cstr(o.name))
                        }
                        // Resolved now: the schema the session creates in.
                        pg_sys::PublicationObjSpecType::PUBLICATIONOBJ_TABLES_IN_CUR_SCHEMA => schemas.push(
                            pgrx::Spi::get_one::<String>("SELECT pg_catalog.current_schema()::pg_catalog.text")
                                .ok()
                                .flatten(),
                        ),
                        _ => {}
                    }
                }
                (rels, schemas)
            }
        }
    }

    /// The value of an integer constant (`A_Const`), if `node` is one.
    ///
    /// # Safety
    /// `node` must be a valid node; its tag is checked here.
    pub unsafe fn integer_constant(node: *mut pg_sys::Node) -> Option<i64> {
        unsafe {
            if node.is_null() || (*node).type_ != pg_sys::NodeTag::T_A_Const {
                return None;
            }
            let c = &*(node as *const pg_sys::A_Const);
            #[cfg(any(feature = "pg13", feature = "pg14"))]
            {
                (c.val.type_ == pg_sys::NodeTag::T_Integer).then(|| i64::from(c.val.val.ival))
            }
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            {
                (!c.isnull && c.val.node.type_ == pg_sys::NodeTag::T_Integer).then(|| i64::from(c.val.ival.ival))
            }
        }
    }

    /// Each relation a planned query checks permissions on (the relations it names, views
    /// included; not the inheritance children or partitions it expands to): its oid, the
    /// privileges it needs, and the columns it selects, inserts and updates. The permission
    /// entries moved from `RangeTblEntry` to `RTEPermissionInfo` in 16.
    ///
    /// # Safety
    /// A valid PlannedStmt.
    pub unsafe fn for_each_permission(
        ps: &pg_sys::PlannedStmt,
        mut f: impl FnMut(pg_sys::Oid, u64, *mut pg_sys::Bitmapset, *mut pg_sys::Bitmapset, *mut pg_sys::Bitmapset),
    ) {
        unsafe {
            #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
            {
                let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg(ps.rtable);
                for rte in rtable.iter_ptr() {
                    let r = &*rte;
                    if r.rtekind == pg_sys::RTEKind::RTE_RELATION && r.requiredPerms != 0 {
                        f(
                            r.relid,
                            r.requiredPerms as u64,
                            r.selectedCols,
                            r.insertedCols,
                            r.updatedCols,
                        );
                    }
                }
            }
            #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
            {
                let infos = pgrx::PgList::<pg_sys::RTEPermissionInfo>::from_pg(ps.permInfos);
                for p in infos.iter_ptr() {
                    let p = &*p;
                    if p.requiredPerms != 0 {
                        f(
                            p.relid,
                            p.requiredPerms as u64,
                            p.selectedCols,
                            p.insertedCols,
                            p.updatedCols,
                        );
                    }
                }
            }
        }
    }

    /// Whether the current role owns the relation (or is a member of its owner's role).
    pub fn owns_relation(relid: pg_sys::Oid) -> bool {
        // SAFETY: a syscache lookup inside a transaction; a missing relation is not owned.
        unsafe {
            if pg_sys::get_rel_relkind(relid) == 0 {
                return false;
            }
            #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
            {
                pg_sys::pg_class_ownercheck(relid, pg_sys::GetUserId())
            }
            #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
            {
                pg_sys::object_ownercheck(pg_sys::RelationRelationId, relid, pg_sys::GetUserId())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn running_is_the_version_built_for() {
        assert_eq!(super::running().major, pgrx::pg_sys::PG_VERSION_NUM / 10000);
    }
}
