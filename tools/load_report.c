/* The load scenario's figures: table, JSON, CSV, plot (load_report.h). */
#define _POSIX_C_SOURCE 200809L /* popen */
#include "load_report.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* The share of resolved pairs that were superseded, in percent. */
static double load_report_superseded(const load_row *r)
{
    return r->pairs ? 100.0 * (double)r->superseded / (double)r->pairs : NAN;
}

/* The worst writer's staleness p99 over the median writer's. */
static double load_report_fairness(const load_row *r)
{
    return r->writer_p99_median_ms > 0
               ? r->writer_p99_worst_ms / r->writer_p99_median_ms
               : NAN;
}

/* A figure right-aligned in `width`, or "-" where not measured. */
static void load_report_cell(FILE *f, int width, int prec, double v)
{
    if (isnan(v))
        fprintf(f, " %*s", width, "-");
    else
        fprintf(f, " %*.*f", width, prec, v);
}

void load_report_table(FILE *f, const load_row *rows, size_t n)
{
    fprintf(f, "%5s %7s %8s %10s %9s %9s %9s %10s %8s %9s %9s %8s %9s "
            "%5s %9s %7s\n", "nodes", "rate", "writes", "pairs", "stale",
            "stale", "stale", "super-", "fairness", "goodput", "sent",
            "sent", "peak", "false", "all held", "stale");
    fprintf(f, "%5s %7s %8s %10s %9s %9s %9s %10s %8s %9s %9s %8s %9s "
            "%5s %9s %7s\n", "", "/node/s", "", "", "p50 ms", "p99 ms",
            "max ms", "seded %", "p99 w/m", "B/node/s", "B/node/s",
            "pkt/n/s", "B/s, 1 s", "downs", "after ms", "at 2 s");
    for (size_t i = 0; i < n; i++) {
        const load_row *r = &rows[i];
        fprintf(f, "%5" PRIu32 " %7g %8" PRIu64 " %10" PRIu64, r->nodes,
                r->rate, r->writes, r->pairs);
        load_report_cell(f, 9, 1, r->stale_p50_ms);
        load_report_cell(f, 9, 1, r->stale_p99_ms);
        load_report_cell(f, 9, 1, r->stale_max_ms);
        load_report_cell(f, 10, 2, load_report_superseded(r));
        load_report_cell(f, 8, 2, load_report_fairness(r));
        load_report_cell(f, 9, 0, r->goodput);
        load_report_cell(f, 9, 0, r->bytes_per_s);
        load_report_cell(f, 8, 1, r->packets_per_s);
        load_report_cell(f, 9, 0, r->peak_bytes_per_s);
        fprintf(f, " %5" PRIu64, r->false_downs);
        if (r->all_held_ms < 0)
            fprintf(f, " %9s", "never");
        else
            load_report_cell(f, 9, 1, r->all_held_ms);
        fprintf(f, " %7" PRIu64 "\n", r->stale_at_check);
    }
}

/* A JSON number, or null. */
static void load_report_number(FILE *f, const char *name, double v,
                               bool last)
{
    if (isnan(v) || isinf(v))
        fprintf(f, "\"%s\":null%s", name, last ? "" : ",");
    else
        fprintf(f, "\"%s\":%.3f%s", name, v, last ? "" : ",");
}

void load_report_json(FILE *f, const load_row *rows, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        const load_row *r = &rows[i];
        fprintf(f, "%s{\"nodes\":%" PRIu32 ",\"rate\":%g,\"writes\":%" PRIu64
                ",\"pairs\":%" PRIu64 ",\"superseded\":%" PRIu64 ",",
                i ? "," : "", r->nodes, r->rate, r->writes, r->pairs,
                r->superseded);
        load_report_number(f, "seconds", r->seconds, false);
        load_report_number(f, "superseded_percent",
                           load_report_superseded(r), false);
        fputs("\"staleness_ms\":{", f);
        load_report_number(f, "p50", r->stale_p50_ms, false);
        load_report_number(f, "p99", r->stale_p99_ms, false);
        load_report_number(f, "max", r->stale_max_ms, true);
        fputs("},\"writer_p99_ms\":{", f);
        load_report_number(f, "worst", r->writer_p99_worst_ms, false);
        load_report_number(f, "median", r->writer_p99_median_ms, true);
        fputs("},", f);
        load_report_number(f, "fairness", load_report_fairness(r), false);
        load_report_number(f, "goodput_bytes_per_s_per_node", r->goodput,
                           false);
        load_report_number(f, "bytes_per_s_per_node", r->bytes_per_s, false);
        load_report_number(f, "packets_per_s_per_node", r->packets_per_s,
                           false);
        load_report_number(f, "peak_bytes_per_s", r->peak_bytes_per_s,
                           false);
        fprintf(f, "\"false_downs\":%" PRIu64 ",", r->false_downs);
        load_report_number(f, "all_held_after_ms",
                           r->all_held_ms < 0 ? NAN : r->all_held_ms, false);
        fprintf(f, "\"stale_at_%ds\":%" PRIu64 "}", LOAD_PLAN_STALE_CHECK_S,
                r->stale_at_check);
    }
    fputs("]", f);
}

