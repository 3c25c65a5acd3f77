/*
 * Our exchange: a SYN and its digest, a SYN answered by an ACK, an ACK by
 * an ACK2; receiving and dispatching our wire format. What a round sends
 * is in round.c, what news is announced to, in announce.c.
 */
#include <stdlib.h>
#include <string.h>

#include "addr_text.h"
#include "internal.h"

/* Adds n to a SYN digest if it fits `limit` and is not listed yet. */
static bool exchange_list(sb_engine *e, sb_peer *n, sb_peer **list,
                          uint32_t *len,
                          size_t *used, size_t limit)
{
    if (n->mark == e->epoch)
        return true;
    sb_digest_entry d = sb_entry_of(n);
    size_t s = sb_digest_entry_size(&d);
    if (*used + s > limit)
        return false;
    *used += s;
    n->mark = e->epoch;
    n->hb_news = false;
    list[(*len)++] = n;
    return true;
}

/*
 * Writes the digest of a SYN: ourselves first, then peers whose keys or
 * leaving bit changed in the last few rounds (newest first, at most half
 * the room, so news spreads fast), then a random sample of the others
 * (a shuffle of st.perm), group by group (sb_plan_sample_group()): fresh
 * heartbeats, other peers that may be alive, the down and the left.
 * Within a group every peer has the same chance, so none is starved
 * however many there are. The COMPLETE flag says every known peer is
 * listed.
 *
 * The summary goes first. A quiet SYN (sb_exchange_quiet()) has no
 * digest: a peer that agrees answers nothing, and one that does not
 * answers as to a partial digest, after which both sides send full
 * digests until they agree again. The round's SYN only (`round`; so that
 * one peer a round answers them): while we sweep, the SWEEP flag and our
 * sweep's cursor (sweep.c); else, if one is due, a range (range.c), whose
 * records a listed range lists after the recent changes.
 */
void sb_exchange_write_syn(sb_engine *e, sb_writer *w, bool quiet,
                           bool round, uint64_t now)
{
    uint64_t summary = sb_summary(e);
    bool sweep = round && e->sweeping;
    size_t cursor = sweep ? SB_CURSOR_SIZE : 0;
    size_t room = sb_plan_digest_room(e);
    room = room > cursor ? room - cursor : 0;
    size_t used = 0;
    uint32_t count = e->st.count, n = 0;
    sb_peer **list = e->scratch.peers;
    e->epoch++;

    /* ourselves always (the smallest message has room for that) */
    if (!quiet)
        exchange_list(e, e->self, list, &n, &used,
                       e->cfg.max_message_size - SB_HEADER_SIZE -
                           SB_TOKEN_SIZE - 1 - SB_SUMMARY_SIZE - cursor -
                           3);
    /* writers a push of which left a gap: the peer sends what we lack */
    for (uint32_t i = 0; !quiet && i < e->nbehind; i++) {
        sb_peer *x = sb_state_find_id(&e->st, e->behind[i]);
        if (x && !exchange_list(e, x, list, &n, &used, room / 4))
            break;
    }
    if (!quiet) {
        e->nbehind = 0;
        free(e->behind);
        e->behind = NULL;
    }
    /* requests: ids we saw in ACKs and do not know, "send in full" */
    uint32_t nwanted = 0;
    for (; !quiet && nwanted < e->nwanted; nwanted++) {
        sb_digest_entry d = { .id = e->wanted[nwanted] };
        if (used + sb_digest_entry_size(&d) > room / 4)
            break;
        used += sb_digest_entry_size(&d);
    }
    uint64_t recent_ns = RECENT_ROUNDS * e->round_ns;
    for (uint32_t k = 1; !quiet && k <= RECENT && k <= e->recent_head;
         k++) {
        const recent *r = &e->recent[(e->recent_head - k) % RECENT];
        if (now - r->at > recent_ns)
            break;
        sb_peer *x = sb_state_find_id(&e->st, r->id);
        if (x && !exchange_list(e, x, list, &n, &used, room / 2))
            break;
    }
    sb_range range;
    bool ranged = round && !quiet && !sweep &&
                  sb_range_pick(e, room > used ? room - used : 0, now, &range);
    if (ranged) {
        e->stats.ranges++;
        used += SB_RANGE_SIZE(range.listed ? 0 : SB_RANGE_PARTS);
        for (uint32_t i = range.first; range.listed && i < range.end; i++)
            exchange_list(e, sb_state_sorted(&e->st, i), list, &n, &used,
                          room);
    }
    bool full = quiet;
    uint32_t m =
        quiet ? 0 : sb_plan_draw_sample(e, room > used ? room - used : 0);
    for (int pass = 0; pass < 3 && !full; pass++)
        for (uint32_t i = 0; i < m && !full; i++)
            if (sb_plan_sample_group(e->scratch.sample[i]) == pass)
                full = !exchange_list(e, e->scratch.sample[i], list, &n,
                                      &used, room);
    sb_put_header(w, SB_MSG_SYN, e->cluster_id);
    sb_put_u64(w, 0); /* the token: set for each destination */
    sb_put_u8(w, (uint8_t)((n == count ? SB_SYN_COMPLETE : 0) |
                           (sweep ? SB_SYN_SWEEP : 0) |
                           (ranged ? SB_SYN_RANGE : 0)));
    sb_put_u64(w, summary);
    if (sweep)
        sb_put_u64(w, e->sweep);
    if (ranged)
        sb_range_put(e, w, &range);
    sb_put_varint(w, n + nwanted);
    for (uint32_t k = 0; k < n; k++) {
        sb_digest_entry d = sb_entry_of(list[k]);
        sb_put_digest_entry(w, &d);
    }
    for (uint32_t k = 0; k < nwanted; k++) {
        sb_digest_entry d = { .id = e->wanted[k] };
        sb_put_digest_entry(w, &d);
    }
    if (!quiet) {
        e->nwanted = 0;
        free(e->wanted);
        e->wanted = NULL;
    }
}

