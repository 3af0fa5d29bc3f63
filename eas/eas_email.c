/*
 * eas_email.c — the ActiveSync Email class (MS-ASEMAIL, MS-ASAIRS) from RFC 5322 messages
 * as the store keeps them: headers decoded to UTF-8 (RFC 2047), the body as plain text,
 * HTML or MIME with truncation and preview, attachments with references ItemOperations
 * and GetAttachment resolve, flags and keywords as Read / Flag / Categories. Version 2.5
 * gets the Email page's own Body / Attachments / MIMEData; 12.0 and later AirSyncBase.
 *
 * The part table comes from the message's structure cache (mail/mime_cache.c), so part
 * numbers in FileReferences are the same everywhere and the parse rules are the IMAP
 * ones. Client changes of Read / Flag / Categories become store flags and keywords, which
 * is what IMAP shows.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/sha.h>

#include "eas/eas_pim.h"
#include "eas/eas_sync.h"
#include "mail/mime.h"

#define EAS_PREVIEW_MAX 255

/* A parsed message for conversion: bytes, its cache view and an arena for temporaries. */
struct eas_msg {
    const char *data;
    size_t len;
    void *blob;
    struct mime_cache c;
    struct mime_arena a;
    const char *hdr;
    size_t hdr_len;
    long plain, html; /* part indexes of the text bodies, -1 none */
};

static int eas_msg_open(struct eas_msg *m, const char *msg, size_t len);
static void eas_msg_close(struct eas_msg *m);

/* ---- text helpers ----------------------------------------------------------------------- */

/* A header value unfolded and decoded to valid UTF-8; NULL when absent. */
static char *eas_hdr(struct eas_msg *m, const char *name)
{
    struct mime_field f;
    struct buf dec = {0}, clean = {0};
    char *v, *out;

    if (!mime_header_get(m->hdr, m->hdr_len, name, &f))
        return NULL;
    if (!(v = mime_unfold(&m->a, f.value, f.value_len)))
        return NULL;
    mime_header_decode(v, strlen(v), &dec);
    mime_utf8_clean(dec.p ? dec.p : "", dec.len, &clean);
    out = clean.oom ? NULL : mime_arena_strndup(&m->a, clean.p ? clean.p : "", clean.len);
    buf_free(&dec);
    buf_free(&clean);
    return out;
}

/* Length of the longest prefix of s[0..len) that is at most max bytes and does not cut a
 * UTF-8 sequence. */
static size_t eas_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/* The first n characters (code points). */
static size_t eas_utf8_chars(const char *s, size_t len, size_t n)
{
    size_t i = 0;

    while (i < len && n > 0) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
            i++;
        n--;
    }
    return i;
}

static void eas_put_utf8(struct buf *b, unsigned long cp)
{
    char t[4];

    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        cp = 0xfffd;
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        t[0] = (char)(0xc0 | (cp >> 6));
        t[1] = (char)(0x80 | (cp & 0x3f));
        buf_put(b, t, 2);
    } else if (cp < 0x10000) {
        t[0] = (char)(0xe0 | (cp >> 12));
        t[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        t[2] = (char)(0x80 | (cp & 0x3f));
        buf_put(b, t, 3);
    } else {
        t[0] = (char)(0xf0 | (cp >> 18));
        t[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        t[3] = (char)(0x80 | (cp & 0x3f));
        buf_put(b, t, 4);
    }
}

static const struct {
    const char *name;
    unsigned long cp;
} eas_entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},     {"quot", '"'},    {"apos", '\''},
    {"nbsp", 0xa0},    {"copy", 0xa9},    {"reg", 0xae},   {"euro", 0x20ac}, {"hellip", 0x2026},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"laquo", 0xab}, {"raquo", 0xbb},
};

/* Decodes one entity at s (after '&'); returns bytes consumed (0: not an entity). */
static size_t eas_entity(const char *s, size_t len, struct buf *out)
{
    size_t i = 0;
    unsigned long cp = 0;

    if (len > 1 && s[0] == '#') {
        int hex = len > 2 && (s[1] == 'x' || s[1] == 'X');
        i = hex ? 2 : 1;
        size_t start = i;
        while (i < len && i < 10 &&
               (hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i]))) {
            int d = isdigit((unsigned char)s[i]) ? s[i] - '0'
                                                 : (tolower((unsigned char)s[i]) - 'a' + 10);
            cp = cp * (hex ? 16 : 10) + (unsigned long)d;
            i++;
        }
        if (i == start)
            return 0;
        if (i < len && s[i] == ';')
            i++;
        eas_put_utf8(out, cp);
        return i;
    }
    for (size_t k = 0; k < sizeof(eas_entities) / sizeof(eas_entities[0]); k++) {
        size_t n = strlen(eas_entities[k].name);
        if (len > n && memcmp(s, eas_entities[k].name, n) == 0 && s[n] == ';') {
            eas_put_utf8(out, eas_entities[k].cp);
            return n + 1;
        }
    }
    return 0;
}

