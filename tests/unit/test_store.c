/*
 * test_store.c — the store API end to end on the SQLite backend: directory (domains,
 * labels, users, aliases), per-user folders and items, the MODSEQ journal, UIDs,
 * tombstones, blobs, quota, engine state, concurrency (processes and threads sharing a
 * user) and notification. Each test runs on a fresh data dir under /tmp.
 */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

#define PASSWORD "Corr3ct-horse"
#define ALICE    "alice@example.com"

struct fx {
    char dir[64];
    struct store *s;
    struct store_user *u;
    struct store_config cfg;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct store_err e = {0};

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/polaris-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->cfg.data_dir = f->dir;
    if (store_open(&f->s, &f->cfg, &e) != STORE_OK)
        fail_msg("store_open: %s", e.msg);
    if (store_domain_add(f->s, "example.com", NULL, &e) != STORE_OK)
        fail_msg("domain add: %s", e.msg);
    if (store_account_add(f->s, ALICE, STORE_ENHANCED, 0, PASSWORD, NULL, NULL, &e) != STORE_OK)
        fail_msg("user add: %s", e.msg);
    if (store_user_open(f->s, ALICE, &f->u, &e) != STORE_OK)
        fail_msg("user open: %s", e.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    if (f->u)
        store_user_release(f->u);
    store_close(f->s);
    rm_tree(f->dir);
    free(f);
    return 0;
}

static int64_t folder_id(struct store_user *u, enum store_role role)
{
    struct store_folder f;

    assert_int_equal(store_folder_by_role(u, role, &f), STORE_OK);
    return f.id;
}

static struct store_item add_item(struct store_user *u, int64_t folder, const char *body)
{
    struct store_item_new in = {.body = body, .body_len = strlen(body), .ctype = "message/rfc822"};
    struct store_item it;
    struct store_err e = {0};

