/*
 * `scuttlebutt eval`: start real nodes on 127.0.0.1 in this process and
 * measure the cluster they form.
 *
 * For each cluster size: start the nodes and wait until every node sees
 * every node live; 5 s later, measure the steady state over a window
 * (packets, bytes, CPU, memory); then run trials, each measuring, from the moment
 * of the action to the moment the last node reports it:
 *   propagation  a node sets a key            -> every other node's UPDATE
 *   detection    a node stops without leaving -> every other node's LEAVE (down)
 *                (any running node, however young)
 *   discovery    a new node starts            -> every other node's JOIN
 *   leave        a node leaves gracefully     -> every other node's LEAVE (left)
 * False downs (a LEAVE with status down about a node that runs) are
 * counted over the whole run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "eval.h"
#include "json.h"
#include "load_report.h"
#include "scuttlebutt.h"

#define EVAL_STR_(x) #x
#define EVAL_STR(x) EVAL_STR_(x)

static const char usage[] =
"usage: scuttlebutt eval [--nodes N[,N...]] [--trials N] [--interval MS]\n"
"                        [--fanout N] [--max-message-size BYTES]\n"
"                        [--bandwidth BYTES]\n"
"                        [--threshold PHI] [--window S] [--seed N]\n"
"                        [--monitors K] [--sealed] [--wire FORMAT]\n"
"                        [--json FILE] [--csv FILE] [--plot FILE.png]\n"
"                        [--load RATE[,RATE...] [--keys K]\n"
"                         [--value-bytes B] [--load-seconds S]]\n"
"\n"
"Starts real nodes on 127.0.0.1 in this process and measures, per cluster\n"
"size and over the trials: propagation of an update, detection of a\n"
"stopped node (any running one, however young), discovery of a new\n"
"node, a graceful leave (each: time until the last node reports it);\n"
"and over a steady window (from 5 s after the cluster converged):\n"
"packets and bytes sent, CPU and memory per node; false downs over the\n"
"whole run.\n"
"\n"
"  --nodes LIST            cluster sizes (default 64)\n"
"  --trials N              trials per size (default 10)\n"
"  --interval MS           gossip interval (default 100)\n"
"  --fanout N              eager push trees, 0 = off, at most 8 (default 3)\n"
"  --max-message-size B    UDP payload limit (default 512)\n"
"  --bandwidth BYTES       each node's cap on bytes sent a second\n"
"                          (default: the library's, 1048576)\n"
"  --threshold PHI         failure detector threshold (default 8)\n"
"  --window S              steady-state window in seconds (default 10)\n"
"  --monitors K            monitors per node, 0 = off (default 4)\n"
"  --seed N                seed of the eval's random choices\n"
"  --sealed                one random cluster key: every packet sealed\n"
"  --wire FORMAT           scuttlebutt (default) or reference: the\n"
"                          reference Go library's format (docs/compat.md),\n"
"                          which has no graceful leave to measure\n"
"  --json FILE, --csv FILE write the figures\n"
"  --plot FILE.png         draw (gnuplot) the fraction of nodes holding an\n"
"                          update against time, one curve per size\n"
"\n"
"  --load RATE[,RATE...]   the load scenario instead: every node writes\n"
"                          RATE times a second over its keys, each rate in\n"
"                          turn; per rate and size, staleness (set until an\n"
"                          observer holds it or a newer value: p50, p99,\n"
"                          max), the updates superseded unseen, fairness\n"
"                          (worst writer's p99 / median writer's), goodput,\n"
"                          bytes and packets sent, false downs, and how long\n"
"                          after the load every node held every last value\n"
"                          (README, \"Under load\"); --plot FILE draws the\n"
"                          staleness against the rate (SVG for FILE.svg)\n"
"  --keys K                keys per node under load (default "
EVAL_STR(LOAD_PLAN_KEYS) ")\n"
"  --value-bytes B         value size under load, at least "
EVAL_STR(LOAD_PLAN_MIN_VALUE) " (default "
EVAL_STR(LOAD_PLAN_VALUE_BYTES) ")\n"
"  --load-seconds S        load period per rate (default "
EVAL_STR(LOAD_PLAN_SECONDS) ")\n"
"\n"
"Each size runs in its own process (under load: one after the other in\n"
"this one). Exit status: 0; 1 on an error; 2 on a bad option; 3 if a\n"
"measurement gave up after 60 s, or if a node still lacked a last value\n"
EVAL_STR(LOAD_PLAN_DRAIN_LIMIT_S) " s after a load (the table says which).\n";

/* ---- results ---------------------------------------------------------------- */

