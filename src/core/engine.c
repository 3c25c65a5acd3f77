/*
 * The protocol engine (see engine.h for how to drive it).
 *
 * Architecture. A gossip round (round()) bumps our heartbeat, runs the
 * failure detector, forgets long-dead nodes, collects old tombstones and
 * starts one Scuttlebutt exchange with a random live peer (plus, by
 * chance, a down peer and a seed). An exchange is three messages:
 *
 *   initiator                         responder
 *      | SYN:  digest of what I hold     |
 *      |-------------------------------->|  adopt newer heartbeats
 *      | ACK:  digest entries where I am |
 *      |       behind (or have a newer   |
 *      |       heartbeat) + deltas of    |
 *      |       what you lack             |
 *      |<--------------------------------|
 *      | ACK2: deltas of what you asked  |
 *      |-------------------------------->|
 *
 * Heartbeats travel in digest entries, so liveness evidence spreads
 * transitively; key data travels in deltas, most-out-of-date node first,
 * each node's keys in version order, never past max_message_size.
 * docs/protocol.md tells the whole story.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fd.h"
#include "rng.h"
#include "state.h"

/* A node delta to send: the node, and what the receiver already has. */
typedef struct cand {
    sb_node *n;
    uint64_t from;
    uint64_t score;   /* how far behind the receiver is; larger goes first */
    uint64_t tie;     /* random tie-breaker */
    bool reset;
    /* what fits the message, as planned by fit_delta() */
    uint32_t first;   /* index of the first key to send */
    uint32_t nkeys;
    uint64_t to;
} cand;

/* Digest entries to send; requests (where we are behind) come first. */
typedef struct plan {
    sb_digest_entry *req;
    uint32_t nreq;
    sb_digest_entry *ahead;   /* our newer heartbeats */
    uint32_t nahead;
    cand *cands;
    uint32_t ncands;
} plan;

struct sb_engine {
    sb_engine_config cfg;
    char *cluster;            /* copied config strings */
    uint32_t cluster_id;
    sb_rng rng;
    sb_state st;
    sb_node *self;
    uint64_t next_round;
    uint64_t last_round;
    uint32_t epoch;           /* for sb_node.mark */
    size_t max_key_entry;     /* largest key entry that fits a message */
    sb_stats stats;

    const char *seeds[SB_MAX_SEEDS];
    size_t nseeds;

    uint8_t *buf;             /* max_message_size bytes */
    uint32_t *order;          /* scratch: node indices */
    plan p;                   /* scratch: arrays sized to scratch_cap */
    uint32_t scratch_cap;
};

#define MS 1000000ull

void sb_engine_config_init(sb_engine_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->cluster = "default";
    cfg->interval_ns = 500 * MS;
    cfg->max_message_size = 512;
    cfg->phi_threshold = 8.0;
    cfg->dead_grace_ns = 3600ull * 1000 * MS;
    cfg->tombstone_grace_ns = 3600ull * 1000 * MS;
    cfg->fd_window = 1000;
    cfg->max_nodes = 4096;
    cfg->max_keys_per_node = 4096;
    cfg->max_state_bytes = 1 << 20;
    cfg->rng_seed = 1;
}

/* ---- small helpers ---------------------------------------------------- */

static void emit(sb_engine *e, sb_event_type type, const sb_node *n,
                 const sb_key *k)
{
    if (!e->cfg.on_event)
        return;
    sb_event ev = {
        .type = type,
        .addr = n->addr,
        .generation = n->generation,
        .status = (sb_status)n->status,
    };
    if (k) {
        ev.key = k->data;
        ev.key_len = k->key_len;
        if (type == SB_EVENT_UPDATE) {
            ev.value = sb_key_value(k);
            ev.value_len = k->value_len;
        }
    }
    e->cfg.on_event(e->cfg.userdata, &ev);
}

static void set_status(sb_engine *e, sb_node *n, sb_status s, uint64_t now)
{
    sb_status old = (sb_status)n->status;
    if (old == s)
        return;
    n->status = (uint8_t)s;
    n->status_since = now;
    if (s == SB_STATUS_LIVE)
        emit(e, SB_EVENT_JOIN, n, NULL);
    else if (old == SB_STATUS_LIVE)
        emit(e, SB_EVENT_LEAVE, n, NULL);
}

static void send_packet(sb_engine *e, const char *to, sb_writer *w)
{
    size_t len = (size_t)(w->p - w->start);
    e->stats.packets_out++;
    e->stats.bytes_out += len;
    e->cfg.send(e->cfg.userdata, to, w->start, len);
}

static sb_writer new_writer(sb_engine *e)
{
    return (sb_writer){ e->buf, e->buf, e->buf + e->cfg.max_message_size };
}

static sb_digest_entry entry_of(const sb_node *n)
{
    return (sb_digest_entry){ n->id, n->heartbeat, n->leaving,
                              n->max_version, n->gc_version };
}

