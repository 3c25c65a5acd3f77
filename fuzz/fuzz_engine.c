/*
 * libFuzzer target: the whole "packets in, state changes and packets out"
 * path of the engine (the reference wire's: fuzz_reference.c). The input
 * is a sequence of records
 *   [u16 length][packet bytes]...
 * fed one after the other to an engine that already holds some state,
 * with time moving 30 ms and a tick after every packet. Every packet the
 * engine sends must fit max_message_size.
 */
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const from[] = { "10.0.0.9:7946" };
    fuzz_feed(fuzz_engine(fuzz_send, NULL, 0, SB_WIRE_SCUTTLEBUTT), data,
              size, from, 1);
    return 0;
}
