/*
 * eas_int.h — what the files of eas/ share (private to eas/): the engine object, the
 * per-request context handed to each command, the command table, and device state.
 */
#ifndef POLARIS_EAS_INT_H
#define POLARIS_EAS_INT_H

#include <stdint.h>

#include "eas/eas.h"
#include "eas/wbxml.h"

struct eas {
    struct store *st;
    const struct config *cfg;
    struct deliver *dl;
    struct eas_ping_hub *pings; /* waiting Pings by device (eas_ping.c) */
};

/* The value of the MS-Server-ActiveSync header and the versions we speak. */
#define EAS_SERVER_VERSION "16.1"
#define EAS_VERSIONS       "2.5,12.0,12.1,14.0,14.1,16.0,16.1"
#define EAS_WBXML_CTYPE    "application/vnd.ms-sync.wbxml"

/* Protocol versions as numbers: 25, 120, 121, 140, 141, 160, 161. */
#define EAS_V25  25
#define EAS_V120 120
#define EAS_V121 121
#define EAS_V140 140
#define EAS_V141 141
#define EAS_V160 160
#define EAS_V161 161

/* One request, from the HTTP front end to a command and back. */
struct eas_req {
    struct eas *e;
    struct http_req *http;
    const struct store_account *acct; /* the authenticated user (Enhanced, gate passed) */
    struct store_user *u;             /* that user's store, open for the request */
    char cmd[32];                     /* "Sync", "FolderSync", ... */
    char device_id[65];
    char device_type[65];
    int version;               /* EAS_V* negotiated from MS-ASProtocolVersion */
    uint64_t policy_key;       /* X-MS-PolicyKey (or from the base64 query), 0 when none */
    const char *query_opts[8]; /* base64 query: Options etc.; command parameters */
    /* plain-query parameters a few commands use (ItemOperations/SmartReply: ItemId,
     * CollectionId, LongId, SaveInSent, AttachmentName, Occurrence) */
    char item_id[256], collection_id[64], long_id[256], attachment_name[512];
    int save_in_sent; /* SaveInSent=T */
    const char *body; /* request body (WBXML or, for 12.1- SendMail, MIME) */
    size_t body_len;
    struct eas_doc *in;  /* decoded body, NULL when empty or not WBXML */
    struct eas_doc *out; /* response to encode, built by the command */
    /* A command may instead set a raw response (MIME for GetAttachment, multipart). */
    char *raw;
    size_t raw_len;
    const char *raw_ctype;
    char raw_ctype_buf[160]; /* for a raw_ctype the command computes (GetAttachment) */
    int http_status; /* 200 unless the command sets otherwise */
    /* Added by the core (eas_http.c) after the first version of this contract. */
    struct eas_device *dev;        /* the device's state, loaded before the command runs; a
                                    * command that changes it calls eas_device_save */
    const struct eas_cmd *command; /* the table entry being run */
    char occurrence[64];           /* Occurrence (SmartReply/SmartForward of a recurrence) */
    int accept_multipart;          /* MS-ASAcceptMultiPart: T or the Options bit 0x02 */
    int locale;                    /* base64 query locale (MS-LCID), 0 when not given */
    void *cmd_state;               /* a suspended command's own state (freed by cmd_cleanup) */
    void (*cmd_cleanup)(struct eas_req *req); /* called once when the request ends */
};

/* A command returns 0 when a response is set (req->out, req->raw or http_status), or
 * EAS_SUSPEND when it suspended the request (Ping, Sync with Wait) and will be called
 * again through its resume function. */
#define EAS_SUSPEND 1
typedef int (*eas_cmd_fn)(struct eas_req *req);
typedef int (*eas_resume_fn)(struct eas_req *req, int timed_out);

