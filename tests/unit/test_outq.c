/* Unit tests for core/outq: building the queue (buffers, static bytes, appends, reserve and
 * commit), byte accounting, tail coalescing, and writing to a real non-blocking socketpair:
 * many slices in order across the iovec limit, backpressure and resumption, file slices through
 * sendfile, clearing, and the error path when the peer is gone; over real TCP, the last bytes
 * before a close held back by MSG_MORE and sent with the FIN by close or shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/outq.h"
#include "tcp_pair.h"

struct fixture {
    struct fpool slices;
    struct buf_pool bufs;
    struct outq_pools pp;
    struct outq q;
    int sv[2]; /* sv[0]: the queue writes here; sv[1]: the test reads here */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    fpool_init(&f->slices, sizeof(struct slice), 64);
    buf_pool_init(&f->bufs, 16);
    f->pp.slices = &f->slices;
    f->pp.bufs = &f->bufs;
    outq_init(&f->q);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, f->sv) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    outq_clear(&f->q, &f->pp);
    /* Every test leaves nothing behind in the pools. */
    int leaked = f->slices.live != 0 || f->bufs.live != 0;
    if (f->sv[0] >= 0)
        close(f->sv[0]);
    if (f->sv[1] >= 0)
        close(f->sv[1]);
    fpool_fini(&f->slices);
    buf_pool_fini(&f->bufs);
    free(f);
    return leaked ? -1 : 0;
}

/* Sum of the slices' lengths, which must always equal q->bytes. */
static size_t slice_bytes(const struct outq *q, size_t *count)
{
    size_t n = 0, c = 0;
    for (const struct slice *s = q->head; s; s = s->next) {
        n += s->len;
        c++;
    }
    if (count)
        *count = c;
    return n;
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

/* Reads whatever the peer has, appending to out (growing), until EAGAIN. */
static size_t drain_peer(int fd, char *out, size_t have, size_t cap)
{
    for (;;) {
        assert_true(have <= cap);
        char tmp[65536];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            return have;
        }
        assert_true(n > 0);
        assert_true(have + (size_t)n <= cap);
        memcpy(out + have, tmp, (size_t)n);
        have += (size_t)n;
    }
}

/* Writes until the queue is empty, reading from the peer whenever it blocks. Returns the bytes
 * received; *blocked counts the OUTQ_BLOCKED results. */
static size_t write_all(struct fixture *f, char *out, size_t cap, int *blocked)
{
    size_t got = 0, total = f->q.bytes;
    int rounds = 0;
    *blocked = 0;
    for (;;) {
        size_t before = f->q.bytes, sent = 12345;
        int rc = outq_write(&f->q, &f->pp, f->sv[0], 0, &sent);
        assert_true(rc == OUTQ_DONE || rc == OUTQ_BLOCKED);
        assert_int_equal(f->q.bytes, before - sent);
        assert_int_equal(slice_bytes(&f->q, NULL), f->q.bytes);
        got = drain_peer(f->sv[1], out, got, cap);
        assert_int_equal(got, total - f->q.bytes);
        if (rc == OUTQ_DONE) {
            assert_true(outq_empty(&f->q));
            assert_int_equal(f->q.bytes, 0);
            assert_null(f->q.tail);
            return got;
        }
        (*blocked)++;
        assert_true(++rounds < 100000);
    }
}

static void fill_pattern(char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (seed + i * 7 + i / 251) % 26);
}

/* ---- building the queue ---- */

