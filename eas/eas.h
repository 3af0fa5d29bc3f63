/*
 * eas.h — the one public interface of eas/: Exchange ActiveSync (MS-ASHTTP, protocol
 * versions 2.5 to 16.1) for Enhanced mailboxes, served on the HTTP front end at
 * /Microsoft-Server-ActiveSync, plus the device administration the CLI offers.
 */
#ifndef POLARIS_EAS_H
#define POLARIS_EAS_H

#include "mail/mail.h"
#include "server/server.h"
#include "store/store.h"

struct eas;

/* The engine for one server. Everything passed in outlives it; dl is the delivery
 * pipeline SendMail/SmartReply/SmartForward and meeting replies go through. */
struct eas *eas_new(struct store *st, const struct config *cfg, struct deliver *dl);
int eas_register(struct eas *e, struct http_server *h);
void eas_free(struct eas *e);

#endif
