/*
 * Unit tests of the load scenario's plan and meter (tools/load_plan.h,
 * tools/load_meter.h): writes and sightings fed by hand, every figure
 * worked out from the definitions (staleness until the observer holds the
 * value or a newer one; superseded when it never held the value itself).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../run.h"

#include <math.h>
#include <string.h>

#include "engine.h" /* MS, SEC */
#include "load_meter.h"

static const char *const addrs[] = { "10.0.0.3:1", "10.0.0.1:1",
                                     "10.0.0.2:1" };

/* The histogram's figures are within 1% of the exact ones. */
#define assert_about(got, want)                                          \
    do {                                                                 \
        double got_ = (got), want_ = (want);                             \
        if (!(fabs(got_ - want_) <= 0.01 * want_))                       \
            fail_msg("%s = %g, expected %g (1%%)", #got, got_, want_);   \
    } while (0)

static load_plan plan_of(uint32_t keys)
{
    load_plan p;
    load_plan_init(&p);
    p.keys = keys;
    return p;
}

/* Observer `o` is told of writer w's key k at SEQ seq. */
static void see(load_meter *m, const load_plan *p, uint32_t o, uint32_t w,
                uint32_t k, uint64_t seq, uint64_t now)
{
    char key[LOAD_PLAN_KEY_CAP], value[LOAD_PLAN_VALUE_BYTES + 1];
    size_t key_len = load_plan_key(key, k);
    size_t len = load_plan_value(p, value, seq, 0);
    load_meter_update(m, o, addrs[w], key, key_len, value, len, now);
}

static void test_plan_round_trip(void **state)
{
    (void)state;
    load_plan p = plan_of(12);
    char key[LOAD_PLAN_KEY_CAP], value[LOAD_PLAN_VALUE_BYTES + 1];
    size_t key_len = load_plan_key(key, 11);
    size_t len = load_plan_value(&p, value, 4242, 987654321);
    assert_int_equal(len, LOAD_PLAN_VALUE_BYTES);
    assert_int_equal(strlen(value), LOAD_PLAN_VALUE_BYTES);
    assert_memory_equal(value, "4242:987654321.", 15);
    uint32_t k;
    uint64_t seq;
    assert_true(load_plan_parse(&p, key, key_len, value, len, &k, &seq));
    assert_int_equal(k, 11);
    assert_int_equal(seq, 4242);
    /* another key, a key past the plan's, a value without SEQ */
    assert_false(load_plan_parse(&p, "role", 4, value, len, &k, &seq));
    key_len = load_plan_key(key, 12);
    assert_false(load_plan_parse(&p, key, key_len, value, len, &k, &seq));
    key_len = load_plan_key(key, 1);
    assert_false(load_plan_parse(&p, key, key_len, ":1", 2, &k, &seq));
}

static void test_plan_rates_and_schedule(void **state)
{
    (void)state;
    load_plan p = plan_of(3);
    assert_true(load_plan_parse_rates("5,10,0.5", &p));
    assert_int_equal(p.nrates, 3);
    assert_true(p.rates[2] == 0.5);
    assert_false(load_plan_parse_rates("5,,10", &p));
    assert_false(load_plan_parse_rates("0", &p));
    assert_false(load_plan_parse_rates("5x", &p));
    assert_false(load_plan_parse_rates("", &p));
    assert_int_equal(p.nrates, 3); /* unchanged by a refused list */
    /* 4 nodes at 2 writes a second: the cluster writes every 125 ms, node
     * by node; a node writes its keys in turn */
    uint32_t w, k;
    uint64_t due;
    load_plan_write(&p, 2, 4, 0, &w, &k, &due);
    assert_true(w == 0 && k == 0 && due == 0);
    load_plan_write(&p, 2, 4, 1, &w, &k, &due);
    assert_true(w == 1 && k == 0 && due == 125 * MS);
    load_plan_write(&p, 2, 4, 13, &w, &k, &due);
    assert_true(w == 1 && k == 0 && due == 1625 * MS); /* 4th write: key 0 */
    load_plan_write(&p, 2, 4, 10, &w, &k, &due);
    assert_true(w == 2 && k == 2);
    assert_int_equal(load_plan_writes(&p, 2), 2 * LOAD_PLAN_SECONDS);
}

/* Three sets of one key, the observer told of the last only: three pairs,
 * two of them superseded, each stale until the sighting. */
static void test_superseded_pairs(void **state)
{
    (void)state;
    load_plan p = plan_of(1);
    load_meter *m = load_meter_new(&p, 3, addrs);
    assert_non_null(m);
    load_meter_begin(m, 1, 0);
    for (uint64_t s = 0; s < 3; s++)
        assert_int_equal(load_meter_set(m, 0, 0, s * 10 * MS), s);
    assert_int_equal(load_meter_stale(m), 2); /* observers 1 and 2 */
    see(m, &p, 1, 0, 0, 2, 30 * MS);
    assert_int_equal(load_meter_stale(m), 1);
    /* an older value afterwards, or the writer's own, changes nothing */
    see(m, &p, 1, 0, 0, 1, 40 * MS);
    see(m, &p, 0, 0, 0, 2, 40 * MS);
    load_meter_stop(m, SEC);
    load_row r;
    load_meter_row(m, &r);
    assert_int_equal(r.writes, 3);
    assert_int_equal(r.pairs, 3);
    assert_int_equal(r.superseded, 2);
    assert_about(r.stale_p50_ms, 20);
    assert_about(r.stale_p99_ms, 30);
    assert_true(r.stale_max_ms == 30);
    assert_true(r.all_held_ms < 0); /* observer 2 has nothing */
    /* observer 2 sees every value in turn: none superseded */
    for (uint64_t s = 0; s < 3; s++)
        see(m, &p, 2, 0, 0, s, 1500 * MS + s);
    load_meter_row(m, &r);
    assert_int_equal(r.pairs, 6);
    assert_int_equal(r.superseded, 2);
    assert_int_equal(load_meter_stale(m), 0);
    assert_about(r.all_held_ms, 500); /* the last sighting, after the stop */
    load_meter_free(m);
}

/* Writers 0 and 2 are seen after 10 ms, writer 1 after 30 ms: the worst
 * writer's p99 is three times the median writer's. Goodput counts the
 * key and value bytes new to an observer, within the load. */
static void test_fairness_and_goodput(void **state)
{
    (void)state;
    load_plan p = plan_of(2);
    load_meter *m = load_meter_new(&p, 3, addrs);
    load_meter_begin(m, 1, 0);
    uint64_t lag[3] = { 10 * MS, 30 * MS, 10 * MS };
    for (uint32_t w = 0; w < 3; w++)
        for (uint32_t k = 0; k < 2; k++) {
            uint64_t seq = load_meter_set(m, w, k, 100 * MS);
            for (uint32_t o = 0; o < 3; o++)
                if (o != w)
                    see(m, &p, o, w, k, seq, 100 * MS + lag[w]);
        }
    see(m, &p, 1, 0, 0, 0, 900 * MS); /* again: not new */
    load_meter_stop(m, 2 * SEC);
    load_row r;
    load_meter_row(m, &r);
    assert_int_equal(r.pairs, 12);
    assert_int_equal(r.superseded, 0);
    assert_about(r.writer_p99_worst_ms, 30);
    assert_about(r.writer_p99_median_ms, 10);
    char key[LOAD_PLAN_KEY_CAP];
    double bytes = 12.0 * (double)(load_plan_key(key, 0) +
                                   LOAD_PLAN_VALUE_BYTES);
    assert_about(r.goodput, bytes / 3 / 2);
    assert_true(r.all_held_ms == 0); /* all held before the stop */
    load_meter_free(m);
}

/* Traffic: per node over the load, and the most a node sent in a second. */
static void test_traffic_and_peak(void **state)
{
    (void)state;
    load_plan p = plan_of(1);
    load_meter *m = load_meter_new(&p, 3, addrs);
    load_meter_begin(m, 1, 0);
    const uint64_t bytes[] = { 5000, 5100, 6000, 6100, 6200 };
    for (int i = 0; i < 5; i++) {
        uint64_t t = (uint64_t)i * 500 * MS;
        load_meter_sent(m, 0, bytes[i], 10 + (uint64_t)i, t);
        load_meter_sent(m, 1, 100 * (uint64_t)i, 0, t);
        load_meter_sent(m, 2, 0, 0, t);
    }
    load_meter_stop(m, 2 * SEC);
    load_meter_sent(m, 0, 99999, 99, 3 * SEC); /* after the stop: ignored */
    load_row r;
    load_meter_row(m, &r);
    /* node 0: 1000 B in [0 s, 1 s], [0.5 s, 1.5 s]; 200 in [1 s, 2 s] */
    assert_about(r.peak_bytes_per_s, 1000);
    assert_about(r.bytes_per_s, (1200.0 + 400) / 3 / 2);
    assert_about(r.packets_per_s, 4.0 / 3 / 2);
    load_meter_free(m);
}

/* Sampled every 10 ms (eval samples every interval, and --interval may be
 * that short), the peak is still taken over a second: the ring of samples
 * kept spans a window whatever the step (it held 64 samples, 0.64 s, and
 * the peak was 0). */
static void test_peak_with_a_fine_step(void **state)
{
    (void)state;
    load_plan p = plan_of(1);
    load_meter *m = load_meter_new(&p, 3, addrs);
    load_meter_begin(m, 1, 0);
    for (uint64_t t = 0; t <= 3 * SEC; t += 10 * MS) {
        /* node 0 sends 1000 B a second, 4000 in [1 s, 2 s) */
        uint64_t b = t / MS + (t >= SEC ? 3 * (t < 2 * SEC ? t - SEC : SEC) / MS
                                        : 0);
        load_meter_sent(m, 0, b, 0, t);
        load_meter_sent(m, 1, 0, 0, t);
        load_meter_sent(m, 2, 0, 0, t);
    }
    load_meter_stop(m, 3 * SEC);
    load_row r;
    load_meter_row(m, &r);
    /* windows of 1 s to 1 s + 1/62 s: at most 4000 B a second, at least
     * 4000 B in 1.017 s */
    assert_true(r.peak_bytes_per_s <= 4000 * 1.001);
    assert_true(r.peak_bytes_per_s >= 4000 / 1.02);
    assert_about(r.bytes_per_s, 6000.0 / 3 / 3);
    load_meter_free(m);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_round_trip),
        cmocka_unit_test(test_plan_rates_and_schedule),
        cmocka_unit_test(test_superseded_pairs),
        cmocka_unit_test(test_fairness_and_goodput),
        cmocka_unit_test(test_traffic_and_peak),
        cmocka_unit_test(test_peak_with_a_fine_step),
    };
    return RUN_TESTS(tests, argc, argv);
}
