/* Shared between the HTTP protocol's files; not for services. */
#ifndef WEFT_HTTP_INTERNAL_H
#define WEFT_HTTP_INTERNAL_H

#include "http/http.h"

/* Per-connection HTTP state, allocated while a request is in progress. */
struct http_conn {
    uint64_t start_us; /* when the request's first bytes were read */
    size_t prev_len;   /* bytes the head parser has already searched */
    uint32_t raw_used; /* chunked: body input consumed so far */
    uint32_t out_len;  /* chunked: body bytes decoded so far (in place) */
    struct http_chunked chunk;
    http_route_fn after; /* http_defer_timer's continuation */
    uint8_t waiting;     /* an asynchronous answer is pending */
    uint8_t answered;    /* the current request has its response */
    uint8_t keep_alive;
    uint8_t http10;
    uint8_t head_only;
    uint8_t continue_sent;
    uint8_t chunk_started;
    char line[96]; /* "METHOD target" for the access log */
};

/* The response for the current request is queued: metrics, access log, keep-alive or close. */
void http_request_done(struct conn *c, int status, uint64_t body_len);

#endif
