/*
 * imap_cmd_fetch.c — FETCH / UID FETCH (RFC 3501 §6.4.5, RFC 9051 §6.4.5): message
 * attributes, body sections and partials, BINARY (RFC 3516), MODSEQ with the CHANGEDSINCE
 * and VANISHED modifiers (RFC 7162).
 *
 * Work per message is only what the items ask for: FLAGS, UID, MODSEQ, RFC822.SIZE and
 * INTERNALDATE come from the view, so "FETCH 1:* (FLAGS)" over a large mailbox never
 * touches the store. The structure cache is opened only for ENVELOPE, BODY[STRUCTURE]
 * and sections that need the part table; the message bytes are read only for body data.
 * Everything a message's response needs is computed before its first byte is written, so
 * a failure (UNKNOWN-CTE, a store error) never leaves half a FETCH line on the wire.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/imap.h"

/* One item's data, ready to send: a slice of the message, or bytes of its own. */
struct imap_fdata {
    const char *p;
    size_t len;
    bool nil;
    struct buf buf;
};

struct imap_fetch_run {
    struct imap_cmd *cmd;
    struct imap_fetch f;
    struct imap_fdata *data; /* one per item */
    bool need_cache, need_body, set_seen, add_uid, add_modseq;
    bool gone;            /* a message vanished under us: NO [EXPUNGEISSUED] at the end */
    int rc;               /* store error that stops the command */
    bool badcte;          /* NO [UNKNOWN-CTE] */
    struct imap_pre *pre; /* caches read ahead, when the items need them */
    /* the current message */
    void *blob;
    struct mime_cache cache;
    char *body;
    size_t blen;
};

static bool imap_item_needs_cache(const struct imap_fetch_item *it)
{
    switch (it->type) {
    case IMAP_FETCH_ENVELOPE:
    case IMAP_FETCH_BODY:
    case IMAP_FETCH_BODYSTRUCTURE:
    case IMAP_FETCH_RFC822_HEADER:
    case IMAP_FETCH_RFC822_TEXT:
        return true;
    case IMAP_FETCH_BODY_SECTION:
        return it->section.nparts > 0 || it->section.text != IMAP_SECTION_ALL;
    case IMAP_FETCH_BINARY:
    case IMAP_FETCH_BINARY_SIZE:
        return it->section.nparts > 0;
    default:
        return false;
    }
}

static bool imap_item_needs_body(const struct imap_fetch_item *it)
{
    switch (it->type) {
    case IMAP_FETCH_RFC822:
    case IMAP_FETCH_RFC822_HEADER:
    case IMAP_FETCH_RFC822_TEXT:
    case IMAP_FETCH_BODY_SECTION:
    case IMAP_FETCH_BINARY:
    case IMAP_FETCH_BINARY_SIZE:
        return true;
    default:
        return false;
    }
}

static bool imap_fetch_has(const struct imap_fetch *f, enum imap_fetch_type t)
{
    for (size_t i = 0; i < f->count; i++)
        if (f->items[i].type == t)
            return true;
    return false;
}

/* ---- sections --------------------------------------------------------------------------- */

static void imap_fdata_slice(struct imap_fdata *d, const char *body, size_t blen, uint64_t off,
                             uint64_t len)
{
    if (off > blen || len > blen - off) {
        d->nil = true;
        return;
    }
    d->p = body + off;
    d->len = (size_t)len;
}

/* The cache entry for the item's part numbers ("1.2"); -1 when there is no such part. */
static long imap_section_part(struct imap_fetch_run *r, const struct imap_section *sec,
                              struct mime_cache_part *p)
{
    char name[IMAP_SECTION_MAX_PART * 11 + 1];
    size_t o = 0;

    for (size_t i = 0; i < sec->nparts; i++)
        o += (size_t)snprintf(name + o, sizeof(name) - o, "%s%u", i ? "." : "", sec->part[i]);
    return mime_cache_find(&r->cache, name, o, p);
}

/* HEADER, HEADER.FIELDS[.NOT] or TEXT of a message whose header block is hdr_len bytes at
 * off and whose whole extent is total bytes. */
