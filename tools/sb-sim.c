/*
 * sb-sim: runs simulated clusters and prints what it measured.
 *
 * Starts N nodes, waits until they converge, lets the failure detectors
 * settle, measures steady-state traffic (bytes sent per node per second
 * over a window), then runs trials. Below 512 nodes every trial gets a
 * fresh cluster (seeds seed, seed+1, ...); from 512 nodes on, the trials
 * run one after the other on one cluster. A trial is:
 *   - propagation: a random node sets a key; intervals until all have it;
 *   - detection: a random node crashes; seconds until all others report
 *     it down; it stays down (from 512 nodes, where trials share one
 *     cluster, each trial's cluster is one node smaller);
 *   - false downs: leave events about nodes that did not crash, counted
 *     over the whole run.
 * Everything is simulated time; the run is deterministic for a seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load_report.h"
#include "rng.h"
#include "sim.h" /* and engine.h: MS, SEC */
#include "sim_load.h"

typedef struct opts {
    uint32_t nodes;
    uint32_t trials;
    uint64_t seed;
    uint64_t interval_ms;
    size_t max_message;
    double loss;
    double latency_ms;
    double jitter_ms;
    double threshold;
    uint32_t fanout;
    uint32_t bandwidth;       /* --bandwidth; 0: the library's */
    uint32_t monitors;
    uint64_t partition_s;
    double rack_pct;          /* --rack: percent of the nodes; 0: no */
    bool join;
    uint32_t missed;          /* --missed: records missed, per cluster */
    bool no_crash;
    sb_wire wire;
    uint64_t window_s;
    bool quiet;
    bool trace;
    load_plan load;           /* --load: rates, keys, value size, period */
    const char *trial_opt;    /* the first option given that only the
                                 trials read, or NULL */
    const char *load_opt;     /* the first that only --load reads */
} opts;

/* Options that measure the trials, and options of --load: given with
 * the other mode they would be ignored, so they are refused. */
static const char *const sim_trial_opts[] = {
    "--trials", "--window", "--partition", "--rack", "--join", "--missed",
    "--no-crash", "--trace", NULL
};
static const char *const sim_load_opts[] = {
    "--keys", "--value-bytes", "--load-seconds", NULL
};

static bool listed(const char *const *list, const char *a)
{
    for (; *list; list++)
        if (!strcmp(*list, a))
            return true;
    return false;
}

/* What one trial watches through the event callback. */
typedef struct watch {
    sb_sim *sim;
    const char *key_node;     /* propagation: who set the key */
    char value[32];
    uint32_t need;            /* running nodes other than the subject */
    uint32_t have;            /* nodes that hold it */
    uint64_t all_at;          /* when the last one got it */
    const char *crashed;      /* detection: who crashed */
    uint32_t reported;        /* nodes that reported it down */
    uint64_t reported_at;
    uint64_t false_downs;
    bool counting;            /* false downs are counted after convergence */
    uint8_t *seen;            /* per node: got the key / reported crash */
    uint8_t *rack;            /* per node: crashed with the rack */
    bool tracing;             /* --trace */
    uint64_t trace;           /* hash of every packet and event */
    uint64_t traced;          /* packets and events hashed */
} watch;

/* FNV-1a over bytes, folded into *h. */
static void trace_bytes(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 0x100000001b3ull;
}

/* --trace: every packet a node sends (with its time, ends and bytes) is
 * hashed, so that two builds that print the same hash sent the same
 * packets at the same simulated times. */
static void on_packet(void *ud, uint32_t from, uint32_t to,
                      const uint8_t *buf, size_t len)
{
    watch *w = ud;
    if (!w->tracing || !w->sim)
        return;
    uint64_t now = sb_sim_now(w->sim), n = len;
    trace_bytes(&w->trace, &now, sizeof(now));
    trace_bytes(&w->trace, &from, sizeof(from));
    trace_bytes(&w->trace, &to, sizeof(to));
    trace_bytes(&w->trace, &n, sizeof(n));
    trace_bytes(&w->trace, buf, len);
    w->traced++;
}

static void on_event(void *ud, uint32_t node, const sb_event *ev,
                     uint64_t now)
{
    watch *w = ud;
    uint32_t n = w->need;
    if (w->tracing) {
        uint32_t type = (uint32_t)ev->type, status = (uint32_t)ev->status;
        trace_bytes(&w->trace, &now, sizeof(now));
        trace_bytes(&w->trace, &node, sizeof(node));
        trace_bytes(&w->trace, &type, sizeof(type));
        trace_bytes(&w->trace, &status, sizeof(status));
        trace_bytes(&w->trace, &ev->generation, sizeof(ev->generation));
        trace_bytes(&w->trace, ev->addr, strlen(ev->addr));
        if (ev->key)
            trace_bytes(&w->trace, ev->key, ev->key_len);
        if (ev->value)
            trace_bytes(&w->trace, ev->value, ev->value_len);
        w->traced++;
    }
    if (ev->type == SB_EVENT_UPDATE && w->key_node &&
        strcmp(ev->addr, w->key_node) == 0 && ev->key_len == 1 &&
        ev->key[0] == 'k' && ev->value_len == strlen(w->value) &&
        memcmp(ev->value, w->value, ev->value_len) == 0 &&
        !(w->seen[node] & 1)) {
        w->seen[node] |= 1;
        if (++w->have == n)
            w->all_at = now;
    }
    if (ev->type == SB_EVENT_LEAVE) {
        long subject = sb_sim_index(w->sim, ev->addr);
        if (subject >= 0 && w->rack[subject]) {
            /* a rack node reported down: no false down */
        } else if (w->crashed && strcmp(ev->addr, w->crashed) == 0) {
            if (!(w->seen[node] & 2)) {
                w->seen[node] |= 2;
                if (++w->reported == n)
                    w->reported_at = now;
            }
        } else if (w->counting) {
            w->false_downs++;
        }
    }
}

