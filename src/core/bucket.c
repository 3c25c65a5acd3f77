/*
 * A token bucket (bucket.h): refilled by the time elapsed, capped at one
 * second's worth, so a burst after a quiet second may spend twice the rate.
 */
#include "bucket.h"

void sb_bucket_init(sb_bucket *b, double rate, uint64_t now)
{
    *b = (sb_bucket){ .level = rate, .rate = rate, .at = now };
}

void sb_bucket_refill(sb_bucket *b, uint64_t now)
{
    double dt = (double)(now - b->at) / 1e9;
    b->at = now;
    b->level += dt * b->rate;
    if (b->level > b->rate)
        b->level = b->rate;
}

bool sb_bucket_has(const sb_bucket *b, double n)
{
    return b->level >= n;
}

void sb_bucket_take(sb_bucket *b, double n)
{
    b->level -= n;
}
