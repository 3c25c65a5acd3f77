/*
 * `scuttlebutt agent`: one cluster member as a process.
 *
 * stdout: one JSON object per line, flushed per line (ready, then events).
 * stdin: one command per line, one JSON reply line each (commands.c).
 * The control socket (control.c), event handlers (handlers.c) and HTTP
 * (http.c) are its other faces. SIGINT, SIGTERM, SIGHUP (the terminal
 * went away; not if it was ignored at start, as under nohup) and `quit`:
 * graceful leave, a few rounds for it to spread, exit 0. End of stdin is
 * not an exit.
 *
 * Single-threaded: the node is embedded and driven by the agent's poll()
 * loop (loop.h), which also watches stdin, a signal pipe, the control
 * socket and its clients, the handlers' pipes and the HTTP server.
 */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "commands.h"
#include "config.h"
#include "control.h"
#include "handlers.h"
#include "http.h"
#include "json.h"
#include "loop.h"
#include "members.h"
#include "rundir.h"

#define MAX_SETS 256
#define LEAVE_ROUNDS 5 /* rounds between a leave and the exit ... */
#define LEAVE_MAX_MS 2000 /* ... but no longer than this */

static const char usage[] =
"usage: scuttlebutt agent --bind HOST:PORT [--advertise HOST:PORT]\n"
"                         [--seed HOST:PORT]... [--interval MS]\n"
"                         [--max-message-size BYTES] [--bandwidth BYTES]\n"
"                         [--threshold PHI]\n"
"                         [--cluster NAME] [--set KEY=VALUE]...\n"
"                         [--key-file PATH]... [--wire FORMAT]\n"
"                         [--log-level LEVEL] [--control PATH | --no-control]\n"
"                         [--http ADDR] [--event-handler [EVENTS=]COMMAND]...\n"
"                         [--handler-timeout MS] [--config FILE]\n"
"\n"
"Runs one cluster member until SIGINT, SIGTERM, SIGHUP (unless started\n"
"under nohup) or `quit`, which leave the cluster gracefully and exit 0.\n"
"\n"
"  --bind HOST:PORT          address to bind (port 0: any); required\n"
"  --advertise HOST:PORT     numeric address peers reach us at (default:\n"
"                            the bound one; needed when binding 0.0.0.0);\n"
"                            port 0: the port bound\n"
"  --seed HOST:PORT          a seed (a name or an address); repeatable\n"
"  --interval MS             gossip interval (default 500)\n"
"  --max-message-size BYTES  UDP payload limit (default 512)\n"
"  --bandwidth BYTES         the most bytes a second the node sends, all\n"
"                            its traffic: liveness first, then\n"
"                            anti-entropy, then push (default 1048576, or\n"
"                            24 messages a second if more; at least that)\n"
"  --threshold PHI           failure detector threshold (default 8)\n"
"  --cluster NAME            cluster name (default \"default\")\n"
"  --set KEY=VALUE           a key to publish at start; repeatable\n"
"  --key-file PATH           a cluster key: a file of 64 hex characters\n"
"                            (and whitespace) or of 32 random bytes; the first\n"
"                            seals, all open; repeatable, at most 8. Without\n"
"                            one, packets are plaintext (docs/security.md)\n"
"  --wire FORMAT             scuttlebutt (default), or reference: the\n"
"                            reference Go library's format, to join a\n"
"                            cluster of its nodes (docs/compat.md); no\n"
"                            --cluster, --key-file, del or leave then\n"
"  --log-level LEVEL         error, warn (default), info or debug: the\n"
"                            most detailed log lines written to stderr\n"
"  --control PATH            the control socket (mode 0600, its directory\n"
"                            made 0700 if missing). Default:\n"
"                            $XDG_RUNTIME_DIR/scuttlebutt/BOUND.sock, or\n"
"                            without XDG_RUNTIME_DIR\n"
"                            /tmp/scuttlebutt-UID/BOUND.sock, BOUND the bound\n"
"                            HOST:PORT. Refused (exit 2) if PATH exists and\n"
"                            is not a stale socket of this user's\n"
"  --no-control              no control socket\n"
"  --http ADDR               serve the status page, /metrics, /v1/members,\n"
"                            /v1/kv/PEER[/KEY] and /v1/events, read-only, on\n"
"                            ADDR: PORT (on 127.0.0.1), HOST:PORT or\n"
"                            [V6]:PORT; port 0: any. Default: no HTTP\n"
"  --event-handler [EVENTS=]COMMAND\n"
"                            run COMMAND (with /bin/sh -c) for each event\n"
"                            of EVENTS, a comma list of join, leave, update,\n"
"                            delete (default all): the event in SB_EVENT,\n"
"                            SB_PEER, SB_STATUS, SB_KEY (or SB_KEY_B64),\n"
"                            SB_SELF, SB_TIME_MS; the value on stdin; stderr\n"
"                            and exit status logged. One run at a time per\n"
"                            handler, 256 events queued, more dropped and\n"
"                            counted; repeatable, at most 16\n"
"  --handler-timeout MS      kill a handler still running after MS\n"
"                            (default 30000)\n"
"  --config FILE             settings from a JSON object: {\"bind\":\n"
"                            \"127.0.0.1:7946\", \"seed\": [\"10.0.0.1:7946\"],\n"
"                            \"interval\": 500, \"no-control\": true, ...}; the\n"
"                            flags' names and types; flags win over the file\n"
"  --help                    this text\n"
"\n"
"stdout, one JSON object per line:\n"
"  {\"event\":\"ready\",\"addr\":\"HOST:PORT\",\"control\":PATH,\"http\":ADDR}  first\n"
"  {\"event\":\"join\",\"peer\":P,\"time_ms\":T}\n"
"  {\"event\":\"leave\",\"peer\":P,\"status\":\"down\"|\"left\",\"time_ms\":T}\n"
"  {\"event\":\"update\",\"peer\":P,\"key\":K,\"value\":V,\"time_ms\":T}\n"
"  {\"event\":\"delete\",\"peer\":P,\"key\":K,\"time_ms\":T}\n"
"time_ms counts from the agent's start. Text that is not valid UTF-8 is\n"
"written base64-encoded under \"key_b64\" or \"value_b64\".\n"
"\n"
"stdin, one command per line, each answered by one line,\n"
"{\"ok\":true,...} or {\"ok\":false,\"error\":\"...\"}:\n"
"  set KEY VALUE     publish KEY (VALUE: the rest of the line)\n"
"  del KEY           delete KEY\n"
"  get PEER KEY      PEER's KEY as this agent knows it: {\"ok\":true,\"value\":V}\n"
"                    (PEER: IP:PORT or [IP6]:PORT, no host name)\n"
"  peers             other members: {\"ok\":true,\"peers\":[{\"addr\":A,\"status\":S}]}\n"
"  members [STATUS]  all members, self included: {\"ok\":true,\"members\":\n"
"                    [{\"addr\",\"status\",\"age_ms\",\"keys\",\"generation\",\"self\",\n"
"                    \"leaving\"}]}\n"
"                    (age: since this agent first saw it in that status)\n"
"  stats             the node's counters: {\"ok\":true,\"stats\":{\"packets_in\":N,\n"
"                    ...,\"drops\":{REASON:N,...},\"members\":{STATUS:N,...}}}\n"
"                    (a drop reason for every one the library has)\n"
"  info              version, addresses, configuration (never the keys),\n"
"                    stats, events by kind, handler counters\n"
"  join ADDR[,ADDR]  join the node at ADDR (ip:port or [ip6]:port, no\n"
"                    name), and its cluster\n"
"  leave             leave the cluster gracefully, keep running\n"
"  key install HEX   install a cluster key (64 hex characters)\n"
"  key use HEX       make an installed key the one that seals\n"
"  key remove HEX    remove a key that does not seal\n"
"  key list          the keys this agent holds, the sealing one first\n"
"  quit              leave, then exit 0\n"
"Blank lines are ignored. End of stdin does not stop the agent.\n"
"\n"
"The control socket takes the same commands as JSON lines, with their\n"
"arguments named: {\"cmd\":\"set\",\"key\":K,\"value\":V}, {\"cmd\":\"get\",\n"
"\"peer\":P,\"key\":K}, {\"cmd\":\"key\",\"op\":\"install\",\"key\":HEX},\n"
"{\"cmd\":\"members\",\"status\":S}; \"key_b64\"/\"value_b64\" for bytes that\n"
"are not text. {\"cmd\":\"monitor\"} is answered {\"ok\":true}, then streams\n"
"the events as stdout has them. `scuttlebutt members --help` and the\n"
"other client subcommands speak it.\n"
"\n"
"Exit status: 0 after SIGINT, SIGTERM, SIGHUP or quit; 1 the node or the HTTP\n"
"server cannot start; 2 a usage or configuration error (a flag, --config,\n"
"--key-file, --set, the control socket's path, a value the node refuses).\n";

