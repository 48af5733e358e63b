/* hub: the process-wide room registry of the chat service: how many members each room has on
 * all workers together, for presence counts and the room and member limits. Only joins and
 * leaves touch it (under a lock); messages never do: they travel through the workers' inboxes. */
#ifndef WEFT_CHAT_HUB_H
#define WEFT_CHAT_HUB_H

#include <pthread.h>
#include <stdint.h>

#define CHAT_NAME_MAX 64 /* bytes of a room or member name, NUL included */

/* An open room: allocated to the size of its name, so that 10,000 rooms of one member each
 * cost what they hold and not a fixed-size array slot each. */
struct hub_room {
    struct hub_room *next; /* hash chain */
    int members;
    char name[]; /* NUL-terminated */
};

struct chat_hub {
    pthread_mutex_t lock;
    struct hub_room **buckets; /* open rooms by hub_name_hash */
    unsigned nbuckets;         /* a power of two, or 0; kept between count / 4 and count */
    int count;                 /* open rooms */
    int clients;               /* members of any room */
    int max_rooms, max_per_room;
    uint64_t next_guest;
    uint64_t instance; /* random: tells this instance's messages apart on Redis */
    uint64_t epoch;    /* atomic: counts joins and leaves; orders them against broadcasts */
};

/* FNV-1a of a NUL-terminated name: the hub's and the workers' room tables. */
static inline uint32_t hub_name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int hub_init(struct chat_hub *h, int max_rooms, int max_per_room);
void hub_fini(struct chat_hub *h);

enum { HUB_OK = 0, HUB_ROOM_FULL = -1, HUB_TOO_MANY_ROOMS = -2, HUB_NOMEM = -3 };

/* Every join and leave takes the next epoch. A broadcast carries the epoch current when it
 * happened, and a member who joined at a later epoch skips it: a member never hears of a join,
 * a leave or a message that came before its own join, even when that news reaches its worker
 * after it joined. */

/* Adds a member to room (creating it); *members gets the new count and *epoch the join's
 * epoch. HUB_OK or an error. */
int hub_join(struct chat_hub *h, const char *room, int *members, uint64_t *epoch);
/* Removes a member from room (dropping an empty room); returns the new count; *epoch gets the
 * leave's epoch. */
int hub_leave(struct chat_hub *h, const char *room, uint64_t *epoch);
/* Atomically leaves `from` and joins `to`: on error the member stays in `from`. *epoch gets
 * the move's epoch (one for both). */
int hub_move(struct chat_hub *h, const char *from, const char *to, int *from_left, int *to_members,
             uint64_t *epoch);
/* The current epoch, for a broadcast of a message. */
static inline uint64_t hub_epoch(struct chat_hub *h)
{
    return __atomic_load_n(&h->epoch, __ATOMIC_ACQUIRE);
}
void hub_counts(struct chat_hub *h, int *rooms, int *clients);
uint64_t hub_guest_number(struct chat_hub *h);

#endif
