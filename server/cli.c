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
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autodiscover/ad.h"
#include "mail/mail.h"
#include "mail/autoreply.h"
#include "eas/wbxml.h"
#include "eas/eas.h"
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
    OPT_ENABLE,
    OPT_DISABLE,
    OPT_SELECTOR,
    OPT_FROM, /* mail deliver */
    OPT_OFF,  /* user/alias autoreply */
    OPT_SUBJECT,
    OPT_BODY,
    OPT_DAYS,
    OPT_START,
    OPT_END,
    OPT_RESOLVER,     /* domain check */
    OPT_ACCOUNT_ONLY, /* device wipe */
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
    [OPT_ENABLE] = {"enable", 0, 0},
    [OPT_DISABLE] = {"disable", 0, 0},
    [OPT_SELECTOR] = {"selector", 0, 1},
    [OPT_FROM] = {"from", 0, 1},
    [OPT_OFF] = {"off", 0, 0},
    [OPT_SUBJECT] = {"subject", 0, 1},
    [OPT_BODY] = {"body", 0, 1},
    [OPT_DAYS] = {"days", 0, 1},
    [OPT_START] = {"start", 0, 1},
    [OPT_END] = {"end", 0, 1},
    [OPT_RESOLVER] = {"resolver", 0, 1},
    [OPT_ACCOUNT_ONLY] = {"account-only", 0, 0},
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

/* A TXT value in a zone file: strings of at most 255 bytes (RFC 1035 character-string),
 * which a DKIM key exceeds. */
static void cli_print_txt(const char *v)
{
    size_t n = strlen(v);

    for (size_t i = 0; i < n || i == 0; i += 255)
        printf("%s\"%.*s\"", i ? " " : "", (int)(n - i < 255 ? n - i : 255), v + i);
    fputc('\n', stdout);
}

/* The records a hosted domain publishes (built in autodiscover/ad_dns.c). */
static int cli_domain_records(struct cli_ctx *c, struct store_domain *d,
                              struct ad_dns_record *recs)
{
    struct store_err e = {0};
    char err[256];
    int rc = store_domain_get(c->store, c->argv[0], d, &e), n;

    if (rc != STORE_OK)
        return -cli_store_error(c, rc, &e, "domain");
    n = ad_dns_records(c->store, &c->cfg, d, recs, err, sizeof(err));
    if (n < 0) {
        cli_error_out(c->json, "config", err);
        return -CLI_EXIT_FAIL;
    }
    return n;
}

static void cli_record_json(const struct ad_dns_record *r, const struct ad_dns_result *res)
{
    struct cli_obj o;

    cli_obj_begin(&o, 1);
    cli_obj_str(&o, "name", r->name);
    cli_obj_str(&o, "type", r->type);
    cli_obj_str(&o, "value", r->value);
    cli_obj_str(&o, "purpose", r->purpose);
    cli_obj_bool(&o, "optional", r->optional);
    if (res) {
        cli_obj_str(&o, "status", ad_dns_status_name(res->status));
        cli_obj_str(&o, "found", res->found);
    }
    cli_obj_end(&o);
}

/* The records as a zone-file fragment (or a JSON array), DKIM's when it is enabled. */
static int cli_domain_dns(struct cli_ctx *c)
{
    struct store_domain d;
    struct ad_dns_record *recs = calloc(AD_DNS_MAX, sizeof(*recs));
    int n;

    if (!recs)
        return CLI_EXIT_FAIL;
    n = cli_domain_records(c, &d, recs);
    if (n < 0) {
        free(recs);
        return -n;
    }
    if (c->json)
        fputc('[', stdout);
    else
        printf("; DNS records for %s\n", d.name);
    for (int i = 0; i < n; i++) {
        if (c->json) {
            fputs(i ? "," : "", stdout);
            cli_record_json(&recs[i], NULL);
            continue;
        }
        printf("%-40s 3600 IN %-5s ", recs[i].name, recs[i].type);
        if (strcmp(recs[i].type, "TXT") == 0)
            cli_print_txt(recs[i].value);
        else
            printf("%s\n", recs[i].value);
    }
    if (c->json)
        fputs("]\n", stdout);
    free(recs);
    return CLI_EXIT_OK;
}

/* Looks the records up and says which are ok, missing or wrong; a verification TXT that
 * holds the token marks the domain verified. */
