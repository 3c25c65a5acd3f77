/*
 * The outbox (outbox.h): the items' bytes, their table, the sends in
 * slots (a child's are a list through `next`, the free ones too) and the
 * children in order of their ids. An item sent to all its children
 * keeps its room until a new item needs it (outbox_pack()).
 */
#include <string.h>

#include "outbox.h"

#include "codec.h" /* sb_varint_size() */

size_t sb_outbox_memory(uint32_t bytes, uint32_t sends, uint32_t children)
{
    return (size_t)sends * sizeof(sb_outbox_send) +
           (size_t)children * sizeof(sb_outbox_child) +
           (size_t)sends * sizeof(sb_outbox_item) + bytes;
}

/* Laid out as sb_outbox_memory() counts: sends, children, items (as
 * many as sends: each kept item has one at least), bytes. */
void sb_outbox_init(sb_outbox *o, void *mem, uint32_t bytes, uint32_t sends,
                    uint32_t children, uint32_t most)
{
    *o = (sb_outbox){ 0 };
    o->sends = mem;
    o->children = (sb_outbox_child *)(o->sends + sends);
    o->items = (sb_outbox_item *)(o->children + children);
    o->bytes = (uint8_t *)(o->items + sends);
    o->free = SB_OUTBOX_NONE;
    o->added = SB_OUTBOX_NONE;
    o->cap_bytes = bytes;
    o->cap_sends = sends;
    o->cap_children = children;
    o->most = most;
}

/* An item stored last has no send but may be taken back: the item
 * table has a slot for it beside those of the sends. */
bool sb_outbox_fits(const sb_outbox *o, size_t len, uint32_t sends)
{
    return o->len + len <= o->cap_bytes &&
           o->nsends + sends <= o->cap_sends &&
           o->nitems < o->cap_sends &&
           o->nchildren + sends <= o->cap_children;
}

static void outbox_pack(sb_outbox *o);

uint32_t sb_outbox_add(sb_outbox *o, const uint8_t *bytes, size_t len)
{
    if (o->top + len > o->cap_bytes || o->slots == o->cap_sends)
        outbox_pack(o);
    memcpy(o->bytes + o->top, bytes, len);
    o->items[o->slots] = (sb_outbox_item){ o->top, (uint32_t)len, 0, 0 };
    o->top += (uint32_t)len;
    o->len += (uint32_t)len;
    o->nitems++;
    o->added = o->slots;
    return o->slots++;
}

void sb_outbox_trim(sb_outbox *o)
{
    uint32_t i = o->added;
    o->added = SB_OUTBOX_NONE;
    if (i == SB_OUTBOX_NONE || o->items[i].refs)
        return;
    o->len -= o->items[i].len;
    o->nitems--;
    o->top -= o->items[i].len;
    o->slots--; /* it was the last */
}

