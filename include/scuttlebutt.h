/*
 * scuttlebutt: cluster membership and state propagation over UDP gossip.
 *
 * This is the one public header of the library. Every public name starts
 * with `sb_` (functions, types) or `SB_` (macros, constants).
 *
 * Contents:
 *   1. versions, error codes, statuses, events, statistics (every layer)
 *   2. sb_config: everything a node can be told at creation
 *   3. sb_node: create, free, write and read state, leave, statistics
 *   4. driving a node from the caller's event loop
 *
 * Threads. By default a node runs its own background thread (which
 * blocks every signal: process-directed signals go to the application's
 * threads) and every function taking an sb_node is safe to call from
 * any thread, except
 * sb_node_free(), which must not race other calls on the same node. Event
 * callbacks run on the node's thread (or inside sb_node_process() in
 * embedded mode), one at a time, with no lock of the library held; with
 * a thread they may start before sb_node_new() returns. A callback may
 * call any function of the API except sb_node_free(), sb_node_stop() and
 * sb_node_process() on its own node, which return SB_ESTATE there, and
 * sb_node_free() on another node whose thread still runs (SB_ESTATE:
 * it would wait for that thread, which may be waiting for ours). The
 * seeds callback runs inside sb_node_new() and then where the events
 * run. The log callback runs in whichever thread logs, possibly in
 * several at once (a caller's thread too, inside an API call that logs):
 * it must be thread-safe (sb_log_stderr is). Every callback, the log and
 * seeds ones included, gets SB_ESTATE from sb_node_free() on its node.
 *
 * Memory. Strings and buffers passed in are copied before the call
 * returns. Memory the library hands out (sb_node_get(), sb_node_keys(),
 * sb_node_members(), sb_node_live()) belongs to the caller and is
 * released with sb_free().
 *
 * Stopped. After sb_node_stop(), every call taking the node returns
 * SB_ESTATE (sb_node_timeout_ms(): -1), listed or not below, but for
 * sb_node_fd(), which names the node's socket until sb_node_free().
 * Pointers inside an sb_event are borrowed for the callback's duration.
 *
 * docs/api.md walks through typical use with complete examples.
 */
#ifndef SCUTTLEBUTT_H
#define SCUTTLEBUTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions the shared library exports; nothing else is. */
#if defined(__GNUC__) || defined(__clang__)
#define SB_API __attribute__((visibility("default")))
#else
#define SB_API
#endif

/* ======================================================================
 * 1. What every layer shares
 * ====================================================================== */

#define SB_VERSION_MAJOR 0
#define SB_VERSION_MINOR 11
#define SB_VERSION_PATCH 17
#define SB_VERSION_STRING "0.11.18"
/* The version as one comparable number: 0x00MMmmpp. */
#define SB_VERSION_HEX \
    ((SB_VERSION_MAJOR << 16) | (SB_VERSION_MINOR << 8) | SB_VERSION_PATCH)

/* The wire protocol version this library speaks (see docs/protocol.md). */
#define SB_PROTOCOL_VERSION 8

/* Cluster keys (docs/security.md): 32 bytes each, at most SB_MAX_KEYS
 * installed at once; sealing adds SB_SEAL_OVERHEAD bytes to a message,
 * within max_message_size. */
#define SB_KEY_SIZE 32
#define SB_MAX_KEYS 8
#define SB_SEAL_OVERHEAD 40
/* The bandwidth cap of a node that sets none (sb_config.bandwidth 0):
 * 1 MiB a second (docs/protocol.md, section 8.3). */
#define SB_BANDWIDTH_DEFAULT (1024u * 1024u)

/*
 * Error codes. Every call that can fail returns SB_OK (0) or one of these
 * negative values. sb_strerror() describes a code, sb_err_name() names it.
 *
 * Names: every *_name() function of this header (sb_err_name,
 * sb_status_name, sb_drop_name, sb_traffic_name) returns the constant
 * without its prefix, in lower case ("einval", "live", "truncated",
 * "push"): short, stable, for logs,
 * JSON and metrics. Sentences come from sb_strerror() and sb_drop_text().
 */
