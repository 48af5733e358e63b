/* Unit tests for http/static_path.h: the path-traversal corpus and good names for
 * static_path_clean, a random search for names that escape, over-reads caught by a PROT_NONE page,
 * Range parsing, entity-tag lists, HTTP dates and media types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http/static_path.h"

static int clean_n(const char *in, size_t n, char *out, size_t outlen)
{
    return static_path_clean(in, n, out, outlen);
}

static int clean(const char *in, char *out)
{
    return clean_n(in, strlen(in), out, STATIC_PATH_MAX);
}

/* Reports the input with the mismatch: a bare assert says too little. */
static void expect_name(const char *in, const char *want)
{
    char out[STATIC_PATH_MAX];
    int n = clean(in, out);
    if (n < 0 || strcmp(out, want) != 0 || (size_t)n != strlen(want)) {
        fprintf(stderr, "clean(\"%s\") = %d \"%s\", want \"%s\"\n", in, n, n >= 0 ? out : "", want);
        fail();
    }
}

static void expect_status(const char *in, int status)
{
    char out[STATIC_PATH_MAX];
    int n = clean(in, out);
    if (n != -status) {
        fprintf(stderr, "clean(\"%s\") = %d (\"%s\"), want %d\n", in, n, n >= 0 ? out : "",
                -status);
        fail();
    }
}

/* A name static_path_clean may return: non-empty, no empty, "." or ".." segment, no leading or
 * trailing '/', no NUL, control byte or backslash. */
