/*
 * Monitors: the rings (who watches whom), and the behaviour of monitors in
 * small simulated clusters: a crash convicted by verdicts, lost beats
 * convicting no one whose heartbeat moves on, a paused node convicted and
 * coming back, the verdicts of a partition convicting no one after it, a
 * monitor that hears nothing withholding its verdicts, the protocol's
 * keys hidden from the application, a rejudge that passes over no peer
 * its monitors' votes convict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../run.h"

#include "../check.h"

#include <string.h>

#include "internal.h"
#include "ring.h"
#include "rng.h"

/* ---- the rings --------------------------------------------------------- */

/* For every ring, the successor of a is b exactly when the predecessor of
 * b is a; nodes added twice are there once; removal closes the gap. */
/* k rings of n random node ids, kept in ids[n]; g goes on from there. */
static void random_rings(sb_rings *r, uint32_t k, uint64_t *ids, int n,
                         sb_rng *g)
{
    sb_rings_init(r, k);
    sb_rng_seed(g, cluster_seed());
    for (int i = 0; i < n; i++) {
        ids[i] = sb_rng_next(g) & 0xffffffffffffull;
        check(sb_rings_add(r, ids[i]));
    }
}

static void test_ring_neighbours_agree(void **state)
{
    (void)state;
    sb_rings r;
    sb_rng g;
    uint64_t ids[50];
    random_rings(&r, 4, ids, 50, &g);
    for (int i = 0; i < 50; i++)
        check(sb_rings_add(&r, ids[i])); /* again: no-op */
    check(r.count == 50);
    for (uint32_t k = 0; k < 4; k++)
        for (int i = 0; i < 50; i++) {
            uint64_t next, prev;
            check(sb_rings_neighbour(&r, k, ids[i], true, &next));
            check(next != ids[i]);
            check(sb_rings_neighbour(&r, k, next, false, &prev));
            check(prev == ids[i]);
        }
    /* a node taken off: its predecessor's successor is its successor */
    uint64_t before, after, x;
    check(sb_rings_neighbour(&r, 2, ids[7], false, &before));
    check(sb_rings_neighbour(&r, 2, ids[7], true, &after));
    sb_rings_remove(&r, ids[7]);
    check(r.count == 49);
    check(sb_rings_neighbour(&r, 2, before, true, &x) && x == after);
    /* an id not on the rings still has neighbours: where it would sit */
    check(sb_rings_neighbour(&r, 2, ids[7], true, &x) && x == after);
    check(sb_rings_neighbour(&r, 2, ids[7], false, &x) && x == before);
    /* distinct neighbours over the rings: at most one per ring */
    uint64_t out[SB_MAX_RINGS];
    uint32_t n = sb_rings_neighbours(&r, 4, ids[0], true, out);
    check(n >= 1 && n <= 4);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            check(out[i] != out[j]);
    sb_rings_free(&r);
}

/* A walk's record: the nodes it visited, going past those in `past` (8
 * ids; NULL: none) and `max` at most. */
typedef struct ring_trail {
    const uint64_t *past;
    uint32_t max, n;
    uint64_t out[32];
} ring_trail;

static bool ring_step(void *u, uint64_t id)
{
    ring_trail *t = u;
    t->out[t->n++] = id;
    bool in = false;
    for (int i = 0; t->past && i < 8; i++)
        in |= t->past[i] == id;
    return in && t->n < t->max;
}

/* Records every node and never stops. */
static bool ring_every(void *u, uint64_t id)
{
    ring_trail *t = u;
    t->out[t->n++] = id;
    return true;
}

/* Walks ring i of r from id and returns how many nodes it visited (as
 * sb_rings_walk() reports them; t->n must agree). */
static uint32_t ring_walk(const sb_rings *r, uint32_t i, uint64_t id,
                          bool after, ring_trail *t)
{
    t->n = 0;
    uint32_t m = sb_rings_walk(r, i, id, after, ring_step, t);
    check(m == t->n);
    return m;
}

/* A walk steps from neighbour to neighbour, as far as the visitor asks
 * and never twice to a node; it never visits the node it starts from,
 * and agrees with the neighbours. */
static void test_ring_walk(void **state)
{
    (void)state;
    sb_rings r;
    sb_rings_init(&r, 2);
    sb_rng g;
    sb_rng_seed(&g, cluster_seed());
    uint64_t ids[20];
    for (int i = 0; i < 20; i++) {
        ids[i] = sb_rng_next(&g) & 0xffffffffffffull;
        check(sb_rings_add(&r, ids[i]));
    }
    uint64_t x;
    for (int after = 0; after < 2; after++) {
        /* a visitor that stops at once: the neighbour alone */
        ring_trail t = { .max = 9 };
        check(ring_walk(&r, 1, ids[3], after, &t) == 1);
        check(sb_rings_neighbour(&r, 1, ids[3], after, &x) && t.out[0] == x);
        /* past three nodes in a row: four steps, each the next one's
         * neighbour */
        uint64_t past[8] = { 0 };
        uint64_t at = ids[3];
        for (int k = 0; k < 3; k++) {
            check(sb_rings_neighbour(&r, 1, at, after, &at));
            past[k] = at;
        }
        t.past = past;
        check(ring_walk(&r, 1, ids[3], after, &t) == 4);
        at = ids[3];
        for (int k = 0; k < 4; k++) {
            check(sb_rings_neighbour(&r, 1, at, after, &at));
            check(t.out[k] == at);
        }
        check(t.out[3] != past[0] && t.out[3] != past[1] &&
              t.out[3] != past[2]);
        /* as far as the visitor goes */
        t.max = 2;
        check(ring_walk(&r, 1, ids[3], after, &t) == 2);
    }
    /* a visitor that never stops: every other node once, never the one
     * the walk starts from */
    ring_trail every = { 0 };
    check(sb_rings_walk(&r, 0, ids[5], true, ring_every, &every) == 19 &&
          every.n == 19);
    for (uint32_t k = 0; k < every.n; k++) {
        check(every.out[k] != ids[5]);
        for (uint32_t j = k + 1; j < every.n; j++)
            check(every.out[k] != every.out[j]);
    }
    /* a ring of two: the other one, however far the visitor would go */
    sb_rings two;
    sb_rings_init(&two, 1);
    check(sb_rings_add(&two, 42) && sb_rings_add(&two, 43));
    uint64_t both[8] = { 42, 43 };
    ring_trail t = { .past = both, .max = 9 };
    check(ring_walk(&two, 0, 42, true, &t) == 1 && t.out[0] == 43);
    check(ring_walk(&two, 0, 44, false, &t) == 2);
    check(ring_walk(&two, 3, 42, true, &t) == 0);
    sb_rings_free(&two);
    sb_rings_free(&r);
}

static void test_ring_alone(void **state)
{
    (void)state;
    sb_rings r;
    sb_rings_init(&r, 3);
    uint64_t x;
    check(!sb_rings_neighbour(&r, 0, 42, true, &x)); /* empty */
    check(sb_rings_add(&r, 42));
    check(!sb_rings_neighbour(&r, 0, 42, true, &x)); /* only itself */
    check(sb_rings_neighbour(&r, 0, 43, true, &x) && x == 42);
    check(sb_rings_add(&r, 43));
    uint64_t out[SB_MAX_RINGS];
    check(sb_rings_neighbours(&r, 3, 42, true, out) == 1 && out[0] == 43);
    check(sb_rings_neighbours(&r, 3, 42, false, out) == 1 && out[0] == 43);
    sb_rings_remove(&r, 43);
    sb_rings_remove(&r, 43); /* again: no-op */
    check(r.count == 1);
    sb_rings_free(&r);
}