    if (store_item_add(u, folder, &in, &it, &e) != STORE_OK)
        fail_msg("item add: %s", e.msg);
    return it;
}

/* ------------------------------------------------------------------------------------- */

static int count_domain(const struct store_domain *d, void *ctx)
{
    (void)d;
    (*(int *)ctx)++;
    return 0;
}

static void test_domains(void **state)
{
    struct fx *f = *state;
    struct store_domain d, g;
    struct store_err e = {0};
    int n = 0;

    assert_int_equal(store_domain_add(f->s, "My-Company.COM", &d, &e), STORE_OK);
    assert_string_equal(d.name, "my-company.com");
    assert_string_equal(d.label, "my-company--com");
    assert_int_equal(strlen(d.token), 32);
    assert_int_equal(strspn(d.token, "0123456789abcdef"), 32);
    assert_int_equal(d.local_delivery, 1);
    assert_int_equal(d.verified, 0);
    assert_true(d.created > 0);

    assert_int_equal(store_domain_get(f->s, "my-company.com", &g, &e), STORE_OK);
    assert_int_equal(g.id, d.id);
    assert_string_equal(g.token, d.token);
    assert_int_equal(store_domain_by_label(f->s, "my-company--com", &g), STORE_OK);
    assert_string_equal(g.name, "my-company.com");
    assert_int_equal(store_domain_get(f->s, "example.com", &g, &e), STORE_OK);
    assert_int_equal(g.users, 1);

    assert_int_equal(store_domain_add(f->s, "my-company.com", NULL, &e), STORE_EEXIST);
    assert_non_null(strstr(e.msg, "already exists"));
    assert_int_equal(store_domain_add(f->s, "not a domain", NULL, &e), STORE_EINVAL);
    assert_int_equal(store_domain_add(f->s, NULL, NULL, &e), STORE_EINVAL);

    assert_int_equal(store_domain_set_verified(f->s, "my-company.com", 1, &e), STORE_OK);
    assert_int_equal(store_domain_set_local_delivery(f->s, "my-company.com", 0, &e), STORE_OK);
    assert_int_equal(store_domain_get(f->s, "my-company.com", &g, &e), STORE_OK);
    assert_int_equal(g.verified, 1);
    assert_int_equal(g.local_delivery, 0);

    assert_int_equal(store_domain_list(f->s, count_domain, &n, &e), STORE_OK);
    assert_int_equal(n, 2);

    /* A domain with users refuses deletion unless forced. */
    assert_int_equal(store_domain_del(f->s, "example.com", 0, &e), STORE_EEXIST);
    assert_int_equal(store_domain_del(f->s, "my-company.com", 0, &e), STORE_OK);
    assert_int_equal(store_domain_get(f->s, "my-company.com", &g, &e), STORE_ENOTFOUND);
    n = 0;
    assert_int_equal(store_domain_list(f->s, count_domain, &n, &e), STORE_OK);
    assert_int_equal(n, 1);
}

static void test_domain_force_delete(void **state)
{
    struct fx *f = *state;
    struct store_user *u;
    struct store_err e = {0};
    char path[256];

    store_user_release(f->u);
    f->u = NULL;
    assert_int_equal(store_alias_add(f->s, "info@example.com", ALICE, &e), STORE_OK);
    assert_int_equal(store_domain_del(f->s, "example.com", 1, &e), STORE_OK);
    assert_int_equal(store_user_open(f->s, ALICE, &u, &e), STORE_ENOTFOUND);
    snprintf(path, sizeof(path), "%s/users/example.com", f->dir);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void test_label_collision(void **state)
{
    struct fx *f = *state;
    struct store_domain d;
    struct store_err e = {0};

    assert_int_equal(store_domain_add(f->s, "xn--a.com", &d, &e), STORE_OK);
    assert_string_equal(d.label, "xn--a--com");
    assert_int_equal(store_domain_add(f->s, "xn.a.com", NULL, &e), STORE_EEXIST);
    assert_non_null(strstr(e.msg, "xn--a.com")); /* names the other domain */
    assert_non_null(strstr(e.msg, "xn--a--com"));
    assert_int_equal(store_domain_get(f->s, "xn.a.com", &d, &e), STORE_ENOTFOUND);
}

/* ------------------------------------------------------------------------------------- */

static int count_folder(const struct store_folder *fo, void *ctx)
{
    (void)fo;
    (*(int *)ctx)++;
    return 0;
}

static int count_account(const struct store_account *a, void *ctx)
{
    (void)a;
    (*(int *)ctx)++;
    return 0;
}

static void test_users(void **state)
{
    static const struct {
        enum store_role role;
        const char *name;
        enum store_class cls;
    } want[] = {
        {STORE_ROLE_INBOX, "INBOX", STORE_CLASS_MAIL},
        {STORE_ROLE_DRAFTS, "Drafts", STORE_CLASS_MAIL},
        {STORE_ROLE_SENT, "Sent", STORE_CLASS_MAIL},
        {STORE_ROLE_JUNK, "Junk", STORE_CLASS_MAIL},
        {STORE_ROLE_TRASH, "Trash", STORE_CLASS_MAIL},
        {STORE_ROLE_ARCHIVE, "Archive", STORE_CLASS_MAIL},
        {STORE_ROLE_CALENDAR, "Calendar", STORE_CLASS_CALENDAR},
        {STORE_ROLE_CONTACTS, "Contacts", STORE_CLASS_CONTACTS},
        {STORE_ROLE_TASKS, "Tasks", STORE_CLASS_TASKS},
        {STORE_ROLE_NOTES, "Notes", STORE_CLASS_NOTES},
    };
    struct fx *f = *state;
    struct store_account a;
    struct store_folder fo;
    struct store_user *u;
    struct store_err e = {0};
    int n = 0;

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(store_folder_by_role(f->u, want[i].role, &fo), STORE_OK);
        assert_string_equal(fo.name, want[i].name);
        assert_int_equal(fo.cls, want[i].cls);
        assert_int_equal(fo.parent_id, 0);
        assert_true(fo.uidvalidity > 0);
        assert_int_equal(fo.uidnext, 1);
    }
    assert_int_equal(store_folder_list(f->u, 0, count_folder, &n, &e), STORE_OK);
    assert_int_equal(n, 10);
    assert_int_equal(store_user_modseq(f->u), 0);

    assert_int_equal(store_account_get(f->s, "ALICE@Example.com", &a, &e), STORE_OK);
    assert_string_equal(a.address, ALICE);
    assert_string_equal(a.localpart, "alice");
    assert_string_equal(a.domain, "example.com");
    assert_int_equal(a.type, STORE_ENHANCED);
    assert_int_equal(a.quota, STORE_QUOTA_DEFAULT);
    assert_int_equal(a.active, 1);
    assert_int_equal(store_password_check(PASSWORD, a.pwhash), 1);
    assert_int_equal(store_password_check("wrong", a.pwhash), 0);

    /* Refusals, each for its rule. */
    assert_int_equal(store_account_add(f->s, ALICE, STORE_BASIC, 0, PASSWORD, NULL, NULL, &e),
                     STORE_EEXIST);
    assert_int_equal(
        store_account_add(f->s, "1bob@example.com", STORE_BASIC, 0, PASSWORD, NULL, NULL, &e),
        STORE_EINVAL);
    assert_int_equal(
        store_account_add(f->s, "bob@example.com", STORE_BASIC, 0, "short", NULL, NULL, &e),
        STORE_EINVAL);
    assert_int_equal(store_account_add(f->s, "bob@example.com", STORE_BASIC, 60000000000LL,
                                       PASSWORD, NULL, NULL, &e),
                     STORE_EINVAL);
    assert_int_equal(
        store_account_add(f->s, "bob@example.com", STORE_BASIC, 1000, PASSWORD, NULL, NULL, &e),
        STORE_EINVAL);
    assert_int_equal(
        store_account_add(f->s, "bob@nowhere.org", STORE_BASIC, 0, PASSWORD, NULL, NULL, &e),
        STORE_EINVAL);
    assert_int_equal(
        store_account_add(f->s, "bob@example.com", STORE_BASIC, 0, NULL, NULL, NULL, &e),
        STORE_EINVAL);
    assert_int_equal(store_account_add(f->s, "bob@example.com", 7, 0, PASSWORD, NULL, NULL, &e),
                     STORE_EINVAL);
    assert_int_equal(store_account_add(f->s, "bob", STORE_BASIC, 0, PASSWORD, NULL, NULL, &e),
                     STORE_EINVAL);

    /* Import of an existing hash. */
    assert_int_equal(store_account_add(f->s, "Bob@Example.com", STORE_BASIC, 0, NULL,
                                       "$y$j9T$abcdefgh$0123456789", &a, &e),
                     STORE_OK);
    assert_string_equal(a.address, "bob@example.com");
    assert_string_equal(a.pwhash, "$y$j9T$abcdefgh$0123456789");
    n = 0;
    assert_int_equal(store_account_list(f->s, "example.com", count_account, &n, &e), STORE_OK);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(store_account_list(f->s, NULL, count_account, &n, &e), STORE_OK);
    assert_int_equal(n, 2);

    /* Changes. */
    assert_int_equal(store_account_set_quota(f->s, "bob@example.com", 2000000000LL, &e), STORE_OK);
    assert_int_equal(store_account_set_quota(f->s, "bob@example.com", 51000000000LL, &e),
                     STORE_EINVAL);
    assert_int_equal(store_account_set_type(f->s, "bob@example.com", STORE_ENHANCED, &e), STORE_OK);
    assert_int_equal(store_account_set_quota(f->s, "bob@example.com", 100000000000LL, &e),
                     STORE_OK);
    /* 100 GB does not fit Basic: the type change is refused. */
    assert_int_equal(store_account_set_type(f->s, "bob@example.com", STORE_BASIC, &e),
                     STORE_EINVAL);
    assert_int_equal(store_account_set_active(f->s, "bob@example.com", 0, &e), STORE_OK);
    assert_int_equal(store_account_set_password(f->s, "bob@example.com", "N3w-password", &e),
                     STORE_OK);
    assert_int_equal(store_account_set_password(f->s, "bob@example.com", "weak", &e), STORE_EINVAL);
    assert_int_equal(store_account_get(f->s, "bob@example.com", &a, &e), STORE_OK);
    assert_int_equal(a.type, STORE_ENHANCED);
    assert_int_equal(a.quota, 100000000000LL);
    assert_int_equal(a.active, 0);
    assert_int_equal(store_password_check("N3w-password", a.pwhash), 1);

    /* Open, delete, gone. */
    assert_int_equal(store_user_open(f->s, "bob@example.com", &u, &e), STORE_OK);
    assert_string_equal(store_user_address(u), "bob@example.com");
    store_user_release(u);
    assert_int_equal(store_account_del(f->s, "bob@example.com", &e), STORE_OK);
    assert_int_equal(store_user_open(f->s, "bob@example.com", &u, &e), STORE_ENOTFOUND);
    assert_int_equal(store_account_get(f->s, "bob@example.com", &a, &e), STORE_ENOTFOUND);
    assert_int_equal(store_user_open(f->s, "nobody@example.com", &u, &e), STORE_ENOTFOUND);
    assert_int_equal(store_user_open(f->s, "garbage", &u, &e), STORE_ENOTFOUND);
}

/* ------------------------------------------------------------------------------------- */

struct alias_seen {
    int n;
    char last[640];
};

static int collect_alias(const char *source, const char *target, void *ctx)
{
    struct alias_seen *a = ctx;

    a->n++;
    snprintf(a->last, sizeof(a->last), "%s>%s", source, target);
    return 0;
}

static void test_aliases(void **state)
{
    struct fx *f = *state;
    struct store_err e = {0};
    struct alias_seen seen = {0};

    assert_int_equal(store_alias_add(f->s, "Info@Example.com", ALICE, &e), STORE_OK);
    assert_int_equal(store_alias_add(f->s, "info@example.com", "ext@other.org", &e), STORE_OK);
    assert_int_equal(store_alias_add(f->s, "@example.com", ALICE, &e), STORE_OK);
    assert_int_equal(store_alias_add(f->s, "spam@example.com", STORE_BLACKHOLE, &e), STORE_OK);

    assert_int_equal(store_alias_add(f->s, "info@example.com", ALICE, &e), STORE_EEXIST);
    assert_int_equal(store_alias_add(f->s, "info@nowhere.org", ALICE, &e), STORE_EINVAL);
    assert_int_equal(store_alias_add(f->s, "info@example.com", "not an address", &e), STORE_EINVAL);
    assert_int_equal(store_alias_add(f->s, "info@example.com", ":other", &e), STORE_EINVAL);
    assert_int_equal(store_alias_add(f->s, "1x@example.com", ALICE, &e), STORE_EINVAL);
    assert_int_equal(store_alias_add(f->s, "info@example.com", "info@example.com", &e),
                     STORE_EINVAL);

    assert_int_equal(store_alias_list(f->s, NULL, NULL, collect_alias, &seen, &e), STORE_OK);
    assert_int_equal(seen.n, 4);
    seen.n = 0;
    assert_int_equal(store_alias_list(f->s, "example.com", NULL, collect_alias, &seen, &e),
                     STORE_OK);
    assert_int_equal(seen.n, 4);
    seen.n = 0;
    assert_int_equal(store_alias_list(f->s, NULL, "info@example.com", collect_alias, &seen, &e),
                     STORE_OK);
    assert_int_equal(seen.n, 2);
    seen.n = 0;
    assert_int_equal(store_alias_list(f->s, NULL, "@example.com", collect_alias, &seen, &e),
                     STORE_OK);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.last, "@example.com>" ALICE);
    seen.n = 0;
    assert_int_equal(store_alias_list(f->s, NULL, "spam@example.com", collect_alias, &seen, &e),
                     STORE_OK);
    assert_string_equal(seen.last, "spam@example.com>:blackhole");

    assert_int_equal(store_alias_del(f->s, "info@example.com", "ext@other.org", &e), STORE_OK);
    assert_int_equal(store_alias_del(f->s, "info@example.com", "ext@other.org", &e),
                     STORE_ENOTFOUND);
    assert_int_equal(store_alias_del(f->s, "@example.com", NULL, &e), STORE_OK);
    assert_int_equal(store_alias_del(f->s, "spam@example.com", NULL, &e), STORE_OK);
    seen.n = 0;
    assert_int_equal(store_alias_list(f->s, NULL, NULL, collect_alias, &seen, &e), STORE_OK);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.last, "info@example.com>" ALICE);
}

/* ------------------------------------------------------------------------------------- */

