/* ws_client: one `weft bench` worker thread for ws:// targets, chat fan-out.
 *
 * A run has one sender connection (on worker 0) and --subscribers receivers spread over the
 * workers, all in the room of the URL. Each worker runs a plain epoll loop over its own
 * connections: non-blocking connects, the upgrade, then frames (ws_wire.h). Three phases:
 *
 * 1. Joining. Every connection upgrades, gets "joined", and waits until it has seen the room
 *    with all of the run's members (the presence messages of later joiners have arrived); then
 *    it counts itself at the run's barrier (struct bench_ws_sync). The measured run starts when
 *    every connection of every worker has counted, so no message is lost to a subscriber that
 *    has not joined yet and the join-presence storm is not measured. A connection that has not
 *    joined within --timeout is a timeout error and the run goes on without it.
 * 2. Sending. The sender sends {"type":"msg"} with a stamp at the start of the text (the run,
 *    the scheduled and the actual send time, a sequence number), padded to --size. Closed loop:
 *    the next message when every live subscriber has the last one and the server's copy came
 *    back to the sender (-n messages, or until -d): one message's whole fan-out at a time, no
 *    queueing (subscribers on other workers count in sync->cur_got and wake the sender's loop
 *    through sync->wake_fd); open loop: on the schedule at --rps whatever came back, and a
 *    message due while more than SEND_BACKLOG bytes wait to be written is dropped. Every
 *    subscriber records fan-out latency, its receipt time minus the stamp's scheduled (open) or
 *    actual (closed) send time, in w->lat; open loop, also from the actual send in w->lat_unc.
 *    The sender's own copies are w->requests: messages the server took and broadcast.
 * 3. Draining. After the sender's last message every subscriber gets up to --timeout for the
 *    messages it has not received yet; each one still missing is a timeout error.
 *
 * Errors: connect; read (the server closed or reset, or closed with 1000, 1001 or 1008, its
 * slow-consumer code); write; timeout (not joined in time, the sender's copy not back in time,
 * a delivery that never came); protocol (no 101 or a wrong Sec-WebSocket-Accept, a bad frame,
 * a binary message, a close with another code, an {"type":"error"} message).
 * All times are CLOCK_MONOTONIC, which the threads share: latency across workers is exact. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/schedule.h"
#include "bench/ws_wire.h"
#include "ws/handshake.h"

#define RBUF_SIZE 16384
#define MAX_EVENTS 256
#define SCAN_US 10000           /* timeouts and the end are checked this often */
#define BARRIER_US 1000         /* before the start, the barrier is checked this often */
#define SEND_BACKLOG (1u << 20) /* open loop: unsent bytes past which messages are dropped */
#define MAX_MESSAGE ((uint64_t)16 << 20) /* a server message, besides our own text */

enum { C_CONNECTING, C_UPGRADING, C_OPEN, C_DEAD };

struct wconn {
    int fd;
    int state;
    int is_sender;
    int joined; /* "joined" came */
    int ready;  /* counted at the barrier */
    uint32_t events;
    long members; /* the most members the room was seen with */
    uint64_t got; /* this run's messages received */
    uint8_t *out; /* bytes to write: the upgrade request, messages, pongs */
    size_t out_len, out_off, out_cap;
    struct bench_ws_rx rx;
    size_t rlen;
    uint8_t rbuf[RBUF_SIZE];
};

static char wake_tag; /* the epoll tag of sync->wake_fd */

struct wclient {
    struct bench_worker *w;
    const struct bench_target *t;
    struct bench_ws_sync *sync;
    int ep, tfd;
    struct wconn *conns;
    int n;
    char accept[WS_ACCEPT_LEN + 1]; /* the Sec-WebSocket-Accept the server must answer */
    uint64_t rng;                   /* masks */
    uint64_t setup_deadline;
    int go; /* this worker has seen the barrier open */
    /* Draining: the sender is done; the deliveries this worker's subscribers still miss. */
    int draining;
    uint64_t expect, need, drain_deadline;
    /* The sender, on the worker that has it. */
    struct wconn *snd;
    int snd_done;
    struct schedule sched;
    uint64_t issued;  /* open: messages due so far, sent or dropped */
    uint64_t sent;    /* messages queued to the server */
    uint64_t back;    /* the sender's own copies received */
    uint64_t refused; /* messages the server answered with an error */
    int inflight;     /* closed: a message's fan-out is awaited */
    int own_back;     /* closed: the sender's own copy of it came back */
    uint64_t inflight_seq, inflight_deadline;
    uint64_t armed_at; /* open: the start the timer is set for */
    size_t frame_max;
};

