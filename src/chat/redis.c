/* The chat service's Redis bridge: rooms that span several weft instances.
 *
 * Each worker keeps two hiredis async connections on its own loop: one that PUBLISHes every
 * broadcast of this instance to "weft:chat:ROOM", and one PSUBSCRIBEd to "weft:chat:*" that
 * delivers what other instances published to this worker's local members. Every worker of an
 * instance receives every message once and its members are on exactly one worker, so each
 * member gets each message once; a message carries its instance's id so an instance skips its
 * own (it delivered them through its inboxes already). When Redis goes away, local delivery
 * goes on and the bridge reconnects with exponential back-off. */
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/redis.h"
#include "core/log.h"
#include "core/worker.h"

#define CHANNEL_PREFIX "weft:chat:"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* hiredis' event hooks on a weft loop: one registration per async context, level-triggered. */
struct redis_ev {
    struct io io;
    struct loop *loop;
    redisAsyncContext *ac;
    uint32_t mask;
    int registered;
};

struct chat_redis {
    struct worker *w;
    char host[128];
    int port;
    uint64_t instance;
    chat_redis_deliver_fn deliver;
    redisAsyncContext *pub, *sub;
    int pub_up, sub_up, closing;
    struct timer retry;
    uint64_t backoff_ms;
    uint64_t reconnects;
};

static void ev_apply(struct redis_ev *e, uint32_t mask)
{
    if (mask == e->mask && e->registered)
        return;
    if (!e->registered && mask) {
        if (loop_add(e->loop, &e->io, mask) == 0)
            e->registered = 1;
    } else if (e->registered && !mask) {
        loop_del(e->loop, &e->io);
        e->registered = 0;
    } else if (e->registered) {
        loop_mod(e->loop, &e->io, mask);
    }
    e->mask = mask;
}

static void ev_add_read(void *p)
{
    struct redis_ev *e = p;
    ev_apply(e, e->mask | EV_IN);
}

static void ev_del_read(void *p)
{
    struct redis_ev *e = p;
    ev_apply(e, e->mask & ~EV_IN);
}

static void ev_add_write(void *p)
{
    struct redis_ev *e = p;
    ev_apply(e, e->mask | EV_OUT);
}

static void ev_del_write(void *p)
{
    struct redis_ev *e = p;
    ev_apply(e, e->mask & ~EV_OUT);
}

static void ev_cleanup(void *p)
{
    struct redis_ev *e = p;
    ev_apply(e, 0);
    free(e);
}

static void ev_io(struct io *io, uint32_t events)
{
    struct redis_ev *e = (struct redis_ev *)io;
    /* One call per event: either may free the context (and e); level triggering brings the
     * other readiness back next iteration. */
    if (events & EV_OUT)
        redisAsyncHandleWrite(e->ac);
    else
        redisAsyncHandleRead(e->ac);
}

