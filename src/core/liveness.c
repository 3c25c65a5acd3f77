/*
 * Liveness: peers added and removed, their statuses and the events they
 * give, conviction by the failure detector, forgetting, tombstone collection.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Reports one event. The order an application sees for a node: JOIN,
 * then an UPDATE for each of its keys, then its changes, then LEAVE. Key
 * events of a node that is not live are not reported: state may arrive
 * before proof of life, and a node that comes back is reported again
 * with all its keys.
 */
void sb_liveness_emit(sb_engine *e, sb_event_type type, const sb_peer *n,
                      const sb_key *k)
{
    if (!e->cfg.on_event ||
        (k && (n->status != SB_STATUS_LIVE ||
               sb_liveness_reserved(k->data, k->key_len))))
        return;
    sb_event ev = {
        .type = type,
        .addr = n->addr,
        .generation = n->generation,
        .status = (sb_status)n->status,
    };
    if (k) {
        ev.key = (const char *)k->data;
        ev.key_len = k->key_len;
        if (type == SB_EVENT_UPDATE) {
            ev.value = (const char *)sb_key_value(k);
            ev.value_len = k->value_len;
        }
    }
    e->cfg.on_event(e->cfg.userdata, &ev);
}

/*
 * The least mean gap between heartbeats the detector may assume. Where a
 * peer hears from another only by direct contact (the reference's
 * exchange; ours with monitors, where the detector is fed by the peer's
 * own datagrams), only when one of them picks the other, about once or
 * twice in (peers) rounds, the gaps grow with the cluster: a detector that
 * learned only the short gaps of a cluster still forming convicts healthy
 * peers (a defect of the reference). Its mean is kept at least
 * gap_per_peer rounds per peer (DIRECT_GAP_PER_PEER with monitors). Our
 * exchange without monitors: 0, no floor.
 */
#define DIRECT_GAP_PER_PEER (EXCHANGES * QUIET_SYN_INTERVALS)

double sb_liveness_least_gap(const sb_engine *e)
{
    uint32_t peers =
        e->nstatus[SB_STATUS_LIVE] + e->nstatus[SB_STATUS_JOINING] - 1;
    double per = e->cfg.monitors ? DIRECT_GAP_PER_PEER : e->wire->gap_per_peer;
    return (double)e->round_ns * peers * per;
}

/*
 * The threshold a peer's phi is judged by (sb_wire_ops.threshold_scale).
 * With monitors, this detector is the fallback for what they cannot
 * settle (views that differ where verdicts cannot reach: the smaller side
 * of a partition): fed only by the peer's own datagrams (at rest, a
 * quiet SYN every QUIET_SYN_INTERVALS to a random peer: a gap of about
 * 40 rounds a peer), it convicts only after FALLBACK_SCALE times the
 * threshold, at 16 nodes and 100 ms after about 18 minutes of silence,
 * at 64 nodes about 77. (The chance that a healthy peer's gap reaches
 * it is about e^-37.)
 */
#define FALLBACK_SCALE 2.0

double sb_liveness_threshold(const sb_engine *e)
{
    return e->cfg.phi_threshold * e->wire->threshold_scale *
           (e->cfg.monitors ? FALLBACK_SCALE : 1.0);
}

/* A datagram came from peer n's own address: with monitors, that is what
 * the fallback detector lives on (heartbeats stand still). */
void sb_liveness_contact(sb_engine *e, sb_peer *n, uint64_t now)
{
    if (!e->cfg.monitors || n->self || n->status != SB_STATUS_LIVE)
        return;
    sb_phi_heartbeat(&n->phi, now, e->cfg.phi_window);
    sb_liveness_refresh(e, n);
}

/*
 * How long a peer named in a digest may stay unproven (never heard from
 * directly) where liveness comes from direct contact: as long as a live
 * peer's silence may last, at the least mean gap (but two intervals at
 * least, the reference's first gap). Then it goes down, out of our
 * digests, so that an address nobody answers at dies out, as it does among
 * reference nodes. Our exchange: never (it waits for the dead-node grace).
 */
static uint64_t liveness_join_wait(const sb_engine *e)
{
    if (!e->wire->unproven_expire)
        return UINT64_MAX;
    double gap = sb_liveness_least_gap(e);
    if (gap < 2.0 * (double)e->cfg.interval_ns)
        gap = 2.0 * (double)e->cfg.interval_ns;
    double wait =
        sb_liveness_threshold(e) * 2.302585092994046 /* ln 10 */ * gap;
    return wait < 0x1p63 ? (uint64_t)wait : UINT64_MAX;
}

/* Keeps n's detector from assuming gaps shorter than the least gap; true
 * if it changed the mean. */
bool sb_liveness_floor_gap(const sb_engine *e, sb_peer *n)
{
    float least = (float)sb_liveness_least_gap(e); /* as the mean is kept */
    if (n->phi.mean_ns >= least)
        return false;
    n->phi.mean_ns = least;
    return true;
}

