/* The io_uring poller (--io uring).
 *
 * Readiness: each registered fd has a poll request in the ring: multishot for EV_EDGE (a
 * completion per wake-up, like EPOLLET), one-shot re-armed after each report otherwise (a ready fd
 * reports again at once, like a level-triggered epoll entry). Reads and writes that the loop
 * queues (recv/send with MSG_DONTWAIT) leave with the next wait: one io_uring_enter per loop
 * iteration submits them all, runs them (a non-blocking socket operation completes inside the
 * submission: MSG_DONTWAIT makes the kernel return EAGAIN instead of waiting), and waits for the
 * next readiness or the next timer. Their results come back as EV_RDONE / EV_WDONE events.
 *
 * A poll request holds its file: a registered fd is closed only after forget() or del() queued
 * the removal, and the socket really goes when the removal is submitted (the next wait). */
#include "core/poll_uring.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/poller.h"

#define URING_ENTRIES 4096 /* submission queue; the completion queue is twice that */
#define URING_MSGS 1024    /* sendmsg headers queued per iteration at most */
#define URING_IOVS 8192    /* and their slices */

uint32_t uring_poll_mask(uint32_t events)
{
    uint32_t m = 0;
    if (events & EV_IN)
        m |= POLLIN | POLLRDHUP;
    if (events & EV_OUT)
        m |= POLLOUT;
    return m;
}

uint32_t uring_poll_events(uint32_t revents)
{
    uint32_t r = 0;
    if (revents & POLLIN)
        r |= EV_IN;
    if (revents & POLLOUT)
        r |= EV_OUT;
    if (revents & POLLERR)
        r |= EV_ERR;
    if (revents & (POLLHUP | POLLRDHUP))
        r |= EV_HUP;
    return r;
}

struct uring_fd {
    void *ptr;
    uint32_t gen; /* of the current registration (24 bits, see uring_ud) */
    uint32_t events;
    uint32_t wwant; /* bytes asked of the queued write */
    int live;
};

struct uring {
    struct io_uring ring;
    struct uring_fd *fds;
    size_t nfds;
    int enabled;
    uint32_t inflight; /* reads and writes queued whose completion was not seen yet */
    /* sendmsg headers and slices of this iteration's writes; reused once nothing is in flight */
    int nmsg, niov;
    struct msghdr msgs[URING_MSGS];
    struct iovec iovs[URING_IOVS];
};

/* The ring starts disabled and is enabled by the first wait: the worker thread that runs the
 * loop becomes its single issuer (the ring is made on the main thread). Not DEFER_TASKRUN: with it
 * a closed connection's socket sometimes stayed open (the cancelled poll request, which holds the
 * file, was not completed while the loop slept), so peers waited for our FIN (the chat e2e tests
 * saw it); COOP_TASKRUN still spares the interrupts. */
static const unsigned setup_flags[] = {
    IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
        IORING_SETUP_SINGLE_ISSUER,
    IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_R_DISABLED,
};

static int ur_open(struct poller *p)
{
    struct uring *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    int rc = -EINVAL;
    struct io_uring_params prm;
    for (size_t i = 0; i < sizeof setup_flags / sizeof setup_flags[0]; i++) {
        memset(&prm, 0, sizeof prm);
        prm.flags = setup_flags[i];
        rc = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &prm);
        if (rc == 0 || rc != -EINVAL)
            break;
    }
    if (rc < 0) {
        free(u);
        return rc;
    }
    /* The timed wait without a timeout request (5.11) and no dropped completions. */
    if (!(prm.features & IORING_FEAT_EXT_ARG) || !(prm.features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&u->ring);
        free(u);
        return -ENOSYS;
    }
    p->fd = u->ring.ring_fd;
    p->priv = u;
    return 0;
}

static void ur_close(struct poller *p)
{
    struct uring *u = p->priv;
    if (!u)
        return;
    io_uring_queue_exit(&u->ring);
    free(u->fds);
    free(u);
    p->priv = NULL;
    p->fd = -1;
}

