/* The agent's commands (see commands.h). */
#define _GNU_SOURCE
#include "commands.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "control.h"
#include "handlers.h"
#include "loop.h"
#include "members.h"

#define MAX_FIELDS 2

typedef struct arg {
    const char *p;             /* NULL: not given; else NUL-terminated */
    size_t len;
} arg;

typedef json_t *(*command_fn)(agent *a, const arg *args);

typedef struct command {
    const char *name;
    const char *fields[MAX_FIELDS]; /* names in JSON, order on stdin */
    int min;                   /* fields required */
    bool rest;                 /* the last field is the rest of the line */
    const char *usage;
    command_fn fn;
} command;

json_t *commands_error(const char *msg)
{
    return json_pack("{sbss}", "ok", 0, "error", msg);
}

static json_t *commands_ok(void)
{
    return json_pack("{sb}", "ok", 1);
}

static json_t *commands_code(int rc)
{
    if (rc == SB_OK)
        return commands_ok();
    char msg[128];
    snprintf(msg, sizeof(msg), "%s: %s", sb_err_name(rc), sb_strerror(rc));
    return commands_error(msg);
}

/* ---- the commands -------------------------------------------------------- */

/* An error of set or del: its code first, as every error's, then what
 * was wrong with the key or value where the code alone would not tell
 * (sb_node_set()). */
static json_t *commands_key_error(agent *a, int rc, const arg *key,
                                  size_t value_len)
{
    char why[128];
    size_t max;
    if (rc == SB_EINVAL && (key->len == 0 || key->len > 255))
        snprintf(why, sizeof(why), "a key is 1 to 255 bytes, not %zu",
                 key->len);
    else if (rc == SB_EINVAL && key->p[0] == '\0')
        snprintf(why, sizeof(why), "a key that starts with a NUL byte is "
                 "the protocol's own");
    else if (rc == SB_ETOOBIG &&
             sb_node_max_value(a->node, key->len, &max) == SB_OK)
        snprintf(why, sizeof(why), "a value of %zu bytes; with this key, "
                 "at most %zu travel in one message", value_len, max);
    else if (rc == SB_ETOOBIG)
        snprintf(why, sizeof(why), "a key of %zu bytes does not travel in "
                 "one message", key->len);
    else
        return commands_code(rc);
    char msg[160];
    snprintf(msg, sizeof(msg), "%s: %s", sb_err_name(rc), why);
    return commands_error(msg);
}

static json_t *commands_set(agent *a, const arg *args)
{
    const char *value = args[1].p ? args[1].p : "";
    int rc = sb_node_set(a->node, args[0].p, args[0].len, value,
                         args[1].len);
    return rc == SB_OK ? commands_ok()
                       : commands_key_error(a, rc, &args[0], args[1].len);
}

static json_t *commands_del(agent *a, const arg *args)
{
    int rc = sb_node_del(a->node, args[0].p, args[0].len);
    return rc == SB_OK ? commands_ok()
                       : commands_key_error(a, rc, &args[0], 0);
}

/* Whether `addr` gives its host by number ("ip:port", "[ip6]:port"): a
 * name would be resolved inside the agent's loop, which a slow name
 * server could hold up for seconds (the node's gossip with it). */
static bool commands_numeric(const char *addr)
{
    char host[256];
    bool v6;
    uint32_t port;
    unsigned char bin[sizeof(struct in6_addr)];
    return parse_hostport(addr, 1, host, &v6, &port) &&
           inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) == 1;
}

static json_t *commands_get(agent *a, const arg *args)
{
    if (!commands_numeric(args[0].p))
        return commands_error("get: a peer is named by its address, "
                              "ip:port or [ip6]:port with a port 1 to "
                              "65535, not a host name");
    char *value;
    size_t len;
    int rc = sb_node_get(a->node, args[0].p, args[1].p, args[1].len, &value,
                         &len);
    if (rc != SB_OK)
        return commands_code(rc);
    json_t *r = commands_ok();
    json_set_bytes(r, "value", value, len);
    sb_free(value);
    return r;
}

