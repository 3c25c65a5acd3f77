/*
 * The engine's insides, shared by the files of the core: its struct, its
 * scratch space, the table of wire operations, what one file offers another.
 *
 * The files, the protocol's first (they call one another), then the
 * structures under them, which call none of them:
 *   engine.c        creation, receive and dispatch, the round's skeleton,
 *                   local writes, reads
 *   exchange.c      our protocol: SYN, ACK, ACK2; a PUSH of our format
 *                   is handed to push.c
 *   round.c         what our round sends: its SYN's target, probes, seeds
 *   announce.c      news of members or keys told at once to a few peers
 *   ref_exchange.c  the reference Go library's exchange (docs/compat.md)
 *   monitor.c       monitors: beats sent to them, the peers we watch,
 *                   verdicts written and withdrawn
 *   push.c          eager push: trees over the rings, waves, the outbox
 *   sweep.c         a joining node's transfer of every record
 *   range.c         where two nodes differ: fingerprints of id ranges,
 *                   descended into
 *   apply.c         taking in a delta: bounds, gaps, resets
 *   plan.c          what an ACK, ACK2 or PUSH carries; digest sampling
 *   summary.c       the summary: one number for a node's records
 *   seeds.c         the seeds: fetched, recognised, drawn; and the
 *                   addresses to join, greeted until they answer
 *   liveness.c      peers added and removed, statuses, events, conviction
 *                   (by our detector or by monitors' verdicts), tombstone
 *                   collection
 *   send.c          every datagram leaves there (sealing, counters)
 *   token.c         reply tokens: what a SYN or an ACK carries, what its
 *                   answer echoes
 *   recent.c        the ring of recent changes: news our SYNs and ACKs
 *                   offer
 *   scratch.c       the scratch arrays of one call, sized to what one
 *                   message carries
 * under them state.c (peers and keys), ring.c (the monitor rings), phi.c
 * (the failure detectors), waves.c (the push waves remembered),
 * outbox.c (push items and the children each is due to), bucket.c
 * (token buckets), codec.c and refwire.c (the two wire
 * formats), keyring.c (sealing).
 */
#ifndef SB_INTERNAL_H
#define SB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bucket.h"
#include "codec.h"
#include "engine.h"
#include "keyring.h"
#include "outbox.h"
#include "ring.h"
#include "rng.h"
#include "state.h"
#include "waves.h"

/* Peers whose keys or leaving bit changed lately: SYNs list them first,
 * and an ACK offers their fresh keys to an initiator that did not list
 * them (from `before`, the version peers most likely hold; NO_DELTA when
 * there is nothing to offer). */
#define BOLD_SEEDS 8          /* seeds known to be ours (reference wire);
                                 past them, the others stay shy a while */
#define RECENT 64
#define RECENT_ROUNDS 8       /* how long a change counts as recent */
#define QUIET_SYN_INTERVALS 20 /* at rest, a quiet SYN this often */
#define ANNOUNCE_MAX 16        /* peers news goes to at once, at most */
#define ROUND_REACH 4         /* more live peers probed a round once we
                                 have heard no one for
                                 ROUND_REACH_BEATS beat periods (round.c) */
#define ROUND_REACH_BEATS 2
#define ROUND_REACH_ROUNDS 24 /* and more if need be, so that every
                                 peer is tried within this many rounds:
                                 before a node takes itself to be alone
                                 (liveness.c, 28 rounds after they start) */
#define HEARD 8               /* the peers we heard from last, reached
                                 first (round.c) */
#define SWEEP_BURST 64        /* SWEEP messages answering one SYN, at most */
#define SWEEP_HELD 8          /* sweeps held back at once, at most */
#define SWEEP_BYTES_PER_S (512.0 * 1024) /* all the SWEEPs a node sends */
#define RETURNS_SHARE 4       /* a node sweeps again when more than 1 /
                                 this of the live nodes came back from
                                 down within a second (sweep.c) */
#define RETURNS_LEAST 8       /* and at least this many */
#define SB_CAP_MESSAGES 24    /* the cap is at least this many of our
                                 largest datagrams a second (send.c) */
#define RANGES 16             /* parts a DIFF left to descend into, at
                                 most */
#define RANGE_ROUNDS 4        /* rounds without agreeing with anyone before
                                 our SYNs carry a range */
#define RANGE_DESCENTS 32     /* SYNs that descend into ranges at once, a
                                 round, at most (exchange.c) */
#define RANGE_ASKED 8         /* SYNs of fingerprints whose DIFF may still
                                 come (range.c) */
#define RANGE_LANES 4         /* chains a descent goes on in at once, the
                                 round's SYN one (sb_exchange_lanes()) */
#define NO_DELTA UINT64_MAX
#define BEHIND 8              /* writers a SYN asks to catch up on */
#define WANTED 32             /* unknown ids a SYN asks for in full */
#define WAVES_LEAST 256       /* push waves remembered, not passed on
                                 twice: at least this many */
#define WAVES_WINDOW (250 * MS) /* and as many as the cap lets pass in
                                 this long, */
