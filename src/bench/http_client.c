/* http_client: one `weft bench` worker thread for http:// and tcp:// targets, a plain epoll
 * loop over its own connections. A tcp:// "request" is one --size message, and its response is
 * the same bytes echoed back.
 *
 * Closed loop: each connection sends its next request when the last response is complete, or
 * with --think T, T after it: the connection waits in a FIFO queue (all waits are equal, so
 * connections come due in the order they finished) and the loop's wait ends at the queue's head.
 * Open loop: requests start on the schedule (epoll_pwait2 wakes the loop at the next start, to the
 * microsecond); a request due while every connection is busy is dropped, not delayed. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/schedule.h"
#include "http/parser.h"

#define RBUF_SIZE 16384
#define MAX_EVENTS 256
#define SCAN_US 10000          /* timeouts and retries are checked this often */
#define CONNECT_RETRY_US 10000 /* closed loop: pause after a failed connect */
#define DRAIN_US 1000000       /* closed loop with -d: most time to wait for answers due */

enum { P_HEAD, P_LEN, P_CHUNKED, P_CLOSE, P_ECHO };

struct bconn {
    int fd;
    int connected;
    int busy; /* a request is in flight */
    uint32_t events;
    uint64_t sched_us, sent_us, deadline_us, retry_at;
    uint64_t think_until; /* --think: when its next request is due */
    size_t woff;
    int pstate;
    int status;
    int close_after;
    uint64_t remaining;
    struct http_chunked chunk;
    size_t rlen;
    char rbuf[RBUF_SIZE];
};

struct client {
    struct bench_worker *w;
    const struct bench_target *t;
    int ep;
    struct bconn *conns;
    int n;
    int *free_stack; /* open loop: connections with no request in flight */
    int nfree;
    int busy;
    uint64_t started;
    int retry_pending;
    int *thinking; /* --think: a ring of the connections waiting, soonest due first */
    int think_head, nthinking;
    struct schedule sched;
    uint64_t issued;
};

static void conn_close(struct client *cl, struct bconn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also takes it out of the epoll set */
    c->fd = -1;
    c->connected = 0;
    c->events = 0;
    c->rlen = 0;
}

static int closed_can_start(struct client *cl, uint64_t now)
{
    const struct bench_worker *w = cl->w;
    if (w->total > 0)
        return cl->started < w->total;
    return now < w->end_us;
}

static void start_request(struct client *cl, struct bconn *c, uint64_t sched_us);

/* Ends the request in flight on c: err < 0 for a complete response. */
static void conn_finish(struct client *cl, struct bconn *c, int err)
{
    struct bench_worker *w = cl->w;
    uint64_t now = bench_now_us();
    if (err >= 0) {
        w->errors[err]++;
    } else {
        w->requests++;
        if (c->status >= 0 && c->status < BENCH_MAX_STATUS)
            w->status[c->status]++;
        if (c->status >= 400)
            w->errors[BENCH_ERR_STATUS]++;
        hist_record(w->lat, now - c->sched_us);
        if (w->mode == BENCH_OPEN)
            hist_record(w->lat_unc, now - c->sent_us);
        bench_timeline_record(w, now, now - c->sched_us);
    }
    c->busy = 0;
    cl->busy--;
    if (err >= 0 || c->close_after || cl->t->new_conn)
        conn_close(cl, c);
    if (cl->w->mode == BENCH_OPEN) {
        cl->free_stack[cl->nfree++] = (int)(c - cl->conns);
        return;
    }
    if (err >= 0) {
        /* Restarted from the scan, not from here: a request that fails at once (refused,
         * reset) must not recurse into the next one. */
        c->retry_at = now + (err == BENCH_ERR_CONNECT ? CONNECT_RETRY_US : 1);
        cl->retry_pending = 1;
        return;
    }
    if (w->think_us) {
        c->think_until = now + w->think_us;
        cl->thinking[(cl->think_head + cl->nthinking++) % cl->n] = (int)(c - cl->conns);
        return;
    }
    if (closed_can_start(cl, now))
        start_request(cl, c, now);
}