/*
 * When peer n next needs the round's attention: a live peer when its phi
 * would pass the threshold, any other when the dead-node grace runs out
 * (or, unproven, when the protocol's join wait does), and any peer when
 * its oldest tombstone may be collected.
 */
void sb_liveness_refresh(sb_engine *e, sb_peer *n)
{
    uint64_t due = sb_peer_gc_due(n);
    if (!n->self) {
        uint64_t t;
        if (n->status == SB_STATUS_LIVE)
            t = sb_phi_deadline(&n->phi, sb_liveness_threshold(e));
        else
            t = sb_add_sat(n->status_since, e->cfg.dead_grace_ns);
        if (n->status == SB_STATUS_JOINING) {
            uint64_t j = sb_add_sat(n->status_since, liveness_join_wait(e));
            if (j < t)
                t = j;
        }
        if (t < due)
            due = t;
    }
    e->st.due[n->index] = due;
}

/*
 * What the votes on a peer read (sb_liveness_convicted()) changed: the
 * peers whose count may have moved are marked for the next rejudge, and
 * no other peer's can have (the rejudge judges no other again). A peer's
 * count reads the verdicts of its monitors (its predecessors on the
 * rings), whether each of those is suspected (their own predecessors'
 * verdicts), and for an accused peer the verdicts of the first
 * predecessor on each ring not accused.
 */

/* Marks peer id (if we hold it); true if it is accused (a walk back past
 * the accused goes on through it). */
static bool liveness_unsettle_step(void *u, uint64_t id)
{
    sb_engine *e = u;
    sb_peer *n = sb_state_find_id(&e->st, id);
    if (n)
        n->rejudge = true;
    return n && n->accused;
}

/* On each ring, the peers after id up to the first one not accused:
 * those whose walk back past the accused reaches id's place. */
static void liveness_unsettle_walks(sb_engine *e, uint64_t id)
{
    for (uint32_t i = 0; i < e->cfg.monitors; i++)
        sb_rings_walk(&e->rings, i, id, true, liveness_unsettle_step, e);
}

/* A verdict on x came, went or changed: x's own count, and those of the
 * peers it watches (whether x is suspected is their monitor's vote); if
 * x's accused flag moved (`flagged`), also those whose walk back past
 * the accused goes through x. */
static void liveness_unsettle_votes(sb_engine *e, sb_peer *x, bool flagged)
{
    x->rejudge = true;
    if (flagged) {
        liveness_unsettle_walks(e, x->id);
        return;
    }
    uint64_t next[SB_MAX_RINGS];
    uint32_t n = sb_rings_neighbours(&e->rings, e->cfg.monitors, x->id, true,
                                     next);
    for (uint32_t i = 0; i < n; i++)
        (void)liveness_unsettle_step(e, next[i]);
}

/* Peer id came onto the rings or left them: those whose monitors, or
 * walks back past the accused, moved (its successors, on through the
 * accused), and those one of whose monitors has other monitors now (the
 * successors of its successors). */
static void liveness_unsettle_rings(sb_engine *e, uint64_t id)
{
    if (!e->cfg.monitors)
        return;
    (void)liveness_unsettle_step(e, id);
    liveness_unsettle_walks(e, id);
    uint64_t next[SB_MAX_RINGS], after[SB_MAX_RINGS];
    uint32_t n = sb_rings_neighbours(&e->rings, e->cfg.monitors, id, true,
                                     next);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t m = sb_rings_neighbours(&e->rings, e->cfg.monitors, next[i],
                                         true, after);
        for (uint32_t j = 0; j < m; j++)
            (void)liveness_unsettle_step(e, after[j]);
    }
}

void sb_liveness_set_status(sb_engine *e, sb_peer *n, sb_status s, uint64_t now)
{
    sb_status old = (sb_status)n->status;
    if (old == s)
        return;
    e->nstatus[old]--;
    e->nstatus[s]++;
    n->status = (uint8_t)s;
    if (s == SB_STATUS_LIVE) /* a fresh window (in place of status_since) */
        sb_phi_reset(&n->phi, now, 2 * e->cfg.interval_ns);
    else
        n->status_since = now;
    n->convicted = false; /* the callers that convict say so after */
    /* the rings hold the live (a failed add leaves the peer unwatched) */
    if (s == SB_STATUS_LIVE) {
        (void)sb_rings_add(&e->rings, n->id);
    } else if (old == SB_STATUS_LIVE) {
        sb_rings_remove(&e->rings, n->id);
        e->rejudge = true;
        e->live_lost++;
    }
    if (s == SB_STATUS_LIVE || old == SB_STATUS_LIVE)
        liveness_unsettle_rings(e, n->id);
    else
        n->rejudge = true; /* whether it is judged */
    if (old == SB_STATUS_DOWN && s == SB_STATUS_LIVE && !n->self)
        sb_sweep_returned(e, now);
    if (s == SB_STATUS_LIVE && n->answered) {
        n->probes = 0;
        n->probe_at = 0;
    }
    sb_liveness_refresh(e, n);
    if (n->self)
        return;
    if (s == SB_STATUS_LIVE) {
        sb_liveness_emit(e, SB_EVENT_JOIN, n, NULL);
        for (uint32_t i = 0; i < n->nkeys; i++)
            if (!n->keys[i]->deleted)
                sb_liveness_emit(e, SB_EVENT_UPDATE, n, n->keys[i]);
    } else if (old == SB_STATUS_LIVE)
        sb_liveness_emit(e, SB_EVENT_LEAVE, n, NULL);
}

