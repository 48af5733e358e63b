/* static_path: the pure parts of serving static files (http/static.c): URL path to file name,
 * Range, entity-tag lists, HTTP dates, media types. No I/O, no allocation, no globals, so each
 * is unit-tested and fuzzable on its own. */
#ifndef WEFT_HTTP_STATIC_PATH_H
#define WEFT_HTTP_STATIC_PATH_H

#include <stddef.h>
#include <stdint.h>

#define STATIC_PATH_MAX 4096 /* decoded file name, NUL included */

/* Turns the URL path after "/static/" (in[0..n), still percent-encoded) into a relative file
 * name in out: decoded exactly once, empty segments dropped, segments joined by '/', no leading
 * or trailing '/'. Returns the name's length (> 0), or a negative HTTP status:
 *   -400 a bad escape, a NUL or another control character (raw or decoded)
 *   -404 a "." or ".." segment after decoding, a backslash, or an empty name
 *   -414 a name longer than outlen - 1 */
int static_path_clean(const char *in, size_t n, char *out, size_t outlen);

/* A Range header's outcome for a representation of `size` bytes. */
enum static_range_result {
    STATIC_RANGE_FULL,          /* no usable single range: send the whole file (200) */
    STATIC_RANGE_PART,          /* one satisfiable range in *off, *len (206) */
    STATIC_RANGE_UNSATISFIABLE, /* 416, with a Content-Range that gives the size */
};

/* Parses a Range value (RFC 9110 14.1.2): "bytes=a-b", "bytes=a-", "bytes=-n". Syntax errors,
 * other units, several ranges and empty files give STATIC_RANGE_FULL. */
enum static_range_result static_range_parse(const char *v, size_t n, uint64_t size, uint64_t *off,
                                            uint64_t *len);

/* Whether an entity-tag list (If-None-Match, If-Range: `*` or `"x", W/"y"`) holds a tag equal to
 * etag (a quoted tag, as sent in ETag). strong: W/ tags never match (strong comparison); else W/
 * is ignored (weak comparison). A malformed list matches nothing past the error. */
int static_etag_match(const char *list, size_t n, const char *etag, int strong);

/* An HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms) -> seconds since the
 * epoch; -1 when not a valid date. */
int64_t static_http_date_parse(const char *s, size_t n);

/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into out (>= 30 bytes). */
void static_http_date_format(int64_t t, char *out);

/* The Content-Type for a file name, from its extension (case-insensitive). */
const char *static_content_type(const char *name, size_t n);

#endif
