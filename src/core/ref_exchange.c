/*
 * The reference Go library's exchange (docs/compat.md): digests of
 * (address, version), deltas, liveness from a peer's own digests.
 */
#include <stdlib.h>
#include <string.h>

#include "addr_text.h"
#include "internal.h"
#include "refwire.h"

/* Rounds after our first in which we may be shy of a seed (ref_shy()):
 * its first round comes one interval after it starts, so nodes started
 * up to 9 intervals apart are covered. */
#define REF_SHY_ROUNDS 10

/* A node that is not down: the reference's "up" (self included). */
static bool ref_is_up(const sb_peer *n)
{
    return n->status == SB_STATUS_LIVE || n->status == SB_STATUS_JOINING;
}

static bool ref_is_up_peer(const sb_peer *n)
{
    return !n->self && ref_is_up(n);
}

static bool ref_is_down_peer(const sb_peer *n)
{
    return !n->self && n->status == SB_STATUS_DOWN;
}

/*
 * Reference nodes know a node by its address alone, so after a restart
 * our previous incarnation's versions may still be out there, and they
 * ignore every key of ours stamped at or below them. Our versions start
 * at the generation (the wall clock) to stay above them; should the clock
 * have gone back, when a peer names a version of ours above what we
 * hold, our versions continue above it and our keys are stamped again,
 * so that they supersede the old ones.
 */
static void ref_outlive(sb_engine *e, uint64_t version)
{
    sb_peer *s = e->self;
    /* a claim past 2^63 is forged: no node counts that far */
    if (version <= s->max_version || version > UINT64_MAX / 2)
        return;
    for (uint32_t i = 0; i < s->nkeys; i++)
        s->keys[i]->version = ++version;
    s->max_version = version;
}

/* The node at `addr`, added (as joining) if new; NULL if it is us or
 * cannot be added. */
static sb_peer *ref_peer(sb_engine *e, const char *addr, size_t len,
                         uint64_t version, uint64_t now)
{
    sb_peer *n = sb_state_find_addr(&e->st, addr, len);
    if (n && n->self) {
        ref_outlive(e, version);
        return NULL;
    }
    if (n)
        return n;
    if (e->st.count >= e->cfg.max_nodes) {
        e->stats.drops[SB_DROP_LIMIT_NODES]++;
        return NULL;
    }
    n = sb_liveness_add(e, addr, len, 1, now);
    if (!n)
        e->stats.drops[SB_DROP_NOMEM]++;
    return n;
}

/* One delta entry: stored if newer than the key we hold. Entries may come
 * out of version order (two senders, or a cut message), so the key moves
 * to its place in the node's version order. Where a bound refuses a key,
 * the node's later entries in the message are not taken either: our
 * version of the node stays below the refused key, which is asked for
 * again, rather than pass it and leave it out for good. */
static void ref_apply(sb_engine *e, const sb_ref_entry *r, uint64_t now)
{
    sb_peer *n = ref_peer(e, r->addr, r->addr_len, r->version, now);
    if (!n || n->mark == e->epoch)
        return;
    long have = sb_peer_find_key(n, r->key, r->key_len);
    if (have >= 0 && n->keys[have]->version >= r->version)
        return;
    sb_key_entry k = { r->key, r->key_len, r->version, false, r->value,
                       r->value_len };
    if (!sb_apply_within_bounds(e, n, &k) ||
        !sb_apply_store_key(e, n, &k, now)) {
        n->mark = e->epoch;
        return;
    }
    sb_key *stored = n->keys[n->nkeys - 1];
    uint32_t j = n->nkeys - 1;
    for (; j > 0 && n->keys[j - 1]->version > stored->version; j--)
        n->keys[j] = n->keys[j - 1];
    n->keys[j] = stored;
}

/* A digest is its sender's heartbeat (see sb_liveness_least_gap()), and
 * the only answer this format has (no token: docs/compat.md). */
static void ref_heartbeat(sb_engine *e, sb_peer *n, uint64_t now)
{
    sb_liveness_answered(e, n);
    sb_liveness_observe(e, n, n->heartbeat + 1, false, now);
    if (n->status == SB_STATUS_LIVE && sb_liveness_floor_gap(e, n))
        sb_liveness_refresh(e, n);
}

