/*
 * Cluster state (state.h): every peer known, indexed by id and address,
 * with its keys in version order; forgotten peers remembered a while.
 */
#include "state.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"

static uint64_t state_addr_hash(const char *addr, size_t len)
{
    return sb_peer_id(addr, len, 0);
}

/* An id's tag in by_id: bits 16 to 47, which the slot number (taken from
 * the top of the low 32 bits) shares only in part. */
static uint32_t state_id_tag(uint64_t id)
{
    return (uint32_t)(id >> 16);
}

void sb_state_init(sb_state *st)
{
    memset(st, 0, sizeof(*st));
}

static void state_peer_free(sb_peer *n)
{
    for (uint32_t i = 0; i < n->nkeys; i++)
        free(n->keys[i]);
    if (n->keys)
        free(sb_peer_head(n)); /* and the keys, and their index, after it */
    free(n);
}

void sb_state_free(sb_state *st)
{
    for (uint32_t i = 0; i < st->count; i++)
        state_peer_free(st->peers[i]);
    free(st->peers);
    free(st->due);
    free(st->perm);
    free(st->touched);
    free(st->sorted);
    free(st->by_id);
    free(st->by_addr);
    free(st->forgotten);
    memset(st, 0, sizeof(*st));
}

/* ---- the two indexes -------------------------------------------------- */

/* Puts peer `index` at the first free slot from hash's, with `tag`. */
static void state_slot_insert(sb_slot *t, uint32_t slots, uint64_t hash,
                              uint32_t tag, uint32_t index)
{
    uint32_t i = sb_state_home(hash, slots);
    while (t[i].index)
        i = sb_state_next(i, slots);
    t[i].tag = tag;
    t[i].index = index + 1;
}

/* True if the indexes are too full for `want` peers (and one more): over
 * 3/4. They are rebuilt 2/3 full, so each costs 21 to 24 bytes a peer,
 * whatever the count (a power of two would cost up to 43). */
static bool state_too_full(uint32_t slots, uint32_t want)
{
    return 4 * ((uint64_t)want + 1) > 3 * (uint64_t)slots;
}

/* Rebuilds both indexes with room for `want` peers. */
static bool state_reindex(sb_state *st, uint32_t want)
{
    uint32_t slots = st->slots;
    if (state_too_full(slots, want))
        slots = (uint32_t)(((uint64_t)want + 1) * 3 / 2 + 8);
    if (slots != st->slots) {
        sb_slot *a = calloc(slots, sizeof(*a));
        sb_slot *b = calloc(slots, sizeof(*b));
        if (!a || !b) {
            free(a);
            free(b);
            return false;
        }
        free(st->by_id);
        free(st->by_addr);
        st->by_id = a;
        st->by_addr = b;
        st->slots = slots;
    } else {
        memset(st->by_id, 0, slots * sizeof(sb_slot));
        memset(st->by_addr, 0, slots * sizeof(sb_slot));
    }
    for (uint32_t i = 0; i < st->count; i++) {
        sb_peer *n = st->peers[i];
        state_slot_insert(st->by_id, slots, n->id, state_id_tag(n->id), i);
        uint64_t h = state_addr_hash(n->addr, n->addr_len);
        state_slot_insert(st->by_addr, slots, h, (uint32_t)h, i);
    }
    return true;
}

sb_peer *sb_state_find_id(const sb_state *st, uint64_t id)
{
    if (!st->slots)
        return NULL;
    uint32_t tag = state_id_tag(id);
    for (uint32_t i = sb_state_home(id, st->slots); st->by_id[i].index;
         i = sb_state_next(i, st->slots)) {
        if (st->by_id[i].tag != tag)
            continue;
        sb_peer *n = st->peers[st->by_id[i].index - 1];
        if (n->id == id)
            return n;
    }
    return NULL;
}

sb_peer *sb_state_find_addr(const sb_state *st, const char *addr,
                            size_t len)
{
    if (!st->slots)
        return NULL;
    uint64_t h = state_addr_hash(addr, len);
    for (uint32_t i = sb_state_home(h, st->slots); st->by_addr[i].index;
         i = sb_state_next(i, st->slots)) {
        if (st->by_addr[i].tag != (uint32_t)h)
            continue;
        sb_peer *n = st->peers[st->by_addr[i].index - 1];
        if (n->addr_len == len && memcmp(n->addr, addr, len) == 0)
            return n;
    }
    return NULL;
}

