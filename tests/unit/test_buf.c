/* Unit tests for core/buf: the buffer pool's reuse and max_free, reference counts, oversized
 * and shared buffers (a shared buffer released on another thread), the fixed-size object
 * pool with its slab walk and live counters, and both pools' trimming after a burst. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* ---- buf_pool ---- */

static void test_get_put_reuses_the_same_buffer(void **state)
{
    (void)state;
    struct buf_pool p;
    buf_pool_init(&p, 8);
    struct buf *b = buf_get(&p);
    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->cap, BUF_SIZE);
    assert_int_equal(b->len, 0);
    assert_ptr_equal(b->pool, &p);
    assert_int_equal(p.live, 1);
    assert_int_equal(p.free_count, 0);

    memset(b->data, 'x', BUF_SIZE);
    b->len = 123;
    buf_unref(b);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.free_count, 1);

    /* The same buffer comes back, reset: one reference, nothing written. */
    struct buf *again = buf_get(&p);
    assert_ptr_equal(again, b);
    assert_int_equal(again->refs, 1);
    assert_int_equal(again->len, 0);
    assert_int_equal(again->cap, BUF_SIZE);
    assert_int_equal(p.live, 1);
    assert_int_equal(p.free_count, 0);
    buf_unref(again);
    buf_pool_fini(&p);
    assert_int_equal(p.free_count, 0);
    assert_null(p.free_list);
}

static void test_free_list_is_lifo(void **state)
{
    (void)state;
    struct buf_pool p;
    buf_pool_init(&p, 8);
    struct buf *a = buf_get(&p), *b = buf_get(&p), *c = buf_get(&p);
    assert_true(a != b && b != c && a != c);
    assert_int_equal(p.live, 3);
    buf_unref(a);
    buf_unref(b);
    buf_unref(c);
    assert_int_equal(p.free_count, 3);
    /* Most recently released first: the one most likely still in cache. */
    assert_ptr_equal(buf_get(&p), c);
    assert_ptr_equal(buf_get(&p), b);
    assert_ptr_equal(buf_get(&p), a);
    assert_int_equal(p.free_count, 0);
    assert_int_equal(p.live, 3);
    buf_unref(a);
    buf_unref(b);
    buf_unref(c);
    buf_pool_fini(&p);
}

static void test_refcount_releases_at_zero(void **state)
{
    (void)state;
    struct buf_pool p;
    buf_pool_init(&p, 8);
    struct buf *b = buf_get(&p);
    buf_ref(b);
    buf_ref(b);
    assert_int_equal(b->refs, 3);
    buf_unref(b);
    buf_unref(b);
    /* Still one reference: not back in the pool. */
    assert_int_equal(b->refs, 1);
    assert_int_equal(p.live, 1);
    assert_int_equal(p.free_count, 0);
    buf_unref(b);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.free_count, 1);
    assert_ptr_equal(p.free_list, b);
    buf_pool_fini(&p);
}

static void test_max_free_is_respected(void **state)
{
    (void)state;
    struct buf_pool p;
    buf_pool_init(&p, 2);
    struct buf *b[5];
    for (int i = 0; i < 5; i++) {
        b[i] = buf_get(&p);
        assert_non_null(b[i]);
    }
    assert_int_equal(p.live, 5);
    for (int i = 0; i < 5; i++)
        buf_unref(b[i]);
    /* Two kept, three freed (ASan reports a leak if they were dropped instead). */
    assert_int_equal(p.live, 0);
    assert_int_equal(p.free_count, 2);

    /* The kept ones are the first two released, and they come back before new ones. */
    struct buf *x = buf_get(&p), *y = buf_get(&p);
    assert_true((x == b[0] && y == b[1]) || (x == b[1] && y == b[0]));
    assert_int_equal(p.free_count, 0);
    struct buf *z = buf_get(&p);
    assert_non_null(z);
    assert_int_equal(p.live, 3);
    buf_unref(x);
    buf_unref(y);
    buf_unref(z);
    assert_int_equal(p.free_count, 2);
    buf_pool_fini(&p);
}

