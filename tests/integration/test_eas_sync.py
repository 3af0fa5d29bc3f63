"""ActiveSync Sync and the mail commands against the real server, with the libwbxml-checked
client (eas_client.py): Sync windows on a mailbox of 1,200 messages, IMAP changes arriving
as Change/Delete and EAS changes visible in IMAP, retried and reset SyncKeys, FilterType,
GetItemEstimate, ItemOperations, SendMail / SmartReply / SmartForward through the pipeline,
MoveItems, Search, and Sync with Wait woken by an SMTP delivery. Versions 14.1 and 16.1
for the lifecycle, 2.5 and 12.1 for their own forms."""
import base64
import imaplib
import os
import smtplib
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Polaris  # noqa: E402
from eas_client import EasClient, find, findall, text, tostring  # noqa: E402

A, B, AB, E, E2, IO = 'AirSync:', 'AirSyncBase:', None, 'Email:', 'Email2:', 'ItemOperations:'
NMSG = 1200


def provision(c):
    pol = ('<Provision xmlns="Provision:"><Policies><Policy><PolicyType>%s</PolicyType>'
           '%s</Policy></Policies></Provision>')
    ptype = 'MS-WAP-Provisioning-XML' if c.version == '2.5' else 'MS-EAS-Provisioning-WBXML'
    st, _, t = c.post('Provision', pol % (ptype, ''))
    assert st == 200, st
    key = text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey')
    c.policy_key = int(key)
    st, _, t = c.post('Provision', pol % (ptype, '<PolicyKey>%s</PolicyKey><Status>1</Status>'
                                          % key))
    c.policy_key = int(text(t, 'Provision:Policies/Provision:Policy/Provision:PolicyKey'))


def folders(c):
    st, _, t = c.post('FolderSync', '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey>'
                      '</FolderSync>')
    assert st == 200
    out = {}
    for add in findall(t, 'FolderHierarchy:Changes/FolderHierarchy:Add'):
        out[text(add, 'FolderHierarchy:DisplayName')] = (
            text(add, 'FolderHierarchy:ServerId'), int(text(add, 'FolderHierarchy:Type')))
    return out


def sync(c, coll, key, body='', window=None, options='', top='', cls=''):
    w = '<WindowSize>%d</WindowSize>' % window if window else ''
    x = ('<Sync xmlns="AirSync:"><Collections><Collection>%s<SyncKey>%s</SyncKey>'
         '<CollectionId>%s</CollectionId>%s%s%s</Collection></Collections>%s</Sync>'
         % (('<Class>%s</Class>' % cls) if cls else '', key, coll, w, options, body, top))
    st, _, t = c.post('Sync', x)
    assert st == 200, (st, t)
    return t


def coll_of(t):
    return find(t, 'AirSync:Collections/AirSync:Collection')


def cmds(col, kind):
    return [text(a, 'AirSync:ServerId') for a in findall(col, 'AirSync:Commands/AirSync:' + kind)]


def full_sync(c, coll, window=100, options=''):
    """SyncKey 0 then windows until MoreAvailable goes; returns (key, ids, windows)."""
    col = coll_of(sync(c, coll, 0, options=options))
    assert text(col, 'AirSync:Status') == '1'
    assert not cmds(col, 'Add'), 'items on the initial sync'
    key, ids, windows, more = text(col, 'AirSync:SyncKey'), [], 0, True
    while more:
        col = coll_of(sync(c, coll, key, window=window, options=options))
        assert text(col, 'AirSync:Status') == '1', text(col, 'AirSync:Status')
        got = cmds(col, 'Add')
        assert len(got) <= window
        ids += got
        more = find(col, 'AirSync:MoreAvailable') is not None
        key = text(col, 'AirSync:SyncKey')
        windows += 1
        assert windows < 100
    return key, ids, windows


def imap_login(p, user, pw):
    m = imaplib.IMAP4('127.0.0.1', p.ports['imap'])
    m.login(user, pw)
    return m


def uid_of(m, folder, subject):
    m.select(folder)
    typ, d = m.uid('SEARCH', None, 'SUBJECT', '"%s"' % subject)
    assert typ == 'OK' and d[0], (folder, subject, d)
    return d[0].split()[-1]


