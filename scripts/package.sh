#!/usr/bin/env bash
# Build what a DBA installs from, into dist/ (`make package`, or `make package PG=NN`):
#   postgresql-NN-migrate-guard_<ver>_amd64.deb   per PostgreSQL major version, in Debian's layout
#                                                 (/usr/lib/postgresql/NN/lib, /usr/share/postgresql/NN/
#                                                 extension), depending on the server package postgresql-NN
#   migrate_guard-<ver>-pgNN-linux-x86_64.tar.gz  the same files for a server that is not Debian's (a
#                                                 PyPI tree, a source build): its install.sh asks that
#                                                 server's pg_config where they go
#   migrate-guard-<ver>-linux-x86_64              the command-line client, statically linked
#   migrate-guard_<ver>_amd64.deb                 the same, as /usr/bin/migrate-guard
#   SHA256SUMS
# Without PG: 15 (Debian's own) and every other major, 13 to 18, whose tree is in MG_CACHE.
# A tree configured with --enable-cassert (the cache's 18) is never packaged: its headers are not
# those of the server a DBA runs.
#
# Settings: MG_DIST (default dist/); MG_PACKAGE_CLI=0 leaves the client out; MG_PACKAGE_SRC builds
# another checkout of the extension (pg_test/integration/package.sh packages an earlier release
# that way, with a CARGO_TARGET_DIR of its own); with PG=NN, MG_PACKAGE_PG_CONFIG builds against
# another tree of that version (e.g. a production build of 18 beside the cache's assertion one).
source "$(dirname "$0")/lib.sh"
# Packages and tarballs get the modes they should have, whatever umask the caller has.
umask 022

