/*
 * eas_cmd_provision.c — Provision (MS-ASPROV): the two-phase policy handshake and remote
 * wipe.
 *
 *   phase 1  the device asks for the policy (PolicyType, no PolicyKey): it gets the policy
 *            document and a temporary PolicyKey;
 *   phase 2  it acknowledges with that key: it gets the final PolicyKey, which every later
 *            request carries (X-MS-PolicyKey). A retry of phase 2 after a lost answer gets
 *            the same final key again.
 *
 * The policy is deliberately permissive (no device password, nothing forbidden): the
 * hosting product does not manage devices; provisioning exists so that clients that
 * insist on it can proceed, and for remote wipe. docs/activesync.md lists it.
 *
 * Remote wipe: once an administrator asked for one (`polaris device wipe`), every
 * Provision answer carries RemoteWipe (16.1: AccountOnlyRemoteWipe for an account-only
 * wipe) instead of a policy, before and after the device acknowledges it, and every
 * other command is sent here (Status 140 / HTTP 449) until the device is deleted.
 *
 * 14.1+ devices send settings:DeviceInformation inside Provision; it is stored on the
 * device record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eas/eas_int.h"

#define EAS_POLICY_WBXML "MS-EAS-Provisioning-WBXML"
#define EAS_POLICY_WAP   "MS-WAP-Provisioning-XML"

/* The permissive policy (MS-ASPROV 2.2.2.27): element, value, first version that has it. */
static const struct {
    unsigned tag;
    const char *value;
    int min_version;
} eas_policy[] = {
    {EAS_PROVISION_DEVICEPASSWORDENABLED, "0", EAS_V120},
    {EAS_PROVISION_ALPHANUMERICDEVICEPASSWORDREQUIRED, "0", EAS_V120},
    {EAS_PROVISION_PASSWORDRECOVERYENABLED, "0", EAS_V120},
    {EAS_PROVISION_REQUIRESTORAGECARDENCRYPTION, "0", EAS_V120},
    {EAS_PROVISION_ATTACHMENTSENABLED, "1", EAS_V120},
    {EAS_PROVISION_MINDEVICEPASSWORDLENGTH, "1", EAS_V120},
    {EAS_PROVISION_ALLOWSIMPLEDEVICEPASSWORD, "1", EAS_V120},
    {EAS_PROVISION_DEVICEPASSWORDHISTORY, "0", EAS_V120},
    {EAS_PROVISION_ALLOWSTORAGECARD, "1", EAS_V121},
    {EAS_PROVISION_ALLOWCAMERA, "1", EAS_V121},
    {EAS_PROVISION_REQUIREDEVICEENCRYPTION, "0", EAS_V121},
    {EAS_PROVISION_ALLOWUNSIGNEDAPPLICATIONS, "1", EAS_V121},
    {EAS_PROVISION_ALLOWUNSIGNEDINSTALLATIONPACKAGES, "1", EAS_V121},
    {EAS_PROVISION_MINDEVICEPASSWORDCOMPLEXCHARACTERS, "1", EAS_V121},
    {EAS_PROVISION_ALLOWWIFI, "1", EAS_V121},
    {EAS_PROVISION_ALLOWTEXTMESSAGING, "1", EAS_V121},
    {EAS_PROVISION_ALLOWPOPIMAPEMAIL, "1", EAS_V121},
    {EAS_PROVISION_ALLOWBLUETOOTH, "2", EAS_V121},
    {EAS_PROVISION_ALLOWIRDA, "1", EAS_V121},
    {EAS_PROVISION_REQUIREMANUALSYNCWHENROAMING, "0", EAS_V121},
    {EAS_PROVISION_ALLOWDESKTOPSYNC, "1", EAS_V121},
    {EAS_PROVISION_MAXCALENDARAGEFILTER, "0", EAS_V121},
    {EAS_PROVISION_ALLOWHTMLEMAIL, "1", EAS_V121},
    {EAS_PROVISION_MAXEMAILAGEFILTER, "0", EAS_V121},
    {EAS_PROVISION_MAXEMAILBODYTRUNCATIONSIZE, "-1", EAS_V121},
    {EAS_PROVISION_MAXEMAILHTMLBODYTRUNCATIONSIZE, "-1", EAS_V121},
    {EAS_PROVISION_REQUIRESIGNEDSMIMEMESSAGES, "0", EAS_V121},
    {EAS_PROVISION_REQUIREENCRYPTEDSMIMEMESSAGES, "0", EAS_V121},
    {EAS_PROVISION_REQUIRESIGNEDSMIMEALGORITHM, "0", EAS_V121},
    {EAS_PROVISION_REQUIREENCRYPTIONSMIMEALGORITHM, "0", EAS_V121},
    {EAS_PROVISION_ALLOWSMIMEENCRYPTIONALGORITHMNEGOTIATION, "2", EAS_V121},
    {EAS_PROVISION_ALLOWSMIMESOFTCERTS, "1", EAS_V121},
    {EAS_PROVISION_ALLOWBROWSER, "1", EAS_V121},
    {EAS_PROVISION_ALLOWCONSUMEREMAIL, "1", EAS_V121},
    {EAS_PROVISION_ALLOWREMOTEDESKTOP, "1", EAS_V121},
    {EAS_PROVISION_ALLOWINTERNETSHARING, "1", EAS_V121},
};

