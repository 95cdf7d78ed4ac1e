//! The report: text for people, JSON lines for programs, workflow commands for GitHub Actions.

use crate::Format;
use std::io::{self, Write};

/// One row of `migrate_guard.check()`, with its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub file: String,
    pub statement_no: i32,
    pub line: i32,
    pub col: i32,
    pub end_line: i32,
    /// `None` for PostgreSQL's own errors.
    pub rule: Option<String>,
    /// `block`, `warn`, `allowed` or `error`.
    pub verdict: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub statement: String,
    pub sqlstate: Option<String>,
}

impl Finding {
    /// The rule id, or for PostgreSQL's errors their SQLSTATE.
    fn what(&self) -> &str {
        self.rule.as_deref().or(self.sqlstate.as_deref()).unwrap_or("error")
    }

    /// The message without the `migrate_guard: <rule>: ` the report already shows.
    fn short_message(&self) -> &str {
        match &self.rule {
            Some(rule) => self
                .message
                .strip_prefix("migrate_guard: ")
                .and_then(|m| m.strip_prefix(rule.as_str()))
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(&self.message),
            None => &self.message,
        }
    }
}

pub fn write(out: &mut impl Write, format: Format, findings: &[Finding]) -> io::Result<()> {
    for f in findings {
        match format {
            Format::Text => {
                writeln!(
                    out,
                    "{}:{}:{}: {} {}: {}",
                    f.file,
                    f.line,
                    f.col,
                    f.verdict,
                    f.what(),
                    f.short_message()
                )?;
                if let Some(d) = &f.detail {
                    writeln!(out, "    {d}")?;
                }
                if let Some(h) = &f.hint {
                    writeln!(out, "    hint: {h}")?;
                }
            }
            Format::Json => {
                let v = serde_json::json!({
                    "file": f.file,
                    "statement_no": f.statement_no,
                    "line": f.line,
                    "col": f.col,
                    "end_line": f.end_line,
                    "rule": f.rule,
                    "verdict": f.verdict,
                    "message": f.message,
                    "detail": f.detail,
                    "hint": f.hint,
                    "statement": f.statement,
                    "sqlstate": f.sqlstate,
                });
                writeln!(out, "{v}")?;
            }
            Format::Github => {
                let level = match f.verdict.as_str() {
                    "block" | "error" => "error",
                    "warn" => "warning",
                    _ => "notice",
                };
                let mut body = f.short_message().to_owned();
                for part in [&f.detail, &f.hint].into_iter().flatten() {
                    body.push('\n');
                    body.push_str(part);
                }
                writeln!(
                    out,
                    "::{level} file={},line={},col={},endLine={},title={}::{}",
                    property(&f.file),
                    f.line,
                    f.col,
                    f.end_line,
                    property(&format!("migrate_guard {} {}", f.verdict, f.what())),
                    data(&body)
                )?;
            }
        }
    }
    Ok(())
}

/// The last line of the text report.
pub fn summary(out: &mut impl Write, findings: &[Finding], files: usize) -> io::Result<()> {
    let count = |v: &str| findings.iter().filter(|f| f.verdict == v).count();
    let (blocked, warned, allowed, errors) = (count("block"), count("warn"), count("allowed"), count("error"));
    let files = if files == 1 {
        "1 file".to_owned()
    } else {
        format!("{files} files")
    };
    if findings.is_empty() {
        return writeln!(out, "migrate-guard: {files} checked: nothing would be blocked");
    }
    let errors = if errors == 1 {
        "1 error".to_owned()
    } else {
        format!("{errors} errors")
    };
    let unknown = match count("unknown") {
        0 => String::new(),
        n => format!(", {n} out of reach"),
    };
    writeln!(
        out,
        "migrate-guard: {files} checked: {blocked} blocked, {warned} warned, {allowed} allowed, {errors}{unknown}"
    )
}

/// A workflow command's message (`%`, CR and LF escaped).
fn data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow command's property value (also `:` and `,`).
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(verdict: &str, rule: Option<&str>) -> Finding {
        Finding {
            file: "db/0042_orders.sql".into(),
            statement_no: 3,
            line: 7,
            col: 1,
            end_line: 8,
            rule: rule.map(Into::into),
            verdict: verdict.into(),
            message: match rule {
                Some(r) => format!("migrate_guard: {r}: CREATE INDEX would block writes, 100%"),
                None => "syntax error at or near \",\"".into(),
            },
            detail: Some("Detail.".into()),
            hint: rule.map(|_| "Use CONCURRENTLY.".into()),
            statement: "CREATE INDEX i ON t (c)".into(),
            sqlstate: Some(if rule.is_some() { "MG001" } else { "42601" }.into()),
        }
    }

    fn render(format: Format, findings: &[Finding]) -> String {
        let mut out = Vec::new();
        write(&mut out, format, findings).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_names_file_line_column_verdict_and_rule() {
        let text = render(
            Format::Text,
            &[finding("block", Some("blocking-index")), finding("error", None)],
        );
        assert_eq!(
            text,
            "db/0042_orders.sql:7:1: block blocking-index: CREATE INDEX would block writes, 100%\n    Detail.\n    \
             hint: Use CONCURRENTLY.\ndb/0042_orders.sql:7:1: error 42601: syntax error at or near \",\"\n    Detail.\n"
        );
        let mut out = Vec::new();
        summary(&mut out, &[finding("block", Some("x")), finding("warn", Some("y"))], 2).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "migrate-guard: 2 files checked: 1 blocked, 1 warned, 0 allowed, 0 errors\n"
        );
    }

    #[test]
    fn json_is_one_object_per_line_with_every_column() {
        let text = render(
            Format::Json,
            &[finding("warn", Some("set-not-null")), finding("error", None)],
        );
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["rule"], "set-not-null");
        assert_eq!(lines[0]["end_line"], 8);
        assert_eq!(lines[1]["rule"], serde_json::Value::Null);
        assert_eq!(lines[1]["sqlstate"], "42601");
    }

    #[test]
    fn github_commands_escape_their_text() {
        let text = render(
            Format::Github,
            &[
                finding("block", Some("blocking-index")),
                finding("allowed", Some("drop-table")),
            ],
        );
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "::error file=db/0042_orders.sql,line=7,col=1,endLine=8,title=migrate_guard block blocking-index::\
             CREATE INDEX would block writes, 100%25%0ADetail.%0AUse CONCURRENTLY."
        );
        assert!(text.lines().nth(1).unwrap().starts_with("::notice "));
        assert_eq!(property("a:b,c"), "a%3Ab%2Cc");
    }
}
