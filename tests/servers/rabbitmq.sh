#!/usr/bin/env bash
# rabbitmq.sh — throwaway RabbitMQ node for Tank's notification tests, on 127.0.0.1 only.
#
#   rabbitmq.sh start [DIR]    install if needed, then start a FRESH node in DIR (an old one
#                              in DIR is stopped and wiped first)
#   rabbitmq.sh env [DIR]      print `export TANK_TEST_AMQP_URL=rabbit://...` (oslo.messaging's
#                              transport URL form, which [notifications.amqp] takes)
#   rabbitmq.sh status [DIR]   show the node's process and `rabbitmqctl status`
#   rabbitmq.sh stop [DIR]     stop exactly the node recorded in DIR (and its epmd), delete DIR
#
# DIR defaults to $TANK_AMQP_DIR or /tmp/tank-rabbitmq. Ports (all on 127.0.0.1):
#   AMQP $TANK_AMQP_PORT or 15673; Erlang distribution $TANK_AMQP_DIST_PORT or 15675; its own
#   epmd on $TANK_AMQP_EPMD_PORT or 14369 (not epmd's 4369: a system RabbitMQ or another
#   Erlang program on the machine keeps its own). No plugins (no management UI).
# User `tank`, password `tank-test`, vhost `/`. Node name tank-test@localhost, Erlang cookie
#   in DIR. Debian's rabbitmq-server (3.10 on Debian 12) is installed with apt on first use;
#   the package's own system node is never started by this script.
set -euo pipefail

cmd=${1:-}
D=${2:-${TANK_AMQP_DIR:-/tmp/tank-rabbitmq}}
PORT=${TANK_AMQP_PORT:-15673}
DIST_PORT=${TANK_AMQP_DIST_PORT:-15675}
EPMD_PORT=${TANK_AMQP_EPMD_PORT:-14369}
USER_NAME=tank PASSWORD=tank-test
say() { echo "rabbitmq.sh: $*" >&2; }
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

sbin() { ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin 2>/dev/null | sort -V | tail -1; }

install() {
  [ -n "$(sbin)" ] && return
  say "installing rabbitmq-server"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends rabbitmq-server >/dev/null
}

# The environment every rabbitmq command of this node runs with (recorded at start, so
# that `env`, `status` and `stop` find the node whatever the knobs say now).
node_env() {
  local port=$1 dist=$2 epmd=$3
  cat <<EOF
export HOME=$D
export RABBITMQ_NODENAME=tank-test@localhost
export RABBITMQ_USE_LONGNAME=false
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$port
export RABBITMQ_DIST_PORT=$dist
export ERL_EPMD_PORT=$epmd
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CONFIG_FILE=$D/rabbitmq.conf
export RABBITMQ_ADVANCED_CONFIG_FILE=$D/advanced.config
export RABBITMQ_CONF_ENV_FILE=$D/rabbitmq-env.conf
export RABBITMQ_ENABLED_PLUGINS_FILE=$D/enabled_plugins
export RABBITMQ_MNESIA_BASE=$D/mnesia
export RABBITMQ_LOG_BASE=$D/log
export RABBITMQ_PID_FILE=$D/rabbitmq.pid
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
}

# the node's process, if it is ours: its command line names our folder as its home
node_pid() {
  [ -f "$D/rabbitmq.pid" ] || return 1
  local pid; pid=$(cat "$D/rabbitmq.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-home $D " || return 1
  echo "$pid"
}

stop() {
  local pid
  if pid=$(node_pid); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  if [ -f "$D/node.env" ]; then
    # the epmd our node started on its own port (no other program uses that port)
    (. "$D/node.env"; epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true)
  fi
  rm -rf "$D"
}

# DIR is deleted by `stop`: refuse / and top-level directories.
case "$(realpath -m "$D")" in /?*/?*) ;; *) say "refusing to use DIR=$D"; exit 2 ;; esac

start() {
  local t0; t0=$(date +%s.%N)
  install
  stop
  for p in "$PORT" "$DIST_PORT" "$EPMD_PORT"; do
    port_busy "$p" && { say "127.0.0.1:$p is already in use (set TANK_AMQP_PORT, TANK_AMQP_DIST_PORT, TANK_AMQP_EPMD_PORT)"; exit 1; }
  done
  mkdir -p "$D/mnesia" "$D/log"
  node_env "$PORT" "$DIST_PORT" "$EPMD_PORT" > "$D/node.env"
  : > "$D/rabbitmq-env.conf"   # not Debian's /etc/rabbitmq/rabbitmq-env.conf
  echo "[]." > "$D/enabled_plugins"
  echo "[]." > "$D/advanced.config"
  cat > "$D/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$PORT
default_user = $USER_NAME
default_pass = $PASSWORD
default_vhost = /
loopback_users = none
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = info
EOF
  # a fixed cookie, readable by the node and rabbitmqctl only
  echo "tank-test-cookie-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')" > "$D/.erlang.cookie"
  chmod 400 "$D/.erlang.cookie"
  (
    . "$D/node.env"
    cd "$D"
    setsid "$(sbin)/rabbitmq-server" > "$D/log/startup.log" 2>&1 < /dev/null &
  )
  # wait for the node to have booted all the way (await_startup), then for the listener
  local ok=0
  for _ in $(seq 60); do
    if node_pid >/dev/null \
       && (. "$D/node.env"; timeout 20 "$(sbin)/rabbitmqctl" -q await_startup --timeout 15 >/dev/null 2>&1) \
       && port_busy "$PORT"; then ok=1; break; fi
    if grep -q "Kernel pid terminated" "$D/log/startup.log" 2>/dev/null; then break; fi
    sleep 1
  done
  if [ "$ok" != 1 ]; then
    say "the node did not start; its logs:"
    tail -30 "$D/log/startup.log" "$D"/log/*.log >&2 2>/dev/null || true
    exit 1
  fi
  say "up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s (dir $D, port $PORT)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  env) node_pid >/dev/null || { say "not running in $D"; exit 1; }
       port=$(. "$D/node.env"; echo "$RABBITMQ_NODE_PORT")
       echo "export TANK_TEST_AMQP_URL=rabbit://$USER_NAME:$PASSWORD@127.0.0.1:$port/" ;;
  status) pid=$(node_pid) || { say "not running in $D"; exit 1; }
          echo "node pid $pid"
          (. "$D/node.env"; timeout 30 "$(sbin)/rabbitmqctl" status) ;;
  *) echo "usage: rabbitmq.sh start|env|status|stop [DIR]" >&2; exit 2 ;;
esac
