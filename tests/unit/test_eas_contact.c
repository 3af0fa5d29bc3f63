/*
 * test_eas_contact.c — vCard ↔ ActiveSync Contacts (eas/eas_contact.c): every mapped
 * field out of a vCard 3.0 and a 4.0 card, the phone and address slots, a device's card
 * written as vCard 3.0, round trips, and a Change keeping what ActiveSync cannot carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/pim_test_util.h"

static const char *const card3 =
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1@example.com\r\nFN:Dr. Jane Q. Doe Jr.\r\n"
    "N:Doe;Jane;Quinn;Dr.;Jr.\r\nORG:Acme Inc.;Research\r\nTITLE:Chemist\r\n"
    "EMAIL;TYPE=INTERNET,WORK:jane@acme.example\r\nEMAIL;TYPE=INTERNET,HOME:jane@home.example\r\n"
    "EMAIL:third@example.com\r\nEMAIL:fourth@example.com\r\n"
    "TEL;TYPE=WORK,VOICE:+1 555 0100\r\nTEL;TYPE=HOME,VOICE:+1 555 0101\r\n"
    "TEL;TYPE=CELL:+1 555 0102\r\nTEL;TYPE=WORK,FAX:+1 555 0103\r\nTEL;TYPE=PAGER:+1 555 0104\r\n"
    "TEL;TYPE=VIDEO,HOME:+1 555 0199\r\n"
    "ADR;TYPE=WORK:;;1 Main St;Springfield;IL;62701;USA\r\n"
    "ADR;TYPE=HOME:;;2 Elm St\\, Apt 3;Shelbyville;IL;62565;USA\r\n"
    "BDAY:1980-05-01\r\nX-ANNIVERSARY:2005-06-18\r\nURL:https://jane.example\r\n"
    "CATEGORIES:Friends,Work\r\nNOTE:Met at the conference\\nlikes tea\r\n"
    "NICKNAME:JJ\r\nX-SPOUSE:John\r\nX-CHILDREN:Ann,Bob\r\nIMPP:xmpp:jane@chat.example\r\n"
    "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRg==\r\n"
    "X-SOCIALPROFILE;TYPE=twitter:https://twitter.com/jane\r\n"
    "item1.X-ABLABEL:custom\r\nEND:VCARD\r\n";

static void test_card_to_eas(void **state)
{
    char *x = pim_to(eas_contact_to_eas, EAS_V141, card3);

    (void)state;
    assert_non_null(x);
    assert_has(x, "<FileAs xmlns=\"Contacts:\">Dr. Jane Q. Doe Jr.</FileAs>");
    assert_has(x, "<LastName xmlns=\"Contacts:\">Doe</LastName>");
    assert_has(x, "<FirstName xmlns=\"Contacts:\">Jane</FirstName>");
    assert_has(x, "<MiddleName xmlns=\"Contacts:\">Quinn</MiddleName>");
    assert_has(x, "<Title xmlns=\"Contacts:\">Dr.</Title>");
    assert_has(x, "<Suffix xmlns=\"Contacts:\">Jr.</Suffix>");
    assert_has(x, "<CompanyName xmlns=\"Contacts:\">Acme Inc.</CompanyName>");
    assert_has(x, "<Department xmlns=\"Contacts:\">Research</Department>");
    assert_has(x, "<JobTitle xmlns=\"Contacts:\">Chemist</JobTitle>");
    assert_has(x, "<Email1Address xmlns=\"Contacts:\">jane@acme.example</Email1Address>");
    assert_has(x, "<Email2Address xmlns=\"Contacts:\">jane@home.example</Email2Address>");
    assert_has(x, "<Email3Address xmlns=\"Contacts:\">third@example.com</Email3Address>");
    assert_hasnt(x, "fourth@example.com");
    assert_has(x, "<BusinessPhoneNumber xmlns=\"Contacts:\">+1 555 0100</BusinessPhoneNumber>");
    assert_has(x, "<HomePhoneNumber xmlns=\"Contacts:\">+1 555 0101</HomePhoneNumber>");
    assert_has(x, "<MobilePhoneNumber xmlns=\"Contacts:\">+1 555 0102</MobilePhoneNumber>");
    assert_has(x, "<BusinessFaxNumber xmlns=\"Contacts:\">+1 555 0103</BusinessFaxNumber>");
    assert_has(x, "<PagerNumber xmlns=\"Contacts:\">+1 555 0104</PagerNumber>");
    assert_has(x, "<Home2PhoneNumber xmlns=\"Contacts:\">+1 555 0199</Home2PhoneNumber>");
    assert_has(x, "<BusinessAddressStreet xmlns=\"Contacts:\">1 Main St</BusinessAddressStreet>");
    assert_has(x, "<BusinessAddressCity xmlns=\"Contacts:\">Springfield</BusinessAddressCity>");
    assert_has(x, "<BusinessAddressPostalCode xmlns=\"Contacts:\">62701</");
    assert_has(x, "<HomeAddressStreet xmlns=\"Contacts:\">2 Elm St, Apt 3</HomeAddressStreet>");
    assert_has(x, "<HomeAddressCountry xmlns=\"Contacts:\">USA</HomeAddressCountry>");
    assert_has(x, "<Birthday xmlns=\"Contacts:\">1980-05-01T00:00:00.000Z</Birthday>");
    assert_has(x, "<Anniversary xmlns=\"Contacts:\">2005-06-18T00:00:00.000Z</Anniversary>");
    assert_has(x, "<WebPage xmlns=\"Contacts:\">https://jane.example</WebPage>");
    assert_has(x, "<Category>Friends</Category>");
    assert_has(x, "<Spouse xmlns=\"Contacts:\">John</Spouse>");
    assert_has(x, "<Child>Ann</Child>");
    assert_has(x, "<Child>Bob</Child>");
    assert_has(x, "<Picture xmlns=\"Contacts:\">/9j/4AAQSkZJRg==</Picture>");
    assert_has(x, "<NickName xmlns=\"Contacts2:\">JJ</NickName>");
    assert_has(x, "<IMAddress xmlns=\"Contacts2:\">xmpp:jane@chat.example</IMAddress>");
    assert_has(x, "<Data>Met at the conference\nlikes tea</Data>");
    free(x);
    /* 2.5: the body in Contacts:Body, no Contacts2 */
    x = pim_to(eas_contact_to_eas, EAS_V25, card3);
    assert_non_null(x);
    assert_has(x, "<Body xmlns=\"Contacts:\">Met at the conference\nlikes tea</Body>");
    assert_hasnt(x, "Contacts2");
    free(x);
    assert_null(pim_to(eas_contact_to_eas, EAS_V141, "BEGIN:VCARD\r\nEND:VCARD\r\n"));
}

