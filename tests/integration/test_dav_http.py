"""WebDAV / CalDAV / CardDAV over raw HTTP against the real binary: discovery from the one
URL customers paste (/caldav, /carddav, the well-known URLs, the principal), PROPFIND
(depths, unknown properties, propname, allprop), PROPPATCH, MKCALENDAR and extended
MKCOL, PUT with its preconditions, GET/HEAD, DELETE, COPY/MOVE, multiget, sync-collection,
the access rules (owner only, Basic mailboxes, other tenants) and hostile input (DOCTYPE
and entities, malformed XML, oversized bodies and resources).

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_dav_http.py
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
from dav_util import (A, ACAL, ACARD, ALICE, BOB, C, CAROL, CHARLIE, CR, CS, D, Dav,  # noqa: E402
                      NSDECL, error_elements, hrefs_text, ms, setup_users, vcard3, vevent,
                      vtodo)

EXTRA = ('[auth]\nfail_max = 100000\n\n[server]\nmax_request = 2M\n\n'
         '[dav]\nmax_resource = 65536\n')


class DavHttp(unittest.TestCase):
    p = None

    @classmethod
    def setUpClass(cls):
        cls.p = Polaris(extra_config=EXTRA).__enter__()
        setup_users(cls.p)
        cls.dav = Dav(cls.p)

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def mkcal(self, name, comps=('VEVENT',), extra=''):
        comp = ''.join('<c:comp name="%s"/>' % c for c in comps)
        body = ('<?xml version="1.0"?><c:mkcalendar %s><d:set><d:prop>'
                '<c:supported-calendar-component-set>%s</c:supported-calendar-component-set>%s'
                '</d:prop></d:set></c:mkcalendar>' % (NSDECL, comp, extra))
        st, h, b = self.dav.req('MKCALENDAR', ACAL + name + '/', body)
        self.assertEqual(st, 201, b)
        return ACAL + name + '/'

    # -- discovery -------------------------------------------------------------------------
    def test_options_advertises_dav_classes(self):
        st, h, _ = self.dav.req('OPTIONS', '/caldav/')
        self.assertEqual(st, 200)
        classes = [c.strip() for c in h['dav'].split(',')]
        for c in ('1', '3', 'calendar-access', 'addressbook', 'extended-mkcol'):
            self.assertIn(c, classes)
        self.assertIn('PROPFIND', h['allow'])
        st, _, _ = self.dav.req('OPTIONS', '/caldav/', auth=None)
        self.assertEqual(st, 401)

    def test_context_path_discovers_principal_home_and_collections(self):
        for path in ('/caldav', '/caldav/'):
            st, _, b = self.dav.propfind(path, '<d:current-user-principal/><c:calendar-home-set/>'
                                         '<d:resourcetype/><c:supported-calendar-component-set/>'
                                         '<d:displayname/>', depth='1')
            self.assertEqual(st, 207, path)
            props, _ = ms(b)
            top = props['/caldav/']
            self.assertEqual(hrefs_text(top[D + 'current-user-principal'][1]),
                             ['/principals/alice@example.com/'])
            self.assertEqual(hrefs_text(top[C + 'calendar-home-set'][1]), [ACAL])
            comps = {}
            for href, pr in props.items():
                if href == '/caldav/':
                    continue
                self.assertTrue(href.startswith(ACAL), href)
                rt = pr[D + 'resourcetype'][1]
                self.assertIsNotNone(rt.find(D + 'collection'))
                self.assertIsNotNone(rt.find(C + 'calendar'))
                comps[href] = [c.get('name') for c in
                               pr[C + 'supported-calendar-component-set'][1]]
            self.assertEqual(comps[ACAL + 'calendar/'], ['VEVENT'])
            self.assertEqual(comps[ACAL + 'tasks/'], ['VTODO'])
            self.assertEqual(comps[ACAL + 'notes/'], ['VJOURNAL'])

    def test_carddav_context_path_lists_address_books(self):
        st, _, b = self.dav.propfind('/carddav/', '<d:current-user-principal/>'
                                     '<cr:addressbook-home-set/><d:resourcetype/>', depth='1')
        self.assertEqual(st, 207)
        props, _ = ms(b)
        self.assertEqual(hrefs_text(props['/carddav/'][CR + 'addressbook-home-set'][1]), [ACARD])
        rt = props[ACARD + 'contacts/'][D + 'resourcetype'][1]
        self.assertIsNotNone(rt.find(CR + 'addressbook'))
        self.assertEqual([h for h in props if h.startswith(ACAL)], [])

    def test_principal_properties(self):
        st, _, b = self.dav.propfind('/principals/alice@example.com/',
                                     '<d:principal-URL/><c:calendar-home-set/>'
                                     '<cr:addressbook-home-set/><c:calendar-user-address-set/>'
                                     '<d:displayname/><d:resourcetype/>')
        self.assertEqual(st, 207)
        pr = ms(b)[0]['/principals/alice@example.com/']
        self.assertEqual(hrefs_text(pr[D + 'principal-URL'][1]),
                         ['/principals/alice@example.com/'])
        self.assertEqual(hrefs_text(pr[C + 'calendar-home-set'][1]), [ACAL])
        self.assertEqual(hrefs_text(pr[CR + 'addressbook-home-set'][1]), [ACARD])
        self.assertIn('mailto:alice@example.com',
                      hrefs_text(pr[C + 'calendar-user-address-set'][1]))
        self.assertEqual(pr[D + 'displayname'][1].text, 'alice@example.com')
        self.assertIsNotNone(pr[D + 'resourcetype'][1].find(D + 'principal'))

    def test_home_names_the_home_sets_too(self):
        st, _, b = self.dav.propfind(ACAL, '<c:calendar-home-set/><cr:addressbook-home-set/>'
                                     '<d:principal-URL/>')
        pr = ms(b)[0][ACAL]
        self.assertEqual(hrefs_text(pr[C + 'calendar-home-set'][1]), [ACAL])
        self.assertEqual(hrefs_text(pr[CR + 'addressbook-home-set'][1]), [ACARD])

    def test_expand_property_on_the_principal(self):
        body = ('<d:expand-property xmlns:d="DAV:"><d:property name="current-user-principal">'
                '<d:property name="displayname"/><d:property name="calendar-home-set" '
                'namespace="urn:ietf:params:xml:ns:caldav"/></d:property>'
                '<d:property name="calendar-user-address-set" '
                'namespace="urn:ietf:params:xml:ns:caldav"><d:property name="displayname"/>'
                '</d:property><d:property name="nope"/></d:expand-property>')
        princ = '/principals/alice@example.com/'
        st, _, b = self.dav.report(princ, body, depth='0')
        self.assertEqual(st, 207, b)
        import xml.etree.ElementTree as ET
        root = ET.fromstring(b)
        top = root.findall(D + 'response')
        self.assertEqual([r.find(D + 'href').text for r in top], [princ])
        props, _ = ms(b)
        self.assertEqual(props[princ]['{DAV:}nope'][0], 404)
        cup = props[princ][D + 'current-user-principal'][1]
        inner = cup.find(D + 'response')
        self.assertEqual(inner.find(D + 'href').text, princ)
        got = {el.tag: el for ps in inner.findall(D + 'propstat') for el in ps.find(D + 'prop')}
        self.assertEqual(got[D + 'displayname'].text, 'alice@example.com')
        self.assertEqual(hrefs_text(got[C + 'calendar-home-set']), [ACAL])
        # mailto: names no resource here: a 404 response in its place
        cua = props[princ][C + 'calendar-user-address-set'][1]
        statuses = {r.find(D + 'href').text: r.find(D + 'status') for r in
                    cua.findall(D + 'response')}
        self.assertIn('404', statuses['mailto:alice@example.com'].text)

    def test_well_known_redirects(self):
        for wk, target in (('/.well-known/caldav', '/caldav/'),
                           ('/.well-known/carddav', '/carddav/')):
            for method in ('GET', 'PROPFIND'):
                st, h, _ = self.dav.req(method, wk, auth=None)
                self.assertEqual(st, 301, wk)
                self.assertEqual(h['location'], target)

    def test_home_depth1_and_collection_properties(self):
        st, _, b = self.dav.propfind(ACAL, '<d:resourcetype/><cs:getctag/><d:sync-token/>'
                                     '<c:supported-calendar-data/><c:max-resource-size/>'
                                     '<d:current-user-privilege-set/><d:supported-report-set/>'
                                     '<d:owner/><d:quota-used-bytes/><d:quota-available-bytes/>',
                                     depth='1')
        self.assertEqual(st, 207)
        props, _ = ms(b)
        cal = props[ACAL + 'calendar/']
        self.assertEqual(cal[CS + 'getctag'][0], 200)
        self.assertTrue(cal[D + 'sync-token'][1].text.startswith('http://polaris/sync/'))
        self.assertEqual(cal[C + 'max-resource-size'][1].text, str(64 * 1024))
        self.assertEqual(cal[C + 'supported-calendar-data'][1][0].get('content-type'),
                         'text/calendar')
        privs = [p[0].tag for p in cal[D + 'current-user-privilege-set'][1]]
        for p in (D + 'read', D + 'write', D + 'bind', D + 'unbind', D + 'write-content'):
            self.assertIn(p, privs)
        reports = [r[0][0].tag for r in cal[D + 'supported-report-set'][1]]
        for r in (C + 'calendar-query', C + 'calendar-multiget', D + 'sync-collection',
                  C + 'free-busy-query'):
            self.assertIn(r, reports)
        self.assertEqual(hrefs_text(cal[D + 'owner'][1]), ['/principals/alice@example.com/'])
        self.assertEqual(cal[D + 'quota-available-bytes'][0], 200)
        # the home itself is a plain collection
        self.assertEqual([c.tag for c in props[ACAL][D + 'resourcetype'][1]], [D + 'collection'])

    # -- PROPFIND rules ----------------------------------------------------------------------
    def test_depth_infinity_refused(self):
        for depth in ('infinity', None):
            headers = {'Depth': depth} if depth else {}
            st, _, b = self.dav.req('PROPFIND', ACAL, '<d:propfind xmlns:d="DAV:"><d:prop>'
                                    '<d:resourcetype/></d:prop></d:propfind>', headers)
            self.assertEqual(st, 403, depth)
            self.assertEqual(error_elements(b), [D + 'propfind-finite-depth'])

    def test_unknown_property_404_propstat(self):
        st, _, b = self.dav.propfind(ACAL + 'calendar/', '<d:displayname/><x:nope xmlns:x="urn:x"/>')
        self.assertEqual(st, 207)
        pr = ms(b)[0][ACAL + 'calendar/']
        self.assertEqual(pr[D + 'displayname'][0], 200)
        self.assertEqual(pr['{urn:x}nope'][0], 404)

    def test_prefer_minimal_drops_404_propstats(self):
        body = ('<d:propfind xmlns:d="DAV:"><d:prop><d:displayname/><x:nope xmlns:x="urn:x"/>'
                '</d:prop></d:propfind>')
        for headers in ({'Prefer': 'return=minimal'}, {'Brief': 't'}):
            headers['Depth'] = '1'
            st, h, b = self.dav.req('PROPFIND', ACAL, body, headers)
            self.assertEqual(st, 207)
            props, _ = ms(b)
            self.assertNotIn(b'404', b)
            self.assertEqual(props[ACAL + 'calendar/'][D + 'displayname'][0], 200)
            if 'Prefer' in headers:
                self.assertEqual(h.get('preference-applied'), 'return=minimal')

    def test_propname_and_allprop(self):
        st, _, b = self.dav.req('PROPFIND', ACAL + 'calendar/',
                                '<d:propfind xmlns:d="DAV:"><d:propname/></d:propfind>',
                                {'Depth': '0'})
        self.assertEqual(st, 207)
        pr = ms(b)[0][ACAL + 'calendar/']
        self.assertIn(C + 'supported-calendar-component-set', pr)
        self.assertEqual(len(pr[D + 'resourcetype'][1]), 0)
        st, _, b = self.dav.req('PROPFIND', ACAL + 'calendar/', '', {'Depth': '0'})
        self.assertEqual(st, 207)
        pr = ms(b)[0][ACAL + 'calendar/']
        self.assertEqual(pr[D + 'displayname'], (200, pr[D + 'displayname'][1]))
        self.assertIn(D + 'resourcetype', pr)

    # -- access ------------------------------------------------------------------------------
    def test_other_users_home_is_404(self):
        charlie = Dav(self.p, CHARLIE)
        for path in (ACAL, ACAL + 'calendar/', ACARD, '/principals/alice@example.com/'):
            st, _, _ = charlie.propfind(path, '<d:resourcetype/>')
            self.assertEqual(st, 404, path)
        st, _, _ = charlie.put(ACAL + 'calendar/x.ics', vevent('charlie-x'))
        self.assertEqual(st, 404)
        st, _, _ = charlie.req('DELETE', ACAL + 'calendar/')
        self.assertEqual(st, 404)
        st, _, _ = charlie.req('MKCALENDAR', ACAL + 'evil/')
        self.assertEqual(st, 404)

    def test_basic_mailbox_403_everywhere(self):
        bob = Dav(self.p, BOB)
        for path in ('/caldav/', '/carddav/', '/principals/', '/caldav/bob@example.com/'):
            st, _, _ = bob.propfind(path, '<d:resourcetype/>')
            self.assertEqual(st, 403, path)

    def test_other_tenant_refused(self):
        carol = Dav(self.p, CAROL)
        st, _, _ = carol.propfind('/caldav/', '<d:resourcetype/>')
        self.assertEqual(st, 401)
        # on her own tenant's host she gets her own home, never alice's
        carol_home = Dav(self.p, CAROL, host=self.p.label_host('example.org'))
        st, _, b = carol_home.propfind('/caldav/', '<c:calendar-home-set/>')
        self.assertEqual(st, 207)
        self.assertEqual(hrefs_text(ms(b)[0]['/caldav/'][C + 'calendar-home-set'][1]),
                         ['/caldav/carol@example.org/'])
        st, _, _ = carol_home.propfind(ACAL, '<d:resourcetype/>')
        self.assertEqual(st, 404)

    # -- hostile input -----------------------------------------------------------------------
    def test_doctype_and_entities_refused(self):
        bodies = [
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&x;</d:displayname></d:prop>'
            '</d:propfind>',
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><d:propfind xmlns:d="DAV:">'
            '<d:prop><x>&b;</x></d:prop></d:propfind>',
        ]
        for body in bodies:
            for method in ('PROPFIND', 'REPORT', 'PROPPATCH'):
                st, _, b = self.dav.req(method, ACAL + 'calendar/', body, {'Depth': '0'})
                self.assertEqual(st, 400, method)
                self.assertNotIn(b'root:', b)

    def test_malformed_xml_400(self):
        for body in ('<d:propfind xmlns:d="DAV:"><d:prop>', 'not xml', '<a><b></a>',
                     '<d:propfind xmlns:d="DAV:">' + '<x>' * 100 + '</x>' * 100 +
                     '</d:propfind>'):
            st, _, _ = self.dav.req('PROPFIND', ACAL, body, {'Depth': '0'})
            self.assertEqual(st, 400, body[:30])
        st, _, _ = self.dav.req('PROPPATCH', ACAL + 'calendar/', '<d:wrong xmlns:d="DAV:"/>')
        self.assertEqual(st, 400)

    def test_huge_body_413(self):
        import base64
        conn = self.p.http()
        conn.putrequest('PROPFIND', ACAL, skip_host=True)
        conn.putheader('Host', self.dav.host)
        conn.putheader('Authorization', 'Basic ' + base64.b64encode(
            ('%s:%s' % ALICE).encode()).decode())
        conn.putheader('Content-Length', str(3 * 1024 * 1024))
        conn.endheaders()
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413)
        conn.close()
        # the server is still serving
        st, _, _ = self.dav.propfind(ACAL, '<d:resourcetype/>')
        self.assertEqual(st, 207)

    # -- collections -------------------------------------------------------------------------
    def test_mkcalendar_and_proppatch(self):
        tz = ('BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nEND:VTIMEZONE\r\n'
              'END:VCALENDAR\r\n')
        href = self.mkcal('work-cal', extra='<d:displayname>Work</d:displayname>'
                          '<a:calendar-color>#FF0000FF</a:calendar-color>')
        st, _, _ = self.dav.req('MKCALENDAR', href)
        self.assertEqual(st, 405)
        body = ('<d:propertyupdate %s><d:set><d:prop><d:displayname>Büro</d:displayname>'
                '<c:calendar-description>desk &amp; chair</c:calendar-description>'
                '<a:calendar-order>3</a:calendar-order><c:calendar-timezone>%s'
                '</c:calendar-timezone></d:prop></d:set></d:propertyupdate>' % (NSDECL, tz))
        st, _, b = self.dav.req('PROPPATCH', href, body)
        self.assertEqual(st, 207)
        pr = ms(b)[0][href]
        self.assertEqual({k: v[0] for k, v in pr.items()},
                         {D + 'displayname': 200, C + 'calendar-description': 200,
                          A + 'calendar-order': 200, C + 'calendar-timezone': 200})
        st, _, b = self.dav.propfind(href, '<d:displayname/><c:calendar-description/>'
                                     '<a:calendar-color/><a:calendar-order/>'
                                     '<c:calendar-timezone/>')
        pr = ms(b)[0][href]
        self.assertEqual(pr[D + 'displayname'][1].text, 'Büro')
        self.assertEqual(pr[C + 'calendar-description'][1].text, 'desk & chair')
        self.assertEqual(pr[A + 'calendar-color'][1].text, '#FF0000FF')
        self.assertEqual(pr[A + 'calendar-order'][1].text, '3')
        # XML end-of-line handling turned the CRLFs the client sent into LFs; values are
        # kept without surrounding white space
        self.assertEqual(pr[C + 'calendar-timezone'][1].text, tz.replace('\r\n', '\n').strip())
        # the URL survived the rename
        st, _, _ = self.dav.propfind(href, '<d:displayname/>')
        self.assertEqual(st, 207)
        # remove a property
        body = ('<d:propertyupdate %s><d:remove><d:prop><c:calendar-description/></d:prop>'
                '</d:remove></d:propertyupdate>' % NSDECL)
        st, _, b = self.dav.req('PROPPATCH', href, body)
        self.assertEqual(ms(b)[0][href][C + 'calendar-description'][0], 200)
        st, _, b = self.dav.propfind(href, '<c:calendar-description/>')
        self.assertEqual(ms(b)[0][href][C + 'calendar-description'][0], 404)

    def test_proppatch_refusals_are_atomic(self):
        href = self.mkcal('atomic')
        body = ('<d:propertyupdate %s><d:set><d:prop><d:displayname>New</d:displayname>'
                '<x:dead xmlns:x="urn:x">v</x:dead><d:resourcetype/></d:prop></d:set>'
                '</d:propertyupdate>' % NSDECL)
        st, _, b = self.dav.req('PROPPATCH', href, body)
        self.assertEqual(st, 207)
        pr = ms(b)[0][href]
        self.assertEqual(pr[D + 'displayname'][0], 424)
        self.assertEqual(pr['{urn:x}dead'][0], 424)
        self.assertEqual(pr[D + 'resourcetype'][0], 403)
        import xml.etree.ElementTree as ET
        err = [ps for ps in ET.fromstring(b).iter(D + 'propstat')
               if ps.find(D + 'prop')[0].tag == D + 'resourcetype'][0].find(D + 'error')
        self.assertIsNotNone(err.find(D + 'cannot-modify-protected-property'))
        st, _, b = self.dav.propfind(href, '<d:displayname/>')
        self.assertNotEqual(ms(b)[0][href][D + 'displayname'][1].text, 'New')

    def test_dead_properties_of_collections(self):
        href = self.mkcal('deadprops')
        body = ('<d:propertyupdate %s xmlns:x="urn:x"><d:set><d:prop><x:rate>PT5M</x:rate>'
                '<x:tree><x:leaf a="1">t &amp; u</x:leaf><y:other xmlns:y="urn:y"/></x:tree>'
                '</d:prop></d:set></d:propertyupdate>' % NSDECL)
        st, _, b = self.dav.req('PROPPATCH', href, body)
        self.assertEqual(st, 207)
        self.assertEqual({k: v[0] for k, v in ms(b)[0][href].items()},
                         {'{urn:x}rate': 200, '{urn:x}tree': 200})
        st, _, b = self.dav.propfind(href, '<x:rate xmlns:x="urn:x"/><x:tree xmlns:x="urn:x"/>'
                                     '<x:none xmlns:x="urn:x"/>')
        pr = ms(b)[0][href]
        self.assertEqual(pr['{urn:x}rate'][1].text, 'PT5M')
        leaf = pr['{urn:x}tree'][1].find('{urn:x}leaf')
        self.assertEqual((leaf.text, leaf.get('a')), ('t & u', '1'))
        self.assertIsNotNone(pr['{urn:x}tree'][1].find('{urn:y}other'))
        self.assertEqual(pr['{urn:x}none'][0], 404)
        # allprop and propname include them
        st, _, b = self.dav.req('PROPFIND', href, '', {'Depth': '0'})
        self.assertEqual(ms(b)[0][href]['{urn:x}rate'][1].text, 'PT5M')
        st, _, b = self.dav.req('PROPFIND', href, '<d:propfind xmlns:d="DAV:"><d:propname/>'
                                '</d:propfind>', {'Depth': '0'})
        self.assertIn('{urn:x}tree', ms(b)[0][href])
        # removal
        body = ('<d:propertyupdate %s xmlns:x="urn:x"><d:remove><d:prop><x:rate/></d:prop>'
                '</d:remove></d:propertyupdate>' % NSDECL)
        self.assertEqual(self.dav.req('PROPPATCH', href, body)[0], 207)
        st, _, b = self.dav.propfind(href, '<x:rate xmlns:x="urn:x"/>')
        self.assertEqual(ms(b)[0][href]['{urn:x}rate'][0], 404)
        # items keep none
        self.assertEqual(self.dav.put(href + 'i.ics', vevent('dead-item'))[0], 201)
        body = ('<d:propertyupdate %s xmlns:x="urn:x"><d:set><d:prop><x:rate>1</x:rate>'
                '</d:prop></d:set></d:propertyupdate>' % NSDECL)
        st, _, b = self.dav.req('PROPPATCH', href + 'i.ics', body)
        self.assertEqual(ms(b)[0][href + 'i.ics']['{urn:x}rate'][0], 403)
        # too large
        body = ('<d:propertyupdate %s xmlns:x="urn:x"><d:set><d:prop><x:big>%s</x:big>'
                '</d:prop></d:set></d:propertyupdate>' % (NSDECL, 'z' * 5000))
        st, _, b = self.dav.req('PROPPATCH', href, body)
        self.assertEqual(ms(b)[0][href]['{urn:x}big'][0], 507)
        # they go with the collection
        self.assertEqual(self.dav.req('DELETE', href)[0], 204)
        self.mkcal('deadprops')
        st, _, b = self.dav.propfind(href, '<x:tree xmlns:x="urn:x"/>')
        self.assertEqual(ms(b)[0][href]['{urn:x}tree'][0], 404)

    def test_mkcalendar_keeps_unknown_properties(self):
        href = self.mkcal('mk-dead', extra='<x:transp xmlns:x="urn:x">opaque</x:transp>')
        st, _, b = self.dav.propfind(href, '<x:transp xmlns:x="urn:x"/>')
        self.assertEqual(ms(b)[0][href]['{urn:x}transp'][1].text, 'opaque')

    def test_proppatch_value_too_large_507(self):
        href = self.mkcal('roomy')
        body = ('<d:propertyupdate %s><d:set><d:prop><d:displayname>ok</d:displayname>'
                '<c:calendar-description>%s</c:calendar-description></d:prop></d:set>'
                '</d:propertyupdate>' % (NSDECL, 'x' * 2000))
        st, _, b = self.dav.req('PROPPATCH', href, body)
        self.assertEqual(st, 207)
        pr = ms(b)[0][href]
        self.assertEqual(pr[C + 'calendar-description'][0], 507)
        self.assertEqual(pr[D + 'displayname'][0], 424)

    def test_mkcalendar_values_too_large_507(self):
        body = ('<c:mkcalendar %s><d:set><d:prop><d:displayname>%s</d:displayname></d:prop>'
                '</d:set></c:mkcalendar>' % (NSDECL, 'y' * 3000))
        st, _, _ = self.dav.req('MKCALENDAR', ACAL + 'too-big/', body)
        self.assertEqual(st, 507)
        st, _, _ = self.dav.propfind(ACAL + 'too-big/', '<d:resourcetype/>')
        self.assertEqual(st, 404)

    def test_mkcalendar_vtodo_makes_a_task_list(self):
        href = self.mkcal('chores', comps=('VTODO',))
        st, _, b = self.dav.propfind(href, '<c:supported-calendar-component-set/>')
        comps = [c.get('name') for c in ms(b)[0][href][C + 'supported-calendar-component-set'][1]]
        self.assertEqual(comps, ['VTODO'])
        st, _, b = self.dav.put(href + 't1.ics', vtodo('chore-1'))
        self.assertEqual(st, 201, b)
        st, _, b = self.dav.put(href + 'e1.ics', vevent('chore-ev'))
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [C + 'supported-calendar-component'])

    def test_extended_mkcol(self):
        body = ('<d:mkcol %s><d:set><d:prop><d:resourcetype><d:collection/><cr:addressbook/>'
                '</d:resourcetype><d:displayname>Friends</d:displayname></d:prop></d:set>'
                '</d:mkcol>' % NSDECL)
        st, _, b = self.dav.req('MKCOL', ACARD + 'friends/', body)
        self.assertEqual(st, 201, b)
        st, _, b = self.dav.propfind(ACARD + 'friends/', '<d:resourcetype/><d:displayname/>'
                                     '<cr:supported-address-data/>')
        pr = ms(b)[0][ACARD + 'friends/']
        self.assertIsNotNone(pr[D + 'resourcetype'][1].find(CR + 'addressbook'))
        self.assertEqual(pr[D + 'displayname'][1].text, 'Friends')
        versions = sorted(t.get('version') for t in pr[CR + 'supported-address-data'][1])
        self.assertEqual(versions, ['3.0', '4.0'])
        # a calendar resource type under /carddav is refused
        body = body.replace('<cr:addressbook/>', '<c:calendar/>')
        st, _, b = self.dav.req('MKCOL', ACARD + 'wrong/', body)
        self.assertEqual(st, 403)
        # extended MKCOL of a calendar under /caldav
        body = ('<d:mkcol %s><d:set><d:prop><d:resourcetype><d:collection/><c:calendar/>'
                '</d:resourcetype></d:prop></d:set></d:mkcol>' % NSDECL)
        st, _, _ = self.dav.req('MKCOL', ACAL + 'via-mkcol/', body)
        self.assertEqual(st, 201)
        # no collections inside collections; a missing parent is 409
        st, _, _ = self.dav.req('MKCOL', ACAL + 'via-mkcol/sub/', body)
        self.assertEqual(st, 403)
        st, _, _ = self.dav.req('MKCOL', ACAL + 'nope/sub/', body)
        self.assertEqual(st, 409)

    def test_delete_collections(self):
        st, _, _ = self.dav.req('DELETE', ACAL + 'calendar/')
        self.assertEqual(st, 403)
        st, _, _ = self.dav.req('DELETE', ACARD + 'contacts/')
        self.assertEqual(st, 403)
        st, _, _ = self.dav.req('DELETE', ACAL)
        self.assertEqual(st, 403)
        href = self.mkcal('temporary')
        self.assertEqual(self.dav.put(href + 'a.ics', vevent('tmp-a'))[0], 201)
        st, _, _ = self.dav.req('DELETE', href)
        self.assertEqual(st, 204)
        st, _, _ = self.dav.propfind(href, '<d:resourcetype/>')
        self.assertEqual(st, 404)

    # -- resources ---------------------------------------------------------------------------
    def test_put_get_etag_and_conditions(self):
        href = self.mkcal('put-tests')
        data = vevent('put-1', extra='ORGANIZER;CN=Alice:mailto:alice@example.com\r\n'
                      'ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.net\r\n')
        st, h, b = self.dav.put(href + 'put-1.ics', data, headers={'If-None-Match': '*'})
        self.assertEqual(st, 201, b)
        etag = h['etag']
        self.assertTrue(etag.startswith('"') and etag.endswith('"'), etag)
        st, h, b = self.dav.req('GET', href + 'put-1.ics')
        self.assertEqual((st, h['etag'], b), (200, etag, data.encode()))
        self.assertTrue(h['content-type'].startswith('text/calendar'))
        self.assertIn('last-modified', h)
        st, h, b = self.dav.req('HEAD', href + 'put-1.ics')
        self.assertEqual((st, h['etag'], b), (200, etag, b''))
        # conditional writes
        st, _, _ = self.dav.put(href + 'put-1.ics', data, headers={'If-None-Match': '*'})
        self.assertEqual(st, 412)
        st, _, _ = self.dav.put(href + 'put-1.ics', data, headers={'If-Match': '"1-1"'})
        self.assertEqual(st, 412)
        st, _, _ = self.dav.put(href + 'nothere.ics', vevent('nothere'),
                                headers={'If-Match': etag})
        self.assertEqual(st, 412)
        data2 = data.replace('Meeting', 'Moved meeting')
        st, h, _ = self.dav.put(href + 'put-1.ics', data2, headers={'If-Match': etag})
        self.assertEqual(st, 204)
        self.assertNotEqual(h['etag'], etag)
        st, h2, b = self.dav.req('GET', href + 'put-1.ics')
        self.assertEqual((b, h2['etag']), (data2.encode(), h['etag']))
        # getetag in PROPFIND matches, getctag moved
        st, _, b = self.dav.propfind(href, '<d:getetag/><d:getcontenttype/>', depth='1')
        pr = ms(b)[0]
        self.assertEqual(pr[href + 'put-1.ics'][D + 'getetag'][1].text, h['etag'])
        self.assertTrue(pr[href + 'put-1.ics'][D + 'getcontenttype'][1].text
                        .startswith('text/calendar'))
        # DELETE with a stale If-Match fails, then succeeds
        st, _, _ = self.dav.req('DELETE', href + 'put-1.ics', headers={'If-Match': etag})
        self.assertEqual(st, 412)
        st, _, _ = self.dav.req('DELETE', href + 'put-1.ics', headers={'If-Match': h['etag']})
        self.assertEqual(st, 204)
        st, _, _ = self.dav.req('GET', href + 'put-1.ics')
        self.assertEqual(st, 404)

    def test_ctag_moves_with_every_change(self):
        href = self.mkcal('ctag')

        def tags():
            st, _, b = self.dav.propfind(href, '<cs:getctag/><d:sync-token/><d:getetag/>')
            pr = ms(b)[0][href]
            return (pr[CS + 'getctag'][1].text, pr[D + 'sync-token'][1].text,
                    pr[D + 'getetag'][1].text)
        seen = [tags()]
        self.assertEqual(self.dav.put(href + 'a.ics', vevent('ctag-a'))[0], 201)
        seen.append(tags())
        self.assertEqual(self.dav.put(href + 'a.ics', vevent('ctag-a', summary='b'))[0], 204)
        seen.append(tags())
        self.assertEqual(self.dav.req('DELETE', href + 'a.ics')[0], 204)
        seen.append(tags())
        for i in range(3):
            self.assertEqual(len(set(t[i] for t in seen)), 4, seen)

    def test_put_preconditions(self):
        href = self.mkcal('pre')
        st, _, b = self.dav.put(href + 'a.ics', vevent('pre-a'), ctype='text/plain')
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [C + 'supported-calendar-data'])
        st, _, b = self.dav.put(href + 'b.ics', 'this is not a calendar')
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [C + 'valid-calendar-data'])
        st, _, b = self.dav.put(href + 'c.ics', vtodo('pre-c'))
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [C + 'supported-calendar-component'])
        self.assertEqual(self.dav.put(href + 'd.ics', vevent('pre-d'))[0], 201)
        st, _, b = self.dav.put(href + 'e.ics', vevent('pre-d'))
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [C + 'no-uid-conflict'])
        import xml.etree.ElementTree as ET
        self.assertEqual(ET.fromstring(b)[0].find(D + 'href').text, href + 'd.ics')
        big = vevent('pre-big', extra='DESCRIPTION:%s\r\n' % ('x' * 70000))
        st, _, b = self.dav.put(href + 'big.ics', big)
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [C + 'max-resource-size'])
        # nothing was stored by the refusals
        st, _, b = self.dav.propfind(href, '<d:getetag/>', depth='1')
        self.assertEqual(sorted(ms(b)[0]), [href, href + 'd.ics'])

    def test_concurrent_puts_of_one_uid(self):
        import threading
        href = self.mkcal('race')
        results = []

        def put(i):
            results.append(self.dav.put(href + 'r%d.ics' % i, vevent('race-uid'))[0])
        threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results), [201] + [403] * 7)
        st, _, b = self.dav.propfind(href, '<d:getetag/>', depth='1')
        self.assertEqual(len(ms(b)[0]), 2)  # the collection and one event
        # and If-None-Match: * races on one name: one wins, the others get 412
        results.clear()

        def create(i):
            results.append(self.dav.put(href + 'same.ics', vevent('race-%d' % i),
                                        headers={'If-None-Match': '*'})[0])
        threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results), [201] + [412] * 7)

    def test_put_outside_a_collection(self):
        st, _, _ = self.dav.put(ACAL + 'loose.ics', vevent('loose'))
        self.assertEqual(st, 409)
        st, _, _ = self.dav.put(ACAL + 'nocoll/x.ics', vevent('loose2'))
        self.assertEqual(st, 409)

    def test_multiget(self):
        href = self.mkcal('mget')
        data = vevent('mget-1')
        self.assertEqual(self.dav.put(href + 'one.ics', data)[0], 201)
        body = ('<c:calendar-multiget %s><d:prop><d:getetag/><c:calendar-data/></d:prop>'
                '<d:href>%sone.ics</d:href><d:href>%smissing.ics</d:href>'
                '<d:href>/caldav/bob@example.com/calendar/x.ics</d:href>'
                '</c:calendar-multiget>' % (NSDECL, href, href))
        st, _, b = self.dav.report(href, body)
        self.assertEqual(st, 207)
        props, bare = ms(b)
        self.assertEqual(props[href + 'one.ics'][C + 'calendar-data'][1].text, data)
        self.assertEqual(bare[href + 'missing.ics'], 404)
        self.assertEqual(bare['/caldav/bob@example.com/calendar/x.ics'], 404)
        # an href written another way comes back as written
        other = href.replace('@', '%40') + 'one.ics'
        body = ('<c:calendar-multiget %s><d:prop><d:getetag/></d:prop><d:href>%s</d:href>'
                '</c:calendar-multiget>' % (NSDECL, other))
        st, _, b = self.dav.report(href, body)
        self.assertEqual(list(ms(b)[0]), [other])

    def test_unsupported_report(self):
        st, _, b = self.dav.report(ACAL + 'calendar/', '<d:principal-property-search xmlns:d="DAV:"/>')
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [D + 'supported-report'])
        st, _, b = self.dav.report(ACARD + 'contacts/', '<c:calendar-query %s/>' % NSDECL)
        self.assertEqual(st, 403)

    def test_copy_and_move(self):
        src = self.mkcal('cm-src')
        dst = self.mkcal('cm-dst')
        base = 'http://%s' % self.dav.host
        self.assertEqual(self.dav.put(src + 'm.ics', vevent('cm-m'))[0], 201)
        self.assertEqual(self.dav.put(src + 'c.ics', vevent('cm-c'))[0], 201)
        st, _, _ = self.dav.req('MOVE', src + 'm.ics', headers={'Destination': base + dst + 'm.ics'})
        self.assertEqual(st, 201)
        self.assertEqual(self.dav.req('GET', src + 'm.ics')[0], 404)
        st, _, b = self.dav.req('GET', dst + 'm.ics')
        self.assertEqual((st, b), (200, vevent('cm-m').encode()))
        st, _, _ = self.dav.req('COPY', src + 'c.ics', headers={'Destination': dst + 'c.ics'})
        self.assertEqual(st, 201)
        self.assertEqual(self.dav.req('GET', src + 'c.ics')[0], 200)
        st, _, _ = self.dav.req('COPY', src + 'c.ics', headers={'Destination': dst + 'c.ics',
                                                                  'Overwrite': 'F'})
        self.assertEqual(st, 412)
        st, _, _ = self.dav.req('COPY', src + 'c.ics', headers={'Destination': dst + 'c.ics'})
        self.assertEqual(st, 204)
        # moved and copied events are in the destination's occurrence index at once
        q = ('<c:calendar-query %s><d:prop><d:getetag/></d:prop><c:filter>'
             '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range '
             'start="20260105T000000Z" end="20260106T000000Z"/></c:comp-filter></c:comp-filter>'
             '</c:filter></c:calendar-query>' % NSDECL)
        st, _, b = self.dav.report(dst, q)
        self.assertEqual(sorted(ms(b)[0]), [dst + 'c.ics', dst + 'm.ics'])
        # a copy next to the original would duplicate its UID
        st, _, b = self.dav.req('COPY', src + 'c.ics', headers={'Destination': src + 'c2.ics'})
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [C + 'no-uid-conflict'])
        # nobody else's tree, no tasks into an event calendar
        st, _, _ = self.dav.req('COPY', src + 'c.ics',
                                headers={'Destination': '/caldav/charlie@example.com/calendar/c.ics'})
        self.assertEqual(st, 502)
        st, _, b = self.dav.req('COPY', src + 'c.ics', headers={'Destination': ACAL + 'tasks/c.ics'})
        self.assertEqual(st, 403)

    # -- sync-collection ---------------------------------------------------------------------
    def sync(self, href, token, limit=None):
        lim = '<d:limit><d:nresults>%d</d:nresults></d:limit>' % limit if limit else ''
        body = ('<d:sync-collection %s><d:sync-token>%s</d:sync-token><d:sync-level>1'
                '</d:sync-level>%s<d:prop><d:getetag/></d:prop></d:sync-collection>'
                % (NSDECL, token, lim))
        return self.dav.report(href, body, depth='0')

    def sync_parse(self, b):
        import xml.etree.ElementTree as ET
        props, bare = ms(b)
        token = ET.fromstring(b).find(D + 'sync-token').text
        return props, bare, token

    def test_sync_collection(self):
        href = self.mkcal('sync')
        for i in range(3):
            self.assertEqual(self.dav.put(href + 's%d.ics' % i, vevent('sync-%d' % i))[0], 201)
        st, _, b = self.sync(href, '')
        self.assertEqual(st, 207)
        props, bare, t1 = self.sync_parse(b)
        self.assertEqual(sorted(props), [href + 's%d.ics' % i for i in range(3)])
        self.assertEqual(bare, {})
        # nothing changed: nothing listed, same token
        props, bare, t1b = self.sync_parse(self.sync(href, t1)[2])
        self.assertEqual((props, bare, t1b), ({}, {}, t1))
        # one changed, one deleted, one added
        self.assertEqual(self.dav.put(href + 's0.ics', vevent('sync-0', summary='x'))[0], 204)
        self.assertEqual(self.dav.req('DELETE', href + 's1.ics')[0], 204)
        self.assertEqual(self.dav.put(href + 's3.ics', vevent('sync-3'))[0], 201)
        props, bare, t2 = self.sync_parse(self.sync(href, t1)[2])
        self.assertEqual(sorted(props), [href + 's0.ics', href + 's3.ics'])
        self.assertEqual(bare, {href + 's1.ics': 404})
        self.assertNotEqual(t1, t2)
        # the sync-token property agrees with the report
        st, _, b = self.dav.propfind(href, '<d:sync-token/>')
        self.assertEqual(ms(b)[0][href][D + 'sync-token'][1].text, t2)
        # bad tokens
        for bad in ('http://polaris/sync/999999', 'garbage', 'http://polaris/sync/-1'):
            st, _, b = self.sync(href, bad)
            self.assertEqual(st, 403, bad)
            self.assertEqual(error_elements(b), [D + 'valid-sync-token'])

    def test_sync_collection_limit(self):
        href = self.mkcal('sync-limit')
        for i in range(5):
            self.assertEqual(self.dav.put(href + 'l%d.ics' % i, vevent('lim-%d' % i))[0], 201)
        st, _, b = self.sync(href, '', limit=2)
        self.assertEqual(st, 207)
        props, bare, tok = self.sync_parse(b)
        self.assertEqual(len(props), 2)
        self.assertEqual(bare, {href: 507})
        seen = set(props)
        while bare:
            props, bare, tok = self.sync_parse(self.sync(href, tok, limit=2)[2])
            seen |= set(props)
        self.assertEqual(sorted(seen), [href + 'l%d.ics' % i for i in range(5)])

    # -- CardDAV -----------------------------------------------------------------------------
    def test_vcard_put_get_convert(self):
        book = ACARD + 'contacts/'
        card = vcard3('card-1', extra='PHOTO;ENCODING=b;TYPE=JPEG:%s\r\n' % ('QUJD' * 2000))
        st, h, b = self.dav.put(book + 'card-1.vcf', card, ctype='text/vcard')
        self.assertEqual(st, 201, b)
        st, h2, b = self.dav.req('GET', book + 'card-1.vcf')
        self.assertEqual((st, b, h2['etag']), (200, card.encode(), h['etag']))
        st, h3, b = self.dav.req('GET', book + 'card-1.vcf',
                                 headers={'Accept': 'text/vcard;version=4.0'})
        self.assertEqual(st, 200)
        self.assertIn(b'VERSION:4.0', b)
        self.assertNotIn('etag', h3)
        st, _, b = self.dav.put(book + 'card-2.vcf', vcard3('card-1'), ctype='text/vcard')
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [CR + 'no-uid-conflict'])
        st, _, b = self.dav.put(book + 'card-3.vcf', vevent('not-a-card'), ctype='text/calendar')
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [CR + 'supported-address-data'])
        body = ('<cr:addressbook-multiget %s><d:prop><d:getetag/><cr:address-data/></d:prop>'
                '<d:href>%scard-1.vcf</d:href></cr:addressbook-multiget>' % (NSDECL, book))
        st, _, b = self.dav.report(book, body)
        self.assertEqual(st, 207)
        pr = ms(b)[0][book + 'card-1.vcf']
        self.assertEqual(pr[CR + 'address-data'][1].text, card)

    def test_apple_group_card_kept_intact(self):
        book = ACARD + 'contacts/'
        group = ('BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//AddressBook 13.0//EN\r\n'
                 'N:Team\r\nFN:Team\r\nX-ADDRESSBOOKSERVER-KIND:group\r\n'
                 'X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:card-1\r\nUID:group-1\r\nEND:VCARD\r\n')
        st, _, b = self.dav.put(book + 'group-1.vcf', group, ctype='text/vcard')
        self.assertEqual(st, 201, b)
        st, _, b = self.dav.req('GET', book + 'group-1.vcf')
        self.assertEqual(b, group.encode())


if __name__ == '__main__':
    unittest.main(verbosity=2)