typedef struct result {
    double rounds;            /* propagation, in intervals; <0: never */
    double pushes;            /* push packets the update cost, cluster-wide */
    double detect_s;          /* <0: never */
} result;

typedef struct totals {
    bool converged;
    double converge_s;
    double bytes_per_node_s;
    double packets_per_node_s;
    double refuted_per_node_min; /* refutations in the steady window */
    uint64_t false_downs;
    double memory_per_node;   /* kept exact: a mean over the clusters of
                                 integer divisions lost up to a byte each */
    size_t scratch_peak;      /* the most one call of a node took besides
                                 (sb_engine_scratch_peak()) */
    double gap_mean_ms, gap_sd_ms; /* monitors' beat gaps, averaged */
    double split_s, heal_s;   /* --partition: <0 never */
    uint32_t rack_n;          /* --rack: nodes crashed at once */
    double rack_s;            /* --rack: all seen down by all; <0 never */
    double join_s, known_s;   /* --join: <0 never */
    uint64_t trace;
    uint64_t traced;
} totals;

/* Running nodes other than node `subject`. */
static uint32_t others_running(const sb_sim *s, uint32_t subject)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < sb_sim_count(s); i++)
        n += i != subject && sb_sim_running(s, i);
    return n;
}

/* The counters of sb_stats the measurements add up. */
typedef enum counter { PUSHES, REFUTED, RANGES } counter;

/* Node i's counter c, since its engine started. */
static uint64_t node_counter(const sb_sim *s, uint32_t i, counter c)
{
    sb_stats st;
    sb_engine_stats(sb_sim_engine(s, i), &st);
    return c == PUSHES ? st.pushes : c == REFUTED ? st.refuted : st.ranges;
}

/* Of all running nodes, since they started: push packets sent, verdicts
 * against them they refuted, or SYNs that carried a range. */
static uint64_t running_total(const sb_sim *s, counter c)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < sb_sim_count(s); i++)
        if (sb_sim_running(s, i))
            n += node_counter(s, i, c);
    return n;
}

static uint64_t pushes_sent(const sb_sim *s)
{
    return running_total(s, PUSHES);
}

static uint64_t refuted(const sb_sim *s)
{
    return running_total(s, REFUTED);
}

/* Runs until every running node holds the key, or a limit; *pushes gets
 * the push packets the update cost (counted until one interval after). */
static double measure_propagation(sb_sim *s, watch *w, uint32_t setter,
                                  uint64_t interval, uint64_t tag,
                                  double *pushes)
{
    uint64_t p0 = pushes_sent(s);
    uint32_t n = w->need = others_running(s, setter);
    memset(w->seen, 0, sb_sim_count(s));
    w->have = 0;
    w->key_node = sb_sim_addr(s, setter);
    snprintf(w->value, sizeof(w->value), "v%" PRIu64, tag);
    w->seen[setter] |= 1;
    uint64_t t0 = sb_sim_now(s);
    sb_sim_set(s, setter, "k", w->value);
    while (w->have < n && sb_sim_now(s) - t0 < 120 * SEC)
        sb_sim_run_for(s, MS);
    sb_sim_run_for(s, interval);
    *pushes = (double)(pushes_sent(s) - p0);
    return w->have == n ? (double)(w->all_at - t0) / (double)interval : -1;
}

/* Crashes `victim`; runs until every other node reported it down. */
static double measure_detection(sb_sim *s, watch *w, uint32_t victim)
{
    uint32_t n = w->need = others_running(s, victim);
    memset(w->seen, 0, sb_sim_count(s));
    w->reported = 0;
    w->crashed = sb_sim_addr(s, victim);
    w->seen[victim] |= 2;
    uint64_t t1 = sb_sim_now(s);
    sb_sim_crash(s, victim);
    while (w->reported < n && sb_sim_now(s) - t1 < 600 * SEC)
        sb_sim_run_for(s, 10 * MS);
    return w->reported == n ? (double)(w->reported_at - t1) / SEC : -1;
}

/*
 * A rack: `pct` percent of the nodes (at least one), drawn at random from
 * the running ones, crash at once. Returns when every running node saw
 * every one of them down, or -1 if not within 600 s; *n gets how many
 * crashed. Downs of the rack's nodes are not false downs; any other still
 * counts.
 */
static double measure_rack(sb_sim *s, watch *w, double pct, sb_rng *rng,
                           uint64_t interval, uint32_t *n)
{
    uint32_t count = sb_sim_count(s), running = 0;
    for (uint32_t i = 0; i < count; i++)
        running += sb_sim_running(s, i);
    *n = 0;
    if (running < 2)
        return -1;
    uint32_t want = (uint32_t)((double)count * pct / 100.0 + 0.5);
    if (want < 1)
        want = 1;
    if (want >= running)
        want = running - 1;
    uint32_t *rack = malloc(want * sizeof(*rack));
    if (!rack)
        return -1;
    while (*n < want) {
        uint32_t v = (uint32_t)sb_rng_below(rng, count);
        if (sb_sim_running(s, v) && !w->rack[v]) {
            w->rack[v] = 1;
            rack[(*n)++] = v;
        }
    }
    uint64_t t0 = sb_sim_now(s);
    for (uint32_t k = 0; k < want; k++)
        sb_sim_crash(s, rack[k]);
    /* observers before `done` saw the whole rack down, and a crashed node
     * does not come back: each check goes on from there */
    uint32_t done = 0;
    double took = -1;
    while (sb_sim_now(s) - t0 < 600 * SEC) {
        sb_sim_run_for(s, interval / 10);
        for (; done < count; done++) {
            uint32_t k = 0;
            while (sb_sim_running(s, done) && k < want &&
                   sb_sim_status(s, done, rack[k]) == SB_STATUS_DOWN)
                k++;
            if (sb_sim_running(s, done) && k < want)
                break;
        }
        if (done == count) {
            took = (double)(sb_sim_now(s) - t0) / SEC;
            break;
        }
    }
    free(rack);
    return took;
}

