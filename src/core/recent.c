/*
 * The ring of recent changes (internal.h, sb_engine.recent): the records
 * that changed in the last RECENT_ROUNDS, which our SYNs list and our
 * ACKs offer as news (exchange.c), and which keep a node from resting
 * (round.c). Allocated at a change, freed once none is recent.
 */
#include <stdlib.h>

#include "internal.h"

/* Remembers that n changed (or has news elsewhere), for the next SYNs
 * and ACKs; `before` is n's max version before fresh keys, or NO_DELTA.
 * Out of memory for the ring, the change is not offered as news (counted
 * as a drop): the summaries find it all the same. */
void sb_recent_note(sb_engine *e, sb_peer *n, uint64_t now, uint64_t before)
{
    sb_state_touch(&e->st, n);
    if (!e->recent && !(e->recent = malloc(RECENT * sizeof(*e->recent)))) {
        e->stats.drops[SB_DROP_NOMEM]++;
        return;
    }
    e->recent[e->recent_head++ % RECENT] = (recent){ n->id, now, before };
}

/* Frees the ring of recent changes once its newest is no longer recent:
 * a cluster at rest holds none. */
void sb_recent_rest(sb_engine *e, uint64_t now)
{
    if (e->recent && now - e->recent[(e->recent_head - 1) % RECENT].at >
                         RECENT_ROUNDS * e->round_ns) {
        free(e->recent);
        e->recent = NULL;
        e->recent_head = 0;
    }
}
