/*
 * Engine unit tests: no threads, no sockets. A few engines form a
 * simulated cluster (tests/harness), and hand-made packets handed to one
 * of them play a hostile or scripted peer.
 */
#define _GNU_SOURCE /* memmem */
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

#include "addr_text.h"
#include "codec.h"
#include "engine.h"
#include "internal.h" /* SWEEP_BURST, WAVES_LEAST, PUSH_REST */
#include "rng.h"

/* A cluster of engines: node 0 everyone's seed, waits in 10 ms steps,
 * `max_message`-byte messages, sealed with `nkeys` keys (none: plaintext). */
static cluster *engines(uint32_t n, size_t max_message, const uint8_t *keys,
                        uint32_t nkeys)
{
    cluster_config cfg;
    cluster_config_init(&cfg, n);
    cfg.seeds = 1;
    cfg.step_ns = 10 * MS;
    cfg.engine.max_message_size = max_message;
    cfg.engine.keys = keys;
    cfg.engine.nkeys = nkeys;
    return cluster_new(&cfg);
}

static void send_nowhere(void *ud, const char *to, const uint8_t *buf,
                         size_t len)
{
    (void)ud, (void)to, (void)buf, (void)len;
}

/* A text snapshot of everything an engine believes, for comparisons.
 * Our own heartbeat is left out: it counts the SYNs we answer, so any
 * valid SYN moves it, as it should. */
static char *snapshot(const sb_engine *e)
{
    size_t cap = 1 << 20, len = 0;
    char *s = malloc(cap);
    s[0] = 0;
    for (size_t i = 0; i < sb_engine_member_count(e); i++) {
        sb_member info;
        sb_engine_member(e, i, &info);
        len += (size_t)snprintf(s + len, cap - len,
                                "%s gen=%llu hb=%llu max=%llu st=%d k=%u\n",
                                info.addr, (unsigned long long)info.generation,
                                (unsigned long long)(info.self
                                                         ? 0
                                                         : info.heartbeat),
                                (unsigned long long)info.max_version,
                                info.status, info.keys);
    }
    return s;
}

/* ---- local writes ----------------------------------------------------- */

static void test_local_writes(void **state)
{
    (void)state;
    cluster *c = engines(1, 512, NULL, 0);
    sb_engine *e = cluster_engine(c, 0);
    const char *self = sb_engine_addr(e);
    check(cluster_set(c, 0, "", "x") == SB_EINVAL);
    char big_key[257];
    memset(big_key, 'k', 256);
    big_key[256] = 0;
    check(cluster_set(c, 0, big_key, "x") == SB_EINVAL);
    big_key[255] = 0;
    check(cluster_set(c, 0, big_key, "x") == SB_OK);
    /* a value length near SIZE_MAX is too big, not a wrapped small one,
     * on both wires (the value is never read) */
    for (size_t d = 0; d < 64; d++)
        check(cluster_set_bytes(c, 0, "k", 1, "x", SIZE_MAX - d) ==
              SB_ETOOBIG);
    check(cluster_set(c, 0, "a", "1") == SB_OK);
    sb_member info;
    sb_engine_find(e, self, &info);
    uint64_t max = info.max_version;
    check(cluster_set(c, 0, "a", "1") == SB_OK); /* unchanged: no version */
    sb_engine_find(e, self, &info);
    check(info.max_version == max);
    check(cluster_holds(c, 0, self, "a", "1"));
    check(cluster_del(c, 0, "zz") == SB_ENOTFOUND);
    check(cluster_del(c, 0, "a") == SB_OK);
    check(cluster_del(c, 0, "a") == SB_ENOTFOUND);
    check(cluster_holds(c, 0, self, "a", NULL));
    check(cluster_holds(c, 0, "10.9.9.9:1", "a", NULL));
    check(cluster_leave(c, 0) == SB_OK);
    check(cluster_leave(c, 0) == SB_ELEFT);
    check(cluster_set(c, 0, "b", "2") == SB_ELEFT);
    cluster_free(c);
}

static void test_config_errors(void **state)
{
    (void)state;
    sb_engine_config c;
    sb_engine *e;
    sb_engine_config_init(&c);
    c.addr = "10.0.0.1:1";
    c.generation = 1;
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG); /* no send callback */
    c.send = send_nowhere;
    c.interval_ns = 0;
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    c.interval_ns = 100 * MS;
    c.max_message_size = 20;
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    c.max_message_size = 512;
    c.addr = "";
    check(sb_engine_new(&c, 0, &e) == SB_EADDR);
    /* peers would drop every delta naming another spelling */
    const char *bad_addrs[] = { "node-a:1", "10.0.0.1:07946", "10.0.0.1",
                                "[::FFFF:10.0.0.1]:1" };
    char why[160];
    for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
        c.addr = bad_addrs[i];
        check(sb_engine_check_config(&c, why, sizeof(why)) == SB_EADDR &&
              strstr(why, "canonical") != NULL);
        check(sb_engine_new(&c, 0, &e) == SB_EADDR);
    }
    c.addr = "10.0.0.1:1";
    c.generation = 0;
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    c.generation = 1;
    /* a longer window would freeze the detector's single-precision mean */
    c.phi_window = 0;
    check(sb_engine_check_config(&c, why, sizeof(why)) == SB_ECONFIG &&
          strstr(why, "phi_window"));
    c.phi_window = 100001;
    check(sb_engine_check_config(&c, why, sizeof(why)) == SB_ECONFIG &&
          strstr(why, "phi_window") && strstr(why, "100000"));
    c.phi_window = 100000;
    check(sb_engine_check_config(&c, why, sizeof(why)) == SB_OK);
    c.phi_window = 1000;
    /* a record counts its state's bytes in 32 bits */
    c.max_state_bytes = (size_t)UINT32_MAX + 1;
    check(sb_engine_check_config(&c, why, sizeof(why)) == SB_ECONFIG &&
          strstr(why, "max_state_bytes") && strstr(why, "4294967295"));
    c.max_state_bytes = UINT32_MAX;
    check(sb_engine_check_config(&c, why, sizeof(why)) == SB_OK);
    c.max_state_bytes = 1 << 20;
    /* one push tree a ring: at most 8, with monitors or without */
    c.push_fanout = 9;
    check(sb_engine_check_config(&c, why, sizeof(why)) == SB_ECONFIG &&
          strstr(why, "push_fanout") && strstr(why, "8"));
    c.push_fanout = 8;
    c.monitors = 0;
    check(sb_engine_new(&c, 0, &e) == SB_OK);
    sb_engine_free(e);
    c.push_fanout = 3;
    c.monitors = 4;
    /* the cap must hold 24 of our largest datagrams a second: the
     * error names the least that works */
    c.bandwidth = 24 * 512 - 1;
    check(sb_engine_check_config(&c, why, sizeof(why)) == SB_ECONFIG &&
          strstr(why, "bandwidth") && strstr(why, "12288"));
    c.bandwidth = 24 * 512;
    check(sb_engine_new(&c, 0, &e) == SB_OK);
    sb_engine_free(e);
    /* sealed: the seal's bytes count */
    uint8_t keys[SB_KEY_SIZE] = { 1 };
    c.keys = keys;
    c.nkeys = 1;
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    c.bandwidth = (uint32_t)(24 * (512 + SB_SEAL_OVERHEAD));
    check(sb_engine_new(&c, 0, &e) == SB_OK);
    sb_engine_free(e);
    /* a key of zeros (an array never filled) is no key: anyone could
     * open and forge what it seals; it was taken */
    uint8_t two[2 * SB_KEY_SIZE] = { 1 };
    c.keys = two;
    c.nkeys = 2;
    check(sb_engine_check_config(&c, why, sizeof(why)) == SB_ECONFIG &&
          strstr(why, "key 2 of 2 is all zeros"));
    check(sb_engine_new(&c, 0, &e) == SB_ECONFIG);
    c.nkeys = 1;
    check(sb_engine_new(&c, 0, &e) == SB_OK);
    check(sb_engine_key_install(e, two + SB_KEY_SIZE) == SB_EINVAL);
    sb_engine_free(e);
}

/* The largest entry sb_engine_set() accepts travels; one byte more is
 * refused. */
static void test_largest_entry_travels(void **state)
{
    (void)state;
    cluster *c = engines(2, 512, NULL, 0);
    static uint8_t value[600];
    memset(value, 'v', sizeof(value));
    size_t lo = 0, hi = sizeof(value);
    while (lo + 1 < hi) { /* the largest accepted value length */
        size_t mid = (lo + hi) / 2;
        int rc = cluster_set_bytes(c, 1, "big", 3, value, mid); /* probe */
        if (rc == SB_OK)
            lo = mid;
        else
            hi = mid;
        check(rc == SB_OK || rc == SB_ETOOBIG);
    }
    check(lo > 300);
    check(cluster_set_bytes(c, 0, "big", 3, value, lo) == SB_OK);
    check(cluster_set_bytes(c, 0, "big", 3, value, lo + 1) == SB_ETOOBIG);
    cluster_run(c, 5 * SEC);
    const uint8_t *v;
    size_t len;
    check(sb_engine_get(cluster_engine(c, 1), cluster_addr(c, 0),
                        (const uint8_t *)"big", 3, &v, &len) == SB_OK);
    check(len == lo && memcmp(v, value, lo) == 0);
    check(cluster_largest_sent(c, 0) <= 512 &&
          cluster_largest_sent(c, 1) <= 512);
    cluster_free(c);
}

/* ---- reconciliation --------------------------------------------------- */

/* B's copy of A's keys is a prefix of A's history: every key of A with
 * version <= B's max is held by B at the same version, and B holds no
 * other key of A. */
static bool no_gap(const sb_engine *a, const sb_engine *b)
{
    const char *addr = sb_engine_addr(a);
    sb_member ib;
    if (sb_engine_find(b, addr, &ib) != SB_OK)
        return true;
    char key[16];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "key%03d", i);
        const uint8_t *va, *vb;
        size_t la, lb;
        int ra = sb_engine_get(a, addr, (const uint8_t *)key, strlen(key),
                               &va, &la);
        int rb = sb_engine_get(b, addr, (const uint8_t *)key, strlen(key),
                               &vb, &lb);
        /* keys were set in order key000.. with versions 1.., once */
        uint64_t version = (uint64_t)i + 1;
        if (ra != SB_OK)
            continue;
        if (version <= ib.max_version) {
            if (rb != SB_OK || la != lb || memcmp(va, vb, la) != 0)
                return false;
        } else if (rb == SB_OK) {
            return false;
        }
    }
    return true;
}

static void test_cut_off_leaves_no_gap(void **state)
{
    (void)state;
    cluster *c = engines(2, 512, NULL, 0);
    char key[16], val[64];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "key%03d", i);
        snprintf(val, sizeof(val), "value-%03d-padding-padding", i);
        check(cluster_set(c, 0, key, val) == SB_OK);
    }
    sb_engine *e0 = cluster_engine(c, 0), *e1 = cluster_engine(c, 1);
    sb_member ib;
    uint64_t last = 0;
    int steps = 0;
    for (; steps < 400; steps++) {
        cluster_run(c, 10 * MS);
        check(no_gap(e0, e1));
        if (sb_engine_find(e1, cluster_addr(c, 0), &ib) == SB_OK) {
            check(ib.max_version >= last); /* never goes back */
            last = ib.max_version;
            if (last == 200)
                break;
        }
    }
    check(last == 200);
    check(cluster_largest_sent(c, 0) <= 512 &&
          cluster_largest_sent(c, 1) <= 512);
    cluster_free(c);
}

/* The start of a hand-made ACK2: its header and room for the echo
 * (cluster_answer() writes it). */
static sb_writer begin_ack2(uint8_t *buf, size_t cap)
{
    sb_writer w = { buf, buf, buf + cap };
    sb_put_header(&w, SB_MSG_ACK2, sb_cluster_id("default"));
    sb_put_u64(&w, 0);
    return w;
}

/* One node delta in an ACK2, from the given fields and keys. */
static size_t make_ack2(uint8_t *buf, size_t cap, const sb_delta *d,
                        const sb_key_entry *keys)
{
    sb_writer w = begin_ack2(buf, cap);
    sb_put_varint(&w, 1);
    sb_put_delta_header(&w, d);
    for (uint64_t i = 0; i < d->nkeys; i++)
        sb_put_key_entry(&w, &keys[i]);
    return (size_t)(w.p - buf);
}

/* Makes `addr` a member of node i's view: an answer from it that speaks
 * of itself (generation 1, heartbeat 1), so that it may speak of others. */
static void make_member(cluster *c, uint32_t i, const char *addr)
{
    uint8_t buf[128];
    sb_delta d = { .addr = addr, .addr_len = strlen(addr), .generation = 1,
                   .heartbeat = 1 };
    size_t len = make_ack2(buf, sizeof(buf), &d, NULL);
    check(cluster_answer(c, i, addr, buf, len) == SB_OK);
    sb_member m;
    check(sb_engine_find(cluster_engine(c, i), addr, &m) == SB_OK);
}

/* A hand-made SYN: a digest claiming `n` nodes at the given maxes. */
static size_t make_syn(uint8_t *buf, size_t cap, const sb_digest_entry *d,
                       int n, uint8_t flags)
{
    sb_writer w = { buf, buf, buf + cap };
    sb_put_header(&w, SB_MSG_SYN, sb_cluster_id("default"));
    sb_put_u64(&w, 0x5eed); /* the token our answer would echo */
    sb_put_u8(&w, flags);
    sb_put_u64(&w, 0); /* a summary: not ours */
    sb_put_varint(&w, (uint64_t)n);
    for (int i = 0; i < n; i++)
        sb_put_digest_entry(&w, &d[i]);
    return (size_t)(w.p - buf);
}

static void test_most_out_of_date_first(void **state)
{
    (void)state;
    cluster *c = engines(3, 1400, NULL, 0);
    for (int i = 0; i < 10; i++) {
        char k[8];
        snprintf(k, sizeof(k), "p%d", i);
        check(cluster_set(c, 1, k, "x") == SB_OK);
    }
    check(cluster_set(c, 2, "q0", "x") == SB_OK);
    check(cluster_set(c, 2, "q1", "x") == SB_OK);
    cluster_run(c, 3 * SEC); /* node 0 learns both */
    const char *a1 = cluster_addr(c, 1), *a2 = cluster_addr(c, 2);
    sb_member p, q;
    check(sb_engine_find(cluster_engine(c, 0), a1, &p) == SB_OK);
    check(sb_engine_find(cluster_engine(c, 0), a2, &q) == SB_OK);
    check(p.max_version == 10 && q.max_version == 2);

    /* a peer that has nothing of either: node 1 (10 behind) goes first */
    sb_digest_entry d[2] = {
        { sb_peer_id(a2, strlen(a2), q.generation), q.heartbeat, false, 0,
          0 },
        { sb_peer_id(a1, strlen(a1), p.generation), p.heartbeat, false, 0,
          0 },
    };
    uint8_t buf[512];
    size_t len = make_syn(buf, sizeof(buf), d, 2, 0);
    cluster_set_loss(c, 1.0);
    /* from a node it knows: a stranger's SYN gets a reply no larger */
    check(cluster_deliver(c, 0, a2, buf, len) == SB_OK);
    const cluster_packets *r = cluster_replies(c);
    check(r->n == 1);
    sb_msg m;
    check(sb_msg_decode(r->p[0].data, r->p[0].len, sb_cluster_id("default"),
                        &m, NULL));
    check(m.type == SB_MSG_ACK && m.ndeltas == 2);
    sb_cursor cur = { m.deltas, m.end };
    sb_delta first, second;
    sb_delta_next(&cur, &first);
    sb_delta_next(&cur, &second);
    check(first.addr_len == strlen(a1) &&
          memcmp(first.addr, a1, first.addr_len) == 0);
    check(first.nkeys == 10 && second.nkeys == 2);
    cluster_free(c);
}

/* Random states and message sizes: no message ever passes the limit, and
 * the engines still converge. */
static void test_size_limit_random_states(void **state)
{
    (void)state;
    sb_rng r;
    sb_rng_seed(&r, cluster_seed());
    for (int round = 0; round < 30; round++) {
        size_t limit = 128 + (size_t)sb_rng_below(&r, 1300);
        uint32_t n = 2 + (uint32_t)sb_rng_below(&r, 7); /* 2 to 8 nodes */
        cluster *c = engines(n, limit, NULL, 0);
        for (uint32_t i = 0; i < n; i++) {
            int keys = (int)sb_rng_below(&r, 40);
            for (int k = 0; k < keys; k++) {
                uint8_t key[255], val[1500];
                size_t kl = 1 + (size_t)sb_rng_below(&r, 60);
                size_t vl = (size_t)sb_rng_below(&r, limit);
                for (size_t b = 0; b < kl; b++)
                    key[b] = (uint8_t)sb_rng_next(&r);
                for (size_t b = 0; b < vl; b++)
                    val[b] = (uint8_t)sb_rng_next(&r);
                int rc = cluster_set_bytes(c, i, key, kl, val, vl);
                /* keys that start with a zero byte are the protocol's */
                check(key[0] == 0 ? rc == SB_EINVAL
                                  : rc == SB_OK || rc == SB_ETOOBIG);
                if (sb_rng_below(&r, 4) == 0 && rc == SB_OK)
                    cluster_del_bytes(c, i, key, kl);
            }
        }
        cluster_run(c, 20 * SEC);
        for (uint32_t i = 0; i < n; i++)
            check(cluster_largest_sent(c, (int)i) <= limit);
        /* everyone holds everyone's state */
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++) {
                sb_member own, seen;
                const char *aj = cluster_addr(c, j);
                sb_engine_find(cluster_engine(c, j), aj, &own);
                check(sb_engine_find(cluster_engine(c, i), aj, &seen) ==
                      SB_OK);
                check(seen.max_version == own.max_version &&
                      seen.keys == own.keys);
            }
        cluster_free(c);
    }
}

/* ---- hostile input ---------------------------------------------------- */

