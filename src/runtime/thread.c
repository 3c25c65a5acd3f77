/*
 * The background thread of a node not created `embedded`: a loop on the
 * event-loop API (process.c) that polls the socket and a wake pipe, so
 * that a write may make a push go out before the timeout. Started at
 * creation, with every signal blocked; stopped and joined once, by
 * sb_node_stop() or sb_node_free().
 *
 * Locking: the thread reads `stop` (L) each turn; sb_thread_join() takes
 * `join_lock`, then the lock to set `stop`, so that a second stop waits
 * until the first has joined. Writing to the wake pipe needs no lock.
 */
#define _GNU_SOURCE /* pipe2 */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

void sb_thread_wake(sb_node *n)
{
    if (n->threaded) {
        char c = 1;
        ssize_t w = write(n->wake[1], &c, 1); /* full pipe: already woken */
        (void)w;
    }
}

static void *thread_run(void *arg)
{
    sb_node *n = arg;
    struct pollfd fds[2] = {
        { .fd = sb_node_fd(n), .events = POLLIN },
        { .fd = n->wake[0], .events = POLLIN },
    };
    for (;;) {
        pthread_mutex_lock(&n->lock);
        bool stop = n->stop;
        pthread_mutex_unlock(&n->lock);
        if (stop)
            return NULL;
        if (poll(fds, 2, sb_node_timeout_ms(n)) > 0 &&
            (fds[1].revents & POLLIN)) {
            char drain[64];
            while (read(n->wake[0], drain, sizeof(drain)) > 0)
                ;
        }
        sb_process_step(n);
    }
}

/* Starts the node's thread (`cfg` is the caller's, for the log). */
int sb_thread_start(sb_node *n, const sb_config *cfg)
{
    n->threaded = true;
    /* the thread blocks every signal (it inherits the mask it starts
     * with): a process-directed signal goes to the application's own
     * threads, never runs a handler here, and cannot miss a thread the
     * application set up to take it (sigwait()) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pipe2(n->wake, O_NONBLOCK | O_CLOEXEC) < 0
                  ? errno
                  : pthread_create(&n->thread, NULL, thread_run, n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        sb_log_say(cfg, n, SB_LOG_ERROR, "cannot start the node's thread: %s",
                   strerror(err));
        n->threaded = false;
        return SB_EIO;
    }
    return SB_OK;
}

/* Asks the node's thread to end, without waiting for it: it does at its
 * next turn, once the callbacks it is running are done. */
void sb_thread_end(sb_node *n)
{
    if (!n->threaded)
        return;
    pthread_mutex_lock(&n->lock);
    n->stop = true;
    pthread_mutex_unlock(&n->lock);
    sb_thread_wake(n);
}

/* Whether the node has no thread running: none was started, or it was
 * joined, or it has returned (joined here, without waiting). Never
 * waits: a callback asks (sb_node_free() of another node), and a thread
 * holding join_lock may be joining that callback's own thread. */
bool sb_thread_ended(sb_node *n)
{
    if (!n->threaded)
        return true;
    if (pthread_mutex_trylock(&n->join_lock) != 0)
        return false; /* being joined: it still runs */
    if (!n->joined && pthread_tryjoin_np(n->thread, NULL) == 0)
        n->joined = true;
    bool joined = n->joined;
    pthread_mutex_unlock(&n->join_lock);
    return joined;
}

/* Ends the node's thread, once; a second caller waits until it has. */
void sb_thread_join(sb_node *n)
{
    if (!n->threaded)
        return;
    pthread_mutex_lock(&n->join_lock);
    if (!n->joined) {
        sb_thread_end(n);
        pthread_join(n->thread, NULL);
        n->joined = true;
    }
    pthread_mutex_unlock(&n->join_lock);
}
