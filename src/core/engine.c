/*
 * The protocol engine (see engine.h for how to drive it).
 *
 * Architecture. A gossip round (round_()) bumps our heartbeat, attends to
 * the nodes whose due time has come (conviction by the failure detector,
 * forgetting long-dead nodes, collecting old tombstones) and starts one
 * Scuttlebutt exchange with a random live peer (plus, by chance, a down
 * peer and a seed). An exchange is three messages:
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
 *
 * With SB_WIRE_REFERENCE the engine speaks the reference Go library's
 * format (refwire.h) and exchange instead (section "the reference
 * exchange", docs/compat.md): the same state, detector and events, but
 * digests of (address, version), liveness from the digests a peer sends
 * us itself, and one exchange per interval.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fd.h"
#include "keyring.h"
#include "refwire.h"
#include "rng.h"
#include "state.h"

/* A node delta to send: the node, and what the receiver already has. */
typedef struct cand {
    sb_peer *n;
    uint64_t from;    /* the receiver holds every version <= from */
    uint64_t to;      /* planned by fit_delta(): last version sent */
    uint32_t first;   /* planned: index of the first key to send */
    uint32_t nkeys;   /* planned: how many keys */
    uint32_t tie;     /* random tie-breaker for the order */
    bool reset;       /* replay n from scratch (see needs_reset) */
    bool whole;       /* the receiver lacks n entirely */
} cand;

/* What one ACK or ACK2 will carry, before it is sized to the message. */
typedef struct plan {
    uint64_t *unknown;        /* ids to ask for in full */
    uint32_t nunknown, max_unknown;
    sb_peer **req;            /* nodes where we are behind the peer */
    uint32_t nreq;
    sb_peer **ahead;          /* nodes where our heartbeat is newer */
    uint32_t nahead;
    cand *cands;              /* deltas the peer lacks */
    uint32_t ncands;
    uint32_t nwritten;        /* write_plan(): cands[0..nwritten) went out */
    bool fill;                /* top up the digest with random nodes */
    uint64_t wave;            /* PUSH: the push wave */
} plan;

/* A member of a push tree (section "eager push"); n is NULL for a root
 * we do not know as live. */
typedef struct tree_slot {
    uint64_t key, id;
    sb_peer *n;
} tree_slot;

/* A digest entry of a received message, with the node it names (NULL if
 * unknown). */
typedef struct entry_ref {
    sb_digest_entry d;
    sb_peer *n;
} entry_ref;

/* Nodes whose keys or leaving bit changed lately: SYNs list them first,
 * and an ACK offers their fresh keys to an initiator that did not list
 * them (from `before`, the version peers most likely hold; NO_DELTA when
 * there is nothing to offer). */
#define RECENT 64
#define WANTED 32
#define WAVES 256             /* push waves remembered, not forwarded twice */
/*
 * A node gossips EXCHANGES times per interval, a round every
 * interval / EXCHANGES, each round a SYN to one random peer. A SYN's
 * digest, and the entries an ACK adds of its own, take at most
 * DIGEST_SHARE percent of a message: the more peers a node hears from,
 * and the sooner, the more often fresh heartbeats reach it, for the same
 * bytes (docs/protocol.md, section 5, has the measurements).
 */
#ifndef EXCHANGES /* both overridable at build time for bench/ */
#define EXCHANGES 2
#endif
#ifndef DIGEST_SHARE
#define DIGEST_SHARE 45
#endif
typedef struct recent {
    uint64_t id;
    uint64_t at;
    uint64_t before;
} recent;
#define NO_DELTA UINT64_MAX

struct sb_engine {
    sb_engine_config cfg;
    char *cluster;            /* copy of the config string */
    uint32_t cluster_id;
    sb_rng rng;
    bool reference;           /* SB_WIRE_REFERENCE */
    uint64_t version_base;    /* our key versions are above it */
    sb_state st;
    sb_peer *self;
    uint32_t nstatus[4];      /* nodes by status, self included */
    uint64_t round_ns;        /* interval / EXCHANGES */
    uint64_t next_round;
    uint64_t last_round;
    uint64_t last_heard;      /* when a valid datagram last came in */
    uint32_t epoch;           /* for sb_peer.mark */
    size_t max_key_entry;     /* largest key entry that fits a message */
    sb_stats stats;

    recent recent[RECENT];
    uint32_t recent_head;

    /* ids seen in ACK digests that we do not know: our next SYN asks
     * for them in full */
    uint64_t wanted[WANTED];
    uint32_t nwanted;

    const char *seeds[SB_MAX_SEEDS];
    size_t nseeds;
    bool seeds_fetched;       /* the seeds callback was asked once */

    /* eager push: our fresh keys wait until push_due; waves seen lately;
     * the budget's token buckets */
    uint64_t push_due;
    uint64_t waves[WAVES];
    uint32_t waves_head;
    double push_packets, push_bytes;
    uint64_t push_refilled;   /* when the buckets were last topped up */
    tree_slot *tree;          /* a push tree's members, scratch_cap slots */
    sb_peer **sample;         /* a digest's random sample, scratch_cap */

    uint8_t *buf;             /* max_message_size bytes */
    size_t reply_max;         /* bound of the reply to the message at hand */

    /* Sealing (keyring.h): cfg.max_message_size is the plaintext's bound,
     * SB_SEAL_OVERHEAD below wire_max, the bound on the wire; a message
     * is sealed into `sealed` as it is sent, and one received is opened
     * into `opened`. */
    bool sealing;
    sb_keyring keyring;
    uint8_t nonce[SB_NONCE_SIZE]; /* the prefix, then a 64-bit counter */
    size_t wire_max;
    uint8_t *sealed, *opened; /* wire_max bytes each, when sealing */
    entry_ref *digest;        /* the digest of the message at hand */
    uint32_t digest_cap;      /* grown to the largest digest seen */
    plan p;                   /* req, ahead, cands sized to scratch_cap */
    uint32_t scratch_cap;
};

#define MS 1000000ull
#define RECENT_ROUNDS 8       /* how long a change counts as recent */
#define DEAF_ROUNDS 4         /* rounds without hearing anyone before our
                                 heartbeat stands still */

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
    cfg->push_fanout = 3;
    cfg->push_packets_per_s = 100;
    cfg->push_bytes_per_s = 64 * 1024;
    cfg->max_nodes = 4096;
    cfg->max_keys_per_node = 4096;
    cfg->max_state_bytes = 1 << 20;
    cfg->rng_seed = 1;
}

/* ---- small helpers ---------------------------------------------------- */

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * Reports one event. The order an application sees for a node: JOIN,
 * then an UPDATE for each of its keys, then its changes, then LEAVE. Key
 * events of a node that is not live are not reported: state may arrive
 * before proof of life, and a node that comes back is reported again
 * with all its keys.
 */
static void emit(sb_engine *e, sb_event_type type, const sb_peer *n,
                 const sb_key *k)
{
    if (!e->cfg.on_event ||
        (k && n->status != SB_STATUS_LIVE))
        return;
    sb_event ev = {
        .type = type,
        .addr = n->addr,
        .generation = n->generation,
        .status = (sb_status)n->status,
    };
    if (k) {
        ev.key = (const char *)k->data;
        ev.key_len = k->key_len;
        if (type == SB_EVENT_UPDATE) {
            ev.value = (const char *)sb_key_value(k);
            ev.value_len = k->value_len;
        }
    }
    e->cfg.on_event(e->cfg.userdata, &ev);
}

/*
 * When node n next needs the round's attention: a live node when its phi
 * would pass the threshold, any other when the dead-node grace runs out,
 * and any node when its oldest tombstone may be collected.
 */
static uint64_t join_wait(const sb_engine *e);

static void refresh_due(sb_engine *e, sb_peer *n)
{
    uint64_t due = n->gc_due;
    if (!n->self) {
        uint64_t t;
        if (n->status == SB_STATUS_LIVE)
            t = sb_fd_deadline(&n->fd, e->cfg.phi_threshold);
        else
            t = add_sat(n->status_since, e->cfg.dead_grace_ns);
        if (n->status == SB_STATUS_JOINING && e->reference) {
            uint64_t j = add_sat(n->status_since, join_wait(e));
            if (j < t)
                t = j;
        }
        if (t < due)
            due = t;
    }
    e->st.due[n->index] = due;
}

/*
 * The least mean gap between heartbeats the detector may assume. With
 * our protocol heartbeats travel transitively and the detector learns
 * their rhythm alone: 0. With the reference's, a peer hears from another
 * only when one of them picks the other, about twice in (peers) rounds,
 * so the gaps grow with the cluster; a detector that learned only the
 * short gaps of a cluster still forming convicts healthy nodes (a defect
 * of the reference). Its mean is kept at least (peers / 2) rounds.
 */
static double least_gap(const sb_engine *e)
{
    if (!e->reference)
        return 0.0;
    uint32_t peers =
        e->nstatus[SB_STATUS_LIVE] + e->nstatus[SB_STATUS_JOINING] - 1;
    return (double)e->round_ns * peers / 2.0;
}

/* Keeps n's detector from assuming gaps shorter than least_gap();
 * true if it changed the mean. */
static bool floor_gap(const sb_engine *e, sb_peer *n)
{
    double least = least_gap(e);
    if (n->fd.mean_ns >= least)
        return false;
    n->fd.mean_ns = least;
    return true;
}

