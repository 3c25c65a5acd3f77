/*
 * System tests: real nodes on real UDP sockets on loopback, in one
 * process. They assert behaviour; the deadlines only keep a broken build
 * from hanging, and are generous because machines here are noisy.
 *
 * Run one test: test_node NAME (e.g. test_node test_three_nodes).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../run.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "scuttlebutt.h"

#define INTERVAL_MS 50
#define DEADLINE_MS 30000 /* only against hangs */

/* ---- helpers ------------------------------------------------------------ */

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

/* Waits until pred(arg) holds, polling; false at the deadline. */
static bool eventually(bool (*pred)(void *), void *arg)
{
    uint64_t end = ms_now() + DEADLINE_MS;
    while (ms_now() < end) {
        if (pred(arg))
            return true;
        sleep_ms(10);
    }
    return pred(arg);
}

/* Events one node reported, kept for the test to read. */
typedef struct recorder {
    pthread_mutex_t lock;
    struct rec {
        sb_event_type type;
        sb_status status;
        char addr[64];
        char key[64];
        size_t key_len;       /* the key's bytes, NUL bytes included */
        char value[64];
    } ev[4096];
    size_t n;
} recorder;

static void record(void *userdata, const sb_event *ev)
{
    recorder *r = userdata;
    pthread_mutex_lock(&r->lock);
    if (r->n < sizeof(r->ev) / sizeof(r->ev[0])) {
        struct rec *e = &r->ev[r->n++];
        e->type = ev->type;
        e->status = ev->status;
        snprintf(e->addr, sizeof(e->addr), "%s", ev->addr);
        snprintf(e->key, sizeof(e->key), "%s", ev->key ? ev->key : "");
        e->key_len = ev->key_len < sizeof(e->key) ? ev->key_len : 0;
        if (e->key_len)
            memcpy(e->key, ev->key, e->key_len);
        snprintf(e->value, sizeof(e->value), "%s",
                 ev->value ? ev->value : "");
    }
    pthread_mutex_unlock(&r->lock);
}

/* How many events of `type` about `addr` (and status, if >= 0). */
static size_t count_events(recorder *r, sb_event_type type, const char *addr,
                           int status)
{
    size_t k = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++)
        if (r->ev[i].type == type && strcmp(r->ev[i].addr, addr) == 0 &&
            (status < 0 || (int)r->ev[i].status == status))
            k++;
    pthread_mutex_unlock(&r->lock);
    return k;
}

/*
 * The membership events r holds about `addr` are well formed: a JOIN
 * first, then LEAVE and JOIN in turn (a node under load may be convicted
 * and come back: that is the detector's right, not an error), ending in a
 * JOIN if `live`, in a LEAVE of `status` otherwise (status < 0: any).
 */
static bool membership_ok(recorder *r, const char *addr, bool live,
                          int status)
{
    bool in = false, ok = true;
    int last_leave = -1;
    size_t joins = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++) {
        const struct rec *e = &r->ev[i];
        if (strcmp(e->addr, addr) != 0)
            continue;
        if (e->type == SB_EVENT_JOIN) {
            ok &= !in;
            in = true;
            joins++;
        } else if (e->type == SB_EVENT_LEAVE) {
            ok &= in;
            in = false;
            last_leave = (int)e->status;
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (live)
        return ok && joins > 0 && in;
    return ok && joins > 0 && !in && (status < 0 || last_leave == status);
}

/* A node of a test cluster, with its recorder. */
typedef struct member {
    sb_node *node;
    recorder rec;
    char addr[64];
} member;

static void config_for(sb_config *cfg, member *m, const char *bind,
                       const char *seed)
{
    sb_config_init(cfg);
    cfg->bind = bind;
    cfg->interval_ms = INTERVAL_MS;
    cfg->on_join = cfg->on_leave = cfg->on_update = cfg->on_delete = record;
    cfg->userdata = &m->rec;
    static const char *seeds[1];
    if (seed) {
        seeds[0] = seed;
        cfg->seeds = seeds;
        cfg->nseeds = 1;
    }
}

static void start_with(member *m, sb_config *cfg)
{
    memset(&m->rec.n, 0, sizeof(m->rec.n));
    pthread_mutex_init(&m->rec.lock, NULL);
    int rc = sb_node_new(cfg, &m->node);
    if (rc != SB_OK)
        fail_msg("sb_node_new(%s): %s", cfg->bind, sb_strerror(rc));
    snprintf(m->addr, sizeof(m->addr), "%s", sb_node_addr(m->node));
}

static void start(member *m, const char *bind, const char *seed)
{
    sb_config cfg;
    config_for(&cfg, m, bind, seed);
    start_with(m, &cfg);
}

static void stop(member *m)
{
    assert_int_equal(sb_node_free(m->node), SB_OK);
    m->node = NULL;
    pthread_mutex_destroy(&m->rec.lock);
}

typedef struct cluster {
    member *m;
    size_t n;
    const char *key, *value; /* for has_value */
    size_t who;              /* the node the key belongs to */
} cluster;

/* A cluster of n threaded nodes on 127.0.0.1, seeded by the first. */
static cluster *start_cluster(size_t n, const char *host)
{
    cluster *c = calloc(1, sizeof(*c));
    c->m = calloc(n, sizeof(member));
    c->n = n;
    char bind[64];
    snprintf(bind, sizeof(bind), "%s:0", host);
    for (size_t i = 0; i < n; i++)
        start(&c->m[i], bind, i ? c->m[0].addr : NULL);
    return c;
}

static void stop_cluster(cluster *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i].node)
            stop(&c->m[i]);
    free(c->m);
    free(c);
}

static size_t live_count(sb_node *node)
{
    sb_member *list;
    size_t k;
    assert_int_equal(sb_node_live(node, &list, &k), SB_OK);
    sb_free(list);
    return k;
}

/* Every running node sees every running node live. */
static bool all_live(void *arg)
{
    cluster *c = arg;
    size_t running = 0;
    for (size_t i = 0; i < c->n; i++)
        running += c->m[i].node != NULL;
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i].node && live_count(c->m[i].node) != running)
            return false;
    return true;
}

/* Every running node holds c->key = c->value of node c->who. */
static bool has_value(void *arg)
{
    cluster *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->m[i].node)
            continue;
        char *v;
        size_t len;
        if (sb_node_get(c->m[i].node, c->m[c->who].addr, c->key, strlen(c->key), &v,
                        &len) != SB_OK)
            return false;
        bool same = len == strlen(c->value) && strcmp(v, c->value) == 0;
        sb_free(v);
        if (!same)
            return false;
    }
    return true;
}

/* Every running node has reported the join of every other. */
static bool all_joins_seen(void *arg)
{
    cluster *c = arg;
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->n; j++)
            if (i != j && c->m[i].node && c->m[j].node &&
                count_events(&c->m[i].rec, SB_EVENT_JOIN, c->m[j].addr,
                             -1) == 0)
                return false;
    return true;
}

/* ---- the reference's system tests --------------------------------------- */

typedef struct leave_check {
    cluster *c;
    size_t gone;
    int status;
} leave_check;

/* Every other running node reported a leave of node `gone`. */
static bool leave_reported(void *arg)
{
    leave_check *l = arg;
    for (size_t i = 0; i < l->c->n; i++)
        if (l->c->m[i].node && i != l->gone &&
            count_events(&l->c->m[i].rec, SB_EVENT_LEAVE,
                         l->c->m[l->gone].addr, l->status) == 0)
            return false;
    return true;
}

static void test_three_nodes(void **state)
{
    (void)state;
    cluster *c = start_cluster(3, "127.0.0.1");
    /* peers are discovered and reported joined (a member is live in the
     * engine a moment before its callback runs: wait for the events) */
    assert_true(eventually(all_live, c));
    assert_true(eventually(all_joins_seen, c));
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++)
            if (i != j)
                assert_true(membership_ok(&c->m[i].rec, c->m[j].addr, true,
                                          -1));
    /* an update propagates, with an update event */
    assert_int_equal(sb_node_set(c->m[2].node, "state", 5, "ready", 5), SB_OK);
    c->key = "state", c->value = "ready", c->who = 2;
    assert_true(eventually(has_value, c));
    /* a shut-down node is reported as left (down: it did not say goodbye) */
    leave_check l = { c, 1, SB_STATUS_DOWN };
    stop(&c->m[1]); /* keeps its addr */
    assert_true(eventually(leave_reported, &l));
    assert_true(count_events(&c->m[0].rec, SB_EVENT_UPDATE, c->m[2].addr,
                             -1) > 0);
    stop_cluster(c);
}

/* ---- a bigger cluster, restarts, leaves ---------------------------------- */

static void test_32_nodes_converge(void **state)
{
    (void)state;
    cluster *c = start_cluster(32, "127.0.0.1");
    char value[32];
    for (size_t i = 0; i < c->n; i++) {
        snprintf(value, sizeof(value), "node-%zu", i);
        assert_int_equal(sb_node_set(c->m[i].node, "name", 4, value,
                                     strlen(value)), SB_OK);
    }
    assert_true(eventually(all_live, c));
    c->key = "name";
    for (c->who = 0; c->who < c->n; c->who++) {
        snprintf(value, sizeof(value), "node-%zu", c->who);
        c->value = value;
        assert_true(eventually(has_value, c));
    }
    stop_cluster(c);
}

/* Node c->who no longer has c->key anywhere. */
static bool key_gone(void *arg)
{
    cluster *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        char *v;
        size_t len;
        if (i == c->who || !c->m[i].node)
            continue;
        int rc = sb_node_get(c->m[i].node, c->m[c->who].addr, c->key, strlen(c->key), &v,
                             &len);
        if (rc == SB_OK)
            sb_free(v);
        if (rc != SB_ENOTFOUND)
            return false;
    }
    return true;
}

static void test_restart_on_same_port(void **state)
{
    (void)state;
    cluster *c = start_cluster(8, "127.0.0.1");
    size_t x = 5;
    assert_int_equal(sb_node_set(c->m[x].node, "old", 3, "1", 1), SB_OK);
    c->key = "old", c->value = "1", c->who = x;
    assert_true(eventually(all_live, c));
    assert_true(eventually(has_value, c));

    char addr[64];
    snprintf(addr, sizeof(addr), "%s", c->m[x].addr);
    stop(&c->m[x]);
    start(&c->m[x], addr, c->m[0].addr); /* same port, new generation */
    assert_string_equal(c->m[x].addr, addr);
    assert_int_equal(sb_node_set(c->m[x].node, "new", 3, "2", 1), SB_OK);
    c->key = "new", c->value = "2";
    assert_true(eventually(has_value, c));
    c->key = "old";
    assert_true(eventually(key_gone, c));
    assert_true(eventually(all_live, c));
    stop_cluster(c);
}

