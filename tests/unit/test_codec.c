/*
 * Unit tests of the wire codec (src/core/codec.h).
 *
 * Expected byte sequences are derived by hand from the format described
 * in codec.h, not from the encoder. Node and cluster ids in messages are
 * fixed numbers, so the golden bytes do not depend on the hash functions.
 * Node ids in digest entries are 48 bits (6 bytes on the wire) and
 * heartbeats at most SB_HEARTBEAT_MAX, so hbl = heartbeat << 2 | leaving
 * << 1 | (gc != 0) fits in a u64. Tokens and echoes (wire v3) are fixed
 * u64s too, big endian on the wire: a SYN's token, then the ACK's echo of
 * it and its own token, then the ACK2's echo of that.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../run.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define CID 0x01020304u
#define BUF_CAP 4096
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- message specifications ------------------------------------------- */

typedef struct key_spec {
    const char *key;
    uint64_t version;
    bool deleted;
    const char *value; /* may hold NUL bytes; NULL when value_len is 0 */
    size_t value_len;
} key_spec;

typedef struct node_spec {
    const char *addr;
    uint64_t generation, heartbeat;
    bool leaving, reset;
    uint64_t from, to, gc;
    size_t nkeys;
    const key_spec *keys;
    bool down;
} node_spec;

/* msg_spec literals leave out the fields their type does not have */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

typedef struct msg_spec {
    int type;
    uint8_t flags; /* SYN only */
    size_t ndigest;
    const sb_digest_entry *digest;
    size_t ndeltas;
    const node_spec *deltas;
    uint64_t root, wave; /* PUSH only */
    uint64_t token;      /* SYN and ACK */
    uint64_t echo;       /* ACK and ACK2 */
    uint64_t summary;    /* SYN and ACK */
    size_t pad;          /* SYN with SB_SYN_PADDED: zero bytes at the end */
} msg_spec;

/* SYN with the complete flag and several digest entries. */
static const sb_digest_entry syn_digest[] = {
    { 0x456789abcdefull, 42, false, 7, 3 },
    { 0xfedcba987654ull, 0, false, 0, 0 }, /* a full request */
    { 1, 1000000, true, 300, 299 },
    /* the largest id and heartbeat */
    { 0xffffffffffffull, SB_HEARTBEAT_MAX, false, UINT64_MAX, 1ull << 40 },
    { 0x000102030405ull, 17, true, 5, 0 }, /* gc 0: no gc field */
};
static const msg_spec syn_full = {
    SB_MSG_SYN, SB_SYN_COMPLETE, ARRAY_LEN(syn_digest), syn_digest, 0, NULL,
    .token = 0x0102030405060708ull,
};
static const msg_spec syn_no_flags = {
    SB_MSG_SYN, 0, 2, syn_digest, 0, NULL, .token = 0x8000000000000001ull,
};
static const msg_spec syn_empty = {
    SB_MSG_SYN, 0, 0, NULL, 0, NULL, .token = UINT64_MAX,
};

/* SYNs to a seed: zero bytes of padding after the digest (none at all is
 * padding too). */
static const msg_spec syn_padded = {
    SB_MSG_SYN, SB_SYN_COMPLETE | SB_SYN_PADDED, 2, syn_digest, 0, NULL,
    .token = 0x0a0b0c0d0e0f1011ull, .pad = 23,
};
static const msg_spec syn_padded_empty = {
    SB_MSG_SYN, SB_SYN_PADDED, 0, NULL, 0, NULL,
    .token = 0x1000000000000000ull, .pad = 1,
};
static const msg_spec syn_padded_no_pad = {
    SB_MSG_SYN, SB_SYN_PADDED, ARRAY_LEN(syn_digest), syn_digest, 0, NULL,
    .token = 0x00000000000000ffull, .pad = 0,
};

/* ACK with digest entries and node deltas (tombstone, reset, down, binary
 * value) */
static const sb_digest_entry ack_digest[] = {
    { 0x800000000001ull, 9, true, 12, 0 }, /* top bit of a 48-bit id */
    { 0x00000000ffffffffull, 0, false, 0, 0 },
};
static const key_spec ack_keys_a[] = {
    { "role", 3, false, "db", 2 },
    { "tmp", 4, true, NULL, 0 },
    { "bin", 5, false, "\0\1\2\xff", 4 },
};
static const key_spec ack_keys_b[] = {
    { "k", 12, true, NULL, 0 },
};
static const node_spec ack_nodes[] = {
    { "10.0.0.1:7946", 1700000000, 12, false, true, 0, 5, 2,
      ARRAY_LEN(ack_keys_a), ack_keys_a },
    { "[::1]:7000", 2, 3, true, false, 10, 12, 9,
      ARRAY_LEN(ack_keys_b), ack_keys_b, true },
};
static const msg_spec ack_full = {
    SB_MSG_ACK, 0, ARRAY_LEN(ack_digest), ack_digest,
    ARRAY_LEN(ack_nodes), ack_nodes,
    .token = 0xfedcba9876543210ull, .echo = 0x0102030405060708ull,
};
static const msg_spec ack_empty = {
    SB_MSG_ACK, 0, 0, NULL, 0, NULL, .token = 0, .echo = UINT64_MAX,
};
static const msg_spec ack_digest_only = {
    SB_MSG_ACK, 0, ARRAY_LEN(ack_digest), ack_digest, 0, NULL,
    .token = 0x8000000000000000ull, .echo = 1,
};
static const msg_spec ack_nodes_only = {
    SB_MSG_ACK, 0, 0, NULL, ARRAY_LEN(ack_nodes), ack_nodes,
    .token = 0x1111111111111111ull, .echo = 0x2222222222222222ull,
};

/* ACK2 with several node deltas, one of them without keys. */
static const key_spec ack2_keys_a[] = {
    { "status", 4, false, "up", 2 },
};
static const key_spec ack2_keys_c[] = {
    { "a", 101, false, "", 0 },
    { "b", 102, true, NULL, 0 },
    { "c", 200, false, "third", 5 },
};
static const node_spec ack2_nodes[] = {
    { "10.0.0.1:7946", 1, 5, true, false, 3, 4, 3,
      ARRAY_LEN(ack2_keys_a), ack2_keys_a },
    { "b:2", 1, 1, false, false, 0, 0, 0, 0, NULL },
    { "node-c.example:7946", 77, 300, false, true, 100, 200, 50,
      ARRAY_LEN(ack2_keys_c), ack2_keys_c },
};
static const msg_spec ack2_full = {
    SB_MSG_ACK2, 0, 0, NULL, ARRAY_LEN(ack2_nodes), ack2_nodes,
    .echo = 0xfedcba9876543210ull,
};
static const msg_spec ack2_empty = {
    SB_MSG_ACK2, 0, 0, NULL, 0, NULL, .echo = 0x8000000000000000ull,
};

/* The small, fully specified messages behind the golden byte tests. */
static const sb_digest_entry golden_syn_digest[] = {
    { 0x112233445566ull, 300, true, 5, 2 },
    { 1, 0, false, 0, 0 },
};
static const msg_spec golden_syn = {
    SB_MSG_SYN, SB_SYN_COMPLETE, 2, golden_syn_digest, 0, NULL,
    .token = 0x0102030405060708ull, .summary = 0x1122334455667788ull,
};
static const uint8_t golden_syn_bytes[] = {
    'S', 'B', 8, 1, 0x01, 0x02, 0x03, 0x04, /* header, SYN */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* token (u64) */
    0x01,                                   /* flags: complete */
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* summary (u64) */
    0x02,                                   /* n = 2 */
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66,     /* id (u48) */
    0xb3, 0x09,             /* hbl = 300 << 2 | 1 << 1 | 1 = 1203 */
    0x05,                                   /* max */
    0x02,                                   /* gc, present: hbl & 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01,     /* id (u48) */
    0x00, 0x00,             /* hbl 0 (request, no gc), max; no gc field */
};

static const sb_digest_entry golden_ack_digest[] = {
    { 0x010203040506ull, 1, false, 128, 127 },
};
static const key_spec golden_ack_keys[] = {
    { "k", 1, false, "hi", 2 },
    { "x", 2, true, NULL, 0 },
};
static const node_spec golden_ack_nodes[] = {
    { "a:1", 7, 2, false, true, 0, 2, 0, 2, golden_ack_keys },
};
/* the answer to golden_syn: it echoes that SYN's token */
static const msg_spec golden_ack = {
    SB_MSG_ACK, 0, 1, golden_ack_digest, 1, golden_ack_nodes,
    .token = 0xf1e2d3c4b5a69788ull, .echo = 0x0102030405060708ull,
    .summary = 0x8877665544332211ull,
};
static const uint8_t golden_ack_bytes[] = {
    'S', 'B', 8, 2, 0x01, 0x02, 0x03, 0x04, /* header, ACK */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* echo (u64) */
    0xf1, 0xe2, 0xd3, 0xc4, 0xb5, 0xa6, 0x97, 0x88, /* token (u64) */
    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* summary (u64) */
    0x01,                                   /* n = 1 */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06,     /* id (u48) */
    0x05,                                   /* hbl = 1 << 2 | 1 (gc) */
    0x80, 0x01,                             /* max 128 */
    0x7f,                                   /* gc 127 */
    0x01,                                   /* m = 1 */
    0x03, 'a', ':', '1',                    /* addr */
    0x07,                                   /* gen */
    0x08,                                   /* hbl = 2 << 2 */
    0x01,                                   /* flags: reset */
    0x00, 0x02, 0x00,                       /* from, to, gc */
    0x02,                                   /* k = 2 */
    0x01, 'k', 0x01, 0x00, 0x02, 'h', 'i',  /* "k" v1 "hi" */
    0x01, 'x', 0x02, 0x01, 0x00,            /* "x" v2 tombstone */
};

static const key_spec golden_ack2_keys[] = {
    { "status", 4, false, "up", 2 },
};
static const node_spec golden_ack2_nodes[] = {
    { "10.0.0.1:7946", 1700000000, 5, true, false, 3, 4, 3, 1,
      golden_ack2_keys },
    { "b:2", 1, 1, false, false, 0, 0, 0, 0, NULL },
};
/* the answer to golden_ack: it echoes that ACK's token */
static const msg_spec golden_ack2 = {
    SB_MSG_ACK2, 0, 0, NULL, 2, golden_ack2_nodes,
    .echo = 0xf1e2d3c4b5a69788ull,
};
static const uint8_t golden_ack2_bytes[] = {
    'S', 'B', 8, 3, 0x01, 0x02, 0x03, 0x04, /* header, ACK2 */
    0xf1, 0xe2, 0xd3, 0xc4, 0xb5, 0xa6, 0x97, 0x88, /* echo (u64) */
    0x02,                                   /* m = 2 */
    0x0d, '1', '0', '.', '0', '.', '0', '.', '1', ':', '7', '9', '4', '6',
    0x80, 0xe2, 0xcf, 0xaa, 0x06,           /* gen 1700000000 */
    0x16,                                   /* hbl = 5 << 2 | 1 << 1 */
    0x00,                                   /* flags */
    0x03, 0x04, 0x03,                       /* from, to, gc */
    0x01,                                   /* k = 1 */
    0x06, 's', 't', 'a', 't', 'u', 's', 0x04, 0x00, 0x02, 'u', 'p',
    0x03, 'b', ':', '2',                    /* addr */
    0x01, 0x04, 0x00,                       /* gen 1, hbl = 1 << 2, flags */
    0x00, 0x00, 0x00, 0x00,                 /* from, to, gc, k = 0 */
};

/* A PUSH of one item: the root and wave of its tree, then the deltas of
 * an ACK2. */
static const key_spec golden_push_keys[] = {
    { "role", 9, false, "db", 2 },
    { "old", 10, true, NULL, 0 },
};
static const node_spec golden_push_nodes[] = {
    { "n:1", 7, 40, false, false, 8, 10, 0, 2, golden_push_keys },
};
static const msg_spec golden_push = {
    SB_MSG_PUSH, 0, 0, NULL, 1, golden_push_nodes,
    0x1112131415161718ull, 0xa1a2a3a4a5a6a7a8ull,
};
static const uint8_t golden_push_bytes[] = {
    'S', 'B', 8, 4, 0x01, 0x02, 0x03, 0x04, /* header, PUSH */
    0x01,                                   /* n = 1 item */
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* root id (u64) */
    0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, /* wave */
    0x01,                                   /* m = 1 */
    0x03, 'n', ':', '1',                    /* addr */
    0x07,                                   /* gen 7 */
    0xa0, 0x01,                             /* hbl = 40 << 2 = 160 */
    0x00,                                   /* flags */
    0x08, 0x0a, 0x00,                       /* from 8, to 10, gc 0 */
    0x02,                                   /* k = 2 */
    0x04, 'r', 'o', 'l', 'e', 0x09, 0x00, 0x02, 'd', 'b', /* v9 "db" */
    0x03, 'o', 'l', 'd', 0x0a, 0x01, 0x00,  /* v10 tombstone */
};