/* sb_rings_between() agrees with a walk: a node on the ring lies after
 * `from` and at the latest at `to` when a walk from `from` meets it by
 * `to`; an id off the ring when its predecessor is `from` or met before
 * `to`; from == to takes the whole ring. */
static void test_ring_between(void **state)
{
    (void)state;
    sb_rings r;
    sb_rng g;
    uint64_t ids[20];
    random_rings(&r, 2, ids, 20, &g);
    for (uint32_t k = 0; k < 2; k++)
        for (int f = 0; f < 20; f++)
            for (int t = 0; t < 20; t++) {
                /* the walk from `from` to `to`, both included */
                uint64_t arc[21] = { ids[f] };
                uint32_t n = 1;
                while (f != t && arc[n - 1] != ids[t]) {
                    check(sb_rings_neighbour(&r, k, arc[n - 1], true,
                                             &arc[n]));
                    n++;
                }
                for (int i = 0; i < 20; i++) {
                    bool met = f == t && i != f;
                    for (uint32_t j = 1; j < n; j++)
                        met = met || arc[j] == ids[i];
                    check(sb_rings_between(k, ids[f], ids[t], ids[i]) ==
                          (met || (f == t && i == f)));
                }
                uint64_t off = sb_rng_next(&g) & 0xffffffffffffull, pred;
                check(sb_rings_neighbour(&r, k, off, false, &pred));
                bool met = f == t;
                for (uint32_t j = 0; j + 1 < n; j++)
                    met = met || arc[j] == pred;
                check(sb_rings_between(k, ids[f], ids[t], off) == met);
            }
    sb_rings_free(&r);
}

/* ---- monitors in a cluster -------------------------------------------- */

static cluster *converged(uint32_t n)
{
    cluster_config cfg;
    cluster_config_init(&cfg, n);
    cluster *c = cluster_new(&cfg);
    eventually(c, 60 * SEC, cluster_converged(c));
    cluster_run(c, 3 * SEC); /* the detectors learn the rhythm */
    return c;
}

static uint64_t verdicts(const cluster *c, uint32_t i)
{
    sb_stats s;
    sb_engine_stats(cluster_engine(c, i), &s);
    return s.verdicts;
}

/* The monitors of node x in node i's view, as node indices. */
static uint32_t monitors_of(const cluster *c, uint32_t i, uint32_t x,
                            uint32_t *out)
{
    const sb_engine *e = cluster_engine(c, i);
    const sb_peer *p = sb_state_find_addr(&e->st, cluster_addr(c, x),
                                          strlen(cluster_addr(c, x)));
    uint64_t ids[SB_MAX_RINGS];
    uint32_t n =
        sb_rings_neighbours(&e->rings, e->cfg.monitors, p->id, false, ids);
    for (uint32_t k = 0; k < n; k++)
        out[k] = (uint32_t)cluster_node_of(
            c, sb_state_find_id(&e->st, ids[k])->addr);
    return n;
}

/* Whether node m's own state holds a live verdict against node x. */
static bool holds_verdict(const cluster *c, uint32_t m, uint32_t x)
{
    const sb_engine *e = cluster_engine(c, m);
    const sb_peer *p = sb_state_find_addr(&e->st, cluster_addr(c, x),
                                          strlen(cluster_addr(c, x)));
    uint8_t key[VERDICT_KEY_LEN];
    sb_liveness_verdict_key(key, p->id);
    long j = sb_peer_find_key(e->self, key, sizeof(key));
    return j >= 0 && !e->self->keys[j]->deleted;
}

/* How many of the nodes mon[0..nm) hold a live verdict against x. */
static uint32_t votes(const cluster *c, const uint32_t *mon, uint32_t nm,
                      uint32_t x)
{
    uint32_t v = 0;
    for (uint32_t k = 0; k < nm; k++)
        v += holds_verdict(c, mon[k], x);
    return v;
}

/* Whether, at every running node that lists no voter, no peer is accused
 * and its monitors are its ring predecessors, and its subjects, if its
 * last round took them with the rings as they are, its successors. */
static bool watch_current(const cluster *c)
{
    for (uint32_t i = 0; i < cluster_size(c); i++) {
        const sb_engine *e = cluster_engine(c, i);
        if (!e)
            continue;
        bool none = sb_liveness_none_accused(e);
        for (uint32_t j = 0; none && j < e->st.count; j++)
            if (e->st.peers[j]->accused)
                return false;
        if (!none)
            continue;
        uint64_t next[SB_MAX_RINGS], prev[SB_MAX_RINGS];
        uint64_t ours[SB_MONITORS_MAX];
        uint32_t nn = sb_rings_neighbours(&e->rings, e->cfg.monitors,
                                          e->self->id, true, next);
        uint32_t np = sb_rings_neighbours(&e->rings, e->cfg.monitors,
                                          e->self->id, false, prev);
        uint32_t no = sb_monitor_monitors(e, e->self->id, ours);
        bool kept = e->watch_rings == e->rings.changes + 1;
        if ((kept && e->nwatch != nn) || no != np)
            return false;
        for (uint32_t k = 0; kept && k < nn; k++)
            if (e->watch[k].id != next[k])
                return false;
        for (uint32_t k = 0; k < np; k++)
            if (ours[k] != prev[k])
                return false;
    }
    return true;
}

/* Runs c for dt, checking watch_current() after every step. */
static void run_watched(cluster *c, uint64_t dt)
{
    uint64_t end = cluster_now(c) + dt;
    while (cluster_now(c) < end) {
        cluster_step(c);
        check(watch_current(c));
    }
}

/* Subjects and monitors follow the rings and the accused: at rest, as a
 * live node is accused by one monitor (its beats to it lost) and
 * refutes, as nodes join, leave gracefully, crash, and come back. */
static void test_subjects_follow_the_rings(void **state)
{
    (void)state;
    cluster *c = converged(16);
    run_watched(c, 2 * SEC);
    uint32_t mon[SB_MAX_RINGS];
    check(monitors_of(c, 0, 5, mon) >= 3);
    uint64_t before = verdicts(c, mon[0]);
    cluster_block(c, 5, mon[0], true);
    run_watched(c, 2 * SEC);
    check(verdicts(c, mon[0]) > before);
    cluster_block(c, 5, mon[0], false);
    run_watched(c, 5 * SEC);
    check(cluster_all_see(c, 5, SB_STATUS_LIVE));
    check(cluster_add_node(c) >= 0);
    run_watched(c, 3 * SEC);
    check(cluster_leave(c, 4) == SB_OK);
    run_watched(c, 3 * SEC);
    cluster_crash(c, 9);
    run_watched(c, 5 * SEC);
    check(cluster_all_see(c, 9, SB_STATUS_DOWN));
    check(cluster_restart(c, 9) >= 0);
    run_watched(c, 5 * SEC);
    check(cluster_all_see(c, 9, SB_STATUS_LIVE));
    cluster_free(c);
}

/* A crashed node is convicted by its monitors: most of them write a
 * verdict, every other node reports it down once, and no one else. */
