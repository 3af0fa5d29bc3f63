/*
 * imap.h — private to the IMAP engine: the session, the selected-mailbox view, and the
 * helpers every command file (imap_cmd_*.c) uses. The parser library is imap_parse.h; the
 * message structure cache is mime.h.
 *
 * Model. A session is a state machine (not authenticated → authenticated → selected →
 * logout). Commands are looked up in a table (imap.c) by name and allowed states; each
 * lives in its own file as imap_cmd_<name>(). The selected mailbox is a view: an array of
 * the folder's messages in UID order (sequence number = index + 1) with their flags and
 * MODSEQs, brought up to date from the store's change journal by imap_mbox_sync() at the
 * points where RFC 3501 allows untagged updates.
 *
 * MODSEQ values: the store's counter starts at 0 and IMAP's mod-sequences must be
 * positive, so IMAP shows store MODSEQ + 1 everywhere (IMAP_MODSEQ / STORE_MODSEQ).
 */
#ifndef POLARIS_MAIL_IMAP_H
#define POLARIS_MAIL_IMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "mail/imap_parse.h"
#include "mail/mail.h"
#include "mail/mime.h"

#define IMAP_LINE_MAX      65536              /* one line of a command */
#define IMAP_CMD_MAX       (1024 * 1024)      /* a whole command other than APPEND */
#define IMAP_APPEND_LIMIT  (64 * 1024 * 1024) /* APPENDLIMIT: largest message accepted */
#define IMAP_AUTOLOGOUT_MS (30 * 60 * 1000)
#define IMAP_MAX_BAD       20 /* BAD answers in a row before we hang up */

#define IMAP_MODSEQ(m)  ((uint64_t)(m) + 1)
#define STORE_MODSEQ(m) ((int64_t)(m)-1)

enum imap_state {
    IMAP_NOAUTH = 0x1,
    IMAP_AUTH = 0x2,
    IMAP_SELECTED = 0x4,
    IMAP_LOGOUT = 0x8,
};

/* ENABLE'd extensions (RFC 5161). */
#define IMAP_EN_CONDSTORE 0x01
#define IMAP_EN_QRESYNC   0x02
#define IMAP_EN_REV2      0x04
#define IMAP_EN_UTF8      0x08

/* One message of the selected mailbox. */
struct imap_msg {
    uint32_t uid;
    uint32_t flags; /* STORE_FLAG_* */
    int64_t id;     /* store item id */
    int64_t modseq; /* store MODSEQ of its last change */
    int64_t size;
    int64_t idate;
    char *keywords; /* malloc'd space-separated keywords, NULL when none */
    bool expunged;  /* gone from the store; the EXPUNGE is not sent yet */
};

/* An immutable copy of a folder's view, shared by every session that selects the folder
 * while nothing changes: the cache holds one reference, each sharing session another. */
struct imap_snap {
    int refs; /* atomic */
    size_t n;
    struct imap_msg msgs[]; /* keywords owned by the snapshot */
};

struct imap_mbox {
    struct imap_snap *snap; /* when set, msgs is snap->msgs and must not be written */
    struct store_folder folder;
    char name[1024]; /* the mailbox name as the client gave it (UTF-8) */
    bool readonly;   /* EXAMINE */
    struct imap_msg *msgs;
    size_t n, cap;
    int64_t synced;   /* store MODSEQ the view is up to date with */
    size_t announced; /* EXISTS count the client was told */
    uint32_t uidnext;
};

struct imap_session {
    struct net_conn *c;
    struct mail_ctx *m;
    enum imap_state state;
    unsigned enabled; /* IMAP_EN_* */
    struct store_account acct;
    struct store_user *su;
    struct imap_mbox *mbox;   /* when SELECTED */
    struct imap_seqset saved; /* SEARCHRES "$": UIDs, owned (malloc) */
    bool saved_valid;
    int wake_fd; /* eventfd written by store notifications */
    struct store_sub *sub;
    int timeout_ms;
    int bad_in_a_row;
    char *line; /* IMAP_LINE_MAX bytes for reading command lines */
};

/* After a successful login: opens the user's store, subscribes to its notifications and
 * enters the authenticated state. */
