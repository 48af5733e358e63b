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
 * EV_RECV registrations (connections) have no POLLIN: a multishot recv into a ring of provided
 * buffers receives for them as bytes arrive, and each completion is reported as EV_DATA with a
 * pointer into its buffer. The buffers of one wait's completions go back to the ring at the start
 * of the next wait (the owner copies what it keeps during its callback). Their poll asks for
 * POLLOUT only, for writes that came up short.
 *
 * A poll request or a receive holds its file: a registered fd is closed only after forget() or
 * del() queued their removal, and the socket really goes when the removal is submitted (the next
 * wait). */
#include "core/poll_uring.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/poller.h"

#define URING_ENTRIES 4096 /* submission queue; the completion queue is twice that */
#define URING_MSGS 1024    /* sendmsg headers queued per iteration at most */
#define URING_IOVS 8192    /* and their slices */
#define URING_BGID 0

unsigned uring_recv_completion(enum uring_rstate st, int want, int32_t res, int more)
{
    if (res > 0)
        return URING_RECV_REPORT | (!more && want ? URING_RECV_REARM : 0);
    if (more || res == 0)
        return URING_RECV_REPORT;
    /* Ended without data: the ring was empty, or our own cancellation, or a transient error. */
    if (res == -ENOBUFS || res == -EAGAIN || res == -EINTR ||
        (res == -ECANCELED && st == URING_R_CANCEL))
        return want ? URING_RECV_REARM : 0;
    return URING_RECV_REPORT;
}

unsigned uring_accept_completion(enum uring_rstate st, int want, int32_t res, int more)
{
    if (res == -ECANCELED && st == URING_R_CANCEL)
        return !more && want ? URING_RECV_REARM : 0;
    int passes = res >= 0 || res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
                 res == -ENOMEM || res == -ECONNABORTED || res == -EINTR || res == -EAGAIN ||
                 res == -EPERM || res == -EPROTO || res == -ETIMEDOUT;
    return URING_RECV_REPORT | (!more && want && passes ? URING_RECV_REARM : 0);
}

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
    uint8_t live;
    uint8_t rstate; /* enum uring_rstate */
    uint8_t rwant;  /* the owner wants a receive (EV_RECV) or accept (EV_ACCEPT) */
};

/* An EV_ACCEPT registration removed while its accept may still report connections the kernel
 * accepted: they go to its owner until the accept's last completion. */
struct uring_retired {
    void *ptr;
    int fd;
    uint32_t gen;
};
#define URING_RETIRED 16

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
    /* The provided buffers (NULL: not available, no EV_RECV) and those the last wait reported,
     * returned to the ring by the next one. */
    struct io_uring_buf_ring *br;
    char *rbufs;
    size_t rmap;
    int nrecycle;
    uint16_t recycle[URING_RBUFS];
    uint64_t nobufs;
    int nretired;
    struct uring_retired retired[URING_RETIRED];
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

/* Maps and registers the provided buffers (the ring's entries, then the buffers). */
static int rbufs_open(struct uring *u)
{
    size_t ring = URING_RBUFS * sizeof(struct io_uring_buf);
    size_t len = ring + (size_t)URING_RBUFS * URING_RBUF_SIZE;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uintptr_t)m, .ring_entries = URING_RBUFS, .bgid = URING_BGID};
    int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc < 0) {
        munmap(m, len);
        return rc;
    }
    u->br = m;
    u->rbufs = (char *)m + ring;
    u->rmap = len;
    io_uring_buf_ring_init(u->br);
    int mask = io_uring_buf_ring_mask(URING_RBUFS);
    for (int i = 0; i < URING_RBUFS; i++)
        io_uring_buf_ring_add(u->br, u->rbufs + (size_t)i * URING_RBUF_SIZE, URING_RBUF_SIZE,
                              (unsigned short)i, mask, i);
    io_uring_buf_ring_advance(u->br, URING_RBUFS);
    return 0;
}

/* Gives the buffers of the last wait's completions back to the kernel. */
static void rbufs_recycle(struct uring *u)
{
    if (!u->nrecycle)
        return;
    int mask = io_uring_buf_ring_mask(URING_RBUFS);
    for (int i = 0; i < u->nrecycle; i++)
        io_uring_buf_ring_add(u->br, u->rbufs + (size_t)u->recycle[i] * URING_RBUF_SIZE,
                              URING_RBUF_SIZE, u->recycle[i], mask, i);
    io_uring_buf_ring_advance(u->br, u->nrecycle);
    u->nrecycle = 0;
}

