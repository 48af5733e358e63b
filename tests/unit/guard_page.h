/* guard_page: a cmocka fixture for over-read tests, shared by the parser tests. Inputs are
 * copied so that they end at the last byte before a PROT_NONE page: a read one byte too far
 * faults (picohttpparser's trick). */
#ifndef WEFT_TESTS_GUARD_PAGE_H
#define WEFT_TESTS_GUARD_PAGE_H

#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guard {
    unsigned char *base;
    size_t page;
};

static int guard_setup(void **state)
{
    static struct guard g;
    g.page = (size_t)sysconf(_SC_PAGESIZE);
    g.base = mmap(NULL, 2 * g.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.base == MAP_FAILED)
        return -1;
    if (mprotect(g.base + g.page, g.page, PROT_NONE) != 0)
        return -1;
    *state = &g;
    return 0;
}

static int guard_teardown(void **state)
{
    struct guard *g = *state;
    munmap(g->base, 2 * g->page);
    return 0;
}

/* Copies in[0..n) (n <= one page) to end right before the guard page; returns the copy. */
static inline void *guard_place(struct guard *g, const void *in, size_t n)
{
    if (n > g->page)
        return NULL;
    unsigned char *p = g->base + g->page - n;
    memcpy(p, in, n);
    return p;
}

#endif