/* Makes the scratch arrays hold at least one slot per known node. */
static bool grow_scratch(sb_engine *e)
{
    uint32_t need = e->st.count + 1;
    if (need <= e->scratch_cap)
        return true;
    uint32_t cap = e->scratch_cap ? e->scratch_cap : 16;
    while (cap < need)
        cap *= 2;
    uint32_t *order = realloc(e->order, cap * sizeof(*order));
    if (order)
        e->order = order;
    sb_digest_entry *req = realloc(e->p.req, cap * sizeof(*req));
    if (req)
        e->p.req = req;
    sb_digest_entry *ahead = realloc(e->p.ahead, cap * sizeof(*ahead));
    if (ahead)
        e->p.ahead = ahead;
    cand *cands = realloc(e->p.cands, cap * sizeof(*cands));
    if (cands)
        e->p.cands = cands;
    if (!order || !req || !ahead || !cands)
        return false;
    e->scratch_cap = cap;
    return true;
}

/* ---- creation ---------------------------------------------------------- */

/* The most bytes a delta of our own node spends besides its keys, in an
 * ACK (the larger frame): header, two counts, node header at worst. */
static size_t own_overhead(size_t addr_len)
{
    return SB_HEADER_SIZE + 2 * 3 /* counts */ + 1 + addr_len +
           6 * SB_VARINT_MAX + 1;
}

int sb_engine_new(const sb_engine_config *cfg, uint64_t now, sb_engine **out)
{
    *out = NULL;
    if (!cfg || !cfg->send || !cfg->addr || cfg->generation == 0 ||
        cfg->interval_ns == 0 || !(cfg->phi_threshold > 0.0) ||
        cfg->fd_window == 0 || cfg->max_nodes < 1 ||
        cfg->max_message_size > 65507)
        return SB_ECONFIG;
    size_t alen = strlen(cfg->addr);
    if (alen == 0 || alen > SB_MAX_ADDR_LEN)
        return SB_EADDR;
    /* the smallest useful message carries one one-byte key */
    if (cfg->max_message_size <
        own_overhead(alen) + sb_key_entry_size(1, 0, UINT64_MAX))
        return SB_ECONFIG;

    sb_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return SB_ENOMEM;
    e->cfg = *cfg;
    const char *cluster = cfg->cluster ? cfg->cluster : "";
    e->cluster = malloc(strlen(cluster) + 1);
    if (e->cluster)
        strcpy(e->cluster, cluster);
    e->buf = malloc(cfg->max_message_size);
    sb_state_init(&e->st);
    if (!e->cluster || !e->buf || !grow_scratch(e))
        goto oom;
    e->cfg.cluster = e->cluster;
    e->cluster_id = sb_cluster_id(e->cluster);
    sb_rng_seed(&e->rng, cfg->rng_seed);
    e->max_key_entry = cfg->max_message_size - own_overhead(alen);

    e->self = sb_state_add(&e->st, cfg->addr, alen, cfg->generation);
    if (!e->self)
        goto oom;
    e->cfg.addr = e->self->addr;
    e->self->self = true;
    e->self->status = SB_STATUS_LIVE;
    e->self->heartbeat = 1;
    e->self->status_since = now;
    e->next_round = now + sb_rng_below(&e->rng, cfg->interval_ns);
    e->last_round = now;
    *out = e;
    return SB_OK;
oom:
    sb_engine_free(e);
    return SB_ENOMEM;
}

void sb_engine_free(sb_engine *e)
{
    if (!e)
        return;
    sb_state_free(&e->st);
    free(e->cluster);
    free(e->buf);
    free(e->order);
    free(e->p.req);
    free(e->p.ahead);
    free(e->p.cands);
    free(e);
}

/* ---- learning about nodes --------------------------------------------- */

/* A heartbeat (and leaving bit) of a node we know, at the same generation. */
static void observe(sb_engine *e, sb_node *n, uint64_t hb, bool leaving,
                    uint64_t now)
{
    if (n->self)
        return;
    if (leaving && !n->leaving) {
        n->leaving = true;
        n->changed_at = now;
        set_status(e, n, SB_STATUS_LEFT, now);
    }
    if (hb <= n->heartbeat)
        return;
    n->heartbeat = hb;
    switch ((sb_status)n->status) {
    case SB_STATUS_LIVE:
        sb_fd_heartbeat(&n->fd, now, e->cfg.fd_window);
        break;
    case SB_STATUS_JOINING:
    case SB_STATUS_DOWN:
        /* proof of life: start (again) with a fresh window */
        sb_fd_reset(&n->fd, now, 2 * e->cfg.interval_ns);
        set_status(e, n, SB_STATUS_LIVE, now);
        break;
    case SB_STATUS_LEFT:
        break;
    }
}