/* A SYN to a seed, padded to SB_SYN_PADDED_SIZE bytes. */
static const sb_digest_entry golden_padded_digest[] = {
    { 0x112233445566ull, 300, true, 5, 2 },
};
static const msg_spec golden_padded_syn = {
    SB_MSG_SYN, SB_SYN_COMPLETE | SB_SYN_PADDED, 1, golden_padded_digest,
    0, NULL, .token = 0x0102030405060708ull, .summary = 1, .pad = 28,
};
static const uint8_t golden_padded_syn_bytes[] = {
    'S', 'B', 8, 1, 0x01, 0x02, 0x03, 0x04, /* header, SYN */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* token (u64) */
    0x03,                                   /* flags: complete, padded */
    0, 0, 0, 0, 0, 0, 0, 0x01,              /* summary (u64) */
    0x01,                                   /* n = 1 */
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66,     /* id (u48) */
    0xb3, 0x09,             /* hbl = 300 << 2 | 1 << 1 | 1 = 1203 */
    0x05,                                   /* max */
    0x02,                                   /* gc */
    /* 28 bytes of padding: 36 + 28 = 64 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
#define GOLDEN_PADDED_SYN_UNPADDED 36 /* its length without the padding */

static const msg_spec *const valid_specs[] = {
    &syn_full, &syn_no_flags, &syn_empty,
    &syn_padded, &syn_padded_empty, &syn_padded_no_pad,
    &ack_full, &ack_empty, &ack_digest_only, &ack_nodes_only,
    &ack2_full, &ack2_empty,
    &golden_syn, &golden_ack, &golden_ack2, &golden_push,
    &golden_padded_syn,
};

/* ---- encoding and checking helpers ------------------------------------ */

/* SYN and ACK carry a digest; ACK2 and PUSH carry node deltas only. */
static bool has_digest(int type)
{
    return type == SB_MSG_SYN || type == SB_MSG_ACK;
}

/* SYN and ACK carry a token; ACK and ACK2 echo one (before the token). */
static bool has_token(int type)
{
    return type == SB_MSG_SYN || type == SB_MSG_ACK;
}

static bool has_echo(int type)
{
    return type == SB_MSG_ACK || type == SB_MSG_ACK2;
}

/* A padded SYN takes zero bytes after its digest. */
static bool is_padded_syn(const msg_spec *m)
{
    return m->type == SB_MSG_SYN && (m->flags & SB_SYN_PADDED);
}

static sb_delta node_of(const node_spec *s)
{
    sb_delta n;
    memset(&n, 0, sizeof(n));
    n.addr = s->addr;
    n.addr_len = strlen(s->addr);
    n.generation = s->generation;
    n.heartbeat = s->heartbeat;
    n.leaving = s->leaving;
    n.reset = s->reset;
    n.down = s->down;
    n.from_version = s->from;
    n.to_version = s->to;
    n.gc_version = s->gc;
    n.nkeys = s->nkeys;
    return n;
}

static sb_key_entry key_of(const key_spec *s)
{
    sb_key_entry k;
    memset(&k, 0, sizeof(k));
    k.key = (const uint8_t *)s->key;
    k.key_len = strlen(s->key);
    k.version = s->version;
    k.deleted = s->deleted;
    k.value = (const uint8_t *)s->value;
    k.value_len = s->value_len;
    return k;
}

static void put_node(sb_writer *w, const node_spec *s)
{
    sb_delta n = node_of(s);
    assert_true(sb_put_delta_header(w, &n));
    for (size_t i = 0; i < s->nkeys; i++) {
        sb_key_entry k = key_of(&s->keys[i]);
        assert_true(sb_put_key_entry(w, &k));
    }
}

/* The size the _size functions predict for a message (and its padding). */
static size_t spec_size(const msg_spec *m)
{
    size_t n = SB_HEADER_SIZE;
    if (has_echo(m->type))
        n += SB_TOKEN_SIZE;
    if (has_token(m->type))
        n += SB_TOKEN_SIZE;
    if (m->type == SB_MSG_SYN)
        n += 1 + m->pad;
    if (has_digest(m->type))
        n += SB_SUMMARY_SIZE;
    if (m->type == SB_MSG_PUSH)
        n += 1 + SB_PUSH_HEADER_SIZE; /* one item */
    if (has_digest(m->type)) {
        n += sb_varint_size(m->ndigest);
        for (size_t i = 0; i < m->ndigest; i++)
            n += sb_digest_entry_size(&m->digest[i]);
    }
    if (m->type != SB_MSG_SYN) {
        n += sb_varint_size(m->ndeltas);
        for (size_t i = 0; i < m->ndeltas; i++) {
            const node_spec *s = &m->deltas[i];
            sb_delta d = node_of(s);
            n += sb_delta_header_size(&d);
            for (size_t j = 0; j < s->nkeys; j++)
                n += sb_key_entry_size(strlen(s->keys[j].key),
                                       s->keys[j].value_len,
                                       s->keys[j].version);
        }
    }
    return n;
}

/* Encodes a message with the writers; returns its length. */
static size_t encode_with_cid(const msg_spec *m, uint32_t cid, uint8_t *buf,
                              size_t cap)
{
    /* padding belongs only to a SYN that says so */
    assert_true(m->pad == 0 || is_padded_syn(m));
    sb_writer w = { buf, buf, buf + cap };
    assert_true(sb_put_header(&w, m->type, cid));
    if (has_echo(m->type))
        assert_true(sb_put_u64(&w, m->echo));
    if (has_token(m->type))
        assert_true(sb_put_u64(&w, m->token));
    if (m->type == SB_MSG_SYN)
        assert_true(sb_put_u8(&w, m->flags));
    if (has_digest(m->type))
        assert_true(sb_put_u64(&w, m->summary));
    if (m->type == SB_MSG_PUSH) { /* one item */
        assert_true(sb_put_varint(&w, 1));
        assert_true(sb_put_u64(&w, m->root));
        assert_true(sb_put_u64(&w, m->wave));
    }
    if (has_digest(m->type)) {
        assert_true(sb_put_varint(&w, m->ndigest));
        for (size_t i = 0; i < m->ndigest; i++)
            assert_true(sb_put_digest_entry(&w, &m->digest[i]));
    }
    for (size_t i = 0; i < m->pad; i++)
        assert_true(sb_put_u8(&w, 0));
    if (m->type != SB_MSG_SYN) {
        assert_true(sb_put_varint(&w, m->ndeltas));
        for (size_t i = 0; i < m->ndeltas; i++)
            put_node(&w, &m->deltas[i]);
    }
    assert_true(w.start == buf);
    size_t len = (size_t)(w.p - buf);
    assert_int_equal(len, spec_size(m));
    return len;
}

static size_t encode(const msg_spec *m, uint8_t *buf, size_t cap)
{
    return encode_with_cid(m, CID, buf, cap);
}

static void check_digest_entry(const sb_digest_entry *got,
                               const sb_digest_entry *want)
{
    assert_int_equal(got->id, want->id);
    assert_int_equal(got->heartbeat, want->heartbeat);
    assert_int_equal(got->leaving, want->leaving);
    assert_int_equal(got->max_version, want->max_version);
    assert_int_equal(got->gc_version, want->gc_version);
}

static void check_key(const sb_key_entry *got, const key_spec *want)
{
    size_t key_len = strlen(want->key);
    assert_int_equal(got->key_len, key_len);
    assert_memory_equal(got->key, want->key, key_len);
    assert_int_equal(got->version, want->version);
    assert_int_equal(got->deleted, want->deleted);
    assert_int_equal(got->value_len, want->value_len);
    if (want->value_len)
        assert_memory_equal(got->value, want->value, want->value_len);
}

static void check_node(const sb_delta *got, const node_spec *want,
                       const uint8_t *msg_end)
{
    size_t addr_len = strlen(want->addr);
    assert_int_equal(got->addr_len, addr_len);
    assert_memory_equal(got->addr, want->addr, addr_len);
    assert_int_equal(got->generation, want->generation);
    assert_int_equal(got->heartbeat, want->heartbeat);
    assert_int_equal(got->leaving, want->leaving);
    assert_int_equal(got->reset, want->reset);
    assert_int_equal(got->down, want->down);
    assert_int_equal(got->from_version, want->from);
    assert_int_equal(got->to_version, want->to);
    assert_int_equal(got->gc_version, want->gc);
    assert_int_equal(got->nkeys, want->nkeys);
    assert_true(got->keys <= got->end && got->end <= msg_end);
    sb_cursor kc = { got->keys, got->end };
    for (size_t i = 0; i < want->nkeys; i++) {
        sb_key_entry k;
        sb_key_next(&kc, &k);
        check_key(&k, &want->keys[i]);
    }
    assert_ptr_equal(kc.p, got->end);
}

/* Decodes buf and compares every field with the spec. */
static void check_decodes_to(const uint8_t *buf, size_t len,
                             const msg_spec *m)
{
    sb_msg msg;
    assert_true(sb_msg_decode(buf, len, CID, &msg, NULL));
    assert_int_equal(msg.type, m->type);
    assert_ptr_equal(msg.end, buf + len);
    /* a type without a token or an echo decodes them as 0 */
    assert_int_equal(msg.token, has_token(m->type) ? m->token : 0);
    assert_int_equal(msg.echo, has_echo(m->type) ? m->echo : 0);
    if (m->type == SB_MSG_SYN)
        assert_int_equal(msg.flags, m->flags);
    assert_int_equal(msg.summary, has_digest(m->type) ? m->summary : 0);
    if (m->type == SB_MSG_PUSH) { /* one item: its deltas as an ACK2's */
        assert_int_equal(msg.nitems, 1);
        sb_cursor ic = { msg.items, msg.end };
        sb_push_item it;
        sb_push_item_next(&ic, &it);
        assert_ptr_equal(it.start, msg.items);
        assert_ptr_equal(it.end, msg.end);
        assert_int_equal(it.root, m->root);
        assert_int_equal(it.wave, m->wave);
        msg.ndeltas = it.ndeltas;
        msg.deltas = it.deltas;
    }
    if (has_digest(m->type)) {
        assert_int_equal(msg.ndigest, m->ndigest);
        sb_cursor c = { msg.digest, msg.end };
        for (size_t i = 0; i < m->ndigest; i++) {
            sb_digest_entry d;
            sb_digest_next(&c, &d);
            check_digest_entry(&d, &m->digest[i]);
        }
        /* the digest section ends where a SYN's padding or an ACK's node
         * count begins */
        assert_ptr_equal(c.p, m->type == SB_MSG_SYN
                                  ? msg.end - m->pad
                                  : msg.deltas - sb_varint_size(m->ndeltas));
    } else {
        assert_int_equal(msg.ndigest, 0);
    }
    if (m->type != SB_MSG_SYN) {
        assert_int_equal(msg.ndeltas, m->ndeltas);
        sb_cursor c = { msg.deltas, msg.end };
        for (size_t i = 0; i < m->ndeltas; i++) {
            sb_delta n;
            sb_delta_next(&c, &n);
            check_node(&n, &m->deltas[i], msg.end);
            assert_ptr_equal(c.p, n.end);
        }
        assert_ptr_equal(c.p, msg.end);
    } else {
        assert_int_equal(msg.ndeltas, 0);
    }
}

/* Decodes an exact-size heap copy, so ASan sees any read past the end. */
static int decode_copy(const uint8_t *buf, size_t len, uint32_t cid)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    sb_msg msg;
    int why = -1; /* -1: valid */
    sb_msg_decode(copy, len, cid, &msg, &why);
    free(copy);
    return why;
}

static void roundtrip(const msg_spec *m)
{
    uint8_t buf[BUF_CAP];
    size_t len = encode(m, buf, sizeof(buf));
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    check_decodes_to(copy, len, m);
    free(copy);
}

static bool is_drop_reason(int rc)
{
    return rc >= 0 && rc < SB_DROP_COUNT;
}

/* ---- round trips ------------------------------------------------------ */

static void test_roundtrip_syn_with_flags_and_digest(void **state)
{
    (void)state;
    roundtrip(&syn_full);
    roundtrip(&syn_no_flags);
}

static void test_roundtrip_syn_empty_digest(void **state)
{
    (void)state;
    roundtrip(&syn_empty);
}

static void test_roundtrip_padded_syn_keeps_its_digest(void **state)
{
    (void)state;
    roundtrip(&syn_padded);
    roundtrip(&syn_padded_empty);
    roundtrip(&syn_padded_no_pad); /* the flag with no padding at all */
    /* a long run of padding */
    const msg_spec big = { SB_MSG_SYN, SB_SYN_PADDED, ARRAY_LEN(syn_digest),
                           syn_digest, 0, NULL, .token = 42, .pad = 2000 };
    roundtrip(&big);
}

static void test_roundtrip_ack_with_digest_and_nodes(void **state)
{
    (void)state;
    roundtrip(&ack_full);
}

static void test_roundtrip_ack_empty_sections(void **state)
{
    (void)state;
    roundtrip(&ack_empty);
    roundtrip(&ack_digest_only);
    roundtrip(&ack_nodes_only);
}

static void test_roundtrip_ack2_with_several_nodes(void **state)
{
    (void)state;
    roundtrip(&ack2_full);
}

static void test_roundtrip_ack2_empty(void **state)
{
    (void)state;
    roundtrip(&ack2_empty);
}

