#!/usr/bin/env bash
# Expand → backfill → contract under load: for each kind of expansion, two pgbench clients, one
# the old application version (old names), one the new (new names), write and read all through
# the expansion; neither may see a single error. The backfill is killed halfway and resumed.
# At the end every row agrees, no write is lost, and the schema is the expected one.
source "$(dirname "$0")/common.sh"
log "integration: expansions under two application versions (pgbench), backfill killed and resumed"
work=$(mktemp -d /tmp/mg-expansions.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
db=mg_expansions
fresh_db $db guarded
PGBENCH=$PG_BIN/pgbench
q -d $db <<'SQL'
SET client_min_messages = warning;
CREATE TABLE users (id serial PRIMARY KEY, username text NOT NULL, score int NOT NULL DEFAULT 0);
INSERT INTO users (username) SELECT 'user' || g FROM generate_series(1, 20000) g;
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     user_id int NOT NULL REFERENCES users (id), amount int NOT NULL);
CREATE INDEX orders_user_id_idx ON orders (user_id);
INSERT INTO orders (user_id, amount) SELECT 1 + g % 20000, g FROM generate_series(1, 40000) g;
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance int NOT NULL DEFAULT 0);
INSERT INTO accounts SELECT g, 'owner' || g, 0 FROM generate_series(1, 5000) g;
CREATE SEQUENCE old_ids START 1000000;
CREATE SEQUENCE new_ids START 1500000000;
ANALYZE;
SQL

# A pgbench client in the background: client name seconds script-text. It runs a fixed number of
# transactions at 400 per second (about that many seconds), so that the count of rows it wrote is
# known exactly (a run cut off by -T can leave a script half done).
start_client() {
    printf '%s\n' "$3" >"$work/$1.sql"
    "$PGBENCH" -n -c 1 -j 1 -R 400 -t $(($2 * 400)) -f "$work/$1.sql" $db >"$work/$1.out" 2>&1 &
    pids+=($!)
    eval "pid_$1=$!"
}
# Waits for a client (in this shell: a subshell cannot wait for it); sets tx to its transactions,
# 0 if it failed.
finish_client() {
    local pid_var="pid_$1" rc=0
    wait "${!pid_var}" || rc=$?
    tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/$1.out")
    if [ $rc -ne 0 ] || grep -q "ERROR\|aborted" "$work/$1.out" || [ -z "$tx" ]; then
        sed 's/^/        /' "$work/$1.out" | tail -15
        tx=0
    fi
}
# A step run through psql: the check fails (and shows why) if the step does.
step() { # description sql
    local out rc=0
    out=$(psql -X -q -v ON_ERROR_STOP=1 -d $db -c "$2" 2>&1) || rc=$?
    check "$1" eq "$rc" 0 || printf '%s\n' "$out" | sed 's/^/        /' | tail -8
}
# The pending CREATE INDEX CONCURRENTLY statements of an expansion, run as a deployment would.
build_indexes() {
    local s
    while IFS= read -r s; do
        [ -n "$s" ] && q -d $db -c "$s"
    done < <(val $db "SELECT unnest(pending_statements) FROM migrate_guard.expansions WHERE id = $1")
}
# CALL backfill_expansion, killed about halfway through its job (10 batches of about 20, each
# followed by a 60 ms pause, so that the poll below sees it in time on a slow machine), then
# called again.
backfill_killed_and_resumed() { # expansion-id table
    psql -X -q -d $db -c "CALL migrate_guard.backfill_expansion($1, batch_size => 1000, pause => '60ms')" \
        >"$work/backfill1.out" 2>&1 &
    local bf=$! batches=0
    for _ in $(seq 1 600); do
        batches=$(val $db "SELECT coalesce(max(batches), 0) FROM migrate_guard.list_backfills() WHERE table_name = 'public.$2' AND status = 'running'")
        [ "$batches" -ge 10 ] && break
        sleep 0.05
    done
    q -d $db -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CALL migrate_guard.backfill_expansion($1,%' AND pid <> pg_backend_pid()" >/dev/null
    wait $bf || true
    check "expansion $1: the first backfill was killed after $batches batches" contains "$(cat "$work/backfill1.out")" "terminat"
    local out
    out=$(psql -X -d $db -v ON_ERROR_STOP=1 -c "CALL migrate_guard.backfill_expansion($1, batch_size => 1000)" 2>&1)
    check "expansion $1: the second call resumes the job" contains "$out" "resuming backfill job"
    check "expansion $1: and finishes it" contains "$out" "expansion $1 backfilled"
}

# --- 1. rename a column: username → display_name ----------------------------------------------
start_client old1 6 "\\set uid random(1, 20000)
INSERT INTO users (username) VALUES ('old-' || md5(random()::text));
UPDATE users SET username = 'old-' || md5(random()::text), score = score + 1 WHERE id = :uid;
SELECT username, score FROM users WHERE id = :uid;"
sleep 0.5
e1=$(val $db "SELECT migrate_guard.expand_column('users', 'username', new_name => 'display_name')" 2>/dev/null) || die "expand_column failed"
start_client new1 10 "\\set uid random(1, 20000)
INSERT INTO users (display_name) VALUES ('new-' || md5(random()::text));
UPDATE users SET display_name = 'new-' || md5(random()::text), score = score + 1 WHERE id = :uid;
SELECT display_name, score FROM users WHERE id = :uid;"
backfill_killed_and_resumed "$e1" users
finish_client old1; old=$tx
check "rename column: the old version's client ran without an error" test "${old:-0}" -gt 0
check "rename column: every row has the same value under both names" \
    eq "$(val $db "SELECT count(*) FROM users WHERE display_name IS DISTINCT FROM username")" 0
step "rename column: contract succeeds while the clients run" "SELECT migrate_guard.contract($e1)"
finish_client new1; new=$tx
check "rename column: the new version's client ran through contract without an error" test "${new:-0}" -gt 0
check "rename column: no write lost (20000 rows + one per transaction)" \
    eq "$(val $db "SELECT count(*) FROM users")" "$((20000 + old + new))"
check "rename column: the schema is the expected one" \
    eq "$(val $db "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attname) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0 AND NOT attisdropped")" \
    "display_name text not null, id integer not null, score integer not null"