def flags_of(m, uid):
    typ, d = m.uid('FETCH', uid, '(FLAGS)')
    return d[0].decode()


def msg(i, subj=None, extra=''):
    return ('From: Sender %d <s%d@example.net>\r\nTo: alice@example.com\r\nSubject: %s\r\n'
            'Date: Mon, 06 Nov 2023 10:00:00 +0000\r\nMessage-ID: <m%d@example.net>\r\n%s\r\n'
            'Body of message %d.\r\n' % (i, i, subj or 'msg %05d' % i, i, extra, i))


ATT_MSG = ('From: s@example.net\r\nTo: alice@example.com\r\nSubject: with attachment\r\n'
           'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n'
           '--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
           '--b\r\nContent-Type: application/octet-stream; name="data.bin"\r\n'
           'Content-Disposition: attachment; filename="data.bin"\r\n'
           'Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b--\r\n'
           % base64.b64encode(bytes(range(256))).decode())


def load_mailbox(p):
    d = tempfile.mkdtemp(dir=p.tmp)
    for i in range(NMSG):
        with open(os.path.join(d, '%05d.eml' % i), 'w') as f:
            f.write(msg(i))
    p.cli_ok('mail', 'append', 'alice@example.com', d)
    with open(os.path.join(p.tmp, 'att.eml'), 'w') as f:
        f.write(ATT_MSG)
    p.cli_ok('mail', 'append', 'alice@example.com', os.path.join(p.tmp, 'att.eml'))


