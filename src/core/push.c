/*
 * Eager push: our fresh keys go at once down a few trees that span the
 * live peers (one wave each), within the bandwidth cap; items of PUSHes
 * passed on. What a node sends goes through its outbox: a child gets a
 * PUSH at once, unless it got one within PUSH_LINGER; then, when that
 * pause is over, one PUSH of every item (of every writer) it is due
 * meanwhile. The trees are binomial trees over the monitor rings, so a
 * node's children in any wave are among its few ring neighbours at
 * distances 1, 2, 4, ...: under load, the items of many waves meet in the
 * same datagrams.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Fresh keys of ours were stored at `now`; our peers most likely hold us
 * up to version `before`. They go out with the next push, at once (the
 * driver sees the deadline move to now) unless our fair share holds it
 * back; writes until then share it. With `before` at our max version,
 * there is no key to push but news of our record (a leave, a
 * refutation): its header goes alone.
 */
void sb_push_queue(sb_engine *e, uint64_t before, uint64_t now)
{
    if (before >= e->self->max_version)
        e->push_news = true; /* no key: news of our record itself */
    if (!e->cfg.push_fanout || e->push_pending)
        return;
    e->push_pending = true;
    e->push_from = before;
    e->push_due = now;
}

/*
 * Our children in tree t (ring t) of a wave started by `root`, into
 * out[32]. The members are the nodes on the ring (the live ones,
 * ourselves included) and the root, in ring order from the root's place:
 * the root has rank 0, the next ranks 1, 2, ... up to M-1. The node of
 * rank r sends to ranks r + d for every power of two d above r (d = 1,
 * 2, 4, ... for the root), below M: a binomial tree, every member has
 * one parent, the depth is at most log2(M) and a wave costs M-1 packets.
 * Every node of rank r sends to the places 2^j after its own: whatever
 * the root, its children are among the same log2(M) ring neighbours.
 * A root not on our ring (not live in our view) is placed where it
 * would go.
 */
static uint32_t push_children(const sb_engine *e, uint64_t root, uint32_t t,
                              uint64_t *out)
{
    const sb_rings *r = &e->rings;
    bool on, self_on;
    uint32_t q = sb_rings_find(r, t, root, &on);
    uint32_t s = sb_rings_find(r, t, e->self->id, &self_on);
    if (!self_on)
        return 0;
    uint32_t m = r->count + !on;
    if (!on && s >= q)
        s++; /* places counted with the root among them */
    uint64_t rank = (s + m - q) % m, d = 1;
    while (d <= rank)
        d <<= 1;
    uint32_t n = 0;
    for (; rank + d < m; d <<= 1) {
        uint32_t c = (uint32_t)((q + rank + d) % m);
        out[n++] = !on && c == q ? root
                                 : sb_rings_at(r, t, !on && c > q ? c - 1 : c);
    }
    return n;
}

/* 64-bit mixing (splitmix64's finaliser): a wave's key. */
static uint64_t push_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The waves of one push share their id but for its low byte, which
 * numbers them 0 .. push_fanout - 1 (siblings) and names the tree; with
 * PUSH_ALONE set, the wave has no siblings: the push went down one tree
 * only (its writer was past its fair share). */
#define PUSH_SIBLING_MASK 0xffull
#define PUSH_ALONE 0x80ull
#define PUSH_TREE_MASK 0x7full

/* Whether the wave (root, wave) was seen (or started) lately. Two roots
 * may draw the same wave id (engines seeded alike), so the root is part
 * of the key. Key 0 marks an empty slot and is always seen. */
static uint64_t push_wave_key(uint64_t root, uint64_t wave)
{
    return push_mix64(root) ^ wave;
}

static bool push_seen(const sb_engine *e, uint64_t key)
{
    return key == 0 || (e->push_block && sb_waves_has(&e->waves, key));
}

/* The waves remembered at first: as many as the cap lets pass in
 * WAVES_WINDOW (1,792 at the default cap: under load a node sees about
 * 4,000 a second, and a wave's copies come down its trees tens of
 * milliseconds apart), at least WAVES_LEAST; more in a storm (below). */
static uint32_t push_waves(const sb_engine *e)
{
    double n = e->cap.rate * WAVES_WINDOW / SEC / WAVE_BYTES;
    return n > WAVES_LEAST ? (uint32_t)n : WAVES_LEAST;
}

/* The set of waves moved into one twice as large; left as it is if out
 * of memory (its oldest wave is then forgotten). */
static void push_waves_double(sb_waves *w)
{
    void *mem = calloc(1, sb_waves_bytes(2 * w->cap));
    if (!mem)
        return;
    sb_waves grown;
    sb_waves_init(&grown, mem, 2 * w->cap);
    sb_waves_move(&grown, w);
    free(w->keys);
    *w = grown;
}

