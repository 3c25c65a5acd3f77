/*
 * Unit tests of the keyring and of sealing (src/core/keyring.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../run.h"

#include <string.h>

#include "codec.h"
#include "keyring.h"

static void key(uint8_t out[SB_KEY_SIZE], uint8_t tag)
{
    memset(out, tag, SB_KEY_SIZE);
}

static void test_install_use_remove(void **state)
{
    (void)state;
    sb_keyring kr = { 0 };
    uint8_t k[SB_MAX_KEYS + 1][SB_KEY_SIZE];
    for (int i = 0; i <= SB_MAX_KEYS; i++)
        key(k[i], (uint8_t)(i + 1));
    for (int i = 0; i < SB_MAX_KEYS; i++)
        assert_int_equal(sb_keyring_install(&kr, k[i]), SB_OK);
    assert_int_equal(sb_keyring_install(&kr, k[0]), SB_OK); /* again */
    assert_int_equal(kr.count, SB_MAX_KEYS);
    assert_int_equal(sb_keyring_install(&kr, k[SB_MAX_KEYS]), SB_ELIMIT);
    /* the first installed is the primary */
    assert_memory_equal(kr.keys[0], k[0], SB_KEY_SIZE);
    assert_int_equal(sb_keyring_use(&kr, k[SB_MAX_KEYS]), SB_ENOTFOUND);
    assert_int_equal(sb_keyring_use(&kr, k[3]), SB_OK);
    assert_memory_equal(kr.keys[0], k[3], SB_KEY_SIZE);
    assert_int_equal(sb_keyring_remove(&kr, k[3]), SB_ESTATE);
    assert_int_equal(sb_keyring_remove(&kr, k[0]), SB_OK);
    assert_int_equal(sb_keyring_remove(&kr, k[0]), SB_ENOTFOUND);
    assert_int_equal(kr.count, SB_MAX_KEYS - 1);
    /* the others stay, and the freed slot is zero */
    for (int i = 1; i < SB_MAX_KEYS; i++)
        assert_int_equal(sb_keyring_use(&kr, k[i]), SB_OK);
    uint8_t zero[SB_KEY_SIZE] = { 0 };
    assert_memory_equal(kr.keys[SB_MAX_KEYS - 1], zero, SB_KEY_SIZE);
    sb_keyring_wipe(&kr);
    assert_int_equal(kr.count, 0);
    assert_memory_equal(kr.keys[0], zero, SB_KEY_SIZE);
}

#define ECHO 0x0102030405060708ull

/* Checks that buf[0..len) is a valid ACK2 (wire v3) echoing ECHO. */
static void check_ack2(const uint8_t *buf, size_t len)
{
    sb_msg m;
    assert_true(sb_msg_decode(buf, len, sb_cluster_id("default"), &m, NULL));
    assert_int_equal(m.type, SB_MSG_ACK2);
    assert_int_equal(m.echo, ECHO);
    assert_int_equal(m.ndeltas, 1);
}

/* A message: a valid ACK2 (header, echo, one node delta with one key)
 * whose key's value is `vlen` bytes. Returns its length. */
static size_t message(uint8_t *buf, size_t cap, size_t vlen)
{
    static uint8_t value[1024];
    assert_true(vlen <= sizeof(value));
    for (size_t i = 0; i < vlen; i++)
        value[i] = (uint8_t)(i * 13);
    const sb_delta d = { .addr = "a:1", .addr_len = 3, .generation = 1,
                         .heartbeat = 1, .from_version = 0,
                         .to_version = 1, .nkeys = 1 };
    const sb_key_entry k = { .key = (const uint8_t *)"k", .key_len = 1,
                             .version = 1, .value = value,
                             .value_len = vlen };
    sb_writer w = { buf, buf, buf + cap };
    assert_true(sb_put_header(&w, SB_MSG_ACK2, sb_cluster_id("default")));
    assert_true(sb_put_u64(&w, ECHO));
    assert_true(sb_put_varint(&w, 1));
    assert_true(sb_put_delta_header(&w, &d));
    assert_true(sb_put_key_entry(&w, &k));
    size_t len = (size_t)(w.p - buf);
    check_ack2(buf, len);
    return len;
}