#define WAVE_BYTES 128        /* at a wave for every this many bytes */
#define WAVES_SPREAD SEC      /* rather than forget a wave that came
                                 within this long, */
#define WAVES_GROWTH 16       /* the set doubles, up to this many times
                                 its first size (push.c) */
#define PUSH_LINGER (10 * MS) /* a child gets a PUSH at most this often */
#define PUSH_LINKS 64         /* children whose last PUSH is remembered */
#define PUSH_REST (10 * SEC)  /* the push's memory is freed after this
                                 long without a push */
#define OUTBOX_MESSAGES 4     /* the outbox holds at least this many
                                 messages' items */
#define OUTBOX_LINGERS 4      /* and what the cap sends in this many
                                 PUSH_LINGER pauses */
#define OUTBOX_SENDS 256      /* to go to at least this many children */
#define OUTBOX_ITEM_BYTES 32  /* and to one for every this many bytes */
#define OUTBOX_CHILDREN 256   /* for at most this many children (a node's
                                 are among fanout x (log2(N) + 1) ring
                                 neighbours: 39 at 4096 nodes) */
#define OUTBOX_BACKED_UP 4    /* our own push waits while the outbox is
                                 fuller than 1/this */
#define EARLY_ITEMS 64        /* pushed items kept for the one before */
#define EARLY_MESSAGES 16     /* in at most this many messages' bytes */
#define EARLY_WAIT (20 * MS)  /* for at most this long */
#define LOSSY_SHARE 20        /* more than 1/this of them given up: */
#define LOSSY_LEAST 100       /* (of at least this many) */
#define LOSSY_HOLD (10 * SEC) /* every push down every tree for this long */
#define WRITER_BITS 512       /* the bitmap that counts writers (push.c) */
#define SHARE_MESSAGES 4      /* our pushes may burst this many messages */
#define DEAF_ROUNDS 4         /* rounds without hearing anyone before our
                                 heartbeat stands still */
/*
 * A node gossips EXCHANGES times per interval, a round every
 * interval / EXCHANGES, each round a SYN to one random peer. A SYN's
 * digest, and the entries an ACK adds of its own, take at most
 * DIGEST_SHARE percent of a message: the more peers a node hears from,
 * and the sooner, the more often fresh heartbeats reach it, for the same
 * bytes (docs/protocol.md, section 5, has the measurements).
 */
#ifndef EXCHANGES /* both overridable at build time for bench/ */
#define EXCHANGES 2
#endif
#ifndef DIGEST_SHARE
#define DIGEST_SHARE 45
#endif

/* A node's monitors on the rings: its predecessor on each, and the
 * first one not accused (monitor.c). */
#define SB_MONITORS_MAX (2 * SB_MAX_RINGS)

/* A peer this node watches as its monitor (monitor.c). */
typedef struct watch {
    uint64_t id;
    sb_phi_normal phi;
    uint64_t heartbeat;       /* the one its last beat carried */
    uint64_t since;           /* when it became ours, or last refuted us */
    bool proven;              /* a beat came since it became ours */
    bool past;                /* ours only by looking past the accused */
    uint8_t refuted;          /* our verdicts it refuted since its last
                                 beat */
    bool answered;            /* not proven, it answered a probe of ours
                                 since it became ours */
    bool guilty;              /* scratch for the round's judgement */
} watch;

/* A verdict this node holds: the subject, the heartbeat it names, and
 * ours when we wrote it. */
typedef struct verdict {
    uint64_t id;
    uint64_t heartbeat;
    uint64_t own;
} verdict;

#define VERDICT_KEY_LEN 8     /* "\0v" and the subject's 48-bit id */
#define VERDICT_VALUE_LEN 16  /* the subject's heartbeat it names, then
                                 the writer's own, both u64 big endian */

typedef struct recent {
    uint64_t id;
    uint64_t at;
    uint64_t before;
} recent;

/* A peer's delta to send: the peer, and what the receiver already has. */
typedef struct cand {
    sb_peer *n;
    uint64_t from;    /* the receiver holds every version <= from */
    uint32_t first;   /* planned: index of the first key to send */
    uint32_t nkeys;   /* planned: how many keys */
    uint32_t tie;     /* random tie-breaker for the order */
    bool reset;       /* replay n from scratch (see plan.c) */
    bool whole;       /* the receiver lacks n entirely */
    bool news;        /* a recent change offered: kept (plan.c) */
    bool down;        /* we hold n down by verdicts (the delta's flag) */
} cand;

/* A child that got a PUSH lately, and when (push.c). */
typedef struct push_link {
    uint64_t id, sent;
} push_link;

/* A pushed item that came before one it follows (push.c): its bytes at
 * early[at, at + len), kept until `until` for the one before it; the
 * record its delta speaks of (NULL: none), as found when the state's
 * `changes` was found - 1 (0: not looked up); and when it was last
 * found refused, the count of its record's bucket of touches + 1 (0:
 * not refused since it was looked up). */
