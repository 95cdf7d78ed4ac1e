# Shared settings and helpers for the scripts in this directory. Sourced, not run.
# Everything works as root (PostgreSQL itself then runs as the `postgres` OS user) and as a
# normal user with sudo.

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
PGRX_VERSION=0.18.0

# Where the local clusters live: owned by the postgres OS user, outside the checkout so that
# the postgres user can reach them whatever the checkout's permissions are.
MG_HOME=${MG_HOME:-/var/lib/postgresql/migrate_guard}
MG_SOCKET_DIR=$MG_HOME
# The demo cluster (`make run`) and the throw-away test cluster (`make test`).
DEMO_PGDATA=$MG_HOME/demo
DEMO_PORT=${MG_DEMO_PORT:-5415}
TEST_PGDATA=$MG_HOME/test
TEST_PORT=${MG_TEST_PORT:-5416}
# The benchmark cluster (bench/ddl_overhead.sh): on disk by default, like a real server; with
# MG_BENCH_MEMORY=1, in memory (/dev/shm), where DDL itself is cheapest.
if [ "${MG_BENCH_MEMORY:-0}" = 1 ] && [ -d /dev/shm ]; then
    BENCH_PGDATA=${MG_BENCH_PGDATA:-/dev/shm/migrate_guard_bench}
else
    BENCH_PGDATA=${MG_BENCH_PGDATA:-$MG_HOME/bench}
fi
BENCH_PORT=${MG_BENCH_PORT:-5417}

export PATH="$HOME/.cargo/bin:$PATH"
export USER=${USER:-$(id -un)}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as root (directly when we are root).
as_root() {
    if is_root; then "$@"; else sudo "$@"; fi
}

# Run a command as the postgres OS user, keeping the current directory out of it.
as_postgres() {
    if [ "$(id -un)" = postgres ]; then
        (cd / && "$@")
    elif is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -u postgres -- "$@")
    fi
}

# `cargo pgrx install` copies into PostgreSQL's directories, which need root.
pgrx_sudo_flag() {
    if is_root; then echo ""; else echo "--sudo"; fi
}
