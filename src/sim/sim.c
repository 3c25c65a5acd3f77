/* The simulator (see sim.h). */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

enum { EV_TICK, EV_DELIVER };

typedef struct packet {
    uint32_t from;
    uint32_t len;
    struct packet *next;      /* in a paused node's queue */
    uint8_t data[];
} packet;

typedef struct event {
    uint64_t time;
    uint64_t seq;             /* ties break in insertion order */
    uint32_t node;
    uint32_t kind;
    uint64_t token;           /* EV_TICK: the node's incarnation */
    packet *pkt;              /* EV_DELIVER */
} event;

typedef struct node {
    sb_sim *sim;
    uint32_t index;
    char addr[32];
    sb_engine *engine;        /* NULL while crashed */
    uint64_t generation;
    uint64_t token;           /* bumps on crash/restart/resume */
    uint64_t tick_at;         /* the pending tick, if any */
    bool paused;
    uint64_t extra_delay;
    double recv_loss;         /* the share of what it is sent that is lost */
    packet *queue, *queue_tail;
    uint64_t past_bytes, past_packets; /* of crashed incarnations */
} node;

struct sb_sim {
    sb_sim_config cfg;
    sb_rng rng;
    uint64_t now, seq;
    event *heap;
    size_t nheap, heap_cap;
    node **nodes;
    uint32_t count, cap;
    uint8_t *blocked;         /* bitset [a * cap + b] */
    uint32_t blocked_cap;     /* cap the bitset was made for */
    bool any_blocked;
};

#define BASE_GENERATION 1700000000000000000ull

void sb_sim_config_init(sb_sim_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->seed = 1;
    cfg->seeds = 3;
    cfg->latency_ns = 1000000;
    cfg->generation_base = BASE_GENERATION;
    sb_engine_config_init(&cfg->engine);
}

/* ---- the event heap --------------------------------------------------- */

