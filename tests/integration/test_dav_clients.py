"""The discovery and first-sync request sequences of Thunderbird (calendar and CardDAV),
iOS, DAVx5 and eM Client, replayed against the real server from the one URL customers
paste, asserting what each client needs from each answer to go on. The request bodies
follow what these clients send (their property lists, depths and header quirks), as
described in their documentation and in public bug reports and server logs.

Also: sync-collection after one change in an address book of 10,000 cards answers exactly
that change.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_dav_clients.py
"""
import base64
import os
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
from dav_util import A, ALICE, C, CR, CS, D, Dav, ms, setup_users  # noqa: E402

NS = ('xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" '
      'xmlns:CARD="urn:ietf:params:xml:ns:carddav" xmlns:CS="http://calendarserver.org/ns/" '
      'xmlns:A="http://apple.com/ns/ical/" xmlns:ME="urn:ietf:params:xml:ns:carddav"')


def propfind_body(props):
    return '<?xml version="1.0" encoding="UTF-8"?><D:propfind %s><D:prop>%s</D:prop></D:propfind>' \
        % (NS, props)


def event(uid, start='20300107T090000Z', end='20300107T100000Z'):
    return ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//replay//EN\r\nBEGIN:VEVENT\r\n'
            'UID:%s\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:%s\r\nDTEND:%s\r\nSUMMARY:%s\r\n'
            'END:VEVENT\r\nEND:VCALENDAR\r\n' % (uid, start, end, uid))


def card(uid, name):
    return ('BEGIN:VCARD\r\nVERSION:3.0\r\nUID:%s\r\nFN:%s\r\nN:%s;;;;\r\n'
            'EMAIL;TYPE=INTERNET:%s@example.net\r\nEND:VCARD\r\n' % (uid, name, name, uid))


class Client:
    """One client's requests: its own User-Agent, following redirects like it does."""

    def __init__(self, test, ua):
        self.t = test
        self.dav = test.dav
        self.ua = ua

    def req(self, method, path, body=None, depth=None, headers=None, expect=None):
        h = {'User-Agent': self.ua}
        if body is not None:
            h['Content-Type'] = 'application/xml; charset=utf-8'
        if depth is not None:
            h['Depth'] = depth
        h.update(headers or {})
        for _ in range(3):  # clients follow redirects (well-known)
            st, rh, data = self.dav.req(method, path, body, h)
            if st not in (301, 302, 307, 308):
                break
            loc = rh['location']
            path = loc.split('://', 1)[1][loc.split('://', 1)[1].index('/'):] if '://' in loc \
                else loc
        if expect is not None:
            self.t.assertEqual(st, expect, '%s %s: %s' % (method, path, data[:300]))
        return st, rh, data

    def propfind(self, path, props, depth='0'):
        _, _, data = self.req('PROPFIND', path, propfind_body(props), depth, expect=207)
        return ms(data)[0]

    def one(self, path, props, depth='0'):
        """The properties of the first (Depth 0: only) response."""
        got = self.propfind(path, props, depth)
        self.t.assertEqual(len(got), 1, got.keys())
        return next(iter(got.items()))

    def href(self, props, name):
        code, el = props[name]
        self.t.assertEqual(code, 200, name)
        h = el.find(D + 'href')
        self.t.assertIsNotNone(h, name)
        self.t.assertTrue(h.text.startswith('/'), h.text)
        return h.text


