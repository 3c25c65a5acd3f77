/*
 * `scuttlebutt eval --load`: the load scenario (tools/load_plan.h) on real
 * nodes on 127.0.0.1 in this process. For each cluster size, one after
 * the other: start the nodes, wait until they converge and a few seconds
 * more, then for each rate in turn every node writes at that rate for the
 * plan's period (one thread makes every node's writes, on schedule), and
 * then the drain: until every node holds every node's last values. The
 * nodes' update callbacks feed a load meter (tools/load_meter.h), under
 * the cluster's lock; traffic is sampled every interval.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval.h"
#include "load_meter.h"
#include "load_report.h"

#define EVAL_LOAD_SETTLE_NS (5 * 1000000000ull) /* detectors learn the
                                                    rhythm */
#define EVAL_LOAD_DRAIN_STEP_NS (10 * 1000000ull)

/* Sleeps until CLOCK_MONOTONIC reaches t (ns). */
static void eval_load_sleep_until(uint64_t t)
{
    struct timespec ts = { (time_t)(t / 1000000000ull),
                           (long)(t % 1000000000ull) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR)
        ;
}

/* The cluster's tap: every update a node reports, to the meter. */
static void eval_load_tap(void *arg, const eval_node *self,
                          const sb_event *ev)
{
    load_meter_update(arg, (uint32_t)self->index, ev->addr, ev->key,
                      ev->key_len, ev->value, ev->value_len, eval_now_ns());
}

/* Every node's traffic so far, to the meter. */
static void eval_load_sample(eval_cluster *c, load_meter *m)
{
    for (size_t i = 0; i < c->cap; i++) {
        sb_stats st;
        if (sb_node_stats(c->nodes[i].node, &st) != SB_OK)
            continue;
        uint64_t now = eval_now_ns();
        pthread_mutex_lock(&c->w.lock);
        load_meter_sent(m, (uint32_t)i, st.bytes_out, st.packets_out, now);
        pthread_mutex_unlock(&c->w.lock);
    }
}

/* Node w writes its key k now (the set recorded first, outside the node's
 * calls). */
static void eval_load_write(eval_cluster *c, load_meter *m, uint32_t w,
                            uint32_t k, char *value)
{
    const load_plan *p = &c->opt->load;
    char key[LOAD_PLAN_KEY_CAP];
    size_t key_len = load_plan_key(key, k);
    uint64_t now = eval_now_ns();
    pthread_mutex_lock(&c->w.lock);
    uint64_t seq = load_meter_set(m, w, k, now);
    pthread_mutex_unlock(&c->w.lock);
    if (seq == UINT64_MAX) {
        fprintf(stderr, "scuttlebutt eval: out of memory\n");
        exit(1);
    }
    size_t len = load_plan_value(p, value, seq, now / 1000);
    int rc = sb_node_set(c->nodes[w].node, key, key_len, value, len);
    if (rc != SB_OK) {
        fprintf(stderr, "scuttlebutt eval: sb_node_set: %s\n",
                sb_strerror(rc));
        exit(1);
    }
}

/* One rate: the load, then the drain. */
static void eval_load_rate(eval_cluster *c, load_meter *m, double rate,
                           load_row *row, char *value)
{
    const load_plan *p = &c->opt->load;
    uint32_t nodes = (uint32_t)c->cap;
    uint64_t writes = nodes * load_plan_writes(p, rate);
    uint64_t step = (uint64_t)c->opt->interval_ms * 1000000ull;
    uint64_t t0 = eval_now_ns(), end = t0 + p->seconds * 1000000000ull;
    pthread_mutex_lock(&c->w.lock);
    uint64_t downs0 = c->w.false_downs;
    load_meter_begin(m, rate, t0);
    pthread_mutex_unlock(&c->w.lock);
    eval_load_sample(c, m);
    uint64_t g = 0, due, now, next_sample = t0 + step, next_write = UINT64_MAX;
    uint32_t w = 0, k = 0;
    if (writes) {
        load_plan_write(p, rate, nodes, 0, &w, &k, &due);
        next_write = t0 + due;
    }
    /* writes still due at the end are not made: the table has the count */
    while ((now = eval_now_ns()) < end) {
        if (next_sample <= now) {
            eval_load_sample(c, m);
            next_sample += step;
        } else if (next_write <= now) {
            eval_load_write(c, m, w, k, value);
            next_write = UINT64_MAX;
            if (++g < writes) {
                load_plan_write(p, rate, nodes, g, &w, &k, &due);
                next_write = t0 + due;
            }
        } else {
            uint64_t next = next_write < next_sample ? next_write : next_sample;
            eval_load_sleep_until(next < end ? next : end);
        }
    }
    eval_load_sample(c, m);
    uint64_t stop = eval_now_ns();
    pthread_mutex_lock(&c->w.lock);
    load_meter_stop(m, stop);
    pthread_mutex_unlock(&c->w.lock);
    uint64_t check = stop + LOAD_PLAN_STALE_CHECK_S * 1000000000ull;
    uint64_t limit = stop + LOAD_PLAN_DRAIN_LIMIT_S * 1000000000ull;
    uint64_t stale, stale_at_check = 0;
    bool checked = false;
    for (;;) {
        pthread_mutex_lock(&c->w.lock);
        stale = load_meter_stale(m);
        pthread_mutex_unlock(&c->w.lock);
        now = eval_now_ns();
        if (!checked && now >= check) {
            stale_at_check = stale;
            checked = true;
        }
        if (!stale || now >= limit)
            break;
        eval_load_sleep_until(now + EVAL_LOAD_DRAIN_STEP_NS);
    }
    pthread_mutex_lock(&c->w.lock);
    load_meter_row(m, row);
    row->false_downs = c->w.false_downs - downs0;
    pthread_mutex_unlock(&c->w.lock);
    row->stale_at_check = stale_at_check;
}

