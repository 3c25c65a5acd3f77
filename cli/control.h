/*
 * The agent's control socket: a Unix-domain stream socket, mode 0600,
 * taking JSON requests, one a line, each answered by one JSON line
 * (commands.h); after {"cmd":"monitor"} and its reply, the events as
 * stdout has them, until the client goes. It never blocks the agent: a
 * client that does not read its replies or events is disconnected once
 * CONTROL_MAX_PENDING bytes wait for it. At most CONTROL_MAX_CLIENTS
 * are connected at once; when that many are, a new one takes the place
 * of the one idle longest (not a monitor, nothing waiting for it, no
 * request begun, nothing read from it for CONTROL_IDLE_MS), or is
 * refused with an error reply.
 */
#ifndef SB_CLI_CONTROL_H
#define SB_CLI_CONTROL_H

#include <stddef.h>

#include "agent.h"
#include "loop.h"

#define CONTROL_MAX_CLIENTS 64
#define CONTROL_IDLE_MS 10000          /* a client idle this long may go */
#define CONTROL_MAX_REQUEST (1 << 20)  /* bytes in one request line */
#define CONTROL_MAX_PENDING (1 << 20)  /* bytes waiting for a client */

/* Listens on path: refused (a message on stderr, false) if path exists
 * and is not a stale socket of this user's, or if an agent listens
 * there. The socket is removed by control_close(). */
bool control_open(agent *a, const char *path, control **out);

void control_add(control *c, loop *l);
void control_process(control *c, const loop *l);

/* Sends one event line to every monitor client. */
void control_publish(control *c, const char *line, size_t len);

/* Clients connected now (0 for NULL). */
size_t control_clients(const control *c);

/* Disconnects every client, closes and removes the socket. NULL is
 * allowed. */
void control_close(control *c);

#endif
