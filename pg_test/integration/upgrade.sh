#!/usr/bin/env bash
# ALTER EXTENSION migrate_guard UPDATE from every released version, with data in place: the
# upgraded extension must work and be identical, object for object, to a fresh installation.
source "$(dirname "$0")/common.sh"
log "integration: upgrades from released versions"
current=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/Cargo.toml")
ext_dir=$($PG_CONFIG --sharedir)/extension
# Released install scripts are kept in sql/ but not installed by cargo pgrx: put them in place.
for f in "$REPO_ROOT"/sql/migrate_guard--[0-9]*.sql; do
    case $(basename "$f") in *--*--*) continue ;; esac
    as_root install -m 0644 "$f" "$ext_dir/"
done

# Everything the extension owns, described canonically: objects, function bodies, columns,
# views, event triggers, dumped configuration tables, privileges.
describe() {
    val "$1" "
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'migrate_guard'),
members AS (
  SELECT classid, objid, objsubid FROM pg_depend, ext
  WHERE refclassid = 'pg_extension'::regclass AND refobjid = ext.oid AND deptype = 'e')
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'object ' || pg_describe_object(classid, objid, objsubid) AS line FROM members
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, '')
  FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid WHERE p.prokind <> 'a'
  UNION ALL
  SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
         || ' ' || a.attidentity::text
  FROM pg_attribute a JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '') || ' '
         || coalesce(pg_get_viewdef(c.oid), '')
  FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i
  JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = i.indrelid
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(c.oid) FROM pg_constraint c
  JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.conrelid
  UNION ALL
  SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evtfoid::regproc || ' ' || evtenabled::text
  FROM pg_event_trigger WHERE evtname LIKE 'migrate_guard%'
  UNION ALL
  SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ' ' || d.description
  FROM pg_description d JOIN members m ON m.classid = d.classoid AND m.objid = d.objoid
  UNION ALL
  SELECT 'schema ' || nspname || ' ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'migrate_guard'
  UNION ALL
  SELECT 'dumped ' || c::regclass || ' ' || coalesce(cond, '')
  FROM pg_extension, unnest(extconfig, extcondition) AS u(c, cond) WHERE extname = 'migrate_guard'
) described"
}

fresh_db mg_fresh guarded
fresh_shape=$(describe mg_fresh)

released=$(ls "$REPO_ROOT"/sql/ | sed -n 's/^migrate_guard--\([0-9.]*\)\.sql$/\1/p' | grep -vx "$current")
for old in $released; do
    db=mg_upgrade_${old//./_}
    fresh_db "$db"
    q -d "$db" -c "CREATE EXTENSION migrate_guard VERSION '$old'"
    q -d "$db" -c "SET migrate_guard.lock_timeout = 0" \
       -c "CREATE TABLE accounts (id bigint PRIMARY KEY, email text)" \
       -c "INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 1000) g"
    # Data the extension itself holds from this version on, when it has any.
    if [ "$(val "$db" "SELECT to_regclass('migrate_guard.migrations') IS NOT NULL")" = t ]; then
        q -d "$db" -c "SELECT migrate_guard.begin_migration('0001_before_upgrade', 'sum1')" \
           -c "ALTER TABLE accounts ADD COLUMN plan text" -c "SELECT migrate_guard.end_migration()"
    fi
    before=$(val "$db" "SELECT count(*) || '/' || sum(id) FROM accounts")
    history_before=- last_id=0
    if [ "$(val "$db" "SELECT to_regclass('migrate_guard.history') IS NOT NULL")" = t ]; then
        history_before=$(val "$db" "SELECT count(*) FROM migrate_guard.history")
        last_id=$(val "$db" "SELECT coalesce(max(id), 0) FROM migrate_guard.history")
    fi
    out=$(q -d "$db" -c "CREATE INDEX ON accounts (email)" 2>&1 || true)
    check "$old: the guard blocks before the update" contains "$out" "migrate_guard: blocking-index"

    check "$old: ALTER EXTENSION migrate_guard UPDATE succeeds" q -d "$db" -c "ALTER EXTENSION migrate_guard UPDATE"
    check "$old: now at version $current" eq "$(val "$db" "SELECT extversion FROM pg_extension WHERE extname = 'migrate_guard'")" "$current"
    check "$old: user data untouched" eq "$(val "$db" "SELECT count(*) || '/' || sum(id) FROM accounts")" "$before"
    if [ "$history_before" != - ]; then
        check "$old: history kept" eq "$(val "$db" "SELECT count(*)::text FROM migrate_guard.history")" "$history_before"
        check "$old: migrations kept" eq "$(val "$db" "SELECT name || ' ' || status || ' ' || statement_count FROM migrate_guard.migrations")" "0001_before_upgrade applied 1"
    fi
    out=$(q -d "$db" -c "CREATE INDEX ON accounts (email)" 2>&1 || true)
    check "$old: the guard still blocks after the update" contains "$out" "migrate_guard: blocking-index"
    q -d "$db" -c "COMMENT ON TABLE accounts IS 'after the update'"
    check "$old: DDL is recorded after the update" eq "$(val "$db" "SELECT object_identity FROM migrate_guard.history ORDER BY id DESC LIMIT 1")" "public.accounts"
    check "$old: history ids go on after the ones before the update" eq \
        "$(val "$db" "SELECT id > $last_id FROM migrate_guard.history WHERE object_identity = 'public.accounts' AND command_tag = 'COMMENT'")" t
    q -d "$db" -c "SET client_min_messages = warning" \
       -c "CALL migrate_guard.backfill('accounts', 'email = upper(email)', batch_size => 300)"
    check "$old: a backfill runs after the update" eq \
        "$(val "$db" "SELECT count(*) FILTER (WHERE email = upper(email)) || ' ' || (SELECT status || ' ' || batches FROM migrate_guard.backfills) FROM accounts")" \
        "1000 done 4"
    upgraded_shape=$(describe "$db")
    if [ "$upgraded_shape" = "$fresh_shape" ]; then
        pass "$old: the upgraded extension is identical to a fresh $current installation"
    else
        fail "$old: the upgraded extension differs from a fresh $current installation"
        diff <(echo "$fresh_shape") <(echo "$upgraded_shape") | head -40
    fi
    # A release that brings expansions: one runs from expand to contract on the upgraded data.
    if [ "$(val "$db" "SELECT to_regprocedure('migrate_guard.expand_column(regclass,name,name,text,text,text)') IS NOT NULL")" = t ]; then
        e=$(val "$db" "SELECT migrate_guard.expand_column('accounts', 'email', new_name => 'mail')" 2>/dev/null)
        q -d "$db" -c "SET client_min_messages = warning" -c "CALL migrate_guard.backfill_expansion($e)"
        q -d "$db" -c "SET client_min_messages = warning" -c "SELECT migrate_guard.contract($e)" >/dev/null
        check "$old: an expansion runs after the update" eq \
            "$(val "$db" "SELECT count(*) FILTER (WHERE mail = upper(mail)) || ' ' || (SELECT phase FROM migrate_guard.expansions WHERE id = $e) FROM accounts")" \
            "1000 contracted"
    fi
    q -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)"
done
q -d postgres -c "DROP DATABASE mg_fresh WITH (FORCE)"
finish "upgrade"
