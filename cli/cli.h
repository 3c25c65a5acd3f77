/* The subcommands of the `scuttlebutt` tool: their entry points, called
 * by main.c. (The argument parsing they share with main.c: args.h.) */
#ifndef SB_CLI_H
#define SB_CLI_H

#include <stdbool.h>

int agent_main(int argc, char **argv);
int eval_main(int argc, char **argv);

/* The subcommands that talk to a running agent (client.c): argv[0] is
 * one of them. */
bool client_is_command(const char *name);
int client_main(int argc, char **argv);

#endif