/*
 * Remembers the wave (root, wave); false if it was seen already. Rather
 * than forget a wave that came within WAVES_SPREAD, the set doubles, up
 * to WAVES_GROWTH times its first size: when half a cluster comes back
 * at once, each of its nodes writes several times, and a node takes in
 * thousands of waves a second whose copies come down trees that its
 * parents, each with its own view, draw differently, up to a second
 * apart; a copy of a wave forgotten meanwhile went on again down every
 * tree, and its copies too (at 512 nodes, 6.6 times the items a healed
 * partition needed). Freed with the push's block.
 */
static bool push_new_wave(sb_engine *e, uint64_t root, uint64_t wave,
                          uint64_t now)
{
    uint64_t key = push_wave_key(root, wave);
    if (push_seen(e, key))
        return false;
    sb_waves *w = &e->waves;
    if (w->cap < push_waves(e) * WAVES_GROWTH &&
        sb_waves_crowded(w, now, WAVES_SPREAD))
        push_waves_double(w);
    sb_waves_add(w, key, now);
    return true;
}

/* Sends one PUSH of the items of the outbox's first n sends from slot
 * `first` on to `to`, all within max_message_size (push_send_outbox()
 * sized them). */
static void push_send_items(sb_engine *e, const char *to, uint32_t first,
                            uint32_t n)
{
    const sb_outbox *o = e->outbox;
    sb_writer w = sb_send_writer(e);
    sb_put_header(&w, SB_MSG_PUSH, e->cluster_id);
    sb_put_varint(&w, n);
    for (uint32_t s = first; n--; s = o->sends[s].next) {
        const sb_outbox_item *it = &o->items[o->sends[s].item];
        memcpy(w.p, o->bytes + it->at, it->len);
        sb_set_item_wave(w.p, o->sends[s].wave);
        w.p += it->len;
    }
    if (sb_send_message(e, SB_TRAFFIC_PUSH, to, &w))
        e->stats.pushes++;
}

/* A second of push counts is over: the writers' bitmap and the
 * one-tree items seen and lost start again, the last second's kept
 * beside them; after two seconds or more, the last second's counts are
 * of a second long gone: cleared too. Called before every count is read
 * or added to. */
static void push_turn_second(sb_engine *e, uint64_t now)
{
    if (now - e->writers_since < SEC)
        return;
    if (now - e->writers_since < 2 * SEC) {
        memcpy(e->writers[1], e->writers[0], sizeof(e->writers[0]));
        e->alone_seen[1] = e->alone_seen[0];
        e->alone_lost[1] = e->alone_lost[0];
    } else {
        memset(e->writers[1], 0, sizeof(e->writers[1]));
        e->alone_seen[1] = e->alone_lost[1] = 0;
    }
    memset(e->writers[0], 0, sizeof(e->writers[0]));
    e->alone_seen[0] = e->alone_lost[0] = 0;
    e->writers_since = now;
}

/* Counts `root` among the writers of the current second: a bit of a
 * bitmap (linear counting). */
static void push_count_writer(sb_engine *e, uint64_t root, uint64_t now)
{
    push_turn_second(e, now);
    uint32_t bit = (uint32_t)(push_mix64(root) % WRITER_BITS);
    e->writers[0][bit / 64] |= 1ull << (bit % 64);
}

/* About how many nodes pushed in the last one to two seconds, ourselves
 * included: from the bits left clear, at least 1 and at most the live
 * nodes (all of them when no bit is left). */
static double push_writers(const sb_engine *e)
{
    uint32_t set = 0;
    for (uint32_t i = 0; i < WRITER_BITS / 64; i++)
        set += (uint32_t)__builtin_popcountll(e->writers[0][i] |
                                             e->writers[1][i]);
    double live = e->nstatus[SB_STATUS_LIVE] ? e->nstatus[SB_STATUS_LIVE] : 1;
    if (set == WRITER_BITS)
        return live;
    double n = -(double)WRITER_BITS *
               log((double)(WRITER_BITS - set) / WRITER_BITS);
    return n < 1 ? 1 : n > live ? live : n;
}

/*
 * Our own pushes' fair share of what every node can pass on: every node
 * passes on every item once in each tree it goes down, so with W writers
 * pushing each may push 3/4 of the cap's rate over W, in bytes of items
 * times trees a second (a lone writer, nearly the cap's rate). A push
 * beyond it waits (nanoseconds returned), and the writes made meanwhile
 * go with it: a key written many times goes once, at its latest value.
 * The rest of the cap is for anti-entropy and liveness.
 */
static uint64_t push_share_wait(sb_engine *e, uint64_t now)
{
    sb_bucket *b = &e->push_share;
    b->rate = e->cap.rate * 3 / 4 / push_writers(e);
    sb_bucket_refill(b, now);
    if (b->level >= 0)
        return 0;
    return (uint64_t)(-b->level / b->rate * 1e9) + 1;
}

