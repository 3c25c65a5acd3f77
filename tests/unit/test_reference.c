/*
 * The reference wire format and exchange (SB_WIRE_REFERENCE): one engine
 * and a scripted reference peer. The expected messages are written out
 * byte by byte from the format's description (docs/compat.md):
 *
 *   type (1 digest request, 2 digest response, 3 delta), then entries;
 *   string = u8 length, bytes; version = u64 big endian;
 *   digest entry = addr, version; delta entry = addr, key, value, version.
 *
 * No sockets or threads: the engine is the one node of a simulated
 * cluster (tests/harness), and the test plays the peer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../run.h"

#include "../check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "refwire.h"

#define US "10.0.0.1:7946" /* the engine under test: node 0 */
#define PEER "10.0.0.2:7946" /* the scripted reference peer */
#define ADDR13 "\x0d"      /* both addresses are 13 bytes long */

/* The engine under test: alone in its cluster, speaking the reference
 * wire, no seeds, generation 1 at time 0 (our versions start at 1). */
static void config(cluster_config *cfg, size_t max_message)
{
    cluster_config_init(cfg, 1);
    cfg->seeds = 0;
    cfg->generation_base = 0;
    cfg->engine.wire = SB_WIRE_REFERENCE;
    cfg->engine.max_message_size = max_message;
}

static cluster *engine(size_t max_message)
{
    cluster_config cfg;
    config(&cfg, max_message);
    return cluster_new(&cfg);
}

/* A datagram from `from` reaches the engine at time `now` (at once if the
 * clock is past it); what it sent back: cluster_replies(). */
static int recv_from(cluster *c, const char *from, const void *bytes,
                     size_t len, uint64_t now)
{
    cluster_run_until(c, now);
    return cluster_deliver(c, 0, from, bytes, len);
}
#define RECV(c, lit, now) recv_from(c, PEER, lit, sizeof(lit) - 1, now)

static bool sent_is(const cluster_packet *o, const char *to,
                    const char *bytes, size_t len)
{
    return strcmp(o->to_addr, to) == 0 && o->len == len &&
           memcmp(o->data, bytes, len) == 0;
}
#define SENT_IS(o, lit) sent_is(o, PEER, lit, sizeof(lit) - 1)

/* The peer's first digest names it (at version 0): it is no stranger
 * after that, and live, since the digest came from it. */
static void introduce(cluster *c)
{
    check(RECV(c, "\x02" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
               0) == SB_OK);
}

/* True if the digest message `o` holds exactly these entries (of
 * `entry_len` bytes each), in any order: digests are shuffled. */
static bool digest_holds(const cluster_packet *o, int type,
                         const char *const *entries, int n, size_t entry_len)
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
    cluster *c = engine(512);
    const cluster_packets *r = cluster_replies(c);
    check(cluster_set(c, 0, "k", "v") == SB_OK); /* our version 1 */
    introduce(c);

    /* a digest request that names the peer (version 0) and us (0) */
    check(RECV(c, "\x01"
                  ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00"
                  ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
               MS) == SB_OK);
    check(r->n == 2);
    /* first the delta: our key k = v at version 1 */
    check(SENT_IS(&r->p[0], "\x03" ADDR13 US "\x01k\x01v"
                                "\x00\x00\x00\x00\x00\x00\x00\x01"));
    /* then our digest as a response: us at 1, the peer at 0 */
    const char *entries[] = {
        ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x01",
        ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
    };
    check(strcmp(r->p[1].to_addr, PEER) == 0);
    check(digest_holds(&r->p[1], SB_REF_DIGEST_RESPONSE, entries, 2, 22));
    /* its digests came from the peer itself: proof of life */
    check(cluster_events_of(c, 0).joins == 1);

    /* a digest response gets the delta only, and an up-to-date one
     * nothing at all */
    check(RECV(c, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
               2 * MS) == SB_OK);
    check(r->n == 1);
    check(SENT_IS(&r->p[0], "\x03" ADDR13 US "\x01k\x01v"
                                "\x00\x00\x00\x00\x00\x00\x00\x01"));
    check(RECV(c, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x01",
               3 * MS) == SB_OK);
    check(r->n == 0);
    /* an empty request (a digest of nothing) does not name us, as a
     * reference node's does not name a peer it holds down: it gets all
     * our keys, then our digest */
    check(RECV(c, "\x01", 4 * MS) == SB_OK);
    check(r->n == 2);
    check(SENT_IS(&r->p[0], "\x03" ADDR13 US "\x01k\x01v"
                                "\x00\x00\x00\x00\x00\x00\x00\x01"));
    check(digest_holds(&r->p[1], SB_REF_DIGEST_RESPONSE, entries, 2, 22));
    cluster_free(c);
}