class DavClients(unittest.TestCase):
    p = None

    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(start=False, extra_config='[auth]\nfail_max = 100000\n').__enter__()
        setup_users(cls.p)
        cls.p.start()
        cls.dav = Dav(cls.p)
        for i in range(3):
            st, _, b = cls.dav.put('/caldav/alice@example.com/calendar/ev%d.ics' % i,
                                   event('ev%d' % i))
            assert st == 201, b
        st, _, b = cls.dav.put('/carddav/alice@example.com/contacts/friend.vcf',
                               card('friend', 'Friend'), 'text/vcard')
        assert st == 201, b

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    # -- shared checks -----------------------------------------------------------------
    def calendars_in_home(self, got):
        cals = {}
        for href, props in got.items():
            code, rt = props.get(D + 'resourcetype', (404, None))
            if code == 200 and rt.find(C + 'calendar') is not None:
                cals[href] = props
        self.assertTrue(cals, 'no calendar in the home listing')
        return cals

    def writable(self, props):
        code, el = props[D + 'current-user-privilege-set']
        self.assertEqual(code, 200)
        privs = {p.tag for pr in el.findall(D + 'privilege') for p in pr}
        self.assertTrue({D + 'write', D + 'all'} & privs or
                        {D + 'write-content', D + 'bind'} <= privs, privs)

    def sync_all(self, c, coll, prop='<D:getetag/>', level=True):
        body = ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection %s><D:sync-token/>%s'
                '<D:prop>%s</D:prop></D:sync-collection>'
                % (NS, '<D:sync-level>1</D:sync-level>' if level else '', prop))
        _, _, data = c.req('REPORT', coll, body, None, expect=207)
        root = ET.fromstring(data)
        token = root.findtext(D + 'sync-token')
        self.assertTrue(token)
        items = {}
        for r in root.findall(D + 'response'):
            etag = r.find('.//' + D + 'getetag')
            items[r.findtext(D + 'href')] = etag.text if etag is not None else None
        return token, items

    # -- Thunderbird --------------------------------------------------------------------
    def test_thunderbird_calendar(self):
        c = Client(self, 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 '
                         'Thunderbird/128.5.0')
        # "Find calendars" on the pasted URL: is it a calendar, or where is the principal?
        href, props = c.one('/caldav', '<D:resourcetype/><D:owner/><D:current-user-principal/>'
                            '<D:current-user-privilege-set/><D:supported-report-set/>'
                            '<C:supported-calendar-component-set/><CS:getctag/>')
        self.assertIsNone(props[D + 'resourcetype'][1].find(C + 'calendar'))
        principal = c.href(props, D + 'current-user-principal')
        _, props = c.one(principal, '<C:calendar-home-set/>')
        home = c.href(props, C + 'calendar-home-set')
        got = c.propfind(home, '<D:resourcetype/><D:displayname/><D:current-user-privilege-set/>'
                         '<A:calendar-color/><C:supported-calendar-component-set/>'
                         '<CS:getctag/>', depth='1')
        cals = self.calendars_in_home(got)
        for href, props in cals.items():
            self.assertEqual(props[D + 'displayname'][0], 200)
            self.writable(props)
            comps = {x.get('name') for x in
                     props[C + 'supported-calendar-component-set'][1]}
            self.assertTrue(comps & {'VEVENT', 'VTODO', 'VJOURNAL'})
        cal = [h for h, p in cals.items() if 'VEVENT' in
               {x.get('name') for x in p[C + 'supported-calendar-component-set'][1]}][0]
        # the first sync: ctag, then the etags by calendar-query, then multiget
        _, props = c.one(cal, '<CS:getctag/><D:sync-token/><D:supported-report-set/>')
        self.assertEqual(props[CS + 'getctag'][0], 200)
        reports = {r.tag for sr in props[D + 'supported-report-set'][1]
                   for r in sr.iter() if r.tag.startswith('{')}
        for want in (D + 'sync-collection', C + 'calendar-multiget', C + 'calendar-query'):
            self.assertIn(want, reports)
        q = ('<?xml version="1.0" encoding="UTF-8"?><C:calendar-query %s><D:prop><D:getetag/>'
             '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
             '<C:time-range start="20291201T000000Z" end="20300301T000000Z"/></C:comp-filter>'
             '</C:comp-filter></C:filter></C:calendar-query>' % NS)
        _, _, data = c.req('REPORT', cal, q, '1', expect=207)
        hrefs = sorted(ms(data)[0])
        cal_items = ['%sev%d.ics' % (cal, i) for i in range(3)]
        self.assertEqual([h for h in hrefs if h in cal_items], cal_items)
        mg = ('<?xml version="1.0" encoding="UTF-8"?><C:calendar-multiget %s><D:prop>'
              '<D:getetag/><C:calendar-data/></D:prop>%s</C:calendar-multiget>'
              % (NS, ''.join('<D:href>%s</D:href>' % h for h in hrefs)))
        _, _, data = c.req('REPORT', cal, mg, '1', expect=207)
        for h, props in ms(data)[0].items():
            self.assertIn('BEGIN:VEVENT', props[C + 'calendar-data'][1].text)
        # a new event from Thunderbird: If-None-Match, then the ETag it keeps
        st, rh, _ = c.req('PUT', cal + 'tb-new.ics', event('tb-new').encode(),
                          headers={'Content-Type': 'text/calendar; charset=utf-8',
                                   'If-None-Match': '*'}, expect=201)
        self.assertTrue(rh.get('etag', '').startswith('"'))

    def test_thunderbird_carddav(self):
        c = Client(self, 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 '
                         'Thunderbird/128.5.0')
        _, props = c.one('/.well-known/carddav', '<D:resourcetype/><D:displayname/>'
                         '<D:current-user-principal/><D:current-user-privilege-set/>')
        principal = c.href(props, D + 'current-user-principal')
        _, props = c.one(principal, '<CARD:addressbook-home-set/>')
        home = c.href(props, CR + 'addressbook-home-set')
        got = c.propfind(home, '<D:resourcetype/><D:displayname/><D:current-user-privilege-set/>',
                         depth='1')
        books = [h for h, p in got.items() if p[D + 'resourcetype'][0] == 200 and
                 p[D + 'resourcetype'][1].find(CR + 'addressbook') is not None]
        self.assertTrue(books)
        self.writable(got[books[0]])
        _, props = c.one(books[0], '<D:supported-report-set/><D:sync-token/><CS:getctag/>')
        self.assertEqual(props[D + 'sync-token'][0], 200)
        token, items = self.sync_all(c, books[0])
        self.assertEqual(len(items), 1)
        mg = ('<?xml version="1.0" encoding="UTF-8"?><CARD:addressbook-multiget %s><D:prop>'
              '<D:getetag/><CARD:address-data/></D:prop><D:href>%s</D:href>'
              '</CARD:addressbook-multiget>' % (NS, list(items)[0]))
        _, _, data = c.req('REPORT', books[0], mg, '1', expect=207)
        (props,) = ms(data)[0].values()
        self.assertIn('FN:Friend', props[CR + 'address-data'][1].text)

    # -- iOS ---------------------------------------------------------------------------
    def test_ios(self):
        c = Client(self, 'iOS/17.2 (21C62) dataaccessd/1.0')
        _, props = c.one('/.well-known/caldav', '<D:current-user-principal/><D:principal-URL/>'
                         '<D:resourcetype/>')
        principal = c.href(props, D + 'current-user-principal')
        st, rh, _ = c.req('OPTIONS', principal, expect=200)
        self.assertIn('calendar-access', rh['dav'])
        _, props = c.one(principal, '<C:calendar-home-set/><C:calendar-user-address-set/>'
                         '<C:schedule-inbox-URL/><C:schedule-outbox-URL/><CS:dropbox-home-URL/>'
                         '<CS:email-address-set/><D:displayname/><CS:notification-URL/>'
                         '<D:principal-URL/><D:supported-report-set/>')
        home = c.href(props, C + 'calendar-home-set')
        addrs = [h.text for h in props[C + 'calendar-user-address-set'][1].findall(D + 'href')]
        self.assertIn('mailto:alice@example.com', addrs)
        got = c.propfind(home, '<A:calendar-color/><A:calendar-order/><C:calendar-description/>'
                         '<CS:getctag/><D:sync-token/><D:resourcetype/><D:displayname/>'
                         '<C:supported-calendar-component-set/><D:current-user-privilege-set/>'
                         '<CS:pushkey/><D:quota-available-bytes/><D:quota-used-bytes/>'
                         '<C:calendar-timezone/><D:owner/><CS:source/><CS:subscribed-strip-alarms/>'
                         '<C:calendar-free-busy-set/><C:schedule-calendar-transp/>'
                         '<C:schedule-default-calendar-URL/><CS:allowed-sharing-modes/>',
                         depth='1')
        cals = self.calendars_in_home(got)
        cal = '/caldav/alice@example.com/calendar/'
        self.assertIn(cal, cals)
        self.assertEqual(cals[cal][D + 'sync-token'][0], 200)
        # iOS gives every calendar its colour and order
        body = ('<?xml version="1.0" encoding="UTF-8"?><D:propertyupdate %s><D:set><D:prop>'
                '<A:calendar-color symbolic-color="custom">#63DA38FF</A:calendar-color>'
                '<A:calendar-order>2</A:calendar-order></D:prop></D:set></D:propertyupdate>' % NS)
        _, _, data = c.req('PROPPATCH', cal, body, expect=207)
        (props,) = ms(data)[0].values()
        self.assertEqual(props[A + 'calendar-color'][0], 200)
        _, props = c.one(cal, '<A:calendar-color/><A:calendar-order/>')
        self.assertEqual(props[A + 'calendar-color'][1].text, '#63DA38FF')
        self.assertEqual(props[A + 'calendar-order'][1].text, '2')
        # the first sync: sync-collection with an empty token, then multiget
        token, items = self.sync_all(c, cal, '<D:getcontenttype/><D:getetag/>', level=False)
        self.assertGreaterEqual(len(items), 3)
        self.assertTrue(all(e and e.startswith('"') for e in items.values()))
        # an event made on the phone, then the incremental sync sees only it
        c.req('PUT', cal + 'ios-1.ics', event('ios-1').encode(),
              headers={'Content-Type': 'text/calendar', 'If-None-Match': '*'}, expect=201)
        body = ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection %s><D:sync-token>%s'
                '</D:sync-token><D:prop><D:getetag/></D:prop></D:sync-collection>' % (NS, token))
        _, _, data = c.req('REPORT', cal, body, None, expect=207)
        self.assertEqual(list(ms(data)[0]), [cal + 'ios-1.ics'])

    # -- DAVx5 -------------------------------------------------------------------------
    def test_davx5(self):
        c = Client(self, 'DAVx5/4.4.3.2-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/14')
        props_all = ('<D:resourcetype/><D:displayname/><D:owner/><D:current-user-principal/>'
                     '<D:current-user-privilege-set/><C:calendar-home-set/>'
                     '<CARD:addressbook-home-set/><A:calendar-color/><C:calendar-description/>'
                     '<C:calendar-timezone/><C:supported-calendar-component-set/>'
                     '<CARD:addressbook-description/><CARD:supported-address-data/>'
                     '<CS:source/>')
        for url in ('/caldav', '/carddav'):
            href, props = c.one(url, props_all)
            principal = c.href(props, D + 'current-user-principal')
            home_prop = C + 'calendar-home-set' if url == '/caldav' else CR + 'addressbook-home-set'
            _, pp = c.one(principal, props_all)
            home = c.href(pp, home_prop)
            got = c.propfind(home, props_all, depth='1')
            colls = [h for h, p in got.items() if h != home]
            self.assertTrue(colls, url)
        cal = '/caldav/alice@example.com/calendar/'
        _, props = c.one(cal, '<CS:getctag/><D:sync-token/><D:supported-report-set/>')
        token, items = self.sync_all(c, cal)
        self.assertGreaterEqual(len(items), 3)
        # DAVx5 asks multiget in batches, with calendar-data and getetag
        hrefs = sorted(items)[:2]
        mg = ('<?xml version="1.0" encoding="UTF-8"?><C:calendar-multiget %s><D:prop>'
              '<D:getetag/><C:calendar-data/><D:getcontenttype/></D:prop>%s'
              '</C:calendar-multiget>' % (NS, ''.join('<D:href>%s</D:href>' % h for h in hrefs)))
        _, _, data = c.req('REPORT', cal, mg, None, expect=207)
        got = ms(data)[0]
        self.assertEqual(sorted(got), hrefs)
        for h in hrefs:
            self.assertEqual(got[h][D + 'getetag'][1].text, items[h])

    # -- eM Client ---------------------------------------------------------------------
    def test_em_client(self):
        c = Client(self, 'eM Client/10.1.4588.0')
        _, props = c.one('/caldav/', '<D:current-user-principal/>')
        principal = c.href(props, D + 'current-user-principal')
        _, props = c.one(principal, '<C:calendar-home-set/><C:calendar-user-address-set/>'
                         '<D:displayname/>')
        home = c.href(props, C + 'calendar-home-set')
        got = c.propfind(home, '<CS:getctag/><D:displayname/><D:resourcetype/>'
                         '<C:supported-calendar-component-set/><A:calendar-color/>'
                         '<D:current-user-privilege-set/>', depth='1')
        self.calendars_in_home(got)
        q = ('<?xml version="1.0" encoding="utf-8"?><C:calendar-query %s><D:prop><D:getetag/>'
             '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
             '</C:comp-filter></C:filter></C:calendar-query>' % NS)
        _, _, data = c.req('REPORT', '/caldav/alice@example.com/calendar/', q, '1', expect=207)
        self.assertGreaterEqual(len(ms(data)[0]), 3)
        # the task list is found too, and takes a VTODO
        todo = ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//eM Client//EN\r\nBEGIN:VTODO\r\n'
                'UID:em-todo\r\nDTSTAMP:20300101T000000Z\r\nSUMMARY:call back\r\nEND:VTODO\r\n'
                'END:VCALENDAR\r\n')
        c.req('PUT', '/caldav/alice@example.com/tasks/em-todo.ics', todo.encode(),
              headers={'Content-Type': 'text/calendar'}, expect=201)

    # -- sync-collection on a big collection -----------------------------------------------
    def test_sync_after_one_change_in_10000(self):
        book = '/carddav/alice@example.com/big/'
        body = ('<?xml version="1.0"?><D:mkcol %s><D:set><D:prop><D:resourcetype><D:collection/>'
                '<CARD:addressbook/></D:resourcetype><D:displayname>Big</D:displayname></D:prop>'
                '</D:set></D:mkcol>' % NS)
        st, _, data = self.dav.req('MKCOL', book, body, {'Content-Type': 'application/xml'})
        self.assertEqual(st, 201, data)
        conn = self.p.http(timeout=60)
        auth = 'Basic ' + base64.b64encode(('%s:%s' % ALICE).encode()).decode()
        host = self.p.label_host()
        t0 = time.monotonic()
        for i in range(10000):
            conn.request('PUT', book + 'c%d.vcf' % i, body=card('c%d' % i, 'P%d' % i).encode(),
                         headers={'Host': host, 'Authorization': auth,
                                  'Content-Type': 'text/vcard'})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 201)
        conn.close()
        print('\n10,000 PUTs: %.1f s' % (time.monotonic() - t0))
        c = Client(self, 'test')
        _, props = c.one(book, '<D:sync-token/>')
        token = props[D + 'sync-token'][1].text
        self.dav.put(book + 'c4242.vcf', card('c4242', 'Changed'), 'text/vcard')
        self.dav.req('DELETE', book + 'c17.vcf')
        body = ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection %s><D:sync-token>%s'
                '</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop>'
                '</D:sync-collection>' % (NS, token))
        t0 = time.monotonic()
        _, _, data = c.req('REPORT', book, body, None, expect=207)
        print('sync-collection after two changes in 10,000: %.1f ms'
              % ((time.monotonic() - t0) * 1000))
        props, bare = ms(data)
        self.assertEqual(list(props), [book + 'c4242.vcf'])
        self.assertEqual(bare, {book + 'c17.vcf': 404})


if __name__ == '__main__':
    unittest.main(verbosity=2)
