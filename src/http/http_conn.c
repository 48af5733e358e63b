/* The HTTP/1.1 protocol on a core connection: request framing, limits, timeouts, keep-alive,
 * pipelining in order, asynchronous answers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/worker.h"
#include "http/http.h"
#include "http/http_internal.h"

#define ACCESS_BUF 65536

static struct http_worker *hworker(const struct conn *c)
{
    return c->w->svc_state[c->svc];
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- access log ---- */

static void access_flush(struct deferred *d)
{
    struct http_worker *hw =
        (struct http_worker *)((char *)d - offsetof(struct http_worker, access_flush));
    if (hw->access_len && hw->access_fd >= 0) {
        ssize_t n = write(hw->access_fd, hw->access_buf, hw->access_len);
        (void)n; /* a full disk must not stop serving */
    }
    hw->access_len = 0;
}

static void access_log(struct conn *c, struct http_conn *hc, int status, uint64_t bytes,
                       uint64_t dur_us)
{
    struct http_worker *hw = hworker(c);
    if (hw->access_fd < 0)
        return;
    if (hw->access_len > ACCESS_BUF - 512)
        access_flush(&hw->access_flush);
    char peer[64] = "-";
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(c->io.fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof peer);
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, sizeof peer);
    }
    time_t now = (time_t)c->w->loop.wall_s;
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(hw->access_buf + hw->access_len, ACCESS_BUF - hw->access_len,
                     "%s %s %s \"%s\" %d %llu %.3fms\n", ts, service_names[c->svc], peer,
                     hc->line[0] ? hc->line : "-", status, (unsigned long long)bytes,
                     (double)dur_us / 1000.0);
    if (n > 0)
        hw->access_len += (size_t)n < ACCESS_BUF - hw->access_len ? (size_t)n : 0;
    loop_defer(&c->w->loop, &hw->access_flush, access_flush);
}

/* ---- per-connection state ---- */

static struct http_conn *state_get(struct conn *c)
{
    if (c->data)
        return c->data;
    struct http_conn *hc = fpool_get(&hworker(c)->states);
    if (!hc)
        return NULL;
    memset(hc, 0, sizeof *hc);
    hc->start_us = c->w->loop.now_us;
    hc->keep_alive = 1;
    c->data = hc;
    return hc;
}

static void state_put(struct conn *c)
{
    if (c->data) {
        fpool_put(&hworker(c)->states, c->data);
        c->data = NULL;
    }
}

static void request_reset(struct http_conn *hc, uint64_t now_us)
{
    hc->start_us = now_us;
    hc->prev_len = 0;
    hc->raw_used = hc->out_len = 0;
    hc->chunk_started = 0;
    hc->continue_sent = 0;
    hc->waiting = 0;
    hc->answered = 0;
    hc->after = NULL;
    hc->line[0] = '\0';
}

/* The keep-alive timeout; while a response is still being sent it is a send timeout that
 * progress renews (see http_timeout). */
static void idle_timer(struct conn *c)
{
    c->writes_mark = 0; /* checked against conn_send_progress() when the timer fires */
    conn_timer_set(c, (uint64_t)(c->w->cfg->http_keepalive_timeout * 1000));
}

/* After an asynchronous answer: back to reading the requests pipelined behind it. */
static void finish_async(struct conn *c, struct http_conn *hc)
{
    const struct config *cfg = c->w->cfg;
    hc->waiting = 0;
    if (!hc->keep_alive)
        return;
    if (c->in && c->in_len > c->in_off) {
        request_reset(hc, c->w->loop.now_us);
        conn_timer_set(c, (uint64_t)(cfg->http_head_timeout * 1000));
    } else if (c->flags & CONN_EOF) {
        conn_close_after_flush(c);
        return;
    } else {
        state_put(c);
        idle_timer(c);
    }
    conn_resume(c);
}

void http_request_done(struct conn *c, int status, uint64_t body_len)
{
    struct http_conn *hc = c->data;
    struct worker *w = c->w;
    uint64_t dur = mono_us() - hc->start_us;
    if (w->sync) {
        pthread_mutex_lock(&w->srv->sync_lock);
        metrics_request(&w->m->svc[c->svc], status, dur);
        pthread_mutex_unlock(&w->srv->sync_lock);
    } else {
        metrics_request(&w->m->svc[c->svc], status, dur);
    }
    access_log(c, hc, status, body_len, dur);
    hc->answered = 1;
    if (!hc->keep_alive)
        conn_close_after_flush(c);
    if (hc->waiting)
        finish_async(c, hc);
}