check "rename column: no trigger left" eq "$(val $db "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'users'::regclass AND NOT tgisinternal")" 0

# --- 2. the primary key int → bigint, with orders.user_id referencing it ----------------------
# Both versions use the same names; the old one runs until after contract too.
start_client old2 12 "\\set uid random(1, 20000)
INSERT INTO orders (user_id, amount) VALUES (:uid, 1);
UPDATE users SET score = score + 1 WHERE id = :uid;
SELECT count(*) FROM orders WHERE user_id = :uid;"
sleep 0.5
e2=$(val $db "SELECT migrate_guard.expand_column('users', 'id', new_type => 'bigint')" 2>/dev/null) || die "expand_column failed"
start_client new2 10 "\\set amount random(1, 1000)
INSERT INTO users (display_name) VALUES ('n-' || md5(random()::text));
INSERT INTO orders (user_id, amount) SELECT max(id), :amount FROM users;
SELECT u.display_name, o.amount FROM users u JOIN orders o ON o.user_id = u.id ORDER BY o.id DESC LIMIT 1;"
build_indexes "$e2"
backfill_killed_and_resumed "$e2" users
check "int → bigint: every users row has its key in the new column" \
    eq "$(val $db "SELECT count(*) FROM users WHERE id_mg$e2 IS DISTINCT FROM id")" 0
check "int → bigint: every orders row has its reference in the new column" \
    eq "$(val $db "SELECT count(*) FROM orders WHERE user_id_mg$e2 IS DISTINCT FROM user_id")" 0
