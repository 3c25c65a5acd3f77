/*
 * The simulator: many protocol engines in one process, over a virtual
 * network and a virtual clock. Nothing sleeps: an event heap orders packet
 * deliveries and gossip rounds by simulated time. Everything random (the
 * network's latency, loss, duplication; each engine's PRNG) derives from
 * one seed, so a run replays exactly.
 *
 * Node i has the address "10.X.Y.Z:7946" with X.Y.Z = i + 1 in base 256.
 * Links: latency = base + per-node extra delay of both ends, plus uniform
 * jitter (which reorders); loss and duplication are probabilities; any
 * ordered pair of nodes can be blocked (one-way partition).
 */
#ifndef SB_SIM_H
#define SB_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

typedef struct sb_sim sb_sim;

/* An engine event, with the index of the node that reported it. */
typedef void (*sb_sim_event_fn)(void *userdata, uint32_t node,
                                const sb_event *ev, uint64_t now);

typedef struct sb_sim_config {
    uint32_t nodes;            /* started at time 0 */
    uint64_t seed;
    uint32_t seeds;            /* nodes 0..seeds-1 are everyone's seeds */
    uint64_t generation_base;  /* a node started at time t has generation
                                  generation_base + t + 1 (a restart:
                                  above its last too); default
                                  1.7e18, like a wall clock in ns */
    uint64_t latency_ns;       /* one-way base latency; default 1 ms */
    uint64_t jitter_ns;        /* uniform extra latency; default 0 */
    double loss;               /* probability a packet is lost */
    double duplicate;          /* probability a packet arrives twice */
    sb_engine_config engine;   /* template for every node's engine;
                                  addr, generation, callbacks are set by
                                  the simulator */
    sb_sim_event_fn on_event;  /* optional */
    /* optional: sees every packet a node sends to another simulated
     * node, before loss or blocks */
    void (*on_packet)(void *userdata, uint32_t from, uint32_t to,
                      const uint8_t *buf, size_t len);
    /* optional: sees every datagram a node sends, wherever it goes (a
     * simulated node or any other address), before loss or blocks */
    void (*on_datagram)(void *userdata, uint32_t from, const char *to,
                        const uint8_t *buf, size_t len);
    void *userdata;            /* passed to the three callbacks */
} sb_sim_config;

/* Defaults: 3 seeds, 1 ms latency, no faults, engine defaults, wall
 * clock-like generations. */
void sb_sim_config_init(sb_sim_config *cfg);

/* SB_ENOMEM, or an engine error for a bad engine template. */
int sb_sim_new(const sb_sim_config *cfg, sb_sim **out);
void sb_sim_free(sb_sim *s);

uint64_t sb_sim_now(const sb_sim *s);
/* Processes every event up to and including time t. */
void sb_sim_run_until(sb_sim *s, uint64_t t);
void sb_sim_run_for(sb_sim *s, uint64_t dt);

uint32_t sb_sim_count(const sb_sim *s);
/* The node's engine, or NULL while it is crashed. */
sb_engine *sb_sim_engine(const sb_sim *s, uint32_t i);
const char *sb_sim_addr(const sb_sim *s, uint32_t i);
/* The node index of a simulated node's address, or -1. */
long sb_sim_index(const sb_sim *s, const char *addr);
bool sb_sim_running(const sb_sim *s, uint32_t i);

/* Starts one more node now; returns its index, or a negative error. */
int sb_sim_add_node(sb_sim *s);
/* Sets or deletes a key of node i at the current time. */
int sb_sim_set(sb_sim *s, uint32_t i, const char *key, const char *value);
int sb_sim_del(sb_sim *s, uint32_t i, const char *key);
int sb_sim_leave(sb_sim *s, uint32_t i);

/* After a direct call into node i's engine (a datagram handed to it, a
 * key set) that may have moved its deadline earlier, schedules its next
 * tick to match, as sb_sim_set() does. */
void sb_sim_reschedule(sb_sim *s, uint32_t i);

/* Stops node i without a word: its engine is freed, packets to it drop. */
void sb_sim_crash(sb_sim *s, uint32_t i);
/* Starts node i again (same address, larger generation, no keys). */
int sb_sim_restart(sb_sim *s, uint32_t i);
/* Freezes node i (no rounds, packets queue up) until resumed. */
void sb_sim_pause(sb_sim *s, uint32_t i);
void sb_sim_resume(sb_sim *s, uint32_t i);

/* Blocks (or unblocks) packets from node a to node b. */
void sb_sim_block(sb_sim *s, uint32_t a, uint32_t b, bool blocked);
/* Blocks every packet between nodes of different groups, both ways. */
void sb_sim_partition(sb_sim *s, const uint32_t *group);
/* Removes every block. */
void sb_sim_heal(sb_sim *s);
void sb_sim_set_loss(sb_sim *s, double loss);
void sb_sim_set_node_delay(sb_sim *s, uint32_t i, uint64_t delay_ns);
/* Node i loses this share of the packets sent to it (a slow node). */
void sb_sim_set_node_loss(sb_sim *s, uint32_t i, double loss);

/* True if every running node holds every other running node as live
 * (or left, if it announced a leave), at its current generation, with
 * all of its keys (same max_version). */
bool sb_sim_converged(const sb_sim *s);
/* True if node i holds `value` for `key` of node j (NULL: absent). */
bool sb_sim_has(const sb_sim *s, uint32_t i, uint32_t j, const char *key,
                const char *value);
/* node i's view of node j's status; -1 if i is crashed, or does not
 * know j at j's current generation. */
int sb_sim_status(const sb_sim *s, uint32_t i, uint32_t j);

/* Total bytes and packets sent by all nodes since the start. */
uint64_t sb_sim_bytes_sent(const sb_sim *s);
uint64_t sb_sim_packets_sent(const sb_sim *s);
/* Bytes and packets sent by node i (its current and past engines). */
uint64_t sb_sim_node_bytes_sent(const sb_sim *s, uint32_t i);

#endif /* SB_SIM_H */
