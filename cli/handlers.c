/* Event handlers (see handlers.h). */
#define _GNU_SOURCE
#include "handlers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;


typedef struct queued {
    sb_event_type type;
    sb_status status;
    uint64_t time_ms;
    char *peer, *key, *value;  /* key and value may be NULL */
    size_t key_len, value_len;
} queued;

typedef struct handler {
    const char *command;
    unsigned events;
    queued q[HANDLER_QUEUE];   /* a ring */
    size_t head, count;
    bool dropping;             /* since the queue was last found full */

    pid_t pid;                 /* 0: none running */
    queued cur;
    int in_fd, err_fd;         /* -1 once closed */
    int in_slot, err_slot;
    size_t in_off;
    char err[HANDLER_MAX_STDERR];
    size_t err_len;
    bool err_cut;              /* more stderr than kept */
    uint64_t deadline;
    bool killed;

    uint64_t runs, failures, timeouts, dropped;
} handler;

struct handlers {
    agent *a;
    size_t n;
    handler h[];
};

const char *handlers_parse(const char *spec, unsigned *events,
                           const char **command)
{
    const char *eq = strchr(spec, '=');
    size_t head = eq ? strspn(spec, "abcdefghijklmnopqrstuvwxyz,") : 0;
    *events = 0;
    *command = spec;
    if (eq == spec)
        return "EVENTS is empty";
    if (!eq || spec + head != eq) { /* no EVENTS=: every event */
        *events = 0x1e;
    } else {
        for (const char *p = spec;; p++) {
            size_t len = strcspn(p, ",=");
            int k = SB_EVENT_JOIN;
            while (k <= SB_EVENT_DELETE &&
                   (strlen(agent_event_name(k)) != len ||
                    strncmp(p, agent_event_name(k), len) != 0))
                k++;
            if (k > SB_EVENT_DELETE)
                return "EVENTS: a comma list of join, leave, update, delete";
            *events |= 1u << k;
            p += len;
            if (*p == '=')
                break;
        }
        *command = eq + 1;
    }
    if (!**command)
        return "COMMAND is empty";
    return NULL;
}

handlers *handlers_new(agent *a, const char *const *specs, size_t n)
{
    handlers *hs = calloc(1, sizeof(*hs) + n * sizeof(handler));
    if (!hs)
        return NULL;
    hs->a = a;
    hs->n = n;
    for (size_t i = 0; i < n; i++) {
        handler *h = &hs->h[i];
        handlers_parse(specs[i], &h->events, &h->command);
        h->in_fd = h->err_fd = -1;
    }
    return hs;
}

static void handlers_clear(queued *q)
{
    free(q->peer);
    free(q->key);
    free(q->value);
    *q = (queued){ 0 };
}

static char *handlers_dup(const char *p, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, p, len);
        d[len] = '\0';
    }
    return d;
}

void handlers_publish(handlers *hs, const agent_event *ae)
{
    const sb_event *ev = ae->ev;
    for (size_t i = 0; hs && i < hs->n; i++) {
        handler *h = &hs->h[i];
        if (!(h->events & (1u << ev->type)))
            continue;
        if (h->count == HANDLER_QUEUE) {
            h->dropped++;
            if (!h->dropping)
                agent_log(hs->a, SB_LOG_WARN, "handler %zu (%s): queue full "
                          "(%d events), dropping events", i, h->command,
                          HANDLER_QUEUE);
            h->dropping = true;
            continue;
        }
        queued *q = &h->q[(h->head + h->count) % HANDLER_QUEUE];
        *q = (queued){ .type = ev->type, .status = ev->status,
                       .time_ms = ae->time_ms,
                       .peer = handlers_dup(ev->addr, strlen(ev->addr)) };
        if (ev->key)
            q->key = handlers_dup(ev->key, q->key_len = ev->key_len);
        if (ev->value)
            q->value = handlers_dup(ev->value, q->value_len = ev->value_len);
        if (!q->peer || (ev->key && !q->key) || (ev->value && !q->value)) {
            handlers_clear(q);
            h->dropped++;
            continue;
        }
        h->count++;
    }
}

/* The environment of a run: the agent's, without variables of the
 * names below, then those. */
static char **handlers_env(char **vars, size_t nvars)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + nvars + 1, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SB_", 3) != 0)
            env[k++] = environ[i];
    for (size_t i = 0; i < nvars; i++)
        env[k++] = vars[i];
    return env;
}

