/* Unit tests for http/parser: request forms, methods, header syntax, derived fields, every limit
 * and refusal, incremental parsing at every byte boundary, pipelining, over-reads caught by a
 * PROT_NONE page, and the chunked decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "guard_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http/parser.h"

#define MAX_HEAD 8192

static int parse_n(const char *s, size_t n, struct http_request *req)
{
    return http_parse_request(s, n, 0, MAX_HEAD, req);
}

static int parse(const char *s, struct http_request *req)
{
    return parse_n(s, strlen(s), req);
}

static int status_of(const char *s)
{
    struct http_request req;
    return parse(s, &req);
}

#define assert_slice(s, str) assert_true(slice_check((s), (str)))

/* Reports the mismatch before failing: a bare assert_true says too little. */
static int slice_check(struct http_slice s, const char *str)
{
    if (http_slice_eq(s, str))
        return 1;
    print_error("slice \"%.*s\" != \"%s\"\n", (int)s.n, s.p, str);
    return 0;
}

/* Slices of a and b at the same offsets of their own buffers. */
static void assert_slice_same(struct http_slice x, const char *xb, struct http_slice y,
                              const char *yb)
{
    assert_int_equal(x.n, y.n);
    if (x.n)
        assert_int_equal(x.p - xb, y.p - yb);
}

static void assert_req_same(const struct http_request *a, const char *ab,
                            const struct http_request *b, const char *bb)
{
    assert_int_equal(a->method, b->method);
    assert_slice_same(a->method_name, ab, b->method_name, bb);
    assert_slice_same(a->target, ab, b->target, bb);
    assert_slice_same(a->path, ab, b->path, bb);
    assert_slice_same(a->query, ab, b->query, bb);
    assert_int_equal(a->minor_version, b->minor_version);
    assert_int_equal(a->header_count, b->header_count);
    for (size_t i = 0; i < a->header_count; i++) {
        assert_slice_same(a->headers[i].name, ab, b->headers[i].name, bb);
        assert_slice_same(a->headers[i].value, ab, b->headers[i].value, bb);
    }
    assert_int_equal(a->content_length, b->content_length);
    assert_int_equal(a->chunked, b->chunked);
    assert_int_equal(a->keep_alive, b->keep_alive);
    assert_int_equal(a->expect_continue, b->expect_continue);
    assert_int_equal(a->upgrade_websocket, b->upgrade_websocket);
    assert_slice_same(a->host, ab, b->host, bb);
    assert_int_equal(a->head_len, b->head_len);
}

/* ---- request line ---------------------------------------------------------------------- */

static void test_simple_get(void **state)
{
    (void)state;
    const char *s = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\nBODY";
    struct http_request r;
    assert_int_equal(parse(s, &r), (int)strlen(s) - 4);
    assert_int_equal(r.head_len, strlen(s) - 4);
    assert_int_equal(r.method, HTTP_GET);
    assert_slice(r.method_name, "GET");
    assert_slice(r.target, "/index.html");
    assert_slice(r.path, "/index.html");
    assert_slice(r.query, "");
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.header_count, 2);
    assert_slice(r.headers[0].name, "Host");
    assert_slice(r.headers[0].value, "example.com");
    assert_slice(r.headers[1].name, "User-Agent");
    assert_slice(r.headers[1].value, "t");
    assert_int_equal(r.content_length, -1);
    assert_false(r.chunked);
    assert_true(r.keep_alive);
    assert_false(r.expect_continue);
    assert_false(r.upgrade_websocket);
    assert_slice(r.host, "example.com");
    /* Zero-copy: slices point into the input. */
    assert_ptr_equal(r.target.p, s + 4);
}

