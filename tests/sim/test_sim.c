/*
 * Simulated scenarios: whole clusters of engines over the simulator's
 * virtual network and clock. Every assertion is about behaviour (who knows
 * what, who reported what); simulated time only bounds how long we wait.
 *
 * Each test takes its seed from SB_SEED (default 1) and prints it when a
 * check fails, so `SB_SEED=... ./test_sim` replays the failure exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "sim.h"

#define MAXN 1024


/* What the nodes reported: per observer and subject, counts of events. */
typedef struct log {
    uint32_t n;
    uint16_t *joins;     /* [observer * n + subject] */
    uint16_t *leaves;
    uint8_t *left;       /* the last leave was a graceful one */
    uint32_t updates, deletes;
    bool count_false;
    int watched;         /* a node whose leave is expected, or -1 */
    uint32_t false_downs;
    struct capture *capture; /* if set, every packet sent is copied */
} log_t;

/* Packets as the network saw them, for replays. */
typedef struct captured {
    uint32_t from, to;
    size_t len;
    uint8_t *data;
} captured;

typedef struct capture {
    captured *p;
    size_t n, cap;
} capture;

static void on_packet(void *ud, uint32_t from, uint32_t to,
                      const uint8_t *buf, size_t len)
{
    capture *c = ((log_t *)ud)->capture;
    if (!c)
        return;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 4096;
        c->p = realloc(c->p, c->cap * sizeof(*c->p));
        assert_non_null(c->p);
    }
    captured *k = &c->p[c->n++];
    *k = (captured){ from, to, len, malloc(len) };
    assert_non_null(k->data);
    memcpy(k->data, buf, len);
}

static long index_of(const char *addr)
{
    unsigned a, b, c, port;
    if (sscanf(addr, "10.%u.%u.%u:%u", &a, &b, &c, &port) != 4)
        return -1;
    return (long)(a << 16 | b << 8 | c) - 1;
}

static void on_event(void *ud, uint32_t node, const sb_event *ev,
                     uint64_t now)
{
    (void)now;
    log_t *l = ud;
    long subj = index_of(ev->addr);
    if (subj < 0 || (uint32_t)subj >= l->n || node >= l->n)
        return;
    size_t k = (size_t)node * l->n + (size_t)subj;
    switch (ev->type) {
    case SB_EVENT_JOIN:
        l->joins[k]++;
        break;
    case SB_EVENT_LEAVE:
        l->leaves[k]++;
        l->left[k] = ev->status == SB_STATUS_LEFT;
        if (l->count_false && subj != l->watched)
            l->false_downs++;
        break;
    case SB_EVENT_UPDATE:
        l->updates++;
        break;
    case SB_EVENT_DELETE:
        l->deletes++;
        break;
    }
}

typedef struct world {
    sb_sim *sim;
    log_t log;
    uint32_t n;
} world;

/* A world whose nodes hold `nkeys` keys (none: plaintext) and speak
 * `wire`. */
static world *world_new_wire(uint32_t n, double loss, size_t max_message,
                             const uint8_t *keys, uint32_t nkeys,
                             sb_wire wire)
{
    world *w = calloc(1, sizeof(*w));
    w->n = n;
    w->log.n = MAXN;
    w->log.joins = calloc((size_t)MAXN * MAXN, sizeof(uint16_t));
    w->log.leaves = calloc((size_t)MAXN * MAXN, sizeof(uint16_t));
    w->log.left = calloc((size_t)MAXN * MAXN, 1);
    w->log.watched = -1;
    sb_sim_config cfg;
    sb_sim_config_init(&cfg);
    cfg.nodes = n;
    cfg.seed = seed_;
    cfg.loss = loss;
    cfg.latency_ns = 2 * MS;
    cfg.jitter_ns = 1 * MS;
    cfg.engine.interval_ns = 100 * MS;
    cfg.engine.max_message_size = max_message;
    cfg.engine.tombstone_grace_ns = 20 * SEC;
    cfg.engine.dead_grace_ns = 60 * SEC;
    cfg.engine.keys = keys;
    cfg.engine.nkeys = nkeys;
    cfg.engine.wire = wire;
    cfg.on_event = on_event;
    cfg.on_packet = on_packet;
    cfg.userdata = &w->log;
    assert_int_equal(sb_sim_new(&cfg, &w->sim), SB_OK);
    return w;
}