/*
 * A reference node contacts its seeds only while it knows no node, and
 * learns nodes only from digests. Started at once with its seeds, it may
 * hear from one of us before its own first round: if our digest named
 * anyone, it would know a node, never contact its seeds, and its part of
 * the cluster would stay cut off from theirs (a chain of nodes each
 * seeded by the one before, docs/compat.md). So for REF_SHY_ROUNDS after
 * our first round, a digest request of ours to a seed that has not shown
 * that it knows other nodes names no one: the seed answers with its own
 * digest and learns nothing of us yet. A node of ours answers such a
 * request from a stranger with an empty digest (nothing larger than what
 * it got): that seed is one of ours, which asks its seeds now and then
 * whatever it knows, and we are shy of it no more.
 */
static bool ref_shy(sb_engine *e, const char *to, uint64_t now)
{
    if (now >= e->shy_until || !sb_seeds_has(e, to))
        return false;
    uint64_t h = sb_peer_id(to, strlen(to), 0);
    for (uint32_t i = 0; i < e->nbold; i++)
        if (e->bold[i] == h)
            return false;
    const sb_peer *n = sb_state_find_addr(&e->st, to, strlen(to));
    return !n || !n->linked;
}

/* True if entry r is about the node at `addr`. */
static bool ref_names(const sb_ref_entry *r, const char *addr, size_t len)
{
    return r->addr_len == len && memcmp(r->addr, addr, len) == 0;
}

/* A digest response from `from` that named no one: if from a seed we are
 * shy of, it is one of ours (a reference node names itself). */
static void ref_embolden(sb_engine *e, const char *from, uint64_t now)
{
    if (e->nbold == BOLD_SEEDS || !ref_shy(e, from, now))
        return;
    if (e->bold || (e->bold = malloc(BOLD_SEEDS * sizeof(*e->bold))))
        e->bold[e->nbold++] = sb_peer_id(from, strlen(from), 0);
    else
        e->stats.drops[SB_DROP_NOMEM]++;
}

/* Our digest: every node that is not down, self included, in random
 * order, as many as fit (none to a seed we are shy of): a request of the
 * round, or the response to the message at hand (no larger than it, to a
 * stranger). */
static void ref_send_digest(sb_engine *e, const char *to, int type,
                            uint64_t now)
{
    sb_writer w = type == SB_REF_DIGEST_RESPONSE ? sb_send_reply_writer(e)
                                                 : sb_send_writer(e);
    sb_ref_put_type(&w, type);
    uint32_t count = type == SB_REF_DIGEST_REQUEST && ref_shy(e, to, now)
                         ? 0
                         : e->st.count;
    for (uint32_t i = 0; i < count; i++) {
        sb_peer *n = sb_plan_draw(e, i);
        if (ref_is_up(n) &&
            !sb_ref_put_digest(&w, n->addr, n->addr_len, n->max_version))
            break;
    }
    sb_send_message(e, SB_TRAFFIC_EXCHANGE, to, &w);
}

/* A digest request of the round to `to` (a seed may be NULL, or us). */
static void ref_ask(sb_engine *e, const char *to, uint64_t now)
{
    if (to && strcmp(to, e->self->addr) != 0)
        ref_send_digest(e, to, SB_REF_DIGEST_REQUEST, now);
}

/* A digest request to peer n of the round: one that has not answered us
 * since it went down, or ever, is probed within its backoff
 * (sb_liveness_probed()). */
static void ref_ask_peer(sb_engine *e, sb_peer *n, uint64_t now)
{
    if (n->answered && n->status != SB_STATUS_DOWN) {
        ref_ask(e, n->addr, now);
    } else if (sb_liveness_may_probe(n, now)) {
        ref_ask(e, n->addr, now);
        sb_liveness_probed(e, n, now);
    }
}

/*
 * The delta answering a digest: the keys its sender lacks, if any. A
 * digest that does not name us gets all our keys too, in whatever room
 * is left: a reference node leaves the peers it holds down out of its
 * digests and never takes them up again, but still applies deltas about
 * them, so that a node of ours restarted after such a node convicted it
 * reaches it with its new values this way only (docs/compat.md).
 */