static void imap_section_message(struct imap_fetch_run *r, const struct imap_section *sec,
                                 uint64_t off, uint64_t hdr_len, uint64_t total,
                                 struct imap_fdata *d)
{
    switch (sec->text) {
    case IMAP_SECTION_HEADER:
        imap_fdata_slice(d, r->body, r->blen, off, hdr_len);
        break;
    case IMAP_SECTION_TEXT:
        imap_fdata_slice(d, r->body, r->blen, off + hdr_len, total - hdr_len);
        break;
    default: /* HEADER.FIELDS[.NOT] */
        imap_fdata_slice(d, r->body, r->blen, off, hdr_len);
        if (d->nil)
            return;
        mime_header_filter(d->p, d->len, sec->fields, sec->nfields,
                           sec->text == IMAP_SECTION_HEADER_FIELDS_NOT, &d->buf);
        buf_put(&d->buf, "", 0);
        d->p = d->buf.p;
        d->len = d->buf.len;
    }
}

/* BODY[section] (without the partial). A part that does not exist is NIL. */
static void imap_section_body(struct imap_fetch_run *r, const struct imap_section *sec,
                              struct imap_fdata *d)
{
    struct mime_cache_part p;

    if (sec->nparts == 0) {
        if (sec->text == IMAP_SECTION_ALL)
            imap_fdata_slice(d, r->body, r->blen, 0, r->blen);
        else
            imap_section_message(r, sec, 0, r->cache.hdr_size, r->blen, d);
        return;
    }
    if (imap_section_part(r, sec, &p) < 0) {
        d->nil = true;
        return;
    }
    if (sec->text == IMAP_SECTION_ALL)
        imap_fdata_slice(d, r->body, r->blen, p.body_off, p.body_len);
    else if (sec->text == IMAP_SECTION_MIME)
        imap_fdata_slice(d, r->body, r->blen, p.hdr_off, p.hdr_len);
    else if (p.flags & MIME_PART_MESSAGE) /* HEADER/TEXT of an attached message */
        imap_section_message(r, sec, p.body_off, p.msg_hdr_len, p.body_len, d);
    else
        d->nil = true; /* HEADER/TEXT only exist for message/rfc822 parts */
}

static bool imap_cte_known(const char *enc)
{
    static const char *const known[] = {"7bit", "8bit", "binary", "base64", "quoted-printable"};

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(enc, known[i]) == 0)
            return true;
    return false;
}

/* BINARY[section]: the part with its transfer encoding undone (RFC 3516). The whole
 * message and message/rfc822 parts are sent as they are (their encoding can only be an
 * identity one). Returns -1 for an encoding we cannot undo. */
static int imap_section_binary(struct imap_fetch_run *r, const struct imap_section *sec,
                               struct imap_fdata *d)
{
    struct mime_cache_part p;

    if (sec->nparts == 0) {
        imap_fdata_slice(d, r->body, r->blen, 0, r->blen);
        return 0;
    }
    if (imap_section_part(r, sec, &p) < 0 || (p.flags & MIME_PART_MULTIPART)) {
        d->nil = true;
        return 0;
    }
    imap_fdata_slice(d, r->body, r->blen, p.body_off, p.body_len);
    if (d->nil || (p.flags & MIME_PART_MESSAGE))
        return 0;
    if (!imap_cte_known(p.encoding.p))
        return -1;
    if (mime_decode_cte(p.encoding.p, d->p, d->len, &d->buf) < 0) {
        r->rc = STORE_ENOMEM;
        return 0;
    }
    d->p = d->buf.p;
    d->len = d->buf.len;
    return 0;
}

/* <offset.count> */
static void imap_apply_partial(const struct imap_fetch_item *it, struct imap_fdata *d)
{
    if (!it->partial || d->nil)
        return;
    if (it->offset >= d->len) {
        d->len = 0;
        return;
    }
    d->p += it->offset;
    d->len -= (size_t)it->offset;
    if (it->count < d->len)
        d->len = (size_t)it->count;
}

/* Computes the data of the items that carry message content. Returns -1 on UNKNOWN-CTE. */
static int imap_fetch_prepare(struct imap_fetch_run *r)
{
    for (size_t i = 0; i < r->f.count; i++) {
        struct imap_fetch_item *it = &r->f.items[i];
        struct imap_fdata *d = &r->data[i];
        struct imap_section sec = it->section;
        memset(d, 0, sizeof(*d));
        switch (it->type) {
        case IMAP_FETCH_RFC822:
            sec.text = IMAP_SECTION_ALL;
            imap_section_body(r, &sec, d);
            break;
        case IMAP_FETCH_RFC822_HEADER:
        case IMAP_FETCH_RFC822_TEXT:
            sec.text =
                it->type == IMAP_FETCH_RFC822_HEADER ? IMAP_SECTION_HEADER : IMAP_SECTION_TEXT;
            imap_section_body(r, &sec, d);
            break;
        case IMAP_FETCH_BODY_SECTION:
            imap_section_body(r, &sec, d);
            break;
        case IMAP_FETCH_BINARY:
        case IMAP_FETCH_BINARY_SIZE:
            if (imap_section_binary(r, &sec, d) < 0)
                return -1;
            break;
        default:
            continue;
        }
        if (d->buf.oom)
            r->rc = STORE_ENOMEM;
        imap_apply_partial(it, d);
    }
    return 0;
}