static void test_roundtrip_max_length_strings(void **state)
{
    (void)state;
    static char addr[256], key[256];
    static uint8_t value[1000];
    memset(addr, 'a', 255);
    memset(key, 'k', 255);
    for (size_t i = 0; i < sizeof(value); i++)
        value[i] = (uint8_t)(i * 7);
    const key_spec keys[] = {
        { key, 1, false, (const char *)value, sizeof(value) },
    };
    const node_spec nodes[] = {
        { addr, UINT64_MAX, SB_HEARTBEAT_MAX, true, true, 0, UINT64_MAX,
          UINT64_MAX, 1, keys },
    };
    const msg_spec m = { SB_MSG_ACK2, 0, 0, NULL, 1, nodes };
    roundtrip(&m);
}

/* ---- golden bytes ----------------------------------------------------- */

static void check_golden(const msg_spec *m, const uint8_t *want, size_t n)
{
    uint8_t buf[BUF_CAP];
    size_t len = encode(m, buf, sizeof(buf));
    assert_int_equal(len, n);
    assert_memory_equal(buf, want, n);
    check_decodes_to(want, n, m);
}

static void test_golden_syn_bytes(void **state)
{
    (void)state;
    check_golden(&golden_syn, golden_syn_bytes, sizeof(golden_syn_bytes));
}

static void test_golden_ack_bytes(void **state)
{
    (void)state;
    check_golden(&golden_ack, golden_ack_bytes, sizeof(golden_ack_bytes));
}

static void test_golden_ack2_bytes(void **state)
{
    (void)state;
    check_golden(&golden_ack2, golden_ack2_bytes, sizeof(golden_ack2_bytes));
}

static void test_golden_push_bytes(void **state)
{
    (void)state;
    check_golden(&golden_push, golden_push_bytes, sizeof(golden_push_bytes));
}

static void test_golden_padded_syn_bytes(void **state)
{
    (void)state;
    assert_int_equal(sizeof(golden_padded_syn_bytes), SB_SYN_PADDED_SIZE);
    check_golden(&golden_padded_syn, golden_padded_syn_bytes,
                 sizeof(golden_padded_syn_bytes));
    /* its digest entry is intact, padding or not */
    sb_msg msg;
    assert_true(sb_msg_decode(golden_padded_syn_bytes,
                              sizeof(golden_padded_syn_bytes), CID, &msg,
                              NULL));
    assert_int_equal(msg.flags, SB_SYN_COMPLETE | SB_SYN_PADDED);
    assert_int_equal(msg.token, 0x0102030405060708ull);
    assert_int_equal(msg.ndigest, 1);
    sb_cursor c = { msg.digest, msg.end };
    sb_digest_entry d;
    sb_digest_next(&c, &d);
    check_digest_entry(&d, &golden_padded_digest[0]);
    assert_ptr_equal(c.p, golden_padded_syn_bytes + GOLDEN_PADDED_SYN_UNPADDED);
}

static void test_header_cluster_id_is_big_endian(void **state)
{
    (void)state;
    uint8_t buf[SB_HEADER_SIZE + 4];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    assert_true(sb_put_header(&w, SB_MSG_ACK2, 0xdeadbeefu));
    assert_int_equal(SB_PROTOCOL_VERSION, 8);
    const uint8_t want[] = { 'S', 'B', 8, 3, 0xde, 0xad, 0xbe, 0xef };
    assert_int_equal(w.p - buf, SB_HEADER_SIZE);
    assert_memory_equal(buf, want, sizeof(want));
}

/* ---- identities ------------------------------------------------------- */

/* Independent implementations of the documented algorithms. */
static uint32_t ref_fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static uint64_t ref_node_id(const char *addr, size_t addr_len, uint64_t gen)
{
    uint64_t h = 14695981039346656037ull;
    uint8_t g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (uint8_t)(gen >> (8 * i)); /* little-endian first */
    for (size_t i = 0; i < addr_len; i++)
        h = (h ^ (unsigned char)addr[i]) * 1099511628211ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ g[i]) * 1099511628211ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h >> 16; /* the id is the top 48 bits */
}

static void test_cluster_id_is_fnv1a32(void **state)
{
    (void)state;
    assert_int_equal(sb_cluster_id("default"), ref_fnv1a32("default"));
    /* pinned: FNV-1a 32 of "default", also computed outside C */
    assert_int_equal(sb_cluster_id("default"), 0x933b5bdeu);
    assert_int_equal(sb_cluster_id(""), 0x811c9dc5u); /* the offset basis */
    assert_int_equal(sb_cluster_id("prod-eu"), ref_fnv1a32("prod-eu"));
}

static void test_node_id_matches_reference(void **state)
{
    (void)state;
    const char *addr = "10.0.0.1:7946";
    assert_int_equal(sb_peer_id(addr, strlen(addr), 1),
                     ref_node_id(addr, strlen(addr), 1));
    assert_int_equal(sb_peer_id(addr, 9, 1), ref_node_id(addr, 9, 1));
    assert_int_equal(sb_peer_id(addr, strlen(addr), 0x0102030405060708ull),
                     ref_node_id(addr, strlen(addr), 0x0102030405060708ull));
    /* ids are 48 bits: they fit a digest entry's id field */
    for (uint64_t gen = 1; gen <= 64; gen++) {
        uint64_t id = sb_peer_id(addr, strlen(addr), gen);
        assert_int_equal(id, ref_node_id(addr, strlen(addr), gen));
        assert_int_equal(id >> 48, 0);
    }
}

static void test_node_id_pinned_values(void **state)
{
    (void)state;
    /* values of the documented algorithm, computed outside C (Python):
     * the top 48 bits of the 64-bit hashes 0x85e804055afbafae,
     * 0x2bc8a158381e8a10 and 0x2c63f6e2ae2038a6 */
    assert_int_equal(sb_peer_id("10.0.0.1:7946", 13, 1), 0x85e804055afbull);
    assert_int_equal(sb_peer_id("10.0.0.1:7946", 13, 0x0102030405060708ull),
                     0x2bc8a158381eull);
    /* addr_len bounds the hashed bytes: only "10.0.0.1:" counts */
    assert_int_equal(sb_peer_id("10.0.0.1:7946", 9, 1), 0x2c63f6e2ae20ull);
    assert_int_equal(sb_peer_id("10.0.0.1:7946", 9, 1),
                     sb_peer_id("10.0.0.1:", 9, 1));
}

static void test_node_id_depends_on_generation(void **state)
{
    (void)state;
    assert_true(sb_peer_id("10.0.0.1:7946", 13, 1) !=
                sb_peer_id("10.0.0.1:7946", 13, 2));
}

/* ---- varints ---------------------------------------------------------- */

/* A SYN with one digest entry whose max and gc are both v (gc 0 is
 * written as no gc field). */
static size_t syn_with_max_gc(uint64_t v, uint8_t *buf, size_t cap)
{
    const sb_digest_entry d = { 0x0a0b0c0d0e0full, 1, false, v, v };
    const msg_spec m = { SB_MSG_SYN, 0, 1, &d, 0, NULL,
                         .token = 0x0102030405060708ull };
    size_t len = encode(&m, buf, cap);
    check_decodes_to(buf, len, &m);
    return len;
}

static void check_varint_edge(uint64_t v, const uint8_t *want, size_t n)
{
    uint8_t buf[64];
    assert_int_equal(sb_varint_size(v), n);
    size_t len = syn_with_max_gc(v, buf, sizeof(buf));
    /* header, token, flags, summary, n = 1, id (6 bytes), hbl, then max
     * and gc */
    const size_t at = SB_HEADER_SIZE + SB_TOKEN_SIZE + 1 + SB_SUMMARY_SIZE +
                      1 + SB_ID_SIZE + 1;
    const uint8_t id[] = { 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };
    assert_memory_equal(buf + SB_HEADER_SIZE + SB_TOKEN_SIZE + 2 +
                            SB_SUMMARY_SIZE,
                        id, sizeof(id));
    /* hbl = 1 << 2 | (gc != 0) */
    assert_int_equal(buf[at - 1], v != 0 ? 0x05 : 0x04);
    assert_memory_equal(buf + at, want, n);
    if (v != 0) {
        assert_int_equal(len, at + 2 * n);
        assert_memory_equal(buf + at + n, want, n);
    } else {
        assert_int_equal(len, at + n); /* gc 0: no gc field */
    }
}

static void test_varint_zero(void **state)
{
    (void)state;
    const uint8_t want[] = { 0x00 };
    check_varint_edge(0, want, sizeof(want));
}

static void test_varint_127(void **state)
{
    (void)state;
    const uint8_t want[] = { 0x7f };
    check_varint_edge(127, want, sizeof(want));
}

static void test_varint_128(void **state)
{
    (void)state;
    const uint8_t want[] = { 0x80, 0x01 };
    check_varint_edge(128, want, sizeof(want));
}

static void test_varint_2_pow_63(void **state)
{
    (void)state;
    const uint8_t want[] = { 0x80, 0x80, 0x80, 0x80, 0x80,
                             0x80, 0x80, 0x80, 0x80, 0x01 };
    check_varint_edge(1ull << 63, want, sizeof(want));
}

static void test_varint_uint64_max(void **state)
{
    (void)state;
    const uint8_t want[] = { 0xff, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0x01 };
    check_varint_edge(UINT64_MAX, want, sizeof(want));
}

static void test_hbl_packs_largest_heartbeat_and_leaving(void **state)
{
    (void)state;
    uint8_t buf[64];
    /* hbl = (2^62 - 1) << 2 | 1 << 1 = 2^64 - 2, no gc */
    const sb_digest_entry d = { 7, SB_HEARTBEAT_MAX, true, 0, 0 };
    const msg_spec m = { SB_MSG_SYN, 0, 1, &d, 0, NULL, .token = 3 };
    size_t len = encode(&m, buf, sizeof(buf));
    const uint8_t hbl[] = { 0xfe, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0x01 };
    /* header, token, flags, summary, n, id, hbl, max; no gc */
    assert_int_equal(len, SB_HEADER_SIZE + SB_TOKEN_SIZE + 1 +
                              SB_SUMMARY_SIZE + 1 + 6 + 10 + 1);
    assert_memory_equal(buf + SB_HEADER_SIZE + SB_TOKEN_SIZE +
                            SB_SUMMARY_SIZE + 8,
                        hbl, sizeof(hbl));
    assert_int_equal(buf[len - 1], 0x00); /* max */
    check_decodes_to(buf, len, &m);

    /* with gc set every bit of hbl is set: 2^64 - 1 */
    const sb_digest_entry g = { 7, SB_HEARTBEAT_MAX, true, 0, 1 };
    const msg_spec mg = { SB_MSG_SYN, 0, 1, &g, 0, NULL, .token = 3 };
    len = encode(&mg, buf, sizeof(buf));
    const uint8_t hbl_gc[] = { 0xff, 0xff, 0xff, 0xff, 0xff,
                               0xff, 0xff, 0xff, 0xff, 0x01 };
    assert_int_equal(len, SB_HEADER_SIZE + SB_TOKEN_SIZE + 1 +
                              SB_SUMMARY_SIZE + 1 + 6 + 10 + 1 + 1);
    assert_memory_equal(buf + SB_HEADER_SIZE + SB_TOKEN_SIZE +
                            SB_SUMMARY_SIZE + 8,
                        hbl_gc, sizeof(hbl_gc));
    assert_int_equal(buf[len - 2], 0x00); /* max */
    assert_int_equal(buf[len - 1], 0x01); /* gc */
    check_decodes_to(buf, len, &mg);
}

/*
 * A raw SYN with one digest entry whose hbl, max and gc fields are given
 * as raw bytes, so that invalid varints can be placed anywhere. The gc
 * field belongs there only when hbl has its low bit set; ng = 0 leaves
 * it out.
 */
static size_t raw_syn(uint8_t *buf, const uint8_t *hbl, size_t nh,
                      const uint8_t *max, size_t nm, const uint8_t *gc,
                      size_t ng)
{
    const uint8_t head[] = { 'S', 'B', 8, 1, 0x01, 0x02, 0x03, 0x04,
                             0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
                             0x00, /* flags */
                             0, 0, 0, 0, 0, 0, 0, 9, /* summary */
                             0x01, 1, 2, 3, 4, 5, 6 /* id (u48) */ };
    size_t len = 0;
    memcpy(buf + len, head, sizeof(head));
    len += sizeof(head);
    memcpy(buf + len, hbl, nh);
    len += nh;
    memcpy(buf + len, max, nm);
    len += nm;
    if (ng)
        memcpy(buf + len, gc, ng);
    len += ng;
    return len;
}

static const uint8_t one[] = { 0x01 };
/* hbl = 1 << 2 | 1: heartbeat 1, a gc field follows max */
static const uint8_t hb1_gc[] = { 0x05 };
/* hbl = 1 << 2: heartbeat 1, no gc field */
static const uint8_t hb1[] = { 0x04 };

