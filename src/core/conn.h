/* conn: a connection: an fd, its state flags, a pooled input buffer (held only while bytes are
 * pending), an output queue and a protocol's callback table.
 *
 * The core reads (edge-triggered, until EAGAIN or a short read), or, where the poller receives
 * for it (io_uring), copies what each receive brought into the input buffer; it hands the bytes to
 * the protocol and writes the output queue at the end of the loop iteration. Past the high
 * watermark of unsent bytes it stops reading from that peer (or stops the receive); under the low
 * watermark it reads again. */
#ifndef WEFT_CORE_CONN_H
#define WEFT_CORE_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "core/outq.h"
#include "core/timer.h"

struct conn;
struct worker;

struct proto {
    const char *name;
    /* Bytes arrived: c->in->data[c->in_off .. c->in_len). Consume by advancing c->in_off.
     * Return 0, or -1 to close the connection at once. */
    int (*on_data)(struct conn *c);
    /* The peer will send no more. NULL: close once the output is sent. */
    void (*on_eof)(struct conn *c);
    /* c->timer fired. NULL: close. */
    void (*on_timeout)(struct conn *c);
    /* The output queue went under the low watermark (or empty). May be NULL. */
    void (*on_drain)(struct conn *c);
    /* Graceful shutdown began. NULL: close once the output is sent. */
    void (*on_shutdown)(struct conn *c);
    /* The connection is closing; free protocol state. May be NULL. */
    void (*on_close)(struct conn *c);
};

enum {
    CONN_READABLE = 1u << 0,  /* the kernel may hold unread bytes */
    CONN_WBLOCKED = 1u << 1,  /* the last write came up short: wait for EV_OUT */
    CONN_PAUSED = 1u << 2,    /* reading stopped by backpressure */
    CONN_HOLD = 1u << 3,      /* reading stopped by the protocol */
    CONN_EOF = 1u << 4,       /* read returned 0 */
    CONN_CLOSING = 1u << 5,   /* close once the output queue is empty */
    CONN_LINGER = 1u << 6,    /* write side shut; discarding input until EOF or a timeout */
    CONN_CLOSED = 1u << 7,    /* closed, freed at the end of the iteration */
    CONN_RDHUP = 1u << 8,     /* the peer shut its side: read until read() says 0 */
    CONN_UNREAD = 1u << 9,    /* the peer may still be sending (a refused body): linger */
    CONN_RPENDING = 1u << 10, /* a queued read (io_uring) into c->in is not back yet */
    CONN_WPENDING = 1u << 11, /* a queued write of the output queue's head is not back yet */
    CONN_RECV = 1u << 12,     /* the poller receives for us (EV_RECV): no reads of our own */
    CONN_RON = 1u << 13,      /* with CONN_RECV: we asked for the receive to run */
    CONN_CORKED = 1u << 14,   /* bytes written with MSG_MORE wait for our FIN (do_write) */
    CONN_QUIET = 1u << 15,    /* the peer said it sends nothing more (its last request) */
};

#define CONN_HIGH_WATERMARK (256u * 1024u)
#define CONN_LOW_WATERMARK (64u * 1024u)

struct conn {
    struct io io; /* first: the free list reuses these bytes */
    struct worker *w;
    const struct proto *proto;
    struct buf *in;
    uint32_t in_off, in_len;
    struct outq out;
    struct timer timer;
    struct deferred work; /* flush, resumed read, close */
    uint64_t id;          /* unique per worker; survives the free list (see conn_alive) */
    void *data;           /* the protocol's state */
    uint32_t flags;
    uint32_t writes;      /* writes that made progress, for send timeouts */
    uint32_t writes_mark; /* conn_send_progress() when the protocol last looked */
    uint8_t svc;
    struct conn *next_closed;
};

/* Wraps an accepted, non-blocking fd. NULL on ENOMEM (fd is then closed). */
struct conn *conn_open(struct worker *w, int fd, int svc, const struct proto *proto);
/* Closes at once, dropping unsent output. */
void conn_close(struct conn *c);
/* Stops reading and closes after the output queue is sent (with a lingering half-close so the
 * peer reads the last response before any reset). */
void conn_close_after_flush(struct conn *c);

/* Output: these queue bytes and schedule a flush at the end of the iteration. 0 or -ENOMEM. */
int conn_append(struct conn *c, const void *data, size_t len);
int conn_push_buf(struct conn *c, struct buf *b, const char *p, size_t len);
int conn_push_static(struct conn *c, const char *p, size_t len);
int conn_push_file(struct conn *c, int fd, uint64_t off, uint64_t len);
char *conn_reserve(struct conn *c, size_t n);
void conn_commit(struct conn *c, size_t n);
/* Schedules a flush (the conn_* writers above do it themselves). */
void conn_flush_later(struct conn *c);

/* Makes room for at least `want` bytes of input after the unconsumed ones (growing past the pool
 * size when a protocol needs a large body in one piece). 0 or -ENOMEM. */
int conn_in_reserve(struct conn *c, size_t want);

/* Protocol-driven read control (e.g. while a response is computed elsewhere). */
void conn_hold(struct conn *c);
void conn_resume(struct conn *c);

/* A token that changes when output moves: our writes, or the kernel sending what it holds
 * (a slow reader with large socket buffers drains them without a write of ours). */
uint32_t conn_send_progress(const struct conn *c);

/* Timeouts on the connection's own timer. */
void conn_timer_set(struct conn *c, uint64_t ms);
void conn_timer_cancel(struct conn *c);

/* Whether a connection remembered as (c, id) is still that same open connection. */
static inline int conn_alive(const struct conn *c, uint64_t id)
{
    return c->id == id && !(c->flags & CONN_CLOSED);
}

/* The fd's I/O callback, for listeners that accept into connections. */
void conn_io(struct io *io, uint32_t events);

#endif
