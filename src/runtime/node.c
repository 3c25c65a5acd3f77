/*
 * A node's life: sb_node_new() (the configuration checked and copied, the
 * socket bound, the engine started, seeds resolved, the thread started),
 * sb_node_stop() and sb_node_free(). What a node is, and how its files
 * share it, is in node.h.
 *
 * Locking: creation runs before any other thread sees the node, but for
 * the thread it starts last. sb_node_stop() sets `stopped` (L), which
 * every later call sees through sb_lock_running(), then joins the thread
 * (thread.c). Neither stop nor free may run inside the node's own
 * callbacks (sb_callbacks_inside()); free must not race other calls.
 */
#define _GNU_SOURCE
#include "node.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int node_start_engine(sb_node *n)
{
    const sb_config *c = &n->cfg;
    if (c->nkeys && sodium_init() < 0) {
        sb_log_say(c, n, SB_LOG_ERROR, "cannot initialise libsodium");
        return SB_EIO;
    }
    sb_engine_config e;
    sb_config_engine(n, &e);
    char why[160];
    int rc = sb_engine_check_config(&e, why, sizeof(why));
    if (rc == SB_OK)
        rc = sb_engine_new(&e, sb_clock_now_ns(), &n->engine);
    else
        sb_log_say(c, n, SB_LOG_ERROR, "bad configuration: %s (node %s)", why,
                   n->addr);
    sodium_memzero(&e, sizeof(e));
    n->cfg.keys = NULL; /* the engine has its own copy */
    if (rc != SB_OK && rc != SB_ECONFIG && rc != SB_EADDR)
        sb_log_say(c, n, SB_LOG_ERROR, "engine: %s", sb_strerror(rc));
    if (rc != SB_OK)
        return rc;
    if (c->wire == SB_WIRE_REFERENCE)
        sb_log_say(c, n, SB_LOG_WARN, "node %s speaks the reference wire "
                   "format: its packets are plaintext and unauthenticated, "
                   "and anyone who can reach its port can change what the "
                   "cluster believes", n->addr);
    else if (!c->nkeys)
        sb_log_say(c, n, SB_LOG_WARN, "node %s has no cluster key: its "
                   "packets are plaintext, and anyone who can reach its port "
                   "can change what the cluster believes", n->addr);
    return rc;
}

int sb_node_new(const sb_config *cfg, sb_node **out)
{
    if (!out)
        return SB_EINVAL;
    *out = NULL;
    if (!cfg)
        return SB_EINVAL;
    /* a program built against an older, smaller sb_config gets the
     * defaults of the fields it does not know; one never initialised, or
     * built against a newer library, is refused (and cannot be trusted to
     * name a log callback) */
    if (cfg->size < offsetof(sb_config, bind) + sizeof(cfg->bind) ||
        cfg->size > sizeof(sb_config))
        return SB_ECONFIG;
    sb_config known;
    sb_config_init(&known);
    memcpy(&known, cfg, cfg->size);
    known.size = sizeof(known);
    cfg = &known;
    int rc = sb_config_check(cfg);
    if (rc != SB_OK)
        return rc;
    sb_node *n = calloc(1, sizeof(*n));
    if (!n)
        return SB_ENOMEM;
    n->cfg = *cfg;
    n->fd = n->wake[0] = n->wake[1] = -1;
    pthread_mutex_init(&n->lock, NULL);
    pthread_mutex_init(&n->join_lock, NULL);
    rc = sb_config_copy_strings(n, cfg);
    if (rc == SB_OK)
        rc = sb_config_check_engine(n);
    if (rc == SB_OK)
        rc = sb_socket_open(n, cfg);
    if (rc == SB_OK)
        rc = node_start_engine(n);
    if (rc == SB_OK) {
        /* peers may send more than our max_message_size: their
         * datagrams are read whole (and one larger than any is cut and
         * shows as oversize). A mapping of its own, which no datagram
         * of up to RECV_SMALL bytes touches (socket.c): its pages are
         * resident only once larger ones come, and the heap is not cut
         * by 64 kB between one node's allocations and the next's */
        n->rlen = SB_MAX_DATAGRAM + 1;
        n->rbuf = mmap(NULL, n->rlen, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (n->rbuf == MAP_FAILED) {
            n->rbuf = NULL;
            rc = SB_ENOMEM;
        }
    }
    /* before the first callback (the seeds'), and before the thread: one
     * may find the node through its userdata, if `out` points there */
    if (rc == SB_OK) {
        *out = n;
        n->seeds_fresh = sb_seed_resolve(n);
        if (!n->seeds_fresh)
            rc = SB_ENOMEM;
    }
    if (rc == SB_OK && !cfg->embedded)
        rc = sb_thread_start(n, cfg);
    if (rc != SB_OK) {
        *out = NULL;
        sb_node_free(n);
        return rc;
    }
    sb_log_say(cfg, n, SB_LOG_INFO, "node %s up, bound to %s, cluster \"%s\"",
               n->addr, n->bind_addr, n->cluster);
    return SB_OK;
}

int sb_node_stop(sb_node *n)
{
    if (!n)
        return SB_EINVAL;
    if (sb_callbacks_inside(n))
        return SB_ESTATE;
    pthread_mutex_lock(&n->lock);
    bool was = n->stopped;
    n->stopped = true;
    pthread_mutex_unlock(&n->lock);
    /* from another node's callback, the thread is not waited for: two
     * nodes stopping each other from their callbacks would each wait for
     * the other's forever (sb_node_free() joins it) */
    if (sb_callbacks_any())
        sb_thread_end(n);
    else
        sb_thread_join(n); /* a second stop returns once the first joined */
    if (!was)
        sb_log_say(&n->cfg, n, SB_LOG_INFO, "node %s stopped", n->addr);
    return SB_OK;
}

int sb_node_free(sb_node *n)
{
    if (!n)
        return SB_OK;
    if (sb_callbacks_inside(n) || (sb_callbacks_any() && !sb_thread_ended(n)))
        return SB_ESTATE;
    if (n->engine && !n->stopped)
        sb_log_say(&n->cfg, n, SB_LOG_INFO, "node %s stopped", n->addr);
    sb_thread_join(n);
    sb_engine_free(n->engine);
    for (size_t i = 0; i < n->nevents; i++)
        free(n->events[i].blob);
    free(n->events);
    free(n->seeds_given);
    free(n->seeds_fresh);
    free(n->seeds_reported);
    if (n->seed_names)
        for (size_t i = 0; i < n->cfg.nseeds; i++)
            free(n->seed_names[i]);
    free(n->seed_names);
    free(n->cluster);
    if (n->rbuf)
        munmap(n->rbuf, n->rlen);
    if (n->fd >= 0)
        close(n->fd);
    if (n->wake[0] >= 0) {
        close(n->wake[0]);
        close(n->wake[1]);
    }
    pthread_mutex_destroy(&n->lock);
    pthread_mutex_destroy(&n->join_lock);
    free(n);
    return SB_OK;
}
