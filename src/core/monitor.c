/*
 * Monitors (docs/failure-detector.md, section 9): the beats a node sends
 * the peers that watch it, the detector a monitor keeps for each peer it
 * watches, and the verdicts it writes into its own state and withdraws.
 *
 * Every node derives from its own view who watches whom (ring.h): its
 * subjects are its successors on the rings, its monitors its
 * predecessors, and past those accused, the next ones (below). Every
 * MONITOR_BEAT_INTERVALS intervals a node sends each monitor a BEAT, a
 * few bytes that nothing answers, carrying its heartbeat and its summary
 * (a monitor whose summary differs starts an exchange with it: at rest,
 * the beats are what finds a difference). A monitor whose subject's beat
 * is late probes it. A monitor keeps, for
 * each subject, a phi accrual detector over the beats' arrival times
 * (phi.h, normal model): the evidence is direct and as regular as the
 * sender's clock, whatever the size of the cluster. When a subject's phi
 * passes the threshold, and nothing newer of it has been heard, the
 * monitor writes a verdict into its own state (liveness.c has the key and
 * the rule), which spreads like any key: at once down the push trees, by
 * anti-entropy at worst. An observer holds a peer down once a majority of
 * the peer's monitors in its view hold verdicts against it that stand
 * (liveness.c has the rule). Monitors look past the accused (below): a
 * monitor whose subject a verdict names watches the next node too.
 *
 * A verdict names the newest heartbeat known of its subject, and ours:
 * with monitors a heartbeat is an incarnation, and the subject, which
 * reads our state like any other, refutes the verdict by moving its own
 * past it (liveness.c); we then withdraw it (the key deleted). A verdict
 * we wrote before we refuted one against ourselves is void, and withdrawn
 * too. A subject that never beats us is convicted after
 * MONITOR_UNPROVEN_INTERVALS (MONITOR_PAST_INTERVALS if it is ours only
 * by looking past the accused). A monitor that finds all its subjects
 * silent at once blames itself (its own link or clock) and withholds its
 * verdicts for a while. A node that holds a peer down, and is one of its
 * monitors, concurs with a verdict of its own.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * A node beats its monitors every MONITOR_BEAT_INTERVALS intervals: at
 * the default 4 rings, 13 datagrams a second at rest. The deviation
 * assumed of beat gaps is at least the interval divided by
 * MONITOR_SD_SHARE: jitter below it (scheduling, a loaded machine) is
 * noise, and at the default threshold a subject is convicted after about
 * MONITOR_BEAT_INTERVALS + 5.6 / MONITOR_SD_SHARE intervals of silence
 * (860 ms at 100 ms). A lost beat does not convict (a gap of two beats
 * is at phi 2.9); two lost in a row would, so from MONITOR_PROBE_PHI on
 * (610 ms of silence) the subject is probed MONITOR_LATE_PROBES times
 * every round (round.c), and an answer counts as a beat: at 10% loss,
 * a subject is convicted falsely when two beats and the ten probes of
 * five rounds, or their answers, are lost: about once in 1.6 billion
 * beats (once in 400,000 with one probe a round, which at 1024 nodes
 * came to about one verdict against a live node every 2.5 minutes).
 * docs/failure-detector.md, section 9, has the measurements.
 */
#define MONITOR_BEAT_INTERVALS 3
#define MONITOR_SD_SHARE 1.0
#define MONITOR_PROBE_PHI 3.0
#define MONITOR_LATE_PROBES 2 /* a round, to a subject whose beats are late */
/* Our beats stop once we have heard no one for this many intervals: a
 * node that can send but not receive must be found out, but one that a
 * flood or a burst of loss keeps from hearing much, for a while, must
 * not. */
#define MONITOR_DEAF_INTERVALS 10

/* The least deviation of beat gaps the detectors assume. */
static double monitor_min_sd(const sb_engine *e)
{
    return (double)e->cfg.interval_ns / MONITOR_SD_SHARE;
}

static watch *monitor_watch(sb_engine *e, uint64_t id)
{
    for (uint32_t i = 0; i < e->nwatch; i++)
        if (e->watch[i].id == id)
            return &e->watch[i];
    return NULL;
}