/*
 * What both sides of an exchange do with the peer's digest entry for a
 * peer n we know: adopt its heartbeat and queue a delta if the peer is
 * behind, or send n in full if the entry asks for it (heartbeat 0).
 * Returns false when nothing more is to be learned from the entry (a
 * request, or n listed twice).
 */
static bool exchange_take_entry(sb_engine *e, plan *p, sb_peer *n,
                                const sb_digest_entry *d, uint64_t now)
{
    if (n->mark == e->epoch)
        return false;
    n->mark = e->epoch;
    if (!d->heartbeat) {
        sb_plan_add(e, p, n, 0, 0, true);
        return false;
    }
    /* a stranger's word moves no heartbeat: it would make a down peer
     * live again, and the cluster write to its address */
    if (e->from_member)
        sb_liveness_observe(e, n, d->heartbeat, d->leaving, now);
    sb_plan_add(e, p, n, d->max_version, d->gc_version, false);
    return true;
}

/*
 * A partial SYN may not list a peer whose keys changed lately; the
 * initiator may lack them. Offer them anyway, from the version peers held
 * before the change: the receiver takes them only if it holds that
 * version (no gap), and skips what it has. Stragglers an eager push
 * missed catch up in their next exchange. A peer whose other news came
 * lately (a leave, a refutation, a new record), which no push carries,
 * gets our digest entry first among those we add: a quiet SYN lists
 * nothing, and its sender may lack just that. Fresh keys are offered
 * only if `keys` (not while our pushes wait for the cap: most peers
 * hold them by then, and they would fill every ACK).
 */
static void exchange_offer_recent(sb_engine *e, plan *p, bool keys,
                                  uint64_t now)
{
    uint64_t recent_ns = RECENT_ROUNDS * e->round_ns;
    for (uint32_t k = 1; k <= RECENT && k <= e->recent_head; k++) {
        const recent *r = &e->recent[(e->recent_head - k) % RECENT];
        if (now - r->at > recent_ns)
            break;
        sb_peer *n = sb_state_find_id(&e->st, r->id);
        if (!n || n->mark == e->epoch || (!keys && r->before != NO_DELTA))
            continue; /* in the digest, offered already, or not now */
        n->mark = e->epoch;
        if (r->before == NO_DELTA) {
            if (p->nahead < e->scratch.nahead)
                e->scratch.ahead[p->nahead++] = n;
            continue;
        }
        /* changed more than once lately: offer from the oldest change,
         * so a peer that missed both can take it */
        uint64_t before = r->before;
        for (uint32_t j = k + 1; j <= RECENT && j <= e->recent_head; j++) {
            const recent *o = &e->recent[(e->recent_head - j) % RECENT];
            if (now - o->at > recent_ns)
                break;
            if (o->id == r->id && o->before != NO_DELTA && o->before < before)
                before = o->before;
        }
        sb_plan_add_news(e, p, n, before);
    }
}