static bool handlers_spawn(handlers *hs, handler *h)
{
    queued *q = &h->cur;
    char *vars[6] = { NULL };
    size_t nv = 0;
    bool ok =
        asprintf(&vars[nv++], "SB_EVENT=%s", agent_event_name(q->type)) > 0 &&
        asprintf(&vars[nv++], "SB_PEER=%s", q->peer) > 0 &&
        asprintf(&vars[nv++], "SB_STATUS=%s", sb_status_name(q->status)) > 0 &&
        asprintf(&vars[nv++], "SB_SELF=%s", sb_node_addr(hs->a->node)) > 0 &&
        asprintf(&vars[nv++], "SB_TIME_MS=%llu",
                 (unsigned long long)q->time_ms) > 0;
    if (ok && q->key) {
        json_t *o = json_object();
        json_set_bytes(o, "key", q->key, q->key_len);
        const char *text = json_string_value(json_object_get(o, "key"));
        const char *b64 = json_string_value(json_object_get(o, "key_b64"));
        ok = text ? asprintf(&vars[nv++], "SB_KEY=%s", text) > 0
             : b64 ? asprintf(&vars[nv++], "SB_KEY_B64=%s", b64) > 0
                   : false;
        json_decref(o);
    }
    char **env = ok ? handlers_env(vars, nv) : NULL;
    int in[2] = { -1, -1 }, err[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    int rc = -1;
    if (env && pipe2(in, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0) {
        sigset_t none, def;
        sigemptyset(&none);
        sigemptyset(&def);
        sigaddset(&def, SIGPIPE);
        sigaddset(&def, SIGINT);
        sigaddset(&def, SIGTERM);
        sigaddset(&def, SIGCHLD);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &def);
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                 POSIX_SPAWN_SETSIGMASK |
                                 POSIX_SPAWN_SETSIGDEF);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        char *argv[] = { "/bin/sh", "-c", (char *)h->command, NULL };
        rc = posix_spawn(&h->pid, "/bin/sh", &fa, &attr, argv, env);
        if (rc != 0)
            errno = rc;
    }
    int saved = errno;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    for (size_t i = 0; i < nv; i++)
        free(vars[i]);
    if (in[0] >= 0)
        close(in[0]);
    if (err[1] >= 0)
        close(err[1]);
    if (rc != 0) {
        if (in[1] >= 0)
            close(in[1]);
        if (err[0] >= 0)
            close(err[0]);
        h->pid = 0;
        agent_log(hs->a, SB_LOG_WARN, "handler %zu (%s): cannot start: %s",
                  (size_t)(h - hs->h), h->command, strerror(saved));
        return false;
    }
    h->in_fd = in[1];
    h->err_fd = err[0];
    fcntl(h->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(h->err_fd, F_SETFL, O_NONBLOCK);
    h->in_off = 0;
    h->err_len = 0;
    h->err_cut = false;
    h->killed = false;
    h->deadline = mono_ms() + hs->a->handler_timeout_ms;
    if (!q->value_len) {
        close(h->in_fd);
        h->in_fd = -1;
    }
    return true;
}

/* Starts the next queued event of an idle handler. */
static void handlers_next(handlers *hs, handler *h)
{
    while (!h->pid && h->count) {
        h->cur = h->q[h->head];
        h->q[h->head] = (queued){ 0 };
        h->head = (h->head + 1) % HANDLER_QUEUE;
        h->count--;
        if (h->dropping) {
            agent_log(hs->a, SB_LOG_WARN, "handler %zu (%s): %llu events "
                      "dropped so far", (size_t)(h - hs->h), h->command,
                      (unsigned long long)h->dropped);
            h->dropping = false;
        }
        h->runs++;
        if (!handlers_spawn(hs, h)) {
            h->failures++;
            handlers_clear(&h->cur);
        }
    }
}

static void handlers_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void handlers_read_stderr(handler *h)
{
    char buf[4096];
    for (;;) {
        ssize_t got = read(h->err_fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0 || errno != EAGAIN)
                handlers_close(&h->err_fd);
            return;
        }
        size_t room = sizeof(h->err) - h->err_len;
        size_t take = (size_t)got < room ? (size_t)got : room;
        memcpy(h->err + h->err_len, buf, take);
        h->err_len += take;
        h->err_cut |= take < (size_t)got;
    }
}

static void handlers_write_stdin(handler *h)
{
    while (h->in_off < h->cur.value_len) {
        ssize_t w = write(h->in_fd, h->cur.value + h->in_off,
                          h->cur.value_len - h->in_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w < 0)
            break; /* EPIPE: it does not read its stdin */
        h->in_off += (size_t)w;
    }
    handlers_close(&h->in_fd);
}

