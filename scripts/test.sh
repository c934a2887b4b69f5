#!/usr/bin/env bash
# The whole suite: a fresh-machine build of a copy of the tree, unit tests
# (cmocka, built with ASan+UBSan), a short run of every libFuzzer target
# (tests/fuzz), then the integration tests against the release binary and
# again against the sanitizer build. Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
count() { # parses node --test's summary (# pass N / # fail N)
    local out=$1
    local p f
    p=$(grep -E '^# pass ' "$out" | tail -1 | awk '{print $3}')
    f=$(grep -E '^# fail ' "$out" | tail -1 | awk '{print $3}')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ -z "$p" ]; then failed=$((failed + 1)); fi
}

# section TITLE PREFIX CMD...: runs a part of the suite whose last line is
# "PREFIX: N passed, N failed" and adds its figures; a part that never printed
# that line counts as one failure.
section() {
    local title=$1 prefix=$2 out summary
    shift 2
    echo "== $title"
    out=$(mktemp)
    "$@" 2>&1 | tee "$out"
    summary=$(grep -E "^$prefix: [0-9]+ passed, [0-9]+ failed\$" "$out" | tail -1)
    if [ -n "$summary" ]; then
        passed=$((passed + $(echo "$summary" | awk '{print $2}')))
        failed=$((failed + $(echo "$summary" | awk '{print $4}')))
    else
        echo "!! $1 did not finish"
        failed=$((failed + 1))
    fi
    rm -f "$out"
}

# A copy of the tree built with a stub deps.sh and a pkg-config that finds
# nothing until that stub ran: the first make on a fresh machine must work.
section "fresh-machine build" build ./tests/build/fresh-make.sh
# Every build/unit/test_*, counted from cmocka's output; a binary that crashes
# or exits non-zero counts as a failure.
section "unit tests" unit ./scripts/run-unit.sh
# Each target's checked-in corpus (seeds and crash regressions) replayed, then
# FUZZ_SMOKE_SECONDS (default 10) of fuzzing; each target counts as one test.
section "fuzz smoke" fuzz ./scripts/fuzz.sh smoke "${FUZZ_SMOKE_SECONDS:-10}"

echo "== integration tests: npm dependencies"
(cd tests/integration && { [ -d node_modules/@modelcontextprotocol/sdk ] && [ -d node_modules/undici ] || npm ci --no-audit --no-fund --loglevel=error; }) || { echo "npm install failed"; failed=$((failed + 1)); }

for variant in release asan; do
    bin=./mcp-sandboxd
    [ "$variant" = asan ] && bin=./mcp-sandboxd-asan
    echo "== integration tests ($variant: $bin)"
    out=$(mktemp)
    (cd tests/integration && SANDBOXD_BIN="$PWD/../../$bin" ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        UBSAN_OPTIONS=print_stacktrace=1 node --test --test-concurrency=1 --test-reporter=tap ./*.test.mjs) >"$out" 2>&1
    grep -E '^(not ok|# (pass|fail|tests|todo))' "$out" | grep -v '# TODO'
    grep -E '^ *not ok' "$out" | grep -q -v '# TODO' && grep -E '^ *not ok' -A25 "$out" | grep -v '# TODO' | head -200
    count "$out"
    rm -f "$out"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