/*
 * Decodes the digest of a validated message into the scratch digest and
 * finds the peer of every entry. Each pass only starts loads (slots, then
 * peers) for the next one, so the cache misses of a large digest overlap
 * instead of following one another: at a thousand peers, the round is
 * memory-bound.
 */
static const entry_ref *exchange_load_digest(sb_engine *e, const sb_msg *m)
{
    entry_ref *r = sb_scratch_digest(&e->scratch, m->ndigest);
    if (!r) {
        if (m->ndigest)
            e->stats.drops[SB_DROP_NOMEM]++;
        return NULL;
    }
    sb_cursor c = { m->digest, m->end };
    for (uint64_t i = 0; i < m->ndigest; i++) {
        sb_digest_next(&c, &r[i].d);
        sb_state_prefetch_id(&e->st, r[i].d.id);
    }
    for (uint64_t i = 0; i < m->ndigest; i++) {
        r[i].n = sb_state_find_id(&e->st, r[i].d.id);
#if defined(__GNUC__)
        if (r[i].n)
            __builtin_prefetch(r[i].n);
#endif
    }
    return r;
}

/* The answer alone to a SYN that asks (a probe): echo, token and
 * summary, no state. Liveness, for the bandwidth cap: it proves we live,
 * and it is small (a stranger's flood of probes gets no more than that
 * past the reserve the cap keeps for exchanges). */
static void exchange_answer_alone(sb_engine *e, const char *from,
                                  const sb_msg *m)
{
    plan *p = sb_plan_new(e);
    p->echo = m->token;
    p->always = true;
    sb_writer w = sb_send_reply_writer(e);
    if (sb_plan_write(e, &w, SB_MSG_ACK, p))
        sb_send_message(e, SB_TRAFFIC_LIVENESS, from, &w);
}

/* A member holds us down (a SYN with the DOUBT flag): we refute
 * (liveness.c) if its digest lists us at our heartbeat. A doubt of one we
 * moved past (a replayed probe, or a member that has not heard of our
 * refutation yet, which the refutation's push or anti-entropy brings it)
 * moves nothing. A doubt that does not list us is a node of 0.10.3 or
 * before (a round's SYN with the flag, which lists its sender first and
 * the others it knows, us among them, or a quiet one, which lists none):
 * refuted as it was then, at most once an interval, so that a cluster
 * being upgraded heals as fast. But a digest of one entry that is not us
 * is a doubt of this version naming another life of our address (our id
 * before a restart), captured and replayed: it moves nothing, or each
 * replay would make us refute (and doubt our subjects, never convicting
 * them) for as long as the replays go on. */
static void exchange_doubted(sb_engine *e, const sb_msg *m, uint64_t now)
{
    sb_cursor c = { m->digest, m->end };
    for (uint64_t i = 0; i < m->ndigest; i++) {
        sb_digest_entry d;
        sb_digest_next(&c, &d);
        if (d.id == e->self->id) {
            sb_liveness_refute(e, d.heartbeat, now);
            return;
        }
    }
    if (m->ndigest == 1)
        return; /* names one that is not us: an earlier life's doubt */
    if (now - e->refuted_at >= e->cfg.interval_ns)
        sb_liveness_refute(e, e->self->heartbeat, now);
}