/* The position in st->sorted[0..n) of the first peer whose id is above
 * `id`. */
static uint32_t state_after(const sb_state *st, uint64_t id, uint32_t n)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sb_state_sorted(st, mid)->id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint32_t sb_state_after(const sb_state *st, uint64_t id)
{
    return state_after(st, id, st->count);
}

/* The position of peer n in st->sorted. */
static uint32_t state_sorted_at(const sb_state *st, const sb_peer *n)
{
    uint32_t at = sb_state_after(st, n->id);
    while (st->sorted[--at] != n->index) /* past any other of the same id */
        ;
    return at;
}

/* The touched peers listed at most: see STATE_TOUCHED. */
static uint32_t state_touched_room(const sb_state *st)
{
    uint32_t room = st->cap / 4 + 8;
    return room < STATE_TOUCHED ? room : STATE_TOUCHED;
}

bool sb_state_touched_new(sb_state *st)
{
    uint32_t room = state_touched_room(st);
    st->touched = malloc(room * sizeof(*st->touched));
    st->touched_cap = st->touched ? room : 0;
    return st->touched != NULL;
}

void sb_state_tidy(sb_state *st)
{
    if (st->touched && !st->ntouched) {
        free(st->touched);
        st->touched = NULL;
        st->touched_cap = 0;
    }
}

sb_peer *sb_state_add(sb_state *st, const char *addr, size_t len,
                      uint64_t generation)
{
    if (st->count == st->cap) {
        /* an eighth more: these arrays cost per known peer */
        uint32_t cap = st->cap + st->cap / 8 + 16;
        sb_peer **peers = realloc(st->peers, cap * sizeof(*peers));
        if (peers)
            st->peers = peers;
        uint64_t *due = realloc(st->due, cap * sizeof(*due));
        if (due)
            st->due = due;
        uint32_t *perm = realloc(st->perm, cap * sizeof(*perm));
        if (perm)
            st->perm = perm;
        uint32_t *sorted = realloc(st->sorted, cap * sizeof(*sorted));
        if (sorted)
            st->sorted = sorted;
        if (!peers || !due || !perm || !sorted)
            return NULL;
        st->cap = cap;
        uint32_t room = state_touched_room(st);
        sb_peer **touched = st->touched && room > st->touched_cap
                                ? realloc(st->touched, room * sizeof(*touched))
                                : NULL;
        if (touched) {
            st->touched = touched;
            st->touched_cap = room;
        }
    }
    if (state_too_full(st->slots, st->count + 1) &&
        !state_reindex(st, st->count + 1))
        return NULL;
    sb_peer *n = calloc(1, offsetof(sb_peer, addr) + len + 1);
    if (!n)
        return NULL;
    memcpy(n->addr, addr, len);
    n->addr_len = (uint8_t)len;
    n->generation = generation;
    n->id = sb_peer_id(addr, len, generation);
    st->changes++;
    uint32_t i = st->count++;
    n->index = i;
    st->peers[i] = n;
    st->due[i] = UINT64_MAX;
    st->perm[i] = i;
    sb_state_touch(st, n);
    uint32_t at = state_after(st, n->id, i);
    memmove(st->sorted + at + 1, st->sorted + at,
            (i - at) * sizeof(*st->sorted));
    st->sorted[at] = i;
    state_slot_insert(st->by_id, st->slots, n->id, state_id_tag(n->id), i);
    uint64_t h = state_addr_hash(addr, len);
    state_slot_insert(st->by_addr, st->slots, h, (uint32_t)h, i);
    return n;
}

void sb_state_remove(sb_state *st, sb_peer *n)
{
    st->summary ^= n->share;
    for (uint32_t t = 0; n->touched && t < st->ntouched; t++)
        if (st->touched[t] == n) /* not listed if it came past the list */
            st->touched[t] = st->touched[--st->ntouched];
    st->changes++;
    uint32_t i = n->index, last = st->count - 1;
    uint32_t at = state_sorted_at(st, n);
    memmove(st->sorted + at, st->sorted + at + 1,
            (last - at) * sizeof(*st->sorted));
    st->count = last;
    if (i != last) /* the last peer takes n's index */
        st->sorted[state_sorted_at(st, st->peers[last])] = i;
    st->peers[i] = st->peers[last];
    st->peers[i]->index = i;
    st->due[i] = st->due[last];
    for (uint32_t k = 0; k < st->count; k++)
        st->perm[k] = k;
    state_peer_free(n);
    state_reindex(st, st->count); /* same size: cannot fail */
}

