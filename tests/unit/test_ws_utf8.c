/* Unit tests for ws/utf8: Markus Kuhn's UTF-8 decoder stress test categories (valid boundary
 * cases, unexpected continuations, lonely and truncated lead bytes, impossible bytes, overlongs,
 * surrogates, 5/6-byte forms, code points above U+10FFFF), each fed whole, at every split and one
 * byte at a time with the byte that must fail pinned; exhaustive short sequences and random
 * inputs compared with a textbook decoder; the ASCII fast path at every length and offset, with
 * the input against a PROT_NONE page so an over-read faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "guard_page.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ws/utf8.h"

/* ---- the reference: decode code points the textbook way --------------------------------- */

static int scalar_ok(uint32_t cp, int len)
{
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    return cp >= min_for_len[len] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

/* OK, PARTIAL or INVALID for p[0..n). A truncated last sequence is PARTIAL when some
 * continuation bytes complete it into a valid scalar value: the values it can still become form
 * one interval, and the invalid values form three intervals (overlong, surrogates, above
 * U+10FFFF) no interval of completions straddles, so trying its two ends is enough. */
static int ref_validate(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        int len;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xe0) == 0xc0) {
            len = 2, cp = b & 0x1f;
        } else if ((b & 0xf0) == 0xe0) {
            len = 3, cp = b & 0x0f;
        } else if ((b & 0xf8) == 0xf0) {
            len = 4, cp = b & 0x07;
        } else {
            return WS_UTF8_INVALID; /* a continuation byte, or a 5/6-byte or impossible lead */
        }
        size_t have = n - i < (size_t)len ? n - i : (size_t)len;
        for (size_t k = 1; k < have; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return WS_UTF8_INVALID;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (have < (size_t)len) {
            unsigned missing_bits = 6 * (unsigned)(len - (int)have);
            uint32_t lo = cp << missing_bits, hi = lo | ((1u << missing_bits) - 1);
            return scalar_ok(lo, len) || scalar_ok(hi, len) ? WS_UTF8_PARTIAL : WS_UTF8_INVALID;
        }
        if (!scalar_ok(cp, len))
            return WS_UTF8_INVALID;
        i += (size_t)len;
    }
    return WS_UTF8_OK;
}

static int feed_whole(const uint8_t *p, size_t n)
{
    struct ws_utf8 u;
    ws_utf8_init(&u);
    return ws_utf8_feed(&u, p, n);
}

/* Feeds p in pieces cut at the given offsets (ascending, each <= n). */
static int feed_cut(const uint8_t *p, size_t n, const size_t *cuts, size_t ncuts)
{
    struct ws_utf8 u;
    size_t at = 0;
    int r = WS_UTF8_OK;
    ws_utf8_init(&u);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        r = ws_utf8_feed(&u, p + at, end - at);
        at = end;
    }
    return r;
}

/* Every split in two and three, and one byte at a time, must agree with the reference on the
 * whole input and, byte by byte, on every prefix. */
static void check_all_splits(const uint8_t *p, size_t n)
{
    int want = ref_validate(p, n);
    assert_int_equal(feed_whole(p, n), want);
    assert_int_equal(ws_utf8_valid(p, n), want == WS_UTF8_OK);
    for (size_t a = 0; a <= n; a++) {
        assert_int_equal(feed_cut(p, n, &a, 1), want);
        for (size_t b = a; b <= n && n <= 24; b++) {
            size_t cuts[2] = {a, b};
            assert_int_equal(feed_cut(p, n, cuts, 2), want);
        }
    }
    struct ws_utf8 u;
    ws_utf8_init(&u);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(ws_utf8_feed(&u, p + k, 1), ref_validate(p, k + 1));
}

/* ---- Markus Kuhn's categories ------------------------------------------------------------ */

struct kcase {
    const char *name;
    const uint8_t *p;
    size_t n;
    int want;       /* result for the whole input */
    size_t fail_at; /* the prefix length at which INVALID must first be reported; 0 if never */
};

