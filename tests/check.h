/*
 * What the engine and simulator tests share: the run's seed (SB_SEED,
 * default 1) and check(), which fails the test and prints how to replay
 * it. Include after <cmocka.h>.
 */
#ifndef SB_TESTS_CHECK_H
#define SB_TESTS_CHECK_H

#include <stdint.h>
#include <stdlib.h>

#define MS 1000000ull
#define SEC 1000000000ull

static uint64_t seed_;

/* Reads SB_SEED into seed_ and returns it. */
static inline uint64_t read_seed(void)
{
    const char *env = getenv("SB_SEED");
    seed_ = env ? strtoull(env, NULL, 0) : 1;
    return seed_;
}

#define check(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            print_error("check failed: %s (replay with SB_SEED=%llu)\n",   \
                        #cond, (unsigned long long)seed_);                  \
            fail();                                                         \
        }                                                                   \
    } while (0)

#endif /* SB_TESTS_CHECK_H */
