/*
 * Address text (addr_text.h): canonical "ip:port" checked by parsing the
 * address and writing it again; pure text work, no socket, no lookup.
 */
#include "addr_text.h"

#include <arpa/inet.h>
#include <string.h>

/* A port of 1 to 65535 in decimal without leading zeros. */
static bool addr_text_port(const char *p, size_t len)
{
    if (len == 0 || len > 5 || p[0] == '0')
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535;
}

bool sb_addr_canonical(const char *addr, size_t len)
{
    const char *end = addr + len, *host, *colon;
    size_t hlen;
    bool v6 = len > 0 && addr[0] == '[';
    if (v6) {
        const char *close = memchr(addr, ']', len);
        if (!close || end - close < 2 || close[1] != ':')
            return false;
        host = addr + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = NULL;
        for (const char *p = addr; p < end; p++)
            if (*p == ':')
                colon = p;
        if (!colon)
            return false;
        host = addr;
        hlen = (size_t)(colon - addr);
    }
    if (!addr_text_port(colon + 1, (size_t)(end - colon - 1)))
        return false;
    char text[INET6_ADDRSTRLEN], again[INET6_ADDRSTRLEN];
    if (hlen == 0 || hlen >= sizeof(text) || memchr(host, 0, hlen))
        return false;
    memcpy(text, host, hlen);
    text[hlen] = 0;
    unsigned char bin[16];
    if (inet_pton(v6 ? AF_INET6 : AF_INET, text, bin) != 1 ||
        !inet_ntop(v6 ? AF_INET6 : AF_INET, bin, again, sizeof(again)))
        return false;
    /* an IPv4-mapped address is written as IPv4 */
    static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
    if (v6 && memcmp(bin, mapped, sizeof(mapped)) == 0)
        return false;
    return strcmp(text, again) == 0;
}
