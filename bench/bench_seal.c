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
        sb_writer wr = { msg, msg, msg + len };
        sb_put_header(&wr, SB_MSG_ACK2, sb_cluster_id("default"));
        for (size_t i = SB_HEADER_SIZE; i < len; i++)
            msg[i] = (uint8_t)i;
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
