#!/usr/bin/env bash
# The packages of scripts/package.sh, installed the way a DBA installs them, on the version PG:
#   15 (Debian's server): the development install is removed; the .deb is installed with dpkg -i
#      (dpkg -L, its dependencies), CREATE EXTENSION and the whole golden suite run against it, the
#      static migrate-guard client checks a migration against it; then the previous release's
#      package (built from git history), a database at that version with data, the new package
#      installed over it, ALTER EXTENSION UPDATE with the data in place; then the tarball's
#      install.sh into the same server, and --uninstall.
#   another version (a tree that is not Debian's: PyPI, source build): the tarball's install.sh
#      into that tree, CREATE EXTENSION and the golden suite; the .deb's layout is inspected.
# A cluster of its own (port 59NN, under MG_HOME/pkg) keeps the shared test cluster out of it.
# Afterwards, even on failure, the package is purged and the development install put back.
source "$(dirname "$0")/common.sh"
log "integration: packages (PostgreSQL $PG_MAJOR)"

if "$PG_CONFIG" --configure | grep -q -- --enable-cassert; then
    log "packages: skipped on PostgreSQL $PG_MAJOR: $PG_CONFIG is built with --enable-cassert, and scripts/package.sh packages no assertion-enabled tree"
    exit 0
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/Cargo.toml" | head -1)
dist=$REPO_ROOT/dist
pkg=postgresql-$PG_MAJOR-migrate-guard
deb=$dist/${pkg}_${version}_amd64.deb
tarball=$dist/migrate_guard-$version-pg$PG_MAJOR-linux-x86_64.tar.gz
libdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension

# This test's own cluster: lib.sh's test cluster settings with another home and port.
export MG_HOME=$MG_HOME/pkg MG_TEST_PORT=${MG_PACKAGE_PORT:-59$PG_MAJOR}
source "$REPO_ROOT/scripts/lib.sh"
export PGHOST=$MG_SOCKET_DIR PGPORT=$TEST_PORT

tmp=$(mktemp -d /tmp/mg-package-test.XXXXXX)
backup=$tmp/development-install
mkdir -p "$backup/lib" "$backup/extension"
dev_files() { # every file of a migrate_guard installation in this server's directories
    find "$libdir" -maxdepth 1 -name 'migrate_guard.so'
    find "$extdir" -maxdepth 1 \( -name 'migrate_guard.control' -o -name 'migrate_guard--*.sql' \)
}
restore() {
    set +e
    bash "$REPO_ROOT/scripts/cluster.sh" stop test
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q installed; then
        as_root dpkg --purge "$pkg" >/dev/null 2>&1
    fi
    dev_files | as_root xargs -r rm -f
    if [ -n "$(ls -A "$backup/lib")" ]; then
        as_root cp -a "$backup/lib/." "$libdir/"
        as_root cp -a "$backup/extension/." "$extdir/"
        log "packages: the development install is back ($(ls "$backup/lib" "$backup/extension" | grep -c migrate_guard) files)"
    else
        log "packages: reinstalling the development build"
        bash "$REPO_ROOT/scripts/install.sh"
    fi
    rm -rf "$tmp"
}
trap restore EXIT

t0=$(date +%s)
if [ "$PG_MAJOR" = "$SYSTEM_MAJOR" ]; then
    PG=$PG_MAJOR bash "$REPO_ROOT/scripts/package.sh"
else
    # The command-line client is the same for every version: built and tested with 15's packages.
    PG=$PG_MAJOR MG_PACKAGE_CLI=0 bash "$REPO_ROOT/scripts/package.sh"
fi
log "packages: built in $(( $(date +%s) - t0 )) s"
check "the .deb is in dist/" test -f "$deb"
check "the tarball is in dist/" test -f "$tarball"
check "SHA256SUMS covers them and matches" bash -c "cd '$dist' && grep -q ' $(basename "$deb")\$' SHA256SUMS && grep -q ' $(basename "$tarball")\$' SHA256SUMS && sha256sum --quiet -c SHA256SUMS"

