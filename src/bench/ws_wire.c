/* ws_wire: server frames in, client chat frames out, chat messages scanned, stamps. */
#include "bench/ws_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_INTERNAL (-WS_CLOSE_INTERNAL)

void bench_ws_rx_init(struct bench_ws_rx *rx, uint64_t max_message)
{
    memset(rx, 0, sizeof *rx);
    ws_msg_init(&rx->m, max_message);
}

void bench_ws_rx_fini(struct bench_ws_rx *rx)
{
    free(rx->buf);
    rx->buf = NULL;
    rx->buf_len = rx->buf_cap = 0;
}

/* Room for n more bytes in rx->buf, doubling: the announced length is not trusted up front. */
static int buf_reserve(struct bench_ws_rx *rx, size_t n)
{
    if (rx->buf_cap - rx->buf_len >= n)
        return 0;
    size_t cap = rx->buf_cap ? rx->buf_cap : 256;
    while (cap - rx->buf_len < n) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    uint8_t *nb = realloc(rx->buf, cap);
    if (!nb)
        return -1;
    rx->buf = nb;
    rx->buf_cap = cap;
    return 0;
}

static int rx_fail(struct bench_ws_rx *rx, int code, size_t off, size_t *used)
{
    if (rx->m.error == 0)
        rx->m.error = code; /* ws_msg's errors are sticky; so are the reader's own */
    *used = off;
    return rx->m.error;
}

static int rx_message(struct bench_ws_rx *rx, const uint8_t *data, size_t len)
{
    rx->data = len ? data : (const uint8_t *)"";
    rx->data_len = len;
    rx->opcode = rx->m.msg_opcode;
    return BENCH_WS_DATA;
}

int bench_ws_rx_next(struct bench_ws_rx *rx, const uint8_t *p, size_t n, size_t *used)
{
    size_t off = 0;
    for (;;) {
        int e;
        if (rx->m.error)
            return rx_fail(rx, rx->m.error, off, used);
        if (!rx->m.in_frame) {
            int r = ws_frame_parse_header(p + off, n - off, WS_MASK_FORBIDDEN, &rx->h);
            if (r == 0) {
                *used = off;
                return BENCH_WS_NEED;
            }
            if (r < 0)
                return rx_fail(rx, r, off, used);
            off += (size_t)r;
            int control = ws_opcode_is_control(rx->h.opcode);
            if (control)
                rx->ctl_len = 0;
            else if (rx->h.opcode != WS_OP_CONT)
                rx->buf_len = 0;
            e = ws_msg_frame(&rx->m, &rx->h);
            if (e == WS_MSG_MORE && !control && rx->h.fin && rx->h.opcode != WS_OP_CONT &&
                rx->h.payload_len <= n - off) {
                /* The common case, a whole message in one frame and all here: no copy. */
                size_t len = (size_t)rx->h.payload_len;
                e = ws_msg_payload(&rx->m, p + off, len);
                if (e < 0)
                    return rx_fail(rx, e, off, used);
                off += len;
                *used = off;
                return rx_message(rx, p + off - len, len);
            }
        } else {
            size_t k = n - off;
            if (k > rx->m.frame_left)
                k = (size_t)rx->m.frame_left;
            if (k == 0) {
                *used = off;
                return BENCH_WS_NEED;
            }
            if (ws_opcode_is_control(rx->h.opcode)) {
                memcpy(rx->ctl + rx->ctl_len, p + off, k);
                rx->ctl_len += k;
            } else {
                if (buf_reserve(rx, k) < 0)
                    return rx_fail(rx, ERR_INTERNAL, off, used);
                memcpy(rx->buf + rx->buf_len, p + off, k);
                rx->buf_len += k;
            }
            e = ws_msg_payload(&rx->m, p + off, k);
            off += k;
        }
        if (e < 0)
            return rx_fail(rx, e, off, used);
        if (e == WS_MSG_CONTROL) {
            rx->ctl_opcode = rx->h.opcode;
            *used = off;
            return BENCH_WS_CONTROL;
        }
        if (e == WS_MSG_MESSAGE) {
            *used = off;
            return rx_message(rx, rx->buf, rx->buf_len);
        }
        /* WS_MSG_MORE or WS_MSG_FRAGMENT: the frame or the message goes on. */
    }
}

/* Parses a decimal number of 1..20 digits ending with ':' at text[*i]; -1 when there is none
 * or it overflows. */
