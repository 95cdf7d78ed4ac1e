#!/usr/bin/env bash
# migrate_guard.check() and the migrate-guard CLI through real servers: every output format
# and exit status, standard input, a connection failure, a database without the extension,
# TLS (sslmode prefer to verify-full), and a streaming replica (a hot standby started here with
# pg_basebackup -R) that gives the same rows as its primary.
source "$(dirname "$0")/common.sh"

[ -x "$MG_CLI" ] || die "build the CLI first: cargo build -p migrate-guard"
work=$(mktemp -d /tmp/mg-check.XXXXXX)
chmod 0755 "$work"
standby_stop() {
    if as_postgres test -f "$STANDBY_PGDATA/postmaster.pid"; then
        as_postgres "$PG_BIN/pg_ctl" -D "$STANDBY_PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
}
cleanup() { standby_stop; as_root rm -rf "$STANDBY_PGDATA" "$work"; }
trap cleanup EXIT

log "integration: migrate_guard.check() and the migrate-guard CLI"
fresh_db mg_check guarded
q -d mg_check -c "CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text)" \
    -c "INSERT INTO accounts SELECT g, 'u' || g, 'free' FROM generate_series(1, 5000) g" \
    -c "VACUUM ANALYZE accounts"
fresh_db mg_check_plain

cat > "$work/0001_orders.sql" <<'SQL'
-- 0001: orders, and two changes to accounts
CREATE TABLE orders (id bigserial PRIMARY KEY, account_id bigint);
CREATE INDEX accounts_plan_idx ON accounts (plan);
ALTER TABLE accounts
    ADD COLUMN tier text NOT NULL;
SQL
cat > "$work/0002_more.sql" <<'SQL'
CREATE INDEX orders_account_idx ON orders (account_id);
ALTER TABLE accounts RENAME COLUMN email TO mail;
SELEC 1;
SQL
cat > "$work/safe.sql" <<'SQL'
CREATE INDEX CONCURRENTLY accounts_plan_idx ON accounts (plan);
ALTER TABLE accounts ADD COLUMN tier text NOT NULL DEFAULT 'free';
SQL
cat > "$work/warn.sql" <<'SQL'
SET migrate_guard.mode = warn;
CREATE INDEX accounts_plan_idx ON accounts (plan);
SQL
cat > "$work/empty_table.sql" <<'SQL'
CREATE TABLE audit (id bigint, at timestamptz);
ALTER TABLE audit ADD COLUMN who text NOT NULL;
SQL
export PGDATABASE=mg_check
mg() { "$MG_CLI" "$@"; }
f1=$work/0001_orders.sql
f2=$work/0002_more.sql

out=$(mg check "$f1" "$f2" 2>&1) && rc=0 || rc=$?
check "text: exit 1 when a statement would be blocked" eq "$rc" 1
check "text: file:line:col: verdict rule: message" contains "$out" \
    "$f1:3:1: block blocking-index: CREATE INDEX would block writes to table public.accounts while the index is built"
check "text: the detail under it" contains "$out" \
    "    CREATE INDEX without CONCURRENTLY holds a SHARE lock on table public.accounts (about 5000 rows,"
check "text: and the hint" contains "$out" \
    "    hint: Build it without blocking writes, outside a transaction block: CREATE INDEX CONCURRENTLY accounts_plan_idx ON accounts (plan);"
check "text: a statement over two lines is found at its first line" contains "$out" "$f1:4:1: block add-column-not-null:"
check "text: the second file has its own line numbers" contains "$out" "$f2:2:1: block rename-column:"
check "text: the files are one migration (orders, created by the first, is known to the second)" \
    eq "$(grep -c 'does not exist' <<<"$out")" 0
check "text: PostgreSQL's own error, with its SQLSTATE" contains "$out" "$f2:3:1: error 42601: syntax error at or near \"SELEC\""
check "text: the summary" contains "$out" "migrate-guard: 2 files checked: 3 blocked, 0 warned, 0 allowed, 1 error"

