/*
 * sb_engine_memory() against the allocator's own count: every byte an
 * engine holds is counted. The test links with --wrap for malloc, calloc,
 * realloc and free, so each allocation made by the core (and the rest of
 * this program) carries its requested size; freeing an engine then gives
 * back exactly the bytes it held. Allocation failures are injected too:
 * each one on the receive path is counted as a drop, and nothing breaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../run.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* ---- the allocator's count ----------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

/* Before each block: its requested size. */
#define HEAD alignof(max_align_t)

static size_t mem_live;           /* requested bytes held */
static long mem_fail_in = -1;     /* fail the allocation after this many */
static long mem_failed;           /* allocations failed on purpose */

static bool mem_should_fail(void)
{
    if (mem_fail_in < 0 || mem_fail_in-- != 0)
        return false;
    mem_failed++;
    return true;
}

void *__wrap_malloc(size_t n)
{
    if (mem_should_fail() || n > SIZE_MAX - HEAD)
        return NULL;
    unsigned char *b = __real_malloc(n + HEAD);
    if (!b)
        return NULL;
    memcpy(b, &n, sizeof(n));
    mem_live += n;
    return b + HEAD;
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = __wrap_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void __wrap_free(void *p)
{
    if (!p)
        return;
    unsigned char *b = (unsigned char *)p - HEAD;
    size_t n;
    memcpy(&n, b, sizeof(n));
    mem_live -= n;
    __real_free(b);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (!p)
        return __wrap_malloc(n);
    if (mem_should_fail() || n > SIZE_MAX - HEAD)
        return NULL;
    unsigned char *b = (unsigned char *)p - HEAD;
    size_t old;
    memcpy(&old, b, sizeof(old));
    unsigned char *g = __real_realloc(b, n + HEAD);
    if (!g)
        return NULL;
    memcpy(g, &n, sizeof(n));
    mem_live = mem_live - old + n;
    return g + HEAD;
}

/* ---- tests --------------------------------------------------------------- */

static cluster *memory_cluster(uint32_t nodes, size_t max_message,
                               uint32_t nkeys, sb_wire wire)
{
    static uint8_t keys[SB_KEY_SIZE];
    memset(keys, 0x5b, sizeof(keys));
    cluster_config cfg;
    cluster_config_init(&cfg, nodes);
    cfg.engine.max_message_size = max_message;
    cfg.engine.keys = nkeys ? keys : NULL;
    cfg.engine.nkeys = nkeys;
    cfg.engine.wire = wire;
    return cluster_new(&cfg);
}

/* Every node writes twelve keys (past the few a peer's keys are scanned
 * up to: the key index is counted too) and deletes one (where the wire
 * can). */
static void memory_write_keys(cluster *c, sb_wire wire)
{
    for (uint32_t i = 0; i < cluster_size(c); i++) {
        char key[16], value[64];
        for (int k = 0; k < 12; k++) {
            snprintf(key, sizeof(key), "k%d", k);
            snprintf(value, sizeof(value), "value %u of %d", i, k);
            assert_int_equal(cluster_set(c, i, key, value), SB_OK);
        }
        if (wire == SB_WIRE_SCUTTLEBUTT)
            assert_int_equal(cluster_del(c, i, "k4"), SB_OK);
    }
}

/* A cluster that has formed, written keys (some deleted), pushed them and
 * exchanged digests of every size: then each engine's own count must
 * equal what freeing it gives back. */
static void memory_check_accounting(uint32_t nodes, size_t max_message,
                                    uint32_t nkeys, sb_wire wire)
{
    cluster *c = memory_cluster(nodes, max_message, nkeys, wire);
    memory_write_keys(c, wire);
    cluster_wait(c, 30 * SEC, cluster_converged(c));
    assert_true(cluster_converged(c));
    for (uint32_t i = 0; i < nodes; i += nodes / 4) {
        size_t counted = sb_engine_memory(cluster_engine(c, i));
        size_t before = mem_live;
        cluster_crash(c, i);
        size_t held = before - mem_live;
        print_message("%u nodes, %zu B messages%s%s: engine %u counts "
                      "%zu B, freeing it gave back %zu B\n",
                      nodes, max_message, nkeys ? ", sealed" : "",
                      wire == SB_WIRE_REFERENCE ? ", reference wire" : "",
                      i, counted, held);
        assert_int_equal(counted, held);
    }
    cluster_free(c);
}

static void test_memory_counts_every_allocation(void **state)
{
    (void)state;
    memory_check_accounting(16, 512, 0, SB_WIRE_SCUTTLEBUTT);
    memory_check_accounting(64, 1400, 0, SB_WIRE_SCUTTLEBUTT);
    memory_check_accounting(32, 512, 1, SB_WIRE_SCUTTLEBUTT);
    memory_check_accounting(16, 512, 0, SB_WIRE_REFERENCE);
}

/*
 * What a cluster sent one node is fed to a fresh engine in that node's
 * place, each datagram again and again with its k-th allocation failing,
 * until it is handled with fewer than k: every failure is counted as a
 * drop (SB_DROP_NOMEM), no more and no fewer, and the node goes on to
 * learn every key once memory is back.
 */
static void memory_check_failures(sb_wire wire)
{
    const uint32_t nodes = 12, subject = nodes - 1;
    cluster *c = memory_cluster(nodes, 1400, 0, wire);
    memory_write_keys(c, wire);
    cluster_capture(c, CLUSTER_ALL, 0);
    cluster_run(c, 5 * SEC);
    cluster_capture_stop(c);
    /* a fresh engine in its place; what it sends goes nowhere (and is not
     * recorded), so that only its own allocations can fail */
    assert_int_equal(cluster_restart(c, subject), SB_OK);
    for (uint32_t j = 0; j < nodes; j++)
        cluster_block(c, subject, j, true);
    sb_engine *e = cluster_engine(c, subject);
    const cluster_packets *got = cluster_captured(c);
    size_t fed = 0;
    long failed = 0;
    for (size_t i = 0; i < got->n; i++) {
        const cluster_packet *p = &got->p[i];
        if (p->to != (int)subject)
            continue;
        fed++;
        for (long k = 0;; k++) {
            mem_fail_in = k;
            mem_failed = 0;
            sb_engine_recv(e, cluster_addr(c, p->from), p->data, p->len,
                           cluster_now(c));
            mem_fail_in = -1;
            if (!mem_failed)
                break;
            failed++;
        }
    }
    uint64_t counted = cluster_drops(c, (int)subject, SB_DROP_NOMEM);
    print_message("%s wire: %zu datagrams, %ld allocations failed, %llu "
                  "counted as drops\n",
                  wire == SB_WIRE_REFERENCE ? "reference" : "our", fed,
                  failed, (unsigned long long)counted);
    assert_true(fed > 50 && failed > 0);
    assert_int_equal(counted, failed);
    /* memory is back: the node learns every peer's keys */
    cluster_heal(c);
    cluster_run(c, 30 * SEC);
    for (uint32_t j = 0; j < subject; j++) {
        char value[64];
        snprintf(value, sizeof(value), "value %u of %d", j, 3);
        assert_true(cluster_has(c, subject, j, "k3", value));
    }
    cluster_free(c);
}

static void test_allocation_failures_are_counted(void **state)
{
    (void)state;
    memory_check_failures(SB_WIRE_SCUTTLEBUTT);
    memory_check_failures(SB_WIRE_REFERENCE);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_counts_every_allocation),
        cmocka_unit_test(test_allocation_failures_are_counted),
    };
    return RUN_TESTS(tests, argc, argv);
}
