/*
 * Unit tests of addresses and their text (src/runtime/addr.h): splitting,
 * parsing, the canonical text, families and reach, and name resolution
 * of numeric addresses and "localhost" only (no network).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../run.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "scuttlebutt.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct sockaddr_in *v4(const sb_sockaddr *a)
{
    return (const struct sockaddr_in *)&a->ss;
}

static const struct sockaddr_in6 *v6(const sb_sockaddr *a)
{
    return (const struct sockaddr_in6 *)&a->ss;
}

static sb_sockaddr parse(const char *text)
{
    sb_sockaddr a;
    if (sb_addr_parse(text, &a) != SB_OK) {
        print_error("sb_addr_parse(\"%s\") failed\n", text);
        fail();
    }
    return a;
}

static void assert_format(const sb_sockaddr *a, const char *want)
{
    char out[SB_ADDR_STRLEN];
    memset(out, 'z', sizeof(out));
    sb_addr_format(a, out);
    assert_string_equal(out, want);
}

/* ---- split --------------------------------------------------------------- */

static void test_split_good_forms(void **state)
{
    (void)state;
    static const struct {
        const char *text, *host, *port;
    } cases[] = {
        { "1.2.3.4:80", "1.2.3.4", "80" },
        { "[::1]:7946", "::1", "7946" },
        { "[fe80::1:2]:0", "fe80::1:2", "0" },
        { "example.org:65535", "example.org", "65535" },
        { "localhost:1", "localhost", "1" },
        { "h:0080", "h", "0080" },
        { "h:0000000", "h", "0000000" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char host[SB_ADDR_STRLEN], port[8];
        memset(host, 'z', sizeof(host));
        memset(port, 'z', sizeof(port));
        assert_int_equal(sb_addr_split(cases[i].text, host, sizeof(host),
                                       port, sizeof(port)),
                         SB_OK);
        assert_string_equal(host, cases[i].host);
        assert_string_equal(port, cases[i].port);
    }
}

static void test_split_bad_forms(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "1.2.3.4",           /* no port */
        "1.2.3.4:",          /* empty port */
        ":80",               /* empty host */
        "[]:80",
        "[::1]",
        "[::1]80",
        "[::1:80",
        "::1:80",            /* IPv6 needs brackets */
        "[localhost]:1",     /* and brackets hold IPv6 only */
        "[1.2.3.4]:80",
        "[::1%lo]:80",       /* without a zone (docs/api.md) */
        "[fe80::1%1]:80",
        "fe80::1:80",
        "[::1]:80:81",
        "1.2.3.4:80a",
        "1.2.3.4:a80",
        "1.2.3.4:-1",
        "1.2.3.4:+80",
        "1.2.3.4: 80",
        "1.2.3.4:80 ",
        "1.2.3.4:0x50",
        "1.2.3.4:65536",
        "1.2.3.4:99999",
        "1.2.3.4:9999999",
        "1.2.3.4:00000080",  /* 8 digits */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char host[SB_ADDR_STRLEN], port[16];
        if (sb_addr_split(bad[i], host, sizeof(host), port, sizeof(port)) !=
            SB_EADDR) {
            print_error("\"%s\" was split\n", bad[i]);
            fail();
        }
    }
    char host[SB_ADDR_STRLEN], port[8];
    assert_int_equal(sb_addr_split(NULL, host, sizeof(host), port,
                                   sizeof(port)),
                     SB_EADDR);
}

