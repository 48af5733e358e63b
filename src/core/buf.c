#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

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
        p->free_count--;
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

void fpool_fini(struct fpool *p)
{
    for (size_t i = 0; i < p->slab_count; i++)
        free(p->slabs[i]);
    free(p->slabs);
    memset(p, 0, sizeof *p);
}

static int fpool_grow(struct fpool *p)
{
    if (p->slab_count == p->slab_cap) {
        size_t cap = p->slab_cap ? p->slab_cap * 2 : 16;
        void **s = realloc(p->slabs, cap * sizeof *s);
        if (!s)
            return -1;
        p->slabs = s;
        p->slab_cap = cap;
    }
    char *slab = calloc(p->per_slab, p->obj_size);
    if (!slab)
        return -1;
    p->slabs[p->slab_count++] = slab;
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
    p->live++;
    return obj;
}

void fpool_put(struct fpool *p, void *obj)
{
    memcpy(obj, &p->free_list, sizeof p->free_list);
    p->free_list = obj;
    p->live--;
}
