/* The subcommands of the `scuttlebutt` tool: their entry points, called
 * by main.c. (The argument parsing they share with main.c: args.h.) */
#ifndef SB_CLI_H
#define SB_CLI_H

int agent_main(int argc, char **argv);
int eval_main(int argc, char **argv);

#endif