typedef struct push_early {
    uint64_t until;
    uint32_t at, len;
    const sb_peer *peer;
    uint64_t found;
    uint32_t bucket, refused;
} push_early;

/* A digest entry of a received message, with the peer it names (NULL if
 * unknown). */
typedef struct entry_ref {
    sb_digest_entry d;
    sb_peer *n;
} entry_ref;

/*
 * Scratch space, owned by the engine for the length of one call that
 * receives or gossips (sb_engine_recv(), sb_engine_tick(),
 * sb_engine_join()): allocated when the call begins, freed before it
 * returns, so that an engine between calls holds none of it. Each array
 * has one user at a time: a message is built or read from start to end
 * before the next one begins, and sent as soon as it is written. None
 * holds a slot per known peer: most hold what one message of ours can
 * carry (`most` entries or deltas: every entry and delta takes
 * SB_DIGEST_ENTRY_MIN bytes or more), or fewer while the cluster is
 * smaller (`slots`, grown as peers are added); the digest is grown to
 * what the message at hand needs. Their cost does not grow with the
 * cluster.
 */
typedef struct sb_scratch {
    uint8_t *message;         /* the message being written (send.c):
                                 message_size bytes */
    size_t message_size;      /* max_message_size */
    uint32_t most;            /* max_message_size / SB_DIGEST_ENTRY_MIN + 1 */
    uint32_t slots;           /* sized for this many peers (the known
                                 ones, one more and an eighth) */
    bool held;                /* a call holds the arrays (sb_scratch_hold()) */
    size_t peak;              /* the most the arrays took in one call */
    sb_peer **peers;          /* a list being built: a SYN's digest, a
                                 plan's requests, an announcement's
                                 picks: npeers slots */
    sb_peer **ahead;          /* a plan's peers where our heartbeat is
                                 newer: nahead slots */
    sb_peer **sample;         /* a digest's random sample: nsample slots */
    cand *cands;              /* a plan's best deltas (plan.c: 3 x most),
                                 a sweep's, the reference's delta:
                                 ncands slots */
    uint32_t npeers, nahead, nsample, ncands;
    uint64_t *unknown;        /* ids a plan asks for: nunknown (`most`)
                                 slots */
    uint32_t nunknown;
    entry_ref *digest;        /* the digest of the message at hand */
    uint32_t digest_cap;      /* grown to the largest digest of the call */
} sb_scratch;

/* What one ACK, ACK2 or PUSH will carry, before it is sized to the
 * message: counts into the scratch arrays (plan.c). */
typedef struct plan {
    uint32_t nunknown;        /* scratch.unknown: ids to ask for in full */
    uint32_t nreq;            /* scratch.peers: where we are behind */
    uint32_t nahead;          /* scratch.ahead: where our heartbeat is
                                 newer */
    uint32_t ncands;          /* scratch.cands: deltas the peer lacks,
                                 the best scratch.ncands of them */
    bool heap;                /* cands is a heap, worst on top (plan.c) */
    uint32_t nwritten;        /* sb_plan_write(): cands[0..nwritten) went
                                 out */
    bool fill;                /* top up the digest with random peers */
    bool always;              /* ACK: sent even if empty (a SYN asked) */
    uint64_t echo;            /* ACK, ACK2: the token of the message
                                 answered */
} plan;

/*
 * The wire operations of a protocol, chosen at creation by
 * sb_engine_config.wire: our own (exchange.c) or the reference Go
 * library's (ref_exchange.c). The rest of the engine tests no protocol
 * flag; it asks the table.
 */
/* An address to join (sb_engine_join()): greeted every round, and taken
 * for a seed, until a node there has answered us since the join (not
 * before: a member held down answered us once) or `rounds` ran out. */
typedef struct sb_join {
    char *addr;
    uint32_t rounds;
    bool answered;            /* an answer came from addr since */
} sb_join;
#define JOIN_INTERVALS 10     /* how long a join is tried, unanswered */

typedef struct sb_wire_ops {
    uint32_t rounds;          /* gossip rounds per interval */
    bool leaves;              /* the format can announce a leave */
    /* one datagram from `from`: taken, answered, or dropped and counted */
    void (*recv)(sb_engine *e, const char *from, const uint8_t *buf,
                 size_t len, uint64_t now);
    /* the round's messages, after the peers due were attended to */
    void (*round)(sb_engine *e, uint64_t now);
    /* a message to `to`, which may not know us, that asks for its state
     * and offers ours: what a seed gets */
    void (*greet)(sb_engine *e, const char *to, uint64_t now);
    /* news of members we did not know, at once (NULL: by rounds only) */
    void (*announce)(sb_engine *e, uint64_t now);
    /* SB_OK if a key entry of ours can travel; else the write's error */
    int (*check_write)(const sb_engine *e, size_t key_len, size_t value_len,
                       bool deleted);
    /* liveness from direct contact only (liveness.c): the detector's mean
     * gap is at least this many rounds per peer (0: no floor), and an
     * unproven peer goes down after as long as a live one's silence may
     * last (false: it waits for the dead-node grace) */
    double gap_per_peer;
    bool unproven_expire;
    /* phi_threshold is multiplied by this before a peer is judged: 1 for
     * ours; the reference's phi is silence / mean where ours is
     * silence / (mean x ln 10), so its threshold means ln 10 times less */
    double threshold_scale;
} sb_wire_ops;

