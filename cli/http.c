/* The HTTP server (see http.h). */
#define _GNU_SOURCE
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "args.h"
#include "json.h"
#include "members.h"
#include "metrics.h"
#include "outbuf.h"
#include "status_html.h"

typedef struct stream {
    http *h;
    struct MHD_Connection *conn;
    outbuf out;                /* what waits to be sent */
    bool suspended;
    bool ended;
    struct stream *next;
} stream;

struct http {
    agent *a;
    struct MHD_Daemon *d;
    int slot;
    stream *streams;
    size_t nstreams;
    uint64_t keepalive_at;
    uint64_t check_at;         /* when suspended streams are next looked
                                  at for a client gone */
};

static void http_log(void *cls, const char *fmt, va_list ap)
{
    http *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    /* a client gone mid-answer is news to no one; errors that matter
     * (cannot listen) are reported by http_open() */
    agent_log(h->a, SB_LOG_INFO, "http: %s", msg);
}

/* ---- event streams ------------------------------------------------------- */

static void http_stream_wake(stream *s)
{
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

static void http_stream_send(http *h, stream *s, const char *text,
                             size_t len)
{
    if (s->ended)
        return;
    if (!outbuf_append(&s->out, text, len, HTTP_MAX_PENDING)) {
        agent_log(h->a, SB_LOG_WARN, "http: an event stream fell %d bytes "
                  "behind; ended", HTTP_MAX_PENDING);
        s->ended = true;
    }
    http_stream_wake(s);
}

static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf,
                                size_t max)
{
    (void)pos;
    stream *s = cls;
    size_t n = outbuf_pending(&s->out) < max ? outbuf_pending(&s->out) : max;
    if (n) {
        memcpy(buf, s->out.buf + s->out.off, n);
        s->out.off += n;
        return (ssize_t)n;
    }
    if (s->ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    s->suspended = true;
    MHD_suspend_connection(s->conn);
    return 0;
}

static void http_stream_free(void *cls)
{
    stream *s = cls;
    http *h = s->h;
    for (stream **p = &h->streams; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            h->nstreams--;
            break;
        }
    outbuf_free(&s->out);
    free(s);
}

void http_publish(http *h, const agent_event *ev)
{
    if (!h)
        return;
    char head[32];
    int n = snprintf(head, sizeof(head), "event: %s\ndata: ",
                     agent_event_name(ev->ev->type));
    for (stream *s = h->streams; s; s = s->next) {
        http_stream_send(h, s, head, (size_t)n);
        /* the line ends with its newline; one more ends the event */
        http_stream_send(h, s, ev->line, ev->line_len);
        http_stream_send(h, s, "\n", 1);
    }
}

/* True if the client of s closed its end of the connection or reset it.
 * libmicrohttpd does not poll a suspended connection, so without a look
 * a client gone would hold its stream until a keep-alive failed to go,
 * the second one after it left (30 s). A client that only shut its
 * writing half is taken for gone too: event streams are read to the
 * end, never half closed. */
static bool http_stream_gone(const stream *s)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
        s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    char c;
    ssize_t got = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return got == 0 || (got < 0 && errno != EAGAIN &&
                        errno != EWOULDBLOCK && errno != EINTR);
}

size_t http_streams(const http *h)
{
    return h ? h->nstreams : 0;
}

/* ---- answers ------------------------------------------------------------- */