/* A SYN: adopt what its digest tells, answer with an ACK. */
static void exchange_syn(sb_engine *e, const char *from, const sb_msg *m,
                         uint64_t now)
{
    if ((m->flags & SB_SYN_DOUBT) && e->from_member)
        exchange_doubted(e, m, now);
    /* the same summary: nothing to tell, nothing to learn. Only a
     * member's counts as agreement (range.c descends where there is
     * none): a stranger could echo ours back at will */
    bool ask = m->flags & SB_SYN_ASK;
    if (e->from_member ? sb_summary_compare(e, m->summary, now)
                       : m->summary == sb_summary(e)) {
        if (ask)
            exchange_answer_alone(e, from, m);
        if (m->flags & SB_SYN_SWEEP) /* it holds what we hold */
            sb_sweep_serve(e, from, m, true, now);
        return;
    }
    /* our heartbeat moves with every SYN we answer too: the more often
     * it moves, the more often an observer sees it move, and the tighter
     * that observer's failure detector (docs/failure-detector.md). Not
     * with monitors: a verdict names the heartbeat of our last beat, and
     * stands until news of one more than a round or two past it comes
     * (liveness.c) */
    if (!e->cfg.monitors) {
        e->self->heartbeat++;
        sb_state_touch(&e->st, e->self);
    }
    plan *p = sb_plan_new(e);
    uint64_t *unknown = e->scratch.unknown;
    uint32_t epoch = e->epoch;
    const entry_ref *r = exchange_load_digest(e, m);
    for (uint64_t i = 0; r && i < m->ndigest; i++) {
        sb_digest_entry d = r[i].d;
        sb_peer *n = r[i].n;
        if (!n) {
            /* unknown: ask for it in full, unless it is a forgotten
             * one; but the sender's own (forgotten at its address) is
             * asked of it: its answer may bring it back (apply.c) */
            if (!d.heartbeat || p->nunknown >= e->scratch.most)
                continue;
            if (sb_state_is_forgotten(&e->st, d.id, d.heartbeat) &&
                !sb_state_forgot_at(&e->st, d.id,
                                    sb_peer_id(from, strlen(from), 0)))
                e->stats.drops[SB_DROP_ZOMBIE]++;
            else if (!p->nunknown || unknown[p->nunknown - 1] != d.id)
                unknown[p->nunknown++] = d.id; /* back to back: once */
            continue;
        }
        if (!exchange_take_entry(e, p, n, &d, now))
            continue;
        /* the entries past what our reply could hold wait */
        if (d.max_version > n->max_version && !n->self) {
            if (p->nreq < e->scratch.npeers)
                e->scratch.peers[p->nreq++] = n;
        } else if (n->heartbeat > d.heartbeat ||
                   (n->leaving && !d.leaving)) {
            if (p->nahead < e->scratch.nahead)
                e->scratch.ahead[p->nahead++] = n;
        }
    }
    /* before the recent changes are offered (and marked): a record of a
     * listed range that the SYN did not list goes whole */
    if (m->flags & SB_SYN_RANGE)
        sb_range_complete(e, p, m, epoch);
    p->fill = !(m->flags & SB_SYN_COMPLETE);
    if (p->fill)
        exchange_offer_recent(e, p, !sb_push_capped(e, now), now);
    if (m->flags & SB_SYN_COMPLETE) {
        for (uint32_t i = 0; i < e->st.count; i++) {
            sb_peer *n = e->st.peers[i];
            if (n->mark != epoch)
                sb_plan_add(e, p, n, 0, 0, true);
        }
    }
    p->echo = m->token;
    p->always = ask;
    sb_writer w = sb_send_reply_writer(e);
    /* a probe held back by the bandwidth cap still gets the answer
     * alone, which proves we live */
    if (sb_plan_write(e, &w, SB_MSG_ACK, p) &&
        !sb_send_message(e, SB_TRAFFIC_EXCHANGE, from, &w) && ask)
        exchange_answer_alone(e, from, m);
    if (m->flags & SB_SYN_SWEEP)
        sb_sweep_serve(e, from, m, false, now);
    /* a DIFF after the ACK: to a member only, for a stranger's answer
     * must stay within what it sent */
    if ((m->flags & SB_SYN_RANGE) && e->from_member)
        sb_range_answer(e, from, m);
}