extern const sb_wire_ops sb_scuttlebutt_wire;
extern const sb_wire_ops sb_reference_wire;

struct sb_engine {
    sb_engine_config cfg;
    const sb_wire_ops *wire;
    char *cluster;            /* copy of the config string */
    uint32_t cluster_id;
    sb_rng rng;
    uint64_t version_base;    /* our key versions are above it */
    sb_state st;
    uint64_t agreed;          /* our summary when a peer's last matched it;
                                 0: the last differed */
    uint64_t agreed_at;       /* when a peer's summary last matched ours */
    sb_peer *self;
    uint32_t nstatus[4];      /* peers by status, self included */
    uint64_t live_lost;       /* times a live peer stopped being live or
                                 was forgotten (liveness.c): a peer found
                                 live since is live still */
    uint64_t round_ns;        /* interval / wire->rounds */
    uint64_t next_round;
    bool announce;            /* we learned news: tell a few peers */
    bool announce_members;    /* of a member we did not know: in full */
    bool sweeping;            /* we joined, or many nodes came back from
                                 down: our SYNs ask for a sweep */
    uint64_t sweep;           /* its cursor: the end of the furthest
                                 range sent us */
    uint32_t returns;         /* nodes back from down since returns_at */
    uint64_t returns_at;      /* the start of their second */
    sb_bucket sweep_bytes;    /* what we send others' sweeps (sweep.c) */
    struct sweep_held {       /* sweeps held back until their askers
                                 answer our ACKs (sweep.c); id 0: none.
                                 SWEEP_HELD slots, NULL while none is
                                 held (sb_sweep_tidy()) */
        uint64_t id, cursor, token, at;
    } *held;
    struct sb_part {          /* parts of the id space where a peer's
                                 records differed from ours (range.c):
                                 RANGES slots, allocated as a DIFF names
                                 the first, freed at the first round with
                                 none left (sb_range_tidy()) */
        uint64_t from, to;
    } *ranges;
    uint32_t nranges;
    uint32_t descents;        /* SYNs sent at once this round to descend
                                 into them (exchange_descend()) */
    uint64_t range_peer;      /* the peer whose DIFF left them */
    struct sb_asked {         /* the ranges our last RANGE_ASKED SYNs of
                                 fingerprints were of: those a DIFF may
                                 answer, each once (range.c) */
        uint64_t from, to;
    } asked[RANGE_ASKED];
    uint32_t nasked;          /* SYNs of fingerprints sent: the next slot */
    uint64_t announce_at;     /* not before: a round after the last */
    uint64_t members_at;      /* a full one not before: a round after the
                                 last full one (sb_announce_due()) */
    uint64_t last_round;
    uint64_t resumed_at;      /* when a round found we had been paused
                                 (engine_round()); 0: never */
    uint64_t last_heard;      /* when a valid datagram last came in */
    uint64_t heard[HEARD];    /* the members it came from, the last
                                 first, each once: nheard of them */
    uint32_t nheard;
    uint32_t reach_next;      /* the probes while we hear no one: the
                                 next peer index they try, less an
                                 offset (exchange.c) */
    bool alone;               /* monitors: we heard no one for long, and
                                 hold every peer down (liveness.c) */
    uint32_t epoch;           /* for sb_peer.mark */
    size_t max_key_entry;     /* largest key entry that fits a message */
    sb_stats stats;

    recent *recent;           /* the changes of the last RECENT_ROUNDS,
                                 the newest at recent_head - 1: RECENT
                                 slots, allocated at a change and freed
                                 once none is recent (recent.c) */
    uint32_t recent_head;     /* changes noted since it was allocated */

    /* ids seen in ACK digests that we do not know: our next SYN asks
     * for them in full (WANTED slots, allocated at the first, freed as
     * the SYN takes them; NULL meanwhile) */
    uint64_t *wanted;
    uint32_t nwanted;
    uint64_t *behind;         /* ids of writers a push of which left a
                                 gap: our next SYN lists them first
                                 (BEHIND slots, as `wanted`) */
    uint32_t nbehind;

    const char **seeds;       /* the seeds fetched last: seeds_cap slots */
    size_t nseeds, seeds_cap;
    bool seeds_fetched;       /* the seeds callback was asked once */
    uint64_t shy_until;       /* reference wire: until then our digest
                                 requests to a seed that knows no one
                                 name no one (ref_exchange.c) */
    uint64_t *bold;           /* seeds (sb_peer_id(addr, 0)) that
                                 answered as one of ours: never shy
                                 (BOLD_SEEDS slots from the first) */
    uint32_t nbold;
    sb_join *joins;           /* addresses sb_engine_join() was given,
                                 njoins of them (seeds.c) */
    uint32_t njoins;