static void test_settings(void **state)
{
    struct fx *f = *state;
    struct store_err e = {0};
    void *v = NULL;
    size_t len = 0;

    assert_int_equal(store_setting_put(f->s, "example.com", "dkim.selector", "s1", 2, &e), 0);
    assert_int_equal(store_setting_put(f->s, ALICE, "autoreply", "on", 2, &e), 0);
    assert_int_equal(store_setting_get(f->s, "example.com", "dkim.selector", &v, &len, &e), 0);
    assert_int_equal(len, 2);
    assert_string_equal(v, "s1");
    free(v);
    /* replacing keeps one value */
    assert_int_equal(store_setting_put(f->s, "example.com", "dkim.selector", "s22", 3, &e), 0);
    assert_int_equal(store_setting_get(f->s, "example.com", "dkim.selector", &v, &len, &e), 0);
    assert_string_equal(v, "s22");
    free(v);
    assert_int_equal(store_setting_get(f->s, "example.com", "nope", &v, &len, &e), STORE_ENOTFOUND);
    assert_int_equal(store_setting_put(f->s, "", "k", "v", 1, &e), STORE_EINVAL);
    assert_int_equal(store_setting_del(f->s, "example.com", "dkim.selector", &e), 0);
    assert_int_equal(store_setting_get(f->s, "example.com", "dkim.selector", &v, &len, &e),
                     STORE_ENOTFOUND);
    /* a user's settings go with the user, a domain's (and its addresses') with the domain */
    assert_int_equal(store_setting_put(f->s, "example.com", "k", "v", 1, &e), 0);
    store_user_release(f->u);
    f->u = NULL;
    assert_int_equal(store_account_del(f->s, ALICE, &e), 0);
    assert_int_equal(store_setting_get(f->s, ALICE, "autoreply", &v, &len, &e), STORE_ENOTFOUND);
    assert_int_equal(store_setting_put(f->s, "bob@example.com", "autoreply", "x", 1, &e), 0);
    assert_int_equal(store_domain_del(f->s, "example.com", 1, &e), 0);
    assert_int_equal(store_setting_get(f->s, "example.com", "k", &v, &len, &e), STORE_ENOTFOUND);
    assert_int_equal(store_setting_get(f->s, "bob@example.com", "autoreply", &v, &len, &e),
                     STORE_ENOTFOUND);
}

static void test_modseq_across_folders(void **state)
{
    struct fx *f = *state;
    int64_t folders[3] = {folder_id(f->u, STORE_ROLE_INBOX), folder_id(f->u, STORE_ROLE_CALENDAR),
                          folder_id(f->u, STORE_ROLE_SENT)};
    int64_t last = 0;
    struct store_folder fo;
    struct store_err e = {0};

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3; i++) {
            struct store_item it = add_item(f->u, folders[i], "body");

            assert_true(it.modseq > last);
            last = it.modseq;
            assert_int_equal(store_folder_get(f->u, folders[i], &fo, &e), STORE_OK);
            assert_int_equal(fo.modseq, it.modseq);
        }
    }
    assert_int_equal(store_user_modseq(f->u), last);
}

static void test_txn_shares_modseq(void **state)
{
    struct fx *f = *state;
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX), notes = folder_id(f->u, STORE_ROLE_NOTES);
    struct store_item a = add_item(f->u, inbox, "before"), it[3];
    struct store_err e = {0};
    int64_t m = 0;

    assert_int_equal(store_txn_begin(f->u, &e), STORE_OK);
    it[0] = add_item(f->u, inbox, "one");
    it[1] = add_item(f->u, notes, "two");
    assert_int_equal(
        store_item_set_flags(f->u, a.id, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &it[2], &e),
        STORE_OK);
    /* A failing call inside does not take the transaction down with it. */
    assert_int_equal(store_item_delete(f->u, 999999, &e), STORE_ENOTFOUND);
    assert_int_equal(store_txn_commit(f->u, &m, &e), STORE_OK);
    assert_true(m > a.modseq);
    for (int i = 0; i < 3; i++)
        assert_int_equal(it[i].modseq, m);
    assert_int_equal(store_item_get(f->u, a.id, &it[2], &e), STORE_OK);
    assert_int_equal(it[2].modseq, m);
    assert_int_equal(store_user_modseq(f->u), m);

    /* A rolled-back transaction leaves nothing, and the next change moves on from m. */
    assert_int_equal(store_txn_begin(f->u, &e), STORE_OK);
    it[0] = add_item(f->u, inbox, "gone");
    store_txn_rollback(f->u);
    assert_int_equal(store_item_get(f->u, it[0].id, NULL, &e), STORE_ENOTFOUND);
    assert_int_equal(store_user_modseq(f->u), m);
    it[1] = add_item(f->u, inbox, "after");
    assert_int_equal(it[1].modseq, m + 1);

    /* Commit of a transaction that changed nothing reports the current MODSEQ. */
    assert_int_equal(store_txn_begin(f->u, &e), STORE_OK);
    assert_int_equal(store_txn_commit(f->u, &m, &e), STORE_OK);
    assert_int_equal(m, it[1].modseq);
    assert_int_equal(store_txn_commit(f->u, &m, &e), STORE_EINVAL);
}

static void test_uids(void **state)
{
    struct fx *f = *state;
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX);
    struct store_item a = add_item(f->u, inbox, "a"), b = add_item(f->u, inbox, "b");
    struct store_item c = add_item(f->u, inbox, "c"), d;
    struct store_folder fo;
    struct store_err e = {0};

    assert_int_equal(a.uid, 1);
    assert_int_equal(b.uid, 2);
    assert_int_equal(c.uid, 3);
    assert_int_equal(store_item_delete(f->u, c.id, &e), STORE_OK);
    assert_int_equal(store_item_delete(f->u, b.id, &e), STORE_OK);
    d = add_item(f->u, inbox, "d");
    assert_int_equal(d.uid, 4);
    assert_true(d.id > c.id);
    assert_int_equal(store_folder_get(f->u, inbox, &fo, &e), STORE_OK);
    assert_int_equal(fo.uidnext, 5);
    assert_int_equal(fo.count, 2);
    assert_int_equal(fo.unseen, 2);
    assert_int_equal(fo.bytes, 2);
    assert_int_equal(store_item_by_uid(f->u, inbox, 4, &c), STORE_OK);
    assert_int_equal(c.id, d.id);
    assert_int_equal(store_item_by_uid(f->u, inbox, 2, &c), STORE_ENOTFOUND);
    assert_int_equal(store_item_add(f->u, 424242,
                                    &(struct store_item_new){.body = "x", .body_len = 1}, NULL, &e),
                     STORE_ENOTFOUND);
}

struct change {
    int64_t id, modseq;
    uint32_t uid;
    int removed;
};

struct changes {
    int n;
    struct change c[16];
};

static int collect_change(const struct store_item *it, int removed, void *ctx)
{
    struct changes *cs = ctx;

    if (cs->n < 16)
        cs->c[cs->n] = (struct change){it->id, it->modseq, it->uid, removed};
    cs->n++;
    return 0;
}

static void test_changes_since(void **state)
{
    struct fx *f = *state;
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX);
    struct store_item a = add_item(f->u, inbox, "a"), b = add_item(f->u, inbox, "b");
    struct store_item c = add_item(f->u, inbox, "c"), d;
    struct changes cs = {0};
    struct store_err e = {0};
    int64_t since = c.modseq;

    add_item(f->u, folder_id(f->u, STORE_ROLE_SENT), "elsewhere"); /* another folder */
    assert_int_equal(
        store_item_set_flags(f->u, b.id, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, NULL, 0, NULL, &e),
        STORE_OK);
    assert_int_equal(store_item_delete(f->u, c.id, &e), STORE_OK);
    d = add_item(f->u, inbox, "d");

    assert_int_equal(store_changes_since(f->u, inbox, since, collect_change, &cs, &e), STORE_OK);
    assert_int_equal(cs.n, 3);
    assert_int_equal(cs.c[0].id, b.id);
    assert_int_equal(cs.c[0].removed, 0);
    assert_int_equal(cs.c[1].id, c.id);
    assert_int_equal(cs.c[1].removed, 1);
    assert_int_equal(cs.c[1].uid, c.uid);
    assert_int_equal(cs.c[2].id, d.id);
    assert_int_equal(cs.c[2].removed, 0);
    assert_true(cs.c[0].modseq < cs.c[1].modseq && cs.c[1].modseq < cs.c[2].modseq);

    /* Up to date: nothing. From zero: the live items only. */
    cs.n = 0;
    assert_int_equal(store_changes_since(f->u, inbox, d.modseq, collect_change, &cs, &e), STORE_OK);
    assert_int_equal(cs.n, 0);
    assert_int_equal(store_changes_since(f->u, inbox, 0, collect_change, &cs, &e), STORE_OK);
    assert_int_equal(cs.n, 3);
    assert_int_equal(cs.c[0].id, a.id);
}