static void test_max_free_zero_keeps_nothing(void **state)
{
    (void)state;
    struct buf_pool p;
    buf_pool_init(&p, 0);
    struct buf *b = buf_get(&p);
    assert_int_equal(p.live, 1);
    buf_unref(b);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.free_count, 0);
    assert_null(p.free_list);
    buf_pool_fini(&p);
}

static void test_get_cap(void **state)
{
    (void)state;
    struct buf_pool p;
    buf_pool_init(&p, 4);

    /* Up to BUF_SIZE: a pooled buffer. */
    struct buf *small = buf_get_cap(&p, 10);
    assert_non_null(small);
    assert_ptr_equal(small->pool, &p);
    assert_int_equal(small->cap, BUF_SIZE);
    struct buf *exact = buf_get_cap(&p, BUF_SIZE);
    assert_non_null(exact);
    assert_ptr_equal(exact->pool, &p);
    assert_int_equal(p.live, 2);

    /* Past BUF_SIZE: malloc'd, outside the pool and its counters. */
    size_t big_cap = BUF_SIZE + 1;
    struct buf *big = buf_get_cap(&p, big_cap);
    assert_non_null(big);
    assert_null(big->pool);
    assert_true(big->cap >= big_cap);
    assert_int_equal(big->refs, 1);
    assert_int_equal(big->len, 0);
    assert_int_equal(p.live, 2);
    memset(big->data, 'y', big_cap); /* ASan checks the whole capacity is there */
    buf_ref(big);
    buf_unref(big);
    buf_unref(big); /* freed, not put on the pool's list */
    assert_int_equal(p.free_count, 0);
    assert_int_equal(p.live, 2);

    struct buf *huge = buf_get_cap(&p, (size_t)4 * BUF_SIZE);
    assert_non_null(huge);
    assert_null(huge->pool);
    assert_int_equal(huge->cap, 4 * BUF_SIZE);
    buf_unref(huge);

    buf_unref(small);
    buf_unref(exact);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.free_count, 2);
    buf_pool_fini(&p);
}

/* ---- shared buffers across threads ---- */

#define SHARED_THREADS 4
#define SHARED_ROUNDS 50

struct shared_arg {
    struct buf *b;
    pthread_barrier_t *start;
};

static void *drop_ref(void *arg)
{
    struct shared_arg *a = arg;
    pthread_barrier_wait(a->start);
    /* Read the bytes first: they must still be there until this thread's reference goes. */
    int ok = a->b->data[0] == 'S' && a->b->data[a->b->len - 1] == 'E';
    buf_unref(a->b);
    return (void *)(intptr_t)ok;
}

static void test_shared_released_on_other_threads(void **state)
{
    (void)state;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, SHARED_THREADS);
    /* Many rounds: each round the last reference is dropped by whichever thread loses the
     * race. ASan reports a double free or a leak; the count must reach zero exactly once. */
    for (int round = 0; round < SHARED_ROUNDS; round++) {
        struct buf *b = buf_new_shared(100);
        assert_non_null(b);
        assert_null(b->pool);
        assert_int_equal(b->refs, 1);
        assert_true(b->cap >= 100);
        memset(b->data, 'm', 100);
        b->data[0] = 'S';
        b->data[99] = 'E';
        b->len = 100;
        for (int i = 1; i < SHARED_THREADS; i++)
            buf_ref(b);
        pthread_t th[SHARED_THREADS];
        struct shared_arg args[SHARED_THREADS];
        for (int i = 0; i < SHARED_THREADS; i++) {
            args[i].b = b;
            args[i].start = &start;
            assert_int_equal(pthread_create(&th[i], NULL, drop_ref, &args[i]), 0);
        }
        for (int i = 0; i < SHARED_THREADS; i++) {
            void *ok;
            pthread_join(th[i], &ok);
            assert_true((intptr_t)ok);
        }
    }
    pthread_barrier_destroy(&start);
}

static void *drop_last(void *arg)
{
    buf_unref(arg);
    return NULL;
}

