/*
 * msg.c — how a message enters a mailbox, whoever brings it (SMTP delivery, IMAP APPEND,
 * ActiveSync, the admin CLI): one function, so every message is stored the same way —
 * CRLF line ends, and the parsed-structure cache computed once beside it — and folder
 * paths ("Archive.Inbox.2023") are resolved the same way everywhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/mail.h"
#include "mail/mime.h"

int mail_normalize(const char *in, size_t len, char **out, size_t *outlen)
{
    size_t extra = 0, o = 0;
    char *buf;

    /* An mbox "From " separator line is not part of the message. */
    if (len >= 5 && memcmp(in, "From ", 5) == 0) {
        const char *lf = memchr(in, '\n', len);
        size_t skip = lf ? (size_t)(lf - in) + 1 : len;
        in += skip;
        len -= skip;
    }
    for (size_t i = 0; i < len; i++)
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            extra++;
    if (!(buf = malloc(len + extra + 1)))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            buf[o++] = '\r';
        buf[o++] = in[i];
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return 0;
}

int mail_store_message(struct store_user *u, int64_t folder_id, const struct mail_new *m,
                       struct store_item *out, struct store_err *err)
{
    char *norm = NULL;
    void *meta = NULL;
    size_t nlen = 0, mlen = 0;
    int rc;

    if (mail_normalize(m->data, m->len, &norm, &nlen) < 0) {
        if (err) {
            err->code = STORE_ENOMEM;
            snprintf(err->msg, sizeof(err->msg), "out of memory");
        }
        return STORE_ENOMEM;
    }
    /* Parsed once here, so no reader ever parses it again (mime_cache.c). */
    if (mime_cache_build(norm, nlen, &meta, &mlen) < 0) {
        free(norm);
        if (err) {
            err->code = STORE_ENOMEM;
            snprintf(err->msg, sizeof(err->msg), "out of memory");
        }
        return STORE_ENOMEM;
    }
    struct store_item_new in = {
        .body = norm,
        .body_len = nlen,
        .ctype = "message/rfc822",
        .flags = m->flags,
        .keywords = m->keywords,
        .idate = m->idate ? m->idate : time(NULL),
        .no_quota = m->no_quota,
        .meta = meta,
        .meta_len = mlen,
    };
    rc = store_item_add(u, folder_id, &in, out, err);
    free(norm);
    free(meta);
    return rc;
}

static int mail_folder_walk(struct store_user *u, const char *path, int counts,
                            struct store_folder *out)
{
    char part[256];
    int64_t parent = 0;
    const char *p = path;

    if (strcasecmp(path, "INBOX") == 0)
        return counts ? store_folder_by_role(u, STORE_ROLE_INBOX, out)
                      : store_folder_by_role_nocount(u, STORE_ROLE_INBOX, out);
    while (*p) {
        const char *dot = strchr(p, MAIL_HIER_SEP);
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n >= sizeof(part))
            return STORE_ENOTFOUND;
        memcpy(part, p, n);
        part[n] = '\0';
        /* Only the last level's counts are wanted; the levels above are just walked. */
        int last = !dot || !dot[1];
        /* INBOX is case-insensitive at the top level only (RFC 3501 §5.1). */
        if (parent == 0 && strcasecmp(part, "INBOX") == 0) {
            int rc = last && counts ? store_folder_by_role(u, STORE_ROLE_INBOX, out)
                                    : store_folder_by_role_nocount(u, STORE_ROLE_INBOX, out);
            if (rc != STORE_OK)
                return STORE_ENOTFOUND;
        } else if ((last && counts ? store_folder_find(u, parent, part, out)
                                   : store_folder_find_nocount(u, parent, part, out)) != STORE_OK) {
            return STORE_ENOTFOUND;
        }
        if (out->cls != STORE_CLASS_MAIL)
            return STORE_ENOTFOUND; /* calendars and the like are not mail folders */
        parent = out->id;
        p = dot ? dot + 1 : p + n;
    }
    return parent ? STORE_OK : STORE_ENOTFOUND;
}

int mail_folder_resolve(struct store_user *u, const char *path, struct store_folder *out)
{
    return mail_folder_walk(u, path, 1, out);
}

int mail_folder_resolve_nocount(struct store_user *u, const char *path, struct store_folder *out)
{
    return mail_folder_walk(u, path, 0, out);
}
