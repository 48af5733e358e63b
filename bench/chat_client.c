/* chat_client: a WebSocket fan-out load client for a chat server speaking weft's chat protocol
 * (SPEC.md, "Chat service"), used by bench/chat_vs_node.py.
 *
 *   chat_client [-t THREADS] [-r ROOM] [-c CONNECT_TIMEOUT_S] [-s SETTLE_TIMEOUT_S] [-n] [-R]
 *               HOST PORT SUBSCRIBERS
 *
 * Opens SUBSCRIBERS connections to ws://HOST:PORT/ws?room=ROOM&name=sI (at most 64 handshakes
 * in flight per thread), then one sender (name "sender") once every subscriber has joined, and
 * waits until every join's presence message has reached every member that was in the room
 * (joining N members into one room is N(N-1)/2 presence deliveries; -n: the server was told not
 * to announce joins, so none are expected; -R: subscriber I joins room ROOM-I alone, for memory
 * figures without that storm, and only the sender is in ROOM). Then it prints
 *
 *   connected {JSON}
 *
 * and reads commands on stdin, one a line:
 *
 *   step RATE DURATION DRAIN_MAX   the sender sends RATE messages/s for DURATION s on a fixed
 *                                  schedule (open loop: a late message is sent at once, the
 *                                  schedule does not move); prints "start K" when the first
 *                                  is due, then waits for the deliveries (at most DRAIN_MAX s
 *                                  after the window) and prints "end K {JSON}".
 *   detach                         from now on a closed connection is not an error (the caller
 *                                  is about to stop the server); prints "detached".
 *   quit                           prints "final {JSON}" and exits (end of stdin: the same).
 *
 * Each message's text is "SEQ SCHED_US": a sequence number and the time (CLOCK_REALTIME, µs)
 * the schedule wanted it sent. Every subscriber parses each frame; for a "msg" it records
 *   fan-out latency    = receive time - "ts" (the server's clock when it read the message)
 *   end-to-end latency = receive time - SCHED_US (includes time the message waited to be read
 *                        by the server, which "ts" does not see)
 * in log-linear histograms (weft's src/core/hist.c), checks the sequence per subscriber (gaps,
 * reordering), and counts deliveries. Frames are parsed as RFC 6455 requires of a client: the
 * server's frames unmasked, ours masked; pings are answered. One epoll loop per thread,
 * level-triggered; the subscribers are split between threads, thread 0 also runs the sender and
 * reads stdin. RLIMIT_NOFILE is raised to its hard limit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/hist.h"

#define RBUF (256 * 1024)
#define INFLIGHT 64 /* handshakes in flight per thread */
#define MAX_THREADS 16
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455, 1.3: the accept for WS_KEY */

enum { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSED };

struct conn {
    int fd;
    int idx; /* subscriber number (name sIDX) */
    uint8_t state;
    uint8_t sender;
    uint8_t joined;
    uint8_t want_out; /* EPOLLOUT registered */
    int join_members; /* "members" in our "joined" */
    int64_t last_seq;
    char *carry; /* bytes of an incomplete frame (or handshake response) */
    uint32_t carry_len, carry_cap;
    char *wbuf; /* bytes not yet written */
    uint32_t wlen, woff, wcap;
};

struct thr {
    int id, ep;
    pthread_t th;
    struct conn **subs; /* this thread's subscribers */
    int nsubs, next, inflight;
    uint64_t rng;
    char *rbuf;
    /* step figures, touched by this thread only while the step is open */
    struct hist fan, e2e;
    uint64_t win_deliv, neg, gaps, reordered, late;
    _Atomic uint64_t deliv; /* this step's deliveries to subscribers (read by thread 0) */
    _Atomic uint64_t presence, sender_echo;
    _Atomic uint64_t stale_presence; /* a join announced after our "joined" already counted it */
    _Atomic uint64_t errors, closed_by_server, rejected, connect_failed, error_frames, other;
    _Atomic int open_subs;
    _Atomic unsigned ack; /* last step epoch this thread has seen */
};

static struct sockaddr_in g_addr;
static const char *g_host = "127.0.0.1";
static const char *g_room = "bench";
static int g_port, g_nsubs, g_nthr = 1;
static int g_no_join_presence; /* -n: the server does not announce joins to the room */
static int g_room_each;        /* -R: subscriber I joins room ROOM-I, alone (no presence) */
static struct thr g_thr[MAX_THREADS];
static struct conn g_sender_conn;
static struct conn *g_sender = &g_sender_conn;

