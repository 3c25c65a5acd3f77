/*
 * The round: what a node sends every round (one SYN to a live peer,
 * probes of peers down or unproven, of more peers while it hears no one,
 * and SYNs to seeds), and the SYN that greets an address to join.
 */
#include "internal.h"

/* A peer down or joining: one to probe now and then. */
static bool round_unreachable(const sb_peer *n)
{
    return !n->self && (n->status == SB_STATUS_DOWN ||
                        n->status == SB_STATUS_JOINING);
}

/*
 * Seeds. Alone (no live peer), we ask the callback for seeds again and
 * contact every one. Otherwise, as Cassandra does, if the peer of this
 * round was not a seed (or fewer nodes are live than there are seeds) we
 * contact a random seed with probability seeds / (live + unreachable),
 * so that a partitioned cluster heals through its seeds.
 */
static void round_seeds(sb_engine *e, const sb_peer *peer, uint32_t nlive,
                        uint32_t nunreach, sb_writer *syn, uint64_t now)
{
    if (!peer) {
        sb_seeds_fetch(e);
        for (size_t i = 0; i < e->nseeds; i++)
            if (e->seeds[i])
                sb_exchange_send_padded_syn(e, e->seeds[i], syn,
                                            SB_SYN_PADDED_SIZE, now);
        return;
    }
    if (!e->nseeds || (sb_seeds_has(e, peer->addr) && nlive >= e->nseeds))
        return;
    const char *s = sb_seeds_chance(e, nlive + nunreach);
    if (s)
        sb_exchange_send_padded_syn(e, s, syn, SB_SYN_PADDED_SIZE, now);
}

/* An address to join gets what a seed gets: a SYN with our digest,
 * padded (sb_wire_ops.greet). */
void sb_round_greet(sb_engine *e, const char *to, uint64_t now)
{
    sb_writer syn = sb_send_writer(e);
    sb_exchange_write_syn(e, &syn, false, false, now);
    sb_exchange_send_padded_syn(e, to, &syn, SB_SYN_PADDED_SIZE, now);
}

/* A change (ours, or news we took) in the last RECENT_ROUNDS. */
static bool round_changed_lately(const sb_engine *e, uint64_t now)
{
    return e->recent_head &&
           now - e->recent[(e->recent_head - 1) % RECENT].at <=
               RECENT_ROUNDS * e->round_ns;
}

/*
 * Resting: quiet (sb_exchange_quiet()), and nothing changed in the last
 * RECENT_ROUNDS; then only one round in EXCHANGES * QUIET_SYN_INTERVALS
 * sends a SYN to a live peer: at rest a node sends its beats, which carry
 * its summary, and a quiet SYN now and then, which feeds the peers'
 * fallback detectors (liveness.c). Until then, a quiet SYN every round
 * finds a node a push missed.
 */
static bool round_resting(sb_engine *e, uint64_t now)
{
    return sb_exchange_quiet(e) && !round_changed_lately(e, now) &&
           e->stats.rounds % (EXCHANGES * QUIET_SYN_INTERVALS);
}

/* A peer the probes of a node that hears no one may go to: live, or
 * held down only because we heard no one (liveness.c). */
static bool round_reachable(const sb_peer *n)
{
    return sb_exchange_live_peer(n) || n->alone_down;
}

/* Probes x, if it is one the probes of a node that hears no one may go
 * to, other than `peer` (the round's), and within its backoff. */
static bool round_reach_one(sb_engine *e, const sb_peer *peer, sb_peer *x,
                            sb_writer *syn, uint64_t now)
{
    if (!x || x == peer || !round_reachable(x) ||
        !sb_liveness_may_probe(x, now))
        return false;
    sb_exchange_send_probe(e, x, syn, now);
    return true;
}

/*
 * We have heard no one for a while: ROUND_REACH probes of live peers
 * (or, once we take ourselves to be alone, of those we hold down for
 * it), each within its backoff, not to `peer` (the round's): first those
 * we heard from last, then the next ones in turn (from an offset of our
 * own, so that nodes do not all try the same peers first). When most of
 * the cluster has died at once, the few left alive hear little of one
 * another (their subjects and monitors are dead): so they find one
 * another, and keep in touch, before they would take themselves to be
 * alone and hold everyone down, or soon after. In turn, not at random:
 * the dead, probed once, wait out their backoff, and the probes move on
 * to peers not yet tried; random picks tried the same ones again, and
 * left a survivor that none of the others reached to take itself alone.
 */