static int name_is_safe(const char *s, int n)
{
    if (n <= 0 || (size_t)n != strlen(s) || s[0] == '/' || s[n - 1] == '/')
        return 0;
    int start = 0;
    for (int i = 0; i <= n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i < n && (ch < 0x20 || ch == 0x7f || ch == '\\'))
            return 0;
        if (i == n || ch == '/') {
            int len = i - start;
            if (len == 0 || (len == 1 && s[start] == '.') ||
                (len == 2 && s[start] == '.' && s[start + 1] == '.'))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

/* ---- static_path_clean ------------------------------------------------------------------ */

static void test_clean_traversal_corpus(void **state)
{
    (void)state;
    static const char *const corpus[] = {
        "..",
        "../",
        "../secret.txt",
        "a/../../secret.txt",
        "a/..",
        ".",
        "./",
        "./..",
        "%2e%2e",
        "%2E%2E",
        "%2e%2E/",
        "%2E%2e%2f",
        "%2E%2E%2F",
        "%2e%2e%2fsecret.txt",
        "..%2f",
        "..%2Fsecret.txt",
        ".%2e",
        "%2e.",
        ".%2E/secret.txt",
        "%2e",
        "%2E/",
        "a/%2e%2e/%2e%2e/secret.txt",
        "a%2f..%2f..%2fsecret.txt",
        "/../secret.txt",
        "//..//secret.txt",
        "a/./../..",
        "...//..",
        "x/../..",
        "%2e%2e/%2e%2e/etc/passwd",
        "/./",
        "./a",
        "a/.",
        "a/./b",
    };
    char out[STATIC_PATH_MAX];
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        int n = clean(corpus[i], out);
        if (n != -404) {
            fprintf(stderr, "clean(\"%s\") = %d, want -404\n", corpus[i], n);
            fail();
        }
    }
}

static void test_clean_malformed(void **state)
{
    (void)state;
    /* Bad escapes, NUL and control characters: 400. */
    expect_status("%", 400);
    expect_status("a%", 400);
    expect_status("a%2", 400);
    expect_status("%zz", 400);
    expect_status("%g0", 400);
    expect_status("%0g", 400);
    expect_status("%%32e", 400);
    expect_status("%00", 400);
    expect_status("a%00.txt", 400);
    expect_status("a.txt%00.html", 400);
    expect_status("%0a", 400);
    expect_status("%0D%0A", 400);
    expect_status("%1f", 400);
    expect_status("%7f", 400);
    expect_status("a\tb", 400);
    /* A raw NUL inside the slice (not the terminator). */
    char out[STATIC_PATH_MAX];
    assert_int_equal(clean_n("a\0b", 3, out, sizeof out), -400);
    assert_int_equal(clean_n("..\0", 3, out, sizeof out), -400);
    /* Backslashes, raw or encoded, are not served: 404. */
    expect_status("a\\b", 404);
    expect_status("..\\secret.txt", 404);
    expect_status("%5c", 404);
    expect_status("..%5Csecret.txt", 404);
    expect_status("%2e%2e%5c", 404);
    /* Nothing to serve. */
    expect_status("", 404);
    expect_status("/", 404);
    expect_status("//", 404);
    expect_status("///", 404);
}

static void test_clean_good(void **state)
{
    (void)state;
    expect_name("a.txt", "a.txt");
    expect_name("index.html", "index.html");
    expect_name("css/site.css", "css/site.css");
    expect_name("a/b/c/d.js", "a/b/c/d.js");
    expect_name("/a.txt", "a.txt");
    expect_name("a.txt/", "a.txt");
    expect_name("a//b", "a/b");
    expect_name("//a///b//", "a/b");
    expect_name("a%20b.txt", "a b.txt");
    expect_name("%41%62c", "Abc");
    expect_name("a%2fb", "a/b");
    expect_name("a%2F%2Fb", "a/b");
    expect_name("...", "...");
    expect_name("....", "....");
    expect_name("..a", "..a");
    expect_name("a..", "a..");
    expect_name(".hidden", ".hidden");
    expect_name("a/.b/c", "a/.b/c");
    expect_name("%2e%2e%2e", "...");
    expect_name("%2ehidden", ".hidden");
    expect_name("caf\xc3\xa9.txt", "caf\xc3\xa9.txt");
    expect_name("caf%C3%A9.txt", "caf\xc3\xa9.txt");
    expect_name("a+b", "a+b"); /* '+' is not a space in a path */
    expect_name("100%25.txt", "100%.txt");
}

static void test_clean_decodes_once(void **state)
{
    (void)state;
    /* "%252e%252e" decodes once to the literal name "%2e%2e", never again to "..". */
    expect_name("%252e%252e", "%2e%2e");
    expect_name("%252e%252e/secret.txt", "%2e%2e/secret.txt");
    expect_name("%252E%252E%252F", "%2E%2E%2F");
    expect_name("..%252f", "..%2f");
    expect_name("%25", "%");
    expect_name("%2500", "%00");
}

static void test_clean_long(void **state)
{
    (void)state;
    char out[STATIC_PATH_MAX];
    static char in[3 * STATIC_PATH_MAX];
    /* The longest name that fits: STATIC_PATH_MAX - 1 bytes. */
    memset(in, 'a', STATIC_PATH_MAX - 1);
    assert_int_equal(clean_n(in, STATIC_PATH_MAX - 1, out, sizeof out), STATIC_PATH_MAX - 1);
    assert_int_equal(strlen(out), STATIC_PATH_MAX - 1);
    /* One more byte: 414; with slashes around it, the name is the same length and still fits. */
    memset(in, 'a', STATIC_PATH_MAX);
    assert_int_equal(clean_n(in, STATIC_PATH_MAX, out, sizeof out), -414);
    in[0] = '/';
    in[STATIC_PATH_MAX - 1] = '/';
    assert_int_equal(clean_n(in, STATIC_PATH_MAX, out, sizeof out), STATIC_PATH_MAX - 2);
    /* Very long: many segments, escapes and empty segments. */
    size_t n = 0;
    while (n + 4 < sizeof in) {
        memcpy(in + n, "b%2F", 4);
        n += 4;
    }
    assert_int_equal(clean_n(in, n, out, sizeof out), -414);
    /* Long but short once decoded and merged. */
    memset(in, '/', sizeof in);
    in[sizeof in - 1] = 'z';
    assert_int_equal(clean_n(in, sizeof in, out, sizeof out), 1);
    assert_string_equal(out, "z");
    /* Long and ending in "..": refused whatever the length. */
    memset(in, '/', 2 * STATIC_PATH_MAX);
    memcpy(in + 2 * STATIC_PATH_MAX, "..", 2);
    assert_int_equal(clean_n(in, 2 * STATIC_PATH_MAX + 2, out, sizeof out), -404);
    /* Small output buffers: never written past. */
    char small[8];
    memset(small, 'X', sizeof small);
    assert_int_equal(clean_n("abcdefgh", 8, small, 8), -414);
    assert_int_equal(clean_n("abcdefg", 7, small, 8), 7);
    assert_string_equal(small, "abcdefg");
    assert_int_equal(clean_n("a", 1, small, 0), -414);
    assert_int_equal(clean_n("a", 1, small, 1), -414);
    assert_int_equal(clean_n("a", 1, small, 2), 1);
}

/* Random strings over the bytes that matter for traversal: whatever comes out is safe, and
 * decoding is the one expected (the input decoded once, with empty segments dropped). */
static void test_clean_random(void **state)
{
    (void)state;
    static const char alphabet[] = "./%2eEfF5cC0a\\";
    unsigned seed = 12345;
    char in[24], out[STATIC_PATH_MAX];
    for (int iter = 0; iter < 500000; iter++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % sizeof in;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        int r = clean_n(in, n, out, sizeof out);
        if (r >= 0 && !name_is_safe(out, r)) {
            fprintf(stderr, "unsafe: \"%.*s\" -> \"%s\"\n", (int)n, in, out);
            fail();
        }
        assert_true(r >= 0 || r == -400 || r == -404);
    }
}

/* Inputs end at the last byte before a PROT_NONE page: reading one byte too far faults. */
static void test_clean_no_overread(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *base = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(base != MAP_FAILED);
    assert_int_equal(mprotect(base + page, page, PROT_NONE), 0);
    static const char *const inputs[] = {"%", "%2", "a%",  "a%e",   "%2e", "..",
                                         ".", "a/", "abc", "%2e%2", "/"};
    char out[STATIC_PATH_MAX];
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t n = strlen(inputs[i]);
        char *p = base + page - n;
        memcpy(p, inputs[i], n);
        (void)clean_n(p, n, out, sizeof out);
    }
    assert_int_equal(clean_n(base + page, 0, out, sizeof out), -404);
    munmap(base, 2 * page);
}