static _Atomic int g_joined;          /* subscribers that got "joined" */
static _Atomic int g_subs_done;       /* subscribers joined or failed */
static _Atomic int64_t g_pres_expect; /* presence deliveries the room owes its members */
static _Atomic int g_detached, g_quit;
/* The open step, published by thread 0 with g_step_open (release). */
static _Atomic int g_step_open;
static _Atomic unsigned g_epoch;
static int64_t g_seq_lo;      /* first sequence number of the open step */
static uint64_t g_win_end_rt; /* CLOCK_REALTIME µs at which the send window ends */

static int64_t g_next_seq; /* sender's next sequence number (thread 0) */

/* ---- helpers ---- */

static uint64_t rt_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rusage_s(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void inc(_Atomic uint64_t *a, uint64_t n)
{
    atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static uint64_t ld(_Atomic uint64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int grow(char **p, uint32_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *np = realloc(*p, c);
    if (!np)
        return -1;
    *p = np;
    *cap = (uint32_t)c;
    return 0;
}

/* ---- connections ---- */

static void set_events(struct thr *t, struct conn *c, int want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = (uint8_t)want_out;
}

static void conn_fail(struct thr *t, struct conn *c, int by_server)
{
    if (c->state == C_CLOSED)
        return;
    int was_open = c->state == C_OPEN;
    int handshaking = c->state == C_CONNECTING || c->state == C_HANDSHAKE ||
                      (c->state == C_OPEN && !c->joined);
    if (!atomic_load(&g_detached)) {
        inc(&t->errors, 1);
        if (by_server)
            inc(&t->closed_by_server, 1);
    }
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = C_CLOSED;
    free(c->carry);
    free(c->wbuf);
    c->carry = c->wbuf = NULL;
    c->carry_len = c->carry_cap = c->wlen = c->woff = c->wcap = 0;
    if (!c->sender) {
        if (was_open && c->joined)
            atomic_fetch_sub(&t->open_subs, 1);
        if (handshaking) {
            t->inflight--;
            atomic_fetch_add(&g_subs_done, 1);
        }
    }
}

static int flush(struct thr *t, struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (w > 0) {
            c->woff += (uint32_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            set_events(t, c, 1);
            return 0;
        } else {
            conn_fail(t, c, 1);
            return -1;
        }
    }
    c->woff = c->wlen = 0;
    set_events(t, c, 0);
    return 0;
}

static int conn_write(struct thr *t, struct conn *c, const void *p, size_t n)
{
    if (c->woff && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->woff > 65536 && c->woff * 2 > c->wlen) { /* compact */
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
    if (grow(&c->wbuf, &c->wcap, (size_t)c->wlen + n) < 0) {
        conn_fail(t, c, 0);
        return -1;
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += (uint32_t)n;
    if (c->want_out) /* EPOLLOUT will flush */
        return 0;
    return flush(t, c);
}

/* A masked client frame (RFC 6455, 5.3). */
static int send_frame(struct thr *t, struct conn *c, int opcode, const void *p, size_t n)
{
    uint8_t f[14 + 1024];
    if (n > 1024)
        return -1;
    size_t hl = 0;
    f[hl++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        f[hl++] = (uint8_t)(0x80 | n);
    } else {
        f[hl++] = 0x80 | 126;
        f[hl++] = (uint8_t)(n >> 8);
        f[hl++] = (uint8_t)n;
    }
    uint32_t mask = (uint32_t)xorshift(&t->rng);
    uint8_t m[4];
    memcpy(m, &mask, 4);
    memcpy(f + hl, m, 4);
    hl += 4;
    for (size_t i = 0; i < n; i++)
        f[hl + i] = ((const uint8_t *)p)[i] ^ m[i & 3];
    return conn_write(t, c, f, hl + n);
}

static void start_connect(struct thr *t, struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "socket: %s\n", strerror(errno));
        c->fd = -1;
        c->state = C_CONNECTING;
        if (!c->sender)
            t->inflight++;
        inc(&t->connect_failed, 1);
        conn_fail(t, c, 0);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = C_CONNECTING;
    c->last_seq = -1;
    if (!c->sender)
        t->inflight++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    c->want_out = 1;
    epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev);
    if (connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) < 0 && errno != EINPROGRESS) {
        static int said;
        if (!said++)
            fprintf(stderr, "connect: %s\n", strerror(errno));
        inc(&t->connect_failed, 1);
        conn_fail(t, c, 0);
    }
}

static void send_handshake(struct thr *t, struct conn *c, int idx)
{
    char req[512], name[32], room[128];
    if (c->sender)
        snprintf(name, sizeof name, "sender");
    else
        snprintf(name, sizeof name, "s%d", idx);
    if (g_room_each && !c->sender)
        snprintf(room, sizeof room, "%s-%d", g_room, idx);
    else
        snprintf(room, sizeof room, "%s", g_room);
    int n = snprintf(req, sizeof req,
                     "GET /ws?room=%s&name=%s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     room, name, g_host, g_port);
    c->state = C_HANDSHAKE;
    conn_write(t, c, req, (size_t)n);
}

static void fill_connects(struct thr *t)
{
    while (t->inflight < INFLIGHT && t->next < t->nsubs)
        start_connect(t, t->subs[t->next++]);
}

/* ---- frames from the server ---- */

static const char *find(const char *p, size_t n, const char *lit)
{
    return memmem(p, n, lit, strlen(lit));
}

static uint64_t num_after(const char *p, const char *end, const char **stop)
{
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (stop)
        *stop = p;
    return v;
}

static void on_msg(struct thr *t, struct conn *c, const char *p, size_t n, uint64_t now)
{
    const char *end = p + n;
    if (c->sender) {
        inc(&t->sender_echo, 1);
        return;
    }
    const char *q = find(p, n, "\"ts\":");
    const char *x = find(p, n, "\"text\":\"");
    if (!q || !x) {
        inc(&t->other, 1);
        return;
    }
    uint64_t ts = num_after(q + 5, end, NULL);
    const char *s;
    int64_t seq = (int64_t)num_after(x + 8, end, &s);
    uint64_t sched = (s < end && *s == ' ') ? num_after(s + 1, end, NULL) : 0;

    if (seq > c->last_seq + 1)
        t->gaps += (uint64_t)(seq - c->last_seq - 1);
    else if (seq <= c->last_seq)
        t->reordered++;
    if (seq > c->last_seq)
        c->last_seq = seq;

    if (atomic_load_explicit(&g_step_open, memory_order_acquire) && seq >= g_seq_lo) {
        if (now < ts)
            t->neg++;
        hist_record(&t->fan, now > ts ? now - ts : 1);
        hist_record(&t->e2e, now > sched ? now - sched : 1);
        if (now <= g_win_end_rt)
            t->win_deliv++;
        inc(&t->deliv, 1);
    } else {
        t->late++;
    }
}

static void on_text(struct thr *t, struct conn *c, const char *p, size_t n, uint64_t now)
{
    const char *ty = find(p, n, "\"type\":\"");
    if (!ty) {
        inc(&t->other, 1);
        return;
    }
    ty += 8;
    size_t left = (size_t)(p + n - ty);
    if (left >= 4 && memcmp(ty, "msg\"", 4) == 0) {
        on_msg(t, c, p, n, now);
    } else if (left >= 9 && memcmp(ty, "presence\"", 9) == 0) {
        inc(&t->presence, 1);
        /* A join whose member count is not above the one our "joined" reported happened before
         * we joined: that presence message is stale (the order of events went backwards). */
        if (c->join_members && find(p, n, "\"event\":\"join\"")) {
            const char *m = find(p, n, "\"members\":");
            if (m && (int)num_after(m + 10, p + n, NULL) <= c->join_members)
                inc(&t->stale_presence, 1);
        }
    } else if (left >= 7 && memcmp(ty, "joined\"", 7) == 0) {
        const char *m = find(p, n, "\"members\":");
        int members = m ? (int)num_after(m + 10, p + n, NULL) : 0;
        if (c->joined)
            return;
        c->joined = 1;
        c->join_members = members;
        /* every later joiner (the sender included) owes this member one presence message */
        if (!g_no_join_presence && !g_room_each)
            atomic_fetch_add(&g_pres_expect, (int64_t)(g_nsubs + 1) - members);
        if (!c->sender) {
            t->inflight--;
            atomic_fetch_add(&t->open_subs, 1);
            atomic_fetch_add(&g_joined, 1);
            atomic_fetch_add(&g_subs_done, 1);
        }
    } else if (left >= 6 && memcmp(ty, "error\"", 6) == 0) {
        static _Atomic int said;
        if (atomic_fetch_add(&said, 1) < 3)
            fprintf(stderr, "server error frame: %.*s\n", (int)(n > 200 ? 200 : n), p);
        inc(&t->error_frames, 1);
    } else {
        inc(&t->other, 1);
    }
}

/* Parses complete frames in p[0..n); returns the bytes consumed, or -1 if c was closed. */
static ssize_t parse_frames(struct thr *t, struct conn *c, char *p, size_t n, uint64_t now)
{
    size_t off = 0;
    while (n - off >= 2) {
        uint8_t b0 = (uint8_t)p[off], b1 = (uint8_t)p[off + 1];
        int fin = b0 & 0x80, op = b0 & 0x0f;
        uint64_t len = b1 & 0x7f;
        size_t hl = 2;
        if (b1 & 0x80 || (b0 & 0x70)) { /* a server must not mask; no extensions agreed */
            fprintf(stderr, "bad frame header %02x %02x\n", b0, b1);
            conn_fail(t, c, 1);
            return -1;
        }
        if (len == 126) {
            if (n - off < 4)
                break;
            len = ((uint64_t)(uint8_t)p[off + 2] << 8) | (uint8_t)p[off + 3];
            hl = 4;
        } else if (len == 127) {
            if (n - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | (uint8_t)p[off + 2 + i];
            hl = 10;
        }
        if (len > RBUF / 2) {
            fprintf(stderr, "frame of %llu bytes: too big for this client\n",
                    (unsigned long long)len);
            conn_fail(t, c, 1);
            return -1;
        }
        if (n - off < hl + len)
            break;
        char *pl = p + off + hl;
        off += hl + (size_t)len;
        if (!fin || op == 0) {
            inc(&t->other, 1); /* fragmented messages: not expected from either server */
            continue;
        }
        if (op == 1) {
            on_text(t, c, pl, (size_t)len, now);
        } else if (op == 8) {
            unsigned code = len >= 2 ? ((unsigned)(uint8_t)pl[0] << 8) | (uint8_t)pl[1] : 0;
            if (!atomic_load(&g_detached)) {
                static _Atomic int said;
                if (atomic_fetch_add(&said, 1) < 3)
                    fprintf(stderr, "close frame from server: code %u %.*s\n", code,
                            (int)(len > 2 ? len - 2 : 0), pl + 2);
            }
            conn_fail(t, c, 1);
            return -1;
        } else if (op == 9) {
            if (send_frame(t, c, 10, pl, (size_t)len) < 0)
                return -1;
        } else if (op != 10) {
            inc(&t->other, 1);
        }
    }
    return (ssize_t)off;
}

/* The HTTP response to the upgrade, in c->carry. Returns bytes consumed, 0 if incomplete, -1 if
 * the connection failed. */
static ssize_t parse_handshake(struct thr *t, struct conn *c, char *p, size_t n)
{
    char *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e)
        return n > 8192 ? (conn_fail(t, c, 1), -1) : 0;
    size_t hlen = (size_t)(e - p) + 4;
    char save = p[hlen - 1];
    p[hlen - 1] = '\0';
    int ok = strncmp(p, "HTTP/1.1 101", 12) == 0 && strcasestr(p, "sec-websocket-accept: " WS_ACCEPT);
    if (!ok) {
        static _Atomic int said;
        if (atomic_fetch_add(&said, 1) < 3)
            fprintf(stderr, "handshake refused: %.*s\n", (int)strcspn(p, "\r"), p);
        p[hlen - 1] = save;
        inc(&t->rejected, 1);
        conn_fail(t, c, 1);
        return -1;
    }
    p[hlen - 1] = save;
    c->state = C_OPEN;
    return (ssize_t)hlen;
}

static void on_readable(struct thr *t, struct conn *c)
{
    char *buf = t->rbuf;
    size_t have = c->carry_len;
    if (have)
        memcpy(buf, c->carry, have);
    ssize_t r = read(c->fd, buf + have, RBUF - have);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn_fail(t, c, 1);
        return;
    }
    uint64_t now = rt_us();
    size_t n = have + (size_t)r, off = 0;
    if (c->state == C_HANDSHAKE) {
        ssize_t k = parse_handshake(t, c, buf, n);
        if (k < 0)
            return;
        off = (size_t)k;
    }
    if (c->state == C_OPEN) {
        ssize_t k = parse_frames(t, c, buf + off, n - off, now);
        if (k < 0)
            return;
        off += (size_t)k;
    }
    size_t rest = n - off;
    if (rest) {
        if (grow(&c->carry, &c->carry_cap, rest) < 0) {
            conn_fail(t, c, 0);
            return;
        }
        memmove(c->carry, buf + off, rest);
    }
    c->carry_len = (uint32_t)rest;
}

static void on_writable(struct thr *t, struct conn *c, int idx)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            static _Atomic int said;
            if (atomic_fetch_add(&said, 1) < 3)
                fprintf(stderr, "connect: %s\n", strerror(err));
            inc(&t->connect_failed, 1);
            conn_fail(t, c, 0);
            return;
        }
        send_handshake(t, c, idx);
        return;
    }
    flush(t, c);
}

