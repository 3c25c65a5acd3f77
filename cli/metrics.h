/*
 * /metrics: the agent's counters in the Prometheus text exposition
 * format (version 0.0.4), from the same sources as `info`.
 */
#ifndef SB_CLI_METRICS_H
#define SB_CLI_METRICS_H

#include <stddef.h>

#include "agent.h"

/* The exposition in a buffer the caller frees with free(); NULL when out
 * of memory. */
char *metrics_render(agent *a, size_t *len);

#endif
