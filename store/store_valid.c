/*
 * store_valid.c — the input rules every way into the directory enforces (CLI, future admin
 * API, migration), taken from what the hosting product tells its customers:
 *
 *   - usernames: letters, digits, '.', '-', '_'; start with a letter; case does not matter
 *   - passwords: 8+ characters with upper case, lower case, a digit and a symbol
 *   - quotas: 0.1–50 GB for Basic, 0.1–200 GB for Enhanced
 *
 * plus DNS rules for domain names, the virtual-host label mapping, size parsing and the
 * crypt(3) password hashing. Each check fills err with a message that names the rule that
 * failed, because operators see those messages verbatim.
 */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "store/store.h"

#define LOCALPART_MAX 64
#define DOMAIN_MAX    253
#define DNS_LABEL_MAX 63
#define PASSWORD_MIN  8
#define PASSWORD_MAX  128

static int valid_fail(struct store_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int valid_fail(struct store_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = STORE_EINVAL;
    }
    return STORE_EINVAL;
}

int store_valid_localpart(const char *lp, struct store_err *err)
{
    size_t n = lp ? strlen(lp) : 0;

    if (n == 0)
        return valid_fail(err, "username is empty");
    if (n > LOCALPART_MAX)
        return valid_fail(err, "username is longer than %d characters", LOCALPART_MAX);
    if (!isalpha((unsigned char)lp[0]) || (unsigned char)lp[0] > 127)
        return valid_fail(err, "username must start with a letter");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)lp[i];
        if (c > 127 || !(isalnum(c) || c == '.' || c == '-' || c == '_'))
            return valid_fail(err,
                              "username may contain only letters, digits, '.', '-' and '_' "
                              "(found '%s')",
                              c >= 32 && c < 127 ? (char[]){(char)c, 0} : "\\x??");
        if (c == '.' && lp[i + 1] == '.')
            return valid_fail(err, "username must not contain '..'");
    }
    if (lp[n - 1] == '.')
        return valid_fail(err, "username must not end with '.'");
    return STORE_OK;
}

/* One DNS label: 1–63 of [a-z0-9-], not starting or ending with '-'. "xn--" IDN labels are
 * plain ASCII and pass as they are. */
static int valid_dns_label(const char *s, size_t n, struct store_err *err)
{
    if (n == 0)
        return valid_fail(err, "domain name has an empty label");
    if (n > DNS_LABEL_MAX)
        return valid_fail(err, "domain name label is longer than %d characters", DNS_LABEL_MAX);
    if (s[0] == '-' || s[n - 1] == '-')
        return valid_fail(err, "domain name label must not start or end with '-'");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 127)
            return valid_fail(err, "domain name must be ASCII: give an IDN in its punycode "
                                   "(xn--) form");
        if (!(isalnum(c) || c == '-'))
            return valid_fail(err, "domain name may contain only letters, digits, '-' and '.'");
    }
    return STORE_OK;
}

int store_valid_domain(const char *name, struct store_err *err)
{
    size_t n = name ? strlen(name) : 0;
    const char *p, *dot, *tld = NULL;
    int labels = 0, rc;

    if (n == 0)
        return valid_fail(err, "domain name is empty");
    if (n > DOMAIN_MAX)
        return valid_fail(err, "domain name is longer than %d characters", DOMAIN_MAX);
    for (p = name;; p = dot + 1) {
        dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if ((rc = valid_dns_label(p, len, err)) != STORE_OK)
            return rc;
        labels++;
        tld = p;
        if (!dot)
            break;
    }
    if (labels < 2)
        return valid_fail(err, "domain name needs at least two labels (like example.com)");
    for (p = tld; *p; p++)
        if (!isdigit((unsigned char)*p))
            return STORE_OK;
    return valid_fail(err, "domain name's top-level label must not be all digits");
}

int store_valid_address(const char *addr, struct store_err *err)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    char lp[LOCALPART_MAX + 2];
    size_t n;
    int rc;

    if (!at)
        return valid_fail(err, "address must have the form user@domain");
    n = (size_t)(at - addr);
    if (n > LOCALPART_MAX)
        return valid_fail(err, "username is longer than %d characters", LOCALPART_MAX);
    memcpy(lp, addr, n);
    lp[n] = '\0';
    if ((rc = store_valid_localpart(lp, err)) != STORE_OK)
        return rc;
    return store_valid_domain(at + 1, err);
}

int store_valid_password(const char *pw, struct store_err *err)
{
    size_t n = pw ? strlen(pw) : 0;
    int upper = 0, lower = 0, digit = 0, symbol = 0;

    if (n < PASSWORD_MIN)
        return valid_fail(err, "password must be at least %d characters", PASSWORD_MIN);
    if (n > PASSWORD_MAX)
        return valid_fail(err, "password must be at most %d characters", PASSWORD_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pw[i];
        if (c < 32 || c == 127)
            return valid_fail(err, "password must not contain control characters");
        if (isupper(c))
            upper = 1;
        else if (islower(c))
            lower = 1;
        else if (isdigit(c))
            digit = 1;
        else
            symbol = 1; /* punctuation, space and non-ASCII all count as symbols */
    }
    if (!upper)
        return valid_fail(err, "password must contain an upper-case letter");
    if (!lower)
        return valid_fail(err, "password must contain a lower-case letter");
    if (!digit)
        return valid_fail(err, "password must contain a digit");
    if (!symbol)
        return valid_fail(err, "password must contain a symbol (like !@#$%%^&*)");
    return STORE_OK;
}

