/*
 * Unit tests of the outbox (src/core/outbox.h): each child's sends come
 * back in the order they were queued, an item's bytes stay whole as
 * others leave, and random queues, pops and compactions agree with a
 * plain list for each child.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../run.h"

#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "rng.h"

/* The bytes of items and their count a datagram of the tests holds. */
#define MOST 64

static sb_outbox *outbox_new(uint32_t bytes, uint32_t sends,
                             uint32_t children)
{
    sb_outbox *o = malloc(sizeof(*o));
    assert_non_null(o);
    void *mem = calloc(1, sb_outbox_memory(bytes, sends, children));
    assert_non_null(mem);
    sb_outbox_init(o, mem, bytes, sends, children, MOST);
    return o;
}

static void outbox_free(sb_outbox *o)
{
    free(o->sends);
    free(o);
}

/* Child `id`'s index, failing the test if it holds no sends. */
static uint32_t child_of(const sb_outbox *o, uint64_t id)
{
    for (uint32_t c = 0; c < o->nchildren; c++)
        if (o->children[c].id == id)
            return c;
    fail_msg("child %llu not in the outbox", (unsigned long long)id);
    return 0;
}

/* The first byte of the item of child c's i-th send, and its wave. */
static uint8_t nth_byte(const sb_outbox *o, uint32_t c, uint32_t i,
                        uint64_t *wave)
{
    uint32_t s = o->children[c].first;
    while (i--)
        s = o->sends[s].next;
    assert_int_not_equal(s, SB_OUTBOX_NONE);
    *wave = o->sends[s].wave;
    return o->bytes[o->items[o->sends[s].item].at];
}

static void test_children_in_order_of_ids(void **state)
{
    (void)state;
    sb_outbox *o = outbox_new(64, 16, 8);
    uint8_t a[3] = { 'a', 'a', 'a' }, b[2] = { 'b', 'b' };
    uint32_t ia = sb_outbox_add(o, a, sizeof(a));
    sb_outbox_queue(o, ia, 9, 1);
    sb_outbox_queue(o, ia, 4, 1);
    uint32_t ib = sb_outbox_add(o, b, sizeof(b));
    sb_outbox_queue(o, ib, 9, 2);
    assert_int_equal(o->nchildren, 2);
    assert_int_equal(o->children[0].id, 4);
    assert_int_equal(o->children[1].id, 9);
    assert_int_equal(o->nsends, 3);
    assert_int_equal(o->len, 5);
    uint64_t w;
    assert_int_equal(nth_byte(o, 1, 0, &w), 'a');
    assert_int_equal(w, 1);
    assert_int_equal(nth_byte(o, 1, 1, &w), 'b');
    assert_int_equal(w, 2);
    outbox_free(o);
}

static void test_trim_takes_back_an_item_queued_for_none(void **state)
{
    (void)state;
    sb_outbox *o = outbox_new(64, 16, 8);
    uint8_t a[3] = { 'a' }, b[4] = { 'b' };
    sb_outbox_queue(o, sb_outbox_add(o, a, sizeof(a)), 1, 0);
    sb_outbox_trim(o); /* queued: kept */
    assert_int_equal(o->nitems, 1);
    (void)sb_outbox_add(o, b, sizeof(b));
    sb_outbox_trim(o);
    assert_int_equal(o->nitems, 1);
    assert_int_equal(o->len, 3);
    outbox_free(o);
}

static void test_once_keeps_an_item_s_first_wave(void **state)
{
    (void)state;
    sb_outbox *o = outbox_new(64, 16, 8);
    uint8_t a[2] = { 'a' }, b[2] = { 'b' };
    uint32_t ia = sb_outbox_add(o, a, sizeof(a));
    sb_outbox_queue(o, ia, 7, 10);
    sb_outbox_queue(o, ia, 7, 11);
    sb_outbox_queue(o, ia, 8, 11);
    uint32_t ib = sb_outbox_add(o, b, sizeof(b));
    sb_outbox_queue(o, ib, 7, 20);
    sb_outbox_queue(o, ib, 7, 22);
    sb_outbox_once(o, child_of(o, 7));
    assert_int_equal(o->nsends, 3);
    uint32_t c = child_of(o, 7);
    uint64_t w;
    assert_int_equal(nth_byte(o, c, 0, &w), 'a');
    assert_int_equal(w, 10);
    assert_int_equal(nth_byte(o, c, 1, &w), 'b');
    assert_int_equal(w, 20);
    /* the list's end moved with it: a send queued after comes last */
    uint8_t x[2] = { 'x' };
    sb_outbox_queue(o, sb_outbox_add(o, x, sizeof(x)), 7, 30);
    assert_int_equal(nth_byte(o, c, 2, &w), 'x');
    assert_int_equal(w, 30);
    outbox_free(o);
}

