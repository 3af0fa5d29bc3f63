/*
 * store_sqlite.c — the embedded SQLite backend of the store.
 *
 * One database for the directory (data_dir/directory.db) and one per user
 * (data_dir/users/<domain>/<localpart>/store.db), all in WAL mode with synchronous=FULL so
 * a commit that returned survives a crash or power loss. Bodies larger than inline_max
 * live beside the user's database in blobs/, named by their SHA-256: they are written,
 * fsynced and renamed into place inside the write transaction (so before the row that
 * references them commits), and unlinked after a commit removed their last reference.
 *
 * Every blob write and every blob unlink happens while this connection holds the
 * database's write lock (BEGIN IMMEDIATE), which serialises them against writers in other
 * processes: an unlink never races a writer that is about to reference the same file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "store/store_backend.h"

#define SQLITE_SCHEMA_VERSION 1

/* One SQLite connection and its statements. Compiling a statement costs about ten times
 * as much as running a simple one (11 us against 1 us for an item lookup here), and the
 * store runs the same few dozen statements all day; so each connection keeps the ones it
 * has compiled, keyed by their SQL text (string literals: the pointer, then the text), and
 * hands them out again once the previous user has reset them (sqlite_done). A statement
 * still in use (a callback running the same query again) gets a fresh, uncached one. */
#define SQLITE_STMT_SLOTS 64

struct sqlite_slot {
    const char *sql;
    sqlite3_stmt *st;
    int busy;
};

struct sqlite_conn {
    sqlite3 *db;
    struct sqlite_slot slot[SQLITE_STMT_SLOTS];
    size_t nslot;
};

struct store_bdir {
    struct sqlite_conn c;
};

/* A blob this transaction wrote or stopped referencing; examined after commit/rollback. */
struct sqlite_blob_ref {
    char hash[65];
    int deref; /* a reference went away (else: the file was written) */
    struct sqlite_blob_ref *next;
};

struct store_bu {
    struct sqlite_conn c;
    size_t inline_max;
    char dir[PATH_MAX];
    char blobdir[PATH_MAX];
    struct sqlite_blob_ref *touched;
};

/* ------------------------------------------------------------------------------------- */
/* Small helpers around the SQLite API                                                    */

static int sqlite_fail(sqlite3 *db, int rc, struct store_err *err)
{
    int code;

    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = STORE_EBUSY;
        break;
    case SQLITE_CONSTRAINT:
        code = STORE_EEXIST;
        break;
    case SQLITE_NOMEM:
        code = STORE_ENOMEM;
        break;
    default:
        code = STORE_EIO;
    }
    if (code == STORE_EBUSY)
        return store_errf(err, code, "store database stayed locked: %s",
                          db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return store_errf(err, code, "store database: %s",
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Binds arguments by a format: i = int64_t, t = const char * (NULL binds NULL),
 * b = const void *, size_t (NULL binds NULL). Values must outlive the statement's step. */
static int sqlite_bindv(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int rc = SQLITE_OK;

    for (int i = 1; fmt && fmt[i - 1] && rc == SQLITE_OK; i++) {
        switch (fmt[i - 1]) {
        case 'i':
            rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
            break;
        case 't': {
            const char *t = va_arg(ap, const char *);
            rc = t ? sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
            break;
        }
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            rc = p ? sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC) : sqlite3_bind_null(st, i);
            break;
        }
        default:
            rc = SQLITE_MISUSE;
        }
    }
    return rc;
}

/* A compiled statement for sql, from the connection's cache when it has an idle one. */
static int sqlite_stmt(struct sqlite_conn *c, const char *sql, sqlite3_stmt **st)
{
    struct sqlite_slot *free_slot = NULL;
    int rc;

    for (size_t i = 0; i < c->nslot; i++) {
        struct sqlite_slot *sl = &c->slot[i];
        if (sl->sql != sql || strcmp(sqlite3_sql(sl->st), sql) != 0)
            continue;
        if (sl->busy)
            break; /* in use further up the stack: an uncached one below */
        sl->busy = 1;
        *st = sl->st;
        return SQLITE_OK;
    }
    if (c->nslot < SQLITE_STMT_SLOTS)
        free_slot = &c->slot[c->nslot];
    rc = sqlite3_prepare_v3(c->db, sql, -1, free_slot ? SQLITE_PREPARE_PERSISTENT : 0, st, NULL);
    if (rc != SQLITE_OK || !free_slot)
        return rc;
    /* A slot whose text differs from its pointer's (SQL built at run time) is never matched
     * again; the cache is for the literals. */
    free_slot->sql = sql;
    free_slot->st = *st;
    free_slot->busy = 1;
    c->nslot++;
    return SQLITE_OK;
}

/* Done with a statement from sqlite_prep: a cached one is reset for the next user (which
 * also ends its read transaction), another is finalized. NULL is fine. */
static void sqlite_done(struct sqlite_conn *c, sqlite3_stmt *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < c->nslot; i++) {
        if (c->slot[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            c->slot[i].busy = 0;
            return;
        }
    }
    sqlite3_finalize(st);
}

/* Finalizes the cached statements and closes the connection. */
static void sqlite_conn_close(struct sqlite_conn *c)
{
    for (size_t i = 0; i < c->nslot; i++)
        sqlite3_finalize(c->slot[i].st);
    c->nslot = 0;
    sqlite3_close_v2(c->db);
    c->db = NULL;
}

static int sqlite_prep(struct sqlite_conn *c, sqlite3_stmt **st, struct store_err *err,
                       const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;

    *st = NULL;
    rc = sqlite_stmt(c, sql, st);
    if (rc != SQLITE_OK)
        return sqlite_fail(c->db, rc, err);
    va_start(ap, fmt);
    rc = sqlite_bindv(*st, fmt, ap);
    va_end(ap);
    if (rc != SQLITE_OK) {
        sqlite_done(c, *st);
        *st = NULL;
        return sqlite_fail(c->db, rc, err);
    }
    return STORE_OK;
}

/* Runs a statement to completion; *changes (if non-NULL) gets the rows it changed. */
static int sqlite_run(struct sqlite_conn *c, int *changes, struct store_err *err, const char *sql,
                      const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    int rc;

    rc = sqlite_stmt(c, sql, &st);
    if (rc != SQLITE_OK)
        goto err;
    va_start(ap, fmt);
    rc = sqlite_bindv(st, fmt, ap);
    va_end(ap);
    if (rc != SQLITE_OK)
        goto err;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        goto err;
    if (changes)
        *changes = sqlite3_changes(c->db);
    sqlite_done(c, st);
    return STORE_OK;
err:
    rc = sqlite_fail(c->db, rc, err);
    sqlite_done(c, st);
    return rc;
}

/* Runs a query whose first row's first column is an integer; STORE_ENOTFOUND if no row. */
static int sqlite_int(struct sqlite_conn *c, int64_t *out, struct store_err *err, const char *sql,
                      const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    int rc;

    rc = sqlite_stmt(c, sql, &st);
    if (rc != SQLITE_OK)
        goto err;
    va_start(ap, fmt);
    rc = sqlite_bindv(st, fmt, ap);
    va_end(ap);
    if (rc != SQLITE_OK)
        goto err;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite_done(c, st);
        return STORE_ENOTFOUND;
    }
    if (rc != SQLITE_ROW)
        goto err;
    *out = sqlite3_column_int64(st, 0);
    /* Finish the statement so an UPDATE ... RETURNING is fully applied. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        goto err;
    sqlite_done(c, st);
    return STORE_OK;
err:
    rc = sqlite_fail(c->db, rc, err);
    sqlite_done(c, st);
    return rc;
}

/* Copies a text column into a fixed field. Values were validated on the way in, so a
 * value that does not fit means someone edited the file: cut it rather than overflow. */
static void sqlite_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t ? strlen((const char *)t) : 0;

    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

static int sqlite_exec(sqlite3 *db, const char *sql, struct store_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? STORE_OK : sqlite_fail(db, rc, err);
}

static int sqlite_open_db(const char *path, int create, int busy_ms, sqlite3 **out,
                          struct store_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    sqlite3 *db = NULL;
    int rc;

    rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        struct stat sb;

        /* Only a file that is truly absent is "not found"; EMFILE, EACCES... are errors. */
        if (!create && (rc & 0xff) == SQLITE_CANTOPEN && stat(path, &sb) != 0 && errno == ENOENT)
            rc = store_errf(err, STORE_ENOTFOUND, "no store database at %s", path);
        else
            rc = store_errf(err, STORE_EIO, "cannot open %s: %s", path,
                            db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto err;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, busy_ms);
    /* WAL: readers never block the writer; FULL: a returned COMMIT is on disk. */
    rc = sqlite_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     " PRAGMA foreign_keys=ON;",
                     err);
    if (rc)
        goto err;
    *out = db;
    return STORE_OK;
err:
    sqlite3_close_v2(db);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Files and directories                                                                  */

static int sqlite_mkdirs(const char *path, struct store_err *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return store_errf(err, STORE_EINVAL, "path too long: %s", path);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return store_errf(err, STORE_EIO, "cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return store_errf(err, STORE_EIO, "cannot create %s: %s", buf, strerror(errno));
    return STORE_OK;
}

/* Makes a directory entry (a rename, a new subdirectory) durable. */
static int sqlite_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* A path component taken from the directory must never climb out of data_dir. */
static int sqlite_safe_component(const char *s)
{
    return s && *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && strchr(s, '/') == NULL;
}

static int sqlite_user_dir(const struct store_bcfg *cfg, const char *domain, const char *localpart,
                           char *out, size_t outlen, struct store_err *err)
{
    int n;

    if (!sqlite_safe_component(domain) || (localpart && !sqlite_safe_component(localpart)))
        return store_errf(err, STORE_EINVAL, "unusable name for a store directory");
    if (localpart)
        n = snprintf(out, outlen, "%s/users/%s/%s", cfg->data_dir, domain, localpart);
    else
        n = snprintf(out, outlen, "%s/users/%s", cfg->data_dir, domain);
    if (n < 0 || (size_t)n >= outlen)
        return store_errf(err, STORE_EINVAL, "store path too long");
    return STORE_OK;
}

static int sqlite_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        return rmdir(path) != 0 && errno != ENOENT ? -1 : 0;
    return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
}

