/* http_parser: weft's HTTP/1.1 request-head parser and chunked-body decoder.
 *
 * Pure: bytes in, results out; no I/O, no allocation, no globals. Header names and values are
 * slices into the caller's buffer (nothing is copied), so the buffer must outlive the request.
 * Incremental: the caller passes everything received so far and the length it passed last time,
 * and the parser does not rescan what it has already seen for the end of the head. */
#ifndef WEFT_HTTP_PARSER_H
#define WEFT_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

struct http_slice {
    const char *p;
    size_t n;
};

enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_PATCH,
    HTTP_CONNECT,
    HTTP_TRACE,
    HTTP_OTHER
};

struct http_header {
    struct http_slice name, value; /* value without leading/trailing spaces and tabs */
};

struct http_request {
    enum http_method method;
    struct http_slice method_name;
    struct http_slice target; /* as sent: "/a/b?x=1" */
    struct http_slice path;   /* target up to '?' */
    struct http_slice query;  /* after '?', empty when none */
    int minor_version;        /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    size_t header_count;
    struct http_header headers[HTTP_MAX_HEADERS];

    /* Derived from the headers while parsing. */
    int64_t content_length;  /* -1 when absent */
    unsigned chunked : 1;    /* Transfer-Encoding: chunked (the final coding) */
    unsigned keep_alive : 1; /* 1.1 without "Connection: close", or 1.0 with "keep-alive" */
    unsigned expect_continue : 1;
    unsigned upgrade_websocket : 1; /* Upgrade: websocket and Connection: upgrade */
    struct http_slice host;         /* empty when absent */
    size_t head_len;                /* bytes of the head including the final CRLFCRLF */
};

/* Results of http_parse_request besides a positive head length. */
#define HTTP_PARSE_INCOMPLETE 0

/* Parses one request head from buf[0..len).
 * prev_len is the len of the previous call for this same request (0 the first time); the search
 * for the end of the head resumes there.
 * Returns the head's length (> 0) when complete; HTTP_PARSE_INCOMPLETE when more bytes are needed
 * (and the head is still within max_head); or a negative HTTP status for a request that must be
 * refused and the connection closed:
 *   -400 malformed: bad request line, bad header syntax, control characters, obs-fold,
 *        Content-Length with Transfer-Encoding, conflicting or invalid Content-Length,
 *        a Transfer-Encoding other than chunked last, missing Host on HTTP/1.1, too many headers
 *   -414 the request target alone exceeds max_head
 *   -431 the head exceeds max_head
 *   -505 an HTTP version other than 1.0 or 1.1
 *   -501 a Transfer-Encoding weft does not implement (e.g. gzip, chunked not last) */
int http_parse_request(const char *buf, size_t len, size_t prev_len, size_t max_head,
                       struct http_request *req);

/* Case-insensitive header lookup; returns NULL when absent. */
const struct http_slice *http_request_header(const struct http_request *req, const char *name);

/* Compares a slice with a NUL-terminated string, exactly or ignoring ASCII case. */
int http_slice_eq(struct http_slice s, const char *str);
int http_slice_ieq(struct http_slice s, const char *str);

/* Chunked transfer decoding, resumable across reads, in place allowed (out may equal in). */
struct http_chunked {
    int state;
    uint64_t remaining; /* bytes left in the current chunk */
    uint64_t total;     /* payload bytes so far */
    uint64_t max_body;
    unsigned size_digits; /* hex digits seen in the current size line */
    unsigned line_len;    /* bytes seen in the current size/extension/trailer line */
};

#define HTTP_CHUNKED_MORE 0
#define HTTP_CHUNKED_DONE 1

void http_chunked_init(struct http_chunked *d, uint64_t max_body);

/* Consumes in[0..len): writes the payload bytes found to out (out may be in: the payload is never
 * longer than the input it came from), sets *in_used to the input bytes consumed and *out_len to
 * the payload bytes written. Returns HTTP_CHUNKED_DONE when the last chunk and its trailers are
 * consumed (*in_used stops right after them: the rest is the next pipelined request),
 * HTTP_CHUNKED_MORE when it needs more input, -400 for a malformed stream (bad size, missing
 * CRLF, size overflow, over-long line), -413 when the payload exceeds max_body. */
int http_chunked_decode(struct http_chunked *d, const char *in, size_t len, size_t *in_used,
                        char *out, size_t *out_len);

#endif
