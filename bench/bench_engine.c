/*
 * bench-engine: the engine's own cost, measured on simulated clusters.
 *
 * For each cluster size N (no keys, interval 100 ms, 1400-byte messages):
 *   - memory per known node: the heap a converged cluster of N engines
 *     holds (malloc's own overhead included) divided by N * N, since every
 *     engine knows every node; and the engine's own accounting
 *     (sb_engine_memory), which counts the bytes it asked for;
 *   - CPU per node: the CPU time the whole process spent on a window of
 *     steady-state gossip, per node and simulated second (the simulator's
 *     event heap and packet copies are included, so the engine alone is
 *     cheaper);
 *   - exchanges per second on one core: SYNs sent during that window,
 *     divided by its CPU time. At rest a node sends few SYNs (one round
 *     in EXCHANGES * QUIET_SYN_INTERVALS, internal.h) and its cost is
 *     mostly beats, so this figure says less than the one above.
 * A benchmark, not a test: it reports figures and asserts nothing.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "sim.h" /* and engine.h: MS, SEC */

static uint64_t syns;

static void on_packet(void *ud, uint32_t from, uint32_t to,
                      const uint8_t *buf, size_t len)
{
    (void)ud;
    (void)from;
    (void)to;
    if (len > 3 && buf[3] == SB_MSG_SYN)
        syns++;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench(uint32_t n, uint64_t window_s)
{
    size_t heap0 = mallinfo2().uordblks;
    sb_sim_config cfg;
    sb_sim_config_init(&cfg);
    cfg.nodes = n;
    cfg.engine.interval_ns = 100 * MS;
    cfg.engine.max_message_size = 1400;
    cfg.on_packet = on_packet;
    sb_sim *s;
    if (sb_sim_new(&cfg, &s) != SB_OK) {
        fprintf(stderr, "bench-engine: cannot start %u nodes\n", n);
        exit(1);
    }
    while (!sb_sim_converged(s) && sb_sim_now(s) < 300 * SEC)
        sb_sim_run_for(s, SEC);
    double converged_s = (double)sb_sim_now(s) / SEC;

    syns = 0;
    double c0 = cpu_seconds();
    sb_sim_run_for(s, window_s * SEC);
    double cpu = cpu_seconds() - c0;
    uint64_t exchanges = syns;

    /* memory: run the heap down to the settled state (no packets queued
     * matter little: they are a few per node) */
    size_t heap = mallinfo2().uordblks - heap0;
    size_t engine_bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        engine_bytes += sb_engine_memory(sb_sim_engine(s, i));
    double known = (double)n * n;
    printf("N=%-5u converged after %6.1f s simulated\n", n, converged_s);
    printf("        CPU            %10.1f us per node per simulated "
           "second (simulator included)\n",
           cpu * 1e6 / ((double)n * (double)window_s));
    printf("        exchanges      %10.0f per CPU second "
           "(%llu in %llu s simulated, %.2f s CPU, simulator included)\n",
           (double)exchanges / cpu, (unsigned long long)exchanges,
           (unsigned long long)window_s, cpu);
    printf("        memory         %10.0f B per known node (heap, malloc "
           "overhead included)\n", (double)heap / known);
    printf("                       %10.0f B per known node (engine "
           "accounting)\n", (double)engine_bytes / known);
    printf("                       %10.0f B per engine\n",
           (double)engine_bytes / n);
    sb_sim_free(s);
}

/* --thousand: CPU time for 1000 nodes over 100 simulated seconds, with
 * default settings and 512-byte messages (the simulator's own yardstick). */
static void thousand(void)
{
    sb_sim_config cfg;
    sb_sim_config_init(&cfg);
    cfg.nodes = 1000;
    cfg.engine.interval_ns = 100 * MS;
    cfg.engine.max_message_size = 512;
    sb_sim *s;
    if (sb_sim_new(&cfg, &s) != SB_OK)
        exit(1);
    double c0 = cpu_seconds();
    sb_sim_run_for(s, 100 * SEC);
    printf("1000 nodes, 100 s simulated: %.1f s of CPU (converged: %s)\n",
           cpu_seconds() - c0, sb_sim_converged(s) ? "yes" : "no");
    sb_sim_free(s);
}

static void no_send(void *ud, const char *to, const uint8_t *buf, size_t len)
{
    (void)ud;
    (void)to;
    (void)buf;
    (void)len;
}

/* Local writes into one engine holding n keys: n sets of new keys, then
 * n sets of existing keys drawn at random (each a new value). */
static void sets(uint32_t n)
{
    sb_engine_config c;
    sb_engine_config_init(&c);
    c.addr = "10.0.0.1:7946";
    c.generation = 1;
    c.send = no_send;
    c.max_keys_per_node = n;
    c.max_state_bytes = (size_t)n * 64;
    sb_engine *e;
    if (sb_engine_new(&c, 0, &e) != SB_OK)
        exit(1);
    char key[32], value[32];
    double t0 = cpu_seconds();
    for (uint32_t i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof(key), "key-%u", i);
        if (sb_engine_set(e, (const uint8_t *)key, (size_t)kl,
                          (const uint8_t *)"v", 1, 0) != SB_OK)
            exit(1);
    }
    double t1 = cpu_seconds();
    uint64_t x = 1;
    for (uint32_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int kl = snprintf(key, sizeof(key), "key-%u",
                          (uint32_t)((x >> 33) % n));
        int vl = snprintf(value, sizeof(value), "%u", i);
        if (sb_engine_set(e, (const uint8_t *)key, (size_t)kl,
                          (const uint8_t *)value, (size_t)vl, 0) != SB_OK)
            exit(1);
    }
    double t2 = cpu_seconds();
    printf("%6u keys  new keys %10.0f sets/s   existing keys %10.0f "
           "sets/s   (%.2f s and %.2f s of CPU)\n", n,
           n / (t1 - t0 > 0 ? t1 - t0 : 1e-9),
           n / (t2 - t1 > 0 ? t2 - t1 : 1e-9), t1 - t0, t2 - t1);
    sb_engine_free(e);
}

int main(int argc, char **argv)
{
    uint64_t window = 10;
    const char *sizes = "64,1024";
    if (argc == 2 && !strcmp(argv[1], "--thousand")) {
        thousand();
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--sets")) {
        sets(1000);
        sets(10000);
        sets(100000);
        return 0;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--nodes"))
            sizes = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds"))
            window = strtoull(argv[i + 1], NULL, 10);
    }
    for (const char *p = sizes; *p;) {
        char *end;
        unsigned long n = strtoul(p, &end, 10);
        if (end == p || n < 2) {
            fprintf(stderr, "usage: bench-engine [--nodes 64,1024] "
                            "[--seconds 10] | --thousand | --sets\n");
            return 2;
        }
        bench((uint32_t)n, window);
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}
