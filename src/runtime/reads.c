/*
 * Reads: a member's keys and values, the members, a member's phi, the
 * statistics, the node's addresses; sb_free() for what they hand out.
 * Each result is copied out of the engine in one allocation.
 *
 * Locking: a name given as a member's address is resolved without the
 * lock (getaddrinfo may block, as for seeds); each call then takes the
 * lock (refused once the node is stopped) while it copies from the
 * engine, and releases it before returning. The addresses are set at
 * creation and read without it.
 */
#define _GNU_SOURCE
#include "node.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void sb_free(void *p)
{
    free(p);
}

/* The engine knows peers by canonical text: "127.0.0.1:080" and
 * "[::ffff:127.0.0.1]:80" name "127.0.0.1:80", and a name ("localhost:80")
 * is resolved (this may block, as for seeds) to the address of a member
 * this node knows, or to the first one. Anything else is looked up as
 * given. Called without the lock. */
static const char *reads_canonical(sb_node *n, const char *addr,
                                   char buf[SB_ADDR_STRLEN])
{
    pthread_mutex_lock(&n->lock);
    bool stopped = n->stopped;
    pthread_mutex_unlock(&n->lock);
    if (stopped) /* the call fails at once: no name lookup first */
        return addr;
    sb_sockaddr found[8];
    int k = sb_addr_parse(addr, &found[0]) == SB_OK
                ? 1
                : sb_addr_resolve(addr, AF_UNSPEC, false, found, 8);
    if (k < 1)
        return addr;
    for (int i = 0; i < k; i++) {
        sb_addr_format(&found[i], buf);
        sb_member m;
        pthread_mutex_lock(&n->lock);
        bool known = sb_engine_find(n->engine, buf, &m) == SB_OK;
        pthread_mutex_unlock(&n->lock);
        if (known)
            return buf;
    }
    sb_addr_format(&found[0], buf);
    return buf;
}

/* sb_node_keys(): a first pass measures, a second copies. */
typedef struct reads_kv_copy {
    size_t count, bytes;       /* measured */
    sb_kv *out;                /* then filled: entries, then the bytes */
    char *p;
} reads_kv_copy;

static void reads_kv_measure(void *userdata, const uint8_t *key,
                             size_t key_len, const uint8_t *value,
                             size_t value_len)
{
    reads_kv_copy *c = userdata;
    (void)key;
    (void)value;
    c->count++;
    c->bytes += key_len + 1 + value_len + 1;
}

static void reads_kv_fill(void *userdata, const uint8_t *key,
                          size_t key_len, const uint8_t *value,
                          size_t value_len)
{
    reads_kv_copy *c = userdata;
    sb_kv *kv = &c->out[c->count++];
    kv->key = c->p;
    kv->key_len = key_len;
    memcpy(c->p, key, key_len);
    c->p[key_len] = '\0';
    c->p += key_len + 1;
    kv->value = c->p;
    kv->value_len = value_len;
    if (value_len)
        memcpy(c->p, value, value_len);
    c->p[value_len] = '\0';
    c->p += value_len + 1;
}

