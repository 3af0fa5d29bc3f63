/*
 * fuzz_eas_cmd.c — libFuzzer target for the ActiveSync commands' request handling: every
 * command that reads a WBXML body, run as eas_http.c runs it, on a real store (a mailbox
 * with mail, a calendar event, a contact) in a scratch data dir.
 *
 * Input: byte 0 picks the command, byte 1 the protocol version, the rest is the body.
 * Bodies our decoder refuses are the decoder's business (fuzz_wbxml); what it accepts goes
 * to the command, whose answer must encode. Ping is left out (it only waits); Sync's Wait
 * finds no connection to park (the request is detached) and answers at once. Outgoing mail
 * (SendMail, SmartReply, SmartForward, MeetingResponse) reaches local mailboxes only: the
 * pipeline has no queue, so other domains are refused.
 *
 *   fuzz_eas_cmd -max_len=65536 tests/fuzz/corpus/eas_cmd
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eas/eas_int.h"

static struct store *fz_st;
static struct config fz_cfg;
static struct eas *fz_eas;
static struct deliver fz_dl;
static struct store_account fz_acct;

static const char *const fz_cmds[] = {
    "Sync",
    "FolderSync",
    "FolderCreate",
    "FolderUpdate",
    "FolderDelete",
    "GetItemEstimate",
    "ItemOperations",
    "MoveItems",
    "Search",
    "Find",
    "Settings",
    "Provision",
    "SendMail",
    "SmartReply",
    "SmartForward",
    "MeetingResponse",
    "ResolveRecipients",
    "ValidateCert",
};
static const int fz_versions[] = {EAS_V25,  EAS_V120, EAS_V121, EAS_V140,
                                  EAS_V141, EAS_V160, EAS_V161};

static void fz_die(const char *what)
{
    fprintf(stderr, "fuzz_eas_cmd: %s\n", what);
    abort();
}

static void fz_put(struct store_user *u, enum store_role role, const char *body, const char *ctype,
                   const char *name, const char *uid)
{
    struct store_folder f;
    struct store_item_new in = {
        .body = body, .body_len = strlen(body), .ctype = ctype, .name = name, .ext_uid = uid};

    if (store_folder_by_role(u, role, &f) != STORE_OK ||
        store_item_add(u, f.id, &in, NULL, NULL) != STORE_OK)
        fz_die("cannot seed the mailbox");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char dir[] = "/tmp/fuzz-eas-cmd-XXXXXX";
    struct store_config sc = {0};
    struct store_user *u;

    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    if (!mkdtemp(dir))
        fz_die("mkdtemp");
    config_defaults(&fz_cfg);
    snprintf(fz_cfg.data_dir, sizeof(fz_cfg.data_dir), "%s", dir);
    snprintf(fz_cfg.hostname, sizeof(fz_cfg.hostname), "localhost");
    sc.data_dir = dir;
    if (store_open(&fz_st, &sc, NULL) != STORE_OK ||
        store_domain_add(fz_st, "example.com", NULL, NULL) != STORE_OK ||
        store_account_add(fz_st, "alice@example.com", STORE_ENHANCED, 0, "Fuzz-Pass1!", NULL, NULL,
                          NULL) != STORE_OK ||
        store_account_add(fz_st, "bob@example.com", STORE_ENHANCED, 0, "Fuzz-Pass1!", NULL, NULL,
                          NULL) != STORE_OK ||
        store_account_get(fz_st, "alice@example.com", &fz_acct, NULL) != STORE_OK)
        fz_die("cannot make the store");
    /* no queue: mail for other domains is refused, nothing ever leaves */
    fz_dl = (struct deliver){.store = fz_st, .cfg = &fz_cfg};
    if (!(fz_eas = eas_new(fz_st, &fz_cfg, &fz_dl)))
        fz_die("eas_new");
    if (store_user_open(fz_st, "alice@example.com", &u, NULL) != STORE_OK)
        fz_die("store_user_open");
    fz_put(u, STORE_ROLE_INBOX,
           "From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: hello\r\n"
           "Message-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed;"
           " boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n"
           "Content-Type: application/octet-stream\r\nContent-Disposition: attachment;"
           " filename=a.bin\r\n\r\nAAAA\r\n--b--\r\n",
           "message/rfc822", NULL, "<m1@example.com>");
    fz_put(u, STORE_ROLE_CALENDAR,
           "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//f//EN\r\nBEGIN:VEVENT\r\nUID:e1\r\n"
           "DTSTAMP:20300101T000000Z\r\nDTSTART:20300107T090000Z\r\nDTEND:20300107T100000Z\r\n"
           "RRULE:FREQ=WEEKLY;COUNT=5\r\nSUMMARY:weekly\r\nORGANIZER:mailto:bob@example.com\r\n"
           "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:alice@example.com\r\nEND:VEVENT\r\n"
           "END:VCALENDAR\r\n",
           "text/calendar", "e1.ics", "e1");
    fz_put(u, STORE_ROLE_CONTACTS,
           "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Ann Example\r\nN:Example;Ann;;;\r\n"
           "EMAIL:ann@example.net\r\nEND:VCARD\r\n",
           "text/vcard", "c1.vcf", "c1");
    store_user_release(u);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct eas_req req;
    struct eas_device dev;
    const struct eas_cmd *cmd;
    struct eas_doc *in = NULL;
    char err[128];
    int version;

    if (size < 3)
        return 0;
    cmd = eas_cmd_lookup(fz_cmds[data[0] % (sizeof(fz_cmds) / sizeof(fz_cmds[0]))]);
    version = fz_versions[data[1] % (sizeof(fz_versions) / sizeof(fz_versions[0]))];
    if (!cmd || version < cmd->min_version || (cmd->max_version && version > cmd->max_version))
        return 0;
    if (wbxml_decode(data + 2, size - 2, &in, err, sizeof(err)) != 0)
        return 0;
    memset(&req, 0, sizeof(req));
    memset(&dev, 0, sizeof(dev));
    snprintf(dev.id, sizeof(dev.id), "fuzzdev");
    snprintf(dev.type, sizeof(dev.type), "Fuzz");
    dev.version = version;
    req.e = fz_eas;
    req.acct = &fz_acct;
    req.dev = &dev;
    req.command = cmd;
    req.version = version;
    snprintf(req.cmd, sizeof(req.cmd), "%s", cmd->name);
    snprintf(req.device_id, sizeof(req.device_id), "fuzzdev");
    snprintf(req.device_type, sizeof(req.device_type), "Fuzz");
    req.body = (const char *)data + 2;
    req.body_len = size - 2;
    req.in = in;
    req.http = http_req_detached("POST", "/Microsoft-Server-ActiveSync", &fz_acct, "127.0.0.1");
    if (!req.http || store_user_open(fz_st, fz_acct.address, &req.u, NULL) != STORE_OK)
        fz_die("cannot set up a request");
    (void)cmd->fn(&req);
    if (req.out) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (wbxml_encode(req.out, &buf, &len) != 0)
            fz_die("a command's answer does not encode");
        free(buf);
    }
    if (req.cmd_cleanup)
        req.cmd_cleanup(&req);
    eas_doc_free(req.in);
    eas_doc_free(req.out);
    free(req.raw);
    store_user_release(req.u);
    http_req_detached_free(req.http);
    return 0;
}