static enum MHD_Result http_send(struct MHD_Connection *conn, unsigned code,
                                 const char *type, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(
        len, body, free);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result http_json(struct MHD_Connection *conn, unsigned code,
                                 json_t *body)
{
    size_t len;
    char *text = json_line(body, &len);
    if (!text)
        return MHD_NO;
    return http_send(conn, code, "application/json", text, len);
}

static enum MHD_Result http_error(struct MHD_Connection *conn, unsigned code,
                                  const char *msg)
{
    return http_json(conn, code, json_pack("{ss}", "error", msg));
}

/* Whether addr is a member's address exactly (no name is resolved for
 * an HTTP client). */
static bool http_is_member(http *h, const char *addr)
{
    sb_member *m;
    size_t n;
    bool found = false;
    if (sb_node_members(h->a->node, &m, &n) != SB_OK)
        return false;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(m[i].addr, addr) == 0;
    sb_free(m);
    return found;
}

/* /v1/kv/PEER and /v1/kv/PEER/KEY; path is the len bytes after
 * "/v1/kv/", decoded (http_unescape()), so the key may hold any byte. */
static enum MHD_Result http_kv(http *h, struct MHD_Connection *conn,
                               const char *path, size_t len)
{
    char peer[128];
    const char *slash = memchr(path, '/', len);
    size_t plen = slash ? (size_t)(slash - path) : len;
    /* no member's address holds a NUL: one would cut the name short */
    if (plen == 0 || plen >= sizeof(peer) || memchr(path, '\0', plen))
        return http_error(conn, MHD_HTTP_NOT_FOUND, "no such member");
    memcpy(peer, path, plen);
    peer[plen] = '\0';
    if (!http_is_member(h, peer))
        return http_error(conn, MHD_HTTP_NOT_FOUND, "no such member");
    json_t *body = json_pack("{ss}", "peer", peer);
    if (slash) {
        const char *key = slash + 1;
        size_t key_len = len - plen - 1;
        char *value;
        size_t value_len;
        int rc = sb_node_get(h->a->node, peer, key, key_len, &value,
                             &value_len);
        if (rc != SB_OK) {
            /* a key no node can hold (empty, over 255 bytes) is the
             * request's fault; one not there, or deleted, is not found */
            unsigned code = MHD_HTTP_INTERNAL_SERVER_ERROR;
            if (rc == SB_ENOTFOUND)
                code = MHD_HTTP_NOT_FOUND;
            else if (rc == SB_EINVAL)
                code = MHD_HTTP_BAD_REQUEST;
            json_decref(body);
            return http_error(conn, code, sb_strerror(rc));
        }
        json_set_bytes(body, "key", key, key_len);
        json_set_bytes(body, "value", value, value_len);
        sb_free(value);
        return http_json(conn, MHD_HTTP_OK, body);
    }
    sb_kv *kv;
    size_t n;
    if (sb_node_keys(h->a->node, peer, &kv, &n) != SB_OK) {
        json_decref(body);
        return http_error(conn, MHD_HTTP_NOT_FOUND, "no such member");
    }
    json_t *keys = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_set_bytes(o, "key", kv[i].key, kv[i].key_len);
        json_set_bytes(o, "value", kv[i].value, kv[i].value_len);
        json_array_append_new(keys, o);
    }
    sb_free(kv);
    json_object_set_new(body, "keys", keys);
    return http_json(conn, MHD_HTTP_OK, body);
}

static ssize_t http_no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls, (void)pos, (void)buf, (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

/* Queues r, the answer to /v1/events (its headers added), and lets it
 * go. */
static enum MHD_Result http_queue_events(struct MHD_Connection *conn,
                                         struct MHD_Response *r)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* HEAD /v1/events: the status and headers a GET would have, no body and
 * no stream. The stream's own response will not do: for a HEAD,
 * libmicrohttpd 0.9.75 still ends its chunked encoding, sending
 * "0\r\n\r\n" where nothing may follow the headers. An empty buffer
 * would be answered "Content-Length: 0", which a HEAD may only say if
 * the GET's body were empty; so the size stays unknown and chunked
 * encoding is forbidden: no length, and the connection closes after
 * the headers. */
static enum MHD_Result http_events_head(struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 64, http_no_body, NULL, NULL);
    if (!r)
        return MHD_NO;
    MHD_set_response_options(r, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT,
                             MHD_RO_END);
    return http_queue_events(conn, r);
}

static enum MHD_Result http_events(http *h, struct MHD_Connection *conn,
                                   bool head)
{
    if (head) /* no stream: not refused when all places are taken */
        return http_events_head(conn);
    if (h->nstreams >= HTTP_MAX_STREAMS)
        return http_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "too many event streams");
    stream *s = calloc(1, sizeof(*s));
    static const char hello[] = ": the agent's events\nretry: 1000\n\n";
    if (!s || !outbuf_append(&s->out, hello, sizeof(hello) - 1,
                             HTTP_MAX_PENDING)) {
        free(s);
        return MHD_NO;
    }
    s->h = h;
    s->conn = conn;
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 4096, http_stream_read, s, http_stream_free);
    if (!r) {
        outbuf_free(&s->out);
        free(s);
        return MHD_NO;
    }
    s->next = h->streams;
    h->streams = s;
    h->nstreams++;
    return http_queue_events(conn, r);
}

/* libmicrohttpd decodes the path's %HH escapes in place and hands the
 * handler a C string, so a %00 ended it early: /v1/kv/PEER/k%00zz was
 * read as the key "k". Keys are bytes, NUL included ("a\0b" and "a" are
 * two keys, docs/api.md section 4), and /v1/kv/PEER lists one that is
 * not text under "key_b64", so such a key can be asked for by its
 * escapes: libmicrohttpd is told to leave the path as it came and
 * http_unescape() decodes it, keeping its length. (The query string is
 * left undecoded too; no answer reads it.) */