/*
 * Probes: a SYN to a peer that is not live (down, or not proven alive
 * yet), so that we notice it coming back, or to any peer whose address
 * has never answered us. Each probe that leaves the peer so doubles the
 * wait before the next: a round, two, four... An address that never
 * answers thus gets at most floor(log2(T / round + 1)) + 1 SYNs from
 * each node in any T that node knows it (14 over the default hour of
 * dead-node grace at the default 500 ms interval, after which the node
 * forgets it), live or not: word that it lives, true or not, does not
 * make it answer. A peer that has answered us (a member gone down, the
 * other side of a partition) is probed at least every
 * 2^PROBE_ANSWERED_DOUBLINGS rounds (16 s at the defaults), so that a
 * partition that no seed bridges heals within that of its end; it starts
 * again when it comes alive, and an answer (an ACK or ACK2 echoing our
 * token, from its address) starts any peer's count again at once.
 */
#define PROBE_ANSWERED_DOUBLINGS 6

bool sb_liveness_may_probe(const sb_peer *n, uint64_t now)
{
    return now >= n->probe_at;
}

/* Whether we hold n down: DOWN, or, with monitors, JOINING (a record
 * held down as it arrived, docs/protocol.md, section 2). */
bool sb_liveness_held_down(const sb_engine *e, const sb_peer *n)
{
    return n->status == SB_STATUS_DOWN ||
           (e->cfg.monitors && n->status == SB_STATUS_JOINING);
}

/* An answer came from n's address (a join to it is done, seeds.c). */
void sb_liveness_answered(sb_engine *e, sb_peer *n)
{
    sb_seeds_answered(e, n->addr);
    n->answered = true;
    n->probes = 0;
    n->probe_at = 0;
}

void sb_liveness_probed(const sb_engine *e, sb_peer *n, uint64_t now)
{
    unsigned k = n->probes;
    if (n->answered && k > PROBE_ANSWERED_DOUBLINGS)
        k = PROBE_ANSWERED_DOUBLINGS;
    uint64_t wait = k < 64 && e->round_ns <= UINT64_MAX >> k
                        ? e->round_ns << k
                        : UINT64_MAX;
    n->probe_at = sb_add_sat(now, wait);
    if (n->probes < UINT8_MAX)
        n->probes++;
}

/*
 * A member we hold down speaks to us (exchange.c): it lives, but may not
 * know why we hold it down. The verdicts against it may be void by now
 * (at a heal, a monitor that refutes a verdict against itself withdraws
 * its own, some before they reached their subjects) while we wait for
 * its heartbeat to move, which a doubt makes it do. True if it is due
 * one now, counted as a probe: within its backoff, which hearing from
 * it cuts to a round, so that one that can send but not receive gets a
 * doubt a round at most. Not one held down only because we heard no
 * one: it is back at the next round.
 */
bool sb_liveness_doubt_due(sb_engine *e, sb_peer *n, uint64_t now)
{
    if (!e->cfg.monitors || !sb_liveness_held_down(e, n) || n->alone_down)
        return false;
    bool due = sb_liveness_may_probe(n, now);
    if (due)
        sb_liveness_probed(e, n, now);
    uint64_t most = sb_add_sat(now, e->round_ns);
    if (n->probe_at > most)
        n->probe_at = most;
    return due;
}

/* A tombstone was stored in n at `now`. */
void sb_liveness_note_tombstone(sb_engine *e, sb_peer *n, uint64_t now)
{
    uint64_t due = sb_add_sat(now, e->cfg.tombstone_grace_ns);
    if (due < sb_peer_gc_due(n)) {
        sb_peer_head(n)->gc_due = due;
        sb_liveness_refresh(e, n);
    }
}

sb_peer *sb_liveness_add(sb_engine *e, const char *addr, size_t len,
                         uint64_t generation, uint64_t now)
{
    sb_peer *n = sb_state_add(&e->st, addr, len, generation);
    if (!n)
        return NULL;
    if (!sb_scratch_grow(&e->scratch, e->st.count + 1)) {
        sb_state_remove(&e->st, n);
        return NULL;
    }
    n->status = SB_STATUS_JOINING;
    n->status_since = now;
    e->nstatus[SB_STATUS_JOINING]++;
    e->remark = true; /* verdicts that came before it may name it */
    sb_liveness_refresh(e, n);
    return n;
}

void sb_liveness_remove(sb_engine *e, sb_peer *n)
{
    if (n->status == SB_STATUS_LIVE) {
        sb_rings_remove(&e->rings, n->id);
        liveness_unsettle_rings(e, n->id);
        e->live_lost++;
    }
    if (n->voter)
        e->rejudge = e->remark = true; /* its verdicts go with it */
    e->nstatus[n->status]--;
    sb_state_remove(&e->st, n);
}

