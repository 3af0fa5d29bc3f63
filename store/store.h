/*
 * store.h — the one public interface of the store: the global directory (domains, users,
 * aliases) and the per-user stores (folders, items, blobs, the MODSEQ change journal,
 * sync state) plus the in-process notification hub.
 *
 * Every protocol engine talks to this header and nothing below it: no engine opens SQLite.
 * The persistence underneath is a backend (struct store_backend in store_backend.h);
 * SQLite, one file per user plus one directory file, is the embedded default.
 *
 * Conventions
 *  - Functions return 0 on success or a negative STORE_E* code; when `err` is non-NULL it
 *    receives a one-line human message naming what failed (shown to operators as is).
 *  - Addresses and domain names are compared and stored lower-case.
 *  - All functions are thread-safe. Calls on one struct store_user are serialised by that
 *    handle's lock; different users proceed in parallel.
 *  - Every committed change in a user's store takes the next value of the user's MODSEQ
 *    counter. A transaction shares one MODSEQ among all its changes, so "changes since N"
 *    never sees half a transaction.
 */
#ifndef POLARIS_STORE_H
#define POLARIS_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_OK        0
#define STORE_ENOTFOUND (-1) /* no such domain, user, folder or item */
#define STORE_EEXIST    (-2) /* name already taken */
#define STORE_EINVAL    (-3) /* input breaks a rule; err says which */
#define STORE_EIO       (-4) /* disk or database failure */
#define STORE_EQUOTA    (-5) /* the change would exceed the user's quota */
#define STORE_ECONFLICT (-6) /* the item changed since the caller read it */
#define STORE_EBUSY     (-7) /* the database stayed locked past the busy timeout */
#define STORE_ENOMEM    (-8)

struct store_err {
    int code;
    char msg[256];
};

/* ---------------------------------------------------------------------------------------
 * Input rules (from the hosting product's customer documents). Each returns 0 when the
 * value is acceptable, or STORE_EINVAL with a message naming the rule that failed.
 * ------------------------------------------------------------------------------------ */
int store_valid_localpart(const char *lp, struct store_err *err);
int store_valid_domain(const char *name, struct store_err *err);
int store_valid_address(const char *addr, struct store_err *err);
int store_valid_password(const char *pw, struct store_err *err);

enum store_acct_type { STORE_BASIC = 1, STORE_ENHANCED = 2 };

/* Quota limits in bytes: 0.1 GB minimum; 50 GB Basic, 200 GB Enhanced (1 GB = 10^9). */
#define STORE_QUOTA_MIN          100000000LL
#define STORE_QUOTA_MAX_BASIC    50000000000LL
#define STORE_QUOTA_MAX_ENHANCED 200000000000LL
#define STORE_QUOTA_DEFAULT      1000000000LL
int store_valid_quota(enum store_acct_type type, int64_t bytes, struct store_err *err);
/* Parses "1G", "0.5G", "500M", "2048K", "100000000" (bytes). -1 when malformed. */
int64_t store_parse_size(const char *s);

/* The virtual-host label of a domain: every '.' becomes "--". Writes at most outlen bytes
 * (with the NUL); returns 0, or STORE_EINVAL when it does not fit. */
int store_domain_label(const char *domain, char *out, size_t outlen);

/* ---------------------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------------------ */
struct store;
struct store_user;

struct store_config {
    const char *data_dir; /* directory.db and users/ live here; created if missing */
    const char *backend;  /* "sqlite" (default when NULL) */
    int busy_timeout_ms;  /* how long a writer waits for a lock; 0 → 10000 */
    size_t inline_max;    /* bodies up to this size live in the database; 0 → 64 KiB */
};

int store_open(struct store **out, const struct store_config *cfg, struct store_err *err);
void store_close(struct store *s);
const char *store_data_dir(const struct store *s);

/* ---------------------------------------------------------------------------------------
 * Directory: domains, users, aliases
 * ------------------------------------------------------------------------------------ */
struct store_domain {
    int64_t id;
    char name[254];  /* lower-case, punycode for IDNs */
    char label[254]; /* name with '.' → "--" */
    char token[48];  /* verification token published as the mx-verification TXT */
    int local_delivery;
    int verified;
    int64_t created; /* unix seconds */
    int64_t users;   /* number of users (filled by get/list) */
};