#define SB_ERRORS(X)                                                        \
    X(SB_EINVAL, -1, "einval", "invalid argument")                          \
    X(SB_ENOMEM, -2, "enomem", "out of memory")                             \
    X(SB_ETOOBIG, -3, "etoobig", "entry would not fit into one message")    \
    X(SB_ENOTFOUND, -4, "enotfound", "no such node or key")                 \
    X(SB_ELIMIT, -5, "elimit", "a configured bound would be exceeded")      \
    X(SB_ELEFT, -6, "eleft", "the node has left the cluster")               \
    X(SB_EADDR, -7, "eaddr", "invalid or unusable address")                 \
    X(SB_ECONFIG, -8, "econfig", "invalid configuration")                   \
    X(SB_ESTATE, -9, "estate", "call not allowed in this state")            \
    X(SB_EIO, -10, "eio", "input/output error")                             \
    X(SB_EADDRINUSE, -11, "eaddrinuse", "address already in use")

enum sb_error {
#define SB_ERROR_ENUM_(sym, value, name, text) sym = value,
    SB_ERRORS(SB_ERROR_ENUM_)
#undef SB_ERROR_ENUM_
    SB_OK = 0 /* last: no comma ends the list (C89, C++98) */
};

/* A static, human-readable description of an error code; never NULL. */
SB_API const char *sb_strerror(int err);
/* The name of an error code ("einval", "ok" for SB_OK, "unknown" for
 * anything else); never NULL. */
SB_API const char *sb_err_name(int err);

/* What a node speaks on its socket. */
typedef enum sb_wire {
    SB_WIRE_SCUTTLEBUTT = 0, /* this library's protocol (docs/protocol.md) */
    SB_WIRE_REFERENCE = 1    /* the reference Go library's format and
                                exchange, to join a cluster of its nodes
                                (docs/compat.md) */
} sb_wire;

/* What a node knows about another node's liveness. */
typedef enum sb_status {
    SB_STATUS_JOINING = 0, /* known, but no proof of life seen yet */
    SB_STATUS_LIVE = 1,    /* heartbeats arrive */
    SB_STATUS_DOWN = 2,    /* convicted by the failure detector (with
                              SB_WIRE_REFERENCE also: only named by
                              others, and silent too long) */
    SB_STATUS_LEFT = 3     /* announced a graceful leave */
} sb_status;

/* The name of a status ("joining", "live", "down", "left"; "unknown"
 * for anything else); never NULL. */
SB_API const char *sb_status_name(sb_status status);

/*
 * The kinds of event a node reports about the cluster. Per member, in
 * order: JOIN, then an UPDATE for each key it holds, then its changes,
 * then LEAVE. No key event is reported about a member that is not live;
 * one that comes back joins again with all its keys.
 */
typedef enum sb_event_type {
    SB_EVENT_JOIN = 1,   /* a node became live (new, or back from down) */
    SB_EVENT_LEAVE = 2,  /* a live node went down or left gracefully */
    SB_EVENT_UPDATE = 3, /* a node set a key (value is the new value) */
    SB_EVENT_DELETE = 4  /* a node's key was deleted or its state reset */
} sb_event_type;

/*
 * One event. All pointers are borrowed: they are valid only during the
 * callback that receives the event; copy what you keep. Events from an
 * sb_node carry a NUL byte after the key and after the value, so both
 * may be read as C strings when they hold text (a key or value may
 * itself contain NUL bytes; the lengths are exact).
 */
typedef struct sb_event {
    sb_event_type type;
    const char *addr;      /* the node's advertised "host:port" */
    uint64_t generation;   /* the node's generation (incarnation) */
    sb_status status;      /* the node's status after the event */
    const char *key;       /* UPDATE, DELETE: the key; NULL otherwise */
    size_t key_len;
    const char *value;     /* UPDATE: the value; NULL otherwise */
    size_t value_len;
    struct sb_node *node;  /* the node reporting it (valid in the
                              callback even before sb_node_new() has
                              returned its handle) */
} sb_event;

/* Receives one event; `userdata` is sb_config.userdata. */
typedef void (*sb_event_fn)(void *userdata, const sb_event *ev);

/*
 * Fills `out` with up to `max` seed addresses ("host:port", host a name
 * or an IP address, "[v6]:port" for IPv6) and returns how many. The
 * strings must stay valid until the callback is called again or the node
 * is freed.
 */
typedef size_t (*sb_seeds_fn)(void *userdata, const char **out, size_t max);

