/* Unit tests for ws/frame and ws/handshake: every length form masked and unmasked, through the
 * encoder and back, split at every byte and against a PROT_NONE page; the RFC 6455 5.7 examples;
 * every opcode and reserved bit; control frame, minimal length and mask rules, each refused at the
 * first byte that proves it; unmasking resumed at every split; the message assembler's
 * fragmentation, size and UTF-8 rules; close payloads for every code; the handshake key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "guard_page.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ws/frame.h"
#include "ws/handshake.h"

static const uint8_t mask1[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ---- header decoding --------------------------------------------------------------------- */

/* Parses p[0..n) copied right before the PROT_NONE page: a read past p[n - 1] faults. */
static int parse_guarded(struct guard *g, const uint8_t *p, size_t n, int rule,
                         struct ws_frame_header *h)
{
    return ws_frame_parse_header(guard_place(g, p, n), n, rule, h);
}

/* Every proper prefix of a valid header needs more bytes and leaves *h alone. */
static void check_prefixes_incomplete(struct guard *g, const uint8_t *p, size_t hlen, int rule)
{
    for (size_t k = 0; k < hlen; k++) {
        struct ws_frame_header h;
        memset(&h, 0xa5, sizeof h);
        assert_int_equal(parse_guarded(g, p, k, rule, &h), 0);
        assert_int_equal(h.header_len, (size_t)0xa5a5a5a5a5a5a5a5ull);
    }
}

/* The error must appear exactly when the prefix reaches `at` bytes, and stay for longer ones. */
static void check_error_at(struct guard *g, const uint8_t *p, size_t n, int rule, size_t at)
{
    struct ws_frame_header h;
    for (size_t k = 0; k <= n; k++)
        assert_int_equal(parse_guarded(g, p, k, rule, &h), k < at ? 0 : -1002);
}

static void test_length_forms(void **state)
{
    struct guard *g = *state;
    static const struct {
        uint64_t len;
        size_t hlen;
    } forms[] = {{0, 2},         {1, 2},     {125, 2},    {126, 4},
                 {127, 4},       {65535, 4}, {65536, 10}, {0x100000005ull, 10},
                 {INT64_MAX, 10}};
    static const int ops[] = {WS_OP_CONT, WS_OP_TEXT, WS_OP_BIN};
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++)
        for (int masked = 0; masked <= 1; masked++)
            for (size_t o = 0; o < 3; o++)
                for (int fin = 0; fin <= 1; fin++) {
                    uint8_t buf[WS_MAX_HEADER + 3] = {0};
                    size_t hlen = ws_frame_header_encode(buf, fin, ops[o], forms[f].len,
                                                         masked ? mask1 : NULL);
                    assert_int_equal(hlen, forms[f].hlen + (masked ? 4 : 0));
                    check_prefixes_incomplete(g, buf, hlen, WS_MASK_ANY);
                    struct ws_frame_header h;
                    /* Payload bytes after the header are not the header's business. */
                    for (size_t extra = 0; extra <= 3; extra++) {
                        assert_int_equal(parse_guarded(g, buf, hlen + extra, WS_MASK_ANY, &h),
                                         (int)hlen);
                        assert_int_equal(h.header_len, hlen);
                        assert_int_equal(h.payload_len, forms[f].len);
                        assert_int_equal(h.fin, fin);
                        assert_int_equal(h.opcode, ops[o]);
                        assert_int_equal(h.rsv, 0);
                        assert_int_equal(h.masked, masked);
                        assert_memory_equal(h.mask, masked ? mask1 : (const uint8_t *)"\0\0\0\0",
                                            4);
                    }
                    int want_req = masked ? (int)hlen : -1002;
                    int want_forb = masked ? -1002 : (int)hlen;
                    assert_int_equal(ws_frame_parse_header(buf, hlen, WS_MASK_REQUIRED, &h),
                                     want_req);
                    assert_int_equal(ws_frame_parse_header(buf, hlen, WS_MASK_FORBIDDEN, &h),
                                     want_forb);
                }
}