static int stamp_number(const char *text, size_t n, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *i;
    while (*i < n && text[*i] >= '0' && text[*i] <= '9') {
        unsigned d = (unsigned)(text[*i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        (*i)++;
    }
    if (*i == start || *i >= n || text[*i] != ':')
        return -1;
    (*i)++;
    *out = v;
    return 0;
}

int bench_ws_stamp_parse(const char *text, size_t n, struct bench_ws_stamp *s)
{
    size_t i = 3;
    struct bench_ws_stamp t;
    if (n < 3 || memcmp(text, "wb:", 3) != 0 || stamp_number(text, n, &i, &t.run) < 0 ||
        stamp_number(text, n, &i, &t.sched_us) < 0 || stamp_number(text, n, &i, &t.sent_us) < 0 ||
        stamp_number(text, n, &i, &t.seq) < 0)
        return -1;
    *s = t;
    return 0;
}

static const char chat_head[] = "{\"type\":\"msg\",\"text\":\"";
static const char chat_tail[] = "\"}";

size_t bench_ws_chat_frame_max(size_t text_size)
{
    size_t text = text_size > BENCH_WS_STAMP_MAX ? text_size : BENCH_WS_STAMP_MAX;
    return WS_MAX_HEADER + sizeof chat_head - 1 + text + sizeof chat_tail - 1;
}

size_t bench_ws_chat_frame(uint8_t *out, size_t cap, const struct bench_ws_stamp *s,
                           size_t text_size, const uint8_t mask[4])
{
    if (cap < bench_ws_chat_frame_max(text_size))
        return 0;
    char stamp[BENCH_WS_STAMP_MAX + 1];
    int k = snprintf(stamp, sizeof stamp, "wb:%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":",
                     s->run, s->sched_us, s->sent_us, s->seq);
    size_t slen = (size_t)k;
    size_t text = text_size > slen ? text_size : slen;
    size_t plen = sizeof chat_head - 1 + text + sizeof chat_tail - 1;
    size_t hl = ws_frame_header_encode(out, 1, WS_OP_TEXT, plen, mask);
    uint8_t *p = out + hl;
    memcpy(p, chat_head, sizeof chat_head - 1);
    p += sizeof chat_head - 1;
    memcpy(p, stamp, slen);
    memset(p + slen, 'x', text - slen);
    p += text;
    memcpy(p, chat_tail, sizeof chat_tail - 1);
    ws_unmask(out + hl, plen, mask, 0);
    return hl + plen;
}

size_t bench_ws_frame(uint8_t *out, int opcode, const void *p, size_t n, const uint8_t mask[4])
{
    size_t hl = ws_frame_header_encode(out, 1, opcode, n, mask);
    if (hl == 0)
        return 0;
    if (n)
        memcpy(out + hl, p, n);
    ws_unmask(out + hl, n, mask, 0);
    return hl + n;
}

/* The index of the quote that closes the string whose contents start at p[i], or n. */
static size_t string_end(const char *p, size_t n, size_t i)
{
    while (i < n) {
        const char *q = memchr(p + i, '"', n - i);
        if (!q)
            return n;
        size_t j = (size_t)(q - p), bs = 0;
        while (j - bs > i && p[j - bs - 1] == '\\')
            bs++;
        if (bs % 2 == 0)
            return j;
        i = j + 1;
    }
    return n;
}

static size_t skip_space(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    return i;
}

static int slice_is(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

static long scan_members(const char *p, size_t n, size_t i)
{
    long v = 0;
    size_t start = i;
    while (i < n && p[i] >= '0' && p[i] <= '9' && i - start < 18)
        v = v * 10 + (p[i++] - '0');
    return i > start ? v : -1;
}

void bench_ws_chat_scan(const char *p, size_t n, struct bench_chat *out)
{
    out->type = BENCH_CHAT_OTHER;
    out->members = -1;
    out->text = NULL;
    out->text_len = 0;
    const char *type = NULL;
    size_t type_len = 0;
    int depth = 0;
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == '"') {
            size_t ks = i + 1, ke = string_end(p, n, ks);
            if (ke >= n)
                break;
            i = skip_space(p, n, ke + 1);
            if (depth != 1 || i >= n || p[i] != ':')
                continue;
            /* A key of the top-level object: look at its value. */
            i = skip_space(p, n, i + 1);
            const char *k = p + ks;
            size_t klen = ke - ks;
            if (i < n && p[i] == '"' && (slice_is(k, klen, "type") || slice_is(k, klen, "text"))) {
                size_t vs = i + 1, ve = string_end(p, n, vs);
                if (ve >= n)
                    break;
                if (slice_is(k, klen, "type")) {
                    type = p + vs;
                    type_len = ve - vs;
                } else {
                    out->text = p + vs;
                    out->text_len = ve - vs;
                }
                i = ve + 1;
            } else if (slice_is(k, klen, "members")) {
                out->members = scan_members(p, n, i);
            }
            continue;
        }
        i++;
    }
    if (!type)
        return;
    if (slice_is(type, type_len, "msg"))
        out->type = BENCH_CHAT_MSG;
    else if (slice_is(type, type_len, "joined"))
        out->type = BENCH_CHAT_JOINED;
    else if (slice_is(type, type_len, "presence"))
        out->type = BENCH_CHAT_PRESENCE;
    else if (slice_is(type, type_len, "error"))
        out->type = BENCH_CHAT_ERROR;
}