/* The name of the tag at s (after '<'), lower-cased into name. */
static void eas_tag_name(const char *s, size_t len, char *name, size_t namelen)
{
    size_t i = 0, o = 0;

    if (i < len && s[i] == '/')
        i++;
    while (i < len && o + 1 < namelen && isalnum((unsigned char)s[i]))
        name[o++] = (char)tolower((unsigned char)s[i++]);
    name[o] = '\0';
}

/* HTML to plain text for clients that asked for plain: tags dropped (script, style and
 * head with their content), block ends as line breaks, entities decoded, white space
 * collapsed as a browser would. */
static void eas_html_to_text(const char *s, size_t len, struct buf *out)
{
    static const char *const blocks[] = {"br", "p",  "div", "tr", "li",    "h1",         "h2",
                                         "h3", "h4", "h5",  "h6", "table", "blockquote", "hr"};
    int skip = 0, space = 0;
    char skipping[16] = "";

    for (size_t i = 0; i < len;) {
        if (s[i] == '<') {
            const char *gt = memchr(s + i, '>', len - i);
            size_t end = gt ? (size_t)(gt - s) + 1 : len;
            char name[16];
            int closing = i + 1 < len && s[i + 1] == '/';

            if (i + 4 <= len && memcmp(s + i, "<!--", 4) == 0) {
                const char *c = NULL;
                for (size_t k = i + 4; k + 3 <= len; k++)
                    if (memcmp(s + k, "-->", 3) == 0) {
                        c = s + k;
                        break;
                    }
                i = c ? (size_t)(c - s) + 3 : len;
                continue;
            }
            eas_tag_name(s + i + 1, end - i - 1, name, sizeof(name));
            if (skip) {
                if (closing && strcmp(name, skipping) == 0)
                    skip = 0;
            } else if (!closing && (!strcmp(name, "script") || !strcmp(name, "style") ||
                                    !strcmp(name, "head") || !strcmp(name, "title"))) {
                skip = 1;
                snprintf(skipping, sizeof(skipping), "%s", name);
            } else {
                for (size_t k = 0; k < sizeof(blocks) / sizeof(blocks[0]); k++)
                    if (!strcmp(name, blocks[k]) && (closing || !strcmp(name, "br") ||
                                                     !strcmp(name, "hr") || !strcmp(name, "li"))) {
                        if (out->len && out->p[out->len - 1] == ' ')
                            out->len--;
                        buf_puts(out, "\r\n");
                        space = 1;
                        break;
                    }
            }
            i = end;
            continue;
        }
        if (skip) {
            i++;
            continue;
        }
        if (s[i] == '&') {
            size_t n = eas_entity(s + i + 1, len - i - 1, out);
            if (n) {
                i += n + 1;
                space = 0;
                continue;
            }
        }
        if (isspace((unsigned char)s[i])) {
            if (!space)
                buf_putc(out, ' ');
            space = 1;
            i++;
            continue;
        }
        buf_putc(out, s[i++]);
        space = 0;
    }
}

/* Plain text as HTML for clients that asked for HTML only. */
static void eas_text_to_html(const char *s, size_t len, struct buf *out)
{
    buf_puts(out, "<html><body><div style=\"white-space: pre-wrap\">");
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '<':
            buf_puts(out, "&lt;");
            break;
        case '>':
            buf_puts(out, "&gt;");
            break;
        case '&':
            buf_puts(out, "&amp;");
            break;
        case '"':
            buf_puts(out, "&quot;");
            break;
        default:
            buf_putc(out, s[i]);
        }
    }
    buf_puts(out, "</div></body></html>");
}

/* ---- the message ------------------------------------------------------------------------- */

/* Is part i inside an attached message (its parts are not the message's own)? */
static int eas_in_attached(const struct eas_msg *m, size_t i)
{
    struct mime_cache_part p;
    uint32_t up;

    if (mime_cache_part(&m->c, i, &p) < 0)
        return 1;
    for (up = p.parent; up != MIME_PART_NONE && up != 0;) {
        struct mime_cache_part q;
        if (mime_cache_part(&m->c, up, &q) < 0)
            return 1;
        if (q.flags & MIME_PART_MESSAGE)
            return 1;
        up = q.parent;
    }
    return 0;
}