static world *world_new_keyed(uint32_t n, double loss, size_t max_message,
                              const uint8_t *keys, uint32_t nkeys)
{
    return world_new_wire(n, loss, max_message, keys, nkeys,
                          SB_WIRE_SCUTTLEBUTT);
}

static world *world_new(uint32_t n, double loss, size_t max_message)
{
    return world_new_keyed(n, loss, max_message, NULL, 0);
}

static void world_free(world *w)
{
    sb_sim_free(w->sim);
    free(w->log.joins);
    free(w->log.leaves);
    free(w->log.left);
    free(w);
}

/* Runs until cond holds (checked every 100 ms), at most `limit` of
 * simulated time, then checks it. */
#define eventually(w, limit, cond)                                          \
    do {                                                                    \
        uint64_t end_ = sb_sim_now((w)->sim) + (limit);                     \
        while (!(cond) && sb_sim_now((w)->sim) < end_)                      \
            sb_sim_run_for((w)->sim, 100 * MS);                             \
        check(cond);                                                        \
    } while (0)

static bool all_have(world *w, uint32_t j, const char *key, const char *val)
{
    for (uint32_t i = 0; i < sb_sim_count(w->sim); i++)
        if (sb_sim_running(w->sim, i) && i != j &&
            !sb_sim_has(w->sim, i, j, key, val))
            return false;
    return true;
}

/* Every running node other than j sees j with the given status. */
static bool all_see(world *w, uint32_t j, sb_status status)
{
    for (uint32_t i = 0; i < sb_sim_count(w->sim); i++)
        if (sb_sim_running(w->sim, i) && i != j &&
            sb_sim_status(w->sim, i, j) != (int)status)
            return false;
    return true;
}

static world *converged_world(uint32_t n, double loss)
{
    world *w = world_new(n, loss, 512);
    eventually(w, 60 * SEC, sb_sim_converged(w->sim));
    /* let the detectors learn the rhythm before judging them */
    sb_sim_run_for(w->sim, 3 * SEC);
    return w;
}

/* ---- the scenarios ---------------------------------------------------- */

static void test_converge(void **state)
{
    (void)state;
    world *w = converged_world(64, 0);
    for (uint32_t i = 0; i < 64; i++)
        for (uint32_t j = 0; j < 64; j++)
            if (i != j)
                check(w->log.joins[i * MAXN + j] == 1);
    world_free(w);
}

static void test_update_reaches_all(void **state)
{
    (void)state;
    world *w = converged_world(64, 0);
    check(sb_sim_set(w->sim, 7, "role", "primary") == SB_OK);
    eventually(w, 10 * SEC, all_have(w, 7, "role", "primary"));
    /* a second value replaces the first everywhere */
    check(sb_sim_set(w->sim, 7, "role", "replica") == SB_OK);
    eventually(w, 10 * SEC, all_have(w, 7, "role", "replica"));
    eventually(w, 10 * SEC, sb_sim_converged(w->sim));
    world_free(w);
}

static void test_new_node_discovered(void **state)
{
    (void)state;
    world *w = converged_world(64, 0);
    int j = sb_sim_add_node(w->sim);
    check(j == 64);
    check(sb_sim_set(w->sim, (uint32_t)j, "hello", "world") == SB_OK);
    eventually(w, 20 * SEC, all_see(w, (uint32_t)j, SB_STATUS_LIVE));
    eventually(w, 20 * SEC, all_have(w, (uint32_t)j, "hello", "world"));
    eventually(w, 20 * SEC, sb_sim_converged(w->sim));
    world_free(w);
}

static void test_crash_detected_by_all(void **state)
{
    (void)state;
    world *w = converged_world(64, 0);
    w->log.watched = 11;
    w->log.count_false = true;
    sb_sim_crash(w->sim, 11);
    eventually(w, 30 * SEC, all_see(w, 11, SB_STATUS_DOWN));
    for (uint32_t i = 0; i < 64; i++)
        if (i != 11)
            check(w->log.leaves[i * MAXN + 11] == 1 &&
                  !w->log.left[i * MAXN + 11]);
    check(w->log.false_downs == 0);
    world_free(w);
}

