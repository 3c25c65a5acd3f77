/*
 * libFuzzer target: the packet decoder. Any input is either rejected with
 * a drop reason or accepted as a message whose every item the iterators
 * can walk within the packet (ASan checks every read), the walk ending
 * where the message ends: after the deltas (a PUSH's: each item's deltas
 * ending where the item does), or after a SYN's digest and the padding of
 * a padded SYN, zero bytes only; a BEAT and a DIFF hold no item and end
 * where the packet does; a SYN's fingerprints lie before its digest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks n deltas and their keys from c. */
static void walk_deltas(sb_cursor *c, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        sb_delta d;
        sb_delta_next(c, &d);
        sb_cursor k = { d.keys, d.end };
        for (uint64_t j = 0; j < d.nkeys; j++) {
            sb_key_entry e;
            sb_key_next(&k, &e);
        }
        if (k.p != d.end)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_msg m;
    if (!sb_msg_decode(data, size, sb_cluster_id("default"), &m, NULL))
        return 0;
    if (m.type == SB_MSG_BEAT || m.type == SB_MSG_DIFF) {
        if (m.end != data + size || m.ndigest || m.ndeltas)
            abort();
        return 0;
    }
    if (m.nprints && (m.prints < data ||
                      m.prints + (size_t)m.nprints * SB_PRINT_SIZE > m.digest))
        abort();
    sb_cursor c = { m.digest, m.end };
    for (uint64_t i = 0; i < m.ndigest; i++) {
        sb_digest_entry d;
        sb_digest_next(&c, &d);
    }
    if (m.type == SB_MSG_SYN) {
        if (c.p > m.end)
            abort();
        for (const uint8_t *p = c.p; p < m.end; p++)
            if (*p != 0 || !(m.flags & SB_SYN_PADDED))
                abort();
        return 0;
    }
    if (m.type == SB_MSG_PUSH) {
        if (m.ndeltas)
            abort();
        c = (sb_cursor){ m.items, m.end };
        for (uint64_t i = 0; i < m.nitems; i++) {
            sb_push_item it;
            sb_push_item_next(&c, &it);
            sb_cursor d = { it.deltas, it.end };
            walk_deltas(&d, it.ndeltas);
            if (d.p != it.end || it.end != c.p)
                abort();
        }
    } else {
        c = (sb_cursor){ m.deltas, m.end };
        walk_deltas(&c, m.ndeltas);
    }
    if (c.p != m.end)
        abort();
    return 0;
}
