//! PL/pgSQL bodies as `check()` reads them: the statements a `DO` block or a procedure the script
//! calls would run, in order, found from the body's text. Pure text work over
//! [`crate::sqltext::lex`], no server.
//!
//! The reader knows PL/pgSQL's structure (blocks with their declarations and exception handlers,
//! `IF` / `CASE` / loops, labels) and the statements that are not SQL (assignments, `RAISE`,
//! `RETURN`, `PERFORM`, `EXECUTE`, `COMMIT`, cursor commands). Every other statement is SQL
//! PL/pgSQL hands to the server as written, apart from its `INTO` targets, which are left out
//! here. What it cannot read (a string `EXECUTE` builds at run time, a body whose structure does
//! not parse) is said per statement.

use crate::sqltext::{Piece, lex};

/// What one statement of the body does, for `check()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An SQL statement run as written (`PERFORM …` read as `SELECT …`; `INTO` targets left out).
    Sql(String),
    /// `EXECUTE` of a constant string: the statement it runs.
    Execute(String),
    /// `EXECUTE` of a string built when the block runs.
    Dynamic,
    Commit {
        chain: bool,
    },
    Rollback {
        chain: bool,
    },
    /// A part of the body the reader could not follow, with the reason.
    Unreadable(String),
}

/// One statement of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Byte offset of its first token in the body.
    pub offset: usize,
    /// The statement as written, without its semicolon.
    pub text: String,
    pub action: Action,
    /// Inside an `IF`, a `CASE` or an exception handler: it may not run.
    pub conditional: bool,
    /// Inside a loop: it may run many times.
    pub in_loop: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// A block: still in its `DECLARE` section; in its exception handlers.
    Block {
        declaring: bool,
        handling: bool,
    },
    If,
    Case,
    Loop,
}

/// A significant token: its offset in the body and the piece.
type Token<'a> = (usize, Piece<'a>);

fn upper(t: Option<&Token>) -> String {
    match t {
        Some((_, Piece::Word(w))) => w.to_ascii_uppercase(),
        _ => String::new(),
    }
}

