/* JSON helpers (see json.h). */
#include "json.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool json_is_text(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, beyond Unicode */
        static const uint32_t min[] = { 0, 0x80, 0x800, 0x10000 };
        if (cp < min[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += n + 1;
    }
    return true;
}

void json_set_bytes(json_t *obj, const char *name, const char *buf,
                    size_t len)
{
    if (json_is_text(buf, len)) {
        json_object_set_new(obj, name, json_stringn(buf, len));
        return;
    }
    size_t size =
        sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(size), field[64];
    snprintf(field, sizeof(field), "%s_b64", name);
    if (b64) {
        sodium_bin2base64(b64, size, (const unsigned char *)buf, len,
                          sodium_base64_VARIANT_ORIGINAL);
        json_object_set_new(obj, field, json_string(b64));
    }
    free(b64);
}

char *json_get_bytes(const json_t *obj, const char *name, size_t *len)
{
    const json_t *v = json_object_get(obj, name);
    if (json_is_string(v)) {
        *len = json_string_length(v);
        char *out = malloc(*len + 1);
        if (out) {
            memcpy(out, json_string_value(v), *len);
            out[*len] = '\0';
        }
        return out;
    }
    char field[64];
    snprintf(field, sizeof(field), "%s_b64", name);
    v = json_object_get(obj, field);
    if (!json_is_string(v))
        return NULL;
    const char *b64 = json_string_value(v);
    size_t b64_len = json_string_length(v);
    char *out = malloc(b64_len + 1); /* more than the bytes it decodes to */
    const char *end = NULL;
    if (out && (sodium_base642bin((unsigned char *)out, b64_len, b64,
                                  b64_len, NULL, len, &end,
                                  sodium_base64_VARIANT_ORIGINAL) != 0 ||
                end != b64 + b64_len)) {
        free(out);
        return NULL;
    }
    if (out)
        out[*len] = '\0';
    return out;
}

char *json_line(json_t *obj, size_t *len)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    *len = n + 1;
    return line;
}

