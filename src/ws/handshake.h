/* ws_handshake: the server's side of the WebSocket opening handshake key (RFC 6455 4.2.2).
 *
 * Pure apart from OpenSSL's SHA-1 and base64, which allocate nothing. */
#ifndef WEFT_WS_HANDSHAKE_H
#define WEFT_WS_HANDSHAKE_H

#include <stddef.h>

#define WS_KEY_LEN 24    /* base64 of 16 bytes */
#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

/* Computes Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (key[0..key_len), without
 * surrounding spaces) into out, NUL-terminated. Returns 0, or -1 when the key is not the
 * canonical base64 of 16 bytes: 24 characters, 22 of the base64 alphabet then "==", the last
 * of the 22 carrying no stray bits. */
int ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1]);

#endif