static void test_push_buf_extends_contiguous_tail(void **state)
{
    struct fixture *f = *state;
    struct buf *b = buf_get(&f->bufs);
    memcpy(b->data, "hello world", 11);
    b->len = 11;
    assert_int_equal(outq_push_buf(&f->q, &f->pp, b, b->data, 5), 0);
    assert_int_equal(b->refs, 2);
    /* Contiguous in the same buffer: the tail slice grows, no new reference. */
    assert_int_equal(outq_push_buf(&f->q, &f->pp, b, b->data + 5, 6), 0);
    assert_int_equal(b->refs, 2);
    assert_ptr_equal(f->q.head, f->q.tail);
    assert_int_equal(f->q.head->len, 11);
    assert_int_equal(f->q.bytes, 11);
    /* Not contiguous: a second slice and a second reference. */
    assert_int_equal(outq_push_buf(&f->q, &f->pp, b, b->data, 5), 0);
    assert_int_equal(b->refs, 3);
    assert_ptr_not_equal(f->q.head, f->q.tail);
    assert_int_equal(f->q.bytes, 16);
    /* Zero bytes: nothing at all. */
    assert_int_equal(outq_push_buf(&f->q, &f->pp, b, b->data + 5, 0), 0);
    assert_int_equal(b->refs, 3);
    assert_int_equal(f->q.bytes, 16);
    assert_int_equal(f->slices.live, 2);
    size_t count;
    assert_int_equal(slice_bytes(&f->q, &count), 16);
    assert_int_equal(count, 2);

    buf_unref(b);
    outq_clear(&f->q, &f->pp);
    assert_int_equal(f->bufs.live, 0);
    assert_int_equal(f->slices.live, 0);
    assert_true(outq_empty(&f->q));
    assert_int_equal(f->q.bytes, 0);
}

static void test_push_static(void **state)
{
    struct fixture *f = *state;
    static const char a[] = "HTTP/1.1 200 OK\r\n", b[] = "\r\n";
    assert_int_equal(outq_push_static(&f->q, &f->pp, a, sizeof a - 1), 0);
    assert_int_equal(outq_push_static(&f->q, &f->pp, b, sizeof b - 1), 0);
    assert_int_equal(outq_push_static(&f->q, &f->pp, b, 0), 0);
    assert_int_equal(f->q.bytes, sizeof a - 1 + sizeof b - 1);
    assert_int_equal(f->q.head->kind, SLICE_STATIC);
    assert_ptr_equal(f->q.head->p, a);
    assert_int_equal(f->slices.live, 2);
    assert_int_equal(f->bufs.live, 0);

    size_t sent;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_DONE);
    assert_int_equal(sent, 19);
    char got[64];
    assert_int_equal(drain_peer(f->sv[1], got, 0, sizeof got), 19);
    assert_memory_equal(got, "HTTP/1.1 200 OK\r\n\r\n", 19);
    assert_int_equal(f->slices.live, 0);
}

static void test_append_coalesces_into_one_buffer(void **state)
{
    struct fixture *f = *state;
    char expect[2000];
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        char piece[16];
        int len = snprintf(piece, sizeof piece, "%d,", i);
        assert_int_equal(outq_append(&f->q, &f->pp, piece, (size_t)len), 0);
        memcpy(expect + n, piece, (size_t)len);
        n += (size_t)len;
    }
    /* Two hundred appends, one slice in one pooled buffer. */
    assert_ptr_equal(f->q.head, f->q.tail);
    assert_int_equal(f->slices.live, 1);
    assert_int_equal(f->bufs.live, 1);
    assert_int_equal(f->q.bytes, n);
    assert_int_equal(f->q.head->len, n);
    assert_int_equal(f->q.head->buf->len, n);
    assert_memory_equal(f->q.head->p, expect, n);

    /* A static slice in between ends the coalescing; the next append starts a new buffer. */
    assert_int_equal(outq_push_static(&f->q, &f->pp, "|", 1), 0);
    assert_int_equal(outq_append(&f->q, &f->pp, "tail", 4), 0);
    assert_int_equal(outq_append(&f->q, &f->pp, "more", 4), 0);
    assert_int_equal(f->slices.live, 3);
    assert_int_equal(f->bufs.live, 2);
    assert_int_equal(f->q.bytes, n + 9);
    memcpy(expect + n, "|tailmore", 9);

    size_t sent;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_DONE);
    assert_int_equal(sent, n + 9);
    char got[2000];
    assert_int_equal(drain_peer(f->sv[1], got, 0, sizeof got), n + 9);
    assert_memory_equal(got, expect, n + 9);
    /* Sent buffers went back to the pool. */
    assert_int_equal(f->bufs.live, 0);
    assert_int_equal(f->slices.live, 0);
}

