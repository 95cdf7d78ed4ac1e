//! Pure helpers over SQL text: a small lexer that knows comments, string literals, quoted
//! identifiers and dollar quoting; identifier quoting; size formatting.
//!
//! Used to find `migrate_guard:allow` directives (only inside comments, never inside literals)
//! and to write a statement's safe alternative from its own text.

/// PostgreSQL 15 keywords that are not UNRESERVED (`parser/kwlist.h`): an identifier spelled like
/// one of these must be quoted.
const QUOTED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// Quote an identifier the way PostgreSQL's `quote_ident` does.
pub fn quote_ident(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !QUOTED_KEYWORDS.contains(&s);
    if safe {
        s.to_owned()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// `sql` with every reference to the identifier `old` (a bare word that folds to it, or a quoted
/// identifier spelling it exactly) replaced by `new`, quoted as needed. String literals and
/// comments are left alone. For index definitions, whose column references are unqualified.
/// A qualified name from its parts, each quoted where needed: `public."Order Items"`.
pub fn quote_qualified(parts: &[String]) -> String {
    parts.iter().map(|p| quote_ident(p)).collect::<Vec<_>>().join(".")
}

pub fn replace_identifier(sql: &str, old: &str, new: &str) -> String {
    let replacement = quote_ident(new);
    let mut out = String::with_capacity(sql.len() + replacement.len());
    for piece in lex(sql) {
        let matches = match piece {
            Piece::Word(w) => w.to_ascii_lowercase() == old && quote_ident(old) == old,
            Piece::QuotedIdent(q) => q.len() >= 2 && q[1..q.len() - 1].replace("\"\"", "\"") == old,
            _ => false,
        };
        out.push_str(if matches { &replacement } else { piece.text() });
    }
    out
}

/// Quote a string literal.
pub fn quote_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Format a byte count like `pg_size_pretty(bigint)`.
pub fn pretty_size(bytes: u64) -> String {
    const LIMIT: u64 = 10 * 1024;
    if bytes < LIMIT {
        return format!("{bytes} bytes");
    }
    let units = ["kB", "MB", "GB", "TB", "PB"];
    // Keep one extra bit for rounding, as PostgreSQL does.
    let mut size = bytes >> 9;
    for (i, unit) in units.iter().enumerate() {
        if size < LIMIT * 2 - 1 || i == units.len() - 1 {
            return format!("{} {}", size.div_ceil(2), unit);
        }
        size >>= 10;
    }
    unreachable!()
}

/// A lexical piece of SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A bare word (keyword or unquoted identifier).
    Word(&'a str),
    /// A `-- …` or `/* … */` comment, delimiters included.
    Comment(&'a str),
    /// A string literal or dollar-quoted string, delimiters included.
    Literal(&'a str),
    /// A `"quoted identifier"`, quotes included.
    QuotedIdent(&'a str),
    Space(&'a str),
    /// Any other single character (punctuation, operators, digits).
    Other(&'a str),
}

impl<'a> Piece<'a> {
    pub fn text(&self) -> &'a str {
        match *self {
            Piece::Word(s)
            | Piece::Comment(s)
            | Piece::Literal(s)
            | Piece::QuotedIdent(s)
            | Piece::Space(s)
            | Piece::Other(s) => s,
        }
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// Split SQL text into pieces. Unterminated literals or comments run to the end of the text.
pub fn lex(sql: &str) -> Vec<Piece<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = b[i];
        let piece = if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            Piece::Comment(&sql[start..i])
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            Piece::Comment(&sql[start..i.min(b.len())])
        } else if c == b'\'' {
            // E'…' escapes are handled where the E prefix is seen (below).
            i = scan_quoted(b, i, b'\'', false);
            Piece::Literal(&sql[start..i])
        } else if c == b'"' {
            i = scan_quoted(b, i, b'"', false);
            Piece::QuotedIdent(&sql[start..i])
        } else if c == b'$' && dollar_tag(b, i).is_some() {
            let tag_end = dollar_tag(b, i).unwrap_or(i + 1);
            let tag = &b[i..tag_end];
            i = tag_end;
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i..].starts_with(tag) {
                    i += tag.len();
                    break;
                }
                i += 1;
            }
            Piece::Literal(&sql[start..i.min(b.len())])
        } else if is_ident_start(c) {
            if (c == b'e' || c == b'E') && b.get(i + 1) == Some(&b'\'') {
                i = scan_quoted(b, i + 1, b'\'', true);
                Piece::Literal(&sql[start..i])
            } else {
                while i < b.len() && is_ident_cont(b[i]) {
                    i += 1;
                }
                Piece::Word(&sql[start..i])
            }
        } else if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            Piece::Space(&sql[start..i])
        } else {
            i += 1;
            while !sql.is_char_boundary(i) {
                i += 1;
            }
            Piece::Other(&sql[start..i])
        };
        out.push(piece);
    }
    out
}

/// End of a quoted token starting at `start` (which holds `quote`); doubled quotes continue it.
fn scan_quoted(b: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// If a dollar-quote opening tag (`$$` or `$tag$`) starts at `i`, the index just after it.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None; // $1 parameter
    }
    while j < b.len() && b[j] != b'$' {
        if !is_ident_cont(b[j]) || b[j] == b'$' {
            return None;
        }
        j += 1;
    }
    (j < b.len()).then_some(j + 1)
}

/// Byte offsets just after each top-level `;` of `sql` (outside literals, quoted identifiers and
/// comments), in order: where each statement of a multi-statement string begins, its leading
/// comments included.
pub fn statement_boundaries(sql: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    for piece in lex(sql) {
        at += piece.text().len();
        if piece == Piece::Other(";") {
            out.push(at);
        }
    }
    out
}

/// Rule ids named by `migrate_guard:allow` directives in the comments of `sql`, in order. The
/// ids are returned as written (lower-cased); the policy validates them.
pub fn directive_rules(sql: &str) -> Vec<String> {
    const MARK: &str = "migrate_guard:allow";
    let mut out = Vec::new();
    for piece in lex(sql) {
        let Piece::Comment(c) = piece else { continue };
        let lower = c.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(pos) = rest.find(MARK) {
            rest = &rest[pos + MARK.len()..];
            // `migrate_guard:allow rule-a, rule-b` — ids are [a-z0-9-]+, separated by commas.
            let mut s = rest.trim_start_matches([' ', '\t', '=', ':']);
            loop {
                let len = s
                    .bytes()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
                    .count();
                if len == 0 {
                    break;
                }
                out.push(s[..len].to_owned());
                s = s[len..].trim_start_matches([' ', '\t']);
                match s.strip_prefix(',') {
                    Some(after) => s = after.trim_start_matches([' ', '\t', '\n', '\r']),
                    None => break,
                }
            }
        }
    }
    out
}

/// The statement as code only: comments dropped, runs of whitespace outside literals collapsed,
/// trailing semicolon removed. Used to quote the statement back in hints.
pub fn compact(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for piece in lex(sql) {
        match piece {
            Piece::Comment(_) | Piece::Space(_) => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            p => out.push_str(p.text()),
        }
    }
    let trimmed = out.trim().trim_end_matches(';').trim_end();
    trimmed.to_owned()
}

/// `compact(sql)` with `insertion` placed right after the first run of code words matching
/// `after` (case-insensitive), e.g. `after = ["INDEX"]`, `insertion = "CONCURRENTLY"`.
/// Returns `None` when the words are not found.
pub fn insert_after_words(sql: &str, after: &[&str], insertion: &str) -> Option<String> {
    let code = compact(sql);
    let pieces = lex(&code);
    let words: Vec<(usize, &Piece)> = pieces
        .iter()
        .enumerate()
        .filter(|(_, p)| !matches!(p, Piece::Space(_)))
        .collect();
    'outer: for w in 0..words.len() {
        for (k, want) in after.iter().enumerate() {
            match words.get(w + k) {
                Some((_, Piece::Word(s))) if s.eq_ignore_ascii_case(want) => {}
                _ => continue 'outer,
            }
        }
        let last_piece = words[w + after.len() - 1].0;
        let mut out = String::new();
        for (i, p) in pieces.iter().enumerate() {
            out.push_str(p.text());
            if i == last_piece {
                out.push(' ');
                out.push_str(insertion);
            }
        }
        return Some(out);
    }
    None
}

