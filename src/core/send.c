/*
 * Sending: every datagram leaves here, sealed when the engine has keys,
 * and counted; writers bounded by the message size or the reply bound.
 */
#include "internal.h"

/* The bytes a message of `len` plaintext bytes takes on the wire. */
size_t sb_send_wire_len(const sb_engine *e, size_t len)
{
    return e->sealing ? len + SB_SEAL_OVERHEAD : len;
}

/* Every datagram leaves here, sealed when the engine has keys. */
void sb_send_bytes(sb_engine *e, const char *to, const uint8_t *buf,
                   size_t len)
{
    if (e->sealing) {
        /* the counter: the nonce's last 8 bytes, big endian */
        for (int i = SB_NONCE_SIZE - 1; i >= 16 && ++e->nonce[i] == 0; i--)
            ;
        len = sb_seal(&e->keyring, e->nonce, buf, len, e->sealed);
        buf = e->sealed;
    }
    e->stats.packets_out++;
    e->stats.bytes_out += len;
    e->cfg.send(e->cfg.userdata, to, buf, len);
}

void sb_send_message(sb_engine *e, const char *to, const sb_writer *w)
{
    sb_send_bytes(e, to, w->start, (size_t)(w->p - w->start));
}

sb_writer sb_send_writer(sb_engine *e)
{
    return (sb_writer){ e->buf, e->buf, e->buf + e->cfg.max_message_size };
}

/* A writer for the reply to the message at hand: no larger than that
 * message when it came from an address we do not know (e->reply_max), so
 * that a forged source cannot make us an amplifier. */
sb_writer sb_send_reply_writer(sb_engine *e)
{
    return (sb_writer){ e->buf, e->buf, e->buf + e->reply_max };
}

