/* The load scenario on the simulator (sim_load.h). */
#include "sim_load.h"

#include <stdlib.h>
#include <string.h>

#define SIM_LOAD_CONVERGE_LIMIT (600 * SEC)
#define SIM_LOAD_SETTLE (5 * SEC)      /* detectors learn the rhythm */
#define SIM_LOAD_SAMPLE (100 * MS)     /* traffic sampled this often */
#define SIM_LOAD_DRAIN_STEP (10 * MS)  /* the drain checked this often */

struct sim_load {
    sb_sim *sim;
    load_plan plan;
    uint32_t nodes;
    load_meter *meter;
    char *last;               /* [writer][key]: value_bytes + 1 each */
    bool *written;            /* [writer][key] */
    bool converged;
    double converged_s;
    bool counting;            /* false downs, once settled */
    uint64_t false_downs;
};

static void sim_load_on_event(void *ud, uint32_t node, const sb_event *ev,
                              uint64_t now)
{
    sim_load *l = ud;
    if (!l->meter)
        return; /* still starting */
    if (ev->type == SB_EVENT_UPDATE)
        load_meter_update(l->meter, node, ev->addr, ev->key, ev->key_len,
                          ev->value, ev->value_len, now);
    else if (ev->type == SB_EVENT_LEAVE && ev->status == SB_STATUS_DOWN &&
             l->counting)
        l->false_downs++; /* nobody crashes here */
}

int sim_load_new(const sb_sim_config *cfg, const load_plan *plan,
                 sim_load **out)
{
    *out = NULL;
    sim_load *l = calloc(1, sizeof(*l));
    if (!l)
        return SB_ENOMEM;
    l->plan = *plan;
    l->nodes = cfg->nodes;
    sb_sim_config sc = *cfg;
    sc.on_event = sim_load_on_event;
    sc.on_packet = NULL;
    sc.on_datagram = NULL;
    sc.userdata = l;
    int rc = sb_sim_new(&sc, &l->sim);
    if (rc != SB_OK) {
        free(l);
        return rc;
    }
    size_t wk = (size_t)l->nodes * plan->keys;
    const char **addrs = malloc(l->nodes * sizeof(*addrs));
    l->last = calloc(wk, plan->value_bytes + 1);
    l->written = calloc(wk, sizeof(*l->written));
    for (uint32_t i = 0; addrs && i < l->nodes; i++)
        addrs[i] = sb_sim_addr(l->sim, i);
    if (addrs && l->last && l->written)
        l->meter = load_meter_new(plan, l->nodes, addrs);
    free(addrs);
    if (!l->meter) {
        sim_load_free(l);
        return SB_ENOMEM;
    }
    char key[LOAD_PLAN_KEY_CAP];
    size_t max;
    if (sb_engine_max_value(sb_sim_engine(l->sim, 0),
                            load_plan_key(key, plan->keys - 1), &max) !=
            SB_OK ||
        max < plan->value_bytes) {
        sim_load_free(l);
        return SB_ETOOBIG;
    }
    uint64_t interval = sc.engine.interval_ns;
    while (!sb_sim_converged(l->sim) &&
           sb_sim_now(l->sim) < SIM_LOAD_CONVERGE_LIMIT)
        sb_sim_run_for(l->sim, interval);
    l->converged = sb_sim_converged(l->sim);
    l->converged_s = (double)sb_sim_now(l->sim) / SEC;
    sb_sim_run_for(l->sim, SIM_LOAD_SETTLE);
    l->counting = true;
    *out = l;
    return SB_OK;
}

void sim_load_free(sim_load *l)
{
    if (!l)
        return;
    sb_sim_free(l->sim);
    load_meter_free(l->meter);
    free(l->last);
    free(l->written);
    free(l);
}

bool sim_load_converged(const sim_load *l, double *at_s)
{
    *at_s = l->converged_s;
    return l->converged;
}

sb_sim *sim_load_sim(const sim_load *l)
{
    return l->sim;
}

const char *sim_load_last(const sim_load *l, uint32_t w, uint32_t k)
{
    size_t at = (size_t)w * l->plan.keys + k;
    return l->written[at] ? l->last + at * (l->plan.value_bytes + 1) : NULL;
}

/* Every node's traffic so far, to the meter. */
static void sim_load_sample(sim_load *l)
{
    for (uint32_t i = 0; i < l->nodes; i++) {
        sb_stats st;
        sb_engine_stats(sb_sim_engine(l->sim, i), &st);
        load_meter_sent(l->meter, i, st.bytes_out, st.packets_out,
                        sb_sim_now(l->sim));
    }
}

/* Node w writes its key k now. */
static int sim_load_write(sim_load *l, uint32_t w, uint32_t k)
{
    uint64_t now = sb_sim_now(l->sim);
    uint64_t seq = load_meter_set(l->meter, w, k, now);
    if (seq == UINT64_MAX)
        return SB_ENOMEM;
    size_t at = (size_t)w * l->plan.keys + k;
    char key[LOAD_PLAN_KEY_CAP], *value = l->last + at *
                                           (l->plan.value_bytes + 1);
    load_plan_key(key, k);
    load_plan_value(&l->plan, value, seq, now / 1000);
    l->written[at] = true;
    return sb_sim_set(l->sim, w, key, value);
}

int sim_load_run(sim_load *l, double rate, load_row *row)
{
    sb_sim *s = l->sim;
    uint64_t t0 = sb_sim_now(s), end = t0 + (uint64_t)l->plan.seconds * SEC;
    uint64_t writes = l->nodes * load_plan_writes(&l->plan, rate);
    uint64_t downs0 = l->false_downs, next_sample = t0 + SIM_LOAD_SAMPLE;
    load_meter_begin(l->meter, rate, t0);
    sim_load_sample(l);
    uint64_t g = 0;
    for (;;) {
        uint32_t w, k;
        uint64_t due = UINT64_MAX;
        if (g < writes) {
            load_plan_write(&l->plan, rate, l->nodes, g, &w, &k, &due);
            due += t0;
        }
        uint64_t t = due < next_sample ? due : next_sample;
        sb_sim_run_until(s, t < end ? t : end);
        if (t >= end)
            break;
        if (t == due) {
            int rc = sim_load_write(l, w, k);
            if (rc != SB_OK)
                return rc;
            g++;
        } else {
            sim_load_sample(l);
            next_sample += SIM_LOAD_SAMPLE;
        }
    }
    sim_load_sample(l);
    load_meter_stop(l->meter, end);
    uint64_t check = end + LOAD_PLAN_STALE_CHECK_S * SEC;
    uint64_t limit = end + LOAD_PLAN_DRAIN_LIMIT_S * SEC;
    uint64_t stale_at_check = 0;
    bool checked = false;
    while (load_meter_stale(l->meter) && sb_sim_now(s) < limit) {
        sb_sim_run_for(s, SIM_LOAD_DRAIN_STEP);
        if (!checked && sb_sim_now(s) >= check) {
            stale_at_check = load_meter_stale(l->meter);
            checked = true;
        }
    }
    load_meter_row(l->meter, row);
    row->false_downs = l->false_downs - downs0;
    row->stale_at_check = stale_at_check;
    return SB_OK;
}