/* Forgets a node's old generation: its keys are gone, it is gone. */
static void drop_generation(sb_engine *e, sb_node *n, uint64_t now)
{
    for (uint32_t i = 0; i < n->nkeys; i++)
        if (!n->keys[i]->deleted)
            emit(e, SB_EVENT_DELETE, n, n->keys[i]);
    if (n->status == SB_STATUS_LIVE)
        set_status(e, n, SB_STATUS_DOWN, now);
    sb_state_remove(&e->st, n);
}

/* Finds or creates the node a delta speaks of; NULL if the delta must be
 * ignored (stale generation, zombie, bound reached). */
static sb_node *node_for_delta(sb_engine *e, const sb_node_delta *d,
                               uint64_t now)
{
    sb_node *n = sb_state_find_addr(&e->st, d->addr, d->addr_len);
    if (n && (n->self || n->generation > d->generation))
        return NULL;
    if (n && n->generation == d->generation) {
        observe(e, n, d->heartbeat, d->leaving, now);
        return n;
    }
    uint64_t id = sb_node_id(d->addr, d->addr_len, d->generation);
    if (sb_state_is_forgotten(&e->st, id, d->heartbeat)) {
        e->stats.drops[SB_DROP_ZOMBIE]++;
        return NULL;
    }
    if (!n && e->st.count >= e->cfg.max_nodes) {
        e->stats.drops[SB_DROP_LIMIT_NODES]++;
        return NULL;
    }
    if (n)
        drop_generation(e, n, now);
    n = sb_state_add(&e->st, d->addr, d->addr_len, d->generation);
    if (!n || !grow_scratch(e))
        return n;
    n->heartbeat = d->heartbeat;
    n->status_since = now;
    n->changed_at = now;
    if (d->leaving) {
        n->leaving = true;
        n->status = SB_STATUS_LEFT;
    }
    return n;
}

/* Checks the bounds before storing key entry k into n. */
static bool within_bounds(sb_engine *e, const sb_node *n,
                          const sb_key_entry *k)
{
    long old = sb_node_find_key(n, k->key, k->key_len);
    if (old < 0 && n->nkeys >= e->cfg.max_keys_per_node) {
        e->stats.drops[SB_DROP_LIMIT_KEYS]++;
        return false;
    }
    size_t old_bytes = old < 0 ? 0
                               : n->keys[old]->key_len +
                                     n->keys[old]->value_len;
    if (n->state_bytes - old_bytes + k->key_len + k->value_len >
        e->cfg.max_state_bytes) {
        e->stats.drops[SB_DROP_LIMIT_BYTES]++;
        return false;
    }
    return true;
}

static bool store_key(sb_engine *e, sb_node *n, const sb_key_entry *k,
                      uint64_t now)
{
    bool was_live;
    if (!sb_node_put_key(n, k->key, k->key_len, k->value, k->value_len,
                         k->version, k->deleted, now, &was_live))
        return false;
    sb_key *stored = n->keys[n->nkeys - 1];
    if (!k->deleted)
        emit(e, SB_EVENT_UPDATE, n, stored);
    else if (was_live)
        emit(e, SB_EVENT_DELETE, n, stored);
    return true;
}

/* True if the delta holds key k at exactly version v. */
static bool delta_has(const sb_node_delta *d, const sb_key *k)
{
    sb_cursor c = { d->keys, d->end };
    for (uint64_t i = 0; i < d->nkeys; i++) {
        sb_key_entry ke;
        sb_key_next(&c, &ke);
        if (ke.version == k->version && ke.key_len == k->key_len &&
            memcmp(ke.key, k->data, k->key_len) == 0)
            return true;
    }
    return false;
}

/* A reset delta: the sender collected tombstones we may never have seen,
 * so our copy of n restarts from the sender's. Keys that the delta holds
 * at the same version are kept (no event); the others go. */
static void reset_node(sb_engine *e, sb_node *n, const sb_node_delta *d)
{
    for (uint32_t i = n->nkeys; i-- > 0;) {
        sb_key *k = n->keys[i];
        if (delta_has(d, k))
            continue;
        if (!k->deleted)
            emit(e, SB_EVENT_DELETE, n, k);
        sb_node_remove_key(n, i);
    }
    n->max_version = 0;
    for (uint32_t i = 0; i < n->nkeys; i++)
        if (n->keys[i]->version > n->max_version)
            n->max_version = n->keys[i]->version;
    n->gc_version = d->gc_version;
}

