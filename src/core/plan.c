/*
 * Planning a message: which deltas an ACK, ACK2 or PUSH carries and in
 * what order, sized to the message; the random sample of a digest.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* An empty plan for one reply; a new epoch, so no peer is marked. */
plan *sb_plan_new(sb_engine *e)
{
    plan *p = &e->plan;
    p->nunknown = p->nreq = p->nahead = p->ncands = p->nwritten = 0;
    p->fill = p->always = p->heap = false;
    e->epoch++;
    return p;
}

/* Does the receiver, whose digest says (max, gc), need our copy of n
 * replayed from scratch? Only if we collected tombstones past its max
 * that it has not collected itself: it may hold values those tombstones
 * deleted, and no delta from its max would ever tell it. */
static bool plan_needs_reset(const sb_peer *n, uint64_t max, uint64_t gc)
{
    return n->gc_version > max && n->gc_version > gc;
}

/* How far behind the receiver is on c; a peer it lacks ranks first. A
 * recent change offered (news: the receiver may hold it already) ranks
 * as one version behind, however far back it starts: a record we caught
 * up on from version 0 (after a heal) is offered from there, and ranked
 * by its versions it went first and filled every ACK of a descent with
 * records the peer held (at 64 nodes, seed 1, 13 nodes stayed stale for
 * 0.3 s so, exchanging with peers that held what they lacked). */
static uint64_t plan_behind(const cand *c)
{
    if (c->whole)
        return UINT64_MAX;
    return c->news ? 1 : c->n->max_version - c->from;
}

/* The order deltas go out in: most out of date first, ties at random. */
static int plan_cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    uint64_t bx = plan_behind(x), by = plan_behind(y);
    if (bx != by)
        return bx < by ? 1 : -1;
    return (x->tie > y->tie) - (x->tie < y->tie);
}

/* The order of the heap of kept candidates: a recent change offered
 * (news) is kept before any other, then as they go out. */
static int plan_cmp_keep(const cand *x, const cand *y)
{
    if (x->news != y->news)
        return x->news ? -1 : 1;
    return plan_cmp_cand(x, y);
}

/* Moves cands[i] down the heap (worst on top) to its place. */
static void plan_sift(cand *c, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && plan_cmp_keep(&c[l], &c[w]) > 0)
            w = l;
        if (r < n && plan_cmp_keep(&c[r], &c[w]) > 0)
            w = r;
        if (w == i)
            return;
        cand t = c[i];
        c[i] = c[w];
        c[w] = t;
        i = w;
    }
}

/*
 * Keeps candidate c if it is among the best a message could carry. All
 * are kept until scratch.cands is full (one slot short: the reference's
 * delta appends one after them); from then on the array is a heap with
 * the worst on top, which a better candidate replaces. The array holds
 * three times the deltas one message can carry: those left out could
 * have gone in only where more than twice as many larger ones did not
 * fit (at 1024 nodes and 10% loss, `sb-sim` then sends what it sent with
 * every candidate kept: the same --trace). A recent change offered ranks
 * last as it goes out (one version behind, plan_behind()) but is kept
 * first: it is what a message's last few bytes carry, the news a peer the
 * push missed waits for.
 */
void sb_plan_offer(sb_engine *e, plan *p, const cand *c)
{
    cand *cands = e->scratch.cands;
    uint32_t cap = e->scratch.ncands ? e->scratch.ncands - 1 : 0;
    if (!cap)
        return;
    if (p->ncands < cap && !p->heap) {
        cands[p->ncands++] = *c;
        return;
    }
    /* a heap keeps its size, should the array grow under it */
    if (!p->heap) {
        p->heap = true;
        for (uint32_t i = p->ncands / 2; i-- > 0;)
            plan_sift(cands, p->ncands, i);
    }
    if (plan_cmp_keep(c, &cands[0]) < 0) {
        cands[0] = *c;
        plan_sift(cands, p->ncands, 0);
    }
}

/* The candidates in the order they go out. */
void sb_plan_sort(sb_engine *e, plan *p)
{
    qsort(e->scratch.cands, p->ncands, sizeof(cand), plan_cmp_cand);
}

/* Queues a delta of n for a receiver whose digest says (max, gc), or that
 * lacks n entirely (whole); news: a recent change offered. Nothing is
 * queued if it has all of n. */
