#!/usr/bin/env bash
# Restoring a pg_dump into a guarded database needs no extra flags: plain format through psql -f,
# custom format through pg_restore, and pg_restore -j 2. The restore builds indexes, primary,
# unique and foreign keys and refreshes materialized views on tables it just filled; the guard
# recognises a restore session and leaves it alone.
source "$(dirname "$0")/common.sh"
log "integration: pg_dump / pg_restore into guarded databases"
work=$(mktemp -d /tmp/mg-restore.XXXXXX)
trap 'rm -rf "$work"' EXIT

fresh_db mg_source guarded
q -1 -d mg_source <<'SQL'
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, region text);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    total numeric(10,2) CHECK (total >= 0),
    placed_at date NOT NULL
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE TABLE events (id bigint, kind text, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_kind_idx ON events (kind);
INSERT INTO customers SELECT g, 'c' || g || '@example.com', 'r' || (g % 5) FROM generate_series(1, 2000) g;
INSERT INTO orders SELECT g, 1 + g % 2000, g % 100, date '2025-01-01' + g % 600 FROM generate_series(1, 20000) g;
INSERT INTO events SELECT g, 'k' || (g % 7), date '2025-01-01' + g % 700 FROM generate_series(1, 5000) g;
CREATE MATERIALIZED VIEW sales_by_region AS
    SELECT region, sum(total) AS total FROM orders JOIN customers c ON c.id = customer_id GROUP BY region;
CREATE UNIQUE INDEX sales_by_region_key ON sales_by_region (region);
SQL
# A registered migration, so that the history has rows linked to it.
q -d mg_source <<'SQL'
SELECT migrate_guard.begin_migration('0002_customer_notes', 'sha256:abc');
ALTER TABLE customers ADD COLUMN notes text;
COMMENT ON COLUMN customers.notes IS 'free text';
SELECT migrate_guard.end_migration();
SQL

shape() { # the things a restore must rebuild
    val "$1" "SELECT (SELECT count(*) FROM customers) || '/' || (SELECT count(*) FROM orders) || '/' ||
                     (SELECT count(*) FROM events) || '/' || (SELECT count(*) FROM sales_by_region) || ' rows; ' ||
                     (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public') || ' indexes; ' ||
                     (SELECT count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace) || ' constraints'"
}
expected=$(shape mg_source)
# The migration history travels with the dump (configuration tables of the extension), and the
# restore's own DDL is not added to it.
history() {
    val "$1" "SELECT (SELECT count(*) || ' rows ' || md5(string_agg(concat_ws('|', id, executed_at, command_tag,
                     object_identity, statement, verdict, migration_id), ',' ORDER BY id)) FROM migrate_guard.history)
                     || '; ' || (SELECT count(*) || ' migrations ' || md5(string_agg(concat_ws('|', id, name, checksum,
                     status, statement_count), ',' ORDER BY id)) FROM migrate_guard.migrations)"
}
expected_history=$(history mg_source)
check "the source database has history and a migration" contains "$expected_history" "; 1 migrations"

pg_dump -d mg_source -f "$work/plain.sql"
pg_dump -d mg_source -Fc -f "$work/custom.dump"

# The same DDL from a normal session is blocked (control: the restore passes for a reason).
fresh_db mg_restore_control guarded
q -d mg_restore_control -c "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)"
out=$(q -d mg_restore_control -c "CREATE INDEX ON t (id)" 2>&1 || true)
check "outside a restore, CREATE INDEX on a filled table is blocked" contains "$out" "migrate_guard: blocking-index"

fresh_db mg_restore_plain guarded
out=$(psql -X -v ON_ERROR_STOP=1 -d mg_restore_plain -f "$work/plain.sql" 2>&1) && rc=0 || rc=$?
check "plain format through psql -f: exit status 0" eq "$rc" 0
check "plain format: no statement blocked" eval '! grep -q "migrate_guard:" <<<"$out"'
check "plain format: data, indexes and constraints restored" eq "$(shape mg_restore_plain)" "$expected"
check "plain format: migration history restored as it was" eq "$(history mg_restore_plain)" "$expected_history"

fresh_db mg_restore_custom guarded
out=$(pg_restore -d mg_restore_custom --exit-on-error "$work/custom.dump" 2>&1) && rc=0 || rc=$?
check "custom format through pg_restore: exit status 0" eq "$rc" 0
check "custom format: data, indexes and constraints restored" eq "$(shape mg_restore_custom)" "$expected"
check "custom format: migration history restored as it was" eq "$(history mg_restore_custom)" "$expected_history"

fresh_db mg_restore_parallel guarded
out=$(pg_restore -d mg_restore_parallel -j 2 --exit-on-error "$work/custom.dump" 2>&1) && rc=0 || rc=$?
check "custom format through pg_restore -j 2: exit status 0" eq "$rc" 0
check "pg_restore -j 2: data, indexes and constraints restored" eq "$(shape mg_restore_parallel)" "$expected"
check "pg_restore -j 2: migration history restored as it was" eq "$(history mg_restore_parallel)" "$expected_history"

# Into a database that does not have the extension yet: the dump installs it early, and the
# rest of the restore runs guarded.
fresh_db mg_restore_bare
out=$(psql -X -v ON_ERROR_STOP=1 -d mg_restore_bare -f "$work/plain.sql" 2>&1) && rc=0 || rc=$?
check "plain format into a database without the extension: exit status 0" eq "$rc" 0
triggers="SELECT string_agg(evtname || ':' || evtevent, ' ' ORDER BY evtname) FROM pg_event_trigger WHERE evtname LIKE 'migrate_guard%'"
check "the dump installed the guard (its event triggers as in a fresh install)" eq "$(val mg_restore_bare "$triggers")" "$(val mg_restore_control "$triggers")"
check "and the restore completed" eq "$(shape mg_restore_bare)" "$expected"
check "and the migration history came with it" eq "$(history mg_restore_bare)" "$expected_history"
# New DDL after the restore continues the history after the restored rows (sessions take ids in
# blocks, so the next id is past every restored one, not necessarily right after the last).
q -d mg_restore_plain -c "CREATE TABLE after_restore (id int)"
check "DDL after a restore gets an id after every restored one" eq \
    "$(val mg_restore_plain "SELECT command_tag || ' ' || (id > (SELECT max(id) FROM migrate_guard.history WHERE object_identity <> 'public.after_restore'))::text FROM migrate_guard.history WHERE object_identity = 'public.after_restore'")" "CREATE TABLE true"

for db in mg_source mg_restore_control mg_restore_plain mg_restore_custom mg_restore_parallel mg_restore_bare; do
    q -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)"
done
finish "restore"
