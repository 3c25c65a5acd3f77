/*
 * Announcing: news of members we did not know, or fresh keys from a
 * push, told at once to a few live peers by a SYN of its own, between
 * the rounds.
 */
#include "internal.h"

/* A live peer whose address answered us: one news is told to. */
static bool announce_answered_live(const sb_peer *n)
{
    return sb_exchange_live_peer(n) && n->answered;
}

/* The rank at place `place` of an array shuffled in place that started
 * as 0, 1, 2, ...: the places moved so far are at[0..*touched), holding
 * rank[0..*touched). */
static uint32_t *announce_shuffled(uint32_t *at, uint32_t *rank,
                                   uint32_t *touched, uint32_t place)
{
    for (uint32_t i = 0; i < *touched; i++)
        if (at[i] == place)
            return &rank[i];
    at[*touched] = place;
    rank[*touched] = place;
    return &rank[(*touched)++];
}

/* When the announcement of sb_announce() is due: UINT64_MAX if
 * there is no news. */
uint64_t sb_announce_due(const sb_engine *e)
{
    if (!e->announce)
        return UINT64_MAX;
    if (e->announce_members && e->members_at < e->announce_at)
        return e->members_at;
    return e->announce_at;
}

/*
 * We learned of members we did not know (a node joined, or we did): a
 * full SYN at once to 2 x push_fanout random live peers that answered us,
 * which learn of them from our ACK2 and do the same; at most once a
 * round, the members learned since sharing it. A join is known by all in
 * a few hops instead of a few rounds. The full SYNs and the quiet ones
 * below each go at most once a round, on timers of their own: the quiet
 * ones follow every push a node gets, and a join must not wait for a
 * round after the last of them. Only answers make members known
 * (apply.c), and these SYNs go to members: no address anyone vouched for
 * gets more than the rounds send it. Fresh keys from a push: the same,
 * but a quiet SYN (its summary alone), which a peer the push trees missed
 * answers, and our ACK2 offers it the news (lazy repair of the trees); a
 * peer that has the news too answers nothing. Each node the trees missed
 * gets about 2 x push_fanout such SYNs, so that at 10% loss one of their
 * three-leg exchanges almost always gets through before the next round
 * (docs/protocol.md, section 3, has the measurements).
 */
void sb_announce(sb_engine *e, uint64_t now)
{
    bool full = e->announce_members && now >= e->members_at;
    uint64_t next = sb_add_sat(now, e->round_ns);
    e->announce_at = next;
    if (full)
        e->members_at = next;
    /* news of members not told in full yet stays due, at its own time */
    e->announce = e->announce_members = e->announce_members && !full;
    uint32_t nlive = e->nstatus[SB_STATUS_LIVE] - 1; /* self */
    if (!e->cfg.push_fanout || !nlive)
        return;
    sb_writer syn = sb_send_writer(e);
    sb_exchange_write_syn(e, &syn, !full, false, now);
    /* news that each node passes to f others misses about e^-f of them,
     * which the rounds reach later */
    uint32_t f = 2 * e->cfg.push_fanout;
    if (f > ANNOUNCE_MAX)
        f = ANNOUNCE_MAX;
    /* drawn from the live peers that answered us, without repeats: at
     * rest most peers have not (we talk to our monitors, our subjects and
     * a few more), so drawing from all of them and skipping those would
     * find too few. The draws are those of a partial shuffle of the m
     * peers that did, played on their ranks (a shuffle touches at most 2f
     * places), so nothing of a slot per peer is needed. */
    uint32_t m = 0;
    for (uint32_t i = 0; i < e->st.count; i++)
        m += announce_answered_live(e->st.peers[i]);
    if (f > m)
        f = m;
    uint32_t at[2 * ANNOUNCE_MAX], rank[2 * ANNOUNCE_MAX], touched = 0;
    uint32_t pick[ANNOUNCE_MAX];
    for (uint32_t k = 0; k < f; k++) {
        uint32_t j = k + (uint32_t)sb_rng_below(&e->rng, m - k);
        uint32_t *rj = announce_shuffled(at, rank, &touched, j);
        uint32_t *rk = announce_shuffled(at, rank, &touched, k);
        pick[k] = *rj;
        *rj = *rk;
        *rk = pick[k];
    }
    /* the picks' peers, in the order drawn: the SYN is written, so
     * scratch.peers is free */
    sb_peer **to = e->scratch.peers;
    for (uint32_t i = 0, r = 0; i < e->st.count && f; i++) {
        sb_peer *n = e->st.peers[i];
        if (!announce_answered_live(n))
            continue;
        for (uint32_t k = 0; k < f; k++)
            if (pick[k] == r)
                to[k] = n;
        r++;
    }
    for (uint32_t k = 0; k < f; k++)
        sb_exchange_send_syn(e, SB_TRAFFIC_EXCHANGE, to[k]->addr, &syn, now);
}
