/*
 * Ranges: how two nodes whose summaries differ find where, in a few
 * exchanges however many records they hold (docs/protocol.md, section
 * 5.3).
 *
 * A range is a part (from, to] of the 48-bit id space; its fingerprint is
 * the XOR of the shares (summary.c) of the records whose ids fall in it,
 * cut to 32 bits; the state keeps the records in id order (st.sorted),
 * so a fingerprint costs a pass over its range. When no peer's summary
 * has matched a node's for RANGE_ROUNDS, its round's SYN carries a range
 * (the whole id space first) in one of two forms:
 *
 *   - fingerprints: the range cut into SB_RANGE_PARTS parts of equal
 *     width, a fingerprint each. A receiver whose summary differs
 *     answers, after its ACK, with a DIFF naming the parts whose
 *     fingerprints differ from its own; the initiator keeps them (a
 *     stack: one part's parts before the next part) and descends into
 *     them with the same peer (at once, exchange.c, else a round each);
 *   - listed: the digest lists every record the initiator holds in the
 *     range (its records there fit the digest). The receiver answers as
 *     to a COMPLETE SYN within the range: a record of the range the
 *     digest left out, the initiator lacks, and it goes whole in the ACK.
 *     The rest is the exchange as ever: entries where either side is
 *     behind are sent or asked for.
 *
 * Each descent divides the range by SB_RANGE_PARTS, so a difference among
 * N records is listed after about log16(N / L) exchanges of fingerprints,
 * where L records fit a digest (two at 4,096 nodes and 512-byte
 * messages), and mended by the exchange that lists it. Ids are hashes,
 * so the parts hold about equal numbers of records.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The part of (from, to] that holds `id` (from < id <= to): part i is
 * (from + w * i / P, from + w * (i + 1) / P], w = to - from, P parts. */
static uint32_t range_part(uint64_t from, uint64_t to, uint64_t id)
{
    return (uint32_t)((SB_RANGE_PARTS * (id - from) - 1) / (to - from));
}

static uint64_t range_bound(uint64_t from, uint64_t to, uint32_t i)
{
    return from + (to - from) * i / SB_RANGE_PARTS;
}

/* The fingerprints of the parts of (from, to], from our records (their
 * shares brought up to date first: a digest just taken may have moved a
 * heartbeat). */
static void range_prints(sb_engine *e, uint64_t from, uint64_t to,
                         uint32_t prints[SB_RANGE_PARTS])
{
    sb_summary(e);
    memset(prints, 0, SB_RANGE_PARTS * sizeof(*prints));
    uint32_t end = sb_state_after(&e->st, to);
    for (uint32_t i = sb_state_after(&e->st, from); i < end; i++) {
        const sb_peer *n = sb_state_sorted(&e->st, i);
        prints[range_part(from, to, n->id)] ^= (uint32_t)n->share;
    }
}

/*
 * The range the round's SYN carries, if one is due: we differ (the SYN is
 * not quiet) and either a DIFF left parts to descend into, or no peer's
 * summary matched ours for RANGE_ROUNDS (news spreading makes nodes
 * differ for a few milliseconds; a difference that stays is one that
 * pushes and the recent changes an exchange offers did not mend). Listed
 * if our records in it fit `room` bytes of entries, else fingerprints.
 * Taken off the stack: a SYN or DIFF lost leaves it to the next descent
 * from the whole space.
 */
bool sb_range_pick(sb_engine *e, size_t room, uint64_t now, sb_range *r)
{
    bool stays = now - e->agreed_at >= RANGE_ROUNDS * e->round_ns;
    if (!e->cfg.monitors || (!e->nranges && !stays))
        return false;
    r->from = 0;
    r->to = SB_SWEEP_END;
    if (e->nranges) {
        r->from = e->ranges[e->nranges - 1].from;
        r->to = e->ranges[e->nranges - 1].to;
    }
    r->first = sb_state_after(&e->st, r->from);
    r->end = sb_state_after(&e->st, r->to);
    size_t need = SB_RANGE_SIZE(0);
    for (uint32_t i = r->first; i < r->end && need <= room; i++) {
        sb_digest_entry d = sb_entry_of(sb_state_sorted(&e->st, i));
        need += sb_digest_entry_size(&d);
    }
    r->listed = need <= room;
    if (!r->listed && SB_RANGE_SIZE(SB_RANGE_PARTS) > room)
        return false; /* no room this time: the range waits */
    if (e->nranges)
        e->nranges--;
    return true;
}

/* The range section of a SYN (after its cursor, if any); with
 * fingerprints, the range is one a DIFF may answer (it takes the place
 * of the oldest of the last RANGE_ASKED). */
void sb_range_put(sb_engine *e, sb_writer *w, const sb_range *r)
{
    sb_put_u64(w, r->from);
    sb_put_u64(w, r->to);
    sb_put_u8(w, r->listed ? 0 : SB_RANGE_PARTS);
    if (r->listed)
        return;
    e->asked[e->nasked++ % RANGE_ASKED] = (struct sb_asked){ r->from, r->to };
    uint32_t prints[SB_RANGE_PARTS];
    range_prints(e, r->from, r->to, prints);
    for (uint32_t i = 0; i < SB_RANGE_PARTS; i++)
        sb_put_u32(w, prints[i]);
}

