/*
 * Wire format v8: every message is one UDP datagram.
 *
 * Integers marked (v) are unsigned LEB128 varints (7 bits a byte, low
 * group first, at most 10 bytes, no overlong forms). Fixed-width integers
 * are big endian. A string is a u8 length and that many bytes.
 *
 * Header (all messages), 8 bytes:
 *
 *    0       1       2       3       4       5       6       7
 *   +-------+-------+-------+-------+-------+-------+-------+-------+
 *   |  'S'  |  'B'  |  ver  | type  |       cluster id (u32)        |
 *   +-------+-------+-------+-------+-------+-------+-------+-------+
 *   ver = 8; type = 1 SYN, 2 ACK, 3 ACK2, 4 PUSH, 5 BEAT, 6 SWEEP,
 *   7 DIFF;
 *   cluster id = FNV-1a 32 of the cluster name.
 *
 * SYN:   header | token (u64) | flags (u8) | summary (u64) |
 *        [cursor (u64), with the SWEEP flag] |
 *        [from (u64) | to (u64) | k (u8) | k x fingerprint (u32), with the
 *        RANGE flag] | n (v) | n x digest entry | padding
 *        flags bit 0 = the digest lists every node the sender knows;
 *        bit 1 = zero bytes of padding follow the digest, to the end (a
 *        SYN to a seed: a node answers a stranger with no more bytes
 *        than it sent, and an ACK's frame is larger than a SYN's);
 *        bit 2 = ask: answer even if there is nothing to tell (a probe:
 *        the answer proves the address); bit 3 = doubt: the receiver is
 *        down in the sender's view, at the heartbeat the digest lists it
 *        at (with monitors, it refutes if that is its own: its heartbeat
 *        moves past); bit 4 = sweep: the sender joined and asks
 *        for every record whose id is above the cursor (sweep.c); bit 5
 *        = range: with k = 16, the fingerprints of the 16 parts of the
 *        id range (from, to] (range.c); with k = 0, the digest lists
 *        every record the sender holds in (from, to]; from < to <=
 *        2^48 - 1; other bits are reserved and ignored
 *        summary: the sender's summary (summary.c); a receiver whose
 *        own is the same answers nothing (unless asked)
 * ACK:   header | echo (u64) | token (u64) | summary (u64) | n (v) |
 *        n x digest entry | m (v) | m x node delta
 * ACK2:  header | echo (u64) | m (v) | m x node delta
 *        token: a keyed hash of the address the message is sent to
 *        and of the period (token.c); the answer echoes it, so that an ACK or an ACK2 the
 *        receiver takes is an answer from the address it last wrote to
 * PUSH:  header | n (v) | n x push item
 *        push item: root id (u64) | wave (u64) | m (v) | m x node delta
 *        eager push of fresh keys, n items of as many waves: each
 *        item's deltas are an ACK2's, sent down the tree of push wave
 *        `wave` started by node `root id` (see docs/protocol.md,
 *        section 8); every node passes an item on unchanged (but for
 *        its wave, in sibling trees) to its children in that tree,
 *        with the other items it has for the same child
 * SWEEP: header | echo (u64) | from (u64) | to (u64) | m (v) |
 *        m x node delta
 *        part of a joining node's sweep (sweep.c): the sender's records of
 *        every node whose id is in (from, to], whole, in id order (a
 *        record too large for a message alone may be cut); from < to <=
 *        2^48 - 1, which ends the sweep; an answer to a SYN with the
 *        SWEEP flag, whose token it echoes
 * DIFF:  header | echo (u64) | from (u64) | to (u64) | differ (v)
 *        the answer to a SYN with fingerprints (range.c): bit i of
 *        differ (0 < differ < 2^16) set when part i of (from, to] holds
 *        other records at the sender
 * BEAT:  header | flags (u8) | count (v) | heartbeat (v) | summary (u64)
 *        a node's sign of life to one of its monitors (monitor.c),
 *        answered by nothing; count rises with every BEAT the node
 *        sends, so a replayed or duplicated one is ignored; heartbeat and
 *        summary are the sender's (a monitor whose own summary differs
 *        starts an exchange with it at its next round); flags bit 0 =
 *        farewell: the receiver is no longer the sender's monitor; other
 *        bits are reserved and ignored
 *
 * Digest entry (one node, as the sender knows it), 9 bytes typically:
 *
 *   +---------------+-----------+-----------+------------------+
 *   | node id (u48) | hbl (v)   | max (v)   | gc (v), if hbl&1 |
 *   +---------------+-----------+-----------+------------------+
 *   node id = sb_peer_id(addr, generation), a 48-bit hash;
 *   hbl = heartbeat << 2 | leaving << 1 | (gc != 0); hbl = 0 asks "send
 *   me this node in full" (real heartbeats start at 1);
 *   max = highest key version held; gc = highest collected tombstone,
 *   present only when not 0 (a present gc of 0 is malformed).
 *
 * Node delta (one node's keys that the receiver lacks):
 *
 *   +------+------+---------+---------+-------+----------+--------+
 *   | addr (str)  | gen (v) | hbl (v) | flags | from (v) | to (v) |
 *   +------+------+---------+---------+-------+----------+--------+
 *   | gc (v) | k (v) | k x key entry ...
 *   +--------+-------+
 *   hbl as in a digest entry, with its low bit 0 (reserved);
 *   flags bit 0 = reset: the sender collected tombstones (up to gc) the
 *   receiver may not have seen; a receiver whose gc is lower replaces
 *   its copy with this one (keys held at the same version are kept);
 *   bit 1 = down: the sender holds the node down by its monitors'
 *   verdicts (a receiver that did not know it does not take it for
 *   live until its heartbeat moves); other flag bits are
 *   reserved and ignored;
 *   the keys are those with from < version <= to, in version order.
 *
 * Key entry:
 *
 *   +------+------+-------------+-------+-----------+-----------+
 *   | key (str)   | version (v) | flags | vlen (v)  | value ... |
 *   +------+------+-------------+-------+-----------+-----------+
 *   flags bit 0 = deleted (a tombstone; vlen must be 0).
 *
 * Anything else, including bytes after the last entry, is malformed.
 */