static void test_move_copy(void **state)
{
    struct fx *f = *state;
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX),
            archive = folder_id(f->u, STORE_ROLE_ARCHIVE);
    struct store_item a = add_item(f->u, inbox, "moving body"), m, c;
    struct changes cs = {0};
    struct store_err e = {0};
    struct store_folder fo;
    char *body;
    size_t len;

    add_item(f->u, archive, "already there");
    assert_int_equal(store_item_move(f->u, a.id, archive, &m, &e), STORE_OK);
    assert_int_equal(m.id, a.id);
    assert_int_equal(m.folder_id, archive);
    assert_int_equal(m.uid, 2);
    assert_true(m.modseq > a.modseq);
    assert_int_equal(store_item_by_uid(f->u, inbox, a.uid, &c), STORE_ENOTFOUND);
    assert_int_equal(store_changes_since(f->u, inbox, a.modseq, collect_change, &cs, &e), STORE_OK);
    assert_int_equal(cs.n, 1);
    assert_int_equal(cs.c[0].removed, 1);
    assert_int_equal(cs.c[0].id, a.id);
    assert_int_equal(cs.c[0].uid, a.uid);
    cs.n = 0;
    assert_int_equal(store_changes_since(f->u, archive, m.modseq - 1, collect_change, &cs, &e),
                     STORE_OK);
    assert_int_equal(cs.n, 1);
    assert_int_equal(cs.c[0].removed, 0);
    assert_int_equal(cs.c[0].uid, 2);
    assert_int_equal(store_item_move(f->u, a.id, 987654, NULL, &e), STORE_ENOTFOUND);

    assert_int_equal(store_item_copy(f->u, a.id, inbox, &c, &e), STORE_OK);
    assert_int_not_equal(c.id, a.id);
    assert_int_equal(c.folder_id, inbox);
    assert_int_equal(c.uid, 2); /* inbox's uid 1 is spent */
    assert_int_equal(store_item_body(f->u, c.id, &body, &len, &e), STORE_OK);
    assert_int_equal(len, strlen("moving body"));
    assert_memory_equal(body, "moving body", len);
    free(body);
    assert_int_equal(store_item_get(f->u, a.id, &m, &e), STORE_OK);
    assert_int_equal(m.folder_id, archive);
    assert_int_equal(store_folder_get(f->u, archive, &fo, &e), STORE_OK);
    assert_int_equal(fo.count, 2);
}

static void test_flags(void **state)
{
    struct fx *f = *state;
    struct store_item a = add_item(f->u, folder_id(f->u, STORE_ROLE_INBOX), "x"), r;
    struct store_err e = {0};
    int64_t before;

    assert_int_equal(
        store_item_set_flags(f->u, a.id, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &r, &e),
        STORE_OK);
    assert_int_equal(r.flags, STORE_FLAG_SEEN);
    assert_true(r.modseq > a.modseq);
    before = store_user_modseq(f->u);

    /* No-op: no MODSEQ. */
    assert_int_equal(
        store_item_set_flags(f->u, a.id, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &r, &e),
        STORE_OK);
    assert_int_equal(r.modseq, before);
    assert_int_equal(store_user_modseq(f->u), before);
    assert_int_equal(
        store_item_set_flags(f->u, a.id, STORE_FLAGS_REMOVE, STORE_FLAG_DRAFT, NULL, 0, &r, &e),
        STORE_OK);
    assert_int_equal(store_user_modseq(f->u), before);

    /* Keywords: add, dedupe case-insensitively, remove. */
    assert_int_equal(store_item_set_flags(f->u, a.id, STORE_FLAGS_ADD, 0, "$Label1 foo", 0, &r, &e),
                     STORE_OK);
    assert_string_equal(r.keywords, "$Label1 foo");
    assert_int_equal(store_item_set_flags(f->u, a.id, STORE_FLAGS_ADD, 0, "FOO bar", 0, &r, &e),
                     STORE_OK);
    assert_string_equal(r.keywords, "$Label1 foo bar");
    assert_int_equal(store_item_set_flags(f->u, a.id, STORE_FLAGS_REMOVE, 0, "foo", 0, &r, &e),
                     STORE_OK);
    assert_string_equal(r.keywords, "$Label1 bar");
    assert_int_equal(store_item_set_flags(f->u, a.id, STORE_FLAGS_SET,
                                          STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED, NULL, 0, &r,
                                          &e),
                     STORE_OK);
    assert_int_equal(r.flags, STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED);
    assert_string_equal(r.keywords, "$Label1 bar"); /* keywords NULL leaves them */

    /* UNCHANGEDSINCE. */
    assert_int_equal(store_item_set_flags(f->u, a.id, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL,
                                          r.modseq - 1, NULL, &e),
                     STORE_ECONFLICT);
    assert_int_equal(
        store_item_set_flags(f->u, a.id, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, r.modseq, &r, &e),
        STORE_OK);
    assert_int_equal(r.flags & STORE_FLAG_SEEN, STORE_FLAG_SEEN);
    assert_int_equal(store_item_set_flags(f->u, 777777, STORE_FLAGS_ADD, 1, NULL, 0, NULL, &e),
                     STORE_ENOTFOUND);
}

