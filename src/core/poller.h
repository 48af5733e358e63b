/* poller: the narrow interface between the loop and the kernel's readiness API: epoll
 * (poll_epoll.c) or io_uring (poll_uring.c). Both report readiness; the io_uring backend can also
 * take reads and writes, which leave with the next wait in the same system call and come back as
 * completion events, and can receive for a registered socket itself (EV_RECV): the bytes then come
 * as events, without a readiness report and a read of the owner's in between. */
#ifndef WEFT_CORE_POLLER_H
#define WEFT_CORE_POLLER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum {
    EV_IN = 1u << 0,
    EV_OUT = 1u << 1,
    EV_ERR = 1u << 2,
    EV_HUP = 1u << 3,  /* the peer closed (both ways or its write side) */
    EV_EDGE = 1u << 4, /* report changes only: the owner reads/writes until EAGAIN */
    /* Completions of queued operations (pollers with read/writev), with the result in res. */
    EV_RDONE = 1u << 5,  /* a queued read: bytes read, 0 at EOF, or -errno */
    EV_WDONE = 1u << 6,  /* a queued write: bytes written or -errno */
    EV_WSHORT = 1u << 7, /* with EV_WDONE: fewer bytes than asked (the socket is full) */
    /* Registration (pollers with POLLER_RECV): the poller keeps a receive going for the socket
     * from loop_add on, and stopped or started again with recv(); input comes as EV_DATA events
     * instead of EV_IN, EV_HUP and a read of the owner's. */
    EV_RECV = 1u << 8,
    /* Received (EV_RECV): res bytes at data, valid until the next wait; 0: EOF; or -errno. After
     * 0 or -errno nothing more is received. */
    EV_DATA = 1u << 9,
    EV_RMORE = 1u << 10, /* with EV_DATA: the socket holds more bytes (they follow) */
    /* Registration (pollers with POLLER_ACCEPT), for a listening socket: the poller accepts
     * connections itself and reports each as EV_ACCEPTED, instead of EV_IN. */
    EV_ACCEPT = 1u << 11,
    /* Accepted (EV_ACCEPT): res is the connection's fd (non-blocking, close-on-exec) or -errno
     * (EMFILE ...; the poller goes on accepting). With EV_HUP: the poller stopped accepting for
     * good (after del or forget, or an error of the socket's), nothing more comes. Connections
     * the kernel accepted before del or forget took effect still come, to the same ptr, which
     * must stay valid until that EV_HUP. */
    EV_ACCEPTED = 1u << 12,
};

struct poll_event {
    void *ptr;
    uint32_t events;
    int32_t res;      /* EV_RDONE, EV_WDONE, EV_DATA */
    const char *data; /* EV_DATA */
};

enum {
    POLLER_RECV = 1u << 0,   /* takes EV_RECV registrations */
    POLLER_ACCEPT = 1u << 1, /* takes EV_ACCEPT registrations */
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

    /* Optional, NULL in pollers that only report readiness. */
    /* fd is about to be closed without del (the poller may hold the file open otherwise). */
    void (*forget)(struct poller *p, int fd);
    /* Queue a non-blocking read or write on a registered fd, issued with the next wait (or
     * submit) and reported as EV_RDONE / EV_WDONE. buf and the bytes iov points to must stay
     * valid until then; iov itself is copied; msg_flags are added to the send's (MSG_MORE). 0,
     * or -EBUSY: do it synchronously now. */
    int (*read)(struct poller *p, int fd, void *buf, size_t len);
    int (*writev)(struct poller *p, int fd, const struct iovec *iov, int cnt, int msg_flags);
    /* Issues what is queued now (before an fd with queued operations is closed). */
    void (*submit)(struct poller *p);
    /* An EV_RECV registration's receive: on (again) or off. Bytes the kernel received before it
     * stopped still come as EV_DATA. 0 or -errno. */
    int (*recv)(struct poller *p, int fd, int on);
    /* fd, already forgotten (forget or del), is closed with the next wait. 0, or -EBUSY: the
     * caller closes it now. */
    int (*close_fd)(struct poller *p, int fd);
};

struct poller {
    const struct poller_ops *ops;
    int fd;
    unsigned caps; /* POLLER_*, set by open */
    void *priv;
};

extern const struct poller_ops poller_epoll;
extern const struct poller_ops poller_uring;

#endif
