/* The simulated-cluster harness of the engine, reference, simulator and
 * fuzz tests: N nodes on sb_sim, faults, waits, captures, hostile peers. */
#ifndef SB_TESTS_CLUSTER_H
#define SB_TESTS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h" /* MS, SEC */

/* Every node, as a node argument (a sender, a subject, ...). */
#define CLUSTER_ALL (-1)

/* The run's seed: SB_SEED (default 1), read once. */
uint64_t cluster_seed(void);

typedef struct cluster cluster;

/* What a node reported. */
typedef struct cluster_events {
    uint32_t joins, leaves, updates, deletes;
} cluster_events;

/* A datagram a node sent. */
typedef struct cluster_packet {
    uint32_t from;             /* the sending node */
    int to;                    /* the receiving node, or -1 (outside) */
    const char *to_addr;       /* where it was sent */
    size_t len;
    uint8_t *data;
} cluster_packet;

typedef struct cluster_packets {
    cluster_packet *p;
    size_t n, cap;
} cluster_packets;

typedef struct cluster_config {
    uint32_t nodes;            /* node i is "10.X.Y.Z:7946", X.Y.Z = i + 1 */
    uint64_t seed;             /* default cluster_seed() */
    uint32_t seeds;            /* nodes 0..seeds-1 are everyone's seeds */
    double loss;               /* the rate of packets dropped */
    uint64_t latency_ns, jitter_ns;
    uint64_t generation_base;  /* a node started at t: generation base+t+1 */
    uint64_t step_ns;          /* cluster_step(), cluster_wait(): 100 ms */
    sb_engine_config engine;   /* every node's engine: max_message_size,
                                  interval_ns, push_fanout, wire, keys,
                                  bounds, graces */
    /* optional: every event, after the harness counted it */
    void (*on_event)(void *userdata, uint32_t node, const sb_event *ev,
                     uint64_t now);
    void *userdata;
} cluster_config;

/* The simulator's defaults (3 seeds, 1 ms latency, no loss, wall clock
 * generations, engine defaults) but a 100 ms interval and SB_SEED. */
void cluster_config_init(cluster_config *cfg, uint32_t nodes);
/* SB_OK, SB_ENOMEM, or sb_engine_new()'s error for the engine config. */
int cluster_try(const cluster_config *cfg, cluster **out);
/* Aborts if the cluster cannot start. */
cluster *cluster_new(const cluster_config *cfg);
void cluster_free(cluster *c);

/* The fuzz targets' cluster: one node (generation 1, no seeds, messages
 * of CLUSTER_FUZZ_LIMIT bytes, small bounds and graces) speaking `wire`,
 * sealed with `keys` if any, holding the key "role" and the tombstone of
 * "gone" (the reference wire refuses the delete: the key then). */
#define CLUSTER_FUZZ_LIMIT 512
cluster *cluster_fuzz(const uint8_t *keys, uint32_t nkeys, sb_wire wire);
/* Feeds node i records [u16 length][bytes]... from the senders `from` in
 * turn, running the cluster `step` before each. */
void cluster_feed(cluster *c, uint32_t i, const uint8_t *records,
                  size_t size, const char *const *from, unsigned nfrom,
                  uint64_t step);

/* ---- time --------------------------------------------------------------- */

uint64_t cluster_now(const cluster *c);
void cluster_run(cluster *c, uint64_t dt);
void cluster_run_until(cluster *c, uint64_t t);
void cluster_step(cluster *c);
/* Runs the cluster a step at a time until `cond` holds, for at most
 * `limit` of simulated time; the caller checks `cond` after. */
#define cluster_wait(c, limit, cond)                                        \
    do {                                                                    \
        uint64_t cluster_end_ = cluster_now(c) + (limit);                   \
        while (!(cond) && cluster_now(c) < cluster_end_)                    \
            cluster_step(c);                                                \
    } while (0)

/* ---- nodes -------------------------------------------------------------- */

uint32_t cluster_size(const cluster *c);
sb_engine *cluster_engine(const cluster *c, uint32_t i); /* NULL: crashed */
const char *cluster_addr(const cluster *c, uint32_t i);
/* The node at `addr`, or -1. */
int cluster_node_of(const cluster *c, const char *addr);
bool cluster_running(const cluster *c, uint32_t i);
/* Starts one more node; its index, or a negative error. */
int cluster_add_node(cluster *c);
void cluster_crash(cluster *c, uint32_t i);
int cluster_restart(cluster *c, uint32_t i);
void cluster_pause(cluster *c, uint32_t i);
void cluster_resume(cluster *c, uint32_t i);
int cluster_leave(cluster *c, uint32_t i);

