/*
 * Unit tests of the reference wire format (src/core/refwire.h).
 *
 * Expected bytes are written by hand from the format in refwire.h: a
 * type byte, then entries; a string is a u8 length and its bytes, a u64
 * is big endian.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../run.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "refwire.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BUF_CAP 4096

static sb_writer writer(uint8_t *buf, size_t cap)
{
    return (sb_writer){ buf, buf, buf + cap };
}

static size_t written(const sb_writer *w)
{
    return (size_t)(w->p - w->start);
}

/* -1 if the message is valid, else why it is refused (the one call of
 * sb_ref_check; `why` is left alone when it passes). */
static int check(const uint8_t *buf, size_t len, int *type)
{
    *type = -100;
    int why = -2;
    bool ok = sb_ref_check(buf, len, type, &why);
    assert_int_equal(ok, why == -2);
    /* the same answer without `why` */
    int type2 = -100;
    assert_int_equal(sb_ref_check(buf, len, &type2, NULL), ok);
    if (ok)
        assert_int_equal(type2, *type);
    return ok ? -1 : why;
}

/* ---- sizes and golden bytes -------------------------------------------- */

static void test_sizes(void **state)
{
    (void)state;
    assert_int_equal(sb_ref_digest_size(0), 9);
    assert_int_equal(sb_ref_digest_size(1), 10);
    assert_int_equal(sb_ref_digest_size(13), 22);
    assert_int_equal(sb_ref_digest_size(255), 264);
    assert_int_equal(sb_ref_delta_size(0, 0, 0), 11);
    assert_int_equal(sb_ref_delta_size(3, 1, 2), 17);
    assert_int_equal(sb_ref_delta_size(255, 255, 255), 776);
}

static void test_digest_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x01,                                           /* request */
        0x03, 'a', ':', '1',                            /* addr */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* version 1 */
        0x0d, '1', '0', '.', '0', '.', '0', '.', '1', ':', '7', '9', '4',
        '6',
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x03, 'b', ':', '2',
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    uint8_t buf[BUF_CAP];
    sb_writer w = writer(buf, sizeof(buf));
    assert_true(sb_ref_put_type(&w, SB_REF_DIGEST_REQUEST));
    assert_true(sb_ref_put_digest(&w, "a:1", 3, 1));
    assert_int_equal(written(&w), 1 + sb_ref_digest_size(3));
    assert_true(sb_ref_put_digest(&w, "10.0.0.1:7946", 13,
                                  0x0102030405060708ull));
    assert_true(sb_ref_put_digest(&w, "b:2", 3, UINT64_MAX));
    assert_int_equal(written(&w), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    /* a response differs in its first byte only */
    w = writer(buf, sizeof(buf));
    assert_true(sb_ref_put_type(&w, SB_REF_DIGEST_RESPONSE));
    assert_true(sb_ref_put_digest(&w, "a:1", 3, 1));
    assert_int_equal(written(&w), 13);
    assert_int_equal(buf[0], 0x02);
    assert_memory_equal(buf + 1, want + 1, 12);
}

