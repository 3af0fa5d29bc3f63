/*
 * imap.c — the IMAP4rev1 / IMAP4rev2 session: reading commands off the connection (lines
 * and literals, bounded before a byte of a literal is read), the command table, the
 * response helpers the command files share, and the store notifications that wake IDLE.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mail/imap.h"

/* ---- the command table ----------------------------------------------------------------- */

#define ANY      (IMAP_NOAUTH | IMAP_AUTH | IMAP_SELECTED)
#define AUTHED   (IMAP_AUTH | IMAP_SELECTED)
#define SELECTED IMAP_SELECTED

/* IMAP_CMD_UID: may follow "UID". IMAP_CMD_NOSYNC: no untagged updates after it (the
 * command sends its own, or none are allowed). IMAP_CMD_NOEXPUNGE: without UID, EXPUNGE
 * responses must wait (RFC 3501 §7.4.1: FETCH, STORE, SEARCH). */
#define IMAP_CMD_UID       0x1
#define IMAP_CMD_NOSYNC    0x2
#define IMAP_CMD_NOEXPUNGE 0x4

static const struct imap_command {
    const char *name;
    imap_cmd_fn fn;
    unsigned states;
    unsigned flags;
} imap_commands[] = {
    {"CAPABILITY", imap_cmd_capability, ANY, 0},
    {"NOOP", imap_cmd_noop, ANY, 0},
    {"LOGOUT", imap_cmd_logout, ANY, IMAP_CMD_NOSYNC},
    {"STARTTLS", imap_cmd_starttls, IMAP_NOAUTH, IMAP_CMD_NOSYNC},
    {"LOGIN", imap_cmd_login, IMAP_NOAUTH, IMAP_CMD_NOSYNC},
    {"AUTHENTICATE", imap_cmd_authenticate, IMAP_NOAUTH, IMAP_CMD_NOSYNC},
    {"ID", imap_cmd_id, ANY, 0},
    {"ENABLE", imap_cmd_enable, AUTHED, 0},
    {"NAMESPACE", imap_cmd_namespace, AUTHED, 0},
    {"SELECT", imap_cmd_select, AUTHED, IMAP_CMD_NOSYNC},
    {"EXAMINE", imap_cmd_select, AUTHED, IMAP_CMD_NOSYNC},
    {"CREATE", imap_cmd_create, AUTHED, 0},
    {"DELETE", imap_cmd_delete, AUTHED, 0},
    {"RENAME", imap_cmd_rename, AUTHED, 0},
    {"SUBSCRIBE", imap_cmd_subscribe, AUTHED, 0},
    {"UNSUBSCRIBE", imap_cmd_unsubscribe, AUTHED, 0},
    {"LIST", imap_cmd_list, AUTHED, 0},
    {"LSUB", imap_cmd_lsub, AUTHED, 0},
    {"STATUS", imap_cmd_status, AUTHED, 0},
    {"APPEND", imap_cmd_append, AUTHED, 0},
    {"GETQUOTA", imap_cmd_getquota, AUTHED, 0},
    {"GETQUOTAROOT", imap_cmd_getquotaroot, AUTHED, 0},
    {"SETQUOTA", imap_cmd_setquota, AUTHED, 0},
    {"IDLE", imap_cmd_idle, AUTHED, IMAP_CMD_NOSYNC},
    {"CHECK", imap_cmd_check, SELECTED, 0},
    {"CLOSE", imap_cmd_close, SELECTED, IMAP_CMD_NOSYNC},
    {"UNSELECT", imap_cmd_unselect, SELECTED, IMAP_CMD_NOSYNC},
    {"EXPUNGE", imap_cmd_expunge, SELECTED, IMAP_CMD_UID},
    {"COPY", imap_cmd_copy, SELECTED, IMAP_CMD_UID | IMAP_CMD_NOEXPUNGE},
    {"MOVE", imap_cmd_move, SELECTED, IMAP_CMD_UID},
    {"FETCH", imap_cmd_fetch, SELECTED, IMAP_CMD_UID | IMAP_CMD_NOEXPUNGE},
    {"STORE", imap_cmd_store, SELECTED, IMAP_CMD_UID | IMAP_CMD_NOEXPUNGE},
    {"SEARCH", imap_cmd_search, SELECTED, IMAP_CMD_UID | IMAP_CMD_NOEXPUNGE},
    {"SORT", imap_cmd_sort, SELECTED, IMAP_CMD_UID | IMAP_CMD_NOEXPUNGE},
    {"THREAD", imap_cmd_thread, SELECTED, IMAP_CMD_UID | IMAP_CMD_NOEXPUNGE},
};

