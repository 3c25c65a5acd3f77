/*
 * Phi accrual failure detector (Hayashibara et al.), one per watched peer.
 *
 * Model: heartbeat inter-arrival times are exponentially distributed with
 * the observed mean, so P(next arrival later than t) = exp(-t / mean) and
 *     phi(t) = -log10(exp(-t / mean)) = t / (mean * ln 10).
 * docs/failure-detector.md explains the choice.
 *
 * The mean is estimated in 24 bytes instead of a ring of samples: an exact
 * running mean over the first `window` samples, then an exponentially
 * weighted mean with weight 1/window, which has the sliding window's mean
 * on stationary input (see the doc). Pure arithmetic; no clock.
 */
#ifndef SB_PHI_H
#define SB_PHI_H

#include <stdint.h>

typedef struct sb_phi {
    uint64_t last_ns;   /* when the last heartbeat increase arrived */
    double mean_ns;     /* estimated mean inter-arrival time */
    uint32_t count;     /* samples behind the estimate, at most window */
} sb_phi;

/* Starts (or restarts) watching: one bootstrap sample of `bootstrap_ns`,
 * so a new peer is neither convicted at once nor never. */
void sb_phi_reset(sb_phi *p, uint64_t now, uint64_t bootstrap_ns);
/* Records a heartbeat increase seen at `now`. */
void sb_phi_heartbeat(sb_phi *p, uint64_t now, uint32_t window);
/* phi at `now`; 0 before the last arrival. */
double sb_phi_value(const sb_phi *p, uint64_t now);
/* When phi passes `threshold` if no heartbeat arrives (saturates). */
uint64_t sb_phi_deadline(const sb_phi *p, double threshold);

#endif /* SB_PHI_H */
