#!/usr/bin/python3
"""Turns a benchmark's JSON into the markdown results file: machine, versions, and every
figure of both servers with the ratio written as N.NN× (above 1: Polaris better).
    report.py imap|smtp|dav|eas FILE.json [--plots PREFIX]
With --plots, the scaling curves of the run are drawn (matplotlib) as PREFIX-<curve>.png
and linked from the markdown by file name (the PNGs sit next to the results file)."""
import json
import os
import platform
import statistics
import sys
import time


def machine():
    mem_kb = 0
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal:'):
                mem_kb = int(line.split()[1])
    model = ''
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    return '%d cores (%s), %.1f GiB memory, %s' % (os.cpu_count(), model, mem_kb / 2**20,
                                                 platform.platform())


def ratio(p, d, higher_is_better):
    if p is None or d is None or p <= 0 or d <= 0:
        return 'n/a'
    r = p / d if higher_is_better else d / p
    return '%.2f×' % r


def imap(data, prefix=None):
    peer = 'dovecot'
    out = ['# IMAP: Polaris vs Dovecot', '',
           'Run %s UTC on %s.' % (time.strftime('%Y-%m-%d %H:%M', time.gmtime()), machine()), '',
           'Versions: %s; %s.' % (data['versions']['polaris'], data['versions'][peer]), '',
           'INBOX of %d messages (the same Maildir for both). Times are medians of alternating '
           'runs; ratio = how many times better Polaris is (above 1.00× Polaris wins, below '
           'it loses).' % data['messages'], '',
           '| workload | Polaris | Dovecot | ratio |', '|---|---|---|---|']
    for name, v in data['seconds'].items():
        out.append('| %s | %.1f ms | %.1f ms | %s |' % (
            name.replace('_', ' '), v['polaris'] * 1000, v[peer] * 1000,
            ratio(v['polaris'], v[peer], False)))
    m = data['mixed_cmds_per_s']
    out.append('| mixed loop, concurrent sessions (commands/s) | %.0f | %.0f | %s |' % (
        m['polaris'], m[peer], ratio(m['polaris'], m[peer], True)))
    i = data['idle_kib_per_session']
    out.append('| memory per idle session (PSS) | %.0f KiB | %.0f KiB | %s |' % (
        i['polaris'], i[peer], ratio(i['polaris'], i[peer], False)))
    out += ['', 'Not compared (different work): loading the data took %.1f s for Polaris '
            '(`polaris mail append DIR`: parse, cache, store) and %.1f s for Dovecot (a file '
            'copy); the first SELECT after each load step took %.0f ms on Polaris and %.0f ms '
            'on Dovecot (in all), which builds its index then.' % (
                data['load_s']['polaris'], data['load_s'][peer],
                data['first_select_s']['polaris'] * 1000, data['first_select_s'][peer] * 1000)]
    c = data.get('curve')
    if c and len(c['sizes']) > 1:
        series = {'Polaris': [v * 1000 for v in c['uid_fetch_flags_all_s']['polaris']],
                  'Dovecot': [v * 1000 for v in c['uid_fetch_flags_all_s'][peer]]}
        title = 'IMAP UID FETCH 1:* (FLAGS) against mailbox size'
        out += plot(prefix, 'imap-fetch', title, 'messages in the INBOX', 'time (ms)',
                    {k: (c['sizes'], v) for k, v in series.items()})
        out += curve_table(title + ' (the INBOX loaded in steps; medians)', 'messages',
                           '%.1f ms', c['sizes'], series)
    losses = [n for n, v in data['seconds'].items() if v['polaris'] > v[peer]]
    if m['polaris'] < m[peer]:
        losses.append('mixed loop')
    if i['polaris'] > i[peer]:
        losses.append('idle memory')
    out += ['', 'Where Polaris loses: %s.' % (', '.join(losses) if losses else 'nowhere in this run')]
    if data.get('errors'):
        out += ['', 'Errors during the mixed loop: `%s`' % json.dumps(data['errors'])]
    return '\n'.join(out) + '\n'