static void conn_events(struct client *cl, struct bconn *c)
{
    uint32_t want = EPOLLIN;
    if (!c->connected || (c->busy && c->woff < cl->t->request_len))
        want |= EPOLLOUT;
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    epoll_ctl(cl->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    c->events = want;
}

/* Opens a non-blocking connection. 0, or -1 when connect failed at once. */
static int conn_open(struct client *cl, struct bconn *c)
{
    const struct bench_target *t = cl->t;
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->events = 0;
    c->rlen = 0;
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) == 0) {
        c->connected = 1;
    } else if (errno == EINPROGRESS) {
        c->connected = 0;
    } else {
        conn_close(cl, c);
        return -1;
    }
    conn_events(cl, c);
    return 0;
}

/* Writes what the socket takes. 1 when the request ended (an error), else 0. */
static int conn_write(struct client *cl, struct bconn *c)
{
    if (bench_send(c->fd, cl->t->request, cl->t->request_len, &c->woff) < 0) {
        conn_finish(cl, c, BENCH_ERR_WRITE);
        return 1;
    }
    conn_events(cl, c);
    return 0;
}

static void start_request(struct client *cl, struct bconn *c, uint64_t sched_us)
{
    c->busy = 1;
    cl->busy++;
    cl->started++;
    c->sched_us = sched_us;
    c->sent_us = bench_now_us();
    c->deadline_us = c->sent_us + cl->t->timeout_us;
    c->woff = 0;
    c->pstate = cl->t->proto == BENCH_TCP ? P_ECHO : P_HEAD;
    c->remaining = cl->t->request_len;
    c->status = -1;
    c->close_after = 0;
    if (c->fd < 0 && conn_open(cl, c) < 0) {
        conn_finish(cl, c, BENCH_ERR_CONNECT);
        return;
    }
    if (c->connected)
        conn_write(cl, c);
}

static void consume(struct bconn *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

static int slice_has_token(const char *p, size_t n, const char *tok)
{
    size_t k = strlen(tok);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(p + i, tok, k) == 0)
            return 1;
    return 0;
}

/* Parses a response head of head_len bytes at c->rbuf. 0, or -1 when malformed. */
static int parse_head(struct client *cl, struct bconn *c, size_t head_len)
{
    const char *p = c->rbuf, *end = c->rbuf + head_len - 2;
    if (head_len < 14 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
        p[11] > '9')
        return -1;
    int minor = p[7] - '0';
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    int64_t length = -1;
    int chunked = 0, keep_alive = 0;
    c->close_after = 0;
    const char *line = memchr(p, '\n', (size_t)(end - p));
    if (!line)
        return -1;
    line++;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line + 1));
        if (!eol)
            return -1;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            return -1;
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1, *vend = eol;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == '\r' || vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        size_t vlen = (size_t)(vend - v);
        if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            char *e;
            char num[24];
            if (vlen == 0 || vlen >= sizeof num)
                return -1;
            memcpy(num, v, vlen);
            num[vlen] = 0;
            long long x = strtoll(num, &e, 10);
            if (*e || x < 0)
                return -1;
            length = x;
        } else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
            chunked = slice_has_token(v, vlen, "chunked");
        } else if (nlen == 10 && strncasecmp(line, "Connection", 10) == 0) {
            if (slice_has_token(v, vlen, "close"))
                c->close_after = 1;
            if (slice_has_token(v, vlen, "keep-alive"))
                keep_alive = 1;
        }
        line = eol + 1;
    }
    if (minor == 0 && !keep_alive)
        c->close_after = 1;
    consume(c, head_len);
    if (c->status < 200) {
        c->pstate = P_HEAD; /* an interim response: the real one follows */
    } else if (cl->t->head_only || c->status == 204 || c->status == 304) {
        c->pstate = P_LEN;
        c->remaining = 0;
    } else if (chunked) {
        c->pstate = P_CHUNKED;
        http_chunked_init(&c->chunk, UINT64_MAX / 2);
    } else if (length >= 0) {
        c->pstate = P_LEN;
        c->remaining = (uint64_t)length;
    } else {
        c->pstate = P_CLOSE;
        c->close_after = 1;
    }
    return 0;
}

