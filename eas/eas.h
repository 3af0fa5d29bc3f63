/*
 * eas.h — the one public interface of eas/: Exchange ActiveSync (MS-ASHTTP, protocol
 * versions 2.5 to 16.1) for Enhanced mailboxes, served on the HTTP front end at
 * /Microsoft-Server-ActiveSync, plus the device administration the CLI offers.
 */
#ifndef POLARIS_EAS_H
#define POLARIS_EAS_H

#include "mail/mail.h"
#include "server/server.h"
#include "store/store.h"

struct eas;

/* The engine for one server. Everything passed in outlives it; dl is the delivery
 * pipeline SendMail/SmartReply/SmartForward and meeting replies go through. */
struct eas *eas_new(struct store *st, const struct config *cfg, struct deliver *dl);
int eas_register(struct eas *e, struct http_server *h);
/* The delivery pipeline's local_hook (eas_itip_in.c): an iTIP REPLY delivered to the
 * organizer of its event sets the replying attendee's PARTSTAT there. Runs inside the
 * delivery's transaction; STORE_OK, or the store's error (the delivery is then retried). */
int eas_itip_received(struct store_user *u, const char *mailbox, const char *msg, size_t len);
void eas_free(struct eas *e);

/* One device of a user, as the server remembers it. */
struct eas_device {
    char id[65];
    char type[65];
    char user_agent[256];
    char model[128], imei[64], os[128], friendly[128], phone[64], operator_[128];
    uint64_t policy_key;  /* last key acknowledged by the device, 0 = none */
    uint64_t pending_key; /* key handed out in phase 1, awaiting acknowledgement */
    int wipe;             /* 0 none, 1 remote wipe requested, 2 account-only wipe */
    int wipe_acked;       /* the device confirmed the wipe */
    int64_t first_seen, last_seen;
    int version; /* last protocol version used: 25, 120, 121, 140, 141, 160, 161 */
    char os_language[64];
    int64_t wipe_requested, wipe_acked_at; /* unix seconds, 0 = never */
    int64_t provisioned;                   /* when the current policy_key was acknowledged */
};

/* Device administration (the CLI's `device` commands). Each returns 0 or a STORE_E*
 * code with err set; STORE_ENOTFOUND for an unknown user or device. */
typedef int (*eas_device_cb)(const struct eas_device *d, void *ctx); /* non-zero stops */
int eas_admin_device_list(struct store *st, const char *address, eas_device_cb cb, void *ctx,
                          struct store_err *err);
int eas_admin_device_get(struct store *st, const char *address, const char *id,
                         struct eas_device *out, struct store_err *err);
/* Asks for a remote wipe (account_only: only the account's data, EAS 16.1 devices). The
 * device gets it at its next request. */
int eas_admin_device_wipe(struct store *st, const char *address, const char *id, int account_only,
                          struct store_err *err);
/* Forgets the device and all its sync state; it starts over as a new device. */
int eas_admin_device_del(struct store *st, const char *address, const char *id,
                         struct store_err *err);
/* The CLI's `item` commands (eas_admin_pim.c): puts an iCalendar event, task or note,
 * or a vCard, into the top-level folder named (NULL: the default folder of its kind),
 * replacing the item of the same UID there; uid receives the UID, *replaced 1 when an
 * item was replaced. get: the stored body of the item with that UID (malloc'd). */
int eas_admin_item_put(struct store *st, const char *address, const char *folder, const char *body,
                       size_t len, char *uid, size_t uidlen, int *replaced, struct store_err *err);
int eas_admin_item_get(struct store *st, const char *address, const char *folder, const char *uid,
                       char **body, size_t *len, struct store_err *err);
/* Lists the items of a folder (NULL: of the default calendar, address book, task list
 * and notes folder): folder name, UID and resource name each. */
typedef int (*eas_item_cb)(const char *folder, const char *uid, const char *name, void *ctx);
int eas_admin_item_list(struct store *st, const char *address, const char *folder, eas_item_cb cb,
                        void *ctx, struct store_err *err);
/* "16.1" for 161 and so on; "" for 0. */
const char *eas_version_name(int version);

#endif
