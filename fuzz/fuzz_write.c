/*
 * libFuzzer target: the write path of the API, local sets and deletes of
 * keys and values of every length, the top of size_t included. The input
 * is a wire byte (odd: the reference wire) then records
 *   [op u8][key length u8][value length u16][key bytes][value bytes]
 * where op & 3 is 0: set, 1: delete, 2: set claiming a length of
 * SIZE_MAX - value length (the value is never that long: it must not be
 * read), 3: set with a key of 256 bytes or more (refused). After each
 * write: a refusal says why, an accepted set reads back exactly, a
 * delete leaves nothing to read; the cluster runs 10 ms, and every
 * packet sent fits the limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a set of (key_len, value_len) may return on this engine; keys
 * that start with a zero byte are the protocol's. */
static int write_expected(sb_engine *e, const uint8_t *key, size_t key_len,
                          size_t value_len)
{
    size_t most;
    if (key_len == 0 || key_len > SB_MAX_KEY_LEN || key[0] == 0)
        return SB_EINVAL;
    if (sb_engine_max_value(e, key_len, &most) != SB_OK || value_len > most)
        return SB_ETOOBIG;
    return SB_OK; /* or SB_ELIMIT: the bounds depend on what is held */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sb_wire wire = data[0] & 1 ? SB_WIRE_REFERENCE : SB_WIRE_SCUTTLEBUTT;
    data++;
    size--;
    cluster *c = cluster_fuzz(NULL, 0, wire);
    sb_engine *e = cluster_engine(c, 0);
    const char *self = sb_engine_addr(e);
    static uint8_t big_key[300];
    while (size >= 4) {
        int op = data[0] & 3;
        size_t key_len = data[1];
        size_t value_len = (size_t)data[2] << 8 | data[3];
        data += 4;
        size -= 4;
        if (key_len > size)
            key_len = size;
        const uint8_t *key = data;
        data += key_len;
        size -= key_len;
        if (value_len > size)
            value_len = size;
        const uint8_t *value = data;
        data += value_len;
        size -= value_len;
        uint64_t now = cluster_now(c);
        int rc;
        if (op == 1) {
            rc = sb_engine_del(e, key, key_len, now);
            const uint8_t *v;
            size_t vl;
            if (rc == SB_OK &&
                sb_engine_get(e, self, key, key_len, &v, &vl) != SB_ENOTFOUND)
                abort();
        } else if (op == 2) {
            rc = sb_engine_set(e, key, key_len, value, SIZE_MAX - value_len,
                               now);
            if (rc != (key_len == 0 || key[0] == 0 ? SB_EINVAL : SB_ETOOBIG))
                abort();
        } else if (op == 3) {
            rc = sb_engine_set(e, big_key, 256 + key_len % 44, value,
                               value_len, now);
            if (rc != SB_EINVAL)
                abort();
        } else {
            rc = sb_engine_set(e, key, key_len, value, value_len, now);
            int want = write_expected(e, key, key_len, value_len);
            if (rc != want && !(want == SB_OK && rc == SB_ELIMIT))
                abort();
            const uint8_t *v;
            size_t vl;
            if (rc == SB_OK &&
                (sb_engine_get(e, self, key, key_len, &v, &vl) != SB_OK ||
                 vl != value_len || (vl && memcmp(v, value, vl) != 0)))
                abort();
        }
        cluster_run(c, 10 * MS);
    }
    if (cluster_largest_sent(c, 0) > CLUSTER_FUZZ_LIMIT)
        abort();
    cluster_free(c);
    return 0;
}
