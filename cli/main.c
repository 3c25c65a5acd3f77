/*
 * scuttlebutt: the command-line tool.
 *   scuttlebutt agent ...   run one cluster member (agent.c)
 *   scuttlebutt eval ...    start a local cluster and measure it (eval.c)
 *   scuttlebutt members|get|set|del|keys|join|leave|info|monitor ...
 *                           ask a running agent (client.c)
 */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "scuttlebutt.h"

static const char usage[] =
"usage: scuttlebutt agent --bind HOST:PORT [options]   run a cluster member\n"
"       scuttlebutt eval [options]                     measure a cluster\n"
"       scuttlebutt members [--status STATUS]          the members\n"
"       scuttlebutt get PEER KEY                       a member's key\n"
"       scuttlebutt set KEY VALUE                      publish a key\n"
"       scuttlebutt del KEY                            delete a key\n"
"       scuttlebutt keys install|use|remove HEX        the cluster keys\n"
"       scuttlebutt keys list\n"
"       scuttlebutt join HOST:PORT                     join a node's cluster\n"
"       scuttlebutt leave                              leave the cluster\n"
"       scuttlebutt info                               its config, counters\n"
"       scuttlebutt monitor                            stream the events\n"
"       scuttlebutt --version\n"
"The last nine ask a running agent through its control socket\n"
"([--control PATH | --agent HOST:PORT] [--json]).\n"
"`scuttlebutt SUBCOMMAND --help` tells more.\n";

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error(usage, "a subcommand is required");
    if (strcmp(argv[1], "agent") == 0)
        return agent_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "eval") == 0)
        return eval_main(argc - 1, argv + 1);
    if (client_is_command(argv[1]))
        return client_main(argc - 1, argv + 1);
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
