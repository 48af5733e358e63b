#include "core/conn.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/worker.h"

#define READS_PER_TURN 16 /* then other connections get a turn */
#define LINGER_MS 2000

static void conn_work(struct deferred *d);

static void timer_fired(struct timer *t)
{
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));
    if (c->flags & CONN_LINGER) {
        conn_close(c);
        return;
    }
    if (c->proto->on_timeout)
        c->proto->on_timeout(c);
    else
        conn_close(c);
}

struct conn *conn_open(struct worker *w, int fd, int svc, const struct proto *proto)
{
    struct conn *c = fpool_get(&w->conns);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->io.fd = fd;
    c->io.fn = conn_io;
    c->w = w;
    c->proto = proto;
    c->in = NULL;
    c->in_off = c->in_len = 0;
    outq_init(&c->out);
    timer_init(&c->timer, timer_fired);
    c->work.queued = 0;
    c->work.next = NULL;
    c->id = w->next_conn_id++;
    c->data = NULL;
    c->flags = CONN_READABLE;
    c->writes = c->writes_mark = 0;
    c->svc = (uint8_t)svc;
    c->next_closed = NULL;
    /* Where the poller can, it receives for us from the start (no readiness, then a read). */
    uint32_t events = EV_IN | EV_OUT | EV_EDGE;
    if (loop_can_recv(&w->loop)) {
        events = EV_RECV | EV_OUT | EV_EDGE;
        c->flags |= CONN_RECV | CONN_RON;
    }
    /* TCP_NODELAY comes from the listener (net_listen). */
    if (w->loop.poller.ops && loop_add(&w->loop, &c->io, events) < 0) {
        close(fd);
        c->flags = CONN_CLOSED;
        fpool_put(&w->conns, c);
        return NULL;
    }
    /* No read now: registering reports bytes that arrived before it as an edge of their own. */
    return c;
}

static void release_input(struct conn *c)
{
    if (c->in) {
        buf_unref(c->in);
        c->in = NULL;
    }
    c->in_off = c->in_len = 0;
}

void conn_close(struct conn *c)
{
    if (c->flags & CONN_CLOSED)
        return;
    c->flags |= CONN_CLOSED;
    struct worker *w = c->w;
    if (c->proto->on_close)
        c->proto->on_close(c);
    loop_undefer(&w->loop, &c->work);
    loop_timer_cancel(&w->loop, &c->timer);
    /* A queued read or write names the fd and points into our buffers: issue it before both go
     * (it completes inside the submission; its completion is then dropped as stale). */
    if (c->flags & (CONN_RPENDING | CONN_WPENDING))
        loop_submit(&w->loop);
    loop_forget(&w->loop, &c->io);
    outq_clear(&c->out, &w->pools);
    release_input(c);
    /* Bytes held back for our FIN: shutdown sends them with it. close alone would drop them when
     * it resets the connection instead (input came that we did not read). */
    if (c->flags & CONN_CORKED)
        shutdown(c->io.fd, SHUT_WR);
    loop_close(&w->loop, &c->io); /* (with epoll, close also takes it out of the set) */
    c->io.fd = -1;
    worker_conn_closed(w, c);
}

/* Half-closes and keeps reading (and discarding) for a while, so the peer gets our last bytes
 * instead of a reset caused by input it sent that we never read. */
static void conn_linger(struct conn *c)
{
    /* Nothing the peer sent is left unread (the last read drained the socket, or it already
     * closed): close now, as nginx does; otherwise wait for the peer's FIN a little. */
    if ((c->flags & CONN_EOF) ||
        (!(c->flags & (CONN_READABLE | CONN_UNREAD)) && (!c->in || c->in_off == c->in_len))) {
        /* And the peer said it sends nothing more: the close itself sends the held bytes with
         * the FIN, without a half-close first (one system call less per connection). */
        if (c->flags & CONN_QUIET)
            c->flags &= ~CONN_CORKED;
        conn_close(c);
        return;
    }
    shutdown(c->io.fd, SHUT_WR);
    c->flags |= CONN_LINGER;
    c->flags &= ~(CONN_HOLD | CONN_PAUSED | CONN_CORKED);
    if (!(c->flags & CONN_RPENDING)) /* else when the read is back */
        release_input(c);
    loop_timer_set(&c->w->loop, &c->timer, LINGER_MS);
    loop_defer(&c->w->loop, &c->work, conn_work);
}

