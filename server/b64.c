/*
 * b64.c — base64 (RFC 4648), the one copy every protocol uses: strictly for credentials
 * (HTTP Basic, SASL), where anything malformed is refused, and leniently for MIME bodies
 * and encoded words, where real mail has line breaks and missing padding.
 */
#include <string.h>

#include "server/server.h"

static int b64_value(unsigned char c)
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

static int b64_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

ssize_t b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outmax, int lenient)
{
    unsigned bits = 0;
    int nbits = 0, pad = 0;
    size_t o = 0, sextets = 0;

    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (lenient && b64_space(c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        /* Data after padding, or a character outside the alphabet. */
        if (pad || (v = b64_value(c)) < 0) {
            if (lenient && pad == 0)
                continue; /* junk in a MIME body is skipped, as mail readers do */
            return -1;
        }
        bits = bits << 6 | (unsigned)v;
        nbits += 6;
        sextets++;
        if (nbits >= 8) {
            nbits -= 8;
            if (o >= outmax)
                return -1;
            out[o++] = (unsigned char)(bits >> nbits);
            bits &= (1u << nbits) - 1;
        }
    }
    /* Strict input has nothing but alphabet and tail padding: whole 4-character quanta. */
    if (!lenient && (inlen % 4 != 0 || pad > 2 || sextets % 4 == 1))
        return -1;
    return (ssize_t)o;
}

size_t b64_encode(const unsigned char *in, size_t len, char *out, size_t outmax)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    if (outmax < (len + 2) / 3 * 4 + 1)
        return 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}