static void apply_delta(sb_engine *e, const sb_node_delta *d, uint64_t now)
{
    sb_node *n = node_for_delta(e, d, now);
    if (!n)
        return;
    bool reset = d->reset && d->gc_version > n->gc_version;
    if (reset) {
        reset_node(e, n, d);
    } else if (d->from_version > n->max_version) {
        e->stats.drops[SB_DROP_GAP]++;
        return;
    }
    sb_cursor c = { d->keys, d->end };
    bool complete = true, changed = false;
    for (uint64_t i = 0; i < d->nkeys; i++) {
        sb_key_entry k;
        sb_key_next(&c, &k);
        long have = reset ? sb_node_find_key(n, k.key, k.key_len) : -1;
        if (have >= 0 && n->keys[have]->version == k.version)
            continue; /* kept through the reset */
        if (!reset && k.version <= n->max_version)
            continue;
        if (!within_bounds(e, n, &k) || !store_key(e, n, &k, now)) {
            complete = false;
            break;
        }
        changed = true;
    }
    if (reset) {
        /* keys are in version order; the kept ones sit among them */
        uint64_t top = complete ? d->to_version : n->max_version;
        n->max_version = top;
        /* re-sort: kept keys and appended ones may interleave */
        for (uint32_t i = 1; i < n->nkeys; i++) {
            sb_key *k = n->keys[i];
            uint32_t j = i;
            for (; j > 0 && n->keys[j - 1]->version > k->version; j--)
                n->keys[j] = n->keys[j - 1];
            n->keys[j] = k;
        }
        changed = true;
    } else if (complete && d->to_version > n->max_version) {
        n->max_version = d->to_version;
    }
    if (changed)
        n->changed_at = now;
}

static void apply_deltas(sb_engine *e, const sb_msg *m, uint64_t now)
{
    sb_cursor c = { m->nodes, m->end };
    for (uint64_t i = 0; i < m->nnodes; i++) {
        sb_node_delta d;
        sb_node_next(&c, &d);
        apply_delta(e, &d, now);
    }
}

/* ---- building messages ------------------------------------------------- */

/* Does the receiver, whose digest says (max, gc), need our copy of n
 * replayed from scratch? Only if we collected tombstones past its max. */
static bool needs_reset(const sb_node *n, uint64_t max, uint64_t gc)
{
    return n->gc_version > max && n->gc_version > gc;
}

/* Queues a delta of n for a receiver whose digest says (max, gc). */
static void add_cand(sb_engine *e, plan *p, sb_node *n, uint64_t max,
                     uint64_t gc, bool unknown)
{
    bool reset = needs_reset(n, max, gc);
    uint64_t from = unknown || reset ? 0 : max;
    if (!unknown && !reset && n->max_version <= max)
        return;
    cand *c = &p->cands[p->ncands++];
    c->n = n;
    c->from = from;
    c->reset = reset;
    /* a node the receiver lacks entirely ranks above any key backlog */
    c->score = unknown ? UINT64_MAX : n->max_version - from;
    c->tie = sb_rng_next(&e->rng);
}

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->tie < y->tie ? -1 : x->tie > y->tie;
}

static sb_node_delta delta_header(const cand *c, uint64_t nkeys, uint64_t to)
{
    const sb_node *n = c->n;
    return (sb_node_delta){
        .addr = n->addr, .addr_len = n->addr_len,
        .generation = n->generation, .heartbeat = n->heartbeat,
        .leaving = n->leaving, .reset = c->reset,
        .from_version = c->from, .to_version = to,
        .gc_version = n->gc_version, .nkeys = nkeys,
    };
}

/*
 * Plans the delta of candidate c into `room` bytes: the longest prefix of
 * its keys (in version order, so the receiver is left without a gap) that
 * fits. Returns the bytes needed, or 0 if keys wait and none fits.
 */
static size_t fit_delta(cand *c, size_t room)
{
    const sb_node *n = c->n;
    uint32_t i0 = sb_node_keys_after(n, c->from), i = i0;
    size_t keys = 0;
    for (; i < n->nkeys; i++) {
        const sb_key *k = n->keys[i];
        size_t ks = sb_key_entry_size(k->key_len, k->value_len, k->version);
        sb_node_delta h = delta_header(c, i - i0 + 1, n->max_version);
        if (sb_node_header_size(&h) + keys + ks > room)
            break;
        keys += ks;
    }
    if (i == i0 && i0 < n->nkeys)
        return 0;
    c->first = i0;
    c->nkeys = i - i0;
    c->to = i == n->nkeys ? n->max_version : n->keys[i - 1]->version;
    sb_node_delta h = delta_header(c, c->nkeys, c->to);
    size_t need = sb_node_header_size(&h) + keys;
    return need <= room ? need : 0;
}

static void write_delta(sb_writer *w, const cand *c)
{
    sb_node_delta h = delta_header(c, c->nkeys, c->to);
    sb_put_node_header(w, &h);
    for (uint32_t i = 0; i < c->nkeys; i++) {
        const sb_key *k = c->n->keys[c->first + i];
        sb_key_entry ke = { k->data, k->key_len, k->version, k->deleted,
                            sb_key_value(k), k->value_len };
        sb_put_key_entry(w, &ke);
    }
}

/* The bytes of the smallest useful delta of c: its header and first key. */
static size_t min_delta_size(const cand *c)
{
    const sb_node *n = c->n;
    uint32_t i0 = sb_node_keys_after(n, c->from);
    sb_node_delta h = delta_header(c, 1, n->max_version);
    size_t need = sb_node_header_size(&h);
    if (i0 < n->nkeys)
        need += sb_key_entry_size(n->keys[i0]->key_len,
                                  n->keys[i0]->value_len,
                                  n->keys[i0]->version);
    return need;
}

