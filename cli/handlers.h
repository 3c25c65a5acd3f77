/*
 * Event handlers (--event-handler [EVENTS=]COMMAND): each event of the
 * kinds a handler takes runs its COMMAND with /bin/sh -c, the event in
 * environment variables (SB_EVENT, SB_PEER, SB_STATUS, SB_KEY or, for a
 * key that is not text, SB_KEY_B64, SB_SELF, SB_TIME_MS), the value on
 * stdin, stdout on /dev/null, stderr logged. Values never pass through
 * the shell's words.
 *
 * Never in gossip's way: events wait in a queue of HANDLER_QUEUE per
 * handler (one that finds it full is dropped, counted and logged); one
 * process at a time per handler, in its own process group, watched by
 * the agent's poll loop; one still running after the timeout is killed
 * (SIGKILL to its group) and counted. Exit status and stderr (the first
 * HANDLER_MAX_STDERR bytes) are logged: warn for a failure, info for a
 * success.
 */
#ifndef SB_CLI_HANDLERS_H
#define SB_CLI_HANDLERS_H

#include <stdint.h>

#include "agent.h"
#include "json.h"
#include "loop.h"

#define HANDLER_QUEUE 256
#define HANDLER_MAX_STDERR 4096
#define HANDLER_MAX 16
#define HANDLER_TIMEOUT_MS 30000  /* default --handler-timeout */

/* Parses "[EVENTS=]COMMAND" (EVENTS: a comma list of join, leave,
 * update, delete); NULL, or why not. *events is a mask of
 * 1 << sb_event_type. */
const char *handlers_parse(const char *spec, unsigned *events,
                           const char **command);

/* The handlers of n specs (checked with handlers_parse()); NULL when out
 * of memory. */
handlers *handlers_new(agent *a, const char *const *specs, size_t n);

/* Queues an event for every handler that takes its kind. */
void handlers_publish(handlers *h, const agent_event *ev);

void handlers_add(handlers *h, loop *l);
/* Feeds stdin, reads stderr, reaps, kills what ran too long, starts
 * what waits. */
void handlers_process(handlers *h, const loop *l);

/* How many; and each one's counters. */
typedef struct handler_counters {
    const char *command;
    unsigned events;
    uint64_t runs, failures, timeouts, dropped;
    size_t queued;
} handler_counters;
size_t handlers_count(const handlers *h);
void handlers_get(const handlers *h, size_t i, handler_counters *out);

/* [{"events":[...],"command":...}] and [{"command":..,"runs":..,...}] */
json_t *handlers_config(const handlers *h);
json_t *handlers_counters(const handlers *h);

/* Kills what still runs, waits for it, frees. NULL is allowed. */
void handlers_free(handlers *h);

#endif
