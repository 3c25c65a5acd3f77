/*
 * libFuzzer target: the whole "packets in, state changes and packets out"
 * path of the engine. The input is a sequence of records
 *   [u16 length][packet bytes]...
 * fed one after the other to an engine that already holds some state,
 * with time moving 30 ms and a tick after every packet. Every packet the
 * engine sends must fit max_message_size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_send(void *ud, const char *to, const uint8_t *buf, size_t len)
{
    (void)to;
    (void)buf;
    if (len > *(const size_t *)ud)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static size_t limit = 512;
    sb_engine_config c;
    sb_engine_config_init(&c);
    c.addr = "10.0.0.1:7946";
    c.generation = 1;
    c.interval_ns = 100000000;
    c.max_message_size = limit;
    c.max_nodes = 64;
    c.max_keys_per_node = 16;
    c.max_state_bytes = 4096;
    c.tombstone_grace_ns = 1000000000;
    c.dead_grace_ns = 2000000000;
    c.send = on_send;
    c.userdata = &limit;
    sb_engine *e;
    if (sb_engine_new(&c, 0, &e) != SB_OK)
        abort();
    sb_engine_set(e, (const uint8_t *)"role", 4, (const uint8_t *)"db", 2, 0);
    sb_engine_set(e, (const uint8_t *)"gone", 4, (const uint8_t *)"x", 1, 0);
    sb_engine_del(e, (const uint8_t *)"gone", 4, 0);
    uint64_t now = 0;
    while (size >= 2) {
        size_t len = (size_t)data[0] << 8 | data[1];
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        now += 30000000;
        sb_engine_recv(e, "10.0.0.9:7946", data, len, now);
        sb_engine_tick(e, now);
        data += len;
        size -= len;
    }
    sb_engine_free(e);
    return 0;
}
