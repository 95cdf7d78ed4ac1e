#!/usr/bin/env bash
# Build migrate_guard and install it into the local PostgreSQL 15.
# Usage: install.sh [--release]
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
profile=()
[ "${1:-}" = --release ] && profile=(--release)
log "building and installing migrate_guard ${profile[*]}"
out=$(mktemp /tmp/mg-install.XXXXXX.log)
# shellcheck disable=SC2046
if ! cargo pgrx install --pg-config "$PG_CONFIG" "${profile[@]}" $(pgrx_sudo_flag) >"$out" 2>&1; then
    cat "$out" >&2
    die "cargo pgrx install failed"
fi
rm -f "$out"
