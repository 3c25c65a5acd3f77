/* The members with their ages (see members.h). */
#define _GNU_SOURCE
#include "members.h"

#include <stdlib.h>
#include <string.h>

#include "loop.h"

static agent_seen *members_find(agent *a, const char *addr)
{
    for (size_t i = 0; i < a->nseen; i++)
        if (strcmp(a->seen[i].addr, addr) == 0)
            return &a->seen[i];
    return NULL;
}

/* The entry for addr, made if new (first seen at `first`); NULL when out
 * of memory. */
static agent_seen *members_note(agent *a, const char *addr, sb_status status,
                                uint64_t first, uint64_t now)
{
    agent_seen *s = members_find(a, addr);
    if (!s) {
        agent_seen *v = realloc(a->seen, (a->nseen + 1) * sizeof(*v));
        char *copy = strdup(addr);
        if (!v || !copy) {
            free(copy);
            if (v)
                a->seen = v;
            return NULL;
        }
        a->seen = v;
        s = &a->seen[a->nseen++];
        *s = (agent_seen){ copy, status, first };
    }
    if (s->status != status) {
        s->status = status;
        s->since_ms = now;
    }
    return s;
}

void members_event(agent *a, const sb_event *ev)
{
    uint64_t now = mono_ms();
    members_note(a, ev->addr, ev->status, now, now);
}

bool members_parse_status(const char *name, int *status)
{
    for (int s = SB_STATUS_JOINING; s <= SB_STATUS_LEFT; s++)
        if (strcmp(name, sb_status_name((sb_status)s)) == 0) {
            *status = s;
            return true;
        }
    return false;
}

json_t *members_json(agent *a, int status)
{
    sb_member *m;
    size_t n;
    if (sb_node_members(a->node, &m, &n) != SB_OK)
        return NULL;
    uint64_t now = mono_ms();
    json_t *list = json_array();
    bool *kept = calloc(a->nseen + n + 1, sizeof(*kept));
    for (size_t i = 0; list && kept && i < n; i++) {
        /* this agent: in its status since it started */
        agent_seen *s = members_note(a, m[i].addr, m[i].status,
                                     m[i].self ? a->start_ms : now, now);
        if (s)
            kept[s - a->seen] = true;
        if (status >= 0 && (int)m[i].status != status)
            continue;
        json_array_append_new(
            list, json_pack("{sssssIsisIsbsb}", "addr", m[i].addr, "status",
                            sb_status_name(m[i].status), "age_ms",
                            (json_int_t)(s ? now - s->since_ms : 0), "keys",
                            (int)m[i].keys, "generation",
                            (json_int_t)m[i].generation, "self", m[i].self,
                            "leaving", m[i].leaving));
    }
    /* members the node has forgotten are forgotten here too */
    size_t w = 0;
    for (size_t i = 0; kept && i < a->nseen; i++) {
        if (kept[i])
            a->seen[w++] = a->seen[i];
        else
            free(a->seen[i].addr);
    }
    if (kept)
        a->nseen = w;
    free(kept);
    sb_free(m);
    if (!kept) {
        json_decref(list);
        return NULL;
    }
    return list;
}

void members_free(agent *a)
{
    for (size_t i = 0; i < a->nseen; i++)
        free(a->seen[i].addr);
    free(a->seen);
    a->seen = NULL;
    a->nseen = 0;
}