static void round_reach(sb_engine *e, const sb_peer *peer, sb_writer *syn,
                        uint64_t now)
{
    uint32_t most = e->st.count / ROUND_REACH_ROUNDS + 1, sent = 0;
    if (most < ROUND_REACH)
        most = ROUND_REACH;
    for (uint32_t i = 0; i < e->nheard && sent < most; i++)
        sent += round_reach_one(e, peer,
                                sb_state_find_id(&e->st, e->heard[i]), syn,
                                now);
    uint32_t from = (uint32_t)e->self->id;
    for (uint32_t k = 0; k < e->st.count && sent < most; k++)
        sent += round_reach_one(
            e, peer, e->st.peers[(from + e->reach_next++) % e->st.count], syn,
            now);
}

/* The round's messages: one SYN to a random live peer (or to the subject
 * whose beat showed a difference; while quiet, one in EXCHANGES *
 * QUIET_SYN_INTERVALS rounds), while we hear no one probes of more peers
 * (round_reach()), now and then a probe of a down or unproven peer (as
 * often as its backoff allows, sb_liveness_probed()), and to seeds
 * (round_seeds()). */
void sb_round(sb_engine *e, uint64_t now)
{
    /* without monitors, the heartbeat is the sign of life: it moves every
     * round, but not while we hear no one (we can send but not receive,
     * or we are cut off), so that our peers see what we are: not part of
     * the cluster (docs/failure-detector.md, section 1). With monitors,
     * our beats are the sign of life and the heartbeat moves only to
     * refute a verdict (liveness.c): the state stays at rest. */
    if (!e->cfg.monitors && !sb_liveness_deaf(e, now)) {
        e->self->heartbeat++;
        sb_state_touch(&e->st, e->self);
    }
    e->descents = 0;
    sb_state_tidy(&e->st);
    sb_sweep_tidy(e, now);
    sb_liveness_alone(e, now);
    sb_liveness_rejudge(e, now);
    sb_monitor_round(e, now);
    /* a subject whose beat showed another summary gets a full SYN, even
     * at rest (a beat that agreed since does not undo it) */
    sb_peer *peer = e->differs ? sb_state_find_id(&e->st, e->differs) : NULL;
    e->differs = 0;
    /* a descent into ranges goes on with the peer that differed there,
     * unless we agree again */
    bool agree = sb_exchange_quiet(e);
    if (agree)
        e->nranges = 0;
    sb_range_tidy(e);
    if (!peer && e->nranges)
        peer = sb_state_find_id(&e->st, e->range_peer);
    if (peer && (!sb_exchange_live_peer(peer) || !peer->answered))
        peer = NULL;
    bool quiet = !peer && agree;
    bool resting = !peer && round_resting(e, now);
    sb_writer syn = sb_send_writer(e);
    sb_exchange_write_syn(e, &syn, quiet, true, now);
    uint32_t nlive = e->nstatus[SB_STATUS_LIVE] - 1; /* self */
    uint32_t nunreach =
        e->nstatus[SB_STATUS_DOWN] + e->nstatus[SB_STATUS_JOINING];
    if (!peer)
        peer = sb_liveness_random(e, sb_exchange_live_peer, nlive);
    if (peer && peer->answered && !resting) {
        sb_exchange_send_syn(e, SB_TRAFFIC_EXCHANGE, peer->addr, &syn, now);
    } else if (peer && !resting && sb_liveness_may_probe(peer, now)) {
        /* live by word of others only, so far */
        sb_exchange_send_probe(e, peer, &syn, now);
    }
    /* heard no one for two beat periods: a few more live peers, each
     * within its backoff (a node whose subjects all died at once, with
     * most of the cluster, hears the living so before it would take
     * itself to be alone and hold them all down, liveness.c; one beat
     * period would be too short with one ring, where a subject's beat
     * that comes late leaves us unheard for a moment) */
    if (e->cfg.monitors && sb_monitor_unheard(e, now, ROUND_REACH_BEATS))
        round_reach(e, peer, &syn, now);
    /* now and then a down or unproven peer, to notice it coming back */
    if (nunreach &&
        sb_rng_unit(&e->rng) < (double)nunreach / (double)(nlive + 1)) {
        sb_peer *x = sb_liveness_random(e, round_unreachable, nunreach);
        if (x && sb_liveness_may_probe(x, now))
            sb_exchange_send_probe(e, x, &syn, now);
    }
    /* a monitor of ours that never answered us gets no beat (monitor.c)
     * but probes, until it answers */
    uint64_t monitors[SB_MONITORS_MAX];
    uint32_t nm = sb_monitor_monitors(e, e->self->id, monitors);
    for (uint32_t i = 0; i < nm; i++) {
        sb_peer *m = sb_state_find_id(&e->st, monitors[i]);
        if (m && m != peer && !m->answered &&
            sb_liveness_may_probe(m, now))
            sb_exchange_send_probe(e, m, &syn, now);
    }
    if (!peer || !resting) /* at rest, seeds at the quiet SYNs' pace */
        round_seeds(e, peer, nlive, nunreach, &syn, now);
    /* a descent into ranges goes on in more chains than the round's SYN */
    sb_exchange_lanes(e, now);
}