static void test_graceful_leave(void **state)
{
    (void)state;
    cluster *c = start_cluster(8, "127.0.0.1");
    assert_true(eventually(all_live, c));
    size_t x = 3;
    assert_int_equal(sb_node_leave(c->m[x].node), SB_OK);
    assert_int_equal(sb_node_leave(c->m[x].node), SB_ELEFT);
    assert_int_equal(sb_node_set(c->m[x].node, "k", 1, "v", 1), SB_ELEFT);
    /* reported as left (not down) while the node still runs */
    leave_check l = { c, x, SB_STATUS_LEFT };
    assert_true(eventually(leave_reported, &l));
    for (size_t i = 0; i < c->n; i++)
        if (i != x)
            assert_true(membership_ok(&c->m[i].rec, c->m[x].addr, false,
                                      SB_STATUS_LEFT));
    stop_cluster(c);
}

/* Three nodes with no seeds meet through sb_node_join() (a name, then a
 * number), and its errors. */
static void test_join_at_run_time(void **state)
{
    (void)state;
    cluster *c = calloc(1, sizeof(*c));
    c->m = calloc(3, sizeof(member));
    c->n = 3;
    for (size_t i = 0; i < 3; i++)
        start(&c->m[i], "127.0.0.1:0", NULL);
    usleep(3 * INTERVAL_MS * 1000);
    assert_int_equal(live_count(c->m[1].node), 1); /* alone, no seeds */
    char name[64];
    snprintf(name, sizeof(name), "localhost:%s",
             strrchr(c->m[0].addr, ':') + 1);
    assert_int_equal(sb_node_join(c->m[1].node, name), SB_OK);
    assert_int_equal(sb_node_join(c->m[2].node, c->m[1].addr), SB_OK);
    assert_true(eventually(all_live, c));
    assert_true(eventually(all_joins_seen, c));
    assert_int_equal(sb_node_join(NULL, c->m[0].addr), SB_EINVAL);
    assert_int_equal(sb_node_join(c->m[0].node, NULL), SB_EINVAL);
    assert_int_equal(sb_node_join(c->m[0].node, c->m[0].addr), SB_EADDR);
    assert_int_equal(sb_node_join(c->m[0].node, "no-such-host.invalid:1"),
                     SB_EADDR);
    assert_int_equal(sb_node_join(c->m[0].node, "127.0.0.1"), SB_EADDR);
    assert_int_equal(sb_node_join(c->m[0].node, "[::1]:7946"), SB_EADDR);
    /* brackets hold IPv6 only, as in the addresses the node gives */
    assert_int_equal(sb_node_join(c->m[0].node, "[127.0.0.1]:7946"),
                     SB_EADDR);
    assert_int_equal(sb_node_leave(c->m[2].node), SB_OK);
    assert_int_equal(sb_node_join(c->m[2].node, c->m[0].addr), SB_ELEFT);
    assert_int_equal(sb_node_stop(c->m[1].node), SB_OK);
    assert_int_equal(sb_node_join(c->m[1].node, c->m[0].addr), SB_ESTATE);
    stop_cluster(c);
}

/* The seeds callback as an application writes it: its node from the
 * userdata it was given, as sb_node_new() left it there. */
typedef struct app {
    sb_node *node;
    sb_node *seen;             /* what the first call found (inside
                                  sb_node_new(), in its caller's thread) */
    atomic_int calls;          /* later ones come from the node's thread */
} app;

static size_t app_seeds(void *userdata, const char **out, size_t max)
{
    app *a = userdata;
    if (a->calls++ == 0)
        a->seen = a->node;
    (void)out, (void)max;
    return 0;
}

/* *out is set before the seeds callback first runs (inside
 * sb_node_new()) and before the thread starts: a callback finds its node
 * through its userdata, with no race (TSan runs this too). */
static void test_callbacks_find_their_node(void **state)
{
    (void)state;
    app a = { .node = NULL };
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.seed_fn = app_seeds;
    cfg.userdata = &a;
    assert_int_equal(sb_node_new(&cfg, &a.node), SB_OK);
    assert_true(a.calls >= 1);
    assert_non_null(a.seen);
    assert_ptr_equal(a.seen, a.node);
    assert_int_equal(sb_node_free(a.node), SB_OK);
    /* a failure leaves it NULL */
    cfg.interval_ms = 0;
    cfg.seed_fn = NULL;
    a.node = (sb_node *)&a;
    assert_int_equal(sb_node_new(&cfg, &a.node), SB_ECONFIG);
    assert_null(a.node);
}

static bool ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = { .sin6_family = AF_INET6,
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void test_ipv6_loopback(void **state)
{
    (void)state;
    if (!ipv6_loopback())
        run_skip("no IPv6 loopback on this host");
    cluster *c = start_cluster(4, "[::1]");
    assert_true(c->m[0].addr[0] == '[');
    assert_true(eventually(all_live, c));
    assert_int_equal(sb_node_set(c->m[3].node, "v6", 2, "yes", 3), SB_OK);
    c->key = "v6", c->value = "yes", c->who = 3;
    assert_true(eventually(has_value, c));
    stop_cluster(c);
}

/* A dual-stack node on [::] and IPv4 nodes gossip with each other. */
static void test_dual_stack(void **state)
{
    (void)state;
    if (!ipv6_loopback())
        run_skip("no IPv6 loopback on this host");
    cluster *c = calloc(1, sizeof(*c));
    c->m = calloc(3, sizeof(member));
    c->n = 3;
    sb_config cfg;
    config_for(&cfg, &c->m[0], "[::]:0", NULL);
    cfg.advertise = "127.0.0.1:1"; /* wrong port: fixed below */
    /* bind first to learn the port, then advertise the IPv4 loopback */
    start_with(&c->m[0], &cfg);
    char bind[64], adv[64];
    snprintf(bind, sizeof(bind), "%s", sb_node_bind_addr(c->m[0].node));
    const char *port = strrchr(bind, ':') + 1;
    snprintf(adv, sizeof(adv), "127.0.0.1:%s", port);
    stop(&c->m[0]);
    config_for(&cfg, &c->m[0], bind, NULL);
    cfg.advertise = adv;
    start_with(&c->m[0], &cfg);
    assert_string_equal(c->m[0].addr, adv);
    start(&c->m[1], "127.0.0.1:0", adv);
    start(&c->m[2], "127.0.0.1:0", adv);
    assert_true(eventually(all_live, c));
    stop_cluster(c);
}

/* ---- embedded mode --------------------------------------------------------- */

typedef struct loop_ctx {
    member m[3];
    int joins, reentry_free, reentry_process, set_in_callback;
} loop_ctx;

/* Drives the three embedded nodes with one poll() for `ms`. */
static void pump(loop_ctx *x, int ms)
{
    uint64_t end = ms_now() + (uint64_t)ms;
    while (ms_now() < end) {
        struct pollfd p[3];
        int timeout = 1000;
        for (int i = 0; i < 3; i++) {
            p[i] = (struct pollfd){ sb_node_fd(x->m[i].node), POLLIN, 0 };
            int t = sb_node_timeout_ms(x->m[i].node);
            assert_true(t >= 0);
            if (t < timeout)
                timeout = t;
        }
        assert_true(poll(p, 3, timeout) >= 0);
        for (int i = 0; i < 3; i++)
            assert_int_equal(sb_node_process(x->m[i].node), SB_OK);
    }
}

static void embedded_event(void *userdata, const sb_event *ev)
{
    loop_ctx *x = userdata;
    /* inside its own callback a node may not be freed or re-processed,
     * but may be used */
    if (ev->type == SB_EVENT_JOIN) {
        x->joins++;
        x->reentry_free += sb_node_free(x->m[0].node) == SB_ESTATE;
        x->reentry_process += sb_node_process(x->m[0].node) == SB_ESTATE;
        x->set_in_callback +=
            sb_node_set(x->m[0].node, "seen", 4, ev->addr, strlen(ev->addr)) ==
            SB_OK;
    }
}

static void test_embedded_poll_loop(void **state)
{
    (void)state;
    loop_ctx *x = calloc(1, sizeof(*x));
    for (int i = 0; i < 3; i++) {
        sb_config cfg;
        config_for(&cfg, &x->m[i], "127.0.0.1:0", i ? x->m[0].addr : NULL);
        cfg.embedded = true;
        if (i == 0) {
            cfg.on_join = embedded_event;
            cfg.on_leave = cfg.on_update = cfg.on_delete = NULL;
            cfg.userdata = x;
        }
        start_with(&x->m[i], &cfg);
    }
    assert_true(sb_node_fd(x->m[0].node) >= 0);
    assert_int_equal(sb_node_set(x->m[2].node, "k", 1, "embedded", 8), SB_OK);
    uint64_t end = ms_now() + DEADLINE_MS;
    bool done = false;
    while (!done && ms_now() < end) {
        pump(x, 50);
        done = live_count(x->m[0].node) == 3 &&
               live_count(x->m[1].node) == 3 &&
               count_events(&x->m[1].rec, SB_EVENT_UPDATE, x->m[2].addr,
                            -1) >= 1;
    }
    assert_true(done);
    /* node 0's join callbacks (two, or more if a peer was convicted and
     * came back under load) each tried the forbidden calls */
    assert_true(x->joins >= 2);
    assert_int_equal(x->reentry_free, x->joins);
    assert_int_equal(x->reentry_process, x->joins);
    assert_int_equal(x->set_in_callback, x->joins);
    char *v;
    size_t len;
    assert_int_equal(sb_node_get(x->m[0].node, x->m[0].addr, "seen", 4, &v,
                                 &len), SB_OK);
    sb_free(v);
    for (int i = 0; i < 3; i++)
        stop(&x->m[i]);
    free(x);
}

/* ---- callbacks on the node's thread ---------------------------------------- */

typedef struct thread_ctx {
    sb_node *node;
    pthread_mutex_t lock;
    int joins, free_refused, set_ok;
    sb_node *reported_by;      /* ev->node of the last join */
} thread_ctx;

static void threaded_join(void *userdata, const sb_event *ev)
{
    thread_ctx *t = userdata;
    pthread_mutex_lock(&t->lock);
    sb_node *node = t->node;
    pthread_mutex_unlock(&t->lock);
    int f = sb_node_free(node);
    int s = sb_node_set(node, "peer", 4, ev->addr, strlen(ev->addr));
    pthread_mutex_lock(&t->lock);
    t->joins++;
    t->reported_by = ev->node;
    t->free_refused += f == SB_ESTATE;
    t->set_ok += s == SB_OK;
    pthread_mutex_unlock(&t->lock);
}

static bool joined(void *arg)
{
    thread_ctx *t = arg;
    pthread_mutex_lock(&t->lock);
    bool done = t->set_ok >= 1;
    pthread_mutex_unlock(&t->lock);
    return done;
}

static void test_callbacks_may_call_the_api(void **state)
{
    (void)state;
    thread_ctx t = { .lock = PTHREAD_MUTEX_INITIALIZER };
    member a = { 0 }, b = { 0 };
    sb_config cfg;
    config_for(&cfg, &a, "127.0.0.1:0", NULL);
    cfg.on_join = threaded_join;
    cfg.on_leave = cfg.on_update = cfg.on_delete = NULL;
    cfg.userdata = &t;
    pthread_mutex_lock(&t.lock); /* the callback waits for t.node */
    start_with(&a, &cfg);
    t.node = a.node;
    pthread_mutex_unlock(&t.lock);
    assert_int_equal(sb_node_process(a.node), SB_ESTATE); /* threaded */
    start(&b, "127.0.0.1:0", a.addr);
    assert_true(eventually(joined, &t));
    /* every join callback (one, or more if b was convicted and came back
     * under load) was refused the free and allowed the set */
    pthread_mutex_lock(&t.lock);
    thread_ctx seen = t;
    pthread_mutex_unlock(&t.lock);
    assert_true(seen.joins >= 1);
    assert_ptr_equal(seen.reported_by, a.node); /* the event names it */
    assert_int_equal(seen.free_refused, seen.joins);
    assert_int_equal(seen.set_ok, seen.joins);
    stop(&b);
    stop(&a);
}

/* ---- concurrency and lifetime ------------------------------------------------ */

typedef struct hammer {
    cluster *c;
    int id;
    int errors;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *h = arg;
    cluster *c = h->c;
    uint64_t end = ms_now() + 2000;
    unsigned r = (unsigned)h->id * 7919u + 1;
    char key[16], value[32];
    for (int i = 0; ms_now() < end; i++) {
        r = r * 1103515245u + 12345u;
        sb_node *node = c->m[r % c->n].node;
        snprintf(key, sizeof(key), "t%d-%d", h->id, i % 8);
        snprintf(value, sizeof(value), "%d", i);
        int rc = SB_OK;
        char *v;
        size_t len;
        sb_member *list;
        sb_stats st;
        double phi;
        switch (i % 6) {
        case 0:
            rc = sb_node_set(c->m[h->id].node, key, strlen(key), value, strlen(value));
            break;
        case 1:
            rc = sb_node_get(node, c->m[h->id].addr, key, strlen(key), &v, &len);
            if (rc == SB_OK)
                sb_free(v);
            else if (rc == SB_ENOTFOUND)
                rc = SB_OK;
            break;
        case 2:
            rc = sb_node_members(node, &list, &len);
            if (rc == SB_OK)
                sb_free(list);
            break;
        case 3:
            rc = sb_node_stats(node, &st);
            break;
        case 4:
            rc = sb_node_phi(node, c->m[(r >> 8) % c->n].addr, &phi);
            if (rc == SB_ENOTFOUND) /* ourselves, or not yet known */
                rc = SB_OK;
            break;
        case 5:
            rc = sb_node_del(c->m[h->id].node, key, strlen(key));
            if (rc == SB_ENOTFOUND)
                rc = SB_OK;
            break;
        }
        h->errors += rc != SB_OK;
    }
    /* a final value every node must end with */
    if (sb_node_set(c->m[h->id].node, "final", 5, "done", 4) != SB_OK)
        h->errors++;
    return NULL;
}

static void test_four_threads_use_the_api(void **state)
{
    (void)state;
    cluster *c = start_cluster(4, "127.0.0.1");
    pthread_t th[4];
    hammer h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (hammer){ c, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(h[i].errors, 0);
    }
    c->key = "final", c->value = "done";
    for (c->who = 0; c->who < 4; c->who++)
        assert_true(eventually(has_value, c));
    stop_cluster(c);
}

static void test_create_free_1000_times(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        sb_config cfg;
        sb_config_init(&cfg);
        cfg.bind = "127.0.0.1:0";
        cfg.embedded = i % 2; /* both ways of running */
        const char *seeds[] = { "127.0.0.1:9" };
        cfg.seeds = seeds;
        cfg.nseeds = 1;
        sb_node *n;
        assert_int_equal(sb_node_new(&cfg, &n), SB_OK);
        assert_int_equal(sb_node_set(n, "k", 1, "v", 1), SB_OK);
        if (cfg.embedded)
            assert_int_equal(sb_node_process(n), SB_OK);
        assert_int_equal(sb_node_free(n), SB_OK);
    }
}