static void test_delta_applied_key_by_key(void **state)
{
    (void)state;
    cluster *c = engine(512);
    const cluster_packets *r = cluster_replies(c);
    /* the peer's digest makes it live; then its delta: role = db at
     * version 5 and zone = a at 3 (out of version order) */
    check(RECV(c, "\x02" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x05",
               MS) == SB_OK);
    check(r->n == 0);
    check(RECV(c, "\x03"
                  ADDR13 PEER "\x04role\x02" "db"
                  "\x00\x00\x00\x00\x00\x00\x00\x05"
                  ADDR13 PEER "\x04zone\x01" "a"
                  "\x00\x00\x00\x00\x00\x00\x00\x03",
               2 * MS) == SB_OK);
    check(r->n == 0); /* a delta is never answered */
    check(cluster_holds(c, 0, PEER, "role", "db"));
    check(cluster_holds(c, 0, PEER, "zone", "a"));
    sb_member m;
    check(sb_engine_find(cluster_engine(c, 0), PEER, &m) == SB_OK);
    check(m.max_version == 5 && m.keys == 2 && m.status == SB_STATUS_LIVE);
    check(cluster_events_of(c, 0).updates == 2);
    /* an older or equal version of a key changes nothing */
    check(RECV(c, "\x03" ADDR13 PEER "\x04role\x03old"
                  "\x00\x00\x00\x00\x00\x00\x00\x04",
               3 * MS) == SB_OK);
    check(cluster_holds(c, 0, PEER, "role", "db") &&
          cluster_events_of(c, 0).updates == 2);
    /* our digest now says 5 for the peer, and answers a request that
     * knows nothing of it with its keys in version order (from a node we
     * know: its first digest named it) */
    check(recv_from(c, "10.0.0.3:7946",
                    "\x02" ADDR13 "10.0.0.3:7946"
                    "\x00\x00\x00\x00\x00\x00\x00\x00",
                    23, 4 * MS) == SB_OK);
    recv_from(c, "10.0.0.3:7946",
              "\x01" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00", 23,
              4 * MS);
    check(r->n == 2);
    static const char both[] = "\x03"
                               ADDR13 PEER "\x04zone\x01" "a"
                               "\x00\x00\x00\x00\x00\x00\x00\x03"
                               ADDR13 PEER "\x04role\x02" "db"
                               "\x00\x00\x00\x00\x00\x00\x00\x05";
    check(sent_is(&r->p[0], "10.0.0.3:7946", both, sizeof(both) - 1));
    cluster_free(c);
}

static void test_round_sends_digest_request(void **state)
{
    (void)state;
    cluster *c = engine(512);
    sb_engine *e = cluster_engine(c, 0);
    check(RECV(c, "\x02" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
               MS) == SB_OK);
    cluster_capture(c, 0, 0);
    uint64_t now = sb_engine_next_deadline(e);
    cluster_run_until(c, now);
    /* one round: one digest request, to the one peer we know */
    const cluster_packets *sent = cluster_captured(c);
    check(sent->n == 1);
    const char *entries[] = {
        ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
        ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
    };
    check(strcmp(sent->p[0].to_addr, PEER) == 0);
    check(digest_holds(&sent->p[0], SB_REF_DIGEST_REQUEST, entries, 2, 22));
    /* one round per interval */
    check(sb_engine_next_deadline(e) == now + 100 * MS);
    cluster_free(c);
}

/* The digest requests the engine sent to PEER in its next round. */
static uint32_t requests_to_peer(cluster *c, const cluster_packet **last)
{
    sb_engine *e = cluster_engine(c, 0);
    cluster_capture(c, 0, 0);
    cluster_run_until(c, sb_engine_next_deadline(e));
    const cluster_packets *sent = cluster_captured(c);
    uint32_t n = 0;
    for (size_t k = 0; k < sent->n; k++)
        if (strcmp(sent->p[k].to_addr, PEER) == 0 &&
            sent->p[k].data[0] == SB_REF_DIGEST_REQUEST) {
            *last = &sent->p[k];
            n++;
        }
    return n;
}