static void test_card4(void **state)
{
    static const char card4[] =
        "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r\n"
        "FN:Kim Lee\r\nN:Lee;Kim;;;\r\nEMAIL;TYPE=work:kim@example.com\r\n"
        "TEL;VALUE=uri;TYPE=cell:tel:+1-555-0111\r\nBDAY:19900102\r\n"
        "ANNIVERSARY:20150808\r\nPHOTO:data:image/jpeg;base64,/9j/AA==\r\nEND:VCARD\r\n";
    char *x = pim_to(eas_contact_to_eas, EAS_V161, card4), *back;

    (void)state;
    assert_non_null(x);
    assert_has(x, "<MobilePhoneNumber xmlns=\"Contacts:\">+1-555-0111</MobilePhoneNumber>");
    assert_has(x, "<Birthday xmlns=\"Contacts:\">1990-01-02T00:00:00.000Z</Birthday>");
    assert_has(x, "<Anniversary xmlns=\"Contacts:\">2015-08-08T00:00:00.000Z</Anniversary>");
    assert_has(x, "<Picture xmlns=\"Contacts:\">/9j/AA==</Picture>");
    /* a Change of a 4.0 card stays 4.0 */
    back = pim_from(eas_contact_from_eas, EAS_V161, x, card4);
    assert_non_null(back);
    assert_has(back, "VERSION:4.0");
    assert_has(back, "UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1");
    /* sent back unchanged: the stored spelling and parameters stay */
    assert_has(back, "ANNIVERSARY:20150808");
    assert_has(back, "TEL;VALUE=uri;TYPE=cell:tel:+1-555-0111");
    assert_has(back, "EMAIL;TYPE=work:kim@example.com");
    assert_has(back, "PHOTO:data:image/jpeg;base64,/9j/AA==");
    free(back);
    free(x);
}