static void test_rfc_examples(void **state)
{
    (void)state;
    struct ws_frame_header h;
    uint8_t masked_hello[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    assert_int_equal(ws_frame_parse_header((const uint8_t *)"\x81\x05Hello", 7, 0, &h), 2);
    assert_true(h.fin && h.opcode == WS_OP_TEXT && !h.masked && h.payload_len == 5);
    assert_int_equal(ws_frame_parse_header(masked_hello, 11, WS_MASK_REQUIRED, &h), 6);
    assert_true(h.masked && h.payload_len == 5);
    assert_memory_equal(h.mask, mask1, 4);
    ws_unmask(masked_hello + 6, 5, h.mask, 0);
    assert_memory_equal(masked_hello + 6, "Hello", 5);
    assert_int_equal(ws_frame_parse_header((const uint8_t *)"\x01\x03Hel", 5, 0, &h), 2);
    assert_true(!h.fin && h.opcode == WS_OP_TEXT && h.payload_len == 3);
    assert_int_equal(ws_frame_parse_header((const uint8_t *)"\x80\x02lo", 4, 0, &h), 2);
    assert_true(h.fin && h.opcode == WS_OP_CONT && h.payload_len == 2);
    assert_int_equal(ws_frame_parse_header((const uint8_t *)"\x89\x05Hello", 7, 0, &h), 2);
    assert_true(h.opcode == WS_OP_PING);
    assert_int_equal(ws_frame_parse_header((const uint8_t *)"\x8a\x85\x37\xfa\x21\x3d", 6, 0, &h),
                     6);
    assert_true(h.opcode == WS_OP_PONG && h.masked);
    assert_int_equal(ws_frame_parse_header((const uint8_t *)"\x82\x7e\x01\x00", 4, 0, &h), 4);
    assert_true(h.opcode == WS_OP_BIN && h.payload_len == 256);
    assert_int_equal(
        ws_frame_parse_header((const uint8_t *)"\x82\x7f\0\0\0\0\0\x01\0\0", 10, 0, &h), 10);
    assert_true(h.payload_len == 65536);
}

/* Every first byte: RSV bits, FIN and opcode. Errors are known from that byte alone. */
static void test_every_opcode_and_rsv(void **state)
{
    struct guard *g = *state;
    for (unsigned b0 = 0; b0 < 256; b0++) {
        unsigned fin = b0 >> 7, rsv = (b0 >> 4) & 7, op = b0 & 15;
        int known = op <= 2 || (op >= 8 && op <= 10);
        int ok = rsv == 0 && known && (fin || op < 8);
        uint8_t p[6] = {(uint8_t)b0, 0x84, 1, 2, 3, 4};
        if (!ok) {
            check_error_at(g, p, 6, WS_MASK_ANY, 1);
            continue;
        }
        struct ws_frame_header h;
        check_prefixes_incomplete(g, p, 6, WS_MASK_REQUIRED);
        assert_int_equal(parse_guarded(g, p, 6, WS_MASK_REQUIRED, &h), 6);
        assert_true(h.opcode == op && h.fin == fin && h.payload_len == 4);
    }
    for (int op = 0; op < 16; op++) {
        uint8_t out[WS_MAX_HEADER];
        int known = op <= 2 || (op >= 8 && op <= 10);
        assert_int_equal(ws_frame_header_encode(out, 1, op, 0, NULL) != 0, known);
        assert_int_equal(ws_opcode_known((unsigned)op), known);
        assert_int_equal(ws_opcode_is_control((unsigned)op), op >= 8);
    }
    uint8_t out[WS_MAX_HEADER];
    assert_int_equal(ws_frame_header_encode(out, 1, -1, 0, NULL), 0);
    assert_int_equal(ws_frame_header_encode(out, 1, WS_OP_BIN, 1ull << 63, NULL), 0);
}

static void test_control_rules(void **state)
{
    struct guard *g = *state;
    static const uint8_t ops[] = {WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};
    for (size_t i = 0; i < 3; i++) {
        uint8_t p[14];
        struct ws_frame_header h;
        p[0] = ops[i]; /* not FIN */
        p[1] = 0;
        check_error_at(g, p, 2, WS_MASK_ANY, 1);
        p[0] = 0x80 | ops[i];
        p[1] = 125;
        assert_int_equal(ws_frame_parse_header(p, 2, WS_MASK_ANY, &h), 2);
        p[1] = 0;
        assert_int_equal(ws_frame_parse_header(p, 2, WS_MASK_ANY, &h), 2);
        /* 126 and 127 announce more than 125 bytes: refused before the extended length. */
        memcpy(p + 2, "\0\x7e\0\0\0\0\0\0", 8);
        p[1] = 126;
        check_error_at(g, p, 4, WS_MASK_ANY, 2);
        p[1] = 127;
        check_error_at(g, p, 10, WS_MASK_ANY, 2);
        p[1] = 0x80 | 126;
        check_error_at(g, p, 8, WS_MASK_ANY, 2);
        uint8_t out[WS_MAX_HEADER];
        assert_int_equal(ws_frame_header_encode(out, 0, ops[i], 0, NULL), 0);
        assert_int_equal(ws_frame_header_encode(out, 1, ops[i], 126, NULL), 0);
        assert_int_equal(ws_frame_header_encode(out, 1, ops[i], 125, mask1), 6);
    }
}

static void test_non_minimal_lengths(void **state)
{
    struct guard *g = *state;
    struct ws_frame_header h;
    for (unsigned v = 0; v < 126; v++) {
        uint8_t p[4] = {0x82, 126, 0, (uint8_t)v};
        check_error_at(g, p, 4, WS_MASK_ANY, 4);
    }
    uint8_t p16[4] = {0x82, 126, 0, 126};
    assert_int_equal(ws_frame_parse_header(p16, 4, WS_MASK_ANY, &h), 4);
    assert_true(h.payload_len == 126);

    /* 64-bit: below 65536 is known once the six high bytes are all zero. */
    static const uint64_t small[] = {0, 1, 125, 126, 65535};
    for (size_t i = 0; i < 5; i++) {
        uint8_t p[10] = {0x82, 127};
        for (int j = 0; j < 8; j++)
            p[2 + j] = (uint8_t)(small[i] >> (56 - 8 * j));
        check_error_at(g, p, 10, WS_MASK_ANY, 8);
    }
    uint8_t p64[10] = {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    assert_int_equal(ws_frame_parse_header(p64, 10, WS_MASK_ANY, &h), 10);
    assert_true(h.payload_len == 65536);
    /* The top bit is known at the first length byte. */
    uint8_t top[14] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    check_error_at(g, top, 14, WS_MASK_ANY, 3);
    top[2] = 0x7f;
    memset(top + 3, 0xff, 7);
    assert_int_equal(ws_frame_parse_header(top, 14, WS_MASK_ANY, &h), 14);
    assert_true(h.payload_len == (uint64_t)INT64_MAX);
}

static void test_mask_rules(void **state)
{
    struct guard *g = *state;
    uint8_t unmasked[] = {0x81, 0x05}, masked[] = {0x81, 0x85, 1, 2, 3, 4};
    struct ws_frame_header h;
    check_error_at(g, unmasked, 2, WS_MASK_REQUIRED, 2);
    check_error_at(g, masked, 6, WS_MASK_FORBIDDEN, 2);
    assert_int_equal(ws_frame_parse_header(unmasked, 2, WS_MASK_ANY, &h), 2);
    assert_int_equal(ws_frame_parse_header(unmasked, 2, WS_MASK_FORBIDDEN, &h), 2);
    assert_int_equal(ws_frame_parse_header(masked, 6, WS_MASK_ANY, &h), 6);
    assert_int_equal(ws_frame_parse_header(masked, 6, WS_MASK_REQUIRED, &h), 6);
}

/* ---- unmasking --------------------------------------------------------------------------- */

static void ref_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(offset + i) % 4];
}

