/*
 * The UDP socket: bound at creation, which settles the node's address
 * (the bound one, or the advertised one, checked); datagrams read from it
 * and handed to the engine; datagrams the engine sends; send errors
 * counted, and logged at most once a second; datagrams dropped as a peer's
 * configured otherwise (cluster name, keys, version) counted, and logged
 * at most once a minute. Datagrams of another format altogether (no
 * scuttlebutt packet, or the other wire's) are counted as drops only.
 *
 * Locking: sb_socket_open() runs at creation, before any other thread
 * sees the node. sb_socket_send() is the engine's send callback: it runs
 * with the lock held, and only counts its errors (the log line comes
 * later, from sb_socket_report_errors(), without the lock).
 * sb_socket_receive() reads without the lock (only the thread inside
 * sb_process_step() reads the socket) and takes it around each
 * sb_engine_recv() (socket_feed(), which notes the mismatches).
 */
#define _GNU_SOURCE
#include "node.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECV_BATCH 64          /* datagrams per sb_node_process() */
/* Datagrams up to this size are read into the reading thread's stack, the
 * rest of a larger one into the node's buffer (node.c), whose pages thus
 * become resident only once a datagram that large arrives: most never do
 * (a node sends at most its max_message_size, 512 bytes by default). */
#define RECV_SMALL 1536
#define SEND_REPORT_NS (1000 * MS) /* at most one send-error line a second */
#define MISMATCH_REPORT_NS (60 * SEC) /* one line a minute on mismatches */

/* Drops that tell of a peer configured otherwise than this node: another
 * cluster name, key or protocol version (or someone who pretends). */
static const sb_drop_reason socket_mismatches[] = {
    SB_DROP_VERSION, SB_DROP_CLUSTER, SB_DROP_PLAINTEXT, SB_DROP_SEALED,
    SB_DROP_AUTH,
};
#define SOCKET_MISMATCHES \
    (sizeof(socket_mismatches) / sizeof(socket_mismatches[0]))

/* Feeds one datagram to the engine (lock held), noting it if it was
 * dropped as a configured-otherwise peer's. */
static void socket_feed(sb_node *n, const char *from, const uint8_t *buf,
                        size_t len)
{
    uint64_t before[SOCKET_MISMATCHES];
    for (size_t i = 0; i < SOCKET_MISMATCHES; i++)
        before[i] = sb_engine_drops(n->engine, socket_mismatches[i]);
    sb_engine_recv(n->engine, from, buf, len, sb_clock_now_ns());
    for (size_t i = 0; i < SOCKET_MISMATCHES; i++)
        if (sb_engine_drops(n->engine, socket_mismatches[i]) != before[i]) {
            n->mismatched++;
            n->mismatch_why = socket_mismatches[i];
            snprintf(n->mismatch_from, sizeof(n->mismatch_from), "%s", from);
        }
}

/* The engine's send callback (lock held). */
void sb_socket_send(void *userdata, const char *to, const uint8_t *buf,
                    size_t len)
{
    sb_node *n = userdata;
    sb_sockaddr a;
    int err = 0;
    if (sb_addr_parse(to, &a) != SB_OK || !sb_addr_for_family(&a, n->family))
        err = EAFNOSUPPORT;
    else if (sendto(n->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                    (struct sockaddr *)&a.ss, a.len) < 0)
        err = errno;
    if (!err)
        return;
    n->send_errors++;
    n->send_errors_unreported++;
    n->send_errno = err;
    snprintf(n->send_to, sizeof(n->send_to), "%s", to);
}