/// `sql` with every string literal (quoted or dollar-quoted) replaced by `'<redacted>'`.
pub fn redact_literals(sql: &str) -> String {
    lex(sql)
        .into_iter()
        .map(|p| match p {
            Piece::Literal(_) => "'<redacted>'",
            p => p.text(),
        })
        .collect()
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_an_identifier_outside_literals() {
        use super::replace_identifier;
        assert_eq!(
            replace_identifier("USING btree (id)", "id", "id_new"),
            "USING btree (id_new)"
        );
        assert_eq!(
            replace_identifier(
                "USING btree (lower(email)) WHERE (email <> 'email'::text)",
                "email",
                "Mail"
            ),
            "USING btree (lower(\"Mail\")) WHERE (\"Mail\" <> 'email'::text)"
        );
        assert_eq!(replace_identifier("(\"User Id\", ID2)", "User Id", "uid"), "(uid, ID2)");
        // A bare word folds to lower case; a mixed-case column is only ever quoted.
        assert_eq!(replace_identifier("(Id, \"Id\")", "Id", "x"), "(Id, x)");
        assert_eq!(replace_identifier("(ID)", "id", "x"), "(x)");
    }

    use super::*;

    #[test]
    fn redacts_every_literal() {
        assert_eq!(
            redact_literals("CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'hunter2')"),
            "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user '<redacted>', password '<redacted>')"
        );
        assert_eq!(
            redact_literals("SELECT $x$secret$x$, E'a\\'b', \"ident\""),
            "SELECT '<redacted>', '<redacted>', \"ident\""
        );
    }

    #[test]
    fn escapes_json_strings() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn quotes_identifiers_like_postgres() {
        assert_eq!(quote_ident("accounts"), "accounts");
        assert_eq!(quote_ident("Accounts"), "\"Accounts\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("my table"), "\"my table\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("_x1"), "_x1");
        assert_eq!(quote_ident("1x"), "\"1x\"");
        // unreserved keywords need no quotes
        assert_eq!(quote_ident("name"), "name");
    }

    #[test]
    fn formats_sizes_like_pg_size_pretty() {
        assert_eq!(pretty_size(0), "0 bytes");
        assert_eq!(pretty_size(10239), "10239 bytes");
        assert_eq!(pretty_size(10240), "10 kB");
        assert_eq!(pretty_size(8192 * 9), "72 kB");
        assert_eq!(pretty_size(8192 * 1024), "8192 kB");
        assert_eq!(pretty_size(20 * 1024 * 1024), "20 MB");
        assert_eq!(pretty_size(1536 * 1024 * 1024 * 10), "15 GB");
    }

    #[test]
    fn lexes_comments_literals_and_dollar_quotes() {
        let sql = "CREATE /* a /* nested */ b */ x -- tail\n'it''s' E'\\'' $f$ -- not $f$ \"q\"\"i\" $1";
        let kinds: Vec<_> = lex(sql).into_iter().filter(|p| !matches!(p, Piece::Space(_))).collect();
        assert_eq!(kinds[0], Piece::Word("CREATE"));
        assert_eq!(kinds[1], Piece::Comment("/* a /* nested */ b */"));
        assert_eq!(kinds[2], Piece::Word("x"));
        assert_eq!(kinds[3], Piece::Comment("-- tail"));
        assert_eq!(kinds[4], Piece::Literal("'it''s'"));
        assert_eq!(kinds[5], Piece::Literal("E'\\''"));
        assert_eq!(kinds[6], Piece::Literal("$f$ -- not $f$"));
        assert_eq!(kinds[7], Piece::QuotedIdent("\"q\"\"i\""));
        assert_eq!(kinds[8], Piece::Other("$"));
    }

    #[test]
    fn finds_directives_only_in_comments() {
        assert_eq!(
            directive_rules("/* migrate_guard:allow blocking-index, set-not-null */ CREATE INDEX"),
            vec!["blocking-index", "set-not-null"]
        );
        assert_eq!(
            directive_rules("CREATE INDEX -- Migrate_Guard:Allow blocking-index because\n ON t"),
            vec!["blocking-index"]
        );
        assert!(directive_rules("COMMENT ON TABLE t IS 'migrate_guard:allow blocking-index'").is_empty());
        assert!(directive_rules("SELECT $$ /* migrate_guard:allow x */ $$").is_empty());
        assert_eq!(directive_rules("/* migrate_guard:allow all */"), vec!["all"]);
        assert_eq!(
            directive_rules("-- migrate_guard:allow a\n-- migrate_guard:allow b ,c"),
            vec!["a", "b", "c"]
        );
        assert!(directive_rules("/* migrate_guard:allow */").is_empty());
    }

    #[test]
    fn compacts_statements() {
        assert_eq!(
            compact("  /* x */ CREATE   INDEX\n  ON t (a) ; "),
            "CREATE INDEX ON t (a)"
        );
        assert_eq!(compact("SELECT 'a  b' -- c\n;"), "SELECT 'a  b'");
    }

    #[test]
    fn inserts_keywords_after_words() {
        assert_eq!(
            insert_after_words(
                "create unique index if not exists i on t (a);",
                &["INDEX"],
                "CONCURRENTLY"
            )
            .unwrap(),
            "create unique index CONCURRENTLY if not exists i on t (a)"
        );
        assert_eq!(
            insert_after_words("CREATE INDEX \"index\" ON t (a)", &["INDEX"], "CONCURRENTLY").unwrap(),
            "CREATE INDEX CONCURRENTLY \"index\" ON t (a)"
        );
        assert_eq!(
            insert_after_words(
                "REFRESH MATERIALIZED VIEW mv",
                &["MATERIALIZED", "VIEW"],
                "CONCURRENTLY"
            )
            .unwrap(),
            "REFRESH MATERIALIZED VIEW CONCURRENTLY mv"
        );
        assert!(insert_after_words("DROP TABLE t", &["INDEX"], "CONCURRENTLY").is_none());
    }
}
