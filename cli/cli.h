/* What the subcommands of the `scuttlebutt` tool share. */
#ifndef SB_CLI_H
#define SB_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "scuttlebutt.h"

int agent_main(int argc, char **argv);
int eval_main(int argc, char **argv);

/* Prints "scuttlebutt: msg" (if any) and the usage to stderr; returns 2,
 * the exit status of a usage error. */
int usage_error(const char *usage, const char *msg);

/* Strict number parsing: the whole string, within [min, max]. */
bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
bool parse_double(const char *s, double *out);
/* A wire format's name: "scuttlebutt" or "reference". */
bool parse_wire(const char *s, sb_wire *out);

#endif
