/* The simulated-cluster harness (see cluster.h): sb_sim underneath, with
 * the harness counting events and recording packets through its taps. */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "keyring.h"
#include "sim.h"

struct cluster {
    sb_sim *sim;
    cluster_config cfg;
    uint32_t cap;              /* nodes the tables below hold */
    uint16_t *joins, *leaves;  /* [observer * cap + subject] */
    uint8_t *left;             /* the last leave was a graceful one */
    cluster_events *events;    /* [observer] */
    uint64_t *leaves_about;    /* [subject] */
    uint64_t downs;            /* leaves about any node of the cluster */
    size_t *largest;           /* [sender] */
    bool capturing;
    int capture_from;
    size_t capture_max;
    cluster_packets captured;
    int delivering;            /* the node handed a datagram, or -1 */
    cluster_packets replies;
};

uint64_t cluster_seed(void)
{
    static bool known;
    static uint64_t seed;
    if (!known) {
        const char *env = getenv("SB_SEED");
        seed = env ? strtoull(env, NULL, 0) : 1;
        known = true;
    }
    return seed;
}

static void *cluster_alloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "cluster: out of memory\n");
        abort();
    }
    return p;
}

/* ---- the tables --------------------------------------------------------- */

static void *cluster_grow_square(void *old, uint32_t old_cap, uint32_t cap,
                                 size_t size)
{
    uint8_t *t = cluster_alloc((size_t)cap * cap, size);
    for (uint32_t i = 0; i < old_cap; i++)
        memcpy(t + (size_t)i * cap * size,
               (uint8_t *)old + (size_t)i * old_cap * size, old_cap * size);
    free(old);
    return t;
}

static void *cluster_grow_row(void *old, uint32_t old_cap, uint32_t cap,
                              size_t size)
{
    uint8_t *t = cluster_alloc(cap, size);
    if (old)
        memcpy(t, old, old_cap * size);
    free(old);
    return t;
}

/* Makes the tables hold at least `n` nodes. */
static void cluster_reserve(cluster *c, uint32_t n)
{
    if (n <= c->cap)
        return;
    uint32_t cap = c->cap ? 2 * c->cap : 1;
    while (cap < n)
        cap *= 2;
    c->joins = cluster_grow_square(c->joins, c->cap, cap, sizeof(uint16_t));
    c->leaves = cluster_grow_square(c->leaves, c->cap, cap,
                                    sizeof(uint16_t));
    c->left = cluster_grow_square(c->left, c->cap, cap, 1);
    c->events = cluster_grow_row(c->events, c->cap, cap,
                                 sizeof(cluster_events));
    c->leaves_about = cluster_grow_row(c->leaves_about, c->cap, cap,
                                       sizeof(uint64_t));
    c->largest = cluster_grow_row(c->largest, c->cap, cap, sizeof(size_t));
    c->cap = cap;
}

static void cluster_packets_add(cluster_packets *l, uint32_t from, int to,
                                const char *addr, const uint8_t *buf,
                                size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->p = realloc(l->p, l->cap * sizeof(*l->p));
        if (!l->p) {
            fprintf(stderr, "cluster: out of memory\n");
            abort();
        }
    }
    size_t alen = strlen(addr) + 1;
    uint8_t *data = cluster_alloc(len + alen, 1);
    memcpy(data, buf, len);
    memcpy(data + len, addr, alen);
    l->p[l->n++] = (cluster_packet){ from, to, (const char *)data + len, len,
                                     data };
}

static void cluster_packets_clear(cluster_packets *l)
{
    for (size_t k = 0; k < l->n; k++)
        free(l->p[k].data);
    l->n = 0;
}

/* ---- the taps ----------------------------------------------------------- */

static void cluster_on_datagram(void *ud, uint32_t from, const char *to,
                                const uint8_t *buf, size_t len)
{
    cluster *c = ud;
    if (len > c->largest[from])
        c->largest[from] = len;
    if (c->capturing &&
        (c->capture_from == CLUSTER_ALL || c->capture_from == (int)from) &&
        (!c->capture_max || c->captured.n < c->capture_max))
        cluster_packets_add(&c->captured, from, cluster_node_of(c, to), to,
                            buf, len);
    if (c->delivering == (int)from)
        cluster_packets_add(&c->replies, from, cluster_node_of(c, to), to,
                            buf, len);
}