/*
 * Writes a message of `type` (ACK or ACK2) from a plan: digest entries
 * (ACK only: requests first, then newer heartbeats) and node deltas, never
 * past max_message_size. Returns false if there is nothing to send.
 */
static bool write_plan(sb_engine *e, sb_writer *w, int type, plan *p)
{
    size_t room = e->cfg.max_message_size - SB_HEADER_SIZE;
    size_t ncount = 3; /* node count varint: at most 3 bytes here */
    size_t dcount = type == SB_MSG_ACK ? 3 : 0;
    if (room < ncount + dcount)
        return false;
    room -= ncount + dcount;

    qsort(p->cands, p->ncands, sizeof(cand), cmp_cand);

    /* requests: at most half the room while deltas wait, and never so
     * many that the best delta cannot start */
    uint32_t nreq = 0, nahead = 0;
    if (type == SB_MSG_ACK) {
        size_t budget = room;
        if (p->ncands) {
            size_t need = min_delta_size(&p->cands[0]);
            budget = room / 2;
            if (need < room && room - need < budget)
                budget = room - need;
        }
        size_t used = 0;
        for (; nreq < p->nreq; nreq++) {
            size_t s = sb_digest_entry_size(&p->req[nreq]);
            if (used + s > budget)
                break;
            used += s;
        }
        room -= used;
    }

    /* deltas, best first; a candidate that does not fit is skipped */
    uint32_t ndelta = 0;
    size_t delta_bytes = 0;
    for (uint32_t i = 0; i < p->ncands; i++) {
        size_t need = fit_delta(&p->cands[i], room - delta_bytes);
        if (!need)
            continue;
        delta_bytes += need;
        p->cands[ndelta++] = p->cands[i];
    }
    room -= delta_bytes;

    /* newer heartbeats fill what is left */
    if (type == SB_MSG_ACK) {
        for (; nahead < p->nahead; nahead++) {
            size_t s = sb_digest_entry_size(&p->ahead[nahead]);
            if (s > room)
                break;
            room -= s;
        }
    }
    if (nreq + nahead + ndelta == 0)
        return false;

    sb_put_header(w, type, e->cluster_id);
    if (type == SB_MSG_ACK) {
        sb_put_varint(w, nreq + nahead);
        for (uint32_t i = 0; i < nreq; i++)
            sb_put_digest_entry(w, &p->req[i]);
        for (uint32_t i = 0; i < nahead; i++)
            sb_put_digest_entry(w, &p->ahead[i]);
    }
    sb_put_varint(w, ndelta);
    for (uint32_t i = 0; i < ndelta; i++)
        write_delta(w, &p->cands[i]);
    return true;
}

/* ---- the exchange ----------------------------------------------------- */

/* Moves a random one of ord[i..end) to ord[i] and returns it. */
static uint32_t pick(sb_engine *e, uint32_t *ord, uint32_t i, uint32_t end)
{
    uint32_t j = i + (uint32_t)sb_rng_below(&e->rng, end - i);
    uint32_t t = ord[i];
    ord[i] = ord[j];
    ord[j] = t;
    return ord[i];
}

/*
 * Writes the digest of a SYN: ourselves first, then nodes whose keys or
 * leaving bit changed in the last few rounds (in random order, at most
 * half the room, so news spreads fast), then a uniformly random sample of
 * all the others. Every node has the same chance in the random part, so
 * none is starved however many there are. The COMPLETE flag says every
 * known node is listed.
 */
static void write_syn(sb_engine *e, sb_writer *w, uint64_t now)
{
    size_t room = e->cfg.max_message_size - SB_HEADER_SIZE - 1 - 3;
    size_t used = 0;
    uint32_t count = e->st.count, n = 0, recent = 0;
    uint32_t *ord = e->order;
    sb_digest_entry *list = e->p.req; /* scratch */

    /* ord = [recently changed ... | the rest ...], self excluded */
    uint32_t rest = count - 1;
    for (uint32_t i = 0; i < count; i++) {
        const sb_node *x = e->st.nodes[i];
        if (x->self)
            continue;
        if (x->changed_at + 4 * e->cfg.interval_ns >= now)
            ord[recent++] = i;
        else
            ord[--rest] = i;
    }
    list[n++] = entry_of(e->self);
    used += sb_digest_entry_size(&list[0]);

    uint32_t i = 0;
    for (; i < recent; i++) {
        sb_digest_entry d = entry_of(e->st.nodes[pick(e, ord, i, recent)]);
        size_t s = sb_digest_entry_size(&d);
        if (used + s > room / 2)
            break;
        used += s;
        list[n++] = d;
    }
    for (; i < count - 1; i++) {
        sb_digest_entry d = entry_of(e->st.nodes[pick(e, ord, i, count - 1)]);
        size_t s = sb_digest_entry_size(&d);
        if (used + s > room)
            break;
        used += s;
        list[n++] = d;
    }
    sb_put_header(w, SB_MSG_SYN, e->cluster_id);
    sb_put_u8(w, n == count ? SB_SYN_COMPLETE : 0);
    sb_put_varint(w, n);
    for (uint32_t k = 0; k < n; k++)
        sb_put_digest_entry(w, &list[k]);
}

