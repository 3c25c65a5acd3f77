/*
 * The members as the agent shows them (`members`, /v1/members, the
 * status page): the node's list with each member's age, the time since
 * this agent first saw it in its current status (itself: since it
 * started).
 */
#ifndef SB_CLI_MEMBERS_H
#define SB_CLI_MEMBERS_H

#include "agent.h"
#include "json.h"

/* Notes the status an event gives a member. */
void members_event(agent *a, const sb_event *ev);

/* The members, self included, of one status (-1: all), as an array of
 * {"addr","status","age_ms","keys","generation","self"}; NULL when out
 * of memory. */
json_t *members_json(agent *a, int status);

/* "joining", "live", "down" or "left" into *status. */
bool members_parse_status(const char *name, int *status);

/* Frees what members.c keeps. */
void members_free(agent *a);

#endif