static void test_replace(void **state)
{
    struct fx *f = *state;
    int64_t cal = folder_id(f->u, STORE_ROLE_CALENDAR);
    struct store_item_new in = {.body = "BEGIN:VCALENDAR v1",
                                .body_len = 18,
                                .ctype = "text/calendar",
                                .name = "ev.ics",
                                .ext_uid = "uid-1",
                                .meta = "m1",
                                .meta_len = 2};
    struct store_item a, r;
    struct store_err e = {0};
    char *body;
    void *meta;
    size_t len;

    assert_int_equal(store_item_add(f->u, cal, &in, &a, &e), STORE_OK);
    assert_string_equal(a.name, "ev.ics");
    assert_int_equal(a.meta_len, 2);
    assert_int_equal(store_item_add(f->u, cal, &in, NULL, &e), STORE_EEXIST); /* same name */
    assert_int_equal(store_item_by_name(f->u, cal, "ev.ics", &r), STORE_OK);
    assert_int_equal(r.id, a.id);
    assert_int_equal(store_item_by_ext_uid(f->u, cal, "uid-1", &r), STORE_OK);
    assert_int_equal(r.id, a.id);

    in.body = "BEGIN:VCALENDAR v2 longer";
    in.body_len = strlen(in.body);
    in.meta = "meta2";
    in.meta_len = 5;
    assert_int_equal(store_item_replace(f->u, a.id, &in, a.modseq + 5, NULL, &e), STORE_ECONFLICT);
    assert_int_equal(store_item_replace(f->u, a.id, &in, a.modseq, &r, &e), STORE_OK);
    assert_true(r.modseq > a.modseq);
    assert_int_equal(r.uid, a.uid);
    assert_int_equal(r.size, (int64_t)in.body_len);
    assert_int_equal(store_item_body(f->u, a.id, &body, &len, &e), STORE_OK);
    assert_int_equal(len, in.body_len);
    assert_memory_equal(body, in.body, len);
    free(body);
    assert_int_equal(store_item_meta(f->u, a.id, &meta, &len, &e), STORE_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(meta, "meta2", 5);
    free(meta);
    /* The old MODSEQ is now stale. */
    assert_int_equal(store_item_replace(f->u, a.id, &in, a.modseq, NULL, &e), STORE_ECONFLICT);
}

struct meta_rows {
    uint32_t uid[8];
    char meta[8][8];
    size_t n, stop_after;
};

static int meta_row(int64_t id, uint32_t uid, const void *meta, size_t len, void *ctx)
{
    struct meta_rows *r = ctx;

    (void)id;
    assert_true(r->n < 8);
    r->uid[r->n] = uid;
    snprintf(r->meta[r->n], sizeof(r->meta[0]), "%.*s", (int)len, meta ? (const char *)meta : "");
    r->n++;
    return r->stop_after && r->n == r->stop_after;
}

/* store_item_meta_range: the folder's items in the UID range, in UID order, with their blobs
 * (none for an item without one); other folders' items never; the callback can stop it. */
static void test_meta_range(void **state)
{
    struct fx *f = *state;
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX), sent = folder_id(f->u, STORE_ROLE_SENT);
    struct store_err e = {0};
    struct meta_rows r = {0};
    uint32_t uids[5];

    for (int i = 0; i < 5; i++) {
        char meta[4];
        snprintf(meta, sizeof(meta), "m%d", i);
        struct store_item_new in = {.body = "x",
                                    .body_len = 1,
                                    .ctype = "message/rfc822",
                                    .meta = i == 2 ? NULL : meta,
                                    .meta_len = i == 2 ? 0 : 2};
        struct store_item it;
        assert_int_equal(store_item_add(f->u, inbox, &in, &it, &e), STORE_OK);
        uids[i] = it.uid;
        add_item(f->u, sent, "other folder");
    }
    assert_int_equal(store_item_meta_range(f->u, inbox, uids[1], uids[3], meta_row, &r, &e),
                     STORE_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.uid[0], uids[1]);
    assert_string_equal(r.meta[0], "m1");
    assert_int_equal(r.uid[1], uids[2]);
    assert_string_equal(r.meta[1], ""); /* no blob */
    assert_int_equal(r.uid[2], uids[3]);
    assert_string_equal(r.meta[2], "m3");

    memset(&r, 0, sizeof(r));
    r.stop_after = 2;
    assert_int_equal(store_item_meta_range(f->u, inbox, 0, UINT32_MAX, meta_row, &r, &e), STORE_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.meta[1], "m1");

    memset(&r, 0, sizeof(r));
    assert_int_equal(store_item_meta_range(f->u, inbox, uids[3], uids[1], meta_row, &r, &e),
                     STORE_OK); /* an empty range */
    assert_int_equal(r.n, 0);
    assert_int_equal(store_item_meta_range(f->u, inbox, 0, 1, NULL, &r, &e), STORE_EINVAL);
}

static int count_blobs(const char *dir)
{
    char path[256];
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "%s/users/example.com/alice/blobs", dir);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void test_blobs(void **state)
{
    struct fx *f = *state;
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX), trash = folder_id(f->u, STORE_ROLE_TRASH);
    size_t big = 200 * 1024;
    char *data = malloc(big), *body;
    struct store_item a, c;
    struct store_err e = {0};
    int64_t used, quota;
    size_t len;

    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    assert_int_equal(count_blobs(f->dir), 0);
    assert_int_equal(store_item_add(f->u, inbox,
                                    &(struct store_item_new){.body = data, .body_len = big}, &a,
                                    &e),
                     STORE_OK);
    assert_int_equal(count_blobs(f->dir), 1);
    assert_int_equal(store_item_body(f->u, a.id, &body, &len, &e), STORE_OK);
    assert_int_equal(len, big);
    assert_memory_equal(body, data, big);
    free(body);

    /* A copy shares the file; the file goes with the last reference. */
    assert_int_equal(store_item_copy(f->u, a.id, trash, &c, &e), STORE_OK);
    assert_int_equal(count_blobs(f->dir), 1);
    assert_int_equal(store_user_usage(f->u, &used, &quota), STORE_OK);
    assert_int_equal(used, 2 * (int64_t)big);
    assert_int_equal(quota, STORE_QUOTA_DEFAULT);
    assert_int_equal(store_item_delete(f->u, a.id, &e), STORE_OK);
    assert_int_equal(count_blobs(f->dir), 1);
    assert_int_equal(store_item_body(f->u, c.id, &body, &len, &e), STORE_OK);
    assert_memory_equal(body, data, big);
    free(body);
    assert_int_equal(store_item_delete(f->u, c.id, &e), STORE_OK);
    assert_int_equal(count_blobs(f->dir), 0);
    assert_int_equal(store_user_usage(f->u, &used, NULL), STORE_OK);
    assert_int_equal(used, 0);

    /* A blob written by a rolled-back transaction does not stay behind. */
    assert_int_equal(store_txn_begin(f->u, &e), STORE_OK);
    assert_int_equal(store_item_add(f->u, inbox,
                                    &(struct store_item_new){.body = data, .body_len = big}, &a,
                                    &e),
                     STORE_OK);
    store_txn_rollback(f->u);
    assert_int_equal(count_blobs(f->dir), 0);

    /* Replacing a big body with a small one drops the blob. */
    assert_int_equal(store_item_add(f->u, inbox,
                                    &(struct store_item_new){.body = data, .body_len = big}, &a,
                                    &e),
                     STORE_OK);
    assert_int_equal(store_item_replace(f->u, a.id,
                                        &(struct store_item_new){.body = "small", .body_len = 5}, 0,
                                        NULL, &e),
                     STORE_OK);
    assert_int_equal(count_blobs(f->dir), 0);
    free(data);
}

static void test_quota(void **state)
{
    struct fx *f = *state;
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX);
    size_t over = (size_t)STORE_QUOTA_MIN + 1;
    char *data = calloc(1, over);
    struct store_err e = {0};
    int64_t used, before = store_user_modseq(f->u);

    assert_non_null(data);
    assert_int_equal(store_account_set_quota(f->s, ALICE, STORE_QUOTA_MIN, &e), STORE_OK);
    add_item(f->u, inbox, "fits");
    assert_int_equal(store_item_add(f->u, inbox,
                                    &(struct store_item_new){.body = data, .body_len = over - 4},
                                    NULL, &e),
                     STORE_EQUOTA);
    assert_non_null(strstr(e.msg, "quota"));
    assert_int_equal(store_user_usage(f->u, &used, NULL), STORE_OK);
    assert_int_equal(used, 4);
    assert_int_equal(store_user_modseq(f->u), before + 1);
    assert_int_equal(count_blobs(f->dir), 0);
    free(data);
}

/* ------------------------------------------------------------------------------------- */

struct fchanges {
    int n, removed;
    int64_t last_id;
};

static int collect_fchange(const struct store_folder *fo, int removed, void *ctx)
{
    struct fchanges *c = ctx;

    c->n++;
    c->removed += removed;
    c->last_id = fo->id;
    return 0;
}