enum metric { PROPAGATION, DETECTION, DISCOVERY, LEAVE, NMETRICS };
static const char *const metric_name[NMETRICS] = {
    "propagation", "detection", "discovery", "leave",
};

typedef struct samples {
    double *v;
    size_t n, cap;
} samples;

typedef struct result {
    uint32_t nodes;
    samples ms[NMETRICS];     /* per trial: ms until the last node */
    size_t timeouts[NMETRICS];
    samples arrivals;         /* propagation: every node's ms, pooled */
    double packets_per_s, bytes_per_s, cpu_per_s;
    double memory_kb;         /* peak resident memory growth / nodes */
    uint64_t false_downs;
    double run_s;
} result;

static void eval_add_sample(samples *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = realloc(s->v, s->cap * sizeof(double));
        if (!s->v) {
            perror("scuttlebutt eval");
            exit(1);
        }
    }
    s->v[s->n++] = v;
}

static int eval_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double eval_pct(const samples *s, double p)
{
    if (!s->n)
        return NAN;
    size_t k = (size_t)ceil(p * (double)s->n);
    return s->v[k ? k - 1 : 0];
}

/* Waits for the armed event at every node; its time in ms, or NAN. */
static double eval_await(eval_cluster *c, samples *pooled)
{
    eval_watch *w = &c->w;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(EVAL_WAIT_NS / 1000000000ull);
    pthread_mutex_lock(&w->lock);
    while (w->remaining > 0)
        if (pthread_cond_timedwait(&w->done, &w->lock, &until) == ETIMEDOUT)
            break;
    double last = w->remaining ? NAN : 0;
    for (size_t i = 0; i < c->cap && !isnan(last); i++)
        if (w->arrival[i] > last)
            last = w->arrival[i];
    if (pooled && !w->remaining)
        for (size_t i = 0; i < c->cap; i++)
            if (c->nodes[i].node && strcmp(c->nodes[i].addr, w->target))
                eval_add_sample(pooled, w->arrival[i]);
    w->type = 0;
    pthread_mutex_unlock(&w->lock);
    return last;
}

static void eval_record(result *r, enum metric m, double ms)
{
    if (isnan(ms))
        r->timeouts[m]++;
    else
        eval_add_sample(&r->ms[m], ms);
}

/* ---- steady state ---------------------------------------------------------------- */

static double eval_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A memory figure of this process from /proc/self/status, in kB:
 * "VmRSS:" (resident now) or "VmHWM:" (peak resident). */
static double eval_proc_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            kb = strtod(line + strlen(field), NULL);
    if (f)
        fclose(f);
    return kb;
}

static void eval_totals(eval_cluster *c, uint64_t *packets, uint64_t *bytes)
{
    *packets = *bytes = 0;
    for (size_t i = 0; i < c->cap; i++) {
        sb_stats st;
        if (c->nodes[i].node && sb_node_stats(c->nodes[i].node, &st) == SB_OK) {
            *packets += st.packets_out;
            *bytes += st.bytes_out;
        }
    }
}

/* Seconds between convergence and the steady window, as sb-sim waits:
 * the tail of the start (the last exchanges of the news, each node's
 * first answer from each peer) is not the steady state. */
#define EVAL_SETTLE_S 5

static void eval_steady_state(eval_cluster *c, result *r, double rss_before)
{
    struct timespec settle = { EVAL_SETTLE_S, 0 };
    nanosleep(&settle, NULL);
    uint64_t p0, b0, p1, b1;
    eval_totals(c, &p0, &b0);
    double cpu0 = eval_cpu_s();
    uint64_t t0 = eval_now_ns();
    struct timespec ts = { (time_t)c->opt->window_s, 0 };
    nanosleep(&ts, NULL);
    double secs = (double)(eval_now_ns() - t0) / 1e9;
    eval_totals(c, &p1, &b1);
    double n = (double)r->nodes;
    r->packets_per_s = (double)(p1 - p0) / n / secs;
    r->bytes_per_s = (double)(b1 - b0) / n / secs;
    r->cpu_per_s = (eval_cpu_s() - cpu0) / n / secs;
    r->memory_kb = (eval_proc_kb("VmHWM:") - rss_before) / n;
}