json=$(mg check --format json "$f1" "$f2") && rc=0 || rc=$?
check "json: exit 1" eq "$rc" 1
summary=$(python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin]
print(len(rows), " ".join("%s:%s:%s:%s:%s" % (r["file"].rsplit("/", 1)[1], r["line"], r["col"], r["verdict"], r["rule"] or r["sqlstate"]) for r in rows))
keys = set().union(*[r.keys() for r in rows])
print(" ".join(sorted(keys)))' <<<"$json")
check "json: one object per finding, every field" eq "$summary" \
    "4 0001_orders.sql:3:1:block:blocking-index 0001_orders.sql:4:1:block:add-column-not-null 0002_more.sql:2:1:block:rename-column 0002_more.sql:3:1:error:42601
col detail end_line file hint line message rule sqlstate statement statement_no verdict"

gh=$(mg check --format github "$f1" "$f2") && rc=0 || rc=$?
check "github: exit 1" eq "$rc" 1
check "github: an error annotation per blocked statement" contains "$gh" \
    "::error file=$f1,line=4,col=1,endLine=5,title=migrate_guard block add-column-not-null::ADD COLUMN tier NOT NULL without a DEFAULT fails on table public.accounts, which holds data%0A"
check "github: four annotations" eq "$(grep -c '^::error ' <<<"$gh")" 4