/*
 * Conviction by monitors (docs/failure-detector.md, section 9). A monitor
 * that convicts a peer it watches writes a verdict into its own state: the
 * key "\0v" followed by the peer's 48-bit id, big endian, whose value is
 * the peer's heartbeat it names (the newest known, by beat or gossip),
 * then the monitor's own heartbeat when it wrote it (two u64s, big
 * endian; VERDICT_VALUE_LEN, monitor.c). Keys that
 * start with a zero byte are the protocol's: applications can neither
 * write nor read them, and no event reports them.
 */
bool sb_liveness_reserved(const uint8_t *key, size_t key_len)
{
    return key_len > 0 && key[0] == 0;
}

void sb_liveness_verdict_key(uint8_t key[VERDICT_KEY_LEN], uint64_t id)
{
    key[0] = 0;
    key[1] = 'v';
    for (int i = 0; i < 6; i++)
        key[2 + i] = (uint8_t)(id >> (40 - 8 * i));
}

/*
 * A verdict naming heartbeat h stands while its subject's heartbeat is
 * at most h. With monitors a heartbeat is an incarnation: it moves only
 * when its node refutes a verdict (sb_liveness_verdict()) or leaves. A
 * node falsely accused, paused, or cut off from its monitors by a
 * partition that has healed, sees the verdicts against it, moves its
 * heartbeat past them, and is live again wherever the news reaches.
 */
bool sb_liveness_verdict_stands(const sb_engine *e, uint64_t heartbeat,
                                const sb_peer *x)
{
    (void)e;
    return x->heartbeat <= heartbeat;
}

/* The heartbeats a verdict key's value names: its subject's (at 0), and
 * its writer's own when it wrote it (at 8). */
static uint64_t liveness_verdict_heartbeat(const sb_key *k, int at)
{
    const uint8_t *v = sb_key_value(k) + at;
    uint64_t hb = 0;
    for (int b = 0; b < 8; b++)
        hb = hb << 8 | v[b];
    return hb;
}

/* Whether a verdict key's entry stands: not a tombstone, of the right
 * length. */
static bool liveness_verdict_live(const sb_key *k)
{
    return !k->deleted && k->value_len == VERDICT_VALUE_LEN;
}

/* True if k, monitor mon's verdict key against x, counts: it stands,
 * names x's heartbeat or a later one, and was written at mon's current
 * one. */
static bool liveness_counts(const sb_peer *mon, const sb_key *k,
                            const sb_peer *x)
{
    return liveness_verdict_live(k) &&
           x->heartbeat <= liveness_verdict_heartbeat(k, 0) &&
           liveness_verdict_heartbeat(k, 8) >= mon->heartbeat;
}

/* True if monitor `mon` holds a verdict against x that counts. */
static bool liveness_voted(const sb_peer *mon, const sb_peer *x)
{
    uint8_t key[VERDICT_KEY_LEN];
    sb_liveness_verdict_key(key, x->id);
    long j = sb_peer_find_key(mon, key, sizeof(key));
    return j >= 0 && liveness_counts(mon, mon->keys[j], x);
}

/* True if one of m's own monitors in our view holds a verdict against m,
 * other than the `nskip` writers in `skip` (those whose verdicts already
 * count against the peer being judged: one writer's word counts once). */
static bool liveness_suspected(const sb_engine *e, const sb_peer *m,
                               const sb_peer *const *skip, uint32_t nskip)
{
    uint64_t ids[SB_MAX_RINGS];
    uint32_t n = sb_rings_neighbours(&e->rings, e->cfg.monitors, m->id,
                                     false, ids);
    for (uint32_t i = 0; i < n; i++) {
        const sb_peer *mon = sb_state_find_id(&e->st, ids[i]);
        bool skipped = false;
        for (uint32_t j = 0; j < nskip && !skipped; j++)
            skipped = skip[j] == mon;
        if (mon && mon != m && !skipped && liveness_voted(mon, m))
            return true;
    }
    return false;
}

/*
 * The rule: peer x is down for us when a majority of its monitors in our
 * view (its predecessors on the rings of live peers, ring.h) vote against
 * it, and one of them at least with a verdict. A monitor votes with a
 * verdict that counts (liveness_voted()), or, without one, when it is
 * suspected itself (a verdict of one of its own monitors stands against
 * it): whether it hears x is then unknown, and it may be cut off from us
 * with x (the other side of a partition, in which it and x see each
 * other live and no verdict of theirs reaches us). This lets the smaller
 * side of a partition see the other side down, as Rapid counts the
 * edges of an observer that is itself being removed. A writer's word
 * counts once: a monitor suspected only by writers whose verdicts
 * against x already count casts no vote (a late monitor convicting its
 * new subjects counted twice, test_late_monitor_counts_once). Or, for an
 * accused x, when a majority of its monitors looking past the accused
 * (on each ring its first predecessor not accused, monitor.c) hold
 * verdicts that count. A verdict from a peer that is neither kind of
 * monitor of x in our view does not count.
 */
