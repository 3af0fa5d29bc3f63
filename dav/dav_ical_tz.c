/*
 * dav_ical_tz.c — time zones for the iCalendar module: the lock around libical's global
 * time-zone state, builtin (system tzdata) zone lookup that also takes Windows zone names
 * and vendor-prefixed TZIDs, UTC conversions, and the Windows → IANA table.
 *
 * libical 3.0 fills each zone's transition cache lazily and loads the builtin zone list
 * on first use, neither under a lock; the HTTP workers call in here concurrently, so every
 * call that can touch that state goes through tz_lock.
 */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_ical_int.h"

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init_once(void)
{
    /* A malformed value must come back as an error, never abort the server. */
    icalerror_set_errors_are_fatal(0);
    pthread_mutex_lock(&tz_lock);
    (void)icaltimezone_get_utc_timezone();
    pthread_mutex_unlock(&tz_lock);
}

void dav_ical_lib_init(void)
{
    pthread_once(&lib_once, lib_init_once);
}

/* CLDR windowsZones, territory 001: the Windows zone id to its canonical IANA zone. */
static const struct {
    const char *win, *iana;
} win_zones[] = {
    {"Dateline Standard Time", "Etc/GMT+12"},
    {"UTC-11", "Etc/GMT+11"},
    {"Aleutian Standard Time", "America/Adak"},
    {"Hawaiian Standard Time", "Pacific/Honolulu"},
    {"Marquesas Standard Time", "Pacific/Marquesas"},
    {"Alaskan Standard Time", "America/Anchorage"},
    {"UTC-09", "Etc/GMT+9"},
    {"Pacific Standard Time (Mexico)", "America/Tijuana"},
    {"UTC-08", "Etc/GMT+8"},
    {"Pacific Standard Time", "America/Los_Angeles"},
    {"US Mountain Standard Time", "America/Phoenix"},
    {"Mountain Standard Time (Mexico)", "America/Mazatlan"},
    {"Mexico Standard Time 2", "America/Chihuahua"},
    {"Mountain Standard Time", "America/Denver"},
    {"Yukon Standard Time", "America/Whitehorse"},
    {"Central America Standard Time", "America/Guatemala"},
    {"Central Standard Time", "America/Chicago"},
    {"Easter Island Standard Time", "Pacific/Easter"},
    {"Central Standard Time (Mexico)", "America/Mexico_City"},
    {"Mexico Standard Time", "America/Mexico_City"},
    {"Canada Central Standard Time", "America/Regina"},
    {"SA Pacific Standard Time", "America/Bogota"},
    {"Eastern Standard Time (Mexico)", "America/Cancun"},
    {"Eastern Standard Time", "America/New_York"},
    {"Haiti Standard Time", "America/Port-au-Prince"},
    {"Cuba Standard Time", "America/Havana"},
    {"US Eastern Standard Time", "America/Indiana/Indianapolis"},
    {"Turks And Caicos Standard Time", "America/Grand_Turk"},
    {"Paraguay Standard Time", "America/Asuncion"},
    {"Atlantic Standard Time", "America/Halifax"},
    {"Venezuela Standard Time", "America/Caracas"},
    {"Central Brazilian Standard Time", "America/Cuiaba"},
    {"SA Western Standard Time", "America/La_Paz"},
    {"Pacific SA Standard Time", "America/Santiago"},
    {"Newfoundland Standard Time", "America/St_Johns"},
    {"Tocantins Standard Time", "America/Araguaina"},
    {"E. South America Standard Time", "America/Sao_Paulo"},
    {"SA Eastern Standard Time", "America/Cayenne"},
    {"Argentina Standard Time", "America/Argentina/Buenos_Aires"},
    {"Greenland Standard Time", "America/Nuuk"},
    {"Montevideo Standard Time", "America/Montevideo"},
    {"Magallanes Standard Time", "America/Punta_Arenas"},
    {"Saint Pierre Standard Time", "America/Miquelon"},
    {"Bahia Standard Time", "America/Bahia"},
    {"UTC-02", "Etc/GMT+2"},
    {"Mid-Atlantic Standard Time", "Etc/GMT+2"},
    {"Azores Standard Time", "Atlantic/Azores"},
    {"Cape Verde Standard Time", "Atlantic/Cape_Verde"},
    {"UTC", "Etc/UTC"},
    {"Coordinated Universal Time", "Etc/UTC"},
    {"GMT Standard Time", "Europe/London"},
    {"Greenwich Standard Time", "Atlantic/Reykjavik"},
    {"Sao Tome Standard Time", "Africa/Sao_Tome"},
    {"Morocco Standard Time", "Africa/Casablanca"},
    {"W. Europe Standard Time", "Europe/Berlin"},
    {"Central Europe Standard Time", "Europe/Budapest"},
    {"Romance Standard Time", "Europe/Paris"},
    {"Central European Standard Time", "Europe/Warsaw"},
    {"W. Central Africa Standard Time", "Africa/Lagos"},
    {"Jordan Standard Time", "Asia/Amman"},
    {"GTB Standard Time", "Europe/Bucharest"},
    {"Middle East Standard Time", "Asia/Beirut"},
    {"Egypt Standard Time", "Africa/Cairo"},
    {"E. Europe Standard Time", "Europe/Chisinau"},
    {"Syria Standard Time", "Asia/Damascus"},
    {"West Bank Standard Time", "Asia/Hebron"},
    {"South Africa Standard Time", "Africa/Johannesburg"},
    {"FLE Standard Time", "Europe/Kyiv"},
    {"Israel Standard Time", "Asia/Jerusalem"},
    {"South Sudan Standard Time", "Africa/Juba"},
    {"Kaliningrad Standard Time", "Europe/Kaliningrad"},
    {"Sudan Standard Time", "Africa/Khartoum"},
    {"Libya Standard Time", "Africa/Tripoli"},
    {"Namibia Standard Time", "Africa/Windhoek"},
    {"Arabic Standard Time", "Asia/Baghdad"},
    {"Turkey Standard Time", "Europe/Istanbul"},
    {"Arab Standard Time", "Asia/Riyadh"},
    {"Belarus Standard Time", "Europe/Minsk"},
    {"Russian Standard Time", "Europe/Moscow"},
    {"E. Africa Standard Time", "Africa/Nairobi"},
    {"Volgograd Standard Time", "Europe/Volgograd"},
    {"Iran Standard Time", "Asia/Tehran"},
    {"Arabian Standard Time", "Asia/Dubai"},
    {"Astrakhan Standard Time", "Europe/Astrakhan"},
    {"Azerbaijan Standard Time", "Asia/Baku"},
    {"Russia Time Zone 3", "Europe/Samara"},
    {"Mauritius Standard Time", "Indian/Mauritius"},
    {"Saratov Standard Time", "Europe/Saratov"},
    {"Georgian Standard Time", "Asia/Tbilisi"},
    {"Caucasus Standard Time", "Asia/Yerevan"},
    {"Armenian Standard Time", "Asia/Yerevan"},
    {"Afghanistan Standard Time", "Asia/Kabul"},
    {"West Asia Standard Time", "Asia/Tashkent"},
    {"Ekaterinburg Standard Time", "Asia/Yekaterinburg"},
    {"Pakistan Standard Time", "Asia/Karachi"},
    {"Qyzylorda Standard Time", "Asia/Qyzylorda"},
    {"India Standard Time", "Asia/Kolkata"},
    {"Sri Lanka Standard Time", "Asia/Colombo"},
    {"Nepal Standard Time", "Asia/Kathmandu"},
    {"Central Asia Standard Time", "Asia/Almaty"},
    {"Bangladesh Standard Time", "Asia/Dhaka"},
    {"Omsk Standard Time", "Asia/Omsk"},
    {"Myanmar Standard Time", "Asia/Yangon"},
    {"SE Asia Standard Time", "Asia/Bangkok"},
    {"Altai Standard Time", "Asia/Barnaul"},
    {"W. Mongolia Standard Time", "Asia/Hovd"},
    {"North Asia Standard Time", "Asia/Krasnoyarsk"},
    {"N. Central Asia Standard Time", "Asia/Novosibirsk"},
    {"Tomsk Standard Time", "Asia/Tomsk"},
    {"China Standard Time", "Asia/Shanghai"},
    {"North Asia East Standard Time", "Asia/Irkutsk"},
    {"Singapore Standard Time", "Asia/Singapore"},
    {"W. Australia Standard Time", "Australia/Perth"},
    {"Taipei Standard Time", "Asia/Taipei"},
    {"Ulaanbaatar Standard Time", "Asia/Ulaanbaatar"},
    {"Aus Central W. Standard Time", "Australia/Eucla"},
    {"Transbaikal Standard Time", "Asia/Chita"},
    {"Tokyo Standard Time", "Asia/Tokyo"},
    {"North Korea Standard Time", "Asia/Pyongyang"},
    {"Korea Standard Time", "Asia/Seoul"},
    {"Yakutsk Standard Time", "Asia/Yakutsk"},
    {"Cen. Australia Standard Time", "Australia/Adelaide"},
    {"AUS Central Standard Time", "Australia/Darwin"},
    {"E. Australia Standard Time", "Australia/Brisbane"},
    {"AUS Eastern Standard Time", "Australia/Sydney"},
    {"West Pacific Standard Time", "Pacific/Port_Moresby"},
    {"Tasmania Standard Time", "Australia/Hobart"},
    {"Vladivostok Standard Time", "Asia/Vladivostok"},
    {"Lord Howe Standard Time", "Australia/Lord_Howe"},
    {"Bougainville Standard Time", "Pacific/Bougainville"},
    {"Russia Time Zone 10", "Asia/Srednekolymsk"},
    {"Magadan Standard Time", "Asia/Magadan"},
    {"Norfolk Standard Time", "Pacific/Norfolk"},
    {"Sakhalin Standard Time", "Asia/Sakhalin"},
    {"Central Pacific Standard Time", "Pacific/Guadalcanal"},
    {"Russia Time Zone 11", "Asia/Kamchatka"},
    {"Kamchatka Standard Time", "Asia/Kamchatka"},
    {"New Zealand Standard Time", "Pacific/Auckland"},
    {"UTC+12", "Etc/GMT-12"},
    {"Fiji Standard Time", "Pacific/Fiji"},
    {"Chatham Islands Standard Time", "Pacific/Chatham"},
    {"UTC+13", "Etc/GMT-13"},
    {"Tonga Standard Time", "Pacific/Tongatapu"},
    {"Samoa Standard Time", "Pacific/Apia"},
    {"Line Islands Standard Time", "Pacific/Kiritimati"},
};

