/*
 * Scratch space (internal.h, sb_scratch): arrays of one slot per known
 * peer, grown as peers are added, and the digest of the message at hand.
 */
#include <stdlib.h>

#include "internal.h"

bool sb_scratch_init(sb_scratch *s, size_t max_message_size)
{
    /* an unknown id costs a request of at least SB_DIGEST_ENTRY_MIN */
    s->max_unknown = (uint32_t)(max_message_size / SB_DIGEST_ENTRY_MIN + 1);
    s->unknown = malloc(s->max_unknown * sizeof(*s->unknown));
    return s->unknown != NULL;
}

/* Makes every array hold at least `slots` slots. */
bool sb_scratch_grow(sb_scratch *s, uint32_t slots)
{
    if (slots <= s->cap)
        return true;
    /* small steps: these arrays cost per known peer */
    uint32_t cap = slots + slots / 8 + 8;
    sb_peer **peers = realloc(s->peers, cap * sizeof(*peers));
    if (peers)
        s->peers = peers;
    sb_peer **ahead = realloc(s->ahead, cap * sizeof(*ahead));
    if (ahead)
        s->ahead = ahead;
    sb_peer **sample = realloc(s->sample, cap * sizeof(*sample));
    if (sample)
        s->sample = sample;
    cand *cands = realloc(s->cands, cap * sizeof(*cands));
    if (cands)
        s->cands = cands;
    tree_slot *tree = realloc(s->tree, cap * sizeof(*tree));
    if (tree)
        s->tree = tree;
    if (!peers || !ahead || !sample || !cands || !tree)
        return false;
    s->cap = cap;
    return true;
}

/* Room for a digest of n entries (at most max_message_size / 8: a
 * validated entry takes 8 bytes or more); NULL if out of memory. */
entry_ref *sb_scratch_digest(sb_scratch *s, uint64_t n)
{
    if (n > s->digest_cap) {
        entry_ref *d = realloc(s->digest, n * sizeof(*d));
        if (!d)
            return NULL;
        s->digest = d;
        s->digest_cap = (uint32_t)n;
    }
    return s->digest;
}

size_t sb_scratch_memory(const sb_scratch *s)
{
    return s->cap * (sizeof(*s->peers) + sizeof(*s->ahead) +
                     sizeof(*s->sample) + sizeof(*s->cands) +
                     sizeof(*s->tree)) +
           s->max_unknown * sizeof(*s->unknown) +
           s->digest_cap * sizeof(*s->digest);
}

void sb_scratch_free(sb_scratch *s)
{
    free(s->peers);
    free(s->ahead);
    free(s->sample);
    free(s->cands);
    free(s->tree);
    free(s->unknown);
    free(s->digest);
    *s = (sb_scratch){ 0 };
}
