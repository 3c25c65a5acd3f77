/*
 * Seeds: asked of the callback, recognised among senders, and drawn now
 * and then so that a partitioned cluster heals. And the addresses to
 * join (sb_engine_join()): seeds for a while, greeted every round until
 * a node there answers us.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The join to `addr`, or NULL. */
static sb_join *seeds_join_of(const sb_engine *e, const char *addr)
{
    for (uint32_t i = 0; i < e->njoins; i++)
        if (strcmp(e->joins[i].addr, addr) == 0)
            return &e->joins[i];
    return NULL;
}

/* True if `addr` is one of the seeds fetched last, or one to join. */
bool sb_seeds_has(const sb_engine *e, const char *addr)
{
    for (size_t i = 0; i < e->nseeds; i++)
        if (e->seeds[i] && strcmp(e->seeds[i], addr) == 0)
            return true;
    return seeds_join_of(e, addr) != NULL;
}

/* Asks the seeds callback for the current seeds. */
void sb_seeds_fetch(sb_engine *e)
{
    e->seeds_fetched = true;
    if (!e->cfg.seeds)
        return;
    const char *got[SB_MAX_SEEDS] = { 0 }; /* a callback may fill fewer */
    size_t n = e->cfg.seeds(e->cfg.userdata, got, SB_MAX_SEEDS);
    if (n > SB_MAX_SEEDS)
        n = SB_MAX_SEEDS;
    if (n > e->seeds_cap) { /* out of memory: the first seeds_cap */
        const char **seeds = realloc(e->seeds, n * sizeof(*seeds));
        if (seeds) {
            e->seeds = seeds;
            e->seeds_cap = n;
        } else {
            n = e->seeds_cap;
        }
    }
    if (n)
        memcpy(e->seeds, got, n * sizeof(*got));
    e->nseeds = n;
}

/* A random seed with probability seeds / n (n nodes besides us to pick
 * from); NULL otherwise. */
const char *sb_seeds_chance(sb_engine *e, uint32_t n)
{
    if (!e->nseeds || sb_rng_unit(&e->rng) >= (double)e->nseeds / (double)n)
        return NULL;
    return e->seeds[sb_rng_below(&e->rng, e->nseeds)];
}

/* Greets `addr` now, and every round for JOIN_INTERVALS until a node
 * there answers us; asked again, its rounds start over. */
int sb_seeds_join(sb_engine *e, const char *addr, uint64_t now)
{
    if (!addr || !*addr)
        return SB_EINVAL;
    if (strcmp(addr, e->self->addr) == 0)
        return SB_EADDR;
    sb_join *j = seeds_join_of(e, addr);
    if (!j) {
        if (e->njoins == SB_MAX_SEEDS)
            return SB_ELIMIT;
        sb_join *joins = realloc(e->joins, (e->njoins + 1) * sizeof(*joins));
        if (!joins)
            return SB_ENOMEM;
        e->joins = joins;
        size_t len = strlen(addr) + 1;
        char *copy = malloc(len);
        if (!copy)
            return SB_ENOMEM;
        memcpy(copy, addr, len);
        j = &e->joins[e->njoins++];
        j->addr = copy;
    }
    j->rounds = JOIN_INTERVALS * e->wire->rounds;
    j->answered = false;
    e->wire->greet(e, addr, now);
    return SB_OK;
}

/* An answer came from `addr` (sb_liveness_answered()): a join to it is
 * done. */
void sb_seeds_answered(sb_engine *e, const char *addr)
{
    sb_join *j = e->njoins ? seeds_join_of(e, addr) : NULL;
    if (j)
        j->answered = true;
}

/* The round's greetings: each address to join that no node has answered
 * us from since, while its rounds last; the others are done with, and
 * all of them once we announced a leave (a node leaving does not bring
 * its cluster to another: sb_engine_join() refuses then too). */
void sb_seeds_joins_round(sb_engine *e, uint64_t now)
{
    for (uint32_t i = 0; i < e->njoins;) {
        sb_join *j = &e->joins[i];
        if (j->rounds && !j->answered && !e->self->leaving) {
            j->rounds--;
            e->wire->greet(e, j->addr, now);
            i++;
            continue;
        }
        free(j->addr);
        *j = e->joins[--e->njoins];
    }
    if (!e->njoins) {
        free(e->joins);
        e->joins = NULL;
    }
}

size_t sb_seeds_memory(const sb_engine *e)
{
    size_t bytes = e->seeds_cap * sizeof(*e->seeds) +
                   e->njoins * sizeof(*e->joins);
    for (uint32_t i = 0; i < e->njoins; i++)
        bytes += strlen(e->joins[i].addr) + 1;
    return bytes;
}

void sb_seeds_free(sb_engine *e)
{
    free(e->seeds);
    for (uint32_t i = 0; i < e->njoins; i++)
        free(e->joins[i].addr);
    free(e->joins);
}
