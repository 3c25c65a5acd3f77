/* The config file (see config.h). */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const config_key *config_find(const config_key *keys, const char *name)
{
    for (; keys->name; keys++)
        if (strcmp(keys->name, name) == 0)
            return keys;
    return NULL;
}

/* Applies one key's value; NULL, or why not. */
static const char *config_one(const config_key *k, const json_t *v,
                              config_apply_fn apply, void *ctx)
{
    char num[64];
    switch (k->kind) {
    case CONFIG_STRING:
        if (!json_is_string(v))
            return "expected a string";
        return apply(ctx, k->id, json_string_value(v));
    case CONFIG_NUMBER:
        if (json_is_integer(v))
            snprintf(num, sizeof(num), "%lld",
                     (long long)json_integer_value(v));
        else if (json_is_real(v) && isfinite(json_real_value(v)))
            snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        else
            return "expected a number";
        return apply(ctx, k->id, num);
    case CONFIG_LIST: {
        if (!json_is_array(v))
            return "expected an array of strings";
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) {
            if (!json_is_string(item))
                return "expected an array of strings";
        }
        json_array_foreach(v, i, item) {
            const char *why = apply(ctx, k->id, json_string_value(item));
            if (why)
                return why;
        }
        return NULL;
    }
    case CONFIG_FLAG:
        if (!json_is_boolean(v))
            return "expected true or false";
        return json_is_true(v) ? apply(ctx, k->id, NULL) : NULL;
    }
    return "?";
}

json_t *config_load(const char *cmd, const char *path,
                    const config_key *keys, config_apply_fn apply,
                    void *ctx)
{
    json_error_t err;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!doc) {
        if (err.line > 0)
            fprintf(stderr, "scuttlebutt %s: --config %s: line %d: %s\n",
                    cmd, path, err.line, err.text);
        else
            fprintf(stderr, "scuttlebutt %s: --config %s: %s\n", cmd, path,
                    err.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        fprintf(stderr, "scuttlebutt %s: --config %s: expected a JSON "
                "object of settings\n", cmd, path);
        json_decref(doc);
        return NULL;
    }
    const char *name;
    json_t *v;
    json_object_foreach(doc, name, v) {
        const config_key *k = config_find(keys, name);
        const char *why = k ? config_one(k, v, apply, ctx) : "unknown key";
        if (why) {
            fprintf(stderr, "scuttlebutt %s: --config %s: \"%s\": %s\n", cmd,
                    path, name, why);
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}