/// Index of the first word `word` at or after `from` that is part of the statement's own
/// structure: outside parentheses and outside `CASE … END` expressions.
fn find_word(tokens: &[Token], from: usize, word: &str) -> Option<usize> {
    let (mut parens, mut cases) = (0usize, 0usize);
    for (i, t) in tokens.iter().enumerate().skip(from) {
        match t.1 {
            Piece::Other("(") | Piece::Other("[") => parens += 1,
            Piece::Other(")") | Piece::Other("]") => parens = parens.saturating_sub(1),
            Piece::Word(w) if parens == 0 => {
                if w.eq_ignore_ascii_case("CASE") {
                    cases += 1;
                } else if w.eq_ignore_ascii_case("END") && cases > 0 {
                    cases -= 1;
                } else if cases == 0 && w.eq_ignore_ascii_case(word) {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The body's statements as PL/pgSQL splits them: at semicolons outside parentheses and outside
/// the `BEGIN ATOMIC … END` body of a function the block creates.
fn segments<'t, 'a>(tokens: &'t [Token<'a>]) -> Vec<&'t [Token<'a>]> {
    let mut out = Vec::new();
    let (mut start, mut parens, mut atomic) = (0, 0usize, 0usize);
    for (i, t) in tokens.iter().enumerate() {
        match t.1 {
            Piece::Other("(") => parens += 1,
            Piece::Other(")") => parens = parens.saturating_sub(1),
            Piece::Word(w) if w.eq_ignore_ascii_case("ATOMIC") && i > 0 && upper(tokens.get(i - 1)) == "BEGIN" => {
                atomic += 1;
            }
            Piece::Word(w) if atomic > 0 && w.eq_ignore_ascii_case("CASE") => atomic += 1,
            Piece::Word(w) if atomic > 0 && w.eq_ignore_ascii_case("END") => atomic -= 1,
            Piece::Other(";") if parens == 0 && atomic == 0 => {
                out.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&tokens[start..]);
    out
}

/// The open structures a statement sits in, with counts kept as frames come and go (a statement
/// asks them in constant time, however deep the nesting).
#[derive(Default)]
struct Nesting {
    stack: Vec<Frame>,
    conditional: usize,
    loops: usize,
}

impl Nesting {
    fn counts(f: Frame) -> (usize, usize) {
        match f {
            Frame::If | Frame::Case | Frame::Block { handling: true, .. } => (1, 0),
            Frame::Loop => (0, 1),
            Frame::Block { .. } => (0, 0),
        }
    }
    fn push(&mut self, f: Frame) {
        let (c, l) = Self::counts(f);
        self.conditional += c;
        self.loops += l;
        self.stack.push(f);
    }
    fn pop(&mut self) -> Option<Frame> {
        let f = self.stack.pop()?;
        let (c, l) = Self::counts(f);
        self.conditional -= c;
        self.loops -= l;
        Some(f)
    }
    fn top(&self) -> Option<Frame> {
        self.stack.last().copied()
    }
}

/// Structures nested deeper than this are not followed (PL/pgSQL's own parser gives up near
/// ten thousand).
const MAX_NESTING: usize = 1000;

/// The statements of a PL/pgSQL body (the text between the dollar quotes), in the order they are
/// written.
pub fn read(body: &str) -> Vec<Statement> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut at = 0;
    for p in lex(body) {
        if !matches!(p, Piece::Space(_) | Piece::Comment(_)) {
            tokens.push((at, p));
        }
        at += p.text().len();
    }
    let mut out = Vec::new();
    let mut n = Nesting::default();
    let mut seen_block = false;
    let unreadable = |n: &Nesting, offset: usize, text: &str, reason: String| Statement {
        offset,
        text: text.to_owned(),
        action: Action::Unreadable(reason),
        conditional: n.conditional > 0,
        in_loop: n.loops > 0,
    };
    'segments: for segment in segments(&tokens) {
        if segment.is_empty() {
            continue;
        }
        let end = segment.last().map_or(0, |(o, p)| o + p.text().len());
        let mut k = 0;
        while k < segment.len() {
            let text = &body[segment[k].0..end];
            if seen_block && n.stack.is_empty() {
                // After the block's END only a label may follow.
                if k + 1 < segment.len() || !matches!(segment[k].1, Piece::Word(_)) {
                    out.push(unreadable(
                        &n,
                        segment[k].0,
                        text,
                        "text after the block's END".to_owned(),
                    ));
                }
                break 'segments;
            }
            if n.stack.len() >= MAX_NESTING {
                out.push(unreadable(
                    &n,
                    segment[k].0,
                    text,
                    format!("structures nested more than {MAX_NESTING} deep"),
                ));
                break 'segments;
            }
            // A declaration (everything before BEGIN in a DECLARE section) says nothing to check().
            if let Some(Frame::Block { declaring: true, .. }) = n.top() {
                if upper(segment.get(k)) == "BEGIN" {
                    n.pop();
                    n.push(Frame::Block {
                        declaring: false,
                        handling: false,
                    });
                    k += 1;
                    continue;
                }
                break;
            }
            // <<label>>
            if segment[k].1 == Piece::Other("<") && segment.get(k + 1).is_some_and(|t| t.1 == Piece::Other("<")) {
                let close = (k + 2..segment.len().saturating_sub(1))
                    .find(|&i| segment[i].1 == Piece::Other(">") && segment[i + 1].1 == Piece::Other(">"));
                match close {
                    Some(i) => {
                        k = i + 2;
                        continue;
                    }
                    None => break,
                }
            }
            let after_then = |k: usize| find_word(segment, k + 1, "THEN").map(|i| i + 1).ok_or("THEN");
            let word = upper(segment.get(k));
            let top = n.top();
            // Ok(next token) for a structural word, Err(the word it lacks) when it is cut short;
            // None for END and for a statement.
            let next: Option<Result<usize, &str>> = match word.as_str() {
                "DECLARE" | "BEGIN" if upper(segment.get(k + 1)) != "ATOMIC" => {
                    n.push(Frame::Block {
                        declaring: word == "DECLARE",
                        handling: false,
                    });
                    seen_block = true;
                    Some(Ok(k + 1))
                }
                "EXCEPTION" if matches!(top, Some(Frame::Block { .. })) => {
                    n.pop();
                    n.push(Frame::Block {
                        declaring: false,
                        handling: true,
                    });
                    Some(Ok(k + 1))
                }
                "IF" => {
                    n.push(Frame::If);
                    Some(after_then(k))
                }
                "ELSIF" | "ELSEIF" if top == Some(Frame::If) => Some(after_then(k)),
                "ELSE" if matches!(top, Some(Frame::If | Frame::Case)) => Some(Ok(k + 1)),
                "CASE" => {
                    n.push(Frame::Case);
                    Some(after_then(k))
                }
                "WHEN" if matches!(top, Some(Frame::Case | Frame::Block { handling: true, .. })) => Some(after_then(k)),
                "LOOP" => {
                    n.push(Frame::Loop);
                    Some(Ok(k + 1))
                }
                "WHILE" | "FOR" | "FOREACH" => {
                    let lp = find_word(segment, k + 1, "LOOP");
                    // FOR … IN query LOOP: the query runs once, before the loop's statements.
                    if word == "FOR"
                        && let (Some(i), Some(l)) = (find_word(segment, k + 1, "IN"), lp)
                        && i + 1 < l
                        && !segment[i + 1..l]
                            .windows(2)
                            .any(|w| w[0].1 == Piece::Other(".") && w[1].1 == Piece::Other("."))
                    {
                        let q = &segment[i + 1..l];
                        let q_end = q[q.len() - 1].0 + q[q.len() - 1].1.text().len();
                        // (A cursor, FOR r IN cur(…) LOOP, is no query.)
                        if matches!(
                            upper(q.first()).as_str(),
                            "SELECT"
                                | "WITH"
                                | "VALUES"
                                | "TABLE"
                                | "INSERT"
                                | "UPDATE"
                                | "DELETE"
                                | "MERGE"
                                | "EXECUTE"
                        ) && let Some(action) = classify(body, q, q_end)
                        {
                            out.push(Statement {
                                offset: q[0].0,
                                text: body[q[0].0..q_end].to_owned(),
                                action,
                                conditional: n.conditional > 0,
                                in_loop: n.loops > 0,
                            });
                        }
                    }
                    n.push(Frame::Loop);
                    Some(lp.map(|i| i + 1).ok_or("LOOP"))
                }
                "END" => {
                    // END [IF | LOOP | CASE] [label]: nothing after it in this segment runs.
                    n.pop();
                    None
                }
                _ => {
                    if seen_block && let Some(action) = classify(body, &segment[k..], end) {
                        out.push(Statement {
                            offset: segment[k].0,
                            text: text.to_owned(),
                            action,
                            conditional: n.conditional > 0,
                            in_loop: n.loops > 0,
                        });
                    }
                    None
                }
            };
            match next {
                Some(Ok(next)) => k = next,
                Some(Err(lacks)) => {
                    out.push(unreadable(
                        &n,
                        segment[k].0,
                        text,
                        format!("{word} without its {lacks}"),
                    ));
                    break;
                }
                None => break,
            }
        }
    }
    if !seen_block {
        out.push(Statement {
            offset: 0,
            text: body.trim().to_owned(),
            action: Action::Unreadable("the body has no BEGIN … END block".to_owned()),
            conditional: false,
            in_loop: false,
        });
    }
    out
}

/// What the statement `tokens` (running to `end` in `body`) does; `None` for one that changes
/// nothing `check()` follows (an assignment, `RAISE`, `RETURN`, cursor commands, …).
fn classify(body: &str, tokens: &[Token], end: usize) -> Option<Action> {
    let start = tokens[0].0;
    let word = upper(tokens.first());
    match word.as_str() {
        "NULL" | "RAISE" | "RETURN" | "EXIT" | "CONTINUE" | "GET" | "ASSERT" | "OPEN" | "FETCH" | "MOVE" | "CLOSE" => {
            return None;
        }
        "ROLLBACK" if find_word(tokens, 1, "TO").is_some() => {
            return Some(Action::Unreadable("ROLLBACK TO SAVEPOINT is not PL/pgSQL".to_owned()));
        }
        "COMMIT" | "ROLLBACK" => {
            let chain = find_word(tokens, 1, "CHAIN").is_some() && find_word(tokens, 1, "NO").is_none();
            return Some(if word == "COMMIT" {
                Action::Commit { chain }
            } else {
                Action::Rollback { chain }
            });
        }
        "PERFORM" => {
            let rest = tokens.get(1).map_or(end, |t| t.0);
            return Some(Action::Sql(format!(
                "SELECT {}",
                without_into(body, &tokens[1..], rest, end)
            )));
        }
        "EXECUTE" => {
            // EXECUTE 'constant' [INTO …] [USING …]: the constant is the statement (its $n
            // parameters are USING's values); anything else (a concatenation, format()) is
            // built when the block runs.
            let into = find_word(tokens, 1, "INTO")
                .into_iter()
                .chain(find_word(tokens, 1, "USING"))
                .min()
                .unwrap_or(tokens.len());
            return Some(match &tokens[1..into] {
                [(_, Piece::Literal(l))] => match literal_value(l) {
                    Some(v) => Action::Execute(v),
                    None => Action::Dynamic,
                },
                _ => Action::Dynamic,
            });
        }
        _ => {}
    }
    // An assignment: target [. field …] [[subscript]] := / = expression.
    let mut i = 1;
    while tokens.get(i).is_some_and(|t| t.1 == Piece::Other(".")) && tokens.get(i + 1).is_some() {
        i += 2;
    }
    if matches!(tokens[0].1, Piece::Word(_) | Piece::QuotedIdent(_))
        && tokens
            .get(i)
            .is_some_and(|t| matches!(t.1, Piece::Other(":") | Piece::Other("=") | Piece::Other("[")))
        && !matches!(word.as_str(), "SELECT" | "WITH" | "VALUES" | "TABLE")
    {
        return None;
    }
    Some(Action::Sql(without_into(body, tokens, start, end)))
}

/// The statement in `body[start..end]` without a PL/pgSQL `INTO [STRICT] target, …` clause (the
/// SQL it sends has none); `INSERT INTO` and `MERGE INTO` are SQL and stay.
fn without_into(body: &str, tokens: &[Token], start: usize, end: usize) -> String {
    // IMPORT FOREIGN SCHEMA … INTO schema is SQL's own INTO.
    if upper(tokens.first()) == "IMPORT" {
        return body[start..end].to_owned();
    }
    let into = (0..tokens.len()).find(|&i| {
        upper(tokens.get(i)) == "INTO"
            && !matches!(
                upper(i.checked_sub(1).and_then(|p| tokens.get(p))).as_str(),
                "INSERT" | "MERGE"
            )
    });
    let Some(i) = into else {
        return body[start..end].to_owned();
    };
    let mut j = i + 1;
    if upper(tokens.get(j)) == "STRICT" {
        j += 1;
    }
    // target (. part)* (, target (. part)*)*
    loop {
        if !tokens
            .get(j)
            .is_some_and(|t| matches!(t.1, Piece::Word(_) | Piece::QuotedIdent(_)))
        {
            break;
        }
        j += 1;
        while tokens.get(j).is_some_and(|t| t.1 == Piece::Other(".")) && tokens.get(j + 1).is_some() {
            j += 2;
        }
        if tokens.get(j).is_some_and(|t| t.1 == Piece::Other(",")) {
            j += 1;
        } else {
            break;
        }
    }
    let cut_from = tokens[i].0;
    let cut_to = tokens.get(j).map_or(end, |t| t.0);
    format!("{} {}", body[start..cut_from].trim_end(), &body[cut_to..end])
        .trim()
        .to_owned()
}

/// The value of a string literal: `'…'` with doubled quotes, or `$tag$…$tag$`. `None` for an
/// `E'…'` string (its escapes are not read here).
pub fn literal_value(literal: &str) -> Option<String> {
    if let Some(inner) = literal.strip_prefix('\'') {
        return Some(inner.strip_suffix('\'').unwrap_or(inner).replace("''", "'"));
    }
    if literal.starts_with('$') {
        let tag_end = literal[1..].find('$')? + 2;
        let tag = &literal[..tag_end];
        let inner = &literal[tag_end..];
        return Some(inner.strip_suffix(tag).unwrap_or(inner).to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(body: &str) -> Vec<Action> {
        read(body).into_iter().map(|s| s.action).collect()
    }

    fn sql(s: &str) -> Action {
        Action::Sql(s.to_owned())
    }

    #[test]
    fn straight_line_block() {
        let body = "
            DECLARE
                n int := 0;
                c CURSOR FOR SELECT 1;
            BEGIN
                ALTER TABLE t ADD COLUMN c int;
                n := n + 1;
                RAISE NOTICE 'done %', n;
                UPDATE t SET c = 1 WHERE c IS NULL;
            END";
        assert_eq!(
            actions(body),
            vec![
                sql("ALTER TABLE t ADD COLUMN c int"),
                sql("UPDATE t SET c = 1 WHERE c IS NULL")
            ]
        );
        let s = read(body);
        assert_eq!(&body[s[0].offset..s[0].offset + 5], "ALTER");
        assert!(!s[0].conditional && !s[0].in_loop);
    }

    #[test]
    fn control_structures() {
        let body = "<<outer>> BEGIN
              IF (SELECT count(*) FROM t) > 0 THEN
                ALTER TABLE t DROP COLUMN a;
              ELSIF true THEN CREATE INDEX ON t (b);
              ELSE NULL;
              END IF;
              FOR r IN SELECT relname FROM pg_class LOOP
                EXECUTE format('ALTER TABLE %I ADD COLUMN x int', r.relname);
              END LOOP;
              CASE 1 WHEN 1 THEN TRUNCATE t; ELSE VACUUM; END CASE;
              WHILE false LOOP EXECUTE 'DROP TABLE u'; END LOOP;
              BEGIN
                DROP TABLE v;
              EXCEPTION WHEN others THEN
                RAISE NOTICE 'no';
                DROP TABLE w;
              END;
              COMMIT;
              ROLLBACK AND CHAIN;
            END outer";
        let s = read(body);
        let got: Vec<(Action, bool, bool)> = s.iter().map(|s| (s.action.clone(), s.conditional, s.in_loop)).collect();
        assert_eq!(
            got,
            vec![
                (sql("ALTER TABLE t DROP COLUMN a"), true, false),
                (sql("CREATE INDEX ON t (b)"), true, false),
                (sql("SELECT relname FROM pg_class"), false, false),
                (Action::Dynamic, false, true),
                (sql("TRUNCATE t"), true, false),
                (sql("VACUUM"), true, false),
                (Action::Execute("DROP TABLE u".into()), false, true),
                (sql("DROP TABLE v"), false, false),
                (sql("DROP TABLE w"), true, false),
                (Action::Commit { chain: false }, false, false),
                (Action::Rollback { chain: true }, false, false),
            ]
        );
    }

    #[test]
    fn into_targets_and_perform() {
        assert_eq!(
            actions("BEGIN SELECT count(*) INTO STRICT n, m.x FROM t WHERE a > 0; PERFORM f(1) ; END;"),
            vec![sql("SELECT count(*) FROM t WHERE a > 0"), sql("SELECT f(1)")]
        );
        assert_eq!(
            actions("BEGIN INSERT INTO t VALUES (1) RETURNING id INTO v; END"),
            vec![sql("INSERT INTO t VALUES (1) RETURNING id")]
        );
    }

    #[test]
    fn execute_forms() {
        assert_eq!(
            actions(
                "BEGIN EXECUTE 'ALTER TABLE t RENAME a TO b'; EXECUTE $q$DROP TABLE \"x\"$q$; \
                 EXECUTE 'DROP TABLE ' || t; EXECUTE 'DELETE FROM t WHERE a = $1' USING 1; \
                 EXECUTE E'DROP TABLE t'; EXECUTE 'SELECT 1' INTO n; END"
            ),
            vec![
                Action::Execute("ALTER TABLE t RENAME a TO b".into()),
                Action::Execute("DROP TABLE \"x\"".into()),
                Action::Dynamic,
                Action::Execute("DELETE FROM t WHERE a = $1".into()),
                Action::Dynamic,
                Action::Execute("SELECT 1".into()),
            ]
        );
        assert_eq!(literal_value("'it''s'"), Some("it's".into()));
        assert_eq!(literal_value("$a$x$a$"), Some("x".into()));
        assert_eq!(literal_value("E'x'"), None);
    }

    #[test]
    fn semicolons_in_literals_and_comments() {
        assert_eq!(
            actions("BEGIN -- a; comment\n UPDATE t SET a = 'x;y' /* ; */ ; END"),
            vec![sql("UPDATE t SET a = 'x;y'")]
        );
    }

    #[test]
    fn structure_inside_statements() {
        // THEN inside a CASE expression, semicolons inside a BEGIN ATOMIC body and parentheses,
        // a FOR loop's query, integer ranges and cursors, IMPORT's own INTO.
        let body = "BEGIN
              IF (CASE WHEN n IS NULL THEN 0 ELSE n END) > 0 THEN ALTER TABLE t DROP COLUMN c; END IF;
              CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;
              ALTER TABLE t DROP COLUMN d;
              FOR r IN DELETE FROM t WHERE a RETURNING id LOOP NULL; END LOOP;
              FOR i IN 1..10 LOOP NULL; END LOOP;
              FOR r IN cur(1) LOOP NULL; END LOOP;
              FOR r IN EXECUTE 'SELECT ' || x LOOP NULL; END LOOP;
              IMPORT FOREIGN SCHEMA s FROM SERVER x INTO public;
              ROLLBACK TO s;
            END";
        let got: Vec<(Action, bool)> = read(body).into_iter().map(|s| (s.action, s.conditional)).collect();
        assert_eq!(
            got,
            vec![
                (sql("ALTER TABLE t DROP COLUMN c"), true),
                (
                    sql("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END"),
                    false
                ),
                (sql("ALTER TABLE t DROP COLUMN d"), false),
                (sql("DELETE FROM t WHERE a RETURNING id"), false),
                (Action::Dynamic, false),
                (sql("IMPORT FOREIGN SCHEMA s FROM SERVER x INTO public"), false),
                (
                    Action::Unreadable("ROLLBACK TO SAVEPOINT is not PL/pgSQL".into()),
                    false
                ),
            ]
        );
    }

    #[test]
    fn deep_nesting_and_text_after_end_are_unreadable() {
        let deep = format!("{}x;", "BEGIN ".repeat(5000));
        let s = read(&deep);
        assert_eq!(s.len(), 1);
        assert!(matches!(&s[0].action, Action::Unreadable(m) if m.contains("nested more than")));
        assert!(matches!(
            actions("BEGIN NULL; END; ALTER TABLE t DROP COLUMN c;").as_slice(),
            [Action::Unreadable(m)] if m == "text after the block's END"
        ));
        assert!(actions("BEGIN NULL; END outer").is_empty());
    }

    #[test]
    fn unreadable_bodies() {
        assert!(matches!(actions("SELECT 1").as_slice(), [Action::Unreadable(_)]));
        assert!(matches!(
            actions("BEGIN IF x ALTER TABLE t DROP a; END").as_slice(),
            [Action::Unreadable(m)] if m == "IF without its THEN"
        ));
    }
}