def test_lifecycle(p, version):
    c = EasClient(p, 'alice@example.com', 'Alice-Pass1!', device_id='life' + version.replace('.', ''),
                  version=version)
    provision(c)
    m = imap_login(p, 'alice@example.com', 'Alice-Pass1!')
    total = int(m.select('INBOX')[1][0])
    m.logout()
    fl = folders(c)
    inbox, trash = fl['Inbox'][0], fl['Trash'][0] if 'Trash' in fl else fl['Deleted Items'][0]
    # GetItemEstimate before the first Sync: not primed
    gie = ('<GetItemEstimate xmlns="GetItemEstimate:"><Collections><Collection>'
           '<AirSync:SyncKey xmlns:AirSync="AirSync:">%s</AirSync:SyncKey>'
           '<CollectionId>%s</CollectionId></Collection></Collections></GetItemEstimate>')
    _, _, t = c.post('GetItemEstimate', gie % ('0', inbox))
    assert text(t, 'GetItemEstimate:Response/GetItemEstimate:Status') == '3'
    col = coll_of(sync(c, inbox, 0))
    key0 = text(col, 'AirSync:SyncKey')
    _, _, t = c.post('GetItemEstimate', gie % (key0, inbox))
    assert text(t, 'GetItemEstimate:Response/GetItemEstimate:Status') == '1'
    assert text(t, 'GetItemEstimate:Response/GetItemEstimate:Collection/'
                   'GetItemEstimate:Estimate') == str(total)
    # windows with MoreAvailable; every message once
    key, ids, n = key0, [], 0
    while True:
        col = coll_of(sync(c, inbox, key, window=100))
        got = cmds(col, 'Add')
        last = (key, got, text(col, 'AirSync:SyncKey'))
        ids += got
        key = text(col, 'AirSync:SyncKey')
        n += 1
        if find(col, 'AirSync:MoreAvailable') is None:
            break
        assert len(got) == 100
    assert len(ids) == total and len(set(ids)) == total, (len(ids), len(set(ids)))
    assert n == (total + 99) // 100
    # a retried key gives the same items again under the same new key
    col = coll_of(sync(c, inbox, last[0], window=100))
    assert cmds(col, 'Add') == last[1] and text(col, 'AirSync:SyncKey') == last[2]
    # a key two steps back is no longer valid
    col = coll_of(sync(c, inbox, key0))
    assert text(col, 'AirSync:Status') == '3'
    # nothing new: same key, nothing sent
    col = coll_of(sync(c, inbox, key))
    assert text(col, 'AirSync:SyncKey') == key and not cmds(col, 'Add')
    # an unknown key: Status 3
    col = coll_of(sync(c, inbox, '999999'))
    assert text(col, 'AirSync:Status') == '3'

    # changes from IMAP arrive as Change / Delete
    m = imap_login(p, 'alice@example.com', 'Alice-Pass1!')
    suffix = version.replace('.', '')
    base = 1 if version == '14.1' else 21
    m.create('Arch' + suffix)
    m.select('INBOX')
    u_seen, u_flag, u_kw, u_gone, u_moved = (uid_of(m, 'INBOX', 'msg %05d' % i)
                                             for i in range(base, base + 5))
    m.uid('STORE', u_seen, '+FLAGS', '(\\Seen)')
    m.uid('STORE', u_flag, '+FLAGS', '(\\Flagged)')
    m.uid('STORE', u_kw, '+FLAGS', '(Work)')
    m.uid('STORE', u_gone, '+FLAGS', '(\\Deleted)')
    m.expunge()
    m.uid('MOVE', u_moved, 'Arch' + suffix)
    col = coll_of(sync(c, inbox, key))
    changes = findall(col, 'AirSync:Commands/AirSync:Change')
    assert len(changes) == 3, [text(x, 'AirSync:ServerId') for x in changes]
    reads = sorted(text(x, 'AirSync:ApplicationData/Email:Read') for x in changes)
    assert reads == ['0', '0', '1']
    assert any(text(x, 'AirSync:ApplicationData/Email:Flag/Email:Status') == '2'
               for x in changes)
    assert any(text(x, 'AirSync:ApplicationData/Email:Categories/Email:Category') == 'Work'
               for x in changes)
    assert len(cmds(col, 'Delete')) == 2
    prev_key, key = key, text(col, 'AirSync:SyncKey')
    # retry of that request: the same commands again
    col2 = coll_of(sync(c, inbox, prev_key))
    assert sorted(cmds(col2, 'Change')) == sorted(cmds(col, 'Change'))
    assert sorted(cmds(col2, 'Delete')) == sorted(cmds(col, 'Delete'))
    assert text(col2, 'AirSync:SyncKey') == key

    # EAS changes show in IMAP; a Delete moves to Trash
    off = 10 if version == '14.1' else 30
    sid_read, sid_del = ids[-off], ids[-off - 1]
    body = ('<Commands><Change><ServerId>%s</ServerId><ApplicationData>'
            '<Email:Read xmlns:Email="Email:">1</Email:Read>'
            '<Email:Flag xmlns:Email="Email:"><Email:Status>2</Email:Status>'
            '<Email:FlagType>Flag for follow up</Email:FlagType></Email:Flag>'
            '</ApplicationData></Change><Delete><ServerId>%s</ServerId></Delete></Commands>'
            % (sid_read, sid_del))
    col = coll_of(sync(c, inbox, key, body=body, options='<DeletesAsMoves>1</DeletesAsMoves>'
                       .replace('<DeletesAsMoves>1</DeletesAsMoves>', '')))
    assert text(col, 'AirSync:Status') == '1'
    assert find(col, 'AirSync:Responses') is None, tostring(col)
    assert not cmds(col, 'Change'), 'the client change came back'
    key = text(col, 'AirSync:SyncKey')
    _, _, t = c.post('ItemOperations', '<ItemOperations xmlns="ItemOperations:"><Fetch>'
                     '<Store>Mailbox</Store><AirSync:CollectionId xmlns:AirSync="AirSync:">%s'
                     '</AirSync:CollectionId><AirSync:ServerId xmlns:AirSync="AirSync:">%s'
                     '</AirSync:ServerId></Fetch></ItemOperations>' % (inbox, sid_read))
    subj = text(t, 'ItemOperations:Response/ItemOperations:Fetch/ItemOperations:Properties/'
                   'Email:Subject')
    m.select('INBOX')
    fl_ = flags_of(m, uid_of(m, 'INBOX', subj))
    assert '\\Seen' in fl_ and '\\Flagged' in fl_, fl_
    typ, d = m.select('Trash')
    assert typ == 'OK' and int(d[0]) >= 1
    # MoveItems: IMAP sees it in the target folder
    fl = folders(c)
    arch = fl['Arch' + suffix][0]
    sid_mv = ids[-off - 2]
    _, _, t = c.post('MoveItems', '<MoveItems xmlns="Move:"><Move><SrcMsgId>%s</SrcMsgId>'
                     '<SrcFldId>%s</SrcFldId><DstFldId>%s</DstFldId></Move></MoveItems>'
                     % (sid_mv, inbox, arch))
    assert text(t, 'Move:Response/Move:Status') == '3'
    assert text(t, 'Move:Response/Move:DstMsgId').startswith(arch + ':')
    typ, d = m.select('Arch' + suffix)
    assert int(d[0]) == 2
    col = coll_of(sync(c, inbox, key))
    assert sid_mv not in cmds(col, 'Delete'), 'MoveItems source deleted again'
    key = text(col, 'AirSync:SyncKey')
    m.logout()
    return c, inbox, key, ids


