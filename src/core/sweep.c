/*
 * The sweep: how a node that joins gets the whole cluster's state in a
 * few round trips instead of through digests of random samples
 * (docs/protocol.md, section 5.2).
 *
 * A new engine sweeps: while it has not swept the whole id space, every
 * SYN it sends has the SWEEP flag and a cursor, the end of the furthest
 * range of ids it was sent records of. A member that receives such a
 * SYN from a member it knows answers, after its ACK, with up to
 * SWEEP_BURST SWEEP messages: its records of the nodes whose ids follow
 * the cursor, whole, in id order, each message saying which ids it
 * covers, within a budget of SWEEP_BYTES_PER_S. The sweeper moves its
 * cursor to the end of every range that reaches past it, so that a burst
 * with a message lost goes on where it ended, not from the gap again;
 * a range that ends at the largest id ends the sweep. What the sweeper
 * still lacks then (the records of the messages lost, news younger than
 * the sweep, records the sweeping peer did not hold) comes by
 * anti-entropy: the descent into ranges (range.c) finds it.
 *
 * A member sweeps again when many nodes come back from down at once: a
 * partition healed, or we were cut off. Their records moved on meanwhile
 * (verdicts written and withdrawn), and anti-entropy, a few records an
 * exchange, would take seconds to bring them all. What moved on after
 * the sweep passed it, the descent into ranges finds (range.c).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Writes one SWEEP of the peers at positions *i..count of the id order
 * (sb_state_sorted()) after `from`, as many whole records as fit (the
 * first one cut if it fits no message whole, skipped if not even its
 * first key does); advances *i past those it covers. Returns the end of
 * its range: the next one's `from`. */
static uint64_t sweep_write(sb_engine *e, sb_writer *w, uint32_t count,
                            uint32_t *i, uint64_t echo, uint64_t from)
{
    size_t size = (size_t)(w->end - w->start);
    size_t frame = SB_HEADER_SIZE + SB_TOKEN_SIZE + 2 * SB_CURSOR_SIZE +
                   sb_varint_size(size / SB_DIGEST_ENTRY_MIN);
    size_t room = size > frame ? size - frame : 0;
    cand *cands = e->scratch.cands;
    uint32_t n = 0;
    uint64_t last = from; /* the id of the last record written */
    while (*i < count) {
        sb_peer *p = sb_state_sorted(&e->st, *i);
        cand c = { .n = p, .from = 0, .reset = p->gc_version > 0,
                   .whole = true, .down = p->convicted };
        size_t need = sb_plan_fit_delta(&c, room);
        bool whole = need && sb_plan_delta_to(&c) == p->max_version;
        if (!whole && (n || !need))
            break; /* the next message starts with it */
        cands[n++] = c;
        room -= need;
        last = p->id;
        (*i)++;
        if (!whole)
            break; /* cut: the rest of its keys by anti-entropy */
    }
    /* up to the next record (two records of one id, a 48-bit hash: the
     * second is left to anti-entropy, so that from < to always) */
    uint64_t to = SB_SWEEP_END;
    if (*i < count) {
        uint64_t next = sb_state_sorted(&e->st, *i)->id;
        to = next - 1 > last ? next - 1 : last;
    }
    if (!n && *i < count) /* a record no message holds: skipped */
        to = sb_state_sorted(&e->st, (*i)++)->id;
    while (*i < count && sb_state_sorted(&e->st, *i)->id <= to)
        (*i)++;
    sb_put_header(w, SB_MSG_SWEEP, e->cluster_id);
    sb_put_u64(w, echo);
    sb_put_u64(w, from);
    sb_put_u64(w, to);
    sb_put_varint(w, n);
    for (uint32_t k = 0; k < n; k++)
        sb_plan_write_delta(w, &cands[k]);
    return to;
}

/* The SWEEPs answering a sweep from `cursor`, echoing `token`. */
static void sweep_send(sb_engine *e, const char *from, uint64_t cursor,
                       uint64_t token, bool same, uint64_t now)
{
    sb_bucket_refill(&e->sweep_bytes, now);
    double most = (double)sb_send_wire_len(e, e->cfg.max_message_size);
    if (!sb_bucket_has(&e->sweep_bytes, most))
        return;
    uint32_t count = same ? 0 : e->st.count;
    uint32_t i = same ? 0 : sb_state_after(&e->st, cursor);
    for (int b = 0; b < SWEEP_BURST && cursor < SB_SWEEP_END &&
                    sb_bucket_has(&e->sweep_bytes, most);
         b++) {
        sb_writer w = sb_send_writer(e);
        cursor = sweep_write(e, &w, count, &i, token, cursor);
        size_t len = (size_t)(w.p - w.start);
        if (!sb_send_message(e, SB_TRAFFIC_EXCHANGE, from, &w))
            return; /* the bandwidth cap: the sweeper asks again */
        sb_bucket_take(&e->sweep_bytes, (double)sb_send_wire_len(e, len));
        e->stats.sweeps++;
    }
}

