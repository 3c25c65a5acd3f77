/*
 * Phi accrual failure detector (Hayashibara et al.), one per watched peer.
 *
 * Model: heartbeat inter-arrival times are exponentially distributed with
 * the observed mean, so P(next arrival later than t) = exp(-t / mean) and
 *     phi(t) = -log10(exp(-t / mean)) = t / (mean * ln 10).
 * docs/failure-detector.md explains the choice.
 *
 * The mean is estimated in 16 bytes instead of a ring of samples: an exact
 * running mean over the first `window` samples, then an exponentially
 * weighted mean with weight 1/window, which has the sliding window's mean
 * on stationary input (see the doc). It is kept in single precision and
 * computed in double: every known peer has one. Stored, it is within
 * 2^-24 of the double (6 ns at 100 ms); a sample moves it only if it is
 * farther from it than about window x 2^-24 of it (6e-5 at the default
 * window of 1000, 0.6% at a window of 100,000). Pure arithmetic; no
 * clock.
 */
#ifndef SB_PHI_H
#define SB_PHI_H

#include <stdint.h>

/* The largest window: past it a sample would have to differ from the
 * single-precision mean by more than 0.6% of it to move it at all. */
#define SB_PHI_WINDOW_MAX 100000

typedef struct sb_phi {
    uint64_t last_ns;   /* when the last heartbeat increase arrived */
    float mean_ns;      /* estimated mean inter-arrival time */
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

/*
 * The detector a monitor keeps for each peer it watches (monitor.c): beats
 * come straight from the peer at a steady rhythm, so their gaps are
 * modelled as normally distributed, with a floor under the deviation, and
 *     phi(t) = -log10(P(a gap longer than t)) = -log10(Q((t - mean) / sd))
 * where Q is the normal tail (docs/failure-detector.md, section 9). The
 * mean and variance are running ones over the first `window` gaps, then
 * exponentially weighted with weight 1/window.
 */
typedef struct sb_phi_normal {
    uint64_t last_ns;   /* when the last beat arrived */
    double mean_ns;     /* estimated mean gap */
    double var_ns2;     /* estimated variance of the gaps */
    uint32_t count;     /* samples behind the estimate, at most window */
} sb_phi_normal;

/* Starts watching at `now` with one gap of `bootstrap_ns` learned. */
void sb_phin_reset(sb_phi_normal *p, uint64_t now, uint64_t bootstrap_ns);
/* Records a beat that arrived at `now`. */
void sb_phin_arrival(sb_phi_normal *p, uint64_t now, uint32_t window);
/* phi at `now`, the deviation taken as at least `min_sd_ns`; 0 before the
 * last arrival. */
double sb_phin_value(const sb_phi_normal *p, uint64_t now, double min_sd_ns);

#endif /* SB_PHI_H */