/* ---- progress ------------------------------------------------------------------------ */

static bool tty;

static void eval_progress(uint32_t nodes, uint32_t trial, uint32_t trials,
                          const char *what)
{
    if (!tty)
        return;
    int width = 30, done = trials ? (int)(width * trial / trials) : 0;
    printf("\r%4u nodes [", nodes);
    for (int i = 0; i < width; i++)
        putchar(i < done ? '#' : '.');
    printf("] %u/%u %-12s", trial, trials, what);
    fflush(stdout);
}

static void eval_progress_clear(void)
{
    if (tty) {
        printf("\r%72s\r", "");
        fflush(stdout);
    }
}

/* ---- one cluster size ------------------------------------------------------------------ */

static void eval_run_size(const eval_options *o, uint32_t nodes, result *r)
{
    eval_cluster c;
    eval_cluster_open(&c, o, nodes, 1); /* a slot for the newcomer */
    r->nodes = nodes;
    uint64_t t_run = eval_now_ns();

    double rss_before = eval_proc_kb("VmRSS:");
    eval_progress(nodes, 0, o->trials, "starting");
    for (uint32_t i = 0; i < nodes; i++)
        eval_start_node(&c, false);
    if (!eval_converge(&c))
        fprintf(stderr, "scuttlebutt eval: %u nodes did not converge\n",
                nodes);
    eval_progress(nodes, 0, o->trials, "steady state");
    eval_steady_state(&c, r, rss_before);

    for (uint32_t t = 0; t < o->trials; t++) {
        char value[32];
        eval_progress(nodes, t, o->trials, "propagation");
        eval_converge(&c);
        eval_node *e = eval_pick(&c, NULL);
        snprintf(value, sizeof(value), "v%u-%u", nodes, t);
        eval_arm(&c, SB_EVENT_UPDATE, 0, e, value);
        sb_node_set(e->node, "eval", 4, value, strlen(value));
        eval_record(r, PROPAGATION, eval_await(&c, &r->arrivals));

        eval_progress(nodes, t, o->trials, "detection");
        e = eval_pick(&c, NULL);
        eval_arm(&c, SB_EVENT_LEAVE, SB_STATUS_DOWN, e, NULL);
        eval_stop_node(&c, e);
        eval_record(r, DETECTION, eval_await(&c, NULL));

        eval_progress(nodes, t, o->trials, "discovery");
        eval_start_node(&c, true);
        eval_record(r, DISCOVERY, eval_await(&c, NULL));

        if (o->wire == SB_WIRE_REFERENCE)
            continue; /* that format cannot leave gracefully */
        eval_progress(nodes, t, o->trials, "leave");
        eval_converge(&c);
        e = eval_pick(&c, NULL);
        eval_arm(&c, SB_EVENT_LEAVE, SB_STATUS_LEFT, e, NULL);
        sb_node_leave(e->node);
        eval_record(r, LEAVE, eval_await(&c, NULL));
        eval_stop_node(&c, e);
        eval_start_node(&c, false); /* back to the cluster size */
    }
    eval_progress_clear();
    pthread_mutex_lock(&c.w.lock);
    r->false_downs = c.w.false_downs;
    pthread_mutex_unlock(&c.w.lock);
    eval_cluster_close(&c);
    r->run_s = (double)(eval_now_ns() - t_run) / 1e9;
    /* a metric with no sample has no array (qsort() takes no NULL):
     * the reference wire measures no leave */
    for (int m = 0; m < NMETRICS; m++)
        if (r->ms[m].n)
            qsort(r->ms[m].v, r->ms[m].n, sizeof(double), eval_cmp_double);
    if (r->arrivals.n)
        qsort(r->arrivals.v, r->arrivals.n, sizeof(double),
              eval_cmp_double);
}

/* ---- one process per cluster size --------------------------------------------------- */

/* Each size runs in a child process, so that its CPU time and memory are
 * its own; the child sends its result back through a pipe. */
static bool eval_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

static bool eval_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        len -= (size_t)r;
    }
    return true;
}

static bool eval_send_samples(int fd, const samples *s)
{
    return eval_write_all(fd, &s->n, sizeof(s->n)) &&
           eval_write_all(fd, s->v, s->n * sizeof(double));
}