/* Binds the socket and settles our address (`cfg` is the caller's). */
int sb_socket_open(sb_node *n, const sb_config *cfg)
{
    sb_sockaddr a;
    if (!cfg->bind) {
        sb_log_say(&n->cfg, n, SB_LOG_ERROR,
                   "bind address is required (host:port)");
        return SB_EADDR;
    }
    if (sb_addr_has_zone(cfg->bind)) {
        sb_log_say(&n->cfg, n, SB_LOG_ERROR, "bind address %s: an IPv6 "
                   "zone: link-local addresses are not supported (their "
                   "zone cannot be advertised)", cfg->bind);
        return SB_EADDR;
    }
    if (sb_addr_resolve(cfg->bind, AF_UNSPEC, true, &a, 1) < 1) {
        sb_log_say(&n->cfg, n, SB_LOG_ERROR, "bind address %s: not "
                   "host:port or cannot resolve", cfg->bind);
        return SB_EADDR;
    }
    if (sb_addr_is_link_local(&a)) {
        sb_log_say(&n->cfg, n, SB_LOG_ERROR, "bind address %s: IPv6 "
                   "link-local addresses are not supported (their zone "
                   "cannot be advertised)", cfg->bind);
        return SB_EADDR;
    }
    if (sb_addr_is_group(&a)) {
        sb_log_say(&n->cfg, n, SB_LOG_ERROR, "bind address %s: a multicast "
                   "or broadcast address, no one node's", cfg->bind);
        return SB_EADDR;
    }
    n->family = a.ss.ss_family;
    n->fd = socket(n->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (n->fd < 0) {
        sb_log_say(&n->cfg, n, SB_LOG_ERROR, "socket: %s", strerror(errno));
        return SB_EIO;
    }
    if (n->family == AF_INET6) { /* [::] takes IPv4 peers too */
        int off = 0;
        if (setsockopt(n->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off,
                       sizeof(off)) < 0)
            sb_log_say(&n->cfg, n, SB_LOG_WARN,
                       "%s: IPv6 only (IPV6_V6ONLY: %s)", cfg->bind,
                       strerror(errno));
    }
    if (bind(n->fd, (struct sockaddr *)&a.ss, a.len) < 0) {
        int err = errno;
        sb_log_say(&n->cfg, n, SB_LOG_ERROR, "bind %s: %s", cfg->bind,
                   strerror(err));
        return err == EADDRINUSE ? SB_EADDRINUSE
               : err == EADDRNOTAVAIL || err == EACCES ? SB_EADDR : SB_EIO;
    }
    sb_sockaddr bound = { .len = sizeof(bound.ss) };
    if (getsockname(n->fd, (struct sockaddr *)&bound.ss, &bound.len) < 0) {
        sb_log_say(&n->cfg, n, SB_LOG_ERROR, "getsockname: %s",
                   strerror(errno));
        return SB_EIO;
    }
    sb_addr_format(&bound, n->bind_addr);
    n->reach = sb_addr_reach(&bound);

    if (!cfg->advertise) {
        if (sb_addr_is_wildcard(&bound)) {
            sb_log_say(&n->cfg, n, SB_LOG_ERROR, "bound to the wildcard "
                       "%s: set advertise to the address peers reach us at",
                       n->bind_addr);
            return SB_EADDR;
        }
        memcpy(n->addr, n->bind_addr, sizeof(n->addr));
        return SB_OK;
    }
    sb_sockaddr adv;
    if (sb_addr_parse(cfg->advertise, &adv) != SB_OK ||
        sb_addr_is_wildcard(&adv) || sb_addr_is_link_local(&adv) ||
        sb_addr_is_group(&adv)) {
        sb_log_say(&n->cfg, n, SB_LOG_ERROR, "advertise address %s: not a "
                   "numeric, non-wildcard, non-link-local, non-multicast "
                   "ip:port", cfg->advertise);
        return SB_EADDR;
    }
    if (sb_addr_port(&adv) == 0) /* the port the system chose, or bound */
        sb_addr_set_port(&adv, sb_addr_port(&bound));
    if (!(n->reach & sb_addr_reach_bit(&adv))) {
        sb_log_say(&n->cfg, n, SB_LOG_ERROR, "advertise address %s: "
                   "another address family than the socket bound to %s",
                   cfg->advertise, n->bind_addr);
        return SB_EADDR;
    }
    sb_addr_format(&adv, n->addr);
    /* peers take answers only from the address they wrote to (the reply
     * tokens, docs/security.md, section 7) */
    if (sb_addr_port(&adv) != sb_addr_port(&bound) ||
        (!sb_addr_is_wildcard(&bound) && strcmp(n->addr, n->bind_addr) != 0))
        sb_log_say(&n->cfg, n, SB_LOG_WARN, "advertise address %s: our "
                   "datagrams leave from %s, and peers take answers only "
                   "from the address they wrote to; this works only behind "
                   "a NAT that maps one to the other", n->addr,
                   n->bind_addr);
    return SB_OK;
}

/* Reads up to a batch of datagrams and feeds them to the engine. */
bool sb_socket_receive(sb_node *n)
{
    uint8_t small[RECV_SMALL];
    for (int i = 0; i < RECV_BATCH; i++) {
        sb_sockaddr from = { .len = sizeof(from.ss) };
        /* one datagram: its first RECV_SMALL bytes in `small`, the rest
         * (up to rlen in all) in rbuf after as many */
        struct iovec iov[2] = {
            { .iov_base = small, .iov_len = sizeof(small) },
            { .iov_base = n->rbuf + sizeof(small),
              .iov_len = n->rlen - sizeof(small) },
        };
        struct msghdr msg = {
            .msg_name = &from.ss, .msg_namelen = from.len,
            .msg_iov = iov, .msg_iovlen = 2,
        };
        ssize_t len = recvmsg(n->fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
        if (len < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return false;
            if (errno == EINTR || errno == ECONNREFUSED ||
                errno == EHOSTUNREACH || errno == ENETUNREACH)
                continue;
            sb_log_say(&n->cfg, n, SB_LOG_WARN, "recvmsg: %s",
                       strerror(errno));
            return false;
        }
        from.len = msg.msg_namelen;
        size_t got = (size_t)len;
        if (got > n->rlen) /* truncated: oversize */
            got = n->rlen;
        const uint8_t *buf = small;
        if (got > sizeof(small)) { /* whole in rbuf */
            memcpy(n->rbuf, small, sizeof(small));
            buf = n->rbuf;
        }
        char name[SB_ADDR_STRLEN];
        sb_addr_format(&from, name);
        pthread_mutex_lock(&n->lock);
        socket_feed(n, name, buf, got);
        pthread_mutex_unlock(&n->lock);
    }
    return true; /* a whole batch: more may wait */
}

/* Logs datagrams of peers configured otherwise, at most once a minute:
 * a node given the wrong cluster name or key is dropped in silence by
 * the others, and this line is where its operator finds out why. */
static void socket_report_mismatches(sb_node *n)
{
    pthread_mutex_lock(&n->lock);
    uint64_t now = sb_clock_now_ns(), count = n->mismatched;
    bool due = count && (!n->mismatch_reported ||
                         now - n->mismatch_reported >= MISMATCH_REPORT_NS);
    sb_drop_reason why = n->mismatch_why;
    char from[SB_ADDR_STRLEN];
    memcpy(from, n->mismatch_from, sizeof(from));
    if (due) {
        n->mismatched = 0;
        n->mismatch_reported = now;
    }
    pthread_mutex_unlock(&n->lock);
    if (due)
        sb_log_say(&n->cfg, n, SB_LOG_WARN, "%llu datagram%s dropped as "
                   "a peer's configured otherwise (cluster name, keys or "
                   "version); the last from %s: %s",
                   (unsigned long long)count, count == 1 ? "" : "s", from,
                   sb_drop_text(why));
}

/* Logs send errors, at most once a second, and datagrams of peers
 * configured otherwise, at most once a minute. */
void sb_socket_report_errors(sb_node *n)
{
    socket_report_mismatches(n);
    pthread_mutex_lock(&n->lock);
    uint64_t now = sb_clock_now_ns(), count = n->send_errors_unreported;
    bool due = count && now - n->send_reported >= SEND_REPORT_NS;
    int err = n->send_errno;
    char to[SB_ADDR_STRLEN];
    memcpy(to, n->send_to, sizeof(to));
    if (due) {
        n->send_errors_unreported = 0;
        n->send_reported = now;
    }
    pthread_mutex_unlock(&n->lock);
    if (due)
        sb_log_say(&n->cfg, n, SB_LOG_WARN, "%llu datagrams not sent; the "
                   "last to %s: %s", (unsigned long long)count, to,
                   strerror(err));
}