static int ur_enable(struct uring *u)
{
    if (u->enabled)
        return 0;
    int rc = io_uring_register(u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    if (rc < 0)
        return rc == -1 ? -errno : rc;
    u->enabled = 1;
    return 0;
}

/* A free submission entry; a full queue is submitted first (not before the ring is enabled). */
static struct io_uring_sqe *sqe_get(struct uring *u)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&u->ring);
    if (!s && u->enabled) {
        io_uring_submit(&u->ring);
        s = io_uring_get_sqe(&u->ring);
    }
    return s;
}

static struct uring_fd *fd_entry(struct uring *u, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= u->nfds) {
        size_t n = u->nfds ? u->nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct uring_fd *f = realloc(u->fds, n * sizeof *f);
        if (!f)
            return NULL;
        memset(f + u->nfds, 0, (n - u->nfds) * sizeof *f);
        u->fds = f;
        u->nfds = n;
    }
    return &u->fds[fd];
}

static struct uring_fd *live_entry(struct uring *u, int fd)
{
    return fd >= 0 && (size_t)fd < u->nfds && u->fds[fd].live ? &u->fds[fd] : NULL;
}

static int arm(struct uring *u, int fd, const struct uring_fd *e)
{
    struct io_uring_sqe *s = sqe_get(u);
    if (!s)
        return -EBUSY;
    unsigned mask = uring_poll_mask(e->events);
    if (e->events & EV_EDGE)
        io_uring_prep_poll_multishot(s, fd, mask);
    else
        io_uring_prep_poll_add(s, fd, mask);
    io_uring_sqe_set_data64(s, uring_ud(fd, e->gen, URING_POLL));
    return 0;
}