/*
 * Shy of a seed that knows no one (docs/compat.md, section 6): our
 * requests to it name no one, so that it still asks its own seeds at
 * its first round, until its digest names another node; then they name
 * us. A seed that answers with an empty digest is one of ours: no shyness
 * with it. PEER (node 1, not running) is our seed, scripted here.
 */
static void test_shy_of_a_seed_that_knows_no_one(void **state)
{
    (void)state;
    for (int ours = 0; ours < 2; ours++) {
        cluster_config cfg;
        config(&cfg, 512);
        cfg.nodes = 2;
        cfg.seeds = 2;
        cluster *c = cluster_new(&cfg);
        cluster_crash(c, 1);
        const cluster_packet *o = NULL;
        check(requests_to_peer(c, &o) == 1 && o->len == 1);
        uint64_t now = cluster_now(c) + MS;
        if (ours) {
            /* one of ours answers a stranger's empty request in kind */
            check(RECV(c, "\x02", now) == SB_OK);
            check(requests_to_peer(c, &o) == 1 && o->len > 1);
            cluster_free(c);
            continue;
        }
        /* it knows no one but itself: we stay shy */
        check(RECV(c, "\x02" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
                   now) == SB_OK);
        check(requests_to_peer(c, &o) == 1 && o->len == 1);
        /* it knows another node: we name ourselves */
        check(RECV(c, "\x02" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00"
                      ADDR13 "10.0.0.9:7946\x00\x00\x00\x00\x00\x00\x00\x00",
                   cluster_now(c) + MS) == SB_OK);
        uint32_t full = 0;
        for (int round = 0; round < 8; round++)
            if (requests_to_peer(c, &o))
                full += o->len > 1;
        check(full > 0);
        cluster_free(c);
    }
}

/*
 * A live peer silent for half the time that convicts is a suspect: every
 * round asks it for a digest of its own, besides the round's random
 * peer, until it answers or is convicted; the reference's rule convicts
 * after threshold x mean of silence (phi_threshold / ln 10 on our
 * scale). Another peer keeps talking meanwhile.
 */
static void test_suspect_asked_every_round(void **state)
{
    (void)state;
    cluster *c = engine(512);
    sb_engine *e = cluster_engine(c, 0);
    const char *other = "10.0.0.3:7946";
    const char other_digest[] = "\x02" ADDR13 "10.0.0.3:7946"
                                "\x00\x00\x00\x00\x00\x00\x00\x00";
    introduce(c);
    check(recv_from(c, other, other_digest, sizeof(other_digest) - 1, MS) ==
          SB_OK);
    double half = 8.0 / 2.302585092994046 / 2;
    uint32_t suspected_rounds = 0;
    bool convicted = false;
    for (int round = 0; round < 400 && !convicted; round++) {
        uint64_t now = sb_engine_next_deadline(e);
        check(recv_from(c, other, other_digest, sizeof(other_digest) - 1,
                        now - MS) == SB_OK);
        double phi = sb_engine_phi(e, PEER, now);
        cluster_capture(c, 0, 0);
        cluster_run_until(c, now);
        sb_member m;
        check(sb_engine_find(e, PEER, &m) == SB_OK);
        convicted = m.status != SB_STATUS_LIVE;
        if (convicted || phi <= half)
            continue;
        suspected_rounds++;
        const cluster_packets *sent = cluster_captured(c);
        bool asked = false;
        for (size_t i = 0; i < sent->n; i++)
            asked |= strcmp(sent->p[i].to_addr, PEER) == 0 &&
                     sent->p[i].data[0] == SB_REF_DIGEST_REQUEST;
        check(asked);
    }
    check(convicted && suspected_rounds >= 2);
    cluster_free(c);
}

/* ---- malformed input: dropped and counted, never answered ------------------ */

