/*
 * Writes the fuzzers' seed corpus from real traffic: a simulated 16-node
 * cluster of the test harness (512-byte messages, 10% loss, keys set and
 * deleted, writers at once, a crash, a restart, a leave) with the first
 * packets sent to node 0 captured; once in plaintext, once sealed with
 * the key of fuzz_key.h, once speaking the reference wire format.
 * The targets deliver every packet from SB_FUZZ_FROM to their fuzz node
 * (cluster_fuzz()), whose token for that address differs from the one
 * node 0 gave each sender: every plaintext answer (ACK, ACK2, SWEEP,
 * DIFF) is written with that token as its echo, so that it passes as an answer
 * there as it did here (sealed packets as captured keep theirs).
 *   decode/  single plaintext packets;
 *   engine/  runs of plaintext packets ([u16 length][bytes]...);
 *   sealed/  runs of sealed packets, each as captured and as the
 *            plaintext it opens to ([u8 kind][u16 length][bytes]...,
 *            see fuzz_sealed.c);
 *   reference/ runs of reference packets, as engine/.
 * Usage: fuzz-corpus DIR   (DIR/decode, DIR/engine, DIR/sealed and
 *                           DIR/reference must exist)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "codec.h"
#include "fuzz_key.h"
#include "keyring.h"

#define PACKETS 400 /* captured per run of the cluster */

typedef struct capture {
    const char *dir;
    bool sealed;
    bool reference;
    uint64_t echo; /* the fuzz node's token for SB_FUZZ_FROM */
    sb_keyring kr;
    unsigned n;
    uint8_t run[8192];
    size_t run_len;
    unsigned runs;
} capture;

static void save(const char *dir, const char *kind, unsigned i,
                 const uint8_t *buf, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/%04u", dir, kind, i);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* Appends a record to the current run: [kind] (sealed runs only), a
 * u16 length, the bytes. */
static void append(capture *c, int kind, const uint8_t *buf, size_t len)
{
    if (c->sealed)
        c->run[c->run_len++] = (uint8_t)kind;
    c->run[c->run_len++] = (uint8_t)(len >> 8);
    c->run[c->run_len++] = (uint8_t)len;
    memcpy(c->run + c->run_len, buf, len);
    c->run_len += len;
}

/* The echo an answer from SB_FUZZ_FROM must carry for the fuzz node of
 * the targets (sealed or not: the key does not change its token). */
static uint64_t fuzz_echo(const uint8_t *keys, uint32_t nkeys)
{
    cluster *f = cluster_fuzz(keys, nkeys, SB_WIRE_SCUTTLEBUTT);
    uint64_t t = sb_engine_token(cluster_engine(f, 0), SB_FUZZ_FROM,
                                 cluster_now(f));
    cluster_free(f);
    return t;
}

/* A plaintext message as the corpus holds it: the echo of an answer (an
 * ACK, ACK2, SWEEP or DIFF) replaced by c->echo (see the top), anything
 * else as captured. */
static void answer_fuzz_node(const capture *c, uint8_t *m, size_t len)
{
    if (len < SB_HEADER_SIZE + SB_TOKEN_SIZE ||
        (m[3] != SB_MSG_ACK && m[3] != SB_MSG_ACK2 && m[3] != SB_MSG_SWEEP &&
         m[3] != SB_MSG_DIFF))
        return;
    for (int k = 0; k < SB_TOKEN_SIZE; k++)
        m[SB_HEADER_SIZE + k] = (uint8_t)(c->echo >> (56 - 8 * k));
}

/* Takes one packet sent to node 0. */
static void take(capture *c, const uint8_t *buf, size_t len)
{
    uint8_t plain[2048];
    c->n++;
    if (c->reference) {
        append(c, 0, buf, len);
    } else if (!c->sealed) {
        if (len > sizeof(plain)) {
            fprintf(stderr, "a captured packet is too large\n");
            exit(1);
        }
        memcpy(plain, buf, len);
        answer_fuzz_node(c, plain, len);
        if (c->n % 2 == 0)
            save(c->dir, "decode", c->n / 2, plain, len);
        append(c, 0, plain, len);
    } else {
        size_t plen = sb_open(&c->kr, buf, len, plain);
        if (!plen) {
            fprintf(stderr, "a captured packet does not open\n");
            exit(1);
        }
        answer_fuzz_node(c, plain, plen);
        append(c, 1, buf, len);
        append(c, 0, plain, plen);
    }
    if (c->run_len > 4096) {
        save(c->dir,
             c->reference ? "reference" : c->sealed ? "sealed" : "engine",
             c->runs++, c->run, c->run_len);
        c->run_len = 0;
    }
}

static int run_cluster(capture *c)
{
    cluster_config cfg;
    cluster_config_init(&cfg, 16);
    cfg.seed = 1;
    cfg.loss = 0.1;
    cfg.engine.tombstone_grace_ns = 2 * SEC;
    if (c->reference)
        cfg.engine.wire = SB_WIRE_REFERENCE; /* no delete or leave */
    if (c->sealed) {
        cfg.engine.keys = sb_fuzz_key;
        cfg.engine.nkeys = 1;
    }
    cluster *s;
    if (cluster_try(&cfg, &s) != SB_OK)
        return 1;
    cluster_capture(s, CLUSTER_ALL, 0);
    cluster_run(s, 2 * SEC);
    /* writers at once: PUSHes of several items */
    for (int r = 0; r < 3; r++) {
        for (int i = 1; i < 16; i++)
            cluster_set(s, i, "burst", r ? "again" : "first");
        cluster_run(s, 2 * MS);
    }
    cluster_set(s, 3, "role", "primary");
    cluster_set(s, 4, "addr", "10.1.2.3:5000");
    cluster_run(s, 1 * SEC);
    cluster_del(s, 3, "role");
    cluster_crash(s, 5);
    cluster_run(s, 3 * SEC);
    cluster_restart(s, 5);
    cluster_set(s, 5, "new", "state");
    cluster_leave(s, 6);
    cluster_run(s, 5 * SEC);
    const cluster_packets *sent = cluster_captured(s);
    for (size_t k = 0; k < sent->n && c->n < PACKETS; k++)
        if (sent->p[k].to == 0)
            take(c, sent->p[k].data, sent->p[k].len);
    cluster_free(s);
    printf("%s: %u packets, %u runs\n",
           c->reference ? "reference" : c->sealed ? "sealed" : "plaintext",
           c->n, c->runs);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz-corpus DIR\n");
        return 2;
    }
    static capture plain, sealed, reference;
    plain.dir = sealed.dir = reference.dir = argv[1];
    sealed.sealed = true;
    reference.reference = true;
    if (!sb_seal_init() || sb_keyring_install(&sealed.kr, sb_fuzz_key))
        return 1;
    plain.echo = fuzz_echo(NULL, 0);
    sealed.echo = fuzz_echo(sb_fuzz_key, 1);
    return run_cluster(&plain) || run_cluster(&sealed) ||
           run_cluster(&reference);
}