bool sb_liveness_convicted(const sb_engine *e, const sb_peer *x)
{
    if (!e->cfg.monitors || x->self)
        return false;
    uint64_t m[SB_MAX_RINGS];
    const sb_peer *mon[SB_MAX_RINGS];
    uint32_t nm = sb_rings_neighbours(&e->rings, e->cfg.monitors, x->id,
                                      false, m);
    const sb_peer *writers[SB_MAX_RINGS];
    uint32_t verdicts = 0, left = 0; /* left: those that may vote yet */
    for (uint32_t i = 0; i < nm; i++) {
        mon[i] = sb_state_find_id(&e->st, m[i]);
        if (mon[i] && liveness_voted(mon[i], x)) {
            writers[verdicts++] = mon[i];
            mon[i] = NULL; /* counted */
        } else if (mon[i]) {
            left++;
        }
    }
    /* without a verdict, no vote counts: the common case ends here; the
     * others are asked while their votes may still make a majority, and
     * until they make it */
    uint32_t votes = verdicts;
    for (uint32_t i = 0;
         verdicts && i < nm && votes <= nm / 2 && votes + left > nm / 2; i++) {
        if (!mon[i])
            continue;
        left--;
        if (!mon[i]->self && liveness_suspected(e, mon[i], writers, verdicts))
            votes++;
    }
    if (verdicts > 0 && votes > nm / 2)
        return true;
    /* or a majority of its monitors looking past the accused (monitor.c)
     * hold verdicts that count: the one rule that holds a run of the
     * dead down, when the monitors of each are dead too */
    if (!x->accused)
        return false; /* no verdict counts against it */
    nm = sb_monitor_past(e, x->id, m);
    votes = 0;
    for (uint32_t i = 0; i < nm; i++) {
        const sb_peer *p = sb_state_find_id(&e->st, m[i]);
        votes += p && liveness_voted(p, x);
    }
    return votes > nm / 2;
}

/* Takes x down by its monitors' verdicts (not for having been alone, nor
 * by the fallback detector alone): `convicted`, what the down flag of its
 * deltas says (plan.c, sweep.c) while we hold it down. The verdicts as
 * they stood then, not as they stand now: a newcomer that we answer is at
 * once, on our rings, a monitor of the dead it lands before, with no
 * verdict yet, and the verdicts that convicted them may be a minority
 * until it concurs; told they lived, it reported them joined. A live x
 * refutes such verdicts when they reach it (or our doubts do), so a node
 * that takes the flag's word learns of it then. */
static void liveness_convict(sb_engine *e, sb_peer *x, uint64_t now)
{
    sb_liveness_set_status(e, x, SB_STATUS_DOWN, now);
    x->convicted = true;
}

/* The subject a verdict key names (its 48-bit id). */
static uint64_t liveness_verdict_id(const sb_key *k)
{
    uint64_t id = 0;
    for (int i = 0; i < 6; i++)
        id = id << 8 | k->data[2 + i];
    return id;
}

/* True if k is a verdict that stands in its holder's record; *id is then
 * the subject it names. */
static bool liveness_verdict_subject(const sb_key *k, uint64_t *id)
{
    if (k->key_len != VERDICT_KEY_LEN || k->data[0] || k->data[1] != 'v' ||
        !liveness_verdict_live(k))
        return false;
    *id = liveness_verdict_id(k);
    return true;
}

/* Holder may now hold a verdict: listed among the voters, once. */
static void liveness_add_voter(sb_engine *e, sb_peer *holder)
{
    if (holder->voter)
        return;
    if (e->nvoters == e->voters_cap) {
        uint32_t cap = e->voters_cap ? e->voters_cap + e->voters_cap / 4 + 1
                                     : 8;
        uint64_t *g = realloc(e->voters, cap * sizeof(*g));
        if (!g) {
            e->voters_lost = true;
            return;
        }
        e->voters = g;
        e->voters_cap = cap;
    }
    e->voters[e->nvoters++] = holder->id;
    holder->voter = true;
}

/* Marks every peer a verdict that counts names in our view (accused),
 * and no other; the voters that hold no verdict any more, or are gone,
 * leave the list, and one listed twice (forgotten, then back with the
 * same id) is kept once. If a voter could not be listed (out of memory),
 * every record is looked at and listed again first. A verdict that
 * counts marks its subject as it comes (sb_liveness_verdict()), so the
 * rejudge marks afresh only when a vote may have been voided since
 * (engine.remark): while a mass failure's verdicts pour in, it does not
 * read every verdict held at every round. */