static void test_malformed_dropped_and_counted(void **state)
{
    (void)state;
    cluster *c = engine(512);
    sb_engine *e = cluster_engine(c, 0);
    check(cluster_set(c, 0, "k", "v") == SB_OK);
    cluster_capture(c, 0, 0); /* all it sends from here */
    cluster_run_until(c, MS);
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
        /* an address that is not canonical "ip:port": a name, a line
         * break that would forge a log line, another spelling */
        { "\x01\x03" "a:1" "\x00\x00\x00\x00\x00\x00\x00\x01", 13,
          SB_DROP_MALFORMED },
        { "\x01\x07" "a:1\nb:2" "\x00\x00\x00\x00\x00\x00\x00\x01", 17,
          SB_DROP_MALFORMED },
        { "\x02\x0b" "10.0.0.1:07" "\x00\x00\x00\x00\x00\x00\x00\x01", 21,
          SB_DROP_MALFORMED },
        { "\x03\x0e" "node.local:100" "\x01k\x01v"
          "\x00\x00\x00\x00\x00\x00\x00\x01", 28, SB_DROP_MALFORMED },
        /* an address with a NUL byte would alias another */
        { "\x01\x04" "a\0bc" "\x00\x00\x00\x00\x00\x00\x00\x00", 14,
          SB_DROP_MALFORMED },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t before = cluster_drops(c, 0, bad[i].drop);
        check(cluster_deliver(c, 0, PEER, bad[i].bytes, bad[i].len) ==
              SB_EINVAL);
        check(cluster_drops(c, 0, bad[i].drop) == before + 1);
    }
    check(cluster_captured(c)->n == 0);
    check(sb_engine_member_count(e) == 1); /* learned nothing */
    /* a sender address longer than any address (only a caller of the
     * engine can make one) */
    char longer[300];
    memset(longer, '1', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = 0;
    uint64_t before = cluster_drops(c, 0, SB_DROP_MALFORMED);
    check(cluster_deliver(c, 0, longer, "\x01", 1) == SB_EINVAL);
    check(cluster_drops(c, 0, SB_DROP_MALFORMED) == before + 1);
    /* the wire of the other kind is not ours either */
    check(cluster_deliver(c, 0, PEER, "SB\x02\x01\0\0\0\0", 8) ==
          SB_EINVAL);
    /* a peer's bad datagram is a counted drop (sb_engine_recv() says
     * SB_OK, the harness says SB_EINVAL from the count); the caller's own
     * mistakes are errors, and no drop */
    uint64_t dropped = cluster_drops(c, 0, -1);
    check(sb_engine_recv(e, PEER, (const uint8_t *)"\x09", 1, MS) == SB_OK);
    check(cluster_drops(c, 0, -1) == dropped + 1);
    sb_stats st;
    sb_engine_stats(e, &st);
    before = st.packets_in;
    check(cluster_deliver(c, 0, NULL, "\x01", 1) == SB_EINVAL);
    check(cluster_deliver(c, 0, PEER, NULL, 1) == SB_EINVAL);
    check(sb_engine_recv(NULL, PEER, (const uint8_t *)"\x01", 1, MS) ==
          SB_EINVAL);
    sb_engine_stats(e, &st);
    check(st.packets_in == before);
    check(cluster_captured(c)->n == 0 && sb_engine_member_count(e) == 1);
    cluster_free(c);
}

/* ---- what the format cannot carry ---------------------------------------- */

static void test_refused(void **state)
{
    (void)state;
    cluster_config cfg;
    cluster *c;
    static const uint8_t key[SB_KEY_SIZE] = { 1 };
    config(&cfg, 512);
    cfg.engine.keys = key;
    cfg.engine.nkeys = 1;
    check(cluster_try(&cfg, &c) == SB_ECONFIG);
    config(&cfg, 512);
    cfg.engine.cluster = "other";
    check(cluster_try(&cfg, &c) == SB_ECONFIG);
    config(&cfg, 512);
    cfg.engine.wire = (sb_wire)7;
    check(cluster_try(&cfg, &c) == SB_ECONFIG);
    config(&cfg, 1 + 3 + 13 + 1 + 8 - 1); /* one byte short of a key */
    check(cluster_try(&cfg, &c) == SB_ECONFIG);
    config(&cfg, 512);
    cfg.generation_base = UINT64_MAX >> 2; /* versions start at base + 1 */
    check(cluster_try(&cfg, &c) == SB_ECONFIG);
    config(&cfg, 1 + 3 + 13 + 1 + 8);
    check(cluster_try(&cfg, &c) == SB_OK);
    check(cluster_set(c, 0, "k", "") == SB_OK);
    check(cluster_set(c, 0, "k", "v") == SB_ETOOBIG);
    cluster_free(c);

    c = engine(65507);
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[299] = 0;
    big[255] = 0;
    check(cluster_set(c, 0, "k", big) == SB_OK); /* 255 bytes: the most */
    big[255] = 'x';
    big[256] = 0;
    check(cluster_set(c, 0, "k", big) == SB_ETOOBIG);
    for (size_t d = 0; d < 64; d++) /* never read, never wrapped */
        check(cluster_set_bytes(c, 0, "k", 1, "x", SIZE_MAX - d) ==
              SB_ETOOBIG);
    check(cluster_set(c, 0, big, "v") == SB_EINVAL); /* a 256-byte key */
    check(cluster_del(c, 0, "k") == SB_ESTATE);
    check(cluster_leave(c, 0) == SB_ESTATE);
    check(sb_engine_key_install(cluster_engine(c, 0), key) == SB_ESTATE);
    sb_member m;
    check(sb_engine_find(cluster_engine(c, 0), US, &m) == SB_OK &&
          m.generation == 1);
    cluster_free(c);

    /* at 512 bytes, the longest key and value cannot travel */
    c = engine(512);
    big[255] = 0;
    check(cluster_set(c, 0, big, big) == SB_ETOOBIG);
    check(cluster_set_bytes(c, 0, big, 200, big, 255) == SB_OK);
    cluster_free(c);
}

