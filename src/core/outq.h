/* outq: a connection's output queue, a chain of slices written with writev (and sendfile for
 * file slices). A slice references a reference-counted buffer, static bytes that outlive the
 * queue, or a range of an open file whose descriptor the queue owns. Small writes are appended
 * to the tail buffer, so pipelined responses leave in one writev. */
#ifndef WEFT_CORE_OUTQ_H
#define WEFT_CORE_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/buf.h"

enum slice_kind { SLICE_BUF, SLICE_STATIC, SLICE_FILE };

struct slice {
    struct slice *next;
    struct buf *buf; /* SLICE_BUF: one reference held */
    const char *p;   /* SLICE_BUF, SLICE_STATIC: next byte to send */
    uint64_t off;    /* SLICE_FILE: file offset of the next byte */
    uint32_t len;    /* bytes left */
    int fd;          /* SLICE_FILE: closed when the slice is done */
    uint8_t kind;
};

/* Where a queue gets its slices and buffers from: the owning worker's pools. */
struct outq_pools {
    struct fpool *slices;
    struct buf_pool *bufs;
};

struct outq {
    struct slice *head, *tail;
    size_t bytes; /* unsent bytes, file ranges included */
};

#define OUTQ_IOV_MAX 1024 /* IOV_MAX on Linux: a longer queue goes out in batches */

static inline void outq_init(struct outq *q)
{
    q->head = q->tail = NULL;
    q->bytes = 0;
}

static inline int outq_empty(const struct outq *q)
{
    return q->head == NULL;
}

/* Appends len bytes of b starting at p and takes a reference to b. 0 or -ENOMEM. */
int outq_push_buf(struct outq *q, const struct outq_pools *pp, struct buf *b, const char *p,
                  size_t len);
/* Appends bytes that stay valid until sent (string literals, config). 0 or -ENOMEM. */
int outq_push_static(struct outq *q, const struct outq_pools *pp, const char *p, size_t len);
/* Appends len bytes of the open file fd from off; the queue closes fd when done (also on error). */
int outq_push_file(struct outq *q, const struct outq_pools *pp, int fd, uint64_t off, uint64_t len);
/* Returns room for n contiguous bytes at the tail (the tail buffer's free space or a new buffer);
 * outq_commit(q, k) then adds the first k <= n of them. NULL on ENOMEM. */
char *outq_reserve(struct outq *q, const struct outq_pools *pp, size_t n);
void outq_commit(struct outq *q, size_t n);
/* Copies bytes to the tail. 0 or -ENOMEM. */
int outq_append(struct outq *q, const struct outq_pools *pp, const void *data, size_t len);

enum outq_result { OUTQ_DONE = 0, OUTQ_BLOCKED = 1 };

/* Writes as much as the socket takes. Returns OUTQ_DONE when the queue is empty, OUTQ_BLOCKED
 * when the kernel's buffer is full, or -errno (EPIPE, ECONNRESET, ...). *sent gets the bytes
 * written. msg_flags 0 writes with writev (any fd); otherwise the bytes go with sendmsg and
 * those flags (a socket): MSG_MORE when the connection closes after them, so that the close (or
 * shutdown) sends them with its FIN in one segment. */
int outq_write(struct outq *q, const struct outq_pools *pp, int fd, int msg_flags, size_t *sent);

/* For a write issued elsewhere (io_uring): the leading byte slices as iovecs (at most max, none
 * when the head is a file range), *want their bytes; then outq_sent(q, n) once n were written. */
int outq_iov(const struct outq *q, struct iovec *iov, int max, size_t *want);
void outq_sent(struct outq *q, const struct outq_pools *pp, size_t n);

/* Drops everything unsent. */
void outq_clear(struct outq *q, const struct outq_pools *pp);

#endif