/* ---- bad configuration ------------------------------------------------------- */

typedef struct log_ctx {
    char last[512];
    int lines;
} log_ctx;

static void keep_log(void *userdata, sb_log_level level, const char *msg)
{
    log_ctx *l = userdata;
    if (level == SB_LOG_ERROR) {
        snprintf(l->last, sizeof(l->last), "%s", msg);
        l->lines++;
    }
}

/* Creating with `cfg` fails with `want` and logs an error line, the
 * last of which names `why` (if not NULL). */
static void refused_why(sb_config *cfg, int want, const char *why)
{
    log_ctx l = { "", 0 };
    cfg->log = keep_log;
    cfg->userdata = &l;
    sb_node *n = (sb_node *)&l;
    int rc = sb_node_new(cfg, &n);
    if (rc != want)
        fail_msg("bind %s: got %s, want %s", cfg->bind ? cfg->bind : "-",
                 sb_err_name(rc), sb_err_name(want));
    assert_null(n);
    assert_true(l.lines >= 1);
    print_message("  refused with %s: %s\n", sb_err_name(rc), l.last);
    if (why && !strstr(l.last, why))
        fail_msg("the log line does not name \"%s\": %s", why, l.last);
}

static void refused(sb_config *cfg, int want)
{
    refused_why(cfg, want, NULL);
}