/* A key a bound refuses stops the node's later entries in that message:
 * our version of the node stays below it, so that it is asked for again,
 * instead of passing it for good. */
static void test_refused_key_leaves_no_gap(void **state)
{
    (void)state;
    cluster_config cfg;
    config(&cfg, 512);
    cfg.engine.max_state_bytes = 10;
    cluster *c;
    check(cluster_try(&cfg, &c) == SB_OK);
    check(RECV(c, "\x03"
                  ADDR13 PEER "\x01" "a" "\x01" "1"
                  "\x00\x00\x00\x00\x00\x00\x00\x01"
                  ADDR13 PEER "\x01" "b" "\x0a" "0123456789"
                  "\x00\x00\x00\x00\x00\x00\x00\x02"
                  ADDR13 PEER "\x01" "c" "\x01" "3"
                  "\x00\x00\x00\x00\x00\x00\x00\x03",
               MS) == SB_OK);
    sb_member m;
    check(sb_engine_find(cluster_engine(c, 0), PEER, &m) == SB_OK);
    check(m.keys == 1 && m.max_version == 1);
    check(cluster_drops(c, 0, SB_DROP_LIMIT_BYTES) == 1);
    cluster_free(c);
}

/* ---- size limits ------------------------------------------------------------ */

/* Our deltas stay within max_message_size and, exchange after exchange,
 * carry every key in version order; a reference peer's oversized delta
 * is taken whole. */
static void test_size_limit_both_ways(void **state)
{
    (void)state;
    cluster *c = engine(512);
    const cluster_packets *sent = cluster_replies(c);
    char key[8], value[64];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        check(cluster_set(c, 0, key, value) == SB_OK);
    }
    introduce(c);
    uint64_t have = 0;
    int exchanges = 0;
    while (have < 40 && exchanges < 40) {
        uint8_t req[1 + 22] = { SB_REF_DIGEST_RESPONSE, 13 };
        memcpy(req + 2, US, 13);
        for (int i = 0; i < 8; i++)
            req[15 + i] = (uint8_t)(have >> (56 - 8 * i));
        check(recv_from(c, PEER, req, sizeof(req), MS) == SB_OK);
        check(sent->n == 1 && sent->p[0].data[0] == SB_REF_DELTA);
        sb_cursor cur = { sent->p[0].data + 1,
                          sent->p[0].data + sent->p[0].len };
        sb_ref_entry r;
        int got = 0;
        while (sb_ref_next(&cur, SB_REF_DELTA, &r)) {
            check(r.version == have + 1); /* in order, no gap */
            have = r.version;
            got++;
        }
        check(got > 0);
        exchanges++;
    }
    check(have == 40 && exchanges > 1);
    check(cluster_largest_sent(c, 0) <= 512);
    cluster_free(c);

    /* 40 keys in one 3,000-byte datagram, as a reference node may send */
    c = engine(512);
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
    check(recv_from(c, PEER, big, len, MS) == SB_OK);
    sb_member m;
    check(sb_engine_find(cluster_engine(c, 0), PEER, &m) == SB_OK &&
          m.keys == 40 && m.max_version == 40);
    cluster_free(c);

    /* a reference node's key too large for any message of ours is not
     * relayed, nor is what follows it: passing it over would make the
     * receiver's version of the node skip it for good (the receiver gets
     * them from reference nodes) */
    c = engine(512);
    sent = cluster_replies(c);
    char v255[256];
    memset(v255, 'v', 255);
    v255[255] = 0;
    wr = (sb_writer){ big, big, big + sizeof(big) };
    sb_ref_put_type(&wr, SB_REF_DELTA);
    sb_ref_put_delta(&wr, PEER, 13, (const uint8_t *)v255, 255,
                     (const uint8_t *)v255, 255, 1);
    sb_ref_put_delta(&wr, PEER, 13, (const uint8_t *)"x", 1,
                     (const uint8_t *)"y", 1, 2);
    check(recv_from(c, PEER, big, (size_t)(wr.p - big), MS) == SB_OK);
    check(sb_engine_find(cluster_engine(c, 0), PEER, &m) == SB_OK &&
          m.keys == 2);
    check(recv_from(c, "10.0.0.3:7946",
                    "\x02" ADDR13 "10.0.0.3:7946"
                    "\x00\x00\x00\x00\x00\x00\x00\x00",
                    23, 2 * MS) == SB_OK);
    recv_from(c, "10.0.0.3:7946",
              "\x02" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00", 23,
              3 * MS);
    check(sent->n == 0);
    cluster_free(c);
}