/* A subject that has not beaten us this many intervals after it became
 * ours is convicted: it is gone (it died before it beat us: young, or
 * before we became its monitor), or cut off from us (the other side of a
 * partition, where its old monitors are gone from our view). A live
 * subject that counts us among its monitors beats us within a round, so
 * from MONITOR_BEAT_INTERVALS on we probe it; an answer proves it alive
 * and reachable (its view differs from ours: it does not count us among
 * its monitors, as in a cluster still forming), and it gets as long
 * again. A live subject convicted anyway (its answers were lost, or came
 * later than the wait) refutes the verdict (liveness.c), and then gets
 * MONITOR_DOUBT_INTERVALS, twice as long at each refutation. 12
 * intervals: a node that dies young is seen down by all after about 1.25
 * s; 20 made it 2.04 s (docs/failure-detector.md, section 9). */
#define MONITOR_UNPROVEN_INTERVALS 12
/* A subject taken by looking past the accused learns of the verdicts
 * that made it ours as soon as we do, and beats us then if it lives: it
 * is convicted sooner. */
#define MONITOR_PAST_INTERVALS 6
/* How long our view is in doubt: after we refuted a verdict (we concur
 * with no one), and when all our subjects fell silent at once (we
 * withhold our verdicts). */
#define MONITOR_DOUBT_INTERVALS 20
#define MONITOR_REFUTED_DOUBLINGS 6