/* An ACK: apply its deltas, answer what it asked for with an ACK2. */
static void exchange_ack(sb_engine *e, const char *from, const sb_msg *m,
                         uint64_t now)
{
    sb_apply_deltas(e, m, now);
    /* only a member's summary counts as agreement, as in a SYN: a
     * stranger has ours from our ACK, and could keep us quiet */
    if (e->from_member)
        sb_summary_compare(e, m->summary, now);
    plan *p = sb_plan_new(e);
    const entry_ref *r = exchange_load_digest(e, m);
    for (uint64_t i = 0; r && i < m->ndigest; i++) {
        sb_digest_entry d = r[i].d;
        sb_peer *n = r[i].n;
        /* a stranger's digest tells us nothing to ask of the members,
         * nor whom to list first (each note would keep us from resting,
         * and push a real change out of those we offer) */
        if (!n) {
            if (!d.heartbeat || !e->from_member || e->nwanted == WANTED ||
                sb_state_is_forgotten(&e->st, d.id, d.heartbeat))
                continue;
            if (e->wanted ||
                (e->wanted = malloc(WANTED * sizeof(*e->wanted))))
                e->wanted[e->nwanted++] = d.id;
            else
                e->stats.drops[SB_DROP_NOMEM]++;
            continue;
        }
        if (!exchange_take_entry(e, p, n, &d, now))
            continue;
        /* the responder holds news of n that we lack: list n first in
         * our next SYNs, so whoever has it sends it */
        if (d.max_version > n->max_version && !n->self && e->from_member)
            sb_recent_note(e, n, now, NO_DELTA);
    }
    /* we differ: our SYN may have listed nothing, and the responder may
     * lack just what changed here lately */
    if (!e->from_member || !e->agreed)
        exchange_offer_recent(e, p, true, now);
    p->echo = m->token;
    /* sweeping: an ACK2 even with nothing in it, which proves our address
     * to the responder, which then sends the sweep it held back (sweep.c) */
    p->always = e->sweeping;
    sb_writer w = sb_send_reply_writer(e);
    if (sb_plan_write(e, &w, SB_MSG_ACK2, p))
        sb_send_message(e, SB_TRAFFIC_EXCHANGE, from, &w);
}

bool sb_exchange_live_peer(const sb_peer *n)
{
    return !n->self && n->status == SB_STATUS_LIVE;
}

/* Sends a written SYN to `to` (not to our own address), with its token
 * for that address. One that asks for a sweep asks its first
 * destination only: the copies to the others (seeds, probed peers) go
 * without the cursor, so that one peer a round answers with SWEEPs (each
 * would answer from the same cursor). */
void sb_exchange_send_syn(sb_engine *e, sb_traffic t, const char *to,
                          sb_writer *syn, uint64_t now)
{
    if (strcmp(to, e->self->addr) == 0)
        return; /* a seed list names us too: the next one asks */
    sb_set_syn_token(syn->start, sb_token(e, to, now));
    sb_send_message(e, t, to, syn);
    sb_syn_drop_sweep(syn);
}

/* A SYN to an address that may not know us (a seed, a probed peer),
 * padded to `padded` bytes: its ACK (no larger than the SYN while we are
 * a stranger, and of a larger frame) needs room to be sent at all, and a
 * seed's, to ask us for our state. Liveness, for the bandwidth cap: it
 * finds who lives. */
void sb_exchange_send_padded_syn(sb_engine *e, const char *to,
                                 sb_writer *syn, size_t padded,
                                 uint64_t now)
{
    size_t len = (size_t)(syn->p - syn->start);
    if (len >= padded || (size_t)(syn->end - syn->start) < padded) {
        sb_exchange_send_syn(e, SB_TRAFFIC_LIVENESS, to, syn, now);
        return;
    }
    uint8_t *flags = sb_syn_flags(syn->start);
    memset(syn->p, 0, padded - len);
    *flags |= SB_SYN_PADDED;
    sb_writer w = { syn->start, syn->start + padded, syn->end };
    sb_exchange_send_syn(e, SB_TRAFFIC_LIVENESS, to, &w, now);
    *flags &= (uint8_t)~SB_SYN_PADDED;
    syn->p -= syn->start + padded - w.p; /* the cursor, if it went */
}

/* The probe of a peer we hold down, which may be alive and not know it:
 * a SYN of its own with the DOUBT flag, whose digest lists the peer alone,
 * at the heartbeat we hold it down at (exchange_doubted()). Not the
 * round's SYN: a doubt names what it doubts, so that once the peer has
 * refuted, the same probe again (replayed) moves nothing. */
static void exchange_send_doubt(sb_engine *e, const sb_peer *n,
                                uint64_t now)
{
    enum { DOUBT_MAX = SB_HEADER_SIZE + SB_TOKEN_SIZE + 1 + SB_SUMMARY_SIZE +
                       1 + SB_ID_SIZE + 3 * SB_VARINT_MAX };
    _Static_assert(DOUBT_MAX >= SB_PROBE_SIZE, "a doubt has room to pad");
    uint8_t buf[DOUBT_MAX]; /* the least max_message_size is larger */
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    sb_digest_entry d = sb_entry_of(n);
    sb_put_header(&w, SB_MSG_SYN, e->cluster_id);
    sb_put_u64(&w, 0); /* the token */
    sb_put_u8(&w, SB_SYN_ASK | SB_SYN_DOUBT);
    sb_put_u64(&w, sb_summary(e));
    sb_put_varint(&w, 1);
    sb_put_digest_entry(&w, &d);
    sb_exchange_send_padded_syn(e, n->addr, &w, SB_PROBE_SIZE, now);
}

