/* ws_frame: the RFC 6455 frame header decoder and encoder, payload unmasking, the message
 * assembler and close frames.
 *
 * Choices where the RFC leaves room:
 * - Length encodings must be minimal (5.2 says "the minimal number of bytes MUST be used"), so a
 *   frame has one encoding and a length check cannot be dodged by padding.
 * - Errors are reported from the first byte that proves them: a header that can never be valid
 *   is refused after 1 or 2 bytes instead of waiting for up to 14.
 * - The message limit is checked against the lengths announced in headers, before the payload
 *   arrives, so an oversized message costs no bandwidth beyond its first header.
 * - Close codes 1012..1014 (registered with IANA after the RFC) are accepted; 1015 and the rest
 *   of 1000..2999 are not, 3000..4999 are (registered and private use). */
#include "ws/frame.h"

#include <assert.h>
#include <string.h>

#define PROTOCOL_ERROR (-WS_CLOSE_PROTOCOL)

int ws_frame_parse_header(const uint8_t *p, size_t n, int mask_rule, struct ws_frame_header *h)
{
    if (n < 1)
        return 0;
    unsigned fin = p[0] >> 7, rsv = (p[0] >> 4) & 7, opcode = p[0] & 0xf;
    if (rsv != 0 || !ws_opcode_known(opcode))
        return PROTOCOL_ERROR;
    if (ws_opcode_is_control(opcode) && !fin)
        return PROTOCOL_ERROR;

    if (n < 2)
        return 0;
    unsigned masked = p[1] >> 7, len7 = p[1] & 0x7f;
    if ((mask_rule == WS_MASK_REQUIRED && !masked) || (mask_rule == WS_MASK_FORBIDDEN && masked))
        return PROTOCOL_ERROR;
    if (ws_opcode_is_control(opcode) && len7 > WS_MAX_CONTROL_PAYLOAD)
        return PROTOCOL_ERROR;

    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    uint64_t len = len7;
    if (ext == 2) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        if (len < 126)
            return PROTOCOL_ERROR;
    } else if (ext == 8) {
        /* The top bit and the six high bytes are checked as they arrive: either one can prove
         * the error before the length is complete. */
        if (n < 3)
            return 0;
        if (p[2] & 0x80)
            return PROTOCOL_ERROR;
        if (n < 8)
            return 0;
        if ((p[2] | p[3] | p[4] | p[5] | p[6] | p[7]) == 0)
            return PROTOCOL_ERROR;
        if (n < 10)
            return 0;
        len = 0;
        for (size_t i = 2; i < 10; i++)
            len = len << 8 | p[i];
    }

    size_t hlen = 2 + ext + (masked ? 4 : 0);
    if (n < hlen)
        return 0;
    h->fin = fin;
    h->rsv = 0;
    h->opcode = opcode;
    h->masked = masked;
    if (masked)
        memcpy(h->mask, p + 2 + ext, 4);
    else
        memset(h->mask, 0, 4);
    h->payload_len = len;
    h->header_len = hlen;
    return (int)hlen;
}

void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    /* The key rotated so that key[0] applies to p[0]; eight bytes of it keep the phase on
     * every word, whatever p's alignment. */
    uint8_t key[8];
    for (size_t j = 0; j < 8; j++)
        key[j] = mask[(offset + j) & 3];
    uint64_t k;
    memcpy(&k, key, 8);

    size_t i = 0;
    for (; n - i >= 32; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        w[0] ^= k;
        w[1] ^= k;
        w[2] ^= k;
        w[3] ^= k;
        memcpy(p + i, w, 32);
    }
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= key[i & 7];
}

void ws_msg_init(struct ws_msg *m, uint64_t max_message)
{
    memset(m, 0, sizeof *m);
    m->max_message = max_message;
    ws_utf8_init(&m->utf8);
}

static int msg_fail(struct ws_msg *m, int code)
{
    m->error = code;
    m->in_frame = 0;
    return code;
}

/* The current frame's payload is complete: its event, after the end-of-message checks. */
static int frame_end(struct ws_msg *m)
{
    m->in_frame = 0;
    if (ws_opcode_is_control(m->frame_opcode))
        return WS_MSG_CONTROL;
    if (!m->frame_fin)
        return WS_MSG_FRAGMENT;
    m->msg_open = 0;
    if (m->msg_opcode == WS_OP_TEXT && ws_utf8_feed(&m->utf8, NULL, 0) != WS_UTF8_OK)
        return msg_fail(m, -WS_CLOSE_INVALID_DATA);
    return WS_MSG_MESSAGE;
}

