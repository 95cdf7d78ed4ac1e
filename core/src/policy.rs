//! Turns findings into a verdict: mode, the `migrate_guard.allow` setting and comment directives.

use crate::rules::{Finding, RuleId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Warn,
    Off,
}

/// Where an allowance came from; recorded in history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowSource {
    Setting,
    Directive,
    /// A step of a registered expansion (expand, contract, abort), run by its helper.
    Expansion,
    /// The statement acts only on another extension's own working objects (guard.rs).
    Extension,
    /// Usage evidence shows that no query uses what it drops (`Finding::unused`).
    Usage,
}

impl AllowSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AllowSource::Setting => "setting",
            AllowSource::Directive => "directive",
            AllowSource::Expansion => "expansion",
            AllowSource::Extension => "extension",
            AllowSource::Usage => "usage",
        }
    }
}

/// A parsed list of allowed rules (`all` allows every rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub all: bool,
    pub rules: Vec<RuleId>,
}

impl AllowList {
    pub fn allows(&self, rule: RuleId) -> bool {
        self.all || self.rules.contains(&rule)
    }

    /// Parse ids; the first unknown id is the error.
    pub fn parse<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for raw in ids {
            let id = raw.trim();
            if id.is_empty() {
                continue;
            }
            if id.eq_ignore_ascii_case("all") {
                list.all = true;
            } else if let Some(rule) = RuleId::parse(id) {
                if !list.rules.contains(&rule) {
                    list.rules.push(rule);
                }
            } else {
                return Err(id.to_owned());
            }
        }
        Ok(list)
    }

    /// Parse the comma-separated value of `migrate_guard.allow`.
    pub fn parse_setting(value: &str) -> Result<AllowList, String> {
        AllowList::parse(value.split(','))
    }
}

#[derive(Debug, Default)]
pub struct Verdict {
    pub blocked: Vec<Finding>,
    pub warned: Vec<Finding>,
    pub allowed: Vec<(Finding, AllowSource)>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.blocked.is_empty() && self.warned.is_empty() && self.allowed.is_empty()
    }

    /// Whether a finding of one of `rules` lets the statement run (allowed or warned about).
    pub fn runs_with(&self, rules: &[RuleId]) -> bool {
        self.allowed
            .iter()
            .map(|(f, _)| f)
            .chain(&self.warned)
            .any(|f| rules.contains(&f.rule))
    }
}

/// Decide what happens to a statement's findings.
pub fn decide(findings: Vec<Finding>, mode: Mode, setting: &AllowList, directive: &AllowList) -> Verdict {
    let mut v = Verdict::default();
    for f in findings {
        if setting.allows(f.rule) {
            v.allowed.push((f, AllowSource::Setting));
        } else if directive.allows(f.rule) {
            v.allowed.push((f, AllowSource::Directive));
        } else if f.unused.is_some() && mode != Mode::Off {
            v.allowed.push((f, AllowSource::Usage));
        } else {
            match mode {
                Mode::Enforce => v.blocked.push(f),
                Mode::Warn => v.warned.push(f),
                Mode::Off => {}
            }
        }
    }
    v
}

impl Verdict {
    /// Everything blocked or warned becomes allowed as a step of an expansion.
    pub fn allow_as_expansion_step(&mut self) {
        self.allow_all_as(AllowSource::Expansion);
    }

    /// Every blocked or warned finding passes, recorded as allowed by `source`.
    pub fn allow_all_as(&mut self, source: AllowSource) {
        for f in self.blocked.drain(..).chain(self.warned.drain(..)) {
            self.allowed.push((f, source));
        }
    }
}

