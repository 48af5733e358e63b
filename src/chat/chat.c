/* chat: the WebSocket chat service (SPEC, "Chat service").
 *
 * The HTTP side (chat_route) serves the page and upgrades /ws; from then on the connection runs
 * chat_proto: frames are parsed with weft's codec (ws/frame.h) straight from the input buffer,
 * messages are JSON (jansson). A broadcast is framed once into a shared buffer: members on this
 * worker take a reference, and every other worker gets one inbox message that fans it out to
 * its own members. Membership counts live in the hub (chat/hub.h), rooms' member lists per
 * worker. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/chat_internal.h"
#include "chat/page.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/handlers.h"
#include "http/http.h"
#include "services.h"
#include "ws/handshake.h"

#define CLOSE_GRACE_MS 2000 /* a closing client gets this long to read our close frame */

static struct chat_worker *cworker(struct worker *w)
{
    return ((struct http_worker *)w->svc_state[SVC_CHAT])->app;
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- rooms on this worker ---- */

static unsigned room_hash(const char *s)
{
    return hub_name_hash(s) % CHAT_ROOM_BUCKETS;
}

static struct chat_room *room_find(struct chat_worker *cw, const char *name)
{
    for (struct chat_room *r = cw->rooms[room_hash(name)]; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

static struct chat_room *room_get(struct chat_worker *cw, const char *name)
{
    struct chat_room *r = room_find(cw, name);
    if (r)
        return r;
    size_t len = strlen(name);
    r = malloc(sizeof *r + len + 1);
    if (!r)
        return NULL;
    r->head = NULL;
    memcpy(r->name, name, len + 1);
    unsigned h = room_hash(name);
    r->next = cw->rooms[h];
    cw->rooms[h] = r;
    return r;
}

static void room_add(struct chat_room *r, struct chat_client *cl)
{
    cl->room = r;
    cl->prev = NULL;
    cl->next = r->head;
    if (r->head)
        r->head->prev = cl;
    r->head = cl;
}

static void room_remove(struct chat_worker *cw, struct chat_client *cl)
{
    struct chat_room *r = cl->room;
    if (!r)
        return;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        r->head = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    cl->room = NULL;
    cl->prev = cl->next = NULL;
    if (!r->head) {
        struct chat_room **pp = &cw->rooms[room_hash(r->name)];
        while (*pp != r)
            pp = &(*pp)->next;
        *pp = r->next;
        free(r);
    }
}

/* ---- sending ---- */

static void send_frame(struct conn *c, int opcode, const void *p, size_t len)
{
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header_encode(h, 1, opcode, len, NULL);
    if (conn_append(c, h, hl) < 0 || conn_append(c, p, len) < 0)
        conn_close(c);
}

static void send_json(struct conn *c, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s)
        send_frame(c, WS_OP_TEXT, s, strlen(s));
    free(s);
}

static void send_error(struct conn *c, const char *msg)
{
    send_json(c, json_pack("{s:s,s:s}", "type", "error", "error", msg));
}

/* Sends a close frame and closes once it is out (or after a grace period). */
static void ws_close(struct conn *c, unsigned code, const char *reason)
{
    if (c->flags & (CONN_CLOSING | CONN_CLOSED))
        return;
    uint8_t frame[WS_MAX_HEADER + WS_MAX_CONTROL_PAYLOAD];
    size_t n = ws_close_encode(frame, sizeof frame, (uint16_t)code, reason, NULL);
    if (n)
        conn_append(c, frame, n);
    conn_close_after_flush(c);
    conn_timer_set(c, CLOSE_GRACE_MS);
}

/* A text frame made once for every recipient: header and JSON in one shared buffer. */
static struct buf *frame_shared(json_t *o, const char **p, size_t *len)
{
    size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
    struct buf *b = n ? buf_new_shared(WS_MAX_HEADER + n) : NULL;
    if (!b)
        return NULL;
    json_dumpb(o, b->data + WS_MAX_HEADER, n, JSON_COMPACT);
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header_encode(h, 1, WS_OP_TEXT, n, NULL);
    memcpy(b->data + WS_MAX_HEADER - hl, h, hl);
    b->len = (uint32_t)(WS_MAX_HEADER + n);
    *p = b->data + WS_MAX_HEADER - hl;
    *len = hl + n;
    return b;
}

/* Queues one copy for a member, applying the slow-consumer policy. */
static void deliver_one(struct worker *w, struct chat_client *cl, struct buf *b, const char *p,
                        size_t len)
{
    struct conn *c = cl->c;
    if (c->flags & (CONN_CLOSING | CONN_CLOSED))
        return;
    if (c->out.bytes + len > w->cfg->chat_max_queue) {
        if (w->cfg->chat_slow_policy == SLOW_DROP) {
            ctr_add(&w->m->chat.dropped, 1);
            return;
        }
        ctr_add(&w->m->chat.slow_closed, 1);
        ws_close(c, WS_CLOSE_POLICY, "too slow");
        return;
    }
    if (conn_push_buf(c, b, p, len) < 0) {
        conn_close(c);
        return;
    }
    ctr_add(&w->m->chat.delivered, 1);
}

/* What a broadcast carries besides its frame. */
struct bcast {
    uint64_t exclude_id; /* a connection on the sending worker that must not get it, or 0 */
    uint64_t ts_us;      /* when the message was received (fan-out latency), or 0 */
    uint64_t epoch;      /* hub epoch of the event: members who joined later skip it */
};

static void deliver_local(struct worker *w, const char *room, struct buf *b, const char *p,
                          size_t len, const struct bcast *m)
{
    struct chat_room *r = room_find(cworker(w), room);
    if (!r)
        return;
    for (struct chat_client *cl = r->head, *next; cl; cl = next) {
        next = cl->next;
        if (cl->c->id != m->exclude_id && cl->join_epoch <= m->epoch)
            deliver_one(w, cl, b, p, len);
    }
    if (m->ts_us) {
        uint64_t now = wall_us();
        hist_record(&w->m->chat.fanout_us, now > m->ts_us ? now - m->ts_us : 0);
    }
}

struct fanout_msg {
    struct inbox_msg m;
    struct buf *b;
    const char *p;
    size_t len;
    struct bcast meta;
    char room[CHAT_NAME_MAX];
};

static void fanout_in(struct worker *w, struct inbox_msg *m)
{
    struct fanout_msg *f = (struct fanout_msg *)m;
    if (!__atomic_load_n(&w->srv->stopping, __ATOMIC_RELAXED))
        deliver_local(w, f->room, f->b, f->p, f->len, &f->meta);
    buf_unref(f->b);
    free(f);
}

/* Delivers a frame to every member of room on every worker (but the connection exclude_id on
 * this one), then drops the caller's reference. Per sender, members see frames in the order
 * they were broadcast: each worker's inbox is FIFO per producer. */
static void broadcast(struct worker *w, const char *room, struct buf *b, const char *p, size_t len,
                      const struct bcast *m)
{
    deliver_local(w, room, b, p, len, m);
    struct server *srv = w->srv;
    if (!__atomic_load_n(&srv->stopping, __ATOMIC_RELAXED)) {
        for (int i = 0; i < srv->nworkers; i++) {
            struct worker *o = &srv->workers[i];
            if (o == w)
                continue;
            struct fanout_msg *f = malloc(sizeof *f);
            if (!f)
                continue;
            f->m.fn = fanout_in;
            f->b = b;
            f->p = p;
            f->len = len;
            f->meta = *m;
            f->meta.exclude_id = 0; /* connection ids are per worker */
            snprintf(f->room, sizeof f->room, "%s", room);
            buf_ref(b);
            inbox_post(o, &f->m);
        }
    }
    buf_unref(b);
}

/* Broadcasts a message of this instance: to its members through the inboxes, and to other
 * instances through Redis (the JSON is the frame's payload, after its header). */
static void broadcast_json(struct worker *w, const char *room, json_t *o, const struct bcast *m)
{
    const char *p;
    size_t len;
    struct buf *b = frame_shared(o, &p, &len);
    json_decref(o);
    if (!b)
        return;
    struct chat_worker *cw = cworker(w);
    if (cw->redis)
        chat_redis_publish(cw->redis, room, b->data + WS_MAX_HEADER, b->len - WS_MAX_HEADER);
    broadcast(w, room, b, p, len, m);
}

/* A message another instance published: every worker is subscribed, so each delivers to its
 * own members only. */
static void deliver_remote(struct worker *w, const char *room, const char *json, size_t len)
{
    struct buf *b = buf_new_shared(WS_MAX_HEADER + len);
    if (!b)
        return;
    memcpy(b->data + WS_MAX_HEADER, json, len);
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header_encode(h, 1, WS_OP_TEXT, len, NULL);
    memcpy(b->data + WS_MAX_HEADER - hl, h, hl);
    b->len = (uint32_t)(WS_MAX_HEADER + len);
    struct bcast all = {.epoch = UINT64_MAX};
    deliver_local(w, room, b, b->data + WS_MAX_HEADER - hl, hl + len, &all);
    buf_unref(b);
}

static void presence(struct worker *w, const char *room, const char *name, const char *event,
                     int members, uint64_t exclude_id, uint64_t epoch)
{
    struct bcast m = {.exclude_id = exclude_id, .epoch = epoch};
    broadcast_json(w, room,
                   json_pack("{s:s,s:s,s:s,s:s,s:i}", "type", "presence", "room", room, "name",
                             name, "event", event, "members", members),
                   &m);
}

/* ---- membership ---- */

static const char *hub_error(int rc)
{
    switch (rc) {
    case HUB_ROOM_FULL:
        return "room is full";
    case HUB_TOO_MANY_ROOMS:
        return "too many rooms";
    default:
        return "out of memory";
    }
}

static void joined(struct worker *w, struct chat_client *cl, const char *room, int members,
                   uint64_t epoch)
{
    cl->join_epoch = epoch;
    struct chat_room *r = room_get(cworker(w), room);
    if (!r) {
        conn_close(cl->c);
        return;
    }
    room_add(r, cl);
    send_json(cl->c, json_pack("{s:s,s:s,s:s,s:i}", "type", "joined", "room", room, "name",
                               cl->name, "members", members));
    presence(w, room, cl->name, "join", members, cl->c->id, epoch);
}

static void switch_room(struct worker *w, struct chat_client *cl, const char *to)
{
    struct chat_worker *cw = cworker(w);
    if (strcmp(cl->room->name, to) == 0) {
        send_error(cl->c, "already in that room");
        return;
    }
    char from[CHAT_NAME_MAX];
    snprintf(from, sizeof from, "%s", cl->room->name);
    int left = 0, members = 0;
    uint64_t epoch = 0;
    int rc = hub_move(cw->hub, from, to, &left, &members, &epoch);
    if (rc != HUB_OK) {
        send_error(cl->c, hub_error(rc));
        return;
    }
    room_remove(cw, cl);
    presence(w, from, cl->name, "leave", left, 0, epoch);
    joined(w, cl, to, members, epoch);
}

/* A room or member name: 1..63 bytes of valid UTF-8 without control characters. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= CHAT_NAME_MAX || !ws_utf8_valid((const uint8_t *)s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* ---- messages from a client ---- */

static void on_message(struct worker *w, struct chat_client *cl, const char *text, size_t len)
{
    ctr_add(&w->m->chat.received, 1);
    uint64_t ts = wall_us();
    json_error_t err;
    json_t *in = json_loadb(text, len, 0, &err);
    const char *type = in ? json_string_value(json_object_get(in, "type")) : NULL;
    if (!in || !json_is_object(in)) {
        send_error(cl->c, "invalid JSON message");
    } else if (!type) {
        send_error(cl->c, "missing \"type\"");
    } else if (strcmp(type, "msg") == 0) {
        json_t *t = json_object_get(in, "text");
        if (!json_is_string(t)) {
            send_error(cl->c, "\"text\" must be a string");
        } else {
            const char *room = cl->room->name;
            struct bcast m = {.ts_us = ts, .epoch = hub_epoch(cworker(w)->hub)};
            broadcast_json(w, room,
                           json_pack("{s:s,s:s,s:s,s:O,s:I}", "type", "msg", "room", room, "from",
                                     cl->name, "text", t, "ts", (json_int_t)ts),
                           &m);
        }
    } else if (strcmp(type, "join") == 0) {
        json_t *r = json_object_get(in, "room");
        if (!json_is_string(r) || !name_ok(json_string_value(r), json_string_length(r)))
            send_error(cl->c, "\"room\" must be a name of 1 to 63 bytes");
        else
            switch_room(w, cl, json_string_value(r));
    } else {
        send_error(cl->c, "unknown message type");
    }
    json_decref(in);
}

/* Starts keeping a fragmented message: the assembler's state m (a message open after its first
 * fragment) moves into the member's rx. 0 or -1 on ENOMEM. */
static int rx_start(struct chat_client *cl, const struct ws_msg *m)
{
    struct chat_rx *rx = calloc(1, sizeof *rx);
    if (!rx)
        return -1;
    rx->msg = *m;
    cl->rx = rx;
    return 0;
}

static void rx_end(struct chat_client *cl)
{
    if (cl->rx) {
        free(cl->rx->frag);
        free(cl->rx);
        cl->rx = NULL;
    }
}

/* Appends a data frame's payload to the message being assembled from fragments. */
static int frag_append(struct chat_rx *rx, const uint8_t *p, size_t n)
{
    if (rx->frag_len + n > rx->frag_cap) {
        size_t cap = rx->frag_cap ? rx->frag_cap : 4096;
        while (cap < rx->frag_len + n)
            cap *= 2;
        char *np = realloc(rx->frag, cap);
        if (!np)
            return -1;
        rx->frag = np;
        rx->frag_cap = cap;
    }
    memcpy(rx->frag + rx->frag_len, p, n);
    rx->frag_len += n;
    return 0;
}

static void on_control(struct chat_client *cl, const struct ws_frame_header *h, uint8_t *p,
                       size_t n)
{
    struct conn *c = cl->c;
    if (h->opcode == WS_OP_PING) {
        send_frame(c, WS_OP_PONG, p, n);
    } else if (h->opcode == WS_OP_CLOSE) {
        uint16_t code = 0;
        const uint8_t *reason;
        size_t rlen;
        int rc = ws_close_parse(p, n, &code, &reason, &rlen);
        if (rc < 0)
            ws_close(c, (unsigned)-rc, NULL);
        else
            ws_close(c, code && code != WS_CLOSE_NO_STATUS ? code : WS_CLOSE_NORMAL, NULL);
    }
}

/* Handles one complete frame whose header m (the member's rx, or a fresh assembler between
 * messages) took with the result header_event. Returns 0, or -1 when the connection is
 * closing. */
static int on_frame(struct worker *w, struct chat_client *cl, struct ws_msg *m,
                    const struct ws_frame_header *h, uint8_t *payload, int header_event)
{
    size_t n = (size_t)h->payload_len;
    ws_unmask(payload, n, h->mask, 0);
    /* An empty frame ends at its header: the codec said so already. */
    int rc = n ? ws_msg_payload(m, payload, n) : header_event;
    if (rc < 0) {
        ws_close(cl->c, (unsigned)-rc, NULL);
        return -1;
    }
    if (rc == WS_MSG_CONTROL) {
        on_control(cl, h, payload, n);
    } else if (rc == WS_MSG_FRAGMENT) {
        if ((!cl->rx && rx_start(cl, m) < 0) || frag_append(cl->rx, payload, n) < 0) {
            ws_close(cl->c, WS_CLOSE_INTERNAL, NULL);
            return -1;
        }
    } else if (rc == WS_MSG_MESSAGE) {
        if (m->msg_opcode != WS_OP_TEXT) {
            ws_close(cl->c, WS_CLOSE_UNSUPPORTED, "text messages only");
            return -1;
        }
        struct chat_rx *rx = cl->rx;
        if (rx && rx->frag_len) {
            if (frag_append(rx, payload, n) < 0) {
                ws_close(cl->c, WS_CLOSE_INTERNAL, NULL);
                return -1;
            }
            on_message(w, cl, rx->frag, rx->frag_len);
        } else {
            on_message(w, cl, (const char *)payload, n);
        }
        rx_end(cl);
    }
    return (cl->c->flags & (CONN_CLOSING | CONN_CLOSED)) ? -1 : 0;
}

static int chat_data(struct conn *c)
{
    struct chat_client *cl = c->data;
    struct worker *w = c->w;
    while (c->in_off < c->in_len) {
        uint8_t *p = (uint8_t *)c->in->data + c->in_off;
        size_t avail = c->in_len - c->in_off;
        struct ws_frame_header h;
        int hl = ws_frame_parse_header(p, avail, WS_MASK_REQUIRED, &h);
        if (hl < 0) {
            ws_close(c, (unsigned)-hl, NULL);
            c->in_off = c->in_len;
            return 0;
        }
        if (hl == 0)
            return conn_in_reserve(c, WS_MAX_HEADER) < 0 ? -1 : 0;
        /* The codec refuses a frame longer than the message limit before its payload comes, so
         * waiting for a whole frame in the buffer is bounded by --chat-max-message. Between
         * messages the assembler is in its initial state: a fresh one answers the same each
         * time the header is seen again, so a frame still arriving needs no state kept. */
        struct ws_msg fresh, *m;
        int ev;
        if (cl->rx) {
            m = &cl->rx->msg;
            if (!cl->rx->hdr_checked) {
                cl->rx->hdr_event = ws_msg_frame(m, &h);
                cl->rx->hdr_checked = 1;
            }
            ev = cl->rx->hdr_event;
        } else {
            ws_msg_init(&fresh, w->cfg->chat_max_message);
            m = &fresh;
            ev = ws_msg_frame(m, &h);
        }
        if (ev < 0) {
            ws_close(c, (unsigned)-ev, NULL);
            c->in_off = c->in_len;
            return 0;
        }
        size_t total = (size_t)hl + (size_t)h.payload_len;
        if (avail < total)
            return conn_in_reserve(c, total - avail) < 0 ? -1 : 0;
        if (cl->rx)
            cl->rx->hdr_checked = 0;
        c->in_off += (uint32_t)total;
        if (on_frame(w, cl, m, &h, p + hl, ev) < 0) {
            c->in_off = c->in_len;
            return 0;
        }
    }
    return 0;
}

static void free_closed(struct chat_worker *cw)
{
    while (cw->closed) {
        struct chat_client *cl = cw->closed;
        cw->closed = cl->next;
        rx_end(cl);
        free(cl);
    }
}

static void chat_reap(struct deferred *d)
{
    free_closed((struct chat_worker *)((char *)d - offsetof(struct chat_worker, reap)));
}

static void chat_shutdown(struct conn *c)
{
    ws_close(c, WS_CLOSE_GOING_AWAY, "server shutting down");
}

static void chat_close(struct conn *c)
{
    struct chat_client *cl = c->data;
    struct worker *w = c->w;
    struct chat_worker *cw = cworker(w);
    if (!cl)
        return;
    if (cl->room) {
        char room[CHAT_NAME_MAX];
        snprintf(room, sizeof room, "%s", cl->room->name);
        room_remove(cw, cl);
        uint64_t epoch = 0;
        int left = hub_leave(cw->hub, room, &epoch);
        presence(w, room, cl->name, "leave", left, 0, epoch);
    }
    c->data = NULL;
    /* Freed at the end of the iteration, like the connection: a frame of this member's may
     * still be on the stack (a failed write to the sender of a broadcast closes it). */
    cl->next = cw->closed;
    cw->closed = cl;
    loop_defer(&w->loop, &cw->reap, chat_reap);
}

static const struct proto chat_ws_proto = {
    .name = "chat",
    .on_data = chat_data,
    /* EOF: close once the output is sent; timer (the close grace period): close. Both are the
     * core's defaults. */
    .on_shutdown = chat_shutdown,
    .on_close = chat_close,
};

/* ---- the HTTP side: the page and the upgrade ---- */

/* Copies the percent-decoded query parameter `key` into out; 0 when absent, -1 when bad. */
static int query_param(struct http_slice q, const char *key, char *out, size_t outlen)
{
    struct http_slice v;
    if (!http_query_find(q, key, &v))
        return 0;
    int n = http_query_decode(v, out, outlen);
    return n >= 0 && name_ok(out, (size_t)n) ? 1 : -1;
}

static int origin_allowed(const struct config *cfg, const struct http_request *req)
{
    if (cfg->chat_origin_count == 0)
        return 1;
    const struct http_slice *o = http_request_header(req, "origin");
    if (!o)
        return 0;
    for (int i = 0; i < cfg->chat_origin_count; i++)
        if (strlen(cfg->chat_origin[i]) == o->n &&
            strncasecmp(cfg->chat_origin[i], o->p, o->n) == 0)
            return 1;
    return 0;
}

static void upgrade(struct http_exchange *x)
{
    const struct http_request *r = x->req;
    struct worker *w = x->c->w;
    struct chat_worker *cw = cworker(w);
    const struct http_slice *ver = http_request_header(r, "sec-websocket-version");
    const struct http_slice *key = http_request_header(r, "sec-websocket-key");
    char accept[WS_ACCEPT_LEN + 1];
    if (!ver || !http_slice_eq(*ver, "13")) {
        http_respond(x, 426, "application/json",
                     "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                     "{\"error\":\"WebSocket version 13 required\"}\n", 41);
        return;
    }
    if (!key || ws_accept_key(key->p, key->n, accept) < 0) {
        http_respond_error(x, 400, "bad Sec-WebSocket-Key");
        return;
    }
    if (!origin_allowed(w->cfg, r)) {
        http_respond_error(x, 403, "origin not allowed");
        return;
    }
    char room[CHAT_NAME_MAX] = "lobby", name[CHAT_NAME_MAX];
    int qr = query_param(r->query, "room", room, sizeof room);
    int qn = query_param(r->query, "name", name, sizeof name);
    if (qr < 0 || qn < 0) {
        http_respond_error(x, 400, "room and name must be 1 to 63 bytes of text");
        return;
    }
    if (qr == 0)
        snprintf(room, sizeof room, "lobby");
    if (qn == 0)
        snprintf(name, sizeof name, "guest-%llu", (unsigned long long)hub_guest_number(cw->hub));
    int members = 0;
    uint64_t epoch = 0;
    int rc = hub_join(cw->hub, room, &members, &epoch);
    if (rc != HUB_OK) {
        http_respond_error(x, 503, hub_error(rc));
        return;
    }
    size_t name_len = strlen(name);
    struct chat_client *cl = malloc(sizeof *cl + name_len + 1);
    if (!cl) {
        hub_leave(cw->hub, room, &epoch);
        http_respond_error(x, 503, "out of memory");
        return;
    }
    memset(cl, 0, sizeof *cl);
    cl->c = x->c;
    memcpy(cl->name, name, name_len + 1);
    char extra[160];
    snprintf(extra, sizeof extra,
             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", accept);
    http_respond_head(x, 101, NULL, extra, 0);
    http_upgrade(x, &chat_ws_proto, cl);
    joined(w, cl, room, members, epoch);
}

static void chat_route(struct http_exchange *x)
{
    const struct http_request *r = x->req;
    if (http_slice_eq(r->path, "/ws")) {
        if (r->method != HTTP_GET)
            http_respond(x, 405, "application/json", "Allow: GET\r\n",
                         "{\"error\":\"method not allowed\"}\n", 31);
        else if (!r->upgrade_websocket)
            http_respond(x, 426, "application/json", "Upgrade: websocket\r\n",
                         "{\"error\":\"WebSocket upgrade required\"}\n", 38);
        else
            upgrade(x);
    } else if (http_slice_eq(r->path, "/")) {
        if (r->method == HTTP_GET || r->method == HTTP_HEAD)
            http_respond_static(x, 200, "text/html; charset=utf-8", NULL, chat_page_html,
                                chat_page_html_len);
        else
            http_respond(x, 405, "application/json", "Allow: GET, HEAD\r\n",
                         "{\"error\":\"method not allowed\"}\n", 31);
    } else if (http_slice_eq(r->path, "/health")) {
        handlers_health(x, server_draining(x->c->w->srv));
    } else {
        http_respond_error(x, 404, "not found");
    }
}

/* ---- service plumbing ---- */

static int chat_worker_init(struct worker *w, int svc)
{
    struct server *srv = w->srv;
    if (!srv->svc_shared[svc]) {
        struct chat_hub *hub = malloc(sizeof *hub);
        if (!hub)
            return -1;
        hub_init(hub, w->cfg->chat_max_rooms, w->cfg->chat_max_clients_per_room);
        srv->svc_shared[svc] = hub;
    }
    struct chat_worker *cw = calloc(1, sizeof *cw);
    if (!cw)
        return -1;
    cw->hub = srv->svc_shared[svc];
    int rc = http_worker_init(w, svc, chat_route);
    if (rc < 0) {
        free(cw);
        return rc;
    }
    ((struct http_worker *)w->svc_state[svc])->app = cw;
    if (w->cfg->redis[0]) {
        cw->redis = chat_redis_open(w, w->cfg->redis, cw->hub->instance, deliver_remote);
        if (!cw->redis) {
            log_error("--redis %s: not a redis://HOST:PORT address", w->cfg->redis);
            return -1;
        }
    }
    return 0;
}

static void chat_worker_fini(struct worker *w, int svc)
{
    struct http_worker *hw = w->svc_state[svc];
    struct chat_worker *cw = hw ? hw->app : NULL;
    if (!cw)
        return;
    loop_undefer(&w->loop, &cw->reap);
    free_closed(cw);
    for (int i = 0; i < CHAT_ROOM_BUCKETS; i++) {
        while (cw->rooms[i]) {
            struct chat_room *r = cw->rooms[i];
            cw->rooms[i] = r->next;
            free(r);
        }
    }
    chat_redis_close(cw->redis);
    http_worker_fini(w, svc);
    if (w->id == w->srv->nworkers - 1 && w->srv->svc_shared[svc]) {
        hub_fini(w->srv->svc_shared[svc]);
        free(w->srv->svc_shared[svc]);
        w->srv->svc_shared[svc] = NULL;
    }
    free(cw);
}

int chat_redis_workers_up(const struct server *srv)
{
    int up = 0;
    for (int i = 0; i < srv->nworkers; i++) {
        struct http_worker *hw = srv->workers[i].svc_state[SVC_CHAT];
        struct chat_worker *cw = hw ? hw->app : NULL;
        if (cw && chat_redis_up(cw->redis))
            up++;
    }
    return up;
}

void chat_counts(const struct server *srv, int *rooms, int *clients)
{
    *rooms = *clients = 0;
    if (srv->svc_shared[SVC_CHAT])
        hub_counts(srv->svc_shared[SVC_CHAT], rooms, clients);
}

const struct service chat_service = {
    .name = "chat",
    .proto = &http_proto,
    .worker_init = chat_worker_init,
    .worker_fini = chat_worker_fini,
    .on_open = http_on_open,
    .on_reject = http_on_reject,
};
