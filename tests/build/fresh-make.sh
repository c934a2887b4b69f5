#!/usr/bin/env bash
# The first `make` on a machine without the project's packages must work.
#
# Copies the tracked tree into a temp dir and builds it there with two stubs:
#  - scripts/deps.sh only marks "installed" (it does not touch apt);
#  - a pkg-config first on PATH that answers like a machine without the -dev
#    packages (no output, exit 1) until that mark exists, then hands over to
#    the real pkg-config.
# A Makefile that asks pkg-config before deps.sh has run gets empty flags and
# the build stops at `hiredis.h: No such file` (0.4.0's bug); a correct one
# builds. Prints "build: N passed, N failed" as its last line.
#
# usage: tests/build/fresh-make.sh [MAKEFILE]   (MAKEFILE: build the copy with
# another Makefile, e.g. an old one, to see this test fail)
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
real_pc=$(command -v pkg-config) || { echo "!! pkg-config is not installed"; echo "build: 0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tree" "$tmp/bin"

# the tracked files only: no build/, no .deps-ok, no node_modules
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$top" ls-files -z | (cd "$top" && xargs -0 cp --parents -t "$tmp/tree")
else
    tar -C "$top" --exclude=./build --exclude=./.deps-ok --exclude=node_modules -cf - . | tar -C "$tmp/tree" -xf -
fi
[ $# -ge 1 ] && cp "$1" "$tmp/tree/Makefile"

cat >"$tmp/tree/scripts/deps.sh" <<EOF
#!/bin/sh
echo "deps-stub: installing" >>"$tmp/calls"
touch "$tmp/installed"
EOF
cat >"$tmp/bin/pkg-config" <<EOF
#!/bin/sh
if [ -e "$tmp/installed" ]; then
    echo "pkg-config after deps: \$*" >>"$tmp/calls"
    exec "$real_pc" "\$@"
fi
echo "pkg-config BEFORE deps: \$*" >>"$tmp/calls"
exit 1
EOF
chmod +x "$tmp/tree/scripts/deps.sh" "$tmp/bin/pkg-config"

passed=0 failed=0
check() { # NAME CONDITION...
    local name=$1; shift
    if "$@" >/dev/null 2>&1; then echo "ok - $name"; passed=$((passed + 1)); else echo "not ok - $name"; failed=$((failed + 1)); fi
}
PATH="$tmp/bin:$PATH" make -C "$tmp/tree" -j2 mcp-sandboxd >"$tmp/make.log" 2>&1
rc=$?
[ $rc -eq 0 ] || tail -5 "$tmp/make.log"
check "the first make builds mcp-sandboxd" test $rc -eq 0
check "the binary runs" "$tmp/tree/mcp-sandboxd" --help
check "deps.sh ran exactly once" test "$(grep -c '^deps-stub' "$tmp/calls" 2>/dev/null)" = 1
check "pkg-config was never asked before deps.sh" sh -c "! grep -q 'BEFORE deps' '$tmp/calls'"
# a second make has nothing to do (the flags file is not rebuilt every time)
PATH="$tmp/bin:$PATH" make -C "$tmp/tree" -q mcp-sandboxd >/dev/null 2>&1
check "a second make is up to date" test $? -eq 0
echo "build: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
