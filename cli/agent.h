/*
 * The agent's state, shared by its parts: agent.c (options, the loop,
 * stdin and stdout), commands.c (what stdin and the control socket may
 * ask), members.c, control.c, handlers.c, http.c and metrics.c.
 */
#ifndef SB_CLI_AGENT_H
#define SB_CLI_AGENT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "output.h"
#include "scuttlebutt.h"

#define AGENT_MAX_LINE 65536
#define AGENT_MAX_SEEDS 64

typedef struct control control;
typedef struct handlers handlers;
typedef struct http http;

/* One event as the agent passes it to its parts: the node's event, the
 * moment, and the JSON line that stdout, `monitor` and /v1/events carry. */
typedef struct agent_event {
    const sb_event *ev;
    uint64_t time_ms;          /* since the agent's start */
    const char *line;          /* {"event":...}\n */
    size_t line_len;
} agent_event;

/* When this agent first saw a member in its current status. */
typedef struct agent_seen {
    char *addr;
    sb_status status;
    uint64_t since_ms;         /* monotonic */
} agent_seen;

typedef struct agent {
    sb_node *node;
    sb_config cfg;             /* as the node was created (for `info`) */
    const char *seeds[AGENT_MAX_SEEDS];
    uint64_t start_ms;         /* monotonic */
    uint64_t exit_at;          /* 0, or when to exit after leaving */

    output out;                /* stdout (output.c) */

    /* stdin */
    char line[AGENT_MAX_LINE + 1];
    size_t used;
    bool overlong;             /* discarding the rest of a long line */
    bool stdin_open;

    uint64_t events[5];        /* counted by sb_event_type */
    agent_seen *seen;          /* members.c */
    size_t nseen;

    /* the keyring as this agent set it; keys[0] seals */
    uint8_t keys[SB_MAX_KEYS][SB_KEY_SIZE];
    size_t nkeys;

    control *control;          /* NULL: --no-control */
    const char *control_path;
    handlers *handlers;
    uint32_t handler_timeout_ms;
    http *http;                /* NULL: no --http */
    char http_addr[80];
} agent;

/* "join", "leave", "update" or "delete". */
const char *agent_event_name(sb_event_type type);

/* Leaves (if not yet) and schedules the exit a few rounds later, or at
 * once when asked a second time. */
void agent_shut_down(agent *a);

/* A log line, "scuttlebutt: LEVEL: ...", on stderr if --log-level lets
 * it through. */
void agent_log(const agent *a, sb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