/* A probe: a SYN that asks to be answered even if there is nothing to
 * tell, so that its answer proves the address (or its silence, that no
 * one answers there). Padded: n may not know us yet (a cluster forming),
 * even if it answered us once. */
void sb_exchange_send_probe(sb_engine *e, sb_peer *n, sb_writer *syn,
                            uint64_t now)
{
    /* a doubt: only it makes a live node we hold down move its heartbeat
     * (a JOINING one too, whose verdicts may be gone without that) */
    if (sb_liveness_held_down(e, n)) {
        exchange_send_doubt(e, n, now);
    } else {
        uint8_t *flags = sb_syn_flags(syn->start);
        *flags |= SB_SYN_ASK;
        sb_exchange_send_padded_syn(e, n->addr, syn, SB_PROBE_SIZE, now);
        *flags &= (uint8_t)~SB_SYN_ASK;
    }
    sb_liveness_probed(e, n, now);
}

/* A probe of peer n on its own (a monitor's, of a subject that has not
 * beaten it or whose beats are late, monitor.c): a quiet SYN that asks,
 * within n's backoff unless `now_or_never` (a subject about to be
 * convicted: MONITOR_LATE_PROBES a round, each counted as a probe for
 * the backoff that follows). */
void sb_exchange_probe(sb_engine *e, sb_peer *n, bool now_or_never,
                       uint64_t now)
{
    if (!now_or_never && !sb_liveness_may_probe(n, now))
        return;
    sb_writer syn = sb_send_writer(e);
    sb_exchange_write_syn(e, &syn, true, false, now);
    sb_exchange_send_probe(e, n, &syn, now);
}

/*
 * Quiet: while the last peer we compared with (by an exchange, or by the
 * summary in a beat, monitor.c) held the same summary as ours, and ours
 * has not changed since, we expect to agree, and our SYNs carry no
 * digest: a peer that agrees answers nothing, one that does not answers
 * as to a partial digest (its recent changes offered first), our ACK2
 * offers ours, and both sides send full digests until they agree again.
 */
bool sb_exchange_quiet(sb_engine *e)
{
    return e->cfg.monitors && e->agreed && e->agreed == sb_summary(e);
}

/* Remembers that member n was heard: first in e->heard. */
static void exchange_heard(sb_engine *e, const sb_peer *n)
{
    uint32_t i = 0;
    while (i < e->nheard && e->heard[i] != n->id)
        i++;
    if (i == e->nheard && e->nheard < HEARD)
        e->nheard++;
    if (i == HEARD)
        i--; /* the oldest gives way */
    memmove(e->heard + 1, e->heard, i * sizeof(*e->heard));
    e->heard[0] = n->id;
}

/* Whether we may send a SYN of a descent now: within RANGE_DESCENTS,
 * not while we sweep, while we differ, and while the cap has room for a
 * push as large (exchange_descend()). */
static bool exchange_may_descend(sb_engine *e)
{
    return e->descents < RANGE_DESCENTS && !e->sweeping &&
           !sb_exchange_quiet(e) &&
           sb_send_allowed(e, SB_TRAFFIC_PUSH, e->cfg.max_message_size);
}

/* Whether peer p may get a SYN of a descent. */
static bool exchange_descends_with(const sb_peer *p)
{
    return p && sb_exchange_live_peer(p) && p->answered;
}

/*
 * A descent into ranges goes on at once, not at the next round: when the
 * DIFF naming the parts that differ comes from the peer we descend with,
 * or its ACK to any SYN, the part on top of the stack goes in a new SYN
 * to it. Not waiting for the DIFF a SYN of fingerprints may bring: when
 * all of its parts agree none comes (they were mended since the DIFF
 * that named the range), and the descent, waiting, stopped until the
 * next round, one part of the stack a round (at 1024 nodes, after a
 * heal, most of the last stale nodes' rounds went so); the DIFF, when
 * it comes, adds its parts on top (range.c). A node left with
 * a few records stale after a heal found one a round or two (each part a
 * SYN of fingerprints, then a SYN listing it), which at 1024 nodes kept
 * the last of them stale for 1.9 s after the rest (range.c). At most
 * RANGE_DESCENTS such SYNs a round, and only while the cap has room for
 * a push as large: pushes wait for none of them (under a load past the
 * cap, test_load.c's test_fair_share_drains_in_time, their bytes put the
 * worst writer's p99 staleness at 1.3 s against a median of 0.4 s). The
 * rest wait for the rounds.
 */
