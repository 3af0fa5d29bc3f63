/*
 * store_backend.h — the private interface between the store's policy layer (store.c) and a
 * persistence backend (store_sqlite.c), in the manner of OpenSMTPD's queue backends: a
 * struct of functions chosen by name when the store is opened.
 *
 * Division of work: store.c validates input, hashes passwords, applies quota, decides
 * which MODSEQ a change takes, owns locking, the handle cache and notification. A backend
 * only persists: it receives already-validated values and the MODSEQ to stamp, keeps the
 * per-user counters (UIDs, UIDVALIDITY, usage) consistent inside the transaction it is
 * given, and stores large bodies as blobs that are durable before the commit.
 *
 * Not part of the public API: nothing outside store/ includes this file.
 */
#ifndef POLARIS_STORE_BACKEND_H
#define POLARIS_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Fills err (when non-NULL) with a one-line message and returns code. */
int store_errf(struct store_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What a backend needs from the configuration. */
struct store_bcfg {
    const char *data_dir;
    int busy_timeout_ms;
    size_t inline_max;
};

struct store_bdir; /* a backend's directory connection */
struct store_bu;   /* a backend's connection to one user's store */

enum store_domain_flag { STORE_DOMAIN_LOCAL_DELIVERY, STORE_DOMAIN_VERIFIED };
enum store_item_key { STORE_KEY_UID, STORE_KEY_NAME, STORE_KEY_EXT_UID };

struct store_backend {
    const char *name;

    /* Directory. Callers serialise calls on one store_bdir. */
    int (*dir_open)(const struct store_bcfg *cfg, struct store_bdir **out, struct store_err *err);
    void (*dir_close)(struct store_bdir *d);
    /* STORE_EEXIST when the name or the label is taken. */
    int (*domain_insert)(struct store_bdir *d, const struct store_domain *dom, int64_t *id,
                         struct store_err *err);
    /* By name, or by label when name is NULL. */
    int (*domain_get)(struct store_bdir *d, const char *name, const char *label,
                      struct store_domain *out, struct store_err *err);
    int (*domain_list)(struct store_bdir *d, store_domain_cb cb, void *ctx, struct store_err *err);
    /* Removes the domain with its users and aliases (their stores are the caller's). */
    int (*domain_delete)(struct store_bdir *d, int64_t id, struct store_err *err);
    int (*domain_set_flag)(struct store_bdir *d, int64_t id, enum store_domain_flag f, int on,
                           struct store_err *err);
    int (*domain_usage)(struct store_bdir *d, int64_t id, int64_t *users, int64_t *aliases,
                        struct store_err *err);
    /* Directory settings by (scope, key); setting_del with key NULL removes a scope's all
     * (a domain's scope includes its addresses'). */
    int (*setting_put)(struct store_bdir *d, const char *scope, const char *key, const void *val,
                       size_t len, struct store_err *err);
    int (*setting_get)(struct store_bdir *d, const char *scope, const char *key, void **val,
                       size_t *len, struct store_err *err);
    int (*setting_del)(struct store_bdir *d, const char *scope, const char *key,
                       struct store_err *err);
    int (*account_insert)(struct store_bdir *d, const struct store_account *a, int64_t *id,
                          struct store_err *err);
    int (*account_get)(struct store_bdir *d, const char *domain, const char *localpart,
                       struct store_account *out, struct store_err *err);
    int (*account_list)(struct store_bdir *d, const char *domain, store_account_cb cb, void *ctx,
                        struct store_err *err);
    /* Writes type, quota, active and pwhash of the row a->id. */
    int (*account_update)(struct store_bdir *d, const struct store_account *a,
                          struct store_err *err);
    int (*account_delete)(struct store_bdir *d, int64_t id, struct store_err *err);
    int (*alias_insert)(struct store_bdir *d, int64_t domain_id, const char *localpart,
                        const char *target, struct store_err *err);
    /* target NULL removes every target; STORE_ENOTFOUND when nothing matched. */
    int (*alias_delete)(struct store_bdir *d, int64_t domain_id, const char *localpart,
                        const char *target, struct store_err *err);
    /* domain NULL: every domain; localpart NULL: every source of the domain. */
    int (*alias_list)(struct store_bdir *d, const char *domain, const char *localpart,
                      store_alias_cb cb, void *ctx, struct store_err *err);

    /* Per-user stores. create 1 makes the store (empty, no folders) when missing. */
    int (*user_open)(const struct store_bcfg *cfg, const char *domain, const char *localpart,
                     int create, struct store_bu **out, struct store_err *err);
    void (*user_close)(struct store_bu *u);
    /* Removes the files of a user (localpart NULL: of the whole domain). */
    int (*user_remove)(const struct store_bcfg *cfg, const char *domain, const char *localpart,
                       struct store_err *err);

    /* A write transaction (taking the write lock at once), and savepoints inside it. */
    int (*txn_begin)(struct store_bu *u, struct store_err *err);
    int (*txn_commit)(struct store_bu *u, struct store_err *err);
    void (*txn_rollback)(struct store_bu *u);
    int (*sp_begin)(struct store_bu *u, struct store_err *err);
    int (*sp_release)(struct store_bu *u, struct store_err *err);
    void (*sp_rollback)(struct store_bu *u);

    /* Takes the next MODSEQ (inside a write transaction). */
    int (*modseq_next)(struct store_bu *u, int64_t *out, struct store_err *err);
    int (*counters)(struct store_bu *u, int64_t *modseq, int64_t *floor, int64_t *usage,
                    struct store_err *err);

    int (*folder_list)(struct store_bu *u, enum store_class cls, store_folder_cb cb, void *ctx,
                       struct store_err *err);
    int (*folder_get)(struct store_bu *u, int64_t id, struct store_folder *out,
                      struct store_err *err);
    /* counts 0: count, unseen and bytes are left -1 and the folder's items are not read. */
    int (*folder_find)(struct store_bu *u, int64_t parent_id, const char *name, int counts,
                       struct store_folder *out, struct store_err *err);
    int (*folder_by_role)(struct store_bu *u, enum store_role role, int counts,
                          struct store_folder *out, struct store_err *err);
    /* Assigns the UIDVALIDITY; STORE_EEXIST when parent already has that name. */
    int (*folder_insert)(struct store_bu *u, int64_t parent_id, const char *name,
                         enum store_class cls, enum store_role role, int64_t modseq, int64_t *id,
                         struct store_err *err);
    int (*folder_rename)(struct store_bu *u, int64_t id, int64_t parent_id, const char *name,
                         int64_t modseq, struct store_err *err);
    /* Deletes the folder, its subfolders and their items, leaving folder tombstones. */
    int (*folder_delete)(struct store_bu *u, int64_t id, int64_t modseq, struct store_err *err);
    /* subscribed -1 / props NULL leave the value. */
    int (*folder_set)(struct store_bu *u, int64_t id, int subscribed, const char *props,
                      int64_t modseq, struct store_err *err);
    int (*folder_changes_since)(struct store_bu *u, int64_t since, store_folder_change_cb cb,
                                void *ctx, struct store_err *err);

    int (*item_insert)(struct store_bu *u, int64_t folder_id, const struct store_item_new *in,
                       int64_t modseq, int64_t now, struct store_item *out, struct store_err *err);
    int (*item_get)(struct store_bu *u, int64_t id, struct store_item *out, struct store_err *err);
    int (*item_find)(struct store_bu *u, int64_t folder_id, enum store_item_key key, uint32_t uid,
                     const char *s, struct store_item *out, struct store_err *err);
    int (*item_body)(struct store_bu *u, int64_t id, char **body, size_t *len,
                     struct store_err *err);
    int (*item_meta)(struct store_bu *u, int64_t id, void **meta, size_t *len,
                     struct store_err *err);
    int (*item_meta_range)(struct store_bu *u, int64_t folder_id, uint32_t uid_lo, uint32_t uid_hi,
                           store_meta_cb cb, void *ctx, struct store_err *err);
    int (*item_replace)(struct store_bu *u, int64_t id, const struct store_item_new *in,
                        int64_t modseq, int64_t now, struct store_err *err);
    int (*item_set_flags)(struct store_bu *u, int64_t id, uint32_t flags, const char *keywords,
                          int64_t modseq, struct store_err *err);
    int (*item_move)(struct store_bu *u, int64_t id, int64_t to_folder, int64_t modseq,
                     struct store_err *err);
    int (*item_copy)(struct store_bu *u, int64_t id, int64_t to_folder, int64_t modseq, int64_t now,
                     int64_t *new_id, struct store_err *err);
    int (*item_delete)(struct store_bu *u, int64_t id, int64_t modseq, struct store_err *err);
    int (*item_list)(struct store_bu *u, int64_t folder_id, uint32_t lo, uint32_t hi,
                     store_item_cb cb, void *ctx, struct store_err *err);
    int (*item_list_brief)(struct store_bu *u, int64_t folder_id, store_brief_cb cb, void *ctx,
                           struct store_err *err);
    int (*changes_since)(struct store_bu *u, int64_t folder_id, int64_t since, store_change_cb cb,
                         void *ctx, struct store_err *err);

    /* The occurrence index: item delete, move, copy and folder delete keep it in step. */
    int (*ranges_set)(struct store_bu *u, int64_t item_id, const struct store_range *r, size_t n,
                      int64_t complete_until, struct store_err *err);
    int (*ranges_get)(struct store_bu *u, int64_t item_id, struct store_range **r, size_t *n,
                      int64_t *complete_until, struct store_err *err);
    int (*ranges_until)(struct store_bu *u, int64_t item_id, int64_t *complete_until,
                        struct store_err *err);
    int (*range_query)(struct store_bu *u, int64_t folder_id, int64_t start, int64_t end,
                       store_item_cb cb, void *ctx, struct store_err *err);

    int (*state_put)(struct store_bu *u, const char *ns, const char *key, const void *val,
                     size_t len, struct store_err *err);
    int (*state_get)(struct store_bu *u, const char *ns, const char *key, void **val, size_t *len,
                     struct store_err *err);
    int (*state_del)(struct store_bu *u, const char *ns, const char *key, struct store_err *err);
    int (*state_list)(struct store_bu *u, const char *ns, store_state_cb cb, void *ctx,
                      struct store_err *err);

    /* "ok", or the first problem found, in out. */
    int (*check)(struct store_bu *u, char *out, size_t outlen);
};

extern const struct store_backend store_sqlite_backend;

/* The notification hub (store_notify.c), one per struct store. */
struct store_hub;
struct store_hub *store_hub_new(const char *data_dir);
void store_hub_free(struct store_hub *h);
struct store_hub *store_hub_of(struct store *s);
/* Called by store.c after a commit that took `modseq`, with no store lock held. */
void store_notify_commit(struct store_hub *h, const char *address, int64_t modseq);

#endif