static void test_delta_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x03,                                           /* delta */
        0x03, 'a', ':', '1',                            /* addr */
        0x01, 'k',                                      /* key */
        0x02, 'v', 'w',                                 /* value */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, /* version 256 */
        0x03, 'a', ':', '1',
        0x02, 'k', '2',
        0x00,                                           /* empty value */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01,
        0x03, 'a', ':', '1',
        0x00,                                           /* empty key */
        0x03, 0x00, 0xff, 0x00,                         /* binary value */
        0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    uint8_t buf[BUF_CAP];
    sb_writer w = writer(buf, sizeof(buf));
    assert_true(sb_ref_put_type(&w, SB_REF_DELTA));
    assert_true(sb_ref_put_delta(&w, "a:1", 3, (const uint8_t *)"k", 1,
                                 (const uint8_t *)"vw", 2, 256));
    assert_int_equal(written(&w), 1 + sb_ref_delta_size(3, 1, 2));
    assert_true(sb_ref_put_delta(&w, "a:1", 3, (const uint8_t *)"k2", 2,
                                 NULL, 0, 257));
    static const uint8_t bin[3] = { 0x00, 0xff, 0x00 };
    assert_true(sb_ref_put_delta(&w, "a:1", 3, NULL, 0, bin, sizeof(bin),
                                 1ull << 63));
    assert_int_equal(written(&w), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

static void test_decode_golden(void **state)
{
    (void)state;
    static const uint8_t msg[] = {
        0x03,
        0x07, '1', '.', '2', '.', '3', ':', '4',
        0x03, 'k', 'e', 'y',
        0x05, 'v', 'a', 'l', 'u', 'e',
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
    };
    int type;
    assert_int_equal(check(msg, sizeof(msg), &type), -1);
    assert_int_equal(type, SB_REF_DELTA);
    sb_cursor c = { msg + 1, msg + sizeof(msg) };
    sb_ref_entry e;
    assert_true(sb_ref_next(&c, type, &e));
    assert_int_equal(e.addr_len, 7);
    assert_memory_equal(e.addr, "1.2.3:4", 7);
    assert_ptr_equal(e.addr, (const char *)msg + 2); /* points in */
    assert_int_equal(e.key_len, 3);
    assert_memory_equal(e.key, "key", 3);
    assert_int_equal(e.value_len, 5);
    assert_memory_equal(e.value, "value", 5);
    assert_int_equal(e.version, 0x1122334455667788ull);
    assert_ptr_equal(c.p, c.end);
    assert_false(sb_ref_next(&c, type, &e));
}

/* ---- round trips ------------------------------------------------------- */

static void test_digest_round_trip(void **state)
{
    (void)state;
    for (int type = SB_REF_DIGEST_REQUEST; type <= SB_REF_DIGEST_RESPONSE;
         type++) {
        uint8_t buf[BUF_CAP];
        sb_writer w = writer(buf, sizeof(buf));
        assert_true(sb_ref_put_type(&w, type));
        enum { N = 14 };
        char addrs[N][SB_REF_MAX_STR + 1];
        uint64_t versions[N];
        for (int i = 0; i < N; i++) {
            /* lengths 1..79, versions across the whole range */
            size_t len = (size_t)(i * 6 + 1);
            for (size_t j = 0; j < len; j++)
                addrs[i][j] = (char)('0' + (i + (int)j) % 64);
            addrs[i][len] = 0;
            versions[i] = i == 0 ? 0 : UINT64_MAX / (uint64_t)i;
            assert_true(sb_ref_put_digest(&w, addrs[i], len, versions[i]));
        }
        int got_type;
        size_t len = written(&w);
        assert_int_equal(check(buf, len, &got_type), -1);
        assert_int_equal(got_type, type);
        sb_cursor c = { buf + 1, buf + len };
        sb_ref_entry e;
        int n = 0;
        while (sb_ref_next(&c, type, &e)) {
            assert_int_equal(e.addr_len, strlen(addrs[n]));
            assert_memory_equal(e.addr, addrs[n], e.addr_len);
            assert_int_equal(e.version, versions[n]);
            assert_int_equal(e.key_len, 0);
            assert_int_equal(e.value_len, 0);
            assert_null(e.key);
            assert_null(e.value);
            n++;
        }
        assert_int_equal(n, N);
    }
}

static void test_delta_round_trip(void **state)
{
    (void)state;
    /* every length at the limit, and bytes of every value */
    uint8_t addr[SB_REF_MAX_STR], key[SB_REF_MAX_STR], value[SB_REF_MAX_STR];
    for (int i = 0; i < SB_REF_MAX_STR; i++) {
        addr[i] = (uint8_t)('!' + i % 90);
        key[i] = (uint8_t)i;
        value[i] = (uint8_t)(255 - i);
    }
    static const size_t lens[][3] = {
        { 1, 0, 0 }, { 1, 1, 0 }, { 1, 0, 1 }, { 255, 255, 255 },
        { 21, 255, 0 }, { 255, 0, 255 }, { 13, 7, 100 },
    };
    uint8_t buf[BUF_CAP];
    sb_writer w = writer(buf, sizeof(buf));
    assert_true(sb_ref_put_type(&w, SB_REF_DELTA));
    size_t want_len = 1;
    for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
        assert_true(sb_ref_put_delta(&w, (const char *)addr, lens[i][0], key,
                                     lens[i][1], value, lens[i][2],
                                     (uint64_t)i * 0x0101010101010101ull));
        want_len += sb_ref_delta_size(lens[i][0], lens[i][1], lens[i][2]);
        assert_int_equal(written(&w), want_len);
    }
    int type;
    assert_int_equal(check(buf, want_len, &type), -1);
    assert_int_equal(type, SB_REF_DELTA);
    sb_cursor c = { buf + 1, buf + want_len };
    sb_ref_entry e;
    size_t n = 0;
    while (sb_ref_next(&c, type, &e)) {
        assert_true(n < ARRAY_LEN(lens));
        assert_int_equal(e.addr_len, lens[n][0]);
        assert_memory_equal(e.addr, addr, lens[n][0]);
        assert_int_equal(e.key_len, lens[n][1]);
        if (lens[n][1])
            assert_memory_equal(e.key, key, lens[n][1]);
        assert_int_equal(e.value_len, lens[n][2]);
        if (lens[n][2])
            assert_memory_equal(e.value, value, lens[n][2]);
        assert_int_equal(e.version, (uint64_t)n * 0x0101010101010101ull);
        n++;
    }
    assert_int_equal(n, ARRAY_LEN(lens));
}

