/*
 * test_eas_pim_window.c — FilterType windows of PIM folders on a real store
 * (eas/eas_pim.c, eas/eas_sync_state.c): events stored with their occurrence index, the
 * calendar window read from the index, held events leaving as the window slides with
 * time (the journal has nothing to say then), open-ended series staying, completed tasks
 * out of FilterType 8, and a device's item refused by the index leaving nothing behind.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "eas/eas_pim.h"

#define ALICE "alice@example.com"
#define DAY   86400

struct fx {
    char dir[64];
    struct store *s;
    struct store_user *u;
    struct store_config cfg;
    struct store_folder cal, tasks;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct store_err e = {0};

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/polaris-easpim-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->cfg.data_dir = f->dir;
    if (store_open(&f->s, &f->cfg, &e) != STORE_OK ||
        store_domain_add(f->s, "example.com", NULL, &e) != STORE_OK ||
        store_account_add(f->s, ALICE, STORE_ENHANCED, 0, "Corr3ct-horse", NULL, NULL, &e) !=
            STORE_OK ||
        store_user_open(f->s, ALICE, &f->u, &e) != STORE_OK)
        fail_msg("store: %s", e.msg);
    assert_int_equal(store_folder_by_role(f->u, STORE_ROLE_CALENDAR, &f->cal), 0);
    assert_int_equal(store_folder_by_role(f->u, STORE_ROLE_TASKS, &f->tasks), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    store_user_release(f->u);
    store_close(f->s);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void ut(char *out, size_t len, int64_t t)
{
    eas_pim_compact_time(out, len, t);
}

/* Stores an event [start, start + 1h), with an optional RRULE; returns its id. */
static int64_t put_event(struct fx *f, const char *uid, int64_t start, const char *rrule)
{
    char s[32], e[32], text[1024];
    struct eas_pim_out o = {.text = text};
    struct store_item it;

    ut(s, sizeof(s), start);
    ut(e, sizeof(e), start + 3600);
    o.len = (size_t)snprintf(text, sizeof(text),
                             "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\nBEGIN:VEVENT\r\n"
                             "UID:%s\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:%s\r\nDTEND:%s\r\n"
                             "SUMMARY:%s\r\n%s%sEND:VEVENT\r\nEND:VCALENDAR\r\n",
                             uid, s, e, uid, rrule ? rrule : "", rrule ? "\r\n" : "");
    snprintf(o.uid, sizeof(o.uid), "%s", uid);
    assert_int_equal(eas_pim_store(f->u, &f->cal, NULL, &o, &it), STORE_OK);
    return it.id;
}

/* What the device would be sent now: every pending id judged, Adds held. Returns the
 * number of verdicts of each kind in v[EAS_V_*]. */
static void run(struct fx *f, struct eas_snap *s, int64_t folder, int cls, int filter, int64_t now,
                int v[5])
{
    int64_t cutoff = eas_filter_cutoff(filter, now);

    memset(v, 0, 5 * sizeof(int));
    assert_int_equal(eas_snap_refresh(f->u, s, folder, cls, filter, now), 0);
    for (size_t i = 0; i < s->npending; i++) {
        struct store_item it;
        enum eas_verdict verdict = eas_snap_judge(f->u, s, folder, s->pending[i], cutoff, &it);
        v[verdict]++;
        if (verdict == EAS_V_ADD || verdict == EAS_V_CHANGE)
            assert_int_equal(eas_snap_hold(s, it.id, it.modseq, it.idate), 0);
        else if (verdict == EAS_V_DELETE || verdict == EAS_V_SOFTDELETE)
            eas_snap_unhold(s, s->pending[i]);
    }
    s->npending = 0;
}

static void test_calendar_window(void **state)
{
    struct fx *f = *state;
    int64_t now = time(NULL), past, soon, series;
    struct eas_snap s = {.filter = -1};
    int v[5];

    past = put_event(f, "past", now - 60 * DAY, NULL);
    soon = put_event(f, "soon", now + 10 * DAY, NULL);
    series = put_event(f, "weekly", now - 400 * DAY, "RRULE:FREQ=WEEKLY");
    put_event(f, "ended", now - 400 * DAY, "RRULE:FREQ=DAILY;COUNT=3");
    /* two weeks back (4): the near event and the open-ended series only */
    run(f, &s, f->cal.id, STORE_CLASS_CALENDAR, 4, now, v);
    assert_int_equal(v[EAS_V_ADD], 2);
    assert_non_null(eas_snap_held(&s, soon));
    assert_non_null(eas_snap_held(&s, series));
    assert_null(eas_snap_held(&s, past));
    /* nothing changed: nothing to send */
    run(f, &s, f->cal.id, STORE_CLASS_CALENDAR, 4, now, v);
    assert_int_equal(v[EAS_V_ADD] + v[EAS_V_CHANGE] + v[EAS_V_SOFTDELETE], 0);
    /* a month later the window has passed the single event: it leaves (SoftDelete) with
     * no change in the journal; the series stays */
    run(f, &s, f->cal.id, STORE_CLASS_CALENDAR, 4, now + 30 * DAY, v);
    assert_int_equal(v[EAS_V_SOFTDELETE], 1);
    assert_int_equal(v[EAS_V_ADD], 0);
    assert_null(eas_snap_held(&s, soon));
    assert_non_null(eas_snap_held(&s, series));
    /* a wider window (6: three months) takes the past event in */
    run(f, &s, f->cal.id, STORE_CLASS_CALENDAR, 6, now, v);
    assert_non_null(eas_snap_held(&s, past));
    assert_non_null(eas_snap_held(&s, soon));
    eas_snap_free(&s);
}