static void test_seal_open_round_trip(void **state)
{
    (void)state;
    assert_true(sb_seal_init());
    sb_keyring a = { 0 }, b = { 0 };
    uint8_t ka[SB_KEY_SIZE], kb[SB_KEY_SIZE];
    key(ka, 0xa);
    key(kb, 0xb);
    sb_keyring_install(&a, ka);
    sb_keyring_install(&b, kb);
    uint8_t nonce[SB_NONCE_SIZE] = { 1, 2, 3 };
    /* sealing takes any message from a bare header on: the body is opaque
     * to it */
    {
        uint8_t hdr[SB_HEADER_SIZE], sealed[100], opened[100];
        sb_writer w = { hdr, hdr, hdr + sizeof(hdr) };
        assert_true(sb_put_header(&w, SB_MSG_ACK2, sb_cluster_id("default")));
        size_t slen = sb_seal(&a, nonce, hdr, sizeof(hdr), sealed);
        assert_int_equal(slen, sizeof(hdr) + SB_SEAL_OVERHEAD);
        assert_int_equal(sb_open(&a, sealed, slen, opened), sizeof(hdr));
        assert_memory_equal(opened, hdr, sizeof(hdr));
        nonce[0]++;
    }
    for (size_t vlen = 0; vlen < 600; vlen += 37) {
        uint8_t msg[700], sealed[800], opened[800];
        size_t len = message(msg, sizeof(msg), vlen);
        size_t slen = sb_seal(&a, nonce, msg, len, sealed);
        assert_int_equal(slen, len + SB_SEAL_OVERHEAD);
        /* the header stays readable, marked sealed; the body does not */
        assert_memory_equal(sealed, msg, 3);
        assert_int_equal(sealed[3], msg[3] | SB_SEALED);
        assert_memory_equal(sealed + 4, msg + 4, 4);
        /* the echo and what follows are encrypted */
        assert_true(len >= SB_HEADER_SIZE + 16);
        assert_memory_not_equal(sealed + SB_HEADER_SIZE + SB_NONCE_SIZE,
                                msg + SB_HEADER_SIZE, 16);
        assert_int_equal(sb_open(&a, sealed, slen, opened), len);
        assert_memory_equal(opened, msg, len);
        check_ack2(opened, len);
        /* another key does not open it; once installed, it does */
        assert_int_equal(sb_open(&b, sealed, slen, opened), 0);
        sb_keyring_install(&b, ka);
        assert_int_equal(sb_open(&b, sealed, slen, opened), len);
        sb_keyring_remove(&b, ka);
        /* cut short, or not sealed */
        assert_int_equal(sb_open(&a, sealed, slen - 1, opened), 0);
        assert_int_equal(sb_open(&a, msg, len, opened), 0);
        nonce[0]++;
    }
}

/* Two seals of one message with two nonces differ entirely past the
 * header; the header (magic, version, type, cluster id) is authenticated. */
static void test_header_is_authenticated(void **state)
{
    (void)state;
    sb_keyring a = { 0 };
    uint8_t ka[SB_KEY_SIZE], msg[100], s1[200], s2[200], out[200];
    key(ka, 0xa);
    sb_keyring_install(&a, ka);
    size_t len = message(msg, sizeof(msg), 50);
    uint8_t n1[SB_NONCE_SIZE] = { 1 }, n2[SB_NONCE_SIZE] = { 2 };
    size_t slen = sb_seal(&a, n1, msg, len, s1);
    sb_seal(&a, n2, msg, len, s2);
    assert_memory_not_equal(s1 + SB_HEADER_SIZE, s2 + SB_HEADER_SIZE,
                            slen - SB_HEADER_SIZE);
    for (size_t i = 0; i < SB_HEADER_SIZE; i++) {
        if (i == 3)
            continue; /* without the seal bit it is not sealed at all */
        s1[i] ^= 0x10;
        assert_int_equal(sb_open(&a, s1, slen, out), 0);
        s1[i] ^= 0x10;
    }
    assert_int_equal(sb_open(&a, s1, slen, out), len);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_use_remove),
        cmocka_unit_test(test_seal_open_round_trip),
        cmocka_unit_test(test_header_is_authenticated),
    };
    return RUN_TESTS(tests, argc, argv);
}