static const struct imap_command *imap_command_find(const char *name)
{
    for (size_t i = 0; i < sizeof(imap_commands) / sizeof(imap_commands[0]); i++)
        if (strcmp(imap_commands[i].name, name) == 0)
            return &imap_commands[i];
    return NULL;
}

/* ---- responses ----------------------------------------------------------------------- */

int imap_out(void *session, const void *data, size_t len)
{
    struct imap_session *s = session;
    return net_write(s->c, data, len);
}

void imap_reply(struct imap_session *s, struct imap_cmd *cmd, const char *status, const char *fmt,
                ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    net_printf(s->c, "%s %s %s\r\n", cmd && cmd->tag[0] ? cmd->tag : "*", status, text);
    if (strcmp(status, "BAD") == 0)
        s->bad_in_a_row++;
    else
        s->bad_in_a_row = 0;
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
    char text[4096];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    net_write(s->c, "* ", 2);
    net_write(s->c, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
    net_write(s->c, "\r\n", 2);
}

static unsigned imap_string_flags(const struct imap_session *s)
{
    return s->enabled & IMAP_EN_UTF8 ? IMAP_WRITE_UTF8 : 0;
}

void imap_out_astring(struct imap_session *s, const char *str)
{
    imap_write_astring(str, strlen(str), imap_string_flags(s), imap_out, s);
}

void imap_out_string(struct imap_session *s, const char *str)
{
    imap_write_string(str, strlen(str), imap_string_flags(s), imap_out, s);
}

void imap_out_flags(struct imap_session *s, uint32_t flags, const char *keywords)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {STORE_FLAG_ANSWERED, "\\Answered"}, {STORE_FLAG_FLAGGED, "\\Flagged"},
        {STORE_FLAG_DELETED, "\\Deleted"},   {STORE_FLAG_SEEN, "\\Seen"},
        {STORE_FLAG_DRAFT, "\\Draft"},       {STORE_FLAG_FORWARDED, "$Forwarded"},
    };
    const char *sep = "";

    net_write(s->c, "(", 1);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (flags & names[i].bit) {
            net_printf(s->c, "%s%s", sep, names[i].name);
            sep = " ";
        }
    if (keywords && *keywords)
        net_printf(s->c, "%s%s", sep, keywords);
    net_write(s->c, ")", 1);
}

void imap_store_error(struct imap_session *s, struct imap_cmd *cmd, int rc,
                      const struct store_err *err, const char *what)
{
    const char *msg = err && err->msg[0] ? err->msg : what;

    switch (rc) {
    case STORE_EQUOTA:
        imap_no(s, cmd, "[OVERQUOTA] Mailbox is full");
        break;
    case STORE_ENOTFOUND:
        imap_no(s, cmd, "[NONEXISTENT] %s", msg);
        break;
    case STORE_EEXIST:
        imap_no(s, cmd, "[ALREADYEXISTS] %s", msg);
        break;
    case STORE_EINVAL:
        imap_no(s, cmd, "[CANNOT] %s", msg);
        break;
    case STORE_EBUSY:
        imap_no(s, cmd, "[INUSE] Mailbox is busy, try again");
        break;
    default:
        log_error("imap", "%s: %s: %s", s->acct.address, what, msg);
        imap_no(s, cmd, "[SERVERBUG] %s failed; try again later", what);
    }
}

/* ---- capabilities ------------------------------------------------------------------ */

static bool imap_plaintext_ok(const struct imap_session *s)
{
    return net_conn_is_tls(s->c) || s->m->allow_plaintext;
}