#define OK WS_UTF8_OK
#define PART WS_UTF8_PARTIAL
#define BAD WS_UTF8_INVALID
/* clang-format off */
#define K(name, s, want, at) {name, (const uint8_t *)(s), sizeof(s) - 1, want, at}

static const struct kcase kuhn[] = {
    /* 1: correct text */
    K("1 kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", OK, 0),
    /* 2.1: first code point of each length */
    K("2.1.1 U+0000", "\x00", OK, 0),
    K("2.1.2 U+0080", "\xc2\x80", OK, 0),
    K("2.1.3 U+0800", "\xe0\xa0\x80", OK, 0),
    K("2.1.4 U+10000", "\xf0\x90\x80\x80", OK, 0),
    K("2.1.5 5-byte U+200000", "\xf8\x88\x80\x80\x80", BAD, 1),
    K("2.1.6 6-byte U+4000000", "\xfc\x84\x80\x80\x80\x80", BAD, 1),
    /* 2.2: last code point of each length */
    K("2.2.1 U+007F", "\x7f", OK, 0),
    K("2.2.2 U+07FF", "\xdf\xbf", OK, 0),
    K("2.2.3 U+FFFF", "\xef\xbf\xbf", OK, 0),
    K("2.2.4 U+1FFFFF", "\xf7\xbf\xbf\xbf", BAD, 1),
    K("2.2.5 5-byte U+3FFFFFF", "\xfb\xbf\xbf\xbf\xbf", BAD, 1),
    K("2.2.6 6-byte U+7FFFFFFF", "\xfd\xbf\xbf\xbf\xbf\xbf", BAD, 1),
    /* 2.3: other boundaries */
    K("2.3.1 U+D7FF", "\xed\x9f\xbf", OK, 0),
    K("2.3.2 U+E000", "\xee\x80\x80", OK, 0),
    K("2.3.3 U+FFFD", "\xef\xbf\xbd", OK, 0),
    K("2.3.4 U+10FFFF", "\xf4\x8f\xbf\xbf", OK, 0),
    K("2.3.5 U+110000", "\xf4\x90\x80\x80", BAD, 2),
    /* 3.1: unexpected continuation bytes */
    K("3.1.1 first continuation", "\x80", BAD, 1),
    K("3.1.2 last continuation", "\xbf", BAD, 1),
    K("3.1.3 two continuations", "a\x80\xbf", BAD, 2),
    K("3.1.4 after a complete sequence", "\xc2\x80\x80", BAD, 3),
    K("3.1.5 after a 4-byte sequence", "\xf0\x90\x80\x80\xbf", BAD, 5),
    /* 3.2: lonely lead bytes followed by a space */
    K("3.2.1 2-byte lead, space", "\xc2 ", BAD, 2),
    K("3.2.1 last 2-byte lead, space", "\xdf ", BAD, 2),
    K("3.2.2 3-byte lead, space", "\xe1 ", BAD, 2),
    K("3.2.2 3-byte lead, 2 bytes, space", "\xe1\x80 ", BAD, 3),
    K("3.2.3 4-byte lead, space", "\xf1 ", BAD, 2),
    K("3.2.3 4-byte lead, 3 bytes, space", "\xf1\x80\x80 ", BAD, 4),
    K("3.2.4 5-byte lead, space", "\xf8 ", BAD, 1),
    K("3.2.5 6-byte lead, space", "\xfc ", BAD, 1),
    K("3.2 lead then lead", "\xe1\xc2\x80", BAD, 2),
    /* 3.3: the last continuation byte missing (at the end of the input) */
    K("3.3.1 overlong 2-byte, truncated", "\xc0", BAD, 1),
    K("3.3.2 overlong 3-byte, truncated", "\xe0\x80", BAD, 2),
    K("3.3.3 overlong 4-byte, truncated", "\xf0\x80\x80", BAD, 2),
    K("3.3.6 U+07FF truncated", "\xdf", PART, 0),
    K("3.3.7 U+FFFF truncated", "\xef\xbf", PART, 0),
    K("3.3.8 U+1FFFFF truncated", "\xf7\xbf\xbf", BAD, 1),
    K("3.3 U+10FFFF truncated once", "\xf4\x8f\xbf", PART, 0),
    K("3.3 U+10000 truncated twice", "\xf0\x90", PART, 0),
    K("3.3 U+E000 lead only", "\xee", PART, 0),
    K("3.3 ED lead only", "\xed", PART, 0),
    K("3.3 F4 lead only", "\xf4", PART, 0),
    K("3.3 E0 lead only", "\xe0", PART, 0),
    K("3.3 F0 lead only", "\xf0", PART, 0),
    K("3.3 truncated, then ASCII", "\xe2\x82" "a", BAD, 3),
    /* 3.4: concatenated truncated sequences */
    K("3.4 concatenation", "\xdf\xef\xbf\xf4\x8f\xbf", BAD, 2),
    /* 3.5: impossible bytes */
    K("3.5.1 FE", "\xfe", BAD, 1),
    K("3.5.2 FF", "\xff", BAD, 1),
    K("3.5.3 FE FE FF FF", "\xfe\xfe\xff\xff", BAD, 1),
    K("3.5 F5", "\xf5\x80\x80\x80", BAD, 1),
    /* 4.1: overlong '/' */
    K("4.1.1 C0 AF", "\xc0\xaf", BAD, 1),
    K("4.1.2 E0 80 AF", "\xe0\x80\xaf", BAD, 2),
    K("4.1.3 F0 80 80 AF", "\xf0\x80\x80\xaf", BAD, 2),
    K("4.1.4 5-byte", "\xf8\x80\x80\x80\xaf", BAD, 1),
    K("4.1.5 6-byte", "\xfc\x80\x80\x80\x80\xaf", BAD, 1),
    /* 4.2: the largest overlongs */
    K("4.2.1 C1 BF", "\xc1\xbf", BAD, 1),
    K("4.2.2 E0 9F BF", "\xe0\x9f\xbf", BAD, 2),
    K("4.2.3 F0 8F BF BF", "\xf0\x8f\xbf\xbf", BAD, 2),
    K("4.2.4 5-byte", "\xf8\x87\xbf\xbf\xbf", BAD, 1),
    K("4.2.5 6-byte", "\xfc\x83\xbf\xbf\xbf\xbf", BAD, 1),
    /* 4.3: overlong NUL */
    K("4.3.1 C0 80", "\xc0\x80", BAD, 1),
    K("4.3.2 E0 80 80", "\xe0\x80\x80", BAD, 2),
    K("4.3.3 F0 80 80 80", "\xf0\x80\x80\x80", BAD, 2),
    K("4.3.4 5-byte", "\xf8\x80\x80\x80\x80", BAD, 1),
    K("4.3.5 6-byte", "\xfc\x80\x80\x80\x80\x80", BAD, 1),
    /* 5.1: single surrogates */
    K("5.1.1 U+D800", "\xed\xa0\x80", BAD, 2),
    K("5.1.2 U+DB7F", "\xed\xad\xbf", BAD, 2),
    K("5.1.3 U+DB80", "\xed\xae\x80", BAD, 2),
    K("5.1.4 U+DBFF", "\xed\xaf\xbf", BAD, 2),
    K("5.1.5 U+DC00", "\xed\xb0\x80", BAD, 2),
    K("5.1.6 U+DF80", "\xed\xbe\x80", BAD, 2),
    K("5.1.7 U+DFFF", "\xed\xbf\xbf", BAD, 2),
    /* 5.2: paired surrogates (CESU-8) */
    K("5.2.1 D800 DC00", "\xed\xa0\x80\xed\xb0\x80", BAD, 2),
    K("5.2.8 DBFF DFFF", "\xed\xaf\xbf\xed\xbf\xbf", BAD, 2),
    /* 5.3: noncharacters are valid scalar values */
    K("5.3.1 U+FFFE", "\xef\xbf\xbe", OK, 0),
    K("5.3.2 U+FFFF", "\xef\xbf\xbf", OK, 0),
    K("5.3 U+FDD0", "\xef\xb7\x90", OK, 0),
    K("5.3 U+10FFFE", "\xf4\x8f\xbf\xbe", OK, 0),
    /* Autobahn 6.x style: valid text then a fault far into it */
    K("valid then surrogate", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1"
                              "-UTF-8!!\xed\xa0\x80", BAD, 31),
};
/* clang-format on */