/* Answers a request that could not be parsed (or whose body was bad) and closes. */
static void refuse_request(struct conn *c, struct http_conn *hc, int status)
{
    static const char *const msgs[] = {"bad request", "request too large", "request timeout"};
    const char *msg = status == 408                                     ? msgs[2]
                      : status == 413 || status == 431 || status == 414 ? msgs[1]
                                                                        : msgs[0];
    hc->keep_alive = 0;
    hc->head_only = 0;
    c->flags |= CONN_UNREAD;
    struct http_exchange x = {.c = c};
    http_respond_error(&x, status, msg);
}

/* ---- reading requests ---- */

/* Makes room to read the rest of a request of `total` bytes (head + body) in one buffer. */
static int want_bytes(struct conn *c, size_t total)
{
    size_t have = c->in_len - c->in_off;
    if (total <= have)
        return 0;
    return conn_in_reserve(c, total - have);
}

static void note_line(struct http_conn *hc, const struct http_request *req, int logging)
{
    if (!logging)
        return;
    size_t m = req->method_name.n, t = req->target.n;
    if (m > 15)
        m = 15;
    if (m + 1 + t > sizeof hc->line - 1)
        t = sizeof hc->line - 2 - m;
    memcpy(hc->line, req->method_name.p, m);
    hc->line[m] = ' ';
    memcpy(hc->line + m + 1, req->target.p, t);
    hc->line[m + 1 + t] = '\0';
}

