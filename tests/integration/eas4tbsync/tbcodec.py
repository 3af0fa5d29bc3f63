"""Python side of harness.js: the eas4tbsync add-on's WBXML codec, in MS-ASWBXML names.

    with TbCodec() as tb:
        el = tb.decode(wbxml_bytes)      # Element, tags "{AirSync:}Sync" as eas_client's
        data = tb.encode(xml_text)       # XML in eas_client's convention -> WBXML bytes
        tb.knows(page, token)            # whether the add-on's table has the token

decode() raises TbError when the add-on's decoder refuses (it does not implement OPAQUE,
entities or string tables) or meets a token its table lacks; encode() raises when the
document uses a token the add-on cannot name. The add-on's element names are mapped to
ours through (page, token), so its spellings ("Recurrence_Type", "SMTPAddress") do not
matter. Needs node and build-deps/eas4tbsync (scripts/deps.sh --test).
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
import eas_client  # noqa: E402

ADDON = os.path.join(HERE, '..', '..', '..', 'build-deps', 'eas4tbsync', 'content',
                     'includes', 'wbxmltools.js')


class TbError(Exception):
    pass


def available():
    """None when the add-on and node are there, else why not."""
    if not shutil.which('node'):
        return 'node is not installed'
    if not os.path.exists(ADDON):
        return 'build-deps/eas4tbsync missing (run scripts/deps.sh --test)'
    return None


class TbCodec:
    def __init__(self):
        self.proc = subprocess.Popen(['node', os.path.join(HERE, 'harness.js'), ADDON],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        t = self._call({'op': 'table'})
        self.namespaces = t['namespaces']
        self.by_key = {}                   # (page, tok) -> add-on name
        self.by_name = {}                  # (page, add-on name) -> tok
        for page, cp in enumerate(t['codepages']):
            for tok, name in cp.items():
                self.by_key[(page, int(tok))] = name
                self.by_name[(page, name)] = int(tok)

    def close(self):
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait(10)
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, req):
        self.proc.stdin.write(json.dumps(req) + '\n')
        line = self.proc.stdout.readline()
        if not line:
            raise TbError('harness.js died')
        return json.loads(line)

    def knows(self, page, tok):
        return (page, tok) in self.by_key

    # -- decoding -----------------------------------------------------------------------
    def _text(self, s):
        """The add-on percent-encodes the UTF-8 of each byte as a code point."""
        if s is None:
            return None
        latin = urllib.parse.unquote_to_bytes(s).decode('utf-8')
        return latin.encode('latin-1').decode('utf-8')

    def _tree(self, el, root_page):
        ns = el.get('tbns')
        page = self.namespaces.index(ns) if ns is not None else root_page
        tok = self.by_name.get((page, el.tag))
        if tok is None:
            raise TbError('the add-on decoded an unknown token: %s in page %d' % (el.tag, page))
        out = ET.Element('{%s:}%s' % (eas_client.PAGES[page], eas_client.TAGS[(page, tok)]))
        out.text = self._text(el.text) if len(el) == 0 else None
        for c in el:
            out.append(self._tree(c, root_page))
        return out

    def decode(self, data):
        r = self._call({'op': 'decode', 'wbxml': base64.b64encode(data).decode()})
        if not r['ok']:
            raise TbError('%s %s' % (r['error'], r.get('warnings')))
        if r['warnings']:
            raise TbError('add-on warnings: %s' % r['warnings'])
        # Its namespaces are not inherited the XML way (an element without one is on the
        # root's page, whatever its parent's page): read them as plain attributes.
        xml = r['xml'].replace(" xmlns='", " tbns='")
        xml = re.sub(r'^<\?xml[^>]*\?>', '', xml)
        return self._tree(ET.fromstring(xml), r['root_page'])

    # -- encoding -----------------------------------------------------------------------
    def _triple(self, el):
        ns, local = eas_client._split(el.tag)
        page = eas_client._page_of_ns(ns)
        tok = eas_client.TOKEN_BY_NAME.get((page, local))
        if tok is None or (page, tok) not in self.by_key:
            raise TbError('the add-on cannot encode %s in %s' % (local, ns))
        kids = list(el)
        content = [self._triple(c) for c in kids] if kids else (el.text or '')
        return [self.namespaces[page], self.by_key[(page, tok)], content]

    def encode(self, xml_text):
        root = eas_client._parse_input(xml_text)
        r = self._call({'op': 'encode', 'tree': self._triple(root)})
        if not r['ok']:
            raise TbError(r['error'])
        return base64.b64decode(r['wbxml'])
