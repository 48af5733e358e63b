#include "core/outq.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static struct slice *slice_new(struct outq *q, const struct outq_pools *pp, enum slice_kind kind)
{
    struct slice *s = fpool_get(pp->slices);
    if (!s)
        return NULL;
    s->next = NULL;
    s->buf = NULL;
    s->p = NULL;
    s->off = 0;
    s->len = 0;
    s->fd = -1;
    s->kind = (uint8_t)kind;
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    return s;
}

static void slice_free(const struct outq_pools *pp, struct slice *s)
{
    if (s->kind == SLICE_BUF)
        buf_unref(s->buf);
    else if (s->kind == SLICE_FILE && s->fd >= 0)
        close(s->fd);
    fpool_put(pp->slices, s);
}

int outq_push_buf(struct outq *q, const struct outq_pools *pp, struct buf *b, const char *p,
                  size_t len)
{
    if (len == 0)
        return 0;
    /* Contiguous with the tail slice of the same buffer: extend it instead of adding one. */
    struct slice *t = q->tail;
    if (t && t->kind == SLICE_BUF && t->buf == b && t->p + t->len == p &&
        (uint64_t)t->len + len <= UINT32_MAX) {
        t->len += (uint32_t)len;
        q->bytes += len;
        return 0;
    }
    struct slice *s = slice_new(q, pp, SLICE_BUF);
    if (!s)
        return -ENOMEM;
    buf_ref(b);
    s->buf = b;
    s->p = p;
    s->len = (uint32_t)len;
    q->bytes += len;
    return 0;
}

int outq_push_static(struct outq *q, const struct outq_pools *pp, const char *p, size_t len)
{
    if (len == 0)
        return 0;
    struct slice *s = slice_new(q, pp, SLICE_STATIC);
    if (!s)
        return -ENOMEM;
    s->p = p;
    s->len = (uint32_t)len;
    q->bytes += len;
    return 0;
}

int outq_push_file(struct outq *q, const struct outq_pools *pp, int fd, uint64_t off, uint64_t len)
{
    if (len == 0 || len > UINT32_MAX) {
        close(fd);
        return len == 0 ? 0 : -EFBIG;
    }
    struct slice *s = slice_new(q, pp, SLICE_FILE);
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    s->fd = fd;
    s->off = off;
    s->len = (uint32_t)len;
    q->bytes += len;
    return 0;
}

char *outq_reserve(struct outq *q, const struct outq_pools *pp, size_t n)
{
    struct slice *t = q->tail;
    if (t && t->kind == SLICE_BUF && t->buf->pool && t->buf->refs == 1 &&
        t->p + t->len == t->buf->data + t->buf->len && t->buf->cap - t->buf->len >= n)
        return t->buf->data + t->buf->len;
    struct buf *b = buf_get_cap(pp->bufs, n);
    if (!b)
        return NULL;
    struct slice *s = slice_new(q, pp, SLICE_BUF);
    if (!s) {
        buf_unref(b);
        return NULL;
    }
    s->buf = b; /* the slice takes the reference buf_get_cap gave */
    s->p = b->data;
    return b->data;
}

void outq_commit(struct outq *q, size_t n)
{
    struct slice *t = q->tail;
    t->buf->len += (uint32_t)n;
    t->len += (uint32_t)n;
    q->bytes += n;
}

int outq_append(struct outq *q, const struct outq_pools *pp, const void *data, size_t len)
{
    const char *src = data;
    while (len > 0) {
        size_t chunk = len < BUF_SIZE ? len : BUF_SIZE;
        char *dst = outq_reserve(q, pp, chunk);
        if (!dst)
            return -ENOMEM;
        memcpy(dst, src, chunk);
        outq_commit(q, chunk);
        src += chunk;
        len -= chunk;
    }
    return 0;
}

/* Drops n sent bytes from the head of the queue. */
static void outq_consume(struct outq *q, const struct outq_pools *pp, size_t n)
{
    q->bytes -= n;
    while (n > 0 || (q->head && q->head->len == 0)) {
        struct slice *s = q->head;
        if (n < s->len) {
            s->len -= (uint32_t)n;
            if (s->kind == SLICE_FILE)
                s->off += n;
            else
                s->p += n;
            return;
        }
        n -= s->len;
        q->head = s->next;
        if (!q->head)
            q->tail = NULL;
        slice_free(pp, s);
    }
}

static ssize_t write_file_slice(struct slice *s, int fd)
{
    off_t off = (off_t)s->off;
    ssize_t n;
    do
        n = sendfile(fd, s->fd, &off, s->len);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return -EIO; /* the file shrank under us: the response can't be completed */
    return n < 0 ? -errno : n;
}

int outq_iov(const struct outq *q, struct iovec *iov, int max, size_t *want)
{
    int cnt = 0;
    *want = 0;
    for (struct slice *s = q->head; s && s->kind != SLICE_FILE && cnt < max; s = s->next) {
        if (s->len == 0)
            continue;
        iov[cnt].iov_base = (void *)s->p;
        iov[cnt].iov_len = s->len;
        *want += s->len;
        cnt++;
    }
    return cnt;
}

void outq_sent(struct outq *q, const struct outq_pools *pp, size_t n)
{
    outq_consume(q, pp, n);
}

int outq_write(struct outq *q, const struct outq_pools *pp, int fd, int msg_flags, size_t *sent)
{
    struct iovec iov[OUTQ_IOV_MAX];
    *sent = 0;
    while (q->head) {
        if (q->head->kind == SLICE_FILE) {
            /* A short sendfile may not mean a full socket (the file can end early): call
             * again, and let EAGAIN say the socket is full. */
            ssize_t n = write_file_slice(q->head, fd);
            if (n == -EAGAIN)
                return OUTQ_BLOCKED;
            if (n < 0)
                return (int)n;
            *sent += (size_t)n;
            outq_consume(q, pp, (size_t)n);
            continue;
        }
        size_t want;
        int cnt = outq_iov(q, iov, OUTQ_IOV_MAX, &want);
        if (cnt == 0) {
            outq_consume(q, pp, 0);
            continue;
        }
        ssize_t n;
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        do
            n = msg_flags ? sendmsg(fd, &m, msg_flags | MSG_NOSIGNAL) : writev(fd, iov, cnt);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return errno == EAGAIN ? OUTQ_BLOCKED : -errno;
        *sent += (size_t)n;
        outq_consume(q, pp, (size_t)n);
        if ((size_t)n < want)
            return OUTQ_BLOCKED; /* the socket is full */
    }
    return OUTQ_DONE;
}

void outq_clear(struct outq *q, const struct outq_pools *pp)
{
    while (q->head) {
        struct slice *s = q->head;
        q->head = s->next;
        slice_free(pp, s);
    }
    q->tail = NULL;
    q->bytes = 0;
}