static void test_random_packets_change_nothing(void **state)
{
    (void)state;
    cluster *c = engines(2, 512, NULL, 0);
    cluster_set(c, 0, "a", "1");
    cluster_run(c, 3 * SEC);
    char *before = snapshot(cluster_engine(c, 1));
    sb_rng r;
    sb_rng_seed(&r, cluster_seed());
    uint8_t buf[600];
    uint32_t cid = sb_cluster_id("default");
    for (int i = 0; i < 100000; i++) {
        size_t len = (size_t)sb_rng_below(&r, sizeof(buf));
        for (size_t b = 0; b < len; b++)
            buf[b] = (uint8_t)sb_rng_next(&r);
        if (i % 2 && len >= 8) { /* a valid header, random body */
            sb_writer w = { buf, buf, buf + 8 };
            sb_put_header(&w, 1 + (int)sb_rng_below(&r, 3), cid);
        }
        cluster_deliver(c, 1, "10.6.6.6:1", buf, len);
    }
    char *after = snapshot(cluster_engine(c, 1));
    check(strcmp(before, after) == 0);
    check(cluster_drops(c, 1, -1) > 90000); /* for any reason */
    free(before);
    free(after);
    cluster_free(c);
}

/* Captured traffic to node 1, mutated and handed to it from its real
 * senders (so that answers carry the right echo): never a crash, never a
 * bound passed, and packets that differ from valid ones only in their
 * header or length change nothing. */
static void test_mutated_packets(void **state)
{
    (void)state;
    cluster *c = engines(3, 512, NULL, 0);
    cluster_capture(c, CLUSTER_ALL, 256);
    cluster_set(c, 0, "a", "1");
    cluster_set(c, 2, "b", "2");
    cluster_run(c, 3 * SEC);
    cluster_capture_stop(c);
    cluster_packets *cap = cluster_captured(c);
    size_t n = 0;
    for (size_t k = 0; k < cap->n; k++)
        if (cap->p[k].to == 1) { /* to the front, by swaps */
            cluster_packet t = cap->p[n];
            cap->p[n++] = cap->p[k];
            cap->p[k] = t;
        }
    check(n > 20);
    sb_rng r;
    sb_rng_seed(&r, cluster_seed() + 7);
    char *before = snapshot(cluster_engine(c, 1));
    uint8_t buf[600];
    for (int i = 0; i < 10000; i++) {
        const cluster_packet *p = &cap->p[sb_rng_below(&r, n)];
        const char *from = cluster_addr(c, p->from);
        memcpy(buf, p->data, p->len);
        size_t len = p->len;
        /* a padded SYN (a probe's, a seed's) with less or more zero
         * padding is another valid one: its length is not mutated */
        bool padded = len > SB_HEADER_SIZE + SB_TOKEN_SIZE &&
                      buf[3] == SB_MSG_SYN &&
                      (*sb_syn_flags(buf) & SB_SYN_PADDED);
        switch (padded ? 0 : sb_rng_below(&r, 3)) {
        case 0: /* header byte */
            buf[sb_rng_below(&r, 8)] ^= (uint8_t)(1 + sb_rng_below(&r, 255));
            break;
        case 1: /* truncation */
            len = (size_t)sb_rng_below(&r, len);
            break;
        default: /* trailing junk */
            buf[len++] = (uint8_t)sb_rng_next(&r);
            break;
        }
        uint64_t dropped = cluster_drops(c, 1, -1);
        check(cluster_deliver(c, 1, from, buf, len) == SB_EINVAL);
        check(cluster_drops(c, 1, -1) == dropped + 1);
    }
    char *after = snapshot(cluster_engine(c, 1));
    check(strcmp(before, after) == 0);
    /* body mutations: anything may be accepted, nothing may break */
    for (int i = 0; i < 20000; i++) {
        const cluster_packet *p = &cap->p[sb_rng_below(&r, n)];
        memcpy(buf, p->data, p->len);
        for (int k = 0; k < 1 + (int)sb_rng_below(&r, 4); k++)
            buf[8 + sb_rng_below(&r, p->len - 8)] ^=
                (uint8_t)(1u << sb_rng_below(&r, 8));
        cluster_deliver(c, 1, cluster_addr(c, p->from), buf, p->len);
    }
    check(sb_engine_member_count(cluster_engine(c, 1)) <= 4096);
    free(before);
    free(after);
    cluster_free(c);
}

/* A peer announcing 100,000 invented nodes cannot pass max_nodes. */
static void test_invented_nodes_bounded(void **state)
{
    (void)state;
    cluster_config cfg;
    cluster_config_init(&cfg, 1);
    cfg.engine.max_message_size = 60000;
    cfg.engine.max_nodes = 1000;
    cfg.engine.max_keys_per_node = 8;
    cfg.engine.max_state_bytes = 100;
    cluster *c;
    check(cluster_try(&cfg, &c) == SB_OK);
    sb_engine *e = cluster_engine(c, 0);
    static uint8_t buf[60000];
    /* a member that lies */
    make_member(c, 0, "10.6.6.6:1");
    int made = 0;
    while (made < 100000) {
        sb_writer w = begin_ack2(buf, sizeof(buf));
        sb_put_varint(&w, 1000);
        for (int i = 0; i < 1000; i++, made++) {
            char addr[32];
            int al = snprintf(addr, sizeof(addr), "10.%d.%d.%d:1",
                              made >> 16, (made >> 8) & 255, made & 255);
            sb_delta d = { .addr = addr, .addr_len = (size_t)al,
                                .generation = 1, .heartbeat = 1,
                                .to_version = 0, .nkeys = 0 };
            check(sb_put_delta_header(&w, &d));
        }
        check(cluster_answer(c, 0, "10.6.6.6:1", buf,
                             (size_t)(w.p - buf)) == SB_OK);
    }
    check(sb_engine_member_count(e) == 1000);
    /* itself, the liar and 998 of its inventions */
    check(cluster_drops(c, 0, SB_DROP_LIMIT_NODES) == 100000 - 998);

    /* keys and bytes per node are bounded too */
    sb_writer w = begin_ack2(buf, sizeof(buf));
    sb_put_varint(&w, 1);
    sb_delta d = { .addr = "10.0.0.0:1", .addr_len = 10,
                        .generation = 1, .heartbeat = 2, .to_version = 20,
                        .nkeys = 20 };
    sb_put_delta_header(&w, &d);
    for (int i = 0; i < 20; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%02d", i);
        sb_key_entry ke = { (const uint8_t *)k, 3, (uint64_t)i + 1, false,
                            (const uint8_t *)"0123456789", 10 };
        sb_put_key_entry(&w, &ke);
    }
    check(cluster_answer(c, 0, "10.6.6.6:1", buf, (size_t)(w.p - buf)) ==
          SB_OK);
    sb_member info;
    check(sb_engine_find(e, "10.0.0.0:1", &info) == SB_OK);
    check(info.keys == 7); /* 7 x 13 bytes <= 100 < 8 x 13 */
    check(cluster_drops(c, 0, SB_DROP_LIMIT_BYTES) == 1);
    cluster_free(c);
}

/* A delta naming a member by anything but canonical numeric text (a
 * twin behind a NUL byte, a name, a line break that would forge a log
 * line, another spelling of an address) is dropped whole and counted;
 * canonical ones are taken. */
static void test_forged_addresses_dropped(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        size_t len;
        bool ok;
    } cases[] = {
        { "127.0.0.1:27401\0twin", 20, false },
        { "not-an-address", 14, false },
        { "node.example:7946", 17, false },
        { "127.0.0.1:27401\nscuttlebutt: error: forged", 42, false },
        { "01.2.3.4:5", 10, false },
        { "1.2.3.4:0", 9, false },
        { "1.2.3.4:07946", 13, false },
        { "1.2.3.4:65536", 13, false },
        { "1.2.3.4", 7, false },
        { "[::1]7946", 9, false },
        { "[::FFFF:1.2.3.4]:1", 18, false },
        { "[::ffff:1.2.3.4]:1", 18, false },
        { "[0:0:0:0:0:0:0:1]:7946", 22, false },
        { "[::1]:7946", 10, true },
        { "[2001:db8::1]:7946", 18, true },
        { "1.2.3.4:65535", 13, true },
        { "10.0.0.9:1", 10, true },
    };
    cluster *c = engines(1, 1400, NULL, 0);
    sb_engine *e = cluster_engine(c, 0);
    make_member(c, 0, "10.6.6.6:1");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check(sb_addr_canonical(cases[i].addr, cases[i].len) == cases[i].ok);
        uint8_t buf[256];
        sb_writer w = begin_ack2(buf, sizeof(buf));
        sb_put_varint(&w, 1);
        sb_delta d = { .addr = cases[i].addr, .addr_len = cases[i].len,
                       .generation = 1, .heartbeat = 1, .to_version = 1,
                       .nkeys = 1 };
        check(sb_put_delta_header(&w, &d));
        sb_key_entry k = { (const uint8_t *)"k", 1, 1, false,
                           (const uint8_t *)"forged", 6 };
        check(sb_put_key_entry(&w, &k));
        size_t members = sb_engine_member_count(e);
        uint64_t bad = cluster_drops(c, 0, SB_DROP_MALFORMED);
        int rc = cluster_answer(c, 0, "10.6.6.6:1", buf,
                                (size_t)(w.p - buf));
        if (cases[i].ok) {
            check(rc == SB_OK && sb_engine_member_count(e) == members + 1);
        } else {
            check(rc == SB_EINVAL && sb_engine_member_count(e) == members);
            check(cluster_drops(c, 0, SB_DROP_MALFORMED) == bad + 1);
        }
    }
    cluster_free(c);
}

/* A digest naming 100,000 unknown ids costs one bounded reply each and
 * creates nothing. */
static void test_unknown_ids_create_nothing(void **state)
{
    (void)state;
    cluster *c = engines(1, 512, NULL, 0);
    sb_digest_entry d[40];
    uint8_t buf[512];
    for (int round = 0; round < 2500; round++) {
        for (int i = 0; i < 40; i++)
            d[i] = (sb_digest_entry){ (uint64_t)round * 40 + (uint64_t)i + 1,
                                      5, false, 3, 0 };
        size_t len = make_syn(buf, sizeof(buf), d, 40, 0);
        check(len <= 512);
        cluster_deliver(c, 0, "10.6.6.6:1", buf, len);
    }
    check(sb_engine_member_count(cluster_engine(c, 0)) == 1);
    check(cluster_largest_sent(c, 0) <= 512);
    cluster_free(c);
}

/* Stale gossip about a forgotten node does not bring it back. */
static void test_forgotten_node_stays_forgotten(void **state)
{
    (void)state;
    cluster_config cfg;
    cluster_config_init(&cfg, 1);
    cfg.engine.dead_grace_ns = 10 * SEC;
    cluster *c;
    check(cluster_try(&cfg, &c) == SB_OK);
    sb_engine *e = cluster_engine(c, 0);
    uint8_t buf[512];
    /* a node that lives for a while, then is silent */
    for (uint64_t hb = 1; hb <= 20; hb++) {
        sb_writer w = begin_ack2(buf, sizeof(buf));
        sb_put_varint(&w, 1);
        sb_delta d = { .addr = "10.0.0.2:7946", .addr_len = 13,
                            .generation = 7, .heartbeat = hb };
        sb_put_delta_header(&w, &d);
        cluster_run(c, 100 * MS);
        check(cluster_answer(c, 0, "10.0.0.2:7946", buf,
                             (size_t)(w.p - buf)) == SB_OK);
    }
    size_t stale_len = 0;
    uint8_t stale[512];
    {
        sb_writer w = begin_ack2(stale, sizeof(stale));
        sb_put_varint(&w, 1);
        sb_delta d = { .addr = "10.0.0.2:7946", .addr_len = 13,
                            .generation = 7, .heartbeat = 20 };
        sb_put_delta_header(&w, &d);
        stale_len = (size_t)(w.p - stale);
    }
    sb_member info;
    check(sb_engine_find(e, "10.0.0.2:7946", &info) == SB_OK &&
          info.status == SB_STATUS_LIVE);
    /* down after about 2 s, forgotten 10 s (the grace) later */
    cluster_wait(c, 30 * SEC,
                 sb_engine_find(e, "10.0.0.2:7946", &info) != SB_OK);
    check(sb_engine_find(e, "10.0.0.2:7946", &info) == SB_ENOTFOUND);
    check(cluster_now(c) > 11 * SEC);
    /* stale gossip arrives from a node that forgot later */
    cluster_run(c, 5 * SEC);
    make_member(c, 0, "10.0.0.3:7946");
    check(cluster_answer(c, 0, "10.0.0.3:7946", stale, stale_len) == SB_OK);
    check(sb_engine_find(e, "10.0.0.2:7946", &info) == SB_ENOTFOUND);
    check(cluster_drops(c, 0, SB_DROP_ZOMBIE) == 1);
    cluster_free(c);
}

/* An engine that got node z's reset from an up-to-date peer, cut after
 * version 1 (a@1): clean up to gc, holding only a prefix. */
static cluster *partial_reset(uint64_t gc)
{
    cluster *c = engines(1, 512, NULL, 0);
    uint8_t buf[512];
    sb_key_entry a = { (const uint8_t *)"a", 1, 1, false,
                       (const uint8_t *)"x", 1 };
    sb_delta d = { .addr = "10.0.0.2:7946", .addr_len = 13,
                        .generation = 7, .heartbeat = 5, .reset = true,
                        .from_version = 0, .to_version = 1,
                        .gc_version = gc, .nkeys = 1 };
    size_t len = make_ack2(buf, sizeof(buf), &d, &a);
    make_member(c, 0, "10.0.0.3:7946");
    check(cluster_answer(c, 0, "10.0.0.3:7946", buf, len) == SB_OK);
    return c;
}

/* Part way through a reset (clean up to the sender's collected horizon,
 * but holding only a prefix), a node must not take keys from a sender
 * that has not collected that far: they may be values whose tombstones
 * were collected. */
static void test_partial_reset_refuses_stale_sender(void **state)
{
    (void)state;
    cluster *c = partial_reset(7);
    sb_engine *e = cluster_engine(c, 0);
    uint8_t buf[512];
    const char *z = "10.0.0.2:7946";
    sb_delta d;
    size_t len;
    /* a stale peer that never saw k deleted (at 5, collected) */
    sb_key_entry k = { (const uint8_t *)"k", 1, 3, false,
                       (const uint8_t *)"stale", 5 };
    d = (sb_delta){ .addr = z, .addr_len = 13, .generation = 7,
                         .heartbeat = 5, .from_version = 1,
                         .to_version = 4, .gc_version = 0, .nkeys = 1 };
    len = make_ack2(buf, sizeof(buf), &d, &k);
    make_member(c, 0, "10.0.0.4:7946");
    check(cluster_answer(c, 0, "10.0.0.4:7946", buf, len) == SB_OK);
    const uint8_t *v;
    size_t vl;
    check(sb_engine_get(e, z, (const uint8_t *)"k", 1, &v, &vl) ==
          SB_ENOTFOUND);
    check(cluster_drops(c, 0, SB_DROP_GAP) == 1);
    /* the up-to-date peer completes the reset */
    sb_key_entry b = { (const uint8_t *)"b", 1, 8, false,
                       (const uint8_t *)"y", 1 };
    d = (sb_delta){ .addr = z, .addr_len = 13, .generation = 7,
                         .heartbeat = 6, .from_version = 1,
                         .to_version = 8, .gc_version = 7, .nkeys = 1 };
    len = make_ack2(buf, sizeof(buf), &d, &b);
    check(cluster_answer(c, 0, "10.0.0.3:7946", buf, len) == SB_OK);
    check(sb_engine_get(e, z, (const uint8_t *)"b", 1, &v, &vl) == SB_OK);
    check(sb_engine_get(e, z, (const uint8_t *)"a", 1, &v, &vl) == SB_OK);
    check(sb_engine_get(e, z, (const uint8_t *)"k", 1, &v, &vl) ==
          SB_ENOTFOUND);
    cluster_free(c);
}

/* A sender that collected no tombstones but holds versions past our
 * collected horizon has seen every tombstone up to it (the owner, say,
 * who set a deleted key again before its tombstone was collected): part
 * way through a reset, its keys are taken. */
static void test_partial_reset_takes_caught_up_sender(void **state)
{
    (void)state;
    cluster *c = partial_reset(5);
    sb_engine *e = cluster_engine(c, 0);
    uint8_t buf[512];
    const char *z = "10.0.0.2:7946";
    sb_delta d;
    size_t len;
    sb_key_entry k = { (const uint8_t *)"k", 1, 6, false,
                       (const uint8_t *)"again", 5 };
    d = (sb_delta){ .addr = z, .addr_len = 13, .generation = 7,
                         .heartbeat = 6, .from_version = 1,
                         .to_version = 6, .gc_version = 0, .nkeys = 1 };
    len = make_ack2(buf, sizeof(buf), &d, &k);
    check(cluster_answer(c, 0, z, buf, len) == SB_OK);
    const uint8_t *v;
    size_t vl;
    check(sb_engine_get(e, z, (const uint8_t *)"k", 1, &v, &vl) == SB_OK);
    check(vl == 5 && memcmp(v, "again", 5) == 0);
    cluster_free(c);
}

/* A delta that is not a reset, from a sender that collected tombstones
 * past our max, must not move us past them: it may skip a delete. */