void imap_capabilities(struct imap_session *s, char *buf, size_t size)
{
    int n = snprintf(buf, size, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE");
    if (n < 0 || (size_t)n >= size)
        return;
    if (s->state == IMAP_NOAUTH) {
        snprintf(buf + n, size - (size_t)n, "%s%s", net_conn_can_starttls(s->c) ? " STARTTLS" : "",
                 imap_plaintext_ok(s) ? " AUTH=PLAIN AUTH=LOGIN" : " LOGINDISABLED");
        return;
    }
    snprintf(buf + n, size - (size_t)n,
             " NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE "
             "LIST-EXTENDED LIST-STATUS CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE ESEARCH "
             "SEARCHRES SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES BINARY UTF8=ACCEPT "
             "STATUS=SIZE APPENDLIMIT=%d",
             IMAP_APPEND_LIMIT);
}

/* ---- flags ------------------------------------------------------------------------------ */

uint32_t imap_flags_to_store(unsigned f)
{
    return (f & IMAP_FLAG_SEEN ? STORE_FLAG_SEEN : 0) |
           (f & IMAP_FLAG_ANSWERED ? STORE_FLAG_ANSWERED : 0) |
           (f & IMAP_FLAG_FLAGGED ? STORE_FLAG_FLAGGED : 0) |
           (f & IMAP_FLAG_DELETED ? STORE_FLAG_DELETED : 0) |
           (f & IMAP_FLAG_DRAFT ? STORE_FLAG_DRAFT : 0);
}

int imap_keywords_join(const struct imap_flags *f, uint32_t *store_flags, char *buf, size_t size)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < f->nkeywords; i++) {
        const char *k = f->keywords[i];
        size_t n = strlen(k);
        /* $Forwarded is a flag other protocols share (ActiveSync's last verb). */
        if (strcasecmp(k, "$Forwarded") == 0) {
            *store_flags |= STORE_FLAG_FORWARDED;
            continue;
        }
        if (o + n + 2 > size)
            return -1;
        if (o)
            buf[o++] = ' ';
        memcpy(buf + o, k, n + 1);
        o += n;
    }
    return 0;
}

/* ---- mailbox names --------------------------------------------------------------------- */

int imap_arg_mailbox(struct imap_session *s, struct imap_cmd *cmd, const struct imap_arg *arg,
                     char *buf, size_t size)
{
    const char *raw = arg ? imap_arg_string(cmd, arg) : NULL;
    char err[128];

    if (!raw || arg->type == IMAP_ARG_NIL) {
        imap_bad(s, cmd, "Mailbox name expected");
        return -1;
    }
    if (s->enabled & IMAP_EN_UTF8) {
        if (!imap_utf8_valid(raw, strlen(raw)) || strlen(raw) >= size) {
            imap_bad(s, cmd, "Mailbox name is not valid UTF-8");
            return -1;
        }
        memcpy(buf, raw, strlen(raw) + 1);
        return 0;
    }
    if (imap_utf7_to_utf8(raw, strlen(raw), buf, size, err, sizeof(err)) < 0) {
        imap_bad(s, cmd, "Mailbox name: %s", err);
        return -1;
    }
    return 0;
}

int imap_folder_path(struct imap_session *s, const struct store_folder *f, char *buf, size_t size)
{
    struct store_folder cur = *f;
    struct store_err err;
    char tmp[1024];
    size_t len;

    if (f->role == STORE_ROLE_INBOX) {
        snprintf(buf, size, "INBOX");
        return 0;
    }
    len = strlen(f->name);
    if (len >= size)
        return -1;
    memcpy(buf, f->name, len + 1);
    /* Walk up; folders are shallow, and a depth cap guards against a corrupt cycle. */
    for (int depth = 0; cur.parent_id != 0; depth++) {
        if (depth > 64 || store_folder_get(s->su, cur.parent_id, &cur, &err) != STORE_OK)
            return -1;
        const char *pname = cur.role == STORE_ROLE_INBOX ? "INBOX" : cur.name;
        int n = snprintf(tmp, sizeof(tmp), "%s%c%s", pname, MAIL_HIER_SEP, buf);
        if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(tmp))
            return -1;
        memcpy(buf, tmp, (size_t)n + 1);
    }
    return 0;
}

