#!/usr/bin/env bash
# testenv.sh CMD [ARGS...]: runs CMD inside a throwaway test environment:
#   - a private SoftHSM2 configuration and token directory (SOFTHSM2_CONF);
#   - a throwaway PostgreSQL cluster on a free loopback port (THIQA_TEST_POSTGRES_DSN);
# and removes both afterwards, whatever CMD's outcome. The exit code is CMD's.
# The cluster runs with fsync off (tests need no durability); with
# THIQA_TESTENV_PG_DURABLE=1 (exactly 1) it keeps PostgreSQL's durable defaults.
set -euo pipefail

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PG_BIN/initdb" ] || { echo "testenv: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 3; }
[ -f "${THIQA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}" ] || { echo "testenv: SoftHSM2 module not found (apt-get install softhsm2)" >&2; exit 3; }

work=$(mktemp -d /tmp/thiqa-testenv.XXXXXX)
chmod 755 "$work"
pgdir="$work/pg"
mkdir -p "$pgdir" "$work/softhsm/tokens" "$work/tmp"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
  as_pg "$PG_BIN/pg_ctl" -D "$pgdir/data" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# SoftHSM: every test run gets its own token directory.
cat >"$work/softhsm/softhsm2.conf" <<CONF
directories.tokendir = $work/softhsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$work/softhsm/softhsm2.conf"
export THIQA_PKCS11_MODULE="${THIQA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"

# PostgreSQL: a throwaway cluster owned by the postgres user when run as root.
if [ "$(id -u)" = 0 ]; then chown postgres "$pgdir"; fi
as_pg "$PG_BIN/initdb" -D "$pgdir/data" -A trust -U postgres >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; exit 3; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
# Tests need no durability: fsync is off unless THIQA_TESTENV_PG_DURABLE=1
# (benchmarks that report PostgreSQL figures set it).
pg_durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ "${THIQA_TESTENV_PG_DURABLE:-0}" = 1 ] && pg_durability=""
as_pg "$PG_BIN/pg_ctl" -D "$pgdir/data" -w -t 60 \
  -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c max_connections=300 $pg_durability" \
  -l "$pgdir/log" start >/dev/null || { cat "$pgdir/log" >&2; exit 3; }
export THIQA_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
export THIQA_TEST_TMP="$work/tmp"
export THIQA_TEST_STRICT=1

set +e
"$@"
rc=$?
set -e
exit $rc