    /* eager push: our fresh keys wait until push_due; waves seen lately;
     * then the bandwidth cap */
    uint64_t push_due;
    bool push_pending;        /* fresh keys of ours wait to be pushed */
    uint64_t push_from;       /* if push_pending: peers hold our versions
                                 <= this */
    bool push_news;           /* a push is due with no key: our record's
                                 header alone (a leave, a refutation) */
    bool alone_pushed;        /* a push of ours went down one tree since
                                 the last down every tree, or the last
                                 rest (sb_push_free()) */
    /* the push's memory, one block: allocated at the first item passed
     * on, freed after PUSH_REST without a push (sb_push_rest()); NULL
     * meanwhile. The outbox's struct, the children sent to lately, then
     * the outbox: push items to pass on, each stored once, and the
     * children each goes to; a child gets one PUSH of every item it is
     * due, at most every PUSH_LINGER */
    void *push_block;
    sb_outbox *outbox;        /* at the block's start; push_outbox_*()
                                 (push.c) */
    sb_waves waves;           /* the waves seen lately: push_waves()
                                 keys, more in a storm (push.c); its own
                                 memory, allocated and freed with the
                                 block */
    push_link *links;         /* PUSH_LINKS slots */
    uint64_t push_ready;      /* when the outbox's first child may get
                                 its items, if it holds any */
    uint64_t push_at;         /* when a push last came or went */
    sb_bucket cap;            /* the bandwidth cap (send.c) */
    sb_bucket push_share;     /* our own pushes' fair share (push.c) */
    uint64_t writers[2][WRITER_BITS / 64]; /* the roots of the pushes of
                                 this second and the last, a bit each */
    uint64_t writers_since;   /* when this second began */
    uint64_t alone_at;        /* when a push past its share last came */
    uint64_t capped_at;       /* when a datagram of push last waited for
                                 the cap */
    uint32_t alone_seen[2];   /* such items that came, this second and
                                 the last */
    uint32_t alone_lost[2];   /* and those given up for a gap */
    uint64_t lossy_until;     /* till then, every push goes down every
                                 tree */
    uint64_t alone_from;      /* if alone_pushed: the version the first
                                 push of ours down one tree since the
                                 last down every tree started from
                                 (push.c, push_start()) */
    push_early *early_items;  /* pushed items that came before the ones
                                 they follow: EARLY_ITEMS slots, then
                                 `early`'s EARLY_MESSAGES x
                                 max_message_size bytes; NULL until the
                                 first */
    uint8_t *early;
    uint32_t early_count, early_len;

    /* the message at hand: the bound of its reply, its source, and what
     * that source may tell us (docs/security.md, "Who speaks for whom") */
    size_t reply_max;
    const char *from;
    uint64_t from_token;      /* a SYN's: our token for its source,
                                 which the ACK answering it carries */
    bool from_member;         /* a peer we know, or a seed */
    bool answered;            /* an ACK or ACK2 that echoes our token: its
                                 source proved it holds its address */

    uint8_t token_key[16];    /* keys the reply tokens (token.c) */

    /* monitors (monitor.c, ring.h): the rings of live peers, the peers we
     * watch, the monitors our last beats went to, our verdicts */
    sb_rings rings;
    watch *watch;             /* watch_cap slots: cfg.monitors, more
                                 while we look past accused subjects */
    uint32_t nwatch, watch_cap;
    uint64_t watch_rings;     /* the subjects' stamp (monitor.c,
                                 monitor_stamp()) */
    uint64_t beat_to[SB_MONITORS_MAX];
    uint32_t nbeat_to;
    uint64_t beat_rings;      /* beat_to's stamp, once it holds all our
                                 monitors (monitor_stamp()) */
    uint64_t beats;           /* BEATs sent: each carries the count */
    uint64_t next_beat;
    uint64_t withhold_since;  /* all our subjects fell silent then; or 0 */
    bool withhold_deaf;       /* meanwhile we heard no one for a beat
                                 period: we were cut off */
    uint64_t refuted_at;      /* when our heartbeat last moved to refute */
    bool concur_due;          /* since then our verdicts are void: once
                                 the doubt is over, we sign again where
                                 we watch a peer held down (monitor.c) */
    bool rejudge;             /* judge the accused peers marked since
                                 (sb_peer.rejudge) at the next round */
    bool remark;              /* a vote may have been voided since the
                                 accused were marked (a verdict withdrawn
                                 or overwritten, a heartbeat moved, a
                                 record added or removed): the next
                                 rejudge marks them afresh */
    /* the peers that may hold a verdict (a live one of theirs came in or
     * was written since the last rejudge looked): only those they name
     * can be convicted. If one could not be listed (out of memory), the
     * next rejudge lists them again from every record, and judges every
     * live peer while one still cannot be. */
    uint64_t *voters;
    uint32_t nvoters, voters_cap;
    bool voters_lost;
    uint64_t differs;         /* a subject whose beat's summary differed
                                 from ours: our next SYN goes to it; or 0 */
    verdict *verdicts;        /* grown as needed */
    uint32_t nverdicts, verdicts_cap;