/* A digest from an address that is neither known nor a seed gets no
 * delta and a digest no larger than itself, however often it comes: a
 * forged source cannot make us an amplifier. A digest that names its
 * sender makes it known (as a node's own digest does), and the next one
 * gets the whole. */
static void test_stranger_gets_no_larger_reply(void **state)
{
    (void)state;
    cluster *c = engine(512);
    const cluster_packets *r = cluster_replies(c);
    char key[8];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        check(cluster_set(c, 0, key, "some value of a key") == SB_OK);
    }
    static const char ask[] = "\x01" ADDR13 US
                              "\x00\x00\x00\x00\x00\x00\x00\x00";
    for (int i = 0; i < 3; i++) {
        check(RECV(c, ask, MS) == SB_OK);
        check(r->n == 1 && r->p[0].data[0] == SB_REF_DIGEST_RESPONSE &&
              r->p[0].len <= sizeof(ask) - 1);
    }
    static const char me[] = "\x01" ADDR13 US
                             "\x00\x00\x00\x00\x00\x00\x00\x00"
                             ADDR13 PEER
                             "\x00\x00\x00\x00\x00\x00\x00\x00";
    check(RECV(c, me, 2 * MS) == SB_OK);
    check(r->n == 1 && r->p[0].len <= sizeof(me) - 1);
    check(RECV(c, me, 3 * MS) == SB_OK);
    check(r->n == 2 && cluster_largest(r) > 400 &&
          cluster_largest(r) <= 512);
    cluster_free(c);
}

/* ---- liveness --------------------------------------------------------------- */

static void test_direct_digests_are_heartbeats(void **state)
{
    (void)state;
    cluster *c = engine(512);
    sb_engine *e = cluster_engine(c, 0);
    uint64_t now = 0;
    /* the peer sends us a digest every 100 ms for 10 s */
    for (int i = 0; i < 100; i++) {
        now += 100 * MS;
        check(RECV(c, "\x01" ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
                   now) == SB_OK);
    }
    cluster_events ev = cluster_events_of(c, 0);
    check(ev.joins == 1 && ev.leaves == 0);
    /* a node that only others name is known but not live */
    check(RECV(c, "\x02" ADDR13 "10.0.0.3:7946"
                  "\x00\x00\x00\x00\x00\x00\x00\x00",
               now) == SB_OK);
    sb_member m;
    check(sb_engine_find(e, "10.0.0.3:7946", &m) == SB_OK &&
          m.status == SB_STATUS_JOINING);
    /* then silence: the peer is reported down */
    cluster_wait(c, 30 * SEC, cluster_events_of(c, 0).leaves);
    check(cluster_events_of(c, 0).leaves == 1);
    check(sb_engine_find(e, PEER, &m) == SB_OK &&
          m.status == SB_STATUS_DOWN);
    /* while down, it is sent a digest request now and then */
    cluster_capture(c, 0, 0);
    cluster_run(c, 1 * SEC);
    const cluster_packets *sent = cluster_captured(c);
    bool probed = false;
    for (size_t i = 0; i < sent->n; i++)
        probed = probed || (strcmp(sent->p[i].to_addr, PEER) == 0 &&
                            sent->p[i].data[0] == SB_REF_DIGEST_REQUEST);
    check(probed);
    /* and one digest from it brings it back */
    check(RECV(c, "\x02", cluster_now(c)) == SB_OK);
    check(cluster_events_of(c, 0).joins == 2);
    check(sb_engine_find(e, PEER, &m) == SB_OK &&
          m.status == SB_STATUS_LIVE);
    cluster_free(c);
}