step "int → bigint: contract succeeds while the clients run" "SELECT migrate_guard.contract($e2)"
finish_client old2; old=$tx
finish_client new2; new=$tx
check "int → bigint: the old version's client ran through contract without an error" test "${old:-0}" -gt 0
check "int → bigint: the new version's client ran through contract without an error" test "${new:-0}" -gt 0
check "int → bigint: the key, the reference and the sequence are bigint" \
    eq "$(val $db "SELECT format_type(a.atttypid, NULL) || ' ' || format_type(b.atttypid, NULL) || ' ' || format_type(s.seqtypid, NULL) FROM pg_attribute a, pg_attribute b, pg_sequence s WHERE a.attrelid = 'users'::regclass AND a.attname = 'id' AND b.attrelid = 'orders'::regclass AND b.attname = 'user_id' AND s.seqrelid = 'users_id_seq'::regclass")" \
    "bigint bigint bigint"
check "int → bigint: the primary key and the foreign key are back, validated" \
    eq "$(val $db "SELECT string_agg(conname || ' ' || contype::text || ' ' || convalidated, ', ' ORDER BY conname) FROM pg_constraint WHERE conrelid IN ('users'::regclass, 'orders'::regclass) AND contype IN ('p', 'f')")" \
    "orders_pkey p true, orders_user_id_fkey f true, users_pkey p true"
check "int → bigint: every order references a user" \
    eq "$(val $db "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id)")" 0
check "int → bigint: writes go on after contract, past the int range" \
    eq "$(val $db "SELECT setval('users_id_seq', 3000000000)" >/dev/null; q -At -d $db -c "INSERT INTO users (display_name) VALUES ('big') RETURNING id")" 3000000001
check "int → bigint: no order lost (40000 + one per transaction of either client)" \
    eq "$(val $db "SELECT count(*) FROM orders")" "$((40000 + old + new))"

# --- 3. rename a table: accounts → ledger (the old name is a view until contract) -------------
start_client old3 6 "\\set aid random(1, 5000)
UPDATE accounts SET balance = balance + 1 WHERE id = :aid;
INSERT INTO accounts (id, owner) VALUES (nextval('old_ids'), 'old');
SELECT balance FROM accounts WHERE id = :aid;"
sleep 0.5
e3=$(val $db "SELECT migrate_guard.expand_rename_table('accounts', 'ledger')" 2>/dev/null) || die "expand_rename_table failed"
start_client new3 6 "\\set aid random(1, 5000)
UPDATE ledger SET balance = balance + 1 WHERE id = :aid;
INSERT INTO ledger (id, owner) VALUES (nextval('new_ids'), 'new');
SELECT balance FROM ledger WHERE id = :aid;"
finish_client old3; old=$tx
check "rename table: the old version's client ran without an error" test "${old:-0}" -gt 0
step "rename table: contract succeeds while the clients run" "SELECT migrate_guard.contract($e3)"
finish_client new3; new=$tx
check "rename table: the new version's client ran through contract without an error" test "${new:-0}" -gt 0
check "rename table: every update counted once (balances sum to the transactions)" \
    eq "$(val $db "SELECT sum(balance) FROM ledger")" "$((old + new))"
check "rename table: the old name is gone, the table has the new one" \
    eq "$(val $db "SELECT coalesce(to_regclass('accounts')::text, '-') || ' ' || (SELECT relkind::text FROM pg_class WHERE oid = 'ledger'::regclass)")" "- r"

check "every expansion is contracted" \
    eq "$(val $db "SELECT string_agg(kind || ': ' || phase, ', ' ORDER BY id) FROM migrate_guard.expansions")" \
    "rename column: contracted, change type: contracted, rename table: contracted"
check "history records contract's drops as steps of an expansion" \
    test "$(val $db "SELECT count(*) FROM migrate_guard.history WHERE 'expansion' = ANY (allowed_via)")" -ge 3
finish "expansions"
