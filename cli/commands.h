/*
 * The agent's commands, the same on stdin (text lines: `get PEER KEY`)
 * and on the control socket (JSON lines: {"cmd":"get","peer":P,"key":K}):
 * each request gets one reply object, {"ok":true,...} or
 * {"ok":false,"error":"..."}. `agent --help` lists them.
 */
#ifndef SB_CLI_COMMANDS_H
#define SB_CLI_COMMANDS_H

#include "agent.h"
#include "json.h"

/* Runs one text line of stdin; NULL for a blank line (no reply). */
json_t *commands_run_line(agent *a, char *line);

/* Runs one JSON request of the control socket. */
json_t *commands_run_json(agent *a, const json_t *req);

/* The node's counters as `stats` and `info` report them; NULL if the
 * node cannot give them. */
json_t *commands_stats(agent *a);

/* Decodes exactly 64 hex characters into a key. */
bool commands_hex_key(const char *hex, size_t len, uint8_t key[SB_KEY_SIZE]);

/* {"ok":false,"error":msg} */
json_t *commands_error(const char *msg);

#endif
