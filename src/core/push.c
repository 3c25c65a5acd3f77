/*
 * Eager push: our fresh keys go at once down a few trees that span the
 * live peers (one wave each), within the bandwidth cap; PUSHes passed on.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Fresh keys of ours were stored at `now`; our peers most likely hold us
 * up to version `before`. They go out with the next push, at once (the
 * driver sees the deadline move to now); writes until then share it.
 * With `before` at our max version, there is no key to push but news of
 * our record (a leave, a refutation): its header goes alone.
 */
void sb_push_queue(sb_engine *e, uint64_t before, uint64_t now)
{
    if (before >= e->self->max_version)
        e->push_news = true; /* no key: news of our record itself */
    if (!e->cfg.push_fanout || e->push_pending)
        return;
    e->push_pending = true;
    e->push_from = before;
    e->push_due = now;
}

/* A push tree's histogram of places: by their top byte. */
#define PUSH_SHIFT 56
#define PUSH_BUCKETS 256

/* 64-bit mixing (splitmix64's finaliser): orders a push tree. */
static uint64_t push_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Orders tree slots by place, then id. */
static int push_cmp_slot(const void *a, const void *b)
{
    const tree_slot *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/*
 * Our children in the tree of push wave `wave` started by node `root`:
 * the live peers we know, ourselves and the root, ordered by a hash of
 * (wave, peer id), counted cyclically from the root's hash (a member's
 * place is its hash minus the root's, modulo 2^64); the root has rank 0,
 * the others ranks 1, 2, ... in that order; the node of rank r sends to
 * ranks a*r+1 .. a*r+a, for an arity a of push_fanout (at least 2). Nodes
 * that know the same live members derive the same tree, so a wave reaches
 * each of them once, in about log_a(N) hops, for N-1 packets.
 *
 * Not all members are sorted, and nothing is kept per member: one pass
 * counts our rank and a histogram of places by their top byte, which
 * tells the few buckets our children's ranks fall in; a second pass
 * gathers those buckets' members (about N / 128 and our children: the
 * places are hashes) and sorts them to find the children. A wave costs
 * each node O(N) time and a few hundred bytes up to thousands of nodes.
 */
/* True if n is in the tree and not its root; *place gets its place. */
static bool push_member(const sb_peer *n, uint64_t root, uint64_t wave,
                        uint64_t base, uint64_t *place)
{
    if ((!n->self && n->status != SB_STATUS_LIVE) || n->id == root)
        return false;
    *place = push_mix64(wave ^ n->id) - base;
    return true;
}

static uint32_t push_children(sb_engine *e, uint64_t root, uint64_t wave,
                              sb_peer **out)
{
    uint64_t base = push_mix64(wave ^ root);
    uint64_t mine = push_mix64(wave ^ e->self->id) - base;
    uint32_t hist[PUSH_BUCKETS] = { 0 };
    uint32_t m = 0, before = 0; /* members but the root; before us */
    uint64_t place;
    for (uint32_t i = 0; i < e->st.count; i++) {
        if (!push_member(e->st.peers[i], root, wave, base, &place))
            continue;
        hist[place >> PUSH_SHIFT]++;
        m++;
        before += place < mine;
    }
    uint64_t rank = e->self->id == root ? 0 : 1 + (uint64_t)before;
    /* ranks f*rank+1 .. f*rank+f: the (rank-1)-th members by place */
    uint64_t f = e->cfg.push_fanout < 2 ? 2 : e->cfg.push_fanout;
    uint64_t lo = f * rank, hi = f * rank + f < m ? f * rank + f : m;
    if (lo >= hi)
        return 0;
    uint32_t b = 0, below = 0; /* members in the buckets before b */
    while (below + hist[b] <= lo)
        below += hist[b++];
    uint32_t end = b, upto = below + hist[b];
    while (upto < hi)
        upto += hist[++end];
    tree_slot *t = sb_scratch_tree(&e->scratch, upto - below);
    if (!t)
        return 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < e->st.count; i++) {
        const sb_peer *n = e->st.peers[i];
        if (!push_member(n, root, wave, base, &place))
            continue;
        uint32_t bucket = (uint32_t)(place >> PUSH_SHIFT);
        if (bucket >= b && bucket <= end)
            t[k++] = (tree_slot){ place, n->id };
    }
    qsort(t, k, sizeof(*t), push_cmp_slot);
    uint32_t nkids = 0;
    for (uint64_t c = lo; c < hi; c++) {
        sb_peer *n = sb_state_find_id(&e->st, t[c - below].id);
        if (n && !n->self)
            out[nkids++] = n;
    }
    return nkids;
}

/* The waves of one push share their id but for its low byte, which
 * numbers them 0 .. push_fanout - 1 (siblings). */
#define PUSH_SIBLING_MASK 0xffull

/* Whether the wave (root, wave) was seen (or started) lately. Two roots
 * may draw the same wave id (engines seeded alike), so the root is part
 * of the key. Key 0 marks an empty slot and is always seen. */
static uint64_t push_wave_key(uint64_t root, uint64_t wave)
{
    return push_mix64(root) ^ wave;
}

static bool push_seen(const sb_engine *e, uint64_t key)
{
    if (key == 0)
        return true;
    for (uint32_t i = 0; i < WAVES; i++)
        if (e->waves[i] == key)
            return true;
    return false;
}

