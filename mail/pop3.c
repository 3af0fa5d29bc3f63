/*
 * pop3.c — POP3 (RFC 1939) with CAPA, RESP-CODES and SASL (RFC 2449), STLS (RFC 2595) and
 * AUTH PLAIN. It serves the INBOX of the authenticated user, as the hosting product's
 * customers are told.
 *
 * The session is a small state machine (AUTHORIZATION → TRANSACTION → UPDATE) driven by a
 * command table. At login the INBOX is snapshotted: message numbers stay fixed for the
 * session as RFC 1939 requires, whatever other protocols do meanwhile. DELE only marks;
 * QUIT removes the marked messages in one store transaction, so a dropped connection
 * deletes nothing. UIDL is the store's item id, stable for the life of a message (also
 * across moves out of the INBOX and back).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mail.h"

#define POP3_LINE_MAX   1024
#define POP3_MAX_ERRORS 10
#define POP3_IDLE_MS    (10 * 60 * 1000) /* RFC 1939: at least 10 minutes */

enum pop3_state { POP3_AUTHORIZATION = 1, POP3_TRANSACTION = 2 };

struct pop3_msg {
    int64_t id;
    int64_t size;
    int deleted;
};

struct pop3 {
    struct net_conn *c;
    struct mail_ctx *m;
    enum pop3_state state;
    char user[321]; /* from USER, waiting for PASS */
    struct store_account acct;
    struct store_user *su;
    struct pop3_msg *msgs;
    size_t n, cap;
    int quit;
    int timeout_ms; /* inactivity allowed, on every read */
};

typedef void (*pop3_cmd_fn)(struct pop3 *p, char *args);

static void pop3_ok(struct pop3 *p, const char *text)
{
    net_printf(p->c, "+OK %s\r\n", text);
}

static void pop3_err(struct pop3 *p, const char *text)
{
    net_printf(p->c, "-ERR %s\r\n", text);
}

static int pop3_plaintext_ok(struct pop3 *p)
{
    return net_conn_is_tls(p->c) || p->m->allow_plaintext;
}

/* ---- AUTHORIZATION ------------------------------------------------------------------ */

static void pop3_cmd_capa(struct pop3 *p, char *args)
{
    net_printf(p->c, "+OK Capability list follows\r\n");
    net_printf(p->c, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
    if (p->state == POP3_AUTHORIZATION) {
        if (pop3_plaintext_ok(p))
            net_printf(p->c, "USER\r\nSASL PLAIN\r\n");
        if (net_conn_can_starttls(p->c))
            net_printf(p->c, "STLS\r\n");
    }
    net_printf(p->c, "EXPIRE NEVER\r\nIMPLEMENTATION Polaris\r\n.\r\n");
}

static void pop3_cmd_stls(struct pop3 *p, char *args)
{
    if (!net_conn_can_starttls(p->c)) {
        pop3_err(p, net_conn_is_tls(p->c) ? "Already using TLS" : "TLS is not available");
        return;
    }
    pop3_ok(p, "Begin TLS negotiation");
    if (net_starttls(p->c) < 0)
        p->quit = 1;
}

static int pop3_inbox_cb(const struct store_item_brief *it, void *ctx)
{
    struct pop3 *p = ctx;

    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct pop3_msg *grown = realloc(p->msgs, cap * sizeof(*grown));
        if (!grown)
            return 1;
        p->msgs = grown;
        p->cap = cap;
    }
    p->msgs[p->n++] = (struct pop3_msg){.id = it->id, .size = it->size};
    return 0;
}

static int pop3_load_inbox(struct pop3 *p)
{
    struct store_folder inbox;
    struct store_err err;

    if (store_user_open(p->m->store, p->acct.address, &p->su, &err) != 0)
        return -1;
    if (store_folder_by_role(p->su, STORE_ROLE_INBOX, &inbox) != 0)
        return -1;
    if (store_item_list_brief(p->su, inbox.id, pop3_inbox_cb, p, &err) != 0)
        return -1;
    return 0;
}