/* What one node knows of one cluster member (itself included). */
typedef struct sb_member {
    const char *addr;          /* advertised "host:port" */
    uint64_t generation;       /* incarnation; larger after a restart */
    uint64_t heartbeat;        /* last heartbeat seen */
    uint64_t max_version;      /* highest version of its keys seen */
    uint32_t keys;             /* live keys (tombstones not counted) */
    uint32_t tombstones;       /* deleted keys not yet collected */
    bool leaving;              /* announced a graceful leave */
    sb_status status;
    bool self;                 /* this is the node asking */
} sb_member;

/* Why an incoming packet (or part of one) was dropped. */
#define SB_DROPS(X)                                                          \
    X(SB_DROP_TRUNCATED, "truncated", "truncated")                           \
    X(SB_DROP_MAGIC, "magic", "not a scuttlebutt packet")                    \
    X(SB_DROP_VERSION, "version", "unsupported protocol version")            \
    X(SB_DROP_CLUSTER, "cluster", "another cluster")                         \
    X(SB_DROP_TYPE, "type", "unknown message type")                          \
    X(SB_DROP_MALFORMED, "malformed", "malformed")                           \
    X(SB_DROP_OVERSIZE, "oversize", "larger than any UDP datagram")          \
    X(SB_DROP_LIMIT_NODES, "limit_nodes", "max_nodes reached")               \
    X(SB_DROP_LIMIT_KEYS, "limit_keys", "max_keys_per_node reached")         \
    X(SB_DROP_LIMIT_BYTES, "limit_bytes", "max_state_bytes reached")         \
    X(SB_DROP_ZOMBIE, "zombie", "state of a forgotten node")                 \
    X(SB_DROP_GAP, "gap", "delta would leave a version gap")                 \
    X(SB_DROP_PLAINTEXT, "plaintext", "plaintext packet, this node has a key") \
    X(SB_DROP_SEALED, "sealed", "sealed packet, this node has no key")       \
    X(SB_DROP_AUTH, "auth", "failed authentication: forged, or another key") \
    X(SB_DROP_NOMEM, "nomem", "out of memory while taking it in")          \
    X(SB_DROP_UNSOLICITED, "unsolicited",                                    \
      "an answer to nothing this node sent to its source")                  \
    X(SB_DROP_HEARSAY, "hearsay",                                            \
      "news of a node from a source that cannot vouch for it")

typedef enum sb_drop_reason {
#define SB_DROP_ENUM_(sym, name, text) sym,
    SB_DROPS(SB_DROP_ENUM_)
#undef SB_DROP_ENUM_
    SB_DROP_COUNT              /* how many reasons this version has */
} sb_drop_reason;

/* Room for drop reasons in sb_stats: later versions may add reasons up to
 * this many without changing the struct. */
#define SB_DROP_SLOTS 32
/* C11 and later only: a program of an older C (-std=gnu99 -pedantic) or
 * C++ includes this header too, and the library's own build checks it */
#if !defined(__cplusplus) && defined(__STDC_VERSION__) && \
    __STDC_VERSION__ >= 201112L
_Static_assert(SB_DROP_COUNT <= SB_DROP_SLOTS, "room for every drop reason");
#endif

/* The name of a drop reason ("truncated", "auth", ...; "unknown" for
 * anything else); never NULL. */
SB_API const char *sb_drop_name(sb_drop_reason reason);
/* A sentence describing a drop reason; never NULL. */
SB_API const char *sb_drop_text(sb_drop_reason reason);

/* What a datagram is for, as the bandwidth cap ranks it
 * (docs/protocol.md, section 8.3): liveness first, then exchanges, then
 * pushes. */
typedef enum sb_traffic {
    SB_TRAFFIC_LIVENESS,  /* beats, probes, seeds, a probe's bare answer */
    SB_TRAFFIC_EXCHANGE,  /* anti-entropy: SYN, ACK, ACK2, SWEEP, DIFF */
    SB_TRAFFIC_PUSH,      /* eager push */
    SB_TRAFFIC_COUNT
} sb_traffic;

/* The name of a traffic class ("liveness", "exchange", "push"; "unknown"
 * for anything else); never NULL. */
SB_API const char *sb_traffic_name(sb_traffic traffic);

