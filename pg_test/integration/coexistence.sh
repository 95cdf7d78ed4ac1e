#!/usr/bin/env bash
# The maintenance tools DBAs run keep working on a guarded database. What a tool does to its
# own working objects (relations in a schema that belongs to its extension, owned by a
# superuser) is let through and recorded with allowed_via = {extension}; what it does to the
# application's tables stays judged. Layers whose Debian package this PostgreSQL version has not
# got are skipped, and say so.
source "$(dirname "$0")/common.sh"
log "integration: coexistence with maintenance tools"
pkglib=$($PG_CONFIG --pkglibdir)
bindir=$($PG_CONFIG --bindir)

if [ -f "$pkglib/pg_repack.so" ] && command -v pg_repack >/dev/null; then
    db=mg_repack
    fresh_db $db guarded
    q -d $db <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION pg_repack;
CREATE TABLE public.big (id bigint PRIMARY KEY, v text NOT NULL, n int NOT NULL DEFAULT 0);
CREATE INDEX big_v ON public.big (v);
INSERT INTO public.big SELECT g, 'row ' || g, 0 FROM generate_series(1, 200000) g;
VACUUM ANALYZE public.big;
SQL
    before=$(val $db "SELECT count(*) || '/' || sum(id) FROM public.big")
    node_before=$(val $db "SELECT pg_relation_filenode('public.big')")
    last=$(val $db "SELECT coalesce(max(id), 0) FROM migrate_guard.history")
    # A client writing to the table all through the repack.
    writer=$(mktemp)
    echo "UPDATE public.big SET n = n + 1 WHERE id = 1 + (random() * 199999)::int;" >"$writer"
    chmod 0644 "$writer"
    "$bindir/pgbench" -n -c 1 -T 8 -f "$writer" -d $db >/tmp/mg_repack_pgbench.log 2>&1 &
    bench=$!
    sleep 1
    out=$(pg_repack --no-kill-backend -d $db -t public.big 2>&1) && rc=0 || rc=$?
    wait $bench && bench_rc=0 || bench_rc=$?
    check "pg_repack -t big exits 0 while a client writes to it" eq "$rc" 0 || echo "$out"
    check "the writing client ran without an error" eq "$bench_rc" 0 || cat /tmp/mg_repack_pgbench.log
    check "every row is still there" eq "$(val $db "SELECT count(*) || '/' || sum(id) FROM public.big")" "$before"
    check "the table has a new file node" eval '[ "$(val $db "SELECT pg_relation_filenode('"'public.big'"')")" != "$node_before" ]'
    check "no trigger of pg_repack is left on big" eq "$(val $db "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.big'::regclass AND tgname LIKE 'repack%'")" 0
    check "no work table is left in schema repack" eq \
        "$(val $db "SELECT count(*) FROM pg_class WHERE relnamespace = 'repack'::regnamespace AND relname ~ '^(log|table)_[0-9]+$'")" 0
    check "history records pg_repack's work on its own objects as allowed via extension" eval \
        '[ "$(val $db "SELECT count(*) FROM migrate_guard.history WHERE id > '"$last"' AND '"'extension'"' = ANY (allowed_via) AND object_identity LIKE '"'repack.%'"'")" -gt 0 ]'
    node_before=$(val $db "SELECT pg_relation_filenode('public.big_v')")
    out=$(pg_repack --no-kill-backend -d $db -t public.big --only-indexes 2>&1) && rc=0 || rc=$?
    check "pg_repack --only-indexes exits 0" eq "$rc" 0 || echo "$out"
    check "the index has a new file node" eval '[ "$(val $db "SELECT pg_relation_filenode('"'public.big_v'"')")" != "$node_before" ]'
    check "and the rows are intact" eq "$(val $db "SELECT count(*) || '/' || sum(id) FROM public.big")" "$before"
    # The exemption is not for the application's tables, nor for an ordinary role.
    out=$(q -d $db -c "CREATE INDEX big_n ON public.big (n)" 2>&1 || true)
    check "a blocking index on the application's table is still blocked" contains "$out" "migrate_guard: blocking-index"
    q -d $db -c "CREATE ROLE mg_coex_app LOGIN" 2>/dev/null || true
    out=$(psql -X -q -U mg_coex_app -d $db -c "CREATE TABLE repack.mine (id int)" 2>&1 || true)
    check "an ordinary role cannot create a relation in pg_repack's schema" contains "$out" "permission denied for schema repack"
    q -d postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
    q -d postgres -c "DROP ROLE mg_coex_app" >/dev/null
    rm -f "$writer"
else
    log "pg_repack layer skipped: Debian has no postgresql-$PG_MAJOR-repack package here"
fi
if [ -f "$($PG_CONFIG --sharedir)/extension/pg_partman.control" ]; then
    db=mg_partman
    fresh_db $db guarded
    q -d $db <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
