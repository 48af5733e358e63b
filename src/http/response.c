/* The response writer: heads built straight into the output queue from fixed pieces and a
 * Date string cached per second, with no allocation per response. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/http.h"
#include "core/worker.h"
#include "http/http_internal.h"

const char *http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static const char *http_date(struct http_worker *hw, int64_t now_s)
{
    if (hw->date_s != now_s) {
        time_t t = (time_t)now_s;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(hw->date, sizeof hw->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        hw->date_s = now_s;
    }
    return hw->date;
}

static inline char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

#define HEAD_FIXED 160 /* status line, Server, Date, Content-Length, Connection, CRLFs */

/* Writes the head into the output queue, with `inline_body` bytes of room after it filled from
 * body (so small responses take one copy into one buffer). Returns 0 or -1 on ENOMEM. */
static int write_head(struct http_exchange *x, int status, const char *ctype, const char *extra,
                      uint64_t len, const void *inline_body, size_t inline_len)
{
    struct conn *c = x->c;
    struct http_conn *hc = c->data;
    struct http_worker *hw = c->w->svc_state[c->svc];
    const char *reason = http_status_text(status);
    size_t ctype_len = ctype ? strlen(ctype) : 0;
    size_t extra_len = extra ? strlen(extra) : 0;
    size_t reason_len = strlen(reason);
    size_t need = HEAD_FIXED + reason_len + ctype_len + extra_len + inline_len;
    if (server_draining(c->w->srv))
        hc->keep_alive = 0;
    char *start = conn_reserve(c, need);
    if (!start)
        return -1;
    char *p = start;
    p = put(p, "HTTP/1.1 ", 9);
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = put(p, reason, reason_len);
    p = put(p, "\r\nServer: weft\r\nDate: ", 22);
    p = put(p, http_date(hw, c->w->loop.wall_s), 29);
    if (ctype) {
        p = put(p, "\r\nContent-Type: ", 16);
        p = put(p, ctype, ctype_len);
    }
    if (status != 304 && status != 204 && status >= 200) {
        p = put(p, "\r\nContent-Length: ", 18);
        p = put_u64(p, len);
    }
    if (!hc->keep_alive)
        p = put(p, "\r\nConnection: close", 19);
    else if (hc->http10)
        p = put(p, "\r\nConnection: keep-alive", 24);
    p = put(p, "\r\n", 2);
    if (extra_len)
        p = put(p, extra, extra_len);
    p = put(p, "\r\n", 2);
    if (inline_len)
        p = put(p, inline_body, inline_len);
    conn_commit(c, (size_t)(p - start));
    return 0;
}

#define INLINE_MAX 4096 /* bodies up to this are copied behind the head; larger ones are queued */

static void respond(struct http_exchange *x, int status, const char *ctype, const char *extra,
                    const void *body, size_t len, struct buf *b, int is_static)
{
    struct http_conn *hc = x->c->data;
    int send_body = !hc->head_only && status != 304 && status != 204;
    if (!send_body || (len <= INLINE_MAX && !b)) {
        if (write_head(x, status, ctype, extra, len, body, send_body ? len : 0) < 0)
            goto fail;
    } else {
        if (write_head(x, status, ctype, extra, len, NULL, 0) < 0)
            goto fail;
        int rc;
        if (b)
            rc = conn_push_buf(x->c, b, body, len);
        else if (is_static)
            rc = conn_push_static(x->c, body, len);
        else
            rc = conn_append(x->c, body, len);
        if (rc < 0)
            goto fail;
    }
    http_request_done(x->c, status, len);
    return;
fail:
    conn_close(x->c);
}

void http_respond(struct http_exchange *x, int status, const char *ctype, const char *extra,
                  const void *body, size_t len)
{
    respond(x, status, ctype, extra, body, len, NULL, 0);
}

void http_respond_static(struct http_exchange *x, int status, const char *ctype, const char *extra,
                         const char *body, size_t len)
{
    respond(x, status, ctype, extra, body, len, NULL, 1);
}

void http_respond_buf(struct http_exchange *x, int status, const char *ctype, const char *extra,
                      struct buf *b, const char *body, size_t len)
{
    respond(x, status, ctype, extra, body, len, b, 0);
}

void http_respond_error(struct http_exchange *x, int status, const char *msg)
{
    char body[512];
    size_t n = 0;
    body[n++] = '{';
    memcpy(body + n, "\"error\":\"", 9);
    n += 9;
    /* Messages are weft's own text; quotes and backslashes are escaped all the same. */
    for (const char *s = msg; *s && n < sizeof body - 8; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            body[n++] = '\\';
        body[n++] = ch < 0x20 ? ' ' : (char)ch;
    }
    memcpy(body + n, "\"}\n", 3);
    n += 3;
    http_respond(x, status, "application/json", NULL, body, n);
}

int http_respond_head(struct http_exchange *x, int status, const char *ctype, const char *extra,
                      uint64_t len)
{
    struct http_conn *hc = x->c->data;
    if (write_head(x, status, ctype, extra, len, NULL, 0) < 0) {
        conn_close(x->c);
        return 0;
    }
    int body = !hc->head_only;
    http_request_done(x->c, status, len);
    return body;
}
