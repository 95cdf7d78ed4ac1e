//! Checks of the `set_clause` and `where_clause` a backfill is given, before anything runs.
//!
//! The clauses are pasted into the UPDATE each batch runs, so they must be exactly what they claim
//! to be: a SET list and one boolean expression. A clause that closes a parenthesis it did not
//! open, ends the statement, or smuggles in `FROM`/`WHERE`/`RETURNING` would change which rows a
//! batch touches; it is refused with SQLSTATE 42601 before the first batch.

use crate::sqltext::{Piece, lex};
use pgrx::PgList;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CString;

/// A problem with a clause, as the message of a 42601 error.
pub type Problem = String;

/// Lexical shape: parentheses balanced and never closed before they are opened, no `;` outside
/// literals and comments, and something besides comments.
pub fn check_shape(what: &str, clause: &str) -> Result<(), Problem> {
    let mut depth = 0i32;
    let mut code = false;
    for p in lex(clause) {
        match p {
            Piece::Other("(") => depth += 1,
            Piece::Other(")") => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("{what} closes a parenthesis it did not open"));
                }
            }
            Piece::Other(";") => {
                return Err(format!(
                    "{what} must not contain \";\": it is part of one UPDATE statement"
                ));
            }
            _ => {}
        }
        code |= !matches!(p, Piece::Space(_) | Piece::Comment(_));
    }
    if depth != 0 {
        return Err(format!("{what} leaves a parenthesis open"));
    }
    if !code {
        return Err(format!("{what} is empty"));
    }
    Ok(())
}

/// The columns a SET list assigns, checked with PostgreSQL's own parser: the list must parse as
/// the SET list of an UPDATE and nothing more.
pub fn set_targets(set_clause: &str) -> Result<Vec<String>, Problem> {
    check_shape("set_clause", set_clause)?;
    let stmt = parse_one("set_clause", &format!("UPDATE mg_target SET\n{set_clause}\n"))?;
    // SAFETY: parse_one returned a statement node of the raw parse tree.
    unsafe {
        if !pgrx::is_a(stmt, pg_sys::NodeTag::T_UpdateStmt) {
            return Err("set_clause must be a list of column = value assignments".into());
        }
        let u = &*(stmt as *mut pg_sys::UpdateStmt);
        if !u.fromClause.is_null()
            || !u.whereClause.is_null()
            || crate::server::compat::update_returns(u)
            || !u.withClause.is_null()
        {
            return Err("set_clause must only assign columns (no FROM, WHERE or RETURNING): \
                        give the condition as where_clause"
                .into());
        }
        let targets = PgList::<pg_sys::ResTarget>::from_pg(u.targetList);
        Ok(targets.iter_ptr().filter_map(|t| crate::ddl::cstr((*t).name)).collect())
    }
}

/// Checks that the where clause is one expression, with PostgreSQL's own parser: parsed as
/// `(clause) AND sentinel`, the top of the tree must be an AND whose last operand is the
/// sentinel. A clause that closes its parenthesis early (`a) OR (b`) does not give that shape,
/// however its quotes and escapes are read.
pub fn check_where(where_clause: &str) -> Result<(), Problem> {
    const SENTINEL: &str = "mg_where_sentinel";
    check_shape("where_clause", where_clause)?;
    let stmt = parse_one(
        "where_clause",
        &format!("SELECT WHERE (\n{where_clause}\n) AND {SENTINEL}"),
    )?;
    let one_expression = || -> Problem { "where_clause must be one boolean expression".into() };
    // SAFETY: nodes of the raw parse tree, checked by tag before each cast.
    unsafe {
        if !pgrx::is_a(stmt, pg_sys::NodeTag::T_SelectStmt) {
            return Err(one_expression());
        }
        let s = &*(stmt as *mut pg_sys::SelectStmt);
        if !s.groupClause.is_null() || !s.havingClause.is_null() || !s.sortClause.is_null() || !s.limitCount.is_null() {
            return Err(one_expression());
        }
        let top = s.whereClause;
        if top.is_null() || !pgrx::is_a(top, pg_sys::NodeTag::T_BoolExpr) {
            return Err(one_expression());
        }
        let and = &*(top as *mut pg_sys::BoolExpr);
        let args = PgList::<pg_sys::Node>::from_pg(and.args);
        let last = args.get_ptr(args.len().saturating_sub(1));
        let ends_with_sentinel = and.boolop == pg_sys::BoolExprType::AND_EXPR
            && last.is_some_and(|n| {
                pgrx::is_a(n, pg_sys::NodeTag::T_ColumnRef)
                    && crate::ddl::string_list((*(n as *mut pg_sys::ColumnRef)).fields) == [SENTINEL]
            });
        if !ends_with_sentinel {
            return Err(one_expression());
        }
    }
    Ok(())
}

/// The only statement of `sql`, through the raw parser (no catalog access); a syntax error
/// becomes a problem that names the clause.
fn parse_one(what: &str, sql: &str) -> Result<*mut pg_sys::Node, Problem> {
    let c = CString::new(sql).map_err(|_| format!("{what} contains a NUL byte"))?;
    let parsed = PgTryBuilder::new(|| {
        // SAFETY: the raw parser only reads the string; errors are caught below.
        Ok(unsafe { crate::server::compat::raw_parse(c.as_ptr()) })
    })
    .catch_when(PgSqlErrorCode::ERRCODE_SYNTAX_ERROR, |e| match e {
        pgrx::pg_sys::panic::CaughtError::PostgresError(r) => Err(format!("{what} is not valid SQL: {}", r.message())),
        other => other.rethrow(),
    })
    .execute()?;
    // SAFETY: raw_parser returns a List of RawStmt.
    let stmts = unsafe { PgList::<pg_sys::RawStmt>::from_pg(parsed) };
    if stmts.len() != 1 {
        return Err(format!("{what} must not contain more than one statement"));
    }
    // SAFETY: one RawStmt, just checked.
    Ok(unsafe { (*stmts.get_ptr(0).expect("one statement")).stmt })
}

#[cfg(test)]
mod tests {
    use super::check_shape;

    #[test]
    fn balanced_clauses_pass() {
        for ok in [
            "a = lower(b)",
            "a = (SELECT max(x) FROM t WHERE t.id = r.id)",
            "a = ')' || '('",
            "a = $$;$$",
            "note = 'x' -- a comment (with a parenthesis",
        ] {
            assert_eq!(check_shape("set_clause", ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn clauses_that_would_escape_their_place_are_refused() {
        assert_eq!(
            check_shape("where_clause", "true) OR (true").unwrap_err(),
            "where_clause closes a parenthesis it did not open"
        );
        assert_eq!(
            check_shape("where_clause", "(a").unwrap_err(),
            "where_clause leaves a parenthesis open"
        );
        assert!(
            check_shape("set_clause", "a = 1; DROP TABLE t")
                .unwrap_err()
                .contains("\";\"")
        );
        assert_eq!(
            check_shape("set_clause", "  -- nothing\n").unwrap_err(),
            "set_clause is empty"
        );
    }
}