/* A device's new contact: vCard 3.0 with FN, N and a UID. */
static void test_device_card(void **state)
{
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Contacts:\" xmlns:c2=\"Contacts2:\" "
        "xmlns:b=\"AirSyncBase:\"><c:FirstName>Max</c:FirstName><c:LastName>Mustermann"
        "</c:LastName><c:Email1Address>\"Max\" &lt;max@example.de&gt;</c:Email1Address>"
        "<c:MobilePhoneNumber>+49 170 1234567</c:MobilePhoneNumber>"
        "<c:HomeAddressStreet>Hauptstr. 1; Hof</c:HomeAddressStreet>"
        "<c:HomeAddressCity>Berlin</c:HomeAddressCity><c:Birthday>1975-03-01T23:00:00.000Z"
        "</c:Birthday><c:Categories><c:Category>VIP</c:Category></c:Categories>"
        "<c2:NickName>Maxi</c2:NickName><b:Body><b:Type>1</b:Type><b:Data>line1\r\nline2"
        "</b:Data></b:Body></ApplicationData>";
    char *v = pim_from(eas_contact_from_eas, EAS_V141, dev, NULL), *x;

    (void)state;
    assert_non_null(v);
    assert_has(v, "VERSION:3.0");
    assert_has(v, "UID:");
    assert_has(v, "FN:Max Mustermann");
    assert_has(v, "N:Mustermann;Max;;;");
    assert_has(v, "TEL;TYPE=CELL:+49 170 1234567");
    assert_has(v, "ADR;TYPE=HOME:;;Hauptstr. 1\\; Hof;Berlin;;;");
    /* a local midnight east of UTC is the next day */
    assert_has(v, "BDAY:1975-03-02");
    assert_has(v, "CATEGORIES:VIP");
    assert_has(v, "NICKNAME:Maxi");
    assert_has(v, "NOTE:line1\\nline2");
    /* and it reads back the same */
    x = pim_to(eas_contact_to_eas, EAS_V141, v);
    assert_non_null(x);
    assert_has(x, "<HomeAddressStreet xmlns=\"Contacts:\">Hauptstr. 1; Hof</HomeAddressStreet>");
    assert_has(x, "<Email1Address xmlns=\"Contacts:\">\"Max\" &lt;max@example.de&gt;<");
    free(x);
    free(v);
}

/* Regression (e2e): the Yomi names and the Contacts2 CustomerId, GovernmentId,
 * AccountName and MMS were lost on the way through the store, so the user's other devices
 * never got them; now X- properties (Apple's X-PHONETIC-* for the Yomi names, which
 * CardDAV clients already write), sent back to 12.0+ devices for the Contacts2 ones. */
