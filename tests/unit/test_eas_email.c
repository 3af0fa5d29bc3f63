/*
 * test_eas_email.c — the MIME → ActiveSync Email conversion (eas/eas_email.c) on tricky
 * messages (charsets, RFC 2047 names, HTML-only, nested multiparts, attachments,
 * truncation, 2.5 vs AirSyncBase), and the sync state blob (eas/eas_sync_state.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <unistd.h>

#include "eas/eas_sync.h"

/* Converts msg for version with opts into XML text (malloc'd). */
static char *conv(const char *msg, int version, const struct eas_coll_opts *o, uint32_t flags,
                  const char *keywords)
{
    struct eas_doc *d = eas_doc_new();
    struct eas_node *app;
    struct store_item it = {.id = 42, .folder_id = 7, .flags = flags, .idate = 1700000000};
    char *xml;

    snprintf(it.keywords, sizeof(it.keywords), "%s", keywords ? keywords : "");
    assert_non_null(d);
    app = eas_add(d, NULL, EAS_AIRSYNC_APPLICATIONDATA);
    assert_int_equal(eas_email_appdata(d, app, version, &it, msg, strlen(msg), o), 0);
    xml = wbxml_to_xml(d);
    assert_non_null(xml);
    /* what we build must encode */
    {
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(wbxml_encode(d, &buf, &len), 0);
        free(buf);
    }
    eas_doc_free(d);
    return xml;
}

static void opts_pref(struct eas_coll_opts *o, int type, int64_t trunc, int preview)
{
    eas_coll_opts_default(o);
    o->nprefs = 1;
    o->prefs[0].type = type;
    o->prefs[0].trunc = trunc;
    o->prefs[0].preview = preview;
}

static void assert_has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        print_error("expected %s in:\n%s\n", needle, hay ? hay : "");
        fail();
    }
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle)) {
        print_error("did not expect %s in:\n%s\n", needle, hay ? hay : "");
        fail();
    }
}

static const char latin1_msg[] = "From: =?ISO-8859-1?Q?Andr=E9_M=FCller?= <andre@example.net>\r\n"
                                 "To: \"Bob B.\" <bob@example.com>, carol@example.com\r\n"
                                 "Cc: =?UTF-8?B?w4lsaXNl?= <elise@example.org>\r\n"
                                 "Subject: =?ISO-8859-1?Q?Re:_caf=E9?=\r\n"
                                 "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                                 "Message-ID: <m1@example.net>\r\n"
                                 "Importance: high\r\n"
                                 "MIME-Version: 1.0\r\n"
                                 "Content-Type: text/plain; charset=iso-8859-1\r\n"
                                 "Content-Transfer-Encoding: quoted-printable\r\n"
                                 "\r\n"
                                 "Bient=F4t =E0 la caf=E9t=E9ria.\r\n";

static void test_headers_charsets(void **state)
{
    struct eas_coll_opts o;
    char *x;

    (void)state;
    opts_pref(&o, EAS_BODY_PLAIN, -1, 0);
    x = conv(latin1_msg, EAS_V141, &o, STORE_FLAG_SEEN, NULL);
    assert_has(x, "André Müller");
    assert_has(x, "Élise");
    assert_has(x, ">Re: café<");
    assert_has(x, ">café</ThreadTopic>");
    assert_has(x, ">Bob B.; carol@example.com</DisplayTo>");
    assert_has(x, ">2023-11-14T22:13:20.000Z</DateReceived>");
    assert_has(x, ">2</Importance>");
    assert_has(x, ">1</Read>");
    assert_has(x, ">1</Type>");
    assert_has(x, "Bientôt à la cafétéria.");
    assert_has(x, ">65001</InternetCPID>");
    assert_has(x, ">IPM.Note</MessageClass>");
    assert_has(x, "ConversationId");
    free(x);
}

static const char html_only[] =
    "From: a@example.com\r\nTo: b@example.com\r\nSubject: html\r\n"
    "Content-Type: text/html; charset=utf-8\r\n\r\n"
    "<html><head><style>p{color:red}</style></head><body><p>Hello&nbsp;<b>world</b> &amp; "
    "friends</p><p>Second&#33;</p><script>alert(1)</script></body></html>\r\n";

