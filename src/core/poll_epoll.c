#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core/poller.h"

#define EPOLL_BATCH 512

static uint32_t to_epoll(uint32_t ev)
{
    uint32_t e = 0;
    if (ev & EV_IN)
        e |= EPOLLIN | EPOLLRDHUP;
    if (ev & EV_OUT)
        e |= EPOLLOUT;
    if (ev & EV_EDGE)
        e |= EPOLLET;
    return e;
}

static int ep_open(struct poller *p)
{
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd < 0)
        return -errno;
    p->priv = malloc(EPOLL_BATCH * sizeof(struct epoll_event));
    if (!p->priv) {
        close(p->fd);
        return -ENOMEM;
    }
    return 0;
}

static void ep_close(struct poller *p)
{
    if (p->fd >= 0)
        close(p->fd);
    free(p->priv);
    p->fd = -1;
    p->priv = NULL;
}

static int ep_ctl(struct poller *p, int op, int fd, uint32_t events, void *ptr)
{
    struct epoll_event e = {.events = to_epoll(events), .data.ptr = ptr};
    return epoll_ctl(p->fd, op, fd, &e) < 0 ? -errno : 0;
}

static int ep_add(struct poller *p, int fd, uint32_t events, void *ptr)
{
    return ep_ctl(p, EPOLL_CTL_ADD, fd, events, ptr);
}

static int ep_mod(struct poller *p, int fd, uint32_t events, void *ptr)
{
    return ep_ctl(p, EPOLL_CTL_MOD, fd, events, ptr);
}

static int ep_del(struct poller *p, int fd)
{
    return ep_ctl(p, EPOLL_CTL_DEL, fd, 0, NULL);
}

/* epoll_pwait2 (Linux 5.11) takes a timespec: timers fire on time instead of rounded up to the
 * next millisecond, which /sleep?ms=10 would otherwise pay on every request. */
static int ep_pwait(int fd, struct epoll_event *ev, int max, int64_t timeout_us)
{
    if (timeout_us <= 0)
        return epoll_wait(fd, ev, max, timeout_us < 0 ? -1 : 0);
    struct timespec ts = {.tv_sec = timeout_us / 1000000, .tv_nsec = (timeout_us % 1000000) * 1000};
    int n = epoll_pwait2(fd, ev, max, &ts, NULL);
    if (n < 0 && errno == ENOSYS)
        n = epoll_wait(fd, ev, max,
                       timeout_us > 1000000000 ? 1000000 : (int)((timeout_us + 999) / 1000));
    return n;
}

static int ep_wait(struct poller *p, struct poll_event *out, int max, int64_t timeout_us)
{
    struct epoll_event *ev = p->priv;
    if (max > EPOLL_BATCH)
        max = EPOLL_BATCH;
    int n = ep_pwait(p->fd, ev, max, timeout_us);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = ev[i].events, r = 0;
        if (e & EPOLLIN)
            r |= EV_IN;
        if (e & EPOLLOUT)
            r |= EV_OUT;
        if (e & EPOLLERR)
            r |= EV_ERR;
        if (e & (EPOLLHUP | EPOLLRDHUP))
            r |= EV_HUP;
        out[i].ptr = ev[i].data.ptr;
        out[i].events = r;
        out[i].res = 0;
        out[i].data = NULL;
    }
    return n;
}

const struct poller_ops poller_epoll = {
    .name = "epoll",
    .open = ep_open,
    .close = ep_close,
    .add = ep_add,
    .mod = ep_mod,
    .del = ep_del,
    .wait = ep_wait,
};