static void test_bad_configuration(void **state)
{
    (void)state;
    sb_config cfg;
    const char *bad_addrs[] = { NULL, "", "127.0.0.1", "127.0.0.1:", ":80",
                                "127.0.0.1:65536", "127.0.0.1:x", "::1:80",
                                "[::1]80", "no-such-host.invalid:7000",
                                "127.0.0.1:80000000000000000000" };
    for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
        sb_config_init(&cfg);
        cfg.bind = bad_addrs[i];
        refused(&cfg, SB_EADDR);
    }
    /* the port is taken */
    member m = { 0 };
    start(&m, "127.0.0.1:0", NULL);
    sb_config_init(&cfg);
    cfg.bind = m.addr;
    refused(&cfg, SB_EADDRINUSE);
    /* a bad field is found before the socket: the port is not touched */
    cfg.interval_ms = 0;
    refused_why(&cfg, SB_ECONFIG, "interval");
    stop(&m);
    /* IPv6 link-local: the zone cannot be advertised */
    sb_config_init(&cfg);
    cfg.bind = "[fe80::1%lo]:0";
    refused_why(&cfg, SB_EADDR, "link-local");
    cfg.bind = "[::1%1]:0"; /* a zone on any address: it would be dropped */
    refused_why(&cfg, SB_EADDR, "zone");
    cfg.bind = "[127.0.0.1]:0";
    refused_why(&cfg, SB_EADDR, "[127.0.0.1]:0");
    if (ipv6_loopback()) {
        sb_config_init(&cfg);
        cfg.bind = "[::1]:0";
        cfg.advertise = "[fe80::1]:7000";
        refused_why(&cfg, SB_EADDR, "link-local");
    }
    /* a seed name as long as a resolver takes is not refused */
    static char long_seed[300];
    memset(long_seed, 'a', 200);
    strcpy(long_seed + 200, ".invalid:7000");
    const char *long_seeds[] = { long_seed };
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.seeds = long_seeds;
    cfg.nseeds = 1;
    sb_node *with_long = NULL;
    assert_int_equal(sb_node_new(&cfg, &with_long), SB_OK);
    assert_int_equal(sb_node_free(with_long), SB_OK);
    /* a count no array can have: refused, nothing read past seeds[0] */
    cfg.nseeds = SIZE_MAX;
    refused_why(&cfg, SB_ECONFIG, "nseeds");
    /* a wildcard needs an advertised address; advertise must be numeric */
    sb_config_init(&cfg);
    cfg.bind = "0.0.0.0:0";
    refused(&cfg, SB_EADDR);
    cfg.advertise = "localhost:7000";
    refused(&cfg, SB_EADDR);
    /* port 0 advertised: the port the system chose */
    cfg.advertise = "10.0.0.1:0";
    sb_node *wild = NULL;
    assert_int_equal(sb_node_new(&cfg, &wild), SB_OK);
    const char *bport = strrchr(sb_node_bind_addr(wild), ':');
    assert_true(bport && strcmp(bport, ":0") != 0);
    char want[64];
    snprintf(want, sizeof(want), "10.0.0.1%s", bport);
    assert_string_equal(sb_node_addr(wild), want);
    assert_int_equal(sb_node_free(wild), SB_OK);
    /* a group address is no one node's: not bound to, not advertised */
    static const char *groups[] = { "224.0.0.1:0", "255.255.255.255:0",
                                    "239.1.2.3:7000" };
    for (size_t i = 0; i < 3; i++) {
        sb_config_init(&cfg);
        cfg.bind = groups[i];
        refused_why(&cfg, SB_EADDR, "multicast");
    }
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.advertise = "224.0.0.1:7000";
    refused_why(&cfg, SB_EADDR, "multicast");
    if (ipv6_loopback()) {
        sb_config_init(&cfg);
        cfg.bind = "[::1]:0";
        cfg.advertise = "[ff02::1]:7000";
        refused_why(&cfg, SB_EADDR, "multicast");
    }
    /* values out of range */
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.interval_ms = 0;
    refused_why(&cfg, SB_ECONFIG, "interval");
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.max_message_size = 40; /* below one key */
    refused_why(&cfg, SB_ECONFIG, "max_message_size must be at least");
    cfg.max_message_size = 70000;
    refused_why(&cfg, SB_ECONFIG, "max_message_size must be at most 65507");
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.phi_threshold = 0;
    refused_why(&cfg, SB_ECONFIG, "phi_threshold");
    cfg.phi_threshold = 1e-300;
    refused_why(&cfg, SB_ECONFIG, "phi_threshold must be a finite number");
    /* an infinite threshold passed "at least 1", and nothing was ever
     * convicted */
    cfg.phi_threshold = INFINITY;
    refused_why(&cfg, SB_ECONFIG, "phi_threshold must be a finite number");
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.max_keys_per_node = 0;
    refused_why(&cfg, SB_ECONFIG, "max_keys_per_node");
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.max_state_bytes = 0;
    refused_why(&cfg, SB_ECONFIG, "max_state_bytes");
    /* a node forgotten the moment it is convicted, with no memory of it,
     * came back live from the peers that had not convicted it yet, and
     * went down again, over and over */
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.dead_grace_ms = 0;
    refused_why(&cfg, SB_ECONFIG, "dead_grace");
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.nseeds = 2;
    refused_why(&cfg, SB_ECONFIG, "seeds");
    /* keys: missing, too many, too little room left by the seal */
    static const uint8_t keys[(SB_MAX_KEYS + 1) * SB_KEY_SIZE] = { 1 };
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.nkeys = 1;
    refused_why(&cfg, SB_ECONFIG, "keys is NULL");
    cfg.keys = keys;
    cfg.nkeys = SB_MAX_KEYS + 1;
    refused_why(&cfg, SB_ECONFIG, "nkeys");
    cfg.nkeys = 1;
    cfg.max_message_size = 140; /* one key fits plain, not sealed */
    refused_why(&cfg, SB_ECONFIG, "at least 1");
    /* the wire: not an sb_wire; the reference format carries no keys,
     * cluster name or generation, and needs room for one key */
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.wire = (sb_wire)2;
    refused_why(&cfg, SB_ECONFIG, "wire");
    cfg.wire = SB_WIRE_REFERENCE;
    cfg.keys = keys;
    cfg.nkeys = 1;
    refused_why(&cfg, SB_ECONFIG, "no encryption");
    cfg.nkeys = 0;
    cfg.cluster = "payments";
    refused_why(&cfg, SB_ECONFIG, "cluster name");
    cfg.cluster = "default";
    cfg.generation = 7;
    refused_why(&cfg, SB_ECONFIG, "generation");
    cfg.generation = 0;
    cfg.max_message_size = 20;
    refused_why(&cfg, SB_ECONFIG, "max_message_size must be at least");
    /* seeds that can never work */
    static const char *bad_seeds[] = { "127.0.0.1", "127.0.0.1:0", "[::1]",
                                       "::1:7000", "host:99999",
                                       "[fe80::1%lo]:7000", "[::1%1]:7000",
                                       "[127.0.0.1]:7000" };
    for (size_t i = 0; i < sizeof(bad_seeds) / sizeof(bad_seeds[0]); i++) {
        sb_config_init(&cfg);
        cfg.bind = "127.0.0.1:0";
        cfg.seeds = &bad_seeds[i];
        cfg.nseeds = 1;
        refused_why(&cfg, SB_EADDR, bad_seeds[i]);
    }
    /* the size: 0 (never initialised) and a newer library's are refused;
     * an older program's smaller one gets defaults for the rest */
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    sb_node *n = NULL;
    cfg.size = 0;
    assert_int_equal(sb_node_new(&cfg, &n), SB_ECONFIG);
    cfg.size = sizeof(cfg) + 8;
    assert_int_equal(sb_node_new(&cfg, &n), SB_ECONFIG);
    assert_null(n);
    cfg.size = offsetof(sb_config, embedded);
    cfg.embedded = true; /* past the size: not read, so a thread */
    assert_int_equal(sb_node_new(&cfg, &n), SB_OK);
    assert_int_equal(sb_node_process(n), SB_ESTATE); /* threaded */
    assert_int_equal(sb_node_free(n), SB_OK);
    assert_int_equal(sb_node_new(NULL, NULL), SB_EINVAL);
    assert_int_equal(sb_node_free(NULL), SB_OK);
}

/* The keyring through the API: refused on a node without keys; install,
 * use and remove with their errors on a node with them; two sealed nodes
 * see each other once both hold the key one seals with; a plaintext node
 * seeded with one of them is dropped there, as plaintext. */
typedef struct pair {
    member *a, *b;
    sb_drop_reason reason;
} pair;

static bool see_each_other(void *arg)
{
    pair *p = arg;
    return count_events(&p->a->rec, SB_EVENT_JOIN, p->b->addr, -1) &&
           count_events(&p->b->rec, SB_EVENT_JOIN, p->a->addr, -1);
}

static bool dropped(void *arg)
{
    pair *p = arg;
    sb_stats st;
    sb_node_stats(p->a->node, &st);
    return st.drops[p->reason] > 0;
}

static void test_keys(void **state)
{
    (void)state;
    static member a, b, plain;
    uint8_t k1[SB_KEY_SIZE], k2[SB_KEY_SIZE];
    memset(k1, 0x11, sizeof(k1));
    memset(k2, 0x22, sizeof(k2));
    sb_config cfg;
    config_for(&cfg, &a, "127.0.0.1:0", NULL);
    cfg.keys = k1;
    cfg.nkeys = 1;
    start_with(&a, &cfg);
    assert_int_equal(sb_node_key_use(a.node, k2), SB_ENOTFOUND);
    assert_int_equal(sb_node_key_remove(a.node, k1), SB_ESTATE);
    assert_int_equal(sb_node_key_install(a.node, k2), SB_OK);
    assert_int_equal(sb_node_key_use(a.node, k2), SB_OK);
    assert_int_equal(sb_node_key_remove(a.node, k1), SB_OK);
    assert_int_equal(sb_node_key_remove(a.node, k1), SB_ENOTFOUND);
    assert_int_equal(sb_node_key_install(a.node, NULL), SB_EINVAL);
    assert_int_equal(sb_node_key_install(NULL, k1), SB_EINVAL);
    /* b seals with k1, which a no longer holds: a drops b's SYNs, until
     * b seals with k2 too */
    config_for(&cfg, &b, "127.0.0.1:0", a.addr);
    cfg.keys = k1;
    cfg.nkeys = 1;
    start_with(&b, &cfg);
    pair p = { &a, &b, SB_DROP_AUTH };
    assert_true(eventually(dropped, &p));
    assert_int_equal(count_events(&a.rec, SB_EVENT_JOIN, b.addr, -1), 0);
    assert_int_equal(sb_node_key_install(b.node, k2), SB_OK);
    assert_int_equal(sb_node_key_use(b.node, k2), SB_OK);
    assert_true(eventually(see_each_other, &p));
    /* a plaintext node has no keyring, and a sealed one drops its SYNs */
    start(&plain, "127.0.0.1:0", a.addr);
    assert_int_equal(sb_node_key_install(plain.node, k2), SB_ESTATE);
    pair q = { &a, &plain, SB_DROP_PLAINTEXT };
    assert_true(eventually(dropped, &q));
    assert_int_equal(count_events(&a.rec, SB_EVENT_JOIN, plain.addr, -1), 0);
    stop(&plain);
    stop(&b);
    stop(&a);
}

/* Bad arguments to a running node: error codes, never a crash. */
/* Nodes configured with different max_message_size lose no key: a node
 * at 1400 bytes sets a 1000-byte value, which nodes at 512 take (any
 * datagram is read whole), and its later keys reach them too; each sends
 * within its own bound, sealed or not. */
static void mixed_sizes(const uint8_t *keys, size_t nkeys)
{
    cluster *c = calloc(1, sizeof(*c));
    c->m = calloc(3, sizeof(member));
    c->n = 3;
    for (size_t i = 0; i < 3; i++) {
        sb_config cfg;
        config_for(&cfg, &c->m[i], "127.0.0.1:0", i ? c->m[0].addr : NULL);
        cfg.max_message_size = i ? 512 : 1400;
        cfg.keys = keys;
        cfg.nkeys = nkeys;
        start_with(&c->m[i], &cfg);
    }
    assert_true(eventually(all_live, c));
    static char big[1001];
    memset(big, 'b', sizeof(big) - 1);
    assert_int_equal(sb_node_set(c->m[0].node, "big", 3, big, 1000), SB_OK);
    assert_int_equal(sb_node_set(c->m[0].node, "after", 5, "yes", 3), SB_OK);
    c->key = "big", c->value = big, c->who = 0;
    assert_true(eventually(has_value, c));
    c->key = "after", c->value = "yes";
    assert_true(eventually(has_value, c));
    for (size_t i = 1; i < 3; i++) {
        sb_stats st;
        assert_int_equal(sb_node_stats(c->m[i].node, &st), SB_OK);
        assert_int_equal(st.drops[SB_DROP_OVERSIZE], 0);
    }
    stop_cluster(c);
}

/* The longest value a key can hold is asked, and it is exact: that long
 * is taken, one byte more is SB_ETOOBIG; sealing takes its 40 bytes, and
 * each byte of the address (IPv6 or IPv4 text) one. */
static size_t max_value_exact(sb_node *node, size_t key_len)
{
    static char key[255], value[65536];
    memset(key, 'k', sizeof(key));
    size_t most;
    assert_int_equal(sb_node_max_value(node, key_len, &most), SB_OK);
    assert_int_equal(sb_node_set(node, key, key_len, value, most), SB_OK);
    assert_int_equal(sb_node_set(node, key, key_len, value, most + 1),
                     SB_ETOOBIG);
    return most;
}