static bool eval_receive_samples(int fd, samples *s)
{
    if (!eval_read_all(fd, &s->n, sizeof(s->n)) || s->n > (1u << 28))
        return false;
    s->cap = s->n;
    s->v = malloc(s->n ? s->n * sizeof(double) : 1);
    if (s->v && eval_read_all(fd, s->v, s->n * sizeof(double)))
        return true;
    free(s->v);
    s->v = NULL;
    return false;
}

static bool eval_run_size_apart(const eval_options *o, uint32_t nodes, result *r)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    fflush(stdout);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        /* ends with the eval: killed, it leaves no nodes measuring for
         * nobody (the check covers a parent gone before the call) */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(1);
        close(fds[0]);
        eval_run_size(o, nodes, r);
        bool ok = eval_write_all(fds[1], r, sizeof(*r));
        for (int m = 0; m < NMETRICS && ok; m++)
            ok = eval_send_samples(fds[1], &r->ms[m]);
        ok = ok && eval_send_samples(fds[1], &r->arrivals);
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    bool ok = eval_read_all(fds[0], r, sizeof(*r));
    for (int m = 0; m < NMETRICS; m++)
        if (!ok || !eval_receive_samples(fds[0], &r->ms[m]))
            ok = false, r->ms[m] = (samples){ 0 };
    if (!ok || !eval_receive_samples(fds[0], &r->arrivals))
        ok = false, r->arrivals = (samples){ 0 };
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- output ------------------------------------------------------------------------------ */

static void eval_print_table(const eval_options *o, const result *res, size_t nres)
{
    char cap[48];
    eval_cap_text(o, cap, sizeof(cap));
    printf("scuttlebutt eval: interval %u ms, fanout %u, monitors %u, max "
           "message %u B, threshold %g, %s, %u trials, window %u s%s%s\n\n",
           o->interval_ms, o->fanout, o->monitors, o->max_message,
           o->threshold, cap, o->trials, o->window_s,
           o->sealed ? ", sealed" : "",
           o->wire == SB_WIRE_REFERENCE ? ", reference wire" : "");
    printf("%6s  %-22s %9s %9s %9s %9s %6s\n", "nodes", "until all nodes (ms)",
           "median", "p90", "p99", "max", "n");
    for (size_t i = 0; i < nres; i++) {
        const result *r = &res[i];
        for (int m = 0; m < NMETRICS; m++) {
            const samples *s = &r->ms[m];
            if (!s->n && !r->timeouts[m])
                continue; /* not measured (a leave, on the reference wire) */
            printf("%6u  %-22s %9.1f %9.1f %9.1f %9.1f %6zu", r->nodes,
                   metric_name[m], eval_pct(s, 0.5), eval_pct(s, 0.9), eval_pct(s, 0.99),
                   eval_pct(s, 1.0), s->n);
            if (r->timeouts[m])
                printf("  (%zu timed out)", r->timeouts[m]);
            putchar('\n');
        }
    }
    printf("\n%6s  %12s %12s %14s %14s %12s\n", "nodes", "packets/s",
           "bytes/s", "CPU ms/s", "memory kB", "false downs");
    printf("%6s  %12s %12s %14s %14s %12s\n", "", "per node", "per node",
           "per node", "per node", "(whole run)");
    for (size_t i = 0; i < nres; i++) {
        const result *r = &res[i];
        printf("%6u  %12.1f %12.0f %14.2f %14.1f %12llu\n", r->nodes,
               r->packets_per_s, r->bytes_per_s, r->cpu_per_s * 1000,
               r->memory_kb, (unsigned long long)r->false_downs);
    }
}

/* (eval.h) */
void eval_cap_text(const eval_options *o, char *out, size_t cap)
{
    if (o->bandwidth)
        snprintf(out, cap, "bandwidth %u B/s", o->bandwidth);
    else
        snprintf(out, cap, "bandwidth the default (%u B/s)",
                 SB_BANDWIDTH_DEFAULT);
}

void eval_json_config(FILE *f, const eval_options *o)
{
    fprintf(f, "\"config\":{\"interval_ms\":%u,\"fanout\":%u,"
            "\"monitors\":%u,\"max_message_size\":%u,\"threshold\":%g,"
            "\"bandwidth\":%u,\"bandwidth_default\":%s,\"trials\":%u,"
            "\"window_s\":%u,\"seed\":%llu,\"sealed\":%s,\"wire\":\"%s\"}",
            o->interval_ms, o->fanout, o->monitors, o->max_message,
            o->threshold, o->bandwidth ? o->bandwidth : SB_BANDWIDTH_DEFAULT,
            o->bandwidth ? "false" : "true", o->trials, o->window_s,
            (unsigned long long)o->seed,
            o->sealed ? "true" : "false",
            o->wire == SB_WIRE_REFERENCE ? "reference" : "scuttlebutt");
}

