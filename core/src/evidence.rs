//! Usage evidence for the verdicts on drops and renames (pure: the counts come from
//! the extension's `usage` module through [`crate::facts::Facts::usage`]).
//!
//! A relation or column is *unused* only when tracking has run for at least the usage window
//! (`migrate_guard.usage_window`) and no query read or wrote it within that window. Anything
//! else that is not proven used is *unavailable*, with the reason: the verdict is then the one
//! without evidence.

/// Microseconds since 2000-01-01 00:00 UTC (PostgreSQL's `TimestampTz`).
pub type Timestamp = i64;

/// What tracking saw of one relation or column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub last_read: Option<Timestamp>,
    pub last_write: Option<Timestamp>,
    pub reads: u64,
    pub writes: u64,
    /// The last few users, most recent first: `role (application)`.
    pub users: Vec<String>,
}

impl Seen {
    pub fn last_use(&self) -> Option<Timestamp> {
        self.last_read.max(self.last_write)
    }
}

/// The state of tracking when a statement is judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Tracking {
    /// Not tracked, with why (not preloaded, `track_usage` off).
    Off(String),
    On {
        since: Timestamp,
        /// Why tracking began then (`restored from the last clean shutdown`, …).
        began: String,
        /// The tracking table is full: a missing entry proves nothing.
        full: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// Not known whether it is used: why.
    Unavailable(String),
    /// Used within the window.
    Used(Seen),
    /// Not used within the window; when it was last used before, if ever since tracking began.
    Unused { last: Option<Timestamp> },
}

/// The evidence about one object, and what it was judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub evidence: Evidence,
    pub now: Timestamp,
    pub window_s: i64,
    pub since: Option<Timestamp>,
}

impl Usage {
    /// No tracking at all (facts that have none: unit tests, offline).
    pub fn unavailable(why: &str) -> Usage {
        Usage {
            evidence: Evidence::Unavailable(why.to_owned()),
            now: 0,
            window_s: 0,
            since: None,
        }
    }

    pub fn judge(tracking: &Tracking, seen: Option<Seen>, now: Timestamp, window_s: i64) -> Usage {
        let window_us = window_s.saturating_mul(1_000_000);
        let (evidence, since) = match tracking {
            Tracking::Off(why) => (Evidence::Unavailable(why.clone()), None),
            Tracking::On { since, began, full } => {
                let used = seen.as_ref().and_then(Seen::last_use);
                let e = match (seen, used) {
                    (Some(s), Some(t)) if now - t <= window_us => Evidence::Used(s),
                    _ if now - since < window_us => Evidence::Unavailable(format!(
                        "tracking began {} ({began}), less than the usage window ({}) ago",
                        when(*since, now),
                        duration(window_s)
                    )),
                    (None, _) if *full => Evidence::Unavailable(
                        "the tracking table is full (migrate_guard.usage_max_entries), and this object has no entry"
                            .into(),
                    ),
                    _ => Evidence::Unused { last: used },
                };
                (e, Some(*since))
            }
        };
        Usage {
            evidence,
            now,
            window_s,
            since,
        }
    }

    /// Whether tracking ran when this was judged (the evidence may still be too young).
    pub fn tracked(&self) -> bool {
        self.since.is_some()
    }

    pub fn is_unused(&self) -> bool {
        matches!(self.evidence, Evidence::Unused { .. })
    }

    /// One sentence on what tracking saw, for a DETAIL or a NOTICE; `what` names the object
    /// (`column email`, `table public.users`).
    pub fn sentence(&self, what: &str) -> String {
        match &self.evidence {
            Evidence::Unavailable(why) => format!("No usage evidence for {what}: {why}."),
            Evidence::Used(s) => {
                let mut parts = Vec::new();
                if let Some(t) = s.last_read {
                    parts.push(format!("last read {} ({} reads)", when(t, self.now), s.reads));
                }
                if let Some(t) = s.last_write {
                    parts.push(format!("last written {} ({} writes)", when(t, self.now), s.writes));
                }
                let by = if s.users.is_empty() {
                    String::new()
                } else {
                    format!(", recently by {}", s.users.join(", "))
                };
                format!(
                    "Queries still use {what}: {}{by} (usage window {}).",
                    parts.join(", "),
                    duration(self.window_s)
                )
            }
            Evidence::Unused { last } => {
                let since = self.since.map(|s| when(s, self.now)).unwrap_or_default();
                match last {
                    Some(t) => format!(
                        "No query has used {what} within the usage window ({}): last used {}; tracked since {since}.",
                        duration(self.window_s),
                        when(*t, self.now)
                    ),
                    None => format!(
                        "No query has used {what} since tracking began {since} (usage window {}).",
                        duration(self.window_s)
                    ),
                }
            }
        }
    }
}

