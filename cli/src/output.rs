//! The report: text for people, JSON lines for programs, workflow commands for GitHub Actions,
//! a SARIF 2.1.0 log for code scanning, and a GitLab Code Quality report.

use crate::Format;
use migrate_guard_core::rules::RuleId;
use std::io::{self, Write};

/// The id of `check()`'s `unknown` rows in reports.
const OUT_OF_REACH: &str = "out-of-reach";

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
    /// The rule id, or for PostgreSQL's errors their SQLSTATE; `out-of-reach` for what
    /// `check()` cannot judge (its `unknown` rows name neither).
    fn what(&self) -> &str {
        self.rule
            .as_deref()
            .or(self.sqlstate.as_deref())
            .unwrap_or(if self.verdict == "unknown" {
                OUT_OF_REACH
            } else {
                "error"
            })
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
    // The two whole-document formats: one JSON value for the whole check.
    match format {
        Format::Sarif => return writeln!(out, "{}", sarif(findings)),
        Format::Gitlab => return writeln!(out, "{}", gitlab(findings)),
        _ => {}
    }
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
            Format::Sarif | Format::Gitlab => unreachable!("written above"),
            Format::Github => {
                let level = match f.verdict.as_str() {
                    "block" | "error" => "error",
                    "warn" => "warning",
                    _ => "notice",
                };
                let body = full_text(f);
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

/// The message with its detail and hint, one per line.
fn full_text(f: &Finding) -> String {
    let mut body = f.short_message().to_owned();
    for part in [&f.detail, &f.hint].into_iter().flatten() {
        body.push('\n');
        body.push_str(part);
    }
    body
}

/// A file name as a relative URI reference (RFC 3986): everything but unreserved characters and
/// `/` percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A SARIF 2.1.0 log: one run, the rules that have findings, one result per finding.
fn sarif(findings: &[Finding]) -> serde_json::Value {
    let mut rules: Vec<&str> = findings.iter().map(Finding::what).collect();
    rules.sort_unstable();
    rules.dedup();
    let rules: Vec<serde_json::Value> = rules
        .iter()
        .map(|id| {
            let text = if *id == OUT_OF_REACH {
                "check() cannot judge the statement: it is out of its reach (the message says why)".to_owned()
            } else if findings.iter().any(|f| f.what() == *id && f.rule.is_none()) {
                format!("PostgreSQL refused the statement (SQLSTATE {id})")
            } else {
                match RuleId::parse(id) {
                    Some(rule) => rule.summary().to_owned(),
                    None => format!("migrate_guard rule {id}"),
                }
            };
            serde_json::json!({ "id": id, "shortDescription": { "text": text } })
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let level = match f.verdict.as_str() {
                "block" | "error" => "error",
                "warn" => "warning",
                _ => "note",
            };
            serde_json::json!({
                "ruleId": f.what(),
                "level": level,
                "message": { "text": full_text(f) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.file) },
                        "region": {
                            "startLine": f.line.max(1),
                            "startColumn": f.col.max(1),
                            "endLine": f.end_line.max(f.line).max(1),
                        },
                    },
                }],
                "properties": {
                    "verdict": f.verdict,
                    "statementNumber": f.statement_no,
                    "sqlstate": f.sqlstate,
                },
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "migrate-guard",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://pgxn.org/dist/migrate_guard/",
                    "rules": rules,
                },
            },
            "results": results,
        }],
    })
}

/// A GitLab Code Quality report: an array of issues, each with a fingerprint that stays the same
/// while the finding does (file, statement number, rule, statement text).
fn gitlab(findings: &[Finding]) -> serde_json::Value {
    let issues: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let severity = match f.verdict.as_str() {
                "block" => "blocker",
                "error" => "critical",
                "warn" => "major",
                _ => "info",
            };
            let key = format!("{}\0{}\0{}\0{}", f.file, f.statement_no, f.what(), f.statement);
            serde_json::json!({
                "description": format!("migrate_guard {} {}: {}", f.verdict, f.what(), full_text(f)),
                "check_name": f.what(),
                "fingerprint": fingerprint(&key),
                "severity": severity,
                "location": {
                    "path": f.file,
                    "lines": { "begin": f.line.max(1), "end": f.end_line.max(f.line).max(1) },
                },
            })
        })
        .collect();
    serde_json::Value::Array(issues)
}