/* When a datagram of push may next go to `to`: PUSH_LINGER after the
 * last one, if that was lately; 0: now. */
static uint64_t push_link_ready(const sb_engine *e, uint64_t to)
{
    for (uint32_t i = 0; i < PUSH_LINKS; i++)
        if (e->links[i].id == to)
            return e->links[i].sent + PUSH_LINGER;
    return 0;
}

/* Records a datagram of push sent to `to` at `now`, in the slot of that
 * child or of one whose pause is over; none free (more children than
 * PUSH_LINKS within PUSH_LINGER), the next one to `to` is not held. */
static void push_link_sent(sb_engine *e, uint64_t to, uint64_t now)
{
    push_link *free_slot = NULL;
    for (uint32_t i = 0; i < PUSH_LINKS; i++) {
        push_link *l = &e->links[i];
        if (l->id == to) {
            l->sent = now;
            return;
        }
        if (!free_slot && (!l->id || l->sent + PUSH_LINGER <= now))
            free_slot = l;
    }
    if (free_slot)
        *free_slot = (push_link){ to, now };
}

/* How many sends the outbox holds (0 when it is not allocated). */
static uint32_t push_queued(const sb_engine *e)
{
    return e->outbox ? e->outbox->nsends : 0;
}

/*
 * Sends the outbox, to every child whose pause is over (all of them if
 * `all`), in the order of their ids: its items, in the order they came,
 * in as few datagrams as max_message_size allows. An item due to one
 * child in two trees goes once (the child passes every sibling wave on
 * from it). The items of children still paused, and those the cap cannot
 * take now (`all` or not), stay, and push_ready says when the first may
 * go. A child found live is looked up again only after a live peer
 * stopped being live or was forgotten (engine.live_lost): until then
 * its record is where it was found, and live.
 */
static void push_send_outbox(sb_engine *e, bool all, uint64_t now)
{
    sb_outbox *o = e->outbox;
    uint64_t live = e->live_lost + 1; /* a child's stamp: found live */
    e->push_ready = UINT64_MAX;
    for (uint32_t c = 0; c < o->nchildren; c++) {
        sb_outbox_child *ch = &o->children[c];
        uint64_t ready = all ? 0 : push_link_ready(e, ch->id);
        if (ch->stamp != live) {
            ch->peer = sb_state_find_id(&e->st, ch->id);
            if (!ch->peer || ch->peer->status != SB_STATUS_LIVE) {
                sb_outbox_pop(o, c, UINT32_MAX); /* gone meanwhile */
                continue;
            }
            ch->stamp = live;
        }
        if (ready > now) { /* paused: kept */
            if (ready < e->push_ready)
                e->push_ready = ready;
            continue;
        }
        /* cut into datagrams; those the cap cannot take now wait for
         * it, in order */
        sb_outbox_once(o, c);
        bool sent = false;
        while (ch->first != SB_OUTBOX_NONE) {
            size_t used;
            uint32_t n = sb_outbox_head(o, c, &used);
            uint64_t wait = sb_send_wait(e, SB_TRAFFIC_PUSH,
                                         used + SB_HEADER_SIZE +
                                             sb_varint_size(n));
            if (wait) {
                e->capped_at = now;
                if (now + wait < e->push_ready)
                    e->push_ready = now + wait;
                break;
            }
            push_send_items(e, ch->peer->addr, ch->first, n);
            sb_outbox_pop(o, c, n);
            sent = true;
        }
        if (sent)
            push_link_sent(e, ch->id, now);
    }
    sb_outbox_compact(o);
}

/* The outbox's size in bytes: what the cap lets pass in a few pauses of
 * PUSH_LINGER (36 kB at the default cap), at least a few messages. */
static size_t push_outbox_bytes(const sb_engine *e)
{
    size_t least = OUTBOX_MESSAGES * e->cfg.max_message_size;
    size_t lingers = (size_t)(e->cap.rate * OUTBOX_LINGERS * PUSH_LINGER / SEC);
    return lingers > least ? lingers : least;
}

/* Its (item, child) slots: one for every OUTBOX_ITEM_BYTES of it, at
 * least OUTBOX_SENDS. */
static uint32_t push_outbox_sends(const sb_engine *e)
{
    size_t n = push_outbox_bytes(e) / OUTBOX_ITEM_BYTES;
    return n > OUTBOX_SENDS ? (uint32_t)n : OUTBOX_SENDS;
}

/* Whether the outbox is backed up behind the cap: fuller than 1 /
 * OUTBOX_BACKED_UP. */
static bool push_backed_up(const sb_engine *e)
{
    return e->outbox &&
           e->outbox->len > push_outbox_bytes(e) / OUTBOX_BACKED_UP;
}

