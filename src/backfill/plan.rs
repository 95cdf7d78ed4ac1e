//! How a backfill walks its table, as SQL: pure string building, so that the statements each
//! batch runs can be unit-tested without a server.
//!
//! A table with a primary key is walked in key order: each batch first reads the next
//! `batch_size` keys after the last one done (an index range scan), then updates the rows whose
//! key lies in that range. A table without one is walked in physical page ranges with TID range
//! scans, up to the last page it had when the job started.

use crate::sqltext::quote_ident;

/// A column of the primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    /// The type as SQL (`bigint`, `uuid`, `public."My Type"`), without a type modifier.
    pub type_sql: String,
    /// Date/time types: their text form depends on `DateStyle`, so positions are written in
    /// ISO 8601 through `to_json()`, which every `DateStyle` reads back.
    pub datetime: bool,
    /// The schema (quoted) of the comparison operators of the type's default btree operator
    /// class: the batches name them with it, so that no operator another role creates on the
    /// caller's search_path can stand in for them. `pg_catalog` for the built-in types.
    pub op_schema: String,
}

/// How the table is walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walk {
    Key(Vec<KeyColumn>),
    Pages,
}

/// The table and what to do to its rows.
#[derive(Debug, Clone)]
pub struct Backfill<'a> {
    /// Schema-qualified, quoted.
    pub table: &'a str,
    /// Partitioned tables are updated through the parent (no `ONLY`).
    pub partitioned: bool,
    pub walk: &'a Walk,
    pub set_clause: &'a str,
    pub where_clause: Option<&'a str>,
    /// The server can scan a TID range (14+); before, a page walk names every TID of its pages.
    pub tid_range_scan: bool,
}