uint64_t uring_nobufs(const struct poller *p)
{
    const struct uring *u = p->priv;
    return u ? u->nobufs : 0;
}

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
    /* Provided buffer rings and multishot accept came with 5.19; without them connections are
     * polled and read, listeners polled. */
    if (rbufs_open(u) == 0)
        p->caps |= POLLER_RECV | POLLER_ACCEPT;
    p->fd = u->ring.ring_fd;
    p->priv = u;
    return 0;
}

static void ur_close(struct poller *p)
{
    struct uring *u = p->priv;
    if (!u)
        return;
    /* Closes still queued (connections closed as the worker stopped) are done now. */
    if (u->enabled)
        io_uring_submit(&u->ring);
    io_uring_queue_exit(&u->ring);
    if (u->br)
        munmap(u->br, u->rmap);
    free(u->fds);
    free(u);
    p->priv = NULL;
    p->fd = -1;
    p->caps = 0;
}

static int ur_enable(struct uring *u)
{
    if (u->enabled)
        return 0;
    int rc = io_uring_register(u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    if (rc < 0)
        return rc == -1 ? -errno : rc;
    u->enabled = 1;
    /* The worker's thread enters the ring by a registered index, not its fd (no file lookup per
     * io_uring_enter); per thread, so here, on the loop's own thread. Optional (5.18). */
    io_uring_register_ring_fd(&u->ring);
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

/* The multishot request of an EV_RECV (recv into the provided buffers) or EV_ACCEPT
 * registration. */
static int arm_recv(struct uring *u, int fd, struct uring_fd *e)
{
    struct io_uring_sqe *s = sqe_get(u);
    if (!s)
        return -EBUSY;
    if (e->events & EV_ACCEPT) {
        io_uring_prep_multishot_accept(s, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        io_uring_sqe_set_data64(s, uring_ud(fd, e->gen, URING_ACCEPT));
    } else {
        io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = URING_BGID;
        io_uring_sqe_set_data64(s, uring_ud(fd, e->gen, URING_RECV));
    }
    e->rstate = URING_R_ON;
    return 0;
}

/* Queues the cancellation of the multishot request; kind URING_CANCEL while the fd stays
 * registered. */
static int cancel_recv(struct uring *u, int fd, struct uring_fd *e, enum uring_kind kind)
{
    struct io_uring_sqe *s = sqe_get(u);
    if (!s)
        return -EBUSY;
    enum uring_kind target = e->events & EV_ACCEPT ? URING_ACCEPT : URING_RECV;
    io_uring_prep_cancel64(s, uring_ud(fd, e->gen, target), 0);
    io_uring_sqe_set_data64(s, uring_ud(fd, e->gen, kind));
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    e->rstate = URING_R_CANCEL;
    return 0;
}

/* Whether a registration has a poll request: not EV_ACCEPT, and EV_RECV only for EV_OUT. */
static int polled(uint32_t events)
{
    return !(events & EV_ACCEPT) && (events & (EV_RECV | EV_OUT)) != EV_RECV;
}

/* The poll request of a registration. EV_RECV: no POLLIN (the receive reports input, EOF and
 * errors itself). */
static int arm(struct uring *u, int fd, const struct uring_fd *e)
{
    if (!polled(e->events))
        return 0;
    struct io_uring_sqe *s = sqe_get(u);
    if (!s)
        return -EBUSY;
    unsigned mask = uring_poll_mask(e->events & EV_RECV ? e->events & ~EV_IN : e->events);
    if (e->events & EV_EDGE)
        io_uring_prep_poll_multishot(s, fd, mask);
    else
        io_uring_prep_poll_add(s, fd, mask);
    io_uring_sqe_set_data64(s, uring_ud(fd, e->gen, URING_POLL));
    return 0;
}

/* Removes the current registration's poll and receive; their completions are stale from now
 * on. */
static void unregister(struct uring *u, int fd, struct uring_fd *e)
{
    /* An accept still in the ring: what it accepted meanwhile goes to the owner (retired). */
    if ((e->events & EV_ACCEPT) && e->rstate != URING_R_OFF && u->nretired < URING_RETIRED)
        u->retired[u->nretired++] = (struct uring_retired){.ptr = e->ptr, .fd = fd, .gen = e->gen};
    if (e->rstate == URING_R_ON)
        cancel_recv(u, fd, e, URING_REMOVE);
    e->rstate = URING_R_OFF;
    e->rwant = 0;
    struct io_uring_sqe *s = polled(e->events) ? sqe_get(u) : NULL;
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
    if ((events & (EV_RECV | EV_ACCEPT)) && !u->br)
        return -EINVAL;
    e->gen = (e->gen + 1) & 0xffffffu;
    e->ptr = ptr;
    e->events = events;
    e->wwant = 0;
    e->rstate = URING_R_OFF;
    e->rwant = (events & (EV_RECV | EV_ACCEPT)) != 0;
    int rc = arm(u, fd, e);
    if (rc == 0 && e->rwant)
        rc = arm_recv(u, fd, e);
    e->live = rc == 0;
    return rc;
}

static int ur_mod(struct poller *p, int fd, uint32_t events, void *ptr)
{
    struct uring *u = p->priv;
    struct uring_fd *e = live_entry(u, fd);
    if (!e)
        return -ENOENT;
    if ((events & (EV_RECV | EV_ACCEPT)) && !u->br)
        return -EINVAL;
    unregister(u, fd, e);
    e->ptr = ptr;
    e->events = events;
    e->rwant = (events & (EV_RECV | EV_ACCEPT)) != 0;
    int rc = arm(u, fd, e);
    if (rc == 0 && e->rwant)
        rc = arm_recv(u, fd, e);
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

static int ur_close_fd(struct poller *p, int fd)
{
    struct uring *u = p->priv;
    struct io_uring_sqe *s;
    /* Before the first wait the ring cannot take it; a registered fd must be forgotten first. */
    if (!u->enabled || live_entry(u, fd) || !(s = sqe_get(u)))
        return -EBUSY;
    io_uring_prep_close(s, fd);
    io_uring_sqe_set_data64(s, uring_ud(fd, 0, URING_REMOVE));
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    return 0;
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

static int ur_recv(struct poller *p, int fd, int on)
{
    struct uring *u = p->priv;
    struct uring_fd *e = live_entry(u, fd);
    if (!e || !(e->events & EV_RECV))
        return -ENOENT;
    e->rwant = on != 0;
    /* While a cancellation is under way the receive is re-armed, if wanted, when it ended. */
    if (on && e->rstate == URING_R_OFF)
        return arm_recv(u, fd, e);
    if (!on && e->rstate == URING_R_ON)
        return cancel_recv(u, fd, e, URING_CANCEL);
    return 0;
}

static int ur_writev(struct poller *p, int fd, const struct iovec *iov, int cnt, int msg_flags)
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
        io_uring_prep_send(s, fd, iov[0].iov_base, want, MSG_DONTWAIT | MSG_NOSIGNAL | msg_flags);
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
        io_uring_prep_sendmsg(s, fd, m, (unsigned)(MSG_DONTWAIT | MSG_NOSIGNAL | msg_flags));
    }
    io_uring_sqe_set_data64(s, uring_ud(fd, e->gen, URING_WRITE));
    e->wwant = want > UINT32_MAX ? UINT32_MAX : (uint32_t)want;
    u->inflight++;
    return 0;
}

/* A receive's completion: the events to report (0: none), re-arming it if it ended and is still
 * wanted. */
static uint32_t recv_done(struct uring *u, int fd, struct uring_fd *e, int32_t res, uint32_t flags)
{
    int more = (flags & IORING_CQE_F_MORE) != 0;
    u->nobufs += res == -ENOBUFS;
    unsigned act = uring_recv_completion(e->rstate, e->rwant, res, more);
    if (!more)
        e->rstate = URING_R_OFF;
    uint32_t ev = act & URING_RECV_REPORT ? EV_DATA : 0;
    if (res > 0 && (flags & IORING_CQE_F_SOCK_NONEMPTY))
        ev |= EV_RMORE;
    if ((act & URING_RECV_REARM) && arm_recv(u, fd, e) < 0)
        ev |= EV_DATA | EV_ERR;
    return ev;
}

/* A multishot accept's completion for a live registration: the events to report (0: none),
 * re-arming the accept if it ended and is still wanted; EV_HUP once it is over for good. */
static uint32_t accept_done(struct uring *u, int fd, struct uring_fd *e, int32_t res,
                            uint32_t flags)
{
    int more = (flags & IORING_CQE_F_MORE) != 0;
    unsigned act = uring_accept_completion(e->rstate, e->rwant, res, more);
    if (!more)
        e->rstate = URING_R_OFF;
    uint32_t ev = act & URING_RECV_REPORT ? EV_ACCEPTED : 0;
    if (act & URING_RECV_REARM) {
        if (arm_recv(u, fd, e) < 0)
            ev |= EV_ACCEPTED | EV_HUP | EV_ERR;
    } else if (!more) {
        ev |= EV_ACCEPTED | EV_HUP;
    }
    return ev;
}

/* A multishot accept's completion for a removed registration: its owner gets the connections
 * and, with the last completion, the end (EV_HUP) if it was retired; otherwise a connection is
 * closed. Returns the events for *ptr (0: none). */
static uint32_t accept_retired(struct uring *u, int fd, uint32_t gen, int32_t res, uint32_t flags,
                               void **ptr)
{
    for (int i = 0; i < u->nretired; i++) {
        struct uring_retired *r = &u->retired[i];
        if (r->fd != fd || r->gen != gen)
            continue;
        *ptr = r->ptr;
        if (!(flags & IORING_CQE_F_MORE)) {
            *r = u->retired[--u->nretired];
            return EV_ACCEPTED | EV_HUP;
        }
        return res >= 0 ? EV_ACCEPTED : 0;
    }
    if (res >= 0)
        close(res);
    return 0;
}

/* Turns completions into events; stale ones (an old generation of their fd) are dropped. A
 * provided buffer goes back to the ring with the next wait, stale or not. */
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
        const char *data = NULL;
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if ((cqe->flags & IORING_CQE_F_BUFFER) && u->br && bid < URING_RBUFS &&
            u->nrecycle < URING_RBUFS) {
            u->recycle[u->nrecycle++] = bid;
            data = u->rbufs + (size_t)bid * URING_RBUF_SIZE;
        }
        uint64_t ud = cqe->user_data;
        enum uring_kind kind = uring_ud_kind(ud);
        if (kind == URING_READ || kind == URING_WRITE)
            u->inflight--;
        if (kind == URING_REMOVE)
            continue;
        int fd = uring_ud_fd(ud);
        struct uring_fd *e = live_entry(u, fd);
        int32_t res = cqe->res;
        if (kind == URING_ACCEPT && (!e || e->gen != uring_ud_gen(ud))) {
            void *ptr = NULL;
            uint32_t ev = accept_retired(u, fd, uring_ud_gen(ud), res, cqe->flags, &ptr);
            if (ev)
                out[n++] = (struct poll_event){.ptr = ptr, .events = ev, .res = res};
            continue;
        }
        if (!e || e->gen != uring_ud_gen(ud))
            continue;
        uint32_t ev;
        if (kind == URING_POLL) {
            if (res < 0) {
                ev = EV_ERR;
            } else {
                ev = uring_poll_events((uint32_t)res);
                /* Input, its end and errors come with the receive. */
                if (e->events & EV_RECV)
                    ev &= ~(EV_IN | EV_HUP);
                /* A one-shot poll, or a multishot one the kernel ended: ask again. */
                if (!(cqe->flags & IORING_CQE_F_MORE) && arm(u, fd, e) < 0)
                    ev |= EV_ERR;
            }
            res = 0;
            if (!ev)
                continue;
        } else if (kind == URING_RECV) {
            if (!(ev = recv_done(u, fd, e, res, cqe->flags)))
                continue;
        } else if (kind == URING_ACCEPT) {
            if (!(ev = accept_done(u, fd, e, res, cqe->flags)))
                continue;
        } else if (kind == URING_CANCEL) {
            /* The receive could not be cancelled yet (-EALREADY): again, with the next wait. */
            if (res < 0 && res != -ENOENT && e->rstate == URING_R_CANCEL)
                cancel_recv(u, fd, e, URING_CANCEL);
            continue;
        } else if (kind == URING_READ) {
            ev = EV_RDONE;
        } else {
            ev = EV_WDONE | (res >= 0 && (uint32_t)res < e->wwant ? EV_WSHORT : 0);
        }
        out[n].ptr = e->ptr;
        out[n].events = ev;
        out[n].res = res;
        out[n].data = data;
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
    /* The last batch's callbacks are done with its buffers. */
    rbufs_recycle(u);
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
    .recv = ur_recv,
    .close_fd = ur_close_fd,
};