static void exchange_descend(sb_engine *e, const char *from, uint64_t now)
{
    /* the cheap tests first: this follows every ACK */
    if (!e->nranges || e->descents >= RANGE_DESCENTS || e->sweeping)
        return;
    /* looked up afresh: an ACK's deltas may have replaced its record */
    const sb_peer *sender = sb_state_find_addr(&e->st, from, strlen(from));
    if (!sender || sender->id != e->range_peer ||
        !exchange_descends_with(sender) || !exchange_may_descend(e))
        return;
    e->descents++;
    sb_writer syn = sb_send_writer(e);
    sb_exchange_write_syn(e, &syn, false, true, now);
    sb_exchange_send_syn(e, SB_TRAFFIC_EXCHANGE, sender->addr, &syn, now);
}

/*
 * A descent goes on in RANGE_LANES chains at once: after the round's SYN,
 * up to RANGE_LANES - 1 more SYNs of it, each of the part then on top of
 * the stack, to the peer we descend with; with no descent under way and
 * a difference that stays (range.c), one more SYN of the whole space, to
 * another live peer. Each ACK that answers one of them lets the next go
 * (exchange_descend()), so a SYN, ACK or DIFF lost (at 10% loss, about
 * one step in five of a descent) stops one chain until the next round,
 * not the whole descent. With one chain, after the heal of a 2048-node
 * partition at 10% loss, a node sent 6 to 12 SYNs of its descent a
 * round of the RANGE_DESCENTS allowed, and every node held every record
 * 2.6 s after the heal; with four, 2.2 s (docs/protocol.md, section 5.3).
 * RANGE_ASKED keeps the last two SYNs of fingerprints of each chain, whose
 * DIFFs may still come. A SYN with no room for a range is not sent.
 */
void sb_exchange_lanes(sb_engine *e, uint64_t now)
{
    if (!e->cfg.monitors)
        return;
    for (uint32_t k = 1; k < RANGE_LANES && exchange_may_descend(e); k++) {
        const sb_peer *p = NULL;
        if (e->nranges)
            p = sb_state_find_id(&e->st, e->range_peer);
        else if (k == 1 && now - e->agreed_at >= RANGE_ROUNDS * e->round_ns)
            p = sb_liveness_random(e, sb_exchange_live_peer,
                                   e->nstatus[SB_STATUS_LIVE] - 1);
        if (!exchange_descends_with(p))
            return;
        uint64_t ranges = e->stats.ranges;
        sb_writer syn = sb_send_writer(e);
        sb_exchange_write_syn(e, &syn, false, true, now);
        if (e->stats.ranges == ranges)
            return; /* no room for a range */
        e->descents++;
        sb_exchange_send_syn(e, SB_TRAFFIC_EXCHANGE, p->addr, &syn, now);
    }
}

/* Every member address the deltas of m name is canonical text (one
 * spelling per member, nothing a log line or an event could be forged
 * with: addr_text.h). */
static bool exchange_addresses_ok(const sb_msg *m)
{
    sb_cursor c = { m->deltas, m->end };
    for (uint64_t i = 0; i < m->ndeltas; i++) {
        sb_delta d;
        sb_delta_next(&c, &d);
        if (!sb_addr_canonical(d.addr, d.addr_len))
            return false;
    }
    return true;
}

/* One datagram of our format: checked, opened if sealed, decoded whole,
 * its addresses checked, then dispatched by type; anything wrong is
 * dropped and counted. */
