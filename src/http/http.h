/* http: the HTTP/1.1 protocol on weft's core, shared by the http and admin services (and later
 * the balancer's front side). It reads and parses requests (parser.h), keeps answers in order
 * for pipelined requests, applies the limits and timeouts of SPEC, and hands each request to the
 * service's route function. */
#ifndef WEFT_HTTP_HTTP_H
#define WEFT_HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/conn.h"
#include "core/server.h"
#include "http/parser.h"

struct http_exchange;
typedef void (*http_route_fn)(struct http_exchange *x);

/* One request being answered. req and body are valid only during the route call. */
struct http_exchange {
    struct conn *c;
    const struct http_request *req;
    const char *body;
    size_t body_len;
    struct buf *body_buf; /* the buffer holding body, for zero-copy replies */
};

/* Per-worker state of an HTTP service. */
struct http_worker {
    http_route_fn route;
    int svc;
    int64_t date_s; /* the second `date` was made for */
    char date[32];  /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    int access_fd;  /* -1: no access log */
    char *access_buf;
    size_t access_len;
    struct deferred access_flush;
    struct fpool states; /* struct http_conn */
    void *app;           /* the service's own per-worker state (chat rooms) */
};

extern const struct proto http_proto;

/* Service plumbing for HTTP-speaking services. */
int http_worker_init(struct worker *w, int svc, http_route_fn route);
void http_worker_fini(struct worker *w, int svc);
void http_on_open(struct conn *c);
void http_on_reject(int fd);

/* Answers the request: status line, Server, Date, Content-Type (when ctype), Content-Length,
 * "Connection: close" when the connection will close, `extra` header lines ("Name: v\r\n", may
 * be NULL), then the body (left out for HEAD). The body is copied. */
void http_respond(struct http_exchange *x, int status, const char *ctype, const char *extra,
                  const void *body, size_t len);
/* The same with a body that outlives the response (static text): not copied. */
void http_respond_static(struct http_exchange *x, int status, const char *ctype, const char *extra,
                         const char *body, size_t len);
/* The same with a body in a reference-counted buffer: referenced, not copied. */
void http_respond_buf(struct http_exchange *x, int status, const char *ctype, const char *extra,
                      struct buf *b, const char *body, size_t len);
/* `{"error":"msg"}` as application/json. */
void http_respond_error(struct http_exchange *x, int status, const char *msg);
/* A response whose body follows from the caller (a file): the head only, with Content-Length
 * len; the caller then queues exactly len bytes unless the request was HEAD. Returns 1 when the
 * body must be sent, 0 for HEAD. */
int http_respond_head(struct http_exchange *x, int status, const char *ctype, const char *extra,
                      uint64_t len);

/* Objects of up to an HTTP request state's size from the worker's pool of those states: a
 * protocol that takes connections over (http_upgrade) keeps its per-connection state in the
 * slot the HTTP state gives back, so an upgraded connection costs no more than one state. NULL
 * when size is larger or on ENOMEM. */
void *http_state_alloc(struct worker *w, int svc, size_t size);
void http_state_free(struct worker *w, int svc, void *p);

/* Hands the connection to another protocol after a 101 answer (WebSocket): bytes after the
 * request go to p->on_data, and c->data becomes data. */
void http_upgrade(struct http_exchange *x, const struct proto *p, void *data);

/* Asynchronous answers: the route calls http_defer and returns; later, on the same worker,
 * http_resume gives an exchange to answer with (NULL if the connection went away meanwhile).
 * Requests pipelined behind it wait, so answers stay in order. */
struct http_token {
    struct conn *c;
    uint64_t id;
    int head_only;
};
struct http_token http_defer(struct http_exchange *x);
int http_resume(const struct http_token *t, struct http_exchange *x);
/* Waits ms on the connection's timer, then answers with route_after(x). */
void http_defer_timer(struct http_exchange *x, uint64_t ms, http_route_fn route_after);

/* The raw (still percent-encoded) value of query parameter `name`: 1 when found, else 0. */
int http_query_find(struct http_slice query, const char *name, struct http_slice *value);
/* Percent-decodes s ('+' is a space) into out, NUL-terminated; the length, or -1 for a bad
 * escape or when out is too small. */
int http_query_decode(struct http_slice s, char *out, size_t outlen);
/* The request's query parameter `name` as an unsigned integer; -1 when absent or invalid. */
int64_t http_query_uint(const struct http_request *req, const char *name);

const char *http_status_text(int status);

#endif
