/* ws_handshake: Sec-WebSocket-Accept = base64(SHA-1(key + the RFC 6455 GUID)). */
#include "ws/handshake.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* The value of a base64 digit, or -1. */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* 16 bytes are 128 bits: 21 digits of 6 bits and a 22nd whose low 4 bits are padding, which
 * must be zero for the encoding to be the canonical one. */
static int key_valid(const char *key, size_t key_len)
{
    if (key_len != WS_KEY_LEN || key[22] != '=' || key[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (b64_value(key[i]) < 0)
            return 0;
    return (b64_value(key[21]) & 0x0f) == 0;
}

int ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1])
{
    if (key == NULL || !key_valid(key, key_len))
        return -1;
    unsigned char buf[WS_KEY_LEN + sizeof ws_guid - 1];
    unsigned char digest[SHA_DIGEST_LENGTH];
    memcpy(buf, key, WS_KEY_LEN);
    memcpy(buf + WS_KEY_LEN, ws_guid, sizeof ws_guid - 1);
    if (SHA1(buf, sizeof buf, digest) == NULL)
        return -1;
    /* EVP_EncodeBlock writes 4 * ceil(20 / 3) = 28 characters and a NUL. */
    if (EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH) != WS_ACCEPT_LEN)
        return -1;
    return 0;
}
