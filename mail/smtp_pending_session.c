/* Temporary until smtp.c lands (owner: SMTP session helper). */
#include "mail/mail.h"
void smtp_session(struct net_conn *c, void *ctx)
{
    net_printf(c, "421 4.3.2 SMTP is not available yet\r\n");
}
