#!/usr/bin/env bash
# Create the demo database, a populated sample table, and run a short migration that shows a
# blocked statement with its full message, then its safe alternative passing, a batched
# backfill, and the migration history.
source "$(dirname "$0")/lib.sh"

psql_demo() { psql -X -h "$MG_SOCKET_DIR" -p "$DEMO_PORT" -U postgres "$@"; }

log "creating database demo with the extension and a sample table"
psql_demo -q -d postgres -c "DROP DATABASE IF EXISTS demo WITH (FORCE)" -c "CREATE DATABASE demo"
psql_demo -q -d demo <<'SQL'
CREATE EXTENSION migrate_guard;
CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    plan text,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO accounts (id, email, plan)
SELECT g, 'user' || g || '@example.com', (ARRAY['free', 'pro', NULL])[1 + g % 3]
FROM generate_series(1, 200000) g;
ANALYZE accounts;
SQL

log "running the demo migration (psql -f, as a migration tool would)"
demo_sql=$(mktemp /tmp/mg-demo.XXXXXX.sql)
trap 'rm -f "$demo_sql"' EXIT
cat > "$demo_sql" <<'SQL'
\echo '-- 1. A plain CREATE INDEX on a 200,000-row table would block every write while it builds:'
CREATE INDEX accounts_plan_idx ON accounts (plan);
\echo ''
\echo '-- 2. The safe alternative from the HINT passes:'
CREATE INDEX CONCURRENTLY accounts_plan_idx ON accounts (plan);
\echo ''
\echo '-- 3. Making a column NOT NULL would scan the table under an ACCESS EXCLUSIVE lock:'
ALTER TABLE accounts ALTER COLUMN plan SET NOT NULL;
\echo ''
\echo '-- 4. A deliberate exception, allowed for one transaction:'
BEGIN;
SET LOCAL migrate_guard.allow = 'rename-column';
ALTER TABLE accounts RENAME COLUMN created_at TO signed_up_at;
COMMIT;
\echo ''
\echo '-- 5. A new column filled in committed, resumable batches instead of one long locking UPDATE:'
ALTER TABLE accounts ADD COLUMN email_domain text;
CALL migrate_guard.backfill('accounts', 'email_domain = split_part(email, ''@'', 2)', 'email_domain IS NULL', batch_size => 50000);
\echo ''
\echo '-- 6. Every DDL statement that committed is in migrate_guard.history (blocked ones are not):'
SELECT command_tag, verdict, rules_allowed, statement
FROM migrate_guard.history WHERE table_name = 'public.accounts' ORDER BY id;
SQL
psql_demo -d demo -f "$demo_sql" 2>&1 | sed "s|^psql:$demo_sql:|line |"

log "checking the next migration before it runs (the migrate-guard command-line client)"
next_dir=$(mktemp -d /tmp/mg-demo-next.XXXXXX)
trap 'rm -f "$demo_sql"; rm -rf "$next_dir"' EXIT
cat > "$next_dir/0002_orders.sql" <<'SQL'
CREATE TABLE orders (id bigserial PRIMARY KEY, account_id bigint NOT NULL, total numeric(12,2));
CREATE INDEX orders_account_idx ON orders (account_id);
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id);
ALTER TABLE accounts ADD COLUMN tier text NOT NULL;
ALTER TABLE accounts RENAME COLUMN plan TO subscription;
SQL
echo ""
echo "-- 7. The next migration, checked before the deploy without running it:"
echo "\$ cat 0002_orders.sql"
cat "$next_dir/0002_orders.sql"
echo "\$ migrate-guard check 0002_orders.sql"
(cd "$next_dir" && PGHOST=$MG_SOCKET_DIR PGPORT=$DEMO_PORT PGUSER=postgres PGDATABASE=demo \
    "$REPO_ROOT/target/release/migrate-guard" check 0002_orders.sql) && rc=0 || rc=$?
echo "(exit status $rc: 1 means the deploy would be stopped)"

cat <<MSG

The demo database is running. Connect with:
    psql -h $MG_SOCKET_DIR -p $DEMO_PORT -U postgres demo
(or: make psql). Stop the cluster with: make stop
MSG