static void no_false_downs(double loss)
{
    world *w = converged_world(64, loss);
    w->log.count_false = true;
    sb_sim_run_for(w->sim, 600 * SEC);
    check(w->log.false_downs == 0);
    check(sb_sim_converged(w->sim));
    world_free(w);
}

static void test_no_false_down_no_loss(void **state)
{
    (void)state;
    no_false_downs(0);
}

static void test_no_false_down_10_percent_loss(void **state)
{
    (void)state;
    no_false_downs(0.10);
}

static void test_restart_replaces_state(void **state)
{
    (void)state;
    world *w = converged_world(64, 0);
    check(sb_sim_set(w->sim, 5, "old", "1") == SB_OK);
    eventually(w, 10 * SEC, all_have(w, 5, "old", "1"));
    sb_sim_crash(w->sim, 5);
    eventually(w, 30 * SEC, all_see(w, 5, SB_STATUS_DOWN));
    check(sb_sim_restart(w->sim, 5) == SB_OK);
    check(sb_sim_set(w->sim, 5, "new", "2") == SB_OK);
    eventually(w, 20 * SEC, all_have(w, 5, "new", "2"));
    eventually(w, 20 * SEC, all_have(w, 5, "old", NULL));
    eventually(w, 20 * SEC, all_see(w, 5, SB_STATUS_LIVE));
    eventually(w, 20 * SEC, sb_sim_converged(w->sim));
    world_free(w);
}

static void test_graceful_leave(void **state)
{
    (void)state;
    world *w = converged_world(64, 0);
    check(sb_sim_leave(w->sim, 9) == SB_OK);
    check(sb_sim_set(w->sim, 9, "x", "y") == SB_ELEFT);
    /* a few rounds, far less than the detector would need */
    eventually(w, 1 * SEC, all_see(w, 9, SB_STATUS_LEFT));
    sb_sim_crash(w->sim, 9);
    for (uint32_t i = 0; i < 64; i++)
        if (i != 9)
            check(w->log.leaves[i * MAXN + 9] == 1 &&
                  w->log.left[i * MAXN + 9]);
    world_free(w);
}

static void test_partition_heals(void **state)
{
    (void)state;
    world *w = converged_world(64, 0);
    uint32_t group[64];
    for (uint32_t i = 0; i < 64; i++)
        group[i] = i % 2;
    sb_sim_partition(w->sim, group);
    /* both sides keep working: keys set on each side */
    check(sb_sim_set(w->sim, 0, "side", "even") == SB_OK);
    check(sb_sim_set(w->sim, 1, "side", "odd") == SB_OK);
    sb_sim_run_for(w->sim, 30 * SEC);
    for (uint32_t i = 0; i < 64; i++)
        for (uint32_t j = 0; j < 64; j++)
            if (group[i] != group[j])
                check(sb_sim_status(w->sim, i, j) == SB_STATUS_DOWN);
            else if (i != j)
                check(sb_sim_status(w->sim, i, j) == SB_STATUS_LIVE);
    sb_sim_heal(w->sim);
    eventually(w, 60 * SEC, sb_sim_converged(w->sim));
    check(all_have(w, 0, "side", "even"));
    check(all_have(w, 1, "side", "odd"));
    world_free(w);
}

/* Tombstones of node j still held by any running node. */
static uint32_t tombstones_of(world *w, uint32_t j)
{
    uint32_t t = 0;
    for (uint32_t i = 0; i < sb_sim_count(w->sim); i++) {
        sb_member info;
        sb_engine *e = sb_sim_engine(w->sim, i);
        if (e && sb_engine_find(e, sb_sim_addr(w->sim, j), &info) == SB_OK)
            t += info.tombstones;
    }
    return t;
}

static void test_delete_and_collect(void **state)
{
    (void)state;
    world *w = converged_world(64, 0);
    check(sb_sim_set(w->sim, 3, "gone", "soon") == SB_OK);
    eventually(w, 10 * SEC, all_have(w, 3, "gone", "soon"));
    check(sb_sim_del(w->sim, 3, "gone") == SB_OK);
    check(sb_sim_del(w->sim, 3, "gone") == SB_ENOTFOUND);
    eventually(w, 10 * SEC, all_have(w, 3, "gone", NULL));
    check(tombstones_of(w, 3) > 0);
    /* the grace in these worlds is 20 s */
    eventually(w, 40 * SEC, tombstones_of(w, 3) == 0);
    check(all_have(w, 3, "gone", NULL));
    eventually(w, 10 * SEC, sb_sim_converged(w->sim));
    world_free(w);
}