int store_domain_add(struct store *s, const char *name, struct store_domain *out,
                     struct store_err *err);
/* Refuses (STORE_EEXIST) while the domain still has users or aliases, unless force, in
 * which case their mailboxes are removed too. */
int store_domain_del(struct store *s, const char *name, int force, struct store_err *err);
int store_domain_get(struct store *s, const char *name, struct store_domain *out,
                     struct store_err *err);
int store_domain_by_label(struct store *s, const char *label, struct store_domain *out);
typedef int (*store_domain_cb)(const struct store_domain *d, void *ctx); /* non-zero stops */
int store_domain_list(struct store *s, store_domain_cb cb, void *ctx, struct store_err *err);
int store_domain_set_local_delivery(struct store *s, const char *name, int on,
                                    struct store_err *err);
int store_domain_set_verified(struct store *s, const char *name, int verified,
                              struct store_err *err);

struct store_account {
    int64_t id;
    int64_t domain_id;
    char address[320]; /* localpart@domain, lower-case */
    char localpart[65];
    char domain[254];
    enum store_acct_type type;
    int64_t quota;    /* bytes */
    int active;       /* 0 = suspended: may not log in, still receives mail */
    char pwhash[160]; /* crypt(3) string; never logged */
    int64_t created;
};

/* Adds a user and creates its store with the default folders. `password` is checked with
 * store_valid_password and hashed with yescrypt; pass pwhash_import instead (password
 * NULL) to import an existing crypt(3) hash. quota 0 means STORE_QUOTA_DEFAULT. */
int store_account_add(struct store *s, const char *address, enum store_acct_type type,
                      int64_t quota, const char *password, const char *pwhash_import,
                      struct store_account *out, struct store_err *err);
int store_account_del(struct store *s, const char *address, struct store_err *err);
int store_account_get(struct store *s, const char *address, struct store_account *out,
                      struct store_err *err);
typedef int (*store_account_cb)(const struct store_account *a, void *ctx);
/* domain NULL lists every user. */
int store_account_list(struct store *s, const char *domain, store_account_cb cb, void *ctx,
                       struct store_err *err);
int store_account_set_password(struct store *s, const char *address, const char *password,
                               struct store_err *err);
int store_account_set_type(struct store *s, const char *address, enum store_acct_type type,
                           struct store_err *err);
int store_account_set_quota(struct store *s, const char *address, int64_t quota,
                            struct store_err *err);
int store_account_set_active(struct store *s, const char *address, int active,
                             struct store_err *err);
const char *store_acct_type_name(enum store_acct_type t);
int store_acct_type_parse(const char *name, enum store_acct_type *out);

/* Hashes a password with yescrypt (crypt(3)). out receives the crypt string. */
int store_password_hash(const char *password, char *out, size_t outlen, struct store_err *err);
/* Checks a password against a crypt(3) hash; 1 = match, 0 = no match. Constant-time in
 * the comparison of the computed hash. */
int store_password_check(const char *password, const char *hash);

/* Aliases: source address → one or more targets. A target is an address (local or
 * external) or the literal ":blackhole" (accept and discard). An empty local part
 * ("@example.com") is the domain's catch-all. */
#define STORE_BLACKHOLE ":blackhole"
int store_alias_add(struct store *s, const char *source, const char *target, struct store_err *err);
/* target NULL removes every target of source. */
int store_alias_del(struct store *s, const char *source, const char *target, struct store_err *err);
typedef int (*store_alias_cb)(const char *source, const char *target, void *ctx);
/* source NULL lists all aliases (domain NULL: of every domain). */
int store_alias_list(struct store *s, const char *domain, const char *source, store_alias_cb cb,
                     void *ctx, struct store_err *err);

/* Directory settings kept for a domain or an address (the scope: "example.com" or
 * "alice@example.com"), each under a key, e.g. a domain's "dkim.key", an address's
 * "autoreply". Values are the owning engine's format. They go with their domain or user:
 * deleting either removes them. STORE_ENOTFOUND when absent; *val is malloc'd and
 * NUL-terminated (not counted in len). */
