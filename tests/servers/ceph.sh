#!/usr/bin/env bash
# ceph.sh — throwaway one-node Ceph for Tank tests: RBD pools and the RADOS Gateway
# (which speaks both S3 and Swift). Everything listens on 127.0.0.1 only.
#
#   ceph.sh start [DIR]          install if needed, then create and start a FRESH cluster
#                                in DIR (an old one in DIR is stopped and wiped first)
#   ceph.sh env [DIR]            print `export ...` lines:  eval "$(ceph.sh env)"
#   ceph.sh status [DIR]         show daemons and `ceph -s`
#   ceph.sh stop [DIR]           stop exactly the daemons recorded in DIR, then delete DIR
#   ceph.sh python-link VENV     make Debian's rados/rbd bindings importable in VENV (a venv
#                                dir or its python), without the rest of Debian's packages
#
# DIR defaults to $TANK_CEPH_DIR or /tmp/tank-ceph.
# Daemons: mon (v1 127.0.0.1:16789 = $TANK_CEPH_MON_PORT, v2 on the next port), one OSD on
#   memstore (data lives in RAM, up to 8 GiB), mgr, radosgw on 127.0.0.1:7480
#   ($TANK_CEPH_RGW_PORT). OSD and mgr take free ports in Ceph's 6800-7300 range, so a
#   second cluster with its own DIR, mon and RGW ports runs beside the first. Memory: ~500 MiB.
#   Start-up takes about a minute (pool creation waits for the OSD).
# Pools: `rbd` and `tank` (size 1, rbd-initialised). Auth: none (cephx off).
# RGW users (fixed test credentials):
#   S3:    access key tank-access / secret tank-secret
#   Swift: user tank:swift / key tank-swift-key, auth URL http://127.0.0.1:7480/auth/1.0
# Bindings: `rados`/`rbd` are not on PyPI; they come from Debian's python3-rados and
#   python3-rbd (built for Python 3.11), which `start` installs.
set -euo pipefail

cmd=${1:-}
D=${2:-${TANK_CEPH_DIR:-/tmp/tank-ceph}}
MONPORT=${TANK_CEPH_MON_PORT:-16789}
RGWPORT=${TANK_CEPH_RGW_PORT:-7480}
PKGS="ceph-mon ceph-osd ceph-mgr radosgw ceph-common python3-rados python3-rbd curl"
S3_ACCESS=tank-access S3_SECRET=tank-secret SWIFT_USER=tank:swift SWIFT_KEY=tank-swift-key

say() { echo "ceph.sh: $*" >&2; }
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

conf() { echo "-c $D/ceph.conf"; }

install() {
  local missing=0
  for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing=1; done
  [ "$missing" = 0 ] && return
  say "installing $PKGS"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends $PKGS >/dev/null
}

