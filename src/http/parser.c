/* http_parser: the HTTP/1.1 request-head parser and the chunked-body decoder (RFC 9110, 9112).
 *
 * How a head is parsed: a memchr-driven search for the blank line that ends the head, resumed
 * where the previous call stopped, then a single validating pass over the complete head. Nothing
 * is parsed while the head is incomplete, so a request arriving in many reads costs one pass.
 *
 * Choices where the RFCs leave room:
 * - Line endings are CRLF only. A bare LF anywhere before the end of the head is refused with
 *   -400 as soon as it is seen (RFC 9112 2.2 allows either; refusing closes the door to request
 *   smuggling through a peer that reads LF differently, and lets an LF-only client fail at once
 *   instead of waiting for the head timeout). A bare CR is a control character: -400.
 * - Empty lines (CRLF) before the request line are skipped, as RFC 9112 2.2 asks; they count in
 *   the head's length and limit.
 * - One SP between the parts of the request line, nothing else.
 * - The target may hold obs-text (bytes >= 0x80, e.g. raw UTF-8) but no control character, no
 *   space and no '#'. CONNECT takes only authority-form, '*' only OPTIONS.
 * - For absolute-form, path and query come from the URI's path and query (path may be empty,
 *   meaning "/"), and host is the URI's authority, which RFC 9112 3.2.2 says overrides Host.
 * - Empty list elements are ignored in every comma list (RFC 9110 5.6.1), Content-Length included.
 * - -414 when no CRLF ends the request line within max_head; -431 for any other head too long
 *   and for more than HTTP_MAX_HEADERS fields.
 * - Expect: 100-continue and Upgrade count on HTTP/1.1 only (RFC 9110 10.1.1 and 7.8).
 */
#include "http/parser.h"

#include <limits.h>
#include <string.h>

/* Character classes, one bit each, for the byte-at-a-time loops. */
enum {
    CC_TCHAR = 0x01,  /* token (RFC 9110 5.6.2): methods, field names, codings */
    CC_VALUE = 0x02,  /* field-value byte except HTAB: SP, VCHAR, obs-text */
    CC_TARGET = 0x04, /* request-target byte except '?': VCHAR but '#', and obs-text */
    CC_HOST = 0x08,   /* uri-host and port: unreserved, sub-delims, ':', '[', ']', '%' */
    CC_SCHEME = 0x10, /* URI scheme: ALPHA, DIGIT, '+', '-', '.' */
    CC_DIGIT = 0x20,  /* '0'..'9' */
    CC_HEX = 0x40,    /* '0'..'9', 'a'..'f', 'A'..'F' */
};

/* clang-format off */
static const unsigned char cc[256] = {
    /* 00 */ 0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,
    /* 10 */ 0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,
    /* 20 */ 0x02,0x0f,0x06,0x03,0x0f,0x0f,0x0f,0x0f,0x0e,0x0e,0x0f,0x1f,0x0e,0x1f,0x1f,0x06,
    /* 30 */ 0x7f,0x7f,0x7f,0x7f,0x7f,0x7f,0x7f,0x7f,0x7f,0x7f,0x0e,0x0e,0x06,0x0e,0x06,0x02,
    /* 40 */ 0x06,0x5f,0x5f,0x5f,0x5f,0x5f,0x5f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,
    /* 50 */ 0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x0e,0x06,0x0e,0x07,0x0f,
    /* 60 */ 0x07,0x5f,0x5f,0x5f,0x5f,0x5f,0x5f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,
    /* 70 */ 0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x1f,0x06,0x07,0x06,0x0f,0x00,
    /* 80 */ 0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,
    /* 90 */ 0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,
    /* a0 */ 0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,
    /* b0 */ 0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,
    /* c0 */ 0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,
    /* d0 */ 0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,
    /* e0 */ 0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,
    /* f0 */ 0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,0x06,
};
/* clang-format on */

static inline unsigned char cls(char c)
{
    return cc[(unsigned char)c];
}

