/*
 * The runtime: one cluster member on a real UDP socket.
 *
 * An sb_node wraps one protocol engine (src/core/engine.h) with what the
 * engine leaves out: a socket, a clock, a lock, callbacks and, unless the
 * caller runs its own event loop, a thread.
 *
 * A packet's path: the socket becomes readable; sb_node_process() reads
 * it with recvfrom(), names the sender with sb_addr_format() and hands
 * both to sb_engine_recv() under the lock. The engine answers through
 * node_send_datagram() (still under the lock), which parses the peer's address
 * and calls sendto(). Events the engine reports are copied into a queue;
 * once the lock is released, node_dispatch() runs the user's callbacks.
 *
 * Locking: `lock` guards the engine and every field marked (L). The
 * socket is read only by the one thread inside sb_node_process().
 * Callbacks (events, seeds, log) never run with the lock held.
 */
#define _GNU_SOURCE /* pipe2 */
#include "scuttlebutt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "engine.h"

#define RECV_BATCH 64          /* datagrams per sb_node_process() */
#define SEND_REPORT_NS (1000 * MS) /* at most one send-error line a second */

/* Seed addresses resolved to canonical text, as the engine takes them. */
typedef struct seed_list {
    size_t n;
    const char *ptr[SB_MAX_SEEDS];
    char text[SB_MAX_SEEDS][SB_ADDR_STRLEN];
} seed_list;

/* An event waiting for dispatch; `blob` holds addr, key and value. */
typedef struct queued {
    sb_event ev;
    char *blob;
} queued;

struct sb_node {
    sb_config cfg;             /* a copy; its strings point below */
    char *cluster;
    char **seed_names;         /* the static seed list, copied */
    /* seed names already reported as unusable (hashed), so that a seed
     * that does not resolve yet is logged once, not every round */
    uint64_t seeds_reported[2 * SB_MAX_SEEDS];
    size_t nseeds_reported;

    int fd;
    int family;                /* of the socket */
    unsigned reach;            /* SB_REACH_V4 | SB_REACH_V6 */
    char addr[SB_ADDR_STRLEN]; /* advertised: our identity */
    char bind_addr[SB_ADDR_STRLEN];
    uint8_t *rbuf;             /* rlen bytes: any datagram, whole (a peer
                                  may send more than our own
                                  max_message_size) */
    size_t rlen;

    pthread_mutex_t lock;
    sb_engine *engine;         /* (L) */

    seed_list *seeds_given;    /* (L) what the engine holds pointers to */
    seed_list *seeds_fresh;    /* (L) resolved, for the next seeding */
    bool seeds_wanted;         /* (L) the engine was alone: resolve again */

    queued *events;            /* (L) */
    size_t nevents, events_cap;
    uint64_t events_lost;      /* (L) events dropped for lack of memory */

    uint64_t send_errors;      /* (L) */
    uint64_t send_errors_unreported; /* (L) */
    int send_errno;            /* (L) the last error, and where to */
    char send_to[SB_ADDR_STRLEN];
    uint64_t send_reported;    /* (L) when a line last reported them */

    bool processing;           /* (L) a thread is inside node_process() */
    pthread_t processor;       /* (L) which one */

    bool threaded;
    bool stop;                 /* (L) the thread should return */
    bool stopped;              /* (L) sb_node_stop(): calls refused */
    pthread_mutex_t join_lock; /* one join, which every stop waits for */
    bool joined;               /* (J) the thread has been joined */
    pthread_t thread;
    int wake[2];               /* a pipe that wakes the thread */
};

/* ---- time, logging ----------------------------------------------------- */

static uint64_t node_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t node_now_ns(void)
{
    return node_clock_ns(CLOCK_MONOTONIC);
}

/* The node whose callback this thread is running, if any: a callback may
 * call the API, but may not free its node (sb_node_free() says
 * SB_ESTATE), whatever the callback (log, seeds, events) and wherever it
 * runs (the node's thread, or the caller's inside an API call). */
static _Thread_local const sb_node *node_calling_back;

/* Marks the start of a callback of node n; returns what to restore. */
static const sb_node *node_callback_begin(const sb_node *n)
{
    const sb_node *outer = node_calling_back;
    node_calling_back = n;
    return outer;
}

static void node_callback_end(const sb_node *outer)
{
    node_calling_back = outer;
}

/* Logs through the configured callback; n is the node, or NULL before
 * one exists. */
__attribute__((format(printf, 4, 5)))
static void node_say(const sb_config *cfg, const sb_node *n,
                     sb_log_level level, const char *fmt, ...)
{
    if (!cfg->log || level > cfg->log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const sb_node *outer = node_callback_begin(n);
    cfg->log(cfg->userdata, level, msg);
    node_callback_end(outer);
}


void sb_log_stderr(void *userdata, sb_log_level level, const char *msg)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    (void)userdata;
    const char *name = (unsigned)level < 4 ? names[level] : "?";
    fprintf(stderr, "scuttlebutt: %s: %s\n", name, msg);
}

void sb_free(void *p)
{
    free(p);
}

/* ---- configuration ------------------------------------------------------ */

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
    cfg->push_packets_per_s = e.push_packets_per_s;
    cfg->push_bytes_per_s = e.push_bytes_per_s;
    cfg->monitors = e.monitors;
    cfg->max_nodes = e.max_nodes;
    cfg->max_keys_per_node = e.max_keys_per_node;
    cfg->max_state_bytes = e.max_state_bytes;
}