static void liveness_mark_accused(sb_engine *e)
{
    for (uint32_t i = 0; i < e->st.count; i++)
        e->st.peers[i]->accused = false;
    if (e->voters_lost) {
        e->voters_lost = false;
        for (uint32_t i = 0; i < e->st.count; i++) {
            sb_peer *n = e->st.peers[i];
            uint64_t id;
            for (uint32_t j = 0; j < n->nkeys && !n->voter; j++)
                if (liveness_verdict_subject(n->keys[j], &id))
                    liveness_add_voter(e, n);
        }
    }
    for (uint32_t i = 0; i < e->nvoters; i++) {
        sb_peer *mon = sb_state_find_id(&e->st, e->voters[i]);
        if (mon)
            mon->voter = false;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < e->nvoters; i++) {
        sb_peer *mon = sb_state_find_id(&e->st, e->voters[i]);
        if (!mon || mon->voter)
            continue; /* gone, or kept already */
        for (uint32_t j = 0; j < mon->nkeys; j++) {
            uint64_t id;
            if (!liveness_verdict_subject(mon->keys[j], &id))
                continue;
            mon->voter = true;
            sb_peer *x = sb_state_find_id(&e->st, id);
            if (x && liveness_counts(mon, mon->keys[j], x))
                x->accused = true;
        }
        if (mon->voter)
            e->voters[kept++] = mon->id;
    }
    e->nvoters = kept;
}

/* True if no peer is accused: a peer is marked only for the verdict of a
 * listed voter (liveness_mark_accused(), sb_liveness_verdict(),
 * sb_liveness_arrived()), and the list shrinks only as the marks are
 * made afresh; with a voter that could not be listed, anyone may be. */
bool sb_liveness_none_accused(const sb_engine *e)
{
    return !e->nvoters && !e->voters_lost;
}

/* The peers a verdict names judged again (a verdict changed, or a peer
 * went down, which changes who watches whom and whose word is in doubt),
 * at the next round: the verdict that names a peer judges it at once, but
 * others' votes may hinge on it. No other peer can be convicted (every
 * vote needs a verdict), so the others are not looked up on the rings;
 * nor is an accused one whose votes read nothing that changed since the
 * last rejudge judged it (it is not marked: liveness_unsettle_votes(),
 * liveness_unsettle_rings()), unless the accused were marked afresh. A
 * peer that is down for us, and whose monitor we now are, gets our
 * verdict too (sb_monitor_concur()); so does one we hold JOINING, which
 * with monitors is a record held down as it arrived (a node that died
 * before we started): without our verdict, restarted nodes that became
 * a dead node's monitors left the verdicts that stand a minority, and a
 * newcomer took it live for good. */
void sb_liveness_rejudge(sb_engine *e, uint64_t now)
{
    if (!e->rejudge)
        return;
    e->rejudge = false;
    bool every = e->remark || e->voters_lost;
    if (every) {
        e->remark = false;
        liveness_mark_accused(e);
    }
    bool all = e->voters_lost; /* some could not be listed even now */
    sb_reach reach = { 0 };
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_peer *x = e->st.peers[i];
        /* a live peer, or one down by the fallback detector or for
         * being alone: convicted now, its down flag says so */
        bool judged = x->status == SB_STATUS_LIVE ||
                      (x->status == SB_STATUS_DOWN && !x->convicted);
        bool unsettled = x->rejudge || every;
        x->rejudge = false; /* a conviction below may mark it again */
        if (judged && unsettled && (x->accused || all) &&
            sb_liveness_convicted(e, x))
            liveness_convict(e, x, now);
        if (sb_liveness_held_down(e, x) && sb_monitor_reach(e, &reach, x->id))
            sb_monitor_concur(e, x, now);
    }
}

/* A verdict key came in, or was written (set or deleted), into holder's
 * record: the peer it names is judged again. A verdict against us that
 * stands is refuted: our heartbeat moves past the one it names (if it is
 * ours). */
void sb_liveness_verdict(sb_engine *e, sb_peer *holder, const sb_key *k,
                         uint64_t now)
{
    if (!e->cfg.monitors || k->key_len != VERDICT_KEY_LEN || k->data[1] != 'v')
        return;
    sb_peer *x = sb_state_find_id(&e->st, liveness_verdict_id(k));
    bool stands = liveness_verdict_live(k);
    if (x && x->self && stands) {
        sb_liveness_refute(e, liveness_verdict_heartbeat(k, 0), now);
        return;
    }
    if (stands)
        liveness_add_voter(e, holder);
    bool was = x && x->accused;
    if (x && liveness_counts(holder, k, x))
        x->accused = true; /* judged at once */
    else
        e->remark = true; /* it may have replaced one that counted */
    if (x)
        liveness_unsettle_votes(e, x, x->accused != was);
    e->rejudge = true;
    if (!x || x->status != SB_STATUS_LIVE)
        return;
    if (sb_liveness_convicted(e, x)) {
        liveness_convict(e, x, now);
        sb_monitor_concur(e, x, now);
    } else {
        x->rejudge = false; /* judged as it stands */
    }
}

/*
 * We were convicted at heartbeat hb, or a member that holds us down at hb
 * probed us (exchange.c): if hb is our heartbeat, it moves past it, which
 * voids every verdict that names it, and the news makes us live again
 * wherever it reaches. Once a heartbeat: several observers that doubt us
 * at once name the same one. An older one was refuted already; a newer
 * one no one can hold (only we move our heartbeat), and taking it would
 * let a forged doubt or verdict spend our heartbeats at once.
 */
