/* imap_cmd_authenticate.c — AUTHENTICATE (RFC 3501 §6.2.2) with PLAIN (RFC 4616, with the
 * initial response of SASL-IR, RFC 4959) and LOGIN (the old two-prompt mechanism Outlook
 * and some phones still use). Responses are strict base64 through server/b64.c. */
#include <string.h>
#include <strings.h>

#include "mail/imap.h"

#define IMAP_SASL_MAX 2048

/* Sends a continuation and reads the client's answer into buf (CRLF removed). Returns 0,
 * 1 when the client cancelled ("*"), -1 when the connection failed or the line was bad. */
static int imap_sasl_step(struct imap_session *s, const char *challenge, char *buf, size_t size)
{
    net_printf(s->c, "+ %s\r\n", challenge);
    if (net_flush(s->c) < 0)
        return -1;
    ssize_t n = net_read_line(s->c, buf, size, s->timeout_ms);
    if (n < 0) {
        if (n != NET_ETOOLONG)
            s->state = IMAP_LOGOUT;
        return -1;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return strcmp(buf, "*") == 0;
}

/* Decodes one base64 SASL response into a C string. -1 when malformed or it holds NUL. */
static int imap_sasl_text(const char *b64, char *out, size_t size)
{
    ssize_t n = b64_decode(b64, strlen(b64), (unsigned char *)out, size - 1, 0);
    if (n < 0 || memchr(out, '\0', (size_t)n))
        return -1;
    out[n] = '\0';
    return 0;
}

static void imap_auth_plain(struct imap_session *s, struct imap_cmd *cmd, const char *initial)
{
    char line[IMAP_SASL_MAX], user[321], pass[1025];
    unsigned char raw[IMAP_SASL_MAX];
    int rc;

    if (!initial) {
        if ((rc = imap_sasl_step(s, "", line, sizeof(line))) != 0) {
            imap_bad(s, cmd, "%s", rc > 0 ? "Authentication cancelled" : "Bad response");
            return;
        }
        initial = line;
    }
    /* "=" is SASL-IR's empty initial response: PLAIN cannot use it. */
    ssize_t n =
        strcmp(initial, "=") == 0 ? -1 : b64_decode(initial, strlen(initial), raw, sizeof(raw), 0);
    if (n < 0 || mail_sasl_plain(raw, (size_t)n, user, sizeof(user), pass, sizeof(pass)) < 0) {
        imap_bad(s, cmd, "Malformed PLAIN response");
        return;
    }
    imap_login_attempt(s, cmd, user, pass);
}

static void imap_auth_login(struct imap_session *s, struct imap_cmd *cmd, const char *initial)
{
    char line[IMAP_SASL_MAX], user[321], pass[1025];
    int rc;

    if (!initial) {
        /* "Username:" in base64, as every client of this mechanism expects */
        if ((rc = imap_sasl_step(s, "VXNlcm5hbWU6", line, sizeof(line))) != 0) {
            imap_bad(s, cmd, "%s", rc > 0 ? "Authentication cancelled" : "Bad response");
            return;
        }
        initial = line;
    }
    if (imap_sasl_text(initial, user, sizeof(user)) < 0) {
        imap_bad(s, cmd, "Malformed LOGIN response");
        return;
    }
    if ((rc = imap_sasl_step(s, "UGFzc3dvcmQ6", line, sizeof(line))) != 0 ||
        imap_sasl_text(line, pass, sizeof(pass)) < 0) {
        imap_bad(s, cmd, "%s", rc > 0 ? "Authentication cancelled" : "Malformed LOGIN response");
        return;
    }
    imap_login_attempt(s, cmd, user, pass);
}

void imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *cmd)
{
    const char *mech =
        cmd->nargs >= 1 && cmd->args[0].type == IMAP_ARG_ATOM ? cmd->args[0].str : NULL;
    const char *initial = NULL;

    if (!mech || cmd->nargs > 2 ||
        (cmd->nargs == 2 && !(initial = imap_arg_string(cmd, &cmd->args[1])))) {
        imap_bad(s, cmd, "AUTHENTICATE takes a mechanism and an optional initial response");
        return;
    }
    if (strcasecmp(mech, "PLAIN") != 0 && strcasecmp(mech, "LOGIN") != 0) {
        imap_no(s, cmd, "[CANNOT] Unsupported authentication mechanism");
        return;
    }
    if (!imap_plaintext_allowed(s, cmd))
        return;
    if (strcasecmp(mech, "PLAIN") == 0)
        imap_auth_plain(s, cmd, initial);
    else
        imap_auth_login(s, cmd, initial);
}