static void test_tasks_incomplete(void **state)
{
    struct fx *f = *state;
    struct eas_snap s = {.filter = -1};
    struct store_item open_it, done_it;
    static const char open_t[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\n"
                                 "BEGIN:VTODO\r\nUID:open\r\nDTSTAMP:20240101T000000Z\r\n"
                                 "SUMMARY:open\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    static const char done_t[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\n"
        "BEGIN:VTODO\r\nUID:done\r\nDTSTAMP:20240101T000000Z\r\n"
        "SUMMARY:done\r\nSTATUS:COMPLETED\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    struct eas_pim_out a = {.text = (char *)open_t, .len = sizeof(open_t) - 1, .uid = "open"};
    struct eas_pim_out b = {.text = (char *)done_t, .len = sizeof(done_t) - 1, .uid = "done"};
    int v[5];

    assert_int_equal(eas_pim_store(f->u, &f->tasks, NULL, &a, &open_it), 0);
    assert_int_equal(eas_pim_store(f->u, &f->tasks, NULL, &b, &done_it), 0);
    run(f, &s, f->tasks.id, STORE_CLASS_TASKS, 8, time(NULL), v);
    assert_int_equal(v[EAS_V_ADD], 1);
    assert_non_null(eas_snap_held(&s, open_it.id));
    /* completing the open one takes it off the device */
    {
        static const char now_done[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//T//EN\r\n"
                                       "BEGIN:VTODO\r\nUID:open\r\nDTSTAMP:20240101T000000Z\r\n"
                                       "SUMMARY:open\r\nSTATUS:COMPLETED\r\nEND:VTODO\r\n"
                                       "END:VCALENDAR\r\n";
        struct eas_pim_out c = {
            .text = (char *)now_done, .len = sizeof(now_done) - 1, .uid = "open"};
        struct store_item out;
        assert_int_equal(eas_pim_store(f->u, &f->tasks, &open_it, &c, &out), 0);
    }
    run(f, &s, f->tasks.id, STORE_CLASS_TASKS, 8, time(NULL), v);
    assert_int_equal(v[EAS_V_SOFTDELETE], 1);
    assert_int_equal(s.nheld, 0);
    /* no filter: both */
    run(f, &s, f->tasks.id, STORE_CLASS_TASKS, 0, time(NULL), v);
    assert_int_equal(s.nheld, 2);
    eas_snap_free(&s);
}

/* What the index cannot read is refused before anything is written. */
static void test_refused_leaves_nothing(void **state)
{
    struct fx *f = *state;
    struct eas_pim_out bad = {
        .text = (char *)"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", .len = 31, .uid = "bad"};
    struct store_item it;
    int64_t before = store_user_modseq(f->u);

    assert_int_equal(eas_pim_store(f->u, &f->cal, NULL, &bad, &it), STORE_EINVAL);
    assert_int_equal(store_user_modseq(f->u), before);
    assert_int_equal(store_item_by_ext_uid(f->u, f->cal.id, "bad", &it), STORE_ENOTFOUND);
    /* and a stored event is named by its UID and indexed */
    put_event(f, "named-1", time(NULL), NULL);
    assert_int_equal(store_item_by_name(f->u, f->cal.id, "named-1.ics", &it), 0);
    assert_string_equal(it.ext_uid, "named-1");
    assert_string_equal(it.ctype, "text/calendar; charset=utf-8");
    {
        struct store_range *r = NULL;
        size_t n = 0;
        int64_t complete = 0;
        assert_int_equal(store_item_get_ranges(f->u, it.id, &r, &n, &complete, NULL), 0);
        assert_int_equal(n, 1);
        assert_int_equal(r[0].end - r[0].start, 3600);
        assert_true(complete == INT64_MAX);
        free(r);
    }
}

/* The Supported list travels with the collection state; blobs written before it (no
 * trailing section) still read, with no list. */
static void test_state_supported(void **state)
{
    struct eas_sync_state st, back;
    unsigned char *blob = NULL;
    size_t len = 0;
    unsigned tags[] = {EAS_CONTACTS_FIRSTNAME, EAS_CONTACTS2_NICKNAME};

    (void)state;
    eas_sync_state_init(&st, 7);
    st.supported = malloc(sizeof(tags));
    assert_non_null(st.supported);
    memcpy(st.supported, tags, sizeof(tags));
    st.nsupported = 2;
    assert_int_equal(eas_sync_state_encode(&st, &blob, &len), 0);
    assert_int_equal(eas_sync_state_decode(blob, len, &back), 0);
    assert_int_equal(back.nsupported, 2);
    assert_int_equal(back.supported[0], EAS_CONTACTS_FIRSTNAME);
    assert_int_equal(back.supported[1], EAS_CONTACTS2_NICKNAME);
    eas_sync_state_free(&back);
    /* without the last section (an older blob: the count byte and two tags cut off) */
    assert_int_equal(eas_sync_state_decode(blob, len - 1 - 2 * 2, &back), 0);
    assert_int_equal(back.nsupported, 0);
    assert_null(back.supported);
    eas_sync_state_free(&back);
    /* a count past what is there is corrupt */
    blob[len - 5] = 0x7f;
    assert_int_equal(eas_sync_state_decode(blob, len, &back), -1);
    free(blob);
    eas_sync_state_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_calendar_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_incomplete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_leaves_nothing, setup, teardown),
        cmocka_unit_test(test_state_supported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