static void imap_fdata_free(struct imap_fetch_run *r)
{
    for (size_t i = 0; i < r->f.count; i++)
        buf_free(&r->data[i].buf);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void imap_out_literal(struct imap_session *s, const struct imap_fdata *d, bool binary)
{
    if (d->nil) {
        net_write(s->c, "NIL", 3);
        return;
    }
    /* RFC 3516: literal8 only when the data holds a NUL, which a plain literal may not. */
    bool nul = binary && memchr(d->p, 0, d->len) != NULL;
    net_printf(s->c, "%s{%zu}\r\n", nul ? "~" : "", d->len);
    net_write(s->c, d->p, d->len);
}

static void imap_out_cache_str(struct imap_session *s, const char *name, const struct mime_str *v)
{
    net_printf(s->c, "%s ", name);
    net_write(s->c, v->p, v->len);
}

static void imap_out_item(struct imap_session *s, struct imap_fetch_run *r, size_t i,
                          const struct imap_msg *m)
{
    const struct imap_fetch_item *it = &r->f.items[i];
    char name[2048], date[64];

    switch (it->type) {
    case IMAP_FETCH_FLAGS:
        net_write(s->c, "FLAGS ", 6);
        imap_out_flags(s, m->flags, m->keywords);
        return;
    case IMAP_FETCH_UID:
        net_printf(s->c, "UID %u", m->uid);
        return;
    case IMAP_FETCH_INTERNALDATE:
        if (imap_datetime_format(m->idate, 0, date, sizeof(date)) < 0)
            snprintf(date, sizeof(date), "01-Jan-1970 00:00:00 +0000");
        net_printf(s->c, "INTERNALDATE \"%s\"", date);
        return;
    case IMAP_FETCH_RFC822_SIZE:
        net_printf(s->c, "RFC822.SIZE %lld", (long long)m->size);
        return;
    case IMAP_FETCH_MODSEQ:
        net_printf(s->c, "MODSEQ (%llu)", (unsigned long long)IMAP_MODSEQ(m->modseq));
        return;
    case IMAP_FETCH_EMAILID:
        net_printf(s->c, "EMAILID (M%lld)", (long long)m->id);
        return;
    case IMAP_FETCH_THREADID:
        net_write(s->c, "THREADID NIL", 12);
        return;
    case IMAP_FETCH_ENVELOPE:
        imap_out_cache_str(s, "ENVELOPE", &r->cache.envelope);
        return;
    case IMAP_FETCH_BODY:
        imap_out_cache_str(s, "BODY", &r->cache.body);
        return;
    case IMAP_FETCH_BODYSTRUCTURE:
        imap_out_cache_str(s, "BODYSTRUCTURE", &r->cache.bodystructure);
        return;
    case IMAP_FETCH_BINARY_SIZE:
        imap_fetch_item_name(it, name, sizeof(name));
        if (r->data[i].nil)
            net_printf(s->c, "%s NIL", name);
        else
            net_printf(s->c, "%s %zu", name, r->data[i].len);
        return;
    default: /* content */
        imap_fetch_item_name(it, name, sizeof(name));
        net_printf(s->c, "%s ", name);
        imap_out_literal(s, &r->data[i], it->type == IMAP_FETCH_BINARY);
    }
}

static void imap_fetch_write(struct imap_session *s, struct imap_fetch_run *r, size_t idx,
                             bool flags_changed)
{
    const struct imap_msg *m = &s->mbox->msgs[idx];
    const char *sep = "";

    net_printf(s->c, "* %zu FETCH (", idx + 1);
    if (r->add_uid) {
        net_printf(s->c, "UID %u", m->uid);
        sep = " ";
    }
    for (size_t i = 0; i < r->f.count; i++) {
        if (r->add_uid && r->f.items[i].type == IMAP_FETCH_UID)
            continue;
        net_write(s->c, sep, strlen(sep));
        imap_out_item(s, r, i, m);
        sep = " ";
    }
    /* \Seen set by this FETCH is a flag change the client must hear of (RFC 3501 §6.4.5). */
    if (flags_changed && !imap_fetch_has(&r->f, IMAP_FETCH_FLAGS)) {
        net_printf(s->c, " FLAGS ");
        imap_out_flags(s, m->flags, m->keywords);
    }
    if (r->add_modseq)
        net_printf(s->c, " MODSEQ (%llu)", (unsigned long long)IMAP_MODSEQ(m->modseq));
    net_write(s->c, ")\r\n", 3);
}

/* ---- per message ------------------------------------------------------------------------- */

static void imap_msg_update(struct imap_msg *m, const struct store_item *it)
{
    m->flags = it->flags;
    m->modseq = it->modseq;
    free(m->keywords);
    m->keywords = it->keywords[0] ? strdup(it->keywords) : NULL;
}

/* Sets \Seen for a body fetch; true when the flags changed. */
static bool imap_fetch_seen(struct imap_session *s, struct imap_fetch_run *r, struct imap_msg *m)
{
    struct store_item it;
    struct store_err err;
    int rc;

    if (!r->set_seen || (m->flags & STORE_FLAG_SEEN))
        return false;
    rc = store_item_set_flags(s->su, m->id, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &it, &err);
    if (rc != STORE_OK) {
        if (rc == STORE_ENOTFOUND)
            r->gone = true;
        else
            r->rc = rc;
        return false;
    }
    imap_msg_update(m, &it);
    return true;
}

static void imap_fetch_release(struct imap_fetch_run *r)
{
    imap_fdata_free(r);
    free(r->blob);
    free(r->body);
    r->blob = NULL;
    r->body = NULL;
}

/* Reads what the items need; false when the message is gone or the store failed. */
static bool imap_fetch_load(struct imap_session *s, struct imap_fetch_run *r,
                            const struct imap_msg *m)
{
    struct store_err err;
    int rc = STORE_OK;

    if (r->need_cache)
        rc = imap_msg_cache_at(s, r->pre, (size_t)(m - s->mbox->msgs), &r->blob, &r->cache);
    if (rc == STORE_OK && r->need_body)
        rc = store_item_body(s->su, m->id, &r->body, &r->blen, &err);
    if (rc == STORE_ENOTFOUND)
        r->gone = true;
    else if (rc != STORE_OK)
        r->rc = rc;
    return rc == STORE_OK;
}

static int imap_fetch_one(struct imap_session *s, size_t idx, void *ctx)
{
    struct imap_fetch_run *r = ctx;
    struct imap_msg *m = &s->mbox->msgs[idx];
    bool changed;

    if (r->f.changedsince && IMAP_MODSEQ(m->modseq) <= r->f.since)
        return 0;
    if (!imap_fetch_load(s, r, m))
        goto out;
    if (imap_fetch_prepare(r) < 0) {
        r->badcte = true;
        goto out;
    }
    if (r->rc)
        goto out;
    changed = imap_fetch_seen(s, r, m);
    if (!r->rc)
        imap_fetch_write(s, r, idx, changed);
out:
    imap_fetch_release(r);
    return r->rc || r->badcte;
}

/* ---- VANISHED (EARLIER) ------------------------------------------------------------------ */

struct imap_vanished_run {
    const struct imap_seqset *set;
    uint32_t *uids;
    size_t n, cap;
    bool oom;
};

static int imap_vanished_cb(const struct store_item *it, int removed, void *ctx)
{
    struct imap_vanished_run *v = ctx;

    if (!removed || !imap_seqset_contains(v->set, it->uid))
        return 0;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint32_t *p = realloc(v->uids, cap * sizeof(*p));
        if (!p) {
            v->oom = true;
            return 1;
        }
        v->uids = p;
        v->cap = cap;
    }
    v->uids[v->n++] = it->uid;
    return 0;
}