/* Checks the fields the engine's configuration does not carry (seeds,
 * log level, the runtime's units); logs the first problem. The engine's
 * own rules are checked in node_start_engine(), by the engine. */
static int node_check_config(const sb_config *c)
{
    const char *bad = NULL;
    if (c->interval_ms > 3600u * 1000)
        bad = "interval_ms must be at most one hour";
    else if (c->nseeds && !c->seeds)
        bad = "seeds is NULL but nseeds is not 0";
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
    node_say(c, NULL, SB_LOG_ERROR, "bad configuration: %s", bad);
    return SB_ECONFIG;
}

/* ---- seeds -------------------------------------------------------------- */

/* Whether seed `name` was reported unusable already; `mark` records it
 * (true) or forgets it (false: it works now, and may be reported again). */
static bool node_seed_reported(sb_node *n, const char *name, bool mark)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    for (size_t i = 0; i < n->nseeds_reported; i++) {
        if (n->seeds_reported[i] != h)
            continue;
        if (!mark)
            n->seeds_reported[i] = n->seeds_reported[--n->nseeds_reported];
        return true;
    }
    if (mark) {
        /* full: the oldest report makes room, so memory stays bounded */
        if (n->nseeds_reported == 2 * SB_MAX_SEEDS)
            memmove(n->seeds_reported, n->seeds_reported + 1,
                    --n->nseeds_reported * sizeof(*n->seeds_reported));
        n->seeds_reported[n->nseeds_reported++] = h;
    }
    return false;
}

/* A seed's address the socket can send to: of a family it reaches, and
 * not link-local (whose zone the address text drops). */
static bool node_seed_usable(const sb_node *n, const sb_sockaddr *a)
{
    return (n->reach & sb_addr_reach_bit(a)) && !sb_addr_is_link_local(a);
}

/* Resolves every seed name (static list, then callback) into a new list;
 * runs without the lock (getaddrinfo may block). A seed that gives no
 * address (not resolved yet, or none of the socket's family) is logged
 * once, until it works again. */
static seed_list *node_resolve_seeds(sb_node *n)
{
    const char *names[2 * SB_MAX_SEEDS];
    size_t count = 0;
    for (size_t i = 0; i < n->cfg.nseeds && count < SB_MAX_SEEDS; i++)
        names[count++] = n->seed_names[i];
    if (n->cfg.seed_fn) {
        const sb_node *outer = node_callback_begin(n);
        size_t got = n->cfg.seed_fn(n->cfg.userdata, names + count,
                                    SB_MAX_SEEDS);
        node_callback_end(outer);
        count += got < SB_MAX_SEEDS ? got : SB_MAX_SEEDS;
    }
    seed_list *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    for (size_t i = 0; i < count && l->n < SB_MAX_SEEDS; i++) {
        if (!names[i])
            continue;
        sb_sockaddr found[8];
        /* every family, so that one the socket cannot reach is told apart
         * from a name that does not resolve */
        int k = sb_addr_resolve(names[i], AF_UNSPEC, false, found, 8);
        if (k < 0) {
            if (!node_seed_reported(n, names[i], true))
                node_say(&n->cfg, n, SB_LOG_WARN, "seed %s: cannot resolve "
                         "(tried again while the node is alone)", names[i]);
            continue;
        }
        int usable = 0;
        for (int j = 0; j < k; j++)
            usable += node_seed_usable(n, &found[j]);
        if (!usable) {
            if (!node_seed_reported(n, names[i], true))
                node_say(&n->cfg, n, SB_LOG_WARN, "seed %s: no address of "
                         "a family the socket at %s can reach (IPv6 "
                         "link-local ones are not supported)", names[i],
                         n->bind_addr);
            continue;
        }
        node_seed_reported(n, names[i], false);
        for (int j = 0; j < k && l->n < SB_MAX_SEEDS; j++) {
            if (!node_seed_usable(n, &found[j]))
                continue;
            char *t = l->text[l->n];
            sb_addr_format(&found[j], t);
            bool dup = strcmp(t, n->addr) == 0;
            for (size_t m = 0; m < l->n && !dup; m++)
                dup = strcmp(l->text[m], t) == 0;
            if (!dup) {
                l->ptr[l->n] = t;
                l->n++;
            }
        }
    }
    return l;
}

/* The engine's seeds callback (lock held): hands over the freshest list
 * and asks for another resolution once the lock is released. */
static size_t node_engine_seeds(void *userdata, const char **out, size_t max)
{
    sb_node *n = userdata;
    if (n->seeds_fresh) {
        free(n->seeds_given);
        n->seeds_given = n->seeds_fresh;
        n->seeds_fresh = NULL;
    }
    n->seeds_wanted = true;
    seed_list *l = n->seeds_given;
    size_t k = l ? (l->n < max ? l->n : max) : 0;
    for (size_t i = 0; i < k; i++)
        out[i] = l->ptr[i];
    return k;
}

/* ---- the engine's callbacks (lock held) ---------------------------------- */

static void node_send_datagram(void *userdata, const char *to,
                               const uint8_t *buf, size_t len)
{
    sb_node *n = userdata;
    sb_sockaddr a;
    int err = 0;
    if (sb_addr_parse(to, &a) != SB_OK || !sb_addr_for_family(&a, n->family))
        err = EAFNOSUPPORT;
    else if (sendto(n->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                    (struct sockaddr *)&a.ss, a.len) < 0)
        err = errno;
    if (!err)
        return;
    n->send_errors++;
    n->send_errors_unreported++;
    n->send_errno = err;
    snprintf(n->send_to, sizeof(n->send_to), "%s", to);
}

