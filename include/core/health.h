/*
 * health: the registry behind /health. Modules register what they add to
 * the answer at startup: public fields (what a load balancer may see without
 * a token) or details (shown only to a request carrying the bearer token).
 * The HTTP server renders them in registration order. Loop thread only.
 */
#ifndef MCP_SANDBOXD_HEALTH_H
#define MCP_SANDBOXD_HEALTH_H

#include <cjson/cJSON.h>

/** Adds a module's fields to the /health object. */
typedef void (*health_fn)(cJSON *h);

/** Registers `fn`; `detail`: token-only (1) or public (0). Startup only; at most 16. */
void health_register(health_fn fn, int detail);
/** Adds every public field, then (with_detail) every detail, to `h`. */
void health_render(cJSON *h, int with_detail);

#endif
