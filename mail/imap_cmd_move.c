/*
 * imap_cmd_move.c — MOVE and UID MOVE (RFC 6851). Each message is moved with
 * store_item_move, which keeps its item id: it is the same message in a new folder, which
 * ActiveSync and the change journals of the other protocols rely on (a copy and a delete
 * would look like a new message and a lost one). All moves are one transaction.
 *
 * The transfer itself is shared with COPY (imap_xfer_run in imap_cmd_copy.c).
 *
 * Responses in the order RFC 6851 §3.3 gives: an untagged OK [COPYUID …] first, then the
 * EXPUNGE (or VANISHED) responses for the messages that left, then the tagged OK. The
 * expunges come from imap_mbox_sync, which sees the moves as removals in the journal.
 */
#include <stdlib.h>

#include "mail/imap.h"

static void imap_move_done(struct imap_session *s, struct imap_cmd *cmd, const struct imap_xfer *x)
{
    struct store_folder f;

    if (x->n) {
        net_printf(s->c, "* OK [COPYUID %u ", x->to.uidvalidity);
        imap_out_uidset(s, x->src, x->n);
        net_printf(s->c, " ");
        imap_out_uidset(s, x->dst, x->n);
        net_printf(s->c, "] Moved\r\n");
    }
    imap_mbox_sync(s, IMAP_SYNC_EXPUNGE);
    if ((s->enabled & (IMAP_EN_CONDSTORE | IMAP_EN_QRESYNC)) &&
        store_folder_get(s->su, s->mbox->folder.id, &f, NULL) == STORE_OK)
        imap_ok(s, cmd, "[HIGHESTMODSEQ %llu] MOVE completed",
                (unsigned long long)IMAP_MODSEQ(f.modseq));
    else
        imap_ok(s, cmd, "MOVE completed");
}

void imap_cmd_move(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_xfer x = {.op = IMAP_XFER_MOVE};

    if (imap_xfer_run(s, cmd, &x) < 0)
        goto out;
    if (x.rc != STORE_OK)
        imap_store_error(s, cmd, x.rc, &x.err, "Moving");
    else
        imap_move_done(s, cmd, &x);
out:
    imap_xfer_free(&x);
}
