/* Socket addresses and their text form (see addr.h). */
#define _POSIX_C_SOURCE 200809L
#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scuttlebutt.h"

static bool addr_copy_part(char *dst, size_t cap, const char *src, size_t len)
{
    if (len == 0 || len >= cap)
        return false;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}

bool sb_addr_has_zone(const char *text)
{
    const char *close = text[0] == '[' ? strchr(text, ']') : NULL;
    const char *zone = strchr(text, '%');
    return close && zone && zone < close;
}

int sb_addr_split(const char *text, char *host, size_t host_cap, char *port,
                  size_t port_cap)
{
    if (!text)
        return SB_EADDR;
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return SB_EADDR;
        if (!addr_copy_part(host, host_cap, text + 1,
                            (size_t)(close - text - 1)))
            return SB_EADDR;
        /* brackets hold an IPv6 address, and without a zone */
        if (!strchr(host, ':') || sb_addr_has_zone(text))
            return SB_EADDR;
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        /* a bare IPv6 address has several colons: it needs brackets */
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return SB_EADDR;
        if (!addr_copy_part(host, host_cap, text, (size_t)(colon - text)))
            return SB_EADDR;
    }
    const char *p = colon + 1;
    size_t plen = strlen(p);
    if (plen > 7 || !addr_copy_part(port, port_cap, p, plen)) /* 0080 is 80 */
        return SB_EADDR;
    unsigned v = 0;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] < '0' || p[i] > '9')
            return SB_EADDR;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535 ? SB_OK : SB_EADDR;
}

int sb_addr_parse(const char *text, sb_sockaddr *out)
{
    char host[SB_ADDR_STRLEN], port[8];
    if (sb_addr_split(text, host, sizeof(host), port, sizeof(port)) != SB_OK)
        return SB_EADDR;
    unsigned short p = (unsigned short)strtoul(port, NULL, 10);
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (text[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(p);
        out->len = sizeof(*v4);
        return SB_OK;
    }
    if (text[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(p);
        out->len = sizeof(*v6);
        return SB_OK;
    }
    return SB_EADDR;
}

int sb_addr_resolve(const char *text, int family, bool passive,
                    sb_sockaddr *out, size_t max)
{
    char host[256], port[8];
    if (sb_addr_split(text, host, sizeof(host), port, sizeof(port)) != SB_OK)
        return SB_EADDR;
    struct addrinfo hints = {
        .ai_family = family == AF_INET ? AF_INET : AF_UNSPEC,
        .ai_socktype = SOCK_DGRAM,
        .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
    };
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return SB_EADDR;
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(out[n].ss) ||
            (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
            continue;
        memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    return n ? (int)n : SB_EADDR;
}

void sb_addr_format(const sb_sockaddr *a, char out[SB_ADDR_STRLEN])
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        snprintf(out, SB_ADDR_STRLEN, "%s:%u", host, ntohs(v4->sin_port));
        return;
    }
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
    if (a->ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
        inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], host, sizeof(host));
        snprintf(out, SB_ADDR_STRLEN, "%s:%u", host, ntohs(v6->sin6_port));
        return;
    }
    if (a->ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
    snprintf(out, SB_ADDR_STRLEN, "[%s]:%u", host, ntohs(v6->sin6_port));
}

bool sb_addr_for_family(sb_sockaddr *a, int family)
{
    if (a->ss.ss_family == family)
        return true;
    if (family != AF_INET6 || a->ss.ss_family != AF_INET)
        return false;
    struct sockaddr_in v4 = *(const struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
    memset(a, 0, sizeof(*a));
    v6->sin6_family = AF_INET6;
    v6->sin6_port = v4.sin_port;
    v6->sin6_addr.s6_addr[10] = 0xff;
    v6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&v6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
    a->len = sizeof(*v6);
    return true;
}

static bool addr_is_mapped(const sb_sockaddr *a)
{
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
    return a->ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr);
}

bool sb_addr_is_wildcard(const sb_sockaddr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
               htonl(INADDR_ANY);
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
    if (addr_is_mapped(a)) /* ::ffff:0.0.0.0 */
        return memcmp(&v6->sin6_addr.s6_addr[12], "\0\0\0\0", 4) == 0;
    return IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
}

bool sb_addr_is_link_local(const sb_sockaddr *a)
{
    return a->ss.ss_family == AF_INET6 &&
           IN6_IS_ADDR_LINKLOCAL(
               &((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

bool sb_addr_is_group(const sb_sockaddr *a)
{
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
    uint32_t v4;
    if (a->ss.ss_family == AF_INET)
        v4 = ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr);
    else if (addr_is_mapped(a))
        v4 = (uint32_t)v6->sin6_addr.s6_addr[12] << 24 |
             (uint32_t)v6->sin6_addr.s6_addr[13] << 16 |
             (uint32_t)v6->sin6_addr.s6_addr[14] << 8 |
             v6->sin6_addr.s6_addr[15];
    else
        return IN6_IS_ADDR_MULTICAST(&v6->sin6_addr);
    return IN_MULTICAST(v4) || v4 == INADDR_BROADCAST;
}

int sb_addr_family(const sb_sockaddr *a)
{
    return a->ss.ss_family == AF_INET || addr_is_mapped(a) ? AF_INET : AF_INET6;
}

unsigned sb_addr_reach(const sb_sockaddr *bound)
{
    if (bound->ss.ss_family == AF_INET || addr_is_mapped(bound))
        return SB_REACH_V4;
    if (sb_addr_is_wildcard(bound)) /* [::], dual-stack */
        return SB_REACH_V4 | SB_REACH_V6;
    return SB_REACH_V6;
}

unsigned sb_addr_reach_bit(const sb_sockaddr *a)
{
    return sb_addr_family(a) == AF_INET ? SB_REACH_V4 : SB_REACH_V6;
}

unsigned sb_addr_port(const sb_sockaddr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

void sb_addr_set_port(sb_sockaddr *a, unsigned port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}
