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
 * It is kept up to date as records change, not computed again over every
 * record: each record keeps its share (the hash above), and the summary
 * is the XOR of the shares. Where a covered field changes, the record is
 * touched (sb_state_touch()); the next read takes the touched records'
 * shares out and their new ones in. A removed record's share leaves at
 * once (sb_state_remove()). A read costs the records changed since the
 * last one: at rest, nothing; at 4,096 nodes, not a pass over 4,096 (but
 * for a read after more than STATE_TOUCHED changes, which looks at every
 * record's touched flag instead of a list as long as the cluster).
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

static void summary_take(sb_state *st, sb_peer *n)
{
    st->summary ^= n->share;
    n->share = summary_of(n);
    st->summary ^= n->share;
    n->touched = false;
}

uint64_t sb_summary(sb_engine *e)
{
    sb_state *st = &e->st;
    if (st->overflow) {
        for (uint32_t i = 0; i < st->count; i++)
            if (st->peers[i]->touched)
                summary_take(st, st->peers[i]);
    } else {
        for (uint32_t i = 0; i < st->ntouched; i++)
            summary_take(st, st->touched[i]);
    }
    st->ntouched = 0;
    st->overflow = false;
    return st->summary;
}

/* A peer's summary (in a SYN, an ACK or a beat) compared with ours: we
 * agree, or not; true if we do. */
bool sb_summary_compare(sb_engine *e, uint64_t theirs, uint64_t now)
{
    uint64_t summary = sb_summary(e);
    e->agreed = theirs == summary ? summary : 0;
    if (e->agreed)
        e->agreed_at = now;
    return e->agreed != 0;
}

uint64_t sb_engine_summary(sb_engine *e)
{
    return sb_summary(e);
}

/* True if every untouched record's share is its hash (no change went
 * untouched) and the summary is the XOR of the shares. */
bool sb_engine_summary_fresh(const sb_engine *e)
{
    const sb_state *st = &e->st;
    uint64_t s = 0;
    for (uint32_t i = 0; i < st->count; i++) {
        const sb_peer *n = st->peers[i];
        if (!n->touched && n->share != summary_of(n))
            return false;
        s ^= n->share;
    }
    return s == st->summary;
}