static void test_no_plain_delta_past_collected_tombstones(void **state)
{
    (void)state;
    cluster *c = engines(1, 512, NULL, 0);
    sb_engine *e = cluster_engine(c, 0);
    uint8_t buf[512];
    const char *z = "10.0.0.2:7946";
    sb_key_entry k = { (const uint8_t *)"k", 1, 1, false,
                       (const uint8_t *)"v", 1 };
    sb_delta d = { .addr = z, .addr_len = 13, .generation = 7,
                        .heartbeat = 5, .from_version = 0,
                        .to_version = 1, .nkeys = 1 };
    size_t len = make_ack2(buf, sizeof(buf), &d, &k);
    check(cluster_answer(c, 0, z, buf, len) == SB_OK);
    /* z deleted k at 2, collected it (gc 2), set y at 3; an offer or a
     * push sends a plain delta from 1 */
    sb_key_entry y = { (const uint8_t *)"y", 1, 3, false,
                       (const uint8_t *)"w", 1 };
    d = (sb_delta){ .addr = z, .addr_len = 13, .generation = 7,
                         .heartbeat = 6, .from_version = 1,
                         .to_version = 3, .gc_version = 2, .nkeys = 1 };
    len = make_ack2(buf, sizeof(buf), &d, &y);
    make_member(c, 0, "10.0.0.3:7946");
    check(cluster_answer(c, 0, "10.0.0.3:7946", buf, len) == SB_OK);
    sb_member info;
    check(sb_engine_find(e, z, &info) == SB_OK && info.max_version == 1);
    /* the reset that a digest-driven exchange sends does it right */
    d.reset = true;
    d.from_version = 0;
    len = make_ack2(buf, sizeof(buf), &d, &y);
    check(cluster_answer(c, 0, "10.0.0.3:7946", buf, len) == SB_OK);
    const uint8_t *v;
    size_t vl;
    check(sb_engine_get(e, z, (const uint8_t *)"k", 1, &v, &vl) ==
          SB_ENOTFOUND);
    check(sb_engine_get(e, z, (const uint8_t *)"y", 1, &v, &vl) == SB_OK);
    cluster_free(c);
}

/* ---- the order of events ------------------------------------------------ */

/* Events as text: "join", "update:a", ... separated by spaces. */
static void log_event(void *ud, uint32_t node, const sb_event *ev,
                      uint64_t now)
{
    (void)node, (void)now;
    static const char *const kinds[] = { "?", "join", "leave", "update",
                                         "delete" };
    char *log = ud;
    size_t used = strlen(log);
    snprintf(log + used, 512 - used, "%s%s%s%.*s", used ? " " : "",
             kinds[ev->type], ev->key ? ":" : "", (int)ev->key_len,
             ev->key ? ev->key : "");
}

/* A lone node (10.0.0.1, waits in 10 ms steps) that logs its events into
 * `log` (512 bytes); max_keys_per_node if `max_keys` is not 0; with
 * `monitors` monitors. */
static cluster *logged_node_with(char *log, uint32_t max_keys,
                                 uint32_t monitors)
{
    cluster_config cfg;
    cluster_config_init(&cfg, 1);
    cfg.step_ns = 10 * MS;
    if (max_keys)
        cfg.engine.max_keys_per_node = max_keys;
    cfg.engine.monitors = monitors;
    cfg.on_event = log_event;
    cfg.userdata = log;
    return cluster_new(&cfg);
}

static cluster *logged_node(char *log, uint32_t max_keys)
{
    sb_engine_config defaults;
    sb_engine_config_init(&defaults);
    return logged_node_with(log, max_keys, defaults.monitors);
}

/* Node z's keys arrive now with the given heartbeat, from z itself. */
static void z_says(cluster *c, uint64_t hb, uint64_t from,
                   const sb_key_entry *keys, uint64_t nkeys)
{
    uint8_t buf[512];
    sb_delta d = { .addr = "10.0.0.2:7946", .addr_len = 13,
                   .generation = 7, .heartbeat = hb, .from_version = from,
                   .to_version = nkeys ? keys[nkeys - 1].version : from,
                   .nkeys = nkeys };
    size_t len = make_ack2(buf, sizeof(buf), &d, keys);
    check(cluster_answer(c, 0, "10.0.0.2:7946", buf, len) == SB_OK);
}

/* No key event about a node before its join; at its join (and at every
 * return) an update for each key it holds; none while it is down. */
/* Without monitors, a node is live once its heartbeat moves: its state
 * may come first, and is reported at its join. */
static void test_events_join_first(void **state)
{
    (void)state;
    char log[512] = "";
    cluster *c = logged_node_with(log, 0, 0);
    sb_key_entry k[4] = {
        { (const uint8_t *)"a", 1, 1, false, (const uint8_t *)"1", 1 },
        { (const uint8_t *)"b", 1, 2, false, (const uint8_t *)"2", 1 },
        { (const uint8_t *)"c", 1, 3, false, (const uint8_t *)"3", 1 },
        { (const uint8_t *)"d", 1, 4, false, (const uint8_t *)"4", 1 },
    };
    z_says(c, 5, 0, k, 2); /* state before proof of life */
    assert_string_equal(log, "");
    cluster_run_until(c, 50 * MS);
    z_says(c, 6, 2, k + 2, 1); /* a heartbeat moved: live */
    assert_string_equal(log, "join update:a update:b update:c");
    log[0] = '\0';
    cluster_wait(c, 60 * SEC, log[0]);
    assert_string_equal(log, "leave");
    log[0] = '\0';
    z_says(c, 6, 3, k + 3, 1); /* news, but no proof of life */
    assert_string_equal(log, "");
    cluster_run(c, 10 * MS);
    z_says(c, 7, 4, NULL, 0);
    assert_string_equal(log, "join update:a update:b update:c update:d");
    cluster_free(c);
}

/* With monitors, a node is live as soon as its state comes (its
 * heartbeat moves only to refute a verdict): JOIN, then its keys; down
 * when the one node that watches it, this one, hears no beat from it;
 * live again when its heartbeat moves past the verdict, with all its
 * keys reported again. */
static void test_events_join_at_arrival(void **state)
{
    (void)state;
    char log[512] = "";
    cluster *c = logged_node(log, 0);
    sb_key_entry k[3] = {
        { (const uint8_t *)"a", 1, 1, false, (const uint8_t *)"1", 1 },
        { (const uint8_t *)"b", 1, 2, false, (const uint8_t *)"2", 1 },
        { (const uint8_t *)"c", 1, 3, false, (const uint8_t *)"3", 1 },
    };
    z_says(c, 1, 0, k, 2);
    assert_string_equal(log, "join update:a update:b");
    log[0] = '\0';
    cluster_wait(c, 60 * SEC, log[0]);
    assert_string_equal(log, "leave");
    log[0] = '\0';
    z_says(c, 1, 2, k + 2, 1); /* news, but the verdict stands */
    assert_string_equal(log, "");
    z_says(c, 2, 3, NULL, 0); /* refuted */
    assert_string_equal(log, "join update:a update:b update:c");
    cluster_free(c);
}

/* A reset that a bound stops part way keeps no key above the one it
 * could not store, and claims no version past it: the rest comes again. */
static void test_reset_stopped_by_a_bound_leaves_no_hole(void **state)
{
    (void)state;
    char log[512] = "";
    cluster *c = logged_node(log, 2);
    sb_engine *e = cluster_engine(c, 0);
    sb_key_entry k[4] = {
        { (const uint8_t *)"a", 1, 1, false, (const uint8_t *)"1", 1 },
        { (const uint8_t *)"c", 1, 3, false, (const uint8_t *)"3", 1 },
        { (const uint8_t *)"b", 1, 4, false, (const uint8_t *)"4", 1 },
        { (const uint8_t *)"d", 1, 6, false, (const uint8_t *)"6", 1 },
    };
    sb_key_entry ab[2] = { k[0], k[2] };
    uint8_t buf[512];
    sb_delta d = { .addr = "10.0.0.2:7946", .addr_len = 13,
                   .generation = 7, .heartbeat = 5, .from_version = 0,
                   .to_version = 4, .nkeys = 2 };
    size_t len = make_ack2(buf, sizeof(buf), &d, ab);
    make_member(c, 0, "10.0.0.3:7946");
    check(cluster_answer(c, 0, "10.0.0.3:7946", buf, len) == SB_OK);
    sb_member m;
    check(sb_engine_find(e, "10.0.0.2:7946", &m) == SB_OK);
    check(m.max_version == 4 && m.keys == 2);
    /* a reset (the sender collected a tombstone at 5, past all we saw)
     * holding a@1, c@3, b@4 and d@6: a and b are kept, c does not fit
     * under max_keys_per_node */
    d = (sb_delta){ .addr = "10.0.0.2:7946", .addr_len = 13,
                    .generation = 7, .heartbeat = 6, .reset = true,
                    .from_version = 0, .to_version = 6, .gc_version = 5,
                    .nkeys = 4 };
    len = make_ack2(buf, sizeof(buf), &d, k);
    check(cluster_answer(c, 0, "10.0.0.3:7946", buf, len) == SB_OK);
    check(sb_engine_find(e, "10.0.0.2:7946", &m) == SB_OK);
    check(m.max_version == 2); /* not 6: c@3 is missing */
    check(m.keys == 1);
    const uint8_t *v;
    size_t vl;
    check(sb_engine_get(e, "10.0.0.2:7946", (const uint8_t *)"a", 1, &v,
                        &vl) == SB_OK);
    check(sb_engine_get(e, "10.0.0.2:7946", (const uint8_t *)"b", 1, &v,
                        &vl) == SB_ENOTFOUND);
    check(cluster_drops(c, 0, SB_DROP_LIMIT_KEYS) == 1);
    cluster_free(c);
}

/* A whole record sent as a reset (a sweep, an answer to a request) by a
 * member whose copy is older than ours rolls nothing back: we hold every
 * version up to the tombstone it collected, so no reset is needed, and
 * the keys we hold newer than its copy stay. */
static void test_reset_from_an_older_copy_rolls_nothing_back(void **state)
{
    (void)state;
    char log[512] = "";
    cluster *c = logged_node(log, 0);
    sb_engine *e = cluster_engine(c, 0);
    make_member(c, 0, "10.0.0.3:7946");
    /* z itself: a@1, the tombstone t@2, b@4 (its b@3 overwritten) */
    sb_key_entry now_[3] = {
        { (const uint8_t *)"a", 1, 1, false, (const uint8_t *)"1", 1 },
        { (const uint8_t *)"t", 1, 2, true, NULL, 0 },
        { (const uint8_t *)"b", 1, 4, false, (const uint8_t *)"new", 3 },
    };
    z_says(c, 5, 0, now_, 3);
    log[0] = '\0';
    /* the member's copy of z stops at b@3, and it collected t@2 */
    sb_key_entry old[2] = {
        { (const uint8_t *)"a", 1, 1, false, (const uint8_t *)"1", 1 },
        { (const uint8_t *)"b", 1, 3, false, (const uint8_t *)"old", 3 },
    };
    uint8_t buf[512];
    sb_delta d = { .addr = "10.0.0.2:7946", .addr_len = 13,
                   .generation = 7, .heartbeat = 5, .reset = true,
                   .from_version = 0, .to_version = 3, .gc_version = 2,
                   .nkeys = 2 };
    size_t len = make_ack2(buf, sizeof(buf), &d, old);
    check(cluster_answer(c, 0, "10.0.0.3:7946", buf, len) == SB_OK);
    assert_string_equal(log, ""); /* no delete, no old value */
    sb_member m;
    check(sb_engine_find(e, "10.0.0.2:7946", &m) == SB_OK);
    check(m.max_version == 4 && m.keys == 2);
    const uint8_t *v;
    size_t vl;
    check(sb_engine_get(e, "10.0.0.2:7946", (const uint8_t *)"b", 1, &v,
                        &vl) == SB_OK &&
          vl == 3 && memcmp(v, "new", 3) == 0);
    cluster_free(c);
}

/* Sends node 0 a PUSH of one empty item of wave (root, wave), and lets
 * `dt` pass. */
static void push_wave(cluster *c, uint32_t root, uint64_t wave, uint64_t dt)
{
    const char *addr = cluster_addr(c, root);
    uint64_t gen = sb_engine_generation(cluster_engine(c, root));
    uint8_t buf[64];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    sb_put_header(&w, SB_MSG_PUSH, sb_cluster_id("default"));
    sb_put_varint(&w, 1);
    sb_put_u64(&w, sb_peer_id(addr, strlen(addr), gen));
    sb_put_u64(&w, wave);
    sb_put_varint(&w, 0);
    check(cluster_deliver(c, 0, addr, buf, (size_t)(w.p - buf)) == SB_OK);
    cluster_run(c, dt);
}

/* Sends node 0 a PUSH of one empty item of wave (root, wave); true if it
 * passed it on (it has children in that tree and had not seen the wave)
 * by the time its outbox may go. */
static bool passes_on(cluster *c, uint32_t root, uint64_t wave)
{
    sb_stats before, after;
    sb_engine_stats(cluster_engine(c, 0), &before);
    push_wave(c, root, wave, 20 * MS); /* PUSH_LINGER: the outbox goes */
    sb_engine_stats(cluster_engine(c, 0), &after);
    return after.pushes > before.pushes;
}

/*
 * A node remembers 1,792 waves at the default cap. Past that, a wave
 * that came less than a second ago is not forgotten (the set grows): after
 * 2,000 other waves in half a second, a copy of the first is not passed
 * on again; after 2,000 in 2.5 seconds, it is. The waves are ALONE ones
 * (the 0x80 bit: one tree, no siblings), whose copies are told by the
 * waves remembered alone, whatever the node holds.
 */
static void test_waves_of_the_last_second_remembered(void **state)
{
    (void)state;
    for (int slow = 0; slow < 2; slow++) {
        cluster *c = engines(8, 512, NULL, 0);
        cluster_run(c, 5 * SEC);
        cluster_set_loss(c, 1.0); /* the copies passed on go nowhere */
        uint64_t first = 0;
        for (uint64_t id = 1; id < 400 && !first; id++)
            for (uint64_t tree = 0; tree < 3 && !first; tree++)
                if (passes_on(c, 1, id << 8 | 0x80 | tree))
                    first = id << 8 | 0x80 | tree;
        check(first);
        uint64_t every = slow ? 5 * MS : MS; /* 4 waves each time */
        for (uint64_t i = 0; i < 2000; i++)
            push_wave(c, 2, (1000 + i) << 8 | 0x80, i % 4 == 3 ? every : 0);
        check(passes_on(c, 1, first) == (slow == 1));
        cluster_free(c);
    }
}

/* Two roots may draw the same wave id: a wave is the pair, so the second
 * root's wave is passed on too; the same pair again is not. */
static void test_waves_of_two_roots_are_apart(void **state)
{
    (void)state;
    cluster *c = engines(8, 512, NULL, 0);
    cluster_run(c, 5 * SEC);
    cluster_set_loss(c, 1.0); /* the copies passed on go nowhere */
    bool both = false;
    for (uint64_t wave = 1; wave < 400 && !both; wave++) {
        if (!passes_on(c, 1, wave))
            continue;
        check(!passes_on(c, 1, wave)); /* seen */
        both = passes_on(c, 2, wave);
    }
    check(both);
    cluster_free(c);
}

/* An ACK to a partial SYN tops its digest up with nodes the SYN did not
 * list, fresh heartbeats first; listing a node clears its "fresh" mark,
 * which must not make it eligible again in the next group: no node twice
 * in one digest (the fuzz stage once found an ACK overflowing its scratch
 * that way). Many ACKs, at many moments of a running cluster. */
static void test_ack_lists_each_node_once(void **state)
{
    (void)state;
    cluster *c = engines(6, 512, NULL, 0);
    cluster_run(c, 3 * SEC);
    const char *a1 = cluster_addr(c, 1);
    sb_member self1;
    check(sb_engine_find(cluster_engine(c, 1), a1, &self1) == SB_OK);
    uint32_t checked = 0;
    for (int round = 0; round < 200; round++) {
        cluster_run(c, 30 * MS);
        sb_engine_find(cluster_engine(c, 1), a1, &self1);
        const sb_digest_entry d = {
            sb_peer_id(a1, strlen(a1), self1.generation), self1.heartbeat,
            false, self1.max_version, 0
        };
        uint8_t buf[64];
        size_t len = make_syn(buf, sizeof(buf), &d, 1, 0); /* partial */
        cluster_set_loss(c, 1.0); /* the reply goes nowhere */
        check(cluster_deliver(c, 0, a1, buf, len) == SB_OK);
        cluster_set_loss(c, 0);
        const cluster_packets *r = cluster_replies(c);
        if (!r->n)
            continue;
        sb_msg m;
        check(sb_msg_decode(r->p[0].data, r->p[0].len,
                            sb_cluster_id("default"), &m, NULL));
        uint64_t ids[64];
        sb_cursor cur = { m.digest, m.end };
        check(m.ndigest <= 64);
        for (uint64_t i = 0; i < m.ndigest; i++) {
            sb_digest_entry e;
            sb_digest_next(&cur, &e);
            ids[i] = e.id;
            for (uint64_t j = 0; j < i; j++)
                check(ids[j] != e.id);
        }
        checked += m.ndigest > 1;
    }
    check(checked > 100);
    cluster_free(c);
}

/* ---- sealing and amplification ----------------------------------------- */

static const uint8_t key_a[SB_KEY_SIZE] = { 0xa1, 0xa2, 0xa3 };
static const uint8_t key_b[SB_KEY_SIZE] = { 0xb1, 0xb2, 0xb3 };

/* Sealed engines converge, never send past max_message_size, and nothing
 * they send is readable plaintext. */
static void test_sealed_cluster_converges(void **state)
{
    (void)state;
    cluster *c = engines(4, 300, key_a, 1);
    cluster_capture(c, CLUSTER_ALL, 256);
    char big[300];
    memset(big, 'v', sizeof(big));
    size_t most = 0;
    /* the largest value that fits a sealed message of 300 bytes */
    for (size_t len = 1; len < sizeof(big); len++)
        if (cluster_set_bytes(c, 0, "k", 1, big, len) == SB_OK)
            most = len;
    check(most > 0 && most + SB_SEAL_OVERHEAD < 300);
    cluster_run(c, 5 * SEC);
    for (uint32_t i = 1; i < 4; i++) {
        const uint8_t *v;
        size_t len;
        check(sb_engine_get(cluster_engine(c, i), cluster_addr(c, 0),
                            (const uint8_t *)"k", 1, &v, &len) == SB_OK &&
              len == most);
        check(cluster_largest_sent(c, (int)i) <= 300);
    }
    check(cluster_largest_sent(c, 0) <= 300);
    const cluster_packets *cap = cluster_captured(c);
    for (size_t i = 0; i < cap->n; i++) {
        const cluster_packet *p = &cap->p[i];
        sb_msg m;
        check(p->data[3] & 0x80);
        int why = -1;
        check(!sb_msg_decode(p->data, p->len, sb_cluster_id("default"), &m,
                             &why) &&
              why == SB_DROP_TYPE);
        check(!memmem(p->data, p->len, "10.0.0.", 7));
    }
    cluster_free(c);
}