static void ref_send_delta(sb_engine *e, const char *to, const uint8_t *buf,
                           size_t len)
{
    plan *p = sb_plan_new(e);
    bool names_us = false;
    sb_cursor cur = { buf + 1, buf + len };
    sb_ref_entry r;
    while (sb_ref_next(&cur, SB_REF_DIGEST_REQUEST, &r)) {
        sb_peer *n = sb_state_find_addr(&e->st, r.addr, r.addr_len);
        names_us |= n && n->self;
        if (!n || n->mark == e->epoch || n->max_version <= r.version)
            continue;
        n->mark = e->epoch;
        cand k = { .n = n, .from = r.version,
                   .tie = (uint32_t)sb_rng_next(&e->rng) };
        sb_plan_offer(e, p, &k);
    }
    sb_plan_sort(e, p);
    cand *c = e->scratch.cands;
    uint32_t nc = p->ncands;
    if (!names_us && e->self->nkeys) /* last: offer() left it a slot */
        c[nc++] = (cand){ .n = e->self, .from = 0 };
    if (!nc)
        return;
    sb_writer w = sb_send_reply_writer(e);
    sb_ref_put_type(&w, SB_REF_DELTA);
    for (uint32_t i = 0; i < nc; i++) {
        sb_peer *n = c[i].n;
        /* a node's keys in version order; where one does not fit, the
         * rest of that node waits for the next exchange (a reference
         * node's key too large for any message of ours stops us there
         * for good: passing it over would leave it out at the receiver
         * for good; docs/compat.md) */
        for (uint32_t k = sb_peer_keys_after(n, c[i].from); k < n->nkeys;
             k++) {
            const sb_key *key = n->keys[k];
            if (!sb_ref_put_delta(&w, n->addr, n->addr_len, key->data,
                                  key->key_len, sb_key_value(key),
                                  key->value_len, key->version))
                break;
        }
    }
    if (w.p - w.start > 1)
        sb_send_message(e, SB_TRAFFIC_EXCHANGE, to, &w);
}

/*
 * Within a round of a pause, the digests we read may have waited in our
 * socket through it, sent by an incarnation of their sender that has
 * since restarted at the same address (nothing in the format tells them
 * apart). A delta computed from such a digest starts at the versions the
 * old incarnation held, above what the new one holds: the new one would
 * take it, name the node at its last version from then on, and never get
 * the keys in between. So they get no delta (a request still gets our
 * digest); the next rounds' exchanges answer digests that are current.
 */
static bool ref_after_pause(const sb_engine *e, uint64_t now)
{
    return e->resumed_at && now - e->resumed_at < e->round_ns;
}

/* Every address a checked message names is canonical "ip:port" text, the
 * only identity a reference node has (docs/compat.md): nothing else may
 * become a member, or be printed as one. */
static bool ref_addresses_ok(const uint8_t *buf, size_t len, int type)
{
    sb_cursor c = { buf + 1, buf + len };
    sb_ref_entry r;
    while (sb_ref_next(&c, type, &r))
        if (!sb_addr_canonical(r.addr, r.addr_len))
            return false;
    return true;
}

/* One datagram of the reference's format: a delta is applied; a digest
 * names peers, is its sender's heartbeat, and is answered. */
