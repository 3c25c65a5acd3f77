/*
 * The client subcommands: `scuttlebutt members`, `get`, `set`, `del`,
 * `keys`, `leave`, `info`, `monitor`, each one request to a running
 * agent's control socket (control.h), its reply printed readably or,
 * with --json, as the agent sent it.
 *
 * Exit status: 0 done; 1 no agent reached (none at the path, none or
 * several running without --control or --agent, connection lost, a
 * default directory or an agent not of this user's, a malformed reply);
 * 2 usage error; 3 the agent refused the request (its reason printed).
 *
 * What answers is trusted only so far: the default directory must be
 * this user's and closed to others, the process behind any socket must
 * run as this user (or root), before anything is sent; and every field
 * read from a reply has its type checked first.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "json.h"
#include "rundir.h"

typedef struct client_cmd {
    const char *name;
    const char *args;          /* positional arguments, for the usage */
    const char *what;
    int min, max;              /* positional arguments */
} client_cmd;

static const client_cmd client_cmds[] = {
    { "members", "[--status STATUS]",
      "The members this agent knows, self included: address, status, age\n"
      "(since the agent first saw it in that status), number of keys.\n"
      "--status: only joining, live, down or left ones", 0, 0 },
    { "get", "PEER KEY", "PEER's KEY as the agent knows it (the value, then a\n"
      "newline)", 2, 2 },
    { "set", "KEY VALUE", "Publishes KEY with VALUE from the agent", 2, 2 },
    { "del", "KEY", "Deletes the agent's KEY", 1, 1 },
    { "keys", "install|use|remove HEX, or keys list",
      "The agent's cluster keys (64 hex characters; HEX `-` reads it from\n"
      "stdin, out of other users' sight): install one, make an installed\n"
      "one the key that seals, remove one that does not seal, or list them\n"
      "(the sealing one first, marked primary)", 1, 2 },
    { "join", "HOST:PORT", "The agent joins the node at HOST:PORT, and its\n"
      "cluster: it is sent the agent's digest until it answers (for 10\n"
      "intervals at most); its members then come as join events. A name is\n"
      "resolved here, every address it gives is tried (one that does not\n"
      "resolve is a usage error, exit 2)", 1, 1 },
    { "leave", "", "The agent leaves the cluster gracefully and keeps\n"
      "running (stop it with SIGTERM)", 0, 0 },
    { "info", "", "The agent's version, addresses, configuration (never the\n"
      "keys) and counters", 0, 0 },
    { "monitor", "", "Streams the agent's events until Ctrl-C, an event a line\n"
      "(control characters and backslashes in keys and values escaped, as\n"
      "\\n, \\xNN). With --json: the\n"
      "agent's reply, {\"ok\":true}, once the stream has begun, then one event\n"
      "a line as stdout of `agent` has them (jq 'select(.event)' keeps the\n"
      "events)", 0, 0 },
};
#define NCMDS (sizeof(client_cmds) / sizeof(client_cmds[0]))
#define CLIENT_REPLY_S 10 /* the longest wait for a reply */

static char client_usage[2048];
static volatile sig_atomic_t client_stop;

static void client_on_sigint(int sig)
{
    (void)sig;
    client_stop = 1;
}

static void client_make_usage(const client_cmd *c)
{
    snprintf(client_usage, sizeof(client_usage),
             "usage: scuttlebutt %s [--control PATH | --agent HOST:PORT] "
             "[--json] %s\n\n%s.\n\n"
             "  --control PATH     the agent's control socket\n"
             "  --agent HOST:PORT  the agent bound to HOST:PORT, at its "
             "default socket\n"
             "                     (agent --help). With neither: the only "
             "agent of\n"
             "                     this user\n"
             "  --json             the agent's reply as JSON, as it sent it\n"
             "  --help             this text\n\n"
             "Exit status: 0 done, 1 no agent reached (or not this user's, "
             "or a\nmalformed reply), 2 usage error, 3 the agent refused the "
             "request.\n",
             c->name, c->args, c->what);
}

/* ---- finding and reaching the agent -------------------------------------- */

