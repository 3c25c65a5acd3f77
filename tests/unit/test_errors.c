/*
 * The public names and sentences (errors.c): every *_name() function gives
 * the constant without its prefix, in lower case; sentences are sentences.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../run.h"

#include <ctype.h>
#include <string.h>

#include "scuttlebutt.h"

/* The rule: `symbol` without `prefix`, in lower case. */
static void assert_named(const char *name, const char *symbol,
                         const char *prefix)
{
    size_t skip = strlen(prefix);
    assert_memory_equal(symbol, prefix, skip);
    char want[64];
    size_t i = 0;
    for (; symbol[skip + i] && i + 1 < sizeof(want); i++)
        want[i] = (char)tolower((unsigned char)symbol[skip + i]);
    want[i] = 0;
    assert_string_equal(name, want);
}

static void test_error_names(void **state)
{
    (void)state;
#define SB_CHECK_(sym, value, name, text)                      \
    assert_named(sb_err_name(sym), #sym, "SB_");               \
    assert_string_equal(sb_strerror(sym), text);               \
    assert_string_not_equal(sb_strerror(sym), sb_err_name(sym));
    SB_ERRORS(SB_CHECK_)
#undef SB_CHECK_
    assert_string_equal(sb_err_name(SB_OK), "ok");
    assert_string_equal(sb_err_name(-1000), "unknown");
    assert_string_equal(sb_err_name(1), "unknown");
    assert_string_equal(sb_strerror(-1000), "unknown error");
}

static void test_drop_names(void **state)
{
    (void)state;
    int n = 0;
#define SB_CHECK_(sym, name, text)                             \
    assert_int_equal(sym, n++);                                \
    assert_named(sb_drop_name(sym), #sym, "SB_DROP_");         \
    assert_string_equal(sb_drop_text(sym), text);
    SB_DROPS(SB_CHECK_)
#undef SB_CHECK_
    assert_int_equal(n, SB_DROP_COUNT);
    assert_string_equal(sb_drop_name(SB_DROP_NOMEM), "nomem");
    assert_string_equal(sb_drop_text(SB_DROP_AUTH),
                        "failed authentication: forged, or another key");
    assert_string_equal(sb_drop_name(SB_DROP_COUNT), "unknown");
    assert_string_equal(sb_drop_name((sb_drop_reason)-1), "unknown");
    assert_string_equal(sb_drop_text(SB_DROP_COUNT), "unknown drop reason");
}

static void test_status_names(void **state)
{
    (void)state;
    assert_named(sb_status_name(SB_STATUS_JOINING), "SB_STATUS_JOINING",
                 "SB_STATUS_");
    assert_named(sb_status_name(SB_STATUS_LIVE), "SB_STATUS_LIVE",
                 "SB_STATUS_");
    assert_named(sb_status_name(SB_STATUS_DOWN), "SB_STATUS_DOWN",
                 "SB_STATUS_");
    assert_named(sb_status_name(SB_STATUS_LEFT), "SB_STATUS_LEFT",
                 "SB_STATUS_");
    assert_string_equal(sb_status_name((sb_status)4), "unknown");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_drop_names),
        cmocka_unit_test(test_status_names),
    };
    return RUN_TESTS(tests, argc, argv);
}
