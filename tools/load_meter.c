/* The load meter (load_meter.h): staleness per (observer, update) pair,
 * supersession, fairness among writers, goodput and traffic. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "load_meter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Histogram of nanoseconds: values below LOAD_METER_SUB exactly, then
 * LOAD_METER_SUB buckets per power of two up to 2^LOAD_METER_TOP ns (73
 * minutes; anything longer goes in the last bucket). */
#define LOAD_METER_SUB_BITS 6
#define LOAD_METER_SUB (1u << LOAD_METER_SUB_BITS)
#define LOAD_METER_TOP 42
#define LOAD_METER_BUCKETS                                                  \
    (LOAD_METER_SUB + (LOAD_METER_TOP - LOAD_METER_SUB_BITS) * LOAD_METER_SUB)

/* Traffic samples kept per node, and the least gap between two kept:
 * LOAD_METER_SAMPLES - 2 gaps of LOAD_METER_GAP_NS span more than a
 * window, so that whatever the sampling step (eval samples every interval,
 * which may be 1 ms), a sample a window old is still kept when the next
 * one comes. Samples closer than that still count for the totals and
 * close windows; they are only not kept to open one. */
#define LOAD_METER_SAMPLES 64
#define LOAD_METER_WINDOW_NS 1000000000ull
#define LOAD_METER_GAP_NS (LOAD_METER_WINDOW_NS / (LOAD_METER_SAMPLES - 2))

typedef struct load_meter_key {
    uint64_t *set_at;         /* per SEQ: when it was set */
    uint64_t n, cap;          /* writes so far */
    uint32_t current;         /* observers that hold the last value */
} load_meter_key;

typedef struct load_meter_traffic {
    uint64_t bytes0, packets0;    /* at the begin */
    uint64_t bytes1, packets1;    /* latest, within the load */
    uint64_t t[LOAD_METER_SAMPLES], b[LOAD_METER_SAMPLES]; /* a ring */
    size_t first, count;
    bool fresh;                   /* no sample since the begin */
} load_meter_traffic;

typedef struct load_meter_name {
    char *addr;
    uint32_t node;
} load_meter_name;

struct load_meter {
    load_plan plan;
    uint32_t nodes;
    load_meter_name *names;   /* sorted by address */
    load_meter_key *wk;       /* [writer][key] */
    uint32_t *held;           /* [observer][writer][key]: last SEQ held
                                 + 1; 0 none */
    uint64_t stale;           /* entries of `held` behind their key */
    uint64_t all_held_at;     /* when `stale` last fell to 0 */
    load_meter_traffic *traffic;
    /* the period */
    double rate;
    uint64_t begin_at, stop_at;
    bool loading;
    uint64_t writes, pairs, superseded, max_ns, fresh_bytes;
    double peak_bytes_per_s;
    uint64_t hist[LOAD_METER_BUCKETS];
    uint64_t *writer_hist;    /* [writer][bucket] */
    uint64_t *writer_pairs;
};

static int load_meter_cmp_name(const void *a, const void *b)
{
    return strcmp(((const load_meter_name *)a)->addr,
                  ((const load_meter_name *)b)->addr);
}

load_meter *load_meter_new(const load_plan *plan, uint32_t nodes,
                           const char *const *addrs)
{
    load_meter *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->plan = *plan;
    m->nodes = nodes;
    size_t wk = (size_t)nodes * plan->keys;
    m->names = calloc(nodes, sizeof(*m->names));
    m->wk = calloc(wk, sizeof(*m->wk));
    m->held = calloc(wk * nodes, sizeof(*m->held));
    m->traffic = calloc(nodes, sizeof(*m->traffic));
    m->writer_hist = calloc((size_t)nodes * LOAD_METER_BUCKETS,
                            sizeof(*m->writer_hist));
    m->writer_pairs = calloc(nodes, sizeof(*m->writer_pairs));
    if (!m->names || !m->wk || !m->held || !m->traffic || !m->writer_hist ||
        !m->writer_pairs) {
        load_meter_free(m);
        return NULL;
    }
    for (uint32_t i = 0; i < nodes; i++) {
        m->names[i].node = i;
        if (!(m->names[i].addr = strdup(addrs[i]))) {
            load_meter_free(m);
            return NULL;
        }
    }
    qsort(m->names, nodes, sizeof(*m->names), load_meter_cmp_name);
    for (size_t i = 0; i < wk; i++)
        m->wk[i].current = nodes - 1; /* nothing set: all hold nothing */
    return m;
}

void load_meter_free(load_meter *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; m->names && i < m->nodes; i++)
        free(m->names[i].addr);
    for (size_t i = 0; m->wk && i < (size_t)m->nodes * m->plan.keys; i++)
        free(m->wk[i].set_at);
    free(m->names);
    free(m->wk);
    free(m->held);
    free(m->traffic);
    free(m->writer_hist);
    free(m->writer_pairs);
    free(m);
}

