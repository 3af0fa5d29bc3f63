/*
 * sasl.c — what the line protocols share for SASL: strict base64 decoding and the PLAIN
 * mechanism (RFC 4616). POP3 AUTH, IMAP AUTHENTICATE and SMTP AUTH all go through here, so
 * a malformed response is refused the same way everywhere.
 */
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "mail/mail.h"

static int sasl_b64_value(unsigned char c)
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

ssize_t mail_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outmax)
{
    size_t o = 0;

    if (inlen % 4 != 0)
        return -1;
    for (size_t i = 0; i < inlen; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char ch = (unsigned char)in[i + k];
            /* '=' only at the very end, at most two of them */
            if (ch == '=' && i + 4 == inlen && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad || (v[k] = sasl_b64_value(ch)) < 0)
                return -1;
        }
        unsigned bits =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        size_t n = 3 - (size_t)pad;
        if (o + n > outmax)
            return -1;
        for (size_t k = 0; k < n; k++)
            out[o++] = (unsigned char)(bits >> (16 - 8 * k));
    }
    return (ssize_t)o;
}

int mail_sasl_plain(const unsigned char *resp, size_t len, char *user, size_t userlen, char *pass,
                    size_t passlen)
{
    const unsigned char *nul1 = memchr(resp, 0, len);
    const unsigned char *nul2;
    size_t zlen, ulen, plen;

    if (!nul1)
        return -1;
    nul2 = memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - resp));
    if (!nul2)
        return -1;
    zlen = (size_t)(nul1 - resp);
    ulen = (size_t)(nul2 - nul1 - 1);
    plen = len - (size_t)(nul2 + 1 - resp);
    if (ulen == 0 || plen == 0 || ulen >= userlen || plen >= passlen)
        return -1;
    /* We log in users, not proxies: an authorization identity must be the user itself. */
    if (zlen &&
        (zlen != ulen || strncasecmp((const char *)resp, (const char *)nul1 + 1, ulen) != 0))
        return -1;
    memcpy(user, nul1 + 1, ulen);
    user[ulen] = '\0';
    memcpy(pass, nul2 + 1, plen);
    pass[plen] = '\0';
    return 0;
}
