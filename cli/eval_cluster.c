/*
 * `scuttlebutt eval`'s cluster: real nodes on 127.0.0.1 in this process,
 * started and stopped in slots, their callbacks, convergence, and the
 * watch a measurement arms and the callbacks fill in (eval.h). Used by
 * the scenarios of eval.c and the load scenario of eval_load.c.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval.h"
#include "scuttlebutt.h"

uint64_t eval_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t eval_next_rand(eval_cluster *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return c->rng;
}

/* Records node `self`'s sight of the watched event. Lock held. */
static void eval_arrive(eval_cluster *c, const eval_node *self)
{
    eval_watch *w = &c->w;
    if (w->arrival[self->index] >= 0)
        return;
    w->arrival[self->index] = (double)(eval_now_ns() - w->t0) / 1e6;
    if (--w->remaining == 0)
        pthread_cond_signal(&w->done);
}

/* The node with this address and generation eval_runs (lock held). */
static bool eval_runs(eval_cluster *c, const char *addr, uint64_t generation)
{
    for (size_t i = 0; i < c->cap; i++)
        if (c->nodes[i].node && c->nodes[i].generation == generation &&
            strcmp(c->nodes[i].addr, addr) == 0)
            return true;
    return false;
}

static eval_cluster *the_cluster; /* the callbacks' way back */

static void eval_on_event(void *userdata, const sb_event *ev)
{
    eval_node *self = userdata;
    eval_cluster *c = the_cluster;
    eval_watch *w = &c->w;
    pthread_mutex_lock(&w->lock);
    if (ev->type == SB_EVENT_LEAVE && ev->status == SB_STATUS_DOWN &&
        eval_runs(c, ev->addr, ev->generation))
        w->false_downs++;
    if (w->type == ev->type && strcmp(ev->addr, w->target) == 0 &&
        (ev->type != SB_EVENT_LEAVE || ev->status == w->status) &&
        (ev->type != SB_EVENT_UPDATE ||
         (strcmp(ev->key, "eval") == 0 && strcmp(ev->value, w->value) == 0)))
        eval_arrive(c, self);
    if (c->tap && ev->type == SB_EVENT_UPDATE)
        c->tap(c->tap_arg, self, ev);
    pthread_mutex_unlock(&w->lock);
}

size_t eval_running(const eval_cluster *c)
{
    size_t k = 0;
    for (size_t i = 0; i < c->cap; i++)
        k += c->nodes[i].node != NULL;
    return k;
}

/* (eval.h) */
eval_node *eval_pick(eval_cluster *c, const eval_node *not)
{
    for (;;) {
        eval_node *e = &c->nodes[eval_next_rand(c) % c->cap];
        if (e->node && e != not)
            return e;
    }
}

static void eval_arm_locked(eval_cluster *c, sb_event_type type, sb_status status,
                            const eval_node *subject, const char *value);

/* (eval.h) The watch is armed for the join before any callback can run:
 * they wait for the watch's lock. */
eval_node *eval_start_node(eval_cluster *c, bool watch_join)
{
    eval_node *slot = NULL;
    for (size_t i = 0; i < c->cap && !slot; i++)
        if (!c->nodes[i].node)
            slot = &c->nodes[i];
    const char *seeds[3];
    size_t nseeds = 0, live = eval_running(c);
    for (size_t i = 0; i < 3 && i < live; i++)
        seeds[nseeds++] = eval_pick(c, NULL)->addr;
    const eval_options *o = c->opt;
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.seeds = seeds;
    cfg.nseeds = nseeds;
    cfg.interval_ms = o->interval_ms;
    cfg.push_fanout = o->fanout;
    cfg.monitors = o->monitors;
    cfg.max_message_size = o->max_message;
    cfg.bandwidth = o->bandwidth;
    cfg.phi_threshold = o->threshold;
    cfg.wire = o->wire;
    if (o->sealed) {
        cfg.keys = o->key;
        cfg.nkeys = 1;
    }
    cfg.on_join = cfg.on_leave = cfg.on_update = eval_on_event;
    cfg.userdata = slot;
    cfg.log = sb_log_stderr;
    cfg.log_level = SB_LOG_ERROR; /* not a warning per node for plaintext */
    pthread_mutex_lock(&c->w.lock);
    sb_node *node;
    int rc = sb_node_new(&cfg, &node);
    if (rc != SB_OK) {
        fprintf(stderr, "scuttlebutt eval: sb_node_new: %s\n",
                sb_strerror(rc));
        exit(1);
    }
    sb_member *m;
    size_t n;
    slot->generation = 0;
    if (sb_node_members(node, &m, &n) == SB_OK) {
        for (size_t i = 0; i < n; i++)
            if (m[i].self)
                slot->generation = m[i].generation;
        sb_free(m);
    }
    slot->node = node;
    snprintf(slot->addr, sizeof(slot->addr), "%s", sb_node_addr(node));
    if (watch_join)
        eval_arm_locked(c, SB_EVENT_JOIN, 0, slot, NULL);
    pthread_mutex_unlock(&c->w.lock);
    return slot;
}

