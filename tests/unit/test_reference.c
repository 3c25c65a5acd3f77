/*
 * The reference wire format and exchange (SB_WIRE_REFERENCE): one engine
 * and a scripted reference peer. The expected messages are written out
 * byte by byte from the format's description (docs/compat.md):
 *
 *   type (1 digest request, 2 digest response, 3 delta), then entries;
 *   string = u8 length, bytes; version = u64 big endian;
 *   digest entry = addr, version; delta entry = addr, key, value, version.
 *
 * No sockets, threads or clocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "refwire.h"

#define US "10.0.0.1:7946" /* the engine under test */
#define PEER "10.0.0.2:7946" /* the scripted reference peer */
#define ADDR13 "\x0d"      /* both addresses are 13 bytes long */

/* ---- what the engine sends and reports ---------------------------------- */

typedef struct out {
    char to[64];
    size_t len;
    uint8_t data[4096];
} out;

typedef struct world {
    out sent[64];
    int nsent;
    size_t largest;
    int joins, leaves, updates;
} world;

static void on_send(void *ud, const char *to, const uint8_t *buf, size_t len)
{
    world *w = ud;
    if (len > w->largest)
        w->largest = len;
    if (w->nsent == 64)
        return;
    out *o = &w->sent[w->nsent++];
    snprintf(o->to, sizeof(o->to), "%s", to);
    o->len = len;
    memcpy(o->data, buf, len < sizeof(o->data) ? len : sizeof(o->data));
}

static void on_event(void *ud, const sb_event *ev)
{
    world *w = ud;
    w->joins += ev->type == SB_EVENT_JOIN;
    w->leaves += ev->type == SB_EVENT_LEAVE;
    w->updates += ev->type == SB_EVENT_UPDATE;
}

static void config(sb_engine_config *c, world *w, size_t max_message)
{
    sb_engine_config_init(c);
    c->addr = US;
    c->generation = 1; /* our versions start at 1 */
    c->rng_seed = seed_;
    c->wire = SB_WIRE_REFERENCE;
    c->interval_ns = 100 * MS;
    c->max_message_size = max_message;
    c->send = on_send;
    c->on_event = on_event;
    c->userdata = w;
}

static sb_engine *engine(world *w, size_t max_message)
{
    sb_engine_config c;
    config(&c, w, max_message);
    sb_engine *e;
    assert_int_equal(sb_engine_new(&c, 0, &e), SB_OK);
    return e;
}

static int recv_bytes(sb_engine *e, const char *bytes, size_t len,
                      uint64_t now)
{
    return sb_engine_recv(e, PEER, (const uint8_t *)bytes, len, now);
}
#define RECV(e, lit, now) recv_bytes(e, lit, sizeof(lit) - 1, now)

/* True if the engine holds `value` for `key` of the node at `addr`. */
static bool holds(const sb_engine *e, const char *addr, const char *key,
                  const char *value)
{
    const uint8_t *v;
    size_t len;
    return sb_engine_get(e, addr, (const uint8_t *)key, strlen(key), &v,
                         &len) == SB_OK &&
           len == strlen(value) && memcmp(v, value, len) == 0;
}

static int set(sb_engine *e, const char *k, const char *v)
{
    return sb_engine_set(e, (const uint8_t *)k, strlen(k),
                         (const uint8_t *)v, strlen(v), 0);
}

static bool sent_is(const out *o, const char *to, const char *bytes,
                    size_t len)
{
    return strcmp(o->to, to) == 0 && o->len == len &&
           memcmp(o->data, bytes, len) == 0;
}
#define SENT_IS(o, lit) sent_is(o, PEER, lit, sizeof(lit) - 1)

/* The peer's first digest names it (at version 0): it is no stranger
 * after that, and live, since the digest came from it. */
static void introduce(sb_engine *e, world *w)
{
    check(RECV(e, "\x02" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
               0) == SB_OK);
    w->nsent = 0;
}

/* True if the digest message `o` holds exactly these entries (of
 * `entry_len` bytes each), in any order: digests are shuffled. */
static bool digest_holds(const out *o, int type, const char *const *entries,
                         int n, size_t entry_len)
{
    if (o->len != 1 + (size_t)n * entry_len || o->data[0] != type)
        return false;
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int j = 0; j < n && !found; j++)
            found = memcmp(o->data + 1 + (size_t)j * entry_len, entries[i],
                           entry_len) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* ---- golden messages ------------------------------------------------------ */