/*
 * How long a node named in a digest may stay unproven (never heard from
 * directly) with the reference's exchange: as long as a live node's
 * silence may last, at the least mean gap (but two intervals at least, the
 * reference's first gap). Then it goes down, out of our digests, so that
 * an address that nobody answers at dies out, as it does among reference
 * nodes. Our own protocol: never (a joining node waits for the dead-node
 * grace).
 */
static uint64_t join_wait(const sb_engine *e)
{
    if (!e->reference)
        return UINT64_MAX;
    double gap = least_gap(e);
    if (gap < 2.0 * (double)e->cfg.interval_ns)
        gap = 2.0 * (double)e->cfg.interval_ns;
    double wait = e->cfg.phi_threshold * 2.302585092994046 /* ln 10 */ * gap;
    return wait < 0x1p63 ? (uint64_t)wait : UINT64_MAX;
}

static void set_status(sb_engine *e, sb_peer *n, sb_status s, uint64_t now)
{
    sb_status old = (sb_status)n->status;
    if (old == s)
        return;
    e->nstatus[old]--;
    e->nstatus[s]++;
    n->status = (uint8_t)s;
    n->status_since = now;
    refresh_due(e, n);
    if (n->self)
        return;
    if (s == SB_STATUS_LIVE) {
        emit(e, SB_EVENT_JOIN, n, NULL);
        for (uint32_t i = 0; i < n->nkeys; i++)
            if (!n->keys[i]->deleted)
                emit(e, SB_EVENT_UPDATE, n, n->keys[i]);
    } else if (old == SB_STATUS_LIVE)
        emit(e, SB_EVENT_LEAVE, n, NULL);
}

/* Remembers that n changed (or has news elsewhere), for the next SYNs
 * and ACKs; `before` is n's max version before fresh keys, or NO_DELTA. */
static void note_change(sb_engine *e, const sb_peer *n, uint64_t now,
                        uint64_t before)
{
    e->recent[e->recent_head++ % RECENT] = (recent){ n->id, now, before };
}

/*
 * Fresh keys of ours were stored at `now`; our peers most likely hold us
 * up to version `before`. They go out with the next push, at once (the
 * driver sees the deadline move to now); writes until then share it.
 */
static void queue_push(sb_engine *e, uint64_t before, uint64_t now)
{
    sb_peer *s = e->self;
    if (!e->cfg.push_fanout || s->push_pending)
        return;
    s->push_pending = true;
    s->push_from = before;
    e->push_due = now;
}

/* A tombstone was stored in n at `now`. */
static void note_tombstone(sb_engine *e, sb_peer *n, uint64_t now)
{
    uint64_t due = add_sat(now, e->cfg.tombstone_grace_ns);
    if (due < n->gc_due) {
        n->gc_due = due;
        refresh_due(e, n);
    }
}

/* The bytes a message of `len` plaintext bytes takes on the wire. */
static size_t wire_len(const sb_engine *e, size_t len)
{
    return e->sealing ? len + SB_SEAL_OVERHEAD : len;
}

/* Every datagram leaves here, sealed when the engine has keys. */
static void send_bytes(sb_engine *e, const char *to, const uint8_t *buf,
                       size_t len)
{
    if (e->sealing) {
        /* the counter: the nonce's last 8 bytes, big endian */
        for (int i = SB_NONCE_SIZE - 1; i >= 16 && ++e->nonce[i] == 0; i--)
            ;
        len = sb_seal(&e->keyring, e->nonce, buf, len, e->sealed);
        buf = e->sealed;
    }
    e->stats.packets_out++;
    e->stats.bytes_out += len;
    e->cfg.send(e->cfg.userdata, to, buf, len);
}

static void send_packet(sb_engine *e, const char *to, sb_writer *w)
{
    send_bytes(e, to, w->start, (size_t)(w->p - w->start));
}

static sb_writer new_writer(sb_engine *e)
{
    return (sb_writer){ e->buf, e->buf, e->buf + e->cfg.max_message_size };
}

/* A writer for the reply to the message at hand: no larger than that
 * message when it came from an address we do not know (e->reply_max), so
 * that a forged source cannot make us an amplifier. */
static sb_writer reply_writer(sb_engine *e)
{
    return (sb_writer){ e->buf, e->buf, e->buf + e->reply_max };
}

static sb_digest_entry entry_of(const sb_peer *n)
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
    /* small steps: these arrays cost per known node */
    uint32_t cap = need + need / 8 + 8;
    sb_peer **req = realloc(e->p.req, cap * sizeof(*req));
    if (req)
        e->p.req = req;
    sb_peer **ahead = realloc(e->p.ahead, cap * sizeof(*ahead));
    if (ahead)
        e->p.ahead = ahead;
    cand *cands = realloc(e->p.cands, cap * sizeof(*cands));
    if (cands)
        e->p.cands = cands;
    tree_slot *tree = realloc(e->tree, cap * sizeof(*tree));
    if (tree)
        e->tree = tree;
    sb_peer **sample = realloc(e->sample, cap * sizeof(*sample));
    if (sample)
        e->sample = sample;
    if (!req || !ahead || !cands || !tree || !sample)
        return false;
    e->scratch_cap = cap;
    return true;
}

static sb_peer *add_node(sb_engine *e, const char *addr, size_t len,
                         uint64_t generation, uint64_t now)
{
    sb_peer *n = sb_state_add(&e->st, addr, len, generation);
    if (!n)
        return NULL;
    if (!grow_scratch(e)) {
        sb_state_remove(&e->st, n);
        return NULL;
    }
    n->status = SB_STATUS_JOINING;
    n->status_since = now;
    e->nstatus[SB_STATUS_JOINING]++;
    refresh_due(e, n);
    return n;
}

static void remove_node(sb_engine *e, sb_peer *n)
{
    e->nstatus[n->status]--;
    sb_state_remove(&e->st, n);
}

/* ---- creation ---------------------------------------------------------- */

/* The most bytes a delta of our own node spends besides its keys, in
 * the larger frame of an ACK and a PUSH: header, push header, two counts,
 * node header at worst. */
static size_t own_overhead(size_t addr_len)
{
    return SB_HEADER_SIZE + SB_PUSH_HEADER_SIZE + 2 * 3 /* counts */ + 1 +
           addr_len + 6 * SB_VARINT_MAX + 1;
}

int sb_engine_new(const sb_engine_config *cfg, uint64_t now, sb_engine **out)
{
    *out = NULL;
    if (!cfg || !cfg->send || !cfg->addr || cfg->generation == 0 ||
        cfg->interval_ns == 0 || !(cfg->phi_threshold > 0.0) ||
        cfg->fd_window == 0 || cfg->max_nodes < 1 ||
        cfg->max_message_size > 65507 ||
        cfg->push_fanout > SB_MAX_FANOUT ||
        (cfg->push_fanout &&
         (cfg->push_packets_per_s == 0 ||
          cfg->push_bytes_per_s < cfg->max_message_size)))
        return SB_ECONFIG;
    if (cfg->nkeys > SB_MAX_KEYS || (cfg->nkeys && !cfg->keys))
        return SB_ECONFIG;
    size_t alen = strlen(cfg->addr);
    if (alen == 0 || alen > SB_MAX_ADDR_LEN)
        return SB_EADDR;
    bool reference = cfg->wire == SB_WIRE_REFERENCE;
    if (cfg->wire != SB_WIRE_SCUTTLEBUTT && !reference)
        return SB_ECONFIG;
    /* the reference format carries no seal and no cluster, and its
     * smallest useful message is one one-byte key of ours */
    if (reference &&
        (cfg->nkeys || (cfg->cluster && strcmp(cfg->cluster, "default")) ||
         cfg->max_message_size < 1 + sb_ref_delta_size(alen, 1, 0) ||
         cfg->generation > (UINT64_MAX >> 2) /* versions start there */))
        return SB_ECONFIG;
    /* the smallest useful message carries one one-byte key, sealed if
     * there are keys */
    size_t seal = cfg->nkeys ? SB_SEAL_OVERHEAD : 0;
    if (!reference && cfg->max_message_size <
        seal + own_overhead(alen) + sb_key_entry_size(1, 0, UINT64_MAX))
        return SB_ECONFIG;
    if (cfg->nkeys && !sb_seal_init())
        return SB_EIO;

    sb_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return SB_ENOMEM;
    e->cfg = *cfg;
    e->cfg.keys = NULL; /* copied into the keyring below */
    e->reference = reference;
    if (reference) {
        e->cfg.push_fanout = 0;
        e->cfg.generation = 1;
    }
    e->wire_max = cfg->max_message_size;
    e->cfg.max_message_size -= seal;
    if (cfg->nkeys) {
        e->sealing = true;
        for (uint32_t i = 0; i < cfg->nkeys; i++)
            sb_keyring_install(&e->keyring, cfg->keys + i * SB_KEY_SIZE);
        memcpy(e->nonce, cfg->nonce_prefix, sizeof(cfg->nonce_prefix));
        e->sealed = malloc(e->wire_max);
        e->opened = malloc(e->wire_max);
        if (!e->sealed || !e->opened)
            goto oom;
    }
    const char *cluster = cfg->cluster ? cfg->cluster : "";
    e->cluster = malloc(strlen(cluster) + 1);
    if (e->cluster)
        strcpy(e->cluster, cluster);
    e->buf = malloc(e->cfg.max_message_size);
    /* an unknown id costs a request of at least SB_DIGEST_ENTRY_MIN */
    e->p.max_unknown =
        (uint32_t)(e->cfg.max_message_size / SB_DIGEST_ENTRY_MIN + 1);
    e->p.unknown = malloc(e->p.max_unknown * sizeof(uint64_t));
    sb_state_init(&e->st);
    if (!e->cluster || !e->buf || !e->p.unknown)
        goto oom;
    e->cfg.cluster = e->cluster;
    e->cluster_id = sb_cluster_id(e->cluster);
    sb_rng_seed(&e->rng, cfg->rng_seed);
    if (!reference)
        e->max_key_entry = e->cfg.max_message_size - own_overhead(alen);

    e->self = add_node(e, cfg->addr, alen, e->cfg.generation, now);
    if (!e->self)
        goto oom;
    e->cfg.addr = e->self->addr;
    e->self->self = true;
    set_status(e, e->self, SB_STATUS_LIVE, now);
    e->self->heartbeat = 1;
    /* reference: our versions start at the generation (the runtime's
     * wall clock), above any a previous incarnation reached */
    if (reference)
        e->version_base = cfg->generation - 1;
    e->round_ns = cfg->interval_ns / (reference ? 1 : EXCHANGES);
    if (!e->round_ns)
        e->round_ns = 1;
    e->next_round = now + sb_rng_below(&e->rng, e->round_ns);
    e->last_round = now;
    e->last_heard = now;
    e->push_refilled = now;
    e->push_packets = cfg->push_packets_per_s;
    e->push_bytes = cfg->push_bytes_per_s;
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
    free(e->sealed);
    free(e->opened);
    sb_keyring_wipe(&e->keyring);
    free(e->p.unknown);
    free(e->digest);
    free(e->p.req);
    free(e->p.ahead);
    free(e->p.cands);
    free(e->tree);
    free(e->sample);
    free(e);
}

