/*
 * A token bucket: a rate a second, holding at most `depth`. Pure
 * arithmetic on the time it is given; the bandwidth cap (send.c) and the
 * sweeps' pace (sweep.c) have one each.
 */
#ifndef SB_BUCKET_H
#define SB_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sb_bucket {
    double level;       /* tokens held, at most `depth` */
    double rate;        /* tokens a second */
    double depth;
    uint64_t at;        /* when it was last topped up (ns) */
} sb_bucket;

/* A full bucket at `now`. */
void sb_bucket_init(sb_bucket *b, double rate, double depth, uint64_t now);
/* Tops the bucket up for the time since the last top-up. */
void sb_bucket_refill(sb_bucket *b, uint64_t now);
/* True if it holds at least `n` tokens. */
bool sb_bucket_has(const sb_bucket *b, double n);
/* Takes `n` tokens (check sb_bucket_has() first). */
void sb_bucket_take(sb_bucket *b, double n);

#endif /* SB_BUCKET_H */