void conn_close_after_flush(struct conn *c)
{
    if (c->flags & (CONN_CLOSED | CONN_CLOSING))
        return;
    c->flags |= CONN_CLOSING;
    loop_defer(&c->w->loop, &c->work, conn_work);
}

void conn_flush_later(struct conn *c)
{
    loop_defer(&c->w->loop, &c->work, conn_work);
}

int conn_append(struct conn *c, const void *data, size_t len)
{
    conn_flush_later(c);
    return outq_append(&c->out, &c->w->pools, data, len);
}

int conn_push_buf(struct conn *c, struct buf *b, const char *p, size_t len)
{
    conn_flush_later(c);
    return outq_push_buf(&c->out, &c->w->pools, b, p, len);
}

int conn_push_static(struct conn *c, const char *p, size_t len)
{
    conn_flush_later(c);
    return outq_push_static(&c->out, &c->w->pools, p, len);
}

int conn_push_file(struct conn *c, int fd, uint64_t off, uint64_t len)
{
    conn_flush_later(c);
    return outq_push_file(&c->out, &c->w->pools, fd, off, len);
}

char *conn_reserve(struct conn *c, size_t n)
{
    return outq_reserve(&c->out, &c->w->pools, n);
}

void conn_commit(struct conn *c, size_t n)
{
    outq_commit(&c->out, n);
    conn_flush_later(c);
}

int conn_in_reserve(struct conn *c, size_t want)
{
    size_t pending = c->in ? c->in_len - c->in_off : 0;
    if (c->in && c->in->cap - c->in_len >= want)
        return 0;
    if (c->in && c->in->refs == 1 && c->in->cap - pending >= want) {
        memmove(c->in->data, c->in->data + c->in_off, pending);
    } else {
        struct buf *nb = buf_get_cap(&c->w->bufs, pending + want);
        if (!nb)
            return -ENOMEM;
        if (pending)
            memcpy(nb->data, c->in->data + c->in_off, pending);
        if (c->in)
            buf_unref(c->in);
        c->in = nb;
    }
    c->in_off = 0;
    c->in_len = (uint32_t)pending;
    c->in->len = c->in_len;
    return 0;
}

void conn_hold(struct conn *c)
{
    c->flags |= CONN_HOLD;
}

void conn_resume(struct conn *c)
{
    if (!(c->flags & CONN_HOLD))
        return;
    c->flags &= ~CONN_HOLD;
    /* Bytes already buffered (pipelined requests) are handed over again on the next pass. */
    loop_defer(&c->w->loop, &c->work, conn_work);
}

uint32_t conn_send_progress(const struct conn *c)
{
    int queued = 0;
    if (ioctl(c->io.fd, SIOCOUTQ, &queued) < 0)
        queued = 0;
    return c->writes * 2654435761u + (uint32_t)queued;
}

void conn_timer_set(struct conn *c, uint64_t ms)
{
    loop_timer_set(&c->w->loop, &c->timer, ms);
}

void conn_timer_cancel(struct conn *c)
{
    loop_timer_cancel(&c->w->loop, &c->timer);
}

/* Hands buffered input to the protocol; drops the buffer once all of it was consumed so that an
 * idle connection holds none. Returns -1 if the connection closed. */
static int deliver(struct conn *c)
{
    if (!c->in || c->in_off == c->in_len)
        return 0;
    if (c->proto->on_data(c) < 0) {
        conn_close(c);
        return -1;
    }
    if (c->flags & CONN_CLOSED)
        return -1;
    if (c->in && c->in_off == c->in_len)
        release_input(c);
    return 0;
}