static void handle_syn(sb_engine *e, const char *from, const sb_msg *m,
                       uint64_t now)
{
    plan *p = &e->p;
    p->nreq = p->nahead = p->ncands = 0;
    uint32_t epoch = ++e->epoch;
    sb_cursor c = { m->digest, m->end };
    for (uint64_t i = 0; i < m->ndigest; i++) {
        sb_digest_entry d;
        sb_digest_next(&c, &d);
        sb_node *n = sb_state_find_id(&e->st, d.id);
        if (!n) {
            /* unknown: ask for it in full, unless it is a forgotten one */
            if (d.heartbeat && p->nreq < e->scratch_cap &&
                !sb_state_is_forgotten(&e->st, d.id, d.heartbeat))
                p->req[p->nreq++] = (sb_digest_entry){ .id = d.id };
            continue;
        }
        if (n->mark == epoch)
            continue; /* listed twice */
        n->mark = epoch;
        if (d.heartbeat == 0) {
            add_cand(e, p, n, 0, 0, true);
            continue;
        }
        observe(e, n, d.heartbeat, d.leaving, now);
        add_cand(e, p, n, d.max_version, d.gc_version, false);
        bool behind = d.max_version > n->max_version && !n->self;
        if (behind && p->nreq < e->scratch_cap)
            p->req[p->nreq++] = entry_of(n);
        else if (n->heartbeat > d.heartbeat || (n->leaving && !d.leaving))
            p->ahead[p->nahead++] = entry_of(n);
    }
    if (m->flags & SB_SYN_COMPLETE) {
        for (uint32_t i = 0; i < e->st.count; i++) {
            sb_node *n = e->st.nodes[i];
            if (n->mark != epoch)
                add_cand(e, p, n, 0, 0, true);
        }
    }
    sb_writer w = new_writer(e);
    if (write_plan(e, &w, SB_MSG_ACK, p))
        send_packet(e, from, &w);
}

static void handle_ack(sb_engine *e, const char *from, const sb_msg *m,
                       uint64_t now)
{
    apply_deltas(e, m, now);
    plan *p = &e->p;
    p->nreq = p->nahead = p->ncands = 0;
    uint32_t epoch = ++e->epoch;
    sb_cursor c = { m->digest, m->end };
    for (uint64_t i = 0; i < m->ndigest; i++) {
        sb_digest_entry d;
        sb_digest_next(&c, &d);
        sb_node *n = sb_state_find_id(&e->st, d.id);
        if (!n || n->mark == epoch)
            continue;
        n->mark = epoch;
        if (d.heartbeat == 0) {
            add_cand(e, p, n, 0, 0, true);
            continue;
        }
        observe(e, n, d.heartbeat, d.leaving, now);
        add_cand(e, p, n, d.max_version, d.gc_version, false);
    }
    sb_writer w = new_writer(e);
    if (write_plan(e, &w, SB_MSG_ACK2, p))
        send_packet(e, from, &w);
}

int sb_engine_recv(sb_engine *e, const char *from, const uint8_t *buf,
                   size_t len, uint64_t now)
{
    e->stats.packets_in++;
    e->stats.bytes_in += len;
    if (!from || !buf) {
        e->stats.drops[SB_DROP_MALFORMED]++;
        return SB_EINVAL;
    }
    if (len > e->cfg.max_message_size) {
        e->stats.drops[SB_DROP_OVERSIZE]++;
        return SB_EINVAL;
    }
    sb_msg m;
    int drop = sb_msg_decode(buf, len, e->cluster_id, &m);
    if (drop >= 0) {
        e->stats.drops[drop]++;
        return SB_EINVAL;
    }
    if (!grow_scratch(e))
        return SB_ENOMEM;
    switch (m.type) {
    case SB_MSG_SYN:
        handle_syn(e, from, &m, now);
        break;
    case SB_MSG_ACK:
        handle_ack(e, from, &m, now);
        break;
    case SB_MSG_ACK2:
        apply_deltas(e, &m, now);
        break;
    }
    return SB_OK;
}

/* ---- the round -------------------------------------------------------- */

static void detect_failures(sb_engine *e, uint64_t now, uint64_t pause)
{
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_node *n = e->st.nodes[i];
        if (n->status != SB_STATUS_LIVE || n->self)
            continue;
        /* we could not hear anything while we were paused */
        if (pause) {
            n->fd.last_ns += pause;
            if (n->fd.last_ns > now)
                n->fd.last_ns = now;
        }
        if (sb_fd_phi(&n->fd, now) > e->cfg.phi_threshold)
            set_status(e, n, SB_STATUS_DOWN, now);
    }
}