void load_meter_begin(load_meter *m, double rate, uint64_t now)
{
    m->rate = rate;
    m->begin_at = m->stop_at = now;
    m->loading = true;
    m->writes = m->pairs = m->superseded = m->max_ns = m->fresh_bytes = 0;
    m->peak_bytes_per_s = 0;
    memset(m->hist, 0, sizeof(m->hist));
    memset(m->writer_hist, 0,
           (size_t)m->nodes * LOAD_METER_BUCKETS * sizeof(*m->writer_hist));
    memset(m->writer_pairs, 0, m->nodes * sizeof(*m->writer_pairs));
    for (uint32_t i = 0; i < m->nodes; i++)
        m->traffic[i].fresh = true;
}

uint64_t load_meter_set(load_meter *m, uint32_t writer, uint32_t key,
                        uint64_t now)
{
    load_meter_key *x = &m->wk[(size_t)writer * m->plan.keys + key];
    if (x->n == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 16;
        uint64_t *p = realloc(x->set_at, cap * sizeof(*p));
        if (!p)
            return UINT64_MAX;
        x->set_at = p;
        x->cap = cap;
    }
    x->set_at[x->n] = now;
    m->stale += x->current;
    x->current = 0;
    m->writes++;
    return x->n++;
}

static size_t load_meter_bucket(uint64_t v)
{
    if (v < LOAD_METER_SUB)
        return (size_t)v;
    unsigned e = LOAD_METER_SUB_BITS;
    while (e < 63 && (v >> (e + 1)))
        e++;
    if (e >= LOAD_METER_TOP)
        return LOAD_METER_BUCKETS - 1;
    size_t sub = (size_t)(v >> (e - LOAD_METER_SUB_BITS)) - LOAD_METER_SUB;
    return LOAD_METER_SUB + (e - LOAD_METER_SUB_BITS) * LOAD_METER_SUB + sub;
}

/* The middle of bucket i, in ns. */
static double load_meter_bucket_mid(size_t i)
{
    if (i < LOAD_METER_SUB)
        return (double)i;
    size_t e = (i - LOAD_METER_SUB) / LOAD_METER_SUB;
    size_t sub = (i - LOAD_METER_SUB) % LOAD_METER_SUB;
    double width = ldexp(1, (int)e);
    return (double)(LOAD_METER_SUB + sub) * width + width / 2;
}

static void load_meter_record(load_meter *m, uint32_t writer, uint64_t ns)
{
    size_t b = load_meter_bucket(ns);
    m->hist[b]++;
    m->writer_hist[(size_t)writer * LOAD_METER_BUCKETS + b]++;
    m->writer_pairs[writer]++;
    m->pairs++;
    if (ns > m->max_ns)
        m->max_ns = ns;
}

static const load_meter_name *load_meter_find(const load_meter *m,
                                              const char *addr)
{
    load_meter_name probe = { .addr = (char *)addr };
    return bsearch(&probe, m->names, m->nodes, sizeof(*m->names),
                   load_meter_cmp_name);
}

void load_meter_update(load_meter *m, uint32_t observer, const char *addr,
                       const char *key, size_t key_len, const char *value,
                       size_t value_len, uint64_t now)
{
    uint32_t k;
    uint64_t seq;
    const load_meter_name *w = addr ? load_meter_find(m, addr) : NULL;
    if (!w || w->node == observer || observer >= m->nodes ||
        !load_plan_parse(&m->plan, key, key_len, value, value_len, &k, &seq))
        return;
    load_meter_key *x = &m->wk[(size_t)w->node * m->plan.keys + k];
    uint32_t *held = &m->held[((size_t)observer * m->nodes + w->node) *
                              m->plan.keys + k];
    if (seq >= x->n || seq < *held)
        return; /* not a write of this meter's, or not newer */
    for (uint64_t j = *held; j <= seq; j++) {
        load_meter_record(m, w->node,
                          now > x->set_at[j] ? now - x->set_at[j] : 0);
        m->superseded += j < seq;
    }
    *held = (uint32_t)(seq + 1);
    if (m->loading)
        m->fresh_bytes += key_len + value_len;
    if (*held == x->n) {
        x->current++;
        if (--m->stale == 0)
            m->all_held_at = now;
    }
}

