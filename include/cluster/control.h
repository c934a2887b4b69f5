/*
 * control: the replicas' control channel through Redis, so that send_stdin
 * and cancel_execution reach the replica that runs an execution whichever
 * replica the call arrived at.
 *
 * Each replica serves two lists: replica:{id}:control (commands other
 * replicas send it) and replica:{id}:replies (the answers to the commands it
 * sent). A control thread, with its own connection (MIRROR_CONN_CONTROL),
 * BLPOPs both (1 s at a time, so it notices a stop) and hands what it pops to
 * the loop through the mirror's message queue, at most CONTROL_INFLIGHT_MAX
 * messages (CONTROL_INFLIGHT_BYTES) not yet taken by the loop at a time.
 * Everything else runs on the loop thread: the requester keeps its waiting
 * calls by nonce with a timer; the owner checks a command, runs the tool
 * through tools_control_forwarded (the code a local call runs) and pushes the
 * answer. Pushes go through the reader thread (mirror_push), a command only
 * while the owner's heartbeat key exists, so a gone owner is said at once.
 */
#ifndef MCP_SANDBOXD_CONTROL_H
#define MCP_SANDBOXD_CONTROL_H

#include "core/util.h"
#include "mcp/remote.h"

#include <stddef.h>

/** How long a forwarded call waits for the owner's answer. */
#define CONTROL_TIMEOUT_MS 5000
/** Forwarded calls waiting for an answer at once, at most (more: -2, "too many"). */
#define CONTROL_PENDING_MAX 256
/** Of them, one tenant's at most (more: -4), so one tenant cannot take every slot. */
#define CONTROL_PENDING_PER_TENANT 64
/** The largest control message (command or reply) sent or taken; a larger one popped is dropped. */
#define CONTROL_MESSAGE_MAX (1u << 20)
/** Popped messages handed to the loop and not taken yet, at most (the control thread waits to pop more). */
#define CONTROL_INFLIGHT_MAX 16
/** Their bytes, at most (room for one CONTROL_MESSAGE_MAX is needed to pop). */
#define CONTROL_INFLIGHT_BYTES (4u * CONTROL_MESSAGE_MAX)

/** The control thread's body (cluster_start starts it). */
void *control_main(void *arg);
/** Any thread: asks the control thread to stop (it returns within its 1 s BLPOP); popped messages are no longer taken. */
void control_signal_stop(void);
/**
 * Loop thread: forwards a control tool call to `replica` (remote_reader_t's
 * control: see mcp/remote.h for the arguments and return values).
 */
int control_forward(const char *replica, const char *tool, const char *tenant, const char *args_json, remote_control_cb cb,
                    void *arg);
/** Loop thread: a message the control thread popped (`is_reply`: from the replies list); dropped once stopping. */
void control_on_popped(int is_reply, const char *msg, size_t len);
/** Loop thread, at shutdown after the control thread stopped: answers the calls still waiting. */
void control_stop(void);
/** Appends the control channel's metrics (Prometheus text) to `out`. */
void control_metrics(strbuf_t *out);

#endif
