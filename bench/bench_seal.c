/*
 * The cost of sealing: messages sealed, and opened, per second by one
 * core, at 512 and 1400 bytes on the wire (a benchmark, not a test).
 * Usage: bench-seal [SECONDS_PER_FIGURE]   (default 2)
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "keyring.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes a valid ACK2 (wire v3) of exactly `len` bytes into msg: header,
 * echo, one node delta with one key whose value fills the rest (128 to
 * 1400 bytes, so that its length is a two-byte varint); false if no such
 * ACK2 is `len` bytes long. */
static bool ack2(uint8_t *msg, size_t len)
{
    static uint8_t value[1400];
    const sb_delta d = { .addr = "a:1", .addr_len = 3, .generation = 1,
                         .heartbeat = 1, .to_version = 1, .nkeys = 1 };
    /* all but the value's bytes, its length a two-byte varint */
    const size_t frame = SB_HEADER_SIZE + SB_TOKEN_SIZE + 1 /* m */ +
                         sb_delta_header_size(&d) +
                         sb_key_entry_size(1, 128, 1) - 128;
    if (len < frame + 128 || len - frame > sizeof(value))
        return false;
    size_t vlen = len - frame;
    for (size_t i = 0; i < vlen; i++)
        value[i] = (uint8_t)i;
    const sb_key_entry k = { .key = (const uint8_t *)"k", .key_len = 1,
                             .version = 1, .value = value,
                             .value_len = vlen };
    uint32_t cid = sb_cluster_id("default");
    sb_writer w = { msg, msg, msg + len };
    sb_msg m;
    return sb_put_header(&w, SB_MSG_ACK2, cid) &&
           sb_put_u64(&w, 0x0102030405060708ull) /* the echo */ &&
           sb_put_varint(&w, 1) && sb_put_delta_header(&w, &d) &&
           sb_put_key_entry(&w, &k) && w.p == msg + len &&
           sb_msg_decode(msg, len, cid, &m, NULL);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    if (!(seconds > 0) || !sb_seal_init()) {
        fprintf(stderr, "usage: bench-seal [SECONDS]\n");
        return 2;
    }
    sb_keyring kr = { 0 };
    uint8_t key[SB_KEY_SIZE];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 7 + 1);
    sb_keyring_install(&kr, key);
    static const size_t wire[] = { 512, 1400 };
    printf("%10s %16s %16s\n", "wire bytes", "sealed/s", "opened/s");
    for (size_t w = 0; w < 2; w++) {
        static uint8_t msg[1400], sealed[1400], opened[1400];
        size_t len = wire[w] - SB_SEAL_OVERHEAD;
        if (!ack2(msg, len)) {
            fprintf(stderr, "bench-seal: no ACK2 of %zu bytes\n", len);
            return 1;
        }
        uint8_t nonce[SB_NONCE_SIZE] = { 0 };
        double rate[2];
        for (int op = 0; op < 2; op++) {
            unsigned long long n = 0;
            double t0 = cpu_s(), t;
            do {
                for (int k = 0; k < 1000; k++, n++) {
                    if (op == 0) {
                        nonce[0] = (uint8_t)n;
                        nonce[1] = (uint8_t)(n >> 8);
                        sb_seal(&kr, nonce, msg, len, sealed);
                    } else if (sb_open(&kr, sealed, wire[w], opened) != len) {
                        fprintf(stderr, "bench-seal: does not open\n");
                        return 1;
                    }
                }
                t = cpu_s() - t0;
            } while (t < seconds);
            rate[op] = (double)n / t;
        }
        printf("%10zu %16.0f %16.0f\n", wire[w], rate[0], rate[1]);
    }
    return 0;
}