static void test_max_value(void **state)
{
    (void)state;
    static const uint8_t key[SB_KEY_SIZE] = { 9 };
    member plain = { 0 }, sealed = { 0 }, v6 = { 0 };
    sb_config cfg;
    start(&plain, "127.0.0.1:0", NULL);
    config_for(&cfg, &sealed, "127.0.0.1:0", NULL);
    cfg.keys = key;
    cfg.nkeys = 1;
    start_with(&sealed, &cfg);
    size_t p1 = max_value_exact(plain.node, 1);
    size_t p255 = max_value_exact(plain.node, 255);
    size_t s1 = max_value_exact(sealed.node, 1);
    print_message("  512-byte messages: %zu bytes with a 1-byte key, %zu "
                  "with a 255-byte one, %zu sealed\n", p1, p255, s1);
    assert_true(p255 < p1 && s1 + SB_SEAL_OVERHEAD <= p1 && s1 < p1);
    if (ipv6_loopback()) {
        start(&v6, "[::1]:0", NULL);
        size_t p6 = max_value_exact(v6.node, 1);
        print_message("  on %s: %zu bytes, on %s: %zu\n", v6.addr, p6,
                      plain.addr, p1);
        assert_int_equal(p6 + strlen(v6.addr), p1 + strlen(plain.addr));
        stop(&v6);
    }
    size_t most;
    assert_int_equal(sb_node_max_value(plain.node, 0, &most), SB_EINVAL);
    assert_int_equal(sb_node_max_value(plain.node, 256, &most), SB_EINVAL);
    assert_int_equal(sb_node_max_value(plain.node, 1, NULL), SB_EINVAL);
    assert_int_equal(sb_node_max_value(NULL, 1, &most), SB_EINVAL);
    stop(&plain);
    stop(&sealed);
}

static void test_mixed_message_sizes(void **state)
{
    (void)state;
    mixed_sizes(NULL, 0);
    static const uint8_t key[SB_KEY_SIZE] = { 7 };
    mixed_sizes(key, 1);
}

/* Log lines that hold `what`, counted. */
typedef struct log_count {
    pthread_mutex_t lock;
    const char *what;
    int lines;
} log_count;

static void count_log(void *userdata, sb_log_level level, const char *msg)
{
    log_count *l = userdata;
    (void)level;
    pthread_mutex_lock(&l->lock);
    l->lines += strstr(msg, l->what) != NULL;
    pthread_mutex_unlock(&l->lock);
}

static const char *callback_seed;

static size_t one_seed(void *userdata, const char **out, size_t max)
{
    (void)userdata;
    if (max)
        out[0] = callback_seed;
    return max ? 1 : 0;
}

/* A seed that does not resolve (yet), or gives only addresses the socket
 * cannot reach, or no node's (port 0, multicast, broadcast: the seed
 * callback's are not checked at creation), is logged once, not at every
 * round it is tried again, and never sent to. */
static void seed_logged_once(const char *seed, bool by_callback,
                             const char *what)
{
    log_count l = { .lock = PTHREAD_MUTEX_INITIALIZER, .what = what };
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.interval_ms = INTERVAL_MS;
    if (by_callback) {
        callback_seed = seed;
        cfg.seed_fn = one_seed;
    } else {
        cfg.seeds = &seed;
        cfg.nseeds = 1;
    }
    cfg.log = count_log;
    cfg.userdata = &l;
    sb_node *n;
    assert_int_equal(sb_node_new(&cfg, &n), SB_OK);
    sleep_ms(20 * INTERVAL_MS); /* alone: the seed is tried every round */
    sb_stats st;
    assert_int_equal(sb_node_stats(n, &st), SB_OK);
    assert_int_equal(sb_node_free(n), SB_OK);
    assert_int_equal(st.send_errors, 0);
    print_message("  seed %s: %d line(s) holding \"%s\"\n", seed, l.lines,
                  what);
    assert_int_equal(l.lines, 1);
}

static void test_bad_seed_logged_once(void **state)
{
    (void)state;
    seed_logged_once("no-such-host.invalid:7000", false, "cannot resolve");
    seed_logged_once("[::1]:7000", false, "no address of a family");
    seed_logged_once("127.0.0.1:0", true, "no node's");
    seed_logged_once("[::1%1]:7000", true, "an IPv6 zone");
    seed_logged_once("224.0.0.1:7000", true, "no node's");
    seed_logged_once("255.255.255.255:7000", true, "no node's");
}

static bool log_seen(void *arg)
{
    log_count *l = arg;
    pthread_mutex_lock(&l->lock);
    bool seen = l->lines > 0;
    pthread_mutex_unlock(&l->lock);
    return seen;
}

static const uint8_t mismatch_seed_key[SB_KEY_SIZE] = { 0x11 };

/* A node seeded with one of another cluster name or key: the seed, which
 * drops its datagrams, says so in one line (a minute), naming the reason
 * and the sender. */
static void mismatch_logged(const char *name, const uint8_t *key,
                            const char *what)
{
    log_count l = { .lock = PTHREAD_MUTEX_INITIALIZER, .what = what };
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.interval_ms = INTERVAL_MS;
    cfg.keys = mismatch_seed_key;
    cfg.nkeys = 1;
    cfg.log = count_log;
    cfg.userdata = &l;
    sb_node *seed;
    assert_int_equal(sb_node_new(&cfg, &seed), SB_OK);
    const char *seed_addr = sb_node_addr(seed);
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.interval_ms = INTERVAL_MS;
    cfg.cluster = name ? name : cfg.cluster;
    cfg.keys = key;
    cfg.nkeys = key != NULL;
    cfg.seeds = &seed_addr;
    cfg.nseeds = 1;
    sb_node *other;
    assert_int_equal(sb_node_new(&cfg, &other), SB_OK);
    assert_true(eventually(log_seen, &l));
    sleep_ms(20 * INTERVAL_MS); /* it goes on trying: still one line */
    assert_int_equal(sb_node_free(other), SB_OK);
    assert_int_equal(sb_node_free(seed), SB_OK);
    assert_int_equal(l.lines, 1);
}

static void test_mismatch_logged(void **state)
{
    (void)state;
    static const uint8_t other_key[SB_KEY_SIZE] = { 0x22 };
    mismatch_logged("elsewhere", mismatch_seed_key, "another cluster");
    mismatch_logged(NULL, other_key, "failed authentication");
    mismatch_logged(NULL, NULL, "plaintext packet");
}

/* A node whose seeds or joins never answer says it is alone, once (the
 * line awaited, then 20 intervals more); one whose seed answers, or with
 * nothing to ask, does not (in 30 intervals of 100 ms: 20 alone would
 * make the line, and a live seed answers within a few). */
static int alone_lines(const char *seed, const char *join, bool said)
{
    log_count l = { .lock = PTHREAD_MUTEX_INITIALIZER,
                    .what = "no seed or joined node answered" };
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.interval_ms = said ? INTERVAL_MS : 100;
    cfg.seeds = &seed;
    cfg.nseeds = seed != NULL;
    cfg.log = count_log;
    cfg.userdata = &l;
    sb_node *n;
    assert_int_equal(sb_node_new(&cfg, &n), SB_OK);
    if (join)
        assert_int_equal(sb_node_join(n, join), SB_OK);
    if (said)
        assert_true(eventually(log_seen, &l));
    sleep_ms(said ? 20 * INTERVAL_MS : 30 * 100);
    assert_int_equal(sb_node_free(n), SB_OK);
    return l.lines;
}

static void test_alone_logged(void **state)
{
    (void)state;
    assert_int_equal(alone_lines("127.0.0.1:9", NULL, true), 1);
    assert_int_equal(alone_lines(NULL, "127.0.0.1:9", true), 1);
    /* nothing to ask: the first node of a cluster is alone by design */
    assert_int_equal(alone_lines(NULL, NULL, false), 0);
    static member seed;
    start(&seed, "127.0.0.1:0", NULL);
    assert_int_equal(alone_lines(seed.addr, NULL, false), 0);
    stop(&seed);
}

/* An advertised address that is not the one datagrams leave from is
 * warned of once at creation (peers take answers only from the address
 * they wrote to); the same address, or a wildcard bind, is not. */
static int advertise_warnings(const char *bind, const char *advertise)
{
    log_count l = { .lock = PTHREAD_MUTEX_INITIALIZER,
                    .what = "take answers only from" };
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = bind;
    cfg.advertise = advertise;
    cfg.log = count_log;
    cfg.userdata = &l;
    sb_node *n;
    assert_int_equal(sb_node_new(&cfg, &n), SB_OK);
    assert_int_equal(sb_node_free(n), SB_OK);
    return l.lines;
}

static void test_advertise_elsewhere_warned(void **state)
{
    (void)state;
    assert_int_equal(advertise_warnings("127.0.0.1:27411", "127.0.0.2:27411"),
                     1);
    assert_int_equal(advertise_warnings("127.0.0.1:27412", "127.0.0.1:27413"),
                     1);
    assert_int_equal(advertise_warnings("127.0.0.1:27414", "127.0.0.1:27414"),
                     0);
    assert_int_equal(advertise_warnings("0.0.0.0:27415", "127.0.0.1:27415"),
                     0);
}

/* Threads that call into a node until a call says it was stopped. */
static void *call_until_stopped(void *arg)
{
    sb_node *n = arg;
    char key[16];
    for (unsigned i = 0;; i++) {
        snprintf(key, sizeof(key), "k%u", i % 50);
        int rc = sb_node_set(n, key, strlen(key), "v", 1);
        if (rc == SB_ESTATE)
            break;
        sb_member *m;
        size_t count;
        if (sb_node_members(n, &m, &count) == SB_OK)
            sb_free(m);
    }
    return NULL;
}

/* A join callback that takes its time, and says when it runs. */
typedef struct slow_join {
    pthread_mutex_t lock;
    int inside, entered;
} slow_join;

static void slow_join_cb(void *userdata, const sb_event *ev)
{
    slow_join *s = userdata;
    (void)ev;
    pthread_mutex_lock(&s->lock);
    s->inside++;
    s->entered++;
    pthread_mutex_unlock(&s->lock);
    sleep_ms(300);
    pthread_mutex_lock(&s->lock);
    s->inside--;
    pthread_mutex_unlock(&s->lock);
}

static bool slow_join_entered(void *arg)
{
    slow_join *s = arg;
    pthread_mutex_lock(&s->lock);
    bool e = s->entered > 0;
    pthread_mutex_unlock(&s->lock);
    return e;
}

static void *stop_node(void *arg)
{
    sb_node_stop(arg);
    return NULL;
}

/* Two stops at once: neither returns before the node's thread has ended,
 * no callback running any more, and either may then free. */
