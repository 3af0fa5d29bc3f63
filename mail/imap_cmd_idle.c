/* imap_cmd_idle.c — IDLE (RFC 2177). The session waits on its socket and on the eventfd
 * the store's notification hub writes after every commit to this user's store, whichever
 * engine made it (an SMTP delivery, an ActiveSync flag change, another IMAP session), so
 * a change is pushed as soon as it is committed. No polling. */
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mail/imap.h"

static void imap_idle_drain(struct imap_session *s)
{
    uint64_t v;
    while (read(s->wake_fd, &v, sizeof(v)) == sizeof(v))
        ;
}

void imap_cmd_idle(struct imap_session *s, struct imap_cmd *cmd)
{
    char line[64];

    if (cmd->nargs) {
        imap_bad(s, cmd, "IDLE takes no arguments");
        return;
    }
    net_printf(s->c, "+ idling\r\n");
    imap_idle_drain(s);
    /* Whatever happened before the drain is reported now; later commits wake us. */
    imap_mbox_sync(s, IMAP_SYNC_EXPUNGE);
    for (;;) {
        if (net_flush(s->c) < 0) {
            s->state = IMAP_LOGOUT;
            return;
        }
        int w = net_wait(s->c, s->wake_fd, s->timeout_ms);
        if (w == NET_WOKEN) {
            imap_idle_drain(s);
            imap_mbox_sync(s, IMAP_SYNC_EXPUNGE);
            continue;
        }
        if (w != NET_READABLE) {
            net_printf(s->c, "* BYE %s\r\n",
                       w == NET_ESHUTDOWN ? "Server shutting down" : "IDLE timed out");
            s->state = IMAP_LOGOUT;
            return;
        }
        ssize_t n = net_read_line(s->c, line, sizeof(line), s->timeout_ms);
        if (n < 0 && n != NET_ETOOLONG) {
            s->state = IMAP_LOGOUT;
            return;
        }
        if (n > 0)
            line[strcspn(line, "\r\n")] = '\0';
        if (n > 0 && strcasecmp(line, "DONE") == 0) {
            imap_ok(s, cmd, "IDLE terminated");
        } else {
            imap_bad(s, cmd, "Expected DONE");
        }
        return;
    }
}
