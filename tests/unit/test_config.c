/*
 * test_config.c — configuration defaults, a full file, every kind of error (with FILE:LINE
 * in the message), relative path resolution, and host:port splitting.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server.h"

struct fixture {
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/polaris-test-config-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/polaris.ini", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Loads `text` and expects failure with an error containing each of the given pieces. */
static void expect_error(struct fixture *f, const char *text, const char *line_tag,
                         const char *what)
{
    struct config cfg;
    char err[512] = "", want[PATH_MAX + 32];

    write_file(f->path, text);
    assert_int_equal(config_load(&cfg, f->path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:%s:", f->path, line_tag);
    if (!strstr(err, want) || !strstr(err, what))
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err, want, what);
}

static void test_defaults(void **state)
{
    struct config cfg;
    (void)state;

    config_defaults(&cfg);
    assert_true(cfg.hostname[0] != '\0');
    assert_string_equal(cfg.web_base, "w.emailarray.com");
    assert_string_equal(cfg.data_dir, "./data");
    assert_string_equal(cfg.log_level, "info");
    assert_int_equal(cfg.http_threads, 4);
    assert_int_equal(cfg.max_request_bytes, 64LL * 1024 * 1024);
    assert_string_equal(cfg.http, "");
    assert_string_equal(cfg.https, "");
    assert_string_equal(cfg.imap, "");
    assert_string_equal(cfg.submissions, "");
    assert_string_equal(cfg.tls_cert, "");
    assert_int_equal(cfg.auth_fail_max, 10);
    assert_int_equal(cfg.auth_fail_window, 300);
    assert_int_equal(cfg.auth_cache_ttl, 300);
    assert_null(cfg.path);
}

static void test_empty_file_gives_defaults(void **state)
{
    struct fixture *f = *state;
    struct config cfg;
    char err[512] = "", want[PATH_MAX + 8];

    write_file(f->path, "; nothing but a comment\n\n");
    assert_int_equal(config_load(&cfg, f->path, err, sizeof(err)), 0);
    assert_string_equal(cfg.web_base, "w.emailarray.com");
    /* the default "./data" is relative too, so it lands beside the file */
    snprintf(want, sizeof(want), "%s/data", f->dir);
    assert_string_equal(cfg.data_dir, want);
    assert_ptr_equal(cfg.path, f->path);
}

static void test_full_file(void **state)
{
    struct fixture *f = *state;
    struct config cfg;
    char err[512] = "";

    write_file(f->path, "# Polaris\n"
                        "[server]\n"
                        "hostname = mail.example.net\n"
                        "web_base = w.example.net\n"
                        "data_dir = /var/lib/polaris\n"
                        "log_level = debug\n"
                        "http_threads = 8\n"
                        "max_request = 10M\n"
                        "\n"
                        "[listen]\n"
                        "http = 127.0.0.1:8080\n"
                        "https = [::1]:8443\n"
                        "imap = :143\n"
                        "imaps = 0.0.0.0:993\n"
                        "pop3 =\n"
                        "pop3s = :995\n"
                        "smtp = :25 ; inline comment\n"
                        "submission = :587\n"
                        "submissions = :465\n"
                        "[tls]\n"
                        "cert = /etc/polaris/cert.pem\n"
                        "key = /etc/polaris/key.pem\n"
                        "[auth]\n"
                        "fail_max = 5\n"
                        "fail_window = 60\n"
                        "cache_ttl = 0\n");
    if (config_load(&cfg, f->path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(cfg.hostname, "mail.example.net");
    assert_string_equal(cfg.web_base, "w.example.net");
    assert_string_equal(cfg.data_dir, "/var/lib/polaris");
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(cfg.http_threads, 8);
    assert_int_equal(cfg.max_request_bytes, 10000000);
    assert_string_equal(cfg.http, "127.0.0.1:8080");
    assert_string_equal(cfg.https, "[::1]:8443");
    assert_string_equal(cfg.imap, ":143");
    assert_string_equal(cfg.imaps, "0.0.0.0:993");
    assert_string_equal(cfg.pop3, "");
    assert_string_equal(cfg.pop3s, ":995");
    assert_string_equal(cfg.smtp, ":25");
    assert_string_equal(cfg.submission, ":587");
    assert_string_equal(cfg.submissions, ":465");
    assert_string_equal(cfg.tls_cert, "/etc/polaris/cert.pem");
    assert_string_equal(cfg.tls_key, "/etc/polaris/key.pem");
    assert_int_equal(cfg.auth_fail_max, 5);
    assert_int_equal(cfg.auth_fail_window, 60);
    assert_int_equal(cfg.auth_cache_ttl, 0);
    assert_string_equal(cfg.path, f->path);
}

static void test_errors(void **state)
{
    struct fixture *f = *state;
    char longline[400], longval[300];

    expect_error(f, "[server]\nhostname = a\n[nosuch]\nx = 1\n", "3", "unknown section");
    expect_error(f, "[server]\n\n[empty]\n", "3", "[empty]: unknown section");
    expect_error(f, "[server]\nhostnme = a\n", "2", "[server] hostnme: unknown key");
    expect_error(f, "[server]\nhttp_threads = four\n", "2", "[server] http_threads");
    expect_error(f, "[server]\nhttp_threads = 0\n", "2", "not a number");
    expect_error(f, "[server]\nhttp_threads = 99999999999999999999\n", "2", "not a number");
    expect_error(f, "[auth]\n\nfail_window = -1\n", "3", "[auth] fail_window");
    expect_error(f, "[server]\nmax_request = lots\n", "2", "[server] max_request: not a size");
    expect_error(f, "[server]\nlog_level = loud\n", "2", "[server] log_level");
    expect_error(f, "[listen]\nimap = 143\n", "2", "[listen] imap: not host:port");
    expect_error(f, "[listen]\nhttp = localhost:99999\n", "2", "[listen] http");
    expect_error(f, "[listen]\nhttp = ::1:80\n", "2", "[listen] http");
    expect_error(f, "[server]\nhostname = bad host\n", "2", "[server] hostname");
    expect_error(f, "[server]\nhostname = a\nhostname = b\n", "3", "set twice (first on line 2)");
    expect_error(f, "[server]\nthis line has no equals sign\n", "2", "syntax error");
    expect_error(f, "hostname = a\n", "1", "unknown section");
    /* over-long value: log_level holds 15 bytes */
    expect_error(f, "[server]\nlog_level = debugdebugdebugdebug\n", "2", "value longer than");
    /* a listener address longer than CFG_ADDR_MAX but within the line limit */
    memset(longval, 'a', sizeof(longval));
    snprintf(longval + 140, sizeof(longval) - 140, ":80");
    snprintf(longline, sizeof(longline), "[listen]\nhttp = %s\n", longval);
    expect_error(f, longline, "2", "[listen] http: value longer than 127 bytes");
    /* a line past libinih's buffer is one error, not two half-lines */
    memset(longline, 0, sizeof(longline));
    memcpy(longline, "[tls]\ncert = /", 14);
    memset(longline + 14, 'x', 300);
    strcat(longline, "\n");
    expect_error(f, longline, "2", "line longer than");
}

static void test_missing_file(void **state)
{
    struct fixture *f = *state;
    struct config cfg;
    char err[512] = "", path[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%s/absent.ini", f->dir);
    assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "absent.ini"));
    assert_non_null(strstr(err, "No such file"));
}

static void test_relative_paths(void **state)
{
    struct fixture *f = *state;
    struct config cfg;
    char err[512] = "", want[PATH_MAX + 32], cwd[PATH_MAX], rel[PATH_MAX + 16];

    write_file(f->path, "[server]\ndata_dir = ./store/x\n[tls]\ncert = c.pem\nkey = /abs/k.pem\n");
    assert_int_equal(config_load(&cfg, f->path, err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "%s/store/x", f->dir);
    assert_string_equal(cfg.data_dir, want);
    snprintf(want, sizeof(want), "%s/c.pem", f->dir);
    assert_string_equal(cfg.tls_cert, want);
    assert_string_equal(cfg.tls_key, "/abs/k.pem");

    /* a config path given relative to the working directory */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(f->dir), 0);
    snprintf(rel, sizeof(rel), "polaris.ini");
    assert_int_equal(config_load(&cfg, rel, err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "%s/store/x", f->dir);
    assert_string_equal(cfg.data_dir, want);
    assert_int_equal(chdir(cwd), 0);
}

static void split_ok(const char *s, const char *host, int port)
{
    char h[64];
    int p = -1;

    if (config_split_addr(s, h, sizeof(h), &p) != 0)
        fail_msg("\"%s\" refused", s);
    assert_string_equal(h, host);
    assert_int_equal(p, port);
}

static void split_bad(const char *s)
{
    char h[64];
    int p;

    if (config_split_addr(s, h, sizeof(h), &p) == 0)
        fail_msg("\"%s\" accepted", s);
}

static void test_split_addr(void **state)
{
    char tiny[4];
    int p;
    (void)state;

    split_ok("127.0.0.1:8080", "127.0.0.1", 8080);
    split_ok("[::1]:993", "::1", 993);
    split_ok(":25", "", 25);
    split_ok("localhost:0", "localhost", 0);
    split_ok("mail.example.com:65535", "mail.example.com", 65535);
    split_ok("[fe80::1%lo]:143", "fe80::1%lo", 143);
    split_bad("host");
    split_bad("host:99999");
    split_bad("host:65536");
    split_bad("host:abc");
    split_bad("host:");
    split_bad("host:-1");
    split_bad("host:+80");
    split_bad("");
    split_bad(":");
    split_bad("::1:25");
    split_bad("[::1]");
    split_bad("[::1]993");
    split_bad("[]:993");
    split_bad("bad host:25");
    split_bad("host:25\n");
    assert_int_equal(config_split_addr("example.com:25", tiny, sizeof(tiny), &p), -1);
    assert_int_equal(config_split_addr(NULL, tiny, sizeof(tiny), &p), -1);
}

static void test_log_level_parse(void **state)
{
    enum log_level l;
    (void)state;

    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_level_parse("WARN", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_level_parse("error", &l), 0);
    assert_int_equal(l, LOG_ERROR);
    assert_int_equal(log_level_parse("loud", &l), -1);
    assert_int_equal(log_level_parse("", &l), -1);
}

/* A message with a newline must stay on one line (no forged entries). */
static void test_log_escapes(void **state)
{
    int fds[2], saved;
    char buf[512];
    ssize_t n;
    (void)state;

    assert_int_equal(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    log_set_level(LOG_INFO);
    log_debug("test", "hidden");
    log_info("test", "user %s", "bob\n2024-01-01T00:00:00.000Z INFO auth: forged\x01");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_null(strstr(buf, "hidden"));
    assert_non_null(strstr(buf, "Z INFO test: user bob\\n2024"));
    assert_non_null(strstr(buf, "forged\\x01\n"));
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* exactly one line */
    assert_true(buf[4] == '-' && buf[10] == 'T' && buf[19] == '.' && buf[23] == 'Z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_empty_file_gives_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_paths, setup, teardown),
        cmocka_unit_test(test_split_addr),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_log_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
