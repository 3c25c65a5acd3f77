/* The key of the sealed fuzz target and of its seed corpus: public, for
 * fuzzing only; and the address the engine targets' packets come from. */
#ifndef SB_FUZZ_KEY_H
#define SB_FUZZ_KEY_H

#include <stdint.h>

static const uint8_t sb_fuzz_key[32] = "scuttlebutt fuzzing key: public";

/* The address the packets of fuzz_engine and fuzz_sealed come from. The
 * seed corpus's ACKs and ACK2s echo the fuzz node's token for it
 * (make_corpus.c), so that they pass as answers (wire v3). */
#define SB_FUZZ_FROM "10.0.0.9:7946"

#endif /* SB_FUZZ_KEY_H */