/* A plaintext packet to a sealed node, a sealed one to a plaintext node,
 * one sealed with a key not installed, and one whose authenticated header
 * or body was changed: each dropped, counted, and not answered. */
static void test_seal_mismatch_dropped(void **state)
{
    (void)state;
    /* node 1's first SYN, of each kind, held back from node 0 */
    struct {
        size_t len;
        uint8_t data[512];
    } syn[3];
    const uint8_t *keys[3] = { NULL, key_a, key_b };
    for (int k = 0; k < 3; k++) {
        cluster *c = engines(2, 512, keys[k], keys[k] ? 1 : 0);
        cluster_set_loss(c, 1.0);
        cluster_capture(c, 1, 8);
        cluster_run_until(c, 1 * SEC);
        const cluster_packets *cap = cluster_captured(c);
        check(cap->n > 0);
        syn[k].len = cap->p[0].len;
        memcpy(syn[k].data, cap->p[0].data, cap->p[0].len);
        cluster_free(c);
    }
    const uint8_t *sp = syn[0].data, *sa = syn[1].data, *sb = syn[2].data;
    size_t sa_len = syn[1].len;
    cluster *plain = engines(1, 512, NULL, 0);
    cluster_run_until(plain, SEC);
    check(cluster_deliver(plain, 0, "10.0.0.2:7946", sa, sa_len) ==
          SB_EINVAL); /* dropped, counted */
    check(cluster_drops(plain, 0, SB_DROP_SEALED) == 1);
    check(cluster_bytes_out(plain, 0) == 0);
    cluster_free(plain);

    cluster *a = engines(1, 512, key_a, 1);
    cluster_run_until(a, SEC);
    check(cluster_deliver(a, 0, "10.0.0.2:7946", sp, syn[0].len) ==
          SB_EINVAL); /* dropped, counted */
    check(cluster_drops(a, 0, SB_DROP_PLAINTEXT) == 1);
    check(cluster_deliver(a, 0, "10.0.0.2:7946", sb, syn[2].len) ==
          SB_EINVAL); /* dropped, counted */
    check(cluster_drops(a, 0, SB_DROP_AUTH) == 1);
    /* every byte of a sealed SYN is covered: flip each one in turn */
    uint8_t copy[sizeof(syn[1].data)];
    for (size_t i = 0; i < sa_len; i++) {
        memcpy(copy, sa, sa_len);
        copy[i] ^= 0x01;
        uint64_t dropped = cluster_drops(a, 0, -1);
        check(cluster_deliver(a, 0, "10.0.0.2:7946", copy, sa_len) ==
              SB_EINVAL);
        check(cluster_drops(a, 0, -1) == dropped + 1);
    }
    check(cluster_bytes_out(a, 0) == 0);
    /* the untouched packet is taken and answered */
    check(cluster_deliver(a, 0, "10.0.0.2:7946", sa, sa_len) == SB_OK);
    check(cluster_bytes_out(a, 0) > 0);
    cluster_free(a);
}

/* Packets sealed with any installed key open; only the primary seals. */
static void test_keyring_rotation_between_engines(void **state)
{
    (void)state;
    cluster *c = engines(2, 512, key_a, 1);
    sb_engine *e0 = cluster_engine(c, 0), *e1 = cluster_engine(c, 1);
    check(sb_engine_key_use(e0, key_b) == SB_ENOTFOUND);
    check(sb_engine_key_remove(e0, key_a) == SB_ESTATE);
    check(sb_engine_key_install(e0, key_b) == SB_OK);
    check(sb_engine_key_install(e0, key_b) == SB_OK);
    check(sb_engine_key_use(e0, key_b) == SB_OK);
    /* node 0 seals with b, node 1 knows only a: node 1 cannot read it */
    check(cluster_set(c, 0, "x", "1") == SB_OK);
    cluster_run(c, 3 * SEC);
    const uint8_t *v;
    size_t len;
    check(sb_engine_get(e1, cluster_addr(c, 0), (const uint8_t *)"x", 1, &v,
                        &len) != SB_OK);
    check(cluster_drops(c, 1, SB_DROP_AUTH) > 0);
    check(sb_engine_key_install(e1, key_b) == SB_OK);
    cluster_run(c, 3 * SEC);
    check(sb_engine_get(e1, cluster_addr(c, 0), (const uint8_t *)"x", 1, &v,
                        &len) == SB_OK);
    check(sb_engine_key_remove(e0, key_a) == SB_OK);
    check(sb_engine_key_remove(e0, key_a) == SB_ENOTFOUND);
    /* plaintext engines have no keyring */
    cluster *plain = engines(1, 512, NULL, 0);
    check(sb_engine_key_install(cluster_engine(plain, 0), key_a) ==
          SB_ESTATE);
    check(sb_engine_key_install(e0, NULL) == SB_EINVAL);
    cluster_free(plain);
    cluster_free(c);
}

/*
 * Amplification: a node that knows a cluster answers datagrams from an
 * address it does not know with at most as many bytes as they carried.
 * Feeds it SYNs and ACKs asking for the most (a COMPLETE SYN that lists
 * nobody, requests for every id, random digests), ACKs that ask for
 * every member in full, PUSHes of a wave nobody has seen (never passed
 * on for a stranger) and random junk, plain and sealed, and measures
 * bytes out over bytes in.
 */
static double amplification(const uint8_t *keys, uint32_t nkeys)
{
    cluster *c = engines(8, 1400, keys, nkeys);
    for (uint32_t i = 0; i < 8; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%u", i);
        check(cluster_set(c, i, k, "a value of some length") == SB_OK);
    }
    cluster_run(c, 5 * SEC);
    cluster_set_loss(c, 1.0);
    sb_engine *e = cluster_engine(c, 0);
    /* every packet the cluster sent so far, replayed from a stranger, and
     * the pushes of a fresh key */
    cluster_capture(c, CLUSTER_ALL, 1024);
    check(cluster_set(c, 1, "fresh", "pushed down the trees") == SB_OK);
    cluster_run(c, 2 * SEC);
    cluster_capture_stop(c);
    const cluster_packets *replay = cluster_captured(c);
    size_t ncaptured = replay->n;
    sb_rng rng;
    sb_rng_seed(&rng, cluster_seed());
    double worst = 0.0;
    uint64_t in = 0, out = 0;
    for (size_t i = 0; i < ncaptured + 2000; i++) {
        uint8_t buf[2048];
        size_t len;
        if (i < ncaptured) {
            len = replay->p[i].len;
            memcpy(buf, replay->p[i].data, len);
        } else if (!nkeys) {
            /* a SYN: COMPLETE, ASK and DOUBT flags at random, a random
             * summary, and up to 40 random entries, some of them
             * requests for real ids */
            sb_writer w = { buf, buf, buf + sizeof(buf) };
            uint32_t n = (uint32_t)sb_rng_below(&rng, 40);
            sb_put_header(&w, SB_MSG_SYN, sb_cluster_id("default"));
            sb_put_u64(&w, sb_rng_next(&rng));
            sb_put_u8(&w, (uint8_t)(sb_rng_below(&rng, 2) |
                                    sb_rng_below(&rng, 4) << 2));
            sb_put_u64(&w, sb_rng_next(&rng));
            sb_put_varint(&w, n);
            for (uint32_t k = 0; k < n; k++) {
                int who = (int)sb_rng_below(&rng, 8);
                sb_member m;
                sb_engine_member(e, (size_t)who, &m);
                sb_digest_entry d = {
                    sb_rng_below(&rng, 2)
                        ? sb_peer_id(m.addr, strlen(m.addr), m.generation)
                        : sb_rng_next(&rng) >> 16,
                    sb_rng_below(&rng, 3), false, 0, 0
                };
                sb_put_digest_entry(&w, &d);
            }
            len = (size_t)(w.p - buf);
        } else {
            /* junk: a sealed-looking header and random bytes */
            len = 8 + (size_t)sb_rng_below(&rng, 200);
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)sb_rng_next(&rng);
            sb_writer w = { buf, buf, buf + 8 };
            sb_put_header(&w, 1 + (int)sb_rng_below(&rng, 4),
                          sb_cluster_id("default"));
            buf[3] |= 0x80;
        }
        uint64_t before = cluster_bytes_out(c, 0);
        cluster_deliver(c, 0, "192.0.2.7:9999", buf, len);
        uint64_t sent = cluster_bytes_out(c, 0) - before;
        in += len;
        out += sent;
        double r = (double)sent / (double)len;
        if (r > worst)
            worst = r;
        check(sent <= len);
    }
    /* plaintext only (a stranger cannot seal): ACKs that ask for every
     * member in full (heartbeat 0), echoing the token a stranger gets in
     * any ACK to it (it holds its address), and PUSHes given a wave
     * nobody has seen */
    const uint8_t *push = NULL;
    size_t push_len = 0;
    for (size_t i = 0; i < ncaptured && !nkeys; i++)
        if ((replay->p[i].data[3] & 0x7f) == SB_MSG_PUSH) {
            push = replay->p[i].data;
            push_len = replay->p[i].len;
        }
    check(nkeys || push);
    for (int i = 0; i < 400 && !nkeys; i++) {
        uint8_t buf[2048];
        size_t len;
        if (i % 2) {
            sb_writer w = { buf, buf, buf + sizeof(buf) };
            sb_put_header(&w, SB_MSG_ACK, sb_cluster_id("default"));
            sb_put_u64(&w, sb_engine_token(e, "192.0.2.7:9999", cluster_now(c)));
            sb_put_u64(&w, sb_rng_next(&rng));
            sb_put_u64(&w, sb_rng_next(&rng)); /* summary */
            uint32_t n = 1 + (uint32_t)sb_rng_below(&rng, 8);
            sb_put_varint(&w, n);
            for (uint32_t k = 0; k < n; k++) {
                sb_member m;
                sb_engine_member(e, (size_t)sb_rng_below(&rng, 8), &m);
                sb_digest_entry d = {
                    sb_peer_id(m.addr, strlen(m.addr), m.generation), 0,
                    false, 0, 0
                };
                sb_put_digest_entry(&w, &d);
            }
            sb_put_varint(&w, 0);
            len = (size_t)(w.p - buf);
        } else {
            memcpy(buf, push, push_len);
            sb_set_item_wave(buf + SB_HEADER_SIZE + 1, /* the first */
                             sb_rng_next(&rng));
            len = push_len;
        }
        uint64_t before = cluster_bytes_out(c, 0);
        check(cluster_deliver(c, 0, "192.0.2.7:9999", buf, len) == SB_OK);
        uint64_t sent = cluster_bytes_out(c, 0) - before;
        in += len;
        out += sent;
        if ((double)sent / (double)len > worst)
            worst = (double)sent / (double)len;
        check(i % 2 ? sent <= len : sent == 0);
    }
    /* the same traffic from a member is answered in full */
    uint64_t before = cluster_bytes_out(c, 0);
    for (size_t i = 0; i < ncaptured; i++)
        cluster_deliver(c, 0, cluster_addr(c, replay->p[i].from),
                        replay->p[i].data, replay->p[i].len);
    uint64_t member_out = cluster_bytes_out(c, 0) - before;
    printf("amplification (%s): %zu replayed and %d made datagrams from a "
           "stranger, %llu bytes in, %llu out, worst ratio %.3f; the same "
           "replayed from members: %llu bytes out\n",
           nkeys ? "sealed" : "plaintext", ncaptured, nkeys ? 2000 : 2400,
           (unsigned long long)in, (unsigned long long)out, worst,
           (unsigned long long)member_out);
    cluster_free(c);
    return worst;
}

/* A PUSH larger than a node's own messages, from a member with larger
 * ones (any datagram is taken), is applied but not passed on: a node
 * sends within its own bound (passing it on overflowed the sealing
 * buffer of a sealed node). */
static void big_push_not_passed_on(const uint8_t *keys, uint32_t nkeys)
{
    cluster *a = engines(6, 1400, keys, nkeys);
    cluster_run(a, 3 * SEC);
    static char big[1201];
    memset(big, 'p', 1200);
    cluster_capture(a, 5, 0);
    check(cluster_set(a, 5, "big", big) == SB_OK);
    cluster_run(a, 50 * MS);
    cluster_capture_stop(a);
    const cluster_packets *sent = cluster_captured(a);
    const cluster_packet *push = NULL;
    for (size_t i = 0; i < sent->n && !push; i++)
        if (sent->p[i].len > 1200)
            push = &sent->p[i];
    check(push != NULL);
    cluster *b = engines(4, 512, keys, nkeys); /* 10.0.0.1 to 10.0.0.4 */
    cluster_run(b, 3 * SEC);
    check(cluster_all_live(b));
    /* the root makes itself known to every node (a PUSH brings no one
     * new: apply.c) */
    const char *root = cluster_addr(a, 5);
    sb_delta self = { .addr = root, .addr_len = strlen(root),
                      .generation = sb_engine_generation(cluster_engine(a, 5)),
                      .heartbeat = 1 };
    uint8_t intro[128];
    size_t intro_len = make_ack2(intro, sizeof(intro), &self, NULL);
    for (uint32_t i = 0; i < 4; i++)
        check(cluster_answer(b, i, root, intro, intro_len) == SB_OK);
    /* to every node (in the wave's tree, those with children would pass
     * it on), each time from another member */
    for (uint32_t i = 0; i < 4; i++) {
        check(cluster_deliver(b, i, cluster_addr(b, (i + 1) % 4), push->data,
                              push->len) == SB_OK);
        check(cluster_replies(b)->n == 0);
        check(cluster_holds(b, i, cluster_addr(a, 5), "big", big));
    }
    cluster_free(a);
    cluster_free(b);
}

static void test_big_push_not_passed_on(void **state)
{
    (void)state;
    big_push_not_passed_on(NULL, 0);
    big_push_not_passed_on(key_a, 1);
}

/* ---- the sweep: a joining node's transfer (sweep.c) --------------------- */

/* n engines (512-byte messages, sealed with `keys` if any) that each
 * hold a 64-byte key, converged; then a node joins, its packets and
 * everyone's captured from its start: its index. */
static int join_captured(uint32_t n, const uint8_t *keys, uint32_t nkeys,
                         cluster **out)
{
    cluster *c = engines(n, 512, keys, nkeys);
    for (uint32_t i = 0; i < n; i++)
        check(cluster_set(c, i, "state", "0123456789abcdef0123456789abcdef"
                                         "0123456789abcdef0123456789abcdef") ==
              SB_OK);
    cluster_wait(c, 60 * SEC, cluster_converged(c));
    check(cluster_converged(c));
    cluster_capture(c, CLUSTER_ALL, 0);
    *out = c;
    return cluster_add_node(c);
}

/*
 * A node joins a converged cluster of 40 whose nodes hold a key each: its
 * SYNs ask for a sweep until one ends it (the last range, or a peer that
 * holds what it holds), then no longer; every SWEEP it gets answers one
 * of them (no more than SWEEP_BURST a SYN), fits a message, and some
 * carry records.
 */
static void test_join_sweeps_the_cluster(void **state)
{
    (void)state;
    cluster *c;
    int j = join_captured(40, NULL, 0, &c);
    check(j == 40);
    cluster_wait(c, 30 * SEC, cluster_converged(c));
    check(cluster_converged(c));
    cluster_run(c, 2 * SEC);
    const cluster_packets *p = cluster_captured(c);
    size_t asked = 0, swept = 0, records = 0, last_ask = 0, last_syn = 0;
    for (size_t k = 0; k < p->n; k++) {
        const cluster_packet *x = &p->p[k];
        int type = x->data[3] & 0x7f;
        if (x->from == (uint32_t)j && type == SB_MSG_SYN) {
            last_syn = k;
            if (x->data[SB_HEADER_SIZE + SB_TOKEN_SIZE] & SB_SYN_SWEEP) {
                asked++;
                last_ask = k;
            }
        }
        if (x->to == j && type == SB_MSG_SWEEP) {
            sb_msg m;
            int why;
            check(x->len <= 512);
            check(sb_msg_decode(x->data, x->len, sb_cluster_id("default"),
                                &m, &why));
            swept++;
            records += m.ndeltas;
        }
    }
    printf("sweep: %zu SYNs asked, %zu SWEEPs carried %zu records\n", asked,
           swept, records);
    check(asked >= 1 && last_syn > last_ask); /* it ended */
    check(swept >= 1 && swept <= SWEEP_BURST * asked);
    check(records >= 1);
    cluster_free(c);
}

/* 200 nodes of 512-byte messages (on paths of `latency` and `jitter`),
 * each with a 64-byte key, converged; then packets are captured. */
static cluster *sweep_cluster(uint64_t latency, uint64_t jitter)
{
    cluster_config cfg;
    cluster_config_init(&cfg, 200);
    cfg.latency_ns = latency;
    cfg.jitter_ns = jitter;
    cfg.engine.max_message_size = 512;
    cluster *c = cluster_new(&cfg);
    char v[65];
    memset(v, 'x', 64);
    v[64] = '\0';
    for (uint32_t i = 0; i < 200; i++)
        check(cluster_set(c, i, "k", v) == SB_OK);
    eventually(c, 60 * SEC, cluster_converged(c));
    cluster_run(c, SEC);
    cluster_capture(c, CLUSTER_ALL, 0);
    return c;
}

