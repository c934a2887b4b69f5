#!/usr/bin/env bash
# A local mcp-sandboxd cluster: one redis-server, N replicas mirroring into it
# and nginx in front (ip_hash), all on loopback, all under one run directory,
# none of it needing root.
#
#   scripts/cluster.sh up [N]     start (N replicas, default 3); prints the MCP URL
#   scripts/cluster.sh status     each part up or down, the replicas' /health
#   scripts/cluster.sh down       stop everything this run directory started
#
# Environment:
#   CLUSTER_DIR    run directory [./.cluster]: logs, pids, workspaces, nginx
#   CLUSTER_PORT   nginx's port [a free one]
#   CLUSTER_ARGS   extra flags for every replica (e.g. "--token secret")
#   SANDBOXD_BIN   the server binary [./mcp-sandboxd] (the tests pass the ASan build)
# The replicas also read the usual SANDBOX_* variables; REDIS_URL is set to the
# cluster's own Redis.
#
# Each process runs in a session of its own whose id (= its pid) is kept in
# $CLUSTER_DIR/pids/<name>: `down` signals it and waits until nothing of that
# session is left (nginx workers included), SIGKILL after a grace period.
# Exit status of `status`: 0 all up, 1 partly up, 3 down.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH="$PATH:/usr/sbin:/sbin" # nginx lives in /usr/sbin, not in a user's PATH
RUN=${CLUSTER_DIR:-$ROOT/.cluster}
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
TEMPLATE=$ROOT/nginx/mcp-sandboxd.conf.in
STATE=$RUN/cluster.env

die() { echo "cluster: $*" >&2; exit 1; }
usage() {
    echo "usage: $0 up [N] | status | down" >&2
    exit 2
}

