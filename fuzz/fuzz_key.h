/* The key of the sealed fuzz target and of its seed corpus: public, for
 * fuzzing only. */
#ifndef SB_FUZZ_KEY_H
#define SB_FUZZ_KEY_H

#include <stdint.h>

static const uint8_t sb_fuzz_key[32] = "scuttlebutt fuzzing key: public";

#endif /* SB_FUZZ_KEY_H */
