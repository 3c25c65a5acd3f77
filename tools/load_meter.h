/*
 * The load meter: what the load scenario (load_plan.h) did to a cluster,
 * measured from the writes made and the updates each observer reported.
 * Shared by `scuttlebutt eval --load` and `sb-sim --load`; the driver
 * gives every time (its clock, in ns) and calls in from one thread at a
 * time.
 *
 * An (observer, update) pair is resolved when the observer first holds
 * that value or a newer one of the same key: its staleness is the time
 * from the set until then. It is superseded if the observer never held
 * the value itself, only a newer one. A period runs from
 * load_meter_begin() to load_meter_stop() (the load) and on until the
 * next begin (the drain): pairs resolved then count too.
 *
 * Percentiles come from a histogram with 64 buckets per power of two:
 * within 1% of the exact figure (the maximum is exact).
 */
#ifndef SB_TOOLS_LOAD_METER_H
#define SB_TOOLS_LOAD_METER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "load_plan.h"

typedef struct load_meter load_meter;

/* One rate's figures. NAN where there was nothing to measure. */
typedef struct load_row {
    uint32_t nodes;
    double rate;              /* writes per node per second asked */
    double seconds;           /* the load's period, measured */
    uint64_t writes;          /* sets made, cluster-wide */
    uint64_t pairs;           /* (observer, update) pairs resolved */
    uint64_t superseded;      /* of those, held only as a newer value */
    double stale_p50_ms, stale_p99_ms, stale_max_ms;
    double writer_p99_worst_ms;   /* per writer: the p99 of its pairs */
    double writer_p99_median_ms;
    double goodput;           /* key and value bytes new to their
                                 observer, per node per second, over the
                                 load */
    double bytes_per_s;       /* sent per node per second, over the load */
    double packets_per_s;
    double peak_bytes_per_s;  /* the most one node sent over any window
                                 of a second (of samples a second apart) */
    uint64_t false_downs;     /* the driver's count */
    uint64_t stale_at_check;  /* (observer, writer key) pairs without the
                                 last value LOAD_PLAN_STALE_CHECK_S after
                                 the stop (the driver's sample) */
    double all_held_ms;       /* from the stop until every observer held
                                 every last value; < 0: not within
                                 LOAD_PLAN_DRAIN_LIMIT_S */
} load_row;

/* A meter for `nodes` nodes at these addresses (copied), with the plan's
 * keys; NULL when out of memory. */
load_meter *load_meter_new(const load_plan *plan, uint32_t nodes,
                           const char *const *addrs);
void load_meter_free(load_meter *m);

/* Starts a period at `rate`: the figures start again from nothing (what
 * each observer holds carries over). */
void load_meter_begin(load_meter *m, double rate, uint64_t now);

/* Records a write of node `writer`'s key `key` at `now`: its SEQ, to put
 * in the value; UINT64_MAX when out of memory. */
uint64_t load_meter_set(load_meter *m, uint32_t writer, uint32_t key,
                        uint64_t now);

/* Node `observer` reported an update of the node at `addr`; anything but
 * a key and value of the plan's is ignored. */
void load_meter_update(load_meter *m, uint32_t observer, const char *addr,
                       const char *key, size_t key_len, const char *value,
                       size_t value_len, uint64_t now);

/* Node `node` has sent this much, in all, by `now`: called for every node
 * at the begin, at the stop, and every so often between. */
void load_meter_sent(load_meter *m, uint32_t node, uint64_t bytes,
                     uint64_t packets, uint64_t now);

/* The load stops: goodput and traffic are taken up to `now`. */
void load_meter_stop(load_meter *m, uint64_t now);

/* (observer, writer key) pairs where the observer lacks the writer's
 * last value of that key. */
uint64_t load_meter_stale(const load_meter *m);

/* The period's figures (but false_downs and stale_at_check, the
 * driver's). */
void load_meter_row(const load_meter *m, load_row *row);

#endif /* SB_TOOLS_LOAD_METER_H */