    /* Sealing (keyring.h): cfg.max_message_size is the plaintext's bound,
     * SB_SEAL_OVERHEAD below wire_max, the bound on the wire; a message
     * is sealed into `sealed` (wire_max bytes) as it is sent, and one
     * received is opened into `opened`, grown to the largest datagram
     * received (a peer may send up to SB_MAX_DATAGRAM). */
    bool sealing;
    sb_keyring *keyring;      /* if sealing */
    uint8_t nonce[SB_NONCE_SIZE]; /* the prefix, then a 64-bit counter */
    size_t wire_max;
    uint8_t *sealed, *opened;
    size_t opened_cap;

    sb_scratch scratch;
    plan plan;                /* the one message being planned */
};

static inline uint64_t sb_add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Time t moved past a pause of ours (nothing could be heard in it, so it
 * does not count as silence), but not past now (the pause rule,
 * docs/failure-detector.md, section 7). */
static inline uint64_t sb_past_pause(uint64_t t, uint64_t pause,
                                     uint64_t now)
{
    t = sb_add_sat(t, pause);
    return t > now ? now : t;
}

static inline sb_digest_entry sb_entry_of(const sb_peer *n)
{
    return (sb_digest_entry){ n->id, n->heartbeat, n->leaving,
                              n->max_version, n->gc_version };
}

/* ---- summary.c ---- */
uint64_t sb_summary(sb_engine *e);
bool sb_summary_compare(sb_engine *e, uint64_t theirs, uint64_t now);

/* ---- token.c ---- */
void sb_token_init(sb_engine *e, const uint8_t key[16], uint64_t seed);
/* Our token for addr, made now. */
uint64_t sb_token(const sb_engine *e, const char *addr, uint64_t now);
/* Whether echo is a token of ours for addr of this period or the last. */
bool sb_token_echoed(const sb_engine *e, const char *addr, uint64_t echo,
                     uint64_t now);

/* ---- monitor.c ---- */
/* Where a peer must lie on the rings for us to be among its monitors
 * (sb_monitor_reach()). */
typedef struct sb_reach {
    uint64_t stamp;              /* rings.changes + 1 when read; 0: not */
    uint64_t to[SB_MAX_RINGS];   /* on ring i: the first node after us
                                    not accused (us: the whole ring) */
} sb_reach;

void sb_monitor_round(sb_engine *e, uint64_t now);
void sb_monitor_recv(sb_engine *e, const sb_msg *m, uint64_t now);
void sb_monitor_forgive_pause(sb_engine *e, uint64_t pause, uint64_t now);
void sb_monitor_concur(sb_engine *e, const sb_peer *x, uint64_t now);
/* False if we are surely not among peer id's monitors; r is read off the
 * rings again when they changed. The accused it was read with must
 * stand (a rejudge's loop marks only peers held down, off the rings). */
bool sb_monitor_reach(const sb_engine *e, sb_reach *r, uint64_t id);
void sb_monitor_doubt(sb_engine *e, uint64_t now);
void sb_monitor_answered(sb_engine *e, const sb_peer *n, uint64_t now);
/* Whether we have heard no one for `periods` beat periods. */
bool sb_monitor_unheard(const sb_engine *e, uint64_t now, uint32_t periods);
/* Peer id's monitors in our view: its predecessors on the rings, and on
 * each ring the first one not accused, looking past those accused;
 * distinct, into out[SB_MONITORS_MAX]. */
uint32_t sb_monitor_monitors(const sb_engine *e, uint64_t id, uint64_t *out);
/* Peer id's monitor on each ring looking past accused predecessors (none
 * on a ring where all are accused); distinct, into out[SB_MAX_RINGS]. */
uint32_t sb_monitor_past(const sb_engine *e, uint64_t id, uint64_t *out);

/* ---- exchange.c ---- */
void sb_exchange_probe(sb_engine *e, sb_peer *n, bool now_or_never,
                       uint64_t now);
/* A SYN: quiet (no digest), or the round's (a sweep's cursor or a range
 * may go in it). */
void sb_exchange_write_syn(sb_engine *e, sb_writer *w, bool quiet,
                           bool round, uint64_t now);
void sb_exchange_send_syn(sb_engine *e, sb_traffic t, const char *to,
                          sb_writer *syn, uint64_t now);
void sb_exchange_send_padded_syn(sb_engine *e, const char *to,
                                 sb_writer *syn, size_t padded,
                                 uint64_t now);
void sb_exchange_send_probe(sb_engine *e, sb_peer *n, sb_writer *syn,
                            uint64_t now);
bool sb_exchange_live_peer(const sb_peer *n);
/* More SYNs of the descent, after the round's (exchange.c). */
void sb_exchange_lanes(sb_engine *e, uint64_t now);
/* Whether we expect to agree with our peers (our SYNs carry no digest). */
bool sb_exchange_quiet(sb_engine *e);

