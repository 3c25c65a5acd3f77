/* What the engine targets share: an engine with some state and small
 * bounds, at 512-byte messages, plaintext unless given keys, speaking
 * `wire`. */
#ifndef SB_FUZZ_HARNESS_H
#define SB_FUZZ_HARNESS_H

#include <stdint.h>
#include <stdlib.h>

#include "engine.h"

#define FUZZ_LIMIT 512

static inline sb_engine *fuzz_engine(sb_send_fn send, const uint8_t *keys,
                                     uint32_t nkeys, sb_wire wire)
{
    sb_engine_config c;
    sb_engine_config_init(&c);
    c.addr = "10.0.0.1:7946";
    c.generation = 1;
    c.interval_ns = 100000000;
    c.max_message_size = FUZZ_LIMIT;
    c.max_nodes = 64;
    c.max_keys_per_node = 16;
    c.max_state_bytes = 4096;
    c.tombstone_grace_ns = 1000000000;
    c.dead_grace_ns = 2000000000;
    c.keys = keys;
    c.nkeys = nkeys;
    c.wire = wire;
    c.send = send;
    sb_engine *e;
    if (sb_engine_new(&c, 0, &e) != SB_OK)
        abort();
    sb_engine_set(e, (const uint8_t *)"role", 4, (const uint8_t *)"db", 2, 0);
    sb_engine_set(e, (const uint8_t *)"gone", 4, (const uint8_t *)"x", 1, 0);
    sb_engine_del(e, (const uint8_t *)"gone", 4, 0); /* reference: refused */
    return e;
}

/* A send callback that checks what every engine target checks: no packet
 * sent is larger than the limit. */
static inline void fuzz_send(void *ud, const char *to, const uint8_t *buf,
                             size_t len)
{
    (void)ud;
    (void)to;
    (void)buf;
    if (len > FUZZ_LIMIT)
        abort();
}

/* Feeds records [u16 length][packet bytes]... to the engine, from the
 * `nfrom` senders in turn, with time moving 30 ms and a tick after every
 * packet, then frees it. */
static inline void fuzz_feed(sb_engine *e, const uint8_t *data, size_t size,
                             const char *const *from, unsigned nfrom)
{
    uint64_t now = 0;
    for (unsigned i = 0; size >= 2; i++) {
        size_t len = (size_t)data[0] << 8 | data[1];
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        now += 30000000;
        sb_engine_recv(e, from[i % nfrom], data, len, now);
        sb_engine_tick(e, now);
        data += len;
        size -= len;
    }
    sb_engine_free(e);
}

#endif /* SB_FUZZ_HARNESS_H */
