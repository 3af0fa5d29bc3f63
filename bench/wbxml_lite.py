"""An in-process WBXML codec for the ActiveSync benchmark, so that setting up thousands of
devices (five requests each) does not start two external processes per request.

It covers what the benchmark sends and receives: elements, inline strings, opaque data,
string-table references, code-page switches; no attributes (ActiveSync has none). The
token table is tests/integration/eas_client.py's (read from eas/wbxml_pages.def, the
tokens of MS-ASWBXML). Trees use eas_client's convention: tags '{AirSync:}Sync'.

libwbxml stays the judge: eas_bench.py decodes the first Sync answer of every server with
both this and libwbxml (eas_client.check_agree) and stops when they differ.
"""
import base64
import xml.etree.ElementTree as ET

import eas_client

SWITCH_PAGE, END, STR_I, STR_T, OPAQUE = 0x00, 0x01, 0x03, 0x83, 0xC3
HEADER = b'\x03\x01\x6a\x00'  # WBXML 1.3, public id unknown, UTF-8, no string table
MAX_DEPTH = 64


def _mb(v):
    out = [v & 0x7f]
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7f))
        v >>= 7
    return bytes(reversed(out))


def _page_tok(tag):
    ns, local = tag[1:].split('}', 1)
    page = eas_client.PAGE_BY_NAME[ns.rstrip(':')]
    return page, eas_client.TOKEN_BY_NAME[(page, local)]


def _enc(el, out, page):
    p, tok = _page_tok(el.tag)
    if p != page:
        out += bytes([SWITCH_PAGE, p])
        page = p
    text = (el.text or '').strip() if len(el) else (el.text or '')
    if not len(el) and not text:
        out.append(tok)
        return page
    out.append(tok | 0x40)
    if text:
        out.append(STR_I)
        out += text.encode('utf-8') + b'\x00'
    for c in el:
        page = _enc(c, out, page)
    out.append(END)
    return page


def encode(xml_text):
    """XML (eas_client's namespaces, e.g. xmlns="AirSync:") -> WBXML bytes."""
    if isinstance(xml_text, str):
        xml_text = xml_text.encode('utf-8')
    out = bytearray(HEADER)
    _enc(ET.fromstring(xml_text), out, 0)
    return bytes(out)


class _Reader:
    def __init__(self, data):
        self.d, self.i = data, 0

    def byte(self):
        if self.i >= len(self.d):
            raise ValueError('WBXML truncated at %d' % self.i)
        b = self.d[self.i]
        self.i += 1
        return b

    def mb(self):
        v = 0
        for _ in range(5):
            b = self.byte()
            v = (v << 7) | (b & 0x7f)
            if not b & 0x80:
                return v
        raise ValueError('WBXML integer too long')

    def cstr(self):
        j = self.d.index(b'\x00', self.i)
        s = self.d[self.i:j]
        self.i = j + 1
        return s


def decode(data):
    """WBXML bytes -> Element."""
    r = _Reader(data)
    r.byte()                            # version
    if r.mb() == 0:                     # public id given as a string-table index
        r.mb()
    r.mb()                              # charset (UTF-8 is all ActiveSync uses)
    n = r.mb()
    table = r.d[r.i:r.i + n]
    r.i += n
    page = 0
    stack, root = [], None
    while r.i < len(r.d):
        b = r.byte()
        if b == SWITCH_PAGE:
            page = r.byte()
        elif b == END:
            if not stack:
                raise ValueError('WBXML: END without element')
            stack.pop()
        elif b in (STR_I, STR_T, OPAQUE):
            if b == STR_I:
                s = r.cstr()
            elif b == STR_T:
                off = r.mb()
                s = table[off:table.index(b'\x00', off)]
            else:
                ln = r.mb()
                s, r.i = r.d[r.i:r.i + ln], r.i + ln
            if stack and b == OPAQUE:
                # eas_client.check_agree's convention: text when it is text, else base64.
                try:
                    t, kind = s.decode('utf-8'), 'text'
                    if any(ord(ch) < 32 and ch not in '\t\r\n' for ch in t):
                        raise ValueError
                except ValueError:
                    t, kind = base64.b64encode(s).decode(), 'base64'
                stack[-1].text = (stack[-1].text or '') + t
                stack[-1].set('opaque', kind)
            elif stack:
                stack[-1].text = (stack[-1].text or '') + s.decode('utf-8', 'replace')
        else:
            if b & 0x80:
                raise ValueError('WBXML attributes are not ActiveSync')
            name = eas_client.TAGS.get((page, b & 0x3f))
            if name is None:
                raise ValueError('unknown token 0x%02x on page %d' % (b & 0x3f, page))
            el = ET.Element('{%s:}%s' % (eas_client.PAGES[page], name))
            if stack:
                stack[-1].append(el)
            elif root is None:
                root = el
            else:
                raise ValueError('WBXML: two root elements')
            if b & 0x40:
                if len(stack) >= MAX_DEPTH:
                    raise ValueError('WBXML nested too deep')
                stack.append(el)
    if root is None or stack:
        raise ValueError('WBXML: incomplete document')
    return root