static int signal_pipe[2] = { -1, -1 };

static void agent_on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    ssize_t w = write(signal_pipe[1], &c, 1);
    (void)w;
    errno = saved;
}

void agent_log(const agent *a, sb_log_level level, const char *fmt, ...)
{
    if (level > a->cfg.log_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sb_log_stderr(NULL, level, msg);
}

const char *agent_event_name(sb_event_type type)
{
    static const char *const names[] = { "?", "join", "leave", "update",
                                         "delete" };
    return (unsigned)type <= SB_EVENT_DELETE ? names[type] : "?";
}

void agent_shut_down(agent *a)
{
    if (a->exit_at) {
        a->exit_at = mono_ms();
        return;
    }
    if (sb_node_leave(a->node) == SB_ESTATE) { /* reference: no leave */
        a->exit_at = mono_ms();
        return;
    }
    uint64_t linger = (uint64_t)LEAVE_ROUNDS * a->cfg.interval_ms;
    a->exit_at = mono_ms() + (linger < LEAVE_MAX_MS ? linger : LEAVE_MAX_MS);
}

/* ---- events -------------------------------------------------------------- */

/* Every event: counted, noted, printed, and passed to the monitors, the
 * event streams and the handlers. */
static void agent_on_event(void *userdata, const sb_event *ev)
{
    agent *a = userdata;
    uint64_t now = mono_ms();
    a->events[ev->type]++;
    members_event(a, ev);
    json_t *o = json_pack("{ssss}", "event", agent_event_name(ev->type),
                          "peer", ev->addr);
    if (ev->type == SB_EVENT_LEAVE)
        json_object_set_new(o, "status",
                            json_string(sb_status_name(ev->status)));
    if (ev->key)
        json_set_bytes(o, "key", ev->key, ev->key_len);
    if (ev->value)
        json_set_bytes(o, "value", ev->value, ev->value_len);
    json_object_set_new(o, "time_ms",
                        json_integer((json_int_t)(now - a->start_ms)));
    agent_event ae = { .ev = ev, .time_ms = now - a->start_ms };
    char *line = json_line(o, &ae.line_len);
    if (line) {
        ae.line = line;
        output_line(a, &a->out, line, ae.line_len);
        control_publish(a->control, line, ae.line_len);
        http_publish(a->http, &ae);
    }
    handlers_publish(a->handlers, &ae);
    free(line);
}

/* ---- stdin --------------------------------------------------------------- */

/* A line on stdout (output.c): the object, then it is freed. */
static void agent_print(agent *a, json_t *obj)
{
    size_t len;
    char *line = json_line(obj, &len);
    if (line)
        output_line(a, &a->out, line, len);
    free(line);
}

static void agent_command(agent *a, char *line)
{
    json_t *reply = commands_run_line(a, line);
    if (reply)
        agent_print(a, reply);
}

/* Commands run from stdin between two turns of the node: a flood of
 * them (thousands of lines in one read) must not hold its beats back. */
#define AGENT_LINES_A_TURN 64

/* One line of stdin, NUL-terminated at len: run, or refused if it
 * holds a NUL byte. */
static void agent_run_line(agent *a, char *line, size_t len)
{
    if (memchr(line, '\0', len))
        agent_print(a, commands_error("NUL byte in command"));
    else
        agent_command(a, line);
}

/* Whether complete lines of stdin wait for the next turn. */
static bool agent_lines_left(const agent *a)
{
    return memchr(a->line, '\n', a->used) != NULL;
}

/* Runs up to AGENT_LINES_A_TURN complete lines of what stdin gave. */
static void agent_run_lines(agent *a)
{
    for (int n = 0; n < AGENT_LINES_A_TURN; n++) {
        char *nl = memchr(a->line, '\n', a->used);
        if (!nl) {
            if (a->used == AGENT_MAX_LINE) { /* no newline in sight */
                if (!a->overlong)
                    agent_print(a, commands_error("line too long"));
                a->overlong = true;
                a->used = 0;
            }
            return;
        }
        *nl = '\0';
        if (a->overlong)
            a->overlong = false; /* the end of the long line */
        else
            agent_run_line(a, a->line, (size_t)(nl - a->line));
        size_t consumed = (size_t)(nl - a->line) + 1;
        memmove(a->line, nl + 1, a->used - consumed);
        a->used -= consumed;
    }
}

/* Reads what stdin has and runs its first complete lines. */
static void agent_read_commands(agent *a)
{
    ssize_t got =
        read(STDIN_FILENO, a->line + a->used, AGENT_MAX_LINE - a->used);
    if (got <= 0) {
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
            a->stdin_open = false;
            if (a->used && !a->overlong) { /* a last line, no newline */
                a->line[a->used] = '\0';
                agent_run_line(a, a->line, a->used);
            }
            a->used = 0;
        }
        return;
    }
    a->used += (size_t)got;
    agent_run_lines(a);
}