static void test_split_capacity(void **state)
{
    (void)state;
    char host[8], port[8];
    /* a host of 7 bytes fits 8 (with its NUL), of 8 does not */
    assert_int_equal(sb_addr_split("1.2.3.4:5", host, 8, port, 8), SB_OK);
    assert_string_equal(host, "1.2.3.4");
    assert_int_equal(sb_addr_split("1.2.3.45:5", host, 8, port, 8),
                     SB_EADDR);
    assert_int_equal(sb_addr_split("[1::2:3]:5", host, 8, port, 8), SB_OK);
    assert_string_equal(host, "1::2:3");
    assert_int_equal(sb_addr_split("[1::2:34]:5", host, 7, port, 8),
                     SB_EADDR);
    /* the port likewise */
    assert_int_equal(sb_addr_split("h:123", host, 8, port, 4), SB_OK);
    assert_string_equal(port, "123");
    assert_int_equal(sb_addr_split("h:1234", host, 8, port, 4), SB_EADDR);
}

/* ---- parse and format ---------------------------------------------------- */

static void test_parse_ipv4(void **state)
{
    (void)state;
    sb_sockaddr a;
    memset(&a, 0xa5, sizeof(a));
    assert_int_equal(sb_addr_parse("192.168.1.20:7946", &a), SB_OK);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(v4(&a)->sin_port), 7946);
    static const uint8_t want[4] = { 192, 168, 1, 20 };
    assert_memory_equal(&v4(&a)->sin_addr, want, 4);
    /* the rest is zero */
    static const uint8_t zero[8] = { 0 };
    assert_memory_equal(v4(&a)->sin_zero, zero, sizeof(zero));
    assert_int_equal(sb_addr_port(&a), 7946);
    assert_int_equal(sb_addr_family(&a), AF_INET);
}

static void test_parse_ipv6(void **state)
{
    (void)state;
    sb_sockaddr a;
    memset(&a, 0xa5, sizeof(a));
    assert_int_equal(sb_addr_parse("[2001:db8::7]:53", &a), SB_OK);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(v6(&a)->sin6_port), 53);
    static const uint8_t want[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                      0,    0,    0,    0,    0, 0, 0, 7 };
    assert_memory_equal(&v6(&a)->sin6_addr, want, 16);
    assert_int_equal(v6(&a)->sin6_flowinfo, 0);
    assert_int_equal(v6(&a)->sin6_scope_id, 0);
    assert_int_equal(sb_addr_port(&a), 53);
    assert_int_equal(sb_addr_family(&a), AF_INET6);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "localhost:80",        /* a name: parse looks nothing up */
        "example.org:80",
        "[1.2.3.4]:80",        /* IPv4 in brackets */
        "::1:80",
        "[::1]",
        "1.2.3:80",
        "1.2.3.4.5:80",
        "256.1.1.1:80",
        "1.2.3.-4:80",
        " 1.2.3.4:80",
        "1.2.3.4 :80",
        "[ ::1]:80",
        "[::g]:80",
        "[1:2:3:4:5:6:7:8:9]:80",
        "[fe80::1%lo]:80",     /* no zone */
        "1.2.3.4:65536",
        "1.2.3.4:",
        "",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        sb_sockaddr a;
        if (sb_addr_parse(bad[i], &a) != SB_EADDR) {
            print_error("\"%s\" was parsed\n", bad[i]);
            fail();
        }
    }
    sb_sockaddr a;
    assert_int_equal(sb_addr_parse(NULL, &a), SB_EADDR);
}

static void test_ports(void **state)
{
    (void)state;
    sb_sockaddr a = parse("1.2.3.4:0");
    assert_int_equal(sb_addr_port(&a), 0);
    assert_format(&a, "1.2.3.4:0");
    a = parse("1.2.3.4:65535");
    assert_int_equal(sb_addr_port(&a), 65535);
    assert_format(&a, "1.2.3.4:65535");
    a = parse("[::1]:65535");
    assert_int_equal(sb_addr_port(&a), 65535);
    assert_format(&a, "[::1]:65535");
    a = parse("[::1]:0");
    assert_int_equal(sb_addr_port(&a), 0);
    assert_int_equal(sb_addr_parse("1.2.3.4:65536", &a), SB_EADDR);
    assert_int_equal(sb_addr_parse("[::1]:65536", &a), SB_EADDR);
    /* leading zeros are the same port */
    a = parse("1.2.3.4:0080");
    assert_int_equal(sb_addr_port(&a), 80);
    assert_format(&a, "1.2.3.4:80");
    a = parse("1.2.3.4:0065535");
    assert_int_equal(sb_addr_port(&a), 65535);
    a = parse("1.2.3.4:0000000");
    assert_int_equal(sb_addr_port(&a), 0);
}

