# Shared by the bench-*.sh scripts (sourced, not run): a private temp dir the
# sandbox user can reach, the processes we start and their cleanup, free ports.
# Usage: source "$(dirname "$0")/bench-lib.sh"; bench_init <name>

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

# Stops one process we started and forgets it.
stop_pid() {
    local p=$1 keep=() q
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    pids=("${keep[@]+"${keep[@]}"}")
}
