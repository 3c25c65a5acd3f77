/*
 * libFuzzer target: the whole "packets in, state changes and packets out"
 * path of the engine (the reference wire's: fuzz_reference.c). The input
 * is a sequence of records
 *   [u16 length][packet bytes]...
 * fed one after the other to the harness's fuzz node (tests/harness), an
 * engine that already holds some state, with the cluster running 30 ms
 * before every packet. Every packet the engine sends must fit
 * max_message_size.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cluster.h"
#include "fuzz_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const from[] = { SB_FUZZ_FROM };
    cluster *c = cluster_fuzz(NULL, 0, SB_WIRE_SCUTTLEBUTT);
    cluster_feed(c, 0, data, size, from, 1, 30 * MS);
    if (cluster_largest_sent(c, 0) > CLUSTER_FUZZ_LIMIT)
        abort();
    cluster_free(c);
    return 0;
}