static json_t *commands_peers(agent *a, const arg *args)
{
    (void)args;
    sb_member *m;
    size_t n;
    int rc = sb_node_members(a->node, &m, &n);
    if (rc != SB_OK)
        return commands_code(rc);
    json_t *peers = json_array();
    for (size_t i = 0; i < n; i++)
        if (!m[i].self)
            json_array_append_new(
                peers, json_pack("{ssss}", "addr", m[i].addr, "status",
                                 sb_status_name(m[i].status)));
    sb_free(m);
    json_t *r = commands_ok();
    json_object_set_new(r, "peers", peers);
    return r;
}

static json_t *commands_members(agent *a, const arg *args)
{
    int status = -1;
    if (args[0].p && !members_parse_status(args[0].p, &status))
        return commands_error("status: joining, live, down or left");
    json_t *list = members_json(a, status);
    if (!list)
        return commands_code(SB_ENOMEM);
    json_t *r = commands_ok();
    json_object_set_new(r, "members", list);
    return r;
}

json_t *commands_stats(agent *a)
{
    sb_stats st;
    if (sb_node_stats(a->node, &st) != SB_OK)
        return NULL;
    json_t *drops = json_object(), *members = json_object();
    json_t *held = json_object();
    for (int t = 0; t < SB_TRAFFIC_COUNT; t++)
        json_object_set_new(held, sb_traffic_name((sb_traffic)t),
                            json_integer((json_int_t)st.held_back[t]));
    for (int r = 0; r < SB_DROP_COUNT; r++)
        json_object_set_new(drops, sb_drop_name((sb_drop_reason)r),
                            json_integer((json_int_t)st.drops[r]));
    for (int s = SB_STATUS_JOINING; s <= SB_STATUS_LEFT; s++)
        json_object_set_new(members, sb_status_name((sb_status)s),
                            json_integer(st.members[s]));
    return json_pack("{sIsIsIsIsIsIsosIsIsIsIsIsIsIsoso}",
                     "packets_in", (json_int_t)st.packets_in,
                     "bytes_in", (json_int_t)st.bytes_in,
                     "packets_out", (json_int_t)st.packets_out,
                     "bytes_out", (json_int_t)st.bytes_out,
                     "rounds", (json_int_t)st.rounds,
                     "pushes", (json_int_t)st.pushes,
                     "held_back", held,
                     "send_errors", (json_int_t)st.send_errors,
                     "verdicts", (json_int_t)st.verdicts,
                     "verdicts_withheld", (json_int_t)st.verdicts_withheld,
                     "refuted", (json_int_t)st.refuted,
                     "sweeps", (json_int_t)st.sweeps,
                     "diffs", (json_int_t)st.diffs,
                     "ranges", (json_int_t)st.ranges,
                     "drops", drops, "members", members);
}

static json_t *commands_stats_cmd(agent *a, const arg *args)
{
    (void)args;
    json_t *st = commands_stats(a);
    if (!st)
        return commands_code(SB_ESTATE);
    json_t *r = commands_ok();
    json_object_set_new(r, "stats", st);
    return r;
}

/* The node's bandwidth cap as it applies: --bandwidth, or the default
 * (SB_BANDWIDTH_DEFAULT, or 24 datagrams if more: sb_config.bandwidth). */
static json_int_t commands_bandwidth(const agent *a)
{
    if (a->cfg.bandwidth)
        return a->cfg.bandwidth;
    json_int_t least = 24 * (json_int_t)(a->cfg.max_message_size +
                                         (a->nkeys ? SB_SEAL_OVERHEAD : 0));
    return least > SB_BANDWIDTH_DEFAULT ? least : SB_BANDWIDTH_DEFAULT;
}