void imap_out_mailbox(struct imap_session *s, const char *utf8_name)
{
    char enc[4096], err[64];

    if (!(s->enabled & IMAP_EN_UTF8) &&
        imap_utf8_to_utf7(utf8_name, strlen(utf8_name), enc, sizeof(enc), err, sizeof(err)) >= 0)
        imap_out_astring(s, enc);
    else
        imap_out_astring(s, utf8_name);
}

/* ---- notifications ------------------------------------------------------------------- */

/* Runs on the committing thread: only signal the session's eventfd (see store.h). */
static void imap_notify(const char *address, int64_t modseq, void *ctx)
{
    struct imap_session *s = ctx;
    uint64_t one = 1;
    ssize_t rc = write(s->wake_fd, &one, sizeof(one));
    (void)rc; /* a full counter already means "wake up" */
}

/* Called once a login succeeded: the session now belongs to this user. */
int imap_session_login(struct imap_session *s)
{
    struct store_err err;

    if (store_user_open(s->m->store, s->acct.address, &s->su, &err) != STORE_OK)
        return -1;
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0)
        return -1;
    s->sub = store_subscribe(s->m->store, s->acct.address, imap_notify, s);
    s->state = IMAP_AUTH;
    return 0;
}

/* ---- reading a command ------------------------------------------------------------------ */

enum imap_read { IMAP_READ_OK, IMAP_READ_SKIP, IMAP_READ_END };

/* Reads one whole command into b. IMAP_READ_SKIP means it was refused and answered (a
 * literal over the limit, a line too long) and the session goes on. */
static enum imap_read imap_read_command(struct imap_session *s, struct imap_cmdbuf *b)
{
    char *line = s->line;
    struct imap_literal lit;
    char err[256], tag[IMAP_TAG_MAX + 1], name[IMAP_NAME_MAX + 1];
    bool uid;

    imap_cmdbuf_reset(b);
    for (;;) {
        ssize_t n = net_read_line(s->c, line, IMAP_LINE_MAX, s->timeout_ms);
        if (n == NET_ETOOLONG) {
            imap_reply(s, NULL, "BAD", "[TOOBIG] Command line too long");
            return IMAP_READ_SKIP;
        }
        if (n == NET_ETIMEOUT)
            net_printf(s->c, "* BYE Autologout; idle for too long\r\n");
        else if (n == NET_ESHUTDOWN)
            net_printf(s->c, "* BYE Server shutting down\r\n");
        if (n < 0)
            return IMAP_READ_END;
        int rc = imap_cmdbuf_add_line(b, line, (size_t)n, &lit, err, sizeof(err));
        if (rc == IMAP_CMDBUF_DONE)
            return IMAP_READ_OK;
        /* The tag for the answer: a refused first line never entered the buffer. */
        const char *head = b->len ? b->data : line;
        size_t headlen = b->len ? b->len : (size_t)n;
        if (imap_peek_command(head, headlen, tag, sizeof(tag), name, sizeof(name), &uid) < 0)
            tag[0] = '\0';
        struct imap_cmd who = {0};
        snprintf(who.tag, sizeof(who.tag), "%s", tag);
        if (rc != IMAP_CMDBUF_LITERAL) {
            imap_bad(s, &who, "%s", rc == IMAP_CMDBUF_TOOBIG ? "[TOOBIG] Command too long" : err);
            return IMAP_READ_SKIP;
        }
        bool append = strcmp(name, "APPEND") == 0;
        uint64_t cap = append ? IMAP_APPEND_LIMIT : IMAP_CMD_MAX;
        uint64_t limit = b->len < cap ? cap - b->len : 0; /* what this command may still take */
        switch (imap_literal_check(&lit, limit, false)) {
        case IMAP_LIT_ACCEPT:
            break;
        case IMAP_LIT_TOOBIG:
            if (lit.nonsync) {
                /* The client is already sending it: the only safe way out is to hang up. */
                net_printf(s->c, "* BYE [TOOBIG] Literal too large\r\n");
                return IMAP_READ_END;
            }
            if (append)
                imap_no(s, &who, "[TOOBIG] Message too large (APPENDLIMIT is %d)",
                        IMAP_APPEND_LIMIT);
            else
                imap_bad(s, &who, "[TOOBIG] Literal too large");
            return IMAP_READ_SKIP;
        default:
            net_printf(s->c, "* BYE [TOOBIG] Literal too large\r\n");
            return IMAP_READ_END;
        }
        void *space = imap_cmdbuf_literal_space(b);
        if (!space) {
            net_printf(s->c, "* BYE [SERVERBUG] Out of memory\r\n");
            return IMAP_READ_END;
        }
        if (!lit.nonsync) {
            net_printf(s->c, "+ Ready for literal data\r\n");
            net_flush(s->c);
        }
        if (net_read(s->c, space, (size_t)lit.size, s->timeout_ms) < 0)
            return IMAP_READ_END;
        imap_cmdbuf_literal_done(b);
    }
}

