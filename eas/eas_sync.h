/*
 * eas_sync.h — what the Sync family of eas/ shares (private): the per-device collection
 * state behind SyncKeys (eas_sync_state.c), the Email class conversion (eas_email.c) and
 * the option blocks Sync, ItemOperations, Search and GetItemEstimate all read.
 */
#ifndef POLARIS_EAS_SYNC_H
#define POLARIS_EAS_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "eas/eas_int.h"

/* ---- options ---------------------------------------------------------------------- */

#define EAS_BODY_PLAIN 1
#define EAS_BODY_HTML  2
#define EAS_BODY_RTF   3
#define EAS_BODY_MIME  4
#define EAS_MAX_PREFS  4

struct eas_body_pref {
    int type;      /* EAS_BODY_* */
    int64_t trunc; /* TruncationSize in bytes, -1 none */
    int all_or_none;
    int preview; /* Preview characters (14.0+), 0 none */
};

/* What a collection's Options say about how items are sent. Cached per collection so
 * that partial and empty Sync requests reuse them. */
struct eas_coll_opts {
    int filter;   /* FilterType 0..8 */
    int window;   /* WindowSize of the collection, 0 = not given */
    int conflict; /* 0 client wins, 1 server wins (default) */
    int deletes_as_moves;
    int mime_support; /* 0 never, 1 S/MIME only, 2 always */
    int mime_trunc;   /* 2.5/12.x MIMETruncation code, -1 none */
    int trunc25;      /* 2.5 Truncation code, -1 none */
    int nprefs;
    struct eas_body_pref prefs[EAS_MAX_PREFS];
};
void eas_coll_opts_default(struct eas_coll_opts *o);
/* Reads an Options element (AirSync) into o, keeping what it does not mention. */
void eas_coll_opts_parse(const struct eas_node *opts, struct eas_coll_opts *o);
/* Reads BodyPreference children of n (ItemOperations/Search Options) into o. */
void eas_body_prefs_parse(const struct eas_node *n, struct eas_coll_opts *o);
/* Bytes of a 2.5 Truncation / MIMETruncation code; -1 for no truncation. */
int64_t eas_trunc_code_bytes(int code);
/* The oldest received date a FilterType admits (0 for all). For calendars (4-7) the
 * start of the window an event must reach into; 8 (incomplete tasks) gives 1, which a
 * completed task's reach (0) falls short of. */
int64_t eas_filter_cutoff(int filter, int64_t now);

/* ---- per-device collection state (eas_sync_state.c) --------------------------------- */

/* One item the device holds: id, the MODSEQ it was sent at, and its date (for the
 * FilterType window, which moves with time without any change in the journal). */
struct eas_held {
    int64_t id;
    int64_t modseq;
    int64_t idate;
};

/* The state behind one SyncKey. */
struct eas_snap {
    uint32_t key;        /* the SyncKey number; 0 none */
    int filter;          /* FilterType the held set follows */
    int64_t scan_modseq; /* journal read up to here into pending */
    struct eas_held *held;
    size_t nheld, held_cap; /* sorted by id */
    int64_t *pending;       /* ids to look at (new, changed, leaving), sorted, unique */
    size_t npending, pending_cap;
    int cls; /* the folder's class, set by eas_snap_refresh (not saved): for PIM classes
              * a held item's date is its reach (eas_pim_reach), not its arrival */
};

/* Client Adds of the request that produced the current key, so a retry with the
 * previous key answers them again with the same ServerIds instead of adding twice. */
struct eas_cid {
    char cid[65];
    int64_t item_id;
};

struct eas_sync_state {
    int64_t folder_id;
    struct eas_snap cur, prev; /* prev: the state behind the previous key (retries) */
    struct eas_cid *cids;
    size_t ncids;
    struct eas_coll_opts opts; /* the collection's last options */
    int have_opts;
    /* The elements the device said it supports (AirSync:Supported of its SyncKey 0
     * request): in a Change, a carried element outside the list that the device leaves
     * out is "ghosted" and keeps the stored value. NULL / 0: no list (every element the
     * device leaves out is removed). */
    unsigned *supported;
    size_t nsupported;
};
#define EAS_MAX_SUPPORTED 256

#define EAS_SYNC_NS "eas.sync"

void eas_sync_state_init(struct eas_sync_state *st, int64_t folder_id);
void eas_sync_state_free(struct eas_sync_state *st);
/* STORE_ENOTFOUND when the device never synced the folder. */
int eas_sync_state_load(struct store_user *u, const char *device, int64_t folder_id,
                        struct eas_sync_state *st);