static void plan_add(sb_engine *e, plan *p, sb_peer *n, uint64_t max,
                     uint64_t gc, bool whole, bool news)
{
    /* a whole peer from a sender that collected tombstones goes as a
     * reset, so that the receiver takes its gc_version along with it */
    bool reset = whole ? n->gc_version > 0 : plan_needs_reset(n, max, gc);
    if (!whole && !reset && n->max_version <= max)
        return;
    cand c = {
        .n = n, .from = whole || reset ? 0 : max, .reset = reset,
        .whole = whole, .news = news, .tie = (uint32_t)sb_rng_next(&e->rng),
        .down = n->convicted,
    };
    sb_plan_offer(e, p, &c);
}

void sb_plan_add(sb_engine *e, plan *p, sb_peer *n, uint64_t max,
                 uint64_t gc, bool whole)
{
    plan_add(e, p, n, max, gc, whole, false);
}

/* A recent change of n offered from `before`, the version peers held. */
void sb_plan_add_news(sb_engine *e, plan *p, sb_peer *n, uint64_t before)
{
    plan_add(e, p, n, before, n->gc_version, false, true);
}

static sb_delta plan_delta_header(const cand *c, uint64_t nkeys, uint64_t to)
{
    const sb_peer *n = c->n;
    return (sb_delta){
        .addr = n->addr, .addr_len = n->addr_len,
        .generation = n->generation, .heartbeat = n->heartbeat,
        .leaving = n->leaving, .reset = c->reset,
        .down = c->down,
        .from_version = c->from, .to_version = to,
        .gc_version = n->gc_version, .nkeys = nkeys,
    };
}

/*
 * Plans the delta of candidate c into `room` bytes: the longest prefix of
 * its keys (in version order, so the receiver is left without a gap) that
 * fits. Returns the bytes needed, or 0 if keys wait and none fits.
 */
size_t sb_plan_fit_delta(cand *c, size_t room)
{
    const sb_peer *n = c->n;
    uint32_t i0 = sb_peer_keys_after(n, c->from), i = i0;
    size_t keys = 0;
    for (; i < n->nkeys; i++) {
        const sb_key *k = n->keys[i];
        size_t ks = sb_key_entry_size(k->key_len, k->value_len, k->version);
        sb_delta h = plan_delta_header(c, i - i0 + 1, n->max_version);
        if (sb_delta_header_size(&h) + keys + ks > room)
            break;
        keys += ks;
    }
    if (i == i0 && i0 < n->nkeys)
        return 0;
    c->first = i0;
    c->nkeys = i - i0;
    sb_delta h = plan_delta_header(c, c->nkeys, sb_plan_delta_to(c));
    size_t need = sb_delta_header_size(&h) + keys;
    return need <= room ? need : 0;
}

uint64_t sb_plan_delta_to(const cand *c)
{
    const sb_peer *n = c->n;
    uint32_t i = c->first + c->nkeys;
    return i == n->nkeys ? n->max_version : n->keys[i - 1]->version;
}

void sb_plan_write_delta(sb_writer *w, const cand *c)
{
    sb_delta h = plan_delta_header(c, c->nkeys, sb_plan_delta_to(c));
    sb_put_delta_header(w, &h);
    for (uint32_t i = 0; i < c->nkeys; i++) {
        const sb_key *k = c->n->keys[c->first + i];
        sb_key_entry ke = { k->data, k->key_len, k->version, k->deleted,
                            sb_key_value(k), k->value_len };
        sb_put_key_entry(w, &ke);
    }
}

/* The bytes of the smallest useful delta of c: its header and first key. */
static size_t plan_min_delta_size(const cand *c)
{
    const sb_peer *n = c->n;
    uint32_t i0 = sb_peer_keys_after(n, c->from);
    sb_delta h = plan_delta_header(c, 1, n->max_version);
    size_t need = sb_delta_header_size(&h);
    if (i0 < n->nkeys)
        need += sb_key_entry_size(n->keys[i0]->key_len,
                                  n->keys[i0]->value_len,
                                  n->keys[i0]->version);
    return need;
}

