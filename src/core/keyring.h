/*
 * The keyring and sealing: authenticated encryption of whole messages with
 * XChaCha20-Poly1305 (libsodium's IETF construction), docs/security.md.
 *
 * A sealed message is its plaintext's 8-byte header, with bit 7 of the
 * type byte set, then a 24-byte nonce, the body encrypted, and a 16-byte
 * tag. The header is the associated data: magic, version, type and
 * cluster id are authenticated, not encrypted.
 *
 *   +--------------------+--------------+--------------------+----------+
 *   | header, type|0x80  | nonce (24)   | body, encrypted    | tag (16) |
 *   +--------------------+--------------+--------------------+----------+
 *
 * The keyring holds up to SB_MAX_KEYS keys; the first is the primary,
 * which seals; any key opens. Pure computation: the caller supplies every
 * nonce, so the engine stays deterministic.
 */
#ifndef SB_KEYRING_H
#define SB_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scuttlebutt.h"

#define SB_NONCE_SIZE 24
#define SB_TAG_SIZE 16
#define SB_SEALED 0x80 /* bit of the header's type byte */
_Static_assert(SB_SEAL_OVERHEAD == SB_NONCE_SIZE + SB_TAG_SIZE,
               "a seal adds a nonce and a tag");

typedef struct sb_keyring {
    uint8_t keys[SB_MAX_KEYS][SB_KEY_SIZE]; /* keys[0] is the primary */
    uint32_t count;
} sb_keyring;

/* Initialises libsodium (once; thread-safe); false if it cannot. */
bool sb_seal_init(void);

/* Whether a key is all zeros: an array never filled (a read that failed,
 * a placeholder), which anyone can guess; never a key (keyring.c). */
bool sb_key_is_zero(const uint8_t *key);

/* Adds a key (installing one twice is no error); SB_ELIMIT when full.
 * The first key installed becomes the primary. */
int sb_keyring_install(sb_keyring *kr, const uint8_t *key);
/* Makes an installed key the primary; SB_ENOTFOUND if it is not one. */
int sb_keyring_use(sb_keyring *kr, const uint8_t *key);
/* Removes a key; SB_ENOTFOUND if absent, SB_ESTATE for the primary. */
int sb_keyring_remove(sb_keyring *kr, const uint8_t *key);
/* Overwrites every key with zeros. */
void sb_keyring_wipe(sb_keyring *kr);

/* Seals the message msg[0..len) (len >= 8, a header first) with the
 * primary key into out, which has room for len + SB_SEAL_OVERHEAD bytes;
 * returns the sealed length. The keyring must not be empty. */
size_t sb_seal(const sb_keyring *kr, const uint8_t nonce[SB_NONCE_SIZE],
               const uint8_t *msg, size_t len, uint8_t *out);
/* Opens a sealed message with the first key that authenticates it into
 * out (room for len bytes): the plaintext message, header first, type bit
 * 7 cleared. Returns its length, or 0 if no key opens it (too short,
 * not sealed, forged, or sealed with a key not installed). */
size_t sb_open(const sb_keyring *kr, const uint8_t *in, size_t len,
               uint8_t *out);

#endif /* SB_KEYRING_H */