#ifndef SB_CODEC_H
#define SB_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scuttlebutt.h"

enum {
    SB_MSG_SYN = 1,
    SB_MSG_ACK = 2,
    SB_MSG_ACK2 = 3,
    SB_MSG_PUSH = 4,
    SB_MSG_BEAT = 5,
    SB_MSG_SWEEP = 6,
    SB_MSG_DIFF = 7,
};

#define SB_HEADER_SIZE 8
#define SB_PUSH_HEADER_SIZE 16 /* root id and wave */
#define SB_TOKEN_SIZE 8
#define SB_SUMMARY_SIZE 8
#define SB_CURSOR_SIZE 8       /* a sweep's cursor, and a SWEEP's bounds */
#define SB_ID_SIZE 6           /* node ids on the wire: 48 bits */
#define SB_DIGEST_ENTRY_MIN 8  /* id and two one-byte varints */
#define SB_HEARTBEAT_MAX (UINT64_MAX >> 2) /* hbl keeps two low bits */
#define SB_SYN_COMPLETE 0x01
#define SB_SYN_PADDED 0x02
#define SB_SYN_ASK 0x04
#define SB_SYN_DOUBT 0x08
#define SB_SYN_SWEEP 0x10
#define SB_SYN_RANGE 0x20
#define SB_RANGE_PARTS 16      /* the fingerprints of a range */
#define SB_PRINT_SIZE 4        /* a fingerprint: u32 */
#define SB_SWEEP_END 0xffffffffffffull /* the largest 48-bit id */
#define SB_SYN_PADDED_SIZE 64 /* a SYN to a seed, at least */
/* a probe, at least: room for a stranger's answer (no larger than what
 * it answers), an ACK with no entry (its frame, with one-byte counts)
 * and one byte more */
#define SB_PROBE_SIZE (SB_HEADER_SIZE + 2 + 2 * SB_TOKEN_SIZE + \
                       SB_SUMMARY_SIZE + 1)
#define SB_BEAT_FAREWELL 0x01
#define SB_NODE_RESET 0x01
#define SB_NODE_DOWN 0x02
#define SB_KEY_DELETED 0x01
#define SB_VARINT_MAX 10

/* One digest entry. */
typedef struct sb_digest_entry {
    uint64_t id;
    uint64_t heartbeat;        /* 0: a request for the node in full */
    bool leaving;
    uint64_t max_version;
    uint64_t gc_version;
} sb_digest_entry;

/* One key entry, pointing into the packet. */
typedef struct sb_key_entry {
    const uint8_t *key;
    size_t key_len;
    uint64_t version;
    bool deleted;
    const uint8_t *value;
    size_t value_len;
} sb_key_entry;

/* One node delta, pointing into the packet. */
typedef struct sb_delta {
    const char *addr;          /* not NUL-terminated */
    size_t addr_len;
    uint64_t generation;
    uint64_t heartbeat;
    bool leaving;
    bool reset;
    bool down;                 /* the sender holds the node down by
                                  verdicts */
    uint64_t from_version, to_version, gc_version;
    uint64_t nkeys;
    const uint8_t *keys;       /* the first key entry */
    const uint8_t *end;        /* one past the last key entry */
} sb_delta;

