#!/usr/bin/env bash
# Build migrate_guard and install it into the local PostgreSQL 15.
# Usage: install.sh [--release]
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
profile=()
[ "${1:-}" = --release ] && profile=(--release)
log "building and installing migrate_guard ${profile[*]}"
# shellcheck disable=SC2046
cargo pgrx install --pg-config "$PG_CONFIG" "${profile[@]}" $(pgrx_sudo_flag) 2>&1 | grep -vE '^\s+(Copying|Discovered|Writing|Installing|Finished|Building|Compiling)' || true
test -f "$($PG_CONFIG --pkglibdir)/migrate_guard.so" || die "install failed"
