//! Analysis of raw expressions (column defaults) against the catalog: volatility is decided by
//! transforming the expression the way PostgreSQL does for a column default and asking
//! `contain_volatile_functions`, never from a list of function names.

use crate::catalog::try_catalog;
use crate::model::{Expr, Volatility};
use pgrx::pg_sys;

/// # Safety
/// `raw` must be null or a valid raw expression tree; it is copied, never modified.
pub unsafe fn analyse(raw: *mut pg_sys::Node) -> Expr {
    if raw.is_null() {
        return Expr {
            volatility: None,
            calls: vec![],
        };
    }
    // A literal, possibly cast (`0`, `'{}'::jsonb`), is folded into a constant when the default
    // is stored: immutable without asking the parser, and this is the common case.
    // SAFETY: tags checked before each cast.
    if unsafe { is_literal(raw) } {
        return Expr {
            volatility: Some(Volatility::Immutable),
            calls: vec![],
        };
    }
    let volatility = try_catalog(|| unsafe {
        // SAFETY: transformExpr may scribble on its input, so it gets a copy. A parse state with
        // no range table is exactly what a column default is analysed with (defaults cannot
        // reference columns; such an expression errors and is reported as unknown).
        let copy = pg_sys::copyObjectImpl(raw.cast()) as *mut pg_sys::Node;
        let pstate = pg_sys::make_parsestate(std::ptr::null_mut());
        let e = pg_sys::transformExpr(pstate, copy, pg_sys::ParseExprKind::EXPR_KIND_COLUMN_DEFAULT);
        pg_sys::free_parsestate(pstate);
        if pg_sys::contain_volatile_functions(e) {
            Volatility::Volatile
        } else if pg_sys::contain_mutable_functions(e) {
            Volatility::Stable
        } else {
            Volatility::Immutable
        }
    });
    // SAFETY: tag checked before the cast.
    let calls = unsafe {
        if (*raw).type_ == pg_sys::NodeTag::T_FuncCall {
            super::string_list((*(raw as *const pg_sys::FuncCall)).funcname)
                .pop()
                .into_iter()
                .collect()
        } else {
            vec![]
        }
    };
    Expr { volatility, calls }
}

unsafe fn is_literal(node: *mut pg_sys::Node) -> bool {
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_A_Const => true,
            pg_sys::NodeTag::T_TypeCast => {
                let arg = (*(node as *const pg_sys::TypeCast)).arg;
                !arg.is_null() && (*arg).type_ == pg_sys::NodeTag::T_A_Const
            }
            _ => false,
        }
    }
}
