/*
 * scuttlebutt: cluster membership and state propagation over UDP gossip.
 *
 * This is the one public header of the library. Every public name starts
 * with `sb_` (functions, types) or `SB_` (macros, constants).
 *
 * This part of the header holds what every layer shares: version macros,
 * error codes, node statuses, event kinds and the statistics counters.
 * The runtime API (sockets, threads) is declared here as it is built.
 */
#ifndef SCUTTLEBUTT_H
#define SCUTTLEBUTT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SB_VERSION_MAJOR 0
#define SB_VERSION_MINOR 1
#define SB_VERSION_PATCH 0
#define SB_VERSION_STRING "0.1.0"
/* The version as one comparable number: 0x00MMmmpp. */
#define SB_VERSION_HEX \
    ((SB_VERSION_MAJOR << 16) | (SB_VERSION_MINOR << 8) | SB_VERSION_PATCH)

/* The wire protocol version this library speaks (see docs/protocol.md). */
#define SB_PROTOCOL_VERSION 1

/*
 * Error codes. Every call that can fail returns SB_OK (0) or one of these
 * negative values. sb_strerror() describes a code, sb_err_name() names it.
 */
#define SB_ERRORS(X)                                                        \
    X(SB_EINVAL, -1, "invalid argument")                                    \
    X(SB_ENOMEM, -2, "out of memory")                                       \
    X(SB_ETOOBIG, -3, "entry would not fit into one message")               \
    X(SB_ENOTFOUND, -4, "no such node or key")                              \
    X(SB_ELIMIT, -5, "a configured bound would be exceeded")                \
    X(SB_ELEFT, -6, "the node has left the cluster")                        \
    X(SB_EADDR, -7, "invalid or unusable address")                          \
    X(SB_ECONFIG, -8, "invalid configuration")                              \
    X(SB_ESTATE, -9, "call not allowed in this state")                      \
    X(SB_EIO, -10, "input/output error")

enum sb_error {
    SB_OK = 0,
#define SB_ERROR_ENUM_(name, value, text) name = value,
    SB_ERRORS(SB_ERROR_ENUM_)
#undef SB_ERROR_ENUM_
};

/* A static, human-readable description of an error code; never NULL. */
const char *sb_strerror(int err);
/* The symbolic name of an error code ("SB_EINVAL"); never NULL. */
const char *sb_err_name(int err);

/* What a node knows about another node's liveness. */
typedef enum sb_status {
    SB_STATUS_JOINING = 0, /* known, but no proof of life seen yet */
    SB_STATUS_LIVE = 1,    /* heartbeats arrive */
    SB_STATUS_DOWN = 2,    /* convicted by the failure detector */
    SB_STATUS_LEFT = 3     /* announced a graceful leave */
} sb_status;

/* A static name for a status ("live", "down", ...); never NULL. */
const char *sb_status_name(sb_status status);

/* The kinds of event a node reports about the cluster. */
typedef enum sb_event_type {
    SB_EVENT_JOIN = 1,   /* a node became live (new, or back from down) */
    SB_EVENT_LEAVE = 2,  /* a live node went down or left gracefully */
    SB_EVENT_UPDATE = 3, /* a node set a key (value is the new value) */
    SB_EVENT_DELETE = 4  /* a node's key was deleted or its state reset */
} sb_event_type;

/*
 * One event. All pointers are borrowed: they are valid only during the
 * callback that receives the event; copy what you keep.
 */
typedef struct sb_event {
    sb_event_type type;
    const char *addr;      /* the node's advertised "host:port" */
    uint64_t generation;   /* the node's generation (incarnation) */
    sb_status status;      /* the node's status after the event */
    const uint8_t *key;    /* UPDATE, DELETE: the key; NULL otherwise */
    size_t key_len;
    const uint8_t *value;  /* UPDATE: the value; NULL otherwise */
    size_t value_len;
} sb_event;

/* Why an incoming packet (or part of one) was dropped. */
#define SB_DROPS(X)                                                          \
    X(SB_DROP_TRUNCATED, "truncated")                                        \
    X(SB_DROP_MAGIC, "not a scuttlebutt packet")                             \
    X(SB_DROP_VERSION, "unsupported protocol version")                       \
    X(SB_DROP_CLUSTER, "another cluster")                                    \
    X(SB_DROP_TYPE, "unknown message type")                                  \
    X(SB_DROP_MALFORMED, "malformed")                                        \
    X(SB_DROP_OVERSIZE, "larger than max_message_size")                      \
    X(SB_DROP_LIMIT_NODES, "max_nodes reached")                              \
    X(SB_DROP_LIMIT_KEYS, "max_keys_per_node reached")                       \
    X(SB_DROP_LIMIT_BYTES, "max_state_bytes reached")                        \
    X(SB_DROP_ZOMBIE, "state of a forgotten node")                           \
    X(SB_DROP_GAP, "delta would leave a version gap")

typedef enum sb_drop_reason {
#define SB_DROP_ENUM_(name, text) name,
    SB_DROPS(SB_DROP_ENUM_)
#undef SB_DROP_ENUM_
    SB_DROP_COUNT_
} sb_drop_reason;

/* A static description of a drop reason; never NULL. */
const char *sb_drop_name(sb_drop_reason reason);

/* Counters a node keeps about itself. */
typedef struct sb_stats {
    uint64_t packets_in, bytes_in;
    uint64_t packets_out, bytes_out;
    uint64_t rounds;
    uint64_t pushes;                  /* push packets sent (in packets_out) */
    uint64_t pushes_over_budget;      /* push packets the budget held back */
    uint64_t drops[SB_DROP_COUNT_];   /* indexed by sb_drop_reason */
    uint32_t nodes[4];                /* indexed by sb_status, self included */
} sb_stats;

#ifdef __cplusplus
}
#endif

#endif /* SCUTTLEBUTT_H */