def smtp(data):
    peer = 'postfix'
    dps, acc = data['deliveries_per_s'], data['accepted_per_s']
    p50, p99 = data['txn_p50_ms'], data['txn_p99_ms']
    e2e = data['end_to_end_s']
    runs = data['runs']
    out = ['# SMTP: Polaris vs Postfix delivering to Dovecot over LMTP', '',
           'Run %s UTC on %s.' % (time.strftime('%Y-%m-%d %H:%M', time.gmtime()), machine()), '',
           'Versions: %s; %s.' % (data['versions']['polaris'], data['versions'][peer]), '',
           'Durable local delivery: %d messages of %d bytes to one mailbox from %d concurrent '
           'senders over plain SMTP on loopback, %s. Each server is a fresh instance with '
           'its data on %s, warmed up with one message per sender. %s; ratio = how many '
           'times better Polaris is (above 1.00× Polaris wins, below it loses).' % (
               data['messages'], data['message_bytes'], data['senders'],
               'one SMTP session per message' if data['per_session'] == 1 else
               '%d messages per SMTP session' % data['per_session'], data['filesystem'],
               'Figures are from a single run' if runs == 1 else
               'Figures are medians of %d runs, alternating which server goes first' % runs),
           '',
           '| workload | Polaris | Postfix → Dovecot | ratio |', '|---|---|---|---|',
           '| durable deliveries/s, end to end (first connection → all in the mailbox) '
           '| %.0f | %.0f | %s |' % (dps['polaris'], dps[peer],
                                     ratio(dps['polaris'], dps[peer], True)),
           '| SMTP transaction time p50 (connect → 250 after DATA) | %.1f ms | %.1f ms | %s |'
           % (p50['polaris'], p50[peer], ratio(p50['polaris'], p50[peer], False)),
           '| SMTP transaction time p99 | %.1f ms | %.1f ms | %s |'
           % (p99['polaris'], p99[peer], ratio(p99['polaris'], p99[peer], False)),
           '',
           'What a 250 means differs: Polaris answers 250 once the message is durably in the '
           "mailbox; Postfix answers 250 once it is durably in its queue, and its queue manager "
           'delivers it to Dovecot over LMTP afterwards. That is why the end-to-end rate is the '
           'compared figure, and why the transaction times are not the same work (Postfix does '
           'less before its 250, then more after it).', '',
           'Not compared: 250s per second while the senders ran, %.0f for Polaris and %.0f for '
           'Postfix; end-to-end time %.2f s and %.2f s.' % (
               acc['polaris'], acc[peer], e2e['polaris'], e2e[peer])]
    out += ['', 'Per run (deliveries/s end to end): Polaris %s; Postfix → Dovecot %s.' % (
        ', '.join('%.0f' % r['deliveries_per_s'] for r in data['per_run']['polaris']),
        ', '.join('%.0f' % r['deliveries_per_s'] for r in data['per_run'][peer]))]
    cpu = {k: [r['client_cpu_s'] for r in data['per_run'][k] if 'client_cpu_s' in r]
           for k in ('polaris', peer)}
    if cpu['polaris'] and cpu[peer]:
        out += ['', 'The benchmark client (Python, on the same machine) used %.1f s of CPU per '
                'run against Polaris and %.1f s against Postfix → Dovecot (medians).' % (
                    statistics.median(cpu['polaris']), statistics.median(cpu[peer]))]
    losses = []
    if dps['polaris'] < dps[peer]:
        losses.append('durable deliveries per second')
    if p50['polaris'] > p50[peer]:
        losses.append('transaction time p50')
    if p99['polaris'] > p99[peer]:
        losses.append('transaction time p99')
    out += ['', 'Where Polaris loses: %s.' % (', '.join(losses) if losses else 'nowhere in this run')]
    if data.get('errors'):
        out += ['', 'Errors: `%s`' % json.dumps(data['errors'])]
    return '\n'.join(out) + '\n'


