/*
 * Fuzz target: a message popped from a control list (src/cluster/control.c),
 * which is input from Redis: anyone who can write Redis can push anything.
 *
 * The first byte picks the list (odd: the replies list, even: the control
 * list); the rest is the message. Checked on every input: it is never a
 * crash, and each message is counted exactly once: a command as dropped or
 * received (received only when every field is well-formed), a reply as
 * dropped or late (no call waits here). The mirror is off, so a received
 * command runs the real tool path (tools_control_forwarded: an unknown
 * execution) and its answer cannot be pushed.
 */
#include "../../src/cluster/control.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int is_reply = data[0] & 1;
    unsigned long long before = atomic_load(&stats.dropped) + atomic_load(&stats.received) + atomic_load(&stats.late);
    unsigned long long received = atomic_load(&stats.received);
    take_popped(is_reply, (const char *)data + 1, size - 1);
    unsigned long long after = atomic_load(&stats.dropped) + atomic_load(&stats.received) + atomic_load(&stats.late);
    CHECK(after == before + 1);
    CHECK(!is_reply || atomic_load(&stats.received) == received);
    CHECK(n_pending == 0);
    return 0;
}