/* Copies an event into the queue: addr, key and value, each followed by
 * a NUL byte, in one allocation. */
static void node_queue_event(void *userdata, const sb_event *ev)
{
    sb_node *n = userdata;
    if (n->nevents == n->events_cap) {
        size_t cap = n->events_cap ? 2 * n->events_cap : 16;
        queued *q = realloc(n->events, cap * sizeof(*q));
        if (!q) {
            n->events_lost++;
            return;
        }
        n->events = q;
        n->events_cap = cap;
    }
    size_t alen = strlen(ev->addr);
    char *blob = malloc(alen + ev->key_len + ev->value_len + 3);
    if (!blob) {
        n->events_lost++;
        return;
    }
    queued *q = &n->events[n->nevents++];
    q->ev = *ev;
    q->blob = blob;
    memcpy(blob, ev->addr, alen + 1);
    q->ev.addr = blob;
    char *key = blob + alen + 1;
    if (ev->key_len)
        memcpy(key, ev->key, ev->key_len);
    key[ev->key_len] = '\0';
    char *value = key + ev->key_len + 1;
    if (ev->value_len)
        memcpy(value, ev->value, ev->value_len);
    value[ev->value_len] = '\0';
    q->ev.key = ev->key ? key : NULL;
    q->ev.value = ev->value ? value : NULL;
}

/* ---- creation and destruction -------------------------------------------- */

/* Binds the socket and settles our address (`cfg` is the caller's). */
static int node_open_socket(sb_node *n, const sb_config *cfg)
{
    sb_sockaddr a;
    if (!cfg->bind) {
        node_say(&n->cfg, n, SB_LOG_ERROR, "bind address is required (host:port)");
        return SB_EADDR;
    }
    if (sb_addr_resolve(cfg->bind, AF_UNSPEC, true, &a, 1) < 1) {
        node_say(&n->cfg, n, SB_LOG_ERROR, "bind address %s: not host:port or "
                 "cannot resolve", cfg->bind);
        return SB_EADDR;
    }
    if (sb_addr_is_link_local(&a)) {
        node_say(&n->cfg, n, SB_LOG_ERROR, "bind address %s: IPv6 "
                 "link-local addresses are not supported (their zone cannot "
                 "be advertised)", cfg->bind);
        return SB_EADDR;
    }
    n->family = a.ss.ss_family;
    n->fd = socket(n->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (n->fd < 0) {
        node_say(&n->cfg, n, SB_LOG_ERROR, "socket: %s", strerror(errno));
        return SB_EIO;
    }
    if (n->family == AF_INET6) { /* [::] takes IPv4 peers too */
        int off = 0;
        if (setsockopt(n->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off,
                       sizeof(off)) < 0)
            node_say(&n->cfg, n, SB_LOG_WARN, "%s: IPv6 only (IPV6_V6ONLY: %s)",
                     cfg->bind, strerror(errno));
    }
    if (bind(n->fd, (struct sockaddr *)&a.ss, a.len) < 0) {
        int err = errno;
        node_say(&n->cfg, n, SB_LOG_ERROR, "bind %s: %s", cfg->bind,
                 strerror(err));
        return err == EADDRINUSE ? SB_EADDRINUSE
               : err == EADDRNOTAVAIL || err == EACCES ? SB_EADDR : SB_EIO;
    }
    sb_sockaddr bound = { .len = sizeof(bound.ss) };
    if (getsockname(n->fd, (struct sockaddr *)&bound.ss, &bound.len) < 0) {
        node_say(&n->cfg, n, SB_LOG_ERROR, "getsockname: %s", strerror(errno));
        return SB_EIO;
    }
    sb_addr_format(&bound, n->bind_addr);
    n->reach = sb_addr_reach(&bound);

    if (!cfg->advertise) {
        if (sb_addr_is_wildcard(&bound)) {
            node_say(&n->cfg, n, SB_LOG_ERROR, "bound to the wildcard %s: set "
                "advertise to the address peers reach us at", n->bind_addr);
            return SB_EADDR;
        }
        memcpy(n->addr, n->bind_addr, sizeof(n->addr));
        return SB_OK;
    }
    sb_sockaddr adv;
    if (sb_addr_parse(cfg->advertise, &adv) != SB_OK ||
        sb_addr_is_wildcard(&adv) || sb_addr_port(&adv) == 0 ||
        sb_addr_is_link_local(&adv)) {
        node_say(&n->cfg, n, SB_LOG_ERROR, "advertise address %s: not a numeric, "
                 "non-wildcard, non-link-local ip:port with a port",
                 cfg->advertise);
        return SB_EADDR;
    }
    if (!(n->reach & sb_addr_reach_bit(&adv))) {
        node_say(&n->cfg, n, SB_LOG_ERROR, "advertise address %s: another address "
                 "family than the socket bound to %s", cfg->advertise,
                 n->bind_addr);
        return SB_EADDR;
    }
    sb_addr_format(&adv, n->addr);
    /* peers take answers only from the address they wrote to (the reply
     * tokens, docs/security.md, section 7) */
    if (sb_addr_port(&adv) != sb_addr_port(&bound) ||
        (!sb_addr_is_wildcard(&bound) && strcmp(n->addr, n->bind_addr) != 0))
        node_say(&n->cfg, n, SB_LOG_WARN, "advertise address %s: our "
                 "datagrams leave from %s, and peers take answers only from "
                 "the address they wrote to; this works only behind a NAT "
                 "that maps one to the other", n->addr, n->bind_addr);
    return SB_OK;
}

/* Copies the strings the config points to, so the caller's may go. */
static int node_copy_strings(sb_node *n, const sb_config *cfg)
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
        if (sb_addr_split(cfg->seeds[i], host, sizeof(host), port,
                          sizeof(port)) != SB_OK ||
            atoi(port) == 0) {
            node_say(&n->cfg, n, SB_LOG_ERROR, "seed %s: not host:port or "
                     "[ip6]:port with a port of 1 to 65535", cfg->seeds[i]);
            return SB_EADDR;
        }
        n->seed_names[i] = strdup(cfg->seeds[i]);
        if (!n->seed_names[i])
            return SB_ENOMEM;
    }
    n->cfg.bind = n->cfg.advertise = NULL; /* used only at creation */
    return SB_OK;
}

