#!/usr/bin/env bash
# The README's verdict table is produced by running its statements: this checks that it still
# matches the guard's behaviour (or, with --write, regenerates it).
source "$(dirname "$0")/common.sh"
log "integration: README verdict table"
psycopg_venv
"$venv/bin/python" "$(dirname "$0")/verdicts.py" "$REPO_ROOT/README.md" "$@"