static void test_format_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "1.2.3.4:80", "1.2.3.4:80" },
        { "0.0.0.0:0", "0.0.0.0:0" },
        { "255.255.255.255:65535", "255.255.255.255:65535" },
        { "[::1]:7946", "[::1]:7946" },
        { "[0:0:0:0:0:0:0:1]:7946", "[::1]:7946" },
        { "[::]:1", "[::]:1" },
        { "[2001:DB8::A]:9", "[2001:db8::a]:9" },
        { "[2001:0db8:0000:0000:0000:0000:0000:0001]:9", "[2001:db8::1]:9" },
        { "[2001:db8:0:0:1:0:0:1]:9", "[2001:db8::1:0:0:1]:9" },
        { "[fe80:0:0:0:1:0:0:0]:9", "[fe80::1:0:0:0]:9" }, /* first run */
        /* IPv4-mapped: written as IPv4 */
        { "[::ffff:10.0.0.1]:5", "10.0.0.1:5" },
        { "[::FFFF:a00:1]:5", "10.0.0.1:5" },
        { "[::ffff:0.0.0.0]:5", "0.0.0.0:5" },
        { "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
          "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        sb_sockaddr a = parse(cases[i].in);
        assert_format(&a, cases[i].out);
        /* the canonical text parses to the same address */
        sb_sockaddr b = parse(cases[i].out);
        assert_format(&b, cases[i].out);
        assert_int_equal(sb_addr_port(&a), sb_addr_port(&b));
        assert_int_equal(sb_addr_family(&a), sb_addr_family(&b));
    }
    /* the longest text fits */
    sb_sockaddr a = parse("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    char out[SB_ADDR_STRLEN];
    sb_addr_format(&a, out);
    assert_int_equal(strlen(out), 47);
}

static void test_format_built_by_hand(void **state)
{
    (void)state;
    sb_sockaddr a;
    memset(&a, 0, sizeof(a));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(12345);
    s4->sin_addr.s_addr = htonl(0x7f000001);
    a.len = sizeof(*s4);
    assert_format(&a, "127.0.0.1:12345");

    memset(&a, 0, sizeof(a));
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(443);
    s6->sin6_addr.s6_addr[0] = 0xfe;
    s6->sin6_addr.s6_addr[1] = 0x80;
    s6->sin6_addr.s6_addr[15] = 0x01;
    s6->sin6_scope_id = 2; /* not written */
    a.len = sizeof(*s6);
    assert_format(&a, "[fe80::1]:443");
}

/* ---- families, wildcard, reach -------------------------------------------- */

static void test_for_family(void **state)
{
    (void)state;
    /* IPv4 for an IPv6 socket: mapped, same port, same text */
    sb_sockaddr a = parse("10.1.2.3:7946");
    assert_true(sb_addr_for_family(&a, AF_INET6));
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    static const uint8_t mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                        0xff, 0xff, 10, 1, 2, 3 };
    assert_memory_equal(&v6(&a)->sin6_addr, mapped, 16);
    assert_int_equal(ntohs(v6(&a)->sin6_port), 7946);
    assert_int_equal(v6(&a)->sin6_flowinfo, 0);
    assert_int_equal(v6(&a)->sin6_scope_id, 0);
    assert_format(&a, "10.1.2.3:7946");
    assert_int_equal(sb_addr_family(&a), AF_INET);
    assert_int_equal(sb_addr_port(&a), 7946);
    /* already IPv6: unchanged */
    sb_sockaddr before = a;
    assert_true(sb_addr_for_family(&a, AF_INET6));
    assert_memory_equal(&a, &before, sizeof(a));
    /* a mapped address cannot go back to an IPv4 socket */
    assert_false(sb_addr_for_family(&a, AF_INET));

    /* IPv4 for an IPv4 socket: unchanged */
    a = parse("10.1.2.3:7946");
    before = a;
    assert_true(sb_addr_for_family(&a, AF_INET));
    assert_memory_equal(&a, &before, sizeof(a));

    /* IPv6 for an IPv4 socket: no */
    a = parse("[::1]:1");
    before = a;
    assert_false(sb_addr_for_family(&a, AF_INET));
    assert_memory_equal(&a, &before, sizeof(a));
}