static void test_kuhn_whole_and_early(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kuhn / sizeof kuhn[0]; i++) {
        const struct kcase *c = &kuhn[i];
        int ok = feed_whole(c->p, c->n) == c->want && ref_validate(c->p, c->n) == c->want;
        /* The first failing byte is pinned by hand, independently of the reference. */
        struct ws_utf8 u;
        ws_utf8_init(&u);
        for (size_t k = 1; k <= c->n; k++) {
            int r = ws_utf8_feed(&u, c->p + k - 1, 1);
            ok &= (r == WS_UTF8_INVALID) == (c->fail_at != 0 && k >= c->fail_at);
        }
        if (!ok)
            fail_msg("case %s", c->name);
    }
}

static void test_kuhn_splits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kuhn / sizeof kuhn[0]; i++)
        check_all_splits(kuhn[i].p, kuhn[i].n);
}

/* The same cases after ASCII that the fast path skips, at every alignment. */
static void test_kuhn_after_ascii(void **state)
{
    (void)state;
    uint8_t buf[128];
    for (size_t i = 0; i < sizeof kuhn / sizeof kuhn[0]; i++) {
        for (size_t pad = 0; pad <= 40; pad++) {
            memset(buf, 'x', pad);
            memcpy(buf + pad, kuhn[i].p, kuhn[i].n);
            assert_int_equal(feed_whole(buf, pad + kuhn[i].n), kuhn[i].want);
            size_t cut = pad;
            assert_int_equal(feed_cut(buf, pad + kuhn[i].n, &cut, 1), kuhn[i].want);
        }
    }
}

