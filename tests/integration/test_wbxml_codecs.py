"""Our WBXML codec (`polaris wbxml encode|decode`, eas/wbxml*.c) against two codecs nobody
here wrote: libwbxml (wbxml2xml/xml2wbxml, Debian's libwbxml2-utils) and the eas4tbsync
Thunderbird add-on's wbxmltools.js (run in Node by eas4tbsync/harness.js).

Generated documents cover every token of every code page, as leaf with text and as
container, with page switches in both directions and awkward text (markup characters,
quotes, non-ASCII, a 20 kB string). For each document:
  - libwbxml's encoder writes exactly the bytes ours writes (both switch pages only when
    needed, STR_I for text, no content bit on empty elements);
  - libwbxml decodes ours to the original tree, and check_agree holds;
  - the add-on decodes ours to the original tree, and ours decodes the add-on's encoding
    to it, when every token is in the add-on's table (it lacks AirNotify, the 16.x
    AirSyncBase tokens and Find; those documents are checked with the other codecs only).
Page 25 (Find) is unknown to libwbxml: its documents are checked against the add-on...
which lacks it too, so only our own round trip holds for them (noted in the output).
Also: `polaris wbxml decode` exits 1 with a message on refused input.
"""
import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eas_client as E  # noqa: E402
from eas4tbsync import tbcodec  # noqa: E402

FAILURES = []


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        print('FAIL:', msg)


def el(page, tok, text=None, kids=()):
    e = ET.Element('{%s:}%s' % (E.PAGES[page], E.TAGS[(page, tok)]))
    e.text = text
    for k in kids:
        e.append(k)
    return e


def tree_eq(a, b):
    return E._same(E._norm(a), E._norm(b))


def xml_of(e):
    return ET.tostring(e, encoding='unicode')


TEXTS = ['v', 'a<b>&c "q" \'s\'', 'Gr\u00fc\u00dfe \u2013 \u65e5\u672c \U0001F600', '0',
         'line1\nline2', 'x' * 20000]


def page_docs(known=lambda p, t: True):
    """Per page: every token as a leaf under a page-0 root, and every token as a container
    holding a page-0 element then a leaf of the page (page switches both ways); only the
    tokens known() says a codec has."""
    docs = []
    for page in sorted(E.PAGES):
        toks = sorted(t for (p, t) in E.TAGS if p == page and known(p, t))
        if not toks:
            continue
        leaves = [el(page, t, TEXTS[i % 4] + E.TAGS[(page, t)]) for i, t in enumerate(toks)]
        docs.append(el(0, 0x05, kids=leaves))
        conts = [el(page, t, kids=[el(0, 0x0b, str(i)), el(page, toks[0], 'in')])
                 for i, t in enumerate(toks)]
        docs.append(el(page, toks[-1], kids=conts))
    return docs


def random_docs(n, seed=6):
    rnd = random.Random(seed)
    keys = sorted(k for k in E.TAGS if k[0] != E.FIND_PAGE)

    def gen(depth):
        p, t = rnd.choice(keys)
        if depth > 5 or rnd.random() < 0.45:
            r = rnd.random()
            return el(p, t, None if r < 0.15 else rnd.choice(TEXTS))
        return el(p, t, kids=[gen(depth + 1) for _ in range(rnd.randint(1, 5))])
    return [el(0, 0x05, kids=[gen(1) for _ in range(rnd.randint(1, 6))]) for _ in range(n)]


def uses(doc, pred):
    for e in doc.iter():
        ns, local = E._split(e.tag)
        page = E._page_of_ns(ns)
        if pred(page, E.TOKEN_BY_NAME[(page, local)]):
            return True
    return False