static void test_crash_convicted_by_verdicts(void **state)
{
    (void)state;
    cluster *c = converged(24);
    uint64_t downs = cluster_downs(c, 9);
    uint32_t mon[SB_MAX_RINGS];
    uint32_t nm = monitors_of(c, 0, 9, mon);
    check(nm >= 2);
    cluster_crash(c, 9);
    eventually(c, 30 * SEC, cluster_all_see(c, 9, SB_STATUS_DOWN));
    check(votes(c, mon, nm, 9) > nm / 2);
    for (uint32_t i = 0; i < 24; i++)
        if (i != 9)
            check(cluster_leaves(c, i, 9) == 1);
    check(cluster_downs(c, 9) == downs);
    cluster_free(c);
}

/* A node whose last beats to its monitors were lost, then crashes, is
 * convicted by them all the same: the verdicts name the heartbeat gossip
 * brought, which the news of its last heartbeats cannot refute. Seen down
 * by all within 2 s, long before the fallback could. */
static void test_crash_after_lost_beats_convicted(void **state)
{
    (void)state;
    cluster *c = converged(24);
    uint32_t mon[SB_MAX_RINGS];
    uint32_t nm = monitors_of(c, 0, 5, mon);
    check(nm >= 3);
    for (uint32_t k = 0; k < nm; k++)
        cluster_block(c, 5, mon[k], true);
    cluster_run(c, 350 * MS); /* 3 beats lost, not yet a verdict */
    check(cluster_all_see(c, 5, SB_STATUS_LIVE));
    cluster_crash(c, 5);
    for (uint32_t k = 0; k < nm; k++)
        cluster_block(c, 5, mon[k], false);
    cluster_run(c, 2 * SEC);
    check(cluster_all_see(c, 5, SB_STATUS_DOWN));
    cluster_free(c);
}

/* A monitor whose subject's beats are lost (the link fails one way)
 * convicts it, and the subject, which hears the verdict, refutes it; the
 * monitor then waits as long as for a new subject (longer at each
 * refutation) before it convicts again: two verdicts in 10 s at most,
 * none held at the end, and no one reports the subject down. */
static void test_lost_beats_convict_no_one(void **state)
{
    (void)state;
    cluster *c = converged(24);
    uint64_t downs = cluster_downs(c, CLUSTER_ALL);
    uint32_t mon[SB_MAX_RINGS];
    uint32_t nm = monitors_of(c, 0, 4, mon);
    check(nm >= 3);
    uint32_t m = mon[0];
    uint64_t before = verdicts(c, m);
    cluster_block(c, 4, m, true);
    cluster_run(c, 10 * SEC);
    check(!holds_verdict(c, m, 4));
    check(verdicts(c, m) <= before + 2);
    check(cluster_all_see(c, 4, SB_STATUS_LIVE));
    check(cluster_downs(c, CLUSTER_ALL) == downs);
    cluster_free(c);
}

/* A node paused for a while is convicted by its monitors everywhere
 * (before the fallback would); once it runs again, its heartbeat moves
 * past the verdicts: every node sees it live, its monitors withdraw. */
static void test_paused_node_comes_back(void **state)
{
    (void)state;
    cluster *c = converged(24);
    uint32_t mon[SB_MAX_RINGS];
    uint32_t nm = monitors_of(c, 0, 6, mon);
    check(nm >= 3);
    cluster_pause(c, 6);
    eventually(c, 1500 * MS, cluster_all_see(c, 6, SB_STATUS_DOWN));
    check(votes(c, mon, nm, 6) > nm / 2);
    cluster_resume(c, 6);
    eventually(c, 30 * SEC, cluster_all_see(c, 6, SB_STATUS_LIVE));
    eventually(c, 30 * SEC, votes(c, mon, nm, 6) == 0);
    for (uint32_t i = 0; i < 24; i++)
        if (i != 6)
            check(cluster_leaves(c, i, 6) == 1); /* and no flapping */
    cluster_free(c);
}

/* A partition into halves, healed: the verdicts each side wrote about the
 * other, which reach it with the heal, convict no one (each node's
 * heartbeat moved on meanwhile), and no node is ever reported down by a
 * node of its own side. */
static void test_partition_verdicts_convict_no_one_after(void **state)
{
    (void)state;
    cluster *c = converged(24);
    uint32_t group[24];
    uint32_t before[24][24];
    for (uint32_t i = 0; i < 24; i++) {
        group[i] = i % 2;
        for (uint32_t j = 0; j < 24; j++)
            before[i][j] = cluster_leaves(c, i, j);
    }
    cluster_partition(c, group);
    cluster_run(c, 20 * SEC);
    cluster_heal(c);
    eventually(c, 30 * SEC, cluster_converged(c));
    cluster_run(c, 5 * SEC);
    check(cluster_all_live(c));
    for (uint32_t i = 0; i < 24; i++)
        for (uint32_t j = 0; j < 24; j++)
            if (i != j && group[i] == group[j])
                check(cluster_leaves(c, i, j) == before[i][j]);
            else if (i != j) /* down once in the partition, then back */
                check(cluster_leaves(c, i, j) == before[i][j] + 1);
    cluster_free(c);
}

/* Whether a running node would pass over, at its next rejudge, a peer
 * its monitors' votes convict: the rejudge judges again only the peers
 * a change marked since it last judged them (liveness.c), unless it
 * marks the accused afresh. */
static bool rejudge_misses(const cluster *c)
{
    for (uint32_t i = 0; i < cluster_size(c); i++) {
        const sb_engine *e = cluster_engine(c, i);
        if (!e || e->remark || e->voters_lost)
            continue;
        for (uint32_t j = 0; j < e->st.count; j++) {
            const sb_peer *x = e->st.peers[j];
            bool judged = x->status == SB_STATUS_LIVE ||
                          (x->status == SB_STATUS_DOWN && !x->convicted);
            if (judged && x->accused && !x->rejudge &&
                sb_liveness_convicted(e, x))
                return true;
        }
    }
    return false;
}

/* Runs for dt, checking every 10 ms that no rejudge would miss anyone. */
static void run_rejudged(cluster *c, uint64_t dt)
{
    for (uint64_t t = 0; t < dt; t += 10 * MS) {
        cluster_run(c, 10 * MS);
        if (rejudge_misses(c))
            fail_msg("a rejudge would miss a conviction at %llu ms",
                     (unsigned long long)(cluster_now(c) / MS));
    }
}

/* The marks a rejudge goes by (which peers' votes read something that
 * changed) miss no conviction: through a partition, as half the cluster
 * goes down for the other half and the verdicts cross the rings, its
 * heal, and then the crash of most of the nodes at once (the monitors
 * look past long runs of the accused), at 10% loss. */
static void test_rejudge_misses_no_one(void **state)
{
    (void)state;
    enum { N = 128 };
    cluster *c = converged(N);
    cluster_set_loss(c, 0.1);
    uint32_t group[N];
    for (uint32_t i = 0; i < N; i++)
        group[i] = i % 2;
    cluster_partition(c, group);
    run_rejudged(c, 8 * SEC);
    check(!cluster_all_live(c));
    cluster_heal(c);
    run_rejudged(c, 8 * SEC);
    for (uint32_t i = 0; i < N; i++)
        if (i % 8)
            cluster_crash(c, i);
    run_rejudged(c, 10 * SEC);
    check(cluster_all_see(c, 1, SB_STATUS_DOWN));
    cluster_free(c);
}

/* From now on node m of a 16-node cluster hears no one (every link to it
 * fails); was[i][j] gets how often node i reported node j gone so far. */
