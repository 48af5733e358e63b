#include "core/timer.h"

#include <errno.h>
#include <stdlib.h>

#define ARITY 4

void timer_heap_init(struct timer_heap *h)
{
    h->v = NULL;
    h->len = h->cap = 0;
}

void timer_heap_fini(struct timer_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->len = h->cap = 0;
}

static inline void place(struct timer_heap *h, size_t i, struct timer *t)
{
    h->v[i] = t;
    t->idx = (uint32_t)(i + 1);
}

static void sift_up(struct timer_heap *h, size_t i)
{
    struct timer *t = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (h->v[parent]->at <= t->at)
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(struct timer_heap *h, size_t i)
{
    struct timer *t = h->v[i];
    for (;;) {
        size_t first = i * ARITY + 1;
        if (first >= h->len)
            break;
        size_t best = first;
        size_t end = first + ARITY < h->len ? first + ARITY : h->len;
        for (size_t c = first + 1; c < end; c++)
            if (h->v[c]->at < h->v[best]->at)
                best = c;
        if (h->v[best]->at >= t->at)
            break;
        place(h, i, h->v[best]);
        i = best;
    }
    place(h, i, t);
}

static void heap_remove(struct timer_heap *h, struct timer *t)
{
    size_t i = t->idx - 1;
    struct timer *last = h->v[--h->len];
    t->idx = 0;
    if (last == t)
        return;
    place(h, i, last);
    if (i > 0 && h->v[(i - 1) / ARITY]->at > last->at)
        sift_up(h, i);
    else
        sift_down(h, i);
}

int timer_set(struct timer_heap *h, struct timer *t, uint64_t due)
{
    if (t->idx) {
        t->due = due;
        if (due >= t->at)
            return 0; /* fires early, sees the later due, and moves itself */
        t->at = due;
        sift_up(h, t->idx - 1);
        return 0;
    }
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct timer **v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->at = t->due = due;
    place(h, h->len++, t);
    sift_up(h, h->len - 1);
    return 0;
}

void timer_cancel(struct timer_heap *h, struct timer *t)
{
    if (t->idx)
        heap_remove(h, t);
}

void timer_run(struct timer_heap *h, uint64_t now)
{
    while (h->len > 0 && h->v[0]->at <= now) {
        struct timer *t = h->v[0];
        if (t->due > now) {
            t->at = t->due;
            sift_down(h, 0);
            continue;
        }
        heap_remove(h, t);
        t->fn(t);
    }
}

int64_t timer_next(const struct timer_heap *h, uint64_t now)
{
    if (h->len == 0)
        return -1;
    /* A lazily postponed timer may show an early `at`; waking once to move it is harmless. */
    uint64_t at = h->v[0]->at;
    return at <= now ? 0 : (int64_t)(at - now);
}