static json_t *commands_config(const agent *a)
{
    static const char *const levels[] = { "error", "warn", "info", "debug" };
    json_t *seeds = json_array();
    for (size_t i = 0; i < a->cfg.nseeds; i++)
        json_array_append_new(seeds, json_string(a->cfg.seeds[i]));
    return json_pack(
        "{sssssssisIsIsfsosisssiso}",
        "bind", a->cfg.bind,
        "cluster", a->cfg.cluster ? a->cfg.cluster : "default",
        "wire", a->cfg.wire == SB_WIRE_REFERENCE ? "reference" : "scuttlebutt",
        "interval_ms", (int)a->cfg.interval_ms,
        "max_message_size", (json_int_t)a->cfg.max_message_size,
        "bandwidth", commands_bandwidth(a),
        "threshold", a->cfg.phi_threshold,
        "seeds", seeds,
        "keys", (int)a->nkeys, /* how many: the keys themselves never */
        "log_level", levels[a->cfg.log_level & 3],
        "handler_timeout_ms", (int)a->handler_timeout_ms,
        "event_handlers", handlers_config(a->handlers));
}

/* Whether this agent announced a graceful leave (the leave command,
 * SIGTERM, SIGHUP): its node goes on, but no longer as a member. */
static bool commands_leaving(agent *a)
{
    sb_member *m;
    size_t n;
    bool leaving = false;
    if (sb_node_members(a->node, &m, &n) != SB_OK)
        return false;
    for (size_t i = 0; i < n; i++)
        leaving |= m[i].self && m[i].leaving;
    sb_free(m);
    return leaving;
}

static json_t *commands_info(agent *a, const arg *args)
{
    (void)args;
    json_t *st = commands_stats(a);
    if (!st)
        return commands_code(SB_ESTATE);
    json_t *events = json_object();
    for (int k = SB_EVENT_JOIN; k <= SB_EVENT_DELETE; k++)
        json_object_set_new(events, agent_event_name(k),
                            json_integer((json_int_t)a->events[k]));
    json_t *r = commands_ok();
    json_object_set_new(r, "version", json_string(SB_VERSION_STRING));
    json_object_set_new(r, "protocol", json_integer(SB_PROTOCOL_VERSION));
    json_object_set_new(r, "addr", json_string(sb_node_addr(a->node)));
    json_object_set_new(r, "bind", json_string(sb_node_bind_addr(a->node)));
    json_object_set_new(r, "leaving", json_boolean(commands_leaving(a)));
    json_object_set_new(r, "control", a->control_path
                                          ? json_string(a->control_path)
                                          : json_null());
    json_object_set_new(r, "http", a->http ? json_string(a->http_addr)
                                           : json_null());
    json_object_set_new(r, "uptime_ms",
                        json_integer((json_int_t)(mono_ms() - a->start_ms)));
    json_object_set_new(r, "config", commands_config(a));
    json_object_set_new(r, "stats", st);
    json_object_set_new(r, "events", events);
    json_object_set_new(r, "event_handlers", handlers_counters(a->handlers));
    json_object_set_new(r, "control_clients",
                        json_integer((json_int_t)control_clients(a->control)));
    return r;
}

static json_t *commands_leave(agent *a, const arg *args)
{
    (void)args;
    return commands_code(sb_node_leave(a->node));
}

/* join ADDR[,ADDR...]: numeric addresses only (commands_numeric()); the
 * client resolves a name (client.c). Every address is checked before any
 * is joined, so that a list refused starts no join. Done if any address
 * is taken. */
#define COMMANDS_JOIN_MAX 16
static json_t *commands_join(agent *a, const arg *args)
{
    char *list = strdup(args[0].p);
    if (!list)
        return commands_code(SB_ENOMEM);
    char *addrs[COMMANDS_JOIN_MAX], *save = NULL;
    size_t n = 0;
    bool ok = true;
    for (char *addr = strtok_r(list, ",", &save); addr && ok;
         addr = strtok_r(NULL, ",", &save)) {
        ok = n < COMMANDS_JOIN_MAX && commands_numeric(addr);
        if (ok)
            addrs[n++] = addr;
    }
    if (!ok || n == 0) {
        free(list);
        return commands_error("join: 1 to 16 addresses by number, ip:port "
                              "or [ip6]:port, commas between");
    }
    int rc = SB_OK, taken = 0;
    for (size_t i = 0; i < n; i++) {
        int r = sb_node_join(a->node, addrs[i]);
        taken += r == SB_OK;
        if (rc == SB_OK)
            rc = r; /* the first error, said if none is taken */
    }
    free(list);
    return commands_code(taken ? SB_OK : rc);
}