/* A SYN with a listed range, from a peer whose summary differs from
 * ours, its digest taken (the records it listed are marked with
 * `epoch`): the records of the range it left out, it lacks; they are
 * queued whole in the ACK's plan. */
void sb_range_complete(sb_engine *e, plan *p, const sb_msg *m,
                       uint32_t epoch)
{
    if (m->nprints)
        return;
    uint32_t end = sb_state_after(&e->st, m->to);
    for (uint32_t i = sb_state_after(&e->st, m->from); i < end; i++) {
        sb_peer *n = sb_state_sorted(&e->st, i);
        if (n->mark != epoch) {
            n->mark = epoch; /* not offered again as a recent change */
            sb_plan_add(e, p, n, 0, 0, true);
        }
    }
}

/* A SYN with fingerprints, from a peer whose summary differs from ours,
 * answered (after the ACK) by a DIFF naming the parts whose fingerprints
 * are not ours; by nothing if none. */
void sb_range_answer(sb_engine *e, const char *from, const sb_msg *m)
{
    if (!m->nprints)
        return;
    uint32_t prints[SB_RANGE_PARTS];
    range_prints(e, m->from, m->to, prints);
    uint64_t differ = 0;
    for (uint32_t i = 0; i < SB_RANGE_PARTS; i++)
        if (prints[i] != sb_print_at(m, i))
            differ |= 1u << i;
    if (!differ)
        return;
    sb_writer w = sb_send_reply_writer(e);
    if (sb_put_header(&w, SB_MSG_DIFF, e->cluster_id) &&
        sb_put_u64(&w, m->token) && sb_put_u64(&w, m->from) &&
        sb_put_u64(&w, m->to) && sb_put_varint(&w, differ) &&
        sb_send_message(e, SB_TRAFFIC_EXCHANGE, from, &w))
        e->stats.diffs++;
}

_Static_assert(SB_RANGE_PARTS <= RANGES, "a DIFF's parts fit the list");

/* Whether part i of (from, to] is named in `differ` and holds an id. */
static bool range_differs(uint64_t from, uint64_t to, uint64_t differ,
                          uint32_t i)
{
    return (differ >> i & 1) &&
           range_bound(from, to, i) < range_bound(from, to, i + 1);
}

/* A DIFF that answers our SYN, from member `sender`: its parts, kept to
 * descend into with it, the first part on top. The list is a stack, so
 * a descent goes down one part before the next; if the DIFF's parts do
 * not all fit, the parts at the bottom, those a descent would reach
 * last, make room (they are left to a later descent from the whole
 * space): kept instead, a DIFF of sixteen parts filled the list, and
 * each part below them was descended into by one of its differing parts
 * only. Only the first DIFF about a range of one of our last
 * RANGE_ASKED SYNs of fingerprints is taken (a token is per address, not
 * per SYN), so a DIFF repeated, made up or about a range we no longer
 * await moves nothing. A descent does not wait for a DIFF (exchange.c):
 * the ACK that comes before it (alone, if all parts agree) lets the next
 * SYN go, and the DIFF, when it comes, adds its parts on top. */
void sb_range_recv(sb_engine *e, const sb_peer *sender, const sb_msg *m)
{
    if (!sender)
        return;
    uint32_t k = 0;
    while (k < RANGE_ASKED &&
           (m->from != e->asked[k].from || m->to != e->asked[k].to))
        k++;
    if (k == RANGE_ASKED)
        return;
    e->asked[k].from = e->asked[k].to = 0; /* no range is (0, 0] */
    uint32_t parts = 0;
    for (uint32_t i = 0; i < SB_RANGE_PARTS; i++)
        parts += range_differs(m->from, m->to, m->differ, i);
    if (parts && !e->ranges &&
        !(e->ranges = malloc(RANGES * sizeof(*e->ranges)))) {
        e->stats.drops[SB_DROP_NOMEM]++;
        return;
    }
    if (e->nranges + parts > RANGES) {
        uint32_t drop = e->nranges + parts - RANGES; /* <= nranges */
        e->nranges -= drop;
        memmove(e->ranges, e->ranges + drop,
                e->nranges * sizeof(e->ranges[0]));
    }
    for (uint32_t i = SB_RANGE_PARTS; i-- > 0;) {
        if (!range_differs(m->from, m->to, m->differ, i))
            continue;
        e->ranges[e->nranges].from = range_bound(m->from, m->to, i);
        e->ranges[e->nranges].to = range_bound(m->from, m->to, i + 1);
        e->nranges++;
    }
    e->range_peer = sender->id;
}

/* At a round: the parts' slots are freed once none is left to descend
 * into (a DIFF that comes later allocates them again). */
void sb_range_tidy(sb_engine *e)
{
    if (e->ranges && !e->nranges) {
        free(e->ranges);
        e->ranges = NULL;
    }
}
