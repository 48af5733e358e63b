/* libFuzzer target for the chunked decoder. Checks, for every input: results are documented
 * codes, payload never outgrows the input consumed or max_body, "more" means everything was
 * consumed, and decoding whole, in two pieces, one byte at a time and in place all agree.
 *
 * Input layout: byte 0 picks max_body, byte 1 the split point, the rest is the body. */
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

struct result {
    int rc;
    size_t used;
    size_t out_len;
};

/* Feeds in[0..n) in pieces of at most step bytes; the payload goes to out (or in place). */
static struct result run(const char *in, size_t n, size_t step, uint64_t max_body, char *out)
{
    struct http_chunked d;
    struct result res = {HTTP_CHUNKED_MORE, 0, 0};
    http_chunked_init(&d, max_body);
    do {
        size_t piece = n - res.used < step ? n - res.used : step;
        size_t used, olen;
        res.rc = http_chunked_decode(&d, in + res.used, piece, &used, out + res.out_len, &olen);
        check(used <= piece, "used within the input");
        check(olen <= used, "payload no longer than the input consumed");
        check(res.rc == HTTP_CHUNKED_MORE || res.rc == HTTP_CHUNKED_DONE || res.rc == -400 ||
                  res.rc == -413,
              "documented result");
        if (res.rc == HTTP_CHUNKED_MORE)
            check(used == piece, "more consumes everything");
        res.used += used;
        res.out_len += olen;
        check(d.total == res.out_len, "total counts the payload");
        check(d.total <= max_body, "payload within max_body");
    } while (res.rc == HTTP_CHUNKED_MORE && res.used < n);
    return res;
}

static void check_agree(struct result a, const char *aout, struct result b, const char *bout)
{
    check(a.rc == b.rc, "same result");
    if (a.rc != -400 && a.rc != -413)
        check(a.used == b.used, "same bytes consumed");
    check(a.out_len == b.out_len, "same payload length");
    check(memcmp(aout, bout, a.out_len) == 0, "same payload");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint64_t max_body = data[0] == 0xff ? UINT64_MAX : (uint64_t)data[0] * 8;
    const char *in = (const char *)data + 2;
    size_t n = size - 2;
    /* Exactly as large as the input: a payload longer than its input would overflow. */
    char *out1 = malloc(n ? n : 1), *out2 = malloc(n ? n : 1), *copy = malloc(n ? n : 1);
    if (!out1 || !out2 || !copy)
        abort();

    struct result whole = run(in, n, SIZE_MAX, max_body, out1);
    if (whole.rc == HTTP_CHUNKED_DONE)
        check(whole.used >= 5, "the shortest body is 0 CRLF CRLF");

    struct result bytes = run(in, n, 1, max_body, out2);
    check_agree(whole, out1, bytes, out2);

    /* Two pieces, split at the point byte 1 picks. */
    size_t k = n ? data[1] % (n + 1) : 0;
    struct http_chunked d;
    struct result two = {0, 0, 0};
    size_t used, olen;
    http_chunked_init(&d, max_body);
    two.rc = http_chunked_decode(&d, in, k, &used, out2, &olen);
    two.used = used;
    two.out_len = olen;
    if (two.rc == HTTP_CHUNKED_MORE) {
        two.rc = http_chunked_decode(&d, in + k, n - k, &used, out2 + olen, &olen);
        two.used += used;
        two.out_len += olen;
    }
    check_agree(whole, out1, two, out2);

    /* In place. */
    memcpy(copy, in, n);
    struct result inplace = run(copy, n, SIZE_MAX, max_body, copy);
    check_agree(whole, out1, inplace, copy);

    free(out1);
    free(out2);
    free(copy);
    return 0;
}