/* A node that was away while a tombstone was collected must not bring the
 * deleted key back, and must lose it itself. */
static void test_deleted_key_stays_deleted(void **state)
{
    (void)state;
    world *w = converged_world(16, 0);
    check(sb_sim_set(w->sim, 2, "k", "v") == SB_OK);
    eventually(w, 10 * SEC, all_have(w, 2, "k", "v"));
    sb_sim_pause(w->sim, 15);
    check(sb_sim_del(w->sim, 2, "k") == SB_OK);
    check(sb_sim_set(w->sim, 2, "k2", "v2") == SB_OK);
    sb_sim_run_for(w->sim, 30 * SEC); /* past the tombstone grace */
    check(tombstones_of(w, 2) == 0);
    sb_sim_resume(w->sim, 15);
    eventually(w, 30 * SEC, sb_sim_has(w->sim, 15, 2, "k", NULL) &&
                                     sb_sim_has(w->sim, 15, 2, "k2", "v2"));
    eventually(w, 30 * SEC, sb_sim_converged(w->sim));
    check(all_have(w, 2, "k", NULL));
    world_free(w);
}

static void test_thousand_nodes_converge(void **state)
{
    (void)state;
    world *w = world_new(1000, 0, 1400);
    eventually(w, 120 * SEC, sb_sim_converged(w->sim));
    check(sb_sim_set(w->sim, 500, "k", "v") == SB_OK);
    eventually(w, 30 * SEC, all_have(w, 500, "k", "v"));
    world_free(w);
}

static void test_same_seed_same_run(void **state)
{
    (void)state;
    uint64_t bytes[2];
    for (int r = 0; r < 2; r++) {
        world *w = world_new(32, 0.05, 512);
        sb_sim_run_for(w->sim, 5 * SEC);
        sb_sim_set(w->sim, 1, "a", "b");
        sb_sim_crash(w->sim, 2);
        sb_sim_run_for(w->sim, 10 * SEC);
        bytes[r] = sb_sim_bytes_sent(w->sim);
        world_free(w);
    }
    check(bytes[0] == bytes[1]);
}

/* ---- eager push ------------------------------------------------------- */

typedef struct spread {
    const char *addr;    /* whose key we watch */
    uint32_t have, need;
    uint64_t all_at;
    uint8_t seen[MAXN];
} spread;

static void on_spread(void *ud, uint32_t node, const sb_event *ev,
                      uint64_t now)
{
    spread *sp = ud;
    if (ev->type != SB_EVENT_UPDATE || strcmp(ev->addr, sp->addr) != 0 ||
        ev->key_len != 3 || memcmp(ev->key, "new", 3) != 0 ||
        sp->seen[node])
        return;
    sp->seen[node] = 1;
    if (++sp->have == sp->need)
        sp->all_at = now;
}

/* Nanoseconds until a key set on one node reaches all 64 (5 ms a hop,
 * 100 ms interval), or UINT64_MAX. */
static uint64_t time_to_all(uint64_t seed, uint32_t fanout)
{
    spread sp = { 0 };
    sb_sim_config cfg;
    sb_sim_config_init(&cfg);
    cfg.nodes = 64;
    cfg.seed = seed;
    cfg.latency_ns = 5 * MS;
    cfg.engine.interval_ns = 100 * MS;
    cfg.engine.push_fanout = fanout;
    cfg.on_event = on_spread;
    cfg.userdata = &sp;
    sb_sim *s;
    assert_int_equal(sb_sim_new(&cfg, &s), SB_OK);
    while (!sb_sim_converged(s) && sb_sim_now(s) < 30 * SEC)
        sb_sim_run_for(s, 100 * MS);
    sb_sim_run_for(s, 2 * SEC);
    uint32_t setter = (uint32_t)(seed % 64);
    sp.addr = sb_sim_addr(s, setter);
    sp.need = 63;
    uint64_t t0 = sb_sim_now(s);
    check(sb_sim_set(s, setter, "new", "value") == SB_OK);
    while (sp.have < sp.need && sb_sim_now(s) - t0 < 10 * SEC)
        sb_sim_run_for(s, 1 * MS);
    sb_sim_free(s);
    return sp.have == sp.need ? sp.all_at - t0 : UINT64_MAX;
}