static int sqlite_user_remove(const struct store_bcfg *cfg, const char *domain,
                              const char *localpart, struct store_err *err)
{
    char path[PATH_MAX];
    struct stat st;
    int rc;

    rc = sqlite_user_dir(cfg, domain, localpart, path, sizeof(path), err);
    if (rc)
        return rc;
    if (lstat(path, &st) != 0)
        return STORE_OK; /* nothing there */
    if (nftw(path, sqlite_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return store_errf(err, STORE_EIO, "cannot remove %s: %s", path, strerror(errno));
    return STORE_OK;
}

/* ------------------------------------------------------------------------------------- */
/* Blobs                                                                                  */

static int sqlite_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

static int sqlite_blob_note(struct store_bu *u, const char *hash, int deref)
{
    struct sqlite_blob_ref *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return STORE_ENOMEM;
    memcpy(r->hash, hash, 65);
    r->deref = deref;
    r->next = u->touched;
    u->touched = r;
    return STORE_OK;
}

static int sqlite_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes a body as a content-addressed blob, durable before returning. */
static int sqlite_blob_put(struct store_bu *u, const char *body, size_t len, char hash[65],
                           struct store_err *err)
{
    static atomic_ulong seq;
    char path[PATH_MAX + 80], tmp[PATH_MAX + 80];
    struct stat st;
    int fd = -1;

    if (sqlite_sha256_hex(body, len, hash) != 0)
        return store_errf(err, STORE_EIO, "cannot compute SHA-256 of a body");
    snprintf(path, sizeof(path), "%s/%s", u->blobdir, hash);
    /* Files only get this name once complete and synced, so an existing one is reusable. */
    if (stat(path, &st) == 0 && (size_t)st.st_size == len)
        return sqlite_blob_note(u, hash, 0);
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%ld-%lu", u->blobdir, (long)getpid(),
             (unsigned long)atomic_fetch_add(&seq, 1));
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto err;
    if (sqlite_write_all(fd, body, len) != 0 || fsync(fd) != 0)
        goto err;
    if (close(fd) != 0) {
        fd = -1;
        goto err;
    }
    fd = -1;
    if (rename(tmp, path) != 0 || sqlite_fsync_dir(u->blobdir) != 0)
        goto err;
    return sqlite_blob_note(u, hash, 0);
err:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return store_errf(err, STORE_EIO, "cannot write blob %s: %s", path, strerror(e));
}

static int sqlite_blob_read(struct store_bu *u, const char *hash, int64_t size, char **out,
                            struct store_err *err)
{
    char path[PATH_MAX + 80];
    struct stat st;
    char *buf = NULL;
    size_t off = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", u->blobdir, hash);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return store_errf(err, STORE_ENOTFOUND, "blob %s is missing", hash);
        return store_errf(err, STORE_EIO, "cannot open blob %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || st.st_size != size) {
        close(fd);
        return store_errf(err, STORE_EIO, "blob %s has the wrong size", hash);
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL) {
        close(fd);
        return store_errf(err, STORE_ENOMEM, "out of memory reading a blob");
    }
    while (off < (size_t)size) {
        ssize_t n = read(fd, buf + off, (size_t)size - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            free(buf);
            return store_errf(err, STORE_EIO, "cannot read blob %s", hash);
        }
        off += (size_t)n;
    }
    close(fd);
    buf[size] = '\0';
    *out = buf;
    return STORE_OK;
}

/* Unlinks the touched blobs nothing references any more. all: also ones merely written
 * (after a rollback). Runs its own write transaction so no writer can pick a file up
 * between the check and the unlink; on failure the file stays (a leak, never a loss). */
static void sqlite_blob_gc(struct store_bu *u, int all)
{
    struct sqlite_blob_ref *list = u->touched, *r;
    int need = 0;

    u->touched = NULL;
    for (r = list; r; r = r->next)
        need |= all || r->deref;
    if (need && sqlite3_exec(u->c.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        for (r = list; r; r = r->next) {
            int64_t one;
            char path[PATH_MAX + 80];

            if (!all && !r->deref)
                continue;
            if (sqlite_int(&u->c, &one, NULL, "SELECT 1 FROM items WHERE blob = ?1 LIMIT 1", "t",
                           r->hash) != STORE_ENOTFOUND)
                continue;
            snprintf(path, sizeof(path), "%s/%s", u->blobdir, r->hash);
            unlink(path);
        }
        if (sqlite3_exec(u->c.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            sqlite3_exec(u->c.db, "ROLLBACK", NULL, NULL, NULL);
    }
    while (list) {
        r = list->next;
        free(list);
        list = r;
    }
}

/* ------------------------------------------------------------------------------------- */
/* Directory                                                                              */

static const char sqlite_dir_schema[] =
    "CREATE TABLE IF NOT EXISTS domains("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL UNIQUE,"
    " label TEXT NOT NULL UNIQUE,"
    " token TEXT NOT NULL,"
    " local_delivery INTEGER NOT NULL DEFAULT 1,"
    " verified INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS users("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    " localpart TEXT NOT NULL,"
    " type INTEGER NOT NULL,"
    " quota INTEGER NOT NULL,"
    " active INTEGER NOT NULL DEFAULT 1,"
    " pwhash TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " UNIQUE(domain_id, localpart));"
    "CREATE TABLE IF NOT EXISTS aliases("
    " id INTEGER PRIMARY KEY,"
    " domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    " localpart TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " UNIQUE(domain_id, localpart, target));"
    "CREATE TABLE IF NOT EXISTS settings("
    " scope TEXT NOT NULL,"
    " k TEXT NOT NULL,"
    " v BLOB NOT NULL,"
    " PRIMARY KEY(scope, k)) WITHOUT ROWID;";

static int sqlite_dir_open(const struct store_bcfg *cfg, struct store_bdir **out,
                           struct store_err *err)
{
    char path[PATH_MAX], users[PATH_MAX];
    struct store_bdir *d = NULL;
    int rc;

    if (snprintf(path, sizeof(path), "%s/directory.db", cfg->data_dir) >= (int)sizeof(path))
        return store_errf(err, STORE_EINVAL, "data_dir path too long");
    snprintf(users, sizeof(users), "%s/users", cfg->data_dir);
    rc = sqlite_mkdirs(users, err);
    if (rc)
        return rc;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return store_errf(err, STORE_ENOMEM, "out of memory");
    rc = sqlite_open_db(path, 1, cfg->busy_timeout_ms, &d->c.db, err);
    if (rc)
        goto err;
    rc = sqlite_exec(d->c.db, "BEGIN IMMEDIATE", err);
    if (rc)
        goto err;
    rc = sqlite_exec(d->c.db, sqlite_dir_schema, err);
    if (rc == STORE_OK)
        rc = sqlite_exec(d->c.db, "COMMIT", err);
    if (rc) {
        sqlite3_exec(d->c.db, "ROLLBACK", NULL, NULL, NULL);
        goto err;
    }
    *out = d;
    return STORE_OK;
err:
    if (d)
        sqlite_conn_close(&d->c);
    free(d);
    return rc;
}

static void sqlite_dir_close(struct store_bdir *d)
{
    if (d == NULL)
        return;
    sqlite_conn_close(&d->c);
    free(d);
}

#define DOMAIN_COLS                                                                                \
    "SELECT d.id, d.name, d.label, d.token, d.local_delivery, d.verified, d.created,"              \
    " (SELECT count(*) FROM users u WHERE u.domain_id = d.id) FROM domains d "

static void sqlite_domain_row(sqlite3_stmt *st, struct store_domain *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    sqlite_text(out->name, sizeof(out->name), st, 1);
    sqlite_text(out->label, sizeof(out->label), st, 2);
    sqlite_text(out->token, sizeof(out->token), st, 3);
    out->local_delivery = sqlite3_column_int(st, 4);
    out->verified = sqlite3_column_int(st, 5);
    out->created = sqlite3_column_int64(st, 6);
    out->users = sqlite3_column_int64(st, 7);
}

static int sqlite_domain_insert(struct store_bdir *d, const struct store_domain *dom, int64_t *id,
                                struct store_err *err)
{
    int rc = sqlite_run(&d->c, NULL, err,
                        "INSERT INTO domains(name, label, token, local_delivery, verified,"
                        " created) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                        "tttiii", dom->name, dom->label, dom->token, (int64_t)dom->local_delivery,
                        (int64_t)dom->verified, dom->created);

    if (rc == STORE_EEXIST)
        return store_errf(err, rc, "domain %s or its label %s already exists", dom->name,
                          dom->label);
    if (rc == STORE_OK)
        *id = sqlite3_last_insert_rowid(d->c.db);
    return rc;
}

static int sqlite_domain_get(struct store_bdir *d, const char *name, const char *label,
                             struct store_domain *out, struct store_err *err)
{
    sqlite3_stmt *st;
    int rc;

    if (name)
        rc = sqlite_prep(&d->c, &st, err, DOMAIN_COLS "WHERE d.name = ?1", "t", name);
    else
        rc = sqlite_prep(&d->c, &st, err, DOMAIN_COLS "WHERE d.label = ?1", "t", label);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (out)
            sqlite_domain_row(st, out);
        rc = STORE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = store_errf(err, STORE_ENOTFOUND, "no such domain: %s", name ? name : label);
    } else {
        rc = sqlite_fail(d->c.db, rc, err);
    }
    sqlite_done(&d->c, st);
    return rc;
}

static int sqlite_domain_list(struct store_bdir *d, store_domain_cb cb, void *ctx,
                              struct store_err *err)
{
    struct store_domain dom;
    sqlite3_stmt *st;
    int rc;

    rc = sqlite_prep(&d->c, &st, err, DOMAIN_COLS "ORDER BY d.name", "");
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite_domain_row(st, &dom);
        if (cb(&dom, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(d->c.db, rc, err);
    sqlite_done(&d->c, st);
    return rc;
}

static int sqlite_domain_delete(struct store_bdir *d, int64_t id, struct store_err *err)
{
    int n = 0;
    int rc = sqlite_run(&d->c, &n, err, "DELETE FROM domains WHERE id = ?1", "i", id);

    if (rc == STORE_OK && n == 0)
        return store_errf(err, STORE_ENOTFOUND, "no such domain");
    return rc;
}

static int sqlite_domain_set_flag(struct store_bdir *d, int64_t id, enum store_domain_flag f,
                                  int on, struct store_err *err)
{
    const char *sql = f == STORE_DOMAIN_VERIFIED
                          ? "UPDATE domains SET verified = ?2 WHERE id = ?1"
                          : "UPDATE domains SET local_delivery = ?2 WHERE id = ?1";
    int n = 0;
    int rc = sqlite_run(&d->c, &n, err, sql, "ii", id, (int64_t)(on != 0));

    if (rc == STORE_OK && n == 0)
        return store_errf(err, STORE_ENOTFOUND, "no such domain");
    return rc;
}

static int sqlite_domain_usage(struct store_bdir *d, int64_t id, int64_t *users, int64_t *aliases,
                               struct store_err *err)
{
    int rc =
        sqlite_int(&d->c, users, err, "SELECT count(*) FROM users WHERE domain_id = ?1", "i", id);

    if (rc == STORE_OK)
        rc = sqlite_int(&d->c, aliases, err, "SELECT count(*) FROM aliases WHERE domain_id = ?1",
                        "i", id);
    return rc;
}

/* Directory settings: (scope, key) → value, scope a domain name or an address. */

static int sqlite_setting_put(struct store_bdir *d, const char *scope, const char *key,
                              const void *val, size_t len, struct store_err *err)
{
    return sqlite_run(&d->c, NULL, err,
                      "INSERT INTO settings(scope, k, v) VALUES(?1, ?2, ?3)"
                      " ON CONFLICT(scope, k) DO UPDATE SET v = excluded.v",
                      "ttb", scope, key, val ? val : (const void *)"", len);
}

/* Steps a prepared one-column query and hands its value over as a malloc'd,
 * NUL-terminated copy (the NUL is not counted in len). STORE_ENOTFOUND (no message) when
 * there is no row. Finalizes st. Shared by directory settings and per-user state. */
static int sqlite_take_value(struct sqlite_conn *c, sqlite3_stmt *st, void **val, size_t *len,
                             struct store_err *err)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        char *v = malloc((size_t)n + 1);
        if (v == NULL) {
            rc = store_errf(err, STORE_ENOMEM, "out of memory");
        } else {
            if (n)
                memcpy(v, sqlite3_column_blob(st, 0), (size_t)n);
            v[n] = '\0'; /* convenient for text values */
            *val = v;
            *len = (size_t)n;
            rc = STORE_OK;
        }
    } else if (rc == SQLITE_DONE) {
        rc = STORE_ENOTFOUND;
    } else {
        rc = sqlite_fail(c->db, rc, err);
    }
    sqlite_done(c, st);
    return rc;
}

static int sqlite_setting_get(struct store_bdir *d, const char *scope, const char *key, void **val,
                              size_t *len, struct store_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite_prep(&d->c, &st, err, "SELECT v FROM settings WHERE scope = ?1 AND k = ?2",
                         "tt", scope, key);

    if (rc == STORE_OK && (rc = sqlite_take_value(&d->c, st, val, len, err)) == STORE_ENOTFOUND)
        store_errf(err, rc, "no setting %s for %s", key, scope);
    return rc;
}

/* key NULL: every setting of the scope; a domain scope also takes its addresses'. */
static int sqlite_setting_del(struct store_bdir *d, const char *scope, const char *key,
                              struct store_err *err)
{
    if (key)
        return sqlite_run(&d->c, NULL, err, "DELETE FROM settings WHERE scope = ?1 AND k = ?2",
                          "tt", scope, key);
    return sqlite_run(&d->c, NULL, err,
                      "DELETE FROM settings WHERE scope = ?1 OR scope LIKE '%@' || ?1", "t", scope);
}

#define ACCOUNT_COLS                                                                               \
    "SELECT u.id, u.domain_id, u.localpart, d.name, u.type, u.quota, u.active, u.pwhash,"          \
    " u.created FROM users u JOIN domains d ON d.id = u.domain_id "

static void sqlite_account_row(sqlite3_stmt *st, struct store_account *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    out->domain_id = sqlite3_column_int64(st, 1);
    sqlite_text(out->localpart, sizeof(out->localpart), st, 2);
    sqlite_text(out->domain, sizeof(out->domain), st, 3);
    out->type = (enum store_acct_type)sqlite3_column_int(st, 4);
    out->quota = sqlite3_column_int64(st, 5);
    out->active = sqlite3_column_int(st, 6);
    sqlite_text(out->pwhash, sizeof(out->pwhash), st, 7);
    out->created = sqlite3_column_int64(st, 8);
    snprintf(out->address, sizeof(out->address), "%s@%s", out->localpart, out->domain);
}

static int sqlite_account_insert(struct store_bdir *d, const struct store_account *a, int64_t *id,
                                 struct store_err *err)
{
    int rc = sqlite_run(&d->c, NULL, err,
                        "INSERT INTO users(domain_id, localpart, type, quota, active, pwhash,"
                        " created) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        "itiiiti", a->domain_id, a->localpart, (int64_t)a->type, a->quota,
                        (int64_t)a->active, a->pwhash, a->created);

    if (rc == STORE_EEXIST)
        return store_errf(err, rc, "user %s already exists", a->address);
    if (rc == STORE_OK)
        *id = sqlite3_last_insert_rowid(d->c.db);
    return rc;
}

static int sqlite_account_get(struct store_bdir *d, const char *domain, const char *localpart,
                              struct store_account *out, struct store_err *err)
{
    sqlite3_stmt *st;
    int rc;

    rc = sqlite_prep(&d->c, &st, err, ACCOUNT_COLS "WHERE d.name = ?1 AND u.localpart = ?2", "tt",
                     domain, localpart);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (out)
            sqlite_account_row(st, out);
        rc = STORE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = store_errf(err, STORE_ENOTFOUND, "no such user: %s@%s", localpart, domain);
    } else {
        rc = sqlite_fail(d->c.db, rc, err);
    }
    sqlite_done(&d->c, st);
    return rc;
}

static int sqlite_account_list(struct store_bdir *d, const char *domain, store_account_cb cb,
                               void *ctx, struct store_err *err)
{
    struct store_account a;
    sqlite3_stmt *st;
    int rc;

    rc = sqlite_prep(&d->c, &st, err,
                     ACCOUNT_COLS "WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, u.localpart",
                     "t", domain);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite_account_row(st, &a);
        if (cb(&a, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    memset(&a, 0, sizeof(a)); /* the hash was in it */
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(d->c.db, rc, err);
    sqlite_done(&d->c, st);
    return rc;
}

static int sqlite_account_update(struct store_bdir *d, const struct store_account *a,
                                 struct store_err *err)
{
    int n = 0;
    int rc = sqlite_run(&d->c, &n, err,
                        "UPDATE users SET type = ?2, quota = ?3, active = ?4, pwhash = ?5"
                        " WHERE id = ?1",
                        "iiiit", a->id, (int64_t)a->type, a->quota, (int64_t)a->active, a->pwhash);

    if (rc == STORE_OK && n == 0)
        return store_errf(err, STORE_ENOTFOUND, "no such user: %s", a->address);
    return rc;
}

static int sqlite_account_delete(struct store_bdir *d, int64_t id, struct store_err *err)
{
    int n = 0;
    int rc = sqlite_run(&d->c, &n, err, "DELETE FROM users WHERE id = ?1", "i", id);

    if (rc == STORE_OK && n == 0)
        return store_errf(err, STORE_ENOTFOUND, "no such user");
    return rc;
}

static int sqlite_alias_insert(struct store_bdir *d, int64_t domain_id, const char *localpart,
                               const char *target, struct store_err *err)
{
    int rc = sqlite_run(&d->c, NULL, err,
                        "INSERT INTO aliases(domain_id, localpart, target) VALUES(?1, ?2, ?3)",
                        "itt", domain_id, localpart, target);

    if (rc == STORE_EEXIST)
        return store_errf(err, rc, "alias %s@... → %s already exists", localpart, target);
    return rc;
}

static int sqlite_alias_delete(struct store_bdir *d, int64_t domain_id, const char *localpart,
                               const char *target, struct store_err *err)
{
    int n = 0;
    int rc = sqlite_run(&d->c, &n, err,
                        "DELETE FROM aliases WHERE domain_id = ?1 AND localpart = ?2"
                        " AND (?3 IS NULL OR target = ?3)",
                        "itt", domain_id, localpart, target);

    if (rc == STORE_OK && n == 0)
        return store_errf(err, STORE_ENOTFOUND, "no such alias");
    return rc;
}

static int sqlite_alias_list(struct store_bdir *d, const char *domain, const char *localpart,
                             store_alias_cb cb, void *ctx, struct store_err *err)
{
    char source[320];
    sqlite3_stmt *st;
    int rc;

    rc = sqlite_prep(&d->c, &st, err,
                     "SELECT a.localpart, d.name, a.target FROM aliases a"
                     " JOIN domains d ON d.id = a.domain_id"
                     " WHERE (?1 IS NULL OR d.name = ?1) AND (?2 IS NULL OR a.localpart = ?2)"
                     " ORDER BY d.name, a.localpart, a.target",
                     "tt", domain, localpart);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        snprintf(source, sizeof(source), "%s@%s", (const char *)sqlite3_column_text(st, 0),
                 (const char *)sqlite3_column_text(st, 1));
        if (cb(source, (const char *)sqlite3_column_text(st, 2), ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(d->c.db, rc, err);
    sqlite_done(&d->c, st);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Per-user store: opening and transactions                                               */

/* hmodseq is the MODSEQ of the folder's own last change (create, rename, props) for
 * folder_changes_since; modseq also moves with every change to the folder's items. */
/* A covering index of what a client's view of a folder needs: the listing at IMAP SELECT
 * and the folder counts (messages, unseen, bytes) are answered from it alone, without
 * reading item rows, which carry inline bodies of up to 64 KiB. On 10,000 messages that
 * is the difference between thousands of pages read and a few dozen. */
#define SQLITE_VIEW_INDEX                                                                          \
    "CREATE INDEX IF NOT EXISTS items_view ON items(folder_id, uid, flags, modseq, size, idate,"   \
    " keywords, id)"

/* The occurrence index of calendar items (store_item_set_ranges). An R*Tree over two
 * dimensions, the folder (a point) and the time range, answers "what in this folder
 * overlaps [start, end)" in time proportional to the matches. R*Tree coordinates are
 * 32-bit floats rounded outwards, so the tree only narrows the candidates; the exact
 * bounds ride along as auxiliary columns and decide. A range's row id is
 * item_id * SQLITE_RANGE_MAX + its index, so an item's rows are found without a scan.
 * item_rindex holds, per indexed item, its folder, how many ranges it has and up to
 * when the list is complete. */
#define SQLITE_RANGE_MAX 16384
#define SQLITE_RANGE_SCHEMA                                                                        \
    "CREATE VIRTUAL TABLE IF NOT EXISTS item_ranges USING rtree(rid, f0, f1, t0, t1,"              \
    " +item_id, +rstart, +rend);"                                                                  \
    "CREATE TABLE IF NOT EXISTS item_rindex(item_id INTEGER PRIMARY KEY,"                          \
    " folder_id INTEGER NOT NULL, n INTEGER NOT NULL, complete_until INTEGER NOT NULL);"           \
    "CREATE INDEX IF NOT EXISTS item_rindex_open ON item_rindex(folder_id, complete_until);"

static const char sqlite_user_schema[] =
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta(k, v) VALUES('modseq', 0), ('usage', 0), ('uidvalidity', 0),"
    " ('floor', 0), ('schema', 1);"
    "CREATE TABLE folders("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " parent_id INTEGER NOT NULL DEFAULT 0,"
    " name TEXT NOT NULL,"
    " class INTEGER NOT NULL,"
    " role INTEGER NOT NULL DEFAULT 0,"
    " uidvalidity INTEGER NOT NULL,"
    " uidnext INTEGER NOT NULL DEFAULT 1,"
    " modseq INTEGER NOT NULL,"
    " hmodseq INTEGER NOT NULL,"
    " created_modseq INTEGER NOT NULL,"
    " subscribed INTEGER NOT NULL DEFAULT 1,"
    " props TEXT NOT NULL DEFAULT '',"
    " UNIQUE(parent_id, name));"
    "CREATE TABLE items("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " folder_id INTEGER NOT NULL,"
    " uid INTEGER NOT NULL,"
    " modseq INTEGER NOT NULL,"
    " flags INTEGER NOT NULL DEFAULT 0,"
    " keywords TEXT NOT NULL DEFAULT '',"
    " name TEXT NOT NULL DEFAULT '',"
    " ext_uid TEXT NOT NULL DEFAULT '',"
    " ctype TEXT NOT NULL DEFAULT '',"
    " size INTEGER NOT NULL,"
    " idate INTEGER NOT NULL,"
    " mtime INTEGER NOT NULL,"
    /* Large columns last: scans for flags and sizes then never touch overflow pages. */
    " body BLOB,"
    " blob TEXT,"
    " meta BLOB,"
    " UNIQUE(folder_id, uid));"
    "CREATE INDEX items_modseq ON items(folder_id, modseq);"
    "CREATE UNIQUE INDEX items_name ON items(folder_id, name) WHERE name <> '';"
    "CREATE INDEX items_ext_uid ON items(folder_id, ext_uid);"
    "CREATE INDEX items_blob ON items(blob) WHERE blob IS NOT NULL;" SQLITE_VIEW_INDEX
    ";" SQLITE_RANGE_SCHEMA "CREATE TABLE item_tombs("
    " modseq INTEGER NOT NULL,"
    " folder_id INTEGER NOT NULL,"
    " item_id INTEGER NOT NULL,"
    " uid INTEGER NOT NULL,"
    " name TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX item_tombs_modseq ON item_tombs(folder_id, modseq);"
    "CREATE TABLE folder_tombs("
    " modseq INTEGER NOT NULL,"
    " folder_id INTEGER NOT NULL,"
    " parent_id INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " class INTEGER NOT NULL,"
    " role INTEGER NOT NULL);"
    "CREATE INDEX folder_tombs_modseq ON folder_tombs(modseq);"
    "CREATE TABLE state("
    " ns TEXT NOT NULL,"
    " k TEXT NOT NULL,"
    " v BLOB NOT NULL,"
    " PRIMARY KEY(ns, k)) WITHOUT ROWID;";

/* Creates the schema once; all of it in one transaction, so a crash leaves none or all. */
static int sqlite_has_schema(struct sqlite_conn *c, int64_t *n, struct store_err *err)
{
    return sqlite_int(
        c, n, err, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", "");
}

/* Creates the schema once; all of it in one transaction, so a crash leaves none or all.
 * The usual case (already there) is checked first without taking the write lock. */
static int sqlite_user_init(struct sqlite_conn *c, struct store_err *err)
{
    int64_t n = 0;
    int rc;

    rc = sqlite_has_schema(c, &n, err);
    if (rc == STORE_OK && n > 0) /* stores made before the index existed get it now */
        rc = sqlite_exec(c->db, SQLITE_VIEW_INDEX, err);
    if (rc == STORE_OK && n > 0) /* and the occurrence index */
        rc = sqlite_exec(c->db, SQLITE_RANGE_SCHEMA, err);
    if (rc || n > 0)
        return rc;
    rc = sqlite_exec(c->db, "BEGIN IMMEDIATE", err);
    if (rc)
        return rc;
    rc = sqlite_has_schema(c, &n, err);
    if (rc == STORE_OK && n == 0)
        rc = sqlite_exec(c->db, sqlite_user_schema, err);
    if (rc == STORE_OK)
        rc = sqlite_exec(c->db, "COMMIT", err);
    if (rc)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Removes blob temp files left by writers that were killed mid-write. A file is only
 * removed when its writer (pid in the name) is gone; a live writer's file is never touched. */
static void sqlite_blob_sweep(const char *blobdir)
{
    struct dirent *de;
    DIR *d = opendir(blobdir);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char path[PATH_MAX + 300];
        long pid;

        if (strncmp(de->d_name, ".tmp-", 5) != 0 || sscanf(de->d_name + 5, "%ld-", &pid) != 1 ||
            pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof(path), "%s/%s", blobdir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

static int sqlite_user_open(const struct store_bcfg *cfg, const char *domain, const char *localpart,
                            int create, struct store_bu **out, struct store_err *err)
{
    char path[PATH_MAX + 16];
    struct store_bu *u;
    int rc;

    u = calloc(1, sizeof(*u));
    if (u == NULL)
        return store_errf(err, STORE_ENOMEM, "out of memory");
    u->inline_max = cfg->inline_max;
    rc = sqlite_user_dir(cfg, domain, localpart, u->dir, sizeof(u->dir), err);
    if (rc)
        goto err;
    if (snprintf(u->blobdir, sizeof(u->blobdir), "%s/blobs", u->dir) >= (int)sizeof(u->blobdir)) {
        rc = store_errf(err, STORE_EINVAL, "store path too long");
        goto err;
    }
    if (create) {
        char users[PATH_MAX];

        rc = sqlite_mkdirs(u->blobdir, err);
        if (rc)
            goto err;
        /* Make the new directories themselves durable, up to users/. */
        snprintf(users, sizeof(users), "%s/users", cfg->data_dir);
        sqlite_fsync_dir(u->dir);
        sqlite_user_dir(cfg, domain, NULL, path, sizeof(path), NULL);
        sqlite_fsync_dir(path);
        sqlite_fsync_dir(users);
    }
    snprintf(path, sizeof(path), "%s/store.db", u->dir);
    rc = sqlite_open_db(path, create, cfg->busy_timeout_ms, &u->c.db, err);
    if (rc)
        goto err;
    rc = sqlite_user_init(&u->c, err);
    if (rc)
        goto err;
    if (!create)
        sqlite_blob_sweep(u->blobdir);
    *out = u;
    return STORE_OK;
err:
    if (u->c.db)
        sqlite_conn_close(&u->c);
    free(u);
    return rc;
}

static void sqlite_user_close(struct store_bu *u)
{
    if (u == NULL)
        return;
    if (!sqlite3_get_autocommit(u->c.db))
        sqlite3_exec(u->c.db, "ROLLBACK", NULL, NULL, NULL);
    sqlite_blob_gc(u, 1);
    sqlite_conn_close(&u->c);
    free(u);
}

static int sqlite_txn_begin(struct store_bu *u, struct store_err *err)
{
    /* IMMEDIATE takes the write lock now: no deadlock upgrading a read lock later. */
    return sqlite_exec(u->c.db, "BEGIN IMMEDIATE", err);
}

static int sqlite_txn_commit(struct store_bu *u, struct store_err *err)
{
    int rc = sqlite_exec(u->c.db, "COMMIT", err);

    if (rc == STORE_OK)
        sqlite_blob_gc(u, 0);
    return rc;
}

static void sqlite_txn_rollback(struct store_bu *u)
{
    if (!sqlite3_get_autocommit(u->c.db))
        sqlite3_exec(u->c.db, "ROLLBACK", NULL, NULL, NULL);
    sqlite_blob_gc(u, 1);
}

static int sqlite_sp_begin(struct store_bu *u, struct store_err *err)
{
    return sqlite_exec(u->c.db, "SAVEPOINT op", err);
}

static int sqlite_sp_release(struct store_bu *u, struct store_err *err)
{
    return sqlite_exec(u->c.db, "RELEASE op", err);
}

static void sqlite_sp_rollback(struct store_bu *u)
{
    sqlite3_exec(u->c.db, "ROLLBACK TO op; RELEASE op", NULL, NULL, NULL);
}

static int sqlite_modseq_next(struct store_bu *u, int64_t *out, struct store_err *err)
{
    return sqlite_int(&u->c, out, err, "UPDATE meta SET v = v + 1 WHERE k = 'modseq' RETURNING v",
                      "");
}

static int sqlite_counters(struct store_bu *u, int64_t *modseq, int64_t *floor, int64_t *usage,
                           struct store_err *err)
{
    sqlite3_stmt *st;
    int rc;

    rc = sqlite_prep(&u->c, &st, err,
                     "SELECT (SELECT v FROM meta WHERE k = 'modseq'),"
                     " (SELECT v FROM meta WHERE k = 'floor'),"
                     " (SELECT v FROM meta WHERE k = 'usage')",
                     "");
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (modseq)
            *modseq = sqlite3_column_int64(st, 0);
        if (floor)
            *floor = sqlite3_column_int64(st, 1);
        if (usage)
            *usage = sqlite3_column_int64(st, 2);
        rc = STORE_OK;
    } else {
        rc = sqlite_fail(u->c.db, rc, err);
    }
    sqlite_done(&u->c, st);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Folders                                                                                */

#define FOLDER_COLS                                                                                \
    "f.id, f.parent_id, f.name, f.class, f.role, f.uidvalidity, f.uidnext, f.modseq,"              \
    " f.created_modseq, f.subscribed, f.props, count(i.id),"                                       \
    " coalesce(sum((i.flags & 1) = 0), 0), coalesce(sum(i.size), 0)"
#define FOLDER_FROM " FROM folders f LEFT JOIN items i ON i.folder_id = f.id "

static void sqlite_folder_row(sqlite3_stmt *st, int c, struct store_folder *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, c);
    out->parent_id = sqlite3_column_int64(st, c + 1);
    sqlite_text(out->name, sizeof(out->name), st, c + 2);
    out->cls = (enum store_class)sqlite3_column_int(st, c + 3);
    out->role = (enum store_role)sqlite3_column_int(st, c + 4);
    out->uidvalidity = (uint32_t)sqlite3_column_int64(st, c + 5);
    out->uidnext = (uint32_t)sqlite3_column_int64(st, c + 6);
    out->modseq = sqlite3_column_int64(st, c + 7);
    out->created_modseq = sqlite3_column_int64(st, c + 8);
    out->subscribed = sqlite3_column_int(st, c + 9);
    sqlite_text(out->props, sizeof(out->props), st, c + 10);
    out->count = sqlite3_column_int64(st, c + 11);
    out->unseen = sqlite3_column_int64(st, c + 12);
    out->bytes = sqlite3_column_int64(st, c + 13);
}

/* Steps a folder query: with cb, calls it per row; else copies the first row to *one. */
static int sqlite_folder_rows(struct store_bu *u, sqlite3_stmt *st, store_folder_cb cb, void *ctx,
                              struct store_folder *one, struct store_err *err)
{
    struct store_folder f;
    int rc, found = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        found = 1;
        if (cb == NULL) {
            if (one)
                sqlite_folder_row(st, 0, one);
            rc = SQLITE_DONE;
            break;
        }
        sqlite_folder_row(st, 0, &f);
        if (cb(&f, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        rc = sqlite_fail(u->c.db, rc, err);
    else if (cb == NULL && !found)
        rc = store_errf(err, STORE_ENOTFOUND, "no such folder");
    else
        rc = STORE_OK;
    sqlite_done(&u->c, st);
    return rc;
}

static int sqlite_folder_list(struct store_bu *u, enum store_class cls, store_folder_cb cb,
                              void *ctx, struct store_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite_prep(&u->c, &st, err,
                         "SELECT " FOLDER_COLS FOLDER_FROM
                         "WHERE ?1 = 0 OR f.class = ?1 GROUP BY f.id ORDER BY f.id",
                         "i", (int64_t)cls);

    return rc ? rc : sqlite_folder_rows(u, st, cb, ctx, NULL, err);
}

static int sqlite_folder_get(struct store_bu *u, int64_t id, struct store_folder *out,
                             struct store_err *err)
{
    sqlite3_stmt *st;
    int rc =
        sqlite_prep(&u->c, &st, err,
                    "SELECT " FOLDER_COLS FOLDER_FROM "WHERE f.id = ?1 GROUP BY f.id", "i", id);

    return rc ? rc : sqlite_folder_rows(u, st, NULL, NULL, out, err);
}

/* The same columns without the item counts: no join, no reading of the folder's items. */
#define FOLDER_COLS_NOCOUNT                                                                        \
    "f.id, f.parent_id, f.name, f.class, f.role, f.uidvalidity, f.uidnext, f.modseq,"              \
    " f.created_modseq, f.subscribed, f.props, -1, -1, -1 FROM folders f "

static int sqlite_folder_find(struct store_bu *u, int64_t parent_id, const char *name, int counts,
                              struct store_folder *out, struct store_err *err)
{
    sqlite3_stmt *st;
    int rc =
        counts ? sqlite_prep(&u->c, &st, err,
                             "SELECT " FOLDER_COLS FOLDER_FROM
                             "WHERE f.parent_id = ?1 AND f.name = ?2 GROUP BY f.id",
                             "it", parent_id, name)
               : sqlite_prep(&u->c, &st, err,
                             "SELECT " FOLDER_COLS_NOCOUNT "WHERE f.parent_id = ?1 AND f.name = ?2",
                             "it", parent_id, name);

    return rc ? rc : sqlite_folder_rows(u, st, NULL, NULL, out, err);
}

static int sqlite_folder_by_role(struct store_bu *u, enum store_role role, int counts,
                                 struct store_folder *out, struct store_err *err)
{
    sqlite3_stmt *st;
    int rc = counts ? sqlite_prep(&u->c, &st, err,
                                  "SELECT " FOLDER_COLS FOLDER_FROM
                                  "WHERE f.role = ?1 GROUP BY f.id ORDER BY f.id LIMIT 1",
                                  "i", (int64_t)role)
                    : sqlite_prep(&u->c, &st, err,
                                  "SELECT " FOLDER_COLS_NOCOUNT
                                  "WHERE f.role = ?1 ORDER BY f.id LIMIT 1",
                                  "i", (int64_t)role);

    return rc ? rc : sqlite_folder_rows(u, st, NULL, NULL, out, err);
}

static int sqlite_folder_insert(struct store_bu *u, int64_t parent_id, const char *name,
                                enum store_class cls, enum store_role role, int64_t modseq,
                                int64_t *id, struct store_err *err)
{
    int64_t uidvalidity;
    int rc;

    /* max(now, last + 1): a folder re-created under the same name never reuses one. */
    rc = sqlite_int(&u->c, &uidvalidity, err,
                    "UPDATE meta SET v = max(?1, v + 1) WHERE k = 'uidvalidity' RETURNING v", "i",
                    (int64_t)time(NULL));
    if (rc)
        return rc;
    rc = sqlite_run(&u->c, NULL, err,
                    "INSERT INTO folders(parent_id, name, class, role, uidvalidity, uidnext,"
                    " modseq, hmodseq, created_modseq) VALUES(?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?6)",
                    "itiiii", parent_id, name, (int64_t)cls, (int64_t)role, uidvalidity, modseq);
    if (rc == STORE_EEXIST)
        return store_errf(err, rc, "a folder named %s already exists there", name);
    if (rc == STORE_OK)
        *id = sqlite3_last_insert_rowid(u->c.db);
    return rc;
}

static int sqlite_folder_rename(struct store_bu *u, int64_t id, int64_t parent_id, const char *name,
                                int64_t modseq, struct store_err *err)
{
    int n = 0;
    int rc = sqlite_run(&u->c, &n, err,
                        "UPDATE folders SET parent_id = ?2, name = ?3, modseq = ?4, hmodseq = ?4"
                        " WHERE id = ?1",
                        "iiti", id, parent_id, name, modseq);

    if (rc == STORE_EEXIST)
        return store_errf(err, rc, "a folder named %s already exists there", name);
    if (rc == STORE_OK && n == 0)
        return store_errf(err, STORE_ENOTFOUND, "no such folder");
    return rc;
}

/* The folder ?1 and everything below it. UNION (not ALL) ends even on a damaged cycle. */
#define SUBTREE                                                                                    \
    "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION"                                                   \
    " SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id) "

/* The occurrence index rows of every item in a folder's subtree, before the items go. */
static int sqlite_folder_drop_ranges(struct store_bu *u, int64_t id, struct store_err *err)
{
    sqlite3_stmt *st;
    int64_t *fids = NULL;
    size_t n = 0, cap = 0;
    int rc = sqlite_prep(&u->c, &st, err, SUBTREE "SELECT id FROM sub", "i", id);

    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            int64_t *v = realloc(fids, (cap = cap ? cap * 2 : 16) * sizeof(*v));
            if (!v) {
                rc = SQLITE_NOMEM;
                break;
            }
            fids = v;
        }
        fids[n++] = sqlite3_column_int64(st, 0);
    }
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(u->c.db, rc, err);
    sqlite_done(&u->c, st);
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        rc = sqlite_run(&u->c, NULL, err, "DELETE FROM item_ranges WHERE f0 <= ?1 AND f1 >= ?1",
                        "i", fids[i]);
        if (rc == STORE_OK)
            rc = sqlite_run(&u->c, NULL, err, "DELETE FROM item_rindex WHERE folder_id = ?1", "i",
                            fids[i]);
    }
    free(fids);
    return rc;
}

static int sqlite_folder_delete(struct store_bu *u, int64_t id, int64_t modseq,
                                struct store_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc, n = 0;

    rc = sqlite_prep(&u->c, &st, err,
                     SUBTREE "SELECT DISTINCT blob FROM items"
                             " WHERE blob IS NOT NULL AND folder_id IN sub",
                     "i", id);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 0);

        if (h && strlen(h) == 64 && sqlite_blob_note(u, h, 1) != STORE_OK) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(u->c.db, rc, err);
    sqlite_done(&u->c, st);
    if (rc)
        return rc;
    rc = sqlite_run(&u->c, NULL, err,
                    SUBTREE "UPDATE meta SET v = v - (SELECT coalesce(sum(size), 0) FROM items"
                            " WHERE folder_id IN sub) WHERE k = 'usage'",
                    "i", id);
    if (rc == STORE_OK)
        rc = sqlite_run(&u->c, NULL, err,
                        SUBTREE "INSERT INTO folder_tombs(modseq, folder_id, parent_id, name,"
                                " class, role) SELECT ?2, id, parent_id, name, class, role"
                                " FROM folders WHERE id IN sub",
                        "ii", id, modseq);
    if (rc == STORE_OK)
        rc = sqlite_run(&u->c, NULL, err, SUBTREE "DELETE FROM item_tombs WHERE folder_id IN sub",
                        "i", id);
    if (rc == STORE_OK)
        rc = sqlite_folder_drop_ranges(u, id, err);
    if (rc == STORE_OK)
        rc = sqlite_run(&u->c, NULL, err, SUBTREE "DELETE FROM items WHERE folder_id IN sub", "i",
                        id);
    if (rc == STORE_OK)
        rc = sqlite_run(&u->c, &n, err, SUBTREE "DELETE FROM folders WHERE id IN sub", "i", id);
    if (rc == STORE_OK && n == 0)
        rc = store_errf(err, STORE_ENOTFOUND, "no such folder");
    return rc;
}

static int sqlite_folder_set(struct store_bu *u, int64_t id, int subscribed, const char *props,
                             int64_t modseq, struct store_err *err)
{
    int n = 0;
    int rc = sqlite_run(&u->c, &n, err,
                        "UPDATE folders SET"
                        " subscribed = CASE WHEN ?2 < 0 THEN subscribed ELSE ?2 END,"
                        " props = coalesce(?3, props), modseq = ?4, hmodseq = ?4 WHERE id = ?1",
                        "iiti", id, (int64_t)subscribed, props, modseq);

    if (rc == STORE_OK && n == 0)
        return store_errf(err, STORE_ENOTFOUND, "no such folder");
    return rc;
}

static int sqlite_folder_changes_since(struct store_bu *u, int64_t since, store_folder_change_cb cb,
                                       void *ctx, struct store_err *err)
{
    struct store_folder f;
    sqlite3_stmt *st;
    int rc;

    /* since 0 is a full listing: every live folder, no tombstones. */
    rc = sqlite_prep(&u->c, &st, err,
                     "SELECT 0 AS removed, " FOLDER_COLS ", f.hmodseq AS m" FOLDER_FROM
                     "WHERE f.hmodseq > ?1 OR ?1 <= 0 GROUP BY f.id"
                     " UNION ALL SELECT 1, folder_id, parent_id, name, class, role, 0, 0, modseq,"
                     " 0, 0, '', 0, 0, 0, modseq FROM folder_tombs WHERE ?1 > 0 AND modseq > ?1"
                     " ORDER BY m, removed DESC, 2",
                     "i", since);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int removed = sqlite3_column_int(st, 0);

        sqlite_folder_row(st, 1, &f);
        if (removed)
            f.modseq = sqlite3_column_int64(st, 15);
        if (cb(&f, removed, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(u->c.db, rc, err);
    sqlite_done(&u->c, st);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Items                                                                                  */

#define ITEM_COLS                                                                                  \
    "id, folder_id, uid, modseq, flags, keywords, name, ext_uid, ctype, size, idate, mtime,"       \
    " coalesce(length(meta), 0)"

static void sqlite_item_row(sqlite3_stmt *st, int c, struct store_item *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, c);
    out->folder_id = sqlite3_column_int64(st, c + 1);
    out->uid = (uint32_t)sqlite3_column_int64(st, c + 2);
    out->modseq = sqlite3_column_int64(st, c + 3);
    out->flags = (uint32_t)sqlite3_column_int64(st, c + 4);
    sqlite_text(out->keywords, sizeof(out->keywords), st, c + 5);
    sqlite_text(out->name, sizeof(out->name), st, c + 6);
    sqlite_text(out->ext_uid, sizeof(out->ext_uid), st, c + 7);
    sqlite_text(out->ctype, sizeof(out->ctype), st, c + 8);
    out->size = sqlite3_column_int64(st, c + 9);
    out->idate = sqlite3_column_int64(st, c + 10);
    out->mtime = sqlite3_column_int64(st, c + 11);
    out->meta_len = (size_t)sqlite3_column_int64(st, c + 12);
}

static int sqlite_item_one(struct store_bu *u, sqlite3_stmt *st, struct store_item *out,
                           struct store_err *err)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        if (out)
            sqlite_item_row(st, 0, out);
        rc = STORE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = store_errf(err, STORE_ENOTFOUND, "no such item");
    } else {
        rc = sqlite_fail(u->c.db, rc, err);
    }
    sqlite_done(&u->c, st);
    return rc;
}

static int sqlite_item_get(struct store_bu *u, int64_t id, struct store_item *out,
                           struct store_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite_prep(&u->c, &st, err, "SELECT " ITEM_COLS " FROM items WHERE id = ?1", "i", id);

    return rc ? rc : sqlite_item_one(u, st, out, err);
}

static int sqlite_item_find(struct store_bu *u, int64_t folder_id, enum store_item_key key,
                            uint32_t uid, const char *s, struct store_item *out,
                            struct store_err *err)
{
    sqlite3_stmt *st;
    int rc;

    if (key == STORE_KEY_UID)
        rc = sqlite_prep(&u->c, &st, err,
                         "SELECT " ITEM_COLS " FROM items WHERE folder_id = ?1 AND uid = ?2", "ii",
                         folder_id, (int64_t)uid);
    else if (key == STORE_KEY_NAME)
        rc = sqlite_prep(&u->c, &st, err,
                         "SELECT " ITEM_COLS " FROM items WHERE folder_id = ?1 AND name = ?2"
                         " AND name <> ''",
                         "it", folder_id, s);
    else
        rc = sqlite_prep(&u->c, &st, err,
                         "SELECT " ITEM_COLS " FROM items WHERE folder_id = ?1 AND ext_uid = ?2"
                         " ORDER BY id LIMIT 1",
                         "it", folder_id, s);
    return rc ? rc : sqlite_item_one(u, st, out, err);
}

/* Takes the next UID of a folder and stamps the folder with modseq. */
static int sqlite_next_uid(struct store_bu *u, int64_t folder_id, int64_t modseq, int64_t *uid,
                           struct store_err *err)
{
    int rc = sqlite_int(&u->c, uid, err,
                        "UPDATE folders SET uidnext = uidnext + 1, modseq = ?2 WHERE id = ?1"
                        " RETURNING uidnext - 1",
                        "ii", folder_id, modseq);

    if (rc == STORE_ENOTFOUND)
        return store_errf(err, rc, "no such folder");
    if (rc == STORE_OK && *uid >= (int64_t)UINT32_MAX)
        return store_errf(err, STORE_EINVAL, "the folder has used up its UIDs");
    return rc;
}

static int sqlite_touch_folder(struct store_bu *u, int64_t folder_id, int64_t modseq,
                               struct store_err *err)
{
    return sqlite_run(&u->c, NULL, err, "UPDATE folders SET modseq = ?2 WHERE id = ?1", "ii",
                      folder_id, modseq);
}

static int sqlite_usage_add(struct store_bu *u, int64_t delta, struct store_err *err)
{
    return sqlite_run(&u->c, NULL, err, "UPDATE meta SET v = v + ?1 WHERE k = 'usage'", "i", delta);
}

/* Stores a body inline or as a blob; *hash is "" for inline. */
static int sqlite_body_prepare(struct store_bu *u, const struct store_item_new *in, char hash[65],
                               struct store_err *err)
{
    hash[0] = '\0';
    if (in->body_len <= u->inline_max)
        return STORE_OK;
    return sqlite_blob_put(u, in->body, in->body_len, hash, err);
}

static int sqlite_item_insert(struct store_bu *u, int64_t folder_id,
                              const struct store_item_new *in, int64_t modseq, int64_t now,
                              struct store_item *out, struct store_err *err)
{
    char hash[65];
    int64_t uid;
    int rc;

    rc = sqlite_next_uid(u, folder_id, modseq, &uid, err);
    if (rc)
        return rc;
    rc = sqlite_body_prepare(u, in, hash, err);
    if (rc)
        return rc;
    rc = sqlite_run(
        &u->c, NULL, err,
        "INSERT INTO items(folder_id, uid, modseq, flags, keywords, name, ext_uid,"
        " ctype, size, idate, mtime, body, blob, meta)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        "iiiittttiiibtb", folder_id, uid, modseq, (int64_t)in->flags,
        in->keywords ? in->keywords : "", in->name ? in->name : "", in->ext_uid ? in->ext_uid : "",
        in->ctype ? in->ctype : "", (int64_t)in->body_len, in->idate ? in->idate : now, now,
        hash[0] ? NULL : (const void *)(in->body ? in->body : ""),
        hash[0] ? (size_t)0 : in->body_len, hash[0] ? hash : NULL, in->meta, in->meta_len);
    if (rc == STORE_EEXIST)
        return store_errf(err, rc, "an item named %s already exists in the folder",
                          in->name ? in->name : "");
    if (rc)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(u->c.db);
    rc = sqlite_usage_add(u, (int64_t)in->body_len, err);
    if (rc == STORE_OK && out)
        rc = sqlite_item_get(u, id, out, err);
    return rc;
}

static int sqlite_item_body(struct store_bu *u, int64_t id, char **body, size_t *len,
                            struct store_err *err)
{
    sqlite3_stmt *st;
    char hash[65] = "";
    int64_t size = 0;
    int rc;

    rc = sqlite_prep(&u->c, &st, err, "SELECT body, blob, size FROM items WHERE id = ?1", "i", id);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        size = sqlite3_column_int64(st, 2);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
            sqlite_text(hash, sizeof(hash), st, 1);
            rc = STORE_OK;
        } else {
            int n = sqlite3_column_bytes(st, 0);
            char *b = malloc((size_t)n + 1);

            if (b == NULL) {
                rc = store_errf(err, STORE_ENOMEM, "out of memory");
            } else {
                if (n)
                    memcpy(b, sqlite3_column_blob(st, 0), (size_t)n);
                b[n] = '\0';
                *body = b;
                *len = (size_t)n;
                rc = 1; /* done: inline */
            }
        }
    } else if (rc == SQLITE_DONE) {
        rc = store_errf(err, STORE_ENOTFOUND, "no such item");
    } else {
        rc = sqlite_fail(u->c.db, rc, err);
    }
    sqlite_done(&u->c, st);
    if (rc == 1)
        return STORE_OK;
    if (rc)
        return rc;
    rc = sqlite_blob_read(u, hash, size, body, err);
    if (rc == STORE_OK)
        *len = (size_t)size;
    return rc;
}

static int sqlite_item_meta(struct store_bu *u, int64_t id, void **meta, size_t *len,
                            struct store_err *err)
{
    sqlite3_stmt *st;
    int rc;

    *meta = NULL;
    *len = 0;
    rc = sqlite_prep(&u->c, &st, err, "SELECT meta FROM items WHERE id = ?1", "i", id);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);

        rc = STORE_OK;
        if (n > 0) {
            *meta = malloc((size_t)n);
            if (*meta == NULL) {
                rc = store_errf(err, STORE_ENOMEM, "out of memory");
            } else {
                memcpy(*meta, sqlite3_column_blob(st, 0), (size_t)n);
                *len = (size_t)n;
            }
        }
    } else if (rc == SQLITE_DONE) {
        rc = store_errf(err, STORE_ENOTFOUND, "no such item");
    } else {
        rc = sqlite_fail(u->c.db, rc, err);
    }
    sqlite_done(&u->c, st);
    return rc;
}

static int sqlite_item_meta_range(struct store_bu *u, int64_t folder_id, uint32_t uid_lo,
                                  uint32_t uid_hi, store_meta_cb cb, void *ctx,
                                  struct store_err *err)
{
    sqlite3_stmt *st;
    int rc;

    rc =
        sqlite_prep(&u->c, &st, err,
                    "SELECT id, uid, meta FROM items WHERE folder_id = ?1 AND uid BETWEEN ?2 AND ?3"
                    " ORDER BY uid",
                    "iii", folder_id, (int64_t)uid_lo, (int64_t)uid_hi);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 2);
        const void *meta = n > 0 ? sqlite3_column_blob(st, 2) : NULL;

        if (cb(sqlite3_column_int64(st, 0), (uint32_t)sqlite3_column_int64(st, 1), meta,
               meta ? (size_t)n : 0, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(u->c.db, rc, err);
    sqlite_done(&u->c, st);
    return rc;
}

/* Reads what removing or rewriting an item needs to know. */
struct sqlite_item_core {
    int64_t folder_id, uid, size;
    char name[256];
    char blob[65];
};

static int sqlite_item_core(struct store_bu *u, int64_t id, struct sqlite_item_core *c,
                            struct store_err *err)
{
    sqlite3_stmt *st;
    int rc;

    rc = sqlite_prep(&u->c, &st, err,
                     "SELECT folder_id, uid, size, name, blob FROM items WHERE id = ?1", "i", id);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        c->folder_id = sqlite3_column_int64(st, 0);
        c->uid = sqlite3_column_int64(st, 1);
        c->size = sqlite3_column_int64(st, 2);
        sqlite_text(c->name, sizeof(c->name), st, 3);
        sqlite_text(c->blob, sizeof(c->blob), st, 4);
        rc = STORE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = store_errf(err, STORE_ENOTFOUND, "no such item");
    } else {
        rc = sqlite_fail(u->c.db, rc, err);
    }
    sqlite_done(&u->c, st);
    return rc;
}

static int sqlite_item_replace(struct store_bu *u, int64_t id, const struct store_item_new *in,
                               int64_t modseq, int64_t now, struct store_err *err)
{
    struct sqlite_item_core c;
    char hash[65];
    int rc;

    rc = sqlite_item_core(u, id, &c, err);
    if (rc)
        return rc;
    rc = sqlite_body_prepare(u, in, hash, err);
    if (rc)
        return rc;
    rc = sqlite_run(&u->c, NULL, err,
                    "UPDATE items SET body = ?2, blob = ?3, size = ?4, modseq = ?5, mtime = ?6,"
                    " ctype = coalesce(?7, ctype), ext_uid = coalesce(?8, ext_uid),"
                    " meta = CASE WHEN ?9 THEN ?10 ELSE meta END WHERE id = ?1",
                    "ibtiiittib", id, hash[0] ? NULL : (const void *)(in->body ? in->body : ""),
                    hash[0] ? (size_t)0 : in->body_len, hash[0] ? hash : NULL,
                    (int64_t)in->body_len, modseq, now, in->ctype, in->ext_uid,
                    (int64_t)(in->meta != NULL), in->meta, in->meta_len);
    if (rc == STORE_OK)
        rc = sqlite_usage_add(u, (int64_t)in->body_len - c.size, err);
    if (rc == STORE_OK)
        rc = sqlite_touch_folder(u, c.folder_id, modseq, err);
    if (rc == STORE_OK && c.blob[0])
        rc = sqlite_blob_note(u, c.blob, 1);
    return rc;
}

static int sqlite_item_set_flags(struct store_bu *u, int64_t id, uint32_t flags,
                                 const char *keywords, int64_t modseq, struct store_err *err)
{
    int64_t folder_id;
    int rc = sqlite_int(&u->c, &folder_id, err,
                        "UPDATE items SET flags = ?2, keywords = ?3, modseq = ?4 WHERE id = ?1"
                        " RETURNING folder_id",
                        "iiti", id, (int64_t)flags, keywords ? keywords : "", modseq);

    if (rc == STORE_ENOTFOUND)
        return store_errf(err, rc, "no such item");
    return rc ? rc : sqlite_touch_folder(u, folder_id, modseq, err);
}

static int sqlite_tomb(struct store_bu *u, int64_t id, const struct sqlite_item_core *c,
                       int64_t modseq, struct store_err *err)
{
    int rc = sqlite_run(&u->c, NULL, err,
                        "INSERT INTO item_tombs(modseq, folder_id, item_id, uid, name)"
                        " VALUES(?1, ?2, ?3, ?4, ?5)",
                        "iiiit", modseq, c->folder_id, id, c->uid, c->name);

    return rc ? rc : sqlite_touch_folder(u, c->folder_id, modseq, err);
}

/* ------------------------------------------------------------------------------------- */
/* The occurrence index (see SQLITE_RANGE_SCHEMA)                                          */

/* Removes an item's ranges and its index row. */
static int sqlite_ranges_drop(struct store_bu *u, int64_t item_id, struct store_err *err)
{
    int64_t n = 0;
    int rc =
        sqlite_int(&u->c, &n, err, "SELECT n FROM item_rindex WHERE item_id = ?1", "i", item_id);

    if (rc == STORE_ENOTFOUND)
        return STORE_OK;
    for (int64_t i = 0; rc == STORE_OK && i < n; i++)
        rc = sqlite_run(&u->c, NULL, err, "DELETE FROM item_ranges WHERE rid = ?1", "i",
                        item_id * SQLITE_RANGE_MAX + i);
    if (rc == STORE_OK)
        rc = sqlite_run(&u->c, NULL, err, "DELETE FROM item_rindex WHERE item_id = ?1", "i",
                        item_id);
    return rc;
}

static int sqlite_ranges_set(struct store_bu *u, int64_t item_id, const struct store_range *r,
                             size_t n, int64_t complete_until, struct store_err *err)
{
    int64_t folder = 0;
    int rc;

    if (n > SQLITE_RANGE_MAX)
        return store_errf(err, STORE_EINVAL, "more than %d ranges for one item", SQLITE_RANGE_MAX);
    rc = sqlite_int(&u->c, &folder, err, "SELECT folder_id FROM items WHERE id = ?1", "i", item_id);
    if (rc == STORE_OK)
        rc = sqlite_ranges_drop(u, item_id, err);
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        rc = sqlite_run(&u->c, NULL, err,
                        "INSERT INTO item_ranges(rid, f0, f1, t0, t1, item_id, rstart, rend)"
                        " VALUES(?1, ?2, ?2, ?3, ?4, ?5, ?3, ?4)",
                        "iiiii", item_id * SQLITE_RANGE_MAX + (int64_t)i, folder, r[i].start,
                        r[i].end, item_id);
    if (rc == STORE_OK)
        rc = sqlite_run(&u->c, NULL, err,
                        "INSERT INTO item_rindex(item_id, folder_id, n, complete_until)"
                        " VALUES(?1, ?2, ?3, ?4)",
                        "iiii", item_id, folder, (int64_t)n, complete_until);
    return rc;
}

static int sqlite_ranges_get(struct store_bu *u, int64_t item_id, struct store_range **r, size_t *n,
                             int64_t *complete_until, struct store_err *err)
{
    sqlite3_stmt *st;
    int64_t count = 0;
    int rc;

    *r = NULL;
    *n = 0;
    *complete_until = 0;
    rc = sqlite_prep(&u->c, &st, err,
                     "SELECT complete_until, n FROM item_rindex WHERE item_id = ?1", "i", item_id);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *complete_until = sqlite3_column_int64(st, 0);
        count = sqlite3_column_int64(st, 1);
    }
    sqlite_done(&u->c, st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? STORE_OK : sqlite_fail(u->c.db, rc, err); /* never indexed */
    if (count <= 0 || count > SQLITE_RANGE_MAX)
        return STORE_OK;
    if (!(*r = malloc((size_t)count * sizeof(**r))))
        return store_errf(err, STORE_ENOMEM, "out of memory");
    /* One lookup per range by row id (the R*Tree has no range scan on row ids), through
     * one prepared statement. */
    rc = sqlite_prep(&u->c, &st, err, "SELECT rstart, rend FROM item_ranges WHERE rid = ?1", "");
    for (int64_t i = 0; rc == STORE_OK && i < count; i++) {
        int s;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, item_id * SQLITE_RANGE_MAX + i);
        s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            (*r)[*n].start = sqlite3_column_int64(st, 0);
            (*r)[*n].end = sqlite3_column_int64(st, 1);
            (*n)++;
        } else if (s != SQLITE_DONE) {
            rc = sqlite_fail(u->c.db, s, err);
        }
    }
    if (st)
        sqlite_done(&u->c, st);
    if (rc) {
        free(*r);
        *r = NULL;
        *n = 0;
    }
    return rc;
}

static int sqlite_ranges_until(struct store_bu *u, int64_t item_id, int64_t *complete_until,
                               struct store_err *err)
{
    return sqlite_int(&u->c, complete_until, err,
                      "SELECT complete_until FROM item_rindex WHERE item_id = ?1", "i", item_id);
}

/* A move carries the ranges: their folder coordinate follows the item. */
static int sqlite_ranges_move(struct store_bu *u, int64_t item_id, int64_t folder,
                              struct store_err *err)
{
    int64_t n = 0;
    int rc =
        sqlite_int(&u->c, &n, err, "SELECT n FROM item_rindex WHERE item_id = ?1", "i", item_id);

    if (rc == STORE_ENOTFOUND)
        return STORE_OK;
    for (int64_t i = 0; rc == STORE_OK && i < n; i++)
        rc = sqlite_run(&u->c, NULL, err, "UPDATE item_ranges SET f0 = ?2, f1 = ?2 WHERE rid = ?1",
                        "ii", item_id * SQLITE_RANGE_MAX + i, folder);
    if (rc == STORE_OK)
        rc =
            sqlite_run(&u->c, NULL, err, "UPDATE item_rindex SET folder_id = ?2 WHERE item_id = ?1",
                       "ii", item_id, folder);
    return rc;
}

static int sqlite_ranges_copy(struct store_bu *u, int64_t from, int64_t to, struct store_err *err)
{
    struct store_range *r = NULL;
    size_t n = 0;
    int64_t until = 0, has = 0;
    int rc = sqlite_int(&u->c, &has, err, "SELECT count(*) FROM item_rindex WHERE item_id = ?1",
                        "i", from);

    if (rc || !has)
        return rc;
    rc = sqlite_ranges_get(u, from, &r, &n, &until, err);
    if (rc == STORE_OK)
        rc = sqlite_ranges_set(u, to, r, n, until, err);
    free(r);
    return rc;
}

struct sqlite_ids {
    int64_t *v;
    size_t n, cap;
};

static int sqlite_ids_push(struct sqlite_ids *ids, int64_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int64_t *v = realloc(ids->v, cap * sizeof(*v));
        if (!v)
            return -1;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

static int sqlite_range_query(struct store_bu *u, int64_t folder_id, int64_t start, int64_t end,
                              store_item_cb cb, void *ctx, struct store_err *err)
{
    struct sqlite_ids ids = {0};
    sqlite3_stmt *st;
    int rc;

    /* The tree's float bounds are rounded outwards, so its test admits every true match;
     * the exact columns then decide. A zero-length range matches at start itself. */
    rc = sqlite_prep(&u->c, &st, err,
                     "SELECT item_id FROM item_ranges WHERE f0 <= ?1 AND f1 >= ?1"
                     " AND t0 < ?3 AND t1 >= ?2 AND rstart < ?3"
                     " AND (rend > ?2 OR (rend = rstart AND rstart >= ?2))"
                     " UNION SELECT item_id FROM item_rindex"
                     " WHERE folder_id = ?1 AND complete_until < ?3 ORDER BY 1",
                     "iii", folder_id, start, end);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (sqlite_ids_push(&ids, sqlite3_column_int64(st, 0)) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(u->c.db, rc, err);
    sqlite_done(&u->c, st);
    st = NULL;
    /* One statement, reset between items, reads each with its index state: thousands of
     * matches cost thousands of lookups, not thousands of compilations. It is reset before
     * every callback, so callbacks run with no statement active and may read or write. */
    if (rc == STORE_OK && ids.n)
        rc = sqlite_prep(&u->c, &st, err,
                         "SELECT " ITEM_COLS ", coalesce((SELECT complete_until FROM item_rindex"
                         " WHERE item_id = items.id), 0) FROM items WHERE id = ?1",
                         "i", (int64_t)0);
    for (size_t i = 0; rc == STORE_OK && i < ids.n; i++) {
        struct store_item it;
        int step;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids.v[i]);
        step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            continue; /* removed meanwhile (by an earlier callback) */
        if (step != SQLITE_ROW) {
            rc = sqlite_fail(u->c.db, step, err);
            break;
        }
        sqlite_item_row(st, 0, &it);
        it.index_until = sqlite3_column_int64(st, 13);
        sqlite3_reset(st);
        if (it.folder_id == folder_id && cb(&it, ctx))
            break;
    }
    sqlite_done(&u->c, st);
    free(ids.v);
    return rc;
}

static int sqlite_item_move(struct store_bu *u, int64_t id, int64_t to_folder, int64_t modseq,
                            struct store_err *err)
{
    struct sqlite_item_core c;
    int64_t uid;
    int rc;

    rc = sqlite_item_core(u, id, &c, err);
    if (rc == STORE_OK)
        rc = sqlite_next_uid(u, to_folder, modseq, &uid, err);
    if (rc)
        return rc;
    rc = sqlite_run(&u->c, NULL, err,
                    "UPDATE items SET folder_id = ?2, uid = ?3, modseq = ?4 WHERE id = ?1", "iiii",
                    id, to_folder, uid, modseq);
    if (rc == STORE_EEXIST)
        return store_errf(err, rc, "an item named %s already exists in the target folder", c.name);
    if (rc == STORE_OK)
        rc = sqlite_ranges_move(u, id, to_folder, err);
    return rc ? rc : sqlite_tomb(u, id, &c, modseq, err);
}

static int sqlite_item_copy(struct store_bu *u, int64_t id, int64_t to_folder, int64_t modseq,
                            int64_t now, int64_t *new_id, struct store_err *err)
{
    struct sqlite_item_core c;
    int64_t uid;
    int rc;

    rc = sqlite_item_core(u, id, &c, err);
    if (rc == STORE_OK)
        rc = sqlite_next_uid(u, to_folder, modseq, &uid, err);
    if (rc)
        return rc;
    /* A blob is shared by reference: copies cost no disk. */
    rc = sqlite_run(&u->c, NULL, err,
                    "INSERT INTO items(folder_id, uid, modseq, flags, keywords, name, ext_uid,"
                    " ctype, size, idate, mtime, body, blob, meta)"
                    " SELECT ?2, ?3, ?4, flags, keywords, name, ext_uid, ctype, size, idate, ?5,"
                    " body, blob, meta FROM items WHERE id = ?1",
                    "iiiii", id, to_folder, uid, modseq, now);
    if (rc == STORE_EEXIST)
        return store_errf(err, rc, "an item named %s already exists in the target folder", c.name);
    if (rc)
        return rc;
    *new_id = sqlite3_last_insert_rowid(u->c.db);
    rc = sqlite_ranges_copy(u, id, *new_id, err);
    return rc ? rc : sqlite_usage_add(u, c.size, err);
}

static int sqlite_item_delete(struct store_bu *u, int64_t id, int64_t modseq, struct store_err *err)
{
    struct sqlite_item_core c;
    int rc;

    rc = sqlite_item_core(u, id, &c, err);
    if (rc == STORE_OK)
        rc = sqlite_ranges_drop(u, id, err);
    if (rc == STORE_OK)
        rc = sqlite_run(&u->c, NULL, err, "DELETE FROM items WHERE id = ?1", "i", id);
    if (rc == STORE_OK)
        rc = sqlite_usage_add(u, -c.size, err);
    if (rc == STORE_OK)
        rc = sqlite_tomb(u, id, &c, modseq, err);
    if (rc == STORE_OK && c.blob[0])
        rc = sqlite_blob_note(u, c.blob, 1);
    return rc;
}

/* Listings read a chunk of rows into memory, close the statement, and only then run the
 * callbacks. Callbacks may write to the same store (a flag change while iterating), and a
 * statement stepping over an index that holds the changed column could then meet a row
 * twice. Chunks continue from the last UID seen (keyset pagination), so memory stays
 * bounded whatever the folder's size. */
#define SQLITE_LIST_CHUNK 512

static int sqlite_item_list(struct store_bu *u, int64_t folder_id, uint32_t lo, uint32_t hi,
                            store_item_cb cb, void *ctx, struct store_err *err)
{
    struct store_item *chunk = malloc(SQLITE_LIST_CHUNK * sizeof(*chunk));
    int64_t next = lo;
    int rc = STORE_OK, stop = 0;

    if (!chunk)
        return store_errf(err, STORE_ENOMEM, "out of memory");
    while (rc == STORE_OK && !stop && next <= (int64_t)hi) {
        sqlite3_stmt *st;
        size_t n = 0;
        rc = sqlite_prep(&u->c, &st, err,
                         "SELECT " ITEM_COLS " FROM items WHERE folder_id = ?1"
                         " AND uid BETWEEN ?2 AND ?3 ORDER BY uid LIMIT ?4",
                         "iiii", folder_id, next, (int64_t)hi, (int64_t)SQLITE_LIST_CHUNK);
        if (rc)
            break;
        while (n < SQLITE_LIST_CHUNK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            sqlite_item_row(st, 0, &chunk[n++]);
        rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : sqlite_fail(u->c.db, rc, err);
        sqlite_done(&u->c, st);
        for (size_t i = 0; rc == STORE_OK && i < n && !stop; i++)
            stop = cb(&chunk[i], ctx) != 0;
        if (n < SQLITE_LIST_CHUNK)
            break;
        next = (int64_t)chunk[n - 1].uid + 1;
    }
    free(chunk);
    return rc;
}

struct sqlite_brief_row {
    struct store_item_brief b;
    char kw[512];
};

static int sqlite_item_list_brief(struct store_bu *u, int64_t folder_id, store_brief_cb cb,
                                  void *ctx, struct store_err *err)
{
    struct sqlite_brief_row *chunk = malloc(SQLITE_LIST_CHUNK * sizeof(*chunk));
    int64_t next = 0;
    int rc = STORE_OK, stop = 0;

    if (!chunk)
        return store_errf(err, STORE_ENOMEM, "out of memory");
    while (rc == STORE_OK && !stop) {
        sqlite3_stmt *st;
        size_t n = 0;
        /* Answered from the covering index items_view alone. */
        rc = sqlite_prep(&u->c, &st, err,
                         "SELECT id, uid, flags, modseq, size, idate, keywords FROM items"
                         " WHERE folder_id = ?1 AND uid >= ?2 ORDER BY uid LIMIT ?3",
                         "iii", folder_id, next, (int64_t)SQLITE_LIST_CHUNK);
        if (rc)
            break;
        while (n < SQLITE_LIST_CHUNK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct sqlite_brief_row *r = &chunk[n++];
            r->b.id = sqlite3_column_int64(st, 0);
            r->b.uid = (uint32_t)sqlite3_column_int64(st, 1);
            r->b.flags = (uint32_t)sqlite3_column_int64(st, 2);
            r->b.modseq = sqlite3_column_int64(st, 3);
            r->b.size = sqlite3_column_int64(st, 4);
            r->b.idate = sqlite3_column_int64(st, 5);
            sqlite_text(r->kw, sizeof(r->kw), st, 6);
            r->b.keywords = r->kw;
        }
        rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : sqlite_fail(u->c.db, rc, err);
        sqlite_done(&u->c, st);
        for (size_t i = 0; rc == STORE_OK && i < n && !stop; i++)
            stop = cb(&chunk[i].b, ctx) != 0;
        if (n < SQLITE_LIST_CHUNK)
            break;
        next = (int64_t)chunk[n - 1].b.uid + 1;
    }
    free(chunk);
    return rc;
}

static int sqlite_changes_since(struct store_bu *u, int64_t folder_id, int64_t since,
                                store_change_cb cb, void *ctx, struct store_err *err)
{
    struct store_item it;
    sqlite3_stmt *st;
    int rc;

    /* Both halves walk a (folder_id, modseq) index; at equal MODSEQ a removal comes first
     * so an item moved away and back within one transaction ends up present. */
    rc = sqlite_prep(&u->c, &st, err,
                     "SELECT 0 AS removed, " ITEM_COLS " FROM items"
                     " WHERE folder_id = ?1 AND modseq > ?2"
                     " UNION ALL SELECT 1, item_id, folder_id, uid, modseq, 0, '', name, '', '',"
                     " 0, 0, 0, 0 FROM item_tombs WHERE folder_id = ?1 AND modseq > ?2 AND ?2 > 0"
                     " ORDER BY 5, removed DESC, 2",
                     "ii", folder_id, since);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite_item_row(st, 1, &it);
        if (cb(&it, sqlite3_column_int(st, 0), ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(u->c.db, rc, err);
    sqlite_done(&u->c, st);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Engine state                                                                           */

static int sqlite_state_put(struct store_bu *u, const char *ns, const char *key, const void *val,
                            size_t len, struct store_err *err)
{
    return sqlite_run(&u->c, NULL, err,
                      "INSERT INTO state(ns, k, v) VALUES(?1, ?2, ?3)"
                      " ON CONFLICT(ns, k) DO UPDATE SET v = excluded.v",
                      "ttb", ns, key, val ? val : (const void *)"", len);
}

static int sqlite_state_get(struct store_bu *u, const char *ns, const char *key, void **val,
                            size_t *len, struct store_err *err)
{
    sqlite3_stmt *st;
    int rc =
        sqlite_prep(&u->c, &st, err, "SELECT v FROM state WHERE ns = ?1 AND k = ?2", "tt", ns, key);

    if (rc == STORE_OK && (rc = sqlite_take_value(&u->c, st, val, len, err)) == STORE_ENOTFOUND)
        store_errf(err, rc, "no state %s/%s", ns, key);
    return rc;
}

static int sqlite_state_del(struct store_bu *u, const char *ns, const char *key,
                            struct store_err *err)
{
    int n = 0;
    int rc =
        sqlite_run(&u->c, &n, err, "DELETE FROM state WHERE ns = ?1 AND k = ?2", "tt", ns, key);

    if (rc == STORE_OK && n == 0)
        return store_errf(err, STORE_ENOTFOUND, "no state %s/%s", ns, key);
    return rc;
}

static int sqlite_state_list(struct store_bu *u, const char *ns, store_state_cb cb, void *ctx,
                             struct store_err *err)
{
    sqlite3_stmt *st;
    int rc;

    rc = sqlite_prep(&u->c, &st, err, "SELECT k, v FROM state WHERE ns = ?1 ORDER BY k", "t", ns);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);

        if (cb((const char *)sqlite3_column_text(st, 0), v, n, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    rc = rc == SQLITE_DONE ? STORE_OK : sqlite_fail(u->c.db, rc, err);
    sqlite_done(&u->c, st);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Checking                                                                               */

static int sqlite_check_blobs(struct store_bu *u, char *out, size_t outlen)
{
    sqlite3_stmt *st;
    int rc, bad = 0;

    if (sqlite_prep(&u->c, &st, NULL,
                    "SELECT DISTINCT blob, size FROM items WHERE blob IS NOT NULL", "") != 0) {
        snprintf(out, outlen, "cannot list blobs: %s", sqlite3_errmsg(u->c.db));
        return STORE_EIO;
    }
    while (!bad && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        char path[PATH_MAX + 80];
        struct stat sb;
        const char *h = (const char *)sqlite3_column_text(st, 0);

        snprintf(path, sizeof(path), "%s/%s", u->blobdir, h ? h : "");
        if (stat(path, &sb) != 0 || sb.st_size != sqlite3_column_int64(st, 1)) {
            snprintf(out, outlen, "blob %.64s is missing or has the wrong size", h ? h : "");
            bad = 1;
        }
    }
    sqlite_done(&u->c, st);
    return bad ? STORE_EIO : STORE_OK;
}

static int sqlite_check(struct store_bu *u, char *out, size_t outlen)
{
    static const struct {
        const char *sql, *msg;
    } rules[] = {
        {"SELECT (SELECT v FROM meta WHERE k = 'usage') <> (SELECT coalesce(sum(size), 0)"
         " FROM items)",
         "recorded usage differs from the sum of item sizes"},
        {"SELECT EXISTS(SELECT 1 FROM folders f WHERE f.uidnext <= (SELECT max(uid) FROM items"
         " WHERE folder_id = f.id))",
         "a folder's uidnext is not above its highest UID"},
        {"SELECT (SELECT v FROM meta WHERE k = 'modseq') < max("
         "(SELECT coalesce(max(modseq), 0) FROM items),"
         " (SELECT coalesce(max(modseq), 0) FROM item_tombs),"
         " (SELECT coalesce(max(modseq), 0) FROM folders))",
         "a change carries a MODSEQ above the counter"},
        {"SELECT EXISTS(SELECT 1 FROM items i WHERE NOT EXISTS(SELECT 1 FROM folders f"
         " WHERE f.id = i.folder_id))",
         "an item belongs to no folder"},
    };
    sqlite3_stmt *st;
    int rc;

    if (sqlite_prep(&u->c, &st, NULL, "PRAGMA integrity_check", "") != 0) {
        snprintf(out, outlen, "cannot check: %s", sqlite3_errmsg(u->c.db));
        return STORE_EIO;
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        snprintf(out, outlen, "integrity check failed: %s", sqlite3_errmsg(u->c.db));
        sqlite_done(&u->c, st);
        return STORE_EIO;
    }
    snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite_done(&u->c, st);
    if (strcmp(out, "ok") != 0)
        return STORE_EIO;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        int64_t v = 0;

        if (sqlite_int(&u->c, &v, NULL, rules[i].sql, "") != STORE_OK || v != 0) {
            snprintf(out, outlen, "%s", rules[i].msg);
            return STORE_EIO;
        }
    }
    rc = sqlite_check_blobs(u, out, outlen);
    if (rc == STORE_OK)
        snprintf(out, outlen, "ok");
    return rc;
}

const struct store_backend store_sqlite_backend = {
    .name = "sqlite",
    .dir_open = sqlite_dir_open,
    .dir_close = sqlite_dir_close,
    .domain_insert = sqlite_domain_insert,
    .domain_get = sqlite_domain_get,
    .domain_list = sqlite_domain_list,
    .domain_delete = sqlite_domain_delete,
    .domain_set_flag = sqlite_domain_set_flag,
    .setting_put = sqlite_setting_put,
    .setting_get = sqlite_setting_get,
    .setting_del = sqlite_setting_del,
    .domain_usage = sqlite_domain_usage,
    .account_insert = sqlite_account_insert,
    .account_get = sqlite_account_get,
    .account_list = sqlite_account_list,
    .account_update = sqlite_account_update,
    .account_delete = sqlite_account_delete,
    .alias_insert = sqlite_alias_insert,
    .alias_delete = sqlite_alias_delete,
    .alias_list = sqlite_alias_list,
    .user_open = sqlite_user_open,
    .user_close = sqlite_user_close,
    .user_remove = sqlite_user_remove,
    .txn_begin = sqlite_txn_begin,
    .txn_commit = sqlite_txn_commit,
    .txn_rollback = sqlite_txn_rollback,
    .sp_begin = sqlite_sp_begin,
    .sp_release = sqlite_sp_release,
    .sp_rollback = sqlite_sp_rollback,
    .modseq_next = sqlite_modseq_next,
    .counters = sqlite_counters,
    .folder_list = sqlite_folder_list,
    .folder_get = sqlite_folder_get,
    .folder_find = sqlite_folder_find,
    .folder_by_role = sqlite_folder_by_role,
    .folder_insert = sqlite_folder_insert,
    .folder_rename = sqlite_folder_rename,
    .folder_delete = sqlite_folder_delete,
    .folder_set = sqlite_folder_set,
    .folder_changes_since = sqlite_folder_changes_since,
    .item_insert = sqlite_item_insert,
    .item_get = sqlite_item_get,
    .item_find = sqlite_item_find,
    .item_body = sqlite_item_body,
    .item_meta = sqlite_item_meta,
    .item_meta_range = sqlite_item_meta_range,
    .item_replace = sqlite_item_replace,
    .item_set_flags = sqlite_item_set_flags,
    .item_move = sqlite_item_move,
    .item_copy = sqlite_item_copy,
    .item_delete = sqlite_item_delete,
    .item_list = sqlite_item_list,
    .item_list_brief = sqlite_item_list_brief,
    .changes_since = sqlite_changes_since,
    .ranges_set = sqlite_ranges_set,
    .ranges_get = sqlite_ranges_get,
    .ranges_until = sqlite_ranges_until,
    .range_query = sqlite_range_query,
    .state_put = sqlite_state_put,
    .state_get = sqlite_state_get,
    .state_del = sqlite_state_del,
    .state_list = sqlite_state_list,
    .check = sqlite_check,
};