static void ref_recv(sb_engine *e, const char *from, const uint8_t *buf,
                     size_t len, uint64_t now)
{
    int type, why = SB_DROP_MALFORMED;
    size_t from_len = strlen(from);
    if (from_len > SB_MAX_ADDR_LEN || !sb_ref_check(buf, len, &type, &why) ||
        !ref_addresses_ok(buf, len, type)) {
        e->stats.drops[why]++;
        return;
    }
    e->last_heard = now;
    sb_cursor c = { buf + 1, buf + len };
    sb_ref_entry r;
    if (type == SB_REF_DELTA) {
        e->epoch++; /* marks the nodes a bound stopped (ref_apply()) */
        while (sb_ref_next(&c, type, &r))
            ref_apply(e, &r, now);
        return;
    }
    /* a stranger (not in our view, not a seed) gets no delta and a
     * digest no larger than its datagram: a forged source cannot make
     * us an amplifier. Its digest, like any, names the nodes we learn
     * (a node's own digest names it, so a real one is known after its
     * first) */
    bool stranger = !sb_state_find_addr(&e->st, from, from_len) &&
                    !sb_seeds_has(e, from);
    e->reply_max = e->cfg.max_message_size;
    if (stranger && len < e->reply_max)
        e->reply_max = len;
    bool others = false; /* it names nodes other than itself and us */
    if (type == SB_REF_DIGEST_RESPONSE && len == 1)
        ref_embolden(e, from, now);
    while (sb_ref_next(&c, type, &r)) {
        ref_peer(e, r.addr, r.addr_len, r.version, now);
        others |= !ref_names(&r, from, from_len) &&
                  !ref_names(&r, e->self->addr, e->self->addr_len);
    }
    sb_peer *sender = sb_state_find_addr(&e->st, from, from_len);
    if (sender && !sender->self) {
        ref_heartbeat(e, sender, now);
        sender->linked |= others;
    }
    if (!stranger && !ref_after_pause(e, now))
        ref_send_delta(e, from, buf, len);
    if (type == SB_REF_DIGEST_REQUEST)
        ref_send_digest(e, from, SB_REF_DIGEST_RESPONSE, now);
}

/* The round's messages: a digest request to a random node that is not
 * down, or to every seed when there is none; one to a random down node.
 * Beyond the reference, as in our own rounds (round_seeds()), a random
 * seed now and then, so that two parts that know no one of the other
 * meet again. */
static void ref_round(sb_engine *e, uint64_t now)
{
    uint32_t nup = e->nstatus[SB_STATUS_LIVE] +
                   e->nstatus[SB_STATUS_JOINING] - 1; /* self */
    uint32_t ndown = e->nstatus[SB_STATUS_DOWN];
    if (!e->shy_until)
        e->shy_until = sb_add_sat(now, REF_SHY_ROUNDS * e->round_ns);
    sb_peer *peer = sb_liveness_random(e, ref_is_up_peer, nup);
    if (peer) {
        ref_ask_peer(e, peer, now);
        if (!sb_seeds_has(e, peer->addr))
            ref_ask(e, sb_seeds_chance(e, nup + ndown), now);
    } else {
        sb_seeds_fetch(e);
        for (size_t i = 0; i < e->nseeds; i++)
            ref_ask(e, e->seeds[i], now);
    }
    sb_peer *down = sb_liveness_random(e, ref_is_down_peer, ndown);
    if (down)
        ref_ask_peer(e, down, now);
    /* suspects: a live peer silent for half the time that convicts gets a
     * digest request of its own, which a live one answers at once */
    double suspect = sb_liveness_threshold(e) / 2;
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_peer *n = e->st.peers[i];
        if (!n->self && n != peer && n->status == SB_STATUS_LIVE &&
            sb_phi_value(&n->phi, now) > suspect)
            ref_ask(e, n->addr, now);
    }
}


/* No tombstones in the reference format; its strings and its messages
 * bound an entry. */
static int ref_check_write(const sb_engine *e, size_t key_len,
                           size_t value_len, bool deleted)
{
    if (deleted)
        return SB_ESTATE;
    if (value_len > SB_REF_MAX_STR ||
        1 + sb_ref_delta_size(e->self->addr_len, key_len, value_len) >
            e->cfg.max_message_size)
        return SB_ETOOBIG;
    return SB_OK;
}

const sb_wire_ops sb_reference_wire = {
    .rounds = 1,
    .leaves = false,
    .recv = ref_recv,
    .round = ref_round,
    .greet = ref_ask,
    .check_write = ref_check_write,
    /* a peer hears from another about twice in (peers) rounds */
    .gap_per_peer = 0.5,
    .unproven_expire = true,
    /* a reference node convicts after threshold x mean of silence (its
     * phi is silence / mean): so do we, where ours would wait ln 10
     * times longer; suspects are asked first (ref_round()) */
    .threshold_scale = 1.0 / 2.302585092994046,
};
