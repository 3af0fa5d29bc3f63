/*
 * srs.h — the Sender Rewriting Scheme (Shevek's SRS paper, the libsrs2 address format) for
 * mail the pipeline forwards from an external sender to an external target, so that the
 * next hop's SPF check sees our domain and its bounces come back to us:
 *
 *   SRS0=HHHH=TT=orig-domain=orig-local@forwarding-domain
 *   SRS1=HHHH=first-forwarder==HHHH=TT=orig-domain=orig-local@forwarding-domain
 *
 * HHHH: the first 4 characters of base64(HMAC-SHA1(secret, lower-case(the rest))); TT:
 * the day number (unix days mod 1024) in base32. A reverse rewrite checks the hash with
 * each known secret (case-insensitively: some MTAs fold case) and that the address is at
 * most SRS_MAX_AGE days old. Private to mail/ and the unit tests.
 */
#ifndef POLARIS_SRS_H
#define POLARIS_SRS_H

#include <stddef.h>
#include <stdint.h>

#define SRS_MAX_AGE   21 /* days an SRS address stays valid for bounces */
#define SRS_KEYS_MAX  4  /* the current secret and up to three previous ones */
#define SRS_KEY_MAX   128
#define SRS_LOCAL_MAX 64 /* RFC 5321 §4.5.3.1.1: a longer rewrite is not made */

struct srs_keys {
    size_t n;
    char key[SRS_KEYS_MAX][SRS_KEY_MAX + 1]; /* key[0] signs; all of them verify */
};

/* The secrets from data_dir/srs.key: one per line, the current one first (to rotate, put
 * a new line on top and keep the old one below for SRS_MAX_AGE days). Created with a
 * random secret (mode 0600) when missing. 0, or -1 with err. */
int srs_keys_load(const char *data_dir, struct srs_keys *k, char *err, size_t errlen);

/* Does this local part look like an SRS address (SRS0 or SRS1, any case)? */
int srs_is_srs(const char *local, size_t len);

/* Rewrites sender (local@domain) for forwarding by fwd_domain at unix time now: SRS0 for
 * an ordinary address, SRS1 for an SRS0 or SRS1 one. 0 and out; -1 when the sender is
 * not an address or the result does not fit (SRS_LOCAL_MAX, outlen). */
int srs_forward(const struct srs_keys *k, const char *sender, const char *fwd_domain, int64_t now,
                char *out, size_t outlen);

/* Undoes one rewrite of addr (SRS0: the original sender; SRS1: the SRS0 address at the
 * first forwarder). 0 and out; 1 when addr is not an SRS address; -1 when it is one but
 * malformed, with a wrong hash, or too old. */
int srs_reverse(const struct srs_keys *k, const char *addr, int64_t now, char *out, size_t outlen);

#endif