/* Counters a node keeps about itself. */
typedef struct sb_stats {
    uint64_t packets_in, bytes_in;
    uint64_t packets_out, bytes_out;  /* datagrams handed to the socket,
                                         the send_errors it refused
                                         included */
    uint64_t rounds;                  /* gossip rounds run, two per interval */
    uint64_t pushes;                  /* PUSH datagrams sent (in
                                         packets_out), each of one or
                                         more writers' items */
    uint64_t held_back[SB_TRAFFIC_COUNT]; /* datagrams the bandwidth
                                         cap held back, by sb_traffic;
                                         for push (whose datagrams wait
                                         for the cap), the items not
                                         passed on: the outbox had no
                                         room when they came */
    uint64_t send_errors;             /* datagrams the socket refused */
    uint64_t verdicts;                /* peers this node convicted as their
                                         monitor */
    uint64_t verdicts_withheld;       /* convictions withheld: every peer
                                         it watches fell silent at once */
    uint64_t refuted;                 /* verdicts against this node it
                                         refuted (its heartbeat moved
                                         past them) */
    uint64_t sweeps;                  /* SWEEP messages sent: records for
                                         a joining node, or one that saw
                                         many nodes come back (in
                                         packets_out) */
    uint64_t diffs;                   /* DIFF messages sent: parts of a
                                         range where this node's records
                                         differ from an asker's */
    uint64_t ranges;                  /* SYNs that carried a range:
                                         steps of this node's descents to
                                         where its records differ from a
                                         peer's */
    uint64_t drops[SB_DROP_SLOTS];    /* indexed by sb_drop_reason; the
                                         first SB_DROP_COUNT are used */
    uint32_t members[4];              /* indexed by sb_status, self included */
} sb_stats;

/* ======================================================================
 * 2. Configuration
 * ====================================================================== */

/* Log levels, most severe first. */
typedef enum sb_log_level {
    SB_LOG_ERROR = 0,  /* the node cannot do what it was asked */
    SB_LOG_WARN = 1,   /* something is wrong but gossip goes on */
    SB_LOG_INFO = 2,   /* membership changes, start and stop */
    SB_LOG_DEBUG = 3   /* accepted, but this version writes no line at
                          this level: DEBUG logs what INFO does */
} sb_log_level;

/* Receives one log line (no trailing newline), valid during the call. */
typedef void (*sb_log_fn)(void *userdata, sb_log_level level,
                          const char *msg);

/* A ready-made sb_log_fn that writes "scuttlebutt: LEVEL: msg" lines to
 * stderr. Thread-safe. */
SB_API void sb_log_stderr(void *userdata, sb_log_level level,
                          const char *msg);

/*
 * Everything a node can be told at creation. Fill it with sb_config_init(),
 * then set what you need; sb_node_new() copies it (strings included), so
 * it may be reused or freed afterwards.
 */
