/* libFuzzer target for ws_frame: the header decoder, unmasking, the message assembler and close
 * payloads, driven the way a connection drives them over a byte stream.
 *
 * Besides sanitizer reports, it checks what must hold for every input: results are documented
 * codes; a header lies within the bytes given, its every prefix needs more bytes, it re-encodes
 * to the same bytes (the decoder accepts only minimal forms) and obeys the mask rule; a message
 * ends with as many bytes as its headers announced, within max_message, and a text message is
 * valid UTF-8; -1007 comes at the first chunk that makes the text invalid; -1009 only past the
 * limit; close payloads parse to valid codes and re-encode. And the stream fed whole, split in
 * two at a fuzzer-chosen point, and in small chunks must give the same events, payloads and
 * result: unmasking resumes at any offset and nothing depends on where reads end.
 *
 * Input layout: byte 0 picks the mask rule (bits 0-1) and max_message (bits 2-4), bytes 1-2 the
 * split point, byte 3 the chunk size; the rest is the stream. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

struct sim {
    int rule;
    uint64_t max_message;
    struct ws_msg m;
    uint8_t hdr[WS_MAX_HEADER];
    size_t have; /* header bytes buffered */
    int in_payload;
    struct ws_frame_header h;
    uint64_t off; /* payload bytes of the current frame so far */
    uint8_t ctrl[WS_MAX_CONTROL_PAYLOAD];
    size_t ctrl_len;
    uint8_t *msg; /* the current data message */
    size_t msg_len;
    uint64_t hash; /* FNV-1a over events and completed payloads */
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

static void on_close(struct sim *s)
{
    uint16_t code;
    const uint8_t *reason;
    size_t rlen;
    int r = ws_close_parse(s->ctrl, s->ctrl_len, &code, &reason, &rlen);
    check(r == 0 || r == -1002 || r == -1007, "close: documented result");
    mix_int(s, r);
    if (r < 0) {
        s->result = r;
        return;
    }
    mix_int(s, code);
    check(rlen == (s->ctrl_len ? s->ctrl_len - 2 : 0), "close: the reason is the rest");
    if (code == WS_CLOSE_NO_STATUS) {
        check(s->ctrl_len == 0, "close: no status only when empty");
        return;
    }
    check(ws_close_code_valid(code), "close: valid code");
    /* Re-encode when the reason holds no NUL (ws_close_encode takes a C string). */
    char text[WS_MAX_CONTROL_PAYLOAD + 1];
    if (memchr(reason, 0, rlen) != NULL)
        return;
    memcpy(text, reason, rlen);
    text[rlen] = '\0';
    uint8_t out[2 + WS_MAX_CONTROL_PAYLOAD];
    size_t n = ws_close_encode(out, sizeof out, code, text, NULL);
    check(n == 2 + s->ctrl_len && memcmp(out + 2, s->ctrl, s->ctrl_len) == 0,
          "close: re-encodes to the same payload");
}

/* Acts on an assembler result; returns 0 to go on. */
static int on_event(struct sim *s, int e, size_t chunk)
{
    if (e == WS_MSG_MORE)
        return 0;
    s->events++;
    mix_int(s, e);
    if (e < 0) {
        check(e == -1002 || e == -1007 || e == -1009, "documented close code");
        check(s->m.error == e, "errors are sticky");
        if (e == -1007) {
            struct ws_utf8 u;
            ws_utf8_init(&u);
            check(s->m.msg_opcode == WS_OP_TEXT && !ws_opcode_is_control(s->h.opcode),
                  "-1007 only for text");
            check(ws_utf8_feed(&u, s->msg, s->msg_len - chunk) != WS_UTF8_INVALID,
                  "-1007 at the first chunk that proves it");
            int all = ws_utf8_feed(&u, s->msg + s->msg_len - chunk, chunk);
            check(all == WS_UTF8_INVALID || (s->h.fin && s->m.frame_left == 0),
                  "-1007: invalid, or a FIN frame ends inside a code point");
        }
        if (e == -1009)
            check(s->h.payload_len > s->max_message - s->m.msg_len, "-1009 only past the limit");
        s->result = e;
        return -1;
    }
    switch (e) {
    case WS_MSG_CONTROL:
        check(ws_opcode_is_control(s->h.opcode), "control event for a control frame");
        check(s->ctrl_len == s->h.payload_len, "control payload complete");
        mix(s, s->ctrl, s->ctrl_len);
        if (s->h.opcode == WS_OP_CLOSE)
            on_close(s);
        if (s->h.opcode == WS_OP_PING) {
            uint8_t pong[WS_MAX_HEADER];
            check(ws_frame_header_encode(pong, 1, WS_OP_PONG, s->ctrl_len, NULL) == 2,
                  "a pong header for every ping");
        }
        break;
    case WS_MSG_FRAGMENT:
        check(!s->h.fin && !ws_opcode_is_control(s->h.opcode) && s->m.msg_open, "fragment event");
        break;
    case WS_MSG_MESSAGE:
        check(s->h.fin && !s->m.msg_open, "message event");
        check(s->msg_len == s->m.msg_len && s->msg_len <= s->max_message,
              "message length announced and within the limit");
        if (s->m.msg_opcode == WS_OP_TEXT)
            check(ws_utf8_valid(s->msg, s->msg_len), "text messages are valid UTF-8");
        mix_int(s, s->m.msg_opcode);
        mix(s, s->msg, s->msg_len);
        s->msg_len = 0;
        break;
    default:
        check(0, "documented event");
    }
    return s->result;
}