/* The process's CPU time, counted as run.c counts it. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A fresh masking key (xorshift64*: cheap, and masks need not be secret to a load test). */
static void mask_next(struct wclient *cl, uint8_t mask[4])
{
    cl->rng ^= cl->rng >> 12;
    cl->rng ^= cl->rng << 25;
    cl->rng ^= cl->rng >> 27;
    uint64_t r = cl->rng * 0x2545f4914f6cdd1dull;
    memcpy(mask, &r, 4);
}

static void conn_events(struct wclient *cl, struct wconn *c)
{
    uint32_t want = EPOLLIN;
    if (c->state == C_CONNECTING || c->out_off < c->out_len)
        want |= EPOLLOUT;
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    epoll_ctl(cl->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    c->events = want;
}

/* Room for n more bytes to write. -1 when out of memory. */
static int conn_reserve(struct wconn *c, size_t n)
{
    if (c->out_cap - c->out_len >= n)
        return 0;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_cap - c->out_len >= n)
            return 0;
    }
    size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
    while (cap - c->out_len < n)
        cap *= 2;
    uint8_t *p = realloc(c->out, cap);
    if (!p)
        return -1;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static uint64_t missing(const struct wclient *cl, const struct wconn *c)
{
    return c->got < cl->expect ? cl->expect - c->got : 0;
}

/* The sender is done after `expect` messages: the other workers may drain. */
static void sender_finish(struct wclient *cl, uint64_t now, uint64_t expect)
{
    cl->snd_done = 1;
    cl->sync->expect = expect;
    cl->sync->done_us = now;
    __atomic_store_n(&cl->sync->sender_done, 1, __ATOMIC_RELEASE);
}

/* Closed loop: subscribers alive now, on every worker. */
static int live_subscribers(const struct bench_ws_sync *s)
{
    return s->conns - 1 - __atomic_load_n(&s->failed, __ATOMIC_ACQUIRE) -
           __atomic_load_n(&s->lost, __ATOMIC_ACQUIRE);
}

static void wake_sender(const struct bench_ws_sync *s)
{
    uint64_t one = 1;
    if (s->wake_fd >= 0 && write(s->wake_fd, &one, sizeof one) < 0)
        return; /* EAGAIN: the counter is full, so the sender is awake anyway */
}

static void arrive(struct wclient *cl, struct wconn *c)
{
    c->ready = 1;
    __atomic_add_fetch(&cl->sync->arrived, 1, __ATOMIC_RELEASE);
}

/* Ends connection c, counting err (a BENCH_ERR_*) when >= 0. */
static void conn_fail(struct wclient *cl, struct wconn *c, int err)
{
    if (c->state == C_DEAD)
        return;
    if (err >= 0)
        cl->w->errors[err]++;
    if (c->fd >= 0)
        close(c->fd); /* also takes it out of the epoll set */
    c->fd = -1;
    c->state = C_DEAD;
    c->events = 0;
    if (!cl->go) {
        __atomic_add_fetch(&cl->sync->failed, 1, __ATOMIC_RELEASE);
        if (!c->ready)
            arrive(cl, c);
    }
    if (c->is_sender && !cl->snd_done)
        sender_finish(cl, bench_now_us(), cl->go ? cl->back : 0);
    else if (!c->is_sender && cl->draining)
        cl->need -= missing(cl, c);
    if (!c->is_sender && cl->go) {
        __atomic_add_fetch(&cl->sync->lost, 1, __ATOMIC_RELEASE);
        wake_sender(cl->sync); /* the message in flight waits for one subscriber less */
    }
}