/* The k-th captured packet, if it is a SWEEP to node j, decoded. */
static bool sweep_to(cluster *c, size_t k, int j, sb_msg *m)
{
    const cluster_packet *x = &cluster_captured(c)->p[k];
    int why;
    return x->to == j && (x->data[3] & 0x7f) == SB_MSG_SWEEP &&
           sb_msg_decode(x->data, x->len, sb_cluster_id("default"), m, &why);
}

/* A joiner's sweep, on paths with jitter (its SWEEPs come out of order):
 * one member a round answers, and no range comes twice, for the cursor
 * moves to the end of the furthest range that came, and a range that
 * comes late is taken for its records alone. */
static void test_sweep_ranges_come_once(void **state)
{
    (void)state;
    cluster *c = sweep_cluster(2 * MS, 1 * MS);
    int j = cluster_add_node(c);
    eventually(c, 5 * SEC, !cluster_engine(c, (uint32_t)j)->sweeping);
    static uint64_t from[4096], to[4096];
    size_t n = 0, again = 0;
    for (size_t k = 0; k < cluster_captured(c)->n; k++) {
        sb_msg m;
        if (!sweep_to(c, k, j, &m))
            continue;
        bool seen = false;
        for (size_t q = 0; q < n; q++)
            seen |= from[q] == m.from && to[q] == m.to;
        if (seen)
            again++;
        else if (n < 4096) {
            from[n] = m.from;
            to[n++] = m.to;
        }
    }
    printf("sweep with jitter: %zu ranges, %zu came again\n", n, again);
    check(n >= 1);
    check(again == 0);
    cluster_free(c);
}

/* A joiner that loses 30% of what is sent to it: a SWEEP lost leaves its
 * records to anti-entropy, and the next SYN asks from the end of the
 * furthest range that came, not from the gap, so that the members send
 * it each record about once (counted as sent, before the loss); the
 * sweep ends, and the joiner then holds every record. */
static void test_lost_sweeps_not_sent_again(void **state)
{
    (void)state;
    cluster *c = sweep_cluster(1 * MS, 0);
    int j = cluster_add_node(c);
    check(j == 200);
    cluster_slow_node(c, (uint32_t)j, 0.3, 0);
    eventually(c, 10 * SEC, !cluster_engine(c, (uint32_t)j)->sweeping);
    size_t swept = 0, records = 0;
    for (size_t k = 0; k < cluster_captured(c)->n; k++) {
        sb_msg m;
        if (!sweep_to(c, k, j, &m))
            continue;
        swept++;
        records += m.ndeltas;
    }
    printf("sweep at 30%% loss: %zu SWEEPs sent, %zu records for 200\n",
           swept, records);
    check(records >= 200);
    check(records <= 250);
    cluster_slow_node(c, (uint32_t)j, 0, 0);
    eventually(c, 30 * SEC, cluster_converged(c));
    cluster_free(c);
}

/* A SYN that asks for a sweep from an address no node knows gets none
 * (nor anything larger than itself). */
static void test_no_sweep_for_strangers(void **state)
{
    (void)state;
    cluster *c = engines(3, 512, NULL, 0);
    cluster_wait(c, 10 * SEC, cluster_converged(c));
    uint8_t buf[64];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    sb_put_header(&w, SB_MSG_SYN, sb_cluster_id("default"));
    sb_put_u64(&w, 0x5eed);
    sb_put_u8(&w, SB_SYN_SWEEP);
    sb_put_u64(&w, 0); /* a summary: not ours */
    sb_put_u64(&w, 0); /* the cursor: everything */
    sb_put_varint(&w, 0);
    size_t len = (size_t)(w.p - buf);
    check(cluster_deliver(c, 0, "198.51.100.9:7946", buf, len) == SB_OK);
    const cluster_packets *r = cluster_replies(c);
    for (size_t k = 0; k < r->n; k++) {
        if (strcmp(r->p[k].to_addr, "198.51.100.9:7946") != 0)
            continue;
        check((r->p[k].data[3] & 0x7f) != SB_MSG_SWEEP);
        check(r->p[k].len <= len);
    }
    cluster_free(c);
}

/* ---- joins asked at run time ---------------------------------------- */

/* Nodes with no seeds meet only through sb_engine_join(): two clusters
 * form around nodes 0 and 4, know nothing of each other however long
 * they run, and merge once a node of one joins a node of the other. On
 * both wires. */
static void join_merges_two_clusters(sb_wire wire)
{
    cluster_config cfg;
    cluster_config_init(&cfg, 8);
    cfg.seeds = 0;
    cfg.step_ns = 10 * MS;
    cfg.engine.wire = wire;
    cluster *c = cluster_new(&cfg);
    for (uint32_t i = 1; i < 8; i++)
        if (i != 4)
            check(sb_engine_join(cluster_engine(c, i),
                                 cluster_addr(c, i < 4 ? 0 : 4),
                                 cluster_now(c)) == SB_OK);
    cluster_run(c, 10 * SEC);
    for (uint32_t i = 0; i < 8; i++)
        for (uint32_t j = 0; j < 8; j++)
            check(i == j || (cluster_status(c, i, j) == SB_STATUS_LIVE) ==
                                ((i < 4) == (j < 4)));
    for (uint32_t i = 0; i < 8; i++)
        check(cluster_engine(c, i)->njoins == 0); /* answered: done */
    check(sb_engine_join(cluster_engine(c, 2), cluster_addr(c, 6),
                         cluster_now(c)) == SB_OK);
    cluster_wait(c, 10 * SEC, cluster_all_live(c));
    check(cluster_all_live(c));
    cluster_free(c);
}

static void test_join_merges_two_clusters(void **state)
{
    (void)state;
    join_merges_two_clusters(SB_WIRE_SCUTTLEBUTT);
    join_merges_two_clusters(SB_WIRE_REFERENCE);
}

/* An address where no one answers is greeted at once and every round
 * for JOIN_INTERVALS, with SYNs padded as a seed's, then no more; the
 * errors of sb_engine_join(). */
static void test_join_of_nowhere_gives_up(void **state)
{
    (void)state;
    cluster *c = engines(3, 512, NULL, 0);
    cluster_wait(c, 10 * SEC, cluster_converged(c));
    sb_engine *e = cluster_engine(c, 1);
    const char *nowhere = "198.51.100.9:7946";
    cluster_capture(c, 1, 0);
    check(sb_engine_join(e, nowhere, cluster_now(c)) == SB_OK);
    check(sb_engine_join(e, nowhere, cluster_now(c)) == SB_OK); /* again */
    check(e->njoins == 1);
    cluster_run(c, JOIN_INTERVALS * 100 * MS + 5 * SEC);
    check(e->njoins == 0 && e->joins == NULL);
    const cluster_packets *p = cluster_captured(c);
    size_t syns = 0;
    for (size_t k = 0; k < p->n; k++)
        if (strcmp(p->p[k].to_addr, nowhere) == 0) {
            check((p->p[k].data[3] & 0x7f) == SB_MSG_SYN);
            check(p->p[k].len >= SB_SYN_PADDED_SIZE);
            syns++;
        }
    /* two at once (asked twice), then a round's for as long as it lasts */
    check(syns == 2 + JOIN_INTERVALS * e->wire->rounds);
    check(sb_engine_join(e, "", cluster_now(c)) == SB_EINVAL);
    check(sb_engine_join(e, cluster_addr(c, 1), cluster_now(c)) == SB_EADDR);
    char addr[32];
    for (int i = 0; i < SB_MAX_SEEDS; i++) {
        snprintf(addr, sizeof(addr), "198.51.100.%d:7946", i + 1);
        check(sb_engine_join(e, addr, cluster_now(c)) == SB_OK);
    }
    check(sb_engine_join(e, "203.0.113.1:7946", cluster_now(c)) ==
          SB_ELIMIT);
    check(sb_engine_leave(e, cluster_now(c)) == SB_OK);
    check(sb_engine_join(e, cluster_addr(c, 0), cluster_now(c)) == SB_ELEFT);
    cluster_free(c);
}

/* A join to the address of a member held down, which answered us before
 * it went, is greeted as one to a stranger: every round until it answers
 * again, for JOIN_INTERVALS, not once (an answer from before the join
 * does not end it). Node 0, the seed, answered node 1's first SYN. */
static void test_join_of_a_down_member_is_retried(void **state)
{
    (void)state;
    cluster *c = engines(4, 512, NULL, 0);
    cluster_wait(c, 10 * SEC, cluster_converged(c));
    sb_engine *e = cluster_engine(c, 1);
    const char *addr = cluster_addr(c, 0);
    const sb_peer *n = sb_state_find_addr(&e->st, addr, strlen(addr));
    check(n && n->answered);
    cluster_crash(c, 0);
    eventually(c, 60 * SEC, cluster_status(c, 1, 0) == SB_STATUS_DOWN);
    check(sb_engine_join(e, addr, cluster_now(c)) == SB_OK);
    cluster_run(c, 3 * 100 * MS);
    check(e->njoins == 1); /* no answer since the join: greeted on */
    check(cluster_restart(c, 0) == SB_OK);
    eventually(c, 5 * SEC, e->njoins == 0); /* it answered: done */
    cluster_free(c);
}

/* A leave ends the joins under way, as it refuses new ones: the address
 * gets no greeting after it (a node leaving does not bring its cluster
 * to another). */
static void test_join_ends_on_leave(void **state)
{
    (void)state;
    cluster *c = engines(3, 512, NULL, 0);
    cluster_wait(c, 10 * SEC, cluster_converged(c));
    sb_engine *e = cluster_engine(c, 1);
    const char *nowhere = "198.51.100.9:7946";
    check(sb_engine_join(e, nowhere, cluster_now(c)) == SB_OK);
    cluster_run(c, 2 * 100 * MS);
    check(e->njoins == 1);
    check(sb_engine_leave(e, cluster_now(c)) == SB_OK);
    cluster_capture(c, 1, 0);
    cluster_run(c, JOIN_INTERVALS * 100 * MS);
    const cluster_packets *p = cluster_captured(c);
    for (size_t k = 0; k < p->n; k++)
        check(strcmp(p->p[k].to_addr, nowhere) != 0);
    check(e->njoins == 0 && e->joins == NULL);
    cluster_free(c);
}

/* The SYNs a joiner sent asking for its sweep, replayed from its
 * address to every member once its sweep is over: a member answers one
 * with its ACK, which the joiner drops (its token is of a period gone),
 * and holds the sweep back until an ACK2 that never comes; or, if the
 * SYN names the summary the member holds, with the SWEEP smaller than
 * the SYN that ends a sweep. Served at once, each replayed SYN drew up
 * to SWEEP_BURST messages of records onto the joiner: an amplifier
 * needing no key (sealed here). */
static void test_replayed_sweep_asks_draw_no_sweep(void **state)
{
    (void)state;
    static const uint8_t key[SB_KEY_SIZE] = { 4, 5, 6 };
    cluster *c;
    int j = join_captured(16, key, 1, &c);
    /* until its sweep is over: the joiner may hold every record before
     * (ordinary exchanges brought them), and a SWEEP ends it */
    cluster_wait(c, 30 * SEC, cluster_converged(c) &&
                                  !cluster_engine(c, (uint32_t)j)->sweeping);
    check(cluster_converged(c));
    check(!cluster_engine(c, (uint32_t)j)->sweeping);
    cluster_capture_stop(c);
    /* sealed: the joiner's first SYNs, which ask */
    cluster_packets *cap = cluster_captured(c);
    size_t nsyn = 0, swept = 0;
    cluster_packet syn[8];
    for (size_t k = 0; k < cap->n; k++) {
        cluster_packet *x = &cap->p[k];
        swept += x->to == j && (x->data[3] & 0x7f) == SB_MSG_SWEEP;
        if (nsyn < 8 && x->from == (uint32_t)j &&
            (x->data[3] & 0x7f) == SB_MSG_SYN) {
            syn[nsyn] = *x;
            syn[nsyn].data = malloc(x->len);
            memcpy(syn[nsyn++].data, x->data, x->len);
        }
    }
    check(nsyn >= 1 && swept >= 1); /* the join itself was swept */
    cluster_run(c, 10 * SEC);
    cluster_capture(c, CLUSTER_ALL, 0);
    for (size_t k = 0; k < nsyn; k++)
        for (uint32_t i = 0; i < 16; i++)
            cluster_deliver(c, i, cluster_addr(c, (uint32_t)j), syn[k].data,
                            syn[k].len);
    cluster_run(c, SEC);
    cluster_capture_stop(c);
    cap = cluster_captured(c);
    size_t least = SIZE_MAX;
    for (size_t k = 0; k < nsyn; k++)
        least = syn[k].len < least ? syn[k].len : least;
    size_t sweeps = 0, bytes = 0, larger = 0;
    for (size_t k = 0; k < cap->n; k++) {
        bool sweep = cap->p[k].to == j &&
                     (cap->p[k].data[3] & 0x7f) == SB_MSG_SWEEP;
        sweeps += sweep;
        larger += sweep && cap->p[k].len >= least;
        bytes += cap->p[k].to == j ? cap->p[k].len : 0;
    }
    printf("the joiner's first %zu SYNs (%zu bytes the first) replayed "
           "to 16 members: %zu SWEEPs, %zu bytes to the joiner in 1 s\n",
           nsyn, syn[0].len, sweeps, bytes);
    /* none with records: at most the one SWEEP, smaller than the SYN,
     * that ends a sweep whose summary is ours (the joiner's last SYNs,
     * sent once it held all, name the summary the members still have) */
    check(larger == 0 && sweeps <= nsyn * 16);
    for (size_t k = 0; k < nsyn; k++)
        free(syn[k].data);
    cluster_free(c);
}

/* A node whose seed list names itself first (every node given the same
 * list) asks the next seed for the sweep: its first SYN to it carries
 * the cursor. */
static void test_sweep_asked_past_ourselves(void **state)
{
    (void)state;
    cluster_config cfg;
    cluster_config_init(&cfg, 2);
    cfg.seeds = 2; /* node 0's list: node 0, node 1 */
    cluster *c = cluster_new(&cfg);
    cluster_capture(c, 0, 0);
    cluster_wait(c, 10 * SEC, cluster_converged(c));
    cluster_capture_stop(c);
    const cluster_packets *p = cluster_captured(c);
    size_t k = 0;
    while (k < p->n && (p->p[k].to != 1 || p->p[k].data[3] != SB_MSG_SYN))
        k++;
    check(k < p->n);
    check(p->p[k].data[SB_HEADER_SIZE + SB_TOKEN_SIZE] & SB_SYN_SWEEP);
    cluster_free(c);
}

/* ---- ranges: where two nodes differ (range.c) ------------------------- */

/* A SYN from member `from` to node 0 with a summary that is not its own
 * and a range (from_id, to_id]: with `prints` (16 of them), or listing
 * the records in `listed`. Returns what node 0 sent back. */
static const cluster_packets *range_syn(cluster *c, const char *from,
                                        uint64_t from_id, uint64_t to_id,
                                        const uint32_t *prints,
                                        sb_peer *const *listed, size_t n)
{
    uint8_t buf[512];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    sb_put_header(&w, SB_MSG_SYN, sb_cluster_id("default"));
    sb_put_u64(&w, 0x5eed);
    sb_put_u8(&w, SB_SYN_RANGE);
    sb_put_u64(&w, 0); /* a summary: not ours */
    sb_put_u64(&w, from_id);
    sb_put_u64(&w, to_id);
    sb_put_u8(&w, prints ? SB_RANGE_PARTS : 0);
    for (uint32_t i = 0; prints && i < SB_RANGE_PARTS; i++)
        sb_put_u32(&w, prints[i]);
    sb_put_varint(&w, n);
    for (size_t i = 0; i < n; i++) {
        sb_digest_entry d = sb_entry_of(listed[i]);
        sb_put_digest_entry(&w, &d);
    }
    check(cluster_deliver(c, 0, from, buf, (size_t)(w.p - buf)) == SB_OK);
    return cluster_replies(c);
}

/* A converged 12-node cluster at rest; node 0's records in id order. */
static cluster *range_cluster(sb_engine **e)
{
    cluster *c = engines(12, 512, NULL, 0);
    cluster_wait(c, 10 * SEC, cluster_converged(c));
    cluster_run(c, 2 * SEC); /* nothing changed lately */
    *e = cluster_engine(c, 0);
    sb_summary(*e); /* the shares current */
    check((*e)->st.count == 12);
    return c;
}

/* Fingerprints: a part that differs is named in a DIFF that echoes the
 * SYN's token; parts that agree are not, and no DIFF comes when all do. */
static void test_range_fingerprints_answered_with_diff(void **state)
{
    (void)state;
    sb_engine *e;
    cluster *c = range_cluster(&e);
    uint64_t from = 0, to = SB_SWEEP_END;
    uint32_t prints[SB_RANGE_PARTS] = { 0 };
    for (uint32_t i = 0; i < e->st.count; i++) {
        const sb_peer *n = sb_state_sorted(&e->st, i);
        uint32_t part =
            (uint32_t)((SB_RANGE_PARTS * (n->id - from) - 1) / (to - from));
        prints[part] ^= (uint32_t)n->share;
    }
    const char *member = cluster_addr(c, 1);
    const cluster_packets *r = range_syn(c, member, from, to, prints, NULL, 0);
    for (size_t k = 0; k < r->n; k++)
        check((r->p[k].data[3] & 0x7f) != SB_MSG_DIFF);
    prints[5] ^= 1;
    prints[11] ^= 0x80000000u;
    r = range_syn(c, member, from, to, prints, NULL, 0);
    int diffs = 0;
    for (size_t k = 0; k < r->n; k++) {
        sb_msg m;
        int why;
        if ((r->p[k].data[3] & 0x7f) != SB_MSG_DIFF)
            continue;
        diffs++;
        check(strcmp(r->p[k].to_addr, member) == 0);
        check(sb_msg_decode(r->p[k].data, r->p[k].len,
                            sb_cluster_id("default"), &m, &why));
        check(m.echo == 0x5eed && m.from == from && m.to == to);
        check(m.differ == (1u << 5 | 1u << 11));
    }
    check(diffs == 1);
    cluster_free(c);
}