static void test_unmask_resumable(void **state)
{
    (void)state;
    enum { N = 150 };
    uint8_t plain[N], want[N], buf[N + 8];
    static const uint64_t bases[] = {0, 1, 2, 3, 5, 0x100000001ull, UINT64_MAX - 200};
    for (size_t i = 0; i < N; i++)
        plain[i] = (uint8_t)(i * 37 + 11);
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        memcpy(want, plain, N);
        ref_unmask(want, N, mask1, bases[b]);
        for (size_t align = 0; align < 8; align++) {
            uint8_t *p = buf + align;
            for (size_t a = 0; a <= N; a++) {
                memcpy(p, plain, N);
                ws_unmask(p, a, mask1, bases[b]);
                ws_unmask(p + a, N - a, mask1, bases[b] + a);
                assert_memory_equal(p, want, N);
            }
        }
        /* Three pieces, every pair of cuts over a shorter payload. */
        for (size_t a = 0; a <= 70; a++)
            for (size_t c = a; c <= 70; c++) {
                memcpy(buf, plain, 70);
                ws_unmask(buf, a, mask1, bases[b]);
                ws_unmask(buf + a, c - a, mask1, bases[b] + a);
                ws_unmask(buf + c, 70 - c, mask1, bases[b] + c);
                assert_memory_equal(buf, want, 70);
            }
    }
    /* Masking twice gives the input back; n = 0 touches nothing. */
    memcpy(buf, plain, N);
    ws_unmask(buf, N, mask1, 3);
    ws_unmask(buf, N, mask1, 3);
    assert_memory_equal(buf, plain, N);
    ws_unmask(NULL, 0, mask1, 0);
}

