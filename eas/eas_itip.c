/*
 * eas_itip.c — the iTIP mail (RFC 5546 carried as RFC 6047 mail) the ActiveSync engine
 * sends on the user's behalf: the REPLY of MeetingResponse, and, for 16.x devices (which
 * leave meeting mail to the server), the REQUEST an organizer's new or changed meeting
 * sends its attendees and the CANCEL of a deleted one. Messages go through the delivery
 * pipeline like SendMail's, after the store change they describe is committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/eas_pim.h"

#define EAS_ITIP_MAX_RCPTS 500

void eas_itip_header_text(char *out, size_t outlen, const char *s)
{
    int ascii = 1;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80 || *p < 0x20)
            ascii = 0;
    if (ascii) {
        snprintf(out, outlen, "%s", s);
    } else {
        /* RFC 2047, as one encoded word of at most 400 bytes of the text */
        char b[600];
        size_t n = strlen(s) > 400 ? 400 : strlen(s);
        while (n > 0 && n < strlen(s) && ((unsigned char)s[n] & 0xc0u) == 0x80u)
            n--;
        b64_encode((const unsigned char *)s, n, b, sizeof(b));
        snprintf(out, outlen, "=?utf-8?B?%s?=", b);
    }
}

char *eas_itip_mail(const struct eas_req *req, const char *to, const char *subject,
                    const char *text, const char *method, const char *ics, size_t *len)
{
    char date[64], subj[800], *msg;
    time_t t = time(NULL);
    unsigned b = eas_random32();
    struct tm tm;
    size_t cap = strlen(ics) + strlen(to) + strlen(text) + 2048;
    int n;

    if (!(msg = malloc(cap)))
        return NULL;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    eas_itip_header_text(subj, sizeof(subj), subject);
    n = snprintf(msg, cap,
                 "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                 "Message-ID: <%08x%08x.itip@%s>\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: multipart/alternative; boundary=\"=_itip_%08x\"\r\n\r\n"
                 "--=_itip_%08x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\n"
                 "--=_itip_%08x\r\nContent-Type: text/calendar; charset=utf-8; method=%s\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n--=_itip_%08x--\r\n",
                 req->acct->address, to, subj, date, eas_random32(), eas_random32(),
                 req->acct->domain, b, b, text, b, method, ics, b);
    if (n < 0 || (size_t)n >= cap) {
        free(msg);
        return NULL;
    }
    *len = (size_t)n;
    return msg;
}

void eas_itip_deliver(struct eas_req *req, const char *const *rcpts, size_t n, const char *msg,
                      size_t len)
{
    struct deliver_env env = {.auth_user = req->acct->address,
                              .mail_from = req->acct->address,
                              .protocol = "ActiveSync",
                              .client_ip = http_req_remote_ip(req->http)};
    struct deliver_reply r;
    const char *ok[EAS_ITIP_MAX_RCPTS];
    size_t nok = 0;

    /* recipients the pipeline refuses are left out, the others still get it */
    for (size_t i = 0; i < n && nok < EAS_ITIP_MAX_RCPTS; i++) {
        if (deliver_check_rcpt(req->e->dl, &env, rcpts[i], &r) == 0)
            ok[nok++] = rcpts[i];
        else
            log_info("eas", "iTIP from %s: %s refused: %d %s", req->acct->address, rcpts[i], r.code,
                     r.text);
    }
    if (nok == 0)
        return;
    if (deliver_message(req->e->dl, &env, ok, nok, msg, len, &r, NULL) != 0 || r.code != 250)
        log_info("eas", "iTIP from %s not delivered: %d %s", req->acct->address, r.code, r.text);
}

void eas_itip_free(struct eas_itip *m)
{
    free(m->msg);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    memset(m, 0, sizeof(*m));
}

static const char *eas_itip_addr(const char *v)
{
    if (v && !strncasecmp(v, "mailto:", 7))
        v += 7;
    return v && *v && strlen(v) <= 320 && !strpbrk(v, "\r\n,<>\" ") ? v : NULL;
}

/* The attendees to tell (every ATTENDEE of every VEVENT but the user), deduplicated. */
static int eas_itip_rcpts(const struct eas_req *req, icalcomponent *root, struct eas_itip *m)
{
    if (!(m->rcpts = calloc(EAS_ITIP_MAX_RCPTS, sizeof(*m->rcpts))))
        return -1;
    for (icalcomponent *ev = icalcomponent_get_first_component(root, ICAL_VEVENT_COMPONENT); ev;
         ev = icalcomponent_get_next_component(root, ICAL_VEVENT_COMPONENT))
        for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY); p;
             p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY)) {
            const char *a = eas_itip_addr(icalproperty_get_attendee(p));
            size_t i;
            if (!a || !strcasecmp(a, req->acct->address) || m->nrcpts >= EAS_ITIP_MAX_RCPTS)
                continue;
            for (i = 0; i < m->nrcpts && strcasecmp(m->rcpts[i], a); i++)
                ;
            if (i == m->nrcpts && !(m->rcpts[m->nrcpts++] = strdup(a)))
                return -1;
        }
    return 0;
}

int eas_itip_organizer(const struct eas_req *req, const char *ical, size_t len, int cancel,
                       struct eas_itip *out)
{
    icalcomponent *root = eas_ical_parse(ical, len), *ev;
    icalproperty *org;
    const char *o, *summary;
    char *ics = NULL, subject[700], to[4096];
    size_t off = 0;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!root)
        return -1;
    ev = eas_ical_master(root, ICAL_VEVENT_COMPONENT);
    org = ev ? icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY) : NULL;
    o = org ? eas_itip_addr(icalproperty_get_organizer(org)) : NULL;
    /* only the organizer's own meetings: an attendee's copy changes nothing for others */
    if (!ev || (org && (!o || strcasecmp(o, req->acct->address)))) {
        rc = 1;
        goto out;
    }
    if (eas_itip_rcpts(req, root, out) < 0)
        goto out;
    if (out->nrcpts == 0) {
        rc = 1;
        goto out;
    }
    icalcomponent_add_property(
        root, icalproperty_new_method(cancel ? ICAL_METHOD_CANCEL : ICAL_METHOD_REQUEST));
    if (!org) {
        char uri[400];
        snprintf(uri, sizeof(uri), "mailto:%s", req->acct->address);
        icalcomponent_add_property(ev, icalproperty_new_organizer(uri));
    }
    if (cancel)
        for (icalcomponent *c = icalcomponent_get_first_component(root, ICAL_VEVENT_COMPONENT); c;
             c = icalcomponent_get_next_component(root, ICAL_VEVENT_COMPONENT))
            icalcomponent_set_status(c, ICAL_STATUS_CANCELLED);
    if (!(ics = icalcomponent_as_ical_string_r(root)))
        goto out;
    for (size_t i = 0; i < out->nrcpts && off + 330 < sizeof(to); i++)
        off += (size_t)snprintf(to + off, sizeof(to) - off, "%s%s", i ? ", " : "", out->rcpts[i]);
    summary = icalcomponent_get_summary(ev) ?: "";
    snprintf(subject, sizeof(subject), "%s%s", cancel ? "Canceled: " : "", summary);
    out->msg = eas_itip_mail(req, to, subject,
                             cancel ? "This meeting has been canceled."
                                    : "You are invited to this meeting.",
                             cancel ? "CANCEL" : "REQUEST", ics, &out->len);
    rc = out->msg ? 0 : -1;
out:
    if (rc != 0)
        eas_itip_free(out);
    free(ics);
    icalcomponent_free(root);
    return rc;
}