/* Reads a --key-file: 32 raw bytes, or 64 hex characters and whitespace
 * around them. 32 bytes of text (printable characters, spaces, tabs and
 * line breaks) are refused: that is a short password or half a hex key,
 * not 32 random bytes. A line break counts as text: a password written
 * with echo ends in one, and 31 characters and a newline are 32 bytes
 * (32 random bytes are all text once in 2 x 10^13). Prints why not and
 * returns false. */
static bool agent_read_key_file(const char *path, uint8_t key[SB_KEY_SIZE])
{
    char buf[257];
    const char *why = "not a key (32 raw bytes, or 64 hex characters)";
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "scuttlebutt agent: --key-file %s: %s\n", path,
                strerror(errno));
        return false;
    }
    /* the key is the cluster's only secret: every local user who can read
     * the file can read and forge all its traffic. Said, not refused, as
     * such files worked before (the recipe in docs/security.md made them
     * 0644 until umask 077 was added to it) */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
        (st.st_mode & (S_IROTH | S_IWOTH)))
        fprintf(stderr, "scuttlebutt agent: --key-file %s: every user can "
                "%s it (mode %04o): chmod o-rwx it\n", path,
                st.st_mode & S_IWOTH ? "change" : "read",
                (unsigned)(st.st_mode & 07777));
    size_t len = fread(buf, 1, sizeof(buf), f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    bool ok = false, text = true;
    for (size_t i = 0; i < len && i < SB_KEY_SIZE; i++)
        text = text && ((buf[i] >= 0x20 && buf[i] < 0x7f) ||
                        (buf[i] && strchr("\t\r\n", buf[i])));
    if (err) {
        why = strerror(err);
    } else if (len == SB_KEY_SIZE && text) {
        why = "32 characters of text, not 32 random bytes (write the key "
              "as 64 hex characters)";
    } else if (len == SB_KEY_SIZE) {
        memcpy(key, buf, SB_KEY_SIZE);
        ok = true;
    } else if (len < sizeof(buf)) {
        size_t b = 0, e = len;
        while (b < e && buf[b] && strchr(" \t\r\n", buf[b]))
            b++;
        while (e > b && buf[e - 1] && strchr(" \t\r\n", buf[e - 1]))
            e--;
        ok = commands_hex_key(buf + b, e - b, key);
    }
    if (ok && sodium_is_zero(key, SB_KEY_SIZE)) { /* the node refuses it */
        why = "32 zero bytes, not a random key";
        ok = false;
    }
    sodium_memzero(buf, sizeof(buf));
    if (!ok)
        fprintf(stderr, "scuttlebutt agent: --key-file %s: %s\n", path, why);
    return ok;
}