/* How long our own push waits for the outbox: until its first item may
 * go, at most PUSH_LINGER. */
static uint64_t push_outbox_wait(const sb_engine *e, uint64_t now)
{
    return e->push_ready > now && e->push_ready - now < PUSH_LINGER
               ? e->push_ready - now
               : PUSH_LINGER;
}

/* The bytes of the early items' block: EARLY_ITEMS slots, the state's
 * counts of touches, then EARLY_MESSAGES messages' bytes of items. */
static size_t push_early_bytes(const sb_engine *e)
{
    return EARLY_ITEMS * sizeof(push_early) +
           STATE_TOUCH_BUCKETS * sizeof(uint32_t) +
           EARLY_MESSAGES * e->cfg.max_message_size;
}

/* The outbox's memory. */
static size_t push_outbox_memory(const sb_engine *e)
{
    return sb_outbox_memory((uint32_t)push_outbox_bytes(e),
                            push_outbox_sends(e), OUTBOX_CHILDREN);
}

/* The bytes of the push's block (internal.h): the outbox's struct, the
 * links, then the outbox's memory. */
static size_t push_block_bytes(const sb_engine *e)
{
    return sizeof(sb_outbox) + PUSH_LINKS * sizeof(push_link) +
           push_outbox_memory(e);
}

/* The push's block, all zero, laid out as push_block_bytes() counts it,
 * and the waves' set. False if out of memory. */
static bool push_alloc(sb_engine *e)
{
    uint8_t *b = calloc(1, push_block_bytes(e));
    void *waves = calloc(1, sb_waves_bytes(push_waves(e)));
    if (!b || !waves) {
        free(b);
        free(waves);
        return false;
    }
    e->push_block = b;
    sb_waves_init(&e->waves, waves, push_waves(e));
    e->outbox = (sb_outbox *)b;
    e->links = (push_link *)(b + sizeof(sb_outbox));
    sb_outbox_init(e->outbox, e->links + PUSH_LINKS,
                   (uint32_t)push_outbox_bytes(e), push_outbox_sends(e),
                   OUTBOX_CHILDREN,
                   (uint32_t)(e->cfg.max_message_size - SB_HEADER_SIZE));
    return true;
}

/* Makes room in the outbox for an item of `len` bytes, sending the
 * outbox first if it is full; false if out of memory. */
static bool push_room(sb_engine *e, size_t len, uint64_t now)
{
    if (!e->push_block && !push_alloc(e))
        return false;
    /* an item goes to at most log2(M) + 1 children a tree */
    uint32_t depth = 1;
    while (depth < 32 && (1u << (depth - 1)) <= e->rings.count)
        depth++;
    uint32_t most = e->cfg.push_fanout * depth;
    if (!sb_outbox_fits(e->outbox, len, most))
        push_send_outbox(e, true, now);
    /* what the cap holds back may still fill it */
    return sb_outbox_fits(e->outbox, len, most);
}

/* Queues the outbox's item `item` for our children in the tree of wave
 * `wave` of `root`; true if one of them may have it now (else
 * push_ready says when the first may). */
static bool push_route(sb_engine *e, uint64_t root, uint64_t wave,
                       uint32_t item, uint64_t now)
{
    uint64_t kids[32];
    uint32_t t = (uint32_t)(wave & PUSH_TREE_MASK);
    uint32_t k = push_children(e, root, t, kids);
    bool ready = false;
    for (uint32_t i = 0; i < k; i++) {
        sb_outbox_queue(e->outbox, item, kids[i], wave);
        uint64_t when = push_link_ready(e, kids[i]);
        ready |= when <= now;
        if (when < e->push_ready)
            e->push_ready = when;
    }
    return ready;
}

/*
 * Passes an item on: in its own wave's tree and in the trees of its
 * sibling waves (an ALONE wave has none), each one that has not reached
 * us yet (a node whose parent in one tree lost the packet still gets it
 * from another one, and passes it on in that tree too: it misses the
 * update only if all of its parents do). Each node sends each wave at
 * most once. The item waits in the outbox; true if one of its children
 * may have it now.
 */