/* ---- what check accepts and rejects ------------------------------------- */

static void test_empty_messages_valid(void **state)
{
    (void)state;
    for (int t = SB_REF_DIGEST_REQUEST; t <= SB_REF_DELTA; t++) {
        uint8_t msg[1] = { (uint8_t)t };
        int type;
        assert_int_equal(check(msg, 1, &type), -1);
        assert_int_equal(type, t);
        sb_cursor c = { msg + 1, msg + 1 };
        sb_ref_entry e;
        assert_false(sb_ref_next(&c, type, &e));
    }
}

static void test_empty_buffer_truncated(void **state)
{
    (void)state;
    uint8_t msg[1] = { SB_REF_DIGEST_REQUEST };
    int type;
    assert_int_equal(check(msg, 0, &type), SB_DROP_TRUNCATED);
    assert_int_equal(check(NULL, 0, &type), SB_DROP_TRUNCATED);
}

static void test_unknown_type(void **state)
{
    (void)state;
    static const uint8_t types[] = { 0, 4, 5, 0x7f, 0x80, 0xff };
    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        /* alone, and before a valid digest entry */
        uint8_t msg[] = { types[i], 1, 'a', 0, 0, 0, 0, 0, 0, 0, 1 };
        int type;
        assert_int_equal(check(msg, 1, &type), SB_DROP_TYPE);
        assert_int_equal(check(msg, sizeof(msg), &type), SB_DROP_TYPE);
        msg[0] = SB_REF_DIGEST_RESPONSE;
        assert_int_equal(check(msg, sizeof(msg), &type), -1);
    }
}

static void test_truncated_string(void **state)
{
    (void)state;
    int type;
    /* the address's length byte says 10, three bytes follow */
    static const uint8_t addr[] = { 1, 10, 'a', ':', '1' };
    assert_int_equal(check(addr, sizeof(addr), &type), SB_DROP_TRUNCATED);
    /* the length byte alone */
    static const uint8_t len_only[] = { 2, 5 };
    assert_int_equal(check(len_only, sizeof(len_only), &type),
                     SB_DROP_TRUNCATED);
    /* a delta's key, then its value */
    static const uint8_t key[] = { 3, 1, 'a', 4, 'k', 'e' };
    assert_int_equal(check(key, sizeof(key), &type), SB_DROP_TRUNCATED);
    static const uint8_t no_key[] = { 3, 1, 'a' };
    assert_int_equal(check(no_key, sizeof(no_key), &type),
                     SB_DROP_TRUNCATED);
    static const uint8_t value[] = { 3, 1, 'a', 1, 'k', 200, 'v' };
    assert_int_equal(check(value, sizeof(value), &type), SB_DROP_TRUNCATED);
    static const uint8_t no_value[] = { 3, 1, 'a', 1, 'k' };
    assert_int_equal(check(no_value, sizeof(no_value), &type),
                     SB_DROP_TRUNCATED);
    /* 255 promised, 254 there */
    uint8_t big[1 + 1 + 254];
    memset(big, 'x', sizeof(big));
    big[0] = 1;
    big[1] = 255;
    assert_int_equal(check(big, sizeof(big), &type), SB_DROP_TRUNCATED);
}

static void test_truncated_version(void **state)
{
    (void)state;
    int type;
    uint8_t digest[] = { 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 9 };
    for (size_t len = 3; len < sizeof(digest); len++)
        assert_int_equal(check(digest, len, &type), SB_DROP_TRUNCATED);
    assert_int_equal(check(digest, sizeof(digest), &type), -1);
    uint8_t delta[] = { 3, 1, 'a', 1, 'k', 1, 'v', 0, 0, 0, 0, 0, 0, 0, 9 };
    for (size_t len = 7; len < sizeof(delta); len++)
        assert_int_equal(check(delta, len, &type), SB_DROP_TRUNCATED);
    assert_int_equal(check(delta, sizeof(delta), &type), -1);
    /* a digest entry read as a delta: key length 0, value length 0, then
     * a version two bytes short */
    uint8_t as_delta[] = { 3, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 9 };
    assert_int_equal(check(as_delta, sizeof(as_delta), &type),
                     SB_DROP_TRUNCATED);
}