/* Pushed (default fanout 3) down its trees, an update reaches every node
 * within one gossip interval (in the trees' depth: views agree in a
 * converged cluster); by anti-entropy alone it never does. One trial in
 * twenty may miss, for a view that disagrees. */
static void test_push_beats_the_round(void **state)
{
    (void)state;
    int pushed = 0, pulled = 0;
    for (uint64_t t = 0; t < 20; t++) {
        pushed += time_to_all(seed_ * 100 + t, 3) < 100 * MS;
        pulled += time_to_all(seed_ * 100 + t, 0) < 100 * MS;
    }
    print_message("within one interval: %d/20 pushed, %d/20 without\n",
                  pushed, pulled);
    check(pushed >= 19);
    check(pulled == 0);
}

/* Under 10% loss, pushed updates still reach everyone, and no node ever
 * holds a node's keys with a version gap. */
static void test_push_under_loss_leaves_no_gap(void **state)
{
    (void)state;
    world *w = converged_world(64, 0.10);
    const uint32_t src = 4;
    char key[16], val[16];
    for (int k = 0; k < 100; k++) {
        snprintf(key, sizeof(key), "k%02d", k);
        snprintf(val, sizeof(val), "v%02d", k);
        check(sb_sim_set(w->sim, src, key, val) == SB_OK);
        for (int ms = 0; ms < 10; ms++) {
            sb_sim_run_for(w->sim, 1 * MS);
            /* key k%02d has version k + 1: a holder of version m must
             * hold every key below it */
            for (uint32_t i = 0; i < 64; i++) {
                sb_member info;
                sb_engine *e = sb_sim_engine(w->sim, i);
                if (i == src ||
                    sb_engine_find(e, sb_sim_addr(w->sim, src), &info))
                    continue;
                check(info.keys == info.max_version);
            }
        }
    }
    eventually(w, 10 * SEC, all_have(w, src, "k99", "v99"));
    for (int k = 0; k < 100; k++) {
        snprintf(key, sizeof(key), "k%02d", k);
        snprintf(val, sizeof(val), "v%02d", k);
        check(all_have(w, src, key, val));
    }
    world_free(w);
}

/* A burst of 1000 updates in one second stays inside every node's push
 * budget (a token bucket: at most one second's worth at once, then the
 * rate), and every node ends with the final values. */
static void test_push_burst_stays_in_budget(void **state)
{
    (void)state;
    world *w = converged_world(64, 0);
    uint64_t before[64];
    for (uint32_t i = 0; i < 64; i++) {
        sb_stats st;
        sb_engine_stats(sb_sim_engine(w->sim, i), &st);
        before[i] = st.pushes;
    }
    char key[16], val[16];
    for (int u = 0; u < 1000; u++) {
        snprintf(key, sizeof(key), "b%02d", u % 50);
        snprintf(val, sizeof(val), "v%04d", u);
        check(sb_sim_set(w->sim, 0, key, val) == SB_OK);
        sb_sim_run_for(w->sim, 1 * MS);
    }
    uint32_t budget = 100; /* the default push_packets_per_s */
    uint64_t most = 0;
    for (uint32_t i = 0; i < 64; i++) {
        sb_stats st;
        sb_engine_stats(sb_sim_engine(w->sim, i), &st);
        uint64_t sent = st.pushes - before[i];
        check(sent <= 2 * budget); /* a full bucket, then one second */
        if (sent > most)
            most = sent;
    }
    sb_stats st;
    sb_engine_stats(sb_sim_engine(w->sim, 0), &st);
    check(st.pushes_over_budget > 0); /* the budget did bite */
    for (int k = 950; k < 1000; k++) {
        snprintf(key, sizeof(key), "b%02d", k % 50);
        snprintf(val, sizeof(val), "v%04d", k);
        eventually(w, 10 * SEC, all_have(w, 0, key, val));
    }
    world_free(w);
}

/* With an argument, runs only the tests whose names match it (a cmocka
 * filter pattern); ctest runs each scenario as its own test this way. */
/* A node that can send but not receive (every link towards it blocked)
 * hears no one, so its heartbeat stands still: every other node reports
 * it down, though its SYNs keep arriving. Unblocked, it is live again
 * everywhere. */
