/*
 * Scratch space (internal.h, sb_scratch): the message being written,
 * arrays bounded by what one message of ours carries, and one grown to
 * the most it was asked to hold: the digest of the message at hand.
 * They exist only while held (sb_scratch_hold(), sb_scratch_release()):
 * during one call of sb_engine_recv(), sb_engine_tick() or
 * sb_engine_join().
 */
#include <stdlib.h>

#include "internal.h"

void sb_scratch_init(sb_scratch *s, size_t max_message_size)
{
    s->message_size = max_message_size;
    /* an unknown id costs a request of at least SB_DIGEST_ENTRY_MIN */
    s->most = (uint32_t)(max_message_size / SB_DIGEST_ENTRY_MIN + 1);
}

/* `arr` grown to min(want, bound) elements of `size` bytes (never
 * shrunk), *cap updated: the array, moved or not; NULL if out of memory
 * (arr and *cap as they were). */
static void *scratch_room(void *arr, uint32_t *cap, uint64_t want,
                          uint32_t bound, size_t size)
{
    if (want > bound)
        want = bound;
    if (want <= *cap)
        return arr;
    void *p = realloc(arr, (size_t)want * size);
    if (p)
        *cap = (uint32_t)want;
    return p;
}

/* The arrays sized for s->slots peers (a no-op if they are). */
static bool scratch_fit(sb_scratch *s)
{
    if (!s->message && !(s->message = malloc(s->message_size)))
        return false;
    uint32_t want = s->slots;
    /* a SYN's digest, a plan's requests, or an announcement's picks */
    uint32_t list = s->most > ANNOUNCE_MAX ? s->most : ANNOUNCE_MAX;
    void *p = scratch_room(s->peers, &s->npeers, want, list,
                           sizeof(*s->peers));
    if (!p)
        return false;
    s->peers = p;
    if (!(p = scratch_room(s->ahead, &s->nahead, want, s->most,
                           sizeof(*s->ahead))))
        return false;
    s->ahead = p;
    if (!(p = scratch_room(s->sample, &s->nsample, want, 2 * s->most,
                           sizeof(*s->sample))))
        return false;
    s->sample = p;
    /* candidates: three times the deltas a message holds (the last bytes
     * of one may take a small delta far down the order, past larger ones
     * that do not fit), and one that the reference's delta appends */
    if (!(p = scratch_room(s->cands, &s->ncands, want, 3 * s->most + 1,
                           sizeof(*s->cands))))
        return false;
    s->cands = p;
    if (!(p = scratch_room(s->unknown, &s->nunknown, s->most, s->most,
                           sizeof(*s->unknown))))
        return false;
    s->unknown = p;
    return true;
}

/* Makes room for `slots` known peers (and one more): at once if held,
 * else at the next hold. */
bool sb_scratch_grow(sb_scratch *s, uint32_t slots)
{
    if (slots > s->slots)
        s->slots = slots + slots / 8 + 8;
    return !s->held || scratch_fit(s);
}

bool sb_scratch_hold(sb_scratch *s)
{
    s->held = true;
    return scratch_fit(s);
}

/* Room for a digest of n entries (at most max_message_size / 8: a
 * validated entry takes 8 bytes or more); NULL if out of memory. */
entry_ref *sb_scratch_digest(sb_scratch *s, uint64_t n)
{
    void *p = scratch_room(s->digest, &s->digest_cap, n, UINT32_MAX,
                           sizeof(*s->digest));
    if (p)
        s->digest = p;
    return p;
}

size_t sb_scratch_memory(const sb_scratch *s)
{
    return (s->message ? s->message_size : 0) +
           s->npeers * sizeof(*s->peers) + s->nahead * sizeof(*s->ahead) +
           s->nsample * sizeof(*s->sample) + s->ncands * sizeof(*s->cands) +
           s->nunknown * sizeof(*s->unknown) +
           s->digest_cap * sizeof(*s->digest);
}

void sb_scratch_release(sb_scratch *s)
{
    size_t held = sb_scratch_memory(s);
    if (held > s->peak)
        s->peak = held;
    free(s->message);
    free(s->peers);
    free(s->ahead);
    free(s->sample);
    free(s->cands);
    free(s->unknown);
    free(s->digest);
    *s = (sb_scratch){ .message_size = s->message_size, .most = s->most,
                       .slots = s->slots, .peak = s->peak };
}
