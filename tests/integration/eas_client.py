"""ActiveSync test client library: WBXML codecs nobody here wrote, and an HTTP client.

Codecs (all XML uses libwbxml's ActiveSync convention: one namespace per code page, named
"Page:" -- "AirSync:", "AirSyncBase:", "Email2:", ... -- and the element names of
MS-ASWBXML, as in eas/wbxml_pages.def; a trailing ':' on a namespace is optional on input):

    encode(xml_text, codec='auto') -> bytes
        XML -> WBXML with libwbxml's xml2wbxml (an independent encoder). libwbxml lacks
        code page 25 (Find) and a few 16.1 tokens; for documents using them 'auto' falls
        back to ours (`polaris wbxml encode`); codec='libwbxml' raises instead, 'ours'
        always uses ours. An element with opaque="base64" (or "text") goes out as OPAQUE.
        libwbxml writes the elements it takes for binary (ComposeMail:Mime, Gal:Data,
        ResolveRecipients:Data...; libwbxml_binary()) as OPAQUE and every other text as
        a string; ours writes text as a string unless marked opaque.
    decode(data) -> xml.etree.ElementTree.Element
        WBXML -> tree with libwbxml's `wbxml2xml -l ACTIVESYNC`; element names are
        translated from libwbxml's spellings ("Attendee_Email", "BusinessCity") to
        MS-ASWBXML's ("Email", "BusinessAddressCity"), tags are "{AirSync:}Sync".
    decode_ours(data) -> Element       the same through `polaris wbxml decode`
    check_agree(data) -> Element       decodes with both, asserts the trees are equal
        (names, nesting, text with surrounding whitespace stripped; binary opaque content is
        compared only by ours), returns ours. Documents with page 25 are decoded by ours
        only (a note goes to stderr): libwbxml cannot read them.
    tostring(el) -> str                compact XML of a tree, for messages
    q('AirSync:Collections/AirSync:Collection') -> '{AirSync:}Collections/{AirSync:}Collection'
    find(el, path) / findall(el, path) / text(el, path, default=None): ElementTree lookups
        with q() paths.

HTTP client:

    c = EasClient(p, 'alice@example.com', 'Alice-Pass1!', device_id='dev1',
                  device_type='iPhone', version='16.1')     # p: harness.Polaris
    status, headers, body = c.options()
    status, headers, tree = c.post('FolderSync',
        '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')
    # tree is an Element for WBXML answers (check_agree already ran on it), raw bytes
    # otherwise (or b'' when empty). Request bodies are encoded with encode() above.
    # post(cmd, xml_or_None, extra_query={'ItemId': ...}, base64_query=False,
    #      headers={...}, raw_body=None, content_type=None)
    # base64_query=True sends the MS-ASHTTP 2.2.1.1.1.1 base64-encoded query instead
    # (make_base64_query builds it; extra_query then holds its parameters: ItemId,
    # CollectionId, LongId, Occurrence, Options, AttachmentName, User).
    c.policy_key is sent as X-MS-PolicyKey when set (set it after Provision).

Runs under Debian's /usr/bin/python3; standard library plus libwbxml2-utils.
"""
import base64
import http.client
import os
import re
import struct
import subprocess
import sys
import tempfile
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
PAGES_DEF = os.path.join(HERE, '..', '..', 'eas', 'wbxml_pages.def')
BIN = os.environ.get('POLARIS_BIN') or os.path.join(HERE, '..', '..', 'build', 'polaris')
FIND_PAGE = 25

# ---------------------------------------------------------------------------------------
# Our code-page table (the same file the C code is generated from)
# ---------------------------------------------------------------------------------------


def _load_pages():
    pages, tags = {}, {}
    ids = {}
    with open(PAGES_DEF) as f:
        for line in f:
            m = re.match(r'EAS_PAGE\((\d+), (\w+), "(\w+)"\)', line)
            if m:
                pages[int(m.group(1))] = m.group(3)
                ids[m.group(2)] = int(m.group(1))
                continue
            m = re.match(r'EAS_TOK\((\w+), (\w+), 0x([0-9A-Fa-f]+), "(\w+)"\)', line)
            if m:
                tags[(ids[m.group(1)], int(m.group(3), 16))] = m.group(4)
    return pages, tags


PAGES, TAGS = _load_pages()                       # {page: name}, {(page, tok): name}
PAGE_BY_NAME = {v: k for k, v in PAGES.items()}
TOKEN_BY_NAME = {(p, n): t for (p, t), n in TAGS.items()}