static void test_append_larger_than_a_buffer(void **state)
{
    struct fixture *f = *state;
    size_t n = 2 * BUF_SIZE + 777;
    char *src = malloc(n), *got = malloc(n);
    fill_pattern(src, n, 3);
    assert_int_equal(outq_append(&f->q, &f->pp, src, 10), 0);
    assert_int_equal(outq_append(&f->q, &f->pp, src + 10, n - 10), 0);
    assert_int_equal(f->q.bytes, n);
    assert_int_equal(slice_bytes(&f->q, NULL), n);
    /* Pooled buffers only, none overfilled. (The 10-byte head buffer is not topped up before
     * the next chunk takes a new one: four buffers where three would do.) */
    assert_true(f->bufs.live >= 3 && f->bufs.live <= 4);
    for (const struct slice *s = f->q.head; s; s = s->next) {
        assert_true(s->len <= BUF_SIZE);
        assert_non_null(s->buf->pool);
    }

    int blocked;
    assert_int_equal(write_all(f, got, n, &blocked), n);
    assert_memory_equal(got, src, n);
    free(src);
    free(got);
}

static void test_reserve_commit(void **state)
{
    struct fixture *f = *state;
    char *p = outq_reserve(&f->q, &f->pp, 100);
    assert_non_null(p);
    assert_int_equal(f->q.bytes, 0);
    memcpy(p, "0123456789", 10);
    outq_commit(&f->q, 10);
    assert_int_equal(f->q.bytes, 10);
    /* The next reservation continues right after the committed bytes, in the same buffer. */
    char *p2 = outq_reserve(&f->q, &f->pp, 50);
    assert_ptr_equal(p2, p + 10);
    memcpy(p2, "abcdef", 6);
    outq_commit(&f->q, 3); /* commit fewer than reserved */
    assert_int_equal(f->q.bytes, 13);
    char *p3 = outq_reserve(&f->q, &f->pp, 1);
    assert_ptr_equal(p3, p + 13);
    outq_commit(&f->q, 0);
    assert_int_equal(f->bufs.live, 1);
    assert_int_equal(f->slices.live, 1);

    /* More than the tail buffer has left: a new buffer. */
    char *p4 = outq_reserve(&f->q, &f->pp, BUF_SIZE - 5);
    assert_non_null(p4);
    assert_true(p4 < p || p4 > p + BUF_SIZE);
    memset(p4, 'z', 5);
    outq_commit(&f->q, 5);
    assert_int_equal(f->bufs.live, 2);
    assert_int_equal(f->q.bytes, 18);

    /* More than BUF_SIZE at once: one malloc'd buffer outside the pool. */
    char *p5 = outq_reserve(&f->q, &f->pp, BUF_SIZE + 100);
    assert_non_null(p5);
    assert_null(f->q.tail->buf->pool);
    memset(p5, 'Q', BUF_SIZE + 100);
    outq_commit(&f->q, BUF_SIZE + 100);
    assert_int_equal(f->bufs.live, 2);
    assert_int_equal(f->q.bytes, 18 + BUF_SIZE + 100);

    char *got = malloc(f->q.bytes);
    size_t total = f->q.bytes;
    int blocked;
    assert_int_equal(write_all(f, got, total, &blocked), total);
    assert_memory_equal(got, "0123456789abczzzzz", 18);
    for (size_t i = 18; i < total; i++)
        assert_int_equal(got[i], 'Q');
    free(got);
}

static void test_reserve_does_not_write_into_a_shared_tail(void **state)
{
    struct fixture *f = *state;
    /* The tail is a buffer the caller still holds: the queue must not append into it. */
    struct buf *b = buf_get(&f->bufs);
    memcpy(b->data, "mine", 4);
    b->len = 4;
    assert_int_equal(outq_push_buf(&f->q, &f->pp, b, b->data, 4), 0);
    assert_int_equal(outq_append(&f->q, &f->pp, "more", 4), 0);
    assert_int_equal(b->len, 4);
    assert_int_equal(f->bufs.live, 2);
    assert_ptr_not_equal(f->q.tail->buf, b);

    /* A shared (read-only) buffer as the tail, even with its last reference in the queue. */
    struct buf *s = buf_new_shared(64);
    memcpy(s->data, "frame", 5);
    s->len = 5;
    assert_int_equal(outq_push_buf(&f->q, &f->pp, s, s->data, 5), 0);
    buf_unref(s);
    assert_int_equal(s->refs, 1);
    assert_int_equal(outq_append(&f->q, &f->pp, "x", 1), 0);
    assert_int_equal(s->len, 5);
    assert_ptr_not_equal(f->q.tail->buf, s);

    size_t sent;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_DONE);
    char got[32];
    assert_int_equal(drain_peer(f->sv[1], got, 0, sizeof got), 14);
    assert_memory_equal(got, "minemoreframex", 14);
    assert_int_equal(b->refs, 1);
    buf_unref(b);
}