static void cluster_on_event(void *ud, uint32_t node, const sb_event *ev,
                             uint64_t now)
{
    cluster *c = ud;
    cluster_events *e = &c->events[node];
    e->joins += ev->type == SB_EVENT_JOIN;
    e->leaves += ev->type == SB_EVENT_LEAVE;
    e->updates += ev->type == SB_EVENT_UPDATE;
    e->deletes += ev->type == SB_EVENT_DELETE;
    int subject = cluster_node_of(c, ev->addr);
    if (subject >= 0) {
        size_t k = (size_t)node * c->cap + (size_t)subject;
        if (ev->type == SB_EVENT_JOIN)
            c->joins[k]++;
        if (ev->type == SB_EVENT_LEAVE) {
            c->leaves[k]++;
            c->left[k] = ev->status == SB_STATUS_LEFT;
            c->leaves_about[subject]++;
            c->downs++;
        }
    }
    if (c->cfg.on_event)
        c->cfg.on_event(c->cfg.userdata, node, ev, now);
}

/* ---- the cluster -------------------------------------------------------- */

void cluster_config_init(cluster_config *cfg, uint32_t nodes)
{
    sb_sim_config sc;
    sb_sim_config_init(&sc);
    memset(cfg, 0, sizeof(*cfg));
    cfg->nodes = nodes;
    cfg->seed = cluster_seed();
    cfg->seeds = sc.seeds;
    cfg->latency_ns = sc.latency_ns;
    cfg->generation_base = sc.generation_base;
    cfg->step_ns = 100 * MS;
    cfg->engine = sc.engine;
    cfg->engine.interval_ns = 100 * MS;
}