/* Parses what is buffered. 1 when the request ended (response or error), else 0. */
static int conn_parse(struct client *cl, struct bconn *c)
{
    for (;;) {
        if (c->pstate == P_ECHO) {
            /* tcp://: the message comes back byte for byte. */
            if (c->rlen > c->remaining ||
                memcmp(c->rbuf, cl->t->request + cl->t->request_len - c->remaining, c->rlen) != 0) {
                conn_finish(cl, c, BENCH_ERR_PROTOCOL);
                return 1;
            }
            c->remaining -= c->rlen;
            c->rlen = 0;
            if (c->remaining > 0)
                return 0;
            break;
        }
        if (c->pstate == P_HEAD) {
            const char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
            if (!e) {
                if (c->rlen == RBUF_SIZE) {
                    conn_finish(cl, c, BENCH_ERR_PROTOCOL);
                    return 1;
                }
                return 0;
            }
            if (parse_head(cl, c, (size_t)(e - c->rbuf) + 4) < 0) {
                conn_finish(cl, c, BENCH_ERR_PROTOCOL);
                return 1;
            }
            continue;
        }
        if (c->pstate == P_LEN) {
            size_t take = c->rlen < c->remaining ? c->rlen : (size_t)c->remaining;
            consume(c, take);
            c->remaining -= take;
            if (c->remaining > 0)
                return 0;
            break;
        }
        if (c->pstate == P_CHUNKED) {
            size_t used = 0, out = 0;
            int r = http_chunked_decode(&c->chunk, c->rbuf, c->rlen, &used, c->rbuf, &out);
            if (r < 0) {
                conn_finish(cl, c, BENCH_ERR_PROTOCOL);
                return 1;
            }
            consume(c, used);
            if (r == HTTP_CHUNKED_MORE)
                return 0;
            break;
        }
        c->rlen = 0; /* P_CLOSE: the body runs until the server closes */
        return 0;
    }
    /* One request is in flight at a time, so bytes past its response are the server's error. */
    conn_finish(cl, c, c->rlen > 0 ? BENCH_ERR_PROTOCOL : -1);
    return 1;
}

static void conn_read(struct client *cl, struct bconn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
        if (n > 0) {
            if (!c->busy) {
                /* Nothing was asked on this connection. */
                cl->w->errors[BENCH_ERR_PROTOCOL]++;
                conn_close(cl, c);
                return;
            }
            c->rlen += (size_t)n;
            if (conn_parse(cl, c))
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (!c->busy) {
            /* The server closed an idle keep-alive connection: the next request reconnects. */
            conn_close(cl, c);
        } else if (n == 0 && c->pstate == P_CLOSE) {
            conn_finish(cl, c, -1);
        } else {
            conn_finish(cl, c, BENCH_ERR_READ);
        }
        return;
    }
}

static void conn_event(struct client *cl, struct bconn *c, uint32_t ev)
{
    if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            if (c->busy) {
                conn_finish(cl, c, BENCH_ERR_CONNECT);
            } else {
                cl->w->errors[BENCH_ERR_CONNECT]++;
                conn_close(cl, c);
            }
            return;
        }
        c->connected = 1;
        if (!c->busy) {
            conn_events(cl, c);
            return;
        }
    }
    if (c->busy && c->woff < cl->t->request_len && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        if (conn_write(cl, c))
            return;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(cl, c);
}

