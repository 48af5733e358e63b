/* Unit tests for bench/ws_wire: server frames read whole without a copy, and the same events
 * however the stream is cut (7, 16 and 64-bit lengths, fragments with a ping between them);
 * every input against a PROT_NONE page; masked server frames, bad opcodes, invalid UTF-8 and
 * oversized messages refused, and errors sticky; the chat frame round trip (mask, padding to
 * --size, the stamp); the scan of chat messages, with keys hidden in values and escapes; stamps
 * that are not ours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "guard_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/ws_wire.h"

static const uint8_t mask1[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends an unmasked server frame to out at *n. */
static void put_frame(uint8_t *out, size_t *n, int fin, int opcode, const void *p, size_t len)
{
    *n += ws_frame_header_encode(out + *n, fin, opcode, len, NULL);
    memcpy(out + *n, p, len);
    *n += len;
}

/* Feeds s[0..n) in pieces of `step` bytes the way ws_client does (what is not consumed stays at
 * the front of its buffer) and logs the events: "D<len>:<payload>", "C<op>:<payload>", "E<code>".
 */
static void run(const uint8_t *s, size_t n, size_t step, uint64_t max, char *log, size_t cap)
{
    struct bench_ws_rx rx;
    bench_ws_rx_init(&rx, max);
    uint8_t *buf = malloc(n + 1);
    size_t have = 0, fed = 0, at = 0;
    log[0] = 0;
    while (fed < n || have) {
        size_t k = n - fed < step ? n - fed : step;
        memcpy(buf + have, s + fed, k);
        have += k;
        fed += k;
        size_t off = 0;
        int e;
        for (;;) {
            size_t used = 99999;
            e = bench_ws_rx_next(&rx, buf + off, have - off, &used);
            assert_true(used <= have - off);
            off += used;
            if (e == BENCH_WS_NEED) {
                assert_true(have - off < WS_MAX_HEADER);
                break;
            }
            if (e < 0) {
                at += (size_t)snprintf(log + at, cap - at, "E%d", -e);
                break;
            }
            if (e == BENCH_WS_DATA)
                at += (size_t)snprintf(log + at, cap - at, "D%zu:%.*s|", rx.data_len,
                                       (int)rx.data_len, (const char *)rx.data);
            else
                at += (size_t)snprintf(log + at, cap - at, "C%d:%.*s|", rx.ctl_opcode,
                                       (int)rx.ctl_len, (const char *)rx.ctl);
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (e < 0 || (k == 0 && have))
            break;
    }
    free(buf);
    bench_ws_rx_fini(&rx);
}

/* The same events fed whole, byte by byte and in pieces of 2..17 bytes. */
static void check_cuts(const uint8_t *s, size_t n, uint64_t max, const char *want)
{
    static char log[300000];
    for (size_t step = 1; step <= 17; step++) {
        run(s, n, step, max, log, sizeof log);
        assert_string_equal(log, want);
    }
    run(s, n, n ? n : 1, max, log, sizeof log);
    assert_string_equal(log, want);
}

/* Every prefix of s[0..n) right before the PROT_NONE page: decoding never reads past its end,
 * and what is left unconsumed is an incomplete header. */
static void check_guarded(struct guard *g, const uint8_t *s, size_t n)
{
    for (size_t k = 0; k <= n; k++) {
        const uint8_t *p = guard_place(g, s, k);
        struct bench_ws_rx rx;
        bench_ws_rx_init(&rx, UINT64_MAX);
        size_t off = 0, used;
        int e;
        while ((e = bench_ws_rx_next(&rx, p + off, k - off, &used)) > 0)
            off += used;
        assert_int_equal(e, BENCH_WS_NEED);
        assert_true(k - off - used < WS_MAX_HEADER);
        bench_ws_rx_fini(&rx);
    }
}

static void test_whole_message_no_copy(void **state)
{
    uint8_t s[64];
    size_t n = 0;
    put_frame(s, &n, 1, WS_OP_TEXT, "{\"type\":\"msg\"}", 14);
    put_frame(s, &n, 1, WS_OP_TEXT, "ab", 2);
    struct bench_ws_rx rx;
    bench_ws_rx_init(&rx, UINT64_MAX);
    size_t used;
    assert_int_equal(bench_ws_rx_next(&rx, s, n, &used), BENCH_WS_DATA);
    assert_int_equal(used, 16);
    assert_ptr_equal(rx.data, s + 2); /* into the caller's bytes */
    assert_int_equal(rx.data_len, 14);
    assert_int_equal(rx.opcode, WS_OP_TEXT);
    assert_int_equal(bench_ws_rx_next(&rx, s + used, n - used, &used), BENCH_WS_DATA);
    assert_int_equal(used, 4);
    assert_memory_equal(rx.data, "ab", 2);
    assert_int_equal(bench_ws_rx_next(&rx, s + n, 0, &used), BENCH_WS_NEED);
    assert_int_equal(used, 0);
    assert_null(rx.buf);
    bench_ws_rx_fini(&rx);
}

static void test_lengths_and_cuts(void **state)
{
    static uint8_t s[200000];
    static char want[300000];
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        static char payload[70000];
        for (size_t j = 0; j < lens[i]; j++)
            payload[j] = (char)('a' + (i + j) % 26);
        size_t n = 0;
        put_frame(s, &n, 1, WS_OP_TEXT, payload, lens[i]);
        put_frame(s, &n, 1, WS_OP_PONG, "p", 1);
        snprintf(want, sizeof want, "D%zu:%.*s|C10:p|", lens[i], (int)lens[i], payload);
        check_cuts(s, n, UINT64_MAX, want);
        if (n <= 4096)
            check_guarded(*state, s, n);
    }
}

