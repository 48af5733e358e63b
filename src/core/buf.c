#include "core/buf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void buf_pool_init(struct buf_pool *p, uint32_t max_free)
{
    memset(p, 0, sizeof *p);
    p->max_free = max_free;
}

void buf_pool_fini(struct buf_pool *p)
{
    struct buf *b = p->free_list;
    while (b) {
        struct buf *next;
        memcpy(&next, b->data, sizeof next);
        free(b);
        b = next;
    }
    p->free_list = NULL;
    p->free_count = 0;
    p->free_low = 0;
}

size_t buf_pool_trim(struct buf_pool *p, uint32_t keep)
{
    uint32_t n = p->free_low;
    if (p->free_count < keep)
        n = 0;
    else if (n > p->free_count - keep)
        n = p->free_count - keep;
    size_t freed = 0;
    for (; n > 0; n--) {
        struct buf *b = p->free_list;
        memcpy(&p->free_list, b->data, sizeof p->free_list);
        p->free_count--;
        freed += sizeof *b + b->cap;
        free(b);
    }
    p->free_low = p->free_count;
    return freed;
}

static struct buf *buf_alloc(size_t cap, struct buf_pool *pool)
{
    struct buf *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->refs = 1;
    b->cap = (uint32_t)cap;
    b->len = 0;
    b->pad_ = 0;
    b->pool = pool;
    return b;
}

struct buf *buf_get(struct buf_pool *p)
{
    struct buf *b = p->free_list;
    if (b) {
        memcpy(&p->free_list, b->data, sizeof p->free_list);
        if (--p->free_count < p->free_low)
            p->free_low = p->free_count;
        b->refs = 1;
        b->len = 0;
    } else {
        b = buf_alloc(BUF_SIZE, p);
        if (!b)
            return NULL;
    }
    p->live++;
    return b;
}

struct buf *buf_get_cap(struct buf_pool *p, size_t cap)
{
    if (cap <= BUF_SIZE)
        return buf_get(p);
    if (cap > UINT32_MAX)
        return NULL;
    return buf_alloc(cap, NULL);
}

struct buf *buf_new_shared(size_t cap)
{
    if (cap > UINT32_MAX)
        return NULL;
    return buf_alloc(cap, NULL);
}

void buf_release_(struct buf *b)
{
    struct buf_pool *p = b->pool;
    if (!p) {
        free(b);
        return;
    }
    p->live--;
    if (p->free_count >= p->max_free) {
        free(b);
        return;
    }
    memcpy(b->data, &p->free_list, sizeof p->free_list);
    p->free_list = b;
    p->free_count++;
}

void fpool_init(struct fpool *p, size_t obj_size, size_t per_slab)
{
    memset(p, 0, sizeof *p);
    if (obj_size < sizeof(void *))
        obj_size = sizeof(void *);
    p->obj_size = (obj_size + 15) & ~(size_t)15;
    p->per_slab = per_slab ? per_slab : 64;
}

/* Slabs are mapped apart from malloc's heap, so that a slab given back is memory the system
 * has again, not a hole in a heap that a later small allocation pins (mmap rounds the size up
 * to whole pages: a slab is best a multiple of 4 KiB). */
static size_t slab_bytes(const struct fpool *p)
{
    return p->per_slab * p->obj_size;
}

static void *slab_map(const struct fpool *p)
{
    void *s = mmap(NULL, slab_bytes(p), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return s == MAP_FAILED ? NULL : s;
}

static void slab_unmap(const struct fpool *p, void *slab)
{
    munmap(slab, slab_bytes(p));
}

void fpool_fini(struct fpool *p)
{
    for (size_t i = 0; i < p->slab_count; i++)
        slab_unmap(p, p->slabs[i]);
    free(p->slabs);
    memset(p, 0, sizeof *p);
}

/* Carves the next whole slab into the free list, making one when there is none. */
static int fpool_grow(struct fpool *p)
{
    char *slab;
    if (p->carved < p->slab_count) {
        /* Kept by fpool_trim: what its last users left in it goes, as in a new slab. */
        slab = p->slabs[p->carved];
        memset(slab, 0, slab_bytes(p));
    } else {
        if (p->slab_count == p->slab_cap) {
            size_t cap = p->slab_cap ? p->slab_cap * 2 : 16;
            void **s = realloc(p->slabs, cap * sizeof *s);
            if (!s)
                return -1;
            p->slabs = s;
            p->slab_cap = cap;
        }
        slab = slab_map(p);
        if (!slab)
            return -1;
        p->slabs[p->slab_count++] = slab;
    }
    p->carved++;
    for (size_t i = p->per_slab; i-- > 0;) {
        void *obj = slab + i * p->obj_size;
        memcpy(obj, &p->free_list, sizeof p->free_list);
        p->free_list = obj;
    }
    return 0;
}

void *fpool_get(struct fpool *p)
{
    if (!p->free_list && fpool_grow(p) < 0)
        return NULL;
    void *obj = p->free_list;
    memcpy(&p->free_list, obj, sizeof p->free_list);
    if (++p->live > p->live_peak)
        p->live_peak = p->live;
    return obj;
}

void fpool_put(struct fpool *p, void *obj)
{
    memcpy(obj, &p->free_list, sizeof p->free_list);
    p->free_list = obj;
    p->live--;
}

size_t fpool_trim(struct fpool *p, size_t keep_free)
{
    size_t want = (size_t)p->live_peak > keep_free ? (size_t)p->live_peak : keep_free;
    p->live_peak = p->live;
    size_t keep = (want + p->per_slab - 1) / p->per_slab;
    if (p->live != 0 || keep >= p->slab_count)
        return 0;
    /* Nothing is in use: every object is on the free list, so the list can simply be dropped
     * and the slabs kept are carved again when needed; no object is visited. */
    for (size_t i = keep; i < p->slab_count; i++)
        slab_unmap(p, p->slabs[i]);
    size_t released = p->slab_count - keep;
    p->slab_count = keep;
    p->carved = 0;
    p->free_list = NULL;
    return released * slab_bytes(p);
}
