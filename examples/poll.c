/*
 * A cluster member driven by the caller's own poll() loop (embedded mode).
 *
 *   example-poll BIND [SEED...]      e.g. example-poll 127.0.0.1:7001 127.0.0.1:7000
 *
 * Sets the key "started" to the time it started, prints every event, and
 * leaves gracefully after 10 seconds.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <scuttlebutt.h>

static void print_event(void *userdata, const sb_event *ev)
{
    (void)userdata;
    switch (ev->type) {
    case SB_EVENT_JOIN:
        printf("join   %s\n", ev->addr);
        break;
    case SB_EVENT_LEAVE:
        printf("leave  %s (%s)\n", ev->addr, sb_status_name(ev->status));
        break;
    case SB_EVENT_UPDATE:
        printf("update %s %s=%s\n", ev->addr, ev->key, ev->value);
        break;
    case SB_EVENT_DELETE:
        printf("delete %s %s\n", ev->addr, ev->key);
        break;
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BIND [SEED...]\n", argv[0]);
        return 2;
    }
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = argv[1];
    cfg.seeds = (const char *const *)(argv + 2);
    cfg.nseeds = (size_t)(argc - 2);
    cfg.embedded = true;
    cfg.on_join = cfg.on_leave = cfg.on_update = cfg.on_delete = print_event;
    cfg.log = sb_log_stderr;

    sb_node *node;
    int rc = sb_node_new(&cfg, &node);
    if (rc != SB_OK) {
        fprintf(stderr, "sb_node_new: %s\n", sb_strerror(rc));
        return 1;
    }
    printf("node %s\n", sb_node_addr(node));
    char now[32];
    snprintf(now, sizeof(now), "%" PRIu64, (uint64_t)time(NULL));
    sb_node_set(node, "started", 7, now, strlen(now));

    time_t start = time(NULL);
    int leave_at = 10, stop_at = 12;
    while (time(NULL) - start < stop_at) {
        if (leave_at && time(NULL) - start >= leave_at) {
            sb_node_leave(node); /* then gossip two more seconds */
            leave_at = 0;
        }
        struct pollfd p = { .fd = sb_node_fd(node), .events = POLLIN };
        int timeout = sb_node_timeout_ms(node);
        poll(&p, 1, timeout < 1000 ? timeout : 1000);
        sb_node_process(node);
    }
    sb_node_free(node);
    return 0;
}