# What the .deb holds, wherever it is installed: Debian's paths, every upgrade script of sql/.
expected_files() {
    echo "/usr/lib/postgresql/$PG_MAJOR/lib/migrate_guard.so"
    echo "/usr/share/postgresql/$PG_MAJOR/extension/migrate_guard.control"
    echo "/usr/share/postgresql/$PG_MAJOR/extension/migrate_guard--$version.sql"
    for f in "$REPO_ROOT"/sql/migrate_guard--*--*.sql; do echo "/usr/share/postgresql/$PG_MAJOR/extension/$(basename "$f")"; done
    echo "/usr/share/doc/$pkg/copyright"
}
deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {sub(/^\./, "", $6); print $6}' | sort)
check ".deb: Debian's paths, the library, control file, install script and every upgrade script" \
    eq "$deb_files" "$(expected_files | sort)"
check ".deb: files owned by root" eq "$(dpkg-deb -c "$deb" | awk '{print $2}' | sort -u)" "root/root"
check ".deb: Package, Version, Architecture, Section" eq \
    "$(dpkg-deb -f "$deb" Package Version Architecture Section | tr '\n' ' ')" \
    "Package: $pkg Version: $version Architecture: amd64 Section: database "
depends=$(dpkg-deb -f "$deb" Depends)
check ".deb: depends on the server package postgresql-$PG_MAJOR and on libc6 (>= ...)" \
    bash -c "grep -Eq '^postgresql-$PG_MAJOR, (.*, )?libc6 \\(>= [0-9.]+\\)' <<<'$depends'"
log "packages: Depends: $depends"
check "tarball: lib/, extension/, install.sh, README.md under one directory" eq \
    "$(tar -tzf "$tarball" | grep -v '/$' | sed 's|^[^/]*/||' | sed 's|^extension/.*|extension/|' | sort -u | tr '\n' ' ')" \
    "README.md extension/ install.sh lib/migrate_guard.so "
mkdir -p "$tmp/tar"
tar -xzf "$tarball" -C "$tmp/tar"
tardir=$tmp/tar/migrate_guard-$version-pg$PG_MAJOR-linux-x86_64
check "tarball: the same library and SQL files as the .deb" bash -c "
    mkdir -p '$tmp/deb' && dpkg-deb -x '$deb' '$tmp/deb' &&
    cmp -s '$tmp/deb/usr/lib/postgresql/$PG_MAJOR/lib/migrate_guard.so' '$tardir/lib/migrate_guard.so' &&
    diff -r '$tmp/deb/usr/share/postgresql/$PG_MAJOR/extension' '$tardir/extension'"

# The development install goes (kept aside for the end).
for f in $(dev_files); do
    case $f in *.so) cp -a "$f" "$backup/lib/" ;; *) cp -a "$f" "$backup/extension/" ;; esac
done
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q installed; then
    log "packages: $pkg is installed (an earlier run?): purging it first"
    as_root dpkg --purge "$pkg" >/dev/null 2>&1
fi
dev_files | as_root xargs -r rm -f
check "the development install is removed ($(ls "$backup/lib" "$backup/extension" | grep -c migrate_guard) files)" eq "$(dev_files)" ""

# dpkg -i, its output kept for a failure.
dpkg_i() { as_root dpkg -i "$1" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; return 1; }; }
dpkg_r() { as_root dpkg -r "$1" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; return 1; }; }
# The tarball's installer, as a DBA runs it: pg_config's path given, none on PATH.
tar_install() { as_root env PATH=/usr/bin:/bin "$tardir/install.sh" "$@" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; return 1; }; }

# A database's guard at work: CREATE EXTENSION, then a blocking CREATE INDEX on a populated table.
guarded_db() { # name [version]
    fresh_db "$1"
    q -d "$1" -c "CREATE EXTENSION migrate_guard${2:+ VERSION '$2'}"
    q -d "$1" -c "SET migrate_guard.lock_timeout = 0" \
       -c "CREATE TABLE accounts (id bigint PRIMARY KEY, email text)" \
       -c "INSERT INTO accounts SELECT g, 'u' || g FROM generate_series(1, 1000) g"
}
blocks_index() { # db
    local out
    out=$(q -d "$1" -c "CREATE INDEX ON accounts (email)" 2>&1 || true)
    contains "$out" "ERROR:  migrate_guard: blocking-index:"
}
golden_suite() {
    bash "$REPO_ROOT/pg_test/install_fixtures.sh"
    local t=$(date +%s)
    if bash "$REPO_ROOT/pg_test/run.sh" >"$tmp/golden.log" 2>&1; then
        pass "golden suite against the $1: $(grep -Eo 'All [0-9]+ tests passed' "$tmp/golden.log" | sed 's/All //; s/ tests passed//' | paste -sd+ | sed 's/+/ + /') tests passed ($(( $(date +%s) - t )) s)"
    else
        tail -60 "$tmp/golden.log"
        fail "golden suite against the $1 (output above)"
    fi
}