static inline unsigned char lower(char c)
{
    unsigned char u = (unsigned char)c;
    return (unsigned char)(u + ((unsigned char)(u - 'A') < 26 ? 32 : 0));
}

/* Eight bytes at a time: a word is loaded with memcpy (one unaligned load on every target we
 * build for) and tested for "some byte is special" with the classic SWAR tricks, which are exact
 * as booleans. The byte loop then finds which byte it is. */
#define SWAR_ONES UINT64_C(0x0101010101010101)
#define SWAR_HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* Nonzero when some byte of x is below n (n <= 128). */
static inline uint64_t swar_below(uint64_t x, unsigned n)
{
    return (x - SWAR_ONES * n) & ~x & SWAR_HIGHS;
}

/* Nonzero when some byte of x equals c. */
static inline uint64_t swar_has(uint64_t x, unsigned c)
{
    uint64_t y = x ^ (SWAR_ONES * c);
    return (y - SWAR_ONES) & ~y & SWAR_HIGHS;
}

/* Skips field-value bytes (VCHAR, obs-text, SP, HTAB); stops on the first control character,
 * which a complete head guarantees before its end (the CR of the line). */
static inline const char *skip_value(const char *p, const char *end)
{
    for (;;) {
        while (end - p >= 8) {
            uint64_t x = load8(p);
            if (swar_below(x, 0x20) | swar_has(x, 0x7f))
                break;
            p += 8;
        }
        while (cls(*p) & CC_VALUE)
            p++;
        if (*p != '\t')
            return p;
        p++;
    }
}

/* Skips request-target bytes; stops on '?', or on what cannot be in a target (SP ends it). */
static inline const char *skip_target(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = load8(p);
        if (swar_below(x, 0x21) | swar_has(x, 0x7f) | swar_has(x, '#') | swar_has(x, '?'))
            break;
        p += 8;
    }
    while (cls(*p) & CC_TARGET)
        p++;
    return p;
}

static inline struct http_slice slice(const char *p, const char *end)
{
    struct http_slice s = {p, (size_t)(end - p)};
    return s;
}

/* Compares a field name (tchar only) with a lowercase name of letters and '-': OR-ing 0x20 lowers
 * a letter and maps no other tchar onto a letter or '-'. */
static inline int name_is(const char *n, const char *lit, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)n[i] | 0x20) != (unsigned char)lit[i])
            return 0;
    return 1;
}