def test_resync_no_duplicates(p):
    c = EasClient(p, 'alice@example.com', 'Alice-Pass1!', device_id='gmail1', version='14.1')
    provision(c)
    inbox = folders(c)['Inbox'][0]
    _, ids1, _ = full_sync(c, inbox, window=512)
    _, ids2, _ = full_sync(c, inbox, window=512)
    assert len(ids2) == len(set(ids2)) == len(ids1)


def test_client_add_retry(p, c, inbox, key):
    # a client Add (not supported for mail this round) is answered; a retry answers the same
    body = ('<Commands><Add><ClientId>c-1</ClientId><ApplicationData>'
            '<Email:Subject xmlns:Email="Email:">x</Email:Subject></ApplicationData></Add>'
            '</Commands>')
    col = coll_of(sync(c, inbox, key, body=body))
    r1 = text(col, 'AirSync:Responses/AirSync:Add/AirSync:Status')
    col2 = coll_of(sync(c, inbox, key, body=body))
    assert text(col2, 'AirSync:Responses/AirSync:Add/AirSync:Status') == r1
    assert text(col2, 'AirSync:SyncKey') == text(col, 'AirSync:SyncKey')
    return text(col, 'AirSync:SyncKey')


def test_filter(p):
    m = imap_login(p, 'alice@example.com', 'Alice-Pass1!')
    m.create('Dated')
    now = time.time()
    for i, age in enumerate((1, 2, 10, 20, 40)):
        m.append('Dated', None, imaplib.Time2Internaldate(now - age * 86400),
                 msg(5000 + i, 'aged %d' % age).encode())
    m.logout()
    c = EasClient(p, 'alice@example.com', 'Alice-Pass1!', device_id='filt1', version='14.1')
    provision(c)
    dated = folders(c)['Dated'][0]
    week = '<Options><FilterType>3</FilterType></Options>'
    key, ids, _ = full_sync(c, dated, options=week)
    assert len(ids) == 2
    col = coll_of(sync(c, dated, key, options='<Options><FilterType>0</FilterType></Options>'))
    assert len(cmds(col, 'Add')) == 3
    key = text(col, 'AirSync:SyncKey')
    col = coll_of(sync(c, dated, key, options='<Options><FilterType>4</FilterType></Options>'))
    assert len(cmds(col, 'SoftDelete')) == 2, [x.tag for x in col]
    # GetItemEstimate with the cached window: nothing more
    _, _, t = c.post('GetItemEstimate', '<GetItemEstimate xmlns="GetItemEstimate:"><Collections>'
                     '<Collection><AirSync:SyncKey xmlns:AirSync="AirSync:">%s</AirSync:SyncKey>'
                     '<CollectionId>%s</CollectionId></Collection></Collections>'
                     '</GetItemEstimate>' % (text(col, 'AirSync:SyncKey'), dated))
    assert text(t, 'GetItemEstimate:Response/GetItemEstimate:Collection/'
                   'GetItemEstimate:Estimate') == '0'