static void deafen(cluster *c, uint32_t m, uint32_t was[16][16])
{
    for (uint32_t i = 0; i < 16; i++)
        for (uint32_t j = 0; j < 16; j++)
            was[i][j] = cluster_leaves(c, i, j);
    for (uint32_t j = 0; j < 16; j++)
        if (j != m)
            cluster_block(c, j, m, true);
}

/* Since deafen(c, m, was), no node but m was reported gone: by anyone,
 * or (`by_m` false) by anyone but m. */
static void check_no_other_gone(const cluster *c, uint32_t m,
                                uint32_t was[16][16], bool by_m)
{
    for (uint32_t i = 0; i < 16; i++)
        for (uint32_t j = 0; j < 16; j++)
            if (j != m && (by_m || i != m))
                check(cluster_leaves(c, i, j) == was[i][j]);
}

/* A monitor that hears nothing (all its subjects silent at once) blames
 * itself and writes no verdict; the others see that it is deaf. */
static void test_deaf_monitor_withholds(void **state)
{
    (void)state;
    cluster *c = converged(16);
    uint64_t before = verdicts(c, 3);
    uint32_t was[16][16];
    deafen(c, 3, was);
    eventually(c, 30 * SEC, cluster_all_see(c, 3, SB_STATUS_DOWN));
    sb_stats s;
    sb_engine_stats(cluster_engine(c, 3), &s);
    check(s.verdicts == before);
    check(s.verdicts_withheld > 0);
    check_no_other_gone(c, 3, was, true);
    cluster_free(c);
}

/* Deaf again and again: a monitor withholds its verdicts every time its
 * subjects all fall silent, not only the first (the doubt ends when it
 * hears them again), and when it hears them again convicts none of those
 * whose beats have not come yet. */
static void test_deaf_monitor_withholds_every_time(void **state)
{
    (void)state;
    cluster *c = converged(16);
    uint64_t before = verdicts(c, 3);
    uint32_t was[16][16];
    for (int r = 0; r < 3; r++) {
        deafen(c, 3, was);
        cluster_run(c, 1500 * MS); /* past the doubt, not yet alone */
        for (uint32_t j = 0; j < 16; j++)
            if (j != 3)
                cluster_block(c, j, 3, false);
        eventually(c, 30 * SEC, cluster_all_live(c));
        cluster_run(c, 5 * SEC);
        check(verdicts(c, 3) == before);
        check_no_other_gone(c, 3, was, true);
    }
    cluster_free(c);
}

/* A node paused longer than ALONE_INTERVALS heard no one meanwhile, but
 * the pause is not silence: it reports none of its peers down. */
static void test_long_pause_reports_no_one_down(void **state)
{
    (void)state;
    cluster *c = converged(24);
    uint32_t was[24];
    for (uint32_t j = 0; j < 24; j++)
        was[j] = cluster_leaves(c, 6, j);
    cluster_pause(c, 6);
    cluster_run(c, 3 * SEC);
    cluster_resume(c, 6);
    eventually(c, 30 * SEC, cluster_all_see(c, 6, SB_STATUS_LIVE));
    cluster_run(c, 2 * SEC);
    for (uint32_t j = 0; j < 24; j++)
        check(cluster_leaves(c, 6, j) == was[j]);
    cluster_free(c);
}

/* Dead peers stay down for a node that comes back from being alone: it
 * judges them on rings that hold every peer it brings back, not on the
 * half-built rings of the peers brought back before them. */
static void test_back_from_alone_keeps_the_dead_down(void **state)
{
    (void)state;
    cluster *c = converged(24);
    static const uint32_t dead[] = { 5, 9, 13, 17, 20 };
    for (size_t k = 0; k < sizeof(dead) / sizeof(dead[0]); k++)
        cluster_crash(c, dead[k]);
    for (size_t k = 0; k < sizeof(dead) / sizeof(dead[0]); k++)
        eventually(c, 30 * SEC, cluster_all_see(c, dead[k], SB_STATUS_DOWN));
    cluster_run(c, 2 * SEC);
    uint32_t joins[24];
    for (uint32_t j = 0; j < 24; j++)
        joins[j] = cluster_joins(c, 0, j);
    uint32_t group[24] = { 1 }; /* node 0 alone */
    cluster_partition(c, group);
    cluster_run(c, 3 * SEC);
    check(cluster_engine(c, 0)->alone);
    cluster_heal(c);
    cluster_run(c, 5 * SEC);
    check(!cluster_engine(c, 0)->alone);
    for (size_t k = 0; k < sizeof(dead) / sizeof(dead[0]); k++) {
        check(cluster_status(c, 0, dead[k]) == SB_STATUS_DOWN);
        check(cluster_joins(c, 0, dead[k]) == joins[dead[k]]);
    }
    cluster_free(c);
}

/* A dead node's monitors cut off together (a rack's switch) refute, which
 * voids every verdict they wrote, the dead node's too: once their doubt is
 * over they sign again, so that a node judging it afresh (a newcomer)
 * still counts a majority. */
static void test_verdicts_signed_again_after_a_refutation(void **state)
{
    (void)state;
    cluster *c = converged(24);
    uint32_t x = 9;
    cluster_crash(c, x);
    eventually(c, 30 * SEC, cluster_all_see(c, x, SB_STATUS_DOWN));
    cluster_run(c, 2 * SEC);
    uint32_t mon[SB_MAX_RINGS];
    uint32_t nm = monitors_of(c, 0, x, mon);
    uint32_t group[24] = { 0 };
    for (uint32_t k = 0; k < nm; k++) {
        check(mon[k] != 0);
        group[mon[k]] = 1;
    }
    check(votes(c, mon, nm, x) > nm / 2);
    cluster_partition(c, group);
    cluster_run(c, 1500 * MS);
    cluster_heal(c);
    cluster_run(c, 30 * SEC);
    check(votes(c, mon, nm, x) > nm / 2);
    cluster_free(c);
}

static uint64_t refuted(const cluster *c, uint32_t i)
{
    sb_stats s;
    sb_engine_stats(cluster_engine(c, i), &s);
    return s.refuted;
}

/* The bytes nodes 0..n-1 sent so far. */
static uint64_t bytes_sent(const cluster *c, uint32_t n)
{
    uint64_t b = 0;
    for (uint32_t i = 0; i < n; i++) {
        sb_stats s;
        sb_engine_stats(cluster_engine(c, i), &s);
        b += s.bytes_out;
    }
    return b;
}

/* A node that refuted has its subjects beat it anew, within
 * MONITOR_UNPROVEN_INTERVALS of its running time: paused again at once,
 * for longer than that, it convicts none of them when it comes back (the
 * pause rule moves their wait as it moves the beats it awaits). */
static void test_pause_after_a_refutation_convicts_no_one(void **state)
{
    (void)state;
    cluster *c = converged(24);
    uint32_t x = 6;
    cluster_pause(c, x);
    eventually(c, 30 * SEC, cluster_all_see(c, x, SB_STATUS_DOWN));
    uint64_t r = refuted(c, x);
    cluster_resume(c, x); /* the verdicts that queued up: it refutes */
    check(refuted(c, x) > r);
    uint64_t v = verdicts(c, x);
    cluster_pause(c, x);
    cluster_run(c, 5 * SEC);
    cluster_resume(c, x);
    eventually(c, 30 * SEC, cluster_all_live(c));
    cluster_run(c, 3 * SEC);
    if (verdicts(c, x) != v)
        fail_msg("node %u wrote %llu verdicts after its pause", x,
                 (unsigned long long)(verdicts(c, x) - v));
    cluster_free(c);
}