/* An address only named, never heard from, is "up" for a while (as among
 * reference nodes), then down without an event, and out of our digests,
 * so that it dies out. */
static void test_named_address_that_never_answers(void **state)
{
    (void)state;
    cluster *c = engine(512);
    sb_engine *e = cluster_engine(c, 0);
    introduce(c);
    check(RECV(c, "\x02" ADDR13 "10.9.9.9:7946"
                  "\x00\x00\x00\x00\x00\x00\x00\x00",
               0) == SB_OK);
    sb_member m;
    check(sb_engine_find(e, "10.9.9.9:7946", &m) == SB_OK &&
          m.status == SB_STATUS_JOINING);
    uint64_t now = 0;
    uint32_t leaves = cluster_events_of(c, 0).leaves;
    for (int i = 0; i < 600; i++) {
        now += 100 * MS;
        /* the peer stays live: a digest from it every 100 ms */
        check(RECV(c, "\x02", now) == SB_OK);
    }
    check(sb_engine_find(e, "10.9.9.9:7946", &m) == SB_OK &&
          m.status == SB_STATUS_DOWN);
    check(cluster_events_of(c, 0).leaves == leaves); /* never live: no event */
    check(RECV(c, "\x01", now) == SB_OK);
    const cluster_packets *r = cluster_replies(c);
    const char *entries[] = {
        ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
        ADDR13 PEER "\x00\x00\x00\x00\x00\x00\x00\x00",
    };
    check(r->n == 1 &&
          digest_holds(&r->p[0], SB_REF_DIGEST_RESPONSE, entries, 2, 22));
    cluster_free(c);

    /* never later than the dead-node grace; and a threshold so large
     * that nothing is ever convicted never makes it go at once */
    cluster_config cfg;
    config(&cfg, 512);
    cfg.engine.dead_grace_ns = 2 * SEC;
    cfg.engine.phi_threshold = 1e30;
    check(cluster_try(&cfg, &c) == SB_OK);
    e = cluster_engine(c, 0);
    introduce(c);
    check(RECV(c, "\x02" ADDR13 "10.9.9.9:7946"
                  "\x00\x00\x00\x00\x00\x00\x00\x00",
               0) == SB_OK);
    cluster_run(c, 1500 * MS);
    check(sb_engine_find(e, "10.9.9.9:7946", &m) == SB_OK &&
          m.status == SB_STATUS_JOINING);
    cluster_run(c, 1 * SEC);
    check(sb_engine_find(e, "10.9.9.9:7946", &m) == SB_ENOTFOUND);
    cluster_free(c);
}

/* ---- restart --------------------------------------------------------------- */

/* Our versions start at the generation (the runtime's wall clock): a
 * restarted node's keys supersede its previous incarnation's at every
 * peer, however many it had written. */
static void test_restart_supersedes(void **state)
{
    (void)state;
    cluster_config cfg;
    config(&cfg, 512);
    cluster *c;
    check(cluster_try(&cfg, &c) == SB_OK);
    check(cluster_set(c, 0, "a", "1") == SB_OK &&
          cluster_set(c, 0, "k", "old") == SB_OK);
    /* restarted later: generation base + 999 ns + 1 = 1000 */
    cluster_run_until(c, 999);
    check(cluster_restart(c, 0) == SB_OK);
    check(cluster_set(c, 0, "k", "new") == SB_OK &&
          cluster_set(c, 0, "a", "2") == SB_OK &&
          cluster_set(c, 0, "b", "x") == SB_OK);
    introduce(c);
    /* the peer holds the old incarnation at version 2 */
    check(RECV(c, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x02",
               MS) == SB_OK);
    check(SENT_IS(&cluster_replies(c)->p[0], "\x03"
                  ADDR13 US "\x01k\x03new" "\x00\x00\x00\x00\x00\x00\x03\xe8"
                  ADDR13 US "\x01" "a" "\x01" "2"
                  "\x00\x00\x00\x00\x00\x00\x03\xe9"
                  ADDR13 US "\x01" "b" "\x01" "x"
                  "\x00\x00\x00\x00\x00\x00\x03\xea"));
    sb_member m;
    check(sb_engine_find(cluster_engine(c, 0), US, &m) == SB_OK &&
          m.generation == 1);
    cluster_free(c);
}