/* Every running node sees every running node of the other group (i % 2)
 * down. */
static bool sides_apart(const sb_sim *s)
{
    uint32_t n = sb_sim_count(s);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = (i + 1) % 2; j < n; j += 2)
            if (sb_sim_running(s, i) && sb_sim_running(s, j) &&
                sb_sim_status(s, i, j) != SB_STATUS_DOWN)
                return false;
    return true;
}

/*
 * A partition into halves (odd and even nodes) for `seconds`, a key set
 * on each side meanwhile, then healed: when every node saw the whole
 * other side down (from the cut), and when every node held every node
 * live with every key again (from the heal); -1 if not within the
 * partition, or within 120 s of the heal. Downs are not counted as false
 * meanwhile.
 */
static void measure_partition(sb_sim *s, watch *w, uint64_t seconds,
                              uint64_t interval, double *split_s,
                              double *heal_s)
{
    uint32_t n = sb_sim_count(s);
    uint32_t *group = malloc(n * sizeof(*group));
    if (!group)
        return;
    for (uint32_t i = 0; i < n; i++)
        group[i] = i % 2;
    w->counting = false;
    sb_sim_partition(s, group);
    uint64_t t0 = sb_sim_now(s), end = t0 + seconds * SEC;
    for (uint32_t i = 0; i < 2 && i < n; i++)
        if (sb_sim_running(s, i))
            sb_sim_set(s, i, "side", i ? "odd" : "even");
    while (sb_sim_now(s) < end) {
        sb_sim_run_for(s, interval);
        if (*split_s < 0 && sides_apart(s))
            *split_s = (double)(sb_sim_now(s) - t0) / SEC;
    }
    sb_sim_heal(s);
    t0 = sb_sim_now(s);
    while (!sb_sim_converged(s) && sb_sim_now(s) - t0 < 120 * SEC)
        sb_sim_run_for(s, interval);
    if (sb_sim_converged(s))
        *heal_s = (double)(sb_sim_now(s) - t0) / SEC;
    free(group);
}

/* True if node `idx` holds every running node's record as that node
 * holds its own: the same generation, and every key version. */
static bool holds_every_state(const sb_sim *s, uint32_t idx)
{
    const sb_engine *e = sb_sim_engine(s, idx);
    for (uint32_t j = 0; j < sb_sim_count(s); j++) {
        sb_member own, m;
        if (j == idx || !sb_sim_running(s, j))
            continue;
        if (sb_engine_find(sb_sim_engine(s, j), sb_sim_addr(s, j), &own) !=
                SB_OK ||
            sb_engine_find(e, sb_sim_addr(s, j), &m) != SB_OK ||
            m.generation != own.generation ||
            m.max_version != own.max_version)
            return false;
    }
    return true;
}

/* True if every running node holds node `idx`'s summary. */
static bool all_agree_with(const sb_sim *s, uint32_t idx)
{
    uint64_t want = sb_engine_summary(sb_sim_engine(s, idx));
    for (uint32_t j = 0; j < sb_sim_count(s); j++)
        if (sb_sim_running(s, j) &&
            sb_engine_summary(sb_sim_engine(s, j)) != want)
            return false;
    return true;
}

/* Whether --join measures "known by all": one summary everywhere, which
 * only monitors give a cluster at rest (the reference wire has none). */
static bool join_known_measured(const opts *o)
{
    return o->monitors && o->wire == SB_WIRE_SCUTTLEBUTT;
}

/*
 * A new node joins (seeded like the others; every node holds a key of its
 * own, set at the start): when it holds every node's state, and (if
 * `agree`: with monitors, where a cluster at rest holds one summary)
 * when every node holds the same state as it (each knows the newcomer),
 * in seconds from its start; -1 if not within 60 s.
 */
static void measure_join(sb_sim *s, bool agree, double *join_s,
                         double *known_s)
{
    int idx = sb_sim_add_node(s);
    if (idx < 0)
        return;
    uint64_t t0 = sb_sim_now(s), step = 5 * MS;
    while ((*join_s < 0 || (agree && *known_s < 0)) &&
           sb_sim_now(s) - t0 < 60 * SEC) {
        sb_sim_run_for(s, step);
        double t = (double)(sb_sim_now(s) - t0) / SEC;
        if (*join_s < 0 && holds_every_state(s, (uint32_t)idx))
            *join_s = t;
        if (agree && *known_s < 0 && all_agree_with(s, (uint32_t)idx))
            *known_s = t;
    }
}

/* --missed: per record missed, the SYNs that carried a range
 * (steps of descents) of the node that missed it and of the whole
 * cluster, and the seconds until it held the record; pooled over the
 * clusters. */
static struct {
    double *own, *all, *secs;
    uint32_t n, cap;
} missed;

