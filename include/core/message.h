/*
 * message: taking h2o multithread messages (what worker threads post to the
 * loop) off a receiver's list, one at a time. Header only.
 */
#ifndef MCP_SANDBOXD_MESSAGE_H
#define MCP_SANDBOXD_MESSAGE_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

/** The first message of `messages`, unlinked; NULL when the list is empty. */
static inline h2o_multithread_message_t *message_pop(h2o_linklist_t *messages)
{
    if (h2o_linklist_is_empty(messages))
        return NULL;
    h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
    h2o_linklist_unlink(&m->link);
    return m;
}

/** Walks `messages`, each one unlinked before the body runs (the body may free it). */
#define MESSAGE_FOREACH(msg, messages) for (h2o_multithread_message_t * msg; (msg = message_pop(messages)) != NULL;)

#endif
