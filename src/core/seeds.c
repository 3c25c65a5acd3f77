/*
 * Seeds: asked of the callback, recognised among senders, and drawn now
 * and then so that a partitioned cluster heals.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* True if `addr` is one of the seeds fetched last. */
bool sb_seeds_has(const sb_engine *e, const char *addr)
{
    for (size_t i = 0; i < e->nseeds; i++)
        if (e->seeds[i] && strcmp(e->seeds[i], addr) == 0)
            return true;
    return false;
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

