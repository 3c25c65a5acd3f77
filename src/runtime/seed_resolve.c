/*
 * Seed resolution: the seed names (the static list of sb_config, then
 * what the seeds callback gives) resolved into the canonical addresses
 * the engine takes (src/core/seeds.c is what the engine does with them).
 * At creation, and again whenever the engine, alone, asks for seeds. And
 * the name sb_node_join() is given, resolved the same way at once and
 * handed to the engine to join.
 *
 * Locking: names are resolved without the lock (getaddrinfo may block,
 * and the seeds callback is the user's code): sb_seed_resolve_refresh()
 * takes the lock only to see whether the engine asked and to leave the
 * new list in seeds_fresh. sb_seed_resolve_hand_over() is the engine's
 * seeds callback and runs with the lock held. The list of seeds reported
 * unusable is kept without the lock: only the creating thread, then the
 * one inside sb_process_step(), resolves.
 */
#define _GNU_SOURCE
#include "node.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Whether seed `name` was reported unusable already; `mark` records it
 * (true) or forgets it (false: it works now, and may be reported again).
 * The record is allocated at the first report (most nodes never make
 * one); without the memory for it, the seed is reported again. */
static bool seed_resolve_reported(sb_node *n, const char *name, bool mark)
{
    if (mark && !n->seeds_reported) {
        n->seeds_reported = malloc(2 * SB_MAX_SEEDS *
                                   sizeof(*n->seeds_reported));
        if (!n->seeds_reported)
            return false;
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    for (size_t i = 0; i < n->nseeds_reported; i++) {
        if (n->seeds_reported[i] != h)
            continue;
        if (!mark)
            n->seeds_reported[i] = n->seeds_reported[--n->nseeds_reported];
        return true;
    }
    if (mark) {
        /* full: the oldest report makes room, so memory stays bounded */
        if (n->nseeds_reported == 2 * SB_MAX_SEEDS)
            memmove(n->seeds_reported, n->seeds_reported + 1,
                    --n->nseeds_reported * sizeof(*n->seeds_reported));
        n->seeds_reported[n->nseeds_reported++] = h;
    }
    return false;
}

/* An address no node can have: port 0, or a multicast or broadcast one
 * (the static list is checked at creation, the callback's seeds only
 * here: sent to, they would be send errors every round). */
static bool seed_resolve_nowhere(const sb_sockaddr *a)
{
    return sb_addr_port(a) == 0 || sb_addr_is_group(a);
}

/* A seed's address the socket can send to: one a node can have, of a
 * family the socket reaches, and not link-local (whose zone the address
 * text drops). */
static bool seed_resolve_usable(const sb_node *n, const sb_sockaddr *a)
{
    return !seed_resolve_nowhere(a) && (n->reach & sb_addr_reach_bit(a)) &&
           !sb_addr_is_link_local(a);
}

/* What a resolution works in: the names, then the addresses found, as
 * text. Allocated, not on the stack: the node's thread resolves too, and
 * these 5 kB, above getaddrinfo()'s own frames, were the deepest its
 * stack went, a page that then stayed resident for the thread's life. */
typedef struct seed_scratch {
    const char *names[2 * SB_MAX_SEEDS];
    char text[SB_MAX_SEEDS][SB_ADDR_STRLEN];
} seed_scratch;

/* Resolves every seed name (static list, then callback) into a new list;
 * runs without the lock (getaddrinfo may block). A seed that gives no
 * address (not resolved yet, or none of the socket's family) is logged
 * once, until it works again. */
seed_list *sb_seed_resolve(sb_node *n)
{
    seed_scratch *s = malloc(sizeof(*s));
    if (!s)
        return NULL;
    const char **names = s->names;
    char (*text)[SB_ADDR_STRLEN] = s->text;
    size_t count = 0;
    for (size_t i = 0; i < n->cfg.nseeds && count < SB_MAX_SEEDS; i++)
        names[count++] = n->seed_names[i];
    if (n->cfg.seed_fn) {
        const sb_node *outer = sb_callbacks_begin(n);
        size_t got = n->cfg.seed_fn(n->cfg.userdata, names + count,
                                    SB_MAX_SEEDS);
        sb_callbacks_end(outer);
        count += got < SB_MAX_SEEDS ? got : SB_MAX_SEEDS;
    }
    size_t found_n = 0, bytes = 0;
    for (size_t i = 0; i < count && found_n < SB_MAX_SEEDS; i++) {
        if (!names[i])
            continue;
        sb_sockaddr found[8];
        /* every family, so that one the socket cannot reach is told apart
         * from a name that does not resolve */
        int k = sb_addr_resolve(names[i], AF_UNSPEC, false, found, 8);
        if (k < 0) {
            if (!seed_resolve_reported(n, names[i], true))
                sb_log_say(&n->cfg, n, SB_LOG_WARN, "seed %s: %s",
                           names[i], sb_addr_has_zone(names[i])
                               ? "an IPv6 zone: link-local addresses are "
                                 "not supported (docs/api.md)"
                               : "cannot resolve (tried again while the "
                                 "node is alone)");
            continue;
        }
        int usable = 0, nowhere = 0;
        for (int j = 0; j < k; j++) {
            nowhere += seed_resolve_nowhere(&found[j]);
            usable += seed_resolve_usable(n, &found[j]);
        }
        if (nowhere == k) {
            if (!seed_resolve_reported(n, names[i], true))
                sb_log_say(&n->cfg, n, SB_LOG_WARN, "seed %s: port 0, or "
                           "a multicast or broadcast address: no node's",
                           names[i]);
            continue;
        }
        if (!usable) {
            if (!seed_resolve_reported(n, names[i], true))
                sb_log_say(&n->cfg, n, SB_LOG_WARN, "seed %s: no address "
                           "of a family the socket at %s can reach (IPv6 "
                           "link-local ones are not supported)", names[i],
                           n->bind_addr);
            continue;
        }
        seed_resolve_reported(n, names[i], false);
        for (int j = 0; j < k && found_n < SB_MAX_SEEDS; j++) {
            if (!seed_resolve_usable(n, &found[j]))
                continue;
            char *t = text[found_n];
            sb_addr_format(&found[j], t);
            bool dup = strcmp(t, n->addr) == 0;
            for (size_t m = 0; m < found_n && !dup; m++)
                dup = strcmp(text[m], t) == 0;
            if (!dup)
                bytes += strlen(text[found_n++]) + 1;
        }
    }
    seed_list *l = malloc(sizeof(*l) + found_n * sizeof(l->ptr[0]) + bytes);
    if (l) {
        l->n = found_n;
        char *at = (char *)&l->ptr[found_n];
        for (size_t i = 0; i < found_n; i++) {
            size_t len = strlen(text[i]) + 1;
            memcpy(at, text[i], len);
            l->ptr[i] = at;
            at += len;
        }
    }
    free(s);
    return l;
}

/* The engine's seeds callback (lock held): hands over the freshest list
 * and asks for another resolution once the lock is released. */
size_t sb_seed_resolve_hand_over(void *userdata, const char **out, size_t max)
{
    sb_node *n = userdata;
    if (n->seeds_fresh) {
        free(n->seeds_given);
        n->seeds_given = n->seeds_fresh;
        n->seeds_fresh = NULL;
    }
    n->seeds_wanted = true;
    seed_list *l = n->seeds_given;
    size_t k = l ? (l->n < max ? l->n : max) : 0;
    for (size_t i = 0; i < k; i++)
        out[i] = l->ptr[i];
    return k;
}

/* After the engine asked for seeds: resolve them again, without the lock. */
void sb_seed_resolve_refresh(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    bool wanted = n->seeds_wanted;
    n->seeds_wanted = false;
    pthread_mutex_unlock(&n->lock);
    if (!wanted)
        return;
    seed_list *l = sb_seed_resolve(n);
    if (!l)
        return;
    pthread_mutex_lock(&n->lock);
    free(n->seeds_fresh);
    n->seeds_fresh = l;
    pthread_mutex_unlock(&n->lock);
}

/* Intervals a node with seeds or joins to ask spends with no live peer
 * before it says so. */
#define SEED_RESOLVE_ALONE_INTERVALS 20

/* Logs, once, that the node has been alone for SEED_RESOLVE_ALONE_INTERVALS
 * though it has seeds or joins to ask: none of them answered, and a seed
 * of another cluster name or key never will (that seed logs the drops).
 * Called from sb_process_step(); the log line goes out without the lock. */
void sb_seed_resolve_report_alone(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    sb_stats st;
    sb_engine_stats(n->engine, &st);
    size_t seeds = n->seeds_given ? n->seeds_given->n : 0;
    uint64_t now = sb_clock_now_ns();
    bool report = false;
    if (st.members[SB_STATUS_LIVE] > 1 || (!seeds && !n->joins_made)) {
        n->alone_since = 0;
        n->alone_reported = false;
        /* company, or nothing to ask: the joins made are done (alone
         * again later, only the seeds are still asked) */
        n->joins_made = false;
    } else if (!n->alone_since) {
        n->alone_since = now;
    } else if (!n->alone_reported &&
               now - n->alone_since >=
                   (uint64_t)SEED_RESOLVE_ALONE_INTERVALS *
                       n->cfg.interval_ms * MS) {
        report = n->alone_reported = true;
    }
    pthread_mutex_unlock(&n->lock);
    if (report)
        sb_log_say(&n->cfg, n, SB_LOG_WARN, "alone for %u intervals: no "
                   "seed or joined node answered (%zu seed address%s); "
                   "are they up, and of cluster \"%s\" with this node's "
                   "keys and wire format?", SEED_RESOLVE_ALONE_INTERVALS,
                   seeds, seeds == 1 ? "" : "es", n->cluster);
}

int sb_node_join(sb_node *n, const char *addr)
{
    if (!n || !addr)
        return SB_EINVAL;
    if (!sb_lock_running(n)) /* stopped: fails at once, no lookup first */
        return SB_ESTATE;
    pthread_mutex_unlock(&n->lock);
    sb_sockaddr found[8];
    int k = sb_addr_resolve(addr, AF_UNSPEC, false, found, 8);
    char text[8][SB_ADDR_STRLEN];
    int usable = 0;
    for (int j = 0; j < k; j++)
        if (seed_resolve_usable(n, &found[j]))
            sb_addr_format(&found[j], text[usable++]);
    if (!sb_lock_running(n))
        return SB_ESTATE;
    int rc = SB_EADDR, taken = 0;
    uint64_t now = sb_clock_now_ns();
    for (int j = 0; j < usable; j++) {
        int r = sb_engine_join(n->engine, text[j], now);
        taken += r == SB_OK;
        if (r != SB_EADDR || rc == SB_EADDR)
            rc = r;
    }
    n->joins_made |= taken > 0;
    pthread_mutex_unlock(&n->lock);
    sb_thread_wake(n);
    if (taken)
        sb_log_say(&n->cfg, n, SB_LOG_INFO, "joining %s (%d address%s)",
                   addr, taken, taken == 1 ? "" : "es");
    return taken ? SB_OK : rc;
}