static void scan(struct client *cl, uint64_t now)
{
    int retry = cl->retry_pending;
    cl->retry_pending = 0;
    for (int i = 0; i < cl->n; i++) {
        struct bconn *c = &cl->conns[i];
        if (c->busy && now >= c->deadline_us) {
            conn_finish(cl, c, BENCH_ERR_TIMEOUT);
        } else if (retry && !c->busy && cl->w->mode == BENCH_CLOSED && c->retry_at) {
            if (now < c->retry_at) {
                cl->retry_pending = 1;
            } else {
                c->retry_at = 0;
                if (closed_can_start(cl, now))
                    start_request(cl, c, now);
            }
        }
    }
}

/* Open loop: starts every request now due, or drops it. */
static void issue_due(struct client *cl, uint64_t now)
{
    uint64_t due = schedule_due(&cl->sched, now);
    for (; cl->issued < due; cl->issued++) {
        if (cl->nfree == 0) {
            cl->w->dropped++;
            continue;
        }
        struct bconn *c = &cl->conns[cl->free_stack[--cl->nfree]];
        start_request(cl, c, schedule_start_us(&cl->sched, cl->issued));
    }
}

/* --think: starts the request of every connection whose wait is over. One that may not start
 * (the run's end came) leaves the queue and stays idle. */
static void think_due(struct client *cl, uint64_t now)
{
    while (cl->nthinking > 0) {
        struct bconn *c = &cl->conns[cl->thinking[cl->think_head]];
        if (c->think_until > now)
            return;
        cl->think_head = (cl->think_head + 1) % cl->n;
        cl->nthinking--;
        /* Now, not the loop's now: the sends before it in this pass are not its latency. */
        uint64_t t = bench_now_us();
        if (closed_can_start(cl, t))
            start_request(cl, c, t);
    }
}

/* How long the loop may sleep: until the next scan, or the next scheduled start, the end of the
 * first --think wait or (--think with -d) the run's end if sooner. The wait itself is the timer:
 * one system call per wake-up, no timerfd to re-arm. */
static uint64_t wait_us(const struct client *cl, uint64_t now, uint64_t last_scan)
{
    const struct bench_worker *w = cl->w;
    uint64_t until = last_scan + SCAN_US;
    if (w->mode == BENCH_OPEN && cl->issued < cl->sched.total) {
        uint64_t at = schedule_start_us(&cl->sched, cl->issued);
        if (at < until)
            until = at;
    }
    if (cl->nthinking > 0) {
        uint64_t at = cl->conns[cl->thinking[cl->think_head]].think_until;
        if (at < until)
            until = at;
    }
    /* Every connection may be waiting when the run ends: the end must not wait for the scan. */
    if (w->think_us && w->total == 0 && w->end_us > now && w->end_us < until)
        until = w->end_us;
    return until > now ? until - now : 0;
}

static int client_done(struct client *cl, uint64_t now)
{
    const struct bench_worker *w = cl->w;
    if (cl->w->mode == BENCH_OPEN) {
        if (cl->issued < cl->sched.total)
            return 0;
        /* After the schedule, in-flight requests get their timeout to finish. */
        return cl->busy == 0 || now >= w->end_us + cl->t->timeout_us + SCAN_US;
    }
    if (w->total > 0)
        return cl->started >= w->total && cl->busy == 0;
    /* -d: nothing new starts after the end; answers already due get a short grace. */
    uint64_t grace = cl->t->timeout_us < DRAIN_US ? cl->t->timeout_us : DRAIN_US;
    return now >= w->end_us && (cl->busy == 0 || now >= w->end_us + grace);
}

/* --busy-poll: asks for events without sleeping for up to busy_poll_us (never past the wait of
 * *us, which is shortened by the time spent). On loopback the server's send runs the client's
 * receive path, wake-up included: a client that sleeps between answers makes the server pay for
 * waking it, one that polls does not. The events found, 0 or -1. */
