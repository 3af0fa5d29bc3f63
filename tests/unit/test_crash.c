/*
 * test_crash.c — "nothing acknowledged is lost": a child process writes to one user's store
 * in a loop (adds of varied sizes, some large enough to be blobs, flag changes, deletes)
 * and reports each committed operation on a pipe; the parent SIGKILLs it at a random
 * moment, many times over. Afterwards the store must pass its integrity check, every add
 * reported (and not reported deleted) must be there with identical bytes, and every
 * reported delete must have stuck.
 */
#include <dirent.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
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

#define ROUNDS     100
#define INLINE_MAX 4096
#define MAX_OPS    (ROUNDS * 2000)
#define ALICE      "alice@example.com"

/* A delete is announced before it is made: the child may die after its commit but before
 * its report, and the parent must then accept the item either present or gone. */
enum { OP_ADD = 1, OP_DELETE = 2, OP_FLAGS = 3, OP_DELETING = 4, OP_READY = 5 };

/* One committed operation, as the child reports it (16 bytes: atomic on a pipe). */
struct rec {
    int32_t op;
    int32_t seq;
    int64_t id;
};

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The body of add number seq: its size (small, or past INLINE_MAX so a blob) and bytes
 * follow from seq alone, so the parent can rebuild it. Caller frees. */
static char *make_body(int32_t seq, size_t *len)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t)seq * 0x100000001b3ULL;
    size_t n;
    char *b;

    xorshift(&x);
    n = seq % 4 == 0 ? INLINE_MAX + 1 + xorshift(&x) % 40000 : 20 + xorshift(&x) % 3000;
    b = malloc(n);
    if (b == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(xorshift(&x) & 0xff);
    *len = n;
    return b;
}

static void report(int fd, int32_t op, int32_t seq, int64_t id)
{
    struct rec r = {op, seq, id};

    if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
        _exit(3);
}

static void child(const char *dir, int round, int fd)
{
    struct store_config cfg = {.data_dir = dir, .inline_max = INLINE_MAX};
    int64_t live[4096];
    int nlive = 0;
    struct store_folder inbox;
    struct store_user *u;
    struct store *s;
    uint64_t rnd = (uint64_t)getpid() * 2654435761u + (uint64_t)round;

    if (store_open(&s, &cfg, NULL) != STORE_OK || store_user_open(s, ALICE, &u, NULL) != STORE_OK ||
        store_folder_by_role(u, STORE_ROLE_INBOX, &inbox) != STORE_OK)
        _exit(2);
    report(fd, OP_READY, 0, 0); /* so the kill lands while writing, not while opening */
    for (int32_t i = 0;; i++) {
        unsigned r = (unsigned)(xorshift(&rnd) % 10);
        struct store_err e;

        if (r < 6 || nlive == 0) {
            int32_t seq = round * 100000 + i;
            struct store_item it;
            size_t len;
            char *body = make_body(seq, &len);
            struct store_item_new in = {.body = body, .body_len = len, .ctype = "message/rfc822"};

            if (body == NULL || store_item_add(u, inbox.id, &in, &it, &e) != STORE_OK)
                _exit(4);
            free(body);
            report(fd, OP_ADD, seq, it.id);
            if (nlive < 4096)
                live[nlive++] = it.id;
        } else if (r < 8) {
            int64_t id = live[xorshift(&rnd) % (uint64_t)nlive];

            if (store_item_set_flags(u, id, STORE_FLAGS_SET, (uint32_t)(xorshift(&rnd) & 0x1f),
                                     NULL, 0, NULL, &e) != STORE_OK)
                _exit(5);
            report(fd, OP_FLAGS, 0, id);
        } else {
            int k = (int)(xorshift(&rnd) % (uint64_t)nlive);
            int64_t id = live[k];

            report(fd, OP_DELETING, 0, id);
            if (store_item_delete(u, id, &e) != STORE_OK)
                _exit(6);
            report(fd, OP_DELETE, 0, id);
            live[k] = live[--nlive];
        }
    }
}