const char *dav_ical_windows_zone(const char *windows_name)
{
    if (!windows_name)
        return NULL;
    for (size_t i = 0; i < sizeof(win_zones) / sizeof(win_zones[0]); i++)
        if (strcasecmp(win_zones[i].win, windows_name) == 0)
            return win_zones[i].iana;
    return NULL;
}

const char *dav_ical_windows_zone_at(size_t i)
{
    return i < sizeof(win_zones) / sizeof(win_zones[0]) ? win_zones[i].win : NULL;
}

/* Names that are UTC whatever the tzdata says. */
static int is_utc_name(const char *s)
{
    static const char *const names[] = {"UTC",      "GMT",  "Z",         "Etc/UTC",      "Etc/GMT",
                                        "Etc/Zulu", "Zulu", "Universal", "Etc/Universal"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(s, names[i]) == 0)
            return 1;
    return 0;
}

/* Zone names are ASCII letters, digits and "/_-+"; anything else is not worth a lookup
 * (and keeps paths like "../" away from libical's zoneinfo loader). */
static int plausible_zone(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '/' || strstr(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '/' || ch == '_' || ch == '-' || ch == '+'))
            return 0;
    }
    return 1;
}

static icaltimezone *lookup_locked(const char *name)
{
    if (!plausible_zone(name))
        return NULL;
    return icaltimezone_get_builtin_timezone(name);
}