/* Verifies credentials and enters TRANSACTION, or answers why not. */
static void pop3_login(struct pop3 *p, const char *user, const char *pass)
{
    enum auth_result r =
        auth_verify(p->m->auth, user, pass, NULL, net_conn_remote_ip(p->c), &p->acct);
    switch (r) {
    case AUTH_OK:
        break;
    case AUTH_THROTTLED:
        pop3_err(p, "[AUTH] Too many failed logins; try again later");
        return;
    case AUTH_DISABLED:
        pop3_err(p, "[AUTH] This account is disabled");
        return;
    case AUTH_ERROR:
        pop3_err(p, "[SYS/TEMP] Temporary failure, try again later");
        return;
    default:
        pop3_err(p, "[AUTH] Authentication failed");
        return;
    }
    if (!gate_allows(p->acct.type, SVC_POP3)) {
        pop3_err(p, "[AUTH] POP3 is not enabled for this mailbox");
        return;
    }
    if (pop3_load_inbox(p) < 0) {
        pop3_err(p, "[SYS/TEMP] Cannot open the mailbox, try again later");
        p->quit = 1;
        return;
    }
    p->state = POP3_TRANSACTION;
    log_info("pop3", "%s: login %s, %zu messages", net_conn_remote_ip(p->c), p->acct.address, p->n);
    net_printf(p->c, "+OK Logged in, %zu messages\r\n", p->n);
}

static void pop3_cmd_user(struct pop3 *p, char *args)
{
    if (!pop3_plaintext_ok(p)) {
        pop3_err(p, "[AUTH] Plain-text logins need TLS: use STLS first");
        return;
    }
    if (!*args || strlen(args) >= sizeof(p->user)) {
        pop3_err(p, "USER needs a user name");
        return;
    }
    snprintf(p->user, sizeof(p->user), "%s", args);
    pop3_ok(p, "Send your password");
}

static void pop3_cmd_pass(struct pop3 *p, char *args)
{
    if (!p->user[0]) {
        pop3_err(p, "Send USER first");
        return;
    }
    pop3_login(p, p->user, args);
    p->user[0] = '\0';
}

static void pop3_cmd_auth(struct pop3 *p, char *args)
{
    char *mech = args, *initial = strchr(args, ' ');
    char line[POP3_LINE_MAX], user[321], pass[1025];
    unsigned char raw[1400];
    ssize_t n;

    if (initial)
        *initial++ = '\0';
    if (!*mech) { /* RFC 1734 style listing, as some clients probe */
        net_printf(p->c, "+OK\r\nPLAIN\r\n.\r\n");
        return;
    }
    if (strcasecmp(mech, "PLAIN") != 0) {
        pop3_err(p, "Unsupported authentication mechanism");
        return;
    }
    if (!pop3_plaintext_ok(p)) {
        pop3_err(p, "[AUTH] Plain-text logins need TLS: use STLS first");
        return;
    }
    if (!initial) {
        net_printf(p->c, "+ \r\n");
        net_flush(p->c);
        n = net_read_line(p->c, line, sizeof(line), p->timeout_ms);
        if (n < 0) {
            p->quit = n != NET_ETOOLONG;
            if (n == NET_ETOOLONG)
                pop3_err(p, "Response too long");
            return;
        }
        line[strcspn(line, "\r\n")] = '\0';
        initial = line;
    }
    if (strcmp(initial, "*") == 0) {
        pop3_err(p, "Authentication cancelled");
        return;
    }
    n = b64_decode(initial, strlen(initial), raw, sizeof(raw), 0);
    if (n < 0 || mail_sasl_plain(raw, (size_t)n, user, sizeof(user), pass, sizeof(pass)) < 0) {
        pop3_err(p, "[AUTH] Malformed PLAIN response");
        return;
    }
    pop3_login(p, user, pass);
}

/* ---- TRANSACTION -------------------------------------------------------------------- */

/* Parses a message number argument; NULL (after answering -ERR) when it is not a live
 * message of this session. */
static struct pop3_msg *pop3_msg_arg(struct pop3 *p, const char *arg)
{
    char *end;
    unsigned long v;

    if (!*arg || *arg < '0' || *arg > '9') {
        pop3_err(p, "Message number required");
        return NULL;
    }
    v = strtoul(arg, &end, 10);
    if ((*end && *end != ' ') || v == 0 || v > p->n) {
        pop3_err(p, "No such message");
        return NULL;
    }
    if (p->msgs[v - 1].deleted) {
        pop3_err(p, "Message is deleted");
        return NULL;
    }
    return &p->msgs[v - 1];
}