static void collect_garbage(sb_engine *e, uint64_t now)
{
    for (uint32_t i = 0; i < e->st.count;) {
        sb_node *n = e->st.nodes[i];
        if (n->status != SB_STATUS_LIVE && !n->self &&
            now - n->status_since >= e->cfg.dead_grace_ns) {
            sb_state_forget(&e->st, n->id, n->heartbeat,
                            now + e->cfg.dead_grace_ns);
            sb_state_remove(&e->st, n);
            continue; /* the last node moved into slot i */
        }
        for (uint32_t k = n->nkeys; n->tombstones && k-- > 0;) {
            sb_key *key = n->keys[k];
            if (key->deleted &&
                now - key->deleted_at >= e->cfg.tombstone_grace_ns) {
                if (key->version > n->gc_version)
                    n->gc_version = key->version;
                sb_node_remove_key(n, k);
            }
        }
        i++;
    }
    sb_state_expire_forgotten(&e->st, now);
}

static void send_syn(sb_engine *e, const char *to, sb_writer *syn)
{
    if (strcmp(to, e->self->addr) != 0)
        send_packet(e, to, syn);
}

static bool is_seed(const sb_engine *e, const char *addr)
{
    for (size_t i = 0; i < e->nseeds; i++)
        if (strcmp(e->seeds[i], addr) == 0)
            return true;
    return false;
}

/*
 * Seeds. Alone (no live peer), we ask the callback for seeds again and
 * contact every one. Otherwise, as Cassandra does, if the peer of this
 * round was not a seed (or fewer nodes are live than there are seeds) we
 * contact a random seed with probability seeds / (live + unreachable),
 * so that a partitioned cluster heals through its seeds.
 */
static void gossip_seeds(sb_engine *e, const char *peer, uint32_t nlive,
                         uint32_t nunreach, sb_writer *syn)
{
    if (!nlive) {
        if (e->cfg.seeds) {
            size_t n = e->cfg.seeds(e->cfg.userdata, e->seeds, SB_MAX_SEEDS);
            e->nseeds = n < SB_MAX_SEEDS ? n : SB_MAX_SEEDS;
        }
        for (size_t i = 0; i < e->nseeds; i++)
            if (e->seeds[i])
                send_syn(e, e->seeds[i], syn);
        return;
    }
    if (!e->nseeds || (is_seed(e, peer) && nlive >= e->nseeds))
        return;
    if (sb_rng_unit(&e->rng) < (double)e->nseeds / (double)(nlive + nunreach)) {
        const char *s = e->seeds[sb_rng_below(&e->rng, e->nseeds)];
        if (s)
            send_syn(e, s, syn);
    }
}

static void round_(sb_engine *e, uint64_t now)
{
    uint64_t since = now - e->last_round;
    uint64_t pause = since > 2 * e->cfg.interval_ns
                         ? since - e->cfg.interval_ns : 0;
    e->last_round = now;
    e->stats.rounds++;
    e->self->heartbeat++;

    detect_failures(e, now, pause);
    collect_garbage(e, now);

    /* live peers and unreachable ones (down, or not yet proven alive) */
    uint32_t nlive = 0, nunreach = 0;
    uint32_t *ord = e->order;
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_node *n = e->st.nodes[i];
        if (n->self || n->status == SB_STATUS_LEFT)
            continue;
        if (n->status == SB_STATUS_LIVE)
            ord[nlive++] = i;
    }
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_node *n = e->st.nodes[i];
        if (!n->self && (n->status == SB_STATUS_DOWN ||
                         n->status == SB_STATUS_JOINING))
            ord[nlive + nunreach++] = i;
    }

    sb_writer syn = new_writer(e);
    write_syn(e, &syn, now);

    const char *peer = NULL;
    if (nlive) {
        peer = e->st.nodes[ord[sb_rng_below(&e->rng, nlive)]]->addr;
        send_syn(e, peer, &syn);
    }
    if (nunreach &&
        sb_rng_unit(&e->rng) < (double)nunreach / (double)(nlive + 1)) {
        uint32_t j = nlive + (uint32_t)sb_rng_below(&e->rng, nunreach);
        send_syn(e, e->st.nodes[ord[j]]->addr, &syn);
    }
    gossip_seeds(e, peer, nlive, nunreach, &syn);
}

void sb_engine_tick(sb_engine *e, uint64_t now)
{
    if (now < e->next_round)
        return;
    round_(e, now);
    e->next_round += e->cfg.interval_ns;
    if (e->next_round <= now) /* late: do not replay missed rounds */
        e->next_round = now + e->cfg.interval_ns;
}

uint64_t sb_engine_next_deadline(const sb_engine *e)
{
    return e->next_round;
}

/* ---- local writes ----------------------------------------------------- */