static void test_fragments_with_ping_between(void **state)
{
    uint8_t s[256];
    size_t n = 0;
    put_frame(s, &n, 0, WS_OP_TEXT, "hel", 3);
    put_frame(s, &n, 1, WS_OP_PING, "pi", 2);
    put_frame(s, &n, 0, WS_OP_CONT, "", 0);
    put_frame(s, &n, 1, WS_OP_CONT, "lo \xc3\xa9", 5); /* a code point split over frames ok */
    put_frame(s, &n, 1, WS_OP_CLOSE, "\x03\xe8", 2);
    check_cuts(s, n, UINT64_MAX, "C9:pi|D8:hello \xc3\xa9|C8:\x03\xe8|");
}

static void test_errors(void **state)
{
    uint8_t s[256];
    size_t n = 0;
    char want[64];
    /* A masked server frame. */
    n = ws_frame_header_encode(s, 1, WS_OP_TEXT, 2, mask1);
    memcpy(s + n, "ab", 2);
    check_cuts(s, n + 2, UINT64_MAX, "E1002");
    /* A reserved opcode after a good message: the message comes first. */
    n = 0;
    put_frame(s, &n, 1, WS_OP_TEXT, "ok", 2);
    s[n++] = 0x83;
    s[n++] = 0;
    check_cuts(s, n, UINT64_MAX, "D2:ok|E1002");
    /* A continuation with no message open. */
    n = 0;
    put_frame(s, &n, 1, WS_OP_CONT, "x", 1);
    check_cuts(s, n, UINT64_MAX, "E1002");
    /* Invalid UTF-8, whole or in fragments. */
    n = 0;
    put_frame(s, &n, 1, WS_OP_TEXT, "a\xff", 2);
    check_cuts(s, n, UINT64_MAX, "E1007");
    /* Over max_message, all fragments together; refused at the header. */
    n = 0;
    put_frame(s, &n, 0, WS_OP_TEXT, "0123456789", 10);
    put_frame(s, &n, 1, WS_OP_CONT, "0123456789", 10);
    check_cuts(s, n, 15, "E1009");
    snprintf(want, sizeof want, "D20:01234567890123456789|");
    check_cuts(s, n, 20, want);
    /* Sticky. */
    struct bench_ws_rx rx;
    bench_ws_rx_init(&rx, UINT64_MAX);
    size_t used;
    uint8_t bad[2] = {0x81, 0x80 | 1};
    assert_int_equal(bench_ws_rx_next(&rx, bad, 2, &used), -1002);
    n = 0;
    put_frame(s, &n, 1, WS_OP_TEXT, "ok", 2);
    assert_int_equal(bench_ws_rx_next(&rx, s, n, &used), -1002);
    assert_int_equal(used, 0);
    bench_ws_rx_fini(&rx);
}

/* Unmasks a client frame at f and returns its payload (copied, NUL-terminated) and length. */
static char *client_payload(const uint8_t *f, size_t n, size_t *plen)
{
    struct ws_frame_header h;
    int r = ws_frame_parse_header(f, n, WS_MASK_REQUIRED, &h);
    assert_true(r > 0);
    assert_int_equal(h.fin, 1);
    assert_int_equal((size_t)r + h.payload_len, n);
    char *p = malloc(h.payload_len + 1);
    memcpy(p, f + r, h.payload_len);
    ws_unmask((uint8_t *)p, h.payload_len, h.mask, 0);
    p[h.payload_len] = 0;
    *plen = h.payload_len;
    return p;
}

