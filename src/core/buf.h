/* buf: reference-counted byte buffers and the per-worker pools they come from.
 *
 * A buffer from a pool belongs to one worker and goes back to that worker's free list when its
 * last reference is dropped; only that worker may hold references to it. A buffer made with
 * buf_new_shared (a chat frame fanned out to several workers) is malloc'd and freed by whichever
 * thread drops the last reference; its count is atomic and its bytes are read-only once shared. */
#ifndef WEFT_CORE_BUF_H
#define WEFT_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#define BUF_SIZE 16384 /* the pooled size: a whole 16 KiB TLS record, a typical request head */

struct buf_pool;

struct buf {
    uint32_t refs; /* atomic */
    uint32_t cap;  /* bytes in data */
    uint32_t len;  /* bytes written so far (the append mark) */
    uint32_t pad_;
    struct buf_pool *pool; /* NULL: malloc'd, free() on the last unref */
    char data[];
};

struct buf_pool {
    struct buf *free_list; /* linked through the first bytes of data */
    uint32_t free_count;
    uint32_t max_free; /* buffers kept for reuse; beyond it they are freed */
    uint64_t live;     /* buffers handed out and not yet returned */
    uint32_t free_low; /* the fewest free buffers since the last buf_pool_trim */
};

void buf_pool_init(struct buf_pool *p, uint32_t max_free);
void buf_pool_fini(struct buf_pool *p);
/* Frees the buffers that stayed unused since the last call (the free list's low-water mark),
 * keeping at least `keep` free, so that a pool grown by a burst shrinks back once the burst is
 * over. Returns the bytes freed. For a low-frequency timer. */
size_t buf_pool_trim(struct buf_pool *p, uint32_t keep);

/* A BUF_SIZE buffer with one reference, or NULL on ENOMEM. */
struct buf *buf_get(struct buf_pool *p);
/* A buffer of at least cap bytes, from the pool when cap <= BUF_SIZE, else malloc'd. */
struct buf *buf_get_cap(struct buf_pool *p, size_t cap);
/* A malloc'd buffer that any thread may release. */
struct buf *buf_new_shared(size_t cap);

static inline void buf_ref(struct buf *b)
{
    __atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
}

void buf_release_(struct buf *b);

static inline void buf_unref(struct buf *b)
{
    if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
        buf_release_(b);
}

/* Fixed-size object pool: a free list carved from zeroed slabs, returned to the system by
 * fpool_trim or fpool_fini. An object comes back with what its last user left in it, except its
 * first pointer-sized bytes, which hold the free-list link; owners that must recognise live
 * objects while walking the slabs (fpool_obj) keep a marker past those bytes. */
struct fpool {
    void *free_list;
    void **slabs;
    size_t slab_count, slab_cap;
    size_t carved; /* slabs [0, carved) were cut into objects; the others wait whole */
    size_t obj_size, per_slab;
    uint64_t live;
    uint64_t live_peak; /* the most objects in use at once since the last fpool_trim */
};

void fpool_init(struct fpool *p, size_t obj_size, size_t per_slab);
void fpool_fini(struct fpool *p);
void *fpool_get(struct fpool *p);
void fpool_put(struct fpool *p, void *obj);
/* When no object is in use, frees the slabs beyond those needed for the peak use seen since
 * the last call (and at least keep_free objects), so that a pool grown by a burst shrinks back
 * once the burst is over; otherwise it only starts a new peak. Costs O(slabs), no object is
 * visited. Returns the bytes freed. Not for pools walked with fpool_obj while objects may be
 * stale: a kept slab is zeroed only when it is carved again. */
size_t fpool_trim(struct fpool *p, size_t keep_free);
/* The i-th object of slab s, for walking every object ever handed out. */
static inline void *fpool_obj(const struct fpool *p, size_t s, size_t i)
{
    return (char *)p->slabs[s] + i * p->obj_size;
}

#endif
