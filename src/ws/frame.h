/* ws_frame: weft's WebSocket (RFC 6455) frame codec.
 *
 * Pure: bytes in, results out; no I/O, no allocation, no globals but const tables. Four parts:
 * - the header decoder, resumable in the picohttpparser way: pass everything received so far, get
 *   0 until the header is complete, and an error as soon as the bytes seen so far prove one;
 * - ws_unmask, an in-place XOR that can resume at any offset of a payload split over reads;
 * - the message assembler (struct ws_msg), which enforces the fragmentation rules, the message
 *   size limit and UTF-8 validity of text messages across fragments, without buffering anything:
 *   the caller keeps the payload bytes where it wants;
 * - the encoders for frame headers and close frames.
 * Errors are negative close codes (-1002, -1007, -1009): the caller closes with -rc. */
#ifndef WEFT_WS_FRAME_H
#define WEFT_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ws/utf8.h"

/* Opcodes (RFC 6455 5.2). 3..7 and 11..15 are reserved and refused. */
#define WS_OP_CONT 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BIN 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xA

/* Close codes (RFC 6455 7.4.1). NO_STATUS and ABNORMAL are for the application only: never
 * sent, refused when received. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_NO_STATUS 1005
#define WS_CLOSE_ABNORMAL 1006
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

#define WS_MAX_HEADER 14 /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_MAX_CONTROL_PAYLOAD 125
#define WS_MAX_CLOSE_REASON 123 /* a control payload less the 2-byte code */

/* Masking rules for ws_frame_parse_header (RFC 6455 5.1). */
#define WS_MASK_ANY 0       /* accept both */
#define WS_MASK_REQUIRED 1  /* server side: client frames must be masked */
#define WS_MASK_FORBIDDEN 2 /* client side: server frames must not be masked */

/* 1 for close, ping, pong and the reserved control opcodes 11..15. */
static inline int ws_opcode_is_control(unsigned opcode)
{
    return (opcode & 0x8) != 0;
}

/* 1 for the six opcodes RFC 6455 defines, else 0. */
static inline int ws_opcode_known(unsigned opcode)
{
    return opcode <= WS_OP_BIN || (opcode >= WS_OP_CLOSE && opcode <= WS_OP_PONG);
}

struct ws_frame_header {
    unsigned fin : 1, rsv : 3, opcode : 4, masked : 1;
    uint8_t mask[4];      /* zeros when not masked */
    uint64_t payload_len; /* < 2^63 */
    size_t header_len;    /* 2, 4, 6, 8, 10 or 14 */
};

/* Decodes a frame header from p[0..n) (n may exceed the header: the payload may follow).
 * Returns the header length (> 0) and fills *h; 0 when more bytes are needed; or -1002 as soon
 * as the bytes seen prove a protocol error: reserved bits set (weft negotiates no extension),
 * a reserved opcode, a control frame not FIN or with a payload over 125 bytes, a length not in
 * its minimal form (16-bit below 126, 64-bit below 65536) or with the top bit set, or a mask bit
 * that mask_rule (WS_MASK_*) refuses. *h is written only when the result is > 0. */
int ws_frame_parse_header(const uint8_t *p, size_t n, int mask_rule, struct ws_frame_header *h);

/* XORs p[0..n) in place with the mask, p[0] being byte `offset` of the payload, so a payload
 * split over reads is unmasked piece by piece with the offset of each piece. Masking is the same
 * operation: the client uses it to mask what it sends. */
void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* Results of ws_msg_frame and ws_msg_payload besides negative close codes. */
#define WS_MSG_MORE 0     /* the current frame's payload is not complete */
#define WS_MSG_FRAGMENT 1 /* a data frame without FIN is complete: the message goes on */
#define WS_MSG_MESSAGE 2  /* the FIN frame of a data message is complete: the message is done */
#define WS_MSG_CONTROL 3  /* a control frame's payload is complete: act on ping/pong/close */