int store_setting_put(struct store *s, const char *scope, const char *key, const void *val,
                      size_t len, struct store_err *err);
int store_setting_get(struct store *s, const char *scope, const char *key, void **val, size_t *len,
                      struct store_err *err);
int store_setting_del(struct store *s, const char *scope, const char *key, struct store_err *err);

/* ---------------------------------------------------------------------------------------
 * Per-user store
 * ------------------------------------------------------------------------------------ */

/* Opens (or finds already open) the store of a user. Handles are reference counted and
 * cached; release every handle you open. */
int store_user_open(struct store *s, const char *address, struct store_user **out,
                    struct store_err *err);
void store_user_release(struct store_user *u);
const char *store_user_address(const struct store_user *u);

/* Current highest MODSEQ of the user's store (0 for a new store). */
int64_t store_user_modseq(struct store_user *u);
/* Oldest MODSEQ from which changes-since is still complete (tombstones before it were
 * pruned). Tokens below it must be refused by the engines (e.g. DAV valid-sync-token). */
int64_t store_user_modseq_floor(struct store_user *u);
/* Bytes used by the user's items, and the quota from the directory. */
int store_user_usage(struct store_user *u, int64_t *used, int64_t *quota);

/* Transactions. Every mutating call below runs in its own transaction unless the caller
 * has begun one on this handle. While a transaction is open, the handle's lock is held
 * by the calling thread: other threads using the same user wait. Commit returns the
 * MODSEQ the transaction took (unchanged if it changed nothing) and then notifies
 * subscribers. A failure inside rolls everything back. */
int store_txn_begin(struct store_user *u, struct store_err *err);
int store_txn_commit(struct store_user *u, int64_t *modseq, struct store_err *err);
void store_txn_rollback(struct store_user *u);

/* Folder classes and special-use roles. */
enum store_class {
    STORE_CLASS_MAIL = 1,
    STORE_CLASS_CALENDAR = 2,
    STORE_CLASS_CONTACTS = 3,
    STORE_CLASS_TASKS = 4,
    STORE_CLASS_NOTES = 5,
};
enum store_role {
    STORE_ROLE_NONE = 0,
    STORE_ROLE_INBOX,
    STORE_ROLE_DRAFTS,
    STORE_ROLE_SENT,
    STORE_ROLE_JUNK,
    STORE_ROLE_TRASH,
    STORE_ROLE_ARCHIVE,
    STORE_ROLE_CALENDAR, /* the default calendar */
    STORE_ROLE_CONTACTS, /* the default address book */
    STORE_ROLE_TASKS,    /* the default task list */
    STORE_ROLE_NOTES,
};
const char *store_class_name(enum store_class c);
const char *store_role_name(enum store_role r);

struct store_folder {
    int64_t id;
    int64_t parent_id; /* 0 = top level */
    char name[256];    /* leaf name, e.g. "2023" of "Archive.Inbox.2023" */
    enum store_class cls;
    enum store_role role;
    uint32_t uidvalidity;
    uint32_t uidnext; /* the UID the next item added will get */
    int64_t modseq;   /* highest MODSEQ of the folder and anything in it */
    int64_t created_modseq;
    int subscribed;
    int64_t count;    /* items in the folder */
    int64_t unseen;   /* items without STORE_FLAG_SEEN */
    int64_t bytes;    /* sum of item sizes */
    char props[1024]; /* engine-owned properties (e.g. DAV displayname/color as JSON) */
};

typedef int (*store_folder_cb)(const struct store_folder *f, void *ctx);
/* cls 0 = every class. Ordered by id (parents before children). */
int store_folder_list(struct store_user *u, enum store_class cls, store_folder_cb cb, void *ctx,
                      struct store_err *err);
int store_folder_get(struct store_user *u, int64_t id, struct store_folder *out,
                     struct store_err *err);
int store_folder_find(struct store_user *u, int64_t parent_id, const char *name,
                      struct store_folder *out);
