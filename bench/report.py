#!/usr/bin/python3
"""Turns a benchmark's JSON into the markdown results file: machine, versions, and every
figure of both servers with the ratio written as N.NN× (above 1: Polaris better).
    report.py imap|smtp|dav FILE.json"""
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
    if not p or not d:
        return 'n/a'
    r = p / d if higher_is_better else d / p
    return '%.2f×' % r


def imap(data):
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
            'copy); the first SELECT took %.0f ms on Polaris and %.0f ms on Dovecot, which '
            'builds its index then.' % (
                data['load_s']['polaris'], data['load_s'][peer],
                data['first_select_s']['polaris'] * 1000, data['first_select_s'][peer] * 1000)]
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


DAV_ROWS = (
    ('put_events_s', 'PUT of %(events)d events (10%% recurring), 4 connections'),
    ('query_week_s', 'calendar-query, one week'),
    ('query_year_s', 'calendar-query, one year'),
    ('multiget_500_s', 'calendar-multiget of 500'),
    ('sync_one_change_s', 'sync-collection after one change'),
    ('put_cards_s', 'PUT of %(contacts)d contacts, 4 connections'),
    ('ab_multiget_1000_s', 'addressbook-multiget of 1,000 of %(contacts)d'),
)


def dav(data):
    srv = data['servers']
    peers = [p for p in srv if p != 'polaris']
    names = {'radicale': 'Radicale', 'xandikos': 'Xandikos', 'cyrus': 'Cyrus', 'sogo': 'SOGo'}
    out = ['# CalDAV/CardDAV: Polaris vs %s' % ', '.join(names.get(p, p) for p in peers), '',
           'Run %s UTC on %s.' % (time.strftime('%Y-%m-%d %H:%M', time.gmtime()), machine()), '',
           'Versions: %s.' % '; '.join(data['versions'][k] for k in srv), '',
           'The same %d events and %d contacts loaded into a fresh calendar and address book on '
           'each server (over HTTP on loopback, Basic auth where the server has it). Query times '
           'are medians of %d alternating runs; ratio = how many times better Polaris is (above '
           '1.00× Polaris wins, below it loses). A time-range answer with the wrong number of '
           'results is marked *wrong* with what it returned.' % (
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
            if pol > v:
                losses.append('%s vs %s' % (label % data, names.get(p, p)))
        out.append(row)
    row = '| server memory (RSS) after the runs |'
    row += ' %.0f MiB |' % (srv['polaris']['rss_kb'] / 1024)
    for p in peers:
        row += ' %.0f MiB | %s |' % (srv[p]['rss_kb'] / 1024,
                                      ratio(srv['polaris']['rss_kb'], srv[p]['rss_kb'], False))
    out.append(row)
    out += ['', 'Where Polaris loses: %s.' % ('; '.join(losses) if losses else
                                              'nowhere in this run')]
    if data.get('not_run'):
        out += ['', 'Not run: %s' % data['not_run']]
    return '\n'.join(out) + '\n'


if __name__ == '__main__':
    kind, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        print({'imap': imap, 'smtp': smtp, 'dav': dav}[kind](json.load(f)), end='')