int sb_node_keys(sb_node *n, const char *addr, sb_kv **out, size_t *count)
{
    if (!n || !addr || !out || !count)
        return SB_EINVAL;
    *out = NULL;
    *count = 0;
    char buf[SB_ADDR_STRLEN];
    addr = reads_canonical(n, addr, buf);
    reads_kv_copy c = { 0 };
    if (!sb_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_keys(n->engine, addr, reads_kv_measure, &c);
    if (rc == SB_OK) {
        c.out = malloc(c.count * sizeof(sb_kv) + c.bytes + 1);
        if (c.out) {
            c.p = (char *)(c.out + c.count);
            c.count = 0;
            sb_engine_keys(n->engine, addr, reads_kv_fill, &c);
        } else {
            rc = SB_ENOMEM;
        }
    }
    pthread_mutex_unlock(&n->lock);
    if (rc == SB_OK) {
        *out = c.out;
        *count = c.count;
    }
    return rc;
}

int sb_node_max_value(sb_node *n, size_t key_len, size_t *max)
{
    if (!n || !max)
        return SB_EINVAL;
    if (!sb_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_max_value(n->engine, key_len, max);
    pthread_mutex_unlock(&n->lock);
    return rc;
}

int sb_node_get(sb_node *n, const char *addr, const void *key,
                size_t key_len, char **value, size_t *len)
{
    if (!n || !addr || !sb_writes_key_ok(key, key_len) || !value || !len)
        return SB_EINVAL;
    *value = NULL;
    *len = 0;
    const uint8_t *v;
    size_t vlen;
    char buf[SB_ADDR_STRLEN];
    addr = reads_canonical(n, addr, buf);
    if (!sb_lock_running(n))
        return SB_ESTATE;
    int rc = sb_engine_get(n->engine, addr, key, key_len, &v, &vlen);
    char *copy = NULL;
    if (rc == SB_OK) {
        copy = malloc(vlen + 1);
        if (copy) {
            if (vlen)
                memcpy(copy, v, vlen);
            copy[vlen] = '\0';
        } else {
            rc = SB_ENOMEM;
        }
    }
    pthread_mutex_unlock(&n->lock);
    if (rc == SB_OK) {
        *value = copy;
        *len = vlen;
    }
    return rc;
}

/* Copies the members (all, or live ones) into one allocation: the array,
 * then the addresses. */
static int reads_members(sb_node *n, bool live_only, sb_member **out,
                         size_t *count)
{
    if (!n || !out || !count)
        return SB_EINVAL;
    *out = NULL;
    *count = 0;
    if (!sb_lock_running(n))
        return SB_ESTATE;
    size_t total = sb_engine_member_count(n->engine), k = 0, bytes = 0;
    sb_member m;
    for (size_t i = 0; i < total; i++) {
        sb_engine_member(n->engine, i, &m);
        if (!live_only || m.status == SB_STATUS_LIVE) {
            k++;
            bytes += strlen(m.addr) + 1;
        }
    }
    sb_member *arr = malloc(k * sizeof(*arr) + bytes + 1);
    if (!arr) {
        pthread_mutex_unlock(&n->lock);
        return SB_ENOMEM;
    }
    char *text = (char *)(arr + k);
    size_t j = 0;
    for (size_t i = 0; i < total; i++) {
        sb_engine_member(n->engine, i, &m);
        if (live_only && m.status != SB_STATUS_LIVE)
            continue;
        size_t alen = strlen(m.addr) + 1;
        memcpy(text, m.addr, alen);
        m.addr = text;
        text += alen;
        arr[j++] = m;
    }
    pthread_mutex_unlock(&n->lock);
    *out = arr;
    *count = k;
    return SB_OK;
}

int sb_node_members(sb_node *n, sb_member **out, size_t *count)
{
    return reads_members(n, false, out, count);
}

int sb_node_live(sb_node *n, sb_member **out, size_t *count)
{
    return reads_members(n, true, out, count);
}

int sb_node_phi(sb_node *n, const char *addr, double *phi)
{
    if (!n || !addr || !phi)
        return SB_EINVAL;
    char buf[SB_ADDR_STRLEN];
    addr = reads_canonical(n, addr, buf);
    if (!sb_lock_running(n))
        return SB_ESTATE;
    double v = sb_engine_phi(n->engine, addr, sb_clock_now_ns());
    pthread_mutex_unlock(&n->lock);
    if (v < 0)
        return SB_ENOTFOUND;
    *phi = v;
    return SB_OK;
}

int sb_node_stats(sb_node *n, sb_stats *out)
{
    if (!n || !out)
        return SB_EINVAL;
    if (!sb_lock_running(n))
        return SB_ESTATE;
    sb_engine_stats(n->engine, out);
    out->send_errors = n->send_errors;
    pthread_mutex_unlock(&n->lock);
    return SB_OK;
}

const char *sb_node_addr(const sb_node *n)
{
    return n ? n->addr : NULL;
}

const char *sb_node_bind_addr(const sb_node *n)
{
    return n ? n->bind_addr : NULL;
}