def plot(prefix, name, title, xlabel, ylabel, series, symlog_x=False):
    """Draws series {label: (xs, ys)} to PREFIX-name.png; returns the markdown line linking
    it (or saying why there is no picture). symlog_x: a logarithmic x axis that still shows
    0, for series whose ranges differ by orders of magnitude."""
    series = {k: v for k, v in series.items() if v and v[0]}
    if not prefix or not series:
        return []
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return ['', '(%s: not drawn, python3-matplotlib is not installed)' % title]
    path = '%s-%s.png' % (prefix, name)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker='o', label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    if symlog_x:
        ax.set_xscale('symlog', linthresh=1)
        ax.set_xlim(0, max(max(xs) for xs, _ in series.values()) * 1.5)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return ['', '![%s](%s)' % (title, os.path.basename(path))]


def curve_table(title, xlabel, unit, sizes, series):
    """The points of a plot as a table too (the markdown is read where pictures are not)."""
    out = ['', '%s:' % title, '', '| %s | %s |' % (xlabel, ' | '.join(series)),
           '|---|%s' % ('---|' * len(series))]
    for i, n in enumerate(sizes):
        out.append('| %s | %s |' % ('{:,}'.format(n), ' | '.join(
            (unit % v[i]) if i < len(v) and v[i] is not None else 'n/a'
            for v in series.values())))
    return out


DAV_ROWS = (
    ('put_events_s', 'PUT of %(events)d events (10%% recurring), 4 connections'),
    ('query_week_s', 'calendar-query, one week'),
    ('query_year_s', 'calendar-query, one year'),
    ('multiget_500_s', 'calendar-multiget of 500'),
    ('sync_one_change_s', 'sync-collection after one change'),
    ('put_cards_s', 'PUT of %(contacts)d contacts, 4 connections'),
    ('ab_multiget_1000_s', 'addressbook-multiget of 1,000 of %(contacts)d'),
)


def dav(data, prefix=None):
    srv = data['servers']
    peers = [p for p in srv if p != 'polaris']
    names = {'polaris': 'Polaris', 'radicale': 'Radicale', 'xandikos': 'Xandikos',
             'cyrus': 'Cyrus', 'sogo': 'SOGo'}
    out = ['# CalDAV/CardDAV: Polaris vs %s' % ', '.join(names.get(p, p) for p in peers), '',
           'Run %s UTC on %s.' % (time.strftime('%Y-%m-%d %H:%M', time.gmtime()), machine()), '',
           'Versions: %s.' % '; '.join(data['versions'][k] for k in srv), '',
           'The same %d events and %d contacts loaded into a fresh calendar and address book on '
           'each server (over HTTP on loopback, Basic auth where the server has it). Query times '
           'are medians of %d alternating runs; ratio = how many times better Polaris is (above '
           '1.00× Polaris wins, below it loses). A time-range or sync-collection answer with the '
           'wrong number of results is marked *wrong* with what it returned.' % (
               data['events'], data['contacts'], data['runs']), '']
    head = '| workload | Polaris |'
    rule = '|---|---|'
    for p in peers:
        head += ' %s | ratio |' % names.get(p, p)
        rule += '---|---|'
    out += [head, rule]
    losses = []
    for key, label in DAV_ROWS:
        row = '| %s |' % (label % data)
        pol = srv['polaris'][key]
        row += ' %.1f ms%s |' % (pol * 1000, ' (*wrong: %s*)' % srv['polaris'][key + '_wrong']
                                 if srv['polaris'].get(key + '_wrong') else '')
        for p in peers:
            v = srv[p][key]
            wrong = srv[p].get(key + '_wrong')
            row += ' %.1f ms%s | %s |' % (v * 1000, ' (*wrong: %s*)' % wrong if wrong else '',
                                          ratio(pol, v, False))
            # A faster wrong answer is no win for the peer.
            if pol > v and not wrong:
                losses.append('%s vs %s' % (label % data, names.get(p, p)))
        out.append(row)
    row = '| server memory (RSS) after the runs |'
    row += ' %.0f MiB |' % (srv['polaris']['rss_kb'] / 1024)
    for p in peers:
        row += ' %.0f MiB | %s |' % (srv[p]['rss_kb'] / 1024,
                                      ratio(srv['polaris']['rss_kb'], srv[p]['rss_kb'], False))
        if srv['polaris']['rss_kb'] > srv[p]['rss_kb']:
            losses.append('server memory (RSS) after the runs vs %s' % names.get(p, p))
    out.append(row)
    c = data.get('curve')
    if c and len(c['sizes']) > 1:
        series = {names.get(k, k.capitalize()) + (' (wrong answers)' if c['wrong'].get(k)
                                                   else ''):
                  [v * 1000 for v in c['query_year_s'][k]] for k in srv}
        title = 'CalDAV calendar-query (one year) against collection size'
        out += plot(prefix, 'caldav-query', title, 'events in the calendar', 'time (ms)',
                    {k: (c['sizes'], v) for k, v in series.items()})
        out += curve_table(title + ' (events loaded in steps; medians)', 'events', '%.1f ms',
                           c['sizes'], series)
        wrong = ['%s: %s' % (names.get(k, k), '; '.join(v)) for k, v in c['wrong'].items() if v]
        if wrong:
            out += ['', 'Wrong answers along the curve (results got of expected): %s.'
                    % ' — '.join(wrong)]
    out += ['', 'Where Polaris loses: %s.' % ('; '.join(losses) if losses else
                                              'nowhere in this run')]
    if data.get('not_run'):
        out += ['', 'Not run: %s' % data['not_run']]
    return '\n'.join(out) + '\n'


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def _mib(kb):
    return None if kb is None else kb / 1024


