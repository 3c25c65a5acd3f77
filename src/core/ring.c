/*
 * Monitor rings (ring.h): positions, nodes added and removed, neighbours.
 */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h" /* SB_ID_SIZE */

_Static_assert(SB_ID_SIZE == sizeof(uint32_t) + sizeof(uint16_t),
               "a ring entry is a 32-bit and a 16-bit part");

/* A node's position on ring i: a 64-bit mix of its id and the ring. */
static uint64_t ring_pos(uint64_t id, uint32_t i)
{
    uint64_t z = id + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The id at index j of a ring: SB_ID_SIZE (6) bytes, its low 32 bits
 * then its high 16, in the machine's order (two loads: the binary
 * searches of a rejudged view read millions of them). */
static uint64_t ring_id(const uint8_t *s, uint32_t j)
{
    const uint8_t *b = s + (size_t)j * SB_ID_SIZE;
    uint32_t lo;
    uint16_t hi;
    memcpy(&lo, b, sizeof(lo));
    memcpy(&hi, b + sizeof(lo), sizeof(hi));
    return (uint64_t)hi << 32 | lo;
}

static void ring_set(uint8_t *s, uint32_t j, uint64_t id)
{
    uint8_t *b = s + (size_t)j * SB_ID_SIZE;
    uint32_t lo = (uint32_t)id;
    uint16_t hi = (uint16_t)(id >> 32);
    memcpy(b, &lo, sizeof(lo));
    memcpy(b + sizeof(lo), &hi, sizeof(hi));
}

/* The index of the first id on ring i whose (position, id) is not below
 * (pos, id). */
static uint32_t ring_lower(const uint8_t *s, uint32_t count, uint32_t i,
                           uint64_t pos, uint64_t id)
{
    uint32_t lo = 0, hi = count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t x = ring_id(s, mid), p = ring_pos(x, i);
        if (p < pos || (p == pos && x < id))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void sb_rings_init(sb_rings *r, uint32_t k)
{
    memset(r, 0, sizeof(*r));
    r->k = k < SB_MAX_RINGS ? k : SB_MAX_RINGS;
}

void sb_rings_free(sb_rings *r)
{
    for (uint32_t i = 0; i < SB_MAX_RINGS; i++)
        free(r->ring[i]);
    memset(r, 0, sizeof(*r));
}

bool sb_rings_add(sb_rings *r, uint64_t id)
{
    if (!r->k)
        return true;
    uint32_t at = ring_lower(r->ring[0], r->count, 0, ring_pos(id, 0), id);
    if (at < r->count && ring_id(r->ring[0], at) == id)
        return true;
    if (r->count == r->cap) {
        uint32_t cap = r->cap + r->cap / 8 + 16; /* as the state's */
        for (uint32_t i = 0; i < r->k; i++) {
            uint8_t *g = realloc(r->ring[i], (size_t)cap * SB_ID_SIZE);
            if (!g)
                return false; /* rings grown so far keep their nodes */
            r->ring[i] = g;
        }
        r->cap = cap;
    }
    for (uint32_t i = 0; i < r->k; i++) {
        uint8_t *s = r->ring[i];
        uint32_t j = ring_lower(s, r->count, i, ring_pos(id, i), id);
        memmove(s + (size_t)(j + 1) * SB_ID_SIZE, s + (size_t)j * SB_ID_SIZE,
                (size_t)(r->count - j) * SB_ID_SIZE);
        ring_set(s, j, id);
    }
    r->count++;
    r->changes++;
    return true;
}

void sb_rings_remove(sb_rings *r, uint64_t id)
{
    if (!r->k || !r->count)
        return;
    uint32_t at = ring_lower(r->ring[0], r->count, 0, ring_pos(id, 0), id);
    if (at >= r->count || ring_id(r->ring[0], at) != id)
        return;
    for (uint32_t i = 0; i < r->k; i++) {
        uint8_t *s = r->ring[i];
        uint32_t j = ring_lower(s, r->count, i, ring_pos(id, i), id);
        memmove(s + (size_t)j * SB_ID_SIZE, s + (size_t)(j + 1) * SB_ID_SIZE,
                (size_t)(r->count - j - 1) * SB_ID_SIZE);
    }
    r->count--;
    r->changes++;
}

/* Keeps the first node a walk visits, and stops it there. */
static bool ring_first(void *u, uint64_t id)
{
    *(uint64_t *)u = id;
    return false;
}

bool sb_rings_neighbour(const sb_rings *r, uint32_t i, uint64_t id,
                        bool after, uint64_t *out)
{
    return sb_rings_walk(r, i, id, after, ring_first, out) == 1;
}

uint32_t sb_rings_neighbours(const sb_rings *r, uint32_t k, uint64_t id,
                             bool after, uint64_t *out)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < k && i < r->k; i++) {
        uint64_t x;
        if (!sb_rings_neighbour(r, i, id, after, &x))
            continue;
        uint32_t j = 0;
        while (j < m && out[j] != x)
            j++;
        if (j == m)
            out[m++] = x;
    }
    return m;
}

uint32_t sb_rings_walk(const sb_rings *r, uint32_t i, uint64_t id, bool after,
                       bool (*visit)(void *u, uint64_t id), void *u)
{
    if (i >= r->k || !r->count)
        return 0;
    const uint8_t *s = r->ring[i];
    uint32_t n = r->count;
    uint32_t j = ring_lower(s, n, i, ring_pos(id, i), id);
    bool on = j < n && ring_id(s, j) == id;
    uint32_t others = n - (on ? 1 : 0);
    if (after && !on)
        j = (j + n - 1) % n; /* the step below lands on the first after */
    uint32_t m = 0;
    while (m < others) {
        j = after ? (j + 1) % n : (j + n - 1) % n;
        m++;
        if (!visit(u, ring_id(s, j)))
            break;
    }
    return m;
}

/* (position, id) of a below b's on ring i. */
static bool ring_before(uint32_t i, uint64_t a, uint64_t b)
{
    uint64_t pa = ring_pos(a, i), pb = ring_pos(b, i);
    return pa < pb || (pa == pb && a < b);
}

bool sb_rings_between(uint32_t i, uint64_t from, uint64_t to, uint64_t id)
{
    bool after = ring_before(i, from, id), upto = !ring_before(i, to, id);
    return ring_before(i, from, to) ? after && upto : after || upto;
}

uint32_t sb_rings_find(const sb_rings *r, uint32_t i, uint64_t id, bool *on)
{
    uint32_t j = ring_lower(r->ring[i], r->count, i, ring_pos(id, i), id);
    *on = j < r->count && ring_id(r->ring[i], j) == id;
    return j;
}

uint64_t sb_rings_at(const sb_rings *r, uint32_t i, uint32_t j)
{
    return ring_id(r->ring[i], j);
}

size_t sb_rings_memory(const sb_rings *r)
{
    return (size_t)r->k * r->cap * SB_ID_SIZE;
}
