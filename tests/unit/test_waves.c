/*
 * Unit tests of the waves a node remembers (src/core/waves.h): the last
 * `cap` keys added are found, older ones are not, whatever runs of
 * colliding keys the table holds, checked against a plain list.
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
        sb_waves_add(w, k);
    for (uint64_t k = 1; k <= 4; k++)
        assert_true(sb_waves_has(w, k));
    sb_waves_add(w, 5);
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
            sb_waves_add(w, key);
            added[n++] = key;
            for (uint32_t i = n > 3 * cap ? n - 3 * cap : 0; i < n; i++)
                assert_int_equal(sb_waves_has(w, added[i]),
                                 model_has(added, n, cap, added[i]));
        }
        waves_free(w);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_set_has_nothing),
        cmocka_unit_test(test_oldest_forgotten_first),
        cmocka_unit_test(test_agrees_with_a_list),
    };
    return RUN_TESTS(tests, argc, argv);
}