int store_folder_by_role(struct store_user *u, enum store_role role, struct store_folder *out);
/* The lookups above count the folder's items (count, unseen, bytes), which reads an index
 * entry per item. These leave those -1 and do not read the items: for callers that do not
 * need them (IMAP SELECT of a folder of 100,000 messages). */
int store_folder_find_nocount(struct store_user *u, int64_t parent_id, const char *name,
                              struct store_folder *out);
int store_folder_by_role_nocount(struct store_user *u, enum store_role role,
                                 struct store_folder *out);
int store_folder_create(struct store_user *u, int64_t parent_id, const char *name,
                        enum store_class cls, enum store_role role, int64_t *id,
                        struct store_err *err);
/* Renames and/or reparents (new_parent -1 keeps the parent). */
int store_folder_rename(struct store_user *u, int64_t id, int64_t new_parent, const char *name,
                        struct store_err *err);
/* Deletes a folder, its items and its subfolders; leaves tombstones. Folders with a
 * role refuse (STORE_EINVAL). */
int store_folder_delete(struct store_user *u, int64_t id, struct store_err *err);
int store_folder_set_subscribed(struct store_user *u, int64_t id, int on, struct store_err *err);
int store_folder_set_props(struct store_user *u, int64_t id, const char *props,
                           struct store_err *err);

/* Message flags (IMAP system flags); other engines map theirs onto these. */
#define STORE_FLAG_SEEN      0x01u
#define STORE_FLAG_ANSWERED  0x02u
#define STORE_FLAG_FLAGGED   0x04u
#define STORE_FLAG_DELETED   0x08u
#define STORE_FLAG_DRAFT     0x10u
#define STORE_FLAG_FORWARDED 0x20u /* $Forwarded */

struct store_item {
    int64_t id; /* stable for the life of the item, also across moves */
    int64_t folder_id;
    uint32_t uid;   /* per-folder, strictly increasing, never reused */
    int64_t modseq; /* MODSEQ of the last change */
    uint32_t flags;
    char keywords[512];  /* space-separated IMAP keywords */
    char name[256];      /* resource name (DAV: "abc.ics"); empty for mail */
    char ext_uid[256];   /* iCalendar/vCard UID, or Message-ID for mail */
    char ctype[128];     /* content type of the body */
    int64_t size;        /* body bytes */
    int64_t idate;       /* internal date, unix seconds */
    int64_t mtime;       /* last content change, unix seconds */
    size_t meta_len;     /* length of the engine cache blob (see store_item_meta) */
    int64_t index_until; /* store_item_range_query only: up to when the item's occurrence
                          * index is complete (see store_item_set_ranges); 0 elsewhere */
};

/* What a new item is made of. body/body_len are the canonical bytes (RFC 5322,
 * iCalendar or vCard). meta is an opaque cache the engine derives from the body (e.g. the
 * parsed envelope), kept beside it so readers need not re-parse. */
struct store_item_new {
    const char *body;
    size_t body_len;
    const char *ctype;
    const char *name;    /* NULL: none */
    const char *ext_uid; /* NULL: none */
    uint32_t flags;
    const char *keywords; /* NULL: none */
    int64_t idate;        /* 0: now */
    const void *meta;
    size_t meta_len;
    int no_quota; /* 1: skip the quota check (bounces, system messages) */
};

int store_item_add(struct store_user *u, int64_t folder_id, const struct store_item_new *in,
                   struct store_item *out, struct store_err *err);
int store_item_get(struct store_user *u, int64_t item_id, struct store_item *out,
                   struct store_err *err);
int store_item_by_uid(struct store_user *u, int64_t folder_id, uint32_t uid,
                      struct store_item *out);
int store_item_by_name(struct store_user *u, int64_t folder_id, const char *name,
                       struct store_item *out);
int store_item_by_ext_uid(struct store_user *u, int64_t folder_id, const char *ext_uid,
                          struct store_item *out);
/* The body, malloc'd (caller frees). */
int store_item_body(struct store_user *u, int64_t item_id, char **body, size_t *len,
                    struct store_err *err);
/* The engine cache blob, malloc'd (caller frees); *len 0 and *meta NULL when none. */
int store_item_meta(struct store_user *u, int64_t item_id, void **meta, size_t *len,
                    struct store_err *err);
