/*
 * `scuttlebutt agent`: one cluster member as a process.
 *
 * stdout: one JSON object per line, flushed per line (ready, then events).
 * stdin: one command per line, one JSON reply line each.
 * SIGINT, SIGTERM and `quit`: graceful leave, a few rounds for it to
 * spread, exit 0. End of stdin is not an exit.
 *
 * Single-threaded: the node is embedded and driven by the agent's poll()
 * loop, which also watches stdin and a signal pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "json.h"
#include "scuttlebutt.h"

#define MAX_LINE 65536
#define MAX_SETS 256
#define LEAVE_ROUNDS 5 /* rounds between a leave and the exit ... */
#define LEAVE_MAX_MS 2000 /* ... but no longer than this */

static const char usage[] =
"usage: scuttlebutt agent --bind HOST:PORT [--advertise HOST:PORT]\n"
"                         [--seed HOST:PORT]... [--interval MS]\n"
"                         [--max-message-size BYTES] [--threshold PHI]\n"
"                         [--cluster NAME] [--set KEY=VALUE]...\n"
"                         [--key-file PATH]... [--wire FORMAT]\n"
"                         [--log-level LEVEL]\n"
"\n"
"Runs one cluster member until SIGINT, SIGTERM or `quit`, which leave the\n"
"cluster gracefully and exit 0.\n"
"\n"
"  --bind HOST:PORT          address to bind (port 0: any); required\n"
"  --advertise HOST:PORT     numeric address peers reach us at (default:\n"
"                            the bound one; needed when binding 0.0.0.0)\n"
"  --seed HOST:PORT          a seed (a name or an address); repeatable\n"
"  --interval MS             gossip interval (default 500)\n"
"  --max-message-size BYTES  UDP payload limit (default 512)\n"
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
"  --help                    this text\n"
"\n"
"stdout, one JSON object per line:\n"
"  {\"event\":\"ready\",\"addr\":\"HOST:PORT\"}                 first\n"
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
"  peers             other members: {\"ok\":true,\"peers\":[{\"addr\":A,\"status\":S}]}\n"
"  stats             the node's counters: {\"ok\":true,\"stats\":{\"packets_in\":N,\n"
"                    ...,\"drops\":{REASON:N,...},\"members\":{STATUS:N,...}}}\n"
"                    (a drop reason for every one the library has)\n"
"  leave             leave the cluster gracefully, keep running\n"
"  key install HEX   install a cluster key (64 hex characters)\n"
"  key use HEX       make an installed key the one that seals\n"
"  key remove HEX    remove a key that does not seal\n"
"  quit              leave, then exit 0\n"
"Blank lines are ignored. End of stdin does not stop the agent.\n";

static uint64_t start_ms;
static int signal_pipe[2] = { -1, -1 };

static uint64_t agent_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void agent_on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    ssize_t w = write(signal_pipe[1], &c, 1);
    (void)w;
    errno = saved;
}

/* ---- output --------------------------------------------------------------- */

static void agent_end_line(void)
{
    fputs("}\n", stdout);
    fflush(stdout);
}

static void agent_print_event(void *userdata, const sb_event *ev)
{
    (void)userdata;
    static const char *const kinds[] = { "", "join", "leave", "update",
                                         "delete" };
    printf("{\"event\":\"%s\",", kinds[ev->type]);
    json_field(stdout, "peer", ev->addr, strlen(ev->addr));
    if (ev->type == SB_EVENT_LEAVE)
        printf(",\"status\":\"%s\"", sb_status_name(ev->status));
    if (ev->key) {
        fputc(',', stdout);
        json_field(stdout, "key", ev->key, ev->key_len);
    }
    if (ev->value) {
        fputc(',', stdout);
        json_field(stdout, "value", ev->value, ev->value_len);
    }
    printf(",\"time_ms\":%llu",
           (unsigned long long)(agent_mono_ms() - start_ms));
    agent_end_line();
}

static void agent_reply_ok(void)
{
    fputs("{\"ok\":true", stdout);
    agent_end_line();
}