static void test_empty_reservation_is_dropped(void **state)
{
    struct fixture *f = *state;
    /* A reservation committed with nothing leaves an empty slice; writing drops it. */
    assert_non_null(outq_reserve(&f->q, &f->pp, 10));
    outq_commit(&f->q, 0);
    assert_false(outq_empty(&f->q));
    assert_int_equal(f->q.bytes, 0);
    size_t sent = 99;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_DONE);
    assert_int_equal(sent, 0);
    assert_true(outq_empty(&f->q));
    assert_int_equal(f->bufs.live, 0);
    assert_int_equal(f->slices.live, 0);

    /* Between two static slices, before a file slice too. */
    assert_int_equal(outq_push_static(&f->q, &f->pp, "ab", 2), 0);
    assert_non_null(outq_reserve(&f->q, &f->pp, 10));
    outq_commit(&f->q, 0);
    assert_int_equal(outq_push_static(&f->q, &f->pp, "cd", 2), 0);
    assert_non_null(outq_reserve(&f->q, &f->pp, 10));
    outq_commit(&f->q, 0);
    char tmpl[] = "/tmp/weft-outq-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    unlink(tmpl);
    assert_int_equal(write(fd, "efgh", 4), 4);
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd, 0, 4), 0);
    assert_int_equal(f->q.bytes, 8);
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_DONE);
    assert_int_equal(sent, 8);
    char got[16];
    assert_int_equal(drain_peer(f->sv[1], got, 0, sizeof got), 8);
    assert_memory_equal(got, "abcdefgh", 8);
    assert_false(fd_is_open(fd));
}

/* ---- writing ---- */

#define MANY_SLICES 3000

static void test_write_many_slices_in_order(void **state)
{
    struct fixture *f = *state;
    /* A big send buffer so everything fits: one outq_write call must cross OUTQ_IOV_MAX. */
    int sz = 4 << 20;
    setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(f->sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);

    enum { NBUFS = 8 };
    struct buf *bufs[NBUFS];
    for (int i = 0; i < NBUFS; i++) {
        bufs[i] = buf_get(&f->bufs);
        fill_pattern(bufs[i]->data, BUF_SIZE, (uint32_t)i * 31);
        bufs[i]->len = BUF_SIZE;
    }
    static char stat[256];
    fill_pattern(stat, sizeof stat, 99);
    char *expect = malloc(MANY_SLICES * 64);
    size_t n = 0;
    uint32_t refs[NBUFS] = {0};
    /* Alternate buffer and static slices, never contiguous, so none coalesce. */
    for (int i = 0; i < MANY_SLICES; i++) {
        size_t len = 1 + (size_t)(i * 13) % 31;
        if (i % 2 == 0) {
            struct buf *b = bufs[(i / 2) % NBUFS];
            refs[(i / 2) % NBUFS]++;
            size_t off = (size_t)(i * 37) % (BUF_SIZE - 64);
            assert_int_equal(outq_push_buf(&f->q, &f->pp, b, b->data + off, len), 0);
            memcpy(expect + n, b->data + off, len);
        } else {
            size_t off = (size_t)i % 200;
            assert_int_equal(outq_push_static(&f->q, &f->pp, stat + off, len), 0);
            memcpy(expect + n, stat + off, len);
        }
        n += len;
    }
    size_t count;
    assert_int_equal(slice_bytes(&f->q, &count), n);
    assert_int_equal(count, MANY_SLICES);
    assert_int_equal(f->q.bytes, n);
    for (int i = 0; i < NBUFS; i++)
        assert_int_equal(bufs[i]->refs, 1 + refs[i]);

    size_t sent = 0;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_DONE);
    assert_int_equal(sent, n);
    assert_true(outq_empty(&f->q));
    char *got = malloc(n);
    assert_int_equal(drain_peer(f->sv[1], got, 0, n), n);
    assert_memory_equal(got, expect, n);
    /* Every slice's reference was dropped. */
    for (int i = 0; i < NBUFS; i++) {
        assert_int_equal(bufs[i]->refs, 1);
        buf_unref(bufs[i]);
    }
    assert_int_equal(f->slices.live, 0);
    free(expect);
    free(got);
}