CREATE TABLE public.events (id bigint NOT NULL, at timestamptz NOT NULL, payload text) PARTITION BY RANGE (at);
SQL
    out=$(q -d $db -c "SET client_min_messages = warning" \
          -c "SELECT partman.create_parent('public.events', 'at', 'native', 'daily', p_start_partition => (now() - interval '10 days')::date::text)" 2>&1) && rc=0 || rc=$?
    check "pg_partman: create_parent succeeds" eq "$rc" 0 || echo "$out"
    q -d $db -c "INSERT INTO public.events SELECT g, now() - (g % 10) * interval '1 day', 'x' FROM generate_series(1, 20000) g" \
         -c "ANALYZE public.events" >/dev/null
    out=$(q -d $db -c "SET client_min_messages = warning" -c "CALL partman.run_maintenance_proc()" 2>&1) && rc=0 || rc=$?
    check "pg_partman: run_maintenance_proc succeeds" eq "$rc" 0 || echo "$out"
    parts=$(val $db "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.events'::regclass")
    # Rows past the last partition land in the default one, until partition_data_proc moves them.
    q -d $db -c "INSERT INTO public.events SELECT g, now() + interval '40 days', 'later' FROM generate_series(20001, 21000) g" >/dev/null
    out=$(q -d $db -c "SET client_min_messages = warning" -c "CALL partman.partition_data_proc('public.events', p_wait => 0)" 2>&1) && rc=0 || rc=$?
    check "pg_partman: partition_data_proc moves the default partition's rows" eq "$rc/$(val $db "SELECT count(*) FROM public.events_default")" 0/0 || echo "$out"
    check "pg_partman: no row lost" eq "$(val $db "SELECT count(*) FROM public.events")" 21000
    check "pg_partman: its ATTACH of the partition made while the default partition held rows passed as partition-scan, allowed via extension" eval \
        '[ "$(val $db "SELECT count(*) FROM migrate_guard.history WHERE '"'extension'"' = ANY (allowed_via) AND '"'partition-scan'"' = ANY (rules_allowed)")" -ge 1 ]'
    check "pg_partman: history records the partitions it created" eval \
        '[ "$(val $db "SELECT count(*) FROM migrate_guard.history WHERE command_tag = '"'CREATE TABLE'"' AND object_identity LIKE '"'public.events_p%'"'")" -ge "$parts" ]'
    # Retention: without it configured, dropping a populated partition is drop-table.
    out=$(q -d $db -c "DROP TABLE public.events_p$(date -u -d '-9 days' +%Y_%m_%d)" 2>&1 || true)
    check "pg_partman: a hand-made DROP of a partition is drop-table" contains "$out" "migrate_guard: drop-table"
    q -d $db -c "UPDATE partman.part_config SET retention = '5 days', retention_keep_table = false WHERE parent_table = 'public.events'" >/dev/null
    before=$(val $db "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.events'::regclass")
    out=$(q -d $db -c "SET client_min_messages = warning" -c "CALL partman.run_maintenance_proc()" 2>&1) && rc=0 || rc=$?
    check "pg_partman: with retention configured, run_maintenance_proc drops the old partitions" eq "$rc" 0 || echo "$out"
    after=$(val $db "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.events'::regclass")
    check "pg_partman: partitions older than the retention are gone ($before -> $after partitions)" eq \
        "$(val $db "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = 'public.events'::regclass AND c.relname <> 'events_default'
                      AND c.relname < 'events_p' || to_char(now() - interval '6 days', 'YYYY_MM_DD')")" 0
    check "pg_partman: each drop is recorded, allowed via extension" eval \
        '[ "$(val $db "SELECT count(*) FROM migrate_guard.history WHERE command_tag = '"'DROP TABLE'"' AND '"'extension'"' = ANY (allowed_via)")" -gt 0 ]'
    out=$(q -d $db -c "DROP TABLE public.events_default" 2>&1 || true)
    check "pg_partman: retention does not cover the default partition's drop by hand" contains "$out" "migrate_guard: drop-table"
    # Once a role other than a superuser may write part_config, it could register its own
    # tables: both exemptions are off.
    q -d $db -c "INSERT INTO public.events VALUES (99999, now() + interval '300 days', 'far')" >/dev/null
    q -d postgres -c "DROP ROLE IF EXISTS mg_coex_writer" -c "CREATE ROLE mg_coex_writer" >/dev/null
    q -d $db -c "GRANT UPDATE ON partman.part_config TO mg_coex_writer" >/dev/null
    out=$(q -d $db -c "CREATE TABLE public.events_far PARTITION OF public.events FOR VALUES FROM ('2099-01-01') TO ('2099-01-02')" 2>&1 || true)
    check "pg_partman: with part_config writable by another role, a partition over a populated default is partition-scan" contains "$out" "migrate_guard: partition-scan"
    oldest=$(val $db "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                      WHERE i.inhparent = 'public.events'::regclass AND c.relname <> 'events_default' ORDER BY 1 LIMIT 1")
    out=$(q -d $db -c "DROP TABLE public.$oldest" 2>&1 || true)
    check "pg_partman: ... and configured retention no longer lets a partition's drop through" contains "$out" "migrate_guard: drop-table"
    q -d postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
    q -d postgres -c "DROP ROLE mg_coex_writer" >/dev/null