static void imap_dispatch(struct imap_session *s, struct imap_cmdbuf *b)
{
    struct imap_cmd cmd = {.flags = s->enabled & IMAP_EN_UTF8 ? IMAP_PARSE_UTF8 : 0};
    const struct imap_command *c;
    char err[256];

    if (imap_parse_command(b->data, b->len, &cmd, err, sizeof(err)) < 0) {
        imap_bad(s, &cmd, "%s", err);
        return;
    }
    c = imap_command_find(cmd.name);
    if (!c) {
        imap_bad(s, &cmd, "Unknown command %s", cmd.name);
    } else if (cmd.uid && !(c->flags & IMAP_CMD_UID)) {
        imap_bad(s, &cmd, "UID %s is not a command", cmd.name);
    } else if (!(c->states & s->state)) {
        imap_bad(s, &cmd, "%s",
                 s->state == IMAP_NOAUTH ? "Log in first"
                 : s->state == IMAP_AUTH ? "Select a mailbox first"
                                         : "Not allowed now");
    } else {
        /* Other sessions' and engines' changes are reported before the command runs, so
         * they precede its tagged reply (a NOOP poll sees them at once) and nothing is
         * sent once the command has completed: RFC 3501 §7.4.1 forbids EXPUNGE while no
         * command is in progress. A command's own changes are reported by the command. */
        if (s->state == IMAP_SELECTED && !(c->flags & IMAP_CMD_NOSYNC)) {
            bool expunge_ok = cmd.uid || !(c->flags & IMAP_CMD_NOEXPUNGE);
            imap_mbox_sync(s, expunge_ok ? IMAP_SYNC_EXPUNGE : 0);
        }
        c->fn(s, &cmd);
    }
    imap_cmd_free(&cmd);
}

void imap_session(struct net_conn *c, void *ctx)
{
    struct imap_session s = {
        .c = c, .m = ctx, .state = IMAP_NOAUTH, .wake_fd = -1, .timeout_ms = IMAP_AUTOLOGOUT_MS};
    struct imap_cmdbuf b;
    char caps[1024];

    if (s.m->idle_timeout_ms > 0)
        s.timeout_ms = s.m->idle_timeout_ms;
    if (!(s.line = malloc(IMAP_LINE_MAX))) {
        net_printf(c, "* BYE Out of memory\r\n");
        return;
    }
    imap_cmdbuf_init(&b, IMAP_APPEND_LIMIT + IMAP_CMD_MAX);
    imap_capabilities(&s, caps, sizeof(caps));
    net_printf(c, "* OK [CAPABILITY %s] Polaris IMAP ready\r\n", caps);
    while (s.state != IMAP_LOGOUT) {
        if (net_flush(c) < 0)
            break;
        enum imap_read r = imap_read_command(&s, &b);
        if (r == IMAP_READ_END)
            break;
        if (r == IMAP_READ_OK)
            imap_dispatch(&s, &b);
        if (s.bad_in_a_row >= IMAP_MAX_BAD) {
            net_printf(c, "* BYE Too many invalid commands\r\n");
            break;
        }
    }
    net_flush(c);
    imap_cmdbuf_free(&b);
    imap_mbox_close(&s);
    imap_seqset_free(&s.saved);
    if (s.sub)
        store_unsubscribe(s.m->store, s.sub);
    if (s.wake_fd >= 0)
        close(s.wake_fd);
    if (s.su)
        store_user_release(s.su);
    free(s.line);
}