/*
 * The random part of a digest lists peers in three groups, each in a
 * random order: 0, peers with a heartbeat we have not listed since it came
 * in (news for most peers); 1, the other peers that may be alive (joining
 * or live); 2, the down and the left. Those carry no news of liveness, and
 * a cluster keeps them for dead_grace: mixed with the others they would
 * crowd out the heartbeats the failure detectors live on.
 */
int sb_plan_sample_group(const sb_peer *n)
{
    if (n->status == SB_STATUS_DOWN || n->status == SB_STATUS_LEFT)
        return 2;
    return n->hb_news ? 0 : 1;
}

/* The i-th draw of a random sample without repetition: a partial
 * Fisher-Yates shuffle of st.perm, which stays a permutation. */
sb_peer *sb_plan_draw(sb_engine *e, uint32_t i)
{
    uint32_t *perm = e->st.perm;
    uint32_t j = i + (uint32_t)sb_rng_below(&e->rng, e->st.count - i);
    uint32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
    return e->st.peers[perm[i]];
}

/*
 * Draws the candidates of a digest's random sample into scratch.sample:
 * peers not listed yet in this digest, in the random order of the partial
 * shuffle, twice as many as `room` bytes could hold (every peer, in
 * clusters that small). The caller lists them group by group
 * (sb_plan_sample_group()), so news comes first among them; the bounded
 * window keeps a digest's cost proportional to its size, not to the
 * cluster's.
 */
uint32_t sb_plan_draw_sample(sb_engine *e, size_t room)
{
    uint32_t window = (uint32_t)(2 * (room / SB_DIGEST_ENTRY_MIN) + 1);
    uint32_t m = 0;
    if (window > e->scratch.nsample)
        window = e->scratch.nsample;
    for (uint32_t i = 0; i < e->st.count && m < window; i++) {
        sb_peer *x = sb_plan_draw(e, i);
        if (x->mark != e->epoch)
            e->scratch.sample[m++] = x;
    }
    return m;
}

/*
 * Tops up an ACK's digest with random peers the SYN did not list (not
 * marked in this exchange), as many as fit `*room`: the initiator adopts
 * their heartbeats and asks for the ones it does not know, so large
 * clusters spread liveness and identities faster. Returns how many.
 */
static uint32_t plan_fill_digest(sb_engine *e, sb_peer **out, size_t *room)
{
    uint32_t n = 0;
    uint32_t m = sb_plan_draw_sample(e, *room);
    for (int pass = 0; pass < 3; pass++) {
        for (uint32_t i = 0; i < m; i++) {
            sb_peer *x = e->scratch.sample[i];
            /* listing clears hb_news, which moves a peer to group 1:
             * the mark keeps it from being listed twice */
            if (x->mark == e->epoch || sb_plan_sample_group(x) != pass)
                continue;
            sb_digest_entry d = sb_entry_of(x);
            size_t s = sb_digest_entry_size(&d);
            if (s > *room)
                return n;
            *room -= s;
            x->mark = e->epoch;
            x->hb_news = false;
            out[n++] = x;
        }
    }
    return n;
}

/* The bytes of digest entries a SYN, or an ACK's own entries, may take:
 * DIGEST_SHARE of a message (see EXCHANGES). */
size_t sb_plan_digest_room(const sb_engine *e)
{
    size_t share = e->cfg.max_message_size * DIGEST_SHARE / 100;
    /* a SYN: header, token, flags, summary and a count of at most 3
     * bytes */
    size_t most = e->cfg.max_message_size - SB_HEADER_SIZE - SB_TOKEN_SIZE -
                  1 - SB_SUMMARY_SIZE - 3;
    return share < most ? share : most;
}

/*
 * Writes a message of `type` (ACK, ACK2 or PUSH) from a plan, never past
 * the writer's end (max_message_size, or less for a reply to a stranger).
 * An ACK carries digest entries first: requests (ids we lack, peers where
 * we are behind) in at most half the room while deltas wait, and never so
 * many that the best delta cannot start (all of it if that cannot); then the
 * deltas, most-out-of-date peer first; then entries with our newer
 * heartbeats in whatever room is left, topped up with random peers when
 * the SYN's digest was partial. Returns false if there is nothing
 * to send.
 */