/* 64 continuation bytes alone, 2-byte leads C2..DF before a space, every other lead alone. */
static void test_every_single_byte(void **state)
{
    (void)state;
    for (unsigned b = 0; b < 256; b++) {
        uint8_t one = (uint8_t)b, two[2] = {(uint8_t)b, ' '};
        int want = b < 0x80 ? OK : (b >= 0xc2 && b <= 0xf4) ? PART : BAD;
        assert_int_equal(feed_whole(&one, 1), want);
        assert_int_equal(feed_whole(two, 2), b < 0x80 ? OK : BAD);
    }
}

/* ---- exhaustive short inputs and random inputs against the reference --------------------- */

static void test_exhaustive_two_and_three(void **state)
{
    (void)state;
    uint8_t p[3];
    for (unsigned a = 0; a < 256; a++) {
        p[0] = (uint8_t)a;
        for (unsigned b = 0; b < 256; b++) {
            p[1] = (uint8_t)b;
            assert_int_equal(feed_whole(p, 2), ref_validate(p, 2));
            if (a < 0xc0)
                continue;
            for (unsigned c = 0; c < 256; c++) {
                p[2] = (uint8_t)c;
                assert_int_equal(feed_whole(p, 3), ref_validate(p, 3));
            }
        }
    }
}

/* Four-byte inputs: every lead from E0 and every second byte, with third and fourth bytes from
 * the edges of each byte range. */