static int reading_allowed(const struct conn *c)
{
    return !(c->flags & (CONN_PAUSED | CONN_HOLD | CONN_CLOSING | CONN_CLOSED | CONN_EOF));
}

static void do_linger_read(struct conn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = read(c->io.fd, sink, sizeof sink);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            c->flags &= ~CONN_READABLE;
            return;
        }
        conn_close(c);
        return;
    }
}

/* n bytes were added at the end of c->in: counts them and hands them over. Returns 1 if
 * reading may go on. */
static int got_input(struct conn *c, size_t n)
{
    c->in_len += (uint32_t)n;
    c->in->len = c->in_len;
    ctr_add(&c->w->m->svc[c->svc].bytes_received, (uint64_t)n);
    /* (Input may come after the protocol held or closed the connection: a queued read, or a
     * receive that was not stopped yet.) */
    if (!(c->flags & (CONN_HOLD | CONN_CLOSING)) && deliver(c) < 0)
        return 0;
    return 1;
}

/* Handles what a read into c->in returned (bytes, 0 at EOF, or -errno), synchronous or queued,
 * or what the poller's receive reported (0 or -errno). Returns 1 if reading may go on. */
static int read_result(struct conn *c, ssize_t n, size_t room)
{
    if (n > 0) {
        /* A short read drained the socket: the next byte brings a new edge. Not so for the
         * peer's FIN when it came with the same edge: read on to see the 0. */
        if ((size_t)n < room && !(c->flags & CONN_RDHUP))
            c->flags &= ~CONN_READABLE;
        return got_input(c, (size_t)n);
    }
    if (n == 0) {
        c->flags |= CONN_EOF;
        c->flags &= ~CONN_READABLE;
        if (c->in && c->in_off == c->in_len)
            release_input(c);
        if (c->flags & CONN_CLOSING)
            return 0; /* closes once the output is sent */
        if (c->proto->on_eof)
            c->proto->on_eof(c);
        else
            conn_close_after_flush(c);
        return 0;
    }
    if (n == -EINTR)
        return 1;
    if (n == -EAGAIN) {
        c->flags &= ~CONN_READABLE;
        if (c->in_off == c->in_len)
            release_input(c); /* an idle connection holds no buffer */
        return 0;
    }
    conn_close(c);
    return 0;
}

/* Reads while the kernel has bytes and the connection wants them. With io_uring the read is
 * queued (it leaves with the loop's next wait) and its result comes back in read_done. */
static void do_read(struct conn *c)
{
    struct worker *w = c->w;
    /* The kernel may still write into c->in: nothing moves or consumes it until then. */
    if (c->flags & CONN_RPENDING)
        return;
    /* Input left from an earlier turn (a partial request, or pipelined ones behind an answer
     * that came later) is offered again, unless the protocol holds it or is closing. */
    if (!(c->flags & (CONN_HOLD | CONN_CLOSING)) && deliver(c) < 0)
        return;
    if (c->flags & CONN_RECV) /* the bytes come to recv_data */
        return;
    for (int turn = 0; (c->flags & CONN_READABLE) && reading_allowed(c); turn++) {
        if (c->out.bytes >= CONN_HIGH_WATERMARK) {
            c->flags |= CONN_PAUSED;
            return;
        }
        if (turn == READS_PER_TURN) {
            loop_defer(&w->loop, &c->work, conn_work);
            return;
        }
        if (!c->in) {
            c->in = buf_get(&w->bufs);
            if (!c->in) {
                conn_close(c);
                return;
            }
            c->in_off = c->in_len = 0;
        } else if (c->in_len == c->in->cap) {
            if (conn_in_reserve(c, BUF_SIZE / 4) < 0) {
                conn_close(c);
                return;
            }
            if (c->in_len == c->in->cap) {
                c->flags |= CONN_HOLD; /* the protocol must consume or grow */
                return;
            }
        }
        size_t room = c->in->cap - c->in_len;
        if (loop_async(&w->loop) &&
            loop_read(&w->loop, &c->io, c->in->data + c->in_len, room) == 0) {
            c->flags |= CONN_RPENDING;
            return;
        }
        ssize_t n = read(c->io.fd, c->in->data + c->in_len, room);
        if (!read_result(c, n < 0 ? -errno : n, room))
            return;
    }
}