/// 128 bits of two FNV-1a hashes (different offsets), as 32 hexadecimal digits: stable across
/// runs and builds, which is all a fingerprint needs.
fn fingerprint(key: &str) -> String {
    let fnv = |offset: u64| {
        key.bytes()
            .fold(offset, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
    };
    format!("{:016x}{:016x}", fnv(0xcbf2_9ce4_8422_2325), fnv(0x8422_2325_cbf2_9ce4))
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

    #[test]
    fn sarif_is_one_log_with_a_result_per_finding() {
        let mut f = finding("block", Some("blocking-index"));
        f.file = "db/add index.sql".into();
        let text = render(
            Format::Sarif,
            &[f, finding("warn", Some("set-not-null")), finding("error", None)],
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "migrate-guard");
        let ids: Vec<&str> = run["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["42601", "blocking-index", "set-not-null"]);
        // A rule's description is the core's summary of it; PostgreSQL's errors name their SQLSTATE.
        let descriptions: Vec<&str> = run["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["shortDescription"]["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            descriptions,
            [
                "PostgreSQL refused the statement (SQLSTATE 42601)",
                RuleId::BlockingIndex.summary(),
                RuleId::SetNotNull.summary()
            ]
        );
        assert!(descriptions[1].starts_with("CREATE INDEX without CONCURRENTLY"));
        // check()'s unknown rows name no rule and no SQLSTATE: a rule of their own.
        let mut unknown = finding("unknown", None);
        unknown.sqlstate = None;
        let v: serde_json::Value = serde_json::from_str(&render(Format::Sarif, &[unknown])).unwrap();
        let rule = &v["runs"][0]["tool"]["driver"]["rules"][0];
        assert_eq!(rule["id"], "out-of-reach");
        assert!(
            rule["shortDescription"]["text"]
                .as_str()
                .unwrap()
                .starts_with("check() cannot judge")
        );
        assert_eq!(v["runs"][0]["results"][0]["ruleId"], "out-of-reach");
        assert_eq!(v["runs"][0]["results"][0]["level"], "note");
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        let levels: Vec<&str> = results.iter().map(|r| r["level"].as_str().unwrap()).collect();
        assert_eq!(levels, ["error", "warning", "error"]);
        let first = &results[0];
        assert_eq!(first["ruleId"], "blocking-index");
        assert_eq!(
            first["message"]["text"],
            "CREATE INDEX would block writes, 100%\nDetail.\nUse CONCURRENTLY."
        );
        let loc = &first["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "db/add%20index.sql");
        assert_eq!(loc["region"]["startLine"], 7);
        assert_eq!(loc["region"]["startColumn"], 1);
        assert_eq!(loc["region"]["endLine"], 8);
        assert_eq!(first["properties"]["verdict"], "block");
        assert!(render(Format::Sarif, &[]).contains("\"results\":[]"));
    }

    #[test]
    fn gitlab_issues_have_a_severity_and_a_stable_unique_fingerprint() {
        let a = finding("block", Some("blocking-index"));
        let mut b = a.clone();
        b.statement_no = 4;
        let text = render(Format::Gitlab, &[a.clone(), b, finding("allowed", Some("drop-table"))]);
        let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0]["severity"], "blocker");
        assert_eq!(v[2]["severity"], "info");
        assert_eq!(v[0]["check_name"], "blocking-index");
        assert_eq!(v[0]["location"]["path"], "db/0042_orders.sql");
        assert_eq!(v[0]["location"]["lines"]["begin"], 7);
        assert_eq!(
            v[0]["description"],
            "migrate_guard block blocking-index: CREATE INDEX would block writes, 100%\nDetail.\nUse CONCURRENTLY."
        );
        let fp = |i: usize| v[i]["fingerprint"].as_str().unwrap().to_owned();
        assert_eq!(fp(0).len(), 32);
        assert_ne!(fp(0), fp(1), "the same statement at another place is another issue");
        let again: Vec<serde_json::Value> = serde_json::from_str(&render(Format::Gitlab, &[a])).unwrap();
        assert_eq!(
            again[0]["fingerprint"], v[0]["fingerprint"],
            "a fingerprint does not change between runs"
        );
        assert_eq!(render(Format::Gitlab, &[]), "[]\n");
    }
}
