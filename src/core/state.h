/*
 * Cluster state: every peer this engine knows, each with its keys.
 *
 * A peer's keys are kept in one array sorted by version, so the keys a
 * peer lacks (version > its max) are a suffix found by binary search and
 * sent in version order. Invariant: every key version of a peer is at most
 * its max_version, so a key entry newer than max_version always goes to
 * the end of the array.
 *
 * Peers live in a dense array indexed by two open-addressing tables (by
 * peer id and by address). Beside it, two arrays of the same length keep
 * what the gossip round scans every time, so that a round over thousands
 * of peers reads a few contiguous kilobytes: `due` (when each peer next
 * needs attention: conviction, forgetting or tombstone collection) and
 * `perm` (a permutation of the indices, reshuffled in part by every
 * random sample the engine draws).
 */
#ifndef SB_STATE_H
#define SB_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phi.h"
#include "scuttlebutt.h"

/* One key of one peer: the key bytes, then the value bytes. */
typedef struct sb_key {
    uint64_t version;
    uint64_t deleted_at;  /* local time the tombstone was made or learned */
    uint32_t value_len;
    uint8_t key_len;
    bool deleted;
    uint8_t data[];       /* key_len bytes of key, value_len of value */
} sb_key;

static inline const uint8_t *sb_key_value(const sb_key *k)
{
    return k->data + k->key_len;
}

/* The first 64 bytes hold what a digest entry touches (one cache line
 * per peer: a round over thousands of peers is memory-bound). A peer
 * costs 112 bytes and its address (1 of them padding, after the bits),
 * and one with keys their sb_keys_head. */
typedef struct sb_peer {
    uint64_t id;          /* sb_peer_id(addr, generation) */
    uint64_t heartbeat;
    uint64_t max_version; /* every key version is <= this */
    uint64_t gc_version;  /* highest tombstone version collected */
    uint32_t index;       /* in sb_state.peers */
    uint32_t mark;        /* scratch for the engine: "seen in this digest" */
    uint8_t status;       /* sb_status */
    uint8_t probes;       /* probes since it last answered, or was live
                             after answering once */
    uint8_t addr_len;
    uint8_t keys_log;     /* keys has room for 2^keys_log, or none if 0 */
    uint8_t by_key_log;   /* the key index has 2^by_key_log slots, or
                             there is none if 0 */
    bool leaving : 1;
    bool self : 1;
    bool hb_news : 1;     /* a newer heartbeat came in since we last
                             listed the peer in a digest */
    bool touched : 1;     /* in sb_state.touched: share to compute again */
    bool answered : 1;    /* its address answered us (token.c) */
    bool linked : 1;      /* reference wire: its digest named nodes other
                             than itself and us (ref_exchange.c) */
    bool voter : 1;       /* in the engine's voters: it may hold a verdict */
    bool accused : 1;     /* a verdict that counts names it in our view,
                             as of the last rejudge, or of a verdict or
                             its record arriving since (liveness.c); the
                             monitors look past it (monitor.c) */
    bool stays_down : 1;  /* scratch for a return from being alone:
                             convicted (liveness.c) */
    bool alone_down : 1;  /* held down only because we heard no one
                             (liveness.c, sb_liveness_alone()) */
    bool convicted : 1;   /* held down by its monitors' verdicts, as
                             they stood when we took it down or as its
                             record arrived (liveness.c): a delta's down
                             flag */
    bool rejudge : 1;     /* what its monitors' votes read may have
                             changed since the last rejudge judged it:
                             the next one judges it (liveness.c) */
    uint32_t nkeys;
    uint32_t state_bytes; /* key and value bytes of the application's
                             keys (not the reserved ones): at most
                             max_state_bytes, itself below 4 GiB */
    uint64_t share;       /* its part of sb_state.summary (summary.c) */
    uint64_t generation;
    uint64_t probe_at;    /* not live: the earliest next probe */
    uint64_t beat;        /* the count of the last BEAT taken from it */
    /* sorted by version; then, once a peer has held more than
     * STATE_SCAN_KEYS, the key index in the same allocation: keys by
     * their bytes, open addressing, linear probing, at most 3/4 full,
     * NULL an empty slot (state.c). The allocation begins with an
     * sb_keys_head, just before keys[0]; NULL until the first key. */
    sb_key **keys;
    union {               /* by status: one or the other, never both */
        sb_phi phi;       /* live: its detector (liveness.c), reset as
                             it comes alive */
        uint64_t status_since; /* not live: when it stopped being live,
                             or was added (liveness.c) */
    };
    char addr[];          /* NUL-terminated, addr_len bytes before it */
} sb_peer;