/* ---- static_range_parse ----------------------------------------------------------------- */

static int range(const char *v, uint64_t size, uint64_t *off, uint64_t *len)
{
    *off = *len = 12345;
    return static_range_parse(v, strlen(v), size, off, len);
}

static void expect_part(const char *v, uint64_t size, uint64_t off, uint64_t len)
{
    uint64_t o, l;
    int r = range(v, size, &o, &l);
    if (r != STATIC_RANGE_PART || o != off || l != len) {
        fprintf(stderr, "range(\"%s\", %llu) = %d %llu+%llu, want part %llu+%llu\n", v,
                (unsigned long long)size, r, (unsigned long long)o, (unsigned long long)l,
                (unsigned long long)off, (unsigned long long)len);
        fail();
    }
}

static void expect_range(const char *v, uint64_t size, int want)
{
    uint64_t o, l;
    int r = range(v, size, &o, &l);
    if (r != want) {
        fprintf(stderr, "range(\"%s\", %llu) = %d, want %d\n", v, (unsigned long long)size, r,
                want);
        fail();
    }
}

static void test_range_single(void **state)
{
    (void)state;
    expect_part("bytes=0-0", 100, 0, 1);
    expect_part("bytes=0-99", 100, 0, 100);
    expect_part("bytes=10-19", 100, 10, 10);
    expect_part("bytes=10-", 100, 10, 90);
    expect_part("bytes=99-", 100, 99, 1);
    expect_part("bytes=50-1000", 100, 50, 50);
    expect_part("bytes=-1", 100, 99, 1);
    expect_part("bytes=-10", 100, 90, 10);
    expect_part("bytes=-100", 100, 0, 100);
    expect_part("bytes=-1000", 100, 0, 100);
    expect_part("BYTES=1-2", 100, 1, 2);
    expect_part("bytes= 1-2 ", 100, 1, 2);
    expect_part("bytes=1-2,", 100, 1, 2);
    expect_part("bytes=,1-2", 100, 1, 2);
    expect_part("bytes=0-99999999999999999999999", 100, 0, 100);
    expect_part("bytes=-99999999999999999999999", 100, 0, 100);
    expect_part("bytes=0-18446744073709551615", 100, 0, 100);
}

