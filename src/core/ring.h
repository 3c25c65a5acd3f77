/*
 * Monitor rings: who watches whom, derived by every node from its own view,
 * with no agreement (docs/failure-detector.md, section 9). The push trees
 * run over the same rings (push.c, docs/protocol.md, section 8.2).
 *
 * Every live node (self included) sits on each of `k` rings at a position
 * hashed from its id and the ring's number. On each ring a node watches its
 * successor and is watched by its predecessor: the distinct successors are
 * its subjects, the distinct predecessors its monitors (and, past the
 * accused, the nodes a walk reaches, monitor.c). Two nodes that see the
 * same live set, and the same verdicts, derive the same relation.
 *
 * Each ring is an array of ids sorted by (position, id); positions are
 * computed again where compared, not stored, and an id takes its 6 bytes
 * (SB_ID_SIZE: 6 bytes a node a ring, not 16): a lookup is a binary
 * search, a node added or removed a memmove.
 */
#ifndef SB_RING_H
#define SB_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_MAX_RINGS 8

typedef struct sb_rings {
    uint32_t k;                /* rings in use, at most SB_MAX_RINGS */
    uint32_t count, cap;       /* nodes on every ring */
    uint8_t *ring[SB_MAX_RINGS]; /* ids, by (position, id) */
    uint64_t changes;          /* nodes added and removed so far: what
                                  was read off the rings holds while it
                                  stays */
} sb_rings;

void sb_rings_init(sb_rings *r, uint32_t k);
void sb_rings_free(sb_rings *r);
/* Puts id (a node id: SB_ID_SIZE bytes, the rest zero) on every ring
 * (no-op if there); false if out of memory. */
bool sb_rings_add(sb_rings *r, uint64_t id);
/* Takes id off every ring (no-op if absent). */
void sb_rings_remove(sb_rings *r, uint64_t id);
/* The node after (`after`) or before id's position on ring i, other than
 * id itself (id need not be on the ring); false if there is none. */
bool sb_rings_neighbour(const sb_rings *r, uint32_t i, uint64_t id,
                        bool after, uint64_t *out);
/* The distinct successors (after) or predecessors of id over the first
 * k rings, in ring order, into out[SB_MAX_RINGS]; returns how many. */
uint32_t sb_rings_neighbours(const sb_rings *r, uint32_t k, uint64_t id,
                             bool after, uint64_t *out);
/* Visits the nodes after (`after`) or before id's position on ring i,
 * nearest first, other than id itself, each once at most: visit(u, node)
 * is called on each in turn until it returns false. Returns how many it
 * visited. */
uint32_t sb_rings_walk(const sb_rings *r, uint32_t i, uint64_t id, bool after,
                       bool (*visit)(void *u, uint64_t id), void *u);
/* Whether id's place on ring i is after from's and at the latest to's,
 * going round (from == to: the whole ring). */
bool sb_rings_between(uint32_t i, uint64_t from, uint64_t to, uint64_t id);
/* The index on ring i where id is or would go (r->count if after every
 * node); *on tells whether it is there. */
uint32_t sb_rings_find(const sb_rings *r, uint32_t i, uint64_t id, bool *on);
/* The id at index j (below r->count) of ring i. */
uint64_t sb_rings_at(const sb_rings *r, uint32_t i, uint32_t j);
size_t sb_rings_memory(const sb_rings *r);

#endif /* SB_RING_H */
