/* Phi accrual failure detector: see fd.h and docs/failure-detector.md. */
#include "fd.h"

#define LN10 2.302585092994045684

void sb_mean_add(sb_mean *m, double sample, uint32_t window)
{
    if (m->count < window)
        m->count++;
    /* running mean while filling, then weight 1/window */
    m->ns += (sample - m->ns) / (double)m->count;
}

void sb_fd_reset(sb_fd *fd, uint64_t now, sb_mean prior)
{
    fd->last_ns = now;
    fd->mean = prior;
}

double sb_fd_heartbeat(sb_fd *fd, uint64_t now, uint32_t window)
{
    /* two arrivals at one instant are one arrival */
    if (now <= fd->last_ns)
        return 0.0;
    double sample = (double)(now - fd->last_ns);
    fd->last_ns = now;
    sb_mean_add(&fd->mean, sample, window);
    return sample;
}

double sb_fd_phi(const sb_fd *fd, uint64_t now)
{
    if (now <= fd->last_ns || fd->mean.ns <= 0.0)
        return 0.0;
    return (double)(now - fd->last_ns) / (fd->mean.ns * LN10);
}

uint64_t sb_fd_deadline(const sb_fd *fd, double threshold)
{
    double wait = threshold * fd->mean.ns * LN10;
    if (!(wait < (double)(UINT64_MAX - fd->last_ns)))
        return UINT64_MAX;
    return fd->last_ns + (uint64_t)wait;
}
