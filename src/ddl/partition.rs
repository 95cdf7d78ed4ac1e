//! What a new partition bound makes PostgreSQL scan, decided the way PostgreSQL decides it
//! (`ATExecAttachPartition`, `check_default_partition_contents`): the bound is transformed
//! against the parent, turned into the partition constraint, and PostgreSQL's own
//! `PartConstraintImpliedByRelConstraint` is asked whether the valid constraints of the table
//! being attached (and of the parent's default partition) already prove it.
//!
//! Only bounds made of constants are analysed (a bound that calls a function is evaluated when
//! it is transformed, and `check()` must run nothing of the script), and the analysis runs in a
//! subtransaction that is always rolled back, so that the lock PostgreSQL takes on a grandparent
//! to read its partition constraint is not kept.

use crate::catalog::probe;
use crate::model::{BoundScans, RelRef};
use core::ffi::c_int;
use pgrx::pg_sys;
use pgrx::pg_sys::ffi::pg_guard_ffi_boundary;

unsafe extern "C-unwind" {
    fn transformPartitionBound(
        pstate: *mut pg_sys::ParseState,
        parent: pg_sys::Relation,
        spec: *mut pg_sys::PartitionBoundSpec,
    ) -> *mut pg_sys::PartitionBoundSpec;
    fn get_default_partition_oid(parent: pg_sys::Oid) -> pg_sys::Oid;
    fn get_proposed_default_constraint(new_part_constraints: *mut pg_sys::List) -> *mut pg_sys::List;
    fn map_partition_varattnos(
        expr: *mut pg_sys::List,
        fromrel_varno: c_int,
        to_rel: pg_sys::Relation,
        from_rel: pg_sys::Relation,
    ) -> *mut pg_sys::List;
    fn RelationGetPartitionQual(rel: pg_sys::Relation) -> *mut pg_sys::List;
}

/// The scans a new partition with bound `bound` of `parent` needs; `partition` is the table
/// being attached (`None` for `CREATE TABLE … PARTITION OF`). `None` when the parent is not a
/// partitioned table of the catalog or the bound does not analyse (PostgreSQL will then report
/// the error itself).
///
/// # Safety
/// `bound` must be null or a raw `PartitionBoundSpec`; it is copied, never modified.
pub unsafe fn bound_scans(
    parent: &RelRef,
    partition: Option<&RelRef>,
    bound: *mut pg_sys::PartitionBoundSpec,
) -> Option<BoundScans> {
    if bound.is_null() || !unsafe { constant_bound(&*bound) } {
        return None;
    }
    let parent_oid = crate::catalog::resolve(parent)?;
    let partition_oid = match partition {
        Some(p) => Some(crate::catalog::resolve(p)),
        None => None,
    };
    probe(|| unsafe {
        let parent_rel = pg_sys::RelationIdGetRelation(parent_oid);
        if parent_rel.is_null() {
            return None;
        }
        let result = analyse(parent_rel, parent_oid, partition_oid, bound);
        pg_sys::RelationClose(parent_rel);
        result
    })
    .flatten()
}

