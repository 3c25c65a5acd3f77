/*
 * Our wire format (codec.h): messages encoded, and decoded whole with
 * bounds checks before anything in them is trusted.
 */
#include "codec.h"

#include <string.h>

/* ---- reading ---------------------------------------------------------- */

/* A bounds-checked reader: every get fails once, then stays failed.
 * `out` tells a message cut short from one that is wrong. */
typedef struct reader {
    const uint8_t *p, *end;
    bool bad, out;
} reader;

static uint8_t codec_get_u8(reader *r)
{
    if (!r->bad && r->p >= r->end)
        r->out = true;
    if (r->bad || r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static uint64_t codec_get_varint(reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b = codec_get_u8(r);
        if (r->bad)
            return 0;
        /* the tenth byte may carry only the top bit of a u64 */
        if (shift == 63 && b > 1) {
            r->bad = true;
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            /* reject overlong forms: a final zero byte after the first */
            if (b == 0 && shift > 0)
                r->bad = true;
            return v;
        }
    }
    r->bad = true;
    return 0;
}

static const uint8_t *codec_get_bytes(reader *r, uint64_t n)
{
    if (!r->bad && (uint64_t)(r->end - r->p) < n)
        r->out = true;
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *b = r->p;
    r->p += n;
    return b;
}

static uint64_t codec_get_u64(reader *r)
{
    const uint8_t *b = codec_get_bytes(r, 8);
    uint64_t v = 0;
    for (int i = 0; b && i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static uint64_t codec_get_id(reader *r)
{
    const uint8_t *b = codec_get_bytes(r, SB_ID_SIZE);
    uint64_t v = 0;
    for (int i = 0; b && i < SB_ID_SIZE; i++)
        v = v << 8 | b[i];
    return v;
}

/* hbl = heartbeat << 2 | leaving << 1 | bit; returns the low bit */
static bool codec_get_hbl(reader *r, uint64_t *heartbeat, bool *leaving)
{
    uint64_t hbl = codec_get_varint(r);
    *heartbeat = hbl >> 2;
    *leaving = hbl >> 1 & 1;
    return hbl & 1;
}

static void codec_read_digest(reader *r, sb_digest_entry *d)
{
    d->id = codec_get_id(r);
    bool has_gc = codec_get_hbl(r, &d->heartbeat, &d->leaving);
    d->max_version = codec_get_varint(r);
    d->gc_version = has_gc ? codec_get_varint(r) : 0;
    /* one form only: the flag is set exactly when gc is not 0 */
    if (has_gc && d->gc_version == 0)
        r->bad = true;
}

static void codec_read_key(reader *r, sb_key_entry *k)
{
    k->key_len = codec_get_u8(r);
    k->key = codec_get_bytes(r, k->key_len);
    k->version = codec_get_varint(r);
    k->deleted = codec_get_u8(r) & SB_KEY_DELETED;
    k->value_len = codec_get_varint(r);
    k->value = codec_get_bytes(r, k->value_len);
}

static void codec_read_delta_header(reader *r, sb_delta *n)
{
    n->addr_len = codec_get_u8(r);
    n->addr = (const char *)codec_get_bytes(r, n->addr_len);
    n->generation = codec_get_varint(r);
    if (codec_get_hbl(r, &n->heartbeat, &n->leaving))
        r->bad = true; /* the low bit is reserved in a node header */
    uint8_t flags = codec_get_u8(r);
    n->reset = flags & SB_NODE_RESET;
    n->down = flags & SB_NODE_DOWN;
    n->from_version = codec_get_varint(r);
    n->to_version = codec_get_varint(r);
    n->gc_version = codec_get_varint(r);
    n->nkeys = codec_get_varint(r);
    n->keys = r->p;
}

/* ---- validation ------------------------------------------------------- */

static bool codec_valid_digest(reader *r, uint64_t n)
{
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        sb_digest_entry d;
        codec_read_digest(r, &d);
    }
    return !r->bad;
}

/* A node delta is valid when its fields are consistent and its keys come
 * in strictly increasing version order inside (from, to]. */
static bool codec_valid_delta(reader *r)
{
    sb_delta n;
    codec_read_delta_header(r, &n);
    if (r->bad || n.addr_len == 0 || n.generation == 0 ||
        n.heartbeat == 0 || n.from_version > n.to_version ||
        n.nkeys > (uint64_t)(r->end - r->p))
        return false;
    uint64_t last = n.from_version;
    for (uint64_t i = 0; i < n.nkeys; i++) {
        sb_key_entry k;
        codec_read_key(r, &k);
        if (r->bad || k.key_len == 0 || k.version <= last ||
            k.version > n.to_version || (k.deleted && k.value_len != 0))
            return false;
        last = k.version;
    }
    return true;
}

static bool codec_valid_deltas(reader *r, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (!codec_valid_delta(r))
            return false;
    return true;
}

/* Says why a packet is refused: sets *why (if given), returns false. */
static bool codec_refuse(int *why, int reason)
{
    if (why)
        *why = reason;
    return false;
}

bool sb_header_check(const uint8_t *buf, size_t len, uint32_t cluster_id,
                     int *why)
{
    if (len < 2)
        return codec_refuse(why, SB_DROP_TRUNCATED);
    if (buf[0] != 'S' || buf[1] != 'B')
        return codec_refuse(why, SB_DROP_MAGIC);
    if (len < SB_HEADER_SIZE)
        return codec_refuse(why, SB_DROP_TRUNCATED);
    if (buf[2] != SB_PROTOCOL_VERSION)
        return codec_refuse(why, SB_DROP_VERSION);
    uint32_t cid = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
                   (uint32_t)buf[6] << 8 | buf[7];
    if (cid != cluster_id)
        return codec_refuse(why, SB_DROP_CLUSTER);
    return true;
}

bool sb_msg_decode(const uint8_t *buf, size_t len, uint32_t cluster_id,
                   sb_msg *out, int *why)
{
    memset(out, 0, sizeof(*out));
    if (!sb_header_check(buf, len, cluster_id, why))
        return false;
    out->type = buf[3];
    if (out->type < SB_MSG_SYN || out->type > SB_MSG_DIFF)
        return codec_refuse(why, SB_DROP_TYPE);

    reader r = { buf + SB_HEADER_SIZE, buf + len, false, false };
    if (out->type == SB_MSG_BEAT) {
        out->flags = codec_get_u8(&r);
        out->beat = codec_get_varint(&r);
        out->heartbeat = codec_get_varint(&r);
        out->summary = codec_get_u64(&r);
        if (r.bad)
            goto bad;
        if (r.p != r.end)
            return codec_refuse(why, SB_DROP_MALFORMED);
        out->end = r.p;
        return true;
    }
    if (out->type == SB_MSG_ACK || out->type == SB_MSG_ACK2 ||
        out->type == SB_MSG_SWEEP || out->type == SB_MSG_DIFF)
        out->echo = codec_get_u64(&r);
    if (out->type == SB_MSG_SYN || out->type == SB_MSG_ACK)
        out->token = codec_get_u64(&r);
    if (out->type == SB_MSG_SYN)
        out->flags = codec_get_u8(&r);
    if (out->type == SB_MSG_SYN || out->type == SB_MSG_ACK)
        out->summary = codec_get_u64(&r);
    if (out->type == SB_MSG_SYN && (out->flags & SB_SYN_SWEEP)) {
        out->cursor = codec_get_u64(&r);
        if (r.bad)
            goto bad;
        if (out->cursor >= SB_SWEEP_END)
            return codec_refuse(why, SB_DROP_MALFORMED);
    }
    bool range = out->type == SB_MSG_SWEEP || out->type == SB_MSG_DIFF ||
                 (out->type == SB_MSG_SYN && (out->flags & SB_SYN_RANGE));
    if (range) {
        out->from = codec_get_u64(&r);
        out->to = codec_get_u64(&r);
        if (r.bad)
            goto bad;
        if (out->from >= out->to || out->to > SB_SWEEP_END)
            return codec_refuse(why, SB_DROP_MALFORMED);
    }
    if (out->type == SB_MSG_SYN && (out->flags & SB_SYN_RANGE)) {
        out->nprints = codec_get_u8(&r);
        out->prints = codec_get_bytes(&r, (uint64_t)out->nprints *
                                              SB_PRINT_SIZE);
        if (r.bad)
            goto bad;
        if (out->nprints && out->nprints != SB_RANGE_PARTS)
            return codec_refuse(why, SB_DROP_MALFORMED);
    }
    if (out->type == SB_MSG_DIFF) {
        out->differ = codec_get_varint(&r);
        if (r.bad)
            goto bad;
        if (!out->differ || out->differ >> SB_RANGE_PARTS || r.p != r.end)
            return codec_refuse(why, SB_DROP_MALFORMED);
        out->end = r.p;
        return true;
    }
    if (out->type == SB_MSG_PUSH) {
        out->nitems = codec_get_varint(&r);
        out->items = r.p;
        if (r.bad || out->nitems > (uint64_t)(r.end - r.p))
            goto bad;
        for (uint64_t i = 0; i < out->nitems; i++) {
            codec_get_u64(&r); /* root id */
            codec_get_u64(&r); /* wave */
            uint64_t m = codec_get_varint(&r);
            if (r.bad || m > (uint64_t)(r.end - r.p) ||
                !codec_valid_deltas(&r, m))
                goto bad;
        }
        if (r.p != r.end)
            return codec_refuse(why, SB_DROP_MALFORMED);
        out->end = r.p;
        return true;
    }
    if (out->type == SB_MSG_SYN || out->type == SB_MSG_ACK) {
        out->ndigest = codec_get_varint(&r);
        out->digest = r.p;
        if (r.bad || out->ndigest > (uint64_t)(r.end - r.p) ||
            !codec_valid_digest(&r, out->ndigest))
            goto bad;
    }
    if (out->type == SB_MSG_SYN && (out->flags & SB_SYN_PADDED)) {
        /* padding: zero bytes to the end */
        while (r.p < r.end)
            if (*r.p++)
                return codec_refuse(why, SB_DROP_MALFORMED);
    }
    if (out->type != SB_MSG_SYN) {
        out->ndeltas = codec_get_varint(&r);
        out->deltas = r.p;
        if (r.bad || out->ndeltas > (uint64_t)(r.end - r.p) ||
            !codec_valid_deltas(&r, out->ndeltas))
            goto bad;
    }
    if (r.p != r.end)
        return codec_refuse(why, SB_DROP_MALFORMED);
    out->end = r.p;
    return true;
bad:
    /* running out of bytes mid-item is truncation; anything else is junk */
    return codec_refuse(why, r.out ? SB_DROP_TRUNCATED : SB_DROP_MALFORMED);
}

/* ---- iterating a validated message ------------------------------------ */

void sb_digest_next(sb_cursor *c, sb_digest_entry *out)
{
    reader r = { c->p, c->end, false, false };
    codec_read_digest(&r, out);
    c->p = r.p;
}

void sb_key_next(sb_cursor *c, sb_key_entry *out)
{
    reader r = { c->p, c->end, false, false };
    codec_read_key(&r, out);
    c->p = r.p;
}

void sb_delta_next(sb_cursor *c, sb_delta *out)
{
    reader r = { c->p, c->end, false, false };
    codec_read_delta_header(&r, out);
    sb_cursor kc = { r.p, c->end };
    for (uint64_t i = 0; i < out->nkeys; i++) {
        sb_key_entry k;
        sb_key_next(&kc, &k);
    }
    out->end = kc.p;
    c->p = kc.p;
}

void sb_push_item_next(sb_cursor *c, sb_push_item *out)
{
    reader r = { c->p, c->end, false, false };
    out->start = c->p;
    out->root = codec_get_u64(&r);
    out->wave = codec_get_u64(&r);
    out->ndeltas = codec_get_varint(&r);
    out->deltas = r.p;
    sb_cursor dc = { r.p, c->end };
    for (uint64_t i = 0; i < out->ndeltas; i++) {
        sb_delta d;
        sb_delta_next(&dc, &d);
    }
    out->end = dc.p;
    c->p = dc.p;
}

/* ---- writing ---------------------------------------------------------- */

size_t sb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint64_t codec_hbl(uint64_t heartbeat, bool leaving, bool bit)
{
    return heartbeat << 2 | (leaving ? 2u : 0u) | (bit ? 1u : 0u);
}

size_t sb_digest_entry_size(const sb_digest_entry *d)
{
    bool has_gc = d->gc_version != 0;
    return SB_ID_SIZE +
           sb_varint_size(codec_hbl(d->heartbeat, d->leaving, has_gc)) +
           sb_varint_size(d->max_version) +
           (has_gc ? sb_varint_size(d->gc_version) : 0);
}

size_t sb_delta_header_size(const sb_delta *n)
{
    return 1 + n->addr_len + sb_varint_size(n->generation) +
           sb_varint_size(codec_hbl(n->heartbeat, n->leaving, false)) + 1 +
           sb_varint_size(n->from_version) + sb_varint_size(n->to_version) +
           sb_varint_size(n->gc_version) + sb_varint_size(n->nkeys);
}

size_t sb_key_entry_size(size_t key_len, size_t value_len, uint64_t version)
{
    return 1 + key_len + sb_varint_size(version) + 1 +
           sb_varint_size(value_len) + value_len;
}

bool sb_put_u8(sb_writer *w, uint8_t v)
{
    if (sb_writer_room(w) < 1)
        return false;
    *w->p++ = v;
    return true;
}

bool sb_put_u32(sb_writer *w, uint32_t v)
{
    if (sb_writer_room(w) < 4)
        return false;
    for (int i = 3; i >= 0; i--)
        *w->p++ = (uint8_t)(v >> (8 * i));
    return true;
}

bool sb_put_varint(sb_writer *w, uint64_t v)
{
    if (sb_writer_room(w) < sb_varint_size(v))
        return false;
    while (v >= 0x80) {
        *w->p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w->p++ = (uint8_t)v;
    return true;
}

static void codec_put_raw(sb_writer *w, const void *b, size_t n)
{
    if (n)
        memcpy(w->p, b, n);
    w->p += n;
}

bool sb_put_header(sb_writer *w, int type, uint32_t cluster_id)
{
    if (sb_writer_room(w) < SB_HEADER_SIZE)
        return false;
    uint8_t h[SB_HEADER_SIZE] = {
        'S', 'B', SB_PROTOCOL_VERSION, (uint8_t)type,
        (uint8_t)(cluster_id >> 24), (uint8_t)(cluster_id >> 16),
        (uint8_t)(cluster_id >> 8), (uint8_t)cluster_id,
    };
    codec_put_raw(w, h, sizeof(h));
    return true;
}

bool sb_put_u64(sb_writer *w, uint64_t v)
{
    if (sb_writer_room(w) < 8)
        return false;
    for (int i = 7; i >= 0; i--)
        *w->p++ = (uint8_t)(v >> (8 * i));
    return true;
}

void sb_set_item_wave(uint8_t *item, uint64_t wave)
{
    sb_writer w = { item, item + 8, item + SB_PUSH_HEADER_SIZE };
    sb_put_u64(&w, wave);
}

void sb_set_syn_token(uint8_t *syn, uint64_t token)
{
    sb_writer w = { syn, syn + SB_HEADER_SIZE, syn + SB_HEADER_SIZE + 8 };
    sb_put_u64(&w, token);
}

void sb_syn_drop_sweep(sb_writer *syn)
{
    uint8_t *flags = sb_syn_flags(syn->start);
    if (!(*flags & SB_SYN_SWEEP))
        return;
    uint8_t *cursor = flags + 1 + SB_SUMMARY_SIZE; /* after the summary */
    memmove(cursor, cursor + SB_CURSOR_SIZE,
            (size_t)(syn->p - cursor - SB_CURSOR_SIZE));
    syn->p -= SB_CURSOR_SIZE;
    *flags &= (uint8_t)~SB_SYN_SWEEP;
}

bool sb_put_digest_entry(sb_writer *w, const sb_digest_entry *d)
{
    if (d->heartbeat > SB_HEARTBEAT_MAX ||
        sb_writer_room(w) < sb_digest_entry_size(d))
        return false;
    bool has_gc = d->gc_version != 0;
    for (int i = SB_ID_SIZE - 1; i >= 0; i--)
        *w->p++ = (uint8_t)(d->id >> (8 * i));
    sb_put_varint(w, codec_hbl(d->heartbeat, d->leaving, has_gc));
    sb_put_varint(w, d->max_version);
    if (has_gc)
        sb_put_varint(w, d->gc_version);
    return true;
}

bool sb_put_delta_header(sb_writer *w, const sb_delta *n)
{
    if (n->addr_len == 0 || n->addr_len > 255 ||
        n->heartbeat > SB_HEARTBEAT_MAX ||
        sb_writer_room(w) < sb_delta_header_size(n))
        return false;
    *w->p++ = (uint8_t)n->addr_len;
    codec_put_raw(w, n->addr, n->addr_len);
    sb_put_varint(w, n->generation);
    sb_put_varint(w, codec_hbl(n->heartbeat, n->leaving, false));
    *w->p++ = (uint8_t)((n->reset ? SB_NODE_RESET : 0) |
                        (n->down ? SB_NODE_DOWN : 0));
    sb_put_varint(w, n->from_version);
    sb_put_varint(w, n->to_version);
    sb_put_varint(w, n->gc_version);
    sb_put_varint(w, n->nkeys);
    return true;
}

bool sb_put_key_entry(sb_writer *w, const sb_key_entry *k)
{
    if (k->key_len == 0 || k->key_len > 255 ||
        sb_writer_room(w) <
            sb_key_entry_size(k->key_len, k->value_len, k->version))
        return false;
    *w->p++ = (uint8_t)k->key_len;
    codec_put_raw(w, k->key, k->key_len);
    sb_put_varint(w, k->version);
    *w->p++ = k->deleted ? SB_KEY_DELETED : 0;
    sb_put_varint(w, k->value_len);
    codec_put_raw(w, k->value, k->value_len);
    return true;
}

/* ---- identities ------------------------------------------------------- */

/* FNV-1a 64 over the address and the generation, then a splitmix64
 * finaliser so that nearby inputs spread over all 64 bits, of which the
 * top 48 are the id. */
uint64_t sb_peer_id(const char *addr, size_t addr_len, uint64_t generation)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < addr_len; i++)
        h = (h ^ (uint8_t)addr[i]) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ (uint8_t)(generation >> (8 * i))) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h >> (64 - 8 * SB_ID_SIZE);
}

uint32_t sb_cluster_id(const char *name)
{
    uint32_t h = 0x811c9dc5u;
    for (const char *s = name ? name : ""; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x01000193u;
    return h;
}