def main():
    why = tbcodec.available()
    if why:
        print('eas4tbsync: %s' % why)
        FAILURES.append('eas4tbsync unavailable: ' + why)
    tb = tbcodec.TbCodec() if not why else None
    docs = page_docs() + page_docs(E.libwbxml_knows) + random_docs(20)
    if tb:
        docs += page_docs(tb.knows)
    seen_lw, seen_tb = set(), set()
    skipped = 0
    for i, doc in enumerate(docs):
        src = xml_of(doc)
        ours = E.encode_ours(src)
        # Our own round trip, always.
        back = E.decode_ours(ours)
        check(tree_eq(doc, back) is None, 'doc %d: ours round trip: %s' % (i, tree_eq(doc, back)))
        # libwbxml.
        if not uses(doc, lambda p, t: not E.libwbxml_knows(p, t)):
            lw_bytes = E.encode(src, codec='libwbxml')
            if not uses(doc, E.libwbxml_binary):
                check(lw_bytes == ours, 'doc %d: libwbxml encodes differently:\n %s\n %s'
                      % (i, lw_bytes.hex(), ours.hex()))
            else:   # libwbxml writes its "binary" elements as OPAQUE: compare trees
                d = tree_eq(doc, E.decode_ours(lw_bytes))
                check(d is None, 'doc %d: ours decodes libwbxml differently: %s' % (i, d))
            theirs = E.decode(ours)
            d = tree_eq(doc, theirs)
            check(d is None, 'doc %d: libwbxml decodes ours differently: %s' % (i, d))
            seen_lw.update((E._page_of_ns(E._split(x.tag)[0]), x.tag) for x in doc.iter())
        else:
            skipped += 1
        # The add-on.
        if tb and not uses(doc, lambda p, t: not tb.knows(p, t)):
            theirs = tb.decode(ours)
            d = tree_eq(doc, theirs)
            check(d is None, 'doc %d: eas4tbsync decodes ours differently: %s' % (i, d))
            tb_bytes = tb.encode(src)
            d = tree_eq(doc, E.decode_ours(tb_bytes))
            check(d is None, 'doc %d: ours decodes eas4tbsync differently: %s' % (i, d))
            seen_tb.update((E._page_of_ns(E._split(x.tag)[0]), x.tag) for x in doc.iter())
    if tb:
        tb.close()
    # Coverage: every token libwbxml / the add-on know was exercised against them.
    all_lw = {(p, '{%s:}%s' % (E.PAGES[p], n)) for (p, t), n in E.TAGS.items()
              if E.libwbxml_knows(p, t)}
    check(all_lw <= seen_lw, 'tokens never checked against libwbxml: %s'
          % sorted(all_lw - seen_lw)[:10])
    if tb:
        all_tb = {(p, '{%s:}%s' % (E.PAGES[p], n)) for (p, t), n in E.TAGS.items()
                  if tb.knows(p, t)}
        check(all_tb <= seen_tb, 'tokens never checked against eas4tbsync: %s'
              % sorted(all_tb - seen_tb)[:10])
    print('%d documents, %d with tokens libwbxml lacks (page 25 Find, 16.1 additions): '
          'checked by our round trip only' % (len(docs), skipped))

    # Refusals through the CLI: exit 1 and a message.
    for bad, why_ in [(b'\x03\x01\x6a\x00\x45', 'truncated'),
                      (b'\x03\x01\x6a\x00\xc5\x01\x01', 'attributes'),
                      (b'\x03\x01\x6a\x00\x00\x1a\x45\x01', 'unknown code page')]:
        r = subprocess.run([E.BIN, 'wbxml', 'decode'], input=bad, capture_output=True)
        check(r.returncode == 1 and why_ in r.stderr.decode() and not r.stdout,
              'polaris wbxml decode on %s: %d %r' % (bad.hex(), r.returncode, r.stderr))
    r = subprocess.run([E.BIN, 'wbxml', 'encode'], input=b'<Sync xmlns="Nope:"/>',
                       capture_output=True)
    check(r.returncode == 1 and b'unknown namespace' in r.stderr, 'encode refusal: %r' % r.stderr)
    r = subprocess.run([E.BIN, 'wbxml', 'frobnicate'], capture_output=True)
    check(r.returncode == 2, 'wbxml usage error: %d' % r.returncode)

    if FAILURES:
        print('%d failures' % len(FAILURES))
        sys.exit(1)
    print('ok')


if __name__ == '__main__':
    main()