static inline int slice_is(struct http_slice s, const char *lit, size_t len)
{
    if (s.n != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (lower(s.p[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

/* Next element of a comma list in [*pp, end), without its OWS; empty elements are skipped
 * (RFC 9110 5.6.1). Returns 0 when the list is exhausted. */
static inline int list_next(const char **pp, const char *end, struct http_slice *el)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
        p++;
    if (p == end) {
        *pp = p;
        return 0;
    }
    const char *s = p;
    const char *comma = memchr(p, ',', (size_t)(end - p));
    p = comma ? comma : end;
    const char *e = p;
    while (e[-1] == ' ' || e[-1] == '\t')
        e--;
    *el = slice(s, e);
    *pp = p;
    return 1;
}

static enum http_method method_of(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return HTTP_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return HTTP_PUT;
        break;
    case 4:
        if (memcmp(m, "POST", 4) == 0)
            return HTTP_POST;
        if (memcmp(m, "HEAD", 4) == 0)
            return HTTP_HEAD;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0)
            return HTTP_PATCH;
        if (memcmp(m, "TRACE", 5) == 0)
            return HTTP_TRACE;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return HTTP_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0)
            return HTTP_OPTIONS;
        if (memcmp(m, "CONNECT", 7) == 0)
            return HTTP_CONNECT;
        break;
    }
    return HTTP_OTHER;
}

/* uri-host [ ":" port ] as in Host and CONNECT's target; with need_port, the port is required. */
static int authority_ok(const char *p, const char *end, int need_port)
{
    const char *colon = NULL;
    for (const char *q = p; q < end; q++) {
        if (!(cls(*q) & CC_HOST))
            return 0;
        if (*q == ':')
            colon = q;
    }
    if (!need_port)
        return 1;
    /* The last ':' starts the port, so "[::1]:443" works. */
    if (!colon || colon == p || colon + 1 == end)
        return 0;
    for (const char *q = colon + 1; q < end; q++)
        if (!(cls(*q) & CC_DIGIT))
            return 0;
    return 1;
}

/* Splits the target into path, query and, for absolute-form, the authority. */
static int parse_target(struct http_request *req, const char *t, const char *q, const char *end,
                        struct http_slice *uri_host)
{
    req->query = slice(end, end);
    if (req->method == HTTP_CONNECT) {
        if (!authority_ok(t, end, 1))
            return -400;
        req->path = slice(t, end);
        return 0;
    }
    if (*t == '*') {
        if (end - t != 1 || req->method != HTTP_OPTIONS)
            return -400;
        req->path = slice(t, end);
        return 0;
    }
    const char *p = t;
    if (*t != '/') {
        /* absolute-form: scheme "://" authority path-abempty [ "?" query ] */
        if (!((cls(*p) & CC_SCHEME) && !(cls(*p) & CC_DIGIT) && *p != '+' && *p != '-' &&
              *p != '.'))
            return -400;
        while (p < end && (cls(*p) & CC_SCHEME))
            p++;
        if (end - p < 3 || memcmp(p, "://", 3) != 0)
            return -400;
        p += 3;
        const char *a = p;
        while (p < end && *p != '/' && *p != '?')
            p++;
        /* No userinfo: '@' is not a host byte, so "user@host" is refused here. */
        if (p == a || !authority_ok(a, p, 0))
            return -400;
        *uri_host = slice(a, p);
    }
    if (q) {
        req->path = slice(p, q);
        req->query = slice(q + 1, end);
    } else {
        req->path = slice(p, end);
    }
    return 0;
}

/* What the fields say, gathered in one pass and judged at the end. */
struct head_facts {
    unsigned host_count;
    unsigned conn_close : 1, conn_keep_alive : 1, conn_upgrade : 1;
    unsigned upgrade_websocket : 1, expect_continue : 1;
    unsigned te_seen : 1, te_chunked : 1, te_unsupported : 1;
};

static int content_length(struct http_request *req, const char *v, const char *end)
{
    struct http_slice el;
    int any = 0;
    while (list_next(&v, end, &el)) {
        int64_t x = 0;
        for (size_t i = 0; i < el.n; i++) {
            if (!(cls(el.p[i]) & CC_DIGIT))
                return -400;
            int d = el.p[i] - '0';
            if (x > (INT64_MAX - d) / 10)
                return -400;
            x = x * 10 + d;
        }
        if (req->content_length >= 0 && req->content_length != x)
            return -400;
        req->content_length = x;
        any = 1;
    }
    return any ? 0 : -400;
}

static void transfer_encoding(struct head_facts *f, const char *v, const char *end)
{
    struct http_slice el;
    f->te_seen = 1;
    while (list_next(&v, end, &el)) {
        /* Anything after chunked, chunked twice, or any other coding: not implemented. */
        if (f->te_chunked || !slice_is(el, "chunked", 7))
            f->te_unsupported = 1;
        else
            f->te_chunked = 1;
    }
}

static void connection(struct head_facts *f, const char *v, const char *end)
{
    struct http_slice el;
    while (list_next(&v, end, &el)) {
        if (slice_is(el, "close", 5))
            f->conn_close = 1;
        else if (slice_is(el, "keep-alive", 10))
            f->conn_keep_alive = 1;
        else if (slice_is(el, "upgrade", 7))
            f->conn_upgrade = 1;
    }
}

static void upgrade(struct head_facts *f, const char *v, const char *end)
{
    struct http_slice el;
    while (list_next(&v, end, &el)) {
        /* protocol-name [ "/" protocol-version ] */
        const char *slash = memchr(el.p, '/', el.n);
        if (slash)
            el.n = (size_t)(slash - el.p);
        if (slice_is(el, "websocket", 9))
            f->upgrade_websocket = 1;
    }
}

/* Acts on the fields weft interprets; dispatching on the name's length first keeps the common
 * case (a field weft ignores) to a switch and at most one short compare. */
static int field(struct http_request *req, struct head_facts *f, const struct http_header *h)
{
    const char *n = h->name.p, *v = h->value.p, *ve = h->value.p + h->value.n;
    switch (h->name.n) {
    case 4:
        if (name_is(n, "host", 4)) {
            if (++f->host_count > 1 || !authority_ok(v, ve, 0))
                return -400;
            req->host = h->value;
        }
        break;
    case 6:
        if (name_is(n, "expect", 6) && slice_is(h->value, "100-continue", 12))
            f->expect_continue = 1;
        break;
    case 7:
        if (name_is(n, "upgrade", 7))
            upgrade(f, v, ve);
        break;
    case 10:
        if (name_is(n, "connection", 10))
            connection(f, v, ve);
        break;
    case 14:
        if (name_is(n, "content-length", 14))
            return content_length(req, v, ve);
        break;
    case 17:
        if (name_is(n, "transfer-encoding", 17))
            transfer_encoding(f, v, ve);
        break;
    }
    return 0;
}

/* The single pass over a complete head buf[start..end), which ends with "\n\r\n". Every loop
 * stops at the latest on that final LF, so no bound check is needed byte by byte. */
static int parse_head(const char *buf, size_t start, size_t head_end, struct http_request *req)
{
    const char *p = buf + start, *end = buf + head_end;
    struct head_facts f = {0};
    int r;

    /* method SP */
    const char *m = p;
    while (cls(*p) & CC_TCHAR)
        p++;
    if (p == m || *p != ' ')
        return -400;
    req->method_name = slice(m, p);
    req->method = method_of(m, (size_t)(p - m));

    /* request-target SP */
    const char *t = ++p, *q = NULL;
    for (;;) {
        p = skip_target(p, end);
        if (*p != '?')
            break;
        if (!q)
            q = p;
        p++;
    }
    if (p == t || *p != ' ')
        return -400;
    const char *target_end = p++;

    /* HTTP-version CRLF: "HTTP/" DIGIT "." DIGIT */
    if (end - p < 10 || memcmp(p, "HTTP/", 5) != 0 || !(cls(p[5]) & CC_DIGIT) || p[6] != '.' ||
        !(cls(p[7]) & CC_DIGIT) || p[8] != '\r' || p[9] != '\n')
        return -400;
    if (p[5] != '1' || p[7] > '1')
        return -505;
    req->minor_version = p[7] - '0';
    p += 10;

    req->target = slice(t, target_end);
    struct http_slice uri_host = {NULL, 0};
    r = parse_target(req, t, q, target_end, &uri_host);
    if (r)
        return r;

    req->content_length = -1;
    req->host = slice(end, end);
    size_t nh = 0;

    /* field-name ":" OWS field-value OWS CRLF, until the empty line */
    while (*p != '\r') {
        if (nh == HTTP_MAX_HEADERS)
            return -431;
        /* A line starting with SP or HTAB (obs-fold), a space before the colon, a control
         * character in the name: all stop here on something other than ':'. */
        const char *n = p;
        while (cls(*p) & CC_TCHAR)
            p++;
        if (p == n || *p != ':')
            return -400;
        struct http_header *h = &req->headers[nh++];
        h->name = slice(n, p);
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *v = p;
        p = skip_value(p, end);
        if (*p != '\r' || p[1] != '\n')
            return -400;
        const char *ve = p;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        h->value = slice(v, ve);
        p += 2;
        r = field(req, &f, h);
        if (r)
            return r;
    }
    /* The first empty line must be the one the search found. */
    if (p + 2 != end || p[1] != '\n')
        return -400;
    req->header_count = nh;

    if (req->minor_version == 1 && f.host_count == 0)
        return -400;
    req->chunked = 0;
    if (f.te_seen) {
        /* RFC 9112 6.1 and 6.3: both framings at once is how requests get smuggled. */
        if (req->minor_version == 0 || req->content_length >= 0)
            return -400;
        if (f.te_unsupported || !f.te_chunked)
            return -501;
        req->chunked = 1;
    }
    if (uri_host.p)
        req->host = uri_host;
    if (req->minor_version == 1)
        req->keep_alive = !f.conn_close;
    else
        req->keep_alive = f.conn_keep_alive && !f.conn_close;
    req->expect_continue = req->minor_version == 1 && f.expect_continue;
    req->upgrade_websocket = req->minor_version == 1 && f.upgrade_websocket && f.conn_upgrade;
    req->head_len = head_end;
    return (int)head_end;
}

int http_parse_request(const char *buf, size_t len, size_t prev_len, size_t max_head,
                       struct http_request *req)
{
    if (max_head > INT_MAX)
        max_head = INT_MAX;
    if (prev_len > len)
        prev_len = 0;
    /* The head must end within buf[0..limit). */
    size_t limit = len < max_head ? len : max_head;

    size_t start = 0;
    while (start + 1 < limit && buf[start] == '\r' && buf[start + 1] == '\n')
        start += 2;

    /* The end is the first LF followed by CRLF. Every LF on the way must follow a CR. An LF
     * before prev_len - 3 had its next two bytes checked last time. */
    size_t seen = prev_len < limit ? prev_len : limit;
    size_t from = seen > 3 ? seen - 3 : 0;
    if (from < start)
        from = start;
    while (from < limit) {
        const char *lf = memchr(buf + from, '\n', limit - from);
        if (!lf)
            break;
        size_t i = (size_t)(lf - buf);
        if (i == start || buf[i - 1] != '\r')
            return -400;
        if (i + 2 < limit && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return parse_head(buf, start, i + 3, req);
        from = i + 1;
    }

    if (len <= max_head)
        return HTTP_PARSE_INCOMPLETE;
    if (start < max_head && !memchr(buf + start, '\n', max_head - start))
        return -414;
    return -431;
}

const struct http_slice *http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (http_slice_ieq(req->headers[i].name, name))
            return &req->headers[i].value;
    return NULL;
}

int http_slice_eq(struct http_slice s, const char *str)
{
    for (size_t i = 0; i < s.n; i++)
        if (str[i] == '\0' || s.p[i] != str[i])
            return 0;
    return str[s.n] == '\0';
}

int http_slice_ieq(struct http_slice s, const char *str)
{
    for (size_t i = 0; i < s.n; i++)
        if (str[i] == '\0' || lower(s.p[i]) != lower(str[i]))
            return 0;
    return str[s.n] == '\0';
}

/* Chunked decoding (RFC 9112 7.1):
 *   chunk-size [ BWS ";" chunk-ext ] CRLF, chunk-data CRLF, ..., "0" [ext] CRLF, trailers, CRLF.
 * One state per position in that grammar; data is copied in runs, the rest byte by byte. */
enum {
    CH_SIZE,    /* hex digits; d->remaining accumulates the size */
    CH_SIZE_WS, /* BWS between the size and ';' */
    CH_EXT,     /* chunk extensions, up to CR */
    CH_SIZE_LF, /* the LF that ends the size line */
    CH_DATA,    /* d->remaining bytes of payload */
    CH_DATA_CR, /* the CRLF after the payload */
    CH_DATA_LF,
    CH_TR_START, /* start of a trailer line, or the final CRLF */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_END_LF, /* the LF of the final CRLF */
    CH_DONE,
    CH_ERROR_400,
    CH_ERROR_413,
};

/* Bytes in one size line with its extensions, or in one trailer line, CRLF included. */
#define HTTP_CHUNK_LINE_MAX 4096

void http_chunked_init(struct http_chunked *d, uint64_t max_body)
{
    memset(d, 0, sizeof *d);
    d->state = CH_SIZE;
    d->max_body = max_body;
}

int http_chunked_decode(struct http_chunked *d, const char *in, size_t len, size_t *in_used,
                        char *out, size_t *out_len)
{
    size_t i = 0, o = 0;
    int ret = HTTP_CHUNKED_MORE;

    while (i < len) {
        if (d->state == CH_DATA) {
            size_t n = len - i;
            if (n > d->remaining)
                n = (size_t)d->remaining;
            if (out + o != in + i)
                memmove(out + o, in + i, n);
            i += n;
            o += n;
            d->remaining -= n;
            d->total += n;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            continue;
        }
        if (d->state >= CH_DONE)
            break;

        char c = in[i++];
        switch (d->state) {
        case CH_SIZE:
            if (cls(c) & CC_HEX) {
                /* 16 digits fill 64 bits: no overflow is possible below that. */
                if (d->size_digits == 16)
                    goto bad;
                d->remaining = (d->remaining << 4) | (uint64_t)((c & 0xf) + 9 * (c >> 6));
                d->size_digits++;
            } else if (d->size_digits == 0) {
                goto bad;
            } else if (c == '\r') {
                d->state = CH_SIZE_LF;
            } else if (c == ';') {
                d->state = CH_EXT;
            } else if (c == ' ' || c == '\t') {
                d->state = CH_SIZE_WS;
            } else {
                goto bad;
            }
            break;
        case CH_SIZE_WS:
            if (c == ';')
                d->state = CH_EXT;
            else if (c != ' ' && c != '\t')
                goto bad;
            break;
        case CH_EXT:
            if (c == '\r')
                d->state = CH_SIZE_LF;
            else if (!(cls(c) & CC_VALUE) && c != '\t')
                goto bad;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                goto bad;
            d->line_len = 0;
            if (d->remaining == 0) {
                /* size_digits counts the trailer lines from here on. */
                d->size_digits = 0;
                d->state = CH_TR_START;
                continue;
            }
            if (d->remaining > d->max_body - d->total) {
                d->state = CH_ERROR_413;
                ret = -413;
                goto out;
            }
            d->state = CH_DATA;
            continue;
        case CH_DATA_CR:
            if (c != '\r')
                goto bad;
            d->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                goto bad;
            d->state = CH_SIZE;
            d->size_digits = 0;
            d->line_len = 0;
            continue;
        case CH_TR_START:
            if (c == '\r') {
                d->state = CH_END_LF;
                break;
            }
            /* obs-fold and empty names are refused like in the head */
            if (!(cls(c) & CC_TCHAR) || d->size_digits == HTTP_MAX_HEADERS)
                goto bad;
            d->size_digits++;
            d->state = CH_TR_NAME;
            break;
        case CH_TR_NAME:
            if (c == ':')
                d->state = CH_TR_VALUE;
            else if (!(cls(c) & CC_TCHAR))
                goto bad;
            break;
        case CH_TR_VALUE:
            if (c == '\r')
                d->state = CH_TR_LF;
            else if (!(cls(c) & CC_VALUE) && c != '\t')
                goto bad;
            break;
        case CH_TR_LF:
            if (c != '\n')
                goto bad;
            d->line_len = 0;
            d->state = CH_TR_START;
            continue;
        case CH_END_LF:
            if (c != '\n')
                goto bad;
            d->state = CH_DONE;
            ret = HTTP_CHUNKED_DONE;
            goto out;
        }
        if (++d->line_len >= HTTP_CHUNK_LINE_MAX)
            goto bad;
    }
    if (d->state == CH_DONE)
        ret = HTTP_CHUNKED_DONE;
    else if (d->state == CH_ERROR_400)
        ret = -400;
    else if (d->state == CH_ERROR_413)
        ret = -413;
    goto out;
bad:
    d->state = CH_ERROR_400;
    ret = -400;
out:
    *in_used = i;
    *out_len = o;
    return ret;
}