/* ---- the message assembler --------------------------------------------------------------- */

/* Sends one frame through the encoder, the decoder and the assembler, its payload in chunks of
 * `chunk` bytes. Returns the first nonzero event or error, or WS_MSG_MORE if none. *at gets the
 * payload bytes taken when it came (-1 when it came from the header). */
static int send_frame(struct ws_msg *m, int fin, int op, const void *payload, size_t n,
                      size_t chunk, long *at)
{
    uint8_t hdr[WS_MAX_HEADER];
    struct ws_frame_header h;
    size_t hlen = ws_frame_header_encode(hdr, fin, op, n, mask1);
    assert_int_equal(ws_frame_parse_header(hdr, hlen, WS_MASK_REQUIRED, &h), (int)hlen);
    long where = -1;
    int r = ws_msg_frame(m, &h);
    for (size_t off = 0; r == WS_MSG_MORE && off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        assert_int_equal(m->frame_left, n - off);
        r = ws_msg_payload(m, (const uint8_t *)payload + off, k);
        where = (long)(off + k);
    }
    if (at)
        *at = where;
    return r;
}

#define SEND(m, fin, op, s) send_frame((m), (fin), (op), (s), sizeof(s) - 1, 1, NULL)

static void test_msg_single_and_fragmented(void **state)
{
    (void)state;
    struct ws_msg m;
    for (size_t chunk = 1; chunk <= 6; chunk++) {
        ws_msg_init(&m, 1 << 20);
        assert_int_equal(send_frame(&m, 1, WS_OP_TEXT, "h\xc3\xa9llo", 6, chunk, NULL),
                         WS_MSG_MESSAGE);
        assert_int_equal(m.msg_opcode, WS_OP_TEXT);
        assert_int_equal(send_frame(&m, 1, WS_OP_BIN, "\xff\x00", 2, chunk, NULL), WS_MSG_MESSAGE);
        assert_int_equal(m.msg_opcode, WS_OP_BIN);
        /* A code point split over fragments, with every control frame in between. */
        assert_int_equal(send_frame(&m, 0, WS_OP_TEXT, "ab\xe2", 3, chunk, NULL), WS_MSG_FRAGMENT);
        assert_int_equal(SEND(&m, 1, WS_OP_PING, "ping"), WS_MSG_CONTROL);
        assert_int_equal(send_frame(&m, 0, WS_OP_CONT, "\x82", 1, chunk, NULL), WS_MSG_FRAGMENT);
        assert_int_equal(SEND(&m, 1, WS_OP_PONG, ""), WS_MSG_CONTROL);
        assert_int_equal(SEND(&m, 0, WS_OP_CONT, ""), WS_MSG_FRAGMENT);
        assert_int_equal(send_frame(&m, 1, WS_OP_CONT, "\xac!", 2, chunk, NULL), WS_MSG_MESSAGE);
        assert_int_equal(m.msg_opcode, WS_OP_TEXT);
        assert_true(m.msg_len == 6 && !m.msg_open);
        assert_int_equal(SEND(&m, 1, WS_OP_TEXT, ""), WS_MSG_MESSAGE);
        assert_int_equal(SEND(&m, 1, WS_OP_CLOSE, "\x03\xe8"), WS_MSG_CONTROL);
        assert_int_equal(m.error, 0);
    }
}