static void test_raw_syn_control_is_valid(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t len = raw_syn(buf, hb1_gc, 1, one, 1, one, 1);
    assert_int_equal(len, SB_HEADER_SIZE + SB_TOKEN_SIZE + 1 +
                              SB_SUMMARY_SIZE + 1 + 6 + 3);
    assert_int_equal(decode_copy(buf, len, CID), -1);
    sb_msg msg;
    assert_true(sb_msg_decode(buf, len, CID, &msg, NULL));
    assert_int_equal(msg.token, 0xa1a2a3a4a5a6a7a8ull);
    assert_int_equal(msg.flags, 0);
    assert_int_equal(msg.summary, 9);
    sb_cursor c = { msg.digest, msg.end };
    sb_digest_entry d;
    sb_digest_next(&c, &d);
    const sb_digest_entry want = { 0x010203040506ull, 1, false, 1, 1 };
    check_digest_entry(&d, &want);
    assert_ptr_equal(c.p, msg.end);

    len = raw_syn(buf, hb1, 1, one, 1, NULL, 0); /* no gc */
    assert_int_equal(decode_copy(buf, len, CID), -1);
    /* the canonical forms of the values the overlong tests use */
    const uint8_t v133[] = { 0x85, 0x01 };
    len = raw_syn(buf, v133, 2, one, 1, one, 1);
    assert_int_equal(decode_copy(buf, len, CID), -1);
    const uint8_t zero[] = { 0x00 };
    len = raw_syn(buf, hb1_gc, 1, zero, 1, one, 1);
    assert_int_equal(decode_copy(buf, len, CID), -1);
}

static void test_overlong_varint_rejected_as_malformed(void **state)
{
    (void)state;
    uint8_t buf[64];
    const uint8_t zero2[] = { 0x80, 0x00 };       /* 0 in two bytes */
    const uint8_t one2[] = { 0x81, 0x00 };        /* 1 in two bytes */
    const uint8_t five2[] = { 0x85, 0x00 };       /* 5 in two bytes */
    const uint8_t v133_3[] = { 0x85, 0x81, 0x00 }; /* 133 in three bytes */
    /* hbl 5 (heartbeat 1, gc) overlong */
    size_t len = raw_syn(buf, five2, 2, one, 1, one, 1);
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
    /* max overlong */
    len = raw_syn(buf, hb1_gc, 1, one2, 2, one, 1);
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
    len = raw_syn(buf, hb1_gc, 1, zero2, 2, one, 1);
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
    /* hbl 133 = 33 << 2 | 1 overlong */
    len = raw_syn(buf, v133_3, 3, one, 1, one, 1);
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
}

static void test_overlong_varint_as_last_field_is_malformed(void **state)
{
    (void)state;
    uint8_t buf[64];
    const uint8_t zero2[] = { 0x80, 0x00 };
    const uint8_t one2[] = { 0x81, 0x00 };
    /* the overlong varint is the message's last field: nothing is missing,
     * so this is malformed, not truncated */
    size_t len = raw_syn(buf, hb1_gc, 1, one, 1, one2, 2); /* gc */
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
    len = raw_syn(buf, hb1, 1, zero2, 2, NULL, 0); /* max, no gc */
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
}

static void test_eleven_byte_varint_rejected_as_malformed(void **state)
{
    (void)state;
    uint8_t buf[64];
    const uint8_t v11[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                            0x80, 0x80, 0x80, 0x80, 0x01 };
    size_t len = raw_syn(buf, v11, sizeof(v11), one, 1, one, 1);
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
    len = raw_syn(buf, hb1_gc, 1, one, 1, v11, sizeof(v11));
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
}

static void test_varint_over_64_bits_rejected_as_malformed(void **state)
{
    (void)state;
    uint8_t buf[64];
    /* ten bytes whose last byte carries more than bit 63 */
    const uint8_t big[] = { 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0x02 };
    size_t len = raw_syn(buf, hb1_gc, 1, big, sizeof(big), one, 1);
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
}

static void test_varint_over_64_bits_as_last_field_is_malformed(void **state)
{
    (void)state;
    uint8_t buf[64];
    const uint8_t big[] = { 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0x02 };
    size_t len = raw_syn(buf, hb1_gc, 1, one, 1, big, sizeof(big));
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
}

static void test_overlong_count_rejected(void **state)
{
    (void)state;
    /* a SYN (token 1, no flags) whose n = 1 is written in two bytes,
     * then one entry: id (u48), hbl = 1 << 2 (no gc), max 0 */
    const uint8_t m[] = { 'S', 'B', 8, 1, 0x01, 0x02, 0x03, 0x04,
                          0, 0, 0, 0, 0, 0, 0, 1,
                          0x00, 0x81, 0x00, 1, 2, 3, 4, 5, 6,
                          0x04, 0x00 };
    const uint8_t ok[] = { 'S', 'B', 8, 1, 0x01, 0x02, 0x03, 0x04,
                           0, 0, 0, 0, 0, 0, 0, 1,
                           0x00, 0x01, 1, 2, 3, 4, 5, 6,
                           0x04, 0x00 };
    assert_int_equal(decode_copy(ok, sizeof(ok), CID), -1);
    assert_int_equal(decode_copy(m, sizeof(m), CID), SB_DROP_MALFORMED);
}

/* ---- truncation and trailing bytes ------------------------------------ */

/* Every prefix is rejected, except that a padded SYN cut anywhere in its
 * padding is still a padded SYN (with less padding). */
static void test_every_prefix_rejected(void **state)
{
    (void)state;
    for (size_t s = 0; s < ARRAY_LEN(valid_specs); s++) {
        const msg_spec *m = valid_specs[s];
        uint8_t buf[BUF_CAP];
        size_t len = encode(m, buf, sizeof(buf));
        for (size_t cut = 0; cut < len; cut++) {
            int rc = decode_copy(buf, cut, CID);
            bool ok = cut >= len - m->pad ? rc == -1 : is_drop_reason(rc);
            if (!ok)
                fail_msg("spec %zu: prefix %zu of %zu returned %d", s, cut,
                         len, rc);
        }
    }
}

/* A byte after the last item is malformed; after a padded SYN, a zero
 * byte is more padding, and any other byte is malformed. */
static void test_trailing_byte_rejected_as_malformed(void **state)
{
    (void)state;
    const uint8_t extra[] = { 0x00, 0x01, 0x80, 0xff };
    for (size_t s = 0; s < ARRAY_LEN(valid_specs); s++) {
        uint8_t buf[BUF_CAP];
        size_t len = encode(valid_specs[s], buf, sizeof(buf));
        for (size_t e = 0; e < sizeof(extra); e++) {
            buf[len] = extra[e];
            int rc = decode_copy(buf, len + 1, CID);
            int want = is_padded_syn(valid_specs[s]) && extra[e] == 0
                           ? -1
                           : SB_DROP_MALFORMED;
            if (rc != want)
                fail_msg("spec %zu + byte 0x%02x returned %d", s, extra[e],
                         rc);
        }
    }
}

/* Cut inside the token or the echo (or right after them): truncated. */
static void check_cut_in_tokens(const msg_spec *m, size_t from, size_t to)
{
    uint8_t buf[BUF_CAP];
    size_t len = encode(m, buf, sizeof(buf));
    assert_true(to < len);
    for (size_t cut = from; cut <= to; cut++) {
        int rc = decode_copy(buf, cut, CID);
        if (rc != SB_DROP_TRUNCATED)
            fail_msg("type %d cut at %zu of %zu returned %d", m->type, cut,
                     len, rc);
    }
}

static void test_truncated_token_or_echo_is_truncated(void **state)
{
    (void)state;
    /* SYN: the token, then the flags byte still missing */
    check_cut_in_tokens(&golden_syn, SB_HEADER_SIZE,
                        SB_HEADER_SIZE + SB_TOKEN_SIZE);
    check_cut_in_tokens(&golden_padded_syn, SB_HEADER_SIZE,
                        SB_HEADER_SIZE + SB_TOKEN_SIZE);
    check_cut_in_tokens(&syn_empty, SB_HEADER_SIZE,
                        SB_HEADER_SIZE + SB_TOKEN_SIZE);
    /* ACK: the echo, the token, then the digest count missing */
    check_cut_in_tokens(&golden_ack, SB_HEADER_SIZE,
                        SB_HEADER_SIZE + 2 * SB_TOKEN_SIZE);
    check_cut_in_tokens(&ack_empty, SB_HEADER_SIZE,
                        SB_HEADER_SIZE + 2 * SB_TOKEN_SIZE);
    /* ACK2: the echo, then the node count missing */
    check_cut_in_tokens(&golden_ack2, SB_HEADER_SIZE,
                        SB_HEADER_SIZE + SB_TOKEN_SIZE);
    check_cut_in_tokens(&ack2_empty, SB_HEADER_SIZE,
                        SB_HEADER_SIZE + SB_TOKEN_SIZE);
}

static void test_huge_counts_rejected(void **state)
{
    (void)state;
    /* header, token, flags, n = UINT64_MAX */
    const uint8_t syn[] = { 'S', 'B', 8, 1, 1, 2, 3, 4,
                            1, 2, 3, 4, 5, 6, 7, 8, 0x00,
                            0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0x01 };
    /* header, echo, m = UINT64_MAX */
    const uint8_t ack2[] = { 'S', 'B', 8, 3, 1, 2, 3, 4,
                             1, 2, 3, 4, 5, 6, 7, 8,
                             0xff, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0x01 };
    /* header, echo, m = 1: node "a" gen 1, hbl = 1 << 2, flags, from 0,
     * to 5, gc 0, huge k */
    const uint8_t nkeys[] = { 'S', 'B', 8, 3, 1, 2, 3, 4,
                              1, 2, 3, 4, 5, 6, 7, 8, 0x01,
                              0x01, 'a', 0x01, 0x04, 0x00, 0x00, 0x05, 0x00,
                              0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 0xff, 0x01 };
    assert_true(is_drop_reason(decode_copy(syn, sizeof(syn), CID)));
    assert_true(is_drop_reason(decode_copy(ack2, sizeof(ack2), CID)));
    assert_true(is_drop_reason(decode_copy(nkeys, sizeof(nkeys), CID)));
}

static void test_count_larger_than_entries_rejected(void **state)
{
    (void)state;
    uint8_t buf[BUF_CAP];
    size_t len = encode(&golden_syn, buf, sizeof(buf));
    const size_t n_at = SB_HEADER_SIZE + SB_TOKEN_SIZE + 1 + SB_SUMMARY_SIZE;
    assert_int_equal(buf[n_at], 2);
    buf[n_at] = 3; /* n = 3, two entries */
    assert_true(is_drop_reason(decode_copy(buf, len, CID)));
    len = encode(&golden_ack2, buf, sizeof(buf));
    assert_int_equal(buf[SB_HEADER_SIZE + SB_TOKEN_SIZE], 2);
    buf[SB_HEADER_SIZE + SB_TOKEN_SIZE] = 3; /* m = 3, but two nodes */
    assert_true(is_drop_reason(decode_copy(buf, len, CID)));
}

/* ---- tokens, echoes and padding (wire v3) ----------------------------- */

static void test_padded_syn_nonzero_pad_is_malformed(void **state)
{
    (void)state;
    uint8_t buf[sizeof(golden_padded_syn_bytes)];
    memcpy(buf, golden_padded_syn_bytes, sizeof(buf));
    const uint8_t bad[] = { 0x01, 0x80, 0xff };
    /* every padding byte, the first and the last included */
    for (size_t at = GOLDEN_PADDED_SYN_UNPADDED; at < sizeof(buf); at++) {
        for (size_t b = 0; b < sizeof(bad); b++) {
            buf[at] = bad[b];
            int rc = decode_copy(buf, sizeof(buf), CID);
            if (rc != SB_DROP_MALFORMED)
                fail_msg("pad byte %zu = 0x%02x returned %d", at, bad[b],
                         rc);
        }
        buf[at] = 0x00;
        assert_int_equal(decode_copy(buf, sizeof(buf), CID), -1);
    }
    /* a padded SYN with no digest at all: n = 0, then the padding */
    uint8_t empty[] = { 'S', 'B', 8, 1, 0x01, 0x02, 0x03, 0x04,
                        1, 2, 3, 4, 5, 6, 7, 8,
                        SB_SYN_PADDED, 0, 0, 0, 0, 0, 0, 0, 0, /* summary */
                        0x00, 0x00, 0x00, 0x00 };
    assert_int_equal(decode_copy(empty, sizeof(empty), CID), -1);
    empty[sizeof(empty) - 1] = 0x01;
    assert_int_equal(decode_copy(empty, sizeof(empty), CID),
                     SB_DROP_MALFORMED);
}

static void test_unpadded_syn_trailing_bytes_are_malformed(void **state)
{
    (void)state;
    uint8_t buf[sizeof(golden_padded_syn_bytes)];
    /* the golden padded SYN without its padded flag: zero bytes after the
     * digest are trailing bytes again */
    memcpy(buf, golden_padded_syn_bytes, sizeof(buf));
    const size_t flags = SB_HEADER_SIZE + SB_TOKEN_SIZE;
    assert_int_equal(buf[flags], SB_SYN_COMPLETE | SB_SYN_PADDED);
    buf[flags] = SB_SYN_COMPLETE;
    assert_int_equal(decode_copy(buf, GOLDEN_PADDED_SYN_UNPADDED, CID), -1);
    for (size_t len = GOLDEN_PADDED_SYN_UNPADDED + 1; len <= sizeof(buf);
         len++)
        assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
    /* no flags at all */
    buf[flags] = 0;
    assert_int_equal(decode_copy(buf, GOLDEN_PADDED_SYN_UNPADDED, CID), -1);
    assert_int_equal(decode_copy(buf, sizeof(buf), CID), SB_DROP_MALFORMED);
    /* reserved flag bits are ignored: they do not stand for padding (nor
     * for a sweep's cursor or a range, which have flags of their own) */
    buf[flags] = (uint8_t)~(SB_SYN_PADDED | SB_SYN_SWEEP | SB_SYN_RANGE);
    assert_int_equal(decode_copy(buf, GOLDEN_PADDED_SYN_UNPADDED, CID), -1);
    assert_int_equal(decode_copy(buf, GOLDEN_PADDED_SYN_UNPADDED + 1, CID),
                     SB_DROP_MALFORMED);
    /* and padding is a SYN's only: a zero byte after an ACK, an ACK2 or
     * a PUSH is malformed (test_trailing_byte_rejected_as_malformed) */
}

