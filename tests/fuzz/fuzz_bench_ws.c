/* libFuzzer target for bench/ws_wire: the load generator's reader of server frames and its scan
 * of chat messages and stamps, driven the way ws_client drives them over a byte stream.
 *
 * Besides sanitizer reports, it checks what must hold for every input: results are documented
 * codes; *used never exceeds the bytes given and a NEED leaves at most an incomplete header;
 * a data message lies in the bytes given or in the reader's buffer and within max_message; a
 * control payload is at most 125 bytes; the chat scan's text lies within its message; a stamp
 * that parses re-encodes, through the client's chat frame, to itself. And the stream fed whole,
 * split in two at a fuzzer-chosen point, and in small chunks gives the same events, payloads and
 * result: nothing depends on where reads end.
 *
 * Input layout: byte 0 picks max_message, bytes 1-2 the split point, byte 3 the chunk size; the
 * rest is the stream. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/ws_wire.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

struct sim {
    struct bench_ws_rx rx;
    uint64_t max_message;
    uint8_t *buf; /* bytes received and not consumed, as ws_client keeps them */
    size_t have;
    uint64_t hash; /* FNV-1a over events and payloads */
    size_t events;
    int result; /* 0, or the first negative code */
};

static void mix(struct sim *s, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        s->hash = (s->hash ^ b[i]) * 0x100000001b3ull;
}

static void mix_int(struct sim *s, int64_t v)
{
    mix(s, &v, sizeof v);
}

static int within(const void *p, size_t n, const void *base, size_t len)
{
    const uint8_t *a = p, *b = base;
    return n == 0 || (b && a >= b && a + n <= b + len);
}

/* A stamp that parses must come back the same through the client's frame and the scan. */
static void check_stamp(const struct bench_ws_stamp *st)
{
    uint8_t f[512];
    static const uint8_t mask[4] = {1, 2, 3, 4};
    size_t n = bench_ws_chat_frame(f, sizeof f, st, 0, mask);
    check(n > 0, "a stamp always frames");
    struct ws_frame_header h;
    int r = ws_frame_parse_header(f, n, WS_MASK_REQUIRED, &h);
    check(r > 0 && (size_t)r + h.payload_len == n, "a chat frame is one masked frame");
    ws_unmask(f + r, (size_t)h.payload_len, h.mask, 0);
    struct bench_chat m;
    bench_ws_chat_scan((const char *)f + r, (size_t)h.payload_len, &m);
    struct bench_ws_stamp back;
    check(m.type == BENCH_CHAT_MSG && m.text, "a chat frame scans as a message");
    check(bench_ws_stamp_parse(m.text, m.text_len, &back) == 0 &&
              memcmp(&back, st, sizeof back) == 0,
          "a stamp re-encodes to itself");
}

static void on_data(struct sim *s, const uint8_t *p, size_t n)
{
    const struct bench_ws_rx *rx = &s->rx;
    check(within(rx->data, rx->data_len, p, n) ||
              within(rx->data, rx->data_len, rx->buf, rx->buf_len),
          "a message lies in the bytes given or in the reader's buffer");
    check(rx->data_len <= s->max_message, "a message within max_message");
    check(rx->opcode == WS_OP_TEXT || rx->opcode == WS_OP_BIN, "a data opcode");
    if (rx->opcode == WS_OP_TEXT)
        check(ws_utf8_valid(rx->data, rx->data_len), "text is valid UTF-8");
    mix_int(s, rx->opcode);
    mix(s, rx->data, rx->data_len);
    struct bench_chat m;
    bench_ws_chat_scan((const char *)rx->data, rx->data_len, &m);
    check(m.type >= BENCH_CHAT_OTHER && m.type <= BENCH_CHAT_ERROR, "a documented chat type");
    check(!m.text || within(m.text, m.text_len, rx->data, rx->data_len), "text in the message");
    mix_int(s, m.type);
    mix_int(s, m.members);
    struct bench_ws_stamp st;
    if (m.text && bench_ws_stamp_parse(m.text, m.text_len, &st) == 0)
        check_stamp(&st);
}

/* Appends p[0..n) and decodes what it can, as ws_client does after a read. */
static void feed(struct sim *s, const uint8_t *p, size_t n)
{
    if (s->result)
        return;
    memcpy(s->buf + s->have, p, n);
    s->have += n;
    size_t off = 0;
    for (;;) {
        size_t used = SIZE_MAX;
        int e = bench_ws_rx_next(&s->rx, s->buf + off, s->have - off, &used);
        check(used <= s->have - off, "used within the bytes given");
        const uint8_t *at = s->buf + off;
        size_t len = s->have - off;
        off += used;
        if (e == BENCH_WS_NEED) {
            check(s->have - off < WS_MAX_HEADER, "NEED leaves an incomplete header at most");
            break;
        }
        s->events++;
        mix_int(s, e);
        if (e < 0) {
            check(e == -1002 || e == -1007 || e == -1009 || e == -1011, "documented close code");
            s->result = e;
            break;
        }
        if (e == BENCH_WS_DATA) {
            on_data(s, at, len);
        } else {
            check(e == BENCH_WS_CONTROL, "documented event");
            check(s->rx.ctl_len <= WS_MAX_CONTROL_PAYLOAD, "control payload bounded");
            check(s->rx.ctl_opcode == WS_OP_CLOSE || s->rx.ctl_opcode == WS_OP_PING ||
                      s->rx.ctl_opcode == WS_OP_PONG,
                  "a control opcode");
            mix_int(s, s->rx.ctl_opcode);
            mix(s, s->rx.ctl, s->rx.ctl_len);
        }
    }
    memmove(s->buf, s->buf + off, s->have - off);
    s->have -= off;
}

static void run(struct sim *s, uint64_t max_message, const uint8_t *stream, size_t n, size_t split,
                size_t chunk)
{
    memset(s, 0, sizeof *s);
    bench_ws_rx_init(&s->rx, max_message);
    s->max_message = max_message;
    s->buf = malloc(n + 1);
    s->hash = 0xcbf29ce484222325ull;
    feed(s, stream, split);
    for (size_t at = split; at < n && s->result == 0; at += chunk)
        feed(s, stream + at, n - at < chunk ? n - at : chunk);
    free(s->buf);
    bench_ws_rx_fini(&s->rx);
}

static void check_same(const struct sim *a, const struct sim *b)
{
    check(a->result == b->result, "same result however the stream is cut");
    check(a->events == b->events, "same events");
    check(a->hash == b->hash, "same frames and payloads");
    if (a->result == 0)
        check(a->have == b->have, "same bytes left");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t limits[8] = {0, 1, 3, 16, 125, 126, 1000, UINT64_MAX};
    if (size < 4)
        return 0;
    uint64_t max_message = limits[data[0] & 7];
    const uint8_t *stream = data + 4;
    size_t n = size - 4;
    size_t split = ((size_t)data[1] << 8 | data[2]) % (n + 1);
    size_t chunk = 1 + data[3] % 16;

    struct sim whole, two, small;
    run(&whole, max_message, stream, n, n, 1);
    run(&two, max_message, stream, n, split, n);
    run(&small, max_message, stream, n, 0, chunk);
    check_same(&whole, &two);
    check_same(&whole, &small);
    return 0;
}