def _page_of_ns(ns):
    name = ns[:-1] if ns.endswith(':') else ns
    if name not in PAGE_BY_NAME:
        raise ValueError('unknown namespace %r' % ns)
    return PAGE_BY_NAME[name]


def _split(tag):
    if not tag.startswith('{'):
        raise ValueError('element %r has no namespace' % tag)
    ns, local = tag[1:].split('}', 1)
    return ns, local


def q(path):
    """'AirSync:Collections/AirSync:Collection' -> ElementTree path with {AirSync:}."""
    out = []
    for step in path.split('/'):
        if ':' in step and not step.startswith('{') and step not in ('.', '..'):
            ns, local = step.split(':', 1)
            step = '{%s:}%s' % (ns, local)
        out.append(step)
    return '/'.join(out)


def find(el, path):
    return el.find(q(path))


def findall(el, path):
    return el.findall(q(path))


def text(el, path, default=None):
    n = el.find(q(path))
    return default if n is None else (n.text or '')


def tostring(el):
    return ET.tostring(el, encoding='unicode')


# ---------------------------------------------------------------------------------------
# libwbxml's names: learnt from libwbxml itself, once, by decoding a document holding
# every token of our table (libwbxml spells several tags differently)
# ---------------------------------------------------------------------------------------

_LW = None   # {(page, tok): libwbxml name or None}, {(page, libwbxml name): tok}


def _mb(v):
    out = [v & 0x7f]
    v >>= 7
    while v:
        out.insert(0, 0x80 | (v & 0x7f))
        v >>= 7
    return bytes(out)


