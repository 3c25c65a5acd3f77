/*
 * Sending: every datagram leaves here, within the bandwidth cap, sealed
 * when the engine has keys, and counted; writers bounded by the message
 * size or the reply bound.
 */
#include "internal.h"

/* The bytes a message of `len` plaintext bytes takes on the wire. */
size_t sb_send_wire_len(const sb_engine *e, size_t len)
{
    return e->sealing ? len + SB_SEAL_OVERHEAD : len;
}

/*
 * The bandwidth cap. Every datagram is counted against one bucket of
 * bytes, refilled at 7/8 of cfg.bandwidth a second and holding at most
 * 1/8 of it (SEND_DEPTH): no span of a second sends more than
 * cfg.bandwidth bytes. What may be sent depends on what it is for:
 *   liveness (beats, probes, SYNs to seeds, and the answer alone to a
 *     probe whose full ACK the cap held back): while the bucket holds it; the reserve below keeps room for it, so that a node that
 *     saturates its cap still proves it lives and hears who does not;
 *   exchange (SYNs, ACKs, ACK2s, SWEEPs, DIFFs): while the bucket holds
 *     it and the reserve, 1/8 of the depth;
 *   push: while the bucket holds it, the reserve and half the depth
 *     more, so that when the cap binds, exchanges (which carry many
 *     writers' keys in one message, and repair what pushes miss) are
 *     served first.
 * A message held back is counted (sb_stats.held_back; for a push, once
 * for a wave cut short) and not sent: an exchange that loses a message is
 * started again at a later round, and what a push does not reach,
 * anti-entropy brings. Our own push waits instead (push.c), so that the
 * writes made meanwhile go out together.
 */
#define SEND_DEPTH 8
#define SEND_RESERVE 8

void sb_send_cap_init(sb_engine *e, uint64_t now)
{
    double cap = e->cfg.bandwidth;
    if (!cap) { /* the default, or the least allowed if more */
        uint64_t least = sb_engine_least_bandwidth(&e->cfg);
        cap = least > SB_BANDWIDTH_DEFAULT ? least : SB_BANDWIDTH_DEFAULT;
    }
    sb_bucket_init(&e->cap, cap - cap / SEND_DEPTH, cap / SEND_DEPTH, now);
}

void sb_send_cap_refill(sb_engine *e, uint64_t now)
{
    sb_bucket_refill(&e->cap, now);
}

/* The tokens a message of `len` plaintext bytes for `t` needs held. */
static double send_need(const sb_engine *e, sb_traffic t, size_t len)
{
    double need = (double)sb_send_wire_len(e, len);
    if (t != SB_TRAFFIC_LIVENESS)
        need += e->cap.depth / SEND_RESERVE;
    if (t == SB_TRAFFIC_PUSH)
        need += e->cap.depth / 2;
    return need;
}

bool sb_send_allowed(const sb_engine *e, sb_traffic t, size_t len)
{
    return sb_bucket_has(&e->cap, send_need(e, t, len));
}

uint64_t sb_send_wait(const sb_engine *e, sb_traffic t, size_t len)
{
    double short_by = send_need(e, t, len) - e->cap.level;
    if (short_by <= 0)
        return 0;
    return (uint64_t)(short_by / e->cap.rate * 1e9) + 1;
}

/* Every datagram leaves here, within the cap, sealed when the engine has
 * keys; false if the cap held it back. */
bool sb_send_bytes(sb_engine *e, sb_traffic t, const char *to,
                   const uint8_t *buf, size_t len)
{
    if (!sb_send_allowed(e, t, len)) {
        e->stats.held_back[t]++;
        return false;
    }
    if (e->sealing) {
        /* the counter: the nonce's last 8 bytes, big endian */
        for (int i = SB_NONCE_SIZE - 1; i >= 16 && ++e->nonce[i] == 0; i--)
            ;
        len = sb_seal(e->keyring, e->nonce, buf, len, e->sealed);
        buf = e->sealed;
    }
    sb_bucket_take(&e->cap, (double)len);
    e->stats.packets_out++;
    e->stats.bytes_out += len;
    e->cfg.send(e->cfg.userdata, to, buf, len);
    return true;
}

bool sb_send_message(sb_engine *e, sb_traffic t, const char *to,
                     const sb_writer *w)
{
    return sb_send_bytes(e, t, to, w->start, (size_t)(w->p - w->start));
}

sb_writer sb_send_writer(sb_engine *e)
{
    uint8_t *buf = e->scratch.message;
    return (sb_writer){ buf, buf, buf + e->cfg.max_message_size };
}

/* A writer for the reply to the message at hand: no larger than that
 * message when it came from an address we do not know (e->reply_max), so
 * that a forged source cannot make us an amplifier. */
sb_writer sb_send_reply_writer(sb_engine *e)
{
    uint8_t *buf = e->scratch.message;
    return (sb_writer){ buf, buf, buf + e->reply_max };
}