int cluster_try(const cluster_config *cfg, cluster **out)
{
    cluster *c = cluster_alloc(1, sizeof(*c));
    c->cfg = *cfg;
    c->delivering = -1;
    cluster_reserve(c, cfg->nodes);
    sb_sim_config sc;
    sb_sim_config_init(&sc);
    sc.nodes = cfg->nodes;
    sc.seed = cfg->seed;
    sc.seeds = cfg->seeds;
    sc.loss = cfg->loss;
    sc.latency_ns = cfg->latency_ns;
    sc.jitter_ns = cfg->jitter_ns;
    sc.generation_base = cfg->generation_base;
    sc.engine = cfg->engine;
    sc.on_event = cluster_on_event;
    sc.on_datagram = cluster_on_datagram;
    sc.userdata = c;
    int rc = sb_sim_new(&sc, &c->sim);
    if (rc != SB_OK) {
        cluster_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

cluster *cluster_new(const cluster_config *cfg)
{
    cluster *c;
    int rc = cluster_try(cfg, &c);
    if (rc != SB_OK) {
        fprintf(stderr, "cluster: cannot start %u nodes: error %d\n",
                cfg->nodes, rc);
        abort();
    }
    return c;
}

void cluster_free(cluster *c)
{
    if (!c)
        return;
    sb_sim_free(c->sim);
    cluster_packets_clear(&c->captured);
    cluster_packets_clear(&c->replies);
    free(c->captured.p);
    free(c->replies.p);
    free(c->joins);
    free(c->leaves);
    free(c->left);
    free(c->events);
    free(c->leaves_about);
    free(c->largest);
    free(c);
}

cluster *cluster_fuzz(const uint8_t *keys, uint32_t nkeys, sb_wire wire)
{
    cluster_config cfg;
    cluster_config_init(&cfg, 1);
    cfg.seed = 1;
    cfg.seeds = 0;
    cfg.generation_base = 0;
    cfg.engine.max_message_size = CLUSTER_FUZZ_LIMIT;
    cfg.engine.max_nodes = 64;
    cfg.engine.max_keys_per_node = 16;
    cfg.engine.max_state_bytes = 4096;
    cfg.engine.tombstone_grace_ns = 1 * SEC;
    cfg.engine.dead_grace_ns = 2 * SEC;
    cfg.engine.keys = keys;
    cfg.engine.nkeys = nkeys;
    cfg.engine.wire = wire;
    cluster *c = cluster_new(&cfg);
    cluster_set(c, 0, "role", "db");
    cluster_set(c, 0, "gone", "x");
    cluster_del(c, 0, "gone"); /* the reference wire refuses */
    return c;
}

void cluster_feed(cluster *c, uint32_t i, const uint8_t *records,
                  size_t size, const char *const *from, unsigned nfrom,
                  uint64_t step)
{
    for (unsigned k = 0; size >= 2; k++) {
        size_t len = (size_t)records[0] << 8 | records[1];
        records += 2;
        size -= 2;
        if (len > size)
            len = size;
        cluster_run(c, step);
        cluster_deliver(c, i, from[k % nfrom], records, len);
        /* every change to a record marks the summary stale */
        if (!sb_engine_summary_fresh(cluster_engine(c, i)))
            abort();
        records += len;
        size -= len;
    }
}

/* ---- time --------------------------------------------------------------- */

uint64_t cluster_now(const cluster *c) { return sb_sim_now(c->sim); }
void cluster_run(cluster *c, uint64_t dt) { sb_sim_run_for(c->sim, dt); }

void cluster_run_until(cluster *c, uint64_t t)
{
    sb_sim_run_until(c->sim, t);
}
void cluster_step(cluster *c) { sb_sim_run_for(c->sim, c->cfg.step_ns); }

/* ---- nodes -------------------------------------------------------------- */

uint32_t cluster_size(const cluster *c) { return sb_sim_count(c->sim); }

sb_engine *cluster_engine(const cluster *c, uint32_t i)
{
    return sb_sim_engine(c->sim, i);
}

const char *cluster_addr(const cluster *c, uint32_t i)
{
    return sb_sim_addr(c->sim, i);
}

int cluster_node_of(const cluster *c, const char *addr)
{
    unsigned a, b, d, port;
    if (sscanf(addr, "10.%u.%u.%u:%u", &a, &b, &d, &port) != 4 ||
        port != 7946 || a > 255 || b > 255 || d > 255)
        return -1;
    long v = (long)(a << 16 | b << 8 | d) - 1;
    return c->sim && v >= 0 && v < (long)cluster_size(c) ? (int)v : -1;
}

bool cluster_running(const cluster *c, uint32_t i)
{
    return sb_sim_running(c->sim, i);
}

int cluster_add_node(cluster *c)
{
    cluster_reserve(c, cluster_size(c) + 1);
    return sb_sim_add_node(c->sim);
}

void cluster_crash(cluster *c, uint32_t i) { sb_sim_crash(c->sim, i); }
void cluster_pause(cluster *c, uint32_t i) { sb_sim_pause(c->sim, i); }
void cluster_resume(cluster *c, uint32_t i) { sb_sim_resume(c->sim, i); }

int cluster_restart(cluster *c, uint32_t i)
{
    return sb_sim_restart(c->sim, i);
}

int cluster_leave(cluster *c, uint32_t i)
{
    return sb_sim_leave(c->sim, i);
}

int cluster_set(cluster *c, uint32_t i, const char *key, const char *value)
{
    return sb_sim_set(c->sim, i, key, value);
}

int cluster_del(cluster *c, uint32_t i, const char *key)
{
    return sb_sim_del(c->sim, i, key);
}

int cluster_set_bytes(cluster *c, uint32_t i, const void *key,
                      size_t key_len, const void *value, size_t value_len)
{
    sb_engine *e = cluster_engine(c, i);
    if (!e)
        return SB_ESTATE;
    int rc = sb_engine_set(e, key, key_len, value, value_len, cluster_now(c));
    sb_sim_reschedule(c->sim, i);
    return rc;
}

int cluster_del_bytes(cluster *c, uint32_t i, const void *key,
                      size_t key_len)
{
    sb_engine *e = cluster_engine(c, i);
    if (!e)
        return SB_ESTATE;
    int rc = sb_engine_del(e, key, key_len, cluster_now(c));
    sb_sim_reschedule(c->sim, i);
    return rc;
}

/* ---- the network -------------------------------------------------------- */

void cluster_set_loss(cluster *c, double rate)
{
    sb_sim_set_loss(c->sim, rate);
}

void cluster_slow_node(cluster *c, uint32_t i, double loss, uint64_t delay)
{
    sb_sim_set_node_loss(c->sim, i, loss);
    sb_sim_set_node_delay(c->sim, i, delay);
}

void cluster_partition(cluster *c, const uint32_t *group)
{
    sb_sim_partition(c->sim, group);
}

void cluster_block(cluster *c, uint32_t from, uint32_t to, bool blocked)
{
    sb_sim_block(c->sim, from, to, blocked);
}

void cluster_heal(cluster *c) { sb_sim_heal(c->sim); }

void cluster_capture(cluster *c, int from, size_t max)
{
    cluster_packets_clear(&c->captured);
    c->capturing = true;
    c->capture_from = from;
    c->capture_max = max;
}

void cluster_capture_stop(cluster *c) { c->capturing = false; }

cluster_packets *cluster_captured(cluster *c) { return &c->captured; }

/* Datagrams an engine dropped whole: refused before anything in them was
 * taken (not a key or a peer a bound or a gap refused). */
static uint64_t cluster_refused(const sb_engine *e)
{
    static const sb_drop_reason whole[] = {
        SB_DROP_TRUNCATED, SB_DROP_MAGIC,    SB_DROP_VERSION,
        SB_DROP_CLUSTER,   SB_DROP_TYPE,     SB_DROP_MALFORMED,
        SB_DROP_OVERSIZE,  SB_DROP_PLAINTEXT, SB_DROP_SEALED,
        SB_DROP_AUTH,      SB_DROP_UNSOLICITED,
    };
    sb_stats st;
    sb_engine_stats(e, &st);
    uint64_t n = 0;
    for (size_t k = 0; k < sizeof(whole) / sizeof(whole[0]); k++)
        n += st.drops[whole[k]];
    return n;
}

int cluster_deliver(cluster *c, uint32_t i, const char *from,
                    const void *buf, size_t len)
{
    cluster_packets_clear(&c->replies);
    sb_engine *e = cluster_engine(c, i);
    if (!e)
        return SB_ESTATE;
    uint64_t refused = cluster_refused(e);
    c->delivering = (int)i;
    int rc = sb_engine_recv(e, from, buf, len, cluster_now(c));
    c->delivering = -1;
    sb_sim_reschedule(c->sim, i);
    if (rc == SB_OK && cluster_refused(e) != refused)
        rc = SB_EINVAL;
    return rc;
}

int cluster_answer(cluster *c, uint32_t i, const char *from, void *buf,
                   size_t len)
{
    sb_engine *e = cluster_engine(c, i);
    uint8_t *m = buf;
    if (!e)
        return SB_ESTATE;
    if (len < SB_HEADER_SIZE + SB_TOKEN_SIZE ||
        (m[3] != SB_MSG_ACK && m[3] != SB_MSG_ACK2 && m[3] != SB_MSG_SWEEP &&
         m[3] != SB_MSG_DIFF))
        return SB_EINVAL;
    uint64_t t = sb_engine_token(e, from, cluster_now(c));
    for (int k = 0; k < 8; k++)
        m[SB_HEADER_SIZE + k] = (uint8_t)(t >> (56 - 8 * k));
    if (!c->cfg.engine.nkeys)
        return cluster_deliver(c, i, from, buf, len);
    /* sealed with the first key, under a nonce of our own */
    sb_keyring kr = { .count = 0 };
    sb_keyring_install(&kr, c->cfg.engine.keys);
    static uint64_t counter;
    uint8_t nonce[SB_NONCE_SIZE] = { 'h', 'a', 'r', 'n', 'e', 's', 's' };
    counter++;
    memcpy(nonce + 16, &counter, 8);
    uint8_t *sealed = malloc(len + SB_SEAL_OVERHEAD);
    if (!sealed)
        return SB_ENOMEM;
    size_t n = sb_seal(&kr, nonce, buf, len, sealed);
    int rc = cluster_deliver(c, i, from, sealed, n);
    free(sealed);
    sb_keyring_wipe(&kr);
    return rc;
}

const cluster_packets *cluster_replies(const cluster *c)
{
    return &c->replies;
}

size_t cluster_largest(const cluster_packets *p)
{
    size_t most = 0;
    for (size_t k = 0; k < p->n; k++)
        if (p->p[k].len > most)
            most = p->p[k].len;
    return most;
}

/* ---- what nodes know and said ------------------------------------------- */

bool cluster_converged(const cluster *c) { return sb_sim_converged(c->sim); }

bool cluster_has(const cluster *c, uint32_t i, uint32_t j, const char *key,
                 const char *value)
{
    return sb_sim_has(c->sim, i, j, key, value);
}

bool cluster_holds(const cluster *c, uint32_t i, const char *addr,
                   const char *key, const char *value)
{
    const sb_engine *e = cluster_engine(c, i);
    const uint8_t *v;
    size_t len;
    if (!e)
        return false;
    int rc = sb_engine_get(e, addr, (const uint8_t *)key, strlen(key), &v,
                           &len);
    if (!value)
        return rc == SB_ENOTFOUND;
    return rc == SB_OK && len == strlen(value) && memcmp(v, value, len) == 0;
}

bool cluster_all_have(const cluster *c, uint32_t j, const char *key,
                      const char *value)
{
    for (uint32_t i = 0; i < cluster_size(c); i++)
        if (cluster_running(c, i) && i != j &&
            !cluster_has(c, i, j, key, value))
            return false;
    return true;
}

int cluster_status(const cluster *c, uint32_t i, uint32_t j)
{
    return sb_sim_status(c->sim, i, j);
}

bool cluster_all_see(const cluster *c, uint32_t j, sb_status status)
{
    for (uint32_t i = 0; i < cluster_size(c); i++)
        if (cluster_running(c, i) && i != j &&
            cluster_status(c, i, j) != (int)status)
            return false;
    return true;
}

bool cluster_all_live(const cluster *c)
{
    for (uint32_t j = 0; j < cluster_size(c); j++)
        if (cluster_running(c, j) && !cluster_all_see(c, j, SB_STATUS_LIVE))
            return false;
    return true;
}

cluster_events cluster_events_of(const cluster *c, int i)
{
    if (i != CLUSTER_ALL)
        return c->events[i];
    cluster_events sum = { 0 };
    for (uint32_t k = 0; k < cluster_size(c); k++) {
        sum.joins += c->events[k].joins;
        sum.leaves += c->events[k].leaves;
        sum.updates += c->events[k].updates;
        sum.deletes += c->events[k].deletes;
    }
    return sum;
}

uint32_t cluster_joins(const cluster *c, uint32_t i, uint32_t j)
{
    return c->joins[(size_t)i * c->cap + j];
}

uint32_t cluster_leaves(const cluster *c, uint32_t i, uint32_t j)
{
    return c->leaves[(size_t)i * c->cap + j];
}

bool cluster_left(const cluster *c, uint32_t i, uint32_t j)
{
    return c->left[(size_t)i * c->cap + j];
}

uint64_t cluster_downs(const cluster *c, int except)
{
    return c->downs - (except == CLUSTER_ALL ? 0 : c->leaves_about[except]);
}

static uint64_t cluster_node_drops(const cluster *c, uint32_t i, int reason)
{
    const sb_engine *e = cluster_engine(c, i);
    if (!e)
        return 0;
    sb_stats st;
    sb_engine_stats(e, &st);
    if (reason >= 0)
        return st.drops[reason];
    uint64_t n = 0;
    for (int r = 0; r < SB_DROP_COUNT; r++)
        n += st.drops[r];
    return n;
}

uint64_t cluster_drops(const cluster *c, int i, int reason)
{
    if (i != CLUSTER_ALL)
        return cluster_node_drops(c, (uint32_t)i, reason);
    uint64_t n = 0;
    for (uint32_t k = 0; k < cluster_size(c); k++)
        n += cluster_node_drops(c, k, reason);
    return n;
}

uint64_t cluster_bytes_out(const cluster *c, int i)
{
    return i == CLUSTER_ALL ? sb_sim_bytes_sent(c->sim)
                            : sb_sim_node_bytes_sent(c->sim, (uint32_t)i);
}

uint64_t cluster_packets_out(const cluster *c)
{
    return sb_sim_packets_sent(c->sim);
}

size_t cluster_largest_sent(const cluster *c, int i)
{
    if (i != CLUSTER_ALL)
        return c->largest[i];
    size_t most = 0;
    for (uint32_t k = 0; k < cluster_size(c); k++)
        if (c->largest[k] > most)
            most = c->largest[k];
    return most;
}
