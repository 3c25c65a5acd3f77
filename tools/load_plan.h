/*
 * The load scenario's plan, shared by `scuttlebutt eval --load` (real
 * sockets) and `sb-sim --load` (the simulator): every node writes at each
 * rate in turn, for a fixed period per rate, spreading its writes over
 * its keys in turn; the text of those keys and values, and how an
 * observer reads them back.
 *
 * At rate R, N nodes and S seconds, each node makes floor(R x S) writes.
 * The g-th write of the whole cluster is node g mod N's (g div N)-th, at
 * g / (N x R) seconds from the start: each node writes every 1/R seconds,
 * the nodes' phases spread evenly over that period. A node's j-th write
 * goes to its key j mod K. A value is "SEQ:TIME" (SEQ counts the writes
 * of that key of that node from 0, over all rates; TIME is the writer's
 * clock in microseconds), padded with '.' to the value size.
 */
#ifndef SB_TOOLS_LOAD_PLAN_H
#define SB_TOOLS_LOAD_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOAD_PLAN_MAX_RATES 16
#define LOAD_PLAN_MAX_RATE 100000.0   /* writes per node per second */
#define LOAD_PLAN_MAX_KEYS 1000
#define LOAD_PLAN_MIN_VALUE 32        /* room for "SEQ:TIME" */
#define LOAD_PLAN_MAX_SECONDS 3600

#define LOAD_PLAN_KEYS 10             /* the defaults */
#define LOAD_PLAN_VALUE_BYTES 100
#define LOAD_PLAN_SECONDS 10

/* After the load stops: how many (observer, writer key) pairs are still
 * stale is taken at LOAD_PLAN_STALE_CHECK_S; the wait for every observer
 * to hold every last value gives up at LOAD_PLAN_DRAIN_LIMIT_S. */
#define LOAD_PLAN_STALE_CHECK_S 2
#define LOAD_PLAN_DRAIN_LIMIT_S 30

/* The longest key text ("load." and up to LOAD_PLAN_MAX_KEYS - 1), NUL
 * included. */
#define LOAD_PLAN_KEY_CAP 16

typedef struct load_plan {
    double rates[LOAD_PLAN_MAX_RATES]; /* writes per node per second */
    size_t nrates;
    uint32_t keys;            /* per node */
    uint32_t value_bytes;     /* every value's length */
    uint32_t seconds;         /* of load at each rate */
} load_plan;

/* No rate; the default keys, value size and period. */
void load_plan_init(load_plan *p);

/* "5,10,20": each rate a number above 0 and at most LOAD_PLAN_MAX_RATE,
 * at most LOAD_PLAN_MAX_RATES of them; false (and p unchanged) if not. */
bool load_plan_parse_rates(const char *s, load_plan *p);

/* Writes per node at `rate`: floor(rate x seconds). */
uint64_t load_plan_writes(const load_plan *p, double rate);

/* The g-th write of the cluster at `rate` (g below nodes x
 * load_plan_writes()): its writer, its key, and when it is due, in ns
 * from the start of the rate's period. */
void load_plan_write(const load_plan *p, double rate, uint32_t nodes,
                     uint64_t g, uint32_t *writer, uint32_t *key,
                     uint64_t *due_ns);

/* Key k's text, NUL-terminated, into buf (LOAD_PLAN_KEY_CAP bytes); its
 * length. */
size_t load_plan_key(char *buf, uint32_t k);

/* The value of write `seq` of a key at `time_us`, padded to value_bytes,
 * NUL-terminated, into buf (value_bytes + 1 bytes); its length. */
size_t load_plan_value(const load_plan *p, char *buf, uint64_t seq,
                       uint64_t time_us);

/* Reads a key and value back: the key's index below p->keys and the
 * value's SEQ; false for anything else (another key, a verdict). */
bool load_plan_parse(const load_plan *p, const char *key, size_t key_len,
                     const char *value, size_t value_len, uint32_t *k,
                     uint64_t *seq);

#endif /* SB_TOOLS_LOAD_PLAN_H */
