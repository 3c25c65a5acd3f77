/* The control socket (see control.h). */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "commands.h"
#include "json.h"
#include "outbuf.h"

typedef struct client {
    int fd;
    int slot;                  /* in this turn's poll set */
    char *in;                  /* a request line being read */
    size_t in_used, in_size;
    outbuf out;                /* replies and events waiting */
    bool monitor;              /* streaming events */
    bool done;                 /* close once out is written */
    bool eof;                  /* a monitor client sends no more */
    uint64_t heard_ms;         /* mono_ms() of its accept or its last
                                  bytes read */
} client;

/* How long the listening socket goes unwatched after accept() found no
 * descriptor or memory for a client (see control_accept()). */
#define CONTROL_ACCEPT_PAUSE_MS 250

struct control {
    agent *a;
    int fd;
    int slot;
    uint64_t accept_at;        /* mono_ms(): not watched before; 0: now */
    bool accept_starved;       /* logged; reset by the next accept */
    bool refusing;             /* "too many clients" logged; reset by
                                  the next client taken */
    char *path;
    client clients[CONTROL_MAX_CLIENTS];
    size_t n;
};

/* Whether path names nothing, or a stale socket of ours, which is
 * removed; prints why not. */
static bool control_path_free(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return true;
        fprintf(stderr, "scuttlebutt agent: --control %s: %s\n", path,
                strerror(errno));
        return false;
    }
    if (!S_ISSOCK(st.st_mode) || st.st_uid != getuid()) {
        fprintf(stderr, "scuttlebutt agent: --control %s: exists and is not "
                "a socket of this user's\n", path);
        return false;
    }
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, path); /* the caller checked its length */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (rc == 0) {
        fprintf(stderr, "scuttlebutt agent: --control %s: another agent "
                "listens there\n", path);
        return false;
    }
    if (err != ECONNREFUSED) {
        fprintf(stderr, "scuttlebutt agent: --control %s: %s\n", path,
                strerror(err));
        return false;
    }
    unlink(path); /* stale: its agent is gone */
    return true;
}

bool control_open(agent *a, const char *path, control **out)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "scuttlebutt agent: --control %s: longer than a "
                "socket path may be (%zu bytes)\n", path,
                sizeof(sun.sun_path) - 1);
        return false;
    }
    if (!control_path_free(path))
        return false;
    strcpy(sun.sun_path, path);
    control *c = calloc(1, sizeof(*c));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177); /* the socket is born 0600 */
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (!c || rc < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0 ||
        !(c->path = strdup(path))) {
        fprintf(stderr, "scuttlebutt agent: --control %s: %s\n", path,
                strerror(c ? errno : ENOMEM));
        if (rc == 0)
            unlink(path);
        if (fd >= 0)
            close(fd);
        free(c);
        return false;
    }
    c->a = a;
    c->fd = fd;
    *out = c;
    return true;
}

size_t control_clients(const control *c)
{
    return c ? c->n : 0;
}

static void control_drop(control *c, size_t i)
{
    client *cl = &c->clients[i];
    close(cl->fd);
    free(cl->in);
    outbuf_free(&cl->out);
    c->clients[i] = c->clients[--c->n];
}

static bool control_reply(client *cl, json_t *reply)
{
    size_t len;
    char *line = json_line(reply, &len);
    bool ok = line && outbuf_append(&cl->out, line, len, CONTROL_MAX_PENDING);
    free(line);
    return ok;
}