static void test_msg_protocol_errors(void **state)
{
    (void)state;
    struct ws_msg m;
    ws_msg_init(&m, 100);
    assert_int_equal(SEND(&m, 1, WS_OP_CONT, "x"), -1002); /* nothing to continue */
    assert_int_equal(SEND(&m, 1, WS_OP_TEXT, "x"), -1002); /* sticky */

    static const int second[] = {WS_OP_TEXT, WS_OP_BIN};
    for (size_t i = 0; i < 2; i++) {
        ws_msg_init(&m, 100);
        assert_int_equal(SEND(&m, 0, WS_OP_BIN, "ab"), WS_MSG_FRAGMENT);
        assert_int_equal(SEND(&m, 1, WS_OP_CLOSE, ""), WS_MSG_CONTROL);
        assert_int_equal(SEND(&m, 1, second[i], "c"), -1002); /* a new message inside one */
    }
    ws_msg_init(&m, 100);
    assert_int_equal(SEND(&m, 1, WS_OP_TEXT, "done"), WS_MSG_MESSAGE);
    assert_int_equal(SEND(&m, 0, WS_OP_CONT, "x"), -1002); /* the message is over */

    /* Headers built by hand get the control and reserved checks again. */
    struct ws_frame_header h = {.fin = 0, .opcode = WS_OP_PING, .payload_len = 0};
    ws_msg_init(&m, 100);
    assert_int_equal(ws_msg_frame(&m, &h), -1002);
    h.fin = 1, h.payload_len = 126;
    ws_msg_init(&m, 100);
    assert_int_equal(ws_msg_frame(&m, &h), -1002);
    h.opcode = 3, h.payload_len = 0;
    ws_msg_init(&m, 100);
    assert_int_equal(ws_msg_frame(&m, &h), -1002);
    h.opcode = WS_OP_TEXT, h.rsv = 4;
    ws_msg_init(&m, 100);
    assert_int_equal(ws_msg_frame(&m, &h), -1002);
}

static void test_msg_too_big(void **state)
{
    (void)state;
    struct ws_msg m;
    uint8_t big[20] = {0};
    struct ws_frame_header h = {.fin = 1, .opcode = WS_OP_BIN, .payload_len = 11};
    /* One frame over the limit: refused from its header, before any payload. */
    ws_msg_init(&m, 10);
    assert_int_equal(ws_msg_frame(&m, &h), -1009);
    assert_int_equal(ws_msg_payload(&m, big, 1), -1009);
    h.payload_len = (uint64_t)INT64_MAX;
    ws_msg_init(&m, 10);
    assert_int_equal(ws_msg_frame(&m, &h), -1009);
    ws_msg_init(&m, UINT64_MAX); /* no limit */
    assert_int_equal(ws_msg_frame(&m, &h), WS_MSG_MORE);

    /* Exactly the limit passes; fragments add up; control frames do not count. */
    ws_msg_init(&m, 10);
    assert_int_equal(send_frame(&m, 1, WS_OP_BIN, big, 10, 3, NULL), WS_MSG_MESSAGE);
    assert_int_equal(send_frame(&m, 0, WS_OP_TEXT, big, 4, 3, NULL), WS_MSG_FRAGMENT);
    assert_int_equal(send_frame(&m, 1, WS_OP_PING, big, 20, 3, NULL), WS_MSG_CONTROL);
    assert_int_equal(send_frame(&m, 0, WS_OP_CONT, big, 6, 3, NULL), WS_MSG_FRAGMENT);
    assert_int_equal(send_frame(&m, 1, WS_OP_CONT, big, 0, 3, NULL), WS_MSG_MESSAGE);
    assert_int_equal(send_frame(&m, 0, WS_OP_TEXT, big, 6, 3, NULL), WS_MSG_FRAGMENT);
    assert_int_equal(send_frame(&m, 1, WS_OP_CONT, big, 5, 3, NULL), -1009);
    assert_int_equal(send_frame(&m, 1, WS_OP_PONG, big, 0, 3, NULL), -1009); /* sticky */
    ws_msg_init(&m, 0);
    assert_int_equal(send_frame(&m, 1, WS_OP_TEXT, big, 0, 3, NULL), WS_MSG_MESSAGE);
    assert_int_equal(send_frame(&m, 1, WS_OP_TEXT, big, 1, 3, NULL), -1009);
}