static void handle(struct thr *t, struct epoll_event *ev)
{
    struct conn *c = ev->data.ptr;
    if (c->state == C_CLOSED)
        return;
    if (ev->events & EPOLLOUT) {
        on_writable(t, c, c->idx);
        if (c->state == C_CLOSED)
            return;
    }
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        on_readable(t, c);
}

/* ---- the sender and the control loop (thread 0) ---- */

struct step {
    int k;
    double rate, dur, drain_max;
    int64_t count, sent;
    double t0;      /* monotonic start */
    uint64_t t0_rt; /* realtime start */
    double u0, s0;
    double win_end, drain_end, done_at;
    uint64_t max_behind_us; /* how late the sender was against the schedule */
    uint32_t max_queued;    /* sender bytes waiting in user space */
};

enum { P_CONNECT, P_SENDER, P_SETTLE, P_IDLE, P_SEND, P_DRAIN, P_CLOSE };

static int g_phase = P_CONNECT;
static struct step g_st;
static int g_tfd = -1;
static double g_t_start, g_t_joined, g_t_last_progress, g_settle_timeout = 120,
                                                            g_connect_timeout = 20;
static int g_last_joined;
static unsigned g_cur_epoch;

static uint64_t sum(size_t off)
{
    uint64_t s = 0;
    for (int i = 0; i < g_nthr; i++)
        s += ld((_Atomic uint64_t *)((char *)&g_thr[i] + off));
    return s;
}
#define SUM(f) sum(offsetof(struct thr, f))