/*
 * A record one node missed, when no news of it is left to tell (found
 * only where two nodes' summaries differ, docs/protocol.md, section 5.3):
 * node x hears nothing for 600 ms (longer than a change counts as recent,
 * RECENT_ROUNDS: no exchange offers the key as news any more) while node
 * y sets a key; then x hears again. Counted until x holds the key: the
 * steps of descents x took, and all nodes took.
 */
static void measure_missed(sb_sim *s, sb_rng *rng, uint32_t k)
{
    if (missed.n == missed.cap)
        return;
    uint32_t n = sb_sim_count(s), x, y;
    do
        x = (uint32_t)sb_rng_below(rng, n);
    while (!sb_sim_running(s, x));
    do
        y = (uint32_t)sb_rng_below(rng, n);
    while (y == x || !sb_sim_running(s, y));
    char value[32];
    snprintf(value, sizeof(value), "missed-%u", k);
    sb_sim_run_for(s, SEC);
    sb_sim_set_node_loss(s, x, 1.0);
    sb_sim_set(s, y, "missed", value);
    sb_sim_run_for(s, 600 * MS);
    sb_sim_set_node_loss(s, x, 0);
    uint64_t own = node_counter(s, x, RANGES);
    uint64_t all = running_total(s, RANGES);
    uint64_t t0 = sb_sim_now(s);
    while (!sb_sim_has(s, x, y, "missed", value) &&
           sb_sim_now(s) - t0 < 60 * SEC)
        sb_sim_run_for(s, 5 * MS);
    bool found = sb_sim_has(s, x, y, "missed", value);
    missed.own[missed.n] =
        found ? (double)(node_counter(s, x, RANGES) - own) : -1;
    missed.all[missed.n] =
        found ? (double)(running_total(s, RANGES) - all) : -1;
    missed.secs[missed.n] =
        found ? (double)(sb_sim_now(s) - t0) / SEC : -1;
    missed.n++;
}

/* The simulated cluster the options describe. */
static void sim_config(const opts *o, uint64_t seed, sb_sim_config *cfg)
{
    sb_sim_config_init(cfg);
    cfg->nodes = o->nodes;
    cfg->seed = seed;
    cfg->loss = o->loss;
    cfg->latency_ns = (uint64_t)(o->latency_ms * MS);
    cfg->jitter_ns = (uint64_t)(o->jitter_ms * MS);
    cfg->engine.interval_ns = o->interval_ms * MS;
    cfg->engine.max_message_size = o->max_message;
    cfg->engine.phi_threshold = o->threshold;
    cfg->engine.push_fanout = o->fanout;
    cfg->engine.bandwidth = o->bandwidth;
    cfg->engine.monitors = o->monitors;
    cfg->engine.wire = o->wire;
    /* room for every node, a crashed one's next generation and a joiner,
     * as a deployment of that size would configure (the default, 4096,
     * would refuse the joiner of a 4096-node cluster) */
    if (cfg->engine.max_nodes < 2 * o->nodes)
        cfg->engine.max_nodes = 2 * o->nodes;
}

/*
 * One cluster, converged once, then `trials` measurements on it: a random
 * node sets a key (propagation), then a random node crashes (detection)
 * and stays down. Steady-state traffic is measured once, before them.
 */