static void test_two_stops(void **state)
{
    (void)state;
    slow_join s = { .lock = PTHREAD_MUTEX_INITIALIZER };
    member a = { 0 }, b = { 0 };
    sb_config cfg;
    config_for(&cfg, &a, "127.0.0.1:0", NULL);
    cfg.on_join = slow_join_cb;
    cfg.on_leave = cfg.on_update = cfg.on_delete = NULL;
    cfg.userdata = &s;
    start_with(&a, &cfg);
    start(&b, "127.0.0.1:0", a.addr);
    assert_true(eventually(slow_join_entered, &s));
    pthread_t other;
    assert_int_equal(pthread_create(&other, NULL, stop_node, a.node), 0);
    sleep_ms(20);
    assert_int_equal(sb_node_stop(a.node), SB_OK);
    pthread_mutex_lock(&s.lock);
    int inside = s.inside;
    pthread_mutex_unlock(&s.lock);
    assert_int_equal(inside, 0);
    pthread_join(other, NULL);
    assert_int_equal(sb_node_free(a.node), SB_OK);
    stop(&b);
}

/* The stop-then-free sequence: stopped while four threads call in, every
 * call after it refused (SB_ESTATE), the threads see it and end, then the
 * node is freed. */
static void test_stop_then_free(void **state)
{
    (void)state;
    member a = { 0 };
    start(&a, "127.0.0.1:0", NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, call_until_stopped,
                                        a.node), 0);
    sleep_ms(100);
    assert_int_equal(sb_node_stop(a.node), SB_OK);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    sb_node *n = a.node;
    char *v;
    size_t len, most;
    sb_member *m;
    sb_kv *kv;
    sb_stats st;
    double phi;
    assert_int_equal(sb_node_set(n, "k", 1, "v", 1), SB_ESTATE);
    assert_int_equal(sb_node_del(n, "k0", 2), SB_ESTATE);
    assert_int_equal(sb_node_get(n, a.addr, "k0", 2, &v, &len), SB_ESTATE);
    assert_int_equal(sb_node_keys(n, a.addr, &kv, &len), SB_ESTATE);
    assert_int_equal(sb_node_members(n, &m, &len), SB_ESTATE);
    assert_int_equal(sb_node_live(n, &m, &len), SB_ESTATE);
    assert_int_equal(sb_node_stats(n, &st), SB_ESTATE);
    assert_int_equal(sb_node_phi(n, a.addr, &phi), SB_ESTATE);
    assert_int_equal(sb_node_max_value(n, 1, &most), SB_ESTATE);
    assert_int_equal(sb_node_leave(n), SB_ESTATE);
    assert_int_equal(sb_node_timeout_ms(n), -1);
    assert_int_equal(sb_node_stop(n), SB_OK); /* again */
    assert_int_equal(sb_node_get(n, "localhost:1", "k0", 2, &v, &len),
                     SB_ESTATE); /* at once: no name lookup */
    assert_int_equal(sb_node_stop(NULL), SB_EINVAL);
    assert_int_equal(sb_node_free(n), SB_OK);
    /* embedded: stopped, sb_node_process() refuses too */
    sb_config cfg;
    config_for(&cfg, &a, "127.0.0.1:0", NULL);
    cfg.embedded = true;
    assert_int_equal(sb_node_new(&cfg, &n), SB_OK);
    assert_int_equal(sb_node_process(n), SB_OK);
    assert_int_equal(sb_node_stop(n), SB_OK);
    assert_int_equal(sb_node_process(n), SB_ESTATE);
    assert_int_equal(sb_node_free(n), SB_OK);
}

/* A log callback that tries to free its node on every line. */
typedef struct log_free {
    pthread_mutex_t lock;
    sb_node *node;
    int refused, freed;
    int processed;            /* sb_node_process() not refused */
} log_free;

static void free_from_log(void *userdata, sb_log_level level,
                          const char *msg)
{
    log_free *l = userdata;
    (void)level;
    (void)msg;
    pthread_mutex_lock(&l->lock);
    sb_node *node = l->node;
    pthread_mutex_unlock(&l->lock);
    if (!node)
        return;
    int prc = sb_node_process(node);
    int rc = sb_node_free(node);
    pthread_mutex_lock(&l->lock);
    l->processed += prc != SB_ESTATE;
    l->refused += rc == SB_ESTATE;
    l->freed += rc != SB_ESTATE;
    pthread_mutex_unlock(&l->lock);
}

/* The log callback may run on the caller's thread, inside an API call
 * (sb_node_leave() logs "leaving", sb_node_free() "stopped"): freeing the
 * node from it is refused there too, as from any callback, and so is a
 * step of an embedded node's loop. */
static void log_callback_cannot_free(bool embedded)
{
    log_free l = { .lock = PTHREAD_MUTEX_INITIALIZER };
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.interval_ms = INTERVAL_MS;
    cfg.embedded = embedded;
    cfg.log = free_from_log;
    cfg.log_level = SB_LOG_DEBUG;
    cfg.userdata = &l;
    sb_node *n;
    assert_int_equal(sb_node_new(&cfg, &n), SB_OK);
    pthread_mutex_lock(&l.lock);
    l.node = n;
    pthread_mutex_unlock(&l.lock);
    assert_int_equal(sb_node_leave(n), SB_OK);
    pthread_mutex_lock(&l.lock);
    log_free seen = l;
    pthread_mutex_unlock(&l.lock);
    assert_true(seen.refused >= 1);
    assert_int_equal(seen.freed, 0);
    assert_int_equal(seen.processed, 0);
    assert_int_equal(sb_node_free(n), SB_OK); /* logs, and is refused */
    assert_true(l.refused > seen.refused);
    assert_int_equal(l.freed, 0);
    assert_int_equal(l.processed, 0);
}

static void test_log_callback_cannot_free(void **state)
{
    (void)state;
    log_callback_cannot_free(false);
    log_callback_cannot_free(true);
}

/* Two nodes whose callbacks stop each other at the same time: neither
 * waits for the other's thread (each would wait forever), both stops
 * return, and both nodes are freed. Two that free each other from their
 * callbacks are both refused (SB_ESTATE), for the same reason. */
typedef struct cross_stop {
    pthread_mutex_t lock;
    sb_node *other[2];
    int entered, returned;
    bool met[2];              /* both were inside before node i stopped */
    int rc[2];                /* what node i's stop (or free) of the
                                 other said */
    bool free;                /* free the other instead of stopping it */
} cross_stop;

static cross_stop crossing = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool cross_returned(void *arg)
{
    cross_stop *x = arg;
    pthread_mutex_lock(&x->lock);
    bool one = x->returned > 0;
    pthread_mutex_unlock(&x->lock);
    return one;
}

static void stop_the_other(void *userdata, const sb_event *ev)
{
    if (ev->key_len != 2 || memcmp(ev->key, "go", 2) != 0)
        return;
    cross_stop *x = &crossing;
    int me = (int)(intptr_t)userdata;
    pthread_mutex_lock(&x->lock);
    x->entered++;
    pthread_mutex_unlock(&x->lock);
    /* wait a while for the other callback: a node whose thread waits
     * here may not have pushed its own key yet, so the other may never
     * come (the test tries again) */
    bool met = false;
    for (int i = 0; i < 200 && !met; i++) {
        pthread_mutex_lock(&x->lock);
        met = x->entered == 2;
        pthread_mutex_unlock(&x->lock);
        if (!met)
            sleep_ms(10);
    }
    /* a free is refused: it would wait for the other's thread, which is
     * here or may come */
    int rc = x->free ? sb_node_free(x->other[me]) : sb_node_stop(x->other[me]);
    pthread_mutex_lock(&x->lock);
    x->met[me] = met;
    x->rc[me] = rc;
    x->returned++;
    pthread_mutex_unlock(&x->lock);
}

static bool cross_both_returned(void *arg)
{
    cross_stop *x = arg;
    pthread_mutex_lock(&x->lock);
    bool both = x->returned == 2;
    pthread_mutex_unlock(&x->lock);
    return both;
}

/* One try: true if both callbacks were inside when they stopped (or
 * freed: refused, both) each other. */
static bool stop_each_other_once(bool free)
{
    member m[2] = { 0 };
    sb_node *n[2];
    pthread_mutex_lock(&crossing.lock);
    crossing = (cross_stop){ .lock = crossing.lock, .free = free };
    pthread_mutex_unlock(&crossing.lock);
    for (int i = 0; i < 2; i++) {
        sb_config cfg;
        config_for(&cfg, &m[i], "127.0.0.1:0", i ? m[0].addr : NULL);
        cfg.on_update = stop_the_other;
        cfg.userdata = (void *)(intptr_t)i;
        cfg.on_join = cfg.on_leave = cfg.on_delete = NULL;
        start_with(&m[i], &cfg);
        n[i] = m[i].node;
    }
    cluster both = { m, 2, NULL, NULL, 0 };
    assert_true(eventually(all_live, &both)); /* each pushes to the other */
    pthread_mutex_lock(&crossing.lock);
    crossing.other[0] = n[1];
    crossing.other[1] = n[0];
    pthread_mutex_unlock(&crossing.lock);
    assert_int_equal(sb_node_set(n[0], "go", 2, "1", 1), SB_OK);
    assert_int_equal(sb_node_set(n[1], "go", 2, "1", 1), SB_OK);
    /* a stop returned (two stops that waited for each other never do);
     * both frees returned (refused: they would wait for each other) */
    assert_true(eventually(free ? cross_both_returned : cross_returned,
                           &crossing));
    /* from here both threads are joined: no callback runs any more (one
     * that did not meet the other may still have been on its way) */
    for (int i = 0; i < 2; i++)
        assert_int_equal(sb_node_stop(n[i]), SB_OK);
    pthread_mutex_lock(&crossing.lock);
    cross_stop seen = crossing;
    pthread_mutex_unlock(&crossing.lock);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sb_node_set(n[i], "k", 1, "v", 1), SB_ESTATE);
        assert_int_equal(sb_node_free(n[i]), SB_OK);
        pthread_mutex_destroy(&m[i].rec.lock);
    }
    bool met = true;
    for (int i = 0; i < 2; i++)
        met &= seen.met[i] && seen.rc[i] == (free ? SB_ESTATE : SB_OK);
    return met;
}