static bool control_request(control *c, client *cl, const char *buf,
                            size_t len)
{
    if (cl->monitor)
        return true; /* a monitor client's input is not read */
    json_error_t jerr;
    json_t *req = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    json_t *reply;
    if (!req) {
        char msg[256];
        if (strstr(jerr.text, "\\u0000")) /* jansson's own words */
            snprintf(msg, sizeof(msg), "not JSON we take: a string holds "
                     "\\u0000; give such bytes as key_b64 or value_b64");
        else
            snprintf(msg, sizeof(msg), "not JSON: %s", jerr.text);
        reply = commands_error(msg);
    } else if (!cmd || strcmp(cmd, "monitor") != 0) {
        reply = commands_run_json(c->a, req);
    } else if (json_object_size(req) != 1) {
        reply = commands_error("usage: {\"cmd\":\"monitor\"}");
    } else {
        cl->monitor = true;
        reply = json_pack("{sb}", "ok", 1);
    }
    json_decref(req);
    return control_reply(cl, reply);
}

/* Reads what a client sent and answers every complete line; false when
 * the client is to be dropped. */
static bool control_read(control *c, client *cl)
{
    for (;;) {
        if (cl->in_size - cl->in_used < 4096) {
            size_t size = cl->in_size ? 2 * cl->in_size : 8192;
            if (size > CONTROL_MAX_REQUEST + 4096)
                size = CONTROL_MAX_REQUEST + 4096;
            char *in = realloc(cl->in, size);
            if (!in)
                return false;
            cl->in = in;
            cl->in_size = size;
        }
        ssize_t got = read(cl->fd, cl->in + cl->in_used,
                           cl->in_size - cl->in_used);
        if (got < 0)
            return errno == EAGAIN || errno == EINTR;
        cl->heard_ms = mono_ms();
        if (got == 0) { /* the client is done sending: answer, then close */
            /* A last request without its newline is still a request, as
             * on stdin: answered before the close. It may be "monitor",
             * so it runs before the client's fate is decided. */
            size_t last = cl->in_used;
            cl->in_used = 0;
            if (last && !control_request(c, cl, cl->in, last))
                return false;
            if (cl->monitor)
                cl->eof = true; /* but it may still read events */
            else
                cl->done = true;
            return true;
        }
        size_t start = 0, end = cl->in_used + (size_t)got;
        for (size_t i = cl->in_used; i < end; i++) {
            if (cl->in[i] != '\n')
                continue;
            if (i > start && !control_request(c, cl, cl->in + start, i - start))
                return false;
            start = i + 1;
        }
        memmove(cl->in, cl->in + start, end - start);
        cl->in_used = end - start;
        if (cl->in_used > CONTROL_MAX_REQUEST) {
            control_reply(cl, commands_error("request line too long"));
            cl->done = true;
            cl->in_used = 0;
            return true;
        }
        if (cl->monitor)
            cl->in_used = 0;
    }
}

