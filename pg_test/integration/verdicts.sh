#!/usr/bin/env bash
# The README's verdict table is produced by running its statements: this checks that it still
# matches the guard's behaviour (or, with --write, regenerates it).
source "$(dirname "$0")/common.sh"
log "integration: README verdict table"
venv=$TOOLS/venv-psycopg
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import psycopg' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "psycopg[binary]==3.2.*"
fi
"$venv/bin/python" "$(dirname "$0")/verdicts.py" "$REPO_ROOT/README.md" "$@"