static void test_msg_invalid_utf8(void **state)
{
    (void)state;
    struct ws_msg m;
    long at;
    /* Refused at the chunk holding the byte that proves it (the 'A0' after 'ED'), whatever the
     * chunk size. */
    static const char text[] = "abc\xed\xa0\x80zzzz";
    for (size_t chunk = 1; chunk <= 10; chunk++) {
        ws_msg_init(&m, 100);
        size_t end = (4 / chunk + 1) * chunk; /* the end of the chunk holding text[4] */
        assert_int_equal(send_frame(&m, 1, WS_OP_TEXT, text, 10, chunk, &at), -1007);
        assert_int_equal(at, (long)(end > 10 ? 10 : end));
        assert_int_equal(m.error, -1007);
    }
    /* The invalid byte in a later fragment. */
    ws_msg_init(&m, 100);
    assert_int_equal(send_frame(&m, 0, WS_OP_TEXT, "ok\xc3", 3, 1, NULL), WS_MSG_FRAGMENT);
    assert_int_equal(send_frame(&m, 1, WS_OP_CONT, "(", 1, 1, &at), -1007);
    assert_int_equal(at, 1);
    /* The FIN fragment ends inside a code point: refused at its end, or at its empty header. */
    ws_msg_init(&m, 100);
    assert_int_equal(send_frame(&m, 0, WS_OP_TEXT, "ab", 2, 1, NULL), WS_MSG_FRAGMENT);
    assert_int_equal(send_frame(&m, 1, WS_OP_CONT, "c\xf0\x9f", 3, 1, &at), -1007);
    assert_int_equal(at, 3);
    ws_msg_init(&m, 100);
    assert_int_equal(send_frame(&m, 0, WS_OP_TEXT, "\xf0\x9f\x98", 3, 1, NULL), WS_MSG_FRAGMENT);
    assert_int_equal(send_frame(&m, 1, WS_OP_CONT, "", 0, 1, &at), -1007);
    assert_int_equal(at, -1);
    ws_msg_init(&m, 100);
    assert_int_equal(send_frame(&m, 1, WS_OP_TEXT, "\xe2\x82", 2, 1, NULL), -1007);
    /* Binary messages are not text; a new text message starts a fresh validator. */
    ws_msg_init(&m, 100);
    assert_int_equal(send_frame(&m, 1, WS_OP_BIN, "\xed\xa0\x80\xff", 4, 1, NULL), WS_MSG_MESSAGE);
    assert_int_equal(send_frame(&m, 0, WS_OP_TEXT, "\xe2", 1, 1, NULL), WS_MSG_FRAGMENT);
    assert_int_equal(send_frame(&m, 1, WS_OP_CONT, "\x82\xac", 2, 1, NULL), WS_MSG_MESSAGE);
    assert_int_equal(send_frame(&m, 1, WS_OP_TEXT, "\xc3\xa9", 2, 1, NULL), WS_MSG_MESSAGE);
    /* Control payloads are not validated by the assembler (close reasons: ws_close_parse). */
    assert_int_equal(send_frame(&m, 1, WS_OP_PING, "\xff", 1, 1, NULL), WS_MSG_CONTROL);
}

/* ---- close frames ------------------------------------------------------------------------ */