/* 2.5: the same in the Windows Mobile provisioning XML; 4131 = 1: no device password. */
static const char eas_policy_wap[] =
    "<wap-provisioningdoc><characteristic type=\"SecurityPolicy\">"
    "<parm name=\"4131\" value=\"1\"/></characteristic></wap-provisioningdoc>";

/* Provision Status values (MS-ASPROV 2.2.2.54.2) and Policy Status values (2.2.2.54.1). */
enum {
    PROV_OK = 1,
    PROV_PROTOCOL_ERROR = 2,
    PROV_SERVER_ERROR = 3,
};
enum {
    POLICY_OK = 1,
    POLICY_UNKNOWN_TYPE = 3,
    POLICY_WRONG_KEY = 5,
};

static struct eas_node *eas_prov_policy_data(struct eas_req *req, struct eas_node *policy)
{
    struct eas_doc *d = req->out;
    struct eas_node *data, *doc;

    if (req->version == EAS_V25)
        return eas_add_text(d, policy, EAS_PROVISION_DATA, eas_policy_wap);
    data = eas_add(d, policy, EAS_PROVISION_DATA);
    doc = data ? eas_add(d, data, EAS_PROVISION_EASPROVISIONDOC) : NULL;
    if (!doc)
        return NULL;
    for (size_t i = 0; i < sizeof(eas_policy) / sizeof(eas_policy[0]); i++)
        if (req->version >= eas_policy[i].min_version &&
            !eas_add_text(d, doc, eas_policy[i].tag, eas_policy[i].value))
            return NULL;
    return data;
}

/* Answers the Policy: phase 1 (no key) or phase 2 (the temporary key back). Changes the
 * device record; the caller saves it. */
static int eas_prov_policy(struct eas_req *req, const struct eas_node *in,
                           struct eas_node *policies)
{
    struct eas_device *dev = req->dev;
    const char *want = req->version == EAS_V25 ? EAS_POLICY_WAP : EAS_POLICY_WBXML;
    const char *type = eas_child_text(in, EAS_PROVISION_POLICYTYPE);
    const char *key = eas_child_text(in, EAS_PROVISION_POLICYKEY);
    struct eas_node *p = eas_add(req->out, policies, EAS_PROVISION_POLICY);
    char num[24];

    if (!p || !eas_add_text(req->out, p, EAS_PROVISION_POLICYTYPE, type ? type : want))
        return -1;
    if (!type || strcmp(type, want) != 0)
        return eas_add_int(req->out, p, EAS_PROVISION_STATUS, POLICY_UNKNOWN_TYPE) ? 0 : -1;
    if (!key) {
        /* Phase 1: a new temporary key each time, so a stale acknowledgement fails. */
        dev->pending_key = eas_random32();
        snprintf(num, sizeof(num), "%llu", (unsigned long long)dev->pending_key);
        if (!eas_add_int(req->out, p, EAS_PROVISION_STATUS, POLICY_OK) ||
            !eas_add_text(req->out, p, EAS_PROVISION_POLICYKEY, num) ||
            !eas_prov_policy_data(req, p))
            return -1;
        return 0;
    }
    uint64_t k = strtoull(key, NULL, 10);
    if (dev->pending_key && k == dev->pending_key) {
        dev->policy_key = eas_random32();
        dev->pending_key = 0;
        dev->provisioned = (int64_t)time(NULL);
        log_info("eas", "%s: device %s provisioned", req->acct->address, dev->id);
    } else if (!(dev->policy_key && k == dev->policy_key)) {
        return eas_add_int(req->out, p, EAS_PROVISION_STATUS, POLICY_WRONG_KEY) ? 0 : -1;
    }
    snprintf(num, sizeof(num), "%llu", (unsigned long long)dev->policy_key);
    if (!eas_add_int(req->out, p, EAS_PROVISION_STATUS, POLICY_OK) ||
        !eas_add_text(req->out, p, EAS_PROVISION_POLICYKEY, num))
        return -1;
    return 0;
}

