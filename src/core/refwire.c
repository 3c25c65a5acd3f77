/*
 * The reference Go library's wire format (refwire.h): entries written,
 * and messages checked whole with bounds checks before they are read.
 */
#include "refwire.h"

#include <string.h>

/* Reads a string; false if the message ends inside it. */
static bool refwire_get_str(sb_cursor *c, const uint8_t **s, size_t *len)
{
    if (c->p >= c->end)
        return false;
    *len = *c->p++;
    if ((size_t)(c->end - c->p) < *len)
        return false;
    *s = c->p;
    c->p += *len;
    return true;
}

static bool refwire_get_u64(sb_cursor *c, uint64_t *v)
{
    if (c->end - c->p < 8)
        return false;
    *v = 0;
    for (int i = 0; i < 8; i++)
        *v = *v << 8 | *c->p++;
    return true;
}

/* Says why a message is refused: sets *why (if given), returns false. */
static bool refwire_refuse(int *why, int reason)
{
    if (why)
        *why = reason;
    return false;
}

/* Reads one entry with bounds checks; false, and why, if it cannot. */
static bool refwire_entry(sb_cursor *c, int type, sb_ref_entry *out,
                          int *why)
{
    const uint8_t *addr;
    memset(out, 0, sizeof(*out));
    if (!refwire_get_str(c, &addr, &out->addr_len) ||
        (type == SB_REF_DELTA &&
         (!refwire_get_str(c, &out->key, &out->key_len) ||
          !refwire_get_str(c, &out->value, &out->value_len))) ||
        !refwire_get_u64(c, &out->version))
        return refwire_refuse(why, SB_DROP_TRUNCATED);
    out->addr = (const char *)addr;
    /* an address is text: empty, or with a NUL byte, it names nothing */
    if (!out->addr_len || memchr(addr, 0, out->addr_len))
        return refwire_refuse(why, SB_DROP_MALFORMED);
    return true;
}

bool sb_ref_check(const uint8_t *buf, size_t len, int *type, int *why)
{
    if (!len)
        return refwire_refuse(why, SB_DROP_TRUNCATED);
    *type = buf[0];
    if (*type < SB_REF_DIGEST_REQUEST || *type > SB_REF_DELTA)
        return refwire_refuse(why, SB_DROP_TYPE);
    sb_cursor c = { buf + 1, buf + len };
    while (c.p < c.end) {
        sb_ref_entry e;
        if (!refwire_entry(&c, *type, &e, why))
            return false;
    }
    return true;
}

bool sb_ref_next(sb_cursor *c, int type, sb_ref_entry *out)
{
    return c->p < c->end && refwire_entry(c, type, out, NULL);
}

size_t sb_ref_digest_size(size_t addr_len)
{
    return 1 + addr_len + 8;
}

size_t sb_ref_delta_size(size_t addr_len, size_t key_len, size_t value_len)
{
    return 3 + addr_len + key_len + value_len + 8;
}

static void refwire_put_str(sb_writer *w, const void *s, size_t len)
{
    *w->p++ = (uint8_t)len;
    if (len)
        memcpy(w->p, s, len);
    w->p += len;
}

static void refwire_put_u64(sb_writer *w, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        *w->p++ = (uint8_t)(v >> (8 * i));
}

bool sb_ref_put_type(sb_writer *w, int type)
{
    if (sb_writer_room(w) < 1)
        return false;
    *w->p++ = (uint8_t)type;
    return true;
}

bool sb_ref_put_digest(sb_writer *w, const char *addr, size_t addr_len,
                       uint64_t version)
{
    if (addr_len > SB_REF_MAX_STR ||
        sb_writer_room(w) < sb_ref_digest_size(addr_len))
        return false;
    refwire_put_str(w, addr, addr_len);
    refwire_put_u64(w, version);
    return true;
}

bool sb_ref_put_delta(sb_writer *w, const char *addr, size_t addr_len,
                      const uint8_t *key, size_t key_len,
                      const uint8_t *value, size_t value_len,
                      uint64_t version)
{
    if (addr_len > SB_REF_MAX_STR || key_len > SB_REF_MAX_STR ||
        value_len > SB_REF_MAX_STR ||
        sb_writer_room(w) < sb_ref_delta_size(addr_len, key_len, value_len))
        return false;
    refwire_put_str(w, addr, addr_len);
    refwire_put_str(w, key, key_len);
    refwire_put_str(w, value, value_len);
    refwire_put_u64(w, version);
    return true;
}
