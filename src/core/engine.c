/*
 * The protocol engine (engine.h): configuration checked, creation, receive
 * and dispatch, the round's skeleton, local writes, reads.
 *
 * A gossip round (engine_round()) attends to the peers whose due time has
 * come (liveness.c: conviction by the failure detector, forgetting
 * long-dead peers, collecting old tombstones), then hands over to the
 * protocol's round: ours (round.c) starts one Scuttlebutt exchange with
 * a random live peer (plus, by chance, a down peer and a seed). An
 * exchange is three messages:
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
 * transitively; key data travels in deltas (plan.c builds them, apply.c
 * takes them in), most-out-of-date peer first, each peer's keys in
 * version order, never past max_message_size. Fresh keys of ours also go
 * at once down the push trees (push.c). docs/protocol.md tells the whole
 * story.
 *
 * With SB_WIRE_REFERENCE the engine speaks the reference Go library's
 * format and exchange instead (ref_exchange.c, docs/compat.md): the same
 * state, detector and events, through the same table of wire operations.
 */
#include "engine.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr_text.h"
#include "internal.h"
#include "refwire.h"

uint64_t sb_engine_least_bandwidth(const sb_engine_config *cfg)
{
    uint64_t most = cfg->max_message_size;
    if (cfg->nkeys)
        most += SB_SEAL_OVERHEAD;
    return SB_CAP_MESSAGES * most;
}

void sb_engine_config_init(sb_engine_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->cluster = "default";
    cfg->interval_ns = 500 * MS;
    cfg->max_message_size = 512;
    cfg->phi_threshold = 8.0;
    cfg->dead_grace_ns = 3600ull * 1000 * MS;
    cfg->tombstone_grace_ns = 3600ull * 1000 * MS;
    cfg->phi_window = 1000;
    cfg->monitors = 4;
    cfg->push_fanout = 3;
    cfg->bandwidth = 0; /* SB_BANDWIDTH_DEFAULT, or the least allowed */
    cfg->max_nodes = 4096;
    cfg->max_keys_per_node = 4096;
    cfg->max_state_bytes = 1 << 20;
    cfg->rng_seed = 1;
}

/* The most bytes a delta of our own node spends besides its keys, in
 * the frame of an ACK or a PUSH: header, 24 bytes (an ACK's echo, token
 * and summary; a PUSH has 16), two counts, node header at worst. */
