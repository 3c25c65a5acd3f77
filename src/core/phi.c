/*
 * The phi accrual failure detector (phi.h, docs/failure-detector.md): a
 * running mean of heartbeat gaps, phi at a time, when it passes a bound.
 */
#include "phi.h"

#include <math.h>

#define LN10 2.302585092994045684

void sb_phi_reset(sb_phi *p, uint64_t now, uint64_t bootstrap_ns)
{
    p->last_ns = now;
    p->mean_ns = (float)bootstrap_ns;
    p->count = 1;
}

/* An arrival at `now` after the last at *last: the gap, or -1 for two
 * arrivals at one instant (one arrival); *count grows up to window. */
static double phi_gap(uint64_t *last, uint32_t *count, uint64_t now,
                      uint32_t window)
{
    if (now <= *last)
        return -1.0;
    double gap = (double)(now - *last);
    *last = now;
    if (*count < window)
        (*count)++;
    return gap;
}

void sb_phi_heartbeat(sb_phi *p, uint64_t now, uint32_t window)
{
    double sample = phi_gap(&p->last_ns, &p->count, now, window);
    if (sample < 0)
        return;
    /* running mean while filling, then weight 1/window */
    double mean = p->mean_ns;
    p->mean_ns = (float)(mean + (sample - mean) / (double)p->count);
}

double sb_phi_value(const sb_phi *p, uint64_t now)
{
    if (now <= p->last_ns || p->mean_ns <= 0.0)
        return 0.0;
    return (double)(now - p->last_ns) / ((double)p->mean_ns * LN10);
}

uint64_t sb_phi_deadline(const sb_phi *p, double threshold)
{
    double wait = threshold * (double)p->mean_ns * LN10;
    if (!(wait < (double)(UINT64_MAX - p->last_ns)))
        return UINT64_MAX;
    return p->last_ns + (uint64_t)wait;
}

void sb_phin_reset(sb_phi_normal *p, uint64_t now, uint64_t bootstrap_ns)
{
    p->last_ns = now;
    p->mean_ns = (double)bootstrap_ns;
    p->var_ns2 = 0.0;
    p->count = 1;
}

void sb_phin_arrival(sb_phi_normal *p, uint64_t now, uint32_t window)
{
    double sample = phi_gap(&p->last_ns, &p->count, now, window);
    if (sample < 0)
        return;
    /* Welford's update while filling, then weight 1/window */
    double w = 1.0 / (double)p->count;
    double delta = sample - p->mean_ns;
    p->mean_ns += delta * w;
    p->var_ns2 += (delta * (sample - p->mean_ns) - p->var_ns2) * w;
}

double sb_phin_value(const sb_phi_normal *p, uint64_t now, double min_sd_ns)
{
    if (now <= p->last_ns)
        return 0.0;
    double sd = sqrt(p->var_ns2);
    if (sd < min_sd_ns)
        sd = min_sd_ns;
    if (!(sd > 0.0))
        return 0.0;
    double z = ((double)(now - p->last_ns) - p->mean_ns) / sd;
    /* Q(z) = erfc(z / sqrt 2) / 2; below 1e-300 phi is past any threshold */
    double q = 0.5 * erfc(z * 0.70710678118654752440);
    return q < 1e-300 ? 300.0 : -log10(q);
}
