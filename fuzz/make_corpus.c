/*
 * Writes the fuzzers' seed corpus from real traffic: a simulated 16-node
 * cluster (512-byte messages, 10% loss, keys set and deleted, a crash, a
 * restart, a leave) with every packet captured through the simulator's
 * tap. decode/: single packets; engine/: runs of packets as the engine
 * target reads them ([u16 length][bytes]...).
 * Usage: fuzz-corpus DIR   (DIR/decode and DIR/engine must exist)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define MS 1000000ull
#define SEC 1000000000ull

typedef struct capture {
    const char *dir;
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

static void on_packet(void *ud, uint32_t from, uint32_t to,
                      const uint8_t *buf, size_t len)
{
    capture *c = ud;
    (void)from;
    if (to != 0 || c->n >= 400) /* what node 0 receives */
        return;
    if (c->n % 2 == 0)
        save(c->dir, "decode", c->n / 2, buf, len);
    c->n++;
    c->run[c->run_len++] = (uint8_t)(len >> 8);
    c->run[c->run_len++] = (uint8_t)len;
    memcpy(c->run + c->run_len, buf, len);
    c->run_len += len;
    if (c->run_len > 4096) {
        save(c->dir, "engine", c->runs++, c->run, c->run_len);
        c->run_len = 0;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz-corpus DIR\n");
        return 2;
    }
    capture c = { .dir = argv[1] };
    sb_sim_config cfg;
    sb_sim_config_init(&cfg);
    cfg.nodes = 16;
    cfg.loss = 0.1;
    cfg.engine.interval_ns = 100 * MS;
    cfg.engine.tombstone_grace_ns = 2 * SEC;
    cfg.on_packet = on_packet;
    cfg.userdata = &c;
    sb_sim *s;
    if (sb_sim_new(&cfg, &s) != SB_OK)
        return 1;
    sb_sim_run_for(s, 2 * SEC);
    sb_sim_set(s, 3, "role", "primary");
    sb_sim_set(s, 4, "addr", "10.1.2.3:5000");
    sb_sim_run_for(s, 1 * SEC);
    sb_sim_del(s, 3, "role");
    sb_sim_crash(s, 5);
    sb_sim_run_for(s, 3 * SEC);
    sb_sim_restart(s, 5);
    sb_sim_set(s, 5, "new", "state");
    sb_sim_leave(s, 6);
    sb_sim_run_for(s, 5 * SEC);
    sb_sim_free(s);
    printf("%u packets, %u runs\n", (c.n + 1) / 2, c.runs);
    return 0;
}