/* Removes the current registration's poll; its completions are stale from now on. */
static void unregister(struct uring *u, int fd, struct uring_fd *e)
{
    struct io_uring_sqe *s = sqe_get(u);
    if (s) {
        io_uring_prep_poll_remove(s, uring_ud(fd, e->gen, URING_POLL));
        io_uring_sqe_set_data64(s, uring_ud(fd, e->gen, URING_REMOVE));
        s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
    e->gen = (e->gen + 1) & 0xffffffu;
    e->live = 0;
}

static int ur_add(struct poller *p, int fd, uint32_t events, void *ptr)
{
    struct uring *u = p->priv;
    struct uring_fd *e = fd_entry(u, fd);
    if (!e)
        return fd < 0 ? -EBADF : -ENOMEM;
    if (e->live) /* closed without del or forget: drop the old registration */
        unregister(u, fd, e);
    e->gen = (e->gen + 1) & 0xffffffu;
    e->ptr = ptr;
    e->events = events;
    e->wwant = 0;
    int rc = arm(u, fd, e);
    e->live = rc == 0;
    return rc;
}

static int ur_mod(struct poller *p, int fd, uint32_t events, void *ptr)
{
    struct uring *u = p->priv;
    struct uring_fd *e = live_entry(u, fd);
    if (!e)
        return -ENOENT;
    unregister(u, fd, e);
    e->ptr = ptr;
    e->events = events;
    int rc = arm(u, fd, e);
    e->live = rc == 0;
    return rc;
}

static void ur_forget(struct poller *p, int fd)
{
    struct uring *u = p->priv;
    struct uring_fd *e = live_entry(u, fd);
    if (e)
        unregister(u, fd, e);
}

static void ur_submit(struct poller *p)
{
    struct uring *u = p->priv;
    if (u->enabled && io_uring_sq_ready(&u->ring))
        io_uring_submit(&u->ring);
}

static int ur_del(struct poller *p, int fd)
{
    struct uring *u = p->priv;
    struct uring_fd *e = live_entry(u, fd);
    if (!e)
        return -ENOENT;
    unregister(u, fd, e);
    /* The caller closes fd next and expects it closed (a listener's queue resets then). */
    ur_submit(p);
    return 0;
}

static int ur_read(struct poller *p, int fd, void *buf, size_t len)
{
    struct uring *u = p->priv;
    struct uring_fd *e = live_entry(u, fd);
    struct io_uring_sqe *s;
    if (!e || !(s = sqe_get(u)))
        return -EBUSY;
    io_uring_prep_recv(s, fd, buf, len, MSG_DONTWAIT);
    io_uring_sqe_set_data64(s, uring_ud(fd, e->gen, URING_READ));
    u->inflight++;
    return 0;
}

static int ur_writev(struct poller *p, int fd, const struct iovec *iov, int cnt)
{
    struct uring *u = p->priv;
    struct uring_fd *e = live_entry(u, fd);
    if (!e || cnt <= 0 || (cnt > 1 && (u->nmsg == URING_MSGS || u->niov + cnt > URING_IOVS)))
        return -EBUSY;
    struct io_uring_sqe *s = sqe_get(u);
    if (!s)
        return -EBUSY;
    size_t want = 0;
    if (cnt == 1) {
        want = iov[0].iov_len;
        io_uring_prep_send(s, fd, iov[0].iov_base, want, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
        struct msghdr *m = &u->msgs[u->nmsg++];
        struct iovec *v = &u->iovs[u->niov];
        u->niov += cnt;
        for (int i = 0; i < cnt; i++) {
            v[i] = iov[i];
            want += iov[i].iov_len;
        }
        memset(m, 0, sizeof *m);
        m->msg_iov = v;
        m->msg_iovlen = (size_t)cnt;
        io_uring_prep_sendmsg(s, fd, m, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(s, uring_ud(fd, e->gen, URING_WRITE));
    e->wwant = want > UINT32_MAX ? UINT32_MAX : (uint32_t)want;
    u->inflight++;
    return 0;
}

/* Turns completions into events; stale ones (an old generation of their fd) are dropped. */
static int reap(struct uring *u, struct poll_event *out, int max)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    int n = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        if (n == max)
            break;
        seen++;
        uint64_t ud = cqe->user_data;
        enum uring_kind kind = uring_ud_kind(ud);
        if (kind == URING_READ || kind == URING_WRITE)
            u->inflight--;
        if (kind == URING_REMOVE)
            continue;
        struct uring_fd *e = live_entry(u, uring_ud_fd(ud));
        if (!e || e->gen != uring_ud_gen(ud))
            continue;
        uint32_t ev;
        int32_t res = cqe->res;
        if (kind == URING_POLL) {
            if (res < 0) {
                ev = EV_ERR;
            } else {
                ev = uring_poll_events((uint32_t)res);
                /* A one-shot poll, or a multishot one the kernel ended: ask again. */
                if (!(cqe->flags & IORING_CQE_F_MORE) && arm(u, uring_ud_fd(ud), e) < 0)
                    ev |= EV_ERR;
            }
            res = 0;
            if (!ev)
                continue;
        } else if (kind == URING_READ) {
            ev = EV_RDONE;
        } else {
            ev = EV_WDONE | (res >= 0 && (uint32_t)res < e->wwant ? EV_WSHORT : 0);
        }
        out[n].ptr = e->ptr;
        out[n].events = ev;
        out[n].res = res;
        n++;
    }
    io_uring_cq_advance(&u->ring, seen);
    if (u->inflight == 0)
        u->nmsg = u->niov = 0;
    return n;
}

static int ur_wait(struct poller *p, struct poll_event *out, int max, int64_t timeout_us)
{
    struct uring *u = p->priv;
    int rc = ur_enable(u);
    if (rc < 0)
        return rc;
    if (timeout_us == 0 || io_uring_cq_ready(&u->ring)) {
        rc = io_uring_submit_and_get_events(&u->ring);
    } else {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts, *tsp = NULL;
        if (timeout_us > 0) {
            ts.tv_sec = timeout_us / 1000000;
            ts.tv_nsec = (timeout_us % 1000000) * 1000;
            tsp = &ts;
        }
        rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, tsp, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    return reap(u, out, max);
}

const struct poller_ops poller_uring = {
    .name = "uring",
    .open = ur_open,
    .close = ur_close,
    .add = ur_add,
    .mod = ur_mod,
    .del = ur_del,
    .wait = ur_wait,
    .forget = ur_forget,
    .read = ur_read,
    .writev = ur_writev,
    .submit = ur_submit,
};
