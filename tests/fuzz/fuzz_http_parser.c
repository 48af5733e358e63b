/* libFuzzer target for http_parse_request. Besides crashes and sanitizer reports, it checks what
 * must hold for every input: results are one of the documented codes, a complete head lies
 * within the input and the limit, every slice points into the head, and parsing the same bytes
 * in two reads, or one byte at a time, gives the same answer as one read.
 *
 * Input layout: byte 0 picks max_head, byte 1 the split point, the rest is the request. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static int inside(struct http_slice s, const char *buf, size_t head_len)
{
    if (s.n == 0)
        return s.p == NULL || (s.p >= buf && s.p <= buf + head_len);
    return s.p >= buf && s.p + s.n <= buf + head_len;
}

static int same_slice(struct http_slice a, struct http_slice b)
{
    return a.n == b.n && (a.n == 0 || a.p == b.p);
}

static void check_same(const struct http_request *a, const struct http_request *b)
{
    check(a->method == b->method, "same method");
    check(same_slice(a->method_name, b->method_name), "same method name");
    check(same_slice(a->target, b->target), "same target");
    check(same_slice(a->path, b->path), "same path");
    check(same_slice(a->query, b->query), "same query");
    check(a->minor_version == b->minor_version, "same version");
    check(a->header_count == b->header_count, "same header count");
    for (size_t i = 0; i < a->header_count; i++) {
        check(same_slice(a->headers[i].name, b->headers[i].name), "same name");
        check(same_slice(a->headers[i].value, b->headers[i].value), "same value");
    }
    check(a->content_length == b->content_length, "same content length");
    check(a->chunked == b->chunked, "same chunked");
    check(a->keep_alive == b->keep_alive, "same keep-alive");
    check(a->expect_continue == b->expect_continue, "same expect");
    check(a->upgrade_websocket == b->upgrade_websocket, "same upgrade");
    check(same_slice(a->host, b->host), "same host");
    check(a->head_len == b->head_len, "same head length");
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void check_request(const char *buf, size_t len, size_t max_head, int rc,
                          const struct http_request *r)
{
    if (rc == 0) {
        check(len <= max_head, "incomplete only within the limit");
        return;
    }
    if (rc < 0) {
        check(rc == -400 || rc == -414 || rc == -431 || rc == -501 || rc == -505,
              "documented error");
        return;
    }
    size_t h = r->head_len;
    check((size_t)rc == h, "return value is head_len");
    check(h <= len && h <= max_head, "head within input and limit");
    check(h >= 4 && memcmp(buf + h - 4, "\r\n\r\n", 4) == 0, "head ends with CRLFCRLF");
    check(r->method_name.n > 0 && inside(r->method_name, buf, h), "method slice");
    check(r->target.n > 0 && inside(r->target, buf, h), "target slice");
    check(inside(r->path, buf, h) && inside(r->query, buf, h), "path and query slices");
    check(r->path.n + r->query.n <= r->target.n, "path and query within the target");
    check(r->path.n == 0 ||
              (r->path.p >= r->target.p && r->path.p + r->path.n <= r->target.p + r->target.n),
          "path inside the target");
    check(r->query.n == 0 || (r->query.p > r->target.p && r->query.p[-1] == '?' &&
                              r->query.p + r->query.n == r->target.p + r->target.n),
          "query ends the target after a '?'");
    check(r->minor_version == 0 || r->minor_version == 1, "version");
    check(r->header_count <= HTTP_MAX_HEADERS, "header count");
    check(inside(r->host, buf, h), "host slice");
    for (size_t i = 0; i < r->header_count; i++) {
        const struct http_header *f = &r->headers[i];
        check(f->name.n > 0 && inside(f->name, buf, h) && inside(f->value, buf, h), "fields");
        check(f->value.n == 0 || (!is_ows(f->value.p[0]) && !is_ows(f->value.p[f->value.n - 1])),
              "values trimmed");
        for (size_t j = 0; j < f->value.n; j++)
            check(f->value.p[j] != '\r' && f->value.p[j] != '\n', "no CR/LF in values");
        const struct http_slice *v = http_request_header(r, "x");
        (void)v;
        char name[64];
        if (f->name.n < sizeof name) {
            memcpy(name, f->name.p, f->name.n);
            name[f->name.n] = '\0';
            const struct http_slice *found = http_request_header(r, name);
            check(found != NULL, "every field can be looked up");
            check(http_slice_ieq(f->name, name) && http_slice_eq(f->name, name), "slice compare");
        }
    }
    check(r->content_length >= -1, "content length");
    if (r->chunked)
        check(r->content_length == -1 && r->minor_version == 1, "chunked framing");
    if (r->minor_version == 1)
        check(http_request_header(r, "host") != NULL, "HTTP/1.1 has Host");
    if (r->minor_version == 0)
        check(!r->expect_continue && !r->upgrade_websocket, "1.0 ignores Expect and Upgrade");
    for (size_t i = 0; i < r->target.n; i++)
        check((unsigned char)r->target.p[i] > 0x20 && r->target.p[i] != 0x7f, "target bytes");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_head = data[0] == 0xff ? 8192 : (size_t)data[0] * 3;
    const char *buf = (const char *)data + 2;
    size_t len = size - 2;

    struct http_request whole, part;
    int rc = http_parse_request(buf, len, 0, max_head, &whole);
    check_request(buf, len, max_head, rc, &whole);

    /* Two reads. */
    size_t k = len ? data[1] % (len + 1) : 0;
    int r1 = http_parse_request(buf, k, 0, max_head, &part);
    if (r1 == 0)
        r1 = http_parse_request(buf, len, k, max_head, &part);
    check(r1 == rc, "two reads give the same result");
    if (rc > 0)
        check_same(&whole, &part);

    /* One byte at a time. */
    size_t prev = 0;
    int r2 = 0;
    for (size_t n = 1; n <= len && r2 == 0; n++) {
        r2 = http_parse_request(buf, n, prev, max_head, &part);
        prev = n;
    }
    if (len == 0)
        r2 = http_parse_request(buf, 0, 0, max_head, &part);
    check(r2 == rc, "byte-at-a-time gives the same result");
    if (rc > 0)
        check_same(&whole, &part);
    return 0;
}