/* ---- options ------------------------------------------------------------- */

enum {
    OPT_BIND = 1, OPT_ADVERTISE, OPT_SEED, OPT_INTERVAL, OPT_MAX_MESSAGE,
    OPT_BANDWIDTH,
    OPT_THRESHOLD, OPT_CLUSTER, OPT_SET, OPT_KEY_FILE, OPT_WIRE,
    OPT_LOG_LEVEL, OPT_CONTROL, OPT_NO_CONTROL, OPT_HTTP, OPT_HANDLER,
    OPT_HANDLER_TIMEOUT, OPT_CONFIG, OPT_HELP
};

static const struct option agent_opts[] = {
    { "bind", required_argument, NULL, OPT_BIND },
    { "advertise", required_argument, NULL, OPT_ADVERTISE },
    { "seed", required_argument, NULL, OPT_SEED },
    { "interval", required_argument, NULL, OPT_INTERVAL },
    { "max-message-size", required_argument, NULL, OPT_MAX_MESSAGE },
    { "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
    { "threshold", required_argument, NULL, OPT_THRESHOLD },
    { "cluster", required_argument, NULL, OPT_CLUSTER },
    { "set", required_argument, NULL, OPT_SET },
    { "key-file", required_argument, NULL, OPT_KEY_FILE },
    { "wire", required_argument, NULL, OPT_WIRE },
    { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
    { "control", required_argument, NULL, OPT_CONTROL },
    { "no-control", no_argument, NULL, OPT_NO_CONTROL },
    { "http", required_argument, NULL, OPT_HTTP },
    { "event-handler", required_argument, NULL, OPT_HANDLER },
    { "handler-timeout", required_argument, NULL, OPT_HANDLER_TIMEOUT },
    { "config", required_argument, NULL, OPT_CONFIG },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
};

/* What --config may set: every flag but --config and --help. */
static const config_key agent_config_keys[] = {
    { "bind", OPT_BIND, CONFIG_STRING },
    { "advertise", OPT_ADVERTISE, CONFIG_STRING },
    { "seed", OPT_SEED, CONFIG_LIST },
    { "interval", OPT_INTERVAL, CONFIG_NUMBER },
    { "max-message-size", OPT_MAX_MESSAGE, CONFIG_NUMBER },
    { "bandwidth", OPT_BANDWIDTH, CONFIG_NUMBER },
    { "threshold", OPT_THRESHOLD, CONFIG_NUMBER },
    { "cluster", OPT_CLUSTER, CONFIG_STRING },
    { "set", OPT_SET, CONFIG_LIST },
    { "key-file", OPT_KEY_FILE, CONFIG_LIST },
    { "wire", OPT_WIRE, CONFIG_STRING },
    { "log-level", OPT_LOG_LEVEL, CONFIG_STRING },
    { "control", OPT_CONTROL, CONFIG_STRING },
    { "no-control", OPT_NO_CONTROL, CONFIG_FLAG },
    { "http", OPT_HTTP, CONFIG_STRING },
    { "event-handler", OPT_HANDLER, CONFIG_LIST },
    { "handler-timeout", OPT_HANDLER_TIMEOUT, CONFIG_NUMBER },
    { NULL, 0, 0 },
};

/* A repeatable flag's values; those of the command line replace the
 * config file's. */
typedef struct agent_list {
    const char **v;
    size_t n, max;
    bool from_flags;
} agent_list;

typedef struct agent_settings {
    sb_config cfg;
    const char *seeds[AGENT_MAX_SEEDS], *sets[MAX_SETS];
    const char *key_files[SB_MAX_KEYS], *handlers[HANDLER_MAX];
    agent_list seed, set, key_file, handler;
    const char *control, *http;
    bool no_control;
    int control_from;          /* -1, or from_file when control or
                                  no_control was last set */
    uint32_t handler_timeout_ms;
    bool from_file;            /* applying the config file's settings */
} agent_settings;

static const char *agent_append(agent_settings *s, agent_list *l,
                                const char *value, const char *full)
{
    if (!s->from_file && !l->from_flags) {
        l->n = 0;
        l->from_flags = true;
    }
    if (l->n == l->max)
        return full;
    l->v[l->n++] = value;
    return NULL;
}

/* Whether `v` is UTF-8 text, which the ready line and `info` can show. */
static bool agent_utf8(const char *v)
{
    json_t *j = json_string(v);
    json_decref(j);
    return j != NULL;
}

/* Takes one setting, from a flag or the config file; NULL, or why not. */
static const char *agent_setting(void *ctx, int id, const char *v)
{
    agent_settings *s = ctx;
    sb_config *cfg = &s->cfg;
    uint32_t u;
    unsigned events;
    const char *command, *why;
    /* settings are text, shown as given (a --set value may be bytes: it
     * is shown as base64; a key file's path is never shown) */
    if (v && id != OPT_SET && id != OPT_KEY_FILE && !agent_utf8(v))
        return "not UTF-8 text";
    switch (id) {
    case OPT_BIND:
        cfg->bind = v;
        return NULL;
    case OPT_ADVERTISE:
        cfg->advertise = v;
        return NULL;
    case OPT_SEED:
        return agent_append(s, &s->seed, v, "at most 64");
    case OPT_INTERVAL:
        return parse_u32(v, 1, 3600000, &cfg->interval_ms)
                   ? NULL : "1 to 3600000 ms";
    case OPT_MAX_MESSAGE:
        if (!parse_u32(v, 64, 65507, &u))
            return "64 to 65507";
        cfg->max_message_size = u;
        return NULL;
    case OPT_BANDWIDTH:
        return parse_u32(v, 1, UINT32_MAX, &cfg->bandwidth)
                   ? NULL : "1 to 4294967295 bytes a second";
    case OPT_THRESHOLD:
        return parse_double(v, &cfg->phi_threshold) &&
                       cfg->phi_threshold >= 1
                   ? NULL : "a number >= 1";
    case OPT_CLUSTER:
        cfg->cluster = v;
        return NULL;
    case OPT_SET:
        if (!strchr(v, '=') || v[0] == '=')
            return "KEY=VALUE";
        return agent_append(s, &s->set, v, "at most 256");
    case OPT_KEY_FILE:
        return agent_append(s, &s->key_file, v, "at most 8");
    case OPT_WIRE:
        return parse_wire(v, &cfg->wire) ? NULL
                                         : "scuttlebutt or reference";
    case OPT_LOG_LEVEL:
        return parse_log_level(v, &cfg->log_level)
                   ? NULL : "error, warn, info or debug";
    case OPT_CONTROL:
    case OPT_NO_CONTROL:
        /* flags win over the file, but one source takes one of the two */
        if (s->control_from == s->from_file &&
            s->no_control != (id == OPT_NO_CONTROL))
            return "--control and --no-control: one or the other";
        if (id == OPT_CONTROL &&
            (!*v || v[strlen(v) - 1] == '/')) /* else its directory is made */
            return "a path to a socket, not a directory";
        s->control = id == OPT_CONTROL ? v : NULL;
        s->no_control = id == OPT_NO_CONTROL;
        s->control_from = s->from_file;
        return NULL;
    case OPT_HTTP:
        s->http = v;
        return NULL;
    case OPT_HANDLER:
        why = handlers_parse(v, &events, &command);
        return why ? why : agent_append(s, &s->handler, v, "at most 16");
    case OPT_HANDLER_TIMEOUT:
        return parse_u32(v, 1, 86400000, &s->handler_timeout_ms)
                   ? NULL : "1 to 86400000 ms";
    }
    return "?";
}

/* Reads the flags (and the config file they name) into s; the config
 * document, kept while its strings are used, into *doc. -1, or the exit
 * status. */
static int agent_parse(int argc, char **argv, agent_settings *s,
                       json_t **doc)
{
    sb_config_init(&s->cfg);
    s->seed = (agent_list){ s->seeds, 0, AGENT_MAX_SEEDS, false };
    s->set = (agent_list){ s->sets, 0, MAX_SETS, false };
    s->key_file = (agent_list){ s->key_files, 0, SB_MAX_KEYS, false };
    s->handler = (agent_list){ s->handlers, 0, HANDLER_MAX, false };
    s->handler_timeout_ms = HANDLER_TIMEOUT_MS;
    s->control_from = -1;
    int c;
    const char *config = NULL;
    opterr = 0; /* first --help and --config; the rest after */
    optind = 1;
    while ((c = getopt_long(argc, argv, "", agent_opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage, stdout);
            return 0;
        }
        if (c == OPT_CONFIG && config)
            return usage_error(usage, "--config: one file at most");
        if (c == OPT_CONFIG)
            config = optarg;
    }
    if (config) {
        s->from_file = true;
        *doc = config_load("agent", config, agent_config_keys, agent_setting,
                           s);
        s->from_file = false;
        if (!*doc)
            return 2;
    }
    opterr = 1;
    optind = 1;
    int idx;
    while ((c = getopt_long(argc, argv, "", agent_opts, &idx)) != -1) {
        if (c == '?' || c == ':')
            return usage_error(usage, NULL);
        if (c == OPT_CONFIG)
            continue;
        const char *why = agent_setting(s, c, optarg);
        if (why) {
            char msg[256];
            snprintf(msg, sizeof(msg), "--%s: %s", agent_opts[idx].name, why);
            return usage_error(usage, msg);
        }
    }
    if (optind < argc)
        return usage_error(usage, "unexpected argument");
    if (!s->cfg.bind)
        return usage_error(usage, "--bind is required");
    return -1;
}

/* ---- main ---------------------------------------------------------------- */

/* Publishes the --set keys; false after saying why not. */
static bool agent_publish_sets(agent *a, const agent_list *sets)
{
    for (size_t i = 0; i < sets->n; i++) {
        const char *eq = strchr(sets->v[i], '=');
        size_t klen = (size_t)(eq - sets->v[i]);
        int rc = klen > 255 ? SB_EINVAL
                            : sb_node_set(a->node, sets->v[i], klen, eq + 1,
                                          strlen(eq + 1));
        if (rc != SB_OK) {
            fprintf(stderr, "scuttlebutt agent: --set %.*s: %s\n",
                    (int)klen, sets->v[i],
                    klen > 255 ? "key too long" : sb_strerror(rc));
            return false;
        }
    }
    return true;
}

/* Opens the control socket (at --control, or the default path); false
 * after saying why not. */
static bool agent_open_control(agent *a, const agent_settings *s,
                               char *path, size_t size)
{
    if (s->no_control)
        return true;
    if (s->control) {
        snprintf(path, size, "%s", s->control);
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", s->control);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                fprintf(stderr, "scuttlebutt agent: --control %s: %s: %s\n",
                        s->control, dir, strerror(errno));
                return false;
            }
        }
    } else {
        char dir[4096], err[4200];
        if (!rundir_dir(dir, sizeof(dir)) ||
            !rundir_socket(sb_node_bind_addr(a->node), path, size)) {
            fprintf(stderr, "scuttlebutt agent: the control socket's path is "
                    "too long; give --control PATH\n");
            return false;
        }
        if (!rundir_make(dir, err, sizeof(err))) {
            fprintf(stderr, "scuttlebutt agent: control socket: %s\n", err);
            return false;
        }
    }
    if (!control_open(a, path, &a->control))
        return false;
    a->control_path = path;
    return true;
}