struct eas_cmd {
    const char *name; /* as in the Cmd parameter */
    eas_cmd_fn fn;
    eas_resume_fn resume; /* NULL when the command never suspends */
    int min_version;      /* lowest EAS_V* that has the command */
    int needs_policy;     /* 1: refused (449 / Status 142) until provisioned */
    /* Added by the core: */
    int max_version;     /* highest EAS_V* that has the command, 0 = all */
    int code;            /* command code of the base64 query (MS-ASHTTP 2.2.1.1.1.1.2) */
    unsigned root_tag;   /* the response's top element, 0 when it has none (GetAttachment) */
    unsigned status_tag; /* its top-level Status, for 142/140... in 14.0+ */
};
/* The command table (eas_cmd.c), lookup by name (case-sensitive, as clients send) and by
 * base64 command code; NULL when unknown. */
const struct eas_cmd *eas_cmd_lookup(const char *name);
const struct eas_cmd *eas_cmd_by_code(int code);
/* Comma-separated list for MS-ASProtocolCommands. */
const char *eas_cmd_list(void);

/* Device state (struct eas_device, in eas.h), kept in the user's store (store_state,
 * namespace "eas.dev"), keyed by DeviceId. Survives restarts. */
/* 0, STORE_ENOTFOUND when the device is unknown, another STORE_E* on failure. */
int eas_device_load(struct store_user *u, const char *id, struct eas_device *out);
int eas_device_save(struct store_user *u, const struct eas_device *d);
/* Removes the device and every state kept for it (hierarchy, Ping, per-collection sync
 * state in namespace "eas.sync" under keys "<DeviceId>/..."). */
int eas_device_forget(struct store_user *u, const char *id);
/* A DeviceId / DeviceType as we accept them: 1-64 of [A-Za-z0-9._-]. */
int eas_device_id_valid(const char *id);
/* Namespaces of the per-user store used by the core. */
#define EAS_NS_DEVICE    "eas.dev"
#define EAS_NS_HIERARCHY "eas.fh"   /* FolderSync state, by DeviceId */
#define EAS_NS_PING      "eas.ping" /* the last Ping's parameters, by DeviceId */
#define EAS_NS_SYNC      "eas.sync" /* the Sync helper's per-collection state */

/* Answers the request with a command-level Status in the command's own response root
 * (14.0+ 142/140/...), or HTTP 449 for older versions and commands without a root. */
void eas_status_or_449(struct eas_req *req, int status);
/* An ActiveSync date-time ("2026-12-07T10:00:00.000Z", UTC) to unix seconds; 0 or -1. */
int eas_time_parse(const char *s, int64_t *out);
/* A non-zero random 32-bit value (policy keys), from the system CSPRNG. */
uint32_t eas_random32(void);

/* The folder hierarchy as ActiveSync sees it (eas_cmd_foldersync.c): the folder type of a
 * store folder (MS-ASCMD 2.2.3.170.3), 0 when the folder is not shown (Outbox has no
 * store folder). */
int eas_folder_type(const struct store_folder *f);
/* The store class a device-created folder of this type gets; 0 when the type cannot be
 * created by a device. */
int eas_folder_type_class(int type);

/* A device's folder hierarchy state (eas_cmd_foldersync.c): the SyncKey it holds and the
 * folders it was told about, plus the previous key and set, so that a client retrying
 * after a lost answer can go on. Kept in namespace "eas.fh" by DeviceId. */
struct eas_hfolder {
    int64_t id, parent; /* store folder ids; parent 0 = top level */
    int type;           /* EAS folder type */
    char name[256];
};
struct eas_hstate {
    uint32_t key, prev_key; /* 0 = none */
    struct eas_hfolder *cur, *prev;
    size_t ncur, nprev;
};
int eas_hier_load(struct store_user *u, const char *device_id, struct eas_hstate *h);
int eas_hier_save(struct store_user *u, const char *device_id, const struct eas_hstate *h);
void eas_hier_free(struct eas_hstate *h);
/* The folders of the store as the device should see them, in id order. */
int eas_hier_snapshot(struct store_user *u, struct eas_hfolder **out, size_t *n);
/* Parses a hierarchy SyncKey ("0", "17"); -1 when malformed. */
int eas_hier_parse_key(const char *s, uint32_t *key);
/* Adds a folder to (or replaces it in, or with remove removes it from) the current set:
 * what FolderCreate/Update/Delete do to the device's view. Then moves to a new key. */
