#include "core/bpool.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

static void *bpool_main(void *arg)
{
    struct bpool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        struct bjob *j = p->head;
        if (!j) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        __atomic_add_fetch(&p->running, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&p->lock);
        j->run(j);
        inbox_post(j->w, &j->done);
        __atomic_sub_fetch(&p->running, 1, __ATOMIC_RELAXED);
    }
}

int bpool_init(struct bpool *p, int nthreads)
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->head = p->tail = NULL;
    p->stop = 0;
    p->queued = 0;
    p->running = 0;
    p->nthreads = 0;
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads)
        return -ENOMEM;
    for (int i = 0; i < nthreads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, bpool_main, p);
        if (rc != 0) {
            bpool_fini(p);
            return -rc;
        }
        p->nthreads++;
    }
    return 0;
}

void bpool_fini(struct bpool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    p->threads = NULL;
    p->nthreads = 0;
}

void bpool_submit(struct bpool *p, struct bjob *j)
{
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}