static void pop3_cmd_stat(struct pop3 *p, char *args)
{
    size_t count = 0;
    int64_t bytes = 0;

    for (size_t i = 0; i < p->n; i++)
        if (!p->msgs[i].deleted) {
            count++;
            bytes += p->msgs[i].size;
        }
    net_printf(p->c, "+OK %zu %lld\r\n", count, (long long)bytes);
}

/* LIST and UIDL share their shape: one message, or all live ones. */
static void pop3_listing(struct pop3 *p, char *args, int uidl)
{
    if (*args) {
        struct pop3_msg *m = pop3_msg_arg(p, args);
        if (m)
            net_printf(p->c, "+OK %zu %lld\r\n", (size_t)(m - p->msgs) + 1,
                       uidl ? (long long)m->id : (long long)m->size);
        return;
    }
    net_printf(p->c, "+OK\r\n");
    for (size_t i = 0; i < p->n; i++)
        if (!p->msgs[i].deleted)
            net_printf(p->c, "%zu %lld\r\n", i + 1,
                       uidl ? (long long)p->msgs[i].id : (long long)p->msgs[i].size);
    net_printf(p->c, ".\r\n");
}

static void pop3_cmd_list(struct pop3 *p, char *args)
{
    pop3_listing(p, args, 0);
}

static void pop3_cmd_uidl(struct pop3 *p, char *args)
{
    pop3_listing(p, args, 1);
}

/* Sends a message body dot-stuffed with CRLF line ends. max_body_lines < 0 sends it all;
 * otherwise the header, the blank line and that many body lines (TOP). */
static void pop3_send_message(struct pop3 *p, const char *b, size_t len, long max_body_lines)
{
    size_t i = 0;
    int in_body = 0;
    long body_lines = 0;

    while (i < len) {
        if (in_body && max_body_lines >= 0 && body_lines >= max_body_lines)
            break;
        const char *lf = memchr(b + i, '\n', len - i);
        size_t end = lf ? (size_t)(lf - b) : len;
        size_t textlen = end - i;
        if (textlen && b[end - 1] == '\r' && lf)
            textlen--;
        if (textlen && b[i] == '.')
            net_write(p->c, ".", 1);
        net_write(p->c, b + i, textlen);
        net_write(p->c, "\r\n", 2);
        if (in_body)
            body_lines++;
        else if (textlen == 0)
            in_body = 1;
        i = lf ? end + 1 : len;
    }
    net_write(p->c, ".\r\n", 3);
}

static void pop3_retr_top(struct pop3 *p, struct pop3_msg *m, long lines)
{
    char *body = NULL;
    size_t len = 0;
    struct store_err err;

    if (store_item_body(p->su, m->id, &body, &len, &err) != 0) {
        pop3_err(p, "[SYS/TEMP] Cannot read the message");
        return;
    }
    net_printf(p->c, "+OK %lld octets\r\n", (long long)m->size);
    pop3_send_message(p, body, len, lines);
    free(body);
}

static void pop3_cmd_retr(struct pop3 *p, char *args)
{
    struct pop3_msg *m = pop3_msg_arg(p, args);
    if (m)
        pop3_retr_top(p, m, -1);
}

static void pop3_cmd_top(struct pop3 *p, char *args)
{
    char *sp = strchr(args, ' '), *end;
    struct pop3_msg *m;
    long lines;

    if (!sp) {
        pop3_err(p, "TOP needs a message number and a line count");
        return;
    }
    lines = strtol(sp + 1, &end, 10);
    if (sp[1] < '0' || sp[1] > '9' || *end || lines < 0) {
        pop3_err(p, "TOP needs a non-negative line count");
        return;
    }
    *sp = '\0';
    if ((m = pop3_msg_arg(p, args)))
        pop3_retr_top(p, m, lines);
}

static void pop3_cmd_dele(struct pop3 *p, char *args)
{
    struct pop3_msg *m = pop3_msg_arg(p, args);
    if (m) {
        m->deleted = 1;
        pop3_ok(p, "Marked for deletion");
    }
}

static void pop3_cmd_rset(struct pop3 *p, char *args)
{
    for (size_t i = 0; i < p->n; i++)
        p->msgs[i].deleted = 0;
    pop3_ok(p, "Reset");
}

static void pop3_cmd_noop(struct pop3 *p, char *args)
{
    pop3_ok(p, "");
}

