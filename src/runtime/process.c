/*
 * One step of a node, and the embedded mode built on it: the caller's
 * event loop waits for sb_node_fd() to be readable, at most
 * sb_node_timeout_ms(), then calls sb_node_process(); the node's own
 * thread (thread.c) runs the same loop. A step reads a batch of datagrams,
 * runs the engine's timers when due, resolves seeds again if the engine
 * asked, reports send errors, and runs the callbacks.
 *
 * Locking: one thread at a time is inside a step (`processing` and
 * `processor`, (L), refuse a second one); the step takes the lock for
 * each piece of engine work and releases it before seeds are resolved,
 * errors logged and callbacks run.
 */
#define _GNU_SOURCE
#include "node.h"

#include <limits.h>

int sb_node_fd(const sb_node *n)
{
    return n ? n->fd : -1;
}

int sb_node_timeout_ms(sb_node *n)
{
    if (!n)
        return -1;
    if (!sb_lock_running(n))
        return -1;
    uint64_t now = sb_clock_now_ns();
    uint64_t due = n->unread ? now : sb_engine_next_deadline(n->engine);
    pthread_mutex_unlock(&n->lock);
    if (due <= now)
        return 0;
    uint64_t ms = (due - now + MS - 1) / MS;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int sb_process_step(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    /* stopped: no more gossip (the thread may take one more turn before
     * it sees it is to end) */
    if (n->processing || n->stopped) {
        pthread_mutex_unlock(&n->lock);
        return SB_ESTATE;
    }
    n->processing = true;
    n->processor = pthread_self();
    pthread_mutex_unlock(&n->lock);

    bool unread = sb_socket_receive(n);
    pthread_mutex_lock(&n->lock);
    n->unread = unread;
    uint64_t now = sb_clock_now_ns();
    if (now >= sb_engine_next_deadline(n->engine))
        sb_engine_tick(n->engine, now);
    pthread_mutex_unlock(&n->lock);
    sb_seed_resolve_refresh(n);
    sb_seed_resolve_report_alone(n);
    sb_socket_report_errors(n);
    sb_callbacks_dispatch(n);

    pthread_mutex_lock(&n->lock);
    n->processing = false;
    pthread_mutex_unlock(&n->lock);
    return SB_OK;
}

int sb_node_process(sb_node *n)
{
    if (!n)
        return SB_EINVAL;
    if (n->threaded || sb_callbacks_inside(n))
        return SB_ESTATE;
    return sb_process_step(n); /* SB_ESTATE once stopped */
}
