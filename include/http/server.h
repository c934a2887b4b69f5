/*
 * http: the HTTP front on h2o (evloop): the listener, routing of /mcp,
 * /health and everything else (404), bearer auth, Origin and Host checks,
 * body limits, /health and /metrics. Responses: respond.h. Loop thread only.
 */
#ifndef MCP_SANDBOXD_HTTP_H
#define MCP_SANDBOXD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

/** Binds config.host:config.port and starts serving on `loop`. 0 / -1 with err. */
int http_start(h2o_evloop_t *loop, char *err, size_t errlen);
/** Stops accepting new connections (shutdown). */
void http_stop_accepting(void);

#endif
