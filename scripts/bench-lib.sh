# Shared by the bench-*.sh scripts (sourced, not run): a private temp dir the
# sandbox user can reach, the processes we start and their cleanup, free ports.
# Usage: source "$(dirname "$0")/bench-lib.sh"; bench_init <name>

# Checks that every command named is installed and builds $BIN if it is
# missing. Usage: bench_require node curl ...
bench_require() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || { echo "$c is not installed (make deps installs it)" >&2; exit 1; }
    done
    [ -x "$BIN" ] || make -C "$ROOT" mcp-sandboxd
}

# Creates $tmp, sets up $pids and the EXIT/INT/TERM traps.
bench_init() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-$1.XXXXXX")
    chmod 711 "$tmp" # the sandbox user must reach the workspace root below it
    pids=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# Stops every process we started and removes $tmp.
bench_cleanup() {
    local p
    for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]+"${pids[@]}"}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    if command -v node >/dev/null; then
        node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
    else
        python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
    fi
}

# Starts BIN on 127.0.0.1:PORT with the workspace root under $tmp, its log in
# $tmp/sandboxd.log and the extra flags given; sets $spid and $base and waits
# for /health. Usage: start_sandboxd BIN PORT [FLAG...]
start_sandboxd() {
    local bin=$1 port=$2
    shift 2
    base="http://127.0.0.1:$port"
    "$bin" --host 127.0.0.1 --port "$port" --log-level warn --workspace-root "$tmp/ws" "$@" >"$tmp/sandboxd.log" 2>&1 &
    spid=$!
    pids+=("$spid")
    for _ in $(seq 1 300); do
        kill -0 "$spid" 2>/dev/null || { echo "server exited during startup:"; tail -20 "$tmp/sandboxd.log"; exit 1; }
        curl -fsS --max-time 2 "$base/health" 2>/dev/null | grep -q '"status":"ok"' && return 0
        sleep 0.05
    done
}

# Stops one process we started and forgets it.
stop_pid() {
    local p=$1 keep=() q
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    pids=("${keep[@]+"${keep[@]}"}")
}

# Resource figures of process $1 and its descendants, one line:
#   rss_kib fds threads children zombies
# rss/fds/threads are the process's own (VmRSS, /proc/PID/fd, Threads);
# children counts every descendant (sandbox bwraps, their inits and commands),
# zombies the descendants (or the process itself) in state Z.
proc_stats() {
    local pid=$1 rss thr fds
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    thr=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    ps -e -o pid=,ppid=,stat= | awk -v root="$pid" -v rss="${rss:--}" -v thr="${thr:--}" -v fds="$fds" '
        { ppid[$1] = $2; st[$1] = $3 }
        END {
            n = 0; z = (substr(st[root], 1, 1) == "Z")
            for (p in ppid) {
                q = ppid[p]; depth = 0
                while (q != "" && q != root && q > 1 && depth++ < 64) q = ppid[q]
                if (q == root && p != root) { n++; if (substr(st[p], 1, 1) == "Z") z++ }
            }
            print rss, fds, thr, n, z
        }'
}

# Descendants of $1, one "pid stat command" a line (to show what is left over).
proc_descendants() {
    ps -e -o pid=,ppid=,stat=,args= | awk -v root="$1" '
        { pid = $1; ppid[pid] = $2; rest = $0; sub(/^ *[0-9]+ +[0-9]+ +/, "", rest); desc[pid] = rest }
        END {
            for (p in ppid) {
                q = ppid[p]; depth = 0
                while (q != "" && q != root && q > 1 && depth++ < 64) q = ppid[q]
                if (q == root && p != root) print p, desc[p]
            }
        }'
}