typedef struct sb_config {
    /* sizeof(sb_config) as the program was built: sb_config_init() sets
     * it. Later versions append fields and take a smaller size for the
     * defaults of the fields after it; 0 (not initialised) or a size
     * larger than this library's is refused with SB_ECONFIG. */
    size_t size;

    /* Addresses are "host:port" or "[v6 address]:port". */
    const char *bind;          /* required: where the UDP socket binds;
                                  host is an IP address or a name; port 0
                                  lets the system choose */
    const char *advertise;     /* the address peers reach us at, which is
                                  also our identity: a numeric IP address
                                  and a port (0: the port bound, the one
                                  the system chose for a bind to port 0).
                                  Default: the bound address; required
                                  when binding a wildcard (0.0.0.0 or
                                  [::]) */
    const char *cluster;       /* cluster name; packets of other clusters
                                  are dropped; default (and NULL)
                                  "default" */
    sb_wire wire;              /* what the node speaks on its socket:
                                  SB_WIRE_SCUTTLEBUTT (default), or
                                  SB_WIRE_REFERENCE to join a cluster of
                                  the reference Go library's nodes
                                  (docs/compat.md). The reference format
                                  carries no keys, cluster name or
                                  generation: setting any of them is
                                  SB_ECONFIG; sb_node_del() and
                                  sb_node_leave() return SB_ESTATE, and
                                  values are at most 255 bytes */

    /* Cluster keys (docs/security.md). With keys, the node seals every
     * packet with the primary key (the first) and opens with any of them;
     * a packet without a seal, or that no key opens, is dropped and
     * counted, and gets no answer. Without keys (the default) packets are
     * plaintext and unauthenticated: anyone who can send the node a
     * datagram can change what the cluster believes. A node never switches
     * between the two; sb_node_key_install() and friends rotate keys. The
     * keys are copied at creation: wipe your copy when you like. A key of
     * 32 zero bytes (an array never filled) is SB_ECONFIG. */
    const uint8_t *keys;       /* nkeys x SB_KEY_SIZE bytes, back to back */
    size_t nkeys;              /* 0 to SB_MAX_KEYS */

    /* Seeds: asked whenever the node knows no live peer. Host names are
     * resolved with getaddrinfo after every seeding, for the next one
     * (and at creation, for the first); a name gives up to 8 addresses,
     * of the families the socket reaches. Both may be used at once; at
     * most 64 seed addresses are kept, the static list's first. */
    const char *const *seeds;  /* a static list of nseeds addresses */
    size_t nseeds;
    sb_seeds_fn seed_fn;       /* a callback returning seed addresses */

    /* Events: any may be NULL. */
    sb_event_fn on_join;       /* a node became live */
    sb_event_fn on_leave;      /* a live node went down or left */
    sb_event_fn on_update;     /* a node set a key */
    sb_event_fn on_delete;     /* a node's key was deleted */

    sb_log_fn log;             /* default NULL: silent */
    sb_log_level log_level;    /* most detailed level passed on; WARN */
    void *userdata;            /* passed to every callback */

    /* Protocol (docs/protocol.md). */
    uint32_t interval_ms;      /* gossip interval: a node starts two
                                  exchanges per interval; default 500 */
    size_t max_message_size;   /* UDP payload bytes this node sends;
                                  default 512, at most 65507; from
                                  peers it takes any datagram, whatever
                                  their setting. Use the same value on
                                  every node: a key too large for this
                                  node's messages, and its owner's later
                                  keys, are not passed on by this node
                                  (docs/protocol.md, section 10) */
    double phi_threshold;      /* failure detector conviction; 8.0, a
                                  finite number of at least 1 */
    uint64_t dead_grace_ms;    /* forget down or left nodes after; 1 h,
                                  at least 1 (0 is SB_ECONFIG) */
    uint64_t tombstone_grace_ms; /* collect deleted keys after; 1 h */
    uint32_t push_fanout;      /* eager push down this many trees
                                  (binomial trees over the monitor
                                  rings); 3; 0 turns pushing off; at
                                  most 8. Use the same value on every
                                  node of a cluster */
    uint32_t bandwidth;        /* the most bytes a second this node
                                  sends, all its traffic: liveness
                                  first, then anti-entropy, then push
                                  (docs/protocol.md, section 8.3); at
                                  least 24 datagrams of max_message_size
                                  (and the seal's overhead, if sealed);
                                  0, the default: SB_BANDWIDTH_DEFAULT,
                                  or that least if more */
    uint32_t monitors;         /* each node is watched by up to this many
                                  peers, which it beats every 3
                                  intervals and whose verdicts convict
                                  it (docs/failure-detector.md,
                                  section 9);
                                  default 4, at most 8, 0 turns monitors
                                  off. Use the same value on every node */

    /* Bounds against runaway or hostile peers. */
    uint32_t max_nodes;        /* nodes known at once; default 4096 */
    uint32_t max_keys_per_node; /* default 4096; a deleted key counts
                                   until tombstone_grace_ms collects it
                                   (sb_member.keys does not count it):
                                   sb_node_set() of a new key may be
                                   SB_ELIMIT with fewer live keys */
    size_t max_state_bytes;    /* key and value bytes per node; 1 MiB;
                                  at most UINT32_MAX */

    /* Identity and randomness; 0 picks them. */
    uint64_t generation;       /* default: wall-clock nanoseconds at
                                  creation, so that a node restarted on
                                  the same address supersedes the old */
    uint64_t rng_seed;         /* default: from the system's entropy
                                  (the reply tokens that prove a peer's
                                  address, docs/security.md, always are
                                  keyed from a draw of their own) */

    /* Running. */
    bool embedded;             /* false (default): the node starts its
                                  own thread. true: no thread; the caller
                                  drives it with sb_node_fd(),
                                  sb_node_timeout_ms(), sb_node_process() */
} sb_config;