void sb_liveness_refute(sb_engine *e, uint64_t hb, uint64_t now)
{
    sb_peer *s = e->self;
    if (!e->cfg.monitors || s->leaving || hb != s->heartbeat ||
        hb >= SB_HEARTBEAT_MAX - 1)
        return;
    s->heartbeat = hb + 1;
    e->refuted_at = now;
    e->rejudge = e->remark = true; /* our verdicts are void, and those
                                      that named us */
    e->concur_due = true;
    e->stats.refuted++;
    sb_recent_note(e, s, now, NO_DELTA);
    sb_push_queue(e, s->max_version, now);
    sb_monitor_doubt(e, now);
}

/*
 * A record of a new generation came in. With monitors there is no
 * heartbeat to wait for: it is live at once, unless the member that sent
 * it holds it down (`held_down`: the record of a node that died, which
 * may come before the verdicts against it), or a majority of its
 * monitors hold verdicts against it. Then it is live once its heartbeat
 * moves (sb_liveness_observe()), as a node held down is.
 */
void sb_liveness_arrived(sb_engine *e, sb_peer *n, bool held_down,
                         uint64_t now)
{
    if (!e->cfg.monitors || n->status != SB_STATUS_JOINING)
        return;
    if (!held_down) {
        /* verdicts that came before its record marked no one (the
         * rejudge marks records it finds): they name it now */
        for (uint32_t i = 0; i < e->nvoters && !n->accused; i++) {
            const sb_peer *mon = sb_state_find_id(&e->st, e->voters[i]);
            n->accused = mon && liveness_voted(mon, n);
        }
        held_down = sb_liveness_convicted(e, n);
    }
    if (held_down) {
        n->convicted = true; /* we pass the flag on */
        return;
    }
    sb_liveness_set_status(e, n, SB_STATUS_LIVE, now);
}

/*
 * With monitors, a node that has heard no one for ALONE_INTERVALS holds
 * every peer down: it cannot tell who lives, and no verdict reaches it.
 * The first datagram it hears again brings back those no verdicts
 * convict.
 */
#define ALONE_INTERVALS 20

void sb_liveness_alone(sb_engine *e, uint64_t now)
{
    if (!e->cfg.monitors)
        return;
    bool alone = now - e->last_heard > ALONE_INTERVALS * e->cfg.interval_ns;
    if (alone == e->alone)
        return;
    e->alone = alone;
    if (alone) {
        for (uint32_t i = 0; i < e->st.count; i++) {
            sb_peer *n = e->st.peers[i];
            if (!n->self && n->status == SB_STATUS_LIVE) {
                sb_liveness_set_status(e, n, SB_STATUS_DOWN, now);
                n->alone_down = true;
            }
        }
        return;
    }
    /* back: those we held down for being alone, judged on rings that
     * hold them all (brought back one by one, each would be judged by
     * the monitors of a half-built view: a dead peer's are others) */
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_peer *n = e->st.peers[i];
        if (n->alone_down && n->status == SB_STATUS_DOWN)
            (void)sb_rings_add(&e->rings, n->id);
    }
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_peer *n = e->st.peers[i];
        n->stays_down = n->alone_down && n->status == SB_STATUS_DOWN &&
                        sb_liveness_convicted(e, n);
    }
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_peer *n = e->st.peers[i];
        if (!n->alone_down)
            continue;
        n->alone_down = false;
        if (n->status != SB_STATUS_DOWN)
            continue;
        if (n->stays_down) {
            sb_rings_remove(&e->rings, n->id);
            n->convicted = true;
        } else {
            sb_liveness_set_status(e, n, SB_STATUS_LIVE, now);
        }
        n->stays_down = false;
    }
    for (uint32_t i = 0; i < e->st.count; i++)
        e->st.peers[i]->rejudge = true; /* the view changed: votes may
                                           hinge on it */
    e->rejudge = true;
}

/* True if we have heard no one for DEAF_ROUNDS rounds: we cannot receive,
 * or are cut off, and our heartbeat stands still (round.c; our beats
 * stop later, monitor.c). */
bool sb_liveness_deaf(const sb_engine *e, uint64_t now)
{
    return now - e->last_heard > DEAF_ROUNDS * e->round_ns;
}