sarif=$(mg check --format sarif "$f1" "$f2") && rc=0 || rc=$?
check "sarif: exit 1" eq "$rc" 1
summary=$(python3 -c '
import json, sys
log = json.load(sys.stdin)
run = log["runs"][0]
print(log["version"], run["tool"]["driver"]["name"], ",".join(r["id"] for r in run["tool"]["driver"]["rules"]))
for r in run["results"]:
    loc = r["locations"][0]["physicalLocation"]
    print(r["ruleId"], r["level"], loc["artifactLocation"]["uri"].rsplit("/", 1)[1], loc["region"]["startLine"], loc["region"]["endLine"])' <<<"$sarif")
check "sarif: one log, the rules with findings, a result per finding with its place" eq "$summary" \
"2.1.0 migrate-guard 42601,add-column-not-null,blocking-index,rename-column
blocking-index error 0001_orders.sql 3 3
add-column-not-null error 0001_orders.sql 4 5
rename-column error 0002_more.sql 2 2
42601 error 0002_more.sql 3 3"
gl=$(mg check --format gitlab "$f1" "$f2") && rc=0 || rc=$?
check "gitlab: exit 1" eq "$rc" 1
summary=$(python3 -c '
import json, sys
issues = json.load(sys.stdin)
print(" ".join("%s:%s:%s:%s" % (i["check_name"], i["severity"], i["location"]["path"].rsplit("/", 1)[1], i["location"]["lines"]["begin"]) for i in issues))
print(len(set(i["fingerprint"] for i in issues)))' <<<"$gl")
check "gitlab: a Code Quality issue per finding, each with its own fingerprint" eq "$summary" \
"blocking-index:blocker:0001_orders.sql:3 add-column-not-null:blocker:0001_orders.sql:4 rename-column:blocker:0002_more.sql:2 42601:critical:0002_more.sql:3
4"
check "gitlab: the same check gives the same fingerprints" eq "$(mg check --format gitlab "$f1" "$f2" || true)" "$gl"

out=$(mg check --format github "$work/warn.sql") && rc=0 || rc=$?
check "warn mode: exit 0, a warning annotation" eq "$rc:$(grep -c '^::warning file=' <<<"$out")" "0:1"
out=$(mg check "$work/safe.sql") && rc=0 || rc=$?
check "the safe version: exit 0" eq "$rc" 0
check "the safe version: nothing to report" eq "$out" "migrate-guard: 1 file checked: nothing would be blocked"
out=$(mg check "$work/empty_table.sql") && rc=0 || rc=$?
check "a table the script creates is empty: exit 0" eq "$rc" 0
out=$(mg check --assume-populated "$work/empty_table.sql") && rc=0 || rc=$?
check "--assume-populated: judged as if it held data" eq "$rc" 1
check "--assume-populated: and says so" contains "$out" "treated as holding data because migrate_guard.assume_populated is on"

out=$(mg check - <"$f1") && rc=0 || rc=$?
check "standard input: exit 1" eq "$rc" 1
check "standard input: named <stdin>" contains "$out" "<stdin>:3:1: block blocking-index:"
out=$(printf 'CREATE INDEX ON accounts (plan);' | mg check) && rc=0 || rc=$?
check "standard input is the default" eq "$rc" 1
out=$(mg check --format github --stdin-name db/0001_orders.sql - <"$f1") && rc=0 || rc=$?
check "standard input named with --stdin-name" contains "$out" "::error file=db/0001_orders.sql,line=3,col=1,"

# Failures of the check itself: exit 2 with a message.
err=$(mg check --database-url "postgresql://postgres@localhost:1/mg_check" "$f1" 2>&1 >/dev/null) && rc=0 || rc=$?
check "connection failure: exit 2" eq "$rc" 2
check "connection failure: says where and why" contains "$err" "cannot connect to localhost port 1 as postgres (database mg_check): error connecting to server: Connection refused"
err=$(PGDATABASE=mg_check_plain mg check "$f1" 2>&1 >/dev/null) && rc=0 || rc=$?
check "no extension in the database: exit 2" eq "$rc" 2
check "no extension: says how to install it" contains "$err" "the migrate_guard extension is not installed in this database (CREATE EXTENSION migrate_guard;)"
err=$(mg check --format xml "$f1" 2>&1) && rc=0 || rc=$?
check "usage error: exit 2" eq "$rc:$(grep -c "invalid value 'xml'" <<<"$err")" "2:1"
err=$(mg check "$work/missing.sql" 2>&1) && rc=0 || rc=$?
check "unreadable file: exit 2" eq "$rc:$err" "2:migrate-guard: cannot read $work/missing.sql: No such file or directory (os error 2)"

# Over TCP: prefer falls back to a plain connection; require needs TLS.
out=$(mg check --database-url "postgresql://postgres@localhost:$TEST_PORT/mg_check?sslmode=prefer" "$f1") && rc=0 || rc=$?
check "TCP, sslmode=prefer against a server without TLS: checked" eq "$rc" 1
err=$(mg check --database-url "host=localhost port=$TEST_PORT user=postgres dbname=mg_check sslmode=require" "$f1" 2>&1) && rc=0 || rc=$?
check "TCP, sslmode=require against a server without TLS: exit 2" eq "$rc" 2
check "TCP, sslmode=require: says so" contains "$err" "server does not support TLS"

# --- a hot standby, with TLS -----------------------------------------------------------------
log "integration: check() on a streaming replica (pg_basebackup -R), over TLS"
standby_stop
as_root rm -rf "$STANDBY_PGDATA"
as_postgres "$PG_BIN/pg_basebackup" -D "$STANDBY_PGDATA" -R -X stream -c fast -h "$MG_SOCKET_DIR" -p "$TEST_PORT" -U postgres
# TLS: a certificate for localhost issued by a throw-away CA (root.crt, the client's sslrootcert).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=migrate-guard-test-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$work/ca.key" -out "$work/root.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    >"$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/root.crt" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
    -extfile "$work/server.ext" -out "$work/server.crt" 2>/dev/null
as_postgres tee "$STANDBY_PGDATA/server.crt" <"$work/server.crt" >/dev/null
as_postgres tee "$STANDBY_PGDATA/server.key" <"$work/server.key" >/dev/null
as_postgres chmod 0600 "$STANDBY_PGDATA/server.key"
# Only encrypted TCP connections are accepted: a client that gets in used TLS.
{ echo "hostnossl all all all reject"; as_postgres cat "$STANDBY_PGDATA/pg_hba.conf"; } >"$work/pg_hba.conf"
as_postgres tee "$STANDBY_PGDATA/pg_hba.conf" <"$work/pg_hba.conf" >/dev/null
printf "port = %s\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nhot_standby = on\n" "$STANDBY_PORT" \
    | as_postgres tee -a "$STANDBY_PGDATA/postgresql.conf" >/dev/null
as_postgres env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$STANDBY_PGDATA" -w -t 60 -l "$STANDBY_PGDATA/server.log" start >/dev/null \
    || { as_postgres tail -20 "$STANDBY_PGDATA/server.log"; die "could not start the standby"; }
standby() { psql -X -At -v ON_ERROR_STOP=1 -p "$STANDBY_PORT" "$@"; }
check "the standby is in recovery" eq "$(standby -d mg_check -c 'SELECT pg_is_in_recovery()')" t
# A change made after the base backup reaches the standby through streaming replication.
q -d mg_check -c "CREATE TABLE late (id int)" -c "INSERT INTO late SELECT generate_series(1, 3000)" -c "ANALYZE late"
# The insert position, not pg_current_wal_lsn(): the test cluster runs with synchronous_commit
# off, so what is written can lag behind what the commits above inserted.
lsn=$(val mg_check "SELECT pg_current_wal_insert_lsn()")
replayed=f
for _ in $(seq 1 600); do
    replayed=$(standby -d mg_check -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")
    [ "$replayed" = t ] && break
    sleep 0.1
done
check "the standby replayed the primary's changes" eq "$replayed" t

script="$(cat "$f1" "$f2"); CREATE INDEX ON late (id);"
rows() { psql -X -At -v ON_ERROR_STOP=1 -v "script=$script" "$@" <<<"SELECT statement_no, line, col, rule, verdict, message, detail, hint FROM migrate_guard.check(:'script');"; }
on_primary=$(rows -d mg_check)
on_standby=$(rows -p "$STANDBY_PORT" -d mg_check)
check "check() on the standby: rows" eq "$(wc -l <<<"$on_standby")" "$(wc -l <<<"$on_primary")"
check "check() on the standby: the same rows as on the primary" eq "$on_standby" "$on_primary"
check "check() on the standby: the table created after the backup is judged with its rows" contains "$on_standby" \
    "CREATE INDEX without CONCURRENTLY holds a SHARE lock on table public.late (about 3000 rows"

url="postgresql://postgres@localhost:$STANDBY_PORT/mg_check"
primary_text=$(mg check "$f1" "$f2") || true
out=$(mg check --database-url "$url?sslmode=verify-full&sslrootcert=$work/root.crt" "$f1" "$f2") && rc=0 || rc=$?
check "CLI on the standby, sslmode=verify-full: exit 1" eq "$rc" 1
check "CLI on the standby: the same report as on the primary" eq "$out" "$primary_text"
err=$(mg check --database-url "$url?sslmode=disable" "$f1" 2>&1) && rc=0 || rc=$?
check "the standby refuses unencrypted TCP (so the CLI's connections above were encrypted)" eq "$rc" 2
check "sslmode=disable: refused by pg_hba.conf" contains "$err" "pg_hba.conf"
out=$(mg check --database-url "$url?sslmode=require" "$f1") && rc=0 || rc=$?
check "sslmode=require: encrypted, certificate not verified" eq "$rc" 1
err=$(mg check --database-url "postgresql://postgres@127.0.0.1:$STANDBY_PORT/mg_check?sslmode=verify-full&sslrootcert=$work/root.crt" "$f1" 2>&1) && rc=0 || rc=$?
check "sslmode=verify-full, a host name the certificate does not name: refused (exit 2)" eq "$rc" 2
check "sslmode=verify-full: says why" contains "$err" "certificate"
out=$(mg check --database-url "postgresql://postgres@127.0.0.1:$STANDBY_PORT/mg_check?sslmode=verify-ca&sslrootcert=$work/root.crt" "$f1") && rc=0 || rc=$?
check "sslmode=verify-ca: the chain is enough" eq "$rc" 1
err=$(mg check --database-url "$url?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt" "$f1" 2>&1) && rc=0 || rc=$?
check "sslmode=verify-full with other roots: refused (exit 2)" eq "$rc" 2

standby_stop
q -d postgres -c "DROP DATABASE mg_check WITH (FORCE)" -c "DROP DATABASE mg_check_plain WITH (FORCE)"
finish "check"
