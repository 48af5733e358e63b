/* Unit tests for the worker inbox (core/worker.c: inbox_post and its io callback) and the
 * blocking pool (core/bpool): a minimal worker with no services, its loop driven from the test
 * thread; messages from several threads delivered exactly once, in order per producer, on the
 * loop thread; blocking jobs run on pool threads and complete on the loop thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bpool.h"
#include "core/config.h"
#include "core/server.h"
#include "core/worker.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A worker with no services: its loop, pools and inbox only. */
struct fixture {
    struct config cfg;
    struct server srv;
    struct worker w;
    pthread_t loop_thread; /* the test thread, which drives w.loop */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    config_defaults(&f->cfg);
    f->srv.cfg = &f->cfg;
    f->srv.nworkers = 1;
    f->srv.done_fd = -1;
    if (worker_init(&f->w, &f->srv, 0) < 0)
        return -1;
    f->srv.workers = &f->w;
    f->loop_thread = pthread_self();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int leftover = f->w.inbox.head != NULL;
    worker_fini(&f->w);
    free(f);
    return leftover ? -1 : 0;
}

/* Drives the worker's loop until *count reaches want or the time runs out. */
static void run_until(struct fixture *f, const int *count, int want, uint64_t max_ms)
{
    uint64_t t0 = mono_ms();
    while (*count < want) {
        loop_run_once(&f->w.loop, 50);
        assert_true(mono_ms() - t0 < max_ms);
    }
}

/* ---- inbox ---- */

struct msg {
    struct inbox_msg m;
    int producer;
    int seq;
};

struct tally {
    struct fixture *f;
    int delivered;
    int wrong_thread;
    int out_of_order;
    int *next_seq; /* per producer: the seq expected next */
    char *seen;    /* per message: delivered how many times */
    int per_producer;
    struct worker *w_seen;
};

/* Messages find the tally through the worker's first service slot (no service uses it here). */
static struct tally *tally_of(struct worker *w)
{
    return w->svc_state[0];
}

static void on_msg(struct worker *w, struct inbox_msg *im)
{
    struct msg *m = (struct msg *)im;
    struct tally *t = tally_of(w);
    t->w_seen = w;
    if (!pthread_equal(pthread_self(), t->f->loop_thread))
        t->wrong_thread++;
    if (m->seq != t->next_seq[m->producer])
        t->out_of_order++;
    t->next_seq[m->producer] = m->seq + 1;
    t->seen[m->producer * t->per_producer + m->seq]++;
    t->delivered++;
}

#define PRODUCERS 4
#define TOTAL_MESSAGES 100000
#define PER_PRODUCER (TOTAL_MESSAGES / PRODUCERS)

struct producer {
    struct worker *w;
    struct msg *msgs;
    int id;
    pthread_barrier_t *start;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    pthread_barrier_wait(p->start);
    for (int i = 0; i < PER_PRODUCER; i++) {
        struct msg *m = &p->msgs[i];
        m->m.fn = on_msg;
        m->producer = p->id;
        m->seq = i;
        inbox_post(p->w, &m->m);
        /* Now and then let the reader catch up, so the list empties and the eventfd is
         * written again many times over. */
        if (i % 4096 == 0)
            sched_yield();
    }
    return NULL;
}

static void test_many_producers_exactly_once_in_order(void **state)
{
    struct fixture *f = *state;
    struct tally t = {.f = f, .per_producer = PER_PRODUCER};
    int next_seq[PRODUCERS] = {0};
    t.next_seq = next_seq;
    t.seen = calloc(TOTAL_MESSAGES, 1);
    f->w.svc_state[0] = &t;
    struct msg *msgs = calloc(TOTAL_MESSAGES, sizeof *msgs);
    assert_non_null(msgs);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, PRODUCERS + 1);
    pthread_t th[PRODUCERS];
    struct producer p[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct producer){
            .w = &f->w, .msgs = msgs + i * PER_PRODUCER, .id = i, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, produce, &p[i]), 0);
    }
    pthread_barrier_wait(&start);
    /* The loop thread drains while the producers post. */
    run_until(f, &t.delivered, TOTAL_MESSAGES, 4000);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);

    /* Nothing left, nothing more: a last iteration delivers nothing twice. */
    loop_run_once(&f->w.loop, 10);
    assert_int_equal(t.delivered, TOTAL_MESSAGES);
    assert_int_equal(t.wrong_thread, 0);
    assert_int_equal(t.out_of_order, 0);
    assert_ptr_equal(t.w_seen, &f->w);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(next_seq[i], PER_PRODUCER);
    for (int i = 0; i < TOTAL_MESSAGES; i++)
        if (t.seen[i] != 1)
            fail_msg("message %d delivered %d times", i, t.seen[i]);
    assert_null(f->w.inbox.head);
    assert_null(f->w.inbox.tail);
    f->w.svc_state[0] = NULL;
    free(msgs);
    free(t.seen);
}

/* A message that posts another from the loop thread while the inbox is being drained. */
struct chain {
    struct inbox_msg m;
    int left;
    int *runs;
};

static void on_chain(struct worker *w, struct inbox_msg *im)
{
    struct chain *c = (struct chain *)im;
    (*c->runs)++;
    if (c->left-- > 0)
        inbox_post(w, &c->m);
}

static void test_post_from_the_loop_thread(void **state)
{
    struct fixture *f = *state;
    int runs = 0;
    struct chain c = {.m.fn = on_chain, .left = 3, .runs = &runs};
    inbox_post(&f->w, &c.m);
    /* Each re-post wakes the loop again: nothing is lost when the list empties mid-drain. */
    run_until(f, &runs, 4, 2000);
    loop_run_once(&f->w.loop, 10);
    assert_int_equal(runs, 4);
    assert_null(f->w.inbox.head);
}

