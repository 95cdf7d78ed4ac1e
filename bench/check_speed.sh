#!/usr/bin/env bash
# migrate-guard check against squawk (squawk-cli from npm, the anchor): the same 2,000-statement
# migration file, alternating runs, whole processes timed from start to exit (for migrate-guard:
# connecting, check() in the server, printing the report). Prints the median of each, statements
# per second and the ratio. Target: migrate-guard at least as fast as squawk.
#
# squawk is timed twice: as users run it from npm (a Node wrapper that starts the native binary)
# and its native binary alone, the stricter anchor.
#
# Usage: bench/check_speed.sh [runs per tool, default 11]
# Needs the extension installed (make install) and the CLI built in release mode (make cli).
source "$(dirname "$0")/../scripts/lib.sh"
runs=${1:-11}
cli=$REPO_ROOT/target/release/migrate-guard
[ -x "$cli" ] || die "build the CLI first: cargo build --release -p migrate-guard"

tools=$REPO_ROOT/target/tools/node
if [ ! -x "$tools/node_modules/.bin/squawk" ]; then
    log "installing squawk-cli into $tools"
    npm install --silent --no-audit --no-fund --prefix "$tools" squawk-cli@2 >/dev/null
fi
squawk_npm=$tools/node_modules/.bin/squawk
squawk_native=$(find "$tools/node_modules/@squawk-cli" -type f -name squawk -perm -u+x | head -1)
[ -x "$squawk_native" ] || die "squawk's native binary not found under $tools/node_modules/@squawk-cli"

bash "$REPO_ROOT/scripts/cluster.sh" fresh bench >/dev/null
work=$(mktemp -d /tmp/mg-bench.XXXXXX)
trap 'rm -rf "$work"; bash "$REPO_ROOT/scripts/cluster.sh" stop bench >/dev/null' EXIT
psql_b() { psql -X -q -v ON_ERROR_STOP=1 -h "$MG_SOCKET_DIR" -p "$BENCH_PORT" -U postgres "$@"; }
psql_b -d postgres -c "CREATE DATABASE mg_check_bench"
psql_b -d mg_check_bench <<'SQL'
CREATE EXTENSION migrate_guard;
SET migrate_guard.mode = off;
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text, created_at timestamptz);
INSERT INTO accounts SELECT g, 'u' || g, 'free', now() FROM generate_series(1, 100000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint, total numeric(12,2));
INSERT INTO orders SELECT g, g % 100000 + 1, g FROM generate_series(1, 200000) g;
VACUUM ANALYZE;
SQL

# A long-lived project's migrations: new tables with their indexes and comments, columns and
# indexes added to the two big tables (safe and unsafe ways), constraints added NOT VALID and
# validated, data fixes, transaction blocks.
migration=$work/migration.sql
for i in $(seq 1 100); do
    cat <<SQL
BEGIN;
CREATE TABLE feature_$i (id bigint PRIMARY KEY, account_id bigint NOT NULL, name text, created_at timestamptz DEFAULT now());
CREATE INDEX feature_${i}_account_idx ON feature_$i (account_id);
ALTER TABLE feature_$i ADD CONSTRAINT feature_${i}_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
COMMENT ON TABLE feature_$i IS 'feature $i';
COMMIT;
ALTER TABLE feature_$i VALIDATE CONSTRAINT feature_${i}_account_fk;
ALTER TABLE accounts ADD COLUMN flag_$i boolean;
ALTER TABLE accounts ALTER COLUMN flag_$i SET DEFAULT false;
CREATE INDEX CONCURRENTLY accounts_flag_${i}_idx ON accounts (flag_$i);
CREATE INDEX orders_total_${i}_idx ON orders (total);
ALTER TABLE orders ADD COLUMN note_$i text NOT NULL;
UPDATE feature_$i SET name = 'x' WHERE name IS NULL;
INSERT INTO feature_$i (id, account_id) VALUES (1, 1);
ALTER TABLE feature_$i ALTER COLUMN name SET NOT NULL;
ALTER TABLE orders ADD CONSTRAINT orders_total_${i}_positive CHECK (total >= 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_${i}_positive;
ALTER TABLE feature_$i RENAME COLUMN created_at TO created;
DROP INDEX CONCURRENTLY IF EXISTS accounts_flag_${i}_idx;
ALTER TABLE accounts DROP COLUMN flag_$i;
SQL
done > "$migration"
statements=$(grep -c ';$' "$migration")

export PGHOST=$MG_SOCKET_DIR PGPORT=$BENCH_PORT PGUSER=postgres PGDATABASE=mg_check_bench
# Sanity: both tools read the whole file and report findings.
mg_findings=$({ "$cli" check --format json "$migration" || true; } | wc -l)
sq_findings=$({ "$squawk_native" --reporter gcc "$migration" 2>/dev/null || true; } | grep -c ': warning\|: error' || true)
[ "$mg_findings" -gt 0 ] && [ "$sq_findings" -gt 0 ] || die "a tool reported nothing (migrate-guard: $mg_findings, squawk: $sq_findings)"

ms() { # run a command, print its wall time in milliseconds
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}
declare -a mg sq_npm sq_native
# One warm-up run each (page cache, the server's catalog caches), then alternate.
ms "$cli" check "$migration" >/dev/null
ms "$squawk_npm" --reporter gcc "$migration" >/dev/null
for _ in $(seq 1 "$runs"); do
    mg+=("$(ms "$cli" check "$migration")")
    sq_npm+=("$(ms "$squawk_npm" --reporter gcc "$migration")")
    sq_native+=("$(ms "$squawk_native" --reporter gcc "$migration")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m_mg=$(median "${mg[@]}"); m_npm=$(median "${sq_npm[@]}"); m_native=$(median "${sq_native[@]}")
rate() { awk -v n="$statements" -v ms="$1" 'BEGIN { printf "%.0f", (ms > 0) ? n * 1000 / ms : 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

echo "check speed: one $statements-statement migration file, $runs alternating runs per tool (medians)"
echo "migrate-guard $("$cli" --version | awk '{print $2}') on PostgreSQL $PG_MAJOR (Unix socket; connection included); squawk $("$squawk_native" --version | awk '{print $2}')"
printf '%-34s %10s %14s %10s\n' tool "ms" "statements/s" findings
printf '%-34s %10s %14s %10s\n' "migrate-guard check" "$m_mg" "$(rate "$m_mg")" "$mg_findings"
printf '%-34s %10s %14s %10s\n' "squawk (npm, as users run it)" "$m_npm" "$(rate "$m_npm")" "$sq_findings"
printf '%-34s %10s %14s %10s\n' "squawk (native binary)" "$m_native" "$(rate "$m_native")" "$sq_findings"
echo "speed ratio, migrate-guard / squawk: $(ratio "$m_npm" "$m_mg") against npm's squawk, $(ratio "$m_native" "$m_mg") against its native binary (>= 1.00: at least squawk's speed)"
if [ "$m_mg" -le "$m_npm" ]; then
    echo "target (at least squawk's speed, as installed from npm): met"
else
    echo "target (at least squawk's speed, as installed from npm): NOT met"
fi
