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

fn conditional(stack: &[Frame]) -> bool {
    stack
        .iter()
        .any(|f| matches!(f, Frame::If | Frame::Case | Frame::Block { handling: true, .. }))
}

/// A significant token: its offset in the body and the piece.
type Token<'a> = (usize, Piece<'a>);

fn upper(t: Option<&Token>) -> String {
    match t {
        Some((_, Piece::Word(w))) => w.to_ascii_uppercase(),
        _ => String::new(),
    }
}

/// Index of the first word `word` at or after `from`.
fn find_word(tokens: &[Token], from: usize, word: &str) -> Option<usize> {
    (from..tokens.len()).find(|&i| matches!(tokens[i].1, Piece::Word(w) if w.eq_ignore_ascii_case(word)))
}

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
    let mut stack: Vec<Frame> = Vec::new();
    let mut seen_block = false;
    for segment in tokens.split(|t| t.1 == Piece::Other(";")) {
        if segment.is_empty() {
            continue;
        }
        let end = segment.last().map_or(0, |(o, p)| o + p.text().len());
        let mut k = 0;
        while k < segment.len() {
            // A declaration (everything before BEGIN in a DECLARE section) says nothing to check().
            if let Some(Frame::Block { declaring: true, .. }) = stack.last_mut() {
                if upper(segment.get(k)) == "BEGIN" {
                    stack.pop();
                    stack.push(Frame::Block {
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
            let top = stack.last().copied();
            // Ok(next token) for a structural word, Err(the word it lacks) when it is cut short;
            // None for END and for a statement.
            let next: Option<Result<usize, &str>> = match word.as_str() {
                "DECLARE" | "BEGIN" => {
                    stack.push(Frame::Block {
                        declaring: word == "DECLARE",
                        handling: false,
                    });
                    seen_block = true;
                    Some(Ok(k + 1))
                }
                "EXCEPTION" if matches!(top, Some(Frame::Block { .. })) => {
                    stack.pop();
                    stack.push(Frame::Block {
                        declaring: false,
                        handling: true,
                    });
                    Some(Ok(k + 1))
                }
                "IF" => {
                    stack.push(Frame::If);
                    Some(after_then(k))
                }
                "ELSIF" | "ELSEIF" if top == Some(Frame::If) => Some(after_then(k)),
                "ELSE" if matches!(top, Some(Frame::If | Frame::Case)) => Some(Ok(k + 1)),
                "CASE" => {
                    stack.push(Frame::Case);
                    Some(after_then(k))
                }
                "WHEN" if matches!(top, Some(Frame::Case | Frame::Block { handling: true, .. })) => Some(after_then(k)),
                "LOOP" => {
                    stack.push(Frame::Loop);
                    Some(Ok(k + 1))
                }
                "WHILE" | "FOR" | "FOREACH" => {
                    stack.push(Frame::Loop);
                    Some(find_word(segment, k + 1, "LOOP").map(|i| i + 1).ok_or("LOOP"))
                }
                "END" => {
                    // END [IF | LOOP | CASE] [label]: nothing after it in this segment runs.
                    stack.pop();
                    None
                }
                _ => {
                    if seen_block
                        && !stack.is_empty()
                        && let Some(action) = classify(body, &segment[k..], end)
                    {
                        out.push(Statement {
                            offset: segment[k].0,
                            text: body[segment[k].0..end].to_owned(),
                            action,
                            conditional: conditional(&stack),
                            in_loop: stack.contains(&Frame::Loop),
                        });
                    }
                    None
                }
            };
            match next {
                Some(Ok(n)) => k = n,
                Some(Err(lacks)) => {
                    out.push(Statement {
                        offset: segment[k].0,
                        text: body[segment[k].0..end].to_owned(),
                        action: Action::Unreadable(format!("{word} without its {lacks}")),
                        conditional: conditional(&stack),
                        in_loop: stack.contains(&Frame::Loop),
                    });
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
            // EXECUTE 'constant' [INTO …]: the constant is the statement; anything else (a
            // concatenation, format(), USING parameters) is built when the block runs.
            let into = find_word(tokens, 1, "INTO").unwrap_or(tokens.len());
            return Some(match (&tokens[1..into], find_word(tokens, 1, "USING")) {
                ([(_, Piece::Literal(l))], None) => match literal_value(l) {
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
                Action::Dynamic,
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
    fn unreadable_bodies() {
        assert!(matches!(actions("SELECT 1").as_slice(), [Action::Unreadable(_)]));
        assert!(matches!(
            actions("BEGIN IF x ALTER TABLE t DROP a; END").as_slice(),
            [Action::Unreadable(m)] if m == "IF without its THEN"
        ));
    }
}
