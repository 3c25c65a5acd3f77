/*
 * The protocol engine: one cluster member's Scuttlebutt state machine.
 *
 * Sans-I/O. The engine never reads a clock, touches a socket, starts a
 * thread or calls rand(). Time comes in as `now`, monotonic nanoseconds,
 * on every call that may change state. Packets come in through
 * sb_engine_recv() and go out through the `send` callback, as byte buffers
 * with a peer address string. Randomness comes from a PRNG inside the
 * engine, seeded from the config. Same config, same calls, same outputs.
 *
 * Driving it: call sb_engine_tick() whenever `now` reaches
 * sb_engine_next_deadline(), and sb_engine_recv() for every datagram.
 * Callbacks (send, event, seeds) run synchronously inside these calls and
 * must not call back into the same engine.
 *
 * Not thread-safe: one engine belongs to one thread at a time.
 */
#ifndef SB_ENGINE_H
#define SB_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scuttlebutt.h"

/* Time is monotonic nanoseconds everywhere the engine is driven; these
 * name the units for the engine, the runtime, the simulator, the tools
 * and the tests alike. */
#define MS 1000000ull
#define SEC 1000000000ull

#define SB_MAX_ADDR_LEN 255
/* The largest UDP payload: what a node takes from any peer, whatever its
 * own max_message_size (which bounds only what it sends). */
#define SB_MAX_DATAGRAM 65507
#define SB_MAX_KEY_LEN 255
#define SB_MAX_SEEDS 64
#define SB_MAX_FANOUT 8 /* push trees: one a monitor ring */

typedef struct sb_engine sb_engine;

/* Hands one datagram to the network. `buf` is valid during the call. */
typedef void (*sb_send_fn)(void *userdata, const char *to, const uint8_t *buf,
                           size_t len);
/* Events (sb_event_fn) and seeds (sb_seeds_fn) use the public callback
 * types of scuttlebutt.h. */

typedef struct sb_engine_config {
    const char *addr;          /* advertised "host:port": our identity */
    uint64_t generation;       /* > 0; larger on every restart */
    uint64_t rng_seed;         /* seeds the engine's PRNG */
    uint8_t token_key[16];     /* keys the reply tokens (token.c): drawn
                                  apart from rng_seed, whose PRNG's
                                  outputs go on the wire as push wave ids
                                  and give it away (the runtime draws it
                                  from libsodium's CSPRNG); all zero:
                                  derived from rng_seed (tests, the
                                  simulator) */
    const char *cluster;       /* cluster name; packets of others drop */
    sb_wire wire;              /* SB_WIRE_REFERENCE: the reference Go
                                  library's format and exchange
                                  (docs/compat.md): one exchange per
                                  interval, liveness from direct digests,
                                  no push, keys, cluster, generations
                                  (every node has generation 1), deletes
                                  or leave */

    uint64_t interval_ns;      /* gossip interval: two rounds; default 500 ms */
    size_t max_message_size;   /* the most bytes of UDP payload we send;
                                  default 512 (any datagram up to
                                  SB_MAX_DATAGRAM is taken) */
    double phi_threshold;      /* conviction threshold; default 8.0 */
    uint64_t dead_grace_ns;    /* forget nodes that have not been live
                                  (down, left, never proven alive) this
                                  long; 1 hour; not 0 */
    uint64_t tombstone_grace_ns; /* collect tombstones this old; 1 hour */
    uint32_t phi_window;       /* failure detector window; default 1000,
                                  at most SB_PHI_WINDOW_MAX (100,000) */
    uint32_t monitors;         /* rings of monitors: each node is watched
                                  by up to this many peers, which beat it
                                  (docs/failure-detector.md, section 9);
                                  at most SB_MAX_RINGS; 0 turns monitors
                                  off; default 4 */

    /* Eager push: our fresh keys go at once down push_fanout trees over
     * the live nodes, one wave each (binomial trees over the first
     * push_fanout monitor rings), and every node passes a wave on to its
     * children (docs/protocol.md, section 8); 0 turns pushing off. At
     * most SB_MAX_FANOUT. Every node of a cluster must use the same
     * fanout: a node with a smaller one passes fewer waves on. */
    uint32_t push_fanout;      /* default 3 */
    /* The bandwidth cap: no second sends more than this many bytes, all
     * traffic counted; liveness is served first, then anti-entropy, then
     * push (send.c, docs/protocol.md, section 8.3). At least
     * SB_CAP_MESSAGES x the largest datagram we send (SB_ECONFIG); 0, the
     * default: SB_BANDWIDTH_DEFAULT, or that least if it is more. */
    uint32_t bandwidth;

    uint32_t max_nodes;        /* nodes known at once; default 4096 */
    uint32_t max_keys_per_node; /* default 4096 */
    size_t max_state_bytes;    /* key+value bytes per node; default 1 MiB */

    /* Sealing (docs/security.md): nkeys keys of SB_KEY_SIZE bytes, back
     * to back, the first the primary; 0 keys: plaintext. Nonces are
     * nonce_prefix and a 64-bit counter: the prefix must differ between
     * any two engines that ever share a key (the runtime draws it from
     * libsodium's CSPRNG). max_message_size bounds sealed messages. */
    const uint8_t *keys;
    uint32_t nkeys;
    uint8_t nonce_prefix[16];

    sb_send_fn send;           /* required */
    sb_event_fn on_event;      /* optional */
    sb_seeds_fn seeds;         /* optional */
    void *userdata;            /* passed to the three callbacks */
} sb_engine_config;

