/* Phi accrual failure detector: see fd.h and docs/failure-detector.md. */
#include "fd.h"

#define LN10 2.302585092994045684

void sb_fd_reset(sb_fd *fd, uint64_t now, uint64_t bootstrap_ns)
{
    fd->last_ns = now;
    fd->mean_ns = (double)bootstrap_ns;
    fd->count = 1;
}

void sb_fd_heartbeat(sb_fd *fd, uint64_t now, uint32_t window)
{
    /* two arrivals at one instant are one arrival */
    if (now <= fd->last_ns)
        return;
    double sample = (double)(now - fd->last_ns);
    fd->last_ns = now;
    if (fd->count < window)
        fd->count++;
    /* running mean while filling, then weight 1/window */
    fd->mean_ns += (sample - fd->mean_ns) / (double)fd->count;
}

double sb_fd_phi(const sb_fd *fd, uint64_t now)
{
    if (now <= fd->last_ns || fd->mean_ns <= 0.0)
        return 0.0;
    return (double)(now - fd->last_ns) / (fd->mean_ns * LN10);
}

uint64_t sb_fd_deadline(const sb_fd *fd, double threshold)
{
    double wait = threshold * fd->mean_ns * LN10;
    if (!(wait < (double)(UINT64_MAX - fd->last_ns)))
        return UINT64_MAX;
    return fd->last_ns + (uint64_t)wait;
}
