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

/* A member: one WebSocket connection. */
struct chat_client {
    struct conn *c;
    struct chat_room *room;
    struct chat_client *prev, *next; /* in room's member list */
    struct ws_msg msg;               /* fragmentation, limits, UTF-8 across frames */
    uint64_t join_epoch;             /* hub epoch of its join: older broadcasts are skipped */
    int hdr_checked;                 /* the buffered frame's header went through ws_msg_frame */
    int hdr_event;                   /* what ws_msg_frame returned for it */
    char *frag;                      /* a fragmented message being assembled */
    size_t frag_len, frag_cap;
    char name[CHAT_NAME_MAX];
};

/* A room's members on one worker. */
struct chat_room {
    struct chat_room *next; /* hash chain */
    struct chat_client *head;
    char name[CHAT_NAME_MAX];
};

struct chat_worker {
    struct chat_hub *hub;
    struct chat_redis *redis; /* NULL without --redis */
    struct chat_room *rooms[CHAT_ROOM_BUCKETS];
};

#endif
