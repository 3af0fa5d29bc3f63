"""Helpers for the DAV integration tests: one request with Basic auth, and the parts of a
207 multistatus the tests look at (per href: property → (status, element)).

Runs under Debian's /usr/bin/python3; standard library only.
"""
import xml.etree.ElementTree as ET

D = '{DAV:}'
C = '{urn:ietf:params:xml:ns:caldav}'
CR = '{urn:ietf:params:xml:ns:carddav}'
CS = '{http://calendarserver.org/ns/}'
A = '{http://apple.com/ns/ical/}'
NSDECL = ('xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" '
          'xmlns:cr="urn:ietf:params:xml:ns:carddav" xmlns:cs="http://calendarserver.org/ns/" '
          'xmlns:a="http://apple.com/ns/ical/"')

ALICE = ('alice@example.com', 'Alice-Pass1!')
BOB = ('bob@example.com', 'Bob-Pass1!')
CHARLIE = ('charlie@example.com', 'Charlie-Pass1!')
CAROL = ('carol@example.org', 'Carol-Pass1!')
ACAL = '/caldav/alice@example.com/'
ACARD = '/carddav/alice@example.com/'


def setup_users(p):
    p.add_demo()
    p.cli_ok('user', 'add', CHARLIE[0], '--type', 'enhanced', '--password', CHARLIE[1])
    p.cli_ok('domain', 'add', 'example.org')
    p.cli_ok('user', 'add', CAROL[0], '--type', 'enhanced', '--password', CAROL[1])


class Dav:
    """Requests on one host as one user."""

    def __init__(self, p, auth=ALICE, host=None):
        self.p = p
        self.auth = auth
        self.host = host or p.label_host('example.com')

    def req(self, method, path, body=None, headers=None, auth=-1):
        if isinstance(body, str):
            body = body.encode()
        return self.p.request(method, path, self.host, body=body, headers=headers,
                              auth=self.auth if auth == -1 else auth)

    def propfind(self, path, props, depth='0', ns=NSDECL):
        body = ('<?xml version="1.0" encoding="utf-8"?><d:propfind %s><d:prop>%s</d:prop>'
                '</d:propfind>' % (ns, props))
        return self.req('PROPFIND', path, body, {'Depth': depth,
                                                 'Content-Type': 'application/xml'})

    def report(self, path, body, depth='1'):
        return self.req('REPORT', path, body, {'Depth': depth,
                                               'Content-Type': 'application/xml'})

    def put(self, path, data, ctype='text/calendar; charset=utf-8', headers=None):
        h = {'Content-Type': ctype}
        h.update(headers or {})
        return self.req('PUT', path, data, h)


def ms(body):
    """{href: {'{ns}name': (status code, element)}} plus {href: status} for bare responses."""
    root = ET.fromstring(body)
    assert root.tag == D + 'multistatus', root.tag
    props, bare = {}, {}
    for resp in root.findall(D + 'response'):
        href = resp.find(D + 'href').text
        st = resp.find(D + 'status')
        if st is not None:
            bare[href] = int(st.text.split()[1])
        got = props.setdefault(href, {}) if st is None else {}
        for ps in resp.findall(D + 'propstat'):
            code = int(ps.find(D + 'status').text.split()[1])
            for el in ps.find(D + 'prop'):
                got[el.tag] = (code, el)
    return props, bare


def hrefs_text(el):
    return [h.text for h in el.findall(D + 'href')]


def error_elements(body):
    root = ET.fromstring(body)
    assert root.tag == D + 'error', root.tag
    return [c.tag for c in root]


def vevent(uid, start='20260105T100000Z', end='20260105T110000Z', summary='Meeting', extra=''):
    return ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//polaris tests//EN\r\n'
            'BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:%s\r\nDTEND:%s\r\n'
            'SUMMARY:%s\r\n%sEND:VEVENT\r\nEND:VCALENDAR\r\n' % (uid, start, end, summary, extra))


def vtodo(uid, summary='Task'):
    return ('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//polaris tests//EN\r\n'
            'BEGIN:VTODO\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:%s\r\n'
            'END:VTODO\r\nEND:VCALENDAR\r\n' % (uid, summary))


def vcard3(uid, fn='Ann Example', extra=''):
    return ('BEGIN:VCARD\r\nVERSION:3.0\r\nUID:%s\r\nFN:%s\r\nN:Example;Ann;;;\r\n'
            'EMAIL;TYPE=INTERNET:ann@example.net\r\n%sEND:VCARD\r\n' % (uid, fn, extra))