static uint64_t node_entropy(void)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x))
        x = node_clock_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
    return x ? x : 1;
}

/* The engine's configuration of node n: sb_config converted, with the
 * runtime's defaults (the wall clock for a generation, the CSPRNG for the
 * PRNG's seed and the nonce prefix) and callbacks. */
static void node_engine_config(const sb_node *n, sb_engine_config *e)
{
    const sb_config *c = &n->cfg;
    sb_engine_config_init(e);
    e->addr = n->addr;
    e->generation =
        c->generation ? c->generation : node_clock_ns(CLOCK_REALTIME);
    e->rng_seed = c->rng_seed ? c->rng_seed : node_entropy();
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
    e->push_packets_per_s = c->push_packets_per_s;
    e->push_bytes_per_s = c->push_bytes_per_s;
    e->monitors = c->monitors;
    e->max_nodes = c->max_nodes;
    e->max_keys_per_node = c->max_keys_per_node;
    e->max_state_bytes = c->max_state_bytes;
    e->keys = c->keys;
    /* saturated, so that the engine's check sees a count too large */
    e->nkeys = c->nkeys > UINT32_MAX ? UINT32_MAX : (uint32_t)c->nkeys;
    if (c->nkeys)
        randombytes_buf(e->nonce_prefix, sizeof(e->nonce_prefix));
    e->send = node_send_datagram;
    e->on_event = node_queue_event;
    e->seeds = node_engine_seeds;
    e->userdata = (void *)n;
}

/* The engine's rules, checked before the socket is bound, but for the
 * least message size, which depends on the address we get: that one is
 * checked after binding (node_start_engine()). */
static int node_check_engine_config(sb_node *n)
{
    sb_engine_config e;
    node_engine_config(n, &e);
    e.addr = "0.0.0.0:1"; /* a placeholder of the right form */
    char why[160];
    int rc = sb_engine_check_config(&e, why, sizeof(why));
    if (rc == SB_OK)
        return SB_OK;
    /* refused only for the size? then after binding, with the address */
    sb_engine_config roomy = e;
    roomy.max_message_size = SB_MAX_DATAGRAM;
    roomy.push_bytes_per_s = UINT32_MAX;
    if (e.max_message_size <= SB_MAX_DATAGRAM &&
        (!e.push_fanout || e.push_bytes_per_s >= e.max_message_size) &&
        sb_engine_check_config(&roomy, NULL, 0) == SB_OK)
        return SB_OK;
    node_say(&n->cfg, n, SB_LOG_ERROR, "bad configuration: %s", why);
    return rc;
}

static int node_start_engine(sb_node *n)
{
    const sb_config *c = &n->cfg;
    if (c->nkeys && sodium_init() < 0) {
        node_say(c, n, SB_LOG_ERROR, "cannot initialise libsodium");
        return SB_EIO;
    }
    sb_engine_config e;
    node_engine_config(n, &e);
    char why[160];
    int rc = sb_engine_check_config(&e, why, sizeof(why));
    if (rc == SB_OK)
        rc = sb_engine_new(&e, node_now_ns(), &n->engine);
    else
        node_say(c, n, SB_LOG_ERROR, "bad configuration: %s (node %s)", why,
                 n->addr);
    sodium_memzero(&e, sizeof(e));
    n->cfg.keys = NULL; /* the engine has its own copy */
    if (rc != SB_OK && rc != SB_ECONFIG && rc != SB_EADDR)
        node_say(c, n, SB_LOG_ERROR, "engine: %s", sb_strerror(rc));
    if (rc != SB_OK)
        return rc;
    if (c->wire == SB_WIRE_REFERENCE)
        node_say(c, n, SB_LOG_WARN, "node %s speaks the reference wire format: "
                 "its packets are plaintext and unauthenticated, and anyone "
                 "who can reach its port can change what the cluster "
                 "believes", n->addr);
    else if (!c->nkeys)
        node_say(c, n, SB_LOG_WARN, "node %s has no cluster key: its packets are "
                 "plaintext, and anyone who can reach its port can change what "
                 "the cluster believes", n->addr);
    return rc;
}

static void *node_run(void *arg);
static void node_wake(sb_node *n);