static bool push_pass_on(sb_engine *e, const uint8_t *item, size_t len,
                         uint64_t root, uint64_t wave, uint64_t now)
{
    bool alone = wave & PUSH_ALONE;
    uint64_t waves = wave & ~(alone ? PUSH_TREE_MASK : PUSH_SIBLING_MASK);
    uint32_t trees = alone ? 1u << (wave & PUSH_TREE_MASK)
                           : (1u << e->cfg.push_fanout) - 1;
    uint32_t fresh = 0; /* the waves to pass on, a bit each */
    push_count_writer(e, root, now);
    for (uint32_t i = 0; i < e->cfg.push_fanout; i++)
        if (trees >> i & 1 && !push_seen(e, push_wave_key(root, waves | i)))
            fresh |= 1u << i;
    if (!fresh)
        return false;
    if (!push_room(e, len, now)) {
        /* nothing marked seen: a later copy may still go on */
        e->stats.held_back[SB_TRAFFIC_PUSH]++;
        return false;
    }
    uint32_t stored = sb_outbox_add(e->outbox, item, len);
    bool ready = false;
    for (uint32_t i = 0; i < e->cfg.push_fanout; i++)
        if (fresh >> i & 1) {
            push_new_wave(e, root, waves | i, now);
            ready |= push_route(e, root, waves | i, stored, now);
        }
    sb_outbox_trim(e->outbox); /* taken back if we are a leaf in every
                                  tree */
    return ready;
}

/*
 * Whether the network loses too much for one tree: of the items pushed
 * down one tree that reached us in the last second or two, more than
 * 1 / LOSSY_SHARE were given up for a gap (the one before never came).
 * One tree has no sibling to fill a gap, and a writer's later items all
 * wait behind it: at 0.5% loss a hop, 64 nodes writing 200 times a
 * second stayed stale for seconds. Every push then goes down every tree
 * (within the same share: a third of the updates) for LOSSY_HOLD.
 */
static bool push_lossy(sb_engine *e, uint64_t now)
{
    uint32_t seen = e->alone_seen[0] + e->alone_seen[1];
    uint32_t lost = e->alone_lost[0] + e->alone_lost[1];
    if (seen >= LOSSY_LEAST && lost * LOSSY_SHARE > seen)
        e->lossy_until = now + LOSSY_HOLD;
    return now < e->lossy_until;
}

/* Plans our push from version `from` into a fresh send buffer: false if
 * nothing could be written; else the item's bytes and the version the
 * delta reaches. */
static bool push_plan(sb_engine *e, uint64_t from, const uint8_t **item,
                      size_t *len, uint64_t *done)
{
    plan *p = &e->plan;
    p->ncands = 1;
    e->scratch.cands[0] = (cand){ .n = e->self, .from = from };
    sb_writer w = sb_send_writer(e);
    if (!sb_plan_write(e, &w, SB_MSG_PUSH, p))
        return false;
    *done = p->nwritten ? sb_plan_delta_to(&e->scratch.cands[0]) : from;
    *item = w.start + SB_HEADER_SIZE + 1; /* n = 1 */
    *len = (size_t)(w.p - *item);
    return true;
}

/*
 * Pushes our fresh keys (from the version our peers most likely hold, cut
 * as a prefix) down push_fanout trees, one wave each: every node gets
 * them from push_fanout parents, so a lost packet rarely leaves a node to
 * anti-entropy. Keys past the cut go in the next push, at once if the
 * bandwidth cap allows. A push down every tree after pushes down one
 * tree starts where the first of those did, if the message then reaches
 * as far: it reaches a node by the first of its trees and is passed on
 * down all of them from there, often ahead of the one-tree pushes before
 * it, which would leave it (and the one-tree pushes after it) a gap that
 * no loss made (docs/protocol.md, section 8.4).
 */
static void push_start(sb_engine *e, uint64_t now)
{
    sb_peer *s = e->self;
    /* the cap is short: the push waits for it, and the writes made
     * meanwhile go with it */
    uint64_t wait =
        sb_send_wait(e, SB_TRAFFIC_PUSH, e->cfg.max_message_size);
    if (!wait)
        wait = push_share_wait(e, now);
    /* what we pass on is backed up behind the cap (the cluster writes
     * more than it carries, before our share has counted the writers):
     * ours waits for it */
    if (!wait && push_backed_up(e))
        wait = push_outbox_wait(e, now);
    if (wait) {
        e->push_due = now + wait;
        return;
    }
    if (s->max_version <= e->push_from && !e->push_news) {
        e->push_pending = false;
        return;
    }
    /* room first: sending the outbox takes the buffer the PUSH is
     * written in. An outbox full of items the cap holds back: the push
     * waits until the first of them may go (given up if out of memory) */
    if (!push_room(e, e->cfg.max_message_size, now)) {
        e->push_pending = e->push_block != NULL;
        e->push_due = now + push_outbox_wait(e, now);
        return;
    }
    e->push_pending = false;
    e->push_news = false;
    const uint8_t *item;
    size_t len;
    uint64_t done;
    if (!push_plan(e, e->push_from, &item, &len, &done))
        return;
    /* a wave id none of whose siblings we remember */
    uint64_t waves;
    bool taken;
    do {
        waves = sb_rng_next(&e->rng) & ~PUSH_SIBLING_MASK;
        taken = false;
        for (uint32_t i = 0; i < e->cfg.push_fanout; i++)
            taken |= push_seen(e, push_wave_key(s->id, waves | i));
    } while (taken);
    /* within our share every tree carries the push; past it one tree
     * does, at a third of the cost. The level may go below 0: the next
     * push waits it off */
    double all = (double)len * e->cfg.push_fanout;
    if (e->push_share.level < all && !push_lossy(e, now)) {
        waves |= PUSH_ALONE;
        if (!e->alone_pushed)
            e->alone_from = e->push_from;
        e->alone_pushed = true;
    } else if (e->alone_pushed) {
        /* every tree, after one-tree pushes: from where they started,
         * if that fits the message as far (else as planned: a push
         * resends at most a message of what they brought) */
        e->alone_pushed = false;
        uint64_t wide;
        if (e->alone_from < e->push_from) {
            /* the buffer holds the wide plan, or what a failed one left:
             * then the usual plan is made again */
            if (push_plan(e, e->alone_from, &item, &len, &wide) &&
                wide >= done)
                done = wide;
            else if (!push_plan(e, e->push_from, &item, &len, &done))
                return;
        }
        all = (double)len * e->cfg.push_fanout;
    }
    e->push_share.level -= waves & PUSH_ALONE ? (double)len : all;
    e->push_at = now;
    (void)push_pass_on(e, item, len, s->id, waves, now);
    if (s->max_version > done)
        sb_push_queue(e, done, now);
}