int eas_sync_state_save(struct store_user *u, const char *device, const struct eas_sync_state *st);
int eas_sync_state_del(struct store_user *u, const char *device, int64_t folder_id);
/* Serialisation (exposed for tests): *out malloc'd. */
int eas_sync_state_encode(const struct eas_sync_state *st, unsigned char **out, size_t *len);
int eas_sync_state_decode(const unsigned char *p, size_t len, struct eas_sync_state *st);

int eas_snap_copy(struct eas_snap *dst, const struct eas_snap *src);
void eas_snap_free(struct eas_snap *s);
struct eas_held *eas_snap_held(const struct eas_snap *s, int64_t id);
int eas_snap_hold(struct eas_snap *s, int64_t id, int64_t modseq, int64_t idate);
void eas_snap_unhold(struct eas_snap *s, int64_t id);
int eas_snap_pend(struct eas_snap *s, int64_t id);
int eas_sync_cid_add(struct eas_sync_state *st, const char *cid, int64_t item_id);
int64_t eas_sync_cid_find(const struct eas_sync_state *st, const char *cid);

/* Reads the journal since scan_modseq into pending (and a full listing on a fresh or
 * pruned state, or when the filter changed), and queues held items the FilterType
 * window has left. cls: the folder's class (only mail folders have items to send). */
int eas_snap_refresh(struct store_user *u, struct eas_snap *s, int64_t folder_id, int cls,
                     int filter, int64_t now);

/* What one pending id means for the device. */
enum eas_verdict { EAS_V_NONE, EAS_V_ADD, EAS_V_CHANGE, EAS_V_DELETE, EAS_V_SOFTDELETE };
enum eas_verdict eas_snap_judge(struct store_user *u, const struct eas_snap *s, int64_t folder_id,
                                int64_t id, int64_t cutoff, struct store_item *it);
/* How many commands the next Sync would send (GetItemEstimate, Ping). stop_at > 0 stops
 * counting there. < 0 on error. */
long eas_snap_estimate(struct store_user *u, struct eas_snap *s, int64_t folder_id, int64_t cutoff,
                       long stop_at);

/* ---- Email class (eas_email.c) ------------------------------------------------------ */

/* Writes the Email ApplicationData of a message (it: its store item; msg: its bytes)
 * under parent, as the version and options ask. */
int eas_email_appdata(struct eas_doc *d, struct eas_node *parent, int version,
                      const struct store_item *it, const char *msg, size_t len,
                      const struct eas_coll_opts *o);
/* Only what a flag change touches: Read, Flag, Categories (Sync Change). */
int eas_email_flags(struct eas_doc *d, struct eas_node *parent, int version,
                    const struct store_item *it);
/* Applies a client Change (Read, Flag, Categories of ApplicationData) to the item's
 * flags and keywords. 0, or a STORE_E* code. *changed set when anything was written. */
int eas_email_apply_change(struct store_user *u, const struct store_item *it,
                           const struct eas_node *appdata, struct store_item *out, int *changed);

/* Attachment references "<folder>:<item>:<part index>". */
int eas_fileref_parse(const char *ref, int64_t *folder_id, int64_t *item_id, unsigned *part);

/* The From address of a header block (its first mailbox), lower-cased into out; "" when
 * the header has no From. -1 when the field holds no mailbox (or on OOM). */
int eas_from_address(const char *hdr, size_t hlen, char *out, size_t outlen);

/* A part of a message decoded to bytes (attachments for ItemOperations / GetAttachment):
 * *out malloc'd, ctype (lower-case "type/subtype") copied into ctype. */
int eas_email_part(const char *msg, size_t len, unsigned part, char **out, size_t *outlen,
                   char *ctype, size_t ctypelen);

/* The text of a message as the body type asks (plain or HTML, UTF-8), malloc'd;
 * *native the type the message has (EAS_BODY_HTML when it has an HTML part). For
 * SmartReply/Forward quoting and Search previews. */
int eas_email_text(const char *msg, size_t len, int type, char **out, size_t *outlen, int *native);

/* ---- helpers of the commands -------------------------------------------------------- */

/* The ServerId of an item: "<folder>:<item>". */
void eas_server_id(char *out, size_t outlen, int64_t folder_id, int64_t item_id);
/* A mail folder of the user that the id names; STORE_ENOTFOUND otherwise. */
int eas_folder_lookup(struct eas_req *req, const char *collection_id, struct store_folder *f);

#endif