static bool eval_write_json(const char *path, const eval_options *o, const result *res,
                            size_t nres)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fputc('{', f);
    eval_json_config(f, o);
    fputs(",\"clusters\":[", f);
    for (size_t i = 0; i < nres; i++) {
        const result *r = &res[i];
        fprintf(f, "%s{\"nodes\":%u", i ? "," : "", r->nodes);
        for (int m = 0; m < NMETRICS; m++) {
            const samples *s = &r->ms[m];
            fprintf(f, ",\"%s_ms\":{", metric_name[m]);
            if (s->n)
                fprintf(f, "\"median\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
                        "\"max\":%.3f,", eval_pct(s, 0.5), eval_pct(s, 0.9),
                        eval_pct(s, 0.99), eval_pct(s, 1.0));
            fprintf(f, "\"timeouts\":%zu,\"samples\":[", r->timeouts[m]);
            for (size_t k = 0; k < s->n; k++)
                fprintf(f, "%s%.3f", k ? "," : "", s->v[k]);
            fputs("]}", f);
        }
        fprintf(f, ",\"packets_per_s_per_node\":%.3f,"
                "\"bytes_per_s_per_node\":%.3f,\"cpu_s_per_s_per_node\":%.6f,"
                "\"memory_kb_per_node\":%.1f,\"false_downs\":%llu,"
                "\"run_s\":%.1f}", r->packets_per_s, r->bytes_per_s,
                r->cpu_per_s, r->memory_kb,
                (unsigned long long)r->false_downs, r->run_s);
    }
    fputs("]}\n", f);
    return fclose(f) == 0;
}

static bool eval_write_csv(const char *path, const result *res, size_t nres)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    /* a time's row: its quantiles (empty where none was measured), the
     * samples taken and those that timed out; a figure's: its value */
    fputs("nodes,metric,median,p90,p99,max,n,timeouts\n", f);
    for (size_t i = 0; i < nres; i++) {
        const result *r = &res[i];
        for (int m = 0; m < NMETRICS; m++) {
            const samples *s = &r->ms[m];
            fprintf(f, "%u,%s_ms,", r->nodes, metric_name[m]);
            if (s->n)
                fprintf(f, "%.3f,%.3f,%.3f,%.3f", eval_pct(s, 0.5),
                        eval_pct(s, 0.9), eval_pct(s, 0.99),
                        eval_pct(s, 1.0));
            else
                fputs(",,,", f);
            fprintf(f, ",%zu,%zu\n", s->n, r->timeouts[m]);
        }
        fprintf(f, "%u,packets_per_s_per_node,%.3f,,,,,\n", r->nodes,
                r->packets_per_s);
        fprintf(f, "%u,bytes_per_s_per_node,%.3f,,,,,\n", r->nodes,
                r->bytes_per_s);
        fprintf(f, "%u,cpu_s_per_s_per_node,%.6f,,,,,\n", r->nodes,
                r->cpu_per_s);
        fprintf(f, "%u,memory_kb_per_node,%.1f,,,,,\n", r->nodes,
                r->memory_kb);
        fprintf(f, "%u,false_downs,%llu,,,,,\n", r->nodes,
                (unsigned long long)r->false_downs);
    }
    return fclose(f) == 0;
}

/* The fraction of nodes holding an update against time, one curve per
 * cluster size, drawn by gnuplot. */