static void test_deaf_node_reported_down(void **state)
{
    (void)state;
    world *w = converged_world(16, 0);
    for (uint32_t j = 0; j < 16; j++)
        if (j != 5)
            sb_sim_block(w->sim, j, 5, true);
    eventually(w, 30 * SEC, all_see(w, 5, SB_STATUS_DOWN));
    for (uint32_t j = 0; j < 16; j++)
        sb_sim_block(w->sim, j, 5, false);
    eventually(w, 30 * SEC, all_see(w, 5, SB_STATUS_LIVE));
    /* and the others never doubted each other */
    for (uint32_t j = 0; j < 16; j++)
        if (j != 5)
            check(all_see(w, j, SB_STATUS_LIVE));
    world_free(w);
}

/* ---- security --------------------------------------------------------- */

static const uint8_t key_old[SB_KEY_SIZE] = { 0x01, 0x02, 0x03 };
static const uint8_t key_new[SB_KEY_SIZE] = { 0x0a, 0x0b, 0x0c };

static uint64_t drops_total(world *w, sb_drop_reason r)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < sb_sim_count(w->sim); i++) {
        sb_stats st;
        sb_engine_stats(sb_sim_engine(w->sim, i), &st);
        total += st.drops[r];
    }
    return total;
}

/* Every node sees every other live: no partition, not even a moment's. */
static bool all_live(world *w)
{
    for (uint32_t j = 0; j < w->n; j++)
        if (!all_see(w, j, SB_STATUS_LIVE))
            return false;
    return true;
}

/*
 * A running, sealed 16-node cluster (2% loss) rotates its key the way the
 * docs say: install the new key everywhere, then make it the primary
 * everywhere, then remove the old one everywhere, node by node, 300 ms
 * apart. Every node sets a value after each of its steps; every value
 * reaches every node. At no moment does a node see another one not live,
 * and no packet fails to open.
 */
