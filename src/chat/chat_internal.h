/* Shared between the chat service's files. */
#ifndef WEFT_CHAT_INTERNAL_H
#define WEFT_CHAT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "chat/hub.h"
#include "chat/redis.h"
#include "core/buf.h"
#include "core/conn.h"
#include "ws/frame.h"

#define CHAT_ROOM_BUCKETS 256

struct chat_room;

/* What a member needs only while a message is partly received: the assembler's state across
 * frames (a fragmented message, or a frame whose header was checked and whose payload is still
 * coming while a fragmented message is open) and the fragments so far. Between messages the
 * assembler is in its initial state, so an idle member keeps none of this. */
struct chat_rx {
    struct ws_msg msg; /* fragmentation, limits, UTF-8 across frames */
    int hdr_checked;   /* the buffered frame's header went through ws_msg_frame */
    int hdr_event;     /* what ws_msg_frame returned for it */
    char *frag;        /* the fragments' payload so far */
    size_t frag_len, frag_cap;
};

/* A member: one WebSocket connection. Allocated to the size of its name. */
struct chat_client {
    struct conn *c;
    struct chat_room *room;
    struct chat_client *prev, *next; /* in room's member list */
    uint64_t join_epoch;             /* hub epoch of its join: older broadcasts are skipped */
    struct chat_rx *rx;              /* NULL unless a fragmented message is being received */
    char name[];                     /* NUL-terminated, 1 to CHAT_NAME_MAX - 1 bytes */
};

/* A room's members on one worker. Allocated to the size of its name. */
struct chat_room {
    struct chat_room *next; /* hash chain */
    struct chat_client *head;
    char name[];
};

struct chat_worker {
    struct chat_hub *hub;
    struct chat_redis *redis; /* NULL without --redis */
    struct chat_room *rooms[CHAT_ROOM_BUCKETS];
    struct chat_client *closed; /* members whose connection closed, freed by `reap` */
    struct deferred reap;
};

#endif