/* Whether a captured packet is a SYN with the DOUBT flag (plaintext). */
static bool is_doubt(const cluster_packet *p)
{
    return p->len > SB_HEADER_SIZE + SB_TOKEN_SIZE &&
           p->data[3] == SB_MSG_SYN &&
           (p->data[SB_HEADER_SIZE + SB_TOKEN_SIZE] & SB_SYN_DOUBT);
}

/* Pauses node x until every node holds it down, captures the doubts its
 * peers send it in 3 s (returns how many; the capture holds them), then
 * resumes it until all see it live. */
static size_t capture_doubts(cluster *c, uint32_t x)
{
    cluster_pause(c, x);
    eventually(c, 1500 * MS, cluster_all_see(c, x, SB_STATUS_DOWN));
    cluster_capture(c, CLUSTER_ALL, 0);
    cluster_run(c, 3 * SEC);
    cluster_capture_stop(c);
    const cluster_packets *cap = cluster_captured(c);
    size_t ndoubts = 0;
    for (size_t k = 0; k < cap->n; k++)
        ndoubts += cap->p[k].to == (int)x && is_doubt(&cap->p[k]);
    check(ndoubts > 0);
    cluster_resume(c, x);
    eventually(c, 30 * SEC, cluster_all_see(c, x, SB_STATUS_LIVE));
    return ndoubts;
}

/* Hands node x every doubt of the capture, from its sender, `times`
 * times, 100 ms apart. */
static void replay_doubts(cluster *c, uint32_t x, int times)
{
    const cluster_packets *cap = cluster_captured(c);
    for (int t = 0; t < times; t++) {
        for (size_t k = 0; k < cap->n; k++) {
            const cluster_packet *p = &cap->p[k];
            if (p->to == (int)x && is_doubt(p))
                cluster_deliver(c, x, cluster_addr(c, p->from), p->data,
                                p->len);
        }
        cluster_run(c, 100 * MS);
    }
}

/* The probes a node's peers sent it while they held it down (the DOUBT
 * flag: refute), replayed from their senders once the node is back: 50
 * times over 5 s, they move its heartbeat no more (each doubts a
 * heartbeat it has moved past), and no one reports it down. */
static void test_replayed_doubt_moves_nothing(void **state)
{
    (void)state;
    cluster *c = converged(8);
    uint32_t x = 3;
    size_t ndoubts = capture_doubts(c, x);
    cluster_run(c, 3 * SEC);
    uint64_t was = refuted(c, x), sent = bytes_sent(c, 8);
    cluster_run(c, 5 * SEC);
    uint64_t rest = bytes_sent(c, 8) - sent;
    sent += rest;
    uint32_t leaves[8];
    for (uint32_t i = 0; i < 8; i++)
        leaves[i] = cluster_leaves(c, i, x);
    replay_doubts(c, x, 50);
    printf("replayed %zu doubts 50 times: %llu refutations; the cluster "
           "sent %llu B/s (at rest: %llu)\n",
           ndoubts, (unsigned long long)(refuted(c, x) - was),
           (unsigned long long)(bytes_sent(c, 8) - sent) / 5,
           (unsigned long long)rest / 5);
    check(refuted(c, x) == was);
    for (uint32_t i = 0; i < 8; i++)
        check(cluster_leaves(c, i, x) == leaves[i]);
    cluster_free(c);
}

/* The doubts a node's peers sent it while they held it down name its id
 * of that life. Replayed from their senders after it restarted (a new
 * generation: a new id, heartbeat 1), they name no id it has, and move
 * nothing: before, a doubt not listing the receiver was taken for one
 * of a node of 0.10.3 (which named none) and refuted once an interval,
 * for as long as the replays went on (a sealed replay is the same
 * packet, once opened). */
static void test_doubt_of_an_earlier_life_moves_nothing(void **state)
{
    (void)state;
    cluster *c = converged(8);
    uint32_t x = 3;
    size_t ndoubts = capture_doubts(c, x);
    cluster_crash(c, x);
    cluster_run(c, 200 * MS);
    check(cluster_restart(c, x) >= 0);
    eventually(c, 30 * SEC, cluster_all_live(c));
    cluster_run(c, 3 * SEC);
    uint64_t was = refuted(c, x);
    replay_doubts(c, x, 30);
    printf("replayed %zu doubts of an earlier life 30 times: %llu "
           "refutations\n", ndoubts,
           (unsigned long long)(refuted(c, x) - was));
    check(refuted(c, x) == was);
    cluster_free(c);
}

/* Keeps, of what node s sent, the last ACK or ACK2 to each node (a
 * sealed packet: its type byte is in clear); returns how many nodes. */
static uint32_t last_answers(const cluster_packets *cap, uint32_t s,
                             cluster_packet *kept, uint32_t n)
{
    uint32_t have = 0;
    for (size_t k = 0; k < cap->n; k++) {
        const cluster_packet *p = &cap->p[k];
        uint8_t type = p->len > 3 ? p->data[3] & 0x7f : 0;
        if (p->from != s || p->to < 0 || (uint32_t)p->to >= n ||
            (type != SB_MSG_ACK && type != SB_MSG_ACK2))
            continue;
        have += kept[p->to].data == NULL;
        kept[p->to] = *p;
    }
    return have;
}

/* How long after node s crashed every other node holds it down, while
 * `kept` (answers s sent) are replayed from its address every 200 ms;
 * 0 if not within 60 s. */
static uint64_t down_despite_replays(cluster *c, uint32_t s,
                                     const cluster_packet *kept)
{
    uint32_t n = cluster_size(c);
    uint64_t t0 = cluster_now(c);
    cluster_crash(c, s);
    for (int t = 0; t < 300; t++) {
        for (uint32_t i = 0; i < n; i++)
            if (kept[i].data && cluster_running(c, i))
                cluster_deliver(c, i, cluster_addr(c, s), kept[i].data,
                                kept[i].len);
        cluster_run(c, 200 * MS);
        if (cluster_all_see(c, s, SB_STATUS_DOWN))
            return cluster_now(c) - t0;
    }
    return 0;
}

/* The answers (ACKs, ACK2s) a node sent, captured sealed by someone
 * without the key and replayed from its address after it crashed: the
 * echo check takes them only while the tokens they echo are of the
 * current period or the last (token.c), so they prove its life for two
 * periods at most (3.2 s at a 100 ms interval). Tokens that never
 * changed let one answer a monitor, replayed every 200 ms, count as a
 * beat whenever the crashed subject was late: it was never convicted.
 * Answers captured 20 s before the crash move nothing; ones captured
 * in the 5 s before it (every node writing a key a second, so that they
 * exchange) hold it up two periods at most. */