static void test_sent_items_leave_room(void **state)
{
    (void)state;
    sb_outbox *o = outbox_new(12, 16, 8);
    uint8_t a[3] = { 'a', 'a', 'a' }, b[2] = { 'b', 'b' },
            x[4] = { 'x', 'x', 'x', 'x' }, y[5] = { 'y', 'y', 'y', 'y', 'y' };
    sb_outbox_queue(o, sb_outbox_add(o, a, sizeof(a)), 1, 0);
    sb_outbox_queue(o, sb_outbox_add(o, b, sizeof(b)), 2, 0);
    sb_outbox_queue(o, sb_outbox_add(o, x, sizeof(x)), 2, 0);
    sb_outbox_pop(o, child_of(o, 1), 1); /* a: due to no one */
    sb_outbox_compact(o);
    assert_int_equal(o->nchildren, 1);
    assert_int_equal(o->nitems, 2);
    assert_int_equal(o->len, 6);
    /* a's room is taken back when an item needs it: 9 + 5 > 12 */
    assert_true(sb_outbox_fits(o, sizeof(y), 1));
    sb_outbox_queue(o, sb_outbox_add(o, y, sizeof(y)), 3, 0);
    sb_outbox_trim(o);
    assert_int_equal(o->len, 11);
    assert_int_equal(o->top, 11);
    uint32_t c = child_of(o, 2);
    uint64_t w;
    assert_int_equal(nth_byte(o, c, 0, &w), 'b');
    assert_int_equal(nth_byte(o, c, 1, &w), 'x');
    assert_int_equal(nth_byte(o, child_of(o, 3), 0, &w), 'y');
    assert_memory_equal(o->bytes, "bbxxxxyyyyy", 11);
    sb_outbox_pop(o, c, UINT32_MAX);
    sb_outbox_pop(o, child_of(o, 3), UINT32_MAX);
    sb_outbox_compact(o);
    assert_int_equal(o->nchildren + o->nitems + o->nsends + o->len +
                         o->top + o->slots,
                     0);
    outbox_free(o);
}

static void test_fits_counts_bytes_sends_and_children(void **state)
{
    (void)state;
    sb_outbox *o = outbox_new(10, 4, 3);
    uint8_t a[6] = { 0 };
    assert_true(sb_outbox_fits(o, 10, 3));
    assert_false(sb_outbox_fits(o, 11, 1));
    assert_false(sb_outbox_fits(o, 1, 4)); /* children */
    uint32_t i = sb_outbox_add(o, a, sizeof(a));
    sb_outbox_queue(o, i, 1, 0);
    sb_outbox_queue(o, i, 2, 0);
    assert_true(sb_outbox_fits(o, 4, 1));
    assert_false(sb_outbox_fits(o, 5, 1));
    assert_false(sb_outbox_fits(o, 1, 2)); /* children: 2 + 2 > 3 */
    outbox_free(o);
}

/* A plain model: each child's sends, as (item number, wave). */
#define MODEL_CHILDREN 6
#define MODEL_SENDS 64
typedef struct model {
    uint32_t item[MODEL_CHILDREN][MODEL_SENDS];
    uint64_t wave[MODEL_CHILDREN][MODEL_SENDS];
    uint32_t n[MODEL_CHILDREN];
} model;

/* Item number k's bytes: its length 1 + k % 9, each byte k % 251. */
static uint32_t item_len(uint32_t k)
{
    return 1 + k % 9;
}

/* Checks the outbox against the model: children in order of ids, each
 * with the model's items in order, each item whole. */
static void check(const sb_outbox *o, const model *m)
{
    uint32_t c = 0, sends = 0;
    for (uint32_t id = 0; id < MODEL_CHILDREN; id++) {
        sends += m->n[id];
        if (!m->n[id])
            continue;
        assert_true(c < o->nchildren);
        assert_int_equal(o->children[c].id, id);
        uint32_t s = o->children[c].first;
        for (uint32_t i = 0; i < m->n[id]; i++) {
            assert_int_not_equal(s, SB_OUTBOX_NONE);
            uint32_t k = m->item[id][i];
            const sb_outbox_item *it = &o->items[o->sends[s].item];
            assert_int_equal(it->len, item_len(k));
            for (uint32_t b = 0; b < it->len; b++)
                assert_int_equal(o->bytes[it->at + b], k % 251);
            assert_int_equal(o->sends[s].wave, m->wave[id][i]);
            if (i + 1 == m->n[id])
                assert_int_equal(o->children[c].last, s);
            s = o->sends[s].next;
        }
        assert_int_equal(s, SB_OUTBOX_NONE);
        c++;
    }
    assert_int_equal(c, o->nchildren);
    assert_int_equal(sends, o->nsends);
}