/* Runs until the exit is due; false if poll() fails. */
static bool agent_loop(agent *a)
{
    loop l;
    while (!a->exit_at || mono_ms() < a->exit_at) {
        loop_reset(&l);
        int node_slot = loop_add(&l, sb_node_fd(a->node), POLLIN);
        int sig_slot = loop_add(&l, signal_pipe[0], POLLIN);
        /* stdin is read again once the lines it gave have all run */
        bool lines_left = agent_lines_left(a);
        int in_slot = a->stdin_open && !lines_left
                          ? loop_add(&l, STDIN_FILENO, POLLIN)
                          : -1;
        if (lines_left)
            loop_wake_at(&l, mono_ms());
        int t = sb_node_timeout_ms(a->node);
        if (t >= 0)
            loop_wake_at(&l, mono_ms() + (uint64_t)t);
        if (a->exit_at)
            loop_wake_at(&l, a->exit_at);
        control_add(a->control, &l);
        output_add(&a->out, &l);
        handlers_add(a->handlers, &l);
        http_add(a->http, &l);
        if (poll(l.fds, (nfds_t)l.n, loop_timeout(&l)) < 0 && errno != EINTR) {
            perror("scuttlebutt agent: poll");
            return false;
        }
        (void)node_slot; /* sb_node_process() reads what it has */
        if (loop_revents(&l, sig_slot) & POLLIN) {
            char sigs[16];
            ssize_t n;
            bool stop = false;
            while ((n = read(signal_pipe[0], sigs, sizeof(sigs))) > 0)
                for (ssize_t i = 0; i < n; i++)
                    stop |= sigs[i] != SIGCHLD;
            if (stop)
                agent_shut_down(a);
        }
        if (lines_left)
            agent_run_lines(a);
        else if (loop_revents(&l, in_slot) & (POLLIN | POLLHUP | POLLERR))
            agent_read_commands(a);
        control_process(a->control, &l);
        output_process(a, &a->out, &l);
        sb_node_process(a->node);
        handlers_process(a->handlers, &l);
        http_process(a->http, &l);
    }
    return true;
}