/* A connected socket to path, or -1 with errno set. */
static int client_connect(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* Whether the process listening behind fd (at path) runs as this user,
 * or as root, who could read whatever we send anyway; says why not. The
 * socket file's owner and mode prove nothing: a path given with
 * --control may be anyone's. */
static bool client_peer_ok(const char *cmd, int fd, const char *path)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        fprintf(stderr, "scuttlebutt %s: %s: %s\n", cmd, path, strerror(errno));
        return false;
    }
    if (cred.uid == getuid() || cred.uid == 0)
        return true;
    fprintf(stderr, "scuttlebutt %s: the agent at %s runs as uid %u, not "
            "as this user (uid %u); nothing sent to it\n", cmd, path,
            (unsigned)cred.uid, (unsigned)getuid());
    return false;
}

/* Whether the default directory dir may be looked into: this user's
 * and closed to others (says why not), or not there at all (ENOENT:
 * then no agent is running, which the caller says). */
static bool client_dir_ok(const char *cmd, const char *dir)
{
    char err[4400];
    if (rundir_check(dir, err, sizeof(err)) || errno == ENOENT)
        return true;
    fprintf(stderr, "scuttlebutt %s: %s; not looking for an agent there "
            "(give --control PATH)\n", cmd, err);
    return false;
}

/* The agents that answer in the default directory dir: how many, their
 * bound addresses in names (comma-separated); the first one's connected
 * socket in *fd and its path in found (fd NULL: none kept). */
static int client_scan(const char *dir, char *names, size_t nsize, int *fd,
                       char *found, size_t size)
{
    char path[4400];
    int nfound = 0;
    names[0] = '\0';
    if (fd)
        *fd = -1;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name), sl = strlen(RUNDIR_SUFFIX);
        if (len <= sl || strcmp(e->d_name + len - sl, RUNDIR_SUFFIX) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int s = client_connect(path);
        if (s < 0)
            continue; /* stale */
        if (nfound++ == 0 && fd) {
            *fd = s;
            snprintf(found, size, "%s", path);
        } else {
            close(s);
        }
        size_t used = strlen(names);
        snprintf(names + used, nsize - used, "%s%.*s", used ? ", " : "",
                 (int)(len - sl), e->d_name);
    }
    if (d)
        closedir(d);
    return nfound;
}

/* The only agent of this user's that answers in the default directory:
 * its connected socket, its path in found, or -1 after saying why not. */
static int client_find(const char *cmd, char *found, size_t size)
{
    char dir[4096], names[2048];
    int fd;
    rundir_dir(dir, sizeof(dir));
    if (!client_dir_ok(cmd, dir))
        return -1;
    int nfound = client_scan(dir, names, sizeof(names), &fd, found, size);
    if (nfound == 1)
        return fd;
    if (fd >= 0)
        close(fd);
    if (nfound == 0)
        fprintf(stderr, "scuttlebutt %s: no agent of this user's is running "
                "(none answers in %s); give --control PATH\n", cmd, dir);
    else
        fprintf(stderr, "scuttlebutt %s: %d agents are running (%s); choose "
                "one with --agent HOST:PORT\n", cmd, nfound, names);
    return -1;
}

/* Sends one request line, or as much of it as the agent takes (one that
 * refuses the client closes without reading it). */