static void test_request_answered_by_delta_then_response(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine *e = engine(&w, 512);
    check(set(e, "k", "v") == SB_OK); /* our version 1 */
    introduce(e, &w);

    /* a digest request that names the peer (version 0) and us (0) */
    check(RECV(e, "\x01"
                  ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00"
                  ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
               MS) == SB_OK);
    check(w.nsent == 2);
    /* first the delta: our key k = v at version 1 */
    check(SENT_IS(&w.sent[0], "\x03" ADDR13 US "\x01k\x01v"
                                  "\x00\x00\x00\x00\x00\x00\x00\x01"));
    /* then our digest as a response: us at 1, the peer at 0 */
    const char *entries[] = {
        ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x01",
        ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
    };
    check(strcmp(w.sent[1].to, PEER) == 0);
    check(digest_holds(&w.sent[1], SB_REF_DIGEST_RESPONSE, entries, 2, 22));
    /* its digests came from the peer itself: proof of life */
    check(w.joins == 1);

    /* a digest response gets the delta only, and an up-to-date one
     * nothing at all */
    w.nsent = 0;
    check(RECV(e, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
               2 * MS) == SB_OK);
    check(w.nsent == 1);
    check(SENT_IS(&w.sent[0], "\x03" ADDR13 US "\x01k\x01v"
                                  "\x00\x00\x00\x00\x00\x00\x00\x01"));
    w.nsent = 0;
    check(RECV(e, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x01",
               3 * MS) == SB_OK);
    check(w.nsent == 0);
    /* an empty request (a digest of nothing) is answered by our digest */
    check(RECV(e, "\x01", 4 * MS) == SB_OK);
    check(w.nsent == 1 &&
          digest_holds(&w.sent[0], SB_REF_DIGEST_RESPONSE, entries, 2, 22));
    sb_engine_free(e);
}

static void test_delta_applied_key_by_key(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine *e = engine(&w, 512);
    /* the peer's digest makes it live; then its delta: role = db at
     * version 5 and zone = a at 3 (out of version order) */
    check(RECV(e, "\x02" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x05",
               MS) == SB_OK);
    check(RECV(e, "\x03"
                  ADDR13 PEER "\x04role\x02" "db"
                  "\x00\x00\x00\x00\x00\x00\x00\x05"
                  ADDR13 PEER "\x04zone\x01" "a"
                  "\x00\x00\x00\x00\x00\x00\x00\x03",
               2 * MS) == SB_OK);
    check(w.nsent == 0); /* a delta is never answered */
    check(holds(e, PEER, "role", "db"));
    check(holds(e, PEER, "zone", "a"));
    sb_member m;
    check(sb_engine_find(e, PEER, &m) == SB_OK);
    check(m.max_version == 5 && m.keys == 2 && m.status == SB_STATUS_LIVE);
    check(w.updates == 2);
    /* an older or equal version of a key changes nothing */
    check(RECV(e, "\x03" ADDR13 PEER "\x04role\x03old"
                  "\x00\x00\x00\x00\x00\x00\x00\x04",
               3 * MS) == SB_OK);
    check(holds(e, PEER, "role", "db") && w.updates == 2);
    /* our digest now says 5 for the peer, and answers a request that
     * knows nothing of it with its keys in version order (from a node we
     * know: its first digest named it) */
    check(sb_engine_recv(e, "10.0.0.3:7946",
                         (const uint8_t *)"\x02" ADDR13 "10.0.0.3:7946"
                                          "\x00\x00\x00\x00\x00\x00\x00\x00",
                         23, 4 * MS) == SB_OK);
    w.nsent = 0;
    sb_engine_recv(e, "10.0.0.3:7946",
                   (const uint8_t *)"\x01" ADDR13 PEER
                                    "\x00\x00\x00\x00\x00\x00\x00\x00",
                   23, 4 * MS);
    check(w.nsent == 2);
    static const char both[] = "\x03"
                               ADDR13 PEER "\x04zone\x01" "a"
                               "\x00\x00\x00\x00\x00\x00\x00\x03"
                               ADDR13 PEER "\x04role\x02" "db"
                               "\x00\x00\x00\x00\x00\x00\x00\x05";
    check(sent_is(&w.sent[0], "10.0.0.3:7946", both, sizeof(both) - 1));
    sb_engine_free(e);
}