static void test_set_syn_token_rewrites_offset_8_big_endian(void **state)
{
    (void)state;
    const msg_spec *const syns[] = { &golden_syn, &golden_padded_syn,
                                     &syn_empty, &syn_padded };
    const uint64_t tokens[] = { 0xa1b2c3d4e5f60718ull, 0, UINT64_MAX,
                                0x0000000000000100ull };
    const uint8_t want[][SB_TOKEN_SIZE] = {
        { 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18 },
        { 0, 0, 0, 0, 0, 0, 0, 0 },
        { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
        { 0, 0, 0, 0, 0, 0, 0x01, 0x00 },
    };
    for (size_t s = 0; s < ARRAY_LEN(syns); s++) {
        uint8_t orig[BUF_CAP], buf[BUF_CAP];
        memset(orig, 0xa5, sizeof(orig));
        size_t len = encode(syns[s], orig, sizeof(orig));
        for (size_t t = 0; t < ARRAY_LEN(tokens); t++) {
            memcpy(buf, orig, sizeof(buf));
            sb_set_syn_token(buf, tokens[t]);
            /* bytes 8 to 15 hold the token; no other byte changes, not
             * even past the message */
            assert_memory_equal(buf, orig, SB_HEADER_SIZE);
            assert_memory_equal(buf + SB_HEADER_SIZE, want[t], SB_TOKEN_SIZE);
            assert_memory_equal(buf + SB_HEADER_SIZE + SB_TOKEN_SIZE,
                                orig + SB_HEADER_SIZE + SB_TOKEN_SIZE,
                                sizeof(buf) - SB_HEADER_SIZE - SB_TOKEN_SIZE);
            /* it decodes to the same SYN with the new token */
            msg_spec m = *syns[s];
            m.token = tokens[t];
            check_decodes_to(buf, len, &m);
        }
    }
}

static void test_decode_fills_token_and_echo(void **state)
{
    (void)state;
    sb_msg msg;
    /* SYN: token, no echo */
    const uint8_t syn[] = { 'S', 'B', 8, 1, 0x01, 0x02, 0x03, 0x04,
                            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                            0x00, 0, 0, 0, 0, 0, 0, 0, 0x2a, 0x00 };
    assert_true(sb_msg_decode(syn, sizeof(syn), CID, &msg, NULL));
    assert_int_equal(msg.summary, 0x2a);
    assert_int_equal(msg.type, SB_MSG_SYN);
    assert_int_equal(msg.token, 0x0102030405060708ull);
    assert_int_equal(msg.echo, 0);
    /* ACK: the echo first, then its own token */
    const uint8_t ack[] = { 'S', 'B', 8, 2, 0x01, 0x02, 0x03, 0x04,
                            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                            0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
                            0, 0, 0, 0, 0, 0, 0, 0x2b, /* summary */
                            0x00, 0x00 };
    assert_true(sb_msg_decode(ack, sizeof(ack), CID, &msg, NULL));
    assert_int_equal(msg.summary, 0x2b);
    assert_int_equal(msg.type, SB_MSG_ACK);
    assert_int_equal(msg.echo, 0x0102030405060708ull);
    assert_int_equal(msg.token, 0x80000000000000ffull);
    /* ACK2: an echo, no token */
    const uint8_t ack2[] = { 'S', 'B', 8, 3, 0x01, 0x02, 0x03, 0x04,
                             0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
                             0x00 };
    assert_true(sb_msg_decode(ack2, sizeof(ack2), CID, &msg, NULL));
    assert_int_equal(msg.type, SB_MSG_ACK2);
    assert_int_equal(msg.echo, 0x80000000000000ffull);
    assert_int_equal(msg.token, 0);
    /* PUSH: neither; an item's 16 bytes are a root and a wave */
    const uint8_t push[] = { 'S', 'B', 8, 4, 0x01, 0x02, 0x03, 0x04, 0x01,
                             0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                             0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
                             0x00 };
    assert_true(sb_msg_decode(push, sizeof(push), CID, &msg, NULL));
    assert_int_equal(msg.type, SB_MSG_PUSH);
    assert_int_equal(msg.token, 0);
    assert_int_equal(msg.echo, 0);
    assert_int_equal(msg.nitems, 1);
    sb_cursor c = { msg.items, msg.end };
    sb_push_item it;
    sb_push_item_next(&c, &it);
    assert_int_equal(it.root, 0x0102030405060708ull);
    assert_int_equal(it.wave, 0x80000000000000ffull);
}

/* ---- header ----------------------------------------------------------- */

static void test_wrong_magic_rejected(void **state)
{
    (void)state;
    uint8_t buf[BUF_CAP];
    size_t len = encode(&golden_ack, buf, sizeof(buf));
    buf[0] = 's';
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MAGIC);
    buf[0] = 'S';
    buf[1] = 'C';
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MAGIC);
    assert_int_equal(decode_copy(buf, 2, CID), SB_DROP_MAGIC);
}

static void test_wrong_version_rejected(void **state)
{
    (void)state;
    uint8_t buf[BUF_CAP];
    size_t len = encode(&golden_ack, buf, sizeof(buf));
    assert_int_equal(decode_copy(buf, len, CID), -1);
    buf[2] = 0;
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);
    buf[2] = 1; /* the format before 48-bit ids */
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);
    buf[2] = 2; /* the format before tokens */
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);
    buf[2] = 3; /* the format before beats */
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);
    buf[2] = 4; /* the format before summaries */
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);
    buf[2] = 5; /* the format before summaries in beats */
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);
    buf[2] = 6; /* the format before ranges */
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);
    buf[2] = 7; /* the format before PUSHes of many items */
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);
    buf[2] = 9;
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);
    buf[2] = 0xff;
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_VERSION);

    /* a whole v2 SYN (no token): refused for its version, not misread */
    const uint8_t v2_syn[] = { 'S', 'B', 2, 1, 0x01, 0x02, 0x03, 0x04,
                               0x01, 0x01, 1, 2, 3, 4, 5, 6, 0x04, 0x00 };
    assert_int_equal(decode_copy(v2_syn, sizeof(v2_syn), CID),
                     SB_DROP_VERSION);
}

static void test_other_cluster_rejected(void **state)
{
    (void)state;
    uint8_t buf[BUF_CAP];
    size_t len = encode(&golden_ack, buf, sizeof(buf));
    assert_int_equal(decode_copy(buf, len, CID + 1), SB_DROP_CLUSTER);
    assert_int_equal(decode_copy(buf, len, 0x04030201u), SB_DROP_CLUSTER);
    len = encode_with_cid(&golden_ack, sb_cluster_id("default"), buf,
                          sizeof(buf));
    assert_int_equal(decode_copy(buf, len, sb_cluster_id("other")),
                     SB_DROP_CLUSTER);
    assert_int_equal(decode_copy(buf, len, sb_cluster_id("default")), -1);
}

static void test_unknown_type_rejected(void **state)
{
    (void)state;
    uint8_t buf[BUF_CAP];
    size_t len = encode(&golden_ack, buf, sizeof(buf));
    const uint8_t types[] = { 0, 8, 9, 0x80, 0xff };
    for (size_t i = 0; i < sizeof(types); i++) {
        buf[3] = types[i];
        assert_int_equal(decode_copy(buf, len, CID), SB_DROP_TYPE);
    }
}

/* A BEAT: header, flags, count (v), heartbeat (v), summary; nothing
 * else. */
static void test_beat_bytes(void **state)
{
    (void)state;
    const uint8_t beat[] = { 'S', 'B', 8, 5, 0x01, 0x02, 0x03, 0x04,
                             0x01,        /* flags: farewell */
                             0xac, 0x02,  /* count 300 */
                             0x07,        /* heartbeat 7 */
                             0x11, 0x22, 0x33, 0x44,
                             0x55, 0x66, 0x77, 0x88 } /* summary */;
    sb_msg m;
    int why = -1;
    assert_true(sb_msg_decode(beat, sizeof(beat), CID, &m, &why));
    assert_int_equal(m.type, SB_MSG_BEAT);
    assert_int_equal(m.flags, SB_BEAT_FAREWELL);
    assert_int_equal(m.beat, 300);
    assert_int_equal(m.heartbeat, 7);
    assert_true(m.summary == 0x1122334455667788u);
    assert_int_equal(m.ndigest, 0);
    assert_int_equal(m.ndeltas, 0);
    /* the writer's bytes are these */
    uint8_t buf[24];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    assert_true(sb_put_header(&w, SB_MSG_BEAT, CID));
    assert_true(sb_put_u8(&w, SB_BEAT_FAREWELL));
    assert_true(sb_put_varint(&w, 300));
    assert_true(sb_put_varint(&w, 7));
    assert_true(sb_put_u64(&w, 0x1122334455667788u));
    assert_int_equal(w.p - buf, sizeof(beat));
    assert_memory_equal(buf, beat, sizeof(beat));

    assert_int_equal(decode_copy(beat, sizeof(beat) - 1, CID),
                     SB_DROP_TRUNCATED); /* the summary cut */
    assert_int_equal(decode_copy(beat, sizeof(beat) - 8, CID),
                     SB_DROP_TRUNCATED); /* no summary */
    assert_int_equal(decode_copy(beat, sizeof(beat) - 9, CID),
                     SB_DROP_TRUNCATED); /* no heartbeat */
    assert_int_equal(decode_copy(beat, sizeof(beat) - 10, CID),
                     SB_DROP_TRUNCATED); /* the count cut */
    assert_int_equal(decode_copy(beat, SB_HEADER_SIZE + 1, CID),
                     SB_DROP_TRUNCATED); /* no count */
    uint8_t longer[sizeof(beat) + 1];
    memcpy(longer, beat, sizeof(beat));
    longer[sizeof(beat)] = 0;
    assert_int_equal(decode_copy(longer, sizeof(longer), CID),
                     SB_DROP_MALFORMED); /* a byte after the summary */
}

/* A SWEEP: header, echo, from, to, deltas; and a SYN asking for one (its
 * cursor after the summary). */
static void test_sweep_bytes(void **state)
{
    (void)state;
    const uint8_t sweep[] = { 'S', 'B', 8, 6, 0x01, 0x02, 0x03, 0x04,
                              1, 2, 3, 4, 5, 6, 7, 8,       /* echo */
                              0, 0, 0, 0, 0, 0, 0, 0x10,    /* from */
                              0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0x00 } /* to: the end; no delta */;
    sb_msg m;
    int why = -1;
    assert_true(sb_msg_decode(sweep, sizeof(sweep), CID, &m, &why));
    assert_int_equal(m.type, SB_MSG_SWEEP);
    assert_true(m.echo == 0x0102030405060708u);
    assert_int_equal(m.from, 0x10);
    assert_true(m.to == SB_SWEEP_END);
    assert_int_equal(m.ndeltas, 0);
    assert_int_equal(decode_copy(sweep, sizeof(sweep) - 1, CID),
                     SB_DROP_TRUNCATED);
    assert_int_equal(decode_copy(sweep, 20, CID), SB_DROP_TRUNCATED);
    uint8_t bad[sizeof(sweep) + 1];
    memcpy(bad, sweep, sizeof(sweep));
    bad[sizeof(sweep)] = 0;
    assert_int_equal(decode_copy(bad, sizeof(sweep) + 1, CID),
                     SB_DROP_MALFORMED); /* a byte after the deltas */
    bad[25] = 0x01; /* to beyond the largest id */
    assert_int_equal(decode_copy(bad, sizeof(sweep), CID),
                     SB_DROP_MALFORMED);
    memcpy(bad, sweep, sizeof(sweep));
    memset(bad + 24, 0, 8);
    bad[31] = 0x10; /* to = from: an empty range */
    assert_int_equal(decode_copy(bad, sizeof(sweep), CID),
                     SB_DROP_MALFORMED);

    const uint8_t syn[] = { 'S', 'B', 8, 1, 0x01, 0x02, 0x03, 0x04,
                            1, 2, 3, 4, 5, 6, 7, 8,         /* token */
                            0x10,                           /* flags */
                            0, 0, 0, 0, 0, 0, 0, 0x01,      /* summary */
                            0, 0, 0, 0, 0, 0, 0x12, 0x34,   /* cursor */
                            0x00 } /* n = 0 */;
    assert_true(sb_msg_decode(syn, sizeof(syn), CID, &m, &why));
    assert_true(m.flags & SB_SYN_SWEEP);
    assert_int_equal(m.cursor, 0x1234);
    assert_int_equal(m.summary, 1);
    assert_int_equal(m.ndigest, 0);
    assert_int_equal(decode_copy(syn, sizeof(syn) - 1, CID),
                     SB_DROP_TRUNCATED);
    uint8_t end[sizeof(syn)];
    memcpy(end, syn, sizeof(syn));
    memset(end + 27, 0xff, 6); /* a cursor at the end: nothing to ask */
    assert_int_equal(decode_copy(end, sizeof(end), CID), SB_DROP_MALFORMED);
}