static void client_send(int fd, json_t *req)
{
    size_t len;
    char *line = json_line(req, &len);
    for (size_t off = 0; line && off < len;) {
        ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(line);
}

/* Reads one line from fd into a buffer kept between calls; NULL at the
 * end of the stream, or when interrupted. */
static char *client_read_line(int fd, size_t *len)
{
    static char *buf;
    static size_t used, size, start;
    if (start) {
        memmove(buf, buf + start, used - start);
        used -= start;
        start = 0;
    }
    for (;;) {
        char *nl = used ? memchr(buf, '\n', used) : NULL;
        if (nl) {
            *nl = '\0';
            *len = (size_t)(nl - buf);
            start = *len + 1;
            return buf;
        }
        if (used == size) {
            size = size ? 2 * size : 65536;
            char *b = realloc(buf, size);
            if (!b)
                return NULL;
            buf = b;
        }
        ssize_t got = read(fd, buf + used, size - used);
        if (got <= 0) {
            if (got < 0 && errno == EINTR && !client_stop)
                continue;
            return NULL;
        }
        used += (size_t)got;
    }
}

/* ---- what a reply must hold ---------------------------------------------- */

/* A reply is read only after these checks: one of another shape (an
 * agent of another version, a process that is no agent) is reported as
 * malformed, never dereferenced where a string or an array was due. */

static bool client_has_string(const json_t *obj, const char *name)
{
    return json_is_string(json_object_get(obj, name));
}

static bool client_has_integer(const json_t *obj, const char *name)
{
    return json_is_integer(json_object_get(obj, name));
}

/* obj.name absent, or a boolean. */
static bool client_may_have_bool(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    return !v || json_is_boolean(v);
}

/* obj.name or obj.name_b64 (json_get_bytes()) decodes, or, when not
 * required, neither is there. */
static bool client_has_bytes(const json_t *obj, const char *name,
                             bool required)
{
    char field[64];
    snprintf(field, sizeof(field), "%s_b64", name);
    if (!json_object_get(obj, name) && !json_object_get(obj, field))
        return !required;
    size_t len;
    char *v = json_get_bytes(obj, name, &len);
    bool ok = v != NULL;
    free(v);
    return ok;
}

/* "ok" a boolean and, when false, "error" a string: what every reply
 * has, --json or not. False for a reply that is not an object. */
static bool client_reply_ok(const json_t *reply)
{
    const json_t *ok = json_object_get(reply, "ok");
    return json_is_boolean(ok) &&
           (json_is_true(ok) || client_has_string(reply, "error"));
}

/* The fields client_print() reads from a successful reply. */
static bool client_result_ok(const client_cmd *c, const json_t *req,
                             const json_t *reply)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    const json_t *list = NULL;
    size_t i;
    json_t *x;
    if (strcmp(c->name, "members") == 0) {
        list = json_object_get(reply, "members");
        json_array_foreach(list, i, x)
            if (!json_is_object(x) || !client_has_string(x, "addr") ||
                !client_has_string(x, "status") ||
                !client_has_integer(x, "age_ms") ||
                !client_has_integer(x, "keys") ||
                !client_may_have_bool(x, "self") ||
                !client_may_have_bool(x, "leaving"))
                return false;
    } else if (strcmp(c->name, "get") == 0) {
        return client_has_bytes(reply, "value", true);
    } else if (strcmp(c->name, "keys") == 0 && op &&
               strcmp(op, "list") == 0) {
        list = json_object_get(reply, "keys");
        json_array_foreach(list, i, x)
            if (!json_is_object(x) || !client_has_string(x, "key") ||
                !client_may_have_bool(x, "primary"))
                return false;
    } else {
        return true; /* info prints any object; the rest print nothing */
    }
    return json_is_array(list);
}

/* The fields client_print_event() reads. */
static bool client_event_ok(const json_t *e)
{
    const char *kind = json_string_value(json_object_get(e, "event"));
    return kind && client_has_string(e, "peer") &&
           client_has_integer(e, "time_ms") &&
           (strcmp(kind, "leave") != 0 || client_has_string(e, "status")) &&
           client_has_bytes(e, "key", false) &&
           client_has_bytes(e, "value", false);
}

/* ---- printing ------------------------------------------------------------ */

/* The bytes of obj.name or obj.name_b64, written to out. */
static void client_print_bytes(FILE *out, const json_t *obj, const char *name)
{
    size_t len;
    char *v = json_get_bytes(obj, name, &len);
    if (v)
        fwrite(v, 1, len, out);
    free(v);
}

/* obj.name as text on one line: a control character (C0, DEL, or C1
 * written in UTF-8) or a backslash escaped (\n, \t, \\, \xNN, \u00NN),
 * and so is every byte >= 0x80 of a value that is no UTF-8 (name_b64), so
 * that no key or value a peer wrote can forge an event line or send the
 * terminal an escape sequence. */
