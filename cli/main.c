/*
 * scuttlebutt: the command-line tool.
 *   scuttlebutt agent ...   run one cluster member (agent.c)
 *   scuttlebutt eval ...    start a local cluster and measure it (eval.c)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scuttlebutt.h"

static const char usage[] =
"usage: scuttlebutt agent --bind HOST:PORT [options]   run a cluster member\n"
"       scuttlebutt eval [options]                     measure a local cluster\n"
"       scuttlebutt --version\n"
"`scuttlebutt agent --help` and `scuttlebutt eval --help` tell more.\n";

int usage_error(const char *text, const char *msg)
{
    if (msg)
        fprintf(stderr, "scuttlebutt: %s\n", msg);
    fputs(text, stderr);
    return 2;
}

bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || v != v)
        return false;
    *out = v;
    return true;
}

bool parse_wire(const char *s, sb_wire *out)
{
    if (s && strcmp(s, "scuttlebutt") == 0)
        *out = SB_WIRE_SCUTTLEBUTT;
    else if (s && strcmp(s, "reference") == 0)
        *out = SB_WIRE_REFERENCE;
    else
        return false;
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error(usage, "a subcommand is required");
    if (strcmp(argv[1], "agent") == 0)
        return agent_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "eval") == 0)
        return eval_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "--version") == 0) {
        printf("scuttlebutt %s (protocol %d)\n", SB_VERSION_STRING,
               SB_PROTOCOL_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    return usage_error(usage, "unknown subcommand");
}
