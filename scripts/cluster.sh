#!/usr/bin/env bash
# Start, stop or recreate a local cluster of the chosen PostgreSQL version (PG, see lib.sh),
# owned by the postgres OS user.
# Usage: cluster.sh start|stop|status|fresh|psql demo|test|bench
source "$(dirname "$0")/lib.sh"

action=${1:?usage: cluster.sh start|stop|status|fresh demo|test|bench}
which=${2:-demo}
case $which in
    demo) PGDATA=$DEMO_PGDATA; PORT=$DEMO_PORT ;;
    test) PGDATA=$TEST_PGDATA; PORT=$TEST_PORT ;;
    bench) PGDATA=$BENCH_PGDATA; PORT=$BENCH_PORT ;;
    *) die "unknown cluster $which" ;;
esac

running() { as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

stop() {
    if running; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
        log "stopped $which cluster (port $PORT)"
    fi
}

init() {
    as_root install -d -o postgres -g postgres -m 0755 "$MG_HOME"
    as_root install -d -o postgres -g postgres -m 0755 "$(dirname "$PGDATA")" 2>/dev/null || true
    log "initdb $PGDATA"
    as_postgres "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    {
        echo "# migrate_guard $which cluster"
        echo "port = $PORT"
        echo "listen_addresses = 'localhost'"
        echo "unix_socket_directories = '$MG_SOCKET_DIR'"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        echo "max_connections = 50"
        if [ "$which" = test ]; then
            # Row estimates in golden output must not change under the tests' feet.
            echo "autovacuum = off"
            echo "fsync = off"
            echo "synchronous_commit = off"
        fi
    } | as_postgres tee -a "$PGDATA/postgresql.conf" >/dev/null
}

start() {
    if running; then
        log "$which cluster already running on port $PORT"
        return
    fi
    as_postgres test -f "$PGDATA/PG_VERSION" || init
    # A clean environment: a RUST_BACKTRACE inherited from a developer's shell would add Rust
    # backtraces to error details.
    as_postgres env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PG_BIN/pg_ctl" -D "$PGDATA" -w -t 60 \
        -l "$PGDATA/server.log" start >/dev/null \
        || { as_postgres tail -20 "$PGDATA/server.log" >&2; die "could not start the $which cluster"; }
    log "$which cluster running: port $PORT, data $PGDATA, socket $MG_SOCKET_DIR"
}

case $action in
    start) start ;;
    stop) stop ;;
    status) running && echo "running (port $PORT, data $PGDATA)" || echo "stopped" ;;
    fresh)
        stop
        as_root rm -rf "$PGDATA"
        start
        ;;
    psql) exec psql -X -h "$MG_SOCKET_DIR" -p "$PORT" -U postgres "$([ "$which" = demo ] && echo demo || echo postgres)" ;;
    *) die "unknown action $action" ;;
esac
