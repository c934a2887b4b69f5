#!/usr/bin/env bash
# Runs the libFuzzer targets built under build/fuzz (make fuzz-build).
#
#   scripts/fuzz.sh run SECONDS [target...]    fuzz each target for SECONDS
#   scripts/fuzz.sh smoke SECONDS [target...]  replay the checked-in corpus,
#                                              then fuzz each for SECONDS
#
# Seeds are read from tests/fuzz/corpus/<target> (never written); new inputs
# go to build/fuzz/corpus/<target> (run; kept between runs) or to a scratch
# build/fuzz/smoke-corpus/<target> (smoke), crashes to build/fuzz/artifacts/<target>/.
# Each target takes one core (-jobs=1 -workers=1 is libFuzzer's default of
# one process). Prints "-- <target>: ok" or "!! <target>: FAILED" per target
# and ends with one line "fuzz: N passed, N failed" (one count per target).
set -uo pipefail

# one function, parsed whole before it runs: editing this file during a long run is safe
main() {
    cd "$(dirname "$0")/.."

    mode=${1:-smoke}
    seconds=${2:-10}
    shift 2 2>/dev/null || shift $#
    targets=("$@")
    if [ ${#targets[@]} -eq 0 ]; then
        for t in tests/fuzz/fuzz_*.c; do
            t=$(basename "$t" .c)
            targets+=("${t#fuzz_}")
        done
    fi

    # -max_len per target: a whole HTTP request, a tool's arguments, argv, a URL, an op list
    max_len() {
        case $1 in
        mcp_request) echo 16384 ;;
        tool_args) echo 8192 ;;
        config) echo 2048 ;;
        redis_url) echo 1100 ;;
        events) echo 8192 ;;
        *) echo 4096 ;;
        esac
    }

    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

    passed=0
    failed=0
    for t in "${targets[@]}"; do
        bin=build/fuzz/fuzz_$t
        seeds=tests/fuzz/corpus/$t
        work=build/fuzz/corpus/$t
        if [ "$mode" = smoke ]; then # a fresh scratch corpus: the smoke starts from the checked-in seeds only
            work=build/fuzz/smoke-corpus/$t
            rm -rf "$work"
        fi
        art=build/fuzz/artifacts/$t/
        mkdir -p "$work" "$art" "$seeds"
        dict=()
        [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
        if [ ! -x "$bin" ]; then
            echo "!! $t: $bin not built (make fuzz-build)"
            failed=$((failed + 1))
            continue
        fi
        log=build/fuzz/$t.$mode.log
        ok=1
        start=$(date +%s)
        if [ "$mode" = smoke ]; then
            # every seed and regression input once (libFuzzer runs files given as arguments)
            files=("$seeds"/*)
            if [ -e "${files[0]}" ]; then
                "$bin" -runs=1 "${files[@]}" >"$log" 2>&1 || ok=0
            fi
        fi
        if [ $ok -eq 1 ]; then
            "$bin" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=25 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$art" "${dict[@]}" "$work" "$seeds" >>"$log" 2>&1 || ok=0
        fi
        secs=$(($(date +%s) - start))
        stats=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -1 | sed -E 's/^#([0-9]+)\s+\S+\s+/\1 runs, /')
        if [ $ok -eq 1 ]; then
            echo "-- $t: ok in ${secs}s ($stats)"
            passed=$((passed + 1))
        else
            echo "!! $t: FAILED after ${secs}s; log $log, inputs in $art"
            grep -E 'ERROR: |SUMMARY: |invariant failed|runtime error|Test unit written' "$log" | head -20
            failed=$((failed + 1))
        fi
    done
    echo "fuzz: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

main "$@"
exit $?
