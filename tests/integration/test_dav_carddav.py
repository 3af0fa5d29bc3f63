"""CardDAV reports over raw HTTP: addressbook-query with filters and <CR:limit> (507 on
truncation), address-data in the other vCard version and as a property subset,
conversions we cannot do (403 supported-address-data-conversion), and sync-collection on
an address book.

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_dav_carddav.py
"""
import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402
from dav_util import ACARD, CR, D, NSDECL, Dav, error_elements, ms, setup_users, vcard3  # noqa: E402

BOOK = ACARD + 'contacts/'
PEOPLE = [('ann', 'Ann Example', 'ann@example.net'), ('bert', 'Bert Sample', 'bert@sample.org'),
          ('cleo', 'Cleo Example', 'cleo@example.net'), ('dan', 'Dan Other', 'dan@other.com')]


def card(uid, fn, email):
    return ('BEGIN:VCARD\r\nVERSION:3.0\r\nUID:%s\r\nFN:%s\r\nN:%s;%s;;;\r\n'
            'EMAIL;TYPE=INTERNET:%s\r\nTEL;TYPE=CELL:+49 30 1234\r\nEND:VCARD\r\n'
            % (uid, fn, fn.split()[1], fn.split()[0], email))


def query(filt, limit=None, data='<cr:address-data/>'):
    lim = '<cr:limit><cr:nresults>%d</cr:nresults></cr:limit>' % limit if limit else ''
    return ('<cr:addressbook-query %s><d:prop><d:getetag/>%s</d:prop>%s%s'
            '</cr:addressbook-query>' % (NSDECL, data, filt, lim))


