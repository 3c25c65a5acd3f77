/*
 * Logging: every line the runtime writes goes through sb_log_say(), to
 * the configured log callback, filtered by the configured level;
 * sb_log_stderr() is the callback a caller may pick. Locking: never
 * called with the node's lock held (the callback is the user's code),
 * and takes none.
 */
#define _GNU_SOURCE
#include "node.h"

#include <stdarg.h>
#include <stdio.h>

void sb_log_say(const sb_config *cfg, const sb_node *n, sb_log_level level,
                const char *fmt, ...)
{
    if (!cfg->log || level > cfg->log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const sb_node *outer = sb_callbacks_begin(n);
    cfg->log(cfg->userdata, level, msg);
    sb_callbacks_end(outer);
}

void sb_log_stderr(void *userdata, sb_log_level level, const char *msg)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    (void)userdata;
    const char *name = (unsigned)level < 4 ? names[level] : "?";
    fprintf(stderr, "scuttlebutt: %s: %s\n", name, msg);
}
