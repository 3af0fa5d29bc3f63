/*
 * cli.c — the admin command line: `polaris [-c FILE] [--json] NOUN VERB ARGS...` for
 * domains, users and aliases.
 *
 * Commands live in one table (noun, verb, handler, synopsis, argument counts, allowed
 * options); one small option parser serves them all. Every command opens the store and
 * nothing else: no certificates, no ports. Output is either human text or, with --json,
 * one JSON document on stdout (errors too, as {"error": ...}). Passwords are taken from
 * the command line or one line of stdin and never printed, not even in error messages.
 *
 * Exit codes: 0 done, 1 the store refused or failed (a missing object says "not found"),
 * 2 the command line was wrong.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mail/mail.h"
#include "server/server.h"

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2
#define CLI_PW_MAX     1024
#define CLI_MAX_ARGS   64

/* Every option any command takes; each command allows a subset (a bit mask). */
enum cli_opt {
    OPT_FORCE = 0,
    OPT_TYPE,
    OPT_QUOTA,
    OPT_PASSWORD,
    OPT_PASSWORD_STDIN,
    OPT_LOCAL_DELIVERY,
    OPT_ACTIVE,
    OPT_FOLDER,
    OPT_CONFIG, /* global options, accepted after the command too */
    OPT_JSON,
    OPT_HELP,
    OPT__COUNT
};
#define OPTBIT(o)   (1u << (o))
#define OPT_GLOBALS (OPTBIT(OPT_CONFIG) | OPTBIT(OPT_JSON) | OPTBIT(OPT_HELP))

static const struct {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 = none */
    int takes_value;
} cli_opts[OPT__COUNT] = {
    [OPT_FORCE] = {"force", 0, 0},
    [OPT_TYPE] = {"type", 0, 1},
    [OPT_QUOTA] = {"quota", 0, 1},
    [OPT_PASSWORD] = {"password", 0, 1},
    [OPT_PASSWORD_STDIN] = {"password-stdin", 0, 0},
    [OPT_LOCAL_DELIVERY] = {"local-delivery", 0, 1},
    [OPT_ACTIVE] = {"active", 0, 1},
    [OPT_FOLDER] = {"folder", 0, 1},
    [OPT_CONFIG] = {"config", 'c', 1},
    [OPT_JSON] = {"json", 0, 0},
    [OPT_HELP] = {"help", 'h', 0},
};

struct cli_ctx {
    const struct cli_cmd *cmd;
    const char *config_path;
    int json;
    struct config cfg;
    struct store *store;
    int argc; /* positional arguments after NOUN VERB */
    char *argv[CLI_MAX_ARGS];
    const char *opt[OPT__COUNT]; /* value, "" for a flag, NULL when absent */
};

typedef int (*cli_handler)(struct cli_ctx *c);

struct cli_cmd {
    const char *noun, *verb;
    cli_handler run;
    const char *synopsis; /* after "polaris NOUN VERB" */
    const char *summary;
    int min_args, max_args; /* positional arguments allowed */
    unsigned opts;
};

/* ---------------------------------------------------------------------------------------
 * Output: human text or JSON
 * ------------------------------------------------------------------------------------ */

static void cli_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* Fields of one object: "key: value" lines for people, members of {...} for --json. */
struct cli_obj {
    int json;
    int n;
};

static void cli_obj_begin(struct cli_obj *o, int json)
{
    o->json = json;
    o->n = 0;
    if (json)
        fputc('{', stdout);
}

static void cli_obj_key(struct cli_obj *o, const char *key)
{
    if (o->json) {
        fputs(o->n++ ? "," : "", stdout);
        cli_json_str(stdout, key);
        fputc(':', stdout);
    } else {
        char label[64];
        snprintf(label, sizeof(label), "%s:", key);
        printf("%-20s ", label);
    }
}

static void cli_obj_str(struct cli_obj *o, const char *key, const char *val)
{
    cli_obj_key(o, key);
    if (o->json)
        cli_json_str(stdout, val);
    else
        printf("%s\n", val);
}

static void cli_obj_int(struct cli_obj *o, const char *key, int64_t v)
{
    cli_obj_key(o, key);
    printf(o->json ? "%lld" : "%lld\n", (long long)v);
}

static void cli_obj_bool(struct cli_obj *o, const char *key, int v)
{
    cli_obj_key(o, key);
    if (o->json)
        fputs(v ? "true" : "false", stdout);
    else
        puts(v ? "yes" : "no");
}

static void cli_obj_end(struct cli_obj *o)
{
    if (o->json)
        fputc('}', stdout);
}

/* Sizes as the customer documents state them: decimal units. */
static void cli_human_size(int64_t bytes, char *out, size_t outlen)
{
    static const struct {
        int64_t unit;
        const char *name;
    } units[] = {{1000000000000LL, "TB"}, {1000000000LL, "GB"}, {1000000LL, "MB"}, {1000LL, "KB"}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (bytes < units[i].unit)
            continue;
        if (bytes % units[i].unit == 0)
            snprintf(out, outlen, "%lld %s", (long long)(bytes / units[i].unit), units[i].name);
        else
            snprintf(out, outlen, "%.2f %s", (double)bytes / (double)units[i].unit, units[i].name);
        return;
    }
    snprintf(out, outlen, "%lld bytes", (long long)bytes);
}