static void test_html_only(void **state)
{
    struct eas_coll_opts o;
    char *x;

    (void)state;
    /* plain asked: the HTML is turned into text */
    opts_pref(&o, EAS_BODY_PLAIN, -1, 0);
    x = conv(html_only, EAS_V141, &o, 0, NULL);
    assert_has(x, "Hello\xc2\xa0world &amp; friends");
    assert_has(x, "Second!");
    assert_lacks(x, "alert");
    assert_lacks(x, "color:red");
    assert_has(x, ">2</NativeBodyType>");
    free(x);
    /* HTML asked: as it is, with a preview of its text */
    opts_pref(&o, EAS_BODY_HTML, -1, 20);
    x = conv(html_only, EAS_V141, &o, 0, NULL);
    assert_has(x, ">2</Type>");
    assert_has(x, "&lt;b&gt;world&lt;/b&gt;");
    assert_has(x, ">Hello\xc2\xa0world &amp; friend</Preview>");
    free(x);
}

static const char nested[] =
    "From: a@example.com\r\nTo: b@example.com\r\nSubject: nested\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
    "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain part \xe2\x82\xac\r\n"
    "--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html part</p>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf; name=\"=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?=\"\r\n"
    "Content-Disposition: attachment\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\n"
    "JVBERi0xLjQKJcfsj6IK\r\n"
    "--outer\r\n"
    "Content-Type: image/png\r\nContent-ID: <img1@x>\r\nContent-Disposition: inline\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n\r\n"
    "From: c@example.com\r\nSubject: inner message\r\n"
    "Content-Type: text/plain\r\n\r\ninner text must not be the body\r\n"
    "--outer--\r\n";

static void test_nested_attachments(void **state)
{
    struct eas_coll_opts o;
    char *x, *data = NULL, ctype[64];
    size_t len = 0;

    (void)state;
    opts_pref(&o, EAS_BODY_HTML, -1, 0);
    x = conv(nested, EAS_V161, &o, STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED, "Work $Forwarded");
    assert_has(x, "&lt;p&gt;html part&lt;/p&gt;");
    assert_lacks(x, "inner text must not be the body");
    assert_has(x, ">résumé.pdf</DisplayName>");
    assert_has(x, ">7:42:4</FileReference>");
    assert_has(x, ">img1@x</ContentId>");
    assert_has(x, ">1</IsInline>");
    assert_has(x, ">5</Method>"); /* the attached message */
    assert_has(x, ">2</Status>"); /* flagged */
    assert_has(x, ">Work</Category>");
    assert_lacks(x, ">$Forwarded</Category>");
    assert_has(x, ">1</LastVerbExecuted>");
    free(x);
    /* the attachment decodes to its bytes */
    assert_int_equal(eas_email_part(nested, strlen(nested), 4, &data, &len, ctype, sizeof(ctype)),
                     0);
    assert_string_equal(ctype, "application/pdf");
    assert_true(len >= 8 && memcmp(data, "%PDF-1.4", 8) == 0);
    free(data);
    /* the message itself and multiparts are not attachments */
    assert_int_equal(eas_email_part(nested, strlen(nested), 0, &data, &len, ctype, sizeof(ctype)),
                     -1);
    assert_int_equal(eas_email_part(nested, strlen(nested), 999, &data, &len, ctype, sizeof(ctype)),
                     -1);
    /* plain asked: the plain alternative, in UTF-8 */
    opts_pref(&o, EAS_BODY_PLAIN, -1, 0);
    x = conv(nested, EAS_V141, &o, 0, NULL);
    assert_has(x, "plain part €");
    free(x);
}