static void push_expire_early(sb_engine *e, uint64_t now);

/* A tick: our own push, if due, then the outbox to the children whose
 * pause is over. */
void sb_push_flush(sb_engine *e, uint64_t now)
{
    push_turn_second(e, now);
    push_expire_early(e, now);
    if (e->push_pending && now >= e->push_due)
        push_start(e, now);
    if (push_queued(e))
        push_send_outbox(e, false, now);
}

/*
 * A round: after PUSH_REST without a push, with nothing in the outbox
 * and no early item, the push's memory is freed (tens of kilobytes at
 * the default cap: a cluster that wrote once does not keep it). A copy
 * of a wave that comes later still is passed on again, once.
 */
void sb_push_rest(sb_engine *e, uint64_t now)
{
    if ((!e->push_block && !e->early_items) || now - e->push_at < PUSH_REST ||
        push_queued(e) || e->early_count || e->push_pending)
        return;
    sb_push_free(e);
}

/* Frees the push's block and the early items, with what they held (the
 * outbox's items, the waves remembered); the next push allocates them
 * again. Also at sb_engine_free(). */
void sb_push_free(sb_engine *e)
{
    free(e->push_block);
    free(e->waves.keys); /* the start of the waves' memory */
    free(e->early_items); /* and early, in the same block */
    e->push_block = NULL;
    e->waves = (sb_waves){ 0 };
    e->links = NULL;
    e->outbox = NULL;
    e->early_items = NULL;
    e->st.touches = NULL;
    e->early = NULL;
    e->early_count = e->early_len = 0;
    /* our one-tree pushes are over (no push came or went for PUSH_REST):
     * nothing a push down every tree could overtake, and every node holds
     * what they brought, or got it by exchange */
    e->alone_pushed = false;
}

/* Bytes the push holds: its block and the early items'. */
size_t sb_push_memory(const sb_engine *e)
{
    return (e->push_block
                ? push_block_bytes(e) + sb_waves_bytes(e->waves.cap)
                : 0) +
           (e->early_items ? push_early_bytes(e) : 0);
}

/* Whether a push past its writer's fair share came within the last
 * second: the cluster writes more than the cap carries. */
bool sb_push_saturated(const sb_engine *e, uint64_t now)
{
    return e->alone_at && now - e->alone_at < SEC;
}

/* Whether a datagram of push waited for the cap within the last second:
 * what else we send takes the bytes the pushes need. */
bool sb_push_capped(const sb_engine *e, uint64_t now)
{
    return e->capped_at && now - e->capped_at < SEC;
}

/* When a tick has a push to send: our own, or the outbox's first to a
 * child whose pause is over; UINT64_MAX if none waits. */
uint64_t sb_push_due(const sb_engine *e)
{
    uint64_t t = push_queued(e) ? e->push_ready : UINT64_MAX;
    if (e->push_pending && e->push_due < t)
        t = e->push_due;
    return t;
}

/* A push of `root` left a gap (one before it did not reach us): our
 * next SYN lists root first, and the peer it goes to, most likely ahead,
 * sends what we lack. The oldest is forgotten when the list is full. */
