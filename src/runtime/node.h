/*
 * The runtime's insides, shared by its files: struct sb_node, and what
 * one file offers another. The runtime is one cluster member on a real
 * UDP socket: an sb_node wraps one protocol engine (src/core/engine.h)
 * with what the engine leaves out: a socket, a clock, a lock, callbacks
 * and, unless the caller runs its own event loop, a thread.
 *
 * A packet's path: the socket becomes readable; sb_node_process() (or
 * the node's thread) runs sb_process_step(), which reads it with
 * recvmsg() in sb_socket_receive(), names the sender with
 * sb_addr_format() and hands both to sb_engine_recv() under the lock.
 * The engine answers through sb_socket_send() (still under the lock),
 * which parses the peer's address and calls sendto(). Events the engine
 * reports are copied into a queue (sb_callbacks_queue()); once the lock
 * is released, sb_callbacks_dispatch() runs the user's callbacks.
 *
 * The files:
 *   node.c          sb_node_new(), sb_node_stop(), sb_node_free()
 *   config.c        sb_config: defaults, checks, the node's copy, the
 *                   engine's configuration made from it
 *   socket.c        the UDP socket: bind and our address, datagrams
 *                   sent and read, send errors reported
 *   seed_resolve.c  seed names resolved to addresses for the engine
 *   callbacks.c     where callbacks run: the event queue, its dispatch,
 *                   the mark that a thread is inside a node's callback
 *   process.c       one step of the node (read, tick, seeds, callbacks);
 *                   the embedded mode: sb_node_fd(), sb_node_timeout_ms(),
 *                   sb_node_process()
 *   thread.c        the background thread: started, woken, joined
 *   writes.c        sb_node_set(), sb_node_del(), sb_node_leave()
 *   cluster_keys.c  the keyring: sb_node_key_install(), _use(), _remove()
 *   reads.c         sb_node_get(), sb_node_keys(), members, phi, stats
 *   lock.c          the lock, and the check that the node still runs
 *   log.c           logging through the configured callback
 *   clock.c         the clocks
 *   addr.c          addresses and their text (addr.h)
 *
 * Locking: `lock` guards the engine and every field marked (L);
 * `join_lock` guards the field marked (J). The socket is read only by the
 * one thread inside sb_node_process() (or the node's thread). Callbacks
 * (events, seeds, log) never run with the lock held. The other fields are
 * set at creation and only read after.
 */
#ifndef SB_NODE_H
#define SB_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "engine.h"
#include "scuttlebutt.h"

/* Seed addresses resolved to canonical text, as the engine takes them:
 * n pointers, then their strings, in one allocation of just that size (a
 * node keeps two lists: a few seeds cost bytes, not kilobytes). */
typedef struct seed_list {
    size_t n;
    const char *ptr[];
} seed_list;

/* An event waiting for dispatch; `blob` holds addr, key and value. */
typedef struct queued {
    sb_event ev;
    char *blob;
} queued;

struct sb_node {
    sb_config cfg;             /* a copy; its strings point below */
    char *cluster;
    char **seed_names;         /* the static seed list, copied */
    /* seed names already reported as unusable (hashed), so that a seed
     * that does not resolve yet is logged once, not every round: room for
     * 2 * SB_MAX_SEEDS, allocated at the first report */
    uint64_t *seeds_reported;
    size_t nseeds_reported;

    int fd;
    int family;                /* of the socket */
    unsigned reach;            /* SB_REACH_V4 | SB_REACH_V6 */
    char addr[SB_ADDR_STRLEN]; /* advertised: our identity */
    char bind_addr[SB_ADDR_STRLEN];
    uint8_t *rbuf;             /* rlen bytes: any datagram, whole (a peer
                                  may send more than our own
                                  max_message_size); a mapping of its
                                  own (node.c) */
    size_t rlen;

    pthread_mutex_t lock;
    sb_engine *engine;         /* (L) */
    bool unread;               /* (L) the last step read a whole batch:
                                  more may wait, and the next step is due
                                  at once (sb_node_timeout_ms() 0) */