static void test_spurious_wakeup(void **state)
{
    struct fixture *f = *state;
    /* The eventfd fires with an empty list: harmless. */
    uint64_t one = 1;
    assert_int_equal(write(f->w.inbox.io.fd, &one, sizeof one), sizeof one);
    assert_int_equal(loop_run_once(&f->w.loop, 100), 1);
    /* And the eventfd was drained: the next iteration waits instead of spinning. */
    assert_int_equal(loop_run_once(&f->w.loop, 0), 0);

    int runs = 0;
    struct chain c = {.m.fn = on_chain, .left = 0, .runs = &runs};
    inbox_post(&f->w, &c.m);
    run_until(f, &runs, 1, 2000);
    assert_int_equal(runs, 1);
}

static void test_stop_message(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(worker_post_stop(&f->w), 0);
    assert_false(f->w.loop.stop);
    uint64_t t0 = mono_ms();
    while (!f->w.loop.stop) {
        loop_run_once(&f->w.loop, 50);
        assert_true(mono_ms() - t0 < 2000);
    }
}

/* ---- blocking pool ---- */

#define JOBS 64

struct job {
    struct bjob j;
    pthread_t ran_on;
    pthread_t done_on;
    int ran;
    int done;
    struct fixture *f;
    int *done_count;
};

static void job_run(struct bjob *bj)
{
    struct job *j = (struct job *)bj;
    j->ran_on = pthread_self();
    __atomic_add_fetch(&j->ran, 1, __ATOMIC_RELAXED);
    /* Block a little, as a real job would. */
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
}

static void job_done(struct worker *w, struct inbox_msg *m)
{
    struct job *j = (struct job *)((char *)m - offsetof(struct job, j.done));
    assert_ptr_equal(w, j->j.w);
    j->done_on = pthread_self();
    j->done++;
    (*j->done_count)++;
}

static void jobs_init(struct job *jobs, int n, struct fixture *f, int *done_count)
{
    memset(jobs, 0, (size_t)n * sizeof *jobs);
    for (int i = 0; i < n; i++) {
        jobs[i].f = f;
        jobs[i].done_count = done_count;
        jobs[i].j.w = &f->w;
        jobs[i].j.run = job_run;
        jobs[i].j.done.fn = job_done;
    }
}

static void test_bpool_runs_off_loop_and_completes_on_loop(void **state)
{
    struct fixture *f = *state;
    struct bpool bp;
    assert_int_equal(bpool_init(&bp, 3), 0);
    assert_int_equal(bp.nthreads, 3);
    struct job *jobs = calloc(JOBS, sizeof *jobs);
    int done = 0;
    jobs_init(jobs, JOBS, f, &done);
    for (int i = 0; i < JOBS; i++)
        bpool_submit(&bp, &jobs[i].j);
    run_until(f, &done, JOBS, 4000);
    loop_run_once(&f->w.loop, 10);
    assert_int_equal(done, JOBS);
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(jobs[i].ran, 1);
        assert_int_equal(jobs[i].done, 1);
        assert_false(pthread_equal(jobs[i].ran_on, f->loop_thread));
        assert_true(pthread_equal(jobs[i].done_on, f->loop_thread));
        /* It ran on one of the pool's threads. */
        int mine = 0;
        for (int k = 0; k < bp.nthreads; k++)
            mine |= pthread_equal(jobs[i].ran_on, bp.threads[k]);
        assert_true(mine);
    }
    bpool_fini(&bp);
    assert_int_equal(bp.queued, 0);
    assert_int_equal(bp.running, 0);
    free(jobs);
}

static void test_bpool_fini_runs_queued_jobs(void **state)
{
    struct fixture *f = *state;
    struct bpool bp;
    assert_int_equal(bpool_init(&bp, 1), 0);
    struct job *jobs = calloc(JOBS, sizeof *jobs);
    int done = 0;
    jobs_init(jobs, JOBS, f, &done);
    for (int i = 0; i < JOBS; i++)
        bpool_submit(&bp, &jobs[i].j);
    /* Stops after the queued jobs ran; their completions wait in the inbox. */
    bpool_fini(&bp);
    for (int i = 0; i < JOBS; i++)
        assert_int_equal(jobs[i].ran, 1);
    assert_int_equal(done, 0);
    run_until(f, &done, JOBS, 2000);
    for (int i = 0; i < JOBS; i++)
        assert_int_equal(jobs[i].done, 1);
    free(jobs);
}

static void test_bpool_idle_threads_wait_for_work(void **state)
{
    struct fixture *f = *state;
    struct bpool bp;
    assert_int_equal(bpool_init(&bp, 2), 0);
    struct job *jobs = calloc(8, sizeof *jobs);
    int done = 0;
    jobs_init(jobs, 8, f, &done);
    /* Jobs one at a time, with the pool idle in between: its threads wait, they don't quit. */
    for (int i = 0; i < 8; i++) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        bpool_submit(&bp, &jobs[i].j);
        run_until(f, &done, i + 1, 2000);
        assert_int_equal(jobs[i].done, 1);
        assert_false(pthread_equal(jobs[i].ran_on, f->loop_thread));
    }
    bpool_fini(&bp);
    free(jobs);
}

int main(void)
{
    alarm(60); /* a hang is a failure */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_producers_exactly_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_from_the_loop_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spurious_wakeup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bpool_runs_off_loop_and_completes_on_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bpool_fini_runs_queued_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bpool_idle_threads_wait_for_work, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
