/* bpool: a fixed pool of threads for calls that block (the /block endpoint, file work that
 * can't use sendfile). A job runs on a pool thread, then its completion is posted to the inbox of
 * the worker that submitted it, so results are handled on that worker's loop. */
#ifndef WEFT_CORE_BPOOL_H
#define WEFT_CORE_BPOOL_H

#include <pthread.h>

#include "core/worker.h"

struct bjob;
typedef void (*bjob_fn)(struct bjob *j);

struct bjob {
    struct inbox_msg done; /* done.fn runs on the worker after run() returns */
    struct bjob *next;
    struct worker *w;
    bjob_fn run; /* runs on a pool thread: touch nothing of the worker's */
};

struct bpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct bjob *head, *tail;
    pthread_t *threads;
    int nthreads;
    int stop;
    unsigned long queued;
    int running; /* atomic: jobs on a pool thread now */
};

int bpool_init(struct bpool *p, int nthreads);
/* Stops after the queued jobs ran; their completions are posted but may never be read. */
void bpool_fini(struct bpool *p);
/* Queues j; j->run runs on a pool thread, then j->done.fn on worker j->w. */
void bpool_submit(struct bpool *p, struct bjob *j);

#endif