/* What only a peer that has held keys needs, at the start of its keys'
 * allocation: a peer without keys costs 24 bytes less. */
typedef struct sb_keys_head {
    uint64_t gc_due;      /* when the oldest tombstone may go; or never */
    uint32_t tombstones;
    uint32_t reserved;    /* of nkeys, the protocol's (verdicts: a zero
                             first byte), outside the application's
                             bounds */
} sb_keys_head;

/* n's keys' head; n must have held a key (n->keys not NULL). */
static inline sb_keys_head *sb_peer_head(const sb_peer *n)
{
    return (sb_keys_head *)(void *)n->keys - 1;
}

static inline uint64_t sb_peer_gc_due(const sb_peer *n)
{
    return n->keys ? sb_peer_head(n)->gc_due : UINT64_MAX;
}

static inline uint32_t sb_peer_tombstones(const sb_peer *n)
{
    return n->keys ? sb_peer_head(n)->tombstones : 0;
}

static inline uint32_t sb_peer_reserved(const sb_peer *n)
{
    return n->keys ? sb_peer_head(n)->reserved : 0;
}

/* A peer forgotten after the dead-peer grace, remembered so that stale
 * gossip cannot bring it back. */
typedef struct sb_forgotten {
    uint64_t id;
    uint64_t heartbeat;
    uint64_t until;
    uint64_t addr_tag;   /* sb_peer_id(addr, 0); 0 if not known */
    uint64_t generation; /* the generation forgotten at that address */
} sb_forgotten;

/* An index slot: a 32-bit tag of the key (an id, or an address's hash)
 * and the peer's index + 1 (0 = empty). A tag that matches is checked
 * against the peer: the hot lookup (every digest entry) touches, but for
 * one chance in 2^32, only the peer it returns. */
typedef struct sb_slot {
    uint32_t tag;
    uint32_t index;       /* peer index + 1; 0 = empty */
} sb_slot;

/* The touched peers listed at most: a quarter of the peers there is
 * room for and 8 more, up to STATE_TOUCHED. More at once (a join, a
 * burst of news) and the summary's next read looks at every peer. */
#define STATE_TOUCHED 256

typedef struct sb_state {
    sb_peer **peers;
    uint64_t *due;        /* per peer index: see above */
    uint32_t *perm;       /* a permutation of 0..count-1 */
    uint32_t count, cap;
    sb_slot *by_id;
    sb_slot *by_addr;
    uint32_t slots;       /* of each index, at most 3/4 full */
    sb_forgotten *forgotten;
    uint32_t nforgotten, forgotten_cap;
    uint64_t summary;     /* XOR of every peer's share (summary.c) */
    sb_peer **touched;    /* peers whose share is out of date, with no
                             peer twice: touched_cap slots, allocated
                             at the first touch and freed at a round
                             that finds it empty (NULL and 0 at rest);
                             past them, `overflow` */
    uint32_t ntouched, touched_cap;
    bool overflow;        /* more were touched than the list holds: look
                             for the touched flag on every peer */
    uint32_t *sorted;     /* every peer's index, in id order (room for
                             cap): sb_state_sorted() */
    uint64_t changes;     /* records added or removed, ever */
    uint32_t *touches;    /* NULL, or STATE_TOUCH_BUCKETS counts of the
                             touches of records, by id: one that did not
                             move since it was read says that no record
                             of its ids changed (push.c's early items
                             set it) */
} sb_state;

#define STATE_TOUCH_BUCKETS 64

/* The bucket of st->touches that counts the touches of record `id`. */
static inline uint32_t sb_state_touch_bucket(uint64_t id)
{
    return (uint32_t)(id % STATE_TOUCH_BUCKETS);
}

void sb_state_init(sb_state *st);
void sb_state_free(sb_state *st);

sb_peer *sb_state_find_id(const sb_state *st, uint64_t id);
/* The peer at position i of the id order. */
static inline sb_peer *sb_state_sorted(const sb_state *st, uint32_t i)
{
    return st->peers[st->sorted[i]];
}

/* The position in st->sorted of the first peer whose id is above `id`. */
uint32_t sb_state_after(const sb_state *st, uint64_t id);
/* The slot of an index where the search for `hash` starts: its low 32
 * bits scaled to the table (a multiply, not a division), then on to
 * sb_state_next() until the slot is found or an empty one. */
