/* The Prometheus exposition (see metrics.h). */
#define _GNU_SOURCE
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "control.h"
#include "handlers.h"
#include "http.h"
#include "loop.h"

/* "# HELP" and "# TYPE" of one family. */
static void metrics_family(FILE *f, const char *name, const char *type,
                           const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the format wants. */
static void metrics_label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void metrics_one(FILE *f, const char *name, const char *type,
                        const char *help, unsigned long long v)
{
    metrics_family(f, name, type, help);
    fprintf(f, "%s %llu\n", name, v);
}

/* A counter by direction. */
static void metrics_in_out(FILE *f, const char *name, const char *help,
                           uint64_t in, uint64_t out)
{
    metrics_family(f, name, "counter", help);
    fprintf(f, "%s{direction=\"in\"} %llu\n%s{direction=\"out\"} %llu\n",
            name, (unsigned long long)in, name, (unsigned long long)out);
}

static void metrics_handlers(FILE *f, const handlers *hs)
{
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        { "scuttlebutt_handler_runs_total", "counter",
          "Event handler processes started (or that failed to start)." },
        { "scuttlebutt_handler_failures_total", "counter",
          "Handler runs that did not exit 0 (timeouts included)." },
        { "scuttlebutt_handler_timeouts_total", "counter",
          "Handler runs killed after the handler timeout." },
        { "scuttlebutt_handler_dropped_total", "counter",
          "Events dropped because the handler's queue was full." },
        { "scuttlebutt_handler_queued", "gauge",
          "Events waiting for the handler or being handled." },
    };
    for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
        metrics_family(f, fams[k].name, fams[k].type, fams[k].help);
        for (size_t i = 0; i < handlers_count(hs); i++) {
            handler_counters c;
            handlers_get(hs, i, &c);
            const uint64_t v[] = { c.runs, c.failures, c.timeouts, c.dropped,
                                   c.queued };
            fprintf(f, "%s{handler=\"%zu\",command=\"", fams[k].name, i);
            metrics_label(f, c.command);
            fprintf(f, "\"} %llu\n", (unsigned long long)v[k]);
        }
    }
}

char *metrics_render(agent *a, size_t *len)
{
    sb_stats st;
    sb_member *m = NULL;
    size_t n = 0;
    if (sb_node_stats(a->node, &st) != SB_OK ||
        sb_node_members(a->node, &m, &n) != SB_OK)
        return NULL;
    char *out = NULL;
    FILE *f = open_memstream(&out, len);
    if (!f) {
        sb_free(m);
        return NULL;
    }
    metrics_family(f, "scuttlebutt_build_info", "gauge",
                   "The agent's version, protocol version and wire format.");
    fprintf(f, "scuttlebutt_build_info{version=\"%s\",protocol=\"%d\","
            "wire=\"%s\"} 1\n", SB_VERSION_STRING, SB_PROTOCOL_VERSION,
            a->cfg.wire == SB_WIRE_REFERENCE ? "reference" : "scuttlebutt");
    metrics_family(f, "scuttlebutt_uptime_seconds", "gauge",
                   "Seconds since the agent started.");
    fprintf(f, "scuttlebutt_uptime_seconds %.3f\n",
            (double)(mono_ms() - a->start_ms) / 1000);

    metrics_in_out(f, "scuttlebutt_packets_total",
                   "Datagrams received (in) and sent (out).", st.packets_in,
                   st.packets_out);
    metrics_in_out(f, "scuttlebutt_bytes_total",
                   "UDP payload bytes received (in) and sent (out).",
                   st.bytes_in, st.bytes_out);
    metrics_one(f, "scuttlebutt_rounds_total", "counter",
                "Gossip rounds run (two per interval).", st.rounds);
    metrics_one(f, "scuttlebutt_pushes_total", "counter",
                "Eager push packets sent.", st.pushes);
    metrics_family(f, "scuttlebutt_held_back_total", "counter",
                   "Datagrams the bandwidth cap held back, by traffic "
                   "(push: waves cut short).");
    for (int t = 0; t < SB_TRAFFIC_COUNT; t++)
        fprintf(f, "scuttlebutt_held_back_total{traffic=\"%s\"} %llu\n",
                sb_traffic_name((sb_traffic)t),
                (unsigned long long)st.held_back[t]);
    metrics_one(f, "scuttlebutt_send_errors_total", "counter",
                "Datagrams the socket refused.", st.send_errors);
    metrics_one(f, "scuttlebutt_verdicts_total", "counter",
                "Peers this node convicted as their monitor.", st.verdicts);
    metrics_one(f, "scuttlebutt_verdicts_withheld_total", "counter",
                "Convictions withheld: every watched peer silent at once.",
                st.verdicts_withheld);
    metrics_one(f, "scuttlebutt_refuted_total", "counter",
                "Verdicts against this node it refuted.", st.refuted);
    metrics_one(f, "scuttlebutt_sweeps_total", "counter",
                "SWEEP messages sent: records for a joining node.",
                st.sweeps);
    metrics_one(f, "scuttlebutt_diffs_total", "counter",
                "DIFF messages sent: ranges where a peer's records differ.",
                st.diffs);
    metrics_one(f, "scuttlebutt_ranges_total", "counter",
                "Rounds whose SYN carried a range: steps of descents.",
                st.ranges);
    metrics_family(f, "scuttlebutt_drops_total", "counter",
                   "Incoming packets (or parts) dropped, by reason.");
    for (int r = 0; r < SB_DROP_COUNT; r++)
        fprintf(f, "scuttlebutt_drops_total{reason=\"%s\"} %llu\n",
                sb_drop_name((sb_drop_reason)r),
                (unsigned long long)st.drops[r]);
    metrics_family(f, "scuttlebutt_members", "gauge",
                   "Members known, self included, by status.");
    for (int s = SB_STATUS_JOINING; s <= SB_STATUS_LEFT; s++)
        fprintf(f, "scuttlebutt_members{status=\"%s\"} %u\n",
                sb_status_name((sb_status)s), st.members[s]);
    metrics_family(f, "scuttlebutt_events_total", "counter",
                   "Events this agent reported, by kind.");
    for (int k = SB_EVENT_JOIN; k <= SB_EVENT_DELETE; k++)
        fprintf(f, "scuttlebutt_events_total{kind=\"%s\"} %llu\n",
                agent_event_name(k),
                (unsigned long long)a->events[k]);
    metrics_family(f, "scuttlebutt_peer_phi", "gauge",
                   "The failure detector's suspicion of each live peer.");
    for (size_t i = 0; i < n; i++) {
        double phi;
        if (m[i].self || sb_node_phi(a->node, m[i].addr, &phi) != SB_OK)
            continue;
        fputs("scuttlebutt_peer_phi{peer=\"", f);
        metrics_label(f, m[i].addr);
        if (isinf(phi))
            fputs("\"} +Inf\n", f);
        else
            fprintf(f, "\"} %.6g\n", phi);
    }
    metrics_handlers(f, a->handlers);
    metrics_one(f, "scuttlebutt_control_clients", "gauge",
                "Clients connected to the control socket.",
                control_clients(a->control));
    metrics_one(f, "scuttlebutt_http_event_streams", "gauge",
                "Clients of /v1/events.", http_streams(a->http));
    sb_free(m);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}