static void test_replayed_answers_keep_no_dead_node_live(void **state)
{
    (void)state;
    enum { N = 8 };
    static const uint8_t key[SB_KEY_SIZE] = { 9, 8, 7 };
    for (int fresh = 0; fresh < 2; fresh++) {
        cluster_config cfg;
        cluster_config_init(&cfg, N);
        cfg.engine.keys = key;
        cfg.engine.nkeys = 1;
        cluster *c = cluster_new(&cfg);
        uint32_t s = 5;
        if (!fresh)
            cluster_capture(c, (int)s, 0); /* from its start */
        eventually(c, 60 * SEC, cluster_converged(c));
        cluster_run(c, fresh ? 15 * SEC : 3 * SEC);
        if (fresh) { /* writes, so that s exchanges and answers */
            cluster_capture(c, (int)s, 0);
            for (int t = 0; t < 5; t++) {
                char v[16];
                snprintf(v, sizeof(v), "%d", t);
                for (uint32_t i = 0; i < N; i++)
                    cluster_set(c, i, "k", v);
                cluster_run(c, SEC);
            }
        } else {
            cluster_run(c, 17 * SEC);
        }
        cluster_capture_stop(c);
        cluster_packet kept[N] = { { 0 } };
        uint32_t have = last_answers(cluster_captured(c), s, kept, N);
        check(have >= 1);
        uint64_t down = down_despite_replays(c, s, kept);
        printf("answers captured %s the crash, replayed to %u nodes: all "
               "hold it down after %.2f s (0: not in 60 s)\n",
               fresh ? "in the 5 s before" : "20 s before", have,
               (double)down / SEC);
        check(down > 0 && down <= (fresh ? 5 * SEC : 2 * SEC));
        cluster_free(c);
    }
}

/* A node that joins after others died may get a dead node's record
 * before the verdicts that convict it (the sweep goes in id order); the
 * member that sends it holds it down, and says so: the newcomer never
 * reports a dead node joined (nor then left), and it reports every live
 * one joined once. */
static void test_newcomer_reports_no_dead_node(void **state)
{
    (void)state;
    cluster *c = converged(24);
    uint32_t dead[] = { 4, 9, 17 };
    for (size_t k = 0; k < 3; k++)
        cluster_crash(c, dead[k]);
    for (size_t k = 0; k < 3; k++)
        eventually(c, 30 * SEC, cluster_all_see(c, dead[k], SB_STATUS_DOWN));
    cluster_run(c, 5 * SEC);
    int y = cluster_add_node(c);
    check(y == 24);
    eventually(c, 30 * SEC, cluster_all_see(c, (uint32_t)y, SB_STATUS_LIVE));
    cluster_run(c, 5 * SEC);
    for (uint32_t i = 0; i < 24; i++) {
        bool gone = i == 4 || i == 9 || i == 17;
        if (cluster_joins(c, (uint32_t)y, i) != (gone ? 0u : 1u) ||
            cluster_leaves(c, (uint32_t)y, i) != 0)
            fail_msg("the newcomer reported node %u (%s) joined %u times "
                     "and gone %u times", i, gone ? "dead" : "live",
                     cluster_joins(c, (uint32_t)y, i),
                     cluster_leaves(c, (uint32_t)y, i));
        if (gone)
            check(cluster_status(c, (uint32_t)y, i) != SB_STATUS_LIVE);
    }
    cluster_free(c);
}

/* Node x as node i holds it. */
static sb_peer *record_of(const cluster *c, uint32_t i, uint32_t x)
{
    const sb_engine *e = cluster_engine(c, i);
    return sb_state_find_addr(&e->st, cluster_addr(c, x),
                              strlen(cluster_addr(c, x)));
}

/* A record held down as it arrived (JOINING, from a member whose
 * monitors' verdicts convicted it then) waits for its node's heartbeat
 * to move; if the verdicts are withdrawn without that (their writers
 * refuted, so they are void), nothing moves it unless the holder doubts
 * it, as it doubts a node it holds DOWN. Here the record is put back to
 * JOINING by hand, as a newcomer took it in the explorer's seed 6013
 * (64 nodes): it must be live again within a few probes. */
static void test_held_down_record_without_verdicts_comes_back(void **state)
{
    (void)state;
    cluster *c = converged(8);
    uint32_t y = 3, x = 5;
    sb_engine *e = cluster_engine(c, y);
    sb_liveness_set_status(e, record_of(c, y, x), SB_STATUS_JOINING,
                           cluster_now(c));
    check(cluster_status(c, y, x) == SB_STATUS_JOINING);
    eventually(c, 20 * SEC, cluster_status(c, y, x) == SB_STATUS_LIVE);
    check(cluster_all_live(c));
    cluster_free(c);
}

/* A node held down whose verdicts were withdrawn before they reached it
 * (at a heal, every monitor that refutes a verdict against itself
 * withdraws its own, some before their subjects saw them) does not know
 * it is held down, and its heartbeat stays where it was: a 64-node
 * partition (sb-sim, seed 1) left one node down for the 32 of the other
 * side 0.7 s after every record was whole, until one of them probed it.
 * A holder that hears from it doubts it at once, whatever the probe
 * backoff the partition left. Here one of its monitors holds it down by
 * hand, the next probe 60 s away: it must be live again well before. */
static void test_held_down_node_heard_is_doubted(void **state)
{
    (void)state;
    cluster *c = converged(8);
    uint32_t x = 5, mon[SB_MAX_RINGS];
    check(monitors_of(c, 0, x, mon) >= 1);
    uint32_t y = mon[0]; /* x beats it: it hears x */
    sb_engine *e = cluster_engine(c, y);
    sb_peer *p = record_of(c, y, x);
    sb_liveness_set_status(e, p, SB_STATUS_DOWN, cluster_now(c));
    p->convicted = true; /* live again only once its heartbeat moves */
    p->probes = 20;
    p->probe_at = cluster_now(c) + 60 * SEC;
    uint64_t was = refuted(c, x);
    eventually(c, 2 * SEC, cluster_status(c, y, x) == SB_STATUS_LIVE);
    check(refuted(c, x) == was + 1); /* doubted: nothing else moves it */
    check(cluster_all_live(c));
    cluster_free(c);
}

/* Hands node x a doubt from member m (plaintext) naming heartbeat hb;
 * hb 0: naming none, as nodes of 0.10.3 and before sent them. */
static void doubt(cluster *c, uint32_t m, uint32_t x, uint64_t hb)
{
    sb_engine *e = cluster_engine(c, m);
    uint8_t buf[128];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    sb_digest_entry d = sb_entry_of(record_of(c, m, x));
    d.heartbeat = hb;
    sb_put_header(&w, SB_MSG_SYN, e->cluster_id);
    sb_put_u64(&w, 0);
    sb_put_u8(&w, SB_SYN_ASK | SB_SYN_DOUBT);
    sb_put_u64(&w, sb_summary(e));
    sb_put_varint(&w, hb ? 1 : 0);
    if (hb)
        sb_put_digest_entry(&w, &d);
    check(cluster_deliver(c, x, cluster_addr(c, m), buf,
                          (size_t)(w.p - buf)) == SB_OK);
}

/* A monitor that answers 1 s late cannot see a new subject's first beat
 * within the wait an unproven subject gets, and writes verdicts against
 * its subjects, some of which are monitors of others of its subjects.
 * Those verdicts made such a monitor suspected, and its suspicion was a
 * vote against the subject besides the late node's own verdict: one
 * writer counted twice, a majority of 3 monitors, and healthy nodes were
 * reported down by all (5 of SB_SEED 1 to 20 at 18 nodes, push off). A
 * writer's word now counts once. And after its refutation, when all its
 * subjects, new again, are silent past their wait at once, it withholds
 * (28 of SB_SEED 1 to 2000 had it report a healthy node down itself,
 * looking past the subjects it convicted). */
static void test_late_monitor_counts_once(void **state)
{
    (void)state;
    cluster_config cfg;
    cluster_config_init(&cfg, 18);
    cfg.engine.push_fanout = 0;
    cluster *c = cluster_new(&cfg);
    eventually(c, 30 * SEC, cluster_converged(c));
    uint32_t late = 1;
    uint64_t downs = cluster_downs(c, (int)late);
    cluster_slow_node(c, late, 0, 1 * SEC);
    cluster_run(c, 60 * SEC);
    if (cluster_downs(c, (int)late) != downs)
        fail_msg("%llu downs of healthy nodes",
                 (unsigned long long)(cluster_downs(c, (int)late) - downs));
    cluster_free(c);
}