/* Listed: the records of the range that the digest left out come whole
 * in the ACK, and no record outside the range. */
static void test_range_listed_sends_what_was_left_out(void **state)
{
    (void)state;
    sb_engine *e;
    cluster *c = range_cluster(&e);
    /* the range holds records 4, 5 and 6 in id order; 4 is listed */
    uint64_t from = sb_state_sorted(&e->st, 3)->id;
    uint64_t to = sb_state_sorted(&e->st, 6)->id;
    sb_peer *listed = sb_state_sorted(&e->st, 4);
    const cluster_packets *r =
        range_syn(c, cluster_addr(c, 1), from, to, NULL, &listed, 1);
    int acks = 0;
    for (size_t k = 0; k < r->n; k++) {
        sb_msg m;
        int why;
        if ((r->p[k].data[3] & 0x7f) != SB_MSG_ACK)
            continue;
        acks++;
        check(sb_msg_decode(r->p[k].data, r->p[k].len,
                            sb_cluster_id("default"), &m, &why));
        bool got5 = false, got6 = false;
        sb_cursor cur = { m.deltas, m.end };
        for (uint64_t i = 0; i < m.ndeltas; i++) {
            sb_delta d;
            sb_delta_next(&cur, &d);
            uint64_t id = sb_peer_id(d.addr, d.addr_len, d.generation);
            uint64_t id5 = sb_state_sorted(&e->st, 5)->id;
            uint64_t id6 = sb_state_sorted(&e->st, 6)->id;
            check(id == id5 || id == id6);
            got5 |= id == id5;
            got6 |= id == id6;
        }
        check(got5 && got6);
    }
    check(acks == 1);
    cluster_free(c);
}

/* The summary stays the XOR of every record's hash when more records
 * change between two reads than the touched list holds, and records go
 * while it is over. */
static void test_summary_after_many_changes(void **state)
{
    (void)state;
    cluster *c = engines(1, 512, NULL, 0);
    sb_engine *e = cluster_engine(c, 0);
    sb_engine_summary(e);
    check(!e->st.overflow);
    for (uint32_t i = 0; i < STATE_TOUCHED + 50; i++) {
        char addr[32];
        int len = snprintf(addr, sizeof(addr), "10.1.%u.%u:7946", i / 250,
                           i % 250 + 1);
        check(sb_state_add(&e->st, addr, (size_t)len, 1 + i));
    }
    check(e->st.overflow && e->st.ntouched == e->st.touched_cap);
    /* one listed and one past the list leave before the read */
    sb_state_remove(&e->st, e->st.touched[3]);
    sb_state_remove(&e->st, e->st.peers[e->st.count - 1]);
    uint64_t summary = sb_engine_summary(e);
    check(!e->st.overflow && e->st.ntouched == 0);
    for (uint32_t i = 0; i < e->st.count; i++)
        check(!e->st.peers[i]->touched); /* every share taken again */
    check(sb_engine_summary_fresh(e));
    /* the same records touched a few at a time give the same summary */
    for (uint32_t i = 0; i < e->st.count; i += 7)
        sb_state_touch(&e->st, e->st.peers[i]);
    check(!e->st.overflow);
    check(sb_engine_summary(e) == summary && sb_engine_summary_fresh(e));
    cluster_free(c);
}

/* Of more candidates than one message could carry, a plan keeps the most
 * out of date (a peer the receiver lacks first), and they go out in that
 * order, whatever order they came in. */
static void test_plan_keeps_the_most_behind(void **state)
{
    (void)state;
    cluster *c = engines(1, 512, NULL, 0);
    sb_engine *e = cluster_engine(c, 0);
    enum { N = 300 };
    sb_peer *peers = calloc(N, sizeof(*peers));
    check(peers);
    check(sb_scratch_hold(&e->scratch)); /* as a call would */
    plan *p = sb_plan_new(e);
    uint32_t cap = e->scratch.ncands - 1;
    check(cap >= 4 && cap < N);
    for (uint32_t i = 0; i < N; i++) {
        peers[i].max_version = (uint64_t)(i * 7919 % N) + 1; /* 1..N */
        cand k = { .n = &peers[i], .tie = i, .whole = i == 150 || i == 7 };
        sb_plan_offer(e, p, &k);
    }
    check(p->ncands == cap);
    sb_plan_sort(e, p);
    const cand *k = e->scratch.cands;
    check(k[0].whole && k[1].whole);
    for (uint32_t i = 2; i < cap; i++) {
        check(!k[i].whole);
        /* the others, most behind first: N, N - 1, ... but for the two
         * whole ones' own versions */
        check(i == 2 || k[i].n->max_version < k[i - 1].n->max_version);
        uint32_t above = 0;
        for (uint32_t j = 0; j < N; j++)
            above += !(j == 150 || j == 7) &&
                     peers[j].max_version > k[i].n->max_version;
        check(above == i - 2);
    }
    sb_scratch_release(&e->scratch);
    free(peers);
    cluster_free(c);
}

/* A recent change offered ranks as one version behind, however far back
 * it starts: the deltas the receiver's digest shows it lacks more go
 * first. A change offered from version 0 (a record caught up on after a
 * heal) went first by its versions, and filled every ACK with records
 * the receiver held. */
static void test_plan_ranks_news_one_behind(void **state)
{
    (void)state;
    cluster *c = engines(1, 512, NULL, 0);
    sb_engine *e = cluster_engine(c, 0);
    sb_peer peers[4] = { { .max_version = 50 }, { .max_version = 9 },
                         { .max_version = 40 }, { .max_version = 5 } };
    check(sb_scratch_hold(&e->scratch)); /* as a call would */
    plan *p = sb_plan_new(e);
    cand k[4] = {
        { .n = &peers[0], .from = 0, .news = true, .tie = 0 }, /* 50 */
        { .n = &peers[1], .from = 6, .tie = 1 },               /* 3 */
        { .n = &peers[2], .from = 39, .news = true, .tie = 2 }, /* 1 */
        { .n = &peers[3], .from = 0, .tie = 3 },               /* 5 */
    };
    for (int i = 0; i < 4; i++)
        sb_plan_offer(e, p, &k[i]);
    sb_plan_sort(e, p);
    const cand *out = e->scratch.cands;
    check(p->ncands == 4);
    check(out[0].n == &peers[3] && out[1].n == &peers[1]);
    check(out[2].n == &peers[0] && out[3].n == &peers[2]);
    sb_scratch_release(&e->scratch);
    cluster_free(c);
}

/* A DIFF about (from, to] naming the parts in `differ`, into buf[64];
 * its length. */
static size_t range_diff(uint8_t *buf, uint64_t from, uint64_t to,
                         uint64_t differ)
{
    sb_writer w = { buf, buf, buf + 64 };
    sb_put_header(&w, SB_MSG_DIFF, sb_cluster_id("default"));
    sb_put_u64(&w, 0); /* the echo: written by cluster_answer() */
    sb_put_u64(&w, from);
    sb_put_u64(&w, to);
    sb_put_varint(&w, differ);
    return (size_t)(w.p - buf);
}

/* Our SYN of fingerprints about (from, to], written (not sent): a DIFF
 * may answer it. */
static void range_ask(sb_engine *e, uint64_t from, uint64_t to)
{
    uint8_t syn[512];
    sb_writer w = { syn, syn, syn + sizeof(syn) };
    sb_range r = { .from = from, .to = to };
    sb_range_put(e, &w, &r);
}

/* A DIFF is taken only about the range of our last fingerprints, once:
 * one made up, late or repeated leaves nothing to descend into. */
static void test_range_diff_only_as_asked(void **state)
{
    (void)state;
    sb_engine *e;
    cluster *c = range_cluster(&e);
    uint8_t buf[64];
    size_t len = range_diff(buf, 0, SB_SWEEP_END, 1u << 3 | 1u << 9);
    const char *member = cluster_addr(c, 1);
    check(cluster_answer(c, 0, member, buf, len) == SB_OK);
    check(e->nranges == 0); /* we asked about no range */
    range_ask(e, 0, SB_SWEEP_END);
    check(cluster_answer(c, 0, member, buf, len) == SB_OK);
    check(e->nranges == 2);
    /* part 3 on top: (w * 3 / 16, w * 4 / 16] of the whole space w */
    check(e->ranges[1].from == SB_SWEEP_END * 3 / 16 &&
          e->ranges[1].to == SB_SWEEP_END * 4 / 16);
    e->nranges = 0;
    check(cluster_answer(c, 0, member, buf, len) == SB_OK);
    check(e->nranges == 0); /* once */
    cluster_free(c);
}

/* A DIFF answers any of our last RANGE_ASKED SYNs of fingerprints, each
 * once, in any order; not one older than those. */
static void test_range_diff_answers_recent_syns(void **state)
{
    (void)state;
    sb_engine *e;
    cluster *c = range_cluster(&e);
    const char *member = cluster_addr(c, 1);
    uint8_t buf[64];
    /* RANGE_ASKED + 1 SYNs of fingerprints, about (i, i + 1] << 20 */
    for (uint32_t i = 0; i <= RANGE_ASKED; i++)
        range_ask(e, (uint64_t)i << 20, (uint64_t)(i + 1) << 20);
    /* the first one's slot went to the last */
    size_t len = range_diff(buf, 0, 1u << 20, 1u << 2);
    check(cluster_answer(c, 0, member, buf, len) == SB_OK);
    check(e->nranges == 0);
    /* the third, then the last, then the third again */
    len = range_diff(buf, 2u << 20, 3u << 20, 1u << 2 | 1u << 5);
    check(cluster_answer(c, 0, member, buf, len) == SB_OK);
    check(e->nranges == 2);
    len = range_diff(buf, (uint64_t)RANGE_ASKED << 20,
                     (uint64_t)(RANGE_ASKED + 1) << 20, 1u << 7);
    check(cluster_answer(c, 0, member, buf, len) == SB_OK);
    check(e->nranges == 3);
    check(e->ranges[2].from ==
          ((uint64_t)RANGE_ASKED << 20) + (7u << 16));
    len = range_diff(buf, 2u << 20, 3u << 20, 1u << 2 | 1u << 5);
    check(cluster_answer(c, 0, member, buf, len) == SB_OK);
    check(e->nranges == 3); /* once */
    cluster_free(c);
}

/* The parts a DIFF named are held while a descent has some left, freed
 * at the first round with none; a DIFF about one of our last SYNs of
 * fingerprints is taken however late it comes. */
static void test_range_parts_freed(void **state)
{
    (void)state;
    sb_engine *e;
    cluster *c = range_cluster(&e);
    check(e->ranges == NULL); /* at rest */
    range_ask(e, 0, SB_SWEEP_END);
    uint8_t buf[64];
    size_t len = range_diff(buf, 0, SB_SWEEP_END, 1u << 3);
    cluster_run(c, 10 * e->cfg.interval_ns); /* a late DIFF */
    check(e->ranges == NULL);
    check(cluster_answer(c, 0, cluster_addr(c, 1), buf, len) == SB_OK);
    check(e->nranges == 1 && e->ranges != NULL);
    e->nranges = 0; /* descended into */
    cluster_run(c, 2 * e->round_ns);
    check(e->ranges == NULL);
    cluster_free(c);
}

/* A DIFF whose parts do not all fit the list makes room at its bottom,
 * where the parts a descent reaches last lie: all of its parts are kept,
 * its first on top, and the parts below move down. Kept instead, the
 * parts below left room for one of the DIFF's parts only. */
static void test_range_diff_makes_room(void **state)
{
    (void)state;
    sb_engine *e;
    cluster *c = range_cluster(&e);
    uint8_t buf[64]; /* about (0, 2^20] */
    size_t len = range_diff(buf, 0, 1u << 20, 1u << 3 | 1u << 9 | 1u << 12);
    range_ask(e, 0, 1u << 20);
    /* a list left by an earlier DIFF, one slot free: parts of (2^20, ..] */
    e->ranges = malloc(RANGES * sizeof(*e->ranges)); /* the engine frees it */
    check(e->ranges != NULL);
    for (uint32_t i = 0; i < RANGES - 1; i++) {
        e->ranges[i].from = (2u + i) << 20;
        e->ranges[i].to = (3u + i) << 20;
    }
    e->nranges = RANGES - 1;
    check(cluster_answer(c, 0, cluster_addr(c, 1), buf, len) == SB_OK);
    check(e->nranges == RANGES);
    /* the two at the bottom made room; the rest moved down by two */
    for (uint32_t i = 0; i < RANGES - 3; i++)
        check(e->ranges[i].from == (4u + i) << 20);
    /* then parts 12, 9 and 3 of (0, 2^20], part 3 on top */
    check(e->ranges[RANGES - 3].from == 12u << 16);
    check(e->ranges[RANGES - 2].from == 9u << 16);
    check(e->ranges[RANGES - 1].from == 3u << 16 &&
          e->ranges[RANGES - 1].to == 4u << 16);
    cluster_free(c);
}

/* The SYNs with a range node 0 sends in its next round (none of its
 * peers answers: no descent goes on at an ACK), ranges[k] = (from, to]
 * of the k-th of them, and to[k] the node it went to; how many. */
static size_t range_round(cluster *c, sb_engine *e, sb_range ranges[],
                          int to[], size_t max)
{
    for (uint32_t j = 1; j < cluster_size(c); j++)
        cluster_block(c, j, 0, true);
    cluster_run_until(c, e->next_round - 1);
    e->agreed = 0; /* we differ from our peers */
    cluster_capture(c, 0, 0);
    cluster_run_until(c, e->next_round);
    cluster_capture_stop(c);
    const cluster_packets *p = cluster_captured(c);
    size_t n = 0;
    for (size_t k = 0; k < p->n; k++) {
        sb_msg m;
        int why;
        if ((p->p[k].data[3] & 0x7f) != SB_MSG_SYN)
            continue;
        check(sb_msg_decode(p->p[k].data, p->p[k].len,
                            sb_cluster_id("default"), &m, &why));
        if (!(m.flags & SB_SYN_RANGE))
            continue;
        check(n < max);
        ranges[n] = (sb_range){ .from = m.from, .to = m.to };
        to[n++] = p->p[k].to;
    }
    for (uint32_t j = 1; j < cluster_size(c); j++)
        cluster_block(c, j, 0, false);
    return n;
}

/* A descent goes on in RANGE_LANES SYNs a round, the parts on top of the
 * stack in turn, to the peer it descends with; with none under way and a
 * difference that stays, a second SYN of the whole space goes with the
 * round's. With one SYN a round, a SYN or DIFF lost stopped the whole
 * descent until the next round. */
static void test_range_descent_lanes(void **state)
{
    (void)state;
    sb_engine *e;
    cluster *c = range_cluster(&e);
    uint8_t buf[64];
    range_ask(e, 0, SB_SWEEP_END);
    size_t len = range_diff(buf, 0, SB_SWEEP_END, 0x3f); /* parts 0-5 */
    check(cluster_answer(c, 0, cluster_addr(c, 1), buf, len) == SB_OK);
    check(e->nranges == 6);
    sb_range r[8];
    int to[8];
    size_t n = range_round(c, e, r, to, 8);
    check(n == RANGE_LANES);
    for (size_t k = 0; k < n; k++) {
        check(to[k] == 1);
        check(r[k].from == SB_SWEEP_END * k / 16 &&
              r[k].to == SB_SWEEP_END * (k + 1) / 16);
    }
    check(e->nranges == 6 - RANGE_LANES);
    /* no descent left, and no peer matched us for RANGE_ROUNDS */
    e->nranges = 0;
    e->agreed_at = 0;
    n = range_round(c, e, r, to, 8);
    check(n == 2);
    for (size_t k = 0; k < n; k++)
        check(r[k].from == 0 && r[k].to == SB_SWEEP_END && to[k] > 0);
    cluster_free(c);
}

/* ---- reflection: what the cluster sends to an address it was told of -- */

#define VICTIM "192.0.2.99:7946"

/* Datagrams (and their bytes) the cluster sent to `to` among those
 * captured. */
/* Datagrams (and bytes) captured to `to`; of one message type, or of any
 * with type 0. */
static size_t sent_to(cluster *c, const char *to, int type, uint64_t *bytes)
{
    const cluster_packets *p = cluster_captured(c);
    size_t n = 0;
    *bytes = 0;
    for (size_t k = 0; k < p->n; k++)
        if (strcmp(p->p[k].to_addr, to) == 0 &&
            (!type || (p->p[k].data[3] & 0x7f) == type)) {
            n++;
            *bytes += p->p[k].len;
        }
    return n;
}

/* BEATs recorded from node `from` to `to`; those that said farewell in
 * *farewells. */
static size_t beats_to(cluster *c, const char *to, uint32_t from,
                       size_t *farewells)
{
    const cluster_packets *p = cluster_captured(c);
    size_t n = 0;
    *farewells = 0;
    for (size_t k = 0; k < p->n; k++) {
        const cluster_packet *q = &p->p[k];
        if (q->from != from || strcmp(q->to_addr, to) != 0 ||
            (q->data[3] & 0x7f) != SB_MSG_BEAT)
            continue;
        sb_msg m;
        check(sb_msg_decode(q->data, q->len, sb_cluster_id("default"), &m,
                            NULL));
        n++;
        *farewells += (m.flags & SB_BEAT_FAREWELL) != 0;
    }
    return n;
}

/* A three-node cluster (60 s dead-node grace), converged, recording
 * every datagram from now on. */
static cluster *watched_three(void)
{
    cluster_config cfg;
    cluster_config_init(&cfg, 3);
    cfg.seeds = 1;
    cfg.engine.dead_grace_ns = 60 * SEC;
    cluster *c = cluster_new(&cfg);
    cluster_wait(c, 30 * SEC, cluster_converged(c));
    check(cluster_converged(c));
    cluster_capture(c, CLUSTER_ALL, 0);
    return c;
}

