/*
 * Socket addresses and their text form.
 *
 * The text form is "host:port" for IPv4 and names, "[v6 address]:port"
 * for IPv6. Numeric addresses have one canonical text (what
 * sb_addr_format() writes); the engine knows peers by that text, so every
 * address that reaches the engine goes through sb_addr_format() first.
 */
#ifndef SB_ADDR_H
#define SB_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Room for the longest canonical text: "[" v6 "]:" port, and a NUL. */
#define SB_ADDR_STRLEN 64

typedef struct sb_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
} sb_sockaddr;

/* Splits "host:port" or "[ip6]:port" into host and port text.
 * SB_EADDR when the form is wrong (brackets around anything but an IPv6
 * address, or around one with a zone) or a part does not fit. */
int sb_addr_split(const char *text, char *host, size_t host_cap,
                  char *port, size_t port_cap);

/* Parses a numeric address (no name lookup). SB_EADDR if it is not one. */
int sb_addr_parse(const char *text, sb_sockaddr *out);

/*
 * Resolves "host:port" (a name or a numeric address) with getaddrinfo
 * into up to `max` addresses usable from a socket of `family` (AF_INET6
 * takes both families; IPv4 results come back IPv4, mapped when sent).
 * `passive` asks for addresses to bind. Returns how many, or SB_EADDR.
 */
int sb_addr_resolve(const char *text, int family, bool passive,
                    sb_sockaddr *out, size_t max);

/* Writes the canonical text of `a` (an IPv4-mapped IPv6 address is
 * written as IPv4). */
void sb_addr_format(const sb_sockaddr *a, char out[SB_ADDR_STRLEN]);

/* Makes `a` sendable from a socket of `family`: an IPv4 address becomes
 * IPv4-mapped for an IPv6 socket. False if it cannot be (IPv6 from an
 * IPv4 socket). */
bool sb_addr_for_family(sb_sockaddr *a, int family);

/* True for 0.0.0.0, :: and ::ffff:0.0.0.0. */
bool sb_addr_is_wildcard(const sb_sockaddr *a);

/* True for an IPv6 link-local address (fe80::/10): usable only with a
 * zone, which the text of an address does not carry. */
bool sb_addr_is_link_local(const sb_sockaddr *a);
/* Whether the text "[ip6%zone]:port" names a zone, which no address we
 * take may (it could not be advertised: docs/api.md); sb_addr_split()
 * refuses it, and this tells why. */
bool sb_addr_has_zone(const char *text);

/* True for a group address (IPv4 multicast or 255.255.255.255, IPv6
 * multicast, mapped or not): no one node's, so no node can be reached
 * at it. */
bool sb_addr_is_group(const sb_sockaddr *a);

/* AF_INET for IPv4 and IPv4-mapped IPv6 addresses, else AF_INET6. */
int sb_addr_family(const sb_sockaddr *a);

/* Which peers a socket bound to `bound` can talk to: IPv4 for an IPv4 or
 * IPv4-mapped address, IPv6 for a specific IPv6 address, both for [::]
 * (dual-stack). */
#define SB_REACH_V4 1u
#define SB_REACH_V6 2u
unsigned sb_addr_reach(const sb_sockaddr *bound);
/* SB_REACH_V4 or SB_REACH_V6: the bit `a` needs. */
unsigned sb_addr_reach_bit(const sb_sockaddr *a);
/* The port of `a`. */
unsigned sb_addr_port(const sb_sockaddr *a);
/* Sets the port of `a` (IPv4 or IPv6). */
void sb_addr_set_port(sb_sockaddr *a, unsigned port);

#endif /* SB_ADDR_H */