static json_t *commands_quit(agent *a, const arg *args)
{
    (void)args;
    agent_shut_down(a);
    return commands_ok();
}

bool commands_hex_key(const char *hex, size_t len,
                      uint8_t key[SB_KEY_SIZE])
{
    size_t got = 0;
    const char *end = NULL;
    return len == 2 * SB_KEY_SIZE &&
           sodium_hex2bin(key, SB_KEY_SIZE, hex, len, NULL, &got, &end) == 0 &&
           got == SB_KEY_SIZE && end == hex + len;
}

static int commands_find_key(const agent *a, const uint8_t *key)
{
    for (size_t i = 0; i < a->nkeys; i++)
        if (sodium_memcmp(a->keys[i], key, SB_KEY_SIZE) == 0)
            return (int)i;
    return -1;
}

/* The keyring as the agent set it (from --key-file and these commands),
 * kept beside the node's, which cannot be read back. */
static void commands_keyring_track(agent *a, const char *op,
                                   const uint8_t *key)
{
    int i = commands_find_key(a, key);
    uint8_t tmp[SB_KEY_SIZE];
    if (strcmp(op, "install") == 0 && i < 0 && a->nkeys < SB_MAX_KEYS) {
        memcpy(a->keys[a->nkeys++], key, SB_KEY_SIZE);
    } else if (strcmp(op, "use") == 0 && i > 0) {
        memcpy(tmp, a->keys[i], SB_KEY_SIZE);
        memmove(a->keys[1], a->keys[0], (size_t)i * SB_KEY_SIZE);
        memcpy(a->keys[0], tmp, SB_KEY_SIZE);
        sodium_memzero(tmp, sizeof(tmp));
    } else if (strcmp(op, "remove") == 0 && i > 0) {
        memmove(a->keys[i], a->keys[i + 1],
                (a->nkeys - (size_t)i - 1) * SB_KEY_SIZE);
        sodium_memzero(a->keys[--a->nkeys], SB_KEY_SIZE);
    }
}

/* A node created without keys has no keyring, and never gets one: the
 * library's SB_ESTATE, said in the agent's terms. */
static json_t *commands_no_keyring(void)
{
    return commands_error("estate: this agent has no cluster keys: it was "
                          "started without --key-file, in plaintext, and "
                          "cannot take one while it runs "
                          "(docs/security.md)");
}

static json_t *commands_key_list(agent *a)
{
    if (a->nkeys == 0)
        return commands_no_keyring(); /* created without keys */
    json_t *keys = json_array();
    for (size_t i = 0; i < a->nkeys; i++) {
        char hex[2 * SB_KEY_SIZE + 1];
        sodium_bin2hex(hex, sizeof(hex), a->keys[i], SB_KEY_SIZE);
        json_array_append_new(keys, json_pack("{sssb}", "key", hex,
                                              "primary", i == 0));
        sodium_memzero(hex, sizeof(hex));
    }
    json_t *r = commands_ok();
    json_object_set_new(r, "keys", keys);
    return r;
}