impl Backfill<'_> {
    fn only(&self) -> &'static str {
        if self.partitioned { "" } else { "ONLY " }
    }

    fn columns(&self, keys: &[KeyColumn], qualified: bool) -> String {
        keys.iter()
            .map(|k| {
                if qualified {
                    format!("{}.{}", self.table, quote_ident(&k.name))
                } else {
                    quote_ident(&k.name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `keys op position`: a comparison of the key columns with a position, as a row comparison
    /// with the key's own (schema-qualified) operator when every column's operators live in one
    /// schema, else spelled out column by column (`a > x OR (a = x AND b > y)`).
    fn compare(&self, keys: &[KeyColumn], op: &str, param: u32) -> String {
        let schema = &keys[0].op_schema;
        if keys.iter().all(|k| &k.op_schema == schema) {
            return format!(
                "({}) OPERATOR({schema}.{op}) {}",
                self.columns(keys, true),
                Self::position(keys, param)
            );
        }
        let strict = op.trim_end_matches('=');
        let value = |i: usize, k: &KeyColumn| format!("${param}[{}]::{}", i + 1, k.type_sql);
        let column = |k: &KeyColumn| format!("{}.{}", self.table, quote_ident(&k.name));
        let mut alternatives = Vec::new();
        for i in 0..keys.len() {
            let mut terms: Vec<String> = keys[..i]
                .iter()
                .enumerate()
                .map(|(j, k)| format!("{} OPERATOR({}.=) {}", column(k), k.op_schema, value(j, k)))
                .collect();
            let k = &keys[i];
            let last_op = if i + 1 == keys.len() { op } else { strict };
            terms.push(format!(
                "{} OPERATOR({}.{last_op}) {}",
                column(k),
                k.op_schema,
                value(i, k)
            ));
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        format!("({})", alternatives.join(" OR "))
    }

    /// `($n[1]::t1, $n[2]::t2)`: a position (text[]) read back as key values.
    fn position(keys: &[KeyColumn], param: u32) -> String {
        let values: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("${param}[{}]::{}", i + 1, k.type_sql))
            .collect();
        format!("({})", values.join(", "))
    }

    /// The next range of keys: `$1` the last key done (text[], NULL before the first batch), `$2`
    /// the batch size. Returns one row `(last key of the range as text[], keys in the range)`,
    /// or none when no key is left.
    ///
    /// A full batch (the common case) is read with `OFFSET $2 - 1 LIMIT 1`, which reads the keys
    /// of the range from the index and keeps none of them; only when that finds nothing (the
    /// last, short batch) does the second branch number the remaining keys. `UNION ALL … LIMIT
    /// 1` runs the branches in order and stops at the first row.
    pub fn bound_sql(&self) -> Option<String> {
        let Walk::Key(keys) = self.walk else {
            return None;
        };
        let inner = self.columns(keys, false);
        let qualified = self.columns(keys, true);
        let as_text: Vec<String> = keys
            .iter()
            .map(|k| {
                let c = format!("s.{}", quote_ident(&k.name));
                if k.datetime {
                    format!("pg_catalog.to_json({c}) OPERATOR(pg_catalog.#>>) '{{}}'")
                } else {
                    format!("{c}::text")
                }
            })
            .collect();
        Some(format!(
            "(SELECT ARRAY[{as_text}]::text[], $2::bigint\n\
             \x20FROM (SELECT {qualified} FROM {only}{table}\n\
             \x20      WHERE $1::text[] IS NULL OR {after}\n\
             \x20      ORDER BY {qualified} OFFSET $2::bigint OPERATOR(pg_catalog.-) 1 LIMIT 1) AS s)\n\
             UNION ALL\n\
             (SELECT ARRAY[{as_text}]::text[], s.mg_row\n\
             \x20FROM (SELECT {inner}, pg_catalog.row_number() OVER (ORDER BY {inner}) AS mg_row\n\
             \x20      FROM (SELECT {qualified} FROM {only}{table}\n\
             \x20            WHERE $1::text[] IS NULL OR {after}\n\
             \x20            ORDER BY {qualified} LIMIT $2) AS page) AS s\n\
             \x20ORDER BY s.mg_row DESC LIMIT 1)\n\
             LIMIT 1",
            as_text = as_text.join(", "),
            only = self.only(),
            table = self.table,
            after = self.compare(keys, ">", 1),
        ))
    }

    /// The UPDATE of one batch. Key walk: `$1` the last key done (or NULL), `$2` the last key of
    /// this batch. Page walk: `$1` and `$2` the first and the end TID of the page range, `$3` the
    /// transaction ids of the job's earlier batches (their new row versions are skipped when
    /// PostgreSQL placed them on a page not walked yet: no row is updated twice).
    ///
    /// The user's clauses sit on lines of their own, so a trailing `--` comment in them cannot
    /// swallow the conditions that follow.
    pub fn update_sql(&self) -> String {
        let range = match self.walk {
            Walk::Key(keys) => format!(
                "($1::text[] IS NULL OR {after}) AND {upto}",
                after = self.compare(keys, ">", 1),
                upto = self.compare(keys, "<=", 2),
            ),
            Walk::Pages if self.tid_range_scan => format!(
                "{t}.ctid OPERATOR(pg_catalog.>=) $1 AND {t}.ctid OPERATOR(pg_catalog.<) $2 AND \
                 {t}.xmin OPERATOR(pg_catalog.<>) ALL ($3)",
                t = self.table
            ),
            // PostgreSQL 13 would scan the whole table for a ctid range; a list of TIDs is a TID
            // scan there, which reads only the batch's pages: `$4`, every TID of pages [$1, $2).
            Walk::Pages => format!(
                "{t}.ctid OPERATOR(pg_catalog.=) ANY ($4) AND {t}.xmin OPERATOR(pg_catalog.<>) ALL ($3)",
                t = self.table
            ),
        };
        let filter = match self.where_clause {
            Some(w) => format!(" AND (\n{w}\n)"),
            None => String::new(),
        };
        format!(
            "UPDATE {only}{table} SET\n{set}\nWHERE {range}{filter}",
            only = self.only(),
            table = self.table,
            set = self.set_clause,
        )
    }
}

/// The most pages one batch of a page walk covers (64 MB of 8 kB pages): it bounds what a batch
/// holds in memory (on PostgreSQL 13, the list of its pages' TIDs).
pub const MAX_PAGES_PER_BATCH: i64 = 8192;

/// Pages per batch for a page walk: about `batch_size` rows at `rows_per_page` (when nothing is
/// known, which only happens for a table without pages, one row per page), at most
/// [`MAX_PAGES_PER_BATCH`].
pub fn pages_per_batch(batch_size: i64, rows_per_page: Option<f64>) -> i64 {
    let per_page = rows_per_page.filter(|r| *r > 0.0).unwrap_or(1.0);
    ((batch_size as f64 / per_page).ceil() as i64).clamp(1, MAX_PAGES_PER_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, ty: &str) -> KeyColumn {
        KeyColumn {
            name: name.into(),
            type_sql: ty.into(),
            datetime: ty.starts_with("timestamp") || ty == "date",
            op_schema: "pg_catalog".into(),
        }
    }

    #[test]
    fn single_key_walk() {
        let walk = Walk::Key(vec![key("id", "bigint")]);
        let b = Backfill {
            table: "public.accounts",
            partitioned: false,
            walk: &walk,
            set_clause: "email_lower = lower(email)",
            where_clause: Some("email_lower IS NULL"),
            tid_range_scan: true,
        };
        assert_eq!(
            b.update_sql(),
            "UPDATE ONLY public.accounts SET\nemail_lower = lower(email)\n\
             WHERE ($1::text[] IS NULL OR (public.accounts.id) OPERATOR(pg_catalog.>) ($1[1]::bigint)) \
             AND (public.accounts.id) OPERATOR(pg_catalog.<=) ($2[1]::bigint) AND (\nemail_lower IS NULL\n)"
        );
        let bound = b.bound_sql().unwrap();
        assert!(
            bound.starts_with("(SELECT ARRAY[s.id::text]::text[], $2::bigint\n"),
            "{bound}"
        );
        assert!(
            bound.contains(
                "ORDER BY public.accounts.id OFFSET $2::bigint OPERATOR(pg_catalog.-) 1 LIMIT 1) AS s)\nUNION ALL\n"
            ),
            "{bound}"
        );
        assert!(bound.contains("FROM ONLY public.accounts\n"), "{bound}");
        assert!(bound.contains("ORDER BY public.accounts.id LIMIT $2"), "{bound}");
        assert!(bound.ends_with("ORDER BY s.mg_row DESC LIMIT 1)\nLIMIT 1"), "{bound}");
    }

    #[test]
    fn composite_and_quoted_keys_compare_as_rows() {
        let walk = Walk::Key(vec![key("Tenant", "integer"), key("at", "timestamp with time zone")]);
        let b = Backfill {
            table: "app.\"Events\"",
            partitioned: true,
            walk: &walk,
            set_clause: "n = 0",
            where_clause: None,
            tid_range_scan: true,
        };
        let u = b.update_sql();
        assert!(
            u.starts_with("UPDATE app.\"Events\" SET\n"),
            "partitioned: no ONLY: {u}"
        );
        assert!(u.contains(
            "(app.\"Events\".\"Tenant\", app.\"Events\".at) OPERATOR(pg_catalog.>) ($1[1]::integer, $1[2]::timestamp with time zone)"
        ));
        assert!(!u.contains("AND (\n"), "no filter without a where clause: {u}");
        let bound = b.bound_sql().unwrap();
        assert!(bound.contains("ARRAY[s.\"Tenant\"::text, pg_catalog.to_json(s.at) OPERATOR(pg_catalog.#>>) '{}']"));
        assert!(bound.contains("row_number() OVER (ORDER BY \"Tenant\", at)"));
    }

    #[test]
    fn page_walk_skips_the_jobs_own_row_versions() {
        let b = Backfill {
            table: "public.logs",
            partitioned: false,
            walk: &Walk::Pages,
            set_clause: "level = upper(level)",
            where_clause: Some("level <> upper(level) -- done rows"),
            tid_range_scan: true,
        };
        assert_eq!(b.bound_sql(), None);
        assert_eq!(
            b.update_sql(),
            "UPDATE ONLY public.logs SET\nlevel = upper(level)\nWHERE public.logs.ctid OPERATOR(pg_catalog.>=) $1 AND \
             public.logs.ctid OPERATOR(pg_catalog.<) $2 AND public.logs.xmin OPERATOR(pg_catalog.<>) ALL ($3) AND (\n\
             level <> upper(level) -- done rows\n)"
        );
    }

    #[test]
    fn keys_whose_operators_live_in_several_schemas_are_compared_column_by_column() {
        let mut citext = key("email", "public.citext");
        citext.op_schema = "public".into();
        let walk = Walk::Key(vec![key("tenant", "integer"), citext]);
        let b = Backfill {
            table: "app.users",
            partitioned: false,
            walk: &walk,
            set_clause: "n = 0",
            where_clause: None,
            tid_range_scan: true,
        };
        assert_eq!(
            b.update_sql(),
            "UPDATE ONLY app.users SET\nn = 0\nWHERE ($1::text[] IS NULL OR \
             ((app.users.tenant OPERATOR(pg_catalog.>) $1[1]::integer) OR \
             (app.users.tenant OPERATOR(pg_catalog.=) $1[1]::integer AND app.users.email OPERATOR(public.>) $1[2]::public.citext))) \
             AND ((app.users.tenant OPERATOR(pg_catalog.<) $2[1]::integer) OR \
             (app.users.tenant OPERATOR(pg_catalog.=) $2[1]::integer AND app.users.email OPERATOR(public.<=) $2[2]::public.citext))"
        );
    }

    #[test]
    fn pages_per_batch_follows_density() {
        assert_eq!(pages_per_batch(10_000, Some(125.0)), 80);
        assert_eq!(pages_per_batch(10, Some(125.0)), 1);
        assert_eq!(pages_per_batch(100, None), 100);
        assert_eq!(pages_per_batch(100, Some(0.0)), 100);
        assert_eq!(pages_per_batch(i32::MAX as i64, Some(1.0)), MAX_PAGES_PER_BATCH);
    }

    #[test]
    fn page_walk_on_postgres_13_names_the_tids_of_its_pages() {
        let b = Backfill {
            table: "public.logs",
            partitioned: false,
            walk: &Walk::Pages,
            set_clause: "level = upper(level)",
            where_clause: None,
            tid_range_scan: false,
        };
        assert!(
            b.update_sql()
                .contains("public.logs.ctid OPERATOR(pg_catalog.=) ANY ($4)"),
            "{}",
            b.update_sql()
        );
    }
}