/* A SYN with a range: its bounds, then 16 fingerprints (or none: the
 * digest lists the range); a DIFF: echo, bounds, the parts that differ. */
static void test_range_bytes(void **state)
{
    (void)state;
    uint8_t syn[8 + 8 + 1 + 8 + 8 + 8 + 1 + 16 * 4 + 1] = {
        'S', 'B', 8, 1, 0x01, 0x02, 0x03, 0x04,
        1, 2, 3, 4, 5, 6, 7, 8,                /* token */
        SB_SYN_RANGE,                          /* flags */
        0, 0, 0, 0, 0, 0, 0, 0x01,             /* summary */
        0, 0, 0, 0, 0, 0, 0, 0,                /* from */
        0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* to: the end */
        16,                                    /* k */
    };
    size_t prints = 8 + 8 + 1 + 8 + 16 + 1;
    for (size_t i = 0; i < 16 * 4; i++)
        syn[prints + i] = (uint8_t)i;
    syn[sizeof(syn) - 1] = 0x00; /* n = 0 */
    sb_msg m;
    int why = -1;
    assert_true(sb_msg_decode(syn, sizeof(syn), CID, &m, &why));
    assert_int_equal(m.from, 0);
    assert_true(m.to == SB_SWEEP_END);
    assert_int_equal(m.nprints, SB_RANGE_PARTS);
    assert_int_equal(sb_print_at(&m, 0), 0x00010203);
    assert_int_equal(sb_print_at(&m, 15), 0x3c3d3e3f);
    assert_int_equal(m.ndigest, 0);
    for (size_t len = 8; len < sizeof(syn); len++)
        assert_int_equal(decode_copy(syn, len, CID), SB_DROP_TRUNCATED);
    uint8_t bad[sizeof(syn)];
    memcpy(bad, syn, sizeof(syn));
    bad[prints - 1] = 15; /* 15 fingerprints: 0 or 16 only */
    assert_int_equal(decode_copy(bad, sizeof(bad), CID), SB_DROP_MALFORMED);
    memcpy(bad, syn, sizeof(syn));
    bad[34] = 0x01; /* to beyond the largest id */
    assert_int_equal(decode_copy(bad, sizeof(bad), CID), SB_DROP_MALFORMED);
    memcpy(bad, syn, sizeof(syn));
    memset(bad + 33, 0, 8); /* to = from */
    assert_int_equal(decode_copy(bad, sizeof(bad), CID), SB_DROP_MALFORMED);
    /* listed: no fingerprints, the digest follows the count */
    memcpy(bad, syn, prints);
    bad[prints - 1] = 0;
    bad[prints] = 0; /* n = 0 */
    assert_true(sb_msg_decode(bad, prints + 1, CID, &m, &why));
    assert_int_equal(m.nprints, 0);
    assert_int_equal(m.ndigest, 0);

    const uint8_t diff[] = { 'S', 'B', 8, 7, 0x01, 0x02, 0x03, 0x04,
                             1, 2, 3, 4, 5, 6, 7, 8,       /* echo */
                             0, 0, 0, 0, 0, 0, 0, 0x10,    /* from */
                             0, 0, 0, 0, 0, 0, 0x10, 0x10, /* to */
                             0x81, 0x81, 0x02 } /* parts 0, 7, 15 */;
    assert_true(sb_msg_decode(diff, sizeof(diff), CID, &m, &why));
    assert_int_equal(m.type, SB_MSG_DIFF);
    assert_true(m.echo == 0x0102030405060708u);
    assert_int_equal(m.from, 0x10);
    assert_int_equal(m.to, 0x1010);
    assert_int_equal(m.differ, 0x8081);
    for (size_t len = 8; len < sizeof(diff); len++)
        assert_int_equal(decode_copy(diff, len, CID), SB_DROP_TRUNCATED);
    uint8_t d[sizeof(diff) + 1];
    memcpy(d, diff, sizeof(diff));
    d[sizeof(diff)] = 0;
    assert_int_equal(decode_copy(d, sizeof(d), CID), SB_DROP_MALFORMED);
    d[32] = 0x00; /* differ 0: nothing differs */
    assert_int_equal(decode_copy(d, 33, CID), SB_DROP_MALFORMED);
    d[32] = 0x80; d[33] = 0x80; d[34] = 0x04; /* bit 16: no such part */
    assert_int_equal(decode_copy(d, 35, CID), SB_DROP_MALFORMED);
}

static void test_short_header_truncated(void **state)
{
    (void)state;
    const uint8_t h[] = { 'S', 'B', 8, 1, 1, 2, 3, 4 };
    for (size_t n = 0; n < sizeof(h); n++)
        assert_int_equal(decode_copy(h, n, CID), SB_DROP_TRUNCATED);
}

/* ---- semantic checks -------------------------------------------------- */

/* Encodes one node delta as an ACK2 and as an ACK, decodes both, checks
 * that they agree and returns the result. */
static int decode_single_node(const node_spec *n)
{
    const msg_spec ack2 = { SB_MSG_ACK2, 0, 0, NULL, 1, n };
    const msg_spec ack = { SB_MSG_ACK, 0, 1, golden_ack_digest, 1, n };
    uint8_t buf[BUF_CAP];
    size_t len = encode(&ack2, buf, sizeof(buf));
    int rc = decode_copy(buf, len, CID);
    len = encode(&ack, buf, sizeof(buf));
    assert_int_equal(decode_copy(buf, len, CID), rc);
    return rc;
}

static const key_spec ok_keys[] = {
    { "a", 3, false, "x", 1 },
    { "b", 4, true, NULL, 0 },
    { "c", 6, false, "yz", 2 },
};
static const node_spec ok_node = { "h:1", 2, 5, false, false, 2, 6, 1,
                                   3, ok_keys };

static void test_semantic_control_node_accepted(void **state)
{
    (void)state;
    assert_int_equal(decode_single_node(&ok_node), -1);
}

static void test_empty_addr_rejected(void **state)
{
    (void)state;
    /* ACK2, echo, m = 1: node "a" gen 1, hbl = 1 << 2, flags, from, to,
     * gc, k = 0 */
    const uint8_t ok[] = { 'S', 'B', 8, 3, 1, 2, 3, 4,
                           1, 2, 3, 4, 5, 6, 7, 8, 0x01,
                           0x01, 'a', 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
                           0x00 };
    const uint8_t bad[] = { 'S', 'B', 8, 3, 1, 2, 3, 4,
                            1, 2, 3, 4, 5, 6, 7, 8, 0x01,
                            0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
                            0x00 };
    assert_int_equal(decode_copy(ok, sizeof(ok), CID), -1);
    assert_int_equal(decode_copy(bad, sizeof(bad), CID), SB_DROP_MALFORMED);
}

static void test_empty_key_rejected(void **state)
{
    (void)state;
    /* ACK2, echo, m = 1: node "a" gen 1 hb 1 (hbl = 1 << 2), from 0
     * to 1, one key at version 1 */
    const uint8_t ok[] = { 'S', 'B', 8, 3, 1, 2, 3, 4,
                           1, 2, 3, 4, 5, 6, 7, 8, 0x01,
                           0x01, 'a', 0x01, 0x04, 0x00, 0x00, 0x01, 0x00,
                           0x01, 0x01, 'k', 0x01, 0x00, 0x00 };
    const uint8_t bad[] = { 'S', 'B', 8, 3, 1, 2, 3, 4,
                            1, 2, 3, 4, 5, 6, 7, 8, 0x01,
                            0x01, 'a', 0x01, 0x04, 0x00, 0x00, 0x01, 0x00,
                            0x01, 0x00, 0x01, 0x00, 0x00 };
    assert_int_equal(decode_copy(ok, sizeof(ok), CID), -1);
    assert_int_equal(decode_copy(bad, sizeof(bad), CID), SB_DROP_MALFORMED);
}

static void test_equal_key_versions_rejected(void **state)
{
    (void)state;
    const key_spec keys[] = { { "a", 3, false, "x", 1 },
                              { "b", 3, false, "y", 1 } };
    const node_spec n = { "h:1", 2, 5, false, false, 2, 6, 1, 2, keys };
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
}

static void test_decreasing_key_versions_rejected(void **state)
{
    (void)state;
    const key_spec keys[] = { { "a", 5, false, "x", 1 },
                              { "b", 4, false, "y", 1 } };
    const node_spec n = { "h:1", 2, 5, false, false, 2, 6, 1, 2, keys };
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
}

static void test_key_version_equal_to_from_rejected(void **state)
{
    (void)state;
    const key_spec keys[] = { { "a", 2, false, "x", 1 } };
    const node_spec n = { "h:1", 2, 5, false, false, 2, 6, 1, 1, keys };
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
}

static void test_key_version_below_from_rejected(void **state)
{
    (void)state;
    const key_spec keys[] = { { "a", 1, false, "x", 1 } };
    const node_spec n = { "h:1", 2, 5, false, false, 2, 6, 1, 1, keys };
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
}

static void test_key_version_above_to_rejected(void **state)
{
    (void)state;
    const key_spec keys[] = { { "a", 3, false, "x", 1 },
                              { "b", 7, false, "y", 1 } };
    const node_spec n = { "h:1", 2, 5, false, false, 2, 6, 1, 2, keys };
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
}

static void test_key_versions_at_range_bounds_accepted(void **state)
{
    (void)state;
    const key_spec keys[] = { { "a", 3, false, "x", 1 },
                              { "b", 6, false, "y", 1 } };
    const node_spec n = { "h:1", 2, 5, false, false, 2, 6, 1, 2, keys };
    assert_int_equal(decode_single_node(&n), -1);
}

static void test_tombstone_with_value_rejected(void **state)
{
    (void)state;
    const key_spec keys[] = { { "a", 3, true, "x", 1 } };
    const node_spec n = { "h:1", 2, 5, false, false, 2, 6, 1, 1, keys };
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
}

static void test_generation_zero_rejected(void **state)
{
    (void)state;
    node_spec n = ok_node;
    n.generation = 0;
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
}

static void test_node_heartbeat_zero_rejected(void **state)
{
    (void)state;
    node_spec n = ok_node;
    n.heartbeat = 0;
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
    n.leaving = true; /* hbl = 1 << 1: still heartbeat 0 */
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
}

static void test_from_greater_than_to_rejected(void **state)
{
    (void)state;
    const node_spec n = { "h:1", 2, 5, false, false, 7, 6, 1, 0, NULL };
    assert_int_equal(decode_single_node(&n), SB_DROP_MALFORMED);
}

static void test_empty_range_without_keys_accepted(void **state)
{
    (void)state;
    const node_spec n = { "h:1", 2, 5, false, false, 6, 6, 1, 0, NULL };
    assert_int_equal(decode_single_node(&n), -1);
}

/* ---- optional gc, reserved bit, largest heartbeat --------------------- */

static void test_digest_gc_flag_with_zero_gc_rejected(void **state)
{
    (void)state;
    uint8_t buf[64];
    const uint8_t zero[] = { 0x00 };
    const uint8_t leaving_gc[] = { 0x07 }; /* 1 << 2 | 1 << 1 | 1 */
    /* control: the same entry with gc 1 */
    size_t len = raw_syn(buf, hb1_gc, 1, one, 1, one, 1);
    assert_int_equal(decode_copy(buf, len, CID), -1);
    /* hbl says a gc follows, and it is 0: one form only, so malformed */
    len = raw_syn(buf, hb1_gc, 1, one, 1, zero, 1);
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
    len = raw_syn(buf, leaving_gc, 1, zero, 1, zero, 1);
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_MALFORMED);
    /* the flag without any gc field is cut short */
    len = raw_syn(buf, hb1_gc, 1, one, 1, NULL, 0);
    assert_int_equal(decode_copy(buf, len, CID), SB_DROP_TRUNCATED);

    /* in an ACK, where a node section follows the digest: header, echo,
     * token, summary, n = 1, id (u48), hbl = 1 << 2 | 1, max 1, gc,
     * m = 0 */
    uint8_t ack[] = { 'S', 'B', 8, 2, 0x01, 0x02, 0x03, 0x04,
                      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                      0, 0, 0, 0, 0, 0, 0, 0,
                      0x01, 1, 2, 3, 4, 5, 6, 0x05, 0x01, 0x01, 0x00 };
    assert_int_equal(decode_copy(ack, sizeof(ack), CID), -1);
    ack[sizeof(ack) - 2] = 0x00; /* gc 0 */
    assert_int_equal(decode_copy(ack, sizeof(ack), CID), SB_DROP_MALFORMED);
}

/* A digest entry is written as exactly these bytes, and decodes back. */
static void check_entry_bytes(const sb_digest_entry *d, const uint8_t *want,
                              size_t n)
{
    uint8_t buf[64];
    assert_int_equal(sb_digest_entry_size(d), n);
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    assert_true(sb_put_digest_entry(&w, d));
    assert_int_equal(w.p - buf, n);
    assert_memory_equal(buf, want, n);
    const msg_spec m = { SB_MSG_SYN, 0, 1, d, 0, NULL, .token = 5 };
    size_t len = encode(&m, buf, sizeof(buf));
    assert_int_equal(len, SB_HEADER_SIZE + SB_TOKEN_SIZE + 1 + SB_SUMMARY_SIZE +
                              1 + n);
    check_decodes_to(buf, len, &m);
}