/* Fills `cfg` with the defaults above (bind stays NULL). */
SB_API void sb_config_init(sb_config *cfg);

/* ======================================================================
 * 3. A node
 * ====================================================================== */

/* One member of a cluster: a socket, the protocol engine, and, unless
 * embedded, a thread. Opaque. */
typedef struct sb_node sb_node;

/*
 * Creates a node: checks the configuration, binds the socket, resolves
 * the seeds, and (unless embedded) starts the thread. Gossip starts within
 * one interval. *out is set before the seeds callback first runs and
 * before the thread starts, so that a callback finds the node through
 * its userdata when `out` points into it (sb_node_new(&cfg, &app->node)
 * with cfg.userdata = app). On failure *out is NULL and, but for
 * SB_EINVAL, SB_ENOMEM
 * and a cfg->size that no sb_config_init() wrote (SB_ECONFIG: such a
 * config's log callback cannot be trusted), a log line at SB_LOG_ERROR
 * says why.
 * Errors: SB_EINVAL (cfg or out NULL), SB_ECONFIG (a field out of range:
 * zero interval, a message size too small for one key, ...), SB_EADDR
 * (bind, advertise or a static seed unparsable, or bind or advertise
 * unresolvable; advertise not
 * numeric, missing for a wildcard bind, or of an address family the
 * socket cannot reach), SB_EADDRINUSE (the port is taken), SB_EIO (a socket
 * or thread call failed), SB_ENOMEM.
 */
SB_API int sb_node_new(const sb_config *cfg, sb_node **out);

/*
 * Stops the node, from any thread, even while other threads call in: its
 * thread ends (no more gossip, no more callbacks), and from then on every
 * call on it returns SB_ESTATE (sb_node_timeout_ms(): -1), though the
 * handle stays valid until sb_node_free(). A call already running when
 * the stop comes completes, and so does a callback already running; the
 * events still queued are dropped (embedded: sb_node_stop() does not wait
 * for an sb_node_process() running in another thread, nor for its
 * callback). Stopping again is SB_OK. Called from
 * a callback of another node, it does not wait for the node's thread
 * (two nodes stopping each other from their callbacks would wait for
 * each other forever): the thread ends once the callback it is running
 * is done, and sb_node_free() waits for it. Errors: SB_EINVAL (NULL),
 * SB_ESTATE from one of the node's own callbacks.
 *
 * To free a node that several threads use: sb_node_stop(); then make
 * sure every thread is done with the handle (their calls now fail at
 * once); then sb_node_free(), which must not race any other call.
 */
SB_API int sb_node_stop(sb_node *n);

/*
 * Stops the node (if sb_node_stop() has not) and frees it: joins its
 * thread, closes its socket, frees everything. Peers see it stop
 * heartbeating and report it down; call sb_node_leave() a few intervals
 * before for a graceful exit. NULL is allowed (SB_OK). It must not race
 * another call on the same node (sb_node_stop() can). Errors: SB_ESTATE
 * when called from one of the node's own callbacks, or from a callback of
 * another node while this node's thread still runs (nothing is freed
 * then: two nodes freeing each other from their callbacks would wait for
 * each other forever; free it outside the callbacks).
 */
SB_API int sb_node_free(sb_node *n);

/*
 * Keys are byte strings of 1 to 255 bytes, given with their length:
 * any bytes, NUL included (events carry them the same way, in
 * sb_event.key and key_len), but for a NUL first byte: keys that start
 * with one are the protocol's own (a monitor's verdicts), refused by
 * sb_node_set() and sb_node_del() (SB_EINVAL), never found by
 * sb_node_get() (SB_ENOTFOUND), listed or reported. For a C string, pass
 * strlen(key).
 */

/*
 * Sets one of our keys; the change spreads to the cluster. Setting the
 * value a key already has does nothing. `key` is `key_len` bytes (1 to
 * 255); `value` is `len` bytes (NULL allowed when len is 0).
 * Errors: SB_EINVAL (NULL or bad key), SB_ETOOBIG (the key and value
 * cannot travel in one message of max_message_size; with
 * SB_WIRE_REFERENCE, also a value over 255 bytes), SB_ELIMIT
 * (max_keys_per_node or max_state_bytes), SB_ELEFT (after
 * sb_node_leave()), SB_ENOMEM.
 */