static void test_close_parse_codes(void **state)
{
    (void)state;
    uint16_t code;
    const uint8_t *reason;
    size_t rlen;
    assert_int_equal(ws_close_parse(NULL, 0, &code, &reason, &rlen), 0);
    assert_true(code == WS_CLOSE_NO_STATUS && rlen == 0);
    assert_int_equal(ws_close_parse((const uint8_t *)"\x03", 1, &code, &reason, &rlen), -1002);

    for (unsigned c = 0; c < 65536; c++) {
        /* Spelled out by class rather than by ranges: 1004-1006 and 1015 are never sent. */
        int want = (c >= 3000 && c <= 4999);
        switch (c) {
        case 1000:
        case 1001:
        case 1002:
        case 1003:
        case 1007:
        case 1008:
        case 1009:
        case 1010:
        case 1011:
        case 1012:
        case 1013:
        case 1014:
            want = 1;
        }
        uint8_t p[2] = {(uint8_t)(c >> 8), (uint8_t)c};
        assert_int_equal(ws_close_code_valid(c), want);
        assert_int_equal(ws_close_parse(p, 2, &code, &reason, &rlen), want ? 0 : -1002);
        if (want)
            assert_true(code == c && rlen == 0 && reason == p + 2);
    }

    static const uint8_t good[] = "\x03\xe9g\xc3\xa9ne \xe2\x82\xac";
    assert_int_equal(ws_close_parse(good, sizeof good - 1, &code, &reason, &rlen), 0);
    assert_true(code == 1001 && reason == good + 2 && rlen == sizeof good - 3);
    assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xe8\xc3", 3, &code, &reason, &rlen),
                     -1007);
    assert_int_equal(
        ws_close_parse((const uint8_t *)"\x03\xe8\xed\xa0\x80", 5, &code, &reason, &rlen), -1007);
    /* A bad code is a protocol error whatever the reason holds. */
    assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xed\xff", 3, &code, &reason, &rlen),
                     -1002);
    uint8_t longp[126];
    memset(longp, 'a', sizeof longp);
    longp[0] = 0x03, longp[1] = 0xe8;
    assert_int_equal(ws_close_parse(longp, 125, &code, &reason, &rlen), 0);
    assert_int_equal(ws_close_parse(longp, 126, &code, &reason, &rlen), -1002);
}

/* Decodes a whole close frame made by ws_close_encode. */
static void check_close_frame(const uint8_t *f, size_t n, int masked, uint16_t code,
                              const char *reason, size_t rlen)
{
    struct ws_frame_header h;
    uint8_t copy[256];
    int hl = ws_frame_parse_header(f, n, masked ? WS_MASK_REQUIRED : WS_MASK_FORBIDDEN, &h);
    assert_true(hl > 0 && h.opcode == WS_OP_CLOSE && h.fin && hl + h.payload_len == n);
    memcpy(copy, f + hl, h.payload_len);
    ws_unmask(copy, h.payload_len, h.mask, 0);
    uint16_t c;
    const uint8_t *r;
    size_t rl;
    assert_int_equal(ws_close_parse(copy, h.payload_len, &c, &r, &rl), 0);
    assert_int_equal(c, code ? code : WS_CLOSE_NO_STATUS);
    assert_int_equal(rl, rlen);
    assert_memory_equal(r, reason, rlen);
}