static void test_fields_without_vcard_property(void **state)
{
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Contacts:\" xmlns:c2=\"Contacts2:\">"
        "<c:FirstName>Taro</c:FirstName><c:YomiFirstName>tarou</c:YomiFirstName>"
        "<c:YomiLastName>yamada</c:YomiLastName><c:YomiCompanyName>kaisha</c:YomiCompanyName>"
        "<c2:CustomerId>C-1</c2:CustomerId><c2:GovernmentId>G-2</c2:GovernmentId>"
        "<c2:AccountName>A-3</c2:AccountName><c2:MMS>+81 90 1</c2:MMS></ApplicationData>";
    static const char change[] = "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Contacts:\">"
                                 "<c:FirstName>Taro</c:FirstName></ApplicationData>";
    char *v = pim_from(eas_contact_from_eas, EAS_V141, dev, NULL), *x, *w;

    (void)state;
    assert_non_null(v);
    assert_has(v, "X-PHONETIC-FIRST-NAME:tarou");
    assert_has(v, "X-PHONETIC-LAST-NAME:yamada");
    assert_has(v, "X-PHONETIC-ORG:kaisha");
    assert_has(v, "X-EAS-CUSTOMERID:C-1");
    assert_has(v, "X-EAS-GOVERNMENTID:G-2");
    assert_has(v, "X-EAS-ACCOUNTNAME:A-3");
    assert_has(v, "X-EAS-MMS:+81 90 1");
    x = pim_to(eas_contact_to_eas, EAS_V141, v);
    assert_non_null(x);
    assert_has(x, "<YomiFirstName xmlns=\"Contacts:\">tarou</YomiFirstName>");
    assert_has(x, "<YomiCompanyName xmlns=\"Contacts:\">kaisha</YomiCompanyName>");
    assert_has(x, "<CustomerId xmlns=\"Contacts2:\">C-1</CustomerId>");
    assert_has(x, "<MMS xmlns=\"Contacts2:\">+81 90 1</MMS>");
    free(x);
    /* 2.5 has no Contacts2 page: the Yomi names only */
    x = pim_to(eas_contact_to_eas, EAS_V25, v);
    assert_non_null(x);
    assert_has(x, "<YomiLastName xmlns=\"Contacts:\">yamada</YomiLastName>");
    assert_hasnt(x, "CustomerId");
    free(x);
    /* a Change that leaves them out (nothing ghosted) removes them, as for any field */
    w = pim_from(eas_contact_from_eas, EAS_V141, change, v);
    assert_non_null(w);
    assert_hasnt(w, "X-PHONETIC-FIRST-NAME");
    assert_hasnt(w, "X-EAS-CUSTOMERID");
    free(w);
    free(v);
}

/* Regression (e2e): a device's Change sends every field again; the properties were all
 * rebuilt, so Apple's item1. group (its X-ABLabel left behind), TYPE=pref, EMAIL TYPE=HOME
 * were lost. A value sent back unchanged keeps its stored property; a changed one is the
 * device's. */
static void test_unchanged_keep_form(void **state)
{
    static const char apple[] =
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a1\r\nFN:Apfel Mann\r\nN:Mann;Apfel;;;\r\n"
        "item1.EMAIL;type=INTERNET;type=pref:a@apple.example\r\n"
        "item1.X-ABLabel:_$!<Other>!$_\r\nEMAIL;TYPE=HOME:b@home.example\r\n"
        "TEL;type=CELL;type=pref:+1 555 1\r\nEND:VCARD\r\n";
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Contacts:\">"
        "<c:FirstName>Apfel</c:FirstName><c:LastName>Mann</c:LastName>"
        "<c:Email1Address>a@apple.example</c:Email1Address>"
        "<c:Email2Address>c@new.example</c:Email2Address>"
        "<c:MobilePhoneNumber>+1 555 1</c:MobilePhoneNumber></ApplicationData>";
    char *v = pim_from(eas_contact_from_eas, EAS_V141, dev, apple);

    (void)state;
    assert_non_null(v);
    assert_has(v, "item1.EMAIL;TYPE=INTERNET;TYPE=pref:a@apple.example");
    assert_has(v, "item1.X-ABLABEL:_$!<Other>!$_");
    assert_has(v, "TEL;TYPE=CELL;TYPE=pref:+1 555 1");
    assert_has(v, "EMAIL;TYPE=INTERNET:c@new.example");
    assert_hasnt(v, "b@home.example");
    free(v);
}

/* A Change keeps the properties with no ActiveSync field, the picture and the note when
 * the device sends none, and takes the device's values for the rest. */