/* Every prefix of a valid message ends inside an entry (truncated) or at
 * its end (valid). */
static void test_every_truncation(void **state)
{
    (void)state;
    for (int t = SB_REF_DIGEST_REQUEST; t <= SB_REF_DELTA; t++) {
        uint8_t buf[BUF_CAP];
        sb_writer w = writer(buf, sizeof(buf));
        assert_true(sb_ref_put_type(&w, t));
        bool boundary[BUF_CAP] = { [1] = true };
        for (int i = 0; i < 4; i++) {
            char addr[32];
            int alen = snprintf(addr, sizeof(addr), "10.0.0.%d:7946", i);
            if (t == SB_REF_DELTA)
                assert_true(sb_ref_put_delta(&w, addr, (size_t)alen,
                                             (const uint8_t *)"key", 3,
                                             (const uint8_t *)"val", i,
                                             (uint64_t)i + 1));
            else
                assert_true(sb_ref_put_digest(&w, addr, (size_t)alen,
                                              (uint64_t)i + 1));
            boundary[written(&w)] = true;
        }
        size_t len = written(&w);
        int type;
        for (size_t cut = 1; cut <= len; cut++) {
            int want = boundary[cut] ? -1 : SB_DROP_TRUNCATED;
            assert_int_equal(check(buf, cut, &type), want);
            if (want == -1)
                assert_int_equal(type, t);
        }
    }
}