static int run_cluster(const opts *o, uint64_t seed, uint32_t first,
                       uint32_t trials, result *r, totals *t)
{
    memset(t, 0, sizeof(*t));
    watch w = { .tracing = o->trace, .trace = 0xcbf29ce484222325ull };
    sb_sim_config cfg;
    sim_config(o, seed, &cfg);
    cfg.on_event = on_event;
    cfg.on_packet = on_packet;
    cfg.userdata = &w;
    sb_sim *s;
    int rc = sb_sim_new(&cfg, &s);
    if (rc != SB_OK) {
        fprintf(stderr, "sb-sim: cannot start: %s\n", sb_strerror(rc));
        return rc;
    }
    w.sim = s;
    w.seen = calloc(o->nodes + 1, 1); /* and a node that joins */
    w.rack = calloc(o->nodes + 1, 1);
    for (uint32_t i = 0; o->join && i < o->nodes; i++) {
        char value[72]; /* 64 bytes of state a node */
        snprintf(value, sizeof(value), "%064u", i);
        sb_sim_set(s, i, "state", value);
    }
    uint64_t interval = o->interval_ms * MS;
    sb_rng rng;
    sb_rng_seed(&rng, seed);

    while (!sb_sim_converged(s) && sb_sim_now(s) < 600 * SEC)
        sb_sim_run_for(s, interval);
    t->converged = sb_sim_converged(s);
    t->converge_s = (double)sb_sim_now(s) / SEC;
    /* let the detectors learn the heartbeat rhythm */
    sb_sim_run_for(s, 5 * SEC);
    w.counting = true;

    uint64_t b0 = sb_sim_bytes_sent(s), p0 = sb_sim_packets_sent(s);
    uint64_t r0 = refuted(s);
    sb_sim_run_for(s, o->window_s * SEC);
    t->refuted_per_node_min = (double)(refuted(s) - r0) / (double)o->nodes /
                              (double)o->window_s * 60.0;
    t->bytes_per_node_s = (double)(sb_sim_bytes_sent(s) - b0) /
                          (double)o->nodes / (double)o->window_s;
    t->packets_per_node_s = (double)(sb_sim_packets_sent(s) - p0) /
                            (double)o->nodes / (double)o->window_s;
    size_t mem = 0;
    for (uint32_t i = 0; i < o->nodes; i++) {
        const sb_engine *e = sb_sim_engine(s, i);
        mem += sb_engine_memory(e);
        if (sb_engine_scratch_peak(e) > t->scratch_peak)
            t->scratch_peak = sb_engine_scratch_peak(e);
    }
    t->memory_per_node = (double)mem / (double)o->nodes;
    uint32_t watched = 0;
    for (uint32_t i = 0; i < o->nodes; i++) {
        double mean, sd;
        uint32_t n = sb_engine_beat_gaps(sb_sim_engine(s, i), &mean, &sd);
        t->gap_mean_ms += mean * n / MS;
        t->gap_sd_ms += sd * n / MS;
        watched += n;
    }
    if (watched) {
        t->gap_mean_ms /= watched;
        t->gap_sd_ms /= watched;
    }

    for (uint32_t k = 0; k < trials; k++) {
        uint32_t setter, victim;
        do
            setter = (uint32_t)sb_rng_below(&rng, o->nodes);
        while (!sb_sim_running(s, setter));
        r[k].rounds = measure_propagation(s, &w, setter, interval, k,
                                          &r[k].pushes);
        r[k].detect_s = -1;
        if (o->no_crash) {
            sb_sim_run_for(s, 2 * SEC);
            if (!o->quiet)
                printf("  trial %2u  update %6.2f intervals\n", first + k,
                       r[k].rounds);
            continue;
        }
        do
            victim = (uint32_t)sb_rng_below(&rng, o->nodes);
        while (!sb_sim_running(s, victim));
        r[k].detect_s = measure_detection(s, &w, victim);
        /* the victim stays down; false downs keep being counted */
        sb_sim_run_for(s, 2 * SEC);
        if (!o->quiet)
            printf("  trial %2u  update %6.2f intervals  crash seen by all "
                   "%6.2f s\n", first + k, r[k].rounds, r[k].detect_s);
    }
    t->rack_s = -1;
    if (o->rack_pct > 0) {
        t->rack_s = measure_rack(s, &w, o->rack_pct, &rng, interval,
                                 &t->rack_n);
        sb_sim_run_for(s, 2 * SEC); /* false downs keep being counted */
    }
    t->false_downs = w.false_downs;
    t->split_s = t->heal_s = -1;
    if (o->partition_s)
        measure_partition(s, &w, o->partition_s, interval, &t->split_s,
                          &t->heal_s);
    for (uint32_t k = 0; k < o->missed; k++)
        measure_missed(s, &rng, k);
    t->join_s = t->known_s = -1;
    if (o->join) {
        /* what the newcomer reports of the trials' nodes is no news */
        w.counting = false;
        w.key_node = w.crashed = NULL;
        measure_join(s, join_known_measured(o), &t->join_s, &t->known_s);
    }
    t->trace = w.trace;
    t->traced = w.traced;
    sb_sim_free(s);
    free(w.seen);
    free(w.rack);
    return SB_OK;
}

/* The worse of two times, where -1 (never) is the worst. */
static double worst(double a, double b)
{
    return a < 0 || b < 0 ? -1 : a > b ? a : b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of n sorted values. */
static double quantile(const double *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n + 0.999999);
    if (i == 0)
        i = 1;
    if (i > n)
        i = n;
    return v[i - 1];
}

static void summary(const char *name, double *v, uint32_t n,
                    const char *unit)
{
    uint32_t ok = 0;
    for (uint32_t i = 0; i < n; i++)
        if (v[i] >= 0)
            v[ok++] = v[i];
    qsort(v, ok, sizeof(double), cmp_double);
    if (!ok) {
        printf("  %-22s never (0/%u trials)\n", name, n);
        return;
    }
    printf("  %-22s median %8.2f  p90 %8.2f  p99 %8.2f  max %8.2f %s",
           name, quantile(v, ok, 0.5), quantile(v, ok, 0.9),
           quantile(v, ok, 0.99), v[ok - 1], unit);
    if (ok < n)
        printf("  (%u/%u trials never)", n - ok, n);
    printf("\n");
}

/*
 * --load: the load scenario (tools/load_plan.h) on one cluster, every rate
 * in turn, and the table of `scuttlebutt eval --load`. Everything printed
 * on stdout follows from the options (same seed, same bytes); the CPU
 * time goes to stderr.
 */
static int run_load(const opts *o)
{
    sb_sim_config cfg;
    sim_config(o, o->seed, &cfg);
    clock_t c0 = clock();
    sim_load *l;
    int rc = sim_load_new(&cfg, &o->load, &l);
    if (rc == SB_ETOOBIG) {
        fprintf(stderr, "sb-sim: --value-bytes %u: a value that large does "
                "not fit a %zu-byte message (--max-message-size)\n",
                o->load.value_bytes, o->max_message);
        return 2;
    }
    if (rc != SB_OK) {
        fprintf(stderr, "sb-sim: cannot start: %s\n", sb_strerror(rc));
        return 1;
    }
    printf("sb-sim --load: %u nodes, interval %" PRIu64 " ms, max message "
           "%zu B, loss %.0f%%, latency %.1f ms, fanout %u, seed %" PRIu64
           "; %u keys of %u B per node, %u s per rate\n", o->nodes,
           o->interval_ms, o->max_message, o->loss * 100, o->latency_ms,
           o->fanout, o->seed, o->load.keys, o->load.value_bytes,
           o->load.seconds);
    if (o->bandwidth)
        printf("  bandwidth cap %u B/s a node\n", o->bandwidth);
    double at;
    bool converged = sim_load_converged(l, &at);
    printf("  %s after %.1f s\n\n", converged ? "converged" : "NOT converged",
           at);
    load_row rows[LOAD_PLAN_MAX_RATES];
    for (size_t i = 0; i < o->load.nrates && rc == SB_OK; i++)
        rc = sim_load_run(l, o->load.rates[i], &rows[i]);
    if (rc == SB_OK)
        load_report_table(stdout, rows, o->load.nrates);
    else
        fprintf(stderr, "sb-sim: a write failed: %s\n", sb_strerror(rc));
    fprintf(stderr, "sb-sim: %.1f s of CPU\n",
            (double)(clock() - c0) / CLOCKS_PER_SEC);
    sim_load_free(l);
    if (rc == SB_OK && !converged)
        fprintf(stderr, "sb-sim: the cluster did not converge within 600 s: "
                "its figures are not a converged cluster's\n");
    return rc == SB_OK && converged ? 0 : 1;
}