/* Where to hold back peer id's sweep: its own slot, else a free one (or
 * one held longer than an interval), else the oldest. */
static struct sweep_held *sweep_slot(sb_engine *e, uint64_t id,
                                     uint64_t now)
{
    if (!e->held && !(e->held = calloc(SWEEP_HELD, sizeof(*e->held))))
        return NULL;
    struct sweep_held *free = NULL, *oldest = &e->held[0];
    for (int i = 0; i < SWEEP_HELD; i++) {
        struct sweep_held *h = &e->held[i];
        if (h->id == id)
            return h;
        if (!free && (!h->id || now - h->at >= e->cfg.interval_ns))
            free = h;
        if (h->at < oldest->at)
            oldest = h;
    }
    return free ? free : oldest;
}

/* A SYN with the SWEEP flag from `from`, a member we know: if it holds
 * what we hold (`same`: its summary is ours), one SWEEP with no record
 * that ends its sweep (smaller than the SYN); else, if it is live, the
 * records after its cursor, in up to SWEEP_BURST messages, within the
 * budget, once its ACK2 to our ACK proves the SYN fresh (a sweeper
 * always answers an ACK, and only an answer that echoes our token of
 * this period or the last passes): held back until then, so that a
 * captured SYN replayed from a member's address (an attacker needs no
 * key for that), or one with its address forged, gets our ACK and no
 * more; served at once, a 104-byte sealed SYN replayed to each of 64
 * nodes drew 228 kB of SWEEPs onto the member in 500 ms. A forged SYN
 * must not turn us on an address a member left behind, or one a liar
 * vouched for, either. */
void sb_sweep_serve(sb_engine *e, const char *from, const sb_msg *m,
                    bool same, uint64_t now)
{
    const sb_peer *x = sb_state_find_addr(&e->st, from, strlen(from));
    if (!x || x->self || (!same && x->status != SB_STATUS_LIVE))
        return;
    if (same) {
        sweep_send(e, from, m->cursor, m->token, true, now);
        return;
    }
    struct sweep_held *h = sweep_slot(e, x->id, now);
    if (h)
        *h = (struct sweep_held){ x->id, m->cursor, m->token, now };
    else
        e->stats.drops[SB_DROP_NOMEM]++; /* the sweeper asks again */
}

/* An ACK2 came from `from`, peer `id`: if we hold back its sweep, it
 * answers our ACK (or another of the last interval: an answer comes
 * within a round trip), and the sweep goes. One held longer is dropped:
 * its SYN's token, which the SWEEPs echo, may no longer pass, and the
 * asker asks again every round. */
void sb_sweep_held(sb_engine *e, uint64_t id, const char *from,
                   uint64_t now)
{
    for (int i = 0; e->held && i < SWEEP_HELD; i++) {
        struct sweep_held *h = &e->held[i];
        if (h->id != id)
            continue;
        uint64_t cursor = h->cursor, token = h->token, at = h->at;
        h->id = 0;
        const sb_peer *x = sb_state_find_addr(&e->st, from, strlen(from));
        if (x && x->status == SB_STATUS_LIVE &&
            now - at < e->cfg.interval_ns)
            sweep_send(e, from, cursor, token, false, now);
        return;
    }
}

/* At a round: the held sweeps' slots are freed once none is held, or
 * held less than an interval ago (one held longer is as good as none:
 * sb_sweep_held() drops it, sweep_slot() takes its place). */
void sb_sweep_tidy(sb_engine *e, uint64_t now)
{
    for (int i = 0; e->held && i < SWEEP_HELD; i++)
        if (e->held[i].id && now - e->held[i].at < e->cfg.interval_ns)
            return;
    free(e->held);
    e->held = NULL;
}

/* A SWEEP that answers our SYN: its records taken, and our cursor moved
 * to the end of its range if that is past it. */
void sb_sweep_recv(sb_engine *e, const sb_msg *m, uint64_t now)
{
    sb_apply_deltas(e, m, now);
    /* we ask members and seeds only: a stranger's SWEEP (it holds its
     * address, so it can echo our token) moves no cursor, or one that
     * reaches the end would end our sweep */
    if (!e->from_member || !e->sweeping || m->to <= e->sweep)
        return;
    e->sweep = m->to;
    if (e->sweep == SB_SWEEP_END)
        e->sweeping = false;
}

/* A node came back from down (liveness.c): more than 1 / RETURNS_SHARE
 * of the live nodes, and RETURNS_LEAST, within a second, we sweep again
 * from the start, unless we sweep already. */
void sb_sweep_returned(sb_engine *e, uint64_t now)
{
    if (now - e->returns_at >= SEC) {
        e->returns = 0;
        e->returns_at = now;
    }
    e->returns++;
    if (e->sweeping || e->wire != &sb_scuttlebutt_wire ||
        e->returns < RETURNS_LEAST ||
        e->returns * RETURNS_SHARE <= e->nstatus[SB_STATUS_LIVE])
        return;
    e->sweeping = true;
    e->sweep = 0;
    e->returns = 0; /* those that come back from now on count anew */
}