/* Nodes that restart after a node died take its record from members
 * that hold it down, and hold it JOINING (never proven alive): their new
 * ids move them onto the rings, where they become the dead node's
 * monitors in place of those that convicted it. They must concur as
 * monitors that hold it down do, or the verdicts that stand are no
 * longer a majority of its monitors, and a node that judges it afresh (a
 * newcomer, taking the record from a member whose own view no longer
 * convicts it) holds the dead node live for good. */
static void test_restarted_monitors_concur_on_the_dead(void **state)
{
    (void)state;
    cluster *c = converged(16);
    uint32_t x = 9;
    cluster_crash(c, x);
    eventually(c, 30 * SEC, cluster_all_see(c, x, SB_STATUS_DOWN));
    cluster_run(c, 2 * SEC);
    for (uint32_t i = 3; i < 16; i++) {
        if (i == x)
            continue;
        check(cluster_restart(c, i) == SB_OK);
        eventually(c, 30 * SEC, cluster_all_see(c, i, SB_STATUS_LIVE));
        cluster_run(c, 2 * SEC);
    }
    cluster_run(c, 5 * SEC);
    for (uint32_t i = 0; i < 16; i++) {
        if (i == x)
            continue;
        check(cluster_status(c, i, x) != SB_STATUS_LIVE);
        uint32_t mon[SB_MAX_RINGS];
        uint32_t nm = monitors_of(c, i, x, mon);
        if (votes(c, mon, nm, x) <= nm / 2)
            fail_msg("in node %u's view, %u of the dead node's %u "
                     "monitors hold a verdict", i, votes(c, mon, nm, x),
                     nm);
    }
    int y = cluster_add_node(c);
    check(y == 16);
    eventually(c, 30 * SEC, cluster_all_see(c, (uint32_t)y, SB_STATUS_LIVE));
    cluster_run(c, 10 * SEC);
    check(cluster_status(c, (uint32_t)y, x) != SB_STATUS_LIVE);
    check(cluster_joins(c, (uint32_t)y, x) == 0);
    cluster_free(c);
}

/* A doubt moves the heartbeat it names by one, if it is the node's own:
 * one naming a heartbeat above it (which no member can hold: only the
 * node moves it) moves nothing, so that a forged one cannot spend the
 * node's heartbeats and leave it unable to refute the next time it is
 * held down. A doubt that names none (a node of 0.10.3 or before) is
 * refuted at most once an interval. */
static void test_doubt_of_another_heartbeat_moves_nothing(void **state)
{
    (void)state;
    cluster *c = converged(8);
    uint32_t x = 3;
    uint64_t hb = cluster_engine(c, x)->self->heartbeat;
    doubt(c, 0, x, SB_HEARTBEAT_MAX - 2);
    doubt(c, 0, x, hb + 1);
    check(cluster_engine(c, x)->self->heartbeat == hb);
    doubt(c, 0, x, hb);
    check(cluster_engine(c, x)->self->heartbeat == hb + 1);
    doubt(c, 1, x, hb); /* refuted already */
    check(cluster_engine(c, x)->self->heartbeat == hb + 1);
    /* an older node's doubt, naming none: once an interval */
    cluster_run(c, 100 * MS);
    doubt(c, 2, x, 0);
    check(cluster_engine(c, x)->self->heartbeat == hb + 2);
    doubt(c, 2, x, 0);
    check(cluster_engine(c, x)->self->heartbeat == hb + 2);
    cluster_run(c, 100 * MS);
    doubt(c, 2, x, 0);
    check(cluster_engine(c, x)->self->heartbeat == hb + 3);
    /* and it still comes back from a pause */
    cluster_pause(c, x);
    eventually(c, 3 * SEC, cluster_all_see(c, x, SB_STATUS_DOWN));
    cluster_resume(c, x);
    eventually(c, 30 * SEC, cluster_all_see(c, x, SB_STATUS_LIVE));
    cluster_free(c);
}

/* A seed that was cut off (alone, it holds every peer down, with no
 * verdict) and first hears a newcomer: the records it sends say no one
 * is down (only verdicts make the down flag), and once the network heals
 * the newcomer sees every node live. */
static void test_newcomer_of_a_lone_seed_sees_all_live(void **state)
{
    (void)state;
    cluster *c = converged(8);
    uint32_t s = 0;
    for (uint32_t j = 1; j < 8; j++) {
        cluster_block(c, s, j, true);
        cluster_block(c, j, s, true);
    }
    cluster_run(c, 3 * SEC);
    check(cluster_engine(c, s)->alone);
    int y = cluster_add_node(c);
    check(y == 8);
    for (uint32_t j = 1; j < 8; j++) {
        cluster_block(c, (uint32_t)y, j, true);
        cluster_block(c, j, (uint32_t)y, true);
    }
    cluster_run(c, 300 * MS);
    cluster_heal(c);
    eventually(c, 30 * SEC, cluster_all_live(c));
    cluster_free(c);
}

/* A monitor whose subjects are all unproven (it doubted its view) and
 * that then hears nothing (a link failing one way, the case of a node
 * cut off right after it started) convicts none of them: its silence is
 * its own. No one else is reported down. (Once alone, ALONE_INTERVALS,
 * it holds every peer down itself.) */
static void test_deaf_monitor_convicts_no_unproven_subject(void **state)
{
    (void)state;
    cluster *c = converged(16);
    uint64_t before = verdicts(c, 3);
    uint32_t was[16][16];
    sb_monitor_doubt(cluster_engine(c, 3), cluster_now(c));
    deafen(c, 3, was);
    cluster_run(c, 1900 * MS); /* past the unproven wait, not yet alone */
    check(verdicts(c, 3) == before);
    eventually(c, 30 * SEC, cluster_all_see(c, 3, SB_STATUS_DOWN));
    check(verdicts(c, 3) == before);
    check_no_other_gone(c, 3, was, false);
    cluster_free(c);
}

/* Whether node m has taken a beat from x since x became its subject. */
static bool beat_taken(const cluster *c, uint32_t m, uint32_t x)
{
    const sb_engine *e = cluster_engine(c, m);
    for (uint32_t i = 0; i < e->nwatch; i++)
        if (e->watch[i].proven &&
            cluster_node_of(c, sb_state_find_id(&e->st, e->watch[i].id)
                                   ->addr) == (int)x)
            return true;
    return false;
}

/* The same with one subject proven again before the silence (its beat
 * was on the way): the one subject heard, then silent like all the
 * others, is not convicted either. */
static void test_deaf_monitor_convicts_no_lone_proven_subject(void **state)
{
    (void)state;
    cluster *c = converged(16);
    uint64_t before = verdicts(c, 3);
    const sb_engine *e = cluster_engine(c, 3);
    check(e->nwatch > 1);
    uint32_t s = (uint32_t)cluster_node_of(
        c, sb_state_find_id(&e->st, e->watch[0].id)->addr);
    uint32_t was[16][16];
    sb_monitor_doubt(cluster_engine(c, 3), cluster_now(c));
    deafen(c, 3, was);
    cluster_block(c, s, 3, false);
    eventually(c, 2 * SEC, beat_taken(c, 3, s));
    cluster_block(c, s, 3, true);
    cluster_run(c, 1900 * MS); /* past its conviction, not yet alone */
    check(verdicts(c, 3) == before);
    eventually(c, 30 * SEC, cluster_all_see(c, 3, SB_STATUS_DOWN));
    check(verdicts(c, 3) == before);
    check_no_other_gone(c, 3, was, false);
    cluster_free(c);
}