int eas_hier_apply(struct eas_hstate *h, const struct eas_hfolder *f, int remove);
/* Resolves a folder ServerId of the hierarchy ("0" is the root: *id 0). */
int eas_parse_folder_id(const char *s, int64_t *id);

/* Reads a settings:DeviceInformation/Set element (Settings, and Provision in 14.1+) into
 * the device record; absent elements leave fields as they are. */
void eas_devinfo_parse(const struct eas_node *set, struct eas_device *d);

/* The front end's handler and cleanup for /Microsoft-Server-ActiveSync (eas_http.c). */
enum http_action eas_http_handle(struct http_req *r, enum http_phase phase, void *engine_ctx);
void eas_http_cleanup(struct http_req *r, void *engine_ctx);
/* The protocol version of "14.1" and so on; 0 when not one we speak. */
int eas_version_parse(const char *s);

/* Ping (eas_ping.c): the hub of waiting Pings, one per device (user and DeviceId). A new
 * Ping of a device supersedes the one waiting: that one is marked and resumed. */
struct eas_ping_wait {
    struct http_req *http;
    char key[400];              /* "address/DeviceId" */
    int superseded, registered; /* guarded by the hub's lock */
    struct eas_ping_wait *next;
};
struct eas_ping_hub *eas_ping_hub_new(void);
void eas_ping_hub_free(struct eas_ping_hub *h);
void eas_ping_register(struct eas_ping_hub *h, struct eas_ping_wait *w);
void eas_ping_unregister(struct eas_ping_hub *h, struct eas_ping_wait *w);
int eas_ping_superseded(struct eas_ping_hub *h, struct eas_ping_wait *w);
size_t eas_ping_waiting(struct eas_ping_hub *h);

/* ---------------------------------------------------------------------------------------
 * Implemented by the Sync helper (eas_cmd_sync.c and friends). The command table lists
 * them when eas/meson.build defines EAS_WITH_SYNC (its eas_sync_sources list is not
 * empty); until then those commands answer 501 and Ping uses folder MODSEQs alone.
 * ------------------------------------------------------------------------------------ */
int eas_cmd_sync(struct eas_req *req);
int eas_resume_sync(struct eas_req *req, int timed_out); /* Sync with Wait/HeartbeatInterval */
int eas_cmd_getitemestimate(struct eas_req *req);
int eas_cmd_itemoperations(struct eas_req *req);
int eas_cmd_sendmail(struct eas_req *req);
int eas_cmd_smartreply(struct eas_req *req);
int eas_cmd_smartforward(struct eas_req *req);
int eas_cmd_moveitems(struct eas_req *req);
int eas_cmd_search(struct eas_req *req);
int eas_cmd_find(struct eas_req *req);
int eas_cmd_meetingresponse(struct eas_req *req); /* eas_cmd_meetingresponse.c */
int eas_cmd_getattachment(struct eas_req *req); /* 2.5 - 12.1 */

/* Implemented by the core. */
int eas_cmd_provision(struct eas_req *req);
int eas_cmd_foldersync(struct eas_req *req);
int eas_cmd_foldercreate(struct eas_req *req);
int eas_cmd_folderupdate(struct eas_req *req);
int eas_cmd_folderdelete(struct eas_req *req);
int eas_cmd_settings(struct eas_req *req);
int eas_cmd_ping(struct eas_req *req);
int eas_resume_ping(struct eas_req *req, int timed_out);
int eas_cmd_resolverecipients(struct eas_req *req);
int eas_cmd_validatecert(struct eas_req *req);

/* Collection sync state (eas_sync_state.c, owned with Sync): 1 when the folder has
 * changes the device has not been sent since its last Sync of that folder, or the device
 * has never synced it; 0 when not; < 0 on error. Ping and GetItemEstimate use it. */
int eas_sync_has_changes(struct eas_req *req, int64_t folder_id);

/* Folder ids as ActiveSync sees them: the store folder id in decimal ("7"); item ids
 * are "<folder>:<item id>" (ServerId). */
int eas_parse_server_id(const char *sid, int64_t *folder_id, int64_t *item_id);

#endif