if [ "$PG_MAJOR" = "$SYSTEM_MAJOR" ]; then
    check "dpkg -i $(basename "$deb")" dpkg_i "$deb"
    check "dpkg: $pkg $version installed" eq "$(dpkg-query -W -f='${Status} ${Version}' "$pkg")" "install ok installed $version"
    check "dpkg -L: the files of the package, in Debian's paths" eq \
        "$(dpkg -L "$pkg" | while read -r f; do [ -f "$f" ] && echo "$f"; done | sort)" "$(expected_files | sort)"
    check "the server finds them (pg_config --pkglibdir, --sharedir)" eq "$(dev_files | sort)" \
        "$(expected_files | grep -v /doc/ | sort)"
    bash "$REPO_ROOT/scripts/cluster.sh" fresh test
    guarded_db mg_pkg
    check "CREATE EXTENSION: version $version" eq "$(val mg_pkg "SELECT extversion FROM pg_extension WHERE extname = 'migrate_guard'")" "$version"
    check "the packaged guard blocks CREATE INDEX on a populated table" blocks_index mg_pkg
    golden_suite "packaged extension (.deb)"

    # The static client, against the packaged extension, over the socket and over TCP.
    cli=$dist/migrate-guard-$version-linux-x86_64
    check "client: statically linked" bash -c "file -b '$cli' | grep -Eq 'static(-pie)? linked'"
    check "client: ldd finds no shared library" bash -c "! ldd '$cli' 2>&1 | grep -q '=>'"
    check "client: --help" bash -c "'$cli' --help | grep -q 'Check migrations against a database guarded by migrate_guard'"
    printf 'CREATE INDEX ON accounts (email);\n' >"$tmp/0001_index.sql"
    printf 'CREATE INDEX CONCURRENTLY ON accounts (email);\n' >"$tmp/0002_index.sql"
    out=$(PGDATABASE=mg_pkg "$cli" check "$tmp/0001_index.sql" 2>&1) && rc=0 || rc=$?
    check "client over the socket: exit 1, blocking-index" eq "$rc:$(grep -c 'block blocking-index' <<<"$out")" "1:1"
    out=$("$cli" check --database-url "postgresql://postgres@localhost:$TEST_PORT/mg_pkg" "$tmp/0002_index.sql" 2>&1) && rc=0 || rc=$?
    check "client over TCP (localhost resolved by the static binary): exit 0 for CONCURRENTLY" eq "$rc:$out" \
        "0:migrate-guard: 1 file checked: nothing would be blocked"
    check "client .deb: /usr/bin/migrate-guard, no dependencies" eq \
        "$(dpkg-deb -c "$dist/migrate-guard_${version}_amd64.deb" | awk '$1 !~ /^d/ {print $6}' | grep bin/):$(dpkg-deb -f "$dist/migrate-guard_${version}_amd64.deb" Depends)" \
        "./usr/bin/migrate-guard:"

    # The upgrade a DBA does: the previous release's package, a database at that version with
    # data, the new package over it, ALTER EXTENSION UPDATE.
    previous=$(ls "$REPO_ROOT/sql" | sed -n 's/^migrate_guard--\([0-9.]*\)\.sql$/\1/p' | grep -vx "$version" | sort -V | tail -1)
    # A release is the commit before the one that froze its install script into sql/ (development
    # went on under the same version number after that).
    # A clone without that history (a shallow CI checkout) cannot build the release: that part is
    # then skipped, and says so.
    frozen_at=$(git -C "$REPO_ROOT" log --diff-filter=A --format=%H -1 -- "sql/migrate_guard--$previous.sql" 2>/dev/null || true)
    release=
    if [ -n "$frozen_at" ]; then release=$(git -C "$REPO_ROOT" rev-parse -q --verify "$frozen_at^" 2>/dev/null || true); fi
    if [ -z "$release" ]; then
        log "packages: the upgrade from the $previous package skipped: this clone has no git history of release $previous (a shallow clone); ALTER EXTENSION UPDATE from $previous is still tested by integration/upgrade.sh"
    else
        check "release $previous is commit ${release:0:7} (Cargo.toml says $previous there)" eq \
            "$(git -C "$REPO_ROOT" show "$release:Cargo.toml" | sed -n 's/^version = "\(.*\)"/\1/p' | head -1)" "$previous"
        # A released package never changes: built once per machine, kept beside the PostgreSQL builds.
        old_dist=$MG_CACHE/releases/$release
        old_deb=$old_dist/${pkg}_${previous}_amd64.deb
        if [ -f "$old_deb" ]; then
            log "packages: reusing $old_deb"
        else
            t=$(date +%s)
            mkdir -p "$tmp/src-$previous"
            git -C "$REPO_ROOT" archive "$release" | tar -x -C "$tmp/src-$previous"
            rm -rf "$tmp/old-dist"
            # A target directory of its own: two checkouts of one package in one target directory
            # overwrite each other's library (cargo then hands the older one to the next package).
            CARGO_TARGET_DIR=$REPO_ROOT/target/previous-release MG_PACKAGE_SRC=$tmp/src-$previous \
                MG_DIST=$tmp/old-dist MG_PACKAGE_CLI=0 PG=$PG_MAJOR bash "$REPO_ROOT/scripts/package.sh"
            as_root install -D -m 0644 "$tmp/old-dist/$(basename "$old_deb")" "$old_deb"
            log "packages: $previous packaged from ${release:0:7} in $(( $(date +%s) - t )) s"
        fi
        mkdir -p "$tmp/old"
        dpkg-deb -x "$old_deb" "$tmp/old"
        # pgrx orders the objects of an install script by a dependency graph, not the same way on every
        # build: the same objects, in any order, are the released script.
        same_objects() {
            python3 - "$@" <<'PY'
import sys
def objects(path):
    text = open(path).read().replace("/* </end connected objects> */", "")
    return sorted(part.strip() for part in text.split("/* <begin connected objects> */"))
a, b = objects(sys.argv[1]), objects(sys.argv[2])
print(f"        {len(a)} and {len(b)} object groups, {'the same' if a == b else 'different'}")
sys.exit(0 if a == b else 1)
PY
        }
        check "the $previous package's install script is the released one (sql/migrate_guard--$previous.sql), object for object" \
            same_objects "$tmp/old/usr/share/postgresql/$PG_MAJOR/extension/migrate_guard--$previous.sql" "$REPO_ROOT/sql/migrate_guard--$previous.sql"

        as_root dpkg --purge "$pkg" >/dev/null 2>&1
        check "dpkg -i the $previous package" dpkg_i "$old_deb"
        db=mg_pkg_upgrade
        guarded_db "$db"
        check "$previous: CREATE EXTENSION gives $previous" eq "$(val "$db" "SELECT extversion FROM pg_extension WHERE extname = 'migrate_guard'")" "$previous"
        q -d "$db" -c "SET client_min_messages = warning" -c "SELECT migrate_guard.begin_migration('0001_add_plan', 'sum1')" \
           -c "ALTER TABLE accounts ADD COLUMN plan text" -c "SELECT migrate_guard.end_migration()" >/dev/null
        q -d "$db" -c "COMMENT ON TABLE accounts IS 'before the upgrade'"
        check "$previous: the guard blocks" blocks_index "$db"
        data_before=$(val "$db" "SELECT count(*) || '/' || sum(id) FROM accounts")
        history_before=$(val "$db" "SELECT count(*) || ' ' || string_agg(command_tag || ':' || object_identity, ',' ORDER BY id) FROM migrate_guard.history")
        migrations_before=$(val "$db" "SELECT string_agg(name || ' ' || status || ' ' || statement_count, ',') FROM migrate_guard.migrations")
        check "$previous: history recorded ($history_before)" [ "${history_before%% *}" -ge 3 ]
        check "$previous: the migration registered" eq "$migrations_before" "0001_add_plan applied 1"

        check "dpkg -i the $version package over $previous" dpkg_i "$deb"
        check "dpkg: $pkg is now $version" eq "$(dpkg-query -W -f='${Version}' "$pkg")" "$version"
        check "the $previous install script left with its package, the upgrade scripts are there" eq \
            "$(ls "$extdir" | grep -c "^migrate_guard--$previous.sql$"):$(ls "$extdir" | grep -c "^migrate_guard--$previous--$version.sql$")" "0:1"
        # No restart: a new session loads the new library.
        check "ALTER EXTENSION migrate_guard UPDATE" q -d "$db" -c "ALTER EXTENSION migrate_guard UPDATE"
        check "now at $version" eq "$(val "$db" "SELECT extversion FROM pg_extension WHERE extname = 'migrate_guard'")" "$version"
        check "user data in place" eq "$(val "$db" "SELECT count(*) || '/' || sum(id) FROM accounts")" "$data_before"
        check "history in place" eq "$(val "$db" "SELECT count(*) || ' ' || string_agg(command_tag || ':' || object_identity, ',' ORDER BY id) FROM migrate_guard.history")" "$history_before"
        check "migrations in place" eq "$(val "$db" "SELECT string_agg(name || ' ' || status || ' ' || statement_count, ',') FROM migrate_guard.migrations")" "$migrations_before"
        check "$version: the guard blocks after the update" blocks_index "$db"
        q -d "$db" -c "COMMENT ON TABLE accounts IS 'after the upgrade'"
        check "$version: DDL is recorded after the update" eq \
            "$(val "$db" "SELECT command_tag || ' ' || object_identity FROM migrate_guard.history ORDER BY id DESC LIMIT 1")" "COMMENT public.accounts"
        q -d postgres -c "DROP DATABASE $db WITH (FORCE)"
    fi
    q -d postgres -c "DROP DATABASE mg_pkg WITH (FORCE)"
    check "dpkg -r $pkg" dpkg_r "$pkg"
    check "dpkg -r removed the package's files" eq "$(dev_files)" ""