static void test_close_encode(void **state)
{
    (void)state;
    uint8_t out[256];
    assert_int_equal(ws_close_encode(out, sizeof out, 1000, NULL, NULL), 4);
    assert_memory_equal(out, "\x88\x02\x03\xe8", 4);
    assert_int_equal(ws_close_encode(out, sizeof out, 0, NULL, NULL), 2);
    assert_memory_equal(out, "\x88\x00", 2);
    check_close_frame(out, 2, 0, 0, "", 0);
    assert_int_equal(ws_close_encode(out, sizeof out, 0, "", mask1), 6);
    assert_int_equal(ws_close_encode(out, sizeof out, 1001, "going away", NULL), 14);
    check_close_frame(out, 14, 0, 1001, "going away", 10);
    assert_int_equal(ws_close_encode(out, sizeof out, 4000, "priv\xc3\xa9", mask1), 14);
    check_close_frame(out, 14, 1, 4000, "priv\xc3\xa9", 6);

    /* A long reason is cut to 123 bytes, back to the start of a code point that would not fit. */
    char reason[200];
    memset(reason, 'r', sizeof reason);
    reason[199] = '\0';
    assert_int_equal(ws_close_encode(out, sizeof out, 1008, reason, NULL), 2 + 125);
    check_close_frame(out, 127, 0, 1008, reason, 123);
    for (size_t at = 118; at <= 124; at++) {
        memset(reason, 'r', 199);
        memcpy(reason + at, "\xe2\x82\xac", 3); /* bytes at..at+2 */
        size_t keep = at < 123 && at + 3 > 123 ? at : 123;
        assert_int_equal(ws_close_encode(out, sizeof out, 1009, reason, mask1), 6 + 2 + keep);
        check_close_frame(out, 8 + keep, 1, 1009, reason, keep);
    }

    /* Refusals: no room, codes that are never sent, reasons without a code or not UTF-8. */
    assert_int_equal(ws_close_encode(out, 13, 1001, "going away", NULL), 0);
    assert_int_equal(ws_close_encode(out, 1, 0, NULL, NULL), 0);
    static const uint16_t never[] = {999, 1004, 1005, 1006, 1015, 1016, 2999, 5000};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        assert_int_equal(ws_close_encode(out, sizeof out, never[i], NULL, NULL), 0);
    assert_int_equal(ws_close_encode(out, sizeof out, 0, "why", NULL), 0);
    assert_int_equal(ws_close_encode(out, sizeof out, 1000, "\xc3", NULL), 0);
}

/* ---- handshake --------------------------------------------------------------------------- */

static void test_accept_key(void **state)
{
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(ws_accept_key(key, strlen(key), out), 0);
    /* RFC 6455 1.3 and 4.2.2 (the RFC's own value, checked with the sha1sum and base64 tools) */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(ws_accept_key("wDqumtseNBJdhkihL6PW7w==", 24, out), 0);
    assert_string_equal(out, "0FFP+2nmNIf/h+4BP36k9uzrYGk=");
    assert_int_equal(ws_accept_key("AAAAAAAAAAAAAAAAAAAAAA==", 24, out), 0);
    assert_int_equal(ws_accept_key("+/+/+/+/+/+/+/+/+/+/+w==", 24, out), 0);

    static const char *const bad[] = {
        "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 characters */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 */
        "dGhlIHNhbXBsZSBub25jZQ",    /* no padding */
        "dGhlIHNhbXBsZSBub25jZQAA",  /* no padding: 18 bytes */
        "dGhlIHNhbXBsZSBub25jZR==",  /* stray bits in the last digit */
        "dGhlIHNhbXBsZSBub25j*Q==",  /* not base64 */
        "dGhlIHNhbXBsZSBub25jZ\0==", /* NUL inside */
        "dGhlIHNhbXBsZSBub25jZQ=A",  /* broken padding */
        "dGhlIHNhbXBsZSBub2=jZQ==",  /* padding inside */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ws_accept_key(bad[i], i == 6 ? 24 : strlen(bad[i]), out), -1);
    /* The length is the caller's: a valid key followed by more bytes is refused. */
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==x", 25, out), -1);
    assert_int_equal(ws_accept_key(key, 23, out), -1);
    assert_int_equal(ws_accept_key(NULL, 0, out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_length_forms, guard_setup, guard_teardown),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test_setup_teardown(test_every_opcode_and_rsv, guard_setup, guard_teardown),
        cmocka_unit_test_setup_teardown(test_control_rules, guard_setup, guard_teardown),
        cmocka_unit_test_setup_teardown(test_non_minimal_lengths, guard_setup, guard_teardown),
        cmocka_unit_test_setup_teardown(test_mask_rules, guard_setup, guard_teardown),
        cmocka_unit_test(test_unmask_resumable),
        cmocka_unit_test(test_msg_single_and_fragmented),
        cmocka_unit_test(test_msg_protocol_errors),
        cmocka_unit_test(test_msg_too_big),
        cmocka_unit_test(test_msg_invalid_utf8),
        cmocka_unit_test(test_close_parse_codes),
        cmocka_unit_test(test_close_encode),
        cmocka_unit_test(test_accept_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