# Absolute and without symbolic links: the run directory is how `alive` recognises
# our processes.
case $RUN in /*) ;; *) RUN=$PWD/$RUN ;; esac
[ -d "$RUN" ] && RUN=$(cd "$RUN" && pwd -P)
STATE=$RUN/cluster.env
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac

# --- processes -------------------------------------------------------------

pid_of() { cat "$RUN/pids/$1" 2>/dev/null || true; }

# True when the process recorded for $1 is alive and is ours: its command line
# names the run directory (replicas, nginx) or its cwd is inside it (redis
# rewrites its command line). Guards against a recycled pid.
alive() {
    local pid
    pid=$(pid_of "$1")
    [ -n "$pid" ] && running "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$RUN/" && return 0
    case $(readlink "/proc/$pid/cwd" 2>/dev/null) in "$RUN"/*) return 0 ;; esac
    return 1
}

# Pids of every live process in session $1. Zombies do not count: whoever
# inherits our exited daemons (PID 1, a subreaper) may take its time reaping.
session_pids() { ps -e -o pid=,sid=,stat= | awk -v s="$1" '$2 == s && $3 !~ /^Z/ { print $1 }'; }
# True while process $1 exists and is not a zombie.
running() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# start_daemon NAME LOG CMD...: runs CMD in a new session, cwd $RUN/NAME
# (created), stdin /dev/null, stdout and stderr appended to LOG; records its pid.
start_daemon() {
    local name=$1 log=$2 i
    shift 2
    mkdir -p "$RUN/$name" "$RUN/pids"
    rm -f "$RUN/pids/$name"
    # shellcheck disable=SC2016 # $$, $0 and $@ are the inner shell's
    (cd "$RUN/$name" && exec setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' \
        "$RUN/pids/$name" "$@" </dev/null >>"$log" 2>&1) &
    for i in $(seq 100); do
        [ -s "$RUN/pids/$name" ] && return 0
        sleep 0.02
    done
    die "$name did not start (see $log)"
}

# stop_daemons GRACE NAME...: SIGTERM to each, waits up to GRACE seconds for
# their whole sessions to end, then SIGKILL to whatever is left.
stop_daemons() {
    local grace=$1 name pid left i
    shift
    local sids=()
    for name in "$@"; do
        if alive "$name"; then
            pid=$(pid_of "$name")
            kill -TERM "$pid" 2>/dev/null || true
            sids+=("$pid")
        fi
        rm -f "$RUN/pids/$name"
    done
    [ "${#sids[@]}" -gt 0 ] || return 0
    for i in $(seq $((grace * 20))); do
        # cheap test first: are the session leaders gone?
        left=""
        for pid in "${sids[@]}"; do running "$pid" && left=1; done
        if [ -z "$left" ]; then
            left=$(for pid in "${sids[@]}"; do session_pids "$pid"; done)
            [ -z "$left" ] && return 0
        fi
        sleep 0.05
    done
    left=$(for pid in "${sids[@]}"; do session_pids "$pid"; done)
    if [ -n "$left" ]; then
        # shellcheck disable=SC2086 # one pid per word
        echo "cluster: still running after ${grace}s, sending SIGKILL:" $left >&2
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null || true
        sleep 0.2
    fi
}

# --- ports -----------------------------------------------------------------

USED_PORTS=" "
port_busy() { (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A free loopback port not handed out before by this run of the script, below
# the kernel's ephemeral range (ports there are also taken by outgoing
# connections, which a connect probe cannot see).
free_port() {
    local p i lo=32768
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    [ "$lo" -gt 12000 ] || lo=32768
    for i in $(seq 200); do
        p=$((10000 + RANDOM % (lo - 10000)))
        case $USED_PORTS in *" $p "*) continue ;; esac
        port_busy "$p" && continue
        USED_PORTS="$USED_PORTS$p "
        echo "$p"
        return 0
    done
    die "no free port found"
}
# Another program may bind a port between our probe and the daemon's own bind:
# such a start is retried on another port (ATTEMPTS times in all).
ATTEMPTS=5
port_taken() { grep -qs "Address already in use" "$@"; }

# --- state -----------------------------------------------------------------

N=0 REDIS_PORT="" NGINX_PORT="" REPLICA_PORTS=""
# shellcheck disable=SC1090 # written by do_up
load_state() { if [ -f "$STATE" ]; then . "$STATE"; fi; }
names() {
    local i
    echo redis
    for i in $(seq "$N"); do echo "replica-$i"; done
    echo nginx
}
# Counts the parts alive: sets UP and TOTAL.
count_alive() {
    local name
    UP=0 TOTAL=0
    for name in $(names); do
        TOTAL=$((TOTAL + 1))
        if alive "$name"; then UP=$((UP + 1)); fi
    done
}

tail_log() { [ -f "$1" ] && { echo "--- last lines of $1:" >&2; tail -n 15 "$1" >&2; }; return 0; }

# --- up --------------------------------------------------------------------

# up fails halfway: stop what was started, show the log of the part that failed.
up_fail() {
    echo "cluster: $1" >&2
    [ -n "${2:-}" ] && tail_log "$2"
    do_down >/dev/null 2>&1 || true
    exit 1
}

save_state() {
    printf 'N=%s\nREDIS_PORT=%s\nREPLICA_PORTS="%s"\nNGINX_PORT=%s\nMCP_URL=http://127.0.0.1:%s/mcp\nREDIS_URL=redis://127.0.0.1:%s\n' \
        "$N" "$REDIS_PORT" "$REPLICA_PORTS" "$NGINX_PORT" "$NGINX_PORT" "$REDIS_PORT" >"$STATE"
}

# start_replica I PORT. --replica-id is the new name of --replica: the flag
# this binary knows is used.
start_replica() {
    local name=replica-$1 port=$2 idflag=--replica-id
    "$BIN" --help 2>&1 | grep -q -- '--replica-id' || idflag=--replica
    mkdir -p "$RUN/$name"
    chmod 0711 "$RUN/$name"
    : >"$RUN/$name/stderr.log"
    : >"$RUN/$name/mcp-sandboxd.log"
    # shellcheck disable=SC2086 # CLUSTER_ARGS is a list of flags
    start_daemon "$name" "$RUN/$name/stderr.log" \
        env REDIS_URL="redis://127.0.0.1:$REDIS_PORT" "$BIN" --host 127.0.0.1 --port "$port" "$idflag" "$(uname -n):$port" \
        --log-file "$RUN/$name/mcp-sandboxd.log" --workspace-root "$RUN/$name/ws" ${CLUSTER_ARGS:-}
}

wait_http() { # URL SECONDS NAME: until URL answers 200 (the process NAME must stay alive)
    local url=$1 secs=$2 name=$3 i
    for i in $(seq $((secs * 20))); do
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        alive "$name" || return 1
        sleep 0.05
    done
    return 1
}

do_up() {
    local want=$1 want_given=$2 i name
    load_state
    if [ "$N" -gt 0 ]; then
        count_alive
        if [ "$UP" -eq "$TOTAL" ] && { [ -z "$want_given" ] || [ "$N" -eq "$want" ]; }; then
            echo "cluster: already up ($N replicas) in $RUN"
            echo "  MCP URL    http://127.0.0.1:$NGINX_PORT/mcp"
            echo "  Redis URL  redis://127.0.0.1:$REDIS_PORT"
            return 0
        elif [ "$UP" -eq "$TOTAL" ]; then
            die "already up with $N replicas in $RUN (asked for $want): run '$0 down' first"
        elif [ "$UP" -gt 0 ]; then
            die "partly up in $RUN ($UP of $TOTAL parts running): run '$0 down' first ('$0 status' shows which)"
        fi
        rm -rf "$RUN/pids" "$STATE" # stale state: nothing of it runs any more
    fi

    [ -x "$BIN" ] || die "no server binary at $BIN: run 'make' (or set SANDBOXD_BIN)"
    [ -f "$TEMPLATE" ] || die "missing $TEMPLATE"
    for c in redis-server redis-cli nginx curl setsid timeout; do
        command -v "$c" >/dev/null || die "'$c' is not installed: run scripts/deps.sh"
    done

    mkdir -p "$RUN"
    RUN=$(cd "$RUN" && pwd -P) STATE=$RUN/cluster.env
    # As root, sandboxes run as --sandbox-user (nobody), who must reach the
    # workspace roots inside the run directory: 0755 here, 0711 below.
    chmod 0755 "$RUN"
    if [ "$(id -u)" -eq 0 ]; then
        local sbuser=${SANDBOX_USER:-nobody}
        if command -v runuser >/dev/null && ! runuser -u "$sbuser" -- test -x "$RUN"; then
            die "running as root, sandboxes run as '$sbuser', who cannot reach $RUN (a parent directory is not searchable by others): set CLUSTER_DIR to a path under /tmp, for example"
        fi
    fi

    N=$want REDIS_PORT="" NGINX_PORT="" REPLICA_PORTS=""
    local ports=() attempt
    save_state

    # Redis: loopback, no persistence, protected mode, its files in the run dir.
    mkdir -p "$RUN/redis"
    for attempt in $(seq $ATTEMPTS); do
        REDIS_PORT=$(free_port)
        save_state
        : >"$RUN/redis/redis.log"
        start_daemon redis "$RUN/redis/redis.log" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
            --protected-mode yes --save '' --appendonly no --dir "$RUN/redis" --logfile "$RUN/redis/redis.log"
        for i in $(seq 200); do
            alive redis || break
            # (timeout: until redis has bound it, the port may belong to someone else)
            [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && break 2
            sleep 0.05
        done
        if ! alive redis && port_taken "$RUN/redis/redis.log" && [ "$attempt" -lt $ATTEMPTS ]; then continue; fi
        up_fail "redis-server does not answer on port $REDIS_PORT" "$RUN/redis/redis.log"
    done

    # Replicas, started together, then each waited for (and restarted on
    # another port if its port was taken meanwhile).
    for i in $(seq "$N"); do
        ports[i]=$(free_port)
        start_replica "$i" "${ports[i]}"
    done
    REPLICA_PORTS="${ports[*]}"
    save_state
    for i in $(seq "$N"); do
        for attempt in $(seq $ATTEMPTS); do
            wait_http "http://127.0.0.1:${ports[i]}/health" 20 "replica-$i" && break
            if ! alive "replica-$i" && port_taken "$RUN/replica-$i/"*.log && [ "$attempt" -lt $ATTEMPTS ]; then
                ports[i]=$(free_port)
                REPLICA_PORTS="${ports[*]}"
                save_state
                start_replica "$i" "${ports[i]}"
                continue
            fi
            tail_log "$RUN/replica-$i/stderr.log"
            up_fail "replica-$i (port ${ports[i]}) did not answer /health" "$RUN/replica-$i/mcp-sandboxd.log"
        done
        if ! curl -fsS "http://127.0.0.1:${ports[i]}/health" | grep -q '"status":"ok"'; then
            echo "cluster: warning: replica-$i is degraded: $(curl -fsS "http://127.0.0.1:${ports[i]}/health")" >&2
        fi
    done

    # nginx: the template rendered into the run dir, tested, then started.
    local ngx=$RUN/nginx servers=""
    mkdir -p "$ngx/tmp"
    for port in $REPLICA_PORTS; do
        servers="$servers        server 127.0.0.1:$port max_fails=1 fail_timeout=5s;\n"
    done
    for attempt in $(seq $ATTEMPTS); do
        if [ -n "${CLUSTER_PORT:-}" ]; then
            port_busy "$CLUSTER_PORT" && up_fail "CLUSTER_PORT $CLUSTER_PORT is already in use"
            NGINX_PORT=$CLUSTER_PORT
        else
            NGINX_PORT=$(free_port)
        fi
        save_state
        sed -e "s#@PREFIX@#$ngx#g" -e "s#@LISTEN@#127.0.0.1:$NGINX_PORT#g" \
            -e "s#^@SERVERS@\$#${servers%\\n}#" "$TEMPLATE" >"$ngx/nginx.conf"
        ! grep -n '@[A-Z]*@' "$ngx/nginx.conf" >&2 || up_fail "placeholders left in $ngx/nginx.conf"
        : >"$ngx/error.log"
        nginx -t -q -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/error.log" ||
            up_fail "nginx -t failed on $ngx/nginx.conf" "$ngx/error.log"
        start_daemon nginx "$ngx/error.log" nginx -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/error.log"
        wait_http "http://127.0.0.1:$NGINX_PORT/health" 10 nginx && break
        if ! alive nginx && [ -z "${CLUSTER_PORT:-}" ] && port_taken "$ngx/error.log" && [ "$attempt" -lt $ATTEMPTS ]; then
            continue
        fi
        up_fail "nginx did not answer on port $NGINX_PORT" "$ngx/error.log"
    done

    echo "cluster: up ($N replicas behind nginx) in $RUN"
    echo "  MCP URL    http://127.0.0.1:$NGINX_PORT/mcp"
    echo "  Redis URL  redis://127.0.0.1:$REDIS_PORT"
    echo "  nginx      pid $(pid_of nginx)  $ngx/nginx.conf, $ngx/access.log"
    i=0
    for port in $REPLICA_PORTS; do
        i=$((i + 1))
        echo "  replica-$i  pid $(pid_of "replica-$i")  http://127.0.0.1:$port  $RUN/replica-$i/mcp-sandboxd.log"
    done
    echo "  redis      pid $(pid_of redis)  $RUN/redis/redis.log"
    echo "stop with: $0 down"
}

# --- status ----------------------------------------------------------------

# One line per replica: status and sessions from /health (public), running
# executions and the Redis state from /metrics (with the token when
# CLUSTER_ARGS sets one: /health shows no details without it).
health_summary() {
    local h m tok st se ru en up rd
    local auth=()
    h=$(curl -fsS --max-time 2 "$1/health" 2>/dev/null) || { echo "health: no answer"; return; }
    tok=$(sed -nE 's/.*--token[ =]([^ ]+).*/\1/p' <<<"${CLUSTER_ARGS:-}")
    [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
    m=$(curl -fsS --max-time 2 "${auth[@]}" "$1/metrics" 2>/dev/null)
    st=$(echo "$h" | grep -o '"status":"[a-z]*"' | head -1 | cut -d'"' -f4)
    se=$(echo "$h" | grep -o '"sessions":[0-9]*' | head -1 | cut -d: -f2)
    ru=$(sed -nE 's/^mcp_sandboxd_executions_running ([0-9]+).*/\1/p' <<<"$m")
    en=$(sed -nE 's/^mcp_sandboxd_redis_enabled ([0-9]+).*/\1/p' <<<"$m")
    up=$(sed -nE 's/^mcp_sandboxd_redis_up ([0-9]+).*/\1/p' <<<"$m")
    rd=""
    [ "$en" = 0 ] && rd=disabled
    [ "$en" = 1 ] && { [ "$up" = 1 ] && rd=connected || rd=disconnected; }
    echo "health: ${st:-?}, sessions ${se:-?}, running ${ru:-?}, redis ${rd:-?}"
}