static void test_empty_address_malformed(void **state)
{
    (void)state;
    int type;
    static const uint8_t digest[] = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    assert_int_equal(check(digest, sizeof(digest), &type), SB_DROP_MALFORMED);
    static const uint8_t response[] = { 2, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    assert_int_equal(check(response, sizeof(response), &type),
                     SB_DROP_MALFORMED);
    static const uint8_t delta[] = { 3, 0, 1, 'k', 1, 'v',
                                     0, 0, 0, 0, 0, 0, 0, 1 };
    assert_int_equal(check(delta, sizeof(delta), &type), SB_DROP_MALFORMED);
    /* in the second entry, after a valid one */
    static const uint8_t second[] = {
        1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    };
    assert_int_equal(check(second, sizeof(second), &type), SB_DROP_MALFORMED);
    /* empty key and value are fine: only the address names a node */
    static const uint8_t empty_kv[] = { 3, 1, 'a', 0, 0,
                                       0, 0, 0, 0, 0, 0, 0, 1 };
    assert_int_equal(check(empty_kv, sizeof(empty_kv), &type), -1);
}

static void test_nul_in_address_malformed(void **state)
{
    (void)state;
    int type;
    for (size_t at = 0; at < 5; at++) {
        uint8_t digest[] = { 1, 5, 'a', ':', '1', '2', '3',
                             0, 0, 0, 0, 0, 0, 0, 1 };
        digest[2 + at] = 0;
        assert_int_equal(check(digest, sizeof(digest), &type),
                         SB_DROP_MALFORMED);
        uint8_t delta[] = { 3, 5, 'a', ':', '1', '2', '3', 1, 'k', 1, 'v',
                            0, 0, 0, 0, 0, 0, 0, 1 };
        delta[2 + at] = 0;
        assert_int_equal(check(delta, sizeof(delta), &type),
                         SB_DROP_MALFORMED);
    }
    /* a NUL in a key or a value is data */
    static const uint8_t kv[] = { 3, 1, 'a', 2, 0, 'k', 2, 'v', 0,
                                  0, 0, 0, 0, 0, 0, 0, 1 };
    assert_int_equal(check(kv, sizeof(kv), &type), -1);
    sb_cursor c = { kv + 1, kv + sizeof(kv) };
    sb_ref_entry e;
    assert_true(sb_ref_next(&c, type, &e));
    assert_int_equal(e.key_len, 2);
    assert_memory_equal(e.key, "\0k", 2);
    assert_int_equal(e.value_len, 2);
    assert_memory_equal(e.value, "v\0", 2);
}

/* The first faulty entry decides: an empty address before a truncated
 * entry is malformed; an empty address whose version is cut short is
 * truncated. */
static void test_first_fault_decides(void **state)
{
    (void)state;
    int type;
    static const uint8_t empty_then_short[] = {
        1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 'a',
    };
    assert_int_equal(check(empty_then_short, sizeof(empty_then_short), &type),
                     SB_DROP_MALFORMED);
    static const uint8_t empty_and_short[] = { 1, 0, 0, 0, 0 };
    assert_int_equal(check(empty_and_short, sizeof(empty_and_short), &type),
                     SB_DROP_TRUNCATED);
}

static void test_next_stops_at_a_bad_entry(void **state)
{
    (void)state;
    /* sb_ref_next on unchecked bytes reads nothing past a fault */
    static const uint8_t msg[] = {
        1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    };
    sb_cursor c = { msg + 1, msg + sizeof(msg) };
    sb_ref_entry e;
    assert_true(sb_ref_next(&c, SB_REF_DIGEST_REQUEST, &e));
    assert_int_equal(e.version, 7);
    assert_false(sb_ref_next(&c, SB_REF_DIGEST_REQUEST, &e));
    sb_cursor t = { msg + 1, msg + 8 };
    assert_false(sb_ref_next(&t, SB_REF_DIGEST_REQUEST, &e));
}

/* ---- writers ------------------------------------------------------------- */

/* Each writer, given every room short of what it needs, writes nothing
 * and returns false; given exactly the room, fills it. */
static void test_writers_refuse_when_full(void **state)
{
    (void)state;
    static const uint8_t key[] = "key", value[] = "value";
    const char *addr = "127.0.0.1:7946";
    const size_t alen = strlen(addr);
    for (int kind = 0; kind < 3; kind++) {
        size_t need = kind == 0   ? 1
                      : kind == 1 ? sb_ref_digest_size(alen)
                                  : sb_ref_delta_size(alen, 3, 5);
        for (size_t room = 0; room <= need; room++) {
            uint8_t buf[64];
            memset(buf, 0xee, sizeof(buf));
            sb_writer w = { buf, buf + 4, buf + 4 + room };
            bool ok = kind == 0 ? sb_ref_put_type(&w, SB_REF_DELTA)
                      : kind == 1
                          ? sb_ref_put_digest(&w, addr, alen, 5)
                          : sb_ref_put_delta(&w, addr, alen, key, 3, value,
                                             5, 5);
            assert_int_equal(ok, room == need);
            assert_ptr_equal(w.p, buf + 4 + (ok ? need : 0));
            assert_ptr_equal(w.end, buf + 4 + room);
            for (size_t i = 0; i < sizeof(buf); i++)
                if (!ok || i < 4 || i >= 4 + need)
                    assert_int_equal(buf[i], 0xee);
        }
    }
}

static void test_writers_refuse_long_strings(void **state)
{
    (void)state;
    uint8_t s[SB_REF_MAX_STR + 1];
    memset(s, 'x', sizeof(s));
    const char *a = (const char *)s;
    uint8_t buf[BUF_CAP];
    memset(buf, 0xee, sizeof(buf));
    sb_writer w = writer(buf, sizeof(buf));
    assert_false(sb_ref_put_digest(&w, a, 256, 1));
    assert_false(sb_ref_put_delta(&w, a, 256, s, 1, s, 1, 1));
    assert_false(sb_ref_put_delta(&w, a, 1, s, 256, s, 1, 1));
    assert_false(sb_ref_put_delta(&w, a, 1, s, 1, s, 256, 1));
    assert_false(sb_ref_put_delta(&w, a, 1, s, 1, s, SIZE_MAX, 1));
    assert_ptr_equal(w.p, buf);
    assert_int_equal(buf[0], 0xee);
    /* 255 is the longest */
    assert_true(sb_ref_put_digest(&w, a, 255, 1));
    assert_int_equal(buf[0], 255);
    assert_int_equal(written(&w), 264);
    assert_true(sb_ref_put_delta(&w, a, 255, s, 255, s, 255, 1));
    assert_int_equal(written(&w), 264 + 776);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_digest_bytes),
        cmocka_unit_test(test_delta_bytes),
        cmocka_unit_test(test_decode_golden),
        cmocka_unit_test(test_digest_round_trip),
        cmocka_unit_test(test_delta_round_trip),
        cmocka_unit_test(test_empty_messages_valid),
        cmocka_unit_test(test_empty_buffer_truncated),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_truncated_string),
        cmocka_unit_test(test_truncated_version),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_empty_address_malformed),
        cmocka_unit_test(test_nul_in_address_malformed),
        cmocka_unit_test(test_first_fault_decides),
        cmocka_unit_test(test_next_stops_at_a_bad_entry),
        cmocka_unit_test(test_writers_refuse_when_full),
        cmocka_unit_test(test_writers_refuse_long_strings),
    };
    return RUN_TESTS(tests, argc, argv);
}