/* Resolves a TZID that has no VTIMEZONE: an IANA name, a Windows name, or a vendor
 * prefix before an IANA name ("/mozilla.org/20050126_1/Europe/Berlin",
 * "/freeassociation.sourceforge.net/Tzfile/Europe/Berlin"). Sets *ok; NULL means UTC. */
static icaltimezone *resolve(const char *tzid, int *ok)
{
    const char *win = dav_ical_windows_zone(tzid);
    icaltimezone *z;

    *ok = 1;
    if (is_utc_name(tzid) || (win && strcmp(win, "Etc/UTC") == 0))
        return NULL;
    z = lookup_locked(win ? win : tzid);
    if (z)
        return z;
    /* Try each suffix after a '/', longest first, that still looks like Area/City. */
    for (const char *p = strchr(tzid, '/'); p; p = strchr(p + 1, '/')) {
        const char *rest = p + 1;
        if (!strchr(rest, '/'))
            break;
        if ((z = lookup_locked(rest)))
            return z;
    }
    *ok = 0;
    return NULL;
}

icaltimezone *dav_ical_tz_builtin(const char *tzid)
{
    icaltimezone *z;
    int ok;

    dav_ical_lib_init();
    pthread_mutex_lock(&tz_lock);
    z = resolve(tzid, &ok);
    if (ok && !z)
        z = icaltimezone_get_utc_timezone();
    pthread_mutex_unlock(&tz_lock);
    return ok ? z : NULL;
}