void eval_stop_node(eval_cluster *c, eval_node *e)
{
    pthread_mutex_lock(&c->w.lock);
    sb_node *node = e->node;
    e->node = NULL;
    pthread_mutex_unlock(&c->w.lock);
    sb_node_free(node);
}

/* Whether node i holds live exactly the running nodes, each at the
 * generation it runs: a count alone could match while a dead node is
 * held live and a running one is not. Sets *ok to false if the node
 * could not be read. */
static bool eval_sees_all(eval_cluster *c, size_t i, bool *ok)
{
    sb_member *m;
    size_t n;
    if (sb_node_live(c->nodes[i].node, &m, &n) != SB_OK) {
        *ok = false;
        return false;
    }
    bool all = n == eval_running(c);
    pthread_mutex_lock(&c->w.lock);
    for (size_t k = 0; k < n && all; k++)
        all = eval_runs(c, m[k].addr, m[k].generation);
    pthread_mutex_unlock(&c->w.lock);
    sb_free(m);
    return all;
}

bool eval_converge(eval_cluster *c)
{
    uint64_t end = eval_now_ns() + EVAL_WAIT_NS;
    while (eval_now_ns() < end) {
        bool all = true, ok = true;
        for (size_t i = 0; i < c->cap && all; i++)
            if (c->nodes[i].node)
                all = eval_sees_all(c, i, &ok);
        if (!ok)
            return false;
        if (all)
            return true;
        struct timespec ts = { 0, 20 * 1000000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Arms the watch: every running node but `subject` must report. Lock
 * held. */
static void eval_arm_locked(eval_cluster *c, sb_event_type type, sb_status status,
                            const eval_node *subject, const char *value)
{
    eval_watch *w = &c->w;
    w->type = type;
    w->status = status;
    snprintf(w->target, sizeof(w->target), "%s", subject->addr);
    snprintf(w->value, sizeof(w->value), "%s", value ? value : "");
    w->remaining = 0;
    for (size_t i = 0; i < c->cap; i++) {
        bool counts = c->nodes[i].node && &c->nodes[i] != subject;
        w->arrival[i] = counts ? -1 : 0;
        w->remaining += counts;
    }
    w->t0 = eval_now_ns();
}

void eval_arm(eval_cluster *c, sb_event_type type, sb_status status,
                     const eval_node *subject, const char *value)
{
    pthread_mutex_lock(&c->w.lock);
    eval_arm_locked(c, type, status, subject, value);
    pthread_mutex_unlock(&c->w.lock);
}

void eval_cluster_open(eval_cluster *c, const eval_options *o,
                       uint32_t nodes, uint32_t spare)
{
    *c = (eval_cluster){ .cap = nodes + spare, .opt = o };
    c->rng = o->seed * 2654435761u + nodes;
    if (!c->rng)
        c->rng = 1;
    c->nodes = calloc(c->cap, sizeof(eval_node));
    c->w.arrival = calloc(c->cap, sizeof(double));
    if (!c->nodes || !c->w.arrival) {
        perror("scuttlebutt eval");
        exit(1);
    }
    for (size_t i = 0; i < c->cap; i++)
        c->nodes[i].index = (int)i;
    pthread_mutex_init(&c->w.lock, NULL);
    pthread_cond_init(&c->w.done, NULL);
    the_cluster = c;
}

void eval_cluster_close(eval_cluster *c)
{
    for (size_t i = 0; i < c->cap; i++)
        if (c->nodes[i].node)
            eval_stop_node(c, &c->nodes[i]);
    free(c->nodes);
    free(c->w.arrival);
    pthread_mutex_destroy(&c->w.lock);
    pthread_cond_destroy(&c->w.done);
}