static json_t *commands_key(agent *a, const arg *args)
{
    static const char use[] = "usage: key install|use|remove HEX, key list";
    const char *op = args[0].p;
    if (strcmp(op, "list") == 0)
        return args[1].p ? commands_error(use) : commands_key_list(a);
    if (!args[1].p)
        return commands_error(use);
    if (a->nkeys == 0 && (strcmp(op, "install") == 0 ||
                          strcmp(op, "use") == 0 ||
                          strcmp(op, "remove") == 0))
        return commands_no_keyring();
    uint8_t key[SB_KEY_SIZE];
    if (!commands_hex_key(args[1].p, args[1].len, key))
        return commands_error("a key is 64 hex characters");
    bool zero = sodium_is_zero(key, SB_KEY_SIZE);
    int rc;
    if (strcmp(op, "install") == 0)
        rc = sb_node_key_install(a->node, key);
    else if (strcmp(op, "use") == 0)
        rc = sb_node_key_use(a->node, key);
    else if (strcmp(op, "remove") == 0)
        rc = sb_node_key_remove(a->node, key);
    else
        rc = 1;
    if (rc == SB_OK)
        commands_keyring_track(a, op, key);
    sodium_memzero(key, sizeof(key));
    if (rc == 1)
        return commands_error(use);
    if (rc == SB_EINVAL && zero)
        return commands_error("einval: 32 zero bytes, not a random key");
    if (rc == SB_ENOTFOUND)
        return commands_error("enotfound: this agent holds no such key "
                              "(key list)");
    if (rc == SB_ESTATE && strcmp(op, "remove") == 0)
        return commands_error("estate: that key seals this agent's packets: "
                              "make another the sealing one first (key use "
                              "HEX), then remove it");
    return commands_code(rc);
}

static json_t *commands_monitor(agent *a, const arg *args)
{
    (void)a, (void)args;
    return commands_error("monitor: only on the control socket");
}

