"""The benchmark's own tools (bench/), which the results depend on:
  - bench/wbxml_lite.py, the in-process WBXML codec of the ActiveSync benchmark: it must
    write exactly the bytes libwbxml's xml2wbxml writes for every request the benchmark
    sends, and for a document holding every token of every code page the bytes ours
    (`polaris wbxml encode`) writes; it must decode to the trees libwbxml and ours decode
    to (opaque text and binary, string-table references included), and refuse malformed
    input (truncated, unknown tokens, too deep, attributes) with ValueError;
  - bench/report.py: the results files carry every ratio as N.NN× in the right direction,
    the losses, wrong answers and errors, and the scaling plots (PNG files linked from the
    markdown when python3-matplotlib is installed, a note saying so otherwise).
Runs without a server; POLARIS_BIN is used for `polaris wbxml`.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, '..', '..', 'bench')
sys.path.insert(0, HERE)
sys.path.insert(0, BENCH)
import eas_client as E  # noqa: E402
import wbxml_lite as W  # noqa: E402

FAILURES = []


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        print('FAIL:', msg)


def same_tree(a, b):
    return E._same(E._norm(a), E._norm(b)) is None


BENCH_DOCS = [
    '<Provision xmlns="Provision:"><Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML'
    '</PolicyType></Policy></Policies></Provision>',
    '<Provision xmlns="Provision:"><Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML'
    '</PolicyType><PolicyKey>3942919513</PolicyKey><Status>1</Status></Policy></Policies>'
    '</Provision>',
    '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>',
    '<Sync xmlns="AirSync:" xmlns:B="AirSyncBase:"><Collections><Collection><SyncKey>0'
    '</SyncKey><CollectionId>mail%2F84b3e510</CollectionId></Collection></Collections></Sync>',
    '<Sync xmlns="AirSync:" xmlns:B="AirSyncBase:"><Collections><Collection><SyncKey>1-1'
    '</SyncKey><CollectionId>5</CollectionId><GetChanges>1</GetChanges><WindowSize>512'
    '</WindowSize><Options><FilterType>5</FilterType><B:BodyPreference><B:Type>1</B:Type>'
    '<B:TruncationSize>500</B:TruncationSize></B:BodyPreference></Options></Collection>'
    '</Collections></Sync>',
    '<Ping xmlns="Ping:"><HeartbeatInterval>600</HeartbeatInterval><Folders><Folder><Id>5'
    '</Id><Class>Email</Class></Folder></Folders></Ping>',
    '<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>a&lt;b&amp;"c" é ü 中'
    '</SyncKey></Collection></Collections></Sync>',
]


def every_token_doc():
    """<Sync> holding every token of pages 0-24 as a leaf with text, and an empty one."""
    root = ET.Element('{AirSync:}Sync')
    for (page, tok), name in sorted(E.TAGS.items()):
        if page == E.FIND_PAGE:
            continue
        leaf = ET.SubElement(root, '{%s:}%s' % (E.PAGES[page], name))
        leaf.text = 'v%d.%d' % (page, tok)
        ET.SubElement(root, '{%s:}%s' % (E.PAGES[page], name))
    return ET.tostring(root)


def test_encode():
    for doc in BENCH_DOCS:
        ours = W.encode(doc)
        check(ours == E.encode(doc, codec='libwbxml'), 'encode differs from libwbxml: %s' % doc)
        check(same_tree(W.decode(ours), E.decode(ours)), 'decode differs from libwbxml: %s'
              % doc)
    doc = every_token_doc()
    ours = W.encode(doc)
    check(ours == E.encode_ours(doc), 'every-token document: encode differs from polaris')
    check(same_tree(W.decode(ours), E.decode_ours(ours)),
          'every-token document: decode differs from polaris')


def test_decode_forms():
    # <Sync><Collections><Collection><SyncKey>STR_T</SyncKey><ServerId>OPAQUE text</ServerId>
    # <Mime page 2>OPAQUE binary</...> with a string table and a page switch.
    table = b'xx\x00key-from-table\x00'
    body = (b'\x45\x5c\x4f' + b'\x4b\x83\x03' + b'\x01' + b'\x4d\xc3\x05hello\x01'
            + b'\x00\x11\x4b\xc3\x04\x00\xff\x10\x80\x01' + b'\x00\x00' + b'\x01\x01\x01')
    data = b'\x03\x01\x6a' + bytes([len(table)]) + table + body
    t = W.decode(data)
    check(E.text(t, 'AirSync:Collections/AirSync:Collection/AirSync:SyncKey') == 'key-from-table',
          'STR_T: %s' % E.tostring(t))
    sid = E.find(t, 'AirSync:Collections/AirSync:Collection/AirSync:ServerId')
    check(sid is not None and sid.text == 'hello' and sid.get('opaque') == 'text',
          'OPAQUE text: %s' % E.tostring(t))
    bin_el = E.find(t, 'AirSync:Collections/AirSync:Collection/AirSyncBase:Data')
    check(bin_el is not None and bin_el.get('opaque') == 'base64'
          and bin_el.text == 'AP8QgA==', 'OPAQUE binary: %s' % E.tostring(t))
    # ActiveSync never uses string tables, so the reference here is libwbxml.
    check(same_tree(t, E.decode(data)), 'forms: decode differs from libwbxml: %s'
          % E.tostring(t))


def refused(data):
    try:
        W.decode(data)
    except ValueError:
        return True
    return False


def test_refusals():
    head = b'\x03\x01\x6a\x00'
    check(refused(head), 'empty body accepted')
    check(refused(head + b'\x45\x4b\x03abc'), 'unterminated string accepted')
    check(refused(head + b'\x45\x4b'), 'unclosed elements accepted')
    check(refused(head + b'\x45\x01\x01'), 'END without element accepted')
    check(refused(head + b'\x05\x05'), 'two roots accepted')
    check(refused(head + b'\x00\x63\x45\x01'), 'unknown page accepted')
    check(refused(head + b'\x7f\x01'), 'unknown token accepted')
    check(refused(head + b'\xc5\x01\x01'), 'attributes accepted')
    check(refused(head + b'\x45\xc3\x85\x81\x81\x81\x81\x01'), 'huge length integer accepted')
    check(refused(head + b'\x45' + b'\x5c' * 70 + b'\x01' * 71), 'nesting past 64 accepted')
    check(not refused(head + b'\x45' + b'\x5c' * 60 + b'\x01' * 61), 'nesting of 61 refused')


def report(kind, data, prefix):
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
        json.dump(data, f)
    r = subprocess.run([sys.executable, os.path.join(BENCH, 'report.py'), kind, f.name,
                        '--plots', prefix], capture_output=True, text=True)
    os.unlink(f.name)
    check(r.returncode == 0, 'report.py %s failed: %s' % (kind, r.stderr[-2000:]))
    return r.stdout


def row(md, label):
    for line in md.split('\n'):
        if line.startswith('| ' + label):
            return [c.strip() for c in line.strip('|').split('|')]
    return None


def check_plot(md, prefix, name):
    path = '%s-%s.png' % (prefix, name)
    try:
        import matplotlib  # noqa: F401
        have = True
    except ImportError:
        have = False
    if have:
        check(os.path.exists(path) and open(path, 'rb').read(8) == b'\x89PNG\r\n\x1a\n',
              'no PNG at %s' % path)
        check('](%s)' % os.path.basename(path) in md, 'PNG %s not linked' % path)
    else:
        check('python3-matplotlib is not installed' in md, 'missing-matplotlib note absent')


def test_report(tmp):
    curve = [{'pings': 0, 'rss_kb': 20480, 'pss_kb': 10240},
             {'pings': 500, 'rss_kb': 30720, 'pss_kb': 20480},
             {'pings': 1000, 'rss_kb': 40960, 'pss_kb': 30720}]
    eas = {'messages': 1000, 'devices': 1000, 'runs': 1, 'sogo_workers': 4,
           'versions': {'polaris': 'polaris 0.1.0', 'sogo': 'SOGo 5.8.0'},
           'nofile': {'client': 20000, 'polaris': 20000},
           'servers': {
               'polaris': {'sync_items_per_s': 5000.0, 'sync_items': 1000,
                           'ping': {'held': 1000, 'answered_early': 0, 'woken': 1000,
                                    'woken_status2': 1000, 'rss_kb': 40960, 'pss_kb': 30720,
                                    'pss_before_kb': 10240, 'kib_per_device': 20.48,
                                    'wake_p50_ms': 100.0, 'wake_p99_ms': 400.0,
                                    'delivery_ms': 10.0, 'curve': curve}},
               'sogo': {'sync_items_per_s': 50.0, 'sync_items': 990,
                        'ping': {'held': 2, 'answered_early': 1, 'early_statuses': ['200/2'],
                                 'woken': 2, 'woken_status2': 2, 'wake_p50_ms': 8000.0,
                                 'wake_p99_ms': 50.0, 'delivery_ms': 1.0,
                                 'curve': curve[:1]},
                        'ping_limit': {'held_before_unresponsive': 4, 'held_max_tried': 4,
                                       'rss_kb': 102400, 'pss_kb': 81920,
                                       'curve': [{'pings': k, 'rss_kb': 102400,
                                                  'pss_kb': 81920} for k in range(5)]}}},
           'errors': {'sogo ping': 'boom'}}
    prefix = os.path.join(tmp, 'eas')
    md = report('eas', eas, prefix)
    check(row(md, 'initial Sync')[1:] == ['5000', '50', '100.00×'], 'eas sync row: %s'
          % row(md, 'initial Sync'))
    check(row(md, 'concurrent Pings held')[1:] == ['1000', '4', '250.00×'], 'eas held row')
    check(row(md, 'server memory with them held, PSS')[1:] == ['30.0 MiB', '80.0 MiB', '2.67×'],
          'eas PSS row: %s' % row(md, 'server memory with them held, PSS'))
    check(row(md, 'memory per waiting device')[1:] == ['20.5 KiB', '20480.0 KiB', '1000.00×'],
          'eas per-device row: %s' % row(md, 'memory per waiting device'))
    check(row(md, 'delivery → Ping answer, p99')[1:] == ['400 ms', '50 ms', '0.12×'],
          'eas p99 row: %s' % row(md, 'delivery → Ping answer, p99'))
    check('Where Polaris loses: delivery → Ping answer, p99.' in md, 'eas losses line')
    check("SOGo's initial Sync gave 990 items, not 1000." in md, 'eas item count note')
    check('"sogo ping": "boom"' in md, 'eas errors')
    check('| 1,000 | 30.0 MiB |' in md, 'eas curve table')
    check_plot(md, prefix, 'ping-memory')
    del eas['servers']['sogo'], eas['versions']['sogo'], eas['errors']
    md = report('eas', eas, os.path.join(tmp, 'eas-alone'))
    check(row(md, 'initial Sync')[1:] == ['5000', 'n/a', 'n/a'] and "SOGo's" not in md
          and 'to SOGo' not in md, 'eas without SOGo: %s' % md)

    ms = lambda *v: list(v)  # noqa: E731
    dav = {'events': 1000, 'contacts': 1000, 'runs': 3,
           'versions': {'polaris': 'polaris', 'xandikos': 'Xandikos 0.2.8', 'cyrus': 'Cyrus'},
           'curve': {'sizes': [500, 1000],
                     'query_year_s': {'polaris': ms(0.01, 0.02), 'xandikos': ms(0.005, 0.01),
                                      'cyrus': ms(0.02, 0.04)},
                     'wrong': {'polaris': [], 'xandikos': ['500 events: 0 of 50'],
                               'cyrus': []}},
           'servers': {}}
    for name, f in (('polaris', 1.0), ('xandikos', 0.5), ('cyrus', 4.0)):
        dav['servers'][name] = {k: 0.1 * f for k in (
            'put_events_s', 'query_week_s', 'query_year_s', 'multiget_500_s',
            'sync_one_change_s', 'put_cards_s', 'ab_multiget_1000_s')}
        dav['servers'][name]['rss_kb'] = 10240 * f
    dav['servers']['xandikos']['query_week_s_wrong'] = '0 of 100'
    prefix = os.path.join(tmp, 'dav')
    md = report('dav', dav, prefix)
    r = row(md, 'calendar-query, one week')
    check(r[1:] == ['100.0 ms', '50.0 ms (*wrong: 0 of 100*)', '0.50×', '400.0 ms', '4.00×'],
          'dav week row: %s' % r)
    losses = md.split('Where Polaris loses: ')[1].split('\n')[0]
    check('one week vs Xandikos' not in losses and 'one year vs Xandikos' in losses
          and 'Cyrus' not in losses, 'dav losses: %s' % losses)
    check('| 500 | 10.0 ms | 5.0 ms | 20.0 ms |' in md, 'dav curve table')
    check('Xandikos (wrong answers)' in md and 'Xandikos: 500 events: 0 of 50' in md,
          'dav curve wrong answers')
    check_plot(md, prefix, 'caldav-query')

    imap = {'messages': 2000, 'versions': {'polaris': 'polaris', 'dovecot': 'dovecot 2.3'},
            'load_s': {'polaris': 1.0, 'dovecot': 0.5},
            'first_select_s': {'polaris': 0.01, 'dovecot': 0.02},
            'seconds': {'select': {'polaris': 0.001, 'dovecot': 0.003}},
            'mixed_cmds_per_s': {'polaris': 100.0, 'dovecot': 400.0},
            'idle_kib_per_session': {'polaris': 50.0, 'dovecot': 500.0},
            'curve': {'sizes': [1000, 2000],
                      'uid_fetch_flags_all_s': {'polaris': [0.001, 0.002],
                                                'dovecot': [0.002, 0.004]}}}
    prefix = os.path.join(tmp, 'imap')
    md = report('imap', imap, prefix)
    check(row(md, 'select')[1:] == ['1.0 ms', '3.0 ms', '3.00×'], 'imap select row')
    check(row(md, 'mixed loop')[3] == '0.25×', 'imap mixed row')
    check('| 2,000 | 2.0 ms | 4.0 ms |' in md, 'imap curve table')
    check('Where Polaris loses: mixed loop.' in md, 'imap losses')
    check_plot(md, prefix, 'imap-fetch')
    check(not re.search(r'\d\.\d{3,}×', md), 'a ratio with more than two decimals')


def main():
    test_encode()
    test_decode_forms()
    test_refusals()
    with tempfile.TemporaryDirectory(prefix='bench-tools-') as tmp:
        test_report(tmp)
    if FAILURES:
        print('%d failures' % len(FAILURES))
        sys.exit(1)
    print('ok')


if __name__ == '__main__':
    main()
