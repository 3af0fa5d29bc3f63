/* Temporary until deliver.c lands (owner: delivery helper). */
#include <stdio.h>
#include "mail/mail.h"
static int pending(struct deliver_reply *r)
{
    r->code = 451;
    snprintf(r->enhanced, sizeof(r->enhanced), "4.3.2");
    snprintf(r->text, sizeof(r->text), "delivery is not available yet");
    return -1;
}
int deliver_check_rcpt(struct deliver *d, const struct deliver_env *env, const char *rcpt,
                       struct deliver_reply *r)
{
    return pending(r);
}
int deliver_message(struct deliver *d, const struct deliver_env *env, const char *const *rcpts,
                    size_t nrcpts, const char *msg, size_t len, struct deliver_reply *r,
                    struct deliver_reply *rcpt_replies)
{
    return pending(r);
}
int deliver_rate_check(struct deliver *d, const char *address, size_t nrcpts,
                       struct deliver_reply *r)
{
    return pending(r);
}
