/* Unit tests for core/timer: firing in deadline order, cancelling anywhere in the heap, lazy
 * re-arming later and eager re-arming earlier, timers that re-arm from their callback,
 * timer_next, deadlines in the past, and a 10,000-timer stress run against a sorted reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/timer.h"

/* splitmix64: a fixed-seed PRNG so every run checks the same deadlines. */
struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

/* What the timers' callbacks write to: the order they fired in and the clock they saw. */
struct log {
    struct timer_heap *h;
    uint64_t now; /* the `now` given to timer_run, set by the test before each run */
    int *order;
    size_t n, cap;
};

struct tt {
    struct timer t;
    struct log *log;
    int id;
    uint64_t due; /* the deadline the test expects it to fire at */
    int fired;
    uint64_t fired_at; /* log->now when it fired */
    int rearms;        /* re-arm this many more times from the callback */
    uint64_t step;     /* by this much each time */
};

static struct tt *tt_of(struct timer *t)
{
    return (struct tt *)((char *)t - offsetof(struct tt, t));
}

static void on_fire(struct timer *t)
{
    struct tt *x = tt_of(t);
    struct log *l = x->log;
    assert_false(timer_armed(t)); /* off the heap before its callback runs */
    assert_true(l->n < l->cap);
    l->order[l->n++] = x->id;
    x->fired++;
    x->fired_at = l->now;
    if (x->rearms > 0) {
        x->rearms--;
        x->due += x->step;
        assert_int_equal(timer_set(l->h, t, x->due), 0);
    }
}

static void log_init(struct log *l, struct timer_heap *h, size_t cap)
{
    memset(l, 0, sizeof *l);
    l->h = h;
    l->cap = cap;
    l->order = calloc(cap, sizeof *l->order);
    assert_non_null(l->order);
}

static void run_at(struct timer_heap *h, struct log *l, uint64_t now)
{
    l->now = now;
    timer_run(h, now);
}

static void tt_init(struct tt *x, struct log *l, int id)
{
    memset(x, 0, sizeof *x);
    timer_init(&x->t, on_fire);
    x->log = l;
    x->id = id;
}

static void tt_set(struct timer_heap *h, struct tt *x, uint64_t due)
{
    x->due = due;
    assert_int_equal(timer_set(h, &x->t, due), 0);
    assert_true(timer_armed(&x->t));
}

/* Checks the heap property and the back-pointers of every armed timer. */
static void check_heap(const struct timer_heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        assert_int_equal(h->v[i]->idx, i + 1);
        assert_true(h->v[i]->at <= h->v[i]->due);
        if (i > 0)
            assert_true(h->v[(i - 1) / 4]->at <= h->v[i]->at);
    }
}

/* ---- ordering ---- */

static void test_fires_in_deadline_order(void **state)
{
    (void)state;
    enum { N = 500 };
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, N);
    struct tt *x = calloc(N, sizeof *x);
    /* Distinct deadlines, shuffled: the order they fire in is exactly 1..N. */
    uint64_t due[N];
    for (int i = 0; i < N; i++)
        due[i] = (uint64_t)(i + 1) * 3;
    struct rng r = {42};
    for (int i = N - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        uint64_t tmp = due[i];
        due[i] = due[j];
        due[j] = tmp;
    }
    for (int i = 0; i < N; i++) {
        tt_init(&x[i], &l, (int)(due[i] / 3));
        tt_set(&h, &x[i], due[i]);
    }
    check_heap(&h);
    assert_int_equal(h.len, N);
    run_at(&h, &l, 3 * N);
    assert_int_equal(l.n, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(l.order[i], i + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].fired, 1);
        assert_false(timer_armed(&x[i].t));
    }
    assert_int_equal(h.len, 0);
    assert_int_equal(timer_next(&h, 0), -1);
    free(x);
    free(l.order);
    timer_heap_fini(&h);
}