static int local_write(sb_engine *e, const uint8_t *key, size_t key_len,
                       const uint8_t *value, size_t value_len, bool deleted,
                       uint64_t now)
{
    if (!key || key_len == 0 || key_len > SB_MAX_KEY_LEN ||
        (value_len && !value))
        return SB_EINVAL;
    if (e->self->leaving)
        return SB_ELEFT;
    sb_node *s = e->self;
    if (sb_key_entry_size(key_len, value_len, UINT64_MAX) > e->max_key_entry)
        return SB_ETOOBIG;
    long old = sb_node_find_key(s, key, key_len);
    if (deleted && (old < 0 || s->keys[old]->deleted))
        return SB_ENOTFOUND;
    if (!deleted && old >= 0 && !s->keys[old]->deleted &&
        s->keys[old]->value_len == value_len &&
        (value_len == 0 ||
         memcmp(sb_key_value(s->keys[old]), value, value_len) == 0))
        return SB_OK; /* unchanged */
    sb_key_entry k = { key, key_len, s->max_version + 1, deleted, value,
                       value_len };
    if (!within_bounds(e, s, &k))
        return SB_ELIMIT;
    bool was_live;
    if (!sb_node_put_key(s, key, key_len, value, value_len, k.version,
                         deleted, now, &was_live))
        return SB_ENOMEM;
    s->changed_at = now;
    return SB_OK;
}

int sb_engine_set(sb_engine *e, const uint8_t *key, size_t key_len,
                  const uint8_t *value, size_t value_len, uint64_t now)
{
    return local_write(e, key, key_len, value, value_len, false, now);
}

int sb_engine_del(sb_engine *e, const uint8_t *key, size_t key_len,
                  uint64_t now)
{
    return local_write(e, key, key_len, NULL, 0, true, now);
}

int sb_engine_leave(sb_engine *e, uint64_t now)
{
    if (e->self->leaving)
        return SB_ELEFT;
    e->self->leaving = true;
    e->self->heartbeat++;
    e->self->changed_at = now;
    return SB_OK;
}

/* ---- reads ------------------------------------------------------------ */

int sb_engine_get(const sb_engine *e, const char *addr, const uint8_t *key,
                  size_t key_len, const uint8_t **value, size_t *value_len)
{
    if (!addr || !key || !value || !value_len)
        return SB_EINVAL;
    const sb_node *n = sb_state_find_addr(&e->st, addr, strlen(addr));
    long i = n ? sb_node_find_key(n, key, key_len) : -1;
    if (i < 0 || n->keys[i]->deleted)
        return SB_ENOTFOUND;
    *value = sb_key_value(n->keys[i]);
    *value_len = n->keys[i]->value_len;
    return SB_OK;
}

static void fill_info(const sb_node *n, sb_node_info *out)
{
    out->addr = n->addr;
    out->generation = n->generation;
    out->heartbeat = n->heartbeat;
    out->max_version = n->max_version;
    out->keys = n->nkeys - n->tombstones;
    out->tombstones = n->tombstones;
    out->status = (sb_status)n->status;
    out->self = n->self;
}

size_t sb_engine_node_count(const sb_engine *e)
{
    return e->st.count;
}

int sb_engine_node(const sb_engine *e, size_t i, sb_node_info *out)
{
    if (i >= e->st.count || !out)
        return SB_ENOTFOUND;
    fill_info(e->st.nodes[i], out);
    return SB_OK;
}

int sb_engine_find(const sb_engine *e, const char *addr, sb_node_info *out)
{
    const sb_node *n =
        addr ? sb_state_find_addr(&e->st, addr, strlen(addr)) : NULL;
    if (!n || !out)
        return SB_ENOTFOUND;
    fill_info(n, out);
    return SB_OK;
}

double sb_engine_phi(const sb_engine *e, const char *addr, uint64_t now)
{
    const sb_node *n =
        addr ? sb_state_find_addr(&e->st, addr, strlen(addr)) : NULL;
    if (!n || n->self || n->status != SB_STATUS_LIVE)
        return -1.0;
    return sb_fd_phi(&n->fd, now);
}

void sb_engine_stats(const sb_engine *e, sb_stats *out)
{
    *out = e->stats;
    memset(out->nodes, 0, sizeof(out->nodes));
    for (uint32_t i = 0; i < e->st.count; i++)
        out->nodes[e->st.nodes[i]->status]++;
}

const char *sb_engine_addr(const sb_engine *e)
{
    return e->self->addr;
}

uint64_t sb_engine_generation(const sb_engine *e)
{
    return e->self->generation;
}

size_t sb_engine_memory(const sb_engine *e)
{
    return sizeof(*e) + e->cfg.max_message_size + strlen(e->cluster) + 1 +
           e->scratch_cap * (sizeof(uint32_t) + 2 * sizeof(sb_digest_entry) +
                             sizeof(cand)) +
           sb_state_memory(&e->st);
}
