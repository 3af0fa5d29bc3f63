/*
 * eas_cmd_validatecert.c — ValidateCert (MS-ASCMD 2.2.1.22): a device asks the server
 * whether the S/MIME certificates of a signed message can be trusted.
 *
 * Each Certificate is checked with OpenSSL against the system's trust store (plus the
 * roots in `[eas] smime_ca`, for deployments with a private CA), using the
 * CertificateChain elements as untrusted intermediates, for the S/MIME signing purpose.
 * OpenSSL's verdict is mapped to the command's per-certificate Status.
 *
 * CheckCRL: revocation lists are never fetched while a request waits (a CRL server that
 * hangs would hang the device's request, and the server may have no route out). When the
 * client asks for the check and the certificate names a CRL distribution point, the
 * answer is 16, "revocation status cannot be determined", which is the truth; a
 * certificate without a distribution point has nothing to check.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "eas/eas_int.h"

#define VC_MAX_CERTS 16
#define VC_MAX_DER   (64 * 1024) /* one certificate, decoded */

enum {
    VC_OK = 1,
    VC_PROTOCOL = 2,
    VC_BAD_SIGNATURE = 3,
    VC_UNTRUSTED = 4,
    VC_BAD_CHAIN = 5,
    VC_NOT_FOR_SIGNING = 6,
    VC_EXPIRED = 7,
    VC_BAD_PERIODS = 8,
    VC_MISUSED = 9,
    VC_BAD_INFO = 10,
    VC_REVOKED = 13,
    VC_NO_CRL = 16,
    VC_FAILED = 17, /* the command failed (also "unknown server error" per certificate) */
};

/* A certificate element: base64 text as the specification says, or raw DER bytes as some
 * clients send it in an opaque. NULL when it is not a certificate. */
static X509 *vc_cert(const struct eas_node *n)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    ssize_t len;
    X509 *x = NULL;

    if (!n->data || n->len == 0 || n->len > VC_MAX_DER * 2)
        return NULL;
    if (n->opaque && (unsigned char)n->data[0] == 0x30) {
        p = (const unsigned char *)n->data;
        return d2i_X509(NULL, &p, (long)n->len);
    }
    der = malloc(n->len);
    if (!der)
        return NULL;
    len = b64_decode(n->data, n->len, der, n->len, B64_SKIP_JUNK);
    if (len > 0) {
        p = der;
        x = d2i_X509(NULL, &p, (long)len);
    }
    free(der);
    return x;
}

static int vc_status_of(int err)
{
    switch (err) {
    case X509_V_OK:
        return VC_OK;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
        return VC_BAD_SIGNATURE;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
        return VC_UNTRUSTED;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_INVALID_CA:
        return VC_BAD_CHAIN;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return VC_EXPIRED;
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
        return VC_BAD_PERIODS;
    case X509_V_ERR_INVALID_PURPOSE:
        return VC_NOT_FOR_SIGNING;
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_INVALID_EXTENSION:
        return VC_MISUSED;
    case X509_V_ERR_CERT_REVOKED:
        return VC_REVOKED;
    default:
        return VC_BAD_INFO;
    }
}

static X509_STORE *vc_trust(const struct config *cfg)
{
    X509_STORE *st = X509_STORE_new();

    if (!st)
        return NULL;
    if (X509_STORE_set_default_paths(st) != 1)
        ERR_clear_error(); /* no system store: only the configured roots count */
    if (cfg->eas_smime_ca[0] && X509_STORE_load_locations(st, cfg->eas_smime_ca, NULL) != 1) {
        log_warn("eas", "ValidateCert: cannot load [eas] smime_ca %s", cfg->eas_smime_ca);
        ERR_clear_error();
    }
    return st;
}

/* Verifies one certificate; the Status for it. */
static int vc_verify(X509_STORE *trust, X509 *leaf, STACK_OF(X509) * chain, int check_crl)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int status = VC_FAILED;

    if (!ctx)
        return VC_FAILED;
    if (X509_STORE_CTX_init(ctx, trust, leaf, chain) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_SIGN) != 1)
        goto out;
    if (X509_verify_cert(ctx) == 1) {
        status = VC_OK;
        if (check_crl) {
            STACK_OF(DIST_POINT) *dp =
                X509_get_ext_d2i(leaf, NID_crl_distribution_points, NULL, NULL);
            if (dp)
                status = VC_NO_CRL;
            CRL_DIST_POINTS_free(dp);
        }
    } else {
        status = vc_status_of(X509_STORE_CTX_get_error(ctx));
    }
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return status;
}

int eas_cmd_validatecert(struct eas_req *req)
{
    const struct eas_node *in = req->in ? eas_doc_root(req->in) : NULL;
    const struct eas_node *certs, *n;
    struct eas_node *root;
    STACK_OF(X509) *chain = NULL;
    X509_STORE *trust = NULL;
    size_t ncerts = 0;
    int check_crl;

    req->out = eas_doc_new();
    if (!req->out)
        return -1;
    root = eas_add(req->out, NULL, EAS_VALIDATECERT_VALIDATECERT);
    certs = in && in->tag == EAS_VALIDATECERT_VALIDATECERT
                ? eas_child(in, EAS_VALIDATECERT_CERTIFICATES)
                : NULL;
    for (n = certs ? eas_child(certs, EAS_VALIDATECERT_CERTIFICATE) : NULL; n;
         n = eas_next(n, EAS_VALIDATECERT_CERTIFICATE))
        ncerts++;
    if (ncerts == 0 || ncerts > VC_MAX_CERTS) {
        eas_add_int(req->out, root, EAS_VALIDATECERT_STATUS, VC_PROTOCOL);
        return 0;
    }
    check_crl = eas_child_int(in, EAS_VALIDATECERT_CHECKCRL, 0) == 1;
    if (!(chain = sk_X509_new_null()) || !(trust = vc_trust(req->e->cfg))) {
        eas_add_int(req->out, root, EAS_VALIDATECERT_STATUS, VC_FAILED);
        goto out;
    }
    /* the intermediates the client sent help build paths; they are not trusted */
    const struct eas_node *cc = eas_child(in, EAS_VALIDATECERT_CERTIFICATECHAIN);
    size_t nchain = 0;
    for (n = cc ? eas_child(cc, EAS_VALIDATECERT_CERTIFICATE) : NULL; n && nchain < VC_MAX_CERTS;
         n = eas_next(n, EAS_VALIDATECERT_CERTIFICATE), nchain++) {
        X509 *x = vc_cert(n);
        if (x && !sk_X509_push(chain, x))
            X509_free(x);
    }
    eas_add_int(req->out, root, EAS_VALIDATECERT_STATUS, VC_OK);
    for (n = eas_child(certs, EAS_VALIDATECERT_CERTIFICATE); n;
         n = eas_next(n, EAS_VALIDATECERT_CERTIFICATE)) {
        X509 *leaf = vc_cert(n);
        struct eas_node *c = eas_add(req->out, root, EAS_VALIDATECERT_CERTIFICATE);
        eas_add_int(req->out, c, EAS_VALIDATECERT_STATUS,
                    leaf ? vc_verify(trust, leaf, chain, check_crl) : VC_BAD_INFO);
        X509_free(leaf);
    }
out:
    if (chain)
        sk_X509_pop_free(chain, X509_free);
    X509_STORE_free(trust);
    return 0;
}
