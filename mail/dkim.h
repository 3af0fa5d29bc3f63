/*
 * dkim.h — the inside of dkim.c (RFC 6376) for the queue and the unit tests: relaxed
 * canonicalization, signing with a PEM key and verifying with a published p= value. What
 * the CLI needs (per-domain keys and their DNS record) is in mail.h.
 */
#ifndef POLARIS_DKIM_H
#define POLARIS_DKIM_H

#include <stddef.h>
#include <time.h>

/* Relaxed header canonicalization (§3.4.2) of one whole field ("Name: value", folded
 * lines included, with or without its final CRLF): "name:value\r\n". malloc'd. */
char *dkim_canon_header(const char *field, size_t len, size_t *outlen);
/* Relaxed body canonicalization (§3.4.4) of a body. malloc'd (NUL-terminated). */
char *dkim_canon_body(const char *body, size_t len, size_t *outlen);

/* Signs msg (CRLF) for domain d= with selector s=: *sig receives the whole
 * "DKIM-Signature: ...\r\n" field to put on top of the message (malloc'd). */
int dkim_sign(const char *key_pem, const char *domain, const char *selector, const char *msg,
              size_t len, time_t now, char **sig, char *err, size_t errlen);

/* Verifies the first DKIM-Signature of msg against the public key p= (base64 of the
 * SubjectPublicKeyInfo, as published in DNS). 0 when valid; else -1 and err says why. */
int dkim_verify(const char *msg, size_t len, const char *pubkey_b64, char *err, size_t errlen);

/* Signs for a hosted domain with its stored key: 0 and *sig, 1 when the domain has no
 * DKIM key (nothing to do), -1 on failure. */
struct store;
int dkim_domain_sign(struct store *s, const char *domain, const char *msg, size_t len, char **sig,
                     char *err, size_t errlen);

/* The base64 SubjectPublicKeyInfo of a PEM private key (the p= value). 0 or -1. */
int dkim_pubkey_b64(const char *key_pem, char *out, size_t outlen);

#endif