static int cli_domain_check(struct cli_ctx *c)
{
    struct store_domain d;
    struct ad_dns_record *recs = calloc(AD_DNS_MAX, sizeof(*recs));
    struct ad_dns_result *res = calloc(AD_DNS_MAX, sizeof(*res));
    struct store_err e = {0};
    const char *resolver = c->opt[OPT_RESOLVER] ? c->opt[OPT_RESOLVER] : c->cfg.resolver;
    char err[256];
    int n, rc = CLI_EXIT_FAIL, healthy = 1;

    if (!recs || !res)
        goto out;
    n = cli_domain_records(c, &d, recs);
    if (n < 0) {
        rc = -n;
        goto out;
    }
    if (ad_dns_check(resolver, recs, (size_t)n, res, err, sizeof(err)) != 0) {
        cli_error_out(c->json, "usage", err);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (recs[i].kind == AD_DNS_VERIFY && res[i].status == AD_DNS_OK && !d.verified) {
            if (store_domain_set_verified(c->store, d.name, 1, &e) != STORE_OK) {
                rc = cli_store_error(c, e.code ? e.code : STORE_EIO, &e, "domain");
                goto out;
            }
            d.verified = 1;
        }
        if (!recs[i].optional && res[i].status != AD_DNS_OK)
            healthy = 0;
    }
    if (c->json) {
        printf("{\"domain\":");
        cli_json_str(stdout, d.name);
        printf(",\"verified\":%s,\"healthy\":%s,\"records\":[", d.verified ? "true" : "false",
               healthy ? "true" : "false");
        for (int i = 0; i < n; i++) {
            fputs(i ? "," : "", stdout);
            cli_record_json(&recs[i], &res[i]);
        }
        fputs("]}\n", stdout);
    } else {
        for (int i = 0; i < n; i++) {
            printf("%-8s %-5s %-40s %s%s", ad_dns_status_name(res[i].status), recs[i].type,
                   recs[i].name, recs[i].value, recs[i].optional ? " (optional)" : "");
            if (res[i].status != AD_DNS_OK && res[i].found[0])
                printf("  [found: %s]", res[i].found);
            fputc('\n', stdout);
        }
        printf("%s: %s, %s\n", d.name, d.verified ? "verified" : "not verified",
               healthy ? "every required record is in place" : "some records need attention");
    }
    rc = CLI_EXIT_OK;
out:
    free(recs);
    free(res);
    return rc;
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

/* Maildir flag letters after ":2," (S seen, R replied, F flagged, T trashed, D draft). */
static uint32_t cli_maildir_flags(const char *name)
{
    const char *info = strstr(name, ":2,");
    uint32_t f = 0;

    for (const char *p = info ? info + 3 : ""; *p; p++)
        f |= *p == 'S' ? STORE_FLAG_SEEN
             : *p == 'R' ? STORE_FLAG_ANSWERED
             : *p == 'F' ? STORE_FLAG_FLAGGED
             : *p == 'T' ? STORE_FLAG_DELETED
             : *p == 'D' ? STORE_FLAG_DRAFT
                         : 0;
    return f;
}

#define CLI_APPEND_BATCH 500 /* messages per transaction when importing a directory */

struct cli_append {
    struct cli_ctx *c;
    struct store_user *u;
    const struct store_folder *f;
    size_t done, in_txn;
    uint32_t first_uid, last_uid;
};

static int cli_append_one(struct cli_append *a, const char *path, uint32_t flags)
{
    struct store_err e = {0};
    struct store_item it;
    const char *why;
    char *data;
    size_t len;
    int rc;

    if (cli_slurp(path, &data, &len, &why) < 0) {
        snprintf(e.msg, sizeof(e.msg), "%s: %s", path, why);
        return cli_store_error(a->c, STORE_EIO, &e, "message");
    }
    struct mail_new m = {.data = data, .len = len, .flags = flags};
    rc = mail_store_message(a->u, a->f->id, &m, &it, &e);
    free(data);
    if (rc != STORE_OK)
        return cli_store_error(a->c, rc, &e, "message");
    if (!a->done++)
        a->first_uid = it.uid;
    a->last_uid = it.uid;
    return CLI_EXIT_OK;
}

/* Appends every regular file of dir (sorted by name), CLI_APPEND_BATCH per transaction:
 * an import of 100,000 messages then costs 200 commits, not 100,000. */
static int cli_append_files(struct cli_append *a, const char *dir, int maildir)
{
    struct dirent **names = NULL;
    struct store_err e = {0};
    char path[4096];
    int n = scandir(dir, &names, NULL, alphasort), rc = CLI_EXIT_OK;

    if (n < 0) {
        snprintf(e.msg, sizeof(e.msg), "%s: %s", dir, strerror(errno));
        return cli_store_error(a->c, STORE_EIO, &e, "directory");
    }
    for (int i = 0; i < n; i++) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (rc != CLI_EXIT_OK || names[i]->d_name[0] == '.' || stat(path, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (a->in_txn == 0 && store_txn_begin(a->u, &e) != STORE_OK) {
            rc = cli_store_error(a->c, STORE_EIO, &e, "transaction");
            continue;
        }
        rc = cli_append_one(a, path, maildir ? cli_maildir_flags(names[i]->d_name) : 0);
        if (rc == CLI_EXIT_OK && ++a->in_txn == CLI_APPEND_BATCH) {
            a->in_txn = 0;
            if (store_txn_commit(a->u, NULL, &e) != STORE_OK)
                rc = cli_store_error(a->c, STORE_EIO, &e, "commit");
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int cli_append_dir(struct cli_append *a, const char *dir)
{
    char sub[4096];
    struct stat st;
    struct store_err e = {0};
    int rc;

    snprintf(sub, sizeof(sub), "%s/cur", dir);
    int maildir = stat(sub, &st) == 0 && S_ISDIR(st.st_mode);
    if (maildir) {
        snprintf(sub, sizeof(sub), "%s/new", dir);
        rc = cli_append_files(a, sub, 1);
        snprintf(sub, sizeof(sub), "%s/cur", dir);
        if (rc == CLI_EXIT_OK)
            rc = cli_append_files(a, sub, 1);
    } else {
        rc = cli_append_files(a, dir, 0);
    }
    if (a->in_txn) {
        a->in_txn = 0;
        if (rc == CLI_EXIT_OK && store_txn_commit(a->u, NULL, &e) != STORE_OK)
            rc = cli_store_error(a->c, STORE_EIO, &e, "commit");
        else if (rc != CLI_EXIT_OK)
            store_txn_rollback(a->u); /* the failed batch only: earlier ones are kept */
    }
    return rc;
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
        const char *path = c->argc > 1 ? c->argv[i + 1] : "-";
        struct cli_append a = {.c = c, .u = u, .f = &f};
        struct stat st;
        if (strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            exit_code = cli_append_dir(&a, path);
        else
            exit_code = cli_append_one(&a, path, 0);
        if (exit_code == CLI_EXIT_OK && a.done == 1)
            cli_done(c, "appended %s to %s as UID %u", path, folder, a.last_uid);
        else if (exit_code == CLI_EXIT_OK)
            cli_done(c, "appended %zu messages from %s to %s (UIDs %u:%u)", a.done, path, folder,
                     a.first_uid, a.last_uid);
    }
    store_user_release(u);
    return exit_code;
}

/* ---------------------------------------------------------------------------------------
 * mail deliver, user/alias autoreply: the delivery pipeline (mail/deliver.c)
 * ------------------------------------------------------------------------------------ */

static void cli_deliver_row(const struct cli_ctx *c, const char *rcpt,
                            const struct deliver_reply *r, int first)
{
    struct cli_obj o;

    if (!c->json) {
        printf("%s: %d %s %s\n", rcpt, r->code, r->enhanced, r->text);
        return;
    }
    fputs(first ? "" : ",", stdout);
    cli_obj_begin(&o, 1);
    cli_obj_str(&o, "recipient", rcpt);
    cli_obj_int(&o, "code", r->code);
    cli_obj_str(&o, "enhanced", r->enhanced);
    cli_obj_str(&o, "text", r->text);
    cli_obj_bool(&o, "ok", r->code >= 200 && r->code < 300);
    cli_obj_end(&o);
}

/* Like an LDA: the message on stdin through the whole pipeline (aliases, loops, quota,
 * auto-replies, the queue for external targets), as mail from the internet would go. */
static int cli_mail_deliver(struct cli_ctx *c)
{
    struct deliver d = {.store = c->store, .cfg = &c->cfg, .local_hook = eas_itip_received};
    struct deliver_env env = {.mail_from = "", .protocol = "LOCAL"};
    struct deliver_reply r, *rr = NULL;
    struct store_err e = {0};
    char from[330] = "", *data = NULL, qerr[256] = "";
    const char *why;
    size_t len = 0;
    int all_ok = 1;

    if (c->opt[OPT_FROM]) {
        const char *f = c->opt[OPT_FROM];
        size_t n = strlen(f);
        if (n >= 2 && f[0] == '<' && f[n - 1] == '>')
            snprintf(from, sizeof(from), "%.*s", (int)(n - 2), f + 1);
        else
            snprintf(from, sizeof(from), "%s", f);
        env.mail_from = from;
    }
    if (cli_slurp("-", &data, &len, &why) < 0) {
        snprintf(e.msg, sizeof(e.msg), "standard input: %s", why);
        return cli_store_error(c, STORE_EIO, &e, "message");
    }
    if (!(rr = calloc((size_t)c->argc, sizeof(*rr)))) {
        free(data);
        snprintf(e.msg, sizeof(e.msg), "out of memory");
        return cli_store_error(c, STORE_ENOMEM, &e, "message");
    }
    /* Without a queue, external targets are refused rather than lost. */
    d.queue = queue_open(c->store, &c->cfg, qerr, sizeof(qerr));
    if (!d.queue)
        fprintf(stderr, "polaris: no outbound queue (%s): external targets are refused\n", qerr);
    deliver_message(&d, &env, (const char *const *)c->argv, (size_t)c->argc, data, len, &r, rr);
    if (d.queue)
        queue_close(d.queue);
    if (c->json)
        fputs("{\"recipients\":[", stdout);
    for (int i = 0; i < c->argc; i++) {
        cli_deliver_row(c, c->argv[i], &rr[i], i == 0);
        all_ok &= rr[i].code >= 200 && rr[i].code < 300;
    }
    if (c->json)
        printf("],\"ok\":%s}\n", all_ok ? "true" : "false");
    free(rr);
    free(data);
    return all_ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int cli_alias_count(const char *source, const char *target, void *ctx)
{
    (*(int *)ctx)++;
    return 0;
}

/* The user (or alias) an auto-reply is for must exist. */
static int cli_autoreply_owner(struct cli_ctx *c, int is_alias)
{
    struct store_account a;
    struct store_err e = {0};
    int n = 0, rc;

    if (!is_alias) {
        rc = store_account_get(c->store, c->argv[0], &a, &e);
        return rc == STORE_OK ? 0 : cli_store_error(c, rc, &e, "user");
    }
    rc = store_alias_list(c->store, NULL, c->argv[0], cli_alias_count, &n, &e);
    if (rc == STORE_OK && n == 0) {
        rc = STORE_ENOTFOUND;
        snprintf(e.msg, sizeof(e.msg), "no alias %s", c->argv[0]);
    }
    return rc == STORE_OK ? 0 : cli_store_error(c, rc, &e, "alias");
}

static void cli_print_autoreply(const struct cli_ctx *c, const struct autoreply *a)
{
    struct cli_obj o;
    char start[32], end[32];

    cli_time(a->start, start, sizeof(start));
    cli_time(a->end, end, sizeof(end));
    cli_obj_begin(&o, c->json);
    cli_obj_str(&o, "address", c->argv[0]);
    cli_obj_bool(&o, "enabled", a->enabled);
    cli_obj_str(&o, "subject", a->subject[0] ? a->subject : (c->json ? "" : "(Auto: <subject>)"));
    cli_obj_int(&o, "days", a->days >= 0 ? a->days : c->cfg.autoreply_days);
    cli_obj_str(&o, "start", a->start ? start : (c->json ? "" : "-"));
    cli_obj_str(&o, "end", a->end ? end : (c->json ? "" : "-"));
    cli_obj_str(&o, "body", a->body ? a->body : "");
    cli_obj_end(&o);
    if (c->json)
        fputc('\n', stdout);
}

/* A date option; "" clears it. */
static int cli_autoreply_date(const char *val, int end_of_day, int64_t *out)
{
    if (!val[0]) {
        *out = 0;
        return 0;
    }
    return autoreply_parse_date(val, end_of_day, out);
}

/* Applies the options to a; returns 0 or an exit code after printing the problem. */
static int cli_autoreply_opts(struct cli_ctx *c, struct autoreply *a, int existed)
{
    const char *why;
    char *body;
    size_t len;

    if (c->opt[OPT_OFF]) {
        if (c->opt[OPT_SUBJECT] || c->opt[OPT_BODY] || c->opt[OPT_DAYS] || c->opt[OPT_START] ||
            c->opt[OPT_END])
            return cli_usage_error(c->json, c->cmd, NULL, "--off takes no other option");
        a->enabled = 0;
        return 0;
    }
    if (!c->opt[OPT_BODY] && !existed)
        return cli_usage_error(c->json, c->cmd, NULL, "--body is required (\"-\": stdin)");
    a->enabled = 1;
    if (c->opt[OPT_SUBJECT]) {
        if (strlen(c->opt[OPT_SUBJECT]) >= sizeof(a->subject))
            return cli_usage_error(c->json, c->cmd, NULL, "--subject is too long");
        snprintf(a->subject, sizeof(a->subject), "%s", c->opt[OPT_SUBJECT]);
    }
    if (c->opt[OPT_DAYS]) {
        char *endp;
        long days = strtol(c->opt[OPT_DAYS], &endp, 10);
        if (*endp || endp == c->opt[OPT_DAYS] || days < 0 || days > 365)
            return cli_usage_error(c->json, c->cmd, NULL, "--days must be 0 to 365");
        a->days = (int)days;
    }
    if (c->opt[OPT_START] && cli_autoreply_date(c->opt[OPT_START], 0, &a->start) < 0)
        return cli_usage_error(c->json, c->cmd, NULL, "--start: a date like 2024-12-24 (UTC)");
    if (c->opt[OPT_END] && cli_autoreply_date(c->opt[OPT_END], 1, &a->end) < 0)
        return cli_usage_error(c->json, c->cmd, NULL, "--end: a date like 2025-01-05 (UTC)");
    if (c->opt[OPT_BODY]) {
        if (strcmp(c->opt[OPT_BODY], "-") == 0) {
            if (cli_slurp("-", &body, &len, &why) < 0) {
                cli_error_out(c->json, "usage", why);
                return CLI_EXIT_USAGE;
            }
            body[len < (size_t)AUTOREPLY_BODY_MAX + 1 ? len : (size_t)AUTOREPLY_BODY_MAX] = '\0';
        } else if (!(body = strdup(c->opt[OPT_BODY]))) {
            cli_error_out(c->json, "no_memory", "out of memory");
            return CLI_EXIT_FAIL;
        }
        free(a->body);
        a->body = body;
    }
    return 0;
}

/* Shows (no options), sets or turns off the auto-reply of a user or an alias. */
static int cli_autoreply(struct cli_ctx *c, int is_alias)
{
    struct autoreply a;
    struct store_err e = {0};
    int rc, existed,
        change = c->opt[OPT_OFF] || c->opt[OPT_SUBJECT] || c->opt[OPT_BODY] || c->opt[OPT_DAYS] ||
                 c->opt[OPT_START] || c->opt[OPT_END];

    if ((rc = cli_autoreply_owner(c, is_alias)) != 0)
        return rc;
    rc = autoreply_get(c->store, c->argv[0], &a, &e);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND)
        return cli_store_error(c, rc, &e, "auto-reply");
    existed = rc == STORE_OK;
    if (!existed) {
        memset(&a, 0, sizeof(a));
        a.days = -1;
    }
    if (change && (rc = cli_autoreply_opts(c, &a, existed)) == 0 &&
        (rc = autoreply_put(c->store, c->argv[0], &a, &e)) != STORE_OK)
        rc = cli_store_error(c, rc, &e, "auto-reply");
    if (rc == 0)
        cli_print_autoreply(c, &a);
    autoreply_free(&a);
    return rc;
}

static int cli_user_autoreply(struct cli_ctx *c)
{
    return cli_autoreply(c, 0);
}

static int cli_alias_autoreply(struct cli_ctx *c)
{
    return cli_autoreply(c, 1);
}

/* ---------------------------------------------------------------------------------------
 * DKIM keys and the outbound queue
 * ------------------------------------------------------------------------------------ */

static int cli_domain_dkim(struct cli_ctx *c)
{
    struct store_err e = {0};
    char name[128], value[1024], fq[400];
    const char *sel = c->opt[OPT_SELECTOR];
    int rc;

    if (!!c->opt[OPT_ENABLE] == !!c->opt[OPT_DISABLE] || (c->opt[OPT_DISABLE] && sel))
        return cli_usage_error(c->json, c->cmd, NULL,
                               "domain dkim: give --enable [--selector S] or --disable");
    if (c->opt[OPT_DISABLE]) {
        if ((rc = dkim_domain_disable(c->store, c->argv[0], &e)) != STORE_OK)
            return cli_store_error(c, rc, &e, "domain");
        cli_done(c, "DKIM signing disabled for %s", c->argv[0]);
        return CLI_EXIT_OK;
    }
    /* Without --selector an enabled domain keeps its key; with one it gets a new key. */
    rc = sel ? STORE_ENOTFOUND
             : dkim_domain_record(c->store, c->argv[0], name, sizeof(name), value, sizeof(value));
    if (rc != STORE_OK)
        rc = dkim_domain_enable(c->store, c->argv[0], sel ? sel : c->cfg.dkim_selector, &e);
    if (rc == STORE_OK)
        rc = dkim_domain_record(c->store, c->argv[0], name, sizeof(name), value, sizeof(value));
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "domain");
    snprintf(fq, sizeof(fq), "%s.%s.", name, c->argv[0]);
    if (c->json) {
        struct cli_obj o;
        cli_obj_begin(&o, 1);
        cli_obj_str(&o, "domain", c->argv[0]);
        cli_obj_str(&o, "name", fq);
        cli_obj_str(&o, "type", "TXT");
        cli_obj_str(&o, "value", value);
        cli_obj_end(&o);
        fputc('\n', stdout);
    } else {
        printf("DKIM signing enabled for %s. Publish:\n%-40s 3600 IN TXT   ", c->argv[0], fq);
        cli_print_txt(value);
    }
    return CLI_EXIT_OK;
}

static struct queue *cli_queue_open(struct cli_ctx *c)
{
    char err[512];
    struct queue *q = queue_open(c->store, &c->cfg, err, sizeof(err));

    if (!q)
        cli_error_out(c->json, "io", err);
    return q;
}

/* "45s", "12m", "3h", "2d" */
static void cli_age(int64_t secs, char *out, size_t outlen)
{
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(out, outlen, "%llds", (long long)secs);
    else if (secs < 7200)
        snprintf(out, outlen, "%lldm", (long long)secs / 60);
    else if (secs < 172800)
        snprintf(out, outlen, "%lldh", (long long)secs / 3600);
    else
        snprintf(out, outlen, "%lldd", (long long)secs / 86400);
}

static int cli_queue_row(const struct queue_info *m, void *ctx)
{
    struct cli_list *l = ctx;
    char arrival[32], next[32], age[32], size[64];
    int64_t now = (int64_t)time(NULL);

    cli_time(m->arrival, arrival, sizeof(arrival));
    cli_time(m->next, next, sizeof(next));
    cli_age(now - m->arrival, age, sizeof(age));
    if (l->c->json) {
        struct cli_obj o;
        fputs(l->n ? "," : "", stdout);
        cli_obj_begin(&o, 1);
        cli_obj_str(&o, "id", m->id);
        cli_obj_str(&o, "sender", m->mail_from);
        cli_obj_int(&o, "size", m->size);
        cli_obj_str(&o, "arrival", arrival);
        cli_obj_int(&o, "age_seconds", now - m->arrival);
        cli_obj_int(&o, "attempts", m->attempts);
        cli_obj_str(&o, "next_attempt", next);
        cli_obj_key(&o, "recipients");
        fputc('[', stdout);
        for (size_t i = 0; i < m->nrcpts; i++) {
            struct cli_obj r;
            fputs(i ? "," : "", stdout);
            cli_obj_begin(&r, 1);
            cli_obj_str(&r, "address", m->rcpts[i].address);
            cli_obj_str(&r, "status", m->rcpts[i].status);
            cli_obj_str(&r, "diag", m->rcpts[i].diag);
            cli_obj_end(&r);
        }
        fputc(']', stdout);
        cli_obj_end(&o);
    } else {
        cli_human_size(m->size, size, sizeof(size));
        printf("%s  %s  age %s  attempts %d  next %s  from <%s>\n", m->id, size, age, m->attempts,
               m->next <= now ? "now" : next, m->mail_from);
        for (size_t i = 0; i < m->nrcpts; i++)
            printf("    %-8s %s%s%s%s\n", m->rcpts[i].status, m->rcpts[i].address,
                   m->rcpts[i].diag[0] ? " (" : "", m->rcpts[i].diag,
                   m->rcpts[i].diag[0] ? ")" : "");
    }
    l->n++;
    return 0;
}

static int cli_queue_list(struct cli_ctx *c)
{
    struct cli_list l = {c, 0};
    struct queue *q = cli_queue_open(c);
    char err[256] = "";
    int rc;

    if (!q)
        return CLI_EXIT_FAIL;
    if (c->json)
        fputc('[', stdout);
    rc = queue_list(q, cli_queue_row, &l, err, sizeof(err));
    if (c->json)
        fputs("]\n", stdout);
    else if (rc == 0 && l.n == 0)
        puts("The queue is empty.");
    queue_close(q);
    if (rc != 0) {
        cli_error_out(c->json, "io", err);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

static int cli_queue_flush(struct cli_ctx *c)
{
    struct queue *q = cli_queue_open(c);
    char err[256] = "";
    int rc;

    if (!q)
        return CLI_EXIT_FAIL;
    rc = queue_flush(q, err, sizeof(err));
    queue_close(q);
    if (rc != 0) {
        cli_error_out(c->json, "io", err);
        return CLI_EXIT_FAIL;
    }
    cli_done(c, "flush requested: the running server retries every queued message within a "
                "second (or at its next start)");
    return CLI_EXIT_OK;
}

static int cli_queue_del(struct cli_ctx *c)
{
    struct queue *q = cli_queue_open(c);
    char err[256] = "", msg[300];
    int rc;

    if (!q)
        return CLI_EXIT_FAIL;
    rc = queue_del(q, c->argv[0], err, sizeof(err));
    queue_close(q);
    if (rc != 0) {
        if (rc > 0)
            snprintf(msg, sizeof(msg), "queued message %s not found", c->argv[0]);
        cli_error_out(c->json, rc > 0 ? "not_found" : "io", rc > 0 ? msg : err);
        return CLI_EXIT_FAIL;
    }
    cli_done(c, "deleted queued message %s", c->argv[0]);
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------------------ */

#define PW_OPTS (OPTBIT(OPT_PASSWORD) | OPTBIT(OPT_PASSWORD_STDIN))

#define AUTOREPLY_OPTS                                                                             \
    (OPTBIT(OPT_OFF) | OPTBIT(OPT_SUBJECT) | OPTBIT(OPT_BODY) | OPTBIT(OPT_DAYS) |                 \
     OPTBIT(OPT_START) | OPTBIT(OPT_END))
#define AUTOREPLY_SYNOPSIS                                                                         \
    "ADDRESS [--off | --subject S --body B|- [--days N] [--start DATE] [--end DATE]]"

/* ---------------------------------------------------------------------------------------
 * device: ActiveSync devices of a mailbox (eas/eas.h)
 * ------------------------------------------------------------------------------------ */

static const char *cli_device_wipe_state(const struct eas_device *d)
{
    if (!d->wipe)
        return "none";
    return d->wipe_acked ? "acknowledged" : "requested";
}

static void cli_print_device(const struct cli_ctx *c, const struct eas_device *d)
{
    struct cli_obj o;
    char t[32];

    cli_obj_begin(&o, c->json);
    cli_obj_str(&o, "id", d->id);
    cli_obj_str(&o, "type", d->type);
    cli_obj_str(&o, "user_agent", d->user_agent);
    cli_obj_str(&o, "model", d->model);
    cli_obj_str(&o, "imei", d->imei);
    cli_obj_str(&o, "os", d->os);
    cli_obj_str(&o, "os_language", d->os_language);
    cli_obj_str(&o, "friendly_name", d->friendly);
    cli_obj_str(&o, "phone_number", d->phone);
    cli_obj_str(&o, "operator", d->operator_);
    cli_obj_str(&o, "version", eas_version_name(d->version));
    cli_time(d->first_seen, t, sizeof(t));
    cli_obj_str(&o, "first_seen", t);
    cli_time(d->last_seen, t, sizeof(t));
    cli_obj_str(&o, "last_seen", t);
    cli_obj_bool(&o, "provisioned", d->policy_key != 0);
    cli_time(d->provisioned, t, sizeof(t));
    cli_obj_str(&o, "provisioned_at", t);
    cli_obj_str(&o, "wipe", cli_device_wipe_state(d));
    cli_obj_str(&o, "wipe_kind", !d->wipe ? "" : d->wipe == 2 ? "account-only" : "full");
    cli_time(d->wipe_requested, t, sizeof(t));
    cli_obj_str(&o, "wipe_requested", t);
    cli_time(d->wipe_acked_at, t, sizeof(t));
    cli_obj_str(&o, "wipe_acknowledged", t);
    cli_obj_end(&o);
    if (c->json)
        fputc('\n', stdout);
}

static int cli_device_row(const struct eas_device *d, void *ctx)
{
    struct cli_list *l = ctx;
    char t[32];

    if (l->c->json) {
        fputs(l->n ? "," : "", stdout);
        cli_print_device(l->c, d);
    } else {
        cli_time(d->last_seen, t, sizeof(t));
        printf("%-34s %-16s v%-5s last_seen=%s provisioned=%s wipe=%s\n", d->id, d->type,
               eas_version_name(d->version), t, d->policy_key ? "yes" : "no",
               cli_device_wipe_state(d));
    }
    l->n++;
    return 0;
}

static int cli_device_list(struct cli_ctx *c)
{
    struct cli_list l = {c, 0};
    struct store_err e = {0};
    int rc;

    if (c->json)
        fputs("{\"devices\":[", stdout);
    rc = eas_admin_device_list(c->store, c->argv[0], cli_device_row, &l, &e);
    if (c->json)
        fputs("]}\n", stdout);
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "mailbox");
    return CLI_EXIT_OK;
}

static int cli_device_show(struct cli_ctx *c)
{
    struct eas_device d;
    struct store_err e = {0};
    int rc = eas_admin_device_get(c->store, c->argv[0], c->argv[1], &d, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "device");
    cli_print_device(c, &d);
    return CLI_EXIT_OK;
}

static int cli_device_wipe(struct cli_ctx *c)
{
    struct store_err e = {0};
    int account_only = c->opt[OPT_ACCOUNT_ONLY] != NULL;
    int rc = eas_admin_device_wipe(c->store, c->argv[0], c->argv[1], account_only, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "device");
    cli_done(c, "%s wipe of device %s of %s requested: it happens at the device's next request",
             account_only ? "account-only" : "remote", c->argv[1], c->argv[0]);
    return CLI_EXIT_OK;
}

static int cli_device_del(struct cli_ctx *c)
{
    struct store_err e = {0};
    int rc = eas_admin_device_del(c->store, c->argv[0], c->argv[1], &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "device");
    cli_done(c, "deleted device %s of %s", c->argv[1], c->argv[0]);
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------------------------------
 * item: single calendar / contact objects (eas/eas_admin_pim.c)
 * ------------------------------------------------------------------------------------ */

static int cli_item_put(struct cli_ctx *c)
{
    struct store_err e = {0};
    const char *why;
    char *body = NULL, uid[256];
    size_t len = 0;
    int rc, replaced = 0;

    if (cli_slurp(c->argv[1], &body, &len, &why) < 0) {
        fprintf(stderr, "polaris: %s: %s\n", c->argv[1], why ? why : "cannot read");
        return CLI_EXIT_FAIL;
    }
    rc = eas_admin_item_put(c->store, c->argv[0], c->opt[OPT_FOLDER], body, len, uid,
                            sizeof(uid), &replaced, &e);
    free(body);
    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "item");
    cli_done(c, "%s item %s of %s", replaced ? "replaced" : "added", uid, c->argv[0]);
    return CLI_EXIT_OK;
}

static int cli_item_get(struct cli_ctx *c)
{
    struct store_err e = {0};
    char *body = NULL;
    size_t len = 0;
    int rc = eas_admin_item_get(c->store, c->argv[0], c->opt[OPT_FOLDER], c->argv[1], &body,
                                &len, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "item");
    fwrite(body, 1, len, stdout);
    free(body);
    return CLI_EXIT_OK;
}

static int cli_item_row(const char *folder, const char *uid, const char *name, void *ctx)
{
    int *n = ctx;

    printf("%s\t%s\t%s\n", folder, uid, name);
    (*n)++;
    return 0;
}

static int cli_item_list(struct cli_ctx *c)
{
    struct store_err e = {0};
    int n = 0;
    int rc = eas_admin_item_list(c->store, c->argv[0], c->opt[OPT_FOLDER], cli_item_row, &n, &e);

    if (rc != STORE_OK)
        return cli_store_error(c, rc, &e, "item");
    return CLI_EXIT_OK;
}

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
    {"domain", "dns", cli_domain_dns, "NAME",
     "Print the DNS records to publish for a domain, as a zone-file fragment.", 1, 1, 0},
    {"domain", "check", cli_domain_check, "NAME [--resolver IP:PORT]",
     "Look the domain's DNS records up and say which are ok, missing or wrong; marks the "
     "domain verified when its mx-verification TXT holds the token ([smtp] resolver unless "
     "--resolver).",
     1, 1, OPTBIT(OPT_RESOLVER)},
    {"domain", "dkim", cli_domain_dkim, "NAME (--enable [--selector S] | --disable)",
     "Sign outgoing mail of a domain with DKIM: --enable makes an RSA-2048 key (a new "
     "--selector makes a new key) and prints the TXT record to publish; --disable removes it.",
     1, 1, OPTBIT(OPT_ENABLE) | OPTBIT(OPT_DISABLE) | OPTBIT(OPT_SELECTOR)},
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
    {"mail", "append", cli_mail_append, "ADDRESS [--folder PATH] [FILE|DIR...]",
     "Store messages (RFC 5322 files, standard input, or every file of a directory; a "
     "Maildir's new/ and cur/ with their flags) in a mailbox folder (default INBOX), as "
     "they are: no aliases, no filters.",
     1, CLI_MAX_ARGS - 1, OPTBIT(OPT_FOLDER)},
    {"mail", "deliver", cli_mail_deliver, "[--from ADDR] RCPT... < MESSAGE",
     "Deliver a message from standard input like mail from the internet: aliases, "
     "forwards, catch-all, loops, quota, auto-replies, the queue for other domains. Prints "
     "one SMTP-style result per recipient; exit 0 only when every one was delivered or "
     "queued.",
     1, CLI_MAX_ARGS - 1, OPTBIT(OPT_FROM)},
    {"user", "autoreply", cli_user_autoreply, AUTOREPLY_SYNOPSIS,
     "Show, set or turn off a mailbox's auto-reply (at most one per sender every DAYS days; "
     "DATE like 2024-12-24, UTC; --body - reads standard input).",
     1, 1, AUTOREPLY_OPTS},
    {"alias", "autoreply", cli_alias_autoreply, AUTOREPLY_SYNOPSIS,
     "Show, set or turn off an alias's auto-reply (same options as user autoreply).", 1, 1,
     AUTOREPLY_OPTS},
    {"item", "put", cli_item_put, "ADDRESS FILE|- [--folder NAME]",
     "Put an iCalendar event, task or note, or a vCard, into a calendar, task list, notes "
     "folder or address book (default: the one of its kind), replacing the item of the same "
     "UID.",
     2, 2, OPTBIT(OPT_FOLDER)},
    {"item", "list", cli_item_list, "ADDRESS [--folder NAME]",
     "List the items (folder, UID, name) of a folder, or of the default calendar, address "
     "book, task list and notes.",
     1, 1, OPTBIT(OPT_FOLDER)},
    {"item", "get", cli_item_get, "ADDRESS UID [--folder NAME]",
     "Print the stored iCalendar or vCard of an item by its UID.", 2, 2, OPTBIT(OPT_FOLDER)},
    {"device", "list", cli_device_list, "ADDRESS", "List the ActiveSync devices of a mailbox.",
     1, 1, 0},
    {"device", "show", cli_device_show, "ADDRESS DEVICEID",
     "Show an ActiveSync device: what it told us, its policy and wipe state.", 2, 2, 0},
    {"device", "wipe", cli_device_wipe, "ADDRESS DEVICEID [--account-only]",
     "Ask a device to wipe itself (or, EAS 16.1, only this account's data) at its next request.",
     2, 2, OPTBIT(OPT_ACCOUNT_ONLY)},
    {"device", "del", cli_device_del, "ADDRESS DEVICEID",
     "Forget a device and its sync state; it starts over as a new device.", 2, 2, 0},
    {"queue", "list", cli_queue_list, "",
     "List the outbound queue: id, size, age, attempts, next attempt, sender, and each "
     "recipient's status with the last answer.",
     0, 0, 0},
    {"queue", "flush", cli_queue_flush, "",
     "Retry every queued message now (the running server picks it up within a second).", 0, 0, 0},
    {"queue", "del", cli_queue_del, "ID",
     "Remove a message from the queue without notifying anyone.", 1, 1, 0},
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
    /* Hidden debugging commands (not in the table, so not in the usage): WBXML from stdin
     * to stdout; they need neither the configuration nor the store. */
    if (strcmp(argv[0], "wbxml") == 0)
        return wbxml_cli(argc, argv);
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