static int imap_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* RFC 7162 §3.2.6: UIDs in the set expunged since the client's MODSEQ, before the FETCH
 * responses. The UIDs arrive in MODSEQ order; they are sent sorted and compacted. */
static int imap_fetch_vanished(struct imap_session *s, struct imap_cmd *cmd, uint64_t since)
{
    struct imap_mbox *mb = s->mbox;
    struct imap_vanished_run v = {0};
    struct imap_seqset set;
    struct store_err err;
    char msg[256];
    size_t o = 0;
    int rc;

    if (imap_seqset_parse(&cmd->arena, cmd->args[0].str, cmd->args[0].len, IMAP_SEQ_ALLOW_DOLLAR,
                          &set, msg, sizeof(msg)) < 0)
        return 0; /* imap_mbox_each answers the bad set */
    if (set.dollar)
        set = s->saved;
    else
        imap_seqset_resolve(&set, mb->uidnext > 1 ? mb->uidnext - 1 : 1);
    v.set = &set;
    rc = store_changes_since(s->su, mb->folder.id, STORE_MODSEQ(since), imap_vanished_cb, &v, &err);
    if (rc == STORE_OK && v.oom)
        rc = STORE_ENOMEM;
    if (rc == STORE_OK && v.n) {
        qsort(v.uids, v.n, sizeof(v.uids[0]), imap_u32_cmp);
        for (size_t i = 0; i < v.n; i++)
            if (o == 0 || v.uids[o - 1] != v.uids[i])
                v.uids[o++] = v.uids[i];
        char *str = imap_numbers_format(v.uids, o);
        if (str)
            net_printf(s->c, "* VANISHED (EARLIER) %s\r\n", str);
        else
            rc = STORE_ENOMEM;
        free(str);
    }
    free(v.uids);
    if (rc != STORE_OK)
        imap_store_error(s, cmd, rc, &err, "FETCH");
    return rc == STORE_OK ? 0 : -1;
}