/* True if `id` is among the n of `ids`. */
static bool monitor_among(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* What a round read off the rings (our subjects, our monitors) holds
 * while no one is accused and no node joins or leaves the rings: its
 * stamp is rings.changes + 1 then, and 0 if it must be read again. */
static uint64_t monitor_stamp(const sb_engine *e, bool whole)
{
    return whole && sb_liveness_none_accused(e) ? e->rings.changes + 1 : 0;
}

static bool monitor_holds(const sb_engine *e, uint64_t stamp)
{
    return sb_liveness_none_accused(e) && stamp == e->rings.changes + 1;
}

/* Whether a verdict that counts names peer id in our view (liveness.c
 * keeps the flag). */
static bool monitor_accused(const void *u, uint64_t id)
{
    const sb_engine *e = u;
    const sb_peer *n = sb_state_find_id(&e->st, id);
    return n && n->accused;
}

/*
 * Looking past the accused. When most of the cluster dies at once, the
 * monitors of most of the dead are dead too: no verdict of theirs comes,
 * and the rule of a majority of monitors holds no one down. So a monitor
 * looks past a subject that a verdict names: on each ring it watches its
 * successor and, while the one it took is accused, the next; and
 * observers count, besides the verdicts of a peer's predecessors, those
 * of the first predecessor on each ring that is not accused
 * (liveness.c). Each dead node accused moves a live monitor further
 * along the run of the dead that follows it, however long the run (a
 * bound on the walk would stall there once that many accused in a row
 * waited for verdicts from beyond it: 98% of a cluster dead), and the
 * further the longer the run (monitor_past_step()); a live node accused
 * refutes, and the monitors look past it no more.
 */

/* A walk back from a peer on one ring, past the accused: its nearest
 * predecessor, and the last one the walk reached: the first that is not
 * accused (or, if all are, an accused one). */
typedef struct monitor_back {
    const sb_engine *e;
    uint32_t len;
    uint64_t nearest, last;
} monitor_back;

static bool monitor_back_step(void *u, uint64_t id)
{
    monitor_back *b = u;
    if (!b->len++)
        b->nearest = id;
    b->last = id;
    return monitor_accused(b->e, id);
}

/* Peer id's monitors in our view, each once, into out[SB_MONITORS_MAX]:
 * with `nearest`, its predecessors on the rings; with `past`, then on
 * each ring the first predecessor not accused. */
static uint32_t monitor_monitors(const sb_engine *e, uint64_t id,
                                 bool nearest, bool past, uint64_t *out)
{
    /* no one accused: each walk stops at the predecessor */
    if (sb_liveness_none_accused(e))
        return sb_rings_neighbours(&e->rings, e->cfg.monitors, id, false,
                                   out);
    monitor_back b[SB_MAX_RINGS];
    uint32_t m = 0;
    for (uint32_t i = 0; i < e->cfg.monitors; i++) {
        b[i] = (monitor_back){ .e = e };
        sb_rings_walk(&e->rings, i, id, false, monitor_back_step, &b[i]);
    }
    for (uint32_t i = 0; nearest && i < e->cfg.monitors; i++)
        if (b[i].len && !monitor_among(out, m, b[i].nearest))
            out[m++] = b[i].nearest;
    for (uint32_t i = 0; past && i < e->cfg.monitors; i++)
        if (b[i].len && !monitor_accused(e, b[i].last) &&
            !monitor_among(out, m, b[i].last))
            out[m++] = b[i].last;
    return m;
}

/*
 * We are among peer x's monitors on a ring when we are its nearest
 * predecessor there, or the first one not accused walking back from it:
 * then every node between us and x is accused, so x lies after us and
 * at the latest at the first node after us that is not accused. Outside
 * that arc on every ring, x has other monitors: a rejudge asks this
 * before it looks x's monitors up (sb_monitor_concur()), for each peer
 * held down, four walks back from each.
 */
bool sb_monitor_reach(const sb_engine *e, sb_reach *r, uint64_t id)
{
    uint64_t self = e->self->id;
    if (r->stamp != e->rings.changes + 1) {
        for (uint32_t i = 0; i < e->cfg.monitors; i++) {
            monitor_back b = { .e = e };
            sb_rings_walk(&e->rings, i, self, true, monitor_back_step, &b);
            r->to[i] = b.len && !monitor_accused(e, b.last) ? b.last : self;
        }
        r->stamp = e->rings.changes + 1;
    }
    for (uint32_t i = 0; i < e->cfg.monitors; i++)
        if (sb_rings_between(i, self, r->to[i], id))
            return true;
    return false;
}

uint32_t sb_monitor_past(const sb_engine *e, uint64_t id, uint64_t *out)
{
    return monitor_monitors(e, id, false, true, out);
}

uint32_t sb_monitor_monitors(const sb_engine *e, uint64_t id, uint64_t *out)
{
    /* ours: those our beats go to, while they hold (monitor_beat()) */
    if (id == e->self->id && monitor_holds(e, e->beat_rings)) {
        memcpy(out, e->beat_to, e->nbeat_to * sizeof(*out));
        return e->nbeat_to;
    }
    return monitor_monitors(e, id, true, true, out);
}

/* The subjects a round takes (monitor_take_subjects()), each with its
 * detector: on the stack while they are few, on the heap when a walk
 * goes past more accused than that. */
#define MONITOR_LOCAL (2 * SB_MAX_RINGS)
typedef struct monitor_list {
    sb_engine *e;
    uint64_t now;
    watch *at;                /* `local`, or on the heap */
    uint32_t n, cap;
    /* the walk under way: the nodes it visited, accused and not */
    uint32_t accused, taken;
    watch local[MONITOR_LOCAL];
} monitor_list;

/* Subject id, added once: the detector we keep of it, or a new one,
 * unproven until its first beat. NULL if out of memory. */
static watch *monitor_list_add(monitor_list *l, uint64_t id)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->at[i].id == id)
            return &l->at[i];
    if (l->n == l->cap) {
        bool local = l->at == l->local;
        watch *g = realloc(local ? NULL : l->at, 2 * l->cap * sizeof(*g));
        if (!g)
            return NULL;
        if (local)
            memcpy(g, l->local, l->n * sizeof(*g));
        l->at = g;
        l->cap *= 2;
    }
    const watch *w = monitor_watch(l->e, id);
    l->at[l->n] = w ? *w : (watch){ .id = id, .since = l->now };
    return &l->at[l->n++];
}

/*
 * A step of a walk from us: past the accused, and, the longer the run of
 * them, the further. Having passed `accused` in a row, the walk takes as
 * many nodes not accused (one at least), unless one of them shows it
 * lives (it beat us, or answered our probe): the run of the dead may go
 * on behind it. Our verdicts on those that stay silent make the run
 * longer, and the next step twice as long: a run of L dead is covered in
 * about log2(L) steps, not L. With one node accused (a crash), the walk
 * takes the one after it alone.
 */