def test_itemoperations(p, c, inbox, ids):
    att_sid = ids[0]  # the newest: the message with the attachment
    _, _, t = c.post('ItemOperations', '<ItemOperations xmlns="ItemOperations:"><Fetch>'
                     '<Store>Mailbox</Store><AirSync:CollectionId xmlns:AirSync="AirSync:">%s'
                     '</AirSync:CollectionId><AirSync:ServerId xmlns:AirSync="AirSync:">%s'
                     '</AirSync:ServerId><Options><AirSyncBase:BodyPreference '
                     'xmlns:AirSyncBase="AirSyncBase:"><AirSyncBase:Type>1</AirSyncBase:Type>'
                     '</AirSyncBase:BodyPreference></Options></Fetch></ItemOperations>'
                     % (inbox, att_sid))
    f = find(t, 'ItemOperations:Response/ItemOperations:Fetch')
    assert text(f, 'ItemOperations:Status') == '1'
    props = find(f, 'ItemOperations:Properties')
    assert text(props, 'Email:Subject') == 'with attachment'
    assert 'see attached' in text(props, 'AirSyncBase:Body/AirSyncBase:Data')
    ref = text(props, 'AirSyncBase:Attachments/AirSyncBase:Attachment/AirSyncBase:FileReference')
    assert text(props, 'AirSyncBase:Attachments/AirSyncBase:Attachment/'
                       'AirSyncBase:DisplayName') == 'data.bin'
    fetch = ('<ItemOperations xmlns="ItemOperations:"><Fetch><Store>Mailbox</Store>'
             '<AirSyncBase:FileReference xmlns:AirSyncBase="AirSyncBase:">%s'
             '</AirSyncBase:FileReference></Fetch></ItemOperations>' % ref)
    _, _, t = c.post('ItemOperations', fetch)
    data = text(t, 'ItemOperations:Response/ItemOperations:Fetch/ItemOperations:Properties/'
                   'ItemOperations:Data')
    assert base64.b64decode(data) == bytes(range(256))
    # multipart: the bytes as part 1
    st, h, raw = c.post('ItemOperations', fetch, headers={'MS-ASAcceptMultiPart': 'T'})
    assert st == 200 and h['content-type'] == 'application/vnd.ms-sync.multipart', h
    n = struct.unpack('<i', raw[:4])[0]
    assert n == 2
    off, ln = struct.unpack('<ii', raw[12:20])
    assert raw[off:off + ln] == bytes(range(256))
    # an unknown reference
    _, _, t = c.post('ItemOperations', fetch.replace(ref, ref.rsplit(':', 1)[0] + ':99'))
    assert text(t, 'ItemOperations:Response/ItemOperations:Fetch/ItemOperations:Status') == '15'


