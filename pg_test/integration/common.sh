# Helpers for the integration tests: they run real clients against the test cluster.
# Sourced by each test; expects scripts/lib.sh's variables.
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

export PGHOST=$MG_SOCKET_DIR PGPORT=$TEST_PORT PGUSER=postgres
TOOLS=$REPO_ROOT/target/tools
mkdir -p "$TOOLS"

q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
# Value of one query.
val() { local db=$1; shift; psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$*"; }

fresh_db() { # fresh_db name [with-extension]
    q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\""
    [ "${2:-}" = guarded ] && q -d "$1" -c "CREATE EXTENSION migrate_guard"
    return 0
}

failures=0
pass() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }
# check "description" test-command...
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
eq() { [ "$1" = "$2" ] || { printf '        expected [%s], got [%s]\n' "$2" "$1"; return 1; }; }
contains() { grep -qF -- "$2" <<<"$1" || { printf '        output lacks [%s]:\n%s\n' "$2" "$(head -c 1500 <<<"$1")"; return 1; }; }
finish() { if [ "$failures" -gt 0 ]; then log "$1: $failures check(s) failed"; exit 1; fi; log "$1: all checks passed"; }
# The Python driver the integration scripts talk to the server with (psycopg 3, in a venv under
# $TOOLS, installed once); sets $venv.
psycopg_venv() {
    venv=$TOOLS/venv-psycopg
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import psycopg' 2>/dev/null; then
        log "installing psycopg into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "psycopg[binary]==3.2.*"
    fi
}