static void test_fires_only_what_is_due(void **state)
{
    (void)state;
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, 16);
    struct tt a, b, c;
    tt_init(&a, &l, 1);
    tt_init(&b, &l, 2);
    tt_init(&c, &l, 3);
    tt_set(&h, &a, 100);
    tt_set(&h, &b, 200);
    tt_set(&h, &c, 200);
    run_at(&h, &l, 99);
    assert_int_equal(l.n, 0);
    run_at(&h, &l, 100); /* due at or before now */
    assert_int_equal(l.n, 1);
    assert_int_equal(l.order[0], 1);
    run_at(&h, &l, 199);
    assert_int_equal(l.n, 1);
    run_at(&h, &l, 250);
    assert_int_equal(l.n, 3);
    assert_true(timer_armed(&a.t) == 0 && timer_armed(&b.t) == 0 && timer_armed(&c.t) == 0);
    /* Nothing armed: running again fires nothing twice. */
    run_at(&h, &l, 1000);
    assert_int_equal(l.n, 3);
    free(l.order);
    timer_heap_fini(&h);
}

/* ---- cancelling ---- */

static void test_cancel_middle_head_tail(void **state)
{
    (void)state;
    enum { N = 10 };
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, N);
    struct tt x[N];
    for (int i = 0; i < N; i++) {
        tt_init(&x[i], &l, i);
        tt_set(&h, &x[i], (uint64_t)(i + 1) * 10);
    }
    timer_cancel(&h, &x[4].t); /* the middle */
    check_heap(&h);
    timer_cancel(&h, &x[0].t); /* the head: the earliest deadline */
    check_heap(&h);
    timer_cancel(&h, &x[N - 1].t); /* the tail: the latest deadline, last in the array */
    check_heap(&h);
    assert_false(timer_armed(&x[4].t));
    assert_false(timer_armed(&x[0].t));
    assert_false(timer_armed(&x[N - 1].t));
    assert_int_equal(h.len, N - 3);
    /* Cancelling what is not armed does nothing. */
    timer_cancel(&h, &x[4].t);
    assert_int_equal(h.len, N - 3);
    assert_int_equal(timer_next(&h, 0), 20);

    run_at(&h, &l, 1000);
    int expect[] = {1, 2, 3, 5, 6, 7, 8};
    assert_int_equal(l.n, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(l.order[i], expect[i]);
    assert_int_equal(x[0].fired + x[4].fired + x[N - 1].fired, 0);
    free(l.order);
    timer_heap_fini(&h);
}

static void test_cancel_and_set_again(void **state)
{
    (void)state;
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, 4);
    struct tt a;
    tt_init(&a, &l, 1);
    tt_set(&h, &a, 10);
    timer_cancel(&h, &a.t);
    assert_int_equal(timer_next(&h, 0), -1);
    tt_set(&h, &a, 30);
    run_at(&h, &l, 10);
    assert_int_equal(a.fired, 0);
    run_at(&h, &l, 30);
    assert_int_equal(a.fired, 1);
    free(l.order);
    timer_heap_fini(&h);
}

/* Removing an element can leave the last one under a larger parent in another branch: it must
 * move up, not only down. */
static void test_cancel_moves_last_up(void **state)
{
    (void)state;
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, 16);
    /* Each deadline is >= its parent's when inserted, so the array is the insertion order:
     * [1 | 100 50 50 50 | 200 200 200 200 (under 100) | 60 (under the first 50)]. */
    static const uint64_t due[] = {1, 100, 50, 50, 50, 200, 200, 200, 200, 60};
    enum { N = sizeof due / sizeof due[0] };
    struct tt x[N];
    for (int i = 0; i < N; i++) {
        tt_init(&x[i], &l, i);
        tt_set(&h, &x[i], due[i]);
        assert_int_equal(x[i].t.idx, i + 1);
    }
    check_heap(&h);
    /* The 60 takes the place of a 200 whose parent is the 100. */
    timer_cancel(&h, &x[5].t);
    check_heap(&h);
    assert_int_equal(timer_next(&h, 0), 1);
    run_at(&h, &l, 1000);
    int expect_due[] = {1, 50, 50, 50, 60, 100, 200, 200, 200};
    assert_int_equal(l.n, N - 1);
    for (int i = 0; i < N - 1; i++)
        assert_int_equal(due[l.order[i]], expect_due[i]);
    assert_int_equal(x[5].fired, 0);
    free(l.order);
    timer_heap_fini(&h);
}