def _run(argv, data, what):
    r = subprocess.run(argv, input=data, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError('%s failed (%d): %s' % (what, r.returncode,
                                                     r.stderr.decode('utf-8', 'replace')))
    return r.stdout


def _wbxml2xml(data):
    """libwbxml's decoding as XML text (a temp file: the tool reads files)."""
    with tempfile.TemporaryDirectory(prefix='eas-wbxml-') as d:
        src, dst = os.path.join(d, 'in.wbxml'), os.path.join(d, 'out.xml')
        with open(src, 'wb') as f:
            f.write(data)
        r = subprocess.run(['wbxml2xml', '-l', 'ACTIVESYNC', '-m', '0', '-o', dst, src],
                           capture_output=True, timeout=60)
        if r.returncode != 0 or not os.path.exists(dst):
            raise AssertionError('wbxml2xml failed (%d): %s' % (
                r.returncode, (r.stdout + r.stderr).decode('utf-8', 'replace')))
        with open(dst, 'rb') as f:
            return f.read()


def _parse_lw(xml_bytes):
    text_ = xml_bytes.decode('utf-8', 'replace')
    text_ = re.sub(r'<!DOCTYPE[^>]*>', '', text_, count=1)
    # Opaque binary comes out raw; characters XML cannot carry become U+FFFD.
    text_ = re.sub('[\x00-\x08\x0b\x0c\x0e-\x1f]', '\ufffd', text_)
    return ET.fromstring(text_)


def _libwbxml_names():
    global _LW
    if _LW is not None:
        return _LW
    keys = sorted(k for k in TAGS if k[0] != FIND_PAGE)
    body = bytearray(b'\x45')                    # <Sync> on page 0
    page = 0
    for p, t in keys:
        if p != page:
            body += bytes([0, p])
            page = p
        body.append(t)                           # empty element
    body.append(1)
    root = _parse_lw(_wbxml2xml(b'\x03\x01\x6a\x00' + bytes(body)))
    children = list(root)
    if len(children) != len(keys):
        raise AssertionError('libwbxml decoded %d of %d tokens' % (len(children), len(keys)))
    by_key, by_name = {}, {}
    for (p, t), el in zip(keys, children):
        ns, local = _split(el.tag)
        name = None if local == 'unknown' else local
        by_key[(p, t)] = name
        if name is not None:
            by_name[(p, name)] = t
    # The elements libwbxml takes for binary: it shows their strings in base64, and its
    # encoder base64-decodes their text into OPAQUE.
    body = bytearray(b'\x45')
    page = 0
    known = [k for k in keys if by_key[k] is not None]
    for p, t in known:
        if p != page:
            body += bytes([0, p])
            page = p
        body += bytes([t | 0x40, 3]) + b'A\x00\x01'
    body.append(1)
    root = _parse_lw(_wbxml2xml(b'\x03\x01\x6a\x00' + bytes(body)))
    binary = {k for k, el in zip(known, root) if (el.text or '') != 'A'}
    _LW = (by_key, by_name, binary)
    return _LW


def libwbxml_binary(page, tok):
    """Whether libwbxml treats the element as binary (base64 in its XML form)."""
    return (page, tok) in _libwbxml_names()[2]


def libwbxml_knows(page, tok):
    return _libwbxml_names()[0].get((page, tok)) is not None


# ---------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------


def _translate_lw(el, page):
    """libwbxml's tree -> ours: namespace per page, MS-ASWBXML names."""
    by_name = _libwbxml_names()[1]
    ns, local = _split(el.tag)
    page = _page_of_ns(ns)
    tok = by_name.get((page, local))
    if tok is None:
        raise AssertionError('libwbxml produced an element we cannot map: %s' % el.tag)
    out = ET.Element('{%s:}%s' % (PAGES[page], TAGS[(page, tok)]))
    out.text = el.text
    for c in el:
        out.append(_translate_lw(c, page))
    return out


def decode(data):
    """WBXML -> Element, by libwbxml."""
    return _translate_lw(_parse_lw(_wbxml2xml(data)), 0)


def decode_ours(data):
    """WBXML -> Element, by `polaris wbxml decode`."""
    return ET.fromstring(_run([BIN, 'wbxml', 'decode'], data, 'polaris wbxml decode'))


def _uses_find_page(el):
    return any(_split(n.tag)[0].rstrip(':') == PAGES[FIND_PAGE] for n in el.iter())


class _Opaque:
    """Our decoding of OPAQUE content: libwbxml shows it raw, or as base64 for the
    elements it knows to be binary (Mime, Data...); either form agrees."""

    def __init__(self, el):
        t = el.text or ''
        if el.get('opaque') == 'base64':
            self.raw = base64.b64decode(t)
        else:
            self.raw = t.encode('utf-8')

    def __eq__(self, other):
        if isinstance(other, _Opaque):
            return self.raw == other.raw
        forms = {base64.b64encode(self.raw).decode()}
        try:
            txt = self.raw.decode('utf-8')
            binary = re.search('[\x00-\x08\x0b\x0c\x0e-\x1f]', txt) is not None
            forms.add(txt.strip())
        except UnicodeDecodeError:
            binary = True
        # Binary shown raw by libwbxml is not comparable (U+FFFD replacements).
        if binary and not re.fullmatch(r'[A-Za-z0-9+/=\s]*', other):
            return True
        return other.strip() in forms or re.sub(r'\s', '', other) in forms

    def __repr__(self):
        return 'opaque(%r)' % self.raw[:60]


def _norm(el):
    """(tag, text, children), text with surrounding whitespace stripped."""
    t = _Opaque(el) if el.get('opaque') else (el.text or '').strip()
    return (el.tag, t, [_norm(c) for c in el])


def _b64_form(ours, theirs):
    """libwbxml shows a few elements it takes for binary (ResolveRecipients:Data...) in
    base64 even when they came as strings."""
    if not isinstance(ours, str) or not isinstance(theirs, str):
        return False
    return base64.b64encode(ours.encode('utf-8')).decode() == re.sub(r'\s', '', theirs)


def _same(a, b, path=''):
    tag_a, text_a, kids_a = a
    tag_b, text_b, kids_b = b
    where = path + '/' + tag_a
    if tag_a != tag_b:
        return '%s: element %s vs %s' % (path or '/', tag_a, tag_b)
    if not text_a == text_b and not _b64_form(text_a, text_b):
        return '%s: text %r vs %r' % (where, text_a, text_b)
    if len(kids_a) != len(kids_b):
        return '%s: %d vs %d children' % (where, len(kids_a), len(kids_b))
    for x, y in zip(kids_a, kids_b):
        d = _same(x, y, where)
        if d:
            return d
    return None


def check_agree(data):
    """Decodes with ours and libwbxml; asserts equal trees; returns ours."""
    ours = decode_ours(data)
    if _uses_find_page(ours):
        sys.stderr.write('eas_client: document uses code page 25 (Find), which libwbxml '
                         'lacks: checked by our decoder only\n')
        return ours
    theirs = decode(data)
    diff = _same(_norm(ours), _norm(theirs))
    if diff:
        raise AssertionError('decoders disagree: %s\nours:     %s\nlibwbxml: %s'
                             % (diff, tostring(ours), tostring(theirs)))
    return ours


# ---------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------


def _walk_keys(el):
    ns, local = _split(el.tag)
    page = _page_of_ns(ns)
    key = (page, TOKEN_BY_NAME.get((page, local)))
    if key[1] is None:
        raise ValueError('unknown element %s in %s' % (local, ns))
    yield key, el
    for c in el:
        yield from _walk_keys(c)


def _lw_xml(el, parent_page=None):
    """Our XML tree -> the XML text xml2wbxml reads (libwbxml's names)."""
    by_key = _libwbxml_names()[0]
    ns, local = _split(el.tag)
    page = _page_of_ns(ns)
    name = by_key[(page, TOKEN_BY_NAME[(page, local)])]
    attrs = ' xmlns="%s:"' % PAGES[page] if page != parent_page else ''
    kids = list(el)
    if kids:
        return '<%s%s>%s</%s>' % (name, attrs, ''.join(_lw_xml(c, page) for c in kids), name)
    t = el.text or ''
    binary = libwbxml_binary(page, TOKEN_BY_NAME[(page, local)])
    if el.get('opaque') == 'base64':
        if not binary:
            raise ValueError('binary opaque content: use codec="ours"')
    elif binary and t:
        t = base64.b64encode(t.encode('utf-8')).decode()   # goes out as OPAQUE
    if not t:
        return '<%s%s/>' % (name, attrs)
    esc = t.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    return '<%s%s>%s</%s>' % (name, attrs, esc, name)


def _strip_header(wb):
    """libwbxml writes the public id as a string-table literal; ActiveSync clients send
    public id 1 and no string table: rewrite the header, keep the body."""
    if wb[0] != 3:
        raise AssertionError('xml2wbxml wrote version 0x%02x' % wb[0])
    pos = 1

    def mb():
        nonlocal pos
        v = 0
        while True:
            b = wb[pos]
            pos += 1
            v = (v << 7) | (b & 0x7f)
            if not b & 0x80:
                return v
    pubid = mb()
    if pubid == 0:
        mb()                                     # index of the literal in the table
    charset = mb()
    if charset != 106:
        raise AssertionError('xml2wbxml wrote charset %d' % charset)
    tlen = mb()                                  # the string table (-n: no references)
    pos += tlen
    return b'\x03\x01\x6a\x00' + wb[pos:]


def _parse_input(xml_text):
    if isinstance(xml_text, bytes):
        xml_text = xml_text.decode('utf-8')
    xml_text = re.sub(r'<!DOCTYPE[^>]*>', '', xml_text, count=1)
    root = ET.fromstring(xml_text)
    for el in root.iter():                       # whitespace between elements is layout
        if len(el):
            el.text = None
        el.tail = None
    return root


def encode_ours(xml_text):
    if isinstance(xml_text, str):
        xml_text = xml_text.encode('utf-8')
    return _run([BIN, 'wbxml', 'encode'], xml_text, 'polaris wbxml encode')


def encode(xml_text, codec='auto'):
    """XML -> WBXML by libwbxml (or ours, see the module docstring)."""
    if codec == 'ours':
        return encode_ours(xml_text)
    root = _parse_input(xml_text)
    lw_ok = all(libwbxml_knows(*k) and (e.get('opaque') != 'base64' or libwbxml_binary(*k))
                for k, e in _walk_keys(root))
    if not lw_ok:
        if codec == 'libwbxml':
            raise ValueError('libwbxml cannot encode this document (page 25, 16.1 tokens '
                             'or binary opaque)')
        return encode_ours(ET.tostring(root))
    # The DOCTYPE tells xml2wbxml the language when the root is not AirSync's.
    src = ('<?xml version="1.0" encoding="utf-8"?><!DOCTYPE ActiveSync PUBLIC '
           '"-//MICROSOFT//DTD ActiveSync//EN" "http://www.microsoft.com/">' + _lw_xml(root))
    with tempfile.TemporaryDirectory(prefix='eas-wbxml-') as d:
        a, b = os.path.join(d, 'in.xml'), os.path.join(d, 'out.wbxml')
        with open(a, 'w', encoding='utf-8') as f:
            f.write(src)
        r = subprocess.run(['xml2wbxml', '-n', '-v', '1.3', '-o', b, a],
                           capture_output=True, timeout=60)
        if r.returncode != 0 or not os.path.exists(b):
            raise AssertionError('xml2wbxml failed (%d): %s\n%s' % (
                r.returncode, (r.stdout + r.stderr).decode('utf-8', 'replace'), src))
        with open(b, 'rb') as f:
            return _strip_header(f.read())


# ---------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------

# MS-ASHTTP 2.2.1.1.1.1.2 command codes, for the base64 query.
COMMAND_CODES = {
    'Sync': 0, 'SendMail': 1, 'SmartForward': 2, 'SmartReply': 3, 'GetAttachment': 4,
    'FolderSync': 9, 'FolderCreate': 10, 'FolderDelete': 11, 'FolderUpdate': 12,
    'MoveItems': 13, 'GetItemEstimate': 14, 'MeetingResponse': 15, 'Search': 16,
    'Settings': 17, 'Ping': 18, 'ItemOperations': 19, 'Provision': 20,
    'ResolveRecipients': 21, 'ValidateCert': 22, 'Find': 23,
}
# MS-ASHTTP 2.2.1.1.1.1.3 parameter tags.
PARAM_CODES = {
    'AttachmentName': 0, 'CollectionId': 1, 'ItemId': 3, 'LongId': 4, 'Occurrence': 6,
    'Options': 7, 'User': 8,
}


def make_base64_query(cmd, device_id, device_type, version, policy_key=0, params=None,
                      locale=0x0409):
    """The base64-encoded query value of MS-ASHTTP 2.2.1.1.1.1."""
    major, minor = version.split('.')
    out = bytearray([int(major) * 10 + int(minor), COMMAND_CODES[cmd]])
    out += struct.pack('<H', locale)
    dev = device_id.encode()
    out += bytes([len(dev)]) + dev
    if policy_key:
        out += bytes([4]) + struct.pack('<I', policy_key)
    else:
        out += bytes([0])
    dt = device_type.encode()
    out += bytes([len(dt)]) + dt
    for k, v in (params or {}).items():
        v = v if isinstance(v, bytes) else str(v).encode()
        out += bytes([PARAM_CODES[k], len(v)]) + v
    return base64.b64encode(bytes(out)).decode()


class EasClient:
    PATH = '/Microsoft-Server-ActiveSync'

    def __init__(self, polaris, user, password, device_id='polaristest1',
                 device_type='TestDevice', version='16.1', host=None, tls=False,
                 user_agent='PolarisTest/1.0', check=True):
        self.p = polaris
        self.user, self.password = user, password
        self.device_id, self.device_type = device_id, device_type
        self.version = version
        self.host = host or polaris.label_host(user.split('@', 1)[1])
        self.tls = tls
        self.user_agent = user_agent
        self.policy_key = 0
        self.check = check         # run check_agree on every WBXML response

    def _conn(self):
        return self.p.https() if self.tls else self.p.http(timeout=120)

    def _auth(self):
        return 'Basic ' + base64.b64encode(('%s:%s' % (self.user, self.password))
                                           .encode()).decode()

    def request(self, method, path, body=None, headers=None):
        h = {'Host': self.host, 'Authorization': self._auth(), 'User-Agent': self.user_agent}
        h.update(headers or {})
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def options(self):
        return self.request('OPTIONS', self.PATH)

    def post(self, cmd, xml=None, extra_query=None, base64_query=False, headers=None,
             raw_body=None, content_type=None):
        h = {}
        if base64_query:
            value = make_base64_query(cmd, self.device_id, self.device_type, self.version,
                                      self.policy_key, extra_query)
            path = self.PATH + '?' + urllib.parse.quote(value, safe='')
        else:
            params = {'Cmd': cmd, 'User': self.user, 'DeviceId': self.device_id,
                      'DeviceType': self.device_type}
            params.update(extra_query or {})
            path = self.PATH + '?' + urllib.parse.urlencode(params)
            h['MS-ASProtocolVersion'] = self.version
            if self.policy_key:
                h['X-MS-PolicyKey'] = str(self.policy_key)
        body = raw_body
        if xml is not None:
            body = encode(xml)
            h['Content-Type'] = 'application/vnd.ms-sync.wbxml'
        elif content_type:
            h['Content-Type'] = content_type
        h.update(headers or {})
        status, rh, data = self.request('POST', path, body=body, headers=h)
        ctype = rh.get('content-type', '')
        if data and 'wbxml' in ctype:
            tree = check_agree(data) if self.check else decode_ours(data)
            return status, rh, tree
        return status, rh, data