/* The device's answer to a wipe: <RemoteWipe><Status>1</Status></RemoteWipe>. */
static void eas_prov_wipe_ack(struct eas_req *req, const struct eas_node *root)
{
    struct eas_device *dev = req->dev;
    unsigned tag = dev->wipe == 2 ? EAS_PROVISION_ACCOUNTONLYREMOTEWIPE : EAS_PROVISION_REMOTEWIPE;
    const struct eas_node *n = eas_child(root, tag);

    if (!n || dev->wipe_acked)
        return;
    long long st = eas_child_int(n, EAS_PROVISION_STATUS, 0);
    if (st == 1 || st == 2) {
        dev->wipe_acked = 1;
        dev->wipe_acked_at = (int64_t)time(NULL);
        log_info("eas", "%s: device %s acknowledged the %swipe (%s)", req->acct->address, dev->id,
                 dev->wipe == 2 ? "account-only " : "", st == 1 ? "success" : "failure");
    }
}

static int eas_prov_build(struct eas_req *req, const struct eas_node *root)
{
    struct eas_doc *d = req->out;
    struct eas_node *out = eas_add(d, NULL, EAS_PROVISION_PROVISION), *n;
    const struct eas_node *di = eas_child(root, EAS_SETTINGS_DEVICEINFORMATION);
    const struct eas_node *pols = eas_child(root, EAS_PROVISION_POLICIES);
    const struct eas_node *pol = pols ? eas_child(pols, EAS_PROVISION_POLICY) : NULL;

    if (!out)
        return -1;
    if (di) {
        eas_devinfo_parse(eas_child(di, EAS_SETTINGS_SET), req->dev);
        n = eas_add(d, out, EAS_SETTINGS_DEVICEINFORMATION);
        if (!n || !eas_add_int(d, n, EAS_SETTINGS_STATUS, 1))
            return -1;
    }
    if (req->dev->wipe) {
        eas_prov_wipe_ack(req, root);
        if (!eas_add_int(d, out, EAS_PROVISION_STATUS, PROV_OK))
            return -1;
        return eas_add(d, out,
                       req->dev->wipe == 2 ? EAS_PROVISION_ACCOUNTONLYREMOTEWIPE
                                           : EAS_PROVISION_REMOTEWIPE)
                   ? 0
                   : -1;
    }
    if (!pol)
        return eas_add_int(d, out, EAS_PROVISION_STATUS, PROV_PROTOCOL_ERROR) ? 0 : -1;
    if (!eas_add_int(d, out, EAS_PROVISION_STATUS, PROV_OK))
        return -1;
    n = eas_add(d, out, EAS_PROVISION_POLICIES);
    return n ? eas_prov_policy(req, pol, n) : -1;
}

/* A request we cannot read gets Provision Status 2 and nothing changes. */
static int eas_prov_protocol_error(struct eas_req *req)
{
    struct eas_node *root;

    eas_doc_free(req->out);
    req->out = eas_doc_new();
    root = req->out ? eas_add(req->out, NULL, EAS_PROVISION_PROVISION) : NULL;
    if (!root || !eas_add_int(req->out, root, EAS_PROVISION_STATUS, PROV_PROTOCOL_ERROR))
        return -1;
    return 0;
}

int eas_cmd_provision(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL;
    struct store_err e = {0};
    int rc;

    if (!root || root->tag != EAS_PROVISION_PROVISION)
        return eas_prov_protocol_error(req);
    if (!(req->out = eas_doc_new()))
        return -1;
    /* Read, change and write the device in one transaction: an administrator's wipe
     * arriving meanwhile is either seen here or written after us, never lost. */
    struct eas_device touched = *req->dev; /* what this request told us (eas_http.c) */
    if (store_txn_begin(req->u, &e) != STORE_OK)
        return -1;
    rc = eas_device_load(req->u, req->device_id, req->dev);
    if (rc == STORE_ENOTFOUND) {
        *req->dev = touched; /* the device's first request */
        rc = STORE_OK;
    } else if (rc == STORE_OK) {
        memcpy(req->dev->type, touched.type, sizeof(touched.type));
        memcpy(req->dev->user_agent, touched.user_agent, sizeof(touched.user_agent));
        req->dev->version = touched.version;
        req->dev->last_seen = touched.last_seen;
    }
    if (rc == STORE_OK)
        rc = eas_prov_build(req, root);
    if (rc == STORE_OK)
        rc = eas_device_save(req->u, req->dev);
    if (rc == STORE_OK)
        rc = store_txn_commit(req->u, NULL, &e);
    else
        store_txn_rollback(req->u);
    if (rc != STORE_OK) {
        log_error("eas", "%s: Provision for %s failed: %s", req->acct->address, req->device_id,
                  e.msg[0] ? e.msg : "could not build the answer");
        eas_doc_free(req->out);
        req->out = eas_doc_new();
        struct eas_node *r = req->out ? eas_add(req->out, NULL, EAS_PROVISION_PROVISION) : NULL;
        if (!r || !eas_add_int(req->out, r, EAS_PROVISION_STATUS, PROV_SERVER_ERROR))
            return -1;
    }
    return 0;
}
