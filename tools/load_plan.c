/* The load scenario's plan: rates, the write schedule, keys and values
 * (load_plan.h). */
#include "load_plan.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_PLAN_KEY_PREFIX "load."

void load_plan_init(load_plan *p)
{
    memset(p, 0, sizeof(*p));
    p->keys = LOAD_PLAN_KEYS;
    p->value_bytes = LOAD_PLAN_VALUE_BYTES;
    p->seconds = LOAD_PLAN_SECONDS;
}

bool load_plan_parse_rates(const char *s, load_plan *p)
{
    double rates[LOAD_PLAN_MAX_RATES];
    size_t n = 0;
    const char *at = s;
    if (!s || !*s)
        return false;
    for (;;) {
        char *end;
        errno = 0;
        double r = strtod(at, &end);
        if (end == at || errno || !(r > 0) || r > LOAD_PLAN_MAX_RATE ||
            n == LOAD_PLAN_MAX_RATES || (*end && *end != ','))
            return false;
        rates[n++] = r;
        if (!*end)
            break;
        at = end + 1;
    }
    memcpy(p->rates, rates, n * sizeof(double));
    p->nrates = n;
    return true;
}

uint64_t load_plan_writes(const load_plan *p, double rate)
{
    return (uint64_t)floor(rate * (double)p->seconds);
}

void load_plan_write(const load_plan *p, double rate, uint32_t nodes,
                     uint64_t g, uint32_t *writer, uint32_t *key,
                     uint64_t *due_ns)
{
    uint64_t j = g / nodes;
    *writer = (uint32_t)(g % nodes);
    *key = (uint32_t)(j % p->keys);
    *due_ns = (uint64_t)((double)g * 1e9 / ((double)nodes * rate));
}

size_t load_plan_key(char *buf, uint32_t k)
{
    int n = snprintf(buf, LOAD_PLAN_KEY_CAP, LOAD_PLAN_KEY_PREFIX "%" PRIu32,
                     k);
    return n < 0 ? 0 : (size_t)n;
}

size_t load_plan_value(const load_plan *p, char *buf, uint64_t seq,
                       uint64_t time_us)
{
    int n = snprintf(buf, p->value_bytes + 1, "%" PRIu64 ":%" PRIu64, seq,
                     time_us);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len > p->value_bytes)
        len = p->value_bytes;
    memset(buf + len, '.', p->value_bytes - len);
    buf[p->value_bytes] = '\0';
    return p->value_bytes;
}

/* The decimal number at s[0..len) up to `stop` (or the end); false if
 * there is none or it overflows. */
static bool load_plan_number(const char *s, size_t len, char stop,
                             uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < len && s[i] != stop; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return i > 0;
}

bool load_plan_parse(const load_plan *p, const char *key, size_t key_len,
                     const char *value, size_t value_len, uint32_t *k,
                     uint64_t *seq)
{
    size_t pre = strlen(LOAD_PLAN_KEY_PREFIX);
    uint64_t idx;
    if (!key || !value || key_len <= pre ||
        memcmp(key, LOAD_PLAN_KEY_PREFIX, pre) != 0 ||
        !load_plan_number(key + pre, key_len - pre, '\0', &idx) ||
        idx >= p->keys || !load_plan_number(value, value_len, ':', seq))
        return false;
    *k = (uint32_t)idx;
    return true;
}