def test_sendmail(p, c, ids, inbox):
    mime = ('From: alice@example.com\r\nTo: bob@example.com\r\nBcc: carol@other.org\r\n'
            'Subject: eas send %s\r\n\r\nHello Bob.\r\n' % c.version)
    x = ('<SendMail xmlns="ComposeMail:"><ClientId>s1-%s</ClientId><SaveInSentItems/>'
         '<Mime>%s</Mime></SendMail>' % (c.version, mime.replace('<', '&lt;')))
    st, _, body = c.post('SendMail', x)
    assert st == 200 and body in (b'', None), tostring(body)
    # the same ClientId again is not sent twice
    st, _, body = c.post('SendMail', x)
    assert st == 200 and body in (b'', None), body
    mb = imap_login(p, 'bob@example.com', 'Bob-Pass1!')
    typ, d = mb.select('INBOX')
    mb.uid('SEARCH', None, 'SUBJECT', '"eas send %s"' % c.version)
    typ, d = mb.uid('SEARCH', None, 'SUBJECT', '"eas send %s"' % c.version)
    assert len(d[0].split()) == 1, d
    typ, d = mb.uid('FETCH', d[0].split()[0], '(BODY.PEEK[HEADER])')
    assert b'Bcc' not in d[0][1] and b'carol' not in d[0][1]
    mb.logout()
    ma = imap_login(p, 'alice@example.com', 'Alice-Pass1!')
    ma.select('Sent')
    typ, d = ma.uid('SEARCH', None, 'SUBJECT', '"eas send %s"' % c.version)
    typ, d = ma.uid('FETCH', d[0].split()[0], '(BODY.PEEK[HEADER])')
    assert b'Bcc: carol@other.org' in d[0][1]
    # From somebody else: refused
    spoof = mime.replace('From: alice@', 'From: bob@').replace('eas send', 'spoof')
    st, _, t = c.post('SendMail', '<SendMail xmlns="ComposeMail:"><ClientId>s2</ClientId>'
                      '<Mime>%s</Mime></SendMail>' % spoof.replace('<', '&lt;'))
    assert text(t, 'ComposeMail:Status') == '120', t
    # SmartReply and SmartForward of a message of the Inbox
    src = ids[5]
    reply = ('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: Re: smart\r\n\r\n'
             'My answer.\r\n')
    st, _, body = c.post('SmartReply', '<SmartReply xmlns="ComposeMail:"><ClientId>r1-%s'
                         '</ClientId><Source><FolderId>%s</FolderId><ItemId>%s</ItemId></Source>'
                         '<Mime>%s</Mime></SmartReply>' % (c.version, inbox, src, reply))
    assert st == 200 and not body, body
    fwd = reply.replace('Re: smart', 'Fwd: smart')
    st, _, body = c.post('SmartForward', '<SmartForward xmlns="ComposeMail:"><ClientId>f1-%s'
                         '</ClientId><Source><FolderId>%s</FolderId><ItemId>%s</ItemId></Source>'
                         '<Mime>%s</Mime></SmartForward>' % (c.version, inbox, src, fwd))
    assert st == 200 and not body, body
    mb = imap_login(p, 'bob@example.com', 'Bob-Pass1!')
    mb.select('INBOX')
    typ, d = mb.uid('SEARCH', None, 'SUBJECT', '"Re: smart"')
    typ, d = mb.uid('FETCH', d[0].split()[-1], '(BODY.PEEK[])')
    raw = d[0][1]
    assert b'My answer.' in raw and b'multipart/mixed' in raw
    quoted = [l for l in raw.split(b'\r\n') if l and not l.startswith(b'--')]
    assert any(b'Body of message' in base64.b64decode(l + b'==') for l in quoted
               if all(ch in b'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/='
                      for ch in l)) or b'Body of message' in raw
    typ, d = mb.uid('SEARCH', None, 'SUBJECT', '"Fwd: smart"')
    typ, d = mb.uid('FETCH', d[0].split()[-1], '(BODY.PEEK[])')
    assert b'message/rfc822' in d[0][1] and b'Body of message' in d[0][1]
    mb.logout()
    ma.select('INBOX')
    _, _, t = c.post('ItemOperations', '<ItemOperations xmlns="ItemOperations:"><Fetch>'
                     '<Store>Mailbox</Store><AirSync:CollectionId xmlns:AirSync="AirSync:">%s'
                     '</AirSync:CollectionId><AirSync:ServerId xmlns:AirSync="AirSync:">%s'
                     '</AirSync:ServerId></Fetch></ItemOperations>' % (inbox, src))
    subj = text(t, 'ItemOperations:Response/ItemOperations:Fetch/ItemOperations:Properties/'
                   'Email:Subject')
    fl_ = flags_of(ma, uid_of(ma, 'INBOX', subj))
    assert '\\Answered' in fl_ and '$Forwarded' in fl_, fl_
    ma.logout()


def test_search(p, c, inbox):
    _, _, t = c.post('Search', '<Search xmlns="Search:"><Store><Name>Mailbox</Name><Query><And>'
                     '<AirSync:Class xmlns:AirSync="AirSync:">Email</AirSync:Class>'
                     '<AirSync:CollectionId xmlns:AirSync="AirSync:">%s</AirSync:CollectionId>'
                     '<FreeText>msg 00077</FreeText></And></Query><Options><Range>0-9</Range>'
                     '</Options></Store></Search>' % inbox)
    st = find(t, 'Search:Response/Search:Store')
    assert text(st, 'Search:Status') == '1'
    assert text(st, 'Search:Total') == '1', text(st, 'Search:Total')
    r = find(st, 'Search:Result')
    assert text(r, 'Search:Properties/Email:Subject') == 'msg 00077'
    lid = text(r, 'Search:LongId')
    _, _, t = c.post('ItemOperations', '<ItemOperations xmlns="ItemOperations:"><Fetch>'
                     '<Store>Mailbox</Store><Search:LongId xmlns:Search="Search:">%s'
                     '</Search:LongId></Fetch></ItemOperations>' % lid)
    assert text(t, 'ItemOperations:Response/ItemOperations:Fetch/ItemOperations:Properties/'
                   'Email:Subject') == 'msg 00077'
    _, _, t = c.post('Search', '<Search xmlns="Search:"><Store><Name>GAL</Name><Query>bo</Query>'
                     '<Options><Range>0-9</Range></Options></Store></Search>')
    st = find(t, 'Search:Response/Search:Store')
    assert [text(x, 'Search:Properties/Gal:EmailAddress') for x in findall(st, 'Search:Result')] \
        == ['bob@example.com'], tostring(t)
    # another tenant's users are not in the GAL
    _, _, t = c.post('Search', '<Search xmlns="Search:"><Store><Name>GAL</Name><Query>carol'
                     '</Query></Store></Search>')
    assert findall(find(t, 'Search:Response/Search:Store'), 'Search:Result') == []