/* ---- round.c ---- */
void sb_round(sb_engine *e, uint64_t now);
void sb_round_greet(sb_engine *e, const char *to, uint64_t now);

/* ---- announce.c ---- */
void sb_announce(sb_engine *e, uint64_t now);
uint64_t sb_announce_due(const sb_engine *e);

/* ---- sweep.c ---- */
void sb_sweep_serve(sb_engine *e, const char *from, const sb_msg *m,
                    bool same, uint64_t now);
void sb_sweep_recv(sb_engine *e, const sb_msg *m, uint64_t now);
void sb_sweep_returned(sb_engine *e, uint64_t now);
void sb_sweep_held(sb_engine *e, uint64_t id, const char *from,
                   uint64_t now);
void sb_sweep_tidy(sb_engine *e, uint64_t now);

/* ---- range.c ---- */
/* A SYN's range section with k fingerprints: bounds, count, prints. */
#define SB_RANGE_SIZE(k) (2 * SB_CURSOR_SIZE + 1 + (k) * SB_PRINT_SIZE)
/* The range a SYN carries: (from, to], our records in it
 * (positions first to end - 1 of sb_state_sorted()), listed in the digest or
 * given as fingerprints. */
typedef struct sb_range {
    uint64_t from, to;
    uint32_t first, end;
    bool listed;
} sb_range;
bool sb_range_pick(sb_engine *e, size_t room, uint64_t now, sb_range *r);
void sb_range_put(sb_engine *e, sb_writer *w, const sb_range *r);
void sb_range_complete(sb_engine *e, plan *p, const sb_msg *m,
                       uint32_t epoch);
void sb_range_answer(sb_engine *e, const char *from, const sb_msg *m);
void sb_range_recv(sb_engine *e, const sb_peer *sender, const sb_msg *m);
void sb_range_tidy(sb_engine *e);

/* ---- push.c ---- */
void sb_push_queue(sb_engine *e, uint64_t before, uint64_t now);
void sb_push_flush(sb_engine *e, uint64_t now);
uint64_t sb_push_due(const sb_engine *e);
bool sb_push_saturated(const sb_engine *e, uint64_t now);
bool sb_push_capped(const sb_engine *e, uint64_t now);
void sb_push_rest(sb_engine *e, uint64_t now);
size_t sb_push_memory(const sb_engine *e);
void sb_push_free(sb_engine *e);
void sb_push_recv(sb_engine *e, const sb_msg *m, bool known, uint64_t now);

/* ---- apply.c ---- */
bool sb_apply_deltas(sb_engine *e, const sb_msg *m, uint64_t now);
bool sb_apply_refuses(const sb_engine *e, const sb_peer *n,
                      const sb_delta *d);
bool sb_apply_within_bounds(sb_engine *e, const sb_peer *n,
                            const sb_key_entry *k);
bool sb_apply_store_key(sb_engine *e, sb_peer *n, const sb_key_entry *k,
                        uint64_t now);
int sb_apply_local(sb_engine *e, const uint8_t *key, size_t key_len,
                   const uint8_t *value, size_t value_len, bool deleted,
                   uint64_t now);

/* ---- plan.c ---- */
plan *sb_plan_new(sb_engine *e);
void sb_plan_add(sb_engine *e, plan *p, sb_peer *n, uint64_t max,
                 uint64_t gc, bool whole);
void sb_plan_add_news(sb_engine *e, plan *p, sb_peer *n, uint64_t before);
void sb_plan_offer(sb_engine *e, plan *p, const cand *c);
void sb_plan_sort(sb_engine *e, plan *p);
bool sb_plan_write(sb_engine *e, sb_writer *w, int type, plan *p);
/* Plans candidate c's delta into `room` bytes (the longest prefix of its
 * keys that fits): the bytes it takes, or 0 if none fits; then writes it. */
size_t sb_plan_fit_delta(cand *c, size_t room);
/* The last version a planned delta covers. */
uint64_t sb_plan_delta_to(const cand *c);
void sb_plan_write_delta(sb_writer *w, const cand *c);
int sb_plan_sample_group(const sb_peer *n);
/* The i-th draw of a random sample of every peer, without repetition. */
sb_peer *sb_plan_draw(sb_engine *e, uint32_t i);
uint32_t sb_plan_draw_sample(sb_engine *e, size_t room);
size_t sb_plan_digest_room(const sb_engine *e);

/* ---- seeds.c ---- */
void sb_seeds_fetch(sb_engine *e);
bool sb_seeds_has(const sb_engine *e, const char *addr);
const char *sb_seeds_chance(sb_engine *e, uint32_t n);
int sb_seeds_join(sb_engine *e, const char *addr, uint64_t now);
void sb_seeds_joins_round(sb_engine *e, uint64_t now);
void sb_seeds_answered(sb_engine *e, const char *addr);
size_t sb_seeds_memory(const sb_engine *e);
void sb_seeds_free(sb_engine *e);

/* ---- liveness.c ---- */
void sb_liveness_emit(sb_engine *e, sb_event_type type, const sb_peer *n,
                      const sb_key *k);
