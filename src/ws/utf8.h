/* ws_utf8: an incremental UTF-8 validator for WebSocket text messages and close reasons.
 *
 * Pure: no I/O, no allocation, no globals but const tables. The state is one word carried across
 * calls, so a message split over frames and reads is validated as its bytes arrive, without
 * buffering. Validation follows RFC 3629 (Unicode table 3-7): overlong forms, surrogates
 * (U+D800..U+DFFF), code points above U+10FFFF, 5- and 6-byte forms and stray continuation bytes
 * are refused. A byte is refused as soon as no continuation could make the input valid (e.g. the
 * second byte of "E0 80", of "ED A0" or of "F4 90"), which RFC 6455 8.1 asks for. */
#ifndef WEFT_WS_UTF8_H
#define WEFT_WS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Results of ws_utf8_feed. */
#define WS_UTF8_OK 0       /* valid so far and at a code point boundary */
#define WS_UTF8_PARTIAL 1  /* valid so far but inside a code point */
#define WS_UTF8_INVALID -1 /* no continuation can make it valid; sticky */

struct ws_utf8 {
    uint32_t state; /* an internal DFA state; 0 is the boundary state */
};

/* Starts a new text (a message, a close reason). */
static inline void ws_utf8_init(struct ws_utf8 *u)
{
    u->state = 0;
}

/* Validates p[0..n) as the continuation of everything fed since ws_utf8_init. Returns
 * WS_UTF8_OK, WS_UTF8_PARTIAL or WS_UTF8_INVALID; once invalid, every later call says so. n may
 * be 0 (p may then be NULL): the result describes the text so far. */
int ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n);

/* Whole-buffer check: 1 when p[0..n) is complete, valid UTF-8, else 0. */
int ws_utf8_valid(const uint8_t *p, size_t n);

#endif