/* A queued read came back with res. */
static void read_done(struct conn *c, int32_t res)
{
    c->flags &= ~CONN_RPENDING;
    if (c->flags & CONN_LINGER) { /* discarding: the bytes don't matter, the end does */
        release_input(c);
        if (res == 0 || (res < 0 && res != -EAGAIN && res != -EINTR))
            conn_close(c);
        else if (res == -EAGAIN)
            c->flags &= ~CONN_READABLE;
        return;
    }
    read_result(c, res, c->in->cap - c->in_len);
}

/* The poller received for us (CONN_RECV): res bytes at data (copied: the poller's buffer goes
 * back to the kernel after this iteration), 0 at EOF, or -errno. more: the socket holds more. */
static void recv_data(struct conn *c, int32_t res, const char *data, int more)
{
    if (res > 0) {
        /* CONN_READABLE says whether the peer sent what we did not read yet (conn_linger). */
        c->flags = more ? c->flags | CONN_READABLE : c->flags & ~CONN_READABLE;
        if (c->flags & CONN_LINGER) /* discarding */
            return;
        /* Closing: nobody takes input any more, but the peer is still sending: linger rather
         * than reset it (bytes that came before the receive stopped). */
        if (c->flags & CONN_CLOSING) {
            c->flags |= CONN_UNREAD;
            return;
        }
        /* A full buffer grows geometrically: what arrives while the protocol holds its input (at
         * most what the receive brought before it stopped) is copied O(n) times, not O(n^2). */
        size_t want = (size_t)res, pending = c->in ? c->in_len - c->in_off : 0;
        if (c->in && c->in->cap - c->in_len < want && pending > want)
            want = pending;
        if (conn_in_reserve(c, want) < 0) {
            conn_close(c);
            return;
        }
        memcpy(c->in->data + c->in_len, data, (size_t)res);
        got_input(c, (size_t)res);
        return;
    }
    if (c->flags & CONN_LINGER) {
        conn_close(c);
        return;
    }
    read_result(c, res, 0);
}

/* CONN_RECV: the receive runs while the connection takes input, or discards it while lingering,
 * and is stopped otherwise (the backpressure: the kernel keeps what we do not take, and TCP slows
 * the peer down). */
static void recv_update(struct conn *c)
{
    int want = reading_allowed(c) || (c->flags & CONN_LINGER);
    if (want == ((c->flags & CONN_RON) != 0))
        return;
    if (loop_recv(&c->w->loop, &c->io, want) < 0) {
        conn_close(c);
        return;
    }
    c->flags ^= CONN_RON;
}

/* A queued write came back with res (short: fewer bytes than asked). */
static void write_done(struct conn *c, int32_t res, int short_write)
{
    struct worker *w = c->w;
    c->flags &= ~CONN_WPENDING;
    if (res > 0) {
        outq_sent(&c->out, &w->pools, (size_t)res);
        ctr_add(&w->m->svc[c->svc].bytes_sent, (uint64_t)res);
        c->writes++;
    }
    if (res == -EAGAIN || (res >= 0 && short_write))
        c->flags |= CONN_WBLOCKED;
    else if (res < 0 && res != -EINTR)
        conn_close(c);
}

