#!/usr/bin/env bash
# postgres.sh — throwaway PostgreSQL for Tank tests, on 127.0.0.1 only.
#
#   postgres.sh start [DIR]   install if needed, then create and start a FRESH cluster in DIR
#                             (an old one in DIR is stopped and wiped first) with database `tank`
#   postgres.sh env [DIR]     print `export TANK_TEST_PG_URL=...` (an SQLAlchemy URL, psycopg 3)
#   postgres.sh stop [DIR]    stop that cluster, then delete DIR
#
# DIR defaults to $TANK_PG_DIR or /tmp/tank-pg; port $TANK_PG_PORT or 15432 (both knobs let a
# second cluster run beside the first). The socket lives in DIR, so clusters never share one.
# As root it runs as the `postgres` system user (PostgreSQL refuses to run as root); as
# another user, as that user (PostgreSQL must then be installed already). No password: trust
# authentication on loopback, user `tank`. fsync is off: test data only.
set -euo pipefail

cmd=${1:-}
D=${2:-${TANK_PG_DIR:-/tmp/tank-pg}}
PORT=${TANK_PG_PORT:-15432}
say() { echo "postgres.sh: $*" >&2; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

install() {
  [ -n "$(bindir)" ] && return
  say "installing postgresql"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends postgresql >/dev/null
}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

stop() {
  if [ -f "$D/data/postmaster.pid" ]; then
    as_pg "$(bindir)/pg_ctl" -D "$D/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$D"
}

# DIR is deleted by `stop`: refuse / and top-level directories.
case "$(realpath -m "$D")" in /?*/?*) ;; *) say "refusing to use DIR=$D"; exit 2 ;; esac

start() {
  local t0; t0=$(date +%s.%N)
  install
  stop
  port_busy "$PORT" && { say "127.0.0.1:$PORT is already in use (set TANK_PG_PORT)"; exit 1; }
  local B; B=$(bindir)
  mkdir -p "$D"; [ "$(id -u)" = 0 ] && chown postgres: "$D"
  as_pg "$B/initdb" -D "$D/data" -U postgres -A trust -E UTF8 --no-locale >"$D/initdb.log" 2>&1
  as_pg "$B/pg_ctl" -D "$D/data" -l "$D/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $D -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
  as_pg "$B/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE ROLE tank LOGIN SUPERUSER" >/dev/null
  as_pg "$B/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE tank OWNER tank" >/dev/null
  say "up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s (dir $D, port $PORT)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  env) [ -f "$D/data/postmaster.pid" ] || { say "not running in $D"; exit 1; }
       # the running cluster's own port (line 4 of postmaster.pid), whatever TANK_PG_PORT is now
       echo "export TANK_TEST_PG_URL=postgresql+psycopg://tank@127.0.0.1:$(sed -n 4p "$D/data/postmaster.pid")/tank" ;;
  *) echo "usage: postgres.sh start|env|stop [DIR]" >&2; exit 2 ;;
esac