void load_meter_sent(load_meter *m, uint32_t node, uint64_t bytes,
                     uint64_t packets, uint64_t now)
{
    load_meter_traffic *t = &m->traffic[node];
    if (!m->loading || node >= m->nodes)
        return;
    if (t->fresh) {
        t->bytes0 = t->bytes1 = bytes;
        t->packets0 = t->packets1 = packets;
        t->first = t->count = 0;
        t->fresh = false;
    }
    t->bytes1 = bytes;
    t->packets1 = packets;
    /* the newest sample at least a window old opens the window */
    size_t newest_old = SIZE_MAX;
    for (size_t i = 0; i < t->count; i++) {
        size_t at = (t->first + i) % LOAD_METER_SAMPLES;
        if (now - t->t[at] >= LOAD_METER_WINDOW_NS)
            newest_old = i;
    }
    if (newest_old != SIZE_MAX) {
        size_t at = (t->first + newest_old) % LOAD_METER_SAMPLES;
        double rate = (double)(bytes - t->b[at]) * 1e9 /
                      (double)(now - t->t[at]);
        if (rate > m->peak_bytes_per_s)
            m->peak_bytes_per_s = rate;
        t->first = at; /* the older ones can open no later window */
        t->count -= newest_old;
    }
    /* a step finer than LOAD_METER_GAP_NS would fill the ring with less
     * than a window of samples, and the oldest would be dropped before
     * any was a window old: no peak at all (eval at 15 ms or less) */
    if (t->count &&
        now - t->t[(t->first + t->count - 1) % LOAD_METER_SAMPLES] <
            LOAD_METER_GAP_NS)
        return;
    if (t->count == LOAD_METER_SAMPLES) {
        t->first = (t->first + 1) % LOAD_METER_SAMPLES;
        t->count--;
    }
    size_t at = (t->first + t->count++) % LOAD_METER_SAMPLES;
    t->t[at] = now;
    t->b[at] = bytes;
}

void load_meter_stop(load_meter *m, uint64_t now)
{
    m->stop_at = now;
    m->loading = false;
}

uint64_t load_meter_stale(const load_meter *m)
{
    return m->stale;
}

static int load_meter_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank p-quantile of the n values counted in `hist`, in ms,
 * at most max_ns. */
static double load_meter_quantile(const uint64_t *hist, uint64_t n, double p,
                                  uint64_t max_ns)
{
    uint64_t rank = (uint64_t)ceil(p * (double)n), seen = 0;
    size_t b = 0;
    if (!rank)
        rank = 1;
    while (b < LOAD_METER_BUCKETS - 1 && (seen += hist[b]) < rank)
        b++;
    double mid = load_meter_bucket_mid(b);
    return (mid < (double)max_ns ? mid : (double)max_ns) / 1e6;
}

void load_meter_row(const load_meter *m, load_row *row)
{
    memset(row, 0, sizeof(*row));
    row->nodes = m->nodes;
    row->rate = m->rate;
    row->seconds = (double)(m->stop_at - m->begin_at) / 1e9;
    row->writes = m->writes;
    row->pairs = m->pairs;
    row->superseded = m->superseded;
    row->stale_p50_ms = row->stale_p99_ms = row->stale_max_ms = NAN;
    row->writer_p99_worst_ms = row->writer_p99_median_ms = NAN;
    if (m->pairs) {
        row->stale_p50_ms = load_meter_quantile(m->hist, m->pairs, 0.5,
                                                m->max_ns);
        row->stale_p99_ms = load_meter_quantile(m->hist, m->pairs, 0.99,
                                                m->max_ns);
        row->stale_max_ms = (double)m->max_ns / 1e6;
    }
    double *p99 = malloc(m->nodes * sizeof(double));
    size_t writers = 0;
    for (uint32_t w = 0; p99 && w < m->nodes; w++) {
        if (!m->writer_pairs[w])
            continue;
        p99[writers++] = load_meter_quantile(
            &m->writer_hist[(size_t)w * LOAD_METER_BUCKETS],
            m->writer_pairs[w], 0.99, m->max_ns);
    }
    if (writers) {
        qsort(p99, writers, sizeof(double), load_meter_cmp_double);
        row->writer_p99_worst_ms = p99[writers - 1];
        row->writer_p99_median_ms = p99[(writers + 1) / 2 - 1];
    }
    free(p99);
    uint64_t bytes = 0, packets = 0;
    for (uint32_t i = 0; i < m->nodes; i++) {
        bytes += m->traffic[i].bytes1 - m->traffic[i].bytes0;
        packets += m->traffic[i].packets1 - m->traffic[i].packets0;
    }
    double per = (double)m->nodes * row->seconds;
    row->goodput = per > 0 ? (double)m->fresh_bytes / per : NAN;
    row->bytes_per_s = per > 0 ? (double)bytes / per : NAN;
    row->packets_per_s = per > 0 ? (double)packets / per : NAN;
    row->peak_bytes_per_s = m->peak_bytes_per_s;
    row->all_held_ms = -1;
    if (m->stale == 0)
        row->all_held_ms = m->all_held_at > m->stop_at
                               ? (double)(m->all_held_at - m->stop_at) / 1e6
                               : 0;
}