static void test_round_sends_digest_request(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine *e = engine(&w, 512);
    check(RECV(e, "\x02" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
               MS) == SB_OK);
    w.nsent = 0;
    uint64_t now = sb_engine_next_deadline(e);
    sb_engine_tick(e, now);
    /* one round: one digest request, to the one peer we know */
    check(w.nsent == 1);
    const char *entries[] = {
        ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
        ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
    };
    check(strcmp(w.sent[0].to, PEER) == 0);
    check(digest_holds(&w.sent[0], SB_REF_DIGEST_REQUEST, entries, 2, 22));
    /* one round per interval */
    check(sb_engine_next_deadline(e) == now + 100 * MS);
    sb_engine_free(e);
}

/* ---- malformed input: dropped and counted, never answered ------------------ */

static void test_malformed_dropped_and_counted(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine *e = engine(&w, 512);
    check(set(e, "k", "v") == SB_OK);
    static const struct {
        const char *bytes;
        size_t len;
        int drop;
    } bad[] = {
        { "", 0, SB_DROP_TRUNCATED },
        { "\x00", 1, SB_DROP_TYPE },
        { "\x04", 1, SB_DROP_TYPE },
        /* a string longer than what is left: the reference crashes */
        { "\x01\x05" "ab", 4, SB_DROP_TRUNCATED },
        { "\x01\x01" "a" "\x00\x00\x00", 6, SB_DROP_TRUNCATED },
        { "\x03" ADDR13 PEER "\x01k", 17, SB_DROP_TRUNCATED },
        { "\x03" ADDR13 PEER "\x01k\x03v", 19, SB_DROP_TRUNCATED },
        /* one good entry, then a cut one: nothing of it is applied */
        { "\x03" ADDR13 PEER "\x01k\x01v\x00\x00\x00\x00\x00\x00\x00\x01"
          "\x0d" "10.0", 32, SB_DROP_TRUNCATED },
        { "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", 10, SB_DROP_MALFORMED },
        /* an address with a NUL byte would alias another */
        { "\x01\x04" "a\0bc" "\x00\x00\x00\x00\x00\x00\x00\x00", 14,
          SB_DROP_MALFORMED },
    };
    sb_stats st;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sb_engine_stats(e, &st);
        uint64_t before = st.drops[bad[i].drop];
        /* a peer's bad datagram is a counted drop, not an error */
        check(sb_engine_recv(e, PEER, (const uint8_t *)bad[i].bytes,
                             bad[i].len, MS) == SB_OK);
        sb_engine_stats(e, &st);
        check(st.drops[bad[i].drop] == before + 1);
    }
    check(w.nsent == 0);
    check(sb_engine_member_count(e) == 1); /* learned nothing */
    /* a sender address longer than any address (only a caller of the
     * engine can make one) */
    char longer[300];
    memset(longer, '1', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = 0;
    sb_engine_stats(e, &st);
    uint64_t before = st.drops[SB_DROP_MALFORMED];
    check(sb_engine_recv(e, longer, (const uint8_t *)"\x01", 1, MS) ==
          SB_OK);
    sb_engine_stats(e, &st);
    check(st.drops[SB_DROP_MALFORMED] == before + 1);
    /* the wire of the other kind is not ours either */
    check(sb_engine_recv(e, PEER, (const uint8_t *)"SB\x02\x01\0\0\0\0", 8,
                         MS) == SB_OK);
    /* the caller's own mistakes are errors, and no drop */
    sb_engine_stats(e, &st);
    before = st.packets_in;
    check(sb_engine_recv(e, NULL, (const uint8_t *)"\x01", 1, MS) ==
          SB_EINVAL);
    check(sb_engine_recv(e, PEER, NULL, 1, MS) == SB_EINVAL);
    check(sb_engine_recv(NULL, PEER, (const uint8_t *)"\x01", 1, MS) ==
          SB_EINVAL);
    sb_engine_stats(e, &st);
    check(st.packets_in == before);
    check(w.nsent == 0 && sb_engine_member_count(e) == 1);
    sb_engine_free(e);
}