/* Child `to`: where it is, or where it would go. */
static uint32_t outbox_find(const sb_outbox *o, uint64_t to)
{
    uint32_t lo = 0, hi = o->nchildren;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (o->children[mid].id < to)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void sb_outbox_queue(sb_outbox *o, uint32_t item, uint64_t to, uint64_t wave)
{
    uint32_t c = outbox_find(o, to);
    if (c == o->nchildren || o->children[c].id != to) {
        memmove(o->children + c + 1, o->children + c,
                (o->nchildren - c) * sizeof(*o->children));
        o->children[c] = (sb_outbox_child){ .id = to,
                                            .first = SB_OUTBOX_NONE,
                                            .last = SB_OUTBOX_NONE,
                                            .fresh = SB_OUTBOX_NONE };
        o->nchildren++;
    }
    uint32_t s = o->free;
    if (s != SB_OUTBOX_NONE)
        o->free = o->sends[s].next;
    else
        s = o->used++;
    o->sends[s] = (sb_outbox_send){ wave, item, SB_OUTBOX_NONE };
    sb_outbox_child *ch = &o->children[c];
    if (ch->first == SB_OUTBOX_NONE)
        ch->first = s;
    else
        o->sends[ch->last].next = s;
    ch->last = s;
    if (ch->fresh == SB_OUTBOX_NONE)
        ch->fresh = s;
    o->items[item].refs++;
    o->nsends++;
}

/* Frees send slot s; its item is no longer held once its last send
 * went. */
static void outbox_free(sb_outbox *o, uint32_t s)
{
    sb_outbox_item *it = &o->items[o->sends[s].item];
    if (!--it->refs) {
        o->len -= it->len;
        o->nitems--;
    }
    o->sends[s].next = o->free;
    o->free = s;
    o->nsends--;
}

void sb_outbox_pop(sb_outbox *o, uint32_t c, uint32_t n)
{
    sb_outbox_child *ch = &o->children[c];
    for (; n && ch->first != SB_OUTBOX_NONE; n--) {
        uint32_t s = ch->first;
        ch->head = 0;
        ch->first = o->sends[s].next;
        if (ch->fresh == s)
            ch->fresh = ch->first;
        outbox_free(o, s);
    }
    if (ch->first == SB_OUTBOX_NONE)
        ch->last = SB_OUTBOX_NONE;
}

void sb_outbox_once(sb_outbox *o, uint32_t c)
{
    sb_outbox_child *ch = &o->children[c];
    uint32_t s = ch->fresh;
    ch->fresh = SB_OUTBOX_NONE;
    while (s != SB_OUTBOX_NONE) {
        uint32_t n = o->sends[s].next;
        if (n != SB_OUTBOX_NONE && o->sends[n].item == o->sends[s].item) {
            o->sends[s].next = o->sends[n].next;
            if (ch->last == n)
                ch->last = s;
            outbox_free(o, n);
            ch->head = 0;
        } else {
            s = n;
        }
    }
}

uint32_t sb_outbox_head(sb_outbox *o, uint32_t c, size_t *len)
{
    sb_outbox_child *ch = &o->children[c];
    if (!ch->head) {
        ch->head = 1;
        ch->head_last = ch->first;
        ch->head_len = o->items[o->sends[ch->first].item].len;
        ch->head_full = false;
    }
    while (!ch->head_full) {
        uint32_t s = o->sends[ch->head_last].next;
        if (s == SB_OUTBOX_NONE)
            break; /* room left for sends queued later */
        uint32_t l = o->items[o->sends[s].item].len;
        if (ch->head_len + l + sb_varint_size(ch->head + 1) > o->most) {
            ch->head_full = true;
            break;
        }
        ch->head_len += l;
        ch->head++;
        ch->head_last = s;
    }
    *len = ch->head_len;
    return ch->head;
}

/* Moves the items still due down over those sent, in order, and the
 * sends' indices with them: when an item to add finds no room past the
 * last (the sent ones' room is taken back only then, not at every
 * sending: that walked every send of a backed-up outbox). */
static void outbox_pack(sb_outbox *o)
{
    uint32_t k = 0, top = 0;
    for (uint32_t i = 0; i < o->slots; i++) {
        sb_outbox_item *it = &o->items[i];
        if (!it->refs)
            continue;
        if (it->at != top)
            memmove(o->bytes + top, o->bytes + it->at, it->len);
        it->at = top;
        top += it->len;
        it->moved = k++;
    }
    for (uint32_t c = 0; c < o->nchildren; c++)
        for (uint32_t s = o->children[c].first; s != SB_OUTBOX_NONE;
             s = o->sends[s].next)
            o->sends[s].item = o->items[o->sends[s].item].moved;
    for (uint32_t i = 0, j = 0; i < o->slots; i++)
        if (o->items[i].refs)
            o->items[j++] = o->items[i];
    o->slots = k;
    o->top = top;
}

void sb_outbox_compact(sb_outbox *o)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < o->nchildren; c++)
        if (o->children[c].first != SB_OUTBOX_NONE)
            o->children[n++] = o->children[c];
    o->nchildren = n;
    if (!o->nsends) { /* every slot free: taken again from the first */
        o->used = 0;
        o->free = SB_OUTBOX_NONE;
    }
    if (!o->nitems)
        o->slots = o->top = 0;
}
