/*
 * What the cluster tests add to the harness (harness/cluster.h, which has
 * MS, SEC and the run's seed): check(), which fails the test and prints
 * how to replay it, and eventually(). Include after <cmocka.h>.
 */
#ifndef SB_TESTS_CHECK_H
#define SB_TESTS_CHECK_H

#include "cluster.h"

#define check(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            print_error("check failed: %s (replay with SB_SEED=%llu)\n",   \
                        #cond, (unsigned long long)cluster_seed());         \
            fail();                                                         \
        }                                                                   \
    } while (0)

/* Runs cluster c until cond holds (checked every step), at most `limit`
 * of simulated time, then checks it. */
#define eventually(c, limit, cond)                                          \
    do {                                                                    \
        cluster_wait(c, limit, cond);                                       \
        check(cond);                                                        \
    } while (0)

#endif /* SB_TESTS_CHECK_H */