void sb_liveness_refresh(sb_engine *e, sb_peer *n);
double sb_liveness_least_gap(const sb_engine *e);
double sb_liveness_threshold(const sb_engine *e);
bool sb_liveness_floor_gap(const sb_engine *e, sb_peer *n);
void sb_liveness_set_status(sb_engine *e, sb_peer *n, sb_status s,
                            uint64_t now);
void sb_liveness_note_tombstone(sb_engine *e, sb_peer *n, uint64_t now);
bool sb_liveness_may_probe(const sb_peer *n, uint64_t now);
void sb_liveness_probed(const sb_engine *e, sb_peer *n, uint64_t now);
bool sb_liveness_doubt_due(sb_engine *e, sb_peer *n, uint64_t now);
bool sb_liveness_held_down(const sb_engine *e, const sb_peer *n);
bool sb_liveness_none_accused(const sb_engine *e);
void sb_liveness_answered(sb_engine *e, sb_peer *n);
sb_peer *sb_liveness_add(sb_engine *e, const char *addr, size_t len,
                         uint64_t generation, uint64_t now);
void sb_liveness_remove(sb_engine *e, sb_peer *n);
void sb_liveness_observe(sb_engine *e, sb_peer *n, uint64_t hb,
                         bool leaving, uint64_t now);
void sb_liveness_drop_generation(sb_engine *e, sb_peer *n, uint64_t now);
bool sb_liveness_attend(sb_engine *e, sb_peer *n, uint64_t now);
void sb_liveness_forgive_pause(sb_engine *e, uint64_t pause, uint64_t now);
sb_peer *sb_liveness_random(sb_engine *e, bool (*match)(const sb_peer *),
                            uint32_t want);
bool sb_liveness_reserved(const uint8_t *key, size_t key_len);
bool sb_liveness_deaf(const sb_engine *e, uint64_t now);
void sb_liveness_verdict_key(uint8_t key[VERDICT_KEY_LEN], uint64_t id);
bool sb_liveness_verdict_stands(const sb_engine *e, uint64_t heartbeat,
                                const sb_peer *x);
/* Whether peer x is down for us by its monitors' votes (the rule). */
bool sb_liveness_convicted(const sb_engine *e, const sb_peer *x);
void sb_liveness_verdict(sb_engine *e, sb_peer *holder, const sb_key *k,
                         uint64_t now);
void sb_liveness_arrived(sb_engine *e, sb_peer *n, bool held_down,
                         uint64_t now);
void sb_liveness_refute(sb_engine *e, uint64_t hb, uint64_t now);
void sb_liveness_contact(sb_engine *e, sb_peer *n, uint64_t now);
void sb_liveness_rejudge(sb_engine *e, uint64_t now);
void sb_liveness_alone(sb_engine *e, uint64_t now);

/* ---- send.c ---- */
size_t sb_send_wire_len(const sb_engine *e, size_t len);
/* The bandwidth cap, full at `now`; topped up at every tick and receive. */
void sb_send_cap_init(sb_engine *e, uint64_t now);
void sb_send_cap_refill(sb_engine *e, uint64_t now);
/* Whether the cap lets a message of `len` plaintext bytes for `t` go now. */
bool sb_send_allowed(const sb_engine *e, sb_traffic t, size_t len);
/* Nanoseconds until a message of `len` bytes for `t` is allowed, if the
 * cap is refilled meanwhile and nothing else is sent; 0: now. */
uint64_t sb_send_wait(const sb_engine *e, sb_traffic t, size_t len);
/* Sends (sealed if the engine has keys) and counts a datagram; false,
 * counted in stats.held_back[t], if the cap holds it back. */
bool sb_send_bytes(sb_engine *e, sb_traffic t, const char *to,
                   const uint8_t *buf, size_t len);
bool sb_send_message(sb_engine *e, sb_traffic t, const char *to,
                     const sb_writer *w);
sb_writer sb_send_writer(sb_engine *e);
sb_writer sb_send_reply_writer(sb_engine *e);

/* ---- recent.c ---- */
void sb_recent_note(sb_engine *e, sb_peer *n, uint64_t now, uint64_t before);
void sb_recent_rest(sb_engine *e, uint64_t now);

/* ---- scratch.c ---- */
void sb_scratch_init(sb_scratch *s, size_t max_message_size);
/* Room for `peers` known peers: at once if the arrays are held, else
 * when they next are; false if out of memory. */
bool sb_scratch_grow(sb_scratch *s, uint32_t peers);
/* Allocates the arrays for the call beginning; false if out of memory
 * (release them all the same). */
bool sb_scratch_hold(sb_scratch *s);
entry_ref *sb_scratch_digest(sb_scratch *s, uint64_t n);
/* Bytes the arrays take now (none between calls). */
size_t sb_scratch_memory(const sb_scratch *s);
/* Frees the arrays as the call ends, their size counted in `peak`. */
void sb_scratch_release(sb_scratch *s);

#endif /* SB_INTERNAL_H */