static void shrink_sndbuf(int fd)
{
    int sz = 4096; /* the kernel doubles it and applies its minimum */
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
}

static void test_write_blocks_and_resumes(void **state)
{
    struct fixture *f = *state;
    shrink_sndbuf(f->sv[0]);
    /* Many small slices and big ones, so a short write stops in the middle of a slice. */
    size_t n = 600000;
    char *src = malloc(n), *got = malloc(n);
    fill_pattern(src, n, 5);
    size_t off = 0;
    int i = 0;
    while (off < n) {
        size_t len = i % 3 == 0 ? 5000 : 1 + (size_t)i % 97;
        if (len > n - off)
            len = n - off;
        if (i % 2 == 0)
            assert_int_equal(outq_push_static(&f->q, &f->pp, src + off, len), 0);
        else
            assert_int_equal(outq_append(&f->q, &f->pp, src + off, len), 0);
        off += len;
        i++;
    }
    assert_int_equal(f->q.bytes, n);

    /* Nobody reads: the first write fills the socket and reports it. */
    size_t sent = 0;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_BLOCKED);
    assert_true(sent > 0);
    assert_true(sent < n);
    assert_int_equal(f->q.bytes, n - sent);
    /* Still full: blocked again, nothing sent, nothing lost. */
    size_t again = 1;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &again), OUTQ_BLOCKED);
    assert_int_equal(again, 0);
    assert_int_equal(f->q.bytes, n - sent);

    size_t have = drain_peer(f->sv[1], got, 0, n);
    assert_int_equal(have, sent);
    int blocked;
    size_t rest = write_all(f, got + have, n - have, &blocked);
    assert_int_equal(have + rest, n);
    assert_true(blocked > 0);
    assert_memory_equal(got, src, n);
    free(src);
    free(got);
}

static int temp_file(const char *data, size_t n)
{
    char tmpl[] = "/tmp/weft-outq-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    unlink(tmpl);
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    return fd;
}

static void test_write_file_slice(void **state)
{
    struct fixture *f = *state;
    size_t flen = 100000;
    char *content = malloc(flen);
    fill_pattern(content, flen, 11);
    int fd = temp_file(content, flen);
    /* The file's own position must not matter: sendfile is given the offset. */
    lseek(fd, 17, SEEK_SET);

    assert_int_equal(outq_append(&f->q, &f->pp, "HEAD", 4), 0);
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd, 1000, 50000), 0);
    assert_int_equal(outq_push_static(&f->q, &f->pp, "TAIL", 4), 0);
    assert_int_equal(f->q.bytes, 50008);
    assert_int_equal(f->q.head->next->kind, SLICE_FILE);

    int sz = 1 << 20;
    setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    char *got = malloc(50008);
    int blocked;
    assert_int_equal(write_all(f, got, 50008, &blocked), 50008);
    assert_memory_equal(got, "HEAD", 4);
    assert_memory_equal(got + 4, content + 1000, 50000);
    assert_memory_equal(got + 50004, "TAIL", 4);
    /* The queue owned the descriptor and closed it when the slice was done. */
    assert_false(fd_is_open(fd));
    free(content);
    free(got);
}

