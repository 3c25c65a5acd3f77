/*
 * Applying deltas: the peer a delta speaks of, the bounds, gaps refused,
 * resets after collected tombstones, keys stored and reported.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Who may speak of whom (docs/security.md, "Who speaks for whom"). A
 * stranger (not a peer we know, not a seed) may speak of itself only. A
 * node we do not know (or a new generation of one) is taken only from an
 * answer (an ACK or ACK2 echoing our token: its source holds the address
 * we wrote to) that is either about its own source or from a member, who
 * vouches for it: no one can name a third party's address to the cluster
 * without holding an address the cluster wrote to first.
 */
static bool apply_of_itself(const sb_engine *e, const sb_delta *d)
{
    return strlen(e->from) == d->addr_len &&
           memcmp(e->from, d->addr, d->addr_len) == 0;
}

static bool apply_may_speak(const sb_engine *e, const sb_delta *d, bool fresh)
{
    if (!e->from_member && !apply_of_itself(e, d))
        return false;
    return !fresh || e->answered;
}

/* Finds or creates the peer a delta speaks of; NULL if the delta must be
 * ignored (stale generation, hearsay, zombie, bound reached). */
static sb_peer *apply_peer(sb_engine *e, const sb_delta *d,
                           uint64_t now, bool *created)
{
    *created = false;
    sb_peer *n = sb_state_find_addr(&e->st, d->addr, d->addr_len);
    if (n && (n->self || n->generation > d->generation))
        return NULL;
    if (!apply_may_speak(e, d, !n || n->generation != d->generation)) {
        e->stats.drops[SB_DROP_HEARSAY]++;
        return NULL;
    }
    if (n && n->generation == d->generation) {
        sb_liveness_observe(e, n, d->heartbeat, d->leaving, now);
        return n;
    }
    uint64_t id = sb_peer_id(d->addr, d->addr_len, d->generation);
    bool of_itself = apply_of_itself(e, d);
    /* a forgotten id, or an incarnation older than one we forgot at
     * that address (the later one replaced it here; without this, a
     * holder that kept the old one, paused or cut off, would hand the
     * dead incarnation back once the later one is forgotten). But the
     * forgotten node itself, answering us, is back: it lived all along
     * (cut off from us for longer than the grace), and is held down
     * here until it refutes (our probes doubt it), so that its moved
     * heartbeat takes it past every other node's forgotten entry */
    bool stale = sb_state_is_forgotten(&e->st, id, d->heartbeat);
    bool back = stale && e->answered && of_itself;
    if ((stale && !back) ||
        (!n && sb_state_is_superseded(
                   &e->st, sb_peer_id(d->addr, d->addr_len, 0),
                   d->generation))) {
        e->stats.drops[SB_DROP_ZOMBIE]++;
        return NULL;
    }
    if (!n && e->st.count >= e->cfg.max_nodes) {
        e->stats.drops[SB_DROP_LIMIT_NODES]++;
        return NULL;
    }
    if (n)
        sb_liveness_drop_generation(e, n, now);
    n = sb_liveness_add(e, d->addr, d->addr_len, d->generation, now);
    if (!n) {
        e->stats.drops[SB_DROP_NOMEM]++;
        return NULL;
    }
    *created = true;
    if (back)
        sb_state_unforget(&e->st, id);
    if (e->answered && of_itself)
        sb_liveness_answered(e, n); /* it introduced itself, answering us */
    n->heartbeat = d->heartbeat;
    n->leaving = d->leaving;
    if (d->leaving)
        sb_liveness_set_status(e, n, SB_STATUS_LEFT, now);
    sb_recent_note(e, n, now, NO_DELTA);
    /* a member that holds it down: not live here either (a joining
     * node may hold a dead node's record before the verdicts); a node
     * back from being forgotten is held down until it refutes, for us
     * alone (its deltas carry no down flag) */
    if (!back)
        sb_liveness_arrived(e, n, d->down && !of_itself, now);
    e->announce = e->announce_members = e->wire->announce != NULL;
    return n;
}

/*
 * Checks the bounds before storing key entry k into n. The application's
 * keys are held to max_keys_per_node and max_state_bytes; the protocol's
 * (verdicts: a zero first byte) to bounds of their own, so that a node
 * whose application filled its share still convicts a subject, and its
 * verdicts still reach every holder: a record holds at most one verdict
 * (or its tombstone) per node known, max_nodes, and a key of the
 * protocol's is never larger than a verdict.
 */
bool sb_apply_within_bounds(sb_engine *e, const sb_peer *n,
                            const sb_key_entry *k)
{
    long old = sb_peer_find_key(n, k->key, k->key_len);
    bool reserved = sb_liveness_reserved(k->key, k->key_len);
    uint32_t count = reserved ? sb_peer_reserved(n)
                              : n->nkeys - sb_peer_reserved(n);
    uint32_t most = reserved ? e->cfg.max_nodes : e->cfg.max_keys_per_node;
    if (old < 0 && count >= most) {
        e->stats.drops[SB_DROP_LIMIT_KEYS]++;
        return false;
    }
    size_t bytes = k->key_len + k->value_len;
    size_t old_bytes = old < 0 ? 0
                               : n->keys[old]->key_len +
                                     n->keys[old]->value_len;
    if (reserved ? bytes > VERDICT_KEY_LEN + VERDICT_VALUE_LEN
                 : n->state_bytes - old_bytes + bytes >
                       e->cfg.max_state_bytes) {
        e->stats.drops[SB_DROP_LIMIT_BYTES]++;
        return false;
    }
    return true;
}

