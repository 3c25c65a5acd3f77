/*
 * Address text: the one spelling a member's address has on the wire, the
 * canonical numeric "ip:port" or "[ip6]:port" the runtime advertises.
 */
#ifndef SB_ADDR_TEXT_H
#define SB_ADDR_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True if addr[0..len) is canonical address text: an IPv4 address in
 * dotted decimal without leading zeros, or an IPv6 address in brackets
 * as inet_ntop() writes it (lower case, the longest run of zero groups
 * folded; not IPv4-mapped, which is written as IPv4), then ':' and a
 * port of 1 to 65535 without leading zeros. Anything else, a name, a
 * NUL byte, a newline, is not.
 */
bool sb_addr_canonical(const char *addr, size_t len);

#endif /* SB_ADDR_TEXT_H */