static bool eval_write_plot(const char *path, const eval_options *o, const result *res,
                            size_t nres)
{
    char dir[] = "/tmp/sb-eval-XXXXXX";
    if (!mkdtemp(dir))
        return false;
    char script[64], data[96];
    snprintf(script, sizeof(script), "%s/plot.gp", dir);
    FILE *gp = fopen(script, "w");
    if (!gp)
        return false;
    fputs("set terminal pngcairo size 900,540 font ',11'\nset output '", gp);
    load_report_quoted(gp, path); /* a ' in it ends no string */
    fprintf(gp, "'\n"
            "set title 'Update propagation: scuttlebutt, interval %u ms, "
            "fanout %u, %u trials'\n"
            "set xlabel 'time since the update was set (ms)'\n"
            "set ylabel 'fraction of nodes holding it'\n"
            "set yrange [0:1.02]\nset grid\nset key bottom right\n"
            "set logscale x\n", o->interval_ms, o->fanout, o->trials);
    fputs("plot ", gp);
    for (size_t i = 0; i < nres; i++) {
        const samples *a = &res[i].arrivals;
        snprintf(data, sizeof(data), "%s/n%zu.dat", dir, i);
        FILE *f = fopen(data, "w");
        if (!f) {
            fclose(gp);
            return false;
        }
        for (size_t k = 0; k < a->n; k++)
            fprintf(f, "%.3f %.5f\n", a->v[k] > 0.01 ? a->v[k] : 0.01,
                    (double)(k + 1) / (double)a->n);
        fclose(f);
        fprintf(gp, "%s'%s' using 1:2 with steps lw 2 title '%u nodes'",
                i ? ", " : "", data, res[i].nodes);
    }
    fputc('\n', gp);
    fclose(gp);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "gnuplot %s", script);
    int rc = system(cmd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "scuttlebutt eval: could not remove %s\n", dir);
    return rc == 0;
}

/* ---- main --------------------------------------------------------------------------------- */

static bool eval_parse_sizes(const char *s, eval_options *o)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    o->nsizes = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->nsizes == EVAL_MAX_SIZES ||
            !parse_u32(tok, 2, 4096, &o->sizes[o->nsizes]))
            return false;
        o->nsizes++;
    }
    return o->nsizes > 0;
}