static void eas_find_bodies(struct eas_msg *m)
{
    m->plain = m->html = -1;
    for (size_t i = 0; i < m->c.nparts; i++) {
        struct mime_cache_part p;
        if (mime_cache_part(&m->c, i, &p) < 0 || !(p.flags & MIME_PART_TEXT) ||
            (p.flags & (MIME_PART_ATTACHMENT | MIME_PART_MULTIPART | MIME_PART_MESSAGE)) ||
            eas_in_attached(m, i))
            continue;
        if (m->plain < 0 && !strcmp(p.subtype.p, "plain"))
            m->plain = (long)i;
        else if (m->html < 0 && !strcmp(p.subtype.p, "html"))
            m->html = (long)i;
    }
}

static int eas_msg_open(struct eas_msg *m, const char *msg, size_t len)
{
    size_t bl;

    memset(m, 0, sizeof(*m));
    m->data = msg;
    m->len = len;
    if (mime_cache_build(msg, len, &m->blob, &bl) < 0 || mime_cache_open(m->blob, bl, &m->c) < 0) {
        free(m->blob);
        m->blob = NULL;
        return -1;
    }
    m->hdr = msg;
    m->hdr_len = m->c.hdr_size <= len ? (size_t)m->c.hdr_size : len;
    eas_find_bodies(m);
    return 0;
}

static void eas_msg_close(struct eas_msg *m)
{
    free(m->blob);
    mime_arena_free(&m->a);
    m->blob = NULL;
}

/* A part's content, transfer-decoded, and for text converted to UTF-8. */
static int eas_part_bytes(const struct eas_msg *m, size_t i, int text, struct buf *out)
{
    struct mime_cache_part p;
    struct buf raw = {0}, conv = {0};

    if (mime_cache_part(&m->c, i, &p) < 0 || p.body_off + p.body_len > m->len)
        return -1;
    if (mime_decode_cte(p.encoding.p, m->data + p.body_off, (size_t)p.body_len, &raw) < 0) {
        buf_free(&raw);
        buf_put(&raw, m->data + p.body_off, (size_t)p.body_len); /* unknown CTE: as is */
    }
    if (!text) {
        *out = raw;
        return raw.oom ? -1 : 0;
    }
    mime_charset_to_utf8(p.charset.len ? p.charset.p : "us-ascii", raw.p ? raw.p : "", raw.len,
                         &conv);
    mime_utf8_clean(conv.p ? conv.p : "", conv.len, out);
    buf_free(&raw);
    buf_free(&conv);
    return out->oom ? -1 : 0;
}

/* The body text in the type asked (plain or HTML), converting when the message lacks it. */
static int eas_body_text(const struct eas_msg *m, int type, struct buf *out)
{
    struct buf t = {0};
    int rc = 0;

    if (type == EAS_BODY_HTML) {
        if (m->html >= 0)
            return eas_part_bytes(m, (size_t)m->html, 1, out);
        if (m->plain >= 0 && (rc = eas_part_bytes(m, (size_t)m->plain, 1, &t)) == 0)
            eas_text_to_html(t.p ? t.p : "", t.len, out);
    } else {
        if (m->plain >= 0)
            return eas_part_bytes(m, (size_t)m->plain, 1, out);
        if (m->html >= 0 && (rc = eas_part_bytes(m, (size_t)m->html, 1, &t)) == 0)
            eas_html_to_text(t.p ? t.p : "", t.len, out);
    }
    buf_free(&t);
    if (!out->p)
        buf_put(out, "", 0);
    return rc < 0 || out->oom ? -1 : 0;
}

int eas_email_text(const char *msg, size_t len, int type, char **out, size_t *outlen, int *native)
{
    struct eas_msg m;
    struct buf b = {0};
    int rc;

    if (eas_msg_open(&m, msg, len) < 0)
        return -1;
    rc = eas_body_text(&m, type, &b);
    if (native)
        *native = m.html >= 0 ? EAS_BODY_HTML : EAS_BODY_PLAIN;
    eas_msg_close(&m);
    if (rc < 0) {
        buf_free(&b);
        return -1;
    }
    *out = b.p;
    *outlen = b.len;
    return 0;
}

int eas_email_part(const char *msg, size_t len, unsigned part, char **out, size_t *outlen,
                   char *ctype, size_t ctypelen)
{
    struct eas_msg m;
    struct mime_cache_part p;
    struct buf b = {0};
    int rc = -1;

    if (eas_msg_open(&m, msg, len) < 0)
        return -1;
    if (part == 0 || mime_cache_part(&m.c, part, &p) < 0 ||
        (p.flags & (MIME_PART_MULTIPART | MIME_PART_ROOT)))
        goto done;
    if (eas_part_bytes(&m, part, 0, &b) < 0)
        goto done;
    snprintf(ctype, ctypelen, "%s/%s", p.type.p, p.subtype.p);
    *out = b.p ? b.p : strdup("");
    *outlen = b.len;
    b.p = NULL;
    rc = *out ? 0 : -1;
done:
    buf_free(&b);
    eas_msg_close(&m);
    return rc;
}