/* Writes what waits for a client; false when the client is gone. */
static bool control_write(client *cl)
{
    while (outbuf_pending(&cl->out)) {
        ssize_t w = send(cl->fd, cl->out.buf + cl->out.off,
                         outbuf_pending(&cl->out), MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR;
        cl->out.off += (size_t)w;
    }
    return true;
}

/* Whether a client has been idle for CONTROL_IDLE_MS: not a monitor,
 * nothing waiting for it, no request begun, and nothing come in since
 * the last poll() either. */
static bool control_idle(const client *cl, uint64_t now)
{
    char byte;
    return !cl->monitor && !outbuf_pending(&cl->out) && !cl->in_used &&
           now - cl->heard_ms >= CONTROL_IDLE_MS &&
           recv(cl->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Drops the client idle longest (control_idle()); false if none is. */
static bool control_make_room(control *c)
{
    uint64_t now = mono_ms();
    size_t idlest = c->n;
    for (size_t i = 0; i < c->n; i++) {
        const client *cl = &c->clients[i];
        if ((idlest == c->n || cl->heard_ms < c->clients[idlest].heard_ms) &&
            control_idle(cl, now))
            idlest = i;
    }
    if (idlest == c->n)
        return false;
    agent_log(c->a, SB_LOG_INFO, "control: %d clients; one idle for %llu s "
              "dropped to take a new one", CONTROL_MAX_CLIENTS,
              (unsigned long long)((now - c->clients[idlest].heard_ms) / 1000));
    control_drop(c, idlest);
    return true;
}

static void control_accept(control *c)
{
    for (;;) {
        int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or worse: the connection
             * stays queued and the socket readable, so watching it would
             * wake poll() at once, forever. It rests a while instead
             * (gossip and the clients already in go on), then accept()
             * is tried again: queued clients wait for a descriptor to
             * free up. Simpler than a spare descriptor kept to accept
             * and refuse with, which a handler's pipe could take in the
             * moment it is closed and not be reopened. */
            if (!c->accept_starved)
                agent_log(c->a, SB_LOG_WARN, "control: cannot accept a "
                          "client (%s); retrying every %d ms",
                          strerror(errno), CONTROL_ACCEPT_PAUSE_MS);
            c->accept_starved = true;
            c->accept_at = mono_ms() + CONTROL_ACCEPT_PAUSE_MS;
            return;
        }
        if (fd < 0)
            return;
        c->accept_starved = false;
        if (c->n == CONTROL_MAX_CLIENTS && !control_make_room(c)) {
            static const char busy[] =
                "{\"ok\":false,\"error\":\"too many control clients\"}\n";
            ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
            (void)w;
            close(fd);
            if (!c->refusing)
                agent_log(c->a, SB_LOG_WARN, "control: %d clients, none "
                          "idle for %d s; refusing more until one goes",
                          CONTROL_MAX_CLIENTS, CONTROL_IDLE_MS / 1000);
            c->refusing = true;
            continue;
        }
        c->refusing = false;
        c->clients[c->n++] =
            (client){ .fd = fd, .slot = -1, .heard_ms = mono_ms() };
    }
}

void control_add(control *c, loop *l)
{
    if (!c)
        return;
    c->slot = -1;
    if (c->accept_at && mono_ms() < c->accept_at)
        loop_wake_at(l, c->accept_at);
    else
        c->slot = loop_add(l, c->fd, POLLIN);
    for (size_t i = 0; i < c->n; i++) {
        client *cl = &c->clients[i];
        short ev = cl->done || cl->eof ? 0 : POLLIN;
        if (outbuf_pending(&cl->out))
            ev |= POLLOUT;
        cl->slot = loop_add(l, cl->fd, ev);
    }
}

void control_process(control *c, const loop *l)
{
    if (!c)
        return;
    for (size_t i = c->n; i-- > 0;) {
        client *cl = &c->clients[i];
        short rev = loop_revents(l, cl->slot);
        bool ok = !(rev & (POLLERR | POLLNVAL));
        if (ok && (rev & (POLLIN | POLLHUP)) && !cl->done && !cl->eof)
            ok = control_read(c, cl);
        if (ok)
            ok = control_write(cl);
        if (!ok || (cl->done && !outbuf_pending(&cl->out)) ||
            ((rev & POLLHUP) && (cl->done || cl->eof)))
            control_drop(c, i);
    }
    if (loop_revents(l, c->slot) & POLLIN)
        control_accept(c);
}

void control_publish(control *c, const char *line, size_t len)
{
    if (!c)
        return;
    for (size_t i = c->n; i-- > 0;) {
        client *cl = &c->clients[i];
        if (!cl->monitor)
            continue;
        if (!outbuf_append(&cl->out, line, len, CONTROL_MAX_PENDING)) {
            agent_log(c->a, SB_LOG_WARN, "control: a monitor client read "
                      "too slowly (%d bytes waiting); disconnected",
                      CONTROL_MAX_PENDING);
            control_drop(c, i);
        } else if (!control_write(cl)) {
            control_drop(c, i);
        }
    }
}

void control_close(control *c)
{
    if (!c)
        return;
    while (c->n)
        control_drop(c, c->n - 1);
    close(c->fd);
    unlink(c->path);
    free(c->path);
    free(c);
}