static int sum_open(void)
{
    int s = 0;
    for (int i = 0; i < g_nthr; i++)
        s += atomic_load(&g_thr[i].open_subs);
    return s;
}

static void arm_timer(double at_mono)
{
    struct itimerspec it = {0};
    it.it_value.tv_sec = (time_t)at_mono;
    it.it_value.tv_nsec = (long)((at_mono - (double)(time_t)at_mono) * 1e9);
    if (it.it_value.tv_sec == 0 && it.it_value.tv_nsec == 0)
        it.it_value.tv_nsec = 1;
    timerfd_settime(g_tfd, TFD_TIMER_ABSTIME, &it, NULL);
}

static void print_counts(void)
{
    out("\"presence\":%llu,\"stale_join_presence\":%llu,\"sender_echo\":%llu,\"errors\":%llu,"
        "\"closed_by_server\":%llu,"
        "\"rejected\":%llu,\"connect_failed\":%llu,\"error_frames\":%llu,\"other_frames\":%llu,"
        "\"open_subscribers\":%d,\"sender_open\":%d",
        (unsigned long long)SUM(presence), (unsigned long long)SUM(stale_presence),
        (unsigned long long)SUM(sender_echo),
        (unsigned long long)SUM(errors), (unsigned long long)SUM(closed_by_server),
        (unsigned long long)SUM(rejected), (unsigned long long)SUM(connect_failed),
        (unsigned long long)SUM(error_frames), (unsigned long long)SUM(other), sum_open(),
        g_sender->state == C_OPEN);
}