/* ---- properties -------------------------------------------------------------------------- */

static void eas_date(char *out, size_t outlen, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    gmtime_r(&tt, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* DisplayTo: the display names (or addresses) of the To recipients, "; " separated. */
static void eas_display_to(struct eas_msg *m, struct buf *out)
{
    struct mime_field f;
    struct mime_addr *ad = NULL;

    if (!mime_header_get(m->hdr, m->hdr_len, "To", &f) ||
        mime_addr_parse(&m->a, f.value, f.value_len, &ad) < 0)
        return;
    for (; ad; ad = ad->next) {
        struct buf dec = {0};
        if (ad->kind != MIME_ADDR_MAILBOX)
            continue;
        if (out->len)
            buf_puts(out, "; ");
        if (ad->name && *ad->name) {
            mime_header_decode(ad->name, strlen(ad->name), &dec);
            mime_utf8_clean(dec.p ? dec.p : "", dec.len, out);
        } else {
            buf_puts(out, ad->mailbox ? ad->mailbox : "");
            if (ad->host && *ad->host) {
                buf_putc(out, '@');
                buf_puts(out, ad->host);
            }
        }
        buf_free(&dec);
    }
}

/* Importance 0 low, 1 normal, 2 high from Importance:, X-Priority: or Priority:. */
static int eas_importance(struct eas_msg *m)
{
    const char *v = eas_hdr(m, "Importance");

    if (v)
        return !strncasecmp(v, "high", 4) ? 2 : !strncasecmp(v, "low", 3) ? 0 : 1;
    if ((v = eas_hdr(m, "X-Priority")) && isdigit((unsigned char)*v))
        return *v <= '2' ? 2 : *v >= '4' ? 0 : 1;
    if ((v = eas_hdr(m, "Priority")))
        return !strncasecmp(v, "urgent", 6) ? 2 : !strncasecmp(v, "non-urgent", 10) ? 0 : 1;
    return 1;
}

static const char *eas_message_class(const struct eas_msg *m)
{
    struct mime_cache_part p;

    if (mime_cache_part(&m->c, 1, &p) == 0 && p.parent == 0) {
        if (!strcmp(p.type.p, "multipart") && !strcmp(p.subtype.p, "signed"))
            return "IPM.Note.SMIME.MultipartSigned";
        if (!strcmp(p.type.p, "application") &&
            (!strcmp(p.subtype.p, "pkcs7-mime") || !strcmp(p.subtype.p, "x-pkcs7-mime")))
            return "IPM.Note.SMIME";
    }
    return "IPM.Note";
}

/* MessageClass, and for an invitation (a text/calendar part with METHOD REQUEST or
 * CANCEL) the meeting class and MeetingRequest (eas_meeting.c), which make devices offer
 * their Accept / Decline buttons. */
static void eas_invitation(struct eas_doc *d, struct eas_node *parent, int version,
                           const struct eas_msg *m)
{
    const char *cls = eas_message_class(m), *meeting = NULL;
    struct mime_cache_part p;
    struct buf cal = {0};

    for (size_t i = 0; !strcmp(cls, "IPM.Note") && mime_cache_part(&m->c, i, &p) == 0; i++) {
        if (strcmp(p.type.p, "text") || strcmp(p.subtype.p, "calendar"))
            continue;
        /* as sent: iCalendar is UTF-8, and its line ends must stay */
        if (eas_part_bytes(m, i, 0, &cal) == 0 && cal.p &&
            (meeting = eas_meeting_class(cal.p, cal.len)))
            break;
        buf_free(&cal);
    }
    eas_add_text(d, parent, EAS_EMAIL_MESSAGECLASS, meeting ? meeting : cls);
    if (meeting)
        eas_meeting_request(d, parent, version, cal.p, cal.len);
    buf_free(&cal);
}

/* Keywords that are IMAP conventions rather than a user's categories. */
static int eas_system_keyword(const char *k, size_t n)
{
    static const char *const names[] = {"Junk", "NonJunk", "NotJunk"};

    if (n == 0 || k[0] == '$' || k[0] == '\\')
        return 1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && !strncasecmp(k, names[i], n))
            return 1;
    return 0;
}

static void eas_categories(struct eas_doc *d, struct eas_node *parent, const char *kw)
{
    struct eas_node *cats = NULL;

    for (const char *p = kw; *p;) {
        size_t n;
        while (*p == ' ')
            p++;
        n = strcspn(p, " ");
        if (n && !eas_system_keyword(p, n)) {
            if (!cats)
                cats = eas_add(d, parent, EAS_EMAIL_CATEGORIES);
            eas_add_textn(d, cats, EAS_EMAIL_CATEGORY, p, n);
        }
        p += n;
    }
    if (!cats)
        eas_add(d, parent, EAS_EMAIL_CATEGORIES);
}

static void eas_flag(struct eas_doc *d, struct eas_node *parent, const struct store_item *it)
{
    struct eas_node *fl = eas_add(d, parent, EAS_EMAIL_FLAG);

    if (it->flags & STORE_FLAG_FLAGGED) {
        eas_add_int(d, fl, EAS_EMAIL_STATUS, 2);
        eas_add_text(d, fl, EAS_EMAIL_FLAGTYPE, "Flag for follow up");
    }
}

int eas_email_flags(struct eas_doc *d, struct eas_node *parent, int version,
                    const struct store_item *it)
{
    eas_add_int(d, parent, EAS_EMAIL_READ, (it->flags & STORE_FLAG_SEEN) ? 1 : 0);
    if (version >= EAS_V120)
        eas_flag(d, parent, it);
    if (version >= EAS_V140) {
        eas_categories(d, parent, it->keywords);
        /* A reply or forward sent from elsewhere (IMAP \Answered, $Forwarded) after the
         * device got the message: as in the Add, so the phone shows it. */
        if (it->flags & (STORE_FLAG_ANSWERED | STORE_FLAG_FORWARDED))
            eas_add_int(d, parent, EAS_EMAIL2_LASTVERBEXECUTED,
                        (it->flags & STORE_FLAG_ANSWERED) ? 1 : 3);
    }
    return 0;
}

/* ConversationId: 16 bytes naming the thread (its root Message-ID, else the subject). */
static void eas_conversation(struct eas_doc *d, struct eas_node *parent, struct eas_msg *m,
                             int64_t date)
{
    unsigned char h[SHA256_DIGEST_LENGTH], idx[5];
    const char *root = m->c.references.len    ? m->c.references.p
                       : m->c.in_reply_to.len ? m->c.in_reply_to.p
                       : m->c.message_id.len  ? m->c.message_id.p
                                              : m->c.base_subject.p;
    size_t n = strcspn(root, " ");
    /* FILETIME of the message date: the first bytes of a ConversationIndex header. */
    uint64_t ft = ((uint64_t)(date > 0 ? date : 0) + 11644473600ULL) * 10000000ULL;

    SHA256((const unsigned char *)root, n, h);
    eas_add_opaque(d, parent, EAS_EMAIL2_CONVERSATIONID, h, 16);
    idx[0] = 1;
    for (int i = 0; i < 4; i++)
        idx[1 + i] = (unsigned char)(ft >> (48 - 8 * i));
    eas_add_opaque(d, parent, EAS_EMAIL2_CONVERSATIONINDEX, idx, sizeof(idx));
}

/* Was the message delivered to the user without naming them in To or Cc? */
static int eas_received_as_bcc(struct eas_msg *m)
{
    const char *dt = eas_hdr(m, "Delivered-To");
    char addr[320];
    size_t n;

    if (!dt)
        return 0;
    n = strcspn(dt, " \t;");
    if (n == 0 || n >= sizeof(addr))
        return 0;
    memcpy(addr, dt, n);
    addr[n] = '\0';
    return !strcasestr(m->c.to.p, addr) && !strcasestr(m->c.cc.p, addr);
}

/* ---- body -------------------------------------------------------------------------------- */

/* Which of the client's preferences to answer: MIME when asked and allowed, else HTML
 * when the message has it, else plain, else whatever was asked. */
static const struct eas_body_pref *eas_pick_pref(const struct eas_msg *m,
                                                 const struct eas_coll_opts *o)
{
    const struct eas_body_pref *plain = NULL, *html = NULL, *mime = NULL, *other = NULL;

    for (int i = 0; i < o->nprefs; i++) {
        const struct eas_body_pref *p = &o->prefs[i];
        if (p->type == EAS_BODY_PLAIN)
            plain = p;
        else if (p->type == EAS_BODY_HTML)
            html = p;
        else if (p->type == EAS_BODY_MIME)
            mime = p;
        else
            other = p;
    }
    if (mime && (o->mime_support == 2 || (!plain && !html)))
        return mime;
    if (html && (m->html >= 0 || !plain))
        return html;
    if (plain)
        return plain;
    return html ? html : mime ? mime : other;
}

static void eas_preview(struct eas_doc *d, struct eas_node *body, const struct eas_msg *m,
                        int chars)
{
    struct buf t = {0}, flat = {0};
    int space = 1;

    if (eas_body_text(m, EAS_BODY_PLAIN, &t) == 0) {
        /* one line of text: runs of white space become one space */
        for (size_t i = 0; i < t.len && flat.len < (size_t)chars * 4 + 4; i++) {
            if (isspace((unsigned char)t.p[i])) {
                if (!space)
                    buf_putc(&flat, ' ');
                space = 1;
            } else {
                buf_putc(&flat, t.p[i]);
                space = 0;
            }
        }
        eas_add_textn(d, body, EAS_AIRSYNCBASE_PREVIEW, flat.p ? flat.p : "",
                      eas_utf8_chars(flat.p ? flat.p : "", flat.len, (size_t)chars));
    }
    buf_free(&t);
    buf_free(&flat);
}

static int eas_body_base(struct eas_doc *d, struct eas_node *parent, int version,
                         const struct eas_msg *m, const struct eas_coll_opts *o)
{
    const struct eas_body_pref *p = eas_pick_pref(m, o);
    struct eas_body_pref def = {.type = EAS_BODY_PLAIN, .trunc = -1};
    struct buf t = {0};
    const char *data;
    size_t len, send;
    int type;
    struct eas_node *body;

    if (!p)
        p = &def;
    type = p->type == EAS_BODY_RTF ? EAS_BODY_PLAIN : p->type;
    if (type == EAS_BODY_MIME) {
        data = m->data;
        len = m->len;
    } else {
        if (eas_body_text(m, type, &t) < 0) {
            buf_free(&t);
            return -1;
        }
        data = t.p ? t.p : "";
        len = t.len;
    }
    send =
        p->trunc >= 0 && (uint64_t)p->trunc < len ? eas_utf8_cut(data, len, (size_t)p->trunc) : len;
    if (send < len && p->all_or_none)
        send = 0;
    body = eas_add(d, parent, EAS_AIRSYNCBASE_BODY);
    eas_add_int(d, body, EAS_AIRSYNCBASE_TYPE, type);
    eas_add_int(d, body, EAS_AIRSYNCBASE_ESTIMATEDDATASIZE, (long long)len);
    if (send < len)
        eas_add_int(d, body, EAS_AIRSYNCBASE_TRUNCATED, 1);
    if (send > 0 || !(send < len))
        eas_add_textn(d, body, EAS_AIRSYNCBASE_DATA, data, send);
    if (version >= EAS_V140 && p->preview > 0)
        eas_preview(d, body, m, p->preview);
    buf_free(&t);
    return 0;
}

/* 2.5: Email:Body (plain, Truncation code) or MIMEData when MIMESupport asks. */
static int eas_body_25(struct eas_doc *d, struct eas_node *parent, const struct eas_msg *m,
                       const struct eas_coll_opts *o, int mime)
{
    struct buf t = {0};
    int64_t max;
    size_t send;

    if (mime) {
        max = eas_trunc_code_bytes(o->mime_trunc);
        send = max >= 0 && (uint64_t)max < m->len ? (size_t)max : m->len;
        eas_add_int(d, parent, EAS_EMAIL_MIMETRUNCATED, send < m->len);
        eas_add_textn(d, parent, EAS_EMAIL_MIMEDATA, m->data, send);
        eas_add_int(d, parent, EAS_EMAIL_MIMESIZE, (long long)m->len);
        return 0;
    }
    if (eas_body_text(m, EAS_BODY_PLAIN, &t) < 0) {
        buf_free(&t);
        return -1;
    }
    max = eas_trunc_code_bytes(o->trunc25);
    send = max >= 0 && (uint64_t)max < t.len ? eas_utf8_cut(t.p, t.len, (size_t)max) : t.len;
    if (send < t.len) {
        eas_add_int(d, parent, EAS_EMAIL_BODYSIZE, (long long)t.len);
        eas_add_int(d, parent, EAS_EMAIL_BODYTRUNCATED, 1);
    }
    eas_add_textn(d, parent, EAS_EMAIL_BODY, t.p ? t.p : "", send);
    buf_free(&t);
    return 0;
}

/* ---- attachments --------------------------------------------------------------------- */

static int64_t eas_decoded_size(const struct mime_cache_part *p)
{
    if (!strcmp(p->encoding.p, "base64"))
        return (int64_t)(p->body_len * 3 / 4 * 76 / 78);
    return (int64_t)p->body_len;
}

static void eas_attachments(struct eas_doc *d, struct eas_node *parent, int version,
                            struct eas_msg *m, const struct store_item *it)
{
    struct eas_node *atts = NULL;

    for (size_t i = 1; i < m->c.nparts; i++) {
        struct mime_cache_part p;
        struct eas_node *a;
        char ref[96], name[300];

        if (mime_cache_part(&m->c, i, &p) < 0 || !(p.flags & MIME_PART_ATTACHMENT) ||
            (p.flags & MIME_PART_MULTIPART && !(p.flags & MIME_PART_MESSAGE)) ||
            eas_in_attached(m, i))
            continue;
        snprintf(ref, sizeof(ref), "%lld:%lld:%zu", (long long)it->folder_id, (long long)it->id, i);
        if (p.filename.len)
            snprintf(name, sizeof(name), "%s", p.filename.p);
        else if (p.flags & MIME_PART_MESSAGE)
            snprintf(name, sizeof(name), "message.eml");
        else
            snprintf(name, sizeof(name), "attachment-%zu.%s", i,
                     p.subtype.len && p.subtype.len < 16 ? p.subtype.p : "bin");
        if (!atts)
            atts =
                eas_add(d, parent,
                        version >= EAS_V120 ? EAS_AIRSYNCBASE_ATTACHMENTS : EAS_EMAIL_ATTACHMENTS);
        if (version < EAS_V120) {
            a = eas_add(d, atts, EAS_EMAIL_ATTACHMENT);
            eas_add_int(d, a, EAS_EMAIL_ATTMETHOD, (p.flags & MIME_PART_MESSAGE) ? 5 : 1);
            eas_add_int(d, a, EAS_EMAIL_ATTSIZE, (long long)eas_decoded_size(&p));
            eas_add_text(d, a, EAS_EMAIL_DISPLAYNAME, name);
            eas_add_text(d, a, EAS_EMAIL_ATTNAME, ref);
            continue;
        }
        a = eas_add(d, atts, EAS_AIRSYNCBASE_ATTACHMENT);
        eas_add_text(d, a, EAS_AIRSYNCBASE_DISPLAYNAME, name);
        eas_add_text(d, a, EAS_AIRSYNCBASE_FILEREFERENCE, ref);
        eas_add_int(d, a, EAS_AIRSYNCBASE_METHOD, (p.flags & MIME_PART_MESSAGE) ? 5 : 1);
        eas_add_int(d, a, EAS_AIRSYNCBASE_ESTIMATEDDATASIZE, (long long)eas_decoded_size(&p));
        if (p.content_id.len)
            eas_add_text(d, a, EAS_AIRSYNCBASE_CONTENTID, p.content_id.p);
        eas_add_int(d, a, EAS_AIRSYNCBASE_ISINLINE, (p.flags & MIME_PART_INLINE) ? 1 : 0);
    }
}

/* ---- the whole item ----------------------------------------------------------------------- */

int eas_email_appdata(struct eas_doc *d, struct eas_node *parent, int version,
                      const struct store_item *it, const char *msg, size_t len,
                      const struct eas_coll_opts *o)
{
    struct eas_msg m;
    struct buf dt = {0};
    char date[40];
    const char *v;
    int rc = 0;

    if (eas_msg_open(&m, msg, len) < 0)
        return -1;
    if (m.c.to.len)
        eas_add_text(d, parent, EAS_EMAIL_TO, m.c.to.p);
    if (m.c.cc.len)
        eas_add_text(d, parent, EAS_EMAIL_CC, m.c.cc.p);
    if (m.c.from.len)
        eas_add_text(d, parent, EAS_EMAIL_FROM, m.c.from.p);
    eas_add_text(d, parent, EAS_EMAIL_SUBJECT, m.c.subject.p);
    if ((v = eas_hdr(&m, "Reply-To")) && *v)
        eas_add_text(d, parent, EAS_EMAIL_REPLYTO, v);
    eas_date(date, sizeof(date), it->idate);
    eas_add_text(d, parent, EAS_EMAIL_DATERECEIVED, date);
    eas_display_to(&m, &dt);
    eas_add_text(d, parent, EAS_EMAIL_DISPLAYTO, dt.p ? dt.p : "");
    buf_free(&dt);
    eas_add_text(d, parent, EAS_EMAIL_THREADTOPIC, m.c.base_subject.p);
    eas_add_int(d, parent, EAS_EMAIL_IMPORTANCE, eas_importance(&m));
    eas_add_int(d, parent, EAS_EMAIL_READ, (it->flags & STORE_FLAG_SEEN) ? 1 : 0);
    if (version >= EAS_V120) {
        eas_attachments(d, parent, version, &m, it);
        rc = eas_body_base(d, parent, version, &m, o);
    } else {
        eas_attachments(d, parent, version, &m, it);
        rc = eas_body_25(d, parent, &m, o, o->mime_support == 2);
    }
    eas_invitation(d, parent, version, &m);
    eas_add_int(d, parent, EAS_EMAIL_INTERNETCPID, 65001); /* everything is sent as UTF-8 */
    if (version >= EAS_V120) {
        eas_flag(d, parent, it);
        eas_add_text(d, parent, EAS_EMAIL_CONTENTCLASS, "urn:content-classes:message");
        eas_add_int(d, parent, EAS_AIRSYNCBASE_NATIVEBODYTYPE,
                    m.html >= 0 ? EAS_BODY_HTML : EAS_BODY_PLAIN);
    }
    if (version >= EAS_V140) {
        eas_conversation(d, parent, &m, (m.c.flags & MIME_CACHE_DATE_VALID) ? m.c.date : it->idate);
        if (it->flags & (STORE_FLAG_ANSWERED | STORE_FLAG_FORWARDED))
            eas_add_int(d, parent, EAS_EMAIL2_LASTVERBEXECUTED,
                        (it->flags & STORE_FLAG_ANSWERED) ? 1 : 3);
        eas_add_int(d, parent, EAS_EMAIL2_RECEIVEDASBCC, eas_received_as_bcc(&m));
        if ((v = eas_hdr(&m, "Sender")) && *v && strcasecmp(v, m.c.from.p) != 0)
            eas_add_text(d, parent, EAS_EMAIL2_SENDER, v);
        eas_categories(d, parent, it->keywords);
    }
    if (version >= EAS_V160 && (it->flags & STORE_FLAG_DRAFT))
        eas_add_int(d, parent, EAS_EMAIL2_ISDRAFT, 1);
    eas_msg_close(&m);
    return rc;
}

/* ---- client changes -------------------------------------------------------------------------- */

/* A category as an IMAP keyword (an atom): characters atoms cannot hold become '_'. */
static void eas_keyword_of(const char *cat, struct buf *out)
{
    for (const unsigned char *p = (const unsigned char *)cat; *p; p++)
        buf_putc(out, (*p <= ' ' || *p >= 0x7f || strchr("(){%*\"\\]", *p)) ? '_' : (char)*p);
}

/* The new flags and keywords of `it` after the device's Read / Flag / Categories (only
 * those it names); kw gets the keywords when Categories was given. */
static int eas_email_new_flags(const struct store_item *it, const struct eas_node *appdata,
                               uint32_t *flags_out, struct buf *kw)
{
    uint32_t flags = it->flags;
    const struct eas_node *n, *cats;

    if ((n = eas_child(appdata, EAS_EMAIL_READ))) {
        if (atoi(eas_text(n)))
            flags |= STORE_FLAG_SEEN;
        else
            flags &= ~STORE_FLAG_SEEN;
    }
    if ((n = eas_child(appdata, EAS_EMAIL_FLAG))) {
        if (eas_child_int(n, EAS_EMAIL_STATUS, 0) == 2)
            flags |= STORE_FLAG_FLAGGED;
        else
            flags &= ~STORE_FLAG_FLAGGED;
    }
    *flags_out = flags;
    if (!(cats = eas_child(appdata, EAS_EMAIL_CATEGORIES)))
        return 0;
    /* the IMAP conventions stay; the user's categories are replaced */
    for (const char *p = it->keywords; *p;) {
        size_t l;
        while (*p == ' ')
            p++;
        l = strcspn(p, " ");
        if (l && eas_system_keyword(p, l)) {
            if (kw->len)
                buf_putc(kw, ' ');
            buf_put(kw, p, l);
        }
        p += l;
    }
    for (n = eas_child(cats, EAS_EMAIL_CATEGORY); n; n = eas_next(n, EAS_EMAIL_CATEGORY)) {
        if (!*eas_text(n))
            continue;
        if (kw->len)
            buf_putc(kw, ' ');
        eas_keyword_of(eas_text(n), kw);
    }
    buf_put(kw, "", 0);
    return kw->oom ? -1 : 1;
}

#define EAS_CHANGE_TRIES 16

int eas_email_apply_change(struct store_user *u, const struct store_item *it,
                           const struct eas_node *appdata, struct store_item *out, int *changed)
{
    struct store_item cur = *it;
    int rc = STORE_ECONFLICT;

    *changed = 0;
    /* Written only if the item is still the one the new flags were computed from (its
     * MODSEQ): an IMAP STORE landing in between would otherwise be overwritten with the
     * flags read before it. On a conflict, read again and recompute. */
    for (int i = 0; i < EAS_CHANGE_TRIES && rc == STORE_ECONFLICT; i++) {
        struct buf kw = {0};
        uint32_t flags;
        int cats = eas_email_new_flags(&cur, appdata, &flags, &kw);

        if (cats < 0) {
            buf_free(&kw);
            return STORE_ENOMEM;
        }
        if (flags == cur.flags && (!cats || !strcmp(kw.p, cur.keywords))) {
            *out = cur;
            buf_free(&kw);
            return STORE_OK;
        }
        rc = store_item_set_flags(u, cur.id, STORE_FLAGS_SET, flags, cats ? kw.p : NULL, cur.modseq,
                                  out, NULL);
        buf_free(&kw);
        if (rc == STORE_ECONFLICT && store_item_get(u, cur.id, &cur, NULL) != STORE_OK)
            return STORE_ENOTFOUND;
    }
    if (rc == STORE_OK)
        *changed = 1;
    return rc;
}
