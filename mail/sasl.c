/*
 * sasl.c — what the line protocols share for SASL: the PLAIN mechanism (RFC 4616). POP3
 * AUTH, IMAP AUTHENTICATE and SMTP AUTH all go through here, so a malformed response is
 * refused the same way everywhere. Base64 itself is server/b64.c.
 */
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "mail/mail.h"

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