# Stop exactly the daemons recorded in DIR (their command line names our conf file).
kill_daemons() {
  local pids=""
  for f in "$D"/run/*.pid; do
    [ -f "$f" ] || continue
    local pid; pid=$(cat "$f")
    # only our daemons: their command line names our conf file
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$D/ceph.conf"; then
      kill "$pid" 2>/dev/null && pids="$pids $pid"
    fi
  done
  for _ in $(seq 50); do
    local alive=0
    for pid in $pids; do
      state=$(awk '/^State:/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$state" ] && [ "$state" != Z ] && alive=1
    done
    [ "$alive" = 0 ] && break; sleep 0.2
  done
  for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
}

stop() {
  [ -f "$D/ceph.conf" ] || { rm -rf "${D:?}/run" 2>/dev/null; return 0; }
  kill_daemons
  rm -rf "$D"
}

# A failed start stops what it started but keeps DIR's logs; the next start or stop removes them.
start_failed() {
  kill_daemons
  say "$1; daemons stopped, logs kept in $D/log (ceph.sh stop removes them)"
  tail -5 "$D/log/start.log" >&2
  exit 1
}

write_conf() {
  local fsid=$1
  cat > "$D/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$((MONPORT+1)),v1:127.0.0.1:$MONPORT]
public addr = 127.0.0.1
# the OSD's cluster and heartbeat sockets too (they would bind 0.0.0.0)
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# with auth off, messenger v2 must not insist on "secure" mode
ms mon client mode = crc
ms client mode = crc
ms mon service mode = crc
ms service mode = crc
ms cluster mode = crc
ms mon cluster mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
run dir = $D/run
pid file = $D/run/\$name.pid
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
[mon]
mon data = $D/mon/\$name
mon cluster log file = $D/log/cluster.log
[osd]
osd data = $D/osd/\$name
osd objectstore = memstore
memstore device bytes = 8589934592
[mgr]
mgr data = $D/mgr/\$name
[client.rgw.tank]
rgw frontends = beast endpoint=127.0.0.1:$RGWPORT
rgw data = $D/rgw
rgw swift url = http://127.0.0.1:$RGWPORT
rgw swift auth entry = auth
CONF
}

start() {
  local t0; t0=$(date +%s.%N)
  install
  stop
  for p in "$MONPORT" $((MONPORT+1)) "$RGWPORT"; do
    port_busy "$p" && { say "127.0.0.1:$p is already in use (set TANK_CEPH_MON_PORT / TANK_CEPH_RGW_PORT)"; exit 1; }
  done
  mkdir -p "$D"/{mon,osd/osd.0,mgr/mgr.x,rgw,run,log}
  local fsid; fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"
  local C; C=$(conf)
  {
    monmaptool --create --fsid "$fsid" \
      --addv a "[v2:127.0.0.1:$((MONPORT+1)),v1:127.0.0.1:$MONPORT]" "$D/monmap"
    ceph-mon $C --mkfs -i a --monmap "$D/monmap" --keyring /dev/null
    touch "$D/mon/mon.a/keyring"
    ceph-mon $C -i a
    timeout 30 ceph $C osd create
    timeout 30 ceph $C osd crush add osd.0 1 root=default
    ceph-osd $C -i 0 --mkfs --mkjournal
    ceph-osd $C -i 0
    ceph-mgr $C -i x
    for p in rbd tank; do
      timeout 60 ceph $C osd pool create "$p" 8 8
      timeout 60 rbd $C pool init "$p"
    done
    radosgw $C -n client.rgw.tank --no-mon-config
  } >>"$D/log/start.log" 2>&1 || start_failed "start failed"
  local code=000
  for _ in $(seq 300); do
    code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RGWPORT/" || true)
    [ "$code" = 200 ] && break; sleep 0.2
  done
  [ "$code" = 200 ] || start_failed "radosgw did not answer"
  local admin="radosgw-admin $C -n client.admin --admin-socket="
  { timeout 60 $admin user create --uid=tank --display-name=Tank \
      --access-key=$S3_ACCESS --secret-key=$S3_SECRET &&
    timeout 60 $admin subuser create --uid=tank --subuser=$SWIFT_USER --access=full \
      --key-type=swift --secret=$SWIFT_KEY; } >>"$D/log/start.log" 2>&1 ||
    start_failed "creating the RGW users failed"
  write_env >"$D/env.sh"
  say "up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s (dir $D)"
}

# Written at start, so `env` names the ports the cluster really uses.
write_env() {
  cat <<ENV
export CEPH_CONF=$D/ceph.conf
export TANK_TEST_RBD_POOL=tank
export TANK_TEST_RGW_S3_ENDPOINT=http://127.0.0.1:$RGWPORT
export TANK_TEST_RGW_S3_ACCESS_KEY=$S3_ACCESS
export TANK_TEST_RGW_S3_SECRET_KEY=$S3_SECRET
export TANK_TEST_RGW_SWIFT_AUTH=http://127.0.0.1:$RGWPORT/auth/1.0
export TANK_TEST_RGW_SWIFT_USER=$SWIFT_USER
export TANK_TEST_RGW_SWIFT_KEY=$SWIFT_KEY
ENV
}

envs() {
  [ -f "$D/env.sh" ] || { say "no cluster in $D (run: ceph.sh start)"; exit 1; }
  cat "$D/env.sh"
}

python_link() {
  local target=${1:?usage: ceph.sh python-link VENV_OR_PYTHON}
  local py=$target
  [ -d "$target" ] && py="$target/bin/python"
  local site; site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  local n=0
  for so in /usr/lib/python3/dist-packages/rados.cpython-*.so /usr/lib/python3/dist-packages/rbd.cpython-*.so; do
    [ -f "$so" ] || continue
    ln -sf "$so" "$site/$(basename "$so")"; n=$((n+1))
  done
  [ "$n" = 2 ] || { say "python3-rados/python3-rbd not installed (run: ceph.sh start)"; exit 1; }
  "$py" -c 'import rados, rbd' && say "rados and rbd importable from $py"
}

# DIR is deleted by `stop` (and `start`): refuse / and top-level directories.
if [ "$cmd" = start ] || [ "$cmd" = stop ]; then
  case "$(realpath -m "$D")" in /?*/?*) ;; *) say "refusing to use DIR=$D"; exit 2 ;; esac
fi

case "$cmd" in
  start) start ;;
  stop) stop ;;
  env) envs ;;
  status) pgrep -a -f "$D/ceph.conf" || true; [ -f "$D/ceph.conf" ] && timeout 10 ceph $(conf) -s ;;
  python-link) python_link "${2:-}" ;;
  *) echo "usage: ceph.sh start|env|status|stop [DIR] | python-link VENV" >&2; exit 2 ;;
esac