static void test_methods(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum http_method m;
    } cases[] = {
        {"GET", HTTP_GET},         {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
        {"PUT", HTTP_PUT},         {"DELETE", HTTP_DELETE}, {"OPTIONS", HTTP_OPTIONS},
        {"PATCH", HTTP_PATCH},     {"TRACE", HTTP_TRACE},   {"PROPFIND", HTTP_OTHER},
        {"get", HTTP_OTHER},       {"Post", HTTP_OTHER},    {"GETS", HTTP_OTHER},
        {"X-CUSTOM!", HTTP_OTHER}, {"PUTT", HTTP_OTHER},    {"DELETES", HTTP_OTHER},
        {"PATCX", HTTP_OTHER},     {"DELETX", HTTP_OTHER},  {"HEAP", HTTP_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[128];
        struct http_request r;
        snprintf(buf, sizeof buf, "%s /x HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].name);
        assert_int_equal(parse(buf, &r), (int)strlen(buf));
        assert_int_equal(r.method, cases[i].m);
        assert_slice(r.method_name, cases[i].name);
    }
    struct http_request r;
    assert_int_equal(parse("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n", &r), 35);
    assert_int_equal(r.method, HTTP_CONNECT);
    /* Methods are tokens. */
    assert_int_equal(status_of("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    assert_int_equal(status_of(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    assert_int_equal(status_of("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
}

static void test_origin_form(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_slice(r.target, "/a/b?x=1&y=2");
    assert_slice(r.path, "/a/b");
    assert_slice(r.query, "x=1&y=2");

    assert_true(parse("GET /? HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_slice(r.path, "/");
    assert_slice(r.query, "");

    assert_true(parse("GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_slice(r.path, "/a");
    assert_slice(r.query, "b?c");

    assert_true(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_slice(r.path, "/");
    assert_slice(r.query, "");

    /* Raw UTF-8 (obs-text) is let through to the application. */
    assert_true(parse("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_slice(r.path, "/caf\xc3\xa9");

    assert_int_equal(status_of("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    assert_int_equal(status_of("GET /  HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    assert_int_equal(status_of("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    assert_int_equal(status_of("GET HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
}

static void test_absolute_form(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("GET http://example.com:8080/a/b?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", &r) >
                0);
    assert_slice(r.target, "http://example.com:8080/a/b?q=1");
    assert_slice(r.path, "/a/b");
    assert_slice(r.query, "q=1");
    /* RFC 9112 3.2.2: the target's authority wins over Host. */
    assert_slice(r.host, "example.com:8080");
    assert_slice(*http_request_header(&r, "host"), "other");

    assert_true(parse("GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_slice(r.path, "");
    assert_slice(r.query, "");
    assert_slice(r.host, "h");

    assert_true(parse("GET HTTP://h?x HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_slice(r.path, "");
    assert_slice(r.query, "x");

    assert_true(parse("POST coap+tcp.x-y://[::1]:5683/p HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_slice(r.host, "[::1]:5683");
    assert_slice(r.path, "/p");

    const char *bad[] = {
        "GET http:/x HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http:// HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET 1http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET example.com/x HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET ht_tp://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET :// HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET h HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(status_of(bad[i]), -400);
}

static void test_authority_form(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_CONNECT);
    assert_slice(r.target, "example.com:443");
    assert_slice(r.path, "example.com:443");
    assert_slice(r.query, "");

    assert_true(parse("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", &r) > 0);
    assert_slice(r.target, "[::1]:443");

    const char *bad[] = {
        "CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT h: HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT :443 HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT h:44a HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT http://h:443/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT u@h:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT h:443?x HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT * HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(status_of(bad[i]), -400);
}

static void test_asterisk_form(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_OPTIONS);
    assert_slice(r.target, "*");
    assert_slice(r.path, "*");
    assert_slice(r.query, "");
    assert_int_equal(status_of("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    assert_int_equal(status_of("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    assert_int_equal(status_of("OPTIONS *?a HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
    /* OPTIONS takes the other forms too. */
    assert_true(parse("OPTIONS /a HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
}

/* Every byte value inside the target: only VCHAR but '#', and obs-text, get through. */
static void test_target_bytes(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "GET /a%cb HTTP/1.1\r\nHost: h\r\n\r\n", 'X');
        buf[6] = (char)c;
        int ok = (c >= 0x21 && c <= 0x7e && c != '#') || c >= 0x80;
        struct http_request r;
        int rc = parse_n(buf, (size_t)n, &r);
        if (rc != (ok ? n : -400))
            fail_msg("byte 0x%02x in the target: got %d", c, rc);
    }
}

static void test_version(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0);
    assert_int_equal(r.minor_version, 0);
    assert_true(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_int_equal(r.minor_version, 1);

    const char *v505[] = {"HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.1", "HTTP/9.9"};
    for (size_t i = 0; i < sizeof v505 / sizeof v505[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "GET / %s\r\nHost: h\r\n\r\n", v505[i]);
        assert_int_equal(status_of(buf), -505);
    }
    /* The HTTP/2 connection preface, sent to an HTTP/1 port. */
    assert_int_equal(status_of("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), -505);

    const char *v400[] = {"HTTP/1",   "http/1.1", "HTTP/1.1 ", "HTTP/11.1", "HTTP/1.10", "HTTP/1.x",
                          "HTTP 1.1", "HTTP/1,1", "HTTPS/1.1", "",          "HTTP/a.1",  "HTTP/1."};
    for (size_t i = 0; i < sizeof v400 / sizeof v400[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "GET / %s\r\nHost: h\r\n\r\n", v400[i]);
        if (status_of(buf) != -400)
            fail_msg("version \"%s\": got %d", v400[i], status_of(buf));
    }
    assert_int_equal(status_of("GET /\r\nHost: h\r\n\r\n"), -400);
    assert_int_equal(status_of("GET\r\n\r\n"), -400);
    assert_int_equal(status_of("\x16\x03\x01\x02\x10\x01\x10\x01\xfc\x03\x03\r\n\r\n"), -400);
}

/* ---- headers --------------------------------------------------------------------------- */

static void test_ows_and_empty_values(void **state)
{
    (void)state;
    struct http_request r;
    const char *s = "GET / HTTP/1.1\r\n"
                    "Host:h\r\n"
                    "A:  a b  \r\n"
                    "B:\t\tx\t \r\n"
                    "C:\r\n"
                    "D: \t \r\n"
                    "E: a\tb\r\n"
                    "F:\xe2\x82\xac\r\n"
                    "\r\n";
    assert_int_equal(parse(s, &r), (int)strlen(s));
    assert_int_equal(r.header_count, 7);
    assert_slice(r.headers[0].value, "h");
    assert_slice(r.headers[1].value, "a b");
    assert_slice(r.headers[2].value, "x");
    assert_slice(r.headers[3].value, "");
    assert_slice(r.headers[4].value, "");
    assert_slice(r.headers[5].value, "a\tb");
    assert_slice(r.headers[6].value, "\xe2\x82\xac");
    /* Empty values point inside the buffer, never at NULL. */
    assert_true(r.headers[3].value.p > s && r.headers[3].value.p < s + strlen(s));
}

static void test_header_lookup(void **state)
{
    (void)state;
    struct http_request r;
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\nX-Thing: 1\r\nx-thing: 2\r\nACCEPT: */*\r\n\r\n";
    assert_true(parse(s, &r) > 0);
    assert_slice(*http_request_header(&r, "x-thing"), "1");
    assert_slice(*http_request_header(&r, "X-THING"), "1");
    assert_slice(*http_request_header(&r, "Accept"), "*/*");
    assert_null(http_request_header(&r, "X-Thin"));
    assert_null(http_request_header(&r, "X-Things"));
    assert_null(http_request_header(&r, "Cookie"));
}

static void test_slice_compare(void **state)
{
    (void)state;
    struct http_slice s = {"Hello", 5}, e = {"", 0}, sub = {"Hello", 4};
    assert_true(http_slice_eq(s, "Hello"));
    assert_false(http_slice_eq(s, "hello"));
    assert_false(http_slice_eq(s, "Hell"));
    assert_false(http_slice_eq(s, "Hello!"));
    assert_true(http_slice_ieq(s, "hELLO"));
    assert_false(http_slice_ieq(s, "hELL"));
    assert_false(http_slice_ieq(s, "hELLO "));
    assert_true(http_slice_eq(e, ""));
    assert_true(http_slice_ieq(e, ""));
    assert_false(http_slice_eq(e, "a"));
    assert_true(http_slice_eq(sub, "Hell"));
    /* Only ASCII letters fold: '@' is not '`', '[' is not '{'. */
    struct http_slice at = {"@[", 2};
    assert_false(http_slice_ieq(at, "`{"));
    assert_true(http_slice_ieq(at, "@["));
}

static void test_many_headers(void **state)
{
    (void)state;
    char buf[4096];
    struct http_request r;
    for (int count = HTTP_MAX_HEADERS - 1; count <= HTTP_MAX_HEADERS + 1; count++) {
        int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\n");
        for (int i = 1; i < count; i++)
            n += snprintf(buf + n, sizeof buf - (size_t)n, "X-H%d: v%d\r\n", i, i);
        n += snprintf(buf + n, sizeof buf - (size_t)n, "\r\n");
        int rc = parse(buf, &r);
        if (count <= HTTP_MAX_HEADERS) {
            assert_int_equal(rc, n);
            assert_int_equal(r.header_count, (size_t)count);
            char name[16], value[16];
            snprintf(name, sizeof name, "x-h%d", count - 1);
            snprintf(value, sizeof value, "v%d", count - 1);
            assert_slice(r.headers[count - 1].value, value);
            assert_slice(*http_request_header(&r, name), value);
        } else {
            assert_int_equal(rc, -431);
        }
    }
}

/* Every byte value inside a field name and a field value. */
static void test_header_bytes(void **state)
{
    (void)state;
    static const char tchars[] = "!#$%&'*+-.^_`|~";
    for (int c = 0; c < 256; c++) {
        char buf[64];
        struct http_request r;
        int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nAXB: v\r\n\r\n");
        buf[26] = (char)c;
        int tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c && strchr(tchars, c));
        /* A ':' there only ends the name sooner. */
        int rc = parse_n(buf, (size_t)n, &r);
        if (rc != (tchar || c == ':' ? n : -400))
            fail_msg("byte 0x%02x in a name: got %d", c, rc);

        n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nA: vXv\r\n\r\n");
        buf[29] = (char)c;
        int vchar = c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80;
        rc = parse_n(buf, (size_t)n, &r);
        if (rc != (vchar ? n : -400))
            fail_msg("byte 0x%02x in a value: got %d", c, rc);
    }
}

/* Control characters in a long value are found by the eight-byte scan at every position. */
static void test_long_value_ctl(void **state)
{
    (void)state;
    char buf[256];
    const char ctls[] = {0x00, 0x01, 0x0b, 0x0d, 0x1f, 0x7f};
    for (size_t k = 0; k < sizeof ctls; k++) {
        for (int pos = 0; pos < 40; pos++) {
            int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nA: %s\r\n\r\n",
                             "0123456789abcdefghijklmnopqrstuvwxyzABCD");
            buf[28 + pos] = ctls[k];
            struct http_request r;
            assert_int_equal(parse_n(buf, (size_t)n, &r), -400);
        }
    }
    for (int pos = 0; pos < 40; pos++) {
        int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nA: %s\r\n\r\n",
                         "0123456789abcdefghijklmnopqrstuvwxyzABCD");
        buf[28 + pos] = '\t';
        struct http_request r;
        assert_int_equal(parse_n(buf, (size_t)n, &r), n);
    }
    /* Same for the target. */
    for (int pos = 0; pos < 40; pos++) {
        snprintf(buf, sizeof buf, "GET /%s HTTP/1.1\r\nHost: h\r\n\r\n",
                 "0123456789abcdefghijklmnopqrstuvwxyzABCD");
        buf[5 + pos] = '\x01';
        assert_int_equal(status_of(buf), -400);
    }
}

static void test_header_syntax(void **state)
{
    (void)state;
    static const char *bad[] = {
        /* obs-fold */
        "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\tc\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
        /* whitespace between name and colon */
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n",
        /* no colon, empty name */
        "GET / HTTP/1.1\r\nHost h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
        /* control characters */
        "GET / HTTP/1.1\r\nHost: h\r\nA: b\x01\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nA: b\x7f\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nA: b\rc\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nA\x01: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\rA: b\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n",
        /* bare LF line endings */
        "GET / HTTP/1.1\nHost: h\n\n",
        "GET / HTTP/1.1\r\nHost: h\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\n",
        "GET / HTTP/1.1\r\nHost: h\r\nA: \nb\r\n\r\n",
        "\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (status_of(bad[i]) != -400)
            fail_msg("case %zu: got %d", i, status_of(bad[i]));
}

/* A bare LF is refused as soon as it arrives, not when the head would be complete. */
static void test_bare_lf_early(void **state)
{
    (void)state;
    assert_int_equal(status_of("GET / HTTP/1.1\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: x\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\n"), 0);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: x\r\n\r"), 0);
}

static void test_leading_empty_lines(void **state)
{
    (void)state;
    struct http_request r;
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(parse(s, &r), (int)strlen(s));
    assert_slice(r.method_name, "GET");
    assert_int_equal(status_of("\r\n"), 0);
    assert_int_equal(status_of("\r\n\r\n"), 0);
    assert_int_equal(status_of("\r"), 0);
    assert_int_equal(status_of("\r\r\n\r\n"), -400);
}

static void test_host(void **state)
{
    (void)state;
    struct http_request r;
    assert_int_equal(status_of("GET / HTTP/1.1\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n"), -400);
    /* An empty Host is valid (RFC 9112 3.2), and HTTP/1.0 may omit it. */
    assert_true(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &r) > 0);
    assert_slice(r.host, "");
    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0);
    assert_slice(r.host, "");
    assert_true(parse("GET / HTTP/1.1\r\nhOsT:  Example.COM:8080 \r\n\r\n", &r) > 0);
    assert_slice(r.host, "Example.COM:8080");
    assert_true(parse("GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", &r) > 0);
    assert_slice(r.host, "[2001:db8::1]:80");
    /* Not the Host field. */
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHosts: a\r\n\r\n"), -400);
}

/* ---- derived fields -------------------------------------------------------------------- */

static int64_t cl_of(const char *fields)
{
    char buf[512];
    struct http_request r;
    snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: h\r\n%s\r\n", fields);
    int rc = parse(buf, &r);
    return rc > 0 ? r.content_length : rc;
}

static void test_content_length(void **state)
{
    (void)state;
    assert_int_equal(cl_of(""), -1);
    assert_int_equal(cl_of("Content-Length: 0\r\n"), 0);
    assert_int_equal(cl_of("Content-Length: 5\r\n"), 5);
    assert_int_equal(cl_of("content-length:5\r\n"), 5);
    assert_int_equal(cl_of("CONTENT-LENGTH: 007 \r\n"), 7);
    assert_int_equal(cl_of("Content-Length: 9223372036854775807\r\n"), INT64_MAX);
    assert_int_equal(cl_of("Content-Length: 0009223372036854775807\r\n"), INT64_MAX);
    /* Repeated, as separate fields or as a list: identical is one value. */
    assert_int_equal(cl_of("Content-Length: 5\r\nContent-Length: 5\r\n"), 5);
    assert_int_equal(cl_of("Content-Length: 5, 5\r\n"), 5);
    assert_int_equal(cl_of("Content-Length: 5,5,05\r\n"), 5);
    assert_int_equal(cl_of("Content-Length: 5,,5\r\n"), 5);

    static const char *bad[] = {
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: 5,6\r\n",
        "Content-Length: 6\r\nContent-Length: 5, 5\r\n",
        "Content-Length: \r\n",
        "Content-Length: ,\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 5a\r\n",
        "Content-Length: 0x5\r\n",
        "Content-Length: 5 5\r\n",
        "Content-Length: 5.0\r\n",
        "Content-Length: 9223372036854775808\r\n",
        "Content-Length: 99999999999999999999999\r\n",
        "Content-Length: 18446744073709551621\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cl_of(bad[i]) != -400)
            fail_msg("case %zu: %s", i, bad[i]);
}

static void test_transfer_encoding(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", &r) > 0);
    assert_true(r.chunked);
    assert_int_equal(r.content_length, -1);
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding:  CHUNKED \r\n\r\n", &r) >
                0);
    assert_true(r.chunked);
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked,\r\n\r\n", &r) >
                0);
    assert_true(r.chunked);

    static const struct {
        const char *fields;
        int status;
    } cases[] = {
        {"Transfer-Encoding: gzip, chunked\r\n", -501},
        {"Transfer-Encoding: chunked, gzip\r\n", -501},
        {"Transfer-Encoding: gzip\r\n", -501},
        {"Transfer-Encoding: chunked, chunked\r\n", -501},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", -501},
        {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", -501},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", -501},
        {"Transfer-Encoding: chunked;x=1\r\n", -501},
        {"Transfer-Encoding: xchunked\r\n", -501},
        {"Transfer-Encoding: chunked x\r\n", -501},
        {"Transfer-Encoding: identity\r\n", -501},
        {"Transfer-Encoding:\r\n", -501},
        {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", -400},
        {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", -400},
        {"Content-Length: 5\r\nTransfer-Encoding: gzip\r\n", -400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: h\r\n%s\r\n", cases[i].fields);
        if (status_of(buf) != cases[i].status)
            fail_msg("case %zu: got %d", i, status_of(buf));
    }
    assert_int_equal(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400);
}

static void test_keep_alive(void **state)
{
    (void)state;
    static const struct {
        int minor;
        const char *fields;
        int keep_alive;
    } cases[] = {
        {1, "", 1},
        {1, "Connection: close\r\n", 0},
        {1, "Connection: Close\r\n", 0},
        {1, "Connection: keep-alive\r\n", 1},
        {1, "Connection: foo, CLOSE\r\n", 0},
        {1, "Connection: keep-alive\r\nConnection: close\r\n", 0},
        {1, "Connection: closed\r\n", 1},
        {1, "Connection: \"close\"\r\n", 1},
        {1, "X-Connection: close\r\n", 1},
        {0, "", 0},
        {0, "Connection: keep-alive\r\n", 1},
        {0, "Connection: Keep-Alive\r\n", 1},
        {0, "Connection: foo ,\tkeep-alive , bar\r\n", 1},
        {0, "Connection: keep-alive, close\r\n", 0},
        {0, "Connection: close\r\n", 0},
        {0, "Connection: keep-alives\r\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[512];
        struct http_request r;
        snprintf(buf, sizeof buf, "GET / HTTP/1.%d\r\nHost: h\r\n%s\r\n", cases[i].minor,
                 cases[i].fields);
        assert_true(parse(buf, &r) > 0);
        if (r.keep_alive != (unsigned)cases[i].keep_alive)
            fail_msg("case %zu: keep_alive %u", i, r.keep_alive);
    }
}

static void test_expect(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", &r) > 0);
    assert_true(r.expect_continue);
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nexpect:  100-Continue \r\n\r\n", &r) > 0);
    assert_true(r.expect_continue);
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continued\r\n\r\n", &r) > 0);
    assert_false(r.expect_continue);
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", &r) > 0);
    assert_false(r.expect_continue);
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_false(r.expect_continue);
    /* RFC 9110 10.1.1: ignored in HTTP/1.0. */
    assert_true(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &r) > 0);
    assert_false(r.expect_continue);
}

static void test_websocket_upgrade(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        int ws;
    } cases[] = {
        {"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1},
        {"GET /ws HTTP/1.1\r\nHost: h\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
         "\r\n",
         1},
        {"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: h2c, websocket/13\r\nConnection: upgrade\r\n\r\n",
         1},
        {"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websockets\r\nConnection: upgrade\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgraded\r\n\r\n", 0},
        {"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_request r;
        assert_true(parse(cases[i].head, &r) > 0);
        if (r.upgrade_websocket != (unsigned)cases[i].ws)
            fail_msg("case %zu", i);
    }
}

/* ---- limits ---------------------------------------------------------------------------- */

static void test_limits(void **state)
{
    (void)state;
    enum { LIMIT = 256 };
    char buf[1024];
    struct http_request r;

    /* A head of exactly max_head bytes is accepted; one more byte is 431. */
    int base = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n");
    int pad = LIMIT - base;
    snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nX: %0*d\r\n\r\n", pad, 0);
    assert_int_equal(strlen(buf), LIMIT);
    assert_int_equal(http_parse_request(buf, LIMIT, 0, LIMIT, &r), LIMIT);
    assert_int_equal(http_parse_request(buf, LIMIT, 0, LIMIT - 1, &r), -431);
    /* Incomplete within the limit: wait. One byte past it: refuse. */
    assert_int_equal(http_parse_request(buf, LIMIT - 1, 0, LIMIT - 1, &r), 0);
    assert_int_equal(http_parse_request(buf, LIMIT - 2, 0, LIMIT - 1, &r), 0);
    /* A complete head past the limit is refused even when it arrived in one read. */
    assert_int_equal(http_parse_request(buf, LIMIT, 0, 100, &r), -431);

    /* A request line without its CRLF within the limit: 414. */
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "GET /", 5);
    assert_int_equal(http_parse_request(buf, LIMIT, 0, LIMIT, &r), 0);
    assert_int_equal(http_parse_request(buf, LIMIT + 1, 0, LIMIT, &r), -414);
    assert_int_equal(http_parse_request(buf, sizeof buf, 0, LIMIT, &r), -414);
    /* The whole line fits, the fields do not: 431. */
    int n = snprintf(buf, sizeof buf, "GET /%0*d HTTP/1.1\r\nHost: h\r\n", LIMIT - 20, 0);
    assert_int_equal(http_parse_request(buf, (size_t)n, 0, LIMIT, &r), -431);
    /* Target alone longer than the limit, head complete: 414. */
    n = snprintf(buf, sizeof buf, "GET /%0*d HTTP/1.1\r\nHost: h\r\n\r\n", LIMIT + 10, 0);
    assert_int_equal(http_parse_request(buf, (size_t)n, 0, LIMIT, &r), -414);
    /* Only empty lines past the limit. */
    for (int i = 0; i < 200; i++)
        memcpy(buf + 2 * i, "\r\n", 2);
    assert_int_equal(http_parse_request(buf, 400, 0, LIMIT, &r), -431);
    assert_int_equal(http_parse_request(buf, 400, 0, 1000, &r), 0);
    /* Degenerate limits. */
    assert_int_equal(http_parse_request("GET", 3, 0, 0, &r), -431);
    assert_int_equal(http_parse_request("", 0, 0, 0, &r), 0);
    const char *s = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(http_parse_request(s, strlen(s), 0, SIZE_MAX, &r), (int)strlen(s));
}

/* ---- incremental and pipelined --------------------------------------------------------- */

static const char *const samples[] = {
    "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ("\r\nPOST /submit?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: "
     "application/json\r\nContent-Length: 13\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\nAccept:   */*  \r\n"
     "Cookie: a=b; c=d; eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee=fffffffffffffffffffffffffff\r\n\r\n"),
    ("GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: "
     "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
    "PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    "OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\nX:\r\n\r\n",
    "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    "GET http://a.b/c?d HTTP/1.1\r\nHost: x\r\n\r\n",
    /* refused ones split the same way */
    "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nA: b\nc\r\n\r\n",
};

static void test_split_every_byte(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof samples / sizeof samples[0]; s++) {
        const char *in = samples[s];
        size_t n = strlen(in);
        struct http_request whole, part;
        int want = parse_n(in, n, &whole);
        assert_int_not_equal(want, 0);

        /* One byte at a time, with prev_len. */
        size_t prev = 0;
        int rc = 0;
        size_t k;
        for (k = 1; k <= n; k++) {
            rc = http_parse_request(in, k, prev, MAX_HEAD, &part);
            if (rc != 0)
                break;
            prev = k;
        }
        assert_int_equal(rc, want);
        if (want > 0) {
            assert_int_equal(k, n);
            assert_req_same(&whole, in, &part, in);
        }
        /* Two reads, split at every point. */
        for (k = 1; k < n; k++) {
            rc = http_parse_request(in, k, 0, MAX_HEAD, &part);
            if (rc != 0) {
                assert_int_equal(rc, want);
                continue;
            }
            rc = http_parse_request(in, n, k, MAX_HEAD, &part);
            assert_int_equal(rc, want);
            if (want > 0)
                assert_req_same(&whole, in, &part, in);
        }
    }
}

/* A misuse of prev_len (larger than len) does not make the parser read past len. */
static void test_prev_len_larger(void **state)
{
    (void)state;
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http_request r;
    assert_int_equal(http_parse_request(s, strlen(s), 1000, MAX_HEAD, &r), (int)strlen(s));
}

static void test_pipelined(void **state)
{
    (void)state;
    enum { COUNT = 100 };
    static char buf[COUNT * 160];
    size_t n = 0;
    for (int i = 0; i < COUNT; i++) {
        if (i % 3 == 0)
            n += (size_t)sprintf(buf + n, "GET /r%d?i=%d HTTP/1.1\r\nHost: h\r\n\r\n", i, i);
        else if (i % 3 == 1)
            n += (size_t)sprintf(buf + n,
                                 "POST /p%d HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
                                 "b%04d",
                                 i, i);
        else
            n +=
                (size_t)sprintf(buf + n, "HEAD /h%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", i);
    }
    size_t off = 0;
    for (int i = 0; i < COUNT; i++) {
        struct http_request r;
        int rc = http_parse_request(buf + off, n - off, 0, MAX_HEAD, &r);
        assert_true(rc > 0);
        char path[16];
        snprintf(path, sizeof path, "/%c%d", "rph"[i % 3], i);
        assert_slice(r.path, path);
        assert_true(r.keep_alive);
        off += (size_t)rc;
        if (r.content_length > 0) {
            char body[16];
            snprintf(body, sizeof body, "b%04d", i);
            assert_memory_equal(buf + off, body, 5);
            off += (size_t)r.content_length;
        }
    }
    assert_int_equal(off, n);
}

/* ---- over-reads ------------------------------------------------------------------------ */

static void test_no_overread(void **state)
{
    struct guard *g = *state;
    static const char *const extra[] = {
        ("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\nX: "
         "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n\r\n"),
        "GET / HTTP/1.1\r\nHost: h\r\nX: v\t\tv\t \r\n\r\n",
        "GET /a?bbbbbbbbbbbbbbbbbbbbbbbbbbbbb?c HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 12345,12345\r\nHost: h\r\n\r\n",
        "\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "G",
    };
    for (size_t set = 0; set < 2; set++) {
        const char *const *list = set ? extra : samples;
        size_t count = set ? sizeof extra / sizeof extra[0] : sizeof samples / sizeof samples[0];
        for (size_t s = 0; s < count; s++) {
            size_t n = strlen(list[s]);
            struct http_request r;
            int want = parse_n(list[s], n, &r);
            for (size_t k = 0; k <= n; k++) {
                char *p = guard_place(g, list[s], k);
                int rc = http_parse_request(p, k, 0, MAX_HEAD, &r);
                if (k == n)
                    assert_int_equal(rc, want);
                /* Small limits end the search early: the limit must bound every read too. */
                for (size_t lim = 0; lim <= k + 1; lim += 7)
                    (void)http_parse_request(p, k, 0, lim, &r);
                if (rc > 0)
                    for (size_t i = 0; i < r.header_count; i++)
                        (void)http_request_header(&r, "z");
            }
        }
    }
    /* Chunked streams ending at the page end, fed whole and in two pieces. */
    static const char *const streams[] = {
        "5\r\nhello\r\n0\r\n\r\n",
        "1;ext=\"v\"\r\nx\r\n0\r\nT: v\r\n\r\n",
        "ffffffffffffffff\r\n",
        "5\r\nhel",
    };
    for (size_t s = 0; s < sizeof streams / sizeof streams[0]; s++) {
        size_t n = strlen(streams[s]);
        for (size_t k = 0; k <= n; k++) {
            char *p = guard_place(g, streams[s], n);
            struct http_chunked d;
            char out[64];
            size_t used, olen;
            http_chunked_init(&d, 1 << 20);
            int rc = http_chunked_decode(&d, p, k, &used, out, &olen);
            if (rc == HTTP_CHUNKED_MORE)
                (void)http_chunked_decode(&d, p + k, n - k, &used, out, &olen);
            /* In place, right at the guard. */
            http_chunked_init(&d, 1 << 20);
            (void)http_chunked_decode(&d, p, n, &used, p, &olen);
        }
    }
}

/* ---- chunked --------------------------------------------------------------------------- */

struct decoded {
    int rc;
    size_t used;
    size_t out_len;
    char out[1024];
};

/* Decodes in pieces of at most step bytes, feeding only what the decoder left. */
static struct decoded decode_steps(const char *in, size_t n, size_t step, uint64_t max_body)
{
    struct decoded res = {0};
    struct http_chunked d;
    http_chunked_init(&d, max_body);
    size_t off = 0;
    res.rc = HTTP_CHUNKED_MORE;
    do {
        size_t piece = n - off < step ? n - off : step;
        size_t used, olen;
        res.rc = http_chunked_decode(&d, in + off, piece, &used, res.out + res.out_len, &olen);
        assert_true(used <= piece);
        assert_true(olen <= used);
        if (res.rc == HTTP_CHUNKED_MORE)
            assert_int_equal(used, piece);
        off += used;
        res.out_len += olen;
    } while (res.rc == HTTP_CHUNKED_MORE && off < n);
    res.used = off;
    return res;
}

static struct decoded decode(const char *in, uint64_t max_body)
{
    return decode_steps(in, strlen(in), SIZE_MAX, max_body);
}

static void test_chunked_simple(void **state)
{
    (void)state;
    struct decoded r = decode("5\r\nhello\r\n0\r\n\r\n", 100);
    assert_int_equal(r.rc, HTTP_CHUNKED_DONE);
    assert_int_equal(r.used, 15);
    assert_int_equal(r.out_len, 5);
    assert_memory_equal(r.out, "hello", 5);

    r = decode("0\r\n\r\n", 100);
    assert_int_equal(r.rc, HTTP_CHUNKED_DONE);
    assert_int_equal(r.out_len, 0);
    assert_int_equal(r.used, 5);
}

static void test_chunked_multiple(void **state)
{
    (void)state;
    const char *in = "1\r\na\r\nA\r\n0123456789\r\n1f\r\n0123456789abcdefghijklmnopqrstu\r\n"
                     "0000000000000002\r\nzz\r\n000\r\n\r\n";
    struct decoded r = decode(in, 100);
    assert_int_equal(r.rc, HTTP_CHUNKED_DONE);
    assert_int_equal(r.used, strlen(in));
    const char *want = "a0123456789"
                       "0123456789abcdefghijklmnopqrstu"
                       "zz";
    assert_int_equal(r.out_len, strlen(want));
    assert_memory_equal(r.out, want, strlen(want));
}

static void test_chunked_extensions_trailers(void **state)
{
    (void)state;
    const char *in = "3;name=value;flag\r\nabc\r\n2 ; q=\"a;b\"\r\nde\r\n"
                     "0;last\r\nExpires: never\r\nX-Sum:\t12 \r\n\r\n";
    struct decoded r = decode(in, 100);
    assert_int_equal(r.rc, HTTP_CHUNKED_DONE);
    assert_int_equal(r.used, strlen(in));
    assert_int_equal(r.out_len, 5);
    assert_memory_equal(r.out, "abcde", 5);
}

static const char *const chunked_samples[] = {
    "5\r\nhello\r\n0\r\n\r\n",
    "3;name=value\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\nU: w\r\n\r\n",
    "1\r\nx\r\n1\r\ny\r\n1 \t;e\r\nz\r\n0\r\n\r\n",
    "5\r\nhelloX\r\n",
    "5\r\nhello\r\n0\r\nbad\r\n\r\n",
};

static void test_chunked_split_every_byte(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof chunked_samples / sizeof chunked_samples[0]; s++) {
        const char *in = chunked_samples[s];
        size_t n = strlen(in);
        struct decoded whole = decode(in, 1000);
        /* One byte at a time. */
        struct decoded bytes = decode_steps(in, n, 1, 1000);
        assert_int_equal(bytes.rc, whole.rc);
        assert_int_equal(bytes.used, whole.used);
        assert_int_equal(bytes.out_len, whole.out_len);
        assert_memory_equal(bytes.out, whole.out, whole.out_len);
        /* Two pieces, split everywhere. */
        for (size_t k = 1; k < n; k++) {
            struct decoded two = {0};
            struct http_chunked d;
            size_t used, olen;
            http_chunked_init(&d, 1000);
            two.rc = http_chunked_decode(&d, in, k, &used, two.out, &olen);
            two.used = used;
            two.out_len = olen;
            if (two.rc == HTTP_CHUNKED_MORE) {
                assert_int_equal(used, k);
                two.rc = http_chunked_decode(&d, in + k, n - k, &used, two.out + olen, &olen);
                two.used += used;
                two.out_len += olen;
            }
            assert_int_equal(two.rc, whole.rc);
            if (whole.rc == HTTP_CHUNKED_DONE)
                assert_int_equal(two.used, whole.used);
            assert_int_equal(two.out_len, whole.out_len);
            assert_memory_equal(two.out, whole.out, whole.out_len);
        }
    }
}

static void test_chunked_in_place(void **state)
{
    (void)state;
    const char *src = "4\r\nWiki\r\n5;x=y\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nA: b\r\n\r\n";
    size_t n = strlen(src);
    const char *want = "Wikipedia in\r\n\r\nchunks.";
    /* Whole, then in every two-piece split: the payload lands at the buffer's start. */
    for (size_t k = 0; k <= n; k++) {
        char buf[128];
        memcpy(buf, src, n);
        struct http_chunked d;
        size_t used1, used2 = 0, o1, o2 = 0;
        http_chunked_init(&d, 100);
        int rc = http_chunked_decode(&d, buf, k, &used1, buf, &o1);
        if (rc == HTTP_CHUNKED_MORE)
            rc = http_chunked_decode(&d, buf + used1, n - used1, &used2, buf + o1, &o2);
        assert_int_equal(rc, HTTP_CHUNKED_DONE);
        assert_int_equal(used1 + used2, n);
        assert_int_equal(o1 + o2, strlen(want));
        assert_memory_equal(buf, want, strlen(want));
    }
}

static void test_chunked_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\r\n",   /* no size */
        "g\r\n",  /* not hex */
        "-1\r\n", /* signed */
        "+1\r\n",
        " 5\r\nhello\r\n0\r\n\r\n", /* leading space */
        "5 \r\nhello\r\n0\r\n\r\n", /* BWS not followed by ';' */
        "0x5\r\nhello\r\n0\r\n\r\n",
        ";x\r\n",                /* extension without size */
        "5\nhello\r\n0\r\n\r\n", /* bare LF */
        "5\r\rhello\r\n0\r\n\r\n",
        "5;a\nb\r\nhello\r\n0\r\n\r\n", /* LF in an extension */
        "5;a\x01\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloX\r\n0\r\n\r\n", /* no CRLF after the data */
        "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello\r0\r\n\r\n",
        "5\r\nhello0\r\n\r\n",
        "0\r\n\n", /* bad end */
        "0\r\n\r\r",
        "0\r\nA: b\n\r\n",  /* bare LF in a trailer */
        "0\r\nA b\r\n\r\n", /* trailer without a colon */
        "0\r\nA : b\r\n\r\n",
        "0\r\n b\r\n\r\n", /* obs-fold */
        "0\r\n\tb\r\n\r\n",
        "0\r\n: b\r\n\r\n",
        "0\r\nA: b\x7f\r\n\r\n",
        "0\r\nA: b\rc\r\n\r\n",                /* bare CR in a trailer */
        "00000000000000001\r\nx\r\n0\r\n\r\n", /* 17 digits */
        "10000000000000000\r\n",               /* 2^64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct decoded r = decode(bad[i], UINT64_MAX);
        if (r.rc != -400)
            fail_msg("case %zu: got %d", i, r.rc);
        struct decoded b = decode_steps(bad[i], strlen(bad[i]), 1, UINT64_MAX);
        assert_int_equal(b.rc, -400);
    }
    /* 16 digits are fine when the value fits the budget. */
    struct decoded r = decode("0000000000000003\r\nabc\r\n0\r\n\r\n", 10);
    assert_int_equal(r.rc, HTTP_CHUNKED_DONE);
    assert_int_equal(r.out_len, 3);
    r = decode("ffffffffffffffff\r\n", UINT64_MAX);
    assert_int_equal(r.rc, HTTP_CHUNKED_MORE);
}

static void test_chunked_long_lines(void **state)
{
    (void)state;
    static char buf[16384];
    /* Extension line: 4096 bytes accepted, 4097 refused. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t line = 4096 + (size_t)extra;
        memset(buf, 'e', line);
        memcpy(buf, "1;", 2);
        memcpy(buf + line - 2, "\r\n", 2);
        strcpy(buf + line, "x\r\n0\r\n\r\n");
        struct decoded r = decode(buf, 100);
        assert_int_equal(r.rc, extra ? -400 : HTTP_CHUNKED_DONE);
    }
    /* Trailer line: the same bound. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t line = 4096 + (size_t)extra;
        memcpy(buf, "0\r\n", 3);
        memset(buf + 3, 'v', line);
        memcpy(buf + 3, "T:", 2);
        memcpy(buf + 3 + line - 2, "\r\n\r\n", 5);
        struct decoded r = decode(buf, 100);
        assert_int_equal(r.rc, extra ? -400 : HTTP_CHUNKED_DONE);
    }
    /* Trailer count: HTTP_MAX_HEADERS lines, not one more. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = (size_t)sprintf(buf, "0\r\n");
        for (int i = 0; i < HTTP_MAX_HEADERS + extra; i++)
            n += (size_t)sprintf(buf + n, "T%d: v\r\n", i);
        sprintf(buf + n, "\r\n");
        struct decoded r = decode(buf, 100);
        assert_int_equal(r.rc, extra ? -400 : HTTP_CHUNKED_DONE);
    }
}

static void test_chunked_too_large(void **state)
{
    (void)state;
    struct decoded r = decode("5\r\nhello\r\n0\r\n\r\n", 5);
    assert_int_equal(r.rc, HTTP_CHUNKED_DONE);
    r = decode("5\r\nhello\r\n0\r\n\r\n", 4);
    assert_int_equal(r.rc, -413);
    /* Refused at the size line, before any of the chunk's data. */
    assert_int_equal(r.used, 3);
    assert_int_equal(r.out_len, 0);
    r = decode("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 5);
    assert_int_equal(r.rc, -413);
    assert_int_equal(r.out_len, 3);
    r = decode("ffffffffffffffff\r\n", UINT64_MAX - 1);
    assert_int_equal(r.rc, -413);
    r = decode("1\r\na\r\nffffffffffffffff\r\n", UINT64_MAX);
    assert_int_equal(r.rc, -413);
    r = decode("1\r\na\r\n0\r\n\r\n", 0);
    assert_int_equal(r.rc, -413);
    r = decode("0\r\n\r\n", 0);
    assert_int_equal(r.rc, HTTP_CHUNKED_DONE);
}

static void test_chunked_pipelined_rest(void **state)
{
    (void)state;
    const char *in = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http_chunked d;
    char out[64];
    size_t used, olen;
    http_chunked_init(&d, 100);
    assert_int_equal(http_chunked_decode(&d, in, strlen(in), &used, out, &olen), HTTP_CHUNKED_DONE);
    assert_int_equal(used, 13);
    assert_int_equal(olen, 3);
    struct http_request r;
    assert_true(parse(in + used, &r) > 0);
    /* Done is sticky and consumes nothing more. */
    assert_int_equal(http_chunked_decode(&d, in + used, 5, &used, out, &olen), HTTP_CHUNKED_DONE);
    assert_int_equal(used, 0);
    assert_int_equal(olen, 0);
}

static void test_chunked_errors_sticky(void **state)
{
    (void)state;
    struct http_chunked d;
    char out[16];
    size_t used, olen;
    http_chunked_init(&d, 100);
    assert_int_equal(http_chunked_decode(&d, "z", 1, &used, out, &olen), -400);
    assert_int_equal(http_chunked_decode(&d, "5\r\n", 3, &used, out, &olen), -400);
    assert_int_equal(used, 0);
    http_chunked_init(&d, 1);
    assert_int_equal(http_chunked_decode(&d, "5\r\n", 3, &used, out, &olen), -413);
    assert_int_equal(http_chunked_decode(&d, "", 0, &used, out, &olen), -413);
    http_chunked_init(&d, 1);
    assert_int_equal(http_chunked_decode(&d, "", 0, &used, out, &olen), HTTP_CHUNKED_MORE);
    assert_int_equal(used, 0);
    assert_int_equal(olen, 0);
    assert_int_equal(d.total, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_origin_form),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_authority_form),
        cmocka_unit_test(test_asterisk_form),
        cmocka_unit_test(test_target_bytes),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_ows_and_empty_values),
        cmocka_unit_test(test_header_lookup),
        cmocka_unit_test(test_slice_compare),
        cmocka_unit_test(test_many_headers),
        cmocka_unit_test(test_header_bytes),
        cmocka_unit_test(test_long_value_ctl),
        cmocka_unit_test(test_header_syntax),
        cmocka_unit_test(test_bare_lf_early),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_websocket_upgrade),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_split_every_byte),
        cmocka_unit_test(test_prev_len_larger),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test_setup_teardown(test_no_overread, guard_setup, guard_teardown),
        cmocka_unit_test(test_chunked_simple),
        cmocka_unit_test(test_chunked_multiple),
        cmocka_unit_test(test_chunked_extensions_trailers),
        cmocka_unit_test(test_chunked_split_every_byte),
        cmocka_unit_test(test_chunked_in_place),
        cmocka_unit_test(test_chunked_bad),
        cmocka_unit_test(test_chunked_long_lines),
        cmocka_unit_test(test_chunked_too_large),
        cmocka_unit_test(test_chunked_pipelined_rest),
        cmocka_unit_test(test_chunked_errors_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