static void test_shared_last_ref_on_other_thread(void **state)
{
    (void)state;
    struct buf *b = buf_new_shared(BUF_SIZE * 2);
    assert_non_null(b);
    assert_null(b->pool);
    assert_int_equal(b->cap, BUF_SIZE * 2);
    buf_ref(b);
    buf_unref(b); /* this thread's reference */
    assert_int_equal(b->refs, 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drop_last, b), 0);
    pthread_join(th, NULL);
}

/* ---- fpool ---- */

struct obj {
    void *link;     /* the free-list link lives here while the object is free */
    uint32_t magic; /* a live marker past the link, as fpool.h tells owners to keep */
    uint32_t n;
    char pad[40];
};

#define OBJ_LIVE 0x4c495645u

static void test_fpool_get_put_reuse(void **state)
{
    (void)state;
    struct fpool p;
    fpool_init(&p, sizeof(struct obj), 4);
    assert_true(p.obj_size >= sizeof(struct obj));
    assert_int_equal(p.obj_size % 16, 0);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.slab_count, 0);

    struct obj *a = fpool_get(&p);
    assert_non_null(a);
    assert_int_equal(p.slab_count, 1);
    assert_int_equal(p.live, 1);
    /* Fresh objects come from a zeroed slab. */
    assert_int_equal(a->magic, 0);
    assert_int_equal(a->n, 0);
    a->magic = OBJ_LIVE;
    a->n = 7;
    fpool_put(&p, a);
    assert_int_equal(p.live, 0);

    /* The same object comes back, with what its last user left past the link. */
    struct obj *b = fpool_get(&p);
    assert_ptr_equal(b, a);
    assert_int_equal(b->magic, OBJ_LIVE);
    assert_int_equal(b->n, 7);
    assert_int_equal(p.live, 1);
    fpool_put(&p, b);
    fpool_fini(&p);
    assert_int_equal(p.slab_count, 0);
    assert_null(p.slabs);
}

static void test_fpool_grows_by_slabs(void **state)
{
    (void)state;
    struct fpool p;
    fpool_init(&p, sizeof(struct obj), 8);
    enum { N = 8 * 40 + 3 }; /* more slabs than the first slab array holds (16) */
    struct obj *o[N];
    for (int i = 0; i < N; i++) {
        o[i] = fpool_get(&p);
        assert_non_null(o[i]);
        assert_int_equal((uintptr_t)o[i] % 16, 0);
        o[i]->magic = OBJ_LIVE;
        o[i]->n = (uint32_t)i;
    }
    assert_int_equal(p.live, N);
    assert_int_equal(p.slab_count, (N + 7) / 8);
    /* Distinct and not overlapping: every object still holds its own number. */
    for (int i = 0; i < N; i++)
        assert_int_equal(o[i]->n, i);
    for (int i = 0; i < N; i += 2)
        fpool_put(&p, o[i]);
    assert_int_equal(p.live, N / 2);
    size_t slabs = p.slab_count;
    /* Put objects are reused before any new slab is made. */
    for (int i = 0; i < N; i += 2) {
        o[i] = fpool_get(&p);
        assert_non_null(o[i]);
    }
    assert_int_equal(p.slab_count, slabs);
    assert_int_equal(p.live, N);
    for (int i = 0; i < N; i++)
        fpool_put(&p, o[i]);
    assert_int_equal(p.live, 0);
    fpool_fini(&p);
}

static void test_fpool_small_objects(void **state)
{
    (void)state;
    struct fpool p;
    fpool_init(&p, 1, 0); /* at least a pointer, default slab size */
    assert_true(p.obj_size >= sizeof(void *));
    assert_true(p.per_slab > 0);
    void *a = fpool_get(&p), *b = fpool_get(&p);
    assert_non_null(a);
    assert_non_null(b);
    assert_true((char *)b - (char *)a >= (ptrdiff_t)sizeof(void *) ||
                (char *)a - (char *)b >= (ptrdiff_t)sizeof(void *));
    fpool_put(&p, a);
    fpool_put(&p, b);
    fpool_fini(&p);
}

