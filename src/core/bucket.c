/*
 * A token bucket (bucket.h): refilled by the time elapsed, up to its
 * depth, so that over any span T it gives at most depth + T x rate.
 */
#include "bucket.h"

void sb_bucket_init(sb_bucket *b, double rate, double depth, uint64_t now)
{
    *b = (sb_bucket){ .level = depth, .rate = rate, .depth = depth,
                      .at = now };
}

void sb_bucket_refill(sb_bucket *b, uint64_t now)
{
    if (now <= b->at)
        return;
    double dt = (double)(now - b->at) / 1e9;
    b->at = now;
    b->level += dt * b->rate;
    if (b->level > b->depth)
        b->level = b->depth;
}

bool sb_bucket_has(const sb_bucket *b, double n)
{
    return b->level >= n;
}

void sb_bucket_take(sb_bucket *b, double n)
{
    b->level -= n;
}