static void test_truncation(void **state)
{
    struct eas_coll_opts o;
    char *x;

    (void)state;
    /* "Bientôt" is cut before the two bytes of "ô", never inside them */
    opts_pref(&o, EAS_BODY_PLAIN, 6, 0);
    x = conv(latin1_msg, EAS_V141, &o, 0, NULL);
    assert_has(x, ">1</Truncated>");
    assert_has(x, ">Bient</Data>");
    free(x);
    opts_pref(&o, EAS_BODY_PLAIN, 6, 0);
    o.prefs[0].all_or_none = 1;
    x = conv(latin1_msg, EAS_V141, &o, 0, NULL);
    assert_has(x, ">1</Truncated>");
    assert_lacks(x, "<Data");
    free(x);
    /* MIME asked with MIMESupport 2: the message bytes */
    opts_pref(&o, EAS_BODY_MIME, -1, 0);
    o.mime_support = 2;
    x = conv(latin1_msg, EAS_V121, &o, 0, NULL);
    assert_has(x, ">4</Type>");
    assert_has(x, "Content-Transfer-Encoding: quoted-printable");
    free(x);
}

static void test_v25(void **state)
{
    struct eas_coll_opts o;
    char *x;

    (void)state;
    eas_coll_opts_default(&o);
    o.trunc25 = 1; /* 4096 bytes */
    x = conv(nested, EAS_V25, &o, 0, NULL);
    assert_has(x, ">plain part €");
    assert_lacks(x, "AirSyncBase");
    assert_has(x, ">7:42:4</AttName>");
    assert_lacks(x, "<Flag");
    free(x);
    o.mime_support = 2;
    o.mime_trunc = 8; /* no truncation */
    x = conv(latin1_msg, EAS_V25, &o, 0, NULL);
    assert_has(x, ">0</MIMETruncated>");
    assert_has(x, "Bient=F4t");
    free(x);
}

static void test_text_helpers(void **state)
{
    char *t = NULL;
    size_t n = 0;
    int native = 0;

    (void)state;
    assert_int_equal(eas_email_text(html_only, strlen(html_only), EAS_BODY_PLAIN, &t, &n, &native),
                     0);
    assert_int_equal(native, EAS_BODY_HTML);
    assert_non_null(strstr(t, "friends"));
    free(t);
    assert_int_equal(eas_email_text(latin1_msg, strlen(latin1_msg), EAS_BODY_HTML, &t, &n, &native),
                     0);
    assert_int_equal(native, EAS_BODY_PLAIN);
    assert_non_null(strstr(t, "<html>"));
    free(t);
}

static void test_state_roundtrip(void **state)
{
    struct eas_sync_state st, back;
    unsigned char *blob = NULL;
    size_t len = 0;

    (void)state;
    eas_sync_state_init(&st, 9);
    st.cur.key = 5;
    st.cur.scan_modseq = 1234;
    for (int i = 30000; i > 0; i -= 3)
        assert_int_equal(eas_snap_hold(&st.cur, i, 1000 + i, 1700000000 - i), 0);
    assert_int_equal(eas_snap_pend(&st.cur, 77), 0);
    assert_int_equal(eas_snap_pend(&st.cur, 11), 0);
    assert_int_equal(eas_snap_pend(&st.cur, 77), 0);
    assert_int_equal(eas_snap_copy(&st.prev, &st.cur), 0);
    st.prev.key = 4;
    eas_snap_unhold(&st.cur, 3);
    assert_int_equal(eas_sync_cid_add(&st, "client-1", 555), 0);
    st.opts.filter = 3;
    st.opts.nprefs = 1;
    st.opts.prefs[0] = (struct eas_body_pref){.type = 2, .trunc = 5000, .preview = 100};
    assert_int_equal(eas_sync_state_encode(&st, &blob, &len), 0);
    /* compact: well under the 24 bytes per held item of the in-memory form */
    assert_true(len < 2 * 10000 * 12);
    assert_int_equal(eas_sync_state_decode(blob, len, &back), 0);
    assert_int_equal(back.cur.key, 5);
    assert_int_equal(back.prev.key, 4);
    assert_int_equal(back.cur.nheld, st.cur.nheld);
    assert_null(eas_snap_held(&back.cur, 3));
    assert_non_null(eas_snap_held(&back.prev, 3));
    assert_int_equal(eas_snap_held(&back.cur, 30000)->modseq, 31000);
    assert_int_equal(back.cur.npending, 2);
    assert_int_equal(back.cur.pending[0], 11);
    assert_int_equal(eas_sync_cid_find(&back, "client-1"), 555);
    assert_int_equal(back.opts.filter, 3);
    assert_int_equal(back.opts.prefs[0].trunc, 5000);
    eas_sync_state_free(&back);
    /* every truncation of the blob is refused, never read past its end */
    for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 997))
        if (eas_sync_state_decode(blob, cut, &back) == 0)
            eas_sync_state_free(&back);
    blob[4] ^= 0xff;
    if (eas_sync_state_decode(blob, len, &back) == 0)
        eas_sync_state_free(&back);
    free(blob);
    eas_sync_state_free(&st);
}