int imap_session_login(struct imap_session *s);
/* LOGIN and AUTHENTICATE: verify, check the gate, log in, answer. */
void imap_login_attempt(struct imap_session *s, struct imap_cmd *cmd, const char *user,
                        const char *pass);
/* False (after answering NO [PRIVACYREQUIRED]) when plain-text logins are not allowed on
 * this connection. */
bool imap_plaintext_allowed(struct imap_session *s, struct imap_cmd *cmd);

typedef void (*imap_cmd_fn)(struct imap_session *s, struct imap_cmd *cmd);

/* ---- responses (imap.c) ---------------------------------------------------------------- */

/* "tag OK text" / "tag NO [CODE] text" / "tag BAD text". */
void imap_reply(struct imap_session *s, struct imap_cmd *cmd, const char *status, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
#define imap_ok(s, cmd, ...)  imap_reply(s, cmd, "OK", __VA_ARGS__)
#define imap_no(s, cmd, ...)  imap_reply(s, cmd, "NO", __VA_ARGS__)
#define imap_bad(s, cmd, ...) imap_reply(s, cmd, "BAD", __VA_ARGS__)
/* "* text". */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Raw output (an imap_write_fn for the parser library's string writers: ctx = session). */
int imap_out(void *session, const void *data, size_t len);
/* A string in a response: atom, quoted or literal as needed (UTF-8 if enabled). */
void imap_out_astring(struct imap_session *s, const char *str);
void imap_out_string(struct imap_session *s, const char *str);
/* "(\Seen \Flagged $Keyword)" for store flags and keywords. */
void imap_out_flags(struct imap_session *s, uint32_t flags, const char *keywords);
/* Answers a store failure: NO [OVERQUOTA], [NONEXISTENT], [ALREADYEXISTS], [SERVERBUG]… */
void imap_store_error(struct imap_session *s, struct imap_cmd *cmd, int rc,
                      const struct store_err *err, const char *what);

/* The capability list for the session's current state (without "CAPABILITY "). */
void imap_capabilities(struct imap_session *s, char *buf, size_t size);

/* ---- flags (imap.c) ---------------------------------------------------------------------- */

/* IMAP_FLAG_* (parser) → STORE_FLAG_*; \Recent is dropped. */
uint32_t imap_flags_to_store(unsigned imap_flags);
/* Keywords of a parsed flag list as one space-separated string into buf; $Forwarded goes to
 * *store_flags instead. Returns -1 when it does not fit. */
int imap_keywords_join(const struct imap_flags *f, uint32_t *store_flags, char *buf, size_t size);

/* ---- mailbox names (imap.c) -------------------------------------------------------------- */

/* The mailbox name argument as UTF-8 (modified UTF-7 decoded unless UTF8=ACCEPT), into buf.
 * Returns 0, or -1 after answering BAD. */
int imap_arg_mailbox(struct imap_session *s, struct imap_cmd *cmd, const struct imap_arg *arg,
                     char *buf, size_t size);
/* Writes a folder's full name ("Archive.Inbox.2023", INBOX for the inbox) in UTF-8. */
int imap_folder_path(struct imap_session *s, const struct store_folder *f, char *buf, size_t size);
/* Writes a mailbox name in a response (modified UTF-7 unless UTF8=ACCEPT), as an astring. */
void imap_out_mailbox(struct imap_session *s, const char *utf8_name);

/* ---- the selected mailbox (imap_mbox.c) -------------------------------------------------- */

/* Loads folder f as the selected mailbox (replacing any other). */
int imap_mbox_open(struct imap_session *s, const struct store_folder *f, const char *name,
                   bool readonly, struct store_err *err);
void imap_mbox_close(struct imap_session *s);

#define IMAP_SYNC_EXPUNGE 0x1 /* EXPUNGE/VANISHED may be sent now */
#define IMAP_SYNC_OPENING 0x2 /* the view is being opened: apply everything, send nothing */
/* Brings the view up to date with the store and sends what changed: EXISTS for new
 * messages, FETCH (FLAGS …) for changed ones, EXPUNGE (or VANISHED under QRESYNC) for
 * removed ones when allowed, else they are kept as pending. */
int imap_mbox_sync(struct imap_session *s, unsigned how);

/* The shared cache of recent folder views (imap_cache.c). get: makes mb share the cached
 * snapshot of folder f (msgs, n, synced, uidnext) and returns 1, or returns 0. put: keeps
 * a snapshot of mb's view unless the cache holds one as new. */
int imap_cache_get(struct imap_cache *c, const char *user, const struct store_folder *f,
                   struct imap_mbox *mb);
void imap_cache_put(struct imap_cache *c, const char *user, const struct imap_mbox *mb);

/* Makes the view private before it is written to (copy on write): a session sharing a
 * snapshot gets its own copy. Pointers into msgs taken before are invalid after. -1 on
 * allocation failure. */
int imap_mbox_own(struct imap_mbox *mb);
/* Snapshots: a new one holds a deep copy of the view's live messages, refs = 1. */
struct imap_snap *imap_snap_new(const struct imap_msg *msgs, size_t n);
void imap_snap_ref(struct imap_snap *snap);
void imap_snap_release(struct imap_snap *snap);

/* Index (0-based) of the message with this UID, or -1. */
long imap_mbox_find_uid(const struct imap_mbox *mb, uint32_t uid);

/* Resolves a sequence-set argument (sequence numbers, or UIDs when uid) against the view.
 * Calls fn for each message in it, in ascending order, with its index; stops when fn
 * returns non-zero. Messages whose EXPUNGE is pending are skipped. Returns 0, or -1 after
 * answering BAD for a malformed set. "$" uses the saved SEARCHRES result. */
typedef int (*imap_msg_fn)(struct imap_session *s, size_t idx, void *ctx);
int imap_mbox_each(struct imap_session *s, struct imap_cmd *cmd, const char *set, bool uid,
                   imap_msg_fn fn, void *ctx);

/* The message's structure cache: from the store's meta, rebuilt from the body when absent
 * or stale. *blob must be freed. */
int imap_msg_cache(struct imap_session *s, const struct imap_msg *msg, void **blob,
                   struct mime_cache *out);

/* Reads the caches of a walk over the view ahead, in runs (imap_mbox.c). NULL when out of
 * memory, which imap_msg_cache_at() takes as "one by one". */
struct imap_pre;
struct imap_pre *imap_pre_new(void);
void imap_pre_free(struct imap_pre *p);
/* imap_msg_cache() of the view's message idx, from p's read-ahead when it has it. Walks
 * that go up the view (SEARCH, FETCH, SORT, THREAD) read one run per query, not one
 * message per query. */
int imap_msg_cache_at(struct imap_session *s, struct imap_pre *p, size_t idx, void **blob,
                      struct mime_cache *out);

/* ---- mailbox: what the mailbox commands share -------------------------------------------- */

/* A snapshot of the user's mail folders with their full paths, for LIST and LSUB
 * (imap_cmd_list.c). parent is the index of the parent folder, or -1 at the top. */
struct imap_tree_node {
    struct store_folder f;
    char *path; /* UTF-8, as imap_folder_path writes it (malloc) */
    long parent;
    bool has_children;
};
struct imap_tree {
    struct imap_tree_node *v;
    size_t n;
};
int imap_tree_load(struct imap_session *s, struct imap_tree *t, struct store_err *err);
void imap_tree_free(struct imap_tree *t);
/* The canonical LIST pattern from a reference and a mailbox pattern (both arguments as
 * sent), into buf as UTF-8. Returns 0, or -1 after answering BAD. */
int imap_list_pattern(struct imap_session *s, struct imap_cmd *cmd, const struct imap_arg *ref,
                      const struct imap_arg *pat, char *buf, size_t size);
/* Does a UTF-8 mailbox name match a LIST pattern ('*' anything, '%' anything but '.')? */
bool imap_list_match(const char *pattern, const char *name);

/* CREATE and RENAME (imap_cmd_create.c): checks a new mailbox name (no empty level, no
 * level over 255 bytes, no control characters or wildcards) and, inside the caller's
 * transaction, creates the missing folders above it. On success *parent is the folder the
 * new one goes in and *leaf points into name at its last level. A store error code with
 * err set otherwise (STORE_EINVAL for a bad name). */
int imap_mailbox_prepare(struct imap_session *s, const char *name, int64_t *parent,
                         const char **leaf, struct store_err *err);
/* Drops one trailing hierarchy separator, as RFC 3501 §6.3.3 asks for CREATE "foo.". */
void imap_mailbox_trim(char *name);

/* STATUS and LIST-STATUS (imap_cmd_status.c). */
#define IMAP_STATUS_MESSAGES      0x001
#define IMAP_STATUS_RECENT        0x002
#define IMAP_STATUS_UIDNEXT       0x004
#define IMAP_STATUS_UIDVALIDITY   0x008
#define IMAP_STATUS_UNSEEN        0x010
#define IMAP_STATUS_SIZE          0x020
#define IMAP_STATUS_HIGHESTMODSEQ 0x040
#define IMAP_STATUS_APPENDLIMIT   0x080
#define IMAP_STATUS_DELETED       0x100
/* A status-att list "(MESSAGES UNSEEN)" → IMAP_STATUS_* bits. Returns 0, or -1 with err. */
int imap_status_items(const struct imap_arg *list, unsigned *items, char *err, size_t errlen);
/* "* STATUS name (…)" for folder f. Returns a STORE_* code (DELETED reads the items). */
int imap_status_send(struct imap_session *s, const struct store_folder *f, const char *name,
                     unsigned items);

/* COPY and MOVE (imap_cmd_copy.c): writes UIDs as a compact sequence set ("3:5,9"), in the
 * order given, for COPYUID. */
void imap_out_uidset(struct imap_session *s, const uint32_t *uids, size_t n);

/* ---- search (imap_cmd_search.c; shared by SEARCH, SORT and THREAD) ----------------------- */

/* Brings the view up to date (imap_mbox_sync), then parses search criteria (args as after
 * SEARCH, or after SORT/THREAD's charset, which is then given as charset), checks the
 * charset and readies the keys for imap_search_run.
 * Returns 0, or -1 after answering BAD / NO [BADCHARSET]. */
int imap_search_criteria(struct imap_session *s, struct imap_cmd *cmd, const char *charset,
                         const struct imap_arg *args, size_t nargs, struct imap_search *q);
/* Evaluates prepared criteria over the view: *idx (malloc'd, caller frees) gets the matching
 * indexes in ascending order; *modseq (may be NULL) the highest IMAP MODSEQ among them.
 * Returns STORE_OK or a store error. */
int imap_search_run(struct imap_session *s, const struct imap_search *q, size_t **idx, size_t *n,
                    uint64_t *modseq);
/* US-ASCII and UTF-8 (any case; NULL means none given). */
bool imap_search_charset_ok(const char *charset);
/* Ascending distinct numbers → an owned set (ranges merged); -1 on OOM. */
int imap_seqset_from_numbers(const uint32_t *v, size_t n, struct imap_seqset *out);
/* Their compact form "1:3,7" (malloc'd, "" when n is 0); NULL on OOM. */
char *imap_numbers_format(const uint32_t *v, size_t n);

/* ---- commands (one file each) ------------------------------------------------------------ */
/* COPY and MOVE (imap_cmd_copy.c): parses "set mailbox", resolves the mailbox (NO
 * [TRYCREATE] when missing) and copies or moves every message of the set in one
 * transaction, collecting source and destination UIDs. -1 after answering BAD/NO; else 0
 * with x->rc the outcome. */
enum imap_xfer_op { IMAP_XFER_COPY, IMAP_XFER_MOVE };
struct imap_xfer {
    enum imap_xfer_op op;
    struct store_folder to;
    uint32_t *src, *dst;
    size_t n, cap;
    struct store_err err;
    int rc;
};
int imap_xfer_run(struct imap_session *s, struct imap_cmd *cmd, struct imap_xfer *x);
void imap_xfer_free(struct imap_xfer *x);

void imap_cmd_capability(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_noop(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_logout(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_starttls(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_login(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_enable(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_id(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_namespace(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_select(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_close(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_unselect(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_idle(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_check(struct imap_session *s, struct imap_cmd *cmd);
/* mailbox commands */
void imap_cmd_list(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_lsub(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_create(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_delete(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_rename(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_unsubscribe(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_status(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_append(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_getquota(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_setquota(struct imap_session *s, struct imap_cmd *cmd);
/* message commands */
void imap_cmd_expunge(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_copy(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_move(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_fetch(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_store(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_search(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_sort(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_thread(struct imap_session *s, struct imap_cmd *cmd);

#endif
