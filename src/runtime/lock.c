/*
 * The node's lock. `lock` (struct sb_node, node.h) guards the engine and
 * every field marked (L); `join_lock` only the one join of the thread
 * (thread.c). The rules, kept by every file:
 *   - the engine is called only with `lock` held, and its callbacks
 *     (sb_socket_send(), sb_callbacks_queue(), sb_seed_resolve_hand_over())
 *     run under it, so they only copy or send, never call out;
 *   - the user's callbacks (events, seeds, log) and name lookups run
 *     without it;
 *   - `join_lock` is taken before `lock`, never after.
 * Every API call but creation and destruction takes the lock through
 * sb_lock_running(), which refuses once the node is stopped.
 */
#define _GNU_SOURCE
#include "node.h"

/* Takes the node's lock, unless it was stopped: false then, unlocked. */
bool sb_lock_running(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    if (!n->stopped)
        return true;
    pthread_mutex_unlock(&n->lock);
    return false;
}