/* A heartbeat (and leaving bit) of a peer we know, at the same generation. */
void sb_liveness_observe(sb_engine *e, sb_peer *n, uint64_t hb, bool leaving,
                         uint64_t now)
{
    if (leaving && !n->leaving && !n->self) {
        n->leaving = true;
        sb_recent_note(e, n, now, NO_DELTA);
        sb_liveness_set_status(e, n, SB_STATUS_LEFT, now);
    }
    if (hb <= n->heartbeat || n->self)
        return;
    n->heartbeat = hb;
    n->hb_news = true;
    if (n->accused || n->voter)
        e->rejudge = e->remark = true; /* verdicts naming it, or its own,
                                          are void */
    sb_state_touch(&e->st, n);
    switch ((sb_status)n->status) {
    case SB_STATUS_LIVE:
        sb_phi_heartbeat(&n->phi, now, e->cfg.phi_window);
        sb_liveness_refresh(e, n);
        break;
    case SB_STATUS_JOINING:
    case SB_STATUS_DOWN:
        /* convicted by its monitors: alive only once they withdraw */
        if (sb_liveness_convicted(e, n)) {
            n->convicted = true;
            break;
        }
        /* proof of life: live again, with a fresh window */
        sb_liveness_set_status(e, n, SB_STATUS_LIVE, now);
        break;
    case SB_STATUS_LEFT:
        break;
    }
}

/* Forgets a peer's old generation: its keys are gone, it is gone. */
void sb_liveness_drop_generation(sb_engine *e, sb_peer *n, uint64_t now)
{
    for (uint32_t i = 0; i < n->nkeys; i++)
        if (!n->keys[i]->deleted)
            sb_liveness_emit(e, SB_EVENT_DELETE, n, n->keys[i]);
    if (n->status == SB_STATUS_LIVE)
        sb_liveness_set_status(e, n, SB_STATUS_DOWN, now);
    sb_liveness_remove(e, n);
}

/* Collects n's tombstones older than the grace; raises gc_version. */
static void liveness_collect_tombstones(sb_engine *e, sb_peer *n, uint64_t now)
{
    sb_keys_head *head = sb_peer_head(n);
    head->gc_due = UINT64_MAX;
    for (uint32_t k = n->nkeys; head->tombstones && k-- > 0;) {
        sb_key *key = n->keys[k];
        if (!key->deleted)
            continue;
        uint64_t due = sb_add_sat(key->deleted_at, e->cfg.tombstone_grace_ns);
        if (due <= now) {
            if (key->version > n->gc_version) {
                n->gc_version = key->version;
                sb_state_touch(&e->st, n);
            }
            sb_peer_remove_key(n, k);
        } else if (due < head->gc_due) {
            head->gc_due = due;
        }
    }
}

/*
 * A peer whose due time has come: convict it if its phi passed the
 * threshold, forget it if it has been down (or left, or never proven
 * alive) for the dead-node grace, collect its old tombstones. Returns
 * true if the peer was forgotten (its index now holds another peer).
 */
bool sb_liveness_attend(sb_engine *e, sb_peer *n, uint64_t now)
{
    if (!n->self && n->status == SB_STATUS_LIVE) {
        /* the cluster may have grown since the due time */
        sb_liveness_floor_gap(e, n);
        if (sb_phi_value(&n->phi, now) > sb_liveness_threshold(e))
            sb_liveness_set_status(e, n, SB_STATUS_DOWN, now);
    }
    if (!n->self && n->status == SB_STATUS_JOINING &&
        now - n->status_since >= liveness_join_wait(e))
        /* no event: it was never live */
        sb_liveness_set_status(e, n, SB_STATUS_DOWN, now);
    if (!n->self && n->status != SB_STATUS_LIVE &&
        now - n->status_since >= e->cfg.dead_grace_ns) {
        /* remembered for another grace: others may gossip it a while */
        sb_state_forget(&e->st, n->id, n->heartbeat,
                        sb_add_sat(now, e->cfg.dead_grace_ns),
                        sb_peer_id(n->addr, n->addr_len, 0), n->generation);
        sb_liveness_remove(e, n);
        return true;
    }
    if (sb_peer_tombstones(n) && sb_peer_gc_due(n) <= now)
        liveness_collect_tombstones(e, n, now);
    sb_liveness_refresh(e, n);
    return false;
}

/* We could not hear anything while we were paused: every live peer's
 * silence, and ours (we heard no one: alone, deaf), is shortened by the
 * pause before it is judged. */
void sb_liveness_forgive_pause(sb_engine *e, uint64_t pause, uint64_t now)
{
    e->last_heard = sb_past_pause(e->last_heard, pause, now);
    for (uint32_t i = 0; i < e->st.count; i++) {
        sb_peer *n = e->st.peers[i];
        if (n->self || n->status != SB_STATUS_LIVE)
            continue;
        n->phi.last_ns = sb_past_pause(n->phi.last_ns, pause, now);
        sb_liveness_refresh(e, n);
    }
}

/* A uniformly random peer among the `want` ones that match: a few random
 * draws (quick when most match), then a scan for the k-th match. */
sb_peer *sb_liveness_random(sb_engine *e, bool (*match)(const sb_peer *),
                            uint32_t want)
{
    if (!want)
        return NULL;
    for (int t = 0; t < 16; t++) {
        sb_peer *n = e->st.peers[sb_rng_below(&e->rng, e->st.count)];
        if (match(n))
            return n;
    }
    uint32_t k = (uint32_t)sb_rng_below(&e->rng, want);
    for (uint32_t i = 0; i < e->st.count; i++)
        if (match(e->st.peers[i]) && k-- == 0)
            return e->st.peers[i];
    return NULL;
}