static size_t engine_own_overhead(size_t addr_len)
{
    _Static_assert(2 * SB_TOKEN_SIZE + SB_SUMMARY_SIZE > SB_PUSH_HEADER_SIZE,
                   "an ACK's frame is larger than a PUSH's");
    return SB_HEADER_SIZE + 2 * SB_TOKEN_SIZE + SB_SUMMARY_SIZE +
           2 * 3 /* counts */ + 1 + addr_len + 6 * SB_VARINT_MAX + 1;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
/* Writes the reason, printf-style, into why[0..why_len) if `why` is not
 * NULL, and returns `rc`. */
static int engine_refuse(char *why, size_t why_len, int rc, const char *fmt,
                         ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int sb_engine_check_config(const sb_engine_config *cfg, char *why,
                           size_t why_len)
{
#define REFUSE(...) return engine_refuse(why, why_len, SB_ECONFIG, __VA_ARGS__)
    if (!cfg)
        REFUSE("no configuration");
    if (!cfg->send)
        REFUSE("no send callback");
    if (!cfg->addr)
        REFUSE("no address");
    if (cfg->generation == 0)
        REFUSE("generation must be > 0");
    if (cfg->interval_ns == 0)
        REFUSE("interval must be > 0");
    /* a node forgotten at once is remembered for no time either: peers
     * that have not convicted it yet hand it back live, and it goes
     * down and comes back, a conviction apart, for ever */
    if (cfg->dead_grace_ns == 0)
        REFUSE("dead_grace must be > 0");
    /* below 1, a peer is convicted while it is still more than 10% likely
     * to be alive: after a fraction of one mean gap */
    if (!(cfg->phi_threshold >= 1.0) || isinf(cfg->phi_threshold))
        REFUSE("phi_threshold must be a finite number of at least 1");
    if (cfg->phi_window == 0 || cfg->phi_window > SB_PHI_WINDOW_MAX)
        REFUSE("phi_window must be 1 to %d", SB_PHI_WINDOW_MAX);
    if (cfg->monitors > SB_MAX_RINGS)
        REFUSE("monitors must be at most %d", SB_MAX_RINGS);
    if (cfg->max_nodes < 1)
        REFUSE("max_nodes must be >= 1");
    if (cfg->max_keys_per_node < 1)
        REFUSE("max_keys_per_node must be >= 1");
    if (cfg->max_state_bytes < 1 || cfg->max_state_bytes > UINT32_MAX)
        REFUSE("max_state_bytes must be 1 to %u", (unsigned)UINT32_MAX);
    if (cfg->max_message_size > 65507)
        REFUSE("max_message_size must be at most 65507 (one UDP datagram)");
    _Static_assert(SB_MAX_FANOUT <= SB_MAX_RINGS, "a push tree a ring");
    if (cfg->push_fanout > SB_MAX_FANOUT)
        REFUSE("push_fanout must be at most %d", SB_MAX_FANOUT);
    if (cfg->bandwidth && cfg->bandwidth < sb_engine_least_bandwidth(cfg))
        REFUSE("bandwidth must be at least %d x the largest datagram "
               "sent (%llu bytes a second)", SB_CAP_MESSAGES,
               (unsigned long long)sb_engine_least_bandwidth(cfg));
    if (cfg->nkeys && !cfg->keys)
        REFUSE("keys is NULL but nkeys is not 0");
    if (cfg->nkeys > SB_MAX_KEYS)
        REFUSE("nkeys must be at most SB_MAX_KEYS (%d)", SB_MAX_KEYS);
    /* a key of zeros seals what anyone can open and forge: a buffer the
     * caller never filled, not 32 random bytes */
    for (uint32_t i = 0; i < cfg->nkeys; i++)
        if (sb_key_is_zero(cfg->keys + (size_t)i * SB_KEY_SIZE))
            REFUSE("key %u of %u is all zeros, not a random key", i + 1,
                   cfg->nkeys);
    size_t alen = strlen(cfg->addr);
    if (alen == 0 || alen > SB_MAX_ADDR_LEN)
        return engine_refuse(why, why_len, SB_EADDR,
                             "the address must be 1 to %d bytes",
                             SB_MAX_ADDR_LEN);
    /* peers drop a member address of any other spelling (addr_text.h) */
    if (!sb_addr_canonical(cfg->addr, alen))
        return engine_refuse(why, why_len, SB_EADDR,
                             "the address %s is not canonical numeric "
                             "ip:port or [ip6]:port text",
                             cfg->addr);
    if (cfg->wire != SB_WIRE_SCUTTLEBUTT && cfg->wire != SB_WIRE_REFERENCE)
        REFUSE("wire is not an sb_wire");
    if (cfg->wire == SB_WIRE_REFERENCE) {
        /* what the reference format cannot carry (docs/compat.md) */
        if (cfg->nkeys)
            REFUSE("the reference wire format has no encryption: no keys");
        if (cfg->cluster && strcmp(cfg->cluster, "default") != 0)
            REFUSE("the reference wire format has no cluster name");
        if (cfg->generation > (UINT64_MAX >> 2)) /* versions start there */
            REFUSE("generation must be at most 2^62 with the reference "
                   "wire format");
        /* its smallest useful message is one one-byte key of ours */
        size_t least = 1 + sb_ref_delta_size(alen, 1, 0);
        if (cfg->max_message_size < least)
            REFUSE("max_message_size must be at least %zu for one key of "
                   "this address",
                   least);
        return SB_OK;
    }
    /* the smallest useful message carries one one-byte key, sealed if
     * there are keys */
    size_t least = (cfg->nkeys ? SB_SEAL_OVERHEAD : 0) +
                   engine_own_overhead(alen) +
                   sb_key_entry_size(1, 0, UINT64_MAX);
    if (cfg->max_message_size < least)
        REFUSE("max_message_size must be at least %zu for one %skey of this "
               "address",
               least, cfg->nkeys ? "sealed " : "");
    return SB_OK;
#undef REFUSE
}

int sb_engine_new(const sb_engine_config *cfg, uint64_t now, sb_engine **out)
{
    *out = NULL;
    int rc = sb_engine_check_config(cfg, NULL, 0);
    if (rc != SB_OK)
        return rc;
    size_t alen = strlen(cfg->addr);
    bool reference = cfg->wire == SB_WIRE_REFERENCE;
    size_t seal = cfg->nkeys ? SB_SEAL_OVERHEAD : 0;
    if (cfg->nkeys && !sb_seal_init())
        return SB_EIO;

    sb_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return SB_ENOMEM;
    e->cfg = *cfg;
    e->cfg.keys = NULL; /* copied into the keyring below */
    e->wire = reference ? &sb_reference_wire : &sb_scuttlebutt_wire;
    if (reference) {
        e->cfg.push_fanout = 0;
        e->cfg.monitors = 0;
        e->cfg.generation = 1;
    }
    e->wire_max = cfg->max_message_size;
    e->cfg.max_message_size -= seal;
    if (cfg->nkeys) {
        e->sealing = true;
        e->keyring = calloc(1, sizeof(*e->keyring));
        if (!e->keyring)
            goto oom;
        for (uint32_t i = 0; i < cfg->nkeys; i++)
            sb_keyring_install(e->keyring, cfg->keys + i * SB_KEY_SIZE);
        memcpy(e->nonce, cfg->nonce_prefix, sizeof(cfg->nonce_prefix));
        e->sealed = malloc(e->wire_max);
        e->opened = malloc(e->wire_max);
        if (!e->sealed || !e->opened)
            goto oom;
        e->opened_cap = e->wire_max;
    }
    const char *cluster = cfg->cluster ? cfg->cluster : "";
    e->cluster = malloc(strlen(cluster) + 1);
    if (e->cluster)
        strcpy(e->cluster, cluster);
    sb_scratch_init(&e->scratch, e->cfg.max_message_size);
    sb_state_init(&e->st);
    if (!e->cluster)
        goto oom;
    e->cfg.cluster = e->cluster;
    e->cluster_id = sb_cluster_id(e->cluster);
    sb_rng_seed(&e->rng, cfg->rng_seed);
    sb_token_init(e, cfg->token_key, cfg->rng_seed);
    /* the monitors watch along the first `monitors` rings, the push
     * trees run over the first `push_fanout` (push.c) */
    sb_rings_init(&e->rings, e->cfg.monitors > e->cfg.push_fanout
                                 ? e->cfg.monitors
                                 : e->cfg.push_fanout);
    if (e->cfg.monitors) {
        if (!(e->watch = malloc(e->cfg.monitors * sizeof(*e->watch))))
            goto oom;
        e->watch_cap = e->cfg.monitors;
    }
    if (!reference)
        e->max_key_entry = e->cfg.max_message_size - engine_own_overhead(alen);

    e->self = sb_liveness_add(e, cfg->addr, alen, e->cfg.generation, now);
    if (!e->self)
        goto oom;
    e->cfg.addr = e->self->addr;
    e->self->self = true;
    sb_liveness_set_status(e, e->self, SB_STATUS_LIVE, now);
    e->self->heartbeat = 1;
    /* reference: our versions start at the generation (the runtime's
     * wall clock), above any a previous incarnation reached */
    if (reference)
        e->version_base = cfg->generation - 1;
    e->round_ns = cfg->interval_ns / e->wire->rounds;
    if (!e->round_ns)
        e->round_ns = 1;
    e->next_round = now; /* the first at once: a joining node's seeds */
    e->next_beat = now + sb_rng_below(&e->rng, e->cfg.interval_ns);
    e->last_round = now;
    e->last_heard = now;
    sb_send_cap_init(e, now);
    sb_bucket_init(&e->push_share, 0,
                   SHARE_MESSAGES * (double)e->cfg.max_message_size, now);
    sb_bucket_init(&e->sweep_bytes, SWEEP_BYTES_PER_S, SWEEP_BYTES_PER_S,
                   now);
    e->sweeping = e->wire == &sb_scuttlebutt_wire;
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
    sb_rings_free(&e->rings);
    free(e->verdicts);
    free(e->voters);
    free(e->cluster);
    sb_push_free(e);
    free(e->sealed);
    free(e->opened);
    if (e->keyring) {
        sb_keyring_wipe(e->keyring);
        free(e->keyring);
    }
    sb_seeds_free(e);
    free(e->wanted);
    free(e->behind);
    free(e->held);
    free(e->bold);
    free(e->ranges);
    free(e->watch);
    free(e->recent);
    sb_scratch_release(&e->scratch);
    free(e);
}

static void engine_tick(sb_engine *e, uint64_t now);

int sb_engine_recv(sb_engine *e, const char *from, const uint8_t *buf,
                   size_t len, uint64_t now)
{
    if (!e || !from || !buf)
        return SB_EINVAL;
    if (!sb_scratch_hold(&e->scratch)) {
        sb_scratch_release(&e->scratch);
        e->stats.drops[SB_DROP_NOMEM]++;
        return SB_OK;
    }
    /* a round overdue by a round or more means we were paused (or
     * starved): run it first, so the detector forgives the pause before
     * the packets that queued up meanwhile are taken as heartbeats */
    if (now >= e->next_round + e->round_ns)
        engine_tick(e, now);
    sb_send_cap_refill(e, now);
    e->stats.packets_in++;
    e->stats.bytes_in += len;
    e->wire->recv(e, from, buf, len, now);
    sb_scratch_release(&e->scratch);
    return SB_OK;
}

/* A gossip round: a pause forgiven, the peers due attended to, an idle
 * push's memory freed, then the protocol's own messages (exchange.c,
 * ref_exchange.c). */
static void engine_round(sb_engine *e, uint64_t now)
{
    uint64_t since = now - e->last_round;
    e->last_round = now;
    e->stats.rounds++;
    if (since > 2 * e->round_ns) {
        e->resumed_at = now;
        sb_liveness_forgive_pause(e, since - e->round_ns, now);
        sb_monitor_forgive_pause(e, since - e->round_ns, now);
    }

    for (uint32_t i = 0; i < e->st.count;) {
        if (e->st.due[i] <= now && sb_liveness_attend(e, e->st.peers[i], now))
            continue; /* forgotten: slot i holds another peer now */
        i++;
    }
    sb_state_expire_forgotten(&e->st, now);
    sb_push_rest(e, now);
    sb_recent_rest(e, now);
    /* a node that met a peer before its first round knows its seeds
     * all the same, for the rule that heals partitions */
    if (!e->seeds_fetched)
        sb_seeds_fetch(e);
    e->wire->round(e, now);
    sb_seeds_joins_round(e, now);
}

static void engine_tick(sb_engine *e, uint64_t now)
{
    sb_send_cap_refill(e, now);
    if (now >= sb_push_due(e))
        sb_push_flush(e, now);
    if (now >= sb_announce_due(e))
        e->wire->announce(e, now);
    if (now < e->next_round)
        return;
    engine_round(e, now);
    e->next_round += e->round_ns;
    if (e->stats.rounds == 1) /* then at a phase of our own */
        e->next_round += sb_rng_below(&e->rng, e->round_ns);
    if (e->next_round <= now) /* late: do not replay missed rounds */
        e->next_round = now + e->round_ns;
}

/* Out of memory for the scratch arrays, the tick is skipped: the next
 * one does its work. */
void sb_engine_tick(sb_engine *e, uint64_t now)
{
    if (sb_scratch_hold(&e->scratch))
        engine_tick(e, now);
    sb_scratch_release(&e->scratch);
}

uint64_t sb_engine_next_deadline(const sb_engine *e)
{
    uint64_t t = e->next_round;
    uint64_t push = sb_push_due(e);
    if (push < t)
        t = push;
    uint64_t announce = sb_announce_due(e);
    return announce < t ? announce : t;
}

static int engine_write(sb_engine *e, const uint8_t *key, size_t key_len,
                        const uint8_t *value, size_t value_len, bool deleted,
                        uint64_t now)
{
    if (!key || key_len == 0 || key_len > SB_MAX_KEY_LEN ||
        (value_len && !value) || sb_liveness_reserved(key, key_len))
        return SB_EINVAL;
    if (e->self->leaving)
        return SB_ELEFT;
    /* no value longer than a message travels; refused before any size
     * sum, so that none of them can wrap (a length near SIZE_MAX) */
    if (value_len > e->cfg.max_message_size)
        return SB_ETOOBIG;
    sb_peer *s = e->self;
    int rc = e->wire->check_write(e, key_len, value_len, deleted);
    if (rc != SB_OK)
        return rc;
    long old = sb_peer_find_key(s, key, key_len);
    if (deleted && (old < 0 || s->keys[old]->deleted))
        return SB_ENOTFOUND;
    if (!deleted && old >= 0 && !s->keys[old]->deleted &&
        s->keys[old]->value_len == value_len &&
        (value_len == 0 ||
         memcmp(sb_key_value(s->keys[old]), value, value_len) == 0))
        return SB_OK; /* unchanged */
    return sb_apply_local(e, key, key_len, value, value_len, deleted, now);
}

int sb_engine_set(sb_engine *e, const uint8_t *key, size_t key_len,
                  const uint8_t *value, size_t value_len, uint64_t now)
{
    return engine_write(e, key, key_len, value, value_len, false, now);
}

int sb_engine_del(sb_engine *e, const uint8_t *key, size_t key_len,
                  uint64_t now)
{
    return engine_write(e, key, key_len, NULL, 0, true, now);
}

int sb_engine_key_install(sb_engine *e, const uint8_t *key)
{
    if (!key || sb_key_is_zero(key)) /* as sb_engine_check_config() */
        return SB_EINVAL;
    return e->sealing ? sb_keyring_install(e->keyring, key) : SB_ESTATE;
}

int sb_engine_key_use(sb_engine *e, const uint8_t *key)
{
    if (!key)
        return SB_EINVAL;
    return e->sealing ? sb_keyring_use(e->keyring, key) : SB_ESTATE;
}

int sb_engine_key_remove(sb_engine *e, const uint8_t *key)
{
    if (!key)
        return SB_EINVAL;
    return e->sealing ? sb_keyring_remove(e->keyring, key) : SB_ESTATE;
}

int sb_engine_leave(sb_engine *e, uint64_t now)
{
    if (!e->wire->leaves)
        return SB_ESTATE; /* the format cannot say it */
    if (e->self->leaving)
        return SB_ELEFT;
    e->self->leaving = true;
    e->self->heartbeat++;
    e->remark = true; /* our verdicts are void, and those that name us */
    sb_recent_note(e, e->self, now, NO_DELTA);
    sb_push_queue(e, e->self->max_version, now);
    return SB_OK;
}

int sb_engine_join(sb_engine *e, const char *addr, uint64_t now)
{
    if (e->self->leaving)
        return SB_ELEFT;
    int rc = sb_scratch_hold(&e->scratch) ? sb_seeds_join(e, addr, now)
                                          : SB_ENOMEM;
    sb_scratch_release(&e->scratch);
    return rc;
}

int sb_engine_keys(const sb_engine *e, const char *addr, sb_key_fn fn,
                   void *userdata)
{
    const sb_peer *n =
        addr ? sb_state_find_addr(&e->st, addr, strlen(addr)) : NULL;
    if (!n || !fn)
        return SB_ENOTFOUND;
    for (uint32_t i = 0; i < n->nkeys; i++) {
        const sb_key *k = n->keys[i];
        if (!k->deleted && !sb_liveness_reserved(k->data, k->key_len))
            fn(userdata, k->data, k->key_len, sb_key_value(k), k->value_len);
    }
    return SB_OK;
}

uint64_t sb_engine_token(const sb_engine *e, const char *addr, uint64_t now)
{
    return sb_token(e, addr, now);
}

int sb_engine_max_value(const sb_engine *e, size_t key_len, size_t *max)
{
    if (!max || key_len == 0 || key_len > SB_MAX_KEY_LEN)
        return SB_EINVAL;
    if (e->wire->check_write(e, key_len, 0, false) != SB_OK)
        return SB_ETOOBIG;
    /* the largest length the wire takes: it takes every shorter one */
    size_t lo = 0, hi = e->cfg.max_message_size;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (e->wire->check_write(e, key_len, mid, false) == SB_OK)
            lo = mid;
        else
            hi = mid - 1;
    }
    *max = lo;
    return SB_OK;
}

int sb_engine_get(const sb_engine *e, const char *addr, const uint8_t *key,
                  size_t key_len, const uint8_t **value, size_t *value_len)
{
    if (!addr || !key || !value || !value_len)
        return SB_EINVAL;
    const sb_peer *n = sb_state_find_addr(&e->st, addr, strlen(addr));
    long i = n && !sb_liveness_reserved(key, key_len)
                 ? sb_peer_find_key(n, key, key_len)
                 : -1;
    if (i < 0 || n->keys[i]->deleted)
        return SB_ENOTFOUND;
    *value = sb_key_value(n->keys[i]);
    *value_len = n->keys[i]->value_len;
    return SB_OK;
}

static void engine_member(const sb_peer *n, sb_member *out)
{
    /* the protocol's own keys (verdicts) are not the application's */
    uint32_t reserved = 0, reserved_dead = 0;
    for (uint32_t i = 0; i < n->nkeys; i++)
        if (sb_liveness_reserved(n->keys[i]->data, n->keys[i]->key_len)) {
            reserved++;
            reserved_dead += n->keys[i]->deleted;
        }
    out->addr = n->addr;
    out->generation = n->generation;
    out->heartbeat = n->heartbeat;
    out->max_version = n->max_version;
    uint32_t tombstones = sb_peer_tombstones(n);
    out->keys = n->nkeys - tombstones - (reserved - reserved_dead);
    out->tombstones = tombstones - reserved_dead;
    out->leaving = n->leaving;
    out->status = (sb_status)n->status;
    out->self = n->self;
}

size_t sb_engine_member_count(const sb_engine *e)
{
    return e->st.count;
}

int sb_engine_member(const sb_engine *e, size_t i, sb_member *out)
{
    if (i >= e->st.count || !out)
        return SB_ENOTFOUND;
    engine_member(e->st.peers[i], out);
    return SB_OK;
}

int sb_engine_find(const sb_engine *e, const char *addr, sb_member *out)
{
    const sb_peer *n =
        addr ? sb_state_find_addr(&e->st, addr, strlen(addr)) : NULL;
    if (!n || !out)
        return SB_ENOTFOUND;
    engine_member(n, out);
    return SB_OK;
}

double sb_engine_phi(const sb_engine *e, const char *addr, uint64_t now)
{
    const sb_peer *n =
        addr ? sb_state_find_addr(&e->st, addr, strlen(addr)) : NULL;
    if (!n || n->self || n->status != SB_STATUS_LIVE)
        return -1.0;
    return sb_phi_value(&n->phi, now);
}

void sb_engine_stats(const sb_engine *e, sb_stats *out)
{
    *out = e->stats;
    memcpy(out->members, e->nstatus, sizeof(out->members));
}

uint64_t sb_engine_drops(const sb_engine *e, sb_drop_reason reason)
{
    return e->stats.drops[reason];
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
    return sizeof(*e) +
           (e->sealing ? sizeof(*e->keyring) + e->wire_max + e->opened_cap
                       : 0) +
           sb_seeds_memory(e) +
           e->watch_cap * sizeof(*e->watch) +
           strlen(e->cluster) + 1 +
           sb_scratch_memory(&e->scratch) + sb_state_memory(&e->st) +
           sb_rings_memory(&e->rings) +
           sb_push_memory(e) +
           (e->recent ? RECENT * sizeof(*e->recent) : 0) +
           e->verdicts_cap * sizeof(*e->verdicts) +
           e->voters_cap * sizeof(*e->voters) +
           (e->wanted ? WANTED * sizeof(*e->wanted) : 0) +
           (e->behind ? BEHIND * sizeof(*e->behind) : 0) +
           (e->held ? SWEEP_HELD * sizeof(*e->held) : 0) +
           (e->bold ? BOLD_SEEDS * sizeof(*e->bold) : 0) +
           (e->ranges ? RANGES * sizeof(*e->ranges) : 0);
}

size_t sb_engine_scratch_peak(const sb_engine *e)
{
    return e->scratch.peak;
}

