#!/usr/bin/env bash
# Runs cmocka unit-test binaries (the arguments, or every build/unit/test_*),
# prints their output and ends with one line "unit: N passed, N failed".
# Exits non-zero when anything failed.
#
# Counting, per binary:
#   passed  the N of "[  PASSED  ] N test(s)."
#   failed  the N of " N FAILED TEST(S)" (failures plus errors such as a failed
#           setup), else of "[  FAILED  ] N test(s), listed below:"
# A binary that never printed "[==========] N test(s) run." crashed (a
# sanitizer abort, a signal): its "[       OK ]" tests count as passed and the
# rest of the "Running N test(s)" it announced (at least one) as failed. A
# binary that finished with all tests passed but exited non-zero (say,
# LeakSanitizer at exit) counts one failure.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -eq 0 ]; then
    set -- build/unit/test_*
    [ -e "$1" ] || { echo "unit: no test binaries under build/unit (run make unit)"; echo "unit: 0 passed, 1 failed"; exit 1; }
fi

# cmocka's default output; abort on the first sanitizer report
export CMOCKA_MESSAGE_OUTPUT=STDOUT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# num PATTERN FILE: the first number on the last line matching PATTERN
num() { grep -E "$1" "$2" | tail -1 | grep -oE '[0-9]+' | head -1; }

total_passed=0
total_failed=0
for t in "$@"; do
    if [ ! -x "$t" ]; then
        echo "!! $t: not an executable"
        total_failed=$((total_failed + 1))
        continue
    fi
    out=$(mktemp)
    "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    p=$(num '^\[  PASSED  \] [0-9]+ test' "$out")
    f=$(num '^ [0-9]+ FAILED TEST' "$out")
    [ -n "$f" ] || f=$(num '^\[  FAILED  \] [0-9]+ test\(s\), listed below' "$out")
    p=${p:-0}
    f=${f:-0}
    if ! grep -qE '^\[==========\] [0-9]+ test\(s\) run\.' "$out"; then
        announced=$(num '^\[==========\] Running [0-9]+ test' "$out")
        p=$(grep -cE '^\[       OK \]' "$out")
        f=$((${announced:-0} - p))
        [ "$f" -ge 1 ] || f=1
        echo "!! $t did not finish (exit status $rc): $p passed before it stopped, $f counted as failed"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "!! $t exited with status $rc after its tests passed (sanitizer report at exit?)"
    fi
    echo "-- $t: $p passed, $f failed"
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    rm -f "$out"
done
echo "unit: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