static void agent_reply_error(const char *msg)
{
    fputs("{\"ok\":false,\"error\":", stdout);
    json_string(stdout, msg, strlen(msg));
    agent_end_line();
}

static void agent_reply_code(int rc)
{
    if (rc == SB_OK) {
        agent_reply_ok();
        return;
    }
    char msg[128];
    snprintf(msg, sizeof(msg), "%s: %s", sb_err_name(rc), sb_strerror(rc));
    agent_reply_error(msg);
}

/* ---- commands --------------------------------------------------------------- */

typedef struct agent {
    sb_node *node;
    uint32_t interval_ms;
    uint64_t exit_at;          /* 0, or when to exit after leaving */
    char line[MAX_LINE + 1];
    size_t used;
    bool overlong;             /* discarding the rest of a long line */
    bool stdin_open;
} agent;

/* Leaves (if not yet) and schedules the exit a few rounds later, or at
 * once when asked a second time. */
static void agent_shut_down(agent *a)
{
    if (a->exit_at) {
        a->exit_at = agent_mono_ms();
        return;
    }
    if (sb_node_leave(a->node) == SB_ESTATE) { /* reference: no leave */
        a->exit_at = agent_mono_ms();
        return;
    }
    uint64_t linger = (uint64_t)LEAVE_ROUNDS * a->interval_ms;
    a->exit_at =
        agent_mono_ms() + (linger < LEAVE_MAX_MS ? linger : LEAVE_MAX_MS);
}

/* Splits the next space-separated word off *s; NULL at the end. */
static char *agent_word(char **s)
{
    while (**s == ' ')
        (*s)++;
    if (!**s)
        return NULL;
    char *w = *s;
    char *end = strchr(w, ' ');
    if (end) {
        *end = '\0';
        *s = end + 1;
    } else {
        *s = w + strlen(w);
    }
    return w;
}

static void agent_cmd_get(agent *a, char *rest)
{
    char *peer = agent_word(&rest), *key = agent_word(&rest);
    if (!peer || !key || agent_word(&rest)) {
        agent_reply_error("usage: get PEER KEY");
        return;
    }
    char *value;
    size_t len;
    int rc = sb_node_get(a->node, peer, key, strlen(key), &value, &len);
    if (rc != SB_OK) {
        agent_reply_code(rc);
        return;
    }
    fputs("{\"ok\":true,", stdout);
    json_field(stdout, "value", value, len);
    agent_end_line();
    sb_free(value);
}

static void agent_cmd_peers(agent *a)
{
    sb_member *m;
    size_t n;
    int rc = sb_node_members(a->node, &m, &n);
    if (rc != SB_OK) {
        agent_reply_code(rc);
        return;
    }
    fputs("{\"ok\":true,\"peers\":[", stdout);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (m[i].self)
            continue;
        fputs(first ? "{" : ",{", stdout);
        first = false;
        json_field(stdout, "addr", m[i].addr, strlen(m[i].addr));
        printf(",\"status\":\"%s\"}", sb_status_name(m[i].status));
    }
    fputc(']', stdout);
    agent_end_line();
    sb_free(m);
}

/* The node's counters, drops by reason and members by status named as
 * the library names them. */