do_status() {
    load_state
    if [ "$N" -eq 0 ]; then
        echo "cluster: down (no cluster in $RUN)"
        return 3
    fi
    count_alive
    local state=down
    [ "$UP" -eq "$TOTAL" ] && state=up
    [ "$UP" -gt 0 ] && [ "$UP" -lt "$TOTAL" ] && state="partly up ($UP of $TOTAL parts)"
    echo "cluster: $state in $RUN"
    local word i=0 port
    word=down; alive redis && word=up
    printf '  %-10s %-4s pid %-7s redis://127.0.0.1:%s\n' redis "$word" "$(pid_of redis)" "$REDIS_PORT"
    for port in $REPLICA_PORTS; do
        i=$((i + 1))
        word=down; alive "replica-$i" && word=up
        printf '  %-10s %-4s pid %-7s http://127.0.0.1:%s  %s\n' "replica-$i" "$word" "$(pid_of "replica-$i")" "$port" \
            "$([ $word = up ] && health_summary "http://127.0.0.1:$port")"
    done
    word=down; alive nginx && word=up
    printf '  %-10s %-4s pid %-7s http://127.0.0.1:%s/mcp\n' nginx "$word" "$(pid_of nginx)" "$NGINX_PORT"
    [ "$UP" -eq "$TOTAL" ] && return 0
    [ "$UP" -gt 0 ] && return 1
    return 3
}

# --- down ------------------------------------------------------------------

do_down() {
    load_state
    if [ "$N" -eq 0 ] && [ ! -d "$RUN/pids" ]; then
        echo "cluster: not running (no cluster in $RUN)"
        return 0
    fi
    local replicas=() i
    for i in $(seq "$N"); do replicas+=("replica-$i"); done
    # nginx and the replicas together (the replicas cancel their runs and
    # flush the mirror within --shutdown-grace, 10 s), then Redis.
    stop_daemons 20 nginx "${replicas[@]+"${replicas[@]}"}"
    stop_daemons 5 redis
    rm -rf "$RUN/pids" "$STATE"
    echo "cluster: down (logs kept in $RUN)"
}

case ${1:-} in
up)
    n=${2:-3}
    given=${2:-}
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 64 ]; then
        die "N must be a number from 1 to 64 (got '$n')"
    fi
    do_up "$n" "$given"
    ;;
status) do_status ;;
down) do_down ;;
*) usage ;;
esac