/* Fills `cfg` with the defaults; addr, generation and send stay unset. */
void sb_engine_config_init(sb_engine_config *cfg);

/* The least bandwidth cap `cfg` may have: SB_CAP_MESSAGES (24) of the
 * largest datagrams it sends, a second. */
uint64_t sb_engine_least_bandwidth(const sb_engine_config *cfg);

/*
 * Checks a configuration as sb_engine_new() does: SB_OK, or SB_ECONFIG
 * (a bad or missing field) or SB_EADDR (an address that is not canonical
 * numeric "ip:port" or "[ip6]:port" text, addr_text.h)
 * with the reason, one sentence naming the field (and the least value
 * that works, where there is one), written into why[0..why_len) if `why`
 * is not NULL.
 */
int sb_engine_check_config(const sb_engine_config *cfg, char *why,
                           size_t why_len);

/*
 * Creates an engine. The first round is due within one round of `now`
 * (at a random offset, so that a cluster started at once does not gossip
 * in lock step). Errors: those of sb_engine_check_config(), SB_EIO
 * (libsodium cannot start), SB_ENOMEM.
 */
int sb_engine_new(const sb_engine_config *cfg, uint64_t now,
                  sb_engine **out);
/* Frees the engine and everything it holds. NULL is allowed. */
void sb_engine_free(sb_engine *e);

/* When the next call of sb_engine_tick() is due (monotonic ns): the next
 * round, or sooner when fresh keys wait to be pushed. Any call that can
 * change state may move it earlier. */
uint64_t sb_engine_next_deadline(const sb_engine *e);
/* Pushes fresh keys that wait, and runs the gossip round if it is due
 * at `now`. A late call runs one round, not the ones it missed;
 * sb_engine_recv() also runs an overdue round first. */
void sb_engine_tick(sb_engine *e, uint64_t now);
/*
 * Handles one datagram from `from` (the address it came from; replies go
 * there). If a round is overdue by a round or more, it runs first.
 * Malformed, foreign or unauthentic input is dropped and counted by
 * reason (sb_stats.drops), never an error: SB_OK whatever the datagram
 * held; SB_EINVAL only for a NULL engine, address or buffer.
 */
int sb_engine_recv(sb_engine *e, const char *from, const uint8_t *buf,
                   size_t len, uint64_t now);

/*
 * Sets one of our keys. A value equal to the current one is a no-op.
 * Errors: SB_EINVAL (key empty or over 255 bytes, NULL pointers),
 * SB_ETOOBIG (the entry could not travel in one message; with
 * SB_WIRE_REFERENCE also a value over 255 bytes), SB_ELIMIT
 * (max_keys_per_node or max_state_bytes), SB_ELEFT, SB_ENOMEM.
 */
int sb_engine_set(sb_engine *e, const uint8_t *key, size_t key_len,
                  const uint8_t *value, size_t value_len, uint64_t now);
/* Deletes one of our keys (a versioned tombstone). SB_ENOTFOUND if absent;
 * SB_ESTATE with SB_WIRE_REFERENCE, which cannot delete. */
int sb_engine_del(sb_engine *e, const uint8_t *key, size_t key_len,
                  uint64_t now);
/* The keyring of an engine created with keys (SB_ESTATE without):
 * install a key (SB_ELIMIT past SB_MAX_KEYS), make an installed one the
 * primary that seals (SB_ENOTFOUND), remove one that is not the primary
 * (SB_ENOTFOUND, SB_ESTATE). SB_EINVAL for a NULL key. */