static void test_range_unsatisfiable(void **state)
{
    (void)state;
    expect_range("bytes=100-", 100, STATIC_RANGE_UNSATISFIABLE);
    expect_range("bytes=100-200", 100, STATIC_RANGE_UNSATISFIABLE);
    expect_range("bytes=1000-", 100, STATIC_RANGE_UNSATISFIABLE);
    expect_range("bytes=-0", 100, STATIC_RANGE_UNSATISFIABLE);
    expect_range("bytes=99999999999999999999999-", 100, STATIC_RANGE_UNSATISFIABLE);
}

static void test_range_ignored(void **state)
{
    (void)state;
    /* Invalid syntax, other units, several ranges, empty files: the whole file. */
    static const char *const full[] = {
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=-",
        "bytes=a-b",
        "bytes=1",
        "bytes=1-2-3",
        "bytes=5-1",
        "bytes 1-2",
        "bytes=1 -2",
        "bytes=1- 2",
        "bytes=--1",
        "bytes=+1-2",
        "items=1-2",
        "bytes=0-0,2-3",
        "bytes=0-0, -1",
        "bytes=1-2;",
        "bytes=1-2 x",
        "bytes=0x1-2",
        "bytes=100-,200-",
    };
    for (size_t i = 0; i < sizeof full / sizeof full[0]; i++)
        expect_range(full[i], 100, STATIC_RANGE_FULL);
    expect_range("bytes=0-0", 0, STATIC_RANGE_FULL);
    expect_range("bytes=-5", 0, STATIC_RANGE_FULL);
}

/* ---- static_etag_match ------------------------------------------------------------------ */

static int etag(const char *list, int strong)
{
    return static_etag_match(list, strlen(list), "\"1a-2b\"", strong);
}

static void test_etag_match(void **state)
{
    (void)state;
    assert_true(etag("\"1a-2b\"", 0));
    assert_true(etag("\"1a-2b\"", 1));
    assert_true(etag("W/\"1a-2b\"", 0));
    assert_false(etag("W/\"1a-2b\"", 1));
    assert_true(etag("\"x\", \"1a-2b\"", 0));
    assert_true(etag("\"x\",W/\"1a-2b\"", 0));
    assert_true(etag(" \"x\" ,\t\"y\" , \"1a-2b\" ", 0));
    assert_true(etag(",,\"1a-2b\",", 0));
    assert_true(etag("*", 0));
    assert_true(etag(" * ", 0));
    assert_false(etag("", 0));
    assert_false(etag("\"1a-2c\"", 0));
    assert_false(etag("\"1a-2b", 0));     /* unterminated */
    assert_false(etag("1a-2b", 0));       /* unquoted */
    assert_false(etag("w/\"1a-2b\"", 0)); /* W is case-sensitive */
    assert_false(etag("\"1a\"-2b\"", 0));
    assert_false(etag("\"x\" \"1a-2b\"", 0)); /* a comma is required between tags */
    assert_false(etag("*, \"x\"", 0));
    assert_false(etag("\"1A-2B\"", 0));
    assert_false(etag("\"\"", 0));
}

/* ---- HTTP dates ------------------------------------------------------------------------- */

static int64_t date(const char *s)
{
    return static_http_date_parse(s, strlen(s));
}

