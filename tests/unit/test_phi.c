/*
 * Unit tests of the phi accrual failure detector (src/core/phi.h).
 *
 * phi(t) = elapsed / (mean * ln 10); every expected value below is worked
 * out by hand from that formula and the documented mean estimator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../run.h"

#include <math.h>

#include "engine.h" /* SEC */
#include "phi.h"

#define WINDOW 100

/* cmocka's assert_float_equal compares floats; phi needs doubles. */
#define assert_near(a, b, eps)                                           \
    do {                                                                 \
        double got_ = (a), want_ = (b);                                  \
        if (!(fabs(got_ - want_) <= (eps)))                              \
            fail_msg("%s = %.15g, expected %.15g (+- %g)", #a, got_,      \
                     want_, (double)(eps));                              \
    } while (0)

/* A detector bootstrapped with 1 s at 0, then heartbeats at 1, 2, 3 s:
 * four samples of exactly 1 s. */
static sb_phi steady_fd(void)
{
    sb_phi fd;
    sb_phi_reset(&fd, 0, SEC);
    sb_phi_heartbeat(&fd, 1 * SEC, WINDOW);
    sb_phi_heartbeat(&fd, 2 * SEC, WINDOW);
    sb_phi_heartbeat(&fd, 3 * SEC, WINDOW);
    return fd;
}

static void test_phi_after_reset_at_bootstrap_interval(void **state)
{
    (void)state;
    sb_phi fd;
    sb_phi_reset(&fd, 0, SEC);
    /* 1 / ln 10 */
    assert_near(sb_phi_value(&fd, SEC), 0.4342944819, 1e-10);
    assert_near(sb_phi_value(&fd, 2 * SEC), 0.8685889638, 1e-10);
}

static void test_reset_sets_one_bootstrap_sample(void **state)
{
    (void)state;
    sb_phi fd;
    sb_phi_reset(&fd, 5 * SEC, 2 * SEC);
    assert_int_equal(fd.last_ns, 5 * SEC);
    assert_int_equal(fd.count, 1);
    assert_near(fd.mean_ns, 2e9, 0.0);
}

static void test_steady_heartbeats_keep_mean_exact(void **state)
{
    (void)state;
    sb_phi fd = steady_fd();
    assert_near(fd.mean_ns, 1e9, 0.0);
    assert_int_equal(fd.count, 4);
    assert_int_equal(fd.last_ns, 3 * SEC);
}

static void test_phi_reaches_eight_after_8_ln10_means(void **state)
{
    (void)state;
    sb_phi fd = steady_fd();
    /* 8 ln 10 = 18.420680743952... s */
    assert_near(sb_phi_value(&fd, 3 * SEC + 18420680744ull), 8.0, 1e-9);
}

static void test_phi_counts_from_last_arrival(void **state)
{
    (void)state;
    sb_phi fd;
    sb_phi_reset(&fd, 0, SEC);
    sb_phi_heartbeat(&fd, 1 * SEC, WINDOW);
    sb_phi_heartbeat(&fd, 2 * SEC, WINDOW);
    assert_near(sb_phi_value(&fd, 3 * SEC), 0.4342944819, 1e-10);
}

static void test_running_mean_while_filling_window(void **state)
{
    (void)state;
    sb_phi fd;
    sb_phi_reset(&fd, 0, SEC); /* samples: 1 s (bootstrap) */
    sb_phi_heartbeat(&fd, 2 * SEC, 4); /* 1, 2 s: mean 3/2 */
    assert_int_equal(fd.count, 2);
    assert_near(fd.mean_ns, 1.5e9, 0.0);
    sb_phi_heartbeat(&fd, 5 * SEC, 4); /* 1, 2, 3 s: mean 6/3 */
    assert_int_equal(fd.count, 3);
    assert_near(fd.mean_ns, 2e9, 0.0);
    sb_phi_heartbeat(&fd, 11 * SEC, 4); /* 1, 2, 3, 6 s: mean 12/4 */
    assert_int_equal(fd.count, 4);
    assert_near(fd.mean_ns, 3e9, 0.0);
    /* phi(11 s + 3 s) = 3 / (3 ln 10) */
    assert_near(sb_phi_value(&fd, 14 * SEC), 0.4342944819, 1e-10);
}