static void exchange_recv(sb_engine *e, const char *from, const uint8_t *buf,
                          size_t len, uint64_t now)
{
    int why = -1;
    /* any size a datagram can have is taken (a peer may be configured
     * with larger messages than ours); we answer within our own */
    if (len > SB_MAX_DATAGRAM)
        why = SB_DROP_OVERSIZE;
    else if (sb_header_check(buf, len, e->cluster_id, &why) &&
             (bool)(buf[3] & SB_SEALED) != e->sealing)
        why = e->sealing ? SB_DROP_PLAINTEXT : SB_DROP_SEALED;
    if (why < 0 && e->sealing && len > e->opened_cap) {
        uint8_t *grown = realloc(e->opened, len);
        if (grown) {
            e->opened = grown;
            e->opened_cap = len;
        } else {
            why = SB_DROP_NOMEM;
        }
    }
    if (why < 0 && e->sealing) {
        len = sb_open(e->keyring, buf, len, e->opened);
        buf = e->opened;
        if (!len)
            why = SB_DROP_AUTH;
    }
    sb_msg m;
    if (why < 0 && sb_msg_decode(buf, len, e->cluster_id, &m, &why) &&
        !exchange_addresses_ok(&m))
        why = SB_DROP_MALFORMED;
    /* an ACK or ACK2 must answer what we sent to its source */
    bool answer = why < 0 && (m.type == SB_MSG_ACK || m.type == SB_MSG_ACK2 ||
                              m.type == SB_MSG_SWEEP ||
                              m.type == SB_MSG_DIFF);
    if (answer && !sb_token_echoed(e, from, m.echo, now))
        why = SB_DROP_UNSOLICITED;
    if (why >= 0) {
        e->stats.drops[why]++;
        return;
    }
    e->last_heard = now;
    /* a stranger's message (not from a peer we know or a seed) gets a
     * reply no larger than itself, its PUSH is not passed on, and it may
     * speak of itself only (apply.c) */
    sb_peer *sender = sb_state_find_addr(&e->st, from, strlen(from));
    e->from = from;
    e->from_member = sender != NULL || sb_seeds_has(e, from);
    e->answered = answer;
    if (answer && sender) {
        sb_liveness_answered(e, sender);
        sb_monitor_answered(e, sender, now);
    }
    if (sender && !sender->self) {
        sb_liveness_contact(e, sender, now);
        exchange_heard(e, sender);
        if (sb_liveness_doubt_due(e, sender, now))
            exchange_send_doubt(e, sender, now);
    }
    e->reply_max = e->cfg.max_message_size;
    if (!e->from_member && len < e->reply_max)
        e->reply_max = len;
    switch (m.type) {
    case SB_MSG_SYN:
        /* for the ACK that answers it: only a SYN is answered by one */
        e->from_token = sb_token(e, from, now);
        exchange_syn(e, from, &m, now);
        break;
    case SB_MSG_ACK:
        exchange_ack(e, from, &m, now);
        exchange_descend(e, from, now);
        break;
    case SB_MSG_ACK2: {
        /* the sender's record may be replaced by what the deltas say (a
         * new generation): its id is taken first */
        uint64_t id = sender ? sender->id : 0;
        sb_apply_deltas(e, &m, now);
        if (id)
            sb_sweep_held(e, id, from, now); /* the asker answered */
        break;
    }
    case SB_MSG_PUSH:
        sb_push_recv(e, &m, e->from_member, now);
        break;
    case SB_MSG_BEAT:
        sb_monitor_recv(e, &m, now);
        break;
    case SB_MSG_SWEEP:
        sb_sweep_recv(e, &m, now);
        break;
    case SB_MSG_DIFF:
        sb_range_recv(e, sender, &m);
        exchange_descend(e, from, now);
        break;
    }
    e->from = NULL; /* the caller's: gone after this call */
}

/* A key entry of ours must fit one message with its frame. */
static int exchange_check_write(const sb_engine *e, size_t key_len,
                                size_t value_len, bool deleted)
{
    (void)deleted;
    return sb_key_entry_size(key_len, value_len, UINT64_MAX) >
                   e->max_key_entry
               ? SB_ETOOBIG
               : SB_OK;
}

const sb_wire_ops sb_scuttlebutt_wire = {
    .rounds = EXCHANGES,
    .leaves = true,
    .recv = exchange_recv,
    .round = sb_round,
    .greet = sb_round_greet,
    .announce = sb_announce,
    .check_write = exchange_check_write,
    /* heartbeats travel transitively: the detector learns their rhythm
     * alone, and an unproven peer waits like a down one */
    .gap_per_peer = 0.0,
    .unproven_expire = false,
    .threshold_scale = 1.0,
};