SRC=$(cd "${MG_PACKAGE_SRC:-$REPO_ROOT}" && pwd)
DIST=${MG_DIST:-$REPO_ROOT/dist}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$SRC/target}
MAINTAINER="migrate_guard maintainers <maintainers@users.noreply.b-seed-88cc441f.example>"
ARCH=amd64

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$SRC/Cargo.toml" | head -1)
[ -n "$version" ] || die "no version in $SRC/Cargo.toml"
mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd)
work=$(mktemp -d /tmp/mg-package.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The pg_config of a major version: Debian's for the system's, the cache's for the others.
pg_config_of() {
    if [ -n "${MG_PACKAGE_PG_CONFIG:-}" ] && [ "$1" = "${PG:-}" ]; then echo "$MG_PACKAGE_PG_CONFIG"
    elif [ "$1" = "$SYSTEM_MAJOR" ]; then echo "/usr/lib/postgresql/$1/bin/pg_config"
    else echo "$MG_CACHE/pg$1/bin/pg_config"; fi
}
[ -z "${MG_PACKAGE_PG_CONFIG:-}" ] || [ -n "${PG:-}" ] || die "MG_PACKAGE_PG_CONFIG needs PG=NN (the version it is)"
is_cassert() { "$1" --configure | grep -q -- "--enable-cassert"; }

if [ -n "${PG:-}" ]; then
    majors=$PG_MAJOR
    config=$(pg_config_of "$PG_MAJOR")
    [ -x "$config" ] || die "PostgreSQL $PG_MAJOR: no $config (make setup PG=$PG_MAJOR prepares it)"
    [ "$("$config" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')" = "$PG_MAJOR" ] \
        || die "$config is $("$config" --version), not PostgreSQL $PG_MAJOR"
    if is_cassert "$config"; then
        die "PostgreSQL $PG_MAJOR: $config is configured with --enable-cassert: not packaged (a production library is built against the headers of a production server)"
    fi
else
    majors=""
    for m in 13 14 15 16 17 18; do
        config=$(pg_config_of "$m")
        if [ ! -x "$config" ]; then
            [ "$m" = "$SYSTEM_MAJOR" ] && die "no $config: run make setup first"
            continue
        fi
        if is_cassert "$config"; then
            log "PostgreSQL $m: skipped, $config is configured with --enable-cassert (never shipped)"
            continue
        fi
        majors="$majors $m"
    done
fi

# Everything `cargo pgrx package` must have laid out: the library, the control file, the generated
# install script and every upgrade script of sql/ (pgrx copies the upgrade scripts, not the
# released install scripts, which only the upgrade test uses), and nothing else.
check_pgrx_output() { # out-dir pkglibdir sharedir
    local out=$1 lib=$1$2 ext=$1$3/extension f name expected actual
    [ -f "$lib/migrate_guard.so" ] || die "cargo pgrx package left no $lib/migrate_guard.so"
    grep -qx "default_version = '$version'" "$ext/migrate_guard.control" \
        || die "$ext/migrate_guard.control: default_version is not '$version'"
    [ -s "$ext/migrate_guard--$version.sql" ] || die "cargo pgrx package left no migrate_guard--$version.sql"
    # The library must be this version's: every C function the install script declares is in it.
    local missing
    missing=$(comm -23 <(sed -n "s/^AS 'MODULE_PATHNAME', '\(.*\)';\$/\1/p" "$ext/migrate_guard--$version.sql" | sort -u) \
        <(nm -D --defined-only "$lib/migrate_guard.so" | awk '{print $3}' | sort -u))
    [ -z "$missing" ] || die "the library cargo pgrx package took lacks functions of $version's install script (a stale build?): $(echo $missing)"
    expected="migrate_guard.control migrate_guard--$version.sql"
    for f in "$SRC"/sql/migrate_guard--*--*.sql; do
        [ -e "$f" ] || continue
        name=$(basename "$f")
        cmp -s "$f" "$ext/$name" || die "upgrade script $name missing from (or different in) the package"
        expected="$expected $name"
    done
    expected="$(echo "migrate_guard.so $expected" | tr ' ' '\n' | sort)"
    actual=$(find "$out" -type f -printf '%f\n' | sort)
    [ "$actual" = "$expected" ] || die "cargo pgrx package laid out unexpected files:
$(diff <(echo "$expected") <(echo "$actual"))"
}

# The lowest libc6 (and libgcc-s1) the library needs, from the symbol versions it uses, as
# Debian's own packages compute it.
shlib_depends() { # binary
    local d=$work/shlibdeps
    mkdir -p "$d/debian"
    printf 'Source: migrate-guard\n\nPackage: migrate-guard\nArchitecture: any\n' >"$d/debian/control"
    (cd "$d" && dpkg-shlibdeps -O "$1" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
}

# DEBIAN/control, DEBIAN/md5sums and a copyright file for a staged tree, then the .deb.
build_deb() { # root package depends short-description long-description output
    local root=$1 pkg=$2 depends=$3 short=$4 long=$5 out=$6
    install -d -m 0755 "$root/DEBIAN" "$root/usr/share/doc/$pkg"
    cat >"$root/usr/share/doc/$pkg/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: migrate_guard

Files: *
Copyright: the migrate_guard authors
License: PostgreSQL
 Permission to use, copy, modify, and distribute this software and its documentation for any
 purpose, without fee, and without a written agreement is hereby granted, provided that the
 above copyright notice and this paragraph and the following two paragraphs appear in all copies.
 .
 IN NO EVENT SHALL THE AUTHORS BE LIABLE TO ANY PARTY FOR DIRECT, INDIRECT, SPECIAL, INCIDENTAL,
 OR CONSEQUENTIAL DAMAGES, INCLUDING LOST PROFITS, ARISING OUT OF THE USE OF THIS SOFTWARE AND ITS
 DOCUMENTATION, EVEN IF THE AUTHORS HAVE BEEN ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
 .
 THE AUTHORS SPECIFICALLY DISCLAIM ANY WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED
 WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE. THE SOFTWARE PROVIDED
 HEREUNDER IS ON AN "AS IS" BASIS, AND THE AUTHORS HAVE NO OBLIGATIONS TO PROVIDE MAINTENANCE,
 SUPPORT, ENHANCEMENTS, UPDATES, OR MODIFICATIONS.
EOF
    chmod 0644 "$root/usr/share/doc/$pkg/copyright"
    (cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    {
        echo "Package: $pkg"
        echo "Version: $version"
        echo "Architecture: $ARCH"
        echo "Maintainer: $MAINTAINER"
        echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
        [ -n "$depends" ] && echo "Depends: $depends"
        echo "Section: database"
        echo "Priority: optional"
        echo "Description: $short"
        echo "$long" | fold -s -w 76 | sed 's/ *$//; s/^/ /'
    } >"$root/DEBIAN/control"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
}

package_extension() { # major
    local major=$1 config pkglibdir sharedir out pkg root tarname tardir so depends log
    config=$(pg_config_of "$major")
    pkglibdir=$("$config" --pkglibdir)
    sharedir=$("$config" --sharedir)
    out=$work/pgrx-pg$major
    log=$work/pgrx-pg$major.log
    # cargo-pgrx's config.toml names one pg_config per major; when it names another tree (or
    # none), this one is passed directly so the bindings come from the tree being packaged.
    local env=()
    grep -qx "pg$major = \"$config\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null || env=(PGRX_PG_CONFIG_PATH="$config")
    log "PostgreSQL $major: cargo pgrx package (release) of $version against $config"
    if ! (cd "$SRC" && env "${env[@]}" cargo pgrx package --pg-config "$config" --out-dir "$out") >"$log" 2>&1; then
        cat "$log" >&2
        die "PostgreSQL $major: cargo pgrx package failed"
    fi
    check_pgrx_output "$out" "$pkglibdir" "$sharedir"

    # Debian's layout, whatever the build tree's own paths are.
    pkg=postgresql-$major-migrate-guard
    root=$work/deb-pg$major
    install -d -m 0755 "$root/usr/lib/postgresql/$major/lib" "$root/usr/share/postgresql/$major/extension"
    so=$root/usr/lib/postgresql/$major/lib/migrate_guard.so
    install -m 0644 "$out$pkglibdir/migrate_guard.so" "$so"
    strip --strip-unneeded "$so"
    install -m 0644 "$out$sharedir"/extension/* "$root/usr/share/postgresql/$major/extension/"
    depends=$(shlib_depends "$so")
    [[ $depends == *libc6* ]] || die "PostgreSQL $major: could not compute the library's libc6 dependency"
    build_deb "$root" "$pkg" "postgresql-$major, $depends" \
        "PostgreSQL $major extension that blocks unsafe schema changes" \
        "migrate_guard judges every DDL statement before it takes its locks and blocks the ones that would lock a populated table for long (CREATE INDEX without CONCURRENTLY, rewrites, validating scans), with the safe way in the error's hint. It also records the migration history and runs batched backfills. After installing: CREATE EXTENSION migrate_guard (as a superuser), no restart needed." \
        "$DIST/${pkg}_${version}_$ARCH.deb"
    log "PostgreSQL $major: dist/${pkg}_${version}_$ARCH.deb (Depends: postgresql-$major, $depends)"

    # The tarball: the same two directories, and an installer that asks pg_config where they go.
    tarname=migrate_guard-$version-pg$major-linux-x86_64
    tardir=$work/tar/$tarname
    install -d -m 0755 "$tardir/lib" "$tardir/extension"
    install -m 0644 "$so" "$tardir/lib/"
    install -m 0644 "$root/usr/share/postgresql/$major/extension"/* "$tardir/extension/"
    sed -e "s/@PG_MAJOR@/$major/g" -e "s/@VERSION@/$version/g" "$REPO_ROOT/packaging/tarball/install.sh" >"$tardir/install.sh"
    chmod 0755 "$tardir/install.sh"
    sed -e "s/@PG_MAJOR@/$major/g" -e "s/@VERSION@/$version/g" -e "s/@GLIBC@/$(sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p' <<<"$depends")/g" \
        "$REPO_ROOT/packaging/tarball/README.md" >"$tardir/README.md"
    chmod 0644 "$tardir/README.md"
    tar -C "$work/tar" --owner=0 --group=0 --numeric-owner --sort=name -czf "$DIST/$tarname.tar.gz" "$tarname"
    log "PostgreSQL $major: dist/$tarname.tar.gz"
}

package_cli() {
    local cli_version bin root triple=x86_64-unknown-linux-gnu log=$work/cli.log
    cli_version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$SRC/cli/Cargo.toml" | head -1)
    [ "$cli_version" = "$version" ] || die "cli/Cargo.toml is at $cli_version, the extension at $version"
    # glibc linked in statically (crt-static): the client needs no shared library (host names resolve through files and DNS; other NSS modules are not loaded). With --target,
    # RUSTFLAGS reach the client and its dependencies, not the build scripts run on this machine.
    log "migrate-guard $version: static release build"
    if ! (cd "$SRC" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target "$triple" -p migrate-guard) >"$log" 2>&1; then
        cat "$log" >&2
        die "static build of migrate-guard failed"
    fi
    bin=$DIST/migrate-guard-$version-linux-x86_64
    install -m 0755 "$CARGO_TARGET_DIR/$triple/release/migrate-guard" "$bin"
    strip "$bin"
    file -b "$bin" | grep -Eq 'statically linked|static-pie linked' || die "$bin is not statically linked: $(file -b "$bin")"
    "$bin" --version | grep -qx "migrate-guard $version" || die "$bin --version does not say $version"
    root=$work/deb-cli
    install -d -m 0755 "$root/usr/bin"
    install -m 0755 "$bin" "$root/usr/bin/migrate-guard"
    build_deb "$root" migrate-guard "" \
        "check migrations against a database guarded by migrate_guard" \
        "migrate-guard check sends migration scripts to migrate_guard.check() in a database that has the migrate_guard PostgreSQL extension and reports, statement by statement, what the guard would block or warn about, before the deploy (text, JSON or GitHub annotations; exit status 1 when a statement would be blocked). Statically linked." \
        "$DIST/migrate-guard_${version}_$ARCH.deb"
    log "migrate-guard $version: dist/$(basename "$bin"), dist/migrate-guard_${version}_$ARCH.deb"
}

for m in $majors; do package_extension "$m"; done
[ "${MG_PACKAGE_CLI:-1}" = 1 ] && package_cli
(cd "$DIST" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | sort | xargs -r sha256sum >SHA256SUMS)
log "packages of $version in $DIST:"
(cd "$DIST" && ls -l --time-style=+ $(awk '{print $2}' SHA256SUMS) | awk '{print "    " $5 "\t" $NF}') >&2