static void print_connected(int settled)
{
    double now = mono_s();
    out("connected {\"subscribers\":%d,\"joined\":%d,\"sender_joined\":%d,\"settled\":%s,"
        "\"connect_s\":%.3f,\"settle_s\":%.3f,\"presence_expected\":%lld,",
        g_nsubs, atomic_load(&g_joined), g_sender->joined, settled ? "true" : "false",
        (g_t_joined ? g_t_joined : now) - g_t_start, g_t_joined ? now - g_t_joined : 0.0,
        (long long)atomic_load(&g_pres_expect));
    print_counts();
    out("}\n");
}

static void hist_json(const char *name, const struct hist *h)
{
    out("\"%s\":{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,"
        "\"max\":%llu,\"mean\":%.1f}",
        name, (unsigned long long)h->count, (unsigned long long)hist_percentile(h, 50),
        (unsigned long long)hist_percentile(h, 90), (unsigned long long)hist_percentile(h, 99),
        (unsigned long long)hist_percentile(h, 99.9), (unsigned long long)h->max,
        hist_mean(h));
}

static struct hist g_fan, g_e2e; /* merged at step end */

static void finish_step(void)
{
    struct step *s = &g_st;
    hist_init(&g_fan);
    hist_init(&g_e2e);
    uint64_t win = 0, neg = 0, gaps = 0, reord = 0, late = 0, deliv = 0;
    for (int i = 0; i < g_nthr; i++) {
        struct thr *t = &g_thr[i];
        hist_merge(&g_fan, &t->fan);
        hist_merge(&g_e2e, &t->e2e);
        win += t->win_deliv;
        neg += t->neg;
        gaps += t->gaps;
        reord += t->reordered;
        late += t->late;
        deliv += ld(&t->deliv);
        hist_init(&t->fan);
        hist_init(&t->e2e);
        t->win_deliv = t->neg = t->gaps = t->reordered = t->late = 0;
        atomic_store(&t->deliv, 0);
    }
    double u1, s1;
    rusage_s(&u1, &s1);
    double end = s->done_at ? s->done_at : mono_s();
    uint64_t expected = (uint64_t)s->sent * (uint64_t)g_nsubs;
    out("end %d {\"rate\":%g,\"duration\":%g,\"subscribers\":%d,\"sent\":%lld,"
        "\"expected\":%llu,\"delivered\":%llu,\"delivered_in_window\":%llu,"
        "\"deliveries_per_s\":%.1f,\"complete\":%s,\"drain_s\":%.3f,\"wall_s\":%.3f,"
        "\"sender_max_behind_us\":%llu,\"sender_max_queued\":%u,\"negative_latency\":%llu,"
        "\"gaps\":%llu,\"reordered\":%llu,\"late_from_earlier_steps\":%llu,"
        "\"client_user_s\":%.3f,\"client_sys_s\":%.3f,",
        s->k, s->rate, s->dur, g_nsubs, (long long)s->sent, (unsigned long long)expected,
        (unsigned long long)deliv, (unsigned long long)win, (double)win / s->dur,
        deliv >= expected ? "true" : "false", end - s->win_end, end - s->t0,
        (unsigned long long)s->max_behind_us, s->max_queued, (unsigned long long)neg,
        (unsigned long long)gaps, (unsigned long long)reord, (unsigned long long)late,
        u1 - s->u0, s1 - s->s0);
    hist_json("fanout_us", &g_fan);
    out(",");
    hist_json("e2e_us", &g_e2e);
    out(",");
    print_counts();
    out("}\n");
}