/// `2026-12-05 01:07:50 UTC (3 min ago)`.
pub fn when(t: Timestamp, now: Timestamp) -> String {
    format!("{} ({})", utc(t), ago(now - t))
}

/// `2026-12-05 01:07:50 UTC`.
pub fn utc(t: Timestamp) -> String {
    let secs = t.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400) + 10_957; // 1970-01-01 to 2000-01-01
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

fn ago(us: i64) -> String {
    if us < 0 {
        return "just now".into();
    }
    format!("{} ago", duration(us / 1_000_000))
}

/// `45 s`, `3 min`, `2 h`, `1 day`, `5 days`.
pub fn duration(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    const DAY: i64 = 86_400;

    fn on(since: i64) -> Tracking {
        Tracking::On {
            since,
            began: "started with the server".into(),
            full: false,
        }
    }

    #[test]
    fn timestamps_render_in_utc() {
        assert_eq!(utc(0), "2000-01-01 00:00:00 UTC");
        // 2026-12-05 01:07:50 UTC
        let t = ((9835 * DAY) + 3600 + 7 * 60 + 50) * S;
        assert_eq!(utc(t), "2026-12-05 01:07:50 UTC");
        assert_eq!(utc(-S), "1999-12-31 23:59:59 UTC");
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(600), "10 min");
        assert_eq!(duration(DAY), "24 h");
        assert_eq!(duration(3 * DAY), "3 days");
    }

    #[test]
    fn used_within_the_window_names_when_and_who() {
        let now = 10 * DAY * S;
        let seen = Seen {
            last_read: Some(now - 30 * S),
            last_write: None,
            reads: 7,
            writes: 0,
            users: vec!["app (old-app)".into()],
        };
        let u = Usage::judge(&on(0), Some(seen), now, DAY);
        assert!(matches!(u.evidence, Evidence::Used(_)));
        let s = u.sentence("column username");
        assert!(
            s.contains("last read") && s.contains("30 s ago") && s.contains("7 reads"),
            "{s}"
        );
        assert!(s.contains("app (old-app)"), "{s}");
    }

    #[test]
    fn unused_only_after_a_full_window_of_tracking() {
        let now = 10 * DAY * S;
        let old = Seen {
            last_read: Some(now - 2 * DAY * S),
            ..Seen::default()
        };
        // Tracking for 10 days, last use 2 days ago, window 1 day: unused.
        let u = Usage::judge(&on(0), Some(old.clone()), now, DAY);
        assert_eq!(
            u.evidence,
            Evidence::Unused {
                last: Some(now - 2 * DAY * S)
            }
        );
        // Tracking for 1 hour only: not known, whatever was seen.
        let u = Usage::judge(&on(now - 3600 * S), None, now, DAY);
        assert!(matches!(&u.evidence, Evidence::Unavailable(w) if w.contains("less than the usage window")));
        // Never seen after 10 days: unused.
        assert!(Usage::judge(&on(0), None, now, DAY).is_unused());
        // Used within the window while tracking is young: used (that is evidence enough).
        let recent = Seen {
            last_write: Some(now - S),
            writes: 1,
            ..Seen::default()
        };
        assert!(matches!(
            Usage::judge(&on(now - 60 * S), Some(recent), now, DAY).evidence,
            Evidence::Used(_)
        ));
    }

    #[test]
    fn a_full_table_proves_nothing_about_missing_entries() {
        let now = 10 * DAY * S;
        let full = Tracking::On {
            since: 0,
            began: "x".into(),
            full: true,
        };
        assert!(matches!(
            Usage::judge(&full, None, now, DAY).evidence,
            Evidence::Unavailable(_)
        ));
        let old = Seen {
            last_read: Some(now - 2 * DAY * S),
            ..Seen::default()
        };
        assert!(Usage::judge(&full, Some(old), now, DAY).is_unused());
        let off = Tracking::Off("not preloaded".into());
        assert_eq!(
            Usage::judge(&off, None, now, DAY).sentence("column a"),
            "No usage evidence for column a: not preloaded."
        );
    }
}
