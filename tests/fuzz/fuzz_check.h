/*
 * fuzz_check: the invariant check every fuzz target uses. A failed check
 * aborts with the target's file and line, so libFuzzer keeps the input.
 */
#ifndef MCP_SANDBOXD_FUZZ_CHECK_H
#define MCP_SANDBOXD_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/** Aborts (the fuzzer records the input) when `c` is false. */
#define CHECK(c)                                                                                                      \
    do {                                                                                                              \
        if (!(c)) {                                                                                                   \
            fprintf(stderr, "%s: invariant failed at line %d: %s\n", __FILE__, __LINE__, #c);                        \
            abort();                                                                                                  \
        }                                                                                                             \
    } while (0)

#endif