static bool monitor_past_step(void *u, uint64_t id)
{
    monitor_list *l = u;
    watch *w = monitor_list_add(l, id); /* the first: ours already */
    if (!w)
        return false;
    if (monitor_accused(l->e, id)) {
        l->accused++;
        return true;
    }
    l->taken++;
    return l->taken < l->accused && !w->proven && !w->answered;
}

/* Our subjects in our view now, our successors first: those we watched
 * already keep their detectors. The slots grow while we look past
 * accused subjects, and shrink back after; if they cannot grow (out of
 * memory), the subjects past the first ones are not watched. With no one
 * accused they are our successors alone, the same until a node joins
 * or leaves the rings. */
static void monitor_take_subjects(sb_engine *e, uint64_t now)
{
    if (monitor_holds(e, e->watch_rings))
        return;
    bool none = sb_liveness_none_accused(e);
    monitor_list l = { .e = e, .now = now, .cap = MONITOR_LOCAL };
    l.at = l.local;
    uint64_t next[SB_MAX_RINGS];
    uint32_t nearest = sb_rings_neighbours(&e->rings, e->cfg.monitors,
                                           e->self->id, true, next);
    for (uint32_t i = 0; i < nearest; i++)
        monitor_list_add(&l, next[i]); /* room: MONITOR_LOCAL slots */
    /* accused ourselves (until we refute), we are no one's monitor past
     * the accused: observers look past us too */
    for (uint32_t i = 0; !none && !e->self->accused && i < e->cfg.monitors;
         i++) {
        l.accused = l.taken = 0;
        sb_rings_walk(&e->rings, i, e->self->id, true, monitor_past_step, &l);
    }
    for (uint32_t i = 0; i < l.n; i++)
        l.at[i].past = i >= nearest;
    uint32_t n = l.n;
    uint32_t cap = n > e->cfg.monitors ? n : e->cfg.monitors;
    if (n > e->watch_cap || cap < e->watch_cap) {
        watch *g = realloc(e->watch, cap * sizeof(*g));
        if (g) {
            e->watch = g;
            e->watch_cap = cap;
        } else if (n > e->watch_cap) {
            n = e->watch_cap;
        }
    }
    memcpy(e->watch, l.at, n * sizeof(*l.at));
    e->nwatch = n;
    e->watch_rings = monitor_stamp(e, n == l.n);
    if (l.at != l.local)
        free(l.at);
}

/* Beats go only to an address that has answered us: one that never
 * does (a node that is gone, or an address someone vouched for falsely)
 * gets our probes alone, which back off (exchange.c). */
static bool monitor_send_to(sb_engine *e, uint64_t id, uint8_t flags)
{
    const sb_peer *n = sb_state_find_id(&e->st, id);
    if (!n || n->self || !n->answered)
        return false;
    sb_writer w = sb_send_writer(e);
    sb_put_header(&w, SB_MSG_BEAT, e->cluster_id);
    sb_put_u8(&w, flags);
    sb_put_varint(&w, ++e->beats);
    sb_put_varint(&w, e->self->heartbeat);
    sb_put_u64(&w, sb_summary(e));
    sb_send_message(e, SB_TRAFFIC_LIVENESS, n->addr, &w);
    return true;
}

/* A farewell to the monitors we beat that no longer are ours, a beat to
 * those we have not beaten yet (a subject that has not beaten its
 * monitor is convicted after a while: it must not wait a whole beat
 * period), and, if `all`, a beat to each. e->beat_to: the monitors we
 * beat (one that has not answered us gets none, monitor_send_to()).
 * Once it holds them all, with no one accused, they stay ours until a
 * node joins or leaves the rings. */
static void monitor_beat(sb_engine *e, bool all)
{
    if (monitor_holds(e, e->beat_rings)) {
        for (uint32_t i = 0; all && i < e->nbeat_to; i++)
            monitor_send_to(e, e->beat_to[i], 0);
        return;
    }
    uint64_t ids[SB_MONITORS_MAX];
    uint32_t n = sb_monitor_monitors(e, e->self->id, ids);
    for (uint32_t i = 0; i < e->nbeat_to; i++)
        if (!monitor_among(ids, n, e->beat_to[i]))
            monitor_send_to(e, e->beat_to[i], SB_BEAT_FAREWELL);
    uint64_t beaten[SB_MONITORS_MAX];
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool before = monitor_among(e->beat_to, e->nbeat_to, ids[i]);
        bool sent = (all || !before) && monitor_send_to(e, ids[i], 0);
        if (before || sent)
            beaten[m++] = ids[i];
    }
    memcpy(e->beat_to, beaten, m * sizeof(*beaten));
    e->nbeat_to = m;
    e->beat_rings = monitor_stamp(e, m == n);
}

