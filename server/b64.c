/*
 * b64.c — base64 (RFC 4648), the one copy every protocol uses: strictly for credentials
 * (HTTP Basic, SASL, DKIM keys), where anything malformed is refused; with optional padding
 * for RFC 2047 encoded words; and leniently for MIME bodies, where real mail has line
 * breaks, junk and early padding.
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

ssize_t b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outmax, unsigned flags)
{
    unsigned bits = 0;
    int nbits = 0, pad = 0;
    size_t o = 0, sextets = 0;

    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c == '=') {
            /* MIME bodies: padding ends the data, whatever follows (RFC 2045 §6.8). */
            if (flags & B64_SKIP_JUNK)
                break;
            pad++;
            continue;
        }
        if (pad) /* data after padding */
            return -1;
        if ((v = b64_value(c)) < 0) {
            if (flags & B64_SKIP_JUNK)
                continue; /* line breaks and junk between groups, as mail readers do */
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
    if (pad > 2 || (sextets + (size_t)pad) % 4 == 1 || sextets % 4 == 1)
        return -1;
    /* Strict input is whole 4-character quanta: padding where it is due. */
    if (!(flags & (B64_PAD_OPTIONAL | B64_SKIP_JUNK)) && (sextets + (size_t)pad) % 4 != 0)
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