/* Stores key entry k into n and reports it (an UPDATE, or a DELETE of a
 * key that was live); false, counted, if out of memory. */
bool sb_apply_store_key(sb_engine *e, sb_peer *n, const sb_key_entry *k,
                        uint64_t now)
{
    bool was_live;
    if (!sb_peer_put_key(n, k->key, k->key_len, k->value, k->value_len,
                         k->version, k->deleted, now, &was_live)) {
        e->stats.drops[SB_DROP_NOMEM]++;
        return false;
    }
    sb_key *stored = n->keys[n->nkeys - 1];
    if (k->deleted)
        sb_liveness_note_tombstone(e, n, now);
    if (sb_liveness_reserved(k->key, k->key_len)) {
        sb_liveness_verdict(e, n, stored, now);
        return true;
    }
    if (!k->deleted)
        sb_liveness_emit(e, SB_EVENT_UPDATE, n, stored);
    else if (was_live)
        sb_liveness_emit(e, SB_EVENT_DELETE, n, stored);
    return true;
}

/*
 * One of our own keys written (set, or deleted with deleted): the next
 * version, the bounds, stored, remembered as a change and queued for
 * push. The caller checked the key and value.
 */
int sb_apply_local(sb_engine *e, const uint8_t *key, size_t key_len,
                   const uint8_t *value, size_t value_len, bool deleted,
                   uint64_t now)
{
    sb_peer *s = e->self;
    uint64_t before = s->max_version;
    uint64_t version = before + 1;
    if (version <= e->version_base)
        version = e->version_base + 1;
    sb_key_entry k = { key, key_len, version, deleted, value, value_len };
    if (!sb_apply_within_bounds(e, s, &k))
        return SB_ELIMIT;
    bool was_live;
    if (!sb_peer_put_key(s, key, key_len, value, value_len, k.version,
                         deleted, now, &was_live))
        return SB_ENOMEM;
    if (deleted)
        sb_liveness_note_tombstone(e, s, now);
    sb_recent_note(e, s, now, before); /* touches the summary */
    sb_push_queue(e, before, now);
    return SB_OK;
}

/*
 * A reset delta: the sender collected tombstones we may never have seen,
 * so our copy of n restarts from the sender's. Keys that the delta holds
 * at the same version are kept (no event); the others go. Our keys and
 * the delta's are both in version order (a version is one key's), so one
 * pass over each finds the kept ones.
 */
static void apply_reset(sb_engine *e, sb_peer *n, const sb_delta *d)
{
    sb_cursor c = { d->keys, d->end };
    uint64_t left = d->nkeys;
    sb_key_entry ke;
    bool have = false; /* ke holds the delta's next key */
    for (uint32_t i = 0; i < n->nkeys;) {
        sb_key *k = n->keys[i];
        while (left && (!have || ke.version < k->version)) {
            sb_key_next(&c, &ke);
            left--;
            have = true;
        }
        if (have && ke.version == k->version && ke.key_len == k->key_len &&
            memcmp(ke.key, k->data, k->key_len) == 0) {
            i++;
            continue;
        }
        if (!k->deleted)
            sb_liveness_emit(e, SB_EVENT_DELETE, n, k);
        sb_peer_remove_key(n, i);
    }
    n->max_version = 0;
    for (uint32_t i = 0; i < n->nkeys; i++)
        if (n->keys[i]->version > n->max_version)
            n->max_version = n->keys[i]->version;
    n->gc_version = d->gc_version;
    if (n->voter)
        e->rejudge = e->remark = true; /* some of its verdicts may be
                                          gone */
}

/* Orders keys by version (a version is one key's). */
static int apply_cmp_version(const void *a, const void *b)
{
    const sb_key *x = *(sb_key *const *)a, *y = *(sb_key *const *)b;
    return (x->version > y->version) - (x->version < y->version);
}

/* A reset that a bound stopped at the key of version `stop` holds every
 * version below it, and the kept keys above it, which would leave a hole
 * under max_version: they go too, and come again with the rest. */
static void apply_cut_reset(sb_engine *e, sb_peer *n, uint64_t stop)
{
    for (uint32_t i = n->nkeys; i-- > 0;) {
        sb_key *k = n->keys[i];
        if (k->version < stop)
            continue;
        if (!k->deleted)
            sb_liveness_emit(e, SB_EVENT_DELETE, n, k);
        sb_peer_remove_key(n, i);
    }
    if (n->voter)
        e->rejudge = e->remark = true; /* some of its verdicts may be
                                          gone */
}