static void client_print_text(FILE *out, const json_t *obj, const char *name)
{
    size_t len;
    char *v = json_get_bytes(obj, name, &len);
    /* as json_get_bytes() chose: a name that is no string gave name_b64 */
    bool utf8 = json_is_string(json_object_get(obj, name));
    for (size_t i = 0; v && i < len; i++) {
        unsigned char b = (unsigned char)v[i];
        unsigned char next = i + 1 < len ? (unsigned char)v[i + 1] : 0;
        if (b == '\n')
            fputs("\\n", out);
        else if (b == '\t')
            fputs("\\t", out);
        else if (b == '\\')
            fputs("\\\\", out);
        else if (b < 0x20 || b == 0x7f || (!utf8 && b >= 0x80))
            fprintf(out, "\\x%02x", b);
        else if (utf8 && b == 0xc2 && next >= 0x80 && next <= 0x9f) {
            fprintf(out, "\\u%04x", (unsigned)next);
            i++;
        } else
            fputc(b, out);
    }
    free(v);
}

static void client_age(char *buf, size_t size, json_int_t ms)
{
    long long s = ms / 1000;
    if (s < 60)
        snprintf(buf, size, "%llds", s);
    else if (s < 3600)
        snprintf(buf, size, "%lldm%llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, size, "%lldh%lldm", s / 3600, s / 60 % 60);
    else
        snprintf(buf, size, "%lldd%lldh", s / 86400, s / 3600 % 24);
}

/* An address as a key that sorts as numbers do: IPv4 before IPv6, then
 * the address's bytes, then the port ("10.0.0.9" before "10.0.0.10");
 * all zero if it is not "ip:port" or "[ip6]:port". */
static void client_addr_key(const char *addr, uint8_t key[19])
{
    char host[256];
    bool v6;
    uint32_t port;
    memset(key, 0, 19);
    if (!parse_hostport(addr, 0, host, &v6, &port) ||
        inet_pton(v6 ? AF_INET6 : AF_INET, host, key + 1) != 1)
        return;
    key[0] = v6 ? 2 : 1;
    key[17] = (uint8_t)(port >> 8);
    key[18] = (uint8_t)port;
}

static int client_by_addr(const void *x, const void *y)
{
    const json_t *const *a = x, *const *b = y;
    const char *sa = json_string_value(json_object_get(*a, "addr"));
    const char *sb = json_string_value(json_object_get(*b, "addr"));
    uint8_t ka[19], kb[19];
    client_addr_key(sa, ka);
    client_addr_key(sb, kb);
    int c = memcmp(ka, kb, sizeof(ka));
    return c ? c : strcmp(sa, sb);
}

static void client_print_members(const json_t *reply)
{
    const json_t *list = json_object_get(reply, "members");
    size_t n = json_array_size(list), width = 7;
    const json_t **v = calloc(n + 1, sizeof(*v));
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        v[i] = json_array_get(list, i);
        size_t w = strlen(json_string_value(json_object_get(v[i], "addr")));
        width = w > width ? w : width;
    }
    qsort(v, n, sizeof(*v), client_by_addr);
    printf("%-*s  %-7s  %8s  %s\n", (int)width, "ADDRESS", "STATUS", "AGE",
           "KEYS");
    for (size_t i = 0; i < n; i++) {
        char age[32];
        client_age(age, sizeof(age),
                   json_integer_value(json_object_get(v[i], "age_ms")));
        printf("%-*s  %-7s  %8s  %lld%s\n", (int)width,
               json_string_value(json_object_get(v[i], "addr")),
               json_string_value(json_object_get(v[i], "status")), age,
               (long long)json_integer_value(json_object_get(v[i], "keys")),
               !json_is_true(json_object_get(v[i], "self")) ? ""
               : json_is_true(json_object_get(v[i], "leaving"))
                   ? "  (this agent, leaving)"
                   : "  (this agent)");
    }
    free(v);
}