static uint32_t updates_seen;
static void count_updates(void *userdata, uint32_t node, const sb_event *ev,
                          uint64_t now)
{
    (void)userdata;
    (void)node;
    (void)now;
    if (ev->type == SB_EVENT_UPDATE || ev->type == SB_EVENT_DELETE)
        updates_seen++;
}

static void count_key(void *userdata, const uint8_t *key, size_t key_len,
                      const uint8_t *value, size_t value_len)
{
    (void)key;
    (void)key_len;
    (void)value;
    (void)value_len;
    (*(int *)userdata)++;
}

/* Keys that start with a zero byte are the protocol's: refused to the
 * application, and verdicts never show in its events, reads or counts. */
static void test_verdicts_hidden(void **state)
{
    (void)state;
    cluster_config cfg;
    cluster_config_init(&cfg, 12);
    cfg.on_event = count_updates;
    cluster *c = cluster_new(&cfg);
    eventually(c, 60 * SEC, cluster_converged(c));
    cluster_run(c, 3 * SEC);
    check(cluster_set_bytes(c, 0, "\0v123456", 8, "x", 1) == SB_EINVAL);
    check(cluster_set_bytes(c, 0, "\0", 1, "x", 1) == SB_EINVAL);
    check(cluster_del_bytes(c, 0, "\0", 1) == SB_EINVAL);
    updates_seen = 0;
    uint32_t mon[SB_MAX_RINGS];
    uint32_t nm = monitors_of(c, 0, 2, mon);
    check(nm >= 1);
    cluster_crash(c, 2);
    eventually(c, 30 * SEC, cluster_all_see(c, 2, SB_STATUS_DOWN));
    cluster_run(c, 2 * SEC);
    check(votes(c, mon, nm, 2) > nm / 2);
    uint32_t m = mon[0];
    for (uint32_t k = 0; k < nm; k++)
        if (holds_verdict(c, mon[k], 2))
            m = mon[k];
    check(holds_verdict(c, m, 2));
    check(updates_seen == 0);
    for (uint32_t i = 0; i < 12; i++) {
        if (i == 2)
            continue;
        sb_member mb;
        check(sb_engine_find(cluster_engine(c, i), cluster_addr(c, m),
                             &mb) == SB_OK);
        check(mb.keys == 0 && mb.tombstones == 0);
        int listed = 0;
        check(sb_engine_keys(cluster_engine(c, i), cluster_addr(c, m),
                             count_key, &listed) == SB_OK);
        check(listed == 0);
    }
    cluster_free(c);
}

/*
 * Nodes whose application filled its bounds (max_keys_per_node on some,
 * max_state_bytes on the others: their next write is SB_ELIMIT) still
 * convict a crash: a verdict is the protocol's key, outside the
 * application's share, at the writer and at every holder. Before, the
 * write of the verdict failed on the bound, no monitor could convict,
 * and the crashed node stayed live everywhere (the fallback would have
 * taken some 18 minutes).
 */
static void test_full_nodes_convict_a_crash(void **state)
{
    (void)state;
    cluster_config cfg;
    cluster_config_init(&cfg, 16);
    cfg.engine.max_keys_per_node = 6;
    cfg.engine.max_state_bytes = 200;
    cluster *c = cluster_new(&cfg);
    eventually(c, 60 * SEC, cluster_converged(c));
    for (uint32_t i = 0; i < 16; i++) {
        char k[8];
        if (i % 2) {
            for (int j = 0; j < 6; j++) {
                snprintf(k, sizeof(k), "k%d", j);
                check(cluster_set(c, i, k, "v") == SB_OK);
            }
        } else {
            char big[199];
            memset(big, 'x', sizeof(big) - 1);
            big[sizeof(big) - 1] = 0;
            check(cluster_set(c, i, "b", big) == SB_OK);
        }
        check(cluster_set(c, i, "one-more", "v") == SB_ELIMIT);
    }
    eventually(c, 30 * SEC, cluster_converged(c));
    cluster_run(c, 3 * SEC);
    uint64_t downs = cluster_downs(c, 9);
    uint32_t mon[SB_MAX_RINGS];
    uint32_t nm = monitors_of(c, 0, 9, mon);
    check(nm >= 2);
    cluster_crash(c, 9);
    eventually(c, 30 * SEC, cluster_all_see(c, 9, SB_STATUS_DOWN));
    check(cluster_all_see(c, 9, SB_STATUS_DOWN));
    check(votes(c, mon, nm, 9) > nm / 2);
    check(cluster_downs(c, 9) == downs);
    /* the application's keys are as they were, everywhere */
    for (uint32_t i = 0; i < 16; i++)
        if (i != 9)
            check(cluster_all_have(c, i, i % 2 ? "k5" : "one-more",
                                   i % 2 ? "v" : NULL));
    cluster_free(c);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_neighbours_agree),
        cmocka_unit_test(test_ring_walk),
        cmocka_unit_test(test_ring_alone),
        cmocka_unit_test(test_ring_between),
        cmocka_unit_test(test_subjects_follow_the_rings),
        cmocka_unit_test(test_crash_convicted_by_verdicts),
        cmocka_unit_test(test_crash_after_lost_beats_convicted),
        cmocka_unit_test(test_lost_beats_convict_no_one),
        cmocka_unit_test(test_paused_node_comes_back),
        cmocka_unit_test(test_deaf_monitor_withholds_every_time),
        cmocka_unit_test(test_long_pause_reports_no_one_down),
        cmocka_unit_test(test_back_from_alone_keeps_the_dead_down),
        cmocka_unit_test(test_verdicts_signed_again_after_a_refutation),
        cmocka_unit_test(test_pause_after_a_refutation_convicts_no_one),
        cmocka_unit_test(test_replayed_doubt_moves_nothing),
        cmocka_unit_test(test_doubt_of_an_earlier_life_moves_nothing),
        cmocka_unit_test(test_replayed_answers_keep_no_dead_node_live),
        cmocka_unit_test(test_newcomer_reports_no_dead_node),
        cmocka_unit_test(test_restarted_monitors_concur_on_the_dead),
        cmocka_unit_test(test_late_monitor_counts_once),
        cmocka_unit_test(test_doubt_of_another_heartbeat_moves_nothing),
        cmocka_unit_test(test_held_down_record_without_verdicts_comes_back),
        cmocka_unit_test(test_held_down_node_heard_is_doubted),
        cmocka_unit_test(test_newcomer_of_a_lone_seed_sees_all_live),
        cmocka_unit_test(test_partition_verdicts_convict_no_one_after),
        cmocka_unit_test(test_rejudge_misses_no_one),
        cmocka_unit_test(test_deaf_monitor_withholds),
        cmocka_unit_test(test_deaf_monitor_convicts_no_unproven_subject),
        cmocka_unit_test(test_deaf_monitor_convicts_no_lone_proven_subject),
        cmocka_unit_test(test_verdicts_hidden),
        cmocka_unit_test(test_full_nodes_convict_a_crash),
    };
    return RUN_TESTS(tests, argc, argv);
}