/* UPDATE state: remove what was marked, all in one transaction. */
static int pop3_update(struct pop3 *p)
{
    struct store_err err;
    size_t gone = 0;

    if (store_txn_begin(p->su, &err) != 0)
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        if (!p->msgs[i].deleted)
            continue;
        int rc = store_item_delete(p->su, p->msgs[i].id, &err);
        if (rc != 0 && rc != STORE_ENOTFOUND) { /* already gone elsewhere is fine */
            store_txn_rollback(p->su);
            return -1;
        }
        gone++;
    }
    if (store_txn_commit(p->su, NULL, &err) != 0)
        return -1;
    if (gone)
        log_info("pop3", "%s: deleted %zu messages", p->acct.address, gone);
    return 0;
}

static void pop3_cmd_quit(struct pop3 *p, char *args)
{
    p->quit = 1;
    if (p->state == POP3_TRANSACTION && pop3_update(p) < 0) {
        pop3_err(p, "[SYS/TEMP] Some deleted messages were not removed");
        return;
    }
    pop3_ok(p, "Bye");
}

static const struct pop3_cmd {
    const char *name;
    unsigned states;
    pop3_cmd_fn fn;
} pop3_cmds[] = {
    {"CAPA", POP3_AUTHORIZATION | POP3_TRANSACTION, pop3_cmd_capa},
    {"QUIT", POP3_AUTHORIZATION | POP3_TRANSACTION, pop3_cmd_quit},
    {"NOOP", POP3_TRANSACTION, pop3_cmd_noop},
    {"STLS", POP3_AUTHORIZATION, pop3_cmd_stls},
    {"USER", POP3_AUTHORIZATION, pop3_cmd_user},
    {"PASS", POP3_AUTHORIZATION, pop3_cmd_pass},
    {"AUTH", POP3_AUTHORIZATION, pop3_cmd_auth},
    {"STAT", POP3_TRANSACTION, pop3_cmd_stat},
    {"LIST", POP3_TRANSACTION, pop3_cmd_list},
    {"UIDL", POP3_TRANSACTION, pop3_cmd_uidl},
    {"RETR", POP3_TRANSACTION, pop3_cmd_retr},
    {"TOP", POP3_TRANSACTION, pop3_cmd_top},
    {"DELE", POP3_TRANSACTION, pop3_cmd_dele},
    {"RSET", POP3_TRANSACTION, pop3_cmd_rset},
};

static void pop3_dispatch(struct pop3 *p, char *line)
{
    char *args = strchr(line, ' ');

    if (args)
        *args++ = '\0';
    else
        args = line + strlen(line);
    for (size_t i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++) {
        const struct pop3_cmd *cmd = &pop3_cmds[i];
        if (strcasecmp(line, cmd->name) != 0)
            continue;
        if (!(cmd->states & p->state)) {
            pop3_err(p,
                     p->state == POP3_AUTHORIZATION ? "Log in first" : "Not allowed after login");
            return;
        }
        cmd->fn(p, args);
        return;
    }
    pop3_err(p, "Unknown command");
}

void pop3_session(struct net_conn *c, void *ctx)
{
    struct pop3 p = {.c = c, .m = ctx, .state = POP3_AUTHORIZATION};
    char line[POP3_LINE_MAX];
    int errors = 0;

    p.timeout_ms = p.m->idle_timeout_ms > 0 ? p.m->idle_timeout_ms : POP3_IDLE_MS;

    net_printf(c, "+OK Polaris POP3 ready\r\n");
    while (!p.quit) {
        if (net_flush(c) < 0)
            break;
        ssize_t n = net_read_line(c, line, sizeof(line), p.timeout_ms);
        if (n == NET_ETOOLONG) {
            pop3_err(&p, "Line too long");
            if (++errors >= POP3_MAX_ERRORS)
                break;
            continue;
        }
        if (n == NET_ETIMEOUT)
            pop3_err(&p, "Autologout; idle for too long");
        else if (n == NET_ESHUTDOWN)
            pop3_err(&p, "[SYS/TEMP] Server shutting down");
        if (n < 0)
            break;
        if (memchr(line, '\0', (size_t)n)) {
            pop3_err(&p, "NUL bytes are not allowed");
            if (++errors >= POP3_MAX_ERRORS)
                break;
            continue;
        }
        line[strcspn(line, "\r\n")] = '\0';
        pop3_dispatch(&p, line);
    }
    net_flush(c);
    if (p.su)
        store_user_release(p.su);
    free(p.msgs);
}
