#!/usr/bin/env bash
# META.json, the PGXN distribution metadata: valid against the PGXN Meta Spec 1.0.0 and in step
# with Cargo.toml and the control file (meta_check.py). The checker is tested too: broken copies
# of META.json must be refused. Needs no server.
source "$(dirname "$0")/common.sh"
log "integration: META.json (PGXN Meta Spec 1.0.0)"
checker=$REPO_ROOT/pg_test/integration/meta_check.py

if python3 "$checker" "$REPO_ROOT/META.json" "$REPO_ROOT"; then
    pass "META.json is valid and agrees with Cargo.toml and the control file"
else
    fail "META.json: see the FAIL lines above"
fi

# Each broken copy must be refused (a checker that passes everything proves nothing).
tmp=$(mktemp -d /tmp/mg-meta.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
refused() { # description python-expression-that-breaks-meta
    python3 - "$REPO_ROOT/META.json" "$tmp/META.json" "$2" <<'EOF'
import json, sys
meta = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(meta, open(sys.argv[2], "w"))
EOF
    if python3 "$checker" "$tmp/META.json" "$REPO_ROOT" >"$tmp/out" 2>&1; then
        fail "refused: $1 (the checker accepted it)"
    else
        pass "refused: $1 (failed: $(grep -m1 FAIL "$tmp/out" | sed 's/^ *FAIL *//'))"
    fi
}
refused "no license" 'del meta["license"]'
refused "no meta-spec" 'del meta["meta-spec"]'
refused "a version that is not semantic" 'meta["version"] = "0.5"'
refused "a version other than Cargo.toml's" 'meta["version"] = "9.9.9"; meta["provides"]["migrate_guard"]["version"] = "9.9.9"'
refused "a provided file that does not exist" 'meta["provides"]["migrate_guard"]["file"] = "sql/nothing.sql"'
refused "an unknown license name" 'meta["license"] = "PostgreSQL License"'
refused "an unknown top-level key" 'meta["homepage"] = "x"'
refused "a bad prereq phase" 'meta["prereqs"] = {"run": {"requires": {"PostgreSQL": "13.0.0"}}}'
finish "META.json"