class CardDav(unittest.TestCase):
    p = None

    @classmethod
    def setUpClass(cls):
        cls.p = Polaris().__enter__()
        setup_users(cls.p)
        cls.dav = Dav(cls.p)
        for uid, fn, email in PEOPLE:
            st, _, b = cls.dav.put(BOOK + uid + '.vcf', card(uid, fn, email), ctype='text/vcard')
            assert st == 201, (st, b)

    @classmethod
    def tearDownClass(cls):
        cls.p.__exit__(None, None, None)

    def names(self, body):
        st, _, b = self.dav.report(BOOK, body)
        self.assertEqual(st, 207, b)
        props, bare = ms(b)
        return sorted(h.rsplit('/', 1)[1][:-4] for h in props if h != BOOK), bare, props

    def test_filters(self):
        f = ('<cr:filter><cr:prop-filter name="EMAIL"><cr:text-match match-type="ends-with">'
             'example.net</cr:text-match></cr:prop-filter></cr:filter>')
        self.assertEqual(self.names(query(f))[0], ['ann', 'cleo'])
        f = ('<cr:filter><cr:prop-filter name="FN"><cr:text-match collation="i;unicode-casemap"'
             ' match-type="contains">SAMPLE</cr:text-match></cr:prop-filter></cr:filter>')
        self.assertEqual(self.names(query(f))[0], ['bert'])
        f = ('<cr:filter test="anyof"><cr:prop-filter name="FN"><cr:text-match>Dan'
             '</cr:text-match></cr:prop-filter><cr:prop-filter name="EMAIL"><cr:text-match>'
             'bert@</cr:text-match></cr:prop-filter></cr:filter>')
        self.assertEqual(self.names(query(f))[0], ['bert', 'dan'])
        # no filter element: everything
        self.assertEqual(self.names(query(''))[0], ['ann', 'bert', 'cleo', 'dan'])

    def test_bad_filters(self):
        f = ('<cr:filter><cr:prop-filter name="FN"><cr:text-match collation="x;nope">a'
             '</cr:text-match></cr:prop-filter></cr:filter>')
        st, _, b = self.dav.report(BOOK, query(f))
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [CR + 'supported-collation'])

    def test_limit_truncates_with_507(self):
        names, bare, _ = self.names(query('', limit=2))
        self.assertEqual(len(names), 2)
        self.assertEqual(bare, {BOOK: 507})
        st, _, b = self.dav.report(BOOK, query('', limit=2))
        root = ET.fromstring(b)
        err = [r.find(D + 'error') for r in root.findall(D + 'response')
               if r.find(D + 'href').text == BOOK][0]
        self.assertIsNotNone(err.find(D + 'number-of-matches-within-limits'))
        names, bare, _ = self.names(query('', limit=4))
        self.assertEqual((len(names), bare), (4, {}))

    def test_address_data_version_and_subset(self):
        f = ('<cr:filter><cr:prop-filter name="UID"><cr:text-match match-type="equals">ann'
             '</cr:text-match></cr:prop-filter></cr:filter>')
        _, _, props = self.names(query(f, data='<cr:address-data content-type="text/vcard" '
                                                'version="4.0"/>'))
        text = props[BOOK + 'ann.vcf'][CR + 'address-data'][1].text
        self.assertIn('VERSION:4.0', text)
        self.assertIn('ann@example.net', text)
        _, _, props = self.names(query(f, data='<cr:address-data><cr:prop name="EMAIL"/>'
                                                '</cr:address-data>'))
        text = props[BOOK + 'ann.vcf'][CR + 'address-data'][1].text
        self.assertIn('EMAIL', text)
        self.assertIn('UID:ann', text)
        self.assertNotIn('TEL', text)
        # the stored bytes, CRLFs included, when nothing is asked of the conversion
        _, _, props = self.names(query(f))
        self.assertEqual(props[BOOK + 'ann.vcf'][CR + 'address-data'][1].text, card(*PEOPLE[0]))

    def test_unsupported_conversion(self):
        st, _, b = self.dav.report(BOOK, query('', data='<cr:address-data '
                                                'content-type="text/vcard" version="2.1"/>'))
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [CR + 'supported-address-data-conversion'])

    def test_vcard4_stored_and_served_as_3(self):
        v4 = ('BEGIN:VCARD\r\nVERSION:4.0\r\nUID:v4card\r\nFN:Vera Four\r\nN:Four;Vera;;;\r\n'
              'EMAIL;TYPE=work:vera@example.net\r\nEND:VCARD\r\n')
        st, _, b = self.dav.put(ACARD + 'contacts/v4card.vcf', v4, ctype='text/vcard')
        self.assertEqual(st, 201, b)
        st, _, b = self.dav.req('GET', ACARD + 'contacts/v4card.vcf')
        self.assertEqual(b, v4.encode())
        st, _, b = self.dav.req('GET', ACARD + 'contacts/v4card.vcf',
                                headers={'Accept': 'text/vcard; version=3.0'})
        self.assertIn(b'VERSION:3.0', b)
        self.assertIn(b'vera@example.net', b)
        self.assertEqual(self.dav.req('DELETE', ACARD + 'contacts/v4card.vcf')[0], 204)

    def test_invalid_cards(self):
        st, _, b = self.dav.put(BOOK + 'bad.vcf', 'BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n',
                                ctype='text/vcard')
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [CR + 'valid-address-data'])
        st, _, b = self.dav.put(BOOK + 'old.vcf', vcard3('old').replace('3.0', '2.1'),
                                ctype='text/vcard')
        self.assertEqual(st, 403)
        self.assertEqual(error_elements(b), [CR + 'supported-address-data'])

    def test_sync_collection_on_an_address_book(self):
        body = ('<d:sync-collection %s><d:sync-token/><d:sync-level>1</d:sync-level><d:prop>'
                '<d:getetag/></d:prop></d:sync-collection>' % NSDECL)
        st, _, b = self.dav.report(BOOK, body, depth='0')
        self.assertEqual(st, 207)
        token = ET.fromstring(b).find(D + 'sync-token').text
        self.assertEqual(self.dav.put(BOOK + 'eve.vcf', card('eve', 'Eve New', 'e@x.net'),
                                      ctype='text/vcard')[0], 201)
        body = body.replace('<d:sync-token/>', '<d:sync-token>%s</d:sync-token>' % token)
        st, _, b = self.dav.report(BOOK, body, depth='0')
        props, bare = ms(b)
        self.assertEqual(list(props), [BOOK + 'eve.vcf'])
        self.assertEqual(self.dav.req('DELETE', BOOK + 'eve.vcf')[0], 204)


if __name__ == '__main__':
    unittest.main(verbosity=2)