int ws_msg_frame(struct ws_msg *m, const struct ws_frame_header *h)
{
    if (m->error)
        return m->error;
    assert(!m->in_frame && "ws_msg_frame before the previous frame ended");

    unsigned opcode = h->opcode;
    if (!ws_opcode_known(opcode) || h->rsv != 0 || h->payload_len >> 63)
        return msg_fail(m, PROTOCOL_ERROR);
    if (ws_opcode_is_control(opcode)) {
        if (!h->fin || h->payload_len > WS_MAX_CONTROL_PAYLOAD)
            return msg_fail(m, PROTOCOL_ERROR);
    } else {
        if (opcode == WS_OP_CONT && !m->msg_open)
            return msg_fail(m, PROTOCOL_ERROR);
        if (opcode != WS_OP_CONT) {
            if (m->msg_open)
                return msg_fail(m, PROTOCOL_ERROR);
            m->msg_open = 1;
            m->msg_opcode = (uint8_t)opcode;
            m->msg_len = 0;
            ws_utf8_init(&m->utf8);
        }
        if (h->payload_len > m->max_message - m->msg_len)
            return msg_fail(m, -WS_CLOSE_TOO_BIG);
        m->msg_len += h->payload_len;
    }
    m->frame_opcode = (uint8_t)opcode;
    m->frame_fin = h->fin;
    m->frame_left = h->payload_len;
    m->in_frame = 1;
    return m->frame_left == 0 ? frame_end(m) : WS_MSG_MORE;
}

int ws_msg_payload(struct ws_msg *m, const uint8_t *p, size_t n)
{
    if (m->error)
        return m->error;
    assert(m->in_frame && n <= m->frame_left && "payload beyond the current frame");

    m->frame_left -= n;
    if (!ws_opcode_is_control(m->frame_opcode) && m->msg_opcode == WS_OP_TEXT &&
        ws_utf8_feed(&m->utf8, p, n) == WS_UTF8_INVALID)
        return msg_fail(m, -WS_CLOSE_INVALID_DATA);
    return m->frame_left == 0 ? frame_end(m) : WS_MSG_MORE;
}

int ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

int ws_close_parse(const uint8_t *p, size_t n, uint16_t *code, const uint8_t **reason,
                   size_t *reason_len)
{
    if (n == 0) {
        *code = WS_CLOSE_NO_STATUS;
        *reason = p;
        *reason_len = 0;
        return 0;
    }
    if (n == 1 || n > WS_MAX_CONTROL_PAYLOAD)
        return PROTOCOL_ERROR;
    unsigned c = (unsigned)p[0] << 8 | p[1];
    if (!ws_close_code_valid(c))
        return PROTOCOL_ERROR;
    if (!ws_utf8_valid(p + 2, n - 2))
        return -WS_CLOSE_INVALID_DATA;
    *code = (uint16_t)c;
    *reason = p + 2;
    *reason_len = n - 2;
    return 0;
}

size_t ws_frame_header_encode(uint8_t out[WS_MAX_HEADER], int fin, int opcode, uint64_t len,
                              const uint8_t *mask_or_null)
{
    if (opcode < 0 || !ws_opcode_known((unsigned)opcode) || len >> 63)
        return 0;
    if (ws_opcode_is_control((unsigned)opcode) && (!fin || len > WS_MAX_CONTROL_PAYLOAD))
        return 0;

    uint8_t mbit = mask_or_null ? 0x80 : 0;
    size_t i;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        out[1] = (uint8_t)(mbit | len);
        i = 2;
    } else if (len <= 0xffff) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        i = 4;
    } else {
        out[1] = mbit | 127;
        for (size_t j = 0; j < 8; j++)
            out[2 + j] = (uint8_t)(len >> (56 - 8 * j));
        i = 10;
    }
    if (mask_or_null) {
        memcpy(out + i, mask_or_null, 4);
        i += 4;
    }
    return i;
}

size_t ws_close_encode(uint8_t *out, size_t cap, uint16_t code, const char *reason,
                       const uint8_t *mask_or_null)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (code == 0 ? rlen != 0 : !ws_close_code_valid(code))
        return 0;
    if (!ws_utf8_valid((const uint8_t *)reason, rlen))
        return 0;
    /* Cut before the continuation bytes of a code point that would not fit whole. */
    if (rlen > WS_MAX_CLOSE_REASON) {
        rlen = WS_MAX_CLOSE_REASON;
        while (rlen > 0 && ((uint8_t)reason[rlen] & 0xc0) == 0x80)
            rlen--;
    }

    size_t plen = code == 0 ? 0 : 2 + rlen;
    uint8_t hdr[WS_MAX_HEADER];
    size_t hlen = ws_frame_header_encode(hdr, 1, WS_OP_CLOSE, plen, mask_or_null);
    if (hlen + plen > cap)
        return 0;
    memcpy(out, hdr, hlen);
    if (plen) {
        out[hlen] = (uint8_t)(code >> 8);
        out[hlen + 1] = (uint8_t)code;
        if (rlen)
            memcpy(out + hlen + 2, reason, rlen);
    }
    if (mask_or_null)
        ws_unmask(out + hlen, plen, mask_or_null, 0);
    return hlen + plen;
}