static const command commands[] = {
    { "set", { "key", "value" }, 1, true, "usage: set KEY VALUE",
      commands_set },
    { "del", { "key" }, 1, false, "usage: del KEY", commands_del },
    { "get", { "peer", "key" }, 2, false, "usage: get PEER KEY",
      commands_get },
    { "peers", { NULL }, 0, false, "usage: peers", commands_peers },
    { "members", { "status" }, 0, false, "usage: members [STATUS]",
      commands_members },
    { "stats", { NULL }, 0, false, "usage: stats", commands_stats_cmd },
    { "info", { NULL }, 0, false, "usage: info", commands_info },
    { "leave", { NULL }, 0, false, "usage: leave", commands_leave },
    { "join", { "addr" }, 1, false, "usage: join ADDR[,ADDR...]",
      commands_join },
    { "key", { "op", "key" }, 1, false,
      "usage: key install|use|remove HEX, key list", commands_key },
    { "monitor", { NULL }, 0, false, "usage: monitor", commands_monitor },
    { "quit", { NULL }, 0, false, "usage: quit", commands_quit },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const command *commands_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static json_t *commands_unknown(void)
{
    char msg[256] = "unknown command (";
    for (size_t i = 0; i < NCOMMANDS; i++) {
        strcat(msg, commands[i].name);
        strcat(msg, i + 1 < NCOMMANDS ? ", " : ")");
    }
    return commands_error(msg);
}

static int commands_nfields(const command *c)
{
    int n = 0;
    while (n < MAX_FIELDS && c->fields[n])
        n++;
    return n;
}

/* ---- stdin: text lines --------------------------------------------------- */

/* Splits the next space-separated word off *s; NULL at the end. */
static char *commands_word(char **s)
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

json_t *commands_run_line(agent *a, char *line)
{
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r')
        line[--len] = '\0';
    char *rest = line;
    char *name = commands_word(&rest);
    if (!name)
        return NULL; /* blank */
    const command *c = commands_find(name);
    if (!c)
        return commands_unknown();
    arg args[MAX_FIELDS] = { { NULL, 0 } };
    int n = commands_nfields(c);
    for (int i = 0; i < n; i++) {
        char *w = c->rest && i == n - 1 ? rest : commands_word(&rest);
        if (c->rest && i == n - 1)
            rest += strlen(rest);
        if (w)
            args[i] = (arg){ w, strlen(w) };
        else if (i < c->min)
            return commands_error(c->usage);
    }
    if (commands_word(&rest))
        return commands_error(c->usage);
    json_t *r = c->fn(a, args);
    for (int i = 0; i < n; i++) /* key material in the line: wiped */
        if (strcmp(c->name, "key") == 0 && args[i].p)
            sodium_memzero((char *)args[i].p, args[i].len);
    return r;
}

/* ---- the control socket: JSON requests ----------------------------------- */

static json_t *commands_json_usage(const command *c)
{
    char msg[256];
    int n = commands_nfields(c), len;
    len = snprintf(msg, sizeof(msg), "usage: {\"cmd\":\"%s\"", c->name);
    for (int i = 0; i < n; i++)
        len += snprintf(msg + len, sizeof(msg) - (size_t)len, ",%s\"%s\":...%s",
                        i < c->min ? "" : "[", c->fields[i],
                        i < c->min ? "" : "]");
    snprintf(msg + len, sizeof(msg) - (size_t)len, "}");
    return commands_error(msg);
}

/* Whether a request's field name is "cmd" or one of c's (or its _b64). */
static bool commands_known_field(const command *c, const char *name)
{
    if (strcmp(name, "cmd") == 0)
        return true;
    for (int i = 0; i < commands_nfields(c); i++) {
        size_t fl = strlen(c->fields[i]);
        if (strcmp(name, c->fields[i]) == 0 ||
            (strncmp(name, c->fields[i], fl) == 0 &&
             strcmp(name + fl, "_b64") == 0))
            return true;
    }
    return false;
}

json_t *commands_run_json(agent *a, const json_t *req)
{
    const char *name = json_string_value(json_object_get(req, "cmd"));
    if (!json_is_object(req) || !name)
        return commands_error("a request is a JSON object with a \"cmd\" "
                              "string");
    const command *c = commands_find(name);
    if (!c)
        return commands_unknown();
    const char *field;
    json_t *v;
    json_object_foreach((json_t *)req, field, v) {
        if (!commands_known_field(c, field)) {
            /* its first 64 bytes, not cutting a character in two (the
             * reply must stay UTF-8, or there is none) */
            int n = 0;
            for (int i = 0; i < 64 && field[i]; i++)
                if ((field[i + 1] & 0xc0) != 0x80)
                    n = i + 1;
            char msg[160];
            snprintf(msg, sizeof(msg), "%s: unknown field \"%.*s\"", name, n,
                     field);
            return commands_error(msg);
        }
    }
    arg args[MAX_FIELDS] = { { NULL, 0 } };
    char *bufs[MAX_FIELDS] = { NULL };
    json_t *r = NULL;
    int n = commands_nfields(c);
    for (int i = 0; i < n && !r; i++) {
        bufs[i] = json_get_bytes(req, c->fields[i], &args[i].len);
        args[i].p = bufs[i];
        char b64[64];
        snprintf(b64, sizeof(b64), "%s_b64", c->fields[i]);
        const json_t *plain = json_object_get(req, c->fields[i]);
        const json_t *coded = json_object_get(req, b64);
        bool present = plain || coded;
        char msg[160];
        if (plain && coded) {
            snprintf(msg, sizeof(msg), "%s and %s: one or the other",
                     c->fields[i], b64);
            r = commands_error(msg);
        } else if (!bufs[i] && present) {
            snprintf(msg, sizeof(msg), "%s: %s", plain ? c->fields[i] : b64,
                     plain ? "not a string" : "not a string of base64");
            r = commands_error(msg);
        } else if ((!bufs[i] && i < c->min) ||
            (bufs[i] && memchr(bufs[i], '\0', args[i].len) &&
             strcmp(c->fields[i], "key") != 0 &&
             strcmp(c->fields[i], "value") != 0))
            r = commands_json_usage(c);
    }
    if (!r)
        r = c->fn(a, args);
    for (int i = 0; i < n; i++)
        if (bufs[i]) {
            sodium_memzero(bufs[i], args[i].len);
            free(bufs[i]);
        }
    return r;
}