/* The engine cache blobs of every item of a folder with a UID in [uid_lo, uid_hi], in UID
 * order: one query under one lock, for callers that walk many messages (IMAP SEARCH),
 * which would otherwise pay a lookup and the lock per message. meta is NULL (len 0) for an
 * item without one, and valid during the call only. cb runs under the store lock and must
 * not call the store; a non-zero return stops. */
typedef int (*store_meta_cb)(int64_t item_id, uint32_t uid, const void *meta, size_t len,
                             void *ctx);
int store_item_meta_range(struct store_user *u, int64_t folder_id, uint32_t uid_lo, uint32_t uid_hi,
                          store_meta_cb cb, void *ctx, struct store_err *err);
/* Replaces the body (and meta/ctype/ext_uid when non-NULL). if_modseq > 0 makes it
 * conditional: STORE_ECONFLICT when the item's modseq differs. */
int store_item_replace(struct store_user *u, int64_t item_id, const struct store_item_new *in,
                       int64_t if_modseq, struct store_item *out, struct store_err *err);
enum store_flag_op { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };
/* Changes flags and/or keywords (keywords NULL leaves them). if_modseq > 0 is the
 * CONDSTORE UNCHANGEDSINCE test: STORE_ECONFLICT when the item's modseq is greater. A
 * change that changes nothing takes no MODSEQ. */
int store_item_set_flags(struct store_user *u, int64_t item_id, enum store_flag_op op,
                         uint32_t flags, const char *keywords, int64_t if_modseq,
                         struct store_item *out, struct store_err *err);
/* Moves an item: same id, new folder, new UID there; the old folder sees a tombstone. */
int store_item_move(struct store_user *u, int64_t item_id, int64_t to_folder,
                    struct store_item *out, struct store_err *err);
/* Copies an item into a folder (new id, new UID). */
int store_item_copy(struct store_user *u, int64_t item_id, int64_t to_folder,
                    struct store_item *out, struct store_err *err);
/* Deletes (expunges) an item, leaving a tombstone. */
int store_item_delete(struct store_user *u, int64_t item_id, struct store_err *err);

typedef int (*store_item_cb)(const struct store_item *it, void *ctx);
/* Items of a folder in UID order with uid in [uid_lo, uid_hi] (0, UINT32_MAX for all). */
int store_item_list(struct store_user *u, int64_t folder_id, uint32_t uid_lo, uint32_t uid_hi,
                    store_item_cb cb, void *ctx, struct store_err *err);

/* What a client's view of a folder needs of every item (IMAP SELECT, POP3 login), without
 * names, content types or cached structure: much cheaper than store_item_list on folders
 * of 100,000 messages. keywords is "" when none and valid only during the callback. */
struct store_item_brief {
    int64_t id;
    uint32_t uid;
    uint32_t flags;
    int64_t modseq;
    int64_t size;
    int64_t idate;
    const char *keywords;
};
typedef int (*store_brief_cb)(const struct store_item_brief *b, void *ctx);
/* Every item of a folder in UID order. */
int store_item_list_brief(struct store_user *u, int64_t folder_id, store_brief_cb cb, void *ctx,
                          struct store_err *err);

/* The change journal: everything in a folder that changed after `since`, in MODSEQ order.
 * For a live item, removed = 0 and *it is its current state; for a removal (expunge,
 * delete, or moved away), removed = 1 and only id, folder_id, uid, name and modseq of
 * *it are set. Work is proportional to the number of changes, not the folder size. */
typedef int (*store_change_cb)(const struct store_item *it, int removed, void *ctx);
int store_changes_since(struct store_user *u, int64_t folder_id, int64_t since, store_change_cb cb,
                        void *ctx, struct store_err *err);
/* Folder-level changes since a MODSEQ (created/renamed/props changed, or deleted). */
typedef int (*store_folder_change_cb)(const struct store_folder *f, int removed, void *ctx);
int store_folder_changes_since(struct store_user *u, int64_t since, store_folder_change_cb cb,
                               void *ctx, struct store_err *err);