/* True if `r` holds a message of this type. */
static bool replies_hold(const cluster_packets *r, int type)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->p[i].len && r->p[i].data[0] == type)
            return true;
    return false;
}

/* A digest read within a round of a pause may have waited in our socket
 * through it, sent by an incarnation of the peer that has since
 * restarted: a delta computed from it would start above what the new
 * incarnation holds, which would take it and never get the keys below.
 * It gets our digest, no delta; a round on, digests get deltas again. */
static void test_digest_read_after_a_pause_gets_no_delta(void **state)
{
    (void)state;
    cluster *c = engine(512);
    const cluster_packets *r = cluster_replies(c);
    check(cluster_set(c, 0, "k", "v") == SB_OK); /* our version 1 */
    introduce(c);
    cluster_pause(c, 0); /* no rounds for a second */
    cluster_run(c, SEC);
    check(RECV(c, "\x01" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
               cluster_now(c)) == SB_OK);
    check(replies_hold(r, SB_REF_DIGEST_RESPONSE));
    check(!replies_hold(r, SB_REF_DELTA));
    cluster_resume(c, 0);
    check(RECV(c, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
               cluster_now(c) + 50 * MS) == SB_OK);
    check(r->n == 0);
    check(RECV(c, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x00",
               cluster_now(c) + 50 * MS) == SB_OK);
    check(r->n == 1);
    check(SENT_IS(&r->p[0], "\x03" ADDR13 US "\x01k\x01v"
                                "\x00\x00\x00\x00\x00\x00\x00\x01"));
    cluster_free(c);
}

/* Should the clock have gone back, the peers' claims are the backstop:
 * when a peer names a version of ours above what we hold, our versions
 * continue above it, so that our keys supersede. */
static void test_restart_outlives_old_versions(void **state)
{
    (void)state;
    cluster *c = engine(512);
    sb_engine *e = cluster_engine(c, 0);
    const cluster_packets *r = cluster_replies(c);
    check(cluster_set(c, 0, "k", "new") == SB_OK); /* version 1 */
    introduce(c);
    /* the peer holds our previous incarnation up to version 7: k goes
     * out again at 8, in the answer to that very digest */
    check(RECV(c, "\x02" ADDR13 US "\x00\x00\x00\x00\x00\x00\x00\x07",
               MS) == SB_OK);
    sb_member m;
    check(sb_engine_find(e, US, &m) == SB_OK && m.max_version == 8);
    check(r->n == 1);
    check(SENT_IS(&r->p[0], "\x03" ADDR13 US "\x01k\x03new"
                                "\x00\x00\x00\x00\x00\x00\x00\x08"));
    /* a delta about us (the peer's copy of the old k) moves us on too,
     * and is not stored: our own keys are ours */
    check(RECV(c, "\x03" ADDR13 US "\x01k\x03old"
                  "\x00\x00\x00\x00\x00\x00\x00\x09",
               3 * MS) == SB_OK);
    check(cluster_holds(c, 0, US, "k", "new"));
    check(sb_engine_find(e, US, &m) == SB_OK && m.max_version == 10);
    check(cluster_set(c, 0, "j", "x") == SB_OK);
    check(sb_engine_find(e, US, &m) == SB_OK && m.max_version == 11);
    cluster_free(c);
}

int main(int argc, char **argv)
{
    printf("test_reference: seed %llu\n",
           (unsigned long long)cluster_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_answered_by_delta_then_response),
        cmocka_unit_test(test_delta_applied_key_by_key),
        cmocka_unit_test(test_round_sends_digest_request),
        cmocka_unit_test(test_suspect_asked_every_round),
        cmocka_unit_test(test_shy_of_a_seed_that_knows_no_one),
        cmocka_unit_test(test_malformed_dropped_and_counted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_refused_key_leaves_no_gap),
        cmocka_unit_test(test_size_limit_both_ways),
        cmocka_unit_test(test_stranger_gets_no_larger_reply),
        cmocka_unit_test(test_direct_digests_are_heartbeats),
        cmocka_unit_test(test_named_address_that_never_answers),
        cmocka_unit_test(test_restart_supersedes),
        cmocka_unit_test(test_restart_outlives_old_versions),
        cmocka_unit_test(test_digest_read_after_a_pause_gets_no_delta),
    };
    return RUN_TESTS(tests, argc, argv);
}