static void check_header(struct sim *s, int r, size_t n)
{
    const struct ws_frame_header *h = &s->h;
    check((size_t)r <= n && (size_t)r > s->have, "header within the bytes given, and new");
    check(h->header_len == (size_t)r && h->rsv == 0, "header fields");
    check(!(s->rule == WS_MASK_REQUIRED && !h->masked) &&
              !(s->rule == WS_MASK_FORBIDDEN && h->masked),
          "mask rule");
    uint8_t again[WS_MAX_HEADER];
    size_t k = ws_frame_header_encode(again, h->fin, h->opcode, h->payload_len,
                                      h->masked ? h->mask : NULL);
    check(k == (size_t)r && memcmp(again, s->hdr, k) == 0, "re-encodes to the same bytes");
    for (size_t i = 0; i < (size_t)r; i++) {
        struct ws_frame_header tmp;
        check(ws_frame_parse_header(s->hdr, i, s->rule, &tmp) == 0, "prefixes need more");
    }
}

/* Feeds p[0..n) (mutable: payloads are unmasked in place). */
static void feed(struct sim *s, uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && s->result == 0) {
        if (!s->in_payload) {
            size_t k = WS_MAX_HEADER - s->have < n - i ? WS_MAX_HEADER - s->have : n - i;
            memcpy(s->hdr + s->have, p + i, k);
            int r = ws_frame_parse_header(s->hdr, s->have + k, s->rule, &s->h);
            if (r == 0) {
                check(s->have + k < WS_MAX_HEADER, "14 bytes always decide");
                s->have += k;
                i += k;
                continue;
            }
            if (r < 0) {
                check(r == -1002, "header errors are -1002");
                s->events++;
                mix_int(s, r);
                s->result = r;
                return;
            }
            check_header(s, r, s->have + k);
            i += (size_t)r - s->have;
            s->have = 0;
            mix(s, s->hdr, (size_t)r);
            if (s->h.opcode == WS_OP_TEXT || s->h.opcode == WS_OP_BIN)
                s->msg_len = 0;
            s->off = 0;
            s->ctrl_len = 0;
            int e = ws_msg_frame(&s->m, &s->h);
            s->in_payload = e == WS_MSG_MORE;
            on_event(s, e, 0);
        } else {
            size_t k = s->m.frame_left < n - i ? (size_t)s->m.frame_left : n - i;
            if (s->h.masked)
                ws_unmask(p + i, k, s->h.mask, s->off);
            s->off += k;
            if (ws_opcode_is_control(s->h.opcode)) {
                memcpy(s->ctrl + s->ctrl_len, p + i, k);
                s->ctrl_len += k;
            } else {
                memcpy(s->msg + s->msg_len, p + i, k);
                s->msg_len += k;
            }
            int e = ws_msg_payload(&s->m, p + i, k);
            i += k;
            if (e != WS_MSG_MORE)
                s->in_payload = 0;
            on_event(s, e, ws_opcode_is_control(s->h.opcode) ? 0 : k);
        }
    }
}

static void sim_init(struct sim *s, int rule, uint64_t max_message, size_t n)
{
    memset(s, 0, sizeof *s);
    s->rule = rule;
    s->max_message = max_message;
    ws_msg_init(&s->m, max_message);
    s->msg = malloc(n + 1);
    s->hash = 0xcbf29ce484222325ull;
}

/* Runs the stream cut into pieces: at `split` first, then every `chunk` bytes. */
static void run(struct sim *s, const uint8_t *stream, size_t n, size_t split, size_t chunk)
{
    uint8_t *copy = malloc(n + 1);
    memcpy(copy, stream, n);
    feed(s, copy, split);
    for (size_t at = split; at < n && s->result == 0; at += chunk)
        feed(s, copy + at, n - at < chunk ? n - at : chunk);
    free(copy);
}

static void check_same(const struct sim *a, const struct sim *b)
{
    check(a->result == b->result, "same result however the stream is cut");
    check(a->events == b->events, "same events");
    check(a->hash == b->hash, "same frames and payloads");
    if (a->result == 0)
        check(a->in_payload == b->in_payload && a->have == b->have &&
                  a->m.frame_left == b->m.frame_left && a->msg_len == b->msg_len,
              "same state at the end");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t limits[8] = {0, 1, 3, 16, 125, 126, 1000, UINT64_MAX};
    if (size < 4)
        return 0;
    int rule = data[0] & 3;
    if (rule == 3)
        rule = WS_MASK_ANY;
    uint64_t max_message = limits[(data[0] >> 2) & 7];
    const uint8_t *stream = data + 4;
    size_t n = size - 4;
    size_t split = ((size_t)data[1] << 8 | data[2]) % (n + 1);
    size_t chunk = 1 + data[3] % 16;

    struct sim whole, two, small;
    sim_init(&whole, rule, max_message, n);
    sim_init(&two, rule, max_message, n);
    sim_init(&small, rule, max_message, n);
    run(&whole, stream, n, n, 1);
    run(&two, stream, n, split, n);
    run(&small, stream, n, 0, chunk);
    check_same(&whole, &two);
    check_same(&whole, &small);
    free(whole.msg);
    free(two.msg);
    free(small.msg);
    return 0;
}