/* Remembers the wave (root, wave); false if it was seen already. */
static bool push_new_wave(sb_engine *e, uint64_t root, uint64_t wave)
{
    uint64_t key = push_wave_key(root, wave);
    if (push_seen(e, key))
        return false;
    e->waves[e->waves_head++ % WAVES] = key;
    return true;
}

/* Remembers every sibling of `waves` (its low byte 0) from root; false,
 * remembering none, if one of them was seen already. */
static bool push_new_siblings(sb_engine *e, uint64_t root, uint64_t waves)
{
    for (uint32_t i = 0; i < e->cfg.push_fanout; i++)
        if (push_seen(e, push_wave_key(root, waves | i)))
            return false;
    for (uint32_t i = 0; i < e->cfg.push_fanout; i++)
        push_new_wave(e, root, waves | i);
    return true;
}

/* Sends a PUSH of `wave` to our children in its tree, within the
 * bandwidth cap; a wave the cap cuts short (counted) leaves the children
 * it did not reach to anti-entropy. */
static void push_down_tree(sb_engine *e, uint64_t root, uint64_t wave,
                           const uint8_t *buf, size_t len)
{
    if (!sb_send_allowed(e, SB_TRAFFIC_PUSH, len)) {
        e->stats.held_back[SB_TRAFFIC_PUSH]++;
        return;
    }
    sb_peer **kids = e->scratch.peers;
    uint32_t k = push_children(e, root, wave, kids);
    for (uint32_t i = 0; i < k; i++) {
        if (!sb_send_bytes(e, SB_TRAFFIC_PUSH, kids[i]->addr, buf, len))
            return; /* counted */
        e->stats.pushes++;
    }
}

/*
 * Pushes our fresh keys (from the version our peers most likely hold, cut
 * as a prefix) down push_fanout independent trees, one wave each: every
 * node gets them from push_fanout parents, so a lost packet rarely leaves
 * a node to anti-entropy. Keys past the cut go in the next push, at once
 * if the bandwidth cap allows.
 */
void sb_push_flush(sb_engine *e, uint64_t now)
{
    sb_peer *s = e->self;
    /* the cap is short: the push waits for it, and the writes made
     * meanwhile go with it */
    uint64_t wait =
        sb_send_wait(e, SB_TRAFFIC_PUSH, e->cfg.max_message_size);
    if (wait) {
        e->push_due = now + wait;
        return;
    }
    e->push_pending = false;
    if (s->max_version <= e->push_from && !e->push_news)
        return;
    e->push_news = false;
    plan *p = &e->plan;
    p->ncands = 1;
    e->scratch.cands[0] = (cand){ .n = s, .from = e->push_from };
    p->wave = 0; /* each wave's id is set below */
    sb_writer w = sb_send_writer(e);
    if (!sb_plan_write(e, &w, SB_MSG_PUSH, p))
        return;
    uint64_t done =
        p->nwritten ? sb_plan_delta_to(&e->scratch.cands[0]) : e->push_from;
    uint64_t waves;
    do
        waves = sb_rng_next(&e->rng) & ~PUSH_SIBLING_MASK;
    while (!push_new_siblings(e, s->id, waves));
    for (uint32_t i = 0; i < e->cfg.push_fanout; i++) {
        sb_set_push_wave(w.start, waves | i);
        push_down_tree(e, s->id, waves | i, w.start,
                       (size_t)(w.p - w.start));
    }
    if (s->max_version > done)
        sb_push_queue(e, done, now);
}

/*
 * A PUSH: passed on to our children in its wave's tree, and in the trees
 * of its sibling waves that have not reached us (once per wave, and only
 * if it came from a peer we know), then applied like an ACK2. Passing the
 * siblings on at once costs nothing a lossless push does not (each node
 * sends each wave once), and a node whose parent in one tree lost the
 * packet still gets it from this one: it misses the update only if all
 * of its parents do.
 */
void sb_push_recv(sb_engine *e, const uint8_t *buf, size_t len,
                  const sb_msg *m, bool known, uint64_t now)
{
    /* a PUSH larger than our own messages (from a peer configured with
     * larger ones) is taken, not passed on: we send within our bound */
    bool pass = e->cfg.push_fanout && known &&
                len <= e->cfg.max_message_size &&
                !push_seen(e, push_wave_key(m->root, m->wave));
    /* held back by the bandwidth cap (counted), nothing is marked seen:
     * a later copy of a wave, from its own parent, may still go on */
    if (pass && !sb_send_allowed(e, SB_TRAFFIC_PUSH, len)) {
        e->stats.held_back[SB_TRAFFIC_PUSH]++;
        pass = false;
    }
    if (pass) {
        push_new_wave(e, m->root, m->wave);
        push_down_tree(e, m->root, m->wave, buf, len);
        uint64_t waves = m->wave & ~PUSH_SIBLING_MASK;
        if ((m->wave & PUSH_SIBLING_MASK) < e->cfg.push_fanout) {
            memcpy(e->buf, buf, len); /* the same PUSH, another wave */
            for (uint32_t i = 0; i < e->cfg.push_fanout; i++)
                if (push_new_wave(e, m->root, waves | i)) {
                    sb_set_push_wave(e->buf, waves | i);
                    push_down_tree(e, m->root, waves | i, e->buf, len);
                }
        }
    }
    sb_apply_deltas(e, m, now);
}