int cluster_set(cluster *c, uint32_t i, const char *key, const char *value);
int cluster_del(cluster *c, uint32_t i, const char *key);
int cluster_set_bytes(cluster *c, uint32_t i, const void *key,
                      size_t key_len, const void *value, size_t value_len);
int cluster_del_bytes(cluster *c, uint32_t i, const void *key,
                      size_t key_len);

/* ---- the network -------------------------------------------------------- */

void cluster_set_loss(cluster *c, double rate);
/* Node i loses `loss` of what is sent to it, and what it sends or is sent
 * takes `delay` longer (a slow node). */
void cluster_slow_node(cluster *c, uint32_t i, double loss, uint64_t delay);
/* Blocks packets between nodes of different groups, both ways. */
void cluster_partition(cluster *c, const uint32_t *group);
/* Blocks (or unblocks) packets from node `from` to node `to`. */
void cluster_block(cluster *c, uint32_t from, uint32_t to, bool blocked);
void cluster_heal(cluster *c);

/* Records every packet node `from` (CLUSTER_ALL: any node) sends from now
 * on, the first `max` of them (0: all), before loss and blocks; starts
 * again from none if called again. */
void cluster_capture(cluster *c, int from, size_t max);
void cluster_capture_stop(cluster *c);
/* What was recorded; the caller may reorder it. */
cluster_packets *cluster_captured(cluster *c);

/* Hands node i a datagram now, as if from `from` (any address): SB_OK
 * if the node took it, SB_EINVAL if it dropped it whole (a drop it
 * counted for a reason of its header, seal or format), SB_ESTATE if the
 * node is down. What the node sent meanwhile goes out as usual, and is
 * kept until the next delivery: */
int cluster_deliver(cluster *c, uint32_t i, const char *from,
                    const void *buf, size_t len);
/* Hands node i an answer (an ACK, ACK2, SWEEP or DIFF; plaintext, with
 * room for the echo at its start) from `from`: writes node i's token for
 * `from` as the echo, seals it with the cluster's first key if it has
 * keys, and delivers it (as cluster_deliver()). The hostile peer who holds
 * its address, or a test playing a member. */
int cluster_answer(cluster *c, uint32_t i, const char *from, void *buf,
                   size_t len);
const cluster_packets *cluster_replies(const cluster *c);
/* The largest packet in `p`, in bytes. */
size_t cluster_largest(const cluster_packets *p);

/* ---- what nodes know and said ------------------------------------------- */

bool cluster_converged(const cluster *c);
/* Node i holds `value` for `key` of node j (NULL: has no such key). */
bool cluster_has(const cluster *c, uint32_t i, uint32_t j, const char *key,
                 const char *value);
/* The same, of the node at `addr`, which need not be in the cluster. */
bool cluster_holds(const cluster *c, uint32_t i, const char *addr,
                   const char *key, const char *value);
/* Every running node but j holds `value` for `key` of node j. */
bool cluster_all_have(const cluster *c, uint32_t j, const char *key,
                      const char *value);
/* Node i's view of node j's status; -1 if i is crashed or does not know
 * j at its current generation. */
int cluster_status(const cluster *c, uint32_t i, uint32_t j);
/* Every running node but j sees j with `status`. */
bool cluster_all_see(const cluster *c, uint32_t j, sb_status status);
/* Every running node sees every other running node live. */
bool cluster_all_live(const cluster *c);

/* Events node i reported (CLUSTER_ALL: every node), about anyone. */
cluster_events cluster_events_of(const cluster *c, int i);
/* Joins and leaves node i reported about node j; whether the last leave
 * was a graceful one. */
uint32_t cluster_joins(const cluster *c, uint32_t i, uint32_t j);
uint32_t cluster_leaves(const cluster *c, uint32_t i, uint32_t j);
bool cluster_left(const cluster *c, uint32_t i, uint32_t j);
/* Leaves (down or left) reported by any node about any node of the
 * cluster but `except` (CLUSTER_ALL: none excepted). */
uint64_t cluster_downs(const cluster *c, int except);

/* Of node i, or of every node (CLUSTER_ALL): datagrams its running engine
 * dropped for `reason` (-1: any reason); bytes it sent (past incarnations
 * too); the largest packet it ever sent. Datagrams sent by every node. */
uint64_t cluster_drops(const cluster *c, int i, int reason);
uint64_t cluster_bytes_out(const cluster *c, int i);
uint64_t cluster_packets_out(const cluster *c);
size_t cluster_largest_sent(const cluster *c, int i);

#endif /* SB_TESTS_CLUSTER_H */
