#!/bin/sh
# Install migrate_guard @VERSION@ (built for PostgreSQL @PG_MAJOR@) into a PostgreSQL server's own
# directories, as that server's pg_config names them: the library into `pg_config --pkglibdir`,
# the control file and SQL scripts into `pg_config --sharedir`/extension.
#
# Usage: ./install.sh [PG_CONFIG]            install (default: $PG_CONFIG, else pg_config on PATH)
#        ./install.sh --uninstall [PG_CONFIG] remove the files this tarball installs
# Run it as the user who owns the server's installation (root for a system-wide one).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
built_for=@PG_MAJOR@
action=install
if [ "${1:-}" = --uninstall ]; then action=uninstall; shift; fi
pg_config=${1:-${PG_CONFIG:-pg_config}}

die() { echo "install.sh: $*" >&2; exit 1; }

command -v "$pg_config" >/dev/null 2>&1 || die "no pg_config at '$pg_config' (pass its path, or set PG_CONFIG)"
major=$("$pg_config" --version | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
# PostgreSQL refuses a library built for another major version: say so now, not at CREATE EXTENSION.
[ "$major" = "$built_for" ] || die "this build is for PostgreSQL $built_for; $pg_config is $("$pg_config" --version)"
libdir=$("$pg_config" --pkglibdir)
extdir=$("$pg_config" --sharedir)/extension
[ -d "$libdir" ] || die "$libdir (pg_config --pkglibdir) does not exist"
[ -d "$extdir" ] || die "$extdir (pg_config --sharedir)/extension does not exist"

if [ $action = uninstall ]; then
    rm -f "$libdir/migrate_guard.so"
    for f in "$here"/extension/*; do rm -f "$extdir/$(basename "$f")"; done
    echo "removed migrate_guard @VERSION@ from $libdir and $extdir"
    exit 0
fi

# Copied under a temporary name, then renamed: a backend loading the library meanwhile sees the
# old file or the new one, never half of one.
cp "$here/lib/migrate_guard.so" "$libdir/.migrate_guard.so.new"
chmod 0755 "$libdir/.migrate_guard.so.new"
mv -f "$libdir/.migrate_guard.so.new" "$libdir/migrate_guard.so"
echo "$libdir/migrate_guard.so"
for f in "$here"/extension/*; do
    cp "$f" "$extdir/"
    chmod 0644 "$extdir/$(basename "$f")"
    echo "$extdir/$(basename "$f")"
done
echo "installed migrate_guard @VERSION@ for PostgreSQL $major; next, in each database (as a superuser):"
echo "    CREATE EXTENSION migrate_guard;        -- or, from an earlier version: ALTER EXTENSION migrate_guard UPDATE;"
