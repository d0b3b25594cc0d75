#!/usr/bin/env bash
# swift.sh — throwaway single-node OpenStack Swift ("Swift All In One") for Tank tests.
#
#   swift.sh start  [DIR]   install if needed, then create and start a FRESH Swift in DIR
#                           (an old instance in the same DIR is stopped and wiped first);
#                           returns once /info, auth and a write/read round trip work
#   swift.sh env    [DIR]   print `export TANK_TEST_SWIFT_*=...` lines:  eval "$(swift.sh env)"
#   swift.sh status [DIR]   show processes, memory and health
#   swift.sh stop   [DIR]   stop exactly the processes recorded in DIR, then delete DIR
#
# DIR defaults to $TANK_SWIFT_DIR or /tmp/tank-swift. Everything listens on 127.0.0.1 only:
#   proxy      http://127.0.0.1:8080   Swift API (/v1), tempauth (/auth/v1.0), S3 API (s3api),
#                                      /info, /healthcheck
#   object     127.0.0.1:6200, container 127.0.0.1:6201, account 127.0.0.1:6202 (backends,
#              no auth; do not use from tests)
#
# Test users (tempauth; tokens are Fernet tokens, so no memcached is needed):
#   test:tester   / testing    .admin of account AUTH_test    <- TANK_TEST_SWIFT_USER / _KEY
#   test:tester3  / testing3   NON-admin user of AUTH_test (no access until an ACL grants it)
#   test2:tester2 / testing2   .admin of a second account AUTH_test2
#   admin:admin   / admin      .reseller_admin (may manage every account)
# S3 (s3api, path-style, region us-east-1, SigV4 or SigV2): access key = "account:user",
#   secret = that user's key, e.g. access key test:tester, secret testing.
# Proxy middleware: bulk, tempurl, formpost, s3api, tempauth, copy, quotas, slo, dlo,
#   versioned_writes (+ object versioning), symlink. One storage policy (Policy-0),
#   1 replica, part power 8. No replicators/updaters/auditors run (single node, tests only).
#
# Install: Swift $TANK_SWIFT_VERSION (default 2.38.3) from PyPI into a cached venv
#   ($TANK_SWIFT_VENV, default ~/.cache/tank-services/swift-<version>), built from
#   `python3` (override: TANK_SWIFT_PYTHON). It is reused by later starts; `stop` keeps it.
#   Why not Debian's swift 2.30 packages: apt's lock is shared with other installers on the
#   machine, the maintainer scripts touch /etc/swift and try to start services, 2.30's
#   s3api predates the checksums boto3 >= 1.36 sends by default (its DeleteObjects demands
#   Content-MD5, which boto3 no longer sends; no aws-chunked uploads) and its tempauth has
#   no Fernet tokens (it would need memcached too).
#
# Other knobs: TANK_SWIFT_PORT (proxy port, default 8080), TANK_SWIFT_PORT_BASE (backend
#   ports BASE..BASE+2, default 6200; with its own DIR and ports a second Swift runs beside
#   the first; `env` prints the ports recorded at start), TANK_SWIFT_START_TIMEOUT (seconds, default 60),
#   TANK_SWIFT_FORCE_LOOP=1 (store objects on a loop-mounted ext4 image even if DIR has
#   xattrs; TANK_SWIFT_LOOP_SIZE, default 8G sparse).
# In a test suite:  swift.sh start; trap 'swift.sh stop' EXIT; eval "$(swift.sh env)"
# Logs: DIR/log/{proxy,account,container,object}.log. PIDs: DIR/run/*.pid.
#   Harmless noise in proxy.log: "swift.cache could not be found in env!" once per
#   /auth/v1.0 request (tempauth looks for memcached first; Fernet tokens don't need it).

set -eo pipefail
unset PYTHONPATH PYTHONHOME   # the servers must see only their own venv

SWIFT_VERSION=${TANK_SWIFT_VERSION:-2.38.3}
# Pinned with Swift because eventlet/greenlet releases have broken Swift before.
PIP_PINS=("swift==$SWIFT_VERSION" "eventlet==0.41.3" "greenlet==3.5.6")
VENV=${TANK_SWIFT_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/tank-services/swift-$SWIFT_VERSION}
PYTHON=${TANK_SWIFT_PYTHON:-python3}
PROXY_PORT=${TANK_SWIFT_PORT:-8080}
PORT_BASE=${TANK_SWIFT_PORT_BASE:-6200}
OBJECT_PORT=$PORT_BASE CONTAINER_PORT=$((PORT_BASE + 1)) ACCOUNT_PORT=$((PORT_BASE + 2))
START_TIMEOUT=${TANK_SWIFT_START_TIMEOUT:-60}
SERVERS=(account container object proxy)   # start order; stop goes in reverse
MARKER=.tank-swift                         # only directories holding this file get deleted