int64_t dav_ical_days_from_civil(int y, int m, int d)
{
    /* Howard Hinnant's days-from-civil algorithm (public domain description). */
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void dav_ical_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int dd = (int)(doy - (153 * mp + 2) / 5 + 1);
    int mm = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = mm;
    *d = dd;
}

static int64_t fields_to_unix(struct icaltimetype t)
{
    int64_t days = dav_ical_days_from_civil(t.year, t.month, t.day);
    if (t.is_date)
        return days * 86400;
    return days * 86400 + t.hour * 3600 + t.minute * 60 + t.second;
}

/* libical expands a zone's rules from their start up to the year asked for, again each
 * time a later year is asked; past TZ_LAST_YEAR the offset of the same day in a proxy
 * year of the same leap-ness is used, which is what the rules say anyway. */
#define TZ_LAST_YEAR 2200

static int proxy_year(int y)
{
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return leap ? TZ_LAST_YEAR - 4 : TZ_LAST_YEAR - 3;
}

int64_t dav_ical_tz_to_unix(struct icaltimetype t, icaltimezone *z)
{
    struct icaltimetype p;

    dav_ical_lib_init();
    t.zone = NULL;
    if (!z || t.is_date || z == icaltimezone_get_utc_timezone())
        return fields_to_unix(t);
    p = t;
    if (p.year > TZ_LAST_YEAR)
        p.year = proxy_year(p.year);
    pthread_mutex_lock(&tz_lock);
    icaltimezone_convert_time(&p, z, icaltimezone_get_utc_timezone());
    pthread_mutex_unlock(&tz_lock);
    if (t.year > TZ_LAST_YEAR) {
        struct icaltimetype q = t;
        q.year = proxy_year(t.year);
        return fields_to_unix(t) + (fields_to_unix(p) - fields_to_unix(q));
    }
    return fields_to_unix(p);
}

struct icaltimetype dav_ical_tz_from_unix(int64_t t, icaltimezone *z)
{
    struct icaltimetype r = icaltime_null_time();
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;

    dav_ical_lib_init();
    dav_ical_civil_from_days(days, &r.year, &r.month, &r.day);
    r.hour = (int)(secs / 3600);
    r.minute = (int)(secs / 60 % 60);
    r.second = (int)(secs % 60);
    if (z && z != icaltimezone_get_utc_timezone()) {
        struct icaltimetype p = r;
        if (p.year > TZ_LAST_YEAR)
            p.year = proxy_year(p.year);
        pthread_mutex_lock(&tz_lock);
        icaltimezone_convert_time(&p, icaltimezone_get_utc_timezone(), z);
        pthread_mutex_unlock(&tz_lock);
        if (r.year > TZ_LAST_YEAR) {
            struct icaltimetype q = r;
            q.year = proxy_year(r.year);
            p.zone = NULL;
            return dav_ical_tz_from_unix(t + (fields_to_unix(p) - fields_to_unix(q)), NULL);
        }
        r = p;
    }
    r.zone = NULL;
    return r;
}