int sb_engine_key_install(sb_engine *e, const uint8_t *key);
int sb_engine_key_use(sb_engine *e, const uint8_t *key);
int sb_engine_key_remove(sb_engine *e, const uint8_t *key);

/* Announces a graceful leave; keep ticking a few rounds so it spreads.
 * SB_ELEFT if announced already; SB_ESTATE with SB_WIRE_REFERENCE. */
int sb_engine_leave(sb_engine *e, uint64_t now);

/* Joins the node at `addr` (an address as peers advertise theirs): greets
 * it at once, as a seed, and every round until it has answered us, for
 * JOIN_INTERVALS intervals at most; meanwhile it counts as a seed. Asked
 * again, the rounds start over; a leave ends them. SB_EINVAL for an empty
 * address, SB_EADDR for our own, SB_ELIMIT past SB_MAX_SEEDS joins at
 * once, SB_ELEFT once we announced a leave, SB_ENOMEM. */
int sb_engine_join(sb_engine *e, const char *addr, uint64_t now);

/*
 * Looks up `key` of the node at `addr`. On success *value points into the
 * engine's state, valid until the next call that may change state.
 * Errors: SB_ENOTFOUND (no such node, no such key, or deleted key).
 */
/* Visits a key and its value; both valid during the call. */
typedef void (*sb_key_fn)(void *userdata, const uint8_t *key, size_t key_len,
                          const uint8_t *value, size_t value_len);
/* Calls fn for every key (not the deleted ones) of the member at `addr`,
 * the oldest write first. SB_ENOTFOUND if the member is unknown. */
int sb_engine_keys(const sb_engine *e, const char *addr, sb_key_fn fn,
                   void *userdata);

/*
 * The longest value a key of `key_len` bytes of ours can hold: what one
 * message of this engine carries with it (sealing, the address and the
 * wire format all take their share). SB_EINVAL for a bad key length,
 * SB_ETOOBIG if not even an empty value fits.
 */
int sb_engine_max_value(const sb_engine *e, size_t key_len, size_t *max);

int sb_engine_get(const sb_engine *e, const char *addr, const uint8_t *key,
                  size_t key_len, const uint8_t **value, size_t *value_len);

/* How many members the engine knows (peers and self). */
size_t sb_engine_member_count(const sb_engine *e);
/* The i-th member (0 <= i < count); order is unspecified. */
int sb_engine_member(const sb_engine *e, size_t i, sb_member *out);
/* Finds a member by address; SB_ENOTFOUND if unknown. */
int sb_engine_find(const sb_engine *e, const char *addr, sb_member *out);
/* The current phi of a peer, or a negative value if not tracked. */
double sb_engine_phi(const sb_engine *e, const char *addr, uint64_t now);

/* Copies the counters. */
void sb_engine_stats(const sb_engine *e, sb_stats *out);
/* Datagrams dropped so far for `reason` (sb_stats.drops). */
uint64_t sb_engine_drops(const sb_engine *e, sb_drop_reason reason);
/* Our own address and generation, as configured. */
const char *sb_engine_addr(const sb_engine *e);
uint64_t sb_engine_generation(const sb_engine *e);
/* The token this engine puts in a SYN or an ACK it sends to `addr` at
 * `now`: an ACK or an ACK2 from `addr` must echo it, and does until the
 * token's period and the next are over (token.c; for tests and tools
 * that play a peer; the wire format is in codec.h). */
uint64_t sb_engine_token(const sb_engine *e, const char *addr, uint64_t now);
/* Bytes of memory the engine holds between calls (allocations it made),
 * for benchmarks. */
size_t sb_engine_memory(const sb_engine *e);
/* The most a call took besides, for its scratch: the message being
 * written and the arrays, allocated as sb_engine_recv(), sb_engine_tick()
 * or sb_engine_join() begins and freed before it returns; bounded by the
 * message size, and by the cluster while it is small. */
size_t sb_engine_scratch_peak(const sb_engine *e);
/* The beat gaps this node's monitor detectors estimate, averaged over the
 * peers it watches that have beaten it: mean and standard deviation in
 * ns; returns how many (0: none, and both are 0). For measurements. */
uint32_t sb_engine_beat_gaps(const sb_engine *e, double *mean_ns,
                             double *sd_ns);
/* The summary this engine would send now (summary.c), and whether the
 * one it keeps between changes is the one all its records give: false
 * means a change that should have marked it stale did not. For tests
 * and the fuzzers. */
uint64_t sb_engine_summary(sb_engine *e);
bool sb_engine_summary_fresh(const sb_engine *e);

#endif /* SB_ENGINE_H */