static void test_nodes_stop_each_other_from_callbacks(void **state)
{
    (void)state;
    bool met = false;
    for (int attempt = 0; attempt < 10 && !met; attempt++)
        met = stop_each_other_once(false);
    assert_true(met);
    met = false;
    for (int attempt = 0; attempt < 10 && !met; attempt++)
        met = stop_each_other_once(true);
    assert_true(met);
}

/* A stop while a callback runs: that callback completes, and none of the
 * events queued behind it runs (no more callbacks). The callback that is
 * running waits until the node is stopped (its own writes refused). */
typedef struct stop_midway {
    atomic_int calls;
    atomic_bool inside;
    sb_node *node;
} stop_midway;

static stop_midway midway;

static void stop_midway_update(void *userdata, const sb_event *ev)
{
    (void)userdata, (void)ev;
    if (atomic_fetch_add(&midway.calls, 1) + 1 != 5)
        return;
    atomic_store(&midway.inside, true);
    for (int i = 0; i < 1000 && sb_node_set(midway.node, "k", 1, "v", 1) !=
                                    SB_ESTATE; i++)
        sleep_ms(10);
}

static bool midway_inside(void *arg)
{
    (void)arg;
    return atomic_load(&midway.inside);
}

static void test_stop_drops_queued_events(void **state)
{
    (void)state;
    member m[2] = { 0 };
    start(&m[0], "127.0.0.1:0", NULL);
    sb_config cfg;
    config_for(&cfg, &m[1], "127.0.0.1:0", m[0].addr);
    cfg.on_update = stop_midway_update;
    cfg.on_join = cfg.on_leave = cfg.on_delete = NULL;
    start_with(&m[1], &cfg);
    midway.node = m[1].node;
    cluster both = { m, 2, NULL, NULL, 0 };
    assert_true(eventually(all_live, &both));
    for (int i = 0; i < 200; i++) { /* pushed in a few datagrams */
        char k[16];
        snprintf(k, sizeof(k), "key%d", i);
        assert_int_equal(sb_node_set(m[0].node, k, strlen(k), "v", 1),
                         SB_OK);
    }
    assert_true(eventually(midway_inside, NULL));
    /* returns once the thread ended: the callback is done, none other
     * ran (200 updates were queued or on their way) */
    assert_int_equal(sb_node_stop(m[1].node), SB_OK);
    assert_int_equal(atomic_load(&midway.calls), 5);
    stop(&m[1]);
    stop(&m[0]);
}

/* How many events of `type` name exactly the key bytes key[0..len). */
static size_t count_key_events(recorder *r, sb_event_type type,
                               const char *key, size_t len)
{
    size_t k = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++)
        if (r->ev[i].type == type && r->ev[i].key_len == len &&
            memcmp(r->ev[i].key, key, len) == 0)
            k++;
    pthread_mutex_unlock(&r->lock);
    return k;
}

typedef struct key_wait {
    member *m;
    sb_event_type type;
    const char *key;
    size_t len;
} key_wait;

static bool key_event_seen(void *arg)
{
    key_wait *w = arg;
    return count_key_events(&w->m->rec, w->type, w->key, w->len) > 0;
}

/* Keys are bytes: "a\0b" and "a" are two keys, set, read, reported and
 * deleted apart. */
static void test_binary_keys(void **state)
{
    (void)state;
    member a = { 0 }, b = { 0 };
    start(&a, "127.0.0.1:0", NULL);
    start(&b, "127.0.0.1:0", a.addr);
    static const char nul_key[] = { 'a', 0, 'b' };
    assert_int_equal(sb_node_set(a.node, nul_key, 3, "x", 1), SB_OK);
    assert_int_equal(sb_node_set(a.node, "a", 1, "y", 1), SB_OK);
    key_wait w = { &b, SB_EVENT_UPDATE, nul_key, 3 };
    assert_true(eventually(key_event_seen, &w));
    w.key = "a";
    w.len = 1;
    assert_true(eventually(key_event_seen, &w));
    char *v;
    size_t len;
    assert_int_equal(sb_node_get(b.node, a.addr, nul_key, 3, &v, &len),
                     SB_OK);
    assert_true(len == 1 && v[0] == 'x');
    sb_free(v);
    assert_int_equal(sb_node_get(b.node, a.addr, "a", 1, &v, &len), SB_OK);
    assert_true(len == 1 && v[0] == 'y');
    sb_free(v);
    assert_int_equal(sb_node_del(a.node, nul_key, 3), SB_OK);
    w = (key_wait){ &b, SB_EVENT_DELETE, nul_key, 3 };
    assert_true(eventually(key_event_seen, &w));
    assert_int_equal(sb_node_get(b.node, a.addr, nul_key, 3, &v, &len),
                     SB_ENOTFOUND);
    assert_int_equal(sb_node_get(b.node, a.addr, "a", 1, &v, &len), SB_OK);
    sb_free(v);
    assert_int_equal(count_key_events(&b.rec, SB_EVENT_DELETE, "a", 1), 0);
    stop(&a);
    stop(&b);
}

typedef struct pair_of_members {
    member *owner, *reader;
} pair_of_members;

/* The reader lists exactly three keys of the owner, "gone" not among
 * them. */
static bool lists_three_keys(void *arg)
{
    pair_of_members *p = arg;
    sb_kv *kv;
    size_t count;
    if (sb_node_keys(p->reader->node, p->owner->addr, &kv, &count) != SB_OK)
        return false;
    bool gone = false;
    for (size_t i = 0; i < count; i++)
        gone |= kv[i].key_len == 4 && memcmp(kv[i].key, "gone", 4) == 0;
    sb_free(kv);
    return count == 3 && !gone;
}

/* A member's keys copied out: every live key with its value, bytes
 * exact (a NUL byte inside a key too), not the deleted ones, oldest
 * write first; the member's own node and a peer agree. */
static void test_list_keys(void **state)
{
    (void)state;
    member a = { 0 }, b = { 0 };
    start(&a, "127.0.0.1:0", NULL);
    start(&b, "127.0.0.1:0", a.addr);
    static const char nul_key[] = { 'x', 0, 'y' };
    assert_int_equal(sb_node_set(a.node, "first", 5, "1", 1), SB_OK);
    assert_int_equal(sb_node_set(a.node, nul_key, 3, "", 0), SB_OK);
    assert_int_equal(sb_node_set(a.node, "gone", 4, "x", 1), SB_OK);
    assert_int_equal(sb_node_set(a.node, "last", 4, "3", 1), SB_OK);
    assert_int_equal(sb_node_del(a.node, "gone", 4), SB_OK);
    pair_of_members p = { &a, &b };
    assert_true(eventually(lists_three_keys, &p));
    sb_node *nodes[2] = { a.node, b.node };
    for (int i = 0; i < 2; i++) {
        sb_kv *kv;
        size_t count;
        assert_int_equal(sb_node_keys(nodes[i], a.addr, &kv, &count), SB_OK);
        assert_int_equal(count, 3);
        assert_true(kv[0].key_len == 5 && !memcmp(kv[0].key, "first", 5) &&
                    kv[0].value_len == 1 && !strcmp(kv[0].value, "1"));
        assert_true(kv[1].key_len == 3 && !memcmp(kv[1].key, nul_key, 3) &&
                    kv[1].value_len == 0 && kv[1].value[0] == 0);
        assert_true(kv[2].key_len == 4 && !strcmp(kv[2].key, "last") &&
                    !strcmp(kv[2].value, "3"));
        sb_free(kv);
    }
    sb_kv *kv = (sb_kv *)&a;
    size_t count = 7;
    assert_int_equal(sb_node_keys(b.node, "10.9.9.9:1", &kv, &count),
                     SB_ENOTFOUND);
    assert_true(kv == NULL && count == 0);
    assert_int_equal(sb_node_keys(b.node, NULL, &kv, &count), SB_EINVAL);
    stop(&a);
    stop(&b);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    member m = { 0 };
    start(&m, "127.0.0.1:0", NULL);
    sb_node *n = m.node;
    char long_key[300];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    static char big[2000];
    char *v;
    size_t len;
    double phi;
    assert_int_equal(sb_node_set(NULL, "k", 1, "v", 1), SB_EINVAL);
    assert_int_equal(sb_node_set(n, NULL, 1, "v", 1), SB_EINVAL);
    assert_int_equal(sb_node_set(n, "", 0, "v", 1), SB_EINVAL);
    assert_int_equal(sb_node_set(n, long_key, strlen(long_key), "v", 1),
                     SB_EINVAL);
    assert_int_equal(sb_node_set(n, long_key, 256, "v", 1), SB_EINVAL);
    assert_int_equal(sb_node_set(n, long_key, 255, "v", 1), SB_OK);
    /* a NUL first byte: the protocol's own keys (scuttlebutt.h) */
    assert_int_equal(sb_node_set(n, "\0k", 2, "v", 1), SB_EINVAL);
    assert_int_equal(sb_node_del(n, "\0k", 2), SB_EINVAL);
    assert_int_equal(sb_node_get(n, m.addr, "\0k", 2, &v, &len),
                     SB_ENOTFOUND);
    assert_int_equal(sb_node_del(n, NULL, 1), SB_EINVAL);
    assert_int_equal(sb_node_get(n, m.addr, "k", 0, &v, &len), SB_EINVAL);
    assert_int_equal(sb_node_set(n, "k", 1, NULL, 1), SB_EINVAL);
    assert_int_equal(sb_node_set(n, "k", 1, big, sizeof(big)), SB_ETOOBIG);
    /* lengths near SIZE_MAX: refused before any size sum can wrap (the
     * value is never read) */
    for (size_t d = 0; d < 64; d++)
        assert_int_equal(sb_node_set(n, "k", 1, "x", SIZE_MAX - d),
                         SB_ETOOBIG);
    assert_int_equal(sb_node_set(n, "k", 1, "x", SIZE_MAX / 2), SB_ETOOBIG);
    assert_int_equal(sb_node_set(n, "empty", 5, NULL, 0), SB_OK);
    assert_int_equal(sb_node_get(n, m.addr, "empty", 5, &v, &len), SB_OK);
    assert_int_equal(len, 0);
    assert_string_equal(v, "");
    sb_free(v);
    assert_int_equal(sb_node_del(n, "absent", 6), SB_ENOTFOUND);
    assert_int_equal(sb_node_get(n, "10.9.9.9:1", "k", 1, &v, &len),
                     SB_ENOTFOUND);
    assert_null(v);
    assert_int_equal(sb_node_get(n, m.addr, "k", 1, NULL, &len), SB_EINVAL);
    assert_int_equal(sb_node_phi(n, m.addr, &phi), SB_ENOTFOUND);
    assert_int_equal(sb_node_members(n, NULL, &len), SB_EINVAL);
    assert_int_equal(sb_node_stats(n, NULL), SB_EINVAL);
    assert_null(sb_node_addr(NULL));
    assert_int_equal(sb_node_fd(NULL), -1);
    stop(&m);
}