static void test_wildcard(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool wildcard;
    } cases[] = {
        { "0.0.0.0:0", true },       { "0.0.0.0:7946", true },
        { "[::]:7946", true },       { "[::ffff:0.0.0.0]:1", true },
        { "127.0.0.1:1", false },    { "0.0.0.1:1", false },
        { "[::1]:1", false },        { "[::ffff:127.0.0.1]:1", false },
        { "[::ffff:0.0.0.1]:1", false }, { "[1::]:1", false },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        sb_sockaddr a = parse(cases[i].text);
        assert_int_equal(sb_addr_is_wildcard(&a), cases[i].wildcard);
    }
    sb_sockaddr a = parse("0.0.0.0:5");
    assert_true(sb_addr_for_family(&a, AF_INET6));
    assert_true(sb_addr_is_wildcard(&a));
}

/* Group addresses, IPv4 (mapped too) and IPv6; their neighbours not. */
static void test_group(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool group;
    } cases[] = {
        { "224.0.0.1:1", true },          { "239.255.255.255:1", true },
        { "255.255.255.255:1", true },    { "[ff02::1]:1", true },
        { "[::ffff:224.0.0.1]:1", true }, { "223.255.255.255:1", false },
        { "240.0.0.1:1", false },         { "127.0.0.1:1", false },
        { "[fe80::1]:1", false },         { "[::ffff:10.0.0.1]:1", false },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        sb_sockaddr a = parse(cases[i].text);
        if (sb_addr_is_group(&a) != cases[i].group)
            fail_msg("%s: group %d", cases[i].text, !cases[i].group);
    }
}

static void test_family_and_reach(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int family;
        unsigned reach, bit;
    } cases[] = {
        { "1.2.3.4:1", AF_INET, SB_REACH_V4, SB_REACH_V4 },
        { "0.0.0.0:1", AF_INET, SB_REACH_V4, SB_REACH_V4 },
        { "[::ffff:1.2.3.4]:1", AF_INET, SB_REACH_V4, SB_REACH_V4 },
        { "[::ffff:0.0.0.0]:1", AF_INET, SB_REACH_V4, SB_REACH_V4 },
        { "[::1]:1", AF_INET6, SB_REACH_V6, SB_REACH_V6 },
        { "[2001:db8::1]:1", AF_INET6, SB_REACH_V6, SB_REACH_V6 },
        { "[::]:1", AF_INET6, SB_REACH_V4 | SB_REACH_V6, SB_REACH_V6 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        sb_sockaddr a = parse(cases[i].text);
        assert_int_equal(sb_addr_family(&a), cases[i].family);
        assert_int_equal(sb_addr_reach(&a), cases[i].reach);
        assert_int_equal(sb_addr_reach_bit(&a), cases[i].bit);
    }
}

/* ---- resolve ----------------------------------------------------------- */

