/* How a cmocka test program runs: all its tests, or the one its argument
 * names, and what it tells ctest (exit 77: every test that ran skipped). */
#ifndef SB_TESTS_RUN_H
#define SB_TESTS_RUN_H

#include <stdio.h>
#include <string.h>

static unsigned run_skipped_;

/* Skips the running test, with the reason in its output. */
#define run_skip(reason)                                                   \
    do {                                                                   \
        print_message("skipped: %s\n", reason);                            \
        run_skipped_++;                                                    \
        skip();                                                            \
    } while (0)

/*
 * Runs `tests`, or with an argument only the test of that exact name: a
 * name that no test has is an error (exit 2), never a run of nothing.
 * Exits 0 when all passed, 77 when every test that ran was skipped (the
 * SKIP_RETURN_CODE of ctest), and cmocka's count of failures otherwise.
 */
static inline int run_group(const char *group, const struct CMUnitTest *tests,
                            size_t n, int argc, char **argv)
{
    size_t ran = n;
    if (argc > 1) {
        ran = 0;
        for (size_t i = 0; i < n; i++)
            ran += strcmp(tests[i].name, argv[1]) == 0;
        if (!ran) {
            fprintf(stderr, "%s: no test named %s\n", argv[0], argv[1]);
            return 2;
        }
        cmocka_set_test_filter(argv[1]);
    }
    int rc = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    return rc == 0 && run_skipped_ && run_skipped_ == ran ? 77 : rc;
}

#define RUN_TESTS(tests, argc, argv)                                       \
    run_group(#tests, tests, sizeof(tests) / sizeof((tests)[0]), argc, argv)

#endif /* SB_TESTS_RUN_H */
