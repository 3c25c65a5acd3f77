/* Bounded output buffers (see outbuf.h). */
#include "outbuf.h"

#include <stdlib.h>
#include <string.h>

bool outbuf_append(outbuf *o, const char *p, size_t len, size_t max)
{
    if (outbuf_pending(o) + len > max)
        return false;
    if (o->off > 0) { /* move what waits to the front */
        memmove(o->buf, o->buf + o->off, outbuf_pending(o));
        o->len -= o->off;
        o->off = 0;
    }
    char *buf = realloc(o->buf, o->len + len);
    if (!buf)
        return false;
    memcpy(buf + o->len, p, len);
    o->buf = buf;
    o->len += len;
    return true;
}

void outbuf_free(outbuf *o)
{
    free(o->buf);
    *o = (outbuf){ NULL, 0, 0 };
}
