/*
 * The outbox (push.c): the push items a node has to pass on, each stored
 * once, and for each child the items due to it. A send is one item due
 * to one child as one wave; a child's sends are a list in the order they
 * were queued, so that sending to one child touches its own sends only,
 * and a child kept waiting costs nothing. The children are kept in the
 * order of their ids. Pure; the memory is the caller's.
 */
#ifndef SB_OUTBOX_H
#define SB_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_OUTBOX_NONE UINT32_MAX /* no send: a list's end */

typedef struct sb_outbox_item {
    uint32_t at, len; /* its bytes: bytes[at, at + len) */
    uint32_t refs;    /* the sends of it */
    uint32_t moved;   /* its index after sb_outbox_compact() */
} sb_outbox_item;

typedef struct sb_outbox_send {
    uint64_t wave;
    uint32_t item; /* its index in items */
    uint32_t next; /* the child's next send (in the free list, the next
                      free slot), or SB_OUTBOX_NONE */
} sb_outbox_send;

struct sb_peer;

typedef struct sb_outbox_child {
    uint64_t id;
    const struct sb_peer *peer; /* the caller's, NULL at first */
    uint64_t stamp;             /* the caller's, 0 at first */
    uint32_t first, last;       /* its sends; SB_OUTBOX_NONE: none left */
    uint32_t fresh;             /* the first queued since its last
                                   sb_outbox_once(); SB_OUTBOX_NONE: none */
    /* its first datagram as far as sb_outbox_head() measured it: `head`
     * sends (0: not measured), `head_len` bytes of items, the last one
     * `head_last`; `head_full` once the next one would not fit */
    uint32_t head, head_len, head_last;
    bool head_full;
} sb_outbox_child;

typedef struct sb_outbox {
    uint8_t *bytes;             /* the items back to back: top bytes */
    sb_outbox_item *items;      /* in the order of their bytes: `slots`,
                                   those sent to every child (no refs)
                                   among them until their room is
                                   needed */
    sb_outbox_send *sends;
    sb_outbox_child *children;  /* in the order of their ids */
    uint32_t len, nitems;       /* the bytes and items held: with sends
                                   left, or stored last and not trimmed */
    uint32_t top, slots;        /* the bytes and item slots taken */
    uint32_t added;             /* the item stored last, until
                                   sb_outbox_trim(); or SB_OUTBOX_NONE */
    uint32_t nsends, nchildren;
    uint32_t used;              /* send slots ever taken */
    uint32_t free;              /* the first free slot below used */
    uint32_t cap_bytes, cap_sends, cap_children;
    uint32_t most;              /* bytes of a datagram: items and their
                                   count */
} sb_outbox;

/* Bytes of memory an outbox of `bytes` bytes of items, `sends` sends and
 * `children` children needs. */
size_t sb_outbox_memory(uint32_t bytes, uint32_t sends, uint32_t children);
/* An empty outbox over `mem`: sb_outbox_memory() bytes, aligned for a
 * uint64_t; its datagrams carry `most` bytes of items and their count. */
void sb_outbox_init(sb_outbox *o, void *mem, uint32_t bytes, uint32_t sends,
                    uint32_t children, uint32_t most);
/* Whether an item of `len` bytes fits, with up to `sends` sends of it
 * each to a child not yet in the outbox. */
bool sb_outbox_fits(const sb_outbox *o, size_t len, uint32_t sends);
/* Stores an item's bytes (sb_outbox_fits() said it fits); its index,
 * until the next one is stored. sb_outbox_trim() takes it back if it
 * was queued for no child. */
uint32_t sb_outbox_add(sb_outbox *o, const uint8_t *bytes, size_t len);
/* Queues item `item` for child `to` as wave `wave`, after its sends. */
void sb_outbox_queue(sb_outbox *o, uint32_t item, uint64_t to,
                     uint64_t wave);
/* Takes back the item stored last if it was queued for no child. */
void sb_outbox_trim(sb_outbox *o);
/* Removes the first `n` sends of child c (all of them: UINT32_MAX). */
void sb_outbox_pop(sb_outbox *o, uint32_t c, uint32_t n);
/* Removes the sends of child c whose item is the one of the send before
 * (an item due to it in several waves). The sends of one item are queued
 * one after the other, so only those queued since the last call are
 * looked at. */
void sb_outbox_once(sb_outbox *o, uint32_t c);
/* The sends of child c (it has one) that go first, in one datagram: as
 * many as fit in `most` bytes after their count (a varint), the first
 * always; *len: the bytes of their items. A child kept waiting is not
 * measured again: only the sends queued since, while it had room. */
uint32_t sb_outbox_head(sb_outbox *o, uint32_t c, size_t *len);
/* Drops the children left with no sends (indices of children change).
 * The room of the items sent to all their children is taken back when
 * sb_outbox_add() needs it (indices of items change then). */
void sb_outbox_compact(sb_outbox *o);

#endif /* SB_OUTBOX_H */