/* One cluster size, every rate in turn: a row per rate. */
static bool eval_load_size(const eval_options *o, uint32_t nodes,
                           load_row *rows)
{
    const load_plan *p = &o->load;
    eval_cluster c;
    eval_cluster_open(&c, o, nodes, 0);
    for (uint32_t i = 0; i < nodes; i++)
        eval_start_node(&c, false);
    char key[LOAD_PLAN_KEY_CAP];
    size_t max = 0;
    if (sb_node_max_value(c.nodes[0].node, load_plan_key(key, p->keys - 1),
                          &max) != SB_OK ||
        max < p->value_bytes) {
        fprintf(stderr, "scuttlebutt eval: --value-bytes %" PRIu32 ": a "
                "value that large does not fit a %" PRIu32 "-byte message "
                "(at most %zu; --max-message-size)\n", p->value_bytes,
                o->max_message, max);
        eval_cluster_close(&c);
        return false;
    }
    if (!eval_converge(&c))
        fprintf(stderr, "scuttlebutt eval: %u nodes did not converge\n",
                nodes);
    eval_load_sleep_until(eval_now_ns() + EVAL_LOAD_SETTLE_NS);
    const char **addrs = malloc(nodes * sizeof(*addrs));
    char *value = malloc(p->value_bytes + 1);
    load_meter *m = NULL;
    for (uint32_t i = 0; addrs && i < nodes; i++)
        addrs[i] = c.nodes[i].addr;
    if (addrs && value)
        m = load_meter_new(p, nodes, addrs);
    free(addrs);
    if (!m) {
        fprintf(stderr, "scuttlebutt eval: out of memory\n");
        exit(1);
    }
    pthread_mutex_lock(&c.w.lock);
    c.tap = eval_load_tap;
    c.tap_arg = m;
    pthread_mutex_unlock(&c.w.lock);
    for (size_t i = 0; i < p->nrates; i++) {
        fprintf(stderr, "scuttlebutt eval: %u nodes, %g writes per node "
                "per second\n", nodes, p->rates[i]);
        eval_load_rate(&c, m, p->rates[i], &rows[i], value);
    }
    pthread_mutex_lock(&c.w.lock);
    c.tap = NULL;
    pthread_mutex_unlock(&c.w.lock);
    eval_cluster_close(&c);
    load_meter_free(m);
    free(value);
    return true;
}

static bool eval_load_write_json(const char *path, const eval_options *o,
                                 const load_row *rows, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fputc('{', f);
    eval_json_config(f, o);
    fprintf(f, ",\"load\":{\"keys\":%" PRIu32 ",\"value_bytes\":%" PRIu32
            ",\"seconds\":%" PRIu32 ",\"rows\":", o->load.keys,
            o->load.value_bytes, o->load.seconds);
    load_report_json(f, rows, n);
    fputs("}}\n", f);
    return fclose(f) == 0;
}

static bool eval_load_write_csv(const char *path, const load_row *rows,
                                size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    load_report_csv(f, rows, n);
    return fclose(f) == 0;
}

int eval_load_main(const eval_options *o)
{
    const load_plan *p = &o->load;
    size_t n = o->nsizes * p->nrates;
    load_row *rows = calloc(n, sizeof(*rows));
    if (!rows) {
        perror("scuttlebutt eval");
        return 1;
    }
    for (size_t i = 0; i < o->nsizes; i++)
        if (!eval_load_size(o, o->sizes[i], rows + i * p->nrates)) {
            free(rows);
            return 1;
        }
    char cap[48];
    eval_cap_text(o, cap, sizeof(cap));
    printf("scuttlebutt eval --load: interval %u ms, fanout %u, monitors "
           "%u, max message %u B, threshold %g, %s%s%s; %" PRIu32 " keys of %"
           PRIu32 " B per node, %" PRIu32 " s per rate\n\n", o->interval_ms,
           o->fanout, o->monitors, o->max_message, o->threshold, cap,
           o->sealed ? ", sealed" : "",
           o->wire == SB_WIRE_REFERENCE ? ", reference wire" : "", p->keys,
           p->value_bytes, p->seconds);
    load_report_table(stdout, rows, n);
    int status = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].all_held_ms < 0)
            status = 3;
    if (o->json && !eval_load_write_json(o->json, o, rows, n)) {
        fprintf(stderr, "scuttlebutt eval: cannot write %s\n", o->json);
        status = 1;
    }
    if (o->csv && !eval_load_write_csv(o->csv, rows, n)) {
        fprintf(stderr, "scuttlebutt eval: cannot write %s\n", o->csv);
        status = 1;
    }
    char title[160];
    snprintf(title, sizeof(title), "Staleness under load: scuttlebutt, "
             "interval %u ms, %" PRIu32 " keys of %" PRIu32 " B per node",
             o->interval_ms, p->keys, p->value_bytes);
    if (o->plot && !load_report_plot(o->plot, title, rows, n)) {
        fprintf(stderr, "scuttlebutt eval: cannot draw %s (is gnuplot "
                "installed?)\n", o->plot);
        status = 1;
    }
    free(rows);
    return status;
}
