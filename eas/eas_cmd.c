/*
 * eas_cmd.c — the ActiveSync command table: every command of MS-ASCMD this server runs,
 * with the versions that have it, whether it needs a provisioned device, its command code
 * in the base64 query form (MS-ASHTTP 2.2.1.1.1.1.2), and the response root and Status
 * element that carry a command-level status such as 142 (device not provisioned).
 *
 * The Sync family (Sync, GetItemEstimate, ItemOperations, SendMail, SmartReply,
 * SmartForward, MoveItems, Search, Find, MeetingResponse) is listed when eas/meson.build
 * defines EAS_WITH_SYNC (with GetAttachment, the attachment download of 2.5 to 12.1). A
 * command missing from the table gets 501 and is not announced in MS-ASProtocolCommands.
 */
#include <pthread.h>
#include <string.h>

#include "eas/eas_int.h"

#ifndef EAS_WITH_SYNC
#define EAS_WITH_SYNC 0
#endif

#define ROOT(page, cmd) EAS_##page##_##cmd, EAS_##page##_STATUS

static const struct eas_cmd eas_cmds[] = {
#if EAS_WITH_SYNC
    {"Sync", eas_cmd_sync, eas_resume_sync, EAS_V25, 1, 0, 0, ROOT(AIRSYNC, SYNC)},
    {"SendMail", eas_cmd_sendmail, NULL, EAS_V25, 1, 0, 1, ROOT(COMPOSEMAIL, SENDMAIL)},
    {"SmartForward", eas_cmd_smartforward, NULL, EAS_V25, 1, 0, 2, ROOT(COMPOSEMAIL, SMARTFORWARD)},
    {"SmartReply", eas_cmd_smartreply, NULL, EAS_V25, 1, 0, 3, ROOT(COMPOSEMAIL, SMARTREPLY)},
    {"MoveItems", eas_cmd_moveitems, NULL, EAS_V25, 1, 0, 13, ROOT(MOVE, MOVEITEMS)},
    {"GetItemEstimate", eas_cmd_getitemestimate, NULL, EAS_V25, 1, 0, 14,
     ROOT(GETITEMESTIMATE, GETITEMESTIMATE)},
    {"Search", eas_cmd_search, NULL, EAS_V25, 1, 0, 16, ROOT(SEARCH, SEARCH)},
    {"ItemOperations", eas_cmd_itemoperations, NULL, EAS_V120, 1, 0, 19,
     ROOT(ITEMOPERATIONS, ITEMOPERATIONS)},
    {"Find", eas_cmd_find, NULL, EAS_V161, 1, 0, 23, ROOT(FIND, FIND)},
    {"MeetingResponse", eas_cmd_meetingresponse, NULL, EAS_V25, 1, 0, 15,
     ROOT(MEETINGRESPONSE, MEETINGRESPONSE)},
    /* removed in 14.0: ItemOperations Fetch of a FileReference replaces it */
    {"GetAttachment", eas_cmd_getattachment, NULL, EAS_V25, 1, EAS_V121, 4, 0, 0},
#endif
    {"FolderSync", eas_cmd_foldersync, NULL, EAS_V25, 1, 0, 9, ROOT(FOLDERHIERARCHY, FOLDERSYNC)},
    {"FolderCreate", eas_cmd_foldercreate, NULL, EAS_V25, 1, 0, 10,
     ROOT(FOLDERHIERARCHY, FOLDERCREATE)},
    {"FolderDelete", eas_cmd_folderdelete, NULL, EAS_V25, 1, 0, 11,
     ROOT(FOLDERHIERARCHY, FOLDERDELETE)},
    {"FolderUpdate", eas_cmd_folderupdate, NULL, EAS_V25, 1, 0, 12,
     ROOT(FOLDERHIERARCHY, FOLDERUPDATE)},
    /* Settings comes before Provision on 12.x/14.0 clients (DeviceInformation), so it
     * does not need a policy. */
    {"Settings", eas_cmd_settings, NULL, EAS_V120, 0, 0, 17, ROOT(SETTINGS, SETTINGS)},
    {"Ping", eas_cmd_ping, eas_resume_ping, EAS_V25, 1, 0, 18, ROOT(PING, PING)},
    {"Provision", eas_cmd_provision, NULL, EAS_V25, 0, 0, 20, ROOT(PROVISION, PROVISION)},
    {"ResolveRecipients", eas_cmd_resolverecipients, NULL, EAS_V25, 1, 0, 21,
     ROOT(RESOLVERECIPIENTS, RESOLVERECIPIENTS)},
    {"ValidateCert", eas_cmd_validatecert, NULL, EAS_V25, 1, 0, 22,
     ROOT(VALIDATECERT, VALIDATECERT)},
};
#undef ROOT

#define EAS_NCMDS (sizeof(eas_cmds) / sizeof(eas_cmds[0]))

const struct eas_cmd *eas_cmd_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < EAS_NCMDS; i++)
        if (strcmp(eas_cmds[i].name, name) == 0)
            return &eas_cmds[i];
    return NULL;
}

const struct eas_cmd *eas_cmd_by_code(int code)
{
    for (size_t i = 0; i < EAS_NCMDS; i++)
        if (eas_cmds[i].code == code)
            return &eas_cmds[i];
    return NULL;
}

/* Built once from the const table, of which it is a pure function. */
static char eas_cmd_list_buf[512];
static pthread_once_t eas_cmd_list_once = PTHREAD_ONCE_INIT;

static void eas_cmd_list_init(void)
{
    char *buf = eas_cmd_list_buf;
    size_t n = 0, cap = sizeof(eas_cmd_list_buf);

    buf[0] = '\0';
    for (size_t i = 0; i < EAS_NCMDS; i++) {
        size_t l = strlen(eas_cmds[i].name);
        if (n + l + 2 > cap)
            break;
        if (n)
            buf[n++] = ',';
        memcpy(buf + n, eas_cmds[i].name, l);
        n += l;
        buf[n] = '\0';
    }
}

const char *eas_cmd_list(void)
{
    pthread_once(&eas_cmd_list_once, eas_cmd_list_init);
    return eas_cmd_list_buf;
}