static void test_fpool_obj_walk(void **state)
{
    (void)state;
    struct fpool p;
    fpool_init(&p, sizeof(struct obj), 5);
    enum { N = 23 };
    struct obj *o[N];
    for (int i = 0; i < N; i++) {
        o[i] = fpool_get(&p);
        o[i]->magic = OBJ_LIVE;
        o[i]->n = (uint32_t)i;
    }
    /* Mark a few free again: the walk recognises live ones by the marker. */
    for (int i = 0; i < N; i += 3) {
        o[i]->magic = 0;
        fpool_put(&p, o[i]);
    }
    int seen[N];
    memset(seen, 0, sizeof seen);
    size_t walked = 0, live = 0;
    for (size_t s = 0; s < p.slab_count; s++) {
        for (size_t i = 0; i < p.per_slab; i++) {
            struct obj *x = fpool_obj(&p, s, i);
            walked++;
            if (x->magic != OBJ_LIVE)
                continue;
            assert_true(x->n < N);
            assert_ptr_equal(x, o[x->n]);
            seen[x->n]++;
            live++;
        }
    }
    assert_int_equal(walked, p.slab_count * p.per_slab);
    assert_int_equal(walked, 25); /* five slabs of five */
    assert_int_equal(live, p.live);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], i % 3 == 0 ? 0 : 1);
    for (int i = 0; i < N; i++)
        if (i % 3 != 0)
            fpool_put(&p, o[i]);
    assert_int_equal(p.live, 0);
    fpool_fini(&p);
}

/* ---- trimming after a burst ---- */

static void test_buf_pool_trim_frees_what_stayed_unused(void **state)
{
    (void)state;
    struct buf_pool p;
    buf_pool_init(&p, 64);
    enum { N = 20 };
    struct buf *b[N];
    for (int i = 0; i < N; i++)
        b[i] = buf_get(&p);
    for (int i = 0; i < N; i++)
        buf_unref(b[i]);
    assert_int_equal(p.free_count, N);
    /* The burst used every buffer since the pool began: nothing was idle all along. */
    assert_int_equal(buf_pool_trim(&p, 2), 0);
    assert_int_equal(p.free_count, N);
    /* A quiet interval with 3 buffers in use at most: all but those 3 stayed idle, and at
     * least 2 are kept. */
    struct buf *x[3];
    for (int i = 0; i < 3; i++)
        x[i] = buf_get(&p);
    for (int i = 0; i < 3; i++)
        buf_unref(x[i]);
    assert_int_equal(buf_pool_trim(&p, 2), (N - 3) * (sizeof(struct buf) + BUF_SIZE));
    assert_int_equal(p.free_count, 3);
    /* Nothing used since: down to the 2 kept. */
    assert_int_equal(buf_pool_trim(&p, 2), sizeof(struct buf) + BUF_SIZE);
    assert_int_equal(p.free_count, 2);
    assert_int_equal(buf_pool_trim(&p, 2), 0);
    assert_int_equal(buf_pool_trim(&p, 0), 2 * (sizeof(struct buf) + BUF_SIZE));
    assert_int_equal(p.free_count, 0);
    assert_null(p.free_list);
    /* The pool still works after being emptied. */
    struct buf *again = buf_get(&p);
    assert_non_null(again);
    buf_unref(again);
    assert_int_equal(p.live, 0);
    buf_pool_fini(&p);
}

