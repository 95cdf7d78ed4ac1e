//! The progress line a backfill prints after each batch.

/// Where a job stands after a batch.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub job: i64,
    pub batches: i64,
    /// Rows walked so far (all runs of the job); for a page walk, an estimate.
    pub rows_done: i64,
    /// Estimated rows of the table, when known.
    pub rows_total: Option<i64>,
    pub rows_updated: i64,
    /// Page walk: pages done and pages to walk (exact).
    pub pages: Option<(i64, i64)>,
    /// This run only (a resumed job restarts its clock): rows (key walk) or pages (page walk)
    /// walked, seconds spent, and the fraction done when it started.
    pub run_done: i64,
    pub run_seconds: f64,
    pub run_start_fraction: Option<f64>,
    /// Page walk: the sweep pass this batch belongs to (none for the walk itself).
    pub sweep: Option<i64>,
}

impl Progress {
    /// Fraction done (of the sweep, during a sweep), from pages when walking pages, else from
    /// the row estimate; below 1 until the job says it is done.
    pub fn fraction(&self) -> Option<f64> {
        let f = match self.pages {
            Some((done, total)) if total > 0 => done as f64 / total as f64,
            Some(_) => return None,
            None => match self.rows_total {
                Some(t) if t > 0 => self.rows_done as f64 / t as f64,
                _ => return None,
            },
        };
        Some(f.min(0.999))
    }

    pub fn message(&self) -> String {
        let mut m = format!("migrate_guard: backfill job {}: ", self.job);
        if let Some(pass) = self.sweep {
            m.push_str(&format!("sweep {pass}, "));
        }
        m.push_str(&format!("batch {}, ", self.batches));
        match (self.pages, self.rows_total) {
            (Some((done, total)), _) => m.push_str(&format!("page {done} of {total}")),
            (None, Some(t)) if t > 0 => m.push_str(&format!("{} of about {t} rows", self.rows_done)),
            (None, _) => m.push_str(&format!("{} rows", self.rows_done)),
        }
        let fraction = self.fraction();
        if let Some(f) = fraction {
            m.push_str(&format!(" ({:.1}%)", f * 100.0));
        }
        m.push_str(&format!(", {} updated", self.rows_updated));
        if self.run_seconds > 0.0 && self.run_done > 0 {
            let unit = if self.pages.is_some() { "pages" } else { "rows" };
            m.push_str(&format!(
                "; {} {unit}/s",
                (self.run_done as f64 / self.run_seconds).round() as i64
            ));
            // Time left at this run's pace (a resumed job restarts its clock).
            if let (Some(f), Some(f0), None) = (fraction, self.run_start_fraction, self.sweep)
                && f > f0
            {
                m.push_str(&format!(
                    ", about {} left",
                    duration(self.run_seconds * (1.0 - f) / (f - f0))
                ));
            }
        }
        m
    }
}

/// `42s`, `3m 05s`, `2h 07m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as i64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_walk_progress() {
        let p = Progress {
            job: 7,
            batches: 12,
            rows_done: 120_000,
            rows_total: Some(1_000_000),
            rows_updated: 118_500,
            pages: None,
            run_done: 120_000,
            run_seconds: 2.5,
            run_start_fraction: Some(0.0),
            sweep: None,
        };
        assert_eq!(
            p.message(),
            "migrate_guard: backfill job 7: batch 12, 120000 of about 1000000 rows (12.0%), 118500 updated; \
             48000 rows/s, about 18s left"
        );
    }

    #[test]
    fn estimates_never_claim_done_early_or_divide_by_zero() {
        let mut p = Progress {
            job: 1,
            batches: 3,
            rows_done: 1_200,
            rows_total: Some(1_000),
            rows_updated: 1_200,
            ..Progress::default()
        };
        assert_eq!(p.fraction(), Some(0.999));
        assert_eq!(
            p.message(),
            "migrate_guard: backfill job 1: batch 3, 1200 of about 1000 rows (99.9%), 1200 updated"
        );
        p.rows_total = None;
        assert_eq!(p.fraction(), None);
        assert_eq!(
            p.message(),
            "migrate_guard: backfill job 1: batch 3, 1200 rows, 1200 updated"
        );
    }

    #[test]
    fn page_walk_progress_is_exact() {
        let p = Progress {
            job: 2,
            batches: 5,
            rows_done: 50_000,
            rows_total: Some(100_000),
            rows_updated: 50_000,
            pages: Some((400, 800)),
            run_done: 200,
            run_seconds: 10.0,
            run_start_fraction: Some(0.25),
            sweep: None,
        };
        assert_eq!(
            p.message(),
            "migrate_guard: backfill job 2: batch 5, page 400 of 800 (50.0%), 50000 updated; 20 pages/s, about 20s left"
        );
    }

    #[test]
    fn sweeps_say_so_and_guess_no_time() {
        let p = Progress {
            job: 2,
            batches: 9,
            rows_done: 100_000,
            rows_updated: 100_000,
            pages: Some((40, 160)),
            run_done: 200,
            run_seconds: 10.0,
            run_start_fraction: Some(0.0),
            sweep: Some(1),
            ..Progress::default()
        };
        assert_eq!(
            p.message(),
            "migrate_guard: backfill job 2: sweep 1, batch 9, page 40 of 160 (25.0%), 100000 updated; 20 pages/s"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(59.6), "1m 00s");
        assert_eq!(duration(185.0), "3m 05s");
        assert_eq!(duration(7620.0), "2h 07m");
    }
}