    uint64_t alone_since;      /* (L) when the node last found itself
                                  with no live peer though it has seeds
                                  or joins to ask; 0: it is not */
    bool alone_reported;       /* (L) said so since */
    bool joins_made;           /* (L) sb_node_join() took an address, and
                                  the node has had no company since */
    seed_list *seeds_given;    /* (L) what the engine holds pointers to */
    seed_list *seeds_fresh;    /* (L) resolved, for the next seeding */
    bool seeds_wanted;         /* (L) the engine was alone: resolve again */

    queued *events;            /* (L) */
    size_t nevents, events_cap;
    uint64_t events_lost;      /* (L) events dropped for lack of memory */

    uint64_t send_errors;      /* (L) */
    uint64_t send_errors_unreported; /* (L) */
    int send_errno;            /* (L) the last error, and where to */
    char send_to[SB_ADDR_STRLEN];
    uint64_t send_reported;    /* (L) when a line last reported them */

    /* datagrams of a peer configured otherwise (another cluster name,
     * key or protocol version): how many since the last report, the last
     * one's reason and sender, when the last report was */
    uint64_t mismatched;       /* (L) */
    sb_drop_reason mismatch_why; /* (L) */
    char mismatch_from[SB_ADDR_STRLEN]; /* (L) */
    uint64_t mismatch_reported; /* (L) 0: never */

    bool processing;           /* (L) a thread is inside sb_process_step() */
    pthread_t processor;       /* (L) which one */

    bool threaded;
    bool stop;                 /* (L) the thread should return */
    bool stopped;              /* (L) sb_node_stop(): calls refused */
    pthread_mutex_t join_lock; /* one join, which every stop waits for */
    bool joined;               /* (J) the thread has been joined */
    pthread_t thread;
    int wake[2];               /* a pipe that wakes the thread */
};

/* clock.c */
uint64_t sb_clock_ns(clockid_t id);
uint64_t sb_clock_now_ns(void);

/* log.c: logs through the configured callback; n is the node, or NULL
 * before one exists. */
__attribute__((format(printf, 4, 5)))
void sb_log_say(const sb_config *cfg, const sb_node *n, sb_log_level level,
                const char *fmt, ...);

/* lock.c */
bool sb_lock_running(sb_node *n);

/* config.c */
int sb_config_check(const sb_config *c);
int sb_config_copy_strings(sb_node *n, const sb_config *cfg);
void sb_config_engine(const sb_node *n, sb_engine_config *e);
int sb_config_check_engine(sb_node *n);

/* socket.c */
int sb_socket_open(sb_node *n, const sb_config *cfg);
void sb_socket_send(void *userdata, const char *to, const uint8_t *buf,
                    size_t len);
/* Reads a batch of datagrams; true if it stopped at the batch's end,
 * with more perhaps waiting. */
bool sb_socket_receive(sb_node *n);
void sb_socket_report_errors(sb_node *n);

/* seed_resolve.c */
seed_list *sb_seed_resolve(sb_node *n);
size_t sb_seed_resolve_hand_over(void *userdata, const char **out,
                                 size_t max);
void sb_seed_resolve_refresh(sb_node *n);
void sb_seed_resolve_report_alone(sb_node *n);

/* callbacks.c */
const sb_node *sb_callbacks_begin(const sb_node *n);
void sb_callbacks_end(const sb_node *outer);
bool sb_callbacks_inside(sb_node *n);
bool sb_callbacks_any(void);
void sb_callbacks_queue(void *userdata, const sb_event *ev);
void sb_callbacks_dispatch(sb_node *n);

/* process.c */
int sb_process_step(sb_node *n);

/* thread.c */
int sb_thread_start(sb_node *n, const sb_config *cfg);
void sb_thread_wake(sb_node *n);
void sb_thread_end(sb_node *n);
void sb_thread_join(sb_node *n);
bool sb_thread_ended(sb_node *n);

/* writes.c */
bool sb_writes_key_ok(const void *key, size_t key_len);

#endif /* SB_NODE_H */