static void test_write_file_slice_blocks_and_resumes(void **state)
{
    struct fixture *f = *state;
    shrink_sndbuf(f->sv[0]);
    size_t flen = 700000;
    char *content = malloc(flen);
    fill_pattern(content, flen, 23);
    int fd = temp_file(content, flen);
    size_t off = 12345, len = flen - off - 100;
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd, off, len), 0);

    size_t sent = 0;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_BLOCKED);
    assert_true(sent > 0 && sent < len);
    /* The slice's offset moved with what was sent. */
    assert_int_equal(f->q.head->off, off + sent);
    assert_int_equal(f->q.head->len, len - sent);
    assert_true(fd_is_open(fd));
    /* Still full: sendfile's EAGAIN is backpressure, not an error. */
    size_t again = 1;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &again), OUTQ_BLOCKED);
    assert_int_equal(again, 0);
    assert_int_equal(f->q.head->off, off + sent);

    char *got = malloc(len);
    size_t have = drain_peer(f->sv[1], got, 0, len);
    int blocked;
    size_t rest = write_all(f, got + have, len - have, &blocked);
    assert_int_equal(have + rest, len);
    assert_true(blocked > 0);
    assert_memory_equal(got, content + off, len);
    assert_false(fd_is_open(fd));
    free(content);
    free(got);
}

static void test_push_file_edge_cases(void **state)
{
    struct fixture *f = *state;
    /* Zero bytes: nothing queued, and the descriptor is still the queue's to close. */
    int fd = temp_file("x", 1);
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd, 0, 0), 0);
    assert_true(outq_empty(&f->q));
    assert_false(fd_is_open(fd));
    /* Too long for a slice: refused, and closed. */
    fd = temp_file("x", 1);
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd, 0, (uint64_t)UINT32_MAX + 1), -EFBIG);
    assert_true(outq_empty(&f->q));
    assert_false(fd_is_open(fd));
}

static void test_file_shorter_than_its_slice(void **state)
{
    struct fixture *f = *state;
    int fd = temp_file("short", 5);
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd, 0, 10), 0);
    size_t sent;
    int rc = outq_write(&f->q, &f->pp, f->sv[0], 0, &sent);
    /* Five bytes go, then the file ends: the response can't be completed. */
    if (rc == OUTQ_BLOCKED) {
        assert_int_equal(sent, 5);
        rc = outq_write(&f->q, &f->pp, f->sv[0], 0, &sent);
    }
    assert_int_equal(rc, -EIO);
    outq_clear(&f->q, &f->pp);
    assert_false(fd_is_open(fd));
}

static void test_clear_releases_everything(void **state)
{
    struct fixture *f = *state;
    struct buf *b = buf_get(&f->bufs);
    memset(b->data, 'b', 100);
    b->len = 100;
    assert_int_equal(outq_push_buf(&f->q, &f->pp, b, b->data, 50), 0);
    assert_int_equal(outq_push_static(&f->q, &f->pp, "s", 1), 0);
    assert_int_equal(outq_push_buf(&f->q, &f->pp, b, b->data + 50, 50), 0);
    assert_int_equal(outq_append(&f->q, &f->pp, "appended", 8), 0);
    int fd1 = temp_file("file one", 8), fd2 = temp_file("file two", 8);
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd1, 0, 8), 0);
    assert_int_equal(outq_append(&f->q, &f->pp, "x", 1), 0);
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd2, 2, 6), 0);
    assert_int_equal(b->refs, 3);
    assert_int_equal(f->bufs.live, 3);
    assert_int_equal(f->slices.live, 7);
    assert_int_equal(f->q.bytes, 50 + 1 + 50 + 8 + 8 + 1 + 6);

    outq_clear(&f->q, &f->pp);
    assert_true(outq_empty(&f->q));
    assert_null(f->q.tail);
    assert_int_equal(f->q.bytes, 0);
    assert_int_equal(b->refs, 1);
    assert_int_equal(f->bufs.live, 1); /* only the test's own reference */
    assert_int_equal(f->slices.live, 0);
    assert_false(fd_is_open(fd1));
    assert_false(fd_is_open(fd2));
    buf_unref(b);
    assert_int_equal(f->bufs.live, 0);

    /* The queue is usable again after a clear. */
    assert_int_equal(outq_append(&f->q, &f->pp, "ok", 2), 0);
    size_t sent;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_DONE);
    char got[4];
    assert_int_equal(drain_peer(f->sv[1], got, 0, sizeof got), 2);
    assert_memory_equal(got, "ok", 2);
}