/* ---- what the format cannot carry ---------------------------------------- */

static void test_refused(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine_config c;
    sb_engine *e;
    static const uint8_t key[SB_KEY_SIZE] = { 1 };
    config(&c, &w, 512);
    c.keys = key;
    c.nkeys = 1;
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    config(&c, &w, 512);
    c.cluster = "other";
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    config(&c, &w, 512);
    c.wire = (sb_wire)7;
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    config(&c, &w, 1 + 3 + 13 + 1 + 8 - 1); /* one byte short of a key */
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    config(&c, &w, 512);
    c.generation = (UINT64_MAX >> 2) + 1; /* versions start there */
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    config(&c, &w, 1 + 3 + 13 + 1 + 8);
    check(sb_engine_new(&c, 0, &e) == SB_OK);
    check(set(e, "k", "") == SB_OK);
    check(set(e, "k", "v") == SB_ETOOBIG);
    sb_engine_free(e);

    e = engine(&w, 65507);
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[299] = 0;
    big[255] = 0;
    check(set(e, "k", big) == SB_OK); /* 255 bytes: the most */
    big[255] = 'x';
    big[256] = 0;
    check(set(e, "k", big) == SB_ETOOBIG);
    check(sb_engine_set(e, (const uint8_t *)big, 256, (const uint8_t *)"v",
                        1, 0) == SB_EINVAL);
    check(sb_engine_del(e, (const uint8_t *)"k", 1, 0) == SB_ESTATE);
    check(sb_engine_leave(e, 0) == SB_ESTATE);
    check(sb_engine_key_install(e, key) == SB_ESTATE);
    sb_member m;
    check(sb_engine_find(e, US, &m) == SB_OK && m.generation == 1);
    sb_engine_free(e);

    /* at 512 bytes, the longest key and value cannot travel */
    e = engine(&w, 512);
    big[255] = 0;
    check(sb_engine_set(e, (const uint8_t *)big, 255, (const uint8_t *)big,
                        255, 0) == SB_ETOOBIG);
    check(sb_engine_set(e, (const uint8_t *)big, 200, (const uint8_t *)big,
                        255, 0) == SB_OK);
    sb_engine_free(e);
}

/* A key a bound refuses stops the node's later entries in that message:
 * our version of the node stays below it, so that it is asked for again,
 * instead of passing it for good. */
static void test_refused_key_leaves_no_gap(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine_config c;
    config(&c, &w, 512);
    c.max_state_bytes = 10;
    sb_engine *e;
    assert_int_equal(sb_engine_new(&c, 0, &e), SB_OK);
    check(RECV(e, "\x03"
                  ADDR13 PEER "\x01" "a" "\x01" "1"
                  "\x00\x00\x00\x00\x00\x00\x00\x01"
                  ADDR13 PEER "\x01" "b" "\x0a" "0123456789"
                  "\x00\x00\x00\x00\x00\x00\x00\x02"
                  ADDR13 PEER "\x01" "c" "\x01" "3"
                  "\x00\x00\x00\x00\x00\x00\x00\x03",
               MS) == SB_OK);
    sb_member m;
    check(sb_engine_find(e, PEER, &m) == SB_OK);
    check(m.keys == 1 && m.max_version == 1);
    sb_stats st;
    sb_engine_stats(e, &st);
    check(st.drops[SB_DROP_LIMIT_BYTES] == 1);
    sb_engine_free(e);
}

/* ---- size limits ------------------------------------------------------------ */

/* Our deltas stay within max_message_size and, exchange after exchange,
 * carry every key in version order; a reference peer's oversized delta
 * is taken whole. */