/* A CSV figure, or nothing. */
static void load_report_field(FILE *f, double v)
{
    if (!isnan(v) && !isinf(v))
        fprintf(f, "%.3f", v);
    fputc(',', f);
}

void load_report_csv(FILE *f, const load_row *rows, size_t n)
{
    fprintf(f, "nodes,rate,seconds,writes,pairs,superseded,"
            "superseded_percent,staleness_p50_ms,staleness_p99_ms,"
            "staleness_max_ms,writer_p99_worst_ms,writer_p99_median_ms,"
            "fairness,goodput_bytes_per_s_per_node,bytes_per_s_per_node,"
            "packets_per_s_per_node,peak_bytes_per_s,false_downs,"
            "all_held_after_ms,stale_at_%ds\n", LOAD_PLAN_STALE_CHECK_S);
    for (size_t i = 0; i < n; i++) {
        const load_row *r = &rows[i];
        fprintf(f, "%" PRIu32 ",%g,", r->nodes, r->rate);
        load_report_field(f, r->seconds);
        fprintf(f, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",", r->writes,
                r->pairs, r->superseded);
        const double v[] = {
            load_report_superseded(r), r->stale_p50_ms, r->stale_p99_ms,
            r->stale_max_ms, r->writer_p99_worst_ms,
            r->writer_p99_median_ms, load_report_fairness(r), r->goodput,
            r->bytes_per_s, r->packets_per_s, r->peak_bytes_per_s,
        };
        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
            load_report_field(f, v[k]);
        fprintf(f, "%" PRIu64 ",", r->false_downs);
        load_report_field(f, r->all_held_ms < 0 ? NAN : r->all_held_ms);
        fprintf(f, "%" PRIu64 "\n", r->stale_at_check);
    }
}

/* (load_report.h) */
void load_report_quoted(FILE *f, const char *s)
{
    for (; *s; s++)
        fputs(*s == '\'' ? "''" : (char[]){ *s, 0 }, f);
}

/* The smallest staleness a log axis shows, in ms; the most cluster sizes
 * drawn. */
#define LOAD_REPORT_FLOOR_MS 0.001
#define LOAD_REPORT_MAX_SIZES 64

bool load_report_plot(const char *path, const char *title,
                      const load_row *rows, size_t n)
{
    size_t len = strlen(path);
    bool svg = len >= 4 && strcmp(path + len - 4, ".svg") == 0;
    FILE *gp = popen("gnuplot", "w");
    if (!gp)
        return false;
    /* the data inline: one block per cluster size, in the rows' order */
    uint32_t sizes[LOAD_REPORT_MAX_SIZES];
    size_t nsizes = 0;
    for (size_t i = 0; i < n; i++) {
        if (nsizes && sizes[nsizes - 1] == rows[i].nodes)
            continue;
        if (nsizes == LOAD_REPORT_MAX_SIZES)
            break;
        sizes[nsizes] = rows[i].nodes;
        fprintf(gp, "$n%zu << EOD\n", nsizes++);
        for (size_t k = i; k < n && rows[k].nodes == rows[i].nodes; k++)
            if (!isnan(rows[k].stale_p50_ms))
                fprintf(gp, "%g %.6f %.6f\n", rows[k].rate,
                        fmax(rows[k].stale_p50_ms, LOAD_REPORT_FLOOR_MS),
                        fmax(rows[k].stale_p99_ms, LOAD_REPORT_FLOOR_MS));
        fputs("EOD\n", gp);
    }
    fprintf(gp, "set terminal %s size 900,540 font ',11'\nset output '",
            svg ? "svg" : "pngcairo");
    load_report_quoted(gp, path);
    fputs("'\nset title '", gp);
    load_report_quoted(gp, title);
    fputs("'\nset xlabel 'writes per node per second'\n"
          "set ylabel 'staleness: set to seen (ms)'\n"
          "set logscale xy\nset grid\nset key top left\n"
          "set style data linespoints\nplot ", gp);
    for (size_t i = 0; i < nsizes; i++)
        fprintf(gp, "%s$n%zu using 1:2 lw 2 lc %zu title '%" PRIu32
                " nodes, p50', $n%zu using 1:3 lw 2 lc %zu dt 2 title '%"
                PRIu32 " nodes, p99'", i ? ", " : "", i, i + 1, sizes[i], i,
                i + 1, sizes[i]);
    fputc('\n', gp);
    return pclose(gp) == 0 && nsizes > 0;
}