/* d is a whole number within [lo, hi] (false for nan). */
static bool whole(double d, double lo, double hi)
{
    return d >= lo && d <= hi && d == floor(d);
}

/* A seed, as --seed and SB_SEED give it: a number strtoull() reads
 * whole (0x... and 0... too), no sign, no wrap. */
static bool parse_seed(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (end == s || *end || errno || strchr(s, '-'))
        return false;
    *out = v;
    return true;
}

/* The most seconds a run may be asked to simulate: the clock counts
 * nanoseconds in 64 bits. */
#define SIM_MAX_S 1e9

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sb-sim [options]\n"
            "  --nodes N             cluster size (64)\n"
            "  --trials T            measurements (20)\n"
            "  --seed S              seed (1); SB_SEED also sets it\n"
            "  --interval MS         gossip interval (100)\n"
            "  --max-message-size B  bytes per message (1400)\n"
            "  --loss P              packet loss, 0..1 (0)\n"
            "  --latency MS          one-way latency (1)\n"
            "  --jitter MS           uniform extra latency (0)\n"
            "  --threshold PHI       conviction threshold (8)\n"
            "  --fanout F            eager-push trees, 0 = off, at most 8 (3)\n"
            "  --bandwidth B         each node's cap, bytes a second\n"
            "                        (the library's default)\n"
            "  --monitors K          monitor rings, 0 = off (4)\n"
            "  --window S            steady-state window in seconds (10)\n"
            "  --partition S         then split the cluster in halves for S\n"
            "                        seconds and heal it (0: no)\n"
            "  --rack P              after the trials, P%% of the nodes (below\n"
            "                        100) crash at once: when all saw them\n"
            "                        all down\n"
            "  --join                every node holds a key; at the end a\n"
            "                        new node joins: when it holds every\n"
            "                        node's state, when all know it\n"
            "  --missed K            after the trials, K times: a node\n"
            "                        hears nothing for 600 ms while another\n"
            "                        sets a key, then hears again: the steps\n"
            "                        of descents until it holds the key\n"
            "  --no-crash            measure propagation only\n"
            "  --wire reference      the reference wire format (docs/compat.md)\n"
            "  --quiet               print the summary only\n"
            "  --trace               print a hash of every packet sent and\n"
            "                        every event (two builds that behave\n"
            "                        alike print the same)\n"
            "  --load RATE[,RATE...] instead of the trials: every node writes\n"
            "                        RATE times a second, each rate in turn\n"
            "                        on one converged cluster, and the table\n"
            "                        of `scuttlebutt eval --load` is printed\n"
            "                        (README, \"Under load\")\n"
            "  --keys K              keys per node under load (%u)\n"
            "  --value-bytes B       value size under load, at least %u (%u)\n"
            "  --load-seconds S      load period per rate (%u)\n"
            "exit status: 0 done; 1 a cluster did not converge within\n"
            "600 s (its figures are printed all the same) or could not\n"
            "start; 2 a bad option, or an option of the other mode\n",
            LOAD_PLAN_KEYS, LOAD_PLAN_MIN_VALUE, LOAD_PLAN_VALUE_BYTES,
            LOAD_PLAN_SECONDS);
}