else
    log "pg_partman layer skipped: Debian has no postgresql-$PG_MAJOR-partman package here"
fi
if [ -f "$($PG_CONFIG --sharedir)/extension/postgis.control" ]; then
    db=mg_postgis
    fresh_db $db guarded
    out=$(q -d $db -c "SET client_min_messages = warning" -c "CREATE EXTENSION postgis" 2>&1) && rc=0 || rc=$?
    check "PostGIS: CREATE EXTENSION postgis on a guarded database" eq "$rc" 0 || echo "$out"
    q -d $db <<'SQL' >/dev/null
CREATE TABLE public.places (id bigint PRIMARY KEY, name text NOT NULL);
INSERT INTO public.places SELECT g, 'place ' || g FROM generate_series(1, 20000) g;
ANALYZE public.places;
SQL
    last=$(val $db "SELECT coalesce(max(id), 0) FROM migrate_guard.history")
    # AddGeometryColumn runs ALTER TABLE ... ADD COLUMN geom geometry(Point, 4326): no default,
    # nothing rewritten, so it passes; with use_typmod => false it also adds CHECK constraints,
    # which scan the populated table under ACCESS EXCLUSIVE: validating-check, as by hand.
    out=$(q -d $db -c "SELECT AddGeometryColumn('public', 'places', 'geom', 4326, 'POINT', 2)" 2>&1) && rc=0 || rc=$?
    check "PostGIS: AddGeometryColumn on a populated table (a typmod column) passes" eq "$rc" 0 || echo "$out"
    check "PostGIS: history records the ALTER TABLE it ran" eq \
        "$(val $db "SELECT string_agg(command_tag || ' ' || verdict, ',') FROM migrate_guard.history WHERE id > $last AND object_identity = 'public.places'")" \
        "ALTER TABLE ok"
    out=$(q -d $db -c "SELECT AddGeometryColumn('public', 'places', 'geom_old', 4326, 'POINT', 2, false)" 2>&1 || true)
    check "PostGIS: AddGeometryColumn with use_typmod => false is judged like its ADD CONSTRAINT CHECK" contains "$out" "migrate_guard: validating-check"
    check "PostGIS: and nothing of it is left" eq \
        "$(val $db "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.places'::regclass AND attname = 'geom_old'")" 0
    q -d $db -c "UPDATE public.places SET geom = ST_SetSRID(ST_MakePoint(id % 180, id % 90), 4326)" >/dev/null
    out=$(q -d $db -c "CREATE INDEX places_geom ON public.places USING gist (geom)" 2>&1 || true)
    check "PostGIS: a GiST index built without CONCURRENTLY is blocking-index" contains "$out" "migrate_guard: blocking-index"
    out=$(q -d $db -c "CREATE INDEX CONCURRENTLY places_geom ON public.places USING gist (geom)" 2>&1) && rc=0 || rc=$?
    check "PostGIS: the GiST index built concurrently passes" eq "$rc/$(val $db "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.places_geom'::regclass")" 0/t || echo "$out"
    check "PostGIS: the index answers a spatial query" eq \
        "$(PGOPTIONS="-c enable_seqscan=off" val $db "SELECT count(*) FROM public.places WHERE geom && ST_MakeEnvelope(0, 0, 10, 10, 4326)")" \
        "$(PGOPTIONS="-c enable_indexscan=off -c enable_bitmapscan=off" val $db "SELECT count(*) FROM public.places WHERE geom && ST_MakeEnvelope(0, 0, 10, 10, 4326)")"
    q -d postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
else
    log "PostGIS layer skipped: Debian has no postgresql-$PG_MAJOR-postgis-3 package here"
fi
if [ -f "$($PG_CONFIG --sharedir)/extension/pgtap.control" ] && command -v pg_prove >/dev/null; then
    db=mg_pgtap
    fresh_db $db guarded
    q -d $db <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION pgtap;
CREATE TABLE public.accounts (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO public.accounts SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 20000) g;
ANALYZE public.accounts;
SQL
    out=$(pg_prove -h "$PGHOST" -p "$PGPORT" -U postgres -d $db "$REPO_ROOT/pg_test/integration/pgtap/fixtures_test.sql" 2>&1) && rc=0 || rc=$?
    check "pgTAP: pg_prove runs the fixture test green on a guarded database" eq "$rc" 0 || echo "$out"
    check "pgTAP: all of its tests passed" contains "$out" "All tests successful."
    check "pgTAP: the rolled-back fixtures left nothing" eq "$(val $db "SELECT count(*) FROM pg_class WHERE relname LIKE 'fixture%'")" 0
    q -d postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
else
    log "pgTAP layer skipped: Debian has no postgresql-$PG_MAJOR-pgtap package (or pg_prove) here"
fi
finish coexistence
