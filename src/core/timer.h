/* timer: per-loop timers in a 4-ary min-heap, embedded in the objects that own them.
 *
 * Arming needs no allocation. Pushing a deadline later (a keep-alive or read timeout re-armed on
 * every request) is O(1): the heap keeps the earlier position and the timer is moved when that
 * position comes due. */
#ifndef WEFT_CORE_TIMER_H
#define WEFT_CORE_TIMER_H

#include <stddef.h>
#include <stdint.h>

struct timer;
typedef void (*timer_fn)(struct timer *t);

struct timer {
    uint64_t at;  /* heap key, on the loop's clock (microseconds) */
    uint64_t due; /* the real deadline, >= at */
    uint32_t idx; /* heap index + 1; 0 when not armed */
    timer_fn fn;
};

struct timer_heap {
    struct timer **v;
    size_t len, cap;
};

void timer_heap_init(struct timer_heap *h);
void timer_heap_fini(struct timer_heap *h);

static inline void timer_init(struct timer *t, timer_fn fn)
{
    t->at = t->due = 0;
    t->idx = 0;
    t->fn = fn;
}

static inline int timer_armed(const struct timer *t)
{
    return t->idx != 0;
}

/* Arms (or re-arms) t to fire at `due`. 0, or -ENOMEM when the heap can't grow. */
int timer_set(struct timer_heap *h, struct timer *t, uint64_t due);
void timer_cancel(struct timer_heap *h, struct timer *t);
/* Fires every timer due at or before now (a timer may re-arm itself or others from its fn). */
void timer_run(struct timer_heap *h, uint64_t now);
/* Clock units until the next timer is due (0 if overdue), or -1 when none is armed. */
int64_t timer_next(const struct timer_heap *h, uint64_t now);

#endif
