"""The ActiveSync URL a phone gets from Autodiscover really serves that user: OPTIONS on
it answers 200 (needs the ActiveSync engine, so it is registered in meson once eas/ is
merged).

Run: POLARIS_BIN=build/polaris /usr/bin/python3 tests/integration/test_autodiscover_eas.py
"""
import base64
import os
import sys
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Polaris  # noqa: E402

ALICE = ('alice@example.com', 'Alice-Pass1!')
NS_MS = 'http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006'
BODY = ('<?xml version="1.0" encoding="UTF-8"?>\n<Autodiscover xmlns="http://schemas.microsoft'
        '.com/exchange/autodiscover/mobilesync/requestschema/2006">\n<Request>\n'
        '<EMailAddress>%s</EMailAddress>\n<AcceptableResponseSchema>%s'
        '</AcceptableResponseSchema>\n</Request>\n</Autodiscover>\n' % (ALICE[0], NS_MS))


class AutodiscoverEas(unittest.TestCase):
    def test_activesync_url_answers_options(self):
        with Polaris() as p:
            p.add_demo()
            label = p.label_host('example.com')
            status, _, data = p.request('POST', '/autodiscover/autodiscover.xml',
                                        'autodiscover.example.com', body=BODY.encode(),
                                        auth=ALICE, tls=True, headers={'Content-Type': 'text/xml'})
            self.assertEqual(status, 200, data)
            url = ET.fromstring(data).findtext('.//{%s}Server/{%s}Url' % (NS_MS, NS_MS))
            u = urllib.parse.urlsplit(url)
            self.assertEqual((u.scheme, u.hostname), ('https', label))
            # the URL names the standard port; the test server listens elsewhere
            auth = 'Basic ' + base64.b64encode(('%s:%s' % ALICE).encode()).decode()
            conn = p.https(server_hostname=label)
            try:
                conn.request('OPTIONS', u.path, headers={'Host': label, 'Authorization': auth})
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                self.assertIn('MS-ASProtocolVersions', dict(r.getheaders()))
            finally:
                conn.close()


if __name__ == '__main__':
    unittest.main(verbosity=2)