SB_API int sb_node_set(sb_node *n, const void *key, size_t key_len,
                       const void *value, size_t len);

/* Deletes one of our keys; peers report SB_EVENT_DELETE.
 * Errors: SB_EINVAL, SB_ENOTFOUND (no such key), SB_ELEFT, SB_ENOMEM,
 * SB_ESTATE (SB_WIRE_REFERENCE: that format cannot delete). */
SB_API int sb_node_del(sb_node *n, const void *key, size_t key_len);

/*
 * The longest value one of our keys of `key_len` bytes can hold on this
 * node, into *max: what one message carries with it, which depends on
 * max_message_size, the address (IPv6 is longer), sealing (40 bytes) and
 * the wire format. A set of a longer value returns SB_ETOOBIG. Errors:
 * SB_EINVAL (NULL, or a key length outside 1 to 255), SB_ETOOBIG (not
 * even an empty value fits a key that long).
 */
SB_API int sb_node_max_value(sb_node *n, size_t key_len, size_t *max);

/*
 * Addresses given to look a member up (sb_node_get, sb_node_keys,
 * sb_node_phi) take any spelling a seed takes: "127.0.0.1:080",
 * "[::ffff:127.0.0.1]:80" and "localhost:80" name the member at
 * "127.0.0.1:80". A name is resolved, which may block as for seeds.
 */

/*
 * Looks up `key` of the node at `addr` (our own address included), as
 * far as this node knows it. On success *value is a copy the caller
 * releases with sb_free(), followed by a NUL byte not counted in *len.
 * Errors: SB_EINVAL, SB_ENOTFOUND (no such node, no such key, or the key
 * is deleted), SB_ENOMEM.
 */
SB_API int sb_node_get(sb_node *n, const char *addr, const void *key,
                       size_t key_len, char **value, size_t *len);

/* One key of a member and its value, as sb_node_keys() copies them out;
 * each is followed by a NUL byte not counted in its length. */
typedef struct sb_kv {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} sb_kv;

/*
 * Lists the keys (not the deleted ones) of the member at `addr` (our own
 * address included), as far as this node knows them, the oldest write
 * first, in an array the caller releases with one sb_free(*out); keys and
 * values live inside that allocation. Errors: SB_EINVAL, SB_ENOTFOUND (no
 * such member), SB_ENOMEM.
 */
SB_API int sb_node_keys(sb_node *n, const char *addr, sb_kv **out,
                        size_t *count);

/*
 * Lists the members this node knows (sb_node_members: all, whatever
 * their status; sb_node_live: live ones, self included) in an array the
 * caller releases with one sb_free(*out); the addresses live inside that
 * allocation. Order is unspecified. Errors: SB_EINVAL, SB_ENOMEM.
 */
SB_API int sb_node_members(sb_node *n, sb_member **out, size_t *count);
SB_API int sb_node_live(sb_node *n, sb_member **out, size_t *count);

/* The current phi (suspicion) of the live member at `addr` into *phi.
 * Errors: SB_EINVAL, SB_ENOTFOUND (unknown, ourselves, or not live: the
 * failure detector watches live members only). */
SB_API int sb_node_phi(sb_node *n, const char *addr, double *phi);

/*
 * Announces a graceful leave: peers report SB_EVENT_LEAVE within a few
 * rounds, provided the node keeps running that long (a few intervals)
 * before sb_node_free(). Our keys can no longer be changed.
 * Errors: SB_EINVAL, SB_ELEFT (already announced), SB_ESTATE
 * (SB_WIRE_REFERENCE: that format cannot announce a leave; peers report
 * the node down once it stops).
 */
SB_API int sb_node_leave(sb_node *n);

/*
 * Joins the node at `addr` ("host:port", the host a name or an IP
 * address) and through it its cluster, at run time: it gets what a seed
 * gets, our digest in a SYN, at once and every round after until a node
 * there answers us, for 10 intervals at most; its cluster's members then
 * come as SB_EVENT_JOIN events. For a node that knows live peers, whose
 * seeds are asked only now and then: to merge two clusters, or reach a
 * node its seeds do not lead to. Returns when the address is resolved
 * and greeted, before anyone answers (sb_node_members() tells who did);
 * the name is resolved in the caller's thread (getaddrinfo may block:
 * give a numeric address from a callback or an event loop). A name gives
 * up to 8 addresses, as a seed's does. Errors: SB_EINVAL (NULL), SB_EADDR
 * (the name does not resolve, or to no address the socket reaches, or
 * only to the node's own), SB_ELIMIT (64 joins under way), SB_ELEFT
 * (after sb_node_leave(), which also ends the joins under way),
 * SB_ESTATE (stopped).
 */