/* An ACK2 whose one delta names VICTIM as a live member with a key. */
static size_t victim_ack2(uint8_t *buf, size_t cap, uint64_t heartbeat)
{
    sb_key_entry k = { (const uint8_t *)"k", 1, 1, false,
                       (const uint8_t *)"forged", 6 };
    sb_delta d = { .addr = VICTIM, .addr_len = strlen(VICTIM),
                   .generation = 1, .heartbeat = heartbeat,
                   .to_version = 1, .nkeys = 1 };
    return make_ack2(buf, cap, &d, &k);
}

/*
 * One forged datagram to one node of three (the demonstration of the
 * reflection, a 50x amplifier before wire v3): an ACK2 from a stranger
 * naming a third party's address. Without the token it is dropped as
 * unsolicited; from a stranger who holds its address and echoes its
 * token, the third party is hearsay; a SYN with the third party's
 * address as its forged source gets one reply no larger than itself.
 * Over the whole dead-node grace and past it, the cluster sends the
 * third party nothing else.
 */
static void test_forged_datagram_reflects_nothing(void **state)
{
    (void)state;
    cluster *c = watched_three();
    uint8_t buf[256];
    size_t len = victim_ack2(buf, sizeof(buf), 5);
    uint64_t unsolicited = cluster_drops(c, 0, SB_DROP_UNSOLICITED);
    /* the echo a stranger can only guess */
    check(cluster_deliver(c, 0, "198.51.100.7:5000", buf, len) ==
          SB_EINVAL);
    check(cluster_drops(c, 0, SB_DROP_UNSOLICITED) == unsolicited + 1);
    /* the right echo (the stranger holds its address): hearsay */
    check(cluster_answer(c, 0, "198.51.100.7:5000", buf, len) == SB_OK);
    check(cluster_drops(c, 0, SB_DROP_HEARSAY) == 1);
    /* a SYN from the forged source */
    const char *a1 = cluster_addr(c, 1);
    sb_member m;
    check(sb_engine_find(cluster_engine(c, 0), a1, &m) == SB_OK);
    sb_digest_entry d = { sb_peer_id(a1, strlen(a1), m.generation),
                          m.heartbeat + 100, false, m.max_version + 5, 0 };
    size_t syn = make_syn(buf, sizeof(buf), &d, 1, 0);
    check(cluster_deliver(c, 0, VICTIM, buf, syn) == SB_OK);
    /* a stranger's digest moves no heartbeat (it would make a down peer
     * live, and the cluster write to it) */
    sb_member now1;
    check(sb_engine_find(cluster_engine(c, 0), a1, &now1) == SB_OK);
    check(now1.heartbeat < m.heartbeat + 100);
    cluster_run(c, 130 * SEC);
    uint64_t bytes;
    size_t n = sent_to(c, VICTIM, 0, &bytes);
    printf("reflection: %zu datagrams, %llu bytes to the third party in "
           "130 s after a forged ACK2 (%zu B), an echoed one and a SYN "
           "(%zu B) from its address\n", n, (unsigned long long)bytes, len,
           syn);
    check(n <= 1 && bytes <= syn);
    check(sb_engine_find(cluster_engine(c, 2), VICTIM, &m) == SB_ENOTFOUND);
    check(sb_engine_find(cluster_engine(c, 0), VICTIM, &m) == SB_ENOTFOUND);
    cluster_free(c);
}

/* The waves (root and wave) of the items of a captured PUSH, into
 * out[most]; returns how many. */
static size_t push_items_of(const cluster_packet *x, uint64_t (*out)[2],
                            size_t most)
{
    sb_msg m;
    if ((x->data[3] & 0x7f) != SB_MSG_PUSH ||
        !sb_msg_decode(x->data, x->len, sb_cluster_id("default"), &m, NULL))
        return 0;
    sb_cursor c = { m.items, m.end };
    size_t n = 0;
    for (uint64_t i = 0; i < m.nitems && n < most; i++) {
        sb_push_item it;
        sb_push_item_next(&c, &it);
        out[n][0] = it.root;
        out[n++][1] = it.wave;
    }
    return n;
}

/* The push waves (root and wave) captured to `to`; fails the test if a
 * node sent one of them there twice. */
static size_t push_waves(cluster *c, const char *to)
{
    const cluster_packets *p = cluster_captured(c);
    size_t waves = 0;
    uint64_t xs[64][2], ys[64][2];
    for (size_t k = 0; k < p->n; k++) {
        const cluster_packet *x = &p->p[k];
        if (strcmp(x->to_addr, to) != 0)
            continue;
        size_t nx = push_items_of(x, xs, 64);
        for (size_t a = 0; a < nx; a++) {
            bool first = true; /* of its wave, to `to` */
            for (size_t j = 0; j <= k; j++) {
                const cluster_packet *y = &p->p[j];
                if (strcmp(y->to_addr, to) != 0)
                    continue;
                size_t ny = push_items_of(y, ys, 64);
                for (size_t b = 0; b < (j == k ? a : ny); b++) {
                    if (ys[b][0] != xs[a][0] || ys[b][1] != xs[a][1])
                        continue;
                    check(y->from != x->from);
                    first = false;
                }
            }
            waves += first;
        }
    }
    return waves;
}

/* The first PUSH captured of node `from`'s own item, of a push other
 * than `not` (its waves but for the low byte), or NULL; *push is set to
 * its push. */
static const cluster_packet *own_push(cluster *c, uint32_t from,
                                      uint64_t not, uint64_t *push)
{
    const cluster_packets *p = cluster_captured(c);
    const char *addr = cluster_addr(c, from);
    uint64_t id = sb_peer_id(addr, strlen(addr),
                             sb_engine_generation(cluster_engine(c, from)));
    for (size_t k = 0; k < p->n; k++) {
        uint64_t xs[64][2];
        const cluster_packet *x = &p->p[k];
        if (x->from == from && push_items_of(x, xs, 64) == 1 &&
            xs[0][0] == id && (xs[0][1] & ~0xffull) != not) {
            *push = xs[0][1] & ~0xffull;
            return x;
        }
    }
    return NULL;
}

/* Four converged engines whose datagrams all go nowhere from now on,
 * node 1's captured: a test hands them over itself. */
static cluster *silent_writer(void)
{
    cluster *c = engines(4, 512, NULL, 0);
    cluster_run(c, 5 * SEC);
    cluster_set_loss(c, 1.0);
    cluster_capture(c, 1, 4096);
    return c;
}

/* Node i's next push goes down one tree (past its share, but not made
 * to wait), or down every tree (within it). */
static void push_down_one_tree(cluster *c, uint32_t i)
{
    sb_engine *e = cluster_engine(c, i);
    e->push_share.level = 1;
    e->push_share.at = cluster_now(c) + 50 * MS;
}

static void push_down_every_tree(cluster *c, uint32_t i)
{
    sb_engine *e = cluster_engine(c, i);
    e->push_share.level = e->push_share.depth;
    e->push_share.at = cluster_now(c);
}

/* A silent_writer() whose node 1 pushed key a, then key b; node 0 got
 * b's PUSH first and holds its item for the gap: *first is a's PUSH,
 * which fills it. */
static cluster *early_item_held(const cluster_packet **first)
{
    cluster *c = silent_writer();
    check(cluster_set(c, 1, "a", "1") == SB_OK);
    cluster_run(c, 50 * MS);
    check(cluster_set(c, 1, "b", "2") == SB_OK);
    cluster_run(c, 50 * MS);
    uint64_t one, two;
    *first = own_push(c, 1, 0, &one);
    const cluster_packet *second = own_push(c, 1, one, &two);
    check(*first && second);
    check(cluster_deliver(c, 0, cluster_addr(c, 1), second->data,
                          second->len) == SB_OK);
    check(!cluster_has(c, 0, 1, "b", "2")); /* a gap: it waits */
    return c;
}

/* A pushed item that comes before the one it follows (jitter, or two
 * datagrams of one PUSH crossing) is not lost: it is applied once the
 * one before it comes. With nothing else reaching the node (no
 * exchange), the second key is there only if it waited. */
static void test_early_push_waits_for_the_one_before(void **state)
{
    (void)state;
    const cluster_packet *first;
    cluster *c = early_item_held(&first);
    const char *from = cluster_addr(c, 1);
    check(cluster_deliver(c, 0, from, first->data, first->len) == SB_OK);
    check(cluster_has(c, 0, 1, "a", "1"));
    check(cluster_has(c, 0, 1, "b", "2"));
    cluster_free(c);
}

/* A push down every tree after a push down one tree starts where the
 * one-tree push did: it reaches a node by the first of its trees, often
 * ahead of the one-tree push, and must not leave it a gap. Here the
 * one-tree push never comes; the second alone brings both keys. */
static void test_push_after_alone_push_leaves_no_gap(void **state)
{
    (void)state;
    cluster *c = silent_writer();
    check(cluster_set(c, 1, "a", "1") == SB_OK);
    push_down_one_tree(c, 1);
    cluster_run(c, 50 * MS);
    check(cluster_set(c, 1, "b", "2") == SB_OK);
    push_down_every_tree(c, 1);
    cluster_run(c, 50 * MS);
    uint64_t one, two, xs[64][2];
    const cluster_packet *first = own_push(c, 1, 0, &one);
    const cluster_packet *second = own_push(c, 1, one, &two);
    check(first && second);
    check(push_items_of(first, xs, 64) == 1 && (xs[0][1] & 0x80));
    check(push_items_of(second, xs, 64) == 1 && !(xs[0][1] & 0x80));
    const char *from = cluster_addr(c, 1);
    check(cluster_deliver(c, 0, from, second->data, second->len) == SB_OK);
    check(cluster_has(c, 0, 1, "a", "1"));
    check(cluster_has(c, 0, 1, "b", "2"));
    cluster_free(c);
}

/* The keys of a writer's own pushed item (its first delta's), or -1. */
static long own_push_keys(const cluster_packet *x)
{
    sb_msg m;
    if (!sb_msg_decode(x->data, x->len, sb_cluster_id("default"), &m, NULL))
        return -1;
    sb_cursor c = { m.items, m.end };
    sb_push_item it;
    sb_push_item_next(&c, &it);
    sb_cursor d = { it.deltas, it.end };
    sb_delta delta;
    sb_delta_next(&d, &delta);
    return (long)delta.nkeys;
}

/* A one-tree push long over (held by every node, the push's memory
 * rested) is not what a push down every tree can overtake: that push
 * starts where peers are, and carries the new key alone. It carried the
 * old one again to every node down every tree, whenever it came. */
static void test_push_after_rest_starts_where_peers_are(void **state)
{
    (void)state;
    cluster *c = engines(4, 512, NULL, 0);
    cluster_run(c, 5 * SEC);
    check(cluster_set(c, 1, "a", "1") == SB_OK);
    push_down_one_tree(c, 1);
    cluster_run(c, 50 * MS);
    check(cluster_engine(c, 1)->alone_pushed);
    cluster_run(c, PUSH_REST + 2 * SEC);
    for (uint32_t i = 0; i < 4; i++)
        check(cluster_has(c, i, 1, "a", "1"));
    cluster_capture(c, 1, 4096);
    check(cluster_set(c, 1, "b", "2") == SB_OK);
    push_down_every_tree(c, 1);
    cluster_run(c, 50 * MS);
    uint64_t one, xs[64][2];
    const cluster_packet *p = own_push(c, 1, 0, &one);
    check(p && push_items_of(p, xs, 64) == 1 && !(xs[0][1] & 0x80));
    check(own_push_keys(p) == 1);
    cluster_free(c);
}

/* The push's memory (its waves, its outbox) is held while pushes flow
 * and freed after PUSH_REST without one; a later write is pushed as
 * before, and every node's memory grows again by the same. */
static void test_push_memory_freed_at_rest(void **state)
{
    (void)state;
    enum { N = 8 };
    cluster *c = engines(N, 512, NULL, 0);
    cluster_run(c, 5 * SEC);
    size_t idle[N], busy[N];
    for (uint32_t i = 0; i < N; i++)
        idle[i] = sb_engine_memory(cluster_engine(c, i));
    check(cluster_set(c, 1, "a", "1") == SB_OK);
    cluster_run(c, 50 * MS); /* less than a round: only a push tells */
    for (uint32_t i = 0; i < N; i++) {
        check(cluster_has(c, i, 1, "a", "1"));
        busy[i] = sb_engine_memory(cluster_engine(c, i));
        check(busy[i] >= idle[i] + WAVES_LEAST * sizeof(uint64_t));
    }
    cluster_run(c, PUSH_REST + 2 * SEC);
    for (uint32_t i = 0; i < N; i++)
        check(sb_engine_memory(cluster_engine(c, i)) +
                  WAVES_LEAST * sizeof(uint64_t) <=
              busy[i]);
    check(cluster_set(c, 2, "b", "2") == SB_OK);
    cluster_run(c, 50 * MS);
    for (uint32_t i = 0; i < N; i++) {
        check(cluster_has(c, i, 2, "b", "2"));
        check(sb_engine_memory(cluster_engine(c, i)) >=
              idle[i] + WAVES_LEAST * sizeof(uint64_t));
    }
    cluster_free(c);
}

/* Between calls an engine holds no scratch: the arrays and the message
 * being written live for one call. The ring of recent changes is held
 * while a change is recent and freed at the first round after; a later
 * change is taken and remembered as before. */
static void test_scratch_and_recent_not_held_at_rest(void **state)
{
    (void)state;
    enum { N = 8 };
    cluster *c = engines(N, 512, NULL, 0);
    cluster_run(c, 5 * SEC);
    uint64_t rest = (RECENT_ROUNDS + 2) * cluster_engine(c, 0)->round_ns;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < N; i++) {
            const sb_engine *e = cluster_engine(c, i);
            check(!e->scratch.held && !e->scratch.message &&
                  !e->scratch.cands && !e->scratch.digest &&
                  sb_scratch_memory(&e->scratch) == 0);
            check(sb_engine_scratch_peak(e) > 512); /* a call held them */
            check(!e->recent && e->recent_head == 0);
        }
        uint32_t writer = 1 + (uint32_t)pass;
        check(cluster_set(c, writer, "a", pass ? "2" : "1") == SB_OK);
        cluster_run(c, 50 * MS);
        for (uint32_t i = 0; i < N; i++) {
            check(cluster_has(c, i, writer, "a", pass ? "2" : "1"));
            check(cluster_engine(c, i)->recent != NULL);
        }
        cluster_run(c, rest);
    }
    cluster_free(c);
}

/* The writers a push's fair share is divided among are those of the last
 * one to two seconds: after a long quiet, a lone writer gets the whole
 * share, not a part of it as if the crowd of long ago still wrote. */
static void test_push_share_forgets_old_writers(void **state)
{
    (void)state;
    enum { N = 16 };
    cluster *c = engines(N, 512, NULL, 0);
    cluster_run(c, 3 * SEC);
    char key[16], value[16];
    for (int t = 0; t < 100; t++) { /* 2 s of every node writing */
        for (uint32_t i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "k%u", i);
            snprintf(value, sizeof(value), "%d", t);
            check(cluster_set(c, i, key, value) == SB_OK);
        }
        cluster_run(c, 20 * MS);
    }
    sb_engine *e = cluster_engine(c, 0);
    check(e->push_share.rate < e->cap.rate * 3 / 4 / 4); /* a crowd */
    cluster_run(c, 60 * SEC);
    check(cluster_set(c, 0, "alone", "1") == SB_OK);
    cluster_run(c, 50 * MS);
    check(cluster_has(c, 1, 0, "alone", "1"));
    /* one writer: 3/4 of the cap's rate (with the old crowd: a 16th) */
    check(e->push_share.rate > e->cap.rate / 2);
    cluster_free(c);
}

/* floor(log2(T / round + 1)) + 1: the most probes one node sends in T to
 * an address that never answered it (sb_liveness_probed()). */
static size_t probe_bound(uint64_t grace_ns, uint64_t round_ns)
{
    uint64_t x = grace_ns / round_ns + 1;
    size_t b = 0;
    while (x > 1) {
        x >>= 1;
        b++;
    }
    return b + 1;
}

/*
 * A member that lies (it answered once, then says a third party is one of
 * us, with a heartbeat that moves once): every node learns the address,
 * and it is live for a while. It never answers, so each node sends it at
 * most the probe bound for the time it knows it, live or down, until it
 * forgets it. The liar's own address, which never answers again, gets
 * the bound from the nodes it never answered, and a probe every 64
 * rounds at most from the one it did, which also beats it while it holds
 * it live if the liar is one of its monitors (and says farewell once).
 */