static void test_folders(void **state)
{
    struct fx *f = *state;
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX), work, sub, m0;
    struct fchanges fc = {0};
    struct store_folder fo;
    struct store_err e = {0};
    uint32_t uv;
    char longname[300];

    add_item(f->u, inbox, "content changes are not folder changes");
    m0 = store_user_modseq(f->u);
    assert_int_equal(m0, 1);

    assert_int_equal(
        store_folder_create(f->u, 0, "Projects", STORE_CLASS_MAIL, STORE_ROLE_NONE, &work, &e),
        STORE_OK);
    assert_int_equal(
        store_folder_create(f->u, work, "2023", STORE_CLASS_MAIL, STORE_ROLE_NONE, &sub, &e),
        STORE_OK);
    assert_int_equal(
        store_folder_create(f->u, 0, "Projects", STORE_CLASS_MAIL, STORE_ROLE_NONE, NULL, &e),
        STORE_EEXIST);
    assert_int_equal(
        store_folder_create(f->u, 0, "Inbox2", STORE_CLASS_MAIL, STORE_ROLE_INBOX, NULL, &e),
        STORE_EEXIST);
    assert_int_equal(
        store_folder_create(f->u, 5555, "x", STORE_CLASS_MAIL, STORE_ROLE_NONE, NULL, &e),
        STORE_ENOTFOUND);
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(
        store_folder_create(f->u, 0, longname, STORE_CLASS_MAIL, STORE_ROLE_NONE, NULL, &e),
        STORE_EINVAL);
    assert_int_equal(store_folder_create(f->u, 0, "", STORE_CLASS_MAIL, STORE_ROLE_NONE, NULL, &e),
                     STORE_EINVAL);
    assert_int_equal(store_folder_find(f->u, work, "2023", &fo), STORE_OK);
    assert_int_equal(fo.id, sub);
    assert_int_equal(fo.parent_id, work);
    uv = fo.uidvalidity;
    add_item(f->u, sub, "in the subfolder");

    assert_int_equal(store_folder_changes_since(f->u, m0, collect_fchange, &fc, &e), STORE_OK);
    assert_int_equal(fc.n, 2);
    assert_int_equal(fc.removed, 0);

    /* Rename: shows up as a change; moving a folder under itself is refused. */
    int64_t m1 = store_user_modseq(f->u);
    assert_int_equal(store_folder_rename(f->u, work, -1, "Work", &e), STORE_OK);
    assert_int_equal(store_folder_rename(f->u, work, sub, NULL, &e), STORE_EINVAL);
    assert_int_equal(store_folder_rename(f->u, work, work, NULL, &e), STORE_EINVAL);
    assert_int_equal(store_folder_get(f->u, work, &fo, &e), STORE_OK);
    assert_string_equal(fo.name, "Work");
    fc = (struct fchanges){0};
    assert_int_equal(store_folder_changes_since(f->u, m1, collect_fchange, &fc, &e), STORE_OK);
    assert_int_equal(fc.n, 1);
    assert_int_equal(fc.last_id, work);

    assert_int_equal(store_folder_set_props(f->u, sub, "{\"color\":\"#ff0000\"}", &e), STORE_OK);
    assert_int_equal(store_folder_set_subscribed(f->u, sub, 0, &e), STORE_OK);
    assert_int_equal(store_folder_get(f->u, sub, &fo, &e), STORE_OK);
    assert_string_equal(fo.props, "{\"color\":\"#ff0000\"}");
    assert_int_equal(fo.subscribed, 0);
    assert_int_equal(fo.count, 1);

    /* Delete: both folders leave tombstones; roles refuse. */
    int64_t m2 = store_user_modseq(f->u);
    assert_int_equal(store_folder_delete(f->u, inbox, &e), STORE_EINVAL);
    assert_int_equal(store_folder_delete(f->u, work, &e), STORE_OK);
    assert_int_equal(store_folder_get(f->u, sub, &fo, &e), STORE_ENOTFOUND);
    fc = (struct fchanges){0};
    assert_int_equal(store_folder_changes_since(f->u, m2, collect_fchange, &fc, &e), STORE_OK);
    assert_int_equal(fc.n, 2);
    assert_int_equal(fc.removed, 2);
    fc = (struct fchanges){0};
    assert_int_equal(store_folder_changes_since(f->u, 0, collect_fchange, &fc, &e), STORE_OK);
    assert_int_equal(fc.n, 10);
    assert_int_equal(fc.removed, 0);

    /* Re-created under the same name: a new UIDVALIDITY. */
    assert_int_equal(
        store_folder_create(f->u, 0, "Work", STORE_CLASS_MAIL, STORE_ROLE_NONE, &work, &e),
        STORE_OK);
    assert_int_equal(
        store_folder_create(f->u, work, "2023", STORE_CLASS_MAIL, STORE_ROLE_NONE, &sub, &e),
        STORE_OK);
    assert_int_equal(store_folder_get(f->u, sub, &fo, &e), STORE_OK);
    assert_true(fo.uidvalidity > uv);
    assert_int_equal(fo.uidnext, 1);
    int64_t used;
    assert_int_equal(store_user_usage(f->u, &used, NULL), STORE_OK);
    assert_int_equal(used, strlen("content changes are not folder changes")); /* not the sub's */
}

/* ------------------------------------------------------------------------------------- */

static int count_state(const char *key, const void *val, size_t len, void *ctx)
{
    (void)key;
    (void)val;
    (void)len;
    (*(int *)ctx)++;
    return 0;
}

/* The occurrence index: overlap queries (zero-length ranges, incomplete indexes), move,
 * copy, delete and folder delete keep it in step, and it takes no MODSEQ. */
struct range_hits {
    int64_t ids[16], until[16];
    size_t n;
};

static int collect_range_hit(const struct store_item *it, void *ctx)
{
    struct range_hits *h = ctx;

    if (h->n < 16) {
        h->until[h->n] = it->index_until;
        h->ids[h->n++] = it->id;
    }
    return 0;
}

static size_t range_query(struct store_user *u, int64_t folder, int64_t s, int64_t e,
                          struct range_hits *h)
{
    struct store_err err = {0};

    h->n = 0;
    assert_int_equal(store_item_range_query(u, folder, s, e, collect_range_hit, h, &err), STORE_OK);
    return h->n;
}