static size_t http_unescape_none(void *cls, struct MHD_Connection *conn,
                                 char *s)
{
    (void)cls, (void)conn;
    return strlen(s);
}

static int http_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* in with its %HH escapes decoded into out (room for strlen(in) + 1
 * bytes; a NUL after them); the decoded length. A '%' without two hex
 * digits after it stays as it is, as libmicrohttpd's own decoder has
 * it. */
static size_t http_unescape(const char *in, char *out)
{
    size_t n = 0;
    while (*in) {
        int hi, lo;
        if (in[0] == '%' && (hi = http_hex(in[1])) >= 0 &&
            (lo = http_hex(in[2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            in += 3;
        } else {
            out[n++] = *in++;
        }
    }
    out[n] = '\0';
    return n;
}

/* Whether the len bytes of path are name exactly. */
static bool http_path_is(const char *path, size_t len, const char *name)
{
    return len == strlen(name) && memcmp(path, name, len) == 0;
}

/* Every answer but 405, for the decoded path. A HEAD gets what a GET
 * would, its body dropped by libmicrohttpd, but for /v1/events (see
 * http_events_head()). */
static enum MHD_Result http_route(http *h, struct MHD_Connection *conn,
                                  bool head, const char *path, size_t len)
{
    if (http_path_is(path, len, "/")) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            status_html_len, (void *)status_html, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "text/html; charset=utf-8");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; script-src "
                                "'unsafe-inline'; style-src 'unsafe-inline'");
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (http_path_is(path, len, "/metrics")) {
        size_t n;
        char *text = metrics_render(h->a, &n);
        if (!text)
            return http_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "cannot read the node's counters");
        return http_send(conn, MHD_HTTP_OK,
                         "text/plain; version=0.0.4; charset=utf-8", text,
                         n);
    }
    if (http_path_is(path, len, "/v1/members")) {
        json_t *list = members_json(h->a, -1);
        if (!list)
            return http_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "cannot list the members");
        return http_json(conn, MHD_HTTP_OK, list);
    }
    if (len >= 7 && memcmp(path, "/v1/kv/", 7) == 0)
        return http_kv(h, conn, path + 7, len - 7);
    if (http_path_is(path, len, "/v1/events"))
        return http_events(h, conn, head);
    return http_error(conn, MHD_HTTP_NOT_FOUND,
                      "not found (/, /metrics, /v1/members, /v1/kv/PEER, "
                      "/v1/kv/PEER/KEY, /v1/events)");
}

/* Whether the connection came in on a loopback address (127.0.0.0/8,
 * ::1, or 127.x.y.z mapped into IPv6): a wildcard bind takes those too. */
static bool http_via_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (!info || getsockname(info->connect_fd, (struct sockaddr *)&ss,
                             &len) < 0)
        return true; /* unknown: checked as if */
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) ==
               127;
    const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    return ss.ss_family == AF_INET6 &&
           (IN6_IS_ADDR_LOOPBACK(a) ||
            (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127));
}

/* Whether a request may be answered for its Host header. Through a
 * loopback address only this host's programs connect, and they name it
 * by number or as localhost: a request naming it otherwise comes through
 * a browser that a web page pointed there by DNS rebinding (its name
 * made to resolve to 127.0.0.1), and would read the cluster's members
 * and values into that page. No Host (HTTP/1.0) is taken. */
static bool http_host_ok(struct MHD_Connection *conn)
{
    const char *host =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (!host || !http_via_loopback(conn))
        return true;
    /* HOST[:PORT] as parse_hostport() reads it (a Host without its port
     * is read with port 0) */
    char spec[300], name[256];
    bool v6;
    uint32_t port;
    snprintf(spec, sizeof(spec), "%s:0", host);
    if (strlen(host) + 3 > sizeof(spec) ||
        (!parse_hostport(host, 0, name, &v6, &port) &&
         !parse_hostport(spec, 0, name, &v6, &port)))
        return false;
    unsigned char bin[sizeof(struct in6_addr)];
    return strcasecmp(name, "localhost") == 0 ||
           strcasecmp(name, "localhost.") == 0 ||
           inet_pton(v6 ? AF_INET6 : AF_INET, name, bin) == 1;
}