int store_valid_quota(enum store_acct_type type, int64_t bytes, struct store_err *err)
{
    int64_t max = type == STORE_ENHANCED ? STORE_QUOTA_MAX_ENHANCED : STORE_QUOTA_MAX_BASIC;

    if (type != STORE_BASIC && type != STORE_ENHANCED)
        return valid_fail(err, "mailbox type must be basic or enhanced");
    if (bytes < STORE_QUOTA_MIN || bytes > max)
        return valid_fail(err, "quota for a %s mailbox must be between 0.1 GB and %lld GB",
                          store_acct_type_name(type), (long long)(max / 1000000000LL));
    return STORE_OK;
}

/* Decimal units, as the customer documents speak of GB; binary ones with "i". */
int64_t store_parse_size(const char *s)
{
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1e3},
        {"kb", 1e3},
        {"m", 1e6},
        {"mb", 1e6},
        {"g", 1e9},
        {"gb", 1e9},
        {"t", 1e12},
        {"tb", 1e12},
        {"kib", 1024.0},
        {"mib", 1048576.0},
        {"gib", 1073741824.0},
        {"tib", 1099511627776.0},
    };
    char *end;
    double v;

    if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) /* !(v >= 0) also catches NaN */
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            double r = v * units[i].mult;
            if (!(r <= 9.2e18)) /* also infinity */
                return -1;
            return (int64_t)(r + 0.5);
        }
    }
    return -1;
}

int store_domain_label(const char *domain, char *out, size_t outlen)
{
    size_t o = 0;

    if (!domain || !out || outlen == 0)
        return STORE_EINVAL;
    for (const char *p = domain; *p; p++) {
        size_t need = *p == '.' ? 2 : 1;
        if (o + need >= outlen)
            return STORE_EINVAL;
        if (*p == '.') {
            out[o++] = '-';
            out[o++] = '-';
        } else {
            out[o++] = (char)tolower((unsigned char)*p);
        }
    }
    out[o] = '\0';
    return STORE_OK;
}

int store_password_hash(const char *password, char *out, size_t outlen, struct store_err *err)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = NULL;
    int rc = STORE_EIO;

    /* NULL entropy: libxcrypt reads the kernel's random source itself. */
    if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt))) {
        valid_fail(err, "cannot make a password salt: %s", strerror(errno));
        goto err;
    }
    if (!(cd = calloc(1, sizeof(*cd)))) {
        rc = STORE_ENOMEM;
        goto err;
    }
    const char *h = crypt_rn(password, salt, cd, sizeof(*cd));
    if (!h || h[0] == '*' || strlen(h) >= outlen) {
        valid_fail(err, "cannot hash the password");
        goto err;
    }
    memcpy(out, h, strlen(h) + 1);
    rc = STORE_OK;
err:
    if (cd) {
        OPENSSL_cleanse(cd, sizeof(*cd));
        free(cd);
    }
    if (rc != STORE_OK && err)
        err->code = rc;
    return rc;
}

int store_password_check(const char *password, const char *hash)
{
    struct crypt_data *cd;
    int ok = 0;

    if (!password || !hash || !*hash || hash[0] == '*' || hash[0] == '!')
        return 0;
    if (!(cd = calloc(1, sizeof(*cd))))
        return 0;
    const char *h = crypt_rn(password, hash, cd, sizeof(*cd));
    size_t n = strlen(hash);
    /* The hash string is not secret, but the computed one is compared in constant time so
     * timing tells nothing about how much of it matched. */
    if (h && h[0] != '*' && strlen(h) == n)
        ok = CRYPTO_memcmp(h, hash, n) == 0;
    OPENSSL_cleanse(cd, sizeof(*cd));
    free(cd);
    return ok;
}

const char *store_acct_type_name(enum store_acct_type t)
{
    return t == STORE_ENHANCED ? "enhanced" : t == STORE_BASIC ? "basic" : "unknown";
}

int store_acct_type_parse(const char *name, enum store_acct_type *out)
{
    if (name && strcasecmp(name, "basic") == 0)
        *out = STORE_BASIC;
    else if (name && strcasecmp(name, "enhanced") == 0)
        *out = STORE_ENHANCED;
    else
        return STORE_EINVAL;
    return STORE_OK;
}

const char *store_class_name(enum store_class c)
{
    switch (c) {
    case STORE_CLASS_MAIL:
        return "mail";
    case STORE_CLASS_CALENDAR:
        return "calendar";
    case STORE_CLASS_CONTACTS:
        return "contacts";
    case STORE_CLASS_TASKS:
        return "tasks";
    case STORE_CLASS_NOTES:
        return "notes";
    }
    return "unknown";
}

const char *store_role_name(enum store_role r)
{
    static const char *const names[] = {
        [STORE_ROLE_NONE] = "",
        [STORE_ROLE_INBOX] = "inbox",
        [STORE_ROLE_DRAFTS] = "drafts",
        [STORE_ROLE_SENT] = "sent",
        [STORE_ROLE_JUNK] = "junk",
        [STORE_ROLE_TRASH] = "trash",
        [STORE_ROLE_ARCHIVE] = "archive",
        [STORE_ROLE_CALENDAR] = "calendar",
        [STORE_ROLE_CONTACTS] = "contacts",
        [STORE_ROLE_TASKS] = "tasks",
        [STORE_ROLE_NOTES] = "notes",
    };
    if ((unsigned)r < sizeof(names) / sizeof(names[0]))
        return names[r];
    return "";
}
