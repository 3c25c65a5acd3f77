/*
 * libFuzzer target: an engine that speaks the reference wire format
 * (SB_WIRE_REFERENCE, refwire.h), the whole "packets in, state changes
 * and packets out" path. The input is a sequence of records
 *   [u16 length][packet bytes]...
 * fed one after the other, alternately from two senders, with time
 * moving 30 ms and a tick after every packet. Every packet the engine
 * sends must fit max_message_size, although what it takes may not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_send(void *ud, const char *to, const uint8_t *buf, size_t len)
{
    (void)ud;
    (void)to;
    (void)buf;
    if (len > FUZZ_LIMIT)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const from[] = { "10.0.0.2:7946", "10.0.0.9:7946" };
    sb_engine *e = fuzz_engine(on_send, NULL, 0, SB_WIRE_REFERENCE);
    uint64_t now = 0;
    for (unsigned i = 0; size >= 2; i++) {
        size_t len = (size_t)data[0] << 8 | data[1];
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        now += 30000000;
        sb_engine_recv(e, from[i % 2], data, len, now);
        sb_engine_tick(e, now);
        data += len;
        size -= len;
    }
    sb_engine_free(e);
    return 0;
}
