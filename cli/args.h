/* Argument parsing shared by main.c and the subcommands (agent.c, eval.c):
 * strict number and wire-format parsers, and the usage error (exit 2). */
#ifndef SB_CLI_ARGS_H
#define SB_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "scuttlebutt.h"

/* Prints "scuttlebutt: msg" (if any) and the usage to stderr; returns 2,
 * the exit status of a usage error. */
int usage_error(const char *usage, const char *msg);

/* Strict number parsing: the whole string, within [min, max]. */
bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
bool parse_double(const char *s, double *out);
/* A wire format's name: "scuttlebutt" or "reference". */
bool parse_wire(const char *s, sb_wire *out);
/* "error", "warn", "info" or "debug" into a log level. */
bool parse_log_level(const char *s, sb_log_level *out);

#endif