/* Logs how a run ended and its stderr, one log line per line. */
static void handlers_report(handlers *hs, handler *h, int status)
{
    size_t i = (size_t)(h - hs->h);
    bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    sb_log_level level = failed ? SB_LOG_WARN : SB_LOG_INFO;
    char how[96];
    if (WIFEXITED(status))
        snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(status));
    else if (h->killed)
        snprintf(how, sizeof(how), "killed after %u ms (the timeout)",
                 hs->a->handler_timeout_ms);
    else
        snprintf(how, sizeof(how), "killed by signal %d",
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    agent_log(hs->a, level, "handler %zu (%s): %s %s: %s", i, h->command,
              agent_event_name(h->cur.type), h->cur.peer, how);
    for (size_t s = 0; s < h->err_len;) {
        char *nl = memchr(h->err + s, '\n', h->err_len - s);
        size_t e = nl ? (size_t)(nl - h->err) : h->err_len;
        agent_log(hs->a, level, "handler %zu stderr: %.*s", i, (int)(e - s),
                  h->err + s);
        s = e + 1;
    }
    if (h->err_cut)
        agent_log(hs->a, level, "handler %zu stderr: (more than %d bytes; "
                  "the rest not logged)", i, HANDLER_MAX_STDERR);
    if (failed)
        h->failures++;
}

void handlers_add(handlers *hs, loop *l)
{
    for (size_t i = 0; hs && i < hs->n; i++) {
        handler *h = &hs->h[i];
        h->in_slot = loop_add(l, h->in_fd, POLLOUT);
        h->err_slot = loop_add(l, h->err_fd, POLLIN);
        if (h->pid && !h->killed)
            loop_wake_at(l, h->deadline);
        if (!h->pid && h->count)
            loop_wake_at(l, 0);
    }
}

void handlers_process(handlers *hs, const loop *l)
{
    uint64_t now = mono_ms();
    for (size_t i = 0; hs && i < hs->n; i++) {
        handler *h = &hs->h[i];
        if (h->in_fd >= 0 && loop_revents(l, h->in_slot))
            handlers_write_stdin(h);
        if (h->err_fd >= 0 && loop_revents(l, h->err_slot))
            handlers_read_stderr(h);
        int status;
        if (h->pid && waitpid(h->pid, &status, WNOHANG) == h->pid) {
            /* what it left running in its group ends with it: one run
             * at a time, none outliving the agent */
            kill(-h->pid, SIGKILL);
            if (h->err_fd >= 0)
                handlers_read_stderr(h); /* what it wrote before exiting */
            handlers_close(&h->in_fd);
            handlers_close(&h->err_fd);
            h->pid = 0;
            handlers_report(hs, h, status);
            handlers_clear(&h->cur);
        } else if (h->pid && !h->killed && now >= h->deadline) {
            kill(-h->pid, SIGKILL);
            h->killed = true;
            h->timeouts++;
        }
        handlers_next(hs, h);
    }
}

size_t handlers_count(const handlers *hs)
{
    return hs ? hs->n : 0;
}

void handlers_get(const handlers *hs, size_t i, handler_counters *out)
{
    const handler *h = &hs->h[i];
    *out = (handler_counters){ h->command, h->events, h->runs, h->failures,
                               h->timeouts, h->dropped,
                               h->count + (h->pid != 0) };
}

json_t *handlers_config(const handlers *hs)
{
    json_t *list = json_array();
    for (size_t i = 0; i < handlers_count(hs); i++) {
        json_t *events = json_array();
        for (int k = SB_EVENT_JOIN; k <= SB_EVENT_DELETE; k++)
            if (hs->h[i].events & (1u << k))
                json_array_append_new(events,
                                      json_string(agent_event_name(k)));
        json_array_append_new(list, json_pack("{soss}", "events", events,
                                              "command", hs->h[i].command));
    }
    return list;
}

json_t *handlers_counters(const handlers *hs)
{
    json_t *list = json_array();
    for (size_t i = 0; i < handlers_count(hs); i++) {
        handler_counters c;
        handlers_get(hs, i, &c);
        json_array_append_new(
            list, json_pack("{sssIsIsIsIsI}", "command", c.command, "runs",
                            (json_int_t)c.runs, "failures",
                            (json_int_t)c.failures, "timeouts",
                            (json_int_t)c.timeouts, "dropped",
                            (json_int_t)c.dropped, "queued",
                            (json_int_t)c.queued));
    }
    return list;
}

void handlers_free(handlers *hs)
{
    for (size_t i = 0; hs && i < hs->n; i++) {
        handler *h = &hs->h[i];
        if (h->pid) {
            kill(-h->pid, SIGKILL);
            waitpid(h->pid, NULL, 0);
        }
        handlers_close(&h->in_fd);
        handlers_close(&h->err_fd);
        handlers_clear(&h->cur);
        for (size_t k = 0; k < h->count; k++)
            handlers_clear(&h->q[(h->head + k) % HANDLER_QUEUE]);
    }
    free(hs);
}