static void test_change_keeps(void **state)
{
    char *x = pim_to(eas_contact_to_eas, EAS_V141, card3), *p, *v;

    (void)state;
    assert_non_null(x);
    /* the device changes the job title, drops the picture and body (ghosted) */
    p = strstr(x, "Chemist");
    assert_non_null(p);
    memcpy(p, "Analyst", 7);
    p = strstr(x, "  <Picture");
    assert_non_null(p);
    memmove(p, strstr(p, "</Picture>") + 11, strlen(strstr(p, "</Picture>") + 11) + 1);
    p = strstr(x, "  <Body");
    assert_non_null(p);
    memmove(p, strstr(p, "</Body>") + 8, strlen(strstr(p, "</Body>") + 8) + 1);
    v = pim_from(eas_contact_from_eas, EAS_V141, x, card3);
    assert_non_null(v);
    assert_has(v, "UID:c1@example.com");
    assert_has(v, "TITLE:Analyst");
    assert_hasnt(v, "Chemist");
    assert_has(v, "EMAIL:fourth@example.com");
    assert_has(v, "X-SOCIALPROFILE;TYPE=twitter:https://twitter.com/jane");
    assert_has(v, "item1.X-ABLABEL:custom");
    assert_has(v, "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRg==");
    assert_has(v, "NOTE:Met at the conference\\nlikes tea");
    assert_has(v, "ORG:Acme Inc.;Research");
    /* exactly one of each slotted property: nothing doubled */
    assert_null(strstr(strstr(v, "TEL;TYPE=CELL") + 1, "TEL;TYPE=CELL"));
    free(v);
    free(x);
}

/* A device that said which elements it supports: what it does not support and leaves
 * out is ghosted (kept); what it supports and leaves out is removed. */
static void test_ghosted(void **state)
{
    static const unsigned sup[] = {EAS_CONTACTS_FIRSTNAME,         EAS_CONTACTS_LASTNAME,
                                   EAS_CONTACTS_MOBILEPHONENUMBER, EAS_CONTACTS_JOBTITLE,
                                   EAS_CONTACTS_EMAIL1ADDRESS,     EAS_CONTACTS_EMAIL2ADDRESS};
    static const char dev[] =
        "<ApplicationData xmlns=\"AirSync:\" xmlns:c=\"Contacts:\"><c:FirstName>Jane</c:FirstName>"
        "<c:LastName>Doe</c:LastName><c:MobilePhoneNumber>+1 555 7777</c:MobilePhoneNumber>"
        "<c:Email1Address>jane@acme.example</c:Email1Address></ApplicationData>";
    char *v;

    (void)state;
    pim_supported = sup;
    pim_nsupported = sizeof(sup) / sizeof(sup[0]);
    v = pim_from(eas_contact_from_eas, EAS_V141, dev, card3);
    pim_supported = NULL;
    pim_nsupported = 0;
    assert_non_null(v);
    /* supported and sent */
    assert_has(v, "TEL;TYPE=CELL:+1 555 7777");
    assert_has(v, "EMAIL;TYPE=INTERNET,WORK:jane@acme.example"); /* unchanged: as stored */
    /* supported, left out: removed */
    assert_hasnt(v, "TITLE:");
    assert_hasnt(v, "jane@home.example");
    /* not supported: kept as stored */
    assert_has(v, "ORG:Acme Inc.;Research");
    assert_has(v, "BDAY:1980-05-01");
    assert_has(v, "TEL;TYPE=WORK,VOICE:+1 555 0100");
    assert_has(v, "ADR;TYPE=WORK:;;1 Main St;Springfield;IL;62701;USA");
    assert_has(v, "X-CHILDREN:Ann,Bob");
    assert_has(v, "EMAIL:third@example.com");
    /* the names are supported: N from the device (its other parts removed) */
    assert_has(v, "N:Doe;Jane;;;");
    assert_null(strstr(strstr(v, "\nN:") + 1, "\nN:"));
    /* FileAs is not supported, but the names are: FN made from them */
    assert_has(v, "FN:Jane Doe");
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_card_to_eas),
        cmocka_unit_test(test_card4),
        cmocka_unit_test(test_device_card),
        cmocka_unit_test(test_change_keeps),
        cmocka_unit_test(test_ghosted),
        cmocka_unit_test(test_fields_without_vcard_property),
        cmocka_unit_test(test_unchanged_keep_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