static void test_size_limit_both_ways(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine *e = engine(&w, 512);
    char key[8], value[64];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        check(set(e, key, value) == SB_OK);
    }
    introduce(e, &w);
    uint64_t have = 0;
    int exchanges = 0;
    while (have < 40 && exchanges < 40) {
        uint8_t req[1 + 22] = { SB_REF_DIGEST_RESPONSE, 13 };
        memcpy(req + 2, US, 13);
        for (int i = 0; i < 8; i++)
            req[15 + i] = (uint8_t)(have >> (56 - 8 * i));
        w.nsent = 0;
        check(sb_engine_recv(e, PEER, req, sizeof(req), MS) == SB_OK);
        check(w.nsent == 1 && w.sent[0].data[0] == SB_REF_DELTA);
        sb_cursor c = { w.sent[0].data + 1, w.sent[0].data + w.sent[0].len };
        sb_ref_entry r;
        int got = 0;
        while (sb_ref_next(&c, SB_REF_DELTA, &r)) {
            check(r.version == have + 1); /* in order, no gap */
            have = r.version;
            got++;
        }
        check(got > 0);
        exchanges++;
    }
    check(have == 40 && exchanges > 1);
    check(w.largest <= 512);
    sb_engine_free(e);

    /* 40 keys in one 3,000-byte datagram, as a reference node may send */
    e = engine(&w, 512);
    uint8_t big[4096];
    sb_writer wr = { big, big, big + sizeof(big) };
    sb_ref_put_type(&wr, SB_REF_DELTA);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        sb_ref_put_delta(&wr, PEER, 13, (const uint8_t *)key, 3,
                         (const uint8_t *)value, 50, (uint64_t)i + 1);
    }
    size_t len = (size_t)(wr.p - big);
    check(len > 2500);
    check(sb_engine_recv(e, PEER, big, len, MS) == SB_OK);
    sb_member m;
    check(sb_engine_find(e, PEER, &m) == SB_OK && m.keys == 40 &&
          m.max_version == 40);
    sb_engine_free(e);

    /* a reference node's key too large for any message of ours is not
     * relayed, nor is what follows it: passing it over would make the
     * receiver's version of the node skip it for good (the receiver gets
     * them from reference nodes) */
    e = engine(&w, 512);
    char v255[256];
    memset(v255, 'v', 255);
    v255[255] = 0;
    wr = (sb_writer){ big, big, big + sizeof(big) };
    sb_ref_put_type(&wr, SB_REF_DELTA);
    sb_ref_put_delta(&wr, PEER, 13, (const uint8_t *)v255, 255,
                     (const uint8_t *)v255, 255, 1);
    sb_ref_put_delta(&wr, PEER, 13, (const uint8_t *)"x", 1,
                     (const uint8_t *)"y", 1, 2);
    check(sb_engine_recv(e, PEER, big, (size_t)(wr.p - big), MS) == SB_OK);
    check(sb_engine_find(e, PEER, &m) == SB_OK && m.keys == 2);
    check(sb_engine_recv(e, "10.0.0.3:7946",
                         (const uint8_t *)"\x02" ADDR13 "10.0.0.3:7946"
                                          "\x00\x00\x00\x00\x00\x00\x00\x00",
                         23, 2 * MS) == SB_OK);
    w.nsent = 0;
    sb_engine_recv(e, "10.0.0.3:7946",
                   (const uint8_t *)"\x02" ADDR13 PEER
                                    "\x00\x00\x00\x00\x00\x00\x00\x00",
                   23, 3 * MS);
    check(w.nsent == 0);
    sb_engine_free(e);
}

/* A digest from an address that is neither known nor a seed gets no
 * delta and a digest no larger than itself, however often it comes: a
 * forged source cannot make us an amplifier. A digest that names its
 * sender makes it known (as a node's own digest does), and the next one
 * gets the whole. */
static void test_stranger_gets_no_larger_reply(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine *e = engine(&w, 512);
    char key[8];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        check(set(e, key, "some value of a key") == SB_OK);
    }
    static const char ask[] = "\x01" ADDR13 US
                              "\x00\x00\x00\x00\x00\x00\x00\x00";
    for (int i = 0; i < 3; i++) {
        w.nsent = 0;
        check(recv_bytes(e, ask, sizeof(ask) - 1, MS) == SB_OK);
        check(w.nsent == 1 && w.sent[0].data[0] == SB_REF_DIGEST_RESPONSE &&
              w.sent[0].len <= sizeof(ask) - 1);
    }
    static const char me[] = "\x01" ADDR13 US
                             "\x00\x00\x00\x00\x00\x00\x00\x00"
                             ADDR13 PEER
                             "\x00\x00\x00\x00\x00\x00\x00\x00";
    w.nsent = 0;
    check(recv_bytes(e, me, sizeof(me) - 1, 2 * MS) == SB_OK);
    check(w.nsent == 1 && w.sent[0].len <= sizeof(me) - 1);
    w.nsent = 0;
    w.largest = 0;
    check(recv_bytes(e, me, sizeof(me) - 1, 3 * MS) == SB_OK);
    check(w.nsent == 2 && w.largest > 400 && w.largest <= 512);
    sb_engine_free(e);
}

