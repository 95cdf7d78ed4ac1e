//! A migration script as psql would run it: meta-commands set aside, statements located by line
//! and column, and each statement's text as psql sends it. Pure text work, no server.

use crate::sqltext::{Piece, lex};

/// What psql does with a backslash command inside a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaCommand {
    /// 1-based line of the backslash.
    pub line: usize,
    /// The command as written, e.g. `\set ON_ERROR_STOP 1`.
    pub text: String,
}

/// The script with psql's meta-commands replaced by blanks (so that every offset still points
/// into the original text): `\set …`, `\i …`, `\if …` lines are client commands the server never
/// sees; `\gset`, `\g`, `\gx`, `\gexec`, `\gdesc` end the statement before them like a
/// semicolon; `\;` separates statements sent together. Backslashes inside literals, quoted
/// identifiers and comments are left alone.
pub fn without_meta_commands(script: &str) -> (String, Vec<MetaCommand>) {
    let mut out = String::with_capacity(script.len());
    let mut commands = Vec::new();
    let pieces = lex(script);
    let mut offset = 0;
    let mut skip_to = 0;
    for (i, p) in pieces.iter().enumerate() {
        let start = offset;
        offset += p.text().len();
        if start < skip_to {
            // (A piece that runs past the end of the command's line keeps its remainder.)
            if offset > skip_to {
                out.push_str(&script[skip_to..offset]);
            }
            continue;
        }
        // `:'name'` and `:"name"`: psql puts the variable's value there, quoted as a literal or
        // an identifier; the statement is read with `'name'` / `"name"` in its place (the colon
        // becomes a blank), so that `COPY t FROM :'file'` still counts as filling `t`.
        if *p == Piece::Other(":")
            && (i == 0 || pieces[i - 1] != Piece::Other(":"))
            && pieces.get(i + 1).is_some_and(|n| {
                matches!(n, Piece::QuotedIdent(_)) || matches!(n, Piece::Literal(t) if t.starts_with('\''))
            })
        {
            out.push(' ');
            continue;
        }
        if *p != Piece::Other("\\") {
            out.push_str(p.text());
            continue;
        }
        if pieces.get(i + 1) == Some(&Piece::Other(";")) {
            out.push(' ');
            continue;
        }
        // The command runs to the end of the line; blanks keep every later offset in place.
        let end = script[start..].find('\n').map_or(script.len(), |n| start + n);
        let command = script[start..end].trim_end();
        let word: String = command[1..].chars().take_while(char::is_ascii_alphanumeric).collect();
        if matches!(word.as_str(), "g" | "gset" | "gx" | "gexec" | "gdesc") {
            out.push(';');
            out.push_str(&" ".repeat(end - start - 1));
        } else {
            out.push_str(&" ".repeat(end - start));
            commands.push(MetaCommand {
                line: line_of(script, start),
                text: command.to_owned(),
            });
        }
        skip_to = end;
    }
    (out, commands)
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// 1-based (line, column) of a byte offset; the column counts characters.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |n| n + 1);
    (line_of(text, offset), text[line_start..offset].chars().count() + 1)
}

/// Offset of the first token at or after `from` (whitespace and comments skipped), within
/// `text[from..to]`; `to` when there is none.
pub fn first_token(text: &str, from: usize, to: usize) -> usize {
    let mut at = from;
    for p in lex(&text[from..to]) {
        match p {
            Piece::Space(_) | Piece::Comment(_) => at += p.text().len(),
            _ => return at,
        }
    }
    to
}

/// The text psql sends for the statement in `text[from..to]` (`from` just after the previous
/// statement): psql drops the whitespace and `--` comment lines before a statement, and keeps
/// `/* … */` comments, where directives therefore belong.
pub fn client_text(text: &str, from: usize, to: usize) -> &str {
    let mut at = from;
    for p in lex(&text[from..to]) {
        match p {
            Piece::Space(_) => at += p.text().len(),
            Piece::Comment(c) if c.starts_with("--") => at += c.len(),
            _ => break,
        }
    }
    text[at.min(to)..to].trim_end()
}

/// Statement spans `[from, to)` of a script that does not parse as a whole: split at top-level
/// semicolons, keeping `BEGIN ATOMIC … END` bodies of SQL functions together as psql does.
pub fn split(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut at = 0;
    let mut atomic_depth = 0usize;
    let mut previous_word = String::new();
    for p in lex(text) {
        let len = p.text().len();
        match p {
            Piece::Word(w) => {
                let upper = w.to_ascii_uppercase();
                if (upper == "ATOMIC" && previous_word == "BEGIN") || (atomic_depth > 0 && upper == "CASE") {
                    atomic_depth += 1;
                } else if atomic_depth > 0 && upper == "END" {
                    atomic_depth -= 1;
                }
                previous_word = upper;
            }
            Piece::Other(";") if atomic_depth == 0 => {
                spans.push((start, at));
                start = at + 1;
            }
            Piece::Space(_) | Piece::Comment(_) => {}
            _ => previous_word.clear(),
        }
        at += len;
    }
    if !text[start..].trim().is_empty() && first_token(text, start, text.len()) < text.len() {
        spans.push((start, text.len()));
    }
    spans
}