static int http_data(struct conn *c)
{
    struct worker *w = c->w;
    struct http_worker *hw = hworker(c);
    const struct config *cfg = w->cfg;
    for (;;) {
        struct http_conn *hc = state_get(c);
        if (!hc)
            return -1;
        if (hc->waiting) {
            conn_hold(c);
            return 0;
        }
        const char *p = c->in->data + c->in_off;
        size_t avail = c->in_len - c->in_off;
        struct http_request req;
        int n = http_parse_request(p, avail, hc->prev_len, cfg->http_max_head, &req);
        if (n == HTTP_PARSE_INCOMPLETE) {
            hc->prev_len = avail;
            return want_bytes(c, avail + 1) < 0 ? -1 : 0;
        }
        if (n < 0) {
            refuse_request(c, hc, -n);
            c->in_off = c->in_len;
            return 0;
        }
        const char *body = NULL;
        size_t body_len = 0, used = (size_t)n;
        if (req.chunked) {
            if (!hc->chunk_started) {
                http_chunked_init(&hc->chunk, cfg->http_max_body);
                hc->chunk_started = 1;
            }
            char *b = c->in->data + c->in_off + n;
            size_t in_used, out_len;
            int rc = http_chunked_decode(&hc->chunk, b + hc->raw_used, avail - n - hc->raw_used,
                                         &in_used, b + hc->out_len, &out_len);
            hc->raw_used += (uint32_t)in_used;
            hc->out_len += (uint32_t)out_len;
            if (rc < 0) {
                refuse_request(c, hc, -rc);
                c->in_off = c->in_len;
                return 0;
            }
            if (rc == HTTP_CHUNKED_MORE) {
                if (req.expect_continue && !hc->continue_sent) {
                    hc->continue_sent = 1;
                    conn_push_static(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                }
                /* Grow geometrically, and only once the room left is short: a large chunked
                 * body costs O(n), not O(n^2), also when it arrives in small pieces (the
                 * io_uring receives bring at most a provided buffer's worth each). */
                if (c->in->cap - c->in_len >= 4096)
                    return 0;
                return want_bytes(c, avail + (avail > 4096 ? avail : 4096)) < 0 ? -1 : 0;
            }
            body = b;
            body_len = hc->out_len;
            used += hc->raw_used;
        } else if (req.content_length > 0) {
            if ((uint64_t)req.content_length > cfg->http_max_body) {
                refuse_request(c, hc, 413);
                c->in_off = c->in_len;
                return 0;
            }
            size_t total = (size_t)n + (size_t)req.content_length;
            if (avail < total) {
                if (req.expect_continue && !hc->continue_sent) {
                    hc->continue_sent = 1;
                    conn_push_static(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                }
                return want_bytes(c, total) < 0 ? -1 : 0;
            }
            body = p + n;
            body_len = (size_t)req.content_length;
            used = total;
        }
        hc->keep_alive = req.keep_alive && !server_draining(w->srv);
        if (!req.keep_alive)
            c->flags |= CONN_QUIET;
        hc->http10 = req.minor_version == 0;
        hc->head_only = req.method == HTTP_HEAD;
        note_line(hc, &req, hw->access_fd >= 0);
        struct buf *in = c->in;
        buf_ref(in); /* the body stays valid even if the route queues it and we move on */
        c->in_off += (uint32_t)used;
        struct http_exchange x = {
            .c = c, .req = &req, .body = body, .body_len = body_len, .body_buf = in};
        hw->route(&x);
        buf_unref(in);
        if ((c->flags & CONN_CLOSED) || c->proto != &http_proto)
            return 0; /* closed, or upgraded: the HTTP state is gone */
        if (hc->waiting) {
            conn_hold(c);
            return 0;
        }
        if (!hc->keep_alive || (c->flags & CONN_CLOSING))
            return 0;
        if (c->in_off == c->in_len) {
            state_put(c);
            idle_timer(c);
            return 0;
        }
        request_reset(hc, w->loop.now_us);
        conn_timer_set(c, (uint64_t)(cfg->http_head_timeout * 1000));
    }
}

/* Bytes of a new request after an idle keep-alive: the head timeout starts again. */
static int http_on_data(struct conn *c)
{
    if (!c->data)
        conn_timer_set(c, (uint64_t)(c->w->cfg->http_head_timeout * 1000));
    return http_data(c);
}

static void http_timeout(struct conn *c)
{
    struct http_conn *hc = c->data;
    if (hc && hc->waiting && hc->after) {
        http_route_fn after = hc->after;
        hc->after = NULL;
        struct http_exchange x = {.c = c};
        after(&x);
        return;
    }
    if (hc && hc->waiting)
        return; /* an answer computed elsewhere (/block): its completion decides */
    /* Still sending a response: the connection is not idle while the peer keeps reading. */
    uint32_t progress;
    if (!outq_empty(&c->out) && (progress = conn_send_progress(c)) != c->writes_mark) {
        c->writes_mark = progress;
        conn_timer_set(c, (uint64_t)(c->w->cfg->http_keepalive_timeout * 1000));
        return;
    }
    /* A request half read: 408. Idle keep-alive: close quietly. */
    if (hc && !hc->waiting && c->in && c->in_len > c->in_off) {
        refuse_request(c, hc, 408);
        c->in_off = c->in_len;
        return;
    }
    conn_close(c);
}

static void http_eof(struct conn *c)
{
    struct http_conn *hc = c->data;
    /* The peer half-closed: answer what is pending, then close. */
    if (hc && hc->waiting)
        return;
    conn_close_after_flush(c);
}

static void http_shutdown(struct conn *c)
{
    struct http_conn *hc = c->data;
    if (hc && (hc->waiting || (c->in && c->in_len > c->in_off))) {
        hc->keep_alive = 0; /* in flight: finish it with Connection: close */
        return;
    }
    if (outq_empty(&c->out))
        conn_close(c); /* idle keep-alive: nothing in flight */
    else
        conn_close_after_flush(c);
}

static void http_close(struct conn *c)
{
    state_put(c);
}

const struct proto http_proto = {
    .name = "http",
    .on_data = http_on_data,
    .on_eof = http_eof,
    .on_timeout = http_timeout,
    .on_shutdown = http_shutdown,
    .on_close = http_close,
};

void http_on_open(struct conn *c)
{
    conn_timer_set(c, (uint64_t)(c->w->cfg->http_head_timeout * 1000));
}

void http_on_reject(int fd)
{
    static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\nServer: weft\r\n"
                               "Content-Type: application/json\r\nContent-Length: 33\r\n"
                               "Connection: close\r\n\r\n{\"error\":\"too many connections\"}\n";
    ssize_t n = send(fd, resp, sizeof resp - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    shutdown(fd, SHUT_WR);
}

void *http_state_alloc(struct worker *w, int svc, size_t size)
{
    struct http_worker *hw = w->svc_state[svc];
    return size <= sizeof(struct http_conn) ? fpool_get(&hw->states) : NULL;
}

void http_state_free(struct worker *w, int svc, void *p)
{
    struct http_worker *hw = w->svc_state[svc];
    fpool_put(&hw->states, p);
}

void http_upgrade(struct http_exchange *x, const struct proto *p, void *data)
{
    struct conn *c = x->c;
    state_put(c);
    conn_timer_cancel(c);
    c->proto = p;
    c->data = data;
    c->flags &= ~CONN_QUIET; /* the new protocol's peer talks on ("Connection: close, Upgrade") */
    conn_flush_later(c);     /* frames sent right behind the handshake are read on the next pass */
}

/* ---- asynchronous answers ---- */

struct http_token http_defer(struct http_exchange *x)
{
    struct http_conn *hc = x->c->data;
    hc->waiting = 1;
    conn_timer_cancel(x->c);
    struct http_token t = {.c = x->c, .id = x->c->id, .head_only = hc->head_only};
    return t;
}

int http_resume(const struct http_token *t, struct http_exchange *x)
{
    if (!conn_alive(t->c, t->id))
        return -1;
    x->c = t->c;
    x->req = NULL;
    x->body = NULL;
    x->body_len = 0;
    x->body_buf = NULL;
    conn_resume(t->c);
    return 0;
}

void http_defer_timer(struct http_exchange *x, uint64_t ms, http_route_fn route_after)
{
    if (x->c->w->sync) {
        /* The sync models have no loop: the thread itself waits. */
        struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                              .tv_nsec = (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
        route_after(x);
        return;
    }
    struct http_conn *hc = x->c->data;
    http_defer(x);
    hc->after = route_after;
    /* From the clock now, not the iteration's start: a request read late in a long iteration
     * must not be answered early. */
    timer_set(&x->c->w->loop.timers, &x->c->timer, mono_us() + ms * 1000);
}

/* ---- helpers ---- */

int http_query_find(struct http_slice query, const char *name, struct http_slice *value)
{
    size_t nl = strlen(name);
    const char *q = query.p, *end = query.p + query.n;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *e = amp ? amp : end;
        if ((size_t)(e - q) > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            value->p = q + nl + 1;
            value->n = (size_t)(e - value->p);
            return 1;
        }
        q = amp ? amp + 1 : end;
    }
    return 0;
}

static int hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

int http_query_decode(struct http_slice s, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < s.n; i++) {
        int ch = (unsigned char)s.p[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (i + 2 >= s.n)
                return -1;
            int a = hex_digit((unsigned char)s.p[i + 1]), b = hex_digit((unsigned char)s.p[i + 2]);
            if (a < 0 || b < 0)
                return -1;
            ch = a * 16 + b;
            i += 2;
        }
        if (n + 1 >= outlen)
            return -1;
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    return (int)n;
}

int64_t http_query_uint(const struct http_request *req, const char *name)
{
    struct http_slice v;
    if (!http_query_find(req->query, name, &v) || v.n == 0 || v.n > 12)
        return -1;
    int64_t r = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        r = r * 10 + (v.p[i] - '0');
    }
    return r;
}

/* ---- service plumbing ---- */

int http_worker_init(struct worker *w, int svc, http_route_fn route)
{
    struct http_worker *hw = calloc(1, sizeof *hw);
    if (!hw)
        return -ENOMEM;
    hw->route = route;
    hw->svc = svc;
    hw->date_s = -1;
    hw->access_fd = -1;
    fpool_init(&hw->states, sizeof(struct http_conn), 256);
    const char *path = w->cfg->access_log;
    if (path[0]) {
        hw->access_fd = strcmp(path, "-") == 0
                            ? dup(STDOUT_FILENO)
                            : open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        hw->access_buf = malloc(ACCESS_BUF);
        if (hw->access_fd < 0 || !hw->access_buf) {
            log_error("access log %s: %s", path, strerror(errno));
            free(hw->access_buf);
            free(hw);
            return -EINVAL;
        }
    }
    w->svc_state[svc] = hw;
    return 0;
}

void http_worker_fini(struct worker *w, int svc)
{
    struct http_worker *hw = w->svc_state[svc];
    if (!hw)
        return;
    access_flush(&hw->access_flush);
    if (hw->access_fd >= 0)
        close(hw->access_fd);
    free(hw->access_buf);
    fpool_fini(&hw->states);
    free(hw);
    w->svc_state[svc] = NULL;
}
