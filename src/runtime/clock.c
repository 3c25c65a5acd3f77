/*
 * The clocks: the monotonic clock every deadline and timestamp of the
 * engine runs on, and the wall clock (a node's default generation, a
 * fallback for entropy). No lock: nothing shared.
 */
#define _GNU_SOURCE
#include "node.h"

uint64_t sb_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t sb_clock_now_ns(void)
{
    return sb_clock_ns(CLOCK_MONOTONIC);
}