/// A comma-separated list of identifiers, as PostgreSQL reads `search_path`
/// (`SplitIdentifierString`): double quotes keep case and commas, `""` is a quote, unquoted
/// names are folded to lower case; names are cut to 63 bytes. A malformed list gives what was
/// read before the error.
pub fn split_identifiers(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = list.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        match chars.peek() {
            None => break,
            Some('"') => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return out,
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            name.push('"');
                        }
                        Some('"') => break,
                        Some(c) => name.push(c),
                    }
                }
            }
            Some(_) => {
                while let Some(&c) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    name.push(c.to_ascii_lowercase());
                    chars.next();
                }
                if name.is_empty() {
                    return out;
                }
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut len = name.len().min(63);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        name.truncate(len);
        out.push(name);
        match chars.next() {
            Some(',') => continue,
            _ => break,
        }
    }
    out
}

/// Whether a statement uses psql variables (`:name`, `:'name'`, `:"name"`), which only psql
/// expands: outside literals, comments and quoted identifiers, and not a `::` cast.
pub fn has_psql_variable(text: &str) -> bool {
    let pieces = lex(text);
    pieces.windows(2).enumerate().any(|(i, w)| {
        w[0] == Piece::Other(":")
            && (i == 0 || pieces[i - 1] != Piece::Other(":"))
            && match &w[1] {
                Piece::Word(_) => true,
                p => p.text().starts_with('\'') || p.text().starts_with('"'),
            }
    })
}

/// Byte offsets of line starts, to turn offsets into lines and columns in O(log n).
pub struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines { text, starts }
    }

    /// 1-based (line, column) of a byte offset; the column counts characters.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_commands_are_blanked_and_reported() {
        let script = "\\set ON_ERROR_STOP 1\nSELECT 1 \\gset\nCREATE TABLE t (id int);\nSELECT '\\x' AS lit;\n";
        let (sql, commands) = without_meta_commands(script);
        assert_eq!(sql.len(), script.len(), "offsets are kept");
        assert_eq!(
            sql,
            "                    \nSELECT 1 ;    \nCREATE TABLE t (id int);\nSELECT '\\x' AS lit;\n"
        );
        assert_eq!(
            commands,
            vec![MetaCommand {
                line: 1,
                text: "\\set ON_ERROR_STOP 1".into()
            }]
        );
        let (sql, _) = without_meta_commands("COPY t FROM :'file'; SELECT :\"c\" FROM t, ':x', 1::int");
        assert_eq!(sql, "COPY t FROM  'file'; SELECT  \"c\" FROM t, ':x', 1::int");
        let (sql, _) = without_meta_commands("SELECT 1 \\; CREATE TABLE t ()");
        assert_eq!(sql, "SELECT 1  ; CREATE TABLE t ()");
    }

    #[test]
    fn lines_and_columns_count_characters() {
        let text = "-- é\nCREATE TABLE t ();\n  ALTER TABLE t ADD c int;";
        assert_eq!(line_col(text, 0), (1, 1));
        let alter = text.find("ALTER").unwrap();
        assert_eq!(line_col(text, alter), (3, 3));
        assert_eq!(first_token(text, 0, text.len()), text.find("CREATE").unwrap());
    }

    #[test]
    fn psql_sends_block_comments_but_not_leading_line_comments() {
        let text = "\n-- migrate_guard:allow blocking-index\n/* migrate_guard:allow drop-table */ DROP TABLE t";
        assert_eq!(
            client_text(text, 0, text.len()),
            "/* migrate_guard:allow drop-table */ DROP TABLE t"
        );
    }

    #[test]
    fn search_path_lists_split_like_postgres() {
        assert_eq!(split_identifiers("\"$user\", public"), vec!["$user", "public"]);
        assert_eq!(split_identifiers(" App ,\"My \"\"S\"\"\" "), vec!["app", "My \"S\""]);
        assert_eq!(split_identifiers(""), Vec::<String>::new());
        assert_eq!(split_identifiers("a,,b"), vec!["a"]);
    }

    #[test]
    fn psql_variables_are_recognised() {
        assert!(has_psql_variable("SELECT :v"));
        assert!(has_psql_variable("SET search_path = :'schema'"));
        assert!(!has_psql_variable("SELECT 1::int, ':v', a[1:2]"));
    }

    #[test]
    fn line_index_agrees_with_line_col() {
        let text = "-- é\nCREATE TABLE t ();\n  ALTER TABLE t ADD c int;\n";
        let lines = Lines::new(text);
        for offset in [0, 3, 5, 6, 20, text.find("ALTER").unwrap(), text.len()] {
            if text.is_char_boundary(offset) {
                assert_eq!(lines.line_col(offset), line_col(text, offset), "offset {offset}");
            }
        }
    }

    #[test]
    fn split_keeps_sql_function_bodies_whole() {
        let text = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3; ";
        let spans = split(text);
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert!(text[spans[0].0..spans[0].1].ends_with("END"));
        assert_eq!(text[spans[1].0..spans[1].1].trim(), "SELECT 3");
    }
}
