/* Argument parsing for the `scuttlebutt` tool (see args.h): each parser
 * takes the whole string or fails, leaving *out untouched. */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int usage_error(const char *text, const char *msg)
{
    if (msg)
        fprintf(stderr, "scuttlebutt: %s\n", msg);
    fputs(text, stderr);
    return 2;
}

bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) /* "inf" and "nan" too */
        return false;
    *out = v;
    return true;
}

bool parse_hostport(const char *s, uint32_t least, char host[256], bool *v6,
                    uint32_t *port)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    bool bracket = s && s[0] == '[';
    const char *start = bracket ? s + 1 : s;
    const char *end = bracket ? strchr(s, ']') : colon;
    if (!colon || !end || end <= start || end + bracket != colon ||
        end - start > 255 || (!bracket && memchr(s, ':', (size_t)(colon - s))) ||
        (bracket && (!memchr(start, ':', (size_t)(end - start)) ||
                     memchr(start, '%', (size_t)(end - start)))))
        return false;
    if (!parse_u32(colon + 1, least, 65535, port))
        return false;
    memcpy(host, start, (size_t)(end - start));
    host[end - start] = '\0';
    *v6 = bracket;
    return true;
}

bool parse_log_level(const char *s, sb_log_level *out)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (sb_log_level)i;
            return true;
        }
    return false;
}

bool parse_wire(const char *s, sb_wire *out)
{
    if (s && strcmp(s, "scuttlebutt") == 0)
        *out = SB_WIRE_SCUTTLEBUTT;
    else if (s && strcmp(s, "reference") == 0)
        *out = SB_WIRE_REFERENCE;
    else
        return false;
    return true;
}