/* Child id's first datagram as the model has it, checked against
 * sb_outbox_head(): as many of its first items as fit in MOST bytes
 * after their count (a one-byte varint below 128), the first always. */
static void check_head(sb_outbox *o, const model *m, uint32_t id)
{
    uint32_t n = 1, len = item_len(m->item[id][0]);
    while (n < m->n[id] &&
           len + item_len(m->item[id][n]) + (n + 1 < 128 ? 1 : 2) <=
               MOST)
        len += item_len(m->item[id][n++]);
    size_t got;
    assert_int_equal(sb_outbox_head(o, child_of(o, id), &got), n);
    assert_int_equal(got, len);
}

static void test_agrees_with_a_model(void **state)
{
    (void)state;
    sb_rng rng;
    sb_rng_seed(&rng, 11);
    sb_outbox *o = outbox_new(4096, MODEL_SENDS, MODEL_CHILDREN);
    model m = { 0 };
    uint32_t next = 0; /* the next item's number */
    for (int step = 0; step < 20000; step++) {
        uint32_t op = (uint32_t)sb_rng_below(&rng, 5);
        if (op < 2) { /* an item for a few children */
            uint8_t bytes[9];
            uint32_t k = next++, len = item_len(k);
            memset(bytes, (int)(k % 251), len);
            uint32_t want = (uint32_t)sb_rng_below(&rng, 4);
            if (!sb_outbox_fits(o, len, want))
                continue;
            uint32_t i = sb_outbox_add(o, bytes, len);
            uint32_t taken = 0;
            for (uint32_t j = 0; j < want; j++) {
                uint32_t id = (uint32_t)sb_rng_below(&rng, MODEL_CHILDREN);
                if (taken >> id & 1)
                    continue; /* one send of an item a child (a wave) */
                taken |= 1u << id;
                /* in one wave or two (two trees name the child) */
                uint32_t waves = 1 + (uint32_t)sb_rng_below(&rng, 2);
                for (uint32_t v = 0; v < waves && sb_outbox_fits(o, 0, 1);
                     v++) {
                    sb_outbox_queue(o, i, id, 2 * k + v);
                    m.item[id][m.n[id]] = k;
                    m.wave[id][m.n[id]++] = 2 * k + v;
                }
            }
            sb_outbox_trim(o);
        } else if (op == 2) { /* a child's first few go */
            uint32_t id = (uint32_t)sb_rng_below(&rng, MODEL_CHILDREN);
            if (!m.n[id])
                continue;
            uint32_t n = (uint32_t)sb_rng_below(&rng, m.n[id] + 1);
            sb_outbox_pop(o, child_of(o, id), n);
            memmove(m.item[id], m.item[id] + n,
                    (m.n[id] - n) * sizeof(m.item[id][0]));
            memmove(m.wave[id], m.wave[id] + n,
                    (m.n[id] - n) * sizeof(m.wave[id][0]));
            m.n[id] -= n;
            /* then, sometimes, its items once each, their first wave */
            if (m.n[id] && sb_rng_below(&rng, 2)) {
                sb_outbox_once(o, child_of(o, id));
                uint32_t kept = 0;
                for (uint32_t j = 0; j < m.n[id]; j++)
                    if (!kept || m.item[id][kept - 1] != m.item[id][j]) {
                        m.item[id][kept] = m.item[id][j];
                        m.wave[id][kept++] = m.wave[id][j];
                    }
                m.n[id] = kept;
            }
        } else if (op == 3) { /* a child's first datagram, measured */
            uint32_t id = (uint32_t)sb_rng_below(&rng, MODEL_CHILDREN);
            if (m.n[id])
                check_head(o, &m, id);
        } else {
            sb_outbox_compact(o);
            check(o, &m);
            for (uint32_t id = 0; id < MODEL_CHILDREN; id++)
                if (m.n[id])
                    check_head(o, &m, id);
            /* the items held: in order of their bytes, apart, counted */
            uint32_t len = 0, held = 0, end = 0;
            for (uint32_t i = 0; i < o->slots; i++) {
                assert_true(o->items[i].at >= end);
                end = o->items[i].at + o->items[i].len;
                held += o->items[i].refs != 0;
                len += o->items[i].refs ? o->items[i].len : 0;
            }
            assert_true(end <= o->top);
            assert_int_equal(o->nitems, held);
            assert_int_equal(o->len, len);
        }
    }
    outbox_free(o);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_children_in_order_of_ids),
        cmocka_unit_test(test_trim_takes_back_an_item_queued_for_none),
        cmocka_unit_test(test_once_keeps_an_item_s_first_wave),
        cmocka_unit_test(test_sent_items_leave_room),
        cmocka_unit_test(test_fits_counts_bytes_sends_and_children),
        cmocka_unit_test(test_agrees_with_a_model),
    };
    return RUN_TESTS(tests, argc, argv);
}