/* Room for the sockets and pipes of the largest cluster. */
static void eval_raise_fd_limit(uint32_t nodes)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)nodes * 4 + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int eval_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "nodes", required_argument, NULL, 'n' },
        { "trials", required_argument, NULL, 't' },
        { "interval", required_argument, NULL, 'i' },
        { "fanout", required_argument, NULL, 'f' },
        { "max-message-size", required_argument, NULL, 'm' },
        { "bandwidth", required_argument, NULL, 'b' },
        { "threshold", required_argument, NULL, 'p' },
        { "window", required_argument, NULL, 'w' },
        { "seed", required_argument, NULL, 's' },
        { "json", required_argument, NULL, 'j' },
        { "csv", required_argument, NULL, 'c' },
        { "plot", required_argument, NULL, 'g' },
        { "sealed", no_argument, NULL, 'S' },
        { "wire", required_argument, NULL, 'W' },
        { "monitors", required_argument, NULL, 'k' },
        { "load", required_argument, NULL, 'L' },
        { "keys", required_argument, NULL, 'K' },
        { "value-bytes", required_argument, NULL, 'B' },
        { "load-seconds", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    eval_options o = { .sizes = { 64 }, .nsizes = 1, .trials = 10,
                  .interval_ms = 100, .fanout = 3, .max_message = 512,
                  .window_s = 10, .threshold = 8.0, .monitors = 4 };
    o.seed = (uint64_t)time(NULL);
    load_plan_init(&o.load);
    uint32_t seed32;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!eval_parse_sizes(optarg, &o))
                return usage_error(usage, "--nodes: sizes 2 to 4096, "
                                   "comma-separated");
            break;
        case 't':
            if (!parse_u32(optarg, 1, 100000, &o.trials))
                return usage_error(usage, "--trials: 1 to 100000");
            break;
        case 'i':
            if (!parse_u32(optarg, 1, 60000, &o.interval_ms))
                return usage_error(usage, "--interval: 1 to 60000 ms");
            break;
        case 'k':
            if (!parse_u32(optarg, 0, 8, &o.monitors))
                return usage_error(usage, "--monitors: 0 to 8");
            break;
        case 'f':
            if (!parse_u32(optarg, 0, 8, &o.fanout))
                return usage_error(usage, "--fanout: 0 to 8");
            break;
        case 'm':
            if (!parse_u32(optarg, 64, 65507, &o.max_message))
                return usage_error(usage, "--max-message-size: 64 to 65507");
            break;
        case 'b':
            if (!parse_u32(optarg, 1, UINT32_MAX, &o.bandwidth))
                return usage_error(usage, "--bandwidth: 1 to 4294967295 "
                                   "bytes a second");
            break;
        case 'p':
            if (!parse_double(optarg, &o.threshold) || !(o.threshold >= 1))
                return usage_error(usage, "--threshold: a number >= 1");
            break;
        case 'w':
            if (!parse_u32(optarg, 1, 3600, &o.window_s))
                return usage_error(usage, "--window: 1 to 3600 s");
            break;
        case 's':
            if (!parse_u32(optarg, 0, UINT32_MAX, &seed32))
                return usage_error(usage, "--seed: 0 to 4294967295");
            o.seed = seed32;
            break;
        case 'j':
            o.json = optarg;
            break;
        case 'c':
            o.csv = optarg;
            break;
        case 'g':
            o.plot = optarg;
            break;
        case 'S':
            o.sealed = true;
            break;
        case 'W':
            if (!parse_wire(optarg, &o.wire))
                return usage_error(usage, "--wire: scuttlebutt or reference");
            break;
        case 'L':
            if (!load_plan_parse_rates(optarg, &o.load))
                return usage_error(usage, "--load: up to "
                                   EVAL_STR(LOAD_PLAN_MAX_RATES) " rates "
                                   "above 0, comma-separated");
            break;
        case 'K':
            if (!parse_u32(optarg, 1, LOAD_PLAN_MAX_KEYS, &o.load.keys))
                return usage_error(usage, "--keys: 1 to "
                                   EVAL_STR(LOAD_PLAN_MAX_KEYS));
            break;
        case 'B':
            if (!parse_u32(optarg, LOAD_PLAN_MIN_VALUE, 65507,
                           &o.load.value_bytes))
                return usage_error(usage, "--value-bytes: "
                                   EVAL_STR(LOAD_PLAN_MIN_VALUE)
                                   " to 65507");
            break;
        case 'T':
            if (!parse_u32(optarg, 1, LOAD_PLAN_MAX_SECONDS, &o.load.seconds))
                return usage_error(usage, "--load-seconds: 1 to "
                                   EVAL_STR(LOAD_PLAN_MAX_SECONDS));
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return usage_error(usage, NULL);
        }
    }
    if (optind < argc)
        return usage_error(usage, "unexpected argument");
    if (o.sealed && o.wire == SB_WIRE_REFERENCE)
        return usage_error(usage, "--sealed: the reference wire format has "
                           "no encryption");
    if (o.wire == SB_WIRE_REFERENCE)
        o.fanout = o.monitors = 0; /* no eager push, no monitors on that
                                      wire (the engine turns them off): the
                                      header and the JSON say so */
    if (o.sealed) {
        if (sodium_init() < 0) {
            fprintf(stderr, "scuttlebutt eval: cannot initialise libsodium\n");
            return 1;
        }
        randombytes_buf(o.key, sizeof(o.key));
    }

    tty = isatty(STDOUT_FILENO);
    uint32_t largest = 0;
    for (size_t i = 0; i < o.nsizes; i++)
        if (o.sizes[i] > largest)
            largest = o.sizes[i];
    eval_raise_fd_limit(largest + 1);
    if (o.load.nrates)
        return eval_load_main(&o);

    result *res = calloc(o.nsizes, sizeof(result));
    if (!res) {
        perror("scuttlebutt eval");
        return 1;
    }
    for (size_t i = 0; i < o.nsizes; i++) {
        if (!eval_run_size_apart(&o, o.sizes[i], &res[i])) {
            fprintf(stderr, "scuttlebutt eval: the run of %u nodes failed\n",
                    o.sizes[i]);
            return 1;
        }
    }
    eval_print_table(&o, res, o.nsizes);

    int status = 0;
    if (o.json && !eval_write_json(o.json, &o, res, o.nsizes)) {
        fprintf(stderr, "scuttlebutt eval: cannot write %s\n", o.json);
        status = 1;
    }
    if (o.csv && !eval_write_csv(o.csv, res, o.nsizes)) {
        fprintf(stderr, "scuttlebutt eval: cannot write %s\n", o.csv);
        status = 1;
    }
    if (o.plot && !eval_write_plot(o.plot, &o, res, o.nsizes)) {
        fprintf(stderr, "scuttlebutt eval: cannot draw %s (is gnuplot "
                "installed?)\n", o.plot);
        status = 1;
    }
    for (size_t i = 0; i < o.nsizes; i++) {
        for (int m = 0; m < NMETRICS; m++) {
            if (res[i].timeouts[m])
                status = status ? status : 3;
            free(res[i].ms[m].v);
        }
        free(res[i].arrivals.v);
    }
    free(res);
    return status;
}