static void send_due(struct thr *t)
{
    struct step *s = &g_st;
    double now = mono_s();
    while (s->sent < s->count) {
        double due = s->t0 + (double)s->sent / s->rate;
        if (due > now)
            break;
        uint64_t behind = (uint64_t)((now - due) * 1e6);
        if (behind > s->max_behind_us)
            s->max_behind_us = behind;
        uint64_t sched = s->t0_rt + (uint64_t)((double)s->sent * 1e6 / s->rate);
        char m[128];
        int n = snprintf(m, sizeof m, "{\"type\":\"msg\",\"text\":\"%lld %llu\"}",
                         (long long)g_next_seq++, (unsigned long long)sched);
        if (g_sender->state != C_OPEN || send_frame(t, g_sender, 1, m, (size_t)n) < 0) {
            s->sent = s->count; /* the sender is gone; nothing more to send */
            break;
        }
        s->sent++;
        uint32_t q = g_sender->wlen - g_sender->woff;
        if (q > s->max_queued)
            s->max_queued = q;
    }
    if (s->sent < s->count)
        arm_timer(s->t0 + (double)s->sent / s->rate);
}

static void command(struct thr *t, char *line)
{
    double rate, dur, drain;
    if (sscanf(line, "step %lf %lf %lf", &rate, &dur, &drain) == 3 && g_phase == P_IDLE &&
        rate > 0 && dur > 0) {
        struct step *s = &g_st;
        memset(s, 0, sizeof *s);
        static int k;
        s->k = k++;
        s->rate = rate;
        s->dur = dur;
        s->drain_max = drain;
        s->count = (int64_t)(rate * dur + 0.5);
        rusage_s(&s->u0, &s->s0);
        s->t0 = mono_s();
        s->t0_rt = rt_us();
        s->win_end = s->t0 + dur;
        g_seq_lo = g_next_seq;
        g_win_end_rt = s->t0_rt + (uint64_t)(dur * 1e6);
        atomic_store_explicit(&g_step_open, 1, memory_order_release);
        out("start %d\n", s->k);
        g_phase = P_SEND;
        send_due(t);
    } else if (strncmp(line, "detach", 6) == 0) {
        atomic_store(&g_detached, 1);
        out("detached\n");
    } else if (strncmp(line, "quit", 4) == 0) {
        atomic_store(&g_quit, 1);
    } else {
        fprintf(stderr, "chat_client: ignored command '%s' (phase %d)\n", line, g_phase);
    }
}