int main(int argc, char **argv)
{
    opts o = { .nodes = 64, .trials = 20, .seed = 1, .interval_ms = 100,
               .max_message = 1400, .latency_ms = 1, .threshold = 8.0,
               .fanout = 3, .monitors = 4,
               .window_s = 10 };
    load_plan_init(&o.load);
    /* SB_SEED as strictly as --seed: "1.9" or "junk" ran seed 1 or 0 */
    const char *env = getenv("SB_SEED");
    if (env && !parse_seed(env, &o.seed)) {
        fprintf(stderr, "sb-sim: bad value for SB_SEED: %s\n", env);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!o.trial_opt && listed(sim_trial_opts, a))
            o.trial_opt = a;
        if (!o.load_opt && listed(sim_load_opts, a))
            o.load_opt = a;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            o.quiet = true;
            continue;
        }
        if (!strcmp(a, "--trace")) {
            o.trace = true;
            continue;
        }
        if (!strcmp(a, "--no-crash")) {
            o.no_crash = true;
            continue;
        }
        if (!strcmp(a, "--join")) {
            o.join = true;
            continue;
        }
        if (!strcmp(a, "--wire") && v &&
            (!strcmp(v, "reference") || !strcmp(v, "scuttlebutt"))) {
            o.wire = strcmp(v, "reference") ? SB_WIRE_SCUTTLEBUTT
                                            : SB_WIRE_REFERENCE;
            i++;
            continue;
        }
        if (!strcmp(a, "--load") && v) {
            if (!load_plan_parse_rates(v, &o.load)) {
                fprintf(stderr, "sb-sim: --load: up to %d rates above 0 "
                        "and at most %g, comma-separated: %s\n",
                        LOAD_PLAN_MAX_RATES, LOAD_PLAN_MAX_RATE, v);
                return 2;
            }
            i++;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "sb-sim: unexpected argument: %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "sb-sim: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--seed")) {
            if (!parse_seed(v, &o.seed)) {
                fprintf(stderr, "sb-sim: bad value for %s: %s\n", a, v);
                return 2;
            }
            i++;
            continue;
        }
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end || !isfinite(d) || d < 0) {
            fprintf(stderr, "sb-sim: bad value for %s: %s\n", a, v);
            return 2;
        }
        /* counts are whole numbers their type holds (no truncation, no
         * wrap: 1e10 nodes is refused, not 1410065408); times fit the
         * simulated clock */
        if (!strcmp(a, "--nodes") && whole(d, 2, UINT32_MAX / 2))
            o.nodes = (uint32_t)d;
        else if (!strcmp(a, "--trials") && whole(d, 1, UINT32_MAX))
            o.trials = (uint32_t)d;
        else if (!strcmp(a, "--interval") && whole(d, 1, SIM_MAX_S * 1000))
            o.interval_ms = (uint64_t)d;
        else if (!strcmp(a, "--max-message-size") && whole(d, 64, 65507))
            o.max_message = (size_t)d;
        else if (!strcmp(a, "--loss") && d < 1)
            o.loss = d;
        else if (!strcmp(a, "--latency") && d <= SIM_MAX_S * 1000)
            o.latency_ms = d;
        else if (!strcmp(a, "--jitter") && d <= SIM_MAX_S * 1000)
            o.jitter_ms = d;
        else if (!strcmp(a, "--threshold") && d >= 1)
            o.threshold = d;
        else if (!strcmp(a, "--fanout") && whole(d, 0, 8))
            o.fanout = (uint32_t)d;
        else if (!strcmp(a, "--bandwidth") && whole(d, 1, UINT32_MAX))
            o.bandwidth = (uint32_t)d;
        else if (!strcmp(a, "--monitors") && whole(d, 0, 8))
            o.monitors = (uint32_t)d;
        else if (!strcmp(a, "--partition") && whole(d, 0, SIM_MAX_S))
            o.partition_s = (uint64_t)d;
        else if (!strcmp(a, "--rack") && d > 0 && d < 100)
            o.rack_pct = d;
        else if (!strcmp(a, "--missed") && whole(d, 1, 1000))
            o.missed = (uint32_t)d;
        else if (!strcmp(a, "--window") && whole(d, 1, SIM_MAX_S))
            o.window_s = (uint64_t)d;
        else if (!strcmp(a, "--keys") && whole(d, 1, LOAD_PLAN_MAX_KEYS))
            o.load.keys = (uint32_t)d;
        else if (!strcmp(a, "--value-bytes") &&
                 whole(d, LOAD_PLAN_MIN_VALUE, 65507))
            o.load.value_bytes = (uint32_t)d;
        else if (!strcmp(a, "--load-seconds") &&
                 whole(d, 1, LOAD_PLAN_MAX_SECONDS))
            o.load.seconds = (uint32_t)d;
        else {
            fprintf(stderr, "sb-sim: unknown option or bad value: %s %s\n",
                    a, v);
            usage(stderr);
            return 2;
        }
        i++;
    }

    /* the reference wire has no eager push (the engine turns it off):
     * the header says so, as eval's does */
    if (o.wire == SB_WIRE_REFERENCE)
        o.fanout = 0;
    if (o.load.nrates && o.trial_opt) {
        fprintf(stderr, "sb-sim: %s measures the trials; it does not apply "
                "with --load\n", o.trial_opt);
        return 2;
    }
    if (!o.load.nrates && o.load_opt) {
        fprintf(stderr, "sb-sim: %s applies with --load only\n",
                o.load_opt);
        return 2;
    }
    if (o.load.nrates)
        return run_load(&o);
    /* from 512 nodes the trials share one cluster, each crashing a node
     * for good: half the nodes at most, so that the trials always find
     * a running node to set a key and another to crash */
    if (o.nodes >= 512 && !o.no_crash && o.trials > o.nodes / 2) {
        fprintf(stderr, "sb-sim: --trials %u: from 512 nodes the trials "
                "share one cluster and each crashes a node; at most %u "
                "(half the nodes), or --no-crash\n", o.trials, o.nodes / 2);
        return 2;
    }
    printf("sb-sim: %u nodes, interval %" PRIu64 " ms, max message %zu B, "
           "loss %.0f%%, latency %.1f ms, fanout %u, %u trials, seed %" PRIu64
           "\n", o.nodes, o.interval_ms, o.max_message, o.loss * 100,
           o.latency_ms, o.fanout, o.trials, o.seed);
    if (o.bandwidth)
        printf("  bandwidth cap %u B/s a node\n", o.bandwidth);
    result *r = calloc(o.trials, sizeof(*r));
    double *rounds = calloc(o.trials, sizeof(double));
    double *detect = calloc(o.trials, sizeof(double));
    double *pushes = calloc(o.trials, sizeof(double));
    double *ms = calloc(o.trials, sizeof(double));
    /* small clusters: a fresh cluster (seed, seed+1, ...) per trial;
     * large ones: one cluster, one crash after the other */
    bool fresh = o.nodes < 512;
    uint32_t clusters = fresh ? o.trials : 1;
    missed.cap = clusters * o.missed;
    missed.own = calloc(missed.cap + 1, sizeof(double));
    missed.all = calloc(missed.cap + 1, sizeof(double));
    missed.secs = calloc(missed.cap + 1, sizeof(double));
    if (!missed.own || !missed.all || !missed.secs) {
        fprintf(stderr, "sb-sim: out of memory\n");
        return 1;
    }
    totals t = { .converged = true, .trace = 0xcbf29ce484222325ull }, one;
    clock_t c0 = clock();
    for (uint32_t c = 0; c < clusters; c++) {
        if (run_cluster(&o, o.seed + c, c, fresh ? 1 : o.trials, r + c,
                        &one) != SB_OK)
            return 1;
        t.converged &= one.converged;
        if (one.converge_s > t.converge_s)
            t.converge_s = one.converge_s;
        t.bytes_per_node_s += one.bytes_per_node_s / clusters;
        t.packets_per_node_s += one.packets_per_node_s / clusters;
        t.refuted_per_node_min += one.refuted_per_node_min / clusters;
        t.memory_per_node += one.memory_per_node / clusters;
        if (one.scratch_peak > t.scratch_peak)
            t.scratch_peak = one.scratch_peak;
        t.gap_mean_ms += one.gap_mean_ms / clusters;
        t.gap_sd_ms += one.gap_sd_ms / clusters;
        t.false_downs += one.false_downs;
        t.rack_s = c ? worst(t.rack_s, one.rack_s) : one.rack_s;
        t.rack_n = one.rack_n;
        t.split_s = c ? worst(t.split_s, one.split_s) : one.split_s;
        t.heal_s = c ? worst(t.heal_s, one.heal_s) : one.heal_s;
        t.join_s = c ? worst(t.join_s, one.join_s) : one.join_s;
        t.known_s = c ? worst(t.known_s, one.known_s) : one.known_s;
        trace_bytes(&t.trace, &one.trace, sizeof(one.trace));
        t.traced += one.traced;
    }
    for (uint32_t k = 0; k < o.trials; k++) {
        rounds[k] = r[k].rounds;
        ms[k] = r[k].rounds < 0 ? -1 : r[k].rounds * (double)o.interval_ms;
        detect[k] = r[k].detect_s;
        pushes[k] = r[k].pushes;
    }
    printf("  %-22s %s after %.1f s (slowest of %u)\n", "start",
           t.converged ? "converged" : "NOT converged", t.converge_s,
           clusters);
    summary("update reaches all", rounds, o.trials, "intervals");
    summary("update reaches all", ms, o.trials, "ms");
    summary("push packets/update", pushes, o.trials, "");
    if (!o.no_crash)
        summary("crash seen by all", detect, o.trials, "s");
    printf("  %-22s %.0f B/node/s, %.1f packets/node/s\n", "steady state",
           t.bytes_per_node_s, t.packets_per_node_s);
    printf("  %-22s %.4f per node per minute, %.2f cluster-wide "
           "(steady window)\n",
           "refutations", t.refuted_per_node_min,
           t.refuted_per_node_min * o.nodes);
    printf("  %-22s %" PRIu64 " (leave events about live nodes)\n",
           "false downs", t.false_downs);
    printf("  %-22s %.0f B (engine accounting, whole cluster view, "
           "between calls)\n",
           "memory per node", t.memory_per_node);
    printf("  %-22s %zu B more at most (its scratch, freed as it "
           "returns)\n",
           "during a call", t.scratch_peak);
    if (o.rack_pct > 0)
        printf("  %-22s %u nodes (%.0f%%) at once: all seen down by all "
               "after %.2f s (worst of %u; -1: not within 600 s)\n",
               "rack crash", t.rack_n, o.rack_pct, t.rack_s, clusters);
    if (o.partition_s)
        printf("  %-22s %" PRIu64 " s: other side all down after %.1f s, "
               "after the heal all live with every key after %.1f s "
               "(worst of %u; -1: never)\n", "partition in halves",
               o.partition_s, t.split_s, t.heal_s, clusters);
    /* without monitors "known by all" is not measured, and -1 would
     * claim it failed */
    if (o.join && join_known_measured(&o))
        printf("  %-22s holds every node's state after %.3f s, known by "
               "all after %.3f s (worst of %u; -1: not within 60 s)\n",
               "a node joins", t.join_s, t.known_s, clusters);
    else if (o.join)
        printf("  %-22s holds every node's state after %.3f s, known by "
               "all not measured (no monitors) (worst of %u; -1: not "
               "within 60 s)\n", "a node joins", t.join_s, clusters);
    if (o.missed) {
        summary("missed: own steps", missed.own, missed.n, "");
        summary("missed: all steps", missed.all, missed.n, "");
        summary("missed: found after", missed.secs, missed.n, "s");
    }
    if (o.monitors && o.wire == SB_WIRE_SCUTTLEBUTT)
        printf("  %-22s mean %.1f ms, sd %.1f ms (monitors' estimates)\n",
               "beat gaps", t.gap_mean_ms, t.gap_sd_ms);
    if (o.trace)
        printf("  %-22s %016" PRIx64 " (%" PRIu64 " packets and events)\n",
               "trace", t.trace, t.traced);
    printf("  (%.1f s of CPU)\n", (double)(clock() - c0) / CLOCKS_PER_SEC);
    free(missed.own);
    free(missed.all);
    free(missed.secs);
    free(r);
    free(rounds);
    free(detect);
    free(pushes);
    free(ms);
    if (!t.converged) {
        fprintf(stderr, "sb-sim: a cluster did not converge within 600 s: "
                "its figures are not a converged cluster's\n");
        return 1;
    }
    return 0;
}
