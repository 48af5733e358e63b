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
    free(h->rooms);
    pthread_mutex_destroy(&h->lock);
}

static struct hub_room *find(struct chat_hub *h, const char *room)
{
    for (int i = 0; i < h->count; i++)
        if (strcmp(h->rooms[i].name, room) == 0)
            return &h->rooms[i];
    return NULL;
}

static int join_locked(struct chat_hub *h, const char *room, int *members)
{
    struct hub_room *r = find(h, room);
    if (!r) {
        if (h->count >= h->max_rooms)
            return HUB_TOO_MANY_ROOMS;
        if (h->count == h->cap) {
            int cap = h->cap ? h->cap * 2 : 16;
            struct hub_room *nr = realloc(h->rooms, (size_t)cap * sizeof *nr);
            if (!nr)
                return HUB_NOMEM;
            h->rooms = nr;
            h->cap = cap;
        }
        r = &h->rooms[h->count++];
        memset(r, 0, sizeof *r);
        strncpy(r->name, room, CHAT_NAME_MAX - 1);
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
    struct hub_room *r = find(h, room);
    if (!r)
        return 0;
    int left = --r->members;
    h->clients--;
    if (left <= 0)
        *r = h->rooms[--h->count];
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
