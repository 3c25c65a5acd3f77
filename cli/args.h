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
/* "HOST:PORT" or "[V6]:PORT", as the library writes addresses (an IPv6
 * address takes brackets, and nothing else does: in "2001:db8::1:7946"
 * the port is a guess; and no zone: "%eth0" cannot be advertised),
 * with a port from `least` to 65535: the host (without brackets, NUL
 * terminated, at most 255 bytes) into host[256], whether it was in
 * brackets into *v6, the port into *port. */
bool parse_hostport(const char *s, uint32_t least, char host[256], bool *v6,
                    uint32_t *port);
/* "error", "warn", "info" or "debug" into a log level. */
bool parse_log_level(const char *s, sb_log_level *out);

#endif
