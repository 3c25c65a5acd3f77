/*
 * --config FILE: a JSON object whose keys are a subcommand's long flags
 * without their dashes, each with the type its flag takes: a string, a
 * number, an array of strings for a repeatable flag, true for a flag
 * without a value. Every value goes through the flag's own parser; an
 * unknown key or a wrong type is refused with the key's name.
 */
#ifndef SB_CLI_CONFIG_H
#define SB_CLI_CONFIG_H

#include "json.h"

typedef enum config_kind {
    CONFIG_STRING,
    CONFIG_NUMBER,
    CONFIG_LIST,               /* a repeatable flag: an array of strings */
    CONFIG_FLAG                /* no value: true (false: as if absent) */
} config_kind;

typedef struct config_key {
    const char *name;
    int id;
    config_kind kind;
} config_key;

/* Takes one setting (value NULL for a flag); NULL, or why not. Strings
 * stay valid as long as the document config_load() returns. */
typedef const char *(*config_apply_fn)(void *ctx, int id, const char *value);

/* Reads path and applies every setting in the file's order; the
 * document (to json_decref() when its strings are no longer used), or
 * NULL after printing "scuttlebutt CMD: --config PATH: ..." on stderr. */
json_t *config_load(const char *cmd, const char *path,
                    const config_key *keys, config_apply_fn apply,
                    void *ctx);

#endif