static void agent_cmd_stats(agent *a)
{
    sb_stats st;
    int rc = sb_node_stats(a->node, &st);
    if (rc != SB_OK) {
        agent_reply_code(rc);
        return;
    }
    printf("{\"ok\":true,\"stats\":{\"packets_in\":%llu,\"bytes_in\":%llu,"
           "\"packets_out\":%llu,\"bytes_out\":%llu,\"rounds\":%llu,"
           "\"pushes\":%llu,\"pushes_over_budget\":%llu,"
           "\"send_errors\":%llu,\"drops\":{",
           (unsigned long long)st.packets_in, (unsigned long long)st.bytes_in,
           (unsigned long long)st.packets_out,
           (unsigned long long)st.bytes_out, (unsigned long long)st.rounds,
           (unsigned long long)st.pushes,
           (unsigned long long)st.pushes_over_budget,
           (unsigned long long)st.send_errors);
    for (int r = 0; r < SB_DROP_COUNT; r++)
        printf("%s\"%s\":%llu", r ? "," : "",
               sb_drop_name((sb_drop_reason)r),
               (unsigned long long)st.drops[r]);
    fputs("},\"members\":{", stdout);
    static const sb_status statuses[] = { SB_STATUS_JOINING, SB_STATUS_LIVE,
                                          SB_STATUS_DOWN, SB_STATUS_LEFT };
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        printf("%s\"%s\":%u", i ? "," : "", sb_status_name(statuses[i]),
               st.members[statuses[i]]);
    fputs("}}", stdout);
    agent_end_line();
}

/* Decodes exactly 64 hex characters into a key. */
static bool agent_hex_key(const char *hex, size_t len, uint8_t key[SB_KEY_SIZE])
{
    size_t got = 0;
    const char *end = NULL;
    return len == 2 * SB_KEY_SIZE &&
           sodium_hex2bin(key, SB_KEY_SIZE, hex, len, NULL, &got, &end) == 0 &&
           got == SB_KEY_SIZE && end == hex + len;
}

static void agent_cmd_key(agent *a, char *rest)
{
    static const char use[] = "usage: key install|use|remove HEX";
    char *op = agent_word(&rest), *hex = agent_word(&rest);
    uint8_t key[SB_KEY_SIZE];
    if (!op || !hex || agent_word(&rest)) {
        agent_reply_error(use);
        return;
    }
    if (!agent_hex_key(hex, strlen(hex), key)) {
        agent_reply_error("a key is 64 hex characters");
        return;
    }
    int rc;
    if (strcmp(op, "install") == 0)
        rc = sb_node_key_install(a->node, key);
    else if (strcmp(op, "use") == 0)
        rc = sb_node_key_use(a->node, key);
    else if (strcmp(op, "remove") == 0)
        rc = sb_node_key_remove(a->node, key);
    else
        rc = 1;
    sodium_memzero(key, sizeof(key));
    sodium_memzero(hex, strlen(hex));
    if (rc == 1)
        agent_reply_error(use);
    else
        agent_reply_code(rc);
}

/* Reads a --key-file: 32 raw bytes, or 64 hex characters and whitespace
 * around them. 32 bytes of printable text are refused: that is a short
 * password or half a hex key, not 32 random bytes. Prints why not and
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
    size_t len = fread(buf, 1, sizeof(buf), f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    bool ok = false, text = true;
    for (size_t i = 0; i < len && i < SB_KEY_SIZE; i++)
        text = text && buf[i] >= 0x20 && buf[i] < 0x7f;
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
        ok = agent_hex_key(buf + b, e - b, key);
    }
    sodium_memzero(buf, sizeof(buf));
    if (!ok)
        fprintf(stderr, "scuttlebutt agent: --key-file %s: %s\n", path, why);
    return ok;
}

static void agent_command(agent *a, char *line)
{
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r')
        line[--len] = '\0';
    char *rest = line;
    char *cmd = agent_word(&rest);
    if (!cmd)
        return; /* blank */
    if (strcmp(cmd, "set") == 0) {
        char *key = agent_word(&rest);
        if (!key) {
            agent_reply_error("usage: set KEY VALUE");
            return;
        }
        agent_reply_code(
            sb_node_set(a->node, key, strlen(key), rest, strlen(rest)));
    } else if (strcmp(cmd, "del") == 0) {
        char *key = agent_word(&rest);
        if (!key || agent_word(&rest)) {
            agent_reply_error("usage: del KEY");
            return;
        }
        agent_reply_code(sb_node_del(a->node, key, strlen(key)));
    } else if (strcmp(cmd, "get") == 0) {
        agent_cmd_get(a, rest);
    } else if (strcmp(cmd, "peers") == 0) {
        agent_cmd_peers(a);
    } else if (strcmp(cmd, "stats") == 0) {
        agent_cmd_stats(a);
    } else if (strcmp(cmd, "leave") == 0) {
        agent_reply_code(sb_node_leave(a->node));
    } else if (strcmp(cmd, "key") == 0) {
        agent_cmd_key(a, rest);
    } else if (strcmp(cmd, "quit") == 0) {
        agent_reply_ok();
        agent_shut_down(a);
    } else {
        agent_reply_error("unknown command (set, del, get, peers, stats, "
                          "leave, key, quit)");
    }
}

