/*
 * The configuration: sb_config's defaults (sb_config_init()), the checks
 * of what the engine's configuration does not carry, the node's own copy
 * of the strings a caller's sb_config points to, and the engine's
 * configuration made from it (units converted, the runtime's defaults and
 * callbacks filled in). Locking: runs only while a node is being created,
 * before any other thread can see it; takes no lock.
 */
#define _GNU_SOURCE
#include "node.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

void sb_config_init(sb_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    sb_engine_config e;
    sb_engine_config_init(&e);
    cfg->cluster = e.cluster;
    cfg->log_level = SB_LOG_WARN;
    cfg->interval_ms = (uint32_t)(e.interval_ns / MS);
    cfg->max_message_size = e.max_message_size;
    cfg->phi_threshold = e.phi_threshold;
    cfg->dead_grace_ms = e.dead_grace_ns / MS;
    cfg->tombstone_grace_ms = e.tombstone_grace_ns / MS;
    cfg->push_fanout = e.push_fanout;
    cfg->bandwidth = e.bandwidth;
    cfg->monitors = e.monitors;
    cfg->max_nodes = e.max_nodes;
    cfg->max_keys_per_node = e.max_keys_per_node;
    cfg->max_state_bytes = e.max_state_bytes;
}

/* Checks the fields the engine's configuration does not carry (seeds,
 * log level, the runtime's units); logs the first problem. The engine's
 * own rules are checked in node_start_engine() (node.c), by the engine. */
int sb_config_check(const sb_config *c)
{
    const char *bad = NULL;
    if (c->interval_ms > 3600u * 1000)
        bad = "interval_ms must be at most one hour";
    else if (c->nseeds && !c->seeds)
        bad = "seeds is NULL but nseeds is not 0";
    else if (c->nseeds >= SIZE_MAX / sizeof(char *))
        bad = "nseeds is larger than any array";
    else if (c->dead_grace_ms > UINT64_MAX / MS ||
             c->tombstone_grace_ms > UINT64_MAX / MS)
        bad = "a grace is too long";
    else if ((unsigned)c->log_level > SB_LOG_DEBUG)
        bad = "log_level is not an sb_log_level";
    /* the engine cannot tell an explicit generation from the runtime's
     * default (docs/compat.md) */
    else if (c->wire == SB_WIRE_REFERENCE && c->generation)
        bad = "the reference wire format has no generation";
    if (!bad)
        return SB_OK;
    sb_log_say(c, NULL, SB_LOG_ERROR, "bad configuration: %s", bad);
    return SB_ECONFIG;
}

/* Copies the strings the config points to, so the caller's may go. */
int sb_config_copy_strings(sb_node *n, const sb_config *cfg)
{
    n->cluster = strdup(cfg->cluster ? cfg->cluster : "default");
    n->seed_names = calloc(cfg->nseeds + 1, sizeof(char *));
    if (!n->cluster || !n->seed_names)
        return SB_ENOMEM;
    n->cfg.cluster = n->cluster;
    n->cfg.seeds = (const char *const *)n->seed_names;
    for (size_t i = 0; i < cfg->nseeds; i++) {
        if (!cfg->seeds[i])
            continue;
        /* a seed that can never work is an error now, not silence later */
        char host[256], port[8]; /* names as long as sb_addr_resolve() takes */
        if (sb_addr_has_zone(cfg->seeds[i])) {
            sb_log_say(&n->cfg, n, SB_LOG_ERROR, "seed %s: an IPv6 zone: "
                       "link-local addresses are not supported (docs/api.md)",
                       cfg->seeds[i]);
            return SB_EADDR;
        }
        if (sb_addr_split(cfg->seeds[i], host, sizeof(host), port,
                          sizeof(port)) != SB_OK ||
            atoi(port) == 0) {
            sb_log_say(&n->cfg, n, SB_LOG_ERROR, "seed %s: not host:port "
                       "or [ip6]:port with a host of 1 to 255 bytes and a "
                       "port of 1 to 65535",
                       cfg->seeds[i]);
            return SB_EADDR;
        }
        n->seed_names[i] = strdup(cfg->seeds[i]);
        if (!n->seed_names[i])
            return SB_ENOMEM;
    }
    n->cfg.bind = n->cfg.advertise = NULL; /* used only at creation */
    return SB_OK;
}

static uint64_t config_entropy(void)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x))
        x = sb_clock_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
    return x ? x : 1;
}

/* The engine's configuration of node n: sb_config converted, with the
 * runtime's defaults (the wall clock for a generation, the CSPRNG for the
 * PRNG's seed and the nonce prefix) and callbacks. */
void sb_config_engine(const sb_node *n, sb_engine_config *e)
{
    const sb_config *c = &n->cfg;
    sb_engine_config_init(e);
    e->addr = n->addr;
    e->generation =
        c->generation ? c->generation : sb_clock_ns(CLOCK_REALTIME);
    e->rng_seed = c->rng_seed ? c->rng_seed : config_entropy();
    /* a draw of its own: the PRNG's outputs show on the wire */
    if (sodium_init() >= 0)
        randombytes_buf(e->token_key, sizeof(e->token_key));
    e->cluster = n->cluster;
    e->wire = c->wire;
    e->interval_ns = (uint64_t)c->interval_ms * MS;
    e->max_message_size = c->max_message_size;
    e->phi_threshold = c->phi_threshold;
    e->dead_grace_ns = c->dead_grace_ms * MS;
    e->tombstone_grace_ns = c->tombstone_grace_ms * MS;
    e->push_fanout = c->push_fanout;
    e->bandwidth = c->bandwidth;
    e->monitors = c->monitors;
    e->max_nodes = c->max_nodes;
    e->max_keys_per_node = c->max_keys_per_node;
    e->max_state_bytes = c->max_state_bytes;
    e->keys = c->keys;
    /* saturated, so that the engine's check sees a count too large */
    e->nkeys = c->nkeys > UINT32_MAX ? UINT32_MAX : (uint32_t)c->nkeys;
    if (c->nkeys)
        randombytes_buf(e->nonce_prefix, sizeof(e->nonce_prefix));
    e->send = sb_socket_send;
    e->on_event = sb_callbacks_queue;
    e->seeds = sb_seed_resolve_hand_over;
    e->userdata = (void *)n;
}

/* The engine's rules, checked before the socket is bound, but for the
 * least message size, which depends on the address we get: that one is
 * checked after binding (node_start_engine(), node.c). */
int sb_config_check_engine(sb_node *n)
{
    sb_engine_config e;
    sb_config_engine(n, &e);
    e.addr = "0.0.0.0:1"; /* a placeholder of the right form */
    char why[160];
    int rc = sb_engine_check_config(&e, why, sizeof(why));
    if (rc == SB_OK)
        return SB_OK;
    /* refused only for the size? then after binding, with the address */
    sb_engine_config roomy = e;
    roomy.max_message_size = SB_MAX_DATAGRAM;
    roomy.bandwidth = UINT32_MAX;
    if (e.max_message_size <= SB_MAX_DATAGRAM &&
        (!e.bandwidth || e.bandwidth >= sb_engine_least_bandwidth(&e)) &&
        sb_engine_check_config(&roomy, NULL, 0) == SB_OK)
        return SB_OK;
    sb_log_say(&n->cfg, n, SB_LOG_ERROR, "bad configuration: %s", why);
    return rc;
}