static void test_date_parse(void **state)
{
    (void)state;
    /* RFC 9110's example, in its three forms. */
    assert_int_equal(date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    assert_int_equal(date("Sun Nov  6 08:49:37 1994"), 784111777);
    assert_int_equal(date("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    assert_int_equal(date("Tue, 29 Feb 2000 12:00:00 GMT"), 951825600);
    assert_int_equal(date("Fri, 31 Dec 2038 23:59:59 GMT"), 2177452799LL);
    assert_int_equal(date("Sat, 01-Jan-00 00:00:00 GMT"), 946684800);
    assert_int_equal(date("Thu Jan  1 00:00:00 1970"), 0);
    assert_int_equal(date("Mon Dec 31 23:59:59 2001"), 1009843199);

    static const char *const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 32 Jan 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 30 Feb 2000 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1969 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "garbage",
        "1234",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (date(bad[i]) != -1) {
            fprintf(stderr, "date(\"%s\") = %lld, want -1\n", bad[i], (long long)date(bad[i]));
            fail();
        }
    }
}

static void test_date_format(void **state)
{
    (void)state;
    char out[32];
    static_http_date_format(784111777, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    static_http_date_format(0, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    /* Round trips over many seconds of many years. */
    for (int64_t t = 0; t < 4102444800LL; t += 86399 * 7 + 3601) {
        static_http_date_format(t, out);
        assert_int_equal(strlen(out), 29);
        assert_int_equal(date(out), t);
    }
}

/* ---- media types ------------------------------------------------------------------------ */

static const char *ctype(const char *name)
{
    return static_content_type(name, strlen(name));
}

static void test_content_type(void **state)
{
    (void)state;
    assert_string_equal(ctype("index.html"), "text/html; charset=utf-8");
    assert_string_equal(ctype("a/b/INDEX.HTM"), "text/html; charset=utf-8");
    assert_string_equal(ctype("site.css"), "text/css; charset=utf-8");
    assert_string_equal(ctype("app.js"), "text/javascript; charset=utf-8");
    assert_string_equal(ctype("data.json"), "application/json");
    assert_string_equal(ctype("notes.txt"), "text/plain; charset=utf-8");
    assert_string_equal(ctype("img.png"), "image/png");
    assert_string_equal(ctype("img.JPG"), "image/jpeg");
    assert_string_equal(ctype("img.jpeg"), "image/jpeg");
    assert_string_equal(ctype("anim.gif"), "image/gif");
    assert_string_equal(ctype("logo.svg"), "image/svg+xml");
    assert_string_equal(ctype("favicon.ico"), "image/x-icon");
    assert_string_equal(ctype("mod.wasm"), "application/wasm");
    assert_string_equal(ctype("doc.pdf"), "application/pdf");
    assert_string_equal(ctype("archive.tar.gz"), "application/octet-stream");
    assert_string_equal(ctype("noext"), "application/octet-stream");
    assert_string_equal(ctype("dir.html/file"), "application/octet-stream");
    assert_string_equal(ctype(".html"), "application/octet-stream");
    assert_string_equal(ctype("a/.css"), "application/octet-stream");
    assert_string_equal(ctype("trailing."), "application/octet-stream");
    assert_string_equal(ctype("a.htmlx"), "application/octet-stream");
    assert_string_equal(ctype("a.ht"), "application/octet-stream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_traversal_corpus),
        cmocka_unit_test(test_clean_malformed),
        cmocka_unit_test(test_clean_good),
        cmocka_unit_test(test_clean_decodes_once),
        cmocka_unit_test(test_clean_long),
        cmocka_unit_test(test_clean_random),
        cmocka_unit_test(test_clean_no_overread),
        cmocka_unit_test(test_range_single),
        cmocka_unit_test(test_range_unsatisfiable),
        cmocka_unit_test(test_range_ignored),
        cmocka_unit_test(test_etag_match),
        cmocka_unit_test(test_date_parse),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