static void push_behind(sb_engine *e, uint64_t root)
{
    for (uint32_t i = 0; i < e->nbehind; i++)
        if (e->behind[i] == root)
            return;
    if (e->nbehind == BEHIND) {
        memmove(e->behind, e->behind + 1, (BEHIND - 1) * sizeof(*e->behind));
        e->nbehind--;
    }
    if (!e->behind && !(e->behind = malloc(BEHIND * sizeof(*e->behind)))) {
        e->stats.drops[SB_DROP_NOMEM]++; /* an exchange finds the gap */
        return;
    }
    e->behind[e->nbehind++] = root;
}

/* Whether we hold all an item brings: every delta about a record we
 * hold at its generation, with keys, all of whose versions we hold. */
static bool push_item_held(const sb_engine *e, const sb_push_item *it)
{
    sb_cursor c = { it->deltas, it->end };
    for (uint64_t i = 0; i < it->ndeltas; i++) {
        sb_delta d;
        sb_delta_next(&c, &d);
        const sb_peer *n = sb_state_find_id(
            &e->st, sb_peer_id(d.addr, d.addr_len, d.generation));
        if (!n || !d.nkeys || d.to_version > n->max_version)
            return false;
    }
    return true;
}

/* Applies the item at [item, end) of a PUSH like m; false if a delta of
 * it was refused for a gap (counted). */
static bool push_apply(sb_engine *e, const sb_msg *m, const uint8_t *item,
                       const uint8_t *end, uint64_t now)
{
    sb_cursor c = { item, end };
    sb_push_item it;
    sb_push_item_next(&c, &it);
    sb_msg one = *m;
    one.ndeltas = it.ndeltas;
    one.deltas = it.deltas;
    one.end = it.end;
    return sb_apply_deltas(e, &one, now);
}

/* Lets early item i go: applied, or (`behind`) given up, and then its
 * writer is one we are behind on. */
static void push_drop_early(sb_engine *e, uint32_t i, bool behind)
{
    push_early h = e->early_items[i];
    if (behind) {
        sb_cursor c = { e->early + h.at, e->early + h.at + h.len };
        sb_push_item it;
        sb_push_item_next(&c, &it);
        push_behind(e, it.root);
        e->alone_lost[0] += (it.wave & PUSH_ALONE) != 0;
    }
    memmove(e->early + h.at, e->early + h.at + h.len,
            e->early_len - h.at - h.len);
    e->early_len -= h.len;
    memmove(e->early_items + i, e->early_items + i + 1,
            (e->early_count - i - 1) * sizeof(*e->early_items));
    e->early_count--;
    for (uint32_t j = 0; j < e->early_count; j++)
        if (e->early_items[j].at > h.at)
            e->early_items[j].at -= h.len;
}

/* The early items whose wait is over: we are behind on their writers. */
static void push_expire_early(sb_engine *e, uint64_t now)
{
    while (e->early_count && e->early_items[0].until <= now)
        push_drop_early(e, 0, true);
}

/*
 * An item refused for a gap: on a path with jitter, the push before it
 * may still be on its way (a PUSH cut into several datagrams, or two
 * waves down different trees). It waits up to EARLY_WAIT to be applied
 * after it; then, or when the oldest must make room, our next SYN asks
 * for what we lack (push_behind()).
 */
static void push_keep_early(sb_engine *e, const uint8_t *item, size_t len,
                            uint64_t now)
{
    size_t cap = EARLY_MESSAGES * e->cfg.max_message_size;
    if (!e->early_items) { /* the slots, the touches, then the bytes */
        e->early_items = calloc(1, push_early_bytes(e));
        e->st.touches =
            e->early_items ? (uint32_t *)(e->early_items + EARLY_ITEMS) : NULL;
        e->early = e->early_items
                       ? (uint8_t *)(e->st.touches + STATE_TOUCH_BUCKETS)
                       : NULL;
    }
    sb_cursor c = { item, item + len };
    sb_push_item it;
    sb_push_item_next(&c, &it);
    if (!e->early || len > cap) {
        push_behind(e, it.root);
        return;
    }
    while (e->early_count == EARLY_ITEMS || e->early_len + len > cap)
        push_drop_early(e, 0, true);
    memcpy(e->early + e->early_len, item, len);
    e->early_items[e->early_count++] = (push_early){
        now + EARLY_WAIT, e->early_len, (uint32_t)len, NULL, 0, 0, 0
    };
    e->early_len += (uint32_t)len;
}

/* Whether early item h, of one delta, would be refused again for its
 * gap and change nothing (apply.c, sb_apply_refuses()): then it is not
 * applied again. Its record is looked up again only after records came
 * or went; refused once, it is refused while no record of its bucket of
 * touches changed, and the sender may speak of it. */