static void test_digest_gc_zero_has_no_gc_field(void **state)
{
    (void)state;
    /* id 6 + hbl 1 + max 1: the smallest entry */
    const sb_digest_entry d = { 0x0a0b0c0d0e0full, 1, false, 0, 0 };
    const uint8_t want[] = { 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, /* id */
                             0x04,  /* hbl = 1 << 2, no gc */
                             0x00 }; /* max; no gc field */
    check_entry_bytes(&d, want, sizeof(want));
    assert_int_equal(sizeof(want), SB_DIGEST_ENTRY_MIN);
    /* leaving, a max, still gc 0 */
    const sb_digest_entry l = { 0x0a0b0c0d0e0full, 1, true, 5, 0 };
    const uint8_t want_l[] = { 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
                               0x06,  /* hbl = 1 << 2 | 1 << 1 */
                               0x05 }; /* max */
    check_entry_bytes(&l, want_l, sizeof(want_l));
    /* gc 1 adds the flag and the field */
    const sb_digest_entry g = { 0x0a0b0c0d0e0full, 1, false, 0, 1 };
    const uint8_t want_g[] = { 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
                               0x05,        /* hbl = 1 << 2 | 1 */
                               0x00, 0x01 }; /* max, gc */
    check_entry_bytes(&g, want_g, sizeof(want_g));
}

static void test_node_hbl_low_bit_rejected(void **state)
{
    (void)state;
    /* ACK2, echo, m = 1: node "a" gen 1, hbl, flags, from, to, gc,
     * k = 0 */
    uint8_t ack2[] = { 'S', 'B', 8, 3, 1, 2, 3, 4,
                       1, 2, 3, 4, 5, 6, 7, 8, 0x01,
                       0x01, 'a', 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
                       0x00 };
    const size_t at = 20; /* the hbl byte */
    assert_int_equal(ack2[at], 0x04);
    assert_int_equal(decode_copy(ack2, sizeof(ack2), CID), -1);
    ack2[at] = 0x05; /* 1 << 2 | 1: the reserved bit */
    assert_int_equal(decode_copy(ack2, sizeof(ack2), CID),
                     SB_DROP_MALFORMED);
    ack2[at] = 0x06; /* 1 << 2 | 1 << 1: leaving, fine */
    assert_int_equal(decode_copy(ack2, sizeof(ack2), CID), -1);
    ack2[at] = 0x07; /* leaving and the reserved bit */
    assert_int_equal(decode_copy(ack2, sizeof(ack2), CID),
                     SB_DROP_MALFORMED);

    /* a two-byte hbl: 128 = 32 << 2 is fine, 129 is not */
    const uint8_t ok2[] = { 'S', 'B', 8, 3, 1, 2, 3, 4,
                            1, 2, 3, 4, 5, 6, 7, 8, 0x01,
                            0x01, 'a', 0x01, 0x80, 0x01, 0x00, 0x00, 0x00,
                            0x00, 0x00 };
    const uint8_t bad2[] = { 'S', 'B', 8, 3, 1, 2, 3, 4,
                             1, 2, 3, 4, 5, 6, 7, 8, 0x01,
                             0x01, 'a', 0x01, 0x81, 0x01, 0x00, 0x00, 0x00,
                             0x00, 0x00 };
    assert_int_equal(decode_copy(ok2, sizeof(ok2), CID), -1);
    assert_int_equal(decode_copy(bad2, sizeof(bad2), CID), SB_DROP_MALFORMED);

    /* the same in an ACK (echo, token, summary, n = 0) and a PUSH */
    uint8_t ack[] = { 'S', 'B', 8, 2, 1, 2, 3, 4,
                      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                      0, 0, 0, 0, 0, 0, 0, 0,
                      0x00, 0x01,
                      0x01, 'a', 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
                      0x00 };
    assert_int_equal(decode_copy(ack, sizeof(ack), CID), -1);
    assert_int_equal(ack[37], 0x04);
    ack[37] = 0x05;
    assert_int_equal(decode_copy(ack, sizeof(ack), CID), SB_DROP_MALFORMED);
    uint8_t push[] = { 'S', 'B', 8, 4, 1, 2, 3, 4, 0x01, /* one item */
                       1, 2, 3, 4, 5, 6, 7, 8, /* root id (u64) */
                       0, 0, 0, 0, 0, 0, 0, 9, /* wave */
                       0x01, 0x01, 'a', 0x01, 0x04, 0x00, 0x00, 0x00,
                       0x00, 0x00 };
    assert_int_equal(decode_copy(push, sizeof(push), CID), -1);
    assert_int_equal(push[29], 0x04);
    push[29] = 0x05;
    assert_int_equal(decode_copy(push, sizeof(push), CID), SB_DROP_MALFORMED);
}

/* Checks that a refused write left the writer and its buffer alone. */
static void check_untouched(const sb_writer *w, const uint8_t *buf,
                            size_t n)
{
    assert_ptr_equal(w->p, buf);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buf[i], 0xa5);
}

static void test_put_refuses_heartbeat_above_max(void **state)
{
    (void)state;
    assert_true(SB_HEARTBEAT_MAX == (UINT64_MAX >> 2));
    uint8_t buf[128];
    memset(buf, 0xa5, sizeof(buf));
    sb_writer w = { buf, buf, buf + sizeof(buf) };

    sb_digest_entry d = { 0x010203040506ull, SB_HEARTBEAT_MAX + 1, false,
                          1, 1 };
    assert_false(sb_put_digest_entry(&w, &d));
    check_untouched(&w, buf, sizeof(buf));
    d.heartbeat = UINT64_MAX;
    d.leaving = true;
    assert_false(sb_put_digest_entry(&w, &d));
    check_untouched(&w, buf, sizeof(buf));

    node_spec ns = { "h:1", 2, 1, false, false, 0, 0, 0, 0, NULL };
    sb_delta n = node_of(&ns);
    n.heartbeat = SB_HEARTBEAT_MAX + 1;
    assert_false(sb_put_delta_header(&w, &n));
    check_untouched(&w, buf, sizeof(buf));
    n.heartbeat = UINT64_MAX;
    assert_false(sb_put_delta_header(&w, &n));
    check_untouched(&w, buf, sizeof(buf));

    /* SB_HEARTBEAT_MAX itself is written and read back */
    d.heartbeat = SB_HEARTBEAT_MAX;
    d.leaving = false;
    assert_true(sb_put_digest_entry(&w, &d));
    assert_int_equal(w.p - buf, sb_digest_entry_size(&d));
    n.heartbeat = SB_HEARTBEAT_MAX;
    w.p = buf;
    assert_true(sb_put_delta_header(&w, &n));
    assert_int_equal(w.p - buf, sb_delta_header_size(&n));

    const sb_digest_entry digest[] = {
        { 0x010203040506ull, SB_HEARTBEAT_MAX, false, 1, 1 },
        { 0x010203040507ull, SB_HEARTBEAT_MAX, true, 0, 0 },
    };
    const node_spec nodes[] = {
        { "h:1", 2, SB_HEARTBEAT_MAX, false, false, 0, 0, 0, 0, NULL },
        { "h:2", 3, SB_HEARTBEAT_MAX, true, true, 0, 0, 0, 0, NULL },
    };
    const msg_spec syn = { SB_MSG_SYN, 0, 2, digest, 0, NULL,
                           .token = UINT64_MAX };
    const msg_spec ack = { SB_MSG_ACK, 0, 2, digest, 2, nodes,
                           .token = UINT64_MAX, .echo = UINT64_MAX };
    const msg_spec ack2 = { SB_MSG_ACK2, 0, 0, NULL, 2, nodes,
                            .echo = UINT64_MAX };
    const msg_spec push = { SB_MSG_PUSH, 0, 0, NULL, 2, nodes,
                            UINT64_MAX, 1 };
    roundtrip(&syn);
    roundtrip(&ack);
    roundtrip(&ack2);
    roundtrip(&push);
}

/* ---- random mutations ------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *s, size_t n)
{
    return n ? (size_t)(rng_next(s) % n) : 0;
}

static bool in_msg(const void *p, size_t n, const uint8_t *buf,
                   const uint8_t *end)
{
    const uint8_t *b = p;
    if (n == 0)
        return true;
    return b >= buf && b <= end && (size_t)(end - b) >= n;
}

/* Iterates n deltas from c and checks what the decoder promises of
 * them; false on the first broken promise. */
static bool iterate_deltas(const uint8_t *buf, const uint8_t *end,
                           sb_cursor *c, uint64_t ndeltas)
{
    for (uint64_t i = 0; i < ndeltas; i++) {
        sb_delta n;
        sb_delta_next(c, &n);
        if (c->p > end || c->p != n.end || n.addr_len == 0 ||
            !in_msg(n.addr, n.addr_len, buf, end) || n.generation == 0 ||
            n.heartbeat == 0 || n.from_version > n.to_version ||
            n.keys > n.end)
            return false;
        sb_cursor kc = { n.keys, n.end };
        uint64_t last = n.from_version;
        for (uint64_t j = 0; j < n.nkeys; j++) {
            sb_key_entry k;
            sb_key_next(&kc, &k);
            if (kc.p > n.end || k.key_len == 0 ||
                !in_msg(k.key, k.key_len, buf, end) ||
                !in_msg(k.value, k.value_len, buf, end) ||
                k.version <= last || k.version > n.to_version ||
                (k.deleted && k.value_len != 0))
                return false;
            last = k.version;
        }
        if (kc.p != n.end)
            return false;
    }
    return true;
}

/* Iterates everything in an accepted message and checks what the decoder
 * promises; returns false on the first broken promise. */
static bool iterate_all(const uint8_t *buf, size_t len, const sb_msg *m)
{
    const uint8_t *end = buf + len;
    if (m->end != end || m->type < SB_MSG_SYN || m->type > SB_MSG_PUSH)
        return false;
    /* fields of other types stay 0 */
    if ((!has_token(m->type) && m->token != 0) ||
        (!has_echo(m->type) && m->echo != 0) ||
        (m->type != SB_MSG_SYN && m->flags != 0) ||
        (m->type != SB_MSG_PUSH && (m->nitems != 0 || m->items != NULL)) ||
        (m->type == SB_MSG_PUSH && (m->ndeltas != 0 || m->deltas != NULL)))
        return false;
    if (has_digest(m->type)) {
        sb_cursor c = { m->digest, m->end };
        for (uint64_t i = 0; i < m->ndigest; i++) {
            sb_digest_entry d;
            sb_digest_next(&c, &d);
            if (c.p > end)
                return false;
        }
        if (m->type == SB_MSG_SYN && (m->flags & SB_SYN_PADDED)) {
            /* the digest, then zero bytes to the end */
            if (c.p > end)
                return false;
            for (const uint8_t *p = c.p; p < end; p++)
                if (*p)
                    return false;
        } else if (c.p != (m->type == SB_MSG_SYN
                               ? end
                               : m->deltas - sb_varint_size(m->ndeltas))) {
            return false;
        }
    }
    if (m->type == SB_MSG_SYN)
        return true;
    if (m->type == SB_MSG_PUSH) {
        sb_cursor c = { m->items, m->end };
        for (uint64_t i = 0; i < m->nitems; i++) {
            sb_push_item it;
            const uint8_t *at = c.p;
            sb_push_item_next(&c, &it);
            sb_cursor dc = { it.deltas, it.end };
            if (it.start != at || c.p != it.end || it.end > end ||
                !iterate_deltas(buf, end, &dc, it.ndeltas) ||
                dc.p != it.end)
                return false;
        }
        return c.p == end;
    }
    sb_cursor c = { m->deltas, m->end };
    return iterate_deltas(buf, end, &c, m->ndeltas) && c.p == end;
}

static size_t mutate(uint64_t *s, uint8_t *buf, size_t len, size_t cap)
{
    static const uint8_t interesting[] = { 0x00, 0x01, 0x02, 0x7f,
                                           0x80, 0x81, 0xfe, 0xff };
    size_t pos = rng_below(s, len);
    switch (rng_below(s, 6)) {
    case 0: /* flip a bit */
        if (len)
            buf[pos] ^= (uint8_t)(1u << rng_below(s, 8));
        break;
    case 1: /* overwrite a byte */
        if (len)
            buf[pos] = (uint8_t)rng_next(s);
        break;
    case 2: /* overwrite with a boundary value */
        if (len)
            buf[pos] = interesting[rng_below(s, sizeof(interesting))];
        break;
    case 3: /* insert a byte */
        if (len < cap) {
            pos = rng_below(s, len + 1);
            memmove(buf + pos + 1, buf + pos, len - pos);
            buf[pos] = (uint8_t)rng_next(s);
            len++;
        }
        break;
    case 4: /* delete a byte */
        if (len) {
            memmove(buf + pos, buf + pos + 1, len - pos - 1);
            len--;
        }
        break;
    default: /* truncate */
        len = rng_below(s, len);
        break;
    }
    return len;
}