/* ---- learning about nodes --------------------------------------------- */

/* A heartbeat (and leaving bit) of a node we know, at the same generation. */
static void observe(sb_engine *e, sb_peer *n, uint64_t hb, bool leaving,
                    uint64_t now)
{
    if (leaving && !n->leaving && !n->self) {
        n->leaving = true;
        note_change(e, n, now, NO_DELTA);
        set_status(e, n, SB_STATUS_LEFT, now);
    }
    if (hb <= n->heartbeat || n->self)
        return;
    n->heartbeat = hb;
    n->hb_news = true;
    switch ((sb_status)n->status) {
    case SB_STATUS_LIVE:
        sb_fd_heartbeat(&n->fd, now, e->cfg.fd_window);
        refresh_due(e, n);
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
static void drop_generation(sb_engine *e, sb_peer *n, uint64_t now)
{
    for (uint32_t i = 0; i < n->nkeys; i++)
        if (!n->keys[i]->deleted)
            emit(e, SB_EVENT_DELETE, n, n->keys[i]);
    if (n->status == SB_STATUS_LIVE)
        set_status(e, n, SB_STATUS_DOWN, now);
    remove_node(e, n);
}

/* Finds or creates the node a delta speaks of; NULL if the delta must be
 * ignored (stale generation, zombie, bound reached). */
static sb_peer *node_for_delta(sb_engine *e, const sb_delta *d,
                               uint64_t now, bool *created)
{
    *created = false;
    sb_peer *n = sb_state_find_addr(&e->st, d->addr, d->addr_len);
    if (n && (n->self || n->generation > d->generation))
        return NULL;
    if (n && n->generation == d->generation) {
        observe(e, n, d->heartbeat, d->leaving, now);
        return n;
    }
    uint64_t id = sb_peer_id(d->addr, d->addr_len, d->generation);
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
    n = add_node(e, d->addr, d->addr_len, d->generation, now);
    if (!n)
        return NULL;
    *created = true;
    n->heartbeat = d->heartbeat;
    n->leaving = d->leaving;
    if (d->leaving)
        set_status(e, n, SB_STATUS_LEFT, now);
    note_change(e, n, now, NO_DELTA);
    return n;
}

/* Checks the bounds before storing key entry k into n. */
static bool within_bounds(sb_engine *e, const sb_peer *n,
                          const sb_key_entry *k)
{
    long old = sb_peer_find_key(n, k->key, k->key_len);
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

static bool store_key(sb_engine *e, sb_peer *n, const sb_key_entry *k,
                      uint64_t now)
{
    bool was_live;
    if (!sb_peer_put_key(n, k->key, k->key_len, k->value, k->value_len,
                         k->version, k->deleted, now, &was_live))
        return false;
    sb_key *stored = n->keys[n->nkeys - 1];
    if (k->deleted)
        note_tombstone(e, n, now);
    if (!k->deleted)
        emit(e, SB_EVENT_UPDATE, n, stored);
    else if (was_live)
        emit(e, SB_EVENT_DELETE, n, stored);
    return true;
}

/* True if the delta holds key k at exactly version v. */
static bool delta_has(const sb_delta *d, const sb_key *k)
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
static void reset_node(sb_engine *e, sb_peer *n, const sb_delta *d)
{
    for (uint32_t i = n->nkeys; i-- > 0;) {
        sb_key *k = n->keys[i];
        if (delta_has(d, k))
            continue;
        if (!k->deleted)
            emit(e, SB_EVENT_DELETE, n, k);
        sb_peer_remove_key(n, i);
    }
    n->max_version = 0;
    for (uint32_t i = 0; i < n->nkeys; i++)
        if (n->keys[i]->version > n->max_version)
            n->max_version = n->keys[i]->version;
    n->gc_version = d->gc_version;
}

/* A reset that a bound stopped at the key of version `stop` holds every
 * version below it, and the kept keys above it, which would leave a hole
 * under max_version: they go too, and come again with the rest. */
static void cut_reset(sb_engine *e, sb_peer *n, uint64_t stop)
{
    for (uint32_t i = n->nkeys; i-- > 0;) {
        sb_key *k = n->keys[i];
        if (k->version < stop)
            continue;
        if (!k->deleted)
            emit(e, SB_EVENT_DELETE, n, k);
        sb_peer_remove_key(n, i);
    }
}

static void apply_delta(sb_engine *e, const sb_delta *d, uint64_t now)
{
    bool created;
    sb_peer *n = node_for_delta(e, d, now, &created);
    if (!n)
        return;
    bool reset = d->reset && d->gc_version > n->gc_version;
    if (reset) {
        reset_node(e, n, d);
    } else if (d->from_version > n->max_version ||
               (d->gc_version > n->max_version &&
                d->gc_version > n->gc_version) ||
               (n->max_version < n->gc_version &&
                d->gc_version < n->gc_version &&
                d->to_version < n->gc_version)) {
        /* the sender collected tombstones past our max that we never
         * saw: only a reset may bring us past them (an offered or pushed
         * delta is not computed from our digest and may skip them) */
        /* a gap; or we are part way through a reset (our copy is clean
         * up to gc_version but holds only a prefix) and the sender has
         * neither collected that far nor seen that far: it may still
         * hold values those collected tombstones deleted. (A sender that
         * holds versions up to our gc_version has seen every tombstone
         * up to it, so it is safe even if it collected none.) */
        e->stats.drops[SB_DROP_GAP]++;
        return;
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
        if (!within_bounds(e, n, &k) || !store_key(e, n, &k, now)) {
            complete = false;
            stop = k.version;
            break;
        }
        changed = true;
    }
    if (reset) {
        if (!complete)
            cut_reset(e, n, stop);
        /* keys are in version order; the kept ones sit among them */
        n->max_version = complete ? d->to_version : stop - 1;
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
        note_change(e, n, now, reset ? NO_DELTA : before);
}

static void apply_deltas(sb_engine *e, const sb_msg *m, uint64_t now)
{
    sb_cursor c = { m->nodes, m->end };
    for (uint64_t i = 0; i < m->nnodes; i++) {
        sb_delta d;
        sb_delta_next(&c, &d);
        apply_delta(e, &d, now);
    }
}

/* ---- building messages ------------------------------------------------- */

/* Does the receiver, whose digest says (max, gc), need our copy of n
 * replayed from scratch? Only if we collected tombstones past its max
 * that it has not collected itself: it may hold values those tombstones
 * deleted, and no delta from its max would ever tell it. */
static bool needs_reset(const sb_peer *n, uint64_t max, uint64_t gc)
{
    return n->gc_version > max && n->gc_version > gc;
}

/* Queues a delta of n for a receiver whose digest says (max, gc), or that
 * lacks n entirely (whole). Nothing is queued if it has all of n. */
static void add_cand(sb_engine *e, plan *p, sb_peer *n, uint64_t max,
                     uint64_t gc, bool whole)
{
    /* a whole node from a sender that collected tombstones goes as a
     * reset, so that the receiver takes its gc_version along with it */
    bool reset = whole ? n->gc_version > 0 : needs_reset(n, max, gc);
    if (!whole && !reset && n->max_version <= max)
        return;
    if (p->ncands >= e->scratch_cap)
        return;
    p->cands[p->ncands++] = (cand){
        .n = n, .from = whole || reset ? 0 : max, .reset = reset,
        .whole = whole, .tie = (uint32_t)sb_rng_next(&e->rng),
    };
}

/* How far behind the receiver is on c; a node it lacks ranks first. */
static uint64_t behind(const cand *c)
{
    return c->whole ? UINT64_MAX : c->n->max_version - c->from;
}

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    uint64_t bx = behind(x), by = behind(y);
    if (bx != by)
        return bx < by ? 1 : -1;
    return (x->tie > y->tie) - (x->tie < y->tie);
}

static sb_delta delta_header(const cand *c, uint64_t nkeys, uint64_t to)
{
    const sb_peer *n = c->n;
    return (sb_delta){
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
    const sb_peer *n = c->n;
    uint32_t i0 = sb_peer_keys_after(n, c->from), i = i0;
    size_t keys = 0;
    for (; i < n->nkeys; i++) {
        const sb_key *k = n->keys[i];
        size_t ks = sb_key_entry_size(k->key_len, k->value_len, k->version);
        sb_delta h = delta_header(c, i - i0 + 1, n->max_version);
        if (sb_delta_header_size(&h) + keys + ks > room)
            break;
        keys += ks;
    }
    if (i == i0 && i0 < n->nkeys)
        return 0;
    c->first = i0;
    c->nkeys = i - i0;
    c->to = i == n->nkeys ? n->max_version : n->keys[i - 1]->version;
    sb_delta h = delta_header(c, c->nkeys, c->to);
    size_t need = sb_delta_header_size(&h) + keys;
    return need <= room ? need : 0;
}

static void write_delta(sb_writer *w, const cand *c)
{
    sb_delta h = delta_header(c, c->nkeys, c->to);
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
    const sb_peer *n = c->n;
    uint32_t i0 = sb_peer_keys_after(n, c->from);
    sb_delta h = delta_header(c, 1, n->max_version);
    size_t need = sb_delta_header_size(&h);
    if (i0 < n->nkeys)
        need += sb_key_entry_size(n->keys[i0]->key_len,
                                  n->keys[i0]->value_len,
                                  n->keys[i0]->version);
    return need;
}

/*
 * The random part of a digest lists nodes in three groups, each in a
 * random order: 0, nodes with a heartbeat we have not listed since it came
 * in (news for most peers); 1, the other nodes that may be alive (joining
 * or live); 2, the down and the left. Those carry no news of liveness, and
 * a cluster keeps them for dead_grace: mixed with the others they would
 * crowd out the heartbeats the failure detectors live on.
 */
static int sample_group(const sb_peer *n)
{
    if (n->status == SB_STATUS_DOWN || n->status == SB_STATUS_LEFT)
        return 2;
    return n->hb_news ? 0 : 1;
}

/* The i-th draw of a random sample without repetition: a partial
 * Fisher-Yates shuffle of st.perm, which stays a permutation. */
static sb_peer *draw(sb_engine *e, uint32_t i)
{
    uint32_t *perm = e->st.perm;
    uint32_t j = i + (uint32_t)sb_rng_below(&e->rng, e->st.count - i);
    uint32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
    return e->st.nodes[perm[i]];
}

/*
 * Draws the candidates of a digest's random sample into e->sample: nodes
 * not listed yet in this digest, in the random order of the partial
 * shuffle, twice as many as `room` bytes could hold (every node, in
 * clusters that small). The caller lists them group by group
 * (sample_group()), so news comes first among them; the bounded window
 * keeps a digest's cost proportional to its size, not to the cluster's.
 */
static uint32_t draw_sample(sb_engine *e, size_t room)
{
    uint32_t window = (uint32_t)(2 * (room / SB_DIGEST_ENTRY_MIN) + 1);
    uint32_t m = 0;
    for (uint32_t i = 0; i < e->st.count && m < window; i++) {
        sb_peer *x = draw(e, i);
        if (x->mark != e->epoch)
            e->sample[m++] = x;
    }
    return m;
}

/*
 * Tops up an ACK's digest with random nodes the SYN did not list (not
 * marked in this exchange), as many as fit `*room`: the initiator adopts
 * their heartbeats and asks for the ones it does not know, so large
 * clusters spread liveness and identities faster. Returns how many.
 */
static uint32_t fill_digest(sb_engine *e, sb_peer **out, size_t *room)
{
    uint32_t n = 0;
    uint32_t m = draw_sample(e, *room);
    for (int pass = 0; pass < 3; pass++) {
        for (uint32_t i = 0; i < m; i++) {
            sb_peer *x = e->sample[i];
            /* listing clears hb_news, which moves a node to group 1:
             * the mark keeps it from being listed twice */
            if (x->mark == e->epoch || sample_group(x) != pass)
                continue;
            sb_digest_entry d = entry_of(x);
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
static size_t digest_room(const sb_engine *e)
{
    size_t share = e->cfg.max_message_size * DIGEST_SHARE / 100;
    /* a SYN: header, flags and a count of at most 3 bytes */
    size_t most = e->cfg.max_message_size - SB_HEADER_SIZE - 1 - 3;
    return share < most ? share : most;
}

/*
 * Writes a message of `type` (ACK, ACK2 or PUSH) from a plan, never past
 * the writer's end (max_message_size, or less for a reply to a stranger).
 * An ACK carries digest entries first: requests (ids we lack, nodes where
 * we are behind) in at most half the room while deltas wait, and never so
 * many that the best delta cannot start (all of it if that cannot); then the
 * deltas, most-out-of-date node first; then entries with our newer
 * heartbeats in whatever room is left, topped up with random nodes when
 * the SYN's digest was partial. Returns false if there is nothing
 * to send.
 */
static bool write_plan(sb_engine *e, sb_writer *w, int type, plan *p)
{
    /* the frame, and one count (two in an ACK) of as many bytes as the
     * most entries or deltas that fit take: each takes at least
     * SB_DIGEST_ENTRY_MIN bytes */
    size_t size = (size_t)(w->end - w->start);
    size_t count = sb_varint_size(size / SB_DIGEST_ENTRY_MIN);
    size_t frame = SB_HEADER_SIZE + (type == SB_MSG_ACK ? 2 : 1) * count +
                   (type == SB_MSG_PUSH ? SB_PUSH_HEADER_SIZE : 0);
    if (size <= frame)
        return false;
    size_t room = size - frame;
    qsort(p->cands, p->ncands, sizeof(cand), cmp_cand);

    uint32_t nunknown = 0, nreq = 0, nahead = 0, ndelta = 0;
    if (type == SB_MSG_ACK) {
        size_t budget = room;
        if (p->ncands) {
            size_t need = min_delta_size(&p->cands[0]);
            budget = need < room ? room / 2 : room;
            if (need < room && room - need < budget)
                budget = room - need;
        }
        size_t used = 0;
        for (; nunknown < p->nunknown; nunknown++) {
            sb_digest_entry d = { .id = p->unknown[nunknown] };
            size_t s = sb_digest_entry_size(&d);
            if (used + s > budget)
                break;
            used += s;
        }
        for (; nunknown == p->nunknown && nreq < p->nreq; nreq++) {
            sb_digest_entry d = entry_of(p->req[nreq]);
            size_t s = sb_digest_entry_size(&d);
            if (used + s > budget)
                break;
            used += s;
        }
        room -= used;
    }
    for (uint32_t i = 0; i < p->ncands; i++) {
        size_t need = fit_delta(&p->cands[i], room);
        if (!need)
            continue; /* a smaller one may still fit */
        room -= need;
        /* written ones to the front; the others stay, after them */
        cand t = p->cands[ndelta];
        p->cands[ndelta++] = p->cands[i];
        p->cands[i] = t;
    }
    if (type == SB_MSG_ACK) {
        /* our entries take at most a digest's share, like the SYN's */
        size_t rest = room > digest_room(e) ? room - digest_room(e) : 0;
        room -= rest;
        for (; nahead < p->nahead; nahead++) {
            sb_digest_entry d = entry_of(p->ahead[nahead]);
            size_t s = sb_digest_entry_size(&d);
            if (s > room)
                break;
            room -= s;
        }
        if (p->fill && nahead == p->nahead)
            nahead += fill_digest(e, p->ahead + nahead, &room);
        room += rest;
    }
    if (nunknown + nreq + nahead + ndelta == 0)
        return false;

    sb_put_header(w, type, e->cluster_id);
    if (type == SB_MSG_PUSH) {
        sb_put_u64(w, e->self->id);
        sb_put_u64(w, p->wave);
    }
    if (type == SB_MSG_ACK) {
        sb_put_varint(w, nunknown + nreq + nahead);
        for (uint32_t i = 0; i < nunknown; i++) {
            sb_digest_entry d = { .id = p->unknown[i] };
            sb_put_digest_entry(w, &d);
        }
        for (uint32_t i = 0; i < nreq; i++) {
            sb_digest_entry d = entry_of(p->req[i]);
            sb_put_digest_entry(w, &d);
        }
        for (uint32_t i = 0; i < nahead; i++) {
            sb_digest_entry d = entry_of(p->ahead[i]);
            sb_put_digest_entry(w, &d);
        }
    }
    sb_put_varint(w, ndelta);
    for (uint32_t i = 0; i < ndelta; i++)
        write_delta(w, &p->cands[i]);
    p->nwritten = ndelta;
    return true;
}

/* ---- the exchange ----------------------------------------------------- */

/* Adds n to a SYN digest if it fits `limit` and is not listed yet. */
static bool list_node(sb_engine *e, sb_peer *n, sb_peer **list, uint32_t *len,
                      size_t *used, size_t limit)
{
    if (n->mark == e->epoch)
        return true;
    sb_digest_entry d = entry_of(n);
    size_t s = sb_digest_entry_size(&d);
    if (*used + s > limit)
        return false;
    *used += s;
    n->mark = e->epoch;
    n->hb_news = false;
    list[(*len)++] = n;
    return true;
}

/*
 * Writes the digest of a SYN: ourselves first, then nodes whose keys or
 * leaving bit changed in the last few rounds (newest first, at most half
 * the room, so news spreads fast), then a random sample of the others
 * (a shuffle of st.perm), group by group (sample_group()): fresh
 * heartbeats, other nodes that may be alive, the down and the left.
 * Within a group every node has the same chance, so none is starved
 * however many there are. The COMPLETE flag says every known node is
 * listed.
 */
static void write_syn(sb_engine *e, sb_writer *w, uint64_t now)
{
    size_t room = digest_room(e);
    size_t used = 0;
    uint32_t count = e->st.count, n = 0;
    sb_peer **list = e->p.req; /* scratch, one slot per node */
    e->epoch++;

    /* ourselves always (the smallest message has room for that) */
    list_node(e, e->self, list, &n, &used,
              e->cfg.max_message_size - SB_HEADER_SIZE - 1 - 3);
    /* requests: ids we saw in ACKs and do not know, "send in full" */
    uint32_t nwanted = 0;
    for (; nwanted < e->nwanted; nwanted++) {
        sb_digest_entry d = { .id = e->wanted[nwanted] };
        if (used + sb_digest_entry_size(&d) > room / 4)
            break;
        used += sb_digest_entry_size(&d);
    }
    uint64_t recent_ns = RECENT_ROUNDS * e->round_ns;
    for (uint32_t k = 1; k <= RECENT && k <= e->recent_head; k++) {
        const recent *r = &e->recent[(e->recent_head - k) % RECENT];
        if (now - r->at > recent_ns)
            break;
        sb_peer *x = sb_state_find_id(&e->st, r->id);
        if (x && !list_node(e, x, list, &n, &used, room / 2))
            break;
    }
    bool full = false;
    uint32_t m = draw_sample(e, room > used ? room - used : 0);
    for (int pass = 0; pass < 3 && !full; pass++)
        for (uint32_t i = 0; i < m && !full; i++)
            if (sample_group(e->sample[i]) == pass)
                full = !list_node(e, e->sample[i], list, &n, &used, room);
    sb_put_header(w, SB_MSG_SYN, e->cluster_id);
    sb_put_u8(w, n == count ? SB_SYN_COMPLETE : 0);
    sb_put_varint(w, n + nwanted);
    for (uint32_t k = 0; k < n; k++) {
        sb_digest_entry d = entry_of(list[k]);
        sb_put_digest_entry(w, &d);
    }
    for (uint32_t k = 0; k < nwanted; k++) {
        sb_digest_entry d = { .id = e->wanted[k] };
        sb_put_digest_entry(w, &d);
    }
    e->nwanted = 0;
}

/*
 * What both sides of an exchange do with the peer's digest entry for a
 * node n we know: adopt its heartbeat and queue a delta if the peer is
 * behind, or send n in full if the entry asks for it (heartbeat 0).
 * Returns false when nothing more is to be learned from the entry (a
 * request, or n listed twice).
 */
static bool take_entry(sb_engine *e, plan *p, sb_peer *n,
                       const sb_digest_entry *d, uint64_t now)
{
    if (n->mark == e->epoch)
        return false;
    n->mark = e->epoch;
    if (!d->heartbeat) {
        add_cand(e, p, n, 0, 0, true);
        return false;
    }
    observe(e, n, d->heartbeat, d->leaving, now);
    add_cand(e, p, n, d->max_version, d->gc_version, false);
    return true;
}

/*
 * A partial SYN may not list a node whose keys changed lately; the
 * initiator may lack them. Offer them anyway, from the version peers held
 * before the change: the receiver takes them only if it holds that
 * version (no gap), and skips what it has. Stragglers an eager push
 * missed catch up in their next exchange.
 */
static void offer_recent(sb_engine *e, plan *p, uint64_t now)
{
    uint64_t recent_ns = RECENT_ROUNDS * e->round_ns;
    uint32_t first = p->ncands;
    for (uint32_t k = 1; k <= RECENT && k <= e->recent_head; k++) {
        const recent *r = &e->recent[(e->recent_head - k) % RECENT];
        if (now - r->at > recent_ns)
            break;
        if (r->before == NO_DELTA)
            continue;
        sb_peer *n = sb_state_find_id(&e->st, r->id);
        if (!n)
            continue;
        if (n->mark != e->epoch) {
            n->mark = e->epoch;
            add_cand(e, p, n, r->before, n->gc_version, false);
            continue;
        }
        /* changed more than once lately: offer from the oldest change,
         * so a peer that missed both can take it */
        for (uint32_t i = first; i < p->ncands; i++)
            if (p->cands[i].n == n && r->before < p->cands[i].from)
                p->cands[i].from = r->before;
    }
}

/*
 * Decodes the digest of a validated message into e->digest and finds the
 * node of every entry. Each pass only starts loads (slots, then nodes) for
 * the next one, so the cache misses of a large digest overlap instead of
 * following one another: at a thousand nodes, the round is memory-bound.
 */
static const entry_ref *load_digest(sb_engine *e, const sb_msg *m)
{
    if (m->ndigest > e->digest_cap) {
        /* at most max_message_size / 8: a validated entry is >= 8 B */
        entry_ref *d = realloc(e->digest, m->ndigest * sizeof(*d));
        if (!d)
            return NULL;
        e->digest = d;
        e->digest_cap = (uint32_t)m->ndigest;
    }
    entry_ref *r = e->digest;
    sb_cursor c = { m->digest, m->end };
    for (uint64_t i = 0; i < m->ndigest; i++) {
        sb_digest_next(&c, &r[i].d);
        sb_state_prefetch_id(&e->st, r[i].d.id);
    }
    for (uint64_t i = 0; i < m->ndigest; i++) {
        r[i].n = sb_state_find_id(&e->st, r[i].d.id);
#if defined(__GNUC__)
        if (r[i].n)
            __builtin_prefetch(r[i].n);
#endif
    }
    return r;
}

/* An empty plan for one reply; a new epoch, so no node is marked. */
static plan *new_plan(sb_engine *e)
{
    plan *p = &e->p;
    p->nunknown = p->nreq = p->nahead = p->ncands = p->nwritten = 0;
    p->fill = false;
    e->epoch++;
    return p;
}

/* A SYN: adopt what its digest tells, answer with an ACK. */
static void handle_syn(sb_engine *e, const char *from, const sb_msg *m,
                       uint64_t now)
{
    /* our heartbeat moves with every SYN we answer too: the more often
     * it moves, the more often an observer sees it move, and the tighter
     * that observer's failure detector (docs/failure-detector.md) */
    e->self->heartbeat++;
    plan *p = new_plan(e);
    uint32_t epoch = e->epoch;
    const entry_ref *r = load_digest(e, m);
    for (uint64_t i = 0; r && i < m->ndigest; i++) {
        sb_digest_entry d = r[i].d;
        sb_peer *n = r[i].n;
        if (!n) {
            /* unknown: ask for it in full, unless it is a forgotten one */
            if (!d.heartbeat || p->nunknown >= p->max_unknown)
                continue;
            if (sb_state_is_forgotten(&e->st, d.id, d.heartbeat))
                e->stats.drops[SB_DROP_ZOMBIE]++;
            else if (!p->nunknown || p->unknown[p->nunknown - 1] != d.id)
                p->unknown[p->nunknown++] = d.id; /* back to back: once */
            continue;
        }
        if (!take_entry(e, p, n, &d, now))
            continue;
        if (d.max_version > n->max_version && !n->self)
            p->req[p->nreq++] = n;
        else if (n->heartbeat > d.heartbeat || (n->leaving && !d.leaving))
            p->ahead[p->nahead++] = n;
    }
    p->fill = !(m->flags & SB_SYN_COMPLETE);
    if (p->fill)
        offer_recent(e, p, now);
    if (m->flags & SB_SYN_COMPLETE) {
        for (uint32_t i = 0; i < e->st.count; i++) {
            sb_peer *n = e->st.nodes[i];
            if (n->mark != epoch)
                add_cand(e, p, n, 0, 0, true);
        }
    }
    sb_writer w = reply_writer(e);
    if (write_plan(e, &w, SB_MSG_ACK, p))
        send_packet(e, from, &w);
}

/* An ACK: apply its deltas, answer what it asked for with an ACK2. */
static void handle_ack(sb_engine *e, const char *from, const sb_msg *m,
                       uint64_t now)
{
    apply_deltas(e, m, now);
    plan *p = new_plan(e);
    const entry_ref *r = load_digest(e, m);
    for (uint64_t i = 0; r && i < m->ndigest; i++) {
        sb_digest_entry d = r[i].d;
        sb_peer *n = r[i].n;
        if (!n) {
            if (d.heartbeat && e->nwanted < WANTED &&
                !sb_state_is_forgotten(&e->st, d.id, d.heartbeat))
                e->wanted[e->nwanted++] = d.id;
            continue;
        }
        if (!take_entry(e, p, n, &d, now))
            continue;
        /* the responder holds news of n that we lack: list n first in
         * our next SYNs, so whoever has it sends it */
        if (d.max_version > n->max_version && !n->self)
            note_change(e, n, now, NO_DELTA);
    }
    sb_writer w = reply_writer(e);
    if (write_plan(e, &w, SB_MSG_ACK2, p))
        send_packet(e, from, &w);
}

/* ---- eager push ------------------------------------------------------- */

/* Tops up the budget's two token buckets; each holds one second's worth. */
static void refill_budget(sb_engine *e, uint64_t now)
{
    double dt = (double)(now - e->push_refilled) / 1e9;
    e->push_refilled = now;
    e->push_packets += dt * e->cfg.push_packets_per_s;
    e->push_bytes += dt * e->cfg.push_bytes_per_s;
    if (e->push_packets > e->cfg.push_packets_per_s)
        e->push_packets = e->cfg.push_packets_per_s;
    if (e->push_bytes > e->cfg.push_bytes_per_s)
        e->push_bytes = e->cfg.push_bytes_per_s;
}

/* 64-bit mixing (splitmix64's finaliser): orders a push tree. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int cmp_slot(const void *a, const void *b)
{
    const tree_slot *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/*
 * Our children in the tree of push wave `wave` started by node `root`:
 * the live nodes we know, ourselves and the root, ordered by a hash of
 * (wave, node id); ranks count from the root's place onwards, cyclically;
 * the node of rank r sends to ranks a*r+1 .. a*r+a, for an arity a of
 * push_fanout (at least 2). Nodes that know the same live members derive
 * the same tree, so a wave reaches each of them once, in about log_a(N)
 * hops, for N-1 packets.
 */
static uint32_t tree_children(sb_engine *e, uint64_t root, uint64_t wave,
                              sb_peer **out)
{
    tree_slot *t = e->tree;
    uint32_t m = 0;
    bool has_root = false;
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_peer *n = e->st.nodes[i];
        if (!n->self && n->status != SB_STATUS_LIVE)
            continue;
        t[m++] = (tree_slot){ mix64(wave ^ n->id), n->id, n };
        has_root |= n->id == root;
    }
    if (!has_root) /* scratch_cap > count: there is room */
        t[m++] = (tree_slot){ mix64(wave ^ root), root, NULL };
    qsort(t, m, sizeof(*t), cmp_slot);
    uint32_t at_root = 0, at_self = 0;
    for (uint32_t i = 0; i < m; i++) {
        if (t[i].id == root)
            at_root = i;
        if (t[i].n == e->self)
            at_self = i;
    }
    uint64_t f = e->cfg.push_fanout < 2 ? 2 : e->cfg.push_fanout;
    uint64_t rank = (at_self + m - at_root) % m;
    uint32_t k = 0;
    for (uint64_t c = f * rank + 1; c <= f * rank + f && c < m; c++) {
        sb_peer *n = t[(at_root + c) % m].n;
        if (n && !n->self)
            out[k++] = n;
    }
    return k;
}

/* Remembers a wave; false if it was seen already. */
/* Remembers the wave (root, wave); false if it was seen already. Two
 * roots may draw the same wave id (engines seeded alike), so the root is
 * part of the key. Key 0 marks an empty slot and is never new. */
static bool new_wave(sb_engine *e, uint64_t root, uint64_t wave)
{
    uint64_t key = mix64(root) ^ wave;
    if (key == 0)
        return false;
    for (uint32_t i = 0; i < WAVES; i++)
        if (e->waves[i] == key)
            return false;
    e->waves[e->waves_head++ % WAVES] = key;
    return true;
}

/* Sends a PUSH of `wave` to our children in its tree, within the budget;
 * what the budget holds back waits for anti-entropy. */
static void send_down_tree(sb_engine *e, uint64_t root, uint64_t wave,
                           const uint8_t *buf, size_t len, uint64_t now)
{
    sb_peer **kids = e->p.req; /* scratch: no plan is being built */
    uint32_t k = tree_children(e, root, wave, kids);
    refill_budget(e, now);
    for (uint32_t i = 0; i < k; i++) {
        if (e->push_packets < 1 || e->push_bytes < (double)wire_len(e, len)) {
            e->stats.pushes_over_budget += k - i;
            return;
        }
        e->push_packets -= 1;
        e->push_bytes -= (double)wire_len(e, len);
        e->stats.pushes++;
        send_bytes(e, kids[i]->addr, buf, len);
    }
}

/*
 * Pushes our fresh keys (from the version our peers most likely hold, cut
 * as a prefix) down push_fanout independent trees, one wave each: every
 * node gets them from push_fanout parents, so a lost packet rarely leaves
 * a node to anti-entropy. Keys past the cut go in the next push, at once.
 */
static void flush_pushes(sb_engine *e, uint64_t now)
{
    sb_peer *s = e->self;
    s->push_pending = false;
    if (s->max_version <= s->push_from)
        return;
    plan *p = &e->p;
    p->ncands = 1;
    p->cands[0] = (cand){ .n = s, .from = s->push_from };
    p->wave = 0; /* each wave's id is set below */
    sb_writer w = new_writer(e);
    if (!write_plan(e, &w, SB_MSG_PUSH, p))
        return;
    uint64_t done = p->nwritten ? p->cands[0].to : s->push_from;
    for (uint32_t i = 0; i < e->cfg.push_fanout; i++) {
        uint64_t wave;
        do
            wave = sb_rng_next(&e->rng);
        while (!new_wave(e, s->id, wave));
        sb_set_push_wave(w.start, wave);
        send_down_tree(e, s->id, wave, w.start, (size_t)(w.p - w.start),
                       now);
    }
    if (s->max_version > done)
        queue_push(e, done, now);
}

/* A PUSH: passed on unchanged to our children in its wave's tree (once
 * per wave, and only if it came from a node we know), then applied like
 * an ACK2. */
static void handle_push(sb_engine *e, const uint8_t *buf, size_t len,
                        const sb_msg *m, bool known, uint64_t now)
{
    if (e->cfg.push_fanout && known && new_wave(e, m->root, m->wave))
        send_down_tree(e, m->root, m->wave, buf, len, now);
    apply_deltas(e, m, now);
}

static int ref_recv(sb_engine *e, const char *from, const uint8_t *buf,
                    size_t len, uint64_t now);

static bool is_seed(const sb_engine *e, const char *addr)
{
    for (size_t i = 0; i < e->nseeds; i++)
        if (e->seeds[i] && strcmp(e->seeds[i], addr) == 0)
            return true;
    return false;
}

int sb_engine_recv(sb_engine *e, const char *from, const uint8_t *buf,
                   size_t len, uint64_t now)
{
    /* a round overdue by a round or more means we were paused (or
     * starved): run it first, so the detector forgives the pause before
     * the packets that queued up meanwhile are taken as heartbeats */
    if (now >= e->next_round + e->round_ns)
        sb_engine_tick(e, now);
    e->stats.packets_in++;
    e->stats.bytes_in += len;
    if (!from || !buf) {
        e->stats.drops[SB_DROP_MALFORMED]++;
        return SB_EINVAL;
    }
    if (e->reference)
        return ref_recv(e, from, buf, len, now);
    int drop = len > e->wire_max ? SB_DROP_OVERSIZE
                                 : sb_header_check(buf, len, e->cluster_id);
    if (drop < 0 && (bool)(buf[3] & SB_SEALED) != e->sealing)
        drop = e->sealing ? SB_DROP_PLAINTEXT : SB_DROP_SEALED;
    if (drop < 0 && e->sealing) {
        len = sb_open(&e->keyring, buf, len, e->opened);
        buf = e->opened;
        if (!len)
            drop = SB_DROP_AUTH;
    }
    sb_msg m;
    if (drop < 0)
        drop = sb_msg_decode(buf, len, e->cluster_id, &m);
    if (drop >= 0) {
        e->stats.drops[drop]++;
        return SB_EINVAL;
    }
    e->last_heard = now;
    /* a stranger's message (not from a node we know or a seed) gets a
     * reply no larger than itself, and a stranger's PUSH is not passed on */
    bool known = sb_state_find_addr(&e->st, from, strlen(from)) != NULL ||
                 is_seed(e, from);
    e->reply_max = e->cfg.max_message_size;
    if (!known && len < e->reply_max)
        e->reply_max = len;
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
    case SB_MSG_PUSH:
        handle_push(e, buf, len, &m, known, now);
        break;
    }
    return SB_OK;
}

/* ---- the round -------------------------------------------------------- */

static void collect_tombstones(sb_engine *e, sb_peer *n, uint64_t now)
{
    n->gc_due = UINT64_MAX;
    for (uint32_t k = n->nkeys; n->tombstones && k-- > 0;) {
        sb_key *key = n->keys[k];
        if (!key->deleted)
            continue;
        uint64_t due = add_sat(key->deleted_at, e->cfg.tombstone_grace_ns);
        if (due <= now) {
            if (key->version > n->gc_version)
                n->gc_version = key->version;
            sb_peer_remove_key(n, k);
        } else if (due < n->gc_due) {
            n->gc_due = due;
        }
    }
}

/*
 * A node whose due time has come: convict it if its phi passed the
 * threshold, forget it if it has been down (or left, or never proven
 * alive) for the dead-node grace, collect its old tombstones. Returns
 * true if the node was forgotten (its index now holds another node).
 */
static bool attend(sb_engine *e, sb_peer *n, uint64_t now)
{
    if (!n->self && n->status == SB_STATUS_LIVE) {
        floor_gap(e, n); /* the cluster may have grown since the due time */
        if (sb_fd_phi(&n->fd, now) > e->cfg.phi_threshold)
            set_status(e, n, SB_STATUS_DOWN, now);
    }
    if (!n->self && n->status == SB_STATUS_JOINING &&
        now - n->status_since >= join_wait(e))
        set_status(e, n, SB_STATUS_DOWN, now); /* no event: never live */
    if (!n->self && n->status != SB_STATUS_LIVE &&
        now - n->status_since >= e->cfg.dead_grace_ns) {
        /* remembered for another grace: others may gossip it a while */
        sb_state_forget(&e->st, n->id, n->heartbeat,
                        add_sat(now, e->cfg.dead_grace_ns));
        remove_node(e, n);
        return true;
    }
    if (n->tombstones && n->gc_due <= now)
        collect_tombstones(e, n, now);
    refresh_due(e, n);
    return false;
}

/* We could not hear anything while we were paused: every live node's
 * silence is shortened by the pause before it is judged. */
static void forgive_pause(sb_engine *e, uint64_t pause, uint64_t now)
{
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_peer *n = e->st.nodes[i];
        if (n->self || n->status != SB_STATUS_LIVE)
            continue;
        n->fd.last_ns = add_sat(n->fd.last_ns, pause);
        if (n->fd.last_ns > now)
            n->fd.last_ns = now;
        refresh_due(e, n);
    }
}

static bool is_live_peer(const sb_peer *n)
{
    return !n->self && n->status == SB_STATUS_LIVE;
}

static bool is_unreachable(const sb_peer *n)
{
    return !n->self && (n->status == SB_STATUS_DOWN ||
                        n->status == SB_STATUS_JOINING);
}

/* A uniformly random node among the `want` ones that match: a few random
 * draws (quick when most match), then a scan for the k-th match. */
static sb_peer *random_node(sb_engine *e, bool (*match)(const sb_peer *),
                            uint32_t want)
{
    if (!want)
        return NULL;
    for (int t = 0; t < 16; t++) {
        sb_peer *n = e->st.nodes[sb_rng_below(&e->rng, e->st.count)];
        if (match(n))
            return n;
    }
    uint32_t k = (uint32_t)sb_rng_below(&e->rng, want);
    for (uint32_t i = 0; i < e->st.count; i++)
        if (match(e->st.nodes[i]) && k-- == 0)
            return e->st.nodes[i];
    return NULL;
}

static void send_syn(sb_engine *e, const char *to, sb_writer *syn)
{
    if (strcmp(to, e->self->addr) != 0)
        send_packet(e, to, syn);
}

/* Asks the seeds callback for the current seeds. */
static void fetch_seeds(sb_engine *e)
{
    e->seeds_fetched = true;
    if (!e->cfg.seeds)
        return;
    size_t n = e->cfg.seeds(e->cfg.userdata, e->seeds, SB_MAX_SEEDS);
    e->nseeds = n < SB_MAX_SEEDS ? n : SB_MAX_SEEDS;
}

/* A random seed with probability seeds / n (n nodes besides us to pick
 * from); NULL otherwise. */
static const char *chance_seed(sb_engine *e, uint32_t n)
{
    if (!e->nseeds || sb_rng_unit(&e->rng) >= (double)e->nseeds / (double)n)
        return NULL;
    return e->seeds[sb_rng_below(&e->rng, e->nseeds)];
}

/*
 * Seeds. Alone (no live peer), we ask the callback for seeds again and
 * contact every one. Otherwise, as Cassandra does, if the peer of this
 * round was not a seed (or fewer nodes are live than there are seeds) we
 * contact a random seed with probability seeds / (live + unreachable),
 * so that a partitioned cluster heals through its seeds.
 */
static void gossip_seeds(sb_engine *e, const sb_peer *peer, uint32_t nlive,
                         uint32_t nunreach, sb_writer *syn)
{
    if (!peer) {
        fetch_seeds(e);
        for (size_t i = 0; i < e->nseeds; i++)
            if (e->seeds[i])
                send_syn(e, e->seeds[i], syn);
        return;
    }
    if (!e->nseeds || (is_seed(e, peer->addr) && nlive >= e->nseeds))
        return;
    const char *s = chance_seed(e, nlive + nunreach);
    if (s)
        send_syn(e, s, syn);
}

/* ---- the reference exchange (docs/compat.md) ---------------------------
 *
 * With SB_WIRE_REFERENCE a node speaks as the reference Go library does.
 * Each round it sends a digest request to one random node that is not
 * down (to every seed when it knows none) and one to a random down node.
 * A digest, request or response, is the sender's heartbeat: it came
 * straight from its sender. On a digest we learn the nodes it names,
 * answer with a delta of what the sender lacks, most out of date node
 * first, each node's keys in version order (never past
 * max_message_size), and, for a request, our own digest as a response.
 * A delta is applied key by key where its version is newer.
 */

/* A node that is not down: the reference's "up" (self included). */
static bool ref_is_up(const sb_peer *n)
{
    return n->status == SB_STATUS_LIVE || n->status == SB_STATUS_JOINING;
}

static bool ref_is_up_peer(const sb_peer *n)
{
    return !n->self && ref_is_up(n);
}

static bool is_down_peer(const sb_peer *n)
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
static sb_peer *ref_node(sb_engine *e, const char *addr, size_t len,
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
    return add_node(e, addr, len, 1, now);
}

/* One delta entry: stored if newer than the key we hold. Entries may come
 * out of version order (two senders, or a cut message), so the key moves
 * to its place in the node's version order. Where a bound refuses a key,
 * the node's later entries in the message are not taken either: our
 * version of the node stays below the refused key, which is asked for
 * again, rather than pass it and leave it out for good. */
static void ref_apply(sb_engine *e, const sb_ref_entry *r, uint64_t now)
{
    sb_peer *n = ref_node(e, r->addr, r->addr_len, r->version, now);
    if (!n || n->mark == e->epoch)
        return;
    long have = sb_peer_find_key(n, r->key, r->key_len);
    if (have >= 0 && n->keys[have]->version >= r->version)
        return;
    sb_key_entry k = { r->key, r->key_len, r->version, false, r->value,
                       r->value_len };
    if (!within_bounds(e, n, &k) || !store_key(e, n, &k, now)) {
        n->mark = e->epoch;
        return;
    }
    sb_key *stored = n->keys[n->nkeys - 1];
    uint32_t j = n->nkeys - 1;
    for (; j > 0 && n->keys[j - 1]->version > stored->version; j--)
        n->keys[j] = n->keys[j - 1];
    n->keys[j] = stored;
}

/* A digest is its sender's heartbeat (see least_gap()). */
static void ref_heartbeat(sb_engine *e, sb_peer *n, uint64_t now)
{
    observe(e, n, n->heartbeat + 1, false, now);
    if (n->status == SB_STATUS_LIVE && floor_gap(e, n))
        refresh_due(e, n);
}

/* Our digest: every node that is not down, self included, in random
 * order, as many as fit: a request of the round, or the response to the
 * message at hand (no larger than it, to a stranger). */
static void ref_send_digest(sb_engine *e, const char *to, int type)
{
    sb_writer w = type == SB_REF_DIGEST_RESPONSE ? reply_writer(e)
                                                 : new_writer(e);
    sb_ref_put_type(&w, type);
    uint32_t count = 0;
    for (uint32_t i = 0; i < e->st.count; i++)
        if (ref_is_up(e->st.nodes[i]))
            e->sample[count++] = e->st.nodes[i];
    for (uint32_t i = 0; i < count; i++) {
        uint32_t j = i + (uint32_t)sb_rng_below(&e->rng, count - i);
        sb_peer *n = e->sample[j];
        e->sample[j] = e->sample[i];
        if (!sb_ref_put_digest(&w, n->addr, n->addr_len, n->max_version))
            break;
    }
    send_packet(e, to, &w);
}

/* A digest request of the round to `to` (a seed may be NULL, or us). */
static void ref_ask(sb_engine *e, const char *to)
{
    if (to && strcmp(to, e->self->addr) != 0)
        ref_send_digest(e, to, SB_REF_DIGEST_REQUEST);
}

/* Most out of date first; ties in random order. */
static int cmp_behind(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    uint64_t bx = x->n->max_version - x->from;
    uint64_t by = y->n->max_version - y->from;
    if (bx != by)
        return bx > by ? -1 : 1;
    return x->tie < y->tie ? -1 : x->tie > y->tie;
}

/* The delta answering a digest: the keys its sender lacks, if any. */
static void ref_send_delta(sb_engine *e, const char *to, const uint8_t *buf,
                           size_t len)
{
    cand *c = e->p.cands;
    uint32_t nc = 0;
    e->epoch++;
    sb_cursor cur = { buf + 1, buf + len };
    sb_ref_entry r;
    while (sb_ref_next(&cur, SB_REF_DIGEST_REQUEST, &r)) {
        sb_peer *n = sb_state_find_addr(&e->st, r.addr, r.addr_len);
        if (!n || n->mark == e->epoch || n->max_version <= r.version)
            continue;
        n->mark = e->epoch;
        c[nc++] = (cand){ .n = n, .from = r.version,
                          .tie = (uint32_t)sb_rng_next(&e->rng) };
    }
    if (!nc)
        return;
    qsort(c, nc, sizeof(*c), cmp_behind);
    sb_writer w = reply_writer(e);
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
        send_packet(e, to, &w);
}

static int ref_recv(sb_engine *e, const char *from, const uint8_t *buf,
                    size_t len, uint64_t now)
{
    int type;
    size_t from_len = strlen(from);
    int drop = from_len > SB_MAX_ADDR_LEN ? SB_DROP_MALFORMED
                                          : sb_ref_check(buf, len, &type);
    if (drop >= 0) {
        e->stats.drops[drop]++;
        return SB_EINVAL;
    }
    e->last_heard = now;
    sb_cursor c = { buf + 1, buf + len };
    sb_ref_entry r;
    if (type == SB_REF_DELTA) {
        e->epoch++; /* marks the nodes a bound stopped (ref_apply()) */
        while (sb_ref_next(&c, type, &r))
            ref_apply(e, &r, now);
        return SB_OK;
    }
    /* a stranger (not in our view, not a seed) gets no delta and a
     * digest no larger than its datagram: a forged source cannot make
     * us an amplifier. Its digest, like any, names the nodes we learn
     * (a node's own digest names it, so a real one is known after its
     * first) */
    bool stranger = !sb_state_find_addr(&e->st, from, from_len) &&
                    !is_seed(e, from);
    e->reply_max = e->cfg.max_message_size;
    if (stranger && len < e->reply_max)
        e->reply_max = len;
    while (sb_ref_next(&c, type, &r))
        ref_node(e, r.addr, r.addr_len, r.version, now);
    sb_peer *sender = sb_state_find_addr(&e->st, from, from_len);
    if (sender && !sender->self)
        ref_heartbeat(e, sender, now);
    if (!stranger)
        ref_send_delta(e, from, buf, len);
    if (type == SB_REF_DIGEST_REQUEST)
        ref_send_digest(e, from, SB_REF_DIGEST_RESPONSE);
    return SB_OK;
}

/* The round's messages: a digest request to a random node that is not
 * down, or to every seed when there is none; one to a random down node.
 * Beyond the reference, as in our own rounds (gossip_seeds()), a random
 * seed now and then, so that two parts that know no one of the other
 * meet again. */
static void ref_gossip(sb_engine *e)
{
    uint32_t nup = e->nstatus[SB_STATUS_LIVE] +
                   e->nstatus[SB_STATUS_JOINING] - 1; /* self */
    uint32_t ndown = e->nstatus[SB_STATUS_DOWN];
    sb_peer *peer = random_node(e, ref_is_up_peer, nup);
    if (peer) {
        ref_ask(e, peer->addr);
        if (!is_seed(e, peer->addr))
            ref_ask(e, chance_seed(e, nup + ndown));
    } else {
        fetch_seeds(e);
        for (size_t i = 0; i < e->nseeds; i++)
            ref_ask(e, e->seeds[i]);
    }
    sb_peer *down = random_node(e, is_down_peer, ndown);
    if (down)
        ref_ask(e, down->addr);
}

static void round_(sb_engine *e, uint64_t now)
{
    uint64_t since = now - e->last_round;
    e->last_round = now;
    e->stats.rounds++;
    /* a node that hears no one (it can send but not receive, or it is
     * cut off) stops moving its heartbeat, so that its peers see what
     * it is: not part of the cluster (docs/failure-detector.md, section 1) */
    if (!e->reference && now - e->last_heard <= DEAF_ROUNDS * e->round_ns)
        e->self->heartbeat++;
    if (since > 2 * e->round_ns)
        forgive_pause(e, since - e->round_ns, now);

    for (uint32_t i = 0; i < e->st.count;) {
        if (e->st.due[i] <= now && attend(e, e->st.nodes[i], now))
            continue; /* forgotten: slot i holds another node now */
        i++;
    }
    sb_state_expire_forgotten(&e->st, now);
    /* a node that met a peer before its first round knows its seeds
     * all the same, for the rule that heals partitions */
    if (!e->seeds_fetched)
        fetch_seeds(e);
    if (e->reference) {
        ref_gossip(e);
        return;
    }

    sb_writer syn = new_writer(e);
    write_syn(e, &syn, now);
    uint32_t nlive = e->nstatus[SB_STATUS_LIVE] - 1; /* self */
    uint32_t nunreach =
        e->nstatus[SB_STATUS_DOWN] + e->nstatus[SB_STATUS_JOINING];
    sb_peer *peer = random_node(e, is_live_peer, nlive);
    if (peer)
        send_syn(e, peer->addr, &syn);
    /* now and then a down or unproven node, to notice it coming back */
    if (nunreach &&
        sb_rng_unit(&e->rng) < (double)nunreach / (double)(nlive + 1)) {
        sb_peer *x = random_node(e, is_unreachable, nunreach);
        if (x)
            send_syn(e, x->addr, &syn);
    }
    gossip_seeds(e, peer, nlive, nunreach, &syn);
}

void sb_engine_tick(sb_engine *e, uint64_t now)
{
    if (e->self->push_pending && now >= e->push_due)
        flush_pushes(e, now);
    if (now < e->next_round)
        return;
    round_(e, now);
    e->next_round += e->round_ns;
    if (e->next_round <= now) /* late: do not replay missed rounds */
        e->next_round = now + e->round_ns;
}

uint64_t sb_engine_next_deadline(const sb_engine *e)
{
    if (e->self->push_pending && e->push_due < e->next_round)
        return e->push_due;
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
    sb_peer *s = e->self;
    if (e->reference) {
        /* no tombstones in the reference format; its strings and its
         * messages bound an entry */
        if (deleted)
            return SB_ESTATE;
        if (value_len > SB_REF_MAX_STR ||
            1 + sb_ref_delta_size(s->addr_len, key_len, value_len) >
                e->cfg.max_message_size)
            return SB_ETOOBIG;
    } else if (sb_key_entry_size(key_len, value_len, UINT64_MAX) >
               e->max_key_entry) {
        return SB_ETOOBIG;
    }
    long old = sb_peer_find_key(s, key, key_len);
    if (deleted && (old < 0 || s->keys[old]->deleted))
        return SB_ENOTFOUND;
    if (!deleted && old >= 0 && !s->keys[old]->deleted &&
        s->keys[old]->value_len == value_len &&
        (value_len == 0 ||
         memcmp(sb_key_value(s->keys[old]), value, value_len) == 0))
        return SB_OK; /* unchanged */
    uint64_t before = s->max_version;
    uint64_t version = before + 1;
    if (version <= e->version_base)
        version = e->version_base + 1;
    sb_key_entry k = { key, key_len, version, deleted, value, value_len };
    if (!within_bounds(e, s, &k))
        return SB_ELIMIT;
    bool was_live;
    if (!sb_peer_put_key(s, key, key_len, value, value_len, k.version,
                         deleted, now, &was_live))
        return SB_ENOMEM;
    if (deleted)
        note_tombstone(e, s, now);
    note_change(e, s, now, before);
    queue_push(e, before, now);
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

int sb_engine_key_install(sb_engine *e, const uint8_t *key)
{
    if (!key)
        return SB_EINVAL;
    return e->sealing ? sb_keyring_install(&e->keyring, key) : SB_ESTATE;
}

int sb_engine_key_use(sb_engine *e, const uint8_t *key)
{
    if (!key)
        return SB_EINVAL;
    return e->sealing ? sb_keyring_use(&e->keyring, key) : SB_ESTATE;
}

int sb_engine_key_remove(sb_engine *e, const uint8_t *key)
{
    if (!key)
        return SB_EINVAL;
    return e->sealing ? sb_keyring_remove(&e->keyring, key) : SB_ESTATE;
}

int sb_engine_leave(sb_engine *e, uint64_t now)
{
    if (e->reference)
        return SB_ESTATE; /* the reference format cannot say it */
    if (e->self->leaving)
        return SB_ELEFT;
    e->self->leaving = true;
    e->self->heartbeat++;
    note_change(e, e->self, now, NO_DELTA);
    return SB_OK;
}

/* ---- reads ------------------------------------------------------------ */

int sb_engine_get(const sb_engine *e, const char *addr, const uint8_t *key,
                  size_t key_len, const uint8_t **value, size_t *value_len)
{
    if (!addr || !key || !value || !value_len)
        return SB_EINVAL;
    const sb_peer *n = sb_state_find_addr(&e->st, addr, strlen(addr));
    long i = n ? sb_peer_find_key(n, key, key_len) : -1;
    if (i < 0 || n->keys[i]->deleted)
        return SB_ENOTFOUND;
    *value = sb_key_value(n->keys[i]);
    *value_len = n->keys[i]->value_len;
    return SB_OK;
}

static void fill_info(const sb_peer *n, sb_member *out)
{
    out->addr = n->addr;
    out->generation = n->generation;
    out->heartbeat = n->heartbeat;
    out->max_version = n->max_version;
    out->keys = n->nkeys - n->tombstones;
    out->tombstones = n->tombstones;
    out->leaving = n->leaving;
    out->status = (sb_status)n->status;
    out->self = n->self;
}

size_t sb_engine_node_count(const sb_engine *e)
{
    return e->st.count;
}

int sb_engine_node(const sb_engine *e, size_t i, sb_member *out)
{
    if (i >= e->st.count || !out)
        return SB_ENOTFOUND;
    fill_info(e->st.nodes[i], out);
    return SB_OK;
}

int sb_engine_find(const sb_engine *e, const char *addr, sb_member *out)
{
    const sb_peer *n =
        addr ? sb_state_find_addr(&e->st, addr, strlen(addr)) : NULL;
    if (!n || !out)
        return SB_ENOTFOUND;
    fill_info(n, out);
    return SB_OK;
}

double sb_engine_phi(const sb_engine *e, const char *addr, uint64_t now)
{
    const sb_peer *n =
        addr ? sb_state_find_addr(&e->st, addr, strlen(addr)) : NULL;
    if (!n || n->self || n->status != SB_STATUS_LIVE)
        return -1.0;
    return sb_fd_phi(&n->fd, now);
}

void sb_engine_stats(const sb_engine *e, sb_stats *out)
{
    *out = e->stats;
    memcpy(out->nodes, e->nstatus, sizeof(out->nodes));
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
    return sizeof(*e) + e->cfg.max_message_size +
           (e->sealing ? 2 * e->wire_max : 0) + strlen(e->cluster) + 1 +
           e->digest_cap * sizeof(entry_ref) +
           e->p.max_unknown * sizeof(uint64_t) +
           e->scratch_cap * (2 * sizeof(sb_peer *) + sizeof(cand)) +
           sb_state_memory(&e->st);
}