static void agent_free(agent *a)
{
    output_drain(a, &a->out, 1000); /* the last lines, if stdout takes them */
    output_free(&a->out);
    control_close(a->control);
    http_close(a->http);
    handlers_free(a->handlers);
    sb_node_free(a->node);
    members_free(a);
    sodium_memzero(a->keys, sizeof(a->keys));
}

int agent_main(int argc, char **argv)
{
    static agent_settings s;   /* large: off the stack */
    static agent a;
    memset(&s, 0, sizeof(s));
    memset(&a, 0, sizeof(a));
    json_t *doc = NULL;
    int rc = agent_parse(argc, argv, &s, &doc);
    if (rc >= 0) {
        json_decref(doc);
        return rc;
    }
    /* closed standard descriptors would be reused by the socket, and
     * stdin would read datagrams: hold them open on /dev/null */
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 &&
            open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
            return 1;
    for (size_t i = 0; i < s.key_file.n; i++) {
        bool read = agent_read_key_file(s.key_file.v[i], a.keys[i]);
        size_t j = 0; /* a keyring holds each key once */
        while (read && j < i &&
               sodium_memcmp(a.keys[i], a.keys[j], SB_KEY_SIZE) != 0)
            j++;
        bool again = read && j < i;
        if (again)
            fprintf(stderr, "scuttlebutt agent: --key-file %s: the same "
                    "key as %s\n", s.key_file.v[i], s.key_file.v[j]);
        if (!read || again) {
            sodium_memzero(a.keys, sizeof(a.keys));
            json_decref(doc);
            return 2;
        }
    }
    a.nkeys = s.key_file.n;
    a.cfg = s.cfg;
    a.cfg.keys = a.keys[0];
    a.cfg.nkeys = a.nkeys;
    memcpy(a.seeds, s.seeds, sizeof(a.seeds));
    a.cfg.seeds = a.seeds;
    a.cfg.nseeds = s.seed.n;
    a.cfg.embedded = true;
    a.cfg.on_join = a.cfg.on_leave = a.cfg.on_update = a.cfg.on_delete =
        agent_on_event;
    a.cfg.userdata = &a;
    a.cfg.log = sb_log_stderr;
    a.start_ms = mono_ms();
    a.stdin_open = true;
    a.handler_timeout_ms = s.handler_timeout_ms;
    a.handlers = handlers_new(&a, s.handler.v, s.handler.n);
    rc = a.handlers ? sb_node_new(&a.cfg, &a.node) : SB_ENOMEM;
    a.cfg.keys = NULL; /* the node has them; `info` never shows them */
    if (rc != SB_OK) {
        /* a value the node refused (the library's line above names its
         * field) is a bad setting: exit 2, as for those refused here */
        bool setting = rc == SB_ECONFIG || rc == SB_EADDR;
        fprintf(stderr, "scuttlebutt agent: %s%s\n", sb_strerror(rc),
                setting ? " (a setting was refused: see above)" : "");
        agent_free(&a);
        json_decref(doc);
        return setting ? 2 : 1;
    }
    static char control_path[4200];
    int exit_code = 0;
    if (!agent_publish_sets(&a, &s.set) ||
        !agent_open_control(&a, &s, control_path, sizeof(control_path)))
        exit_code = 2;
    else if (s.http)
        exit_code = http_open(&a, s.http, &a.http);
    if (exit_code == 0 && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("scuttlebutt agent: pipe");
        exit_code = 1;
    }
    if (exit_code != 0) {
        agent_free(&a);
        json_decref(doc);
        return exit_code;
    }
    struct sigaction sa = { .sa_handler = agent_on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* not a SIGHUP that came ignored: nohup (or a shell's disown) asked
     * the agent to outlive its terminal, as it did before SIGHUP left */
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        sigaction(SIGHUP, &sa, NULL);
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    json_t *ready = json_pack("{ssss}", "event", "ready", "addr",
                              sb_node_addr(a.node));
    if (a.control_path)
        json_object_set_new(ready, "control", json_string(a.control_path));
    if (a.http)
        json_object_set_new(ready, "http", json_string(a.http_addr));
    agent_print(&a, ready);

    exit_code = agent_loop(&a) ? 0 : 1;
    agent_free(&a);
    json_decref(doc);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    return exit_code;
}