static uint64_t fuzz_seed(void)
{
    const char *env = getenv("SB_SEED");
    if (env && *env)
        return strtoull(env, NULL, 0);
    return 0x5eedc0dec0ffee01ull;
}

static void test_random_mutations_rejected_or_iterable(void **state)
{
    (void)state;
    enum { ITERATIONS = 10000 };
    uint8_t base[ARRAY_LEN(valid_specs)][BUF_CAP];
    size_t base_len[ARRAY_LEN(valid_specs)];
    for (size_t i = 0; i < ARRAY_LEN(valid_specs); i++)
        base_len[i] = encode(valid_specs[i], base[i], BUF_CAP);

    const uint64_t seed = fuzz_seed();
    uint64_t s = seed;
    unsigned accepted = 0;
    print_message("random mutations: SB_SEED=0x%016llx\n",
                  (unsigned long long)seed);
    for (unsigned it = 0; it < ITERATIONS; it++) {
        uint8_t work[BUF_CAP];
        size_t which = rng_below(&s, ARRAY_LEN(valid_specs));
        size_t len = base_len[which];
        memcpy(work, base[which], len);
        size_t nmut = 1 + rng_below(&s, 4);
        for (size_t k = 0; k < nmut; k++)
            len = mutate(&s, work, len, sizeof(work));

        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        if (len)
            memcpy(copy, work, len);
        sb_msg msg;
        int rc = -1; /* -1: valid */
        sb_msg_decode(copy, len, CID, &msg, &rc);
        bool ok = rc == -1 ? iterate_all(copy, len, &msg)
                           : is_drop_reason(rc);
        free(copy);
        if (rc == -1)
            accepted++;
        if (!ok)
            fail_msg("SB_SEED=0x%016llx iteration %u (base %zu, len %zu): "
                     "rc %d",
                     (unsigned long long)seed, it, which, len, rc);
    }
    print_message("random mutations: %u of %u accepted\n", accepted,
                  (unsigned)ITERATIONS);
    /* the accept path must be exercised too */
    assert_true(accepted > 0);
}

/* ---- writers never pass end ------------------------------------------- */

typedef bool (*put_fn)(sb_writer *w, const void *item);

static bool put_header_item(sb_writer *w, const void *item)
{
    (void)item;
    return sb_put_header(w, SB_MSG_ACK, 0xa1b2c3d4u);
}

static bool put_u8_item(sb_writer *w, const void *item)
{
    return sb_put_u8(w, *(const uint8_t *)item);
}

static bool put_varint_item(sb_writer *w, const void *item)
{
    return sb_put_varint(w, *(const uint64_t *)item);
}

static bool put_digest_item(sb_writer *w, const void *item)
{
    return sb_put_digest_entry(w, item);
}

static bool put_node_item(sb_writer *w, const void *item)
{
    return sb_put_delta_header(w, item);
}

static bool put_key_item(sb_writer *w, const void *item)
{
    return sb_put_key_entry(w, item);
}

#define CANARY_LEN 32
#define PREFIX_LEN 3

static void check_put_bounds_with(put_fn put, const void *item, size_t need,
                                  uint8_t canary)
{
    uint8_t buf[PREFIX_LEN + 512 + CANARY_LEN];
    assert_true(need <= 512);
    for (size_t cap = 0; cap <= need; cap++) {
        memset(buf, canary, sizeof(buf));
        uint8_t *start = buf + PREFIX_LEN;
        sb_writer w = { buf, start, start + cap };
        bool ok = put(&w, item);
        assert_ptr_equal(w.start, buf);
        assert_ptr_equal(w.end, start + cap);
        if (cap < need) {
            if (ok)
                fail_msg("writer accepted %zu bytes of room, needs %zu", cap,
                         need);
            assert_ptr_equal(w.p, start);
            for (size_t i = 0; i < sizeof(buf); i++)
                if (buf[i] != canary)
                    fail_msg("room %zu of %zu: byte %zu written", cap, need,
                             i);
        } else {
            assert_true(ok);
            assert_ptr_equal(w.p, start + need);
            for (size_t i = 0; i < PREFIX_LEN; i++)
                assert_int_equal(buf[i], canary);
            for (size_t i = PREFIX_LEN + need; i < sizeof(buf); i++)
                if (buf[i] != canary)
                    fail_msg("byte %zu past the item written", i);
        }
    }
}

static void check_put_bounds(put_fn put, const void *item, size_t need)
{
    check_put_bounds_with(put, item, need, 0xa5);
    check_put_bounds_with(put, item, need, 0x5a);
}

static void test_put_header_never_passes_end(void **state)
{
    (void)state;
    check_put_bounds(put_header_item, NULL, SB_HEADER_SIZE);
}

static void test_put_u8_never_passes_end(void **state)
{
    (void)state;
    const uint8_t v = 0x42;
    check_put_bounds(put_u8_item, &v, 1);
}

static void test_put_varint_never_passes_end(void **state)
{
    (void)state;
    const uint64_t values[] = { 0, 127, 128, 16383, 16384, 1ull << 63,
                                UINT64_MAX };
    const size_t sizes[] = { 1, 1, 2, 2, 3, 10, 10 };
    for (size_t i = 0; i < ARRAY_LEN(values); i++) {
        assert_int_equal(sb_varint_size(values[i]), sizes[i]);
        check_put_bounds(put_varint_item, &values[i], sizes[i]);
    }
}

static void test_put_digest_entry_never_passes_end(void **state)
{
    (void)state;
    const sb_digest_entry d = { 0x112233445566ull, SB_HEARTBEAT_MAX, true,
                                UINT64_MAX, 1000 };
    /* id 6, hbl 10, max 10, gc 2 */
    assert_int_equal(sb_digest_entry_size(&d), 6 + 10 + 10 + 2);
    check_put_bounds(put_digest_item, &d, sb_digest_entry_size(&d));
    /* gc 0: no gc field */
    const sb_digest_entry g = { 0x112233445566ull, SB_HEARTBEAT_MAX, true,
                                UINT64_MAX, 0 };
    assert_int_equal(sb_digest_entry_size(&g), 6 + 10 + 10);
    check_put_bounds(put_digest_item, &g, sb_digest_entry_size(&g));
}

static void test_put_node_header_never_passes_end(void **state)
{
    (void)state;
    const node_spec s = { "10.0.0.1:7946", 1700000000, 300, true, true,
                          100, 200, UINT64_MAX, 0, NULL };
    sb_delta n = node_of(&s);
    n.nkeys = 1000;
    /* addr 1 + 13, gen 5, hbl 2, flags 1, from 1, to 2, gc 10, k 2 */
    assert_int_equal(sb_delta_header_size(&n), 14 + 5 + 2 + 1 + 1 + 2 + 10 + 2);
    check_put_bounds(put_node_item, &n, sb_delta_header_size(&n));
}

static void test_put_key_entry_never_passes_end(void **state)
{
    (void)state;
    const key_spec s = { "some-key", 300, false, "some value", 10 };
    sb_key_entry k = key_of(&s);
    /* key 1 + 8, version 2, flags 1, vlen 1, value 10 */
    assert_int_equal(sb_key_entry_size(8, 10, 300), 9 + 2 + 1 + 1 + 10);
    check_put_bounds(put_key_item, &k, sb_key_entry_size(8, 10, 300));
}

static void test_put_rejects_unencodable_lengths(void **state)
{
    (void)state;
    static char long_str[300];
    memset(long_str, 'z', sizeof(long_str) - 1);
    uint8_t buf[1024];
    memset(buf, 0xa5, sizeof(buf));
    sb_writer w = { buf, buf, buf + sizeof(buf) };

    node_spec ns = { "x", 1, 1, false, false, 0, 0, 0, 0, NULL };
    sb_delta n = node_of(&ns);
    n.addr_len = 0;
    assert_false(sb_put_delta_header(&w, &n));
    n.addr = long_str;
    n.addr_len = 256;
    assert_false(sb_put_delta_header(&w, &n));

    key_spec ks = { "k", 1, false, NULL, 0 };
    sb_key_entry k = key_of(&ks);
    k.key_len = 0;
    assert_false(sb_put_key_entry(&w, &k));
    k.key = (const uint8_t *)long_str;
    k.key_len = 256;
    assert_false(sb_put_key_entry(&w, &k));

    assert_ptr_equal(w.p, buf);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xa5);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_syn_with_flags_and_digest),
        cmocka_unit_test(test_roundtrip_syn_empty_digest),
        cmocka_unit_test(test_roundtrip_padded_syn_keeps_its_digest),
        cmocka_unit_test(test_roundtrip_ack_with_digest_and_nodes),
        cmocka_unit_test(test_roundtrip_ack_empty_sections),
        cmocka_unit_test(test_roundtrip_ack2_with_several_nodes),
        cmocka_unit_test(test_roundtrip_ack2_empty),
        cmocka_unit_test(test_roundtrip_max_length_strings),
        cmocka_unit_test(test_golden_syn_bytes),
        cmocka_unit_test(test_golden_ack_bytes),
        cmocka_unit_test(test_golden_ack2_bytes),
        cmocka_unit_test(test_golden_push_bytes),
        cmocka_unit_test(test_golden_padded_syn_bytes),
        cmocka_unit_test(test_header_cluster_id_is_big_endian),
        cmocka_unit_test(test_cluster_id_is_fnv1a32),
        cmocka_unit_test(test_node_id_matches_reference),
        cmocka_unit_test(test_node_id_pinned_values),
        cmocka_unit_test(test_node_id_depends_on_generation),
        cmocka_unit_test(test_varint_zero),
        cmocka_unit_test(test_varint_127),
        cmocka_unit_test(test_varint_128),
        cmocka_unit_test(test_varint_2_pow_63),
        cmocka_unit_test(test_varint_uint64_max),
        cmocka_unit_test(test_hbl_packs_largest_heartbeat_and_leaving),
        cmocka_unit_test(test_raw_syn_control_is_valid),
        cmocka_unit_test(test_overlong_varint_rejected_as_malformed),
        cmocka_unit_test(test_overlong_varint_as_last_field_is_malformed),
        cmocka_unit_test(test_eleven_byte_varint_rejected_as_malformed),
        cmocka_unit_test(test_varint_over_64_bits_rejected_as_malformed),
        cmocka_unit_test(test_varint_over_64_bits_as_last_field_is_malformed),
        cmocka_unit_test(test_overlong_count_rejected),
        cmocka_unit_test(test_every_prefix_rejected),
        cmocka_unit_test(test_trailing_byte_rejected_as_malformed),
        cmocka_unit_test(test_huge_counts_rejected),
        cmocka_unit_test(test_count_larger_than_entries_rejected),
        cmocka_unit_test(test_truncated_token_or_echo_is_truncated),
        cmocka_unit_test(test_padded_syn_nonzero_pad_is_malformed),
        cmocka_unit_test(test_unpadded_syn_trailing_bytes_are_malformed),
        cmocka_unit_test(test_set_syn_token_rewrites_offset_8_big_endian),
        cmocka_unit_test(test_decode_fills_token_and_echo),
        cmocka_unit_test(test_wrong_magic_rejected),
        cmocka_unit_test(test_wrong_version_rejected),
        cmocka_unit_test(test_other_cluster_rejected),
        cmocka_unit_test(test_unknown_type_rejected),
        cmocka_unit_test(test_short_header_truncated),
        cmocka_unit_test(test_beat_bytes),
        cmocka_unit_test(test_sweep_bytes),
        cmocka_unit_test(test_range_bytes),
        cmocka_unit_test(test_semantic_control_node_accepted),
        cmocka_unit_test(test_empty_addr_rejected),
        cmocka_unit_test(test_empty_key_rejected),
        cmocka_unit_test(test_equal_key_versions_rejected),
        cmocka_unit_test(test_decreasing_key_versions_rejected),
        cmocka_unit_test(test_key_version_equal_to_from_rejected),
        cmocka_unit_test(test_key_version_below_from_rejected),
        cmocka_unit_test(test_key_version_above_to_rejected),
        cmocka_unit_test(test_key_versions_at_range_bounds_accepted),
        cmocka_unit_test(test_tombstone_with_value_rejected),
        cmocka_unit_test(test_generation_zero_rejected),
        cmocka_unit_test(test_node_heartbeat_zero_rejected),
        cmocka_unit_test(test_from_greater_than_to_rejected),
        cmocka_unit_test(test_empty_range_without_keys_accepted),
        cmocka_unit_test(test_digest_gc_flag_with_zero_gc_rejected),
        cmocka_unit_test(test_digest_gc_zero_has_no_gc_field),
        cmocka_unit_test(test_node_hbl_low_bit_rejected),
        cmocka_unit_test(test_put_refuses_heartbeat_above_max),
        cmocka_unit_test(test_random_mutations_rejected_or_iterable),
        cmocka_unit_test(test_put_header_never_passes_end),
        cmocka_unit_test(test_put_u8_never_passes_end),
        cmocka_unit_test(test_put_varint_never_passes_end),
        cmocka_unit_test(test_put_digest_entry_never_passes_end),
        cmocka_unit_test(test_put_node_header_never_passes_end),
        cmocka_unit_test(test_put_key_entry_never_passes_end),
        cmocka_unit_test(test_put_rejects_unencodable_lengths),
    };
    return RUN_TESTS(tests, argc, argv);
}
