/*
 * libFuzzer target: the sealed path, "packet in, open, state changes and
 * sealed packets out", for an engine that holds the key of fuzz_key.h.
 * The input is a sequence of records
 *   [u8 kind][u16 length][bytes]...
 * kind bit 0 clear: the bytes are a plaintext message (header first),
 * which the harness seals with the key, so that the fuzzer reaches what
 * follows a successful open; set: the bytes go in as they are (sealed
 * traffic as captured, or forgeries). Time moves 30 ms and the engine
 * ticks after every packet. Every packet the engine sends must be sealed
 * and fit max_message_size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz_key.h"
#include "harness.h"
#include "keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_send(void *ud, const char *to, const uint8_t *buf, size_t len)
{
    (void)ud;
    (void)to;
    if (len > FUZZ_LIMIT || len < SB_HEADER_SIZE + SB_SEAL_OVERHEAD ||
        !(buf[3] & SB_SEALED))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sb_keyring kr;
    static uint64_t counter;
    if (!kr.count && (!sb_seal_init() ||
                      sb_keyring_install(&kr, sb_fuzz_key) != SB_OK))
        abort();
    sb_engine *e = fuzz_engine(on_send, sb_fuzz_key, 1, SB_WIRE_SCUTTLEBUTT);
    uint64_t now = 0;
    while (size >= 3) {
        uint8_t kind = data[0];
        size_t len = (size_t)data[1] << 8 | data[2];
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        now += 30000000;
        if (kind & 1 || len < SB_HEADER_SIZE ||
            len + SB_SEAL_OVERHEAD > FUZZ_LIMIT) {
            sb_engine_recv(e, "10.0.0.9:7946", data, len, now);
        } else {
            uint8_t sealed[FUZZ_LIMIT], nonce[SB_NONCE_SIZE] = { 0 };
            counter++;
            memcpy(nonce, &counter, sizeof(counter));
            size_t slen = sb_seal(&kr, nonce, data, len, sealed);
            sb_engine_recv(e, "10.0.0.9:7946", sealed, slen, now);
        }
        sb_engine_tick(e, now);
        data += len;
        size -= len;
    }
    sb_engine_free(e);
    return 0;
}