/* Writes what the socket takes. 0, or -1 when c failed. */
static int conn_flush(struct wclient *cl, struct wconn *c)
{
    if (c->state == C_CONNECTING || c->state == C_DEAD)
        return c->state == C_DEAD ? -1 : 0;
    if (bench_send(c->fd, c->out, c->out_len, &c->out_off) < 0) {
        conn_fail(cl, c, BENCH_ERR_WRITE);
        return -1;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    conn_events(cl, c);
    return 0;
}

/* A best-effort close frame before the socket closes: nothing waits for the answer. */
static void send_close(struct wclient *cl, struct wconn *c, uint16_t code)
{
    uint8_t f[WS_MAX_HEADER + 2], mask[4];
    mask_next(cl, mask);
    size_t n = ws_close_encode(f, sizeof f, code, NULL, mask);
    if (n && send(c->fd, f, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        return; /* the socket is closed next anyway */
}

/* Opens connection c and queues the upgrade request. */
static void conn_open(struct wclient *cl, struct wconn *c)
{
    const struct bench_target *t = cl->t;
    bench_ws_rx_init(&c->rx, MAX_MESSAGE + t->msg_size);
    c->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || conn_reserve(c, t->request_len) < 0) {
        conn_fail(cl, c, BENCH_ERR_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memcpy(c->out, t->request, t->request_len);
    c->out_len = t->request_len;
    if (connect(c->fd, (const struct sockaddr *)&t->addr, t->addr_len) == 0) {
        c->state = C_UPGRADING;
    } else if (errno == EINPROGRESS) {
        c->state = C_CONNECTING;
    } else {
        conn_fail(cl, c, BENCH_ERR_CONNECT);
        return;
    }
    conn_events(cl, c);
}

static void sender_next(struct wclient *cl, uint64_t now);

/* Queues the sender's next message, due at sched. 0, or -1 when the sender failed. */
static int sender_queue(struct wclient *cl, uint64_t sched, uint64_t now)
{
    struct wconn *c = cl->snd;
    if (conn_reserve(c, cl->frame_max) < 0) {
        conn_fail(cl, c, BENCH_ERR_WRITE);
        return -1;
    }
    struct bench_ws_stamp st = {
        .run = cl->sync->run_id, .sched_us = sched, .sent_us = now, .seq = cl->sent};
    uint8_t mask[4];
    mask_next(cl, mask);
    c->out_len += bench_ws_chat_frame(c->out + c->out_len, c->out_cap - c->out_len, &st,
                                      cl->t->msg_size, mask);
    cl->sent++;
    return 0;
}

/* Closed loop: the next message now, or the end. */
static void sender_next(struct wclient *cl, uint64_t now)
{
    const struct bench_worker *w = cl->w;
    if (w->total ? cl->sent >= w->total : now >= w->end_us) {
        sender_finish(cl, now, cl->sent - cl->refused);
        return;
    }
    /* Announced before the send: no copy can arrive before it. */
    __atomic_store_n(&cl->sync->cur_got, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&cl->sync->cur_seq, cl->sent, __ATOMIC_RELEASE);
    if (sender_queue(cl, now, now) < 0)
        return;
    cl->own_back = 0;
    cl->inflight = 1;
    cl->inflight_seq = cl->sent - 1;
    cl->inflight_deadline = now + cl->t->timeout_us;
    conn_flush(cl, cl->snd);
}

/* Open loop: queues every message now due (or drops it), writes, arms the timer for the next
 * one; after the schedule, ends when every copy came back or the timeout passed. */
static void sender_issue(struct wclient *cl, uint64_t now)
{
    struct bench_worker *w = cl->w;
    struct wconn *c = cl->snd;
    uint64_t due = schedule_due(&cl->sched, now);
    int queued = 0;
    for (; cl->issued < due && c->state != C_DEAD; cl->issued++) {
        if (c->out_len - c->out_off > SEND_BACKLOG) {
            w->dropped++;
            continue;
        }
        if (sender_queue(cl, schedule_start_us(&cl->sched, cl->issued), now) < 0)
            return;
        queued = 1;
    }
    if (queued && conn_flush(cl, c) < 0)
        return;
    if (cl->issued < cl->sched.total) {
        uint64_t at = schedule_start_us(&cl->sched, cl->issued);
        if (at != cl->armed_at) { /* the loop comes here on every event: one call per message */
            struct itimerspec its = {.it_value = {.tv_sec = (time_t)(at / 1000000u),
                                                  .tv_nsec = (long)(at % 1000000u) * 1000}};
            timerfd_settime(cl->tfd, TFD_TIMER_ABSTIME, &its, NULL);
            cl->armed_at = at;
        }
        return;
    }
    if (cl->back + cl->refused >= cl->sent || now >= w->end_us + cl->t->timeout_us) {
        if (cl->sent > cl->back + cl->refused)
            w->errors[BENCH_ERR_TIMEOUT] += cl->sent - cl->back - cl->refused;
        sender_finish(cl, now, cl->sent - cl->refused);
    }
}

/* The barrier is open at go: this worker's run starts (its clock and schedule move there). */
static void start(struct wclient *cl, uint64_t go, uint64_t now)
{
    struct bench_worker *w = cl->w;
    uint64_t span = w->end_us - w->t0_us;
    cl->go = 1;
    w->t0_us = go;
    w->end_us = go + span;
    if (!cl->snd || cl->snd_done)
        return;
    if (w->mode == BENCH_OPEN)
        schedule_init(&cl->sched, go, w->rps, w->total);
    else
        sender_next(cl, now);
}

/* Before the start: opens the barrier when every connection of the run has arrived. */
static void barrier(struct wclient *cl, uint64_t now)
{
    struct bench_ws_sync *s = cl->sync;
    uint64_t go = __atomic_load_n(&s->go_us, __ATOMIC_ACQUIRE);
    if (!go) {
        if (__atomic_load_n(&s->arrived, __ATOMIC_ACQUIRE) < s->conns)
            return;
        double cpu = cpu_seconds();
        if (__atomic_compare_exchange_n(&s->go_us, &go, now, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            s->go_cpu_s = cpu; /* read by run.c after the threads are joined */
            go = now;
        }
    }
    start(cl, go, now);
}

/* Arrives at the barrier once joined and the room has all the run's members. */
static void check_ready(struct wclient *cl, struct wconn *c)
{
    if (cl->go || c->ready || !c->joined || c->state != C_OPEN)
        return;
    int want = cl->sync->conns - __atomic_load_n(&cl->sync->failed, __ATOMIC_ACQUIRE);
    if (c->members >= want)
        arrive(cl, c);
}

/* Closed loop: the next message once the one in flight has reached everyone. */
static void sender_check(struct wclient *cl, uint64_t now)
{
    if (!cl->inflight || !cl->own_back)
        return;
    if (__atomic_load_n(&cl->sync->cur_got, __ATOMIC_ACQUIRE) < live_subscribers(cl->sync))
        return;
    cl->inflight = 0;
    sender_next(cl, now);
}

static void on_msg(struct wclient *cl, struct wconn *c, const struct bench_chat *m)
{
    struct bench_ws_stamp s;
    if (!m->text || bench_ws_stamp_parse(m->text, m->text_len, &s) < 0 || s.run != cl->sync->run_id)
        return; /* someone else's message in the room */
    struct bench_worker *w = cl->w;
    uint64_t now = bench_now_us();
    if (!cl->go)
        barrier(cl, now); /* a message of this run: the barrier has opened */
    if (c->is_sender) {
        cl->back++;
        w->requests++;
        if (w->mode == BENCH_CLOSED && cl->inflight && s.seq == cl->inflight_seq) {
            cl->own_back = 1;
            sender_check(cl, now);
        }
        return;
    }
    if (w->mode == BENCH_CLOSED && s.seq == __atomic_load_n(&cl->sync->cur_seq, __ATOMIC_ACQUIRE) &&
        __atomic_add_fetch(&cl->sync->cur_got, 1, __ATOMIC_ACQ_REL) >= live_subscribers(cl->sync)) {
        if (cl->snd)
            sender_check(cl, now); /* the sender is on this worker */
        else
            wake_sender(cl->sync);
    }
    c->got++;
    w->deliveries++;
    if (cl->draining && c->got <= cl->expect)
        cl->need--;
    uint64_t lat = now > s.sched_us ? now - s.sched_us : 0;
    hist_record(w->lat, lat);
    if (w->mode == BENCH_OPEN)
        hist_record(w->lat_unc, now > s.sent_us ? now - s.sent_us : 0);
    bench_timeline_record(w, now, lat);
}

static void on_data(struct wclient *cl, struct wconn *c)
{
    if (c->rx.opcode != WS_OP_TEXT) {
        cl->w->errors[BENCH_ERR_PROTOCOL]++; /* weft's chat sends text only */
        return;
    }
    struct bench_chat m;
    bench_ws_chat_scan((const char *)c->rx.data, c->rx.data_len, &m);
    if (m.type == BENCH_CHAT_MSG) {
        on_msg(cl, c, &m);
    } else if (m.type == BENCH_CHAT_JOINED || m.type == BENCH_CHAT_PRESENCE) {
        c->joined |= m.type == BENCH_CHAT_JOINED;
        if (m.members > c->members)
            c->members = m.members;
        check_ready(cl, c);
    } else if (m.type == BENCH_CHAT_ERROR) {
        cl->w->errors[BENCH_ERR_PROTOCOL]++;
        if (c->is_sender && cl->go && !cl->snd_done) {
            /* The server refused a message: it is not broadcast, and it was the answer. */
            cl->refused++;
            if (cl->w->mode == BENCH_CLOSED && cl->inflight) {
                cl->inflight = 0;
                sender_next(cl, bench_now_us());
            }
        }
    }
}

static void on_control(struct wclient *cl, struct wconn *c)
{
    struct bench_ws_rx *rx = &c->rx;
    if (rx->ctl_opcode == WS_OP_PING) {
        uint8_t mask[4];
        mask_next(cl, mask);
        if (conn_reserve(c, WS_MAX_HEADER + rx->ctl_len) < 0) {
            conn_fail(cl, c, BENCH_ERR_WRITE);
            return;
        }
        c->out_len += bench_ws_frame(c->out + c->out_len, WS_OP_PONG, rx->ctl, rx->ctl_len, mask);
        conn_flush(cl, c);
    } else if (rx->ctl_opcode == WS_OP_CLOSE) {
        uint16_t code = 0;
        const uint8_t *reason;
        size_t rlen;
        int bad = ws_close_parse(rx->ctl, rx->ctl_len, &code, &reason, &rlen) < 0;
        /* Closes the server may make on its own: done, shutting down, we were too slow. */
        int ours = !bad && code != WS_CLOSE_NORMAL && code != WS_CLOSE_GOING_AWAY &&
                   code != WS_CLOSE_POLICY && code != WS_CLOSE_NO_STATUS;
        send_close(cl, c, bad ? WS_CLOSE_PROTOCOL : WS_CLOSE_NORMAL);
        conn_fail(cl, c, bad || ours ? BENCH_ERR_PROTOCOL : BENCH_ERR_READ);
    }
}

/* Decodes the frames buffered on c and keeps an incomplete header for the next read. */
static void conn_frames(struct wclient *cl, struct wconn *c)
{
    size_t off = 0;
    while (c->state == C_OPEN) {
        size_t used = 0;
        int e = bench_ws_rx_next(&c->rx, c->rbuf + off, c->rlen - off, &used);
        off += used;
        if (e == BENCH_WS_NEED)
            break;
        if (e < 0) {
            send_close(cl, c, (uint16_t)-e);
            conn_fail(cl, c, BENCH_ERR_PROTOCOL);
            return;
        }
        if (e == BENCH_WS_DATA)
            on_data(cl, c);
        else
            on_control(cl, c);
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
}

/* A header's value when the line at p (up to eol) is `name: value`, else NULL. */
static const char *header_value(const char *p, const char *eol, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    if ((size_t)(eol - p) <= nl || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
        return NULL;
    const char *v = p + nl + 1, *e = eol;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *len = (size_t)(e - v);
    return v;
}

/* Reads the upgrade response. 1 when c is open, 0 when more bytes are needed, -1 on failure. */
static int conn_upgrade(struct wclient *cl, struct wconn *c)
{
    const char *p = (const char *)c->rbuf;
    const char *end = memmem(p, c->rlen, "\r\n\r\n", 4);
    if (!end) {
        if (c->rlen == RBUF_SIZE) {
            conn_fail(cl, c, BENCH_ERR_PROTOCOL);
            return -1;
        }
        return 0;
    }
    size_t head = (size_t)(end - p) + 4;
    int ok = head >= 14 && memcmp(p, "HTTP/1.1 101", 12) == 0 && (p[12] == ' ' || p[12] == '\r');
    int accepted = 0;
    for (const char *line = memchr(p, '\n', head); ok && line && line + 1 < end;) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end + 2 - line));
        size_t vlen;
        const char *v = header_value(line, eol, "Sec-WebSocket-Accept", &vlen);
        if (v && vlen == WS_ACCEPT_LEN && memcmp(v, cl->accept, vlen) == 0)
            accepted = 1;
        line = eol;
    }
    if (!ok || !accepted) {
        conn_fail(cl, c, BENCH_ERR_PROTOCOL);
        return -1;
    }
    memmove(c->rbuf, c->rbuf + head, c->rlen - head);
    c->rlen -= head;
    c->state = C_OPEN;
    return 1;
}

static void conn_read(struct wclient *cl, struct wconn *c)
{
    while (c->state == C_UPGRADING || c->state == C_OPEN) {
        size_t room = RBUF_SIZE - c->rlen;
        ssize_t n = read(c->fd, c->rbuf + c->rlen, room);
        if (n > 0) {
            c->rlen += (size_t)n;
            if (c->state == C_UPGRADING && conn_upgrade(cl, c) == 0)
                continue;
            if (c->state == C_OPEN)
                conn_frames(cl, c);
            /* A short read emptied the socket: epoll (level-triggered) reports what comes next,
             * so the read that would only say EAGAIN is saved, half the calls per delivery. */
            if ((size_t)n < room)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_fail(cl, c, BENCH_ERR_READ);
        return;
    }
}

static void conn_event(struct wclient *cl, struct wconn *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            conn_fail(cl, c, BENCH_ERR_CONNECT);
            return;
        }
        c->state = C_UPGRADING;
    }
    if (c->out_off < c->out_len && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        if (conn_flush(cl, c) < 0)
            return;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(cl, c);
    if (c->state != C_DEAD)
        conn_events(cl, c);
}

static void scan(struct wclient *cl, uint64_t now)
{
    if (!cl->go) {
        for (int i = 0; i < cl->n; i++) {
            struct wconn *c = &cl->conns[i];
            check_ready(cl, c);
            if (now < cl->setup_deadline || c->ready || c->state == C_DEAD)
                continue;
            /* Joined, but the room never showed every member (someone left): go anyway. */
            if (c->joined && c->state == C_OPEN)
                arrive(cl, c);
            else
                conn_fail(cl, c, BENCH_ERR_TIMEOUT);
        }
    }
    if (cl->snd && cl->go && !cl->snd_done && cl->inflight && now >= cl->inflight_deadline) {
        /* The sender's copy never came: a timeout. Subscribers still missing this message are
         * counted when the run drains. */
        if (!cl->own_back)
            cl->w->errors[BENCH_ERR_TIMEOUT]++;
        cl->inflight = 0;
        sender_next(cl, now);
    }
}

/* 1 when this worker is finished: the sender is done and the deliveries are in (or late). */
static int client_done(struct wclient *cl, uint64_t now)
{
    if (!cl->go)
        return 0;
    if (!cl->draining) {
        if (!__atomic_load_n(&cl->sync->sender_done, __ATOMIC_ACQUIRE))
            return 0;
        cl->draining = 1;
        cl->expect = cl->sync->expect;
        cl->drain_deadline = cl->sync->done_us + cl->t->timeout_us;
        for (int i = 0; i < cl->n; i++)
            if (!cl->conns[i].is_sender && cl->conns[i].state != C_DEAD)
                cl->need += missing(cl, &cl->conns[i]);
    }
    if (cl->need == 0)
        return 1;
    if (now >= cl->drain_deadline) {
        cl->w->errors[BENCH_ERR_TIMEOUT] += cl->need;
        return 1;
    }
    return 0;
}

static void client_loop(struct wclient *cl)
{
    struct epoll_event evs[MAX_EVENTS];
    uint64_t last_scan = bench_now_us();
    for (;;) {
        uint64_t now = bench_now_us();
        if (!cl->go)
            barrier(cl, now);
        if (now - last_scan >= SCAN_US) {
            scan(cl, now);
            last_scan = now;
        }
        if (cl->go && cl->snd && !cl->snd_done && cl->w->mode == BENCH_OPEN)
            sender_issue(cl, now);
        if (client_done(cl, now))
            return;
        int n = epoll_wait(cl->ep, evs, MAX_EVENTS, (cl->go ? SCAN_US : BARRIER_US) / 1000);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t ticks;
                if (read(cl->tfd, &ticks, sizeof ticks) < 0)
                    continue; /* EAGAIN: the timer was re-armed since it fired */
                continue;
            }
            if (evs[i].data.ptr == &wake_tag) {
                uint64_t v;
                if (read(cl->sync->wake_fd, &v, sizeof v) > 0 && cl->snd && !cl->snd_done)
                    sender_check(cl, bench_now_us());
                continue;
            }
            struct wconn *c = evs[i].data.ptr;
            if (c->state != C_DEAD)
                conn_event(cl, c, evs[i].events);
        }
    }
}

/* The Sec-WebSocket-Accept for the key in the upgrade request. 0, or -1 without one. */
static int expected_accept(const struct bench_target *t, char out[WS_ACCEPT_LEN + 1])
{
    static const char name[] = "\r\nSec-WebSocket-Key:";
    const char *k = memmem(t->request, t->request_len, name, sizeof name - 1);
    if (!k)
        return -1;
    k += sizeof name - 1;
    while (*k == ' ')
        k++;
    return ws_accept_key(k, strcspn(k, " \r\n"), out);
}

int bench_ws_worker_run(struct bench_worker *w)
{
    struct wclient cl = {.w = w, .t = w->t, .sync = w->sync, .n = w->conns, .ep = -1, .tfd = -1};
    int rc = -1;
    if (expected_accept(cl.t, cl.accept) < 0) {
        snprintf(w->fail, sizeof w->fail, "ws:// upgrade request without a WebSocket key");
        goto out;
    }
    cl.conns = calloc((size_t)(cl.n ? cl.n : 1), sizeof *cl.conns);
    cl.ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; cl.conns && i < cl.n; i++)
        cl.conns[i].fd = -1;
    if (!cl.conns || cl.ep < 0) {
        snprintf(w->fail, sizeof w->fail, "out of memory or descriptors");
        goto out;
    }
    cl.rng = cl.sync->run_id ^ ((uint64_t)(uintptr_t)w * 0x9e3779b97f4a7c15ull) ^ 1;
    cl.frame_max = bench_ws_chat_frame_max(cl.t->msg_size);
    if (w->sender) {
        cl.snd = &cl.conns[0];
        cl.snd->is_sender = 1;
    }
    if (w->sender && cl.sync->wake_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &wake_tag};
        if (epoll_ctl(cl.ep, EPOLL_CTL_ADD, cl.sync->wake_fd, &ev) < 0) {
            snprintf(w->fail, sizeof w->fail, "epoll_ctl: %s", strerror(errno));
            goto out;
        }
    }
    if (w->sender && w->mode == BENCH_OPEN) {
        cl.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (cl.tfd < 0 || epoll_ctl(cl.ep, EPOLL_CTL_ADD, cl.tfd, &ev) < 0) {
            snprintf(w->fail, sizeof w->fail, "timerfd: %s", strerror(errno));
            goto out;
        }
        /* The default 50 us timer slack would show up as latency in the corrected figures. */
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    }
    cl.setup_deadline = bench_now_us() + cl.t->timeout_us;
    for (int i = 0; i < cl.n; i++)
        conn_open(&cl, &cl.conns[i]);
    client_loop(&cl);
    rc = 0;
out:
    for (int i = 0; cl.conns && i < cl.n; i++) {
        struct wconn *c = &cl.conns[i];
        if (c->state == C_OPEN)
            send_close(&cl, c, WS_CLOSE_NORMAL);
        if (c->fd >= 0)
            close(c->fd);
        bench_ws_rx_fini(&c->rx);
        free(c->out);
    }
    if (rc < 0) {
        /* The other workers must not wait for connections that never opened. */
        __atomic_add_fetch(&w->sync->failed, cl.n, __ATOMIC_RELEASE);
        __atomic_add_fetch(&w->sync->arrived, cl.n, __ATOMIC_RELEASE);
        if (w->sender)
            sender_finish(&cl, bench_now_us(), 0);
    }
    if (cl.tfd >= 0)
        close(cl.tfd);
    if (cl.ep >= 0)
        close(cl.ep);
    free(cl.conns);
    return rc;
}
