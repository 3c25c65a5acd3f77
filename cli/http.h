/*
 * The agent's read-only HTTP server (--http ADDR), on libmicrohttpd:
 *   /             the status page (status.html, built into the binary)
 *   /metrics      metrics.h
 *   /v1/members   the members, as `members` has them
 *   /v1/kv/PEER   a member's keys; /v1/kv/PEER/KEY one of them
 *   /v1/events    the events as a server-sent event stream
 * GET and HEAD only; it never serves cluster keys.
 *
 * libmicrohttpd runs without a thread of its own: its epoll descriptor
 * is in the agent's poll set and MHD_run() is called from the agent's
 * loop, so the node is only ever used from that one thread, and every
 * answer is made from memory at once (sockets are non-blocking). An
 * event stream waits suspended until there is an event for it, or a
 * keep-alive comment every HTTP_KEEPALIVE_MS; one that falls more than
 * HTTP_MAX_PENDING bytes behind is ended (a browser reconnects), and
 * one whose client closed the connection is ended within
 * HTTP_CHECK_MS.
 */
#ifndef SB_CLI_HTTP_H
#define SB_CLI_HTTP_H

#include <stddef.h>

#include "agent.h"
#include "loop.h"

#define HTTP_MAX_CONNECTIONS 64
#define HTTP_MAX_STREAMS 32
#define HTTP_MAX_PENDING (1 << 20)
#define HTTP_KEEPALIVE_MS 15000
#define HTTP_CHECK_MS 1000

/* Listens on spec: "PORT" (on 127.0.0.1), "HOST:PORT" or "[V6]:PORT";
 * sets a->http_addr to the address it listens on. 0; or, after a
 * message on stderr, 2 for a spec that is not an address, 1 when it
 * cannot listen there. */
int http_open(agent *a, const char *spec, http **out);

void http_add(http *h, loop *l);
void http_process(http *h, const loop *l);

/* Sends one event to every /v1/events client. */
void http_publish(http *h, const agent_event *ev);

/* Clients of /v1/events now (0 for NULL). */
size_t http_streams(const http *h);

/* Ends every stream and stops the server. NULL is allowed. */
void http_close(http *h);

#endif