def _fmt(v, unit):
    return 'n/a' if v is None else unit % v


def eas(data, prefix=None):
    srv = data['servers']
    pol, sogo = srv.get('polaris', {}), srv.get('sogo', {})
    pp, sp, sl = pol.get('ping') or {}, sogo.get('ping') or {}, sogo.get('ping_limit') or {}
    s_held = sl.get('held_before_unresponsive')
    s_per = sl['pss_kb'] / s_held if s_held else None
    out = ['# ActiveSync: Polaris vs SOGo', '',
           'Run %s UTC on %s.' % (time.strftime('%Y-%m-%d %H:%M', time.gmtime()), machine()), '',
           'Versions: %s.' % '; '.join(data['versions'].values()), '',
           'The same Inbox of %d messages for both (Polaris: `polaris mail append`; SOGo: a '
           'Dovecot Maildir it reads over IMAP), version 14.1 requests over HTTP on loopback. '
           'Initial Sync: medians of %d runs alternating the servers. Pings: %d devices of a '
           'second account each hold a Ping on its empty Inbox, then one message is delivered '
           'to it. SOGo runs %d worker processes (WOWorkersCount) and keeps one busy per '
           'waiting Ping, so it is probed for how many it holds before a fresh request is no '
           'longer answered (10 s); its delivery-to-answer time is taken with fewer Pings '
           'than workers. Ratio = how many times better Polaris is (above 1.00× Polaris '
           'wins, below it loses).' % (data['messages'], data['runs'], data['devices'],
                                      data['sogo_workers']), '',
           '| workload | Polaris | SOGo | ratio |', '|---|---|---|---|']
    rows = [
        ('initial Sync of the Inbox, windows of 512 (items/s)', pol.get('sync_items_per_s'),
         sogo.get('sync_items_per_s'), '%.0f', True),
        ('concurrent Pings held (Polaris: of the %d devices run; SOGo: when it stopped '
         'answering)' % data['devices'], pp.get('held'), s_held, '%d', True),
        ('server memory with them held, PSS', _mib(pp.get('pss_kb')),
         _mib(sl.get('pss_kb')) if s_held else None, '%.1f MiB', False),
        ('server memory with them held, RSS', _mib(pp.get('rss_kb')),
         _mib(sl.get('rss_kb')) if s_held else None, '%.1f MiB', False),
        ('memory per waiting device (PSS)', pp.get('kib_per_device'), s_per, '%.1f KiB',
         False),
        ('delivery → Ping answer, p50', pp.get('wake_p50_ms'), sp.get('wake_p50_ms'),
         '%.0f ms', False),
        ('delivery → Ping answer, p99', pp.get('wake_p99_ms'), sp.get('wake_p99_ms'),
         '%.0f ms', False),
    ]
    losses = []
    for label, p, o, unit, higher in rows:
        out.append('| %s | %s | %s | %s |' % (label, _fmt(p, unit), _fmt(o, unit),
                                              ratio(p, o, higher)))
        if p is not None and o is not None and (p < o if higher else p > o):
            losses.append(label)
    notes = []
    for name, d in (('Polaris', pol), ('SOGo', sogo)):
        if d.get('sync_items') is not None and d['sync_items'] != data['messages']:
            notes.append('%s\'s initial Sync gave %d items, not %d.' % (
                name, d['sync_items'], data['messages']))
    for name, p in (('Polaris', pp), ('SOGo', sp)):
        if p:
            notes.append('%s: %d Pings held, %d answered before the delivery%s; after it %d '
                         'answered (%d with Status 2, changes) in the wait; the delivery '
                         'itself took %.0f ms.' % (
                             name, p.get('held', 0), p.get('answered_early', 0),
                             ' (%s)' % ', '.join(p['early_statuses'])
                             if p.get('early_statuses') else '',
                             p.get('woken', 0), p.get('woken_status2', 0),
                             p.get('delivery_ms', 0)))
    if pp.get('kib_per_device') is not None:
        notes.append('Memory is PSS (a page shared by several processes counted once in '
                     'all) unless marked RSS. Polaris\'s memory per device is the growth of its '
                     'PSS from %.0f KiB before the Pings, divided by the Pings held.'
                     % pp.get('pss_before_kb', 0))
    if 'sogo' in srv:
        notes.append('SOGo\'s memory per device is its PSS (every sogod process; not '
                     'MariaDB, memcached nor Dovecot) divided by the Pings it held: its '
                     'workers are started beforehand and each waiting Ping needs one.')
    if sl and not s_held:
        notes.append('SOGo still answered with %d Pings held: raise --sogo-devices.'
                     % sl.get('held_max_tried', 0))
    notes.append('Delivery: to Polaris over SMTP (the clock includes the SMTP transaction)%s.'
                 % ('; to SOGo a file written into Dovecot\'s Maildir (no delivery cost), '
                    'which SOGo sees when it next polls (SOGoInternalSyncInterval)'
                    if 'sogo' in srv else ''))
    nf = data.get('nofile') or {}
    if nf:
        notes.append('Open-file limits: ' + ', '.join('%s %s' % (k, v) for k, v in nf.items())
                     + '.')
    out += [''] + notes
    curves = {}
    if pp.get('curve'):
        curves['Polaris'] = ([c['pings'] for c in pp['curve']],
                             [c['pss_kb'] / 1024 for c in pp['curve']])
    if sl.get('curve'):
        curves['SOGo (%d workers)' % data['sogo_workers']] = (
            [c['pings'] for c in sl['curve']], [c['pss_kb'] / 1024 for c in sl['curve']])
    if curves:
        out += plot(prefix, 'ping-memory', 'Server memory against waiting Pings',
                    'Pings held (logarithmic)', 'PSS (MiB)', curves, symlog_x=True)
        for label, (xs, ys) in curves.items():
            out += curve_table('%s, PSS against Pings held' % label, 'Pings held',
                               '%.1f MiB', xs, {label: ys})
    out += ['', 'Where Polaris loses: %s.' % (', '.join(losses) if losses else
                                              'nowhere in this run')]
    if data.get('errors'):
        out += ['', 'Errors: `%s`' % json.dumps(data['errors'])]
    return '\n'.join(out) + '\n'


if __name__ == '__main__':
    kind, path = sys.argv[1], sys.argv[2]
    prefix = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == '--plots' else None
    with open(path) as f:
        data = json.load(f)
    fn = {'imap': imap, 'smtp': smtp, 'dav': dav, 'eas': eas}[kind]
    print(fn(data, prefix) if kind != 'smtp' else fn(data), end='')