/* Whether n takes delta d as a reset: only past what we have seen.
 * Holding every version up to the sender's gc_version, we have seen the
 * tombstones it collected (our copy may even be newer than the
 * sender's), and the delta is taken as a normal one (docs/protocol.md,
 * section 9.3). */
static bool apply_resets(const sb_peer *n, const sb_delta *d)
{
    return d->reset && d->gc_version > n->gc_version &&
           d->gc_version > n->max_version;
}

/*
 * Whether n must refuse delta d (not a reset): a gap; or the sender
 * collected tombstones past our max that we never saw: only a reset may
 * bring us past them (an offered or pushed delta is not computed from
 * our digest and may skip them); or we are part way through a reset (our
 * copy is clean up to gc_version but holds only a prefix) and the sender
 * has neither collected that far nor seen that far: it may still hold
 * values those collected tombstones deleted. (A sender that holds
 * versions up to our gc_version has seen every tombstone up to it, so it
 * is safe even if it collected none.)
 */
static bool apply_gap(const sb_peer *n, const sb_delta *d)
{
    return d->from_version > n->max_version ||
           (d->gc_version > n->max_version && d->gc_version > n->gc_version) ||
           (n->max_version < n->gc_version && d->gc_version < n->gc_version &&
            d->to_version < n->gc_version);
}

/* Whether apply_delta() would refuse d for a gap, n being the record d
 * speaks of, and change nothing on the way: n is not ourselves, at d's
 * generation, with d's heartbeat and leaving bit already, and the
 * sender may speak of it. */
bool sb_apply_refuses(const sb_engine *e, const sb_peer *n,
                      const sb_delta *d)
{
    return !n->self && n->generation == d->generation &&
           d->heartbeat <= n->heartbeat && (n->leaving || !d->leaving) &&
           apply_may_speak(e, d, false) && !apply_resets(n, d) &&
           apply_gap(n, d);
}

/* Takes one delta; false if it was refused for a gap (counted). */
static bool apply_delta(sb_engine *e, const sb_delta *d, uint64_t now)
{
    bool created;
    sb_peer *n = apply_peer(e, d, now, &created);
    if (!n)
        return true;
    sb_state_touch(&e->st, n);
    bool reset = apply_resets(n, d);
    if (reset) {
        apply_reset(e, n, d);
    } else if (apply_gap(n, d)) {
        e->stats.drops[SB_DROP_GAP]++;
        return false;
    }
    uint64_t before = n->max_version;
    sb_cursor c = { d->keys, d->end };
    bool complete = true, changed = false;
    uint64_t stop = 0; /* the version of a key a bound refused */
    for (uint64_t i = 0; i < d->nkeys; i++) {
        sb_key_entry k;
        sb_key_next(&c, &k);
        long have = reset ? sb_peer_find_key(n, k.key, k.key_len) : -1;
        if (have >= 0 && n->keys[have]->version == k.version)
            continue; /* kept through the reset */
        if (!reset && k.version <= n->max_version)
            continue;
        if (!sb_apply_within_bounds(e, n, &k) ||
            !sb_apply_store_key(e, n, &k, now)) {
            complete = false;
            stop = k.version;
            break;
        }
        changed = true;
    }
    if (reset) {
        if (!complete)
            apply_cut_reset(e, n, stop);
        /* keys are in version order; the kept ones sit among them */
        n->max_version = complete ? d->to_version : stop - 1;
        /* re-sort: kept keys and appended ones may interleave (not by
         * insertion: appended keys below thousands of kept ones would
         * take milliseconds a datagram) */
        if (n->nkeys > 1)
            qsort(n->keys, n->nkeys, sizeof(*n->keys), apply_cmp_version);
        changed = true;
    } else if (complete && d->to_version > n->max_version) {
        n->max_version = d->to_version;
    }
    if (changed)
        sb_recent_note(e, n, now, reset ? NO_DELTA : before);
    return true;
}

/* Takes every delta of m; news from a member is told on at once to a
 * few peers (announce.c, sb_announce()): those the push trees
 * missed may lack it too. Not while writers push past their fair share,
 * nor while our pushes wait for the cap: then every summary differs, and
 * those SYNs and their answers, full of recent news most peers hold,
 * would take the cap that the pushes need (the rounds and a gap's
 * catch-up repair instead). False if a delta was refused for a gap (each
 * counted in SB_DROP_GAP). */
bool sb_apply_deltas(sb_engine *e, const sb_msg *m, uint64_t now)
{
    uint32_t head = e->recent_head;
    bool whole = true;
    sb_cursor c = { m->deltas, m->end };
    for (uint64_t i = 0; i < m->ndeltas; i++) {
        sb_delta d;
        sb_delta_next(&c, &d);
        whole &= apply_delta(e, &d, now);
    }
    if (e->recent_head != head && e->from_member && e->wire->announce &&
        !sb_push_saturated(e, now) && !sb_push_capped(e, now))
        e->announce = true;
    return whole;
}

