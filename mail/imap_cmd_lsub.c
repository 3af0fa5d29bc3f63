/*
 * imap_cmd_lsub.c — LSUB (RFC 3501 §6.3.9; deprecated by RFC 9051 but still what many
 * clients send): the subscribed mailboxes matching the pattern. Subscriptions are a flag on
 * the folder, so a subscribed name always exists. One special case from §6.3.9: when "%"
 * stops at a mailbox that is not subscribed but has a subscribed descendant the pattern
 * does not reach, that mailbox is returned with \Noselect so the client can descend.
 */
#include <stdlib.h>

#include "mail/imap.h"

/* Marks the folders that have a subscribed descendant the pattern does not reach: linear
 * in the number of folders (times their depth), however many the pattern matches. */
static bool *imap_lsub_hidden(const struct imap_tree *t, const bool *match)
{
    bool *hidden = calloc(t->n ? t->n : 1, sizeof(bool));

    for (size_t k = 0; hidden && k < t->n; k++) {
        if (!t->v[k].f.subscribed || match[k])
            continue;
        int depth = 0;
        for (long p = t->v[k].parent; p >= 0 && depth++ < 64; p = t->v[p].parent)
            hidden[p] = true;
    }
    return hidden;
}

static void imap_lsub_line(struct imap_session *s, const char *attrs, const char *path)
{
    net_printf(s->c, "* LSUB (%s) \"%c\" ", attrs, MAIL_HIER_SEP);
    imap_out_mailbox(s, path);
    net_printf(s->c, "\r\n");
}

static int imap_lsub_send(struct imap_session *s, const struct imap_tree *t, const char *pattern)
{
    bool *match = calloc(t->n ? t->n : 1, sizeof(bool)), *hidden = NULL;
    int rc = STORE_ENOMEM;

    if (!match)
        goto out;
    for (size_t i = 0; i < t->n; i++)
        match[i] = imap_list_match(pattern, t->v[i].path);
    if (!(hidden = imap_lsub_hidden(t, match)))
        goto out;
    for (size_t i = 0; i < t->n; i++) {
        if (!match[i])
            continue;
        if (t->v[i].f.subscribed)
            imap_lsub_line(s, "", t->v[i].path);
        else if (hidden[i])
            imap_lsub_line(s, "\\Noselect", t->v[i].path);
    }
    rc = STORE_OK;
out:
    free(match);
    free(hidden);
    return rc;
}

void imap_cmd_lsub(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_tree t;
    struct store_err err = {0};
    char pattern[2048];
    int rc;

    if (cmd->nargs != 2) {
        imap_bad(s, cmd, "LSUB takes a reference and a mailbox pattern");
        return;
    }
    if (imap_list_pattern(s, cmd, &cmd->args[0], &cmd->args[1], pattern, sizeof(pattern)) < 0)
        return;
    if ((rc = imap_tree_load(s, &t, &err)) != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, "Listing subscriptions");
        return;
    }
    rc = imap_lsub_send(s, &t, pattern);
    imap_tree_free(&t);
    if (rc != STORE_OK)
        imap_store_error(s, cmd, rc, NULL, "Listing subscriptions");
    else
        imap_ok(s, cmd, "LSUB completed");
}
