/*
 * The agent's stdout (its ready line, events and the answers to stdin):
 * lines wait in a bounded buffer and go out as stdout takes them, so that
 * a reader that stops reading never holds up the agent's gossip, control
 * socket or HTTP. A line that finds more than OUTPUT_MAX_PENDING waiting
 * is dropped, counted and logged.
 */
#ifndef SB_CLI_OUTPUT_H
#define SB_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "outbuf.h"

#define OUTPUT_MAX_PENDING (1u << 20)

typedef struct output {
    outbuf out;
    int slot;                  /* in the loop, while lines wait */
    uint64_t dropped;          /* lines dropped, all told */
    bool dropping;             /* since the last line that went */
    bool closed;               /* stdout is gone: nothing more goes */
} output;

struct agent;

/* Queues a line (with its newline) and writes what stdout takes now. */
void output_line(struct agent *a, output *o, const char *line, size_t len);

/* Watches stdout while lines wait; writes what it takes. A failed write
 * (the reader gone, a full disk) closes it for good, logged once. */
void output_add(output *o, loop *l);
void output_process(struct agent *a, output *o, const loop *l);

/* At exit: waits up to `ms` for stdout to take what waits. */
void output_drain(struct agent *a, output *o, int ms);

void output_free(output *o);

#endif