/* Writes (or, with deleted, withdraws) our verdict on peer `id`, naming
 * `heartbeat`, then judges the peer by it; false if the write failed (a
 * bound, or memory). */
static bool monitor_write(sb_engine *e, uint64_t id, uint64_t heartbeat,
                          bool deleted, uint64_t now)
{
    uint8_t key[VERDICT_KEY_LEN], value[VERDICT_VALUE_LEN];
    sb_liveness_verdict_key(key, id);
    for (int b = 0; b < 8; b++) {
        value[b] = (uint8_t)(heartbeat >> (56 - 8 * b));
        value[8 + b] = (uint8_t)(e->self->heartbeat >> (56 - 8 * b));
    }
    if (sb_apply_local(e, key, sizeof(key), deleted ? NULL : value,
                       deleted ? 0 : sizeof(value), deleted, now) != SB_OK)
        return false;
    long j = sb_peer_find_key(e->self, key, sizeof(key));
    sb_liveness_verdict(e, e->self, e->self->keys[j], now);
    return true;
}

static verdict *monitor_verdict(sb_engine *e, uint64_t id)
{
    for (uint32_t i = 0; i < e->nverdicts; i++)
        if (e->verdicts[i].id == id)
            return &e->verdicts[i];
    return NULL;
}

/* Withdraws verdict v; its slot then holds another (if the key could not
 * be deleted, it stays, to be tried again at the next review). */
static void monitor_withdraw(sb_engine *e, verdict *v, uint64_t now)
{
    if (monitor_write(e, v->id, 0, true, now))
        *v = e->verdicts[--e->nverdicts];
}

static void monitor_record(sb_engine *e, uint64_t id, uint64_t hb,
                           uint64_t now);

/*
 * Convicts the subject of w, unless we hold a verdict on it already, or
 * news of its heartbeat moving on came lately (the beats alone were
 * lost). The verdict names the newest heartbeat we know of it, by beat or
 * by gossip: its last beats may have been lost before it died, and news of
 * the heartbeats it reached must not refute it.
 */
static void monitor_convict(sb_engine *e, const watch *w, uint64_t now)
{
    const sb_peer *n = sb_state_find_id(&e->st, w->id);
    if (!n || e->self->leaving || monitor_verdict(e, w->id))
        return;
    /* (a subject is on the rings, live: its detector is there to read) */
    bool lately = n->status == SB_STATUS_LIVE &&
                  n->phi.last_ns + 2 * e->cfg.interval_ns > now;
    if (!sb_liveness_verdict_stands(e, w->heartbeat, n) && lately)
        return;
    monitor_record(e, w->id,
                   n->heartbeat > w->heartbeat ? n->heartbeat : w->heartbeat,
                   now);
}

/* Writes our verdict on `id`, naming `hb`, and keeps it in our list. */
static void monitor_record(sb_engine *e, uint64_t id, uint64_t hb,
                           uint64_t now)
{
    if (e->nverdicts == e->verdicts_cap) {
        uint32_t cap = e->verdicts_cap ? 2 * e->verdicts_cap : 8;
        verdict *g = realloc(e->verdicts, cap * sizeof(*g));
        if (!g)
            return;
        e->verdicts = g;
        e->verdicts_cap = cap;
    }
    if (!monitor_write(e, id, hb, false, now))
        return;
    e->verdicts[e->nverdicts++] = (verdict){ id, hb, e->self->heartbeat };
    e->stats.verdicts++;
}

/*
 * Peer x is down for us (sb_liveness_held_down()). If we are one of its
 * monitors in our view, with no verdict of our own and no fresh beat of
 * it, we sign too: an
 * observer whose view of x's monitors lags ours (they moved as others
 * went down, in a partition) counts the verdicts of the monitors it
 * sees, and those may be ours. Not while our own view is in doubt (we
 * refuted a verdict lately: we were cut off, and what we hold down may
 * be alive on the other side of a partition that has healed).
 */
