/*
 * The agent's poll() set, rebuilt every turn of its loop: each part of
 * the agent (the node, stdin, the control socket, handlers, HTTP) adds
 * its descriptors and its next deadline, then reads what poll() found.
 */
#ifndef SB_CLI_LOOP_H
#define SB_CLI_LOOP_H

#include <poll.h>
#include <stdint.h>

#define LOOP_MAX_FDS 256

typedef struct loop {
    struct pollfd fds[LOOP_MAX_FDS];
    int n;
    uint64_t deadline;       /* monotonic ms; UINT64_MAX: none */
} loop;

/* Empties the set for a new turn. */
void loop_reset(loop *l);

/* Adds fd with the events to wait for; returns its slot for
 * loop_revents(), or -1 when the set is full (fd is not watched this
 * turn). */
int loop_add(loop *l, int fd, short events);

/* What poll() reported for a slot (0 for -1). */
short loop_revents(const loop *l, int slot);

/* Makes the next poll() return by monotonic time at_ms. */
void loop_wake_at(loop *l, uint64_t at_ms);

/* The timeout for poll(): until the deadline, -1 without one. */
int loop_timeout(const loop *l);

/* The monotonic clock in milliseconds. */
uint64_t mono_ms(void);

#endif