log() { printf 'swift.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

resolve_dir() {
    DIR=$(realpath -m "${1:-${TANK_SWIFT_DIR:-/tmp/tank-swift}}")
    # DIR is deleted by `stop`: refuse top-level directories and $HOME.
    if [[ "$DIR" =~ ^/[^/]*$ ]] || [ "$DIR" = "$(realpath -m "${HOME:-/}")" ]; then
        die "refusing to use DIR=$DIR"
    fi
}

# Debian packages are only installed if one of our few tools is missing (normally none
# is). Another process may hold apt's lock (e.g. a Ceph install): wait for it, up to 10 min.
apt_install() {
    log "installing Debian package(s) $*"
    local apt=(timeout 900 env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq)
    "${apt[@]}" install -y --no-install-recommends "$@" >/dev/null 2>&1 \
        || { "${apt[@]}" update >/dev/null && "${apt[@]}" install -y --no-install-recommends "$@" >/dev/null; } \
        || die "could not install $*"
}
need_cmd() { command -v "$1" >/dev/null 2>&1 || apt_install "$2"; }  # need_cmd COMMAND PACKAGE

# ---------------------------------------------------------------- install (cached venv)
# Ready = marked complete and its interpreter still works (a pyenv upgrade can break it).
venv_ready() {
    [ -f "$VENV/.tank-ready" ] && [ -x "$VENV/bin/swift-proxy-server" ] &&
        "$VENV/bin/python" -c 'import swift' 2>/dev/null
}

install_swift() {
    venv_ready && return 0
    need_cmd flock util-linux
    mkdir -p "$(dirname "$VENV")"
    (   # serialise concurrent installs into the same cache
        flock -w 300 9 || die "timed out waiting for $VENV.lock"
        venv_ready && exit 0
        log "installing Swift $SWIFT_VERSION into $VENV (one time, ~15 s)"
        if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then die "$VENV exists and is no venv"; fi
        rm -rf "$VENV"
        # Debian's own python3 needs python3-venv for this; pyenv's Python has it built in
        "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
        timeout 120 "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed"
        if ! timeout 180 "$VENV/bin/pip" install --disable-pip-version-check --timeout 30 \
                --retries 2 -q "${PIP_PINS[@]}" >"$VENV.pip.log" 2>&1; then
            grep -v "is ignored: it is neither a file nor a directory" "$VENV.pip.log" | tail -20 >&2
            die "pip install ${PIP_PINS[*]} failed (log: $VENV.pip.log)"
        fi
        # swift imports pyeclib (erasure coding, wheel bundles liberasurecode) at start-up
        "$VENV/bin/python" -c 'import swift.proxy.server, swift.obj.server, pyeclib.ec_iface' \
            || die "Swift installed but does not import"
        touch "$VENV/.tank-ready"
    ) 9>"$VENV.lock"
}

# ---------------------------------------------------------------- helpers
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# Object metadata lives in user.* xattrs. True if directory $1 supports them.
xattr_ok() {
    "$VENV/bin/python" - "$1" <<'EOF' 2>/dev/null
import os, sys, tempfile
with tempfile.NamedTemporaryFile(dir=sys.argv[1]) as f:
    os.setxattr(f.name, "user.swift.test", b"x" * 200)
    assert os.getxattr(f.name, "user.swift.test") == b"x" * 200
EOF
}

# Is $1 a live process started from this DIR's config? (guards against PID reuse)
ours() { [ -n "$1" ] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF "$DIR/etc/"; }

# Still running (not gone, not a zombie)? Used while waiting for an exit.
running() { [ -e "/proc/$1" ] && ! grep -qs '^State:[[:space:]]*[ZX]' "/proc/$1/status"; }

# wait_gone TENTHS_OF_SECONDS PID...: true as soon as none of the PIDs is running
wait_gone() {
    local n=$1 pid any; shift
    while :; do
        any=0
        for pid in "$@"; do running "$pid" && any=1; done
        [ "$any" = 0 ] && return 0
        [ "$n" -gt 0 ] || return 1
        sleep 0.1; n=$((n - 1))
    done
}

rss_total_kb() {
    local total=0 pid kb
    for f in "$DIR"/run/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f"); ours "$pid" || continue
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# ---------------------------------------------------------------- configuration
write_configs() {
    local etc=$DIR/etc user fernet
    user=$(id -un)
    fernet=$("$VENV/bin/python" -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')

    cat >"$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = tank-test-prefix
swift_hash_path_suffix = tank-test-suffix

[storage-policy:0]
name = Policy-0
default = yes
EOF

    # Shared [DEFAULT] for every server. workers = 0: one process per server, no forking,
    # so the PID we record is the whole server. Logs go to stderr (-v) -> DIR/log/*.log;
    # Swift's syslog copy is pointed at 127.0.0.1 (nobody listens, stays on loopback).
    common() {  # common PORT NAME
        cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 0
user = $user
swift_dir = $etc
devices = $DIR/srv/node
mount_check = false
disable_fallocate = true
recon_cache_path = $DIR/cache
log_name = $2
log_level = INFO
log_udp_host = 127.0.0.1

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
    }

    { common "$ACCOUNT_PORT" account-server; cat <<EOF

[pipeline:main]
pipeline = healthcheck account-server

[app:account-server]
use = egg:swift#account
EOF
    } >"$etc/account-server.conf"

    { common "$CONTAINER_PORT" container-server; cat <<EOF

[pipeline:main]
pipeline = healthcheck container-server

[app:container-server]
use = egg:swift#container
EOF
    } >"$etc/container-server.conf"

    { common "$OBJECT_PORT" object-server; cat <<EOF

[pipeline:main]
pipeline = healthcheck object-server

[app:object-server]
use = egg:swift#object
EOF
    } >"$etc/object-server.conf"

    # The proxy: s3api must sit just before tempauth; slo after both (s3api MPU uses it).
    { common "$PROXY_PORT" proxy-server; cat <<EOF

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk tempurl formpost s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true
# One node only: don't blacklist it for 60 s after a few errors/timeouts.
error_suppression_interval = 1
error_suppression_limit = 100

[filter:tempauth]
use = egg:swift#tempauth
# Fernet tokens carry their own groups: no memcached needed. New key on every start.
fernet_key_tank = $fernet
active_fernet_key_id = tank
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test_tester3 = testing3
user_test2_tester2 = testing2 .admin

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
allow_multipart_uploads = true

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:formpost]
use = egg:swift#formpost
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true
[filter:symlink]
use = egg:swift#symlink
EOF
    } >"$etc/proxy-server.conf"
}

# One device (d1), 1 replica, part power 8 — built in one Python process (faster than
# nine swift-ring-builder calls).
build_rings() {
    "$VENV/bin/python" - "$DIR/etc" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" <<'EOF'
import os, sys
from swift.common.ring import RingBuilder
os.chdir(sys.argv.pop(1))
for name, port in zip(("account", "container", "object"), map(int, sys.argv[1:])):
    builder = RingBuilder(8, 1, 1)  # part_power, replicas, min_part_hours
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
                     "device": "d1", "weight": 100.0, "meta": ""})
    builder.rebalance()
    builder.save(name + ".builder")
    builder.get_ring().save(name + ".ring.gz")
EOF
}

