/*
 * The waves passed on lately (waves.h): a ring of keys and a table that
 * finds them.
 */
#include "waves.h"

/* The slots of a set of `cap` keys: a power of two, at least twice cap,
 * so that the table is at most half full. */
static uint32_t waves_slots(uint32_t cap)
{
    uint32_t n = 4;
    while (n < 2 * (uint64_t)cap)
        n <<= 1;
    return n;
}

size_t sb_waves_bytes(uint32_t cap)
{
    return (size_t)cap * sizeof(uint64_t) +
           (size_t)waves_slots(cap) * sizeof(uint32_t);
}

void sb_waves_init(sb_waves *w, void *mem, uint32_t cap)
{
    w->keys = mem;
    w->slots = (uint32_t *)(w->keys + cap);
    w->cap = cap;
    w->count = 0;
    w->head = 0;
    w->mask = waves_slots(cap) - 1;
    w->laps[0] = w->laps[1] = 0; /* set by the first add */
}

/* Where the search for `key` starts: its high bits (a wave's low byte
 * numbers its tree, so one writer's keys share their low bits). */
static uint32_t waves_home(const sb_waves *w, uint64_t key)
{
    return (uint32_t)(key >> 32) & w->mask;
}

/* The slot of `key`: where it is, or the empty one that ends its run. */
static uint32_t waves_slot(const sb_waves *w, uint64_t key)
{
    uint32_t i = waves_home(w, key);
    while (w->slots[i] && w->keys[w->slots[i] - 1] != key)
        i = (i + 1) & w->mask;
    return i;
}

bool sb_waves_has(const sb_waves *w, uint64_t key)
{
    return key && w->slots[waves_slot(w, key)] != 0;
}

/* Takes the key at slot i out of the table: every later key of its run
 * that may move back does, so that a probe from its home slot still
 * finds it. */
static void waves_unslot(sb_waves *w, uint32_t i)
{
    w->slots[i] = 0;
    for (uint32_t j = (i + 1) & w->mask; w->slots[j]; j = (j + 1) & w->mask) {
        uint32_t home = waves_home(w, w->keys[w->slots[j] - 1]);
        /* it stays unless its home lies cyclically in (i, j] */
        if (((j - home) & w->mask) >= ((j - i) & w->mask)) {
            w->slots[i] = w->slots[j];
            w->slots[j] = 0;
            i = j;
        }
    }
}

void sb_waves_add(sb_waves *w, uint64_t key, uint64_t now)
{
    if (w->head == 0) { /* a lap begins */
        w->laps[1] = w->count ? w->laps[0] : now;
        w->laps[0] = now;
    }
    if (w->count == w->cap)
        waves_unslot(w, waves_slot(w, w->keys[w->head]));
    else
        w->count++;
    w->keys[w->head] = key;
    w->slots[waves_slot(w, key)] = w->head + 1;
    w->head = w->head + 1 == w->cap ? 0 : w->head + 1;
}

/* The key at keys[head] went in during the lap before the current one
 * (with head at 0, the current lap, which the next add ends). */
bool sb_waves_crowded(const sb_waves *w, uint64_t now, uint64_t window)
{
    if (w->count < w->cap)
        return false;
    uint64_t since = w->head ? w->laps[1] : w->laps[0];
    return now - since < window;
}

void sb_waves_move(sb_waves *to, const sb_waves *from)
{
    uint32_t oldest = from->count == from->cap ? from->head : 0;
    for (uint32_t i = 0; i < from->count; i++) {
        uint32_t j = oldest + i;
        uint64_t key = from->keys[j >= from->cap ? j - from->cap : j];
        to->keys[i] = key;
        to->slots[waves_slot(to, key)] = i + 1;
    }
    to->count = from->count;
    to->head = from->count;
    /* every key moved went in during the lap of the oldest, or later */
    uint64_t since = from->count < from->cap || from->head == 0
                         ? from->laps[0]
                         : from->laps[1];
    to->laps[0] = to->laps[1] = since;
}
