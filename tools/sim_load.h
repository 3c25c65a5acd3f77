/*
 * The load scenario (load_plan.h) on the simulator: `sb-sim --load` and
 * the load tests. A cluster is started and converged once; each rate then
 * runs on it in turn, measured by a load meter (load_meter.h). Everything
 * is simulated time: the same configuration and seed give the same
 * figures.
 */
#ifndef SB_TOOLS_SIM_LOAD_H
#define SB_TOOLS_SIM_LOAD_H

#include <stdbool.h>

#include "load_meter.h"
#include "load_plan.h"
#include "sim.h"

typedef struct sim_load sim_load;

/* Starts cfg's cluster (its on_event, on_packet and userdata are the
 * driver's) and runs it until it converges, at most 600 simulated
 * seconds, then 5 s more for the detectors to settle; the value size
 * must fit the engines' messages. SB_OK, SB_ETOOBIG (the value does not
 * fit), SB_ENOMEM, or sb_sim_new()'s error. */
int sim_load_new(const sb_sim_config *cfg, const load_plan *plan,
                 sim_load **out);
void sim_load_free(sim_load *l);

/* Whether the cluster converged before the load; when, in simulated
 * seconds from its start. */
bool sim_load_converged(const sim_load *l, double *at_s);

/* Every node writes at `rate` for the plan's period, then the drain:
 * until every node holds every last value, at most
 * LOAD_PLAN_DRAIN_LIMIT_S. SB_OK, or an error of a write. */
int sim_load_run(sim_load *l, double rate, load_row *row);

sb_sim *sim_load_sim(const sim_load *l);

/* The last value node w wrote to its key k, or NULL if none yet. */
const char *sim_load_last(const sim_load *l, uint32_t w, uint32_t k);

#endif /* SB_TOOLS_SIM_LOAD_H */