# Objects need user xattrs. If DIR's filesystem lacks them, put the device on a
# loop-mounted ext4 image instead (needs root + loop devices).
prepare_device() {
    local node=$DIR/srv/node
    mkdir -p "$node"
    if [ "${TANK_SWIFT_FORCE_LOOP:-0}" != 1 ] && xattr_ok "$node"; then
        mkdir -p "$node/d1"; return 0
    fi
    log "no user xattrs under $node (or TANK_SWIFT_FORCE_LOOP=1): using a loop-mounted ext4 image"
    need_cmd mkfs.ext4 e2fsprogs
    truncate -s "${TANK_SWIFT_LOOP_SIZE:-8G}" "$DIR/disk.img"      # sparse
    timeout 60 mkfs.ext4 -q -F -m 0 "$DIR/disk.img" || die "mkfs.ext4 failed"
    timeout 30 mount -o loop "$DIR/disk.img" "$node" \
        || die "cannot loop-mount $DIR/disk.img (not root / no loop devices?); use a DIR on ext4/xfs/tmpfs"
    echo "$node" >"$DIR/run/mounted"
    xattr_ok "$node" || die "even the loop-mounted image has no user xattrs"
    mkdir -p "$node/d1"
}

# ---------------------------------------------------------------- readiness
http() { curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 5 "$@" 2>/dev/null || true; }

