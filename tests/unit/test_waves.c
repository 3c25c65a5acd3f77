/*
 * Unit tests of the waves a node remembers (src/core/waves.h): the last
 * `cap` keys added are found, older ones are not, whatever runs of
 * colliding keys the table holds, checked against a plain list; a set
 * knows when it is full of young keys, and moves into a larger one
 * without forgetting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../run.h"

#include <stdlib.h>

#include "rng.h"
#include "waves.h"

static sb_waves *waves_new(uint32_t cap)
{
    sb_waves *w = malloc(sizeof(*w));
    assert_non_null(w);
    void *mem = calloc(1, sb_waves_bytes(cap));
    assert_non_null(mem);
    sb_waves_init(w, mem, cap);
    return w;
}

static void waves_free(sb_waves *w)
{
    free(w->keys);
    free(w);
}

/* Whether `key` is among the last min(n, cap) of added[0..n). */
static bool model_has(const uint64_t *added, uint32_t n, uint32_t cap,
                      uint64_t key)
{
    for (uint32_t i = n > cap ? n - cap : 0; i < n; i++)
        if (added[i] == key)
            return true;
    return false;
}

static void test_empty_set_has_nothing(void **state)
{
    (void)state;
    sb_waves *w = waves_new(8);
    assert_false(sb_waves_has(w, 1));
    assert_false(sb_waves_has(w, 0)); /* 0 is never stored */
    waves_free(w);
}

static void test_oldest_forgotten_first(void **state)
{
    (void)state;
    sb_waves *w = waves_new(4);
    for (uint64_t k = 1; k <= 4; k++)
        sb_waves_add(w, k, k);
    for (uint64_t k = 1; k <= 4; k++)
        assert_true(sb_waves_has(w, k));
    sb_waves_add(w, 5, 5);
    assert_false(sb_waves_has(w, 1));
    for (uint64_t k = 2; k <= 5; k++)
        assert_true(sb_waves_has(w, k));
    waves_free(w);
}

/* Keys whose high bits take few values collide in long runs, and keys
 * leave from the middle of them: each step, every key added lately is
 * found and every older one is not, as the plain list says. */
static void test_agrees_with_a_list(void **state)
{
    (void)state;
    const uint32_t caps[] = { 1, 3, 16, 100 };
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        uint32_t cap = caps[c], n = 0;
        sb_waves *w = waves_new(cap);
        uint64_t added[2000];
        sb_rng rng;
        sb_rng_seed(&rng, 7 + c);
        while (n < 2000) {
            /* high bits from 8 values (the table's index), low bits
             * random: runs of equal homes; a key already in the set is
             * not added again */
            uint64_t key = sb_rng_below(&rng, 8) << 32 |
                           (sb_rng_next(&rng) & 0xffffffffull);
            if (!key || model_has(added, n, cap, key))
                continue;
            sb_waves_add(w, key, n);
            added[n++] = key;
            for (uint32_t i = n > 3 * cap ? n - 3 * cap : 0; i < n; i++)
                assert_int_equal(sb_waves_has(w, added[i]),
                                 model_has(added, n, cap, added[i]));
        }
        waves_free(w);
    }
}

/* Crowded: full, and the key the next add forgets went in less than the
 * window ago, as far as the laps of the ring tell (a lap's keys count as
 * old as its start). */
static void test_crowded_by_the_age_of_the_oldest(void **state)
{
    (void)state;
    sb_waves *w = waves_new(4);
    for (uint64_t k = 1; k <= 3; k++)
        sb_waves_add(w, k, 10 * (k - 1)); /* at 0, 10, 20 */
    assert_false(sb_waves_crowded(w, 25, 100)); /* not full */
    sb_waves_add(w, 4, 30);
    /* key 1 is next to go, added at 0 */
    assert_true(sb_waves_crowded(w, 35, 100));
    assert_false(sb_waves_crowded(w, 100, 100));
    sb_waves_add(w, 5, 200); /* forgets key 1; a lap begins */
    /* key 2 is next, added at 10: its lap began at 0 */
    assert_false(sb_waves_has(w, 1));
    assert_false(sb_waves_crowded(w, 200, 100));
    assert_true(sb_waves_crowded(w, 200, 300));
    for (uint64_t k = 6; k <= 8; k++)
        sb_waves_add(w, k, 200 + 10 * (k - 5)); /* at 210, 220, 230 */
    /* key 5 is next, added at 200, when the lap began */
    assert_true(sb_waves_crowded(w, 240, 100));
    assert_false(sb_waves_crowded(w, 300, 100));
    waves_free(w);
}

/* Moved into a set twice as large after n0 adds, then added to: a key is
 * found while it is among the last 2 * cap added and was not forgotten
 * before the move. */
static void test_move_forgets_nothing(void **state)
{
    (void)state;
    const uint32_t n0s[] = { 5, 16, 23, 40 };
    for (size_t c = 0; c < sizeof(n0s) / sizeof(n0s[0]); c++) {
        const uint32_t cap = 16, n0 = n0s[c];
        sb_waves *w = waves_new(cap);
        uint64_t added[200];
        sb_rng rng;
        sb_rng_seed(&rng, 11 + c);
        uint32_t n = 0;
        for (; n < 120; n++) {
            if (n == n0) {
                sb_waves *big = waves_new(2 * cap);
                sb_waves_move(big, w);
                waves_free(w);
                w = big;
                /* what was not full is not, a full one has room */
                assert_false(sb_waves_crowded(w, n, 1000));
            }
            added[n] = (sb_rng_below(&rng, 4) << 32) | (n + 1);
            sb_waves_add(w, added[n], n);
            uint32_t held = n0 > cap ? n0 - cap : 0; /* the first kept */
            for (uint32_t i = 0; i <= n; i++) {
                bool kept = n + 1 <= n0 ? n + 1 - i <= cap
                                        : i >= held && n + 1 - i <= 2 * cap;
                assert_int_equal(sb_waves_has(w, added[i]), kept);
            }
        }
        /* the keys' times, 0 to 119, bound the oldest's age */
        assert_true(sb_waves_crowded(w, 120, 1000));
        waves_free(w);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_set_has_nothing),
        cmocka_unit_test(test_oldest_forgotten_first),
        cmocka_unit_test(test_agrees_with_a_list),
        cmocka_unit_test(test_crowded_by_the_age_of_the_oldest),
        cmocka_unit_test(test_move_forgets_nothing),
    };
    return RUN_TESTS(tests, argc, argv);
}