static void test_ewma_with_weight_one_over_window_once_full(void **state)
{
    (void)state;
    sb_phi fd;
    sb_phi_reset(&fd, 0, SEC);
    sb_phi_heartbeat(&fd, 2 * SEC, 4);
    sb_phi_heartbeat(&fd, 5 * SEC, 4);
    sb_phi_heartbeat(&fd, 11 * SEC, 4); /* full: mean 3 s, count 4 */
    /* sample 7 s: 3 + (7 - 3) / 4 = 4 s */
    sb_phi_heartbeat(&fd, 18 * SEC, 4);
    assert_int_equal(fd.count, 4);
    assert_near(fd.mean_ns, 4e9, 0.0);
    /* sample 2 s: 4 + (2 - 4) / 4 = 3.5 s */
    sb_phi_heartbeat(&fd, 20 * SEC, 4);
    assert_int_equal(fd.count, 4);
    assert_near(fd.mean_ns, 3.5e9, 0.0);
    /* sample 0.5 s: 3.5 + (0.5 - 3.5) / 4 = 2.75 s, kept in single
     * precision: within 2^-24 of it (2.75e9 is not a float) */
    sb_phi_heartbeat(&fd, 20 * SEC + SEC / 2, 4);
    assert_near(fd.mean_ns, 2.75e9, 2.75e9 / (1 << 24));
    /* phi(+2.75 s) = 1 / ln 10, to the mean's precision */
    assert_near(sb_phi_value(&fd, 23 * SEC + SEC / 4), 0.4342944819,
                0.4342944819 / (1 << 24));
}

static void test_window_of_one_tracks_last_sample(void **state)
{
    (void)state;
    sb_phi fd;
    sb_phi_reset(&fd, 0, SEC);
    sb_phi_heartbeat(&fd, 5 * SEC, 1);
    assert_int_equal(fd.count, 1);
    assert_near(fd.mean_ns, 5e9, 0.0);
}

static void test_phi_zero_at_and_before_last_arrival(void **state)
{
    (void)state;
    sb_phi fd;
    sb_phi_reset(&fd, 10 * SEC, SEC);
    assert_near(sb_phi_value(&fd, 10 * SEC), 0.0, 0.0);
    assert_near(sb_phi_value(&fd, 10 * SEC - 1), 0.0, 0.0);
    assert_near(sb_phi_value(&fd, 0), 0.0, 0.0);
    sb_phi_heartbeat(&fd, 11 * SEC, WINDOW);
    assert_near(sb_phi_value(&fd, 11 * SEC), 0.0, 0.0);
    assert_near(sb_phi_value(&fd, 10 * SEC + SEC / 2), 0.0, 0.0);
    assert_true(sb_phi_value(&fd, 11 * SEC + 1) > 0.0);
}

static void test_arrivals_at_same_instant_count_once(void **state)
{
    (void)state;
    sb_phi once, twice;
    sb_phi_reset(&once, 0, SEC);
    sb_phi_reset(&twice, 0, SEC);
    sb_phi_heartbeat(&once, 3 * SEC, WINDOW);
    sb_phi_heartbeat(&twice, 3 * SEC, WINDOW);
    sb_phi_heartbeat(&twice, 3 * SEC, WINDOW);
    assert_int_equal(twice.count, once.count);
    assert_int_equal(twice.last_ns, once.last_ns);
    assert_near(twice.mean_ns, once.mean_ns, 0.0);
    assert_near(twice.mean_ns, 2e9, 0.0); /* (1 + 3) / 2 */
}

static void test_arrival_before_last_is_ignored(void **state)
{
    (void)state;
    sb_phi fd;
    sb_phi_reset(&fd, 0, SEC);
    sb_phi_heartbeat(&fd, 3 * SEC, WINDOW);
    sb_phi_heartbeat(&fd, 2 * SEC, WINDOW);
    assert_int_equal(fd.count, 2);
    assert_int_equal(fd.last_ns, 3 * SEC);
    assert_near(fd.mean_ns, 2e9, 0.0);
}