static void test_ranges(void **state)
{
    struct fx *f = *state;
    int64_t cal = folder_id(f->u, STORE_ROLE_CALENDAR), other = 0;
    struct store_item a = add_item(f->u, cal, "a"), b = add_item(f->u, cal, "b");
    struct store_item c = add_item(f->u, cal, "c"), cp;
    /* a: two weekly instances far from 2^24 seconds, to catch float rounding */
    struct store_range ra[] = {{1700000000, 1700003600}, {1700604800, 1700608400}};
    struct store_range rb[] = {{1700001800, 1700001800}}; /* zero length */
    struct store_range *got = NULL;
    struct range_hits h;
    struct store_err e = {0};
    int64_t until = 0, modseq;
    size_t n = 0;

    modseq = store_user_modseq(f->u);
    assert_int_equal(store_item_set_ranges(f->u, a.id, ra, 2, INT64_MAX, &e), STORE_OK);
    assert_int_equal(store_item_set_ranges(f->u, b.id, rb, 1, INT64_MAX, &e), STORE_OK);
    /* c: indexed up to 1700100000 only (an open-ended rule) */
    assert_int_equal(store_item_set_ranges(f->u, c.id, NULL, 0, 1700100000, &e), STORE_OK);
    assert_int_equal(store_user_modseq(f->u), modseq); /* derived data: no MODSEQ */

    assert_int_equal(range_query(f->u, cal, 1700003600, 1700003601, &h), 0); /* ends at start */
    assert_int_equal(range_query(f->u, cal, 1700003599, 1700003600, &h), 1);
    assert_int_equal(h.ids[0], a.id);
    assert_int_equal(range_query(f->u, cal, 1699990000, 1700000000, &h), 0); /* begins at end */
    assert_int_equal(range_query(f->u, cal, 1700001800, 1700001801, &h), 2); /* a and b's instant */
    assert_int_equal(h.ids[0], a.id);
    assert_int_equal(h.ids[1], b.id);
    assert_int_equal(range_query(f->u, cal, 1700001801, 1700001900, &h), 1); /* b is past */
    assert_int_equal(range_query(f->u, cal, 1700200000, 1700700000, &h), 2); /* a, and c open */
    assert_int_equal(h.ids[0], a.id);
    assert_int_equal(h.ids[1], c.id);
    /* each comes with how far its index is complete */
    assert_true(h.until[0] == INT64_MAX);
    assert_true(h.until[1] == 1700100000);
    assert_int_equal(range_query(f->u, folder_id(f->u, STORE_ROLE_INBOX), 0, INT64_MAX / 2, &h), 0);

    assert_int_equal(store_item_get_ranges(f->u, a.id, &got, &n, &until, &e), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(got[1].start, 1700604800);
    assert_int_equal(got[1].end, 1700608400);
    assert_true(until == INT64_MAX);
    free(got);
    /* replaced, not added to */
    assert_int_equal(store_item_set_ranges(f->u, a.id, ra, 1, INT64_MAX, &e), STORE_OK);
    assert_int_equal(range_query(f->u, cal, 1700600000, 1700700000, &h), 1); /* c only */
    /* a range that ends before it starts is refused */
    struct store_range bad = {10, 5};
    assert_int_equal(store_item_set_ranges(f->u, a.id, &bad, 1, INT64_MAX, &e), STORE_EINVAL);

    /* move carries the ranges; copy duplicates them */
    assert_int_equal(
        store_folder_create(f->u, 0, "Work", STORE_CLASS_CALENDAR, STORE_ROLE_NONE, &other, &e),
        STORE_OK);
    assert_int_equal(store_item_move(f->u, a.id, other, NULL, &e), STORE_OK);
    assert_int_equal(range_query(f->u, cal, 1700000000, 1700000001, &h), 0);
    assert_int_equal(range_query(f->u, other, 1700000000, 1700000001, &h), 1);
    assert_int_equal(store_item_copy(f->u, b.id, other, &cp, &e), STORE_OK);
    assert_int_equal(range_query(f->u, other, 1700001800, 1700001801, &h), 2);
    assert_int_equal(range_query(f->u, cal, 1700001800, 1700001801, &h), 1);
    /* delete and folder delete drop them */
    assert_int_equal(store_item_delete(f->u, b.id, &e), STORE_OK);
    assert_int_equal(range_query(f->u, cal, 0, INT64_MAX / 2, &h), 1); /* c only */
    assert_int_equal(store_item_get_ranges(f->u, b.id, &got, &n, &until, &e), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_folder_delete(f->u, other, &e), STORE_OK);
    assert_int_equal(range_query(f->u, other, 0, INT64_MAX / 2, &h), 0);
    assert_int_equal(store_item_get_ranges(f->u, cp.id, &got, &n, &until, &e), STORE_OK);
    assert_int_equal(n, 0);
    char ok[64];
    assert_int_equal(store_user_check(f->u, ok, sizeof(ok)), STORE_OK);
    assert_string_equal(ok, "ok");
}

static void test_state(void **state)
{
    struct fx *f = *state;
    struct store_err e = {0};
    int64_t m = store_user_modseq(f->u);
    void *v;
    size_t len;
    int n = 0;

    assert_int_equal(store_state_put(f->u, "eas", "dev1/inbox", "key-1", 5, &e), STORE_OK);
    assert_int_equal(store_state_put(f->u, "eas", "dev1/inbox", "key-22", 6, &e), STORE_OK);
    assert_int_equal(store_state_put(f->u, "eas", "dev2/inbox", "x", 1, &e), STORE_OK);
    assert_int_equal(store_state_put(f->u, "dav", "token", "t", 1, &e), STORE_OK);
    assert_int_equal(store_state_get(f->u, "eas", "dev1/inbox", &v, &len, &e), STORE_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(v, "key-22", 6);
    free(v);
    assert_int_equal(store_state_list(f->u, "eas", count_state, &n, &e), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_state_del(f->u, "eas", "dev1/inbox", &e), STORE_OK);
    assert_int_equal(store_state_del(f->u, "eas", "dev1/inbox", &e), STORE_ENOTFOUND);
    assert_int_equal(store_state_get(f->u, "eas", "dev1/inbox", &v, &len, &e), STORE_ENOTFOUND);
    assert_int_equal(store_state_get(f->u, "", "k", &v, &len, &e), STORE_EINVAL);
    assert_int_equal(store_user_modseq(f->u), m); /* bookkeeping takes no MODSEQ */
}

/* ------------------------------------------------------------------------------------- */

#define PER_WRITER 200

static void writer_child(const char *dir)
{
    struct store_config cfg = {.data_dir = dir};
    struct store_user *u;
    struct store_folder fo;
    struct store *s;
    char body[64];

    if (store_open(&s, &cfg, NULL) != STORE_OK || store_user_open(s, ALICE, &u, NULL) != STORE_OK ||
        store_folder_by_role(u, STORE_ROLE_INBOX, &fo) != STORE_OK)
        _exit(2);
    for (int i = 0; i < PER_WRITER; i++) {
        struct store_item_new in = {.body = body};
        struct store_err e;

        in.body_len = (size_t)snprintf(body, sizeof(body), "from %d item %d", (int)getpid(), i);
        if (store_item_add(u, fo.id, &in, NULL, &e) != STORE_OK) {
            fprintf(stderr, "child %d: %s\n", (int)getpid(), e.msg);
            _exit(1);
        }
    }
    store_user_release(u);
    store_close(s);
    _exit(0);
}

struct seen_items {
    int n;
    int64_t modseq[1024];
    uint32_t uid[1024];
};

static int collect_item(const struct store_item *it, void *ctx)
{
    struct seen_items *si = ctx;

    if (si->n < 1024) {
        si->modseq[si->n] = it->modseq;
        si->uid[si->n] = it->uid;
    }
    si->n++;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void assert_distinct_modseqs(struct seen_items *si)
{
    qsort(si->modseq, (size_t)si->n, sizeof(int64_t), cmp_i64);
    for (int i = 1; i < si->n; i++)
        assert_true(si->modseq[i] > si->modseq[i - 1]);
    for (int i = 1; i < si->n; i++)
        assert_true(si->uid[i] > si->uid[i - 1]); /* listed in UID order */
}

static void test_two_processes(void **state)
{
    struct fx *f = *state;
    struct seen_items *si = calloc(1, sizeof(*si));
    struct store_err e = {0};
    pid_t pids[2];
    char check[256];

    assert_non_null(si);
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            writer_child(f->dir);
    }
    for (int i = 0; i < 2; i++) {
        int st;

        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(store_item_list(f->u, folder_id(f->u, STORE_ROLE_INBOX), 0, UINT32_MAX,
                                     collect_item, si, &e),
                     STORE_OK);
    assert_int_equal(si->n, 2 * PER_WRITER);
    assert_distinct_modseqs(si);
    assert_int_equal(store_user_modseq(f->u), 2 * PER_WRITER);
    assert_int_equal(store_user_check(f->u, check, sizeof(check)), STORE_OK);
    assert_string_equal(check, "ok");
    free(si);
}

struct thread_arg {
    struct store_user *u;
    int64_t folder;
    int txn;
    int failures;
};

static void *writer_thread(void *p)
{
    struct thread_arg *a = p;

    for (int i = 0; i < 100; i++) {
        struct store_item_new in = {.body = "threaded", .body_len = 8};
        struct store_err e;

        if (a->txn && i % 10 == 0 && store_txn_begin(a->u, &e) != STORE_OK)
            a->failures++;
        if (store_item_add(a->u, a->folder, &in, NULL, &e) != STORE_OK)
            a->failures++;
        if (a->txn && i % 10 == 9 && store_txn_commit(a->u, NULL, &e) != STORE_OK)
            a->failures++;
    }
    return NULL;
}

static void test_two_threads(void **state)
{
    struct fx *f = *state;
    struct seen_items *si = calloc(1, sizeof(*si));
    struct thread_arg args[2];
    pthread_t th[2];
    struct store_err e = {0};
    int64_t notes = folder_id(f->u, STORE_ROLE_NOTES);

    assert_non_null(si);
    for (int i = 0; i < 2; i++) {
        args[i] = (struct thread_arg){.u = f->u, .folder = notes, .txn = i};
        assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &args[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(store_item_list(f->u, notes, 0, UINT32_MAX, collect_item, si, &e), STORE_OK);
    assert_int_equal(si->n, 200);
    /* Thread 1 commits 10 items per MODSEQ: 100 + 10 distinct values in all. */
    qsort(si->modseq, (size_t)si->n, sizeof(int64_t), cmp_i64);
    int distinct = 1;
    for (int i = 1; i < si->n; i++)
        distinct += si->modseq[i] != si->modseq[i - 1];
    assert_int_equal(distinct, 110);
    assert_int_equal(store_user_modseq(f->u), 110);
    free(si);
}

/* ------------------------------------------------------------------------------------- */

struct notified {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    int64_t modseq;
    char address[320];
};

static void on_commit(const char *address, int64_t modseq, void *ctx)
{
    struct notified *n = ctx;

    pthread_mutex_lock(&n->lock);
    n->calls++;
    n->modseq = modseq;
    snprintf(n->address, sizeof(n->address), "%s", address);
    pthread_cond_signal(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

static void *add_one(void *p)
{
    struct thread_arg *a = p;
    struct store_item it;
    struct store_item_new in = {.body = "ping", .body_len = 4};

    if (store_item_add(a->u, a->folder, &in, &it, NULL) != STORE_OK)
        a->failures++;
    return NULL;
}

static void test_notify(void **state)
{
    struct fx *f = *state;
    struct notified n = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    struct thread_arg a = {.u = f->u, .folder = folder_id(f->u, STORE_ROLE_INBOX)};
    struct store_sub *sub, *all;
    struct timespec deadline;
    struct store_err e = {0};
    pthread_t th;

    sub = store_subscribe(f->s, "Alice@example.com", on_commit, &n);
    assert_non_null(sub);
    all = store_subscribe(f->s, NULL, on_commit, &n);
    assert_non_null(all);
    assert_int_equal(store_subscriber_count(f->s, ALICE), 1);
    assert_int_equal(store_subscriber_count(f->s, "bob@example.com"), 0);
    assert_int_equal(store_subscriber_count(f->s, NULL), 2);
    store_unsubscribe(f->s, all);

    assert_int_equal(pthread_create(&th, NULL, add_one, &a), 0);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&n.lock);
    while (n.calls == 0)
        if (pthread_cond_timedwait(&n.cond, &n.lock, &deadline) != 0)
            break;
    pthread_mutex_unlock(&n.lock);
    pthread_join(th, NULL);
    assert_int_equal(a.failures, 0);
    assert_int_equal(n.calls, 1);
    assert_int_equal(n.modseq, store_user_modseq(f->u));
    assert_string_equal(n.address, ALICE);

    /* No change, no wake-up; state writes do not wake either. */
    assert_int_equal(store_state_put(f->u, "x", "y", "z", 1, &e), STORE_OK);
    assert_int_equal(n.calls, 1);

    store_unsubscribe(f->s, sub);
    assert_int_equal(store_subscriber_count(f->s, ALICE), 0);
    add_one(&a);
    assert_int_equal(n.calls, 1);
}

/* A type or state change wakes the mailbox's subscribers (so a waiting Ping re-checks the
 * gate) with MODSEQ 0, without a commit; quota and password changes do not. */
static void test_notify_account_change(void **state)
{
    struct fx *f = *state;
    struct notified n = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    int64_t before = store_user_modseq(f->u);
    struct store_sub *sub = store_subscribe(f->s, ALICE, on_commit, &n);
    struct store_err e = {0};

    assert_non_null(sub);
    assert_int_equal(store_account_set_type(f->s, "Alice@Example.com", STORE_BASIC, &e), STORE_OK);
    assert_int_equal(n.calls, 1); /* called on this thread, before the setter returned */
    assert_int_equal(n.modseq, 0);
    assert_string_equal(n.address, ALICE);
    assert_int_equal(store_account_set_active(f->s, ALICE, 0, &e), STORE_OK);
    assert_int_equal(n.calls, 2);
    assert_int_equal(store_account_set_quota(f->s, ALICE, 2000000000, &e), STORE_OK);
    assert_int_equal(store_account_set_password(f->s, ALICE, "An0ther-pass", &e), STORE_OK);
    assert_int_equal(n.calls, 2);
    /* a refused change wakes nobody */
    assert_int_not_equal(store_account_set_type(f->s, "nobody@example.com", STORE_BASIC, &e),
                         STORE_OK);
    assert_int_equal(n.calls, 2);
    assert_int_equal(store_user_modseq(f->u), before);
    store_unsubscribe(f->s, sub);
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    struct store_err e = {0};
    char big[600];
    struct store_item_new in = {.body = "x", .body_len = 1};
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX);

    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    in.keywords = big;
    assert_int_equal(store_item_add(f->u, inbox, &in, NULL, &e), STORE_EINVAL);
    in.keywords = NULL;
    in.name = big;
    assert_int_equal(store_item_add(f->u, inbox, &in, NULL, &e), STORE_EINVAL);
    in.name = "bad\nname";
    assert_int_equal(store_item_add(f->u, inbox, &in, NULL, &e), STORE_EINVAL);
    in.name = NULL;
    in.body = NULL;
    assert_int_equal(store_item_add(f->u, inbox, &in, NULL, &e), STORE_EINVAL);
    assert_int_equal(store_item_add(f->u, inbox, NULL, NULL, &e), STORE_EINVAL);
    assert_int_equal(store_item_add(NULL, inbox, &in, NULL, &e), STORE_EINVAL);
    assert_int_equal(store_item_get(f->u, -1, NULL, &e), STORE_ENOTFOUND);
    assert_int_equal(store_folder_set_props(f->u, inbox, NULL, &e), STORE_EINVAL);
    assert_int_equal(store_domain_add(f->s, big, NULL, &e), STORE_EINVAL);
    assert_int_equal(store_account_add(f->s, big, STORE_BASIC, 0, PASSWORD, NULL, NULL, &e),
                     STORE_EINVAL);
    assert_int_equal(store_alias_add(f->s, big, ALICE, &e), STORE_EINVAL);
    assert_int_equal(store_txn_commit(f->u, NULL, &e), STORE_EINVAL);
    store_txn_rollback(f->u); /* harmless without a transaction */
    struct store *other = NULL;
    assert_int_equal(
        store_open(&other, &(struct store_config){.data_dir = f->dir, .backend = "nosuch"}, &e),
        STORE_EINVAL);
    assert_null(other);
}

struct reenter {
    struct store_user *u;
    int seen, failures;
};

/* Callbacks may call back into the same handle: reads, and writes too. */
static int reenter_cb(const struct store_item *it, void *ctx)
{
    struct reenter *r = ctx;
    struct store_err e;
    char *body;
    size_t len;

    r->seen++;
    if (store_item_body(r->u, it->id, &body, &len, &e) != STORE_OK)
        r->failures++;
    else
        free(body);
    if (store_item_set_flags(r->u, it->id, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, NULL, &e) !=
        STORE_OK) {
        print_message("write in callback: %s\n", e.msg);
        r->failures++;
    }
    return 0;
}

/* The same query again from inside its own callback: the statement cache must give the
 * inner call a statement of its own, not the outer one mid-step. */
static int count_change_cb(const struct store_item *it, int removed, void *ctx)
{
    (void)it;
    (void)removed;
    (*(int *)ctx)++;
    return 0;
}

static int nested_changes_cb(const struct store_item *it, int removed, void *ctx)
{
    struct reenter *r = ctx;
    struct store_err e;
    int inner = 0;

    (void)removed;
    r->seen++;
    if (store_changes_since(r->u, it->folder_id, 0, count_change_cb, &inner, &e) != STORE_OK ||
        inner != 2)
        r->failures++;
    return 0;
}

static void test_reentrant(void **state)
{
    struct fx *f = *state;
    int64_t inbox = folder_id(f->u, STORE_ROLE_INBOX);
    struct reenter r = {.u = f->u};
    struct store_folder fo;
    struct store_err e = {0};

    add_item(f->u, inbox, "one");
    add_item(f->u, inbox, "two");
    assert_int_equal(store_item_list(f->u, inbox, 0, UINT32_MAX, reenter_cb, &r, &e), STORE_OK);
    assert_int_equal(r.seen, 2);
    assert_int_equal(r.failures, 0);
    assert_int_equal(store_folder_get(f->u, inbox, &fo, &e), STORE_OK);
    assert_int_equal(fo.unseen, 0);

    /* The same inside an explicit transaction. */
    r = (struct reenter){.u = f->u};
    assert_int_equal(store_txn_begin(f->u, &e), STORE_OK);
    assert_int_equal(store_item_list(f->u, inbox, 0, UINT32_MAX, reenter_cb, &r, &e), STORE_OK);
    assert_int_equal(store_txn_commit(f->u, NULL, &e), STORE_OK);
    assert_int_equal(r.failures, 0);

    r = (struct reenter){.u = f->u};
    assert_int_equal(store_changes_since(f->u, inbox, 0, nested_changes_cb, &r, &e), STORE_OK);
    assert_int_equal(r.seen, 2);
    assert_int_equal(r.failures, 0);
    /* and the cached statement still works afterwards */
    r = (struct reenter){.u = f->u};
    assert_int_equal(store_changes_since(f->u, inbox, 0, nested_changes_cb, &r, &e), STORE_OK);
    assert_int_equal(r.seen, 2);
    assert_int_equal(r.failures, 0);
}

static void test_check(void **state)
{
    struct fx *f = *state;
    char out[256];

    add_item(f->u, folder_id(f->u, STORE_ROLE_INBOX), "x");
    assert_int_equal(store_user_check(f->u, out, sizeof(out)), STORE_OK);
    assert_string_equal(out, "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_force_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_collision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modseq_across_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_shares_modseq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_account_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reentrant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