/* `info` as "section.name: value" lines. */
static void client_print_flat(const char *prefix, const json_t *v)
{
    char name[256];
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (!*prefix && strcmp(k, "ok") == 0)
                continue;
            snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "",
                     k);
            client_print_flat(name, x);
        }
    } else if (json_is_array(v) && json_array_size(v) &&
               !json_is_string(json_array_get(v, 0))) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            snprintf(name, sizeof(name), "%s.%zu", prefix, i);
            client_print_flat(name, x);
        }
    } else {
        char *text = json_is_string(v)
                         ? strdup(json_string_value(v))
                         : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%s: %s\n", prefix, text ? text : "?");
        free(text);
    }
}

/* An event that client_event_ok() passed. */
static void client_print_event(const json_t *e)
{
    const char *kind = json_string_value(json_object_get(e, "event"));
    printf("%8.3f  %-6s  %s", (double)json_integer_value(
                                  json_object_get(e, "time_ms")) / 1000,
           kind, json_string_value(json_object_get(e, "peer")));
    if (json_object_get(e, "key") || json_object_get(e, "key_b64")) {
        fputs("  ", stdout);
        client_print_text(stdout, e, "key");
    }
    if (json_object_get(e, "value") || json_object_get(e, "value_b64")) {
        fputc('=', stdout);
        client_print_text(stdout, e, "value");
    }
    if (strcmp(kind, "leave") == 0)
        printf("  (%s)", json_string_value(json_object_get(e, "status")));
    fputc('\n', stdout);
    fflush(stdout);
}

/* A successful reply that client_result_ok() passed. */
static void client_print(const client_cmd *c, const json_t *req,
                         const json_t *reply)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    if (strcmp(c->name, "members") == 0) {
        client_print_members(reply);
    } else if (strcmp(c->name, "get") == 0) {
        client_print_bytes(stdout, reply, "value");
        fputc('\n', stdout);
    } else if (strcmp(c->name, "info") == 0) {
        client_print_flat("", reply);
    } else if (op && strcmp(op, "list") == 0) {
        size_t i;
        json_t *k;
        json_array_foreach(json_object_get(reply, "keys"), i, k)
            printf("%s%s\n", json_string_value(json_object_get(k, "key")),
                   json_is_true(json_object_get(k, "primary")) ? "  primary"
                                                               : "");
    }
}

/* ---- the requests -------------------------------------------------------- */

/* A key given as `-`: read from stdin, its whitespace trimmed. */
static char *client_stdin_key(void)
{
    static char buf[256];
    size_t n = fread(buf, 1, sizeof(buf) - 1, stdin);
    buf[n] = '\0';
    while (n && strchr(" \t\r\n", buf[n - 1]))
        buf[--n] = '\0';
    char *p = buf;
    while (*p && strchr(" \t\r\n", *p))
        p++;
    return p;
}

/* "HOST:PORT" or "[V6]:PORT" (parse_hostport()) into the numeric
 * addresses the host has, "ip:port" or "[ip6]:port", commas between (at
 * most 8): the agent resolves no names (its loop would wait for them).
 * The port is 1 to 65535 (getaddrinfo() would take 65537 for port 1).
 * False, after a message on stderr, if it does not resolve. */
static bool client_join_addrs(const char *spec, char *out, size_t cap)
{
    char host[256];
    bool v6;
    uint32_t port_number;
    if (!parse_hostport(spec, 1, host, &v6, &port_number)) {
        usage_error(client_usage, "join: HOST:PORT or [V6]:PORT, the port "
                                  "1 to 65535");
        return false;
    }
    char port[6];
    snprintf(port, sizeof(port), "%u", (unsigned)port_number);
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM,
                              .ai_flags = AI_NUMERICSERV }, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "scuttlebutt join: %s: %s\n", spec,
                gai_strerror(rc));
        return false;
    }
    char found[8][INET6_ADDRSTRLEN + 16];
    int n = 0;
    for (const struct addrinfo *ai = res; ai && n < 8; ai = ai->ai_next) {
        const void *bin;
        if (ai->ai_family == AF_INET)
            bin = &((const struct sockaddr_in *)(const void *)ai->ai_addr)
                       ->sin_addr;
        else if (ai->ai_family == AF_INET6)
            bin = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)
                       ->sin6_addr;
        else
            continue;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(ai->ai_family, bin, ip, sizeof(ip));
        snprintf(found[n], sizeof(found[n]),
                 ai->ai_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
                 (unsigned)port_number);
        bool dup = false; /* a name gives an address per protocol */
        for (int i = 0; i < n && !dup; i++)
            dup = strcmp(found[i], found[n]) == 0;
        n += !dup;
    }
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "",
                                found[i]);
    freeaddrinfo(res);
    return n > 0;
}