static void test_four_byte_edges(void **state)
{
    (void)state;
    static const uint8_t edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
                                   0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    uint8_t p[4];
    for (unsigned a = 0xe0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t c = 0; c < sizeof edge; c++)
                for (size_t d = 0; d < sizeof edge; d++) {
                    p[0] = (uint8_t)a, p[1] = (uint8_t)b, p[2] = edge[c], p[3] = edge[d];
                    assert_int_equal(feed_whole(p, 4), ref_validate(p, 4));
                }
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Appends one piece: ASCII, a random byte, or the encoding of a code point drawn near the
 * interesting boundaries. Noisy pieces may be random bytes, invalid code points, overlong or cut
 * short; clean ones are valid, except that cut = 1 asks for a valid sequence cut short. */
static size_t gen_piece(uint64_t *rng, uint8_t *out, int noisy, int cut)
{
    static const uint32_t near[] = {0x0,    0x7f,    0x80,     0x7ff,    0x800,
                                    0xd7ff, 0xd800,  0xdfff,   0xe000,   0xfffd,
                                    0xffff, 0x10000, 0x10ffff, 0x110000, 0x1fffff};
    uint64_t r = rng_next(rng);
    unsigned kind = cut ? 5 : r % 6;
    if (kind < 2 || (kind == 2 && !noisy)) {
        out[0] = (uint8_t)(0x20 + (r >> 8) % 0x5f);
        return 1;
    }
    if (kind == 2) {
        out[0] = (uint8_t)(r >> 8);
        return 1;
    }
    uint32_t cp = (r >> 8) & 1 ? near[(r >> 9) % (sizeof near / sizeof near[0])]
                               : (uint32_t)((r >> 16) % 0x120000);
    cp += (uint32_t)((r >> 40) % 3) - 1;
    if (!noisy && (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)))
        cp = 0x20ac;
    if (cut && cp < 0x80)
        cp = 0xe9;
    /* Encode with the natural length, or deliberately overlong. */
    int len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (noisy && (r >> 44) % 16 == 0 && len < 4)
        len++;
    if (len == 1) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    static const uint8_t lead[5] = {0, 0, 0xc0, 0xe0, 0xf0};
    out[0] = (uint8_t)(lead[len] | (cp >> (6 * (len - 1))));
    for (int k = 1; k < len; k++)
        out[k] = (uint8_t)(0x80 | ((cp >> (6 * (len - 1 - k))) & 0x3f));
    if (cut || (noisy && (r >> 48) % 8 == 0))
        return (size_t)(1 + (r >> 52) % (unsigned)(len - 1));
    return (size_t)len;
}

static void test_random_vs_reference(void **state)
{
    (void)state;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    uint8_t buf[256];
    size_t counts[3] = {0, 0, 0};
    for (int iter = 0; iter < 30000; iter++) {
        /* A third clean, a third clean but cut short at the end, a third noisy. */
        unsigned mode = iter % 3;
        size_t n = 0, target = rng_next(&rng) % 200;
        while (n < target)
            n += gen_piece(&rng, buf + n, mode == 2, 0);
        if (mode == 1)
            n += gen_piece(&rng, buf + n, 0, 1);
        int want = ref_validate(buf, n);
        counts[want + 1]++;
        assert_int_equal(feed_whole(buf, n), want);
        size_t cuts[4];
        for (size_t k = 0; k < 4; k++)
            cuts[k] = n ? rng_next(&rng) % (n + 1) : 0;
        for (size_t a = 0; a < 4; a++) /* sort the cuts */
            for (size_t b = a + 1; b < 4; b++)
                if (cuts[b] < cuts[a]) {
                    size_t t = cuts[a];
                    cuts[a] = cuts[b], cuts[b] = t;
                }
        assert_int_equal(feed_cut(buf, n, cuts, 4), want);
        if (iter % 16 == 0)
            check_all_splits(buf, n);
    }
    /* The generator must produce all three outcomes in useful numbers. */
    assert_true(counts[0] > 5000 && counts[1] > 5000 && counts[2] > 5000);
}

/* ---- the ASCII fast path ----------------------------------------------------------------- */

/* ASCII of every length up to 100 with, at every position, a stray continuation byte, a valid
 * 2-, 3- or 4-byte sequence, or a lead byte at the very end. */