static void read_stdin(struct thr *t)
{
    static char buf[4096];
    static size_t len;
    ssize_t r = read(0, buf + len, sizeof buf - 1 - len);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        atomic_store(&g_quit, 1);
        epoll_ctl(t->ep, EPOLL_CTL_DEL, 0, NULL);
        return;
    }
    len += (size_t)r;
    buf[len] = '\0';
    char *nl;
    while ((nl = memchr(buf, '\n', len))) {
        *nl = '\0';
        command(t, buf);
        size_t used = (size_t)(nl - buf) + 1;
        memmove(buf, nl + 1, len - used);
        len -= used;
        buf[len] = '\0';
    }
    if (len >= sizeof buf - 1)
        len = 0;
}

/* One turn of thread 0's state machine; returns the epoll timeout in ms. */
static int control(struct thr *t)
{
    double now = mono_s();
    switch (g_phase) {
    case P_CONNECT: {
        int j = atomic_load(&g_joined);
        if (j != g_last_joined) {
            g_last_joined = j;
            g_t_last_progress = now;
        }
        if (atomic_load(&g_subs_done) >= g_nsubs) {
            g_t_joined = now;
            g_sender->sender = 1;
            start_connect(t, g_sender);
            g_phase = P_SENDER;
        } else if (now - g_t_last_progress > g_connect_timeout) {
            fprintf(stderr, "chat_client: connecting stalled at %d of %d joined\n", j, g_nsubs);
            print_connected(0);
            g_phase = P_IDLE;
        }
        return 10;
    }
    case P_SENDER:
        if (g_sender->joined) {
            g_phase = P_SETTLE;
        } else if (g_sender->state == C_CLOSED || now - g_t_joined > g_connect_timeout) {
            fprintf(stderr, "chat_client: the sender did not join\n");
            print_connected(0);
            g_phase = P_IDLE;
        }
        return 10;
    case P_SETTLE:
        /* stale ones are extra: they do not stand for a join we are still owed */
        if ((int64_t)(SUM(presence) - SUM(stale_presence)) >= atomic_load(&g_pres_expect)) {
            print_connected(1);
            g_phase = P_IDLE;
        } else if (now - g_t_joined > g_settle_timeout) {
            fprintf(stderr, "chat_client: presence not settled after %.0f s (%llu of %lld)\n",
                    g_settle_timeout, (unsigned long long)SUM(presence),
                    (long long)atomic_load(&g_pres_expect));
            print_connected(0);
            g_phase = P_IDLE;
        }
        return 10;
    case P_IDLE:
        return 50;
    case P_SEND:
        if (g_st.sent >= g_st.count && now >= g_st.win_end) {
            g_phase = P_DRAIN;
            g_st.drain_end = g_st.win_end + g_st.drain_max;
        } else {
            double left = g_st.win_end - now;
            return left > 0.05 ? 50 : 1;
        }
        /* fall through */
    case P_DRAIN: {
        uint64_t expected = (uint64_t)g_st.sent * (uint64_t)g_nsubs;
        if (SUM(deliv) >= expected || now >= g_st.drain_end) {
            g_st.done_at = now;
            atomic_store_explicit(&g_step_open, 0, memory_order_release);
            g_cur_epoch = atomic_fetch_add(&g_epoch, 1) + 1;
            atomic_store(&t->ack, g_cur_epoch);
            g_phase = P_CLOSE;
        } else {
            return 1;
        }
    }
        /* fall through */
    case P_CLOSE:
        for (int i = 0; i < g_nthr; i++)
            if (atomic_load(&g_thr[i].ack) != g_cur_epoch)
                return 1;
        finish_step();
        g_phase = P_IDLE;
        return 50;
    }
    return 10;
}