/* ---- re-arming ---- */

static void test_rearm_later_is_lazy(void **state)
{
    (void)state;
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, 8);
    struct tt a, other;
    tt_init(&a, &l, 1);
    tt_init(&other, &l, 2);
    tt_set(&h, &a, 10);
    tt_set(&h, &other, 30);
    tt_set(&h, &a, 50); /* later: stays at its old place */
    assert_true(timer_armed(&a.t));
    /* timer_next may wake early for it, never late. */
    int64_t next = timer_next(&h, 0);
    assert_true(next >= 0 && next <= 30);

    run_at(&h, &l, 10); /* the old deadline: moved, not fired */
    assert_int_equal(a.fired, 0);
    assert_true(timer_armed(&a.t));
    check_heap(&h);
    assert_int_equal(timer_next(&h, 10), 20); /* now the other one is first */
    run_at(&h, &l, 30);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.order[0], 2);
    assert_int_equal(timer_next(&h, 30), 20);
    run_at(&h, &l, 49);
    assert_int_equal(a.fired, 0);
    run_at(&h, &l, 50);
    assert_int_equal(a.fired, 1);
    assert_int_equal(a.fired_at, 50);
    assert_false(timer_armed(&a.t));
    free(l.order);
    timer_heap_fini(&h);
}

static void test_rearm_earlier(void **state)
{
    (void)state;
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, 8);
    struct tt a, b;
    tt_init(&a, &l, 1);
    tt_init(&b, &l, 2);
    tt_set(&h, &b, 30);
    tt_set(&h, &a, 50);
    tt_set(&h, &a, 10); /* earlier: moves up now */
    check_heap(&h);
    assert_int_equal(timer_next(&h, 0), 10);
    run_at(&h, &l, 10);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);
    run_at(&h, &l, 30);
    assert_int_equal(b.fired, 1);

    /* Later then earlier again, but not earlier than the heap position: fires at the last
     * deadline set, neither the first nor the second. */
    tt_set(&h, &a, 100);
    tt_set(&h, &a, 200);
    tt_set(&h, &a, 150);
    run_at(&h, &l, 100);
    run_at(&h, &l, 149);
    assert_int_equal(a.fired, 1);
    run_at(&h, &l, 150);
    assert_int_equal(a.fired, 2);
    /* Later, then earlier than where it sits in the heap. */
    tt_set(&h, &a, 300);
    tt_set(&h, &a, 400);
    tt_set(&h, &a, 250);
    check_heap(&h);
    assert_int_equal(timer_next(&h, 200), 50);
    run_at(&h, &l, 249);
    assert_int_equal(a.fired, 2);
    run_at(&h, &l, 250);
    assert_int_equal(a.fired, 3);
    /* Re-armed to the same deadline: fires once. */
    tt_set(&h, &a, 500);
    tt_set(&h, &a, 500);
    run_at(&h, &l, 600);
    assert_int_equal(a.fired, 4);
    assert_int_equal(h.len, 0);
    free(l.order);
    timer_heap_fini(&h);
}

static void test_rearm_from_callback(void **state)
{
    (void)state;
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, 64);
    struct tt a, b;
    tt_init(&a, &l, 1);
    tt_init(&b, &l, 2);
    a.rearms = 4;
    a.step = 10;
    tt_set(&h, &a, 10);
    tt_set(&h, &b, 25);
    /* One run per tick: the periodic timer fires once per period, at its new deadline. */
    for (uint64_t now = 1; now <= 100; now++)
        run_at(&h, &l, now);
    assert_int_equal(a.fired, 5);
    assert_int_equal(b.fired, 1);
    int expect[] = {1, 1, 2, 1, 1, 1};
    assert_int_equal(l.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(l.order[i], expect[i]);
    assert_int_equal(a.fired_at, 50);
    assert_false(timer_armed(&a.t));

    /* One run far ahead: a timer re-armed into the past of that run fires again in it. */
    l.n = 0;
    a.fired = 0;
    a.rearms = 3;
    a.step = 10;
    tt_set(&h, &a, 1000);
    run_at(&h, &l, 5000);
    assert_int_equal(a.fired, 4);
    assert_int_equal(h.len, 0);
    free(l.order);
    timer_heap_fini(&h);
}