static void test_chat_frame_round_trip(void **state)
{
    static const size_t sizes[] = {1, 20, 64, 125, 126, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct bench_ws_stamp st = {.run = 123456789012345ull,
                                    .sched_us = 5000000000ull,
                                    .sent_us = 5000000017ull,
                                    .seq = UINT64_MAX},
                              back;
        size_t cap = bench_ws_chat_frame_max(sizes[i]);
        uint8_t *f = malloc(cap);
        assert_int_equal(bench_ws_chat_frame(f, cap - 1, &st, sizes[i], mask1), 0);
        size_t n = bench_ws_chat_frame(f, cap, &st, sizes[i], mask1), plen;
        assert_true(n > 0 && n <= cap);
        char *p = client_payload(f, n, &plen);
        assert_memory_equal(p, "{\"type\":\"msg\",\"text\":\"", 22);
        struct bench_chat m;
        bench_ws_chat_scan(p, plen, &m);
        assert_int_equal(m.type, BENCH_CHAT_MSG);
        assert_non_null(m.text);
        size_t stamp =
            (size_t)snprintf(NULL, 0, "wb:%llu:%llu:%llu:%llu:", (unsigned long long)st.run,
                             (unsigned long long)st.sched_us, (unsigned long long)st.sent_us,
                             (unsigned long long)st.seq);
        assert_int_equal(m.text_len, sizes[i] > stamp ? sizes[i] : stamp);
        assert_int_equal(bench_ws_stamp_parse(m.text, m.text_len, &back), 0);
        assert_memory_equal(&back, &st, sizeof st);
        for (size_t j = stamp; j < m.text_len; j++)
            assert_int_equal(m.text[j], 'x');
        free(p);
        free(f);
    }
}

static void test_chat_scan(void **state)
{
    struct bench_chat m;
    const char *s =
        "{\"type\":\"msg\",\"room\":\"r\",\"from\":\"text\",\"text\":\"a\\\"b\\\\\",\"ts\":1}";
    bench_ws_chat_scan(s, strlen(s), &m);
    assert_int_equal(m.type, BENCH_CHAT_MSG);
    assert_int_equal(m.text_len, 6);
    assert_memory_equal(m.text, "a\\\"b\\\\", 6);

    s = "{\"type\":\"joined\",\"room\":\"r\",\"name\":\"n\",\"members\":42}";
    bench_ws_chat_scan(s, strlen(s), &m);
    assert_int_equal(m.type, BENCH_CHAT_JOINED);
    assert_int_equal(m.members, 42);
    assert_null(m.text);

    s = "{ \"type\" : \"presence\", \"room\":\"r\",\"name\":\"\\\"type\\\":\\\"msg\","
        "\"event\":\"join\",\"members\": 7 }";
    bench_ws_chat_scan(s, strlen(s), &m);
    assert_int_equal(m.type, BENCH_CHAT_PRESENCE);
    assert_int_equal(m.members, 7);

    s = "{\"type\":\"error\",\"error\":\"invalid JSON message\"}";
    bench_ws_chat_scan(s, strlen(s), &m);
    assert_int_equal(m.type, BENCH_CHAT_ERROR);

    /* Keys below the top level, values that look like keys, unknown types, truncation. */
    static const char *const other[] = {
        "{\"x\":{\"type\":\"msg\"}}",
        "{\"a\":\"type\",\"b\":\"msg\"}",
        "{\"type\":\"nope\"}",
        "{\"type\":\"msg",
        "{\"type\":1}",
        "",
        "\"type\":\"msg\"",
        "[{\"type\":\"msg\"}]",
        "{\"type\":\"msgs\"}",
        "{\"type\":\"ms\"}",
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        bench_ws_chat_scan(other[i], strlen(other[i]), &m);
        assert_int_equal(m.type, BENCH_CHAT_OTHER);
    }
    s = "{\"type\":\"msg\",\"text\":\"abc";
    bench_ws_chat_scan(s, strlen(s), &m);
    assert_null(m.text);
}

static void test_stamp_parse(void **state)
{
    struct bench_ws_stamp st;
    assert_int_equal(bench_ws_stamp_parse("wb:1:2:3:4:xxxx", 15, &st), 0);
    assert_true(st.run == 1 && st.sched_us == 2 && st.sent_us == 3 && st.seq == 4);
    assert_int_equal(bench_ws_stamp_parse("wb:1:2:3:4:", 11, &st), 0);
    static const char *const bad[] = {
        "wb:1:2:3:4",   "wb:1:2:3:", "wb::2:3:4:", "wx:1:2:3:4:",
        "wb:1:2:-3:4:", "hello",     "",           "wb:18446744073709551616:2:3:4:", /* 2^64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bench_ws_stamp_parse(bad[i], strlen(bad[i]), &st), -1);
    assert_int_equal(bench_ws_stamp_parse("wb:18446744073709551615:0:0:0:", 30, &st), 0);
    assert_true(st.run == UINT64_MAX);
    /* The length given bounds the parse, NUL or not. */
    assert_int_equal(bench_ws_stamp_parse("wb:1:2:3:4:", 10, &st), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_message_no_copy),
        cmocka_unit_test_setup_teardown(test_lengths_and_cuts, guard_setup, guard_teardown),
        cmocka_unit_test(test_fragments_with_ping_between),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_chat_frame_round_trip),
        cmocka_unit_test(test_chat_scan),
        cmocka_unit_test(test_stamp_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