static void *run(void *arg)
{
    struct thr *t = arg;
    struct epoll_event evs[1024];
    t->rbuf = malloc(RBUF);
    while (!atomic_load(&g_quit)) {
        int timeout = 5;
        if (t->id == 0)
            timeout = control(t);
        unsigned e = atomic_load(&g_epoch);
        if (atomic_load_explicit(&t->ack, memory_order_relaxed) != e)
            atomic_store_explicit(&t->ack, e, memory_order_release);
        if (t->next < t->nsubs) {
            fill_connects(t);
            timeout = timeout > 10 ? 10 : timeout;
        }
        int n = epoll_wait(t->ep, evs, 1024, timeout);
        for (int k = 0; k < n; k++) {
            if (evs[k].data.ptr == NULL) {
                read_stdin(t);
            } else if (evs[k].data.ptr == (void *)&g_tfd) {
                uint64_t x;
                if (read(g_tfd, &x, sizeof x) < 0) {
                }
                if (g_phase == P_SEND)
                    send_due(t);
            } else {
                handle(t, &evs[k]);
            }
        }
        if (t->inflight < INFLIGHT && t->next < t->nsubs)
            fill_connects(t);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "t:r:c:s:nR")) != -1) {
        switch (opt) {
        case 't':
            g_nthr = atoi(optarg);
            break;
        case 'r':
            g_room = optarg;
            break;
        case 'c':
            g_connect_timeout = atof(optarg);
            break;
        case 's':
            g_settle_timeout = atof(optarg);
            break;
        case 'n':
            g_no_join_presence = 1;
            break;
        case 'R':
            g_room_each = 1;
            break;
        default:
            goto usage;
        }
    }
    if (argc - optind != 3 || g_nthr < 1 || g_nthr > MAX_THREADS) {
    usage:
        fprintf(stderr, "usage: %s [-t THREADS] [-r ROOM] [-c CONNECT_TIMEOUT_S] "
                        "[-s SETTLE_TIMEOUT_S] [-n] [-R] HOST PORT SUBSCRIBERS\n",
                argv[0]);
        return 2;
    }
    g_host = argv[optind];
    g_port = atoi(argv[optind + 1]);
    g_nsubs = atoi(argv[optind + 2]);
    if (g_nsubs < 1 || g_port < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)g_port);
    if (inet_pton(AF_INET, g_host, &g_addr.sin_addr) != 1) {
        fprintf(stderr, "bad host %s\n", g_host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)g_nsubs + 64) {
        fprintf(stderr, "RLIMIT_NOFILE %llu is too low for %d connections\n",
                (unsigned long long)rl.rlim_cur, g_nsubs + 1);
        return 2;
    }

    struct conn *subs = calloc((size_t)g_nsubs, sizeof *subs);
    if (!subs) {
        perror("calloc");
        return 1;
    }
    for (int i = 0; i < g_nthr; i++) {
        struct thr *t = &g_thr[i];
        t->id = i;
        t->ep = epoll_create1(EPOLL_CLOEXEC);
        t->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)getpid() << 16) ^ (uint64_t)(i + 1);
        t->subs = calloc((size_t)g_nsubs / g_nthr + 1, sizeof *t->subs);
        hist_init(&t->fan);
        hist_init(&t->e2e);
    }
    for (int i = 0; i < g_nsubs; i++) {
        struct thr *t = &g_thr[i % g_nthr];
        subs[i].fd = -1;
        subs[i].idx = i;
        t->subs[t->nsubs++] = &subs[i];
    }
    g_sender->fd = -1;
    g_sender->sender = 1;

    struct thr *t0 = &g_thr[0];
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(t0->ep, EPOLL_CTL_ADD, 0, &ev);
    g_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    ev.data.ptr = &g_tfd;
    epoll_ctl(t0->ep, EPOLL_CTL_ADD, g_tfd, &ev);

    g_t_start = g_t_last_progress = mono_s();
    for (int i = 1; i < g_nthr; i++)
        pthread_create(&g_thr[i].th, NULL, run, &g_thr[i]);
    run(t0);
    for (int i = 1; i < g_nthr; i++)
        pthread_join(g_thr[i].th, NULL);

    double u, s;
    rusage_s(&u, &s);
    out("final {\"client_user_s\":%.3f,\"client_sys_s\":%.3f,", u, s);
    print_counts();
    out("}\n");
    return 0;
}
