/* The agent's poll() set (see loop.h). */
#define _POSIX_C_SOURCE 200809L
#include "loop.h"

#include <time.h>

uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void loop_reset(loop *l)
{
    l->n = 0;
    l->deadline = UINT64_MAX;
}

int loop_add(loop *l, int fd, short events)
{
    if (fd < 0 || l->n == LOOP_MAX_FDS)
        return -1;
    l->fds[l->n] = (struct pollfd){ .fd = fd, .events = events };
    return l->n++;
}

short loop_revents(const loop *l, int slot)
{
    return slot < 0 ? 0 : l->fds[slot].revents;
}

void loop_wake_at(loop *l, uint64_t at_ms)
{
    if (at_ms < l->deadline)
        l->deadline = at_ms;
}

int loop_timeout(const loop *l)
{
    if (l->deadline == UINT64_MAX)
        return -1;
    uint64_t now = mono_ms();
    if (l->deadline <= now)
        return 0;
    uint64_t left = l->deadline - now;
    return left > 3600000 ? 3600000 : (int)left;
}