static void test_fileref(void **state)
{
    int64_t f, i;
    unsigned p;

    (void)state;
    assert_int_equal(eas_fileref_parse("7:42:4", &f, &i, &p), 0);
    assert_true(f == 7 && i == 42 && p == 4);
    assert_int_equal(eas_fileref_parse("7:42", &f, &i, &p), -1);
    assert_int_equal(eas_fileref_parse("7:42:4x", &f, &i, &p), -1);
    assert_int_equal(eas_fileref_parse("-1:42:4", &f, &i, &p), -1);
    assert_true(eas_filter_cutoff(0, 1000000) == 0);
    assert_true(eas_filter_cutoff(3, 1000000) == 1000000 - 7 * 86400);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* A device's Read change applied to an item read before an IMAP STORE landed: the
 * STORE's \Flagged must survive (it used to be overwritten with the flags read before). */
static void test_change_keeps_concurrent_flags(void **state)
{
    char dir[] = "/tmp/polaris-eas-email-XXXXXX";
    struct store_config cfg = {0};
    struct store *s = NULL;
    struct store_user *u = NULL;
    struct store_folder inbox;
    struct store_item stale, out, now;
    static const char msg[] = "Subject: x\r\n\r\nx\r\n";
    struct store_item_new in = {.body = msg, .body_len = sizeof(msg) - 1};
    struct eas_doc *d = eas_doc_new();
    struct eas_node *app;
    int changed = 0;

    (void)state;
    assert_non_null(mkdtemp(dir));
    cfg.data_dir = dir;
    assert_int_equal(store_open(&s, &cfg, NULL), STORE_OK);
    assert_int_equal(store_domain_add(s, "example.com", NULL, NULL), STORE_OK);
    assert_int_equal(
        store_account_add(s, "a@example.com", STORE_ENHANCED, 0, "Passw0rd-ok", NULL, NULL, NULL),
        STORE_OK);
    assert_int_equal(store_user_open(s, "a@example.com", &u, NULL), STORE_OK);
    assert_int_equal(store_folder_by_role(u, STORE_ROLE_INBOX, &inbox), STORE_OK);
    assert_int_equal(store_item_add(u, inbox.id, &in, &stale, NULL), STORE_OK);
    /* IMAP: STORE +FLAGS (\Flagged) after the device's view was read */
    assert_int_equal(
        store_item_set_flags(u, stale.id, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, NULL, 0, &now, NULL),
        STORE_OK);
    app = eas_add(d, NULL, EAS_AIRSYNC_APPLICATIONDATA);
    assert_non_null(eas_add_int(d, app, EAS_EMAIL_READ, 1));
    assert_int_equal(eas_email_apply_change(u, &stale, app, &out, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(store_item_get(u, stale.id, &now, NULL), STORE_OK);
    assert_int_equal(now.flags & (STORE_FLAG_SEEN | STORE_FLAG_FLAGGED),
                     STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
    assert_int_equal(out.modseq, now.modseq);
    eas_doc_free(d);
    store_user_release(u);
    store_close(s);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_charsets),
        cmocka_unit_test(test_html_only),
        cmocka_unit_test(test_nested_attachments),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_v25),
        cmocka_unit_test(test_text_helpers),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_fileref),
        cmocka_unit_test(test_change_keeps_concurrent_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
