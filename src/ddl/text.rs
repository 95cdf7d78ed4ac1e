//! The SQL text of the statement being executed.

use pgrx::{PgList, pg_sys};

/// The most of a statement's text the guard keeps (history stores it, messages quote it, its
/// leading comments carry the directives): a longer statement is cut here, and is then not
/// `exact`.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// A multi-statement string longer than this is not searched for the boundaries of its
/// statements (their leading comments are then not theirs).
const MAX_SCANNED_SOURCE: usize = 16 << 20;

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
                text: slice(source, 0, 0),
                exact: false,
            });
        };
        let p = &*first;
        // From the end of the previous statement: PostgreSQL 18 starts a statement at its first
        // token, earlier versions just after the previous semicolon; either way the comments
        // before the statement (where directives live) belong to it.
        let start = own_start(source, p.stmt_location);
        let end = if p.stmt_len <= 0 || p.stmt_location < 0 {
            0
        } else {
            p.stmt_location + p.stmt_len - start
        };
        let text = slice(source, start, end);
        let whole =
            usize::try_from(end).map_or(source.len(), |e| if e == 0 { source.len() } else { e }) <= MAX_TEXT_BYTES;
        let exact = whole
            && stmts.len() == 1
            && p.commandType == pg_sys::CmdType::CMD_UTILITY
            && !p.utilityStmt.is_null()
            && (p.utilityStmt == parsetree || pg_sys::equal(p.utilityStmt.cast(), parsetree.cast()));
        Some(StatementText { text, exact })
    }
}

/// The text of the statement at `location` (length `len`, 0 = to the end) of `source`, from the
/// end of the previous statement, so that its leading comments (where directives live) belong
/// to it.
pub fn of_statement(source: &[u8], location: i32, len: i32) -> String {
    let start = own_start(source, location);
    let end = if len <= 0 || location < 0 {
        0
    } else {
        location + len - start
    };
    slice(source, start, end)
}

/// Where the statement at `location` begins, leading comments included: just after the last
/// top-level semicolon before it. The boundaries of a multi-statement string are found once
/// and remembered for the string's other statements (compared byte for byte).
fn own_start(source: &[u8], location: i32) -> i32 {
    use std::cell::RefCell;
    thread_local! {
        static BOUNDARIES: RefCell<(Vec<u8>, Vec<usize>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    }
    let Ok(loc) = usize::try_from(location) else {
        return location;
    };
    if loc == 0 || loc > source.len() || source.len() > MAX_SCANNED_SOURCE {
        return location;
    }
    let head = &source[..loc];
    // A single statement with nothing before it but comments: no semicolon to look for.
    if !head.contains(&b';') {
        return 0;
    }
    BOUNDARIES.with_borrow_mut(|(text, bounds)| {
        if text.as_slice() != source {
            *text = source.to_vec();
            *bounds = crate::sqltext::statement_boundaries(&String::from_utf8_lossy(source));
        }
        bounds.iter().rev().find(|&&b| b <= loc).map_or(0, |&b| b as i32)
    })
}

/// `source[location .. location + len]`; `len == 0` means "to the end", `location < 0` unknown;
/// at most [`MAX_TEXT_BYTES`] of it.
fn slice(source: &[u8], location: i32, len: i32) -> String {
    let start = usize::try_from(location).unwrap_or(0).min(source.len());
    let end = if len <= 0 {
        source.len()
    } else {
        (start + len as usize).min(source.len())
    };
    let end = end.min(start + MAX_TEXT_BYTES);
    String::from_utf8_lossy(&source[start..end]).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::{own_start, slice};

    #[test]
    fn statements_begin_after_the_previous_semicolon() {
        let src = b"CREATE TABLE a(); /* x; */ CREATE INDEX ON a (b); SELECT ';'; -- c\nDROP TABLE a";
        // 18 points at the first token, earlier versions just after the semicolon.
        let create_index = src.windows(6).position(|w| w == b"CREATE").map(|_| 27).unwrap();
        assert_eq!(own_start(src, create_index), 17);
        assert_eq!(own_start(src, 17), 17);
        let drop = src.windows(4).position(|w| w == b"DROP").unwrap();
        assert_eq!(own_start(src, drop as i32), 61);
        assert_eq!(own_start(b"/* migrate_guard:allow x */ CREATE INDEX ON a (b)", 28), 0);
        assert_eq!(own_start(src, 0), 0);
    }

    #[test]
    fn slices_statement_locations() {
        let src = b"CREATE TABLE a(); /* x */ CREATE INDEX ON a (b); SELECT 1";
        assert_eq!(slice(src, 0, 16), "CREATE TABLE a()");
        assert_eq!(slice(src, 17, 30), "/* x */ CREATE INDEX ON a (b)");
        assert_eq!(slice(src, 49, 0), "SELECT 1");
        assert_eq!(slice(src, -1, 0), String::from_utf8_lossy(src));
    }
}