static void do_write(struct conn *c)
{
    struct worker *w = c->w;
    if ((c->flags & (CONN_WBLOCKED | CONN_WPENDING)) || outq_empty(&c->out))
        return;
    /* The last bytes before a close: held back (MSG_MORE) until the shutdown that follows
     * (conn_linger, conn_close), which sends them with the FIN in one segment instead of two. */
    int more = 0;
    if (c->flags & CONN_CLOSING) {
        more = MSG_MORE;
        c->flags |= CONN_CORKED;
    }
    if (loop_async(&w->loop)) {
        /* The slices stay in the queue, referenced, until the write is back (write_done). */
        struct iovec iov[OUTQ_IOV_MAX];
        size_t want;
        int cnt = outq_iov(&c->out, iov, OUTQ_IOV_MAX, &want);
        if (cnt > 0 && loop_writev(&w->loop, &c->io, iov, cnt, more) == 0) {
            c->flags |= CONN_WPENDING;
            return;
        }
    }
    size_t sent = 0;
    int rc = outq_write(&c->out, &w->pools, c->io.fd, more, &sent);
    if (sent) {
        ctr_add(&w->m->svc[c->svc].bytes_sent, sent);
        c->writes++;
    }
    if (rc < 0) {
        conn_close(c);
        return;
    }
    if (rc == OUTQ_BLOCKED)
        c->flags |= CONN_WBLOCKED;
}

/* Applies the watermarks after output changed. */
static void watermarks(struct conn *c)
{
    size_t q = c->out.bytes;
    if (q >= CONN_HIGH_WATERMARK) {
        c->flags |= CONN_PAUSED;
    } else if ((c->flags & CONN_PAUSED) && q <= CONN_LOW_WATERMARK) {
        c->flags &= ~CONN_PAUSED;
        if (c->proto->on_drain)
            c->proto->on_drain(c);
    }
}

/* One turn for the connection: read what is readable, write what is queued, and close if it is
 * done. Runs from I/O events and from the deferred queue at the end of an iteration. */
static void conn_step(struct conn *c)
{
    if (c->flags & CONN_LINGER) {
        if (c->flags & CONN_RECV)
            recv_update(c);
        else if ((c->flags & CONN_READABLE) && !(c->flags & CONN_RPENDING))
            do_linger_read(c);
        return;
    }
    if (reading_allowed(c) || (c->in && !(c->flags & (CONN_HOLD | CONN_CLOSING))))
        do_read(c);
    if (c->flags & CONN_CLOSED)
        return;
    do_write(c);
    if (c->flags & CONN_CLOSED)
        return;
    watermarks(c);
    if (c->flags & CONN_CLOSED)
        return;
    if (outq_empty(&c->out)) {
        if (c->flags & CONN_CLOSING)
            conn_linger(c);
    } else if (!(c->flags & (CONN_WBLOCKED | CONN_WPENDING))) {
        loop_defer(&c->w->loop, &c->work, conn_work);
    }
    if ((c->flags & (CONN_RECV | CONN_CLOSED)) == CONN_RECV)
        recv_update(c);
}

static void conn_work(struct deferred *d)
{
    struct conn *c = (struct conn *)((char *)d - offsetof(struct conn, work));
    if (!(c->flags & CONN_CLOSED))
        conn_step(c);
}

void conn_io(struct io *io, uint32_t events)
{
    struct conn *c = (struct conn *)io;
    if (c->flags & CONN_CLOSED)
        return;
    if (events & EV_DATA) {
        recv_data(c, io->res, c->w->loop.rdata, (events & EV_RMORE) != 0);
        if (!(c->flags & CONN_CLOSED) && (events & EV_ERR))
            conn_close(c); /* the receive could not be re-armed */
        if (!(c->flags & CONN_CLOSED))
            conn_step(c);
        return;
    }
    if (events & (EV_RDONE | EV_WDONE)) {
        if (events & EV_RDONE)
            read_done(c, io->res);
        else
            write_done(c, io->res, (events & EV_WSHORT) != 0);
        if (!(c->flags & CONN_CLOSED))
            conn_step(c);
        return;
    }
    if (events & EV_ERR) {
        conn_close(c);
        return;
    }
    if (events & (EV_IN | EV_HUP))
        c->flags |= CONN_READABLE;
    if (events & EV_HUP)
        c->flags |= CONN_RDHUP;
    if (events & EV_OUT)
        c->flags &= ~CONN_WBLOCKED;
    conn_step(c);
}
