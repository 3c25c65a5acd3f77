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

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const from[] = { "10.0.0.2:7946", "10.0.0.9:7946" };
    fuzz_feed(fuzz_engine(fuzz_send, NULL, 0, SB_WIRE_REFERENCE), data, size,
              from, 2);
    return 0;
}
