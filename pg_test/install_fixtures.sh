#!/usr/bin/env bash
# Install the test-only extension the golden tests use into PostgreSQL's extension directory.
source "$(dirname "$0")/../scripts/lib.sh"
ext_dir=$($PG_CONFIG --sharedir)/extension
as_root install -m 0644 "$REPO_ROOT"/pg_test/fixtures/mg_test_ext* "$ext_dir/"