static void test_resolve_numeric(void **state)
{
    (void)state;
    sb_sockaddr out[4];
    char text[SB_ADDR_STRLEN];
    assert_int_equal(sb_addr_resolve("1.2.3.4:80", AF_INET, false, out, 4),
                     1);
    assert_int_equal(out[0].ss.ss_family, AF_INET);
    assert_int_equal(out[0].len, sizeof(struct sockaddr_in));
    assert_format(&out[0], "1.2.3.4:80");
    /* an IPv6 socket takes IPv4 results as they are */
    assert_int_equal(sb_addr_resolve("1.2.3.4:80", AF_INET6, false, out, 4),
                     1);
    assert_int_equal(out[0].ss.ss_family, AF_INET);
    assert_format(&out[0], "1.2.3.4:80");
    assert_int_equal(sb_addr_resolve("[::1]:7946", AF_INET6, false, out, 4),
                     1);
    assert_int_equal(out[0].ss.ss_family, AF_INET6);
    assert_format(&out[0], "[::1]:7946");
    /* IPv6 for an IPv4 socket: nothing */
    assert_int_equal(sb_addr_resolve("[::1]:7946", AF_INET, false, out, 4),
                     SB_EADDR);
    /* to bind */
    assert_int_equal(sb_addr_resolve("0.0.0.0:0", AF_INET, true, out, 4), 1);
    assert_format(&out[0], "0.0.0.0:0");
    assert_int_equal(sb_addr_resolve("[::]:65535", AF_INET6, true, out, 4),
                     1);
    sb_addr_format(&out[0], text);
    assert_string_equal(text, "[::]:65535");
    /* leading zeros in the port */
    assert_int_equal(sb_addr_resolve("1.2.3.4:0080", AF_INET, false, out, 4),
                     1);
    assert_int_equal(sb_addr_port(&out[0]), 80);
}

static void test_resolve_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "1.2.3.4", "1.2.3.4:65536", "::1:80", "[::1]", "localhost",
        "localhost:", ":80", "1.2.3.4:x", "",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        sb_sockaddr out[2];
        if (sb_addr_resolve(bad[i], AF_INET6, false, out, 2) != SB_EADDR) {
            print_error("\"%s\" was resolved\n", bad[i]);
            fail();
        }
    }
    sb_sockaddr out[2];
    assert_int_equal(sb_addr_resolve(NULL, AF_INET6, false, out, 2),
                     SB_EADDR);
    /* room for none: nothing to return */
    assert_int_equal(sb_addr_resolve("1.2.3.4:80", AF_INET, false, out, 0),
                     SB_EADDR);
}

static void test_resolve_localhost(void **state)
{
    (void)state;
    sb_sockaddr out[8];
    int n = sb_addr_resolve("localhost:7946", AF_INET, false, out, 8);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i].ss.ss_family, AF_INET);
        assert_format(&out[i], "127.0.0.1:7946");
    }
    /* either family for an IPv6 socket */
    n = sb_addr_resolve("localhost:7946", AF_INET6, false, out, 8);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        char text[SB_ADDR_STRLEN];
        sb_addr_format(&out[i], text);
        if (strcmp(text, "127.0.0.1:7946") && strcmp(text, "[::1]:7946")) {
            print_error("localhost resolved to %s\n", text);
            fail();
        }
    }
    /* at most max */
    assert_int_equal(sb_addr_resolve("localhost:1", AF_INET6, false, out, 1),
                     1);
    assert_int_equal(sb_addr_port(&out[0]), 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_good_forms),
        cmocka_unit_test(test_split_bad_forms),
        cmocka_unit_test(test_split_capacity),
        cmocka_unit_test(test_parse_ipv4),
        cmocka_unit_test(test_parse_ipv6),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_format_canonical),
        cmocka_unit_test(test_format_built_by_hand),
        cmocka_unit_test(test_for_family),
        cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_family_and_reach),
        cmocka_unit_test(test_resolve_numeric),
        cmocka_unit_test(test_resolve_rejects),
        cmocka_unit_test(test_resolve_localhost),
    };
    return RUN_TESTS(tests, argc, argv);
}