struct expect {
    int64_t id;
    int32_t seq;
    int deleted; /* 1: maybe (announced), 2: for sure (committed) */
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int count_tmp(const char *dir)
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
        n += strncmp(de->d_name, ".tmp-", 5) == 0;
    closedir(d);
    return n;
}

static void test_kill9(void **state)
{
    struct store_config cfg = {.data_dir = NULL, .inline_max = INLINE_MAX};
    struct expect *ex = calloc(MAX_OPS, sizeof(*ex));
    char dir[] = "/tmp/polaris-crash-XXXXXX", check[256];
    int nex = 0, adds = 0, deletes = 0, flags = 0, killed_busy = 0;
    struct store_err e = {0};
    struct store_user *u;
    struct store *s;

    (void)state;
    assert_non_null(ex);
    assert_non_null(mkdtemp(dir));
    cfg.data_dir = dir;
    assert_int_equal(store_open(&s, &cfg, &e), STORE_OK);
    assert_int_equal(store_domain_add(s, "example.com", NULL, &e), STORE_OK);
    assert_int_equal(
        store_account_add(s, ALICE, STORE_ENHANCED, 0, "Corr3ct-horse", NULL, NULL, &e), STORE_OK);
    store_close(s);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    for (int round = 0; round < ROUNDS; round++) {
        int fds[2], st;
        struct rec r;
        pid_t pid;

        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(dir, round, fds[1]);
            _exit(0);
        }
        close(fds[1]);
        if (read(fds[0], &r, sizeof(r)) != (ssize_t)sizeof(r) || r.op != OP_READY)
            fail_msg("round %d: child did not start", round);
        usleep((useconds_t)(1000 + rand() % 49000));
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        /* Killed is the expected end; any other exit is the child failing an operation. */
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
            fail_msg("round %d: child exited with status %d", round,
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        killed_busy++;
        while (read(fds[0], &r, sizeof(r)) == (ssize_t)sizeof(r)) {
            if (r.op == OP_ADD) {
                assert_true(nex < MAX_OPS);
                ex[nex++] = (struct expect){r.id, r.seq, 0};
                adds++;
            } else if (r.op == OP_DELETE || r.op == OP_DELETING) {
                for (int i = 0; i < nex; i++)
                    if (ex[i].id == r.id)
                        ex[i].deleted = r.op == OP_DELETE ? 2 : 1;
                deletes += r.op == OP_DELETE;
            } else {
                flags++;
            }
        }
        close(fds[0]);
    }

    assert_int_equal(store_open(&s, &cfg, &e), STORE_OK);
    assert_int_equal(store_user_open(s, ALICE, &u, &e), STORE_OK);
    if (store_user_check(u, check, sizeof(check)) != STORE_OK)
        fail_msg("check after crashes: %s", check);
    assert_string_equal(check, "ok");
    assert_int_equal(count_tmp(dir), 0); /* half-written blobs of killed writers are swept */
    for (int i = 0; i < nex; i++) {
        struct store_item it;
        char *body, *want;
        size_t len, wlen;

        if (ex[i].deleted == 2) {
            assert_int_equal(store_item_get(u, ex[i].id, &it, &e), STORE_ENOTFOUND);
            continue;
        }
        if (ex[i].deleted == 1 && store_item_get(u, ex[i].id, &it, &e) == STORE_ENOTFOUND)
            continue; /* the child died between committing the delete and reporting it */
        if (store_item_body(u, ex[i].id, &body, &len, &e) != STORE_OK)
            fail_msg("acknowledged item %lld (seq %d) lost: %s", (long long)ex[i].id, ex[i].seq,
                     e.msg);
        want = make_body(ex[i].seq, &wlen);
        assert_non_null(want);
        assert_int_equal(len, wlen);
        assert_memory_equal(body, want, len);
        free(body);
        free(want);
    }
    print_message("%d rounds killed: %d adds, %d flag changes, %d deletes acknowledged\n",
                  killed_busy, adds, flags, deletes);
    assert_true(adds > 0);
    store_user_release(u);
    store_close(s);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(ex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