int sb_node_new(const sb_config *cfg, sb_node **out)
{
    if (!out)
        return SB_EINVAL;
    *out = NULL;
    if (!cfg)
        return SB_EINVAL;
    /* a program built against an older, smaller sb_config gets the
     * defaults of the fields it does not know; one never initialised, or
     * built against a newer library, is refused (and cannot be trusted to
     * name a log callback) */
    if (cfg->size < offsetof(sb_config, bind) + sizeof(cfg->bind) ||
        cfg->size > sizeof(sb_config))
        return SB_ECONFIG;
    sb_config known;
    sb_config_init(&known);
    memcpy(&known, cfg, cfg->size);
    known.size = sizeof(known);
    cfg = &known;
    int rc = node_check_config(cfg);
    if (rc != SB_OK)
        return rc;
    sb_node *n = calloc(1, sizeof(*n));
    if (!n)
        return SB_ENOMEM;
    n->cfg = *cfg;
    n->fd = n->wake[0] = n->wake[1] = -1;
    pthread_mutex_init(&n->lock, NULL);
    pthread_mutex_init(&n->join_lock, NULL);
    rc = node_copy_strings(n, cfg);
    if (rc == SB_OK)
        rc = node_check_engine_config(n);
    if (rc == SB_OK)
        rc = node_open_socket(n, cfg);
    if (rc == SB_OK)
        rc = node_start_engine(n);
    if (rc == SB_OK) {
        /* peers may send more than our max_message_size: their
         * datagrams are read whole (and one larger than any is cut and
         * shows as oversize) */
        n->rlen = SB_MAX_DATAGRAM + 1;
        n->rbuf = malloc(n->rlen);
        if (!n->rbuf)
            rc = SB_ENOMEM;
    }
    if (rc == SB_OK) {
        n->seeds_fresh = node_resolve_seeds(n);
        if (!n->seeds_fresh)
            rc = SB_ENOMEM;
    }
    if (rc == SB_OK && !cfg->embedded) {
        n->threaded = true;
        int err = pipe2(n->wake, O_NONBLOCK | O_CLOEXEC) < 0
                      ? errno
                      : pthread_create(&n->thread, NULL, node_run, n);
        if (err) {
            node_say(cfg, n, SB_LOG_ERROR, "cannot start the node's thread: %s",
                     strerror(err));
            n->threaded = false;
            rc = SB_EIO;
        }
    }
    if (rc != SB_OK) {
        sb_node_free(n);
        return rc;
    }
    node_say(cfg, n, SB_LOG_INFO, "node %s up, bound to %s, cluster \"%s\"",
             n->addr, n->bind_addr, n->cluster);
    *out = n;
    return SB_OK;
}

/* Whether the calling thread is inside one of this node's callbacks, or
 * inside its sb_node_process(), where events are handed out. */
static bool node_in_own_callback(sb_node *n)
{
    if (node_calling_back == n)
        return true;
    pthread_mutex_lock(&n->lock);
    bool inside = n->processing && pthread_equal(n->processor, pthread_self());
    pthread_mutex_unlock(&n->lock);
    return inside;
}

/* Takes the node's lock, unless it was stopped: false then, unlocked. */
static bool node_lock_running(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    if (!n->stopped)
        return true;
    pthread_mutex_unlock(&n->lock);
    return false;
}

/* Ends the node's thread, once. */
/* Ends the node's thread, once; a second caller waits until it has. */
static void node_join(sb_node *n)
{
    if (!n->threaded)
        return;
    pthread_mutex_lock(&n->join_lock);
    if (!n->joined) {
        pthread_mutex_lock(&n->lock);
        n->stop = true;
        pthread_mutex_unlock(&n->lock);
        node_wake(n);
        pthread_join(n->thread, NULL);
        n->joined = true;
    }
    pthread_mutex_unlock(&n->join_lock);
}

int sb_node_stop(sb_node *n)
{
    if (!n)
        return SB_EINVAL;
    if (node_in_own_callback(n))
        return SB_ESTATE;
    pthread_mutex_lock(&n->lock);
    bool was = n->stopped;
    n->stopped = true;
    pthread_mutex_unlock(&n->lock);
    node_join(n); /* a second stop returns once the first has joined */
    if (!was)
        node_say(&n->cfg, n, SB_LOG_INFO, "node %s stopped", n->addr);
    return SB_OK;
}

int sb_node_free(sb_node *n)
{
    if (!n)
        return SB_OK;
    if (node_in_own_callback(n))
        return SB_ESTATE;
    if (n->engine && !n->stopped)
        node_say(&n->cfg, n, SB_LOG_INFO, "node %s stopped", n->addr);
    node_join(n);
    sb_engine_free(n->engine);
    for (size_t i = 0; i < n->nevents; i++)
        free(n->events[i].blob);
    free(n->events);
    free(n->seeds_given);
    free(n->seeds_fresh);
    if (n->seed_names)
        for (size_t i = 0; i < n->cfg.nseeds; i++)
            free(n->seed_names[i]);
    free(n->seed_names);
    free(n->cluster);
    free(n->rbuf);
    if (n->fd >= 0)
        close(n->fd);
    if (n->wake[0] >= 0) {
        close(n->wake[0]);
        close(n->wake[1]);
    }
    pthread_mutex_destroy(&n->lock);
    pthread_mutex_destroy(&n->join_lock);
    free(n);
    return SB_OK;
}

/* ---- the event loop ------------------------------------------------------ */

