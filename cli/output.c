/* The agent's stdout through a bounded buffer (see output.h). */
#define _GNU_SOURCE
#include "output.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

/* Writes what stdout takes without waiting: a poll() first, then at most
 * PIPE_BUF bytes, which a pipe that polls writable takes whole (stdout is
 * not made non-blocking: its file description may be shared with other
 * processes, a terminal or the shell's pipe). */
static void output_write(struct agent *a, output *o, int wait_ms)
{
    while (!o->closed && outbuf_pending(&o->out)) {
        struct pollfd p = { .fd = STDOUT_FILENO, .events = POLLOUT };
        int r = poll(&p, 1, wait_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || !(p.revents & (POLLOUT | POLLERR | POLLHUP)))
            return;
        size_t n = outbuf_pending(&o->out);
        ssize_t w = write(STDOUT_FILENO, o->out.buf + o->out.off,
                          n < PIPE_BUF ? n : PIPE_BUF);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) { /* EPIPE (the reader is gone), EIO, ... */
            agent_log(a, SB_LOG_WARN, "stdout: %s: no more events or "
                      "answers go there (the agent runs on)",
                      w < 0 ? strerror(errno) : "nothing written");
            o->closed = true;
            outbuf_free(&o->out);
            return;
        }
        o->out.off += (size_t)w;
    }
}

void output_line(struct agent *a, output *o, const char *line, size_t len)
{
    if (o->closed)
        return;
    if (!outbuf_append(&o->out, line, len, OUTPUT_MAX_PENDING)) {
        if (!o->dropping)
            agent_log(a, SB_LOG_WARN, "stdout: its reader does not keep up: "
                      "lines dropped until it does (%llu so far)",
                      (unsigned long long)o->dropped + 1);
        o->dropping = true;
        o->dropped++;
        return;
    }
    o->dropping = false;
    output_write(a, o, 0);
}

void output_add(output *o, loop *l)
{
    o->slot = !o->closed && outbuf_pending(&o->out)
                  ? loop_add(l, STDOUT_FILENO, POLLOUT)
                  : -1;
}

void output_process(struct agent *a, output *o, const loop *l)
{
    if (loop_revents(l, o->slot))
        output_write(a, o, 0);
}

void output_drain(struct agent *a, output *o, int ms)
{
    uint64_t end = mono_ms() + (uint64_t)ms;
    for (uint64_t now = mono_ms(); !o->closed && outbuf_pending(&o->out) &&
                                   now < end;
         now = mono_ms())
        output_write(a, o, (int)(end - now));
}

void output_free(output *o)
{
    outbuf_free(&o->out);
}
