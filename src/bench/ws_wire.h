/* ws_wire: the pure parts of `weft bench`'s ws:// client (ws_client.c holds the loop).
 *
 * - a reader of server frames from a byte stream, on top of ws/frame.h (the codec the server and
 *   `weft chat` use): it enforces the same rules, answers with whole messages and control frames,
 *   and copies only a message that arrives in pieces;
 * - the client's chat message, {"type":"msg","text":"..."}, framed and masked in one pass;
 * - a scan of weft's chat messages (compact JSON as the server writes it) for the few fields the
 *   load generator needs, so no JSON parser runs per delivery;
 * - the stamp at the start of each text: the run, the scheduled and the actual send time and a
 *   sequence number, which is how each subscriber measures fan-out latency.
 * No I/O, no clock, no globals. Fuzzed by tests/fuzz/fuzz_bench_ws.c. */
#ifndef WEFT_BENCH_WS_WIRE_H
#define WEFT_BENCH_WS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "ws/frame.h"

/* Results of bench_ws_rx_next besides negative close codes. */
#define BENCH_WS_NEED 0    /* the bytes given hold no further event */
#define BENCH_WS_DATA 1    /* a data message is complete: rx->data, rx->data_len, rx->opcode */
#define BENCH_WS_CONTROL 2 /* a control frame is complete: rx->ctl_opcode, rx->ctl, rx->ctl_len */

struct bench_ws_rx {
    struct ws_msg m;
    struct ws_frame_header h; /* of the current frame */
    uint8_t opcode;           /* WS_OP_TEXT or WS_OP_BIN: the last data message */
    uint8_t ctl_opcode;       /* WS_OP_CLOSE, WS_OP_PING or WS_OP_PONG: the last control frame */
    size_t ctl_len;
    uint8_t ctl[WS_MAX_CONTROL_PAYLOAD];
    const uint8_t *data; /* the last data message: into the caller's bytes or into buf */
    size_t data_len;
    uint8_t *buf; /* a data message that arrives over several reads or frames */
    size_t buf_len, buf_cap;
};

/* Starts a connection's reader; max_message bounds a data message (all fragments). */
void bench_ws_rx_init(struct bench_ws_rx *rx, uint64_t max_message);
void bench_ws_rx_fini(struct bench_ws_rx *rx);

/* Reads server frames (unmasked, RFC 6455) from p[0..n), the bytes that follow those consumed
 * by the earlier calls. Stops at the first event and sets *used to the bytes consumed: returns
 * BENCH_WS_DATA or BENCH_WS_CONTROL, BENCH_WS_NEED when nothing more can be decoded (an
 * incomplete header is left unconsumed: pass it again with what follows), or a negative close
 * code: -1002 (protocol), -1007 (invalid UTF-8), -1009 (over max_message), -1011 (out of memory);
 * errors are sticky. rx->data is valid until the next call and, when it points into p, while
 * p's bytes stay where they are. */
int bench_ws_rx_next(struct bench_ws_rx *rx, const uint8_t *p, size_t n, size_t *used);

/* What the sender puts at the start of each message's text, in decimal:
 * "wb:RUN:SCHED:SENT:SEQ:", then 'x' up to the text size asked for. */
struct bench_ws_stamp {
    uint64_t run;      /* the run's id: texts of other runs or other clients are not ours */
    uint64_t sched_us; /* when the message was due (open loop), else = sent_us */
    uint64_t sent_us;  /* when it was written */
    uint64_t seq;      /* 0, 1, 2 ... per run */
};

#define BENCH_WS_STAMP_MAX (3 + 4 * 21) /* "wb:" and four numbers of up to 20 digits and ':' */

/* 0 and *s when text[0..n) starts with a stamp, else -1. */
int bench_ws_stamp_parse(const char *text, size_t n, struct bench_ws_stamp *s);

/* Bytes bench_ws_chat_frame needs for a text of text_size bytes. */
size_t bench_ws_chat_frame_max(size_t text_size);

/* Writes one masked client frame {"type":"msg","text":"STAMP xxx..."} whose text is the stamp
 * padded to text_size bytes (or the stamp alone when it is longer) to out. Returns the frame's
 * length, or 0 when cap is below bench_ws_chat_frame_max(text_size). */
size_t bench_ws_chat_frame(uint8_t *out, size_t cap, const struct bench_ws_stamp *s,
                           size_t text_size, const uint8_t mask[4]);

/* Writes one masked client frame (FIN) of opcode with payload p[0..n) to out, which holds
 * WS_MAX_HEADER + n bytes. Returns its length, or 0 for a frame ws_frame_header_encode refuses
 * (a control payload over 125 bytes). */
size_t bench_ws_frame(uint8_t *out, int opcode, const void *p, size_t n, const uint8_t mask[4]);

/* The kinds of chat message the load generator tells apart. */
enum bench_chat_type {
    BENCH_CHAT_OTHER,
    BENCH_CHAT_MSG,
    BENCH_CHAT_JOINED,
    BENCH_CHAT_PRESENCE,
    BENCH_CHAT_ERROR
};

struct bench_chat {
    enum bench_chat_type type;
    long members;     /* joined and presence: the room's members; -1 when absent */
    const char *text; /* msg: the "text" value as written, escapes left in; NULL when absent */
    size_t text_len;
};

/* Classifies one chat message p[0..n) by its top-level "type" and takes "members" or "text".
 * Not a JSON parser: a scan for `"key":` outside strings; anything it does not recognise is
 * BENCH_CHAT_OTHER. Always fills *out. */
void bench_ws_chat_scan(const char *p, size_t n, struct bench_chat *out);

#endif
