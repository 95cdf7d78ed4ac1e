//! The SQL text of the statement being executed.

use pgrx::{PgList, pg_sys};

/// Text the client sent for the statement now running, and whether that statement is exactly
/// `parsetree` (rather than, say, a DO block or function call that runs it).
pub struct StatementText {
    pub text: String,
    pub exact: bool,
}

/// Find the running top-level statement through the active portal: its `PlannedStmt` knows its
/// location inside the query string, so a multi-statement string yields only this statement.
///
/// # Safety
/// Must be called inside a transaction, in a backend, with `parsetree` a valid node.
pub unsafe fn current(parsetree: *mut pg_sys::Node) -> Option<StatementText> {
    unsafe {
        let portal = pg_sys::ActivePortal;
        if portal.is_null() || (*portal).sourceText.is_null() {
            return None;
        }
        let source = core::ffi::CStr::from_ptr((*portal).sourceText).to_bytes();
        let stmts = PgList::<pg_sys::PlannedStmt>::from_pg((*portal).stmts);
        let Some(first) = stmts.get_ptr(0) else {
            return Some(StatementText {
                text: String::from_utf8_lossy(source).into_owned(),
                exact: false,
            });
        };
        let p = &*first;
        let text = slice(source, p.stmt_location, p.stmt_len);
        let exact = stmts.len() == 1
            && p.commandType == pg_sys::CmdType::CMD_UTILITY
            && !p.utilityStmt.is_null()
            && (p.utilityStmt == parsetree || pg_sys::equal(p.utilityStmt.cast(), parsetree.cast()));
        Some(StatementText { text, exact })
    }
}

/// `source[location .. location + len]`; `len == 0` means "to the end", `location < 0` unknown.
fn slice(source: &[u8], location: i32, len: i32) -> String {
    let start = usize::try_from(location).unwrap_or(0).min(source.len());
    let end = if len <= 0 {
        source.len()
    } else {
        (start + len as usize).min(source.len())
    };
    String::from_utf8_lossy(&source[start..end]).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::slice;

    #[test]
    fn slices_statement_locations() {
        let src = b"CREATE TABLE a(); /* x */ CREATE INDEX ON a (b); SELECT 1";
        assert_eq!(slice(src, 0, 16), "CREATE TABLE a()");
        assert_eq!(slice(src, 17, 30), "/* x */ CREATE INDEX ON a (b)");
        assert_eq!(slice(src, 49, 0), "SELECT 1");
        assert_eq!(slice(src, -1, 0), String::from_utf8_lossy(src));
    }
}
