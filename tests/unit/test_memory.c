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

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define MS 1000000ull
#define SEC 1000000000ull

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

static uint64_t seed_ = 1;

/* Datagrams sent to one node, kept to be fed to it again. */
#define CAPTURE_MAX 400
typedef struct capture {
    bool on;
    uint32_t to;
    size_t n;
    struct {
        uint32_t from;
        size_t len;
        uint8_t data[1400];
    } pkt[CAPTURE_MAX];
} capture;

static void keep_packet(void *ud, uint32_t from, uint32_t to,
                        const uint8_t *buf, size_t len)
{
    capture *c = ud;
    if (!c || !c->on || to != c->to || c->n == CAPTURE_MAX ||
        len > sizeof(c->pkt[0].data))
        return;
    c->pkt[c->n].from = from;
    c->pkt[c->n].len = len;
    memcpy(c->pkt[c->n].data, buf, len);
    c->n++;
}

static sb_sim *cluster(uint32_t nodes, size_t max_message, uint32_t nkeys,
                       sb_wire wire, capture *cap)
{
    static uint8_t keys[SB_KEY_SIZE];
    memset(keys, 0x5b, sizeof(keys));
    sb_sim_config cfg;
    sb_sim_config_init(&cfg);
    cfg.nodes = nodes;
    cfg.seed = seed_;
    cfg.engine.interval_ns = 100 * MS;
    cfg.engine.max_message_size = max_message;
    cfg.engine.keys = nkeys ? keys : NULL;
    cfg.engine.nkeys = nkeys;
    cfg.engine.wire = wire;
    cfg.on_packet = keep_packet;
    cfg.userdata = cap;
    sb_sim *s;
    assert_int_equal(sb_sim_new(&cfg, &s), SB_OK);
    return s;
}

/* Every node writes five keys and deletes one (where the wire can). */
static void write_keys(sb_sim *s, uint32_t nodes, sb_wire wire)
{
    for (uint32_t i = 0; i < nodes; i++) {
        char key[16], value[64];
        for (int k = 0; k < 5; k++) {
            snprintf(key, sizeof(key), "k%d", k);
            snprintf(value, sizeof(value), "value %u of %d", i, k);
            assert_int_equal(sb_sim_set(s, i, key, value), SB_OK);
        }
        if (wire == SB_WIRE_SCUTTLEBUTT)
            assert_int_equal(sb_sim_del(s, i, "k4"), SB_OK);
    }
}

/* A cluster that has formed, written keys (some deleted), pushed them and
 * exchanged digests of every size: then each engine's own count must
 * equal what freeing it gives back. */
static void check_accounting(uint32_t nodes, size_t max_message,
                             uint32_t nkeys, sb_wire wire)
{
    sb_sim *s = cluster(nodes, max_message, nkeys, wire, NULL);
    write_keys(s, nodes, wire);
    sb_sim_run_for(s, 30 * SEC);
    assert_true(sb_sim_converged(s));
    for (uint32_t i = 0; i < nodes; i += nodes / 4) {
        size_t counted = sb_engine_memory(sb_sim_engine(s, i));
        size_t before = mem_live;
        sb_sim_crash(s, i);
        size_t held = before - mem_live;
        print_message("%u nodes, %zu B messages%s%s: engine %u counts "
                      "%zu B, freeing it gave back %zu B\n",
                      nodes, max_message, nkeys ? ", sealed" : "",
                      wire == SB_WIRE_REFERENCE ? ", reference wire" : "",
                      i, counted, held);
        assert_int_equal(counted, held);
    }
    sb_sim_free(s);
}

static void test_memory_counts_every_allocation(void **state)
{
    (void)state;
    check_accounting(16, 512, 0, SB_WIRE_SCUTTLEBUTT);
    check_accounting(64, 1400, 0, SB_WIRE_SCUTTLEBUTT);
    check_accounting(32, 512, 1, SB_WIRE_SCUTTLEBUTT);
    check_accounting(16, 512, 0, SB_WIRE_REFERENCE);
}

/*
 * What a cluster sent one node is fed to a fresh engine in that node's
 * place, with one allocation of each datagram's handling failing in turn:
 * every failure is counted as a drop (SB_DROP_NOMEM), no more and no
 * fewer, and the node goes on to converge once memory is back.
 */
static void check_failures(sb_wire wire)
{
    static capture cap;
    memset(&cap, 0, sizeof(cap));
    const uint32_t nodes = 12, subject = nodes - 1;
    cap.to = subject;
    sb_sim *s = cluster(nodes, 1400, 0, wire, &cap);
    write_keys(s, nodes, wire);
    cap.on = true;
    sb_sim_run_for(s, 5 * SEC);
    cap.on = false;
    assert_true(cap.n > 50);
    /* a fresh engine in its place; what it sends goes nowhere, so that
     * only its own allocations can fail */
    assert_int_equal(sb_sim_restart(s, subject), SB_OK);
    for (uint32_t j = 0; j < nodes; j++)
        sb_sim_block(s, subject, j, true);
    sb_engine *e = sb_sim_engine(s, subject);
    /* each datagram again and again, its k-th allocation failing, until
     * it is handled with fewer than k allocations */
    long failed = 0;
    for (size_t i = 0; i < cap.n; i++) {
        for (long k = 0;; k++) {
            mem_fail_in = k;
            mem_failed = 0;
            sb_engine_recv(e, sb_sim_addr(s, cap.pkt[i].from),
                           cap.pkt[i].data, cap.pkt[i].len, sb_sim_now(s));
            mem_fail_in = -1;
            if (!mem_failed)
                break;
            failed++;
        }
    }
    sb_stats st;
    sb_engine_stats(e, &st);
    print_message("%s wire: %zu datagrams, %ld allocations failed, %llu "
                  "counted as drops\n",
                  wire == SB_WIRE_REFERENCE ? "reference" : "our",
                  cap.n, failed,
                  (unsigned long long)st.drops[SB_DROP_NOMEM]);
    assert_true(failed > 0);
    assert_int_equal(st.drops[SB_DROP_NOMEM], failed);
    /* memory is back: the node learns every peer's keys */
    sb_sim_heal(s);
    sb_sim_run_for(s, 30 * SEC);
    for (uint32_t j = 0; j < subject; j++) {
        char value[64];
        snprintf(value, sizeof(value), "value %u of %d", j, 3);
        assert_true(sb_sim_has(s, subject, j, "k3", value));
    }
    sb_sim_free(s);
}

static void test_allocation_failures_are_counted(void **state)
{
    (void)state;
    check_failures(SB_WIRE_SCUTTLEBUTT);
    check_failures(SB_WIRE_REFERENCE);
}

int main(int argc, char **argv)
{
    const char *env = getenv("SB_SEED");
    if (env)
        seed_ = strtoull(env, NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_counts_every_allocation),
        cmocka_unit_test(test_allocation_failures_are_counted),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
