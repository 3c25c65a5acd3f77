/*
 * What `scuttlebutt eval` (eval.c) shares with its load scenario
 * (eval_load.c): the options, and the cluster of real nodes it starts in
 * this process.
 */
#ifndef SB_CLI_EVAL_H
#define SB_CLI_EVAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "load_plan.h"
#include "scuttlebutt.h"

#define EVAL_MAX_SIZES 16

typedef struct eval_options {
    uint32_t sizes[EVAL_MAX_SIZES];
    size_t nsizes;
    uint32_t trials, interval_ms, fanout, max_message, window_s, monitors;
    uint32_t bandwidth;        /* each node's cap; 0: the library's */
    double threshold;
    uint64_t seed;
    bool sealed;
    uint8_t key[SB_KEY_SIZE];  /* the cluster's, when sealed */
    sb_wire wire;
    const char *json, *csv, *plot;
    load_plan load;            /* --load: the rates, keys, values, period */
} eval_options;

typedef struct eval_node {
    sb_node *node;
    char addr[64];
    uint64_t generation;
    int index;
} eval_node;

/* What the trial at hand waits for; the nodes' callbacks fill it in. */
typedef struct eval_watch {
    pthread_mutex_t lock;
    pthread_cond_t done;
    sb_event_type type;        /* 0: nothing watched */
    sb_status status;          /* for LEAVE */
    char target[64];
    char value[32];            /* for UPDATE */
    uint64_t t0;
    double *arrival;           /* per node index: ms, or < 0 */
    size_t remaining;
    uint64_t false_downs;
} eval_watch;

typedef struct eval_cluster {
    eval_node *nodes;          /* slots; node == NULL when free */
    size_t cap;
    const eval_options *opt;
    eval_watch w;
    uint64_t rng;
    /* optional: sees every UPDATE any node reports, with w.lock held */
    void (*tap)(void *arg, const eval_node *self, const sb_event *ev);
    void *tap_arg;
} eval_cluster;

/* How long one measurement waits before it gives up. */
#define EVAL_WAIT_NS (60ull * 1000000000ull)

/* ---- the cluster (eval_cluster.c) ---- */

uint64_t eval_now_ns(void);

/* Room for `nodes` nodes and `spare` more, none started; the callbacks'
 * cluster from now on. Exits on an allocation failure. */
void eval_cluster_open(eval_cluster *c, const eval_options *o,
                       uint32_t nodes, uint32_t spare);
/* Stops every node and frees the room. */
void eval_cluster_close(eval_cluster *c);

/* Starts a node in a free slot, seeded by up to three running nodes (with
 * `watch_join`, the watch armed for its join). Exits if it cannot. */
eval_node *eval_start_node(eval_cluster *c, bool watch_join);
/* Waits until every running node sees every running node live, at most a
 * minute. */
bool eval_converge(eval_cluster *c);
/* Stops node e (its slot is free again). */
void eval_stop_node(eval_cluster *c, eval_node *e);
/* How many nodes run. */
size_t eval_running(const eval_cluster *c);
/* A random running node other than `not` (NULL: any). */
eval_node *eval_pick(eval_cluster *c, const eval_node *not);
/* Arms the watch for an event about `subject` (for an UPDATE, of key
 * "eval" to `value`; for a LEAVE, with `status`): every other running
 * node must report it. */
void eval_arm(eval_cluster *c, sb_event_type type, sb_status status,
              const eval_node *subject, const char *value);

/* "config":{...}, the options as JSON, for --json: "bandwidth" the cap
 * in effect, bytes a second ("bandwidth_default": none was asked for, so
 * the library's, SB_BANDWIDTH_DEFAULT). */
void eval_json_config(FILE *f, const eval_options *o);
/* The bandwidth cap asked for, as text for a header. */
void eval_cap_text(const eval_options *o, char *out, size_t cap);

/* The load scenario: `eval --load` (eval_load.c). Its exit status. */
int eval_load_main(const eval_options *o);

#endif /* SB_CLI_EVAL_H */