static void test_clear_after_partial_write(void **state)
{
    struct fixture *f = *state;
    shrink_sndbuf(f->sv[0]);
    char *big = malloc(300000);
    fill_pattern(big, 300000, 1);
    assert_int_equal(outq_append(&f->q, &f->pp, big, 300000), 0);
    int fd = temp_file(big, 300000);
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd, 0, 300000), 0);
    size_t sent;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), OUTQ_BLOCKED);
    assert_true(f->bufs.live > 0);
    outq_clear(&f->q, &f->pp);
    assert_int_equal(f->bufs.live, 0);
    assert_int_equal(f->slices.live, 0);
    assert_false(fd_is_open(fd));
    free(big);
}

static void test_write_to_closed_peer_is_epipe(void **state)
{
    struct fixture *f = *state;
    signal(SIGPIPE, SIG_IGN);
    close(f->sv[1]);
    f->sv[1] = -1;
    assert_int_equal(outq_append(&f->q, &f->pp, "lost", 4), 0);
    size_t sent = 7;
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), -EPIPE);
    assert_int_equal(sent, 0);
    /* Nothing consumed: the caller decides, and clearing releases it. */
    assert_int_equal(f->q.bytes, 4);
    assert_int_equal(f->bufs.live, 1);

    /* A file slice at the head fails the same way. */
    outq_clear(&f->q, &f->pp);
    int fd = temp_file("file", 4);
    assert_int_equal(outq_push_file(&f->q, &f->pp, fd, 0, 4), 0);
    assert_int_equal(outq_write(&f->q, &f->pp, f->sv[0], 0, &sent), -EPIPE);
    assert_int_equal(sent, 0);
    outq_clear(&f->q, &f->pp);
    assert_false(fd_is_open(fd));
}

/* Reads until EOF (or 2 s without anything); returns the bytes read. */
static size_t read_to_eof(int fd, char *out, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read_within_2s(fd, out + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

enum end { END_CLOSE, END_SHUTDOWN, END_UNREAD };

/* What conn does before closing: the bytes go with MSG_MORE and wait in the kernel until the
 * close or shutdown sends them with the FIN; the peer gets them all. END_UNREAD: the peer sent
 * bytes we do not read, so close resets the connection and would drop ours; conn_close shuts
 * down first, which sends them. */
static void write_more_then_end(void **state, enum end end)
{
    struct fixture *f = *state;
    int cfd = -1, sfd = -1;
    assert_int_equal(tcp_pair(&cfd, &sfd), 0);
    if (end == END_UNREAD)
        assert_int_equal(write(cfd, "more", 4), 4);
    static const char body[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    assert_int_equal(outq_append(&f->q, &f->pp, body, sizeof body - 1), 0);
    size_t sent = 0;
    assert_int_equal(outq_write(&f->q, &f->pp, sfd, MSG_MORE, &sent), OUTQ_DONE);
    assert_int_equal(sent, sizeof body - 1);
    /* Held back: nothing reaches the peer before the end of the connection (Linux sends corked
     * bytes after ~200 ms anyway: look well before that). */
    char buf[256];
    usleep(2000);
    assert_int_equal(recv(cfd, buf, sizeof buf, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    if (end != END_CLOSE)
        assert_int_equal(shutdown(sfd, SHUT_WR), 0);
    if (end != END_SHUTDOWN)
        close(sfd);
    size_t got = read_to_eof(cfd, buf, sizeof buf);
    assert_int_equal(got, sizeof body - 1);
    assert_memory_equal(buf, body, got);
    if (end == END_SHUTDOWN)
        close(sfd);
    close(cfd);
}

static void test_write_more_then_close(void **state)
{
    write_more_then_end(state, END_CLOSE);
}

static void test_write_more_then_shutdown(void **state)
{
    write_more_then_end(state, END_SHUTDOWN);
}

static void test_write_more_then_close_with_unread_input(void **state)
{
    write_more_then_end(state, END_UNREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_buf_extends_contiguous_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_static, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_coalesces_into_one_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_larger_than_a_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_does_not_write_into_a_shared_tail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_reservation_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_many_slices_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_blocks_and_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_file_slice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_file_slice_blocks_and_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_file_edge_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_shorter_than_its_slice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_releases_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_after_partial_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_to_closed_peer_is_epipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_more_then_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_more_then_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_more_then_close_with_unread_input, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
