/*
 * imap_date.c — IMAP dates: date ("1-Feb-1994", SEARCH's BEFORE/ON/SINCE...) and date-time
 * ("17-Jul-1996 02:44:25 -0700", APPEND and INTERNALDATE), parsing and formatting.
 *
 * Calendar arithmetic is done here with the proleptic Gregorian day-count formulas rather
 * than timegm()/gmtime_r(), so results do not depend on the C library, the TZ variable or
 * the range of time_t, and no date a client sends can make them overflow (years are 4
 * digits).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/imap_parse.h"

static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 of y-m-d (m 1..12), valid for any 4-digit year. */
static int32_t days_from_civil(int y, int m, int d)
{
    int era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Exactly n digits at s into *v. */
static bool digits(const char *s, size_t n, int *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

/* "-Mon-YYYY" at s (9 bytes), with the day already read; validates the whole date. */
static int parse_month_year(const char *s, int day, int32_t *out)
{
    int m = 0, y;

    if (s[0] != '-' || s[4] != '-' || !digits(s + 5, 4, &y) || y < 1)
        return -1;
    while (m < 12 && strncasecmp(s + 1, months[m], 3) != 0)
        m++;
    if (m == 12 || day < 1 || day > days_in_month(y, m + 1))
        return -1;
    *out = days_from_civil(y, m + 1, day);
    return 0;
}

int imap_date_parse(const char *s, size_t len, int32_t *day)
{
    int d;
    size_t nd;

    /* date-day = 1*2DIGIT, then "-Mon-YYYY": 10 or 11 bytes in all. */
    if (len != 10 && len != 11)
        return -1;
    nd = len - 9;
    if (!digits(s, nd, &d))
        return -1;
    return parse_month_year(s + nd, d, day);
}

/* "HH:MM:SS +HHMM" (14 bytes) at s. */
static int parse_time_zone(const char *s, int *secs, int *zone_min)
{
    int h, m, sec, zh, zm;

    if (s[2] != ':' || s[5] != ':' || s[8] != ' ' || (s[9] != '+' && s[9] != '-'))
        return -1;
    if (!digits(s, 2, &h) || !digits(s + 3, 2, &m) || !digits(s + 6, 2, &sec) ||
        !digits(s + 10, 2, &zh) || !digits(s + 12, 2, &zm))
        return -1;
    /* Second 60 is a leap second; it is counted as the next second like POSIX time does. */
    if (h > 23 || m > 59 || sec > 60 || zh > 23 || zm > 59)
        return -1;
    *secs = h * 3600 + m * 60 + sec;
    *zone_min = (zh * 60 + zm) * (s[9] == '-' ? -1 : 1);
    return 0;
}

int imap_datetime_parse(const char *s, size_t len, int64_t *t, int *tz_min)
{
    int d, secs, zone;
    int32_t day;
    size_t nd;

    /* date-day-fixed is 2 bytes (" 7" or "07"); a 1-digit day is accepted too, as some
     * clients send it. Then "-Mon-YYYY HH:MM:SS +HHMM". */
    if (len != 25 && len != 26)
        return -1;
    nd = len - 24;
    if (nd == 2 && s[0] == ' ') {
        if (!digits(s + 1, 1, &d))
            return -1;
    } else if (!digits(s, nd, &d)) {
        return -1;
    }
    if (parse_month_year(s + nd, d, &day) < 0 || s[nd + 9] != ' ' ||
        parse_time_zone(s + nd + 10, &secs, &zone) < 0)
        return -1;
    *t = (int64_t)day * 86400 + secs - (int64_t)zone * 60;
    if (tz_min)
        *tz_min = zone;
    return 0;
}

int imap_date_format(int32_t day, char *buf, size_t size)
{
    int y, m, d, n;

    civil_from_days(day, &y, &m, &d);
    if (y < 1 || y > 9999)
        return -1;
    n = snprintf(buf, size, "%d-%s-%04d", d, months[m - 1], y);
    return n < 0 || (size_t)n >= size ? -1 : n;
}

int imap_datetime_format(int64_t t, int tz_min, char *buf, size_t size)
{
    int64_t local, day, secs;
    int y, m, d, n, az;

    if (tz_min < -(23 * 60 + 59) || tz_min > 23 * 60 + 59)
        return -1;
    /* Bounds first so the arithmetic below cannot overflow: years 1..9999 fit easily. */
    if (t < -62135596800LL + 86400 || t > 253402300799LL - 86400)
        return -1;
    local = t + (int64_t)tz_min * 60;
    day = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    secs = local - day * 86400;
    civil_from_days(day, &y, &m, &d);
    az = tz_min < 0 ? -tz_min : tz_min;
    n = snprintf(buf, size, "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d", d, months[m - 1], y,
                 (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
                 tz_min < 0 ? '-' : '+', az / 60, az % 60);
    return n < 0 || (size_t)n >= size ? -1 : n;
}
