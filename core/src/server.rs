//! What the running PostgreSQL server can do: the one place that knows about versions.
//!
//! Rules and hints ask a [`Server`] (through [`crate::facts::Facts::server`]) instead of
//! testing version numbers or `cfg` features: a guard that blocks what this server does safely,
//! or suggests a safe way this server does not have, is wrong on it. Parse-tree layouts that
//! differ between versions are handled in the extension (its `server` and `ddl` modules).

/// A PostgreSQL major version and the DDL capabilities that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    /// 13 … 18.
    pub major: u32,
}

impl Server {
    pub const fn of(major: u32) -> Self {
        Server { major }
    }

    /// `ALTER TABLE … DETACH PARTITION … CONCURRENTLY` (14+).
    pub fn detach_concurrently(self) -> bool {
        self.major >= 14
    }

    /// `ALTER TABLE … ADD CONSTRAINT … NOT NULL … NOT VALID`, then `VALIDATE CONSTRAINT`, which
    /// makes the column NOT NULL without a scan under an exclusive lock (18+).
    pub fn not_null_not_valid(self) -> bool {
        self.major >= 18
    }

    /// Virtual generated columns, the default kind of `GENERATED ALWAYS AS (…)` (18+): adding
    /// one writes no row.
    pub fn virtual_generated_columns(self) -> bool {
        self.major >= 18
    }

    /// Event triggers fire for `REINDEX` (17+); before, the guard never sees it.
    pub fn reindex_fires_event_triggers(self) -> bool {
        self.major >= 17
    }

    /// `ALTER TABLE … ALTER COLUMN … SET EXPRESSION AS (…)` (17+).
    pub fn set_expression(self) -> bool {
        self.major >= 17
    }

    /// TID range scans (`ctid >= … AND ctid < …` reads only those pages; 14+).
    pub fn tid_range_scan(self) -> bool {
        self.major >= 14
    }

    /// `ALTER TABLE … SET ACCESS METHOD` (15+).
    pub fn set_access_method(self) -> bool {
        self.major >= 15
    }
}

#[cfg(test)]
mod tests {
    use super::Server;

    #[test]
    fn capabilities_follow_the_release_that_added_them() {
        let v = |m| Server::of(m);
        assert!(!v(13).detach_concurrently() && v(14).detach_concurrently());
        assert!(!v(17).not_null_not_valid() && v(18).not_null_not_valid());
        assert!(!v(17).virtual_generated_columns() && v(18).virtual_generated_columns());
        assert!(!v(16).reindex_fires_event_triggers() && v(17).reindex_fires_event_triggers());
        assert!(!v(16).set_expression() && v(17).set_expression());
        assert!(!v(13).tid_range_scan() && v(14).tid_range_scan());
        assert!(!v(14).set_access_method() && v(15).set_access_method());
    }
}
