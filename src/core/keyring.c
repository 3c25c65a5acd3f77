/*
 * The keyring (keyring.h, docs/security.md): up to SB_MAX_KEYS keys, one
 * primary that seals; whole messages sealed and opened with libsodium.
 */
#include "keyring.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"

bool sb_seal_init(void)
{
    return sodium_init() >= 0;
}

bool sb_key_is_zero(const uint8_t *key)
{
    return sodium_is_zero(key, SB_KEY_SIZE);
}

static int keyring_find(const sb_keyring *kr, const uint8_t *key)
{
    for (uint32_t i = 0; i < kr->count; i++)
        if (sodium_memcmp(kr->keys[i], key, SB_KEY_SIZE) == 0)
            return (int)i;
    return -1;
}

int sb_keyring_install(sb_keyring *kr, const uint8_t *key)
{
    if (keyring_find(kr, key) >= 0)
        return SB_OK;
    if (kr->count == SB_MAX_KEYS)
        return SB_ELIMIT;
    memcpy(kr->keys[kr->count++], key, SB_KEY_SIZE);
    return SB_OK;
}

int sb_keyring_use(sb_keyring *kr, const uint8_t *key)
{
    int i = keyring_find(kr, key);
    if (i < 0)
        return SB_ENOTFOUND;
    uint8_t t[SB_KEY_SIZE];
    memcpy(t, kr->keys[0], SB_KEY_SIZE);
    memcpy(kr->keys[0], kr->keys[i], SB_KEY_SIZE);
    memcpy(kr->keys[i], t, SB_KEY_SIZE);
    sodium_memzero(t, sizeof(t));
    return SB_OK;
}

int sb_keyring_remove(sb_keyring *kr, const uint8_t *key)
{
    int i = keyring_find(kr, key);
    if (i < 0)
        return SB_ENOTFOUND;
    if (i == 0)
        return SB_ESTATE;
    kr->count--;
    memmove(kr->keys[i], kr->keys[i + 1],
            (kr->count - (uint32_t)i) * SB_KEY_SIZE);
    sodium_memzero(kr->keys[kr->count], SB_KEY_SIZE);
    return SB_OK;
}

void sb_keyring_wipe(sb_keyring *kr)
{
    sodium_memzero(kr, sizeof(*kr));
}

size_t sb_seal(const sb_keyring *kr, const uint8_t nonce[SB_NONCE_SIZE],
               const uint8_t *msg, size_t len, uint8_t *out)
{
    memcpy(out, msg, SB_HEADER_SIZE);
    out[3] |= SB_SEALED;
    memcpy(out + SB_HEADER_SIZE, nonce, SB_NONCE_SIZE);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + SB_HEADER_SIZE + SB_NONCE_SIZE, &clen, msg + SB_HEADER_SIZE,
        len - SB_HEADER_SIZE, out, SB_HEADER_SIZE, NULL, nonce, kr->keys[0]);
    return SB_HEADER_SIZE + SB_NONCE_SIZE + (size_t)clen;
}

size_t sb_open(const sb_keyring *kr, const uint8_t *in, size_t len,
               uint8_t *out)
{
    if (len < SB_HEADER_SIZE + SB_SEAL_OVERHEAD || !(in[3] & SB_SEALED))
        return 0;
    const uint8_t *nonce = in + SB_HEADER_SIZE;
    const uint8_t *c = nonce + SB_NONCE_SIZE;
    size_t clen = len - SB_HEADER_SIZE - SB_NONCE_SIZE;
    for (uint32_t i = 0; i < kr->count; i++) {
        unsigned long long mlen = 0;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                out + SB_HEADER_SIZE, &mlen, NULL, c, clen, in,
                SB_HEADER_SIZE, nonce, kr->keys[i]) == 0) {
            memcpy(out, in, SB_HEADER_SIZE);
            out[3] &= (uint8_t)~SB_SEALED;
            return SB_HEADER_SIZE + (size_t)mlen;
        }
    }
    return 0;
}
