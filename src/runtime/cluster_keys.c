/*
 * The keyring of cluster keys, changed on a running node: a key
 * installed, made primary, removed (the sealing itself is the core's,
 * src/core/keyring.c; docs/security.md). Locking: the lock is held for
 * the engine's change only; the log line comes after.
 */
#define _GNU_SOURCE
#include "node.h"

typedef int (*key_op)(sb_engine *e, const uint8_t *key);

static int cluster_keys_change(sb_node *n, const uint8_t *key, key_op op,
                               const char *what)
{
    if (!n || !key)
        return SB_EINVAL;
    if (!sb_lock_running(n))
        return SB_ESTATE;
    int rc = op(n->engine, key);
    pthread_mutex_unlock(&n->lock);
    if (rc == SB_OK)
        sb_log_say(&n->cfg, n, SB_LOG_INFO, "node %s: key %s", n->addr, what);
    return rc;
}

int sb_node_key_install(sb_node *n, const uint8_t *key)
{
    return cluster_keys_change(n, key, sb_engine_key_install, "installed");
}

int sb_node_key_use(sb_node *n, const uint8_t *key)
{
    return cluster_keys_change(n, key, sb_engine_key_use, "made primary");
}

int sb_node_key_remove(sb_node *n, const uint8_t *key)
{
    return cluster_keys_change(n, key, sb_engine_key_remove, "removed");
}
