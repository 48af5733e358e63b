/* poller: the narrow interface between the loop and the kernel's readiness API. epoll is the
 * backend today (poll_epoll.c); another (io_uring) is one more file with this table. */
#ifndef WEFT_CORE_POLLER_H
#define WEFT_CORE_POLLER_H

#include <stdint.h>

enum {
    EV_IN = 1u << 0,
    EV_OUT = 1u << 1,
    EV_ERR = 1u << 2,
    EV_HUP = 1u << 3,  /* the peer closed (both ways or its write side) */
    EV_EDGE = 1u << 4, /* report changes only: the owner reads/writes until EAGAIN */
};

struct poll_event {
    void *ptr;
    uint32_t events;
};

struct poller;

struct poller_ops {
    const char *name;
    int (*open)(struct poller *p);
    void (*close)(struct poller *p);
    int (*add)(struct poller *p, int fd, uint32_t events, void *ptr);
    int (*mod)(struct poller *p, int fd, uint32_t events, void *ptr);
    int (*del)(struct poller *p, int fd);
    /* Waits up to timeout_us microseconds (-1: forever); returns the number of events, or
     * -errno. */
    int (*wait)(struct poller *p, struct poll_event *out, int max, int64_t timeout_us);
};

struct poller {
    const struct poller_ops *ops;
    int fd;
    void *priv;
};

extern const struct poller_ops poller_epoll;

#endif