static enum MHD_Result http_answer(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version,
                                   const char *upload_data,
                                   size_t *upload_size, void **req_cls)
{
    (void)version, (void)upload_data;
    http *h = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        enum MHD_Result ret =
            MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        return ret;
    }
    /* The first call comes with the headers alone. An answer queued
     * then is "early" to libmicrohttpd (0.9.75): it closes the
     * connection after it, so there was no keep-alive, and a request
     * pipelined behind went unanswered. So a GET or HEAD is answered on
     * a later call, once its body, if any, has been read (and dropped).
     * (Other methods are refused at once: the connection closes, and
     * their body is not read.) */
    if (!*req_cls) {
        *req_cls = h;
        return MHD_YES;
    }
    if (*upload_size) { /* a body: not read */
        *upload_size = 0;
        return MHD_YES;
    }
    if (!http_host_ok(conn))
        return http_error(conn, MHD_HTTP_FORBIDDEN,
                          "reached on a loopback address, this server "
                          "answers requests for an address or localhost "
                          "only");
    char *path = malloc(strlen(url) + 1);
    if (!path)
        return MHD_NO;
    size_t len = http_unescape(url, path);
    enum MHD_Result ret =
        http_route(h, conn, strcmp(method, "HEAD") == 0, path, len);
    free(path);
    return ret;
}

/* ---- the server ---------------------------------------------------------- */

/* "PORT", "HOST:PORT" or "[V6]:PORT" into an address; NULL, or why not. */
static const char *http_resolve(const char *spec, struct sockaddr_storage *ss)
{
    char host[256] = "127.0.0.1", port[6];
    bool v6;
    uint32_t port_number;
    if (!strchr(spec, ':') ? !parse_u32(spec, 0, 65535, &port_number)
                           : !parse_hostport(spec, 0, host, &v6, &port_number))
        return "expected PORT, HOST:PORT or [V6]:PORT, the port 0 to 65535";
    snprintf(port, sizeof(port), "%u", (unsigned)port_number);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV }, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return "cannot resolve the host";
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return NULL;
}

int http_open(agent *a, const char *spec, http **out)
{
    struct sockaddr_storage ss = { 0 };
    const char *why = http_resolve(spec, &ss);
    if (why) {
        fprintf(stderr, "scuttlebutt agent: --http %s: %s\n", spec, why);
        return 2;
    }
    http *h = calloc(1, sizeof(*h));
    if (!h)
        return 1;
    h->a = a;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, http_answer, h, MHD_OPTION_EXTERNAL_LOGGER,
        http_log, h, MHD_OPTION_UNESCAPE_CALLBACK, http_unescape_none, NULL,
        MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_END);
    if (!h->d) {
        fprintf(stderr, "scuttlebutt agent: --http %s: cannot listen "
                "there (in use, or not an address of this host)\n", spec);
        free(h);
        return 1;
    }
    const union MHD_DaemonInfo *port =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host,
                  sizeof(host));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
                  sizeof(host));
    snprintf(a->http_addr, sizeof(a->http_addr),
             ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
             port ? (unsigned)port->port : 0u);
    h->keepalive_at = mono_ms() + HTTP_KEEPALIVE_MS;
    h->check_at = mono_ms() + HTTP_CHECK_MS;
    *out = h;
    return 0;
}

void http_add(http *h, loop *l)
{
    if (!h)
        return;
    const union MHD_DaemonInfo *ep =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    h->slot = loop_add(l, ep ? ep->epoll_fd : -1, POLLIN);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->d, &ms) == MHD_YES)
        loop_wake_at(l, mono_ms() + ms);
    if (h->streams) {
        loop_wake_at(l, h->keepalive_at);
        loop_wake_at(l, h->check_at);
    }
}

void http_process(http *h, const loop *l)
{
    (void)l;
    if (!h)
        return;
    uint64_t now = mono_ms();
    if (now >= h->keepalive_at) {
        static const char ping[] = ": keep-alive\n\n";
        for (stream *s = h->streams; s; s = s->next)
            http_stream_send(h, s, ping, sizeof(ping) - 1);
        h->keepalive_at = now + HTTP_KEEPALIVE_MS;
    }
    if (now >= h->check_at) {
        for (stream *s = h->streams; s; s = s->next)
            if (s->suspended && !s->ended && http_stream_gone(s)) {
                s->ended = true;
                http_stream_wake(s);
            }
        h->check_at = now + HTTP_CHECK_MS;
    }
    MHD_run(h->d); /* never blocks; cheap when nothing is ready */
}

void http_close(http *h)
{
    if (!h)
        return;
    for (stream *s = h->streams; s; s = s->next) {
        s->ended = true;
        http_stream_wake(s);
    }
    MHD_run(h->d); /* the resumed streams end */
    MHD_stop_daemon(h->d);
    free(h);
}