int sb_node_fd(const sb_node *n)
{
    return n ? n->fd : -1;
}

int sb_node_timeout_ms(sb_node *n)
{
    if (!n)
        return -1;
    if (!node_lock_running(n))
        return -1;
    uint64_t now = node_now_ns();
    uint64_t due = sb_engine_next_deadline(n->engine);
    pthread_mutex_unlock(&n->lock);
    if (due <= now)
        return 0;
    uint64_t ms = (due - now + MS - 1) / MS;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Reads up to a batch of datagrams and feeds them to the engine. */
static void node_receive(sb_node *n)
{
    for (int i = 0; i < RECV_BATCH; i++) {
        sb_sockaddr from = { .len = sizeof(from.ss) };
        ssize_t len = recvfrom(n->fd, n->rbuf, n->rlen,
                               MSG_DONTWAIT | MSG_TRUNC,
                               (struct sockaddr *)&from.ss, &from.len);
        if (len < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNREFUSED ||
                errno == EHOSTUNREACH || errno == ENETUNREACH)
                continue;
            node_say(&n->cfg, n, SB_LOG_WARN, "recvfrom: %s", strerror(errno));
            return;
        }
        size_t got = (size_t)len;
        if (got > n->rlen) /* truncated: oversize */
            got = n->rlen;
        char name[SB_ADDR_STRLEN];
        sb_addr_format(&from, name);
        pthread_mutex_lock(&n->lock);
        sb_engine_recv(n->engine, name, n->rbuf, got, node_now_ns());
        pthread_mutex_unlock(&n->lock);
    }
}

/* Runs the callbacks of the queued events, without the lock. */
static void node_dispatch(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    queued *events = n->events;
    size_t count = n->nevents;
    uint64_t lost = n->events_lost;
    n->events = NULL;
    n->nevents = n->events_cap = 0;
    n->events_lost = 0;
    pthread_mutex_unlock(&n->lock);

    if (lost)
        node_say(&n->cfg, n, SB_LOG_ERROR, "out of memory: %llu events lost",
                 (unsigned long long)lost);
    const sb_config *c = &n->cfg;
    for (size_t i = 0; i < count; i++) {
        sb_event *ev = &events[i].ev;
        ev->node = n;
        sb_event_fn fn = NULL;
        switch (ev->type) {
        case SB_EVENT_JOIN:
            fn = c->on_join;
            node_say(c, n, SB_LOG_INFO, "%s joined", ev->addr);
            break;
        case SB_EVENT_LEAVE:
            fn = c->on_leave;
            node_say(c, n, SB_LOG_INFO, "%s %s", ev->addr,
                     ev->status == SB_STATUS_LEFT ? "left" : "is down");
            break;
        case SB_EVENT_UPDATE:
            fn = c->on_update;
            break;
        case SB_EVENT_DELETE:
            fn = c->on_delete;
            break;
        }
        if (fn) {
            const sb_node *outer = node_callback_begin(n);
            fn(c->userdata, ev);
            node_callback_end(outer);
        }
        free(events[i].blob);
    }
    free(events);
}

/* After the engine asked for seeds: resolve them again, without the lock. */
static void node_refresh_seeds(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    bool wanted = n->seeds_wanted;
    n->seeds_wanted = false;
    pthread_mutex_unlock(&n->lock);
    if (!wanted)
        return;
    seed_list *l = node_resolve_seeds(n);
    if (!l)
        return;
    pthread_mutex_lock(&n->lock);
    free(n->seeds_fresh);
    n->seeds_fresh = l;
    pthread_mutex_unlock(&n->lock);
}

/* Logs send errors, at most once a second. */
static void node_report_send_errors(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    uint64_t now = node_now_ns(), count = n->send_errors_unreported;
    bool due = count && now - n->send_reported >= SEND_REPORT_NS;
    int err = n->send_errno;
    char to[SB_ADDR_STRLEN];
    memcpy(to, n->send_to, sizeof(to));
    if (due) {
        n->send_errors_unreported = 0;
        n->send_reported = now;
    }
    pthread_mutex_unlock(&n->lock);
    if (due)
        node_say(&n->cfg, n, SB_LOG_WARN, "%llu datagrams not sent; the last to "
                 "%s: %s", (unsigned long long)count, to, strerror(err));
}

static int node_process(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    if (n->processing) {
        pthread_mutex_unlock(&n->lock);
        return SB_ESTATE;
    }
    n->processing = true;
    n->processor = pthread_self();
    pthread_mutex_unlock(&n->lock);

    node_receive(n);
    pthread_mutex_lock(&n->lock);
    uint64_t now = node_now_ns();
    if (now >= sb_engine_next_deadline(n->engine))
        sb_engine_tick(n->engine, now);
    pthread_mutex_unlock(&n->lock);
    node_refresh_seeds(n);
    node_report_send_errors(n);
    node_dispatch(n);

    pthread_mutex_lock(&n->lock);
    n->processing = false;
    pthread_mutex_unlock(&n->lock);
    return SB_OK;
}

int sb_node_process(sb_node *n)
{
    if (!n)
        return SB_EINVAL;
    if (n->threaded)
        return SB_ESTATE;
    pthread_mutex_lock(&n->lock);
    bool stopped = n->stopped;
    pthread_mutex_unlock(&n->lock);
    if (stopped)
        return SB_ESTATE;
    return node_process(n);
}

/* ---- the background thread: a loop on the event-loop API ----------------- */