static void test_fpool_trim_after_a_burst(void **state)
{
    (void)state;
    struct fpool p;
    fpool_init(&p, sizeof(struct obj), 8);
    enum { N = 8 * 50 };
    static struct obj *o[N];
    for (int i = 0; i < N; i++) {
        o[i] = fpool_get(&p);
        o[i]->magic = OBJ_LIVE;
        o[i]->n = (uint32_t)i;
    }
    assert_int_equal(p.slab_count, 50);
    for (int i = 0; i < N; i += 2)
        fpool_put(&p, o[i]);
    /* Objects in use: nothing is given back, whatever the peak. */
    assert_int_equal(fpool_trim(&p, 0), 0);
    assert_int_equal(fpool_trim(&p, 0), 0);
    assert_int_equal(p.slab_count, 50);
    for (int i = 1; i < N; i += 2)
        assert_int_equal(o[i]->n, i);
    for (int i = 1; i < N; i += 2)
        fpool_put(&p, o[i]);
    /* All free, but the last interval saw N/2 in use: room for them stays (25 slabs). */
    assert_int_equal(fpool_trim(&p, 0), 25 * 8 * p.obj_size);
    assert_int_equal(p.slab_count, 25);
    assert_int_equal(p.live, 0);
    /* A quiet interval with 10 in use at most: two slabs stay. */
    for (int i = 0; i < 10; i++)
        o[i] = fpool_get(&p);
    assert_int_equal(p.slab_count, 25); /* kept slabs are used before new ones are made */
    for (int i = 0; i < 10; i++)
        fpool_put(&p, o[i]);
    assert_int_equal(fpool_trim(&p, 0), 23 * 8 * p.obj_size);
    assert_int_equal(p.slab_count, 2);
    /* keep_free is a floor: 9 objects need two slabs, 8 one. */
    assert_int_equal(fpool_trim(&p, 9), 0);
    assert_int_equal(fpool_trim(&p, 8), 8 * p.obj_size);
    assert_int_equal(p.slab_count, 1);
    assert_int_equal(fpool_trim(&p, 0), 8 * p.obj_size);
    assert_int_equal(p.slab_count, 0);
    assert_null(p.free_list);
    fpool_fini(&p);
}

static void test_fpool_trimmed_slabs_are_reused_zeroed(void **state)
{
    (void)state;
    struct fpool p;
    fpool_init(&p, sizeof(struct obj), 4);
    enum { N = 4 * 6 };
    struct obj *o[N];
    for (int i = 0; i < N; i++) {
        o[i] = fpool_get(&p);
        o[i]->magic = OBJ_LIVE;
        o[i]->n = (uint32_t)i + 1;
    }
    for (int i = 0; i < N; i++)
        fpool_put(&p, o[i]);
    fpool_trim(&p, 0);
    for (int i = 0; i < 9; i++)
        fpool_put(&p, fpool_get(&p));
    /* Interleaved gets and puts peaked at one object: one slab is kept. */
    assert_int_equal(fpool_trim(&p, 5), 4 * 4 * p.obj_size);
    assert_int_equal(p.slab_count, 2);
    /* The kept slabs give distinct, zeroed objects, and only then does the pool grow. */
    struct obj *x[4 * 3];
    for (int i = 0; i < 8; i++) {
        x[i] = fpool_get(&p);
        assert_non_null(x[i]);
        assert_int_equal(x[i]->magic, 0);
        assert_int_equal(x[i]->n, 0);
        x[i]->n = 100 + (uint32_t)i;
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(x[i], x[j]);
    }
    assert_int_equal(p.slab_count, 2);
    for (int i = 8; i < 12; i++)
        x[i] = fpool_get(&p);
    assert_int_equal(p.slab_count, 3);
    for (int i = 0; i < 8; i++)
        assert_int_equal(x[i]->n, 100 + i);
    assert_int_equal(p.live, 12);
    for (int i = 0; i < 12; i++)
        fpool_put(&p, x[i]);
    fpool_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put_reuses_the_same_buffer),
        cmocka_unit_test(test_free_list_is_lifo),
        cmocka_unit_test(test_refcount_releases_at_zero),
        cmocka_unit_test(test_max_free_is_respected),
        cmocka_unit_test(test_max_free_zero_keeps_nothing),
        cmocka_unit_test(test_get_cap),
        cmocka_unit_test(test_shared_released_on_other_threads),
        cmocka_unit_test(test_shared_last_ref_on_other_thread),
        cmocka_unit_test(test_fpool_get_put_reuse),
        cmocka_unit_test(test_fpool_grows_by_slabs),
        cmocka_unit_test(test_fpool_small_objects),
        cmocka_unit_test(test_fpool_obj_walk),
        cmocka_unit_test(test_buf_pool_trim_frees_what_stayed_unused),
        cmocka_unit_test(test_fpool_trim_after_a_burst),
        cmocka_unit_test(test_fpool_trimmed_slabs_are_reused_zeroed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