static void cli_time(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "-");
}

/* ---------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------ */

static void cli_error_out(int json, const char *code, const char *msg)
{
    fprintf(stderr, "polaris: %s\n", msg);
    if (json) {
        fputs("{\"error\":", stdout);
        cli_json_str(stdout, msg);
        fputs(",\"code\":", stdout);
        cli_json_str(stdout, code);
        fputs("}\n", stdout);
    }
}

static int cli_usage_error(int json, const struct cli_cmd *cmd, const char *noun, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));

/* A wrong command line: one line saying what is wrong and where to find help; exit 2. */
static int cli_usage_error(int json, const struct cli_cmd *cmd, const char *noun, const char *fmt,
                           ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cli_error_out(json, "usage", msg);
    if (cmd)
        fprintf(stderr, "Try 'polaris %s %s --help'.\n", cmd->noun, cmd->verb);
    else if (noun)
        fprintf(stderr, "Try 'polaris %s --help'.\n", noun);
    else
        fprintf(stderr, "Try 'polaris --help'.\n");
    return CLI_EXIT_USAGE;
}

static const char *cli_code_name(int rc)
{
    switch (rc) {
    case STORE_ENOTFOUND:
        return "not_found";
    case STORE_EEXIST:
        return "exists";
    case STORE_EINVAL:
        return "invalid";
    case STORE_EQUOTA:
        return "quota";
    case STORE_ECONFLICT:
        return "conflict";
    case STORE_EBUSY:
        return "busy";
    case STORE_ENOMEM:
        return "no_memory";
    default:
        return "io";
    }
}

/* The store said no: its message as is (a missing object always says "not found"). */
static int cli_store_error(struct cli_ctx *c, int rc, const struct store_err *e, const char *what)
{
    char msg[512];
    const char *m = e->msg[0] ? e->msg : cli_code_name(rc);

    if (rc == STORE_ENOTFOUND && !strcasestr(m, "not found"))
        snprintf(msg, sizeof(msg), "%s not found (%s)", what, m);
    else if (rc == STORE_EEXIST && strcmp(c->cmd->noun, "domain") == 0 &&
             strcmp(c->cmd->verb, "del") == 0 && !strstr(m, "force"))
        snprintf(msg, sizeof(msg), "%s (use --force to delete it with its users)", m);
    else
        snprintf(msg, sizeof(msg), "%s", m);
    cli_error_out(c->json, cli_code_name(rc), msg);
    return CLI_EXIT_FAIL;
}

/* ---------------------------------------------------------------------------------------
 * Option values
 * ------------------------------------------------------------------------------------ */