static inline uint32_t sb_state_home(uint64_t hash, uint32_t slots)
{
    return (uint32_t)(((uint64_t)(uint32_t)hash * slots) >> 32);
}

static inline uint32_t sb_state_next(uint32_t i, uint32_t slots)
{
    return i + 1 == slots ? 0 : i + 1;
}

/* Starts loading the index slot of `id` into the cache (a hint). */
static inline void sb_state_prefetch_id(const sb_state *st, uint64_t id)
{
#if defined(__GNUC__)
    if (st->slots)
        __builtin_prefetch(&st->by_id[sb_state_home(id, st->slots)]);
#else
    (void)st;
    (void)id;
#endif
}
sb_peer *sb_state_find_addr(const sb_state *st, const char *addr,
                            size_t len);
/* Adds a peer with no keys (due: never); NULL if out of memory. */
sb_peer *sb_state_add(sb_state *st, const char *addr, size_t len,
                      uint64_t generation);
/* Removes and frees a peer; the last peer takes its index. Its share
 * leaves the summary. */
void sb_state_remove(sb_state *st, sb_peer *n);
/* Allocates the touched list, empty; false if out of memory. */
bool sb_state_touched_new(sb_state *st);
/* At a round: the touched list is freed once empty (at rest, there is
 * none). */
void sb_state_tidy(sb_state *st);

/* Marks a peer whose id, heartbeat, leaving bit, max_version or
 * gc_version changed: the summary takes its new share when next read.
 * Every change is counted in st->touches, if set. */
static inline void sb_state_touch(sb_state *st, sb_peer *n)
{
    if (st->touches)
        st->touches[sb_state_touch_bucket(n->id)]++;
    if (!n->touched) {
        n->touched = true;
        if (st->ntouched < st->touched_cap ||
            (!st->touched && sb_state_touched_new(st)))
            st->touched[st->ntouched++] = n;
        else
            st->overflow = true;
    }
}

/* Remembers a forgotten peer until `until`, with its address (its tag,
 * sb_peer_id(addr, 0); 0: none) and generation: while the entry lasts,
 * an older generation at that address is stale too
 * (sb_state_is_superseded()). False if out of memory. */
bool sb_state_forget(sb_state *st, uint64_t id, uint64_t heartbeat,
                     uint64_t until, uint64_t addr_tag, uint64_t generation);
/* True if a forgotten peer at the address tagged addr_tag had a
 * generation larger than `generation`: gossip of an incarnation that a
 * later one replaced, which must not come back once the later one is
 * forgotten. */
bool sb_state_is_superseded(const sb_state *st, uint64_t addr_tag,
                            uint64_t generation);
/* True if (id, heartbeat) is stale gossip of a forgotten peer. */
bool sb_state_is_forgotten(const sb_state *st, uint64_t id,
                           uint64_t heartbeat);
/* True if id was forgotten at the address tagged addr_tag (nonzero). */
bool sb_state_forgot_at(const sb_state *st, uint64_t id, uint64_t addr_tag);
/* Drops the forgotten entry of id, if any: the peer is back. */
void sb_state_unforget(sb_state *st, uint64_t id);
/* Drops forgotten records whose time has passed. */
void sb_state_expire_forgotten(sb_state *st, uint64_t now);

/* The index of `key` in n->keys, or -1: O(1) by the key index, then
 * O(log n) by version where a peer's key versions are distinct (ours,
 * and our protocol's peers'); a scan where they are not (a reference
 * peer may repeat one). */
long sb_peer_find_key(const sb_peer *n, const uint8_t *key, size_t len);
/* The index of the first key with version > v (n->nkeys if none). */
uint32_t sb_peer_keys_after(const sb_peer *n, uint64_t v);
/*
 * Appends a key entry (replacing the old entry of the same key) and
 * raises max_version. The array stays sorted when version is above every
 * stored version, which holds for every caller but a reset, which sorts
 * afterwards. Returns the replaced entry's liveness through *was_live.
 * false if out of memory.
 */
bool sb_peer_put_key(sb_peer *n, const uint8_t *key, size_t key_len,
                     const uint8_t *value, size_t value_len,
                     uint64_t version, bool deleted, uint64_t now,
                     bool *was_live);
/* Removes the key at index i. */
void sb_peer_remove_key(sb_peer *n, uint32_t i);
/* Removes every key (max_version stays). */
void sb_peer_clear_keys(sb_peer *n);

/* Bytes of memory held by the state, for benchmarks. */
size_t sb_state_memory(const sb_state *st);

#endif /* SB_STATE_H */