static bool sim_before(const event *a, const event *b)
{
    return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static bool sim_push(sb_sim *s, event ev)
{
    if (s->nheap == s->heap_cap) {
        size_t cap = s->heap_cap ? 2 * s->heap_cap : 1024;
        event *h = realloc(s->heap, cap * sizeof(*h));
        if (!h)
            return false;
        s->heap = h;
        s->heap_cap = cap;
    }
    ev.seq = s->seq++;
    size_t i = s->nheap++;
    while (i > 0 && sim_before(&ev, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = ev;
    return true;
}

static event sim_pop(sb_sim *s)
{
    event top = s->heap[0];
    event last = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && sim_before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!sim_before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->nheap)
        s->heap[i] = last;
    return top;
}

/* ---- addresses -------------------------------------------------------- */

static void sim_make_addr(char *out, size_t size, uint32_t i)
{
    uint32_t v = i + 1;
    snprintf(out, size, "10.%u.%u.%u:7946", (v >> 16) & 0xff,
             (v >> 8) & 0xff, v & 0xff);
}

long sb_sim_index(const sb_sim *s, const char *addr)
{
    unsigned a, b, c, port;
    if (sscanf(addr, "10.%u.%u.%u:%u", &a, &b, &c, &port) != 4 ||
        port != 7946 || a > 255 || b > 255 || c > 255)
        return -1;
    long v = (long)(a << 16 | b << 8 | c) - 1;
    return v >= 0 && v < (long)s->count ? v : -1;
}

/* ---- the network ------------------------------------------------------ */

static bool sim_is_blocked(const sb_sim *s, uint32_t a, uint32_t b)
{
    if (!s->any_blocked || a >= s->blocked_cap || b >= s->blocked_cap)
        return false;
    size_t bit = (size_t)a * s->blocked_cap + b;
    return s->blocked[bit / 8] >> (bit % 8) & 1;
}

static void sim_schedule_tick(sb_sim *s, node *n)
{
    uint64_t t = sb_engine_next_deadline(n->engine);
    if (t < s->now)
        t = s->now;
    n->tick_at = t;
    sim_push(s, (event){ .time = t, .node = n->index, .kind = EV_TICK,
                     .token = n->token });
}

/* After a call that may have moved the engine's deadline earlier (fresh
 * keys to push), schedule a tick for it. The tick event scheduled before
 * is dropped when it comes (its time is no longer n->tick_at); the tick
 * at the new time schedules the next one. */
static void sim_reschedule(sb_sim *s, node *n)
{
    if (n->engine && !n->paused &&
        sb_engine_next_deadline(n->engine) < n->tick_at)
        sim_schedule_tick(s, n);
}

static void sim_deliver_later(sb_sim *s, uint32_t from, uint32_t to,
                          const uint8_t *buf, size_t len)
{
    uint64_t delay = s->cfg.latency_ns + s->nodes[from]->extra_delay +
                     s->nodes[to]->extra_delay;
    if (s->cfg.jitter_ns)
        delay += sb_rng_below(&s->rng, s->cfg.jitter_ns + 1);
    packet *p = malloc(sizeof(*p) + len);
    if (!p)
        return;
    p->from = from;
    p->len = (uint32_t)len;
    p->next = NULL;
    memcpy(p->data, buf, len);
    if (!sim_push(s, (event){ .time = s->now + delay, .node = to,
                          .kind = EV_DELIVER, .pkt = p }))
        free(p);
}

static void sim_on_send(void *ud, const char *to, const uint8_t *buf,
                        size_t len)
{
    node *n = ud;
    sb_sim *s = n->sim;
    /* no engine may send more than max_message_size: a bug if one does,
     * which every simulated test and measurement then stops at */
    if (len > s->cfg.engine.max_message_size) {
        fprintf(stderr, "sb_sim: node %u sent %zu bytes to %s, past "
                "max_message_size %zu\n", n->index, len, to,
                s->cfg.engine.max_message_size);
        abort();
    }
    if (s->cfg.on_datagram)
        s->cfg.on_datagram(s->cfg.userdata, n->index, to, buf, len);
    long dst = sb_sim_index(s, to);
    if (dst >= 0 && s->cfg.on_packet)
        s->cfg.on_packet(s->cfg.userdata, n->index, (uint32_t)dst, buf, len);
    if (dst < 0 || sim_is_blocked(s, n->index, (uint32_t)dst))
        return;
    if (s->cfg.loss > 0 && sb_rng_unit(&s->rng) < s->cfg.loss)
        return;
    double recv_loss = s->nodes[dst]->recv_loss;
    if (recv_loss > 0 && sb_rng_unit(&s->rng) < recv_loss)
        return;
    sim_deliver_later(s, n->index, (uint32_t)dst, buf, len);
    if (s->cfg.duplicate > 0 && sb_rng_unit(&s->rng) < s->cfg.duplicate)
        sim_deliver_later(s, n->index, (uint32_t)dst, buf, len);
}

static void sim_on_event(void *ud, const sb_event *ev)
{
    node *n = ud;
    if (n->sim->cfg.on_event)
        n->sim->cfg.on_event(n->sim->cfg.userdata, n->index, ev,
                             n->sim->now);
}

static size_t sim_on_seeds(void *ud, const char **out, size_t max)
{
    node *n = ud;
    sb_sim *s = n->sim;
    size_t k = 0;
    for (uint32_t i = 0; i < s->cfg.seeds && i < s->count && k < max; i++)
        out[k++] = s->nodes[i]->addr;
    return k;
}

/* ---- nodes ------------------------------------------------------------ */

static int sim_start_engine(sb_sim *s, node *n)
{
    sb_engine_config ec = s->cfg.engine;
    ec.addr = n->addr;
    ec.generation = n->generation;
    uint64_t x = s->cfg.seed ^ (n->index * 0x9e3779b97f4a7c15ull) ^
                 n->generation;
    ec.rng_seed = sb_splitmix64(&x);
    /* distinct per node and generation, like the runtime's random ones */
    for (size_t i = 0; i < sizeof(ec.nonce_prefix); i += 8) {
        uint64_t r = sb_splitmix64(&x);
        memcpy(ec.nonce_prefix + i, &r, 8);
    }
    ec.send = sim_on_send;
    ec.on_event = sim_on_event;
    ec.seeds = sim_on_seeds;
    ec.userdata = n;
    int rc = sb_engine_new(&ec, s->now, &n->engine);
    if (rc != SB_OK)
        return rc;
    n->token++;
    sim_schedule_tick(s, n);
    return SB_OK;
}

static bool sim_grow_blocked(sb_sim *s)
{
    if (s->cap <= s->blocked_cap)
        return true;
    size_t bytes = ((size_t)s->cap * s->cap + 7) / 8;
    uint8_t *b = calloc(1, bytes);
    if (!b)
        return false;
    for (uint32_t i = 0; i < s->blocked_cap; i++)
        for (uint32_t j = 0; j < s->blocked_cap; j++)
            if (sim_is_blocked(s, i, j)) {
                size_t bit = (size_t)i * s->cap + j;
                b[bit / 8] |= (uint8_t)(1u << (bit % 8));
            }
    free(s->blocked);
    s->blocked = b;
    s->blocked_cap = s->cap;
    return true;
}

int sb_sim_add_node(sb_sim *s)
{
    if (s->count == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 64;
        node **nodes = realloc(s->nodes, cap * sizeof(*nodes));
        if (!nodes)
            return SB_ENOMEM;
        s->nodes = nodes;
        s->cap = cap;
        if (s->any_blocked && !sim_grow_blocked(s))
            return SB_ENOMEM;
    }
    node *n = calloc(1, sizeof(*n));
    if (!n)
        return SB_ENOMEM;
    n->sim = s;
    n->index = s->count;
    sim_make_addr(n->addr, sizeof(n->addr), n->index);
    n->generation = s->cfg.generation_base + s->now + 1;
    s->nodes[s->count++] = n;
    int rc = sim_start_engine(s, n);
    if (rc != SB_OK) {
        s->count--;
        free(n);
        return rc;
    }
    return (int)n->index;
}

int sb_sim_new(const sb_sim_config *cfg, sb_sim **out)
{
    *out = NULL;
    sb_sim *s = calloc(1, sizeof(*s));
    if (!s)
        return SB_ENOMEM;
    s->cfg = *cfg;
    sb_rng_seed(&s->rng, cfg->seed);
    for (uint32_t i = 0; i < cfg->nodes; i++) {
        int rc = sb_sim_add_node(s);
        if (rc < 0) {
            sb_sim_free(s);
            return rc;
        }
    }
    *out = s;
    return SB_OK;
}

static void sim_free_queue(node *n)
{
    while (n->queue) {
        packet *p = n->queue;
        n->queue = p->next;
        free(p);
    }
    n->queue_tail = NULL;
}

void sb_sim_free(sb_sim *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nheap; i++)
        free(s->heap[i].pkt);
    for (uint32_t i = 0; i < s->count; i++) {
        sb_engine_free(s->nodes[i]->engine);
        sim_free_queue(s->nodes[i]);
        free(s->nodes[i]);
    }
    free(s->nodes);
    free(s->heap);
    free(s->blocked);
    free(s);
}

static void sim_retire_engine(node *n)
{
    if (!n->engine)
        return;
    sb_stats st;
    sb_engine_stats(n->engine, &st);
    n->past_bytes += st.bytes_out;
    n->past_packets += st.packets_out;
    sb_engine_free(n->engine);
    n->engine = NULL;
}

void sb_sim_crash(sb_sim *s, uint32_t i)
{
    node *n = s->nodes[i];
    sim_retire_engine(n);
    sim_free_queue(n);
    n->paused = false;
    n->token++;
}

int sb_sim_restart(sb_sim *s, uint32_t i)
{
    node *n = s->nodes[i];
    sb_sim_crash(s, i);
    /* like a wall clock, but strictly larger than the last one */
    uint64_t g = s->cfg.generation_base + s->now + 1;
    n->generation = g > n->generation ? g : n->generation + 1;
    return sim_start_engine(s, n);
}

void sb_sim_pause(sb_sim *s, uint32_t i)
{
    s->nodes[i]->paused = true;
}

void sb_sim_resume(sb_sim *s, uint32_t i)
{
    node *n = s->nodes[i];
    if (!n->paused || !n->engine)
        return;
    n->paused = false;
    while (n->queue) {
        packet *p = n->queue;
        n->queue = p->next;
        sb_engine_recv(n->engine, s->nodes[p->from]->addr, p->data, p->len,
                       s->now);
        free(p);
    }
    n->queue_tail = NULL;
    n->token++;
    sim_schedule_tick(s, n);
}

/* ---- running ---------------------------------------------------------- */

static void sim_step(sb_sim *s, event ev)
{
    node *n = s->nodes[ev.node];
    if (ev.kind == EV_TICK) {
        if (ev.token != n->token || ev.time != n->tick_at || !n->engine ||
            n->paused)
            return;
        sb_engine_tick(n->engine, s->now);
        sim_schedule_tick(s, n);
        return;
    }
    packet *p = ev.pkt;
    if (!n->engine) {
        free(p);
    } else if (n->paused) {
        if (n->queue_tail)
            n->queue_tail->next = p;
        else
            n->queue = p;
        n->queue_tail = p;
    } else {
        sb_engine_recv(n->engine, s->nodes[p->from]->addr, p->data, p->len,
                       s->now);
        free(p);
        sim_reschedule(s, n);
    }
}

void sb_sim_run_until(sb_sim *s, uint64_t t)
{
    while (s->nheap && s->heap[0].time <= t) {
        event ev = sim_pop(s);
        s->now = ev.time;
        sim_step(s, ev);
    }
    if (t > s->now)
        s->now = t;
}

void sb_sim_run_for(sb_sim *s, uint64_t dt)
{
    sb_sim_run_until(s, s->now + dt);
}

/* ---- controls and views ----------------------------------------------- */

uint64_t sb_sim_now(const sb_sim *s) { return s->now; }
uint32_t sb_sim_count(const sb_sim *s) { return s->count; }

sb_engine *sb_sim_engine(const sb_sim *s, uint32_t i)
{
    return i < s->count ? s->nodes[i]->engine : NULL;
}

const char *sb_sim_addr(const sb_sim *s, uint32_t i)
{
    return s->nodes[i]->addr;
}

bool sb_sim_running(const sb_sim *s, uint32_t i)
{
    return i < s->count && s->nodes[i]->engine != NULL;
}

void sb_sim_reschedule(sb_sim *s, uint32_t i)
{
    if (i < s->count)
        sim_reschedule(s, s->nodes[i]);
}

int sb_sim_set(sb_sim *s, uint32_t i, const char *key, const char *value)
{
    sb_engine *e = sb_sim_engine(s, i);
    if (!e)
        return SB_ESTATE;
    int rc = sb_engine_set(e, (const uint8_t *)key, strlen(key),
                           (const uint8_t *)value, strlen(value), s->now);
    sim_reschedule(s, s->nodes[i]);
    return rc;
}

int sb_sim_del(sb_sim *s, uint32_t i, const char *key)
{
    sb_engine *e = sb_sim_engine(s, i);
    if (!e)
        return SB_ESTATE;
    int rc = sb_engine_del(e, (const uint8_t *)key, strlen(key), s->now);
    sim_reschedule(s, s->nodes[i]);
    return rc;
}

int sb_sim_leave(sb_sim *s, uint32_t i)
{
    sb_engine *e = sb_sim_engine(s, i);
    return e ? sb_engine_leave(e, s->now) : SB_ESTATE;
}

void sb_sim_block(sb_sim *s, uint32_t a, uint32_t b, bool blocked)
{
    if (!sim_grow_blocked(s))
        return;
    size_t bit = (size_t)a * s->blocked_cap + b;
    if (blocked) {
        s->blocked[bit / 8] |= (uint8_t)(1u << (bit % 8));
        s->any_blocked = true;
    } else {
        s->blocked[bit / 8] &= (uint8_t)~(1u << (bit % 8));
    }
}

void sb_sim_partition(sb_sim *s, const uint32_t *group)
{
    for (uint32_t a = 0; a < s->count; a++)
        for (uint32_t b = 0; b < s->count; b++)
            if (group[a] != group[b])
                sb_sim_block(s, a, b, true);
}

void sb_sim_heal(sb_sim *s)
{
    if (s->blocked)
        memset(s->blocked,
               0, ((size_t)s->blocked_cap * s->blocked_cap + 7) / 8);
    s->any_blocked = false;
}

void sb_sim_set_loss(sb_sim *s, double loss) { s->cfg.loss = loss; }

void sb_sim_set_node_delay(sb_sim *s, uint32_t i, uint64_t delay_ns)
{
    s->nodes[i]->extra_delay = delay_ns;
}

void sb_sim_set_node_loss(sb_sim *s, uint32_t i, double loss)
{
    s->nodes[i]->recv_loss = loss;
}

bool sb_sim_converged(const sb_sim *s)
{
    /* quick necessary test: every running node knows all running nodes
     * and none of them is down or unproven */
    uint32_t running = 0;
    for (uint32_t i = 0; i < s->count; i++)
        running += s->nodes[i]->engine != NULL;
    for (uint32_t i = 0; i < s->count; i++) {
        if (!s->nodes[i]->engine)
            continue;
        sb_stats st;
        sb_engine_stats(s->nodes[i]->engine, &st);
        if (st.members[SB_STATUS_LIVE] + st.members[SB_STATUS_LEFT] < running)
            return false;
    }
    for (uint32_t i = 0; i < s->count; i++) {
        const sb_engine *ei = s->nodes[i]->engine;
        if (!ei)
            continue;
        for (uint32_t j = 0; j < s->count; j++) {
            const sb_engine *ej = s->nodes[j]->engine;
            if (!ej || i == j)
                continue;
            sb_member own, seen;
            sb_engine_find(ej, s->nodes[j]->addr, &own);
            if (sb_engine_find(ei, s->nodes[j]->addr, &seen) != SB_OK ||
                seen.generation != own.generation ||
                seen.max_version != own.max_version ||
                seen.keys != own.keys ||
                seen.status != (own.leaving ? SB_STATUS_LEFT
                                            : SB_STATUS_LIVE))
                return false;
        }
    }
    return true;
}

bool sb_sim_has(const sb_sim *s, uint32_t i, uint32_t j, const char *key,
                const char *value)
{
    const sb_engine *e = sb_sim_engine(s, i);
    if (!e)
        return false;
    const uint8_t *v;
    size_t len;
    int rc = sb_engine_get(e, s->nodes[j]->addr, (const uint8_t *)key,
                           strlen(key), &v, &len);
    if (!value)
        return rc == SB_ENOTFOUND;
    return rc == SB_OK && len == strlen(value) && memcmp(v, value, len) == 0;
}

int sb_sim_status(const sb_sim *s, uint32_t i, uint32_t j)
{
    const sb_engine *e = sb_sim_engine(s, i);
    sb_member info;
    if (!e || sb_engine_find(e, s->nodes[j]->addr, &info) != SB_OK)
        return -1;
    /* every node of a reference cluster has generation 1 */
    uint64_t gen = s->cfg.engine.wire == SB_WIRE_REFERENCE
                       ? 1
                       : s->nodes[j]->generation;
    if (info.generation != gen)
        return -1;
    return (int)info.status;
}

uint64_t sb_sim_node_bytes_sent(const sb_sim *s, uint32_t i)
{
    const node *n = s->nodes[i];
    uint64_t b = n->past_bytes;
    if (n->engine) {
        sb_stats st;
        sb_engine_stats(n->engine, &st);
        b += st.bytes_out;
    }
    return b;
}

uint64_t sb_sim_bytes_sent(const sb_sim *s)
{
    uint64_t b = 0;
    for (uint32_t i = 0; i < s->count; i++)
        b += sb_sim_node_bytes_sent(s, i);
    return b;
}

uint64_t sb_sim_packets_sent(const sb_sim *s)
{
    uint64_t p = 0;
    for (uint32_t i = 0; i < s->count; i++) {
        const node *n = s->nodes[i];
        p += n->past_packets;
        if (n->engine) {
            sb_stats st;
            sb_engine_stats(n->engine, &st);
            p += st.packets_out;
        }
    }
    return p;
}