unsafe fn analyse(
    parent: pg_sys::Relation,
    parent_oid: pg_sys::Oid,
    partition_oid: Option<Option<pg_sys::Oid>>,
    bound: *mut pg_sys::PartitionBoundSpec,
) -> Option<BoundScans> {
    unsafe {
        if (*(*parent).rd_rel).relkind as u8 != pg_sys::RELKIND_PARTITIONED_TABLE {
            return None;
        }
        let copy = pg_sys::copyObjectImpl(bound.cast()) as *mut pg_sys::PartitionBoundSpec;
        let pstate = pg_sys::make_parsestate(std::ptr::null_mut());
        let spec = pg_guard_ffi_boundary(|| transformPartitionBound(pstate, parent, copy));
        pg_sys::free_parsestate(pstate);
        let bound_qual = crate::server::compat::qual_from_partbound(parent, spec);

        // The parent's default partition is scanned for rows the new bound takes from it, unless
        // its constraints prove there are none.
        let default_oid = pg_guard_ffi_boundary(|| get_default_partition_oid(parent_oid));
        let default = if default_oid != pg_sys::InvalidOid && !(*spec).is_default {
            let d = pg_sys::RelationIdGetRelation(default_oid);
            if d.is_null() {
                None
            } else {
                let proposed = pg_guard_ffi_boundary(|| get_proposed_default_constraint(pg_sys::list_copy(bound_qual)));
                let mapped = pg_guard_ffi_boundary(|| map_partition_varattnos(proposed, 1, d, parent));
                let proved = pg_sys::PartConstraintImpliedByRelConstraint(d, mapped);
                let check = deparse(mapped, d);
                let name = relref_of(d);
                pg_sys::RelationClose(d);
                Some((name, proved, check))
            }
        } else {
            None
        };

        // The table being attached is scanned for rows outside the bound (and outside the
        // parent's own bound, when the parent is a partition too), unless its constraints prove
        // every row fits.
        let (partition_proved, bound_check) = match partition_oid {
            None => (Some(true), None),
            Some(None) => (None, None),
            Some(Some(oid)) => {
                let a = pg_sys::RelationIdGetRelation(oid);
                if a.is_null() {
                    (None, None)
                } else {
                    let mut qual = pg_sys::list_concat(
                        pg_sys::list_copy(bound_qual),
                        pg_guard_ffi_boundary(|| RelationGetPartitionQual(parent)),
                    );
                    let out = if qual.is_null() {
                        (Some(true), None)
                    } else {
                        // As ATExecAttachPartition does: the list, simplified, as one AND
                        // (canonicalize_qual takes no List: an assertion says so).
                        qual = pg_sys::eval_const_expressions(std::ptr::null_mut(), qual.cast()).cast();
                        let one = pg_sys::lappend(std::ptr::null_mut(), pg_sys::make_ands_explicit(qual).cast());
                        let mapped = pg_guard_ffi_boundary(|| map_partition_varattnos(one, 1, a, parent));
                        let proved = pg_sys::PartConstraintImpliedByRelConstraint(a, mapped);
                        (Some(proved), deparse(mapped, a))
                    };
                    pg_sys::RelationClose(a);
                    out
                }
            }
        };
        Some(BoundScans {
            partition_proved,
            bound_check,
            default: default.map(|(name, proved, check)| crate::model::DefaultScan {
                partition: name,
                proved,
                check,
            }),
        })
    }
}

/// Whether every datum of a raw bound is a constant: a literal, a cast of one, or MINVALUE /
/// MAXVALUE (which the grammar writes as column references).
unsafe fn constant_bound(b: &pg_sys::PartitionBoundSpec) -> bool {
    unsafe fn constant(n: *mut pg_sys::Node) -> bool {
        unsafe {
            if n.is_null() {
                return false;
            }
            match (*n).type_ {
                pg_sys::NodeTag::T_A_Const | pg_sys::NodeTag::T_ColumnRef => true,
                pg_sys::NodeTag::T_TypeCast => constant((*(n as *mut pg_sys::TypeCast)).arg),
                _ => false,
            }
        }
    }
    unsafe {
        [b.listdatums, b.lowerdatums, b.upperdatums].iter().all(|l| {
            pgrx::PgList::<pg_sys::Node>::from_pg(*l)
                .iter_ptr()
                .all(|n| constant(n))
        })
    }
}

/// A constraint list as the text of a CHECK expression on `rel`.
unsafe fn deparse(list: *mut pg_sys::List, rel: pg_sys::Relation) -> Option<String> {
    unsafe {
        if list.is_null() {
            return None;
        }
        let expr = pg_sys::make_ands_explicit(list);
        let name = (*(*rel).rd_rel).relname.data.as_ptr();
        let ctx = pg_sys::deparse_context_for(name, (*rel).rd_id);
        crate::ddl::cstr(pg_sys::deparse_expression(expr.cast(), ctx, false, false))
    }
}

unsafe fn relref_of(rel: pg_sys::Relation) -> RelRef {
    unsafe {
        let form = &*(*rel).rd_rel;
        let schema = crate::ddl::cstr(pg_sys::get_namespace_name(form.relnamespace));
        let name = core::ffi::CStr::from_ptr(form.relname.data.as_ptr())
            .to_string_lossy()
            .into_owned();
        RelRef { schema, name }
    }
}