/* ---- forgotten peers -------------------------------------------------- */

/* Kept in id order, one entry an id: a digest's every unknown entry is
 * looked up, and a list of thousands scanned for each of thousands of
 * entries (a member's large SYN naming forgotten ids, which do not count
 * against the ids a reply asks for) cost 4 ms a datagram where the rest
 * of the SYN cost 0.1 ms. */

/* The position of the first entry whose id is id or above. */
static uint32_t state_forgotten_at(const sb_state *st, uint64_t id)
{
    uint32_t lo = 0, hi = st->nforgotten;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (st->forgotten[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool sb_state_forget(sb_state *st, uint64_t id, uint64_t heartbeat,
                     uint64_t until, uint64_t addr_tag, uint64_t generation)
{
    uint32_t i = state_forgotten_at(st, id);
    if (i < st->nforgotten && st->forgotten[i].id == id) { /* again */
        sb_forgotten *f = &st->forgotten[i];
        f->heartbeat = heartbeat > f->heartbeat ? heartbeat : f->heartbeat;
        f->until = until > f->until ? until : f->until;
        if (addr_tag) {
            f->addr_tag = addr_tag;
            f->generation = generation;
        }
        return true;
    }
    if (st->nforgotten == st->forgotten_cap) {
        /* (no pointer into the list before it exists: NULL + 0 is
         * undefined, and clang's UBSan stops there) */
        uint32_t cap = st->forgotten_cap ? 2 * st->forgotten_cap : 8;
        sb_forgotten *f = realloc(st->forgotten, cap * sizeof(*f));
        if (!f)
            return false;
        st->forgotten = f;
        st->forgotten_cap = cap;
    }
    memmove(st->forgotten + i + 1, st->forgotten + i,
            (st->nforgotten - i) * sizeof(*st->forgotten));
    st->forgotten[i] =
        (sb_forgotten){ id, heartbeat, until, addr_tag, generation };
    st->nforgotten++;
    return true;
}

bool sb_state_is_forgotten(const sb_state *st, uint64_t id,
                           uint64_t heartbeat)
{
    uint32_t i = state_forgotten_at(st, id);
    return i < st->nforgotten && st->forgotten[i].id == id &&
           heartbeat <= st->forgotten[i].heartbeat;
}

bool sb_state_forgot_at(const sb_state *st, uint64_t id, uint64_t addr_tag)
{
    uint32_t i = state_forgotten_at(st, id);
    return addr_tag && i < st->nforgotten && st->forgotten[i].id == id &&
           st->forgotten[i].addr_tag == addr_tag;
}

void sb_state_unforget(sb_state *st, uint64_t id)
{
    uint32_t i = state_forgotten_at(st, id);
    if (i == st->nforgotten || st->forgotten[i].id != id)
        return;
    memmove(st->forgotten + i, st->forgotten + i + 1,
            (st->nforgotten - i - 1) * sizeof(*st->forgotten));
    st->nforgotten--;
}

/* A scan: it is asked only before a record is created for an address
 * we hold none for, not for every digest entry. */
bool sb_state_is_superseded(const sb_state *st, uint64_t addr_tag,
                            uint64_t generation)
{
    if (!addr_tag)
        return false;
    for (uint32_t i = 0; i < st->nforgotten; i++)
        if (st->forgotten[i].addr_tag == addr_tag &&
            st->forgotten[i].generation > generation)
            return true;
    return false;
}

void sb_state_expire_forgotten(sb_state *st, uint64_t now)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < st->nforgotten; i++)
        if (st->forgotten[i].until > now)
            st->forgotten[j++] = st->forgotten[i];
    st->nforgotten = j;
}

/* ---- keys ------------------------------------------------------------- */

/* ---- the key index ----------------------------------------------------- */

/* Up to this many keys a peer's keys are scanned; beyond, indexed. */
#define STATE_SCAN_KEYS 8

static uint64_t state_key_hash(const uint8_t *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ key[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

/* Gives n's keys' allocation room for `slots` pointers (the keys' room
 * and the index after it), the head before them (a new one: no
 * tombstones, none due); what n->keys held stays. False if out of
 * memory, n unchanged. */
static bool state_keys_resize(sb_peer *n, size_t slots)
{
    sb_keys_head *head = n->keys ? sb_peer_head(n) : NULL;
    sb_keys_head *g = realloc(head, sizeof(*g) + slots * sizeof(sb_key *));
    if (!g)
        return false;
    if (!head)
        *g = (sb_keys_head){ .gc_due = UINT64_MAX };
    n->keys = (sb_key **)(void *)(g + 1);
    return true;
}

/* The keys n->keys has room for. */
static uint32_t state_keys_room(const sb_peer *n)
{
    return n->keys_log ? 1u << n->keys_log : 0;
}

/* The slots of n's key index: a power of two, or 0 without one. */
static uint32_t state_key_slots(const sb_peer *n)
{
    return n->by_key_log ? 1u << n->by_key_log : 0;
}

/* n's key index: in the keys' allocation, after their room; NULL while
 * n has none. */
static sb_key **state_by_key(const sb_peer *n)
{
    return n->by_key_log ? n->keys + state_keys_room(n) : NULL;
}

static bool state_key_is(const sb_key *k, const uint8_t *key, size_t len)
{
    return k->key_len == len && memcmp(k->data, key, len) == 0;
}

/* The index slot of `key`: where it is, or the empty slot it would take. */
static uint32_t state_key_slot(const sb_peer *n, const uint8_t *key,
                               size_t len)
{
    sb_key **by_key = state_by_key(n);
    uint32_t mask = state_key_slots(n) - 1;
    uint32_t i = (uint32_t)state_key_hash(key, len) & mask;
    while (by_key[i] && !state_key_is(by_key[i], key, len))
        i = (i + 1) & mask;
    return i;
}

/* Rebuilds the index of n's keys with room for `want`; false (index
 * unchanged) if out of memory. */
static bool state_key_reindex(sb_peer *n, uint32_t want)
{
    uint8_t log = 4;
    while ((1u << log) / 4 * 3 < want)
        log++;
    if (!state_keys_resize(n, state_keys_room(n) + ((size_t)1 << log)))
        return false;
    n->by_key_log = log;
    sb_key **by_key = state_by_key(n);
    memset(by_key, 0, ((size_t)1 << log) * sizeof(*by_key));
    for (uint32_t i = 0; i < n->nkeys; i++)
        by_key[state_key_slot(n, n->keys[i]->data, n->keys[i]->key_len)] =
            n->keys[i];
    return true;
}

/* Takes k out of the index (backward-shift deletion keeps every other
 * key findable from its home slot). */
static void state_key_unindex(sb_peer *n, const sb_key *k)
{
    sb_key **by_key = state_by_key(n);
    if (!by_key)
        return;
    uint32_t mask = state_key_slots(n) - 1;
    uint32_t i = state_key_slot(n, k->data, k->key_len);
    if (by_key[i] != k)
        return;
    by_key[i] = NULL;
    for (uint32_t j = (i + 1) & mask; by_key[j]; j = (j + 1) & mask) {
        sb_key *m = by_key[j];
        uint32_t home = (uint32_t)state_key_hash(m->data, m->key_len) & mask;
        /* m moves back to i unless its home lies cyclically in (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            by_key[i] = m;
            by_key[j] = NULL;
            i = j;
        }
    }
}

/* The key `key` of n, or NULL. */
static sb_key *state_key_get(const sb_peer *n, const uint8_t *key,
                             size_t len)
{
    if (n->by_key_log)
        return state_by_key(n)[state_key_slot(n, key, len)];
    for (uint32_t i = 0; i < n->nkeys; i++)
        if (state_key_is(n->keys[i], key, len))
            return n->keys[i];
    return NULL;
}

/* Where k sits in n->keys: by its version (a binary search), or, while
 * a reset has the keys out of order, by a scan. */
static uint32_t state_key_position(const sb_peer *n, const sb_key *k)
{
    uint32_t lo = 0, hi = n->nkeys;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (n->keys[mid]->version < k->version)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n->nkeys && n->keys[lo] == k)
        return lo;
    for (uint32_t i = 0; i < n->nkeys; i++)
        if (n->keys[i] == k)
            return i;
    return n->nkeys; /* not reached: k is one of n's keys */
}

long sb_peer_find_key(const sb_peer *n, const uint8_t *key, size_t len)
{
    const sb_key *k = state_key_get(n, key, len);
    return k ? (long)state_key_position(n, k) : -1;
}

uint32_t sb_peer_keys_after(const sb_peer *n, uint64_t v)
{
    uint32_t lo = 0, hi = n->nkeys;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (n->keys[mid]->version <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The protocol's keys (verdicts) start with a zero byte
 * (sb_liveness_reserved()): counted apart from the application's. */
static bool state_key_reserved(const uint8_t *key, size_t key_len)
{
    return key_len > 0 && key[0] == 0;
}

void sb_peer_remove_key(sb_peer *n, uint32_t i)
{
    sb_key *k = n->keys[i];
    state_key_unindex(n, k);
    if (state_key_reserved(k->data, k->key_len))
        sb_peer_head(n)->reserved--;
    else
        n->state_bytes -= (uint32_t)(k->key_len + k->value_len);
    if (k->deleted)
        sb_peer_head(n)->tombstones--;
    free(k);
    memmove(&n->keys[i], &n->keys[i + 1],
            (n->nkeys - i - 1) * sizeof(*n->keys));
    n->nkeys--;
}

void sb_peer_clear_keys(sb_peer *n)
{
    for (uint32_t i = 0; i < n->nkeys; i++)
        free(n->keys[i]);
    /* the index stays, empty, as the keys' room does */
    if (n->by_key_log)
        memset(state_by_key(n), 0, state_key_slots(n) * sizeof(sb_key *));
    n->nkeys = 0;
    n->state_bytes = 0;
    if (n->keys) {
        sb_peer_head(n)->tombstones = 0;
        sb_peer_head(n)->reserved = 0;
    }
}

bool sb_peer_put_key(sb_peer *n, const uint8_t *key, size_t key_len,
                     const uint8_t *value, size_t value_len,
                     uint64_t version, bool deleted, uint64_t now,
                     bool *was_live)
{
    sb_key *k = malloc(sizeof(*k) + key_len + value_len);
    if (!k)
        return false;
    k->version = version;
    k->deleted_at = deleted ? now : 0;
    k->value_len = (uint32_t)value_len;
    k->key_len = (uint8_t)key_len;
    k->deleted = deleted;
    memcpy(k->data, key, key_len);
    if (value_len)
        memcpy(k->data + key_len, value, value_len);

    long old = sb_peer_find_key(n, key, key_len);
    *was_live = old >= 0 && !n->keys[old]->deleted;
    if (old < 0) {
        /* room first, so that nothing changes if there is none: one more
         * key, and the index past a few keys */
        if (n->nkeys == state_keys_room(n)) {
            /* twice the room; the index after it moves along */
            uint8_t log = n->keys_log ? n->keys_log + 1 : 2;
            size_t slots = state_key_slots(n);
            if (!state_keys_resize(n, ((size_t)1 << log) + slots)) {
                free(k);
                return false;
            }
            memmove(n->keys + ((size_t)1 << log), n->keys + state_keys_room(n),
                    slots * sizeof(*n->keys));
            n->keys_log = log;
        }
        uint32_t most =
            n->by_key_log ? state_key_slots(n) / 4 * 3 : STATE_SCAN_KEYS;
        if (n->nkeys + 1 > most && !state_key_reindex(n, n->nkeys + 1)) {
            free(k);
            return false;
        }
    } else {
        sb_peer_remove_key(n, (uint32_t)old);
    }
    n->keys[n->nkeys++] = k;
    if (n->by_key_log)
        state_by_key(n)[state_key_slot(n, key, key_len)] = k;
    if (state_key_reserved(key, key_len))
        sb_peer_head(n)->reserved++;
    else
        n->state_bytes += (uint32_t)(key_len + value_len);
    if (deleted)
        sb_peer_head(n)->tombstones++;
    if (version > n->max_version)
        n->max_version = version;
    return true;
}

size_t sb_state_memory(const sb_state *st)
{
    size_t bytes = st->cap * (sizeof(*st->peers) + sizeof(*st->due) +
                              sizeof(*st->perm) + sizeof(*st->sorted)) +
                   st->touched_cap * sizeof(*st->touched) +
                   st->slots * 2 * sizeof(sb_slot) +
                   st->forgotten_cap * sizeof(sb_forgotten);
    for (uint32_t i = 0; i < st->count; i++) {
        const sb_peer *n = st->peers[i];
        bytes += offsetof(sb_peer, addr) + n->addr_len + 1 +
                 (n->keys ? sizeof(sb_keys_head) : 0) +
                 state_keys_room(n) * sizeof(*n->keys) +
                 state_key_slots(n) * sizeof(sb_key *);
        for (uint32_t j = 0; j < n->nkeys; j++)
            bytes += sizeof(sb_key) + n->keys[j]->key_len +
                     n->keys[j]->value_len;
    }
    return bytes;
}
