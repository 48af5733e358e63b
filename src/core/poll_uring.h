/* poll_uring: the io_uring poller's pure parts, apart so that they are unit-tested.
 *
 * Every request carries (fd, generation, kind) in its user_data. The poller keeps one entry per
 * fd with the current generation; a completion whose generation is not the fd's current one
 * belongs to a registration that was removed or replaced (its fd may even be a new connection's
 * now) and is dropped. */
#ifndef WEFT_CORE_POLL_URING_H
#define WEFT_CORE_POLL_URING_H

#include <stdint.h>

enum uring_kind {
    URING_POLL = 1,   /* readiness (multishot for EV_EDGE, one-shot re-armed otherwise) */
    URING_READ = 2,   /* a queued recv */
    URING_WRITE = 3,  /* a queued send / sendmsg */
    URING_REMOVE = 4, /* a removal or cancellation as the fd goes (its completion is ignored) */
    URING_RECV = 5,   /* an EV_RECV registration's multishot recv into provided buffers */
    URING_CANCEL = 6, /* a receive stopped by its owner (retried if the kernel could not yet) */
    URING_ACCEPT = 7, /* an EV_ACCEPT registration's multishot accept */
};

static inline uint64_t uring_ud(int fd, uint32_t gen, enum uring_kind kind)
{
    return (uint64_t)(uint32_t)fd << 32 | (uint64_t)(gen & 0xffffffu) << 8 | (uint64_t)kind;
}

static inline int uring_ud_fd(uint64_t ud)
{
    return (int)(uint32_t)(ud >> 32);
}

static inline uint32_t uring_ud_gen(uint64_t ud)
{
    return (uint32_t)(ud >> 8) & 0xffffffu;
}

static inline enum uring_kind uring_ud_kind(uint64_t ud)
{
    return (enum uring_kind)(ud & 0xffu);
}

/* The provided buffers the receives fill: 128 KiB per worker, all of it resident once 64
 * receives went through the ring (the kernel may pick any buffer in the ring at any time, so none
 * can be given back). Requests are small; larger input comes in several completions. More
 * receives at once than buffers (many connections with input in one wait) end with ENOBUFS and
 * are re-armed: one completion more and, for that connection, one loop iteration later. */
#define URING_RBUFS 64
#define URING_RBUF_SIZE 2048

/* An EV_RECV registration's receive (or an EV_ACCEPT one's accept), as the poller sees it. */
enum uring_rstate {
    URING_R_OFF = 0,    /* none in the ring */
    URING_R_ON = 1,     /* a multishot recv (accept) is in the ring */
    URING_R_CANCEL = 2, /* and its cancellation was queued: its last completion is not back */
};

enum {
    URING_RECV_REPORT = 1u << 0, /* hand the completion to the owner (data, EOF or an error) */
    URING_RECV_REARM = 1u << 1,  /* the receive ended and the owner wants one: arm a new one */
};

/* What a receive's completion (res, and more: the kernel keeps the receive going) means in state
 * st, the owner wanting a receive or not: URING_RECV_*. A receive that ends without data, EOF
 * or an error of the socket's (the provided buffers ran out, the cancellation of a receive the
 * owner wanted back meanwhile) is re-armed unseen. */
unsigned uring_recv_completion(enum uring_rstate st, int want, int32_t res, int more);

/* The same for a multishot accept (res: the new fd, or -errno): every connection and every error
 * but our own cancellation is reported; the accept is re-armed after errors that pass (EMFILE,
 * ECONNABORTED ...), not after those of the socket itself (EINVAL: it does not listen). */
unsigned uring_accept_completion(enum uring_rstate st, int want, int32_t res, int more);

struct poller;
/* How many times a receive ended because the provided buffers ran out (and was re-armed). */
uint64_t uring_nobufs(const struct poller *p);

/* EV_IN | EV_OUT -> the poll mask to ask for; a poll result -> EV_*. */
uint32_t uring_poll_mask(uint32_t events);
uint32_t uring_poll_events(uint32_t revents);

#endif