static int attach(struct loop *l, redisAsyncContext *ac)
{
    struct redis_ev *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->io.fd = ac->c.fd;
    e->io.fn = ev_io;
    e->loop = l;
    e->ac = ac;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* ---- the bridge ---- */

static void schedule_retry(struct chat_redis *r)
{
    if (r->closing || timer_armed(&r->retry))
        return;
    loop_timer_set(&r->w->loop, &r->retry, r->backoff_ms);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct chat_redis *r = privdata;
    redisReply *rep = reply;
    (void)ac;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(rep->element[0]->str, "pmessage") != 0)
        return;
    const redisReply *chan = rep->element[2], *msg = rep->element[3];
    size_t plen = sizeof CHANNEL_PREFIX - 1;
    if (chan->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING ||
        (size_t)chan->len <= plen || (size_t)msg->len < 17 || msg->str[16] != ' ')
        return;
    char inst[17];
    memcpy(inst, msg->str, 16);
    inst[16] = '\0';
    if (strtoull(inst, NULL, 16) == r->instance)
        return; /* ours: delivered through the inboxes already */
    char room[64];
    size_t rl = (size_t)chan->len - plen;
    if (rl >= sizeof room)
        return;
    memcpy(room, chan->str + plen, rl);
    room[rl] = '\0';
    r->deliver(r->w, room, msg->str + 17, (size_t)msg->len - 17);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct chat_redis *r = ac->data;
    int is_sub = ac == r->sub;
    if (status != REDIS_OK) {
        if (is_sub)
            r->sub = NULL;
        else
            r->pub = NULL;
        log_warn("redis %s:%d: %s; retrying", r->host, r->port, ac->errstr);
        schedule_retry(r);
        return;
    }
    if (is_sub) {
        r->sub_up = 1;
        redisAsyncCommand(r->sub, on_message, r, "PSUBSCRIBE " CHANNEL_PREFIX "*");
    } else {
        r->pub_up = 1;
    }
    if (r->pub_up && r->sub_up) {
        r->backoff_ms = BACKOFF_MIN_MS;
        log_info("redis %s:%d: connected (worker %d)", r->host, r->port, r->w->id);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct chat_redis *r = ac->data;
    (void)status;
    if (ac == r->sub) {
        r->sub = NULL;
        r->sub_up = 0;
    } else {
        r->pub = NULL;
        r->pub_up = 0;
    }
    if (!r->closing) {
        log_warn("redis %s:%d: connection lost; local delivery goes on", r->host, r->port);
        schedule_retry(r);
    }
}

static redisAsyncContext *connect_one(struct chat_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac)
        return NULL;
    if (ac->err) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    if (attach(&r->w->loop, ac) < 0) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* (Re)connects whichever of the two connections is down. */
static void reconnect(struct timer *t)
{
    struct chat_redis *r = (struct chat_redis *)((char *)t - offsetof(struct chat_redis, retry));
    r->reconnects++;
    if (!r->pub && !(r->pub = connect_one(r)))
        schedule_retry(r);
    if (!r->sub && !(r->sub = connect_one(r)))
        schedule_retry(r);
}

int chat_redis_parse_url(const char *url, char *host, size_t hostlen, int *port)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0)
        return -1;
    p += 8;
    const char *colon = strrchr(p, ':');
    if (!colon || colon == p || (size_t)(colon - p) >= hostlen)
        return -1;
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if ((*end && *end != '/') || v < 1 || v > 65535)
        return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    *port = (int)v;
    return 0;
}

struct chat_redis *chat_redis_open(struct worker *w, const char *url, uint64_t instance,
                                   chat_redis_deliver_fn deliver)
{
    struct chat_redis *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (chat_redis_parse_url(url, r->host, sizeof r->host, &r->port) < 0) {
        free(r);
        return NULL;
    }
    r->w = w;
    r->instance = instance;
    r->deliver = deliver;
    r->backoff_ms = BACKOFF_MIN_MS;
    timer_init(&r->retry, reconnect);
    loop_timer_set(&w->loop, &r->retry, 0); /* connect from the worker's own loop */
    return r;
}

void chat_redis_close(struct chat_redis *r)
{
    if (!r)
        return;
    r->closing = 1;
    loop_timer_cancel(&r->w->loop, &r->retry);
    if (r->pub)
        redisAsyncFree(r->pub);
    if (r->sub)
        redisAsyncFree(r->sub);
    free(r);
}

void chat_redis_publish(struct chat_redis *r, const char *room, const char *json, size_t len)
{
    if (!r || !r->pub_up)
        return; /* Redis is away: local delivery already happened */
    char inst[18];
    snprintf(inst, sizeof inst, "%016llx ", (unsigned long long)r->instance);
    redisAsyncCommand(r->pub, NULL, NULL, "PUBLISH " CHANNEL_PREFIX "%s %b%b", room, inst,
                      (size_t)17, json, len);
}

int chat_redis_up(const struct chat_redis *r)
{
    return r && r->pub_up && r->sub_up;
}