/* ---- the command -------------------------------------------------------------------------- */

static int imap_fetch_setup(struct imap_session *s, struct imap_cmd *cmd, struct imap_fetch_run *r)
{
    char err[256];

    if (cmd->nargs < 2 || cmd->nargs > 3 || cmd->args[0].type != IMAP_ARG_ATOM) {
        imap_bad(s, cmd, "FETCH takes a message set, items and optional modifiers");
        return -1;
    }
    if (imap_fetch_parse(&cmd->arena, &cmd->args[1], cmd->nargs == 3 ? &cmd->args[2] : NULL,
                         cmd->uid, &r->f, err, sizeof(err)) < 0) {
        imap_bad(s, cmd, "%s", err);
        return -1;
    }
    if (r->f.vanished && !(s->enabled & IMAP_EN_QRESYNC)) {
        imap_bad(s, cmd, "VANISHED needs ENABLE QRESYNC");
        return -1;
    }
    /* RFC 7162 §3.1: CHANGEDSINCE and the MODSEQ item are CONDSTORE-enabling. */
    if (r->f.changedsince || imap_fetch_has(&r->f, IMAP_FETCH_MODSEQ))
        s->enabled |= IMAP_EN_CONDSTORE;
    for (size_t i = 0; i < r->f.count; i++) {
        r->need_cache |= imap_item_needs_cache(&r->f.items[i]);
        r->need_body |= imap_item_needs_body(&r->f.items[i]);
    }
    r->set_seen = r->f.sets_seen && !s->mbox->readonly;
    r->add_uid = cmd->uid; /* RFC 3501 §6.4.8: UID FETCH always includes UID, first here */
    r->add_modseq = (s->enabled & IMAP_EN_CONDSTORE) && !imap_fetch_has(&r->f, IMAP_FETCH_MODSEQ);
    return 0;
}

void imap_cmd_fetch(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_fetch_run r = {.cmd = cmd};
    int rc;

    if (imap_fetch_setup(s, cmd, &r) < 0)
        return;
    r.data = imap_arena_alloc(&cmd->arena, r.f.count * sizeof(*r.data));
    if (!r.data) {
        imap_no(s, cmd, "[SERVERBUG] Out of memory");
        return;
    }
    /* The answer is about the messages as they are now, but imap.c brings the view up to
     * date only after each command: catch up first. What changed goes out as unsolicited
     * FETCH/EXISTS, allowed here; EXPUNGE only under UID FETCH (RFC 3501 §7.4.1). */
    imap_mbox_sync(s, cmd->uid ? IMAP_SYNC_EXPUNGE : 0);
    if (r.f.vanished && imap_fetch_vanished(s, cmd, r.f.since) < 0)
        return;
    /* Setting \Seen writes to the view: make it this session's own before iterating. */
    if (r.set_seen && imap_mbox_own(s->mbox) < 0) {
        imap_no(s, cmd, "[SERVERBUG] Out of memory");
        return;
    }
    r.pre = r.need_cache ? imap_pre_new() : NULL;
    rc = imap_mbox_each(s, cmd, cmd->args[0].str, cmd->uid, imap_fetch_one, &r);
    imap_pre_free(r.pre);
    if (rc < 0)
        return;
    if (r.badcte)
        imap_no(s, cmd, "[UNKNOWN-CTE] Cannot decode the part's Content-Transfer-Encoding");
    else if (r.rc)
        imap_store_error(s, cmd, r.rc, NULL, "FETCH");
    else if (r.gone)
        imap_no(s, cmd, "[EXPUNGEISSUED] Some of the requested messages no longer exist");
    else
        imap_ok(s, cmd, "FETCH completed");
}