SB_API int sb_node_join(sb_node *n, const char *addr);

/*
 * The keyring of a node created with keys. Rotation with no downtime:
 * install the new key on every node, then make it the primary on every
 * node, then remove the old one from every node; each step completes
 * everywhere before the next starts. The key is copied.
 * - install: adds a key, which opens packets at once (installing a key
 *   twice is no error). SB_ELIMIT beyond SB_MAX_KEYS.
 * - use: makes an installed key the primary, which seals all the node
 *   sends from now on. SB_ENOTFOUND if it is not installed.
 * - remove: removes a key other than the primary. SB_ENOTFOUND if it is
 *   not installed, SB_ESTATE for the primary (make another one primary
 *   first).
 * Errors of all three: SB_EINVAL (NULL; for install, a key of 32 zero
 * bytes, as sb_node_new() refuses one), SB_ESTATE (the node was created
 * without keys: it stays plaintext). Thread-safe.
 */
SB_API int sb_node_key_install(sb_node *n, const uint8_t *key);
SB_API int sb_node_key_use(sb_node *n, const uint8_t *key);
SB_API int sb_node_key_remove(sb_node *n, const uint8_t *key);

/* Copies the node's counters. Errors: SB_EINVAL. */
SB_API int sb_node_stats(sb_node *n, sb_stats *out);

/* Our advertised address (our identity) and the address the socket is
 * bound to (with the real port when bound to port 0). Owned by the node,
 * valid until sb_node_free(). */
SB_API const char *sb_node_addr(const sb_node *n);
SB_API const char *sb_node_bind_addr(const sb_node *n);

/* Releases memory the library handed out. NULL is allowed. */
SB_API void sb_free(void *p);

/* ======================================================================
 * 4. Embedded mode: the caller's event loop drives the node
 * ====================================================================== */

/*
 * With sb_config.embedded, no thread runs. The loop waits until
 * sb_node_fd() is readable or sb_node_timeout_ms() has passed, then calls
 * sb_node_process(). Calls that change state (set, del, leave) may make
 * the next deadline earlier: ask sb_node_timeout_ms() again after them.
 * The other functions stay thread-safe, but a call from another thread
 * does not wake the loop; the caller wakes it if it must.
 */

/* The UDP socket to watch for reading (-1 for NULL). Owned by the node:
 * do not read, write or close it. It stays open until sb_node_free(),
 * the node stopped or not: a loop stops watching it once the node is
 * stopped, which sb_node_timeout_ms() tells (-1), not sb_node_process()
 * alone (its SB_ESTATE also answers a call that raced another, or came
 * from a callback, on a node that still runs). */
SB_API int sb_node_fd(const sb_node *n);

/* Milliseconds until the node must be processed again (0: now, as after
 * a call of sb_node_process() that read a whole batch), rounded up; a
 * timeout for poll() or a timer. -1 (poll's "forever") for NULL or a
 * stopped node: an embedded loop stops watching a node once this is
 * -1 (SB_ESTATE from sb_node_process() says so only with this -1). */
SB_API int sb_node_timeout_ms(sb_node *n);

/*
 * Reads the datagrams waiting on the socket (a bounded batch, at most
 * 64; if it read all 64, more may wait, and sb_node_timeout_ms() is 0
 * until the next call, so that a loop that honours the timeout reads the
 * rest even if its wait is edge-triggered, as epoll with EPOLLET is),
 * runs what is due, and runs the callbacks of what happened. Never
 * blocks, except to resolve seed host names. Errors: SB_EINVAL (NULL),
 * SB_ESTATE (the node was stopped, has its own thread, or the call
 * comes from one of its callbacks or races another sb_node_process() of
 * the same node: only the first is for good, and sb_node_timeout_ms()
 * returning -1 tells it apart).
 */
SB_API int sb_node_process(sb_node *n);

#ifdef __cplusplus
}
#endif

#endif /* SCUTTLEBUTT_H */