/* A callback that cancels one timer and arms another. */
struct juggler {
    struct timer t;
    struct timer_heap *h;
    struct tt *victim, *newcomer;
    uint64_t newcomer_due;
};

static void juggle(struct timer *t)
{
    struct juggler *j = (struct juggler *)t;
    timer_cancel(j->h, &j->victim->t);
    j->newcomer->due = j->newcomer_due;
    assert_int_equal(timer_set(j->h, &j->newcomer->t, j->newcomer_due), 0);
}

static void test_callback_changes_other_timers(void **state)
{
    (void)state;
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, 8);
    struct tt victim, newcomer;
    tt_init(&victim, &l, 1);
    tt_init(&newcomer, &l, 2);
    struct juggler j = {.h = &h, .victim = &victim, .newcomer = &newcomer, .newcomer_due = 15};
    timer_init(&j.t, juggle);
    assert_int_equal(timer_set(&h, &j.t, 10), 0);
    tt_set(&h, &victim, 10); /* due in the same run, cancelled before it fires */
    run_at(&h, &l, 20);
    assert_int_equal(victim.fired, 0);
    assert_int_equal(newcomer.fired, 1); /* due within the run that armed it */
    assert_int_equal(h.len, 0);
    free(l.order);
    timer_heap_fini(&h);
}

/* ---- timer_next and the past ---- */

static void test_timer_next(void **state)
{
    (void)state;
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, 8);
    assert_int_equal(timer_next(&h, 0), -1);
    assert_int_equal(timer_next(&h, 12345), -1);
    struct tt a, b;
    tt_init(&a, &l, 1);
    tt_init(&b, &l, 2);
    tt_set(&h, &a, 100);
    assert_int_equal(timer_next(&h, 40), 60);
    assert_int_equal(timer_next(&h, 99), 1);
    assert_int_equal(timer_next(&h, 100), 0);
    assert_int_equal(timer_next(&h, 150), 0); /* overdue */
    tt_set(&h, &b, 70);
    assert_int_equal(timer_next(&h, 40), 30);
    timer_cancel(&h, &b.t);
    assert_int_equal(timer_next(&h, 40), 60);
    /* Large values don't wrap. */
    uint64_t far = UINT64_C(1) << 40;
    tt_set(&h, &b, far);
    timer_cancel(&h, &a.t);
    assert_int_equal(timer_next(&h, 5), (int64_t)(far - 5));
    timer_cancel(&h, &b.t);
    assert_int_equal(timer_next(&h, 5), -1);
    free(l.order);
    timer_heap_fini(&h);
}

static void test_deadline_in_the_past(void **state)
{
    (void)state;
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, 8);
    run_at(&h, &l, 1000);
    struct tt a;
    tt_init(&a, &l, 1);
    tt_set(&h, &a, 5);
    assert_int_equal(timer_next(&h, 1000), 0);
    run_at(&h, &l, 1000);
    assert_int_equal(a.fired, 1);
    assert_int_equal(a.fired_at, 1000);
    /* Zero is a deadline like any other. */
    tt_set(&h, &a, 0);
    run_at(&h, &l, 0);
    assert_int_equal(a.fired, 2);
    free(l.order);
    timer_heap_fini(&h);
}

/* ---- stress ---- */

struct ref {
    uint64_t due;
    int id;
};

static int cmp_ref(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    if (x->due != y->due)
        return (x->due > y->due) - (x->due < y->due);
    return (x->id > y->id) - (x->id < y->id);
}

