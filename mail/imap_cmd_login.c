/* imap_cmd_login.c — LOGIN (RFC 3501 §6.2.3), and the login step AUTHENTICATE shares:
 * the shared verifier (auth.c), the gate, then the authenticated state. Answers use the
 * response codes of RFC 5530 so clients can tell a wrong password from a lockout. */
#include "mail/imap.h"

void imap_login_attempt(struct imap_session *s, struct imap_cmd *cmd, const char *user,
                        const char *pass)
{
    char caps[1024];

    switch (auth_verify(s->m->auth, user, pass, NULL, net_conn_remote_ip(s->c), &s->acct)) {
    case AUTH_OK:
        break;
    case AUTH_THROTTLED:
        imap_no(s, cmd, "[UNAVAILABLE] Too many failed logins; try again later");
        return;
    case AUTH_DISABLED:
        imap_no(s, cmd, "[CONTACTADMIN] This account is disabled");
        return;
    case AUTH_ERROR:
        imap_no(s, cmd, "[UNAVAILABLE] Temporary failure; try again later");
        return;
    default:
        imap_no(s, cmd, "[AUTHENTICATIONFAILED] Authentication failed");
        return;
    }
    if (!gate_allows(s->acct.type, SVC_IMAP)) {
        imap_no(s, cmd, "[NOPERM] IMAP is not enabled for this mailbox");
        return;
    }
    if (imap_session_login(s) < 0) {
        imap_no(s, cmd, "[UNAVAILABLE] Cannot open the mailbox; try again later");
        s->state = IMAP_LOGOUT;
        return;
    }
    log_info("imap", "%s: login %s", net_conn_remote_ip(s->c), s->acct.address);
    imap_capabilities(s, caps, sizeof(caps));
    imap_ok(s, cmd, "[CAPABILITY %s] Logged in", caps);
}

bool imap_plaintext_allowed(struct imap_session *s, struct imap_cmd *cmd)
{
    if (net_conn_is_tls(s->c) || s->m->allow_plaintext)
        return true;
    imap_no(s, cmd, "[PRIVACYREQUIRED] Plain-text logins need TLS: use STARTTLS first");
    return false;
}

void imap_cmd_login(struct imap_session *s, struct imap_cmd *cmd)
{
    const char *user, *pass;

    if (cmd->nargs != 2 || !(user = imap_arg_string(cmd, &cmd->args[0])) ||
        !(pass = imap_arg_string(cmd, &cmd->args[1])) || cmd->args[0].type == IMAP_ARG_LIST) {
        imap_bad(s, cmd, "LOGIN takes a user name and a password");
        return;
    }
    if (imap_plaintext_allowed(s, cmd))
        imap_login_attempt(s, cmd, user, pass);
}
