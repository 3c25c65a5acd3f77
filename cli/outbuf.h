/*
 * Bytes waiting to go out to a slow reader (a control client, an event
 * stream), within a bound: whoever writes never waits for the reader.
 */
#ifndef SB_CLI_OUTBUF_H
#define SB_CLI_OUTBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct outbuf {
    char *buf;
    size_t len, off;           /* buf[off..len) waits */
} outbuf;

/* Appends len bytes; false (nothing appended) when more than max would
 * then wait, or out of memory. */
bool outbuf_append(outbuf *o, const char *p, size_t len, size_t max);

/* Bytes waiting. */
static inline size_t outbuf_pending(const outbuf *o)
{
    return o->len - o->off;
}

void outbuf_free(outbuf *o);

#endif
