/* imap_cmd_enable.c — ENABLE (RFC 5161) for CONDSTORE, QRESYNC (which implies CONDSTORE,
 * RFC 7162 §3.2.3), IMAP4rev2 (RFC 9051) and UTF8=ACCEPT (RFC 6855). Names we do not know
 * are ignored, as the RFC asks. */
#include <stdio.h>
#include <strings.h>

#include "mail/imap.h"

void imap_cmd_enable(struct imap_session *s, struct imap_cmd *cmd)
{
    static const struct {
        const char *name;
        unsigned bits;
    } known[] = {
        {"CONDSTORE", IMAP_EN_CONDSTORE},
        {"QRESYNC", IMAP_EN_QRESYNC | IMAP_EN_CONDSTORE},
        {"IMAP4REV2", IMAP_EN_REV2},
        {"UTF8=ACCEPT", IMAP_EN_UTF8},
    };
    char list[128] = "";
    size_t o = 0;

    if (cmd->nargs == 0) {
        imap_bad(s, cmd, "ENABLE needs at least one capability");
        return;
    }
    for (size_t i = 0; i < cmd->nargs; i++) {
        if (cmd->args[i].type != IMAP_ARG_ATOM) {
            imap_bad(s, cmd, "ENABLE takes capability names");
            return;
        }
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
            if (strcasecmp(cmd->args[i].str, known[k].name) != 0)
                continue;
            /* Only what was not enabled yet is reported. */
            if ((s->enabled & known[k].bits) != known[k].bits && o + 16 < sizeof(list))
                o += (size_t)snprintf(list + o, sizeof(list) - o, " %s", known[k].name);
            s->enabled |= known[k].bits;
        }
    }
    imap_untagged(s, "ENABLED%s", list);
    imap_ok(s, cmd, "ENABLE completed");
}