void sb_monitor_concur(sb_engine *e, const sb_peer *x, uint64_t now)
{
    uint8_t key[VERDICT_KEY_LEN];
    sb_liveness_verdict_key(key, x->id);
    long j = sb_peer_find_key(e->self, key, sizeof(key));
    /* (our own verdict being written is what convicted it) */
    if (!e->cfg.monitors || e->alone || e->self->leaving ||
        (j >= 0 && !e->self->keys[j]->deleted) || monitor_verdict(e, x->id) ||
        now - e->refuted_at < MONITOR_DOUBT_INTERVALS * e->cfg.interval_ns)
        return;
    uint64_t m[SB_MONITORS_MAX];
    uint32_t nm = sb_monitor_monitors(e, x->id, m);
    if (!monitor_among(m, nm, e->self->id))
        return;
    const watch *w = monitor_watch(e, x->id);
    double min_sd = monitor_min_sd(e);
    if (w && w->proven && sb_phin_value(&w->phi, now, min_sd) <= 1.0)
        return; /* we hear it */
    monitor_record(e, x->id, x->heartbeat, now);
}

/*
 * Judges our subjects: those whose phi passed the threshold are
 * convicted, and those that never beat us within
 * MONITOR_UNPROVEN_INTERVALS of becoming ours (MONITOR_PAST_INTERVALS
 * for those ours only past the accused). Unless every one that beat
 * us is in doubt at once (phi above 1: a beat more than 90% likely to
 * have come by now) and, with those past their wait that never did, two
 * at least are silent: a monitor whose subjects fall silent together is
 * more likely cut off itself, paused or late than they all dead (a node
 * answering 1 s late refutes the verdicts on it, and none of its
 * subjects, all new again, beats it within the wait).
 * It withholds its verdicts for MONITOR_DOUBT_INTERVALS, and each of
 * them has other monitors. A silence that lasts longer while we
 * still hear others is theirs (the other side of a partition). A node
 * that hears no one judges no one (liveness.c), and one that has heard
 * no one for a beat period (a live subject beats at least that often)
 * convicts no unproven subject and counts every subject in doubt: the
 * silence may be its own (a link that fails one way: right after it
 * started, when its subjects have not beaten it yet, or only one has;
 * or when the first phi passes, those that beat last still below 1).
 */
static void monitor_judge(sb_engine *e, uint64_t now)
{
    if (e->alone)
        return;
    double min_sd = monitor_min_sd(e);
    uint32_t proven = 0, doubted = 0, silent = 0, over = 0;
    uint64_t unproven_ns = MONITOR_UNPROVEN_INTERVALS * e->cfg.interval_ns;
    uint64_t past_ns = MONITOR_PAST_INTERVALS * e->cfg.interval_ns;
    uint64_t doubt_ns = MONITOR_DOUBT_INTERVALS * e->cfg.interval_ns;
    uint64_t beat_ns = MONITOR_BEAT_INTERVALS * e->cfg.interval_ns;
    bool unheard = sb_monitor_unheard(e, now, 1);
    for (uint32_t i = 0; i < e->nwatch; i++) {
        watch *w = &e->watch[i];
        if (!w->proven) {
            uint64_t wait = (w->refuted ? doubt_ns
                             : w->past  ? past_ns
                                        : unproven_ns)
                            << w->refuted;
            w->guilty = now - w->since >= wait && !unheard;
            over += w->guilty;
            silent += w->guilty || unheard;
            sb_peer *n = sb_state_find_id(&e->st, w->id);
            if (!w->guilty && n && now - w->since >= beat_ns)
                sb_exchange_probe(e, n, false, now);
            continue;
        }
        proven++;
        double phi = sb_phin_value(&w->phi, now, min_sd);
        doubted += phi > 1.0 || unheard;
        sb_peer *n = phi > MONITOR_PROBE_PHI && phi <= e->cfg.phi_threshold
                         ? sb_state_find_id(&e->st, w->id)
                         : NULL;
        for (int k = 0; n && k < MONITOR_LATE_PROBES; k++)
            sb_exchange_probe(e, n, true, now); /* beats are late */
        w->guilty = phi > e->cfg.phi_threshold;
        over += w->guilty;
    }
    if (!over) {
        e->withhold_since = 0; /* the doubt is over: all are heard */
        e->withhold_deaf = false;
        return;
    }
    if (e->withhold_since && unheard)
        e->withhold_deaf = true;
    if (doubted < proven || doubted + silent < 2) {
        if (e->withhold_since && e->withhold_deaf) {
            /* we hear our subjects again after hearing no one: those
             * still silent were, like us, cut off (not the other side of
             * a partition, where we heard our own side all along); they
             * get as long as new subjects to beat us */
            for (uint32_t i = 0; i < e->nwatch; i++)
                if (e->watch[i].guilty && e->watch[i].proven) {
                    e->watch[i].proven = false;
                    e->watch[i].since = now;
                    e->watch[i].guilty = false;
                    over--;
                }
        }
        e->withhold_since = 0;
        e->withhold_deaf = false;
    } else if (!e->withhold_since) {
        e->withhold_since = now;
    }
    if (e->withhold_since && now - e->withhold_since < doubt_ns) {
        e->stats.verdicts_withheld += over;
        return;
    }
    for (uint32_t i = 0; i < e->nwatch; i++)
        if (e->watch[i].guilty)
            monitor_convict(e, &e->watch[i], now);
}

