/*
 * wbxml_cli.c — the hidden debugging commands `polaris wbxml decode` (WBXML on stdin,
 * XML on stdout) and `polaris wbxml encode` (XML in libwbxml's ActiveSync convention on
 * stdin, WBXML on stdout). They need no configuration or store: server/cli.c hands them
 * the command line before opening either. Exit 0 done, 1 refused input (message on
 * stderr), 2 wrong command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/wbxml.h"

#define WBXML_CLI_MAX (64u * 1024 * 1024)

/* All of stdin, at most WBXML_CLI_MAX bytes; NULL when larger or out of memory. */
static char *wbxml_cli_slurp(size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);

    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *nb;
            if (cap >= WBXML_CLI_MAX) {
                free(buf);
                return NULL;
            }
            cap *= 2;
            nb = realloc(buf, cap + 1);
            if (nb == NULL)
                free(buf);
            buf = nb;
        }
    }
    if (buf == NULL || ferror(stdin)) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int wbxml_cli_decode(const char *in, size_t len)
{
    struct eas_doc *d;
    char err[256], *xml;
    int rc = 1;

    if (wbxml_decode(in, len, &d, err, sizeof(err)) < 0) {
        fprintf(stderr, "polaris wbxml decode: %s\n", err);
        return 1;
    }
    xml = wbxml_to_xml(d);
    if (xml != NULL && fputs(xml, stdout) >= 0 && fflush(stdout) == 0)
        rc = 0;
    else
        fprintf(stderr, "polaris wbxml decode: cannot write the XML\n");
    free(xml);
    eas_doc_free(d);
    return rc;
}

static int wbxml_cli_encode(const char *in, size_t len)
{
    struct eas_doc *d;
    char err[256];
    uint8_t *out;
    size_t outlen;
    int rc = 1;

    if (wbxml_from_xml(in, len, &d, err, sizeof(err)) < 0) {
        fprintf(stderr, "polaris wbxml encode: %s\n", err);
        return 1;
    }
    if (wbxml_encode(d, &out, &outlen) < 0)
        fprintf(stderr, "polaris wbxml encode: the document cannot be encoded\n");
    else {
        if (fwrite(out, 1, outlen, stdout) == outlen && fflush(stdout) == 0)
            rc = 0;
        else
            fprintf(stderr, "polaris wbxml encode: cannot write the WBXML\n");
        free(out);
    }
    eas_doc_free(d);
    return rc;
}

int wbxml_cli(int argc, char **argv)
{
    char *in;
    size_t len;
    int rc;

    if (argc != 2 || (strcmp(argv[1], "decode") != 0 && strcmp(argv[1], "encode") != 0)) {
        fprintf(stderr, "Usage: polaris wbxml decode|encode < INPUT > OUTPUT\n");
        return 2;
    }
    in = wbxml_cli_slurp(&len);
    if (in == NULL) {
        fprintf(stderr, "polaris wbxml: cannot read stdin (at most %u bytes)\n", WBXML_CLI_MAX);
        return 1;
    }
    rc = argv[1][0] == 'd' ? wbxml_cli_decode(in, len) : wbxml_cli_encode(in, len);
    free(in);
    return rc;
}