/* The message assembler: one per connection, fed every frame in order. */
struct ws_msg {
    uint64_t max_message; /* limit on a data message's payload (all fragments) */
    uint64_t msg_len;     /* payload bytes announced so far by the open message's frames */
    uint64_t frame_left;  /* payload bytes of the current frame still to come */
    struct ws_utf8 utf8;  /* across the fragments of a text message */
    uint8_t msg_opcode;   /* WS_OP_TEXT or WS_OP_BIN of the open (or last) data message */
    uint8_t msg_open;     /* a data message has started and its FIN frame has not ended */
    uint8_t frame_opcode; /* opcode of the current frame as sent (WS_OP_CONT for fragments) */
    uint8_t frame_fin;    /* FIN bit of the current frame */
    uint8_t in_frame;     /* between a header and the end of its payload */
    int error;            /* 0, or the negative close code already returned: sticky */
};

/* Starts a connection's assembler; max_message bounds each data message's payload, all
 * fragments together (UINT64_MAX for no limit). */
void ws_msg_init(struct ws_msg *m, uint64_t max_message);

/* Takes the header of the next frame (parsed by ws_frame_parse_header, or built by the caller:
 * the control frame rules are checked again). Call it only when the previous frame has ended.
 * Returns WS_MSG_MORE when payload bytes follow, the frame's end event (WS_MSG_FRAGMENT,
 * WS_MSG_MESSAGE or WS_MSG_CONTROL) at once for an empty payload, or a negative close code:
 *   -1002 a continuation frame with no message open, a text or binary frame while one is open
 *   -1009 the message's payload would exceed max_message (refused before any payload arrives)
 *   -1007 an empty FIN frame ends a text message inside a code point */
int ws_msg_frame(struct ws_msg *m, const struct ws_frame_header *h);

/* Takes the next n payload bytes of the current frame, already unmasked; n must not exceed
 * m->frame_left. Returns WS_MSG_MORE while the frame has more to come, its end event when
 * this completes it, or -1007 as soon as a text message is not valid UTF-8, including a FIN
 * frame that ends inside a code point. Fragments may split code points. */
int ws_msg_payload(struct ws_msg *m, const uint8_t *p, size_t n);

/* 1 when a received close code is valid on the wire: 1000..1003, 1007..1014, 3000..4999. */
int ws_close_code_valid(unsigned code);

/* Parses a close frame's payload (unmasked, complete). Empty: *code = WS_CLOSE_NO_STATUS and an
 * empty reason. Returns 0, -1002 for a 1-byte payload, a payload over 125 bytes or an invalid
 * code, -1007 for a reason that is not valid UTF-8. The reason points into p. */
int ws_close_parse(const uint8_t *p, size_t n, uint16_t *code, const uint8_t **reason,
                   size_t *reason_len);

/* Writes a frame header with RSV bits clear and the minimal length form, masked with
 * mask_or_null when given (client frames). Returns its length (2..14), or 0 for a frame that
 * must not be sent: unknown opcode, len >= 2^63, a control frame not FIN or over 125 bytes. */
size_t ws_frame_header_encode(uint8_t out[WS_MAX_HEADER], int fin, int opcode, uint64_t len,
                              const uint8_t *mask_or_null);

/* Writes a whole close frame (header and payload, masked with mask_or_null when given) to out.
 * code 0 sends no status (reason must then be NULL or empty); otherwise code must satisfy
 * ws_close_code_valid. reason (NULL for none) must be valid UTF-8 and is cut, at a code point
 * boundary, to WS_MAX_CLOSE_REASON bytes. Returns the frame's length, or 0 when cap is too
 * small or the arguments are refused. At most 2 + 4 + 125 bytes. */
size_t ws_close_encode(uint8_t *out, size_t cap, uint16_t code, const char *reason,
                       const uint8_t *mask_or_null);

#endif