bool sb_plan_write(sb_engine *e, sb_writer *w, int type, plan *p)
{
    /* the frame, and one count (two in an ACK) of as many bytes as the
     * most entries or deltas that fit take: each takes at least
     * SB_DIGEST_ENTRY_MIN bytes */
    size_t size = (size_t)(w->end - w->start);
    size_t count = sb_varint_size(size / SB_DIGEST_ENTRY_MIN);
    size_t frame = SB_HEADER_SIZE + (type == SB_MSG_ACK ? 2 : 1) * count +
                   (type == SB_MSG_PUSH ? 1 + SB_PUSH_HEADER_SIZE : 0) +
                   (type == SB_MSG_ACK ? 2 * SB_TOKEN_SIZE + SB_SUMMARY_SIZE
                                       : 0) +
                   (type == SB_MSG_ACK2 ? SB_TOKEN_SIZE : 0);
    if (size <= frame)
        return false;
    size_t room = size - frame;
    cand *cands = e->scratch.cands;
    sb_plan_sort(e, p);

    uint32_t nunknown = 0, nreq = 0, nahead = 0, ndelta = 0;
    if (type == SB_MSG_ACK) {
        size_t budget = room;
        if (p->ncands) {
            size_t need = plan_min_delta_size(&cands[0]);
            budget = need < room ? room / 2 : room;
            if (need < room && room - need < budget)
                budget = room - need;
        }
        size_t used = 0;
        for (; nunknown < p->nunknown; nunknown++) {
            sb_digest_entry d = { .id = e->scratch.unknown[nunknown] };
            size_t s = sb_digest_entry_size(&d);
            if (used + s > budget)
                break;
            used += s;
        }
        for (; nunknown == p->nunknown && nreq < p->nreq; nreq++) {
            sb_digest_entry d = sb_entry_of(e->scratch.peers[nreq]);
            size_t s = sb_digest_entry_size(&d);
            if (used + s > budget)
                break;
            used += s;
        }
        room -= used;
    }
    for (uint32_t i = 0; i < p->ncands; i++) {
        size_t need = sb_plan_fit_delta(&cands[i], room);
        if (!need)
            continue; /* a smaller one may still fit */
        room -= need;
        /* written ones to the front; the others stay, after them */
        cand t = cands[ndelta];
        cands[ndelta++] = cands[i];
        cands[i] = t;
    }
    if (type == SB_MSG_ACK) {
        /* our entries take at most a digest's share, like the SYN's */
        size_t share = sb_plan_digest_room(e);
        size_t rest = room > share ? room - share : 0;
        room -= rest;
        for (; nahead < p->nahead; nahead++) {
            sb_digest_entry d = sb_entry_of(e->scratch.ahead[nahead]);
            size_t s = sb_digest_entry_size(&d);
            if (s > room)
                break;
            room -= s;
        }
        if (p->fill && nahead == p->nahead)
            nahead += plan_fill_digest(e, e->scratch.ahead + nahead, &room);
        room += rest;
    }
    if (nunknown + nreq + nahead + ndelta == 0 && !p->always)
        return false;

    sb_put_header(w, type, e->cluster_id);
    if (type == SB_MSG_PUSH) { /* one item; push.c sets its wave for
                                  each child when it is sent */
        sb_put_varint(w, 1);
        sb_put_u64(w, e->self->id);
        sb_put_u64(w, 0);
    } else {
        sb_put_u64(w, p->echo);
    }
    if (type == SB_MSG_ACK) {
        sb_put_u64(w, e->from_token);
        sb_put_u64(w, sb_summary(e));
    }
    if (type == SB_MSG_ACK) {
        sb_put_varint(w, nunknown + nreq + nahead);
        for (uint32_t i = 0; i < nunknown; i++) {
            sb_digest_entry d = { .id = e->scratch.unknown[i] };
            sb_put_digest_entry(w, &d);
        }
        for (uint32_t i = 0; i < nreq; i++) {
            sb_digest_entry d = sb_entry_of(e->scratch.peers[i]);
            sb_put_digest_entry(w, &d);
        }
        for (uint32_t i = 0; i < nahead; i++) {
            sb_digest_entry d = sb_entry_of(e->scratch.ahead[i]);
            sb_put_digest_entry(w, &d);
        }
    }
    sb_put_varint(w, ndelta);
    for (uint32_t i = 0; i < ndelta; i++)
        sb_plan_write_delta(w, &cands[i]);
    p->nwritten = ndelta;
    return true;
}