/* ---- liveness --------------------------------------------------------------- */

static void test_direct_digests_are_heartbeats(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine *e = engine(&w, 512);
    uint64_t now = 0;
    /* the peer sends us a digest every 100 ms for 10 s */
    for (int i = 0; i < 100; i++) {
        now += 100 * MS;
        check(RECV(e, "\x01" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
                   now) == SB_OK);
        sb_engine_tick(e, now);
    }
    check(w.joins == 1 && w.leaves == 0);
    /* a node that only others name is known but not live */
    check(RECV(e, "\x02" ADDR13 "10.0.0.3:7946"
                  "\x00\x00\x00\x00\x00\x00\x00\x00",
               now) == SB_OK);
    sb_member m;
    check(sb_engine_find(e, "10.0.0.3:7946", &m) == SB_OK &&
          m.status == SB_STATUS_JOINING);
    /* then silence: the peer is reported down */
    for (int i = 0; i < 300 && !w.leaves; i++) {
        now += 100 * MS;
        sb_engine_tick(e, now);
    }
    check(w.leaves == 1);
    check(sb_engine_find(e, PEER, &m) == SB_OK &&
          m.status == SB_STATUS_DOWN);
    /* while down, it is sent a digest request now and then */
    w.nsent = 0;
    for (int i = 0; i < 10; i++) {
        now += 100 * MS;
        sb_engine_tick(e, now);
    }
    bool probed = false;
    for (int i = 0; i < w.nsent; i++)
        probed = probed || (strcmp(w.sent[i].to, PEER) == 0 &&
                            w.sent[i].data[0] == SB_REF_DIGEST_REQUEST);
    check(probed);
    /* and one digest from it brings it back */
    check(RECV(e, "\x02", now) == SB_OK);
    check(w.joins == 2);
    check(sb_engine_find(e, PEER, &m) == SB_OK &&
          m.status == SB_STATUS_LIVE);
    sb_engine_free(e);
}

/* An address only named, never heard from, is "up" for a while (as among
 * reference nodes), then down without an event, and out of our digests,
 * so that it dies out. */
static void test_named_address_that_never_answers(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine *e = engine(&w, 512);
    introduce(e, &w);
    check(RECV(e, "\x02" ADDR13 "10.9.9.9:7946"
                  "\x00\x00\x00\x00\x00\x00\x00\x00",
               0) == SB_OK);
    sb_member m;
    check(sb_engine_find(e, "10.9.9.9:7946", &m) == SB_OK &&
          m.status == SB_STATUS_JOINING);
    uint64_t now = 0;
    int leaves = w.leaves;
    for (int i = 0; i < 600; i++) {
        now += 100 * MS;
        /* the peer stays live: a digest from it every 100 ms */
        check(RECV(e, "\x02", now) == SB_OK);
        sb_engine_tick(e, now);
    }
    check(sb_engine_find(e, "10.9.9.9:7946", &m) == SB_OK &&
          m.status == SB_STATUS_DOWN);
    check(w.leaves == leaves); /* never live: no event */
    w.nsent = 0;
    check(RECV(e, "\x01", now) == SB_OK);
    const char *entries[] = {
        ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
        ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
    };
    check(w.nsent == 1 &&
          digest_holds(&w.sent[0], SB_REF_DIGEST_RESPONSE, entries, 2, 22));
    sb_engine_free(e);

    /* never later than the dead-node grace; and a threshold so large
     * that nothing is ever convicted never makes it go at once */
    sb_engine_config c;
    config(&c, &w, 512);
    c.dead_grace_ns = 2 * SEC;
    c.phi_threshold = 1e30;
    assert_int_equal(sb_engine_new(&c, 0, &e), SB_OK);
    introduce(e, &w);
    check(RECV(e, "\x02" ADDR13 "10.9.9.9:7946"
                  "\x00\x00\x00\x00\x00\x00\x00\x00",
               0) == SB_OK);
    now = 0;
    for (int i = 0; i < 15; i++) {
        now += 100 * MS;
        sb_engine_tick(e, now);
    }
    check(sb_engine_find(e, "10.9.9.9:7946", &m) == SB_OK &&
          m.status == SB_STATUS_JOINING);
    for (int i = 0; i < 10; i++) {
        now += 100 * MS;
        sb_engine_tick(e, now);
    }
    check(sb_engine_find(e, "10.9.9.9:7946", &m) == SB_ENOTFOUND);
    sb_engine_free(e);
}

