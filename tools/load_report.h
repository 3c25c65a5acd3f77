/*
 * The load scenario's figures written out, the same by `scuttlebutt eval
 * --load` and `sb-sim --load`: the table, JSON, CSV, and a plot of
 * staleness against rate (gnuplot).
 */
#ifndef SB_TOOLS_LOAD_REPORT_H
#define SB_TOOLS_LOAD_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "load_meter.h"

/* The table: two heading lines, then a line per row. */
void load_report_table(FILE *f, const load_row *rows, size_t n);

/* A JSON array, an object per row (a figure that could not be measured is
 * null; all_held_after_ms too when they were not all held within the
 * drain limit). */
void load_report_json(FILE *f, const load_row *rows, size_t n);

/* CSV: a heading line, then a line per row (empty where not measured). */
void load_report_csv(FILE *f, const load_row *rows, size_t n);
/* Writes s as the contents of a gnuplot single-quoted string ('' for '),
 * for a path or a title given by the user. */
void load_report_quoted(FILE *f, const char *s);

/* Draws staleness p50 and p99 against the rate, a pair of curves per
 * cluster size, into `path` (SVG if it ends in .svg, else PNG) with
 * gnuplot; false if gnuplot failed or is not there. */
bool load_report_plot(const char *path, const char *title,
                      const load_row *rows, size_t n);

#endif /* SB_TOOLS_LOAD_REPORT_H */