static bool push_early_refused(sb_engine *e, push_early *h)
{
    uint32_t *touches = e->st.touches;
    if (h->found == e->st.changes + 1 && e->from_member &&
        h->refused == touches[h->bucket] + 1)
        return true;
    sb_cursor c = { e->early + h->at, e->early + h->at + h->len };
    sb_push_item it;
    sb_push_item_next(&c, &it);
    if (it.ndeltas != 1)
        return false;
    c = (sb_cursor){ it.deltas, it.end };
    sb_delta d;
    sb_delta_next(&c, &d);
    if (h->found != e->st.changes + 1) {
        h->peer = sb_state_find_addr(&e->st, d.addr, d.addr_len);
        h->found = e->st.changes + 1;
        h->bucket = h->peer ? sb_state_touch_bucket(h->peer->id) : 0;
    }
    bool refused = h->peer && sb_apply_refuses(e, h->peer, &d);
    h->refused = refused ? touches[h->bucket] + 1 : 0;
    return refused;
}

/* After items were applied: the early ones that follow them now (each
 * refusal was counted once, when it came). */
static void push_retry_early(sb_engine *e, const sb_msg *m, uint64_t now)
{
    for (bool more = true; more;) {
        more = false;
        for (uint32_t i = 0; i < e->early_count;) {
            push_early *h = &e->early_items[i];
            if (push_early_refused(e, h)) {
                i++;
                continue;
            }
            uint64_t gaps = e->stats.drops[SB_DROP_GAP];
            bool ok = push_apply(e, m, e->early + h->at,
                                 e->early + h->at + h->len, now);
            e->stats.drops[SB_DROP_GAP] = gaps;
            if (ok) {
                push_drop_early(e, i, false);
                more = true;
            } else {
                i++;
            }
        }
    }
}

/*
 * Whether an item is a copy of a wave we passed on already. Below
 * saturation the waves we remember tell. Past it (pushes past their
 * writers' share arrive, or our outbox is backed up behind the cap),
 * more waves than we remember may come before the last copy of one, which
 * would go down every tree again, and its copies too: a storm. Then a
 * copy of a wave with siblings whose keys we hold is taken for one.
 * (Not below saturation: an exchange often brings the keys before the
 * wave, and the trees would lose us as a parent.)
 */
static bool push_repeat(const sb_engine *e, const sb_push_item *it,
                        uint64_t now)
{
    if (push_seen(e, push_wave_key(it->root, it->wave)))
        return true;
    return !(it->wave & PUSH_ALONE) &&
           (sb_push_saturated(e, now) || push_backed_up(e)) &&
           push_item_held(e, it);
}

/*
 * A PUSH: each item passed on to our children in its wave's tree, and in
 * the trees of its sibling waves that have not reached us (once per wave,
 * and only if it came from a peer we know), then applied like an ACK2.
 * Passing on comes first: to each child now, unless we sent it a PUSH
 * within PUSH_LINGER; then when that pause is over, with every other item
 * for it that came meanwhile. An item that follows one we lack waits
 * for it a while (push_keep_early()).
 */
void sb_push_recv(sb_engine *e, const sb_msg *m, bool known, uint64_t now)
{
    push_turn_second(e, now);
    if (known)
        e->push_at = now;
    sb_cursor c = { m->items, m->end };
    bool ready = push_queued(e) && now >= e->push_ready;
    for (uint64_t i = 0; i < m->nitems; i++) {
        sb_push_item it;
        sb_push_item_next(&c, &it);
        size_t len = (size_t)(it.end - it.start);
        /* an item larger than our own messages hold (from a peer
         * configured with larger ones) is taken, not passed on; so is
         * one the outbox has no room for (counted in push_pass_on()):
         * nothing is marked seen, and a later copy may still go on */
        if (!e->cfg.push_fanout || !known ||
            (it.wave & PUSH_TREE_MASK) >= e->cfg.push_fanout ||
            len + SB_HEADER_SIZE + 1 > e->cfg.max_message_size ||
            push_repeat(e, &it, now))
            continue;
        ready |= push_pass_on(e, it.start, len, it.root, it.wave, now);
    }
    if (ready)
        push_send_outbox(e, false, now);
    push_expire_early(e, now);
    bool applied = false;
    c = (sb_cursor){ m->items, m->end };
    for (uint64_t i = 0; i < m->nitems; i++) {
        sb_push_item it;
        sb_push_item_next(&c, &it);
        /* a stranger's items tell nothing of the cluster's load */
        if (known && (it.wave & PUSH_ALONE)) {
            e->alone_at = now;
            e->alone_seen[0]++;
        }
        if (push_apply(e, m, it.start, it.end, now))
            applied = true;
        else if (known)
            push_keep_early(e, it.start, (size_t)(it.end - it.start), now);
    }
    /* a stranger's items are never applied (their deltas are hearsay,
     * or empty): retried in its name, the early items' deltas would be
     * dropped as hearsay too, and the items let go as if applied */
    if (applied && known && e->early_count)
        push_retry_early(e, m, now);
}