fi

# The tarball, into this server's own directories (on 15: Debian's, where the .deb was).
check "tarball: install.sh refuses another version's pg_config" bash -c "
    printf '#!/bin/sh\necho PostgreSQL 9.6.1\n' >'$tmp/pg_config_96' && chmod +x '$tmp/pg_config_96' &&
    ! '$tardir/install.sh' '$tmp/pg_config_96' 2>'$tmp/refused' && grep -q 'this build is for PostgreSQL $PG_MAJOR' '$tmp/refused'"
check "tarball: install.sh $PG_CONFIG (no pg_config on PATH)" tar_install "$PG_CONFIG"
check "tarball: the files are in pg_config's directories" eq \
    "$(dev_files | sed "s|^$libdir/|lib/|; s|^$extdir/|extension/|" | sort)" \
    "$(cd "$tardir" && find lib extension -type f | sort)"
if [ "$PG_MAJOR" = "$SYSTEM_MAJOR" ]; then
    guarded_db mg_pkg_tar
    check "tarball: CREATE EXTENSION gives $version" eq "$(val mg_pkg_tar "SELECT extversion FROM pg_extension WHERE extname = 'migrate_guard'")" "$version"
    check "tarball: the guard blocks" blocks_index mg_pkg_tar
    q -d postgres -c "DROP DATABASE mg_pkg_tar WITH (FORCE)"
else
    bash "$REPO_ROOT/scripts/cluster.sh" fresh test
    guarded_db mg_pkg_tar
    check "tarball: CREATE EXTENSION gives $version" eq "$(val mg_pkg_tar "SELECT extversion FROM pg_extension WHERE extname = 'migrate_guard'")" "$version"
    check "tarball: the guard blocks" blocks_index mg_pkg_tar
    q -d postgres -c "DROP DATABASE mg_pkg_tar WITH (FORCE)"
    golden_suite "extension installed from the tarball into $("$PG_CONFIG" --bindir | sed 's|/bin$||')"
fi
check "tarball: install.sh --uninstall" tar_install --uninstall "$PG_CONFIG"
check "tarball: --uninstall removed its files" eq "$(dev_files)" ""
log "packages: $(( $(date +%s) - t0 )) s in all"
finish "packages"
