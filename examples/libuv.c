/*
 * A cluster member driven by a libuv loop (embedded mode): a uv_poll_t
 * watches the node's socket and a uv_timer_t fires at its next deadline.
 *
 *   example-libuv BIND [SEED...]
 *
 * Prints every event; stops on SIGINT after a graceful leave.
 */
#define _GNU_SOURCE /* libuv's headers need POSIX types */
#include <stdio.h>
#include <uv.h>

#include <scuttlebutt.h>

typedef struct app {
    sb_node *node;
    uv_poll_t poll;
    uv_timer_t timer;
    uv_timer_t stop;           /* armed by SIGINT, after the leave */
    uv_signal_t sigint;
} app;

static void on_timer(uv_timer_t *t);

/* Process the node, then arm the timer for its next deadline. */
static void drive(app *a)
{
    sb_node_process(a->node);
    uv_timer_start(&a->timer, on_timer, (uint64_t)sb_node_timeout_ms(a->node),
                   0);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    drive(p->data);
}

static void on_timer(uv_timer_t *t)
{
    drive(t->data);
}

static void on_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void on_sigint(uv_signal_t *s, int signum)
{
    (void)signum;
    app *a = s->data;
    if (sb_node_leave(a->node) != SB_OK)
        return; /* already leaving */
    drive(a);
    /* keep gossiping a few rounds so that the leave spreads */
    uv_timer_start(&a->stop, on_stop, 2000, 0);
}

static void print_event(void *userdata, const sb_event *ev)
{
    (void)userdata;
    static const char *const kinds[] = { "", "join", "leave", "update",
                                         "delete" };
    printf("%-6s %s %s%s%s\n", kinds[ev->type], ev->addr,
           ev->key ? ev->key : "", ev->value ? "=" : "",
           ev->value ? ev->value : "");
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

    app a = { 0 };
    int rc = sb_node_new(&cfg, &a.node);
    if (rc != SB_OK) {
        fprintf(stderr, "sb_node_new: %s\n", sb_strerror(rc));
        return 1;
    }
    printf("node %s\n", sb_node_addr(a.node));
    sb_node_set(a.node, "role", 4, "example", 7);

    uv_loop_t *loop = uv_default_loop();
    uv_poll_init(loop, &a.poll, sb_node_fd(a.node));
    uv_timer_init(loop, &a.timer);
    uv_timer_init(loop, &a.stop);
    uv_signal_init(loop, &a.sigint);
    a.poll.data = a.timer.data = a.stop.data = a.sigint.data = &a;
    uv_poll_start(&a.poll, UV_READABLE, on_readable);
    uv_signal_start(&a.sigint, on_sigint, SIGINT);
    drive(&a);
    uv_run(loop, UV_RUN_DEFAULT);

    uv_close((uv_handle_t *)&a.poll, NULL);
    uv_close((uv_handle_t *)&a.timer, NULL);
    uv_close((uv_handle_t *)&a.stop, NULL);
    uv_close((uv_handle_t *)&a.sigint, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    sb_node_free(a.node);
    return 0;
}
