/*
 * Where callbacks run. The engine's events are copied into a queue as it
 * reports them (sb_callbacks_queue(), its on_event callback, with the
 * lock held); sb_callbacks_dispatch() takes the queue under the lock and
 * runs the user's on_join, on_leave, on_update and on_delete without it,
 * on the node's thread or inside sb_node_process().
 *
 * Every callback of a node (events here, seeds in seed_resolve.c, log in
 * log.c) runs between sb_callbacks_begin() and sb_callbacks_end(), which
 * mark the thread as inside it: such a thread may call the API, but may
 * not free or stop its node (sb_callbacks_inside()).
 *
 * Locking: the queue's fields are (L); the mark is thread-local.
 */
#define _GNU_SOURCE
#include "node.h"

#include <stdlib.h>
#include <string.h>

/* The node whose callback this thread is running, if any: a callback may
 * call the API, but may not free its node (sb_node_free() says
 * SB_ESTATE), whatever the callback (log, seeds, events) and wherever it
 * runs (the node's thread, or the caller's inside an API call). */
static _Thread_local const sb_node *callbacks_running;

/* Marks the start of a callback of node n; returns what to restore. */
const sb_node *sb_callbacks_begin(const sb_node *n)
{
    const sb_node *outer = callbacks_running;
    callbacks_running = n;
    return outer;
}

void sb_callbacks_end(const sb_node *outer)
{
    callbacks_running = outer;
}

/* Whether the calling thread is inside a callback of any node. */
bool sb_callbacks_any(void)
{
    return callbacks_running != NULL;
}

/* Whether the calling thread is inside one of this node's callbacks, or
 * inside its sb_node_process(), where events are handed out. */
bool sb_callbacks_inside(sb_node *n)
{
    if (callbacks_running == n)
        return true;
    pthread_mutex_lock(&n->lock);
    bool inside = n->processing && pthread_equal(n->processor, pthread_self());
    pthread_mutex_unlock(&n->lock);
    return inside;
}

/* Copies an event into the queue: addr, key and value, each followed by
 * a NUL byte, in one allocation. */
void sb_callbacks_queue(void *userdata, const sb_event *ev)
{
    sb_node *n = userdata;
    if (n->nevents == n->events_cap) {
        size_t cap = n->events_cap ? 2 * n->events_cap : 16;
        queued *q = realloc(n->events, cap * sizeof(*q));
        if (!q) {
            n->events_lost++;
            return;
        }
        n->events = q;
        n->events_cap = cap;
    }
    size_t alen = strlen(ev->addr);
    char *blob = malloc(alen + ev->key_len + ev->value_len + 3);
    if (!blob) {
        n->events_lost++;
        return;
    }
    queued *q = &n->events[n->nevents++];
    q->ev = *ev;
    q->blob = blob;
    memcpy(blob, ev->addr, alen + 1);
    q->ev.addr = blob;
    char *key = blob + alen + 1;
    if (ev->key_len)
        memcpy(key, ev->key, ev->key_len);
    key[ev->key_len] = '\0';
    char *value = key + ev->key_len + 1;
    if (ev->value_len)
        memcpy(value, ev->value, ev->value_len);
    value[ev->value_len] = '\0';
    q->ev.key = ev->key ? key : NULL;
    q->ev.value = ev->value ? value : NULL;
}

/* Whether the node was stopped: the events still queued are dropped. */
static bool callbacks_stopped(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    bool stopped = n->stopped;
    pthread_mutex_unlock(&n->lock);
    return stopped;
}

/* Runs the callbacks of the queued events, without the lock; once the
 * node is stopped, none more (sb_node_stop(): no more callbacks). */
void sb_callbacks_dispatch(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    queued *events = n->events;
    size_t count = n->nevents;
    uint64_t lost = n->events_lost;
    n->events = NULL;
    n->nevents = n->events_cap = 0;
    n->events_lost = 0;
    pthread_mutex_unlock(&n->lock);

    if (lost)
        sb_log_say(&n->cfg, n, SB_LOG_ERROR,
                   "out of memory: %llu events lost", (unsigned long long)lost);
    const sb_config *c = &n->cfg;
    bool stopped = false;
    for (size_t i = 0; i < count; i++) {
        stopped = stopped || callbacks_stopped(n);
        if (stopped) {
            free(events[i].blob);
            continue;
        }
        sb_event *ev = &events[i].ev;
        ev->node = n;
        sb_event_fn fn = NULL;
        switch (ev->type) {
        case SB_EVENT_JOIN:
            fn = c->on_join;
            sb_log_say(c, n, SB_LOG_INFO, "%s joined", ev->addr);
            break;
        case SB_EVENT_LEAVE:
            fn = c->on_leave;
            sb_log_say(c, n, SB_LOG_INFO, "%s %s", ev->addr,
                       ev->status == SB_STATUS_LEFT ? "left" : "is down");
            break;
        case SB_EVENT_UPDATE:
            fn = c->on_update;
            break;
        case SB_EVENT_DELETE:
            fn = c->on_delete;
            break;
        }
        if (fn) {
            const sb_node *outer = sb_callbacks_begin(n);
            fn(c->userdata, ev);
            sb_callbacks_end(outer);
        }
        free(events[i].blob);
    }
    free(events);
}
