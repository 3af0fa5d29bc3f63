/*
 * fuzz_wbxml.c — libFuzzer target for the ActiveSync WBXML decoder (eas/wbxml.c), which
 * reads every request body a device sends.
 *
 * Invariants: the decoder never reads past the input (ASan), a refusal leaves no
 * document and says why; an accepted document re-encodes, the encoding decodes again to
 * a document that encodes to the same bytes (encode is a fixed point after one round),
 * and its XML rendering, when XML can carry it, parses back to the same bytes too.
 *
 *   fuzz_wbxml -max_len=4096 tests/fuzz/corpus/wbxml
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/wbxml.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_xml(const struct eas_doc *d, const uint8_t *enc, size_t enclen)
{
    char *xml = wbxml_to_xml(d), err[256];
    struct eas_doc *back;
    uint8_t *out;
    size_t len;

    CHECK(xml != NULL);
    /* Text with control characters has no XML 1.0 form: only then may the parse fail. */
    if (wbxml_from_xml(xml, strlen(xml), &back, err, sizeof(err)) == 0) {
        CHECK(wbxml_encode(back, &out, &len) == 0);
        CHECK(len == enclen && memcmp(out, enc, len) == 0);
        free(out);
        eas_doc_free(back);
    } else {
        int ctl = 0;
        for (const char *p = xml; *p; p++)
            if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t')
                ctl = 1;
        CHECK(ctl);
    }
    free(xml);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct eas_doc *d = (struct eas_doc *)1, *d2;
    char err[256];
    uint8_t *e1, *e2;
    size_t l1, l2;

    if (wbxml_decode(data, size, &d, err, sizeof(err)) < 0) {
        CHECK(d == NULL);
        CHECK(err[0] != '\0');
        return 0;
    }
    CHECK(d != NULL && eas_doc_root(d) != NULL);
    CHECK(wbxml_encode(d, &e1, &l1) == 0);
    CHECK(wbxml_decode(e1, l1, &d2, err, sizeof(err)) == 0);
    CHECK(wbxml_encode(d2, &e2, &l2) == 0);
    CHECK(l1 == l2 && memcmp(e1, e2, l1) == 0);
    CHECK(l1 <= size + 64); /* never larger than the input beyond the normalised header */
    check_xml(d2, e1, l1);
    free(e1);
    free(e2);
    eas_doc_free(d);
    eas_doc_free(d2);
    return 0;
}