/* ---- restart --------------------------------------------------------------- */

/* Our versions start at the generation (the runtime's wall clock): a
 * restarted node's keys supersede its previous incarnation's at every
 * peer, however many it had written. */
static void test_restart_supersedes(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine_config c;
    config(&c, &w, 512);
    sb_engine *old, *e;
    assert_int_equal(sb_engine_new(&c, 0, &old), SB_OK);
    check(set(old, "a", "1") == SB_OK && set(old, "k", "old") == SB_OK);
    sb_engine_free(old);
    c.generation = 1000; /* restarted later */
    assert_int_equal(sb_engine_new(&c, 0, &e), SB_OK);
    check(set(e, "k", "new") == SB_OK && set(e, "a", "2") == SB_OK &&
          set(e, "b", "x") == SB_OK);
    introduce(e, &w);
    /* the peer holds the old incarnation at version 2 */
    check(RECV(e, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x02",
               MS) == SB_OK);
    check(SENT_IS(&w.sent[0], "\x03"
                  ADDR13 US "\x01k\x03new" "\x00\x00\x00\x00\x00\x00\x03\xe8"
                  ADDR13 US "\x01" "a" "\x01" "2"
                  "\x00\x00\x00\x00\x00\x00\x03\xe9"
                  ADDR13 US "\x01" "b" "\x01" "x"
                  "\x00\x00\x00\x00\x00\x00\x03\xea"));
    sb_member m;
    check(sb_engine_find(e, US, &m) == SB_OK && m.generation == 1);
    sb_engine_free(e);
}

/* Should the clock have gone back, the peers' claims are the backstop:
 * when a peer names a version of ours above what we hold, our versions
 * continue above it, so that our keys supersede. */
static void test_restart_outlives_old_versions(void **state)
{
    (void)state;
    world w = { 0 };
    sb_engine *e = engine(&w, 512);
    check(set(e, "k", "new") == SB_OK); /* version 1 */
    introduce(e, &w);
    /* the peer holds our previous incarnation up to version 7: k goes
     * out again at 8, in the answer to that very digest */
    check(RECV(e, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x07",
               MS) == SB_OK);
    sb_member m;
    check(sb_engine_find(e, US, &m) == SB_OK && m.max_version == 8);
    check(w.nsent == 1);
    check(SENT_IS(&w.sent[0], "\x03" ADDR13 US "\x01k\x03new"
                                  "\x00\x00\x00\x00\x00\x00\x00\x08"));
    /* a delta about us (the peer's copy of the old k) moves us on too,
     * and is not stored: our own keys are ours */
    check(RECV(e, "\x03" ADDR13 US "\x01k\x03old"
                  "\x00\x00\x00\x00\x00\x00\x00\x09",
               3 * MS) == SB_OK);
    check(holds(e, US, "k", "new"));
    check(sb_engine_find(e, US, &m) == SB_OK && m.max_version == 10);
    check(set(e, "j", "x") == SB_OK);
    check(sb_engine_find(e, US, &m) == SB_OK && m.max_version == 11);
    sb_engine_free(e);
}

int main(void)
{
    read_seed();
    printf("test_reference: seed %llu\n", (unsigned long long)seed_);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_answered_by_delta_then_response),
        cmocka_unit_test(test_delta_applied_key_by_key),
        cmocka_unit_test(test_round_sends_digest_request),
        cmocka_unit_test(test_malformed_dropped_and_counted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_refused_key_leaves_no_gap),
        cmocka_unit_test(test_size_limit_both_ways),
        cmocka_unit_test(test_stranger_gets_no_larger_reply),
        cmocka_unit_test(test_direct_digests_are_heartbeats),
        cmocka_unit_test(test_named_address_that_never_answers),
        cmocka_unit_test(test_restart_supersedes),
        cmocka_unit_test(test_restart_outlives_old_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