static int cli_parse_onoff(const char *s, int *out)
{
    static const char *const on[] = {"on", "yes", "true", "1"};
    static const char *const off[] = {"off", "no", "false", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, on[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, off[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Reads one line (the password) from stdin into buf; strips the line ending. */
static int cli_read_stdin_line(char *buf, size_t size, const char **why)
{
    size_t n = 0;
    int ch;

    while ((ch = getchar()) != EOF && ch != '\n') {
        if (n + 1 >= size) {
            *why = "password on stdin is longer than 1024 bytes";
            return -1;
        }
        buf[n++] = (char)ch;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (n == 0) {
        *why = "no password on stdin";
        return -1;
    }
    return 0;
}

/* The password from --password or --password-stdin (exactly one of them). */
static int cli_password(struct cli_ctx *c, char *buf, size_t size)
{
    const char *why = NULL;

    if (!!c->opt[OPT_PASSWORD] == !!c->opt[OPT_PASSWORD_STDIN])
        return cli_usage_error(c->json, c->cmd, NULL,
                               "%s %s: give exactly one of --password or --password-stdin",
                               c->cmd->noun, c->cmd->verb);
    if (c->opt[OPT_PASSWORD]) {
        if (strlen(c->opt[OPT_PASSWORD]) >= size)
            return cli_usage_error(c->json, c->cmd, NULL, "password is longer than %d bytes",
                                   CLI_PW_MAX);
        memcpy(buf, c->opt[OPT_PASSWORD], strlen(c->opt[OPT_PASSWORD]) + 1);
        return 0;
    }
    if (cli_read_stdin_line(buf, size, &why) != 0) {
        cli_error_out(c->json, "usage", why);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int cli_quota_opt(struct cli_ctx *c, int64_t *quota)
{
    *quota = store_parse_size(c->opt[OPT_QUOTA]);
    if (*quota < 0)
        return cli_usage_error(c->json, c->cmd, NULL,
                               "--quota: '%s' is not a size (like 500M, 1G, 0.5G)",
                               c->opt[OPT_QUOTA]);
    return 0;
}

static int cli_type_opt(struct cli_ctx *c, enum store_acct_type *type)
{
    if (store_acct_type_parse(c->opt[OPT_TYPE], type) != STORE_OK)
        return cli_usage_error(c->json, c->cmd, NULL, "--type must be basic or enhanced");
    return 0;
}

/* A short confirmation for commands that change something and print no object. */
static void cli_done(struct cli_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cli_done(struct cli_ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->json) {
        fputs("{\"ok\":true,\"message\":", stdout);
        cli_json_str(stdout, msg);
        fputs("}\n", stdout);
    } else {
        puts(msg);
    }
}

/* ---------------------------------------------------------------------------------------
 * domain
 * ------------------------------------------------------------------------------------ */

static void cli_domain_fields(struct cli_obj *o, const struct cli_ctx *c,
                              const struct store_domain *d)
{
    char web[520], created[32];

    snprintf(web, sizeof(web), "%s.%s", d->label, c->cfg.web_base);
    cli_time(d->created, created, sizeof(created));
    cli_obj_str(o, "name", d->name);
    cli_obj_str(o, "label", d->label);
    cli_obj_str(o, "web_host", web);
    cli_obj_str(o, "verification_token", d->token);
    cli_obj_bool(o, "local_delivery", d->local_delivery);
    cli_obj_bool(o, "verified", d->verified);
    cli_obj_int(o, "users", d->users);
    cli_obj_str(o, "created", created);
}

/* top: the whole output (a JSON document ends with a newline) rather than a list item. */
static void cli_print_domain(const struct cli_ctx *c, const struct store_domain *d, int top)
{
    struct cli_obj o;

    cli_obj_begin(&o, c->json);
    cli_domain_fields(&o, c, d);
    cli_obj_end(&o);
    if (c->json && top)
        fputc('\n', stdout);
}

static int cli_domain_add(struct cli_ctx *c)
{
    struct store_domain d;
    struct store_err e = {0};
    int rc = store_domain_add(c->store, c->argv[0], &d, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    /* Re-read so the output shows what the directory now holds. */
    if (store_domain_get(c->store, d.name, &d, &e) != STORE_OK)
        d.users = 0;
    cli_print_domain(c, &d, 1);
    return CLI_EXIT_OK;
}

static int cli_domain_del(struct cli_ctx *c)
{
    struct store_err e = {0};
    int rc = store_domain_del(c->store, c->argv[0], c->opt[OPT_FORCE] != NULL, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    cli_done(c, "deleted domain %s", c->argv[0]);
    return CLI_EXIT_OK;
}

struct cli_list {
    struct cli_ctx *c;
    int n;
};

static int cli_domain_row(const struct store_domain *d, void *ctx)
{
    struct cli_list *l = ctx;

    if (l->c->json) {
        fputs(l->n ? "," : "", stdout);
        cli_print_domain(l->c, d, 0);
    } else {
        printf("%-40s users=%-6lld local_delivery=%s verified=%s\n", d->name, (long long)d->users,
               d->local_delivery ? "on" : "off", d->verified ? "yes" : "no");
    }
    l->n++;
    return 0;
}

static int cli_domain_list(struct cli_ctx *c)
{
    struct cli_list l = {c, 0};
    struct store_err e = {0};
    int rc;

    if (c->json)
        fputc('[', stdout);
    rc = store_domain_list(c->store, cli_domain_row, &l, &e);
    if (c->json)
        fputs("]\n", stdout);
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    return CLI_EXIT_OK;
}

static int cli_domain_show(struct cli_ctx *c)
{
    struct store_domain d;
    struct store_err e = {0};
    int rc = store_domain_get(c->store, c->argv[0], &d, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    cli_print_domain(c, &d, 1);
    return CLI_EXIT_OK;
}

static int cli_domain_set(struct cli_ctx *c)
{
    struct store_err e = {0};
    int on, rc;

    if (!c->opt[OPT_LOCAL_DELIVERY])
        return cli_usage_error(c->json, c->cmd, NULL,
                               "domain set: nothing to change "
                               "(give --local-delivery on|off)");
    if (cli_parse_onoff(c->opt[OPT_LOCAL_DELIVERY], &on) != 0)
        return cli_usage_error(c->json, c->cmd, NULL, "--local-delivery must be on or off");
    rc = store_domain_set_local_delivery(c->store, c->argv[0], on, &e);
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    return cli_domain_show(c);
}

/* The records an operator publishes for a hosted domain. DKIM is not listed: the store
 * does not expose per-domain keys yet. */
static int cli_domain_dns(struct cli_ctx *c)
{
    struct store_domain d;
    struct store_err e = {0};
    char v[3][600];
    const char *host = c->cfg.hostname;
    int rc = store_domain_get(c->store, c->argv[0], &d, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    snprintf(v[0], sizeof(v[0]), "10 %s.", host);
    snprintf(v[1], sizeof(v[1]), "%s.", host);
    snprintf(v[2], sizeof(v[2]), "0 0 443 %s.", host);
    const struct {
        const char *name, *type, *value;
    } recs[] = {
        {"mx-verification", "TXT", d.token},
        {"@", "MX", v[0]},
        {"@", "TXT", "v=spf1 mx ~all"},
        {"_dmarc", "TXT", "v=DMARC1; p=none"},
        {"autodiscover", "CNAME", v[1]},
        {"autoconfig", "CNAME", v[1]},
        {"mail", "CNAME", v[1]},
        {"_autodiscover._tcp", "SRV", v[2]},
    };
    if (c->json)
        fputc('[', stdout);
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        char fq[600];
        if (strcmp(recs[i].name, "@") == 0)
            snprintf(fq, sizeof(fq), "%s.", d.name);
        else
            snprintf(fq, sizeof(fq), "%s.%s.", recs[i].name, d.name);
        if (c->json) {
            struct cli_obj o;
            fputs(i ? "," : "", stdout);
            cli_obj_begin(&o, 1);
            cli_obj_str(&o, "name", fq);
            cli_obj_str(&o, "type", recs[i].type);
            cli_obj_str(&o, "value", recs[i].value);
            cli_obj_end(&o);
        } else if (strcmp(recs[i].type, "TXT") == 0) {
            printf("%-40s 3600 IN %-5s \"%s\"\n", fq, recs[i].type, recs[i].value);
        } else {
            printf("%-40s 3600 IN %-5s %s\n", fq, recs[i].type, recs[i].value);
        }
    }
    if (c->json)
        fputs("]\n", stdout);
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------------------------------
 * user
 * ------------------------------------------------------------------------------------ */

/* Everything about an account except its password hash. used < 0: not shown. */
static void cli_account_fields(struct cli_obj *o, const struct store_account *a, int64_t used)
{
    char size[64], created[32];

    cli_time(a->created, created, sizeof(created));
    cli_obj_str(o, "address", a->address);
    cli_obj_str(o, "type", store_acct_type_name(a->type));
    cli_human_size(a->quota, size, sizeof(size));
    if (o->json) {
        cli_obj_str(o, "quota", size);
        cli_obj_int(o, "quota_bytes", a->quota);
    } else {
        char line[128];
        snprintf(line, sizeof(line), "%s (%lld bytes)", size, (long long)a->quota);
        cli_obj_str(o, "quota", line);
    }
    if (used >= 0) {
        cli_human_size(used, size, sizeof(size));
        if (o->json) {
            cli_obj_int(o, "used_bytes", used);
        } else {
            char line[128];
            snprintf(line, sizeof(line), "%s (%lld bytes)", size, (long long)used);
            cli_obj_str(o, "used", line);
        }
    }
    cli_obj_bool(o, "active", a->active);
    cli_obj_str(o, "created", created);
}

static void cli_print_account(const struct cli_ctx *c, const struct store_account *a, int64_t used,
                              int top)
{
    struct cli_obj o;

    cli_obj_begin(&o, c->json);
    cli_account_fields(&o, a, used);
    cli_obj_end(&o);
    if (c->json && top)
        fputc('\n', stdout);
}

static int cli_user_add(struct cli_ctx *c)
{
    struct store_account a;
    struct store_err e = {0};
    enum store_acct_type type;
    int64_t quota = 0;
    char pw[CLI_PW_MAX + 1];
    int rc;

    if (!c->opt[OPT_TYPE])
        return cli_usage_error(c->json, c->cmd, NULL,
                               "user add: --type basic|enhanced is "
                               "required");
    if ((rc = cli_type_opt(c, &type)) != 0)
        return rc;
    if (c->opt[OPT_QUOTA] && (rc = cli_quota_opt(c, &quota)) != 0)
        return rc;
    if ((rc = cli_password(c, pw, sizeof(pw))) != 0)
        return rc;
    rc = store_account_add(c->store, c->argv[0], type, quota, pw, NULL, &a, &e);
    explicit_bzero(pw, sizeof(pw));
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    cli_print_account(c, &a, -1, 1);
    return CLI_EXIT_OK;
}

static int cli_user_del(struct cli_ctx *c)
{
    struct store_err e = {0};
    int rc = store_account_del(c->store, c->argv[0], &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "user");
    cli_done(c, "deleted user %s", c->argv[0]);
    return CLI_EXIT_OK;
}

static int cli_user_row(const struct store_account *a, void *ctx)
{
    struct cli_list *l = ctx;
    char size[64];

    if (l->c->json) {
        fputs(l->n ? "," : "", stdout);
        cli_print_account(l->c, a, -1, 0);
    } else {
        cli_human_size(a->quota, size, sizeof(size));
        printf("%-48s %-9s %-10s %s\n", a->address, store_acct_type_name(a->type), size,
               a->active ? "active" : "suspended");
    }
    l->n++;
    return 0;
}

static int cli_user_list(struct cli_ctx *c)
{
    struct cli_list l = {c, 0};
    struct store_err e = {0};
    int rc;

    if (c->json)
        fputc('[', stdout);
    rc = store_account_list(c->store, c->argc ? c->argv[0] : NULL, cli_user_row, &l, &e);
    if (c->json)
        fputs("]\n", stdout);
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    return CLI_EXIT_OK;
}

static int cli_user_show(struct cli_ctx *c)
{
    struct store_account a;
    struct store_user *u = NULL;
    struct store_err e = {0};
    int64_t used = 0, quota = 0;
    int rc = store_account_get(c->store, c->argv[0], &a, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "user");
    rc = store_user_open(c->store, a.address, &u, &e);
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "mailbox of user");
    rc = store_user_usage(u, &used, &quota);
    store_user_release(u);
    if (rc != STORE_OK) {
        e.msg[0] = '\0';
        return cli_store_error(c, rc, &e, "usage");
    }
    cli_print_account(c, &a, used, 1);
    return CLI_EXIT_OK;
}

static int cli_user_passwd(struct cli_ctx *c)
{
    struct store_err e = {0};
    char pw[CLI_PW_MAX + 1];
    int rc;

    if ((rc = cli_password(c, pw, sizeof(pw))) != 0)
        return rc;
    rc = store_account_set_password(c->store, c->argv[0], pw, &e);
    explicit_bzero(pw, sizeof(pw));
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "user");
    cli_done(c, "password of %s changed", c->argv[0]);
    return CLI_EXIT_OK;
}

/* Type before quota when the limit grows, quota first when it shrinks to basic, so that
 * neither step alone breaks the quota rule. type 0: unchanged; quota < 0: unchanged. */
static int cli_user_set_type_quota(struct cli_ctx *c, enum store_acct_type type, int64_t quota,
                                   struct store_err *e)
{
    const char *addr = c->argv[0];
    int rc;

    if (quota >= 0 && type == STORE_BASIC) {
        if ((rc = store_account_set_quota(c->store, addr, quota, e)) != STORE_OK)
            return rc;
        return store_account_set_type(c->store, addr, type, e);
    }
    if (type && (rc = store_account_set_type(c->store, addr, type, e)) != STORE_OK)
        return rc;
    if (quota >= 0)
        return store_account_set_quota(c->store, addr, quota, e);
    return STORE_OK;
}

static int cli_user_set(struct cli_ctx *c)
{
    struct store_err e = {0};
    enum store_acct_type type = 0;
    int64_t quota = -1;
    int active = 0, rc;

    if (!c->opt[OPT_TYPE] && !c->opt[OPT_QUOTA] && !c->opt[OPT_ACTIVE])
        return cli_usage_error(c->json, c->cmd, NULL,
                               "user set: nothing to change (give --type, --quota or --active)");
    if (c->opt[OPT_TYPE] && (rc = cli_type_opt(c, &type)) != 0)
        return rc;
    if (c->opt[OPT_QUOTA] && (rc = cli_quota_opt(c, &quota)) != 0)
        return rc;
    if (c->opt[OPT_ACTIVE] && cli_parse_onoff(c->opt[OPT_ACTIVE], &active) != 0)
        return cli_usage_error(c->json, c->cmd, NULL, "--active must be on or off");
    rc = cli_user_set_type_quota(c, type, quota, &e);
    if (rc == STORE_OK && c->opt[OPT_ACTIVE])
        rc = store_account_set_active(c->store, c->argv[0], active, &e);
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "user");
    return cli_user_show(c);
}

/* ---------------------------------------------------------------------------------------
 * alias
 * ------------------------------------------------------------------------------------ */

static void cli_alias_begin(const struct cli_ctx *c, const char *source, int first)
{
    if (c->json) {
        fputs(first ? "{\"source\":" : ",{\"source\":", stdout);
        cli_json_str(stdout, source);
        fputs(",\"targets\":[", stdout);
    } else {
        printf("%s ->", source);
    }
}

static void cli_alias_target(const struct cli_ctx *c, const char *target, int first)
{
    if (c->json) {
        fputs(first ? "" : ",", stdout);
        cli_json_str(stdout, target);
    } else {
        printf(" %s", target);
    }
}

static void cli_alias_end(const struct cli_ctx *c)
{
    fputs(c->json ? "]}" : "\n", stdout);
}

static int cli_alias_add(struct cli_ctx *c)
{
    struct store_err e = {0};
    int rc;

    for (int i = 1; i < c->argc; i++) {
        rc = store_alias_add(c->store, c->argv[0], c->argv[i], &e);
        if (rc != STORE_OK)
            return cli_store_error(c, rc, &e, "domain");
    }
    cli_alias_begin(c, c->argv[0], 1);
    for (int i = 1; i < c->argc; i++)
        cli_alias_target(c, c->argv[i], i == 1);
    cli_alias_end(c);
    if (c->json)
        fputc('\n', stdout);
    return CLI_EXIT_OK;
}

static int cli_alias_del(struct cli_ctx *c)
{
    struct store_err e = {0};
    const char *target = c->argc > 1 ? c->argv[1] : NULL;
    int rc = store_alias_del(c->store, c->argv[0], target, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "alias");
    if (target)
        cli_done(c, "deleted alias %s -> %s", c->argv[0], target);
    else
        cli_done(c, "deleted alias %s", c->argv[0]);
    return CLI_EXIT_OK;
}

/* Rows come one (source, target) pair at a time; consecutive pairs of one source are
 * printed as one alias. */
struct cli_alias_list {
    struct cli_ctx *c;
    char source[320];
    int n, targets;
};

static int cli_alias_row(const char *source, const char *target, void *ctx)
{
    struct cli_alias_list *l = ctx;

    if (l->n == 0 || strcmp(l->source, source) != 0) {
        if (l->n)
            cli_alias_end(l->c);
        cli_alias_begin(l->c, source, l->n == 0);
        snprintf(l->source, sizeof(l->source), "%s", source);
        l->targets = 0;
        l->n++;
    }
    cli_alias_target(l->c, target, l->targets++ == 0);
    return 0;
}

static int cli_alias_list(struct cli_ctx *c)
{
    struct cli_alias_list l;
    struct store_err e = {0};
    int rc;

    memset(&l, 0, sizeof(l));
    l.c = c;
    if (c->json)
        fputc('[', stdout);
    rc = store_alias_list(c->store, c->argc ? c->argv[0] : NULL, NULL, cli_alias_row, &l, &e);
    if (l.n)
        cli_alias_end(c);
    if (c->json)
        fputs("]\n", stdout);
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------------------------------
 * mail
 * ------------------------------------------------------------------------------------ */

#define CLI_MSG_MAX (64 * 1024 * 1024)

/* Reads a whole file (or stdin for "-"), at most CLI_MSG_MAX bytes. */
static int cli_slurp(const char *path, char **out, size_t *len, const char **why)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 65536, n = 0;
    char *buf = NULL;

    *why = NULL;
    if (!f) {
        *why = strerror(errno);
        return -1;
    }
    if (!(buf = malloc(cap)))
        goto err;
    for (;;) {
        if (n == cap) {
            char *grown;
            if (cap >= CLI_MSG_MAX) {
                *why = "larger than 64 MiB";
                goto err;
            }
            if (!(grown = realloc(buf, cap * 2)))
                goto err;
            buf = grown;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        *why = strerror(errno);
        goto err;
    }
    if (f != stdin)
        fclose(f);
    *out = buf;
    *len = n;
    return 0;
err:
    if (!*why)
        *why = "out of memory";
    free(buf);
    if (f != stdin)
        fclose(f);
    return -1;
}

static int cli_mail_append(struct cli_ctx *c)
{
    const char *folder = c->opt[OPT_FOLDER] ? c->opt[OPT_FOLDER] : "INBOX";
    struct store_user *u = NULL;
    struct store_folder f;
    struct store_err e = {0};
    int rc, exit_code = CLI_EXIT_OK, nfiles = c->argc > 1 ? c->argc - 1 : 1;

    rc = store_user_open(c->store, c->argv[0], &u, &e);
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "user");
    if (mail_folder_resolve(u, folder, &f) != STORE_OK) {
        store_user_release(u);
        snprintf(e.msg, sizeof(e.msg), "folder %s not found in %s", folder, c->argv[0]);
        return cli_store_error(c, STORE_ENOTFOUND, &e, "folder");
    }
    for (int i = 0; i < nfiles && exit_code == CLI_EXIT_OK; i++) {
        const char *path = c->argc > 1 ? c->argv[i + 1] : "-", *why;
        struct store_item it;
        char *data;
        size_t len;
        if (cli_slurp(path, &data, &len, &why) < 0) {
            snprintf(e.msg, sizeof(e.msg), "%s: %s", path, why);
            exit_code = cli_store_error(c, STORE_EIO, &e, "message");
            break;
        }
        struct mail_new m = {.data = data, .len = len};
        rc = mail_store_message(u, f.id, &m, &it, &e);
        free(data);
        if (rc != STORE_OK)
            exit_code = cli_store_error(c, rc, &e, "message");
        else
            cli_done(c, "appended %s to %s as UID %u", path, folder, it.uid);
    }
    store_user_release(u);
    return exit_code;
}

/* ---------------------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------------------ */

#define PW_OPTS (OPTBIT(OPT_PASSWORD) | OPTBIT(OPT_PASSWORD_STDIN))

static const struct cli_cmd cli_cmds[] = {
    {"domain", "add", cli_domain_add, "NAME", "Add a hosted domain.", 1, 1, 0},
    {"domain", "del", cli_domain_del, "NAME [--force]",
     "Delete a domain. Refused while it has users or aliases unless --force, which deletes "
     "their mailboxes too.",
     1, 1, OPTBIT(OPT_FORCE)},
    {"domain", "list", cli_domain_list, "", "List the hosted domains.", 0, 0, 0},
    {"domain", "show", cli_domain_show, "NAME",
     "Show a domain: label, web host, verification token, Local Delivery, users.", 1, 1, 0},
    {"domain", "set", cli_domain_set, "NAME --local-delivery on|off", "Change a domain's settings.",
     1, 1, OPTBIT(OPT_LOCAL_DELIVERY)},
    {"domain", "dns", cli_domain_dns, "NAME", "Print the DNS records to publish for a domain.", 1,
     1, 0},
    {"user", "add", cli_user_add,
     "ADDRESS --type basic|enhanced [--quota SIZE] (--password PW | --password-stdin)",
     "Add a mailbox. SIZE like 500M or 2G (default 1G; basic 0.1-50G, enhanced 0.1-200G).", 1, 1,
     OPTBIT(OPT_TYPE) | OPTBIT(OPT_QUOTA) | PW_OPTS},
    {"user", "del", cli_user_del, "ADDRESS", "Delete a mailbox and everything in it.", 1, 1, 0},
    {"user", "list", cli_user_list, "[DOMAIN]", "List mailboxes, of one domain or all.", 0, 1, 0},
    {"user", "show", cli_user_show, "ADDRESS", "Show a mailbox: type, quota, usage, state.", 1, 1,
     0},
    {"user", "passwd", cli_user_passwd, "ADDRESS (--password PW | --password-stdin)",
     "Set a mailbox's password (--password-stdin reads one line).", 1, 1, PW_OPTS},
    {"user", "set", cli_user_set,
     "ADDRESS [--type basic|enhanced] [--quota SIZE] "
     "[--active on|off]",
     "Change a mailbox's type, quota or state (a suspended mailbox cannot log in).", 1, 1,
     OPTBIT(OPT_TYPE) | OPTBIT(OPT_QUOTA) | OPTBIT(OPT_ACTIVE)},
    {"alias", "add", cli_alias_add, "SOURCE TARGET...",
     "Forward SOURCE to one or more targets (addresses or :blackhole; @domain is the "
     "catch-all).",
     2, CLI_MAX_ARGS - 1, 0},
    {"alias", "del", cli_alias_del, "SOURCE [TARGET]",
     "Remove one target of an alias, or the whole alias.", 1, 2, 0},
    {"alias", "list", cli_alias_list, "[DOMAIN]", "List aliases, of one domain or all.", 0, 1, 0},
    {"mail", "append", cli_mail_append, "ADDRESS [--folder PATH] [FILE...]",
     "Store messages (RFC 5322 files, or standard input) in a mailbox folder (default "
     "INBOX), as they are: no aliases, no filters.",
     1, CLI_MAX_ARGS - 1, OPTBIT(OPT_FOLDER)},
};
#define CLI_NCMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

static const struct cli_cmd *cli_find(const char *noun, const char *verb)
{
    for (size_t i = 0; i < CLI_NCMDS; i++)
        if (strcmp(cli_cmds[i].noun, noun) == 0 && (!verb || strcmp(cli_cmds[i].verb, verb) == 0))
            return &cli_cmds[i];
    return NULL;
}

static void cli_print_cmd_line(FILE *out, const struct cli_cmd *cmd)
{
    fprintf(out, "  polaris %s %s%s%s\n", cmd->noun, cmd->verb, cmd->synopsis[0] ? " " : "",
            cmd->synopsis);
}

void cli_usage(int to_stderr)
{
    FILE *out = to_stderr ? stderr : stdout;

    fputs("Usage: polaris [-c FILE] [--json] COMMAND ...\n"
          "\n"
          "Global options:\n"
          "  -c, --config FILE  configuration file (default: $POLARIS_CONFIG or ./polaris.ini)\n"
          "  --json             machine-readable output (errors too, as {\"error\": ...})\n"
          "  -h, --help         this help; also after any command\n"
          "  --version          print the version\n"
          "\n"
          "Commands:\n"
          "  polaris serve\n",
          out);
    for (size_t i = 0; i < CLI_NCMDS; i++)
        cli_print_cmd_line(out, &cli_cmds[i]);
    fputs("\nExit status: 0 done, 1 refused or failed, 2 wrong command line.\n", out);
}

static void cli_noun_usage(const char *noun)
{
    printf("Usage: polaris [-c FILE] [--json] %s COMMAND ...\n\nCommands:\n", noun);
    for (size_t i = 0; i < CLI_NCMDS; i++) {
        if (strcmp(cli_cmds[i].noun, noun) != 0)
            continue;
        cli_print_cmd_line(stdout, &cli_cmds[i]);
        printf("      %s\n", cli_cmds[i].summary);
    }
}

static void cli_cmd_usage(const struct cli_cmd *cmd)
{
    printf("Usage: polaris [-c FILE] [--json] %s %s%s%s\n\n%s\n", cmd->noun, cmd->verb,
           cmd->synopsis[0] ? " " : "", cmd->synopsis, cmd->summary);
    if (cmd->opts & PW_OPTS)
        printf("\nA password needs at least 8 characters with an upper-case letter, a "
               "lower-case\nletter, a digit and a symbol. --password-stdin reads it from the "
               "first line of\nstandard input (keeps it out of the process list).\n");
}

/* ---------------------------------------------------------------------------------------
 * Option parsing, shared by every command
 * ------------------------------------------------------------------------------------ */

/* Finds the option named by arg ("--name", "--name=value", "-c"); *inline_val gets what
 * follows '=' if any. Returns the option or -1. */
static int cli_opt_lookup(const char *arg, const char **inline_val, char *name, size_t namelen)
{
    const char *eq;
    size_t n;

    *inline_val = NULL;
    if (arg[1] != '-') {
        snprintf(name, namelen, "%s", arg);
        for (int o = 0; o < OPT__COUNT; o++)
            if (cli_opts[o].short_name && arg[1] == cli_opts[o].short_name && arg[2] == '\0')
                return o;
        return -1;
    }
    eq = strchr(arg, '=');
    n = eq ? (size_t)(eq - arg) : strlen(arg);
    /* Only the name goes into messages: a mistyped --pasword=... must not echo the value. */
    snprintf(name, namelen, "%.*s", (int)n, arg);
    for (int o = 0; o < OPT__COUNT; o++) {
        if (strlen(cli_opts[o].name) == n - 2 && strncmp(arg + 2, cli_opts[o].name, n - 2) == 0) {
            *inline_val = eq ? eq + 1 : NULL;
            return o;
        }
    }
    return -1;
}

/* Splits args into options and positionals. Returns 0, or an exit code when it printed
 * help or an error. --help wins over any other problem on the line. */
static int cli_parse(struct cli_ctx *c, int argc, char **argv)
{
    char name[64], bad[160] = "";
    int help = 0, no_more_opts = 0;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *val;
        int o;
        if (no_more_opts || arg[0] != '-' || arg[1] == '\0') {
            if (c->argc >= CLI_MAX_ARGS || c->argc >= c->cmd->max_args) {
                if (!bad[0])
                    snprintf(bad, sizeof(bad), "too many arguments");
                continue;
            }
            c->argv[c->argc++] = argv[i];
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            no_more_opts = 1;
            continue;
        }
        o = cli_opt_lookup(arg, &val, name, sizeof(name));
        if (o < 0 || !((c->cmd->opts | OPT_GLOBALS) & OPTBIT(o))) {
            if (!bad[0])
                snprintf(bad, sizeof(bad), "unknown option '%s'", name);
            continue;
        }
        if (o == OPT_HELP) {
            help = 1;
            continue;
        }
        if (cli_opts[o].takes_value && !val) {
            if (i + 1 >= argc) {
                if (!bad[0])
                    snprintf(bad, sizeof(bad), "option '%s' needs a value", name);
                continue;
            }
            val = argv[++i];
        } else if (!cli_opts[o].takes_value && val) {
            if (!bad[0])
                snprintf(bad, sizeof(bad), "option '%s' takes no value", name);
            continue;
        }
        c->opt[o] = val ? val : "";
    }
    if (help) {
        cli_cmd_usage(c->cmd);
        return -1;
    }
    if (c->opt[OPT_JSON])
        c->json = 1;
    if (c->opt[OPT_CONFIG])
        c->config_path = c->opt[OPT_CONFIG];
    if (!bad[0] && c->argc < c->cmd->min_args)
        snprintf(bad, sizeof(bad), "missing %s", c->cmd->synopsis);
    if (bad[0])
        return cli_usage_error(c->json, c->cmd, NULL, "%s %s: %s", c->cmd->noun, c->cmd->verb, bad);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Entry point
 * ------------------------------------------------------------------------------------ */

static int cli_open(struct cli_ctx *c)
{
    struct store_config sc = {0};
    struct store_err e = {0};
    enum log_level lvl = LOG_INFO;
    char err[CFG_PATH_MAX + 512];
    int rc;

    if (config_load(&c->cfg, c->config_path, err, sizeof(err)) != 0) {
        cli_error_out(c->json, "config", err);
        return CLI_EXIT_FAIL;
    }
    /* Admin commands print their own results; only warnings and worse go to the log. */
    log_level_parse(c->cfg.log_level, &lvl);
    log_set_level(lvl > LOG_WARN ? lvl : LOG_WARN);
    sc.data_dir = c->cfg.data_dir;
    rc = store_open(&c->store, &sc, &e);
    if (rc != STORE_OK) {
        snprintf(err, sizeof(err), "cannot open the data dir %s: %s", c->cfg.data_dir,
                 e.msg[0] ? e.msg : cli_code_name(rc));
        cli_error_out(c->json, cli_code_name(rc), err);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

int cli_run(int argc, char **argv, const char *config_path, int json)
{
    struct cli_ctx *c;
    int rc;

    if (argc < 1)
        return cli_usage_error(json, NULL, NULL, "missing command");
    if (!cli_find(argv[0], NULL))
        return cli_usage_error(json, NULL, NULL, "unknown command '%s'", argv[0]);
    if (argc < 2)
        return cli_usage_error(json, NULL, argv[0], "%s: missing subcommand", argv[0]);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_noun_usage(argv[0]);
        return CLI_EXIT_OK;
    }
    if (!cli_find(argv[0], argv[1]))
        return cli_usage_error(json, NULL, argv[0], "%s: unknown subcommand '%s'", argv[0],
                               argv[1]);
    if (!(c = calloc(1, sizeof(*c)))) {
        cli_error_out(json, "no_memory", "out of memory");
        return CLI_EXIT_FAIL;
    }
    c->cmd = cli_find(argv[0], argv[1]);
    c->config_path = config_path;
    c->json = json;
    rc = cli_parse(c, argc - 2, argv + 2);
    if (rc != 0)
        goto out;
    if ((rc = cli_open(c)) != 0)
        goto out;
    rc = c->cmd->run(c);
    fflush(stdout);
out:
    if (rc < 0)
        rc = CLI_EXIT_OK; /* help was printed */
    if (c->store)
        store_close(c->store);
    free(c);
    return rc;
}