/* The occurrence index of calendar items (CalDAV time-range queries, ActiveSync
 * FilterType windows): each item's time ranges [start, end) in unix seconds (floating
 * times taken as UTC; all-day as whole UTC days; the engine widens ranges it cannot pin
 * down). Recurring items list each occurrence up to `complete_until`; an open-ended rule
 * past that is marked incomplete so queries return it for the engine to expand, which
 * then extends the index (the horizon grows on demand). complete_until = INT64_MAX when
 * the list is complete. The ranges go with the item: replaced by the next set_ranges,
 * carried by move and copy, removed with the item or its folder. */
struct store_range {
    int64_t start, end;
};
/* Replaces an item's ranges (inside the caller's transaction when one is open). Takes no
 * MODSEQ: the index is derived data, not a change clients see. */
int store_item_set_ranges(struct store_user *u, int64_t item_id, const struct store_range *r,
                          size_t n, int64_t complete_until, struct store_err *err);
/* Items of a folder with a range overlapping [start, end) (start < r.end && r.start <
 * end; zero-length ranges at start match), plus items whose index is incomplete before
 * `end` (complete_until < end), each once, in item id order, with index_until set. Items
 * that never had ranges set are not returned: the engine indexes every calendar item it
 * writes. Work is proportional to the matches, not the folder size. */
int store_item_range_query(struct store_user *u, int64_t folder_id, int64_t start, int64_t end,
                           store_item_cb cb, void *ctx, struct store_err *err);
/* Up to when an item's index is complete (INT64_MAX: every occurrence): one lookup, for
 * callers that only need to know whether the index answers a range. STORE_ENOTFOUND when
 * the item was never indexed. */
int store_item_index_until(struct store_user *u, int64_t item_id, int64_t *complete_until,
                           struct store_err *err);
/* An item's ranges, malloc'd (*r NULL and *n 0 when none). */
int store_item_get_ranges(struct store_user *u, int64_t item_id, struct store_range **r, size_t *n,
                          int64_t *complete_until, struct store_err *err);

/* Engine state kept in the user's store (device sync keys, DAV tokens...): namespaced
 * key/value blobs written inside the caller's transaction when one is open. */
int store_state_put(struct store_user *u, const char *ns, const char *key, const void *val,
                    size_t len, struct store_err *err);
/* *val malloc'd; STORE_ENOTFOUND when absent. */
int store_state_get(struct store_user *u, const char *ns, const char *key, void **val, size_t *len,
                    struct store_err *err);
int store_state_del(struct store_user *u, const char *ns, const char *key, struct store_err *err);
typedef int (*store_state_cb)(const char *key, const void *val, size_t len, void *ctx);
int store_state_list(struct store_user *u, const char *ns, store_state_cb cb, void *ctx,
                     struct store_err *err);

/* Database-level check of a user's store ("ok" when healthy); out gets the first problem. */
int store_user_check(struct store_user *u, char *out, size_t outlen);

/* ---------------------------------------------------------------------------------------
 * Notification hub: be woken on every commit to a user's store.
 *
 * The callback runs on the committing thread right after the commit, with the hub's lock
 * held: it must be quick and must not call back into the store or the hub (signal an
 * eventfd, resume a suspended HTTP connection, and return). store_unsubscribe waits for a
 * running callback, so after it returns the callback is never called again.
 * A change of the account's type or state (store_account_set_type/_active, in any process)
 * also calls it, with modseq 0: nothing new in the store, but the gate may now say no.
 * ------------------------------------------------------------------------------------ */
struct store_sub;
typedef void (*store_notify_fn)(const char *address, int64_t modseq, void *ctx);
struct store_sub *store_subscribe(struct store *s, const char *address, store_notify_fn fn,
                                  void *ctx);
void store_unsubscribe(struct store *s, struct store_sub *sub);
/* address NULL counts every subscription. */
size_t store_subscriber_count(struct store *s, const char *address);
/* In the serving process: also take notifications from other processes sharing the data
 * dir (admin CLI, imports), which send them to data_dir/notify.sock after their commits. */
int store_notify_listen(struct store *s, struct store_err *err);

#endif