static void test_fast_path_positions(void **state)
{
    struct guard *g = *state;
    static const struct {
        const char *s;
        int want;
    } ins[] = {{"\x80", BAD},         {"\xc3\xa9", OK},
               {"\xe2\x82\xac", OK},  {"\xf0\x9f\x98\x80", OK},
               {"\xed\xa0\x80", BAD}, {"\xff", BAD}};
    uint8_t buf[128];
    for (size_t len = 0; len <= 100; len++) {
        for (size_t i = 0; i < len + 1; i++)
            buf[i] = (uint8_t)('a' + i % 26);
        assert_int_equal(feed_whole(guard_place(g, buf, len), len), OK);
        for (size_t at = 0; at <= len; at++) {
            for (size_t k = 0; k < sizeof ins / sizeof ins[0]; k++) {
                size_t m = strlen(ins[k].s);
                memset(buf, 'q', len);
                memcpy(buf + at, ins[k].s, m);
                size_t n = at + m > len ? at + m : len;
                assert_int_equal(feed_whole(guard_place(g, buf, n), n), ins[k].want);
            }
            memset(buf, 'q', at);
            buf[at] = 0xe2;
            assert_int_equal(feed_whole(guard_place(g, buf, at + 1), at + 1), PART);
        }
    }
}

/* High bits in every byte lane of a word: none may be missed by the 16- and 8-byte tests. */
static void test_fast_path_lanes(void **state)
{
    struct guard *g = *state;
    uint8_t buf[64];
    for (size_t off = 0; off < 8; off++)
        for (size_t lane = 0; lane < 40; lane++) {
            memset(buf, ' ', sizeof buf);
            buf[off + lane] = 0x80;
            assert_int_equal(feed_whole(guard_place(g, buf + off, 48), 48), BAD);
            buf[off + lane] = 0x7f;
            assert_int_equal(feed_whole(guard_place(g, buf + off, 48), 48), OK);
        }
}

static void test_sticky_and_empty(void **state)
{
    (void)state;
    struct ws_utf8 u;
    ws_utf8_init(&u);
    assert_int_equal(ws_utf8_feed(&u, NULL, 0), OK);
    assert_int_equal(ws_utf8_feed(&u, (const uint8_t *)"\xe2\x82", 2), PART);
    assert_int_equal(ws_utf8_feed(&u, NULL, 0), PART);
    assert_int_equal(ws_utf8_feed(&u, (const uint8_t *)"\xac", 1), OK);
    assert_int_equal(ws_utf8_feed(&u, (const uint8_t *)"\xc0", 1), BAD);
    assert_int_equal(ws_utf8_feed(&u, (const uint8_t *)"abc", 3), BAD);
    assert_int_equal(ws_utf8_feed(&u, NULL, 0), BAD);
    ws_utf8_init(&u);
    assert_int_equal(ws_utf8_feed(&u, (const uint8_t *)"abc", 3), OK);
    u.state = 7; /* not a state: refused rather than trusted */
    assert_int_equal(ws_utf8_feed(&u, (const uint8_t *)"a", 1), BAD);
    assert_true(ws_utf8_valid(NULL, 0));
    assert_false(ws_utf8_valid((const uint8_t *)"\xc3", 1));
    assert_true(ws_utf8_valid((const uint8_t *)"\xc3\xa9", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kuhn_whole_and_early),
        cmocka_unit_test(test_kuhn_splits),
        cmocka_unit_test(test_kuhn_after_ascii),
        cmocka_unit_test(test_every_single_byte),
        cmocka_unit_test(test_exhaustive_two_and_three),
        cmocka_unit_test(test_four_byte_edges),
        cmocka_unit_test(test_random_vs_reference),
        cmocka_unit_test_setup_teardown(test_fast_path_positions, guard_setup, guard_teardown),
        cmocka_unit_test_setup_teardown(test_fast_path_lanes, guard_setup, guard_teardown),
        cmocka_unit_test(test_sticky_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
