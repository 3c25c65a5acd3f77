/*
 * The summary: one 64-bit number that stands for everything a node's
 * digest could tell, so that two nodes that agree find it out from a few
 * bytes (docs/protocol.md, section 5).
 *
 * It is the XOR, over every record the node holds (its own too), of a
 * hash of (id, heartbeat, leaving, max_version, gc_version): the fields a
 * digest entry carries. Two nodes hold the same summary when they hold
 * the same records at the same versions, and otherwise (a difference of
 * any size) differ but for a chance of 2^-64. With monitors, heartbeats
 * move only when a node refutes a verdict or leaves (liveness.c), so a
 * cluster at rest keeps the same summary everywhere, and a SYN that
 * carries it is answered by nothing.
 *
 * It is computed again, over every record, only when something it covers
 * changed since (st->dirty, set where those fields change): at rest,
 * never.
 */
#include "internal.h"

static uint64_t summary_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9u;
    h ^= h >> 29;
    return h;
}

static uint64_t summary_of(const sb_peer *n)
{
    uint64_t h = summary_mix(0, n->id);
    h = summary_mix(h, n->heartbeat << 1 | (n->leaving ? 1u : 0u));
    h = summary_mix(h, n->max_version);
    return summary_mix(h, n->gc_version);
}

uint64_t sb_summary_fresh(const sb_state *st)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < st->count; i++)
        s ^= summary_of(st->peers[i]);
    return s;
}

uint64_t sb_summary(sb_engine *e)
{
    if (e->st.dirty) {
        e->summary = sb_summary_fresh(&e->st);
        e->st.dirty = false;
    }
    return e->summary;
}

uint64_t sb_engine_summary(sb_engine *e)
{
    return sb_summary(e);
}

bool sb_engine_summary_fresh(const sb_engine *e)
{
    return e->st.dirty || e->summary == sb_summary_fresh(&e->st);
}