static int poll_first(struct client *cl, struct epoll_event *evs, uint64_t *us)
{
    uint64_t budget = cl->t->busy_poll_us < *us ? cl->t->busy_poll_us : *us;
    if (budget == 0)
        return 0;
    uint64_t t0 = bench_now_us(), t = t0;
    int n;
    while ((n = epoll_wait(cl->ep, evs, MAX_EVENTS, 0)) == 0 && (t = bench_now_us()) - t0 < budget)
        ;
    if (n != 0)
        t = bench_now_us();
    cl->w->poll_us += t - t0;
    *us = *us > t - t0 ? *us - (t - t0) : 0;
    return n;
}

static void client_loop(struct client *cl)
{
    struct epoll_event evs[MAX_EVENTS];
    uint64_t last_scan = bench_now_us();
    for (;;) {
        uint64_t now = bench_now_us();
        if (now - last_scan >= SCAN_US) {
            scan(cl, now);
            last_scan = now;
        }
        if (cl->w->mode == BENCH_OPEN)
            issue_due(cl, now);
        else if (cl->nthinking > 0)
            think_due(cl, now);
        if (client_done(cl, now))
            return;
        uint64_t us = wait_us(cl, now, last_scan);
        int n = poll_first(cl, evs, &us);
        struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                              .tv_nsec = (long)(us % 1000000u) * 1000};
        if (n == 0)
            n = epoll_pwait2(cl->ep, evs, MAX_EVENTS, &ts, NULL);
        if (n < 0 && errno == ENOSYS) /* before Linux 5.11: milliseconds, rounded up */
            n = epoll_wait(cl->ep, evs, MAX_EVENTS, (int)((us + 999) / 1000));
        for (int i = 0; i < n; i++)
            conn_event(cl, evs[i].data.ptr, evs[i].events);
    }
}

int bench_http_worker_run(struct bench_worker *w)
{
    struct client cl = {.w = w, .t = w->t, .n = w->conns, .ep = -1};
    int rc = -1;
    cl.conns = calloc((size_t)cl.n, sizeof *cl.conns);
    cl.free_stack = calloc((size_t)cl.n, sizeof *cl.free_stack);
    cl.thinking = calloc((size_t)cl.n, sizeof *cl.thinking);
    cl.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!cl.conns || !cl.free_stack || !cl.thinking || cl.ep < 0) {
        snprintf(w->fail, sizeof w->fail, "out of memory or descriptors");
        goto out;
    }
    for (int i = 0; i < cl.n; i++)
        cl.conns[i].fd = -1;
    if (w->mode == BENCH_OPEN) {
        /* The default 50 us timer slack would show up as latency in the corrected figures. */
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        schedule_init(&cl.sched, w->t0_us, w->rps, w->total);
        /* Keep-alive connections are opened before the first request is due. */
        for (int i = cl.n - 1; i >= 0; i--) {
            if (!cl.t->new_conn && conn_open(&cl, &cl.conns[i]) < 0)
                w->errors[BENCH_ERR_CONNECT]++;
            cl.free_stack[cl.nfree++] = i;
        }
    } else {
        /* --think: the default 50 us timer slack would lengthen every wait. */
        if (w->think_us)
            prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        uint64_t now = bench_now_us();
        for (int i = 0; i < cl.n && closed_can_start(&cl, now); i++)
            start_request(&cl, &cl.conns[i], now);
    }
    client_loop(&cl);
    /* Answers still due after the drain (a blocking server may hold most of them) are
     * reported, not silently forgotten. */
    w->unanswered = (uint64_t)cl.busy;
    rc = 0;
out:
    for (int i = 0; cl.conns && i < cl.n; i++)
        conn_close(&cl, &cl.conns[i]);
    if (cl.ep >= 0)
        close(cl.ep);
    free(cl.conns);
    free(cl.free_stack);
    free(cl.thinking);
    return rc;
}