/* Addresses: every spelling of a numeric address finds the member;
 * impossible advertise addresses are refused. */
static void test_address_forms(void **state)
{
    (void)state;
    cluster *c = start_cluster(2, "127.0.0.1");
    assert_int_equal(sb_node_set(c->m[1].node, "k", 1, "v", 1), SB_OK);
    c->key = "k", c->value = "v", c->who = 1;
    assert_true(eventually(has_value, c));
    const char *port = strrchr(c->m[1].addr, ':') + 1;
    /* any spelling the library takes for a seed, a name included */
    char spelled[4][64];
    snprintf(spelled[0], 64, "127.0.0.1:%s", port);
    snprintf(spelled[1], 64, "127.0.0.1:0%s", port);
    snprintf(spelled[2], 64, "[::ffff:127.0.0.1]:%s", port);
    snprintf(spelled[3], 64, "localhost:%s", port);
    for (int i = 0; i < 4; i++) {
        char *v;
        size_t len;
        assert_int_equal(sb_node_get(c->m[0].node, spelled[i], "k", 1, &v,
                                     &len),
                         SB_OK);
        sb_free(v);
    }
    stop_cluster(c);

    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "[::ffff:0.0.0.0]:0"; /* a wildcard, mapped */
    refused(&cfg, SB_EADDR);
    cfg.bind = "127.0.0.1:0";
    cfg.advertise = "[::1]:7000"; /* an IPv4 socket cannot be reached so */
    refused(&cfg, SB_EADDR);
    if (ipv6_loopback()) {
        cfg.bind = "[::1]:0";
        cfg.advertise = "127.0.0.1:7000";
        refused(&cfg, SB_EADDR);
    }
}

/* Garbage sent to a node's socket is counted, and gossip goes on. */
static void test_garbage_is_counted(void **state)
{
    (void)state;
    cluster *c = start_cluster(2, "127.0.0.1");
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons((uint16_t)atoi(strrchr(c->m[0].addr, ':') + 1));
    uint8_t junk[600];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 31);
    /* in batches of ten, each counted before the next goes: a small
     * socket buffer must not lose any */
    sb_stats st;
    uint64_t dropped = 0;
    for (int batch = 0; batch < 10; batch++) {
        for (int i = batch * 10; i < batch * 10 + 10; i++)
            sendto(fd, junk, (size_t)(i * 6), 0, (struct sockaddr *)&to,
                   sizeof(to));
        uint64_t end = ms_now() + DEADLINE_MS;
        do {
            sleep_ms(5);
            assert_int_equal(sb_node_stats(c->m[0].node, &st), SB_OK);
            dropped = 0;
            for (int r = 0; r < SB_DROP_COUNT; r++)
                dropped += st.drops[r];
        } while (dropped < (uint64_t)batch * 10 + 10 && ms_now() < end);
    }
    close(fd);
    assert_true(eventually(all_live, c));
    assert_int_equal(dropped, 100);
    /* read whole, the larger ones too (any size is taken), and refused
     * for what they are: not ours, or (empty) too short */
    assert_int_equal(st.drops[SB_DROP_MAGIC], 99);
    assert_int_equal(st.drops[SB_DROP_TRUNCATED], 1);
    stop_cluster(c);
}

/* A call of sb_node_process() reads 64 datagrams at most; after one that
 * read that many, sb_node_timeout_ms() is 0, so that an edge-triggered
 * loop (epoll with EPOLLET: no new readiness for what already waits)
 * that honours the timeout comes back for the rest. */
static void test_full_batch_means_process_again(void **state)
{
    (void)state;
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.embedded = true;
    sb_node *n;
    assert_int_equal(sb_node_new(&cfg, &n), SB_OK);
    assert_int_equal(sb_node_process(n), SB_OK); /* the first round */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons((uint16_t)atoi(strrchr(sb_node_addr(n), ':') + 1));
    static const uint8_t junk[32] = "not a datagram of ours";
    for (int i = 0; i < 150; i++) /* on loopback: queued at once */
        assert_int_equal(sendto(fd, junk, sizeof(junk), 0,
                                (struct sockaddr *)&to, sizeof(to)),
                         (ssize_t)sizeof(junk));
    close(fd);
    uint64_t want[] = { 64, 128, 150 };
    for (int call = 0; call < 3; call++) {
        assert_int_equal(sb_node_process(n), SB_OK);
        sb_stats st;
        assert_int_equal(sb_node_stats(n, &st), SB_OK);
        assert_int_equal(st.drops[SB_DROP_MAGIC], want[call]);
        if (call < 2)
            assert_int_equal(sb_node_timeout_ms(n), 0);
    }
    assert_int_equal(sb_node_free(n), SB_OK);
}

/* The node's thread blocks every signal: a process-directed signal goes
 * to the application's threads. Here the application takes SIGUSR1 with
 * sigtimedwait() in the one thread of its own, which blocks it once the
 * node runs; the node's thread, had it not blocked it too, would take
 * the signal and run the handler instead. */
static atomic_int signal_handled;

static void signal_handler(int sig)
{
    (void)sig;
    signal_handled = 1;
}

static void test_thread_blocks_signals(void **state)
{
    (void)state;
    struct sigaction sa = { .sa_handler = signal_handler }, old_sa;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old_sa), 0);
    member a = { 0 };
    start(&a, "127.0.0.1:0", NULL);
    sigset_t usr1, old_mask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &usr1, &old_mask), 0);
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    struct timespec wait = { 2, 0 };
    int got = sigtimedwait(&usr1, NULL, &wait);
    stop(&a);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGUSR1, &old_sa, NULL);
    assert_int_equal(signal_handled, 0);
    assert_int_equal(got, SIGUSR1);
}

/* A node stopped from a callback of another node (its thread told to
 * end, not waited for) can be freed from a later callback once that
 * thread has returned: sb_node_free() refuses only while it still runs.
 * And asking never waits: a thread joining that node holds its join
 * lock, and may be waiting for the very thread that asks (two threads
 * stopping two nodes whose callbacks free each other hung before). */
typedef struct free_later {
    sb_node *asker;            /* embedded: its log callback asks */
    sb_node *other;            /* NULL once freed */
    int step;                  /* 0: stop it, 1: try to free it */
    int stop_rc, free_rc;
} free_later;

static void free_later_log(void *userdata, sb_log_level level,
                           const char *msg)
{
    free_later *f = userdata;
    (void)level;
    if (!f->other || !strstr(msg, "joining"))
        return;
    if (f->step == 0)
        f->stop_rc = sb_node_stop(f->other);
    else if ((f->free_rc = sb_node_free(f->other)) == SB_OK)
        f->other = NULL;
}

/* One more try: sb_node_join() logs "joining" on this thread. */
static bool free_later_freed(void *arg)
{
    free_later *f = arg;
    assert_int_equal(sb_node_join(f->asker, "127.0.0.1:9"), SB_OK);
    return f->free_rc != SB_ESTATE;
}

static void test_free_from_callback_once_ended(void **state)
{
    (void)state;
    free_later f = { .free_rc = SB_ESTATE };
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    cfg.interval_ms = INTERVAL_MS;
    sb_node *other;
    assert_int_equal(sb_node_new(&cfg, &other), SB_OK);
    cfg.embedded = true;
    cfg.log = free_later_log;
    cfg.log_level = SB_LOG_INFO;
    cfg.userdata = &f;
    assert_int_equal(sb_node_new(&cfg, &f.asker), SB_OK);
    f.other = other;
    /* sb_node_join() logs "joining" on this thread: a log callback */
    assert_int_equal(sb_node_join(f.asker, "127.0.0.1:9"), SB_OK);
    assert_int_equal(f.stop_rc, SB_OK);
    f.step = 1;
    /* the thread ends once it sees the stop: as long as that takes */
    assert_true(eventually(free_later_freed, &f));
    assert_int_equal(f.free_rc, SB_OK);
    assert_null(f.other);
    assert_int_equal(sb_node_free(f.asker), SB_OK);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_three_nodes),
    cmocka_unit_test(test_32_nodes_converge),
    cmocka_unit_test(test_restart_on_same_port),
    cmocka_unit_test(test_graceful_leave),
    cmocka_unit_test(test_join_at_run_time),
    cmocka_unit_test(test_callbacks_find_their_node),
    cmocka_unit_test(test_ipv6_loopback),
    cmocka_unit_test(test_dual_stack),
    cmocka_unit_test(test_embedded_poll_loop),
    cmocka_unit_test(test_full_batch_means_process_again),
    cmocka_unit_test(test_callbacks_may_call_the_api),
    cmocka_unit_test(test_four_threads_use_the_api),
    cmocka_unit_test(test_create_free_1000_times),
    cmocka_unit_test(test_bad_configuration),
    cmocka_unit_test(test_advertise_elsewhere_warned),
    cmocka_unit_test(test_keys),
    cmocka_unit_test(test_bad_arguments),
    cmocka_unit_test(test_binary_keys),
    cmocka_unit_test(test_log_callback_cannot_free),
    cmocka_unit_test(test_nodes_stop_each_other_from_callbacks),
    cmocka_unit_test(test_stop_drops_queued_events),
    cmocka_unit_test(test_mixed_message_sizes),
    cmocka_unit_test(test_max_value),
    cmocka_unit_test(test_bad_seed_logged_once),
    cmocka_unit_test(test_mismatch_logged),
    cmocka_unit_test(test_alone_logged),
    cmocka_unit_test(test_list_keys),
    cmocka_unit_test(test_stop_then_free),
    cmocka_unit_test(test_two_stops),
    cmocka_unit_test(test_free_from_callback_once_ended),
    cmocka_unit_test(test_address_forms),
    cmocka_unit_test(test_garbage_is_counted),
    cmocka_unit_test(test_thread_blocks_signals),
};

int main(int argc, char **argv)
{
    return RUN_TESTS(tests, argc, argv);
}
