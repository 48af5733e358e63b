#include "chat/hub.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int hub_init(struct chat_hub *h, int max_rooms, int max_per_room)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    h->max_rooms = max_rooms;
    h->max_per_room = max_per_room;
    h->next_guest = 1;
    if (getrandom(&h->instance, sizeof h->instance, 0) != sizeof h->instance)
        h->instance = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return 0;
}

void hub_fini(struct chat_hub *h)
{
    for (unsigned i = 0; i < h->nbuckets; i++) {
        while (h->buckets[i]) {
            struct hub_room *r = h->buckets[i];
            h->buckets[i] = r->next;
            free(r);
        }
    }
    free(h->buckets);
    h->buckets = NULL;
    h->nbuckets = 0;
    pthread_mutex_destroy(&h->lock);
}

static struct hub_room **slot(struct chat_hub *h, const char *room)
{
    struct hub_room **pp = &h->buckets[hub_name_hash(room) & (h->nbuckets - 1)];
    while (*pp && strcmp((*pp)->name, room) != 0)
        pp = &(*pp)->next;
    return pp;
}

static struct hub_room *find(struct chat_hub *h, const char *room)
{
    return h->nbuckets ? *slot(h, room) : NULL;
}

/* Rehashes into n buckets (a power of two). On ENOMEM the table stays as it was: a denser
 * table is slower, not wrong. */
static int rehash(struct chat_hub *h, unsigned n)
{
    struct hub_room **nb = calloc(n, sizeof *nb);
    if (!nb)
        return -1;
    for (unsigned i = 0; i < h->nbuckets; i++) {
        for (struct hub_room *r = h->buckets[i], *next; r; r = next) {
            next = r->next;
            struct hub_room **b = &nb[hub_name_hash(r->name) & (n - 1)];
            r->next = *b;
            *b = r;
        }
    }
    free(h->buckets);
    h->buckets = nb;
    h->nbuckets = n;
    return 0;
}

static int join_locked(struct chat_hub *h, const char *room, int *members)
{
    struct hub_room *r = find(h, room);
    if (!r) {
        if (h->count >= h->max_rooms)
            return HUB_TOO_MANY_ROOMS;
        if ((unsigned)h->count >= h->nbuckets &&
            rehash(h, h->nbuckets ? h->nbuckets * 2 : 16) < 0 && !h->nbuckets)
            return HUB_NOMEM;
        size_t len = strnlen(room, CHAT_NAME_MAX - 1);
        r = malloc(sizeof *r + len + 1);
        if (!r)
            return HUB_NOMEM;
        r->members = 0;
        memcpy(r->name, room, len);
        r->name[len] = '\0';
        struct hub_room **b = &h->buckets[hub_name_hash(r->name) & (h->nbuckets - 1)];
        r->next = *b;
        *b = r;
        h->count++;
    } else if (r->members >= h->max_per_room) {
        return HUB_ROOM_FULL;
    }
    r->members++;
    h->clients++;
    *members = r->members;
    return HUB_OK;
}

static int leave_locked(struct chat_hub *h, const char *room)
{
    if (!h->nbuckets)
        return 0;
    struct hub_room **pp = slot(h, room);
    struct hub_room *r = *pp;
    if (!r)
        return 0;
    int left = --r->members;
    h->clients--;
    if (left <= 0) {
        *pp = r->next;
        free(r);
        h->count--;
        if (h->nbuckets > 16 && (unsigned)h->count < h->nbuckets / 4)
            rehash(h, h->nbuckets / 2);
    }
    return left;
}

static uint64_t next_epoch(struct chat_hub *h)
{
    return __atomic_add_fetch(&h->epoch, 1, __ATOMIC_RELEASE);
}

int hub_join(struct chat_hub *h, const char *room, int *members, uint64_t *epoch)
{
    pthread_mutex_lock(&h->lock);
    int rc = join_locked(h, room, members);
    if (rc == HUB_OK)
        *epoch = next_epoch(h);
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int hub_leave(struct chat_hub *h, const char *room, uint64_t *epoch)
{
    pthread_mutex_lock(&h->lock);
    int left = leave_locked(h, room);
    *epoch = next_epoch(h);
    pthread_mutex_unlock(&h->lock);
    return left;
}

int hub_move(struct chat_hub *h, const char *from, const char *to, int *from_left, int *to_members,
             uint64_t *epoch)
{
    pthread_mutex_lock(&h->lock);
    /* Join, then leave: the new room must fit while the old one is still open. */
    int rc = join_locked(h, to, to_members);
    if (rc == HUB_OK) {
        *from_left = leave_locked(h, from);
        *epoch = next_epoch(h);
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void hub_counts(struct chat_hub *h, int *rooms, int *clients)
{
    pthread_mutex_lock(&h->lock);
    *rooms = h->count;
    *clients = h->clients;
    pthread_mutex_unlock(&h->lock);
}

uint64_t hub_guest_number(struct chat_hub *h)
{
    return __atomic_fetch_add(&h->next_guest, 1, __ATOMIC_RELAXED);
}