static void node_wake(sb_node *n)
{
    if (n->threaded) {
        char c = 1;
        ssize_t w = write(n->wake[1], &c, 1); /* full pipe: already woken */
        (void)w;
    }
}

static void *node_run(void *arg)
{
    sb_node *n = arg;
    struct pollfd fds[2] = {
        { .fd = sb_node_fd(n), .events = POLLIN },
        { .fd = n->wake[0], .events = POLLIN },
    };
    for (;;) {
        pthread_mutex_lock(&n->lock);
        bool stop = n->stop;
        pthread_mutex_unlock(&n->lock);
        if (stop)
            return NULL;
        if (poll(fds, 2, sb_node_timeout_ms(n)) > 0 &&
            (fds[1].revents & POLLIN)) {
            char drain[64];
            while (read(n->wake[0], drain, sizeof(drain)) > 0)
                ;
        }
        node_process(n);
    }
}

/* ---- writes --------------------------------------------------------------- */

/* A key is 1 to SB_MAX_KEY_LEN bytes, any bytes. */
static bool node_key_ok(const void *key, size_t key_len)
{
    return key && key_len >= 1 && key_len <= SB_MAX_KEY_LEN;
}

int sb_node_set(sb_node *n, const void *key, size_t key_len,
                const void *value, size_t len)
{
    if (!n || !node_key_ok(key, key_len) || (len && !value))
        return SB_EINVAL;
    if (!node_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_set(n->engine, key, key_len, value, len, node_now_ns());
    pthread_mutex_unlock(&n->lock);
    node_wake(n); /* a push may be due before the thread's timeout */
    return rc;
}

int sb_node_del(sb_node *n, const void *key, size_t key_len)
{
    if (!n || !node_key_ok(key, key_len))
        return SB_EINVAL;
    if (!node_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_del(n->engine, key, key_len, node_now_ns());
    pthread_mutex_unlock(&n->lock);
    node_wake(n);
    return rc;
}

int sb_node_leave(sb_node *n)
{
    if (!n)
        return SB_EINVAL;
    if (!node_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_leave(n->engine, node_now_ns());
    pthread_mutex_unlock(&n->lock);
    if (rc == SB_OK)
        node_say(&n->cfg, n, SB_LOG_INFO, "node %s leaving", n->addr);
    node_wake(n);
    return rc;
}

/* ---- the keyring ------------------------------------------------------------ */

typedef int (*key_op)(sb_engine *e, const uint8_t *key);

static int node_keyring(sb_node *n, const uint8_t *key, key_op op,
                        const char *what)
{
    if (!n || !key)
        return SB_EINVAL;
    if (!node_lock_running(n))
        return SB_ESTATE;
    int rc = op(n->engine, key);
    pthread_mutex_unlock(&n->lock);
    if (rc == SB_OK)
        node_say(&n->cfg, n, SB_LOG_INFO, "node %s: key %s", n->addr, what);
    return rc;
}

int sb_node_key_install(sb_node *n, const uint8_t *key)
{
    return node_keyring(n, key, sb_engine_key_install, "installed");
}

int sb_node_key_use(sb_node *n, const uint8_t *key)
{
    return node_keyring(n, key, sb_engine_key_use, "made primary");
}

int sb_node_key_remove(sb_node *n, const uint8_t *key)
{
    return node_keyring(n, key, sb_engine_key_remove, "removed");
}

/* ---- reads ----------------------------------------------------------------- */

/* The engine knows peers by canonical text: "127.0.0.1:080" and
 * "[::ffff:127.0.0.1]:80" name "127.0.0.1:80", and a name ("localhost:80")
 * is resolved (this may block, as for seeds) to the address of a member
 * this node knows, or to the first one. Anything else is looked up as
 * given. Called without the lock. */
static const char *node_canonical(sb_node *n, const char *addr,
                                  char buf[SB_ADDR_STRLEN])
{
    pthread_mutex_lock(&n->lock);
    bool stopped = n->stopped;
    pthread_mutex_unlock(&n->lock);
    if (stopped) /* the call fails at once: no name lookup first */
        return addr;
    sb_sockaddr found[8];
    int k = sb_addr_parse(addr, &found[0]) == SB_OK
                ? 1
                : sb_addr_resolve(addr, AF_UNSPEC, false, found, 8);
    if (k < 1)
        return addr;
    for (int i = 0; i < k; i++) {
        sb_addr_format(&found[i], buf);
        sb_member m;
        pthread_mutex_lock(&n->lock);
        bool known = sb_engine_find(n->engine, buf, &m) == SB_OK;
        pthread_mutex_unlock(&n->lock);
        if (known)
            return buf;
    }
    sb_addr_format(&found[0], buf);
    return buf;
}

/* sb_node_keys(): a first pass measures, a second copies. */
typedef struct node_kv_copy {
    size_t count, bytes;       /* measured */
    sb_kv *out;                /* then filled: entries, then the bytes */
    char *p;
} node_kv_copy;

static void node_kv_measure(void *userdata, const uint8_t *key,
                            size_t key_len, const uint8_t *value,
                            size_t value_len)
{
    node_kv_copy *c = userdata;
    (void)key;
    (void)value;
    c->count++;
    c->bytes += key_len + 1 + value_len + 1;
}

static void node_kv_fill(void *userdata, const uint8_t *key, size_t key_len,
                         const uint8_t *value, size_t value_len)
{
    node_kv_copy *c = userdata;
    sb_kv *kv = &c->out[c->count++];
    kv->key = c->p;
    kv->key_len = key_len;
    memcpy(c->p, key, key_len);
    c->p[key_len] = '\0';
    c->p += key_len + 1;
    kv->value = c->p;
    kv->value_len = value_len;
    if (value_len)
        memcpy(c->p, value, value_len);
    c->p[value_len] = '\0';
    c->p += value_len + 1;
}

int sb_node_keys(sb_node *n, const char *addr, sb_kv **out, size_t *count)
{
    if (!n || !addr || !out || !count)
        return SB_EINVAL;
    *out = NULL;
    *count = 0;
    char buf[SB_ADDR_STRLEN];
    addr = node_canonical(n, addr, buf);
    node_kv_copy c = { 0 };
    if (!node_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_keys(n->engine, addr, node_kv_measure, &c);
    if (rc == SB_OK) {
        c.out = malloc(c.count * sizeof(sb_kv) + c.bytes + 1);
        if (c.out) {
            c.p = (char *)(c.out + c.count);
            c.count = 0;
            sb_engine_keys(n->engine, addr, node_kv_fill, &c);
        } else {
            rc = SB_ENOMEM;
        }
    }
    pthread_mutex_unlock(&n->lock);
    if (rc == SB_OK) {
        *out = c.out;
        *count = c.count;
    }
    return rc;
}

int sb_node_max_value(sb_node *n, size_t key_len, size_t *max)
{
    if (!n || !max)
        return SB_EINVAL;
    if (!node_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_max_value(n->engine, key_len, max);
    pthread_mutex_unlock(&n->lock);
    return rc;
}

int sb_node_get(sb_node *n, const char *addr, const void *key,
                size_t key_len, char **value, size_t *len)
{
    if (!n || !addr || !node_key_ok(key, key_len) || !value || !len)
        return SB_EINVAL;
    *value = NULL;
    *len = 0;
    const uint8_t *v;
    size_t vlen;
    char buf[SB_ADDR_STRLEN];
    addr = node_canonical(n, addr, buf);
    if (!node_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_get(n->engine, addr, key, key_len, &v, &vlen);
    char *copy = NULL;
    if (rc == SB_OK) {
        copy = malloc(vlen + 1);
        if (copy) {
            if (vlen)
                memcpy(copy, v, vlen);
            copy[vlen] = '\0';
        } else {
            rc = SB_ENOMEM;
        }
    }
    pthread_mutex_unlock(&n->lock);
    if (rc == SB_OK) {
        *value = copy;
        *len = vlen;
    }
    return rc;
}

/* Copies the members (all, or live ones) into one allocation: the array,
 * then the addresses. */
static int node_list_members(sb_node *n, bool live_only, sb_member **out,
                             size_t *count)
{
    if (!n || !out || !count)
        return SB_EINVAL;
    *out = NULL;
    *count = 0;
    if (!node_lock_running(n))
        return SB_ESTATE;
    size_t total = sb_engine_member_count(n->engine), k = 0, bytes = 0;
    sb_member m;
    for (size_t i = 0; i < total; i++) {
        sb_engine_member(n->engine, i, &m);
        if (!live_only || m.status == SB_STATUS_LIVE) {
            k++;
            bytes += strlen(m.addr) + 1;
        }
    }
    sb_member *arr = malloc(k * sizeof(*arr) + bytes + 1);
    if (!arr) {
        pthread_mutex_unlock(&n->lock);
        return SB_ENOMEM;
    }
    char *text = (char *)(arr + k);
    size_t j = 0;
    for (size_t i = 0; i < total; i++) {
        sb_engine_member(n->engine, i, &m);
        if (live_only && m.status != SB_STATUS_LIVE)
            continue;
        size_t alen = strlen(m.addr) + 1;
        memcpy(text, m.addr, alen);
        m.addr = text;
        text += alen;
        arr[j++] = m;
    }
    pthread_mutex_unlock(&n->lock);
    *out = arr;
    *count = k;
    return SB_OK;
}

int sb_node_members(sb_node *n, sb_member **out, size_t *count)
{
    return node_list_members(n, false, out, count);
}

int sb_node_live(sb_node *n, sb_member **out, size_t *count)
{
    return node_list_members(n, true, out, count);
}

int sb_node_phi(sb_node *n, const char *addr, double *phi)
{
    if (!n || !addr || !phi)
        return SB_EINVAL;
    char buf[SB_ADDR_STRLEN];
    addr = node_canonical(n, addr, buf);
    if (!node_lock_running(n))
        return SB_ESTATE;
    double v = sb_engine_phi(n->engine, addr, node_now_ns());
    pthread_mutex_unlock(&n->lock);
    if (v < 0)
        return SB_ENOTFOUND;
    *phi = v;
    return SB_OK;
}

int sb_node_stats(sb_node *n, sb_stats *out)
{
    if (!n || !out)
        return SB_EINVAL;
    if (!node_lock_running(n))
        return SB_ESTATE;
    sb_engine_stats(n->engine, out);
    out->send_errors = n->send_errors;
    pthread_mutex_unlock(&n->lock);
    return SB_OK;
}

const char *sb_node_addr(const sb_node *n)
{
    return n ? n->addr : NULL;
}

const char *sb_node_bind_addr(const sb_node *n)
{
    return n ? n->bind_addr : NULL;
}