/* The request of a subcommand and its arguments; NULL after a usage
 * error. */
static json_t *client_request(const client_cmd *c, char **args, int n,
                              const char *status)
{
    json_t *req = json_pack("{ss}", "cmd", c->name);
    if (strcmp(c->name, "members") == 0 && status) {
        if (strcmp(status, "joining") && strcmp(status, "live") &&
            strcmp(status, "down") && strcmp(status, "left")) {
            json_decref(req);
            usage_error(client_usage, "--status: joining, live, down or left");
            return NULL;
        }
        json_object_set_new(req, "status", json_string(status));
    } else if (strcmp(c->name, "get") == 0) {
        json_set_bytes(req, "peer", args[0], strlen(args[0]));
        json_set_bytes(req, "key", args[1], strlen(args[1]));
    } else if (strcmp(c->name, "set") == 0) {
        json_set_bytes(req, "key", args[0], strlen(args[0]));
        json_set_bytes(req, "value", args[1], strlen(args[1]));
    } else if (strcmp(c->name, "del") == 0) {
        json_set_bytes(req, "key", args[0], strlen(args[0]));
    } else if (strcmp(c->name, "join") == 0) {
        char addrs[8 * (INET6_ADDRSTRLEN + 16)];
        if (!client_join_addrs(args[0], addrs, sizeof(addrs))) {
            json_decref(req);
            return NULL;
        }
        json_object_set_new(req, "addr", json_string(addrs));
    } else if (strcmp(c->name, "keys") == 0) {
        json_object_set_new(req, "cmd", json_string("key"));
        bool list = strcmp(args[0], "list") == 0;
        if (list ? n != 1
                 : n != 2 || (strcmp(args[0], "install") &&
                              strcmp(args[0], "use") &&
                              strcmp(args[0], "remove"))) {
            json_decref(req);
            usage_error(client_usage, "keys install|use|remove HEX, or keys "
                        "list");
            return NULL;
        }
        json_object_set_new(req, "op", json_string(args[0]));
        if (!list) {
            const char *hex = strcmp(args[1], "-") == 0 ? client_stdin_key()
                                                        : args[1];
            json_set_bytes(req, "key", hex, strlen(hex));
        }
    }
    return req;
}