static void test_stress_against_sorted_reference(void **state)
{
    (void)state;
    enum { N = 10000, HORIZON = 100000 };
    struct timer_heap h;
    timer_heap_init(&h);
    struct log l;
    log_init(&l, &h, N);
    struct tt *x = calloc(N, sizeof *x);
    int *cancelled = calloc(N, sizeof *cancelled);
    struct rng r = {0x5eed};

    for (int i = 0; i < N; i++) {
        tt_init(&x[i], &l, i);
        tt_set(&h, &x[i], rng_below(&r, HORIZON));
    }
    /* Churn: re-arm later (lazy), re-arm earlier, cancel, cancel and arm again. */
    for (int k = 0; k < N; k++) {
        int i = (int)rng_below(&r, N);
        switch (rng_below(&r, 4)) {
        case 0:
            if (!cancelled[i])
                tt_set(&h, &x[i], x[i].due + rng_below(&r, HORIZON / 4));
            break;
        case 1:
            if (!cancelled[i])
                tt_set(&h, &x[i], x[i].due / 2);
            break;
        case 2:
            timer_cancel(&h, &x[i].t);
            cancelled[i] = 1;
            break;
        default:
            timer_cancel(&h, &x[i].t);
            tt_set(&h, &x[i], rng_below(&r, HORIZON));
            cancelled[i] = 0;
            break;
        }
    }
    check_heap(&h);

    struct ref *ref = calloc(N, sizeof *ref);
    size_t nref = 0;
    for (int i = 0; i < N; i++) {
        if (cancelled[i]) {
            assert_false(timer_armed(&x[i].t));
            continue;
        }
        ref[nref].due = x[i].due;
        ref[nref].id = i;
        nref++;
    }
    assert_int_equal(h.len, nref);
    qsort(ref, nref, sizeof *ref, cmp_ref);

    /* Advance the clock in random steps: after each run, exactly the reference prefix due by
     * then has fired, each timer once, in deadline order, and none before its deadline. */
    uint64_t now = 0, prev = 0;
    size_t done = 0;
    int first = 1, have_prev = 0, steps = 0;
    while (done < nref) {
        int64_t next = timer_next(&h, now);
        assert_true(next >= 0);
        /* Never later than the earliest real deadline. */
        uint64_t earliest = ref[done].due;
        assert_true(earliest <= now || now + (uint64_t)next <= earliest);
        if (!first)
            now += 1 + rng_below(&r, 60);
        first = 0;
        size_t before = l.n;
        run_at(&h, &l, now);
        size_t want = done;
        while (want < nref && ref[want].due <= now)
            want++;
        assert_int_equal(l.n, want);
        for (size_t k = before; k < l.n; k++) {
            struct tt *t = &x[l.order[k]];
            assert_int_equal(t->fired, 1);
            assert_true(t->due <= now);
            assert_true(!have_prev || t->due > prev); /* else it fired a run late */
            if (k > before)
                assert_true(x[l.order[k - 1]].due <= t->due);
        }
        done = want;
        prev = now;
        have_prev = 1;
        if (++steps % 64 == 0)
            check_heap(&h);
    }
    /* Same multiset as the reference, each fired exactly once. */
    for (size_t k = 0; k < nref; k++)
        assert_int_equal(x[ref[k].id].fired, 1);
    for (int i = 0; i < N; i++)
        if (cancelled[i])
            assert_int_equal(x[i].fired, 0);
    assert_int_equal(h.len, 0);
    assert_int_equal(timer_next(&h, now), -1);
    free(ref);
    free(cancelled);
    free(x);
    free(l.order);
    timer_heap_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_in_deadline_order),
        cmocka_unit_test(test_fires_only_what_is_due),
        cmocka_unit_test(test_cancel_middle_head_tail),
        cmocka_unit_test(test_cancel_and_set_again),
        cmocka_unit_test(test_cancel_moves_last_up),
        cmocka_unit_test(test_rearm_later_is_lazy),
        cmocka_unit_test(test_rearm_earlier),
        cmocka_unit_test(test_rearm_from_callback),
        cmocka_unit_test(test_callback_changes_other_timers),
        cmocka_unit_test(test_timer_next),
        cmocka_unit_test(test_deadline_in_the_past),
        cmocka_unit_test(test_stress_against_sorted_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
