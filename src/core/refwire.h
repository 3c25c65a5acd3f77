/*
 * The reference wire format: what the Go library this project re-creates
 * puts in its datagrams (docs/compat.md). A node configured with
 * SB_WIRE_REFERENCE speaks only this.
 *
 * A message is one UDP datagram: a type byte, then entries back to back,
 * nothing else. There is no header, version, cluster id or count.
 *
 *   type 1 digest request, 2 digest response: digest entries
 *   type 3 delta:                             delta entries
 *
 *   digest entry:  addr (str) | version (u64)
 *   delta entry:   addr (str) | key (str) | value (str) | version (u64)
 *
 * A string is a u8 length and that many bytes; a u64 is big endian. The
 * address is the node's identity: "host:port", as the sender of its
 * datagrams appears to the receiver. An empty type-1 or type-2 message is
 * valid (a digest of nothing); an empty delta is never sent but accepted.
 * A message that ends inside an entry is truncated; an empty address, or
 * one with a NUL byte, is malformed.
 */
#ifndef SB_REFWIRE_H
#define SB_REFWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

enum {
    SB_REF_DIGEST_REQUEST = 1,
    SB_REF_DIGEST_RESPONSE = 2,
    SB_REF_DELTA = 3,
};

#define SB_REF_MAX_STR 255

/* One entry of either kind, pointing into the message (digest entries
 * leave key and value empty). */
typedef struct sb_ref_entry {
    const char *addr;
    size_t addr_len;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    uint64_t version;
} sb_ref_entry;

/*
 * Checks a whole message: true if it is valid (its type in *type), else
 * false with the sb_drop_reason that rejects it in *why, if `why` is not
 * NULL (SB_DROP_TRUNCATED for an empty datagram or one that ends inside
 * an entry, SB_DROP_TYPE, and SB_DROP_MALFORMED for an empty address or
 * one with a NUL byte). Nothing in the message is trusted before this
 * returns true.
 */
bool sb_ref_check(const uint8_t *buf, size_t len, int *type, int *why);

/* Reads the next entry of a checked message; false at its end. */
bool sb_ref_next(sb_cursor *c, int type, sb_ref_entry *out);

/* The bytes one entry takes. */
size_t sb_ref_digest_size(size_t addr_len);
size_t sb_ref_delta_size(size_t addr_len, size_t key_len, size_t value_len);

/* Writers: each appends one item, or returns false and writes nothing
 * when it does not fit (or a string is over 255 bytes). */
bool sb_ref_put_type(sb_writer *w, int type);
bool sb_ref_put_digest(sb_writer *w, const char *addr, size_t addr_len,
                       uint64_t version);
bool sb_ref_put_delta(sb_writer *w, const char *addr, size_t addr_len,
                      const uint8_t *key, size_t key_len,
                      const uint8_t *value, size_t value_len,
                      uint64_t version);

#endif /* SB_REFWIRE_H */