/* Reads what stdin has and runs every complete line. */
static void agent_read_commands(agent *a)
{
    ssize_t got = read(STDIN_FILENO, a->line + a->used, MAX_LINE - a->used);
    if (got <= 0) {
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
            a->stdin_open = false;
            if (a->used && !a->overlong) { /* a last line, no newline */
                a->line[a->used] = '\0';
                if (memchr(a->line, '\0', a->used))
                    agent_reply_error("NUL byte in command");
                else
                    agent_command(a, a->line);
            }
            a->used = 0;
        }
        return;
    }
    a->used += (size_t)got;
    for (;;) {
        char *nl = memchr(a->line, '\n', a->used);
        if (!nl) {
            if (a->used == MAX_LINE) { /* no newline in sight */
                if (!a->overlong)
                    agent_reply_error("line too long");
                a->overlong = true;
                a->used = 0;
            }
            return;
        }
        *nl = '\0';
        if (a->overlong)
            a->overlong = false; /* the end of the long line */
        else if (memchr(a->line, '\0', (size_t)(nl - a->line)))
            agent_reply_error("NUL byte in command");
        else
            agent_command(a, a->line);
        size_t consumed = (size_t)(nl - a->line) + 1;
        memmove(a->line, nl + 1, a->used - consumed);
        a->used -= consumed;
    }
}

/* ---- main ------------------------------------------------------------------- */

