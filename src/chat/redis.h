/* redis: the chat service's bridge to Redis pub/sub (see redis.c). */
#ifndef WEFT_CHAT_REDIS_H
#define WEFT_CHAT_REDIS_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct chat_redis;

/* Called on the worker's loop with a message another instance published to room. */
typedef void (*chat_redis_deliver_fn)(struct worker *w, const char *room, const char *json,
                                      size_t len);

/* Starts connecting (from w's loop) to url ("redis://HOST:PORT"); NULL on a bad URL or ENOMEM. */
struct chat_redis *chat_redis_open(struct worker *w, const char *url, uint64_t instance,
                                   chat_redis_deliver_fn deliver);
void chat_redis_close(struct chat_redis *r);
/* Publishes one of this instance's room messages (JSON text); a no-op while Redis is away. */
void chat_redis_publish(struct chat_redis *r, const char *room, const char *json, size_t len);
/* Both connections up and subscribed. */
int chat_redis_up(const struct chat_redis *r);
/* Splits "redis://HOST:PORT". 0 or -1. */
int chat_redis_parse_url(const char *url, char *host, size_t hostlen, int *port);

#endif
