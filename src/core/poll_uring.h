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
    URING_REMOVE = 4, /* a poll removal (its completion is ignored) */
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

/* EV_IN | EV_OUT -> the poll mask to ask for; a poll result -> EV_*. */
uint32_t uring_poll_mask(uint32_t events);
uint32_t uring_poll_events(uint32_t revents);

#endif