/// The client-visible text of a finding: (message, detail, hint). `also` lists the other
/// findings that block the same statement; `mode` says whether the statement runs anyway.
pub fn render(f: &Finding, also: &[&Finding], mode: Mode) -> (String, String, String) {
    let id = f.rule.id();
    let message = format!("migrate_guard: {id}: {}", f.message);
    let mut detail = f.detail.clone();
    if !also.is_empty() {
        let more: Vec<String> = also
            .iter()
            .map(|o| format!("{} ({})", o.rule.id(), o.message))
            .collect();
        detail.push_str(&format!(" The statement also breaks: {}.", more.join("; ")));
    }
    let mut ids: Vec<&str> = vec![id];
    for o in also {
        if !ids.contains(&o.rule.id()) {
            ids.push(o.rule.id());
        }
    }
    let ids = ids.join(", ");
    let allow = format!(
        "SET LOCAL migrate_guard.allow = '{ids}'; or put the comment /* migrate_guard:allow {ids} */ in the statement"
    );
    let hint = match mode {
        Mode::Warn => format!(
            "{} The statement runs because migrate_guard.mode is warn; to mark it as intended: {allow}.",
            f.safe_way
        ),
        _ => format!("{} To run the statement as written: {allow}.", f.safe_way),
    };
    (message, detail, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: RuleId) -> Finding {
        Finding {
            unused: None,
            rule,
            message: "m".into(),
            detail: "d.".into(),
            safe_way: "Do X.".into(),
        }
    }

    #[test]
    fn parses_allow_lists() {
        assert_eq!(AllowList::parse_setting("").unwrap(), AllowList::default());
        let l = AllowList::parse_setting(" blocking-index , SET-NOT-NULL,blocking-index").unwrap();
        assert_eq!(l.rules, vec![RuleId::BlockingIndex, RuleId::SetNotNull]);
        assert!(AllowList::parse_setting("all").unwrap().all);
        assert_eq!(
            AllowList::parse_setting("blocking-index, typo-rule").unwrap_err(),
            "typo-rule"
        );
    }

    #[test]
    fn setting_then_directive_then_mode() {
        let setting = AllowList::parse_setting("blocking-index").unwrap();
        let directive = AllowList::parse(["set-not-null"]).unwrap();
        let fs = vec![
            finding(RuleId::BlockingIndex),
            finding(RuleId::SetNotNull),
            finding(RuleId::RenameTable),
        ];
        let v = decide(fs.clone(), Mode::Enforce, &setting, &directive);
        assert_eq!(v.allowed.len(), 2);
        assert_eq!(v.allowed[0].1, AllowSource::Setting);
        assert_eq!(v.allowed[1].1, AllowSource::Directive);
        assert_eq!(v.blocked.len(), 1);
        let v = decide(fs.clone(), Mode::Warn, &AllowList::default(), &AllowList::default());
        assert_eq!((v.blocked.len(), v.warned.len()), (0, 3));
        let v = decide(fs, Mode::Off, &AllowList::default(), &AllowList::default());
        assert!(v.is_clean());
    }

    #[test]
    fn expansion_steps_allow_what_was_blocked_or_warned() {
        let fs = vec![finding(RuleId::DropColumn), finding(RuleId::RenameColumn)];
        let setting = AllowList::parse_setting("drop-column").unwrap();
        let mut v = decide(fs, Mode::Enforce, &setting, &AllowList::default());
        v.allow_as_expansion_step();
        assert!(v.blocked.is_empty() && v.warned.is_empty());
        let via: Vec<_> = v.allowed.iter().map(|(f, s)| (f.rule, *s)).collect();
        assert_eq!(
            via,
            vec![
                (RuleId::DropColumn, AllowSource::Setting),
                (RuleId::RenameColumn, AllowSource::Expansion)
            ]
        );
    }

    #[test]
    fn renders_message_detail_and_hint() {
        let a = finding(RuleId::BlockingIndex);
        let b = finding(RuleId::SetNotNull);
        let (m, d, h) = render(&a, &[&b], Mode::Enforce);
        assert_eq!(m, "migrate_guard: blocking-index: m");
        assert_eq!(d, "d. The statement also breaks: set-not-null (m).");
        assert!(h.starts_with(
            "Do X. To run the statement as written: SET LOCAL migrate_guard.allow = 'blocking-index, set-not-null';"
        ));
        assert!(h.ends_with("/* migrate_guard:allow blocking-index, set-not-null */ in the statement."));
    }
}
