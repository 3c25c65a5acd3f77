/*
 * Writes: the caller's own keys set and deleted, and the graceful leave.
 * Locking: each call takes the lock (refused once the node is stopped)
 * for the engine's work only; the log line and the wake of the node's
 * thread (a push may be due before its timeout) come after.
 */
#define _GNU_SOURCE
#include "node.h"

/* A key is 1 to SB_MAX_KEY_LEN bytes, any bytes. */
bool sb_writes_key_ok(const void *key, size_t key_len)
{
    return key && key_len >= 1 && key_len <= SB_MAX_KEY_LEN;
}

int sb_node_set(sb_node *n, const void *key, size_t key_len,
                const void *value, size_t len)
{
    if (!n || !sb_writes_key_ok(key, key_len) || (len && !value))
        return SB_EINVAL;
    if (!sb_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_set(n->engine, key, key_len, value, len,
                           sb_clock_now_ns());
    pthread_mutex_unlock(&n->lock);
    sb_thread_wake(n); /* a push may be due before the thread's timeout */
    return rc;
}

int sb_node_del(sb_node *n, const void *key, size_t key_len)
{
    if (!n || !sb_writes_key_ok(key, key_len))
        return SB_EINVAL;
    if (!sb_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_del(n->engine, key, key_len, sb_clock_now_ns());
    pthread_mutex_unlock(&n->lock);
    sb_thread_wake(n);
    return rc;
}

int sb_node_leave(sb_node *n)
{
    if (!n)
        return SB_EINVAL;
    if (!sb_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_leave(n->engine, sb_clock_now_ns());
    pthread_mutex_unlock(&n->lock);
    if (rc == SB_OK)
        sb_log_say(&n->cfg, n, SB_LOG_INFO, "node %s leaving", n->addr);
    sb_thread_wake(n);
    return rc;
}
