/*
 * health: a fixed table of registered contributors, walked in order.
 */
#include "core/health.h"

#include <stddef.h>

#define MAX_HEALTH 16

static struct {
    health_fn fn;
    int detail;
} entries[MAX_HEALTH];
static size_t n_entries;

void health_register(health_fn fn, int detail)
{
    if (n_entries < MAX_HEALTH)
        entries[n_entries++] = (typeof(entries[0])){fn, detail};
}

void health_render(cJSON *h, int with_detail)
{
    for (int pass = 0; pass <= with_detail; pass++)
        for (size_t i = 0; i < n_entries; i++)
            if (entries[i].detail == pass)
                entries[i].fn(h);
}