/* A validated message: sections point into the packet. */
typedef struct sb_msg {
    int type;
    uint64_t token;            /* SYN and ACK: what the answer echoes */
    uint64_t echo;             /* ACK and ACK2: the token answered */
    uint8_t flags;             /* SYN and BEAT */
    uint64_t summary;          /* SYN, ACK and BEAT: the sender's summary */
    uint64_t cursor;           /* SYN with SWEEP: ids up to it were sent */
    uint64_t from, to;         /* SWEEP: the ids its records cover; SYN
                                  with RANGE, DIFF: the range (from, to] */
    uint32_t nprints;          /* SYN with RANGE: 0 or SB_RANGE_PARTS */
    const uint8_t *prints;     /* its fingerprints (sb_print_at()) */
    uint64_t differ;           /* DIFF: the parts that differ, a bit each */
    uint64_t beat;             /* BEAT: the sender's count */
    uint64_t heartbeat;        /* BEAT: the sender's heartbeat */
    uint64_t nitems;           /* PUSH: its items */
    const uint8_t *items;      /* first item (sb_push_item_next()) */
    uint64_t ndigest;
    const uint8_t *digest;     /* first digest entry */
    uint64_t ndeltas;
    const uint8_t *deltas;     /* first delta */
    const uint8_t *end;
} sb_msg;

/* A cursor over a validated section; the iterators cannot fail. */
typedef struct sb_cursor {
    const uint8_t *p, *end;
} sb_cursor;

/* Checks the header alone (magic, version, cluster id; not the type):
 * true if it is ours, else false with the sb_drop_reason in *why (if
 * `why` is not NULL). */
bool sb_header_check(const uint8_t *buf, size_t len, uint32_t cluster_id,
                     int *why);
/*
 * Checks a whole packet with bounds checks and fills `out`. Returns true
 * if it is valid, else false with the sb_drop_reason that rejects it in
 * *why (if `why` is not NULL). Nothing in the packet is trusted before
 * this returns true.
 */
bool sb_msg_decode(const uint8_t *buf, size_t len, uint32_t cluster_id,
                   sb_msg *out, int *why);

void sb_digest_next(sb_cursor *c, sb_digest_entry *out);
/* The i-th fingerprint of a validated SYN with RANGE. */
static inline uint32_t sb_print_at(const sb_msg *m, uint32_t i)
{
    const uint8_t *b = m->prints + (size_t)i * SB_PRINT_SIZE;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
           (uint32_t)b[2] << 8 | b[3];
}
void sb_delta_next(sb_cursor *c, sb_delta *out);

/* One item of a validated PUSH: its wave, its deltas, and its bytes
 * [start, end), which a node passes on as they are. */
typedef struct sb_push_item {
    uint64_t root, wave;
    uint64_t ndeltas;
    const uint8_t *start, *deltas, *end;
} sb_push_item;
void sb_push_item_next(sb_cursor *c, sb_push_item *out);
void sb_key_next(sb_cursor *c, sb_key_entry *out);

/* A bounded output buffer. Writers never pass `end`. */
typedef struct sb_writer {
    uint8_t *start, *p, *end;
} sb_writer;

static inline size_t sb_writer_room(const sb_writer *w)
{
    return (size_t)(w->end - w->p);
}

size_t sb_varint_size(uint64_t v);
size_t sb_digest_entry_size(const sb_digest_entry *d);
/* Size of a node delta's header, without its keys. */
size_t sb_delta_header_size(const sb_delta *n);
size_t sb_key_entry_size(size_t key_len, size_t value_len, uint64_t version);

/*
 * Each writer appends one item and returns false, writing nothing, when
 * the item does not fit (or holds a heartbeat above SB_HEARTBEAT_MAX).
 * Callers size their plan with the _size functions
 * first, so a false return is a bug guard, not a control path.
 */
bool sb_put_header(sb_writer *w, int type, uint32_t cluster_id);
/* A u64, big endian (node ids, push waves). */
bool sb_put_u64(sb_writer *w, uint64_t v);
/* Rewrites the wave of a written push item in place. */
void sb_set_item_wave(uint8_t *item, uint64_t wave);
/* Rewrites the token of a written SYN in place (one SYN, several
 * destinations). */
void sb_set_syn_token(uint8_t *syn, uint64_t token);
/* Takes the sweep's cursor (and its flag) out of a written SYN, which
 * gets SB_CURSOR_SIZE bytes shorter; a no-op for a SYN without. */
void sb_syn_drop_sweep(sb_writer *syn);
/* The flags byte of a written SYN. */
static inline uint8_t *sb_syn_flags(uint8_t *syn)
{
    return syn + SB_HEADER_SIZE + SB_TOKEN_SIZE;
}
bool sb_put_u8(sb_writer *w, uint8_t v);
bool sb_put_u32(sb_writer *w, uint32_t v);
bool sb_put_varint(sb_writer *w, uint64_t v);
bool sb_put_digest_entry(sb_writer *w, const sb_digest_entry *d);
bool sb_put_delta_header(sb_writer *w, const sb_delta *n);
bool sb_put_key_entry(sb_writer *w, const sb_key_entry *k);

/* The 48-bit node id of (addr, generation), and the cluster id of a name. */
uint64_t sb_peer_id(const char *addr, size_t addr_len, uint64_t generation);
uint32_t sb_cluster_id(const char *name);

#endif /* SB_CODEC_H */
