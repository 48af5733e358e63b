/* libFuzzer target for ws_utf8. Besides sanitizer reports, it checks that the validator agrees
 * with a reference written from another angle (the rows of Unicode table 3-7, "well-formed UTF-8
 * byte sequences", matched position by position), on the whole input and on the prefixes at
 * random cuts; that feeding in random pieces or one byte at a time gives the result of one call;
 * that the first byte reported invalid is the first byte after which no completion exists; and
 * that INVALID is sticky.
 *
 * Input layout: byte 0 seeds the choice of cuts, the rest is the text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/utf8.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

/* Unicode 15, table 3-7: each well-formed sequence, its lead byte range and the range of each
 * following byte. */
static const struct {
    uint8_t len;
    uint8_t lo[4], hi[4];
} table37[] = {
    {1, {0x00}, {0x7f}},
    {2, {0xc2, 0x80}, {0xdf, 0xbf}},
    {3, {0xe0, 0xa0, 0x80}, {0xe0, 0xbf, 0xbf}},
    {3, {0xe1, 0x80, 0x80}, {0xec, 0xbf, 0xbf}},
    {3, {0xed, 0x80, 0x80}, {0xed, 0x9f, 0xbf}},
    {3, {0xee, 0x80, 0x80}, {0xef, 0xbf, 0xbf}},
    {4, {0xf0, 0x90, 0x80, 0x80}, {0xf0, 0xbf, 0xbf, 0xbf}},
    {4, {0xf1, 0x80, 0x80, 0x80}, {0xf3, 0xbf, 0xbf, 0xbf}},
    {4, {0xf4, 0x80, 0x80, 0x80}, {0xf4, 0x8f, 0xbf, 0xbf}},
};

/* A prefix is PARTIAL when the bytes after the last complete sequence match the start of a row:
 * the rest of that row can complete it. */
static int ref_validate(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t row = 0, rows = sizeof table37 / sizeof table37[0];
        while (row < rows && !(p[i] >= table37[row].lo[0] && p[i] <= table37[row].hi[0]))
            row++;
        if (row == rows)
            return WS_UTF8_INVALID;
        for (size_t k = 1; k < table37[row].len; k++) {
            if (i + k == n)
                return WS_UTF8_PARTIAL;
            if (p[i + k] < table37[row].lo[k] || p[i + k] > table37[row].hi[k])
                return WS_UTF8_INVALID;
        }
        i += table37[row].len;
    }
    return WS_UTF8_OK;
}

static uint32_t rng_next(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t rng = data[0] * 2654435761u ^ (uint32_t)size;
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    struct ws_utf8 u;
    ws_utf8_init(&u);
    int whole = ws_utf8_feed(&u, p, n);
    check(whole == WS_UTF8_OK || whole == WS_UTF8_PARTIAL || whole == WS_UTF8_INVALID,
          "documented result");
    check(whole == ref_validate(p, n), "whole input agrees with table 3-7");
    check(ws_utf8_valid(p, n) == (whole == WS_UTF8_OK), "ws_utf8_valid agrees");
    check(ws_utf8_feed(&u, NULL, 0) == whole, "an empty feed restates the result");

    /* Random pieces (a few long ones, many short ones), each intermediate result checked
     * against the reference on the prefix so far. */
    ws_utf8_init(&u);
    size_t at = 0;
    int r = WS_UTF8_OK;
    while (at < n) {
        uint32_t x = rng_next(&rng);
        size_t k = x & 1 ? 1 + (x >> 1) % 8 : (x >> 1) % (n - at + 1);
        if (k > n - at)
            k = n - at;
        r = ws_utf8_feed(&u, p + at, k);
        at += k;
        /* Quadratic: only for inputs small enough to keep the fuzzer fast. */
        if (n <= 512 || at == n)
            check(r == ref_validate(p, at), "each piece agrees with the reference on the prefix");
    }
    check(r == whole, "pieces agree with one call");

    /* One byte at a time: INVALID appears at the first byte with no possible completion and
     * stays. */
    ws_utf8_init(&u);
    int seen_invalid = 0;
    for (size_t i = 0; i < n; i++) {
        r = ws_utf8_feed(&u, p + i, 1);
        if (seen_invalid) {
            check(r == WS_UTF8_INVALID, "invalid is sticky");
        } else if (r == WS_UTF8_INVALID) {
            seen_invalid = 1;
            check(ref_validate(p, i + 1) == WS_UTF8_INVALID, "refused byte is invalid");
            check(ref_validate(p, i) != WS_UTF8_INVALID, "refused at the first invalid byte");
        }
    }
    check(r == whole || n == 0, "bytes one by one agree with one call");
    return 0;
}
