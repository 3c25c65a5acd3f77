/*
 * libFuzzer target: the sealed path, "packet in, open, state changes and
 * sealed packets out", for the harness's fuzz node (tests/harness) holding
 * the key of fuzz_key.h. The input is a sequence of records
 *   [u8 kind][u16 length][bytes]...
 * kind bit 0 clear: the bytes are a plaintext message (header first),
 * which the target seals with the key, so that the fuzzer reaches what
 * follows a successful open; set: the bytes go in as they are (sealed
 * traffic as captured, or forgeries). The cluster runs 30 ms before every
 * packet. Every packet the engine sends must be sealed and fit
 * max_message_size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "codec.h"
#include "fuzz_key.h"
#include "keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sb_keyring kr;
    static uint64_t counter;
    if (!kr.count && (!sb_seal_init() ||
                      sb_keyring_install(&kr, sb_fuzz_key) != SB_OK))
        abort();
    cluster *c = cluster_fuzz(sb_fuzz_key, 1, SB_WIRE_SCUTTLEBUTT);
    cluster_capture(c, 0, 0);
    while (size >= 3) {
        uint8_t kind = data[0];
        size_t len = (size_t)data[1] << 8 | data[2];
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        cluster_run(c, 30 * MS);
        if (kind & 1 || len < SB_HEADER_SIZE ||
            len + SB_SEAL_OVERHEAD > CLUSTER_FUZZ_LIMIT) {
            cluster_deliver(c, 0, SB_FUZZ_FROM, data, len);
        } else {
            uint8_t sealed[CLUSTER_FUZZ_LIMIT];
            uint8_t nonce[SB_NONCE_SIZE] = { 0 };
            counter++;
            memcpy(nonce, &counter, sizeof(counter));
            size_t slen = sb_seal(&kr, nonce, data, len, sealed);
            cluster_deliver(c, 0, SB_FUZZ_FROM, sealed, slen);
        }
        data += len;
        size -= len;
    }
    const cluster_packets *sent = cluster_captured(c);
    for (size_t k = 0; k < sent->n; k++)
        if (sent->p[k].len > CLUSTER_FUZZ_LIMIT ||
            sent->p[k].len < SB_HEADER_SIZE + SB_SEAL_OVERHEAD ||
            !(sent->p[k].data[3] & SB_SEALED))
            abort();
    cluster_free(c);
    return 0;
}