static void test_never_answering_address_bounded(void **state)
{
    (void)state;
    cluster *c = watched_three();
    uint64_t start = cluster_now(c);
    const char *liar = "198.51.100.7:5000";
    make_member(c, 0, liar);
    uint8_t buf[256];
    size_t len = victim_ack2(buf, sizeof(buf), 5);
    check(cluster_answer(c, 0, liar, buf, len) == SB_OK);
    cluster_run(c, 1 * SEC);
    len = victim_ack2(buf, sizeof(buf), 6); /* "alive" */
    check(cluster_answer(c, 0, liar, buf, len) == SB_OK);
    sb_member m;
    bool live = false;
    /* how long node 0, which the liar answered, held it live: the BEATs
     * node 0 may send it meanwhile if it is one of its monitors */
    uint64_t liar_live = 1 * SEC;
    for (int t = 0; t < 20; t++) {
        cluster_run(c, 100 * MS);
        live |= sb_engine_find(cluster_engine(c, 2), VICTIM, &m) == SB_OK &&
                m.status == SB_STATUS_LIVE;
        if (sb_engine_find(cluster_engine(c, 0), liar, &m) == SB_OK &&
            m.status == SB_STATUS_LIVE)
            liar_live = cluster_now(c) - start;
    }
    check(live); /* node 2 took the word of node 0 */
    check(sb_engine_find(cluster_engine(c, 0), liar, &m) == SB_OK &&
          m.status != SB_STATUS_LIVE);
    size_t farewells;
    size_t beats_live = beats_to(c, liar, 0, &farewells);
    cluster_run(c, 200 * SEC); /* past the grace: forgotten everywhere */
    for (uint32_t i = 0; i < 3; i++)
        check(sb_engine_find(cluster_engine(c, i), VICTIM, &m) ==
              SB_ENOTFOUND);
    uint64_t bytes, liar_bytes, push_bytes;
    size_t n = sent_to(c, VICTIM, SB_MSG_SYN, &bytes);
    size_t to_liar = sent_to(c, liar, SB_MSG_SYN, &liar_bytes);
    /* besides the probes, the pushes of the verdicts written about it
     * while it was live for some: one verdict a node, down push_fanout
     * trees, so 9 waves at most; a node sends a wave to it once at most
     * (in one view it is a child in each tree once; the three nodes'
     * views may differ while it is live for some) */
    size_t pushes = sent_to(c, VICTIM, SB_MSG_PUSH, &push_bytes);
    size_t liar_pushes = sent_to(c, liar, SB_MSG_PUSH, &push_bytes);
    check(push_waves(c, VICTIM) <= 3 * 3 && push_waves(c, liar) <= 3 * 3);
    check(pushes <= 3 * 3 * 3 && liar_pushes <= 3 * 3 * 3);
    check(sent_to(c, VICTIM, 0, &push_bytes) == n + pushes);
    /* BEATs: from node 0 alone (the others it never answered), while it
     * held the liar live, a beat period apart (3 intervals of 100 ms;
     * the first at once), and one farewell when it no longer did; none
     * since */
    check(sent_to(c, liar, SB_MSG_BEAT, &push_bytes) == beats_live);
    check(farewells <= 1);
    check(beats_live <= 1 + farewells + liar_live / (3 * 100 * MS));
    check(sent_to(c, liar, 0, &push_bytes) ==
          to_liar + liar_pushes + beats_live);
    size_t bound = 3 * probe_bound(cluster_now(c) - start, 50 * MS);
    printf("never answering: in %.0f s, the vouched address got %zu "
           "SYNs (%llu B) and %zu pushes, the liar %zu SYNs (%llu B) and "
           "%zu pushes and %zu BEATs; bound %zu SYNs\n",
           (double)(cluster_now(c) - start) / 1e9, n,
           (unsigned long long)bytes, pushes, to_liar,
           (unsigned long long)liar_bytes, liar_pushes, beats_live, bound);
    check(n >= 3 && n <= bound);
    /* the liar answered node 0 (twice: what node 0 sent it in the second
     * between comes on top), so node 0 probes it at least every 64
     * rounds; the others, to which it never answered, within the bound */
    uint64_t span = cluster_now(c) - start;
    size_t answered = 7 + (size_t)(span / (64 * 50 * MS)) +
                      probe_bound(1 * SEC, 50 * MS);
    check(to_liar <= 2 * probe_bound(span, 50 * MS) + answered);
    cluster_free(c);
}

static void test_no_amplification(void **state)
{
    (void)state;
    check(amplification(NULL, 0) <= 1.0);
    check(amplification(key_a, 1) <= 1.0);
}

/* A stranger's SYN with fingerprints of a range (and our summary not
 * its) gets back no more bytes than it sent: the ACK within its size,
 * and no DIFF, which only members get. And a stranger's SYN that echoes
 * our summary does not count as agreement (which would stop the range
 * descents that find a record a node missed). */
static void test_stranger_ranges_get_nothing_more(void **state)
{
    (void)state;
    cluster *c = engines(12, 512, NULL, 0);
    eventually(c, 10 * SEC, cluster_converged(c));
    cluster_run(c, 2 * SEC);
    const char *stranger = "198.51.100.9:7946";
    uint8_t buf[512];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    sb_put_header(&w, SB_MSG_SYN, sb_cluster_id("default"));
    sb_put_u64(&w, 0x5eed);
    sb_put_u8(&w, SB_SYN_RANGE | SB_SYN_COMPLETE);
    sb_put_u64(&w, 1); /* a summary: not ours */
    sb_put_u64(&w, 0);
    sb_put_u64(&w, SB_SWEEP_END);
    sb_put_u8(&w, SB_RANGE_PARTS);
    for (int i = 0; i < SB_RANGE_PARTS; i++)
        sb_put_u32(&w, 0xdeadbeef);
    sb_put_varint(&w, 0);
    size_t len = (size_t)(w.p - buf);
    check(cluster_deliver(c, 0, stranger, buf, len) == SB_OK);
    const cluster_packets *r = cluster_replies(c);
    size_t out = 0;
    for (size_t k = 0; k < r->n; k++) {
        check((r->p[k].data[3] & 0x7f) != SB_MSG_DIFF);
        if (strcmp(r->p[k].to_addr, stranger) == 0)
            out += r->p[k].len;
    }
    check(out > 0 && out <= len);
    /* the same SYN with our summary: no agreement recorded */
    sb_engine *e = cluster_engine(c, 0);
    e->agreed = 0;
    uint64_t ours = sb_engine_summary(e);
    w = (sb_writer){ buf, buf, buf + sizeof(buf) };
    sb_put_header(&w, SB_MSG_SYN, sb_cluster_id("default"));
    sb_put_u64(&w, 0x5eee);
    sb_put_u8(&w, SB_SYN_COMPLETE);
    sb_put_u64(&w, ours);
    sb_put_varint(&w, 0);
    check(cluster_deliver(c, 0, stranger, buf, (size_t)(w.p - buf)) ==
          SB_OK);
    check(e->agreed == 0);
    cluster_free(c);
}

/* A stranger that holds its address can answer us: our ACK to its SYN
 * gives it our token for that address, and our summary. Its ACK
 * echoing both is taken, but, as with a stranger's SYN, the summary
 * does not count as agreement: sent each round, it would keep the node
 * quiet (SYNs that list nothing) and stop its range descents. */
static void test_stranger_ack_makes_no_agreement(void **state)
{
    (void)state;
    cluster *c = engines(3, 512, NULL, 0);
    eventually(c, 10 * SEC, cluster_converged(c));
    const char *stranger = "198.51.100.9:7946";
    sb_engine *e = cluster_engine(c, 0);
    e->agreed = 0;
    uint64_t agreed_at = e->agreed_at;
    uint64_t unsolicited = e->stats.drops[SB_DROP_UNSOLICITED];
    uint64_t packets_in = e->stats.packets_in;
    uint8_t buf[64];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    sb_put_header(&w, SB_MSG_ACK, sb_cluster_id("default"));
    sb_put_u64(&w, 0); /* the echo: cluster_answer() writes it */
    sb_put_u64(&w, 0x5eed);
    sb_put_u64(&w, sb_engine_summary(e)); /* ours, as our ACK told it */
    sb_put_varint(&w, 0);
    sb_put_varint(&w, 0);
    check(cluster_answer(c, 0, stranger, buf, (size_t)(w.p - buf)) ==
          SB_OK);
    check(e->stats.packets_in == packets_in + 1);
    check(e->stats.drops[SB_DROP_UNSOLICITED] == unsolicited); /* taken */
    check(e->agreed == 0);
    check(e->agreed_at == agreed_at);
    cluster_free(c);
}

/* A joining node's sweep ends only by SWEEPs from members: a stranger
 * that holds its address (our ACK to its SYN gave it our token) cannot
 * end it with one SWEEP that reaches the end of the id space, which
 * would leave the node to learn the records by rounds alone. */
static void test_stranger_sweep_ends_no_sweep(void **state)
{
    (void)state;
    cluster *c = engines(3, 512, NULL, 0);
    eventually(c, 10 * SEC, cluster_converged(c));
    const char *stranger = "198.51.100.9:7946";
    sb_engine *e = cluster_engine(c, 1);
    e->sweeping = true; /* as a node that joined and sweeps */
    e->sweep = 0;
    uint64_t unsolicited = e->stats.drops[SB_DROP_UNSOLICITED];
    uint8_t buf[64];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    sb_put_header(&w, SB_MSG_SWEEP, sb_cluster_id("default"));
    sb_put_u64(&w, 0); /* the echo: cluster_answer() writes it */
    sb_put_u64(&w, 0);
    sb_put_u64(&w, SB_SWEEP_END);
    sb_put_varint(&w, 0);
    check(cluster_answer(c, 1, stranger, buf, (size_t)(w.p - buf)) ==
          SB_OK);
    check(e->stats.drops[SB_DROP_UNSOLICITED] == unsolicited);
    check(e->sweeping);
    check(e->sweep == 0);
    /* the same from a member ends it */
    check(cluster_answer(c, 1, cluster_addr(c, 0), buf,
                         (size_t)(w.p - buf)) == SB_OK);
    check(!e->sweeping);
    cluster_free(c);
}

/* A PUSH of one item with no delta (nothing in it can be refused), of
 * wave `wave` from a made-up root, into buf: its length. */
static size_t empty_push(uint8_t *buf, size_t cap, uint64_t wave)
{
    sb_writer w = { buf, buf, buf + cap };
    sb_put_header(&w, SB_MSG_PUSH, sb_cluster_id("default"));
    sb_put_varint(&w, 1);
    sb_put_u64(&w, 0x5eed); /* a root */
    sb_put_u64(&w, wave);
    sb_put_varint(&w, 0);
    return (size_t)(w.p - buf);
}

/* A stranger's PUSH is not passed on and nothing in it is applied; its
 * items pushed down one tree (the ALONE bit) do not count either: they
 * would tell the node that the cluster writes past the cap (for a
 * second each), which stops its announcements of news and its passing
 * on of waves whose keys it holds. */
static void test_stranger_push_moves_no_saturation(void **state)
{
    (void)state;
    cluster *c = engines(3, 512, NULL, 0);
    eventually(c, 10 * SEC, cluster_converged(c));
    const char *stranger = "198.51.100.9:7946";
    sb_engine *e = cluster_engine(c, 0);
    uint64_t now = cluster_now(c);
    check(!sb_push_saturated(e, now));
    uint8_t buf[64];
    size_t len = empty_push(buf, sizeof(buf), 0x1234500 | 0x80); /* alone */
    check(cluster_deliver(c, 0, stranger, buf, len) == SB_OK);
    check(!sb_push_saturated(e, cluster_now(c)));
    check(e->alone_seen[0] == 0);
    /* the same from a member counts */
    check(cluster_deliver(c, 0, cluster_addr(c, 1), buf, len) == SB_OK);
    check(sb_push_saturated(e, cluster_now(c)));
    cluster_free(c);
}

/* A stranger's PUSH does not release the items that wait for the one
 * before them: retried then, they would be taken as from the stranger,
 * their deltas dropped as hearsay and the items let go as if applied,
 * and the update they carried would wait for anti-entropy. */
static void test_stranger_push_releases_no_early_item(void **state)
{
    (void)state;
    const cluster_packet *first;
    cluster *c = early_item_held(&first);
    const char *from = cluster_addr(c, 1);
    uint64_t hearsay = cluster_drops(c, 0, SB_DROP_HEARSAY);
    uint8_t buf[64];
    size_t len = empty_push(buf, sizeof(buf), 0x1234500); /* tree 0 */
    check(cluster_deliver(c, 0, "198.51.100.9:7946", buf, len) == SB_OK);
    check(cluster_drops(c, 0, SB_DROP_HEARSAY) == hearsay);
    check(cluster_deliver(c, 0, from, first->data, first->len) == SB_OK);
    check(cluster_has(c, 0, 1, "a", "1"));
    check(cluster_has(c, 0, 1, "b", "2"));
    cluster_free(c);
}

/* Nor does a stranger's ACK digest move what the node asks and tells
 * next: a member listed there as ahead of us is not noted as changed
 * (each note keeps the node from resting, a SYN every round instead of
 * one in 40, and evicts a real change from those it offers), and an id
 * the node does not know is not asked of the members. */
static void test_stranger_ack_digest_notes_nothing(void **state)
{
    (void)state;
    cluster *c = engines(3, 512, NULL, 0);
    eventually(c, 10 * SEC, cluster_converged(c));
    const char *stranger = "198.51.100.9:7946";
    sb_engine *e = cluster_engine(c, 0);
    const char *a1 = cluster_addr(c, 1);
    const sb_peer *n = sb_state_find_addr(&e->st, a1, strlen(a1));
    check(n != NULL);
    uint32_t recent_head = e->recent_head;
    uint32_t nwanted = e->nwanted;
    uint8_t buf[128];
    sb_writer w = { buf, buf, buf + sizeof(buf) };
    sb_put_header(&w, SB_MSG_ACK, sb_cluster_id("default"));
    sb_put_u64(&w, 0); /* the echo: cluster_answer() writes it */
    sb_put_u64(&w, 0x5eed);
    sb_put_u64(&w, 0x1234); /* a summary of its own */
    sb_put_varint(&w, 2);
    sb_digest_entry ahead = { .id = n->id, .heartbeat = n->heartbeat,
                              .max_version = n->max_version + 1000 };
    sb_digest_entry unknown = { .id = 0x123456789aull, .heartbeat = 1,
                                .max_version = 1 };
    sb_put_digest_entry(&w, &ahead);
    sb_put_digest_entry(&w, &unknown);
    sb_put_varint(&w, 0);
    check(cluster_answer(c, 0, stranger, buf, (size_t)(w.p - buf)) ==
          SB_OK);
    check(e->recent_head == recent_head);
    check(e->nwanted == nwanted);
    /* the same from a member notes both */
    check(cluster_answer(c, 0, cluster_addr(c, 2), buf,
                         (size_t)(w.p - buf)) == SB_OK);
    check(e->recent_head == recent_head + 1);
    check(e->nwanted == nwanted + 1);
    cluster_free(c);
}

int main(int argc, char **argv)
{
    printf("test_engine: seed %llu\n", (unsigned long long)cluster_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_writes),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_largest_entry_travels),
        cmocka_unit_test(test_cut_off_leaves_no_gap),
        cmocka_unit_test(test_most_out_of_date_first),
        cmocka_unit_test(test_size_limit_random_states),
        cmocka_unit_test(test_random_packets_change_nothing),
        cmocka_unit_test(test_mutated_packets),
        cmocka_unit_test(test_invented_nodes_bounded),
        cmocka_unit_test(test_forged_addresses_dropped),
        cmocka_unit_test(test_big_push_not_passed_on),
        cmocka_unit_test(test_unknown_ids_create_nothing),
        cmocka_unit_test(test_forgotten_node_stays_forgotten),
        cmocka_unit_test(test_partial_reset_refuses_stale_sender),
        cmocka_unit_test(test_partial_reset_takes_caught_up_sender),
        cmocka_unit_test(test_no_plain_delta_past_collected_tombstones),
        cmocka_unit_test(test_events_join_first),
        cmocka_unit_test(test_events_join_at_arrival),
        cmocka_unit_test(test_reset_stopped_by_a_bound_leaves_no_hole),
        cmocka_unit_test(test_reset_from_an_older_copy_rolls_nothing_back),
        cmocka_unit_test(test_waves_of_two_roots_are_apart),
        cmocka_unit_test(test_waves_of_the_last_second_remembered),
        cmocka_unit_test(test_early_push_waits_for_the_one_before),
        cmocka_unit_test(test_push_after_alone_push_leaves_no_gap),
        cmocka_unit_test(test_push_after_rest_starts_where_peers_are),
        cmocka_unit_test(test_push_memory_freed_at_rest),
        cmocka_unit_test(test_scratch_and_recent_not_held_at_rest),
        cmocka_unit_test(test_push_share_forgets_old_writers),
        cmocka_unit_test(test_ack_lists_each_node_once),
        cmocka_unit_test(test_sealed_cluster_converges),
        cmocka_unit_test(test_seal_mismatch_dropped),
        cmocka_unit_test(test_keyring_rotation_between_engines),
        cmocka_unit_test(test_no_amplification),
        cmocka_unit_test(test_forged_datagram_reflects_nothing),
        cmocka_unit_test(test_never_answering_address_bounded),
        cmocka_unit_test(test_join_sweeps_the_cluster),
        cmocka_unit_test(test_sweep_ranges_come_once),
        cmocka_unit_test(test_lost_sweeps_not_sent_again),
        cmocka_unit_test(test_range_fingerprints_answered_with_diff),
        cmocka_unit_test(test_range_listed_sends_what_was_left_out),
        cmocka_unit_test(test_range_diff_only_as_asked),
        cmocka_unit_test(test_range_diff_makes_room),
        cmocka_unit_test(test_range_descent_lanes),
        cmocka_unit_test(test_range_parts_freed),
        cmocka_unit_test(test_range_diff_answers_recent_syns),
        cmocka_unit_test(test_plan_keeps_the_most_behind),
        cmocka_unit_test(test_plan_ranks_news_one_behind),
        cmocka_unit_test(test_summary_after_many_changes),
        cmocka_unit_test(test_no_sweep_for_strangers),
        cmocka_unit_test(test_join_merges_two_clusters),
        cmocka_unit_test(test_join_of_nowhere_gives_up),
        cmocka_unit_test(test_join_of_a_down_member_is_retried),
        cmocka_unit_test(test_join_ends_on_leave),
        cmocka_unit_test(test_replayed_sweep_asks_draw_no_sweep),
        cmocka_unit_test(test_sweep_asked_past_ourselves),
        cmocka_unit_test(test_stranger_ranges_get_nothing_more),
        cmocka_unit_test(test_stranger_ack_makes_no_agreement),
        cmocka_unit_test(test_stranger_ack_digest_notes_nothing),
        cmocka_unit_test(test_stranger_sweep_ends_no_sweep),
        cmocka_unit_test(test_stranger_push_moves_no_saturation),
        cmocka_unit_test(test_stranger_push_releases_no_early_item),
    };
    return RUN_TESTS(tests, argc, argv);
}
