/*
 * The waves a node passed on lately (push.c): the last `cap` wave keys
 * added, the oldest forgotten first, and whether a key is among them in
 * a few probes. A wave's key mixes its root with a random wave id whose
 * low byte numbers the tree, so its high 32 bits are random: they place
 * it in a table of twice as many slots or more (open addressing, linear
 * probing; a forgotten key leaves by backward-shift deletion, which
 * keeps every other key findable). Key 0 is never stored. Each key is
 * added at a time the caller gives; the set keeps when its ring of keys
 * last came round (a lap), which bounds the age of its oldest key: a
 * caller may move a set that is crowded (full of young keys) into a
 * larger one instead of forgetting. Pure; the memory is the caller's.
 */
#ifndef SB_WAVES_H
#define SB_WAVES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sb_waves {
    uint64_t *keys;      /* cap keys, a ring in the order added */
    uint32_t *slots;     /* mask + 1 slots: a key's place in keys + 1;
                            0: empty */
    uint32_t cap, count;
    uint32_t head;       /* where the next key goes in keys */
    uint32_t mask;
    uint64_t laps[2];    /* when the ring's current lap began (its
                            first key went in at keys[0]), and the one
                            before; the keys of a lap were added then
                            or later */
} sb_waves;

/* Bytes of memory a set of `cap` keys needs (cap > 0). */
size_t sb_waves_bytes(uint32_t cap);
/* An empty set over `mem`: sb_waves_bytes(cap) bytes, all zero, aligned
 * for a uint64_t. */
void sb_waves_init(sb_waves *w, void *mem, uint32_t cap);
bool sb_waves_has(const sb_waves *w, uint64_t key);
/* Adds a key that is not 0 and not in the set, at time `now` (never
 * before the last add's); the oldest is forgotten first if the set holds
 * `cap`. */
void sb_waves_add(sb_waves *w, uint64_t key, uint64_t now);
/* Whether the set is full and the key the next add would forget was
 * surely added less than `window` before `now`. */
bool sb_waves_crowded(const sb_waves *w, uint64_t now, uint64_t window);
/* Moves the keys of `from` into `to`, an empty set of a larger cap: the
 * same keys, the oldest to be forgotten first, the same bound on their
 * ages. `from`'s memory is then the caller's to free. */
void sb_waves_move(sb_waves *to, const sb_waves *from);

#endif /* SB_WAVES_H */