/* Our verdicts that no longer stand (their subject refuted them) or
 * whose subject we forgot are withdrawn. A subject that refuted us gets
 * MONITOR_DOUBT_INTERVALS to beat us, twice as long at each refutation
 * until a beat comes: it lives, and either holds a view in
 * which we are not its monitor (we are down in it, after a partition)
 * until our own refutations reach it, or its beats cannot reach us (a
 * link that fails one way), which costs it a refutation every
 * 2^MONITOR_REFUTED_DOUBLINGS such waits at most. */
static void monitor_review(sb_engine *e, uint64_t now)
{
    for (uint32_t i = 0; i < e->nverdicts;) {
        verdict *v = &e->verdicts[i];
        const sb_peer *n = sb_state_find_id(&e->st, v->id);
        uint32_t before = e->nverdicts;
        watch *w = monitor_watch(e, v->id);
        if (n && w && !sb_liveness_verdict_stands(e, v->heartbeat, n)) {
            w->proven = false;
            w->since = now;
            if (w->refuted < MONITOR_REFUTED_DOUBLINGS)
                w->refuted++;
        }
        if (!n || !sb_liveness_verdict_stands(e, v->heartbeat, n) ||
            v->own < e->self->heartbeat)
            monitor_withdraw(e, v, now);
        if (e->nverdicts == before)
            i++; /* kept (or its key could not be deleted yet) */
    }
}

/* `periods` beat periods without a datagram (not sb_liveness_deaf(),
 * whose few rounds pass between the beats of a node at rest): our
 * subjects beat us at least once a period. */
bool sb_monitor_unheard(const sb_engine *e, uint64_t now, uint32_t periods)
{
    return now - e->last_heard >
           (uint64_t)periods * MONITOR_BEAT_INTERVALS * e->cfg.interval_ns;
}

/* The round's part: our subjects taken again and judged, our verdicts
 * reviewed, and every MONITOR_BEAT_INTERVALS intervals our beats (in
 * between, to new monitors only; none while we hear no one). */
void sb_monitor_round(sb_engine *e, uint64_t now)
{
    if (!e->cfg.monitors)
        return;
    monitor_take_subjects(e, now);
    monitor_review(e, now);
    monitor_judge(e, now);
    /* our refutation voided our verdicts, on the dead too, and for
     * MONITOR_DOUBT_INTERVALS we signed none: now we may, where we are a
     * monitor of a peer held down (sb_liveness_rejudge() concurs), or a
     * node that judges it afresh (a newcomer) would count no verdict */
    if (e->concur_due &&
        now - e->refuted_at >= MONITOR_DOUBT_INTERVALS * e->cfg.interval_ns) {
        e->concur_due = false;
        e->rejudge = true;
    }
    bool all = now >= e->next_beat;
    if (now - e->last_heard <= MONITOR_DEAF_INTERVALS * e->cfg.interval_ns)
        monitor_beat(e, all);
    if (all) {
        /* on their own grid, so that beats do not drift a round late
         * behind late ticks */
        uint64_t period = MONITOR_BEAT_INTERVALS * e->cfg.interval_ns;
        e->next_beat = sb_add_sat(e->next_beat, period);
        if (e->next_beat <= now)
            e->next_beat = sb_add_sat(now, period);
    }
}