static void test_key_rotation(void **state)
{
    (void)state;
    world *w = world_new_keyed(16, 0.02, 512, key_old, 1);
    eventually(w, 30 * SEC, sb_sim_converged(w->sim));
    sb_sim_run_for(w->sim, 3 * SEC);
    w->log.count_false = true;
    sb_rng rng;
    sb_rng_seed(&rng, seed_);
    int (*const steps[3])(sb_engine *, const uint8_t *) = {
        sb_engine_key_install, sb_engine_key_use, sb_engine_key_remove
    };
    const uint8_t *const step_key[3] = { key_new, key_new, key_old };
    for (int step = 0; step < 3; step++) {
        uint32_t order[16];
        for (uint32_t i = 0; i < 16; i++)
            order[i] = i;
        for (uint32_t i = 15; i > 0; i--) {
            uint32_t j = (uint32_t)sb_rng_below(&rng, i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (uint32_t k = 0; k < 16; k++) {
            uint32_t i = order[k];
            check(steps[step](sb_sim_engine(w->sim, i), step_key[step]) ==
                  SB_OK);
            char value[32];
            snprintf(value, sizeof(value), "step%d", step);
            check(sb_sim_set(w->sim, i, "rotation", value) == SB_OK);
            for (int t = 0; t < 3; t++) {
                sb_sim_run_for(w->sim, 100 * MS);
                check(all_live(w));
            }
        }
        for (uint32_t i = 0; i < 16; i++) {
            char value[32];
            snprintf(value, sizeof(value), "step%d", step);
            eventually(w, 10 * SEC, all_have(w, i, "rotation", value));
        }
        check(all_live(w));
    }
    check(drops_total(w, SB_DROP_AUTH) == 0);
    check(w->log.false_downs == 0);
    /* the old key is gone everywhere */
    for (uint32_t i = 0; i < 16; i++)
        check(sb_engine_key_use(sb_sim_engine(w->sim, i), key_old) ==
              SB_ENOTFOUND);
    world_free(w);
}

/* What observer i believes of subject j: generation, max version and the
 * values of keys k0..k4, as text. */
static void view(world *w, uint32_t i, uint32_t j, char *out, size_t cap)
{
    sb_engine *e = sb_sim_engine(w->sim, i);
    sb_member m;
    size_t len = 0;
    out[0] = 0;
    if (sb_engine_find(e, sb_sim_addr(w->sim, j), &m) != SB_OK)
        return;
    len += (size_t)snprintf(out + len, cap - len, "gen %llu max %llu",
                            (unsigned long long)m.generation,
                            (unsigned long long)m.max_version);
    for (int k = 0; k < 5; k++) {
        char key[4];
        snprintf(key, sizeof(key), "k%d", k);
        const uint8_t *v;
        size_t vlen;
        if (sb_engine_get(e, sb_sim_addr(w->sim, j), (const uint8_t *)key, 2,
                          &v, &vlen) == SB_OK)
            len += (size_t)snprintf(out + len, cap - len, " %s=%.*s", key,
                                    (int)vlen, (const char *)v);
    }
}

/*
 * Replay: a minute of a sealed 16-node cluster's traffic is captured
 * (keys set, deleted, and a node restarted meanwhile); later, every
 * captured packet is replayed, in random order, from its sender to its
 * receiver. No node's view of any node goes back (generation, versions,
 * values), no node is reported down or rejoined, and the cluster still
 * takes new values.
 */
static void replay(const uint8_t *key)
{
    world *w = world_new_keyed(16, 0, 512, key, key ? 1 : 0);
    eventually(w, 30 * SEC, sb_sim_converged(w->sim));
    sb_sim_run_for(w->sim, 2 * SEC);
    capture cap = { 0 };
    w->log.capture = &cap;
    sb_rng rng;
    sb_rng_seed(&rng, seed_);
    for (int t = 0; t < 120; t++) { /* 60 s, a change every 500 ms */
        uint32_t i = (uint32_t)sb_rng_below(&rng, 16);
        char key_[4], value[32];
        snprintf(key_, sizeof(key_), "k%d", (int)sb_rng_below(&rng, 5));
        snprintf(value, sizeof(value), "v%d", t);
        if (t % 20 == 19)
            sb_sim_del(w->sim, i, key_);
        else
            sb_sim_set(w->sim, i, key_, value);
        if (t == 60) {
            sb_sim_crash(w->sim, 5);
            sb_sim_run_for(w->sim, 1 * SEC);
            check(sb_sim_restart(w->sim, 5) == SB_OK);
            sb_sim_set(w->sim, 5, "k0", "reborn");
        }
        sb_sim_run_for(w->sim, 500 * MS);
    }
    w->log.capture = NULL;
    eventually(w, 30 * SEC, sb_sim_converged(w->sim));
    sb_sim_run_for(w->sim, 5 * SEC);

    static char before[16][16][256], after[256];
    for (uint32_t i = 0; i < 16; i++)
        for (uint32_t j = 0; j < 16; j++)
            view(w, i, j, before[i][j], sizeof(before[i][j]));
    uint32_t joins = 0, leaves = 0;
    for (uint32_t i = 0; i < 16; i++)
        for (uint32_t j = 0; j < 16; j++) {
            joins += w->log.joins[i * MAXN + j];
            leaves += w->log.leaves[i * MAXN + j];
        }
    /* shuffle, then replay 100 packets every 10 ms */
    for (size_t k = cap.n; k > 1; k--) {
        size_t j = (size_t)sb_rng_below(&rng, k);
        captured t = cap.p[k - 1];
        cap.p[k - 1] = cap.p[j];
        cap.p[j] = t;
    }
    uint64_t ok = 0;
    for (size_t k = 0; k < cap.n; k++) {
        captured *c = &cap.p[k];
        ok += sb_engine_recv(sb_sim_engine(w->sim, c->to),
                             sb_sim_addr(w->sim, c->from), c->data, c->len,
                             sb_sim_now(w->sim)) == SB_OK;
        if (k % 100 == 99)
            sb_sim_run_for(w->sim, 10 * MS);
    }
    sb_sim_run_for(w->sim, 5 * SEC);
    for (uint32_t i = 0; i < 16; i++)
        for (uint32_t j = 0; j < 16; j++) {
            view(w, i, j, after, sizeof(after));
            if (strcmp(before[i][j], after) != 0)
                fail_msg("node %u's view of node %u went from '%s' to '%s'",
                         i, j, before[i][j], after);
        }
    uint32_t joins2 = 0, leaves2 = 0;
    for (uint32_t i = 0; i < 16; i++)
        for (uint32_t j = 0; j < 16; j++) {
            joins2 += w->log.joins[i * MAXN + j];
            leaves2 += w->log.leaves[i * MAXN + j];
        }
    check(joins2 == joins && leaves2 == leaves);
    printf("replay (%s): %zu packets of 60 s replayed, %llu taken, no view "
           "went back\n", key ? "sealed" : "plaintext", cap.n,
           (unsigned long long)ok);
    check(ok > cap.n / 2); /* they were taken, not dropped */
    check(sb_sim_set(w->sim, 3, "k1", "after") == SB_OK);
    eventually(w, 10 * SEC, all_have(w, 3, "k1", "after"));
    for (size_t k = 0; k < cap.n; k++)
        free(cap.p[k].data);
    free(cap.p);
    world_free(w);
}

static void test_replay_rolls_nothing_back(void **state)
{
    (void)state;
    replay(key_old);
    replay(NULL);
}

/*
 * A cluster that speaks the reference wire format (docs/compat.md): it
 * forms, a value spreads, a crash is reported by all and nothing else
 * is, and a node restarted on its address gets its new value of an old
 * key to everyone, although peers hold the old value at a higher
 * version than the new incarnation starts from.
 */
static void test_reference_cluster(void **state)
{
    (void)state;
    world *w = world_new_wire(16, 0, 512, NULL, 0, SB_WIRE_REFERENCE);
    eventually(w, 60 * SEC, sb_sim_converged(w->sim));
    sb_sim_run_for(w->sim, 3 * SEC);
    for (uint32_t i = 0; i < 16; i++)
        for (uint32_t j = 0; j < 16; j++)
            if (i != j)
                check(w->log.joins[i * MAXN + j] == 1);
    w->log.watched = 5;
    w->log.count_false = true; /* from here to the crash's conviction */
    for (int v = 1; v <= 5; v++) {
        char val[4];
        snprintf(val, sizeof(val), "%d", v);
        check(sb_sim_set(w->sim, 5, "role", val) == SB_OK);
    }
    eventually(w, 20 * SEC, all_have(w, 5, "role", "5"));
    check(sb_sim_leave(w->sim, 5) == SB_ESTATE);
    check(sb_sim_del(w->sim, 5, "role") == SB_ESTATE);

    sb_sim_crash(w->sim, 5);
    eventually(w, 60 * SEC, all_see(w, 5, SB_STATUS_DOWN));
    check(w->log.false_downs == 0);
    w->log.count_false = false;

    /* the new incarnation starts again at version 1 */
    check(sb_sim_restart(w->sim, 5) == SB_OK);
    check(sb_sim_set(w->sim, 5, "role", "reborn") == SB_OK);
    eventually(w, 30 * SEC, all_see(w, 5, SB_STATUS_LIVE));
    eventually(w, 30 * SEC, all_have(w, 5, "role", "reborn"));
    eventually(w, 30 * SEC, sb_sim_converged(w->sim));
    world_free(w);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    read_seed();
    printf("test_sim: seed %llu (SB_SEED=%llu replays)\n",
           (unsigned long long)seed_, (unsigned long long)seed_);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_converge),
        cmocka_unit_test(test_update_reaches_all),
        cmocka_unit_test(test_new_node_discovered),
        cmocka_unit_test(test_crash_detected_by_all),
        cmocka_unit_test(test_no_false_down_no_loss),
        cmocka_unit_test(test_no_false_down_10_percent_loss),
        cmocka_unit_test(test_restart_replaces_state),
        cmocka_unit_test(test_graceful_leave),
        cmocka_unit_test(test_partition_heals),
        cmocka_unit_test(test_delete_and_collect),
        cmocka_unit_test(test_deleted_key_stays_deleted),
        cmocka_unit_test(test_same_seed_same_run),
        cmocka_unit_test(test_thousand_nodes_converge),
        cmocka_unit_test(test_push_beats_the_round),
        cmocka_unit_test(test_push_under_loss_leaves_no_gap),
        cmocka_unit_test(test_push_burst_stays_in_budget),
        cmocka_unit_test(test_deaf_node_reported_down),
        cmocka_unit_test(test_key_rotation),
        cmocka_unit_test(test_replay_rolls_nothing_back),
        cmocka_unit_test(test_reference_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
