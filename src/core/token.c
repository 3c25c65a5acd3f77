/*
 * Reply tokens: a SYN carries a token for the address it goes to, the ACK
 * answering it echoes that token and carries one of its own, the ACK2
 * echoes the ACK's. A token is a keyed hash (SipHash-2-4) of the address,
 * under a key only this engine holds, so an answer that echoes it comes
 * from someone who received what we sent there: a datagram with a forged
 * source cannot pass for an answer. Nothing is stored per message, and
 * a duplicate or late answer still passes.
 */
#include <sodium.h>
#include <string.h>

#include "internal.h"

/* The key: the config's (the core draws no randomness of its own), or if
 * that is all zero, from the PRNG's seed by a splitmix stream of its own
 * (tests and the simulator: predictable), so that the PRNG's draws are
 * those of an engine without tokens. */
void sb_token_init(sb_engine *e, const uint8_t key[16], uint64_t seed)
{
    static const uint8_t zero[16];
    if (memcmp(key, zero, sizeof(zero)) != 0) {
        memcpy(e->token_key, key, sizeof(e->token_key));
        return;
    }
    uint64_t x = seed ^ 0x746f6b656e6b6579ull; /* "tokenkey" */
    for (int i = 0; i < 2; i++) {
        uint64_t v = sb_splitmix64(&x);
        memcpy(e->token_key + 8 * i, &v, 8);
    }
}

uint64_t sb_token(const sb_engine *e, const char *addr)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const uint8_t *)addr, strlen(addr), e->token_key);
    uint64_t t;
    memcpy(&t, h, sizeof(t));
    return t;
}