/* A BEAT from `e->from`: a member's, newer than the last we took from it. */
void sb_monitor_recv(sb_engine *e, const sb_msg *m, uint64_t now)
{
    sb_peer *n = sb_state_find_addr(&e->st, e->from, strlen(e->from));
    if (!e->cfg.monitors || !n || n->self) {
        e->stats.drops[SB_DROP_UNSOLICITED]++;
        return;
    }
    if (m->beat <= n->beat)
        return; /* a duplicate or a replay */
    n->beat = m->beat;
    watch *w = monitor_watch(e, n->id);
    if (w && (m->flags & SB_BEAT_FAREWELL)) {
        w->proven = false;
        w->since = now; /* our views differ: time to agree */
    } else if (w && !w->proven) {
        sb_phin_reset(&w->phi, now,
                      MONITOR_BEAT_INTERVALS * e->cfg.interval_ns);
        w->proven = true;
        w->refuted = 0;
    } else if (w) {
        sb_phin_arrival(&w->phi, now, e->cfg.phi_window);
    }
    if (w && m->heartbeat > w->heartbeat)
        w->heartbeat = m->heartbeat;
    /* at rest, the beats are where a difference shows: we start an
     * exchange with the subject at our next round (round.c) */
    if (!sb_summary_compare(e, m->summary, now))
        e->differs = n->id;
    /* our verdict, if any, stays until its subject refutes it: observers
     * that hold it down take it back only when its heartbeat moves */
}

/* We were convicted and refuted it: others judged our view wrong (we
 * were paused, or cut off), so what we have heard of our subjects is
 * doubtful too. Each gets as long as a new one to beat us; the verdicts
 * we wrote before are void (liveness.c counts a verdict only at its
 * writer's current heartbeat) and withdrawn at the next review. */
void sb_monitor_doubt(sb_engine *e, uint64_t now)
{
    for (uint32_t i = 0; i < e->nwatch; i++) {
        e->watch[i].proven = false;
        e->watch[i].since = now;
    }
}

/* An answer came from peer n's address (an ACK or ACK2 echoing our
 * token): if n is a subject that has not beaten us, it lives and hears
 * us, and gets as long again to beat us; if its beats are late (we probed
 * it), the answer counts as one. */
void sb_monitor_answered(sb_engine *e, const sb_peer *n, uint64_t now)
{
    watch *w = monitor_watch(e, n->id);
    if (!w)
        return;
    if (!w->proven) {
        w->since = now;
        w->answered = true;
    } else if (sb_phin_value(&w->phi, now, monitor_min_sd(e)) > MONITOR_PROBE_PHI)
        sb_phin_arrival(&w->phi, now, e->cfg.phi_window);
}

/* We could not hear beats while we were paused: neither the next beat of
 * a subject that beat us, nor the first of one that has not yet (its
 * wait, counted from `since`, is our running time:
 * not moved, a subject taken just before a long pause was convicted at
 * once when it ended). */
void sb_monitor_forgive_pause(sb_engine *e, uint64_t pause, uint64_t now)
{
    for (uint32_t i = 0; i < e->nwatch; i++) {
        watch *w = &e->watch[i];
        w->phi.last_ns = sb_past_pause(w->phi.last_ns, pause, now);
        if (!w->proven)
            w->since = sb_past_pause(w->since, pause, now);
    }
}

uint32_t sb_engine_beat_gaps(const sb_engine *e, double *mean_ns,
                             double *sd_ns)
{
    uint32_t n = 0;
    *mean_ns = *sd_ns = 0.0;
    for (uint32_t i = 0; i < e->nwatch; i++) {
        const sb_phi_normal *p = &e->watch[i].phi;
        if (!e->watch[i].proven || p->count < 2)
            continue;
        *mean_ns += p->mean_ns;
        *sd_ns += sqrt(p->var_ns2);
        n++;
    }
    if (n) {
        *mean_ns /= n;
        *sd_ns /= n;
    }
    return n;
}
