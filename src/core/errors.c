/*
 * Names and sentences of the public enums (scuttlebutt.h): a name is the
 * constant without its prefix, in lower case; a sentence describes it.
 */
#include "scuttlebutt.h"

const char *sb_strerror(int err)
{
    switch (err) {
    case SB_OK:
        return "success";
#define SB_ERROR_TEXT_(sym, value, name, text) \
    case sym:                                  \
        return text;
        SB_ERRORS(SB_ERROR_TEXT_)
#undef SB_ERROR_TEXT_
    }
    return "unknown error";
}

const char *sb_err_name(int err)
{
    switch (err) {
    case SB_OK:
        return "ok";
#define SB_ERROR_NAME_(sym, value, name, text) \
    case sym:                                  \
        return name;
        SB_ERRORS(SB_ERROR_NAME_)
#undef SB_ERROR_NAME_
    }
    return "unknown";
}

const char *sb_status_name(sb_status status)
{
    switch (status) {
    case SB_STATUS_JOINING:
        return "joining";
    case SB_STATUS_LIVE:
        return "live";
    case SB_STATUS_DOWN:
        return "down";
    case SB_STATUS_LEFT:
        return "left";
    }
    return "unknown";
}

const char *sb_traffic_name(sb_traffic traffic)
{
    switch (traffic) {
    case SB_TRAFFIC_LIVENESS:
        return "liveness";
    case SB_TRAFFIC_EXCHANGE:
        return "exchange";
    case SB_TRAFFIC_PUSH:
        return "push";
    case SB_TRAFFIC_COUNT:
        break;
    }
    return "unknown";
}

/* Each drop reason's name and sentence, in the order of sb_drop_reason. */
static const struct {
    const char *name, *text;
} errors_drops[] = {
#define SB_DROP_ROW_(sym, name, text) { name, text },
    SB_DROPS(SB_DROP_ROW_)
#undef SB_DROP_ROW_
};

const char *sb_drop_name(sb_drop_reason reason)
{
    if ((unsigned)reason >= SB_DROP_COUNT)
        return "unknown";
    return errors_drops[reason].name;
}

const char *sb_drop_text(sb_drop_reason reason)
{
    if ((unsigned)reason >= SB_DROP_COUNT)
        return "unknown drop reason";
    return errors_drops[reason].text;
}