static void test_reset_forgets_old_mean(void **state)
{
    (void)state;
    sb_phi fd;
    sb_phi_reset(&fd, 0, SEC);
    for (uint64_t t = 1; t <= 50; t++)
        sb_phi_heartbeat(&fd, t * 100000000ull, WINDOW); /* every 0.1 s */
    assert_true(fd.mean_ns < 0.2e9);
    sb_phi_reset(&fd, 60 * SEC, 4 * SEC);
    assert_int_equal(fd.count, 1);
    assert_int_equal(fd.last_ns, 60 * SEC);
    assert_near(fd.mean_ns, 4e9, 0.0);
    /* phi(+4 s) = 1 / ln 10, as if the old samples never were */
    assert_near(sb_phi_value(&fd, 64 * SEC), 0.4342944819, 1e-10);
    /* the next sample is averaged with the bootstrap only: (4 + 2) / 2 */
    sb_phi_heartbeat(&fd, 62 * SEC, WINDOW);
    assert_near(fd.mean_ns, 3e9, 0.0);
}

/* The beat detector: normal model. Gaps of 100 and 300 ms alternating
 * give mean 200 ms and deviation 100 ms; phi is -log10 of the normal
 * tail: 0.30 at the mean, 8 about 5.6 deviations past it; the floor
 * under the deviation holds when the gaps are steady. */
static void test_normal_model(void **state)
{
    (void)state;
    sb_phi_normal p;
    sb_phin_reset(&p, 0, 200 * MS);
    uint64_t t = 0;
    for (int i = 0; i < 2000; i++) {
        t += (i % 2 ? 300 : 100) * MS;
        sb_phin_arrival(&p, t, 1000);
    }
    assert_near(p.mean_ns, 200e6, 1e6);
    assert_near(sqrt(p.var_ns2), 100e6, 2e6);
    assert_near(sb_phin_value(&p, t, 0), 0.0, 0.0); /* at the arrival */
    assert_near(sb_phin_value(&p, t + 200 * MS, 0), 0.30103, 0.02);
    double at8 = sb_phin_value(&p, t + 200 * MS + 561 * MS, 0);
    assert_true(at8 > 7.6 && at8 < 8.4);
    /* an arrival before the last is ignored */
    sb_phin_arrival(&p, t - MS, 1000);
    assert_int_equal(p.last_ns, t);

    /* steady gaps: the deviation is 0, the floor decides */
    sb_phin_reset(&p, 0, 100 * MS);
    t = 0;
    for (int i = 0; i < 50; i++)
        sb_phin_arrival(&p, t += 100 * MS, 1000);
    assert_near(sqrt(p.var_ns2), 0.0, 1.0);
    /* with a floor of 50 ms: 100 + 5.6 x 50 = 380 ms of silence is phi 8 */
    double f = sb_phin_value(&p, t + 381 * MS, 50e6);
    assert_true(f > 7.6 && f < 8.6);
    assert_true(sb_phin_value(&p, t + 150 * MS, 50e6) < 1.0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phi_after_reset_at_bootstrap_interval),
        cmocka_unit_test(test_normal_model),
        cmocka_unit_test(test_reset_sets_one_bootstrap_sample),
        cmocka_unit_test(test_steady_heartbeats_keep_mean_exact),
        cmocka_unit_test(test_phi_reaches_eight_after_8_ln10_means),
        cmocka_unit_test(test_phi_counts_from_last_arrival),
        cmocka_unit_test(test_running_mean_while_filling_window),
        cmocka_unit_test(test_ewma_with_weight_one_over_window_once_full),
        cmocka_unit_test(test_window_of_one_tracks_last_sample),
        cmocka_unit_test(test_phi_zero_at_and_before_last_arrival),
        cmocka_unit_test(test_arrivals_at_same_instant_count_once),
        cmocka_unit_test(test_arrival_before_last_is_ignored),
        cmocka_unit_test(test_reset_forgets_old_mean),
    };
    return RUN_TESTS(tests, argc, argv);
}