def test_wait(p, c, inbox, key):
    res = {}

    def run():
        t0 = time.time()
        res['t'] = sync(c, inbox, key, top='<Wait>1</Wait>')
        res['dt'] = time.time() - t0
    th = threading.Thread(target=run)
    th.start()
    time.sleep(1.5)
    assert th.is_alive(), 'Sync with Wait answered at once'
    s = smtplib.SMTP('127.0.0.1', p.ports['smtp'])
    s.sendmail('x@example.net', ['alice@example.com'], msg(9999, 'pushed'))
    s.quit()
    th.join(20)
    assert not th.is_alive()
    col = coll_of(res['t'])
    assert len(cmds(col, 'Add')) == 1 and res['dt'] < 15
    # an interval out of range: Status 14 with Limit
    t = sync(c, inbox, text(col, 'AirSync:SyncKey'), top='<Wait>600</Wait>')
    assert text(t, 'AirSync:Status') == '14' and text(t, 'AirSync:Limit')


def test_v25(p, inbox):
    c = EasClient(p, 'alice@example.com', 'Alice-Pass1!', device_id='old25', version='2.5')
    provision(c)
    opts = '<Options><Truncation>1</Truncation></Options>'
    col = coll_of(sync(c, inbox, 0, cls='Email', options=opts))
    key = text(col, 'AirSync:SyncKey')
    col = coll_of(sync(c, inbox, key, cls='Email', window=5, options=opts))
    adds = findall(col, 'AirSync:Commands/AirSync:Add')
    assert len(adds) == 5 and text(col, 'AirSync:Class') == 'Email'
    assert any('Body of message' in (text(a, 'AirSync:ApplicationData/Email:Body') or '')
               for a in adds)


def test_v121_sendmail(p):
    c = EasClient(p, 'alice@example.com', 'Alice-Pass1!', device_id='old121', version='12.1')
    provision(c)
    mime = b'To: bob@example.com\r\nSubject: raw 12.1\r\n\r\nplain mime body\r\n'
    st, _, body = c.post('SendMail', extra_query={'SaveInSent': 'T'}, raw_body=mime,
                         content_type='message/rfc822')
    assert st == 200, (st, body)
    ma = imap_login(p, 'alice@example.com', 'Alice-Pass1!')
    ma.select('Sent')
    typ, d = ma.uid('SEARCH', None, 'SUBJECT', '"raw 12.1"')
    typ, d = ma.uid('FETCH', d[0].split()[0], '(BODY.PEEK[HEADER])')
    assert b'From: <alice@example.com>' in d[0][1]   # added: the message had none
    ma.logout()


def main():
    t0 = time.time()
    with Polaris(listeners=('http', 'imap', 'smtp'),
                 extra_config='[auth]\nallow_plaintext = loopback\n') as p:
        p.add_demo()
        p.cli_ok('domain', 'add', 'other.org')
        p.cli_ok('user', 'add', 'carol@other.org', '--type', 'enhanced', '--password',
                 'Carol-Pass1!')
        load_mailbox(p)
        c, inbox, key, ids = test_lifecycle(p, '14.1')
        key = test_client_add_retry(p, c, inbox, key)
        test_itemoperations(p, c, inbox, ids)
        test_search(p, c, inbox)
        test_wait(p, c, inbox, key)
        c16, inbox16, key16, ids16 = test_lifecycle(p, '16.1')
        test_sendmail(p, c16, ids16, inbox16)
        test_resync_no_duplicates(p)
        test_filter(p)
        test_v25(p, inbox)
        test_v121_sendmail(p)
    print('ok (%.1fs)' % (time.time() - t0))


if __name__ == '__main__':
    main()
