/*
 * Reply tokens: a SYN carries a token for the address it goes to, the ACK
 * answering it echoes that token and carries one of its own, the ACK2
 * echoes the ACK's. A token is a keyed hash (SipHash-2-4) of the address
 * and of the period it was made in, under a key only this engine holds,
 * so an answer that echoes it comes from someone who received what we
 * sent there, lately: a datagram with a forged source cannot pass for an
 * answer, and a captured answer replayed passes for one only until the
 * period after its own ends. Nothing is stored per message: an echo is
 * checked against the tokens of this period and the last, computed
 * again, so a duplicate passes, and an answer as late as a whole period.
 *
 * A period is TOKEN_INTERVALS intervals, TOKEN_LEAST at the least: far
 * longer than an answer takes (a node that answers a second late still
 * proves itself), far shorter than the time a dead node's replayed
 * answers could otherwise keep it proven (monitor.c takes an answer from
 * a subject as a beat; with tokens that never changed, one answer per
 * monitor replayed now and then kept a crashed node from being
 * convicted at all).
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

#define TOKEN_INTERVALS 16
#define TOKEN_LEAST SEC

static uint64_t token_period(const sb_engine *e)
{
    uint64_t i = e->cfg.interval_ns;
    if (i > UINT64_MAX / TOKEN_INTERVALS)
        return UINT64_MAX;
    return i * TOKEN_INTERVALS < TOKEN_LEAST ? TOKEN_LEAST
                                             : i * TOKEN_INTERVALS;
}

static uint64_t token_of(const sb_engine *e, const char *addr,
                         uint64_t period)
{
    uint8_t in[8 + SB_MAX_ADDR_LEN];
    size_t len = strlen(addr);
    if (len > SB_MAX_ADDR_LEN)
        len = SB_MAX_ADDR_LEN;
    for (int i = 0; i < 8; i++)
        in[i] = (uint8_t)(period >> (8 * i));
    memcpy(in + 8, addr, len);
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, in, 8 + len, e->token_key);
    uint64_t t;
    memcpy(&t, h, sizeof(t));
    return t;
}

uint64_t sb_token(const sb_engine *e, const char *addr, uint64_t now)
{
    return token_of(e, addr, now / token_period(e));
}

bool sb_token_echoed(const sb_engine *e, const char *addr, uint64_t echo,
                     uint64_t now)
{
    uint64_t period = now / token_period(e);
    return echo == token_of(e, addr, period) ||
           (period > 0 && echo == token_of(e, addr, period - 1));
}