int client_main(int argc, char **argv)
{
    const client_cmd *c = NULL;
    for (size_t i = 0; i < NCMDS && !c; i++)
        if (strcmp(argv[0], client_cmds[i].name) == 0)
            c = &client_cmds[i];
    if (!c)
        return 2;
    client_make_usage(c);
    static const struct option opts[] = {
        { "control", required_argument, NULL, 'c' },
        { "agent", required_argument, NULL, 'a' },
        { "json", no_argument, NULL, 'j' },
        { "status", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *control = NULL, *addr = NULL, *status = NULL;
    bool as_json = false;
    int o;
    optind = 1;
    /* flags anywhere; after `--` none, for a VALUE that starts with - */
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            if (control)
                return usage_error(client_usage, "--control: once");
            control = optarg;
            break;
        case 'a':
            if (addr)
                return usage_error(client_usage, "--agent: once");
            addr = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 's':
            if (strcmp(c->name, "members") != 0)
                return usage_error(client_usage, "--status: members only");
            if (status)
                return usage_error(client_usage, "--status: once");
            status = optarg;
            break;
        case 'h':
            fputs(client_usage, stdout);
            return 0;
        default:
            return usage_error(client_usage, NULL);
        }
    }
    int n = argc - optind;
    if (n < c->min || n > c->max)
        return usage_error(client_usage, n < c->min ? "missing arguments"
                                                    : "unexpected argument");
    if (control && addr)
        return usage_error(client_usage, "--control or --agent, not both");
    json_t *req = client_request(c, argv + optind, n, status);
    if (!req)
        return 2;

    char path[4400], dir[4096];
    int fd = -1;
    if (control || addr) {
        if (control)
            snprintf(path, sizeof(path), "%s", control);
        else
            rundir_socket(addr, path, sizeof(path));
        if (control || (rundir_dir(dir, sizeof(dir)) &&
                        client_dir_ok(c->name, dir))) {
            fd = client_connect(path);
            int err = errno;
            char names[2048] = "";
            /* --agent names the agent by the address given to its --bind
             * (numeric, as its ready line's "control" has it), not by a
             * host name or the advertised address: say which are here */
            if (fd < 0 && !control && err == ENOENT)
                client_scan(dir, names, sizeof(names), NULL, NULL, 0);
            if (fd < 0)
                fprintf(stderr, "scuttlebutt %s: no agent at %s (%s)%s%s\n",
                        c->name, path, strerror(err),
                        names[0] ? "; --agent takes the address the agent "
                                   "was bound to, and these answer: " : "",
                        names);
        }
    } else {
        fd = client_find(c->name, path, sizeof(path));
    }
    if (fd >= 0 && !client_peer_ok(c->name, fd, path)) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        json_decref(req);
        return 1;
    }
    struct sigaction sa = { .sa_handler = client_on_sigint };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a read returns */
    sigaction(SIGTERM, &sa, NULL);

    /* an agent answers at once, from its loop: one that does not within
     * CLIENT_REPLY_S is stuck, and the client says so instead of
     * waiting with it (monitor's events then come at their pace) */
    struct timeval wait = { .tv_sec = CLIENT_REPLY_S };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    int rc = 0;
    size_t len;
    client_send(fd, json_incref(req));
    errno = 0;
    char *line = client_read_line(fd, &len);
    bool late = !line && (errno == EAGAIN || errno == EWOULDBLOCK);
    json_t *reply = line ? json_loadb(line, len, 0, NULL) : NULL;
    wait.tv_sec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    if (late) {
        fprintf(stderr, "scuttlebutt %s: no reply from the agent within "
                "%d s\n", c->name, CLIENT_REPLY_S);
        rc = 1;
    } else if (!line) {
        fprintf(stderr, "scuttlebutt %s: the agent closed the connection "
                "without a reply\n", c->name);
        rc = 1;
    } else if (!client_reply_ok(reply) ||
               (!as_json && json_is_true(json_object_get(reply, "ok")) &&
                !client_result_ok(c, req, reply))) {
        fprintf(stderr, "scuttlebutt %s: malformed reply from the agent\n",
                c->name);
        rc = 1;
    } else if (!json_is_true(json_object_get(reply, "ok"))) {
        const char *err = json_string_value(json_object_get(reply, "error"));
        if (as_json)
            printf("%.*s\n", (int)len, line);
        fprintf(stderr, "scuttlebutt %s: %s\n", c->name, err);
        rc = 3;
    } else if (as_json) {
        printf("%.*s\n", (int)len, line);
    } else {
        client_print(c, req, reply);
    }
    if (rc == 0 && strcmp(c->name, "monitor") == 0) {
        fflush(stdout);
        while (rc == 0 && !client_stop &&
               (line = client_read_line(fd, &len))) {
            if (as_json) { /* as it came: no field is read */
                printf("%.*s\n", (int)len, line);
                fflush(stdout);
                continue;
            }
            json_t *ev = json_loadb(line, len, 0, NULL);
            if (client_event_ok(ev)) {
                client_print_event(ev);
            } else {
                fprintf(stderr, "scuttlebutt monitor: malformed event from "
                        "the agent\n");
                rc = 1;
            }
            json_decref(ev);
        }
        if (rc == 0 && !client_stop) {
            fprintf(stderr, "scuttlebutt monitor: the agent closed the "
                    "connection\n");
            rc = 1;
        }
    }
    json_decref(reply);
    json_decref(req);
    close(fd);
    return rc;
}

bool client_is_command(const char *name)
{
    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(name, client_cmds[i].name) == 0)
            return true;
    return false;
}