int agent_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "bind", required_argument, NULL, 'b' },
        { "advertise", required_argument, NULL, 'a' },
        { "seed", required_argument, NULL, 's' },
        { "interval", required_argument, NULL, 'i' },
        { "max-message-size", required_argument, NULL, 'm' },
        { "threshold", required_argument, NULL, 't' },
        { "cluster", required_argument, NULL, 'c' },
        { "set", required_argument, NULL, 'k' },
        { "key-file", required_argument, NULL, 'K' },
        { "wire", required_argument, NULL, 'w' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    sb_config cfg;
    sb_config_init(&cfg);
    const char *seeds[64];
    const char *sets[MAX_SETS];
    size_t nsets = 0;
    const char *key_files[SB_MAX_KEYS];
    size_t nkey_files = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            cfg.bind = optarg;
            break;
        case 'a':
            cfg.advertise = optarg;
            break;
        case 's':
            if (cfg.nseeds == 64)
                return usage_error(usage, "at most 64 --seed");
            seeds[cfg.nseeds++] = optarg;
            break;
        case 'i':
            if (!parse_u32(optarg, 1, 3600000, &cfg.interval_ms))
                return usage_error(usage, "--interval: 1 to 3600000 ms");
            break;
        case 'm': {
            uint32_t v;
            if (!parse_u32(optarg, 64, 65507, &v))
                return usage_error(usage, "--max-message-size: 64 to 65507");
            cfg.max_message_size = v;
            break;
        }
        case 't':
            if (!parse_double(optarg, &cfg.phi_threshold) ||
                !(cfg.phi_threshold >= 1))
                return usage_error(usage, "--threshold: a number >= 1");
            break;
        case 'c':
            cfg.cluster = optarg;
            break;
        case 'k':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return usage_error(usage, "--set: KEY=VALUE");
            if (nsets == MAX_SETS)
                return usage_error(usage, "too many --set");
            sets[nsets++] = optarg;
            break;
        case 'K':
            if (nkey_files == SB_MAX_KEYS)
                return usage_error(usage, "at most 8 --key-file");
            key_files[nkey_files++] = optarg;
            break;
        case 'w':
            if (!parse_wire(optarg, &cfg.wire))
                return usage_error(usage, "--wire: scuttlebutt or reference");
            break;
        case 'l':
            if (!parse_log_level(optarg, &cfg.log_level))
                return usage_error(usage,
                                   "--log-level: error, warn, info or debug");
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return usage_error(usage, NULL);
        }
    }
    if (optind < argc)
        return usage_error(usage, "unexpected argument");
    if (!cfg.bind)
        return usage_error(usage, "--bind is required");

    /* closed standard descriptors would be reused by the socket, and
     * stdin would read datagrams: hold them open on /dev/null */
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 &&
            open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
            return 1;
    uint8_t keys[SB_MAX_KEYS * SB_KEY_SIZE];
    for (size_t i = 0; i < nkey_files; i++)
        if (!agent_read_key_file(key_files[i], keys + i * SB_KEY_SIZE)) {
            sodium_memzero(keys, sizeof(keys));
            return 2;
        }
    cfg.keys = keys;
    cfg.nkeys = nkey_files;
    start_ms = agent_mono_ms();
    cfg.seeds = seeds;
    cfg.embedded = true;
    cfg.on_join = cfg.on_leave = cfg.on_update = cfg.on_delete =
        agent_print_event;
    cfg.log = sb_log_stderr;
    agent a = { .interval_ms = cfg.interval_ms, .stdin_open = true };
    int rc = sb_node_new(&cfg, &a.node);
    sodium_memzero(keys, sizeof(keys));
    if (rc != SB_OK) {
        fprintf(stderr, "scuttlebutt agent: %s\n", sb_strerror(rc));
        return 1;
    }
    for (size_t i = 0; i < nsets; i++) {
        char *eq = strchr(sets[i], '=');
        char key[256];
        size_t klen = (size_t)(eq - sets[i]);
        if (klen >= sizeof(key)) {
            fprintf(stderr, "scuttlebutt agent: --set %s: key too long\n",
                    sets[i]);
            sb_node_free(a.node);
            return 2;
        }
        memcpy(key, sets[i], klen);
        key[klen] = '\0';
        rc = sb_node_set(a.node, key, strlen(key), eq + 1, strlen(eq + 1));
        if (rc != SB_OK) {
            fprintf(stderr, "scuttlebutt agent: --set %s: %s\n", key,
                    sb_strerror(rc));
            sb_node_free(a.node);
            return 2;
        }
    }

    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("scuttlebutt agent: pipe");
        sb_node_free(a.node);
        return 1;
    }
    struct sigaction sa = { .sa_handler = agent_on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    fputs("{\"event\":\"ready\",", stdout);
    json_field(stdout, "addr", sb_node_addr(a.node),
               strlen(sb_node_addr(a.node)));
    agent_end_line();

    while (!a.exit_at || agent_mono_ms() < a.exit_at) {
        struct pollfd p[3] = {
            { sb_node_fd(a.node), POLLIN, 0 },
            { signal_pipe[0], POLLIN, 0 },
            { a.stdin_open ? STDIN_FILENO : -1, POLLIN, 0 },
        };
        int timeout = sb_node_timeout_ms(a.node);
        if (a.exit_at) {
            uint64_t now = agent_mono_ms();
            int left = a.exit_at > now ? (int)(a.exit_at - now) : 0;
            if (left < timeout)
                timeout = left;
        }
        if (poll(p, 3, timeout) < 0 && errno != EINTR) {
            perror("scuttlebutt agent: poll");
            sb_node_free(a.node);
            return 1;
        }
        if (p[1].revents & POLLIN) {
            char drain[16];
            while (read(signal_pipe[0], drain, sizeof(drain)) > 0)
                ;
            agent_shut_down(&a);
        }
        if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
            agent_read_commands(&a);
        sb_node_process(a.node);
    }
    sb_node_free(a.node);
    return 0;
}