wait_ready() {
    local deadline=$(( $(date +%s) + START_TIMEOUT )) s url token auth_hdrs
    while :; do
        for s in "${SERVERS[@]}"; do
            ours "$(cat "$DIR/run/$s.pid")" || {
                tail -25 "$DIR/log/$s.log" >&2; die "$s-server exited during start-up (log: $DIR/log/$s.log)"; }
        done
        if [ "$(http "http://127.0.0.1:$PROXY_PORT/info")" = 200 ] &&
           [ "$(http "http://127.0.0.1:$ACCOUNT_PORT/healthcheck")" = 200 ] &&
           [ "$(http "http://127.0.0.1:$CONTAINER_PORT/healthcheck")" = 200 ] &&
           [ "$(http "http://127.0.0.1:$OBJECT_PORT/healthcheck")" = 200 ]; then
            auth_hdrs=$(curl -sS --noproxy '*' -D - -o /dev/null --max-time 5 -H 'X-Auth-User: test:tester' \
                -H 'X-Auth-Key: testing' "http://127.0.0.1:$PROXY_PORT/auth/v1.0" 2>/dev/null | tr -d '\r' || true)
            url=$(sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: //p' <<<"$auth_hdrs")
            token=$(sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p' <<<"$auth_hdrs")
            [ -n "$url" ] && [ -n "$token" ] && break
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -n 5 "$DIR"/log/*.log >&2; die "Swift not ready after ${START_TIMEOUT}s (logs: $DIR/log)"
        fi
        sleep 0.1
    done
    # Smoke test: container + object write/read/delete through proxy -> object server.
    local c="$url/tank-swift-smoke" H=(-H "X-Auth-Token: $token")
    [ "$(http -X PUT "${H[@]}" "$c")" = 201 ] || die "smoke test: container PUT failed"
    [ "$(http -X PUT "${H[@]}" --data-binary hello "$c/o")" = 201 ] || die "smoke test: object PUT failed (see $DIR/log/object.log)"
    [ "$(curl -sS --noproxy '*' --max-time 5 "${H[@]}" "$c/o")" = hello ] || die "smoke test: object GET failed"
    http -X DELETE "${H[@]}" "$c/o" >/dev/null; http -X DELETE "${H[@]}" "$c" >/dev/null
}

# ---------------------------------------------------------------- commands
write_env() {
    cat <<EOF
export TANK_TEST_SWIFT_AUTH='http://127.0.0.1:$PROXY_PORT/auth/v1.0'
export TANK_TEST_SWIFT_USER='test:tester'
export TANK_TEST_SWIFT_KEY='testing'
export TANK_TEST_SWIFT_NONADMIN_USER='test:tester3'
export TANK_TEST_SWIFT_NONADMIN_KEY='testing3'
export TANK_TEST_SWIFT_USER2='test2:tester2'
export TANK_TEST_SWIFT_KEY2='testing2'
export TANK_TEST_SWIFT_S3_ENDPOINT='http://127.0.0.1:$PROXY_PORT'
export TANK_TEST_SWIFT_S3_ACCESS_KEY='test:tester'
export TANK_TEST_SWIFT_S3_SECRET_KEY='testing'
export TANK_TEST_SWIFT_S3_REGION='us-east-1'
EOF
}

cmd_env() {
    if [ -f "$DIR/env.sh" ]; then cat "$DIR/env.sh"
    else log "note: no Swift in $DIR (run: $0 start $DIR); printing defaults"; write_env; fi
}

cmd_stop() {
    if [ ! -e "$DIR" ]; then log "nothing to stop in $DIR"; return 0; fi
    [ -f "$DIR/$MARKER" ] || die "$DIR was not created by swift.sh; not touching it"
    local i s pid pids=()
    for (( i=${#SERVERS[@]}-1; i>=0; i-- )); do   # proxy first
        s=${SERVERS[i]}; pid=$(cat "$DIR/run/$s.pid" 2>/dev/null || true)
        if ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    done
    if ! wait_gone 100 "${pids[@]}"; then   # 10 s for a clean exit, then SIGKILL
        log "servers still up 10 s after SIGTERM: sending SIGKILL"
        for pid in "${pids[@]}"; do ours "$pid" && kill -KILL "$pid" 2>/dev/null; done
        wait_gone 50 "${pids[@]}" || log "warning: could not stop PIDs ${pids[*]}"
    fi
    if [ -f "$DIR/run/mounted" ]; then
        timeout 30 umount "$(cat "$DIR/run/mounted")" || die "could not unmount $(cat "$DIR/run/mounted")"
    fi
    rm -rf "$DIR"
    log "stopped and removed $DIR"
}

# EXIT trap while starting: kill the servers started so far and unmount, but keep DIR
# (logs, configs) for a post-mortem; the next `start` or `stop` removes it.
start_failed() {
    local s pid pids=()
    for s in "${SERVERS[@]}"; do
        pid=$(cat "$DIR/run/$s.pid" 2>/dev/null || true)
        if ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    done
    wait_gone 100 "${pids[@]}" || true
    if [ -f "$DIR/run/mounted" ]; then
        timeout 30 umount "$(cat "$DIR/run/mounted")" && rm -f "$DIR/run/mounted"
    fi
    log "start FAILED; servers stopped, logs kept in $DIR/log ('$0 stop $DIR' removes them)"
}

cmd_start() {
    local t0; t0=$(now_ms)
    if [ -f "$DIR/$MARKER" ]; then log "an instance exists in $DIR: stopping it first"; cmd_stop; fi
    if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
        die "$DIR exists, is not empty and was not made by swift.sh; pick another DIR"
    fi
    need_cmd curl curl
    install_swift
    [ -e /etc/swift/swift.conf ] && log "warning: /etc/swift/swift.conf exists; Swift reads its storage policies/constraints"
    for p in "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT"; do
        port_busy "$p" && die "127.0.0.1:$p is already in use (another Swift? '$0 stop OTHER_DIR'): $(ss -ltnpH "sport = :$p" 2>/dev/null | head -1)"
    done

    mkdir -p "$DIR"/{etc,log,run,cache}
    touch "$DIR/$MARKER"
    trap start_failed EXIT   # on any failure below: stop what we started, keep the logs
    prepare_device
    write_configs
    build_rings

    # Servers run in the background of this script; each calls setsid() itself, so it
    # survives our exit and ignores the caller's terminal. stdin/stdout/stderr are detached.
    local s
    for s in "${SERVERS[@]}"; do
        "$VENV/bin/swift-$s-server" "$DIR/etc/$s-server.conf" -v </dev/null >>"$DIR/log/$s.log" 2>&1 &
        echo $! >"$DIR/run/$s.pid"
    done
    wait_ready
    write_env >"$DIR/env.sh"
    trap - EXIT

    local ms=$(( $(now_ms) - t0 ))
    log "Swift $SWIFT_VERSION ready in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s: proxy http://127.0.0.1:$PROXY_PORT (s3api + tempauth), DIR=$DIR, RSS $(( $(rss_total_kb) / 1024 )) MiB"
    log "use: eval \"\$($0 env $DIR)\""
}

cmd_status() {
    [ -f "$DIR/$MARKER" ] || { echo "no Swift in $DIR"; return 1; }
    local s pid rc=0
    for s in "${SERVERS[@]}"; do
        pid=$(cat "$DIR/run/$s.pid" 2>/dev/null || true)
        if ours "$pid"; then
            printf '%-10s pid %-7s rss %6s KiB\n' "$s" "$pid" "$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
        else printf '%-10s NOT RUNNING\n' "$s"; rc=1; fi
    done
    echo "total rss: $(( $(rss_total_kb) / 1024 )) MiB"
    echo "proxy /info: HTTP $(http "http://127.0.0.1:$PROXY_PORT/info")"
    return $rc
}

case "${1:-}" in
    start)  resolve_dir "${2:-}"; cmd_start ;;
    stop)   resolve_dir "${2:-}"; cmd_stop ;;
    env)    resolve_dir "${2:-}"; cmd_env ;;
    status) resolve_dir "${2:-}"; cmd_status ;;
    *) usage ;;
esac
